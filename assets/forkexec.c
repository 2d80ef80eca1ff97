/* A parent that forks two children and does fixed work in each, so the CPU shares are known by construction
 * however the three processes are scheduled: the parent runs parent_work (1/4 of the units), a forked child
 * keeps the parent's image and runs forked_work (1/4), and a child that execs this program again runs
 * child_work (1/2).
 * Build: cc -O2 -g -fno-omit-frame-pointer -o forkexec assets/forkexec.c
 * Run:   ./forkexec ROUNDS     (about 0.2 ms per unit; 1000 rounds ~ 0.8 CPU-seconds) */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "workload.h"

__attribute__((noinline)) void parent_work(unsigned long units) { BURN_BODY(13); }
__attribute__((noinline)) void forked_work(unsigned long units) { BURN_BODY(17); }
__attribute__((noinline)) void child_work(unsigned long units) { BURN_BODY(19); }

static void run_rounds(unsigned long rounds, unsigned long units, void (*work)(unsigned long)) {
    for (unsigned long r = 0; r < rounds; r++)
        work(units);
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    if (argc > 2 && strcmp(argv[2], "child") == 0) {
        run_rounds(rounds, 2, child_work);
        return 0;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    pid_t exec_child = fork();
    if (exec_child == 0) {
        execl(self, argv[0], argc > 1 ? argv[1] : "1000", "child", (char *)NULL);
        _exit(127);
    }
    pid_t fork_child = fork();
    if (fork_child == 0) {
        run_rounds(rounds, 1, forked_work);
        _exit(0);
    }
    run_rounds(rounds, 1, parent_work);
    waitpid(exec_child, NULL, 0);
    waitpid(fork_child, NULL, 0);
    return 0;
}
