// A busy loop with a known call graph: main -> burn -> spin_inner (and thread_main -> burn -> spin_inner
// in extra threads), for acquisition tests.
// Built by tests/acquire.rs at test time:
//   cc -O1 -g -fno-omit-frame-pointer -pthread -o spin assets/spin.c
// Usage: spin [SECONDS [THREADS]]   busy-loops for SECONDS of CPU time (default 1) in the main thread
//                                   and THREADS - 1 more threads started at once (default 1 thread).
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* CPU time of the calling thread: each thread burns its own budget, however busy the machine is. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long spin_inner(unsigned long x) {
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    }
    return x;
}

__attribute__((noinline)) unsigned long burn(double seconds) {
    unsigned long x = 1;
    double end = now() + seconds;
    while (now() < end) {
        x = spin_inner(x);
    }
    return x;
}

static double seconds = 1.0;

static void *thread_main(void *arg) {
    (void)arg;
    burn(seconds);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t tids[64];
    int started = 0;
    for (int i = 1; i < threads && started < 64; i++) {
        if (pthread_create(&tids[started], NULL, thread_main, NULL) == 0) started++;
    }
    unsigned long x = burn(seconds);
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    return (int)(x & 1) * 0;
}
