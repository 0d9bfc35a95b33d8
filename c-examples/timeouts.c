/*
 * timeouts: checks the results, errno values and timing of blocking calls
 * with timeouts, non-blocking descriptors and sleeps.
 *
 * The checks run one after another in main; a helper thread is used only
 * where a check needs somebody to write after a delay. Each check prints one
 * line to stdout:
 *     <name>: ret=<r> errno=<ERRNO_NAME or 0> time=<ok|early|late> [extra fields]
 * where time compares the elapsed time (CLOCK_MONOTONIC) with the expected
 * E ms: ok if E-1 <= elapsed <= E+150, early if less, late if more beyond the time the
 * process's threads waited for a CPU meanwhile (a loaded machine).
 * stdout is meant to be identical from run to run and with or without
 * greenify; the measured times go to stderr, one line per check.
 *
 * Usage:  timeouts
 *
 * Choices where the spec leaves room:
 *  - errno is printed only when ret is -1 (errno=0 otherwise), because errno
 *    is meaningless after a successful call.
 *  - Calls that return an error number instead of setting errno
 *    (clock_nanosleep) print it as ret=<ERRNO_NAME>.
 *  - poll/ppoll checks print revents=, epoll checks events=, select checks
 *    readable= (FD_ISSET after return); names joined with '|', 0 if none.
 *  - select_idle_200 prints the timeval after return as tv=<sec>.<usec>,
 *    pselect_idle_150 the timespec as ts=<sec>.<nsec> (glibc passes pselect a
 *    copy, so it is unchanged natively).
 *  - nanosleep_rem zero-initialises rem and prints it as rem=<sec>.<nsec>;
 *    Linux only writes rem when interrupted, so it stays 0.000000000.
 *  - sndtimeo_send_200 uses an AF_UNIX stream socketpair and prints
 *    result=timeout (ret=-1 errno=EAGAIN after ~200 ms, what Linux does) or
 *    ret=partial result=partial if some bytes were accepted.
 *  - nonblock_pipe_read prints before=/after= as the hex value of
 *    F_GETFL & O_NONBLOCK; fionbio_recv prints set= after FIONBIO 1 and
 *    cleared= after FIONBIO 0, likewise.
 *  - connect_nonblock prints ret=0_or_EINPROGRESS errno=0_or_EINPROGRESS when
 *    connect returned 0 or -1/EINPROGRESS, then poll=, revents= and so_error=;
 *    its time covers connect + poll and is expected to be 0 ms.
 *  - stdio_flags prints F_GETFL of fds 0, 1, 2 as 0x<hex>, or "closed".
 *  - Setup failures (pipe, socket, bind, ...) print an error and exit 1.
 */
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---------- helpers ---------- */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime");
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * How long this process's live threads have waited for a CPU while runnable, in ms (the
 * kernel's run-queue wait, the second field of each /proc/self/task/TID/schedstat). On a
 * loaded machine that is where a check's extra time goes, and no fault of the call checked.
 */
static double stall_ms(void)
{
    double sum = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[64], buf[128];
        long tid = atol(e->d_name);
        if (tid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
        FILE *f = fopen(path, "re");
        unsigned long long run, wait;
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof buf, f) != NULL && sscanf(buf, "%llu %llu", &run, &wait) == 2)
            sum += wait / 1e6;
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return sum;
}

/* The run-queue wait when the previous check ended (each check starts right after). */
static double stall_mark;

/* "late" only beyond the run-queue wait the check's time included ("early" never). */
static const char *time_class(double elapsed_ms, int expected_ms)
{
    double stall = stall_ms() - stall_mark;
    if (elapsed_ms < expected_ms - 1)
        return "early";
    if (elapsed_ms - (stall > 0 ? stall : 0) > expected_ms + 150)
        return "late";
    return "ok";
}

static const char *errno_name(int err)
{
    static char other[32];

    switch (err) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EINPROGRESS: return "EINPROGRESS";
    case EALREADY: return "EALREADY";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case ENOTSOCK: return "ENOTSOCK";
    case EADDRINUSE: return "EADDRINUSE";
    default:
        snprintf(other, sizeof other, "E%d", err);
        return other;
    }
}

/* "POLLIN|POLLOUT" style names of poll revents bits, "0" if none. */
static const char *poll_names(int revents)
{
    static char buf[128];
    static const struct { int bit; const char *name; } bits[] = {
        { POLLIN, "POLLIN" }, { POLLPRI, "POLLPRI" }, { POLLOUT, "POLLOUT" },
        { POLLERR, "POLLERR" }, { POLLHUP, "POLLHUP" }, { POLLNVAL, "POLLNVAL" },
    };

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (revents & bits[i].bit) {
            if (buf[0] != '\0')
                strcat(buf, "|");
            strcat(buf, bits[i].name);
        }
    }
    return buf[0] != '\0' ? buf : "0";
}

