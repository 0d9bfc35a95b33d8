/* A program that uses every fd its RLIMIT_NOFILE allows, then forks, spawns, runs system
 * and popen. Natively the child runs: it can close an fd and open one again, start and
 * join threads, sleep, and read a pipe another thread fills later. greenify's child must
 * do the same (it needs its own epoll instance and eventfd).
 *   fault_fork_fd_limit soft    the limit as inherited
 *   fault_fork_fd_limit lowsoft the soft limit lowered to 64 first (greenify's fds above it)
 *   fault_fork_fd_limit lowhard soft and hard limit lowered to 64 first
 * posix_spawn and system are run only under the lowered limits: under the inherited one
 * greenify's own two fds sit among the program's numbers (a documented limit), and exec
 * closes them (CLOEXEC), so a greenified program's spawned shell finds two free numbers
 * where natively it has none. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int pipe_fds[2];

static void *sleeper(void *arg) {
    struct timespec t = { 0, 20 * 1000 * 1000 };
    nanosleep(&t, NULL);
    return arg;
}

static void *late_writer(void *arg) {
    (void)arg;
    struct timespec t = { 0, 30 * 1000 * 1000 };
    nanosleep(&t, NULL);
    write(pipe_fds[1], "late", 4);
    return NULL;
}

/* Uses every fd number up to the limit; returns the highest one opened. */
static int fill(void) {
    int last = -1;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            printf("fill: %s\n", strerrorname_np(errno));
            return last;
        }
        last = fd;
    }
}

static const char *child_work(int last) {
    if (close(last) != 0) return "close";
    int fd = open("/dev/null", O_RDONLY);
    if (fd != last) return "reopen";
    /* Two numbers for a pipe. */
    close(last);
    close(last - 1);
    if (pipe(pipe_fds) != 0) return "pipe";
    pthread_t t, w;
    void *rv;
    if (pthread_create(&t, NULL, sleeper, (void *)7) != 0) return "create";
    if (pthread_join(t, &rv) != 0 || rv != (void *)7) return "join";
    if (pthread_create(&w, NULL, late_writer, NULL) != 0) return "create writer";
    char buf[8] = { 0 };
    if (read(pipe_fds[0], buf, sizeof buf) != 4 || memcmp(buf, "late", 4) != 0) return "read";
    if (pthread_join(w, NULL) != 0) return "join writer";
    return "ok";
}

static void report_child(const char *what, pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        printf("%s: waitpid %s\n", what, strerrorname_np(errno));
        return;
    }
    if (WIFEXITED(status))
        printf("%s: exit %d\n", what, WEXITSTATUS(status));
    else
        printf("%s: signal %d\n", what, WTERMSIG(status));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "soft";
    /* A first hooked call, so that greenify starts under the inherited limit. */
    usleep(1);
    if (strcmp(mode, "soft") != 0) {
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_cur = 64;
        if (strcmp(mode, "lowhard") == 0) r.rlim_max = 64;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) perror("setrlimit");
    }
    int last = fill();
    fflush(stdout);

    pid_t pid = fork();
    if (pid == 0) {
        const char *result = child_work(last);
        printf("child: %s\n", result);
        fflush(stdout);
        /* A grandchild, forked with the child at its limit again. */
        pid_t grandchild = fork();
        if (grandchild == 0) _exit(strcmp(child_work(last), "ok") == 0 ? 0 : 1);
        report_child("grandchild", grandchild);
        fflush(stdout);
        _exit(strcmp(result, "ok") == 0 ? 0 : 1);
    }
    report_child("fork", pid);

    if (strcmp(mode, "soft") != 0) {
        char *sh_argv[] = { "sh", "-c", "exit 3", NULL };
        pid_t spawned;
        int rc = posix_spawn(&spawned, "/bin/sh", NULL, NULL, sh_argv, environ);
        printf("posix_spawn: %s\n", rc ? strerrorname_np(rc) : "0");
        if (rc == 0) report_child("spawned", spawned);

        int status = system("exit 4");
        printf("system: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }

    errno = 0;
    FILE *p = popen("echo hi", "r");
    printf("popen at the limit: %s %s\n", p ? "stream" : "NULL", p ? "0" : strerrorname_np(errno));
    if (p) pclose(p);
    close(last);
    close(last - 1);
    close(last - 2);
    p = popen("echo hi", "r");
    char line[16] = { 0 };
    if (p && fgets(line, sizeof line, p)) printf("popen after closing: %s", line);
    if (p) printf("pclose: %d\n", WEXITSTATUS(pclose(p)));
    return 0;
}
