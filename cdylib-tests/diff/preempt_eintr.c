/* Calls that wait in the kernel, which no SIGURG may end early unless a handler of the
 * program's runs: greenified, SIGURG is the preemption signal, and its handler (greenify's)
 * ends a wait the kernel never restarts (sleeps, signal waits, SysV IPC, the epoll and poll
 * family, io_getevents) with EINTR. Natively a SIGURG the program ignores (its default) does
 * nothing at all. Greenify's own signal can come only while the program computes; a SIGURG
 * the program ignores comes here from a child process, at a known time; the waits are
 * made through syscall(), which sends every one of these numbers to the kernel as is.
 * Each wait prints its result and whether it lasted its timeout (not early, not twice). */
#include "case.h"
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void *pe_nothing(void *arg) { return arg; }

/* Greenified, the first thread starts the monitor and installs greenify's SIGURG handler. */
static void pe_first_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, pe_nothing, NULL);
    pthread_join(t, NULL);
}

/* A child that sends this process SIGURG after `first` and `second` ms, then runs `then`. */
static pid_t pe_sigurg_at(long first, long second, void (*then)(long), long arg) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        msleep(first);
        kill(parent, SIGURG);
        msleep(second - first);
        kill(parent, SIGURG);
        if (then) then(arg);
        _exit(0);
    }
    return pid;
}

static void pe_reap(pid_t pid) {
    int status = -1;
    waitpid(pid, &status, 0);
    printf("child exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static struct timespec pe_ms(long ms) {
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    return t;
}

/* Each wait below times out after 300 ms; the SIGURGs come at 100 and 200 ms (a wait that
 * started again with its whole timeout would last 500 ms: "late"). */
#define PE_TIMEOUT 300

static int pe_sem(int value) {
    int id = semget(IPC_PRIVATE, 1, 0600);
    semctl(id, 0, SETVAL, value);
    return id;
}

CASE(preempt_eintr_ignored_sigurg_semtimedop_syscall) {
    pe_first_thread();
    int id = pe_sem(0);
    struct sembuf op = { 0, -1, 0 };
    struct timespec timeout = pe_ms(PE_TIMEOUT);
    pid_t child = pe_sigurg_at(100, 200, NULL, 0);
    double t0 = now_ms();
    SHOW("semtimedop", syscall(SYS_semtimedop, id, &op, 1, &timeout));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
    semctl(id, 0, IPC_RMID);
}

static void pe_post(long id) {
    struct sembuf op = { 0, 1, 0 };
    semop((int)id, &op, 1);
}

CASE(preempt_eintr_ignored_sigurg_semop_syscall) {
    pe_first_thread();
    int id = pe_sem(0);
    struct sembuf op = { 0, -1, 0 };
    pid_t child = pe_sigurg_at(100, 200, pe_post, id);
    SHOW("semop", syscall(SYS_semop, id, &op, 1));
    printf("value after: %d\n", semctl(id, 0, GETVAL));
    pe_reap(child);
    semctl(id, 0, IPC_RMID);
}

struct pe_msg {
    long type;
    char text[8];
};

static void pe_send(long id) {
    struct pe_msg m = { 1, "hello" };
    msgsnd((int)id, &m, sizeof m.text, 0);
}

CASE(preempt_eintr_ignored_sigurg_msgrcv_syscall) {
    pe_first_thread();
    int id = msgget(IPC_PRIVATE, 0600);
    struct pe_msg m = { 0, "" };
    pid_t child = pe_sigurg_at(100, 200, pe_send, id);
    SHOW("msgrcv", syscall(SYS_msgrcv, id, &m, sizeof m.text, 0L, 0));
    printf("message: %ld %s\n", m.type, m.text);
    pe_reap(child);
    msgctl(id, IPC_RMID, NULL);
}

CASE(preempt_eintr_ignored_sigurg_sigtimedwait_syscall) {
    pe_first_thread();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct timespec timeout = pe_ms(PE_TIMEOUT);
    pid_t child = pe_sigurg_at(100, 200, NULL, 0);
    double t0 = now_ms();
    SHOW("rt_sigtimedwait", syscall(SYS_rt_sigtimedwait, &set, NULL, &timeout, 8));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
}

CASE(preempt_eintr_ignored_sigurg_io_getevents_syscall) {
    pe_first_thread();
    aio_context_t ctx = 0;
    SHOW("io_setup", syscall(SYS_io_setup, 1, &ctx));
    struct io_event ev;
    struct timespec timeout = pe_ms(PE_TIMEOUT);
    pid_t child = pe_sigurg_at(100, 200, NULL, 0);
    double t0 = now_ms();
    SHOW("io_getevents", syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, &timeout));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
    syscall(SYS_io_destroy, ctx);
}

