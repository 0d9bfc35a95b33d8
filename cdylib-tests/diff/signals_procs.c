/* Signals and processes as a native program sees them: blocking calls interrupted by
 * handlers with and without SA_RESTART, signals from timers, other threads and other
 * processes, per-thread masks, synchronous waits for signals, default deaths; fork, vfork,
 * posix_spawn, exec, system, popen, the wait family, children without greenify sharing
 * pipes and sockets, name resolution on loopback, file locks between processes. */
#include "case.h"
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* No case comes near this natively; a forked child arms its own (kill_if_hung()). */
KILL_IF_HUNG_AFTER(10);

static volatile sig_atomic_t hits, last_sig;
static pthread_t handler_thread;
static void on_sig(int s) {
    hits++;
    last_sig = s;
    handler_thread = pthread_self();
}

static void install(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    hits = 0;
}

/* SIGALRM once, after ms milliseconds. */
static void arm_ms(long ms) {
    struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* SIGALRM every `ms` until arm_ms(0): a wait that must be interrupted is, even when a
 * loaded machine delays the caller past the first one (which then lands before the wait). */
static void arm_every_ms(long ms) {
    struct itimerval it = { { ms / 1000, (ms % 1000) * 1000 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Creates a thread with `sig` blocked in it (so a process-directed `sig` goes elsewhere). */
static pthread_t spawn_blocking(void *(*fn)(void *), void *arg, int sig) {
    sigset_t s, old;
    sigemptyset(&s);
    if (sig) sigaddset(&s, sig);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg)) { printf("pthread_create failed\n"); exit(1); }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return t;
}

static long join_long(pthread_t t) {
    void *v = NULL;
    pthread_join(t, &v);
    return (long)v;
}

static void show_status(const char *what, int st) {
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
    else printf("%s: other status\n", what);
}

static void reap(pid_t pid, const char *what) {
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR) {}
    if (r != pid) { printf("%s: waitpid %s\n", what, en(errno)); return; }
    show_status(what, st);
}

struct delayed_write { int fd; long ms; const char *data; };
static void *write_later(void *arg) {
    struct delayed_write *d = arg;
    msleep(d->ms);
    write(d->fd, d->data, strlen(d->data));
    return NULL;
}

/* A ticker thread: counts 5 ms sleeps until stopped. */
static volatile int tick_stop;
static volatile long ticks;
static void *ticker(void *arg) {
    (void)arg;
    while (!tick_stop) {
        msleep(5);
        ticks++;
    }
    return NULL;
}
static pthread_t start_ticker(void) {
    tick_stop = 0;
    ticks = 0;
    return spawn_blocking(ticker, NULL, SIGALRM);
}
static long stop_ticker(pthread_t t) {
    tick_stop = 1;
    join_long(t);
    return ticks;
}

/* ---------------------------------------------------------------- interrupted calls */

CASE(read_pipe_eintr_without_sa_restart) {
    int p[2];
    pipe(p);
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    char b[8];
    SHOW("read", read(p[0], b, sizeof b));
    printf("handler ran %d time(s), after %s\n", (int)hits, timing(now_ms() - t0, 50));
    close(p[0]);
    close(p[1]);
}

CASE(read_pipe_restarted_with_sa_restart) {
    int p[2];
    pipe(p);
    install(SIGALRM, SA_RESTART);
    struct delayed_write d = { p[1], 150, "abc" };
    double t0 = now_ms();
    pthread_t t = spawn_blocking(write_later, &d, SIGALRM);
    arm_ms(50);
    char b[8] = { 0 };
    SHOW("read", read(p[0], b, sizeof b));
    printf("data '%s', handler ran %d time(s), returned after %s\n", b, (int)hits,
           timing(now_ms() - t0, 150));
    join_long(t);
    close(p[0]);
    close(p[1]);
}

CASE(read_pipe_eintr_by_alarm) {
    int p[2];
    pipe(p);
    install(SIGALRM, 0);
    double t0 = now_ms();
    alarm(1);
    char b[8];
    SHOW("read", read(p[0], b, sizeof b));
    printf("handler ran %d time(s), after %s\n", (int)hits, timing(now_ms() - t0, 1000));
}

CASE(write_full_pipe_eintr) {
    int p[2];
    pipe(p);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    long total = 0;
    ssize_t n;
    while ((n = write(p[1], buf, sizeof buf)) > 0) total += n;
    while ((n = write(p[1], buf, 1)) > 0) total += n;
    printf("pipe filled: %ld bytes\n", total);
    fcntl(p[1], F_SETFL, 0);
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    SHOW("blocking write to full pipe", write(p[1], buf, 1));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    close(p[0]);
    close(p[1]);
}

CASE(nanosleep_eintr_with_remaining) {
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    struct timespec req = { 0, 500 * 1000000L }, rem = { 0, 0 };
    SHOW("nanosleep 500ms", nanosleep(&req, &rem));
    double rem_ms = rem.tv_sec * 1e3 + rem.tv_nsec / 1e6;
    printf("after %s, remaining in [300,451] ms: %d\n", timing(now_ms() - t0, 50),
           rem_ms >= 300 && rem_ms <= 451);
}

CASE(nanosleep_not_restarted_by_sa_restart) {
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_every_ms(50);
    struct timespec req = { 0, 400 * 1000000L }, rem = { 0, 0 };
    SHOW("nanosleep 400ms", nanosleep(&req, &rem));
    double elapsed = now_ms() - t0;
    arm_ms(0);
    printf("after %s, handler ran: %d, rem>0: %d\n", elapsed < 250 ? "ok" : "late", hits > 0,
           rem.tv_nsec > 0 || rem.tv_sec > 0);
}

CASE(clock_nanosleep_eintr_return_value) {
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_ms(50);
    struct timespec req = { 0, 400 * 1000000L }, rem = { 0, 0 };
    int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    printf("relative: %s after %s rem>0=%d\n", en(r), timing(now_ms() - t0, 50), rem.tv_nsec > 0 || rem.tv_sec > 0);
    t0 = now_ms();
    arm_ms(50);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 1;
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    printf("absolute: %s after %s\n", en(r), timing(now_ms() - t0, 50));
}

CASE(sleep_returns_unslept_seconds) {
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_ms(50);
    unsigned left = sleep(3);
    printf("sleep(3) returned %u after %s\n", left, timing(now_ms() - t0, 50));
    arm_ms(50);
    errno = 0;
    int r = usleep(600000);
    printf("usleep(600000): %d %s\n", r, r ? en(errno) : "0");
}

static void wait_call_eintr(const char *which) {
    int p[2];
    pipe(p);
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_ms(50);
    if (!strcmp(which, "poll")) {
        struct pollfd pf = { p[0], POLLIN, 0 };
        SHOW("poll 1000ms", poll(&pf, 1, 1000));
    } else if (!strcmp(which, "select")) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(p[0], &r);
        struct timeval tv = { 1, 0 };
        SHOW("select 1s", select(p[0] + 1, &r, NULL, NULL, &tv));
    } else if (!strcmp(which, "epoll")) {
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] }, out;
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
        SHOW("epoll_wait 1000ms", epoll_wait(ep, &out, 1, 1000));
        close(ep);
    } else if (!strcmp(which, "ppoll")) {
        struct pollfd pf = { p[0], POLLIN, 0 };
        struct timespec ts = { 1, 0 };
        SHOW("ppoll 1s", ppoll(&pf, 1, &ts, NULL));
    }
    printf("even with SA_RESTART, after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    close(p[0]);
    close(p[1]);
}

