/* Two threads that compute without ever waiting: each spins on a plain counter of its
 * own and counts how often it sees the other's change, until both have seen it change
 * CHANGES times. Only threads that run at the same time on two OS threads get there
 * quickly: one OS thread switching between them (preemption every 10 ms) would show
 * one change per switch. Each notes, at every step, the OS thread it runs on, by the raw
 * system call (no library call sees it), and counts only changes the other made on
 * another OS thread than its own (a thread may move from one to the other). */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>

#define CHANGES 20000

static volatile long counters[2];
static volatile int done[2];
static long os_tids[2];

static long raw_gettid(void)
{
    long tid;
    __asm__ volatile("syscall" : "=a"(tid) : "a"((long)SYS_gettid) : "rcx", "r11", "memory");
    return tid;
}

static void *spin(void *arg)
{
    long me = (long)arg, other = 1 - me;
    long seen = counters[other], changes = 0;
    while (!(done[me] && done[other])) {
        long tid = raw_gettid();
        os_tids[me] = tid;
        counters[me]++;
        long now = counters[other];
        if (now != seen) {
            seen = now;
            if (os_tids[other] != tid && ++changes == CHANGES)
                done[me] = 1;
        }
    }
    return NULL;
}

int main(void)
{
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, spin, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("both saw the other advance %d times on another OS thread\n", CHANGES);
    return 0;
}
