/* The waiting family: poll, ppoll, select, pselect, epoll_create1/ctl/wait/pwait/pwait2
 * on the program's own fds, and the sleeps (sleep, usleep, nanosleep, clock_nanosleep):
 * timeouts (zero, negative, small, huge), invalid arguments (EFAULT, EINVAL, EBADF),
 * hangups and errors, readiness arriving from another thread while parked. */
#include "case.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

static void drain(int fd) {
    char b[4096];
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (read(fd, b, sizeof b) > 0) {}
    fcntl(fd, F_SETFL, fl);
}

static void fill_pipe(int wfd) {
    int fl = fcntl(wfd, F_GETFL);
    fcntl(wfd, F_SETFL, fl | O_NONBLOCK);
    static char buf[4096];
    while (write(wfd, buf, sizeof buf) > 0) {}
    fcntl(wfd, F_SETFL, fl);
}

static void show_elapsed(double t0, double expected) {
    printf("time=%s\n", timing(now_ms() - t0, expected));
}

/* revents as names, for stable output (a few buffers, so one printf can show several). */
static const char *ev_names(int ev) {
    static char bufs[4][128];
    static int next;
    char *buf = bufs[next++ % 4];
    buf[0] = 0;
    struct { int bit; const char *name; } names[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"},
        {POLLHUP, "HUP"}, {POLLNVAL, "NVAL"}, {POLLRDHUP, "RDHUP"},
        {POLLRDNORM, "RDNORM"}, {POLLWRNORM, "WRNORM"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ev & names[i].bit) {
            strcat(buf, buf[0] ? "|" : "");
            strcat(buf, names[i].name);
        }
    return buf[0] ? buf : "0";
}

static struct timespec ts_ms(long ms) {
    return (struct timespec){ms / 1000, (ms % 1000) * 1000000L};
}

static struct timespec ts_add_ms(clockid_t clock, long ms) {
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000L;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* The soft RLIMIT_NOFILE, first lowered to at most 4096 (so cases behave alike
 * everywhere). Called before the case's first hooked call. */
static long rlimit_nofile(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096) {
        rl.rlim_cur = 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

/* ---- poll -------------------------------------------------------------------------- */

CASE(pt_poll_zero_timeout) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    SHOW("poll empty, 0", poll(&f, 1, 0));
    printf("revents=%s\n", ev_names(f.revents));
    write(p[1], "x", 1);
    SHOW("poll data, 0", poll(&f, 1, 0));
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_nfds0) {
    double t0 = now_ms();
    SHOW("poll(NULL, 0, 0)", poll(NULL, 0, 0));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("poll(NULL, 0, 50)", poll(NULL, 0, 50));
    show_elapsed(t0, 50);
    t0 = now_ms();
    SHOW("poll(bad ptr, 0, 30)", poll(BADPTR, 0, 30));
    show_elapsed(t0, 30);
}

CASE(pt_poll_timeout_expires) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    SHOW("poll(100)", poll(&f, 1, 100));
    show_elapsed(t0, 100);
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_ready_returns_at_once) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct pollfd f[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    double t0 = now_ms();
    SHOW("poll(1000)", poll(f, 2, 1000));
    show_elapsed(t0, 0);
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
}

CASE(pt_poll_infinite_data_from_thread) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(60, write_x, p[1]);
    SHOW("poll(-1)", poll(&f, 1, -1));
    show_elapsed(t0, 60);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_poll_other_negative_timeout_is_infinite) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(60, write_x, p[1]);
    SHOW("poll(-5)", poll(&f, 1, -5));
    show_elapsed(t0, 60);
    after_join(a);
    f.revents = 0;
    read(p[0], (char[2]){0}, 1);
    t0 = now_ms();
    a = after(40, write_x, p[1]);
    SHOW("poll(INT_MIN)", poll(&f, 1, INT_MIN));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(pt_poll_huge_timeout_data_from_thread) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("poll(INT_MAX)", poll(&f, 1, INT_MAX));
    show_elapsed(t0, 50);
    after_join(a);
}

CASE(pt_poll_efault_zero_timeout) {
    SHOW("poll(bad ptr, 1, 0)", poll(BADPTR, 1, 0));
    SHOW("poll(NULL, 1, 0)", poll(NULLPTR, 1, 0));
}

CASE(pt_poll_efault_with_timeout) {
    double t0 = now_ms();
    SHOW("poll(bad ptr, 1, 100)", poll(BADPTR, 1, 100));
    SHOW("poll(NULL, 1, 100)", poll(NULLPTR, 1, 100));
    show_elapsed(t0, 0);
}

CASE(pt_poll_efault_infinite) {
    alarm(2);
    SHOW("poll(bad ptr, 2, -1)", poll(BADPTR, 2, -1));
    alarm(0);
}

/* nfds above RLIMIT_NOFILE: EINVAL, even with a valid (large) array. */
CASE(pt_poll_nfds_over_rlimit) {
    long n = rlimit_nofile() + 1;
    struct pollfd *f = calloc(n, sizeof *f);
    for (long i = 0; i < n; i++) f[i].fd = -1;
    SHOW("poll(RLIMIT+1, 0)", poll(f, n, 0));
    double t0 = now_ms();
    SHOW("poll(RLIMIT+1, 100)", poll(f, n, 100));
    show_elapsed(t0, 0);
    SHOW("poll(RLIMIT, 0)", poll(f, n - 1, 0));
    free(f);
}

/* A huge nfds with a one-entry array: EINVAL before the array is read. */
CASE(pt_poll_nfds_huge) {
    alarm(2);
    struct pollfd f = {-1, POLLIN, 0};
    SHOW("poll(1<<40, 0)", poll(&f, (nfds_t)opaque(1L << 40), 0));
    SHOW("poll(1<<40, 100)", poll(&f, (nfds_t)opaque(1L << 40), 100));
    SHOW("poll(-1 nfds, 100)", poll(&f, (nfds_t)opaque(-1), 100));
    alarm(0);
}

CASE(pt_poll_pollnval_closed_fd) {
    int p[2];
    pipe(p);
    close(p[0]);
    struct pollfd f[2] = {{p[0], POLLIN, 0}, {9999, POLLOUT, 0}};
    double t0 = now_ms();
    SHOW("poll closed fds (100)", poll(f, 2, 100));
    show_elapsed(t0, 0);
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
}

