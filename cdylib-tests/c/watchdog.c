/* The watchdog seen from outside (cdylib-tests/tests/watchdog.rs). `spin`: a thread named
 * "spinner" spins in spin_here for 400 ms without a call that switches, and prints its
 * tid (`spin2`: then sleeps 10 ms and spins 200 ms more); `stuck`: a thread named "reader" reads an empty pipe with an inline-assembly read
 * (no hook sees it) until a child process writes to it 300 ms later. Deadlocks, each
 * ended by SIGALRM after 2 s (every thread waits for ever): `deadlock`, threads "left" and
 * "right" each hold one mutex and then take the other's; `deadlock_join`, main holds a
 * mutex and joins a thread "child" that takes it; `lock_chain` (no deadlock): a thread
 * waits for a mutex whose owner sleeps 100 ms, while main joins both. Built with
 * -rdynamic, so that dladdr names this program's functions. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

volatile unsigned long spins;

__attribute__((noinline)) void spin_here(double seconds) {
    double end = now() + seconds;
    while (now() < end) {
        for (int i = 0; i < 1000000; i++) {
            spins++;
        }
    }
}

void *spinner(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "spinner");
    printf("tid=%d\n", gettid());
    fflush(stdout);
    spin_here(0.4);
    if (arg != NULL) {
        /* A switch, then a second stretch at the same site. */
        usleep(10000);
        spin_here(0.2);
    }
    return NULL;
}

static int pipe_fds[2];

__attribute__((noinline)) long read_raw(int fd, void *buf, unsigned long n) {
    long r;
#if defined(__x86_64__)
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"(0L), "D"((long)fd), "S"(buf), "d"(n)
                     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = 63;
    register long x0 __asm__("x0") = fd;
    register long x1 __asm__("x1") = (long)buf;
    register long x2 __asm__("x2") = (long)n;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    r = x0;
#endif
    return r;
}

void *reader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "reader");
    char c;
    long n = read_raw(pipe_fds[0], &c, 1);
    printf("read %ld byte(s)\n", n);
    return NULL;
}

static pthread_mutex_t first = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t second = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both_hold;

__attribute__((noinline)) void take(pthread_mutex_t *m) {
    pthread_mutex_lock(m);
    __asm__ volatile("" ::: "memory"); /* keeps the call a call, not a tail jump */
}

static void named(const char *name) {
    pthread_setname_np(pthread_self(), name);
    printf("%s tid=%d\n", name, gettid());
    fflush(stdout);
}

void *crosser(void *arg) {
    int left = arg != NULL;
    named(left ? "left" : "right");
    pthread_mutex_lock(left ? &first : &second);
    pthread_barrier_wait(&both_hold);
    take(left ? &second : &first);
    return NULL;
}

void *child(void *arg) {
    (void)arg;
    named("child");
    take(&first);
    return NULL;
}

void *holder(void *arg) {
    (void)arg;
    named("holder");
    pthread_mutex_lock(&first);
    pthread_barrier_wait(&both_hold);
    usleep(100000);
    pthread_mutex_unlock(&first);
    return NULL;
}

void *chained(void *arg) {
    (void)arg;
    pthread_barrier_wait(&both_hold);
    take(&first);
    pthread_mutex_unlock(&first);
    return NULL;
}

static int deadlocks(const char *which) {
    printf("first=%p second=%p main tid=%d\n", (void *)&first, (void *)&second, gettid());
    fflush(stdout);
    pthread_t a, b;
    pthread_barrier_init(&both_hold, NULL, 2);
    if (strcmp(which, "deadlock") == 0) {
        alarm(2);
        pthread_create(&a, NULL, crosser, (void *)1);
        pthread_create(&b, NULL, crosser, NULL);
        pthread_join(a, NULL);
    } else if (strcmp(which, "deadlock_join") == 0) {
        alarm(2);
        pthread_mutex_lock(&first);
        pthread_create(&a, NULL, child, NULL);
        pthread_join(a, NULL);
    } else {
        pthread_create(&a, NULL, holder, NULL);
        pthread_create(&b, NULL, chained, NULL);
        pthread_join(b, NULL);
        pthread_join(a, NULL);
        printf("chain done\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "";
    pthread_t t;
    if (strcmp(which, "spin") == 0 || strcmp(which, "spin2") == 0) {
        pthread_create(&t, NULL, spinner, which[4] == '2' ? (void *)1 : NULL);
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(which, "stuck") == 0) {
        if (pipe(pipe_fds) != 0) {
            return 1;
        }
        pid_t child = fork();
        if (child == 0) {
            usleep(300000);
            if (write(pipe_fds[1], "x", 1) != 1) {
                _exit(1);
            }
            _exit(0);
        }
        pthread_create(&t, NULL, reader, NULL);
        pthread_join(t, NULL);
        int status;
        waitpid(child, &status, 0);
        return status == 0 ? 0 : 1;
    }
    if (strncmp(which, "deadlock", 8) == 0 || strcmp(which, "lock_chain") == 0) {
        return deadlocks(which);
    }
    fprintf(stderr, "usage: watchdog spin|spin2|stuck|deadlock|deadlock_join|lock_chain\n");
    return 2;
}
