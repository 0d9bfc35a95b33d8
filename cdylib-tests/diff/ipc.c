/* Message queues (POSIX and SysV), SysV semaphores, NSS lookups and the resolver.
 * The waits are ended by another thread: were the call to block the OS thread, that
 * green thread could never run (a hang); tickers show other threads ran meanwhile. */
#include "case.h"
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <resolv.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>

/* What the helper thread's call returned, printed by the main thread after the join (the
 * two threads' prints would race). */
static char thread_out[256];
#define TSHOW(what, expr)                                                              \
    do {                                                                               \
        errno = 0;                                                                     \
        long tshow_r_ = (long)(expr);                                                  \
        int tshow_e_ = errno;                                                          \
        snprintf(thread_out, sizeof thread_out, "  (thread) %s: ret=%ld errno=%s\n", what, \
                 tshow_r_, tshow_r_ == -1 ? en(tshow_e_) : "0");                       \
    } while (0)

static void join_show(struct after *a) {
    after_join(a);
    fputs(thread_out, stdout);
    thread_out[0] = 0;
}

/* ---- POSIX message queues ---- */

static char mq_name[64];

static mqd_t mq_make(int flags, long maxmsg, long msgsize) {
    snprintf(mq_name, sizeof mq_name, "/greenify-ipc-%d", (int)getpid());
    mq_unlink(mq_name);
    struct mq_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.mq_maxmsg = maxmsg;
    attr.mq_msgsize = msgsize;
    mqd_t q = mq_open(mq_name, O_CREAT | O_EXCL | flags, 0600, &attr);
    if (q == (mqd_t)-1) {
        printf("mq_open failed: %s\n", en(errno));
        exit(1);
    }
    return q;
}

static void mq_done(mqd_t q) {
    mq_close(q);
    mq_unlink(mq_name);
}

