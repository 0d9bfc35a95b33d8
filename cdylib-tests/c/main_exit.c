/* main() calls pthread_exit: the process lives until the last thread ends, runs its
 * atexit handlers and exits with status 0. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void bye(void) { printf("atexit handler ran\n"); fflush(stdout); }

static void *worker(void *arg) {
    long i = (long)arg;
    usleep((useconds_t)(50 + 30 * i) * 1000);
    printf("worker %ld done\n", i);
    fflush(stdout);
    return NULL;
}

int main(void) {
    atexit(bye);
    for (long i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, (void *)i);
        pthread_detach(t);
    }
    printf("main exits first\n");
    fflush(stdout);
    pthread_exit(NULL);
}
