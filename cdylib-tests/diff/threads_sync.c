/* Threads and synchronisation as a native program sees them: creation attributes, join and
 * exit paths, identity and names, many threads, scheduling handoffs, errno per thread,
 * mutex/condvar/rwlock/semaphore/barrier/once/spinlock/key semantics across threads, robust
 * mutexes. Goes further than cdylib-tests/c/sync_errors.c and thread_api.c (which cover the
 * single-thread error codes and the basic pthread_t functions). */
#include "case.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

/* No case comes near this natively. */
KILL_IF_HUNG_AFTER(10);

static struct timespec in_ms(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    if (t.tv_nsec < 0) { /* a negative ms: a time in the past */
        t.tv_nsec += 1000000000L;
        t.tv_sec--;
    }
    return t;
}

static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int r = pthread_create(&t, NULL, fn, arg);
    if (r) { printf("pthread_create failed: %s\n", en(r)); exit(1); }
    return t;
}

static long join_long(pthread_t t) {
    void *v = NULL;
    int r = pthread_join(t, &v);
    if (r) { printf("pthread_join failed: %s\n", en(r)); exit(1); }
    return (long)v;
}

/* A moment another thread recorded (e.g. when it took a lock), for timing classes. */
static volatile double t_ref;

/* Waits (sleeping 1 ms steps, at most 2 s) until *v reaches n. */
static int wait_for(volatile int *v, int n) {
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(v, __ATOMIC_SEQ_CST) >= n) return 1;
        msleep(1);
    }
    return 0;
}

/* ---------------------------------------------------------------- creation and attrs */

static void *ret_double(void *arg) { return (void *)((long)arg * 2); }

CASE(create_join_return_values) {
    pthread_t t[5];
    for (long i = 0; i < 5; i++) t[i] = spawn(ret_double, (void *)(i + 10));
    long sum = 0;
    for (int i = 4; i >= 0; i--) {
        long v = join_long(t[i]);
        printf("thread %d returned %ld\n", i, v);
        sum += v;
    }
    printf("sum=%ld\n", sum);
}

static sem_t detached_ran;
static void *post_detached(void *arg) {
    (void)arg;
    msleep(20);
    sem_post(&detached_ran);
    return NULL;
}

CASE(create_detached_attr) {
    sem_init(&detached_ran, 0, 0);
    pthread_attr_t a;
    int st = -1;
    pthread_attr_init(&a);
    SHOWRC("setdetachstate detached", pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
    pthread_attr_getdetachstate(&a, &st);
    printf("getdetachstate detached: %d\n", st == PTHREAD_CREATE_DETACHED);
    SHOWRC("setdetachstate 42", pthread_attr_setdetachstate(&a, 42));
    pthread_t t;
    SHOWRC("create detached", pthread_create(&t, &a, post_detached, NULL));
    SHOWRC("join detached", pthread_join(t, NULL));
    SHOWRC("detach detached", pthread_detach(t));
    SHOW("sem_wait for detached", sem_wait(&detached_ran));
    pthread_attr_destroy(&a);
}

static void *touch_stack(void *arg) {
    long n = (long)arg;
    volatile char buf[n];
    for (long i = 0; i < n; i += 512) buf[i] = (char)i;
    long s = 0;
    for (long i = 0; i < n; i += 512) s += buf[i];
    return (void *)(s != 0 || n < 1024 ? 1L : 0L);
}

CASE(stacksize_too_small_einval) {
    pthread_attr_t a;
    size_t sz = 0;
    pthread_attr_init(&a);
    pthread_attr_getstacksize(&a, &sz);
    SHOWRC("setstacksize 0", pthread_attr_setstacksize(&a, 0));
    SHOWRC("setstacksize 1", pthread_attr_setstacksize(&a, 1));
    SHOWRC("setstacksize MIN-1", pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN - 1));
    size_t after = 0;
    pthread_attr_getstacksize(&a, &after);
    printf("size unchanged after EINVAL: %d\n", after == sz);
    SHOWRC("setstacksize MIN", pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN));
    pthread_attr_getstacksize(&a, &after);
    printf("size == MIN: %d\n", after == (size_t)PTHREAD_STACK_MIN);
    pthread_t t;
    SHOWRC("create with MIN stack", pthread_create(&t, &a, touch_stack, (void *)2048L));
    printf("thread ran: %ld\n", join_long(t));
    pthread_attr_destroy(&a);
}

static void *stack_info(void *arg) {
    (void)arg;
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    char local;
    if (pthread_getattr_np(pthread_self(), &a)) return (void *)-1L;
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    int inside = &local >= (char *)addr && &local < (char *)addr + size;
    return (void *)(long)(inside ? (long)(size >> 10) : -2L);
}

CASE(stacksize_large_used) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    SHOWRC("setstacksize 16M", pthread_attr_setstacksize(&a, 16 << 20));
    pthread_t t;
    SHOWRC("create", pthread_create(&t, &a, touch_stack, (void *)(long)(8 << 20)));
    printf("8 MiB frame used: %ld\n", join_long(t));
    SHOWRC("create info", pthread_create(&t, &a, stack_info, NULL));
    printf("getattr stack >= 16M: %d\n", join_long(t) >= (16 << 10));
    pthread_attr_destroy(&a);
}

/* A stack size set to exactly glibc's default (Rust's and rustc's threads ask for 8 MiB,
 * ulimit -s) is the program's choice: the thread gets it, not greenify's smaller default. */
CASE(stacksize_equal_to_default_is_honoured) {
    pthread_attr_t a;
    size_t dflt = 0;
    pthread_attr_init(&a);
    pthread_attr_getstacksize(&a, &dflt);
    SHOWRC("setstacksize default", pthread_attr_setstacksize(&a, dflt));
    pthread_t t;
    SHOWRC("create", pthread_create(&t, &a, touch_stack, (void *)(long)(dflt / 2)));
    printf("half the default used: %ld\n", join_long(t));
    SHOWRC("create info", pthread_create(&t, &a, stack_info, NULL));
    printf("getattr stack >= default: %d\n", join_long(t) >= (long)(dflt >> 10));
    pthread_attr_destroy(&a);
}

CASE(user_stack_reused) {
    size_t size = 128 * 1024;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    SHOWRC("setstack", pthread_attr_setstack(&a, stack, size));
    void *ga = NULL;
    size_t gs = 0;
    pthread_attr_getstack(&a, &ga, &gs);
    printf("getstack roundtrip: %d\n", ga == stack && gs == size);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        int r = pthread_create(&t, &a, stack_info, NULL);
        long kib = join_long(t);
        printf("round %d: create=%s stack KiB=%ld\n", round, en(r), kib);
    }
    pthread_attr_destroy(&a);
    munmap(stack, size);
}

static void *guard_info(void *arg) {
    (void)arg;
    pthread_attr_t a;
    size_t g = 12345;
    int ds = -1;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getguardsize(&a, &g);
    pthread_attr_getdetachstate(&a, &ds);
    pthread_attr_destroy(&a);
    printf("in thread: guard==page=%d joinable=%d\n", g == (size_t)sysconf(_SC_PAGESIZE),
           ds == PTHREAD_CREATE_JOINABLE);
    pthread_detach(pthread_self());
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getdetachstate(&a, &ds);
    pthread_attr_destroy(&a);
    printf("after self-detach: detached=%d\n", ds == PTHREAD_CREATE_DETACHED);
    sem_post(&detached_ran);
    return NULL;
}

CASE(getattr_np_guard_and_detach_state) {
    sem_init(&detached_ran, 0, 0);
    spawn(guard_info, NULL);
    sem_wait(&detached_ran);
    msleep(20);
}

CASE(getattr_np_main_thread) {
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    char local;
    SHOWRC("getattr_np main", pthread_getattr_np(pthread_self(), &a));
    pthread_attr_getstack(&a, &addr, &size);
    int ds = -1;
    pthread_attr_getdetachstate(&a, &ds);
    pthread_attr_destroy(&a);
    printf("main local on stack: %d joinable=%d size>=128K=%d\n",
           &local >= (char *)addr && &local < (char *)addr + size, ds == PTHREAD_CREATE_JOINABLE,
           size >= 128 * 1024);
}

static void *report_default_size(void *arg) {
    (void)arg;
    pthread_attr_t a;
    size_t size = 0;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstacksize(&a, &size);
    pthread_attr_destroy(&a);
    return (void *)(long)(size >= (3u << 20));
}

CASE(setattr_default_np_stacksize) {
    pthread_attr_t a, d;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 3u << 20);
    SHOWRC("setattr_default_np", pthread_setattr_default_np(&a));
    size_t size = 0;
    SHOWRC("getattr_default_np", pthread_getattr_default_np(&d));
    pthread_attr_getstacksize(&d, &size);
    printf("default is 3M: %d\n", size == (3u << 20));
    printf("new thread stack >= 3M: %ld\n", join_long(spawn(report_default_size, NULL)));
    pthread_attr_destroy(&a);
    pthread_attr_destroy(&d);
}

