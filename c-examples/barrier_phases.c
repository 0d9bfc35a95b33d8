/*
 * barrier_phases: threads proceeding in lock-step phases through a
 * pthread_barrier_t.
 *
 * In phase p, thread i sleeps a short pseudo-random time (0..49 us, rand_r
 * seeded from i, so that threads arrive at the barrier at different times),
 * writes p*1000+i into slot i, waits on the barrier, checks that every slot
 * j holds p*1000+j, and waits on the barrier again (so nobody starts writing
 * the next phase while others are still checking). Each barrier wait round
 * must return PTHREAD_BARRIER_SERIAL_THREAD to exactly one thread; the
 * serial returns are counted per round under a mutex.
 *
 * Usage:  barrier_phases THREADS PHASES
 * Example: ./barrier_phases 16 50
 * stdout: "threads=T phases=P serial=2*P checks_ok"
 * On a failed check stdout says "checks_FAILED" (details on stderr) and the
 * exit status is 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long n_threads, n_phases;
static long *slots;
static pthread_barrier_t barrier;

/* Guarded by count_lock. */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long serial;                  /* PTHREAD_BARRIER_SERIAL_THREAD returns */
static long *serial_per_round;       /* the same, per barrier round (2 per phase) */
static long bad_slots;               /* slots found with a wrong value */

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void barrier_wait(long round)
{
    int rc = pthread_barrier_wait(&barrier);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
        check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
        serial++;
        serial_per_round[round]++;
        check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");
    } else if (rc != 0) {
        check(rc, "pthread_barrier_wait");
    }
}

static void *worker(void *arg)
{
    long me = (long)(intptr_t)arg;
    unsigned int seed = 4242u + (unsigned int)me * 7919u;

    for (long p = 0; p < n_phases; p++) {
        usleep((useconds_t)(rand_r(&seed) % 50));
        slots[me] = p * 1000 + me;
        barrier_wait(2 * p);

        long bad = 0;
        for (long j = 0; j < n_threads; j++)
            if (slots[j] != p * 1000 + j)
                bad++;
        if (bad != 0) {
            check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
            bad_slots += bad;
            check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");
        }
        barrier_wait(2 * p + 1);
    }
    return NULL;
}

static long parse_arg(const char *s, const char *name, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS PHASES\n", argv[0]);
        return 2;
    }
    n_threads = parse_arg(argv[1], "THREADS", 1, 100000);
    n_phases = parse_arg(argv[2], "PHASES", 0, 100000000);

    slots = malloc(sizeof *slots * (size_t)n_threads);
    serial_per_round = calloc((size_t)(2 * n_phases + 1), sizeof *serial_per_round);
    pthread_t *tids = malloc(sizeof *tids * (size_t)n_threads);
    if (slots == NULL || serial_per_round == NULL || tids == NULL) {
        perror("malloc");
        return 1;
    }
    for (long i = 0; i < n_threads; i++)
        slots[i] = -1;
    check(pthread_barrier_init(&barrier, NULL, (unsigned)n_threads), "pthread_barrier_init");

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n_threads; i++)
        check(pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i), "pthread_create");
    for (long i = 0; i < n_threads; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    long bad_rounds = 0;
    for (long r = 0; r < 2 * n_phases; r++)
        if (serial_per_round[r] != 1)
            bad_rounds++;
    int ok = bad_slots == 0 && bad_rounds == 0 && serial == 2 * n_phases;

    printf("threads=%ld phases=%ld serial=%ld %s\n",
           n_threads, n_phases, serial, ok ? "checks_ok" : "checks_FAILED");
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "elapsed %.3f s, %.1f us per phase\n", secs,
            n_phases > 0 ? secs * 1e6 / (double)n_phases : 0.0);
    if (!ok)
        fprintf(stderr, "FAILED: %ld wrong slot values seen, %ld barrier rounds without "
                "exactly one serial thread\n", bad_slots, bad_rounds);

    check(pthread_barrier_destroy(&barrier), "pthread_barrier_destroy");
    free(slots);
    free(serial_per_round);
    free(tids);
    return ok ? 0 : 1;
}
