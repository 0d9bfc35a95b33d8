/* The main thread as it waits and wakes while other threads compute: with several workers
 * greenify runs it on whichever worker is free, so it resumes on other OS threads than the
 * process's first (cdylib-tests/tests/main_moves.rs shows that it does). Natively it
 * never moves; everything the program sees of it must stay the same: its ids, its TLS,
 * pthread_exit, fork, and the signals sent to its thread id. */
#include "case.h"
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

KILL_IF_HUNG_AFTER(30);

static volatile int stop;

/* Computes until `stop`, keeping the workers busy, so that the main thread's wakes find
 * some other worker free first. */
static void *spin(void *p) {
    (void)p;
    while (!stop) {}
    return NULL;
}

#define SPINNERS 2
static pthread_t spinners[SPINNERS];

static void start_spinners(void) {
    stop = 0;
    for (int i = 0; i < SPINNERS; i++) pthread_create(&spinners[i], NULL, spin, NULL);
}

static void stop_spinners(void) {
    stop = 1;
    for (int i = 0; i < SPINNERS; i++) pthread_join(spinners[i], NULL);
}

static __thread long tls_value = 7;

/* Many short waits, each of which may end on another OS thread: the thread's id, handle,
 * TLS (address and value) and errno stay its own. */
CASE(main_moves_keeps_its_identity) {
    start_spinners();
    pid_t pid = getpid();
    pthread_t self = pthread_self();
    long *tls_at = &tls_value;
    int kept = 0;
    for (int i = 0; i < 200; i++) {
        tls_value = i;
        errno = 0;
        usleep(200);
        int ok = errno == 0 && gettid() == pid && pthread_equal(pthread_self(), self) &&
                 &tls_value == tls_at && tls_value == i &&
                 syscall(SYS_gettid) == pid;
        errno = EDOM;
        sched_yield();
        kept += ok && errno == EDOM;
    }
    stop_spinners();
    printf("identity kept %d of 200\n", kept);
}

/* Its name (prctl and pthread_getname_np, both of which name the calling thread) stays
 * its own wherever it resumes, and a rename there is its own too. */
CASE(main_moves_keeps_its_name) {
    prctl(PR_SET_NAME, "moving-main");
    start_spinners();
    int kept = 0;
    for (int i = 0; i < 100; i++) {
        usleep(200);
        char by_prctl[16] = "", by_pthread[16] = "";
        prctl(PR_GET_NAME, by_prctl);
        pthread_getname_np(pthread_self(), by_pthread, sizeof by_pthread);
        kept += !strcmp(by_prctl, i < 50 ? "moving-main" : "renamed-main") &&
                !strcmp(by_pthread, by_prctl);
        if (i == 49) pthread_setname_np(pthread_self(), "renamed-main");
    }
    stop_spinners();
    char at_end[16] = "";
    prctl(PR_GET_NAME, at_end);
    printf("name kept %d of 100, at the end \"%s\"\n", kept, at_end);
}

static int exit_pipe[2];

/* Outlives main by a few waits, then reports and ends the process (the last thread's
 * end: status 0). */
static void *outlive_main(void *p) {
    (void)p;
    char c;
    /* main writes before it exits: read it, then let it be gone for a while. */
    if (read(exit_pipe[0], &c, 1) != 1) printf("no byte from main\n");
    for (int i = 0; i < 20; i++) usleep(500);
    stop_spinners();
    printf("last thread: main had written '%c'\n", c);
    return NULL;
}

/* main calls pthread_exit while other threads run (after waits that may have moved it):
 * the process lives on until the last thread ends, then exits with status 0. */
CASE(main_moves_then_pthread_exits) {
    pipe(exit_pipe);
    start_spinners();
    for (int i = 0; i < 50; i++) usleep(200);
    pthread_t t;
    pthread_create(&t, NULL, outlive_main, NULL);
    printf("main exits\n");
    (void)!write(exit_pipe[1], "m", 1);
    pthread_exit(NULL);
}

