/* Bad-input sweep, threads and sync objects: misuse whose answer glibc defines (error
 * checking and recursive mutexes, bad timespecs and clocks for timed waits, semaphore
 * limits, key limits, bad cancel states, bad signals and scheduling values, short name
 * buffers, affinity sizes), each in main and in a green thread. */
#include "case.h"
#include <limits.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>


static struct timespec ts(long s, long ns) { struct timespec t = {s, ns}; return t; }

/* An absolute CLOCK_REALTIME time `ms` from now. */
static struct timespec in_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static void mutex_of(pthread_mutex_t *m, int kind) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, kind);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* Holds `m` on another thread until told to let go. */
struct holder { pthread_mutex_t *m; pthread_rwlock_t *rw; sem_t held, go; pthread_t t; };
static void *hold_main(void *p) {
    struct holder *h = p;
    if (h->m) pthread_mutex_lock(h->m);
    if (h->rw) pthread_rwlock_wrlock(h->rw);
    sem_post(&h->held);
    while (sem_wait(&h->go) != 0) {}
    if (h->m) pthread_mutex_unlock(h->m);
    if (h->rw) pthread_rwlock_unlock(h->rw);
    return NULL;
}
static void hold(struct holder *h, pthread_mutex_t *m, pthread_rwlock_t *rw) {
    h->m = m;
    h->rw = rw;
    sem_init(&h->held, 0, 0);
    sem_init(&h->go, 0, 0);
    pthread_create(&h->t, NULL, hold_main, h);
    while (sem_wait(&h->held) != 0) {}
}
static void release(struct holder *h) { sem_post(&h->go); pthread_join(h->t, NULL); }

/* ---- mutexes ------------------------------------------------------------------------ */

BOTH(hostile_thr_errorcheck_unlock_unlocked, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_errorcheck_relock, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); SHOWRC("lock", pthread_mutex_lock(&m)); SHOWRC("lock again", pthread_mutex_lock(&m)); SHOWRC("trylock", pthread_mutex_trylock(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_errorcheck_unlock_other_owner, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); struct holder h; hold(&h, &m, NULL); SHOWRC("unlock", pthread_mutex_unlock(&m)); release(&h); })
BOTH(hostile_thr_recursive_unlock_unlocked, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_RECURSIVE); SHOWRC("unlock", pthread_mutex_unlock(&m)); SHOWRC("lock", pthread_mutex_lock(&m)); SHOWRC("lock", pthread_mutex_lock(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); SHOWRC("unlock extra", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_recursive_unlock_other_owner, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_RECURSIVE); struct holder h; hold(&h, &m, NULL); SHOWRC("unlock", pthread_mutex_unlock(&m)); SHOWRC("trylock", pthread_mutex_trylock(&m)); release(&h); })
BOTH(hostile_thr_normal_trylock_held, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; SHOWRC("lock", pthread_mutex_lock(&m)); SHOWRC("trylock", pthread_mutex_trylock(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_destroy_locked, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_mutex_lock(&m); SHOWRC("destroy", pthread_mutex_destroy(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); SHOWRC("destroy", pthread_mutex_destroy(&m)); })
BOTH(hostile_thr_destroy_locked_by_other, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); SHOWRC("destroy", pthread_mutex_destroy(&m)); release(&h); SHOWRC("destroy after", pthread_mutex_destroy(&m)); })
BOTH(hostile_thr_timedlock_nsec_big_contended, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = ts(0, 1000000000); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); release(&h); })
BOTH(hostile_thr_timedlock_nsec_negative_contended, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = ts(0, -1); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); release(&h); })
BOTH(hostile_thr_timedlock_negative_contended, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = ts(-1, 0); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); release(&h); })
BOTH(hostile_thr_timedlock_past_contended, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = ts(1, 0); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); release(&h); })
BOTH(hostile_thr_timedlock_bad_ts_free, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct timespec t = ts(0, 1000000000); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); })
BOTH(hostile_thr_timedlock_errorcheck_self, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); pthread_mutex_lock(&m); struct timespec t = in_ms(20); SHOWRC("timedlock", pthread_mutex_timedlock(&m, &t)); })
BOTH(hostile_thr_clocklock_bad_clock, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = in_ms(20); SHOWRC("clocklock", pthread_mutex_clocklock(&m, (clockid_t)opaque(12345), &t)); release(&h); })
BOTH(hostile_thr_clocklock_cputime_clock, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct timespec t = in_ms(20); SHOWRC("clocklock", pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &t)); })
BOTH(hostile_thr_clocklock_monotonic_past, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; struct holder h; hold(&h, &m, NULL); struct timespec t = ts(0, 0); SHOWRC("clocklock", pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &t)); release(&h); })
BOTH(hostile_thr_consistent_non_robust, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; SHOWRC("consistent", pthread_mutex_consistent(&m)); pthread_mutex_lock(&m); SHOWRC("consistent held", pthread_mutex_consistent(&m)); })
BOTH(hostile_thr_mutex_init_bad_attr_type, { pthread_mutexattr_t a; pthread_mutexattr_init(&a); SHOWRC("settype", pthread_mutexattr_settype(&a, 12345)); })