CASE(attr_misc_setters) {
    pthread_attr_t a;
    int v = -1;
    size_t g = 0;
    pthread_attr_init(&a);
    SHOWRC("setscope SYSTEM", pthread_attr_setscope(&a, PTHREAD_SCOPE_SYSTEM));
    SHOWRC("setscope PROCESS", pthread_attr_setscope(&a, PTHREAD_SCOPE_PROCESS));
    SHOWRC("setscope 7", pthread_attr_setscope(&a, 7));
    SHOWRC("setinheritsched EXPLICIT", pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
    pthread_attr_getinheritsched(&a, &v);
    printf("inheritsched explicit: %d\n", v == PTHREAD_EXPLICIT_SCHED);
    SHOWRC("setinheritsched 9", pthread_attr_setinheritsched(&a, 9));
    SHOWRC("setschedpolicy 99", pthread_attr_setschedpolicy(&a, 99));
    SHOWRC("setguardsize 3 pages", pthread_attr_setguardsize(&a, 3 * 4096));
    pthread_attr_getguardsize(&a, &g);
    printf("guardsize: %zu\n", g);
    SHOWRC("setconcurrency -1", pthread_setconcurrency(-1));
    SHOWRC("setconcurrency 4", pthread_setconcurrency(4));
    printf("getconcurrency: %d\n", pthread_getconcurrency());
    pthread_setconcurrency(0);
    pthread_attr_destroy(&a);
}

static void *report_mask(void *arg) {
    (void)arg;
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    printf("thread: USR1 blocked=%d USR2 blocked=%d\n", sigismember(&s, SIGUSR1),
           sigismember(&s, SIGUSR2));
    return NULL;
}

CASE(attr_sigmask_np_and_inherited_mask) {
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    join_long(spawn(report_mask, NULL)); /* inherits USR2 blocked */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_t a;
    pthread_attr_init(&a);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    SHOWRC("attr_setsigmask_np", pthread_attr_setsigmask_np(&a, &s));
    pthread_t t;
    pthread_create(&t, &a, report_mask, NULL);
    join_long(t);
    pthread_attr_destroy(&a);
}

/* ---------------------------------------------------------------- exit and join */

__attribute__((noinline)) static long deep_exit(int depth, long v) {
    if (depth < 0) return v;
    if (depth == 0) pthread_exit((void *)v);
    long r = deep_exit(depth - 1, v + 1);
    printf("not reached\n");
    return r + 1;
}
static void *exits_deep(void *arg) {
    deep_exit(10, (long)arg);
    return (void *)-1L;
}

CASE(pthread_exit_value_from_nested_call) {
    printf("value: %ld\n", join_long(spawn(exits_deep, (void *)100L)));
}

static void cleanup_print(void *arg) { printf("cleanup %s\n", (const char *)arg); }
static void *with_cleanup(void *arg) {
    pthread_cleanup_push(cleanup_print, "outer");
    pthread_cleanup_push(cleanup_print, "middle");
    pthread_cleanup_push(cleanup_print, "inner-popped");
    pthread_cleanup_pop(1);
    pthread_cleanup_push(cleanup_print, "inner");
    if (arg) pthread_exit((void *)7L);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return (void *)1L;
}

CASE(pthread_exit_runs_cleanup_handlers) {
    printf("exit path value: %ld\n", join_long(spawn(with_cleanup, (void *)1L)));
    printf("return path value: %ld\n", join_long(spawn(with_cleanup, NULL)));
}

static void *exit_process(void *arg) {
    msleep(30);
    printf("thread calls exit(%ld)\n", (long)arg);
    exit((int)(long)arg);
}

CASE(exit_from_thread_ends_process) {
    pthread_t t = spawn(exit_process, (void *)3L);
    join_long(t);
    printf("not reached\n");
}

static void *late_print(void *arg) {
    msleep(40 * (long)arg);
    printf("thread %ld still ran after main's pthread_exit\n", (long)arg);
    return NULL;
}

CASE(main_pthread_exit_joinable_threads) {
    spawn(late_print, (void *)1L);
    spawn(late_print, (void *)2L);
    msleep(5);
    printf("main calls pthread_exit\n");
    pthread_exit(NULL);
}

static void *sleep_ms_ret(void *arg) {
    msleep((long)arg);
    return arg;
}

CASE(timedjoin_and_clockjoin_paths) {
    double started = now_ms();
    pthread_t t = spawn(sleep_ms_ret, (void *)100L);
    void *v = NULL;
    struct timespec past = in_ms(CLOCK_REALTIME, -1000);
    double t0 = now_ms();
    SHOWRC("timedjoin past deadline", pthread_timedjoin_np(t, &v, &past));
    printf("  immediate: %s\n", timing(now_ms() - t0, 0));
    struct timespec d = in_ms(CLOCK_MONOTONIC, 30);
    t0 = now_ms();
    SHOWRC("clockjoin monotonic 30ms", pthread_clockjoin_np(t, &v, CLOCK_MONOTONIC, &d));
    printf("  waited: %s\n", timing(now_ms() - t0, 30));
    SHOWRC("clockjoin bad clock", pthread_clockjoin_np(t, &v, CLOCK_PROCESS_CPUTIME_ID, &d));
    d = in_ms(CLOCK_REALTIME, 1000);
    SHOWRC("clockjoin realtime", pthread_clockjoin_np(t, &v, CLOCK_REALTIME, &d));
    printf("  joined when it ended: %s value=%ld\n", timing(now_ms() - started, 100), (long)v);
    t = spawn(sleep_ms_ret, (void *)50L);
    SHOWRC("timedjoin NULL abstime", pthread_timedjoin_np(t, &v, NULL));
    printf("  value=%ld\n", (long)v);
}

static pthread_t main_handle;

/* Waits (up to 5 s) until the process's first OS thread sleeps: natively main then waits
 * in pthread_join(this thread). Without it a busy machine could run this thread's join
 * first, and main's join then answered EDEADLK natively instead. */
static void until_main_sleeps(void) {
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    for (int i = 0; i < 5000; i++) {
        msleep(1);
        FILE *f = fopen(path, "r");
        if (!f) return;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = 0;
        const char *end = strrchr(stat, ')');
        if (end && end[1] == ' ' && end[2] == 'S') return;
    }
}

static void *join_main(void *arg) {
    (void)arg;
    msleep(50);
    until_main_sleeps();
    struct timespec d = in_ms(CLOCK_REALTIME, 200);
    return (void *)(long)pthread_timedjoin_np(main_handle, NULL, &d);
}

CASE(join_cycle_edeadlk) {
    main_handle = pthread_self();
    pthread_t t = spawn(join_main, NULL);
    long r = join_long(t);
    printf("thread joining its joiner: %s\n", en((int)r));
}

static void *join_other(void *arg) {
    return (void *)join_long(*(pthread_t *)arg);
}

CASE(thread_joins_sibling) {
    static pthread_t a;
    a = spawn(sleep_ms_ret, (void *)40L);
    pthread_t b = spawn(join_other, &a);
    printf("b got a's value: %ld\n", join_long(b));
}

static void *self_detach_then_signal(void *arg) {
    (void)arg;
    pthread_detach(pthread_self());
    sem_post(&detached_ran);
    msleep(30);
    return NULL;
}

CASE(detach_self_then_join_einval) {
    sem_init(&detached_ran, 0, 0);
    pthread_t t = spawn(self_detach_then_signal, NULL);
    sem_wait(&detached_ran);
    SHOWRC("join self-detached", pthread_join(t, NULL));
    msleep(60);
}

static void *spin_until_flag(void *arg) {
    volatile int *flag = arg;
    while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) msleep(1);
    return (void *)5L;
}

CASE(tryjoin_busy_until_exit) {
    static volatile int flag;
    pthread_t t = spawn(spin_until_flag, (void *)&flag);
    void *v = NULL;
    SHOWRC("tryjoin running", pthread_tryjoin_np(t, &v));
    msleep(20);
    SHOWRC("tryjoin still running", pthread_tryjoin_np(t, &v));
    __atomic_store_n(&flag, 1, __ATOMIC_SEQ_CST);
    int r;
    int tries = 0;
    while ((r = pthread_tryjoin_np(t, &v)) == EBUSY && tries++ < 1000) msleep(1);
    printf("tryjoin eventually: %s value=%ld\n", en(r), (long)v);
}

static void *cancel_target(void *arg) {
    (void)arg;
    for (;;) msleep(10);
    return NULL;
}

CASE(cancel_sleeping_thread) {
    pthread_t t = spawn(cancel_target, NULL);
    msleep(20);
    SHOWRC("cancel", pthread_cancel(t));
    void *v = NULL;
    struct timespec d = in_ms(CLOCK_REALTIME, 1000); /* bounded if the cancel did not work */
    SHOWRC("join", pthread_timedjoin_np(t, &v, &d));
    printf("value is PTHREAD_CANCELED: %d\n", v == PTHREAD_CANCELED);
}

/* ---------------------------------------------------------------- identity and names */

static pthread_t seen[4];
static void *record_self(void *arg) {
    seen[(long)arg] = pthread_self();
    msleep(20);
    return NULL;
}

CASE(self_equal_distinct) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) t[i] = spawn(record_self, (void *)i);
    for (int i = 0; i < 4; i++) join_long(t[i]);
    int match = 0, distinct = 0, main_differs = 0;
    for (int i = 0; i < 4; i++) {
        match += pthread_equal(seen[i], t[i]) != 0;
        main_differs += !pthread_equal(seen[i], pthread_self());
        for (int j = 0; j < 4; j++) distinct += i != j && !pthread_equal(seen[i], seen[j]);
    }
    printf("self==handle: %d/4, distinct pairs: %d/12, differ from main: %d/4\n", match, distinct,
           main_differs);
}

static void *name_reader(void *arg) {
    char buf[32];
    sem_post(&detached_ran);
    msleep(20 + 30 * (long)arg); /* threads 1 and 2 print in order */
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("thread %ld sees its name: %s\n", (long)arg, buf);
    return NULL;
}