static struct timespec realtime_in(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Counts while the main thread waits: greenified, only if the wait parks. */
static volatile int ticks, ticking;
static pthread_t ticker_thread;

static void *ticker(void *arg) {
    (void)arg;
    while (ticking) {
        msleep(5);
        ticks++;
    }
    return NULL;
}

static void ticker_start(void) {
    ticks = 0;
    ticking = 1;
    pthread_create(&ticker_thread, NULL, ticker, NULL);
    msleep(1);
}

static int ticker_stop(void) {
    ticking = 0;
    pthread_join(ticker_thread, NULL);
    return ticks;
}

static void mq_send_x(int q) { TSHOW("mq_send", mq_send(q, "hello", 5, 3)); }

static void mq_receive_one(int q) {
    char b[64];
    TSHOW("mq_receive", mq_receive(q, b, sizeof b, NULL));
}

CASE(ipc_mq_receive_waits_for_sender) {
    mqd_t q = mq_make(O_RDWR, 4, 32);
    double t0 = now_ms();
    struct after *a = after(40, mq_send_x, q);
    char b[64];
    unsigned prio = 0;
    ssize_t n = mq_receive(q, b, sizeof b, &prio);
    printf("mq_receive: ret=%zd data=%.*s prio=%u time=%s\n", n, n > 0 ? (int)n : 0, b, prio,
           timing(now_ms() - t0, 40));
    join_show(a);
    mq_done(q);
}

CASE(ipc_mq_send_waits_for_room) {
    mqd_t q = mq_make(O_RDWR, 1, 32);
    SHOW("mq_send fills", mq_send(q, "one", 3, 1));
    double t0 = now_ms();
    struct after *a = after(40, mq_receive_one, q);
    SHOW("mq_send waits", mq_send(q, "two", 3, 2));
    printf("time=%s\n", timing(now_ms() - t0, 40));
    join_show(a);
    char b[64];
    unsigned prio = 0;
    ssize_t n = mq_receive(q, b, sizeof b, &prio);
    printf("left: %.*s prio=%u\n", n > 0 ? (int)n : 0, b, prio);
    mq_done(q);
}

CASE(ipc_mq_timed_timeouts_while_others_run) {
    mqd_t q = mq_make(O_RDWR, 1, 32);
    char b[64];
    ticker_start();
    struct timespec until = realtime_in(80);
    double t0 = now_ms();
    SHOW("mq_timedreceive empty", mq_timedreceive(q, b, sizeof b, NULL, &until));
    printf("time=%s\n", timing(now_ms() - t0, 80));
    SHOW("mq_send", mq_send(q, "x", 1, 0));
    until = realtime_in(80);
    t0 = now_ms();
    SHOW("mq_timedsend full", mq_timedsend(q, "y", 1, 0, &until));
    printf("time=%s\n", timing(now_ms() - t0, 80));
    printf("the other thread ran during the waits: %d\n", ticker_stop() >= 10);
    mq_done(q);
}

CASE(ipc_mq_timed_past_timeout) {
    mqd_t q = mq_make(O_RDWR, 1, 32);
    char b[64];
    struct timespec past = { 1, 0 };
    double t0 = now_ms();
    SHOW("mq_timedreceive empty, past", mq_timedreceive(q, b, sizeof b, NULL, &past));
    SHOW("mq_timedsend room, past", mq_timedsend(q, "a", 1, 0, &past));
    SHOW("mq_timedsend full, past", mq_timedsend(q, "b", 1, 0, &past));
    SHOW("mq_timedreceive message, past", mq_timedreceive(q, b, sizeof b, NULL, &past));
    printf("at once: %d\n", now_ms() - t0 < 50);
    mq_done(q);
}

CASE(ipc_mq_bad_timespec) {
    mqd_t q = mq_make(O_RDWR, 1, 32);
    char b[64];
    struct timespec bad = { 0, -1 }, big = { 0, 1000000000L }, neg = { -1, 0 };
    SHOW("mq_timedreceive empty, nsec -1", mq_timedreceive(q, b, sizeof b, NULL, &bad));
    SHOW("mq_timedreceive empty, nsec 1e9", mq_timedreceive(q, b, sizeof b, NULL, &big));
    SHOW("mq_timedreceive empty, sec -1", mq_timedreceive(q, b, sizeof b, NULL, &neg));
    SHOW("mq_timedreceive empty, bad pointer", mq_timedreceive(q, b, sizeof b, NULL, BADPTR));
    SHOW("mq_timedsend room, nsec -1", mq_timedsend(q, "a", 1, 0, &bad));
    SHOW("mq_send", mq_send(q, "a", 1, 0));
    SHOW("mq_timedsend full, nsec -1", mq_timedsend(q, "b", 1, 0, &bad));
    SHOW("mq_timedreceive message, nsec -1", mq_timedreceive(q, b, sizeof b, NULL, &bad));
    SHOW("mq_receive", mq_receive(q, b, sizeof b, NULL));
    mq_done(q);
}

CASE(ipc_mq_nonblock) {
    mqd_t q = mq_make(O_RDWR | O_NONBLOCK, 1, 32);
    char b[64];
    SHOW("mq_receive empty", mq_receive(q, b, sizeof b, NULL));
    struct timespec until = realtime_in(1000);
    SHOW("mq_timedreceive empty", mq_timedreceive(q, b, sizeof b, NULL, &until));
    SHOW("mq_send", mq_send(q, "a", 1, 0));
    SHOW("mq_send full", mq_send(q, "b", 1, 0));
    SHOW("mq_timedsend full", mq_timedsend(q, "b", 1, 0, &until));
    SHOW("mq_receive", mq_receive(q, b, sizeof b, NULL));
    struct mq_attr attr = { 0 }, old;
    SHOW("mq_setattr blocking", mq_setattr(q, &attr, &old));
    printf("was O_NONBLOCK: %d\n", (old.mq_flags & O_NONBLOCK) != 0);
    double t0 = now_ms();
    struct after *a = after(30, mq_send_x, q);
    SHOW("mq_receive now waits", mq_receive(q, b, sizeof b, NULL));
    printf("time=%s\n", timing(now_ms() - t0, 30));
    join_show(a);
    attr.mq_flags = O_NONBLOCK;
    SHOW("mq_setattr non-blocking", mq_setattr(q, &attr, NULL));
    SHOW("mq_receive empty", mq_receive(q, b, sizeof b, NULL));
    mq_done(q);
}

CASE(ipc_mq_errors_before_waiting) {
    mqd_t q = mq_make(O_RDWR, 2, 32);
    char small[8], b[64];
    SHOW("mq_receive, buffer below msgsize, empty", mq_receive(q, small, sizeof small, NULL));
    SHOW("mq_send, above msgsize", mq_send(q, b, 33, 0));
    SHOW("mq_send, prio too high", mq_send(q, "a", 1, 1u << 20));
    mqd_t w = mq_open(mq_name, O_WRONLY);
    mqd_t r = mq_open(mq_name, O_RDONLY);
    SHOW("mq_receive on O_WRONLY, empty", mq_receive(w, b, sizeof b, NULL));
    SHOW("mq_send on O_RDONLY", mq_send(r, "a", 1, 0));
    SHOW("mq_receive on a bad fd", mq_receive((mqd_t)12345, b, sizeof b, NULL));
    SHOW("mq_receive on a pipe", ({
             int p[2];
             (void)!pipe(p);
             mq_receive(p[0], b, sizeof b, NULL);
         }));
    mq_close(w);
    mq_close(r);
    mq_done(q);
}

CASE(ipc_mq_priorities) {
    mqd_t q = mq_make(O_RDWR, 4, 32);
    mq_send(q, "low", 3, 1);
    mq_send(q, "high", 4, 5);
    mq_send(q, "mid", 3, 3);
    mq_send(q, "mid2", 4, 3);
    for (int i = 0; i < 4; i++) {
        char b[64];
        unsigned prio;
        ssize_t n = mq_receive(q, b, sizeof b, &prio);
        printf("%.*s prio=%u\n", n > 0 ? (int)n : 0, b, prio);
    }
    mq_done(q);
}

static void on_usr1(int sig) { (void)sig; }

static pthread_t main_thread;

static void signal_main(int fd) {
    (void)fd;
    pthread_kill(main_thread, SIGUSR1);
}

/* The signal comes at 30 ms, the message (or room) at 400: a call that returned before
 * 250 ms ended at the signal, with room for a loaded machine's delays (at 120 and 100 ms
 * a greenified run under heavy load took 100 ms to return at the signal). */
static void mq_eintr(int flags) {
    set_handler(SIGUSR1, on_usr1, flags);
    main_thread = pthread_self();
    mqd_t q = mq_make(O_RDWR, 1, 32);
    char b[64];
    struct after *kill = after(30, signal_main, 0);
    double t0 = now_ms();
    struct after *send = after(400, mq_send_x, q);
    SHOW("mq_receive", mq_receive(q, b, sizeof b, NULL));
    double took = now_ms() - t0;
    printf("returned at the signal: %d\n", took < 250);
    after_join(kill);
    join_show(send);
    struct timespec past = { 1, 0 };
    mq_timedreceive(q, b, sizeof b, NULL, &past); /* the message, if the first one failed */
    SHOW("mq_send fills", mq_send(q, "f", 1, 0));
    struct after *kill2 = after(30, signal_main, 0);
    struct after *recv2 = after(400, mq_receive_one, q);
    struct timespec until = realtime_in(5000);
    t0 = now_ms();
    SHOW("mq_timedsend", mq_timedsend(q, "y", 1, 0, &until));
    took = now_ms() - t0;
    printf("returned at the signal: %d\n", took < 250);
    after_join(kill2);
    join_show(recv2);
    mq_done(q);
}

CASE(ipc_mq_eintr) { mq_eintr(0); }

CASE(ipc_mq_sa_restart) { mq_eintr(SA_RESTART); }

/* ---- SysV message queues ---- */

struct msg {
    long type;
    char text[32];
};

static int msq;

static void msgsnd_later(int type) {
    struct msg m = { type, "later" };
    TSHOW("msgsnd", msgsnd(msq, &m, 6, 0));
}

static void msgrcv_any(int fd) {
    (void)fd;
    struct msg m;
    TSHOW("msgrcv", msgrcv(msq, &m, sizeof m.text, 0, 0));
}

static void msgctl_rmid(int fd) {
    (void)fd;
    TSHOW("IPC_RMID", msgctl(msq, IPC_RMID, NULL));
}

CASE(ipc_msgrcv_waits_for_sender) {
    msq = msgget(IPC_PRIVATE, 0600);
    ticker_start();
    double t0 = now_ms();
    struct after *a = after(60, msgsnd_later, 7);
    struct msg m = { 0, "" };
    SHOW("msgrcv", msgrcv(msq, &m, sizeof m.text, 0, 0));
    printf("type=%ld text=%s time=%s\n", m.type, m.text, timing(now_ms() - t0, 60));
    printf("the other thread ran during the wait: %d\n", ticker_stop() >= 5);
    join_show(a);
    msgctl(msq, IPC_RMID, NULL);
}

CASE(ipc_msgrcv_by_type) {
    msq = msgget(IPC_PRIVATE, 0600);
    struct msg a = { 1, "one" }, b = { 2, "two" }, c = { 3, "three" };
    msgsnd(msq, &a, 4, 0);
    msgsnd(msq, &b, 4, 0);
    msgsnd(msq, &c, 6, 0);
    struct msg m;
    SHOW("msgrcv type 2", msgrcv(msq, &m, sizeof m.text, 2, 0));
    printf("  %ld %s\n", m.type, m.text);
    SHOW("msgrcv type <= -3, lowest first", msgrcv(msq, &m, sizeof m.text, -3, 0));
    printf("  %ld %s\n", m.type, m.text);
    SHOW("msgrcv short buffer", msgrcv(msq, &m, 2, 0, 0));
    SHOW("msgrcv MSG_NOERROR", msgrcv(msq, &m, 2, 0, MSG_NOERROR));
    printf("  %ld %.2s\n", m.type, m.text);
    SHOW("msgrcv type 9, IPC_NOWAIT", msgrcv(msq, &m, sizeof m.text, 9, IPC_NOWAIT));
    SHOW("msgrcv MSG_COPY without IPC_NOWAIT", msgrcv(msq, &m, sizeof m.text, 0, 040000));
    double t0 = now_ms();
    struct after *w = after(40, msgsnd_later, 9);
    SHOW("msgrcv MSG_EXCEPT 1 waits", msgrcv(msq, &m, sizeof m.text, 1, MSG_EXCEPT));
    printf("  %ld %s time=%s\n", m.type, m.text, timing(now_ms() - t0, 40));
    join_show(w);
    SHOW("msgrcv on a bad id", msgrcv(-1, &m, sizeof m.text, 0, 0));
    SHOW("msgrcv negative size", msgrcv(msq, &m, (size_t)-1, 0, 0));
    msgctl(msq, IPC_RMID, NULL);
}

CASE(ipc_msgsnd_waits_for_room) {
    msq = msgget(IPC_PRIVATE, 0600);
    struct msqid_ds ds;
    msgctl(msq, IPC_STAT, &ds);
    ds.msg_qbytes = 16;
    SHOW("IPC_SET qbytes=16", msgctl(msq, IPC_SET, &ds));
    struct msg m = { 1, "0123456789abcdef" };
    SHOW("msgsnd fills", msgsnd(msq, &m, 16, 0));
    SHOW("msgsnd IPC_NOWAIT", msgsnd(msq, &m, 4, IPC_NOWAIT));
    double t0 = now_ms();
    struct after *a = after(40, msgrcv_any, 0);
    SHOW("msgsnd waits", msgsnd(msq, &m, 4, 0));
    printf("time=%s\n", timing(now_ms() - t0, 40));
    join_show(a);
    SHOW("msgsnd type 0", msgsnd(msq, &m, 4, IPC_NOWAIT));
    msgctl(msq, IPC_RMID, NULL);
}

CASE(ipc_msgrcv_queue_removed_while_waiting) {
    msq = msgget(IPC_PRIVATE, 0600);
    double t0 = now_ms();
    struct after *a = after(40, msgctl_rmid, 0);
    struct msg m;
    SHOW("msgrcv", msgrcv(msq, &m, sizeof m.text, 0, 0));
    printf("time=%s\n", timing(now_ms() - t0, 40));
    join_show(a);
}

/* A signal while msgrcv waits: natively EINTR at once (SysV calls are never restarted). */
CASE(ipc_msgrcv_eintr) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    main_thread = pthread_self();
    msq = msgget(IPC_PRIVATE, 0600);
    struct after *kill = after(30, signal_main, 0);
    struct after *send = after(300, msgsnd_later, 1);
    struct msg m;
    SHOW("msgrcv", msgrcv(msq, &m, sizeof m.text, 0, 0));
    after_join(kill);
    join_show(send);
    msgctl(msq, IPC_RMID, NULL);
}

