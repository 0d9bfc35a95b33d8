/*
 * http_server: a tiny thread-per-connection HTTP/1.1 server with keep-alive.
 *
 * Every accepted connection gets its own detached pthread that reads request
 * heads with blocking read() and answers them with blocking write().
 * GET / returns a fixed HTML page, any other request gets 404 Not Found.
 * Pipelined requests are handled: bytes after a request head stay in the
 * buffer for the next request.
 *
 * Usage:  http_server PORT        (PORT 0 picks an ephemeral port)
 * Prints "listening on <port>" once ready, then runs until killed.
 * Try it: ./http_server 0 & ./load_client -m http -c 200 -r 50 127.0.0.1 <port>
 *         curl -v http://127.0.0.1:<port>/
 *
 * Choices where the spec leaves room:
 *  - Only "GET /" is 200; every other method or path gets 404.
 *  - Connections are kept alive unless the request says "Connection: close",
 *    or it is an HTTP/1.0 request without "Connection: keep-alive" (so that
 *    HTTP/1.0 clients such as ab without -k work). Closing responses carry a
 *    "Connection: close" header.
 *  - A request head that does not fit in 8 KiB, or a malformed request line,
 *    gets "400 Bad Request" and the connection is closed.
 *  - Request bodies are not expected (GET) and are not skipped.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html>\n"
    "<head><title>greenify demo</title></head>\n"
    "<body>\n"
    "<h1>Hello from http_server</h1>\n"
    "<p>This page was served by a plain thread-per-connection C server.\n"
    "Every connection has its own pthread that blocks in read() and write().\n"
    "Run it under greenify and the same threads become green threads.</p>\n"
    "</body>\n"
    "</html>\n";

static const char not_found[] = "404 Not Found\n";
static const char bad_request[] = "400 Bad Request\n";

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

/* Write all len bytes, looping on short writes. Returns 0 or -1. */
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

static int send_response(int fd, const char *status, const char *type,
                         const char *body, size_t body_len, int closing)
{
    char out[512 + sizeof page];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "\r\n",
                     status, type, body_len, closing ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n + body_len > sizeof out)
        return -1;
    memcpy(out + n, body, body_len);
    return write_all(fd, out, (size_t)n + body_len);
}

/*
 * Look at the header lines of a NUL-terminated request head and return the
 * value of the Connection header: 1 for "close", 2 for "keep-alive", 0 if
 * absent or anything else.
 */
static int connection_header(const char *head)
{
    const char *line = strstr(head, "\r\n");

    while (line != NULL && line[2] != '\0') {
        line += 2;
        if (strncasecmp(line, "Connection:", 11) == 0) {
            const char *v = line + 11;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                return 1;
            if (strncasecmp(v, "keep-alive", 10) == 0)
                return 2;
        }
        line = strstr(line, "\r\n");
    }
    return 0;
}

/* Answer one request head. Returns 1 to keep the connection, 0 to close it. */
static int handle_request(int fd, const char *head)
{
    char method[16], path[1024], version[16];

    if (sscanf(head, "%15s %1023s %15s", method, path, version) != 3
        || strncmp(version, "HTTP/1.", 7) != 0) {
        send_response(fd, "400 Bad Request", "text/plain",
                      bad_request, sizeof bad_request - 1, 1);
        return 0;
    }

    int conn = connection_header(head);
    int closing = conn == 1 || (strcmp(version, "HTTP/1.0") == 0 && conn != 2);
    int rc;

    if (strcmp(method, "GET") == 0 && strcmp(path, "/") == 0)
        rc = send_response(fd, "200 OK", "text/html", page, sizeof page - 1, closing);
    else
        rc = send_response(fd, "404 Not Found", "text/plain",
                           not_found, sizeof not_found - 1, closing);
    return rc == 0 && !closing;
}

static void *handle_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[HEAD_MAX];
    char head[HEAD_MAX + 1];
    size_t len = 0;

    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);

        if (end == NULL) {
            if (len == sizeof buf) {
                send_response(fd, "400 Bad Request", "text/plain",
                              bad_request, sizeof bad_request - 1, 1);
                break;
            }
            ssize_t n = read(fd, buf + len, sizeof buf - len);
            if (n == 0)
                break;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            len += (size_t)n;
            continue;
        }

        /* One complete request head: copy it out, keep what follows. */
        size_t head_len = (size_t)(end - buf) + 4;
        memcpy(head, buf, head_len);
        head[head_len] = '\0';
        memmove(buf, buf + head_len, len - head_len);
        len -= head_len;

        if (!handle_request(fd, head))
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);

    signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        perror("setsockopt SO_REUSEADDR");
        return 1;
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    if (listen(lfd, SOMAXCONN) != 0) {
        perror("listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("getsockname");
        return 1;
    }
    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED)
                continue;
            fprintf(stderr, "accept: %s\n", strerror(e));
            if (e == EMFILE || e == ENFILE) {
                sleep(1);   /* out of descriptors: back off and retry */
                continue;
            }
            return 1;
        }
        pthread_t tid;
        int err = pthread_create(&tid, &attr, handle_client, (void *)(intptr_t)cfd);
        if (err != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            close(cfd);
        }
    }
}
