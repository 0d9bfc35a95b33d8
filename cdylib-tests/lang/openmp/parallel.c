/*
 * Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs; both
 * runs must print the same lines, so it prints only facts that do not depend on scheduling.
 *
 * A team of 4 OpenMP threads (libgomp: its own thread pool, spinning and futex waits) does a
 * reduction, phases separated by barriers, and a critical section, then a parallel for with a
 * dynamic schedule.
 */
#include <omp.h>
#include <stdio.h>

#define TEAM 4
#define N 1000000L
#define PHASES 50

int main(void)
{
    long sum = 0;
    int team = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);   /* a run killed on a hang shows how far it got */

#pragma omp parallel num_threads(TEAM) reduction(+ : sum)
    {
#pragma omp single
        team = omp_get_num_threads();
#pragma omp for schedule(static)
        for (long i = 0; i < N; i++)
            sum += (i * i) % 7;
    }
    printf("team: %d\n", team);
    printf("reduction: %ld\n", sum);

    /* Each phase: every thread writes its slot, a barrier, then each reads its neighbour's
     * slot (written in this phase), a barrier before the next phase overwrites it. */
    int slot[TEAM] = {0};
    int wrong = 0;
#pragma omp parallel num_threads(TEAM) reduction(+ : wrong)
    {
        int me = omp_get_thread_num(), n = omp_get_num_threads();
        for (int phase = 1; phase <= PHASES; phase++) {
            slot[me] = phase * 100 + me;
#pragma omp barrier
            int next = (me + 1) % n;
            if (slot[next] != phase * 100 + next)
                wrong++;
#pragma omp barrier
        }
    }
    printf("barrier phases: %d, wrong reads: %d\n", PHASES, wrong);

    long counter = 0;
    int entered[TEAM] = {0};
#pragma omp parallel num_threads(TEAM)
    {
        for (int k = 0; k < 10000; k++) {
#pragma omp critical
            {
                long c = counter;   /* a torn update would lose increments */
                counter = c + 1;
                entered[omp_get_thread_num()]++;
            }
        }
    }
    printf("critical: %ld (per thread: %d %d %d %d)\n", counter, entered[0], entered[1],
           entered[2], entered[3]);

    long done = 0;
#pragma omp parallel for num_threads(TEAM) schedule(dynamic, 7) reduction(+ : done)
    for (int i = 0; i < 1000; i++)
        done += i % 3;
    printf("dynamic for: %ld\n", done);
    printf("done\n");
    return 0;
}