CASE(preempt_eintr_ignored_sigurg_epoll_pwait2_syscall) {
    pe_first_thread();
    int p[2];
    (void)!pipe(p);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct timespec timeout = pe_ms(PE_TIMEOUT);
    pid_t child = pe_sigurg_at(100, 200, NULL, 0);
    double t0 = now_ms();
    SHOW("epoll_pwait2", syscall(SYS_epoll_pwait2, ep, &ev, 1, &timeout, NULL, 8));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
}

/* The hooked calls that wait: a green thread parks, and greenify's SIGURG must not end it. */
CASE(preempt_eintr_ignored_sigurg_hooked_waits) {
    pe_first_thread();
    struct timespec timeout = pe_ms(PE_TIMEOUT), rem;
    pid_t child = pe_sigurg_at(100, 200, NULL, 0);
    double t0 = now_ms();
    SHOW("nanosleep", nanosleep(&timeout, &rem));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);

    int id = pe_sem(0);
    struct sembuf op = { 0, -1, 0 };
    child = pe_sigurg_at(100, 200, NULL, 0);
    t0 = now_ms();
    SHOW("semtimedop", semtimedop(id, &op, 1, &timeout));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
    semctl(id, 0, IPC_RMID);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    child = pe_sigurg_at(100, 200, NULL, 0);
    t0 = now_ms();
    SHOW("sigtimedwait", sigtimedwait(&set, NULL, &timeout));
    printf("lasted its timeout: %s\n", timing(now_ms() - t0, PE_TIMEOUT));
    pe_reap(child);
}

/* The program's own SIGURG handler ends those waits with EINTR, as natively. */
static volatile int pe_urgs;
static void pe_on_urg(int sig) {
    (void)sig;
    pe_urgs++;
}

CASE(preempt_eintr_program_sigurg_handler_interrupts) {
    pe_first_thread();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pe_on_urg;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGURG, &sa, NULL);
    int id = pe_sem(0);
    struct sembuf op = { 0, -1, 0 };
    struct timespec timeout = pe_ms(2000);
    pid_t child = pe_sigurg_at(100, 1500, NULL, 0);
    double t0 = now_ms();
    SHOW("semtimedop", syscall(SYS_semtimedop, id, &op, 1, &timeout));
    printf("interrupted before its timeout: %d, handled %d\n", now_ms() - t0 < 1000, pe_urgs);
    pe_reap(child);
    printf("handled %d\n", pe_urgs);
    semctl(id, 0, IPC_RMID);
    signal(SIGURG, SIG_DFL);
}

/* Greenify's own preemption signal comes when a thread has computed for a time slice (10
 * ms; GREENIFY_SLICE_MS sets it, and this case reads it too, so that a run with a short
 * slice races often): main computes a little longer than a slice, then waits in the kernel
 * for 2 ms, many times. The monitor may decide to signal just before the wait begins. */
static long pe_slice_ms(void) {
    const char *s = getenv("GREENIFY_SLICE_MS");
    long ms = s ? atol(s) : 0;
    return ms > 0 ? ms : 10;
}

static void pe_compute_ms(double ms) {
    double end = now_ms() + ms;
    while (now_ms() < end) {
    }
}

#define PE_ROUNDS 40

/* Counts the rounds whose wait did not end as `expected` (a result, or -1 and an errno). */
static void pe_rounds(const char *what, long (*wait)(void), long expected, int expected_errno) {
    pe_first_thread();
    long slice = pe_slice_ms();
    int wrong = 0, first_errno = 0;
    for (int i = 0; i < PE_ROUNDS; i++) {
        pe_compute_ms(slice + 0.5 + (i % 4) * 0.3);
        errno = 0;
        long r = wait();
        if (r != expected || (r == -1 && errno != expected_errno)) {
            if (!wrong) first_errno = errno;
            wrong++;
        }
    }
    printf("%s: %d of %d rounds ended otherwise (first errno %s)\n", what, wrong, PE_ROUNDS,
           en(first_errno));
}

static int pe_round_sem = -1;
static long pe_semtimedop_2ms(void) {
    struct sembuf op = { 0, -1, 0 };
    struct timespec t = pe_ms(2);
    return syscall(SYS_semtimedop, pe_round_sem, &op, 1, &t);
}

CASE(preempt_eintr_computing_then_semtimedop_syscall) {
    pe_round_sem = pe_sem(0);
    pe_rounds("semtimedop", pe_semtimedop_2ms, -1, EAGAIN);
    semctl(pe_round_sem, 0, IPC_RMID);
}

static long pe_sigtimedwait_2ms(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec t = pe_ms(2);
    return syscall(SYS_rt_sigtimedwait, &set, NULL, &t, 8);
}

CASE(preempt_eintr_computing_then_sigtimedwait_syscall) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pe_rounds("rt_sigtimedwait", pe_sigtimedwait_2ms, -1, EAGAIN);
}

/* semtimedop with a zero timeout: greenify passes it to the kernel, which still sleeps for
 * the thread's timer slack (2 ms here). */
static long pe_semtimedop_zero(void) {
    struct sembuf op = { 0, -1, 0 };
    struct timespec t = { 0, 0 };
    return semtimedop(pe_round_sem, &op, 1, &t);
}

