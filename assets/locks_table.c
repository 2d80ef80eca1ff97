/* Lock contention whose truth is known by construction and measured by the workload itself (issue 14).
 *
 * Two global mutexes. `table_lock` is heavily contended: an updater thread holds it 4 ms at a time in
 * slow_update() (asleep under the lock, as code waiting for I/O with a lock held), with 2 ms rests; a lookup
 * thread holds it 50 us at a time in fast_lookup() (spinning), with 2 ms rests. `stats_lock` is lightly
 * contended: a flusher holds it 200 us at a time in stats_flush(), every 5 ms. Three reader threads take
 * table_lock, then stats_lock, each time through reader_often() or reader_rarely(), chosen by a per-thread
 * random draw 3 times out of 4 and 1 out of 4 (a draw, not a fixed sequence, so that which call meets the
 * updater cannot lock into step with it), holding each lock a few microseconds and resting 1 ms between
 * takes. So table_lock's waits are mostly readers waiting out slow_update, about 3/4 of the readers' in
 * reader_often, and stats_lock's waits are far fewer and shorter.
 *
 * What a contended wait is. stacktop's probes see the waits that enter glibc's __lll_lock_wait, which
 * pthread_mutex_lock calls only when its compare-and-swap finds the lock taken. The workload counts the same
 * ones: every take first tries pthread_mutex_trylock; one that succeeds is uncontended (counted as a take, not
 * a wait, and never reaches __lll_lock_wait); only when it fails does the workload read CLOCK_MONOTONIC, call
 * pthread_mutex_lock, and read the clock again: that is one wait, charged to the lock and to the function that
 * took it, unless pthread_mutex_lock took it without __lll_lock_wait: when the lock was freed between the
 * failed try and the call (most often because the thread was preempted in between, on a busy machine), its
 * compare-and-swap succeeds and leaves the lock word (glibc's `__data.__lock`) at 1, where __lll_lock_wait
 * always leaves it at 2 (its exchange marks "threads wait"). So a take counts as a wait only when the word
 * reads 2 right after pthread_mutex_lock returned; the others are counted apart (`fast=N`). (A thread that
 * arrives in the nanoseconds between the fast path's return and that read, and marks the word, would make it
 * count a fast take as a wait: rare, and then as short as the fast path.) Each wait also includes the clock
 * reads and, under stacktop, the probes' own traps at its two ends, a few microseconds each.
 *
 * Who caused a wait, as Go's mutex profile and stacktop define it: the thread whose unlock woke a waiter (the
 * unlock that called glibc's __lll_lock_wake, which pthread_mutex_unlock does when the lock word says that
 * threads wait, value 2) last before the waiter got the lock. Each lock keeps a `last_waker` variable, read
 * and written only under the lock: just before unlocking, a function whose unlock will wake (the lock word,
 * glibc's `__data.__lock`, is 2) writes its name there; a thread that waited reads it right after it got the
 * lock and charges its wait to that function. (A plain "last releaser" would differ when a thread takes the
 * lock between the wake and the woken waiter's return, without waking anyone: the waker still caused the
 * wait.) A waiter's own unlock after a wait always wakes (its wait set the word to 2): the readers, too, cause
 * waits. Waits with no waker yet (none seen since the start) are charged to `none`.
 *
 * Hold times: from getting a lock to just before unlocking it, per lock and function.
 *
 * Checked against the probes themselves, independently of stacktop (2026-12, glibc 2.36): perf probes on
 * __lll_lock_wait's entry (futex=%di) and return and on __lll_lock_wake's entry, recorded with
 * `perf record --call-graph dwarf` over a 2.5 s run and paired by a script: the same 1570 waits on table_lock
 * as the workload counted, 6408.5 ms against its 6418.3 ms, every caller's share and every waker's share of
 * the caused wait within 0.02 points of the workload's.
 *
 * Output at exit, one `key=value` line each (nanoseconds; names as in this file):
 *   wait lock=L caller=F takes=N waits=N wait_ns=N longest_ns=N fast=N
 *   caused lock=L holder=F waits=N caused_ns=N
 *   hold lock=L holder=F holds=N hold_ns=N
 *   lock name=L address=0xADDR takes=N waits=N wait_ns=N longest_ns=N
 * one line per (lock, function) that took or woke it, `lock` lines last, table_lock first.
 *
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o locks_table assets/locks_table.c
 * Run:   ./locks_table SECONDS          contended for SECONDS (default 3), measured from start to end.
 *        ./locks_table SECONDS window   for an attach with -p: contended at once, unmeasured, until SIGUSR1;
 *                                       then every thread stops outside the locks and the workload prints
 *                                       `paused`; at SIGUSR2 it runs SECONDS measured, then stops and prints.
 *        In both, the figures cover every wait from the start (or SIGUSR2) to the end of the process, and no
 *        thread waits for a lock while paused, so a recording attached during the pause sees the same waits. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "workload.h"

#define READERS 3
#define SLOW_HOLD_NS 4000000L
#define SLOW_REST_NS 2000000L
#define FAST_HOLD_NS 50000LL
#define FAST_REST_NS 2000000L
#define READ_HOLD_NS 3000LL
#define READ_REST_NS 1000000L
#define FLUSH_HOLD_NS 200000LL
#define FLUSH_REST_NS 5000000L

pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

enum { TABLE, STATS, LOCKS };
enum { SLOW_UPDATE, FAST_LOOKUP, READER_OFTEN, READER_RARELY, STATS_FLUSH, NONE, FUNCS };
static const char *const lock_names[LOCKS] = {"table_lock", "stats_lock"};
static const char *const func_names[FUNCS] = {
    [SLOW_UPDATE] = "slow_update",     [FAST_LOOKUP] = "fast_lookup", [READER_OFTEN] = "reader_often",
    [READER_RARELY] = "reader_rarely", [STATS_FLUSH] = "stats_flush", [NONE] = "none"};
static pthread_mutex_t *const mutexes[LOCKS] = {&table_lock, &stats_lock};

/* The function whose unlock last woke a waiter, per lock; read and written under that lock. */
static int last_waker[LOCKS] = {NONE, NONE};
static volatile unsigned long table[64], stats_reads;

