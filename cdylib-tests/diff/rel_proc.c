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
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

KILL_IF_HUNG_AFTER(10);

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

/* SIGALRM (process-directed, main blocks it) comes while the first thread computes: the
 * kernel runs the handler there, the first thread after main that accepts it. A second
 * thread that accepts it too sits in a read meanwhile: it is not interrupted (no EINTR),
 * also while the handler itself waits, with SIGALRM blocked in its thread's mask. */
static volatile sig_atomic_t rp_alarm_done;
static pthread_t rp_computer;
static volatile int rp_handled_in_computer = -1;

static void rp_waiting_handler(int sig) {
    (void)sig;
    rp_handled_in_computer = pthread_equal(pthread_self(), rp_computer);
    struct timespec nap = { 0, 30 * 1000000L };
    nanosleep(&nap, NULL);
    rp_alarm_done = 1;
}

static ssize_t rp_reader_got;
static int rp_reader_errno;
static char rp_reader_byte = '-';

static void *rp_reader(void *arg) {
    (void)arg;
    char c = 0;
    rp_reader_got = read(rp_pipe[0], &c, 1);
    rp_reader_errno = rp_reader_got < 0 ? errno : 0;
    if (rp_reader_got == 1) rp_reader_byte = c;
    return NULL;
}

static void *rp_computing_thread(void *arg) {
    (void)arg;
    rp_computer = pthread_self();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    /* Created after this thread, with SIGALRM unblocked too. */
    pthread_t r;
    pthread_create(&r, NULL, rp_reader, NULL);
    struct itimerval it = { { 0, 0 }, { 0, 30000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    while (!rp_alarm_done) { }
    printf("handler ran in the computing thread: %d\n", rp_handled_in_computer);
    SHOW("write for the reader", write(rp_pipe[1], "r", 1));
    SHOWRC("join the reader", pthread_join(r, NULL));
    /* Printed after the join: the reader runs concurrently natively. */
    printf("reader: read %zd %c errno=%s\n", rp_reader_got, rp_reader_byte, en(rp_reader_errno));
    return NULL;
}

CASE(rp_handler_in_computing_thread_leaves_parked_reader) {
    rp_alarm_done = 0;
    if (pipe(rp_pipe) != 0) return;
    rp_on(SIGALRM, rp_waiting_handler, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t t;
    pthread_create(&t, NULL, rp_computing_thread, NULL);
    SHOWRC("join", pthread_join(t, NULL));
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

/* ---- fork at awkward moments ---- */

static pthread_mutex_t rp_held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rp_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rp_cond2 = PTHREAD_COND_INITIALIZER;
static volatile int rp_cond_flag;
static int rp_release[2];

static void *rp_holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rp_held);
    rp_waiting++;
    char c;
    read(rp_release[0], &c, 1);
    pthread_mutex_unlock(&rp_held);
    return NULL;
}

static void *rp_cond_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rp_cond_mutex);
    rp_waiting++;
    while (!rp_cond_flag) pthread_cond_wait(&rp_cond2, &rp_cond_mutex);
    pthread_mutex_unlock(&rp_cond_mutex);
    return NULL;
}

static void *rp_return_7(void *arg) {
    (void)arg;
    msleep(5);
    return (void *)7;
}

/* What a forked child checks: its lone thread can start, join, sleep and read. */
static int rp_child_works(void) {
    pthread_t t;
    void *rv = NULL;
    if (pthread_create(&t, NULL, rp_return_7, NULL) != 0) return 10;
    if (pthread_join(t, &rv) != 0 || rv != (void *)7) return 11;
    int p[2];
    if (pipe(p) != 0) return 12;
    double t0 = now_ms();
    msleep(10);
    if (now_ms() - t0 < 9) return 13;
    if (write(p[1], "z", 1) != 1) return 14;
    char c = 0;
    if (read(p[0], &c, 1) != 1 || c != 'z') return 15;
    return 0;
}

static void rp_show_child(const char *what, pid_t pid) {
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    if (r != pid)
        printf("%s: waitpid %s\n", what, en(errno));
    else if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %s\n", what, sigabbrev_np(WTERMSIG(st)));
}

