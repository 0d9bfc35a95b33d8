/* The waits of the hook families that wait for something other than an fd's data: a
 * child (waitpid, waitid, wait), a signal (sigwait, sigwaitinfo, sigtimedwait), a POSIX
 * message queue, a connect. How each ends when a handler runs (EINTR, or restarted under
 * SA_RESTART), when the thread is cancelled, and which fd numbers the program gets while
 * one of them waits. Signals are sent to the waiting thread itself (pthread_kill), so
 * natively no other thread can take them. */
#include "case.h"
#include <mqueue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

KILL_IF_HUNG_AFTER(20)

static volatile sig_atomic_t hits;
static pthread_t waiter;

static void on_usr1(int sig) {
    (void)sig;
    hits++;
}

static void install_usr1(int flags) {
    set_handler(SIGUSR1, on_usr1, flags);
    hits = 0;
    waiter = pthread_self();
}

static void usr1_waiter(int unused) {
    (void)unused;
    pthread_kill(waiter, SIGUSR1);
}

/* Waits until the SIGUSR1 handler has run: what follows comes after it, however late the
 * signal's thread ran on a loaded machine. */
static void await_handler(void) {
    while (!hits) msleep(1);
}

static void close_after_handler(int fd) {
    await_handler();
    close(fd);
}

/* A child that exits (status 7) once `release` is closed; its pipe's read end is closed
 * here. */
static pid_t child_until_closed(int *release) {
    int p[2];
    if (pipe(p)) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[1]);
        char b;
        (void)!read(p[0], &b, 1);
        _exit(7);
    }
    close(p[0]);
    *release = p[1];
    return pid;
}

static void show_reaped(pid_t pid, pid_t r, int status) {
    printf("reaped: right pid=%d exited=%d status=%d\n", r == pid, WIFEXITED(status),
           WEXITSTATUS(status));
}

/* ---------------------------------------------------------------- children */

/* SIGUSR1 (its handler installed with `flags`) for this thread at 50 ms, while it waits
 * for a child that exits at 150 ms, once the handler has run. */
struct signalled {
    pid_t pid;
    struct after *sig, *end;
};

static struct signalled child_and_signal(int flags) {
    install_usr1(flags);
    int release;
    struct signalled s;
    s.pid = child_until_closed(&release);
    s.sig = after(50, usr1_waiter, 0);
    s.end = after(150, close_after_handler, release);
    return s;
}

static void signalled_done(struct signalled s) {
    after_join(s.sig);
    after_join(s.end);
}

/* waitpid, or wait() for any child (which watches every child's pidfd): the same rules. */
static void waitpid_signalled(int flags, int any) {
    struct signalled s = child_and_signal(flags);
    int status = 0;
    errno = 0;
    pid_t r = any ? wait(&status) : waitpid(s.pid, &status, 0);
    printf("wait: %s handler ran %d\n", r == -1 ? en(errno) : "returned", (int)hits);
    signalled_done(s);
    if (r == -1) r = waitpid(s.pid, &status, 0);
    show_reaped(s.pid, r, status);
}

CASE(waits_waitpid_eintr_without_sa_restart) { waitpid_signalled(0, 0); }

CASE(waits_waitpid_restarted_with_sa_restart) { waitpid_signalled(SA_RESTART, 0); }

CASE(waits_wait_any_eintr_without_sa_restart) { waitpid_signalled(0, 1); }

CASE(waits_wait_any_restarted_with_sa_restart) { waitpid_signalled(SA_RESTART, 1); }

static void waitid_signalled(int flags) {
    struct signalled s = child_and_signal(flags);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    SHOW("waitid", waitid(P_PID, s.pid, &si, WEXITED));
    printf("handler ran %d, filled: %d\n", (int)hits, si.si_pid == s.pid);
    signalled_done(s);
    int status = 0;
    pid_t r = waitpid(s.pid, &status, WNOHANG);
    if (r == 0) r = waitpid(s.pid, &status, 0);
    printf("still to reap: %d\n", r == s.pid);
}

CASE(waits_waitid_eintr_without_sa_restart) { waitid_signalled(0); }

CASE(waits_waitid_restarted_with_sa_restart) { waitid_signalled(SA_RESTART); }

/* ---------------------------------------------------------------- signals */

static sigset_t usr2_blocked(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    return s;
}

static void usr2_process(int unused) {
    (void)unused;
    kill(getpid(), SIGUSR2);
}

static void usr2_after_handler(int unused) {
    await_handler();
    usr2_process(unused);
}

/* sigwaitinfo and sigtimedwait end with EINTR when a handler runs, whatever SA_RESTART. */
static void sigwaitinfo_signalled(int timed) {
    install_usr1(SA_RESTART);
    sigset_t s = usr2_blocked();
    double t0 = now_ms();
    struct after *sig = after(50, usr1_waiter, 0);
    if (timed) {
        struct timespec ts = { 2, 0 };
        SHOW("sigtimedwait 2s", sigtimedwait(&s, NULL, &ts));
    } else {
        SHOW("sigwaitinfo", sigwaitinfo(&s, NULL));
    }
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    after_join(sig);
}

