/* Thread stacks against the address-space limit.
 *
 * Usage: stack_limits MODE LIMIT_MIB    (LIMIT_MIB 0: no RLIMIT_AS)
 *   count  creates threads (default attributes) that wait until no more can be created,
 *          then joins them; prints how many and the error that stopped it
 *   burst  the same, then malloc(1 GiB) after the join: is the address space back?
 *   huge   one thread with a 1 TiB stack: the error
 * The limit is set with setrlimit before the first thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_THREADS 100000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int released;
static pthread_t threads[MAX_THREADS];

static void *waiter(void *arg) {
    pthread_mutex_lock(&lock);
    while (!released)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

static void *nothing(void *arg) {
    return arg;
}

static const char *errname(int e) {
    return e == 0 ? "0" : e == EAGAIN ? "EAGAIN" : e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : strerror(e);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    const char *mode = argv[1];
    long limit = atol(argv[2]);
    if (limit > 0) {
        struct rlimit rl = {(rlim_t)limit << 20, (rlim_t)limit << 20};
        if (setrlimit(RLIMIT_AS, &rl) != 0) {
            perror("setrlimit");
            return 1;
        }
    }
    if (strcmp(mode, "huge") == 0) {
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        int e = pthread_attr_setstacksize(&attr, (size_t)1 << 40);
        if (e == 0)
            e = pthread_create(&t, &attr, nothing, NULL);
        if (e == 0)
            pthread_join(t, NULL);
        printf("1 TiB stack: %s\n", errname(e));
        return 0;
    }
    int n = 0, e = 0;
    while (n < MAX_THREADS && (e = pthread_create(&threads[n], NULL, waiter, NULL)) == 0)
        n++;
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    if (strcmp(mode, "count") == 0) {
        printf("threads %d stopped by %s\n", n, errname(e));
        return 0;
    }
    void *p = malloc((size_t)1 << 30);
    printf("after joining a burst of threads (stopped by %s), malloc 1 GiB: %s\n", errname(e),
           p ? "ok" : "failed");
    free(p);
    return 0;
}
