/* A signal a thread sends another (pthread_kill, pthread_sigqueue) that the target blocks
 * stays pending for the target, whatever OS thread each runs on: its sigwait family takes
 * it (with its siginfo), sigpending shows it, and unblocking it runs its handler in the
 * target. pbzip2's shape: every thread blocks SIGUSR1, a terminator thread waits for it
 * in sigwait, and main pthread_kills it at the end, then joins it. The target computes
 * while the signal is sent, so with 2 workers the sender runs on another OS thread
 * (greenified, the signal was left pending on the sender's OS thread, where the target's
 * sigwait never saw it). */
#include "case.h"
#include <signal.h>

KILL_IF_HUNG_AFTER(20);

static volatile int started, sent;
static sigset_t usr1;
static volatile pthread_t handled_in;
static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled_in = pthread_self();
    handled++;
}

/* Spins until the sender says it sent (the target computes meanwhile, on its worker). */
static void compute_until_sent(void) {
    started = 1;
    while (!sent) {
    }
}

/* Starts `body` in a thread, sends it what `send` sends once it computes, joins it. */
static void send_to_computing(void *(*body)(void *), void (*send)(pthread_t)) {
    pthread_t t;
    started = sent = 0;
    pthread_create(&t, NULL, body, NULL);
    while (!started) {
    }
    msleep(5);
    send(t);
    sent = 1;
    pthread_join(t, NULL);
}

static void kill_usr1(pthread_t t) { SHOWRC("pthread_kill", pthread_kill(t, SIGUSR1)); }

static void usr1_set(void) {
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
}

/* Takes `times` signals of `usr1` with sigwait, printing each. */
static void sigwait_times(int times) {
    for (int i = 0; i < times; i++) {
        int sig = 0;
        int rc = sigwait(&usr1, &sig);
        printf("sigwait: %s sig=%d\n", en(rc), sig);
    }
}

static void *sigwait_after_computing(void *arg) {
    compute_until_sent();
    sigwait_times(1);
    return arg;
}

/* The sender blocks SIGUSR1 too (every thread does, as pbzip2's). */
CASE(pthread_kill_that_every_thread_blocks_reaches_the_targets_sigwait) {
    usr1_set();
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    for (int i = 0; i < 3; i++) send_to_computing(sigwait_after_computing, kill_usr1);
    sigset_t pending;
    sigpending(&pending);
    printf("pending in main after: %d\n", sigismember(&pending, SIGUSR1));
}

static void *block_then_sigwait(void *arg) {
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    return sigwait_after_computing(arg);
}

/* The sender accepts SIGUSR1 (it has a handler), the target blocks it: the handler never
 * runs, the target's sigwait takes it. */
CASE(pthread_kill_from_a_thread_that_accepts_it_reaches_the_targets_sigwait) {
    usr1_set();
    set_handler(SIGUSR1, on_usr1, 0);
    for (int i = 0; i < 3; i++) send_to_computing(block_then_sigwait, kill_usr1);
    printf("handler ran: %d\n", (int)handled);
}

static void *sigwaitinfo_after_computing(void *arg) {
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    compute_until_sent();
    sigset_t pending;
    sigpending(&pending);
    printf("pending before the wait: %d\n", sigismember(&pending, SIGUSR1));
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int sig = sigwaitinfo(&usr1, &info);
    printf("sigwaitinfo: %d si_signo=%d si_code=%d own pid %d own uid %d si_value=%d\n", sig,
           info.si_signo, info.si_code, info.si_pid == getpid(), info.si_uid == getuid(),
           info.si_code == SI_QUEUE ? info.si_value.sival_int : -1);
    sigpending(&pending);
    printf("pending after: %d\n", sigismember(&pending, SIGUSR1));
    return arg;
}

static void queue_usr1(pthread_t t) {
    SHOWRC("pthread_sigqueue", pthread_sigqueue(t, SIGUSR1, (union sigval){ .sival_int = 42 }));
}

/* sigpending shows it in the target before its wait, sigwaitinfo gives its siginfo (glibc
 * shows a tkill's SI_TKILL as SI_USER), from either sender's mask. */
