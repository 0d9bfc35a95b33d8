/* libc's whole surface: the other names of hooked functions (fcntl64, sendfile64, ...)
 * behave as the hooked ones; ppoll/pselect/epoll_pwait let in what their signal mask
 * unblocks while they wait; pointer-returning hooks fail as libc does. */
#include "case.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

/* Writes until the socket or pipe is full (the fd is made non-blocking for it); returns
 * how many bytes went in. */
static long fill_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    static char chunk[4096];
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n <= 0) break;
        total += n;
    }
    fcntl(fd, F_SETFL, fl);
    return total;
}

/* Reads `want` bytes from fd after a pause (so the writer is blocked by then). */
struct drain { int fd; long want; long got; pthread_t t; };
static void *drain_main(void *p) {
    struct drain *d = p;
    msleep(100);
    static char buf[65536];
    while (d->got < d->want) {
        ssize_t n = read(d->fd, buf, sizeof buf);
        if (n <= 0) break;
        d->got += n;
    }
    return NULL;
}
static void drain_start(struct drain *d, int fd, long want) {
    d->fd = fd;
    d->want = want;
    d->got = 0;
    pthread_create(&d->t, NULL, drain_main, d);
}

static int nonblock(int fd, int (*getfl)(int, int, ...)) { return !!(getfl(fd, F_GETFL) & O_NONBLOCK); }

/* The lighttpd pattern: O_NONBLOCK set with fcntl64, a write to a full socket is EAGAIN at
 * once; cleared with fcntl64, the write waits for the reader. */
CASE(surface_fcntl64_nonblock_socket) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    printf("fresh: fcntl64 nonblock=%d fcntl nonblock=%d\n", nonblock(s[0], fcntl64), nonblock(s[0], fcntl));
    int fl = fcntl64(s[0], F_GETFL);
    SHOW("fcntl64 F_SETFL O_NONBLOCK", fcntl64(s[0], F_SETFL, fl | O_NONBLOCK));
    printf("set: fcntl64 nonblock=%d fcntl nonblock=%d\n", nonblock(s[0], fcntl64), nonblock(s[0], fcntl));
    static char chunk[4096];
    long total = 0;
    ssize_t n;
    double t0 = now_ms();
    while ((n = write(s[0], chunk, sizeof chunk)) > 0) total += n;
    printf("write to a full socket: ret=%zd errno=%s at once=%d\n", n, en(errno), now_ms() - t0 < 5000);
    SHOW("fcntl64 F_SETFL 0", fcntl64(s[0], F_SETFL, fl & ~O_NONBLOCK));
    printf("cleared: fcntl64 nonblock=%d fcntl nonblock=%d\n", nonblock(s[0], fcntl64), nonblock(s[0], fcntl));
    struct drain d;
    drain_start(&d, s[1], total + 100000);
    static char big[100000];
    t0 = now_ms();
    SHOW("blocking write", write(s[0], big, sizeof big));
    printf("waited for the reader=%d\n", now_ms() - t0 >= 50);
    pthread_join(d.t, NULL);
    printf("reader got all=%d\n", d.got == total + 100000);
}

/* Set with fcntl (the plain name), seen and cleared through fcntl64, and the reverse. */
CASE(surface_fcntl_and_fcntl64_share_the_view) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    fcntl(s[0], F_SETFL, fcntl(s[0], F_GETFL) | O_NONBLOCK);
    printf("set by fcntl: fcntl64 nonblock=%d\n", nonblock(s[0], fcntl64));
    char b;
    SHOW("read empty", read(s[0], &b, 1));
    fcntl64(s[0], F_SETFL, fcntl64(s[0], F_GETFL) & ~O_NONBLOCK);
    printf("cleared by fcntl64: fcntl nonblock=%d\n", nonblock(s[0], fcntl));
    struct after *a = after(100, write_x, s[1]);
    SHOW("read waits for the writer", read(s[0], &b, 1));
    after_join(a);
    int dup = fcntl64(s[0], F_DUPFD_CLOEXEC, 10);
    printf("fcntl64 F_DUPFD_CLOEXEC: at least 10=%d cloexec=%d nonblock=%d\n", dup >= 10,
           !!(fcntl64(dup, F_GETFD) & FD_CLOEXEC), nonblock(dup, fcntl64));
}

