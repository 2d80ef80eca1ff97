/* Runnable against blocked, known by construction. The process pins itself to two CPUs (the first two it may
 * run on; one where it may use only one), then runs four CPU-bound threads, each spinning in a function of its
 * own (spin_a, spin_b, spin_c, spin_d) for SECONDS of wall time, and one thread that sleeps 20 ms at a time in
 * doze(). Four threads that never block share two CPUs: each is off CPU about half of the time, and all of
 * that time it is runnable, preempted inside its spin function. The sleeper gives the CPU up: its off-CPU time
 * is blocked, under doze.
 *
 * Every thread measures its own CPU time (CLOCK_THREAD_CPUTIME_ID) and elapsed time (CLOCK_MONOTONIC from the
 * start of its thread function; of main for the main thread), the sleeper its time asleep (CLOCK_MONOTONIC
 * around nanosleep). Printed at exit, one `key=value` line each (nanoseconds):
 *   busy cpus=N
 *   thread tid=T role=spin_a|spin_b|spin_c|spin_d|sleeper|main cpu_ns=N elapsed_ns=N
 *   sleep asleep_ns=N naps=N
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o offcpu_busy assets/offcpu_busy.c
 * Run:   ./offcpu_busy SECONDS   (wall time, default 2) */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#include "workload.h"

static long long end_time;

struct thread_clock {
    const char *role;
    int tid;
    long long cpu_ns, elapsed_ns;
};

/* Work in chunks long enough that the clock reads cost little of it (a few microseconds each). */
#define SPIN_BODY(K)                                                                                         \
    do {                                                                                                     \
        unsigned long x = sink + (K);                                                                        \
        while (clock_ns(CLOCK_MONOTONIC) < end_time)                                                         \
            for (int i = 0; i < 5000; i++)                                                                   \
                x = x * 6364136223846793005UL + (K);                                                         \
        sink = x;                                                                                            \
    } while (0)

__attribute__((noinline, noclone)) void spin_a(void) { SPIN_BODY(1); }
__attribute__((noinline, noclone)) void spin_b(void) { SPIN_BODY(3); }
__attribute__((noinline, noclone)) void spin_c(void) { SPIN_BODY(5); }
__attribute__((noinline, noclone)) void spin_d(void) { SPIN_BODY(7); }

static long long asleep_ns;
static unsigned long naps;

__attribute__((noinline, noclone)) void doze(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    nanosleep(&ts, NULL);
    asleep_ns += clock_ns(CLOCK_MONOTONIC) - t0;
    naps++;
}

static void finish(struct thread_clock *c, long long start) {
    c->tid = gettid();
    c->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    c->elapsed_ns = clock_ns(CLOCK_MONOTONIC) - start;
}

struct job {
    void (*run)(void);
    struct thread_clock clock;
};

static void *spinner(void *arg) {
    struct job *job = arg;
    long long start = clock_ns(CLOCK_MONOTONIC);
    job->run();
    finish(&job->clock, start);
    return NULL;
}

static void *sleeper(void *arg) {
    struct job *job = arg;
    long long start = clock_ns(CLOCK_MONOTONIC);
    while (clock_ns(CLOCK_MONOTONIC) < end_time)
        doze();
    finish(&job->clock, start);
    return NULL;
}

/* Keeps the first two CPUs of the allowed set (inherited by the threads created after); returns how many. */
static int pin_to_two_cpus(void) {
    cpu_set_t allowed, two;
    CPU_ZERO(&two);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return 0;
    int kept = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && kept < 2; cpu++)
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &two);
            kept++;
        }
    return sched_setaffinity(0, sizeof two, &two) == 0 ? kept : 0;
}

int main(int argc, char **argv) {
    long long start = clock_ns(CLOCK_MONOTONIC);
    end_time = start + (long long)((argc > 1 ? atof(argv[1]) : 2.0) * 1e9);
    int cpus = pin_to_two_cpus();
    struct job jobs[5] = {
        {spin_a, {.role = "spin_a"}}, {spin_b, {.role = "spin_b"}}, {spin_c, {.role = "spin_c"}},
        {spin_d, {.role = "spin_d"}}, {NULL, {.role = "sleeper"}},
    };
    pthread_t t[5];
    for (int i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, jobs[i].run ? spinner : sleeper, &jobs[i]);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    struct thread_clock main_clock = {.role = "main"};
    finish(&main_clock, start);

    printf("busy cpus=%d\n", cpus);
    for (int i = 0; i < 5; i++)
        printf("thread tid=%d role=%s cpu_ns=%lld elapsed_ns=%lld\n", jobs[i].clock.tid, jobs[i].clock.role,
               jobs[i].clock.cpu_ns, jobs[i].clock.elapsed_ns);
    printf("thread tid=%d role=main cpu_ns=%lld elapsed_ns=%lld\n", main_clock.tid, main_clock.cpu_ns,
           main_clock.elapsed_ns);
    printf("sleep asleep_ns=%lld naps=%lu\n", asleep_ns, naps);
    return 0;
}
