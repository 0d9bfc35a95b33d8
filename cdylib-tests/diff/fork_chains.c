/* Fork chains from threads other than main: a thread forks, in the child a thread it made
 * forks again, and so on three processes deep. Greenified, the forking green thread's TCB
 * (greenify's memory) becomes glibc's one thread descriptor in the child, and in a
 * grandchild glibc's fork puts it in its stack cache as a free stack: a new OS thread
 * there (the second worker, a spare, the monitor) must not get it. Each level makes
 * threads that compute with thread-local and heap data, wait and exit; the thread that
 * forked exits while the others run; the deepest level starts a spare (a call no hook
 * sees); every level below the top runs two spinning threads that must run on two OS
 * threads when the top's did (greenified: it starts its second worker). Every process
 * checks its own results and passes the first failure up as its exit status, so only the
 * top's report is printed. */
#include "case.h"
#include <sys/wait.h>

KILL_IF_HUNG_AFTER(30);

/* How a chain is made. */
struct fc_plan {
    int depth;          /* processes below the top */
    size_t fork_stack;  /* the forking threads' stack size (0: the default) */
    int forker_exits;   /* the thread that forked exits in the child while others run */
    int spare;          /* the deepest level keeps an OS thread in a call no hook sees */
    int stuck_at_fork;  /* two threads hold their OS threads in such calls as each level
                         * forks: greenified, the forking thread may run on a spare */
    int main_forks;     /* the top level is main's and main forks it (greenified, main
                         * runs on either worker) */
};

static struct fc_plan fc_plan;
/* Whether the top's spinning pair ran on two OS threads (greenified with one worker: no). */
static int fc_top_apart;

static __thread long fc_tls[64];

/* Computes with thread-local and heap data, waiting between rounds; returns 0 when every
 * result is as expected. */
static void *fc_compute(void *arg) {
    long seed = (long)arg;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 64; i++) fc_tls[i] = seed * 1000 + round * 64 + i;
        size_t n = 1000 + (size_t)(seed * 37 + round * 101) % 3000;
        long *heap = malloc(n * sizeof *heap);
        if (!heap) return (void *)1L;
        for (size_t i = 0; i < n; i++) heap[i] = (long)i ^ seed;
        msleep(1);
        for (size_t i = 0; i < n; i++)
            if (heap[i] != ((long)i ^ seed)) return (void *)2L;
        free(heap);
        for (int i = 0; i < 64; i++)
            if (fc_tls[i] != seed * 1000 + round * 64 + i) return (void *)3L;
    }
    return NULL;
}

/* Holds its OS thread in a call no hook sees: another thread must run meanwhile (a spare
 * stands in greenified). */
static void *fc_stuck(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) nanosleep_unhooked(10);
    return NULL;
}

static int fc_wait_child(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return 90;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 100 + WTERMSIG(st);
}

static int fc_level(int level);

static pthread_t fc_spawn(void *(*fn)(void *), void *arg, size_t stack) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    if (stack) pthread_attr_setstacksize(&a, stack);
    pthread_t t;
    if (pthread_create(&t, &a, fn, arg) != 0) {
        pthread_attr_destroy(&a);
        _exit(80);
    }
    pthread_attr_destroy(&a);
    return t;
}

/* Forks the next level; in the child this thread is the only one and runs that level. */
static void *fc_forker(void *arg) {
    int level = (int)(long)arg;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return (void *)91L;
    if (pid == 0) {
        alarm(20);
        return (void *)(long)fc_level(level + 1);
    }
    return (void *)(long)fc_wait_child(pid);
}

/* The rest of a level, on a thread of its own when the forking thread exits: joins the
 * computing threads, forks deeper, and ends the process with the first failure. */
struct fc_rest {
    int level;
    pthread_t compute[3];
};