CASE(names_set_from_other_thread_and_inherited) {
    sem_init(&detached_ran, 0, 0);
    char buf[32];
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("main name: %s\n", buf);
    pthread_t a = spawn(name_reader, (void *)1L);
    pthread_t b = spawn(name_reader, (void *)2L);
    sem_wait(&detached_ran);
    sem_wait(&detached_ran);
    SHOWRC("setname a", pthread_setname_np(a, "alpha"));
    pthread_getname_np(a, buf, sizeof buf);
    printf("main reads a's name: %s\n", buf);
    pthread_getname_np(b, buf, sizeof buf);
    printf("main reads b's name: %s\n", buf);
    join_long(a);
    join_long(b);
    SHOWRC("setname main", pthread_setname_np(pthread_self(), "mainly"));
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("main name now: %s\n", buf);
    pthread_t c = spawn(name_reader, (void *)3L);
    sem_wait(&detached_ran);
    join_long(c);
}

/* ---------------------------------------------------------------- many threads */

static pthread_mutex_t count_m = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void *add_one(void *arg) {
    pthread_mutex_lock(&count_m);
    counter += (long)arg;
    pthread_mutex_unlock(&count_m);
    return NULL;
}

CASE(many_threads_2000_joined) {
    static pthread_t t[2000];
    counter = 0;
    int fails = 0;
    for (int i = 0; i < 2000; i++) fails += pthread_create(&t[i], NULL, add_one, (void *)1L) != 0;
    for (int i = 0; i < 2000; i++) pthread_join(t[i], NULL);
    printf("create failures=%d counter=%ld\n", fails, counter);
}

static sem_t many_done;
static void *post_many(void *arg) {
    (void)arg;
    sem_post(&many_done);
    return NULL;
}

CASE(many_threads_2000_detached) {
    sem_init(&many_done, 0, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int fails = 0;
    for (int i = 0; i < 2000; i++) {
        pthread_t t;
        int r;
        while ((r = pthread_create(&t, &a, post_many, NULL)) == EAGAIN) msleep(1);
        fails += r != 0;
    }
    for (int i = 0; i < 2000; i++) sem_wait(&many_done);
    int v = -1;
    sem_getvalue(&many_done, &v);
    printf("failures=%d all posted, value left=%d\n", fails, v);
    pthread_attr_destroy(&a);
    msleep(20);
}

static void *tree(void *arg) {
    long depth = (long)arg;
    if (depth == 0) return (void *)1L;
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn(tree, (void *)(depth - 1));
    long s = 0;
    for (int i = 0; i < 3; i++) s += join_long(t[i]);
    return (void *)s;
}

CASE(threads_create_threads_tree) {
    printf("leaves of a 3-ary tree of depth 5: %ld\n", join_long(spawn(tree, (void *)5L)));
}

static void *sleeper_n(void *arg) {
    msleep(100);
    return arg;
}

CASE(sleepers_run_concurrently) {
    pthread_t t[200];
    double t0 = now_ms();
    for (long i = 0; i < 200; i++) t[i] = spawn(sleeper_n, (void *)i);
    long s = 0;
    for (int i = 0; i < 200; i++) s += join_long(t[i]);
    printf("sum=%ld 200 x 100ms sleeps took: %s\n", s, timing(now_ms() - t0, 100));
}

/* ---------------------------------------------------------------- yield and errno */

static volatile int turn;
static volatile long handoffs;
static void *alternate(void *arg) {
    int me = (int)(long)arg;
    long mine = 0;
    for (int i = 0; i < 1000; i++) {
        while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != me) sched_yield();
        __atomic_add_fetch(&handoffs, 1, __ATOMIC_RELAXED);
        mine++;
        __atomic_store_n(&turn, 1 - me, __ATOMIC_RELEASE);
    }
    return (void *)mine;
}

CASE(sched_yield_strict_alternation) {
    turn = 0;
    handoffs = 0;
    pthread_t a = spawn(alternate, (void *)0L);
    pthread_t b = spawn(alternate, (void *)1L);
    long x = join_long(a), y = join_long(b);
    printf("turns: %ld + %ld, handoffs=%ld\n", x, y, handoffs);
}

static volatile int yield_stop;
static void *yield_count(void *arg) {
    (void)arg;
    long n = 0;
    while (!__atomic_load_n(&yield_stop, __ATOMIC_ACQUIRE)) {
        sched_yield();
        n++;
    }
    return (void *)n;
}

CASE(sched_yield_lets_sleeper_wake) {
    yield_stop = 0;
    pthread_t a = spawn(yield_count, NULL);
    pthread_t b = spawn(yield_count, NULL);
    double t0 = now_ms();
    msleep(50);
    printf("main woke while two threads yield: %s\n", timing(now_ms() - t0, 50));
    __atomic_store_n(&yield_stop, 1, __ATOMIC_RELEASE);
    long x = join_long(a), y = join_long(b);
    printf("both yielded: %d\n", x > 0 && y > 0);
}

static void *errno_keeper(void *arg) {
    int mine = (int)(long)arg;
    errno = mine;
    for (int i = 0; i < 20; i++) {
        msleep(1);
        sched_yield();
        if (errno != mine) return (void *)(long)errno;
        errno = mine;
    }
    return (void *)(long)errno;
}

CASE(errno_per_thread_across_switches) {
    errno = ERANGE;
    pthread_t a = spawn(errno_keeper, (void *)(long)EINTR);
    pthread_t b = spawn(errno_keeper, (void *)(long)ENOENT);
    long x = join_long(a), y = join_long(b);
    printf("a kept %s, b kept %s, main kept %s\n", en((int)x), en((int)y), en(errno));
}

static void *errno_fail_in_sleep(void *arg) {
    (void)arg;
    msleep(10);
    int r = close(-1);
    int e = errno;
    msleep(20);
    return (void *)(long)(r == -1 && errno == e && e == EBADF);
}

CASE(errno_of_blocked_main_untouched) {
    pthread_t t = spawn(errno_fail_in_sleep, NULL);
    int fd = open("/nonexistent/x", O_RDONLY);
    int e = errno;
    msleep(50);
    printf("open: %d %s, errno after sleep: %s, thread kept EBADF: %ld\n", fd, en(e), en(errno),
           join_long(t));
}

/* ---------------------------------------------------------------- mutexes */

static pthread_mutex_t mx;
static void *hold_mx_ms(void *arg) {
    pthread_mutex_lock(&mx);
    t_ref = now_ms();
    sem_post(&detached_ran);
    msleep((long)arg);
    pthread_mutex_unlock(&mx);
    return NULL;
}

static void init_mx(int type, int robust) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mx, &a);
    pthread_mutexattr_destroy(&a);
}

CASE(mutexattr_error_paths) {
    pthread_mutexattr_t a;
    int v = -1;
    pthread_mutexattr_init(&a);
    SHOWRC("settype 99", pthread_mutexattr_settype(&a, 99));
    SHOWRC("setpshared 5", pthread_mutexattr_setpshared(&a, 5));
    SHOWRC("setrobust 9", pthread_mutexattr_setrobust(&a, 9));
    SHOWRC("setprotocol 9", pthread_mutexattr_setprotocol(&a, 9));
    SHOWRC("setprotocol INHERIT", pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT));
    pthread_mutexattr_getprotocol(&a, &v);
    printf("protocol inherit: %d\n", v == PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_gettype(&a, &v);
    printf("default type is NORMAL/DEFAULT: %d\n", v == PTHREAD_MUTEX_DEFAULT);
    pthread_mutexattr_getrobust(&a, &v);
    printf("default robust stalled: %d\n", v == PTHREAD_MUTEX_STALLED);
    pthread_mutexattr_destroy(&a);
}

CASE(mutex_errorcheck_timedlock_self_edeadlk) {
    init_mx(PTHREAD_MUTEX_ERRORCHECK, 0);
    pthread_mutex_lock(&mx);
    struct timespec d = in_ms(CLOCK_REALTIME, 50);
    double t0 = now_ms();
    SHOWRC("timedlock self-held errorcheck", pthread_mutex_timedlock(&mx, &d));
    printf("  immediate: %s\n", timing(now_ms() - t0, 0));
    d = in_ms(CLOCK_MONOTONIC, 50);
    SHOWRC("clocklock self-held errorcheck", pthread_mutex_clocklock(&mx, CLOCK_MONOTONIC, &d));
    pthread_mutex_unlock(&mx);
}

CASE(mutex_recursive_timedlock_and_counts) {
    init_mx(PTHREAD_MUTEX_RECURSIVE, 0);
    struct timespec d = in_ms(CLOCK_REALTIME, 50);
    int r = 0;
    for (int i = 0; i < 5; i++) r |= pthread_mutex_timedlock(&mx, &d);
    SHOWRC("timedlock x5 recursive", r);
    r = 0;
    for (int i = 0; i < 5; i++) r |= pthread_mutex_unlock(&mx);
    SHOWRC("unlock x5", r);
    SHOWRC("unlock 6th", pthread_mutex_unlock(&mx));
}

static volatile int stage;
static void *recursive_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mx);
    int st = __atomic_load_n(&stage, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&mx);
    printf("waiter got the mutex at stage %d\n", st);
    return NULL;
}

CASE(mutex_recursive_held_twice_blocks_other) {
    init_mx(PTHREAD_MUTEX_RECURSIVE, 0);
    stage = 0;
    pthread_mutex_lock(&mx);
    pthread_mutex_lock(&mx);
    pthread_t t = spawn(recursive_waiter, NULL);
    msleep(30);
    stage = 1;
    pthread_mutex_unlock(&mx);
    msleep(30);
    stage = 2;
    pthread_mutex_unlock(&mx);
    join_long(t);
}

