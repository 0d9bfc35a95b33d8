/* A program with a thread in each kind of wait, for `greenify dump`: one parked in read
 * on a pipe, one in pthread_mutex_lock on a mutex main holds, one in nanosleep, one
 * spinning (two with argument 2, the second in libc), and main in pthread_join. It
 * prints "ready" once all are in place, then stays until killed. The spinners start once
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
/* Called through a pointer: the compiler inlines a memset it sees. */
static void *(*volatile libc_memset)(void *, int, size_t) = memset;

/* The second spinner spends most of its time in libc (memset): a dump shows it there. */
static __attribute__((noinline)) void *observe_spinner(void *arg) {
    int in_libc = strcmp(arg, "spinner2") == 0;
    pthread_setname_np(pthread_self(), arg);
    for (;;) {
        spins++;
        if (in_libc)
            libc_memset(page, (int)spins, sizeof page);
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[5];
    int spinners = argc > 1 ? atoi(argv[1]) : 1;
    if (pipe(pipe_fds) != 0)
        return 1;
    pthread_mutex_lock(&lock);
    pthread_create(&t[0], NULL, observe_reader, NULL);
    pthread_create(&t[1], NULL, observe_locker, NULL);
    pthread_create(&t[2], NULL, observe_sleeper, NULL);
    /* Let each reach its wait before the spinners start. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_create(&t[3], NULL, observe_spinner, "spinner");
    if (spinners > 1)
        pthread_create(&t[4], NULL, observe_spinner, "spinner2");
    printf("ready\n");
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
