/* A contended mutex doing a fixed amount of work, so that a profiler's slowdown is the ratio of run times.
 * THREADS threads (default 4) each do ITERS rounds of: pthread_mutex_lock, HOLD steps of work under the lock,
 * pthread_mutex_unlock, REST steps of work outside it (a step: one dependent multiply-add, about a nanosecond).
 * With more threads than CPUs and a lock held about as long as it is not, most takes find the lock taken and
 * sleep in glibc's __lll_lock_wait, and most releases wake a waiter through __lll_lock_wake: the paths
 * `stacktop record --locks` probes. Every lock and unlock call goes through pthread_mutex_lock/unlock, as in a
 * program that does not know it is measured (no trylock first), so probes on those functions (perf probe, or
 * stacktop --locks=pthread) see every call.
 * It prints on stdout the wall time of the work (from before the threads start to after the last is joined, so
 * a profiler's start-up and shutdown are left out), the process's CPU time (seconds), and the lock takes per
 * second of that wall time.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -I assets -o contended benches/contended.c
 * Run:   ./contended ITERS [THREADS [HOLD [REST]]]     e.g. ./contended 50000 4 3000 3000 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "workload.h"

#define MAX_THREADS 64

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long iters, hold_steps = 3000, rest_steps = 3000;
static volatile unsigned long shared_total;

__attribute__((noinline)) static unsigned long steps(unsigned long n, unsigned long x) {
    for (unsigned long i = 0; i < n; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

__attribute__((noinline)) static void update_table(unsigned long *x) {
    pthread_mutex_lock(&table_lock);
    *x = steps(hold_steps, *x + shared_total);
    shared_total += 1;
    pthread_mutex_unlock(&table_lock);
}

static void *worker(void *arg) {
    unsigned long x = (unsigned long)arg;
    for (unsigned long i = 0; i < iters; i++) {
        update_table(&x);
        x = steps(rest_steps, x);
    }
    sink += x;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: %s ITERS [THREADS [HOLD [REST]]]\n", argv[0]);
        return 2;
    }
    iters = strtoul(argv[1], NULL, 10);
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (argc > 3)
        hold_steps = strtoul(argv[3], NULL, 10);
    if (argc > 4)
        rest_steps = strtoul(argv[4], NULL, 10);
    if (iters == 0 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "contended: ITERS must be positive and THREADS from 1 to %d\n", MAX_THREADS);
        return 2;
    }
    pthread_t t[MAX_THREADS];
    double start = now_seconds();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(long)(i + 1)) != 0) {
            fprintf(stderr, "contended: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double wall = now_seconds() - start;
    if (shared_total != iters * threads) {
        fprintf(stderr, "contended: %lu takes, not %lu\n", shared_total, iters * threads);
        return 1;
    }
    printf("%.6f %.6f %.0f\n", wall, cpu_seconds(), iters * threads / wall);
    return 0;
}