static void *try_and_time(void *arg) {
    (void)arg;
    printf("trylock other: %s\n", en(pthread_mutex_trylock(&mx)));
    struct timespec d = in_ms(CLOCK_REALTIME, 300);
    int r = pthread_mutex_timedlock(&mx, &d);
    printf("timedlock (300ms budget) while held 80ms: %s after %s\n", en(r), timing(now_ms() - t_ref, 80));
    if (!r) pthread_mutex_unlock(&mx);
    return NULL;
}

CASE(mutex_timedlock_acquires_when_released) {
    sem_init(&detached_ran, 0, 0);
    init_mx(PTHREAD_MUTEX_NORMAL, 0);
    pthread_t h = spawn(hold_mx_ms, (void *)80L);
    sem_wait(&detached_ran);
    pthread_t t = spawn(try_and_time, NULL);
    join_long(t);
    join_long(h);
}

static void *errcheck_other(void *arg) {
    (void)arg;
    int a = pthread_mutex_trylock(&mx);
    struct timespec d = in_ms(CLOCK_MONOTONIC, 30);
    int b = pthread_mutex_clocklock(&mx, CLOCK_MONOTONIC, &d);
    int c = pthread_mutex_unlock(&mx);
    printf("other: trylock=%s clocklock=%s unlock=%s\n", en(a), en(b), en(c));
    return NULL;
}

CASE(mutex_errorcheck_contended_from_other) {
    init_mx(PTHREAD_MUTEX_ERRORCHECK, 0);
    pthread_mutex_lock(&mx);
    join_long(spawn(errcheck_other, NULL));
    SHOWRC("owner unlock", pthread_mutex_unlock(&mx));
    SHOWRC("destroy", pthread_mutex_destroy(&mx));
}

static void *count_under_mutex(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&mx);
        long c = counter;
        if (i % 50 == 0) msleep(1);
        else if (i % 7 == 0) sched_yield();
        counter = c + 1;
        pthread_mutex_unlock(&mx);
    }
    return NULL;
}

CASE(mutex_each_type_protects_counter) {
    int types[] = { PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_RECURSIVE,
                    PTHREAD_MUTEX_ADAPTIVE_NP };
    const char *names[] = { "normal", "errorcheck", "recursive", "adaptive" };
    for (int k = 0; k < 4; k++) {
        init_mx(types[k], 0);
        counter = 0;
        pthread_t t[6];
        for (int i = 0; i < 6; i++) t[i] = spawn(count_under_mutex, NULL);
        for (int i = 0; i < 6; i++) join_long(t[i]);
        printf("%s: counter=%ld\n", names[k], counter);
        pthread_mutex_destroy(&mx);
    }
}

CASE(mutex_pi_errorcheck) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    SHOWRC("init PI errorcheck", pthread_mutex_init(&mx, &a));
    SHOWRC("lock", pthread_mutex_lock(&mx));
    SHOWRC("relock", pthread_mutex_lock(&mx));
    SHOWRC("trylock", pthread_mutex_trylock(&mx));
    join_long(spawn(errcheck_other, NULL));
    SHOWRC("unlock", pthread_mutex_unlock(&mx));
    SHOWRC("unlock again", pthread_mutex_unlock(&mx));
    pthread_mutex_destroy(&mx);
    pthread_mutexattr_destroy(&a);
}

CASE(mutex_trylock_self_held_each_kind) {
    struct { int type, robust, protocol; const char *name; } kinds[] = {
        { PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_NONE, "normal" },
        { PTHREAD_MUTEX_ERRORCHECK, 0, PTHREAD_PRIO_NONE, "errorcheck" },
        { PTHREAD_MUTEX_NORMAL, 1, PTHREAD_PRIO_NONE, "robust normal" },
        { PTHREAD_MUTEX_ERRORCHECK, 1, PTHREAD_PRIO_NONE, "robust errorcheck" },
        { PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_INHERIT, "PI normal" },
        { PTHREAD_MUTEX_RECURSIVE, 0, PTHREAD_PRIO_INHERIT, "PI recursive" },
        { PTHREAD_MUTEX_ERRORCHECK, 0, PTHREAD_PRIO_PROTECT, "PP errorcheck" },
        { PTHREAD_MUTEX_NORMAL, 1, PTHREAD_PRIO_INHERIT, "robust PI normal" },
    };
    for (unsigned k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, kinds[k].type);
        if (kinds[k].robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutexattr_setprotocol(&a, kinds[k].protocol);
        pthread_mutex_t m;
        int i = pthread_mutex_init(&m, &a);
        int l = pthread_mutex_lock(&m);
        int t = pthread_mutex_trylock(&m);
        if (t == 0) pthread_mutex_unlock(&m);
        int u = pthread_mutex_unlock(&m);
        printf("%s: init=%s lock=%s trylock self-held=%s unlock=%s\n", kinds[k].name, en(i), en(l),
               en(t), en(u));
        pthread_mutex_destroy(&m);
        pthread_mutexattr_destroy(&a);
    }
}

CASE(mutex_consistent_on_healthy_mutexes) {
    init_mx(PTHREAD_MUTEX_NORMAL, 0);
    SHOWRC("consistent non-robust", pthread_mutex_consistent(&mx));
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    pthread_mutex_lock(&mx);
    SHOWRC("consistent robust healthy held", pthread_mutex_consistent(&mx));
    pthread_mutex_unlock(&mx);
    SHOWRC("consistent robust healthy free", pthread_mutex_consistent(&mx));
}

static void *fifo_locker(void *arg) {
    pthread_mutex_lock(&mx);
    counter = counter * 10 + (long)arg;
    pthread_mutex_unlock(&mx);
    return NULL;
}

CASE(mutex_handoff_all_waiters_get_it) {
    init_mx(PTHREAD_MUTEX_NORMAL, 0);
    counter = 0;
    pthread_mutex_lock(&mx);
    pthread_t t[5];
    for (long i = 0; i < 5; i++) t[i] = spawn(fifo_locker, (void *)(i + 1));
    msleep(30);
    pthread_mutex_unlock(&mx);
    for (int i = 0; i < 5; i++) join_long(t[i]);
    /* the order is not specified natively; print only the digit set */
    int digits = 0;
    for (long c = counter; c; c /= 10) digits |= 1 << (c % 10);
    printf("each of 5 waiters got the lock once: %d\n", digits == 0x3e && counter >= 12345);
}

/* ---------------------------------------------------------------- condition variables */

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int waiting, returned, tokens;

static void *raw_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cm);
    waiting++;
    pthread_cond_wait(&cv, &cm);
    returned++;
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_signal_wakes_one_broadcast_all) {
    waiting = returned = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn(raw_waiter, NULL);
    wait_for(&waiting, 4);
    msleep(20);
    pthread_mutex_lock(&cm);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cm);
    /* Gate on the woken thread's return (on a loaded machine it may take longer than any
       fixed sleep), then give a wrongly woken second one time to show. */
    wait_for(&returned, 1);
    msleep(50);
    printf("after 1 signal: %d returned\n", returned);
    pthread_mutex_lock(&cm);
    pthread_cond_signal(&cv);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cm);
    wait_for(&returned, 3);
    msleep(50);
    printf("after 2 more signals: %d returned\n", returned);
    pthread_cond_broadcast(&cv);
    for (int i = 0; i < 4; i++) join_long(t[i]);
    printf("after broadcast: %d returned\n", returned);
}

static void *token_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&cm);
    waiting++;
    while (tokens == 0) pthread_cond_wait(&cv, &cm);
    tokens--;
    returned++;
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_predicate_loop_tokens) {
    waiting = returned = tokens = 0;
    pthread_t t[6];
    for (int i = 0; i < 6; i++) t[i] = spawn(token_waiter, NULL);
    wait_for(&waiting, 6);
    pthread_mutex_lock(&cm);
    tokens = 2;
    pthread_cond_broadcast(&cv); /* all wake, two find a token */
    pthread_mutex_unlock(&cm);
    msleep(50);
    pthread_mutex_lock(&cm);
    printf("2 tokens broadcast: consumed=%d left=%d\n", returned, tokens);
    tokens = 3;
    for (int i = 0; i < 3; i++) pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cm);
    msleep(50);
    pthread_mutex_lock(&cm);
    printf("3 tokens signalled: consumed=%d left=%d\n", returned, tokens);
    tokens = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cm);
    for (int i = 0; i < 6; i++) join_long(t[i]);
    printf("all consumed=%d\n", returned);
}

CASE(cond_signal_before_wait_is_lost) {
    pthread_cond_t c;
    pthread_cond_init(&c, NULL);
    pthread_cond_signal(&c);
    pthread_cond_broadcast(&c);
    pthread_mutex_lock(&cm);
    struct timespec d = in_ms(CLOCK_REALTIME, 40);
    double t0 = now_ms();
    SHOWRC("timedwait after early signal", pthread_cond_timedwait(&c, &cm, &d));
    printf("  waited: %s\n", timing(now_ms() - t0, 40));
    SHOWRC("mutex held (trylock)", pthread_mutex_trylock(&cm));
    pthread_mutex_unlock(&cm);
    pthread_cond_destroy(&c);
}

#define QCAP 8
static int queue[QCAP], qhead, qlen;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static long consumed_sum;
static void *producer(void *arg) {
    long base = (long)arg;
    for (int i = 1; i <= 500; i++) {
        pthread_mutex_lock(&cm);
        while (qlen == QCAP) pthread_cond_wait(&not_full, &cm);
        queue[(qhead + qlen++) % QCAP] = (int)(base + i);
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&cm);
    }
    return NULL;
}
static void *consumer(void *arg) {
    long n = (long)arg, got = 0;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&cm);
        while (qlen == 0) pthread_cond_wait(&not_empty, &cm);
        int v = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        consumed_sum += v;
        got++;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&cm);
    }
    return (void *)got;
}

