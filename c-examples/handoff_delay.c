/*
 * handoff_delay: how long a ready thread waits while another thread blocks its OS thread
 * in a call no hook sees (greenified: the hand-off delay of a stuck worker).
 *
 * Each round a reader thread reads an empty pipe with an inline `syscall` instruction
 * (no libc function, nothing a library could hook) and a writer thread, created just
 * after it, notes when it first runs, then writes the byte the reader waits for. The
 * delay of a round is the writer's first instruction minus the moment just before the
 * reader's read (natively the kernel runs both at once: about zero, or negative).
 * Between rounds main computes for 20 ms (`-i`: sleeps 20 ms instead), so each round
 * starts on a worker that has been running (or has just left an idle wait).
 *
 * The program has a variable of its own in TLS, as OpenMP's libgomp does: with
 * GREENIFY_TLS=auto green threads then get TCBs of their own, which a hand-off needs.
 *
 * Usage:  handoff_delay [-r ROUNDS] [-i]      defaults: -r 20
 * stdout (one line): "rounds=N delay_ms min=X median=Y max=Z"
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static struct timespec before_read, writer_started;
__thread long rounds_read;

static double ms_between(struct timespec a, struct timespec b)
{
    return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
}

static void *reader(void *arg)
{
    (void)arg;
    char byte;
    long ret;
    clock_gettime(CLOCK_MONOTONIC, &before_read);
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"((long)SYS_read), "D"((long)fds[0]), "S"(&byte), "d"(1L)
                     : "rcx", "r11", "memory");
    rounds_read += ret == 1;
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &writer_started);
    usleep(1000);
    if (write(fds[1], "x", 1) != 1)
        perror("write");
    return NULL;
}

static void compute_ms(long ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while (ms_between(a, b) < ms);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = 20, idle = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "-i") == 0)
            idle = 1;
    }
    if (rounds < 1 || pipe(fds) != 0)
        return 1;
    double *delays = calloc(rounds, sizeof *delays);
    for (int i = 0; i < rounds; i++) {
        if (idle)
            usleep(20000);
        else
            compute_ms(20);
        pthread_t r, w;
        pthread_create(&r, NULL, reader, NULL);
        pthread_create(&w, NULL, writer, NULL);
        pthread_join(r, NULL);
        pthread_join(w, NULL);
        delays[i] = ms_between(before_read, writer_started);
    }
    qsort(delays, rounds, sizeof *delays, by_value);
    printf("rounds=%d delay_ms min=%.3f median=%.3f max=%.3f\n", rounds, delays[0],
           rounds % 2 ? delays[rounds / 2] : (delays[rounds / 2 - 1] + delays[rounds / 2]) / 2,
           delays[rounds - 1]);
    return 0;
}
