/* hostile_storm: I/O and lock hand-offs under a signal every millisecond.
 *
 *   hostile_storm THREADS ROUNDS
 *
 * THREADS/2 pairs of threads, of four kinds in turn, each doing ROUNDS hand-offs:
 *   pipe     ping-pong over two pipes, messages of 1..8192 bytes (a pattern per round),
 *   socket   the same over a socketpair,
 *   condvar  a turn passed back and forth under a mutex and a condition variable,
 *   sem      a turn passed back and forth with two semaphores;
 * and every thread also adds 1 per round to one counter under a shared mutex.
 * Meanwhile an interval timer sends SIGALRM every 1 ms to a handler installed with
 * SA_RESTART, and a POSIX timer sends SIGUSR1 every 1 ms to one installed without it (so a
 * blocking call may fail with EINTR, which the program retries, as a program must).
 *
 * Checks every byte and every count and prints the totals (all determined by THREADS and
 * ROUNDS) and whether both handlers ran during the work; exits 1 on any mismatch or
 * unexpected error. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAXMSG 8192

static volatile sig_atomic_t alarms, usr1s;
static void on_alarm(int s) { (void)s; alarms++; }
static void on_usr1(int s) { (void)s; usr1s++; }

static int rounds;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
static long long total;
static int failed;

static void fail(const char *what, int err) {
    fprintf(stderr, "FAIL: %s: %s\n", what, err ? strerror(err) : "-");
    __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

enum kind { PIPE, SOCKET, CONDVAR, SEM };

struct pair {
    enum kind kind;
    int a_to_b[2], b_to_a[2]; /* [read end, write end]; for sockets both are the pair */
    pthread_mutex_t m;
    pthread_cond_t c;
    int turn;
    sem_t sa, sb;
    long long bytes, handoffs;
};

static size_t msg_len(int round, int side) { return 1 + (size_t)((round * 7919 + side * 104729) % MAXMSG); }
static uint8_t msg_byte(int round, int side, size_t i) { return (uint8_t)(round * 31 + side * 17 + i * 13); }

