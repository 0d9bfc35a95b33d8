/* A producer hands items one at a time to a consumer through a mutex and a condition
 * variable and computes on after each hand-off, as sort --parallel's merging threads and
 * xz -T's reading thread do: for SPIN_US of wall time, after which it notes whether the
 * consumer has taken the item already, and waits until it has. The consumer computes a
 * little on each item (CONSUME_US), then waits for the next.
 *
 * stdout: "items N taken while the producer computed T". Natively, with two CPUs, the
 * consumer takes nearly every item at once. Greenified with two workers, the woken
 * consumer waits to run next on its waker's worker (Go's runnext), where a thread that
 * waits right after waking another takes it up at once; a producer runs on, and its
 * consumer waited there for the monitor's next look (2.5 to 5 ms) on every item. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITEMS 200
#define SPIN_US 2000
#define CONSUME_US 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t produced = PTHREAD_COND_INITIALIZER;
static pthread_cond_t consumed = PTHREAD_COND_INITIALIZER;
static int offered, taken;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Computes for `us` of wall time without a call that could wait. */
static void compute(long long us)
{
    long long until = now_us() + us;
    while (now_us() < until) {
    }
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (offered < i)
            pthread_cond_wait(&produced, &lock);
        taken = i;
        pthread_cond_signal(&consumed);
        pthread_mutex_unlock(&lock);
        compute(CONSUME_US);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, consumer, NULL) != 0)
        return perror("pthread_create"), 1;
    int while_computing = 0;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        offered = i;
        pthread_cond_signal(&produced);
        pthread_mutex_unlock(&lock);
        compute(SPIN_US);
        pthread_mutex_lock(&lock);
        while_computing += taken == i;
        while (taken < i)
            pthread_cond_wait(&consumed, &lock);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(t, NULL);
    printf("items %d taken while the producer computed %d\n", ITEMS, while_computing);
    return 0;
}