/* ---- SysV semaphores ---- */

static int semid;

static void sem_add(int n) {
    struct sembuf op = { 0, (short)n, 0 };
    TSHOW("semop +", semop(semid, &op, 1));
}

static int sem_make(int value) {
    int id = semget(IPC_PRIVATE, 2, 0600);
    semctl(id, 0, SETVAL, value);
    semctl(id, 1, SETVAL, 0);
    return id;
}

/* Posts once the ticker has counted 5 (natively on a loaded machine 60 ms may hold fewer). */
static void sem_add_once_ticked(int n) {
    for (int i = 0; i < 2000 && ticks < 5; i++) msleep(1);
    sem_add(n);
}

CASE(ipc_semop_waits_for_post) {
    semid = sem_make(0);
    ticker_start();
    double t0 = now_ms();
    struct after *a = after(60, sem_add_once_ticked, 2);
    struct sembuf op = { 0, -2, 0 };
    SHOW("semop -2", semop(semid, &op, 1));
    printf("time=%s value=%d\n", timing(now_ms() - t0, 60), semctl(semid, 0, GETVAL));
    printf("the other thread ran during the wait: %d\n", ticker_stop() >= 5);
    join_show(a);
    semctl(semid, 0, IPC_RMID);
}

static void sem_take(int n) {
    struct sembuf op = { 0, (short)-n, 0 };
    TSHOW("semop -", semop(semid, &op, 1));
}

