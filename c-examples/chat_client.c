/*
 * chat_client: load generator and checker for chat_server.
 *
 * CLIENTS threads each open one connection. When all are connected (a
 * pthread_barrier), each sends LINES lines "client <i> line <j>\n"
 * (i = 0..CLIENTS-1, j = 0..LINES-1) with usleep(1000) between lines, while
 * a second thread per connection reads what the server broadcasts until it
 * has received all CLIENTS*LINES lines, checking that it got each line
 * exactly once (and nothing unexpected).
 *
 * Joining: connect() can return before the server has accepted the
 * connection and put it on its broadcast list, so "connected" is not enough
 * to be sure to receive everybody's lines. Therefore, before the barrier,
 * client i sends "join <i>\n" and waits until the server broadcasts that
 * line back to it: from then on it is on the server's list. "join" lines
 * (its own and the other clients') are otherwise ignored and not counted.
 * A read that gets no data for 30 s (SO_RCVTIMEO) counts as an error, so a
 * lost line makes the run fail instead of hang.
 *
 * Usage:  chat_client HOST PORT CLIENTS LINES
 * Example: ./chat_server 0 &  ./chat_client 127.0.0.1 <port> 20 10
 * stdout: "clients=C lines=L received=C*L each ok"; received= is the
 *         smallest number of distinct lines any client received, so on
 *         failure it may be lower, and the last word is "FAILED".
 * stderr: elapsed time, plus the errors seen. Exit status 0 iff every
 * client received every line exactly once.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define READ_TIMEOUT_S 30

static long n_clients, n_lines;
static struct addrinfo *server;
static pthread_barrier_t all_joined;

/* Guarded by setup_lock. */
static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static long setup_failures;          /* clients that could not connect or join */

/* One connection. The buffer belongs to the connection thread until the
 * reader thread is started, then to the reader thread. */
struct conn {
    long me;
    int fd;
    char buf[4096];
    size_t have;
    unsigned char *seen;             /* seen[i*LINES+j]: times "client i line j" arrived */
    long received;                   /* distinct data lines received */
    long errors;
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

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

/* Write all len bytes. Returns 0 or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read the next line (without its '\n', NUL-terminated) into line[].
 * Returns 0, or -1 on error / end of file (reported on stderr). */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl != NULL) {
            size_t len = (size_t)(nl - c->buf);
            size_t copy = len < size - 1 ? len : size - 1;
            memcpy(line, c->buf, copy);
            line[copy] = '\0';
            memmove(c->buf, nl + 1, c->have - len - 1);
            c->have -= len + 1;
            return 0;
        }
        if (c->have == sizeof c->buf) {
            fprintf(stderr, "client %ld: line too long\n", c->me);
            return -1;
        }
        ssize_t n = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
        if (n == 0) {
            fprintf(stderr, "client %ld: connection closed by the server\n", c->me);
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                fprintf(stderr, "client %ld: nothing received for %d s (have %ld of %ld lines)\n",
                        c->me, READ_TIMEOUT_S, c->received, n_clients * n_lines);
            else
                fprintf(stderr, "client %ld: read: %s\n", c->me, strerror(errno));
            return -1;
        }
        c->have += (size_t)n;
    }
}

/* Reader thread: receive until every client's every line has arrived. */
static void *reader(void *arg)
{
    struct conn *c = arg;
    long want = n_clients * n_lines;
    char line[256];

    while (c->received < want) {
        if (read_line(c, line, sizeof line) != 0) {
            c->errors++;
            break;
        }
        long i, j, k;
        int end = -1;
        if (sscanf(line, "join %ld%n", &k, &end) == 1 && line[end] == '\0')
            continue;                   /* somebody joined: not a data line */
        end = -1;
        if (sscanf(line, "client %ld line %ld%n", &i, &j, &end) != 2 || line[end] != '\0'
            || i < 0 || i >= n_clients || j < 0 || j >= n_lines) {
            fprintf(stderr, "client %ld: unexpected line: %s\n", c->me, line);
            c->errors++;
            continue;
        }
        if (c->seen[i * n_lines + j]++ == 0) {
            c->received++;
        } else {
            fprintf(stderr, "client %ld: duplicate line: %s\n", c->me, line);
            c->errors++;
        }
    }
    return NULL;
}

