/*
 * epoll_echo_server: a hand-written epoll TCP echo server, the ideal that a
 * thread-per-connection echo server (echo_server.c) can be compared with: one
 * thread for one core, or -t N threads for N cores.
 *
 * Each thread runs the same loop on an epoll instance and a listener of its
 * own: the listeners share the port through SO_REUSEPORT, so the kernel
 * spreads new connections over the threads (by a hash of the address pair)
 * and a connection stays with the thread that accepted it: no lock, no
 * shared state, nothing handed between threads. The listener (level-triggered) is
 * non-blocking and accepts with accept4() until EAGAIN. Every connection is
 * non-blocking and owns one 64 KiB buffer (allocated at accept, freed at
 * close; nothing is allocated per event and nothing is logged per
 * connection). Each connection reads what is there, writes it all back, and
 * only reads again once the previous bytes are written: a partial write waits
 * for EPOLLOUT (a connection is registered once, edge-triggered, for input and
 * output, so no epoll_ctl is needed per event). A connection is closed at EOF
 * or on any error.
 *
 * Usage:  epoll_echo_server [-t THREADS] PORT   (PORT 0 picks an ephemeral
 *         port; THREADS defaults to 1)
 * Build:  gcc -O2 -Wall -Wextra -Werror -pthread -o epoll_echo_server epoll_echo_server.c
 * Prints "listening on <port>" once every thread's listener is ready
 * (127.0.0.1 only), then runs until killed.
 * Try it: ./epoll_echo_server 0 & ./epoll_load -c 1000 -r 100 127.0.0.1 <port>
 *
 * Choices where the spec leaves room:
 *  - RLIMIT_NOFILE's soft limit is raised to the hard limit at start.
 *  - When out of descriptors (EMFILE/ENFILE) a thread closes a spare
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
#include <pthread.h>
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
#define MAX_THREADS 64

struct conn {
    int fd;
    int may_read;      /* epoll reported input that has not been drained yet */
    uint32_t start;    /* buf[start..end) was read and not yet written back */
    uint32_t end;
    char buf[BUF_SIZE];
};

/* One per thread; only that thread touches it once the threads run. */
struct loop {
    int epfd;
    int listen_fd;
    int spare_fd;   /* kept open for EMFILE/ENFILE, see accept_all() */
    struct epoll_event events[MAX_EVENTS];
};

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

static void accept_all(struct loop *l)
{
    for (;;) {
        int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if ((e == EMFILE || e == ENFILE) && l->spare_fd >= 0) {
                /* Out of descriptors: refuse one pending connection cleanly. */
                close(l->spare_fd);
                fd = accept(l->listen_fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
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
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close_conn(c);
            continue;
        }
        /* Data may already be queued; the edge for it may predate the
         * registration, so look now. */
        serve(c);
    }
}

/*
 * Opens one thread's listener on port (0: an ephemeral one, which is then
 * written back to *port for the other threads) and its epoll instance.
 * Returns 0, or -1 after perror.
 */
static int open_loop(struct loop *l, uint16_t *port)
{
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (l->spare_fd < 0) {
        perror("open /dev/null");
        return -1;
    }
    l->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->listen_fd < 0) {
        perror("socket");
        return -1;
    }
    int one = 1;
    if (setsockopt(l->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        perror("setsockopt SO_REUSEADDR");
        return -1;
    }
    if (setsockopt(l->listen_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        perror("setsockopt SO_REUSEPORT");
        return -1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(*port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        return -1;
    }
    if (listen(l->listen_fd, SOMAXCONN) != 0) {
        perror("listen");
        return -1;
    }
    socklen_t alen = sizeof addr;
    if (getsockname(l->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("getsockname");
        return -1;
    }
    *port = ntohs(addr.sin_port);

    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        perror("epoll_create1");
        return -1;
    }
    struct epoll_event lev;
    memset(&lev, 0, sizeof lev);
    lev.events = EPOLLIN;           /* level-triggered: see accept_all() */
    lev.data.ptr = NULL;            /* connections are never NULL */
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &lev) != 0) {
        perror("epoll_ctl listener");
        return -1;
    }
    return 0;
}

/* The event loop of one thread; returns only on an epoll_wait error. */
static void *run_loop(void *arg)
{
    struct loop *l = arg;
    for (;;) {
        int n = epoll_wait(l->epfd, l->events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = l->events[i].data.ptr;
            if (c == NULL) {
                accept_all(l);
                continue;
            }
            if (l->events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->may_read = 1;
            serve(c);
        }
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-t THREADS] PORT   (THREADS 1..%d)\n", argv0, MAX_THREADS);
    exit(2);
}

int main(int argc, char **argv)
{
    long threads = 1;
    int opt;
    char *end;
    while ((opt = getopt(argc, argv, "t:")) != -1) {
        if (opt != 't')
            usage(argv[0]);
        threads = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || threads < 1 || threads > MAX_THREADS)
            usage(argv[0]);
    }
    if (optind != argc - 1)
        usage(argv[0]);
    long port = strtol(argv[optind], &end, 10);
    if (*argv[optind] == '\0' || *end != '\0' || port < 0 || port > 65535)
        usage(argv[0]);

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("signal");
        return 1;
    }
    raise_nofile_limit();

    static struct loop loops[MAX_THREADS];
    uint16_t p = (uint16_t)port;
    for (long i = 0; i < threads; i++)
        if (open_loop(&loops[i], &p) != 0)
            return 1;

    printf("listening on %d\n", p);
    fflush(stdout);

    for (long i = 1; i < threads; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, run_loop, &loops[i]);
        if (e != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(e));
            return 1;
        }
    }
    run_loop(&loops[0]);
    return 1;
}
