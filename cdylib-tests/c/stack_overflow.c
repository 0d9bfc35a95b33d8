/* A thread with a 64 KiB stack puts a 65 KiB array on it: the stack overflows by
 * less than a page, into what lies just below it. With the argument "neighbour", a
 * sleeping thread is created first, so the overflowing stack has a neighbour below.
 * The thread overflows only once named: by main ("hog"), or, with the argument
 * "selfnamed", by itself. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static sem_t named;
static int self_named;

static __attribute__((noinline)) long overflow(void) {
    volatile char big[65 * 1024];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = 1;
    usleep(1000);
    return big[100];
}

static void *hog(void *arg) {
    (void)arg;
    if (self_named)
        pthread_setname_np(pthread_self(), "hog");
    else
        sem_wait(&named);
    return (void *)overflow();
}

static void *sleeper(void *arg) {
    (void)arg;
    usleep(300 * 1000);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_attr_t attr;
    pthread_t t, n;
    sem_init(&named, 0, 0);
    self_named = argc > 1 && strcmp(argv[1], "selfnamed") == 0;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (argc > 1 && strcmp(argv[1], "neighbour") == 0)
        pthread_create(&n, &attr, sleeper, NULL);
    pthread_create(&t, &attr, hog, NULL);
    if (!self_named)
        pthread_setname_np(t, "hog");
    sem_post(&named);
    pthread_join(t, NULL);
    printf("survived\n");
    return 0;
}
