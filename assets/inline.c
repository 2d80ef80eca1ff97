/* A force-inlined helper inside a non-inlined caller, for the symbolizer's inline-frame tests.
 *
 * Built by tests/symbolize.rs at test time:
 *     cc -O2 -g -o inline assets/inline.c
 * (plus -no-pie and -shared variants, and stripped, split-debug and compressed-debug copies made with strip
 * and objcopy). `inline SECONDS` sleeps first, so a test can symbolize a live process's deleted binary.
 * The @-markers in comments let the test find line numbers without hard-coding them.
 */
#include <stdlib.h>
#include <unistd.h>

static inline __attribute__((always_inline)) unsigned mix(unsigned h, unsigned x)
{
    h ^= x;          /* @mix-body */
    h *= 16777619u;  /* @mix-body */
    return h;        /* @mix-body */
}

__attribute__((noinline)) unsigned hash_words(const unsigned *p, long n)
{
    unsigned h = 2166136261u;
    for (long i = 0; i < n; i++)
        h = mix(h, p[i]); /* @mix-call */
    return h;
}

int main(int argc, char **argv)
{
    unsigned words[64];
    if (argc > 1)
        sleep((unsigned)atoi(argv[1]));
    for (int i = 0; i < 64; i++)
        words[i] = (unsigned)(argc * i) ^ (unsigned)(size_t)argv;
    return (int)(hash_words(words, 64) & 0x7f);
}
