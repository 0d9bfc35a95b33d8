/* fd numbering, O_NONBLOCK views, partial I/O and the less common send/recv calls, as a
 * program sees them. One line per check; deterministic; identical natively and greenified. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(name, fmt, ...) printf("%s: " fmt "\n", name, __VA_ARGS__)
static const char *en(int e) { return e ? strerrorname_np(e) : "0"; }

struct job { int fd; size_t n; int delay_ms; long result; };

static void *drain(void *arg) {  /* reads everything until EOF, counting bytes */
    struct job *j = arg;
    char buf[8192];
    ssize_t r;
    long total = 0;
    while ((r = read(j->fd, buf, sizeof buf)) > 0) total += r;
    j->result = total;
    return NULL;
}

static void *dribble(void *arg) {  /* writes n bytes one byte at a time, slowly */
    struct job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        usleep((useconds_t)j->delay_ms * 1000);
        if (write(j->fd, "abcdefgh" + (i % 8), 1) != 1) return NULL;
    }
    return NULL;
}

static void *shut_later(void *arg) {
    struct job *j = arg;
    usleep((useconds_t)j->delay_ms * 1000);
    shutdown(j->fd, SHUT_RDWR);
    return NULL;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int p[2];
    pipe(p);
    CHECK("first fds", "socket=%d pipe=%d,%d", s, p[0], p[1]);
    CHECK("socket flags", "nonblock=%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
    int d = dup(s);
    CHECK("dup", "fd=%d nonblock=%d", d, !!(fcntl(d, F_GETFL) & O_NONBLOCK));
    int one = 1;
    ioctl(s, FIONBIO, &one);
    CHECK("fionbio on", "nonblock=%d", !!(fcntl(s, F_GETFL) & O_NONBLOCK));
    close(d);
    close(s);
    int s2 = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("reuse lowest", "fd=%d nonblock=%d", s2, !!(fcntl(s2, F_GETFL) & O_NONBLOCK));
    close(s2);
    char c;
    errno = 0;
    ssize_t r = read(s2, &c, 1);
    CHECK("read closed fd", "ret=%zd errno=%s", r, en(errno));
    errno = 0;
    r = write(-1, "x", 1);
    CHECK("write fd -1", "ret=%zd errno=%s", r, en(errno));
    int d2 = dup2(p[0], 40);
    CHECK("dup2", "ret=%d", d2);
    close(40);

    /* a big blocking write into a pipe: returns only once all of it is written */
    struct job j = { .fd = p[0], .n = 0 };
    pthread_t t;
    pthread_create(&t, NULL, drain, &j);
    size_t big = 1 << 20;
    char *buf = calloc(1, big);
    r = write(p[1], buf, big);
    close(p[1]);
    pthread_join(t, NULL);
    CHECK("pipe 1 MiB write", "ret=%zd read=%ld", r, j.result);
    close(p[0]);

    /* EPIPE with SIGPIPE ignored */
    pipe(p);
    close(p[0]);
    errno = 0;
    r = write(p[1], "x", 1);
    CHECK("write to closed pipe", "ret=%zd errno=%s", r, en(errno));
    close(p[1]);

    /* a big blocking send on a socket, then MSG_WAITALL across slow partial writes */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    j = (struct job){ .fd = sv[1] };
    pthread_create(&t, NULL, drain, &j);
    r = send(sv[0], buf, big, 0);
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    CHECK("socket 1 MiB send", "ret=%zd read=%ld", r, j.result);
    close(sv[0]);
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    j = (struct job){ .fd = sv[1], .n = 6, .delay_ms = 10 };
    pthread_create(&t, NULL, dribble, &j);
    char got[7] = {0};
    r = recv(sv[0], got, 6, MSG_WAITALL);
    pthread_join(t, NULL);
    CHECK("recv waitall", "ret=%zd data=%s", r, got);

    /* readv / writev */
    struct iovec wv[2] = { { "hello ", 6 }, { "world", 5 } };
    r = writev(sv[1], wv, 2);
    char a[4] = {0}, b[9] = {0};
    struct iovec rv[2] = { { a, 3 }, { b, 8 } };
    ssize_t r2 = readv(sv[0], rv, 2);
    CHECK("writev/readv", "wrote=%zd read=%zd a=%s b=%s", r, r2, a, b);

    /* sendmsg / recvmsg */
    struct msghdr m = {0};
    struct iovec mv = { "msg!", 4 };
    m.msg_iov = &mv;
    m.msg_iovlen = 1;
    r = sendmsg(sv[1], &m, 0);
    char mb[8] = {0};
    struct iovec mr = { mb, sizeof mb };
    struct msghdr mm = { .msg_iov = &mr, .msg_iovlen = 1 };
    r2 = recvmsg(sv[0], &mm, 0);
    CHECK("sendmsg/recvmsg", "sent=%zd got=%zd data=%s", r, r2, mb);

    /* a reader parked in recv is woken by shutdown from another thread */
    j = (struct job){ .fd = sv[0], .delay_ms = 50 };
    pthread_create(&t, NULL, shut_later, &j);
    r = recv(sv[0], got, 1, 0);
    pthread_join(t, NULL);
    CHECK("recv after shutdown", "ret=%zd", r);
    close(sv[0]);
    close(sv[1]);

    /* sendmmsg / recvmmsg on UDP over loopback */
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof addr;
    bind(u2, (struct sockaddr *)&addr, sizeof addr);
    getsockname(u2, (struct sockaddr *)&addr, &alen);
    connect(u1, (struct sockaddr *)&addr, sizeof addr);
    struct mmsghdr out[3];
    struct iovec ov[3] = { { "one", 3 }, { "two", 3 }, { "three", 5 } };
    memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) { out[i].msg_hdr.msg_iov = &ov[i]; out[i].msg_hdr.msg_iovlen = 1; }
    int sent = sendmmsg(u1, out, 3, 0);
    struct mmsghdr in[3];
    char ib[3][8];
    struct iovec iv[3];
    memset(in, 0, sizeof in);
    memset(ib, 0, sizeof ib);
    for (int i = 0; i < 3; i++) {
        iv[i] = (struct iovec){ ib[i], 8 };
        in[i].msg_hdr.msg_iov = &iv[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    int recvd = recvmmsg(u2, in, 3, 0, NULL);
    CHECK("sendmmsg/recvmmsg", "sent=%d got=%d %s,%s,%s", sent, recvd, ib[0], ib[1], ib[2]);
    close(u1);
    close(u2);

    /* sendfile from a file to a socket */
    FILE *f = tmpfile();
    fwrite(buf, 1, 100000, f);
    fflush(f);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    j = (struct job){ .fd = sv[1] };
    pthread_create(&t, NULL, drain, &j);
    off_t off = 0;
    r = sendfile(sv[0], fileno(f), &off, 100000);
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    CHECK("sendfile", "ret=%zd offset=%ld read=%ld", r, (long)off, j.result);
    fclose(f);
    free(buf);
    return 0;
}