CASE(rp_fork_while_threads_hold_mutex_and_wait) {
    rp_waiting = 0;
    rp_cond_flag = 0;
    if (pipe(rp_release) != 0) return;
    pthread_t h, w;
    pthread_create(&h, NULL, rp_holder, NULL);
    pthread_create(&w, NULL, rp_cond_waiter, NULL);
    while (rp_waiting < 2) msleep(1);
    msleep(20);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* Only this thread: the mutex stays held by a thread that does not exist here, the
         * condition variable's mutex is free, and the child's own threads work. */
        int held = pthread_mutex_trylock(&rp_held);
        int free_one = pthread_mutex_trylock(&rp_cond_mutex);
        if (free_one == 0) pthread_mutex_unlock(&rp_cond_mutex);
        int works = rp_child_works();
        _exit(held == EBUSY && free_one == 0 ? works : 20);
    }
    rp_show_child("child", pid);
    write(rp_release[1], "r", 1);
    pthread_mutex_lock(&rp_cond_mutex);
    rp_cond_flag = 1;
    pthread_cond_broadcast(&rp_cond2);
    pthread_mutex_unlock(&rp_cond_mutex);
    SHOWRC("join holder", pthread_join(h, NULL));
    SHOWRC("join waiter", pthread_join(w, NULL));
    close(rp_release[0]);
    close(rp_release[1]);
}

/* A thread other than main forks: in the child it is the only thread, keeps its
 * pthread_self, and the process ends with status 0 when it returns. */
static void *rp_forking_thread(void *arg) {
    (void)arg;
    pthread_t me = pthread_self();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int code = rp_child_works();
        if (!pthread_equal(me, pthread_self())) code = 30;
        if (code != 0) _exit(code);
        return NULL; /* the last thread returns: the process exits with 0 */
    }
    rp_show_child("child of a thread", pid);
    return (void *)8;
}

CASE(rp_fork_from_non_main_thread) {
    pthread_t t;
    void *rv = NULL;
    pthread_create(&t, NULL, rp_forking_thread, NULL);
    SHOWRC("join", pthread_join(t, &rv));
    printf("thread returned %ld\n", (long)rv);
}

/* A thread forks beside a thread that computes (greenified, on the second worker, most
 * rounds), and in the child a call no hook sees (an inline-assembly nanosleep) keeps the
 * OS thread while another thread must run: a spare OS thread stands in. The forking
 * worker's run loop runs on its OS thread's glibc descriptor and stack, which glibc's fork
 * frees in the child, and the spare took them: 7 of 8 children died of SIGSEGV. */
static volatile int rp_spin_stop, rp_ticks;

static void *rp_ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        msleep(2);
        rp_ticks++;
    }
    return NULL;
}

static int rp_child_beside_a_stuck_call(void) {
    pthread_t t;
    rp_ticks = 0;
    if (pthread_create(&t, NULL, rp_ticker, NULL) != 0) return 10;
    for (int i = 0; i < 4; i++) nanosleep_unhooked(10);
    pthread_join(t, NULL);
    for (int r = 0; r < 4; r++) {
        if (pthread_create(&t, NULL, rp_ticker, NULL) != 0) return 11;
        pthread_join(t, NULL);
    }
    return rp_ticks == 25 ? 0 : 12;
}

static void *rp_spin_until_stopped(void *arg) {
    (void)arg;
    while (!rp_spin_stop) {}
    return NULL;
}

