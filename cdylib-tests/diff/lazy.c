/* Invisible until needed: a program that never waits has exactly its own fds, threads,
 * signal dispositions and alternate signal stack; greenify makes its epoll instance,
 * eventfd, helper threads and fault handler on first use, and every first use works:
 * a sleep, a pipe read filled by another thread, a wake from a helper thread, a fork
 * before or after, a process at its fd limit, close_range and dup2 over the numbers
 * greenify takes later. */
#include "case.h"
#include <pwd.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

extern char **environ;

/* The open fds, by number, ascending (the listing's own fd included). */
static void print_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) { printf("opendir: %s\n", en(errno)); return; }
    int fds[1024], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024)
        if (e->d_name[0] != '.') fds[n++] = atoi(e->d_name);
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j]; fds[j] = fds[j - 1]; fds[j - 1] = t;
        }
    printf("fds:");
    for (int i = 0; i < n; i++) printf(" %d", fds[i]);
    printf("\n");
}

/* The named lines of /proc/self/status (e.g. "Threads:", "SigCgt:"). */
static void print_status(const char *const *keys, int nkeys) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) { printf("fopen: %s\n", en(errno)); return; }
    char line[256];
    while (fgets(line, sizeof line, f))
        for (int i = 0; i < nkeys; i++)
            if (!strncmp(line, keys[i], strlen(keys[i]))) fputs(line, stdout);
    fclose(f);
}

static const char *const IDENTITY[] = { "Threads:", "SigIgn:", "SigCgt:", "SigBlk:" };

/* Waits (without sleeping: that would be a first wait) until a joined thread has left
 * the kernel's thread group: a join returns when the thread cleared its tid, a moment
 * before the kernel removes it. */
static void threads_settle(void) {
    for (int i = 0; i < 20000; i++) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        int threads = 0;
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "Threads:", 8)) threads = atoi(line + 8);
        if (f) fclose(f);
        if (threads == 1) return;
        sched_yield();
    }
}

static void print_altstack(void) {
    stack_t st;
    SHOW("sigaltstack", sigaltstack(NULL, &st));
    printf("altstack disabled: %s\n", st.ss_flags & SS_DISABLE ? "yes" : "no");
}

/* How many of the open fds are epoll instances and eventfds. */
static void print_event_fds(void) {
    int epolls = 0, eventfds = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char path[64], target[128];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) continue;
        target[n] = 0;
        epolls += !strcmp(target, "anon_inode:[eventpoll]");
        eventfds += !strcmp(target, "anon_inode:[eventfd]");
    }
    printf("epoll fds: %d, eventfds: %d\n", epolls, eventfds);
}

/* Work that never has to wait: no green thread parks, no sleep. */
static void busy_without_waiting(void) {
    int p[2];
    SHOW("pipe", pipe(p));
    SHOW("write", write(p[1], "abc", 3));
    char b[4];
    SHOW("read (data ready)", read(p[0], b, sizeof b));
    close(p[0]);
    close(p[1]);
    SHOW("sched_yield", sched_yield());
    struct timespec ts;
    SHOW("clock_gettime", clock_gettime(CLOCK_MONOTONIC, &ts));
    void *m = malloc(1 << 20);
    printf("malloc: %s\n", m ? "ok" : "NULL");
    free(m);
    SHOW("getpid > 0", getpid() > 0);
}

/* A pipe read that waits for a thread writing 20 ms later. */
static void read_from_thread(void) {
    int p[2];
    if (pipe(p) != 0) { printf("pipe: %s\n", en(errno)); return; }
    double t0 = now_ms();
    struct after *a = after(20, write_x, p[1]);
    char b;
    SHOW("read waits for the thread", read(p[0], &b, 1));
    printf("read time=%s\n", timing(now_ms() - t0, 20));
    after_join(a);
    close(p[0]);
    close(p[1]);
}

static void sleep_20ms(void) {
    double t0 = now_ms();
    SHOW("nanosleep 20 ms", nanosleep(&(struct timespec){ 0, 20000000 }, NULL));
    printf("sleep time=%s\n", timing(now_ms() - t0, 20));
}

