/* stdio over a socket: fdopen, then fgets/fprintf/fflush while another thread keeps
 * ticking. Natively the ticker has its own OS thread; greenified, fgets must park (the
 * stream's I/O goes through greenify) for the ticker to run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int peer;
static volatile int stop, ticks;

static void *ticker(void *arg) {
    (void)arg;
    while (!stop) {
        usleep(10 * 1000);
        ticks++;
    }
    return NULL;
}

static void *talker(void *arg) {
    (void)arg;
    char buf[64];
    for (int i = 0; i < 3; i++) {
        usleep(60 * 1000);
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        if (write(peer, buf, (size_t)n) != n) return NULL;
    }
    ssize_t n = read(peer, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("peer got: %s", buf);
    return NULL;
}

int main(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    peer = sv[1];
    FILE *f = fdopen(sv[0], "r+");
    printf("fileno matches: %d\n", fileno(f) == sv[0]);
    pthread_t tt, tk;
    pthread_create(&tk, NULL, ticker, NULL);
    pthread_create(&tt, NULL, talker, NULL);
    char line[64];
    int before = ticks, lines = 0;
    while (lines < 3 && fgets(line, sizeof line, f)) {
        printf("got: %s", line);
        lines++;
    }
    printf("ticker ran during fgets: %d\n", ticks - before >= 5);
    fprintf(f, "thanks %d\n", lines);
    fflush(f);
    pthread_join(tt, NULL);
    stop = 1;
    pthread_join(tk, NULL);
    fclose(f);
    return 0;
}
