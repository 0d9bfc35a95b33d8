/*
 * conn_pool: a counting semaphore limiting the use of a connection pool.
 *
 * A POSIX semaphore (sem_init, value POOLSIZE) guards a pool of POOLSIZE
 * "connections" kept on a mutex-protected free list. Each of CLIENTS client
 * threads, ROUNDS times: acquires the semaphore, takes a free connection,
 * counts it in use (in_use++, max_in_use), "uses" it for 200 us (usleep),
 * gives it back and posts the semaphore. All clients start together at a
 * barrier.
 *
 * The semaphore is acquired in three ways, rotating with (client + round) % 3:
 *   0: sem_wait
 *   1: sem_trywait; on EAGAIN (counted, reported on stderr only) sem_wait
 *   2: sem_timedwait with a 1 s deadline (CLOCK_REALTIME); it must never
 *      time out: a timeout is an error (then it falls back to sem_wait)
 *
 * Usage:  conn_pool CLIENTS POOLSIZE ROUNDS
 * Example: ./conn_pool 50 5 20
 * stdout: "clients=C pool=P rounds=N uses=C*N max_in_use=P within_limit=yes"
 *         max_in_use is the measured maximum; when CLIENTS > POOLSIZE it must
 *         equal POOLSIZE. (When CLIENTS <= POOLSIZE the measured value is
 *         printed as is; it is then at most CLIENTS and depends on timing.)
 * within_limit=no (and exit status 1) if more than POOLSIZE connections were
 * ever in use at once, or a connection was handed to two clients, or the
 * free list was empty after a successful semaphore acquire. Exit status 1
 * also on a sem_timedwait timeout, max_in_use != POOLSIZE with
 * CLIENTS > POOLSIZE, or a final semaphore value other than POOLSIZE.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long n_clients, pool_size, rounds;

static sem_t pool_sem;
static pthread_barrier_t start_line;

/* The pool, guarded by pool_lock. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static long *free_list;              /* stack of free connection numbers */
static long n_free;
static long *owner;                  /* owner[c]: client using connection c, -1 if free */
static long in_use, max_in_use, uses;
static long violations, trywait_eagain, timeouts;

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void lock_pool(void)
{
    check(pthread_mutex_lock(&pool_lock), "pthread_mutex_lock");
}

static void unlock_pool(void)
{
    check(pthread_mutex_unlock(&pool_lock), "pthread_mutex_unlock");
}

static void sem_wait_retry(void)
{
    while (sem_wait(&pool_sem) != 0) {
        if (errno != EINTR)
            die("sem_wait");
    }
}

static void acquire(int how)
{
    if (how == 0) {
        sem_wait_retry();
    } else if (how == 1) {
        while (sem_trywait(&pool_sem) != 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                die("sem_trywait");
            lock_pool();
            trywait_eagain++;
            unlock_pool();
            sem_wait_retry();
            break;
        }
    } else {
        struct timespec deadline;
        if (clock_gettime(CLOCK_REALTIME, &deadline) != 0)
            die("clock_gettime");
        deadline.tv_sec += 1;
        while (sem_timedwait(&pool_sem, &deadline) != 0) {
            if (errno == EINTR)
                continue;
            if (errno != ETIMEDOUT)
                die("sem_timedwait");
            lock_pool();
            timeouts++;
            unlock_pool();
            fprintf(stderr, "sem_timedwait timed out after 1 s\n");
            sem_wait_retry();
            break;
        }
    }
}

static void *client(void *arg)
{
    long me = (long)(intptr_t)arg;

    int rc = pthread_barrier_wait(&start_line);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        check(rc, "pthread_barrier_wait");

    for (long r = 0; r < rounds; r++) {
        acquire((int)((me + r) % 3));

        /* Take a free connection. */
        long conn = -1;
        lock_pool();
        if (n_free == 0) {
            violations++;               /* the semaphore let too many clients in */
        } else {
            conn = free_list[--n_free];
            if (owner[conn] != -1)
                violations++;
            owner[conn] = me;
        }
        in_use++;
        if (in_use > max_in_use)
            max_in_use = in_use;
        if (in_use > pool_size)
            violations++;
        unlock_pool();

        usleep(200);                    /* use the connection */

        /* Give it back. */
        lock_pool();
        if (conn >= 0) {
            if (owner[conn] != me)
                violations++;           /* someone else got our connection */
            owner[conn] = -1;
            free_list[n_free++] = conn;
        }
        in_use--;
        uses++;
        unlock_pool();

        if (sem_post(&pool_sem) != 0)
            die("sem_post");
    }
    return NULL;
}

static long parse_arg(const char *s, const char *name, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > 1000000000) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CLIENTS POOLSIZE ROUNDS\n", argv[0]);
        return 2;
    }
    n_clients = parse_arg(argv[1], "CLIENTS", 1);
    pool_size = parse_arg(argv[2], "POOLSIZE", 1);
    rounds = parse_arg(argv[3], "ROUNDS", 0);
    if (n_clients > 100000 || pool_size > 100000) {
        fprintf(stderr, "CLIENTS and POOLSIZE must be at most 100000\n");
        return 2;
    }

    free_list = malloc(sizeof *free_list * (size_t)pool_size);
    owner = malloc(sizeof *owner * (size_t)pool_size);
    pthread_t *tids = malloc(sizeof *tids * (size_t)n_clients);
    if (free_list == NULL || owner == NULL || tids == NULL)
        die("malloc");
    for (long c = 0; c < pool_size; c++) {
        free_list[c] = pool_size - 1 - c;
        owner[c] = -1;
    }
    n_free = pool_size;

    if (sem_init(&pool_sem, 0, (unsigned)pool_size) != 0)
        die("sem_init");
    check(pthread_barrier_init(&start_line, NULL, (unsigned)n_clients), "pthread_barrier_init");

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n_clients; i++)
        check(pthread_create(&tids[i], NULL, client, (void *)(intptr_t)i), "pthread_create");
    for (long i = 0; i < n_clients; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    int sem_value;
    if (sem_getvalue(&pool_sem, &sem_value) != 0)
        die("sem_getvalue");

    int within_limit = violations == 0 && max_in_use <= pool_size && n_free == pool_size;
    int ok = within_limit && timeouts == 0 && sem_value == pool_size
             && uses == n_clients * rounds
             && (n_clients <= pool_size || rounds == 0 || max_in_use == pool_size);

    printf("clients=%ld pool=%ld rounds=%ld uses=%ld max_in_use=%ld within_limit=%s\n",
           n_clients, pool_size, rounds, uses, max_in_use, within_limit ? "yes" : "no");
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "elapsed %.3f s, sem_trywait EAGAIN %ld times, sem_timedwait timeouts %ld\n",
            secs, trywait_eagain, timeouts);
    if (!ok)
        fprintf(stderr, "FAILED: violations=%ld timeouts=%ld final semaphore value=%d "
                "free connections=%ld max_in_use=%ld\n",
                violations, timeouts, sem_value, n_free, max_in_use);

    if (sem_destroy(&pool_sem) != 0)
        die("sem_destroy");
    check(pthread_barrier_destroy(&start_line), "pthread_barrier_destroy");
    free(free_list);
    free(owner);
    free(tids);
    return ok ? 0 : 1;
}