CASE(ipc_semop_wait_for_zero) {
    semid = sem_make(3);
    double t0 = now_ms();
    struct after *a = after(40, sem_take, 3);
    struct sembuf op = { 0, 0, 0 };
    SHOW("semop wait for zero", semop(semid, &op, 1));
    printf("time=%s\n", timing(now_ms() - t0, 40));
    join_show(a);
    semctl(semid, 0, IPC_RMID);
}

CASE(ipc_semop_nowait_and_errors) {
    semid = sem_make(1);
    struct sembuf take2 = { 0, -2, IPC_NOWAIT };
    SHOW("semop IPC_NOWAIT", semop(semid, &take2, 1));
    struct sembuf both[2] = { { 0, -1, 0 }, { 1, -1, IPC_NOWAIT } };
    SHOW("semop two, second IPC_NOWAIT", semop(semid, both, 2));
    printf("value 0 untouched: %d\n", semctl(semid, 0, GETVAL));
    SHOW("semop zero ops", semop(semid, &take2, 0));
    SHOW("semop bad sops", semop(semid, BADPTR, 1));
    struct sembuf bad_num = { 5, -1, 0 };
    SHOW("semop bad semnum", semop(semid, &bad_num, 1));
    SHOW("semop bad id", semop(-1, &take2, 1));
    struct sembuf undo = { 0, -1, SEM_UNDO };
    SHOW("semop SEM_UNDO", semop(semid, &undo, 1));
    semctl(semid, 0, IPC_RMID);
}

