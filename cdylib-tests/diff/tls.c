/* Thread-local storage and thread identity: every thread has its own TCB, so its
 * __thread variables, errno, pthread_self() and what glibc reads from the TCB are its own,
 * across parks and in libraries loaded after the threads started. */
#include "case.h"
#include <dlfcn.h>
#include <locale.h>
#include <resolv.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <threads.h>

#define NTHREADS 4

static __thread long counter;

static void *count_to(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        counter++;
        if (i % 10 == 0) usleep(1000);
    }
    return (void *)counter;
}

CASE(tls_counter_per_thread) {
    pthread_t t[NTHREADS];
    counter = 1000;
    for (long i = 0; i < NTHREADS; i++) pthread_create(&t[i], NULL, count_to, (void *)(50 + i));
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d counted %ld\n", i, (long)r);
    }
    printf("main's counter %ld\n", counter);
}

static void *errno_keeper(void *arg) {
    errno = (int)(long)arg;
    usleep(5000);
    int kept = errno == (int)(long)arg;
    errno = 0;
    usleep(5000);
    return (void *)(long)(kept && errno == 0);
}

CASE(tls_errno_per_thread_across_parks) {
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, errno_keeper, (void *)(long)(EINTR + i));
    errno = ENOENT;
    usleep(2000);
    printf("main kept its errno: %d\n", errno == ENOENT);
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d kept its errno: %ld\n", i, (long)r);
    }
}

/* Many pairs of threads hand a token to each other over socketpairs, as a server's
 * connections do: every read parks, and with several workers a thread resumes on whichever
 * worker takes it, right after another thread ran there. Each checks after every park
 * that its __thread value, errno's address and pthread_self() are its own (called through
 * volatile pointers: both functions are declared const, and gcc would reuse the first
 * answer), and that errno survives a yield. */
#define PAIRS 32
#define ROUNDS 300

static __thread long pair_mine;
static int *(*volatile errno_at)(void) = __errno_location;
static pthread_t (*volatile self_is)(void) = pthread_self;

struct pair_end {
    int fd;
    long id;
    long kept;
};

static void *pair_run(void *arg) {
    struct pair_end *end = arg;
    pair_mine = end->id;
    int *my_errno = errno_at();
    pthread_t me = self_is();
    int marker = (int)(end->id % 100) + 1;
    long kept = 0;
    char token = 't';
    for (int i = 0; i < ROUNDS; i++) {
        if (end->id % 2 == 0 && write(end->fd, &token, 1) != 1) break;
        if (read(end->fd, &token, 1) != 1) break;
        errno = marker;
        sched_yield();
        kept += pair_mine == end->id && errno_at() == my_errno && *my_errno == marker &&
                pthread_equal(self_is(), me);
        if (end->id % 2 == 1 && write(end->fd, &token, 1) != 1) break;
    }
    end->kept = kept;
    return NULL;
}

CASE(tls_many_threads_keep_their_tls_across_fd_parks) {
    static struct pair_end ends[2 * PAIRS];
    pthread_t t[2 * PAIRS];
    for (int p = 0; p < PAIRS; p++) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        for (int k = 0; k < 2; k++) {
            ends[2 * p + k] = (struct pair_end){.fd = sv[k], .id = 2 * p + k, .kept = 0};
        }
    }
    for (int i = 0; i < 2 * PAIRS; i++) pthread_create(&t[i], NULL, pair_run, &ends[i]);
    long all = 0;
    for (int i = 0; i < 2 * PAIRS; i++) {
        pthread_join(t[i], NULL);
        all += ends[i].kept == ROUNDS;
        close(ends[i].fd);
    }
    printf("threads whose TLS, errno and pthread_self() held in every round: %ld of %d\n",
           all, 2 * PAIRS);
}

static uintptr_t tcb_self(void) {
    uintptr_t self;
    __asm__ volatile("mov %%fs:0x10, %0" : "=r"(self));
    return self;
}

