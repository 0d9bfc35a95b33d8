/*
 * echo_server: a classic thread-per-connection TCP echo server.
 *
 * Every accepted connection gets its own detached pthread that reads with
 * blocking read() and writes everything back with blocking write() until the
 * peer closes the connection. Given ITERATIONS, each message first costs that
 * many steps of a CPU loop (a dependent multiply-add chain the compiler cannot
 * fold or vectorise: the same work natively and greenified), the shape of a
 * server whose requests cost computation, not only I/O.
 *
 * Usage:  echo_server PORT [ITERATIONS]   (PORT 0 picks an ephemeral port)
 *         echo_server -C MICROS           (calibrate: print how many
 *                                          iterations take MICROS µs of CPU)
 * Serving, it prints "listening on <port>" once ready, then runs until killed.
 * Calibrating, it prints "iterations=N" (N for MICROS µs of this thread's CPU
 * time, the fastest of several measurements) and exits.
 * Try it: ./echo_server 0 & ./load_client -c 200 -r 50 127.0.0.1 <port>
 *         ./echo_server 0 $(./echo_server -C 100 | cut -d= -f2) &
 *         ./epoll_load -c 100 -d 2 127.0.0.1 <port>
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
#include <time.h>
#include <unistd.h>

static long iterations;

/* The CPU work: ITERS steps of a multiply-add chain seeded by the message. The
 * empty asm makes every step depend on the previous one as the compiler sees
 * it, so the loop is neither removed nor vectorised. */
static uint64_t burn(const char *buf, size_t len, long iters)
{
    uint64_t h = 1469598103934665603ull ^ (len ? (unsigned char)buf[0] : 0);

    for (long i = 0; i < iters; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(h));
    }
    return h;
}

static double thread_cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Iterations per MICROS µs of CPU: the fastest of 20 runs of 1,000,000
 * iterations (the least disturbed by other load). */
static long calibrate(long micros)
{
    const long n = 1000000;
    double best = 1e9;

    for (int r = 0; r < 20; r++) {
        double t0 = thread_cpu_seconds();
        volatile uint64_t sink = burn("x", 1, n);
        double t = thread_cpu_seconds() - t0;
        (void)sink;
        if (t > 0 && t < best)
            best = t;
    }
    return (long)((double)n * (double)micros / 1e6 / best + 0.5);
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

static void *handle_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (iterations > 0) {
            volatile uint64_t sink = burn(buf, (size_t)n, iterations);
            (void)sink;
        }
        if (write_all(fd, buf, (size_t)n) != 0)
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-C") == 0) {
        long micros = atol(argv[2]);
        if (micros <= 0) {
            fprintf(stderr, "-C needs a positive number of microseconds\n");
            return 2;
        }
        printf("iterations=%ld\n", calibrate(micros));
        return 0;
    }
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s PORT [ITERATIONS] | %s -C MICROS\n", argv[0], argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    iterations = argc == 3 ? atol(argv[2]) : 0;
    if (iterations < 0) {
        fprintf(stderr, "ITERATIONS must be >= 0\n");
        return 2;
    }

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