CASE(poll_eintr_regardless_of_sa_restart) { wait_call_eintr("poll"); }
CASE(select_eintr_regardless_of_sa_restart) { wait_call_eintr("select"); }
CASE(epoll_wait_eintr_regardless_of_sa_restart) { wait_call_eintr("epoll"); }
CASE(ppoll_eintr_regardless_of_sa_restart) { wait_call_eintr("ppoll"); }

static sem_t sem;
static void *post_later(void *arg) {
    msleep((long)arg);
    sem_post(&sem);
    return NULL;
}

CASE(sem_wait_eintr_without_sa_restart) {
    sem_init(&sem, 0, 0);
    install(SIGALRM, 0);
    double t0 = now_ms();
    pthread_t t = spawn_blocking(post_later, (void *)150L, SIGALRM);
    arm_ms(50);
    SHOW("sem_wait", sem_wait(&sem));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    join_long(t);
    SHOW("sem_wait (posted meanwhile)", sem_wait(&sem));
}

CASE(sem_timedwait_eintr) {
    sem_init(&sem, 0, 0);
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    struct timespec d;
    clock_gettime(CLOCK_REALTIME, &d);
    d.tv_sec += 1;
    SHOW("sem_timedwait 1s", sem_timedwait(&sem, &d));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
}

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int flag;
static void *signal_cond_later(void *arg) {
    msleep((long)arg);
    pthread_mutex_lock(&cm);
    flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(cond_wait_not_interrupted_by_signal) {
    install(SIGALRM, 0);
    flag = 0;
    double t0 = now_ms();
    pthread_t t = spawn_blocking(signal_cond_later, (void *)150L, SIGALRM);
    arm_ms(50);
    pthread_mutex_lock(&cm);
    int r = 0;
    while (!flag && !r) r = pthread_cond_wait(&cv, &cm);
    printf("cond_wait: %s flag=%d after %s, handler ran %d\n", en(r), flag, timing(now_ms() - t0, 150),
           (int)hits);
    pthread_mutex_unlock(&cm);
    join_long(t);
}

static void *hold_cm(void *arg) {
    pthread_mutex_lock(&cm);
    flag = 1;
    msleep((long)arg);
    pthread_mutex_unlock(&cm);
    return NULL;
}

CASE(mutex_lock_not_interrupted_by_signal) {
    install(SIGALRM, 0);
    flag = 0;
    double t0 = now_ms();
    pthread_t t = spawn_blocking(hold_cm, (void *)150L, SIGALRM);
    while (!flag) msleep(1);
    arm_ms(50);
    SHOWRC("mutex_lock", pthread_mutex_lock(&cm));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 145), (int)hits);
    pthread_mutex_unlock(&cm);
    join_long(t);
}

