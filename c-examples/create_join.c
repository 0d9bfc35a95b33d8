/*
 * create_join: the cost of a thread's whole life, one after another.
 *
 * Creates N threads strictly one after another: each is joined before the
 * next is created. Thread i returns its argument i, and main checks that
 * pthread_join gives back exactly i. Measures (CLOCK_MONOTONIC) the whole
 * loop and prints the cost of one create + join pair.
 *
 * Usage:  create_join N
 * Build:  gcc -O2 -Wall -Wextra -Werror -pthread -o create_join create_join.c
 * Example: ./create_join 100000
 * stdout: "create_join n=N ns_per_pair=X" (X an integer).
 * Exit status 0 iff every create and join succeeded and every value matched;
 * otherwise the failure is reported on stderr and the exit status is 1
 * (nothing on stdout).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *identity(void *arg)
{
    return arg;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    char *end;
    long n = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || n < 1 || n > 1000000000L) {
        fprintf(stderr, "usage: %s N   (N >= 1)\n", argv[0]);
        return 2;
    }

    uint64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_t tid;
        int rc = pthread_create(&tid, NULL, identity, (void *)(intptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "pthread_create #%ld: %s\n", i, strerror(rc));
            return 1;
        }
        void *ret;
        rc = pthread_join(tid, &ret);
        if (rc != 0) {
            fprintf(stderr, "pthread_join #%ld: %s\n", i, strerror(rc));
            return 1;
        }
        if ((intptr_t)ret != (intptr_t)i) {
            fprintf(stderr, "thread #%ld returned %ld\n", i, (long)(intptr_t)ret);
            return 1;
        }
    }
    uint64_t elapsed = now_ns() - start;

    printf("create_join n=%ld ns_per_pair=%llu\n", n,
           (unsigned long long)((elapsed + (uint64_t)n / 2) / (uint64_t)n));
    return 0;
}
