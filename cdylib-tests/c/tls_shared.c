/* A __thread variable, set by each thread before it sleeps and read after. Natively each
 * thread sees its own value; greenified too, unless GREENIFY_TLS=off makes every green
 * thread share the OS thread's TLS (then a thread sees the value of the last one that
 * wrote). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static __thread long mine;

static void *worker(void *arg) {
    mine = (long)arg;
    usleep(20 * 1000);
    return (void *)(long)(mine == (long)arg);
}

int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    long own = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        own += (long)r;
    }
    printf("threads that kept their own __thread value: %ld/4\n", own);
    return 0;
}