static const char *epoll_names(unsigned events)
{
    static char buf[128];
    static const struct { unsigned bit; const char *name; } bits[] = {
        { EPOLLIN, "EPOLLIN" }, { EPOLLPRI, "EPOLLPRI" }, { EPOLLOUT, "EPOLLOUT" },
        { EPOLLERR, "EPOLLERR" }, { EPOLLHUP, "EPOLLHUP" },
    };

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (events & bits[i].bit) {
            if (buf[0] != '\0')
                strcat(buf, "|");
            strcat(buf, bits[i].name);
        }
    }
    return buf[0] != '\0' ? buf : "0";
}

/*
 * Print one result line to stdout, and the measured time to stderr.
 * extra may be "" or " field=value ...".
 */
static void report_str(const char *name, const char *ret, const char *err,
                       double elapsed_ms, int expected_ms, const char *extra)
{
    printf("%s: ret=%s errno=%s time=%s%s\n", name, ret, err,
           time_class(elapsed_ms, expected_ms), extra);
    fflush(stdout);
    fprintf(stderr, "%s: %.1f ms (expected %d)\n", name, elapsed_ms, expected_ms);
    stall_mark = stall_ms();
}

/* Same for a call returning a number; err (the errno saved right after the
 * call) is only shown when ret is -1. */
static void report(const char *name, long ret, int err, double elapsed_ms,
                   int expected_ms, const char *extra)
{
    char retbuf[32];
    snprintf(retbuf, sizeof retbuf, "%ld", ret);
    report_str(name, retbuf, ret == -1 ? errno_name(err) : "0", elapsed_ms, expected_ms, extra);
}

static void print_stdio_flags(const char *when)
{
    printf("stdio_flags %s:", when);
    for (int fd = 0; fd <= 2; fd++) {
        int fl = fcntl(fd, F_GETFL);
        if (fl == -1)
            printf(" closed");
        else
            printf(" 0x%x", (unsigned)fl);
    }
    printf("\n");
    fflush(stdout);
}

static void make_pipe(int p[2])
{
    if (pipe(p) != 0)
        die("pipe");
}

static void make_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair");
}

static void close_pair(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; *port gets the port. */
static int bound_tcp_socket(int type_flags, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        die("getsockname");
    *port = ntohs(addr.sin_port);
    return fd;
}

static int listening_socket(int type_flags, int *port)
{
    int fd = bound_tcp_socket(type_flags, port);
    if (listen(fd, 16) != 0)
        die("listen");
    return fd;
}

static struct sockaddr_in loopback_addr(int port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    return addr;
}

static void set_timeout_opt(int fd, int opt, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) != 0)
        die("setsockopt timeout");
}

/* ---------- delayed writer thread ---------- */

struct writer {
    pthread_t tid;
    int fd;
    int delay_ms;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct timespec ts = { w->delay_ms / 1000, (w->delay_ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (write(w->fd, "x", 1) != 1)
        die("writer: write");
    return NULL;
}

static void start_writer(struct writer *w, int fd, int delay_ms)
{
    w->fd = fd;
    w->delay_ms = delay_ms;
    int rc = pthread_create(&w->tid, NULL, writer_main, w);
    if (rc != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(rc));
        exit(1);
    }
}

static void join_writer(struct writer *w)
{
    int rc = pthread_join(w->tid, NULL);
    if (rc != 0) {
        fprintf(stderr, "pthread_join: %s\n", strerror(rc));
        exit(1);
    }
}

/* ---------- poll family ---------- */

static void check_poll_idle_200(void)
{
    int p[2];
    make_pipe(p);
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    double t0 = now_ms();
    int ret = poll(&pfd, 1, 200);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " revents=%s", poll_names(pfd.revents));
    report("poll_idle_200", ret, err, el, 200, extra);
    close_pair(p);
}

static void check_poll_data_100(void)
{
    int p[2];
    struct writer w;
    make_pipe(p);
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    double t0 = now_ms();
    start_writer(&w, p[1], 100);
    int ret = poll(&pfd, 1, 2000);
    int err = errno;
    double el = now_ms() - t0;
    join_writer(&w);
    char extra[256];
    snprintf(extra, sizeof extra, " revents=%s", poll_names(pfd.revents));
    report("poll_data_100", ret, err, el, 100, extra);
    close_pair(p);
}

