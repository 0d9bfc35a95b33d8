/* The socket API on 127.0.0.1, ::1 and AF_UNIX: creation flags, bind/listen/accept/connect
 * and their errors, the send and recv families and their flags, peer closes and resets,
 * shutdown, socket timeouts, fd passing, threads sharing sockets, sendfile.
 * Addresses and ports are never printed: only families and "equals the expected one". */
#include "case.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* ---------- helpers ---------- */

static struct sockaddr_in lo4(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A TCP listener on 127.0.0.1 with a kernel-chosen port; its address in *addr. */
static int tcp_listener(int backlog, struct sockaddr_in *addr) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo4(0);
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, backlog) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        printf("tcp_listener failed: %s\n", en(errno));
        exit(3);
    }
    if (addr) *addr = a;
    return l;
}

static int tcp_connect(const struct sockaddr_in *a) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) return -1;
    if (connect(c, (const struct sockaddr *)a, sizeof *a)) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

/* A connected TCP pair over loopback (blocking sockets). */
static void tcp_pair(int *client, int *server) {
    struct sockaddr_in a;
    int l = tcp_listener(1, &a);
    *client = tcp_connect(&a);
    *server = accept(l, NULL, NULL);
    if (*client < 0 || *server < 0) {
        printf("tcp_pair failed: %s\n", en(errno));
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

/* A filesystem AF_UNIX address in /tmp with the pid in it (unlinked first). */
static socklen_t unix_path(struct sockaddr_un *a, const char *tag) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "/tmp/greenify-sock-%d-%s", (int)getpid(), tag);
    unlink(a->sun_path);
    return sizeof *a;
}

/* An abstract AF_UNIX address with the pid in it. */
static socklen_t unix_abstract(struct sockaddr_un *a, const char *tag) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "greenify-sock-%d-%s",
                     (int)getpid(), tag);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int unix_listener(int type, int backlog, struct sockaddr_un *a, const char *tag) {
    socklen_t len = unix_path(a, tag);
    int l = socket(AF_UNIX, type, 0);
    if (l < 0 || bind(l, (struct sockaddr *)a, len) || listen(l, backlog)) {
        printf("unix_listener failed: %s\n", en(errno));
        exit(3);
    }
    return l;
}

static int unix_connect(int type, const struct sockaddr_un *a) {
    int c = socket(AF_UNIX, type, 0);
    if (connect(c, (const struct sockaddr *)a, sizeof *a)) {
        int e = errno;
        close(c);
        errno = e;
        return -1;
    }
    return c;
}

static int is_nonblock(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
static int is_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

static void show_flags(const char *what, int fd) {
    printf("%s: nonblock=%d cloexec=%d\n", what, is_nonblock(fd), is_cloexec(fd));
}

static void set_nonblock(int fd, int on) {
    int f = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? f | O_NONBLOCK : f & ~O_NONBLOCK);
}

static void set_timeo(int fd, int name, long ms) {
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv)) printf("setsockopt failed\n");
}

/* Fills fd's send path (the peer not reading) until EAGAIN; returns bytes queued. */
static long fill(int fd) {
    static char junk[65536];
    long total = 0;
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) { total += n; continue; }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* smaller pieces may still fit */
            n = send(fd, junk, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) { total += n; continue; }
        }
        return total;
    }
}

/* A helper thread that acts on a socket after a delay. */
enum act_kind { ACT_SEND, ACT_CLOSE, ACT_SHUT_RD, ACT_SHUT_WR, ACT_SHUT_RDWR, ACT_CONNECT,
                ACT_ACCEPT_CLOSE, ACT_RECV_DRAIN, ACT_SENDTO };
struct act {
    pthread_t th;
    enum act_kind kind;
    int fd;
    long ms;
    const char *data;
    size_t len;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    long result;
    int err;
};

static void *act_main(void *p) {
    struct act *a = p;
    msleep(a->ms);
    errno = 0;
    switch (a->kind) {
    case ACT_SEND: a->result = send(a->fd, a->data, a->len, MSG_NOSIGNAL); break;
    case ACT_CLOSE: a->result = close(a->fd); break;
    case ACT_SHUT_RD: a->result = shutdown(a->fd, SHUT_RD); break;
    case ACT_SHUT_WR: a->result = shutdown(a->fd, SHUT_WR); break;
    case ACT_SHUT_RDWR: a->result = shutdown(a->fd, SHUT_RDWR); break;
    case ACT_CONNECT: {
        int c = socket(a->addr.ss_family, SOCK_STREAM, 0);
        a->result = connect(c, (struct sockaddr *)&a->addr, a->addrlen);
        a->err = errno;
        msleep(50);
        close(c);
        return NULL;
    }
    case ACT_ACCEPT_CLOSE: {
        int s = accept(a->fd, NULL, NULL);
        a->result = s >= 0 ? 0 : -1;
        a->err = errno;
        if (s >= 0) close(s);
        return NULL;
    }
    case ACT_RECV_DRAIN: {
        /* one blocking recv, then whatever else is queued */
        static char b[65536];
        long n = recv(a->fd, b, sizeof b, 0);
        a->result = n;
        a->err = errno;
        while (n > 0) n = recv(a->fd, b, sizeof b, MSG_DONTWAIT);
        return NULL;
    }
    case ACT_SENDTO:
        a->result = sendto(a->fd, a->data, a->len, 0, (struct sockaddr *)&a->addr, a->addrlen);
        break;
    }
    a->err = errno;
    return NULL;
}

static void act_start(struct act *a, enum act_kind kind, int fd, long ms, const char *data) {
    a->kind = kind;
    a->fd = fd;
    a->ms = ms;
    a->data = data;
    a->len = data ? strlen(data) : 0;
    pthread_create(&a->th, NULL, act_main, a);
}

static void act_join(struct act *a) { pthread_join(a->th, NULL); }

static void show_act(const char *what, struct act *a) {
    printf("%s: ret=%ld errno=%s\n", what, a->result, a->result == -1 ? en(a->err) : "0");
}

/* A thread that runs one blocking call and records its result and time. */
struct call {
    pthread_t th;
    int fd;
    int op; /* 0 recv, 1 accept, 2 read */
    char buf[64];
    long result;
    int err;
    double t0;
    double ms;
};

static void *call_main(void *p) {
    struct call *c = p;
    errno = 0;
    if (c->op == 0) c->result = recv(c->fd, c->buf, sizeof c->buf - 1, 0);
    else if (c->op == 1) {
        c->result = accept(c->fd, NULL, NULL);
        if (c->result >= 0) { close((int)c->result); c->result = 0; }
    } else c->result = read(c->fd, c->buf, sizeof c->buf - 1);
    c->err = errno;
    c->ms = now_ms() - c->t0;
    return NULL;
}

static void call_start(struct call *c, int op, int fd) {
    memset(c, 0, sizeof *c);
    c->op = op;
    c->fd = fd;
    c->t0 = now_ms();
    pthread_create(&c->th, NULL, call_main, c);
}

static void call_show(const char *what, struct call *c) {
    pthread_join(c->th, NULL);
    printf("%s: ret=%ld errno=%s", what, c->result, c->result == -1 ? en(c->err) : "0");
    if (c->result > 0 && c->op != 1) printf(" data=%.*s", (int)c->result, c->buf);
    printf("\n");
}

static int have_ipv6(void) {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    if (s < 0) return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static unsigned checksum(const unsigned char *p, size_t n, unsigned h) {
    for (size_t i = 0; i < n; i++) h = h * 31 + p[i];
    return h;
}

/* ---------- socket() ---------- */

CASE(sock_socket_errors) {
    SHOW("socket(12345)", socket(12345, SOCK_STREAM, 0));
    SHOW("socket(INET, STREAM, UDP)", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    SHOW("socket(INET, DGRAM, TCP)", socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP));
    SHOW("socket(INET, 99)", socket(AF_INET, 99, 0));
    SHOW("socket(UNIX, STREAM, 7)", socket(AF_UNIX, SOCK_STREAM, 7));
    SHOW("socket(INET, STREAM|bogus flag)", socket(AF_INET, SOCK_STREAM | 0x40000000, 0));
    SHOW("socket(-1)", socket(-1, SOCK_STREAM, 0));
}

CASE(sock_socket_default_flags) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    show_flags("tcp", s);
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    show_flags("unix dgram", u);
    int d = socket(AF_INET, SOCK_DGRAM, 0);
    show_flags("udp", d);
    close(s); close(u); close(d);
}

CASE(sock_socket_nonblock_cloexec_flags) {
    int a = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    show_flags("NONBLOCK", a);
    int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    show_flags("CLOEXEC", b);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    show_flags("both", c);
    close(a); close(b); close(c);
}

CASE(sock_socketpair_flags_and_errors) {
    int sv[2];
    SHOW("socketpair(UNIX, STREAM|NONBLOCK)", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    show_flags("sv0", sv[0]);
    show_flags("sv1", sv[1]);
    close(sv[0]); close(sv[1]);
    SHOW("socketpair(UNIX, DGRAM|CLOEXEC)", socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
    show_flags("sv0", sv[0]);
    close(sv[0]); close(sv[1]);
    SHOW("socketpair(INET, STREAM)", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    SHOW("socketpair(UNIX, STREAM, 9)", socketpair(AF_UNIX, SOCK_STREAM, 9, sv));
}

CASE(sock_fcntl_setfl_roundtrip) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    show_flags("fresh", s);
    set_nonblock(s, 1);
    show_flags("after F_SETFL O_NONBLOCK", s);
    set_nonblock(s, 0);
    show_flags("after clearing", s);
    printf("O_RDWR kept: %d\n", (fcntl(s, F_GETFL) & O_ACCMODE) == O_RDWR);
    close(s);
}

CASE(sock_fionbio_roundtrip) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int on = 1, off = 0;
    char b[4];
    SHOW("ioctl(FIONBIO, 1)", ioctl(sv[0], FIONBIO, &on));
    show_flags("after on", sv[0]);
    double t0 = now_ms();
    SHOW("recv nonblocking", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    SHOW("ioctl(FIONBIO, 0)", ioctl(sv[0], FIONBIO, &off));
    show_flags("after off", sv[0]);
    struct act w;
    t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 60, "x");
    SHOW("recv blocking", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

/* O_NONBLOCK belongs to the open file description, which dup shares. */
CASE(sock_dup_shares_nonblock_flag) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int d = dup(s);
    set_nonblock(s, 1);
    show_flags("original", s);
    show_flags("dup", d);
    set_nonblock(d, 0);
    show_flags("original after dup cleared", s);
    close(s); close(d);
}

CASE(sock_dup_nonblock_set_after_dup_recv) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int d = dup(sv[0]);
    set_nonblock(sv[0], 1);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 300, "late");
    char b[8];
    SHOW("recv on dup", recv(d, b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    act_join(&w);
    close(d); close(sv[0]); close(sv[1]);
}

CASE(sock_getsockopt_type_domain) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int u = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    int v;
    socklen_t len = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len);
    printf("tcp type stream: %d\n", v == SOCK_STREAM);
    getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &len);
    printf("tcp domain inet: %d\n", v == AF_INET);
    getsockopt(u, SOL_SOCKET, SO_TYPE, &v, &len);
    printf("unix type seqpacket: %d\n", v == SOCK_SEQPACKET);
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
    printf("acceptconn before listen: %d\n", v);
    listen(s, 1);
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
    printf("acceptconn after listen: %d\n", v);
    SHOW("getsockopt on a pipe", ({ int p[2]; pipe(p); int r = getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &len); int e = errno; close(p[0]); close(p[1]); errno = e; r; }));
    close(s); close(u);
}

/* ---------- bind / listen ---------- */

CASE(sock_bind_twice_einval) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo4(0);
    SHOW("bind", bind(s, (struct sockaddr *)&a, sizeof a));
    SHOW("bind again", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
}

CASE(sock_bind_tcp_addrinuse) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("bind same port", bind(s, (struct sockaddr *)&a, sizeof a));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    SHOW("bind same port, SO_REUSEADDR on a listening port", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s); close(l);
}

CASE(sock_bind_udp_addrinuse) {
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in x = lo4(0);
    socklen_t len = sizeof x;
    bind(a, (struct sockaddr *)&x, sizeof x);
    getsockname(a, (struct sockaddr *)&x, &len);
    SHOW("bind udp same port", bind(b, (struct sockaddr *)&x, sizeof x));
    close(a); close(b);
}

CASE(sock_bind_bad_args) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo4(0);
    SHOW("bind short len", bind(s, (struct sockaddr *)&a, 4));
    struct sockaddr_un u;
    memset(&u, 0, sizeof u);
    u.sun_family = AF_UNIX;
    SHOW("bind unix addr to inet socket", bind(s, (struct sockaddr *)&u, sizeof u));
    SHOW("bind on bad fd", bind(9999, (struct sockaddr *)&a, sizeof a));
    int fd = open("/dev/null", O_RDONLY);
    SHOW("bind on /dev/null", bind(fd, (struct sockaddr *)&a, sizeof a));
    close(fd);
    close(s);
}

CASE(sock_bind_unix_path_inuse) {
    struct sockaddr_un a;
    socklen_t len = unix_path(&a, "inuse");
    int s = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind", bind(s, (struct sockaddr *)&a, len));
    SHOW("bind same path", bind(t, (struct sockaddr *)&a, len));
    close(s);
    SHOW("bind after first closed (file remains)", bind(t, (struct sockaddr *)&a, len));
    unlink(a.sun_path);
    SHOW("bind after unlink", bind(t, (struct sockaddr *)&a, len));
    close(t);
    unlink(a.sun_path);
}

CASE(sock_bind_unix_abstract_inuse) {
    struct sockaddr_un a;
    socklen_t len = unix_abstract(&a, "abs");
    int s = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind", bind(s, (struct sockaddr *)&a, len));
    SHOW("bind same name", bind(t, (struct sockaddr *)&a, len));
    close(s);
    SHOW("bind after first closed", bind(t, (struct sockaddr *)&a, len));
    close(t);
}

