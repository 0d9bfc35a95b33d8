/*
 * readers_writers: a pthread_rwlock_t guarding an array of 64 longs.
 *
 * Each writer, ROUNDS times, takes the write lock, writes one new version
 * number (a counter kept under the write lock) into all 64 cells, sleeping
 * 50 us halfway through, and unlocks. Each reader, ROUNDS times, takes the
 * read lock, checks that all 64 cells are equal, sleeps 20 us while holding
 * the lock, checks again that the cells still hold that same value, and
 * unlocks. All threads start together at a barrier.
 *
 * Usage:  readers_writers READERS WRITERS ROUNDS
 * Example: ./readers_writers 8 2 500
 * stdout: "readers=R writers=W rounds=N reads=R*N writes=W*N inconsistent=0 concurrent_readers=yes"
 *         (the concurrent_readers field only when READERS > 1).
 *
 * "inconsistent" counts reads that saw unequal or changing cells or a
 * version older than one they saw before, and writes that found another
 * reader or writer inside. Readers record the maximum number of readers
 * inside the lock at once (a counter under a small mutex); with READERS > 1
 * it must exceed 1 (readers must share the lock), otherwise the field says
 * "no". Exit status 1 if inconsistent != 0 or concurrent_readers=no.
 * (With very few rounds the readers might natively never overlap by chance;
 * the defaults overlap thousands of times.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CELLS 64

static long n_readers, n_writers, rounds;

static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static long cells[CELLS];            /* guarded by rwlock */
static long version;                 /* guarded by rwlock (write side) */

/* Bookkeeping, guarded by count_lock. */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long readers_inside, writers_inside, max_readers_inside;
static long reads, writes, inconsistent;

static pthread_barrier_t start_line;

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void start_together(void)
{
    int rc = pthread_barrier_wait(&start_line);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        check(rc, "pthread_barrier_wait");
}

/* Returns 1 if all cells hold 'value'. */
static int all_equal(long value)
{
    for (int i = 0; i < CELLS; i++)
        if (cells[i] != value)
            return 0;
    return 1;
}

static void *writer(void *arg)
{
    (void)arg;
    start_together();
    for (long r = 0; r < rounds; r++) {
        check(pthread_rwlock_wrlock(&rwlock), "pthread_rwlock_wrlock");

        check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
        int bad = readers_inside != 0 || writers_inside != 0;
        writers_inside++;
        check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");

        long v = ++version;
        for (int i = 0; i < CELLS; i++) {
            if (i == CELLS / 2)
                usleep(50);             /* half written: readers must not see this */
            cells[i] = v;
        }

        check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
        writers_inside--;
        writes++;
        if (bad)
            inconsistent++;
        check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");

        check(pthread_rwlock_unlock(&rwlock), "pthread_rwlock_unlock");
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    long last_seen = 0;

    start_together();
    for (long r = 0; r < rounds; r++) {
        check(pthread_rwlock_rdlock(&rwlock), "pthread_rwlock_rdlock");

        check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
        int bad = writers_inside != 0;
        readers_inside++;
        if (readers_inside > max_readers_inside)
            max_readers_inside = readers_inside;
        check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");

        long v = cells[0];
        if (!all_equal(v) || v < last_seen)
            bad = 1;
        usleep(20);                     /* "work" while holding the read lock */
        if (!all_equal(v))
            bad = 1;
        last_seen = v;

        check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
        readers_inside--;
        reads++;
        if (bad)
            inconsistent++;
        check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");

        check(pthread_rwlock_unlock(&rwlock), "pthread_rwlock_unlock");
    }
    return NULL;
}

static long parse_arg(const char *s, const char *name)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000000) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s READERS WRITERS ROUNDS\n", argv[0]);
        return 2;
    }
    n_readers = parse_arg(argv[1], "READERS");
    n_writers = parse_arg(argv[2], "WRITERS");
    rounds = parse_arg(argv[3], "ROUNDS");
    long n = n_readers + n_writers;
    if (n == 0 || n > 100000) {
        fprintf(stderr, "READERS+WRITERS must be between 1 and 100000\n");
        return 2;
    }

    pthread_t *tids = malloc(sizeof *tids * (size_t)n);
    if (tids == NULL) {
        perror("malloc");
        return 1;
    }
    check(pthread_barrier_init(&start_line, NULL, (unsigned)n), "pthread_barrier_init");

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++)
        check(pthread_create(&tids[i], NULL, i < n_readers ? reader : writer, NULL),
              "pthread_create");
    for (long i = 0; i < n; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    /* Everything joined: the final state must be the last version everywhere. */
    if (!all_equal(version) || version != n_writers * rounds)
        inconsistent++;

    int ok = inconsistent == 0;
    printf("readers=%ld writers=%ld rounds=%ld reads=%ld writes=%ld inconsistent=%ld",
           n_readers, n_writers, rounds, reads, writes, inconsistent);
    if (n_readers > 1) {
        printf(" concurrent_readers=%s", max_readers_inside > 1 ? "yes" : "no");
        if (max_readers_inside <= 1)
            ok = 0;
    }
    printf("\n");
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "elapsed %.3f s, max %ld readers inside at once\n", secs, max_readers_inside);

    check(pthread_barrier_destroy(&start_line), "pthread_barrier_destroy");
    check(pthread_rwlock_destroy(&rwlock), "pthread_rwlock_destroy");
    free(tids);
    return ok ? 0 : 1;
}