CASE(pt_poll_negative_fd_ignored) {
    int p[2];
    pipe(p);
    struct pollfd f[3] = {{-1, POLLIN, 77}, {-p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    SHOW("poll", poll(f, 3, 50));
    printf("revents=%s,%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents),
           ev_names(f[2].revents));
    struct pollfd g = {-1, POLLIN, 0};
    double t0 = now_ms();
    SHOW("poll only negative (40)", poll(&g, 1, 40));
    show_elapsed(t0, 40);
}

CASE(pt_poll_pollhup_pipe) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    close(p[1]);
    struct pollfd f = {p[0], POLLIN, 0};
    SHOW("poll data+hup", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
    read(p[0], (char[2]){0}, 1);
    SHOW("poll hup only", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
    f.events = 0;
    SHOW("poll events 0", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_pollerr_pipe_write_end) {
    int p[2];
    pipe(p);
    close(p[0]);
    struct pollfd f = {p[1], POLLOUT, 0};
    SHOW("poll", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
    f.events = POLLIN;
    SHOW("poll POLLIN on write end", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_rdhup_socketpair_shutdown) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct pollfd f = {s[0], POLLIN | POLLRDHUP, 0};
    SHOW("poll before", poll(&f, 1, 0));
    shutdown(s[1], SHUT_WR);
    SHOW("poll after peer SHUT_WR", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
    f.events = POLLOUT;
    SHOW("poll POLLOUT", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_hup_socketpair_close) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    struct pollfd f = {s[0], POLLIN | POLLOUT | POLLRDHUP, 0};
    SHOW("poll after peer close", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
}

CASE(pt_poll_hup_arrives_while_parked) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(50, close_fd, p[1]);
    SHOW("poll(-1)", poll(&f, 1, -1));
    show_elapsed(t0, 50);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_poll_events0_err_arrives_while_parked) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[1], 0, 0};
    double t0 = now_ms();
    struct after *a = after(50, close_fd, p[0]);
    SHOW("poll(events 0, 1000)", poll(&f, 1, 1000));
    show_elapsed(t0, 50);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_poll_rdhup_arrives_while_parked) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct pollfd f = {s[0], POLLRDHUP, 0};
    int peer = s[1];
    double t0 = now_ms();
    struct after *a = after(50, close_fd, peer);
    SHOW("poll(POLLRDHUP, 1000)", poll(&f, 1, 1000));
    show_elapsed(t0, 50);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_poll_many_fds) {
    enum { N = 200 };
    int p[N][2];
    struct pollfd f[N];
    for (int i = 0; i < N; i++) {
        pipe(p[i]);
        f[i] = (struct pollfd){p[i][0], POLLIN, 0};
    }
    double t0 = now_ms();
    struct after *a = after(40, write_x, p[137][1]);
    SHOW("poll 200 fds", poll(f, N, 2000));
    show_elapsed(t0, 40);
    for (int i = 0; i < N; i++)
        if (f[i].revents) printf("ready index=%d revents=%s\n", i, ev_names(f[i].revents));
    after_join(a);
}

CASE(pt_poll_pollout_after_thread_drains) {
    int p[2];
    pipe(p);
    fill_pipe(p[1]);
    struct pollfd f = {p[1], POLLOUT, 0};
    SHOW("poll full pipe (0)", poll(&f, 1, 0));
    double t0 = now_ms();
    struct after *a = after(50, drain, p[0]);
    SHOW("poll full pipe (-1)", poll(&f, 1, -1));
    show_elapsed(t0, 50);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_poll_regular_file_and_dev_null) {
    char path[] = "/tmp/greenify-diff-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    int n = open("/dev/null", O_RDWR);
    struct pollfd f[2] = {{fd, POLLIN | POLLOUT, 0}, {n, POLLIN | POLLOUT, 0}};
    SHOW("poll file, /dev/null", poll(f, 2, -1));
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
    close(fd);
}

CASE(pt_poll_same_fd_twice) {
    int p[2];
    pipe(p);
    struct pollfd f[2] = {{p[0], POLLIN, 0}, {p[0], POLLIN | POLLPRI, 0}};
    struct after *a = after(30, write_x, p[1]);
    SHOW("poll", poll(f, 2, 1000));
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
    after_join(a);
}

CASE(pt_poll_pollpri_only_times_out) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct pollfd f = {p[0], POLLPRI, 0};
    double t0 = now_ms();
    struct after *a = after(20, write_x, p[1]);
    SHOW("poll(POLLPRI, 80)", poll(&f, 1, 80));
    show_elapsed(t0, 80);
    after_join(a);
}

/* Natively a poll already waiting keeps its own reference to the file: a close from
 * another thread does not wake it; the timeout does, and the fd is then reported
 * POLLNVAL. */
CASE(pt_poll_fd_closed_by_thread_while_parked) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(50, close_fd, p[0]);
    SHOW("poll(300)", poll(&f, 1, 300));
    show_elapsed(t0, 300);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

/* The second writer starts once the first poll has returned: had it started with the
 * first, on a loaded machine its write could land before that poll returned (natively too:
 * both fds ready). */
CASE(pt_poll_readiness_from_two_threads) {
    int p[2], q[2];
    pipe(p);
    pipe(q);
    struct pollfd f[2] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}};
    double t0 = now_ms();
    struct after *a = after(40, write_x, q[1]);
    SHOW("poll first", poll(f, 2, -1));
    show_elapsed(t0, 40);
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
    f[1].fd = -1;
    double t1 = now_ms();
    struct after *b = after(110, write_x, p[1]);
    SHOW("poll second", poll(f, 2, -1));
    show_elapsed(t1, 110);
    printf("revents=%s,%s\n", ev_names(f[0].revents), ev_names(f[1].revents));
    after_join(a);
    after_join(b);
}

/* ---- ppoll ------------------------------------------------------------------------- */

CASE(pt_ppoll_null_timeout_data_from_thread) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("ppoll(NULL)", ppoll(&f, 1, NULL, NULL));
    show_elapsed(t0, 50);
    printf("revents=%s\n", ev_names(f.revents));
    after_join(a);
}

CASE(pt_ppoll_zero_and_small_timeouts) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    struct timespec z = {0, 0}, t = ts_ms(40);
    double t0 = now_ms();
    SHOW("ppoll({0,0})", ppoll(&f, 1, &z, NULL));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("ppoll(40ms)", ppoll(&f, 1, &t, NULL));
    show_elapsed(t0, 40);
    t0 = now_ms();
    SHOW("ppoll(nfds 0, 40ms)", ppoll(NULL, 0, &t, NULL));
    show_elapsed(t0, 40);
}

