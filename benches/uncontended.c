/* Uncontended pthread mutexes: THREADS threads (default 1), each taking and releasing its own mutex PAIRS times
 * in a row, so no lock is ever contended: pthread_mutex_lock's compare-and-swap always succeeds and glibc never
 * enters __lll_lock_wait or __lll_lock_wake, where `stacktop record --locks` places its probes. What stacktop's
 * probes cost such a program should then be nothing; `--locks=pthread` (probes on every pthread_mutex_lock and
 * pthread_mutex_unlock call) traps at every call, for contrast.
 * It prints on stdout the wall time of the loops (from before the threads start to after the last is joined,
 * so a profiler's start-up and shutdown are left out), the process's CPU time, and the wall time per pair in
 * nanoseconds (wall over PAIRS: with several threads each doing PAIRS, that is the time per pair of each).
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -I assets -o uncontended benches/uncontended.c
 * Run:   ./uncontended PAIRS [THREADS]     e.g. ./uncontended 10000000 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "workload.h"

#define MAX_THREADS 64

static unsigned long pairs;
/* One mutex per thread, each on its own cache line so the threads do not share one. */
static struct {
    pthread_mutex_t mutex;
    unsigned long counter;
} __attribute__((aligned(64))) slots[MAX_THREADS];

__attribute__((noinline)) static void take_and_release(int slot) {
    pthread_mutex_lock(&slots[slot].mutex);
    slots[slot].counter++;
    pthread_mutex_unlock(&slots[slot].mutex);
    __asm__ volatile("" ::: "memory");
}

static void *worker(void *arg) {
    int slot = (int)(long)arg;
    for (unsigned long i = 0; i < pairs; i++)
        take_and_release(slot);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PAIRS [THREADS]\n", argv[0]);
        return 2;
    }
    pairs = strtoul(argv[1], NULL, 10);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (pairs == 0 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "uncontended: PAIRS must be positive and THREADS from 1 to %d\n", MAX_THREADS);
        return 2;
    }
    for (int i = 0; i < threads; i++)
        pthread_mutex_init(&slots[i].mutex, NULL);
    pthread_t t[MAX_THREADS];
    double start = now_seconds();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(long)i) != 0) {
            fprintf(stderr, "uncontended: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double wall = now_seconds() - start;
    for (int i = 0; i < threads; i++)
        if (slots[i].counter != pairs) {
            fprintf(stderr, "uncontended: thread %d counted %lu pairs, not %lu\n", i, slots[i].counter, pairs);
            return 1;
        }
    printf("%.6f %.6f %.2f\n", wall, cpu_seconds(), wall / pairs * 1e9);
    return 0;
}