static int write_all(int fd, const uint8_t *b, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("write", errno);
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *b, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail("read", errno);
            return -1;
        }
        if (r == 0) {
            fail("read: early EOF", 0);
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void sem_wait_retry(sem_t *s) {
    while (sem_wait(s) != 0) {
        if (errno != EINTR) {
            fail("sem_wait", errno);
            return;
        }
    }
}

struct side { struct pair *p; int side; };

static void *run(void *arg) {
    struct side *sd = arg;
    struct pair *p = sd->p;
    int me = sd->side;
    uint8_t *buf = malloc(MAXMSG);
    for (int r = 0; r < rounds && !__atomic_load_n(&failed, __ATOMIC_RELAXED); r++) {
        switch (p->kind) {
        case PIPE:
        case SOCKET: {
            int out = me == 0 ? p->a_to_b[1] : p->b_to_a[1];
            int in = me == 0 ? p->b_to_a[0] : p->a_to_b[0];
            /* A sends first, then B answers. */
            for (int turn = 0; turn < 2; turn++) {
                if (turn == me) {
                    size_t n = msg_len(r, me);
                    for (size_t i = 0; i < n; i++) buf[i] = msg_byte(r, me, i);
                    if (write_all(out, buf, n)) goto out;
                } else {
                    size_t n = msg_len(r, !me);
                    if (read_all(in, buf, n)) goto out;
                    for (size_t i = 0; i < n; i++)
                        if (buf[i] != msg_byte(r, !me, i)) {
                            fail("byte mismatch", 0);
                            goto out;
                        }
                    __atomic_add_fetch(&p->bytes, (long long)n, __ATOMIC_RELAXED);
                }
            }
            break;
        }
        case CONDVAR:
            pthread_mutex_lock(&p->m);
            while (p->turn != me) pthread_cond_wait(&p->c, &p->m);
            p->handoffs++;
            p->turn = !me;
            pthread_cond_signal(&p->c);
            pthread_mutex_unlock(&p->m);
            break;
        case SEM:
            sem_wait_retry(me == 0 ? &p->sa : &p->sb);
            __atomic_add_fetch(&p->handoffs, 1, __ATOMIC_RELAXED);
            sem_post(me == 0 ? &p->sb : &p->sa);
            break;
        }
        pthread_mutex_lock(&total_lock);
        total++;
        pthread_mutex_unlock(&total_lock);
    }
out:
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS ROUNDS\n", argv[0]);
        return 2;
    }
    int npairs = atoi(argv[1]) / 2;
    rounds = atoi(argv[2]);
    struct pair *pairs = calloc((size_t)npairs, sizeof *pairs);
    struct side *sides = calloc((size_t)npairs * 2, sizeof *sides);
    pthread_t *tids = calloc((size_t)npairs * 2, sizeof *tids);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);

    for (int i = 0; i < npairs; i++) {
        struct pair *p = &pairs[i];
        p->kind = (enum kind)(i % 4);
        int ok = 0;
        if (p->kind == PIPE) {
            ok = pipe(p->a_to_b) == 0 && pipe(p->b_to_a) == 0;
        } else if (p->kind == SOCKET) {
            int sv[2];
            ok = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0;
            /* a writes sv[0], b reads sv[1]; b writes sv[1], a reads sv[0] */
            p->a_to_b[1] = sv[0];
            p->a_to_b[0] = sv[1];
            p->b_to_a[1] = sv[1];
            p->b_to_a[0] = sv[0];
        } else {
            pthread_mutex_init(&p->m, NULL);
            pthread_cond_init(&p->c, NULL);
            ok = sem_init(&p->sa, 0, 1) == 0 && sem_init(&p->sb, 0, 0) == 0;
        }
        if (!ok) {
            fail("setting up a pair", errno);
            return 1;
        }
    }

    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    timer_t tm;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    timer_create(CLOCK_MONOTONIC, &sev, &tm);
    struct itimerspec its = {{0, 1000000}, {0, 1000000}};
    timer_settime(tm, 0, &its, NULL);

    int created = 0;
    for (int i = 0; i < npairs * 2; i++) {
        sides[i].p = &pairs[i / 2];
        sides[i].side = i % 2;
        int e = pthread_create(&tids[i], NULL, run, &sides[i]);
        if (e) {
            fail("pthread_create", e);
            break;
        }
        created++;
    }
    for (int i = 0; i < created; i++) pthread_join(tids[i], NULL);
    int alarms_seen = alarms, usr1_seen = usr1s;

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    timer_delete(tm);

    long long want_bytes = 0;
    for (int r = 0; r < rounds; r++) want_bytes += (long long)(msg_len(r, 0) + msg_len(r, 1));
    long long sums[4] = {0}, counts[4] = {0};
    for (int i = 0; i < npairs; i++) {
        struct pair *p = &pairs[i];
        long long got = p->kind <= SOCKET ? p->bytes : p->handoffs;
        long long want = p->kind <= SOCKET ? want_bytes : 2LL * rounds;
        if (got != want) {
            fprintf(stderr, "FAIL: pair %d (kind %d): %lld, not %lld\n", i, p->kind, got, want);
            failed = 1;
        }
        sums[p->kind] += got;
        counts[p->kind]++;
    }
    const char *names[4] = {"pipe", "socket", "condvar", "sem"};
    for (int k = 0; k < 4; k++)
        printf("%s: pairs=%lld %s=%lld\n", names[k], counts[k], k <= SOCKET ? "bytes" : "handoffs",
               sums[k]);
    printf("lock total=%lld (want %lld)\n", total, 2LL * npairs * rounds);
    if (total != 2LL * npairs * rounds) failed = 1;
    printf("SIGALRM handled: %s, SIGUSR1 handled: %s\n", alarms_seen ? "yes" : "no",
           usr1_seen ? "yes" : "no");
    return failed ? 1 : 0;
}
