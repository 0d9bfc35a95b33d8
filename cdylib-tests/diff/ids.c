/* Thread ids (gettid, tgkill, tkill), syscall() with the futex and identity numbers, and
 * the kernel state that is per thread (sigaltstack, /proc/self/task, CPU-time clocks).
 * Thread ids are never printed: only whether they are distinct, equal, or known. */
#include "case.h"
#include <linux/futex.h>
#include <signal.h>
#include <dirent.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long sys_futex(void *addr, int op, unsigned val, const struct timespec *ts,
                      unsigned bitset) {
    return syscall(SYS_futex, addr, op, val, ts, NULL, bitset);
}

/* ---- gettid ---- */

#define NIDS 3
static pthread_barrier_t ids_barrier;
static pid_t ids[NIDS + 1];
static int ids_stable[NIDS + 1], ids_sys[NIDS + 1];

static void *record_id(void *arg) {
    long i = (long)arg;
    pid_t first = gettid();
    usleep(1000);
    ids[i] = first;
    ids_stable[i] = gettid() == first;
    ids_sys[i] = syscall(SYS_gettid) == first;
    /* Everyone alive until all have looked (the kernel reuses an exited thread's id). */
    pthread_barrier_wait(&ids_barrier);
    return NULL;
}

CASE(ids_gettid_distinct_stable) {
    pthread_t t[NIDS];
    pthread_barrier_init(&ids_barrier, NULL, NIDS + 1);
    for (long i = 1; i <= NIDS; i++) pthread_create(&t[i - 1], NULL, record_id, (void *)i);
    ids[0] = gettid();
    ids_stable[0] = gettid() == ids[0];
    ids_sys[0] = syscall(SYS_gettid) == ids[0];
    pthread_barrier_wait(&ids_barrier);
    for (int i = 0; i < NIDS; i++) pthread_join(t[i], NULL);
    printf("main: gettid == getpid: %s\n", ids[0] == getpid() ? "yes" : "no");
    int distinct = 1;
    for (int i = 0; i <= NIDS; i++) {
        printf("thread %d: stable %s, syscall(SYS_gettid) same %s, is getpid %s\n", i,
               ids_stable[i] ? "yes" : "no", ids_sys[i] ? "yes" : "no",
               ids[i] == getpid() ? "yes" : "no");
        for (int j = 0; j < i; j++) distinct &= ids[i] != ids[j];
    }
    printf("all distinct: %s\n", distinct ? "yes" : "no");
}