CASE(sock_bind_unix_missing_dir) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/greenify-no-such-dir-%d/s", (int)getpid());
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind in a missing directory", bind(s, (struct sockaddr *)&a, sizeof a));
    close(s);
}

CASE(sock_listen_errors) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("listen on udp", listen(u, 1));
    int c, s;
    tcp_pair(&c, &s);
    SHOW("listen on a connected socket", listen(c, 1));
    SHOW("listen on bad fd", listen(9999, 1));
    int p[2];
    pipe(p);
    SHOW("listen on a pipe", listen(p[0], 1));
    int ud = socket(AF_UNIX, SOCK_DGRAM, 0);
    SHOW("listen on unix dgram", listen(ud, 1));
    close(u); close(c); close(s); close(p[0]); close(p[1]); close(ud);
}

CASE(sock_listen_unbound_autobinds) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("listen unbound", listen(s, 1));
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    printf("family inet: %d port assigned: %d\n", a.sin_family == AF_INET, a.sin_port != 0);
    SHOW("listen again (new backlog)", listen(s, 8));
    close(s);
}

/* ---------- accept ---------- */

CASE(sock_accept_errors) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("accept on an unbound socket", accept(s, NULL, NULL));
    struct sockaddr_in a = lo4(0);
    bind(s, (struct sockaddr *)&a, sizeof a);
    SHOW("accept on a bound, not listening socket", accept(s, NULL, NULL));
    SHOW("accept on bad fd", accept(9999, NULL, NULL));
    SHOW("accept on -1", accept(-1, NULL, NULL));
    int f = open("/dev/null", O_RDONLY);
    SHOW("accept on /dev/null", accept(f, NULL, NULL));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("accept on udp", accept(u, NULL, NULL));
    close(s); close(f); close(u);
}

/* A pipe is not a socket: ENOTSOCK at once, whether or not it has data. */
static void *write_pipe_later(void *p) {
    msleep(200);
    write(*(int *)p, "w", 1);
    return NULL;
}

CASE(sock_accept_on_empty_pipe_enotsock) {
    int p[2];
    pipe(p);
    pthread_t th;
    pthread_create(&th, NULL, write_pipe_later, &p[1]);
    double t0 = now_ms();
    SHOW("accept on an empty pipe", accept(p[0], NULL, NULL));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    pthread_join(th, NULL);
    close(p[0]); close(p[1]);
}

CASE(sock_recv_on_empty_pipe_enotsock) {
    int p[2];
    pipe(p);
    pthread_t th;
    pthread_create(&th, NULL, write_pipe_later, &p[1]);
    char b[4];
    double t0 = now_ms();
    SHOW("recv on an empty pipe", recv(p[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    pthread_join(th, NULL);
    close(p[0]); close(p[1]);
}

CASE(sock_recvmsg_on_empty_pipe_enotsock) {
    int p[2];
    pipe(p);
    pthread_t th;
    pthread_create(&th, NULL, write_pipe_later, &p[1]);
    char b[4];
    struct iovec iov = { b, sizeof b };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    double t0 = now_ms();
    SHOW("recvmsg on an empty pipe", recvmsg(p[0], &m, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    pthread_join(th, NULL);
    close(p[0]); close(p[1]);
}

CASE(sock_send_on_pipe_enotsock) {
    int p[2];
    pipe(p);
    SHOW("send on a pipe", send(p[1], "x", 1, 0));
    SHOW("recv on a pipe with data", ({ write(p[1], "y", 1); char b[2]; recv(p[0], b, 2, 0); }));
    SHOW("recv on a regular file", ({ int f = open("/proc/self/status", O_RDONLY); char b[2]; int r = recv(f, b, 2, 0); int e = errno; close(f); errno = e; r; }));
    close(p[0]); close(p[1]);
}

CASE(sock_accept4_bad_flags) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    SHOW("accept4(bogus flags)", accept4(l, NULL, NULL, 0x1));
    SHOW("accept4(O_APPEND)", accept4(l, NULL, NULL, O_APPEND));
    close(l);
}

CASE(sock_accept_nonblock_listener_eagain) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    set_nonblock(l, 1);
    double t0 = now_ms();
    SHOW("accept", accept(l, NULL, NULL));
    SHOW("accept4", accept4(l, NULL, NULL, SOCK_CLOEXEC));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    int c = tcp_connect(&a);
    msleep(20);
    int s = accept(l, NULL, NULL);
    printf("accept after connect ok: %d\n", s >= 0);
    show_flags("accepted (listener nonblocking)", s);
    close(c); close(s); close(l);
}

CASE(sock_accept_unix_nonblock_eagain) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "nbacc");
    int on = 1;
    ioctl(l, FIONBIO, &on);
    SHOW("accept", accept(l, NULL, NULL));
    unlink(a.sun_path);
    close(l);
}

CASE(sock_accept4_flags) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int c1 = tcp_connect(&a), c2 = tcp_connect(&a), c3 = tcp_connect(&a);
    int s1 = accept4(l, NULL, NULL, 0);
    show_flags("accept4(0)", s1);
    int s2 = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    show_flags("accept4(NONBLOCK)", s2);
    int s3 = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    show_flags("accept4(NONBLOCK|CLOEXEC)", s3);
    char b[4];
    SHOW("recv on the NONBLOCK one", recv(s2, b, sizeof b, 0));
    close(c1); close(c2); close(c3); close(s1); close(s2); close(s3); close(l);
}

CASE(sock_accept_blocks_until_connect) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    struct act c;
    memcpy(&c.addr, &a, sizeof a);
    c.addrlen = sizeof a;
    double t0 = now_ms();
    act_start(&c, ACT_CONNECT, -1, 80, NULL);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &len);
    printf("accept ok: %d time=%s\n", s >= 0, timing(now_ms() - t0, 80));
    printf("peer family inet: %d addr loopback: %d len: %d\n", peer.sin_family == AF_INET,
           peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK), len == sizeof peer);
    act_join(&c);
    show_act("connect", &c);
    close(s); close(l);
}

CASE(sock_accept_addr_len_small) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int c = tcp_connect(&a);
    char buf[64];
    memset(buf, 0x5a, sizeof buf);
    socklen_t len = 4;
    int s = accept(l, (struct sockaddr *)buf, &len);
    printf("accept ok: %d len reported: %d untouched after 4: %d\n", s >= 0, (int)len,
           (unsigned char)buf[4] == 0x5a);
    len = 0;
    int c2 = tcp_connect(&a);
    int s2 = accept(l, (struct sockaddr *)buf, &len);
    printf("accept len 0 ok: %d len reported: %d\n", s2 >= 0, (int)len);
    close(c); close(s); close(c2); close(s2); close(l);
}

CASE(sock_accept_unix_peer_addr) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "peer");
    int c = unix_connect(SOCK_STREAM, &a);
    struct sockaddr_un p;
    socklen_t len = sizeof p;
    int s = accept(l, (struct sockaddr *)&p, &len);
    printf("accept ok: %d family unix: %d unnamed (len == family only): %d\n", s >= 0,
           p.sun_family == AF_UNIX, len == sizeof(sa_family_t));
    len = sizeof p;
    getpeername(c, (struct sockaddr *)&p, &len);
    printf("client's peer is the listener path: %d\n", !strcmp(p.sun_path, a.sun_path));
    close(c); close(s); close(l);
    unlink(a.sun_path);
}

CASE(sock_accept_rcvtimeo_on_listener) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    set_timeo(l, SO_RCVTIMEO, 100);
    double t0 = now_ms();
    SHOW("accept", accept(l, NULL, NULL));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(l);
}

CASE(sock_accept_rcvtimeo_unix_listener) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "acctmo");
    set_timeo(l, SO_RCVTIMEO, 80);
    double t0 = now_ms();
    SHOW("accept4", accept4(l, NULL, NULL, SOCK_CLOEXEC));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 80));
    close(l);
    unlink(a.sun_path);
}

/* Linux copies the listener's socket options, SO_RCVTIMEO included, to accepted sockets. */
CASE(sock_accepted_inherits_rcvtimeo) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    set_timeo(l, SO_RCVTIMEO, 100);
    int c = tcp_connect(&a);
    int s = accept(l, NULL, NULL);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("accepted SO_RCVTIMEO: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 500, "late");
    char b[8];
    SHOW("recv on the accepted socket", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    act_join(&w);
    close(c); close(s); close(l);
}

CASE(sock_accepted_inherits_sndtimeo) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    set_timeo(l, SO_SNDTIMEO, 100);
    int c = tcp_connect(&a);
    int s = accept(l, NULL, NULL);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &len);
    printf("accepted SO_SNDTIMEO: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    fill(s);
    struct act r;
    double t0 = now_ms();
    act_start(&r, ACT_RECV_DRAIN, c, 500, NULL);
    SHOW("send on the full accepted socket", send(s, "x", 1, MSG_NOSIGNAL));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    act_join(&r);
    close(c); close(s); close(l);
}

CASE(sock_accept_shutdown_wakes) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    struct call c;
    call_start(&c, 1, l);
    msleep(50);
    SHOW("shutdown(listener, SHUT_RD)", shutdown(l, SHUT_RD));
    call_show("parked accept", &c);
    printf("time=%s\n", timing(c.ms, 50));
    close(l);
}

CASE(sock_accept_shutdown_wakes_unix) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "accshut");
    struct call c;
    call_start(&c, 1, l);
    msleep(50);
    SHOW("shutdown(listener, SHUT_RDWR)", shutdown(l, SHUT_RDWR));
    msleep(50);
    int cl = unix_connect(SOCK_STREAM, &a);
    printf("connect after shutdown ok: %d\n", cl >= 0);
    msleep(100);
    close(l); /* the accept has returned by now */
    call_show("parked accept", &c);
    printf("time=%s\n", timing(c.ms, 50));
    if (cl >= 0) close(cl);
    unlink(a.sun_path);
}

/* Natively a thread blocked in accept keeps the listener alive when another thread closes
 * the fd: a later connection is still accepted. */
CASE(sock_accept_close_by_other_thread_then_connect) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    struct call c;
    call_start(&c, 1, l);
    msleep(50);
    SHOW("close(listener)", close(l));
    msleep(20);
    int cl = tcp_connect(&a);
    printf("connect after close ok: %d\n", cl >= 0);
    call_show("parked accept", &c);
    if (cl >= 0) close(cl);
}

CASE(sock_accept_close_by_other_thread_then_shutdown_dup) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int d = dup(l);
    struct call c;
    call_start(&c, 1, l);
    msleep(50);
    SHOW("close(listener)", close(l));
    msleep(20);
    SHOW("shutdown(dup, SHUT_RDWR)", shutdown(d, SHUT_RDWR));
    call_show("parked accept", &c);
    close(d);
}

CASE(sock_accept_two_threads_parked) {
    struct sockaddr_in a;
    int l = tcp_listener(8, &a);
    struct call c1, c2;
    call_start(&c1, 1, l);
    call_start(&c2, 1, l);
    msleep(50);
    int x = tcp_connect(&a);
    int y = tcp_connect(&a);
    call_show("accept 1", &c1);
    call_show("accept 2", &c2);
    close(x); close(y); close(l);
}

/* ---------- connect ---------- */

/* A port on 127.0.0.1 with (almost certainly) nobody listening. */
static struct sockaddr_in closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo4(0);
    socklen_t len = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return a;
}

CASE(sock_connect_refused) {
    struct sockaddr_in a = closed_port();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    double t0 = now_ms();
    SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    int e;
    socklen_t len = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
    printf("SO_ERROR after: %s\n", en(e));
    SHOW("connect again", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);
}

CASE(sock_connect_eisconn) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    SHOW("connect again", connect(s, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in p;
    socklen_t len = sizeof p;
    SHOW("getpeername", getpeername(s, (struct sockaddr *)&p, &len));
    printf("peer is the listener: %d\n", p.sin_port == a.sin_port && p.sin_addr.s_addr == a.sin_addr.s_addr);
    close(s); close(l);
}

CASE(sock_connect_nonblock_inprogress_poll_so_error) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("connect: %s\n", r == 0 ? "0" : en(errno));
    struct pollfd p = { s, POLLOUT, 0 };
    SHOW("poll", poll(&p, 1, 1000));
    printf("revents POLLOUT: %d\n", (p.revents & POLLOUT) != 0);
    int e = -1;
    socklen_t len = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
    printf("SO_ERROR: %s\n", en(e));
    SHOW("connect again", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s); close(l);
}

CASE(sock_connect_nonblock_refused_so_error) {
    struct sockaddr_in a = closed_port();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int first = r == 0 ? 0 : errno;
    struct pollfd p = { s, POLLOUT, 0 };
    poll(&p, 1, 1000);
    int e = -1;
    socklen_t len = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
    /* either refused at once or in progress then refused */
    printf("refused: %d\n", first == ECONNREFUSED || (first == EINPROGRESS && e == ECONNREFUSED));
    printf("POLLERR|POLLHUP: %d\n", (p.revents & (POLLERR | POLLHUP)) != 0);
    close(s);
}

/* A TCP listener with backlog 0 whose one queue slot is taken: further SYNs are dropped,
 * so a connect stays in progress (the SYN is retried after 1 s). */
static int full_tcp_listener(struct sockaddr_in *a, int *filler) {
    int l = tcp_listener(0, a);
    *filler = tcp_connect(a);
    msleep(20);
    return l;
}

CASE(sock_connect_nonblock_ealready) {
    struct sockaddr_in a;
    int f;
    int l = full_tcp_listener(&a, &f);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    SHOW("connect again", connect(s, (struct sockaddr *)&a, sizeof a));
    struct pollfd p = { s, POLLOUT, 0 };
    SHOW("poll 50 ms", poll(&p, 1, 50));
    close(s); close(f); close(l);
}

CASE(sock_connect_sndtimeo_full_backlog) {
    struct sockaddr_in a;
    int f;
    int l = full_tcp_listener(&a, &f);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    set_timeo(s, SO_SNDTIMEO, 100);
    double t0 = now_ms();
    SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    SHOW("connect again (non-blocking view: still connecting)", ({ set_nonblock(s, 1); connect(s, (struct sockaddr *)&a, sizeof a); }));
    close(s); close(f); close(l);
}

