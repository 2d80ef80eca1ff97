/* A hot loop called under a 64 KiB stack buffer that is never touched. Its pages are never faulted in, and in
 * the sampling interrupt the kernel cannot fault a page in: its copy of the user stack stops at the first such
 * page, whatever size was asked (memcached's stacks stop the same way under a 16 KiB buffer). Built without
 * gcc's stack-clash probes, which would touch every page, and without frame pointers, so no frame-pointer
 * chain reaches past the buffer either.
 * Build: cc -O2 -g -fomit-frame-pointer -fno-stack-clash-protection -o stackbuf assets/stackbuf.c
 * Run:   ./stackbuf CPU_SECONDS */
#include "workload.h"

__attribute__((noinline)) void hot_under_buffer(unsigned long units) { BURN_BODY(17); }

__attribute__((noinline)) void big_frame(double end) {
    volatile char buffer[65536];
    buffer[0] = 1; /* the lowest page only: the callee's frames sit right under it */
    while (cpu_seconds() < end)
        hot_under_buffer(1);
    __asm__ volatile("" ::"r"(buffer) : "memory");
}

int main(int argc, char **argv) {
    big_frame(cpu_seconds() + duration_arg(argc, argv));
    return 0;
}