static void *fork_and_report(void *arg) {
    (void)arg;
    pid_t before = gettid();
    pid_t child = fork();
    if (child == 0) {
        /* The child's only thread is its first: its id is its pid. */
        _exit(gettid() == getpid() && syscall(SYS_gettid) == getpid() ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child's thread id is its pid: %s\n", WEXITSTATUS(status) == 0 ? "yes" : "no");
    printf("parent's thread id kept: %s\n", gettid() == before ? "yes" : "no");
    return NULL;
}

CASE(ids_fork_from_thread_child_tid_is_pid) {
    pthread_t t;
    pthread_create(&t, NULL, fork_and_report, NULL);
    pthread_join(t, NULL);
}

/* ---- signals by thread id ---- */

static volatile pid_t handled_in;
static volatile int handled_value;
static volatile int handled;

static void note_tid(int sig, siginfo_t *info, void *ctx) {
    (void)sig, (void)ctx;
    handled_in = gettid();
    handled_value = info->si_code == SI_QUEUE ? info->si_value.sival_int : -1;
    handled = 1;
}

struct waiter {
    int pipe[2];
    pid_t tid;
    volatile int ready;
};

/* Waits in read() (restarted after the handler: SA_RESTART) until released. */
static void *wait_in_read(void *arg) {
    struct waiter *w = arg;
    w->tid = gettid();
    w->ready = 1;
    char c;
    (void)!read(w->pipe[0], &c, 1);
    return NULL;
}

static void start_waiter(struct waiter *w, pthread_t *t) {
    (void)!pipe(w->pipe);
    w->ready = 0;
    pthread_create(t, NULL, wait_in_read, w);
    while (!w->ready) usleep(1000);
}

static void stop_waiter(struct waiter *w, pthread_t t) {
    (void)!write(w->pipe[1], "x", 1);
    pthread_join(t, NULL);
    close(w->pipe[0]);
    close(w->pipe[1]);
}

static void install_note_tid(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = note_tid;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
}

static void await_handler(const char *what, pid_t target) {
    for (int i = 0; i < 5000 && !handled; i++) usleep(1000);
    printf("%s: handler ran %s, in the target %s\n", what, handled ? "yes" : "no",
           handled_in == target ? "yes" : "no");
    handled = 0;
    handled_in = 0;
}

CASE(ids_tgkill_tkill_reach_target_thread) {
    install_note_tid();
    struct waiter w;
    pthread_t t;
    start_waiter(&w, &t);
    SHOW("tgkill sig 0", tgkill(getpid(), w.tid, 0));
    SHOW("tgkill", tgkill(getpid(), w.tid, SIGUSR1));
    await_handler("tgkill", w.tid);
    SHOW("syscall tgkill", syscall(SYS_tgkill, getpid(), w.tid, SIGUSR1));
    await_handler("syscall tgkill", w.tid);
    SHOW("syscall tkill", syscall(SYS_tkill, w.tid, SIGUSR1));
    await_handler("syscall tkill", w.tid);
    siginfo_t info = {0};
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = 42;
    SHOW("rt_tgsigqueueinfo", syscall(SYS_rt_tgsigqueueinfo, getpid(), w.tid, SIGUSR1, &info));
    await_handler("rt_tgsigqueueinfo", w.tid);
    printf("queued value: %d\n", handled_value);
    SHOW("tgkill bad signal", tgkill(getpid(), w.tid, 65));
    SHOW("tgkill other process's tid", tgkill(getppid(), w.tid, 0));
    stop_waiter(&w, t);
    /* The main thread's id. */
    SHOW("tgkill main", tgkill(getpid(), gettid(), SIGUSR1));
    await_handler("tgkill main", getpid());
}

static void *note_own_tid(void *arg) {
    *(pid_t *)arg = gettid();
    return NULL;
}

CASE(ids_tgkill_joined_thread_esrch) {
    pid_t tid;
    pthread_t t;
    pthread_create(&t, NULL, note_own_tid, &tid);
    pthread_join(t, NULL);
    /* The kernel frees the id when the exiting task is reaped, a moment after join. */
    for (int i = 0; i < 2000 && tgkill(getpid(), tid, 0) == 0; i++) usleep(1000);
    SHOW("tgkill sig 0", tgkill(getpid(), tid, 0));
    SHOW("tgkill", tgkill(getpid(), tid, SIGUSR1));
    SHOW("syscall tkill", syscall(SYS_tkill, tid, 0));
    SHOW("syscall tgkill", syscall(SYS_tgkill, getpid(), tid, SIGUSR1));
    SHOW("sched_getscheduler", sched_getscheduler(tid));
    SHOW("getpriority", getpriority(PRIO_PROCESS, tid));
    SHOW("tgkill tid 0", tgkill(getpid(), 0, 0));
    SHOW("tgkill pid 0", tgkill(0, gettid(), 0));
}

CASE(ids_timer_signals_thread_by_id) {
    install_note_tid();
    struct waiter w;
    pthread_t t;
    start_waiter(&w, &t);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = w.tid;
    timer_t timer;
    SHOW("timer_create", timer_create(CLOCK_MONOTONIC, &ev, &timer));
    struct itimerspec in10ms = {{0, 0}, {0, 10 * 1000000L}};
    SHOW("timer_settime", timer_settime(timer, 0, &in10ms, NULL));
    await_handler("timer", w.tid);
    SHOW("timer_delete", timer_delete(timer));
    stop_waiter(&w, t);
    /* A thread that is gone. */
    for (int i = 0; i < 2000 && tgkill(getpid(), w.tid, 0) == 0; i++) usleep(1000);
    SHOW("timer_create for a gone thread", timer_create(CLOCK_MONOTONIC, &ev, &timer));
}

static void *own_scheduling(void *arg) {
    (void)arg;
    cpu_set_t set;
    SHOW("sched_getaffinity", sched_getaffinity(gettid(), sizeof set, &set));
    SHOW("sched_setaffinity", sched_setaffinity(gettid(), sizeof set, &set));
    SHOW("sched_getscheduler", sched_getscheduler(gettid()));
    struct sched_param param;
    SHOW("sched_getparam", sched_getparam(gettid(), &param));
    SHOW("sched_setscheduler", sched_setscheduler(gettid(), SCHED_OTHER, &param));
    SHOW("setpriority", setpriority(PRIO_PROCESS, gettid(), 5));
    SHOW("getpriority", getpriority(PRIO_PROCESS, gettid()));
    return NULL;
}

CASE(ids_scheduling_calls_take_thread_id) {
    pthread_t t;
    pthread_create(&t, NULL, own_scheduling, NULL);
    pthread_join(t, NULL);
}

/* ---- futex through syscall() ---- */

static _Atomic unsigned ping_word;
#define ROUNDS 2000

struct pinger {
    int op_wait, op_wake;
    unsigned me;
};

/* Waits for its turn on ping_word, then hands the turn to the other. */
static void *ping(void *arg) {
    struct pinger *p = arg;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned v;
        while ((v = ping_word) % 2 != p->me) sys_futex(&ping_word, p->op_wait, v, NULL, FUTEX_BITSET_MATCH_ANY);
        ping_word = v + 1;
        sys_futex(&ping_word, p->op_wake, 1, NULL, FUTEX_BITSET_MATCH_ANY);
    }
    return NULL;
}

static void ping_pong(const char *what, int op_wait, int op_wake) {
    ping_word = 0;
    struct pinger a = {op_wait, op_wake, 0}, b = {op_wait, op_wake, 1};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, ping, &a);
    pthread_create(&tb, NULL, ping, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("%s: %u handovers\n", what, ping_word);
}

CASE(ids_syscall_futex_ping_pong) {
    ping_pong("private", FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE);
    ping_pong("bitset private", FUTEX_WAIT_BITSET_PRIVATE, FUTEX_WAKE_BITSET_PRIVATE);
    ping_pong("shared", FUTEX_WAIT, FUTEX_WAKE);
}

static _Atomic unsigned lock_word;
static long lock_counter;

/* A mutex as Rust's std builds it: 0 free, 1 locked, 2 locked with waiters. */
static void word_lock(void) {
    unsigned c = 0;
    if (__atomic_compare_exchange_n(&lock_word, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    while (__atomic_exchange_n(&lock_word, 2, __ATOMIC_ACQUIRE) != 0)
        sys_futex(&lock_word, FUTEX_WAIT_BITSET_PRIVATE, 2, NULL, FUTEX_BITSET_MATCH_ANY);
}

static void word_unlock(void) {
    if (__atomic_exchange_n(&lock_word, 0, __ATOMIC_RELEASE) == 2)
        sys_futex(&lock_word, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
}

static void *contend(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) {
        word_lock();
        long seen = lock_counter;
        usleep(50); /* parks while holding the lock */
        lock_counter = seen + 1;
        word_unlock();
    }
    return NULL;
}

CASE(ids_syscall_futex_contended_lock) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, contend, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("counter: %ld\n", lock_counter);
}

CASE(ids_syscall_futex_errors) {
    static _Atomic unsigned word = 7;
    struct timespec rel = {0, 20 * 1000000L}, past = {0, 0}, bad = {0, 1000000000L};
    double t0 = now_ms();
    SHOW("wait value mismatch", sys_futex(&word, FUTEX_WAIT_PRIVATE, 8, NULL, 0));
    SHOW("wait relative timeout", sys_futex(&word, FUTEX_WAIT_PRIVATE, 7, &rel, 0));
    printf("timeout took: %s\n", timing(now_ms() - t0, 20));
    SHOW("wait shared timeout", sys_futex(&word, FUTEX_WAIT, 7, &rel, 0));
    SHOW("bitset absolute past", sys_futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &past, ~0u));
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 20 * 1000000L;
    if (abs.tv_nsec >= 1000000000L) abs.tv_sec++, abs.tv_nsec -= 1000000000L;
    t0 = now_ms();
    SHOW("bitset realtime absolute",
         sys_futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &abs, ~0u));
    printf("realtime timeout took: %s\n", timing(now_ms() - t0, 20));
    SHOW("bitset zero", sys_futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &rel, 0));
    SHOW("bad nanoseconds", sys_futex(&word, FUTEX_WAIT_PRIVATE, 7, &bad, 0));
    SHOW("misaligned", sys_futex((char *)&word + 1, FUTEX_WAIT_PRIVATE, 7, &rel, 0));
    SHOW("null word", sys_futex(NULLPTR, FUTEX_WAIT_PRIVATE, 7, &rel, 0));
    SHOW("bad timeout pointer", sys_futex(&word, FUTEX_WAIT_PRIVATE, 7, BADPTR, 0));
    SHOW("wake nobody", sys_futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, 0));
    SHOW("wake bitset zero", sys_futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, 0));
    SHOW("wake realtime", sys_futex(&word, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1, NULL, 0));
    SHOW("unknown op", sys_futex(&word, 99, 1, NULL, 0));
}