/* A blocking connect on a socket whose earlier non-blocking connect is still in progress
 * waits for it (here until SO_SNDTIMEO), then says EALREADY. */
CASE(sock_connect_blocking_after_inprogress) {
    struct sockaddr_in a;
    int f;
    int l = full_tcp_listener(&a, &f);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    set_nonblock(s, 1);
    SHOW("connect non-blocking", connect(s, (struct sockaddr *)&a, sizeof a));
    set_nonblock(s, 0);
    set_timeo(s, SO_SNDTIMEO, 120);
    double t0 = now_ms();
    SHOW("connect blocking", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 120));
    close(s); close(f); close(l);
}

CASE(sock_connect_unix_errors) {
    struct sockaddr_un a;
    unix_path(&a, "missing");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("connect to a missing path", connect(s, (struct sockaddr *)&a, sizeof a));
    /* a bound socket that does not listen */
    int b = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(b, (struct sockaddr *)&a, sizeof a);
    SHOW("connect to a bound, not listening socket", connect(s, (struct sockaddr *)&a, sizeof a));
    close(b);
    SHOW("connect after the socket closed (file stays)", connect(s, (struct sockaddr *)&a, sizeof a));
    unlink(a.sun_path);
    /* a regular file */
    int fd = open(a.sun_path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    SHOW("connect to a regular file", connect(s, (struct sockaddr *)&a, sizeof a));
    unlink(a.sun_path);
    /* a dgram socket */
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(d, (struct sockaddr *)&a, sizeof a);
    SHOW("stream connect to a dgram socket", connect(s, (struct sockaddr *)&a, sizeof a));
    close(d);
    unlink(a.sun_path);
    close(s);
}

CASE(sock_connect_unix_abstract) {
    struct sockaddr_un a;
    socklen_t len = unix_abstract(&a, "conn");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("connect before bind", connect(s, (struct sockaddr *)&a, len));
    close(s);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, len);
    listen(l, 2);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("connect", connect(s, (struct sockaddr *)&a, len));
    int t = accept(l, NULL, NULL);
    SHOW("send", send(s, "abc", 3, 0));
    char b[8] = { 0 };
    SHOW("recv", recv(t, b, sizeof b, 0));
    printf("data=%s\n", b);
    close(s); close(t); close(l);
}

/* A Unix listener with backlog 0 and one pending connection is full. */
CASE(sock_connect_unix_full_backlog_nonblock) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 0, &a, "fullnb");
    int c1 = unix_connect(SOCK_STREAM, &a);
    printf("first connect ok: %d\n", c1 >= 0);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    double t0 = now_ms();
    SHOW("second connect (non-blocking)", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    int x = accept(l, NULL, NULL);
    SHOW("connect after accept made room", connect(s, (struct sockaddr *)&a, sizeof a));
    close(x); close(c1); close(s); close(l);
    unlink(a.sun_path);
}

CASE(sock_connect_unix_full_backlog_sndtimeo) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 0, &a, "fulltmo");
    int c1 = unix_connect(SOCK_STREAM, &a);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    set_timeo(s, SO_SNDTIMEO, 100);
    double t0 = now_ms();
    SHOW("blocking connect with SO_SNDTIMEO", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(c1); close(s); close(l);
    unlink(a.sun_path);
}

CASE(sock_connect_unix_full_backlog_waits_for_accept) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 0, &a, "fullwait");
    int c1 = unix_connect(SOCK_STREAM, &a);
    struct act acc;
    double t0 = now_ms();
    act_start(&acc, ACT_ACCEPT_CLOSE, l, 100, NULL);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("blocking connect", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing(now_ms() - t0, 100));
    act_join(&acc);
    show_act("accept", &acc);
    close(c1); close(s); close(l);
    unlink(a.sun_path);
}

CASE(sock_connect_bad_args) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_un u;
    memset(&u, 0, sizeof u);
    u.sun_family = AF_UNIX;
    SHOW("connect inet socket to a unix address", connect(s, (struct sockaddr *)&u, sizeof u));
    struct sockaddr_in a = lo4(1);
    SHOW("connect with short len", connect(s, (struct sockaddr *)&a, 3));
    SHOW("connect bad fd", connect(9999, (struct sockaddr *)&a, sizeof a));
    int p[2];
    pipe(p);
    SHOW("connect a pipe", connect(p[0], (struct sockaddr *)&a, sizeof a));
    close(p[0]); close(p[1]); close(s);
}

CASE(sock_connect_listening_socket) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    struct sockaddr_in b;
    int l2 = tcp_listener(4, &b);
    SHOW("connect a listening socket", connect(l, (struct sockaddr *)&b, sizeof b));
    close(l); close(l2);
}

CASE(sock_udp_connect_and_disconnect) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo4(9);
    struct sockaddr_in p;
    socklen_t len = sizeof p;
    SHOW("getpeername unconnected", getpeername(s, (struct sockaddr *)&p, &len));
    SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a));
    len = sizeof p;
    SHOW("getpeername", getpeername(s, (struct sockaddr *)&p, &len));
    printf("peer family inet: %d equal: %d\n", p.sin_family == AF_INET,
           p.sin_port == a.sin_port && p.sin_addr.s_addr == a.sin_addr.s_addr);
    struct sockaddr un = { .sa_family = AF_UNSPEC };
    SHOW("connect AF_UNSPEC", connect(s, &un, sizeof un));
    len = sizeof p;
    SHOW("getpeername after disconnect", getpeername(s, (struct sockaddr *)&p, &len));
    close(s);
}

CASE(sock_getpeername_getsockname_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    struct sockaddr_in cp, cs, sp, ss;
    socklen_t l1 = sizeof cp, l2 = sizeof cs, l3 = sizeof sp, l4 = sizeof ss;
    getpeername(c, (struct sockaddr *)&cp, &l1);
    getsockname(c, (struct sockaddr *)&cs, &l2);
    getpeername(s, (struct sockaddr *)&sp, &l3);
    getsockname(s, (struct sockaddr *)&ss, &l4);
    printf("families inet: %d\n", cp.sin_family == AF_INET && sp.sin_family == AF_INET);
    printf("client's peer == server's name: %d\n", cp.sin_port == ss.sin_port && cp.sin_addr.s_addr == ss.sin_addr.s_addr);
    printf("server's peer == client's name: %d\n", sp.sin_port == cs.sin_port && sp.sin_addr.s_addr == cs.sin_addr.s_addr);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("getpeername unconnected tcp", getpeername(t, (struct sockaddr *)&cp, &l1));
    SHOW("getsockname bad fd", getsockname(9999, (struct sockaddr *)&cp, &l1));
    close(c); close(s); close(t);
}

/* ---------- IPv6 ---------- */

CASE(sock_ipv6_loopback_roundtrip) {
    if (!have_ipv6()) { printf("no ipv6\n"); return; }
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&a, &len);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    SHOW("connect ::1", connect(c, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in6 p;
    len = sizeof p;
    int s = accept(l, (struct sockaddr *)&p, &len);
    printf("accept ok: %d family inet6: %d peer is ::1: %d\n", s >= 0, p.sin6_family == AF_INET6,
           IN6_IS_ADDR_LOOPBACK(&p.sin6_addr));
    SHOW("send", send(c, "six", 3, 0));
    char b[8] = { 0 };
    SHOW("recv", recv(s, b, sizeof b, 0));
    printf("data=%s\n", b);
    close(c); close(s); close(l);
}

CASE(sock_ipv6_v4mapped_peer) {
    if (!have_ipv6()) { printf("no ipv6\n"); return; }
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    int off = 0;
    setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&a, &len);
    struct sockaddr_in v4 = lo4(ntohs(a.sin6_port));
    int c = tcp_connect(&v4);
    printf("v4 connect ok: %d\n", c >= 0);
    struct sockaddr_in6 p;
    len = sizeof p;
    int s = accept(l, (struct sockaddr *)&p, &len);
    printf("peer family inet6: %d v4-mapped: %d\n", p.sin6_family == AF_INET6,
           IN6_IS_ADDR_V4MAPPED(&p.sin6_addr));
    close(c); close(s); close(l);
}

CASE(sock_ipv6_v6only_refuses_v4) {
    if (!have_ipv6()) { printf("no ipv6\n"); return; }
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    getsockname(l, (struct sockaddr *)&a, &len);
    struct sockaddr_in v4 = lo4(ntohs(a.sin6_port));
    SHOW("v4 connect to a v6-only port", tcp_connect(&v4));
    close(l);
}

CASE(sock_ipv6_udp_recvfrom) {
    if (!have_ipv6()) { printf("no ipv6\n"); return; }
    int r = socket(AF_INET6, SOCK_DGRAM, 0), s = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &len);
    SHOW("sendto", sendto(s, "dgram6", 6, 0, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in6 from;
    len = sizeof from;
    char b[16];
    SHOW("recvfrom", recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &len));
    printf("from family inet6: %d loopback: %d len: %d\n", from.sin6_family == AF_INET6,
           IN6_IS_ADDR_LOOPBACK(&from.sin6_addr), len == sizeof from);
    close(r); close(s);
}

/* ---------- recv flags ---------- */

CASE(sock_recv_peek_then_read) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    send(sv[1], "hello", 5, 0);
    char b[8] = { 0 };
    SHOW("recv MSG_PEEK 3", recv(sv[0], b, 3, MSG_PEEK));
    printf("data=%.3s\n", b);
    SHOW("recv MSG_PEEK 8", recv(sv[0], b, 8, MSG_PEEK));
    printf("data=%.5s\n", b);
    memset(b, 0, sizeof b);
    SHOW("recv", recv(sv[0], b, 8, 0));
    printf("data=%.5s\n", b);
    SHOW("recv MSG_DONTWAIT now empty", recv(sv[0], b, 8, MSG_DONTWAIT));
    close(sv[0]); close(sv[1]);
}

CASE(sock_recv_peek_blocks_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 60, "peek");
    char b[8] = { 0 };
    SHOW("recv MSG_PEEK (blocks)", recv(s, b, sizeof b, MSG_PEEK));
    printf("time=%s data=%.4s\n", timing(now_ms() - t0, 60), b);
    memset(b, 0, sizeof b);
    SHOW("recv", recv(s, b, sizeof b, 0));
    printf("data=%.4s\n", b);
    act_join(&w);
    close(c); close(s);
}

CASE(sock_recv_waitall_tcp_pieces) {
    int c, s;
    tcp_pair(&c, &s);
    struct act w1, w2;
    double t0 = now_ms();
    act_start(&w1, ACT_SEND, c, 30, "abc");
    act_start(&w2, ACT_SEND, c, 90, "defgh");
    char b[9] = { 0 };
    SHOW("recv MSG_WAITALL 8", recv(s, b, 8, MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 90), b);
    act_join(&w1); act_join(&w2);
    close(c); close(s);
}

CASE(sock_recv_waitall_unix_peer_closes_early) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    send(sv[1], "part", 4, 0);
    struct act cl;
    double t0 = now_ms();
    act_start(&cl, ACT_CLOSE, sv[1], 60, NULL);
    char b[17] = { 0 };
    SHOW("recv MSG_WAITALL 16", recv(sv[0], b, 16, MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 60), b);
    act_join(&cl);
    SHOW("recv after EOF", recv(sv[0], b, 16, 0));
    close(sv[0]);
}

CASE(sock_recv_waitall_nonblocking_returns_partial) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    send(sv[1], "abc", 3, 0);
    char b[16];
    SHOW("recv MSG_WAITALL on a non-blocking socket", recv(sv[0], b, 16, MSG_WAITALL));
    SHOW("again", recv(sv[0], b, 16, MSG_WAITALL));
    close(sv[0]); close(sv[1]);
}

/* MSG_WAITALL means nothing to datagram sockets: one datagram per call. */
CASE(sock_recv_waitall_udp_one_datagram) {
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo4(0);
    socklen_t len = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &len);
    sendto(s, "first", 5, 0, (struct sockaddr *)&a, sizeof a);
    struct act w;
    memcpy(&w.addr, &a, sizeof a);
    w.addrlen = sizeof a;
    double t0 = now_ms();
    act_start(&w, ACT_SENDTO, s, 150, "second");
    struct act w2;
    memcpy(&w2.addr, &a, sizeof a);
    w2.addrlen = sizeof a;
    act_start(&w2, ACT_SENDTO, s, 300, "third: a datagram of sixty bytes, xxxxxxxxxxxxxxxxxxxxxxxxx");
    char b[65] = { 0 };
    SHOW("recv MSG_WAITALL 64", recv(r, b, 64, MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 0), b);
    memset(b, 0, sizeof b);
    SHOW("recv", recv(r, b, 64, 0));
    printf("data=%s\n", b);
    act_join(&w);
    act_join(&w2);
    close(r); close(s);
}

CASE(sock_recv_waitall_seqpacket_one_record) {
    int sv[2];
    unix_pair(SOCK_SEQPACKET, sv);
    send(sv[1], "rec1", 4, 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 150, "rec2");
    struct act w2;
    act_start(&w2, ACT_SEND, sv[1], 300, "rec3: a record of sixty bytes, xxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    char b[65] = { 0 };
    SHOW("recv MSG_WAITALL 64", recv(sv[0], b, 64, MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 0), b);
    act_join(&w);
    act_join(&w2);
    close(sv[0]); close(sv[1]);
}

/* MSG_PEEK|MSG_WAITALL on a stream waits until all bytes can be peeked at once. */
CASE(sock_recv_peek_waitall) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "abc", 3, 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 60, "def");
    char b[7] = { 0 };
    SHOW("recv MSG_PEEK|MSG_WAITALL 6", recv(s, b, 6, MSG_PEEK | MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 60), b);
    memset(b, 0, sizeof b);
    act_join(&w);
    SHOW("recv", recv(s, b, 6, 0));
    printf("data=%s\n", b);
    close(c); close(s);
}

