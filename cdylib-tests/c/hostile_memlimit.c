/* hostile_memlimit: threads and memory until the address-space limit (run it under
 * `hostile_limit as BYTES`). Creates threads (each waits for a go signal) until
 * pthread_create fails, releases and joins them, then allocates 1 MiB blocks until malloc
 * returns NULL, frees them, maps a huge region, and checks that small allocations and a new
 * thread still work. Prints only what does not depend on how much fits: the errors seen.
 * Exits 0 when every step behaved (an error, never a crash). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_THREADS 200000
#define MAX_BLOCKS 1000000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go;

static void *waiter(void *arg) {
    pthread_mutex_lock(&m);
    while (!go) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return arg;
}

static const char *name(int e) { return e ? strerrorname_np(e) : "0"; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t *tids = malloc(sizeof *tids * MAX_THREADS);
    int n = 0, err = 0;
    while (n < MAX_THREADS && (err = pthread_create(&tids[n], NULL, waiter, NULL)) == 0) n++;
    printf("pthread_create stopped: %s (after at least one: %s)\n", name(err), n > 0 ? "yes" : "no");
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    int joined = 0;
    for (int i = 0; i < n; i++) joined += pthread_join(tids[i], NULL) == 0;
    printf("joined all: %s\n", joined == n ? "yes" : "no");

    /* The table is static: a malloc of it could itself meet the limit (with 2 workers,
     * 1 run in 50 did, and the program wrote through NULL). */
    static void *blocks[MAX_BLOCKS];
    int b = 0;
    errno = 0;
    while (b < MAX_BLOCKS && (blocks[b] = malloc(1 << 20)) != NULL) {
        memset(blocks[b], 1, 4096);
        b++;
    }
    printf("malloc stopped: %s errno=%s\n", b < MAX_BLOCKS ? "NULL" : "never", name(errno));
    for (int i = 0; i < b; i++) free(blocks[i]);
    errno = 0;
    void *huge = mmap(NULL, 1ULL << 40, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap 1 TiB: %s errno=%s\n", huge == MAP_FAILED ? "failed" : "mapped", name(errno));
    char *small = malloc(64);
    printf("small malloc after: %s\n", small ? "ok" : "NULL");
    free(small);
    pthread_t t;
    go = 1;
    err = pthread_create(&t, NULL, waiter, NULL);
    printf("pthread_create after: %s\n", name(err));
    if (!err) pthread_join(t, NULL);
    return 0;
}
