/* Signals kept pending for a green thread that blocks them, beyond what sig_sent_blocked.c
 * covers: many at once (greenify's records held 32 instances of every thread and signal),
 * one kept while a handler blocks it and that handler leaves by siglongjmp, and a
 * thread timer's signal with no handler (the default action). */
#include "case.h"
#include <semaphore.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>

KILL_IF_HUNG_AFTER(20);

static sigset_t set;
static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void one_signal_set(int sig) {
    sigemptyset(&set);
    sigaddset(&set, sig);
}

/* 1,000 instances of a real-time signal queued to a thread that blocks it (it computes
 * meanwhile, on another worker than the sender's, which computes while it takes them):
 * sigpending shows it, and sigtimedwait takes every one, in the order queued, with its
 * value. */
#define RT_QUEUED 1000
static sem_t ready, go;
static volatile int queued_all, taken_all;

static void *take_queued(void *arg) {
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sem_post(&ready);
    while (!queued_all) {
    }
    sigset_t pending;
    sigpending(&pending);
    int in_order = 0, last = -1;
    for (int i = 0; i < RT_QUEUED; i++) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        struct timespec second = { 1, 0 };
        if (sigtimedwait(&set, &info, &second) != SIGRTMIN) break;
        in_order += info.si_value.sival_int == last + 1;
        last = info.si_value.sival_int;
    }
    taken_all = 1;
    printf("pending before: %d, taken in order: %d, last value %d\n",
           sigismember(&pending, SIGRTMIN), in_order, last);
    return arg;
}

CASE(thousand_rt_signals_queued_to_a_blocking_thread_are_all_taken_in_order) {
    one_signal_set(SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sem_init(&ready, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, take_queued, NULL);
    sem_wait(&ready);
    msleep(5);
    int failed = 0;
    for (int i = 0; i < RT_QUEUED; i++)
        failed += pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = i }) != 0;
    printf("queue failures: %d\n", failed);
    queued_all = 1;
    /* The sender computes while the target takes them. */
    double start = now_ms();
    while (!taken_all && now_ms() - start < 1500) {
    }
    pthread_join(t, NULL);
    sigset_t pending;
    sigpending(&pending);
    printf("pending in main after: %d\n", sigismember(&pending, SIGRTMIN));
}

/* SIGUSR1 sent to each of 64 threads that block it while all wait on a semaphore: each
 * sees it pending and its sigwait takes it. */
#define THREADS 64
static atomic_int pending_seen, taken;

static void *take_one(void *arg) {
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sem_post(&ready);
    sem_wait(&go);
    sigset_t pending;
    sigpending(&pending);
    pending_seen += sigismember(&pending, SIGUSR1);
    siginfo_t info;
    struct timespec second = { 1, 0 };
    taken += sigtimedwait(&set, &info, &second) == SIGUSR1;
    return arg;
}

CASE(standard_signal_sent_to_each_of_64_blocking_threads_reaches_each) {
    one_signal_set(SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sem_init(&ready, 0, 0);
    sem_init(&go, 0, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, take_one, NULL);
    for (int i = 0; i < THREADS; i++) sem_wait(&ready);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) failed += pthread_kill(t[i], SIGUSR1) != 0;
    for (int i = 0; i < THREADS; i++) sem_post(&go);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    sigset_t pending;
    sigpending(&pending);
    printf("kill failures %d, pending seen %d, taken %d, pending in main after %d\n", failed,
           (int)pending_seen, (int)taken, sigismember(&pending, SIGUSR1));
}

/* A handler of SIGUSR2 that blocks SIGUSR1 (its sa_mask) sends its own thread SIGUSR1,
 * which stays pending, and leaves by siglongjmp to a mask that accepts it: SIGUSR1's
 * handler runs as the jump restores that mask, before sigsetjmp returns again. */
static sigjmp_buf jump;

static void on_usr2_jump(int sig) {
    (void)sig;
    pthread_kill(pthread_self(), SIGUSR1);
    siglongjmp(jump, 1);
}

static void jump_out_of_a_handler(void) {
    handled = 0;
    if (sigsetjmp(jump, 1) == 0) {
        pthread_kill(pthread_self(), SIGUSR2);
        printf("not jumped\n");
        return;
    }
    int after_jump = handled;
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    printf("after the jump: handled %d, SIGUSR1 blocked %d; after a mask call: handled %d\n",
           after_jump, sigismember(&mask, SIGUSR1), (int)handled);
}

static void *jump_in_a_thread(void *arg) {
    jump_out_of_a_handler();
    return arg;
}

CASE(signal_kept_while_a_handler_blocks_it_runs_as_siglongjmp_leaves_the_handler) {
    set_handler(SIGUSR1, on_usr1, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2_jump;
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaction(SIGUSR2, &sa, NULL);
    jump_out_of_a_handler();
    pthread_t t;
    pthread_create(&t, NULL, jump_in_a_thread, NULL);
    pthread_join(t, NULL);
}

/* A timer that signals a thread by its id (SIGEV_THREAD_ID) with SIGUSR1, which has no
 * handler and which the target blocks: the target's sigtimedwait takes it, whichever
 * worker the timer's creator and the target run on. The target computes while the timer
 * fires, the creator while the target waits. First while every thread blocks SIGUSR1
 * (greenified with 2 workers, it stayed pending on the creator's OS thread: the target's
 * wait timed out), then while the creator accepts it (greenified, its default action
 * ended the process, with 1 worker too). */
static volatile pid_t target_tid;
static volatile int started, fired, done;

static void *timer_target(void *arg) {
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    target_tid = (pid_t)syscall(SYS_gettid);
    started = 1;
    while (!fired) {
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    struct timespec second = { 1, 0 };
    int sig = sigtimedwait(&set, &info, &second);
    done = 1;
    printf("sigtimedwait: %d si_code=%d\n", sig, info.si_code);
    return arg;
}

static void timer_at_computing_thread(void) {
    started = fired = done = 0;
    pthread_t t;
    pthread_create(&t, NULL, timer_target, NULL);
    while (!started) {
    }
    timer_t timer = signal_thread_in_2ms(target_tid, SIGUSR1);
    fired = 1;
    double start = now_ms();
    while (!done && now_ms() - start < 1500) {
    }
    pthread_join(t, NULL);
    timer_delete(timer);
    sigset_t pending;
    sigpending(&pending);
    printf("pending in main after: %d\n", sigismember(&pending, SIGUSR1));
}

CASE(thread_timer_signal_with_the_default_action_to_a_blocking_thread_reaches_its_sigwait) {
    one_signal_set(SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < 3; i++) timer_at_computing_thread();
    /* The same with a handler (greenified with 2 workers, it waited on the creator's OS
     * thread too). */
    set_handler(SIGUSR1, on_usr1, 0);
    for (int i = 0; i < 3; i++) timer_at_computing_thread();
    printf("handled %d\n", (int)handled);
    signal(SIGUSR1, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    timer_at_computing_thread();
}
