/* The differential catalogue's harness: every file in cdylib-tests/diff/ includes this and
 * defines cases with CASE(name) { ... }. The program runs one case per process:
 *   ./prog --list      prints the case names, one per line
 *   ./prog NAME        runs case NAME, printing its observations, then "end"
 * Each case is run natively and greenified (cdylib-tests/tests/differential.rs) and
 * everything observable must be the same: stdout, exit status, terminating signal.
 * So print only what is deterministic: return values, errno names, data, and timing
 * classes (never raw times, addresses, pids or ports). */
#ifndef GREENIFY_DIFF_CASE_H
#define GREENIFY_DIFF_CASE_H
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

typedef void (*case_fn)(void);
static struct { const char *name; case_fn fn; } diff_cases[512];
static int diff_ncases;

static void diff_register(const char *name, case_fn fn) {
    if (diff_ncases == 512) { fprintf(stderr, "too many cases\n"); exit(99); }
    diff_cases[diff_ncases].name = name;
    diff_cases[diff_ncases].fn = fn;
    diff_ncases++;
}

#define CASE(name)                                                                   \
    static void case_##name(void);                                                   \
    __attribute__((constructor)) static void register_##name(void) {                 \
        diff_register(#name, case_##name);                                           \
    }                                                                                \
    static void case_##name(void)

/* A hung case dies by SIGKILL after `seconds`, well before the harness's timeout: a POSIX
 * timer armed before any case runs (fork does not inherit it, exec does not keep it). At
 * most once per file. */
#define KILL_IF_HUNG_AFTER(seconds)                                                  \
    __attribute__((constructor)) static void kill_if_hung(void) {                    \
        timer_t t;                                                                   \
        struct sigevent ev = { 0 };                                                  \
        ev.sigev_notify = SIGEV_SIGNAL;                                              \
        ev.sigev_signo = SIGKILL;                                                    \
        if (timer_create(CLOCK_MONOTONIC, &ev, &t) == 0) {                           \
            struct itimerspec its = { { 0, 0 }, { (seconds), 0 } };                  \
            timer_settime(t, 0, &its, NULL);                                         \
        }                                                                            \
    }

/* errno's name, or "0". */
static inline const char *en(int e) { return e ? strerrorname_np(e) : "0"; }

/* Prints "what: ret=R errno=E" for a libc-style result (errno only shown when R == -1). */
#define SHOW(what, expr)                                                             \
    do {                                                                             \
        errno = 0;                                                                   \
        long show_r_ = (long)(expr);                                                 \
        int show_e_ = errno;                                                         \
        printf("%s: ret=%ld errno=%s\n", what, show_r_, show_r_ == -1 ? en(show_e_) : "0"); \
    } while (0)

/* Prints "what: R" for a pthread-style result (an error number, 0 on success). */
#define SHOWRC(what, expr)                                                           \
    do {                                                                             \
        int show_rc_ = (expr);                                                       \
        printf("%s: %s\n", what, en(show_rc_));                                      \
    } while (0)

