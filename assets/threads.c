/* Eight threads named worker-1 .. worker-8; worker-k does k units of the same work per round, ROUNDS rounds,
 * so its share of the CPU time is k/36 however the scheduler interleaves them.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o threads assets/threads.c
 * Run:   ./threads ROUNDS [START_DELAY_SECONDS]     (about 0.2 ms per unit: 300 rounds ~ 2 CPU-seconds)
 * Threads start after START_DELAY_SECONDS (default 0), which lets a profiler attach to the pid first. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include "workload.h"

static unsigned long rounds;

__attribute__((noinline)) void thread_work(unsigned long units) { BURN_BODY(11); }

static void *worker(void *arg) {
    unsigned long k = (unsigned long)arg;
    char name[16];
    snprintf(name, sizeof name, "worker-%lu", k);
    pthread_setname_np(pthread_self(), name);
    for (unsigned long r = 0; r < rounds; r++)
        thread_work(k);
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 300;
    double delay = argc > 2 ? atof(argv[2]) : 0.0;
    if (delay > 0)
        usleep((useconds_t)(delay * 1e6));
    pthread_t t[8];
    for (unsigned long k = 1; k <= 8; k++)
        pthread_create(&t[k - 1], NULL, worker, (void *)k);
    for (int k = 0; k < 8; k++)
        pthread_join(t[k], NULL);
    return 0;
}