/* ---------------------------------------------------------------- who gets the signal */

static pthread_t main_thread;
static void *kill_later(void *arg) {
    msleep(50);
    long how = (long)arg;
    if (how == 0) kill(getpid(), SIGUSR1);
    else pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

CASE(kill_from_thread_interrupts_main_read) {
    int p[2];
    pipe(p);
    install(SIGUSR1, 0);
    main_thread = pthread_self();
    pthread_t t = spawn_blocking(kill_later, (void *)0L, SIGUSR1);
    char b[4];
    SHOW("main read", read(p[0], b, sizeof b));
    printf("handler ran %d time(s), in main: %d\n", (int)hits, pthread_equal(handler_thread, main_thread) != 0);
    join_long(t);
}

CASE(pthread_kill_main_from_thread) {
    int p[2];
    pipe(p);
    install(SIGUSR1, SA_RESTART);
    main_thread = pthread_self();
    pthread_t t = spawn_blocking(kill_later, (void *)1L, 0); /* SIGUSR1 not blocked there */
    struct pollfd pf = { p[0], POLLIN, 0 };
    SHOW("main poll 1000ms", poll(&pf, 1, 1000));
    printf("handler ran %d time(s), in main: %d\n", (int)hits, pthread_equal(handler_thread, main_thread) != 0);
    join_long(t);
}

static int reader_fd;
static void *read_and_report(void *arg) {
    (void)arg;
    char b[4];
    errno = 0;
    ssize_t r = read(reader_fd, b, sizeof b);
    int e = errno;
    printf("thread read: ret=%zd errno=%s, handler ran in this thread: %d\n", r, r == -1 ? en(e) : "0",
           pthread_equal(handler_thread, pthread_self()) != 0);
    return NULL;
}

CASE(pthread_kill_thread_parked_in_read) {
    int p[2];
    pipe(p);
    reader_fd = p[0];
    install(SIGUSR1, 0);
    pthread_t t = spawn_blocking(read_and_report, NULL, 0);
    msleep(50);
    int kr = pthread_kill(t, SIGUSR1);
    join_long(t);
    SHOWRC("pthread_kill", kr);
    printf("handler ran %d time(s)\n", (int)hits);
    close(p[0]);
    close(p[1]);
}

CASE(blocked_in_main_delivered_to_other_thread) {
    int p[2];
    pipe(p);
    reader_fd = p[0];
    install(SIGUSR1, 0);
    pthread_t t = spawn_blocking(read_and_report, NULL, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    msleep(50);
    int kr = kill(getpid(), SIGUSR1);
    join_long(t);
    printf("kill(getpid(), SIGUSR1): %d\n", kr);
    sigset_t pend;
    sigpending(&pend);
    printf("handler ran %d time(s), pending in main: %d\n", (int)hits, sigismember(&pend, SIGUSR1));
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static void *sigwait_thread(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    int sig = 0;
    int r = sigwait(&s, &sig);
    printf("sigwait: %s sig=%s\n", en(r), sigabbrev_np(sig));
    return NULL;
}

CASE(sigwait_in_thread) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t = spawn_blocking(sigwait_thread, NULL, SIGUSR2);
    msleep(50);
    kill(getpid(), SIGUSR2);
    join_long(t);
}

static void *queue_later(void *arg) {
    (void)arg;
    msleep(30);
    union sigval v = { .sival_int = 42 };
    sigqueue(getpid(), SIGRTMIN, v);
    return NULL;
}

CASE(sigwaitinfo_sigqueue_value) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t = spawn_blocking(queue_later, NULL, SIGRTMIN);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = sigwaitinfo(&s, &si);
    printf("sigwaitinfo: is SIGRTMIN=%d code SI_QUEUE=%d value=%d from self=%d\n", r == SIGRTMIN,
           si.si_code == SI_QUEUE, si.si_value.sival_int, si.si_pid == getpid());
    join_long(t);
}

CASE(sigtimedwait_timeout_and_pending) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    struct timespec ts = { 0, 50 * 1000000L };
    double t0 = now_ms();
    SHOW("sigtimedwait 50ms", sigtimedwait(&s, NULL, &ts));
    printf("  after %s\n", timing(now_ms() - t0, 50));
    raise(SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("pending after raise: %d\n", sigismember(&pend, SIGUSR1));
    siginfo_t si;
    t0 = now_ms();
    int r = sigtimedwait(&s, &si, &ts);
    printf("sigtimedwait pending: %s code SI_TKILL=%d immediate: %s\n", sigabbrev_np(r),
           si.si_code == SI_TKILL, timing(now_ms() - t0, 0));
    sigpending(&pend);
    printf("pending after: %d\n", sigismember(&pend, SIGUSR1));
    ts.tv_nsec = 0;
    SHOW("sigtimedwait zero timeout", sigtimedwait(&s, NULL, &ts));
}

CASE(pause_returns_eintr) {
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_ms(50);
    SHOW("pause", pause());
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
}

static void *usr1_later(void *arg) {
    (void)arg;
    msleep(50);
    kill(getpid(), SIGUSR1);
    return NULL;
}

CASE(sigsuspend_unblocks_and_restores_mask) {
    install(SIGUSR1, SA_RESTART);
    sigset_t s, empty, now;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    double t0 = now_ms();
    pthread_t t = spawn_blocking(usr1_later, NULL, SIGUSR1);
    sigemptyset(&empty);
    SHOW("sigsuspend", sigsuspend(&empty));
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    printf("after %s, handler ran %d, USR1 blocked again: %d\n", timing(now_ms() - t0, 50), (int)hits,
           sigismember(&now, SIGUSR1));
    join_long(t);
}

CASE(raise_handler_runs_before_return) {
    install(SIGUSR1, 0);
    SHOW("raise", raise(SIGUSR1));
    printf("hits right after raise: %d\n", (int)hits);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    printf("hits while blocked: %d\n", (int)hits);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    printf("hits after unblock (standard signals do not queue): %d\n", (int)hits);
}

CASE(sigpipe_default_kills) {
    int p[2];
    pipe(p);
    close(p[0]);
    printf("writing to a pipe without readers\n");
    write(p[1], "x", 1);
    printf("not reached\n");
}

CASE(sigpipe_ignored_gives_epipe) {
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    pipe(p);
    close(p[0]);
    SHOW("write pipe", write(p[1], "x", 1));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    SHOW("send socket", send(sv[0], "x", 1, 0));
    signal(SIGPIPE, SIG_DFL);
    SHOW("send MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL));
}

CASE(alarm_default_kills_blocked_read) {
    int p[2];
    pipe(p);
    alarm(1);
    printf("blocking in read with SIGALRM at its default\n");
    char b[4];
    read(p[0], b, sizeof b);
    printf("not reached\n");
}

static void *connect_later(void *arg) {
    msleep(150);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = (in_port_t)(long)arg,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    connect(s, (struct sockaddr *)&a, sizeof a);
    msleep(50);
    close(s);
    return NULL;
}

static int listener(in_port_t *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    *port = a.sin_port;
    return l;
}

CASE(accept_eintr_or_restarted) {
    in_port_t port;
    int l = listener(&port);
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    SHOW("accept without SA_RESTART", accept(l, NULL, NULL));
    printf("  after %s\n", timing(now_ms() - t0, 50));
    install(SIGALRM, SA_RESTART);
    t0 = now_ms();
    pthread_t t = spawn_blocking(connect_later, (void *)(long)port, SIGALRM);
    arm_ms(50);
    int c = accept(l, NULL, NULL);
    printf("accept with SA_RESTART: %s after %s, handler ran %d\n", c >= 0 ? "connection" : en(errno),
           timing(now_ms() - t0, 150), (int)hits);
    join_long(t);
    if (c >= 0) close(c);
    close(l);
}

CASE(recv_with_rcvtimeo_eintr_despite_sa_restart) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = { 1, 0 };
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    install(SIGALRM, SA_RESTART);
    double t0 = now_ms();
    arm_ms(50);
    char b[4];
    SHOW("recv (SO_RCVTIMEO 1s)", recv(sv[0], b, sizeof b, 0));
    printf("  after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    close(sv[0]);
    close(sv[1]);
}

static volatile int timer_calls;
static void timer_thread_fn(union sigval v) {
    note_stall();
    timer_calls++;
    sem_post((sem_t *)v.sival_ptr);
}

CASE(timer_create_sigev_thread) {
    sem_init(&sem, 0, 0);
    timer_t tm;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = timer_thread_fn;
    ev.sigev_value.sival_ptr = &sem;
    SHOW("timer_create", timer_create(CLOCK_MONOTONIC, &ev, &tm));
    struct itimerspec its = { { 0, 0 }, { 0, 50 * 1000000L } };
    double t0 = now_ms();
    timer_settime(tm, 0, &its, NULL);
    struct timespec d;
    clock_gettime(CLOCK_REALTIME, &d);
    d.tv_sec += 2;
    SHOW("sem_timedwait for the timer thread", sem_timedwait(&sem, &d));
    printf("after %s, calls=%d\n", timing(now_ms() - t0, 50), timer_calls);
    timer_delete(tm);
}

CASE(sigchld_interrupts_read) {
    install(SIGCHLD, 0);
    int p[2];
    pipe(p);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        msleep(50);
        _exit(0);
    }
    char b[4];
    SHOW("read while the child exits", read(p[0], b, sizeof b));
    printf("after %s, SIGCHLD handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    reap(pid, "child");
}

/* An anonymous temporary file (unlinked at once: nothing is left behind, even by a
 * killed run). */
static int temp_fd(void) {
    char path[] = "/tmp/greenify-diff-lock-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    return fd;
}

/* A new open file description of the same file (flock locks belong to descriptions). */
static int reopen(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDWR);
}

CASE(fcntl_setlkw_eintr) {
    int fd = temp_fd();
    int go[2];
    pipe(go);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        fcntl(fd, F_SETLK, &fl);
        write(go[1], "g", 1);
        msleep(300);
        _exit(0);
    }
    char c;
    read(go[0], &c, 1);
    install(SIGALRM, 0);
    double t0 = now_ms();
    arm_ms(50);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    SHOW("F_SETLKW while the child holds it", fcntl(fd, F_SETLKW, &fl));
    printf("  after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    reap(pid, "child");
    close(fd);
}

/* ---------------------------------------------------------------- fork and exec */

CASE(fork_child_has_own_copy) {
    static int value = 1;
    int *heap = malloc(sizeof *heap);
    *heap = 10;
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        value = 2;
        *heap = 20;
        _exit(value + *heap);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child's exit status %d; parent still sees %d and %d\n", WEXITSTATUS(st), value, *heap);
    free(heap);
}

CASE(fork_pipes_both_ways) {
    int to_child[2], to_parent[2];
    pipe(to_child);
    pipe(to_parent);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        close(to_child[1]);
        close(to_parent[0]);
        char b[16] = { 0 };
        ssize_t n = read(to_child[0], b, sizeof b - 1);
        char out[32];
        int len = snprintf(out, sizeof out, "pong:%.*s", (int)(n > 0 ? n : 0), b);
        msleep(20);
        write(to_parent[1], out, (size_t)len);
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    msleep(30);
    write(to_child[1], "ping", 4);
    char b[32] = { 0 };
    ssize_t n = read(to_parent[0], b, sizeof b - 1);
    printf("parent read %zd: %s\n", n, b);
    SHOW("read eof after child exit", read(to_parent[0], b, sizeof b));
    reap(pid, "child");
}

static void *child_thread(void *arg) {
    msleep(20);
    return (void *)((long)arg + 1);
}

CASE(fork_parent_threads_absent_in_child) {
    pthread_t t = start_ticker();
    msleep(30);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        long before = ticks;
        msleep(100);
        long after = ticks;
        pthread_t c;
        pthread_create(&c, NULL, child_thread, (void *)4L);
        long v = join_long(c);
        _exit((before == after ? 10 : 0) + (int)v);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child: parent's ticker frozen and own thread returned 5 -> %d\n", WEXITSTATUS(st));
    printf("parent ticker still runs: %d\n", stop_ticker(t) > 0);
}

static char atfork_log[128];
static void log_s(const char *s) { strncat(atfork_log, s, sizeof atfork_log - strlen(atfork_log) - 1); }
static void prep_a(void) { log_s("prepA "); }
static void prep_b(void) { log_s("prepB "); }
static void parent_a(void) { log_s("parentA "); }
static void parent_b(void) { log_s("parentB "); }
static void child_a(void) { log_s("childA "); }
static void child_b(void) { log_s("childB "); }

CASE(fork_atfork_handler_order) {
    atfork_log[0] = 0;
    pthread_atfork(prep_a, parent_a, child_a);
    pthread_atfork(prep_b, parent_b, child_b);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        printf("child log: %s\n", atfork_log);
        fflush(stdout);
        _exit(0);
    }
    reap(pid, "child");
    printf("parent log: %s\n", atfork_log);
}