static inline double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* How long the OS threads of this case waited for a CPU while runnable (the kernel's
 * run-queue wait, schedstat's second field): on a loaded machine that is where a case's
 * time goes, and no fault of the code under test. Each OS thread's counter (it only grows)
 * is kept by its tid, so a thread read twice, or green threads sharing an OS thread, count
 * once. A case is one short process, so its threads' whole counters are the wait within
 * it; on an idle machine they stay near 0. A thread that acts for the case and may have
 * exited before the case looks (an `after` thread, a timer's thread) notes its own first. */
#define STALL_SLOTS 64
static _Atomic long stall_tid[STALL_SLOTS], stall_ns[STALL_SLOTS];

/* Notes the run-queue wait of OS thread `tid` read from its schedstat file `path`. */
static inline void note_stall_of(long tid, const char *path) {
    char buf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long long run, wait;
    if (got <= 0 || (buf[got] = 0, sscanf(buf, "%llu %llu", &run, &wait) != 2)) return;
    long ns = (long)wait;
    for (int i = 0; i < STALL_SLOTS; i++) {
        long expected = 0;
        if (stall_tid[i] != tid &&
            !__atomic_compare_exchange_n(&stall_tid[i], &expected, tid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
            expected != tid)
            continue;
        long old = stall_ns[i];
        while (old < ns && !__atomic_compare_exchange_n(&stall_ns[i], &old, ns, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
        return;
    }
}

/* Notes the calling OS thread's run-queue wait so far. */
static inline void note_stall(void) {
    int saved = errno;
    char link[64];
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    const char *slash = n > 0 ? (link[n] = 0, strrchr(link, '/')) : NULL;
    if (slash) note_stall_of(atol(slash + 1), "/proc/thread-self/schedstat");
    errno = saved;
}

/* The run-queue wait of the case's OS threads (the live ones, and those noted before they
 * exited), in ms. */
static inline double stall_ms(void) {
    int saved = errno;
    note_stall();
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[64];
        long tid = atol(e->d_name);
        if (tid <= 0) continue;
        snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
        note_stall_of(tid, path);
    }
    if (d) closedir(d);
    errno = saved;
    long sum = 0;
    for (int i = 0; i < STALL_SLOTS; i++) sum += stall_ns[i];
    return sum / 1e6;
}

/* "early" if elapsed is below expected - early_ms; "late" if beyond expected + 150 ms
 * more than the case's threads waited for a CPU; else "ok". (Only "late" takes the wait
 * off: another thread's wait while the caller slept must not make it "early".) */
static inline const char *timing_within(double elapsed_ms, double expected_ms, double early_ms) {
    if (elapsed_ms < expected_ms - early_ms) return "early";
    if (elapsed_ms > expected_ms + 150 && elapsed_ms - stall_ms() > expected_ms + 150) return "late";
    return "ok";
}

/* "ok" if elapsed is within [expected - 1, expected + 150] ms (plus the run-queue wait),
 * else "early"/"late". */
static inline const char *timing(double elapsed_ms, double expected_ms) {
    return timing_within(elapsed_ms, expected_ms, 1);
}

/* The kernel counts SO_RCVTIMEO and SO_SNDTIMEO in jiffies (1-10 ms): the wait starts
 * mid-jiffy, so natively it may end up to one jiffy before the time asked. */
static inline const char *timing_timeo(double elapsed_ms, double expected_ms) {
    return timing_within(elapsed_ms, expected_ms, 10);
}

/* Installs handler `fn` for `sig` with sa_flags `flags` and an empty sa_mask. */
static inline void set_handler(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

/* The same for a three-argument handler (SA_SIGINFO added to `flags`). */
static inline void set_info_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = flags | SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

static inline void msleep(long ms) {
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

/* Arms a one-shot timer that sends `sig` to thread `tid` (SIGEV_THREAD_ID) in `ns`
 * nanoseconds (under a second); timer_create's result. */
static inline int signal_thread_in(pid_t tid, int sig, long ns, timer_t *timer) {
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = sig;
    ev._sigev_un._tid = tid;
    int r = timer_create(CLOCK_MONOTONIC, &ev, timer);
    struct itimerspec in_ns = { { 0, 0 }, { 0, ns } };
    if (r == 0) timer_settime(*timer, 0, &in_ns, NULL);
    return r;
}

/* signal_thread_in 2 ms, showing timer_create's result, and sleeps 20 ms for it to come. */
static inline timer_t signal_thread_in_2ms(pid_t tid, int sig) {
    timer_t timer;
    SHOW("timer_create", signal_thread_in(tid, sig, 2000000, &timer));
    msleep(20);
    return timer;
}

/* A select made with the system call instruction itself: no hook sees it, and the OS
 * thread it runs on waits in the kernel for `us` microseconds (no preemption signal may
 * interrupt it: select fails with EINTR after a handler ran, whatever SA_RESTART says). */
static inline long raw_select_us(long us) {
    struct timeval tv = { us / 1000000, us % 1000000 };
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = (long)&tv;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(23L /* SYS_select */), "D"(0L), "S"(0L), "d"(0L), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

/* Values the compiler cannot see through, so deliberate misuse does not warn. */
static inline void *opaque_ptr(uintptr_t v) {
    volatile uintptr_t x = v;
    return (void *)x;
}
static inline long opaque(long v) {
    volatile long x = v;
    return x;
}
#define BADPTR opaque_ptr(1)
#define NULLPTR opaque_ptr(0)

/* Runs fn(fd) on a new thread after ms milliseconds. */
struct after {
    long ms;
    void (*fn)(int);
    int fd;
    pthread_t t;
};

static inline void *after_main(void *p) {
    struct after *a = p;
    msleep(a->ms);
    /* Its wait for a CPU delays what it does next, which the case may be timing. */
    note_stall();
    a->fn(a->fd);
    return NULL;
}

static inline struct after *after(long ms, void (*fn)(int), int fd) {
    struct after *a = malloc(sizeof *a);
    a->ms = ms;
    a->fn = fn;
    a->fd = fd;
    pthread_create(&a->t, NULL, after_main, a);
    return a;
}

static inline void after_join(struct after *a) {
    pthread_join(a->t, NULL);
    free(a);
}

static inline void write_x(int fd) { (void)!write(fd, "x", 1); }
static inline void close_fd(int fd) { close(fd); }

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (int i = 0; i < diff_ncases; i++) puts(diff_cases[i].name);
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: %s --list | CASE\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < diff_ncases; i++) {
        if (!strcmp(diff_cases[i].name, argv[1])) {
            diff_cases[i].fn();
            printf("end\n");
            return 0;
        }
    }
    fprintf(stderr, "no case %s\n", argv[1]);
    return 2;
}
/* One page that may not be touched (for EFAULT cases). */
static inline void *noaccess(void) {
    static void *p;
    if (!p) p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p;
}

/* An fd number that was open a moment ago and is closed now. */
static inline int closed_fd(void) {
    int fd = dup(1);
    close(fd);
    return fd;
}

/* BOTH(name, { body }) runs the body in main, then again on a new thread: greenified,
 * the main thread and a green thread may take different paths. */
#define BOTH(name, ...)                                                              \
    static void body_##name(void) __VA_ARGS__                                        \
    static void *thread_##name(void *a) { body_##name(); return a; }                \
    CASE(name) {                                                                     \
        printf("-- main\n");                                                         \
        body_##name();                                                               \
        printf("-- thread\n");                                                       \
        pthread_t t_;                                                                \
        pthread_create(&t_, NULL, thread_##name, NULL);                              \
        pthread_join(t_, NULL);                                                      \
    }

/* The calling thread's OS thread id, from the system call instruction itself (greenified,
 * gettid and syscall(SYS_gettid) name the green thread, not the OS thread that runs it). */
static inline long os_thread_id(void) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_gettid) : "rcx", "r11", "memory");
    return r;
}

/* Sleeps ms milliseconds in a call no hook sees (the system call instruction itself): the
 * OS thread blocks, as in a library's own futex wait; greenified, a spare stands in for
 * its worker. */
static inline void nanosleep_unhooked(long ms) {
    struct timespec ts = { 0, ms * 1000000L };
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
                     : "rcx", "r11", "memory");
    (void)ret;
}

/* Two threads that spin (no call that waits) until each has seen the other on another OS
 * thread than its own, or for bound_ms: natively at once; greenified, only when more than
 * one worker runs green threads (with one, never: then after bound_ms). */
struct spin_pair {
    _Atomic long tid[2];
    _Atomic int apart;
    double bound_ms;
};

static inline void spin_in_pair(struct spin_pair *p, int i) {
    double end = now_ms() + p->bound_ms;
    while (!p->apart && now_ms() < end) {
        long me = os_thread_id();
        p->tid[i] = me;
        long other = p->tid[1 - i];
        if (other && other != me) p->apart = 1;
    }
}

struct pair_member { struct spin_pair *pair; int i; };

static inline void *pair_member(void *arg) {
    struct pair_member *m = arg;
    spin_in_pair(m->pair, m->i);
    return NULL;
}

/* Runs a spinning pair to its end; whether its threads ran on two OS threads. */
static inline int pair_ran_apart(double bound_ms, void *(*member)(void *)) {
    struct spin_pair p = { .bound_ms = bound_ms };
    struct pair_member m[2] = { { &p, 0 }, { &p, 1 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, member, &m[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    return p.apart;
}

#endif
