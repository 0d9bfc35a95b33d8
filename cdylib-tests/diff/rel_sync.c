/* Synchronisation under stress: waits under a 1 ms signal storm (which are restarted after
 * an SA_RESTART handler, which return EINTR), cancellation inside condition and semaphore
 * waits (and the waits that are not cancellation points), busy-waits built on try-calls,
 * and ping-pong pairs that must keep going while other threads never wait. */
#include "case.h"
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/time.h>

/* No case comes near this natively. */
KILL_IF_HUNG_AFTER(10);

static struct timespec in_ms(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int r = pthread_create(&t, NULL, fn, arg);
    if (r) { printf("pthread_create failed: %s\n", en(r)); exit(1); }
    return t;
}

/* ---------------------------------------------------------------- the signal storm */

static volatile sig_atomic_t storm_signals;
static void storm_handler(int sig) { (void)sig; storm_signals++; }

/* SIGALRM every millisecond (process-directed: the kernel gives it to the main thread,
 * which does every wait below), with or without SA_RESTART. */
static void storm_start(int restart) {
    struct sigaction sa = { 0 };
    sa.sa_handler = storm_handler;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static void storm_stop(void) {
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN);
}

static sem_t storm_sem;
/* Posts once 100 ms have passed and the storm has shown itself (more than 10 signals
 * handled, which a loaded machine may take longer to deliver), so that the waiter has
 * surely lived through many signals, natively too. */
static void *post_after_100ms(void *arg) {
    (void)arg;
    msleep(100);
    while (storm_signals <= 10) msleep(5);
    sem_post(&storm_sem);
    return NULL;
}

/* Waits for storm_sem (posted 100 ms later by another thread) with `how`, retrying on
 * EINTR; returns the final result, and how many EINTRs came before it in *eintrs. */
enum sem_how { SEM_WAIT, SEM_TIMEDWAIT, SEM_CLOCKWAIT };
static int sem_wait_counting(enum sem_how how, int *eintrs) {
    sem_init(&storm_sem, 0, 0);
    pthread_t t = spawn(post_after_100ms, NULL);
    struct timespec rt = in_ms(CLOCK_REALTIME, 5000), mono = in_ms(CLOCK_MONOTONIC, 5000);
    int r;
    *eintrs = 0;
    for (;;) {
        r = how == SEM_WAIT        ? sem_wait(&storm_sem)
            : how == SEM_TIMEDWAIT ? sem_timedwait(&storm_sem, &rt)
                                   : sem_clockwait(&storm_sem, CLOCK_MONOTONIC, &mono);
        if (r == -1 && errno == EINTR) {
            ++*eintrs;
            continue;
        }
        break;
    }
    pthread_join(t, NULL);
    return r;
}

/* signal(7): sem_wait is restarted after an SA_RESTART handler (the kernel restarts
 * glibc's untimed futex wait); code that does not check its result relies on that. */
CASE(rel_sem_wait_restarted_under_sa_restart_storm) {
    int eintrs;
    storm_start(1);
    int r = sem_wait_counting(SEM_WAIT, &eintrs);
    storm_stop();
    printf("sem_wait: ret=%d EINTRs before it: %d\n", r, eintrs);
    printf("signals arrived: %s\n", storm_signals > 10 ? "many" : "few");
}

/* The timed waits are never restarted, SA_RESTART or not. */
CASE(rel_sem_timed_waits_eintr_under_sa_restart_storm) {
    int e1, e2;
    storm_start(1);
    int r1 = sem_wait_counting(SEM_TIMEDWAIT, &e1);
    int r2 = sem_wait_counting(SEM_CLOCKWAIT, &e2);
    storm_stop();
    printf("sem_timedwait: ret=%d saw EINTR: %d\n", r1, e1 > 0);
    printf("sem_clockwait: ret=%d saw EINTR: %d\n", r2, e2 > 0);
}

