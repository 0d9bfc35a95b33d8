/* Signals interrupting blocking calls as natively: EINTR without SA_RESTART, a restarted
 * read with it, nanosleep with its remaining time, poll (never restarted), pause,
 * sigaction reporting the program's own handler, sigwait and sigtimedwait. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static void h(int s) { (void)s; }
static int p[2];
static void *writer(void *a) { (void)a; usleep(200000); write(p[1], "x", 1); return NULL; }
int main(void) {
    struct sigaction sa = {0}; sa.sa_handler = h; sigaction(SIGALRM, &sa, NULL);
    pipe(p); char c;
    alarm(1); ssize_t r = read(p[0], &c, 1); printf("read no-restart: %zd %s\n", r, strerrorname_np(errno));
    sa.sa_flags = SA_RESTART; sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0,0},{0,50000}}; setitimer(ITIMER_REAL, &it, NULL);
    pthread_t t; pthread_create(&t, NULL, writer, NULL);
    r = read(p[0], &c, 1); printf("read restart: %zd %c\n", r, c); pthread_join(t, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec req = {1, 0}, rem = {0, 0};
    int n = nanosleep(&req, &rem); printf("nanosleep: %d %s rem>0.5=%d\n", n, strerrorname_np(errno), rem.tv_sec == 0 && rem.tv_nsec > 500000000);
    setitimer(ITIMER_REAL, &it, NULL);
    struct pollfd pf = {p[0], POLLIN, 0};
    n = poll(&pf, 1, 1000); printf("poll restart-handler: %d %s\n", n, strerrorname_np(errno));
    setitimer(ITIMER_REAL, &it, NULL);
    n = pause(); printf("pause: %d %s\n", n, strerrorname_np(errno));
    struct sigaction old; sigaction(SIGALRM, NULL, &old); printf("old handler is ours: %d flags restart=%d siginfo=%d\n", old.sa_handler == h, !!(old.sa_flags & SA_RESTART), !!(old.sa_flags & SA_SIGINFO));
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1); pthread_sigmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1); int sig = 0; n = sigwait(&set, &sig); printf("sigwait: %d sig=%d\n", n, sig);
    struct timespec to = {0, 50000000}; n = sigtimedwait(&set, NULL, &to); printf("sigtimedwait: %d %s\n", n, strerrorname_np(errno));
    return 0;
}
