/* Shared helpers for the C workloads: a unit of work whose cost is the same in every function that uses it,
 * and a clock. Each workload defines its own distinct burn functions (different constants, noinline) so the
 * compiler can neither inline nor merge them. Included by the workloads; not built on its own. */
#ifndef STACKTOP_WORKLOAD_H
#define STACKTOP_WORKLOAD_H
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

/* One "unit": ITER dependent multiply-adds; the constant K keeps every expansion distinct. */
#define ITER 200000UL
#define BURN_BODY(K)                                                                                         \
    do {                                                                                                     \
        unsigned long x = sink + (K);                                                                        \
        for (unsigned long i = 0; i < units * ITER; i++)                                                     \
            x = x * 6364136223846793005UL + (K);                                                             \
        sink = x;                                                                                            \
    } while (0)

__attribute__((unused)) static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds this process (all its threads) has used. Workloads run for a CPU-time budget, not wall time,
 * so the number of samples they give does not depend on how busy the machine is. */
__attribute__((unused)) static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Nanoseconds of `clock`: CLOCK_MONOTONIC for elapsed time, CLOCK_THREAD_CPUTIME_ID for the calling thread's
 * own CPU time (what the off-CPU workloads measure themselves with). */
__attribute__((unused)) static long long clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU seconds to run, from argv[1] (default 2). */
__attribute__((unused)) static double duration_arg(int argc, char **argv) {
    return argc > 1 ? atof(argv[1]) : 2.0;
}
#endif
