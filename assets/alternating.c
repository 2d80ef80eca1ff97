/* Built to fool a stack continuation: one recursion, 800 levels deep, entered alternately from outer_a and
 * outer_b, round after round, as fast as it can go (a round takes a few microseconds). Both outer functions
 * have frames of the same size and are called from the same loop in main, so the recursion's frames sit at
 * the same addresses in both, and they hold the same bytes: each `descend` frame is exactly 48 bytes, its
 * return address (into descend, or for the outermost one into outer_a or outer_b) and five words written
 * from the depth alone, with no padding left unwritten and no callee-saved register spilled (checked with
 * objdump: `sub $0x28,%rsp`, five stores of the depth, no push). A sampled stack's inner frames are then
 * the same bytes whichever caller the thread is under when its live memory is read: only the outermost
 * `descend` frame's return address tells outer_a from outer_b, and a continuation that reads it some time
 * after the sample reads the other caller's about half of the time.
 *
 * The whole stack of a sample in the leaf is about 38.5 KB (800 x 48 bytes, plus the leaf, outer, main and
 * libc start-up frames) and about 806 frames: a walk of the kernel's full 64 KiB copy always reaches main
 * (and stays under stacktop's 1,024-frame cap), so the self-check knows the true outer caller of every
 * sample. Built without frame pointers.
 * Build: cc -O2 -g -fomit-frame-pointer -o alternating assets/alternating.c
 * Run:   ./alternating CPU_SECONDS [DEPTH]    (DEPTH default 800) */
#include "workload.h"

/* A short burst of work at the bottom of every descent (about a microsecond), so that most samples are
 * taken with the whole recursion on the stack. */
__attribute__((noinline)) void bottom_work(void) {
    unsigned long x = sink + 41;
    for (int i = 0; i < 4000; i++)
        x = x * 6364136223846793005UL + 41;
    sink = x;
}

/* Nine words that depend on the depth only, stored in a loop that fills the frame's whole local area:
 * every byte of the frame is the same whoever called. */
__attribute__((noinline)) void descend(long depth) {
    volatile long here[10];
    for (int i = 0; i < 10; i++)
        here[i] = depth + i;
    if (depth > 0)
        descend(depth - 1);
    else
        bottom_work();
    sink += here[0];
}

/* The two outer callers: the same frame as descend's (72 bytes of locals and the return address), different
 * constants so the compiler cannot fold them into one function. */
__attribute__((noinline)) void outer_a(long depth) {
    volatile long mark[10];
    for (int i = 0; i < 10; i++)
        mark[i] = 0xa0 + i;
    descend(depth);
    sink += mark[0];
}

__attribute__((noinline)) void outer_b(long depth) {
    volatile long mark[10];
    for (int i = 0; i < 10; i++)
        mark[i] = 0xb0 + i;
    descend(depth);
    sink += mark[0];
}

int main(int argc, char **argv) {
    long depth = argc > 2 ? atol(argv[2]) : 400;
    double end = cpu_seconds() + duration_arg(argc, argv);
    while (cpu_seconds() < end) {
        /* The CPU clock is a system call: read it once every 64 rounds. */
        for (int round = 0; round < 64; round++) {
            outer_a(depth);
            outer_b(depth);
        }
    }
    return 0;
}