/* What one thread measured; summed by main at the end. */
struct tally {
    unsigned long takes[LOCKS][FUNCS], waits[LOCKS][FUNCS], fast[LOCKS][FUNCS], caused[LOCKS][FUNCS],
        holds[LOCKS][FUNCS];
    long long wait_ns[LOCKS][FUNCS], longest_ns[LOCKS][FUNCS], caused_ns[LOCKS][FUNCS],
        hold_ns[LOCKS][FUNCS];
};

enum { RUN, PAUSE, STOP };
static atomic_int phase = RUN;
static atomic_int parked;

/* Takes `lock` for `func`, timing it when it must wait (see the header); its value is the time it got the
 * lock. A macro, not a function, so that no inlined frame stands between pthread_mutex_lock and `func`. */
#define TAKE(t, lock, func)                                                                                  \
    ({                                                                                                       \
        pthread_mutex_t *m_ = mutexes[lock];                                                                 \
        long long got_;                                                                                      \
        (t)->takes[lock][func]++;                                                                            \
        if (pthread_mutex_trylock(m_) == 0) {                                                                \
            got_ = clock_ns(CLOCK_MONOTONIC);                                                                \
        } else {                                                                                             \
            long long t0_ = clock_ns(CLOCK_MONOTONIC);                                                       \
            pthread_mutex_lock(m_);                                                                          \
            got_ = clock_ns(CLOCK_MONOTONIC);                                                                \
            if (__atomic_load_n(&m_->__data.__lock, __ATOMIC_RELAXED) == 2)                                  \
                charge_wait((t), lock, func, got_ - t0_);                                                    \
            else                                                                                             \
                (t)->fast[lock][func]++;                                                                     \
        }                                                                                                    \
        got_;                                                                                                \
    })

/* Releases `lock` taken by `func` at `since`. The barrier after the unlock keeps it from being a tail call,
 * so that `func` is on the unlocking stack. */
#define GIVE(t, lock, func, since)                                                                           \
    do {                                                                                                     \
        pthread_mutex_t *m_ = mutexes[lock];                                                                 \
        if (__atomic_load_n(&m_->__data.__lock, __ATOMIC_RELAXED) == 2)                                      \
            last_waker[lock] = (func);                                                                       \
        (t)->holds[lock][func]++;                                                                            \
        (t)->hold_ns[lock][func] += clock_ns(CLOCK_MONOTONIC) - (since);                                     \
        pthread_mutex_unlock(m_);                                                                            \
        __asm__ volatile("" ::: "memory");                                                                   \
    } while (0)

