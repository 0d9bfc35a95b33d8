/* Reliability of the I/O paths (issue 9): zero and out-of-range counts on sockets, a
 * peer reset met after partial progress, connect on a socket a child could inherit,
 * close with SO_LINGER, and splice/tee/vmsplice/preadv2/pwritev2 on blocking sockets
 * and pipes. Every case runs natively and greenified and must print the same. */
#include "case.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ---------- helpers ---------- */

static char big[1 << 16];

/* A TCP listener on 127.0.0.1 with a kernel-chosen port; its address in *addr. */
static int tcp_listener(int backlog, struct sockaddr_in *addr) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, backlog) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        printf("tcp_listener failed: %s\n", en(errno));
        exit(3);
    }
    *addr = a;
    return l;
}

/* A connected TCP pair over loopback (blocking sockets). */
static void tcp_pair(int *client, int *server) {
    struct sockaddr_in a;
    int l = tcp_listener(1, &a);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*client, (struct sockaddr *)&a, sizeof a)) {
        printf("connect failed: %s\n", en(errno));
        exit(3);
    }
    *server = accept(l, NULL, NULL);
    if (*server < 0) {
        printf("accept failed: %s\n", en(errno));
        exit(3);
    }
    close(l);
}

static void unix_pair(int type, int sv[2]) {
    if (socketpair(AF_UNIX, type, 0, sv)) {
        printf("socketpair failed: %s\n", en(errno));
        exit(3);
    }
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

/* Fills fd's send path until a non-blocking send says EAGAIN. */
static void fill(int fd) {
    while (send(fd, big, sizeof big, MSG_DONTWAIT) > 0) {
    }
}

/* ---------- zero and out-of-range counts ---------- */

/* Natively read and readv of nothing answer 0 at once, whatever is queued; a hang here
 * is killed by the alarm. */
static void zero_reads(const char *what, int fd) {
    struct iovec none = { big, 0 };
    printf("%s:\n", what);
    SHOW("  read 0", read(fd, big, 0));
    SHOW("  readv of one empty iovec", readv(fd, &none, 1));
    SHOW("  readv of no iovec", readv(fd, &none, 0));
}

CASE(rel_io_zero_length_reads_nothing_queued) {
    alarm(5);
    int c, s, sv[2], dg[2];
    tcp_pair(&c, &s);
    unix_pair(SOCK_STREAM, sv);
    unix_pair(SOCK_DGRAM, dg);
    zero_reads("tcp", c);
    zero_reads("unix stream", sv[0]);
    zero_reads("unix datagram", dg[0]);
    /* Nothing was consumed: what comes next is read whole. */
    SHOW("peer writes", write(s, "abc", 3));
    SHOW("read 8", read(c, big, 8));
}

/* A count past SSIZE_MAX: read and write say EFAULT at once and move no byte. */
CASE(rel_io_count_past_ssize_max_efault) {
    alarm(5);
    int c, s, dg[2];
    tcp_pair(&c, &s);
    unix_pair(SOCK_DGRAM, dg);
    SHOW("peer writes", write(s, "abc", 3));
    msleep(50);
    SHOW("read SIZE_MAX, data queued", read(c, big, (size_t)opaque(-1)));
    SHOW("read SSIZE_MAX + 1", read(c, big, (size_t)opaque(LONG_MIN)));
    SHOW("read 8 gets it all", read(c, big, 8));
    SHOW("read SIZE_MAX, nothing queued", read(c, big, (size_t)opaque(-1)));
    SHOW("write SIZE_MAX, tcp", write(c, big, (size_t)opaque(-1)));
    SHOW("write SIZE_MAX, unix datagram", write(dg[0], big, (size_t)opaque(-1)));
    fill(c);
    SHOW("write SIZE_MAX, tcp send buffer full", write(c, big, (size_t)opaque(-1)));
}

/* IOV_MAX + 1 iovecs: readv and writev say EINVAL (recvmsg and sendmsg say EMSGSIZE). */
CASE(rel_io_iov_max_plus_one) {
    alarm(5);
    static struct iovec many[IOV_MAX + 1];
    for (int i = 0; i <= IOV_MAX; i++) many[i] = (struct iovec){ big, 1 };
    struct msghdr msg = { .msg_iov = many, .msg_iovlen = IOV_MAX + 1 };
    int c, s, sv[2];
    tcp_pair(&c, &s);
    unix_pair(SOCK_STREAM, sv);
    SHOW("readv tcp, nothing queued", readv(c, many, IOV_MAX + 1));
    SHOW("readv unix, nothing queued", readv(sv[0], many, IOV_MAX + 1));
    SHOW("recvmsg tcp", recvmsg(c, &msg, 0));
    SHOW("writev tcp", writev(c, many, IOV_MAX + 1));
    SHOW("sendmsg tcp", sendmsg(c, &msg, 0));
    SHOW("peer writes", write(s, "abc", 3));
    msleep(50);
    SHOW("readv tcp, data queued", readv(c, many, IOV_MAX + 1));
    SHOW("readv IOV_MAX", readv(c, many, IOV_MAX));
}

/* Zero-length sends and writes on a full socket answer 0 at once. */
CASE(rel_io_zero_length_writes_send_buffer_full) {
    alarm(5);
    struct iovec none = { big, 0 };
    struct msghdr msg = { .msg_iov = &none, .msg_iovlen = 1 };
    int c, s, sv[2];
    tcp_pair(&c, &s);
    unix_pair(SOCK_STREAM, sv);
    fill(c);
    fill(sv[0]);
    SHOW("write 0 tcp", write(c, big, 0));
    SHOW("writev empty tcp", writev(c, &none, 1));
    SHOW("send 0 tcp", send(c, big, 0, 0));
    SHOW("sendmsg empty tcp", sendmsg(c, &msg, 0));
    SHOW("write 0 unix", write(sv[0], big, 0));
    SHOW("send 0 unix", send(sv[0], big, 0, 0));
}

static void write_abc(int fd) { (void)!write(fd, "abc", 3); }

/* A zero-length recv on a blocking TCP socket waits for data, then answers 0 and leaves
 * the data queued. */
CASE(rel_io_recv_zero_length_tcp_waits_for_data) {
    alarm(5);
    int c, s;
    tcp_pair(&c, &s);
    double t0 = now_ms();
    struct after *a = after(100, write_abc, s);
    SHOW("recv 0", recv(c, big, 0, 0));
    printf("waited for the data: %s\n", timing(now_ms() - t0, 100));
    after_join(a);
    SHOW("read 8", read(c, big, 8));
}

/* ---------- a peer reset met after partial progress ---------- */

static char huge[32 << 20];

/* Reads 64 KiB of the big write, then resets the connection (SO_LINGER {1, 0}, and
 * unread data). */
static void *read_some_then_reset(void *p) {
    int s = *(int *)p;
    size_t got = 0;
    while (got < (64 << 10)) {
        ssize_t n = read(s, big, sizeof big);
        if (n <= 0) break;
        got += n;
    }
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
    return NULL;
}

enum next_call { NEXT_WRITE, NEXT_READ, NEXT_SO_ERROR };

/* Natively the big write returns short, the reset stays pending for the next call
 * (ECONNRESET, no signal); only the call after that gets EPIPE and SIGPIPE. */
static void reset_during_big_write(enum next_call next) {
    int c, s;
    tcp_pair(&c, &s);
    pthread_t t;
    pthread_create(&t, NULL, read_some_then_reset, &s);
    ssize_t n = write(c, huge, sizeof huge);
    printf("big write: %s\n", n > 0 && n < (ssize_t)sizeof huge ? "short" : en(errno));
    pthread_join(t, NULL);
    if (next == NEXT_READ) {
        SHOW("next read", read(c, big, sizeof big));
    } else if (next == NEXT_SO_ERROR) {
        int error = 0;
        socklen_t len = sizeof error;
        SHOW("getsockopt SO_ERROR", getsockopt(c, SOL_SOCKET, SO_ERROR, &error, &len));
        printf("SO_ERROR: %s\n", en(error));
    } else {
        SHOW("next write", write(c, "x", 1));
    }
    signal(SIGPIPE, SIG_IGN);
    SHOW("then write", write(c, "x", 1));
    SHOW("then read", read(c, big, sizeof big));
}

CASE(rel_io_peer_reset_during_big_write_next_write) { reset_during_big_write(NEXT_WRITE); }

CASE(rel_io_peer_reset_during_big_write_next_read) { reset_during_big_write(NEXT_READ); }

CASE(rel_io_peer_reset_during_big_write_so_error) { reset_during_big_write(NEXT_SO_ERROR); }

/* ---------- connect on a socket a child could inherit ---------- */

/* accept's result, printed by the main thread after the join (the two threads would
 * otherwise print in either order). */
static const char *accepted;

static void accept_one(int l) {
    int a = accept(l, NULL, NULL);
    accepted = a >= 0 ? "yes" : en(errno);
}

/* Runs /bin/true with posix_spawn and waits for it: before the child can inherit the
 * program's sockets, greenify makes them blocking again underneath. */
static void spawn_true(void) {
    char *argv[] = { "true", NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, NULL);
    int status = 0;
    if (rc == 0) waitpid(pid, &status, 0);
    printf("spawned /bin/true: %s, status %d\n", en(rc), status);
}

/* An AF_UNIX listener whose backlog is full, so a blocking connect waits for an accept
 * (that another thread makes); the socket was created before a posix_spawn. */
CASE(rel_io_connect_after_spawn_waits_for_accept) {
    alarm(5);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/rel_io_connect_%d", (int)getpid());
    unlink(a.sun_path);
    SHOW("bind", bind(l, (struct sockaddr *)&a, sizeof a));
    SHOW("listen backlog 0", listen(l, 0));
    int filler = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("first connect fills the backlog", connect(filler, (struct sockaddr *)&a, sizeof a));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    spawn_true();
    struct after *t = after(100, accept_one, l);
    SHOW("connect waits for the accept", connect(c, (struct sockaddr *)&a, sizeof a));
    after_join(t);
    printf("accepted: %s\n", accepted);
    printf("O_NONBLOCK after connect: %d\n", (fcntl(c, F_GETFL) & O_NONBLOCK) != 0);
    SHOW("write", write(c, "x", 1));
    unlink(a.sun_path);
}

/* The same with SO_SNDTIMEO and nobody accepting: the timeout's answer, on time. */
CASE(rel_io_connect_after_spawn_sndtimeo) {
    alarm(5);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/rel_io_sndtimeo_%d", (int)getpid());
    unlink(a.sun_path);
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 0);
    int filler = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("first connect fills the backlog", connect(filler, (struct sockaddr *)&a, sizeof a));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct timeval tv = { 0, 200000 };
    SHOW("SO_SNDTIMEO 200 ms", setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    spawn_true();
    double t0 = now_ms();
    SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    printf("after the timeout: %s\n", timing(now_ms() - t0, 200));
    printf("O_NONBLOCK after connect: %d\n", (fcntl(c, F_GETFL) & O_NONBLOCK) != 0);
    unlink(a.sun_path);
}

/* ---------- close with SO_LINGER ---------- */

static volatile int closing_done;
static volatile int ticks;

static void *tick_until_closed(void *p) {
    (void)p;
    while (!closing_done) {
        msleep(20);
        ticks++;
    }
    return NULL;
}

enum closing { BY_CLOSE, BY_DUP2, BY_CLOSE_RANGE };

/* A socket whose unsent data the peer never reads, closed with SO_LINGER {1, 1}: the
 * close lingers its full second, and meanwhile the other thread runs. Afterwards the
 * number is free (or replaced) at once, as natively. */
static void close_lingering(enum closing how) {
    int c, s;
    tcp_pair(&c, &s);
    int hole = socket(AF_INET, SOCK_STREAM, 0); /* takes the listener's old number */
    fill(c);
    struct linger lg = { 1, 1 };
    SHOW("SO_LINGER {1, 1}", setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    pthread_t t;
    pthread_create(&t, NULL, tick_until_closed, NULL);
    double t0 = now_ms();
    if (how == BY_CLOSE)
        SHOW("close", close(c));
    else if (how == BY_DUP2)
        SHOW("dup2 over it", dup2(hole, c));
    else
        SHOW("close_range over it", close_range(c, c, 0));
    printf("closing lingered: %s\n", timing(now_ms() - t0, 1000));
    closing_done = 1;
    pthread_join(t, NULL);
    printf("the other thread ran meanwhile: %s\n", ticks >= 10 ? "yes" : "no");
    if (how == BY_DUP2) {
        printf("the number now names the other socket: %s\n",
               fcntl(c, F_GETFL) >= 0 ? "yes" : en(errno));
    } else {
        int again = socket(AF_INET, SOCK_STREAM, 0);
        printf("the next socket takes the closed number: %s\n", again == c ? "yes" : "no");
    }
    SHOW("close the peer", close(s));
}

CASE(rel_io_close_lingering_socket_others_run) { close_lingering(BY_CLOSE); }

CASE(rel_io_dup2_over_lingering_socket_others_run) { close_lingering(BY_DUP2); }

CASE(rel_io_close_range_lingering_socket_others_run) { close_lingering(BY_CLOSE_RANGE); }

/* ---------- splice, tee, vmsplice, preadv2, pwritev2 ---------- */

static void make_pipe(int p[2]) {
    if (pipe(p)) {
        printf("pipe failed: %s\n", en(errno));
        exit(3);
    }
}

/* Fills a pipe through a non-blocking moment of its own. */
static void fill_pipe(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (write(fd, big, sizeof big) > 0) {
    }
    fcntl(fd, F_SETFL, fl);
}

/* Reads whatever is queued (socket or pipe), without waiting. */
static void drain(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (read(fd, big, sizeof big) > 0) {
    }
    fcntl(fd, F_SETFL, fl);
}

/* The call waits ~100 ms for another thread to make it possible; t0 is taken before that
 * thread starts, so a late t0 can never make the native run look early. */
#define WAITS_FOR_OTHER(t0, what, expr)                                              \
    do {                                                                             \
        SHOW(what, expr);                                                            \
        printf("  waited for the other thread: %s\n", timing(now_ms() - (t0), 100)); \
    } while (0)

CASE(rel_io_splice_from_blocking_socket_waits_for_data) {
    alarm(5);
    int c, s, p[2];
    tcp_pair(&c, &s);
    make_pipe(p);
    double t0 = now_ms();
    struct after *a = after(100, write_abc, s);
    WAITS_FOR_OTHER(t0, "splice socket -> pipe", splice(c, NULL, p[1], NULL, 100, 0));
    after_join(a);
    SHOW("read the pipe", read(p[0], big, sizeof big));
}

CASE(rel_io_splice_to_blocking_socket_waits_for_room) {
    alarm(5);
    int c, s, p[2];
    tcp_pair(&c, &s);
    make_pipe(p);
    fill(c);
    SHOW("write the pipe", write(p[1], "abc", 3));
    double t0 = now_ms();
    struct after *a = after(100, drain, s);
    WAITS_FOR_OTHER(t0, "splice pipe -> socket", splice(p[0], NULL, c, NULL, 3, 0));
    after_join(a);
}

/* SPLICE_F_NONBLOCK reaches only the pipe end: a full pipe answers EAGAIN at once, but
 * an empty blocking socket still waits. */
CASE(rel_io_splice_nonblock_flag_only_for_pipes) {
    alarm(5);
    int c, s, p[2];
    tcp_pair(&c, &s);
    make_pipe(p);
    fill_pipe(p[1]);
    SHOW("peer writes", write(s, "abc", 3));
    msleep(50);
    SHOW("splice to a full pipe, SPLICE_F_NONBLOCK",
         splice(c, NULL, p[1], NULL, 3, SPLICE_F_NONBLOCK));
    drain(p[0]);
    SHOW("splice", splice(c, NULL, p[1], NULL, 3, SPLICE_F_NONBLOCK));
    double t0 = now_ms();
    struct after *a = after(100, write_abc, s);
    WAITS_FOR_OTHER(t0, "splice from an empty socket, SPLICE_F_NONBLOCK",
                    splice(c, NULL, p[1], NULL, 3, SPLICE_F_NONBLOCK));
    after_join(a);
}

/* A full blocking pipe: splice waits while the thread that drains it runs. */
CASE(rel_io_splice_to_full_pipe_others_run) {
    alarm(5);
    int c, s, p[2];
    tcp_pair(&c, &s);
    make_pipe(p);
    fill_pipe(p[1]);
    SHOW("peer writes", write(s, "abc", 3));
    msleep(50);
    double t0 = now_ms();
    struct after *a = after(100, drain, p[0]);
    WAITS_FOR_OTHER(t0, "splice socket -> full pipe", splice(c, NULL, p[1], NULL, 3, 0));
    after_join(a);
}

CASE(rel_io_tee_empty_pipe_others_run) {
    alarm(5);
    int p[2], q[2];
    make_pipe(p);
    make_pipe(q);
    double t0 = now_ms();
    struct after *a = after(100, write_abc, p[1]);
    WAITS_FOR_OTHER(t0, "tee from an empty pipe", tee(p[0], q[1], 10, 0));
    after_join(a);
    SHOW("read the copy", read(q[0], big, sizeof big));
    SHOW("tee SPLICE_F_NONBLOCK copies the same bytes again",
         tee(p[0], q[1], 10, SPLICE_F_NONBLOCK));
}

CASE(rel_io_vmsplice_full_pipe_others_run) {
    alarm(5);
    int p[2];
    make_pipe(p);
    fill_pipe(p[1]);
    struct iovec v = { big, 10 };
    SHOW("vmsplice SPLICE_F_NONBLOCK", vmsplice(p[1], &v, 1, SPLICE_F_NONBLOCK));
    double t0 = now_ms();
    struct after *a = after(100, drain, p[0]);
    WAITS_FOR_OTHER(t0, "vmsplice into a full pipe", vmsplice(p[1], &v, 1, 0));
    after_join(a);
}

CASE(rel_io_preadv2_blocking_socket_waits) {
    alarm(5);
    int c, s;
    tcp_pair(&c, &s);
    struct iovec v = { big, 10 };
    SHOW("preadv2 RWF_NOWAIT", preadv2(c, &v, 1, -1, RWF_NOWAIT));
    double t0 = now_ms();
    struct after *a = after(100, write_abc, s);
    WAITS_FOR_OTHER(t0, "preadv2", preadv2(c, &v, 1, -1, 0));
    after_join(a);
    SHOW("preadv2 at an offset", preadv2(c, &v, 1, 0, 0));
}

CASE(rel_io_pwritev2_blocking_socket_waits) {
    alarm(5);
    int c, s;
    tcp_pair(&c, &s);
    fill(c);
    struct iovec v = { big, 10 };
    SHOW("pwritev2 RWF_NOWAIT", pwritev2(c, &v, 1, -1, RWF_NOWAIT));
    double t0 = now_ms();
    struct after *a = after(100, drain, s);
    WAITS_FOR_OTHER(t0, "pwritev2", pwritev2(c, &v, 1, -1, 0));
    after_join(a);
}

/* sendfile to a full socket or pipe waits for room; copy_file_range takes only files. */
CASE(rel_io_sendfile_waits_copy_file_range_files_only) {
    alarm(5);
    int c, s, p[2];
    tcp_pair(&c, &s);
    make_pipe(p);
    char path[] = "/tmp/rel_io_sendfile_XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    SHOW("write the file", write(f, "abc", 3));
    fill(c);
    fill_pipe(p[1]);
    off_t off = 0;
    double t0 = now_ms();
    struct after *a = after(100, drain, s);
    WAITS_FOR_OTHER(t0, "sendfile to a full socket", sendfile(c, f, &off, 3));
    after_join(a);
    off = 0;
    t0 = now_ms();
    a = after(100, drain, p[0]);
    WAITS_FOR_OTHER(t0, "sendfile to a full pipe", sendfile(p[1], f, &off, 3));
    after_join(a);
    off = 0;
    SHOW("copy_file_range file -> socket", copy_file_range(f, &off, c, NULL, 3, 0));
    SHOW("copy_file_range file -> pipe", copy_file_range(f, &off, p[1], NULL, 3, 0));
}

static void set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Each end blocks by its own rule: a pipe unless SPLICE_F_NONBLOCK or its O_NONBLOCK,
 * a socket unless its O_NONBLOCK (then SO_RCVTIMEO/SO_SNDTIMEO bound the wait). A wait
 * with no timeout ends with a signal (no SA_RESTART): EINTR. */
CASE(rel_io_splice_blocking_rules_matrix) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval stop = { { 0, 0 }, { 0, 400000 } }, none = { { 0, 0 }, { 0, 0 } };
    struct timeval tv = { 0, 200000 }; /* well before the signal */
#define RULE(what, expr)                                                             \
    do {                                                                             \
        setitimer(ITIMER_REAL, &stop, NULL);                                         \
        double t0_ = now_ms();                                                       \
        errno = 0;                                                                   \
        long r_ = (long)(expr);                                                      \
        int e_ = errno;                                                              \
        double took_ = now_ms() - t0_;                                               \
        setitimer(ITIMER_REAL, &none, NULL);                                         \
        printf("  %s: ret=%ld errno=%s %s\n", what, r_, r_ == -1 ? en(e_) : "0",     \
               took_ < 150 ? "at once" : "after waiting");                           \
    } while (0)
    for (int sock_nb = 0; sock_nb < 2; sock_nb++)
        for (int pipe_nb = 0; pipe_nb < 2; pipe_nb++)
            for (int flag = 0; flag < 2; flag++) {
                unsigned f = flag ? SPLICE_F_NONBLOCK : 0;
                int c, s, p[2], q[2], r[2];
                tcp_pair(&c, &s);
                make_pipe(p);
                make_pipe(q);
                make_pipe(r);
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                set_nonblock(c, sock_nb);
                for (int i = 0; i < 2; i++) {
                    set_nonblock(p[i], pipe_nb);
                    set_nonblock(q[i], pipe_nb);
                    set_nonblock(r[i], pipe_nb);
                }
                printf("socket O_NONBLOCK %d, pipes O_NONBLOCK %d, SPLICE_F_NONBLOCK %d:\n",
                       sock_nb, pipe_nb, flag);
                RULE("empty socket -> pipe", splice(c, NULL, p[1], NULL, 10, f));
                (void)!write(s, "abc", 3);
                msleep(30);
                fill_pipe(p[1]);
                RULE("socket with data -> full pipe", splice(c, NULL, p[1], NULL, 10, f));
                RULE("empty pipe -> socket", splice(q[0], NULL, c, NULL, 10, f));
                (void)!write(q[1], "abc", 3);
                fill(c);
                RULE("pipe with data -> full socket", splice(q[0], NULL, c, NULL, 3, f));
                RULE("tee from an empty pipe", tee(r[0], q[1], 10, f));
                close(c);
                close(s);
                for (int i = 0; i < 2; i++) {
                    close(p[i]);
                    close(q[i]);
                    close(r[i]);
                }
            }
#undef RULE
}

/* The same full backlog, and a signal without SA_RESTART during the wait: EINTR (with
 * or without a child started before). */
/* SIGALRM's handler (no SA_RESTART) and a unix listener at `a` whose backlog one
 * connection fills. */
static void full_backlog_with_alarm_handler(struct sockaddr_un *a, const char *name) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    *a = (struct sockaddr_un){ .sun_family = AF_UNIX };
    snprintf(a->sun_path, sizeof a->sun_path, "/tmp/%s_%d", name, (int)getpid());
    unlink(a->sun_path);
    bind(l, (struct sockaddr *)a, sizeof *a);
    listen(l, 0);
    int filler = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("first connect fills the backlog", connect(filler, (struct sockaddr *)a, sizeof *a));
}

