/* hostile_soak_client: a byte-verified soak of an echo server on loopback.
 *
 *   hostile_soak_client PORT SECONDS CONCURRENCY RESET_PERMILLE SEED
 *
 * Keeps CONCURRENCY connections open to 127.0.0.1:PORT for SECONDS, opening a new one each
 * time one ends. Every connection echoes 1..8 messages of 1 B .. 64 KiB (sizes drawn
 * log-uniformly) whose bytes come from the connection's own PRNG stream; it writes them in
 * random pieces and reads the echo in random pieces, checking every byte against a second
 * copy of the stream. A clean connection then shuts its sending side and expects EOF.
 * RESET_PERMILLE of the connections instead abort mid-stream (SO_LINGER {1,0}, close: an
 * RST) at a random byte, and a new connection replaces them like any other.
 *
 * Single-threaded, non-blocking, edge-triggered epoll. Stops by itself after SECONDS (open
 * connections are then closed without being counted). Prints one line:
 *   connections=N verified_bytes=B resets=R errors=E
 * and exits 0 only if no byte differed and no unexpected error (refused connect, reset of a
 * connection that did not abort itself, early EOF) happened; else 1, after printing what went
 * wrong on stderr (at most 20 messages). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 65536
/* How far the writer may run ahead of what came back (the server's own buffers hold it). */
#define WINDOW (2 * MAX_MSG)

static uint64_t mix(uint64_t *s) {
    /* splitmix64: every state gives a good next value, so seeds need no care. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A byte stream: the bytes of successive mix() values. */
struct stream {
    uint64_t state, word;
    int left;
};

static uint8_t next_byte(struct stream *st) {
    if (st->left == 0) {
        st->word = mix(&st->state);
        st->left = 8;
    }
    uint8_t b = (uint8_t)st->word;
    st->word >>= 8;
    st->left--;
    return b;
}

static uint64_t rng; /* the client's own choices (sizes, pieces, resets) */

static uint64_t below(uint64_t n) { return mix(&rng) % n; }

/* 1 .. MAX_MSG, log-uniform: as many tiny messages as huge ones. */
static uint64_t msg_size(void) {
    int bits = (int)below(17); /* 2^0 .. 2^16 */
    uint64_t hi = 1ULL << bits;
    uint64_t lo = hi / 2 + 1;
    uint64_t n = lo + below(hi - lo + 1);
    return n > MAX_MSG ? MAX_MSG : n;
}

struct conn {
    int fd;
    int connected;
    struct stream out, check;
    uint64_t total;     /* bytes this connection echoes */
    uint64_t sent, got; /* written, verified */
    uint64_t reset_at;  /* abort once this many bytes are verified; UINT64_MAX: never */
    int shut;           /* sending side shut */
    int msgs;
    uint32_t gen; /* events of an earlier connection in this slot are stale */
};

static long n_conns, n_resets, n_errors;
static uint64_t n_verified;
static int epfd, port;
static unsigned reset_permille;
static uint8_t wbuf[MAX_MSG], rbuf[MAX_MSG];

static void error(struct conn *c, const char *what, int err) {
    n_errors++;
    if (n_errors <= 20)
        fprintf(stderr, "error: %s: %s (conn fd %d, sent %llu, verified %llu of %llu)\n", what,
                err ? strerror(err) : "-", c->fd, (unsigned long long)c->sent,
                (unsigned long long)c->got, (unsigned long long)c->total);
}

static struct conn *conns;

static int open_conn(struct conn *c) {
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        error(c, "socket", errno);
        return -1;
    }
    uint64_t seed = mix(&rng);
    c->out.state = c->check.state = seed;
    c->msgs = 1 + (int)below(8);
    for (int i = 0; i < c->msgs; i++) c->total += msg_size();
    c->reset_at = below(1000) < reset_permille ? 1 + below(c->total) : UINT64_MAX;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        error(c, "connect", errno);
        close(c->fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)c->gen << 32 | (uint64_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        error(c, "epoll_ctl", errno);
        close(c->fd);
        return -1;
    }
    return 0;
}

/* 0: the connection goes on; 1: it ended (cleanly or by its own reset); -1: error. */
static int step(struct conn *c) {
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            error(c, "connect (async)", err);
            return -1;
        }
        c->connected = 1;
        n_conns++;
    }
    for (;;) {
        int progress = 0;
        if (c->got >= c->reset_at) {
            struct linger l = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            n_resets++;
            return 1;
        }
        /* Write one random piece if the window allows. */
        uint64_t room = c->sent - c->got < WINDOW ? WINDOW - (c->sent - c->got) : 0;
        uint64_t want = c->total - c->sent;
        if (want > room) want = room;
        if (want > 0) {
            uint64_t piece = 1 + below(want < MAX_MSG ? want : MAX_MSG);
            struct stream before = c->out;
            for (uint64_t i = 0; i < piece; i++) wbuf[i] = next_byte(&c->out);
            ssize_t n = send(c->fd, wbuf, piece, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN) {
                    error(c, "send", errno);
                    return -1;
                }
                n = 0;
            }
            if ((uint64_t)n < piece) {
                /* A short write: the stream goes on right after the last byte sent. */
                c->out = before;
                for (ssize_t i = 0; i < n; i++) next_byte(&c->out);
            }
            c->sent += (uint64_t)n;
            progress |= n > 0;
        } else if (c->sent == c->total && c->got == c->total && !c->shut) {
            shutdown(c->fd, SHUT_WR);
            c->shut = 1;
        }
        /* Read one random piece. */
        size_t piece = 1 + below(MAX_MSG);
        ssize_t n = recv(c->fd, rbuf, piece, 0);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) {
                uint8_t want_b = next_byte(&c->check);
                if (rbuf[i] != want_b) {
                    char what[96];
                    snprintf(what, sizeof what, "byte %llu is 0x%02x, not 0x%02x",
                             (unsigned long long)(c->got + (uint64_t)i), rbuf[i], want_b);
                    error(c, what, 0);
                    return -1;
                }
            }
            c->got += (uint64_t)n;
            n_verified += (uint64_t)n;
            if (c->got > c->sent) {
                error(c, "more bytes came back than were sent", 0);
                return -1;
            }
            progress = 1;
        } else if (n == 0) {
            if (c->shut && c->got == c->total) return 1;
            error(c, "early EOF", 0);
            return -1;
        } else if (errno != EAGAIN) {
            error(c, "recv", errno);
            return -1;
        }
        if (!progress) return 0;
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT SECONDS CONCURRENCY RESET_PERMILLE SEED\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    double secs = atof(argv[2]);
    int conc = atoi(argv[3]);
    reset_permille = (unsigned)atoi(argv[4]);
    rng = strtoull(argv[5], NULL, 0);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)conc, sizeof *conns);
    for (int i = 0; i < conc; i++)
        if (open_conn(&conns[i]) != 0) conns[i].fd = -1;
    struct epoll_event evs[256];
    double end = now() + secs;
    while (n_errors == 0 && now() < end) {
        int n = epoll_wait(epfd, evs, 256, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[(uint32_t)evs[i].data.u64];
            if (c->fd < 0 || c->gen != (uint32_t)(evs[i].data.u64 >> 32)) continue;
            int r = step(c);
            if (r != 0) {
                close(c->fd);
                c->fd = -1;
                if (r < 0) break;
                if (open_conn(c) != 0) c->fd = -1;
            }
        }
    }
    for (int i = 0; i < conc; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    printf("connections=%ld verified_bytes=%llu resets=%ld errors=%ld\n", n_conns,
           (unsigned long long)n_verified, n_resets, n_errors);
    return n_errors ? 1 : 0;
}
