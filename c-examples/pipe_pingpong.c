/*
 * pipe_pingpong: two threads bounce a counter through two pipes.
 *
 * Thread A writes an int to pipe 1; thread B reads it, adds 1 and writes it
 * to pipe 2; thread A reads it back and adds 1. This is repeated ROUNDS times
 * with plain blocking read()/write(), so every round trip means two thread
 * switches. The final counter is 2*ROUNDS.
 *
 * Usage:  pipe_pingpong ROUNDS
 * Example: ./pipe_pingpong 100000
 * stdout: "rounds=R final=F"; stderr: microseconds per round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rounds;
static int ping[2];   /* pipe 1: A -> B */
static int pong[2];   /* pipe 2: B -> A */

/* Returns 0, or -1 with errno set (0 on early EOF). */
static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == 0) {
            errno = 0;
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Returns 0, or -1 with errno set. */
static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fail(const char *who, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", who, what, errno ? strerror(errno) : "unexpected end of file");
    exit(1);
}

/* Thread B: read, add 1, write back. */
static void *thread_b(void *arg)
{
    (void)arg;
    for (long r = 0; r < rounds; r++) {
        int value;
        if (read_full(ping[0], &value, sizeof value) != 0)
            fail("B", "read");
        value++;
        if (write_full(pong[1], &value, sizeof value) != 0)
            fail("B", "write");
    }
    return NULL;
}

/* Thread A: write, read back, add 1. Returns the final counter. */
static void *thread_a(void *arg)
{
    int *counter = arg;
    for (long r = 0; r < rounds; r++) {
        if (write_full(ping[1], counter, sizeof *counter) != 0)
            fail("A", "write");
        if (read_full(pong[0], counter, sizeof *counter) != 0)
            fail("A", "read");
        (*counter)++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ROUNDS\n", argv[0]);
        return 2;
    }
    char *end;
    rounds = strtol(argv[1], &end, 10);
    if (argv[1][0] == '\0' || *end != '\0' || rounds < 0 || rounds > 1000000000) {
        fprintf(stderr, "bad ROUNDS: %s\n", argv[1]);
        return 2;
    }

    if (pipe(ping) != 0 || pipe(pong) != 0) {
        perror("pipe");
        return 1;
    }

    int counter = 0;
    pthread_t a, b;
    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);

    int rc = pthread_create(&b, NULL, thread_b, NULL);
    if (rc != 0) {
        fprintf(stderr, "pthread_create B: %s\n", strerror(rc));
        return 1;
    }
    rc = pthread_create(&a, NULL, thread_a, &counter);
    if (rc != 0) {
        fprintf(stderr, "pthread_create A: %s\n", strerror(rc));
        return 1;
    }
    if ((rc = pthread_join(a, NULL)) != 0 || (rc = pthread_join(b, NULL)) != 0) {
        fprintf(stderr, "pthread_join: %s\n", strerror(rc));
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &stop);

    double us = (double)(stop.tv_sec - start.tv_sec) * 1e6
                + (double)(stop.tv_nsec - start.tv_nsec) / 1e3;
    printf("rounds=%ld final=%d\n", rounds, counter);
    fflush(stdout);
    fprintf(stderr, "%.2f us per round trip\n", rounds > 0 ? us / (double)rounds : 0.0);
    return 0;
}