CASE(sock_recvmsg_waitall) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct act w1, w2;
    double t0 = now_ms();
    act_start(&w1, ACT_SEND, sv[1], 30, "12345");
    act_start(&w2, ACT_SEND, sv[1], 90, "67890");
    char b[11] = { 0 };
    struct iovec iov = { b, 10 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("recvmsg MSG_WAITALL 10", recvmsg(sv[0], &m, MSG_WAITALL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 90), b);
    act_join(&w1); act_join(&w2);
    close(sv[0]); close(sv[1]);
}

CASE(sock_recvfrom_waitall_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 50, "wxyz");
    send(c, "12", 2, 0);
    char b[7] = { 0 };
    SHOW("recvfrom MSG_WAITALL 6", recvfrom(s, b, 6, MSG_WAITALL, NULL, NULL));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 50), b);
    act_join(&w);
    close(c); close(s);
}

/* SO_RCVTIMEO bounds the whole MSG_WAITALL call, not each wait. */
CASE(sock_recv_waitall_rcvtimeo_total) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 150);
    send(sv[1], "a", 1, 0);
    struct act w1, w2, w3;
    double t0 = now_ms();
    act_start(&w1, ACT_SEND, sv[1], 100, "b");
    act_start(&w2, ACT_SEND, sv[1], 200, "c");
    act_start(&w3, ACT_SEND, sv[1], 300, "d");
    char b[11] = { 0 };
    SHOW("recv MSG_WAITALL 10 with SO_RCVTIMEO 150 ms", recv(sv[0], b, 10, MSG_WAITALL));
    printf("time=%s data=%s\n", timing_timeo(now_ms() - t0, 150), b);
    act_join(&w1); act_join(&w2); act_join(&w3);
    close(sv[0]); close(sv[1]);
}

CASE(sock_recv_dontwait) {
    int c, s;
    tcp_pair(&c, &s);
    char b[8] = { 0 };
    double t0 = now_ms();
    SHOW("recv MSG_DONTWAIT empty", recv(s, b, sizeof b, MSG_DONTWAIT));
    SHOW("recvfrom MSG_DONTWAIT empty", recvfrom(s, b, sizeof b, MSG_DONTWAIT, NULL, NULL));
    struct iovec iov = { b, sizeof b };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("recvmsg MSG_DONTWAIT empty", recvmsg(s, &m, MSG_DONTWAIT));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    send(c, "dw", 2, 0);
    msleep(10);
    SHOW("recv MSG_DONTWAIT with data", recv(s, b, sizeof b, MSG_DONTWAIT));
    printf("data=%.2s\n", b);
    close(c); close(s);
}

CASE(sock_send_dontwait_full) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    printf("filled: %d\n", fill(sv[0]) > 0);
    double t0 = now_ms();
    SHOW("send MSG_DONTWAIT on a full socket", send(sv[0], "x", 1, MSG_DONTWAIT));
    struct iovec iov = { "x", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("sendmsg MSG_DONTWAIT on a full socket", sendmsg(sv[0], &m, MSG_DONTWAIT));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    close(sv[0]); close(sv[1]);
}

CASE(sock_recv_zero_length) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    char b[4];
    SHOW("recv 0 bytes, MSG_DONTWAIT, nothing there", recv(sv[0], b, 0, MSG_DONTWAIT));
    send(sv[1], "z", 1, 0);
    SHOW("recv 0 bytes with data there", recv(sv[0], b, 0, 0));
    SHOW("recv 1", recv(sv[0], b, 1, 0));
    close(sv[0]); close(sv[1]);
}

CASE(sock_recv_partial_small_buffer) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "0123456789", 10, 0);
    msleep(10);
    char b[4];
    for (int i = 0; i < 4; i++) {
        memset(b, 0, sizeof b);
        long n = recv(s, b, 3, 0);
        printf("recv 3: %ld %.*s\n", n, (int)(n > 0 ? n : 0), b);
    }
    close(c); close(s);
}

CASE(sock_read_write_on_sockets) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    SHOW("write", write(sv[0], "via write", 9));
    char b[16] = { 0 };
    SHOW("read", read(sv[1], b, sizeof b));
    printf("data=%s\n", b);
    struct iovec w[2] = { { "ab", 2 }, { "cdef", 4 } };
    SHOW("writev", writev(sv[1], w, 2));
    char x[3] = { 0 }, y[4] = { 0 };
    struct iovec r[2] = { { x, 2 }, { y, 3 } };
    SHOW("readv", readv(sv[0], r, 2));
    printf("x=%.2s y=%.3s\n", x, y);
    SHOW("read rest", read(sv[0], b, sizeof b));
    close(sv[0]); close(sv[1]);
}

CASE(sock_fionread) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "12345", 5, 0);
    msleep(10);
    int n = -1;
    SHOW("ioctl FIONREAD", ioctl(s, FIONREAD, &n));
    printf("available=%d\n", n);
    close(c); close(s);
}

/* ---------- datagrams ---------- */

static int udp_bound(struct sockaddr_in *a) {
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    *a = lo4(0);
    socklen_t len = sizeof *a;
    bind(r, (struct sockaddr *)a, sizeof *a);
    getsockname(r, (struct sockaddr *)a, &len);
    return r;
}

CASE(sock_udp_msg_trunc) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(s, "0123456789", 10, 0, (struct sockaddr *)&a, sizeof a);
    sendto(s, "abcdefghij", 10, 0, (struct sockaddr *)&a, sizeof a);
    sendto(s, "klmnopqrst", 10, 0, (struct sockaddr *)&a, sizeof a);
    char b[16] = { 0 };
    SHOW("recv 4 MSG_TRUNC (real length)", recv(r, b, 4, MSG_TRUNC));
    printf("data=%.4s\n", b);
    struct iovec iov = { b, 4 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("recvmsg 4", recvmsg(r, &m, 0));
    printf("msg_flags MSG_TRUNC: %d data=%.4s\n", (m.msg_flags & MSG_TRUNC) != 0, b);
    SHOW("recv 4 (rest of datagram discarded)", recv(r, b, 4, 0));
    printf("data=%.4s\n", b);
    close(r); close(s);
}

CASE(sock_udp_boundaries_and_empty) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "one", 3, 0);
    send(s, "", 0, 0);
    send(s, "three", 5, 0);
    char b[64];
    for (int i = 0; i < 3; i++) {
        memset(b, 0, sizeof b);
        long n = recv(r, b, sizeof b, 0);
        printf("datagram %d: %ld '%s'\n", i, n, b);
    }
    SHOW("recv MSG_DONTWAIT none left", recv(r, b, sizeof b, MSG_DONTWAIT));
    close(r); close(s);
}

CASE(sock_udp_recvfrom_address) {
    struct sockaddr_in a;
    int r = udp_bound(&a);
    struct sockaddr_in sa;
    int s = udp_bound(&sa);
    sendto(s, "hi", 2, 0, (struct sockaddr *)&a, sizeof a);
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    char b[8];
    SHOW("recvfrom", recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &len));
    printf("family inet: %d from sender: %d len: %d\n", from.sin_family == AF_INET,
           from.sin_port == sa.sin_port && from.sin_addr.s_addr == sa.sin_addr.s_addr,
           len == sizeof from);
    close(r); close(s);
}

CASE(sock_udp_blocking_recvfrom_waits) {
    struct sockaddr_in a;
    int r = udp_bound(&a);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct act w;
    memcpy(&w.addr, &a, sizeof a);
    w.addrlen = sizeof a;
    double t0 = now_ms();
    act_start(&w, ACT_SENDTO, s, 70, "later");
    char b[16] = { 0 };
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    SHOW("recvfrom", recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &len));
    printf("time=%s data=%s family inet: %d\n", timing(now_ms() - t0, 70), b, from.sin_family == AF_INET);
    act_join(&w);
    close(r); close(s);
}

CASE(sock_udp_sendto_errors) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("send on unconnected udp", send(s, "x", 1, 0));
    struct sockaddr_in a = lo4(9);
    SHOW("sendto short addrlen", sendto(s, "x", 1, 0, (struct sockaddr *)&a, 3));
    static char big[70000];
    SHOW("sendto 70000 bytes", sendto(s, big, sizeof big, 0, (struct sockaddr *)&a, sizeof a));
    close(s);
}

CASE(sock_udp_connected_refused) {
    struct sockaddr_in a;
    int tmp = udp_bound(&a);
    close(tmp);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    SHOW("send to a closed port", send(s, "x", 1, 0));
    msleep(20);
    char b[4];
    SHOW("recv (ICMP port unreachable)", recv(s, b, sizeof b, 0));
    SHOW("recv again (error consumed, nothing there)", recv(s, b, sizeof b, MSG_DONTWAIT));
    close(s);
}

CASE(sock_udp_refused_wakes_blocked_recv) {
    struct sockaddr_in a;
    int tmp = udp_bound(&a);
    close(tmp);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, s, 60, "x");
    char b[4];
    SHOW("blocked recv", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&w);
    close(s);
}

CASE(sock_unix_dgram_boundaries_and_addr) {
    struct sockaddr_un ra, sa;
    socklen_t rl = unix_path(&ra, "dgr"), sl = unix_path(&sa, "dgs");
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&ra, rl);
    bind(s, (struct sockaddr *)&sa, sl);
    sendto(s, "alpha", 5, 0, (struct sockaddr *)&ra, rl);
    sendto(s, "be", 2, 0, (struct sockaddr *)&ra, rl);
    char b[32];
    struct sockaddr_un from;
    for (int i = 0; i < 2; i++) {
        socklen_t fl = sizeof from;
        memset(b, 0, sizeof b);
        long n = recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
        printf("datagram %d: %ld '%s' from sender path: %d\n", i, n, b, !strcmp(from.sun_path, sa.sun_path));
    }
    unlink(ra.sun_path);
    SHOW("sendto a missing path", sendto(s, "x", 1, 0, (struct sockaddr *)&ra, rl));
    close(r); close(s);
    unlink(sa.sun_path);
}

CASE(sock_unix_dgram_connected_peer_gone) {
    struct sockaddr_un ra;
    socklen_t rl = unix_path(&ra, "dgpeer");
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&ra, rl);
    SHOW("connect", connect(s, (struct sockaddr *)&ra, rl));
    SHOW("send", send(s, "x", 1, 0));
    close(r);
    unlink(ra.sun_path);
    SHOW("send after the peer closed", send(s, "x", 1, MSG_NOSIGNAL));
    SHOW("send again", send(s, "x", 1, MSG_NOSIGNAL));
    close(s);
}

/* A blocking unix dgram send to a receiver whose queue is full waits for room. */
CASE(sock_unix_dgram_full_queue_send_waits) {
    struct sockaddr_un ra;
    socklen_t rl = unix_path(&ra, "dgfull");
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&ra, rl);
    int queued = 0;
    while (sendto(s, "q", 1, MSG_DONTWAIT, (struct sockaddr *)&ra, rl) == 1) queued++;
    printf("queue filled: %d errno=%s\n", queued > 0, en(errno));
    struct act d;
    double t0 = now_ms();
    act_start(&d, ACT_RECV_DRAIN, r, 100, NULL);
    SHOW("blocking sendto", sendto(s, "w", 1, 0, (struct sockaddr *)&ra, rl));
    printf("time=%s\n", timing(now_ms() - t0, 100));
    act_join(&d);
    close(r); close(s);
    unlink(ra.sun_path);
}

CASE(sock_unix_dgram_connected_full_queue_send_waits) {
    struct sockaddr_un ra;
    socklen_t rl = unix_path(&ra, "dgcfull");
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), s = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&ra, rl);
    connect(s, (struct sockaddr *)&ra, rl);
    int queued = 0;
    while (send(s, "q", 1, MSG_DONTWAIT) == 1) queued++;
    printf("queue filled: %d errno=%s\n", queued > 0, en(errno));
    struct act d;
    double t0 = now_ms();
    act_start(&d, ACT_RECV_DRAIN, r, 100, NULL);
    SHOW("blocking send", send(s, "w", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 100));
    act_join(&d);
    close(r); close(s);
    unlink(ra.sun_path);
}

CASE(sock_seqpacket_boundaries_and_trunc) {
    int sv[2];
    unix_pair(SOCK_SEQPACKET, sv);
    send(sv[1], "record-one", 10, 0);
    send(sv[1], "two", 3, 0);
    char b[16] = { 0 };
    struct iovec iov = { b, 6 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("recvmsg 6 of 10", recvmsg(sv[0], &m, 0));
    printf("data=%.6s MSG_TRUNC: %d\n", b, (m.msg_flags & MSG_TRUNC) != 0);
    memset(b, 0, sizeof b);
    SHOW("recv next record", recv(sv[0], b, sizeof b, 0));
    printf("data=%s\n", b);
    close(sv[1]);
    SHOW("recv after the peer closed", recv(sv[0], b, sizeof b, 0));
    close(sv[0]);
}

CASE(sock_seqpacket_listener) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_SEQPACKET, 4, &a, "seqp");
    int c = unix_connect(SOCK_SEQPACKET, &a);
    int s = accept(l, NULL, NULL);
    printf("accept ok: %d\n", s >= 0);
    send(c, "rec", 3, 0);
    char b[8] = { 0 };
    SHOW("recv", recv(s, b, sizeof b, 0));
    printf("data=%s\n", b);
    close(c); close(s); close(l);
    unlink(a.sun_path);
}

/* ---------- sendmsg / sendmmsg / recvmmsg ---------- */

CASE(sock_sendmsg_gather_recvmsg_scatter) {
    int c, s;
    tcp_pair(&c, &s);
    struct iovec w[3] = { { "one-", 4 }, { "two-", 4 }, { "three", 5 } };
    struct msghdr wm = { .msg_iov = w, .msg_iovlen = 3 };
    SHOW("sendmsg", sendmsg(c, &wm, 0));
    char x[5] = { 0 }, y[20] = { 0 };
    struct iovec r[2] = { { x, 4 }, { y, 19 } };
    struct msghdr rm = { .msg_iov = r, .msg_iovlen = 2 };
    msleep(10);
    SHOW("recvmsg", recvmsg(s, &rm, 0));
    printf("x=%s y=%s\n", x, y);
    close(c); close(s);
}

