/* A preloaded library whose constructor makes threads and sleeps before greenify has
 * been asked anything (hooks can run before any constructor of greenify's). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *worker(void *arg) { usleep(10000); return arg; }

__attribute__((constructor)) static void early(void) {
    pthread_t t;
    void *r = NULL;
    usleep(1000);
    pthread_create(&t, NULL, worker, (void *)5);
    pthread_join(t, &r);
    printf("early constructor: joined %ld\n", (long)r);
    fflush(stdout);
}
