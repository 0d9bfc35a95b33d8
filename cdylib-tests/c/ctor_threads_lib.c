/* A library whose constructor computes with two threads and joins them, as OpenBLAS starts
 * its threads when numpy loads it: inside dlopen, with glibc's loader lock held. */
#include <pthread.h>

static long sums[2];
long ctor_threads_total;

static void *sum_part(void *arg) {
    long part = (long)arg;
    for (long i = part; i < 2000000; i += 2) sums[part] += i % 7;
    return NULL;
}

__attribute__((constructor)) static void start_threads(void) {
    pthread_t t[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, sum_part, (void *)i);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    ctor_threads_total = sums[0] + sums[1];
}