CASE(ipc_semtimedop_timeouts) {
    semid = sem_make(0);
    struct sembuf op = { 0, -1, 0 };
    struct timespec t = { 0, 50000000L };
    double t0 = now_ms();
    SHOW("semtimedop 50 ms", semtimedop(semid, &op, 1, &t));
    printf("time=%s\n", timing(now_ms() - t0, 50));
    struct timespec zero = { 0, 0 };
    t0 = now_ms();
    SHOW("semtimedop zero", semtimedop(semid, &op, 1, &zero));
    printf("at once: %d\n", now_ms() - t0 < 20);
    struct timespec bad = { 0, -1 };
    SHOW("semtimedop bad, would wait", semtimedop(semid, &op, 1, &bad));
    semctl(semid, 0, SETVAL, 1);
    SHOW("semtimedop bad, could go", semtimedop(semid, &op, 1, &bad));
    SHOW("semtimedop bad pointer, could go", semtimedop(semid, &op, 1, BADPTR));
    semctl(semid, 0, SETVAL, 0);
    t0 = now_ms();
    struct after *a = after(30, sem_add, 1);
    struct timespec long_wait = { 5, 0 };
    SHOW("semtimedop until posted", semtimedop(semid, &op, 1, &long_wait));
    printf("time=%s\n", timing(now_ms() - t0, 30));
    join_show(a);
    semctl(semid, 0, IPC_RMID);
}

