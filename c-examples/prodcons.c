/*
 * prodcons: producers and consumers around a bounded FIFO queue.
 *
 * The queue holds CAPACITY ints and is guarded by one mutex and two
 * condition variables (not_full, not_empty). Producer p pushes the ITEMS
 * values p*ITEMS+0 .. p*ITEMS+ITEMS-1 in order, and after every 1000th push
 * sleeps 100 us (without holding the lock). Consumers pop until all
 * PRODUCERS*ITEMS items have been consumed (a shared count of popped items,
 * kept under the queue mutex).
 *
 * Usage:  prodcons PRODUCERS CONSUMERS ITEMS CAPACITY
 * Example: ./prodcons 4 4 100000 64
 * stdout: "producers=P consumers=C items=N consumed=N sum=S ok" where
 *         N = PRODUCERS*ITEMS (both fields) and S = 0+1+...+(N-1).
 * stderr: the throughput in items/s.
 *
 * Checks: the sum; that every value was consumed exactly once; that the
 * values of each producer came out in the order they were pushed (FIFO).
 * On a failed check stdout says "FAILED" instead of "ok", details go to
 * stderr, and the exit status is 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long producers, consumers, items, capacity;
static long total;                   /* producers * items */

/* The queue, all guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static int *queue;
static long head, count;             /* ring buffer: first index, number of items */
static long popped;                  /* items taken out so far */
static unsigned char *seen;          /* seen[v]: how many times v was consumed */
static long *last_of_producer;       /* last value popped from each producer, -1 if none */
static long order_errors;            /* values of one producer that came out of order */

struct consumer_result {
    long consumed;
    long long sum;
};

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void *producer(void *arg)
{
    long p = (long)(intptr_t)arg;

    for (long i = 0; i < items; i++) {
        int value = (int)(p * items + i);

        check(pthread_mutex_lock(&lock), "pthread_mutex_lock");
        while (count == capacity)
            check(pthread_cond_wait(&not_full, &lock), "pthread_cond_wait");
        queue[(head + count) % capacity] = value;
        count++;
        check(pthread_cond_signal(&not_empty), "pthread_cond_signal");
        check(pthread_mutex_unlock(&lock), "pthread_mutex_unlock");

        if (i % 1000 == 999)
            usleep(100);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    struct consumer_result *res = calloc(1, sizeof *res);
    if (res == NULL) {
        perror("calloc");
        exit(1);
    }

    for (;;) {
        check(pthread_mutex_lock(&lock), "pthread_mutex_lock");
        while (count == 0 && popped < total)
            check(pthread_cond_wait(&not_empty, &lock), "pthread_cond_wait");
        if (count == 0) {
            /* Everything has been consumed. */
            check(pthread_mutex_unlock(&lock), "pthread_mutex_unlock");
            break;
        }
        int value = queue[head];
        head = (head + 1) % capacity;
        count--;
        popped++;
        if (value >= 0 && value < total) {
            long p = value / items;
            if (seen[value] < 255)
                seen[value]++;
            if (value <= last_of_producer[p])
                order_errors++;
            last_of_producer[p] = value;
        }
        if (popped == total)
            check(pthread_cond_broadcast(&not_empty), "pthread_cond_broadcast"); /* wake the others: done */
        check(pthread_cond_signal(&not_full), "pthread_cond_signal");
        check(pthread_mutex_unlock(&lock), "pthread_mutex_unlock");

        res->consumed++;
        res->sum += value;
    }
    return res;
}

static long parse_arg(const char *s, const char *name, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > 1000000000) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PRODUCERS CONSUMERS ITEMS CAPACITY\n", argv[0]);
        return 2;
    }
    producers = parse_arg(argv[1], "PRODUCERS", 1);
    consumers = parse_arg(argv[2], "CONSUMERS", 1);
    items = parse_arg(argv[3], "ITEMS", 0);
    capacity = parse_arg(argv[4], "CAPACITY", 1);
    if (producers * items > 2000000000L) {
        fprintf(stderr, "PRODUCERS*ITEMS must fit in an int\n");
        return 2;
    }
    total = producers * items;

    queue = malloc(sizeof *queue * (size_t)capacity);
    seen = calloc((size_t)(total ? total : 1), 1);
    last_of_producer = malloc(sizeof *last_of_producer * (size_t)producers);
    pthread_t *ptids = malloc(sizeof *ptids * (size_t)producers);
    pthread_t *ctids = malloc(sizeof *ctids * (size_t)consumers);
    if (queue == NULL || seen == NULL || last_of_producer == NULL || ptids == NULL || ctids == NULL) {
        perror("malloc");
        return 1;
    }
    for (long p = 0; p < producers; p++)
        last_of_producer[p] = -1;

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);

    for (long c = 0; c < consumers; c++)
        check(pthread_create(&ctids[c], NULL, consumer, NULL), "pthread_create consumer");
    for (long p = 0; p < producers; p++)
        check(pthread_create(&ptids[p], NULL, producer, (void *)(intptr_t)p), "pthread_create producer");

    for (long p = 0; p < producers; p++)
        check(pthread_join(ptids[p], NULL), "pthread_join producer");
    long consumed = 0;
    long long sum = 0;
    for (long c = 0; c < consumers; c++) {
        void *ret;
        check(pthread_join(ctids[c], &ret), "pthread_join consumer");
        struct consumer_result *res = ret;
        consumed += res->consumed;
        sum += res->sum;
        free(res);
    }
    clock_gettime(CLOCK_MONOTONIC, &stop);

    long long expected_sum = (long long)total * (total - 1) / 2;
    long missing = 0, duplicated = 0;
    for (long v = 0; v < total; v++) {
        if (seen[v] == 0)
            missing++;
        else if (seen[v] > 1)
            duplicated++;
    }
    int ok = consumed == total && sum == expected_sum && missing == 0 && duplicated == 0
             && order_errors == 0 && count == 0;

    printf("producers=%ld consumers=%ld items=%ld consumed=%ld sum=%lld %s\n",
           producers, consumers, total, consumed, sum, ok ? "ok" : "FAILED");
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "%.0f items/s\n", secs > 0 ? (double)total / secs : 0.0);
    if (!ok)
        fprintf(stderr, "expected consumed=%ld sum=%lld; missing=%ld duplicated=%ld "
                "out_of_order=%ld left_in_queue=%ld\n",
                total, expected_sum, missing, duplicated, order_errors, count);

    free(queue);
    free(seen);
    free(last_of_producer);
    free(ptids);
    free(ctids);
    return ok ? 0 : 1;
}