static int fc_finish(struct fc_rest *r) {
    int code = 0;
    /* A child's pair gets long enough to start its second OS thread on a loaded machine. */
    if (r->level > 0 && pair_ran_apart(fc_top_apart ? 5000 : 100, pair_member) != fc_top_apart)
        code = 10 * r->level + 5;
    /* A few short threads first: one may get the TCB of the thread that exited. */
    for (int i = 0; i < 3; i++) {
        void *rv = NULL;
        pthread_join(fc_spawn(fc_compute, (void *)(long)(50 + i), 0), &rv);
        if (!code && rv) code = 10 * r->level + (int)(long)rv;
    }
    if (r->level < fc_plan.depth) {
        pthread_t stuck[2];
        if (fc_plan.stuck_at_fork)
            for (int i = 0; i < 2; i++) stuck[i] = fc_spawn(fc_stuck, NULL, 0);
        void *rv = NULL;
        if (r->level == 0 && fc_plan.main_forks)
            rv = fc_forker((void *)0L);
        else
            pthread_join(fc_spawn(fc_forker, (void *)(long)r->level, fc_plan.fork_stack), &rv);
        if (!code && rv) code = (int)(long)rv;
        if (fc_plan.stuck_at_fork)
            for (int i = 0; i < 2; i++) pthread_join(stuck[i], NULL);
    } else if (fc_plan.spare) {
        pthread_t s = fc_spawn(fc_stuck, NULL, 0);
        void *rv = NULL;
        pthread_join(fc_spawn(fc_compute, (void *)77L, 0), &rv);
        if (!code && rv) code = 10 * r->level + 4;
        pthread_join(s, NULL);
    }
    for (int i = 0; i < 3; i++) {
        void *rv = NULL;
        pthread_join(r->compute[i], &rv);
        if (!code && rv) code = 10 * r->level + (int)(long)rv;
    }
    return code;
}

static void *fc_finish_and_exit(void *arg) {
    struct fc_rest *r = arg;
    int code = fc_finish(r);
    fflush(stdout);
    _exit(code);
}

/* One level of the chain, on the thread that forked it (the top: main or a thread of its). */
static int fc_level(int level) {
    static struct fc_rest rest;
    rest.level = level;
    for (int i = 0; i < 3; i++)
        rest.compute[i] = fc_spawn(fc_compute, (void *)(long)(level * 10 + i), 0);
    if (level > 0 && fc_plan.forker_exits) {
        fc_spawn(fc_finish_and_exit, &rest, 0);
        /* Detached, it is reaped as it exits (greenified, its TCB could be reused). */
        pthread_detach(pthread_self());
        pthread_exit(NULL);
    }
    int code = fc_finish(&rest);
    if (level > 0) {
        fflush(stdout);
        _exit(code);
    }
    return code;
}

static void *fc_top(void *arg) {
    (void)arg;
    return (void *)(long)fc_level(0);
}

static void fc_run(struct fc_plan plan, int runs) {
    fc_plan = plan;
    fc_top_apart = pair_ran_apart(1000, pair_member);
    int ok = 0, first = 0;
    for (int i = 0; i < runs; i++) {
        void *rv = NULL;
        if (plan.main_forks)
            rv = fc_top(NULL);
        else
            pthread_join(fc_spawn(fc_top, NULL, plan.fork_stack), &rv);
        if (rv == NULL)
            ok++;
        else if (!first)
            first = (int)(long)rv;
    }
    printf("chains that ran as natively: %d of %d (first failure %d)\n", ok, runs, first);
}

/* The forking threads have 4 MiB stacks: a free descriptor of that stack size is what
 * glibc would give a new 2 MiB OS thread (a worker, a spare) when no exact size is free. */
CASE(fc_chain_3_deep_big_stacks_forker_exits) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 4 << 20, .forker_exits = 1, .spare = 1 }, 4);
}

CASE(fc_chain_3_deep_big_stacks_forker_stays) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 4 << 20, .forker_exits = 0, .spare = 1 }, 4);
}

/* Default stacks (greenified 256 KiB: within 4x of the monitor's 64 KiB). */
CASE(fc_chain_3_deep_default_stacks_forker_exits) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 0, .forker_exits = 1, .spare = 1 }, 4);
}

/* 1 MiB stacks (within 4x of greenify's 512 KiB helper threads). */
CASE(fc_chain_3_deep_1m_stacks_forker_exits) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 1 << 20, .forker_exits = 1, .spare = 1 }, 4);
}

/* Both OS threads are held in calls no hook sees while each level forks. */
CASE(fc_chain_3_deep_fork_beside_stuck_threads) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 4 << 20, .forker_exits = 1, .spare = 1, .stuck_at_fork = 1 }, 4);
}

/* Main forks the first child (greenified, from whichever worker runs it then). */
CASE(fc_chain_3_deep_from_main_then_threads) {
    fc_run((struct fc_plan){ .depth = 3, .fork_stack = 4 << 20, .forker_exits = 1, .spare = 1, .main_forks = 1 }, 4);
}
