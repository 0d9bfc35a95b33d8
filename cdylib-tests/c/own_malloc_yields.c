// The program's own malloc takes a pthread mutex once threads exist (as jemalloc's thread
// caches) and may be switched out while holding it (here: sched_yield inside). Meanwhile
// main's pthread_setspecific needs room for more values: greenify's allocation of that
// room must wait for the lock as the program's code does, by parking.
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static _Alignas(64) char heap[256 << 20];
static size_t used;
static volatile int locking;

void *malloc(size_t n) {
    int lock = locking;
    if (lock) {
        pthread_mutex_lock(&heap_lock);
        sched_yield();
    }
    size_t at = used;
    used += (n + 63) & ~(size_t)63;
    if (lock) pthread_mutex_unlock(&heap_lock);
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

static void *hold_briefly(void *arg) {
    pthread_mutex_lock(&heap_lock);
    for (int i = 0; i < 3; i++) sched_yield();
    pthread_mutex_unlock(&heap_lock);
    return arg;
}

static void *allocator(void *arg) {
    for (int i = 0; i < 200; i++) free(malloc(32));
    return arg;
}

int main(void) {
    alarm(10);
    pthread_key_t keys[64];
    for (int i = 0; i < 64; i++) pthread_key_create(&keys[i], NULL);
    // A first wait on the heap lock while malloc does not lock yet: greenify's bookkeeping
    // of waiters on that lock exists before the test (what it takes to make it is
    // another matter).
    pthread_t t;
    pthread_create(&t, NULL, hold_briefly, NULL);
    sched_yield();
    pthread_mutex_lock(&heap_lock);
    pthread_mutex_unlock(&heap_lock);
    pthread_join(t, NULL);

    locking = 1;
    pthread_create(&t, NULL, allocator, NULL);
    for (int i = 0; i < 64; i++) {
        pthread_setspecific(keys[i], &keys[i]);
        sched_yield();
    }
    pthread_join(t, NULL);
    int kept = 0;
    for (int i = 0; i < 64; i++) kept += pthread_getspecific(keys[i]) == &keys[i];
    printf("values kept: %d/64\n", kept);
    return 0;
}
