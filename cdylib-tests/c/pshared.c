/* PTHREAD_PROCESS_SHARED objects between two processes, one of which may be greenified
 * and the other not: `pshared NAME N native|green` creates a shared memory object, spawns
 * a peer process (with LD_PRELOAD removed for "native", kept for "green"), and both add 1
 * to a counter N times under a shared mutex (pausing inside the critical section). The
 * peer then waits on a shared semaphore the creator posts 100 ms later, sets a flag under
 * the mutex, signals a shared condvar, and 100 ms later posts another semaphore the
 * creator waits on: both semaphores are really waited on, across the two processes.
 * The creator checks the counter is 2N. PSHARED_PEER_PRELOAD=LIB greenifies the peer of
 * a creator that is not greenified itself. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct shared {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    sem_t done;
    sem_t go;
    long counter;
    int peer_finished;
};

static void add(struct shared *s, long n) {
    for (long i = 0; i < n; i++) {
        if (pthread_mutex_lock(&s->mutex)) { perror("lock"); exit(1); }
        long x = s->counter;
        usleep(50);
        s->counter = x + 1;
        pthread_mutex_unlock(&s->mutex);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: pshared NAME N native|green|peer\n"); return 2; }
    const char *name = argv[1];
    long n = atol(argv[2]);
    int peer = !strcmp(argv[3], "peer");
    int fd = shm_open(name, peer ? O_RDWR : O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror("shm_open"); return 1; }
    if (!peer && ftruncate(fd, sizeof(struct shared))) { perror("ftruncate"); return 1; }
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED) { perror("mmap"); return 1; }
    if (peer) {
        add(s, n);
        if (sem_wait(&s->go)) { perror("sem_wait go"); return 1; }
        usleep(100 * 1000); /* the creator is surely waiting on the condvar by now */
        pthread_mutex_lock(&s->mutex);
        s->peer_finished = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mutex);
        usleep(100 * 1000); /* and then on the semaphore */
        sem_post(&s->done);
        return 0;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->mutex, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&s->cond, &ca);
    sem_init(&s->done, 1, 0);
    sem_init(&s->go, 1, 0);

    /* the peer's environment: ours, less LD_PRELOAD for a native peer */
    int count = 0;
    while (environ[count]) count++;
    char **env = calloc(count + 2, sizeof *env);
    int k = 0;
    for (int i = 0; i < count; i++)
        if (strcmp(argv[3], "native") || strncmp(environ[i], "LD_PRELOAD=", 11)) env[k++] = environ[i];
    const char *peer_preload = getenv("PSHARED_PEER_PRELOAD");
    char preload[4096];
    if (peer_preload && !strcmp(argv[3], "green") && !getenv("LD_PRELOAD")) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", peer_preload);
        env[k++] = preload;
    }
    char *peer_argv[] = { argv[0], argv[1], argv[2], "peer", NULL };
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, peer_argv, env);
    if (err) { fprintf(stderr, "posix_spawn: %s\n", strerror(err)); shm_unlink(name); return 1; }

    add(s, n);
    usleep(100 * 1000); /* the peer is surely waiting on the semaphore by now */
    sem_post(&s->go);
    pthread_mutex_lock(&s->mutex);
    while (!s->peer_finished) pthread_cond_wait(&s->cond, &s->mutex);
    pthread_mutex_unlock(&s->mutex);
    sem_wait(&s->done);
    int status;
    waitpid(pid, &status, 0);
    shm_unlink(name);
    printf("counter=%ld expected=%ld peer_exit=%d\n", s->counter, 2 * n,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return s->counter == 2 * n ? 0 : 1;
}