static void check_poll_zero(void)
{
    int p[2];
    make_pipe(p);
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    double t0 = now_ms();
    int ret = poll(&pfd, 1, 0);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " revents=%s", poll_names(pfd.revents));
    report("poll_zero", ret, err, el, 0, extra);
    close_pair(p);
}

static void check_poll_nfds0_100(void)
{
    double t0 = now_ms();
    int ret = poll(NULL, 0, 100);
    int err = errno;
    double el = now_ms() - t0;
    report("poll_nfds0_100", ret, err, el, 100, "");
}

static void check_ppoll_idle_150(void)
{
    int p[2];
    make_pipe(p);
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    struct timespec ts = { 0, 150 * 1000000L };
    double t0 = now_ms();
    int ret = ppoll(&pfd, 1, &ts, NULL);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " revents=%s", poll_names(pfd.revents));
    report("ppoll_idle_150", ret, err, el, 150, extra);
    close_pair(p);
}

/* ---------- select family ---------- */

static void check_select_idle_200(void)
{
    int p[2];
    make_pipe(p);
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(p[0], &rfds);
    struct timeval tv = { 0, 200 * 1000 };
    double t0 = now_ms();
    int ret = select(p[0] + 1, &rfds, NULL, NULL, &tv);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " readable=%d tv=%ld.%06ld",
             FD_ISSET(p[0], &rfds) ? 1 : 0, (long)tv.tv_sec, (long)tv.tv_usec);
    report("select_idle_200", ret, err, el, 200, extra);
    close_pair(p);
}

static void check_select_data_100(void)
{
    int p[2];
    struct writer w;
    make_pipe(p);
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(p[0], &rfds);
    struct timeval tv = { 2, 0 };
    double t0 = now_ms();
    start_writer(&w, p[1], 100);
    int ret = select(p[0] + 1, &rfds, NULL, NULL, &tv);
    int err = errno;
    double el = now_ms() - t0;
    join_writer(&w);
    char extra[256];
    snprintf(extra, sizeof extra, " readable=%d", FD_ISSET(p[0], &rfds) ? 1 : 0);
    report("select_data_100", ret, err, el, 100, extra);
    close_pair(p);
}

static void check_pselect_idle_150(void)
{
    int p[2];
    make_pipe(p);
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(p[0], &rfds);
    struct timespec ts = { 0, 150 * 1000000L };
    double t0 = now_ms();
    int ret = pselect(p[0] + 1, &rfds, NULL, NULL, &ts, NULL);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " readable=%d ts=%ld.%09ld",
             FD_ISSET(p[0], &rfds) ? 1 : 0, (long)ts.tv_sec, (long)ts.tv_nsec);
    report("pselect_idle_150", ret, err, el, 150, extra);
    close_pair(p);
}

/* ---------- epoll ---------- */

static int epoll_on(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl");
    return ep;
}

static void check_epoll_wait_idle_200(void)
{
    int p[2];
    make_pipe(p);
    int ep = epoll_on(p[0]);
    struct epoll_event evs[8];
    double t0 = now_ms();
    int ret = epoll_wait(ep, evs, 8, 200);
    int err = errno;
    double el = now_ms() - t0;
    report("epoll_wait_idle_200", ret, err, el, 200, "");
    close(ep);
    close_pair(p);
}

static void check_epoll_wait_data_100(void)
{
    int p[2];
    struct writer w;
    make_pipe(p);
    int ep = epoll_on(p[0]);
    struct epoll_event evs[8];
    double t0 = now_ms();
    start_writer(&w, p[1], 100);
    int ret = epoll_wait(ep, evs, 8, 2000);
    int err = errno;
    double el = now_ms() - t0;
    join_writer(&w);
    char extra[256];
    if (ret == 1)
        snprintf(extra, sizeof extra, " events=%s fd_matches=%d",
                 epoll_names(evs[0].events), evs[0].data.fd == p[0]);
    else
        extra[0] = '\0';
    report("epoll_wait_data_100", ret, err, el, 100, extra);
    close(ep);
    close_pair(p);
}

static void check_epoll_pwait_idle_100(void)
{
    int p[2];
    make_pipe(p);
    int ep = epoll_on(p[0]);
    struct epoll_event evs[8];
    double t0 = now_ms();
    int ret = epoll_pwait(ep, evs, 8, 100, NULL);
    int err = errno;
    double el = now_ms() - t0;
    report("epoll_pwait_idle_100", ret, err, el, 100, "");
    close(ep);
    close_pair(p);
}

/* ---------- SO_RCVTIMEO / SO_SNDTIMEO ---------- */

