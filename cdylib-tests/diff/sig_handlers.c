/* Signal handlers that wait: a handler sleeps, locks a mutex, reads a pipe or waits at a
 * barrier until another thread lets it go, whichever way it was entered (pthread_kill of
 * a waiting thread, raise in running code, kill of the process, a timer); the mask inside
 * a handler that waited is the handler's, the other threads' stay theirs, and a jump out
 * of it leaves the mask sigsetjmp saved (or the handler's, without one); the process dies
 * of a SIGTERM that some thread accepts, whatever the running thread or handler blocks.
 * No handler prints: it records, and the thread prints after. */
#include "case.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/time.h>

/* By SIGKILL: SIGTERM may be what hangs a case. No case comes near this natively. */
KILL_IF_HUNG_AFTER(10);

static volatile sig_atomic_t in_handler, released, handler_done;

static void install_mask(int sig, void (*fn)(int), int flags, const int *blocked) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    for (; blocked && *blocked; blocked++) sigaddset(&sa.sa_mask, *blocked);
    sigaction(sig, &sa, NULL);
    in_handler = released = handler_done = 0;
}

static void install(int sig, void (*fn)(int)) { install_mask(sig, fn, 0, NULL); }

/* Waits (sleeping: natively this thread must not spin) until `flag` is set. */
static void wait_for(volatile sig_atomic_t *flag) {
    while (!*flag) msleep(2);
}

/* The signals of interest a mask blocks, as text. */
static const char *mask_text(const sigset_t *m) {
    static char buf[64];
    static const struct { int sig; const char *name; } sigs[] = {
        { SIGHUP, "HUP" }, { SIGUSR1, "USR1" }, { SIGUSR2, "USR2" }, { SIGTERM, "TERM" },
        { SIGALRM, "ALRM" },
    };
    buf[0] = 0;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (sigismember(m, sigs[i].sig)) {
            strcat(buf, " ");
            strcat(buf, sigs[i].name);
        }
    }
    return buf[0] ? buf + 1 : "-";
}

static const char *my_mask(void) {
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return mask_text(&m);
}

static pthread_t spawn(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg)) { printf("pthread_create failed\n"); exit(1); }
    return t;
}