static uintptr_t tcb_word(int offset) {
    uintptr_t *tcb;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tcb));
    return tcb[offset / 8];
}

struct ident {
    pthread_t from_create;
    int self_is_tcb, equal_to_create, thrd_current_agrees, same_stack_guard, same_pointer_guard;
    int res_is_own, cpu_known;
};

static uintptr_t main_stack_guard, main_pointer_guard;
static struct __res_state *main_res;

static void *identify(void *arg) {
    struct ident *id = arg;
    usleep(2000);
    pthread_t me = pthread_self();
    id->self_is_tcb = (uintptr_t)me == tcb_self();
    id->equal_to_create = pthread_equal(me, id->from_create) != 0;
    id->thrd_current_agrees = pthread_equal((pthread_t)thrd_current(), me) != 0;
    id->same_stack_guard = tcb_word(0x28) == main_stack_guard;
    id->same_pointer_guard = tcb_word(0x30) == main_pointer_guard;
    id->res_is_own = __res_state() != main_res && __res_state() != NULL;
    id->cpu_known = sched_getcpu() >= 0;
    return NULL;
}

CASE(tls_pthread_self_is_the_tcb) {
    main_stack_guard = tcb_word(0x28);
    main_pointer_guard = tcb_word(0x30);
    main_res = __res_state();
    printf("main: self is tcb %d\n", (uintptr_t)pthread_self() == tcb_self());
    printf("main: thrd_current agrees %d\n", pthread_equal((pthread_t)thrd_current(), pthread_self()));
    struct ident ids[NTHREADS] = {0};
    for (int i = 0; i < NTHREADS; i++) pthread_create(&ids[i].from_create, NULL, identify, &ids[i]);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(ids[i].from_create, NULL);
        struct ident *id = &ids[i];
        printf("thread %d: self is tcb %d, equal to create %d, thrd_current %d, stack guard %d, "
               "pointer guard %d, own resolver state %d, cpu %d\n",
               i, id->self_is_tcb, id->equal_to_create, id->thrd_current_agrees,
               id->same_stack_guard, id->same_pointer_guard, id->res_is_own, id->cpu_known);
    }
    printf("distinct handles %d\n", !pthread_equal(ids[0].from_create, ids[1].from_create));
}

/* A canary checked after a park in the middle of the function, and a longjmp across one
 * (the pointer guard mangles jmp_buf). */
__attribute__((stack_protect, noinline)) static int guarded(int n) {
    volatile char buf[64];
    for (int i = 0; i < 64; i++) buf[i] = (char)(i + n);
    usleep(2000);
    int sum = 0;
    for (int i = 0; i < 64; i++) sum += buf[i];
    return sum;
}

static void *guard_user(void *arg) {
    jmp_buf env;
    volatile int stage = 0;
    if (setjmp(env) == 0) {
        stage = 1;
        usleep(1000);
        longjmp(env, 1);
    }
    return (void *)(long)(guarded((int)(long)arg) == 64 * 63 / 2 + 64 * (int)(long)arg && stage == 1);
}

CASE(tls_stack_protector_and_longjmp_in_threads) {
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++) pthread_create(&t[i], NULL, guard_user, (void *)i);
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: %s\n", i, r ? "ok" : "wrong");
    }
}

/* C++ thread_local destructors are registered with __cxa_thread_atexit_impl; glibc runs them
 * when the thread exits, before the pthread key destructors. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;

static char order[64];
static int order_len;
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t order_key;

static void note(char c) {
    pthread_mutex_lock(&order_lock);
    order[order_len++] = c;
    pthread_mutex_unlock(&order_lock);
}

static void tls_dtor(void *obj) { note(*(char *)obj); }
static void key_dtor(void *value) { note(*(char *)value); }

static void *registers_dtors(void *arg) {
    static char names[] = "ABCD";
    static char keys[] = "abcd";
    long i = (long)arg;
    pthread_setspecific(order_key, &keys[i]);
    __cxa_thread_atexit_impl(tls_dtor, &names[i], &__dso_handle);
    usleep(1000);
    return NULL;
}

CASE(tls_thread_atexit_destructors_run_before_key_destructors) {
    pthread_key_create(&order_key, key_dtor);
    for (long i = 0; i < NTHREADS; i++) {
        pthread_t t;
        pthread_create(&t, NULL, registers_dtors, (void *)i);
        pthread_join(t, NULL);
    }
    printf("destructor order: %.*s\n", order_len, order);
}

/* A library loaded after threads started, with an initial-exec and a global-dynamic
 * __thread, each with an initial value. */
