/*
 * children: waits the way shells and debuggers make them.
 *  1. A shell's wait: SIGCHLD blocked, children started with fork and posix_spawn,
 *     then waitpid(-1) until none is left.
 *  2. A debugger's start: the child asks to be traced (PTRACE_TRACEME) and stops;
 *     the parent's plain waitpid(pid) must report the stop (no pidfd says so).
 *  3. A tracer attaching (PTRACE_SEIZE + PTRACE_INTERRUPT) to a child that sleeps.
 * Every line printed is deterministic; a wait that never returns hangs the test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void describe(const char *what, int status)
{
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by %d\n", what, WTERMSIG(status));
    else if (WIFSTOPPED(status))
        printf("%s: stopped by %d\n", what, WSTOPSIG(status));
    else
        printf("%s: status %#x\n", what, status);
}

static void shell_wait(void)
{
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    int sum = 0, reaped = 0;
    for (int i = 1; i <= 20; i++) {
        pid_t pid;
        if (i % 2) {
            pid = fork();
            if (pid == 0)
                _exit(i);
        } else {
            char code[8];
            snprintf(code, sizeof code, "exit %d", i);
            char *argv[] = {"sh", "-c", code, NULL};
            if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
                pid = -1;
        }
        if (pid < 0) {
            perror("start");
            exit(1);
        }
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, 0)) > 0) {
        reaped++;
        sum += WEXITSTATUS(status);
    }
    printf("shell: reaped %d, sum of codes %d, then %s\n", reaped, sum,
           pid < 0 ? strerror(errno) : "?");
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void debugger_start(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(100);
        raise(SIGSTOP);
        _exit(7);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(1);
    }
    describe("traceme", status);
    if (WIFSTOPPED(status)) {
        ptrace(PTRACE_CONT, pid, NULL, NULL);
        waitpid(pid, &status, 0);
        describe("traceme after cont", status);
    }
}

static void tracer_attach(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0) {
        printf("seize: %s\n", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    ptrace(PTRACE_INTERRUPT, pid, NULL, NULL);
    int status;
    waitpid(pid, &status, 0);
    describe("seized", status);
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    describe("seized after detach", status);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    shell_wait();
    debugger_start();
    tracer_attach();
    return 0;
}
