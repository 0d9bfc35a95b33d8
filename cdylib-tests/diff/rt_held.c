/* Real-time signal instances queued faster than their handler runs: natively each is
 * queued with its value and runs the handler once, in order. greenify keeps the
 * instances waiting for a delivery in a line in memory, in the order the OS threads took
 * them (or, for the program's own sigqueue, in the order sent); with several workers the
 * handler may run on another OS thread than the one that took the instance. */
#include "case.h"
#include <signal.h>

KILL_IF_HUNG_AFTER(20);

#define ROUNDS 20
#define PER_ROUND 5

static volatile int seen[ROUNDS * PER_ROUND], count;
static int ready_pipe[2], stop_pipe[2];

static void record(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    if (count < ROUNDS * PER_ROUND) seen[count] = si->si_value.sival_int;
    count++;
}

static void install_record(void) {
    set_info_handler(SIGRTMIN, record, 0);
    count = 0;
}

/* Unblocks SIGRTMIN, says so, then waits in read until main writes. */
static void *reader(void *arg) {
    (void)arg;
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    pthread_sigmask(SIG_UNBLOCK, &rt, NULL);
    write(ready_pipe[1], "r", 1);
    char c;
    while (read(stop_pipe[0], &c, 1) != 1) {
    }
    return NULL;
}

/* Whether the values came in the order sent (then each came once). With several workers,
 * instances sent to the process were taken by two OS threads at once (an idle worker for
 * the parked reader, and the worker running it), and ran out of order. */
static void report(void) {
    int in_order = 1;
    for (int i = 0; i < count && i < ROUNDS * PER_ROUND; i++) in_order &= seen[i] == i;
    printf("handler ran %d times, values %s\n", (int)count, in_order ? "in order" : "out of order");
}

/* With `main_blocks`, main blocks SIGRTMIN (the reader inherits that and unblocks it), so
 * only the reader accepts it. */
static pthread_t start_reader(int main_blocks) {
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    pthread_sigmask(main_blocks ? SIG_BLOCK : SIG_UNBLOCK, &rt, NULL);
    pipe(ready_pipe);
    pipe(stop_pipe);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    char c;
    read(ready_pipe[0], &c, 1);
    msleep(10);
    return t;
}

/* Waits long enough for every instance to have run in the reader, ends it, and closes
 * the pipes (natively the instances pending on the reader all run before its read
 * returns, so the count never depends on the wait). */
static void finish(pthread_t t) {
    msleep(20);
    write(stop_pipe[1], "x", 1);
    pthread_join(t, NULL);
    close(ready_pipe[0]);
    close(ready_pipe[1]);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}

/* ROUNDS rounds, each with a new reader (one instance left behind in a round is lost with
 * its reader) and PER_ROUND instances: aimed at the reader (`to_process` 0; main accepts
 * the signal too, but each instance names the reader), or sent to the process, which only
 * the reader accepts (`to_process` 1). */
static void rounds(int to_process) {
    install_record();
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t t = start_reader(to_process);
        for (int i = 0; i < PER_ROUND; i++) {
            union sigval v = { .sival_int = r * PER_ROUND + i };
            if (to_process)
                sigqueue(getpid(), SIGRTMIN, v);
            else
                pthread_sigqueue(t, SIGRTMIN, v);
        }
        finish(t);
    }
    report();
}

CASE(rt_instances_aimed_at_a_waiting_thread_run_once_each_in_order) { rounds(0); }

CASE(rt_instances_sent_to_the_process_run_once_each_in_the_thread_accepting_them) { rounds(1); }
