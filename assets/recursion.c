/* A recursion 200 levels deep under main: every sample's stack is deeper than the kernel's default
 * 127-frame limit (kernel.perf_event_max_stack), so a frame-pointer chain from the kernel never reaches main.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o recursion assets/recursion.c
 * Run:   ./recursion CPU_SECONDS [DEPTH]    (DEPTH default 200) */
#include "workload.h"

__attribute__((noinline)) void leaf_work(unsigned long units) { BURN_BODY(43); }

__attribute__((noinline)) void descend(int depth, double end) {
    if (depth > 0) {
        descend(depth - 1, end);
        __asm__ volatile("" ::: "memory"); /* not a tail call: keep every frame on the stack */
        return;
    }
    while (cpu_seconds() < end)
        leaf_work(1);
}

int main(int argc, char **argv) {
    int depth = argc > 2 ? atoi(argv[2]) : 200;
    descend(depth, cpu_seconds() + duration_arg(argc, argv));
    return 0;
}