static const char *lib_source =
    "__attribute__((tls_model(\"initial-exec\"))) __thread int ie_var = 7;\n"
    "__thread int gd_var = 5;\n"
    "int ie_get(void) { return ie_var; }\n"
    "void ie_set(int v) { ie_var = v; }\n"
    "int gd_get(void) { return gd_var; }\n"
    "void gd_set(int v) { gd_var = v; }\n";

static int (*ie_get)(void), (*gd_get)(void);
static void (*ie_set)(int), (*gd_set)(int);
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t loaded_cond = PTHREAD_COND_INITIALIZER;
static int loaded;

static int build_library(char *path) {
    char dir[] = "/tmp/greenify-tls-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    char src[256];
    snprintf(src, sizeof src, "%s/lib.c", dir);
    snprintf(path, 256, "%s/libtlsdl.so", dir);
    FILE *f = fopen(src, "w");
    fputs(lib_source, f);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("cc", "cc", "-shared", "-fPIC", "-O2", "-o", path, src, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    unlink(src);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void *uses_library(void *arg) {
    long id = (long)arg;
    pthread_mutex_lock(&loaded_lock);
    while (!loaded) pthread_cond_wait(&loaded_cond, &loaded_lock);
    pthread_mutex_unlock(&loaded_lock);
    int ie0 = ie_get(), gd0 = gd_get();
    ie_set(100 + id);
    gd_set(200 + id);
    usleep(3000);
    int kept = ie_get() == 100 + id && gd_get() == 200 + id;
    return (void *)(long)(ie0 * 1000 + gd0 * 10 + kept);
}

CASE(tls_dlopen_initial_exec_and_dynamic_in_threads_before_and_after) {
    char path[256];
    if (build_library(path) != 0) {
        printf("no compiler\n");
        return;
    }
    pthread_t before[2], after[2];
    for (long i = 0; i < 2; i++) pthread_create(&before[i], NULL, uses_library, (void *)i);
    usleep(2000);
    void *h = dlopen(path, RTLD_NOW);
    unlink(path);
    *strrchr(path, '/') = 0;
    rmdir(path);
    if (!h) {
        printf("dlopen failed\n");
        exit(1);
    }
    ie_get = (int (*)(void))dlsym(h, "ie_get");
    gd_get = (int (*)(void))dlsym(h, "gd_get");
    ie_set = (void (*)(int))dlsym(h, "ie_set");
    gd_set = (void (*)(int))dlsym(h, "gd_set");
    pthread_mutex_lock(&loaded_lock);
    loaded = 1;
    pthread_cond_broadcast(&loaded_cond);
    pthread_mutex_unlock(&loaded_lock);
    for (long i = 0; i < 2; i++) pthread_create(&after[i], NULL, uses_library, (void *)(2 + i));
    printf("main: ie %d gd %d\n", ie_get(), gd_get());
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(before[i], &r);
        printf("created before dlopen %d: %ld (ie*1000 + gd*10 + kept)\n", i, (long)r);
    }
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(after[i], &r);
        printf("created after dlopen %d: %ld\n", i, (long)r);
    }
    printf("main after: ie %d gd %d\n", ie_get(), gd_get());
}

static void *in_c_locale(void *arg) {
    (void)arg;
    locale_t l = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    uselocale(l);
    usleep(1000);
    int mine = uselocale((locale_t)0) == l;
    uselocale(LC_GLOBAL_LOCALE);
    freelocale(l);
    return (void *)(long)mine;
}

