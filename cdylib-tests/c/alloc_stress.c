/* Threads that allocate, free and touch memory while taking a mutex and a condition
 * variable and creating threads now and then: run with another allocator preloaded after
 * greenify (jemalloc, tcmalloc, mimalloc), which calls hooked functions from inside
 * itself (pthread_mutex_lock, pthread_once, nanosleep, sched_yield). Prints a checksum
 * that does not depend on the order the threads ran in. Usage: alloc_stress [ITERATIONS] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 32
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long total, children;
static int iterations = 100000;

static void *child(void *arg) { return strdup(arg); }

static void *run(void *arg) {
    unsigned s = (unsigned)(long)arg * 2654435761u;
    void *keep[64] = {0};
    long sum = 0;
    for (int i = 0; i < iterations; i++) {
        s = s * 1103515245 + 12345;
        int k = s % 64;
        free(keep[k]);
        size_t n = 1 + (s >> 8) % (i % 100 == 0 ? 200000 : 2000);
        keep[k] = malloc(n);
        memset(keep[k], i, n);
        sum += ((char *)keep[k])[n / 2];
        if (i % 5000 == 0) {
            pthread_mutex_lock(&m);
            total += sum;
            pthread_cond_broadcast(&c);
            pthread_mutex_unlock(&m);
            usleep(100);
        }
        if (i % 20000 == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, child, "x") == 0) {
                void *r;
                pthread_join(t, &r);
                pthread_mutex_lock(&m);
                children += r && strcmp(r, "x") == 0;
                pthread_mutex_unlock(&m);
                free(r);
            }
        }
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) iterations = atoi(argv[1]);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, run, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("done: checksum %ld, children %ld\n", total, children);
    return 0;
}