/* A wait of `func` for `lock`, charged to it and to the last waker. Called under the lock. */
static void charge_wait(struct tally *t, int lock, int func, long long waited) {
    int waker = last_waker[lock];
    t->waits[lock][func]++;
    t->wait_ns[lock][func] += waited;
    if (waited > t->longest_ns[lock][func])
        t->longest_ns[lock][func] = waited;
    t->caused[lock][waker]++;
    t->caused_ns[lock][waker] += waited;
}

static void nap(long ns) {
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Spins until CLOCK_MONOTONIC reaches `deadline`, in chunks of work long enough that the clock reads cost
 * little of it. */
#define SPIN_UNTIL(deadline, K)                                                                              \
    do {                                                                                                     \
        long long until = (deadline);                                                                        \
        unsigned long x = sink + (K);                                                                        \
        while (clock_ns(CLOCK_MONOTONIC) < until)                                                            \
            for (int i = 0; i < 200; i++)                                                                    \
                x = x * 6364136223846793005UL + (K);                                                         \
        sink = x;                                                                                            \
    } while (0)

__attribute__((noinline, noclone)) void slow_update(struct tally *t) {
    long long since = TAKE(t, TABLE, SLOW_UPDATE);
    nap(SLOW_HOLD_NS);
    for (int i = 0; i < 64; i++)
        table[i] += 7;
    GIVE(t, TABLE, SLOW_UPDATE, since);
}

__attribute__((noinline, noclone)) void fast_lookup(struct tally *t) {
    long long since = TAKE(t, TABLE, FAST_LOOKUP);
    SPIN_UNTIL(since + FAST_HOLD_NS, 11);
    GIVE(t, TABLE, FAST_LOOKUP, since);
}

__attribute__((noinline, noclone)) void reader_often(struct tally *t) {
    long long since = TAKE(t, TABLE, READER_OFTEN);
    SPIN_UNTIL(since + READ_HOLD_NS, 3);
    GIVE(t, TABLE, READER_OFTEN, since);
    since = TAKE(t, STATS, READER_OFTEN);
    stats_reads += 3;
    GIVE(t, STATS, READER_OFTEN, since);
}

__attribute__((noinline, noclone)) void reader_rarely(struct tally *t) {
    long long since = TAKE(t, TABLE, READER_RARELY);
    SPIN_UNTIL(since + READ_HOLD_NS, 5);
    GIVE(t, TABLE, READER_RARELY, since);
    since = TAKE(t, STATS, READER_RARELY);
    stats_reads += 5;
    GIVE(t, STATS, READER_RARELY, since);
}

__attribute__((noinline, noclone)) void stats_flush(struct tally *t) {
    long long since = TAKE(t, STATS, STATS_FLUSH);
    SPIN_UNTIL(since + FLUSH_HOLD_NS, 17);
    GIVE(t, STATS, STATS_FLUSH, since);
}

/* At the top of every loop, outside the locks: whether to go on, parking while the workload is paused. */
static int going_on(void) {
    if (atomic_load(&phase) != PAUSE)
        return atomic_load(&phase) == RUN;
    atomic_fetch_add(&parked, 1);
    while (atomic_load(&phase) == PAUSE)
        nap(200000);
    atomic_fetch_sub(&parked, 1);
    return atomic_load(&phase) == RUN;
}

struct worker {
    pthread_t thread;
    unsigned long long rng;
    struct tally tally;
};

static void *updater(void *arg) {
    struct worker *w = arg;
    while (going_on()) {
        slow_update(&w->tally);
        nap(SLOW_REST_NS);
    }
    return NULL;
}

static void *lookup(void *arg) {
    struct worker *w = arg;
    while (going_on()) {
        fast_lookup(&w->tally);
        nap(FAST_REST_NS);
    }
    return NULL;
}

static void *flusher(void *arg) {
    struct worker *w = arg;
    while (going_on()) {
        stats_flush(&w->tally);
        nap(FLUSH_REST_NS);
    }
    return NULL;
}

/* xorshift64: a draw per take, 3 in 4 for reader_often. */
static unsigned long long draw(unsigned long long *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *reader(void *arg) {
    struct worker *w = arg;
    while (going_on()) {
        if (draw(&w->rng) % 4 != 0)
            reader_often(&w->tally);
        else
            reader_rarely(&w->tally);
        nap(READ_REST_NS);
    }
    return NULL;
}

#define WORKERS (3 + READERS)
static struct worker workers[WORKERS];

/* Waits for `sig` (blocked in every thread, so only this wait takes it). */
static void wait_signal(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    int got;
    while (sigwait(&set, &got) != 0 || got != sig)
        ;
}

static void sleep_until(long long deadline) {
    struct timespec ts = {deadline / 1000000000LL, deadline % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int window = argc > 2 && strcmp(argv[2], "window") == 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    void *(*roles[WORKERS])(void *) = {updater, lookup, flusher};
    for (int i = 0; i < WORKERS; i++) {
        workers[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
        pthread_create(&workers[i].thread, NULL, roles[i] ? roles[i] : reader, &workers[i]);
    }
    if (window) {
        wait_signal(SIGUSR1);
        atomic_store(&phase, PAUSE);
        while (atomic_load(&parked) < WORKERS)
            nap(100000);
        /* Every thread is parked outside the locks: forget what the unmeasured part did. */
        for (int i = 0; i < WORKERS; i++)
            memset(&workers[i].tally, 0, sizeof workers[i].tally);
        for (int l = 0; l < LOCKS; l++)
            last_waker[l] = NONE;
        printf("paused\n");
        fflush(stdout);
        wait_signal(SIGUSR2);
        atomic_store(&phase, RUN);
    }
    sleep_until(clock_ns(CLOCK_MONOTONIC) + (long long)(seconds * 1e9));
    atomic_store(&phase, STOP);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i].thread, NULL);

    struct tally sum = {0};
    for (int i = 0; i < WORKERS; i++)
        for (int l = 0; l < LOCKS; l++)
            for (int f = 0; f < FUNCS; f++) {
                struct tally *t = &workers[i].tally;
                sum.takes[l][f] += t->takes[l][f];
                sum.waits[l][f] += t->waits[l][f];
                sum.fast[l][f] += t->fast[l][f];
                sum.wait_ns[l][f] += t->wait_ns[l][f];
                if (t->longest_ns[l][f] > sum.longest_ns[l][f])
                    sum.longest_ns[l][f] = t->longest_ns[l][f];
                sum.caused[l][f] += t->caused[l][f];
                sum.caused_ns[l][f] += t->caused_ns[l][f];
                sum.holds[l][f] += t->holds[l][f];
                sum.hold_ns[l][f] += t->hold_ns[l][f];
            }
    for (int l = 0; l < LOCKS; l++)
        for (int f = 0; f < FUNCS; f++) {
            if (sum.takes[l][f])
                printf("wait lock=%s caller=%s takes=%lu waits=%lu wait_ns=%lld longest_ns=%lld fast=%lu\n",
                       lock_names[l], func_names[f], sum.takes[l][f], sum.waits[l][f], sum.wait_ns[l][f],
                       sum.longest_ns[l][f], sum.fast[l][f]);
            if (sum.caused[l][f])
                printf("caused lock=%s holder=%s waits=%lu caused_ns=%lld\n", lock_names[l], func_names[f],
                       sum.caused[l][f], sum.caused_ns[l][f]);
            if (sum.holds[l][f])
                printf("hold lock=%s holder=%s holds=%lu hold_ns=%lld\n", lock_names[l], func_names[f],
                       sum.holds[l][f], sum.hold_ns[l][f]);
        }
    for (int l = 0; l < LOCKS; l++) {
        unsigned long takes = 0, waits = 0;
        long long wait_ns = 0, longest = 0;
        for (int f = 0; f < FUNCS; f++) {
            takes += sum.takes[l][f];
            waits += sum.waits[l][f];
            wait_ns += sum.wait_ns[l][f];
            if (sum.longest_ns[l][f] > longest)
                longest = sum.longest_ns[l][f];
        }
        printf("lock name=%s address=%p takes=%lu waits=%lu wait_ns=%lld longest_ns=%lld\n", lock_names[l],
               (void *)mutexes[l], takes, waits, wait_ns, longest);
    }
    return 0;
}