/* ioctl(FIONBIO) on, seen by fcntl64; a write to a full socket is EAGAIN; off again. */
CASE(surface_fionbio_seen_by_fcntl64) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    int on = 1, off = 0;
    SHOW("FIONBIO on", ioctl(s[0], FIONBIO, &on));
    printf("fcntl64 nonblock=%d\n", nonblock(s[0], fcntl64));
    long total = 0;
    ssize_t n;
    static char chunk[4096];
    while ((n = write(s[0], chunk, sizeof chunk)) > 0) total += n;
    printf("write to a full socket: ret=%zd errno=%s\n", n, en(errno));
    SHOW("FIONBIO off", ioctl(s[0], FIONBIO, &off));
    printf("fcntl64 nonblock=%d\n", nonblock(s[0], fcntl64));
    struct drain d;
    drain_start(&d, s[1], total + 10000);
    static char big[10000];
    SHOW("blocking write", write(s[0], big, sizeof big));
    pthread_join(d.t, NULL);
}

/* sendfile64 into a full pipe and a full socket waits for the reader, as sendfile does. */
CASE(surface_sendfile64_waits_for_room) {
    char path[] = "/tmp/surface_sendfile64_XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    SHOW("write the file", write(f, "abc", 3));
    int p[2];
    pipe(p);
    long queued = fill_nonblocking(p[1]);
    struct drain d;
    drain_start(&d, p[0], queued + 3);
    off_t off = 0;
    SHOW("sendfile64 to a full pipe", sendfile64(p[1], f, &off, 3));
    pthread_join(d.t, NULL);
    printf("offset=%ld reader got all=%d\n", (long)off, d.got == queued + 3);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    queued = fill_nonblocking(s[0]);
    drain_start(&d, s[1], queued + 3);
    off = 0;
    SHOW("sendfile64 to a full socket", sendfile64(s[0], f, &off, 3));
    pthread_join(d.t, NULL);
    printf("offset=%ld reader got all=%d\n", (long)off, d.got == queued + 3);
}

/* Positioned reads and writes never wait on pipes and sockets: they have no position. */
CASE(surface_pread64_pwrite64_unseekable) {
    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    char b[4];
    SHOW("pread64 pipe", pread64(p[0], b, 4, 0));
    SHOW("pwrite64 pipe", pwrite64(p[1], "x", 1, 0));
    SHOW("pread64 socket", pread64(s[0], b, 4, 0));
    SHOW("pwrite64 socket", pwrite64(s[0], "x", 1, 0));
    struct iovec v = { b, 4 };
    SHOW("preadv64 pipe", preadv64(p[0], &v, 1, 0));
    SHOW("pwritev64 socket", pwritev64(s[0], &v, 1, 0));
    SHOW("preadv64v2 pipe at the position, nothing queued, RWF_NOWAIT",
         preadv64v2(p[0], &v, 1, -1, RWF_NOWAIT));
}

/* copy_file_range takes regular files only: pipes and sockets are EINVAL at once. */
CASE(surface_copy_file_range_unseekable) {
    int p[2], q[2], s[2];
    pipe(p);
    pipe(q);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    SHOW("pipe -> pipe", copy_file_range(p[0], NULL, q[1], NULL, 4, 0));
    SHOW("socket -> pipe", copy_file_range(s[0], NULL, q[1], NULL, 4, 0));
    SHOW("pipe -> socket", copy_file_range(p[0], NULL, s[0], NULL, 4, 0));
}

/* ---- Signal masks of ppoll, pselect and epoll_pwait ------------------------------------ */

static volatile sig_atomic_t handled;
static void on_usr(int sig) { (void)sig; handled++; }

/* SIGUSR1 and SIGUSR2 get a handler without SA_RESTART; the calling thread blocks
 * `blocked` (threads it creates inherit that). */
static void masks_setup(int blocked) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    if (blocked) sigaddset(&set, blocked);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    handled = 0;
}

static void show_mask_after(void) {
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    printf("after: handled=%d usr1 blocked=%d usr2 blocked=%d\n", (int)handled,
           sigismember(&now, SIGUSR1), sigismember(&now, SIGUSR2));
}

/* kill(getpid()) from a thread that blocks the signal, after a pause: process-directed,
 * so only a thread that does not block it takes it. */
static void *kill_later(void *arg) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    msleep(100);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

enum waiter { PSELECT, PPOLL, EPOLL_PWAIT };

/* One wait of `kind` on a pipe nobody writes, with the signal mask `mask` and a timeout
 * of `ms` (-1: none); prints what it returned and whether it came back before 7.5 s. */
