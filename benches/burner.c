/* A load for benches/load.sh: N threads (default 64) that each burn CPU through a few call levels until the
 * given number of seconds has passed.
 * Built by the script: cc -O2 -g -fno-omit-frame-pointer -pthread -o burner benches/burner.c */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;
static double deadline;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static unsigned long leaf(unsigned long x) {
    for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

__attribute__((noinline)) static unsigned long middle(unsigned long x, int depth) {
    return depth == 0 ? leaf(x) : middle(x + depth, depth - 1) + 1;
}

static void *burn(void *arg) {
    unsigned long x = (unsigned long)arg;
    while (now() < deadline) x = middle(x, (int)(x % 8));
    sink += x;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 64;
    double seconds = argc > 2 ? atof(argv[2]) : 60;
    if (threads < 1) threads = 1;
    deadline = now() + seconds;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t) return 1;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, burn, (void *)(unsigned long)(i + 1));
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    return 0;
}
