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
#include <sys/socket.h>
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
    struct after *a = after(100, write_abc, s);
    double t0 = now_ms();
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

/* Natively the big write returns short, the reset stays pending for the next call
 * (ECONNRESET, no signal); only the call after that gets EPIPE and SIGPIPE. */
static void reset_during_big_write(int next_is_read) {
    int c, s;
    tcp_pair(&c, &s);
    pthread_t t;
    pthread_create(&t, NULL, read_some_then_reset, &s);
    ssize_t n = write(c, huge, sizeof huge);
    printf("big write: %s\n", n > 0 && n < (ssize_t)sizeof huge ? "short" : en(errno));
    pthread_join(t, NULL);
    if (next_is_read)
        SHOW("next read", read(c, big, sizeof big));
    else
        SHOW("next write", write(c, "x", 1));
    signal(SIGPIPE, SIG_IGN);
    SHOW("then write", write(c, "x", 1));
    SHOW("then read", read(c, big, sizeof big));
}

CASE(rel_io_peer_reset_during_big_write_next_write) { reset_during_big_write(0); }

CASE(rel_io_peer_reset_during_big_write_next_read) { reset_during_big_write(1); }

/* ---------- connect on a socket a child could inherit ---------- */

static void accept_one(int l) {
    int a = accept(l, NULL, NULL);
    printf("accepted: %s\n", a >= 0 ? "yes" : en(errno));
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

/* A socket whose unsent data the peer never reads, closed with SO_LINGER {1, 1}: close
 * lingers its full second, and meanwhile the other thread runs. Afterwards the number
 * is free again, as lowest-free numbering expects. */
CASE(rel_io_close_lingering_socket_others_run) {
    int c, s;
    tcp_pair(&c, &s);
    int hole = socket(AF_INET, SOCK_STREAM, 0); /* takes the listener's old number */
    fill(c);
    struct linger lg = { 1, 1 };
    SHOW("SO_LINGER {1, 1}", setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    pthread_t t;
    pthread_create(&t, NULL, tick_until_closed, NULL);
    double t0 = now_ms();
    SHOW("close", close(c));
    printf("close lingered: %s\n", timing(now_ms() - t0, 1000));
    closing_done = 1;
    pthread_join(t, NULL);
    printf("the other thread ran during the close: %s\n", ticks >= 10 ? "yes" : "no");
    int again = socket(AF_INET, SOCK_STREAM, 0);
    printf("the next socket takes the closed number: %s\n", again == c ? "yes" : "no");
    SHOW("close the peer", close(s));
    close(again);
    close(hole);
}