/* Connect and join. Returns 0, or -1 (reported on stderr). */
static int setup(struct conn *c)
{
    c->fd = socket(server->ai_family, server->ai_socktype, server->ai_protocol);
    if (c->fd < 0) {
        fprintf(stderr, "client %ld: socket: %s\n", c->me, strerror(errno));
        return -1;
    }
    if (connect(c->fd, server->ai_addr, server->ai_addrlen) != 0) {
        fprintf(stderr, "client %ld: connect: %s\n", c->me, strerror(errno));
        return -1;
    }
    struct timeval tv = { READ_TIMEOUT_S, 0 };
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        fprintf(stderr, "client %ld: setsockopt SO_RCVTIMEO: %s\n", c->me, strerror(errno));
        return -1;
    }

    char msg[64], want[64], line[256];
    int len = snprintf(msg, sizeof msg, "join %ld\n", c->me);
    snprintf(want, sizeof want, "join %ld", c->me);
    if (write_all(c->fd, msg, (size_t)len) != 0) {
        fprintf(stderr, "client %ld: write: %s\n", c->me, strerror(errno));
        return -1;
    }
    /* Until our own join line comes back, only other join lines can arrive. */
    for (;;) {
        if (read_line(c, line, sizeof line) != 0)
            return -1;
        if (strcmp(line, want) == 0)
            return 0;
        if (strncmp(line, "join ", 5) != 0) {
            fprintf(stderr, "client %ld: unexpected line before start: %s\n", c->me, line);
            return -1;
        }
    }
}

static void *client(void *arg)
{
    struct conn *c = arg;

    c->fd = -1;
    int failed = setup(c) != 0;
    if (failed) {
        check(pthread_mutex_lock(&setup_lock), "pthread_mutex_lock");
        setup_failures++;
        check(pthread_mutex_unlock(&setup_lock), "pthread_mutex_unlock");
    }

    /* Wait until every client has joined (or failed to). */
    int rc = pthread_barrier_wait(&all_joined);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
        check(rc, "pthread_barrier_wait");
    check(pthread_mutex_lock(&setup_lock), "pthread_mutex_lock");
    long failures = setup_failures;
    check(pthread_mutex_unlock(&setup_lock), "pthread_mutex_unlock");
    if (failures > 0) {
        c->errors++;                    /* someone could not join: nobody starts */
        if (c->fd >= 0)
            close(c->fd);
        return NULL;
    }

    pthread_t rtid;
    rc = pthread_create(&rtid, NULL, reader, c);
    if (rc != 0) {
        fprintf(stderr, "client %ld: pthread_create reader: %s\n", c->me, strerror(rc));
        c->errors++;
        close(c->fd);
        return NULL;
    }

    for (long j = 0; j < n_lines; j++) {
        char msg[64];
        int len = snprintf(msg, sizeof msg, "client %ld line %ld\n", c->me, j);
        if (write_all(c->fd, msg, (size_t)len) != 0) {
            fprintf(stderr, "client %ld: write: %s\n", c->me, strerror(errno));
            c->errors++;
            shutdown(c->fd, SHUT_RDWR);     /* make the reader give up */
            break;
        }
        if (j + 1 < n_lines)
            usleep(1000);
    }
    check(pthread_join(rtid, NULL), "pthread_join reader");
    close(c->fd);
    return NULL;
}

static long parse_arg(const char *s, const char *name, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT CLIENTS LINES\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    const char *port = argv[2];
    n_clients = parse_arg(argv[3], "CLIENTS", 1, 100000);
    n_lines = parse_arg(argv[4], "LINES", 0, 1000000);
    if (n_clients * n_lines > 100000000L) {
        fprintf(stderr, "CLIENTS*LINES must be at most 100000000\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();

    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &server);
    if (gai != 0) {
        fprintf(stderr, "getaddrinfo %s %s: %s\n", host, port, gai_strerror(gai));
        return 1;
    }

    struct conn *conns = calloc((size_t)n_clients, sizeof *conns);
    pthread_t *tids = malloc(sizeof *tids * (size_t)n_clients);
    if (conns == NULL || tids == NULL) {
        perror("malloc");
        return 1;
    }
    long all_lines = n_clients * n_lines;
    for (long i = 0; i < n_clients; i++) {
        conns[i].me = i;
        conns[i].seen = calloc((size_t)(all_lines > 0 ? all_lines : 1), 1);
        if (conns[i].seen == NULL) {
            perror("malloc");
            return 1;
        }
    }
    check(pthread_barrier_init(&all_joined, NULL, (unsigned)n_clients), "pthread_barrier_init");

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n_clients; i++)
        check(pthread_create(&tids[i], NULL, client, &conns[i]), "pthread_create");
    for (long i = 0; i < n_clients; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    long min_received = n_clients * n_lines, errors = 0;
    for (long i = 0; i < n_clients; i++) {
        if (conns[i].received < min_received)
            min_received = conns[i].received;
        errors += conns[i].errors;
        free(conns[i].seen);
    }
    int ok = errors == 0 && min_received == n_clients * n_lines;

    printf("clients=%ld lines=%ld received=%ld each %s\n",
           n_clients, n_lines, min_received, ok ? "ok" : "FAILED");
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "elapsed %.3f s\n", secs);
    if (!ok)
        fprintf(stderr, "FAILED: %ld errors\n", errors);

    check(pthread_barrier_destroy(&all_joined), "pthread_barrier_destroy");
    freeaddrinfo(server);
    free(conns);
    free(tids);
    return ok ? 0 : 1;
}