/* glibc's ppoll hands the kernel a copy: the caller's timespec is left alone. */
CASE(pt_ppoll_leaves_timespec_alone) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    struct timespec t = ts_ms(30);
    SHOW("ppoll(30ms) times out", ppoll(&f, 1, &t, NULL));
    printf("timespec=%ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
    write(p[1], "x", 1);
    t = ts_ms(500);
    SHOW("ppoll(500ms) ready", ppoll(&f, 1, &t, NULL));
    printf("timespec=%ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
}

CASE(pt_ppoll_invalid_timespec) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    struct pollfd f = {p[0], POLLIN, 0};
    struct timespec bad1 = {0, 1000000000L}, bad2 = {0, -1}, bad3 = {-1, 0};
    SHOW("ppoll(nsec 1e9)", ppoll(&f, 1, &bad1, NULL));
    SHOW("ppoll(nsec -1)", ppoll(&f, 1, &bad2, NULL));
    SHOW("ppoll(sec -1)", ppoll(&f, 1, &bad3, NULL));
    SHOW("ppoll(nsec 1e9, nfds 0)", ppoll(NULL, 0, &bad1, NULL));
}

CASE(pt_ppoll_timespec_efault) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    SHOW("ppoll(timespec bad ptr)", ppoll(&f, 1, BADPTR, NULL));
}

CASE(pt_ppoll_fds_efault) {
    struct timespec t = ts_ms(100);
    double t0 = now_ms();
    SHOW("ppoll(fds bad ptr, 100ms)", ppoll(BADPTR, 1, &t, NULL));
    SHOW("ppoll(fds NULL, NULL timeout)", ppoll(NULLPTR, 1, NULL, NULL));
    show_elapsed(t0, 0);
}

CASE(pt_ppoll_with_sigmask) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    struct timespec t = ts_ms(40);
    double t0 = now_ms();
    SHOW("ppoll(40ms, mask)", ppoll(&f, 1, &t, &mask));
    show_elapsed(t0, 40);
    struct after *a = after(30, write_x, p[1]);
    SHOW("ppoll(NULL, mask)", ppoll(&f, 1, NULL, &mask));
    after_join(a);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("SIGUSR1 blocked after=%d\n", sigismember(&now, SIGUSR1));
}

CASE(pt_ppoll_nfds_over_rlimit) {
    long n = rlimit_nofile() + 1;
    struct pollfd *f = calloc(n, sizeof *f);
    for (long i = 0; i < n; i++) f[i].fd = -1;
    struct timespec t = ts_ms(100);
    double t0 = now_ms();
    SHOW("ppoll(RLIMIT+1, 100ms)", ppoll(f, n, &t, NULL));
    show_elapsed(t0, 0);
    free(f);
}

/* ---- select ------------------------------------------------------------------------ */

CASE(pt_select_timeout_writes_back_zero) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 50000};
    double t0 = now_ms();
    SHOW("select(50ms)", select(p[0] + 1, &r, NULL, NULL, &tv));
    show_elapsed(t0, 50);
    printf("tv=%ld.%06ld isset=%d\n", (long)tv.tv_sec, (long)tv.tv_usec, FD_ISSET(p[0], &r));
    tv = (struct timeval){0, 40000};
    t0 = now_ms();
    SHOW("select(0 fds, 40ms)", select(0, NULL, NULL, NULL, &tv));
    show_elapsed(t0, 40);
    printf("tv=%ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
}

CASE(pt_select_ready_writes_back_remaining) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {1, 0};
    struct after *a = after(30, write_x, p[1]);
    SHOW("select(1s)", select(p[0] + 1, &r, NULL, NULL, &tv));
    printf("isset=%d remaining_sec=%ld remaining_in_0.8..1s=%d\n", FD_ISSET(p[0], &r),
           (long)tv.tv_sec, tv.tv_sec == 0 && tv.tv_usec > 800000);
    after_join(a);
}

CASE(pt_select_null_timeout_data_from_thread) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("select(NULL)", select(p[0] + 1, &r, NULL, NULL, NULL));
    show_elapsed(t0, 50);
    printf("isset=%d\n", FD_ISSET(p[0], &r));
    after_join(a);
}

CASE(pt_select_zero_timeout) {
    int p[2];
    pipe(p);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    SHOW("select(0)", select(p[1] + 1, &r, &w, NULL, &tv));
    printf("r=%d w=%d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
}

CASE(pt_select_sets_written_back) {
    int p[2], q[2];
    pipe(p);
    pipe(q);
    write(q[1], "x", 1);
    fd_set r, w, e;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    FD_SET(p[0], &r);
    FD_SET(q[0], &r);
    FD_SET(p[1], &w);
    FD_SET(p[0], &e);
    struct timeval tv = {1, 0};
    SHOW("select", select(q[1] + 1, &r, &w, &e, &tv));
    printf("r: p=%d q=%d  w: p=%d  e: p=%d\n", FD_ISSET(p[0], &r), FD_ISSET(q[0], &r),
           FD_ISSET(p[1], &w), FD_ISSET(p[0], &e));
}

static volatile sig_atomic_t pt_select_done;
static pthread_t pt_select_waiter;
static void pt_noop_handler(int sig) { (void)sig; }
static void *pt_kick_until_done(void *arg) {
    (void)arg;
    while (!pt_select_done) {
        pthread_kill(pt_select_waiter, SIGUSR1);
        usleep(10000);
    }
    return NULL;
}

/* A select ended by a signal leaves the program's sets as they were (the kernel writes them
 * back only on success): Python's retry after EINTR selects on them again. */
CASE(pt_select_eintr_keeps_the_sets) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pt_noop_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    pipe(p);
    fd_set r, e;
    FD_ZERO(&r);
    FD_ZERO(&e);
    FD_SET(p[0], &r);
    FD_SET(p[0], &e);
    pt_select_waiter = pthread_self();
    pthread_t kicker;
    pthread_create(&kicker, NULL, pt_kick_until_done, NULL);
    struct timeval tv = {10, 0};
    SHOW("select", select(p[0] + 1, &r, NULL, &e, &tv));
    pt_select_done = 1;
    pthread_join(kicker, NULL);
    printf("r: %d e: %d\n", FD_ISSET(p[0], &r), FD_ISSET(p[0], &e));
}

