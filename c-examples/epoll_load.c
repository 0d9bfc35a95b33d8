/*
 * epoll_load: a single-threaded epoll load generator for echo servers, built
 * so that it is not the bottleneck (one thread, edge-triggered epoll, no
 * per-round allocation or copying).
 *
 * It opens CONNS non-blocking connections up front and waits until every one
 * has connected (or failed). Then each connection does request/response round
 * trips: it writes SIZE bytes, reads back exactly SIZE bytes, verifies every
 * byte, and starts the next round. Byte i of round k of connection c is
 * (unsigned char)(c*31 + k*7 + i). Every round trip's latency (first write to
 * last byte read, CLOCK_MONOTONIC) goes into a log-scale histogram with 256
 * buckets per power of two (percentiles within 0.2%).
 *
 * Usage:  epoll_load [-c CONNS] [-r ROUNDS] [-d SECONDS] [-s SIZE] [-H HOLD_MS] HOST PORT
 *         defaults: -c 10 -r 100 -s 16 -H 0
 *   -r ROUNDS   each connection stops after ROUNDS round trips
 *   -d SECONDS  load for SECONDS (decimals allowed): then no round trip is
 *               started and the outstanding ones finish; -r is then ignored
 *               unless it is also given explicitly (whichever comes first)
 *   -H HOLD_MS  after every connection has completed one round trip, all of
 *               them stay open and idle for HOLD_MS ms; "holding <open conns>"
 *               is printed (and flushed) on stderr when the hold starts
 * Build:  gcc -O2 -Wall -Wextra -Werror -pthread -o epoll_load epoll_load.c
 * Example: ./epoll_echo_server 0 & ./epoll_load -c 1000 -d 3 127.0.0.1 <port>
 *
 * stdout (one line):
 *   "conns=C size=S round_trips=N errors=E seconds=T rtps=R p50_us=X p99_us=Y"
 *   N counts verified round trips; T (3 decimals) is the load phase, from the
 *   first request to the last response, without the connection phase and
 *   without the hold; R = N / T (integer); p50/p99 (1 decimal) are nearest-rank
 *   percentiles of the round-trip latencies in microseconds (0.0 if N is 0).
 * stderr: connection phase time, the hold line, one line per kind of error.
 * Exit status 0 iff errors == 0 and every connection connected.
 *
 * Choices where the spec leaves room:
 *  - An error (socket, connect, write, read, early EOF, a wrong byte, bytes
 *    arriving on an idle connection, or a stall) counts once and closes that
 *    connection; the others go on.
 *  - A stall guard: if nothing at all happens for 60 s while connections wait
 *    (to connect or for a response), each of them counts an error ("stall").
 *  - Connections stay open until the end (closing one does not disturb the
 *    server while the others are measured), then are closed.
 *  - HOST may be a name or an address (getaddrinfo); the first result is used.
 *  - TCP_NODELAY is set on every connection (a request is one write anyway).
 *  - The connection phase is not timed. Past ~10,000 connections to one
 *    server port it is dominated by the kernel's ephemeral port search in
 *    connect() (about 5 s for 19,000 on the development machine).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 4096
#define SCRATCH_SIZE (256 * 1024)
#define STALL_NS (60ull * 1000000000ull)
#define MAX_SIZE (64L * 1024 * 1024)

enum err_kind {
    ERR_SOCKET,     /* socket() or epoll_ctl() failed */
    ERR_CONNECT,    /* connect() failed */
    ERR_WRITE,      /* write() failed */
    ERR_READ,       /* read() failed */
    ERR_EOF,        /* peer closed the connection too early */
    ERR_MISMATCH,   /* echoed bytes differ from what was sent */
    ERR_UNEXPECTED, /* bytes or EOF on a connection that was idle */
    ERR_STALL,      /* nothing happened for 60 s */
    ERR_KINDS
};

static const char *const err_names[ERR_KINDS] = {
    "socket", "connect", "write", "read", "eof", "mismatch", "unexpected", "stall",
};

enum state {
    S_CONNECTING,   /* connect() in progress */
    S_READY,        /* connected, waiting for the load to start */
    S_ACTIVE,       /* in a round trip */
    S_HOLD,         /* completed its first round trip, idle until the hold ends */
    S_DONE,         /* no more round trips; still open */
    S_FAILED,       /* counted an error; closed */
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t may_read;   /* epoll reported input that has not been drained yet */
    uint32_t sent;      /* bytes of this round written */
    uint32_t recvd;     /* bytes of this round read and verified */
    uint32_t base;      /* this round's byte 0: (c*31 + k*7) & 255 */
    uint64_t rounds;    /* completed round trips */
    uint64_t t0;        /* start of this round, ns */
};

