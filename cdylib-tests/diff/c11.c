/* C11 threads (<threads.h>): glibc implements them with internal pthread calls, so each is
 * exported by greenify over its pthread hook. The cases have threads that wait on each
 * other across the two APIs: were a thrd_create'd thread a real OS thread, or a C11 wait
 * blocking the OS thread, the green threads it waits for could never run (a hang), and
 * thrd_current() would not agree with pthread_self(). */
#include "case.h"
#include <limits.h>
#include <signal.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread condvar");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");
_Static_assert(sizeof(tss_t) == sizeof(pthread_key_t), "tss_t is a pthread key");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread once");

static const char *thrd_name(int r) {
    switch (r) {
    case thrd_success: return "thrd_success";
    case thrd_busy: return "thrd_busy";
    case thrd_error: return "thrd_error";
    case thrd_nomem: return "thrd_nomem";
    case thrd_timedout: return "thrd_timedout";
    default: return "?";
    }
}

#define SHOWT(what, expr) printf("%s: %s\n", what, thrd_name(expr))

static struct timespec realtime_in(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int returns_arg(void *arg) { return (int)(intptr_t)arg; }

static void exit_deep(int v) { thrd_exit(v); }

static int exits_with_arg(void *arg) {
    exit_deep((int)(intptr_t)arg);
    return -1;
}

CASE(c11_create_join_values) {
    int values[] = { 0, 7, -5, INT_MIN, INT_MAX };
    for (unsigned i = 0; i < sizeof values / sizeof *values; i++) {
        thrd_t t;
        int res = 12345;
        SHOWT("create", thrd_create(&t, returns_arg, (void *)(intptr_t)values[i]));
        SHOWT("join", thrd_join(t, &res));
        printf("returned %d\n", res);
        SHOWT("create exiting", thrd_create(&t, exits_with_arg, (void *)(intptr_t)values[i]));
        res = 12345;
        SHOWT("join", thrd_join(t, &res));
        printf("thrd_exit %d\n", res);
    }
    thrd_t t;
    SHOWT("create", thrd_create(&t, returns_arg, (void *)3));
    SHOWT("join, no result wanted", thrd_join(t, NULL));
}

/* A C11 thread waits for a pthread that sleeps first, while main joins the C11 thread. */
static mtx_t handoff_m;
static cnd_t handoff_c;
static int handoff_flag;

static int waits_for_flag(void *arg) {
    (void)arg;
    mtx_lock(&handoff_m);
    while (!handoff_flag) cnd_wait(&handoff_c, &handoff_m);
    mtx_unlock(&handoff_m);
    return 42;
}

static void *sets_flag_later(void *arg) {
    (void)arg;
    msleep(30);
    mtx_lock(&handoff_m);
    handoff_flag = 1;
    cnd_signal(&handoff_c);
    mtx_unlock(&handoff_m);
    return NULL;
}

CASE(c11_join_thread_waiting_for_pthread) {
    SHOWT("mtx_init", mtx_init(&handoff_m, mtx_plain));
    SHOWT("cnd_init", cnd_init(&handoff_c));
    thrd_t waiter;
    pthread_t setter;
    SHOWT("create waiter", thrd_create(&waiter, waits_for_flag, NULL));
    SHOWRC("pthread_create setter", pthread_create(&setter, NULL, sets_flag_later, NULL));
    int res = 0;
    SHOWT("join waiter", thrd_join(waiter, &res));
    printf("waiter returned %d\n", res);
    SHOWRC("join setter", pthread_join(setter, NULL));
    cnd_destroy(&handoff_c);
    mtx_destroy(&handoff_m);
}

static thrd_t seen_current;
static int agrees_with_pthread_self;

static int records_identity(void *arg) {
    (void)arg;
    seen_current = thrd_current();
    agrees_with_pthread_self = pthread_equal(thrd_current(), pthread_self()) != 0;
    return 0;
}

static void *records_identity_pthread(void *arg) {
    records_identity(arg);
    return (void *)5;
}

CASE(c11_current_is_pthread_self) {
    printf("main: thrd_current == pthread_self: %d\n",
           thrd_equal(thrd_current(), pthread_self()) != 0);
    thrd_t t;
    SHOWT("create", thrd_create(&t, records_identity, NULL));
    thrd_t handle = t;
    SHOWT("join", thrd_join(t, NULL));
    printf("thread: thrd_current == pthread_self: %d\n", agrees_with_pthread_self);
    printf("thread: thrd_current == creator's handle: %d\n", thrd_equal(seen_current, handle) != 0);
    printf("thread != main: %d\n", !thrd_equal(seen_current, thrd_current()));
    pthread_t p;
    SHOWRC("pthread_create", pthread_create(&p, NULL, records_identity_pthread, NULL));
    int res = 0;
    SHOWT("thrd_join of a pthread", thrd_join(p, &res));
    printf("pthread: thrd_current == pthread_self: %d\n", agrees_with_pthread_self);
    printf("pthread: thrd_current == creator's handle: %d\n", thrd_equal(seen_current, p) != 0);
    printf("pthread returned %d\n", res);
    SHOWT("create", thrd_create(&t, returns_arg, (void *)9));
    void *value = NULL;
    SHOWRC("pthread_join of a C11 thread", pthread_join(t, &value));
    printf("C11 thread returned %d\n", (int)(intptr_t)value);
}

static mtx_t detach_m;
static cnd_t detach_c;
static int detach_done;

static int detached_body(void *arg) {
    msleep((long)(intptr_t)arg);
    mtx_lock(&detach_m);
    detach_done = 1;
    cnd_broadcast(&detach_c);
    mtx_unlock(&detach_m);
    return 0;
}

CASE(c11_detach_then_wait_for_it) {
    mtx_init(&detach_m, mtx_plain);
    cnd_init(&detach_c);
    thrd_t t;
    SHOWT("create", thrd_create(&t, detached_body, (void *)20));
    SHOWT("detach", thrd_detach(t));
    mtx_lock(&detach_m);
    while (!detach_done) cnd_wait(&detach_c, &detach_m);
    mtx_unlock(&detach_m);
    printf("detached thread ran: %d\n", detach_done);
}

CASE(c11_mtx_kinds_self) {
    int kinds[] = { mtx_plain, mtx_timed, mtx_plain | mtx_recursive, mtx_timed | mtx_recursive };
    const char *names[] = { "plain", "timed", "recursive", "timed|recursive" };
    for (int i = 0; i < 4; i++) {
        mtx_t m;
        printf("-- %s\n", names[i]);
        SHOWT("init", mtx_init(&m, kinds[i]));
        SHOWT("lock", mtx_lock(&m));
        SHOWT("trylock while held", mtx_trylock(&m));
        if (kinds[i] & mtx_recursive) {
            SHOWT("lock again", mtx_lock(&m));
            SHOWT("unlock", mtx_unlock(&m));
            SHOWT("unlock", mtx_unlock(&m));
        } else {
            SHOWT("unlock", mtx_unlock(&m));
        }
        struct timespec soon = realtime_in(1000);
        SHOWT("timedlock free", mtx_timedlock(&m, &soon));
        SHOWT("unlock", mtx_unlock(&m));
        mtx_destroy(&m);
    }
}

static mtx_t held_m;
static int held_result, held_try;
static double held_ms;

static int times_out_on_held(void *arg) {
    (void)arg;
    held_try = mtx_trylock(&held_m);
    struct timespec until = realtime_in(60);
    double t0 = now_ms();
    held_result = mtx_timedlock(&held_m, &until);
    held_ms = now_ms() - t0;
    return 0;
}

CASE(c11_mtx_timedlock_held_by_other) {
    mtx_init(&held_m, mtx_timed);
    mtx_lock(&held_m);
    thrd_t t;
    SHOWT("create", thrd_create(&t, times_out_on_held, NULL));
    SHOWT("join", thrd_join(t, NULL));
    printf("other's trylock: %s\n", thrd_name(held_try));
    printf("other's timedlock: %s time=%s\n", thrd_name(held_result), timing(held_ms, 60));
    SHOWT("unlock", mtx_unlock(&held_m));
    mtx_destroy(&held_m);
}

/* Two C11 threads and two pthreads take turns on one mutex, each waiting for the one
 * before it, and sleep while holding it. */
static mtx_t count_m;
static cnd_t count_c;
static long counted;
static int in_section, overlaps;

static int counts(void *arg) {
    long me = (long)(intptr_t)arg;
    for (int i = 0; i < 10; i++) {
        mtx_lock(&count_m);
        while (counted % 4 != me) cnd_wait(&count_c, &count_m);
        if (in_section++) overlaps++;
        struct timespec t = { 0, 1000000L };
        thrd_sleep(&t, NULL);
        counted++;
        in_section--;
        cnd_broadcast(&count_c);
        mtx_unlock(&count_m);
        thrd_yield();
    }
    return 0;
}

static void *counts_pthread(void *arg) { return (void *)(intptr_t)counts(arg); }

CASE(c11_mtx_contention_with_pthreads) {
    mtx_init(&count_m, mtx_plain);
    cnd_init(&count_c);
    thrd_t t[2];
    pthread_t p[2];
    for (int i = 0; i < 2; i++) {
        thrd_create(&t[i], counts, (void *)(intptr_t)(2 * i));
        pthread_create(&p[i], NULL, counts_pthread, (void *)(intptr_t)(2 * i + 1));
    }
    for (int i = 0; i < 2; i++) {
        SHOWT("thrd_join", thrd_join(t[i], NULL));
        SHOWRC("pthread_join", pthread_join(p[i], NULL));
    }
    printf("counted=%ld overlaps=%d\n", counted, overlaps);
    cnd_destroy(&count_c);
    mtx_destroy(&count_m);
}

static mtx_t rec_m;
static int rec_other_try;

static int tries_recursive(void *arg) {
    (void)arg;
    rec_other_try = mtx_trylock(&rec_m);
    return 0;
}

CASE(c11_mtx_recursive_other_thread_busy) {
    mtx_init(&rec_m, mtx_recursive);
    mtx_lock(&rec_m);
    mtx_lock(&rec_m);
    thrd_t t;
    thrd_create(&t, tries_recursive, NULL);
    thrd_join(t, NULL);
    printf("other thread's trylock: %s\n", thrd_name(rec_other_try));
    SHOWT("unlock", mtx_unlock(&rec_m));
    SHOWT("unlock", mtx_unlock(&rec_m));
    mtx_destroy(&rec_m);
}

CASE(c11_cnd_timedwait_times_out) {
    mtx_t m;
    cnd_t c;
    mtx_init(&m, mtx_plain);
    cnd_init(&c);
    mtx_lock(&m);
    struct timespec until = realtime_in(50);
    double t0 = now_ms();
    SHOWT("cnd_timedwait", cnd_timedwait(&c, &m, &until));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    SHOWT("unlock (mutex held again)", mtx_unlock(&m));
    struct timespec past = { 1, 0 };
    mtx_lock(&m);
    SHOWT("cnd_timedwait in the past", cnd_timedwait(&c, &m, &past));
    mtx_unlock(&m);
    cnd_destroy(&c);
    mtx_destroy(&m);
}

static mtx_t bc_m;
static cnd_t bc_c, bc_ready;
static int bc_waiting, bc_go, bc_woken;

static int waits_for_broadcast(void *arg) {
    (void)arg;
    mtx_lock(&bc_m);
    bc_waiting++;
    cnd_signal(&bc_ready);
    while (!bc_go) cnd_wait(&bc_c, &bc_m);
    bc_woken++;
    mtx_unlock(&bc_m);
    return 0;
}

CASE(c11_cnd_signal_and_broadcast) {
    mtx_init(&bc_m, mtx_plain);
    cnd_init(&bc_c);
    cnd_init(&bc_ready);
    thrd_t t[5];
    for (int i = 0; i < 5; i++) thrd_create(&t[i], waits_for_broadcast, NULL);
    mtx_lock(&bc_m);
    while (bc_waiting < 5) cnd_wait(&bc_ready, &bc_m);
    bc_go = 1;
    SHOWT("cnd_signal", cnd_signal(&bc_c));
    SHOWT("cnd_broadcast", cnd_broadcast(&bc_c));
    mtx_unlock(&bc_m);
    for (int i = 0; i < 5; i++) thrd_join(t[i], NULL);
    printf("woken=%d\n", bc_woken);
    cnd_destroy(&bc_c);
    cnd_destroy(&bc_ready);
    mtx_destroy(&bc_m);
}

static once_flag once = ONCE_FLAG_INIT;
static int once_runs, once_value, once_seen_ok;
static mtx_t once_m;

static void init_once(void) {
    once_runs++;
    struct timespec t = { 0, 20000000L };
    thrd_sleep(&t, NULL); /* the other callers must wait for this */
    once_value = 99;
}

static int calls_once(void *arg) {
    (void)arg;
    call_once(&once, init_once);
    mtx_lock(&once_m);
    once_seen_ok += once_value == 99;
    mtx_unlock(&once_m);
    return 0;
}

CASE(c11_call_once_many_threads) {
    mtx_init(&once_m, mtx_plain);
    thrd_t t[8];
    for (int i = 0; i < 8; i++) thrd_create(&t[i], calls_once, NULL);
    for (int i = 0; i < 8; i++) thrd_join(t[i], NULL);
    call_once(&once, init_once);
    printf("runs=%d threads that saw the value=%d\n", once_runs, once_seen_ok);
}

static tss_t key;
static mtx_t tss_m;
static int dtor_calls, dtor_sum, dtor_reset_done;

static void tss_dtor(void *v) {
    mtx_lock(&tss_m);
    dtor_calls++;
    dtor_sum += (int)(intptr_t)v;
    mtx_unlock(&tss_m);
    /* Value 100 sets itself again once: the destructor runs a second round. */
    if ((intptr_t)v == 100 && !dtor_reset_done) {
        dtor_reset_done = 1;
        tss_set(key, (void *)1000);
    }
}

static int uses_tss(void *arg) {
    printf("thread starts with %p\n", tss_get(key));
    SHOWT("tss_set", tss_set(key, arg));
    struct timespec t = { 0, 5000000L };
    thrd_sleep(&t, NULL);
    printf("still its own: %d\n", tss_get(key) == arg);
    if ((intptr_t)arg == 3) thrd_exit(0);
    return 0;
}

static void *uses_tss_pthread(void *arg) {
    uses_tss(arg);
    return NULL;
}

CASE(c11_tss_destructors_at_exit) {
    mtx_init(&tss_m, mtx_plain);
    SHOWT("tss_create", tss_create(&key, tss_dtor));
    SHOWT("main tss_set", tss_set(key, (void *)7));
    thrd_t t[3];
    intptr_t vals[3] = { 1, 3, 100 };
    for (int i = 0; i < 3; i++) {
        thrd_create(&t[i], uses_tss, (void *)vals[i]);
        thrd_join(t[i], NULL);
    }
    pthread_t p;
    pthread_create(&p, NULL, uses_tss_pthread, (void *)20);
    pthread_join(p, NULL);
    printf("main keeps %d\n", (int)(intptr_t)tss_get(key));
    printf("destructor calls=%d sum=%d\n", dtor_calls, dtor_sum);
    tss_delete(key);
    thrd_t u;
    thrd_create(&u, returns_arg, NULL);
    thrd_join(u, NULL);
    printf("after tss_delete, calls=%d\n", dtor_calls);
}

static void on_usr1(int sig) { (void)sig; }

static thrd_t sleeper;

static void *interrupts_sleeper(void *arg) {
    (void)arg;
    msleep(40);
    pthread_kill(sleeper, SIGUSR1);
    return NULL;
}

CASE(c11_sleep_interrupted_by_signal) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sleeper = thrd_current();
    pthread_t t;
    pthread_create(&t, NULL, interrupts_sleeper, NULL);
    struct timespec d = { 2, 0 }, rem = { -1, -1 };
    double t0 = now_ms();
    int r = thrd_sleep(&d, &rem);
    double took = now_ms() - t0;
    printf("thrd_sleep: %d interrupted early: %d\n", r, took < 1500);
    printf("remaining in (0.5 s, 2 s): %d\n",
           rem.tv_sec >= 0 && (rem.tv_sec > 0 || rem.tv_nsec > 500000000L) && rem.tv_sec < 2);
    pthread_join(t, NULL);
}

CASE(c11_sleep_and_yield) {
    struct timespec d = { 0, 30000000L };
    double t0 = now_ms();
    printf("thrd_sleep: %d\n", thrd_sleep(&d, NULL));
    printf("time=%s\n", timing(now_ms() - t0, 30));
    struct timespec bad = { 0, -1 };
    printf("thrd_sleep bad nsec: %d\n", thrd_sleep(&bad, NULL));
    struct timespec neg = { -1, 0 };
    printf("thrd_sleep negative: %d\n", thrd_sleep(&neg, NULL));
    thrd_yield();
    printf("yielded\n");
}
