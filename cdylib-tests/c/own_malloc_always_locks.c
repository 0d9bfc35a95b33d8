// The program's own malloc locks a pthread mutex on every call: greenify's start-up (its
// configuration allocates) calls that hooked lock while it initialises.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static _Alignas(64) char heap[64 << 20];
static size_t used;

void *malloc(size_t n) {
    pthread_mutex_lock(&heap_lock);
    size_t at = used;
    used += (n + 63) & ~(size_t)63;
    pthread_mutex_unlock(&heap_lock);
    return heap + at;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) {
    void *p = malloc(a * b);
    memset(p, 0, a * b);
    return p;
}
// Blocks never move: the old one ends before the new one, so copy at most the distance.
void *realloc(void *p, size_t n) {
    void *q = malloc(n);
    size_t room = (size_t)((char *)q - (char *)p);
    if (p) memmove(q, p, room < n ? room : n);
    return q;
}

static void *run(void *arg) { return arg; }

int main(void) {
    alarm(10);
    pthread_t t;
    void *result;
    pthread_create(&t, NULL, run, "joined");
    pthread_join(t, &result);
    printf("started, %s\n", (char *)result);
    return 0;
}