static _Atomic unsigned eintr_word;
static volatile int eintr_done;
static volatile long eintr_result;
static volatile int eintr_errno;

static void on_usr2(int sig) { (void)sig; }

static void *futex_wait_once(void *arg) {
    const struct timespec *ts = arg;
    errno = 0;
    long r = sys_futex(&eintr_word, FUTEX_WAIT_PRIVATE, 0, ts, 0);
    eintr_result = r;
    eintr_errno = r == -1 ? errno : 0;
    eintr_done = 1;
    return NULL;
}

/* Signals the waiter until its wait returns (a signal before the wait only runs the
 * handler), or, when it restarts, for a while and then wakes it. */
static void futex_signal_case(const char *what, int flags, const struct timespec *ts) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr2;
    sa.sa_flags = flags;
    sigaction(SIGUSR2, &sa, NULL);
    eintr_word = 0;
    eintr_done = 0;
    pthread_t t;
    pthread_create(&t, NULL, futex_wait_once, (void *)ts);
    for (int i = 0; i < 50 && !eintr_done; i++) {
        pthread_kill(t, SIGUSR2);
        usleep(2000);
    }
    if (!eintr_done) {
        eintr_word = 1;
        sys_futex(&eintr_word, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
    }
    pthread_join(t, NULL);
    printf("%s: ret=%ld errno=%s\n", what, eintr_result, en(eintr_errno));
}

CASE(ids_syscall_futex_signal) {
    static const struct timespec long_wait = {5, 0};
    futex_signal_case("no SA_RESTART", 0, NULL);
    futex_signal_case("no SA_RESTART, timeout", 0, &long_wait);
    futex_signal_case("SA_RESTART, timeout", SA_RESTART, &long_wait);
    /* Restarted after every handler until woken. */
    futex_signal_case("SA_RESTART", SA_RESTART, NULL);
}

/* ---- the waiting numbers through syscall() ---- */

static void write_x_later(int fd) { write_x(fd); }