CASE(sock_sendmmsg_recvmmsg_udp) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    struct iovec wi[3] = { { "m1", 2 }, { "mm2", 3 }, { "mmm3", 4 } };
    struct mmsghdr wm[3];
    memset(wm, 0, sizeof wm);
    for (int i = 0; i < 3; i++) { wm[i].msg_hdr.msg_iov = &wi[i]; wm[i].msg_hdr.msg_iovlen = 1; }
    SHOW("sendmmsg 3", sendmmsg(s, wm, 3, 0));
    printf("msg_len: %u %u %u\n", wm[0].msg_len, wm[1].msg_len, wm[2].msg_len);
    char b[3][8];
    memset(b, 0, sizeof b);
    struct iovec ri[3];
    struct mmsghdr rm[3];
    memset(rm, 0, sizeof rm);
    for (int i = 0; i < 3; i++) { ri[i].iov_base = b[i]; ri[i].iov_len = 8; rm[i].msg_hdr.msg_iov = &ri[i]; rm[i].msg_hdr.msg_iovlen = 1; }
    SHOW("recvmmsg 3", recvmmsg(r, rm, 3, 0, NULL));
    printf("got: %s(%u) %s(%u) %s(%u)\n", b[0], rm[0].msg_len, b[1], rm[1].msg_len, b[2], rm[2].msg_len);
    close(r); close(s);
}

static void mm_setup(struct mmsghdr *rm, struct iovec *ri, char (*b)[16], int n) {
    memset(rm, 0, sizeof *rm * n);
    for (int i = 0; i < n; i++) {
        memset(b[i], 0, 16);
        ri[i].iov_base = b[i];
        ri[i].iov_len = 15;
        rm[i].msg_hdr.msg_iov = &ri[i];
        rm[i].msg_hdr.msg_iovlen = 1;
    }
}

CASE(sock_recvmmsg_waitforone) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "only", 4, 0);
    char b[4][16];
    struct iovec ri[4];
    struct mmsghdr rm[4];
    mm_setup(rm, ri, b, 4);
    double t0 = now_ms();
    SHOW("recvmmsg 4 MSG_WAITFORONE", recvmmsg(r, rm, 4, MSG_WAITFORONE, NULL));
    printf("time=%s first=%s\n", timing(now_ms() - t0, 0), b[0]);
    mm_setup(rm, ri, b, 4);
    SHOW("recvmmsg MSG_DONTWAIT nothing", recvmmsg(r, rm, 4, MSG_DONTWAIT, NULL));
    close(r); close(s);
}

CASE(sock_recvmmsg_blocks_for_vlen) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "d1", 2, 0);
    struct act w1, w2;
    double t0 = now_ms();
    act_start(&w1, ACT_SEND, s, 40, "d2");
    act_start(&w2, ACT_SEND, s, 80, "d3");
    char b[3][16];
    struct iovec ri[3];
    struct mmsghdr rm[3];
    mm_setup(rm, ri, b, 3);
    SHOW("recvmmsg 3 blocking", recvmmsg(r, rm, 3, 0, NULL));
    printf("time=%s got=%s,%s,%s\n", timing(now_ms() - t0, 80), b[0], b[1], b[2]);
    act_join(&w1); act_join(&w2);
    close(r); close(s);
}

/* recvmmsg writes the time left back into *timeout. */
CASE(sock_recvmmsg_timeout_written_back) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "a", 1, 0);
    send(s, "b", 1, 0);
    char b[2][16];
    struct iovec ri[2];
    struct mmsghdr rm[2];
    mm_setup(rm, ri, b, 2);
    struct timespec t = { 5, 0 };
    SHOW("recvmmsg 2, timeout 5 s", recvmmsg(r, rm, 2, 0, &t));
    printf("timeout changed: %d still positive: %d\n", !(t.tv_sec == 5 && t.tv_nsec == 0),
           t.tv_sec > 0 || t.tv_nsec > 0);
    close(r); close(s);
}

/* The timeout is only checked after each datagram: with one datagram received and the
 * next arriving after the timeout, the call returns when that next one arrives. */
CASE(sock_recvmmsg_timeout_checked_per_datagram) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    send(s, "a", 1, 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, s, 250, "b");
    char b[3][16];
    struct iovec ri[3];
    struct mmsghdr rm[3];
    mm_setup(rm, ri, b, 3);
    struct timespec t = { 0, 50 * 1000000L };
    SHOW("recvmmsg 3, timeout 50 ms", recvmmsg(r, rm, 3, 0, &t));
    printf("time vs 250 ms: %s\n", timing(now_ms() - t0, 250));
    act_join(&w);
    close(r); close(s);
}

CASE(sock_sendmmsg_unix_dgram_and_errors) {
    int sv[2];
    unix_pair(SOCK_DGRAM, sv);
    struct iovec wi[2] = { { "x1", 2 }, { "y22", 3 } };
    struct mmsghdr wm[2];
    memset(wm, 0, sizeof wm);
    for (int i = 0; i < 2; i++) { wm[i].msg_hdr.msg_iov = &wi[i]; wm[i].msg_hdr.msg_iovlen = 1; }
    SHOW("sendmmsg 2", sendmmsg(sv[0], wm, 2, 0));
    char b[16] = { 0 };
    SHOW("recv", recv(sv[1], b, sizeof b, 0));
    printf("data=%s\n", b);
    memset(b, 0, sizeof b);
    SHOW("recv", recv(sv[1], b, sizeof b, 0));
    printf("data=%s\n", b);
    SHOW("sendmmsg vlen 0", sendmmsg(sv[0], wm, 0, 0));
    SHOW("sendmmsg bad fd", sendmmsg(9999, wm, 2, 0));
    SHOW("recvmmsg bad fd", recvmmsg(9999, wm, 2, 0, NULL));
    close(sv[0]); close(sv[1]);
}

/* ---------- peer closes, SIGPIPE, resets ---------- */

CASE(sock_unix_epipe_sigpipe_ignored) {
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    close(sv[1]);
    SHOW("send", send(sv[0], "x", 1, 0));
    SHOW("write", write(sv[0], "x", 1));
    struct iovec iov = { "x", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("sendmsg", sendmsg(sv[0], &m, 0));
    char b[4];
    SHOW("recv (EOF)", recv(sv[0], b, sizeof b, 0));
    close(sv[0]);
}

CASE(sock_unix_write_sigpipe_kills) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    close(sv[1]);
    printf("writing to a closed peer\n");
    write(sv[0], "x", 1);
    printf("survived\n");
}

CASE(sock_unix_send_sigpipe_kills) {
    int sv[2];
    unix_pair(SOCK_SEQPACKET, sv);
    close(sv[1]);
    printf("sending to a closed peer\n");
    send(sv[0], "x", 1, 0);
    printf("survived\n");
}

CASE(sock_msg_nosignal_epipe) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    close(sv[1]);
    SHOW("send MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL));
    struct iovec iov = { "x", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("sendmsg MSG_NOSIGNAL", sendmsg(sv[0], &m, MSG_NOSIGNAL));
    close(sv[0]);
}

CASE(sock_tcp_epipe_after_peer_close) {
    signal(SIGPIPE, SIG_IGN);
    int c, s;
    tcp_pair(&c, &s);
    close(s);
    msleep(20);
    char b[4];
    SHOW("recv (EOF)", recv(c, b, sizeof b, 0));
    SHOW("first send (accepted, the peer answers RST)", send(c, "x", 1, 0));
    msleep(20);
    SHOW("second send", send(c, "x", 1, 0));
    SHOW("third send", send(c, "x", 1, 0));
    close(c);
}

CASE(sock_tcp_write_sigpipe_kills) {
    int c, s;
    tcp_pair(&c, &s);
    shutdown(c, SHUT_WR);
    printf("writing after SHUT_WR\n");
    write(c, "x", 1);
    printf("survived\n");
}

CASE(sock_tcp_send_unconnected) {
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("send on an unconnected tcp socket", send(s, "x", 1, 0));
    char b[4];
    SHOW("recv on an unconnected tcp socket", recv(s, b, sizeof b, 0));
    SHOW("read on an unconnected tcp socket", read(s, b, sizeof b));
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("send on an unconnected unix socket", send(u, "x", 1, 0));
    SHOW("recv on an unconnected unix socket", recv(u, b, sizeof b, 0));
    close(s); close(u);
}

CASE(sock_econnreset_unread_data) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "unread", 6, 0);
    msleep(10);
    close(s); /* unread data: RST */
    msleep(20);
    char b[8];
    SHOW("recv", recv(c, b, sizeof b, 0));
    SHOW("recv again", recv(c, b, sizeof b, 0));
    close(c);
}

CASE(sock_econnreset_wakes_blocked_recv) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "unread", 6, 0);
    struct act cl;
    double t0 = now_ms();
    act_start(&cl, ACT_CLOSE, s, 60, NULL);
    char b[8];
    SHOW("blocked recv", recv(c, b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&cl);
    close(c);
}

CASE(sock_so_linger_zero_rst) {
    int c, s;
    tcp_pair(&c, &s);
    struct linger lg = { 1, 0 };
    SHOW("setsockopt SO_LINGER {1,0}", setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    struct linger got;
    socklen_t len = sizeof got;
    getsockopt(s, SOL_SOCKET, SO_LINGER, &got, &len);
    printf("SO_LINGER: onoff=%d linger=%d\n", got.l_onoff != 0, got.l_linger);
    close(s);
    msleep(20);
    char b[4];
    SHOW("recv", recv(c, b, sizeof b, 0));
    SHOW("send", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);
}

CASE(sock_so_linger_timeout_close) {
    int c, s;
    tcp_pair(&c, &s);
    struct linger lg = { 1, 1 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    send(s, "bye", 3, 0);
    double t0 = now_ms();
    SHOW("close with SO_LINGER 1 s, data acknowledged", close(s));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    char b[8] = { 0 };
    SHOW("recv", recv(c, b, sizeof b, 0));
    printf("data=%s\n", b);
    SHOW("recv EOF", recv(c, b, sizeof b, 0));
    close(c);
}

/* ---------- shutdown ---------- */

CASE(sock_half_close_shut_wr) {
    int c, s;
    tcp_pair(&c, &s);
    send(c, "request", 7, 0);
    SHOW("shutdown(SHUT_WR)", shutdown(c, SHUT_WR));
    char b[16] = { 0 };
    SHOW("server recv", recv(s, b, sizeof b, 0));
    printf("data=%s\n", b);
    SHOW("server recv EOF", recv(s, b, sizeof b, 0));
    SHOW("server send reply", send(s, "reply", 5, 0));
    close(s);
    memset(b, 0, sizeof b);
    SHOW("client recv", recv(c, b, sizeof b, 0));
    printf("data=%s\n", b);
    SHOW("client recv EOF", recv(c, b, sizeof b, 0));
    close(c);
}

CASE(sock_half_close_unix) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    SHOW("shutdown(SHUT_WR)", shutdown(sv[0], SHUT_WR));
    char b[8];
    SHOW("peer read EOF", read(sv[1], b, sizeof b));
    SHOW("peer write", write(sv[1], "ok", 2));
    SHOW("read", read(sv[0], b, sizeof b));
    SHOW("send after SHUT_WR", send(sv[0], "x", 1, MSG_NOSIGNAL));
    close(sv[0]); close(sv[1]);
}

CASE(sock_shutdown_wakes_recv_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    struct call r;
    call_start(&r, 0, s);
    msleep(50);
    SHOW("shutdown(SHUT_RD) from another thread", shutdown(s, SHUT_RD));
    call_show("parked recv", &r);
    printf("time=%s\n", timing(r.ms, 50));
    close(c); close(s);
}

CASE(sock_shutdown_rdwr_wakes_recv_unix) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct call r;
    call_start(&r, 2, sv[0]);
    msleep(50);
    SHOW("shutdown(SHUT_RDWR) from another thread", shutdown(sv[0], SHUT_RDWR));
    call_show("parked read", &r);
    printf("time=%s\n", timing(r.ms, 50));
    close(sv[0]); close(sv[1]);
}

CASE(sock_peer_shutdown_wr_wakes_recv) {
    int c, s;
    tcp_pair(&c, &s);
    struct act sh;
    double t0 = now_ms();
    act_start(&sh, ACT_SHUT_WR, c, 60, NULL);
    char b[4];
    SHOW("recv until the peer's FIN", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&sh);
    close(c); close(s);
}

CASE(sock_shutdown_errors) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SHOW("shutdown unconnected tcp", shutdown(s, SHUT_RDWR));
    int c, t;
    tcp_pair(&c, &t);
    SHOW("shutdown bad how", shutdown(c, 7));
    SHOW("shutdown bad fd", shutdown(9999, SHUT_RD));
    int p[2];
    pipe(p);
    SHOW("shutdown a pipe", shutdown(p[0], SHUT_RD));
    SHOW("shutdown SHUT_WR", shutdown(c, SHUT_WR));
    SHOW("shutdown SHUT_WR twice", shutdown(c, SHUT_WR));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    SHOW("shutdown unconnected udp", shutdown(u, SHUT_RD));
    close(s); close(c); close(t); close(p[0]); close(p[1]); close(u);
}

CASE(sock_recv_after_own_shut_rd) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    shutdown(sv[0], SHUT_RD);
    char b[4];
    double t0 = now_ms();
    SHOW("recv after own SHUT_RD", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    SHOW("peer send", send(sv[1], "x", 1, MSG_NOSIGNAL));
    close(sv[0]); close(sv[1]);
}

/* ---------- socket timeouts ---------- */

CASE(sock_rcvtimeo_recv) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 100);
    char b[4];
    double t0 = now_ms();
    SHOW("recv", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(sv[0]); close(sv[1]);
}

