/* A name lookup that takes 500 ms (a slow DNS server) while another thread keeps
 * ticking: natively the ticker runs on its own OS thread; greenified, the lookup must run
 * on a helper thread so the ticker's green thread keeps running. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop, ticks;

static void *ticker(void *arg) {
    (void)arg;
    while (!stop) {
        usleep(20 * 1000);
        ticks++;
    }
    return NULL;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "slow.greenify.test";
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    usleep(30 * 1000);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int before = ticks;
    double t0 = now_ms();
    int r = getaddrinfo(name, NULL, &hints, &res);
    double took = now_ms() - t0;
    int during = ticks - before;
    stop = 1;
    pthread_join(t, NULL);
    char text[INET_ADDRSTRLEN] = "-";
    if (r == 0)
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, text, sizeof text);
    printf("getaddrinfo: %s address=%s\n", r == 0 ? "ok" : gai_strerror(r), text);
    printf("lookup took at least 400 ms: %d\n", took >= 400);
    printf("the other thread ran during the lookup: %d\n", during >= 10);
    if (res) freeaddrinfo(res);
    return 0;
}