CASE(cond_bounded_queue_3x3) {
    qhead = qlen = 0;
    consumed_sum = 0;
    pthread_t p[3], c[3];
    for (int i = 0; i < 3; i++) c[i] = spawn(consumer, (void *)500L);
    for (long i = 0; i < 3; i++) p[i] = spawn(producer, (void *)(i * 1000));
    for (int i = 0; i < 3; i++) join_long(p[i]);
    long got = 0;
    for (int i = 0; i < 3; i++) got += join_long(c[i]);
    printf("consumed %ld items, sum=%ld, left=%d\n", got, consumed_sum, qlen);
}

static pthread_cond_t cv_mono;
static void *signal_after(void *arg) {
    msleep((long)arg);
    pthread_mutex_lock(&cm);
    tokens = 1;
    pthread_cond_broadcast(&cv);
    pthread_cond_broadcast(&cv_mono);
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_timedwait_both_clocks_signalled) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    SHOWRC("condattr setclock MONOTONIC", pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    SHOWRC("condattr setclock CPUTIME", pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID));
    clockid_t ck = -1;
    pthread_condattr_getclock(&ca, &ck);
    printf("clock still monotonic: %d\n", ck == CLOCK_MONOTONIC);
    pthread_cond_init(&cv_mono, &ca);
    struct { pthread_cond_t *c; clockid_t clk; const char *name; } runs[] = {
        { &cv, CLOCK_REALTIME, "realtime cond" }, { &cv_mono, CLOCK_MONOTONIC, "monotonic cond" }
    };
    for (int k = 0; k < 2; k++) {
        tokens = 0;
        pthread_mutex_lock(&cm);
        double t0 = now_ms();
        pthread_t t = spawn(signal_after, (void *)40L);
        struct timespec d = in_ms(runs[k].clk, 1000);
        int r = 0;
        while (!tokens && r == 0) r = pthread_cond_timedwait(runs[k].c, &cm, &d);
        printf("%s: %s after %s\n", runs[k].name, en(r), timing(now_ms() - t0, 40));
        pthread_mutex_unlock(&cm);
        join_long(t);
    }
    tokens = 0;
    pthread_mutex_lock(&cm);
    double t0 = now_ms();
    pthread_t t = spawn(signal_after, (void *)40L);
    struct timespec d = in_ms(CLOCK_MONOTONIC, 1000);
    int r = 0;
    while (!tokens && r == 0) r = pthread_cond_clockwait(&cv, &cm, CLOCK_MONOTONIC, &d);
    printf("clockwait monotonic on realtime cond: %s after %s\n", en(r), timing(now_ms() - t0, 40));
    pthread_mutex_unlock(&cm);
    join_long(t);
    pthread_cond_destroy(&cv_mono);
}

static void *grab_cm_and_hold(void *arg) {
    pthread_mutex_lock(&cm);
    t_ref = now_ms();
    msleep((long)arg);
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_timeout_must_reacquire_contended_mutex) {
    pthread_cond_t c;
    pthread_cond_init(&c, NULL);
    pthread_mutex_lock(&cm);
    pthread_t t = spawn(grab_cm_and_hold, (void *)150L); /* blocks until we wait */
    msleep(10);
    struct timespec d = in_ms(CLOCK_REALTIME, 30);
    int r = pthread_cond_timedwait(&c, &cm, &d);
    printf("timedwait 30ms with the mutex held 150ms by another: %s, returned when it was released: %s\n",
           en(r), timing(now_ms() - t_ref, 150));
    pthread_mutex_unlock(&cm);
    join_long(t);
    pthread_cond_destroy(&c);
}

static pthread_mutex_t rec_m;
static pthread_cond_t rec_c = PTHREAD_COND_INITIALIZER;
static volatile int rec_flag;
static void *rec_signaller(void *arg) {
    (void)arg;
    msleep(30);
    pthread_mutex_lock(&rec_m);
    rec_flag = 1;
    pthread_cond_signal(&rec_c);
    pthread_mutex_unlock(&rec_m);
    return NULL;
}

CASE(cond_with_recursive_mutex) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec_m, &a);
    rec_flag = 0;
    pthread_mutex_lock(&rec_m);
    pthread_t t = spawn(rec_signaller, NULL);
    int r = 0;
    while (!rec_flag && !r) r = pthread_cond_wait(&rec_c, &rec_m);
    printf("wait on recursive (held once): %s flag=%d\n", en(r), rec_flag);
    SHOWRC("relock after wait", pthread_mutex_lock(&rec_m));
    SHOWRC("unlock", pthread_mutex_unlock(&rec_m));
    SHOWRC("unlock", pthread_mutex_unlock(&rec_m));
    SHOWRC("unlock extra", pthread_mutex_unlock(&rec_m));
    join_long(t);
}

CASE(cond_timedwait_past_deadline) {
    pthread_cond_t c;
    pthread_cond_init(&c, NULL);
    pthread_mutex_lock(&cm);
    struct timespec d = in_ms(CLOCK_REALTIME, -500);
    double t0 = now_ms();
    SHOWRC("timedwait past", pthread_cond_timedwait(&c, &cm, &d));
    d = in_ms(CLOCK_MONOTONIC, -500);
    SHOWRC("clockwait past", pthread_cond_clockwait(&c, &cm, CLOCK_MONOTONIC, &d));
    d.tv_sec = 0;
    d.tv_nsec = 0;
    SHOWRC("timedwait epoch", pthread_cond_timedwait(&c, &cm, &d));
    printf("  immediate: %s\n", timing(now_ms() - t0, 0));
    SHOWRC("held after (trylock)", pthread_mutex_trylock(&cm));
    pthread_mutex_unlock(&cm);
}

static volatile int pp_ball, pp_count;
static pthread_cond_t pp_c = PTHREAD_COND_INITIALIZER;
static void *pingpong(void *arg) {
    int me = (int)(long)arg;
    pthread_mutex_lock(&cm);
    for (int i = 0; i < 500; i++) {
        while (pp_ball != me) pthread_cond_wait(&pp_c, &cm);
        pp_count++;
        pp_ball = 1 - me;
        pthread_cond_signal(&pp_c);
    }
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_pingpong_1000) {
    pp_ball = 0;
    pp_count = 0;
    pthread_t a = spawn(pingpong, (void *)0L), b = spawn(pingpong, (void *)1L);
    join_long(a);
    join_long(b);
    printf("hits=%d\n", pp_count);
}

/* ---------------------------------------------------------------- rwlocks */

static pthread_rwlock_t rwl;
static void init_rw(int kind) {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, kind);
    pthread_rwlock_init(&rwl, &a);
    pthread_rwlockattr_destroy(&a);
}

static void *writer_waits(void *arg) {
    (void)arg;
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    pthread_rwlock_wrlock(&rwl);
    printf("writer got the lock when the reader left: %s\n", timing(now_ms() - t_ref, 0));
    pthread_rwlock_unlock(&rwl);
    return NULL;
}

static void *late_reader(void *arg) {
    (void)arg;
    int a = pthread_rwlock_tryrdlock(&rwl);
    if (!a) pthread_rwlock_unlock(&rwl);
    struct timespec d = in_ms(CLOCK_REALTIME, 20);
    int b = pthread_rwlock_timedrdlock(&rwl, &d);
    if (!b) pthread_rwlock_unlock(&rwl);
    printf("late reader while a writer waits: tryrdlock=%s timedrdlock=%s\n", en(a), en(b));
    return NULL;
}

static void reader_vs_waiting_writer(int kind) {
    init_rw(kind);
    waiting = 0;
    pthread_rwlock_rdlock(&rwl);
    pthread_t w = spawn(writer_waits, NULL);
    wait_for(&waiting, 1);
    msleep(20);
    join_long(spawn(late_reader, NULL));
    msleep(20);
    t_ref = now_ms();
    pthread_rwlock_unlock(&rwl);
    join_long(w);
    pthread_rwlock_destroy(&rwl);
}

CASE(rwlock_prefer_reader_default) { reader_vs_waiting_writer(PTHREAD_RWLOCK_PREFER_READER_NP); }

CASE(rwlock_prefer_writer_nonrecursive) {
    reader_vs_waiting_writer(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
}

CASE(rwlock_prefer_writer_np_acts_as_reader) {
    reader_vs_waiting_writer(PTHREAD_RWLOCK_PREFER_WRITER_NP);
}

CASE(rwlockattr_kind_and_pshared) {
    pthread_rwlockattr_t a;
    int k = -1;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_getkind_np(&a, &k);
    printf("default kind is PREFER_READER: %d\n", k == PTHREAD_RWLOCK_PREFER_READER_NP);
    SHOWRC("setkind 77", pthread_rwlockattr_setkind_np(&a, 77));
    SHOWRC("setkind WRITER_NONRECURSIVE", pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP));
    pthread_rwlockattr_getkind_np(&a, &k);
    printf("kind roundtrip: %d\n", k == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    SHOWRC("setpshared 3", pthread_rwlockattr_setpshared(&a, 3));
    pthread_rwlockattr_destroy(&a);
}

static void *reader_hold(void *arg) {
    pthread_rwlock_rdlock(&rwl);
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    msleep((long)arg);
    pthread_rwlock_unlock(&rwl);
    return NULL;
}

CASE(rwlock_readers_share_writer_excludes) {
    init_rw(PTHREAD_RWLOCK_PREFER_READER_NP);
    waiting = 0;
    double t0 = now_ms();
    pthread_t r[4];
    for (int i = 0; i < 4; i++) r[i] = spawn(reader_hold, (void *)80L);
    wait_for(&waiting, 4);
    printf("4 readers inside at once: %d\n", waiting);
    SHOWRC("trywrlock with readers", pthread_rwlock_trywrlock(&rwl));
    struct timespec d = in_ms(CLOCK_REALTIME, 1000);
    SHOWRC("timedwrlock waits for readers", pthread_rwlock_timedwrlock(&rwl, &d));
    printf("  4 x 80ms readers overlapped: %s\n", timing(now_ms() - t0, 80));
    SHOWRC("tryrdlock while writing", pthread_rwlock_tryrdlock(&rwl));
    SHOWRC("trywrlock while writing", pthread_rwlock_trywrlock(&rwl));
    SHOWRC("unlock", pthread_rwlock_unlock(&rwl));
    for (int i = 0; i < 4; i++) join_long(r[i]);
    pthread_rwlock_destroy(&rwl);
}

static void *rw_worker(void *arg) {
    long id = (long)arg;
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        if ((i + id) % 5 == 0) {
            pthread_rwlock_wrlock(&rwl);
            long c = counter;
            sched_yield();
            counter = c + 1;
            pthread_rwlock_unlock(&rwl);
        } else {
            pthread_rwlock_rdlock(&rwl);
            long c = counter;
            sched_yield();
            bad += c != counter;
            pthread_rwlock_unlock(&rwl);
        }
    }
    return (void *)bad;
}