CASE(pt_select_bad_fd_ebadf) {
    int p[2];
    pipe(p);
    close(p[1]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(p[1], &r);
    struct timeval tv = {0, 0};
    SHOW("select closed fd (0)", select(p[1] + 1, &r, NULL, NULL, &tv));
    FD_ZERO(&r);
    FD_SET(p[1], &r);
    tv = (struct timeval){0, 100000};
    double t0 = now_ms();
    SHOW("select closed fd (100ms)", select(p[1] + 1, &r, NULL, NULL, &tv));
    show_elapsed(t0, 0);
    FD_ZERO(&r);
    FD_SET(p[1], &r);
    SHOW("select closed fd (NULL)", select(p[1] + 1, &r, NULL, NULL, NULL));
}

CASE(pt_select_einval) {
    struct timeval tv = {0, 0};
    SHOW("select(nfds -1)", select(-1, NULL, NULL, NULL, &tv));
    tv = (struct timeval){0, -1};
    SHOW("select(usec -1)", select(0, NULL, NULL, NULL, &tv));
    tv = (struct timeval){-1, 0};
    SHOW("select(sec -1)", select(0, NULL, NULL, NULL, &tv));
    tv = (struct timeval){0, 10000};
    SHOW("select(nfds -1, 10ms)", select(-1, NULL, NULL, NULL, &tv));
}

/* tv_usec of a million or more is accepted and normalised. */
CASE(pt_select_unnormalised_timeval) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 1500000};
    SHOW("select(usec 1500000) ready", select(p[0] + 1, &r, NULL, NULL, &tv));
    printf("tv_sec=%ld usec_valid=%d\n", (long)tv.tv_sec, tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    FD_ZERO(&r);
    int q[2];
    pipe(q);
    FD_SET(q[0], &r);
    tv = (struct timeval){0, 1000000 + 40000 - 1000000};
    tv.tv_usec = 40000;
    double t0 = now_ms();
    SHOW("select(40ms) idle", select(q[0] + 1, &r, NULL, NULL, &tv));
    show_elapsed(t0, 40);
}

CASE(pt_select_timeout_efault) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    SHOW("select(timeout bad ptr)", select(p[0] + 1, &r, NULL, NULL, BADPTR));
}

CASE(pt_select_fdset_efault) {
    struct timeval tv = {0, 100000};
    double t0 = now_ms();
    SHOW("select(readfds bad ptr, 100ms)", select(4, BADPTR, NULL, NULL, &tv));
    show_elapsed(t0, 0);
    tv = (struct timeval){0, 0};
    SHOW("select(writefds bad ptr, 0)", select(4, NULL, BADPTR, NULL, &tv));
}

CASE(pt_select_many_fds) {
    enum { N = 100 };
    int p[N][2], maxfd = 0;
    fd_set r;
    FD_ZERO(&r);
    for (int i = 0; i < N; i++) {
        pipe(p[i]);
        FD_SET(p[i][0], &r);
        if (p[i][1] > maxfd) maxfd = p[i][1];
    }
    double t0 = now_ms();
    struct after *a = after(40, write_x, p[63][1]);
    SHOW("select 100 fds", select(maxfd + 1, &r, NULL, NULL, NULL));
    show_elapsed(t0, 40);
    for (int i = 0; i < N; i++)
        if (FD_ISSET(p[i][0], &r)) printf("ready index=%d\n", i);
    after_join(a);
}

CASE(pt_select_write_ready_after_drain) {
    int p[2];
    pipe(p);
    fill_pipe(p[1]);
    fd_set w;
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    double t0 = now_ms();
    struct after *a = after(50, drain, p[0]);
    SHOW("select write", select(p[1] + 1, NULL, &w, NULL, NULL));
    show_elapsed(t0, 50);
    printf("isset=%d\n", FD_ISSET(p[1], &w));
    after_join(a);
}

/* nfds past FD_SETSIZE with a caller-sized bitmap. */
CASE(pt_select_large_bitmap) {
    int p[2];
    pipe(p);
    unsigned long *bits = calloc(2048 / 64, sizeof(unsigned long));
    bits[p[0] / 64] |= 1UL << (p[0] % 64);
    struct after *a = after(30, write_x, p[1]);
    struct timeval tv = {1, 0};
    SHOW("select(nfds 2048)", select(2048, (fd_set *)bits, NULL, NULL, &tv));
    int set = 0;
    for (int i = 0; i < 2048 / 64; i++) set += __builtin_popcountl(bits[i]);
    printf("bits set=%d ours=%d\n", set, !!(bits[p[0] / 64] & (1UL << (p[0] % 64))));
    after_join(a);
    free(bits);
}

/* Bits above the process's fd table are ignored by the kernel (it caps nfds at the table
 * size, 64 for a small process), not reported EBADF. */
CASE(pt_select_bits_beyond_fd_table) {
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(1000, &r);
    struct timeval tv = {0, 0};
    SHOW("select(fd 1000 set, 0)", select(1001, &r, NULL, NULL, &tv));
    printf("ours=%d\n", FD_ISSET(p[0], &r));
}

CASE(pt_select_exceptfds_socket_oob) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    fd_set e;
    FD_ZERO(&e);
    FD_SET(s[0], &e);
    struct timeval tv = {0, 40000};
    double t0 = now_ms();
    SHOW("select exceptfds (40ms)", select(s[0] + 1, NULL, NULL, &e, &tv));
    show_elapsed(t0, 40);
}

/* ---- pselect ----------------------------------------------------------------------- */

CASE(pt_pselect_leaves_timespec_alone) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec t = ts_ms(50);
    double t0 = now_ms();
    SHOW("pselect(50ms)", pselect(p[0] + 1, &r, NULL, NULL, &t, NULL));
    show_elapsed(t0, 50);
    printf("timespec=%ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
    FD_SET(p[0], &r);
    t = ts_ms(800);
    struct after *a = after(30, write_x, p[1]);
    SHOW("pselect(800ms) ready", pselect(p[0] + 1, &r, NULL, NULL, &t, NULL));
    printf("timespec=%ld.%09ld isset=%d\n", (long)t.tv_sec, t.tv_nsec, FD_ISSET(p[0], &r));
    after_join(a);
}

CASE(pt_pselect_invalid_timespec) {
    struct timespec bad1 = {0, 1000000000L}, bad2 = {-1, 0}, bad3 = {0, -5};
    SHOW("pselect(nsec 1e9)", pselect(0, NULL, NULL, NULL, &bad1, NULL));
    SHOW("pselect(sec -1)", pselect(0, NULL, NULL, NULL, &bad2, NULL));
    SHOW("pselect(nsec -5)", pselect(0, NULL, NULL, NULL, &bad3, NULL));
    struct timespec z = {0, 0};
    SHOW("pselect(nfds -1)", pselect(-1, NULL, NULL, NULL, &z, NULL));
}