static void block(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/* ---- a handler that sleeps until another thread lets it go (LTP pthread_barrier_wait/3-2) */

static void sleep_until_released(int sig) {
    (void)sig;
    in_handler = 1;
    struct timespec ts = { 0, 5000000 };
    while (!released) nanosleep(&ts, NULL);
    handler_done = 1;
}

static pthread_barrier_t barrier;

static void *barrier_waiter(void *arg) {
    (void)arg;
    int rc = pthread_barrier_wait(&barrier);
    printf("thread: barrier %s, handler done %d\n",
           rc == PTHREAD_BARRIER_SERIAL_THREAD ? "serial" : rc ? en(rc) : "0", (int)handler_done);
    return NULL;
}

/* Main passes the barrier while the waiting thread's handler still sleeps. */
CASE(handler_sleeps_while_main_passes_barrier) {
    install(SIGUSR1, sleep_until_released);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t t = spawn(barrier_waiter, NULL);
    msleep(50);
    SHOWRC("pthread_kill", pthread_kill(t, SIGUSR1));
    wait_for(&in_handler);
    int rc = pthread_barrier_wait(&barrier);
    printf("main: barrier %s\n", rc == PTHREAD_BARRIER_SERIAL_THREAD ? "serial" : en(rc));
    released = 1;
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
}

static void *raise_then_report(void *arg) {
    (void)arg;
    raise(SIGUSR1);
    printf("thread: after raise, handler done %d\n", (int)handler_done);
    return NULL;
}

/* Entered at once in running code (raise), the handler sleeps while main runs. */
CASE(handler_from_raise_sleeps_while_main_runs) {
    install(SIGUSR1, sleep_until_released);
    pthread_t t = spawn(raise_then_report, NULL);
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
}

static void *kill_self_then_report(void *arg) {
    if (arg) {
        tgkill(getpid(), gettid(), SIGUSR1);
    } else {
        pthread_kill(pthread_self(), SIGUSR1);
    }
    printf("thread: after the call, handler done %d\n", (int)handler_done);
    return NULL;
}

/* Sent to itself through a hooked call, the handler sleeps while main runs. */
CASE(handler_from_pthread_kill_self_sleeps_while_main_runs) {
    install(SIGUSR1, sleep_until_released);
    pthread_t t = spawn(kill_self_then_report, NULL);
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
}

CASE(handler_from_tgkill_self_sleeps_while_main_runs) {
    install(SIGUSR1, sleep_until_released);
    pthread_t t = spawn(kill_self_then_report, (void *)1);
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
}

static volatile pid_t sleeper_tid;

static void *note_tid_and_sleep(void *arg) {
    (void)arg;
    sleeper_tid = gettid();
    while (!handler_done) msleep(2);
    printf("thread: handler done\n");
    return NULL;
}

/* tgkill from main to a thread's id: its handler sleeps while main runs. */
CASE(handler_from_tgkill_sleeps_while_main_runs) {
    install(SIGUSR1, sleep_until_released);
    sleeper_tid = 0;
    pthread_t t = spawn(note_tid_and_sleep, NULL);
    while (!sleeper_tid) msleep(2);
    SHOW("tgkill", tgkill(getpid(), sleeper_tid, SIGUSR1));
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
}

static int pipe_fds[2];

static void *read_pipe_and_report(void *arg) {
    (void)arg;
    char b[8];
    ssize_t r = read(pipe_fds[0], b, sizeof b);
    printf("thread: read %zd (%s), handler done %d\n", r, r == -1 ? en(errno) : "0", (int)handler_done);
    return NULL;
}

/* kill() to the process: the kernel picks the thread that does not block the signal, a
 * thread parked in read; its handler sleeps while main goes on. */
CASE(handler_from_kill_sleeps_while_main_runs) {
    install(SIGUSR1, sleep_until_released);
    pipe(pipe_fds);
    block(SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setsigmask_np(&a, &none);
    pthread_t t;
    pthread_create(&t, &a, read_pipe_and_report, NULL);
    msleep(50);
    SHOW("kill", kill(getpid(), SIGUSR1));
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

static void *spin_under_timer(void *arg) {
    (void)arg;
    struct itimerval it = { { 0, 0 }, { 0, 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    while (!handler_done) { /* running code: the timer's handler runs here, at once */ }
    printf("thread: spin ended by the handler\n");
    return NULL;
}

/* A timer's signal (main blocks it) interrupts a thread running code; its handler sleeps
 * while main runs. */
CASE(handler_from_timer_sleeps_while_main_runs) {
    install(SIGALRM, sleep_until_released);
    block(SIGALRM);
    sigset_t none;
    sigemptyset(&none);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setsigmask_np(&a, &none);
    pthread_t t;
    pthread_create(&t, &a, spin_under_timer, NULL);
    wait_for(&in_handler);
    printf("main: runs while the handler sleeps\n");
    released = 1;
    pthread_join(t, NULL);
}

static void note_handled(int sig) {
    (void)sig;
    handler_done = 1;
}

/* Sleeps 2 s under a timer of its own aimed at itself (SIGEV_THREAD_ID) that fires in
 * 20 ms: the handler runs and the sleep ends with EINTR. */
static void *sleep_under_own_timer(void *arg) {
    (void)arg;
    handler_done = 0;
    timer_t timer;
    signal_thread_in((pid_t)syscall(SYS_gettid), SIGUSR1, 20000000, &timer);
    struct timespec two_seconds = { 2, 0 };
    double start = now_ms();
    errno = 0;
    int r = nanosleep(&two_seconds, NULL);
    int e = errno;
    double slept = now_ms() - start;
    timer_delete(timer);
    printf("thread: nanosleep %d %s, handled %d, %s\n", r, r ? en(e) : "0", (int)handler_done,
           timing(slept, 20));
    return NULL;
}

/* A thread's timer aimed at itself ends its sleep, on whichever worker it sleeps (four
 * threads in turn: a new thread may start on any). Greenified with 2 workers, the timer
 * signalled the OS thread that created it, an idle worker other than the first, which
 * blocks every signal: the handler ran only as the 2 s sleep ended. */
CASE(thread_timer_aimed_at_itself_ends_its_sleep_on_any_worker) {
    install(SIGUSR1, note_handled);
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, sleep_under_own_timer, NULL);
        pthread_join(t, NULL);
    }
}

/* ---- a handler that locks a mutex another thread holds, or reads a pipe it writes */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t main_unlocked, seen_unlocked;
static char handler_read[8];

static void lock_in_handler(int sig) {
    (void)sig;
    in_handler = 1;
    pthread_mutex_lock(&lock);
    seen_unlocked = main_unlocked;
    pthread_mutex_unlock(&lock);
    handler_done = 1;
}

static void read_in_handler(int sig) {
    (void)sig;
    in_handler = 1;
    ssize_t r = read(pipe_fds[0], handler_read, sizeof handler_read - 1);
    if (r > 0) handler_read[r] = 0;
    handler_done = 1;
}

static void *sleep_until_handled(void *arg) {
    (void)arg;
    while (!handler_done) msleep(2);
    printf("thread: handler done\n");
    return NULL;
}

CASE(handler_locks_mutex_main_holds) {
    install(SIGUSR1, lock_in_handler);
    main_unlocked = 0;
    pthread_mutex_lock(&lock);
    pthread_t t = spawn(sleep_until_handled, NULL);
    pthread_kill(t, SIGUSR1);
    wait_for(&in_handler);
    msleep(20);
    main_unlocked = 1;
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    printf("handler got the lock after main let it go: %d\n", (int)seen_unlocked);
}

CASE(handler_reads_pipe_main_writes) {
    install(SIGUSR1, read_in_handler);
    pipe(pipe_fds);
    pthread_t t = spawn(sleep_until_handled, NULL);
    pthread_kill(t, SIGUSR1);
    wait_for(&in_handler);
    msleep(20);
    ssize_t w = write(pipe_fds[1], "hello", 5);
    pthread_join(t, NULL);
    printf("main wrote %zd\n", w);
    printf("handler read \"%s\"\n", handler_read);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* ---- the mask while a handler waits */

static char mask_before_park[64], mask_after_park[64];

static void record_masks(int sig) {
    (void)sig;
    strcpy(mask_before_park, my_mask());
    in_handler = 1;
    wait_for(&released);
    strcpy(mask_after_park, my_mask());
    handler_done = 1;
}

static const int usr2_term[] = { SIGUSR2, SIGTERM, 0 };

/* The thread printed its mask before the handler: main signals it only then. */
static volatile sig_atomic_t masks_printed;

static void *masks_around_handler(void *arg) {
    printf("thread before: %s\n", my_mask());
    masks_printed = 1;
    if (arg) {
        raise(SIGUSR1);
    } else {
        while (!handler_done) msleep(2);
    }
    printf("thread after: %s\n", my_mask());
    return NULL;
}

static void masks_case(int flags, int by_raise) {
    install_mask(SIGUSR1, record_masks, flags, usr2_term);
    masks_printed = 0;
    pthread_t t = spawn(masks_around_handler, by_raise ? (void *)1 : NULL);
    if (!by_raise) {
        wait_for(&masks_printed);
        pthread_kill(t, SIGUSR1);
    }
    wait_for(&in_handler);
    printf("main while the handler waits: %s\n", my_mask());
    released = 1;
    pthread_join(t, NULL);
    printf("handler: before its wait: %s; after: %s\n", mask_before_park, mask_after_park);
    printf("main after: %s\n", my_mask());
}

CASE(handler_mask_kept_across_wait_pthread_kill) { masks_case(0, 0); }
CASE(handler_mask_kept_across_wait_raise) { masks_case(0, 1); }
CASE(handler_mask_kept_across_wait_nodefer) { masks_case(SA_NODEFER, 0); }

/* ---- jumping out of a handler that waited */

static sigjmp_buf jump;
/* The jump target is set: before it, natively, a handler's siglongjmp crashed. */
static volatile sig_atomic_t jump_set;

static void wait_then_jump(int sig) {
    (void)sig;
    in_handler = 1;
    wait_for(&released);
    siglongjmp(jump, 1);
}

struct jump_how { int save; int by_raise; };

static void *jump_target(void *arg) {
    struct jump_how *how = arg;
    block(SIGHUP);
    if (sigsetjmp(jump, how->save) == 0) {
        jump_set = 1;
        if (how->by_raise) {
            raise(SIGUSR1);
        } else {
            for (;;) msleep(2);
        }
        printf("thread: not jumped\n");
        return NULL;
    }
    printf("thread jumped out: %s\n", my_mask());
    msleep(5);
    printf("thread after a wait: %s\n", my_mask());
    return NULL;
}

static void jump_case(int save, int by_raise) {
    static const int usr2[] = { SIGUSR2, 0 };
    install_mask(SIGUSR1, wait_then_jump, 0, usr2);
    jump_set = 0;
    struct jump_how how = { save, by_raise };
    pthread_t t = spawn(jump_target, &how);
    if (!by_raise) {
        wait_for(&jump_set);
        pthread_kill(t, SIGUSR1);
    }
    wait_for(&in_handler);
    printf("main while the handler waits: %s\n", my_mask());
    released = 1;
    pthread_join(t, NULL);
    printf("main after: %s\n", my_mask());
}

CASE(handler_waits_then_siglongjmp_pthread_kill) { jump_case(1, 0); }
CASE(handler_waits_then_siglongjmp_raise) { jump_case(1, 1); }
CASE(handler_waits_then_longjmp_keeps_handler_mask) { jump_case(0, 0); }
CASE(handler_waits_then_longjmp_keeps_handler_mask_raise) { jump_case(0, 1); }

/* ---- the process stays killable */

static void *block_term_kill_and_yield(void *arg) {
    (void)arg;
    block(SIGTERM);
    printf("thread: kill(SIGTERM) while blocking it\n");
    kill(getpid(), SIGTERM);
    for (;;) sched_yield();
    return NULL;
}

/* The running thread blocks SIGTERM and never waits; main, parked, accepts it. */
CASE(sigterm_while_running_thread_blocks_it) {
    pthread_t t = spawn(block_term_kill_and_yield, NULL);
    pthread_join(t, NULL);
    printf("main: not killed\n");
}

static const int term_only[] = { SIGTERM, 0 };

static void kill_and_sleep(int sig) {
    (void)sig;
    kill(getpid(), SIGTERM);
    for (;;) msleep(5);
}

static void kill_and_yield(int sig) {
    (void)sig;
    kill(getpid(), SIGTERM);
    for (;;) sched_yield();
}

static void *raise_usr1(void *arg) {
    (void)arg;
    raise(SIGUSR1);
    printf("thread: handler returned\n");
    return NULL;
}

static void *sleep_forever(void *arg) {
    (void)arg;
    for (;;) msleep(5);
    return NULL;
}

/* A handler with SIGTERM in its sa_mask sends SIGTERM and waits; main accepts it. */
static void term_in_handler_case(void (*handler)(int), int by_raise) {
    install_mask(SIGUSR1, handler, 0, term_only);
    /* Before the thread exists: natively SIGTERM may come at once after. */
    printf("main: starts the thread\n");
    pthread_t t = spawn(by_raise ? raise_usr1 : sleep_forever, NULL);
    if (!by_raise) {
        msleep(20);
        pthread_kill(t, SIGUSR1);
    }
    pthread_join(t, NULL);
    printf("main: not killed\n");
}

CASE(sigterm_while_handler_blocks_it_sleeping_raise) { term_in_handler_case(kill_and_sleep, 1); }
CASE(sigterm_while_handler_blocks_it_sleeping_pthread_kill) { term_in_handler_case(kill_and_sleep, 0); }
CASE(sigterm_while_handler_blocks_it_yielding_raise) { term_in_handler_case(kill_and_yield, 1); }

/* ---- a handler that waits on an alternate signal stack */

static volatile sig_atomic_t other_ran;

static void fill_and_check(int sig) {
    volatile char buf[2000];
    memset((char *)buf, sig, sizeof buf);
    if (sig == SIGUSR1) {
        in_handler = 1;
        wait_for(&released);
    } else {
        other_ran = 1;
    }
    int intact = 1;
    for (size_t i = 0; i < sizeof buf; i++) intact &= buf[i] == sig;
    if (!intact) handler_done = -1;
}

static void *raise_on_altstack(void *arg) {
    stack_t ss = { malloc(65536), 0, 65536 };
    sigaltstack(&ss, NULL);
    raise((int)(long)arg);
    return NULL;
}

/* Raises again and again, parking between raises: it runs on every worker in turn. */
static void *raise_often_on_altstack(void *arg) {
    (void)arg;
    stack_t ss = { malloc(65536), 0, 65536 };
    sigaltstack(&ss, NULL);
    for (int i = 0; i < 20; i++) {
        raise(SIGUSR2);
        msleep(1);
    }
    return NULL;
}

/* Each thread has its own alternate stack natively; greenified, the kernel runs every
 * SA_ONSTACK handler on the alternate stack of the OS thread it comes on: while one
 * waits, other threads' handlers run there too (several raisers, so that some come on
 * the waiting one's OS thread whatever the number of workers). */
#define ALT_RAISERS 4
CASE(handler_on_altstack_waits_while_another_runs_there) {
    install_mask(SIGUSR1, fill_and_check, SA_ONSTACK, NULL);
    install_mask(SIGUSR2, fill_and_check, SA_ONSTACK, NULL);
    other_ran = 0;
    pthread_t t1 = spawn(raise_on_altstack, (void *)(long)SIGUSR1);
    wait_for(&in_handler);
    pthread_t others[ALT_RAISERS];
    for (int i = 0; i < ALT_RAISERS; i++) others[i] = spawn(raise_often_on_altstack, NULL);
    for (int i = 0; i < ALT_RAISERS; i++) pthread_join(others[i], NULL);
    released = 1;
    pthread_join(t1, NULL);
    printf("other handlers ran %d, frames intact %d\n", (int)other_ran, handler_done != -1);
}

/* ---- real-time signals: each instance queued, its handler run once per instance, in
 * order, with its own value (sigqueue), also past the 32 interruptions greenify keeps */

static volatile int rt_values[64], rt_count;
static int rt_pipe[2];

static void record_value(int sig, siginfo_t *si, void *context) {
    (void)sig;
    (void)context;
    if (rt_count < 64) rt_values[rt_count] = si->si_value.sival_int;
    rt_count++;
}

static void install_record_value(void) {
    set_info_handler(SIGRTMIN, record_value, 0);
    rt_count = 0;
}

static void *read_with_rt_unblocked(void *arg) {
    (void)arg;
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    pthread_sigmask(SIG_UNBLOCK, &rt, NULL);
    char c;
    while (read(rt_pipe[0], &c, 1) != 1) {
    }
    return NULL;
}

static void rt_queue_case(int count) {
    install_record_value();
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    pthread_sigmask(SIG_BLOCK, &rt, NULL);
    pipe(rt_pipe);
    pthread_t t = spawn(read_with_rt_unblocked, NULL);
    msleep(20);
    /* Process-directed: only the reader accepts them. */
    for (int i = 0; i < count; i++) {
        union sigval v = { .sival_int = 100 + i };
        if (sigqueue(getpid(), SIGRTMIN, v) != 0) printf("sigqueue %d: %s\n", i, en(errno));
    }
    msleep(20);
    write(rt_pipe[1], "x", 1);
    pthread_join(t, NULL);
    printf("handler ran %d times; values in order:", (int)rt_count);
    int in_order = 1;
    for (int i = 0; i < rt_count && i < 64; i++) in_order &= rt_values[i] == 100 + i;
    printf(" %s\n", in_order ? "yes" : "no");
    for (int i = 0; i < rt_count && i < 64; i++) printf("%d ", rt_values[i]);
    printf("\n");
    pthread_sigmask(SIG_UNBLOCK, &rt, NULL);
    close(rt_pipe[0]);
    close(rt_pipe[1]);
}

CASE(rt_signals_queued_each_run_with_its_value) { rt_queue_case(5); }
CASE(rt_signals_queued_past_32_each_run_with_its_value) { rt_queue_case(40); }

/* Aimed at one thread with pthread_sigqueue: each instance runs the handler in that
 * thread, with its value. */
CASE(rt_signals_aimed_at_a_thread_each_run_with_its_value) {
    install_record_value();
    pipe(rt_pipe);
    pthread_t t = spawn(read_with_rt_unblocked, NULL);
    msleep(20);
    for (int i = 0; i < 5; i++) {
        union sigval v = { .sival_int = 100 + i };
        pthread_sigqueue(t, SIGRTMIN, v);
    }
    msleep(20);
    write(rt_pipe[1], "x", 1);
    pthread_join(t, NULL);
    printf("handler ran %d times:", (int)rt_count);
    for (int i = 0; i < rt_count && i < 64; i++) printf(" %d", rt_values[i]);
    printf("\n");
    close(rt_pipe[0]);
    close(rt_pipe[1]);
}

/* pthread_kill from a thread that blocks the signal: its handler runs in the target, which
 * accepts it, not in the sender nor in another thread that accepts it too. */
static pthread_t usr1_readers[2];
static volatile int usr1_ran_in = -1;

static void note_thread(int sig) {
    (void)sig;
    pthread_t me = pthread_self();
    usr1_ran_in = pthread_equal(me, usr1_readers[0]) ? 0 : pthread_equal(me, usr1_readers[1]) ? 1 : 2;
}

static int usr1_pipes[2][2];

static void *read_with_usr1_unblocked(void *arg) {
    int me = (int)(long)arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    char c;
    while (read(usr1_pipes[me][0], &c, 1) != 1) {
    }
    return NULL;
}

CASE(pthread_kill_from_a_thread_blocking_it_runs_in_the_target) {
    install(SIGUSR1, note_thread);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pipe(usr1_pipes[0]);
    pipe(usr1_pipes[1]);
    usr1_readers[0] = spawn(read_with_usr1_unblocked, (void *)0L);
    usr1_readers[1] = spawn(read_with_usr1_unblocked, (void *)1L);
    msleep(20);
    pthread_kill(usr1_readers[1], SIGUSR1);
    msleep(20);
    write(usr1_pipes[0][1], "x", 1);
    write(usr1_pipes[1][1], "x", 1);
    pthread_join(usr1_readers[0], NULL);
    pthread_join(usr1_readers[1], NULL);
    const char *names[] = { "the first reader", "the target", "another thread" };
    printf("handler ran in %s\n", usr1_ran_in < 0 ? "no thread" : names[usr1_ran_in]);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
}