static void *fork_from_thread(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        msleep(10);
        _exit(7);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return (void *)(long)WEXITSTATUS(st);
}

CASE(fork_from_a_thread) {
    pthread_t t = start_ticker();
    pthread_t f;
    pthread_create(&f, NULL, fork_from_thread, NULL);
    printf("child forked by a thread exited %ld\n", join_long(f));
    stop_ticker(t);
}

static void *sleeper_in_child(void *arg) {
    msleep(30);
    return arg;
}

CASE(fork_child_runs_threads_and_sleeps) {
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        pthread_t t[3];
        double t0 = now_ms();
        for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, sleeper_in_child, (void *)i);
        long s = 0;
        for (int i = 0; i < 3; i++) s += join_long(t[i]);
        int ok = !strcmp(timing(now_ms() - t0, 30), "ok");
        _exit((int)s * 10 + ok);
    }
    reap(pid, "child (3 threads summing to 3, timing ok -> 31)");
}

/* Forks a child that runs a spinning pair (bounded by bound_ms); whether that pair ran on
 * two OS threads (-1: the child did not exit). */
static int child_pair_ran_apart(double bound_ms) {
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        _exit(pair_ran_apart(bound_ms, pair_member));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether a member of the parent's pair forked, and what its child found of its own pair. */
static _Atomic int child_forked;
static int child_apart;

/* A child's pair gets long enough to start its second OS thread on a loaded machine when
 * the parent's pair ran apart; else (greenified with one worker) it cannot. */
static double child_bound_ms(int parent_pair_apart) { return parent_pair_apart ? 5000 : 100; }

static void *parent_member_forking_off_first(void *arg) {
    struct pair_member *m = arg;
    spin_in_pair(m->pair, m->i);
    /* Both members still run (the other may spin on): greenified with two workers, this
     * one runs on the second, the first being the program's own OS thread. */
    if (m->pair->apart && os_thread_id() != getpid() && !__atomic_exchange_n(&child_forked, 1, __ATOMIC_SEQ_CST))
        child_apart = child_pair_ran_apart(child_bound_ms(1));
    return NULL;
}

/* A child forked by a thread that runs on another OS thread than the program's first runs
 * its own threads on as many OS threads as its parent did (greenified, it starts its
 * other workers as the parent's first worker did; one worker: one each). */
CASE(fork_from_a_thread_off_the_first_os_thread_child_runs_threads_apart_as_parent) {
    child_forked = 0;
    child_apart = -1;
    int parent_apart = pair_ran_apart(1000, parent_member_forking_off_first);
    /* Only with one worker does no member run off the first OS thread. */
    if (!child_forked) child_apart = child_pair_ran_apart(child_bound_ms(parent_apart));
    printf("child's threads ran apart as the parent's: %s\n", child_apart == parent_apart ? "yes" : "no");
}

/* The same from the main thread (greenified, on the first worker). */
CASE(fork_from_main_child_runs_threads_apart_as_parent) {
    int apart = pair_ran_apart(1000, pair_member);
    int child = child_pair_ran_apart(child_bound_ms(apart));
    printf("child's threads ran apart as the parent's: %s\n", child == apart ? "yes" : "no");
}

CASE(vfork_exit_status) {
    pid_t pid = vfork();
    if (pid == 0) _exit(5);
    reap(pid, "vfork child");
    pid = vfork();
    if (pid == 0) {
        char *argv[] = { "sh", "-c", "exit 6", NULL };
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    reap(pid, "vfork+exec child");
}

CASE(posix_spawn_true_false) {
    pid_t pid;
    char *t_argv[] = { "true", NULL };
    SHOWRC("spawn /bin/true", posix_spawn(&pid, "/bin/true", NULL, NULL, t_argv, environ));
    reap(pid, "true");
    char *f_argv[] = { "false", NULL };
    SHOWRC("spawnp false", posix_spawnp(&pid, "false", NULL, NULL, f_argv, environ));
    reap(pid, "false");
    SHOWRC("spawn missing", posix_spawn(&pid, "/nonexistent/prog", NULL, NULL, t_argv, environ));
}

CASE(posix_spawn_echo_through_pipe) {
    int p[2];
    pipe(p);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    pid_t pid;
    char *argv[] = { "echo", "hello", "from", "echo", NULL };
    SHOWRC("posix_spawn echo", posix_spawn(&pid, "/bin/echo", &fa, NULL, argv, environ));
    close(p[1]);
    char b[64] = { 0 };
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], b + got, sizeof b - 1 - got)) > 0) got += (size_t)n;
    printf("read %zu: %s", got, b);
    reap(pid, "echo");
    close(p[0]);
    posix_spawn_file_actions_destroy(&fa);
}

