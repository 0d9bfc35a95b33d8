/*
 * fortified_io: blocking I/O through glibc's _FORTIFY_SOURCE checking entry
 * points.
 *
 * Compiled with -O2 -D_FORTIFY_SOURCE=2, gcc turns the calls below into
 * __read_chk, __recv_chk, __recvfrom_chk, __poll_chk, __ppoll_chk,
 * __fdelt_chk (FD_SET/FD_ISSET) and __pread_chk, because they read into
 * fixed-size arrays whose size the compiler knows while the length (or poll
 * count) is a runtime value. A program built this way never calls plain
 * read()/recv()/poll() for these, so an LD_PRELOAD library that wants to
 * intercept them has to intercept the _chk variants too.
 *
 * For each check a writer thread sends "hello" after ~50 ms, so the reading
 * side really has to wait.
 *
 * Build:  gcc -O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra -pthread -o fortified_io fortified_io.c
 * Check:  nm -D fortified_io | grep _chk
 * Usage:  fortified_io
 *
 * Choices where the spec leaves room:
 *  - The runtime length / count are the ordinary globals msg_len and
 *    poll_count: the compiler cannot treat them as constants, which is what
 *    makes it pick the checking variants.
 *  - pread cannot wait for data on a regular file (and fails with ESPIPE on
 *    a pipe), so for pread the writer thread writes "hello" to a temporary
 *    file after ~50 ms, main waits for it with pthread_join and then preads
 *    offset 0.
 *  - recvfrom uses UDP on 127.0.0.1 and prints the sender's address (not the
 *    port, which changes from run to run).
 *  - poll/ppoll print revents as a number (POLLIN is 1), select prints
 *    FD_ISSET of the descriptor.
 */
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Not constants (see the comment at the top). */
size_t msg_len = 5;     /* strlen("hello") */
nfds_t poll_count = 1;

static const char message[] = "hello";

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---------- writer thread: writes "hello" to fd after delay_ms ---------- */

struct writer {
    pthread_t tid;
    int fd;
    int delay_ms;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct timespec ts = { 0, w->delay_ms * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (write(w->fd, message, strlen(message)) != (ssize_t)strlen(message))
        die("writer: write");
    return NULL;
}

static void start_writer(struct writer *w, int fd)
{
    w->fd = fd;
    w->delay_ms = 50;
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

/* Print "<name>: <n> <data>" for a read-like call, or its error. */
static void print_data(const char *name, ssize_t n, const char *buf, const char *extra)
{
    if (n < 0)
        printf("%s: -1 %s\n", name, strerror(errno));
    else
        printf("%s: %zd %.*s%s\n", name, n, (int)n, buf, extra);
}

/* ---------- checks ---------- */

static void check_read(void)
{
    int p[2];
    char buf[64];
    struct writer w;

    if (pipe(p) != 0)
        die("pipe");
    start_writer(&w, p[1]);
    ssize_t n = read(p[0], buf, msg_len);
    print_data("read", n, buf, "");
    join_writer(&w);
    close(p[0]);
    close(p[1]);
}

static void check_recv(void)
{
    int sv[2];
    char buf[64];
    struct writer w;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair");
    start_writer(&w, sv[1]);
    ssize_t n = recv(sv[0], buf, msg_len, 0);
    print_data("recv", n, buf, "");
    join_writer(&w);
    close(sv[0]);
    close(sv[1]);
}

static void check_recvfrom(void)
{
    char buf[64];
    struct writer w;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;

    int rfd = socket(AF_INET, SOCK_DGRAM, 0);
    int sfd = socket(AF_INET, SOCK_DGRAM, 0);
    if (rfd < 0 || sfd < 0)
        die("socket");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(rfd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (getsockname(rfd, (struct sockaddr *)&addr, &alen) != 0)
        die("getsockname");
    if (connect(sfd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("connect");

    start_writer(&w, sfd);
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(rfd, buf, msg_len, 0, (struct sockaddr *)&from, &flen);
    char extra[64] = "";
    char ip[INET_ADDRSTRLEN];
    if (n >= 0 && inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip) != NULL)
        snprintf(extra, sizeof extra, " from=%s", ip);
    print_data("recvfrom", n, buf, extra);
    join_writer(&w);
    close(rfd);
    close(sfd);
}

static void check_poll(void)
{
    int p[2];
    struct pollfd fds[4];
    struct writer w;

    if (pipe(p) != 0)
        die("pipe");
    memset(fds, 0, sizeof fds);
    fds[0].fd = p[0];
    fds[0].events = POLLIN;
    start_writer(&w, p[1]);
    int n = poll(fds, poll_count, 2000);
    if (n < 0)
        printf("poll: -1 %s\n", strerror(errno));
    else
        printf("poll: %d revents=%d\n", n, fds[0].revents);
    join_writer(&w);
    close(p[0]);
    close(p[1]);
}

static void check_ppoll(void)
{
    int p[2];
    struct pollfd fds[4];
    struct writer w;
    struct timespec timeout = { 2, 0 };

    if (pipe(p) != 0)
        die("pipe");
    memset(fds, 0, sizeof fds);
    fds[0].fd = p[0];
    fds[0].events = POLLIN;
    start_writer(&w, p[1]);
    int n = ppoll(fds, poll_count, &timeout, NULL);
    if (n < 0)
        printf("ppoll: -1 %s\n", strerror(errno));
    else
        printf("ppoll: %d revents=%d\n", n, fds[0].revents);
    join_writer(&w);
    close(p[0]);
    close(p[1]);
}

static void check_select(void)
{
    int p[2];
    fd_set rfds;
    struct writer w;
    struct timeval timeout = { 2, 0 };

    if (pipe(p) != 0)
        die("pipe");
    FD_ZERO(&rfds);
    FD_SET(p[0], &rfds);
    start_writer(&w, p[1]);
    int n = select(p[0] + 1, &rfds, NULL, NULL, &timeout);
    if (n < 0)
        printf("select: -1 %s\n", strerror(errno));
    else
        printf("select: %d readable=%d\n", n, FD_ISSET(p[0], &rfds) ? 1 : 0);
    join_writer(&w);
    close(p[0]);
    close(p[1]);
}

static void check_pread(void)
{
    char buf[64];
    struct writer w;

    FILE *f = tmpfile();
    if (f == NULL)
        die("tmpfile");
    int fd = fileno(f);
    start_writer(&w, fd);
    join_writer(&w);
    ssize_t n = pread(fd, buf, msg_len, 0);
    print_data("pread", n, buf, "");
    fclose(f);
}

int main(void)
{
    check_read();
    check_recv();
    check_recvfrom();
    check_poll();
    check_ppoll();
    check_select();
    check_pread();
    return 0;
}