static void *rp_fork_beside(void *arg) {
    (void)arg;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(rp_child_beside_a_stuck_call());
    int st = 0;
    waitpid(pid, &st, 0);
    return (void *)(long)(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

CASE(rp_fork_beside_a_computing_thread_then_a_call_no_hook_sees) {
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_t spinner, forker;
        void *r = NULL;
        rp_spin_stop = 0;
        pthread_create(&spinner, NULL, rp_spin_until_stopped, NULL);
        pthread_create(&forker, NULL, rp_fork_beside, NULL);
        pthread_join(forker, &r);
        rp_spin_stop = 1;
        pthread_join(spinner, NULL);
        ok += (long)r;
    }
    printf("children that ran as natively: %d of 8\n", ok);
}

/* A SIGALRM handler forks while main waits in read (no SA_RESTART). Both the parent and
 * the child get EINTR from the read once the handler returns. */
static volatile pid_t rp_forked;

static void rp_fork_handler(int sig) {
    (void)sig;
    rp_forked = fork();
}

static void rp_fork_in_handler(enum rp_wait how) {
    rp_forked = -1;
    rp_how = how;
    if (pipe(rp_pipe) != 0) return;
    rp_on(SIGALRM, rp_fork_handler, 0);
    fflush(stdout);
    struct itimerval it = { { 0, 0 }, { 0, 50000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    char c;
    struct timespec long_sleep = { 5, 0 };
    errno = 0;
    int r = how == RP_READ ? (int)read(rp_pipe[0], &c, 1) : nanosleep(&long_sleep, NULL);
    int e = errno;
    if (rp_forked == 0) _exit(r == -1 && e == EINTR ? 40 + rp_child_works() : 50);
    printf("parent wait: ret=%d errno=%s\n", r, en(e));
    if (rp_forked > 0) rp_show_child("child forked in a handler", rp_forked);
    close(rp_pipe[0]);
    close(rp_pipe[1]);
}

CASE(rp_fork_in_handler_during_read) { rp_fork_in_handler(RP_READ); }
CASE(rp_fork_in_handler_during_nanosleep) { rp_fork_in_handler(RP_NANOSLEEP); }

/* The same while another thread is parked too: the handler interrupts the idle wait. */
CASE(rp_fork_in_handler_while_all_wait) {
    rp_waiting = 0;
    if (pipe(rp_release) != 0) return;
    pthread_t h;
    pthread_create(&h, NULL, rp_holder, NULL);
    while (rp_waiting < 1) msleep(1);
    rp_fork_in_handler(RP_READ);
    write(rp_release[1], "r", 1);
    SHOWRC("join holder", pthread_join(h, NULL));
    close(rp_release[0]);
    close(rp_release[1]);
}

/* ---- exec failures: the process goes on, its threads and sockets as before ---- */

static int rp_sock[2];

static void *rp_sock_reader(void *arg) {
    (void)arg;
    char buf[8] = { 0 };
    ssize_t n = read(rp_sock[0], buf, sizeof buf - 1);
    printf("reader: %zd %s\n", n, buf);
    return NULL;
}

CASE(rp_exec_failures_then_threads_go_on) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, rp_sock) != 0) return;
    pthread_t t;
    pthread_create(&t, NULL, rp_sock_reader, NULL);
    msleep(10);
    char *argv[] = { "x", NULL };
    char *envp[] = { NULL };
    SHOW("execve missing", execve("/nonexistent/prog", argv, envp));
    SHOW("execve directory", execve("/tmp", argv, envp));
    SHOW("execve not executable", execve("/etc/hostname", argv, envp));
    SHOW("execv empty path", execv("", argv));
    SHOW("execvp unknown", execvp("no-such-command-greenify", argv));
    SHOW("execvpe unknown", execvpe("no-such-command-greenify", argv, envp));
    SHOW("fexecve bad fd", fexecve(-1, argv, envp));
    SHOW("execve bad pointer", execve(opaque_ptr(1), argv, envp));
    int fl = fcntl(rp_sock[0], F_GETFL);
    printf("socket O_NONBLOCK after: %d\n", (fl & O_NONBLOCK) != 0);
    ssize_t wrote = write(rp_sock[1], "after", 5);
    SHOWRC("join", pthread_join(t, NULL));
    printf("write: %zd\n", wrote);
    close(rp_sock[0]);
    close(rp_sock[1]);
}

CASE(rp_posix_spawn_failures) {
    pid_t pid = 0;
    char *argv[] = { "x", NULL };
    int r = posix_spawn(&pid, "/nonexistent/prog", NULL, NULL, argv, environ);
    printf("posix_spawn missing: %s\n", en(r));
    r = posix_spawnp(&pid, "no-such-command-greenify", NULL, NULL, argv, environ);
    printf("posix_spawnp unknown: %s\n", en(r));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 5, "/nonexistent/file", O_RDONLY, 0);
    char *sh[] = { "sh", "-c", "exit 0", NULL };
    r = posix_spawn(&pid, "/bin/sh", &fa, NULL, sh, environ);
    printf("posix_spawn failing action: %s\n", en(r));
    posix_spawn_file_actions_destroy(&fa);
    SHOW("wait after failures", wait(NULL));
}

/* ---- bad arguments ---- */

