/* Exercises the pthread functions that take a pthread_t, with native error codes.
 * Output is deterministic and must be identical natively and greenified. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_t seen_self;

static void *quick(void *arg) { seen_self = pthread_self(); return arg; }
/* A thread started on held(gate) runs until main releases its gate, so calls on a running
 * thread never race its exit; it returns the gate's value. */
struct gate { int fds[2]; void *value; };
static struct gate gates[5];
static struct gate *gate(int i, void *value) {
    if (pipe(gates[i].fds) != 0) _exit(1);
    gates[i].value = value;
    return &gates[i];
}
static void *held(void *arg) {
    struct gate *g = arg;
    char c;
    while (read(g->fds[0], &c, 1) != 1) {}
    return g->value;
}
static void release(int i) { while (write(gates[i].fds[1], "x", 1) != 1) {} }
static void *join_self(void *arg) {
    (void)arg;
    return (void *)(long)pthread_join(pthread_self(), NULL);
}
static void *named(void *arg) {
    (void)arg;
    char buf[16];
    int a = pthread_setname_np(pthread_self(), "worker-7");
    int b = pthread_getname_np(pthread_self(), buf, sizeof buf);
    int c = pthread_setname_np(pthread_self(), "a-name-longer-than-15");
    char small[4];
    int d = pthread_getname_np(pthread_self(), small, sizeof small);
    printf("names: set=%d get=%d '%s' toolong=%s small=%s\n", a, b, buf,
           strerrorname_np(c), strerrorname_np(d));
    return NULL;
}
static void *attrs(void *arg) {
    pthread_attr_t attr;
    size_t size = 0;
    void *addr = NULL;
    int r = pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    char local;
    int inside = (char *)&local >= (char *)addr && (char *)&local < (char *)addr + size;
    printf("getattr: ret=%d size>=requested=%d local-on-stack=%d\n", r,
           size >= (size_t)(long)arg, inside);
    return NULL;
}

int main(void) {
    pthread_t t;
    void *ret;

    pthread_create(&t, NULL, quick, (void *)42);
    pthread_join(t, &ret);
    printf("join: value=%ld self-matches=%d equal-self=%d\n", (long)ret,
           pthread_equal(seen_self, t), pthread_equal(pthread_self(), pthread_self()));

    pthread_create(&t, NULL, held, gate(0, (void *)7));
    printf("tryjoin running: %s\n", strerrorname_np(pthread_tryjoin_np(t, &ret)));
    printf("kill 0 running: %d\n", pthread_kill(t, 0));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    printf("timedjoin early: %s\n", strerrorname_np(pthread_timedjoin_np(t, &ret, &ts)));
    release(0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 5;
    int r = pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &ts);
    printf("clockjoin: %d value=%ld\n", r, (long)ret);
    ts.tv_nsec = 2000000000L;
    /* glibc waits on despite the bad timeout (the kernel's EINVAL is retried) until the
     * thread ends, then joins it. */
    pthread_create(&t, NULL, held, gate(1, NULL));
    release(1);
    printf("timedjoin bad nsec: %d\n", pthread_timedjoin_np(t, &ret, &ts));

    pthread_create(&t, NULL, join_self, NULL);
    pthread_join(t, &ret);
    printf("join self: %s\n", strerrorname_np((int)(long)ret));

    pthread_create(&t, NULL, held, gate(2, NULL));
    int first = pthread_detach(t);
    int again = pthread_detach(t);
    printf("detach: %d again: %s\n", first, strerrorname_np(again));
    printf("join detached: %s\n", strerrorname_np(pthread_join(t, NULL)));

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, held, gate(3, NULL));
    printf("join created-detached: %s\n", strerrorname_np(pthread_join(t, NULL)));
    pthread_attr_destroy(&attr);

    pthread_create(&t, NULL, named, NULL);
    pthread_join(t, NULL);

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_create(&t, &attr, attrs, (void *)(1L << 20));
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);

    static char own_stack[256 * 1024] __attribute__((aligned(4096)));
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, own_stack, sizeof own_stack);
    pthread_create(&t, &attr, attrs, (void *)(long)sizeof own_stack);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);

    pthread_create(&t, NULL, held, gate(4, NULL));
    clockid_t clock;
    printf("getcpuclockid: %d\n", pthread_getcpuclockid(t, &clock));
    struct sched_param param;
    int policy;
    printf("getschedparam: %d\n", pthread_getschedparam(t, &policy, &param));
    release(4);
    pthread_join(t, NULL);
    printf("sched_yield: %d\n", sched_yield());
    release(2); /* the two detached threads finish */
    release(3);
    usleep(250 * 1000);
    return 0;
}
