/*
 * condvar_pingpong: two threads take turns through one mutex and one
 * condition variable; optionally PAIRS such pairs at once, each with its own,
 * and WORK steps of an empty loop per turn (CPU work between hand-offs).
 *
 * A shared "turn" variable says whose turn it is. Thread A waits for turn 0,
 * sets turn 1 and signals; thread B waits for turn 1, sets turn 0 and
 * signals; ROUNDS times each, so every round trip means two hand-offs
 * through the condition variable. Each turn also increments the pair's
 * counter and checks it has the parity of the thread's turn, so a turn taken
 * out of order is detected; each pair's final counter must be 2*ROUNDS.
 * Pairs share nothing: with several, a runtime that runs threads on several
 * CPUs may run them apart, and their wakes cross nothing but the runtime.
 *
 * Usage:  condvar_pingpong ROUNDS [PAIRS [WORK]]
 * Example: ./condvar_pingpong 100000
 *          ./condvar_pingpong 20000 64
 *          ./condvar_pingpong 5000 64 1000   (about 0.6 us of work a turn here)
 * stdout: "rounds=R ok" ("rounds=R pairs=P ok" with PAIRS, "rounds=R pairs=P
 *         work=W ok" with WORK too; "FAILED" instead
 *         of "ok" and exit status 1 on a failed check); stderr: microseconds
 *         per round trip (of all pairs together: elapsed / (PAIRS * ROUNDS)).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pair {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int turn;                        /* 0: A's turn, 1: B's turn; guarded by lock */
    long counter;                    /* turns taken; guarded by lock */
    long out_of_order;               /* guarded by lock */
};

struct player {
    struct pair *pair;
    int me;                          /* 0 = A, 1 = B */
};

static long rounds;
static long work;                    /* empty-loop steps per turn */

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void *play(void *arg)
{
    struct player *player = arg;
    struct pair *p = player->pair;
    int me = player->me;

    for (long r = 0; r < rounds; r++) {
        check(pthread_mutex_lock(&p->lock), "pthread_mutex_lock");
        while (p->turn != me)
            check(pthread_cond_wait(&p->changed, &p->lock), "pthread_cond_wait");
        for (volatile long step = 0; step < work; step++)
            ;
        if (p->counter % 2 != me)
            p->out_of_order++;
        p->counter++;
        p->turn = 1 - me;
        check(pthread_cond_signal(&p->changed), "pthread_cond_signal");
        check(pthread_mutex_unlock(&p->lock), "pthread_mutex_unlock");
    }
    return NULL;
}

static long parse(const char *text, const char *what, long max)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "bad %s: %s\n", what, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s ROUNDS [PAIRS [WORK]]\n", argv[0]);
        return 2;
    }
    rounds = parse(argv[1], "ROUNDS", 1000000000);
    long pairs = argc >= 3 ? parse(argv[2], "PAIRS", 10000) : 1;
    work = argc == 4 ? parse(argv[3], "WORK", 1000000000) : 0;
    if (pairs < 1) {
        fprintf(stderr, "bad PAIRS: %s\n", argv[2]);
        return 2;
    }

    struct pair *all = calloc((size_t)pairs, sizeof *all);
    struct player *players = calloc((size_t)pairs * 2, sizeof *players);
    pthread_t *threads = calloc((size_t)pairs * 2, sizeof *threads);
    if (!all || !players || !threads) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < pairs; i++) {
        check(pthread_mutex_init(&all[i].lock, NULL), "pthread_mutex_init");
        check(pthread_cond_init(&all[i].changed, NULL), "pthread_cond_init");
        /* B first, as a single pair always started */
        for (int me = 1; me >= 0; me--) {
            players[2 * i + me] = (struct player){ &all[i], me };
            check(pthread_create(&threads[2 * i + me], NULL, play, &players[2 * i + me]),
                  "pthread_create");
        }
    }
    for (long i = 0; i < 2 * pairs; i++)
        check(pthread_join(threads[i], NULL), "pthread_join");
    clock_gettime(CLOCK_MONOTONIC, &stop);

    long bad = 0;
    for (long i = 0; i < pairs; i++)
        if (all[i].counter != 2 * rounds || all[i].out_of_order != 0 || all[i].turn != 0) {
            if (bad++ == 0)
                fprintf(stderr, "FAILED: pair %ld: counter=%ld (expected %ld), %ld turns out of order\n",
                        i, all[i].counter, 2 * rounds, all[i].out_of_order);
        }
    if (argc == 4)
        printf("rounds=%ld pairs=%ld work=%ld %s\n", rounds, pairs, work, bad ? "FAILED" : "ok");
    else if (argc == 3)
        printf("rounds=%ld pairs=%ld %s\n", rounds, pairs, bad ? "FAILED" : "ok");
    else
        printf("rounds=%ld %s\n", rounds, bad ? "FAILED" : "ok");
    fflush(stdout);

    double us = (double)(stop.tv_sec - start.tv_sec) * 1e6
                + (double)(stop.tv_nsec - start.tv_nsec) / 1e3;
    double trips = (double)rounds * (double)pairs;
    fprintf(stderr, "%.3f us per round trip\n", trips > 0 ? us / trips : 0.0);
    return bad ? 1 : 0;
}
