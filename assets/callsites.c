/* A hot function with three call sites in two callers, for naming code without symbols: crunch does 4 of
 * every 5 units and light the fifth; twice calls crunch from two call sites (3 units), once from one (1 unit).
 * Stripped, crunch is one row (80%) named by the start of its .eh_frame entry, whichever of its addresses
 * were sampled, and its callers are twice (75%) and once (25%), twice's two return addresses one caller.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o callsites assets/callsites.c && strip callsites
 * Run:   ./callsites CPU_SECONDS */
#include "workload.h"

__attribute__((noinline)) void crunch(unsigned long units) { BURN_BODY(41); }
__attribute__((noinline)) void light(unsigned long units) { BURN_BODY(43); }

/* The empty asm statements keep each call where it is: no tail call, no merging of the two calls. */
__attribute__((noinline)) void twice(void) {
    crunch(2);
    __asm__ volatile("" ::: "memory");
    crunch(1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void once(void) {
    crunch(1);
    __asm__ volatile("" ::: "memory");
    light(1);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    double end = cpu_seconds() + duration_arg(argc, argv);
    while (cpu_seconds() < end) {
        twice();
        once();
    }
    return 0;
}