CASE(execve_from_forked_child) {
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char *argv[] = { "sh", "-c", "echo exec ran; exit 4", NULL };
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    close(p[1]);
    char b[64] = { 0 };
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], b + got, sizeof b - 1 - got)) > 0) got += (size_t)n;
    printf("child wrote: %s", b);
    reap(pid, "sh");
    close(p[0]);
    pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        char *argv[] = { "nope", NULL };
        execve("/nonexistent/nope", argv, environ);
        _exit(errno);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("failed execve errno in child: %s\n", en(WEXITSTATUS(st)));
}

CASE(system_statuses) {
    printf("system(NULL) says a shell exists: %d\n", system(NULL) != 0);
    show_status("system(\"exit 3\")", system("exit 3"));
    show_status("system(\"true\")", system("true"));
    show_status("system(\"kill -9 $$\")", system("kill -9 $$"));
}

CASE(system_lets_threads_run) {
    pthread_t t = start_ticker();
    double t0 = now_ms();
    show_status("system(\"sleep 0.2\")", system("sleep 0.2"));
    long during = ticks;
    printf("took %s, ticker ran during it: %d\n", timing(now_ms() - t0, 200), during >= 10);
    stop_ticker(t);
}

CASE(popen_read_and_pclose_status) {
    FILE *f = popen("echo hi; echo there; exit 2", "r");
    char line[32];
    while (fgets(line, sizeof line, f)) printf("popen line: %s", line);
    show_status("pclose", pclose(f));
    f = popen("read x; test \"$x\" = abc", "w");
    fputs("abc\n", f);
    show_status("pclose writer (child checked input)", pclose(f));
}