CASE(rel_sem_waits_eintr_without_sa_restart_storm) {
    int e0, e1, e2;
    storm_start(0);
    int r0 = sem_wait_counting(SEM_WAIT, &e0);
    int r1 = sem_wait_counting(SEM_TIMEDWAIT, &e1);
    int r2 = sem_wait_counting(SEM_CLOCKWAIT, &e2);
    storm_stop();
    printf("sem_wait: ret=%d saw EINTR: %d\n", r0, e0 > 0);
    printf("sem_timedwait: ret=%d saw EINTR: %d\n", r1, e1 > 0);
    printf("sem_clockwait: ret=%d saw EINTR: %d\n", r2, e2 > 0);
}

/* The pthread waits never return EINTR, restarted or not: each is released by a thread
 * 100 ms later while the storm goes on. */
static pthread_mutex_t storm_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t storm_c = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t storm_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t storm_b;
static int storm_flag;
static volatile int storm_held;

static void *hold_mutex_100ms(void *arg) {
    (void)arg;
    pthread_mutex_lock(&storm_m);
    __atomic_store_n(&storm_held, 1, __ATOMIC_SEQ_CST);
    msleep(100);
    pthread_mutex_unlock(&storm_m);
    return NULL;
}

static void *signal_after_100ms(void *arg) {
    (void)arg;
    msleep(100);
    pthread_mutex_lock(&storm_m);
    storm_flag = 1;
    pthread_cond_signal(&storm_c);
    pthread_mutex_unlock(&storm_m);
    return NULL;
}

static void *hold_rwlock_100ms(void *arg) {
    if (arg) pthread_rwlock_wrlock(&storm_rw);
    else pthread_rwlock_rdlock(&storm_rw);
    __atomic_store_n(&storm_held, 1, __ATOMIC_SEQ_CST);
    msleep(100);
    pthread_rwlock_unlock(&storm_rw);
    return NULL;
}

static void *barrier_after_100ms(void *arg) {
    (void)arg;
    msleep(100);
    pthread_barrier_wait(&storm_b);
    return NULL;
}

static void *sleep_100ms(void *arg) {
    msleep(100);
    return arg;
}

/* Starts fn and waits until it holds its lock. */
static pthread_t spawn_holder(void *(*fn)(void *), void *arg) {
    __atomic_store_n(&storm_held, 0, __ATOMIC_SEQ_CST);
    pthread_t t = spawn(fn, arg);
    while (!__atomic_load_n(&storm_held, __ATOMIC_SEQ_CST)) msleep(1);
    return t;
}

static void pthread_waits_under_storm(int restart) {
    int rc[9];
    pthread_t t;
    storm_start(restart);
    t = spawn_holder(hold_mutex_100ms, NULL);
    rc[0] = pthread_mutex_lock(&storm_m);
    pthread_mutex_unlock(&storm_m);
    pthread_join(t, NULL);
    t = spawn_holder(hold_mutex_100ms, NULL);
    struct timespec d = in_ms(CLOCK_REALTIME, 5000);
    rc[1] = pthread_mutex_timedlock(&storm_m, &d);
    pthread_mutex_unlock(&storm_m);
    pthread_join(t, NULL);
    pthread_mutex_lock(&storm_m);
    storm_flag = 0;
    t = spawn(signal_after_100ms, NULL);
    rc[2] = 0;
    while (!storm_flag && !rc[2]) rc[2] = pthread_cond_wait(&storm_c, &storm_m);
    storm_flag = 0;
    pthread_mutex_unlock(&storm_m);
    pthread_join(t, NULL);
    pthread_mutex_lock(&storm_m);
    t = spawn(signal_after_100ms, NULL);
    d = in_ms(CLOCK_REALTIME, 5000);
    rc[3] = 0;
    while (!storm_flag && !rc[3]) rc[3] = pthread_cond_timedwait(&storm_c, &storm_m, &d);
    pthread_mutex_unlock(&storm_m);
    pthread_join(t, NULL);
    t = spawn_holder(hold_rwlock_100ms, (void *)1);
    rc[4] = pthread_rwlock_rdlock(&storm_rw);
    pthread_rwlock_unlock(&storm_rw);
    pthread_join(t, NULL);
    t = spawn_holder(hold_rwlock_100ms, NULL);
    rc[5] = pthread_rwlock_wrlock(&storm_rw);
    pthread_rwlock_unlock(&storm_rw);
    pthread_join(t, NULL);
    t = spawn_holder(hold_rwlock_100ms, (void *)1);
    d = in_ms(CLOCK_REALTIME, 5000);
    rc[6] = pthread_rwlock_timedrdlock(&storm_rw, &d);
    pthread_rwlock_unlock(&storm_rw);
    pthread_join(t, NULL);
    pthread_barrier_init(&storm_b, NULL, 2);
    t = spawn(barrier_after_100ms, NULL);
    rc[7] = pthread_barrier_wait(&storm_b);
    if (rc[7] == PTHREAD_BARRIER_SERIAL_THREAD) rc[7] = 0;
    pthread_join(t, NULL);
    pthread_barrier_destroy(&storm_b);
    void *v = NULL;
    rc[8] = pthread_join(spawn(sleep_100ms, (void *)7L), &v);
    storm_stop();
    const char *names[9] = { "mutex_lock", "mutex_timedlock", "cond_wait", "cond_timedwait",
                             "rwlock_rdlock", "rwlock_wrlock", "rwlock_timedrdlock",
                             "barrier_wait", "join" };
    for (int i = 0; i < 9; i++) printf("%s: %s\n", names[i], en(rc[i]));
    printf("joined value: %ld\n", (long)v);
    printf("signals arrived: %s\n", storm_signals > 10 ? "many" : "few");
}