/* Runs argv to completion (its output goes to ours) and prints how it ended. */
static void spawn_and_wait(char *const argv[]) {
    fflush(stdout);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    int status = 0;
    /* Nothing printed until the child is done: its output comes first. */
    int waited = rc == 0 && waitpid(pid, &status, 0) == pid;
    printf("posix_spawn: %s\n", en(rc));
    printf("waitpid is the child: %s\n", waited ? "yes" : "no");
    printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* This very program again, running case `name` (a fresh process: exec closed every
 * CLOEXEC fd of ours). */
static void rerun(const char *name) {
    char *argv[] = { "/proc/self/exe", (char *)name, NULL };
    spawn_and_wait(argv);
}

static void *compute(void *arg) {
    volatile long sum = 0;
    for (long i = 0; i < 100000; i++) sum += i;
    return sum == 4999950000L ? arg : NULL;
}

static void create_and_join(void) {
    pthread_t t;
    void *rv = NULL;
    SHOWRC("pthread_create", pthread_create(&t, NULL, compute, (void *)7));
    SHOWRC("pthread_join", pthread_join(t, &rv));
    printf("thread result: %ld\n", (long)rv);
    threads_settle();
}

/* A process that never waits sees exactly its own fds, threads and handlers. */
CASE(lazy_no_wait_is_invisible) {
    busy_without_waiting();
    print_fds();
    print_status(IDENTITY, 4);
    print_altstack();
    print_event_fds();
}

/* Only the listing (run by the other cases in a fresh process). */
CASE(lazy_list_fds) {
    print_fds();
    print_status(IDENTITY, 1);
}

/* A thread that is created and joined without any I/O needs no epoll instance, no
 * eventfd and no helper thread. */
CASE(lazy_thread_join_without_io) {
    create_and_join();
    print_status(IDENTITY, 1);
    print_event_fds();
}

/* ... but its stack is greenify's: the first one brings the userfaultfd that watches the
 * gaps between stacks, and the SIGSEGV/SIGBUS handler that names an overflowing thread
 * (a known difference). */
CASE(lazy_thread_join_without_io_fds) {
    create_and_join();
    print_fds();
    print_status(IDENTITY, 4);
}

/* The first wait is a sleep; then a pipe read from another thread; then children made
 * by fork+exec see none of greenify's fds (they are CLOEXEC). */
CASE(lazy_first_wait_is_a_sleep) {
    busy_without_waiting();
    sleep_20ms();
    read_from_thread();
    sleep_20ms();
    char *ls[] = { "/bin/ls", "/proc/self/fd", NULL };
    spawn_and_wait(ls);
    rerun("lazy_list_fds");
}

/* The first wait is a pipe read another thread fills. */
CASE(lazy_first_wait_is_a_pipe_read) {
    read_from_thread();
    sleep_20ms();
    rerun("lazy_list_fds");
}

/* A thread parked on a condition variable (a wait that needs no fd) while main's calls
 * run: with another thread alive, greenify hands fsync and lookups to a helper thread. */
static pthread_mutex_t companion_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t companion_cond = PTHREAD_COND_INITIALIZER;
static int companion_done;

static void *companion(void *arg) {
    pthread_mutex_lock(&companion_lock);
    while (!companion_done) pthread_cond_wait(&companion_cond, &companion_lock);
    pthread_mutex_unlock(&companion_lock);
    return arg;
}

static pthread_t companion_start(void) {
    pthread_t t;
    companion_done = 0;
    if (pthread_create(&t, NULL, companion, NULL) != 0) { printf("pthread_create failed\n"); exit(1); }
    return t;
}

static void companion_stop(pthread_t t) {
    pthread_mutex_lock(&companion_lock);
    companion_done = 1;
    pthread_cond_signal(&companion_cond);
    pthread_mutex_unlock(&companion_lock);
    SHOWRC("companion join", pthread_join(t, NULL));
}

/* The first wait is for a helper thread (fsync runs on one while another thread is
 * alive), whose wake may come before the scheduler has its doorbell. */
CASE(lazy_first_wait_is_a_helper_fsync) {
    char path[] = "/tmp/greenify-lazy-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { printf("mkstemp: %s\n", en(errno)); return; }
    unlink(path);
    SHOW("write", write(fd, "data", 4));
    pthread_t t = companion_start();
    for (int i = 0; i < 3; i++) SHOW("fsync", fsync(fd));
    companion_stop(t);
    close(fd);
    sleep_20ms();
    read_from_thread();
}

/* The first wait is a name lookup on a helper thread. */
CASE(lazy_first_wait_is_getaddrinfo) {
    pthread_t t = companion_start();
    for (int i = 0; i < 3; i++) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        int rc = getaddrinfo("localhost", "80", &hints, &res);
        printf("getaddrinfo: %s\n", rc ? "failed" : "0");
        if (!rc) {
            char addr[INET_ADDRSTRLEN];
            struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
            inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
            printf("address: %s\n", addr);
            freeaddrinfo(res);
        }
    }
    companion_stop(t);
    sleep_20ms();
    read_from_thread();
}

/* A program with no other thread runs its lookups and fsync right where it calls them
 * (a helper thread would gain it nothing): no thread, fd or handler appears. */
