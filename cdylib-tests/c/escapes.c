/* System calls that bypass greenify's hooks (GREENIFY_ESCAPES), one case per argument:
 *   pipe       fwrite of 256 KiB to a pipe opened with fopen (glibc's internal write):
 *              a child process drains it later; prints the byte counts.
 *   progress   thread A fwrites 256 KiB to a pipe (blocks in glibc's internal write);
 *              thread B prints progress while A is stuck, then drains the pipe.
 *   asm_read   thread A reads an empty pipe with an inline `syscall`; thread B prints
 *              progress, then writes the byte A waits for.
 *   sigsys     whether a SIGSYS handler is installed (the kernel's view and sigaction's),
 *              then the program's own SIGSYS handler runs for a raised SIGSYS.
 *   services   getaddrinfo of a numeric host and a service name: glibc connects to nscd,
 *              closes that socket and reads /etc/services, all with internal calls.
 *   exec       forked children exec /bin/true through execl (glibc's internal execve) and
 *              execv (a hooked one); prints how each ended.
 *   cost       stderr only: ns per inline-asm getppid, per read(2) of /dev/zero.
 * Output (stdout) is deterministic and identical natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOTAL (256 * 1024)

static int fds[2];
static atomic_int writer_done;

/* A stdio stream on the pipe's write end that is glibc's own (fdopen would be greenify's). */
static FILE *open_pipe_stream(void) {
    char path[64];
    if (pipe(fds) != 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[1]);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    return f;
}

static long drain(int fd, long want) {
    static char buf[65536];
    long got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got += n;
    }
    return got;
}

static char data[TOTAL];

static int pipe_case(void) {
    FILE *f = open_pipe_stream();
    pid_t child = fork();
    if (child == 0) {
        fclose(f);
        close(fds[1]);
        usleep(200 * 1000);
        long got = drain(fds[0], TOTAL);
        printf("reader got %ld bytes\n", got);
        fflush(stdout);
        _exit(0);
    }
    close(fds[0]);
    size_t n = fwrite(data, 1, TOTAL, f);
    fclose(f);
    close(fds[1]);
    int status;
    waitpid(child, &status, 0);
    printf("writer wrote %zu bytes\n", n);
    return 0;
}

static void *writer(void *arg) {
    FILE *f = arg;
    size_t n = fwrite(data, 1, TOTAL, f);
    fflush(f);
    atomic_store(&writer_done, 1);
    return (void *)n;
}

static void *progress_then_drain(void *arg) {
    (void)arg;
    for (int i = 1; i <= 5; i++) {
        usleep(20 * 1000);
        printf("progress %d, writer done: %s\n", i, atomic_load(&writer_done) ? "yes" : "no");
        fflush(stdout);
    }
    return (void *)drain(fds[0], TOTAL);
}

static int progress_case(void) {
    FILE *f = open_pipe_stream();
    pthread_t a, b;
    void *wrote, *drained;
    pthread_create(&a, NULL, writer, f);
    pthread_create(&b, NULL, progress_then_drain, NULL);
    pthread_join(b, &drained);
    pthread_join(a, &wrote);
    printf("wrote %ld, drained %ld\n", (long)wrote, (long)drained);
    return 0;
}

static long asm_read(int fd, void *buf, long len) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_read), "D"((long)fd), "S"(buf), "d"(len)
                     : "rcx", "r11", "memory");
    return ret;
}

static void *asm_reader(void *arg) {
    (void)arg;
    char c = 0;
    long n = asm_read(fds[0], &c, 1);
    atomic_store(&writer_done, 1);
    printf("reader got %ld byte: %c\n", n, c);
    return NULL;
}

static void *progress_then_write(void *arg) {
    (void)arg;
    for (int i = 1; i <= 3; i++) {
        usleep(20 * 1000);
        printf("progress %d, reader done: %s\n", i, atomic_load(&writer_done) ? "yes" : "no");
        fflush(stdout);
    }
    if (write(fds[1], "x", 1) != 1) abort();
    return NULL;
}