static void masked_wait(enum waiter kind, const sigset_t *mask, long ms) {
    int p[2];
    pipe(p);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    const struct timespec *timeout = ms < 0 ? NULL : &ts;
    double t0 = now_ms();
    int r, e;
    errno = 0;
    if (kind == PSELECT) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(p[0], &set);
        r = pselect(p[0] + 1, &set, NULL, NULL, timeout, mask);
    } else if (kind == PPOLL) {
        struct pollfd pfd = { p[0], POLLIN, 0 };
        r = ppoll(&pfd, 1, timeout, mask);
    } else {
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN };
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
        r = epoll_pwait(ep, &ev, 1, (int)ms, mask);
    }
    e = errno;
    printf("wait: ret=%d errno=%s handled during=%d soon=%d\n", r, r < 0 ? en(e) : "0",
           (int)handled, now_ms() - t0 < 7500);
}

/* The thread blocks SIGUSR1; the call's mask lets it in; another thread sends it. */
static void signal_from_thread(enum waiter kind, long ms) {
    masks_setup(SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    pthread_t t;
    pthread_create(&t, NULL, kill_later, (void *)(intptr_t)SIGUSR1);
    masked_wait(kind, &none, ms);
    pthread_join(t, NULL);
    show_mask_after();
}

CASE(surface_pselect_mask_signal_from_thread_no_timeout) { signal_from_thread(PSELECT, -1); }
CASE(surface_pselect_mask_signal_from_thread_timeout) { signal_from_thread(PSELECT, 15000); }
CASE(surface_ppoll_mask_signal_from_thread_no_timeout) { signal_from_thread(PPOLL, -1); }
CASE(surface_ppoll_mask_signal_from_thread_timeout) { signal_from_thread(PPOLL, 15000); }
CASE(surface_epoll_pwait_mask_signal_from_thread) { signal_from_thread(EPOLL_PWAIT, 15000); }

/* The same signal from a child process (make's jobserver wait with SIGCHLD pending). */
static void signal_from_child(enum waiter kind, long ms) {
    masks_setup(SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = fork();
    if (pid == 0) {
        msleep(100);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    masked_wait(kind, &none, ms);
    int status;
    waitpid(pid, &status, 0);
    show_mask_after();
}

CASE(surface_pselect_mask_signal_from_child_no_timeout) { signal_from_child(PSELECT, -1); }
CASE(surface_ppoll_mask_signal_from_child_timeout) { signal_from_child(PPOLL, 15000); }

/* Pending before the call: the call's mask lets it in at once. */
static void signal_pending_before(enum waiter kind, long ms) {
    masks_setup(SIGUSR1);
    kill(getpid(), SIGUSR1);
    printf("before: handled=%d\n", (int)handled);
    sigset_t none;
    sigemptyset(&none);
    masked_wait(kind, &none, ms);
    show_mask_after();
}

CASE(surface_pselect_mask_signal_pending_before) { signal_pending_before(PSELECT, -1); }
CASE(surface_ppoll_mask_signal_pending_before) { signal_pending_before(PPOLL, 15000); }
CASE(surface_epoll_pwait_mask_signal_pending_before) { signal_pending_before(EPOLL_PWAIT, -1); }

/* The reverse: the thread takes SIGUSR2, the call's mask blocks it. It waits out its
 * timeout, and the handler runs once the call has put the thread's mask back. */
static void signal_blocked_by_call(enum waiter kind) {
    masks_setup(0);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_t t;
    pthread_create(&t, NULL, kill_later, (void *)(intptr_t)SIGUSR2);
    masked_wait(kind, &usr2, 3000);
    pthread_join(t, NULL);
    show_mask_after();
}

CASE(surface_pselect_mask_blocks_signal) { signal_blocked_by_call(PSELECT); }
CASE(surface_ppoll_mask_blocks_signal) { signal_blocked_by_call(PPOLL); }

/* A signal the call's mask blocks, already pending: the call ignores it. */
CASE(surface_ppoll_mask_keeps_pending_blocked) {
    masks_setup(SIGUSR1);
    kill(getpid(), SIGUSR1);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    masked_wait(PPOLL, &usr1, 100);
    show_mask_after();
    sigset_t pending;
    sigpending(&pending);
    printf("still pending=%d\n", sigismember(&pending, SIGUSR1));
}

/* ---- Pointer-returning hooks fail as libc does ----------------------------------------- */

#define SHOWSTREAM(what, expr)                                                       \
    do {                                                                             \
        errno = 0;                                                                   \
        FILE *show_f_ = (expr);                                                      \
        int show_e_ = errno;                                                         \
        printf("%s: %s errno=%s\n", what, show_f_ ? "stream" : "NULL",               \
               show_f_ ? "0" : en(show_e_));                                         \
    } while (0)

/* popen needs two fds for its pipe: with one free, NULL and EMFILE; with two, a stream. */
CASE(surface_popen_out_of_fds) {
    struct rlimit rl = { 64, 64 };
    setrlimit(RLIMIT_NOFILE, &rl);
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
    printf("open at the limit: errno=%s\n", en(errno));
    close(last);
    SHOWSTREAM("popen with one fd free", popen("echo hi", "r"));
    close(last - 1);
    FILE *f = popen("echo hi", "r");
    SHOWSTREAM("popen with two fds free", f);
    char line[16] = "";
    if (f && fgets(line, sizeof line, f)) printf("read: %s", line);
    if (f) printf("pclose: exited=%d\n", WIFEXITED(pclose(f)));
}

/* glibc's other names for popen and fdopen fail the same way. */
extern FILE *_IO_popen(const char *cmd, const char *mode);
extern FILE *_IO_fdopen(int fd, const char *mode);
CASE(surface_io_popen_io_fdopen_errors) {
    SHOWSTREAM("_IO_popen bad mode", _IO_popen("true", "x"));
    SHOWSTREAM("_IO_popen rw", _IO_popen("true", "rw"));
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    SHOWSTREAM("_IO_fdopen bad mode", _IO_fdopen(s[0], "z"));
    close(s[1]);
    SHOWSTREAM("_IO_fdopen closed fd", _IO_fdopen(s[1], "r"));
    FILE *f = _IO_popen("echo hi", "r");
    char line[16] = "";
    if (f && fgets(line, sizeof line, f)) printf("_IO_popen read: %s", line);
    if (f) printf("pclose: exited=%d\n", WIFEXITED(pclose(f)));
}

/* fdopen on a closed or out-of-range fd, and with modes the fd does not allow. */
CASE(surface_fdopen_errors) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    SHOWSTREAM("fdopen -1", fdopen(-1, "r"));
    SHOWSTREAM("fdopen huge", fdopen(1 << 30, "r"));
    SHOWSTREAM("fdopen bad mode socket", fdopen(s[0], "q"));
    int p[2];
    pipe(p);
    SHOWSTREAM("fdopen w on the read end", fdopen(p[0], "w"));
    SHOWSTREAM("fdopen r on the write end", fdopen(p[1], "r"));
}

/* signal() and its other names return SIG_ERR with EINVAL for bad signal numbers. */
extern __sighandler_t ssignal(int sig, __sighandler_t handler);
extern __sighandler_t bsd_signal(int sig, __sighandler_t handler);
CASE(surface_signal_names_errors) {
    int sigs[] = { 0, -1, SIGKILL, SIGSTOP, 65 };
    for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        errno = 0;
        int bad = signal(sigs[i], on_usr) == SIG_ERR;
        int e1 = errno;
        errno = 0;
        int bad2 = ssignal(sigs[i], on_usr) == SIG_ERR;
        int e2 = errno;
        errno = 0;
        int bad3 = sysv_signal(sigs[i], on_usr) == SIG_ERR;
        int e3 = errno;
        errno = 0;
        int bad4 = bsd_signal(sigs[i], on_usr) == SIG_ERR;
        int e4 = errno;
        printf("sig %d: signal %d %s ssignal %d %s sysv_signal %d %s bsd_signal %d %s\n", sigs[i],
               bad, en(e1), bad2, en(e2), bad3, en(e3), bad4, en(e4));
    }
}

/* pthread_getspecific of a key deleted, never created, or out of range: NULL, errno
 * untouched. */
CASE(surface_getspecific_bad_keys) {
    pthread_key_t k;
    pthread_key_create(&k, NULL);
    pthread_setspecific(k, (void *)0x1234);
    printf("set: %d\n", pthread_getspecific(k) == (void *)0x1234);
    pthread_key_delete(k);
    pthread_key_t bad[] = { k, k + 1, 1023, 1024, 100000, (pthread_key_t)-1 };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        void *v = pthread_getspecific(bad[i]);
        printf("key %u: %s errno=%s\n", i, v ? "value" : "NULL", en(errno));
    }
}

