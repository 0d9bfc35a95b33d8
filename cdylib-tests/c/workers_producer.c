/* A producer hands items one at a time to a consumer through a mutex and a condition
 * variable and computes on after each hand-off, as sort --parallel's merging threads and
 * xz -T's reading thread do: for SPIN_US of wall time, after which it waits until the
 * consumer has taken the item. The consumer notes how long after the offer it took each
 * item, computes a little on it (CONSUME_US), then waits for the next.
 *
 * stdout: "items N taken within 1 ms T". Natively, with two CPUs, the consumer takes
 * nearly every item at once. Greenified with two workers, the woken consumer waits to
 * run next on its waker's worker (Go's runnext), where a thread that waits right after
 * waking another takes it up at once; a producer runs on, and its consumer waited there
 * for the monitor's next look (2.5 to 5 ms) on every item. SPIN_US is longer than two
 * looks, so that the monitor sees the producer run on at its first item. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITEMS 200
#define SPIN_US 6000
#define CONSUME_US 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t produced = PTHREAD_COND_INITIALIZER;
static pthread_cond_t consumed = PTHREAD_COND_INITIALIZER;
static int offered, taken, taken_soon;
static long long offered_at;

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
        taken_soon += now_us() - offered_at < 1000;
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
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        offered = i;
        offered_at = now_us();
        pthread_cond_signal(&produced);
        pthread_mutex_unlock(&lock);
        compute(SPIN_US);
        pthread_mutex_lock(&lock);
        while (taken < i)
            pthread_cond_wait(&consumed, &lock);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(t, NULL);
    printf("items %d taken within 1 ms %d\n", ITEMS, taken_soon);
    return 0;
}
