/* A thread blocks its OS thread in a call no hook sees (an inline-assembly `read` of an
 * empty pipe) and another thread must run to write the byte it waits for. Greenified
 * with one worker that is a deadlock unless the stuck worker's other threads are handed
 * to another OS thread.
 *
 * The writer waits until the reader's OS thread is in the kernel's read (its
 * /proc/self/task/TID/syscall starts with "0 "), so the read really blocks, natively and
 * greenified. Then main waits (usleep, up to 2 s) until the OS threads that are not
 * parked spares ("greenify-spare") number argv[1] again: 1 natively, the workers and
 * the monitor greenified.
 *
 * stderr gets the hand-off delay: from just before the reader's read to the writer's
 * first instruction. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static volatile long reader_tid;
static struct timespec before_read, writer_started;

/* A variable of the program's own in TLS: with GREENIFY_TLS=auto green threads then get
 * TCBs of their own, which a thread that moves to another OS thread needs. */
static __thread long my_tid;

static long raw_syscall3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static void *reader(void *arg)
{
    (void)arg;
    char byte = 0;
    my_tid = raw_syscall3(SYS_gettid, 0, 0, 0);
    reader_tid = my_tid;
    clock_gettime(CLOCK_MONOTONIC, &before_read);
    long n = raw_syscall3(SYS_read, fds[0], (long)&byte, 1);
    printf("reader: read %ld byte '%c', same TLS: %s\n", n, byte,
           my_tid == raw_syscall3(SYS_gettid, 0, 0, 0) ? "yes" : "no");
    return NULL;
}

/* Whether the reader's OS thread waits in read(2) (system call 0). */
static int reader_in_read(void)
{
    char path[64], text[64] = "";
    if (reader_tid == 0)
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", reader_tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    return got && strncmp(text, "0 ", 2) == 0;
}

static void *writer(void *arg)
{
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &writer_started);
    while (!reader_in_read())
        usleep(1000);
    if (write(fds[1], "x", 1) != 1)
        perror("write");
    return NULL;
}

/* OS threads of this process but parked spares. */
static int running_os_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    int count = 0;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(name, sizeof name, f))
                name[0] = 0;
            fclose(f);
        }
        count += strncmp(name, "greenify-spare", 14) != 0;
    }
    if (dir)
        closedir(dir);
    return count;
}

int main(int argc, char **argv)
{
    int expected = argc > 1 ? atoi(argv[1]) : 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe(fds) != 0)
        return 1;
    pthread_t r, w;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&w, NULL, writer, NULL);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
    double delay = (writer_started.tv_sec - before_read.tv_sec) * 1e3 +
                   (writer_started.tv_nsec - before_read.tv_nsec) / 1e6;
    fprintf(stderr, "handoff delay: %.3f ms\n", delay);
    int running = running_os_threads();
    for (int i = 0; i < 200 && running != expected; i++) {
        usleep(10000);
        running = running_os_threads();
    }
    printf("OS threads running: %d\n", running);
    return 0;
}