/* ---- condition variables ------------------------------------------------------------ */

BOTH(hostile_thr_cond_timedwait_nsec_big, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = ts(0, 1000000000); SHOWRC("timedwait", pthread_cond_timedwait(&c, &m, &t)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_cond_timedwait_nsec_negative, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = ts(0, -1); SHOWRC("timedwait", pthread_cond_timedwait(&c, &m, &t)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_cond_timedwait_negative, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = ts(-1, 0); SHOWRC("timedwait", pthread_cond_timedwait(&c, &m, &t)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_cond_timedwait_past, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = ts(1, 0); SHOWRC("timedwait", pthread_cond_timedwait(&c, &m, &t)); SHOWRC("trylock (held)", pthread_mutex_trylock(&m)); SHOWRC("unlock", pthread_mutex_unlock(&m)); })
BOTH(hostile_thr_cond_wait_errorcheck_unowned, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); pthread_cond_t c = PTHREAD_COND_INITIALIZER; SHOWRC("wait", pthread_cond_wait(&c, &m)); })
BOTH(hostile_thr_cond_timedwait_errorcheck_unowned, { pthread_mutex_t m; mutex_of(&m, PTHREAD_MUTEX_ERRORCHECK); pthread_cond_t c = PTHREAD_COND_INITIALIZER; struct timespec t = in_ms(20); SHOWRC("timedwait", pthread_cond_timedwait(&c, &m, &t)); })
BOTH(hostile_thr_cond_clockwait_bad_clock, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = in_ms(20); SHOWRC("clockwait", pthread_cond_clockwait(&c, &m, (clockid_t)opaque(12345), &t)); pthread_mutex_unlock(&m); })
BOTH(hostile_thr_cond_clockwait_cputime, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = in_ms(20); SHOWRC("clockwait", pthread_cond_clockwait(&c, &m, CLOCK_THREAD_CPUTIME_ID, &t)); pthread_mutex_unlock(&m); })
BOTH(hostile_thr_cond_clockwait_nsec_big, { pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t c = PTHREAD_COND_INITIALIZER; pthread_mutex_lock(&m); struct timespec t = ts(0, 1000000000); SHOWRC("clockwait", pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &t)); pthread_mutex_unlock(&m); })
BOTH(hostile_thr_cond_signal_broadcast_no_waiters, { pthread_cond_t c = PTHREAD_COND_INITIALIZER; SHOWRC("signal", pthread_cond_signal(&c)); SHOWRC("broadcast", pthread_cond_broadcast(&c)); SHOWRC("destroy", pthread_cond_destroy(&c)); })
BOTH(hostile_thr_cond_init_destroy_twice, { pthread_cond_t c; SHOWRC("init", pthread_cond_init(&c, NULL)); SHOWRC("destroy", pthread_cond_destroy(&c)); SHOWRC("init", pthread_cond_init(&c, NULL)); SHOWRC("destroy", pthread_cond_destroy(&c)); })

