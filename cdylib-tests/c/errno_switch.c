/* errno belongs to each thread: it survives other threads running in between. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *worker(void *arg) {
    long i = (long)arg;
    int bad = close(1000 + (int)i); /* EBADF */
    int saved = errno;
    usleep(20 * 1000);  /* other threads run and fail differently meanwhile */
    sched_yield();
    return (void *)(long)(bad == -1 && errno == saved && saved == EBADF);
}

static void *other(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) {
        errno = 0;
        usleep(1000);
        if (errno != 0) return (void *)0L;
        errno = EINVAL;
        sched_yield();
        if (errno != EINVAL) return (void *)0L;
    }
    return (void *)1L;
}

int main(void) {
    pthread_t t[20];
    for (long i = 0; i < 20; i++)
        pthread_create(&t[i], NULL, i % 2 ? worker : other, (void *)i);
    errno = ENOENT;
    usleep(5000);
    int main_ok = errno == ENOENT;
    long ok = 0;
    for (int i = 0; i < 20; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (long)r;
    }
    printf("threads with intact errno: %ld/20, main intact: %d\n", ok, main_ok);
    return 0;
}