/* A green thread other than main waits; main, blocking the signal, sends it. */
static void *ppoll_unblocking(void *arg) {
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    masked_wait(PPOLL, &none, -1);
    return NULL;
}

CASE(surface_ppoll_mask_in_thread_signal_from_main) {
    masks_setup(SIGUSR1);
    pthread_t t;
    pthread_create(&t, NULL, ppoll_unblocking, NULL);
    msleep(100);
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    printf("main: handled=%d\n", (int)handled);
}

/* make's jobserver: SIGCHLD blocked, pselect lets it in, a child exits meanwhile. */
static volatile sig_atomic_t children;
static void on_chld(int sig) { (void)sig; children++; }

CASE(surface_pselect_sigchld_from_exiting_child) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid_t pid = fork();
    if (pid == 0) {
        msleep(100);
        _exit(3);
    }
    int p[2];
    pipe(p);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(p[0], &set);
    errno = 0;
    int r = pselect(p[0] + 1, &set, NULL, NULL, NULL, &old);
    printf("pselect: ret=%d errno=%s children=%d\n", r, r < 0 ? en(errno) : "0", (int)children);
    int status;
    SHOW("reaped", waitpid(pid, &status, 0) == pid);
    printf("exit=%d\n", WEXITSTATUS(status));
}

