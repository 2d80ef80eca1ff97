/* JIT code as profilers meet it: two hot loops whose machine code is copied at run time into anonymous memory
 * and named only by /tmp/perf-PID.map, the way V8 (--perf-basic-prof), LuaJIT, the JVM (perf-map-agent) and
 * .NET name theirs. jit_rwx_loop is copied into a page mapped read-write-execute; jit_mprotect_loop into a
 * read-write page then mprotect'ed to read-execute (W^X), which is also named [anon:jit_mprotect] in
 * /proc/PID/maps where the kernel can name anonymous memory. main calls them with 3 and 1 units of the same
 * work per round, so they share the time 75/25. Each loop keeps a frame pointer (push %rbp; mov %rsp,%rbp),
 * as V8's code does, so a walk by frame pointers finds main above it. x86-64 only.
 * Once its code is in place it prints "map /tmp/perf-PID.map" on stdout. The map is left behind for
 * `perf report` to read: whoever runs the program removes it.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o jit assets/jit.c
 * Run:   ./jit [SECONDS] [late]   (CPU seconds in the loops, default 2; with `late` the map's lines are
 *                                 written only halfway through, as perf-map-agent dumps a running JVM's) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "workload.h"

#if !defined(__x86_64__)
#error "jit.c emits x86-64 machine code"
#endif

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* unsigned long loop(unsigned long iterations, unsigned long x): iterations (> 0) of x = x * M + K, as
 * BURN_BODY does. */
static const unsigned char loop_code[] = {
    0x55,                                     /*  0: push %rbp */
    0x48, 0x89, 0xe5,                         /*  1: mov %rsp,%rbp */
    0x48, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0,       /*  4: movabs $M,%rcx (M at 6) */
    0x48, 0x0f, 0xaf, 0xf1,                   /* 14: imul %rcx,%rsi */
    0x48, 0x83, 0xc6, 0,                      /* 18: add $K,%rsi (K at 21) */
    0x48, 0xff, 0xcf,                         /* 22: dec %rdi */
    0x75, 0xf3,                               /* 25: jne 14 */
    0x48, 0x89, 0xf0,                         /* 27: mov %rsi,%rax */
    0x5d,                                     /* 30: pop %rbp */
    0xc3,                                     /* 31: ret */
};
#define MULTIPLIER_AT 6
#define ADDEND_AT 21

typedef unsigned long (*loop_fn)(unsigned long iterations, unsigned long x);

/* "Compiles" a loop adding `addend` into `code`, which must be writable. */
static void emit(unsigned char *code, unsigned char addend) {
    const uint64_t multiplier = 6364136223846793005UL;
    memcpy(code, loop_code, sizeof loop_code);
    memcpy(code + MULTIPLIER_AT, &multiplier, sizeof multiplier);
    code[ADDEND_AT] = addend;
    __builtin___clear_cache((char *)code, (char *)code + sizeof loop_code);
}

static int write_map(const char *path, const void *rwx, const void *mprotected) {
    FILE *map = fopen(path, "w");
    if (!map)
        return -1;
    fprintf(map, "%lx %zx jit_rwx_loop\n", (unsigned long)rwx, sizeof loop_code);
    fprintf(map, "%lx %zx jit_mprotect_loop\n", (unsigned long)mprotected, sizeof loop_code);
    return fclose(map);
}

int main(int argc, char **argv) {
    double seconds = duration_arg(argc, argv);
    int late = argc > 2 && strcmp(argv[2], "late") == 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *rwx =
        mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *mprotected = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rwx == MAP_FAILED || mprotected == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    emit(rwx, 7);
    emit(mprotected, 11);
    if (mprotect(mprotected, page, PROT_READ | PROT_EXEC) != 0) {
        perror("mprotect");
        return 1;
    }
    /* Best effort: kernels without CONFIG_ANON_VMA_NAME refuse, and the mapping stays unnamed. */
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)mprotected, page, "jit_mprotect");
    char map[64];
    snprintf(map, sizeof map, "/tmp/perf-%d.map", (int)getpid());
    if (!late && write_map(map, rwx, mprotected) != 0) {
        perror(map);
        return 1;
    }
    printf("map %s\n", map);
    fflush(stdout);
    loop_fn hot = (loop_fn)rwx, cool = (loop_fn)mprotected;
    unsigned long x = sink;
    double start = cpu_seconds(), end = start + seconds;
    for (double now = start; now < end; now = cpu_seconds()) {
        if (late && now >= start + seconds / 2) {
            if (write_map(map, rwx, mprotected) != 0) {
                perror(map);
                return 1;
            }
            late = 0;
        }
        x = hot(3 * ITER, x);
        x = cool(ITER, x);
    }
    sink = x;
    return 0;
}