CASE(rwlock_mixed_workload_each_kind) {
    int kinds[] = { PTHREAD_RWLOCK_PREFER_READER_NP, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP };
    for (int k = 0; k < 2; k++) {
        init_rw(kinds[k]);
        counter = 0;
        pthread_t t[6];
        for (long i = 0; i < 6; i++) t[i] = spawn(rw_worker, (void *)i);
        long bad = 0;
        for (int i = 0; i < 6; i++) bad += join_long(t[i]);
        printf("kind %d: writes=%ld torn reads=%ld\n", k, counter, bad);
        pthread_rwlock_destroy(&rwl);
    }
}

CASE(rwlock_many_recursive_reads) {
    init_rw(PTHREAD_RWLOCK_PREFER_READER_NP);
    int r = 0;
    for (int i = 0; i < 100; i++) r |= pthread_rwlock_rdlock(&rwl);
    SHOWRC("100 rdlocks", r);
    SHOWRC("trywrlock", pthread_rwlock_trywrlock(&rwl));
    r = 0;
    for (int i = 0; i < 100; i++) r |= pthread_rwlock_unlock(&rwl);
    SHOWRC("100 unlocks", r);
    SHOWRC("trywrlock after", pthread_rwlock_trywrlock(&rwl));
    SHOWRC("unlock", pthread_rwlock_unlock(&rwl));
    SHOWRC("destroy", pthread_rwlock_destroy(&rwl));
}

static void *writer_hold(void *arg) {
    pthread_rwlock_wrlock(&rwl);
    t_ref = now_ms();
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    msleep((long)arg);
    pthread_rwlock_unlock(&rwl);
    return NULL;
}
static void *timed_reader(void *arg) {
    struct timespec d = in_ms(CLOCK_MONOTONIC, (long)arg);
    double t0 = now_ms();
    int r = pthread_rwlock_clockrdlock(&rwl, CLOCK_MONOTONIC, &d);
    double el = now_ms() - t0, since_ref = now_ms() - t_ref;
    if (!r) pthread_rwlock_unlock(&rwl);
    printf("clockrdlock budget %ldms vs writer 80ms: %s (%s)\n", (long)arg, en(r),
           r ? timing(el, (long)arg) : timing(since_ref, 80));
    return NULL;
}

CASE(rwlock_clockrdlock_vs_writer) {
    init_rw(PTHREAD_RWLOCK_PREFER_READER_NP);
    waiting = 0;
    pthread_t w = spawn(writer_hold, (void *)80L);
    wait_for(&waiting, 1);
    pthread_t a = spawn(timed_reader, (void *)30L);
    join_long(a);
    pthread_t b = spawn(timed_reader, (void *)500L);
    join_long(b);
    join_long(w);
    pthread_rwlock_destroy(&rwl);
}

/* ---------------------------------------------------------------- semaphores */

static sem_t sem;
static void *sem_poster(void *arg) {
    for (long i = 0; i < (long)arg; i++) {
        sem_post(&sem);
        if (i % 16 == 0) sched_yield();
    }
    return NULL;
}
static void *sem_taker(void *arg) {
    for (long i = 0; i < (long)arg; i++) sem_wait(&sem);
    return arg;
}

CASE(sem_counts_across_threads) {
    sem_init(&sem, 0, 0);
    pthread_t c[2], p[3];
    for (int i = 0; i < 2; i++) c[i] = spawn(sem_taker, (void *)150L);
    for (int i = 0; i < 3; i++) p[i] = spawn(sem_poster, (void *)110L);
    long took = 0;
    for (int i = 0; i < 3; i++) join_long(p[i]);
    for (int i = 0; i < 2; i++) took += join_long(c[i]);
    int v = -1;
    sem_getvalue(&sem, &v);
    printf("taken=%ld left=%d\n", took, v);
    sem_destroy(&sem);
}

static void *post_after(void *arg) {
    msleep((long)arg);
    sem_post(&sem);
    return NULL;
}

CASE(sem_timedwait_satisfied_by_thread) {
    sem_init(&sem, 0, 0);
    double t0 = now_ms();
    pthread_t t = spawn(post_after, (void *)40L);
    struct timespec d = in_ms(CLOCK_REALTIME, 1000);
    SHOW("sem_timedwait", sem_timedwait(&sem, &d));
    printf("  after: %s\n", timing(now_ms() - t0, 40));
    join_long(t);
    t0 = now_ms();
    t = spawn(post_after, (void *)40L);
    d = in_ms(CLOCK_MONOTONIC, 1000);
    SHOW("sem_clockwait monotonic", sem_clockwait(&sem, CLOCK_MONOTONIC, &d));
    printf("  after: %s\n", timing(now_ms() - t0, 40));
    join_long(t);
    d = in_ms(CLOCK_REALTIME, 30);
    t0 = now_ms();
    SHOW("sem_clockwait realtime timeout", sem_clockwait(&sem, CLOCK_REALTIME, &d));
    printf("  after: %s\n", timing(now_ms() - t0, 30));
    SHOW("sem_clockwait bad clock", sem_clockwait(&sem, CLOCK_THREAD_CPUTIME_ID, &d));
    sem_destroy(&sem);
}

