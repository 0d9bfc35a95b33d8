/*
 * tsd_keys: thread-specific data (pthread keys), pthread_once and key
 * destructors.
 *
 * Every thread calls pthread_once, whose init routine (slow on purpose: it
 * sleeps 1 ms first, so other threads have to wait for it) creates two keys
 * and counts its calls. Key A's destructor frees the value and counts its
 * calls. Key B's destructor counts its calls ("rounds"); the first time it
 * runs for a thread it sets a new non-NULL value for key B, so that glibc
 * runs the destructors a second round, and the second time it frees it.
 * Each thread sets both keys, sleeps (so that the threads interleave),
 * checks that pthread_getspecific returns its own values (pointer and
 * contents) before and after the sleep, and exits: even threads by
 * returning from the start routine, odd threads by pthread_exit.
 * After joining, main checks that pthread_getspecific of keys A and B (never
 * set in main) is NULL, creates a third key, checks it reads as NULL,
 * deletes it with pthread_key_delete, and checks that creating a new key
 * afterwards works (set/get round trip). The counters are read after
 * pthread_join, which returns only after the thread's destructors ran.
 *
 * Usage:  tsd_keys THREADS
 * Example: ./tsd_keys 50
 * stdout: "threads=T once_inits=1 own_values=T destructor_a=T destructor_b_rounds=2*T ok"
 * On a failed check the last word is "FAILED" (details on stderr) and the
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

static long n_threads;

static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static pthread_key_t key_a, key_b;

/* Counters, guarded by count_lock. */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static long once_inits, own_values, destructor_a, destructor_b_rounds, failures;

struct value_a {
    long thread;
};

struct value_b {
    long thread;
    int round;                       /* 1: set by the thread, 2: set by the destructor */
};

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void count(long *counter, long n)
{
    check(pthread_mutex_lock(&count_lock), "pthread_mutex_lock");
    *counter += n;
    check(pthread_mutex_unlock(&count_lock), "pthread_mutex_unlock");
}

static void destroy_a(void *p)
{
    free(p);
    count(&destructor_a, 1);
}

static void destroy_b(void *p)
{
    struct value_b *v = p;

    count(&destructor_b_rounds, 1);
    if (v->round == 1) {
        /* Set a value again: glibc must call us a second time. */
        v->round = 2;
        check(pthread_setspecific(key_b, v), "pthread_setspecific in destructor");
    } else {
        free(v);
    }
}

static void init_keys(void)
{
    usleep(1000);                       /* a slow initialisation */
    check(pthread_key_create(&key_a, destroy_a), "pthread_key_create A");
    check(pthread_key_create(&key_b, destroy_b), "pthread_key_create B");
    count(&once_inits, 1);
}

/* Returns 1 if this thread's keys hold its own values. */
static int owns(long me, const struct value_a *a, const struct value_b *b)
{
    const struct value_a *ga = pthread_getspecific(key_a);
    const struct value_b *gb = pthread_getspecific(key_b);
    return ga == a && gb == b && ga->thread == me && gb->thread == me && gb->round == 1;
}

static void *worker(void *arg)
{
    long me = (long)(intptr_t)arg;

    check(pthread_once(&keys_once, init_keys), "pthread_once");

    struct value_a *a = malloc(sizeof *a);
    struct value_b *b = malloc(sizeof *b);
    if (a == NULL || b == NULL) {
        perror("malloc");
        exit(1);
    }
    a->thread = me;
    b->thread = me;
    b->round = 1;

    int fresh = pthread_getspecific(key_a) == NULL && pthread_getspecific(key_b) == NULL;
    check(pthread_setspecific(key_a, a), "pthread_setspecific A");
    check(pthread_setspecific(key_b, b), "pthread_setspecific B");
    int ok = fresh && owns(me, a, b);
    usleep((useconds_t)(100 + (me % 7) * 100));   /* let the other threads run */
    ok = ok && owns(me, a, b);

    if (ok)
        count(&own_values, 1);
    else
        count(&failures, 1);

    if (me % 2 == 1)
        pthread_exit(NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s THREADS\n", argv[0]);
        return 2;
    }
    char *end;
    n_threads = strtol(argv[1], &end, 10);
    if (argv[1][0] == '\0' || *end != '\0' || n_threads < 0 || n_threads > 100000) {
        fprintf(stderr, "bad THREADS: %s\n", argv[1]);
        return 2;
    }

    pthread_t *tids = malloc(sizeof *tids * (size_t)(n_threads ? n_threads : 1));
    if (tids == NULL) {
        perror("malloc");
        return 1;
    }
    for (long i = 0; i < n_threads; i++)
        check(pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i), "pthread_create");
    for (long i = 0; i < n_threads; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");

    /* Main: the keys exist now (or get created here if THREADS is 0). */
    check(pthread_once(&keys_once, init_keys), "pthread_once");
    long main_failures = 0;
    if (pthread_getspecific(key_a) != NULL || pthread_getspecific(key_b) != NULL) {
        fprintf(stderr, "main: a never-set key is not NULL\n");
        main_failures++;
    }
    pthread_key_t key_c, key_d;
    check(pthread_key_create(&key_c, NULL), "pthread_key_create C");
    if (pthread_getspecific(key_c) != NULL) {
        fprintf(stderr, "main: new key C is not NULL\n");
        main_failures++;
    }
    check(pthread_key_delete(key_c), "pthread_key_delete C");
    check(pthread_key_create(&key_d, NULL), "pthread_key_create D");
    static int marker;
    if (pthread_getspecific(key_d) != NULL) {
        fprintf(stderr, "main: new key D is not NULL\n");
        main_failures++;
    }
    check(pthread_setspecific(key_d, &marker), "pthread_setspecific D");
    if (pthread_getspecific(key_d) != &marker) {
        fprintf(stderr, "main: key D does not return its value\n");
        main_failures++;
    }
    check(pthread_setspecific(key_d, NULL), "pthread_setspecific D");
    check(pthread_key_delete(key_d), "pthread_key_delete D");

    int ok = once_inits == 1 && own_values == n_threads && destructor_a == n_threads
             && destructor_b_rounds == 2 * n_threads && failures == 0 && main_failures == 0;
    printf("threads=%ld once_inits=%ld own_values=%ld destructor_a=%ld destructor_b_rounds=%ld %s\n",
           n_threads, once_inits, own_values, destructor_a, destructor_b_rounds,
           ok ? "ok" : "FAILED");
    fflush(stdout);
    if (!ok)
        fprintf(stderr, "FAILED: %ld threads did not see their own values, %ld checks in main failed\n",
                failures, main_failures);

    free(tids);
    return ok ? 0 : 1;
}