CASE(lazy_lookups_alone_make_no_thread) {
    struct passwd pw, *found = NULL;
    char buf[4096];
    SHOWRC("getpwuid_r", getpwuid_r(0, &pw, buf, sizeof buf, &found));
    printf("root found: %s\n", found ? pw.pw_name : "no");
    char path[] = "/tmp/greenify-lazy-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { printf("mkstemp: %s\n", en(errno)); return; }
    unlink(path);
    SHOW("fsync", fsync(fd));
    close(fd);
    print_fds();
    print_status(IDENTITY, 4);
}

/* fork before anything waited: the child's first waits work, and so do the parent's. */
CASE(lazy_fork_before_first_wait) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_20ms();
        read_from_thread();
        fflush(stdout);
        _exit(0);
    }
    int status;
    SHOW("waitpid is the child", waitpid(pid, &status, 0) == pid);
    printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    read_from_thread();
}

/* fork after the parent has waited: the child makes its own epoll instance on its first
 * wait (the parent's is shared and must stay untouched), and numbers its fds as the
 * parent would (the lowest free number is the same). */
CASE(lazy_fork_after_first_wait) {
    sleep_20ms();
    int probe = dup(0);
    close(probe);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = dup(0);
        printf("child: lowest free fd as the parent's: %s\n", fd == probe ? "yes" : "no");
        close(fd);
        read_from_thread();
        sleep_20ms();
        fflush(stdout);
        _exit(0);
    }
    /* The parent prints only after the child is done: both write to one stdout. */
    int status;
    SHOW("waitpid is the child", waitpid(pid, &status, 0) == pid);
    printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    read_from_thread();
    sleep_20ms();
}

/* close_range over everything before greenify made an fd; then the first waits. */
CASE(lazy_close_range_before_first_wait) {
    SHOW("close_range(3, ~0)", close_range(3, ~0U, 0));
    sleep_20ms();
    read_from_thread();
}

/* close_range over everything after greenify made its fds: the program's close, and
 * waits keep working. */
CASE(lazy_close_range_after_first_wait) {
    sleep_20ms();
    int extra = dup(1);
    SHOW("close_range(3, ~0)", close_range(3, ~0U, 0));
    SHOW("extra fd closed", fcntl(extra, F_GETFD) == -1 && errno == EBADF);
    sleep_20ms();
    read_from_thread();
}

/* dup2 onto the numbers greenify takes for its own fds, before it took them: they stay
 * the program's, and greenify's go elsewhere. */
CASE(lazy_dup2_into_reserved_numbers_before_first_wait) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long ceiling = rl.rlim_cur < 1024 ? (long)rl.rlim_cur : 1024;
    int low = ceiling - 64 > 3 ? ceiling - 64 : 3;
    int taken = 0;
    for (int fd = low; fd < low + 4; fd++) taken += dup2(1, fd) == fd;
    printf("dup2 onto the first four: %d\n", taken);
    sleep_20ms();
    read_from_thread();
    for (int fd = low; fd < low + 4; fd++) {
        char line[32];
        int n = snprintf(line, sizeof line, "through fd low+%d\n", fd - low);
        SHOW("write", write(fd, line, n) == n);
        SHOW("close", close(fd));
    }
    sleep_20ms();
}

/* Every fd number in use (soft = hard limit) when the first wait comes: greenify cannot
 * make an epoll instance, yet every wait behaves as natively. */
CASE(lazy_first_wait_at_the_fd_limit) {
    struct rlimit rl = { 64, 64 };
    SHOW("setrlimit", setrlimit(RLIMIT_NOFILE, &rl));
    int last = -1;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) { printf("fill: %s\n", en(errno)); break; }
        last = fd;
    }
    close(last);
    close(last - 1);
    int p[2];
    SHOW("pipe", pipe(p));
    SHOW("open at the limit", open("/dev/null", O_RDONLY));
    double t0 = now_ms();
    struct after *a = after(20, write_x, p[1]);
    char b;
    SHOW("read waits for the thread", read(p[0], &b, 1));
    printf("read time=%s\n", timing(now_ms() - t0, 20));
    after_join(a);
    sleep_20ms();
    close(p[0]);
    close(p[1]);
    read_from_thread();
}

/* Once greenify has its fds (just below 1024), the kernel's fd table has 1,024 entries,
 * and select looks at bits a small native process's table does not have (a known
 * difference; before the first wait it matches, see poll_time.c). */
CASE(lazy_select_bits_beyond_fd_table_after_first_wait) {
    sleep_20ms();
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    FD_SET(1000, &r);
    struct timeval tv = {0, 0};
    SHOW("select(fd 1000 set, 0)", select(1001, &r, NULL, NULL, &tv));
    printf("ours=%d\n", FD_ISSET(p[0], &r));
}
