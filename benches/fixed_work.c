/* A fixed amount of work, so that wall time measures how much a profiler slows the workload down (assets/split.c
 * and assets/mutex.c run for a given number of seconds instead, which hides any slowdown). Two shapes:
 *   split ROUNDS   single thread, each round hot_a, warm_b and cool_c do 6, 3 and 1 units: the 60/30/10 profile
 *                  of assets/split.c (same function names, same unit of work)
 *   mutex ROUNDS   four threads, each doing ROUNDS x (3 x lock_often + 1 x lock_rarely) on one mutex: the
 *                  contended, futex-heavy profile of assets/mutex.c
 * It prints two numbers on stdout: the wall time of the work itself (from before the first round to after the
 * last thread is joined), so profiler start-up and shutdown are not part of it, and the CPU time of the whole
 * process (all threads, user and system), which a busy machine disturbs less than the wall time. Seconds.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -I assets -o fixed_work benches/fixed_work.c
 * Run:   ./fixed_work split 1500     (about 0.2 ms per unit: 1500 rounds ~ 3 s)
 *        ./fixed_work mutex 500000 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "workload.h"

__attribute__((noinline)) void hot_a(unsigned long units) { BURN_BODY(1); }
__attribute__((noinline)) void warm_b(unsigned long units) { BURN_BODY(3); }
__attribute__((noinline)) void cool_c(unsigned long units) { BURN_BODY(5); }

static unsigned long rounds;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long shared_counter;

__attribute__((noinline)) void lock_often(void) {
    pthread_mutex_lock(&lock);
    shared_counter += 3;
    pthread_mutex_unlock(&lock);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void lock_rarely(void) {
    pthread_mutex_lock(&lock);
    shared_counter += 5;
    pthread_mutex_unlock(&lock);
    __asm__ volatile("nop" ::: "memory");
}

static void *mutex_worker(void *arg) {
    (void)arg;
    for (unsigned long r = 0; r < rounds; r++) {
        lock_often();
        lock_often();
        lock_often();
        lock_rarely();
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "split") != 0 && strcmp(argv[1], "mutex") != 0)) {
        fprintf(stderr, "usage: %s split|mutex ROUNDS\n", argv[0]);
        return 2;
    }
    rounds = strtoul(argv[2], NULL, 10);
    double start = now_seconds();
    if (strcmp(argv[1], "split") == 0) {
        for (unsigned long r = 0; r < rounds; r++) {
            hot_a(6);
            warm_b(3);
            cool_c(1);
        }
    } else {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, mutex_worker, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    printf("%.6f %.6f\n", now_seconds() - start, cpu_seconds());
    return 0;
}
