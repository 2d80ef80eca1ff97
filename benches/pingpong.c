/* A switch-heavy workload for benches/offcpu_vs_perf.sh: two threads pinned to one CPU hand a token back and
 * forth through two pipes, so every hand-over is a context switch (a blocked reader woken, the writer
 * blocking next). A fixed number of hand-overs; it prints its own wall time, the process's CPU time and the
 * switches per second, so a profiler's start-up and shutdown are left out.
 * Build: cc -O2 -g -fno-omit-frame-pointer -pthread -o pingpong benches/pingpong.c
 * Run:   ./pingpong ROUNDS [CPU]    (a round is two hand-overs; CPU defaults to 0)
 * Output: WALL_SECONDS CPU_SECONDS SWITCHES_PER_SECOND */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static unsigned long rounds;
static int cpu;

static double clock_seconds(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        exit(1);
    }
}

/* The token's two ends: each blocks in read() until the other side writes. */
__attribute__((noinline)) static void hand_over(int to, int from) {
    char token = 1;
    if (write(to, &token, 1) != 1 || read(from, &token, 1) != 1) {
        perror("pipe");
        exit(1);
    }
}

__attribute__((noinline)) static void answer(int from, int to) {
    char token;
    if (read(from, &token, 1) != 1 || write(to, &token, 1) != 1) {
        perror("pipe");
        exit(1);
    }
}

static void *responder(void *arg) {
    (void)arg;
    pin();
    for (unsigned long i = 0; i < rounds; i++)
        answer(ping[0], pong[1]);
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    cpu = argc > 2 ? atoi(argv[2]) : 0;
    if (pipe(ping) || pipe(pong)) {
        perror("pipe");
        return 1;
    }
    pin();
    pthread_t t;
    pthread_create(&t, NULL, responder, NULL);
    double w0 = clock_seconds(CLOCK_MONOTONIC), c0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (unsigned long i = 0; i < rounds; i++)
        hand_over(ping[1], pong[0]);
    double wall = clock_seconds(CLOCK_MONOTONIC) - w0;
    double cpu_time = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    pthread_join(t, NULL);
    printf("%.6f %.6f %.0f\n", wall, cpu_time, 2.0 * rounds / wall);
    return 0;
}