/* ---- rwlocks, spinlocks, barriers ----------------------------------------------------- */

BOTH(hostile_thr_rwlock_wrlock_twice, { pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER; SHOWRC("wrlock", pthread_rwlock_wrlock(&l)); SHOWRC("wrlock again", pthread_rwlock_wrlock(&l)); SHOWRC("rdlock", pthread_rwlock_rdlock(&l)); SHOWRC("tryrdlock", pthread_rwlock_tryrdlock(&l)); SHOWRC("trywrlock", pthread_rwlock_trywrlock(&l)); SHOWRC("unlock", pthread_rwlock_unlock(&l)); })
BOTH(hostile_thr_rwlock_timed_bad_ts_contended, { pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER; struct holder h; hold(&h, NULL, &l); struct timespec t = ts(0, 1000000000); SHOWRC("timedrdlock", pthread_rwlock_timedrdlock(&l, &t)); SHOWRC("timedwrlock", pthread_rwlock_timedwrlock(&l, &t)); t = ts(0, -1); SHOWRC("timedrdlock neg", pthread_rwlock_timedrdlock(&l, &t)); t = ts(-1, 0); SHOWRC("timedwrlock neg sec", pthread_rwlock_timedwrlock(&l, &t)); release(&h); })
BOTH(hostile_thr_rwlock_timed_bad_ts_free, { pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER; struct timespec t = ts(0, 1000000000); SHOWRC("timedrdlock", pthread_rwlock_timedrdlock(&l, &t)); SHOWRC("trywrlock (free)", pthread_rwlock_trywrlock(&l)); SHOWRC("unlock", pthread_rwlock_unlock(&l)); SHOWRC("timedwrlock", pthread_rwlock_timedwrlock(&l, &t)); SHOWRC("tryrdlock (free)", pthread_rwlock_tryrdlock(&l)); SHOWRC("unlock", pthread_rwlock_unlock(&l)); })
BOTH(hostile_thr_rwlock_clock_bad_clock, { pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER; struct holder h; hold(&h, NULL, &l); struct timespec t = in_ms(20); SHOWRC("clockrdlock", pthread_rwlock_clockrdlock(&l, (clockid_t)opaque(12345), &t)); SHOWRC("clockwrlock", pthread_rwlock_clockwrlock(&l, CLOCK_PROCESS_CPUTIME_ID, &t)); release(&h); })
BOTH(hostile_thr_rwlock_clock_past_contended, { pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER; struct holder h; hold(&h, NULL, &l); struct timespec t = ts(0, 0); SHOWRC("clockrdlock", pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &t)); SHOWRC("clockwrlock", pthread_rwlock_clockwrlock(&l, CLOCK_REALTIME, &t)); release(&h); })
BOTH(hostile_thr_rwlock_destroy_init, { pthread_rwlock_t l; SHOWRC("init", pthread_rwlock_init(&l, NULL)); SHOWRC("destroy", pthread_rwlock_destroy(&l)); })
BOTH(hostile_thr_spin_trylock_held, { pthread_spinlock_t s; SHOWRC("init", pthread_spin_init(&s, 0)); SHOWRC("lock", pthread_spin_lock(&s)); SHOWRC("trylock", pthread_spin_trylock(&s)); SHOWRC("unlock", pthread_spin_unlock(&s)); SHOWRC("trylock", pthread_spin_trylock(&s)); SHOWRC("unlock", pthread_spin_unlock(&s)); SHOWRC("destroy", pthread_spin_destroy(&s)); })
BOTH(hostile_thr_barrier_count_zero, { pthread_barrier_t b; SHOWRC("init 0", pthread_barrier_init(&b, NULL, 0)); })
BOTH(hostile_thr_barrier_count_one, { pthread_barrier_t b; SHOWRC("init 1", pthread_barrier_init(&b, NULL, 1)); int r = pthread_barrier_wait(&b); printf("wait: %s\n", r == PTHREAD_BARRIER_SERIAL_THREAD ? "serial" : en(r)); r = pthread_barrier_wait(&b); printf("wait: %s\n", r == PTHREAD_BARRIER_SERIAL_THREAD ? "serial" : en(r)); SHOWRC("destroy", pthread_barrier_destroy(&b)); })
BOTH(hostile_thr_barrier_count_huge, { pthread_barrier_t b; SHOWRC("init", pthread_barrier_init(&b, NULL, (unsigned)opaque(-1))); })