static void connect_full_backlog_eintr(int spawn_first) {
    alarm(5);
    struct sockaddr_un a;
    full_backlog_with_alarm_handler(&a, "rel_io_eintr");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (spawn_first) spawn_true();
    struct itimerval stop = { { 0, 0 }, { 0, 200000 } };
    setitimer(ITIMER_REAL, &stop, NULL);
    double t0 = now_ms();
    SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    printf("interrupted by the signal: %s\n", timing(now_ms() - t0, 200));
    printf("O_NONBLOCK after connect: %d\n", (fcntl(c, F_GETFL) & O_NONBLOCK) != 0);
    unlink(a.sun_path);
}

CASE(rel_io_connect_full_unix_backlog_eintr) { connect_full_backlog_eintr(0); }

CASE(rel_io_connect_after_spawn_eintr) { connect_full_backlog_eintr(1); }

/* A connect that waits on a full backlog is ended by a SIGALRM whatever moment of the wait
 * it lands in (greenified, the wait is several parks: a signal between two of them, or
 * after one was woken but before the thread ran again, once went unnoticed until the next
 * signal). 60 rounds, the alarm 1-40 ms in; the 300 ms repeat only ends a missed one:
 * the handler ran twice when connect returns, or (two signals may merge into one) the
 * round took 280 ms more than the alarm beyond what the case waited for a CPU. */
