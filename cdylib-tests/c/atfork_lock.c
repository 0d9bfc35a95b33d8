// A pthread_atfork prepare handler takes a lock (as jemalloc's does) that a green thread
// holds while it sleeps: fork waits for the holder, as natively. The child's handler
// releases it, and the child can take it again.
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int prepared, in_parent;
static void prepare(void) { pthread_mutex_lock(&m); prepared++; }
static void parent(void) { in_parent++; pthread_mutex_unlock(&m); }
static void child(void) { pthread_mutex_unlock(&m); }

static void *holder(void *arg) {
    pthread_mutex_lock(&m);
    *(volatile int *)arg = 1;
    usleep(50000);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void) {
    alarm(10);
    pthread_atfork(prepare, parent, child);
    volatile int held = 0;
    pthread_t t;
    pthread_create(&t, NULL, holder, (void *)&held);
    while (!held) usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&m);
        _exit(7);
    }
    int status;
    waitpid(pid, &status, 0);
    pthread_join(t, NULL);
    printf("prepared %d, parent handler %d, child exit %d\n", prepared, in_parent,
           WEXITSTATUS(status));
    return 0;
}