CASE(sock_rcvtimeo_read_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    set_timeo(s, SO_RCVTIMEO, 80);
    char b[4];
    double t0 = now_ms();
    SHOW("read", read(s, b, sizeof b));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 80));
    close(c); close(s);
}

CASE(sock_rcvtimeo_recvmsg_recvfrom_udp) {
    struct sockaddr_in a;
    int r = udp_bound(&a);
    set_timeo(r, SO_RCVTIMEO, 60);
    char b[4];
    struct iovec iov = { b, sizeof b };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    double t0 = now_ms();
    SHOW("recvmsg", recvmsg(r, &m, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 60));
    t0 = now_ms();
    SHOW("recvfrom", recvfrom(r, b, sizeof b, 0, NULL, NULL));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 60));
    close(r);
}

CASE(sock_rcvtimeo_readv) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 70);
    char b[4];
    struct iovec iov = { b, sizeof b };
    double t0 = now_ms();
    SHOW("readv", readv(sv[0], &iov, 1));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 70));
    close(sv[0]); close(sv[1]);
}

CASE(sock_rcvtimeo_data_before_timeout) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 400);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 50, "in time");
    char b[16] = { 0 };
    SHOW("recv", recv(sv[0], b, sizeof b, 0));
    printf("time=%s data=%s\n", timing_timeo(now_ms() - t0, 50), b);
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

CASE(sock_rcvtimeo_cleared) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 30);
    set_timeo(sv[0], SO_RCVTIMEO, 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 120, "x");
    char b[4];
    SHOW("recv with the timeout cleared", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 120));
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

CASE(sock_sndtimeo_send_full) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    set_timeo(sv[0], SO_SNDTIMEO, 100);
    double t0 = now_ms();
    SHOW("send on a full socket", send(sv[0], "x", 1, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(sv[0]); close(sv[1]);
}

CASE(sock_sndtimeo_write_full_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    fill(c);
    set_timeo(c, SO_SNDTIMEO, 100);
    double t0 = now_ms();
    SHOW("write on a full socket", write(c, "x", 1));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(c); close(s);
}

CASE(sock_sndtimeo_partial_send) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_SNDTIMEO, 100);
    size_t n = 8 << 20;
    char *big = calloc(1, n);
    double t0 = now_ms();
    long r = send(sv[0], big, n, 0);
    printf("send 8 MiB with nobody reading: partial=%d time=%s\n", r > 0 && (size_t)r < n,
           timing_timeo(now_ms() - t0, 100));
    free(big);
    close(sv[0]); close(sv[1]);
}

CASE(sock_sndtimeo_sendmsg_full) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    set_timeo(sv[0], SO_SNDTIMEO, 80);
    struct iovec iov = { "x", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    double t0 = now_ms();
    SHOW("sendmsg on a full socket", sendmsg(sv[0], &m, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 80));
    close(sv[0]); close(sv[1]);
}

CASE(sock_timeo_getsockopt_roundtrip) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("default rcv: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    set_timeo(s, SO_RCVTIMEO, 1500);
    set_timeo(s, SO_SNDTIMEO, 250);
    len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("rcv: %ld.%06ld len=%d\n", (long)tv.tv_sec, (long)tv.tv_usec, (int)len);
    getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &len);
    printf("snd: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    set_timeo(s, SO_RCVTIMEO, 0);
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("rcv cleared: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    close(s);
}

CASE(sock_timeo_setsockopt_errors) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval bad = { 0, 2000000 };
    SHOW("SO_RCVTIMEO usec out of range", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad));
    struct timeval ok = { 0, 100000 };
    SHOW("SO_RCVTIMEO short optlen", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &ok, 4));
    SHOW("SO_SNDTIMEO on a bad fd", setsockopt(9999, SOL_SOCKET, SO_SNDTIMEO, &ok, sizeof ok));
    int p[2];
    pipe(p);
    SHOW("SO_RCVTIMEO on a pipe", setsockopt(p[0], SOL_SOCKET, SO_RCVTIMEO, &ok, sizeof ok));
    struct timeval neg = { -1, 0 };
    SHOW("SO_RCVTIMEO negative (means no timeout)", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg));
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("rcv after negative: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    close(s); close(p[0]); close(p[1]);
}

CASE(sock_rcvtimeo_failed_set_keeps_old) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 80);
    struct timeval bad = { 0, 5000000 };
    SHOW("set an invalid timeout", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad));
    char b[4];
    double t0 = now_ms();
    SHOW("recv keeps the 80 ms timeout", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 80));
    close(sv[0]); close(sv[1]);
}

/* The timeout belongs to the socket: a dup made before setsockopt sees it too. */
CASE(sock_rcvtimeo_set_after_dup) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int d = dup(sv[0]);
    set_timeo(sv[0], SO_RCVTIMEO, 100);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 500, "late");
    char b[8];
    SHOW("recv on the dup", recv(d, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    act_join(&w);
    close(d); close(sv[0]); close(sv[1]);
}

CASE(sock_rcvtimeo_set_before_dup) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 70);
    int d = fcntl(sv[0], F_DUPFD_CLOEXEC, 10);
    int d2 = dup2(sv[0], 50);
    char b[8];
    double t0 = now_ms();
    SHOW("recv on the F_DUPFD copy", recv(d, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 70));
    t0 = now_ms();
    SHOW("recv on the dup2 copy", recv(d2, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 70));
    close(d); close(d2); close(sv[0]); close(sv[1]);
}

/* ---------- closing and threads ---------- */

/* Natively, closing an fd does not wake a thread blocked in recv on it: the socket lives on
 * until that call returns, here when the peer writes. */
CASE(sock_close_while_recv_then_peer_write) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct call r;
    call_start(&r, 0, sv[0]);
    msleep(50);
    SHOW("close from another thread", close(sv[0]));
    msleep(50);
    SHOW("peer send", send(sv[1], "still", 5, MSG_NOSIGNAL));
    call_show("parked recv", &r);
    close(sv[1]);
}

CASE(sock_close_while_recv_then_shutdown_dup) {
    int c, s;
    tcp_pair(&c, &s);
    int d = dup(s);
    struct call r;
    call_start(&r, 0, s);
    msleep(50);
    SHOW("close from another thread", close(s));
    msleep(20);
    SHOW("shutdown(dup, SHUT_RDWR)", shutdown(d, SHUT_RDWR));
    call_show("parked recv", &r);
    close(d); close(c);
}

CASE(sock_close_while_recv_then_peer_close) {
    int c, s;
    tcp_pair(&c, &s);
    struct call r;
    call_start(&r, 0, s);
    msleep(50);
    SHOW("close from another thread", close(s));
    msleep(20);
    SHOW("peer close", close(c));
    call_show("parked recv", &r);
}

CASE(sock_dup2_over_parked_recv_then_peer_write) {
    int sv[2], other[2];
    unix_pair(SOCK_STREAM, sv);
    unix_pair(SOCK_STREAM, other);
    struct call r;
    call_start(&r, 0, sv[0]);
    msleep(50);
    SHOW("dup2 another socket over the fd", dup2(other[0], sv[0]) == sv[0] ? 0 : -1);
    msleep(20);
    SHOW("original peer send", send(sv[1], "orig", 4, MSG_NOSIGNAL));
    call_show("parked recv", &r);
    close(sv[0]); close(sv[1]); close(other[0]); close(other[1]);
}

CASE(sock_dup_shared_between_threads) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int d = dup(sv[0]);
    struct call r1, r2;
    call_start(&r1, 0, sv[0]);
    call_start(&r2, 2, d);
    msleep(50);
    send(sv[1], "A", 1, 0);
    msleep(30);
    send(sv[1], "B", 1, 0);
    pthread_join(r1.th, NULL);
    pthread_join(r2.th, NULL);
    char got[3] = { r1.buf[0], r2.buf[0], 0 };
    printf("results: %ld %ld set=%s\n", r1.result, r2.result,
           (got[0] == 'A' && got[1] == 'B') || (got[0] == 'B' && got[1] == 'A') ? "AB" : got);
    SHOW("write on the dup", write(d, "C", 1));
    char b[2] = { 0 };
    SHOW("peer read", read(sv[1], b, 1));
    printf("data=%s\n", b);
    close(d); close(sv[0]); close(sv[1]);
}

struct echo_client {
    pthread_t th;
    struct sockaddr_in addr;
    int id;
    int ok;
};

static void *echo_client_main(void *p) {
    struct echo_client *c = p;
    int s = tcp_connect(&c->addr);
    if (s < 0) return NULL;
    char msg[32], b[32] = { 0 };
    int n = snprintf(msg, sizeof msg, "client-%d", c->id);
    if (send(s, msg, n, 0) != n) { close(s); return NULL; }
    if (recv(s, b, n, MSG_WAITALL) == n && !memcmp(b, msg, n)) c->ok = 1;
    close(s);
    return NULL;
}

struct echo_conn { pthread_t th; int fd; };

static void *echo_conn_main(void *p) {
    struct echo_conn *c = p;
    char b[64];
    long n;
    while ((n = recv(c->fd, b, sizeof b, 0)) > 0) send(c->fd, b, n, MSG_NOSIGNAL);
    close(c->fd);
    return NULL;
}

