/* Two threads take strict turns, TURNS turns in all, handing the turn over through a
 * mutex and a condition variable ("condvar") or through two pipes ("pipe"). At every
 * turn the thread notes the OS thread it runs on, by the raw system call (no library call
 * sees it), and counts the turns taken on another OS thread than the turn before.
 *
 * stdout: "turns N crossings C". Natively each thread is an OS thread of its own: every
 * turn but the first crosses. Greenified, the thread a running thread wakes runs next on
 * the waker's OS thread, so a pair that hands work to each other stays on one OS thread
 * however many workers there are. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TURNS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int turn; /* whose turn: 0 or 1 */
static int pipes[2][2]; /* pipes[i]: what thread i reads its turn from */
static int use_pipes;
static long taken, crossings, last_os_tid;

static long raw_gettid(void)
{
    long tid;
    __asm__ volatile("syscall" : "=a"(tid) : "a"((long)SYS_gettid) : "rcx", "r11", "memory");
    return tid;
}

/* The turn itself: only one thread is ever inside. */
static void take_turn(void)
{
    long tid = raw_gettid();
    if (taken > 0 && tid != last_os_tid)
        crossings++;
    last_os_tid = tid;
    taken++;
}

static void *player(void *arg)
{
    long me = (long)arg;
    char byte = 0;
    for (int i = 0; i < TURNS / 2; i++) {
        if (use_pipes) {
            if (read(pipes[me][0], &byte, 1) != 1)
                return perror("read"), NULL;
            take_turn();
            if (write(pipes[1 - me][1], &byte, 1) != 1)
                return perror("write"), NULL;
        } else {
            pthread_mutex_lock(&lock);
            while (turn != me)
                pthread_cond_wait(&changed, &lock);
            take_turn();
            turn = 1 - me;
            pthread_cond_signal(&changed);
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

/* Voluntary context switches of the process's OS threads but greenify's monitor: how
 * often they slept in the kernel. */
static long os_thread_sleeps(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    long sleeps = 0;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[128] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        /* comm holds 15 characters: "greenify-monito". */
        int monitor = f && fgets(line, sizeof line, f) && strncmp(line, "greenify-monito\n", 16) == 0;
        if (f)
            fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        f = monitor ? NULL : fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
                sleeps += atol(line + 24);
        if (f)
            fclose(f);
    }
    if (dir)
        closedir(dir);
    return sleeps;
}

int main(int argc, char **argv)
{
    use_pipes = argc > 1 && strcmp(argv[1], "pipe") == 0;
    if (use_pipes && (pipe(pipes[0]) != 0 || pipe(pipes[1]) != 0 || write(pipes[0][1], "x", 1) != 1))
        return perror("pipe"), 1;
    long sleeps = os_thread_sleeps();
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, player, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    sleeps = os_thread_sleeps() - sleeps;
    printf("turns %ld crossings %ld sleeps %ld\n", taken, crossings, sleeps);
    return taken == TURNS ? 0 : 1;
}
