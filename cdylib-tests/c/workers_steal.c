/* Ready threads queued on a busy worker run on the idle one: the main thread computes
 * without any call that greenify sees (the clock and the OS thread id are read by raw
 * system calls) until other threads have run. Natively they run on OS threads of their
 * own meanwhile. Greenified with two workers and preemption off, the main thread keeps
 * its worker: a thread queued there runs only if the other worker, idle, is woken and
 * steals it.
 *
 *   spawn  the main thread creates THREADS threads and spins until each has run. New
 *          threads are spread over the workers' queues, half on the main thread's.
 *          stdout: "THREADS threads ran while their creator spun, on other OS threads".
 *   wake   ROUNDS times: a new thread tells the main thread it is about to sleep, sleeps
 *          10 ms, then sets a flag the main thread spins on; its wake queues it on the
 *          worker it ran on (with a monitor: the poller runs it next), which wakes it if
 *          idle, else wakes the other to steal it. stdout: "the sleeper ran while the
 *          main thread spun, ROUNDS rounds"; stderr: in how many rounds it slept from the
 *          main thread's OS thread (its wake then queued it behind the spinner).
 *
 * A spin that lasts LIMIT_S seconds fails the run. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
#define ROUNDS 20
#define LIMIT_S 5

static long raw_syscall2(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static long raw_gettid(void) { return raw_syscall2(SYS_gettid, 0, 0); }

static double raw_now_s(void)
{
    struct timespec t;
    raw_syscall2(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Spins until *flag reaches want, for at most LIMIT_S seconds; says whether it did. */
static int spin_until(volatile int *flag, int want)
{
    double until = raw_now_s() + LIMIT_S;
    for (unsigned long i = 0;; i++) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want)
            return 1;
        if (i % 4096 == 0 && raw_now_s() > until)
            return 0;
    }
}

static volatile int ran;
static long ran_on[THREADS];

static void *spawned(void *arg)
{
    ran_on[(long)arg] = raw_gettid();
    __atomic_fetch_add(&ran, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int spawn_case(void)
{
    pthread_t t[THREADS];
    long me = raw_gettid();
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, spawned, (void *)i) != 0)
            return perror("pthread_create"), 1;
    if (!spin_until(&ran, THREADS)) {
        printf("only %d of %d threads ran while their creator spun\n", ran, THREADS);
        return 1;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (ran_on[i] == me) {
            printf("a thread ran on its creator's OS thread while it spun\n");
            return 1;
        }
    printf("%d threads ran while their creator spun, on other OS threads\n", THREADS);
    return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t told = PTHREAD_COND_INITIALIZER;
static int about_to_sleep;
static volatile int woke;
static long slept_on;

static void *sleeper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    about_to_sleep = 1;
    pthread_cond_signal(&told);
    pthread_mutex_unlock(&lock);
    slept_on = raw_gettid();
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, NULL);
    __atomic_store_n(&woke, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int wake_case(void)
{
    int same = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t;
        about_to_sleep = 0;
        woke = 0;
        if (pthread_create(&t, NULL, sleeper, NULL) != 0)
            return perror("pthread_create"), 1;
        pthread_mutex_lock(&lock);
        while (!about_to_sleep)
            pthread_cond_wait(&told, &lock);
        pthread_mutex_unlock(&lock);
        long me = raw_gettid();
        if (!spin_until(&woke, 1)) {
            printf("round %d: the sleeper did not run while the main thread spun\n", round);
            return 1;
        }
        pthread_join(t, NULL);
        same += slept_on == me;
    }
    printf("the sleeper ran while the main thread spun, %d rounds\n", ROUNDS);
    fprintf(stderr, "it slept from the main thread's OS thread in %d rounds\n", same);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "spawn") == 0)
        return spawn_case();
    if (argc == 2 && strcmp(argv[1], "wake") == 0)
        return wake_case();
    fprintf(stderr, "usage: %s spawn|wake\n", argv[0]);
    return 2;
}