CASE(sock_fifty_concurrent_connections) {
    enum { N = 50 };
    struct sockaddr_in a;
    int l = tcp_listener(N, &a);
    static struct echo_client cl[N];
    static struct echo_conn co[N];
    for (int i = 0; i < N; i++) {
        cl[i].addr = a;
        cl[i].id = i;
        cl[i].ok = 0;
        pthread_create(&cl[i].th, NULL, echo_client_main, &cl[i]);
    }
    int accepted = 0;
    for (int i = 0; i < N; i++) {
        int s = accept(l, NULL, NULL);
        if (s < 0) break;
        accepted++;
        co[i].fd = s;
        pthread_create(&co[i].th, NULL, echo_conn_main, &co[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) { pthread_join(cl[i].th, NULL); ok += cl[i].ok; }
    for (int i = 0; i < accepted; i++) pthread_join(co[i].th, NULL);
    printf("accepted=%d echoed=%d\n", accepted, ok);
    close(l);
}

CASE(sock_fifty_unix_connections_threads) {
    enum { N = 50 };
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, N, &a, "fifty");
    int cs[N];
    for (int i = 0; i < N; i++) cs[i] = unix_connect(SOCK_STREAM, &a);
    static struct echo_conn co[N];
    for (int i = 0; i < N; i++) {
        co[i].fd = accept(l, NULL, NULL);
        pthread_create(&co[i].th, NULL, echo_conn_main, &co[i]);
    }
    int ok = 0;
    for (int i = N - 1; i >= 0; i--) {
        char m[8], b[8] = { 0 };
        int n = snprintf(m, sizeof m, "m%d", i);
        send(cs[i], m, n, 0);
        if (recv(cs[i], b, n, MSG_WAITALL) == n && !memcmp(m, b, n)) ok++;
        close(cs[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(co[i].th, NULL);
    printf("echoed=%d\n", ok);
    close(l);
    unlink(a.sun_path);
}

/* ---------- big transfers ---------- */

struct slow_reader {
    pthread_t th;
    int fd;
    size_t total;
    unsigned sum;
};

static void *slow_reader_main(void *p) {
    struct slow_reader *r = p;
    unsigned char b[32768];
    long n;
    int i = 0;
    r->sum = 7;
    while ((n = recv(r->fd, b, sizeof b, 0)) > 0) {
        r->sum = checksum(b, n, r->sum);
        r->total += n;
        if (++i % 16 == 0) msleep(1);
    }
    return NULL;
}

static unsigned char *pattern(size_t n) {
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + i / 4096);
    return p;
}

CASE(sock_big_send_slow_reader_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    size_t n = 6 << 20;
    unsigned char *p = pattern(n);
    struct slow_reader r = { .fd = s };
    pthread_create(&r.th, NULL, slow_reader_main, &r);
    long sent = send(c, p, n, 0);
    printf("send returned full count: %d\n", sent == (long)n);
    shutdown(c, SHUT_WR);
    pthread_join(r.th, NULL);
    printf("reader got all: %d checksum ok: %d\n", r.total == n, r.sum == checksum(p, n, 7));
    free(p);
    close(c); close(s);
}

CASE(sock_big_write_slow_reader_unix) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    size_t n = 3 << 20;
    unsigned char *p = pattern(n);
    struct slow_reader r = { .fd = sv[1] };
    pthread_create(&r.th, NULL, slow_reader_main, &r);
    long w = write(sv[0], p, n);
    printf("write returned full count: %d\n", w == (long)n);
    shutdown(sv[0], SHUT_WR);
    pthread_join(r.th, NULL);
    printf("reader got all: %d checksum ok: %d\n", r.total == n, r.sum == checksum(p, n, 7));
    free(p);
    close(sv[0]); close(sv[1]);
}

CASE(sock_big_sendmsg_iovecs_slow_reader) {
    int c, s;
    tcp_pair(&c, &s);
    size_t n = 3 << 20;
    unsigned char *p = pattern(n);
    struct iovec iov[3] = { { p, 1000 }, { p + 1000, n / 2 }, { p + 1000 + n / 2, n - 1000 - n / 2 } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
    struct slow_reader r = { .fd = s };
    pthread_create(&r.th, NULL, slow_reader_main, &r);
    long sent = sendmsg(c, &m, 0);
    printf("sendmsg returned full count: %d\n", sent == (long)n);
    shutdown(c, SHUT_WR);
    pthread_join(r.th, NULL);
    printf("reader got all: %d checksum ok: %d\n", r.total == n, r.sum == checksum(p, n, 7));
    free(p);
    close(c); close(s);
}

CASE(sock_big_writev_slow_reader) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    size_t n = 2 << 20;
    unsigned char *p = pattern(n);
    struct iovec iov[2] = { { p, n / 3 }, { p + n / 3, n - n / 3 } };
    struct slow_reader r = { .fd = sv[1] };
    pthread_create(&r.th, NULL, slow_reader_main, &r);
    long w = writev(sv[0], iov, 2);
    printf("writev returned full count: %d\n", w == (long)n);
    shutdown(sv[0], SHUT_WR);
    pthread_join(r.th, NULL);
    printf("reader got all: %d checksum ok: %d\n", r.total == n, r.sum == checksum(p, n, 7));
    free(p);
    close(sv[0]); close(sv[1]);
}

CASE(sock_nonblocking_big_send_partial) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    size_t n = 8 << 20;
    char *p = calloc(1, n);
    double t0 = now_ms();
    long w = send(sv[0], p, n, 0);
    printf("non-blocking send: partial=%d time=%s\n", w > 0 && (size_t)w < n, timing(now_ms() - t0, 0));
    SHOW("send again", send(sv[0], p, n, 0));
    free(p);
    close(sv[0]); close(sv[1]);
}

/* ---------- the program's own non-blocking sockets ---------- */

CASE(sock_own_nonblocking_eagain_immediately) {
    int c, s;
    tcp_pair(&c, &s);
    set_nonblock(s, 1);
    char b[4];
    double t0 = now_ms();
    SHOW("recv", recv(s, b, sizeof b, 0));
    SHOW("read", read(s, b, sizeof b));
    struct iovec iov = { b, sizeof b };
    SHOW("readv", readv(s, &iov, 1));
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    SHOW("recvmsg", recvmsg(s, &m, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    set_nonblock(c, 1);
    fill(c);
    t0 = now_ms();
    SHOW("send full", send(c, "x", 1, MSG_NOSIGNAL));
    SHOW("write full", write(c, "x", 1));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    close(c); close(s);
}

CASE(sock_own_nonblocking_with_rcvtimeo) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    set_timeo(sv[0], SO_RCVTIMEO, 200);
    char b[4];
    double t0 = now_ms();
    SHOW("recv (non-blocking wins over SO_RCVTIMEO)", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 0));
    close(sv[0]); close(sv[1]);
}

CASE(sock_nonblocking_then_blocking_again) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    char b[4];
    SHOW("recv non-blocking", recv(sv[0], b, sizeof b, 0));
    set_nonblock(sv[0], 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 60, "x");
    SHOW("recv after clearing O_NONBLOCK", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

/* ---------- listen backlog ---------- */

CASE(sock_listen_backlog_tcp) {
    struct sockaddr_in a;
    int l = tcp_listener(2, &a);
    int cs[6];
    int inprogress = 0;
    for (int i = 0; i < 6; i++) {
        cs[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(cs[i], (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS) inprogress++;
        msleep(5);
    }
    msleep(100);
    int connected = 0;
    for (int i = 0; i < 6; i++) {
        struct pollfd p = { cs[i], POLLOUT, 0 };
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) connected++;
    }
    printf("connected within 100 ms: %d of 6\n", connected);
    set_nonblock(l, 1);
    int accepted = 0, s;
    while ((s = accept(l, NULL, NULL)) >= 0) { accepted++; close(s); }
    printf("accepted: %d then %s\n", accepted, en(errno));
    for (int i = 0; i < 6; i++) close(cs[i]);
    close(l);
}

CASE(sock_listen_backlog_unix) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 2, &a, "backlog");
    int ok = 0, eagain = 0, cs[6];
    for (int i = 0; i < 6; i++) {
        cs[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(cs[i], (struct sockaddr *)&a, sizeof a);
        if (r == 0) ok++;
        else if (errno == EAGAIN) eagain++;
    }
    printf("connected: %d EAGAIN: %d\n", ok, eagain);
    for (int i = 0; i < 6; i++) close(cs[i]);
    close(l);
    unlink(a.sun_path);
}

CASE(sock_listen_close_with_pending) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int c = tcp_connect(&a);
    msleep(10);
    close(l);
    msleep(20);
    char b[4];
    SHOW("recv on a connection the listener never accepted", recv(c, b, sizeof b, 0));
    close(c);
}

/* ---------- SCM_RIGHTS ---------- */

static int send_fd(int via, int fd) {
    char c = 'F';
    struct iovec iov = { &c, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    return sendmsg(via, &m, 0);
}

static int recv_fd(int via, int flags) {
    char c;
    struct iovec iov = { &c, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    if (recvmsg(via, &m, flags) != 1) return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (!h || h->cmsg_type != SCM_RIGHTS) return -2;
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

CASE(sock_scm_rights_pipe) {
    int sv[2], p[2];
    unix_pair(SOCK_STREAM, sv);
    pipe(p);
    SHOW("sendmsg with a pipe's write end", send_fd(sv[0], p[1]));
    int fd = recv_fd(sv[1], 0);
    printf("received a new fd: %d\n", fd >= 0 && fd != p[1]);
    SHOW("write through the passed fd", write(fd, "passed", 6));
    char b[8] = { 0 };
    SHOW("read from the pipe", read(p[0], b, sizeof b));
    printf("data=%s\n", b);
    close(fd); close(p[0]); close(p[1]); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_socket_works) {
    int sv[2], data[2];
    unix_pair(SOCK_STREAM, sv);
    unix_pair(SOCK_STREAM, data);
    send_fd(sv[0], data[0]);
    int fd = recv_fd(sv[1], 0);
    SHOW("send through the passed socket", send(fd, "via-passed", 10, 0));
    char b[16] = { 0 };
    SHOW("recv at the other end", recv(data[1], b, sizeof b, 0));
    printf("data=%s\n", b);
    send(data[1], "back", 4, 0);
    memset(b, 0, sizeof b);
    SHOW("recv on the passed socket (data there)", recv(fd, b, sizeof b, 0));
    printf("data=%s\n", b);
    close(fd); close(data[0]); close(data[1]); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_socket_flags) {
    int sv[2], data[2];
    unix_pair(SOCK_STREAM, sv);
    unix_pair(SOCK_STREAM, data);
    send_fd(sv[0], data[0]);
    int fd = recv_fd(sv[1], 0);
    show_flags("passed blocking socket", fd);
    send_fd(sv[0], data[0]);
    int fd2 = recv_fd(sv[1], MSG_CMSG_CLOEXEC);
    show_flags("passed with MSG_CMSG_CLOEXEC", fd2);
    close(fd); close(fd2); close(data[0]); close(data[1]); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_socket_recv_blocks) {
    int sv[2], data[2];
    unix_pair(SOCK_STREAM, sv);
    unix_pair(SOCK_STREAM, data);
    send_fd(sv[0], data[0]);
    int fd = recv_fd(sv[1], 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, data[1], 80, "waited");
    char b[16] = { 0 };
    SHOW("blocking recv on the passed socket", recv(fd, b, sizeof b, 0));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 80), b);
    act_join(&w);
    close(fd); close(data[0]); close(data[1]); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_listener_accepts) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    send_fd(sv[0], l);
    int fd = recv_fd(sv[1], 0);
    close(l);
    int c = tcp_connect(&a);
    int s = accept(fd, NULL, NULL);
    printf("accept on the passed listener ok: %d\n", s >= 0);
    close(c); close(s); close(fd); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_errors) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    SHOW("pass a bad fd", send_fd(sv[0], 9999));
    int t = socket(AF_INET, SOCK_STREAM, 0), c, s;
    tcp_pair(&c, &s);
    SHOW("SCM_RIGHTS over tcp", send_fd(c, t));
    close(t); close(c); close(s); close(sv[0]); close(sv[1]);
}

CASE(sock_scm_rights_truncated_control) {
    int sv[2], p[2];
    unix_pair(SOCK_STREAM, sv);
    pipe(p);
    send_fd(sv[0], p[0]);
    char c;
    struct iovec iov = { &c, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = NULL, .msg_controllen = 0 };
    SHOW("recvmsg without room for the fd", recvmsg(sv[1], &m, 0));
    printf("MSG_CTRUNC: %d\n", (m.msg_flags & MSG_CTRUNC) != 0);
    close(p[0]); close(p[1]); close(sv[0]); close(sv[1]);
}

CASE(sock_so_peercred) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct ucred cr;
    socklen_t len = sizeof cr;
    SHOW("getsockopt SO_PEERCRED", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len));
    printf("pid is ours: %d uid is ours: %d\n", cr.pid == getpid(), cr.uid == getuid());
    close(sv[0]); close(sv[1]);
}

/* ---------- sendfile ---------- */

static int temp_file(const char *tag, size_t n, unsigned char **content) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/greenify-sock-%d-%s", (int)getpid(), tag);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    unlink(path);
    unsigned char *p = pattern(n);
    size_t done = 0;
    while (done < n) done += write(fd, p + done, n - done);
    lseek(fd, 0, SEEK_SET);
    if (content) *content = p;
    else free(p);
    return fd;
}

CASE(sock_sendfile_small) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int f = temp_file("sf1", 1000, NULL);
    SHOW("sendfile 1000", sendfile(sv[0], f, NULL, 1000));
    printf("file position: %ld\n", (long)lseek(f, 0, SEEK_CUR));
    char b[2000];
    long got = 0, n;
    while (got < 1000 && (n = recv(sv[1], b + got, sizeof b - got, 0)) > 0) got += n;
    printf("received: %ld\n", got);
    close(f); close(sv[0]); close(sv[1]);
}

CASE(sock_sendfile_offset_and_short_file) {
    int c, s;
    tcp_pair(&c, &s);
    int f = temp_file("sf2", 500, NULL);
    off_t off = 100;
    SHOW("sendfile from offset 100, count 1000 (file 500)", sendfile(c, f, &off, 1000));
    printf("offset after: %ld file position untouched: %d\n", (long)off, lseek(f, 0, SEEK_CUR) == 0);
    SHOW("sendfile at EOF", sendfile(c, f, &off, 100));
    close(f); close(c); close(s);
}

CASE(sock_sendfile_big_slow_reader) {
    int c, s;
    tcp_pair(&c, &s);
    size_t n = 4 << 20;
    unsigned char *p;
    int f = temp_file("sf3", n, &p);
    struct slow_reader r = { .fd = s };
    pthread_create(&r.th, NULL, slow_reader_main, &r);
    long sent = sendfile(c, f, NULL, n);
    printf("sendfile returned full count: %d\n", sent == (long)n);
    shutdown(c, SHUT_WR);
    pthread_join(r.th, NULL);
    printf("reader got all: %d checksum ok: %d\n", r.total == n, r.sum == checksum(p, n, 7));
    free(p);
    close(f); close(c); close(s);
}

CASE(sock_sendfile_errors) {
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int f = temp_file("sf4", 100, NULL);
    SHOW("sendfile bad out fd", sendfile(9999, f, NULL, 10));
    SHOW("sendfile bad in fd", sendfile(sv[0], 9999, NULL, 10));
    off_t neg = -1;
    SHOW("sendfile negative offset", sendfile(sv[0], f, &neg, 10));
    int ro = open("/dev/null", O_WRONLY);
    SHOW("sendfile from a write-only fd", sendfile(sv[0], ro, NULL, 10));
    close(sv[1]);
    SHOW("sendfile to a closed peer", sendfile(sv[0], f, NULL, 10));
    close(ro); close(f); close(sv[0]);
}

CASE(sock_sendfile_nonblocking_socket_full) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    fill(sv[0]);
    int f = temp_file("sf5", 100, NULL);
    double t0 = now_ms();
    SHOW("sendfile to a full non-blocking socket", sendfile(sv[0], f, NULL, 100));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    close(f); close(sv[0]); close(sv[1]);
}

CASE(sock_sendfile_sndtimeo_full) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    set_timeo(sv[0], SO_SNDTIMEO, 100);
    int f = temp_file("sf6", 100, NULL);
    double t0 = now_ms();
    SHOW("sendfile to a full socket with SO_SNDTIMEO", sendfile(sv[0], f, NULL, 100));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 100));
    close(f); close(sv[0]); close(sv[1]);
}

/* ---------- misc ---------- */

CASE(sock_unix_stream_getsockname_bound_and_unbound) {
    struct sockaddr_un a;
    socklen_t len = unix_path(&a, "name");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un g;
    socklen_t gl = sizeof g;
    getsockname(s, (struct sockaddr *)&g, &gl);
    printf("unbound: family unix: %d len is family only: %d\n", g.sun_family == AF_UNIX, gl == sizeof(sa_family_t));
    bind(s, (struct sockaddr *)&a, len);
    gl = sizeof g;
    getsockname(s, (struct sockaddr *)&g, &gl);
    printf("bound: path equal: %d\n", !strcmp(g.sun_path, a.sun_path));
    close(s);
    unlink(a.sun_path);
}

CASE(sock_tcp_nodelay_and_keepalive_opts) {
    int c, s;
    tcp_pair(&c, &s);
    int one = 1, v = 0;
    socklen_t len = sizeof v;
    SHOW("TCP_NODELAY", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    printf("nodelay=%d\n", v != 0);
    SHOW("SO_KEEPALIVE", setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
    printf("keepalive=%d\n", v != 0);
    SHOW("bad level", setsockopt(c, 9999, 1, &one, sizeof one));
    SHOW("TCP option on unix socket", ({ int u = socket(AF_UNIX, SOCK_STREAM, 0); int r = setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); int e = errno; close(u); errno = e; r; }));
    close(c); close(s);
}

CASE(sock_so_error_after_refused_is_cleared) {
    struct sockaddr_in a = closed_port();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(s, (struct sockaddr *)&a, sizeof a);
    struct pollfd p = { s, POLLOUT, 0 };
    poll(&p, 1, 1000);
    int e = -1;
    socklen_t len = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len);
    int e2 = -1;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e2, &len);
    printf("first SO_ERROR refused-or-0: %d second: %s\n", e == ECONNREFUSED || e == 0, en(e2));
    close(s);
}

