/* The fd family: read/write/readv/writev, pipe/pipe2, close/dup/dup2/dup3, fcntl, ioctl,
 * open/openat/creat, lseek/pread/pwrite, sendfile: normal paths, error paths (EBADF,
 * EFAULT, EINVAL, EPIPE), partial transfers, fd numbering, and fds shared between threads. */
#include "case.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* Empties a pipe; one read takes a whole 64 KiB pipe at once (under the pipe's lock), so a
 * waiting writer wakes to a completely empty pipe. */
static void drain(int fd) {
    char *b = malloc(1 << 16);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (read(fd, b, 1 << 16) > 0) {}
    fcntl(fd, F_SETFL, fl);
    free(b);
}
static void eventfd_one(int fd) { uint64_t one = 1; (void)!write(fd, &one, 8); }

/* Fills a pipe's write end until it would block; returns the bytes written. */
static long fill_pipe(int wfd) {
    int fl = fcntl(wfd, F_GETFL);
    fcntl(wfd, F_SETFL, fl | O_NONBLOCK);
    static char buf[4096];
    long total = 0;
    for (;;) {
        ssize_t n = write(wfd, buf, sizeof buf);
        if (n <= 0) break;
        total += n;
    }
    fcntl(wfd, F_SETFL, fl);
    return total;
}

/* Lowers the soft RLIMIT_NOFILE to at most `max` (so cases behave alike everywhere);
 * returns the soft limit now in force. Called before the case's first hooked call. */
static long cap_nofile(long max) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur == RLIM_INFINITY || (long)rl.rlim_cur > max) {
        rl.rlim_cur = max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

static char tmp_path[64];

/* A fresh temporary file (O_RDWR), unlinked at once. */
static int tmpfile_fd(void) {
    strcpy(tmp_path, "/tmp/greenify-diff-XXXXXX");
    int fd = mkstemp(tmp_path);
    unlink(tmp_path);
    return fd;
}

static void show_flags(const char *what, int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1) {
        printf("%s: F_GETFL failed errno=%s\n", what, en(errno));
        return;
    }
    printf("%s: acc=%d nonblock=%d append=%d\n", what, fl & O_ACCMODE, !!(fl & O_NONBLOCK),
           !!(fl & O_APPEND));
}

static void show_elapsed(double t0, double expected) {
    printf("time=%s\n", timing(now_ms() - t0, expected));
}

/* ---- read / write ------------------------------------------------------------------ */

CASE(io_pipe_write_then_read) {
    int p[2];
    SHOW("pipe", pipe(p));
    SHOW("write", write(p[1], "hello", 5));
    char b[16] = {0};
    SHOW("read", read(p[0], b, sizeof b));
    printf("data=%s\n", b);
}

CASE(io_read_short_count) {
    int p[2];
    pipe(p);
    write(p[1], "abc", 3);
    char b[100];
    SHOW("read 100 of 3", read(p[0], b, sizeof b));
    write(p[1], "defgh", 5);
    SHOW("read 2 of 5", read(p[0], b, 2));
    SHOW("read rest", read(p[0], b, sizeof b));
}

CASE(io_read_waits_for_writer_thread) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(60, write_x, p[1]);
    char b[4];
    SHOW("read", read(p[0], b, sizeof b));
    show_elapsed(t0, 60);
    after_join(a);
}

CASE(io_read_eof_when_writer_thread_closes) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(50, close_fd, p[1]);
    char b[4];
    SHOW("read", read(p[0], b, sizeof b));
    show_elapsed(t0, 50);
    after_join(a);
}

/* A zero-length read on an empty blocking pipe returns 0 at once (fs/pipe.c). */
CASE(io_read_zero_len_empty_pipe) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(300, write_x, p[1]);
    char b[4];
    SHOW("read(0 bytes)", read(p[0], b, 0));
    show_elapsed(t0, 0);
    after_join(a);
}

/* A zero-length write on a full blocking pipe returns 0 at once. */
CASE(io_write_zero_len_full_pipe) {
    int p[2];
    pipe(p);
    printf("filled=%ld\n", fill_pipe(p[1]));
    double t0 = now_ms();
    struct after *a = after(300, drain, p[0]);
    SHOW("write(0 bytes)", write(p[1], "", 0));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_read_bad_fds) {
    char b[4];
    SHOW("read(-1)", read(-1, b, 1));
    SHOW("read(-100)", read(-100, b, 1));
    SHOW("read(9999)", read(9999, b, 1));
    SHOW("read(1<<22)", read(1 << 22, b, 1));
    SHOW("write(-1)", write(-1, "x", 1));
    SHOW("write(9999)", write(9999, "x", 1));
    SHOW("write(1<<22)", write(1 << 22, "x", 1));
}

CASE(io_read_write_closed_fd) {
    int p[2];
    pipe(p);
    close(p[0]);
    close(p[1]);
    char b[4];
    SHOW("read closed", read(p[0], b, 1));
    SHOW("write closed", write(p[1], "x", 1));
    SHOW("close again", close(p[0]));
}

/* read on a pipe's write end: EBADF at once. The read end is closed later by a thread so
 * the case ends even if the call waits. */
CASE(io_read_on_pipe_write_end) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(300, close_fd, p[0]);
    char b[4];
    SHOW("read(write end)", read(p[1], b, 1));
    show_elapsed(t0, 0);
    after_join(a);
}

/* write on a pipe's read end: EBADF at once (write end closed later by a thread). */
CASE(io_write_on_pipe_read_end) {
    int p[2];
    pipe(p);
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_ms();
    struct after *a = after(300, close_fd, p[1]);
    SHOW("write(read end)", write(p[0], "x", 1));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_read_efault_pipe_with_data) {
    int p[2];
    pipe(p);
    write(p[1], "hello", 5);
    SHOW("read((void*)1)", read(p[0], BADPTR, 5));
    char b[8] = {0};
    SHOW("read after", read(p[0], b, sizeof b));
    printf("data=%s\n", b);
}

CASE(io_read_efault_waits_for_data) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    SHOW("read((void*)1)", read(p[0], BADPTR, 5));
    show_elapsed(t0, 50);
    after_join(a);
}

CASE(io_write_efault_pipe) {
    int p[2];
    pipe(p);
    SHOW("write((void*)1)", write(p[1], BADPTR, 10));
    SHOW("write(NULL, 10)", write(p[1], NULLPTR, 10));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("bytes in pipe=%d\n", n);
}

/* A count past the address space is EFAULT (access_ok) before anything is written. */
CASE(io_write_huge_count_efault) {
    alarm(2);
    int p[2];
    pipe(p);
    static char b[64];
    SHOW("write(SIZE_MAX)", write(p[1], b, (size_t)opaque(-1)));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("bytes in pipe=%d\n", n);
    alarm(0);
}

CASE(io_read_huge_count_efault) {
    int p[2];
    pipe(p);
    write(p[1], "abc", 3);
    static char b[64];
    SHOW("read(SIZE_MAX)", read(p[0], b, (size_t)opaque(-1)));
}