static void *sem_wait_count(void *arg) {
    (void)arg;
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    sem_wait(&sem);
    __atomic_add_fetch(&returned, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

CASE(sem_post_wakes_exactly_one) {
    sem_init(&sem, 0, 0);
    waiting = returned = 0;
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn(sem_wait_count, NULL);
    wait_for(&waiting, 3);
    msleep(20);
    int v = -1;
    sem_getvalue(&sem, &v);
    printf("value with 3 waiters: %d\n", v);
    sem_post(&sem);
    msleep(40);
    printf("after 1 post: %d returned\n", returned);
    sem_post(&sem);
    sem_post(&sem);
    for (int i = 0; i < 3; i++) join_long(t[i]);
    sem_getvalue(&sem, &v);
    printf("after 3 posts: %d returned, value %d\n", returned, v);
    sem_destroy(&sem);
}

static void *named_waiter(void *arg) {
    sem_t *s = sem_open((const char *)arg, 0);
    if (s == SEM_FAILED) return (void *)-1L;
    struct timespec d = in_ms(CLOCK_REALTIME, 1000);
    long r = sem_timedwait(s, &d) ? errno : 0;
    sem_close(s);
    return (void *)r;
}

CASE(sem_open_named_lifecycle) {
    char name[64];
    snprintf(name, sizeof name, "/greenify-diff-%d", (int)getpid());
    sem_unlink(name);
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    printf("create: %s\n", s == SEM_FAILED ? en(errno) : "ok");
    sem_t *again = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    printf("create O_EXCL again: %s\n", again == SEM_FAILED ? en(errno) : "ok");
    sem_t *same = sem_open(name, 0);
    printf("open existing is same mapping: %d\n", same == s);
    pthread_t t = spawn(named_waiter, name);
    msleep(30);
    SHOW("post", sem_post(s));
    printf("thread's timedwait: %s\n", en((int)join_long(t)));
    int v = -1;
    sem_getvalue(s, &v);
    printf("value: %d\n", v);
    SHOW("close", sem_close(s));
    SHOW("close same", sem_close(same));
    SHOW("unlink", sem_unlink(name));
    SHOW("unlink again", sem_unlink(name));
    errno = 0;
    s = sem_open(name, 0);
    printf("open after unlink: %s\n", s == SEM_FAILED ? en(errno) : "ok");
    s = sem_open(name, O_CREAT, 0600, (unsigned)SEM_VALUE_MAX + 1);
    printf("create too big: %s\n", s == SEM_FAILED ? en(errno) : "ok");
    sem_unlink(name);
}

CASE(sem_open_named_shared_by_fds) {
    char name[64];
    snprintf(name, sizeof name, "/greenify-diff2-%d", (int)getpid());
    sem_unlink(name);
    sem_t *s = sem_open(name, O_CREAT, 0600, 2);
    SHOW("trywait", sem_trywait(s));
    SHOW("trywait", sem_trywait(s));
    SHOW("trywait empty", sem_trywait(s));
    SHOW("unlink while open", sem_unlink(name));
    sem_post(s);
    int v = -1;
    sem_getvalue(s, &v);
    printf("still usable after unlink: value=%d\n", v);
    sem_close(s);
}

/* ---------------------------------------------------------------- barriers */

static pthread_barrier_t bar;
static volatile int round_count[64];
static volatile int serials;
static void *barrier_rounds(void *arg) {
    long id = (long)arg;
    long bad = 0;
    for (int r = 0; r < 50; r++) {
        if ((r + id) % 7 == 0) msleep(1);
        __atomic_add_fetch(&round_count[r], 1, __ATOMIC_SEQ_CST);
        int s = pthread_barrier_wait(&bar);
        if (s == PTHREAD_BARRIER_SERIAL_THREAD) __atomic_add_fetch(&serials, 1, __ATOMIC_SEQ_CST);
        else if (s != 0) bad++;
        bad += __atomic_load_n(&round_count[r], __ATOMIC_SEQ_CST) != 5;
        pthread_barrier_wait(&bar);
    }
    return (void *)bad;
}

CASE(barrier_50_rounds_5_threads) {
    memset((void *)round_count, 0, sizeof round_count);
    serials = 0;
    pthread_barrier_init(&bar, NULL, 5);
    pthread_t t[5];
    for (long i = 0; i < 5; i++) t[i] = spawn(barrier_rounds, (void *)i);
    long bad = 0;
    for (int i = 0; i < 5; i++) bad += join_long(t[i]);
    printf("bad=%ld serial threads=%d (one per wait)\n", bad, serials);
    SHOWRC("destroy", pthread_barrier_destroy(&bar));
}

static void *barrier_sleeper(void *arg) {
    msleep((long)arg);
    pthread_barrier_wait(&bar);
    return NULL;
}

CASE(barrier_released_by_last_arrival) {
    pthread_barrierattr_t a;
    int ps = -1;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_getpshared(&a, &ps);
    printf("default private: %d\n", ps == PTHREAD_PROCESS_PRIVATE);
    SHOWRC("setpshared 9", pthread_barrierattr_setpshared(&a, 9));
    pthread_barrier_init(&bar, &a, 4);
    pthread_t t[3];
    long ms[3] = { 10, 40, 90 };
    double t0 = now_ms();
    for (int i = 0; i < 3; i++) t[i] = spawn(barrier_sleeper, (void *)ms[i]);
    int s = pthread_barrier_wait(&bar);
    printf("main released after the slowest: %s serial-or-0: %d\n", timing(now_ms() - t0, 90),
           s == 0 || s == PTHREAD_BARRIER_SERIAL_THREAD);
    for (int i = 0; i < 3; i++) join_long(t[i]);
    pthread_barrier_destroy(&bar);
    pthread_barrierattr_destroy(&a);
}

/* ---------------------------------------------------------------- once */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static volatile int once_runs, once_done;
static void slow_init(void) {
    once_runs++;
    msleep(80);
    once_done = 1;
}
static void *call_once(void *arg) {
    (void)arg;
    pthread_once(&once, slow_init);
    return (void *)(long)once_done;
}

CASE(once_slow_routine_others_wait) {
    pthread_t t[5];
    double t0 = now_ms();
    for (int i = 0; i < 5; i++) t[i] = spawn(call_once, NULL);
    long saw = 0;
    for (int i = 0; i < 5; i++) saw += join_long(t[i]);
    printf("runs=%d callers that saw it done=%ld in %s\n", once_runs, saw, timing(now_ms() - t0, 80));
    SHOWRC("once again", pthread_once(&once, slow_init));
    printf("runs=%d\n", once_runs);
}

static pthread_once_t once_a = PTHREAD_ONCE_INIT, once_b = PTHREAD_ONCE_INIT;
static void init_b(void) { printf("init b\n"); }
static void init_a(void) {
    printf("init a begins\n");
    pthread_once(&once_b, init_b);
    printf("init a ends\n");
}

CASE(once_nested_other_control) {
    pthread_once(&once_a, init_a);
    pthread_once(&once_b, init_b);
    pthread_once(&once_a, init_a);
    printf("done\n");
}

static pthread_once_t once_exit = PTHREAD_ONCE_INIT;
static volatile int once_exit_runs;
static void init_that_exits(void) {
    once_exit_runs++;
    if (once_exit_runs == 1) pthread_exit((void *)9L);
}
static void *call_once_exit(void *arg) {
    (void)arg;
    pthread_once(&once_exit, init_that_exits);
    return (void *)1L;
}

CASE(once_routine_pthread_exits_then_retried) {
    printf("first caller (its init exits the thread): %ld\n", join_long(spawn(call_once_exit, NULL)));
    pthread_t t = spawn(call_once_exit, NULL);
    void *v = NULL;
    struct timespec d = in_ms(CLOCK_REALTIME, 1000); /* bounded if the once stays "running" */
    int r = pthread_timedjoin_np(t, &v, &d);
    printf("second caller: %s %ld\n", en(r), (long)v);
    printf("init runs=%d\n", once_exit_runs);
}

/* ---------------------------------------------------------------- spinlocks */

static pthread_spinlock_t sl;
static double spin_locked_at;
static void *spin_holder(void *arg) {
    pthread_spin_lock(&sl);
    spin_locked_at = now_ms();
    __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
    usleep((useconds_t)(long)arg * 1000);
    pthread_spin_unlock(&sl);
    return NULL;
}

CASE(spin_contended_holder_sleeps) {
    pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE);
    waiting = 0;
    pthread_t h = spawn(spin_holder, (void *)60L);
    wait_for(&waiting, 1);
    SHOWRC("spin_trylock held", pthread_spin_trylock(&sl));
    SHOWRC("spin_lock (holder sleeps 60ms)", pthread_spin_lock(&sl));
    printf("  got it after the holder's sleep: %s\n", timing(now_ms() - spin_locked_at, 60));
    SHOWRC("spin_unlock", pthread_spin_unlock(&sl));
    join_long(h);
    SHOWRC("spin_destroy", pthread_spin_destroy(&sl));
}

static void *spin_counter(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        pthread_spin_lock(&sl);
        long c = counter;
        if (i % 500 == 0) usleep(500);
        counter = c + 1;
        pthread_spin_unlock(&sl);
    }
    return NULL;
}

CASE(spin_counter_4_threads) {
    pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE);
    counter = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn(spin_counter, NULL);
    for (int i = 0; i < 4; i++) join_long(t[i]);
    printf("counter=%ld\n", counter);
    pthread_spin_destroy(&sl);
}

/* ---------------------------------------------------------------- keys */

static pthread_key_t k1, k2, k3;
static char key_log[256];
static pthread_mutex_t key_log_lock = PTHREAD_MUTEX_INITIALIZER;
static void key_logf(const char *s) {
    /* destructors of different threads may log at the same time */
    pthread_mutex_lock(&key_log_lock);
    strncat(key_log, s, sizeof key_log - strlen(key_log) - 1);
    pthread_mutex_unlock(&key_log_lock);
}
static void dtor_k1(void *v) {
    char b[32];
    snprintf(b, sizeof b, "k1(%ld)", (long)v);
    key_logf(b);
    if ((long)v == 1) pthread_setspecific(k2, (void *)20L); /* sets another key */
}
static void dtor_k2(void *v) {
    char b[32];
    snprintf(b, sizeof b, "k2(%ld)", (long)v);
    key_logf(b);
}
static void *set_k1_only(void *arg) {
    (void)arg;
    pthread_setspecific(k1, (void *)1L);
    return NULL;
}

CASE(key_destructor_sets_another_key) {
    key_log[0] = 0;
    pthread_key_create(&k1, dtor_k1);
    pthread_key_create(&k2, dtor_k2);
    join_long(spawn(set_k1_only, NULL));
    printf("destructor calls: %s\n", key_log);
    pthread_key_delete(k1);
    pthread_key_delete(k2);
}

static int rearm_calls;
static void dtor_rearm(void *v) {
    rearm_calls++;
    pthread_setspecific(k3, (void *)((long)v + 1)); /* keeps setting its own key */
}
static void *set_k3(void *arg) {
    (void)arg;
    pthread_setspecific(k3, (void *)1L);
    return NULL;
}

CASE(key_destructor_rearms_own_key) {
    rearm_calls = 0;
    pthread_key_create(&k3, dtor_rearm);
    join_long(spawn(set_k3, NULL));
    printf("destructor calls: %d (PTHREAD_DESTRUCTOR_ITERATIONS=%d)\n", rearm_calls,
           PTHREAD_DESTRUCTOR_ITERATIONS);
    pthread_key_delete(k3);
}

static void *set_and_wait(void *arg) {
    (void)arg;
    pthread_setspecific(k1, (void *)5L);
    sem_post(&detached_ran);
    msleep(50);
    return (void *)pthread_getspecific(k1);
}

CASE(key_deleted_while_thread_uses_it) {
    key_log[0] = 0;
    sem_init(&detached_ran, 0, 0);
    pthread_key_create(&k1, dtor_k1);
    pthread_t t = spawn(set_and_wait, NULL);
    sem_wait(&detached_ran);
    SHOWRC("key_delete during use", pthread_key_delete(k1));
    join_long(t);
    printf("destructor calls after delete: '%s'\n", key_log);
}

static void dtor_check_null(void *v) {
    char b[64];
    snprintf(b, sizeof b, "[v=%ld get=%ld]", (long)v, (long)pthread_getspecific(k1));
    key_logf(b);
}
static void *keys_values(void *arg) {
    long id = (long)arg;
    long before = (long)pthread_getspecific(k1);
    pthread_setspecific(k1, (void *)(id * 100));
    msleep(10);
    long after = (long)pthread_getspecific(k1);
    if (id == 2) pthread_setspecific(k1, NULL); /* NULL: no destructor call */
    return (void *)(before == 0 && after == id * 100 ? 1L : 0L);
}