CASE(rel_pthread_waits_under_sa_restart_storm) { pthread_waits_under_storm(1); }
CASE(rel_pthread_waits_under_storm_without_sa_restart) { pthread_waits_under_storm(0); }

/* ---------------------------------------------------------------- cancellation */

static pthread_mutex_t cm;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int c_waiting, c_go;

/* What the cleanup handler saw (printed by main after the join: printing from the
 * cancelled thread would race with main's own lines). */
static const char *cleanup_saw;

/* An errorcheck mutex: unlocking it from the cleanup handler says whether the handler
 * runs holding it (0) or not (EPERM). */
static void cancel_setup(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&cm, &a);
    pthread_mutexattr_destroy(&a);
    pthread_cond_init(&cc, NULL);
    c_waiting = c_go = 0;
    cleanup_saw = "not run";
}

static void unlock_in_cleanup(void *arg) {
    (void)arg;
    cleanup_saw = en(pthread_mutex_unlock(&cm));
}

enum cond_how { COND_WAIT, COND_TIMEDWAIT, COND_CLOCKWAIT_MONO };

static void *cond_waiter(void *arg) {
    enum cond_how how = (enum cond_how)(long)arg;
    pthread_mutex_lock(&cm);
    pthread_cleanup_push(unlock_in_cleanup, NULL);
    c_waiting = 1;
    pthread_cond_broadcast(&cc);
    struct timespec rt = in_ms(CLOCK_REALTIME, 5000), mono = in_ms(CLOCK_MONOTONIC, 5000);
    while (!c_go) {
        int r = how == COND_WAIT        ? pthread_cond_wait(&cc, &cm)
                : how == COND_TIMEDWAIT ? pthread_cond_timedwait(&cc, &cm, &rt)
                                        : pthread_cond_clockwait(&cc, &cm, CLOCK_MONOTONIC, &mono);
        if (r) { printf("wait: %s\n", en(r)); break; }
    }
    printf("wait returned (not cancelled)\n");
    pthread_cleanup_pop(1);
    return NULL;
}

/* Cancels a thread once it waits on cc (it set c_waiting under cm, then waited: holding
 * cm here means it is inside the wait), then joins it (bounded). */
static void cancel_cond_waiter(enum cond_how how) {
    cancel_setup();
    pthread_t t = spawn(cond_waiter, (void *)(long)how);
    pthread_mutex_lock(&cm);
    while (!c_waiting) pthread_cond_wait(&cc, &cm);
    pthread_mutex_unlock(&cm);
    SHOWRC("cancel", pthread_cancel(t));
    void *v = NULL;
    struct timespec d = in_ms(CLOCK_REALTIME, 2000);
    int r = pthread_timedjoin_np(t, &v, &d);
    printf("join: %s, value is PTHREAD_CANCELED: %d, cleanup: %s\n", en(r), v == PTHREAD_CANCELED,
           cleanup_saw);
    if (r) { /* still waiting: let it go, so that the process can end */
        pthread_mutex_lock(&cm);
        c_go = 1;
        pthread_cond_broadcast(&cc);
        pthread_mutex_unlock(&cm);
        pthread_join(t, NULL);
    }
    d = in_ms(CLOCK_REALTIME, 500);
    r = pthread_mutex_timedlock(&cm, &d);
    printf("mutex free afterwards: %s\n", en(r));
    if (!r) pthread_mutex_unlock(&cm);
}