CASE(rp_waitpid_bad_arguments) {
    int st = 0;
    SHOW("waitpid any, no children", waitpid(-1, &st, 0));
    SHOW("waitpid init (not a child)", waitpid(1, &st, 0));
    SHOW("waitpid self", waitpid(getpid(), &st, 0));
    SHOW("waitpid group, no children", waitpid(0, &st, 0));
    SHOW("wait, no children", wait(&st));
    SHOW("wait4 WNOHANG, no children", wait4(-1, &st, WNOHANG, NULL));
    siginfo_t si;
    SHOW("waitid bad idtype", waitid((idtype_t)99, 0, &si, WEXITED));
    SHOW("waitid no options", waitid(P_ALL, 0, &si, 0));
    SHOW("waitid not a child", waitid(P_PID, 1, &si, WEXITED));
    pid_t pid = fork();
    if (pid == 0) {
        msleep(20);
        _exit(5);
    }
    SHOW("waitpid bad options", waitpid(pid, &st, 0x4000000));
    SHOW("waitid bad options", waitid(P_PID, pid, &si, WEXITED | 0x4000000));
    pid_t r = waitpid(pid, &st, 0);
    printf("waitpid child: same=%d exit=%d\n", r == pid, WEXITSTATUS(st));
    SHOW("waitpid reaped child", waitpid(pid, &st, 0));
    SHOW("waitpid reaped child WNOHANG", waitpid(pid, &st, WNOHANG));
}

CASE(rp_kill_sigqueue_bad_arguments) {
    union sigval v = { .sival_int = 1 };
    SHOW("kill sig 65", kill(getpid(), 65));
    SHOW("kill sig -1", kill(getpid(), -1));
    SHOW("kill no such pid", kill(4194304 + 7, 0));
    SHOW("kill self sig 0", kill(getpid(), 0));
    SHOW("sigqueue sig 65", sigqueue(getpid(), 65, v));
    SHOW("sigqueue no such pid", sigqueue(4194304 + 7, SIGUSR1, v));
    SHOWRC("pthread_kill self sig 65", pthread_kill(pthread_self(), 65));
    SHOWRC("pthread_kill self sig 0", pthread_kill(pthread_self(), 0));
    SHOWRC("pthread_sigqueue self sig 65", pthread_sigqueue(pthread_self(), 65, v));
    pthread_t t;
    pthread_create(&t, NULL, rp_return_7, NULL);
    SHOWRC("pthread_kill thread sig 65", pthread_kill(t, 65));
    SHOWRC("pthread_kill thread sig -3", pthread_kill(t, -3));
    SHOWRC("pthread_kill thread sig 0", pthread_kill(t, 0));
    SHOWRC("pthread_sigqueue thread sig 65", pthread_sigqueue(t, 65, v));
    /* glibc keeps its own signals (cancellation, setxid) from the program. */
    SHOWRC("pthread_kill thread sig 32", pthread_kill(t, 32));
    SHOWRC("pthread_kill thread sig 33", pthread_kill(t, 33));
    SHOWRC("pthread_sigqueue thread sig 32", pthread_sigqueue(t, 32, v));
    SHOWRC("join", pthread_join(t, NULL));
}

static void rp_noop(int sig) { (void)sig; }

CASE(rp_sigaction_bad_signals) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rp_noop;
    sigemptyset(&sa.sa_mask);
    int sigs[] = { SIGKILL, SIGSTOP, 0, 65, -1, 32, 33, 1000 };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char what[48];
        snprintf(what, sizeof what, "sigaction set %d", sigs[i]);
        SHOW(what, sigaction(sigs[i], &sa, NULL));
        memset(&old, 0, sizeof old);
        snprintf(what, sizeof what, "sigaction query %d", sigs[i]);
        SHOW(what, sigaction(sigs[i], NULL, &old));
        errno = 0;
        sighandler_t h = signal(sigs[i], rp_noop);
        printf("signal %d: %s errno=%s\n", sigs[i], h == SIG_ERR ? "SIG_ERR" : "ok",
               h == SIG_ERR ? en(errno) : "0");
    }
    memset(&old, 0, sizeof old);
    SHOW("sigaction query SIGKILL", sigaction(SIGKILL, NULL, &old));
    printf("SIGKILL handler default: %d\n", old.sa_handler == SIG_DFL);
}