CASE(io_efault_socketpair) {
    int s[2];
    SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, s));
    SHOW("write((void*)1)", write(s[0], BADPTR, 4));
    write(s[0], "abcd", 4);
    SHOW("read((void*)1)", read(s[1], BADPTR, 4));
    char b[8] = {0};
    SHOW("read", read(s[1], b, sizeof b));
    printf("data=%s\n", b);
}

CASE(io_efault_regular_file) {
    int fd = tmpfile_fd();
    SHOW("write((void*)1)", write(fd, BADPTR, 4));
    SHOW("write", write(fd, "abcd", 4));
    lseek(fd, 0, SEEK_SET);
    SHOW("read((void*)1)", read(fd, BADPTR, 4));
    close(fd);
}

CASE(io_read_nonblock_pipe2_eagain) {
    int p[2];
    SHOW("pipe2(O_NONBLOCK)", pipe2(p, O_NONBLOCK));
    char b[4];
    double t0 = now_ms();
    SHOW("read empty", read(p[0], b, 1));
    show_elapsed(t0, 0);
    write(p[1], "ab", 2);
    SHOW("read data", read(p[0], b, 4));
}

CASE(io_fcntl_nonblock_pipe_eagain) {
    int p[2];
    pipe(p);
    show_flags("read end", p[0]);
    SHOW("F_SETFL O_NONBLOCK", fcntl(p[0], F_SETFL, O_NONBLOCK));
    show_flags("read end", p[0]);
    char b[4];
    double t0 = now_ms();
    SHOW("read empty", read(p[0], b, 1));
    show_elapsed(t0, 0);
    SHOW("F_SETFL 0", fcntl(p[0], F_SETFL, 0));
    show_flags("read end", p[0]);
    struct after *a = after(40, write_x, p[1]);
    SHOW("read blocking", read(p[0], b, 1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(io_fionbio_pipe_eagain) {
    int p[2];
    pipe(p);
    int on = 1, off = 0;
    SHOW("FIONBIO 1", ioctl(p[0], FIONBIO, &on));
    show_flags("read end", p[0]);
    char b[4];
    SHOW("read empty", read(p[0], b, 1));
    SHOW("FIONBIO 0", ioctl(p[0], FIONBIO, &off));
    show_flags("read end", p[0]);
    double t0 = now_ms();
    struct after *a = after(40, write_x, p[1]);
    SHOW("read blocking", read(p[0], b, 1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(io_nonblock_full_pipe_partial_and_eagain) {
    int p[2];
    pipe2(p, O_NONBLOCK);
    printf("pipe size=%d\n", fcntl(p[1], F_GETPIPE_SZ));
    static char big[100000];
    SHOW("write 100000", write(p[1], big, sizeof big));
    SHOW("write 1 more", write(p[1], big, 1));
    char b[10000];
    SHOW("read 10000", read(p[0], b, sizeof b));
    /* 2 pages freed: a write of more than that is partial */
    SHOW("write 20000", write(p[1], big, 20000));
    SHOW("write again", write(p[1], big, 1));
}

CASE(io_nonblock_write_small_into_nearly_full_pipe) {
    int p[2];
    pipe2(p, O_NONBLOCK);
    static char big[65536];
    SHOW("write 60000", write(p[1], big, 60000));
    SHOW("write 10000", write(p[1], big, 10000));
    SHOW("write 100 (atomic, no room)", write(p[1], big, 100));
}

struct reader {
    int fd;
    long total;
    unsigned sum;
    int chunk;
    int pause_us;
};

static void *slow_reader(void *p) {
    struct reader *r = p;
    char *b = malloc(r->chunk);
    for (;;) {
        ssize_t n = read(r->fd, b, r->chunk);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) r->sum = r->sum * 31 + (unsigned char)b[i];
        r->total += n;
        if (r->pause_us) usleep(r->pause_us);
    }
    free(b);
    return NULL;
}

CASE(io_large_blocking_write_slow_reader) {
    int p[2];
    pipe(p);
    size_t n = 300000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)(i * 7 + i / 251);
    struct reader r = {p[0], 0, 0, 10000, 1000};
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, &r);
    SHOW("write 300000", write(p[1], big, n));
    close(p[1]);
    pthread_join(t, NULL);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)big[i];
    printf("reader total=%ld sum_ok=%d\n", r.total, r.sum == sum);
    free(big);
}

CASE(io_large_blocking_write_socketpair) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    size_t n = 1000000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)(i % 253);
    struct reader r = {s[1], 0, 0, 65536, 200};
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, &r);
    SHOW("write 1000000", write(s[0], big, n));
    shutdown(s[0], SHUT_WR);
    pthread_join(t, NULL);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)big[i];
    printf("reader total=%ld sum_ok=%d\n", r.total, r.sum == sum);
    free(big);
}

/* A blocking write of more than the pipe holds, with the reader leaving: the count written
 * so far (the pipe's 64 KiB plus the two pages the reader freed), then EPIPE. */
static void *read_10000_then_close(void *p) {
    int fd = *(int *)p;
    char b[10000];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = read(fd, b, sizeof b - got);
        if (n <= 0) break;
        got += n;
    }
    msleep(60);
    close(fd);
    return NULL;
}

CASE(io_epipe_partial_blocking_write) {
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    pipe(p);
    pthread_t t;
    pthread_create(&t, NULL, read_10000_then_close, &p[0]);
    static char big[100000];
    SHOW("write 100000", write(p[1], big, sizeof big));
    SHOW("write again", write(p[1], big, 1));
    pthread_join(t, NULL);
}

CASE(io_epipe_sigpipe_ignored) {
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    pipe(p);
    close(p[0]);
    SHOW("write", write(p[1], "x", 1));
    struct iovec v = {"abc", 3};
    SHOW("writev", writev(p[1], &v, 1));
}

CASE(io_epipe_socketpair_sigpipe_ignored) {
    signal(SIGPIPE, SIG_IGN);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    SHOW("write", write(s[0], "x", 1));
}

CASE(io_sigpipe_kills_pipe_writer) {
    int p[2];
    pipe(p);
    close(p[0]);
    printf("writing\n");
    SHOW("write", write(p[1], "x", 1));
    printf("survived\n");
}

CASE(io_sigpipe_kills_socket_writer) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    printf("writing\n");
    SHOW("write", write(s[0], "x", 1));
    printf("survived\n");
}

/* The reader closes while the writer waits on a full pipe: SIGPIPE kills the writer. */
CASE(io_sigpipe_kills_parked_writer) {
    int p[2];
    pipe(p);
    fill_pipe(p[1]);
    struct after *a = after(40, close_fd, p[0]);
    printf("writing\n");
    SHOW("write", write(p[1], "x", 1));
    printf("survived\n");
    after_join(a);
}

/* ---- readv / writev ---------------------------------------------------------------- */

CASE(io_readv_writev_pipe) {
    int p[2];
    pipe(p);
    struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cdefg", 5}};
    SHOW("writev", writev(p[1], w, 3));
    char x[3] = {0}, y[8] = {0};
    struct iovec r[2] = {{x, 2}, {y, 7}};
    SHOW("readv", readv(p[0], r, 2));
    printf("x=%s y=%s\n", x, y);
}

