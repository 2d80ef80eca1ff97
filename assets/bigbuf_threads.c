/* Threads whose hot loop runs below a function with a 16 KiB stack buffer that is touched only once, at its
 * lowest page, as memcached's worker threads do. The buffer's other pages are never faulted in, and in the
 * sampling interrupt the kernel cannot fault a page in: its copy of the user stack stops at the first such
 * page, a few hundred bytes above the sampled stack pointer, whatever size was asked. Built without gcc's
 * stack-clash probes (which would touch every page of the buffer) and without frame pointers, so neither the
 * kernel's frame-pointer chain nor a table walk of the copy gets past the buffer to the thread's root.
 *
 * Four threads (worker-1..4) run worker -> serve (the 16 KiB buffer) -> handle -> parse (3 units) or
 * reply (1 unit): parse has 3/4 of the samples, reply 1/4, every one under serve's buffer; main only waits.
 * Build: cc -O2 -g -fomit-frame-pointer -fno-stack-clash-protection -pthread -o bigbuf_threads
 *        assets/bigbuf_threads.c
 * Run:   ./bigbuf_threads CPU_SECONDS    (all threads together) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

#include "workload.h"

#define THREADS 4

static double end_time;

__attribute__((noinline)) void parse(unsigned long units) { BURN_BODY(53); }

__attribute__((noinline)) void reply(unsigned long units) { BURN_BODY(59); }

__attribute__((noinline)) void handle(int round) {
    if (round % 2)
        parse(3);
    else
        reply(1);
    __asm__ volatile("" ::: "memory"); /* not a tail call: handle keeps its frame */
}

__attribute__((noinline)) void serve(void) {
    volatile char buffer[16384];
    buffer[0] = 1; /* the lowest page only: handle's frames sit right under it */
    for (int round = 0; cpu_seconds() < end_time; round++)
        handle(round);
    __asm__ volatile("" ::"r"(buffer) : "memory");
}

static void *worker(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    serve();
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
