/* 60/30/10: hot_a, warm_b and cool_c do 6, 3 and 1 units of the same work per round.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o split assets/split.c
 * Run:   ./split CPU_SECONDS */
#include "workload.h"

__attribute__((noinline)) void hot_a(unsigned long units) { BURN_BODY(1); }
__attribute__((noinline)) void warm_b(unsigned long units) { BURN_BODY(3); }
__attribute__((noinline)) void cool_c(unsigned long units) { BURN_BODY(5); }

int main(int argc, char **argv) {
    double end = cpu_seconds() + duration_arg(argc, argv);
    while (cpu_seconds() < end) {
        hot_a(6);
        warm_b(3);
        cool_c(1);
    }
    return 0;
}
