/* Where threads wait for a lock, known by construction and measured by the workload itself. A holder thread
 * keeps one pthread mutex for bursts: hold_lock() takes it and spins 3 ms holding it, then holder_rest() sleeps
 * 1 ms without it. Three waiter threads take the same mutex again and again, each time through wait_often() or
 * wait_rarely(), chosen by a per-thread random draw 3 times out of 4 and 1 out of 4 (a draw, not a fixed
 * sequence, so that which call meets the holder's burst cannot lock into step with it), and sleep 0.5 ms in
 * pause_outside() between takes (asleep rather than spinning, so that they leave the CPUs to the holder). So
 * about 3/4 of the waiters' time inside pthread_mutex_lock, nearly all of it asleep in the kernel's futex
 * wait, belongs to wait_often; the CPU time is the holder's spinning in hold_lock.
 *
 * The workload measures, itself: each caller's time inside pthread_mutex_lock (CLOCK_MONOTONIC read just
 * before and just after the call) and number of calls, and for every thread its own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) and elapsed time (CLOCK_MONOTONIC from the start of its thread function; of main
 * for the main thread). It prints them at exit, one `key=value` line each (nanoseconds):
 *   lock caller=wait_often calls=N lock_ns=N
 *   lock caller=wait_rarely calls=N lock_ns=N
 *   thread tid=T role=holder|waiter|main cpu_ns=N elapsed_ns=N
 *
 * The callers are built with frame pointers; libc is the system's, built without them (Debian's), so the
 * frame-pointer chain of a waiter asleep in libc's futex wait skips the caller of pthread_mutex_lock.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o offcpu_lock assets/offcpu_lock.c
 * Run:   ./offcpu_lock SECONDS   (wall time, default 2) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include "workload.h"

#define WAITERS 3
#define BURST_NS 3000000LL
#define REST_NS 1000000L
#define OUTSIDE_NS 500000L

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long shared_counter;
static long long end_time;

struct thread_clock {
    int tid;
    long long cpu_ns, elapsed_ns;
};

struct waiter {
    pthread_t thread;
    unsigned long long rng;
    long long often_ns, rarely_ns;
    unsigned long often_calls, rarely_calls;
    struct thread_clock clock;
};

/* Spins until CLOCK_MONOTONIC reaches `deadline`, in chunks of work long enough that the clock reads cost
 * little of it. */
#define SPIN_UNTIL(deadline, K)                                                                              \
    do {                                                                                                     \
        long long until = (deadline);                                                                        \
        unsigned long x = sink + (K);                                                                        \
        while (clock_ns(CLOCK_MONOTONIC) < until)                                                            \
            for (int i = 0; i < 2000; i++)                                                                   \
                x = x * 6364136223846793005UL + (K);                                                         \
        sink = x;                                                                                            \
    } while (0)

/* The caller's time inside pthread_mutex_lock is measured around the call; the clock read after it also
 * keeps the call from being a tail call. */
__attribute__((noinline, noclone)) void wait_often(struct waiter *w) {
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&lock);
    long long t1 = clock_ns(CLOCK_MONOTONIC);
    shared_counter += 3;
    pthread_mutex_unlock(&lock);
    w->often_ns += t1 - t0;
    w->often_calls++;
}

__attribute__((noinline, noclone)) void wait_rarely(struct waiter *w) {
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&lock);
    long long t1 = clock_ns(CLOCK_MONOTONIC);
    shared_counter += 5;
    pthread_mutex_unlock(&lock);
    w->rarely_ns += t1 - t0;
    w->rarely_calls++;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, noclone)) void pause_outside(void) {
    struct timespec ts = {0, OUTSIDE_NS};
    nanosleep(&ts, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, noclone)) void hold_lock(void) {
    pthread_mutex_lock(&lock);
    SPIN_UNTIL(clock_ns(CLOCK_MONOTONIC) + BURST_NS, 13);
    pthread_mutex_unlock(&lock);
}

__attribute__((noinline, noclone)) void holder_rest(void) {
    struct timespec ts = {0, REST_NS};
    nanosleep(&ts, NULL);
    __asm__ volatile("" ::: "memory");
}

static void finish(struct thread_clock *c, long long start) {
    c->tid = gettid();
    c->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    c->elapsed_ns = clock_ns(CLOCK_MONOTONIC) - start;
}

static void *holder(void *arg) {
    long long start = clock_ns(CLOCK_MONOTONIC);
    while (clock_ns(CLOCK_MONOTONIC) < end_time) {
        hold_lock();
        holder_rest();
    }
    finish(arg, start);
    return NULL;
}

/* xorshift64: a draw per take, 3 in 4 for wait_often. */
static unsigned long long draw(unsigned long long *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *waiter(void *arg) {
    struct waiter *w = arg;
    long long start = clock_ns(CLOCK_MONOTONIC);
    while (clock_ns(CLOCK_MONOTONIC) < end_time) {
        if (draw(&w->rng) % 4 != 0)
            wait_often(w);
        else
            wait_rarely(w);
        pause_outside();
    }
    finish(&w->clock, start);
    return NULL;
}

int main(int argc, char **argv) {
    long long start = clock_ns(CLOCK_MONOTONIC);
    end_time = start + (long long)((argc > 1 ? atof(argv[1]) : 2.0) * 1e9);
    struct thread_clock holder_clock, main_clock;
    struct waiter w[WAITERS] = {0};
    pthread_t h;
    pthread_create(&h, NULL, holder, &holder_clock);
    for (int i = 0; i < WAITERS; i++) {
        w[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
        pthread_create(&w[i].thread, NULL, waiter, &w[i]);
    }
    pthread_join(h, NULL);
    for (int i = 0; i < WAITERS; i++)
        pthread_join(w[i].thread, NULL);
    finish(&main_clock, start);

    long long often = 0, rarely = 0;
    unsigned long often_calls = 0, rarely_calls = 0;
    for (int i = 0; i < WAITERS; i++) {
        often += w[i].often_ns;
        rarely += w[i].rarely_ns;
        often_calls += w[i].often_calls;
        rarely_calls += w[i].rarely_calls;
    }
    printf("lock caller=wait_often calls=%lu lock_ns=%lld\n", often_calls, often);
    printf("lock caller=wait_rarely calls=%lu lock_ns=%lld\n", rarely_calls, rarely);
    printf("thread tid=%d role=holder cpu_ns=%lld elapsed_ns=%lld\n", holder_clock.tid, holder_clock.cpu_ns,
           holder_clock.elapsed_ns);
    for (int i = 0; i < WAITERS; i++)
        printf("thread tid=%d role=waiter cpu_ns=%lld elapsed_ns=%lld\n", w[i].clock.tid, w[i].clock.cpu_ns,
               w[i].clock.elapsed_ns);
    printf("thread tid=%d role=main cpu_ns=%lld elapsed_ns=%lld\n", main_clock.tid, main_clock.cpu_ns,
           main_clock.elapsed_ns);
    return 0;
}