/* POSIX: pthread_cond_wait is a cancellation point, and the mutex is held again when the
 * cleanup handlers run (a thread pool cancels its idle workers exactly there). */
CASE(rel_cancel_in_cond_wait_cleanup_holds_mutex) { cancel_cond_waiter(COND_WAIT); }
CASE(rel_cancel_in_cond_timedwait_cleanup_holds_mutex) { cancel_cond_waiter(COND_TIMEDWAIT); }
CASE(rel_cancel_in_cond_clockwait_cleanup_holds_mutex) {
    cancel_cond_waiter(COND_CLOCKWAIT_MONO);
}

/* A cancel request pending when the wait begins acts there, with the mutex held. */
static void *cond_waiter_cancelled_before(void *arg) {
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_mutex_lock(&cm);
    c_waiting = 1;
    pthread_cond_broadcast(&cc);
    while (c_waiting != 2) pthread_cond_wait(&cc, &cm); /* not cancellable yet */
    pthread_cleanup_push(unlock_in_cleanup, NULL);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_cond_wait(&cc, &cm);
    printf("wait returned (not cancelled)\n");
    pthread_cleanup_pop(1);
    return NULL;
}

CASE(rel_cancel_pending_acts_at_cond_wait_entry) {
    cancel_setup();
    pthread_t t = spawn(cond_waiter_cancelled_before, NULL);
    pthread_mutex_lock(&cm);
    while (!c_waiting) pthread_cond_wait(&cc, &cm);
    SHOWRC("cancel", pthread_cancel(t));
    c_waiting = 2;
    pthread_cond_broadcast(&cc);
    pthread_mutex_unlock(&cm);
    void *v = NULL;
    struct timespec d = in_ms(CLOCK_REALTIME, 2000);
    int r = pthread_timedjoin_np(t, &v, &d);
    printf("join: %s, value is PTHREAD_CANCELED: %d, cleanup: %s\n", en(r), v == PTHREAD_CANCELED,
           cleanup_saw);
    if (r) {
        pthread_mutex_lock(&cm);
        pthread_cond_broadcast(&cc);
        pthread_mutex_unlock(&cm);
        pthread_join(t, NULL);
    }
}

/* How far a thread got before a pending cancel acted (printed by main: printf writes,
 * and write is a cancellation point itself). */
static volatile int stage;

/* With cancellation disabled, a cancel does not end the wait; a signal does, and the
 * request acts at the next cancellation point once enabled. */
static void *cond_waiter_disabled(void *arg) {
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    pthread_mutex_lock(&cm);
    c_waiting = 1;
    pthread_cond_broadcast(&cc);
    while (!c_go) pthread_cond_wait(&cc, &cm);
    pthread_mutex_unlock(&cm);
    stage = 1;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_testcancel();
    stage = 2;
    return NULL;
}

CASE(rel_cancel_disabled_in_cond_wait_waits_for_signal) {
    cancel_setup();
    pthread_t t = spawn(cond_waiter_disabled, NULL);
    pthread_mutex_lock(&cm);
    while (!c_waiting) pthread_cond_wait(&cc, &cm);
    pthread_mutex_unlock(&cm);
    stage = 0;
    SHOWRC("cancel", pthread_cancel(t));
    msleep(50);
    SHOWRC("tryjoin after 50 ms", pthread_tryjoin_np(t, NULL));
    pthread_mutex_lock(&cm);
    c_go = 1;
    pthread_cond_signal(&cc);
    pthread_mutex_unlock(&cm);
    void *v = NULL;
    SHOWRC("join", pthread_join(t, &v));
    printf("value is PTHREAD_CANCELED: %d, stage reached: %d, cleanup: %s\n",
           v == PTHREAD_CANCELED, stage, cleanup_saw);
}

