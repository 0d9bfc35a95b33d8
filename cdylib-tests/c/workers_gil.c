/* A server whose threads share one big lock, as CPython's threads share the GIL (a mutex,
 * a condition variable and a "locked" flag: take_gil/drop_gil), serving CONNS loopback TCP
 * connections, one thread each: it drops the lock around every read and write, as CPython
 * does around a blocking call, and computes with it held (WORK iterations, some 20 us)
 * for every request. A client process keeps one request in flight on every connection,
 * REQUESTS in all.
 *
 * stdout: "requests N lock_waits W crossings C": how often a server thread found the lock
 * taken and waited for it, and how many requests were served on another OS thread than
 * the request before (noted by the raw system call, which no library call sees).
 * Natively the threads contend for the lock at most requests. Greenified with one worker,
 * a thread switches only where its read or write waits, the lock dropped: it never waits
 * for the lock. With two workers, threads of both running at once would wait for each
 * other's lock at nearly every request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS 200
#define REQUESTS 30000
#define WORK 40000

static pthread_mutex_t gil_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gil_cond = PTHREAD_COND_INITIALIZER;
static int gil_locked;
static long lock_waits, served, crossings, last_os_tid;

static long raw_gettid(void)
{
    long tid;
    __asm__ volatile("syscall" : "=a"(tid) : "a"((long)SYS_gettid) : "rcx", "r11", "memory");
    return tid;
}

static void take_gil(void)
{
    pthread_mutex_lock(&gil_mutex);
    while (gil_locked) {
        lock_waits++;
        pthread_cond_wait(&gil_cond, &gil_mutex);
    }
    gil_locked = 1;
    pthread_mutex_unlock(&gil_mutex);
}

static void drop_gil(void)
{
    pthread_mutex_lock(&gil_mutex);
    gil_locked = 0;
    pthread_cond_signal(&gil_cond);
    pthread_mutex_unlock(&gil_mutex);
}

static void *server(void *arg)
{
    int fd = (int)(long)arg;
    char buf[16];
    take_gil();
    for (;;) {
        drop_gil();
        ssize_t n = read(fd, buf, sizeof buf);
        take_gil();
        if (n <= 0)
            break;
        long tid = raw_gettid();
        if (served > 0 && tid != last_os_tid)
            crossings++;
        last_os_tid = tid;
        served++;
        for (volatile int k = 0; k < WORK; k++)
            ;
        drop_gil();
        ssize_t w = write(fd, buf, (size_t)n);
        take_gil();
        if (w != n)
            break;
    }
    drop_gil();
    close(fd);
    return NULL;
}

/* The client, a process of its own: one request in flight per connection until
 * REQUESTS were sent. */
static int client(struct sockaddr_in addr)
{
    struct pollfd fds[CONNS];
    long sent = 0, answered = 0;
    for (int i = 0; i < CONNS; i++) {
        int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
            return perror("connect"), 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fds[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    for (int i = 0; i < CONNS; i++, sent++)
        if (write(fds[i].fd, "x", 1) != 1)
            return perror("write"), 1;
    while (answered < REQUESTS) {
        if (poll(fds, CONNS, 10000) <= 0)
            return fprintf(stderr, "poll: no answer in 10 s\n"), 1;
        for (int i = 0; i < CONNS; i++) {
            char c;
            if (!(fds[i].revents & POLLIN))
                continue;
            if (read(fds[i].fd, &c, 1) != 1)
                return perror("client read"), 1;
            answered++;
            if (sent < REQUESTS) {
                if (write(fds[i].fd, "x", 1) != 1)
                    return perror("client write"), 1;
                sent++;
            }
        }
    }
    return 0;
}

int main(void)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, CONNS) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        return perror("listen"), 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 1;
    if (pid == 0)
        _exit(client(addr));
    pthread_t threads[CONNS];
    for (int i = 0; i < CONNS; i++) {
        int one = 1, conn = accept(listener, NULL, NULL);
        if (conn < 0)
            return perror("accept"), 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_create(&threads[i], NULL, server, (void *)(long)conn);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fprintf(stderr, "the client failed\n"), 1;
    for (int i = 0; i < CONNS; i++)
        pthread_join(threads[i], NULL);
    printf("requests %ld lock_waits %ld crossings %ld\n", served, lock_waits, crossings);
    return served == REQUESTS ? 0 : 1;
}