CASE(pt_pselect_null_timeout_data_from_thread) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    sigset_t mask;
    sigemptyset(&mask);
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("pselect(NULL, empty mask)", pselect(p[0] + 1, &r, NULL, NULL, NULL, &mask));
    show_elapsed(t0, 50);
    after_join(a);
}

CASE(pt_pselect_timespec_efault) {
    int p[2];
    pipe(p);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    SHOW("pselect(timespec bad ptr)", pselect(p[0] + 1, &r, NULL, NULL, BADPTR, NULL));
}

CASE(pt_pselect_bad_fd_and_zero) {
    int p[2];
    pipe(p);
    close(p[1]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[1], &r);
    struct timespec t = ts_ms(100);
    double t0 = now_ms();
    SHOW("pselect closed fd (100ms)", pselect(p[1] + 1, &r, NULL, NULL, &t, NULL));
    show_elapsed(t0, 0);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec z = {0, 0};
    SHOW("pselect hup (0)", pselect(p[0] + 1, &r, NULL, NULL, &z, NULL));
    printf("isset=%d\n", FD_ISSET(p[0], &r));
}

/* ---- epoll ------------------------------------------------------------------------- */

CASE(pt_epoll_create_errors) {
    int e = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1(EPOLL_CLOEXEC) ok=%d FD_CLOEXEC=%d\n", e >= 0, fcntl(e, F_GETFD));
    int e2 = epoll_create1(0);
    printf("epoll_create1(0) ok=%d FD_CLOEXEC=%d\n", e2 >= 0, fcntl(e2, F_GETFD));
    SHOW("epoll_create1(bogus)", epoll_create1(0x1234));
    SHOW("epoll_create(0)", epoll_create(0));
    SHOW("epoll_create(-1)", epoll_create(-1));
    SHOW("epoll_create(1) ok", epoll_create(1) >= 0);
}

CASE(pt_epoll_ctl_errors) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    SHOW("ADD", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("ADD again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("MOD unregistered", epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev));
    SHOW("DEL", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    SHOW("DEL again", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    SHOW("ADD bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 9999, &ev));
    SHOW("ADD bad epfd", epoll_ctl(9999, EPOLL_CTL_ADD, p[0], &ev));
    SHOW("ADD non-epoll epfd", epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev));
    SHOW("ADD itself", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
    SHOW("bogus op", epoll_ctl(ep, 42, p[0], &ev));
    SHOW("ADD event bad ptr", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], BADPTR));
    char path[] = "/tmp/greenify-diff-XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    SHOW("ADD regular file", epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev));
    close(f);
}

CASE(pt_epoll_wait_zero_and_timeout) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    SHOW("epoll_wait(0)", epoll_wait(ep, out, 4, 0));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("epoll_wait(60)", epoll_wait(ep, out, 4, 60));
    show_elapsed(t0, 60);
    int empty = epoll_create1(0);
    t0 = now_ms();
    SHOW("epoll_wait(empty set, 30)", epoll_wait(empty, out, 4, 30));
    show_elapsed(t0, 30);
}

CASE(pt_epoll_wait_infinite_data_from_thread) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xabcdef}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("epoll_wait(-1)", epoll_wait(ep, out, 4, -1));
    show_elapsed(t0, 50);
    printf("data=%llx events=%s\n", (unsigned long long)out[0].data.u64, ev_names(out[0].events));
    after_join(a);
}

CASE(pt_epoll_wait_huge_and_negative_timeouts) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 1}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    struct after *a = after(40, write_x, p[1]);
    SHOW("epoll_wait(INT_MAX)", epoll_wait(ep, out, 4, INT_MAX));
    show_elapsed(t0, 40);
    after_join(a);
    t0 = now_ms();
    a = after(40, write_x, p[1]);
    SHOW("epoll_wait(-7)", epoll_wait(ep, out, 4, -7));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(pt_epoll_wait_errors) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event out[4];
    SHOW("maxevents 0", epoll_wait(ep, out, 0, 100));
    SHOW("maxevents -1", epoll_wait(ep, out, (int)opaque(-1), 100));
    SHOW("non-epoll fd", epoll_wait(p[0], out, 4, 100));
    SHOW("closed fd", epoll_wait(9999, out, 4, 100));
    SHOW("fd -1", epoll_wait(-1, out, 4, -1));
    SHOW("maxevents huge", epoll_wait(ep, out, (int)opaque(INT_MAX), 0));
    SHOW("epoll_pwait maxevents 0", epoll_pwait(ep, out, 0, 100, NULL));
}

CASE(pt_epoll_wait_events_efault) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    struct after *a = after(30, write_x, p[1]);
    SHOW("epoll_wait(events bad ptr, 1000)", epoll_wait(ep, BADPTR, 4, 1000));
    show_elapsed(t0, 30);
    after_join(a);
    SHOW("epoll_wait(events NULL, 0)", epoll_wait(ep, NULLPTR, 4, 0));
    SHOW("epoll_wait(events kernel ptr, 0)", epoll_wait(ep, opaque_ptr(~0xfffUL), 4, 0));
}

CASE(pt_epoll_edge_vs_level) {
    int ep = epoll_create1(0), et = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event lt = {.events = EPOLLIN, .data.u64 = 1};
    struct epoll_event e2 = {.events = EPOLLIN | EPOLLET, .data.u64 = 2};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &lt);
    epoll_ctl(et, EPOLL_CTL_ADD, p[0], &e2);
    write(p[1], "ab", 2);
    struct epoll_event out[2];
    SHOW("LT first", epoll_wait(ep, out, 2, 100));
    SHOW("LT again", epoll_wait(ep, out, 2, 100));
    SHOW("ET first", epoll_wait(et, out, 2, 100));
    double t0 = now_ms();
    SHOW("ET again (50)", epoll_wait(et, out, 2, 50));
    show_elapsed(t0, 50);
    struct after *a = after(30, write_x, p[1]);
    SHOW("ET new edge from thread", epoll_wait(et, out, 2, 1000));
    after_join(a);
}

CASE(pt_epoll_oneshot) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    write(p[1], "a", 1);
    SHOW("first", epoll_wait(ep, out, 2, 100));
    double t0 = now_ms();
    SHOW("disarmed (40)", epoll_wait(ep, out, 2, 40));
    show_elapsed(t0, 40);
    SHOW("MOD rearm", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    SHOW("rearmed", epoll_wait(ep, out, 2, 100));
}

