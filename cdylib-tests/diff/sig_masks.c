/* Signals sent to the process just after the last thread that accepted them blocked
 * them: natively they stay pending until a thread takes them (sigwait), whatever the
 * process was doing a moment before. greenify leaves an idle worker's OS thread open to
 * what some thread accepts, and has it block a signal as soon as no thread accepts it
 * any more; the worker may be in the middle of taking another signal then (for a thread
 * that another worker runs), and the mask it restores as that one returns must not open
 * the blocked signal again. */
#include "case.h"
#include <signal.h>
#include <sys/time.h>

KILL_IF_HUNG_AFTER(30);

#define ROUNDS 100

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void *nothing(void *arg) { return arg; }

/* Starts a thread and joins it: greenify starts its workers at the first thread. */
static void start_workers(void) {
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
}

/* Blocks SIGUSR1, sends it to the process, takes it with sigwait and unblocks it again:
 * whether it was taken. */
static int block_send_and_take_usr1(void) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    kill(getpid(), SIGUSR1);
    int sig = 0, taken = sigwait(&usr1, &sig) == 0 && sig == SIGUSR1;
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    return taken;
}

/* Each round the main thread waits for SIGALRM from a 1 ms timer in sigsuspend (SIGUSR1
 * open too, as between rounds), then blocks SIGUSR1, sends it to the process and takes it
 * with sigwait. The thread started first makes greenify start its workers: the SIGALRM
 * then lands on an idle worker while main may go on on another. */
CASE(blocked_right_after_a_timer_signal_woke_main_stays_pending) {
    set_handler(SIGALRM, on_alarm, 0);
    sigset_t alrm, open_both;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &open_both);
    sigdelset(&open_both, SIGALRM);
    sigdelset(&open_both, SIGUSR1);
    start_workers();
    int taken = 0;
    for (int r = 0; r < ROUNDS; r++) {
        struct itimerval it = { { 0, 0 }, { 0, 1000 } };
        setitimer(ITIMER_REAL, &it, NULL);
        sigsuspend(&open_both);
        taken += block_send_and_take_usr1();
    }
    printf("rounds %d: alarms handled %d, SIGUSR1 taken by sigwait %d\n", ROUNDS, (int)alarms,
           taken);
}

/* As above with pause() and a 1 ms periodic timer (each pause returns after a handler
 * ran; the timer stops once one did). */
CASE(blocked_right_after_pause_returned_stays_pending) {
    set_handler(SIGALRM, on_alarm, 0);
    start_workers();
    int taken = 0;
    for (int r = 0; r < ROUNDS; r++) {
        alarms = 0;
        struct itimerval every_ms = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };
        setitimer(ITIMER_REAL, &every_ms, NULL);
        while (!alarms) pause();
        setitimer(ITIMER_REAL, &off, NULL);
        taken += block_send_and_take_usr1();
    }
    printf("rounds %d: SIGUSR1 taken by sigwait %d\n", ROUNDS, taken);
}
