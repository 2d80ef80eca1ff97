/* Four threads contend on one pthread_mutex_t through two callers: lock_often takes the lock 3 times for
 * every 1 time of lock_rarely, with the same tiny critical section, so 3/4 of the time in
 * pthread_mutex_lock (and in the kernel's futex path below it) belongs to lock_often. The callers are built
 * with frame pointers; libc is the system's, built without them, which is what hides the caller from a
 * frame-pointer unwinder.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o mutex assets/mutex.c
 * Run:   ./mutex CPU_SECONDS (of all threads together) */
#include <pthread.h>
#include "workload.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long shared_counter;
static double end_time;

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

static void *worker(void *arg) {
    (void)arg;
    while (cpu_seconds() < end_time) {
        for (int i = 0; i < 1000; i++) {
            lock_often();
            lock_often();
            lock_often();
            lock_rarely();
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    end_time = cpu_seconds() + duration_arg(argc, argv);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}