static void sem_rmid(int fd) {
    (void)fd;
    TSHOW("IPC_RMID", semctl(semid, 0, IPC_RMID));
}

CASE(ipc_semop_set_removed_while_waiting) {
    semid = sem_make(0);
    struct after *a = after(40, sem_rmid, 0);
    struct sembuf op = { 0, -1, 0 };
    SHOW("semop", semop(semid, &op, 1));
    join_show(a);
}

/* ---- NSS ---- */

static void show_pw(const char *what, struct passwd *p) {
    if (!p) {
        printf("%s: NULL\n", what);
        return;
    }
    printf("%s: %s uid=%d gid=%d dir=%s shell=%s\n", what, p->pw_name, (int)p->pw_uid,
           (int)p->pw_gid, p->pw_dir, p->pw_shell);
}

static void show_gr(const char *what, struct group *g) {
    if (!g) {
        printf("%s: NULL\n", what);
        return;
    }
    printf("%s: %s gid=%d\n", what, g->gr_name, (int)g->gr_gid);
}

CASE(ipc_nss_root) {
    struct passwd pw, *pr = NULL;
    struct group gr, *grr = NULL;
    char buf[4096];
    SHOWRC("getpwnam_r root", getpwnam_r("root", &pw, buf, sizeof buf, &pr));
    show_pw("  result", pr);
    SHOWRC("getpwuid_r 0", getpwuid_r(0, &pw, buf, sizeof buf, &pr));
    show_pw("  result", pr);
    SHOWRC("getgrnam_r root", getgrnam_r("root", &gr, buf, sizeof buf, &grr));
    show_gr("  result", grr);
    SHOWRC("getgrgid_r 0", getgrgid_r(0, &gr, buf, sizeof buf, &grr));
    show_gr("  result", grr);
    show_pw("getpwnam root", getpwnam("root"));
    show_pw("getpwuid 0", getpwuid(0));
    show_gr("getgrnam root", getgrnam("root"));
    show_gr("getgrgid 0", getgrgid(0));
    gid_t groups[64];
    int n = 64;
    SHOW("getgrouplist root", getgrouplist("root", 0, groups, &n));
    printf("  n=%d first=%d\n", n, n > 0 ? (int)groups[0] : -1);
    n = 0;
    SHOW("getgrouplist root, no room", getgrouplist("root", 0, groups, &n));
    printf("  n=%d\n", n);
}