static void *child_thread(void *p) {
    int *fd = p;
    (void)!write(*fd, "c", 1);
    return NULL;
}

/* main forks after waits that may have moved it: in each child it is the only thread, and
 * runs a thread of its own, then exits with its number. */
CASE(main_moves_and_forks) {
    start_spinners();
    int good = 0;
    for (int i = 0; i < 10; i++) {
        for (int k = 0; k < 5; k++) usleep(200);
        pid_t child = fork();
        if (child == 0) {
            int p[2];
            pipe(p);
            pthread_t t;
            pthread_create(&t, NULL, child_thread, &p[1]);
            char c = 0;
            int r = read(p[0], &c, 1);
            pthread_join(t, NULL);
            usleep(100);
            _exit(r == 1 && c == 'c' && getpid() == gettid() ? 10 + i : 1);
        }
        int status = 0;
        waitpid(child, &status, 0);
        good += WIFEXITED(status) && WEXITSTATUS(status) == 10 + i;
    }
    stop_spinners();
    printf("children that ran their thread: %d of 10\n", good);
}

static volatile sig_atomic_t handled, handled_in_main;
static pthread_t main_self;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
    handled_in_main = gettid() == getpid() && pthread_equal(pthread_self(), main_self);
}

/* Another process sends a signal to the main thread's id (tgkill(pid, pid)) while main
 * waits in sigsuspend and other threads compute: the handler runs in main, and ends its
 * wait. SIGUSR1 is blocked until the wait, so it is pending until then whenever it comes. */
static void signal_from_outside(int how) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    main_self = pthread_self();
    handled = handled_in_main = 0;
    /* The computing threads accept it (created before it is blocked): only its being sent
     * to main's id sends it to main. Unless `how` is a kill: then they block it, and main
     * is the thread that accepts it. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    if (how == 1) pthread_sigmask(SIG_BLOCK, &usr1, &old);
    start_spinners();
    if (how == 0) pthread_sigmask(SIG_BLOCK, &usr1, &old);
    for (int i = 0; i < 20; i++) usleep(200);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        if (how == 0) syscall(SYS_tgkill, parent, parent, SIGUSR1);
        else kill(parent, SIGUSR1);
        _exit(0);
    }
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGUSR1);
    errno = 0;
    SHOW("sigsuspend", sigsuspend(&wait_mask));
    waitpid(child, NULL, 0);
    stop_spinners();
    printf("handled %d, in main: %s\n", (int)handled, handled_in_main ? "yes" : "no");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

CASE(main_moves_gets_a_signal_sent_to_its_tid) { signal_from_outside(0); }

CASE(main_moves_gets_a_process_signal_others_block) { signal_from_outside(1); }

static volatile sig_atomic_t child_handled;
static void on_usr2(int sig) { (void)sig; child_handled = 1; }

/* main forks after waits that may have moved it; each child waits in sigsuspend, with
 * nothing else to run, for the signal its parent sends: the child's only OS thread
 * accepts it while it waits, whichever OS thread of the parent forked it. */
CASE(main_moves_forks_and_the_child_waits_for_a_signal) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t usr2, old;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, &old);
    start_spinners();
    int good = 0;
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 5; k++) usleep(200);
        int ready[2];
        pipe(ready);
        pid_t child = fork();
        if (child == 0) {
            alarm(10); /* a child that never gets its signal dies visibly */
            (void)!write(ready[1], "r", 1);
            sigset_t wait_mask = old;
            sigdelset(&wait_mask, SIGUSR2);
            int r = sigsuspend(&wait_mask);
            _exit(r == -1 && errno == EINTR && child_handled ? 20 + i : 1);
        }
        char c;
        (void)!read(ready[0], &c, 1);
        close(ready[0]);
        close(ready[1]);
        /* The child may not wait yet: the signal stays pending (blocked) until it does. */
        kill(child, SIGUSR2);
        int status = 0;
        waitpid(child, &status, 0);
        good += WIFEXITED(status) && WEXITSTATUS(status) == 20 + i;
    }
    stop_spinners();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    printf("children that took their signal: %d of 6\n", good);
}