CASE(ids_syscall_waits_take_the_hooks_paths) {
    int p[2];
    (void)!pipe(p);
    /* The writer is another thread: the read must let it run. */
    struct after *a = after(20, write_x_later, p[1]);
    char c;
    SHOW("read", syscall(SYS_read, p[0], &c, 1));
    after_join(a);
    struct pollfd pfd = {p[0], POLLIN, 0};
    struct timespec ts = {0, 30 * 1000000L};
    SHOW("ppoll, nothing to read", syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8));
    printf("time left written back: %s\n", ts.tv_sec == 0 && ts.tv_nsec == 0 ? "zero" : "not zero");
    write_x(p[1]);
    ts.tv_nsec = 500 * 1000000L;
    SHOW("ppoll, ready", syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 8));
    printf("time left written back: %s\n", ts.tv_nsec > 400 * 1000000L ? "most" : "little");
    sigset_t mask;
    sigemptyset(&mask);
    SHOW("ppoll, mask size 4", syscall(SYS_ppoll, &pfd, 1, &ts, &mask, 4));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct { const sigset_t *ss; size_t len; } sig6 = {&mask, 8}, bad6 = {&mask, 4};
    ts.tv_nsec = 500 * 1000000L;
    SHOW("pselect6, ready", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &ts, &sig6));
    printf("time left written back: %s\n", ts.tv_nsec > 400 * 1000000L ? "most" : "little");
    SHOW("pselect6, mask size 4", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &ts, &bad6));
    SHOW("pselect6, bad mask argument", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &ts, BADPTR));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    SHOW("epoll_pwait, mask size 4", syscall(SYS_epoll_pwait, ep, &out, 1, 0, &mask, 4));
    SHOW("epoll_pwait", syscall(SYS_epoll_pwait, ep, &out, 1, 100, &mask, 8));
    SHOW("read", syscall(SYS_read, p[0], &c, 1));
    a = after(20, write_x_later, p[1]);
    SHOW("epoll_wait for the writer", syscall(SYS_epoll_wait, ep, &out, 1, 2000));
    after_join(a);
    struct timespec bad = {0, 1000000000L}, tenms = {0, 10 * 1000000L};
    SHOW("clock_nanosleep, bad time", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, NULL));
    SHOW("clock_nanosleep", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &tenms, NULL));
    SHOW("nanosleep", syscall(SYS_nanosleep, &tenms, NULL));
    SHOW("sched_yield", syscall(SYS_sched_yield));
    close(ep);
    close(p[0]);
    close(p[1]);
}

CASE(ids_syscall_child_waits) {
    pid_t child = fork();
    if (child == 0) {
        msleep(20);
        _exit(7);
    }
    siginfo_t info = {0};
    struct rusage ru;
    SHOW("waitid with rusage", syscall(SYS_waitid, P_PID, child, &info, WEXITED, &ru));
    printf("status %d, same child %s\n", info.si_status, info.si_pid == child ? "yes" : "no");
    SHOW("waitid again", syscall(SYS_waitid, P_PID, child, &info, WEXITED, NULL));
    child = fork();
    if (child == 0) {
        msleep(20);
        _exit(3);
    }
    int status = 0;
    SHOW("wait4", syscall(SYS_wait4, child, &status, 0, NULL) == child);
    printf("status %d\n", WEXITSTATUS(status));
}

/* ---- sigaltstack ---- */

#define ALT_SIZE (64 * 1024)

static int same_stack(const stack_t *a, void *sp, size_t size, int flags) {
    return a->ss_sp == sp && a->ss_size == size && a->ss_flags == flags;
}

static volatile int onstack_seen, eperm_seen;

static void on_alt(int sig) {
    (void)sig;
    stack_t now, other = {0};
    sigaltstack(NULL, &now);
    onstack_seen = (now.ss_flags & SS_ONSTACK) != 0;
    other.ss_sp = malloc(ALT_SIZE);
    other.ss_size = ALT_SIZE;
    eperm_seen = sigaltstack(&other, NULL) == -1 && errno == EPERM;
    free(other.ss_sp);
}

static pthread_barrier_t alt_barrier;

static void *alt_keeper(void *arg) {
    (void)arg;
    stack_t now;
    sigaltstack(NULL, &now);
    printf("new thread: disabled %s\n", now.ss_flags == SS_DISABLE ? "yes" : "no");
    void *mine = malloc(ALT_SIZE);
    stack_t s = {.ss_sp = mine, .ss_size = ALT_SIZE, .ss_flags = 0};
    SHOW("keeper set", sigaltstack(&s, NULL));
    pthread_barrier_wait(&alt_barrier); /* the other sets its own, then exits */
    pthread_barrier_wait(&alt_barrier);
    sigaltstack(NULL, &now);
    printf("keeper's after the other's exit: %s\n", same_stack(&now, mine, ALT_SIZE, 0) ? "same" : "changed");
    raise(SIGUSR2);
    printf("handler on the alternate stack: %s, change refused: %s\n", onstack_seen ? "yes" : "no",
           eperm_seen ? "yes" : "no");
    sigaltstack(NULL, &now);
    printf("after the handler: %s\n", same_stack(&now, mine, ALT_SIZE, 0) ? "same" : "changed");
    return NULL;
}

/* As Rust's std does for each thread: its own stack, disabled and freed at exit. */
static void *alt_leaver(void *arg) {
    (void)arg;
    void *mine = malloc(ALT_SIZE);
    stack_t s = {.ss_sp = mine, .ss_size = ALT_SIZE, .ss_flags = 0}, old, now;
    pthread_barrier_wait(&alt_barrier);
    SHOW("leaver set", sigaltstack(&s, &old));
    printf("leaver's old: disabled %s\n", old.ss_flags == SS_DISABLE ? "yes" : "no");
    sigaltstack(NULL, &now);
    printf("leaver's own: %s\n", same_stack(&now, mine, ALT_SIZE, 0) ? "same" : "changed");
    stack_t off = {.ss_flags = SS_DISABLE};
    SHOW("leaver disable", sigaltstack(&off, NULL));
    free(mine);
    return NULL;
}