/* Configuration, set by main. */
static long nconns = 10;
static uint64_t max_rounds = 100;
static int rounds_given;
static double duration_s;     /* 0: no -d */
static size_t size = 16;
static long hold_ms;

static struct conn *conns;
static int epfd;
static unsigned char *pattern;   /* pattern[j] = j & 255, SIZE + 256 bytes */
static unsigned char scratch[SCRATCH_SIZE];

/* Progress. */
static long connecting;          /* connections in S_CONNECTING */
static long connected;           /* connections that ever connected */
static long active;              /* connections in S_ACTIVE */
static long held;                /* connections in S_HOLD */
static int hold_done;
static int stopping;             /* -d elapsed: start no more round trips */
static uint64_t deadline_ns;     /* when -d elapses (moved by the hold) */
static uint64_t round_trips;
static long errors;
static long err_count[ERR_KINDS];
static int err_errno[ERR_KINDS];

/* Latency histogram: values below 256 ns exactly, above 256 buckets per
 * power of two. */
#define SUB_BITS 8
#define SUB (1u << SUB_BITS)
#define NBUCKETS ((64 - SUB_BITS + 1) * SUB)
static uint64_t hist[NBUCKETS];

static inline unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);   /* e >= SUB_BITS */
    return (e - SUB_BITS + 1) * SUB + (unsigned)((v >> (e - SUB_BITS)) & (SUB - 1));
}

/* Midpoint of a bucket, ns. */
static double bucket_value(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned e = b / SUB + SUB_BITS - 1;
    uint64_t sub = b % SUB;
    double low = (double)((SUB + sub) << (e - SUB_BITS));
    double width = (double)(1ull << (e - SUB_BITS));
    return low + (width - 1) / 2;
}

/* Nearest-rank percentile in ns. */
static double percentile(uint64_t p)
{
    if (round_trips == 0)
        return 0;
    uint64_t rank = (p * round_trips + 99) / 100;   /* ceil(p% of N), >= 1 */
    uint64_t seen = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank)
            return bucket_value(b);
    }
    return bucket_value(NBUCKETS - 1);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
    else if ((rlim_t)nconns + 16 > rl.rlim_cur)
        fprintf(stderr, "warning: RLIMIT_NOFILE is %llu, too low for %ld connections\n",
                (unsigned long long)rl.rlim_cur, nconns);
}