static volatile sig_atomic_t self_kills;
static void on_self_kill(int sig) { (void)sig; self_kills++; }

/* main signals its own process after waits that may have moved it: it accepts the
 * signal, so the kernel delivers it to main, whose handler runs before kill returns. */
CASE(main_moves_and_signals_its_own_process) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_self_kill;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    start_spinners();
    int before_return = 0;
    for (int i = 0; i < 50; i++) {
        usleep(200);
        int seen = self_kills;
        kill(getpid(), SIGUSR1);
        before_return += self_kills == seen + 1;
    }
    stop_spinners();
    printf("handled before kill returned: %d of 50\n", before_return);
}

static atomic_int spare_main_word, spare_main_waits, spare_spin_stop, spare_spinner_parks,
    spare_end;
static _Atomic double spare_woken_at;

/* Wakes main, then blocks its OS thread in the kernel twice, waking main once more in
 * between (as InnoDB's completion thread between its io_uring_enter calls): greenified, a
 * spare takes its worker's role, and the thread, seen to run on after its first wake,
 * has the next one queued at once (not left to run next on its worker). */
static void *spare_completions(void *arg) {
    (void)arg;
    while (!atomic_load(&spare_main_waits)) usleep(1000);
    usleep(20000);
    atomic_store(&spare_main_word, 1);
    syscall(SYS_futex, &spare_main_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    raw_select_us(250000);
    atomic_store(&spare_woken_at, now_ms());
    atomic_store(&spare_main_word, 2);
    syscall(SYS_futex, &spare_main_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    raw_select_us(600000);
    return NULL;
}

/* Keeps its worker busy until told, then waits for the end. */
static void *spare_spinner(void *arg) {
    (void)arg;
    while (!atomic_load(&spare_spin_stop)) {}
    atomic_store(&spare_spinner_parks, 1);
    while (!atomic_load(&spare_end))
        syscall(SYS_futex, &spare_end, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

/* main is woken while the worker it last ran on is a spare standing in for a worker stuck
 * in a call no hook sees, and the other worker waits idle: natively it runs at once. Its
 * short sleeps meanwhile end on the spare (the only idle worker: the other computes), and
 * the spare sleeps idle after its last one while the other worker, idle too by then,
 * polls. A spare that could not run main was woken alone for it, and main waited for the
 * stuck call's end: 7 runs of 10 before spares ran main (MariaDB's accepting main thread
 * hung ready, a spare standing in for the worker in io_uring_enter, in 4 runs of 45). */
CASE(main_moves_woken_on_a_spare_runs_at_once) {
    pthread_t completions, spinner;
    pthread_create(&completions, NULL, spare_completions, NULL);
    pthread_create(&spinner, NULL, spare_spinner, NULL);
    atomic_store(&spare_main_waits, 1);
    while (atomic_load(&spare_main_word) == 0)
        syscall(SYS_futex, &spare_main_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    for (int i = 0; i < 20; i++) usleep(5000);
    atomic_store(&spare_spin_stop, 1);
    while (!atomic_load(&spare_spinner_parks)) {}
    /* Computes 2 ms, so that the other worker goes idle (and polls) before main waits. */
    for (double until = now_ms() + 2; now_ms() < until;) {}
    double waits_from = now_ms();
    while (atomic_load(&spare_main_word) == 1)
        syscall(SYS_futex, &spare_main_word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
    /* From its wake, or from its wait if it came later (a loaded machine). */
    double woken = atomic_load(&spare_woken_at);
    double late = now_ms() - (woken > waits_from ? woken : waits_from);
    printf("main ran within 200 ms of its wake: %s\n", late < 200 ? "yes" : "no");
    atomic_store(&spare_end, 1);
    syscall(SYS_futex, &spare_end, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(spinner, NULL);
    pthread_join(completions, NULL);
}