CASE(pt_epoll_many_fds) {
    enum { N = 100 };
    int ep = epoll_create1(0);
    int p[N][2];
    for (int i = 0; i < N; i++) {
        pipe(p[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, p[i][0], &ev);
    }
    struct after *a = after(30, write_x, p[17][1]);
    struct after *b = after(30, write_x, p[83][1]);
    struct after *c = after(30, write_x, p[42][1]);
    after_join(a);
    after_join(b);
    after_join(c);
    int seen[N] = {0}, total = 0;
    struct epoll_event out[8];
    while (total < 3) {
        int n = epoll_wait(ep, out, 8, 1000);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) seen[out[i].data.u64]++, total++;
    }
    for (int i = 0; i < N; i++)
        if (seen[i]) printf("ready index=%d\n", i);
}

CASE(pt_epoll_many_fds_parked) {
    enum { N = 100 };
    int ep = epoll_create1(0);
    int p[N][2];
    for (int i = 0; i < N; i++) {
        pipe(p[i]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, p[i][0], &ev);
    }
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[71][1]);
    struct epoll_event out[8];
    SHOW("epoll_wait(-1)", epoll_wait(ep, out, 8, -1));
    show_elapsed(t0, 50);
    printf("index=%llu\n", (unsigned long long)out[0].data.u64);
    after_join(a);
}

CASE(pt_epoll_hup_err_events) {
    int ep = epoll_create1(0);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    struct epoll_event a = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 1};
    struct epoll_event b = {.events = EPOLLOUT, .data.u64 = 2};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &a);
    epoll_ctl(ep, EPOLL_CTL_ADD, q[1], &b);
    drain(q[0]);
    fill_pipe(q[1]);
    close(p[1]);
    close(q[0]);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 100);
    printf("n=%d\n", n);
    for (int want = 1; want <= 2; want++)
        for (int i = 0; i < n; i++)
            if (out[i].data.u64 == (uint64_t)want)
                printf("data=%d events=%s\n", want, ev_names(out[i].events));
}

CASE(pt_epoll_hup_arrives_while_parked) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = 0, .data.u64 = 9}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    struct after *a = after(50, close_fd, p[1]);
    SHOW("epoll_wait(-1) events 0", epoll_wait(ep, out, 2, -1));
    show_elapsed(t0, 50);
    printf("events=%s\n", ev_names(out[0].events));
    after_join(a);
}

CASE(pt_epoll_pwait_mask) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 3}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    double t0 = now_ms();
    SHOW("epoll_pwait(40, mask)", epoll_pwait(ep, out, 2, 40, &mask));
    show_elapsed(t0, 40);
    t0 = now_ms();
    struct after *a = after(30, write_x, p[1]);
    SHOW("epoll_pwait(-1, NULL)", epoll_pwait(ep, out, 2, -1, NULL));
    show_elapsed(t0, 30);
    after_join(a);
    SHOW("epoll_pwait(0, mask) ready", epoll_pwait(ep, out, 2, 0, &mask));
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("SIGUSR2 blocked after=%d\n", sigismember(&now, SIGUSR2));
}

CASE(pt_epoll_pwait2_timespecs) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 3}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct timespec z = {0, 0}, t = ts_ms(40);
    double t0 = now_ms();
    SHOW("epoll_pwait2({0,0})", epoll_pwait2(ep, out, 2, &z, NULL));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("epoll_pwait2(40ms)", epoll_pwait2(ep, out, 2, &t, NULL));
    show_elapsed(t0, 40);
    printf("timespec=%ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
    t0 = now_ms();
    struct after *a = after(30, write_x, p[1]);
    SHOW("epoll_pwait2(NULL)", epoll_pwait2(ep, out, 2, NULL, NULL));
    show_elapsed(t0, 30);
    after_join(a);
    struct timespec tiny = {0, 1};
    SHOW("epoll_pwait2(1ns)", epoll_pwait2(ep, out, 2, &tiny, NULL));
}

CASE(pt_epoll_pwait2_invalid_timespec) {
    int ep = epoll_create1(0);
    struct epoll_event out[2];
    struct timespec bad1 = {0, 1000000000L}, bad2 = {-1, 0}, bad3 = {0, -1};
    SHOW("epoll_pwait2(nsec 1e9)", epoll_pwait2(ep, out, 2, &bad1, NULL));
    SHOW("epoll_pwait2(sec -1)", epoll_pwait2(ep, out, 2, &bad2, NULL));
    SHOW("epoll_pwait2(nsec -1)", epoll_pwait2(ep, out, 2, &bad3, NULL));
    struct timespec ok = ts_ms(10);
    SHOW("epoll_pwait2(bad epfd)", epoll_pwait2(9999, out, 2, &ok, NULL));
    SHOW("epoll_pwait2(maxevents 0)", epoll_pwait2(ep, out, 0, &ok, NULL));
}

CASE(pt_epoll_pwait2_timespec_efault) {
    int ep = epoll_create1(0);
    struct epoll_event out[2];
    SHOW("epoll_pwait2(timespec bad ptr)", epoll_pwait2(ep, out, 2, BADPTR, NULL));
}

/* Natively an epoll_wait already waiting keeps its own reference to the epoll file: a
 * close from another thread does not end it; the timeout does. */
CASE(pt_epoll_wait_epfd_closed_by_thread) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    double t0 = now_ms();
    struct after *a = after(50, close_fd, ep);
    SHOW("epoll_wait(300)", epoll_wait(ep, out, 2, 300));
    show_elapsed(t0, 300);
    after_join(a);
}

CASE(pt_epoll_nested_and_polled) {
    int inner = epoll_create1(0), outer = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &ev);
    struct epoll_event ev2 = {.events = EPOLLIN, .data.u64 = 2}, out[2];
    epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev2);
    double t0 = now_ms();
    struct after *a = after(40, write_x, p[1]);
    SHOW("outer epoll_wait(-1)", epoll_wait(outer, out, 2, -1));
    show_elapsed(t0, 40);
    printf("data=%llu\n", (unsigned long long)out[0].data.u64);
    after_join(a);
    struct pollfd f = {inner, POLLIN, 0};
    SHOW("poll on epoll fd", poll(&f, 1, 100));
    printf("revents=%s\n", ev_names(f.revents));
    drain(p[0]);
    f.revents = 0;
    t0 = now_ms();
    a = after(40, write_x, p[1]);
    SHOW("poll on epoll fd (-1)", poll(&f, 1, -1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(pt_epoll_socketpair_rdhup_from_thread) {
    int ep = epoll_create1(0);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = 4}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, s[0], &ev);
    double t0 = now_ms();
    struct after *a = after(40, close_fd, s[1]);
    SHOW("epoll_wait(-1) RDHUP", epoll_wait(ep, out, 2, -1));
    show_elapsed(t0, 40);
    printf("events=%s\n", ev_names(out[0].events));
    after_join(a);
}

