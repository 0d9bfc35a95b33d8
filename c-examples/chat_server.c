/*
 * chat_server: a thread-per-client chat server that broadcasts every line
 * to every connected client while holding one global mutex.
 *
 * Listens on 127.0.0.1:PORT. Each accepted connection gets a detached
 * pthread, which adds the client to a global list (guarded by one mutex),
 * then reads lines with blocking read(). For every complete line it locks
 * the list mutex and writes the line (with its '\n') to EVERY client in the
 * list, the sender included, with blocking write() calls made inside the
 * critical section, then unlocks. On end of file or a read error the thread
 * removes its client from the list (under the mutex), then closes it. A
 * failed write to some client during a broadcast is ignored: that client's
 * own thread notices the disconnection and removes it. A line longer than
 * the 4 KiB buffer is sent in 4 KiB pieces; an unterminated last line is
 * dropped.
 *
 * Usage:  chat_server PORT        (PORT 0 picks an ephemeral port)
 * Prints "listening on <port>" once ready, then runs until killed.
 * Try it: ./chat_server 0 & ./chat_client 127.0.0.1 <port> 20 10
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct client {
    int fd;
    struct client *prev, *next;
};

/* The connected clients, guarded by list_lock. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct client *clients;

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

/* Send one line to every connected client, holding the list lock throughout. */
static void broadcast(const char *line, size_t len)
{
    check(pthread_mutex_lock(&list_lock), "pthread_mutex_lock");
    for (struct client *c = clients; c != NULL; c = c->next)
        (void)write_all(c->fd, line, len);    /* errors: see the top comment */
    check(pthread_mutex_unlock(&list_lock), "pthread_mutex_unlock");
}

static void *handle_client(void *arg)
{
    struct client *me = arg;
    char buf[4096];
    size_t have = 0;

    check(pthread_mutex_lock(&list_lock), "pthread_mutex_lock");
    me->prev = NULL;
    me->next = clients;
    if (clients != NULL)
        clients->prev = me;
    clients = me;
    check(pthread_mutex_unlock(&list_lock), "pthread_mutex_unlock");

    for (;;) {
        ssize_t n = read(me->fd, buf + have, sizeof buf - have);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        have += (size_t)n;

        /* Broadcast every complete line; keep the incomplete rest. */
        size_t start = 0;
        char *nl;
        while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start)) + 1;
            broadcast(buf + start, len);
            start += len;
        }
        if (start == 0 && have == sizeof buf) {
            broadcast(buf, have);       /* over-long line: pass it on in pieces */
            start = have;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }

    check(pthread_mutex_lock(&list_lock), "pthread_mutex_lock");
    if (me->prev != NULL)
        me->prev->next = me->next;
    else
        clients = me->next;
    if (me->next != NULL)
        me->next->prev = me->prev;
    check(pthread_mutex_unlock(&list_lock), "pthread_mutex_unlock");

    close(me->fd);
    free(me);
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
    check(pthread_attr_init(&attr), "pthread_attr_init");
    check(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), "pthread_attr_setdetachstate");

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
        struct client *c = malloc(sizeof *c);
        if (c == NULL) {
            perror("malloc");
            close(cfd);
            continue;
        }
        c->fd = cfd;
        pthread_t tid;
        int err = pthread_create(&tid, &attr, handle_client, c);
        if (err != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            close(cfd);
            free(c);
        }
    }
}