/* sem_wait and sem_timedwait are cancellation points in glibc (a request pending before
 * the call acts at its start, so the result does not depend on timing). */
static sem_t cs;
static void note_cleanup(void *arg) { cleanup_saw = arg; }

static void *sem_waiter(void *arg) {
    long timed = (long)arg;
    pthread_cleanup_push(note_cleanup, timed ? "sem_timedwait" : "sem_wait");
    struct timespec d = in_ms(CLOCK_REALTIME, 5000);
    int r = timed ? sem_timedwait(&cs, &d) : sem_wait(&cs);
    stage = 10 + r;
    pthread_cleanup_pop(0);
    return NULL;
}

static void cancel_sem_waiter(long timed) {
    sem_init(&cs, 0, 0);
    stage = 0;
    cleanup_saw = "not run";
    pthread_t t = spawn(sem_waiter, (void *)timed);
    msleep(20);
    SHOWRC("cancel", pthread_cancel(t));
    void *v = NULL;
    struct timespec d = in_ms(CLOCK_REALTIME, 2000);
    int r = pthread_timedjoin_np(t, &v, &d);
    printf("join: %s, value is PTHREAD_CANCELED: %d, cleanup: %s\n", en(r), v == PTHREAD_CANCELED,
           cleanup_saw);
    if (r) {
        sem_post(&cs);
        pthread_join(t, NULL);
    }
    printf("stage reached: %d\n", stage);
}

CASE(rel_cancel_in_sem_wait) { cancel_sem_waiter(0); }
CASE(rel_cancel_in_sem_timedwait) { cancel_sem_waiter(1); }

/* pthread_barrier_wait and pthread_mutex_lock are not cancellation points: the cancel
 * acts at the pthread_testcancel that follows them. */
static pthread_barrier_t cb;
static void *barrier_then_testcancel(void *arg) {
    (void)arg;
    pthread_cleanup_push(note_cleanup, "after the barrier");
    pthread_barrier_wait(&cb);
    stage = 1;
    pthread_testcancel();
    stage = 2;
    pthread_cleanup_pop(0);
    return NULL;
}

CASE(rel_cancel_barrier_wait_is_not_a_cancellation_point) {
    pthread_barrier_init(&cb, NULL, 2);
    stage = 0;
    cleanup_saw = "not run";
    pthread_t t = spawn(barrier_then_testcancel, NULL);
    msleep(20);
    SHOWRC("cancel", pthread_cancel(t));
    msleep(50);
    SHOWRC("tryjoin after 50 ms", pthread_tryjoin_np(t, NULL));
    pthread_barrier_wait(&cb);
    void *v = NULL;
    SHOWRC("join", pthread_join(t, &v));
    printf("value is PTHREAD_CANCELED: %d, stage reached: %d, cleanup: %s\n",
           v == PTHREAD_CANCELED, stage, cleanup_saw);
}

static void *lock_then_testcancel(void *arg) {
    (void)arg;
    pthread_cleanup_push(note_cleanup, "after the lock");
    pthread_mutex_lock(&cm);
    stage = 1;
    pthread_mutex_unlock(&cm);
    pthread_testcancel();
    stage = 2;
    pthread_cleanup_pop(0);
    return NULL;
}

CASE(rel_cancel_mutex_lock_is_not_a_cancellation_point) {
    cancel_setup();
    pthread_mutex_lock(&cm);
    stage = 0;
    pthread_t t = spawn(lock_then_testcancel, NULL);
    msleep(20);
    SHOWRC("cancel", pthread_cancel(t));
    msleep(50);
    SHOWRC("tryjoin after 50 ms", pthread_tryjoin_np(t, NULL));
    pthread_mutex_unlock(&cm);
    void *v = NULL;
    SHOWRC("join", pthread_join(t, &v));
    printf("value is PTHREAD_CANCELED: %d, stage reached: %d, cleanup: %s\n",
           v == PTHREAD_CANCELED, stage, cleanup_saw);
}

/* ---------------------------------------------------------------- busy-waits on try-calls */

