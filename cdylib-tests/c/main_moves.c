/* The main thread waits and wakes many times while two threads compute (see
 * cdylib-tests/tests/main_moves.rs). It prints whether it ran on more than one OS thread
 * (read from /proc/thread-self, which names the OS thread whatever greenify runs there).
 * `overflow`: once it runs on another OS thread than the process's first, it recurses
 * without end: the stack overflow ends the process with SIGSEGV, as natively. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int stop;

static void *spin(void *p) {
    (void)p;
    while (!stop) {}
    return NULL;
}

/* The id of the OS thread running the caller. */
static long os_tid(void) {
    char link[64];
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    if (n <= 0) return -1;
    link[n] = 0;
    return atol(strrchr(link, '/') + 1);
}

/* Never reached: a bound the compiler cannot see through. */
static volatile long depth_limit = -1;

__attribute__((noinline)) static long depth(long n) {
    volatile char frame[4096];
    frame[0] = (char)n;
    if (n == depth_limit) return frame[0];
    return depth(n + 1) + frame[0];
}

int main(int argc, char **argv) {
    int overflow = argc > 1 && strcmp(argv[1], "overflow") == 0;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, spin, NULL);
    long first = os_tid();
    int moved = 0;
    for (int i = 0; i < 2000 && (overflow ? !moved : i < 300); i++) {
        usleep(200);
        moved |= os_tid() != first;
    }
    if (overflow) {
        printf("recursing on another OS thread: %s\n", moved ? "yes" : "no");
        fflush(stdout);
        return (int)depth(0);
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("main ran on more than one OS thread: %s\n", moved ? "yes" : "no");
    return 0;
}