CASE(ipc_nss_missing_and_erange) {
    struct passwd pw, *pr = BADPTR;
    struct group gr, *grr = BADPTR;
    char buf[4096], tiny[1];
    errno = 0;
    SHOWRC("getpwnam_r missing", getpwnam_r("no-such-user-greenify", &pw, buf, sizeof buf, &pr));
    printf("  result NULL: %d\n", pr == NULL);
    pr = BADPTR;
    SHOWRC("getpwuid_r missing", getpwuid_r(54321, &pw, buf, sizeof buf, &pr));
    printf("  result NULL: %d\n", pr == NULL);
    SHOWRC("getgrnam_r missing", getgrnam_r("no-such-group-greenify", &gr, buf, sizeof buf, &grr));
    printf("  result NULL: %d\n", grr == NULL);
    grr = BADPTR;
    SHOWRC("getgrgid_r missing", getgrgid_r(54321, &gr, buf, sizeof buf, &grr));
    printf("  result NULL: %d\n", grr == NULL);
    pr = BADPTR;
    errno = 0;
    int rc = getpwnam_r("root", &pw, tiny, sizeof tiny, &pr);
    printf("getpwnam_r tiny buffer: %s errno=%s result NULL: %d\n", en(rc), en(errno), pr == NULL);
    grr = BADPTR;
    errno = 0;
    rc = getgrgid_r(0, &gr, tiny, sizeof tiny, &grr);
    printf("getgrgid_r tiny buffer: %s errno=%s result NULL: %d\n", en(rc), en(errno), grr == NULL);
    errno = 0;
    struct passwd *p = getpwnam("no-such-user-greenify");
    printf("getpwnam missing: NULL=%d errno=%s\n", p == NULL, en(errno));
    errno = 0;
    struct group *g = getgrgid(54321);
    printf("getgrgid missing: NULL=%d errno=%s\n", g == NULL, en(errno));
    errno = EDOM;
    p = getpwuid(0);
    printf("getpwuid 0 leaves errno: %s\n", en(errno));
}

CASE(ipc_nss_services_and_names) {
    struct servent se, *sr = NULL;
    char buf[1024], tiny[4];
    SHOWRC("getservbyname_r http/tcp", getservbyname_r("http", "tcp", &se, buf, sizeof buf, &sr));
    if (sr) printf("  %s port=%d proto=%s\n", sr->s_name, ntohs(sr->s_port), sr->s_proto);
    SHOWRC("getservbyname_r missing", getservbyname_r("no-such-service", "tcp", &se, buf, sizeof buf, &sr));
    printf("  result NULL: %d\n", sr == NULL);
    SHOWRC("getservbyname_r tiny", getservbyname_r("http", "tcp", &se, tiny, sizeof tiny, &sr));
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(22) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char host[256], serv[64];
    int r = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv, 0);
    printf("getnameinfo 127.0.0.1:22: %d host=%s serv=%s\n", r, r ? "-" : host, r ? "-" : serv);
    r = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, 2, serv, sizeof serv, NI_NAMEREQD);
    printf("getnameinfo, host buffer too small: %s\n", r == EAI_OVERFLOW ? "EAI_OVERFLOW" : gai_strerror(r));
    struct hostent he, *hr = NULL;
    int herr = 0;
    struct in_addr lo = { htonl(INADDR_LOOPBACK) };
    int rc = gethostbyaddr_r(&lo, sizeof lo, AF_INET, &he, buf, sizeof buf, &hr, &herr);
    printf("gethostbyaddr_r 127.0.0.1: %s name=%s\n", en(rc), hr ? hr->h_name : "-");
}

/* ---- the resolver, against a slow DNS server on a thread of this process ---- */

static int dns_fd, dns_queries;

