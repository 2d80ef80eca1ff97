/* Threads that serve events as memcached's workers do: an event loop calls a handler through a function
 * pointer (libevent's callbacks), the handler calls `drive` directly, and `drive`, whose frame holds a
 * 16.5 KiB buffer (memcached's drive_machine holds one), runs one event's work and returns to the loop. The
 * default 16 KiB copy of the stack ends inside that buffer, below drive's return address: every walk runs off
 * its copy. By the time it is continued the thread is in another event (the work alternates between parse
 * and reply, so the words under the buffer differ) or back in the loop, and the copy's words are no longer in
 * live memory as copied; what stays is the buffer's frame at one address, returning into the handler.
 *
 * Two threads (loop-1, loop-2) run loop -> on_event (through a pointer) -> drive (the buffer) -> parse
 * (3 units) or reply (1 unit): parse has 3/4 of the samples, reply 1/4, every one under drive's buffer.
 * Built without frame pointers and without gcc's stack-clash probes.
 * Build: cc -O2 -g -fomit-frame-pointer -fno-stack-clash-protection -pthread -o event_loop assets/event_loop.c
 * Run:   ./event_loop CPU_SECONDS    (both threads together) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "workload.h"

#define THREADS 2
/* A unit is 200,000 steps: an event is a few hundred microseconds of work. */
#define EVENT_UNITS 1

static double end_time;

__attribute__((noinline)) void parse(unsigned long units) { BURN_BODY(61); }

__attribute__((noinline)) void reply(unsigned long units) { BURN_BODY(67); }

__attribute__((noinline)) void drive(int round) {
    volatile char buffer[16896];
    memset((char *)buffer, round, sizeof buffer); /* touched: the kernel copies the whole 16 KiB */
    if (round % 4)
        parse(EVENT_UNITS);
    else
        reply(EVENT_UNITS);
    __asm__ volatile("" ::"r"(buffer) : "memory"); /* not a tail call: drive keeps its frame */
}

__attribute__((noinline)) void on_event(int round) {
    drive(round);
    __asm__ volatile("" ::: "memory");
}

static void (*volatile handler)(int) = on_event;

__attribute__((noinline)) void loop(void) {
    for (int round = 0; cpu_seconds() < end_time; round++)
        handler(round);
}

static void *worker(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "loop-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    loop();
    return NULL;
}

int main(int argc, char **argv) {
    end_time = cpu_seconds() + duration_arg(argc, argv);
    pthread_t threads[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
