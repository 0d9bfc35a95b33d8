/*
 * fd_placement: with a high RLIMIT_NOFILE (the test harness raises the soft limit to the
 * hard one), where do the process's fds sit once a thread has slept? Natively only the
 * program's own; greenified also greenify's epoll fd and eventfd, which must stay below
 * 1024: the kernel's fd table grows to the highest open fd and every fork copies it.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static void *nap(void *arg)
{
    usleep(1000);
    return arg;
}

int main(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("soft limit above 1024: %s\n", rl.rlim_cur > 1024 ? "yes" : "no");
    pthread_t t;
    pthread_create(&t, NULL, nap, NULL);
    pthread_join(t, NULL);
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir");
        return 1;
    }
    long highest = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long fd = strtol(e->d_name, NULL, 10);
        if (e->d_name[0] != '.' && fd > highest)
            highest = fd;
    }
    closedir(d);
    printf("highest fd below 1024: %s\n", highest < 1024 ? "yes" : "no");
    return 0;
}
