/* Spends its time in a library it dlopens after start: samples in lib_hot/lib_cool (3:1) are only
 * symbolized right if the late mapping is followed.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o dlopen assets/dlopen.c -ldl
 * Run:   ./dlopen PATH/TO/libstacktop_dl.so CPU_SECONDS */
#include <dlfcn.h>
#include <stdio.h>
#include "workload.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: dlopen LIBRARY [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void (*round)(void) = (void (*)(void))dlsym(lib, "lib_round");
    if (!round)
        return 1;
    double end = cpu_seconds() + seconds;
    while (cpu_seconds() < end)
        round();
    return 0;
}