static void check_rcvtimeo_recv_200(void)
{
    int sv[2];
    char buf[16];
    make_socketpair(sv);
    set_timeout_opt(sv[0], SO_RCVTIMEO, 200);
    double t0 = now_ms();
    long ret = recv(sv[0], buf, sizeof buf, 0);
    int err = errno;
    double el = now_ms() - t0;
    report("rcvtimeo_recv_200", ret, err, el, 200, "");
    close_pair(sv);
}

static void check_rcvtimeo_read_200(void)
{
    int sv[2];
    char buf[16];
    make_socketpair(sv);
    set_timeout_opt(sv[0], SO_RCVTIMEO, 200);
    double t0 = now_ms();
    long ret = read(sv[0], buf, sizeof buf);
    int err = errno;
    double el = now_ms() - t0;
    report("rcvtimeo_read_200", ret, err, el, 200, "");
    close_pair(sv);
}

static void check_rcvtimeo_accept_200(void)
{
    int port;
    int lfd = listening_socket(0, &port);
    set_timeout_opt(lfd, SO_RCVTIMEO, 200);
    double t0 = now_ms();
    int ret = accept(lfd, NULL, NULL);
    int err = errno;
    double el = now_ms() - t0;
    report("rcvtimeo_accept_200", ret, err, el, 200, "");
    if (ret >= 0)
        close(ret);
    close(lfd);
}

static void check_sndtimeo_send_200(void)
{
    int sv[2];
    static char buf[64 * 1024];
    make_socketpair(sv);
    set_timeout_opt(sv[0], SO_SNDTIMEO, 200);

    /* Fill the socket buffers without blocking. */
    for (;;) {
        ssize_t n = send(sv[0], buf, 4096, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            die("send MSG_DONTWAIT");
        }
    }

    double t0 = now_ms();
    ssize_t ret = send(sv[0], buf, sizeof buf, 0);
    int err = errno;
    double el = now_ms() - t0;
    if (ret >= 0) {
        report_str("sndtimeo_send_200", "partial", "0", el, 200, " result=partial");
    } else {
        report("sndtimeo_send_200", ret, err, el, 200,
               err == EAGAIN ? " result=timeout" : " result=error");
    }
    close_pair(sv);
}

/* ---------- non-blocking descriptors ---------- */

static void check_nonblock_pipe_read(void)
{
    int p[2];
    char buf[16];
    make_pipe(p);
    int before = fcntl(p[0], F_GETFL);
    if (before == -1)
        die("fcntl F_GETFL");
    if (fcntl(p[0], F_SETFL, before | O_NONBLOCK) != 0)
        die("fcntl F_SETFL");
    int after = fcntl(p[0], F_GETFL);
    if (after == -1)
        die("fcntl F_GETFL");
    double t0 = now_ms();
    long ret = read(p[0], buf, sizeof buf);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " before=0x%x after=0x%x",
             (unsigned)(before & O_NONBLOCK), (unsigned)(after & O_NONBLOCK));
    report("nonblock_pipe_read", ret, err, el, 0, extra);
    close_pair(p);
}

static void check_fionbio_recv(void)
{
    int sv[2];
    char buf[16];
    int on = 1, off = 0;
    make_socketpair(sv);
    if (ioctl(sv[0], FIONBIO, &on) != 0)
        die("ioctl FIONBIO 1");
    int set = fcntl(sv[0], F_GETFL);
    if (set == -1)
        die("fcntl F_GETFL");
    double t0 = now_ms();
    long ret = recv(sv[0], buf, sizeof buf, 0);
    int err = errno;
    double el = now_ms() - t0;
    if (ioctl(sv[0], FIONBIO, &off) != 0)
        die("ioctl FIONBIO 0");
    int cleared = fcntl(sv[0], F_GETFL);
    if (cleared == -1)
        die("fcntl F_GETFL");
    char extra[256];
    snprintf(extra, sizeof extra, " set=0x%x cleared=0x%x",
             (unsigned)(set & O_NONBLOCK), (unsigned)(cleared & O_NONBLOCK));
    report("fionbio_recv", ret, err, el, 0, extra);
    close_pair(sv);
}

static void check_sock_nonblock_accept(void)
{
    int port;
    int lfd = listening_socket(SOCK_NONBLOCK, &port);
    double t0 = now_ms();
    int ret = accept(lfd, NULL, NULL);
    int err = errno;
    double el = now_ms() - t0;
    report("sock_nonblock_accept", ret, err, el, 0, "");
    if (ret >= 0)
        close(ret);
    close(lfd);
}

/* ---------- connect ---------- */

