/*
 * preempt_latency: how late a periodic thread wakes while other threads spin
 * in pure CPU.
 *
 * SPINNERS threads each loop on a volatile flag, making no call at all (no
 * system call, no libc function: nothing a scheduler living in libc's calls
 * could notice). One periodic thread sleeps to absolute deadlines every
 * PERIOD_MS ms (clock_nanosleep, TIMER_ABSTIME, CLOCK_MONOTONIC) and records
 * how late each wake is (the time it runs again minus its deadline). After
 * PERIODS wakes it clears the flag; the spinners stop and everything is
 * joined. All threads start together (a barrier), so the spinners are
 * spinning before the first deadline.
 *
 * Natively the kernel preempts a spinner when the periodic thread's timer
 * fires. A scheduler that switches only when a thread waits never runs the
 * periodic thread again once a spinner runs: the program does not finish.
 *
 * Usage:  preempt_latency [-p PERIODS] [-s SPINNERS] [-m PERIOD_MS] [-M]
 *         defaults: -p 300 -s 1 -m 10; -M: the main thread is the periodic one (a
 *         scheduler may treat the program's first thread apart)
 * stdout (one line):
 *   "periods=N spinners=S period_ms=M late_us p50=X p99=Y max=Z"
 *   (nearest-rank percentiles of the N latenesses, µs with 1 decimal)
 * Exit status 0, or 1 if a call failed (reported on stderr).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int periods = 300;
static long period_ms = 10;
static volatile int spinning = 1;
static double *late_us;
static pthread_barrier_t start;

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *spinner(void *arg)
{
    unsigned long spins = 0;

    (void)arg;
    pthread_barrier_wait(&start);
    while (spinning)
        spins++;
    return (void *)spins;
}

static void *periodic(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    long long deadline = now_ns();
    for (int i = 0; i < periods; i++) {
        deadline += period_ms * 1000000LL;
        struct timespec ts = { deadline / 1000000000LL, deadline % 1000000000LL };
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
            ;
        if (rc != 0) {
            fprintf(stderr, "clock_nanosleep: %s\n", strerror(rc));
            spinning = 0;
            return (void *)1;
        }
        late_us[i] = (double)(now_ns() - deadline) / 1000.0;
    }
    spinning = 0;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted array v[0..n). */
static double percentile(const double *v, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

int main(int argc, char **argv)
{
    int nspin = 1, on_main = 0, opt;

    while ((opt = getopt(argc, argv, "p:s:m:M")) != -1) {
        switch (opt) {
        case 'p':
            periods = atoi(optarg);
            break;
        case 's':
            nspin = atoi(optarg);
            break;
        case 'm':
            period_ms = atol(optarg);
            break;
        case 'M':
            on_main = 1;
            break;
        default:
            fprintf(stderr, "usage: %s [-p PERIODS] [-s SPINNERS] [-m PERIOD_MS] [-M]\n", argv[0]);
            return 2;
        }
    }
    if (periods < 1 || nspin < 0 || period_ms < 1) {
        fprintf(stderr, "PERIODS and PERIOD_MS must be >= 1, SPINNERS >= 0\n");
        return 2;
    }
    late_us = calloc((size_t)periods, sizeof *late_us);
    pthread_t *spin = calloc((size_t)nspin + 1, sizeof *spin);
    if (!late_us || !spin) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    pthread_barrier_init(&start, NULL, (unsigned)nspin + 1);

    int err;
    for (int i = 0; i < nspin; i++) {
        if ((err = pthread_create(&spin[i], NULL, spinner, NULL)) != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    void *failed;
    if (on_main) {
        failed = periodic(NULL);
    } else {
        pthread_t per;
        if ((err = pthread_create(&per, NULL, periodic, NULL)) != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            return 1;
        }
        pthread_join(per, &failed);
    }
    for (int i = 0; i < nspin; i++)
        pthread_join(spin[i], NULL);
    if (failed)
        return 1;

    qsort(late_us, (size_t)periods, sizeof *late_us, cmp_double);
    printf("periods=%d spinners=%d period_ms=%ld late_us p50=%.1f p99=%.1f max=%.1f\n", periods,
           nspin, period_ms, percentile(late_us, periods, 50), percentile(late_us, periods, 99),
           late_us[periods - 1]);
    return 0;
}