/* Each case busy-waits (no sleep, no yield) on a call that never waits, for something
 * another thread does 20 ms later; natively the kernel runs that thread meanwhile. The
 * loop gives up after 3 s, so that a livelock shows as "gave up". */
static double busy_t0;
static int busy_expired(void) { return now_ms() - busy_t0 > 3000; }
static void busy_report(int released) {
    printf("released while busy-waiting: %s\n", released ? "yes" : "gave up");
}

static pthread_mutex_t busy_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t busy_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t busy_spin;
static sem_t busy_sem;
static volatile int busy_held, busy_flag;

static void *hold_mutex_20ms(void *arg) {
    (void)arg;
    pthread_mutex_lock(&busy_m);
    busy_held = 1;
    msleep(20);
    pthread_mutex_unlock(&busy_m);
    return NULL;
}

static void *hold_rwlock_20ms(void *arg) {
    (void)arg;
    pthread_rwlock_wrlock(&busy_rw);
    busy_held = 1;
    msleep(20);
    pthread_rwlock_unlock(&busy_rw);
    return NULL;
}

static void *hold_spin_20ms(void *arg) {
    (void)arg;
    pthread_spin_lock(&busy_spin);
    busy_held = 1;
    msleep(20);
    pthread_spin_unlock(&busy_spin);
    return NULL;
}

static void *post_after_20ms(void *arg) {
    (void)arg;
    msleep(20);
    sem_post(&busy_sem);
    return NULL;
}

static void *set_flag_under_mutex_after_20ms(void *arg) {
    (void)arg;
    msleep(20);
    pthread_mutex_lock(&busy_m);
    busy_flag = 1;
    pthread_mutex_unlock(&busy_m);
    return NULL;
}

/* Starts a thread that takes a lock, and waits (sleeping) until it holds it. */
static pthread_t busy_holder(void *(*fn)(void *)) {
    busy_held = 0;
    pthread_t t = spawn(fn, NULL);
    while (!busy_held) msleep(1);
    busy_t0 = now_ms();
    return t;
}

CASE(rel_busy_wait_on_mutex_trylock) {
    pthread_t t = busy_holder(hold_mutex_20ms);
    int r;
    while ((r = pthread_mutex_trylock(&busy_m)) == EBUSY && !busy_expired()) {}
    busy_report(r == 0);
    if (r == 0) pthread_mutex_unlock(&busy_m);
    pthread_join(t, NULL);
}

CASE(rel_busy_wait_on_rwlock_trywrlock_and_tryrdlock) {
    pthread_t t = busy_holder(hold_rwlock_20ms);
    int r;
    while ((r = pthread_rwlock_trywrlock(&busy_rw)) == EBUSY && !busy_expired()) {}
    busy_report(r == 0);
    if (r == 0) pthread_rwlock_unlock(&busy_rw);
    pthread_join(t, NULL);
    t = busy_holder(hold_rwlock_20ms);
    while ((r = pthread_rwlock_tryrdlock(&busy_rw)) == EBUSY && !busy_expired()) {}
    busy_report(r == 0);
    if (r == 0) pthread_rwlock_unlock(&busy_rw);
    pthread_join(t, NULL);
}

