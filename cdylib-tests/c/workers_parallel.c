/* Two threads that compute without ever waiting: each spins on a plain counter of its
 * own and counts how often it sees the other's change, until both have seen it change
 * CHANGES times. Only threads that run at the same time on two OS threads get there
 * quickly: one OS thread switching between them (preemption every 10 ms) would show
 * one change per switch. Each records the OS thread it ran on, by the raw system call
 * (no library call sees it). */
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
    os_tids[me] = raw_gettid();
    while (!(done[me] && done[other])) {
        counters[me]++;
        long now = counters[other];
        if (now != seen) {
            seen = now;
            if (++changes == CHANGES)
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
    printf("both saw the other advance %d times; on distinct OS threads: %s\n", CHANGES,
           os_tids[0] != os_tids[1] ? "yes" : "no");
    return 0;
}
