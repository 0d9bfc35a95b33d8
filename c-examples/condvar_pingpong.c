/*
 * condvar_pingpong: two threads take turns through one mutex and one
 * condition variable.
 *
 * A shared "turn" variable says whose turn it is. Thread A waits for turn 0,
 * sets turn 1 and signals; thread B waits for turn 1, sets turn 0 and
 * signals; ROUNDS times each, so every round trip means two hand-offs
 * through the condition variable. Each turn also increments a shared
 * counter and checks it has the parity of the thread's turn, so a turn taken
 * out of order is detected; the final counter must be 2*ROUNDS.
 *
 * Usage:  condvar_pingpong ROUNDS
 * Example: ./condvar_pingpong 100000
 * stdout: "rounds=R ok" ("rounds=R FAILED" and exit status 1 on a failed
 *         check); stderr: microseconds per round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rounds;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int turn;                     /* 0: A's turn, 1: B's turn; guarded by lock */
static long counter;                 /* turns taken; guarded by lock */
static long out_of_order;            /* guarded by lock */

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void *player(void *arg)
{
    int me = (int)(intptr_t)arg;     /* 0 = A, 1 = B */

    for (long r = 0; r < rounds; r++) {
        check(pthread_mutex_lock(&lock), "pthread_mutex_lock");
        while (turn != me)
            check(pthread_cond_wait(&changed, &lock), "pthread_cond_wait");
        if (counter % 2 != me)
            out_of_order++;
        counter++;
        turn = 1 - me;
        check(pthread_cond_signal(&changed), "pthread_cond_signal");
        check(pthread_mutex_unlock(&lock), "pthread_mutex_unlock");
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

    pthread_t a, b;
    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    check(pthread_create(&b, NULL, player, (void *)(intptr_t)1), "pthread_create B");
    check(pthread_create(&a, NULL, player, (void *)(intptr_t)0), "pthread_create A");
    check(pthread_join(a, NULL), "pthread_join A");
    check(pthread_join(b, NULL), "pthread_join B");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    int ok = counter == 2 * rounds && out_of_order == 0 && turn == 0;
    printf("rounds=%ld %s\n", rounds, ok ? "ok" : "FAILED");
    fflush(stdout);

    double us = (double)(stop.tv_sec - start.tv_sec) * 1e6
                + (double)(stop.tv_nsec - start.tv_nsec) / 1e3;
    fprintf(stderr, "%.3f us per round trip\n", rounds > 0 ? us / (double)rounds : 0.0);
    if (!ok)
        fprintf(stderr, "FAILED: counter=%ld (expected %ld), %ld turns out of order\n",
                counter, 2 * rounds, out_of_order);
    return ok ? 0 : 1;
}