/* ---- sendfile from a socket: it waits for data too ------------------------------------ */

static void write_abcd(int fd) { (void)!write(fd, "abcd", 4); }

/* From an empty socket into a pipe, a file and (via sendfile64) a pipe again: each waits
 * for the writer; from an O_NONBLOCK socket, EAGAIN at once. */
CASE(surface_sendfile_from_empty_socket_waits) {
    int s[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    pipe(p);
    struct after *a = after(100, write_abcd, s[1]);
    double t0 = now_ms();
    SHOW("sendfile socket -> pipe", sendfile(p[1], s[0], NULL, 16));
    printf("waited=%d\n", now_ms() - t0 >= 50);
    after_join(a);
    char b[16];
    SHOW("read the pipe", read(p[0], b, sizeof b));
    char path[] = "/tmp/surface_sendfile_XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    a = after(100, write_abcd, s[1]);
    SHOW("sendfile socket -> file", sendfile(f, s[0], NULL, 16));
    after_join(a);
    SHOW("pread the file", pread(f, b, sizeof b, 0));
    SHOW("read what the file did not take", read(s[0], b, sizeof b));
    a = after(100, write_abcd, s[1]);
    SHOW("sendfile64 socket -> pipe", sendfile64(p[1], s[0], NULL, 2));
    after_join(a);
    SHOW("sendfile64 the rest", sendfile64(p[1], s[0], NULL, 16));
    fcntl(s[0], F_SETFL, fcntl(s[0], F_GETFL) | O_NONBLOCK);
    SHOW("sendfile from an empty O_NONBLOCK socket", sendfile(p[1], s[0], NULL, 16));
    close(s[1]);
    SHOW("sendfile after the peer closed", sendfile(p[1], s[0], NULL, 16));
}

/* From a socket with data into a full pipe: EAGAIN if the pipe is O_NONBLOCK, else it
 * waits for the pipe's reader (also when the socket is O_NONBLOCK). */
CASE(surface_sendfile_from_socket_into_full_pipe) {
    int s[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    pipe(p);
    write_abcd(s[1]);
    long queued = fill_nonblocking(p[1]);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    SHOW("sendfile, pipe O_NONBLOCK", sendfile(p[1], s[0], NULL, 4));
    fcntl(p[1], F_SETFL, 0);
    fcntl(s[0], F_SETFL, fcntl(s[0], F_GETFL) | O_NONBLOCK);
    struct drain d;
    drain_start(&d, p[0], queued + 4);
    SHOW("sendfile, socket O_NONBLOCK", sendfile(p[1], s[0], NULL, 4));
    pthread_join(d.t, NULL);
    printf("reader got all=%d\n", d.got == queued + 4);
    queued = fill_nonblocking(p[1]);
    write_abcd(s[1]);
    fcntl(s[0], F_SETFL, fcntl(s[0], F_GETFL) & ~O_NONBLOCK);
    drain_start(&d, p[0], queued + 4);
    SHOW("sendfile, both blocking", sendfile(p[1], s[0], NULL, 4));
    pthread_join(d.t, NULL);
    printf("reader got all=%d\n", d.got == queued + 4);
}

/* Into a full pipe from an empty O_NONBLOCK socket: the wait for room comes first, then
 * the socket says EAGAIN. */
CASE(surface_sendfile_full_pipe_then_empty_nonblocking_socket) {
    int s[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    pipe(p);
    long queued = fill_nonblocking(p[1]);
    fcntl(s[0], F_SETFL, fcntl(s[0], F_GETFL) | O_NONBLOCK);
    struct drain d;
    drain_start(&d, p[0], queued);
    double t0 = now_ms();
    SHOW("sendfile", sendfile(p[1], s[0], NULL, 4));
    printf("waited for room=%d\n", now_ms() - t0 >= 50);
    pthread_join(d.t, NULL);
}
