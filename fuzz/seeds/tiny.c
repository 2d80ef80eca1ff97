/* Seed program of the elf_symbolize and unwind_tables fuzz targets: a few functions, one inlined, one
 * recursive, running long enough to be sampled (about 20 ms). */
#include <stdlib.h>

static inline int square(int x) { return x * x; }

__attribute__((noinline)) int leaf(int x) { return square(x) + 1; }

__attribute__((noinline)) int rec(int n) { return n <= 0 ? leaf(n) : rec(n - 1) + 1; }

int main(int argc, char **argv) {
    (void)argv;
    int s = 0;
    for (int i = 0; i < argc << 22; i++)
        s += rec(i % 7);
    return s < 0 ? EXIT_FAILURE : EXIT_SUCCESS; /* the sum keeps the loop from being optimized away */
}