CASE(key_values_per_thread_and_null_skips_dtor) {
    key_log[0] = 0;
    pthread_key_create(&k1, dtor_check_null);
    pthread_setspecific(k1, (void *)99L);
    pthread_t t[3];
    for (long i = 1; i <= 3; i++) t[i - 1] = spawn(keys_values, (void *)i);
    long ok = 0;
    for (int i = 0; i < 3; i++) ok += join_long(t[i]);
    printf("threads saw only their own value: %ld/3\n", ok);
    /* two destructor calls, value cleared before each; their order is unspecified */
    printf("dtor log has 100: %d 300: %d 200: %d len=%zu\n", strstr(key_log, "[v=100 get=0]") != NULL,
           strstr(key_log, "[v=300 get=0]") != NULL, strstr(key_log, "v=200") != NULL, strlen(key_log));
    printf("main keeps 99: %ld\n", (long)pthread_getspecific(k1));
    pthread_key_delete(k1);
}

static void dtor_order(void *v) {
    char b[16];
    snprintf(b, sizeof b, "%ld ", (long)v);
    key_logf(b);
}
static pthread_key_t order_keys[5];
static void *set_all_order(void *arg) {
    (void)arg;
    for (int i = 4; i >= 0; i--) pthread_setspecific(order_keys[i], (void *)(long)(i + 1));
    return NULL;
}

CASE(key_destructors_run_in_key_order) {
    key_log[0] = 0;
    for (int i = 0; i < 5; i++) pthread_key_create(&order_keys[i], dtor_order);
    pthread_key_delete(order_keys[2]);
    pthread_key_create(&order_keys[2], dtor_order); /* reuses the freed slot */
    join_long(spawn(set_all_order, NULL));
    printf("destructor order: %s\n", key_log);
    for (int i = 0; i < 5; i++) pthread_key_delete(order_keys[i]);
}

CASE(key_create_until_eagain) {
    static pthread_key_t ks[PTHREAD_KEYS_MAX + 10];
    int n = 0, r = 0;
    while (n < PTHREAD_KEYS_MAX + 10 && (r = pthread_key_create(&ks[n], NULL)) == 0) n++;
    printf("stopped with %s after at least 1000 keys: %d\n", en(r), n >= 1000);
    pthread_setspecific(ks[n - 1], (void *)7L);
    printf("last key works: %ld\n", (long)pthread_getspecific(ks[n - 1]));
    for (int i = 0; i < n; i++) pthread_key_delete(ks[i]);
    pthread_key_t k;
    SHOWRC("create after deleting all", pthread_key_create(&k, NULL));
    pthread_key_delete(k);
}

static void *exit_with_key(void *arg) {
    pthread_setspecific(k2, arg);
    pthread_exit((void *)3L);
}

CASE(key_destructor_runs_on_pthread_exit) {
    key_log[0] = 0;
    pthread_key_create(&k2, dtor_k2);
    printf("value=%ld\n", join_long(spawn(exit_with_key, (void *)8L)));
    printf("log: %s\n", key_log);
    pthread_key_delete(k2);
}

/* ---------------------------------------------------------------- robust mutexes */

static void *lock_and_die(void *arg) {
    pthread_mutex_lock(&mx);
    if (arg) pthread_exit(NULL);
    return NULL;
}

static void *robust_waiter(void *arg) {
    (void)arg;
    __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
    int r = pthread_mutex_lock(&mx);
    if (r == EOWNERDEAD) pthread_mutex_consistent(&mx);
    pthread_mutex_unlock(&mx);
    return (void *)(long)r;
}

static void *lock_sleep_die(void *arg) {
    pthread_mutex_lock(&mx);
    t_ref = now_ms();
    sem_post(&detached_ran);
    msleep((long)arg);
    return NULL; /* dies holding it */
}

CASE(robust_blocked_waiter_gets_eownerdead) {
    sem_init(&detached_ran, 0, 0);
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    waiting = 0;
    pthread_t owner = spawn(lock_sleep_die, (void *)60L);
    sem_wait(&detached_ran);
    pthread_t w = spawn(robust_waiter, NULL);
    long r = join_long(w);
    printf("waiter blocked while owner died: %s when it died: %s\n", en((int)r), timing(now_ms() - t_ref, 60));
    join_long(owner);
    SHOWRC("lock after consistent", pthread_mutex_lock(&mx));
    pthread_mutex_unlock(&mx);
}

CASE(robust_trylock_timedlock_eownerdead) {
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    join_long(spawn(lock_and_die, (void *)1L));
    SHOWRC("trylock after owner died", pthread_mutex_trylock(&mx));
    SHOWRC("unlock without consistent", pthread_mutex_unlock(&mx));
    struct timespec d = in_ms(CLOCK_REALTIME, 30);
    SHOWRC("timedlock now", pthread_mutex_timedlock(&mx, &d));
    SHOWRC("lock now", pthread_mutex_lock(&mx));
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    join_long(spawn(lock_and_die, NULL));
    d = in_ms(CLOCK_REALTIME, 30);
    SHOWRC("timedlock after owner returned", pthread_mutex_timedlock(&mx, &d));
    SHOWRC("consistent", pthread_mutex_consistent(&mx));
    SHOWRC("unlock", pthread_mutex_unlock(&mx));
}

static pthread_mutex_t rm2;
static void *lock_two_die(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mx);
    pthread_mutex_lock(&rm2);
    return NULL;
}

CASE(robust_two_held_both_eownerdead) {
    init_mx(PTHREAD_MUTEX_ERRORCHECK, 1);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&rm2, &a);
    join_long(spawn(lock_two_die, NULL));
    SHOWRC("errorcheck robust", pthread_mutex_lock(&mx));
    SHOWRC("errorcheck robust relock", pthread_mutex_lock(&mx));
    SHOWRC("recursive robust", pthread_mutex_lock(&rm2));
    SHOWRC("recursive robust relock (inconsistent)", pthread_mutex_lock(&rm2));
    SHOWRC("consistent", pthread_mutex_consistent(&rm2));
    SHOWRC("unlock", pthread_mutex_unlock(&rm2));
    SHOWRC("unlock", pthread_mutex_unlock(&rm2));
    SHOWRC("consistent mx", pthread_mutex_consistent(&mx));
    SHOWRC("unlock mx", pthread_mutex_unlock(&mx));
}

static void *consistent_by_other(void *arg) {
    (void)arg;
    return (void *)(long)pthread_mutex_consistent(&mx);
}

CASE(robust_consistent_by_non_owner) {
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    join_long(spawn(lock_and_die, NULL));
    SHOWRC("lock", pthread_mutex_lock(&mx));
    printf("consistent from another thread: %s\n", en((int)join_long(spawn(consistent_by_other, NULL))));
    SHOWRC("consistent by owner", pthread_mutex_consistent(&mx));
    SHOWRC("unlock", pthread_mutex_unlock(&mx));
}

static void *cond_waiter_robust(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mx);
    __atomic_store_n(&waiting, 1, __ATOMIC_SEQ_CST);
    struct timespec d = in_ms(CLOCK_REALTIME, 1000);
    int r = 0;
    while (!tokens && !r) r = pthread_cond_timedwait(&cv, &mx, &d);
    pthread_mutex_unlock(&mx);
    return (void *)(long)r;
}

CASE(robust_mutex_with_condvar) {
    init_mx(PTHREAD_MUTEX_NORMAL, 1);
    waiting = 0;
    tokens = 0;
    pthread_t t = spawn(cond_waiter_robust, NULL);
    wait_for(&waiting, 1);
    pthread_mutex_lock(&mx);
    tokens = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mx);
    printf("waiter: %s\n", en((int)join_long(t)));
}

/* prctl(PR_SET_NAME/PR_GET_NAME) names the calling thread only; a new thread inherits
 * its creator's name; pthread_getname_np of another thread sees its prctl name. */
static char name_seen[3][16];
static sem_t name_set, name_read;
static void *rename_self(void *arg) {
    prctl(PR_GET_NAME, name_seen[0]);
    SHOW("PR_SET_NAME long", prctl(PR_SET_NAME, (const char *)arg));
    prctl(PR_GET_NAME, name_seen[1]);
    SHOW("PR_GET_NAME bad pointer", prctl(PR_GET_NAME, (char *)1));
    SHOW("PR_SET_NAME bad pointer", prctl(PR_SET_NAME, (char *)1));
    sem_post(&name_set);
    sem_wait(&name_read);
    return NULL;
}

CASE(prctl_names_are_per_thread) {
    sem_init(&name_set, 0, 0);
    sem_init(&name_read, 0, 0);
    SHOW("PR_SET_NAME main", prctl(PR_SET_NAME, "case-main"));
    pthread_t t = spawn(rename_self, "worker-with-a-long-name");
    sem_wait(&name_set);
    char other[16] = "";
    SHOWRC("getname_np of the worker", pthread_getname_np(t, other, sizeof other));
    sem_post(&name_read);
    join_long(t);
    printf("worker inherited \"%s\", then named itself \"%s\", seen by main as \"%s\"\n",
           name_seen[0], name_seen[1], other);
    char mine[16] = "";
    prctl(PR_GET_NAME, mine);
    printf("main is still \"%s\"\n", mine);
    SHOWRC("getname_np of main", pthread_getname_np(pthread_self(), mine, sizeof mine));
    printf("main by getname_np \"%s\"\n", mine);
    SHOW("PR_SET_NAME main again", prctl(PR_SET_NAME, "renamed"));
    t = spawn(rename_self, "second");
    sem_wait(&name_set);
    sem_post(&name_read);
    join_long(t);
    printf("second worker inherited \"%s\"\n", name_seen[0]);
}
