/* Stopped by a signal at its default action: prints what sigaction shows for SIGINT,
 * SIGTERM and SIGHUP, flags included (after setting SIGINT to SIG_DFL again with
 * signal()), starts a thread, prints "ready" and waits to be killed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void *waiter(void *arg) {
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void show(const char *name, int sig) {
    struct sigaction old;
    sigaction(sig, NULL, &old);
    printf("%s %s flags=%#x\n", name, old.sa_handler == SIG_DFL ? "SIG_DFL" : "other",
           (unsigned)old.sa_flags);
}

int main(void) {
    pthread_t t;
    signal(SIGINT, SIG_DFL);
    show("SIGINT", SIGINT);
    show("SIGTERM", SIGTERM);
    show("SIGHUP", SIGHUP);
    if (pthread_create(&t, NULL, waiter, NULL) != 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
