/* A recursion 2,000 levels deep without frame pointers: every sample of its leaves has a stack far deeper
 * than any copy `record` asks for by default (16 KiB), so only a table walk continued past the copy reaches
 * main.
 *
 * Two ways to run it (the third argument):
 * - `steady` (the default): main descends 2,000 levels once and stays there, calling deep_leaf (3 units) and
 *   other_leaf (1 unit) in turn at the bottom until the time is up: 3/4 and 1/4 of the samples, every one
 *   under 2,000 `descend` frames that never change while it runs. A continuation has nothing to get wrong.
 * - `rounds`: each round descends 2,000 levels, runs deep_leaf (3 units) at the bottom and returns to main,
 *   which then calls other_leaf (1 unit) right under it: 3/4 of the samples under the recursion, 1/4 under
 *   main alone (never cut). A sample in deep_leaf continued in live memory once the thread is back in main
 *   and in other_leaf reads the recursion's frames where they were left, the same bytes, under the return
 *   address of main's call of other_leaf, which has overwritten that of its call of descend (same stack
 *   slot): the continued stack names the wrong caller, and no check of the copy's bytes can tell.
 *
 * Every `descend` frame is 32 bytes (return address and a 24-byte area holding the volatile `here`, which
 * differs at every level), so the 2,000 levels take 64,000 bytes: with the leaf's and main's frames and
 * libc's start-up frames above them, a sample in a leaf has its whole stack, about 64.4 KB, inside the
 * kernel's largest copy (65,528 bytes; `perf record --call-graph dwarf,65528` walks it to _start up to a
 * depth of about 2,025): a walk of the full copy reaches main, so the self-check compares whole stacks.
 * Build: cc -O2 -g -fomit-frame-pointer -o deep_nofp assets/deep_nofp.c
 * Run:   ./deep_nofp CPU_SECONDS [DEPTH [steady|rounds]]    (DEPTH default 2000) */
#include <string.h>

#include "workload.h"

static double end_time;

__attribute__((noinline)) void deep_leaf(unsigned long units) { BURN_BODY(29); }

__attribute__((noinline)) void other_leaf(unsigned long units) { BURN_BODY(31); }

/* At the bottom: one call of deep_leaf, or in steady mode the whole run's calls of both leaves. */
__attribute__((noinline)) void bottom(int steady) {
    do {
        deep_leaf(3);
        if (steady)
            other_leaf(1);
    } while (steady && cpu_seconds() < end_time);
}

__attribute__((noinline)) void descend(long depth, int steady) {
    volatile long here = depth; /* a stack slot in every frame, read after the call: no tail call */
    if (depth > 0)
        descend(depth - 1, steady);
    else
        bottom(steady);
    sink += here;
}

int main(int argc, char **argv) {
    long depth = argc > 2 ? atol(argv[2]) : 2000;
    int steady = !(argc > 3 && strcmp(argv[3], "rounds") == 0);
    end_time = cpu_seconds() + duration_arg(argc, argv);
    if (steady)
        descend(depth, 1);
    else
        while (cpu_seconds() < end_time) {
            descend(depth, 0);
            other_leaf(1);
        }
    return 0;
}
