/*
 * epoll_echo_server: a hand-written single-threaded epoll TCP echo server,
 * the ideal that a thread-per-connection echo server (echo_server.c) can be
 * compared with on one core.
 *
 * One thread, one epoll instance. The listener (level-triggered) is
 * non-blocking and accepts with accept4() until EAGAIN. Every connection is
 * non-blocking and owns one 64 KiB buffer (allocated at accept, freed at
 * close; nothing is allocated per event and nothing is logged per
 * connection). Each connection reads what is there, writes it all back, and
 * only reads again once the previous bytes are written: a partial write waits
 * for EPOLLOUT (a connection is registered once, edge-triggered, for input and
 * output, so no epoll_ctl is needed per event). A connection is closed at EOF
 * or on any error.
 *
 * Usage:  epoll_echo_server PORT        (PORT 0 picks an ephemeral port)
 * Build:  gcc -O2 -Wall -Wextra -Werror -pthread -o epoll_echo_server epoll_echo_server.c
 * Prints "listening on <port>" once ready (127.0.0.1 only), then runs until
 * killed.
 * Try it: ./epoll_echo_server 0 & ./epoll_load -c 1000 -r 100 127.0.0.1 <port>
 *
 * Choices where the spec leaves room:
 *  - RLIMIT_NOFILE's soft limit is raised to the hard limit at start.
 *  - When out of descriptors (EMFILE/ENFILE) the server closes a spare
 *    descriptor it keeps for this, accepts the pending connection and closes
 *    it at once (the client sees the connection closed), then reopens the
 *    spare: the listener never spins and never stalls.
 *  - A read that fills less than the whole buffer means the socket's receive
 *    queue was empty: the connection is not read again (no EAGAIN read) until
 *    epoll reports new input.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 1024

struct conn {
    int fd;
    int may_read;      /* epoll reported input that has not been drained yet */
    uint32_t start;    /* buf[start..end) was read and not yet written back */
    uint32_t end;
    char buf[BUF_SIZE];
};

static int epfd;
static int listen_fd;
static int spare_fd = -1;   /* kept open for EMFILE/ENFILE, see accept_all() */

static void raise_nofile_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("getrlimit");
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        perror("setrlimit");
}

static void close_conn(struct conn *c)
{
    close(c->fd);   /* also removes it from the epoll set (never dup'ed) */
    free(c);
}

/*
 * Moves bytes: writes back what is pending, reads more once nothing is
 * pending. Returns when the socket cannot take more (EPOLLOUT will follow) or
 * has nothing more to give (EPOLLIN will follow); closes the connection at
 * EOF or on an error.
 */
static void serve(struct conn *c)
{
    for (;;) {
        while (c->start < c->end) {
            ssize_t n = write(c->fd, c->buf + c->start, c->end - c->start);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                close_conn(c);
                return;
            }
            c->start += (uint32_t)n;
            if (c->start < c->end)
                return;   /* send buffer full: wait for EPOLLOUT */
        }
        if (!c->may_read)
            return;
        ssize_t n = read(c->fd, c->buf, BUF_SIZE);
        if (n > 0) {
            c->start = 0;
            c->end = (uint32_t)n;
            if (n < BUF_SIZE)
                c->may_read = 0;   /* receive queue drained */
            continue;
        }
        if (n == 0) {
            close_conn(c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->may_read = 0;
            return;
        }
        close_conn(c);
        return;
    }
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if ((e == EMFILE || e == ENFILE) && spare_fd >= 0) {
                /* Out of descriptors: refuse one pending connection cleanly. */
                close(spare_fd);
                fd = accept(listen_fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                    continue;
            }
            /* ENOBUFS, ENOMEM, ...: the listener is level-triggered, so the
             * next epoll_wait reports it again. */
            return;
        }
        struct conn *c = malloc(sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->may_read = 1;
        c->start = c->end = 0;
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close_conn(c);
            continue;
        }
        /* Data may already be queued; the edge for it may predate the
         * registration, so look now. */
        serve(c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("signal");
        return 1;
    }
    raise_nofile_limit();
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare_fd < 0) {
        perror("open /dev/null");
        return 1;
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    if (setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        perror("setsockopt SO_REUSEADDR");
        return 1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    if (listen(listen_fd, SOMAXCONN) != 0) {
        perror("listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    if (getsockname(listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("getsockname");
        return 1;
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("epoll_create1");
        return 1;
    }
    struct epoll_event lev;
    memset(&lev, 0, sizeof lev);
    lev.events = EPOLLIN;           /* level-triggered: see accept_all() */
    lev.data.ptr = NULL;            /* connections are never NULL */
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &lev) != 0) {
        perror("epoll_ctl listener");
        return 1;
    }

    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    static struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                accept_all();
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->may_read = 1;
            serve(c);
        }
    }
}