CASE(rel_io_connect_full_backlog_eintr_any_moment) {
    alarm(30);
    struct sockaddr_un a;
    full_backlog_with_alarm_handler(&a, "rel_io_any");
    int eintr = 0, missed = 0;
    for (int round = 0; round < 60; round++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        long first = 1 + round % 40;
        struct itimerval it = { { 0, 300000 }, { 0, first * 1000 } };
        int before = alarms;
        double stalled = stall_ms(), t0 = now_ms();
        setitimer(ITIMER_REAL, &it, NULL);
        int r = connect(c, (struct sockaddr *)&a, sizeof a);
        int e = errno, signals = alarms - before;
        double took = now_ms() - t0;
        struct itimerval off = { { 0, 0 }, { 0, 0 } };
        setitimer(ITIMER_REAL, &off, NULL);
        eintr += r == -1 && e == EINTR;
        missed += signals >= 2 || took - (stall_ms() - stalled) >= first + 280;
        close(c);
    }
    printf("rounds ended by EINTR: %d/60, by a later signal: %d\n", eintr, missed);
    unlink(a.sun_path);
}

/* A call that waits and then succeeds leaves errno as it found it, as natively (a
 * successful call never sets errno): a read, a poll and a sigtimedwait, each woken 20 ms
 * later by another thread. */
