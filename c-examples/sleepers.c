/*
 * sleepers: many threads that do nothing but sleep.
 *
 * Thread i performs SLEEPS sleeps of MS milliseconds; sleep k uses, by
 * (i + k) % 4: nanosleep, usleep, clock_nanosleep (relative) and
 * clock_nanosleep (TIMER_ABSTIME). Natively, the run takes about SLEEPS*MS ms
 * whatever THREADS is, as long as the threads can be created.
 *
 * Usage:  sleepers THREADS SLEEPS MS
 *         SLEEPERS_SMALL_STACK=1 sleepers ...   (64 KiB thread stacks)
 * Example: ./sleepers 1000 5 20
 * stdout: "threads=T sleeps=S ms=M done"; stderr: elapsed time.
 *
 * Choice where the spec leaves room: a sleep interrupted by a signal (EINTR)
 * is simply not resumed; any other failure of a sleep call is reported on
 * stderr and makes the exit status 1 (stdout is unchanged).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int sleeps;
static long ms;

/* Returns 0, or an error number. */
static int sleep_once(int how)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    int rc;

    switch (how) {
    case 0:
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return errno;
        return 0;
    case 1:
        if (usleep((useconds_t)(ms * 1000)) != 0 && errno != EINTR)
            return errno;
        return 0;
    case 2:
        rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        return rc == EINTR ? 0 : rc;
    default: {
        struct timespec until;
        if (clock_gettime(CLOCK_MONOTONIC, &until) != 0)
            return errno;
        until.tv_sec += ts.tv_sec;
        until.tv_nsec += ts.tv_nsec;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
        return rc == EINTR ? 0 : rc;
    }
    }
}

static const char *const sleep_names[4] = {
    "nanosleep", "usleep", "clock_nanosleep", "clock_nanosleep(TIMER_ABSTIME)",
};

/* Returns NULL on success, a non-NULL pointer if some sleep failed. */
static void *sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    void *ret = NULL;

    for (int k = 0; k < sleeps; k++) {
        int how = (i + k) % 4;
        int err = sleep_once(how);
        if (err != 0) {
            fprintf(stderr, "thread %d: %s: %s\n", i, sleep_names[how], strerror(err));
            ret = (void *)1;
        }
    }
    return ret;
}

static long parse_num(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000) {
        fprintf(stderr, "bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s THREADS SLEEPS MS\n", argv[0]);
        return 2;
    }
    int threads = (int)parse_num(argv[1], "THREADS");
    sleeps = (int)parse_num(argv[2], "SLEEPS");
    ms = parse_num(argv[3], "MS");

    pthread_attr_t attr;
    pthread_attr_t *attrp = NULL;
    const char *small = getenv("SLEEPERS_SMALL_STACK");
    if (small != NULL && strcmp(small, "1") == 0) {
        int rc = pthread_attr_init(&attr);
        if (rc == 0)
            rc = pthread_attr_setstacksize(&attr, 64 * 1024);
        if (rc != 0) {
            fprintf(stderr, "pthread_attr: %s\n", strerror(rc));
            return 1;
        }
        attrp = &attr;
    }

    pthread_t *tids = malloc(sizeof *tids * (size_t)(threads ? threads : 1));
    if (tids == NULL) {
        perror("malloc");
        return 1;
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);

    int created = 0;
    int failed = 0;
    for (; created < threads; created++) {
        int rc = pthread_create(&tids[created], attrp, sleeper, (void *)(intptr_t)created);
        if (rc != 0) {
            fprintf(stderr, "pthread_create failed at thread %d: %s\n", created, strerror(rc));
            failed = 1;
            break;
        }
    }

    for (int i = 0; i < created; i++) {
        void *ret;
        int rc = pthread_join(tids[i], &ret);
        if (rc != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(rc));
            failed = 1;
        } else if (ret != NULL) {
            failed = 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    free(tids);
    if (attrp != NULL)
        pthread_attr_destroy(attrp);

    if (created < threads)
        return 1;

    printf("threads=%d sleeps=%d ms=%ld done\n", threads, sleeps, ms);
    fprintf(stderr, "elapsed %.3f s\n",
            (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
    return failed ? 1 : 0;
}