CASE(ids_sigaltstack_per_thread) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alt;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    void *main_stack = malloc(ALT_SIZE);
    stack_t s = {.ss_sp = main_stack, .ss_size = ALT_SIZE, .ss_flags = 0}, now;
    SHOW("main set", sigaltstack(&s, NULL));
    pthread_barrier_init(&alt_barrier, NULL, 2);
    pthread_t keeper, leaver;
    pthread_create(&keeper, NULL, alt_keeper, NULL);
    pthread_create(&leaver, NULL, alt_leaver, NULL);
    pthread_join(leaver, NULL);
    pthread_barrier_wait(&alt_barrier);
    pthread_join(keeper, NULL);
    sigaltstack(NULL, &now);
    printf("main's: %s\n", same_stack(&now, main_stack, ALT_SIZE, 0) ? "same" : "changed");
}

CASE(ids_sigaltstack_errors) {
    char *mem = malloc(ALT_SIZE);
    stack_t small = {.ss_sp = mem, .ss_size = 1024}, flags = {.ss_sp = mem, .ss_size = ALT_SIZE, .ss_flags = 12345};
    stack_t now;
    SHOW("too small", sigaltstack(&small, NULL));
    SHOW("bad flags", sigaltstack(&flags, NULL));
    SHOW("bad pointer", sigaltstack(BADPTR, NULL));
    SHOW("bad old pointer", sigaltstack(NULL, BADPTR));
    stack_t legacy = {.ss_sp = mem, .ss_size = ALT_SIZE, .ss_flags = SS_ONSTACK};
    SHOW("SS_ONSTACK accepted", sigaltstack(&legacy, NULL));
    sigaltstack(NULL, &now);
    printf("then: flags %d, same %s\n", now.ss_flags, now.ss_sp == mem ? "yes" : "no");
    stack_t off = {.ss_flags = SS_DISABLE};
    SHOW("disable", sigaltstack(&off, NULL));
    sigaltstack(NULL, &now);
    printf("then: flags %d, size %zu\n", now.ss_flags, now.ss_size);
}

/* ---- what stays per OS thread (known differences) ---- */

static void *park_on_barrier(void *arg) {
    (void)arg;
    pthread_barrier_wait(&ids_barrier);
    pthread_barrier_wait(&ids_barrier);
    return NULL;
}

/* More threads than greenify has OS threads (its workers and its monitor): each looks
 * for its own entry while all are alive. */
#define TASK_THREADS 8
static _Atomic int own_entries;

static int has_own_task_entry(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", gettid());
    DIR *d = opendir(path);
    if (d) closedir(d);
    return d != NULL;
}

static void *look_for_own_entry(void *arg) {
    (void)arg;
    own_entries += has_own_task_entry();
    pthread_barrier_wait(&ids_barrier);
    pthread_barrier_wait(&ids_barrier);
    return NULL;
}

CASE(ids_proc_self_task_lists_threads) {
    pthread_t t[TASK_THREADS];
    own_entries = 0;
    pthread_barrier_init(&ids_barrier, NULL, TASK_THREADS + 1);
    for (int i = 0; i < TASK_THREADS; i++) pthread_create(&t[i], NULL, look_for_own_entry, NULL);
    pthread_barrier_wait(&ids_barrier);
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    printf("every thread listed: %s, main's own entry: %s, threads' own entries: %d of %d\n",
           n >= TASK_THREADS + 1 ? "yes" : "no", has_own_task_entry() ? "yes" : "no",
           (int)own_entries, TASK_THREADS);
    pthread_barrier_wait(&ids_barrier);
    for (int i = 0; i < TASK_THREADS; i++) pthread_join(t[i], NULL);
}

static volatile int burn_done;

static void *burn_cpu(void *arg) {
    (void)arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 100);
    burn_done = 1;
    return NULL;
}

CASE(ids_thread_cputime_is_per_thread) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    pthread_t t;
    pthread_create(&t, NULL, burn_cpu, NULL);
    pthread_join(t, NULL);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("main's CPU time while another thread burned 100 ms: %s\n", ms < 50 ? "small" : "large");
    /* And a parked thread's clock, read through its handle while this one burns. */
    pthread_barrier_init(&ids_barrier, NULL, 2);
    pthread_create(&t, NULL, park_on_barrier, NULL);
    pthread_barrier_wait(&ids_barrier);
    clockid_t clock;
    pthread_getcpuclockid(t, &clock);
    clock_gettime(clock, &t0);
    burn_cpu(NULL);
    clock_gettime(clock, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("a parked thread's CPU time meanwhile: %s\n", ms < 50 ? "small" : "large");
    pthread_barrier_wait(&ids_barrier);
    pthread_join(t, NULL);
}

/* Threads alive at once (natively each has its own TCB, where its head is), more than
 * greenify has OS threads. */
#define ROBUST_THREADS 8
static void *robust_heads[ROBUST_THREADS + 1];