CASE(io_readv_waits_for_writer_thread) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(50, write_x, p[1]);
    char x[4] = {0};
    struct iovec r = {x, 3};
    SHOW("readv", readv(p[0], &r, 1));
    show_elapsed(t0, 50);
    printf("x=%s\n", x);
    after_join(a);
}

/* readv with no iovecs on an empty blocking pipe returns 0 at once. */
CASE(io_readv_zero_iovecs_empty_pipe) {
    int p[2];
    pipe(p);
    struct after *a = after(300, write_x, p[1]);
    char x[4];
    struct iovec r = {x, 3};
    double t0 = now_ms();
    SHOW("readv(iovcnt 0)", readv(p[0], &r, 0));
    show_elapsed(t0, 0);
    after_join(a);
}

/* Invalid iovec counts are EINVAL at once, even on an empty pipe. */
CASE(io_readv_einval_empty_pipe) {
    int p[2];
    pipe(p);
    struct after *a = after(300, write_x, p[1]);
    char x[4];
    struct iovec r = {x, 3};
    double t0 = now_ms();
    SHOW("readv(iovcnt -1)", readv(p[0], &r, (int)opaque(-1)));
    SHOW("readv(iovcnt 1025)", readv(p[0], &r, (int)opaque(1025)));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_readv_efault_empty_pipe) {
    int p[2];
    pipe(p);
    double t0 = now_ms();
    struct after *a = after(300, write_x, p[1]);
    SHOW("readv((void*)1)", readv(p[0], BADPTR, 1));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_readv_writev_bad_fd) {
    char x[4];
    struct iovec v = {x, 3};
    SHOW("readv(-1)", readv(-1, &v, 1));
    SHOW("writev(-1)", writev(-1, &v, 1));
    SHOW("readv(9999)", readv(9999, &v, 1));
    SHOW("writev(9999)", writev(9999, &v, 1));
}

CASE(io_writev_einval) {
    int p[2];
    pipe(p);
    struct iovec v = {"abc", 3};
    SHOW("writev(iovcnt -1)", writev(p[1], &v, (int)opaque(-1)));
    SHOW("writev(iovcnt 0)", writev(p[1], &v, 0));
    SHOW("writev(NULL, 0)", writev(p[1], NULL, 0));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("bytes in pipe=%d\n", n);
}

/* More than IOV_MAX (1024) iovecs: EINVAL, nothing written. */
CASE(io_writev_too_many_iovecs) {
    int p[2];
    pipe(p);
    static struct iovec v[2000];
    for (int i = 0; i < 2000; i++) v[i] = (struct iovec){"z", 1};
    SHOW("writev(2000 iovecs of 1 byte)", writev(p[1], v, 2000));
    for (int i = 0; i < 2000; i++) v[i] = (struct iovec){"four", 4};
    SHOW("writev(2000 iovecs of 4 bytes)", writev(p[1], v, 2000));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("bytes in pipe=%d\n", n);
}

/* Lengths summing past SSIZE_MAX: EINVAL, nothing written. */
CASE(io_writev_length_overflow) {
    alarm(2);
    int p[2];
    pipe(p);
    static char b[16];
    struct iovec v[2] = {{b, SSIZE_MAX}, {b, 16}};
    SHOW("writev(overflowing lengths)", writev(p[1], v, 2));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("bytes in pipe=%d\n", n);
    alarm(0);
}

CASE(io_writev_efault_iov_pointer) {
    int p[2];
    pipe(p);
    SHOW("writev((void*)1 iov)", writev(p[1], BADPTR, 1));
    struct iovec v = {BADPTR, 5};
    SHOW("writev(bad base)", writev(p[1], &v, 1));
}

CASE(io_writev_large_to_pipe_slow_reader) {
    int p[2];
    pipe(p);
    static char a[70000], b2[50000];
    memset(a, 'a', sizeof a);
    memset(b2, 'b', sizeof b2);
    struct reader r = {p[0], 0, 0, 8192, 500};
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, &r);
    struct iovec v[2] = {{a, sizeof a}, {b2, sizeof b2}};
    SHOW("writev 120000", writev(p[1], v, 2));
    close(p[1]);
    pthread_join(t, NULL);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof a; i++) sum = sum * 31 + 'a';
    for (size_t i = 0; i < sizeof b2; i++) sum = sum * 31 + 'b';
    printf("reader total=%ld sum_ok=%d\n", r.total, r.sum == sum);
}

/* ---- pipe / pipe2 ------------------------------------------------------------------ */