/* ---- semaphores --------------------------------------------------------------------- */

BOTH(hostile_thr_sem_init_value_too_big, { sem_t s; SHOW("sem_init", sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1)); })
BOTH(hostile_thr_sem_post_overflow, { sem_t s; sem_init(&s, 0, SEM_VALUE_MAX); SHOW("sem_post", sem_post(&s)); int v = 0; sem_getvalue(&s, &v); printf("value=%d\n", v); })
BOTH(hostile_thr_sem_trywait_zero, { sem_t s; sem_init(&s, 0, 0); SHOW("sem_trywait", sem_trywait(&s)); })
BOTH(hostile_thr_sem_timedwait_nsec_big, { sem_t s; sem_init(&s, 0, 0); struct timespec t = ts(0, 1000000000); SHOW("sem_timedwait", sem_timedwait(&s, &t)); })
BOTH(hostile_thr_sem_timedwait_nsec_negative, { sem_t s; sem_init(&s, 0, 0); struct timespec t = ts(0, -1); SHOW("sem_timedwait", sem_timedwait(&s, &t)); })
BOTH(hostile_thr_sem_timedwait_negative, { sem_t s; sem_init(&s, 0, 0); struct timespec t = ts(-1, 0); SHOW("sem_timedwait", sem_timedwait(&s, &t)); })
BOTH(hostile_thr_sem_timedwait_bad_ts_available, { sem_t s; sem_init(&s, 0, 1); struct timespec t = ts(0, 1000000000); SHOW("sem_timedwait", sem_timedwait(&s, &t)); int v = -1; sem_getvalue(&s, &v); printf("value=%d\n", v); })
BOTH(hostile_thr_sem_timedwait_past, { sem_t s; sem_init(&s, 0, 0); struct timespec t = ts(1, 0); SHOW("sem_timedwait", sem_timedwait(&s, &t)); })
BOTH(hostile_thr_sem_clockwait_bad_clock, { sem_t s; sem_init(&s, 0, 0); struct timespec t = in_ms(20); SHOW("sem_clockwait", sem_clockwait(&s, (clockid_t)opaque(12345), &t)); })
BOTH(hostile_thr_sem_clockwait_cputime, { sem_t s; sem_init(&s, 0, 0); struct timespec t = in_ms(20); SHOW("sem_clockwait", sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &t)); })
BOTH(hostile_thr_sem_clockwait_nsec_big, { sem_t s; sem_init(&s, 0, 0); struct timespec t = ts(0, 1000000000); SHOW("sem_clockwait", sem_clockwait(&s, CLOCK_MONOTONIC, &t)); })
BOTH(hostile_thr_sem_destroy_then_init, { sem_t s; sem_init(&s, 0, 2); SHOW("destroy", sem_destroy(&s)); SHOW("init", sem_init(&s, 0, 0)); SHOW("trywait", sem_trywait(&s)); })
BOTH(hostile_thr_sem_getvalue_noaccess_out, { sem_t s; sem_init(&s, 0, 3); int v = 0; SHOW("getvalue", sem_getvalue(&s, &v)); printf("value=%d\n", v); })