static void *robust_head(void *arg) {
    size_t len;
    syscall(SYS_get_robust_list, 0, &robust_heads[(long)arg], &len);
    pthread_barrier_wait(&ids_barrier);
    return NULL;
}

CASE(ids_robust_list_per_thread) {
    size_t len;
    syscall(SYS_get_robust_list, 0, &robust_heads[0], &len);
    pthread_barrier_init(&ids_barrier, NULL, ROBUST_THREADS + 1);
    pthread_t t[ROBUST_THREADS];
    for (long i = 0; i < ROBUST_THREADS; i++) pthread_create(&t[i], NULL, robust_head, (void *)(i + 1));
    pthread_barrier_wait(&ids_barrier);
    for (int i = 0; i < ROBUST_THREADS; i++) pthread_join(t[i], NULL);
    int distinct = 1;
    for (int i = 0; i <= ROBUST_THREADS; i++)
        for (int j = i + 1; j <= ROBUST_THREADS; j++) distinct &= robust_heads[i] != robust_heads[j];
    printf("robust list heads of %d live threads distinct: %s\n", ROBUST_THREADS + 1, distinct ? "yes" : "no");
}

static void *idle_thread(void *arg) { return arg; }

/* setgid and setuid (to the ids the process has: allowed to anyone) in a process whose
 * threads ran: glibc signals every OS thread with its SIGSETXID and waits until each ran
 * the handler, greenify's idle workers and monitor too. */
CASE(ids_setgid_setuid_after_threads_ran) {
    pthread_t t;
    pthread_create(&t, NULL, idle_thread, NULL);
    pthread_join(t, NULL);
    msleep(20);
    SHOWRC("setgid(getgid())", setgid(getgid()));
    SHOWRC("setuid(getuid())", setuid(getuid()));
    SHOWRC("setresgid(-1, -1, -1)", setresgid(-1, -1, -1));
}

/* ---- credentials reach every OS thread (glibc's setxid broadcast) ---- */

#include <grp.h>
#include <pwd.h>

/* Whether the Uid, Gid and Groups lines of every /proc/self/task/N/status are the same:
 * glibc makes each OS thread of the process (greenify's workers, monitor and helpers
 * too) take the new credentials before a set*id call returns. */
static const char *tasks_agree(void) {
    char first[1024] = "", now[1024], line[512], path[300];
    int agree = 1, n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* exited meanwhile */
        now[0] = 0;
        int zombie = 0;
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7))
                strncat(now, line, sizeof now - strlen(now) - 1);
            zombie |= !strncmp(line, "State:\tZ", 8);
        }
        fclose(f);
        /* A thread group leader that exited keeps its task, with the credentials it had. */
        if (zombie) continue;
        if (n++ == 0) strcpy(first, now);
        else agree &= strcmp(first, now) == 0;
    }
    closedir(d);
    return n > 0 && agree ? "yes" : "NO";
}

#define SHOW_ID(what, expr)                                                          \
    do {                                                                             \
        SHOW(what, expr);                                                            \
        printf("  every task agrees: %s\n", tasks_agree());                          \
    } while (0)

/* Threads parked while the credentials change (natively, OS threads of their own). */
#define ID_PARKED 3
static pthread_t id_parked[ID_PARKED];

static void park_some(void) {
    pthread_barrier_init(&ids_barrier, NULL, ID_PARKED + 1);
    for (int i = 0; i < ID_PARKED; i++) pthread_create(&id_parked[i], NULL, park_on_barrier, NULL);
    pthread_barrier_wait(&ids_barrier);
}

static void release_parked(void) {
    pthread_barrier_wait(&ids_barrier);
    for (int i = 0; i < ID_PARKED; i++) pthread_join(id_parked[i], NULL);
}

/* Each call to the ids the process has (allowed to anyone), one to an invalid id
 * (EINVAL on every thread), and one that changes the effective group (allowed to
 * root only, refused with EPERM otherwise), then back. */
static void set_ids(const char *who) {
    printf("%s:\n", who);
    gid_t egid = getegid();
    SHOW_ID("setgid(getgid())", setgid(getgid()));
    SHOW_ID("setuid(getuid())", setuid(getuid()));
    SHOW_ID("setegid(getegid())", setegid(getegid()));
    SHOW_ID("seteuid(geteuid())", seteuid(geteuid()));
    SHOW_ID("setregid(-1, -1)", setregid(-1, -1));
    SHOW_ID("setreuid(-1, -1)", setreuid(-1, -1));
    SHOW_ID("setresgid(-1, -1, -1)", setresgid(-1, -1, -1));
    SHOW_ID("setresuid(-1, -1, -1)", setresuid(-1, -1, -1));
    SHOW_ID("setuid(-1)", setuid((uid_t)-1));
    SHOW_ID("setresgid(-1, 65534, -1)", setresgid(-1, 65534, -1));
    SHOW_ID("setresgid(-1, egid, -1)", setresgid(-1, egid, -1));
}

static void *set_ids_here(void *arg) {
    set_ids(arg);
    return NULL;
}

CASE(ids_setxid_from_thread_reaches_every_task) {
    park_some();
    pthread_t t;
    pthread_create(&t, NULL, set_ids_here, "a thread");
    pthread_join(t, NULL);
    set_ids("main");
    release_parked();
}