CASE(pthread_kill_to_a_blocking_thread_shows_in_sigpending_and_siginfo) {
    usr1_set();
    send_to_computing(sigwaitinfo_after_computing, kill_usr1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(sigwaitinfo_after_computing, kill_usr1);
}

CASE(pthread_sigqueue_to_a_blocking_thread_gives_its_value_to_sigwaitinfo) {
    usr1_set();
    send_to_computing(sigwaitinfo_after_computing, queue_usr1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(sigwaitinfo_after_computing, queue_usr1);
}

static void *unblock_after_computing(void *arg) {
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    compute_until_sent();
    handled_in = 0;
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    printf("after unblocking: handled %d, in the target %d\n", (int)handled,
           pthread_equal(handled_in, pthread_self()));
    return arg;
}

/* Unblocking it in the target runs its handler there, before pthread_sigmask returns. */
CASE(pthread_kill_to_a_blocking_thread_runs_its_handler_when_it_unblocks) {
    usr1_set();
    set_handler(SIGUSR1, on_usr1, 0);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(unblock_after_computing, kill_usr1);
}

/* Two signals sent while the target computes: sigwait takes the lower first. */
static void kill_term_then_usr1(pthread_t t) {
    SHOWRC("pthread_kill SIGTERM", pthread_kill(t, SIGTERM));
    SHOWRC("pthread_kill SIGUSR1", pthread_kill(t, SIGUSR1));
}

static void *sigwait_twice_after_computing(void *arg) {
    compute_until_sent();
    sigwait_times(2);
    return arg;
}

CASE(two_signals_to_a_blocking_thread_are_taken_lowest_first) {
    usr1_set();
    sigaddset(&usr1, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(sigwait_twice_after_computing, kill_term_then_usr1);
}

/* The target waits in sigwait already when the signal comes (it is woken); what it took
 * is shown after the join. */
static int waited_rc, waited_sig;

static void *sigwait_at_once(void *arg) {
    started = 1;
    waited_sig = 0;
    waited_rc = sigwait(&usr1, &waited_sig);
    return arg;
}

CASE(pthread_kill_wakes_the_targets_sigwait) {
    usr1_set();
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    for (int i = 0; i < 3; i++) {
        send_to_computing(sigwait_at_once, kill_usr1);
        printf("sigwait: %s sig=%d\n", en(waited_rc), waited_sig);
    }
}

/* Real-time signals queue: two instances sent to a blocking target are both taken, in
 * the order sent, with their values. */
static void queue_rt_pair(pthread_t t) {
    SHOWRC("pthread_sigqueue 1", pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 1 }));
    SHOWRC("pthread_sigqueue 2", pthread_sigqueue(t, SIGRTMIN, (union sigval){ .sival_int = 2 }));
}

static void *sigwaitinfo_twice_after_computing(void *arg) {
    compute_until_sent();
    for (int i = 0; i < 2; i++) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        int sig = sigwaitinfo(&usr1, &info);
        printf("sigwaitinfo: SIGRTMIN+%d si_code=%d si_value=%d\n", sig - SIGRTMIN, info.si_code,
               info.si_value.sival_int);
    }
    return arg;
}

CASE(pthread_sigqueue_rt_pair_to_a_blocking_thread_is_taken_in_order) {
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(sigwaitinfo_twice_after_computing, queue_rt_pair);
}

static volatile int rt_values[4], rt_seen;

static void on_rt(int sig, siginfo_t *info, void *context) {
    (void)sig, (void)context;
    if (rt_seen < 4) rt_values[rt_seen] = info->si_value.sival_int;
    rt_seen++;
}

static void *unblock_rt_after_computing(void *arg) {
    compute_until_sent();
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    printf("after unblocking: handlers ran %d, values %d %d\n", (int)rt_seen, rt_values[0],
           rt_values[1]);
    return arg;
}

/* Unblocking them runs the handler for each instance, in order. */
CASE(pthread_sigqueue_rt_pair_to_a_blocking_thread_runs_in_order_when_it_unblocks) {
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGRTMIN);
    set_info_handler(SIGRTMIN, on_rt, 0);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    send_to_computing(unblock_rt_after_computing, queue_rt_pair);
}

/* A timer that signals the target by its thread id (SIGEV_THREAD_ID) while the target
 * blocks the signal, which has a handler: the target's sigwaitinfo takes it (greenified,
 * the handler was handed to the target to run when it unblocks it, which sigwait did not
 * see). */
static volatile pid_t target_tid;

static void *timer_target(void *arg) {
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    target_tid = (pid_t)syscall(SYS_gettid);
    compute_until_sent();
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int sig = sigwaitinfo(&usr1, &info);
    printf("sigwaitinfo: %d si_code=%d\n", sig, info.si_code);
    return arg;
}

static void arm_timer_at_target(pthread_t t) {
    (void)t;
    signal_thread_in_2ms(target_tid, SIGUSR1);
}

CASE(thread_timer_signal_with_a_handler_to_a_blocking_thread_reaches_its_sigwaitinfo) {
    usr1_set();
    set_handler(SIGUSR1, on_usr1, 0);
    target_tid = 0;
    send_to_computing(timer_target, arm_timer_at_target);
    printf("handler ran: %d\n", (int)handled);
}
