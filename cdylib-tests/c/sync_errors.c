/* The error codes and timeouts of the synchronisation API, one line per check. Identical
 * natively and greenified. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *en(int e) { return e ? strerrorname_np(e) : "0"; }
#define SHOW(name, r) printf("%s: %s\n", name, en(r))

static struct timespec in_ms(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static double since(struct timespec t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
}

/* Prints whether a timed call took at least its timeout (and not absurdly long). */
static void timed(const char *name, int r, struct timespec t0, long ms) {
    double took = since(t0);
    printf("%s: %s waited=%s\n", name, en(r), took >= ms - 1 ? (took < ms + 1000 ? "ok" : "late") : "early");
}

static pthread_mutex_t m_err, m_rec, m_norm;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t spin;
static sem_t sem;

static void *from_other(void *what) {
    const char *w = what;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!strcmp(w, "unlock errorcheck")) SHOW("unlock errorcheck by non-owner", pthread_mutex_unlock(&m_err));
    if (!strcmp(w, "unlock recursive")) SHOW("unlock recursive by non-owner", pthread_mutex_unlock(&m_rec));
    if (!strcmp(w, "trylock")) SHOW("trylock held by other", pthread_mutex_trylock(&m_norm));
    if (!strcmp(w, "timedlock")) {
        struct timespec t = in_ms(CLOCK_REALTIME, 50);
        timed("timedlock realtime", pthread_mutex_timedlock(&m_norm, &t), t0, 50);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        t = in_ms(CLOCK_MONOTONIC, 50);
        timed("clocklock monotonic", pthread_mutex_clocklock(&m_norm, CLOCK_MONOTONIC, &t), t0, 50);
        SHOW("clocklock bad clock", pthread_mutex_clocklock(&m_norm, CLOCK_PROCESS_CPUTIME_ID, &t));
        t.tv_nsec = 1000000000L;
        SHOW("timedlock bad nsec held", pthread_mutex_timedlock(&m_norm, &t));
    }
    if (!strcmp(w, "rwlock")) {
        SHOW("tryrdlock write-held by other", pthread_rwlock_tryrdlock(&rw));
        struct timespec t = in_ms(CLOCK_REALTIME, 50);
        timed("timedrdlock", pthread_rwlock_timedrdlock(&rw, &t), t0, 50);
    }
    if (!strcmp(w, "spin")) SHOW("spin trylock held", pthread_spin_trylock(&spin));
    if (!strcmp(w, "robust")) {
        pthread_mutex_lock(&m_norm); /* m_norm is robust here; exit holding it */
    }
    return NULL;
}

static void other(const char *what) {
    pthread_t t;
    pthread_create(&t, NULL, from_other, (void *)what);
    pthread_join(t, NULL);
}

