/*
 * stats_fork: a forked child's stats line counts the child's own life.
 * The parent runs 6 threads at once (each parks once in nanosleep), then forks from main;
 * the child runs 2 threads at once and exits normally (its stats line is printed at
 * exit), the parent waits for it and exits. Prints the child's pid, so that the test
 * tells the two `greenify stats:` lines apart.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *nap(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

static void run_threads(int n)
{
    pthread_t t[8];
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, nap, NULL) != 0) {
            perror("pthread_create");
            exit(2);
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

int main(void)
{
    run_threads(6);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        run_threads(2);
        return 0;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("child failed: %#x\n", status);
        return 1;
    }
    printf("child %d\n", (int)pid);
    return 0;
}