static int asm_read_case(void) {
    if (pipe(fds) != 0) abort();
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t a, b;
    pthread_create(&a, NULL, asm_reader, NULL);
    pthread_create(&b, NULL, progress_then_write, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}

/* A pipe made non-blocking by an inline fcntl: its read of nothing fails at once, as
 * natively (greenify trusts its own view of a pipe it saw made until such a call). */
static int asm_fcntl_case(void) {
    int p[2];
    if (pipe(p) != 0) abort();
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_fcntl), "D"((long)p[0]), "S"((long)F_SETFL),
                       "d"((long)O_NONBLOCK)
                     : "rcx", "r11", "memory");
    char c;
    errno = 0;
    long n = read(p[0], &c, 1);
    printf("fcntl %ld, read %ld (%s)\n", ret, n, errno == EAGAIN ? "EAGAIN" : "other");
    return 0;
}

static volatile sig_atomic_t got_sigsys;
static void on_sigsys(int sig) { got_sigsys = sig; }

/* Whether the kernel has a handler for SIGSYS (SigCgt in /proc/self/status). */
static int kernel_catches_sigsys(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long mask = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) break;
    if (f) fclose(f);
    return (mask >> (SIGSYS - 1)) & 1;
}

static int sigsys_case(void) {
    struct sigaction sa;
    sigaction(SIGSYS, NULL, &sa);
    printf("sigaction: %s\n", sa.sa_handler == SIG_DFL ? "default" : "set");
    /* Only printed to stderr: the kernel's view differs with escapes on (greenify's). */
    fprintf(stderr, "kernel handler: %s\n", kernel_catches_sigsys() ? "yes" : "no");
    signal(SIGSYS, on_sigsys);
    sigaction(SIGSYS, NULL, &sa);
    printf("sigaction after signal(): %s\n", sa.sa_handler == on_sigsys ? "ours" : "other");
    raise(SIGSYS);
    printf("handler ran: %s\n", got_sigsys == SIGSYS ? "yes" : "no");
    return 0;
}

static int services_case(void) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo("127.0.0.1", "http", &hints, &res);
    printf("getaddrinfo(127.0.0.1, http): %s\n", e ? gai_strerror(e) : "ok");
    if (!e) freeaddrinfo(res);
    return 0;
}

static int exec_case(void) {
    for (int hooked = 0; hooked <= 1; hooked++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *argv[] = {"true", NULL};
            if (hooked)
                execv("/bin/true", argv);
            else
                execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        printf("%s: exited %d, signal %d\n", hooked ? "execv" : "execl",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1,
               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cost_case(void) {
    enum { N = 200000 };
    long sum = 0;
    usleep(1); /* a hooked call: greenify arms the thread at the first one */
    double t0 = now();
    for (int i = 0; i < N; i++) {
        long ret;
        __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
        sum += ret;
    }
    double t1 = now();
    int zero = open("/dev/zero", O_RDONLY);
    char c;
    for (int i = 0; i < N; i++) sum += read(zero, &c, 1);
    double t2 = now();
    for (int i = 0; i < N; i++) sum += asm_read(zero, &c, 1);
    double t3 = now();
    fprintf(stderr, "cost: asm getppid %.0f ns, read(2) %.0f ns, asm read %.0f ns (%ld)\n",
            (t1 - t0) / N, (t2 - t1) / N, (t3 - t2) / N, sum & 1);
    return 0;
}

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "pipe")) return pipe_case();
    if (!strcmp(c, "progress")) return progress_case();
    if (!strcmp(c, "asm_read")) return asm_read_case();
    if (!strcmp(c, "sigsys")) return sigsys_case();
    if (!strcmp(c, "services")) return services_case();
    if (!strcmp(c, "exec")) return exec_case();
    if (!strcmp(c, "cost")) return cost_case();
    if (!strcmp(c, "asm_fcntl")) return asm_fcntl_case();
    fprintf(stderr, "usage: escapes pipe|progress|asm_read|sigsys|services|exec|cost|asm_fcntl\n");
    return 2;
}