CASE(preempt_eintr_computing_then_zero_timeout_semtimedop) {
    prctl(PR_SET_TIMERSLACK, 2000000L);
    pe_round_sem = pe_sem(0);
    pe_rounds("semtimedop zero timeout", pe_semtimedop_zero, -1, EAGAIN);
    semctl(pe_round_sem, 0, IPC_RMID);
}

/* Calls greenify passes to the kernel as they are: those of a fork child's atfork handlers
 * (its runtime is reset only once fork returns). The parent sends the child SIGURG every 40
 * ms; the child has greenify's handler (inherited), and ignores SIGURG itself. */
#include <poll.h>
#include <sys/select.h>
#include <sys/time.h>

#define PE_WAIT 150

static void pe_lasted(const char *what, long r, int e, double t0) {
    printf("%s: ret=%ld errno=%s, lasted its timeout: %s\n", what, r, r == -1 ? en(e) : "0",
           timing(now_ms() - t0, PE_WAIT));
}

#define PE_WAITS(what, expr)                                                         \
    do {                                                                             \
        double t0_ = now_ms();                                                       \
        errno = 0;                                                                   \
        long r_ = (long)(expr);                                                      \
        pe_lasted(what, r_, errno, t0_);                                             \
    } while (0)

static volatile int pe_alarms;
static void pe_on_alarm(int sig) {
    (void)sig;
    pe_alarms++;
}

static void pe_forwarded_waits(void) {
    struct timespec ts = pe_ms(PE_WAIT), rem;
    PE_WAITS("nanosleep", nanosleep(&ts, &rem));
    PE_WAITS("clock_nanosleep", -clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &rem));
    PE_WAITS("usleep", usleep(PE_WAIT * 1000));
    PE_WAITS("poll", poll(NULL, 0, PE_WAIT));
    PE_WAITS("ppoll", ppoll(NULL, 0, &ts, NULL));
    struct timeval tv = { 0, PE_WAIT * 1000 };
    PE_WAITS("select", select(0, NULL, NULL, NULL, &tv));
    PE_WAITS("pselect", pselect(0, NULL, NULL, NULL, &ts, NULL));
    /* The system call writes the time left into its timeout: none, at the end. */
    struct timespec ts_left = ts;
    PE_WAITS("ppoll system call", syscall(SYS_ppoll, NULL, 0L, &ts_left, NULL, 8L));
    printf("time left: %ld.%09ld\n", (long)ts_left.tv_sec, ts_left.tv_nsec);
    int ep = epoll_create1(0);
    struct epoll_event ev;
    PE_WAITS("epoll_wait", epoll_wait(ep, &ev, 1, PE_WAIT));
    PE_WAITS("epoll_pwait", epoll_pwait(ep, &ev, 1, PE_WAIT, NULL));
    PE_WAITS("epoll_pwait2", epoll_pwait2(ep, &ev, 1, &ts, NULL));
    close(ep);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    PE_WAITS("sigtimedwait", sigtimedwait(&set, NULL, &ts));
    int id = pe_sem(0);
    struct sembuf op = { 0, -1, 0 };
    PE_WAITS("semtimedop", semtimedop(id, &op, 1, &ts));
    semctl(id, 0, IPC_RMID);
    /* Waits that only a handler (or the signal waited for) ends: a timer's, after 150 ms. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pe_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval alarm_in = { { 0, 0 }, { 0, PE_WAIT * 1000 } };
    setitimer(ITIMER_REAL, &alarm_in, NULL);
    PE_WAITS("pause", pause());
    setitimer(ITIMER_REAL, &alarm_in, NULL);
    sigset_t none;
    sigemptyset(&none);
    PE_WAITS("sigsuspend", sigsuspend(&none));
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
    timer_t timer;
    timer_create(CLOCK_MONOTONIC, &sev, &timer);
    struct itimerspec in = { { 0, 0 }, ts };
    timer_settime(timer, 0, &in, NULL);
    PE_WAITS("sigwaitinfo", sigwaitinfo(&set, NULL));
    timer_delete(timer);
    printf("alarms handled: %d\n", pe_alarms);
    double t0 = now_ms();
    errno = EBADF;
    unsigned left = sleep(1);
    int e = errno;
    printf("sleep: %u left, lasted a second: %d, errno %s\n", left, now_ms() - t0 >= 999, en(e));
}

static int pe_in_child;
static void pe_atfork_child(void) {
    if (pe_in_child) pe_forwarded_waits();
}

CASE(preempt_eintr_ignored_sigurg_forwarded_waits) {
    pe_first_thread();
    pthread_atfork(NULL, NULL, pe_atfork_child);
    pe_in_child = 1;
    pid_t child = fork();
    if (child == 0) _exit(0);
    pe_in_child = 0;
    int status = -1;
    while (waitpid(child, &status, WNOHANG) == 0) {
        kill(child, SIGURG);
        msleep(40);
    }
    printf("child exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