/* ---- thread-specific keys ----------------------------------------------------------- */

BOTH(hostile_thr_key_exhaustion, { static pthread_key_t k[2000]; int n = 0, e = 0; while (n < 2000 && (e = pthread_key_create(&k[n], NULL)) == 0) n++; printf("create stopped: %s at least 1000: %d\n", en(e), n >= 1000); SHOWRC("setspecific last", pthread_setspecific(k[n - 1], (void *)1)); printf("getspecific last: %d\n", pthread_getspecific(k[n - 1]) == (void *)1); for (int i = 0; i < n; i++) pthread_key_delete(k[i]); SHOWRC("create after", pthread_key_create(&k[0], NULL)); pthread_key_delete(k[0]); })
/* Every key taken before the first thread starts: the thread still starts and runs (the
 * green runtime's own threads need no key of the program's then). */
static void *key_thread_runs(void *a) { return a; }
CASE(hostile_thr_keys_exhausted_before_first_thread) {
    static pthread_key_t k[2000];
    int n = 0;
    while (n < 2000 && pthread_key_create(&k[n], NULL) == 0) n++;
    printf("keys taken: at least 1000: %d\n", n >= 1000);
    pthread_t t;
    void *ret = NULL;
    SHOWRC("create", pthread_create(&t, NULL, key_thread_runs, (void *)1));
    SHOWRC("join", pthread_join(t, &ret));
    printf("thread ran: %d\n", ret == (void *)1);
    for (int i = 0; i < n; i++) pthread_key_delete(k[i]);
}
BOTH(hostile_thr_key_delete_invalid, { SHOWRC("delete huge", pthread_key_delete((pthread_key_t)opaque(1 << 20))); SHOWRC("delete -1", pthread_key_delete((pthread_key_t)opaque(-1))); })
BOTH(hostile_thr_key_delete_twice, { pthread_key_t k; pthread_key_create(&k, NULL); SHOWRC("delete", pthread_key_delete(k)); SHOWRC("delete again", pthread_key_delete(k)); })
BOTH(hostile_thr_setspecific_invalid, { SHOWRC("setspecific huge", pthread_setspecific((pthread_key_t)opaque(1 << 20), (void *)1)); SHOWRC("setspecific 2000", pthread_setspecific((pthread_key_t)opaque(2000), (void *)1)); })
BOTH(hostile_thr_setspecific_deleted, { pthread_key_t k; pthread_key_create(&k, NULL); pthread_key_delete(k); SHOWRC("setspecific", pthread_setspecific(k, (void *)1)); })
BOTH(hostile_thr_getspecific_invalid, { printf("getspecific huge: %s\n", pthread_getspecific((pthread_key_t)opaque(1 << 20)) ? "set" : "NULL"); printf("getspecific 1024: %s\n", pthread_getspecific((pthread_key_t)opaque(1024)) ? "set" : "NULL"); })
BOTH(hostile_thr_getspecific_deleted_then_recreated, { pthread_key_t k, k2; pthread_key_create(&k, NULL); pthread_setspecific(k, (void *)1); pthread_key_delete(k); pthread_key_create(&k2, NULL); printf("same slot: %d value: %s\n", k == k2, pthread_getspecific(k2) ? "stale" : "NULL"); })

/* ---- thread API misuse ---------------------------------------------------------------- */

static void *quick(void *a) { return a; }
static void *napper(void *a) { msleep(60); return a; }

