/* A thread wakes another (a condition variable it waits on) and then computes without
 * waiting until the woken thread has run: it spins on a plain flag that only the woken
 * thread sets. Natively both run at once on two OS threads. Greenified with two workers,
 * the woken thread waits to run next on its waker's worker, and must be taken from there
 * by the idle one, even with preemption off (GREENIFY_SLICE_MS=0). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static int waiting, go;
static volatile int done;

static void *sleeper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    waiting = 1;
    while (!go)
        pthread_cond_wait(&go_cond, &lock);
    pthread_mutex_unlock(&lock);
    done = 1;
    return NULL;
}

static void *waker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        int ready = waiting;
        pthread_mutex_unlock(&lock);
        if (ready)
            break;
        usleep(1000);
    }
    /* The sleeper is in its wait: give it time to park there for good. */
    usleep(50000);
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_signal(&go_cond);
    pthread_mutex_unlock(&lock);
    while (!done) {
    }
    return NULL;
}

int main(void)
{
    pthread_t s, w;
    pthread_create(&s, NULL, sleeper, NULL);
    pthread_create(&w, NULL, waker, NULL);
    pthread_join(w, NULL);
    pthread_join(s, NULL);
    printf("the woken thread ran while its waker spun\n");
    return 0;
}
