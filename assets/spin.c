// A busy loop with a known call graph: main -> burn -> spin_inner, for acquisition tests.
// Built by tests/acquire.rs at test time:
//   cc -O1 -g -fno-omit-frame-pointer -o spin assets/spin.c
// Usage: spin SECONDS   (busy-loops for SECONDS of wall time, default 1)
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long spin_inner(unsigned long x) {
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    }
    return x;
}

__attribute__((noinline)) unsigned long burn(double seconds) {
    unsigned long x = 1;
    double end = now() + seconds;
    while (now() < end) {
        x = spin_inner(x);
    }
    return x;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    return (int)(burn(seconds) & 1) * 0;
}