/* Counts an error on c and closes it. */
static void fail(struct conn *c, enum err_kind kind, int err)
{
    errors++;
    err_count[kind]++;
    if (err != 0)
        err_errno[kind] = err;
    switch (c->state) {
    case S_CONNECTING: connecting--; break;
    case S_ACTIVE: active--; break;
    case S_HOLD: held--; break;
    default: break;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = S_FAILED;
}

/* An idle connection (ready or holding) got an event: anything readable is
 * an error. */
static void check_idle(struct conn *c, uint32_t ev)
{
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(c->fd, scratch, 1, MSG_DONTWAIT | MSG_PEEK);
    if (n >= 0)
        fail(c, ERR_UNEXPECTED, 0);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail(c, ERR_READ, errno);
}

/*
 * Decides what a connection that is not in a round trip does next: hold
 * (after its first round trip, if -H is given and the hold has not happened),
 * stop (-r reached, or -d elapsed), or start round c->rounds at time t.
 * Returns 1 if a round was started (the caller then writes).
 */
static int begin_round(struct conn *c, uint64_t t)
{
    if (hold_ms > 0 && !hold_done && c->rounds == 1) {
        c->state = S_HOLD;
        held++;
        return 0;
    }
    if (stopping || (rounds_given && c->rounds >= max_rounds)) {
        c->state = S_DONE;
        return 0;
    }
    c->state = S_ACTIVE;
    active++;
    c->sent = 0;
    c->recvd = 0;
    c->base = (uint32_t)((uint64_t)(c - conns) * 31u + c->rounds * 7u) & 255u;
    c->t0 = t;
    return 1;
}

/*
 * Moves the round trip of an active connection on: writes what is left of the
 * request, reads and verifies what epoll said is there, completes rounds.
 * Edge-triggered: returns only when the socket cannot take more (EPOLLOUT will
 * follow) and has nothing more to give (EPOLLIN will follow).
 */
static void drive(struct conn *c)
{
    for (;;) {
        if (c->sent < size) {
            size_t want = size - c->sent;
            ssize_t n = write(c->fd, pattern + c->base + c->sent, want);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    fail(c, ERR_WRITE, errno);
                    return;
                }
            } else {
                c->sent += (uint32_t)n;
            }
        }
        /* Read only what the server can have echoed so far. */
        while (c->may_read && c->recvd < c->sent) {
            size_t want = c->sent - c->recvd;
            if (want > SCRATCH_SIZE)
                want = SCRATCH_SIZE;
            ssize_t n = read(c->fd, scratch, want);
            if (n > 0) {
                if (memcmp(scratch, pattern + c->base + c->recvd, (size_t)n) != 0) {
                    fail(c, ERR_MISMATCH, 0);
                    return;
                }
                c->recvd += (uint32_t)n;
                if ((size_t)n < want)
                    c->may_read = 0;   /* receive queue drained */
            } else if (n == 0) {
                fail(c, ERR_EOF, 0);
                return;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->may_read = 0;
            } else if (errno != EINTR) {
                fail(c, ERR_READ, errno);
                return;
            }
        }
        if (c->recvd < size)
            return;   /* a short write raises EPOLLOUT later, new input EPOLLIN */
        /* Round trip complete. Exactly SIZE bytes were asked for, and a
         * correct server has sent nothing more: the queue is empty, and
         * whatever arrives next raises a new edge. */
        uint64_t t = now_ns();
        hist[bucket_of(t - c->t0)]++;
        round_trips++;
        c->rounds++;
        c->may_read = 0;
        active--;
        if (deadline_ns != 0 && !stopping && t >= deadline_ns)
            stopping = 1;
        if (!begin_round(c, t)) {
            if (c->state == S_HOLD)
                check_idle(c, EPOLLIN);   /* e.g. a FIN that came with the echo */
            return;
        }
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    switch (c->state) {
    case S_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            fail(c, ERR_CONNECT, err);
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;   /* not finished yet */
        if (ev & (EPOLLERR | EPOLLHUP)) {
            fail(c, ERR_CONNECT, 0);
            return;
        }
        connecting--;
        connected++;
        c->state = S_READY;
        check_idle(c, ev);
        return;
    }
    case S_ACTIVE:
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            c->may_read = 1;
        drive(c);
        return;
    case S_READY:
    case S_HOLD:
        check_idle(c, ev);
        return;
    default:
        return;   /* done or failed: ignore */
    }
}

/* epoll_wait with a stall guard; dispatches the events. Returns the time
 * after the wait. */
static uint64_t wait_and_dispatch(int timeout_ms, uint64_t *last_progress)
{
    static struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) {
            perror("epoll_wait");
            exit(1);
        }
        n = 0;
    }
    for (int i = 0; i < n; i++)
        on_event(events[i].data.ptr, events[i].events);
    uint64_t t = now_ns();
    if (n > 0) {
        *last_progress = t;
    } else if (t - *last_progress > STALL_NS) {
        for (long i = 0; i < nconns; i++)
            if (conns[i].state == S_CONNECTING || conns[i].state == S_ACTIVE)
                fail(&conns[i], ERR_STALL, 0);
        *last_progress = t;
    }
    return t;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-c CONNS] [-r ROUNDS] [-d SECONDS] [-s SIZE] [-H HOLD_MS] HOST PORT\n",
            prog);
    exit(2);
}