static void *write_x_later(void *fd) {
    msleep(20);
    write_x((int)(intptr_t)fd);
    return NULL;
}

static void send_usr1_to_process(int unused) {
    (void)unused;
    kill(getpid(), SIGUSR1);
}

CASE(rel_io_success_after_a_wait_keeps_errno) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pthread_t t;
    char c;
    pthread_create(&t, NULL, write_x_later, (void *)(intptr_t)sv[1]);
    errno = EDOM;
    ssize_t r = read(sv[0], &c, 1);
    printf("read: %zd errno %s\n", r, en(errno));
    pthread_join(t, NULL);

    pthread_create(&t, NULL, write_x_later, (void *)(intptr_t)sv[1]);
    struct pollfd p = { sv[0], POLLIN, 0 };
    errno = ERANGE;
    int n = poll(&p, 1, 5000);
    printf("poll: %d errno %s\n", n, en(errno));
    pthread_join(t, NULL);
    read(sv[0], &c, 1);

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    struct after *a = after(20, send_usr1_to_process, 0);
    struct timespec five = { 5, 0 };
    errno = EXDEV;
    int sig = sigtimedwait(&usr1, NULL, &five);
    printf("sigtimedwait: %s errno %s\n", sig == SIGUSR1 ? "SIGUSR1" : "other", en(errno));
    after_join(a);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    close(sv[0]);
    close(sv[1]);
}
