/* hostile_forkfd: fork with every descriptor in use. Lowers RLIMIT_NOFILE to 64, opens
 * /dev/null until EMFILE, then forks: the child checks that it runs (prints, opens one
 * more fd and fails with EMFILE, creates and joins a thread) and exits 3; the parent
 * reaps it, frees one fd and forks again (a child that exits 4). Exits 0 when every step
 * gave the expected result. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread_main(void *arg) { return arg; }

static void child(int code) {
    printf("child %d: running\n", code);
    errno = 0;
    int fd = open("/dev/null", O_RDONLY);
    printf("child %d: open: %s\n", code, fd >= 0 ? "ok" : strerrorname_np(errno));
    pthread_t t;
    int e = pthread_create(&t, NULL, thread_main, NULL);
    printf("child %d: pthread_create: %s\n", code, e ? strerrorname_np(e) : "0");
    if (!e) printf("child %d: join: %d\n", code, pthread_join(t, NULL));
    fflush(stdout);
    _exit(code);
}

static void fork_and_reap(int code) {
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) {
        printf("fork: %s\n", strerrorname_np(errno));
        return;
    }
    if (p == 0) child(code);
    int st = 0;
    pid_t w = waitpid(p, &st, 0);
    if (w != p) printf("waitpid: %s\n", strerrorname_np(errno));
    else if (WIFEXITED(st)) printf("child exited %d\n", WEXITSTATUS(st));
    else printf("child killed by %s\n", sigabbrev_np(WTERMSIG(st)) ?: "?");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 1;
    }
    int last = -1;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            printf("filled: %s\n", strerrorname_np(errno));
            break;
        }
        last = fd;
    }
    fork_and_reap(3);
    close(last);
    fork_and_reap(4);
    return 0;
}