CASE(waits_sigwaitinfo_eintr_despite_sa_restart) { sigwaitinfo_signalled(0); }

CASE(waits_sigtimedwait_eintr_despite_sa_restart) { sigwaitinfo_signalled(1); }

/* sigwait goes on waiting after a handler, with or without SA_RESTART. */
static void sigwait_signalled(int flags) {
    install_usr1(flags);
    sigset_t s = usr2_blocked();
    double t0 = now_ms();
    struct after *sig = after(50, usr1_waiter, 0);
    struct after *send = after(150, usr2_after_handler, 0);
    int got = 0;
    int r = sigwait(&s, &got);
    printf("sigwait: %s sig=%s after %s, handler ran %d\n", en(r), sigabbrev_np(got),
           timing(now_ms() - t0, 150), (int)hits);
    after_join(sig);
    after_join(send);
}

CASE(waits_sigwait_goes_on_after_a_handler) { sigwait_signalled(0); }

CASE(waits_sigwait_goes_on_after_a_restarting_handler) { sigwait_signalled(SA_RESTART); }

static volatile int timed_out;

/* SIGUSR2 for the process, once the first wait has timed out. */
static void usr2_after_timeout(int unused) {
    while (!timed_out) msleep(1);
    usr2_process(unused);
}

/* A timeout that ends while other threads run, then the signal that came after it. */
CASE(waits_sigtimedwait_times_out_then_takes_the_next) {
    waiter = pthread_self();
    sigset_t s = usr2_blocked();
    double t0 = now_ms();
    struct after *send = after(200, usr2_after_timeout, 0);
    struct timespec ts = { 0, 100 * 1000000L };
    SHOW("sigtimedwait 100ms", sigtimedwait(&s, NULL, &ts));
    timed_out = 1;
    printf("after %s\n", timing(now_ms() - t0, 100));
    ts.tv_sec = 5;
    ts.tv_nsec = 0;
    int r = sigtimedwait(&s, NULL, &ts);
    printf("then: %s after %s\n", r > 0 ? sigabbrev_np(r) : en(errno), timing(now_ms() - t0, 200));
    after_join(send);
}

/* ---------------------------------------------------------------- cancellation */

/* Cancels the thread `fn` runs in once it waits (50 ms), and joins it. */
static void cancel_waiting(void *(*fn)(void *), void *arg) {
    pthread_t t;
    pthread_create(&t, NULL, fn, arg);
    msleep(50);
    pthread_cancel(t);
    void *v = NULL;
    pthread_join(t, &v);
    printf("cancelled in its wait: %d\n", v == PTHREAD_CANCELED);
}

/* Waits for the child `arg` points to, or (NULL) for any child. */
static void *wait_forever(void *arg) {
    int status;
    if (arg) waitpid(*(pid_t *)arg, &status, 0);
    else wait(&status);
    printf("wait returned\n");
    return NULL;
}

static void cancel_in_wait(int any) {
    int release;
    pid_t pid = child_until_closed(&release);
    cancel_waiting(wait_forever, any ? NULL : &pid);
    close(release);
    int status = 0;
    pid_t r = waitpid(pid, &status, 0);
    show_reaped(pid, r, status);
}

CASE(waits_cancel_in_waitpid) { cancel_in_wait(0); }

CASE(waits_cancel_in_wait_any) { cancel_in_wait(1); }

static sigset_t waited_set;

/* sigwait (arg not NULL) or sigwaitinfo for SIGUSR2. */
static void *sigwait_forever(void *arg) {
    int sig;
    if (arg) sigwait(&waited_set, &sig);
    else sigwaitinfo(&waited_set, NULL);
    printf("the wait returned\n");
    return NULL;
}

CASE(waits_cancel_in_sigwaitinfo) {
    waited_set = usr2_blocked();
    cancel_waiting(sigwait_forever, NULL);
}

CASE(waits_cancel_in_sigwait) {
    waited_set = usr2_blocked();
    cancel_waiting(sigwait_forever, &waited_set);
}

static void *mq_receive_forever(void *arg) {
    char b[64];
    mq_receive(*(mqd_t *)arg, b, sizeof b, NULL);
    printf("mq_receive returned\n");
    return NULL;
}

CASE(waits_cancel_in_mq_receive) {
    char name[64];
    snprintf(name, sizeof name, "/greenify-waits-%d", (int)getpid());
    struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = 32 };
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    mq_unlink(name);
    if (q == (mqd_t)-1) {
        printf("mq_open: %s\n", en(errno));
        return;
    }
    cancel_waiting(mq_receive_forever, &q);
    SHOW("mq_send after", mq_send(q, "x", 1, 0));
    mq_close(q);
}

/* A unix listener (its fd in `listener_fd`) whose backlog one connection fills: a
 * blocking connect to it waits. */
