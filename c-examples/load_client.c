/*
 * load_client: a thread-per-connection load generator for echo_server and
 * http_server.
 *
 * One pthread per connection; each thread connects with a blocking
 * connect(), optionally sleeps HOLD_MS so that all connections are open at
 * the same time, then does ROUNDS blocking request/response round trips and
 * verifies every answer. Threads report their counts through their return
 * value (no shared mutable state).
 *
 * Usage:  load_client [-m echo|http] [-c CONNS] [-r ROUNDS] [-s SIZE] [-H HOLD_MS] HOST PORT
 *         defaults: -m echo -c 10 -r 100 -s 16 -H 0
 * Example: ./load_client -c 200 -r 50 127.0.0.1 <port>
 *          ./load_client -m http -c 200 -r 50 127.0.0.1 <port>
 *
 * stdout: "mode=echo conns=C rounds=R size=S ok=N errors=E"
 * stderr: elapsed time and rate, plus one line per kind of error seen.
 * Exit status 0 iff there were no errors and every thread was created.
 *
 * Choices where the spec leaves room:
 *  - A thread stops at its first error (the connection is then in an unknown
 *    state), so each failing connection counts exactly one error and its
 *    remaining rounds are neither ok nor errors.
 *  - If pthread_create fails, no further threads are created; the ones
 *    already running are joined and the exit status is 1.
 *  - HOST may be a name or an address (getaddrinfo); the first result is used.
 *  - -s is ignored in http mode (it is still printed).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum err_kind {
    ERR_SOCKET,     /* socket() failed */
    ERR_CONNECT,    /* connect() failed */
    ERR_WRITE,      /* write() failed */
    ERR_READ,       /* read() failed */
    ERR_EOF,        /* peer closed the connection too early */
    ERR_MISMATCH,   /* echoed bytes or http body differ from what was expected */
    ERR_STATUS,     /* http status other than 200 */
    ERR_PROTOCOL,   /* malformed http response */
    ERR_NOMEM,      /* malloc failed */
    ERR_KINDS
};

static const char *const err_names[ERR_KINDS] = {
    "socket", "connect", "write", "read", "eof", "mismatch", "status", "protocol", "nomem",
};

struct result {
    long ok;                      /* verified round trips */
    long errors;                  /* total errors */
    long count[ERR_KINDS];        /* errors per kind */
    int last_errno[ERR_KINDS];    /* errno of the last error of that kind, 0 if none */
};

/* Configuration: written by main before any thread starts, read-only after. */
static int http_mode;
static int rounds = 100;
static size_t size = 16;
static int hold_ms;
static const char *host;
static struct addrinfo *server;

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

static void add_error(struct result *res, enum err_kind kind, int err)
{
    res->errors++;
    res->count[kind]++;
    res->last_errno[kind] = err;
}

/* Write all len bytes. Returns 0, or an error kind. */
static int write_all(int fd, const void *buf, size_t len, int *err)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            return ERR_WRITE;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes. Returns 0, or an error kind. */
static int read_full(int fd, void *buf, size_t len, int *err)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == 0)
            return ERR_EOF;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            return ERR_READ;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One echo round trip. Returns 0, or an error kind. */
static int echo_round(int fd, long thread, int round, unsigned char *out,
                      unsigned char *in, int *err)
{
    for (size_t i = 0; i < size; i++)
        out[i] = (unsigned char)(thread * 31 + round * 7 + (long)i);

    int rc = write_all(fd, out, size, err);
    if (rc == 0)
        rc = read_full(fd, in, size, err);
    if (rc == 0 && memcmp(out, in, size) != 0)
        rc = ERR_MISMATCH;
    return rc;
}

/* Per-connection state for http mode. */
struct http_conn {
    char buf[8192];       /* bytes received but not consumed yet */
    size_t len;
    char *first_body;     /* the first body this thread received */
    size_t first_len;
    char *body;           /* the current body */
    size_t body_cap;
};

/* One http round trip. Returns 0, or an error kind. */
static int http_round(int fd, struct http_conn *c, const char *request, int *err)
{
    int rc = write_all(fd, request, strlen(request), err);
    if (rc != 0)
        return rc;

    /* Read until the end of the response head. */
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (c->len == sizeof c->buf)
            return ERR_PROTOCOL;
        ssize_t n = read(fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n == 0)
            return ERR_EOF;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            return ERR_READ;
        }
        c->len += (size_t)n;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char head[sizeof c->buf + 1];
    memcpy(head, c->buf, head_len);
    head[head_len] = '\0';
    memmove(c->buf, c->buf + head_len, c->len - head_len);
    c->len -= head_len;

    /* Status line and Content-Length. */
    int status;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return ERR_PROTOCOL;
    long content_length = -1;
    for (char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtol(line + 15, NULL, 10);
    }
    if (content_length < 0)
        return ERR_PROTOCOL;

    /* Body: first what is already buffered, then the rest from the socket. */
    size_t blen = (size_t)content_length;
    if (blen > c->body_cap) {
        char *nb = realloc(c->body, blen);
        if (nb == NULL)
            return ERR_NOMEM;
        c->body = nb;
        c->body_cap = blen;
    }
    size_t have = c->len < blen ? c->len : blen;
    memcpy(c->body, c->buf, have);
    memmove(c->buf, c->buf + have, c->len - have);
    c->len -= have;
    rc = read_full(fd, c->body + have, blen - have, err);
    if (rc != 0)
        return rc;

    if (status != 200)
        return ERR_STATUS;
    if (c->first_body == NULL) {
        c->first_body = malloc(blen ? blen : 1);
        if (c->first_body == NULL)
            return ERR_NOMEM;
        memcpy(c->first_body, c->body, blen);
        c->first_len = blen;
    } else if (blen != c->first_len || memcmp(c->body, c->first_body, blen) != 0) {
        return ERR_MISMATCH;
    }
    return 0;
}