CASE(rp_sigprocmask_bad_how) {
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    SHOW("sigprocmask how 7", sigprocmask(7, &s, &old));
    SHOW("sigprocmask how -1", sigprocmask(-1, &s, NULL));
    SHOW("sigprocmask how 7 query", sigprocmask(7, NULL, &old));
    SHOWRC("pthread_sigmask how 7", pthread_sigmask(7, &s, NULL));
    SHOWRC("pthread_sigmask how 7 query", pthread_sigmask(7, NULL, &old));
    SHOW("sigprocmask bad old", sigprocmask(SIG_BLOCK, &s, opaque_ptr(1)));
    sigprocmask(SIG_BLOCK, NULL, &old);
    printf("SIGUSR1 blocked after: %d\n", sigismember(&old, SIGUSR1));
    sigset_t all;
    sigfillset(&all);
    SHOW("block all", sigprocmask(SIG_SETMASK, &all, &old));
    sigprocmask(SIG_BLOCK, NULL, &s);
    printf("SIGKILL blocked: %d, SIGSTOP blocked: %d, SIGUSR2 blocked: %d\n",
           sigismember(&s, SIGKILL), sigismember(&s, SIGSTOP), sigismember(&s, SIGUSR2));
    sigprocmask(SIG_SETMASK, &old, NULL);
    SHOW("sigsuspend bad mask", sigsuspend(opaque_ptr(1)));
}

/* glibc reads the new set itself (to keep its own signals out): a bad pointer faults. */
CASE(rp_sigprocmask_bad_set_faults) {
    fflush(stdout);
    sigprocmask(SIG_BLOCK, opaque_ptr(1), NULL);
    printf("not reached\n");
}

/* ---- which thread runs a handler ---- */

static volatile sig_atomic_t rp_value;
static pthread_t rp_ran_in;

static void rp_info_handler(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    rp_ran_in = pthread_self();
    rp_value = info->si_code == SI_QUEUE ? info->si_value.sival_int : -1;
}

static void *rp_parked_reader(void *arg) {
    (void)arg;
    char c;
    rp_waiting = 1;
    errno = 0;
    ssize_t n = read(rp_pipe[0], &c, 1);
    int e = errno;
    printf("reader: ret=%zd errno=%s, handler ran here %d, value %d\n", n, en(e),
           pthread_equal(rp_ran_in, pthread_self()), (int)rp_value);
    return NULL;
}

static void rp_signal_parked_reader(int queue) {
    rp_waiting = 0;
    rp_value = 0;
    if (pipe(rp_pipe) != 0) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = rp_info_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, rp_parked_reader, NULL);
    while (!rp_waiting) msleep(1);
    msleep(20);
    union sigval v = { .sival_int = 77 };
    int rc = queue ? pthread_sigqueue(t, SIGUSR2, v) : pthread_kill(t, SIGUSR2);
    int join_rc = pthread_join(t, NULL);
    SHOWRC(queue ? "pthread_sigqueue" : "pthread_kill", rc);
    SHOWRC("join", join_rc);
    printf("handler ran in main: %d\n", pthread_equal(rp_ran_in, pthread_self()));
    close(rp_pipe[0]);
    close(rp_pipe[1]);
}

CASE(rp_pthread_kill_handler_runs_in_target) { rp_signal_parked_reader(0); }
CASE(rp_pthread_sigqueue_handler_runs_in_target) { rp_signal_parked_reader(1); }

static void *rp_kill_main(void *arg) {
    (void)arg;
    msleep(20);
    union sigval v = { .sival_int = 78 };
    printf("pthread_sigqueue main: %s\n", en(pthread_sigqueue(rp_self_before, SIGUSR2, v)));
    return NULL;
}

/* A thread signals main through main's pthread_t while main sleeps. */
CASE(rp_pthread_kill_main_from_thread) {
    rp_value = 0;
    rp_ran_in = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = rp_info_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    pthread_t t;
    rp_self_before = pthread_self();
    pthread_create(&t, NULL, rp_kill_main, NULL);
    struct timespec long_sleep = { 5, 0 };
    errno = 0;
    int r = nanosleep(&long_sleep, NULL);
    int e = errno;
    SHOWRC("join", pthread_join(t, NULL));
    printf("nanosleep: ret=%d errno=%s, handler ran in main %d, value %d\n", r, en(e),
           pthread_equal(rp_ran_in, pthread_self()), (int)rp_value);
}