static int listener_fd;
static struct sockaddr_un full_listener(const char *name) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    listener_fd = l;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/waits_%s_%d", name, (int)getpid());
    unlink(a.sun_path);
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 0);
    int filler = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("first connect fills the backlog", connect(filler, (struct sockaddr *)&a, sizeof a));
    return a;
}

static void *connect_forever(void *arg) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c, arg, sizeof(struct sockaddr_un));
    printf("connect returned\n");
    return NULL;
}

CASE(waits_cancel_in_connect) {
    struct sockaddr_un a = full_listener("cancel");
    cancel_waiting(connect_forever, &a);
    unlink(a.sun_path);
}

/* ---------------------------------------------------------------- connect and handlers */

static void accept_after_handler(int unused) {
    (void)unused;
    await_handler();
    int c = accept(listener_fd, NULL, NULL);
    (void)!write(c, "x", 1);
}

/* Under SA_RESTART a connect without SO_SNDTIMEO goes on waiting, until the accept (at
 * 150 ms, once the handler has run). */
CASE(waits_connect_restarted_with_sa_restart) {
    install_usr1(SA_RESTART);
    struct sockaddr_un a = full_listener("restart");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    double t0 = now_ms();
    struct after *sig = after(50, usr1_waiter, 0);
    struct after *acc = after(150, accept_after_handler, 0);
    SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 150), (int)hits);
    after_join(sig);
    after_join(acc);
    unlink(a.sun_path);
}

/* With SO_SNDTIMEO the same handler ends it with EINTR (signal(7)). */
CASE(waits_connect_sndtimeo_eintr_despite_sa_restart) {
    install_usr1(SA_RESTART);
    struct sockaddr_un a = full_listener("sndtimeo");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct timeval tv = { 2, 0 };
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    double t0 = now_ms();
    struct after *sig = after(50, usr1_waiter, 0);
    SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    printf("after %s, handler ran %d\n", timing(now_ms() - t0, 50), (int)hits);
    after_join(sig);
    unlink(a.sun_path);
}

/* ---------------------------------------------------------------- fd numbers */

/* The number the next open gets, as the program numbers its fds. */
static int next_fd(void) {
    int fd = open("/dev/null", O_RDONLY);
    close(fd);
    return fd;
}

static int expected_fd;
static void open_and_compare(int release) {
    int fd = open("/dev/null", O_RDONLY);
    printf("open during the wait: the number it would get without it: %d\n", fd == expected_fd);
    close(fd);
    if (release >= 0) close(release);
}

/* While waitpid waits for one child (or wait for any), the program's next open gets the
 * number it would get were nobody waiting. */
static void fd_numbers_while_waiting(int any) {
    int release;
    pid_t pid = child_until_closed(&release);
    expected_fd = next_fd();
    struct after *probe = after(50, open_and_compare, release);
    int status = 0;
    pid_t r = any ? wait(&status) : waitpid(pid, &status, 0);
    show_reaped(pid, r, status);
    after_join(probe);
    printf("after: the same number: %d\n", next_fd() == expected_fd);
}

CASE(waits_fd_numbers_while_waitpid_waits) { fd_numbers_while_waiting(0); }

CASE(waits_fd_numbers_while_wait_any_waits) { fd_numbers_while_waiting(1); }

/* The same while sigwaitinfo waits; the probe's thread ends the wait once it printed (two
 * timed threads raced on a loaded machine, natively too: the signal came first). */
static void open_compare_then_usr2(int unused) {
    open_and_compare(-1);
    usr2_process(unused);
}

CASE(waits_fd_numbers_while_sigwaitinfo_waits) {
    sigset_t s = usr2_blocked();
    expected_fd = next_fd();
    struct after *probe = after(50, open_compare_then_usr2, 0);
    int r = sigwaitinfo(&s, NULL);
    printf("sigwaitinfo: %s\n", r > 0 ? sigabbrev_np(r) : en(errno));
    after_join(probe);
}

/* ---------------------------------------------------------------- sendmmsg */

static int queued;
static char tail[4];

/* Reads every queued message, then the three sendmmsg sends (their bytes into `tail`). */
static void read_all(int fd) {
    char b[8];
    for (int i = 0; i < queued; i++) (void)!read(fd, b, sizeof b);
    for (int i = 0; i < 3; i++) (void)!read(fd, &tail[i], 1);
}

/* A blocking sendmmsg to a full socket waits for room for every message. */
CASE(waits_sendmmsg_waits_for_room_for_each_message) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    queued = 0;
    while (send(sv[0], "f", 1, 0) == 1) queued++;
    fcntl(sv[0], F_SETFL, 0);
    printf("filled: %d\n", queued > 0);
    struct iovec iov[3] = { { "a", 1 }, { "b", 1 }, { "c", 1 } };
    struct mmsghdr m[3];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    double t0 = now_ms();
    struct after *drain = after(50, read_all, sv[1]);
    SHOW("sendmmsg 3", sendmmsg(sv[0], m, 3, 0));
    printf("after %s\n", timing(now_ms() - t0, 50));
    after_join(drain);
    printf("received: %s\n", tail);
}
