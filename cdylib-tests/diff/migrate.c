/* Threads that move between OS threads: with several workers a green thread may resume on
 * another worker than the one it last ran on, while signals keep coming. Natively these
 * are ordinary threads; every count must come out the same. */
#include "case.h"
#include <signal.h>
#include <sys/time.h>

KILL_IF_HUNG_AFTER(20);

static volatile sig_atomic_t ticks;
static void on_tick(int s) { (void)s; ticks++; }

#define PAIRS 16
#define ROUNDS 5000

struct side {
    int in, out;
    long bytes;
};

/* Reads one byte and writes it back ROUNDS times (retrying EINTR, as a program must). */
static void *bounce(void *p) {
    struct side *s = p;
    for (int i = 0; i < ROUNDS; i++) {
        char c;
        ssize_t r;
        while ((r = read(s->in, &c, 1)) < 0 && errno == EINTR) {}
        if (r != 1) break;
        s->bytes++;
        /* Some work in the program's own code between hand-offs. */
        for (volatile int k = 0; k < 2000; k++) {}
        while ((r = write(s->out, &c, 1)) < 0 && errno == EINTR) {}
        if (r != 1) break;
    }
    return NULL;
}

/* Pipe ping-pong between pairs of threads, with some work of the program's own between
 * hand-offs (each hand-off a switch, which with several workers often moves a thread to
 * the other worker), while a timer signals the process every 50 us: a signal that lands
 * just as a worker switches to a thread's TLS, while the worker the thread last ran on
 * runs the program's code, must be handled as on any other instruction. */
CASE(migrate_pingpong_under_signal_storm) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = { { 0, 50 }, { 0, 50 } };
    setitimer(ITIMER_REAL, &every, NULL);
    struct side sides[PAIRS][2];
    pthread_t threads[PAIRS][2];
    for (int i = 0; i < PAIRS; i++) {
        int ab[2], ba[2];
        if (pipe(ab) || pipe(ba)) { printf("pipe failed\n"); return; }
        sides[i][0] = (struct side){ ba[0], ab[1], 0 };
        sides[i][1] = (struct side){ ab[0], ba[1], 0 };
        for (int k = 0; k < 2; k++) pthread_create(&threads[i][k], NULL, bounce, &sides[i][k]);
        (void)!write(ab[1], "x", 1);
    }
    long bytes = 0;
    for (int i = 0; i < PAIRS; i++)
        for (int k = 0; k < 2; k++) {
            pthread_join(threads[i][k], NULL);
            bytes += sides[i][k].bytes;
        }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("pairs=%d bytes=%ld (want %d)\n", PAIRS, bytes, PAIRS * 2 * ROUNDS);
    printf("handler ran: %s\n", ticks > 0 ? "yes" : "no");
}
