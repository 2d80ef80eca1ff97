/* Off-CPU time of a sleeping thread, known by construction and measured by the workload itself. The main
 * thread alternates nap_long() (a 30 ms nanosleep) and nap_short() (10 ms) for SECONDS of wall time, so 3/4 of
 * its time asleep is under nap_long and 1/4 under nap_short. It measures what it did with clock_gettime: the
 * time asleep in each nap function (CLOCK_MONOTONIC around its nanosleep), its own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) and its elapsed time (CLOCK_MONOTONIC from the start of main), and prints it at
 * exit, one `key=value` line each (nanoseconds):
 *   sleep nap_long_ns=N nap_short_ns=N asleep_ns=N naps=N
 *   thread tid=T role=sleeper cpu_ns=N elapsed_ns=N
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o offcpu_sleep assets/offcpu_sleep.c
 * Run:   ./offcpu_sleep SECONDS   (wall time, default 2) */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>
#include "workload.h"

static long long nap_long_ns, nap_short_ns;
static unsigned long naps;

/* Each nap reads the clock after its nanosleep, so the call is not a tail call: the nap function stays on the
 * stack while the thread sleeps. */
__attribute__((noinline, noclone)) void nap_long(void) {
    struct timespec ts = {0, 30 * 1000 * 1000};
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    nanosleep(&ts, NULL);
    nap_long_ns += clock_ns(CLOCK_MONOTONIC) - t0;
}

__attribute__((noinline, noclone)) void nap_short(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    nanosleep(&ts, NULL);
    nap_short_ns += clock_ns(CLOCK_MONOTONIC) - t0;
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    long long start = clock_ns(CLOCK_MONOTONIC);
    long long end = start + (long long)((argc > 1 ? atof(argv[1]) : 2.0) * 1e9);
    while (clock_ns(CLOCK_MONOTONIC) < end) {
        nap_long();
        nap_short();
        naps += 2;
    }
    long long cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    long long elapsed = clock_ns(CLOCK_MONOTONIC) - start;
    printf("sleep nap_long_ns=%lld nap_short_ns=%lld asleep_ns=%lld naps=%lu\n", nap_long_ns, nap_short_ns,
           nap_long_ns + nap_short_ns, naps);
    printf("thread tid=%d role=sleeper cpu_ns=%lld elapsed_ns=%lld\n", gettid(), cpu, elapsed);
    return 0;
}