BOTH(hostile_thr_join_self, { SHOWRC("join self", pthread_join(pthread_self(), NULL)); })
BOTH(hostile_thr_tryjoin_running, { pthread_t t; pthread_create(&t, NULL, napper, NULL); SHOWRC("tryjoin", pthread_tryjoin_np(t, NULL)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_timedjoin_nsec_big, { pthread_t t; pthread_create(&t, NULL, napper, NULL); struct timespec ts_ = ts(0, 1000000000); SHOWRC("timedjoin", pthread_timedjoin_np(t, NULL, &ts_)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_timedjoin_past, { pthread_t t; pthread_create(&t, NULL, napper, NULL); struct timespec ts_ = ts(1, 0); SHOWRC("timedjoin", pthread_timedjoin_np(t, NULL, &ts_)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_timedjoin_negative, { pthread_t t; pthread_create(&t, NULL, napper, NULL); struct timespec ts_ = ts(-1, 0); SHOWRC("timedjoin", pthread_timedjoin_np(t, NULL, &ts_)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_clockjoin_bad_clock, { pthread_t t; pthread_create(&t, NULL, napper, NULL); struct timespec ts_ = ts(0, 0); SHOWRC("clockjoin", pthread_clockjoin_np(t, NULL, (clockid_t)opaque(12345), &ts_)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_clockjoin_cputime_clock, { pthread_t t; pthread_create(&t, NULL, napper, NULL); struct timespec ts_ = ts(0, 0); SHOWRC("clockjoin", pthread_clockjoin_np(t, NULL, CLOCK_PROCESS_CPUTIME_ID, &ts_)); SHOWRC("join", pthread_join(t, NULL)); })
BOTH(hostile_thr_join_detached_running, { pthread_t t; pthread_attr_t a; pthread_attr_init(&a); pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED); pthread_create(&t, &a, napper, NULL); SHOWRC("join detached", pthread_join(t, NULL)); SHOWRC("detach again", pthread_detach(t)); msleep(120); })
BOTH(hostile_thr_create_bad_attr_stacksize, { pthread_attr_t a; pthread_attr_init(&a); SHOWRC("setstacksize 1", pthread_attr_setstacksize(&a, 1)); })
BOTH(hostile_thr_create_bad_detachstate, { pthread_attr_t a; pthread_attr_init(&a); SHOWRC("setdetachstate", pthread_attr_setdetachstate(&a, 12345)); })
BOTH(hostile_thr_create_huge_stack, { pthread_attr_t a; pthread_attr_init(&a); pthread_attr_setstacksize(&a, (size_t)1 << 46); pthread_t t; SHOWRC("create", pthread_create(&t, &a, quick, NULL)); })
BOTH(hostile_thr_setcancelstate_bad, { int old; SHOWRC("setcancelstate", pthread_setcancelstate(12345, &old)); SHOWRC("setcanceltype", pthread_setcanceltype(12345, &old)); SHOWRC("setcancelstate NULL old", pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL)); })
BOTH(hostile_thr_cancel_finished_unjoined, { pthread_t t; pthread_create(&t, NULL, quick, NULL); msleep(30); SHOWRC("cancel", pthread_cancel(t)); void *r = (void *)1; SHOWRC("join", pthread_join(t, &r)); printf("canceled=%d\n", r == PTHREAD_CANCELED); })
BOTH(hostile_thr_kill_bad_signal, { SHOWRC("kill 12345", pthread_kill(pthread_self(), 12345)); SHOWRC("kill -1", pthread_kill(pthread_self(), -1)); SHOWRC("kill 0", pthread_kill(pthread_self(), 0)); })
BOTH(hostile_thr_kill_finished_unjoined, { pthread_t t; pthread_create(&t, NULL, quick, NULL); msleep(30); SHOWRC("kill 0", pthread_kill(t, 0)); pthread_join(t, NULL); })
BOTH(hostile_thr_sigqueue_bad_signal, { union sigval v = {0}; SHOWRC("sigqueue 12345", pthread_sigqueue(pthread_self(), 12345, v)); SHOWRC("sigqueue 0", pthread_sigqueue(pthread_self(), 0, v)); })
BOTH(hostile_thr_setschedparam_bad_policy, { struct sched_param p = {0}; SHOWRC("setschedparam", pthread_setschedparam(pthread_self(), 12345, &p)); })
BOTH(hostile_thr_setschedparam_bad_priority, { struct sched_param p = {.sched_priority = 5}; SHOWRC("setschedparam other prio 5", pthread_setschedparam(pthread_self(), SCHED_OTHER, &p)); p.sched_priority = 1000; SHOWRC("setschedparam fifo 1000", pthread_setschedparam(pthread_self(), SCHED_FIFO, &p)); })
BOTH(hostile_thr_setschedprio_bad, { SHOWRC("setschedprio 1000", pthread_setschedprio(pthread_self(), 1000)); SHOWRC("setschedprio -1", pthread_setschedprio(pthread_self(), -1)); })
BOTH(hostile_thr_getschedparam, { struct sched_param p; int pol = -1; SHOWRC("getschedparam", pthread_getschedparam(pthread_self(), &pol, &p)); printf("policy=%d prio=%d\n", pol, p.sched_priority); })
BOTH(hostile_thr_setname_too_long, { SHOWRC("setname 16", pthread_setname_np(pthread_self(), "0123456789abcdef")); SHOWRC("setname 15", pthread_setname_np(pthread_self(), "0123456789abcde")); char n[32]; SHOWRC("getname", pthread_getname_np(pthread_self(), n, sizeof n)); printf("name=%s\n", n); })
BOTH(hostile_thr_getname_short_buffer, { pthread_setname_np(pthread_self(), "longish-name"); char n[4]; SHOWRC("getname 4", pthread_getname_np(pthread_self(), n, sizeof n)); SHOWRC("getname 0", pthread_getname_np(pthread_self(), n, 0)); })
BOTH(hostile_thr_setaffinity_bad_size, { cpu_set_t s; CPU_ZERO(&s); CPU_SET(0, &s); SHOWRC("setaffinity 0 size", pthread_setaffinity_np(pthread_self(), 0, &s)); CPU_ZERO(&s); SHOWRC("setaffinity empty", pthread_setaffinity_np(pthread_self(), sizeof s, &s)); })
BOTH(hostile_thr_getaffinity_small_size, { cpu_set_t s; SHOWRC("getaffinity 1 byte", pthread_getaffinity_np(pthread_self(), 1, &s)); SHOWRC("getaffinity 0", pthread_getaffinity_np(pthread_self(), 0, &s)); })
BOTH(hostile_thr_getcpuclockid_self, { clockid_t c; SHOWRC("getcpuclockid", pthread_getcpuclockid(pthread_self(), &c)); })
BOTH(hostile_thr_getattr_np_self, { pthread_attr_t a; SHOWRC("getattr_np", pthread_getattr_np(pthread_self(), &a)); int d = -1; pthread_attr_getdetachstate(&a, &d); printf("detachstate=%d\n", d); pthread_attr_destroy(&a); })
static int once_n;
static void once_a(void) { once_n++; }
static void once_b(void) { once_n += 10; }
static pthread_once_t once_main = PTHREAD_ONCE_INIT, once_thread = PTHREAD_ONCE_INIT;
static int once_calls;
BOTH(hostile_thr_once_twice, { pthread_once_t *o = once_calls++ ? &once_thread : &once_main; once_n = 0; SHOWRC("once", pthread_once(o, once_a)); SHOWRC("once again", pthread_once(o, once_b)); printf("n=%d\n", once_n); })
BOTH(hostile_thr_sigmask_bad_how, { sigset_t s; sigemptyset(&s); SHOWRC("pthread_sigmask", pthread_sigmask(12345, &s, NULL)); })
BOTH(hostile_thr_equal_self, { printf("equal: %d\n", pthread_equal(pthread_self(), pthread_self())); })
/* 1,000, not more: natively beside busy threads each sched_yield may give away a whole
   time slice (100,000 ran past the case's timeout on a loaded machine). */
CASE(hostile_thr_yield_storm) { for (int i = 0; i < 1000; i++) sched_yield(); puts("yielded"); }