/* Answers each query after 100 ms with one A record, 10.1.2.3. */
static void *dns_server(void *arg) {
    (void)arg;
    for (int i = 0; i < dns_queries; i++) {
        unsigned char q[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(dns_fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n < 12) return NULL;
        msleep(100);
        unsigned char a[600];
        memcpy(a, q, (size_t)n);
        a[2] = 0x81; /* QR, RD */
        a[3] = 0x80; /* RA, NOERROR */
        a[6] = 0;
        a[7] = 1; /* one answer */
        a[8] = a[9] = a[10] = a[11] = 0;
        /* The question ends where the query's additional section (EDNS) would start:
         * take the name and its type and class. */
        size_t pos = 12;
        while (pos < (size_t)n && q[pos]) pos += q[pos] + 1;
        pos += 5;
        unsigned char rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3 };
        memcpy(a + pos, rr, sizeof rr);
        sendto(dns_fd, a, pos + sizeof rr, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static struct sockaddr_in dns_start(int queries) {
    dns_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(dns_fd, (struct sockaddr *)&sin, sizeof sin);
    socklen_t l = sizeof sin;
    getsockname(dns_fd, (struct sockaddr *)&sin, &l);
    dns_queries = queries;
    return sin;
}

static void show_answer(const char *what, int r, const unsigned char *ans) {
    printf("%s: %s", what, r > 0 ? "answered" : "failed");
    if (r > 0) printf(" address=%d.%d.%d.%d", ans[r - 4], ans[r - 3], ans[r - 2], ans[r - 1]);
    printf(" h_errno=%d\n", h_errno);
}

CASE(ipc_res_nquery_while_others_run) {
    struct sockaddr_in server = dns_start(3);
    pthread_t t;
    pthread_create(&t, NULL, dns_server, NULL);
    struct __res_state st;
    memset(&st, 0, sizeof st);
    SHOW("res_ninit", res_ninit(&st));
    st.nscount = 1;
    st.nsaddr_list[0] = server;
    st.retrans = 3;
    st.retry = 1;
    st.options &= ~(unsigned long)RES_DNSRCH;
    unsigned char ans[512];
    ticker_start();
    double t0 = now_ms();
    int r = res_nquery(&st, "a.greenify.test", C_IN, T_A, ans, sizeof ans);
    double took = now_ms() - t0;
    show_answer("res_nquery", r, ans);
    printf("took the server's 100 ms: %d\n", took >= 99 && took < 2000);
    r = res_nsearch(&st, "b.greenify.test", C_IN, T_A, ans, sizeof ans);
    show_answer("res_nsearch", r, ans);
    r = res_nquerydomain(&st, "c", "greenify.test", C_IN, T_A, ans, sizeof ans);
    show_answer("res_nquerydomain", r, ans);
    printf("the other thread ran during the lookups: %d\n", ticker_stop() >= 20);
    pthread_join(t, NULL);
    res_nclose(&st);
}

/* res_query uses the calling thread's _res, set up by the program. */
CASE(ipc_res_query_uses_callers_state) {
    struct sockaddr_in server = dns_start(3);
    pthread_t t;
    pthread_create(&t, NULL, dns_server, NULL);
    SHOW("res_init", res_init());
    _res.nscount = 1;
    _res.nsaddr_list[0] = server;
    _res.retrans = 3;
    _res.retry = 1;
    _res.options &= ~(unsigned long)RES_DNSRCH;
    unsigned char ans[512];
    int r = res_query("a.greenify.test", C_IN, T_A, ans, sizeof ans);
    show_answer("res_query", r, ans);
    r = res_search("b.greenify.test", C_IN, T_A, ans, sizeof ans);
    show_answer("res_search", r, ans);
    r = res_querydomain("c", "greenify.test", C_IN, T_A, ans, sizeof ans);
    show_answer("res_querydomain", r, ans);
    pthread_join(t, NULL);
}

CASE(ipc_res_nquery_no_answer_sets_h_errno) {
    struct sockaddr_in server = dns_start(0);
    struct __res_state st;
    memset(&st, 0, sizeof st);
    res_ninit(&st);
    st.nscount = 1;
    st.nsaddr_list[0] = server;
    st.retrans = 1;
    st.retry = 1;
    unsigned char ans[512];
    h_errno = 0;
    int r = res_nquery(&st, "a.greenify.test", C_IN, T_A, ans, sizeof ans);
    printf("res_nquery, server silent: %d h_errno=%d state h_errno=%d\n", r, h_errno, st.res_h_errno);
    res_nclose(&st);
}
