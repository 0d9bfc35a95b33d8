/* A few cases that show the catalogue's form (the families live in their own files). */
#include "case.h"
#include <fcntl.h>
#include <unistd.h>

CASE(close_bad_fd) { SHOW("close(-1)", close(-1)); SHOW("close(12345)", close(12345)); }

CASE(pipe_read_after_writer_closed) {
    int p[2];
    SHOW("pipe", pipe(p));
    SHOW("write", write(p[1], "ab", 2));
    close(p[1]);
    char b[4];
    SHOW("read data", read(p[0], b, sizeof b));
    SHOW("read eof", read(p[0], b, sizeof b));
}

CASE(usleep_timing) {
    double t0 = now_ms();
    SHOW("usleep(30000)", usleep(30000));
    printf("time=%s\n", timing(now_ms() - t0, 30));
}
