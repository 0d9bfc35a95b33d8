/* Overflows a green thread's stack after so many threads that it has no guard page left.
 *
 * Usage: stack_past_guards FILLERS MODE [fork], MODE one of
 *   sparse     a frame 16 KiB larger than the stack that writes only its lowest bytes
 *   recursion  runaway recursion
 *   buffer     a 1 MiB local buffer, filled
 * With "fork", main first runs a thread to its end, then forks, and the child does the rest
 * (the parent ends as the child did).
 * FILLERS threads (64 KiB stacks) wait on a condition variable; then "neighbour" puts a
 * pattern on its stack and waits too; then "hog" (64 KiB stack, created right after the
 * neighbour, so its stack lies next to the neighbour's) overflows, wakes everyone, sleeps
 * (the neighbour checks its pattern meanwhile) and returns. Built without stack-clash
 * probes, so a large frame really is sparse. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK (64 * 1024)
#define PATTERN (32 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int released, waiting;
static const char *mode;
static volatile long depth_limit = -1;

static void wait_release(void) {
    pthread_mutex_lock(&lock);
    waiting++;
    pthread_cond_broadcast(&cond);
    while (!released)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void *filler(void *arg) {
    (void)arg;
    wait_release();
    return NULL;
}

static void *neighbour(void *arg) {
    (void)arg;
    volatile unsigned char pattern[PATTERN];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + 1);
    wait_release();
    for (size_t i = 0; i < sizeof pattern; i++)
        if (pattern[i] != (unsigned char)(i * 7 + 1)) {
            printf("neighbour's stack corrupted at %zu\n", i);
            return NULL;
        }
    printf("neighbour intact\n");
    return NULL;
}

__attribute__((noinline)) static long sparse(void) {
    volatile char big[STACK + 16 * 1024];
    for (int i = 0; i < 64; i++)
        big[i] = 'x';
    return big[1];
}

__attribute__((noinline)) static long recurse(long n) {
    volatile char pad[256];
    pad[0] = (char)n;
    if (n == depth_limit)
        return pad[0];
    return recurse(n + 1) + pad[0];
}

__attribute__((noinline)) static long buffer(void) {
    char buf[1 << 20];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
    return buf[12345];
}

static void *hog(void *arg) {
    (void)arg;
    /* Named by itself: with several workers it may run (and overflow) before its creator
     * would get to name it. */
    pthread_setname_np(pthread_self(), "hog");
    long r = strcmp(mode, "sparse") == 0      ? sparse()
             : strcmp(mode, "recursion") == 0 ? recurse(0)
                                              : buffer();
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    usleep(100 * 1000);
    return (void *)r;
}

static void *nothing(void *arg) {
    return arg;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    long fillers = atol(argv[1]);
    mode = argv[2];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK);
    if (argc > 3 && strcmp(argv[3], "fork") == 0) {
        pthread_t first;
        pthread_create(&first, &attr, nothing, NULL);
        pthread_join(first, NULL);
        fflush(stdout);
        pid_t child = fork();
        if (child > 0) {
            int status;
            if (waitpid(child, &status, 0) != child)
                return 1;
            if (WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                raise(WTERMSIG(status));
            }
            return WEXITSTATUS(status);
        }
    }
    pthread_t *threads = calloc(fillers + 1, sizeof *threads);
    for (long i = 0; i < fillers; i++)
        if (pthread_create(&threads[i], &attr, filler, NULL) != 0) {
            printf("create %ld failed\n", i);
            return 1;
        }
    pthread_create(&threads[fillers], &attr, neighbour, NULL);
    pthread_mutex_lock(&lock);
    while (waiting < fillers + 1)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    pthread_t t;
    pthread_create(&t, &attr, hog, NULL);
    pthread_join(t, NULL);
    for (long i = 0; i <= fillers; i++)
        pthread_join(threads[i], NULL);
    printf("survived\n");
    return 0;
}