int main(void) {
    pthread_mutexattr_t a;
    int v;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutexattr_gettype(&a, &v);
    printf("mutexattr type roundtrip: %d\n", v == PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&m_err, &a);
    SHOW("errorcheck lock", pthread_mutex_lock(&m_err));
    SHOW("errorcheck relock", pthread_mutex_lock(&m_err));
    SHOW("errorcheck trylock self", pthread_mutex_trylock(&m_err));
    SHOW("destroy locked", pthread_mutex_destroy(&m_err));
    other("unlock errorcheck");
    SHOW("errorcheck unlock", pthread_mutex_unlock(&m_err));
    SHOW("errorcheck unlock unlocked", pthread_mutex_unlock(&m_err));
    SHOW("destroy unlocked", pthread_mutex_destroy(&m_err));

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m_rec, &a);
    int r = 0;
    for (int i = 0; i < 3; i++) r |= pthread_mutex_lock(&m_rec);
    r |= pthread_mutex_trylock(&m_rec);
    SHOW("recursive lock x3 + trylock", r);
    other("unlock recursive");
    r = 0;
    for (int i = 0; i < 4; i++) r |= pthread_mutex_unlock(&m_rec);
    SHOW("recursive unlock x4", r);
    SHOW("recursive unlock once more", pthread_mutex_unlock(&m_rec));

    pthread_mutex_init(&m_norm, NULL);
    pthread_mutex_lock(&m_norm);
    other("trylock");
    other("timedlock");
    pthread_mutex_unlock(&m_norm);
    struct timespec bad = { 0, 1000000000L };
    SHOW("timedlock bad nsec free", pthread_mutex_timedlock(&m_norm, &bad));
    pthread_mutex_unlock(&m_norm);

    static pthread_mutex_t s1 = PTHREAD_MUTEX_INITIALIZER;
    static pthread_mutex_t s2 = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    static pthread_mutex_t s3 = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    static pthread_mutex_t s4 = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
    r = pthread_mutex_lock(&s1) | pthread_mutex_unlock(&s1);
    SHOW("static normal", r);
    r = pthread_mutex_lock(&s2) | pthread_mutex_lock(&s2) | pthread_mutex_unlock(&s2) | pthread_mutex_unlock(&s2);
    SHOW("static recursive relock", r);
    pthread_mutex_lock(&s3);
    SHOW("static errorcheck relock", pthread_mutex_lock(&s3));
    pthread_mutex_unlock(&s3);
    SHOW("static adaptive", pthread_mutex_lock(&s4) | pthread_mutex_unlock(&s4));

    /* robust: the owner exits holding it */
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m_norm, &a);
    other("robust");
    SHOW("robust lock after owner died", pthread_mutex_lock(&m_norm));
    SHOW("robust consistent", pthread_mutex_consistent(&m_norm));
    SHOW("robust unlock", pthread_mutex_unlock(&m_norm));
    SHOW("robust lock again", pthread_mutex_lock(&m_norm));
    pthread_mutex_unlock(&m_norm);
    other("robust");
    SHOW("robust lock, owner died again", pthread_mutex_lock(&m_norm));
    pthread_mutex_unlock(&m_norm); /* without consistent: unrecoverable */
    SHOW("robust lock unrecoverable", pthread_mutex_lock(&m_norm));

    /* condition variables */
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_STALLED);
    pthread_mutex_init(&m_err, &a);
    SHOW("cond wait without the mutex", pthread_cond_wait(&c, &m_err));
    pthread_mutex_lock(&m_err);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_REALTIME, 50);
    timed("cond timedwait realtime", pthread_cond_timedwait(&c, &m_err, &t), t0, 50);
    SHOW("mutex held after timeout (unlock)", pthread_mutex_unlock(&m_err));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t cm;
    pthread_cond_init(&cm, &ca);
    pthread_mutex_lock(&m_err);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_MONOTONIC, 50);
    timed("cond timedwait monotonic attr", pthread_cond_timedwait(&cm, &m_err, &t), t0, 50);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_REALTIME, 50);
    timed("cond clockwait realtime", pthread_cond_clockwait(&cm, &m_err, CLOCK_REALTIME, &t), t0, 50);
    SHOW("cond clockwait bad clock", pthread_cond_clockwait(&cm, &m_err, CLOCK_THREAD_CPUTIME_ID, &t));
    SHOW("cond timedwait bad nsec", pthread_cond_timedwait(&cm, &m_err, &bad));
    pthread_mutex_unlock(&m_err);
    SHOW("cond signal/broadcast without waiters", pthread_cond_signal(&c) | pthread_cond_broadcast(&c));
    SHOW("cond destroy", pthread_cond_destroy(&cm));

    /* semaphores */
    SHOW("sem_init too big", sem_init(&sem, 0, (unsigned)SEM_VALUE_MAX + 1) ? errno : 0);
    sem_init(&sem, 0, 0);
    SHOW("sem_trywait empty", sem_trywait(&sem) ? errno : 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_REALTIME, 50);
    timed("sem_timedwait", sem_timedwait(&sem, &t) ? errno : 0, t0, 50);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_MONOTONIC, 50);
    timed("sem_clockwait monotonic", sem_clockwait(&sem, CLOCK_MONOTONIC, &t) ? errno : 0, t0, 50);
    SHOW("sem_timedwait bad nsec", sem_timedwait(&sem, &bad) ? errno : 0);
    sem_post(&sem);
    sem_post(&sem);
    sem_getvalue(&sem, &v);
    printf("sem value after 2 posts: %d\n", v);
    SHOW("sem_trywait full", sem_trywait(&sem) ? errno : 0);
    sem_init(&sem, 0, SEM_VALUE_MAX);
    SHOW("sem_post overflow", sem_post(&sem) ? errno : 0);

    /* rwlocks */
    SHOW("wrlock", pthread_rwlock_wrlock(&rw));
    SHOW("wrlock again", pthread_rwlock_wrlock(&rw));
    SHOW("rdlock while writing", pthread_rwlock_rdlock(&rw));
    other("rwlock");
    SHOW("rwlock unlock", pthread_rwlock_unlock(&rw));
    SHOW("rdlock twice", pthread_rwlock_rdlock(&rw) | pthread_rwlock_rdlock(&rw));
    SHOW("trywrlock read-held", pthread_rwlock_trywrlock(&rw));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t = in_ms(CLOCK_MONOTONIC, 50);
    timed("clockwrlock read-held", pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &t), t0, 50);
    SHOW("rwlock unlock x2", pthread_rwlock_unlock(&rw) | pthread_rwlock_unlock(&rw));

    /* barriers, spinlocks, keys */
    pthread_barrier_t b;
    SHOW("barrier count 0", pthread_barrier_init(&b, NULL, 0));
    pthread_barrier_init(&b, NULL, 1);
    printf("barrier of one: serial=%d\n", pthread_barrier_wait(&b) == PTHREAD_BARRIER_SERIAL_THREAD);
    SHOW("barrier destroy", pthread_barrier_destroy(&b));
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_spin_lock(&spin);
    other("spin");
    SHOW("spin unlock", pthread_spin_unlock(&spin));
    pthread_key_t k;
    pthread_key_create(&k, NULL);
    pthread_setspecific(k, (void *)42);
    printf("getspecific: %ld\n", (long)pthread_getspecific(k));
    SHOW("key delete", pthread_key_delete(k));
    SHOW("key delete again", pthread_key_delete(k));
    SHOW("setspecific deleted key", pthread_setspecific(k, (void *)1));
    return 0;
}
