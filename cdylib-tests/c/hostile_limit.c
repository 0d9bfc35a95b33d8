/* hostile_limit: runs a program under a resource limit.
 *
 *   hostile_limit as|nofile BYTES_OR_COUNT PROGRAM [ARGS...]
 *
 * Sets the soft and the hard RLIMIT_AS (ulimit -v) or RLIMIT_NOFILE to the value, then
 * execs PROGRAM (which inherits LD_PRELOAD, if any): the limit is in force from the
 * program's first instruction, as with `ulimit` in a shell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "as") && strcmp(argv[1], "nofile"))) {
        fprintf(stderr, "usage: %s as|nofile VALUE PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = strtoull(argv[2], NULL, 0);
    if (setrlimit(strcmp(argv[1], "as") ? RLIMIT_NOFILE : RLIMIT_AS, &rl) != 0) {
        perror("setrlimit");
        return 2;
    }
    execv(argv[3], argv + 3);
    perror("execv");
    return 2;
}