/* ---- sleeps ------------------------------------------------------------------------ */

CASE(pt_sleep_zero_and_one) {
    double t0 = now_ms();
    SHOW("sleep(0)", sleep(0));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("sleep(1)", sleep(1));
    show_elapsed(t0, 1000);
}

CASE(pt_usleep_values) {
    double t0 = now_ms();
    SHOW("usleep(0)", usleep(0));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("usleep(1)", usleep(1));
    show_elapsed(t0, 0);
    t0 = now_ms();
    SHOW("usleep(25000)", usleep(25000));
    show_elapsed(t0, 25);
    t0 = now_ms();
    SHOW("usleep(999999)", usleep(999999));
    show_elapsed(t0, 1000);
}

CASE(pt_nanosleep_timing_rem_untouched) {
    struct timespec req = ts_ms(30), rem = {77, 77};
    double t0 = now_ms();
    SHOW("nanosleep(30ms)", nanosleep(&req, &rem));
    show_elapsed(t0, 30);
    printf("rem=%ld.%ld req=%ld.%09ld\n", (long)rem.tv_sec, rem.tv_nsec, (long)req.tv_sec,
           req.tv_nsec);
    struct timespec z = {0, 0};
    t0 = now_ms();
    SHOW("nanosleep(0)", nanosleep(&z, &rem));
    show_elapsed(t0, 0);
    SHOW("nanosleep(1ns, rem bad ptr)", nanosleep(&(struct timespec){0, 1}, BADPTR));
}

CASE(pt_nanosleep_einval) {
    struct timespec bad1 = {0, 1000000000L}, bad2 = {0, -1}, bad3 = {-1, 0}, bad4 = {-1, 999};
    struct timespec rem = {77, 77};
    SHOW("nanosleep(nsec 1e9)", nanosleep(&bad1, &rem));
    SHOW("nanosleep(nsec -1)", nanosleep(&bad2, &rem));
    SHOW("nanosleep(sec -1)", nanosleep(&bad3, &rem));
    SHOW("nanosleep(sec -1, nsec 999)", nanosleep(&bad4, NULL));
    printf("rem=%ld.%ld\n", (long)rem.tv_sec, rem.tv_nsec);
}

CASE(pt_nanosleep_efault) {
    SHOW("nanosleep(NULL)", nanosleep(NULLPTR, NULL));
    SHOW("nanosleep(bad ptr)", nanosleep(BADPTR, NULL));
}

CASE(pt_clock_nanosleep_relative_clocks) {
    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    const char *names[] = {"REALTIME", "MONOTONIC", "BOOTTIME"};
    for (int i = 0; i < 3; i++) {
        struct timespec req = ts_ms(30), rem = {77, 77};
        double t0 = now_ms();
        int rc = clock_nanosleep(clocks[i], 0, &req, &rem);
        printf("%s 30ms: %s %s rem=%ld.%ld\n", names[i], en(rc), timing(now_ms() - t0, 30),
               (long)rem.tv_sec, rem.tv_nsec);
    }
}

CASE(pt_clock_nanosleep_abstime_past) {
    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    const char *names[] = {"REALTIME", "MONOTONIC", "BOOTTIME"};
    for (int i = 0; i < 3; i++) {
        struct timespec past = ts_add_ms(clocks[i], -1000), zero = {0, 0}, rem = {77, 77};
        double t0 = now_ms();
        int rc1 = clock_nanosleep(clocks[i], TIMER_ABSTIME, &past, &rem);
        int rc2 = clock_nanosleep(clocks[i], TIMER_ABSTIME, &zero, &rem);
        printf("%s past: %s, zero: %s %s rem=%ld.%ld\n", names[i], en(rc1), en(rc2),
               timing(now_ms() - t0, 0), (long)rem.tv_sec, rem.tv_nsec);
    }
}

CASE(pt_clock_nanosleep_abstime_future) {
    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    const char *names[] = {"REALTIME", "MONOTONIC", "BOOTTIME"};
    for (int i = 0; i < 3; i++) {
        struct timespec when = ts_add_ms(clocks[i], 40), rem = {77, 77};
        double t0 = now_ms();
        int rc = clock_nanosleep(clocks[i], TIMER_ABSTIME, &when, &rem);
        struct timespec now;
        clock_gettime(clocks[i], &now);
        int reached = now.tv_sec > when.tv_sec ||
                      (now.tv_sec == when.tv_sec && now.tv_nsec >= when.tv_nsec);
        printf("%s +40ms: %s %s reached=%d rem=%ld.%ld\n", names[i], en(rc),
               timing(now_ms() - t0, 40), reached, (long)rem.tv_sec, rem.tv_nsec);
    }
}

CASE(pt_clock_nanosleep_einval) {
    struct timespec bad1 = {0, 1000000000L}, bad2 = {-1, 0}, bad3 = {0, -1};
    SHOWRC("relative nsec 1e9", clock_nanosleep(CLOCK_MONOTONIC, 0, &bad1, NULL));
    SHOWRC("relative sec -1", clock_nanosleep(CLOCK_MONOTONIC, 0, &bad2, NULL));
    SHOWRC("relative nsec -1", clock_nanosleep(CLOCK_REALTIME, 0, &bad3, NULL));
    SHOWRC("abstime nsec 1e9", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &bad1, NULL));
    SHOWRC("abstime sec -1", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &bad2, NULL));
    SHOWRC("abstime nsec -1 BOOTTIME", clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &bad3, NULL));
    errno = 0;
    clock_nanosleep(CLOCK_MONOTONIC, 0, &bad1, NULL);
    printf("errno untouched=%d\n", errno == 0);
}

