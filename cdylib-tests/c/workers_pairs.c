/* PAIRS independent pairs of threads take strict turns, each pair through a mutex and a
 * condition variable of its own, TURNS turns per pair (or the TURNS argument's), each
 * turn followed by WORK steps of an empty loop (argument, default 0), while SPINNERS
 * child processes (argument, default 0) spin on the CPUs. At every SAMPLEth turn the
 * thread notes the OS thread it runs on, by the raw system call (no library call sees
 * it; one at every turn would slow the turns it counts down several times); at the end
 * the sampled turns are counted per OS thread.
 *
 * stdout: "samples N apart A cpu C of T": A is the samples taken on another OS thread
 * than the one that took the most; T the CPU time (clock ticks) that the OS threads
 * which took samples and still run used, C that of all of them but the busiest
 * (natively every thread is an OS thread of its own, gone by then: 0 of 0).
 * Greenified with two workers, pairs that hand over every few hundred nanoseconds do
 * more on one worker than on two that wait for each other at the scheduler's lock: they
 * should gather on one, the other spending little CPU (not spinning for the lock); pairs
 * with a few microseconds of work a turn should use both, also beside spinners.
 *
 * Usage: workers_pairs [WORK [TURNS [SPINNERS]]] (at most 8 spinners). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAIRS 64
#define SAMPLE 16
#define MAX_OS_THREADS (2 * PAIRS + 8)

struct pair {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int turn; /* whose turn: 0 or 1; guarded by lock */
};

struct player {
    struct pair *pair;
    int me;
};

static struct pair pairs[PAIRS];
static struct player players[2 * PAIRS];
static long turns_each = 20000, work;

/* The OS threads seen and their turns, guarded by `seen_lock`. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static long seen_tid[MAX_OS_THREADS], seen_turns[MAX_OS_THREADS];
static int seen;

static long raw_gettid(void)
{
    long tid;
    __asm__ volatile("syscall" : "=a"(tid) : "a"((long)SYS_gettid) : "rcx", "r11", "memory");
    return tid;
}

/* Adds one thread's turns per OS thread (a few distinct ones: a short list). */
static void count(const long *tids, const long *turns, int n)
{
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < seen && seen_tid[j] != tids[i])
            j++;
        if (j == seen) {
            if (seen == MAX_OS_THREADS) {
                fprintf(stderr, "too many OS threads\n");
                exit(1);
            }
            seen_tid[seen++] = tids[i];
        }
        seen_turns[j] += turns[i];
    }
    pthread_mutex_unlock(&seen_lock);
}

/* The CPU time OS thread `tid` of this process used so far (utime + stime, in clock
 * ticks), or -1 if it is gone. */
static long cpu_ticks(long tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends the command name (field 2). */
    char *at = strrchr(buf, ')');
    long utime, stime;
    if (at == NULL || sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                             &utime, &stime) != 2)
        return -1;
    return utime + stime;
}

static void *play(void *arg)
{
    struct player *player = arg;
    struct pair *p = player->pair;
    long tids[8], turns[8];
    int n = 0;
    for (long r = 0; r < turns_each / 2; r++) {
        pthread_mutex_lock(&p->lock);
        while (p->turn != player->me)
            pthread_cond_wait(&p->changed, &p->lock);
        if (r % SAMPLE != 0)
            goto done;
        long tid = raw_gettid();
        if (n == 0 || tids[n - 1] != tid) {
            int j = 0;
            while (j < n && tids[j] != tid)
                j++;
            if (j == n) {
                if (n == 8) {
                    count(tids, turns, n);
                    n = j = 0;
                }
                tids[n] = tid;
                turns[n++] = 0;
            }
            /* Keep the current OS thread last: the common case is one compare. */
            long t = tids[j], c = turns[j];
            tids[j] = tids[n - 1], turns[j] = turns[n - 1];
            tids[n - 1] = t, turns[n - 1] = c;
        }
        turns[n - 1]++;
    done:
        p->turn = 1 - player->me;
        pthread_cond_signal(&p->changed);
        pthread_mutex_unlock(&p->lock);
        for (volatile long w = 0; w < work; w++)
            ;
    }
    count(tids, turns, n);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[2 * PAIRS];
    pid_t spinners[8];
    int spinning = argc > 3 ? atoi(argv[3]) : 0;
    if (argc > 1)
        work = atol(argv[1]);
    if (argc > 2)
        turns_each = atol(argv[2]);
    if (spinning > 8)
        return fprintf(stderr, "at most 8 spinners\n"), 1;
    for (int i = 0; i < spinning; i++) {
        spinners[i] = fork();
        if (spinners[i] < 0)
            return perror("fork"), 1;
        if (spinners[i] == 0)
            for (volatile long spin = 0;; spin++)
                ;
    }
    for (int i = 0; i < PAIRS; i++) {
        pthread_mutex_init(&pairs[i].lock, NULL);
        pthread_cond_init(&pairs[i].changed, NULL);
    }
    for (int i = 0; i < 2 * PAIRS; i++) {
        players[i] = (struct player){ &pairs[i / 2], i % 2 };
        if (pthread_create(&threads[i], NULL, play, &players[i]) != 0)
            return perror("pthread_create"), 1;
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < spinning; i++) {
        kill(spinners[i], SIGKILL);
        waitpid(spinners[i], NULL, 0);
    }
    long total = 0, most = 0, cpu = 0, cpu_most = 0;
    for (int i = 0; i < seen; i++) {
        total += seen_turns[i];
        if (seen_turns[i] > most)
            most = seen_turns[i];
        long ticks = cpu_ticks(seen_tid[i]);
        if (ticks > 0) {
            cpu += ticks;
            if (ticks > cpu_most)
                cpu_most = ticks;
        }
    }
    printf("samples %ld apart %ld cpu %ld of %ld\n", total, total - most, cpu - cpu_most, cpu);
    return 0;
}
