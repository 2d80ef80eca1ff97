/* A program that copies itself into a memfd whose name holds terminal escape sequences (a window-title change
 * and a bell) and runs that copy, which burns CPU in memfd_work: its code is then mapped from
 * "/memfd:\e]0;pwned\a (deleted)", a file name chosen by the profiled program, not by the user. For the tests
 * that check such names never reach the terminal raw.
 * Build: cc -O2 -g -fno-omit-frame-pointer -o memfd_exec assets/memfd_exec.c
 * Run:   ./memfd_exec [SECONDS]     (CPU seconds in memfd_work, default 2) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "workload.h"

__attribute__((noinline)) void memfd_work(unsigned long units) { BURN_BODY(23); }

int main(int argc, char **argv) {
    double seconds = duration_arg(argc, argv);
    if (argc > 2 && strcmp(argv[2], "in-memfd") == 0) {
        double end = cpu_seconds() + seconds;
        while (cpu_seconds() < end)
            memfd_work(1);
        return 0;
    }
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int mem = memfd_create("\x1b]0;pwned\x07", 0);
    if (self < 0 || mem < 0)
        return 1;
    char buf[65536];
    ssize_t n;
    while ((n = read(self, buf, sizeof buf)) > 0)
        if (write(mem, buf, (size_t)n) != n)
            return 1;
    char *args[] = {argv[0], argc > 1 ? argv[1] : "2", "in-memfd", NULL};
    extern char **environ;
    fexecve(mem, args, environ);
    return 127;
}
