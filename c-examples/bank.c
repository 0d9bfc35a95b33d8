/*
 * bank: money transfers between accounts, one mutex per account, and an
 * auditor that checks that no money is ever created or lost.
 *
 * ACCOUNTS accounts start with 1000 units each. THREADS worker threads each
 * do TRANSFERS transfers between two random distinct accounts (rand_r, seeded
 * from the thread index): lock both accounts in index order (so there is no
 * deadlock), move a random amount (1..200) if the source balance allows it,
 * unlock. Every 50th transfer of a thread sleeps 200 us while holding both
 * locks, between taking the money from one account and adding it to the
 * other (so a broken lock would let the auditor see money in flight). An
 * auditor thread, every 2 ms until the workers are done, locks ALL accounts
 * in index order, checks the total and that no balance is negative, and
 * unlocks. Main audits once more after everything is joined.
 *
 * Usage:  bank ACCOUNTS THREADS TRANSFERS
 * Example: ./bank 16 8 2000
 * stdout: "accounts=A threads=T transfers=N total=A*1000 audits_ok violations=0"
 *         (transfers= is the TRANSFERS argument, i.e. per thread; total= is
 *         the total found by the final audit). The number of audits depends
 *         on timing, so it goes to stderr with the elapsed time.
 * On a violation stdout says "audits_FAILED violations=V" and the exit
 * status is 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define INITIAL_BALANCE 1000

struct account {
    pthread_mutex_t lock;
    long balance;
};

static long n_accounts, n_threads, n_transfers;
static struct account *accounts;

/* Auditor state, guarded by state_lock. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static int workers_done;
static long audits, violations;

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(rc));
        exit(1);
    }
}

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    unsigned int seed = 12345u + (unsigned int)t * 7919u;

    for (long k = 0; k < n_transfers; k++) {
        long from = rand_r(&seed) % n_accounts;
        long to = rand_r(&seed) % (n_accounts - 1);
        if (to >= from)
            to++;                       /* distinct from 'from' */
        long amount = 1 + rand_r(&seed) % 200;

        long first = from < to ? from : to;
        long second = from < to ? to : from;
        check(pthread_mutex_lock(&accounts[first].lock), "pthread_mutex_lock");
        check(pthread_mutex_lock(&accounts[second].lock), "pthread_mutex_lock");
        long moved = 0;
        if (accounts[from].balance >= amount) {
            accounts[from].balance -= amount;
            moved = amount;
        }
        if (k % 50 == 49)
            usleep(200);                /* "work" while holding both locks, money in flight */
        accounts[to].balance += moved;
        check(pthread_mutex_unlock(&accounts[second].lock), "pthread_mutex_unlock");
        check(pthread_mutex_unlock(&accounts[first].lock), "pthread_mutex_unlock");
    }
    return NULL;
}

/* Lock every account in index order, check the books, unlock.
 * Returns the total found; adds to 'violations' if something is wrong. */
static long audit(void)
{
    long sum = 0, negative = 0;

    for (long i = 0; i < n_accounts; i++)
        check(pthread_mutex_lock(&accounts[i].lock), "pthread_mutex_lock");
    for (long i = 0; i < n_accounts; i++) {
        sum += accounts[i].balance;
        if (accounts[i].balance < 0)
            negative++;
    }
    for (long i = n_accounts - 1; i >= 0; i--)
        check(pthread_mutex_unlock(&accounts[i].lock), "pthread_mutex_unlock");

    long expected = n_accounts * INITIAL_BALANCE;
    check(pthread_mutex_lock(&state_lock), "pthread_mutex_lock");
    audits++;
    if (sum != expected || negative != 0) {
        violations++;
        fprintf(stderr, "audit %ld: total %ld (expected %ld), %ld negative balances\n",
                audits, sum, expected, negative);
    }
    check(pthread_mutex_unlock(&state_lock), "pthread_mutex_unlock");
    return sum;
}

static void *auditor(void *arg)
{
    (void)arg;
    for (;;) {
        check(pthread_mutex_lock(&state_lock), "pthread_mutex_lock");
        int done = workers_done;
        check(pthread_mutex_unlock(&state_lock), "pthread_mutex_unlock");
        audit();
        if (done)
            break;
        usleep(2000);
    }
    return NULL;
}

static long parse_arg(const char *s, const char *name, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > 1000000000) {
        fprintf(stderr, "bad %s: %s\n", name, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ACCOUNTS THREADS TRANSFERS\n", argv[0]);
        return 2;
    }
    n_accounts = parse_arg(argv[1], "ACCOUNTS (at least 2)", 2);
    n_threads = parse_arg(argv[2], "THREADS", 0);
    n_transfers = parse_arg(argv[3], "TRANSFERS", 0);
    if (n_accounts > 1000000) {
        fprintf(stderr, "bad ACCOUNTS: at most 1000000\n");
        return 2;
    }

    accounts = malloc(sizeof *accounts * (size_t)n_accounts);
    pthread_t *tids = malloc(sizeof *tids * (size_t)(n_threads ? n_threads : 1));
    if (accounts == NULL || tids == NULL) {
        perror("malloc");
        return 1;
    }
    for (long i = 0; i < n_accounts; i++) {
        check(pthread_mutex_init(&accounts[i].lock, NULL), "pthread_mutex_init");
        accounts[i].balance = INITIAL_BALANCE;
    }

    struct timespec start, stop;
    clock_gettime(CLOCK_MONOTONIC, &start);

    pthread_t auditor_tid;
    check(pthread_create(&auditor_tid, NULL, auditor, NULL), "pthread_create auditor");
    for (long t = 0; t < n_threads; t++)
        check(pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t), "pthread_create worker");
    for (long t = 0; t < n_threads; t++)
        check(pthread_join(tids[t], NULL), "pthread_join worker");

    check(pthread_mutex_lock(&state_lock), "pthread_mutex_lock");
    workers_done = 1;
    check(pthread_mutex_unlock(&state_lock), "pthread_mutex_unlock");
    check(pthread_join(auditor_tid, NULL), "pthread_join auditor");

    long total = audit();    /* final audit, everything joined */
    clock_gettime(CLOCK_MONOTONIC, &stop);

    printf("accounts=%ld threads=%ld transfers=%ld total=%ld %s violations=%ld\n",
           n_accounts, n_threads, n_transfers, total,
           violations == 0 ? "audits_ok" : "audits_FAILED", violations);
    fflush(stdout);

    double secs = (double)(stop.tv_sec - start.tv_sec) + (double)(stop.tv_nsec - start.tv_nsec) / 1e9;
    fprintf(stderr, "elapsed %.3f s, %ld audits\n", secs, audits);

    for (long i = 0; i < n_accounts; i++)
        check(pthread_mutex_destroy(&accounts[i].lock), "pthread_mutex_destroy");
    free(accounts);
    free(tids);
    return violations == 0 ? 0 : 1;
}
