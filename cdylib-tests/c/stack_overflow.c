/* A thread with a 64 KiB stack puts a 65 KiB array on it: the stack overflows by
 * less than a page, into what lies just below it. With the argument "neighbour", a
 * sleeping thread is created first, so the overflowing stack has a neighbour below. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *hog(void *arg) {
    (void)arg;
    volatile char big[65 * 1024];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = 1;
    usleep(1000);
    return (void *)(long)big[100];
}

static void *sleeper(void *arg) {
    (void)arg;
    usleep(300 * 1000);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_attr_t attr;
    pthread_t t, n;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (argc > 1 && strcmp(argv[1], "neighbour") == 0)
        pthread_create(&n, &attr, sleeper, NULL);
    pthread_create(&t, &attr, hog, NULL);
    pthread_setname_np(t, "hog");
    pthread_join(t, NULL);
    printf("survived\n");
    return 0;
}