/* setgroups to the groups the process has (root only), to one other group and back,
 * and initgroups (glibc's own call of setgroups inside libc). */
static void *set_groups_here(void *arg) {
    (void)arg;
    gid_t groups[256], other = 65534;
    int n = getgroups(256, groups);
    SHOW_ID("setgroups(getgroups())", setgroups(n, groups));
    SHOW_ID("setgroups(1, {65534})", setgroups(1, &other));
    struct passwd *pw = getpwuid(getuid());
    SHOW_ID("initgroups(own name)", pw ? initgroups(pw->pw_name, getgid()) : -2);
    SHOW_ID("setgroups back", setgroups(n, groups));
    SHOW_ID("setgroups(-1)", setgroups((size_t)-1, groups));
    return NULL;
}

CASE(ids_setgroups_from_thread_reaches_every_task) {
    park_some();
    pthread_t t;
    pthread_create(&t, NULL, set_groups_here, NULL);
    pthread_join(t, NULL);
    release_parked();
}

/* set*id while another thread creates and ends threads: a thread started meanwhile
 * gets the credentials of its creator. */
static volatile int churn_stop;

static void *churn_threads(void *arg) {
    (void)arg;
    while (!churn_stop) {
        pthread_t t;
        pthread_create(&t, NULL, idle_thread, NULL);
        pthread_join(t, NULL);
    }
    return NULL;
}

static void *toggle_egid(void *arg) {
    (void)arg;
    gid_t egid = getegid();
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        int a = setresgid(-1, 65534, -1), b = setresgid(-1, egid, -1);
        ok &= b == 0 && (a == 0 || errno == EPERM);
    }
    printf("50 changes and back: %s\n", ok ? "as natively" : "failed");
    return NULL;
}

CASE(ids_setxid_while_threads_come_and_go) {
    pthread_t churner, setter;
    pthread_create(&churner, NULL, churn_threads, NULL);
    pthread_create(&setter, NULL, toggle_egid, NULL);
    pthread_join(setter, NULL);
    churn_stop = 1;
    pthread_join(churner, NULL);
    printf("every task agrees: %s\n", tasks_agree());
}

/* glibc keeps its setxid and cancellation signals from the program. */
CASE(ids_sigaction_of_glibc_signals_refused) {
    pthread_t t;
    pthread_create(&t, NULL, idle_thread, NULL);
    pthread_join(t, NULL);
    SHOWRC("setgid(getgid())", setgid(getgid()));
    struct sigaction old, act = {0};
    act.sa_handler = SIG_IGN;
    SHOW("sigaction(33) query", sigaction(33, NULL, &old));
    SHOW("sigaction(33) set", sigaction(33, &act, NULL));
    SHOW("sigaction(32) query", sigaction(32, NULL, &old));
    SHOW("signal(33)", signal(33, SIG_IGN) == SIG_ERR ? -1 : 0);
    SHOWRC("setgid(getgid()) after", setgid(getgid()));
}

/* The main thread changes credentials between short waits while other threads compute:
 * with several workers greenify may resume it on any of them (see main_moves.c), and
 * the first OS thread, whose descriptor is main's, must take the change too. */
static volatile int id_spin_stop;

static void *id_spin(void *arg) {
    (void)arg;
    while (!id_spin_stop) {}
    return NULL;
}

CASE(ids_setxid_from_main_between_waits) {
    pthread_t spinners[2];
    for (int i = 0; i < 2; i++) pthread_create(&spinners[i], NULL, id_spin, NULL);
    gid_t egid = getegid();
    int same = 0, agree = 0;
    for (int i = 0; i < 50; i++) {
        usleep(200);
        int a = setresgid(-1, 65534, -1);
        int e = errno;
        agree += tasks_agree()[0] == 'y';
        usleep(200);
        int b = setresgid(-1, egid, -1);
        agree += tasks_agree()[0] == 'y';
        same += b == 0 && (a == 0 || e == EPERM);
    }
    id_spin_stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(spinners[i], NULL);
    printf("changes as natively: %d of 50, every task agreed: %d of 100\n", same, agree);
}

/* A thread changes credentials 40 times over while two threads compute, which greenify
 * preempts and resumes on either worker. A preempted thread's signal frame keeps the
 * alternate stack of the OS thread it was made on, and sigreturn gives that stack to the
 * OS thread it is resumed on: two workers with one alternate stack ran glibc's SIGSETXID
 * handler (SA_ONSTACK) over each other's frames, and 6 runs of 10 hung or crashed. */
static void *set_and_restore_egid_40(void *arg) {
    (void)arg;
    gid_t egid = getegid();
    long same = 0;
    for (int i = 0; i < 40; i++) {
        int a = setresgid(-1, 65534, -1);
        int e = errno;
        int b = setresgid(-1, egid, -1);
        same += b == 0 && getegid() == egid && (a == 0 || e == EPERM);
    }
    return (void *)same;
}

CASE(ids_setxid_from_thread_beside_threads_preempted_on_both_workers) {
    pthread_t spinners[2], setter;
    void *same = NULL;
    id_spin_stop = 0;
    for (int i = 0; i < 2; i++) pthread_create(&spinners[i], NULL, id_spin, NULL);
    pthread_create(&setter, NULL, set_and_restore_egid_40, NULL);
    pthread_join(setter, &same);
    id_spin_stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(spinners[i], NULL);
    printf("changes as natively: %ld of 40\n", (long)same);
}

