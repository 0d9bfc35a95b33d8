/* gathered: THREADS threads (default stacks) that are all alive at once, whatever runs
 * them: each waits until main has created every one, then ends.
 *
 * Usage: gathered THREADS
 * stdout: "threads=T done"; exits 1 if a create or a join fails. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released;

static void *member(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!released)
        pthread_cond_wait(&go, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    long n = atol(argv[1]);
    pthread_t *threads = calloc(n, sizeof *threads);
    if (!threads)
        return 1;
    for (long i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, member, NULL) != 0) {
            printf("create %ld failed\n", i);
            return 1;
        }
    pthread_mutex_lock(&lock);
    released = 1;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&lock);
    for (long i = 0; i < n; i++)
        if (pthread_join(threads[i], NULL) != 0)
            return 1;
    printf("threads=%ld done\n", n);
    return 0;
}