CASE(waitpid_wnohang_then_blocking) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        msleep(100);
        _exit(9);
    }
    int st = 0;
    SHOW("waitpid WNOHANG while running", waitpid(pid, &st, WNOHANG));
    pid_t r = waitpid(pid, &st, 0);
    printf("blocking waitpid: right pid=%d after %s\n", r == pid, timing(now_ms() - t0, 100));
    show_status("child", st);
    SHOW("waitpid again", waitpid(pid, &st, 0));
    SHOW("waitpid -1 no children", waitpid(-1, &st, WNOHANG));
}

CASE(wait4_and_waitid) {
    pid_t pid = fork();
    if (pid == 0) _exit(12);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    SHOW("waitid WEXITED|WNOWAIT", waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT));
    printf("si: pid match=%d code CLD_EXITED=%d status=%d\n", si.si_pid == pid, si.si_code == CLD_EXITED,
           si.si_status);
    struct rusage ru;
    int st = 0;
    pid_t r = wait4(pid, &st, 0, &ru);
    printf("wait4: pid match=%d\n", r == pid);
    show_status("child", st);
    pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        pause();
        _exit(0);
    }
    msleep(20);
    kill(pid, SIGTERM);
    memset(&si, 0, sizeof si);
    SHOW("waitid P_ALL", waitid(P_ALL, 0, &si, WEXITED));
    printf("si: code CLD_KILLED=%d status=%s\n", si.si_code == CLD_KILLED, sigabbrev_np(si.si_status));
    SHOW("wait no children", wait(NULL));
}