static void *client_thread(void *arg)
{
    long thread = (long)(intptr_t)arg;
    struct result *res = calloc(1, sizeof *res);
    if (res == NULL)
        return NULL;

    int err = 0;
    int fd = socket(server->ai_family, server->ai_socktype, server->ai_protocol);
    if (fd < 0) {
        add_error(res, ERR_SOCKET, errno);
        return res;
    }
    if (connect(fd, server->ai_addr, server->ai_addrlen) != 0) {
        add_error(res, ERR_CONNECT, errno);
        close(fd);
        return res;
    }
    if (hold_ms > 0)
        usleep((useconds_t)hold_ms * 1000);

    if (http_mode) {
        struct http_conn *c = calloc(1, sizeof *c);
        char request[1024];
        snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host);
        if (c == NULL) {
            add_error(res, ERR_NOMEM, 0);
        } else {
            for (int r = 0; r < rounds; r++) {
                int rc = http_round(fd, c, request, &err);
                if (rc != 0) {
                    add_error(res, rc, err);
                    break;
                }
                res->ok++;
            }
            free(c->first_body);
            free(c->body);
            free(c);
        }
    } else {
        unsigned char *out = malloc(size ? size : 1);
        unsigned char *in = malloc(size ? size : 1);
        if (out == NULL || in == NULL) {
            add_error(res, ERR_NOMEM, 0);
        } else {
            for (int r = 0; r < rounds; r++) {
                int rc = echo_round(fd, thread, r, out, in, &err);
                if (rc != 0) {
                    add_error(res, rc, err);
                    break;
                }
                res->ok++;
            }
        }
        free(out);
        free(in);
    }
    close(fd);
    return res;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-m echo|http] [-c CONNS] [-r ROUNDS] [-s SIZE] [-H HOLD_MS] HOST PORT\n",
            prog);
    exit(2);
}

static long parse_num(const char *s, const char *prog)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000000)
        usage(prog);
    return v;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long conns = 10;
    int opt;

    while ((opt = getopt(argc, argv, "m:c:r:s:H:")) != -1) {
        switch (opt) {
        case 'm':
            if (strcmp(optarg, "echo") == 0)
                http_mode = 0;
            else if (strcmp(optarg, "http") == 0)
                http_mode = 1;
            else
                usage(argv[0]);
            break;
        case 'c': conns = parse_num(optarg, argv[0]); break;
        case 'r': rounds = (int)parse_num(optarg, argv[0]); break;
        case 's': size = (size_t)parse_num(optarg, argv[0]); break;
        case 'H': hold_ms = (int)parse_num(optarg, argv[0]); break;
        default: usage(argv[0]);
        }
    }
    if (argc - optind != 2)
        usage(argv[0]);
    host = argv[optind];
    const char *port = argv[optind + 1];

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

    pthread_t *tids = malloc(sizeof *tids * (size_t)(conns ? conns : 1));
    if (tids == NULL) {
        perror("malloc");
        return 1;
    }

    double start = now_seconds();
    long created = 0;
    for (; created < conns; created++) {
        int rc = pthread_create(&tids[created], NULL, client_thread, (void *)(intptr_t)created);
        if (rc != 0) {
            fprintf(stderr, "pthread_create failed at thread %ld: %s\n", created, strerror(rc));
            break;
        }
    }

    struct result total;
    memset(&total, 0, sizeof total);
    long lost_results = 0;
    for (long i = 0; i < created; i++) {
        void *ret;
        int rc = pthread_join(tids[i], &ret);
        if (rc != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(rc));
            lost_results++;
            continue;
        }
        struct result *res = ret;
        if (res == NULL) {
            lost_results++;
            continue;
        }
        total.ok += res->ok;
        total.errors += res->errors;
        for (int k = 0; k < ERR_KINDS; k++) {
            total.count[k] += res->count[k];
            if (res->last_errno[k] != 0)
                total.last_errno[k] = res->last_errno[k];
        }
        free(res);
    }
    double elapsed = now_seconds() - start;
    total.errors += lost_results;

    printf("mode=%s conns=%ld rounds=%d size=%zu ok=%ld errors=%ld\n",
           http_mode ? "http" : "echo", conns, rounds, size, total.ok, total.errors);
    fflush(stdout);

    fprintf(stderr, "elapsed %.3f s, %.0f round trips/s\n",
            elapsed, elapsed > 0 ? (double)total.ok / elapsed : 0.0);
    for (int k = 0; k < ERR_KINDS; k++) {
        if (total.count[k] == 0)
            continue;
        if (total.last_errno[k] != 0)
            fprintf(stderr, "error %s: %ld (last: %s)\n",
                    err_names[k], total.count[k], strerror(total.last_errno[k]));
        else
            fprintf(stderr, "error %s: %ld\n", err_names[k], total.count[k]);
    }
    if (lost_results > 0)
        fprintf(stderr, "error thread result: %ld\n", lost_results);
    if (created < conns)
        fprintf(stderr, "only %ld of %ld threads were created\n", created, conns);

    freeaddrinfo(server);
    free(tids);
    return (total.errors == 0 && created == conns) ? 0 : 1;
}