/* A lookup of a user no file lists, from a thread: NSS asks its modules in turn, and
 * libnss_systemd runs a pthread_once on the OS thread that makes the lookup (greenify's
 * helper thread, which runs no green thread: it crashed there). */
static void *unknown_user(void *arg) {
    (void)arg;
    errno = 0;
    struct passwd *pw = getpwuid(65533);
    printf("getpwuid(65533) from a thread: %s\n", pw ? "found" : "none");
    struct group *gr = getgrgid(65533);
    printf("getgrgid(65533) from a thread: %s\n", gr ? "found" : "none");
    return NULL;
}

CASE(ids_lookup_of_unknown_user_from_thread) {
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        pthread_create(&t, NULL, unknown_user, NULL);
        pthread_join(t, NULL);
    }
}

/* A child forked by a thread (not main) changes credentials from its own threads while
 * the forking thread computes: the child's first OS thread, whose descriptor is then
 * the forking thread's TCB, must take them too. */
static volatile int child_set_done;

static void *set_egid_and_look(void *arg) {
    gid_t egid = *(gid_t *)arg;
    int a = setresgid(-1, 65534, -1), e = errno;
    int agreed = tasks_agree()[0] == 'y';
    int b = setresgid(-1, egid, -1);
    child_set_done = 1;
    return (void *)(long)(agreed + 2 * (b == 0 && (a == 0 || e == EPERM)));
}

static volatile int child_holder_stop;

static void *hold_until_stopped(void *arg) {
    (void)arg;
    while (!child_holder_stop) msleep(1);
    return NULL;
}

/* In the child: 20 rounds of a thread changing the egid and back, while `holders` other
 * threads live, counted and printed; then the child exits. */
static _Noreturn void child_sets_ids(int holders) {
    gid_t egid = getegid();
    int agreed = 0, same = 0;
    for (int i = 0; i < 20; i++) {
        pthread_t holder[3], t;
        void *r;
        child_holder_stop = 0;
        for (int h = 0; h < holders; h++) pthread_create(&holder[h], NULL, hold_until_stopped, NULL);
        child_set_done = 0;
        pthread_create(&t, NULL, set_egid_and_look, &egid);
        while (!child_set_done) {}
        pthread_join(t, &r);
        child_holder_stop = 1;
        for (int h = 0; h < holders; h++) pthread_join(holder[h], NULL);
        agreed += (long)r & 1;
        same += ((long)r & 2) != 0;
    }
    printf("child: changes as natively %d of 20, every task agreed %d of 20\n", same, agreed);
    fflush(stdout);
    _exit(0);
}

static void wait_for_child(pid_t child) {
    int status;
    waitpid(child, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void *fork_and_set_ids(void *arg) {
    (void)arg;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        child_sets_ids(0);
    wait_for_child(child);
    return NULL;
}

CASE(ids_setxid_in_child_forked_by_thread) {
    pthread_t t;
    pthread_create(&t, NULL, fork_and_set_ids, NULL);
    pthread_join(t, NULL);
}

/* The same when the forking thread, detached, exits in the child while others live:
 * greenified, its TCB is the child's first OS thread's descriptor, which must keep
 * taking the changes: handed to a new thread from greenify's pool, it was marked as a
 * green thread's, and glibc skipped that OS thread (its credentials stayed). */
static void *set_ids_after_forker_exits(void *arg) {
    (void)arg;
    msleep(20); /* the forking thread has exited */
    child_sets_ids(3);
    return NULL;
}

static void *fork_then_exit_in_child(void *arg) {
    (void)arg;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        pthread_t rest;
        pthread_detach(pthread_self());
        pthread_create(&rest, NULL, set_ids_after_forker_exits, NULL);
        pthread_exit(NULL);
    }
    wait_for_child(child);
    return NULL;
}

CASE(ids_setxid_in_child_after_its_detached_forking_thread_exits) {
    pthread_t t;
    pthread_create(&t, NULL, fork_then_exit_in_child, NULL);
    pthread_join(t, NULL);
}

/* pthread_setaffinity_np on a thread's own handle, while another thread computes: it
 * acts on the OS thread that runs the caller (greenify's os_thread_tcb named the first
 * OS thread's descriptor on every worker: a thread on the second changed the first's). */
static void *own_affinity(void *arg) {
    (void)arg;
    cpu_set_t all, one, now;
    pthread_getaffinity_np(pthread_self(), sizeof all, &all);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &all)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    sched_getaffinity(0, sizeof now, &now);
    pthread_setaffinity_np(pthread_self(), sizeof all, &all);
    return (void *)(long)(rc == 0 && CPU_EQUAL(&now, &one));
}

CASE(ids_setaffinity_of_own_handle_acts_on_its_os_thread) {
    pthread_t spinner;
    id_spin_stop = 0;
    pthread_create(&spinner, NULL, id_spin, NULL);
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_t t;
        void *r;
        pthread_create(&t, NULL, own_affinity, NULL);
        pthread_join(t, &r);
        ok += (long)r;
    }
    id_spin_stop = 1;
    pthread_join(spinner, NULL);
    printf("the caller's own OS thread took it: %d of 8\n", ok);
}