CASE(sock_blocking_connect_then_echo_unix_threads) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "echo");
    static struct echo_conn co;
    struct act acc;
    (void)acc;
    int c = unix_connect(SOCK_STREAM, &a);
    co.fd = accept(l, NULL, NULL);
    pthread_create(&co.th, NULL, echo_conn_main, &co);
    for (int i = 0; i < 5; i++) {
        char m[8], b[8] = { 0 };
        int n = snprintf(m, sizeof m, "ping%d", i);
        send(c, m, n, 0);
        long r = recv(c, b, n, MSG_WAITALL);
        printf("round %d: %ld %s\n", i, r, b);
    }
    close(c);
    pthread_join(co.th, NULL);
    close(l);
    unlink(a.sun_path);
}

CASE(sock_poll_socket_readiness) {
    int c, s;
    tcp_pair(&c, &s);
    struct pollfd p = { s, POLLIN, 0 };
    SHOW("poll empty, 30 ms", poll(&p, 1, 30));
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 50, "x");
    SHOW("poll until data", poll(&p, 1, 2000));
    printf("time=%s POLLIN=%d\n", timing(now_ms() - t0, 50), (p.revents & POLLIN) != 0);
    act_join(&w);
    close(c);
    msleep(10);
    char b[4];
    recv(s, b, sizeof b, 0);
    p.revents = 0;
    SHOW("poll after peer close", poll(&p, 1, 0));
    printf("POLLIN=%d\n", (p.revents & POLLIN) != 0);
    close(s);
}

/* ---------- more timeouts, low-water marks, wakeups ---------- */

/* A negative SO_RCVTIMEO is stored as a zero timeout: the socket answers EAGAIN at once. */
CASE(sock_rcvtimeo_negative_is_immediate) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct timeval neg = { -1, 0 };
    SHOW("setsockopt SO_RCVTIMEO {-1, 0}", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg));
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 300, "late");
    char b[8];
    SHOW("recv", recv(sv[0], b, sizeof b, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

CASE(sock_sndtimeo_negative_is_immediate) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    struct timeval neg = { -5, 0 };
    SHOW("setsockopt SO_SNDTIMEO {-5, 0}", setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &neg, sizeof neg));
    struct act d;
    double t0 = now_ms();
    act_start(&d, ACT_RECV_DRAIN, sv[1], 300, NULL);
    SHOW("send on a full socket", send(sv[0], "x", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 0));
    act_join(&d);
    close(sv[0]); close(sv[1]);
}

/* Unix sockets do not copy the listener's options to accepted sockets (TCP does). */
CASE(sock_unix_accepted_no_inherited_rcvtimeo) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 4, &a, "noinh");
    set_timeo(l, SO_RCVTIMEO, 80);
    int c = unix_connect(SOCK_STREAM, &a);
    int s = accept(l, NULL, NULL);
    unlink(a.sun_path);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("accepted SO_RCVTIMEO: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 250, "data");
    char b[8];
    SHOW("recv on the accepted socket", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 250));
    act_join(&w);
    close(c); close(s); close(l);
}

/* TCP copies the listener's options when the connection is made, not at accept. */
CASE(sock_tcp_listener_timeout_set_after_connect) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    int c = tcp_connect(&a);
    msleep(10);
    set_timeo(l, SO_RCVTIMEO, 80);
    int s = accept(l, NULL, NULL);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("accepted SO_RCVTIMEO: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 250, "data");
    char b[8];
    SHOW("recv on the accepted socket", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 250));
    act_join(&w);
    close(c); close(s); close(l);
}

CASE(sock_tcp_listener_timeout_cleared_after_connect) {
    struct sockaddr_in a;
    int l = tcp_listener(4, &a);
    set_timeo(l, SO_RCVTIMEO, 80);
    int c = tcp_connect(&a);
    msleep(10);
    set_timeo(l, SO_RCVTIMEO, 0);
    int s = accept(l, NULL, NULL);
    struct timeval tv;
    socklen_t len = sizeof tv;
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    printf("accepted SO_RCVTIMEO: %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 300, "data");
    char b[8];
    SHOW("recv on the accepted socket", recv(s, b, sizeof b, 0));
    printf("time=%s\n", timing_timeo(now_ms() - t0, 80));
    act_join(&w);
    close(c); close(s); close(l);
}

/* SO_RCVLOWAT: a blocking recv waits until that many bytes are there. */
CASE(sock_so_rcvlowat_tcp) {
    int c, s;
    tcp_pair(&c, &s);
    int lowat = 5;
    SHOW("setsockopt SO_RCVLOWAT 5", setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat));
    send(c, "ab", 2, 0);
    msleep(10);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, c, 80, "cdefg");
    char b[17] = { 0 };
    SHOW("recv 16", recv(s, b, 16, 0));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 80), b);
    act_join(&w);
    close(c); close(s);
}

CASE(sock_so_rcvlowat_unix) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int lowat = 4;
    SHOW("setsockopt SO_RCVLOWAT 4", setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat));
    send(sv[1], "x", 1, 0);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 80, "yzw");
    char b[17] = { 0 };
    SHOW("read 16", read(sv[0], b, 16));
    printf("time=%s data=%s\n", timing(now_ms() - t0, 80), b);
    act_join(&w);
    close(sv[0]); close(sv[1]);
}

CASE(sock_so_rcvlowat_nonblocking_returns_what_is_there) {
    int sv[2];
    unix_pair(SOCK_STREAM | SOCK_NONBLOCK, sv);
    int lowat = 4;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    send(sv[1], "x", 1, 0);
    char b[8];
    SHOW("recv on a non-blocking socket below the low-water mark", recv(sv[0], b, sizeof b, 0));
    close(sv[0]); close(sv[1]);
}

/* shutdown(SHUT_WR) by another thread makes a send blocked on a full socket fail. */
CASE(sock_shutdown_wr_wakes_parked_send_unix) {
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    struct act sh, d;
    double t0 = now_ms();
    act_start(&sh, ACT_SHUT_WR, sv[0], 50, NULL);
    act_start(&d, ACT_RECV_DRAIN, sv[1], 400, NULL);
    SHOW("send on a full socket", send(sv[0], "x", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    act_join(&sh); act_join(&d);
    close(sv[0]); close(sv[1]);
}

CASE(sock_shutdown_wr_wakes_parked_send_tcp) {
    signal(SIGPIPE, SIG_IGN);
    int c, s;
    tcp_pair(&c, &s);
    fill(c);
    struct act sh, d;
    double t0 = now_ms();
    act_start(&sh, ACT_SHUT_WR, c, 50, NULL);
    act_start(&d, ACT_RECV_DRAIN, s, 400, NULL);
    SHOW("send on a full socket", send(c, "x", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    act_join(&sh); act_join(&d);
    close(c); close(s);
}

CASE(sock_peer_close_wakes_parked_send) {
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    struct act cl;
    double t0 = now_ms();
    act_start(&cl, ACT_CLOSE, sv[1], 50, NULL);
    SHOW("send on a full socket", send(sv[0], "x", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    act_join(&cl);
    close(sv[0]);
}

/* The same without ignoring SIGPIPE: natively the blocked send reports the reset (no
 * SIGPIPE, which only comes with EPIPE). */
CASE(sock_peer_close_wakes_parked_send_sigpipe_default) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    fill(sv[0]);
    struct act cl;
    double t0 = now_ms();
    act_start(&cl, ACT_CLOSE, sv[1], 50, NULL);
    printf("sending on a full socket\n");
    SHOW("send on a full socket", send(sv[0], "x", 1, 0));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    act_join(&cl);
    close(sv[0]);
}

CASE(sock_writev_sigpipe_kills) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    close(sv[1]);
    printf("writev to a closed peer\n");
    struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };
    writev(sv[0], iov, 2);
    printf("survived\n");
}

CASE(sock_sendfile_sigpipe_kills) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    int f = temp_file("sfpipe", 10, NULL);
    close(sv[1]);
    printf("sendfile to a closed peer\n");
    sendfile(sv[0], f, NULL, 10);
    printf("survived\n");
}

struct one_byte_reader { pthread_t th; int fd; long r; char c; };

static void *one_byte_main(void *p) {
    struct one_byte_reader *r = p;
    r->r = recv(r->fd, &r->c, 1, 0);
    return NULL;
}

CASE(sock_ten_readers_one_socket) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct one_byte_reader rd[10];
    for (int i = 0; i < 10; i++) {
        rd[i].fd = sv[0];
        pthread_create(&rd[i].th, NULL, one_byte_main, &rd[i]);
    }
    msleep(30);
    send(sv[1], "0123", 4, 0);
    msleep(20);
    for (int i = 4; i < 10; i++) { char ch = '0' + i; send(sv[1], &ch, 1, 0); msleep(3); }
    int mask = 0, ok = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(rd[i].th, NULL);
        if (rd[i].r == 1) { ok++; mask |= 1 << (rd[i].c - '0'); }
    }
    printf("readers with one byte: %d all bytes seen once: %d\n", ok, mask == 0x3ff);
    close(sv[0]); close(sv[1]);
}

CASE(sock_ten_udp_readers_burst) {
    struct sockaddr_in a;
    int r = udp_bound(&a), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct one_byte_reader rd[10];
    for (int i = 0; i < 10; i++) {
        rd[i].fd = r;
        pthread_create(&rd[i].th, NULL, one_byte_main, &rd[i]);
    }
    msleep(30);
    for (int i = 0; i < 10; i++) { char ch = '0' + i; sendto(s, &ch, 1, 0, (struct sockaddr *)&a, sizeof a); }
    int mask = 0, ok = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(rd[i].th, NULL);
        if (rd[i].r == 1) { ok++; mask |= 1 << (rd[i].c - '0'); }
    }
    printf("readers with one datagram: %d all seen once: %d\n", ok, mask == 0x3ff);
    close(r); close(s);
}

struct big_writer { pthread_t th; int fd; unsigned char *p; size_t n; long w; };

static void *big_writer_main(void *x) {
    struct big_writer *b = x;
    b->w = send(b->fd, b->p, b->n, 0);
    shutdown(b->fd, SHUT_WR);
    return NULL;
}

/* Both directions at once, each with a blocking writer and a reader thread. */
CASE(sock_full_duplex_threads) {
    int c, s;
    tcp_pair(&c, &s);
    size_t n = 2 << 20;
    unsigned char *p = pattern(n);
    struct slow_reader r1 = { .fd = s }, r2 = { .fd = c };
    struct big_writer w1 = { .fd = c, .p = p, .n = n }, w2 = { .fd = s, .p = p, .n = n };
    pthread_create(&r1.th, NULL, slow_reader_main, &r1);
    pthread_create(&r2.th, NULL, slow_reader_main, &r2);
    pthread_create(&w1.th, NULL, big_writer_main, &w1);
    pthread_create(&w2.th, NULL, big_writer_main, &w2);
    pthread_join(w1.th, NULL); pthread_join(w2.th, NULL);
    pthread_join(r1.th, NULL); pthread_join(r2.th, NULL);
    unsigned sum = checksum(p, n, 7);
    printf("c->s: sent all %d received all %d checksum %d\n", w1.w == (long)n, r1.total == n, r1.sum == sum);
    printf("s->c: sent all %d received all %d checksum %d\n", w2.w == (long)n, r2.total == n, r2.sum == sum);
    free(p);
    close(c); close(s);
}

/* A blocking connect waiting for room in a full Unix backlog fails when the listener goes. */
CASE(sock_connect_unix_full_backlog_listener_closed) {
    struct sockaddr_un a;
    int l = unix_listener(SOCK_STREAM, 0, &a, "fullgone");
    int c1 = unix_connect(SOCK_STREAM, &a);
    struct act cl;
    double t0 = now_ms();
    act_start(&cl, ACT_CLOSE, l, 80, NULL);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("blocking connect", connect(s, (struct sockaddr *)&a, sizeof a));
    printf("time=%s\n", timing(now_ms() - t0, 80));
    act_join(&cl);
    close(c1); close(s);
    unlink(a.sun_path);
}

/* A blocking zero-length recv on an empty stream waits for data, then returns 0. */
CASE(sock_recv_zero_length_blocking_waits) {
    int sv[2];
    unix_pair(SOCK_STREAM, sv);
    struct act w;
    double t0 = now_ms();
    act_start(&w, ACT_SEND, sv[1], 60, "d");
    char b[2];
    SHOW("recv 0 bytes", recv(sv[0], b, 0, 0));
    printf("time=%s\n", timing(now_ms() - t0, 60));
    act_join(&w);
    SHOW("recv 1 (the byte is still there)", recv(sv[0], b, 1, MSG_DONTWAIT));
    close(sv[0]); close(sv[1]);
}

struct fd_counter { pthread_t th; int fd; size_t total; int fds; int fd_in_first; };

static void *fd_counter_main(void *p) {
    struct fd_counter *c = p;
    char b[65536];
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 4)]; } u;
    for (int i = 0;; i++) {
        struct iovec iov = { b, sizeof b };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        long n = recvmsg(c->fd, &m, 0);
        if (n <= 0) break;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
            if (h->cmsg_type == SCM_RIGHTS) {
                int got = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                c->fds += got;
                if (i == 0) c->fd_in_first = 1;
                int fds[4];
                memcpy(fds, CMSG_DATA(h), got * sizeof(int));
                for (int k = 0; k < got; k++) close(fds[k]);
            }
        }
        c->total += n;
        if (i % 8 == 0) msleep(1);
    }
    return NULL;
}

/* A big stream sendmsg carrying an fd: sent whole, the fd arrives once, with the start. */
CASE(sock_scm_rights_with_big_payload) {
    int sv[2], p[2];
    unix_pair(SOCK_STREAM, sv);
    pipe(p);
    size_t n = 1 << 20;
    char *big = calloc(1, n);
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = { big, n };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &p[0], sizeof(int));
    struct fd_counter c = { .fd = sv[1] };
    pthread_create(&c.th, NULL, fd_counter_main, &c);
    long sent = sendmsg(sv[0], &m, 0);
    shutdown(sv[0], SHUT_WR);
    pthread_join(c.th, NULL);
    printf("sent all: %d received all: %d fds received: %d in the first read: %d\n",
           sent == (long)n, c.total == n, c.fds, c.fd_in_first);
    free(big);
    close(p[0]); close(p[1]); close(sv[0]); close(sv[1]);
}
