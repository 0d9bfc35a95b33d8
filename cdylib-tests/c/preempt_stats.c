/* Preemption seen from outside (cdylib-tests/tests/preempt.rs): `spin` spins in main until a
 * thread sets a flag after usleep (only preemption lets it run greenified); `compute` joins
 * a thread that computes for 50 ms of CPU time (no other thread needs to run meanwhile);
 * `none` makes no thread. Both print how many OS threads the process has at the end (greenified: the
 * monitor is one, once a thread was created, unless preemption is off). */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int flag;

static void *set_flag_later(void *arg) {
    (void)arg;
    usleep(30000);
    flag = 1;
    return NULL;
}

static void *compute(void *arg) {
    (void)arg;
    struct timespec t;
    do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while (t.tv_sec == 0 && t.tv_nsec < 50 * 1000000L);
    return NULL;
}

static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, set_flag_later, NULL);
        while (!flag) {
        }
        pthread_join(t, NULL);
    } else if (argc > 1 && strcmp(argv[1], "compute") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, compute, NULL);
        pthread_join(t, NULL);
    }
    printf("os threads=%d\n", os_threads());
    return 0;
}
