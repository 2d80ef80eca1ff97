/* A recursion 2,000 levels deep without frame pointers: every sample of its hot leaf has a stack far deeper
 * than any copy `record` asks for by default (16 KiB), so only a table walk continued past the copy reaches
 * main. Each round descends 2,000 levels and runs deep_leaf (3 units) at the bottom, then returns to main,
 * which runs shallow_leaf (1 unit) right under it: by construction deep_leaf has 3/4 of the samples, every
 * one under 2,000 `descend` frames, and shallow_leaf 1/4, under main alone (the control: never cut).
 *
 * Every `descend` frame is 32 bytes (return address and a 24-byte area holding the volatile `here`, which
 * differs at every level), so the 2,000 levels take 64,000 bytes: with the leaf's and main's frames and
 * libc's start-up frames above them, a sample in deep_leaf has about 64.4 KB of stack below the root,
 * inside the kernel's largest copy (65,528 bytes): a walk of the full copy reaches main (checked with
 * `perf record --call-graph dwarf,65528`), so the self-check compares whole stacks.
 * Build: cc -O2 -g -fomit-frame-pointer -o deep_nofp assets/deep_nofp.c
 * Run:   ./deep_nofp CPU_SECONDS [DEPTH]    (DEPTH default 2000) */
#include "workload.h"

__attribute__((noinline)) void deep_leaf(unsigned long units) { BURN_BODY(29); }

__attribute__((noinline)) void shallow_leaf(unsigned long units) { BURN_BODY(31); }

__attribute__((noinline)) void descend(long depth) {
    volatile long here = depth; /* a stack slot in every frame, read after the call: no tail call */
    if (depth > 0)
        descend(depth - 1);
    else
        deep_leaf(3);
    sink += here;
}

int main(int argc, char **argv) {
    long depth = argc > 2 ? atol(argv[2]) : 2000;
    double end = cpu_seconds() + duration_arg(argc, argv);
    while (cpu_seconds() < end) {
        descend(depth);
        shallow_leaf(1);
    }
    return 0;
}