CASE(waitpid_lets_threads_run) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        msleep(200);
        _exit(0);
    }
    pthread_t t = start_ticker();
    int st;
    waitpid(pid, &st, 0);
    long during = ticks;
    printf("waitpid took %s, ticker ran during it: %d\n", timing(now_ms() - t0, 200), during >= 10);
    stop_ticker(t);
}

/* envp without LD_PRELOAD: the child runs without greenify. */
static char **env_without_preload(void) {
    static char *env[512];
    int n = 0;
    for (char **e = environ; *e && n < 510; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11)) env[n++] = *e;
    env[n] = NULL;
    return env;
}

static void cat_child(int in_fd, int close_in_child, const char *label, int keep_preload) {
    int out[2];
    pipe(out);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, close_in_child);
    pid_t pid;
    char *argv[] = { "sh", "-c", "cat 2>/dev/null; echo \"cat status $?\"", NULL };
    int r = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, keep_preload ? environ : env_without_preload());
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    printf("%s: spawn %s\n", label, en(r));
    msleep(100); /* the child is blocked reading by now */
    write(close_in_child, "hello\n", 6);
    msleep(20);
    write(close_in_child, "world\n", 6);
    close(close_in_child);
    char b[128] = { 0 };
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], b + got, sizeof b - 1 - got)) > 0) got += (size_t)n;
    printf("%s", b);
    close(out[0]);
    reap(pid, "sh");
}

CASE(nongreen_child_reads_inherited_pipe) {
    int p[2];
    pipe(p);
    cat_child(p[0], p[1], "pipe", 0);
    close(p[0]);
}

CASE(nongreen_child_reads_inherited_socketpair) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    cat_child(sv[0], sv[1], "socketpair", 0);
    close(sv[0]);
}

CASE(child_with_preload_reads_inherited_socketpair) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    cat_child(sv[0], sv[1], "socketpair", 1);
    close(sv[0]);
}

CASE(nongreen_child_reads_inherited_tcp_socket) {
    in_port_t port;
    int l = listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = port,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int s = accept(l, NULL, NULL);
    close(l);
    cat_child(s, c, "tcp", 0);
    close(s);
}

/* ---------------------------------------------------------------- name resolution */

CASE(getaddrinfo_localhost) {
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int r = getaddrinfo("localhost", "80", &hints, &res);
    printf("getaddrinfo(localhost, AF_INET): %s\n", r ? gai_strerror(r) : "ok");
    if (!r) {
        char host[64];
        struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        printf("first: %s port %d\n", host, ntohs(sin->sin_port));
        freeaddrinfo(res);
    }
    hints.ai_family = AF_UNSPEC;
    r = getaddrinfo("localhost", NULL, &hints, &res);
    int inet = 0;
    if (!r) {
        for (struct addrinfo *p = res; p; p = p->ai_next) inet |= p->ai_family == AF_INET;
        freeaddrinfo(res);
    }
    printf("AF_UNSPEC resolved: %d, has AF_INET: %d\n", r == 0, inet);
    hints.ai_flags = AI_NUMERICHOST;
    r = getaddrinfo("not-a-number", NULL, &hints, &res);
    printf("AI_NUMERICHOST on a name: %s\n", r == EAI_NONAME ? "EAI_NONAME" : "other");
    r = getaddrinfo("127.0.0.1", "http", &hints, &res);
    printf("numeric host + service name: %s\n", r ? "failed" : "ok");
    if (!r) freeaddrinfo(res);
}