static long parse_num(const char *s, long min, long max, const char *prog)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        usage(prog);
    return v;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:r:d:s:H:")) != -1) {
        switch (opt) {
        case 'c': nconns = parse_num(optarg, 1, 10000000, argv[0]); break;
        case 'r':
            max_rounds = (uint64_t)parse_num(optarg, 1, 2000000000, argv[0]);
            rounds_given = 1;
            break;
        case 'd': {
            char *end;
            duration_s = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(duration_s > 0) || duration_s > 1e6)
                usage(argv[0]);
            break;
        }
        case 's': size = (size_t)parse_num(optarg, 1, MAX_SIZE, argv[0]); break;
        case 'H': hold_ms = parse_num(optarg, 0, 100000000, argv[0]); break;
        default: usage(argv[0]);
        }
    }
    if (argc - optind != 2)
        usage(argv[0]);
    if (duration_s == 0)
        rounds_given = 1;   /* without -d, ROUNDS (default 100) applies */
    const char *host = argv[optind];
    const char *port = argv[optind + 1];

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("signal");
        return 1;
    }
    raise_nofile_limit();

    struct addrinfo hints, *server;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &server);
    if (gai != 0) {
        fprintf(stderr, "getaddrinfo %s %s: %s\n", host, port, gai_strerror(gai));
        return 1;
    }

    pattern = malloc(size + 256);
    conns = calloc((size_t)nconns, sizeof *conns);
    if (pattern == NULL || conns == NULL) {
        perror("malloc");
        return 1;
    }
    for (size_t j = 0; j < size + 256; j++)
        pattern[j] = (unsigned char)j;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("epoll_create1");
        return 1;
    }

    /* Connection phase: every connect() up front, then wait for all. */
    uint64_t t_connect = now_ns();
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->state = S_CONNECTING;
        connecting++;
        c->fd = socket(server->ai_family, server->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       server->ai_protocol);
        if (c->fd < 0) {
            fail(c, ERR_SOCKET, errno);
            continue;
        }
        int one = 1;
        if (server->ai_family == AF_INET || server->ai_family == AF_INET6) {
            if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
                fail(c, ERR_SOCKET, errno);
                continue;
            }
        }
        if (connect(c->fd, server->ai_addr, server->ai_addrlen) != 0 && errno != EINPROGRESS) {
            fail(c, ERR_CONNECT, errno);
            continue;
        }
        /* Connected or in progress: epoll reports EPOLLOUT either way (a
         * registration finds a state that is already there). */
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fail(c, ERR_SOCKET, errno);
            continue;
        }
    }
    freeaddrinfo(server);
    uint64_t last_progress = now_ns();
    while (connecting > 0)
        wait_and_dispatch(1000, &last_progress);
    uint64_t t_start = now_ns();
    fprintf(stderr, "connected %ld of %ld in %.3f s\n", connected, nconns,
            (double)(t_start - t_connect) / 1e9);

    /* Load phase. */
    if (duration_s > 0)
        deadline_ns = t_start + (uint64_t)(duration_s * 1e9);
    uint64_t hold_ns = 0;
    for (long i = 0; i < nconns; i++)
        if (conns[i].state == S_READY && begin_round(&conns[i], now_ns()))
            drive(&conns[i]);
    uint64_t t = now_ns();
    last_progress = t;
    while (active > 0 || (held > 0 && !hold_done)) {
        if (active == 0) {
            /* Every open connection has completed one round trip: hold. */
            fprintf(stderr, "holding %ld\n", held);
            fflush(stderr);
            uint64_t hold_start = now_ns();
            uint64_t hold_end = hold_start + (uint64_t)hold_ms * 1000000u;
            for (t = hold_start; t < hold_end;) {
                int ms = (int)((hold_end - t + 999999) / 1000000);
                t = wait_and_dispatch(ms, &last_progress);
                last_progress = t;   /* idleness is intended here */
            }
            hold_done = 1;
            hold_ns = t - hold_start;
            if (deadline_ns != 0)
                deadline_ns += hold_ns;
            for (long i = 0; i < nconns; i++) {
                if (conns[i].state == S_HOLD) {
                    held--;
                    if (begin_round(&conns[i], now_ns()))
                        drive(&conns[i]);
                }
            }
            continue;
        }
        int timeout = 1000;
        if (deadline_ns != 0 && !stopping) {
            uint64_t now = now_ns();
            if (now >= deadline_ns) {
                stopping = 1;
            } else if (deadline_ns - now < 1000000000u) {
                timeout = (int)((deadline_ns - now + 999999) / 1000000);
            }
        }
        t = wait_and_dispatch(timeout, &last_progress);
        if (deadline_ns != 0 && t >= deadline_ns)
            stopping = 1;
    }
    uint64_t t_end = now_ns();

    for (long i = 0; i < nconns; i++)
        if (conns[i].fd >= 0 && conns[i].state != S_FAILED)
            close(conns[i].fd);

    double seconds = (double)(t_end - t_start - hold_ns) / 1e9;
    printf("conns=%ld size=%zu round_trips=%llu errors=%ld seconds=%.3f rtps=%.0f "
           "p50_us=%.1f p99_us=%.1f\n",
           nconns, size, (unsigned long long)round_trips, errors, seconds,
           seconds > 0 ? (double)round_trips / seconds : 0.0,
           percentile(50) / 1000.0, percentile(99) / 1000.0);
    fflush(stdout);

    for (int k = 0; k < ERR_KINDS; k++) {
        if (err_count[k] == 0)
            continue;
        if (err_errno[k] != 0)
            fprintf(stderr, "error %s: %ld (last: %s)\n", err_names[k], err_count[k],
                    strerror(err_errno[k]));
        else
            fprintf(stderr, "error %s: %ld\n", err_names[k], err_count[k]);
    }
    if (connected < nconns)
        fprintf(stderr, "only %ld of %ld connections connected\n", connected, nconns);
    free(conns);
    free(pattern);
    return (errors == 0 && connected == nconns) ? 0 : 1;
}