CASE(rel_busy_wait_on_spin_trylock) {
    pthread_spin_init(&busy_spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t t = busy_holder(hold_spin_20ms);
    int r;
    while ((r = pthread_spin_trylock(&busy_spin)) == EBUSY && !busy_expired()) {}
    busy_report(r == 0);
    if (r == 0) pthread_spin_unlock(&busy_spin);
    pthread_join(t, NULL);
}

CASE(rel_busy_wait_on_sem_trywait) {
    sem_init(&busy_sem, 0, 0);
    busy_t0 = now_ms();
    pthread_t t = spawn(post_after_20ms, NULL);
    int r;
    while ((r = sem_trywait(&busy_sem)) == -1 && errno == EAGAIN && !busy_expired()) {}
    busy_report(r == 0);
    pthread_join(t, NULL);
}

CASE(rel_busy_wait_on_tryjoin) {
    busy_t0 = now_ms();
    pthread_t t = spawn(sleep_100ms, (void *)5L);
    void *v = NULL;
    int r;
    while ((r = pthread_tryjoin_np(t, &v)) == EBUSY && !busy_expired()) {}
    busy_report(r == 0);
    printf("value: %ld\n", (long)v);
    if (r) pthread_join(t, NULL);
}

/* The flag is set under the mutex; the waiter's lock/check/unlock is never contended. */
CASE(rel_busy_wait_on_lock_check_unlock) {
    busy_flag = 0;
    busy_t0 = now_ms();
    pthread_t t = spawn(set_flag_under_mutex_after_20ms, NULL);
    int seen = 0;
    while (!seen && !busy_expired()) {
        pthread_mutex_lock(&busy_m);
        seen = busy_flag;
        pthread_mutex_unlock(&busy_m);
    }
    busy_report(seen);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------------- ping-pong beside a poller */

/* A condvar or semaphore ping-pong pair must make PAIR_ROUNDS rounds while a third thread
 * polls a set of pipes with a zero timeout in a loop (its calls never wait) and a 1 ms
 * timer fires. The timer is the clock: natively the pair is done long before 2,000 ticks
 * (2 s, more on a busy machine, where ticks merge); a pair that gets one hand-off per turn
 * of the poller is not. */
#define PAIR_ROUNDS 5000
#define PAIR_TICKS 2000
#define POLLED_PIPES 128

static volatile int pair_stop;
static int pair_turn;
static long pair_rounds;
static pthread_mutex_t pair_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pair_c = PTHREAD_COND_INITIALIZER;
static sem_t pair_sem[2];
static long poller_polls;

static int pair_round_done(void) {
    if (++pair_rounds >= PAIR_ROUNDS || storm_signals >= PAIR_TICKS) pair_stop = 1;
    return pair_stop;
}

static void *cond_side(void *arg) {
    int me = (int)(long)arg;
    pthread_mutex_lock(&pair_m);
    while (!pair_stop) {
        while (pair_turn != me && !pair_stop) pthread_cond_wait(&pair_c, &pair_m);
        if (pair_stop) break;
        if (me == 0) pair_round_done();
        pair_turn = !me;
        pthread_cond_signal(&pair_c);
    }
    pthread_cond_broadcast(&pair_c);
    pthread_mutex_unlock(&pair_m);
    return NULL;
}

static void *sem_side(void *arg) {
    int me = (int)(long)arg;
    while (!pair_stop) {
        if (sem_wait(&pair_sem[me]) == -1) continue;
        if (me == 0 && pair_round_done()) sem_post(&pair_sem[me]); /* let it see the stop */
        sem_post(&pair_sem[!me]);
    }
    sem_post(&pair_sem[!me]);
    return NULL;
}

static void *poller(void *arg) {
    struct pollfd *fds = arg;
    while (!pair_stop) {
        poll(fds, POLLED_PIPES, 0);
        poller_polls++;
    }
    return NULL;
}

static void pair_beside_poller(void *(*side)(void *)) {
    static struct pollfd fds[POLLED_PIPES];
    int p[2];
    for (int i = 0; i < POLLED_PIPES; i++) {
        if (pipe(p)) { printf("pipe failed\n"); exit(1); }
        fds[i].fd = p[0];
        fds[i].events = POLLIN;
    }
    sem_init(&pair_sem[0], 0, 1);
    sem_init(&pair_sem[1], 0, 0);
    storm_start(1);
    pthread_t pt = spawn(poller, fds);
    pthread_t a = spawn(side, (void *)0L), b = spawn(side, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_join(pt, NULL);
    int ticks = storm_signals;
    storm_stop();
    printf("pair made %d rounds before %d ticks: %s\n", PAIR_ROUNDS, PAIR_TICKS,
           pair_rounds >= PAIR_ROUNDS && ticks < PAIR_TICKS ? "yes" : "no");
    printf("poller polled: %s\n", poller_polls > 0 ? "yes" : "no");
}

CASE(rel_cond_pingpong_beside_busy_poller_under_storm) { pair_beside_poller(cond_side); }
CASE(rel_sem_pingpong_beside_busy_poller_under_storm) { pair_beside_poller(sem_side); }
