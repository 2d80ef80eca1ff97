/* The library that dlopen.c loads late: lib_hot does 3 units for every 1 of lib_cool.
 * Build: cc -O2 -g -fno-omit-frame-pointer -shared -fPIC -o libstacktop_dl.so assets/dlopen_lib.c */
#include "workload.h"

__attribute__((noinline)) void lib_hot(unsigned long units) { BURN_BODY(23); }
__attribute__((noinline)) void lib_cool(unsigned long units) { BURN_BODY(29); }

void lib_round(void) {
    lib_hot(3);
    lib_cool(1);
}