static void check_connect_refused(void)
{
    int port;
    int tmp = bound_tcp_socket(0, &port);
    close(tmp);   /* the port is now free and nobody listens on it */

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in addr = loopback_addr(port);
    double t0 = now_ms();
    int ret = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int err = errno;
    double el = now_ms() - t0;
    report("connect_refused", ret, err, el, 0, "");
    close(fd);
}

static void check_connect_nonblock(void)
{
    int port;
    int lfd = listening_socket(0, &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        die("fcntl O_NONBLOCK");

    struct sockaddr_in addr = loopback_addr(port);
    double t0 = now_ms();
    int ret = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int err = errno;
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int pret = poll(&pfd, 1, 1000);
    int perr = errno;
    double el = now_ms() - t0;

    int so_error = -1;
    socklen_t len = sizeof so_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
        die("getsockopt SO_ERROR");

    char pollbuf[32];
    if (pret == -1)
        snprintf(pollbuf, sizeof pollbuf, "-1_%s", errno_name(perr));
    else
        snprintf(pollbuf, sizeof pollbuf, "%d", pret);
    char extra[256];
    snprintf(extra, sizeof extra, " poll=%s revents=%s so_error=%s",
             pollbuf, poll_names(pfd.revents), errno_name(so_error));

    if (ret == 0 || (ret == -1 && err == EINPROGRESS)) {
        report_str("connect_nonblock", "0_or_EINPROGRESS", "0_or_EINPROGRESS", el, 0, extra);
    } else {
        report("connect_nonblock", ret, err, el, 0, extra);
    }
    close(fd);
    close(lfd);
}

/* ---------- blocking read ---------- */

static void check_blocking_read_data_100(void)
{
    int p[2];
    struct writer w;
    char buf[16];
    make_pipe(p);
    double t0 = now_ms();
    start_writer(&w, p[1], 100);
    long ret = read(p[0], buf, sizeof buf);
    int err = errno;
    double el = now_ms() - t0;
    join_writer(&w);
    char extra[256];
    snprintf(extra, sizeof extra, " data=%.*s", ret > 0 ? (int)ret : 0, buf);
    report("blocking_read_data_100", ret, err, el, 100, extra);
    close_pair(p);
}

/* ---------- sleeps ---------- */

static void check_nanosleep_rem(void)
{
    struct timespec req = { 0, 50 * 1000000L };
    struct timespec rem = { 0, 0 };
    double t0 = now_ms();
    int ret = nanosleep(&req, &rem);
    int err = errno;
    double el = now_ms() - t0;
    char extra[256];
    snprintf(extra, sizeof extra, " rem=%ld.%09ld", (long)rem.tv_sec, (long)rem.tv_nsec);
    report("nanosleep_rem", ret, err, el, 50, extra);
}

static void check_nanosleep_einval(void)
{
    struct timespec req = { 0, 1000000000L };
    double t0 = now_ms();
    int ret = nanosleep(&req, NULL);
    int err = errno;
    double el = now_ms() - t0;
    report("nanosleep_einval", ret, err, el, 0, "");
}

static void check_clock_nanosleep_einval(void)
{
    struct timespec req = { 0, 1000000000L };
    double t0 = now_ms();
    int ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    double el = now_ms() - t0;
    /* clock_nanosleep returns the error number and leaves errno alone. */
    report_str("clock_nanosleep_einval", errno_name(ret), "0", el, 0, "");
}

static void check_clock_nanosleep_abs_past(void)
{
    struct timespec when;
    if (clock_gettime(CLOCK_MONOTONIC, &when) != 0)
        die("clock_gettime");
    when.tv_sec -= 1;
    double t0 = now_ms();
    int ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL);
    double el = now_ms() - t0;
    report_str("clock_nanosleep_abs_past", errno_name(ret), "0", el, 0, "");
}

int main(void)
{
    print_stdio_flags("start");

    check_poll_idle_200();
    check_poll_data_100();
    check_poll_zero();
    check_poll_nfds0_100();
    check_ppoll_idle_150();
    check_select_idle_200();
    check_select_data_100();
    check_pselect_idle_150();
    check_epoll_wait_idle_200();
    check_epoll_wait_data_100();
    check_epoll_pwait_idle_100();
    check_rcvtimeo_recv_200();
    check_rcvtimeo_read_200();
    check_rcvtimeo_accept_200();
    check_sndtimeo_send_200();
    check_nonblock_pipe_read();
    check_fionbio_recv();
    check_sock_nonblock_accept();
    check_connect_refused();
    check_connect_nonblock();
    check_blocking_read_data_100();
    check_nanosleep_rem();
    check_nanosleep_einval();
    check_clock_nanosleep_einval();
    check_clock_nanosleep_abs_past();

    print_stdio_flags("end");
    return 0;
}
