/* A function force-inlined into two callers that run it 2:1. With debug info, its samples show `mixed` as an
 * inline frame under `caller_two` (2/3) and `caller_one` (1/3).
 * Build: cc -O2 -g -fno-omit-frame-pointer -o inline_split assets/inline_split.c
 * Run:   ./inline_split CPU_SECONDS */
#include "workload.h"

static inline __attribute__((always_inline)) void mixed(unsigned long units) { BURN_BODY(7); }

__attribute__((noinline)) void caller_two(void) { mixed(2); }
__attribute__((noinline)) void caller_one(void) { mixed(1); }

int main(int argc, char **argv) {
    double end = cpu_seconds() + duration_arg(argc, argv);
    while (cpu_seconds() < end) {
        caller_two();
        caller_one();
    }
    return 0;
}