CASE(io_pipe2_flags) {
    int p[2];
    SHOW("pipe2(O_CLOEXEC|O_NONBLOCK)", pipe2(p, O_CLOEXEC | O_NONBLOCK));
    printf("FD_CLOEXEC=%d,%d\n", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    show_flags("read end", p[0]);
    show_flags("write end", p[1]);
    int q[2];
    SHOW("pipe2(0)", pipe2(q, 0));
    printf("FD_CLOEXEC=%d,%d\n", fcntl(q[0], F_GETFD), fcntl(q[1], F_GETFD));
    show_flags("read end", q[0]);
    SHOW("pipe2(bogus flags)", pipe2(q, 0x40000000));
    SHOW("pipe2(O_RDWR)", pipe2(q, O_RDWR));
}

CASE(io_pipe_efault) {
    SHOW("pipe(NULLPTR)", pipe(NULLPTR));
    SHOW("pipe((void*)1)", pipe(BADPTR));
    SHOW("pipe2(NULLPTR, O_CLOEXEC)", pipe2(NULLPTR, O_CLOEXEC));
    int p[2];
    SHOW("pipe after", pipe(p));
    printf("fds=%d,%d\n", p[0], p[1]);
}

CASE(io_pipe2_o_direct_packets) {
    int p[2];
    SHOW("pipe2(O_DIRECT)", pipe2(p, O_DIRECT));
    write(p[1], "abc", 3);
    write(p[1], "defg", 4);
    char b[100];
    SHOW("read packet 1", read(p[0], b, sizeof b));
    SHOW("read packet 2", read(p[0], b, sizeof b));
}

/* ---- fd numbering, close, dup ------------------------------------------------------ */

CASE(io_lowest_free_fd_numbering) {
    int p[2], s[2];
    pipe(p);
    printf("pipe=%d,%d\n", p[0], p[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    printf("socketpair=%d,%d\n", s[0], s[1]);
    int f = open("/dev/null", O_RDONLY);
    printf("open=%d\n", f);
    close(p[1]);
    close(s[0]);
    printf("open after closes=%d\n", open("/dev/null", O_RDONLY));
    int q[2];
    pipe(q);
    printf("pipe after closes=%d,%d\n", q[0], q[1]);
    printf("epoll_create1=%d\n", epoll_create1(0));
    printf("eventfd=%d\n", eventfd(0, 0));
    printf("dup(0)=%d\n", dup(0));
}

static void *open_close_in_thread(void *p) {
    int *out = p;
    out[0] = open("/dev/null", O_RDONLY);
    out[1] = dup(out[0]);
    close(out[0]);
    return NULL;
}

CASE(io_fd_numbering_across_threads) {
    int p[2];
    pipe(p);
    int got[2];
    pthread_t t;
    pthread_create(&t, NULL, open_close_in_thread, got);
    pthread_join(t, NULL);
    printf("thread open=%d dup=%d\n", got[0], got[1]);
    printf("main open=%d\n", open("/dev/null", O_RDONLY));
    printf("main socket=%d\n", socket(AF_UNIX, SOCK_STREAM, 0));
}

/* Threads open and close fds in a loop (eight at a time), each open and its check under
 * one lock, while the main thread blocks its OS thread again and again in a call no hook
 * sees (the nanosleep instruction itself): every open gets the lowest free number, as
 * natively.
 * Greenified, the monitor reads the blocked worker's /proc/self/task/TID/syscall at its
 * looks, to hand that worker's threads to a spare OS thread: that read must not take a
 * number the program's next open would get. The opens are counted only after 10 such
 * blocks, so that greenify has made its own fds by then (reactor, and the spare's, which
 * it opens once as it starts); main runs on the first worker only, and the loops yield
 * and main sleeps 20 ms between blocks, so that the spare has left the workers by the
 * next block and is woken again for it, not a new one started. */
static pthread_mutex_t lowest_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int lowest_stop, lowest_counting;
static int lowest_expected[8], lowest_wrong, lowest_opens;

static void *open_lowest_loop(void *arg) {
    (void)arg;
    while (!lowest_stop) {
        int fds[8];
        pthread_mutex_lock(&lowest_lock);
        for (int i = 0; i < 8; i++) {
            fds[i] = open("/dev/null", O_RDONLY);
            if (lowest_counting) {
                lowest_wrong += fds[i] != lowest_expected[i];
                lowest_opens++;
            }
        }
        for (int i = 0; i < 8; i++)
            close(fds[i]);
        pthread_mutex_unlock(&lowest_lock);
        /* Greenified, a dispatch point: the spare that stood in for main's worker
         * leaves the workers at one once that worker is back. */
        sched_yield();
    }
    return NULL;
}

static void *do_nothing(void *arg) { return arg; }

CASE(io_fd_numbering_while_a_worker_is_stuck) {
    pthread_t first, loops[3];
    pthread_create(&first, NULL, do_nothing, NULL);
    pthread_join(first, NULL);
    for (int i = 0; i < 8; i++)
        lowest_expected[i] = open("/dev/null", O_RDONLY);
    for (int i = 0; i < 8; i++)
        close(lowest_expected[i]);
    for (int i = 0; i < 3; i++)
        pthread_create(&loops[i], NULL, open_lowest_loop, NULL);
    for (int i = 0; i < 90; i++) {
        lowest_counting = i >= 10;
        nanosleep_unhooked(8);
        usleep(20000);
    }
    lowest_stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(loops[i], NULL);
    printf("opens not at the lowest free number: %d (of more than 1000: %s)\n", lowest_wrong,
           lowest_opens > 1000 ? "yes" : "no");
}

CASE(io_close_twice_and_negative) {
    int f = open("/dev/null", O_RDONLY);
    SHOW("close", close(f));
    SHOW("close again", close(f));
    SHOW("close(-5)", close(-5));
    SHOW("close(INT_MAX)", close(INT_MAX));
}

CASE(io_dup_basics) {
    int p[2];
    pipe(p);
    int d = dup(p[1]);
    printf("dup=%d\n", d);
    SHOW("write via dup", write(d, "hi", 2));
    char b[4] = {0};
    SHOW("read", read(p[0], b, 3));
    printf("data=%s\n", b);
    SHOW("dup(-1)", dup(-1));
    SHOW("dup(closed)", dup(9999));
    close(p[0]);
    printf("dup fills lowest=%d\n", dup(p[1]));
    printf("FD_CLOEXEC of dup=%d\n", fcntl(d, F_GETFD));
}

CASE(io_dup2_cases) {
    int p[2];
    pipe(p);
    SHOW("dup2(same fd)", dup2(p[0], p[0]));
    SHOW("dup2(closed, closed)", dup2(9999, 9999));
    SHOW("dup2(-1, 50)", dup2(-1, 50));
    SHOW("dup2(rd, -1)", dup2(p[0], -1));
    SHOW("dup2(rd, 1<<30)", dup2(p[0], 1 << 30));
    SHOW("dup2(rd, 50)", dup2(p[0], 50));
    write(p[1], "ok", 2);
    char b[4] = {0};
    SHOW("read fd 50", read(50, b, 3));
    printf("data=%s\n", b);
}

CASE(io_dup2_onto_open_fd) {
    int p[2], q[2];
    pipe(p);
    pipe(q);
    write(q[1], "Q", 1);
    write(p[1], "P", 1);
    SHOW("dup2(q0, p0)", dup2(q[0], p[0]));
    char b[2] = {0};
    SHOW("read p0 (now q's)", read(p[0], b, 1));
    printf("data=%s\n", b);
    /* p's read end is gone: the writer gets EPIPE */
    signal(SIGPIPE, SIG_IGN);
    SHOW("write p1", write(p[1], "x", 1));
}

CASE(io_dup2_onto_nonblock_fd_resets_view) {
    int p[2], q[2];
    pipe2(p, O_NONBLOCK);
    pipe(q);
    dup2(q[0], p[0]);
    show_flags("p0 after dup2 of blocking q0", p[0]);
    double t0 = now_ms();
    struct after *a = after(40, write_x, q[1]);
    char b[2];
    SHOW("read p0 blocks", read(p[0], b, 1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(io_dup3_cases) {
    int p[2];
    pipe(p);
    SHOW("dup3(rd, 40, O_CLOEXEC)", dup3(p[0], 40, O_CLOEXEC));
    printf("FD_CLOEXEC=%d\n", fcntl(40, F_GETFD));
    SHOW("dup3(rd, 41, 0)", dup3(p[0], 41, 0));
    printf("FD_CLOEXEC=%d\n", fcntl(41, F_GETFD));
    SHOW("dup3(same fd)", dup3(p[0], p[0], 0));
    SHOW("dup3(bad flags)", dup3(p[0], 42, O_NONBLOCK));
    SHOW("dup3(-1, 42, 0)", dup3(-1, 42, 0));
    SHOW("dup3(rd, -1, 0)", dup3(p[0], -1, 0));
    SHOW("fcntl(42)", fcntl(42, F_GETFD));
}

CASE(io_fcntl_dupfd_minimums) {
    int p[2];
    pipe(p);
    SHOW("F_DUPFD min 10", fcntl(p[0], F_DUPFD, 10));
    SHOW("F_DUPFD min 10 again", fcntl(p[0], F_DUPFD, 10));
    SHOW("F_DUPFD_CLOEXEC min 10", fcntl(p[0], F_DUPFD_CLOEXEC, 10));
    printf("FD_CLOEXEC of 12=%d, of 10=%d\n", fcntl(12, F_GETFD), fcntl(10, F_GETFD));
    SHOW("F_DUPFD min 0", fcntl(p[0], F_DUPFD, 0));
    SHOW("F_DUPFD min -1", fcntl(p[0], F_DUPFD, -1));
    SHOW("F_DUPFD bad fd", fcntl(9999, F_DUPFD, 0));
    SHOW("F_DUPFD_CLOEXEC bad fd", fcntl(-1, F_DUPFD_CLOEXEC, 0));
}

CASE(io_fcntl_dupfd_rlimit_edge) {
    long n = cap_nofile(4096);
    SHOW("F_DUPFD min = RLIMIT", fcntl(0, F_DUPFD, n));
    long got = fcntl(0, F_DUPFD, n - 1);
    printf("F_DUPFD min RLIMIT-1 -> +%ld\n", got - (n - 1));
    SHOW("F_DUPFD min RLIMIT-1 again", fcntl(0, F_DUPFD, n - 1));
}

/* The top of the fd range, where a program may place its own fds (RLIMIT_NOFILE - 64..). */
CASE(io_fcntl_dupfd_near_rlimit) {
    long n = cap_nofile(4096);
    for (long min = n - 64; min < n - 60; min++) {
        long got = fcntl(0, F_DUPFD_CLOEXEC, min);
        printf("F_DUPFD_CLOEXEC min RLIMIT-%ld -> +%ld\n", n - min, got - min);
        if (got >= 0) close(got);
    }
}

/* A daemon closes every fd above stderr, then does ordinary blocking I/O. */
CASE(io_close_all_fds_then_block) {
    alarm(3);
    long n = cap_nofile(4096);
    for (long fd = 3; fd < n; fd++) close(fd);
    int p[2];
    pipe(p);
    printf("pipe=%d,%d\n", p[0], p[1]);
    struct after *a = after(30, write_x, p[1]);
    char b[2];
    SHOW("read", read(p[0], b, 1));
    after_join(a);
    double t0 = now_ms();
    msleep(30);
    show_elapsed(t0, 30);
    alarm(0);
}

/* A dup'd fd read by another thread; the original keeps working after the dup is closed. */
static void *read_dup_and_close(void *p) {
    int fd = *(int *)p;
    char b[8] = {0};
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    *(int *)p = (int)n * 1000 + b[0];
    return NULL;
}

CASE(io_dup_shared_between_threads) {
    int p[2];
    pipe(p);
    int d = dup(p[0]);
    pthread_t t;
    pthread_create(&t, NULL, read_dup_and_close, &d);
    msleep(40);
    write(p[1], "abc", 3);
    pthread_join(t, NULL);
    printf("thread read n=%d first=%c\n", d / 1000, d % 1000);
    write(p[1], "z", 1);
    char b[2] = {0};
    SHOW("main read original", read(p[0], b, 1));
    printf("data=%s\n", b);
}

/* O_NONBLOCK belongs to the open file description: set through a dup, it shows (and acts)
 * through the original too. */
CASE(io_dup_shares_nonblock_pipe) {
    int p[2];
    pipe(p);
    int d = dup(p[0]);
    SHOW("F_SETFL O_NONBLOCK on dup", fcntl(d, F_SETFL, O_NONBLOCK));
    show_flags("original", p[0]);
    struct after *a = after(300, write_x, p[1]);
    char b[2];
    double t0 = now_ms();
    SHOW("read original", read(p[0], b, 1));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_dup_shares_nonblock_socket) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    int d = dup(s[0]);
    int on = 1;
    SHOW("FIONBIO 1 on dup", ioctl(d, FIONBIO, &on));
    show_flags("original", s[0]);
    struct after *a = after(300, write_x, s[1]);
    char b[2];
    double t0 = now_ms();
    SHOW("read original", read(s[0], b, 1));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_dup_of_nonblock_socket_inherits_view) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s);
    int d = dup(s[0]);
    int d2 = fcntl(s[0], F_DUPFD, 20);
    show_flags("dup", d);
    show_flags("F_DUPFD", d2);
    char b[2];
    SHOW("read dup", read(d, b, 1));
    SHOW("F_SETFL 0 on dup", fcntl(d, F_SETFL, 0));
    show_flags("original", s[0]);
}

/* ---- a thread parked in read while another closes or replaces its fd ---------------- */

/* Natively a read already blocked on a pipe holds its own reference to the file: close()
 * from another thread does not wake it, and it returns the data written afterwards. */
static void *read_one(void *p) {
    int *a = p;
    char b[4] = {0};
    errno = 0;
    ssize_t n = read(a[0], b, 3);
    a[1] = (int)n;
    a[2] = n == -1 ? errno : b[0];
    return NULL;
}

CASE(io_close_while_thread_reads_pipe) {
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    pipe(p);
    int arg[3] = {p[0], 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, arg);
    msleep(50);
    SHOW("close read end", close(p[0]));
    msleep(50);
    SHOW("write", write(p[1], "w", 1));
    close(p[1]);
    pthread_join(t, NULL);
    if (arg[1] == -1) printf("parked read: ret=-1 errno=%s\n", en(arg[2]));
    else printf("parked read: ret=%d data=%c\n", arg[1], arg[2]);
}

CASE(io_close_while_thread_reads_socket) {
    signal(SIGPIPE, SIG_IGN);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    int arg[3] = {s[0], 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, arg);
    msleep(50);
    SHOW("close", close(s[0]));
    msleep(50);
    SHOW("peer write", write(s[1], "s", 1));
    close(s[1]);
    pthread_join(t, NULL);
    if (arg[1] == -1) printf("parked read: ret=-1 errno=%s\n", en(arg[2]));
    else printf("parked read: ret=%d data=%c\n", arg[1], arg[2]);
}

CASE(io_dup2_over_fd_while_thread_reads) {
    signal(SIGPIPE, SIG_IGN);
    int p[2], q[2];
    pipe(p);
    pipe(q);
    int arg[3] = {p[0], 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, arg);
    msleep(50);
    SHOW("dup2(q0, p0)", dup2(q[0], p[0]));
    write(q[1], "q", 1);
    msleep(50);
    write(p[1], "p", 1);
    pthread_join(t, NULL);
    if (arg[1] == -1) printf("parked read: ret=-1 errno=%s\n", en(arg[2]));
    else printf("parked read: ret=%d data=%c\n", arg[1], arg[2]);
}

CASE(io_writer_closes_while_thread_reads) {
    int p[2];
    pipe(p);
    int arg[3] = {p[0], 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_one, arg);
    msleep(40);
    write(p[1], "a", 1);
    pthread_join(t, NULL);
    printf("first read: ret=%d data=%c\n", arg[1], arg[2]);
    pthread_create(&t, NULL, read_one, arg);
    msleep(40);
    close(p[1]);
    pthread_join(t, NULL);
    printf("second read: ret=%d\n", arg[1]);
}

/* ---- fcntl ------------------------------------------------------------------------- */

CASE(io_fcntl_getfl_views) {
    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    show_flags("pipe read", p[0]);
    show_flags("pipe write", p[1]);
    show_flags("socket", s[0]);
    int f = tmpfile_fd();
    show_flags("file", f);
    int n = open("/dev/null", O_WRONLY | O_APPEND);
    show_flags("/dev/null", n);
    int a = open("/dev/null", O_RDONLY | O_NONBLOCK);
    show_flags("/dev/null nonblock", a);
}

CASE(io_fcntl_setfl_socket_view) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    SHOW("F_SETFL O_NONBLOCK", fcntl(s[0], F_SETFL, O_NONBLOCK));
    show_flags("socket", s[0]);
    char b[2];
    SHOW("read empty", read(s[0], b, 1));
    SHOW("F_SETFL 0", fcntl(s[0], F_SETFL, 0));
    show_flags("socket", s[0]);
    show_flags("peer", s[1]);
    double t0 = now_ms();
    struct after *a = after(40, write_x, s[1]);
    SHOW("read blocking", read(s[0], b, 1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(io_fcntl_socketpair_sock_nonblock) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s);
    show_flags("socket", s[0]);
    char b[2];
    SHOW("read empty", read(s[0], b, 1));
    int off = 0;
    SHOW("FIONBIO 0", ioctl(s[0], FIONBIO, &off));
    show_flags("socket", s[0]);
    double t0 = now_ms();
    struct after *a = after(40, write_x, s[1]);
    SHOW("read blocking", read(s[0], b, 1));
    show_elapsed(t0, 40);
    after_join(a);
}

CASE(io_fcntl_setfl_file) {
    int f = tmpfile_fd();
    write(f, "data", 4);
    SHOW("F_SETFL O_NONBLOCK|O_APPEND", fcntl(f, F_SETFL, O_NONBLOCK | O_APPEND));
    show_flags("file", f);
    lseek(f, 0, SEEK_SET);
    char b[8] = {0};
    SHOW("read nonblock file", read(f, b, 8));
    SHOW("write appends", write(f, "XY", 2));
    SHOW("size", lseek(f, 0, SEEK_END));
    SHOW("F_SETFL 0", fcntl(f, F_SETFL, 0));
    show_flags("file", f);
    close(f);
}

CASE(io_fcntl_getfd_setfd) {
    int p[2];
    pipe(p);
    SHOW("F_GETFD", fcntl(p[0], F_GETFD));
    SHOW("F_SETFD FD_CLOEXEC", fcntl(p[0], F_SETFD, FD_CLOEXEC));
    SHOW("F_GETFD", fcntl(p[0], F_GETFD));
    SHOW("F_GETFD other end", fcntl(p[1], F_GETFD));
    int d = dup(p[0]);
    SHOW("F_GETFD dup", fcntl(d, F_GETFD));
}

CASE(io_fcntl_errors) {
    int p[2];
    pipe(p);
    SHOW("F_GETFL closed", fcntl(9999, F_GETFL));
    SHOW("F_SETFL closed", fcntl(9999, F_SETFL, O_NONBLOCK));
    SHOW("F_GETFL -1", fcntl(-1, F_GETFL));
    SHOW("bogus cmd", fcntl(p[0], 12345));
    SHOW("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
    SHOW("F_SETPIPE_SZ 0", fcntl(p[0], F_SETPIPE_SZ, 0));
    SHOW("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
    int f = open("/dev/null", O_RDONLY);
    SHOW("F_GETPIPE_SZ /dev/null", fcntl(f, F_GETPIPE_SZ));
}

CASE(io_fcntl_setfl_unknown_then_read) {
    /* A /dev/null-like device the library never saw before F_SETFL. */
    int f = open("/dev/zero", O_RDONLY);
    SHOW("F_SETFL O_NONBLOCK", fcntl(f, F_SETFL, O_NONBLOCK));
    show_flags("/dev/zero", f);
    char b[4] = {1, 1, 1, 1};
    SHOW("read /dev/zero", read(f, b, 4));
    printf("zeroed=%d\n", b[0] == 0 && b[3] == 0);
}

/* ---- ioctl ------------------------------------------------------------------------- */

CASE(io_ioctl_fionread) {
    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    int n = -1;
    SHOW("FIONREAD empty pipe", ioctl(p[0], FIONREAD, &n));
    printf("n=%d\n", n);
    write(p[1], "1234567", 7);
    SHOW("FIONREAD pipe", ioctl(p[0], FIONREAD, &n));
    printf("n=%d\n", n);
    write(s[1], "123", 3);
    SHOW("FIONREAD socket", ioctl(s[0], FIONREAD, &n));
    printf("n=%d\n", n);
    SHOW("FIONREAD bad fd", ioctl(9999, FIONREAD, &n));
    SHOW("FIONREAD (void*)1", ioctl(p[0], FIONREAD, BADPTR));
}

CASE(io_ioctl_fionbio_errors) {
    int p[2];
    pipe(p);
    int on = 1;
    SHOW("FIONBIO bad fd", ioctl(9999, FIONBIO, &on));
    SHOW("FIONBIO -1", ioctl(-1, FIONBIO, &on));
    SHOW("FIONBIO NULL", ioctl(p[0], FIONBIO, NULL));
    SHOW("bogus request", ioctl(p[0], 0x12345678, &on));
    SHOW("TCGETS on pipe", ioctl(p[0], 0x5401, &on));
}

CASE(io_ioctl_fionbio_efault) {
    int p[2];
    pipe(p);
    SHOW("FIONBIO (void*)1", ioctl(p[0], FIONBIO, BADPTR));
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    SHOW("FIONBIO (void*)1 socket", ioctl(s[0], FIONBIO, BADPTR));
    show_flags("socket", s[0]);
}

CASE(io_ioctl_fionbio_file) {
    int f = tmpfile_fd();
    int on = 1, off = 0;
    SHOW("FIONBIO 1 file", ioctl(f, FIONBIO, &on));
    show_flags("file", f);
    SHOW("FIONBIO 0 file", ioctl(f, FIONBIO, &off));
    show_flags("file", f);
    close(f);
}

/* ---- open / openat / creat --------------------------------------------------------- */

CASE(io_open_dev_null) {
    int f = open("/dev/null", O_RDWR);
    SHOW("write /dev/null", write(f, "abc", 3));
    char b[4];
    SHOW("read /dev/null", read(f, b, 4));
    struct iovec v = {b, 4};
    SHOW("readv /dev/null", readv(f, &v, 1));
    SHOW("close", close(f));
    int full = open("/dev/full", O_WRONLY);
    SHOW("write /dev/full", write(full, "abc", 3));
}

CASE(io_open_errors) {
    SHOW("open missing", open("/nonexistent/greenify", O_RDONLY));
    SHOW("open NULL", open(NULLPTR, O_RDONLY));
    SHOW("open (void*)1", open(BADPTR, O_RDONLY));
    SHOW("open dir for write", open("/tmp", O_WRONLY));
    SHOW("open /dev/null O_DIRECTORY", open("/dev/null", O_RDONLY | O_DIRECTORY));
    SHOW("openat bad dirfd", openat(9999, "x", O_RDONLY));
    SHOW("openat -1 dirfd", openat(-1, "x", O_RDONLY));
    SHOW("openat absolute, bad dirfd", openat(9999, "/dev/null", O_RDONLY) >= 0);
    SHOW("open bogus accmode", open("/dev/null", 3 | O_CREAT, 0600) >= 0);
}

CASE(io_open_creat_excl_trunc) {
    char path[64];
    strcpy(path, "/tmp/greenify-diff-XXXXXX");
    int f = mkstemp(path);
    write(f, "0123456789", 10);
    close(f);
    SHOW("O_CREAT|O_EXCL existing", open(path, O_CREAT | O_EXCL | O_RDWR, 0600));
    f = open(path, O_RDWR);
    SHOW("size", lseek(f, 0, SEEK_END));
    close(f);
    f = creat(path, 0600);
    SHOW("creat truncates", lseek(f, 0, SEEK_END));
    char b[4];
    SHOW("read creat fd (O_WRONLY)", read(f, b, 1));
    SHOW("write", write(f, "ab", 2));
    close(f);
    f = open(path, O_RDONLY);
    SHOW("write O_RDONLY", write(f, "x", 1));
    SHOW("read", read(f, b, 4));
    close(f);
    unlink(path);
    SHOW("open after unlink", open(path, O_RDONLY));
}

CASE(io_openat_dirfd) {
    char dir[64];
    strcpy(dir, "/tmp/greenify-diff-XXXXXX");
    mkdtemp(dir);
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    int f = openat(d, "file", O_CREAT | O_RDWR, 0600);
    SHOW("write via openat", write(f, "abc", 3));
    close(f);
    f = openat(d, "file", O_RDONLY);
    char b[4] = {0};
    SHOW("read via openat", read(f, b, 3));
    printf("data=%s\n", b);
    SHOW("openat missing", openat(d, "nope", O_RDONLY));
    SHOW("read dir fd", read(d, b, 3));
    SHOW("openat file as dirfd", openat(f, "x", O_RDONLY));
    close(f);
    unlinkat(d, "file", 0);
    close(d);
    rmdir(dir);
}

/* Opening a FIFO for reading waits for a writer, here another thread. */
static void *open_fifo_writer(void *p) {
    msleep(40);
    int fd = open((const char *)p, O_WRONLY);
    write(fd, "f", 1);
    close(fd);
    note_stall(); /* it may have exited when main looks at the time */
    return NULL;
}

CASE(io_open_fifo_waits_for_writer_thread) {
    alarm(2);
    char dir[64], path[80];
    strcpy(dir, "/tmp/greenify-diff-XXXXXX");
    mkdtemp(dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    mkfifo(path, 0600);
    pthread_t t;
    double t0 = now_ms(); /* before the writer starts its wait */
    pthread_create(&t, NULL, open_fifo_writer, path);
    int fd = open(path, O_RDONLY);
    printf("open ok=%d\n", fd >= 0);
    show_elapsed(t0, 40);
    char b[2] = {0};
    SHOW("read fifo", read(fd, b, 1));
    pthread_join(t, NULL);
    close(fd);
    unlink(path);
    rmdir(dir);
    alarm(0);
}

CASE(io_fifo_nonblock_open_and_read) {
    char dir[64], path[80];
    strcpy(dir, "/tmp/greenify-diff-XXXXXX");
    mkdtemp(dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    mkfifo(path, 0600);
    SHOW("open O_WRONLY|O_NONBLOCK no reader", open(path, O_WRONLY | O_NONBLOCK));
    int r = open(path, O_RDONLY | O_NONBLOCK);
    printf("reader ok=%d\n", r >= 0);
    char b[2];
    SHOW("read no writer", read(r, b, 1));
    int w = open(path, O_WRONLY);
    SHOW("read empty, writer open", read(r, b, 1));
    SHOW("F_SETFL 0", fcntl(r, F_SETFL, 0));
    double t0 = now_ms();
    struct after *a = after(40, write_x, w);
    SHOW("read blocking", read(r, b, 1));
    show_elapsed(t0, 40);
    after_join(a);
    close(w);
    close(r);
    unlink(path);
    rmdir(dir);
}

/* ---- lseek / pread / pwrite -------------------------------------------------------- */

CASE(io_lseek_pread_pwrite) {
    int f = tmpfile_fd();
    SHOW("pwrite at 100", pwrite(f, "xyz", 3, 100));
    SHOW("position", lseek(f, 0, SEEK_CUR));
    SHOW("size", lseek(f, 0, SEEK_END));
    char b[4] = {0};
    SHOW("pread at 101", pread(f, b, 3, 101));
    printf("data=%s\n", b);
    SHOW("pread hole", pread(f, b, 2, 10));
    printf("hole zero=%d\n", b[0] == 0 && b[1] == 0);
    SHOW("pread past end", pread(f, b, 3, 1000));
    SHOW("lseek SEEK_SET 5", lseek(f, 5, SEEK_SET));
    SHOW("lseek SEEK_CUR -2", lseek(f, -2, SEEK_CUR));
    SHOW("lseek negative", lseek(f, -1, SEEK_SET));
    SHOW("lseek bad whence", lseek(f, 0, 42));
    SHOW("lseek SEEK_DATA", lseek(f, 0, SEEK_DATA) >= 0);
    close(f);
}

CASE(io_lseek_pread_errors) {
    int p[2];
    pipe(p);
    char b[4];
    SHOW("lseek pipe", lseek(p[0], 0, SEEK_CUR));
    SHOW("pread pipe", pread(p[0], b, 1, 0));
    SHOW("pwrite pipe", pwrite(p[1], "x", 1, 0));
    SHOW("lseek bad fd", lseek(9999, 0, SEEK_SET));
    SHOW("pread bad fd", pread(-1, b, 1, 0));
    int f = tmpfile_fd();
    write(f, "abc", 3);
    SHOW("pread (void*)1", pread(f, BADPTR, 3, 0));
    SHOW("pwrite (void*)1", pwrite(f, BADPTR, 3, 0));
    SHOW("pread negative offset", pread(f, b, 1, -1));
    close(f);
}

/* ---- sendfile ---------------------------------------------------------------------- */

static int file_with(size_t n) {
    int f = tmpfile_fd();
    char *buf = malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + i % 26);
    write(f, buf, n);
    free(buf);
    lseek(f, 0, SEEK_SET);
    return f;
}

CASE(io_sendfile_file_to_pipe) {
    int f = file_with(10000);
    int p[2];
    pipe(p);
    off_t off = 0;
    SHOW("sendfile 10000 with offset", sendfile(p[1], f, &off, 10000));
    printf("offset=%ld position=%ld\n", (long)off, (long)lseek(f, 0, SEEK_CUR));
    int n = 0;
    ioctl(p[0], FIONREAD, &n);
    printf("in pipe=%d\n", n);
    drain(p[0]);
    SHOW("sendfile NULL offset, count past EOF", sendfile(p[1], f, NULL, 50000));
    printf("position=%ld\n", (long)lseek(f, 0, SEEK_CUR));
    SHOW("sendfile at EOF", sendfile(p[1], f, NULL, 100));
    close(f);
}

/* More than the pipe holds, with a reader that only starts later. */
CASE(io_sendfile_larger_than_pipe) {
    int f = file_with(100000);
    int p[2];
    pipe(p);
    struct reader r = {p[0], 0, 0, 16384, 0};
    pthread_t t;
    msleep(1);
    pthread_create(&t, NULL, slow_reader, &r);
    off_t off = 0;
    SHOW("sendfile 100000", sendfile(p[1], f, &off, 100000));
    printf("offset=%ld\n", (long)off);
    close(p[1]);
    pthread_join(t, NULL);
    printf("reader total=%ld\n", r.total);
    close(f);
}

CASE(io_sendfile_waits_for_reader_thread) {
    int f = file_with(5000);
    int p[2];
    pipe(p);
    fill_pipe(p[1]);
    double t0 = now_ms();
    struct after *a = after(60, drain, p[0]);
    SHOW("sendfile 5000 into full pipe", sendfile(p[1], f, NULL, 5000));
    show_elapsed(t0, 60);
    after_join(a);
    close(f);
}

CASE(io_sendfile_errors) {
    int f = file_with(100);
    int p[2];
    pipe(p);
    SHOW("sendfile bad out", sendfile(9999, f, NULL, 10));
    SHOW("sendfile bad in", sendfile(p[1], 9999, NULL, 10));
    SHOW("sendfile offset (void*)1", sendfile(p[1], f, BADPTR, 10));
    off_t neg = -1;
    SHOW("sendfile negative offset", sendfile(p[1], f, &neg, 10));
    int ro = open("/dev/null", O_RDONLY);
    SHOW("sendfile to read-only fd", sendfile(ro, f, NULL, 10));
    SHOW("sendfile count 0", sendfile(p[1], f, NULL, 0));
    close(f);
}

CASE(io_sendfile_file_to_socket) {
    int f = file_with(200000);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    struct reader r = {s[1], 0, 0, 30000, 300};
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, &r);
    off_t off = 0;
    long total = 0;
    while (total < 200000) {
        ssize_t n = sendfile(s[0], f, &off, 200000 - total);
        if (n <= 0) break;
        total += n;
    }
    printf("sent=%ld offset=%ld\n", total, (long)off);
    shutdown(s[0], SHUT_WR);
    pthread_join(t, NULL);
    printf("reader total=%ld\n", r.total);
    close(f);
}

/* ---- other fd kinds through read/write --------------------------------------------- */

/* Reads that are invalid for the fd's kind fail at once, whatever its readiness. */
CASE(io_read_epoll_fd_einval) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    struct after *a = after(300, write_x, p[1]);
    char b[64];
    double t0 = now_ms();
    SHOW("read epoll fd", read(ep, b, sizeof b));
    show_elapsed(t0, 0);
    after_join(a);
}

CASE(io_eventfd_short_buffer_einval) {
    int e = eventfd(0, 0);
    struct after *a = after(300, eventfd_one, e);
    char b[4];
    double t0 = now_ms();
    SHOW("read eventfd 4 bytes", read(e, b, 4));
    show_elapsed(t0, 0);
    after_join(a);
    uint64_t v = 0;
    SHOW("read eventfd 8 bytes", read(e, &v, 8));
    printf("value=%llu\n", (unsigned long long)v);
    uint64_t bad = UINT64_MAX;
    SHOW("write eventfd UINT64_MAX", write(e, &bad, 8));
    SHOW("write eventfd 4 bytes", write(e, &bad, 4));
}

CASE(io_eventfd_blocking_read_from_thread) {
    int e = eventfd(0, 0);
    double t0 = now_ms();
    struct after *a = after(50, eventfd_one, e);
    uint64_t v = 0;
    SHOW("read eventfd", read(e, &v, 8));
    show_elapsed(t0, 50);
    printf("value=%llu\n", (unsigned long long)v);
    after_join(a);
    int en2 = eventfd(0, EFD_NONBLOCK);
    SHOW("read nonblock eventfd", read(en2, &v, 8));
}

CASE(io_read_directory_eisdir) {
    int d = open("/tmp", O_RDONLY | O_DIRECTORY);
    char b[16];
    SHOW("read dir", read(d, b, sizeof b));
    SHOW("write dir", write(d, "x", 1));
    close(d);
}

/* A pipe the process made is its own until something may share its open file description
 * (greenify then skips the F_GETFL before each wait, fdtable::set_private). Each way below
 * makes the read end non-blocking behind the reader's back: its read of the empty pipe
 * must fail with EAGAIN, not wait for data that never comes. */
CASE(io_pipe_made_nonblocking_by_a_forked_child) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    char b;
    SHOW("read", read(p[0], &b, 1));
}

CASE(io_pipe_made_nonblocking_through_syscall) {
    int p[2];
    pipe(p);
    SHOW("fcntl", syscall(SYS_fcntl, p[0], F_SETFL, O_NONBLOCK));
    char b;
    SHOW("read", read(p[0], &b, 1));
    int on = 0;
    SHOW("fionbio off", syscall(SYS_ioctl, p[0], FIONBIO, &on));
    struct after *a = after(30, write_x, p[1]);
    SHOW("read after", read(p[0], &b, 1));
    after_join(a);
    on = 1;
    SHOW("fionbio on", syscall(SYS_ioctl, p[0], FIONBIO, &on));
    SHOW("read empty", read(p[0], &b, 1));
}

CASE(io_pipe_made_nonblocking_through_a_dup) {
    int p[2];
    pipe(p);
    int d = dup(p[0]);
    SHOW("fcntl", fcntl(d, F_SETFL, O_NONBLOCK));
    char b;
    SHOW("read", read(p[0], &b, 1));
}

CASE(io_pipe_made_nonblocking_by_the_process_it_was_sent_to) {
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    pid_t c = fork();
    if (c == 0) {
        char byte;
        char control[CMSG_SPACE(sizeof(int))];
        struct iovec v = { &byte, 1 };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = control,
                            .msg_controllen = sizeof control };
        if (recvmsg(s[1], &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
            _exit(1);
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        (void)!write(s[1], "k", 1);
        _exit(0);
    }
    /* Made after the fork: only the message shares it. */
    int p[2];
    pipe(p);
    char byte = 'f';
    char control[CMSG_SPACE(sizeof(int))] = { 0 };
    struct iovec v = { &byte, 1 };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &p[0], sizeof(int));
    SHOW("sendmsg", sendmsg(s[0], &m, 0));
    char ack;
    SHOW("ack", read(s[0], &ack, 1));
    char b;
    SHOW("read", read(p[0], &b, 1));
    int status;
    waitpid(c, &status, 0);
    printf("child exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
