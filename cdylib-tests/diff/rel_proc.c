/* Reliability of processes and signals under hostile use: siglongjmp out of signal
 * handlers (in the main thread and in other threads, out of waits, pure computation and
 * faults), forks at awkward moments (other threads holding locks or parked, from a thread
 * other than main, in a signal handler), and bad arguments to the process and signal
 * calls. Every case with threads orders them so that the native run cannot race. */
#include "case.h"
#include <fcntl.h>
#include <poll.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

extern char **environ;

/* A hung case dies by SIGKILL after 10 s (well before the harness's 30 s timeout). POSIX
 * timers are not inherited by fork. */
__attribute__((constructor)) static void rp_safety_net(void) {
    timer_t t;
    struct sigevent ev = { 0 };
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGKILL;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t) == 0) {
        struct itimerspec its = { { 0, 0 }, { 10, 0 } };
        timer_settime(t, 0, &its, NULL);
    }
}

/* ---- siglongjmp out of handlers ---- */

static sigjmp_buf rp_jmp;
static volatile sig_atomic_t rp_jumps;

static void rp_jump_handler(int sig) {
    (void)sig;
    rp_jumps++;
    siglongjmp(rp_jmp, 1);
}

static void rp_on(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* After the jump the thread keeps working with the others: it wakes a thread that was
 * started before the signal, waits for that thread's answer, sleeps and joins it. */
static int rp_go[2], rp_back[2];
static pthread_t rp_writer, rp_self_before;

static void *rp_writer_thread(void *arg) {
    (void)arg;
    char c = 0;
    if (read(rp_go[0], &c, 1) == 1) write(rp_back[1], &c, 1);
    return NULL;
}

static void rp_start_writer(void) {
    if (pipe(rp_go) != 0 || pipe(rp_back) != 0) return;
    rp_self_before = pthread_self();
    pthread_create(&rp_writer, NULL, rp_writer_thread, NULL);
}

static void rp_after_jump(void) {
    printf("after jump: same pthread_self %d\n", pthread_equal(pthread_self(), rp_self_before));
    SHOW("after jump: wake the writer", write(rp_go[1], "y", 1));
    char c = 0;
    SHOW("after jump: read its answer", read(rp_back[0], &c, 1));
    printf("after jump: got %c\n", c);
    double t0 = now_ms();
    msleep(20);
    printf("after jump: sleep %s\n", timing(now_ms() - t0, 20));
    SHOWRC("after jump: join the writer", pthread_join(rp_writer, NULL));
    int mask_has = -1;
    sigset_t now;
    if (pthread_sigmask(SIG_BLOCK, NULL, &now) == 0) mask_has = sigismember(&now, SIGUSR1);
    printf("after jump: SIGUSR1 blocked %d\n", mask_has);
    close(rp_go[0]);
    close(rp_go[1]);
    close(rp_back[0]);
    close(rp_back[1]);
}

enum rp_wait { RP_READ, RP_NANOSLEEP, RP_COND, RP_SEM, RP_POLL, RP_CPU };
static enum rp_wait rp_how;
static int rp_pipe[2];
static pthread_mutex_t rp_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rp_cond = PTHREAD_COND_INITIALIZER;
static sem_t rp_sem;
static volatile int rp_spin;
static volatile sig_atomic_t rp_waiting;

/* Waits in the chosen way until a signal's handler jumps back out. */
static void rp_wait_forever(void) {
    char c;
    struct timespec long_sleep = { 5, 0 };
    struct pollfd p = { rp_pipe[0], POLLIN, 0 };
    rp_waiting = 1;
    switch (rp_how) {
    case RP_READ: read(rp_pipe[0], &c, 1); break;
    case RP_NANOSLEEP: nanosleep(&long_sleep, NULL); break;
    case RP_COND:
        pthread_mutex_lock(&rp_mutex);
        pthread_cond_wait(&rp_cond, &rp_mutex);
        break;
    case RP_SEM: sem_wait(&rp_sem); break;
    case RP_POLL: poll(&p, 1, 5000); break;
    case RP_CPU:
        while (!rp_spin) { }
        break;
    }
    printf("wait returned without a jump\n");
}

static void *rp_jumping_thread(void *arg) {
    (void)arg;
    rp_start_writer();
    if (sigsetjmp(rp_jmp, 1) == 0) {
        rp_wait_forever();
    } else {
        printf("thread: jumped back (%d)\n", (int)rp_jumps);
        rp_after_jump();
    }
    return (void *)42;
}

/* Another thread parked meanwhile, unaffected by the jump. */
static void *rp_bystander(void *arg) {
    (void)arg;
    char c = 0;
    ssize_t n = read(rp_pipe[0], &c, 1);
    printf("bystander: read %zd %c\n", n, c);
    return NULL;
}

/* Main sends SIGUSR1 to a thread parked in `how` once it waits; the handler runs in that
 * thread and siglongjmps back into it; it then keeps working and is joined. */
static void rp_jump_in_thread(enum rp_wait how, int flags) {
    rp_how = how;
    rp_waiting = 0;
    rp_jumps = 0;
    sem_init(&rp_sem, 0, 0);
    if (pipe(rp_pipe) != 0) return;
    rp_on(SIGUSR1, rp_jump_handler, flags);
    pthread_t t, b;
    pthread_create(&t, NULL, rp_jumping_thread, NULL);
    pthread_create(&b, NULL, rp_bystander, NULL);
    while (!rp_waiting) msleep(1);
    msleep(30); /* the thread is in its wait (natively too: nothing else can wake it) */
    int kill_rc = pthread_kill(t, SIGUSR1);
    void *rv = NULL;
    int join_rc = pthread_join(t, &rv);
    /* Printed after the join: the handler runs in the thread, concurrently natively. */
    SHOWRC("pthread_kill", kill_rc);
    SHOWRC("join", join_rc);
    printf("thread returned %ld\n", (long)rv);
    fflush(stdout);
    ssize_t wrote = write(rp_pipe[1], "b", 1);
    SHOWRC("join bystander", pthread_join(b, NULL));
    printf("write for bystander: %zd\n", wrote);
    msleep(10);
    double t0 = now_ms();
    msleep(10);
    printf("main sleep after: %s\n", timing(now_ms() - t0, 10));
    close(rp_pipe[0]);
    close(rp_pipe[1]);
}

CASE(rp_siglongjmp_thread_parked_read) { rp_jump_in_thread(RP_READ, 0); }
CASE(rp_siglongjmp_thread_parked_read_restart) { rp_jump_in_thread(RP_READ, SA_RESTART); }
CASE(rp_siglongjmp_thread_parked_nanosleep) { rp_jump_in_thread(RP_NANOSLEEP, 0); }
CASE(rp_siglongjmp_thread_parked_poll_onstack) { rp_jump_in_thread(RP_POLL, SA_ONSTACK); }
CASE(rp_siglongjmp_thread_parked_sem_wait) { rp_jump_in_thread(RP_SEM, SA_RESTART); }
CASE(rp_siglongjmp_thread_parked_cond_wait) { rp_jump_in_thread(RP_COND, 0); }

/* The thread computes; SIGALRM (process-directed) reaches it because main blocks it. */
static void *rp_cpu_thread(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    rp_start_writer();
    if (sigsetjmp(rp_jmp, 1) == 0) {
        struct itimerval it = { { 0, 0 }, { 0, 20000 } };
        setitimer(ITIMER_REAL, &it, NULL);
        while (!rp_spin) { }
        printf("spin ended without a jump\n");
    } else {
        printf("thread: jumped out of the loop (%d)\n", (int)rp_jumps);
        rp_after_jump();
    }
    return (void *)43;
}

CASE(rp_siglongjmp_thread_cpu_sigalrm) {
    rp_jumps = 0;
    rp_on(SIGALRM, rp_jump_handler, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t;
    pthread_create(&t, NULL, rp_cpu_thread, NULL);
    void *rv = NULL;
    SHOWRC("join", pthread_join(t, &rv));
    printf("thread returned %ld\n", (long)rv);
    double t0 = now_ms();
    msleep(10);
    printf("main sleep after: %s\n", timing(now_ms() - t0, 10));
}

/* The thread raises a signal at itself (pthread_kill, raise) while computing. */
static void *rp_self_kill_thread(void *arg) {
    int use_raise = (int)(intptr_t)arg;
    rp_start_writer();
    if (sigsetjmp(rp_jmp, 1) == 0) {
        if (use_raise)
            raise(SIGUSR1);
        else
            pthread_kill(pthread_self(), SIGUSR1);
        printf("kill returned without a jump\n");
    } else {
        printf("thread: jumped out of %s (%d)\n", use_raise ? "raise" : "pthread_kill",
               (int)rp_jumps);
        rp_after_jump();
    }
    return (void *)44;
}

static void rp_self_kill(int use_raise) {
    rp_jumps = 0;
    rp_on(SIGUSR1, rp_jump_handler, 0);
    pthread_t t;
    pthread_create(&t, NULL, rp_self_kill_thread, (void *)(intptr_t)use_raise);
    void *rv = NULL;
    SHOWRC("join", pthread_join(t, &rv));
    printf("thread returned %ld\n", (long)rv);
}

CASE(rp_siglongjmp_thread_pthread_kill_self) { rp_self_kill(0); }
CASE(rp_siglongjmp_thread_raise) { rp_self_kill(1); }

/* Synchronous faults in a thread, with a handler that siglongjmps (as JITs and test
 * harnesses do); then the same thread faults again and recovers again. */
static volatile int rp_zero;
static int *volatile rp_null;

static volatile sig_atomic_t rp_last_fault, rp_fault_code;

static void rp_fault_handler(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    rp_jumps++;
    rp_last_fault = sig;
    rp_fault_code = info->si_code;
    siglongjmp(rp_jmp, 1);
}

static void rp_on_fault(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = rp_fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void *rp_fault_thread(void *arg) {
    (void)arg;
    /* An alternate stack for the handler, as programs that catch overflows have. */
    stack_t ss = { 0 };
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    sigaltstack(&ss, NULL);
    for (volatile int round = 0; round < 2; round++) {
        rp_start_writer();
        if (sigsetjmp(rp_jmp, 1) == 0) {
            if (round == 0)
                *rp_null = 1;
            else
                printf("quotient %d\n", 10 / rp_zero);
            printf("no fault\n");
        } else {
            printf("thread: recovered from %s code %d (%d)\n", sigabbrev_np(rp_last_fault),
                   (int)rp_fault_code, (int)rp_jumps);
            rp_after_jump();
        }
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    return (void *)45;
}

CASE(rp_siglongjmp_thread_sigsegv_sigfpe) {
    rp_jumps = 0;
    rp_on_fault(SIGSEGV);
    rp_on_fault(SIGFPE);
    pthread_t t;
    pthread_create(&t, NULL, rp_fault_thread, NULL);
    void *rv = NULL;
    SHOWRC("join", pthread_join(t, &rv));
    printf("thread returned %ld\n", (long)rv);
    double t0 = now_ms();
    msleep(10);
    printf("main sleep after: %s\n", timing(now_ms() - t0, 10));
}

/* The same in the main thread: a fault, a wait interrupted by a timer, a computation. */
static void rp_main_jump(enum rp_wait how) {
    rp_how = how;
    rp_jumps = 0;
    rp_spin = 0;
    sem_init(&rp_sem, 0, 0);
    if (pipe(rp_pipe) != 0) return;
    rp_on(SIGALRM, rp_jump_handler, SA_RESTART);
    /* Another thread parked meanwhile, woken after the jump. */
    pthread_t b;
    pthread_create(&b, NULL, rp_bystander, NULL);
    rp_start_writer();
    if (sigsetjmp(rp_jmp, 1) == 0) {
        struct itimerval it = { { 0, 0 }, { 0, 30000 } };
        setitimer(ITIMER_REAL, &it, NULL);
        rp_wait_forever();
    } else {
        printf("main: jumped back (%d)\n", (int)rp_jumps);
        rp_after_jump();
    }
    ssize_t wrote = write(rp_pipe[1], "m", 1);
    SHOWRC("join bystander", pthread_join(b, NULL));
    printf("write for bystander: %zd\n", wrote);
    close(rp_pipe[0]);
    close(rp_pipe[1]);
}

CASE(rp_siglongjmp_main_parked_read) { rp_main_jump(RP_READ); }
CASE(rp_siglongjmp_main_parked_nanosleep) { rp_main_jump(RP_NANOSLEEP); }
CASE(rp_siglongjmp_main_parked_cond_wait) { rp_main_jump(RP_COND); }
CASE(rp_siglongjmp_main_cpu) { rp_main_jump(RP_CPU); }

CASE(rp_siglongjmp_main_sigsegv) {
    rp_jumps = 0;
    rp_on_fault(SIGSEGV);
    rp_start_writer();
    if (sigsetjmp(rp_jmp, 1) == 0) {
        *rp_null = 2;
        printf("no fault\n");
    } else {
        printf("main: recovered from %s (%d)\n", sigabbrev_np(rp_last_fault), (int)rp_jumps);
        rp_after_jump();
    }
    pthread_t t;
    pthread_create(&t, NULL, rp_fault_thread, NULL);
    void *rv = NULL;
    SHOWRC("join", pthread_join(t, &rv));
    printf("thread returned %ld\n", (long)rv);
}
