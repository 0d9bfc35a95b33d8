/* A program with a thread in each kind of wait, for `greenify dump`: one parked in read
 * on a pipe, one in pthread_mutex_lock on a mutex main holds, one in nanosleep, one
 * spinning, and main in pthread_join. The arguments name the spinners (default: one,
 * "spinner"): "spinner" computes in the program's code, "spinner2" mostly in libc (a
 * page's memset), "inlibc" all but always in libc (a megabyte's memset). It prints
 * "ready" once all are in place, then stays until killed. The spinners start once
 * the others wait, so with a worker each they never switch: a dump shows their frames
 * only from their registers as they run. Its functions are static: the dump must name
 * them from .symtab. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int pipe_fds[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long spins;

static __attribute__((noinline)) void *observe_reader(void *arg) {
    char c;
    (void)arg;
    pthread_setname_np(pthread_self(), "reader");
    if (read(pipe_fds[0], &c, 1) < 0)
        perror("read");
    return NULL;
}

static __attribute__((noinline)) void *observe_locker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "locker");
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static __attribute__((noinline)) void *observe_sleeper(void *arg) {
    struct timespec ts = {3600, 0};
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    nanosleep(&ts, NULL);
    return NULL;
}

static char page[4096];
static char megabyte[1 << 20];
/* Called through a pointer: the compiler inlines a memset it sees. */
static void *(*volatile libc_memset)(void *, int, size_t) = memset;

/* Spins as its name says (see the top): a dump shows it where it is. */
static __attribute__((noinline)) void *observe_spinner(void *arg) {
    size_t in_libc = strcmp(arg, "spinner2") == 0 ? sizeof page
                     : strcmp(arg, "inlibc") == 0 ? sizeof megabyte
                                                  : 0;
    char *area = in_libc == sizeof page ? page : megabyte;
    pthread_setname_np(pthread_self(), arg);
    for (;;) {
        spins++;
        if (in_libc)
            libc_memset(area, (int)spins, in_libc);
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[3 + 8];
    char *one[] = {"spinner"};
    char **spinners = argc > 1 ? argv + 1 : one;
    int count = argc > 1 ? argc - 1 : 1;
    if (count > 8)
        return 1;
    if (pipe(pipe_fds) != 0)
        return 1;
    pthread_mutex_lock(&lock);
    pthread_create(&t[0], NULL, observe_reader, NULL);
    pthread_create(&t[1], NULL, observe_locker, NULL);
    pthread_create(&t[2], NULL, observe_sleeper, NULL);
    /* Let each reach its wait before the spinners start. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < count; i++)
        pthread_create(&t[3 + i], NULL, observe_spinner, spinners[i]);
    printf("ready\n");
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
