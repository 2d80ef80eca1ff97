/* Threads that wait in pthread_mutex_lock from two callers, for top's off-CPU view (tests/it/top.rs).
 * A holder thread keeps one mutex locked almost all the time: 4 ms bursts (asleep while holding it), released
 * for 0.5 ms. Four waiter threads run the same loop: wait_often() three times, then wait_rarely() once, each
 * taking the lock and releasing it at once, then a 0.1 ms nap. A waiter spends most of its time blocked
 * inside pthread_mutex_lock, and every call is preceded by the same nap, so each call waits as long on
 * average: about 3/4 of the time off CPU under pthread_mutex_lock belongs to wait_often and 1/4 to
 * wait_rarely, by construction. Their CPU time is small. The callers are built with frame pointers; libc is
 * the system's, built without them.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o top_lockwait assets/top_lockwait.c
 * Run:   ./top_lockwait SECONDS (wall-clock, default 2) */
#include <pthread.h>
#include "workload.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long shared_counter;
static volatile int done;

static void nap(long nanos) {
    struct timespec ts = {0, nanos};
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) void wait_often(void) {
    pthread_mutex_lock(&lock);
    shared_counter += 3;
    pthread_mutex_unlock(&lock);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void wait_rarely(void) {
    pthread_mutex_lock(&lock);
    shared_counter += 5;
    pthread_mutex_unlock(&lock);
    __asm__ volatile("nop" ::: "memory");
}

static void *waiter(void *arg) {
    (void)arg;
    while (!done) {
        for (int i = 0; i < 3; i++) {
            wait_often();
            nap(100000);
        }
        wait_rarely();
        nap(100000);
    }
    return NULL;
}

__attribute__((noinline)) static void hold(double end) {
    while (now_seconds() < end) {
        pthread_mutex_lock(&lock);
        nap(4000000);
        pthread_mutex_unlock(&lock);
        nap(500000);
    }
}

int main(int argc, char **argv) {
    double end = now_seconds() + duration_arg(argc, argv);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, waiter, NULL);
    hold(end);
    done = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}