CASE(pt_clock_nanosleep_other_clocks) {
    struct timespec t = ts_ms(10);
    SHOWRC("THREAD_CPUTIME relative", clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &t, NULL));
    struct timespec z = {0, 0};
    SHOWRC("PROCESS_CPUTIME abstime 0",
           clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &z, NULL));
    SHOWRC("PROCESS_CPUTIME relative 0", clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &z, NULL));
    SHOWRC("MONOTONIC_RAW", clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &t, NULL));
    SHOWRC("REALTIME_COARSE", clock_nanosleep(CLOCK_REALTIME_COARSE, 0, &t, NULL));
    SHOWRC("MONOTONIC_COARSE", clock_nanosleep(CLOCK_MONOTONIC_COARSE, 0, &t, NULL));
    SHOWRC("clock 1234", clock_nanosleep(1234, 0, &t, NULL));
    SHOWRC("clock -1", clock_nanosleep(-1, 0, &t, NULL));
    double t0 = now_ms();
    SHOWRC("TAI 10ms", clock_nanosleep(CLOCK_TAI, 0, &t, NULL));
    show_elapsed(t0, 10);
}

CASE(pt_clock_nanosleep_efault) {
    SHOWRC("MONOTONIC NULL", clock_nanosleep(CLOCK_MONOTONIC, 0, NULLPTR, NULL));
    SHOWRC("MONOTONIC bad ptr", clock_nanosleep(CLOCK_MONOTONIC, 0, BADPTR, NULL));
    SHOWRC("REALTIME abstime bad ptr", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, BADPTR, NULL));
    struct timespec t = {0, 1};
    SHOWRC("MONOTONIC 1ns, rem bad ptr", clock_nanosleep(CLOCK_MONOTONIC, 0, &t, BADPTR));
}

/* Who finishes first: a thread's 30 ms sleep, or main's 100 ms sleep on CLOCK_TAI. */
static volatile int order_counter;
static int tick_order;

static void *tick_after_30(void *p) {
    (void)p;
    msleep(30);
    tick_order = __sync_add_and_fetch(&order_counter, 1);
    return NULL;
}

CASE(pt_clock_nanosleep_tai_lets_others_run) {
    pthread_t t;
    pthread_create(&t, NULL, tick_after_30, NULL);
    struct timespec req = ts_ms(100);
    SHOWRC("TAI 100ms", clock_nanosleep(CLOCK_TAI, 0, &req, NULL));
    int main_order = __sync_add_and_fetch(&order_counter, 1);
    pthread_join(t, NULL);
    printf("thread finished %s main\n", tick_order < main_order ? "before" : "after");
}

/* A CPU-time sleep ends once the process has used that much CPU, here a thread that
 * computes and calls sched_yield. It computes a millisecond of its own CPU time between
 * yields: a thread that only yields gives its CPU away at once, and on a loaded machine
 * the kernel (EEVDF pushes a yielder's deadline a slice further each time) then lets it
 * gather 20 ms of CPU only over seconds. */
static volatile int stop_spinning;

static double thread_cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void *yield_spinner(void *p) {
    (void)p;
    while (!stop_spinning) {
        double until = thread_cpu_ms() + 1;
        while (!stop_spinning && thread_cpu_ms() < until) {}
        sched_yield();
    }
    return NULL;
}

CASE(pt_clock_nanosleep_process_cputime_with_busy_thread) {
    /* A safety stop only: a loaded machine may give the process its 20 ms of CPU slowly. */
    alarm(10);
    pthread_t t;
    pthread_create(&t, NULL, yield_spinner, NULL);
    struct timespec req = ts_ms(20);
    SHOWRC("PROCESS_CPUTIME 20ms", clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL));
    stop_spinning = 1;
    pthread_join(t, NULL);
    alarm(0);
}

static void *sleep_50(void *p) {
    struct timespec req = ts_ms(50);
    *(int *)p = nanosleep(&req, NULL);
    return NULL;
}

CASE(pt_sleeps_overlap_across_threads) {
    enum { N = 8 };
    pthread_t t[N];
    int rc[N];
    double t0 = now_ms();
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, sleep_50, &rc[i]);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    show_elapsed(t0, 50);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += rc[i] != 0;
    printf("failed=%d\n", bad);
}

/* Five short sleeps, 10 ms in all, inside a 150 ms wait of main's: done only if the thread
   ran during the wait, with 140 ms to spare for a loaded machine (20 ms sleeps left 50 ms,
   which a loaded machine took from the greenified side once). */
static void *usleep_chain(void *p) {
    for (int i = 0; i < 5; i++) usleep(2000);
    *(int *)p = 1;
    return NULL;
}

CASE(pt_sleeping_thread_while_main_polls) {
    int done = 0;
    pthread_t t;
    pthread_create(&t, NULL, usleep_chain, &done);
    double t0 = now_ms();
    SHOW("poll(NULL, 0, 150)", poll(NULL, 0, 150));
    show_elapsed(t0, 150);
    printf("thread done during poll=%d\n", done);
    pthread_join(t, NULL);
}

CASE(pt_select_as_sleep_with_thread) {
    int done = 0;
    pthread_t t;
    pthread_create(&t, NULL, usleep_chain, &done);
    struct timeval tv = {0, 150000};
    double t0 = now_ms();
    SHOW("select(0, 150ms)", select(0, NULL, NULL, NULL, &tv));
    show_elapsed(t0, 150);
    printf("thread done during select=%d\n", done);
    pthread_join(t, NULL);
}

/* ---- busy waiting: a thread that spins on calls that never wait --------------------- */

/* Natively the writer runs on another core (or the kernel's time slice) while this thread
 * spins; greenified, the spinner's calls must let it run. alarm: a hang dies visibly. */
CASE(pt_spin_on_zero_timeout_poll_lets_the_writer_run) {
    alarm(5);
    int p[2];
    pipe(p);
    struct after *a = after(20, write_x, p[1]);
    struct pollfd f = {p[0], POLLIN, 0};
    while (poll(&f, 1, 0) == 0) {}
    printf("poll(0) loop: revents=%s\n", f.revents & POLLIN ? "POLLIN" : "?");
    after_join(a);
    alarm(0);
}

CASE(pt_spin_on_nonblocking_read_lets_the_writer_run) {
    alarm(5);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s);
    struct after *a = after(20, write_x, s[1]);
    char c;
    ssize_t n;
    while ((n = read(s[0], &c, 1)) < 0 && errno == EAGAIN) {}
    printf("EAGAIN loop: read=%zd byte=%c\n", n, c);
    after_join(a);
    alarm(0);
}

CASE(pt_spin_on_zero_timeout_epoll_wait_lets_the_writer_run) {
    alarm(5);
    int p[2];
    pipe(p);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct after *a = after(20, write_x, p[1]);
    struct epoll_event out;
    while (epoll_wait(ep, &out, 1, 0) == 0) {}
    printf("epoll_wait(0) loop: data=%llu\n", (unsigned long long)out.data.u64);
    after_join(a);
    alarm(0);
}