CASE(getnameinfo_loopback) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    char host[128], serv[32];
    int r = getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, serv, sizeof serv,
                        NI_NUMERICHOST | NI_NUMERICSERV);
    printf("numeric: %d %s %s\n", r, host, serv);
    r = getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, NULL, 0, NI_NAMEREQD);
    printf("name of 127.0.0.1 resolved: %d\n", r == 0);
    r = getnameinfo((struct sockaddr *)&a, sizeof a, host, 2, NULL, 0, NI_NUMERICHOST);
    printf("tiny buffer: %s\n", r == EAI_OVERFLOW ? "EAI_OVERFLOW" : "other");
}

static void *resolve_many(void *arg) {
    (void)arg;
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        struct addrinfo hints = { .ai_family = AF_INET }, *res;
        if (!getaddrinfo("localhost", NULL, &hints, &res)) {
            ok++;
            freeaddrinfo(res);
        }
    }
    return (void *)(long)ok;
}

CASE(getaddrinfo_from_many_threads) {
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, resolve_many, NULL);
    long ok = 0;
    for (int i = 0; i < 8; i++) ok += join_long(t[i]);
    printf("resolved %ld/160\n", ok);
}

/* ---------------------------------------------------------------- file locks */

CASE(flock_between_processes) {
    int fd = temp_fd();
    SHOW("parent flock EX", flock(fd, LOCK_EX));
    int go[2];
    pipe(go);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        int cfd = reopen(fd);
        int nb = flock(cfd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
        int shared_ofd = flock(fd, LOCK_EX | LOCK_NB) == 0; /* the inherited description holds it */
        /* Read before the parent can start its 100 ms: never early, however late
         * this child runs after its write. */
        double t0 = now_ms();
        write(go[1], "g", 1);
        int r = flock(cfd, LOCK_EX);
        int ok = r == 0 && !strcmp(timing(now_ms() - t0, 100), "ok");
        _exit(nb * 4 + shared_ofd * 2 + ok);
    }
    char ch;
    read(go[0], &ch, 1);
    msleep(100);
    SHOW("parent unlock", flock(fd, LOCK_UN));
    reap(pid, "child (EWOULDBLOCK, inherited fd shares the lock, waited ~100ms -> 7)");
    close(fd);
}

CASE(fcntl_setlkw_between_processes) {
    int fd = temp_fd();
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
    SHOW("parent F_SETLK", fcntl(fd, F_SETLK, &fl));
    pid_t parent = getpid();
    int go[2];
    pipe(go);
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        struct flock c = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1 };
        int busy = fcntl(fd, F_SETLK, &c) == -1 && (errno == EAGAIN || errno == EACCES);
        struct flock q = c;
        fcntl(fd, F_GETLK, &q);
        int getlk = q.l_type == F_WRLCK && q.l_pid == parent && q.l_len == 10;
        struct flock other = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 1 };
        int free_range = fcntl(fd, F_SETLK, &other) == 0;
        /* Read before the parent can start its 100 ms: never early, however late
         * this child runs after its write. */
        double t0 = now_ms();
        write(go[1], "g", 1);
        int r = fcntl(fd, F_SETLKW, &c);
        int ok = r == 0 && !strcmp(timing(now_ms() - t0, 100), "ok");
        _exit(busy * 8 + getlk * 4 + free_range * 2 + ok);
    }
    char ch;
    read(go[0], &ch, 1);
    msleep(100);
    fl.l_type = F_UNLCK;
    SHOW("parent F_UNLCK", fcntl(fd, F_SETLK, &fl));
    reap(pid, "child (busy, F_GETLK names parent, other range free, waited -> 15)");
    close(fd);
}

CASE(fcntl_setlkw_lets_threads_run) {
    int fd = temp_fd();
    int go[2];
    pipe(go);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        struct flock c = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        fcntl(fd, F_SETLK, &c); /* fcntl locks belong to the process: the inherited fd will do */
        write(go[1], "g", 1);
        msleep(200);
        _exit(0);
    }
    char ch;
    read(go[0], &ch, 1);
    pthread_t t = start_ticker();
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    SHOW("F_SETLKW", fcntl(fd, F_SETLKW, &fl));
    long during = ticks;
    printf("waited %s, ticker ran during it: %d\n", timing(now_ms() - t0, 190), during >= 10);
    stop_ticker(t);
    reap(pid, "child");
    close(fd);
}

CASE(flock_lets_threads_run) {
    int fd = temp_fd();
    int go[2];
    pipe(go);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        kill_if_hung(); /* a hung child dies too */
        int cfd = reopen(fd);
        flock(cfd, LOCK_EX);
        write(go[1], "g", 1);
        msleep(200);
        _exit(0);
    }
    char ch;
    read(go[0], &ch, 1);
    pthread_t t = start_ticker();
    SHOW("flock EX", flock(fd, LOCK_EX));
    long during = ticks;
    printf("waited %s, ticker ran during it: %d\n", timing(now_ms() - t0, 190), during >= 10);
    stop_ticker(t);
    reap(pid, "child");
    close(fd);
}