CASE(tls_uselocale_is_per_thread) {
    pthread_t t;
    pthread_create(&t, NULL, in_c_locale, NULL);
    usleep(500);
    printf("main still global: %d\n", uselocale((locale_t)0) == LC_GLOBAL_LOCALE);
    void *r;
    pthread_join(t, &r);
    printf("thread kept its locale: %ld\n", (long)r);
    pthread_create(&t, NULL, in_c_locale, NULL);
    pthread_join(t, &r);
    printf("next thread too: %ld\n", (long)r);
}


/* Stream locks: a thread parks while it holds a stream's lock (flockfile), and another
 * thread writes to the stream meanwhile, with its own flockfile section or a bare fputs. */
static FILE *shared_stream;
static sem_t stream_held;

static void *holds_stream(void *arg) {
    (void)arg;
    flockfile(shared_stream);
    fputs("a1", shared_stream);
    sem_post(&stream_held);
    usleep(20000);
    fputs("a2", shared_stream);
    funlockfile(shared_stream);
    return NULL;
}

static void *section_after(void *arg) {
    (void)arg;
    sem_wait(&stream_held);
    flockfile(shared_stream);
    fputs("b1", shared_stream);
    fputs("b2", shared_stream);
    funlockfile(shared_stream);
    return NULL;
}

static void *bare_write(void *arg) {
    (void)arg;
    sem_wait(&stream_held);
    fputs("b", shared_stream);
    return NULL;
}

static void stream_contention(void *(*other)(void *), int sorted) {
    shared_stream = tmpfile();
    sem_init(&stream_held, 0, 0);
    pthread_t a, b;
    pthread_create(&a, NULL, holds_stream, NULL);
    pthread_create(&b, NULL, other, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    char buf[64] = {0};
    rewind(shared_stream);
    size_t n = fread(buf, 1, sizeof buf - 1, shared_stream);
    fclose(shared_stream);
    if (sorted) {
        /* A bare write may land inside the other's section (see the README): only what
         * was written is compared. */
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (buf[j] < buf[i]) {
                    char c = buf[i];
                    buf[i] = buf[j];
                    buf[j] = c;
                }
    }
    printf("stream holds %zu bytes: %s\n", n, buf);
}

CASE(tls_flockfile_sections_exclude_each_other_across_parks) {
    stream_contention(section_after, 0);
}

CASE(tls_write_to_a_stream_another_thread_holds_while_parked_never_hangs) {
    stream_contention(bare_write, 1);
}

/* A socket stream (fdopen) whose write parks inside glibc's stream lock, while another
 * thread writes to the same stream. */
static int stream_reader_fd;

static void *big_write(void *arg) {
    static char big[1 << 20];
    memset(big, 'a', sizeof big);
    fwrite(big, 1, sizeof big, (FILE *)arg);
    fflush((FILE *)arg);
    return NULL;
}

static void *small_write(void *arg) {
    usleep(5000);
    fputs("b", (FILE *)arg);
    fflush((FILE *)arg);
    return NULL;
}

static void *drain(void *arg) {
    (void)arg;
    usleep(20000);
    long n = 0, bs = 0;
    char buf[65536];
    ssize_t r;
    while ((r = read(stream_reader_fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) bs += buf[i] == 'b';
        n += r;
    }
    printf("received %ld bytes, %ld of them b\n", n, bs);
    return NULL;
}

CASE(tls_socket_stream_written_by_two_threads_while_one_parks_never_hangs) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    stream_reader_fd = sv[1];
    FILE *f = fdopen(sv[0], "w");
    pthread_t a, b, c;
    pthread_create(&c, NULL, drain, NULL);
    pthread_create(&a, NULL, big_write, f);
    pthread_create(&b, NULL, small_write, f);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    fclose(f);
    pthread_join(c, NULL);
    close(sv[1]);
}
