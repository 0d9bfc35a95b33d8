/* A thread-per-connection echo server on loopback whose process has one CPU: it pins
 * itself to the first CPU of its affinity mask, and its load generator (this program
 * again, "client PORT", started without LD_PRELOAD) runs on that CPU too. The client
 * keeps CONNS connections busy, ROUNDS rounds of one 16-byte message on each; every
 * server thread notes the OS thread each of its requests runs on, by the raw system call
 * (no library call sees it), and counts the requests that ran on another OS thread than
 * the thread's request before.
 *
 * stdout: "requests N crossings C". Natively each connection's thread is an OS thread
 * of its own: none crosses. Greenified with several workers, the process's threads share
 * the one CPU whatever the workers: they should stay on one worker, not spread over
 * OS threads that only take turns on that CPU. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS 32
#define ROUNDS 3000
#define SIZE 16

static long crossings[CONNS], requests[CONNS];

static long raw_gettid(void)
{
    long tid;
    __asm__ volatile("syscall" : "=a"(tid) : "a"((long)SYS_gettid) : "rcx", "r11", "memory");
    return tid;
}

static int full(ssize_t (*io)(int, void *, size_t), int fd, char *buf)
{
    size_t done = 0;
    while (done < SIZE) {
        ssize_t n = io(fd, buf + done, SIZE - done);
        if (n <= 0)
            return 0;
        done += (size_t)n;
    }
    return 1;
}

static ssize_t write_io(int fd, void *buf, size_t len)
{
    return write(fd, buf, len);
}

/* The load generator: every round writes to every connection, then reads every answer. */
static int client(int port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fds[CONNS];
    char buf[SIZE];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0)
            return perror("client connect"), 1;
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < CONNS; i++)
            if (!full(write_io, fds[i], buf))
                return perror("client write"), 1;
        for (int i = 0; i < CONNS; i++)
            if (!full(read, fds[i], buf))
                return perror("client read"), 1;
    }
    return 0;
}

static void *serve(void *arg)
{
    long conn = (long)arg & 0xffff, fd = (long)arg >> 16, last = 0;
    char buf[SIZE];
    while (full(read, (int)fd, buf)) {
        long tid = raw_gettid();
        if (last != 0 && tid != last)
            crossings[conn]++;
        last = tid;
        requests[conn]++;
        if (!full(write_io, (int)fd, buf))
            break;
    }
    close((int)fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "client") == 0)
        return client(atoi(argv[2]));
    cpu_set_t mask, one;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0)
        return perror("sched_getaffinity"), 1;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &mask)) {
            CPU_SET(cpu, &one);
            break;
        }
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        return perror("sched_setaffinity"), 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, CONNS) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        return perror("listen"), 1;
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(addr.sin_port));
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = { "/proc/self/exe", "client", port, NULL };
        char *env[] = { NULL };
        execve("/proc/self/exe", args, env);
        _exit(127);
    }
    if (pid < 0)
        return perror("fork"), 1;
    pthread_t threads[CONNS];
    for (long i = 0; i < CONNS; i++) {
        long fd = accept(listener, NULL, NULL);
        if (fd < 0)
            return perror("accept"), 1;
        if (pthread_create(&threads[i], NULL, serve, (void *)(fd << 16 | i)) != 0)
            return perror("pthread_create"), 1;
    }
    for (int i = 0; i < CONNS; i++)
        pthread_join(threads[i], NULL);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fprintf(stderr, "the client failed (status %d)\n", status), 1;
    long total = 0, crossed = 0;
    for (int i = 0; i < CONNS; i++)
        total += requests[i], crossed += crossings[i];
    printf("requests %ld crossings %ld\n", total, crossed);
    return total == (long)CONNS * ROUNDS ? 0 : 1;
}
