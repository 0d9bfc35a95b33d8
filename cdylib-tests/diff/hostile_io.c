/* Bad-input sweep, the fd family: every hooked call that takes an fd gets -1, a just-closed
 * fd, a huge fd, INT_MAX and the numbers where greenify keeps its own fds (closed natively);
 * calls that take buffers get NULL, an unmapped (PROT_NONE) page, a buffer running into one,
 * zero and huge counts; calls that take flags get bad ones; and fds of the wrong kind. */
#include "case.h"
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>

extern ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
extern ssize_t __pread_chk(int fd, void *buf, size_t nbytes, off_t offset, size_t buflen);
extern int __open_2(const char *path, int flags);
extern int __openat_2(int dirfd, const char *path, int flags);

/* ---- helpers ---------------------------------------------------------------------- */

/* A readable, writable page followed by an unmapped one: its last `n` bytes. */
static char *edge(size_t n) {
    static char *p;
    if (!p) {
        p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(p + 4096, 4096, PROT_NONE);
    }
    return p + 4096 - n;
}

static void *nothing(void *a) { return a; }

/* Creates and joins a thread: greenified, the scheduler and its own fds then exist. */
static void warm(void) {
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
}

/* A pipe holding "hello world!" (12 bytes). */
static int pipe_with_data(int p[2]) {
    int r = pipe(p);
    (void)!write(p[1], "hello world!", 12);
    return r;
}

/* A socketpair whose s[0] has "hello world!" to read. */
static int sock_with_data(int s[2]) {
    int r = socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    (void)!write(s[1], "hello world!", 12);
    return r;
}

/* ret as "fd" for a valid descriptor (its number is not the point), else ret and errno. */
#define SHOWFD(what, expr)                                                           \
    do {                                                                             \
        errno = 0;                                                                   \
        int showfd_r_ = (expr);                                                      \
        int showfd_e_ = errno;                                                       \
        if (showfd_r_ >= 0) printf("%s: fd\n", what);                                \
        else printf("%s: ret=%d errno=%s\n", what, showfd_r_, en(showfd_e_));        \
    } while (0)

static char buf[65536];
static struct iovec iov1 = {buf, 16};

/* ---- the fd sweep ----------------------------------------------------------------- */

/* Four cases per call: fd -1, a closed fd, 1<<20 and INT_MAX. */
#define FD_SWEEP(tag, expr)                                                          \
    CASE(hostile_io_##tag##_fd_neg) { int fd = -1; SHOW(#tag, expr); }              \
    CASE(hostile_io_##tag##_fd_closed) { int fd = closed_fd(); SHOW(#tag, expr); }  \
    CASE(hostile_io_##tag##_fd_huge) { int fd = 1 << 20; SHOW(#tag, expr); }        \
    CASE(hostile_io_##tag##_fd_intmax) { int fd = INT_MAX; SHOW(#tag, expr); }

/* The numbers just below 1024 where greenify keeps its own fds (its epoll fd and doorbell
 * once a thread has run): the program never opened them, so natively they are closed. */
#define RESERVED_SWEEP(tag, expr)                                                    \
    CASE(hostile_io_##tag##_fd_reserved) {                                           \
        warm();                                                                      \
        for (int fd = 960; fd < 964; fd++) SHOW(#tag, expr);                         \
    }

FD_SWEEP(read, read(fd, buf, 16))
FD_SWEEP(read0, read(fd, buf, 0))
FD_SWEEP(write, write(fd, "x", 1))
FD_SWEEP(write0, write(fd, "x", 0))
FD_SWEEP(readv, readv(fd, &iov1, 1))
FD_SWEEP(writev, writev(fd, &iov1, 1))
FD_SWEEP(read_chk, __read_chk(fd, buf, 16, sizeof buf))
FD_SWEEP(pread_chk, __pread_chk(fd, buf, 16, 0, sizeof buf))
FD_SWEEP(close, close(fd))
FD_SWEEP(dup, dup(fd))
FD_SWEEP(dup2_from, dup2(fd, 100))
FD_SWEEP(dup3_from, dup3(fd, 100, O_CLOEXEC))
FD_SWEEP(fcntl_getfl, fcntl(fd, F_GETFL))
FD_SWEEP(fcntl_setfl, fcntl(fd, F_SETFL, O_NONBLOCK))
FD_SWEEP(fcntl_getfd, fcntl(fd, F_GETFD))
FD_SWEEP(fcntl_dupfd, fcntl(fd, F_DUPFD, 0))
FD_SWEEP(ioctl_fionread, ({ int n_; ioctl(fd, FIONREAD, &n_); }))
FD_SWEEP(ioctl_fionbio, ({ int on_ = 1; ioctl(fd, FIONBIO, &on_); }))
FD_SWEEP(fsync, fsync(fd))
FD_SWEEP(fdatasync, fdatasync(fd))
FD_SWEEP(flock, flock(fd, LOCK_SH | LOCK_NB))
FD_SWEEP(lockf, lockf(fd, F_TEST, 0))
FD_SWEEP(sendfile_in, ({ int p_[2]; pipe(p_); sendfile(p_[1], fd, NULL, 16); }))
FD_SWEEP(sendfile_out, ({ int f_ = open("/etc/hostname", O_RDONLY); sendfile(fd, f_, NULL, 16); }))
FD_SWEEP(fdopen, fdopen(fd, "r") ? 0 : -1)
FD_SWEEP(epoll_wait, ({ struct epoll_event e_; epoll_wait(fd, &e_, 1, 0); }))
FD_SWEEP(signalfd, ({ sigset_t s_; sigemptyset(&s_); signalfd(fd, &s_, 0); }))
FD_SWEEP(openat_rel, openat(fd, "x", O_RDONLY))
FD_SWEEP(close_range_one, close_range((unsigned)fd, (unsigned)fd, 0))

RESERVED_SWEEP(read, read(fd, buf, 16))
RESERVED_SWEEP(write, write(fd, "x", 1))
RESERVED_SWEEP(close, close(fd))
RESERVED_SWEEP(dup, dup(fd))
RESERVED_SWEEP(fcntl_setfl, fcntl(fd, F_SETFL, O_NONBLOCK))
RESERVED_SWEEP(epoll_wait, ({ struct epoll_event e_; epoll_wait(fd, &e_, 1, 0); }))
RESERVED_SWEEP(fdopen, fdopen(fd, "r") ? 0 : -1)
CASE(hostile_io_dup2_onto_reserved) {
    warm();
    int p[2];
    pipe(p);
    SHOW("dup2 onto 960", dup2(p[0], 960) == 960);
    SHOW("dup2 onto 961", dup2(p[1], 961) == 961);
    SHOW("write 961", write(961, "abc", 3));
    SHOW("read 960", read(960, buf, 3));
    int q[2];
    pipe(q);
    struct after *a = after(50, write_x, q[1]);
    SHOW("read waiting for a thread", read(q[0], buf, 1));
    after_join(a);
    SHOW("close 960", close(960));
    SHOW("close 961", close(961));
}

/* ---- read ------------------------------------------------------------------------- */

CASE(hostile_io_read_null_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], NULLPTR, 12)); SHOW("read again", read(p[0], buf, 12)); }
CASE(hostile_io_read_noaccess_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], noaccess(), 12)); SHOW("read again", read(p[0], buf, 12)); }
CASE(hostile_io_read_edge_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], edge(5), 12)); SHOW("read rest", read(p[0], buf, 12)); }
CASE(hostile_io_read_null_zero_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], NULLPTR, 0)); }
CASE(hostile_io_read_sizemax_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], buf, (size_t)opaque(-1))); }
CASE(hostile_io_read_ssizemax_pipe) { int p[2]; pipe_with_data(p); SHOW("read", read(p[0], buf, (size_t)opaque(LONG_MAX))); }
CASE(hostile_io_read_null_socket) { int s[2]; sock_with_data(s); SHOW("read", read(s[0], NULLPTR, 12)); }
CASE(hostile_io_read_noaccess_socket) { int s[2]; sock_with_data(s); SHOW("read", read(s[0], noaccess(), 12)); }
CASE(hostile_io_read_edge_socket) { int s[2]; sock_with_data(s); SHOW("read", read(s[0], edge(5), 12)); SHOW("read rest", read(s[0], buf, 12)); }
CASE(hostile_io_read_zero_socket_with_data) { int s[2]; sock_with_data(s); SHOW("read", read(s[0], buf, 0)); }
CASE(hostile_io_read_zero_socket_empty) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("read", read(s[0], buf, 0)); }
CASE(hostile_io_read_sizemax_socket) { int s[2]; sock_with_data(s); SHOW("read", read(s[0], buf, (size_t)opaque(-1))); }
CASE(hostile_io_read_null_file) { int fd = open("/etc/hostname", O_RDONLY); SHOW("read", read(fd, NULLPTR, 4)); }
CASE(hostile_io_read_noaccess_file) { int fd = open("/etc/hostname", O_RDONLY); SHOW("read", read(fd, noaccess(), 4)); }
CASE(hostile_io_read_write_end) { int p[2]; pipe(p); SHOW("read", read(p[1], buf, 1)); }
CASE(hostile_io_read_epoll_fd) { int e = epoll_create1(0); SHOW("read", read(e, buf, 16)); }
CASE(hostile_io_read_eventfd_short) { int e = eventfd(1, 0); SHOW("read", read(e, buf, 4)); }
CASE(hostile_io_read_eventfd_null) { int e = eventfd(1, 0); SHOW("read", read(e, NULLPTR, 8)); }
CASE(hostile_io_read_timerfd_short) { int t = timerfd_create(CLOCK_MONOTONIC, 0); SHOW("read", read(t, buf, 4)); }
CASE(hostile_io_read_directory) { int d = open("/", O_RDONLY | O_DIRECTORY); SHOW("read", read(d, buf, 16)); }
CASE(hostile_io_read_o_path) { int d = open("/etc/hostname", O_PATH); SHOW("read", read(d, buf, 16)); }
CASE(hostile_io_read_listener) { int l = socket(AF_INET, SOCK_STREAM, 0); listen(l, 1); SHOW("read", read(l, buf, 16)); }
CASE(hostile_io_read_unconnected_tcp) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("read", read(s, buf, 16)); }
CASE(hostile_io_read_unconnected_udp_nonblock) { int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0); SHOW("read", read(s, buf, 16)); }
CASE(hostile_io_read_shut_rd_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); shutdown(s[0], SHUT_RD); SHOW("read", read(s[0], buf, 16)); }
CASE(hostile_io_read_inotify_short) { int i = inotify_init1(IN_NONBLOCK); SHOW("read", read(i, buf, 1)); }

/* ---- write ------------------------------------------------------------------------ */

CASE(hostile_io_write_null_pipe) { int p[2]; pipe(p); SHOW("write", write(p[1], NULLPTR, 12)); SHOW("nothing queued", ({ int n = -1; ioctl(p[0], FIONREAD, &n); n; })); }
CASE(hostile_io_write_noaccess_pipe) { int p[2]; pipe(p); SHOW("write", write(p[1], noaccess(), 12)); }
CASE(hostile_io_write_edge_pipe) { int p[2]; pipe(p); memset(edge(5), 'e', 5); SHOW("write", write(p[1], edge(5), 12)); }
CASE(hostile_io_write_null_zero_pipe) { int p[2]; pipe(p); SHOW("write", write(p[1], NULLPTR, 0)); }
CASE(hostile_io_write_sizemax_pipe) { int p[2]; pipe(p); SHOW("write", write(p[1], buf, (size_t)opaque(-1))); }
CASE(hostile_io_write_ssizemax_pipe) { int p[2]; pipe(p); SHOW("write", write(p[1], buf, (size_t)opaque(LONG_MAX))); }
CASE(hostile_io_write_null_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("write", write(s[0], NULLPTR, 12)); }
CASE(hostile_io_write_noaccess_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("write", write(s[0], noaccess(), 12)); }
CASE(hostile_io_write_edge_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); memset(edge(5), 'e', 5); SHOW("write", write(s[0], edge(5), 12)); SHOW("peer reads", recv(s[1], buf, 64, MSG_DONTWAIT)); }
CASE(hostile_io_write_zero_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("write", write(s[0], buf, 0)); }
CASE(hostile_io_write_sizemax_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("write", write(s[0], buf, (size_t)opaque(-1))); }
CASE(hostile_io_write_read_end) { int p[2]; pipe(p); SHOW("write", write(p[0], "x", 1)); }
CASE(hostile_io_write_eventfd_short) { int e = eventfd(0, 0); SHOW("write", write(e, buf, 4)); }
CASE(hostile_io_write_eventfd_max) { int e = eventfd(0, 0); uint64_t v = UINT64_MAX; SHOW("write", write(e, &v, 8)); }
CASE(hostile_io_write_eventfd_null) { int e = eventfd(0, 0); SHOW("write", write(e, NULLPTR, 8)); }
CASE(hostile_io_write_eventfd_full_nonblock) { int e = eventfd(0, EFD_NONBLOCK); uint64_t v = UINT64_MAX - 1; SHOW("fill", write(e, &v, 8)); v = 1; SHOW("write", write(e, &v, 8)); }
CASE(hostile_io_write_epoll_fd) { int e = epoll_create1(0); SHOW("write", write(e, "x", 1)); }
CASE(hostile_io_write_directory) { int d = open("/", O_RDONLY | O_DIRECTORY); SHOW("write", write(d, "x", 1)); }
CASE(hostile_io_write_rdonly_file) { int d = open("/etc/hostname", O_RDONLY); SHOW("write", write(d, "x", 1)); }
CASE(hostile_io_write_listener) { signal(SIGPIPE, SIG_IGN); int l = socket(AF_INET, SOCK_STREAM, 0); listen(l, 1); SHOW("write", write(l, "x", 1)); }
CASE(hostile_io_write_unconnected_tcp) { signal(SIGPIPE, SIG_IGN); int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("write", write(s, "x", 1)); }
CASE(hostile_io_write_unconnected_udp) { int s = socket(AF_INET, SOCK_DGRAM, 0); SHOW("write", write(s, "x", 1)); }
CASE(hostile_io_write_shut_wr_socket_ignored) { signal(SIGPIPE, SIG_IGN); int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); shutdown(s[0], SHUT_WR); SHOW("write", write(s[0], "x", 1)); }
CASE(hostile_io_write_shut_wr_socket_default) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); shutdown(s[0], SHUT_WR); SHOW("write", write(s[0], "x", 1)); }
CASE(hostile_io_write_timerfd) { int t = timerfd_create(CLOCK_MONOTONIC, 0); SHOW("write", write(t, buf, 8)); }
CASE(hostile_io_write_o_path) { int d = open("/etc/hostname", O_PATH); SHOW("write", write(d, "x", 1)); }

/* ---- readv / writev ---------------------------------------------------------------- */

static struct iovec iovs[1100];
static void fill_iovs(int n, size_t len) { for (int i = 0; i < n; i++) { iovs[i].iov_base = buf + i; iovs[i].iov_len = len; } }

CASE(hostile_io_readv_cnt_neg) { int p[2]; pipe_with_data(p); SHOW("readv", readv(p[0], iovs, (int)opaque(-1))); }
CASE(hostile_io_readv_cnt_zero) { int p[2]; pipe_with_data(p); SHOW("readv", readv(p[0], iovs, 0)); }
CASE(hostile_io_readv_cnt_1024) { int p[2]; pipe_with_data(p); fill_iovs(1024, 1); SHOW("readv", readv(p[0], iovs, 1024)); }
CASE(hostile_io_readv_cnt_1025) { int p[2]; pipe_with_data(p); fill_iovs(1025, 1); SHOW("readv", readv(p[0], iovs, 1025)); }
CASE(hostile_io_readv_cnt_intmax) { int p[2]; pipe_with_data(p); SHOW("readv", readv(p[0], iovs, (int)opaque(INT_MAX))); }
CASE(hostile_io_readv_iov_null) { int p[2]; pipe_with_data(p); SHOW("readv", readv(p[0], NULLPTR, 1)); }
CASE(hostile_io_readv_iov_noaccess) { int p[2]; pipe_with_data(p); SHOW("readv", readv(p[0], noaccess(), 1)); }
CASE(hostile_io_readv_base_null) { int p[2]; pipe_with_data(p); struct iovec v = {NULLPTR, 12}; SHOW("readv", readv(p[0], &v, 1)); }
CASE(hostile_io_readv_base_noaccess) { int p[2]; pipe_with_data(p); struct iovec v = {noaccess(), 12}; SHOW("readv", readv(p[0], &v, 1)); }
CASE(hostile_io_readv_second_base_noaccess) { int p[2]; pipe_with_data(p); struct iovec v[2] = {{buf, 4}, {noaccess(), 8}}; SHOW("readv", readv(p[0], v, 2)); SHOW("rest", read(p[0], buf, 12)); }
CASE(hostile_io_readv_len_overflow) { int p[2]; pipe_with_data(p); struct iovec v[2] = {{buf, (size_t)LONG_MAX}, {buf, (size_t)LONG_MAX}}; SHOW("readv", readv(p[0], v, 2)); }
CASE(hostile_io_readv_all_zero_len) { int p[2]; pipe_with_data(p); struct iovec v[2] = {{NULLPTR, 0}, {NULLPTR, 0}}; SHOW("readv", readv(p[0], v, 2)); }
CASE(hostile_io_readv_zero_socket_empty) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct iovec v = {buf, 0}; SHOW("readv", readv(s[0], &v, 1)); }
CASE(hostile_io_readv_cnt_1025_socket) { int s[2]; sock_with_data(s); fill_iovs(1025, 1); SHOW("readv", readv(s[0], iovs, 1025)); }
CASE(hostile_io_readv_iov_null_socket) { int s[2]; sock_with_data(s); SHOW("readv", readv(s[0], NULLPTR, 1)); }
CASE(hostile_io_readv_base_noaccess_socket) { int s[2]; sock_with_data(s); struct iovec v = {noaccess(), 12}; SHOW("readv", readv(s[0], &v, 1)); }
CASE(hostile_io_writev_cnt_neg) { int p[2]; pipe(p); SHOW("writev", writev(p[1], iovs, (int)opaque(-1))); }
CASE(hostile_io_writev_cnt_zero) { int p[2]; pipe(p); SHOW("writev", writev(p[1], iovs, 0)); }
CASE(hostile_io_writev_cnt_1024) { int p[2]; pipe(p); fill_iovs(1024, 1); SHOW("writev", writev(p[1], iovs, 1024)); }
CASE(hostile_io_writev_cnt_1025) { int p[2]; pipe(p); fill_iovs(1025, 1); SHOW("writev", writev(p[1], iovs, 1025)); }
CASE(hostile_io_writev_iov_null) { int p[2]; pipe(p); SHOW("writev", writev(p[1], NULLPTR, 1)); }
CASE(hostile_io_writev_iov_noaccess) { int p[2]; pipe(p); SHOW("writev", writev(p[1], noaccess(), 1)); }
CASE(hostile_io_writev_base_noaccess) { int p[2]; pipe(p); struct iovec v = {noaccess(), 12}; SHOW("writev", writev(p[1], &v, 1)); }
CASE(hostile_io_writev_second_base_noaccess) { int p[2]; pipe(p); struct iovec v[2] = {{buf, 4}, {noaccess(), 8}}; SHOW("writev", writev(p[1], v, 2)); }
CASE(hostile_io_writev_len_overflow) { int p[2]; pipe(p); struct iovec v[2] = {{buf, (size_t)LONG_MAX}, {buf, (size_t)LONG_MAX}}; SHOW("writev", writev(p[1], v, 2)); }
CASE(hostile_io_writev_cnt_1025_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); fill_iovs(1025, 1); SHOW("writev", writev(s[0], iovs, 1025)); }
CASE(hostile_io_writev_base_noaccess_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct iovec v = {noaccess(), 12}; SHOW("writev", writev(s[0], &v, 1)); }
CASE(hostile_io_writev_zero_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct iovec v = {buf, 0}; SHOW("writev", writev(s[0], &v, 1)); }

/* ---- fortified reads ---------------------------------------------------------------- */

CASE(hostile_io_read_chk_overflow) { int p[2]; pipe_with_data(p); SHOW("__read_chk", __read_chk(p[0], buf, 12, 4)); }
CASE(hostile_io_read_chk_null) { int p[2]; pipe_with_data(p); SHOW("__read_chk", __read_chk(p[0], NULLPTR, 12, 12)); }
CASE(hostile_io_pread_chk_overflow) { int fd = open("/etc/hostname", O_RDONLY); SHOW("__pread_chk", __pread_chk(fd, buf, 12, 0, 4)); }
CASE(hostile_io_pread_chk_negative_offset) { int fd = open("/etc/hostname", O_RDONLY); SHOW("__pread_chk", __pread_chk(fd, buf, 4, -1, 16)); }
CASE(hostile_io_pread_chk_pipe) { int p[2]; pipe_with_data(p); SHOW("__pread_chk", __pread_chk(p[0], buf, 4, 0, 16)); }
CASE(hostile_io_pread_chk_socket) { int s[2]; sock_with_data(s); SHOW("__pread_chk", __pread_chk(s[0], buf, 4, 0, 16)); }

/* ---- pipe, open, close, dup --------------------------------------------------------- */

CASE(hostile_io_pipe_null) { SHOW("pipe", pipe(NULLPTR)); }
CASE(hostile_io_pipe_noaccess) { SHOW("pipe", pipe(noaccess())); }
CASE(hostile_io_pipe_edge) { SHOW("pipe", pipe((int *)edge(4))); SHOW("next fd free", ({ int f = dup(0); int r = f == 3; close(f); r; })); }
CASE(hostile_io_pipe2_null) { SHOW("pipe2", pipe2(NULLPTR, O_CLOEXEC)); }
CASE(hostile_io_pipe2_bad_flags) { int p[2]; SHOW("pipe2", pipe2(p, (int)opaque(0x7fffffff))); }
CASE(hostile_io_pipe2_flag_o_rdwr) { int p[2]; SHOW("pipe2", pipe2(p, O_RDWR)); }
CASE(hostile_io_open_null) { SHOWFD("open", open(NULLPTR, O_RDONLY)); }
CASE(hostile_io_open_noaccess) { SHOWFD("open", open(noaccess(), O_RDONLY)); }
CASE(hostile_io_open_empty) { SHOWFD("open", open("", O_RDONLY)); }
CASE(hostile_io_open_too_long) { static char p[PATH_MAX + 10]; memset(p, 'a', sizeof p - 1); SHOWFD("open", open(p, O_RDONLY)); }
CASE(hostile_io_open_name_too_long) { static char p[300]; p[0] = '/'; memset(p + 1, 'a', 298); SHOWFD("open", open(p, O_RDONLY)); }
CASE(hostile_io_open_bad_flags) { SHOWFD("open", open("/dev/null", (int)opaque(0x7fffffff))); }
CASE(hostile_io_open_directory_on_file) { SHOWFD("open", open("/etc/hostname", O_RDONLY | O_DIRECTORY)); }
CASE(hostile_io_open_tmpfile_no_mode) { SHOWFD("open", open("/tmp", O_TMPFILE | O_RDONLY)); }
CASE(hostile_io_open_excl_existing) { SHOWFD("open", open("/etc/hostname", O_CREAT | O_EXCL | O_RDONLY, 0600)); }
CASE(hostile_io_open_write_dir) { SHOWFD("open", open("/", O_WRONLY)); }
CASE(hostile_io_open_nofollow_symlink) { SHOWFD("open", open("/proc/self/exe", O_RDONLY | O_NOFOLLOW)); }
CASE(hostile_io_open_path_then_read) { int fd = open("/etc/hostname", O_PATH); SHOW("read", read(fd, buf, 1)); }
CASE(hostile_io_open64_null) { SHOWFD("open64", open64(NULLPTR, O_RDONLY)); }
CASE(hostile_io_openat_null) { SHOWFD("openat", openat(AT_FDCWD, NULLPTR, O_RDONLY)); }
CASE(hostile_io_openat_bad_dirfd_absolute) { SHOWFD("openat", openat(-5, "/dev/null", O_RDONLY)); }
CASE(hostile_io_openat_file_as_dirfd) { int f = open("/etc/hostname", O_RDONLY); SHOWFD("openat", openat(f, "x", O_RDONLY)); }
CASE(hostile_io_openat64_null) { SHOWFD("openat64", openat64(AT_FDCWD, NULLPTR, O_RDONLY)); }
CASE(hostile_io_creat_null) { SHOWFD("creat", creat(NULLPTR, 0600)); }
CASE(hostile_io_creat_dir) { SHOWFD("creat", creat("/", 0600)); }
CASE(hostile_io_creat_missing_dir) { SHOWFD("creat", creat("/nonexistent-dir/x", 0600)); }
CASE(hostile_io_open_2_creat_aborts) { SHOWFD("__open_2", __open_2("/tmp/x-greenify-never", (int)opaque(O_CREAT | O_RDWR))); }
CASE(hostile_io_open_2_null) { SHOWFD("__open_2", __open_2(NULLPTR, O_RDONLY)); }
CASE(hostile_io_openat_2_bad_dirfd) { SHOWFD("__openat_2", __openat_2(-5, "x", O_RDONLY)); }
CASE(hostile_io_close_twice) { int fd = dup(1); SHOW("close", close(fd)); SHOW("close again", close(fd)); }
CASE(hostile_io_close_range_bad_flags) { SHOW("close_range", close_range(100, 200, (unsigned)opaque(0x7fffffff))); }
CASE(hostile_io_close_range_reversed) { SHOW("close_range", close_range(200, 100, 0)); }
CASE(hostile_io_close_range_empty_huge) { SHOW("close_range", close_range(1u << 30, ~0u, 0)); }
CASE(hostile_io_close_range_cloexec_all_then_io) { int p[2]; pipe(p); SHOW("close_range", close_range(3, ~0u, CLOSE_RANGE_CLOEXEC)); SHOW("write", write(p[1], "x", 1)); SHOW("read", read(p[0], buf, 1)); warm(); SHOW("read after thread", read(p[0], buf, 0)); }
CASE(hostile_io_closefrom_then_threads) { closefrom(3); warm(); int p[2]; SHOW("pipe", pipe(p)); SHOW("write", write(p[1], "x", 1)); SHOW("read", read(p[0], buf, 1)); }
CASE(hostile_io_close_range_all_then_threads) { SHOW("close_range", close_range(3, ~0u, 0)); warm(); int s[2]; SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, s)); SHOW("write", write(s[0], "x", 1)); SHOW("read", read(s[1], buf, 1)); }
CASE(hostile_io_dup2_to_neg) { SHOW("dup2", dup2(0, -1)); }
CASE(hostile_io_dup2_to_intmax) { SHOW("dup2", dup2(0, INT_MAX)); }
CASE(hostile_io_dup2_to_huge) { SHOW("dup2", dup2(0, 1 << 20)); }
CASE(hostile_io_dup2_same) { SHOW("dup2", dup2(1, 1)); }
CASE(hostile_io_dup2_same_closed) { int fd = closed_fd(); SHOW("dup2", dup2(fd, fd)); }
CASE(hostile_io_dup3_same) { SHOW("dup3", dup3(1, 1, 0)); }
CASE(hostile_io_dup3_bad_flags) { SHOW("dup3", dup3(1, 100, (int)opaque(0x7fffffff))); }
CASE(hostile_io_dup3_to_neg) { SHOW("dup3", dup3(1, -1, 0)); }

/* ---- fcntl, ioctl ------------------------------------------------------------------- */

CASE(hostile_io_fcntl_bad_cmd) { SHOW("fcntl", fcntl(1, (int)opaque(0x7fff))); }
CASE(hostile_io_fcntl_dupfd_neg) { SHOW("fcntl", fcntl(1, F_DUPFD, -1)); }
CASE(hostile_io_fcntl_dupfd_huge) { SHOW("fcntl", fcntl(1, F_DUPFD, 1 << 20)); }
CASE(hostile_io_fcntl_dupfd_cloexec_intmax) { SHOW("fcntl", fcntl(1, F_DUPFD_CLOEXEC, INT_MAX)); }
CASE(hostile_io_fcntl_setfl_all_bits_pipe) { int p[2]; pipe(p); SHOW("setfl", fcntl(p[0], F_SETFL, (int)opaque(-1))); int fl = fcntl(p[0], F_GETFL); printf("nonblock=%d append=%d async=%d direct=%d noatime=%d\n", !!(fl & O_NONBLOCK), !!(fl & O_APPEND), !!(fl & O_ASYNC), !!(fl & O_DIRECT), !!(fl & O_NOATIME)); SHOW("read", read(p[0], buf, 1)); }
CASE(hostile_io_fcntl_setfl_all_bits_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("setfl", fcntl(s[0], F_SETFL, (int)opaque(-1))); int fl = fcntl(s[0], F_GETFL); printf("nonblock=%d append=%d\n", !!(fl & O_NONBLOCK), !!(fl & O_APPEND)); if (!(fl & O_NONBLOCK)) (void)!write(s[1], "x", 1); SHOW("read", read(s[0], buf, 1)); }
CASE(hostile_io_fcntl_setfl_zero_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s); SHOW("setfl", fcntl(s[0], F_SETFL, 0)); printf("nonblock=%d\n", !!(fcntl(s[0], F_GETFL) & O_NONBLOCK)); (void)!write(s[1], "x", 1); SHOW("read", read(s[0], buf, 1)); }
CASE(hostile_io_fcntl_setfd_garbage) { int fd = dup(1); SHOW("setfd", fcntl(fd, F_SETFD, (int)opaque(-1))); SHOW("getfd", fcntl(fd, F_GETFD)); }
CASE(hostile_io_fcntl_setlk_null) { int fd = open("/etc/hostname", O_RDONLY); SHOW("setlk", fcntl(fd, F_SETLK, NULLPTR)); }
CASE(hostile_io_fcntl_setlk_noaccess) { int fd = open("/etc/hostname", O_RDONLY); SHOW("setlk", fcntl(fd, F_SETLK, noaccess())); }
CASE(hostile_io_fcntl_setlkw_null) { int fd = open("/etc/hostname", O_RDONLY); SHOW("setlkw", fcntl(fd, F_SETLKW, NULLPTR)); }
CASE(hostile_io_fcntl_setlkw_bad_type) { int fd = open("/etc/hostname", O_RDONLY); struct flock l = {.l_type = 99, .l_whence = SEEK_SET}; SHOW("setlkw", fcntl(fd, F_SETLKW, &l)); }
CASE(hostile_io_fcntl_setlkw_bad_whence) { int fd = open("/etc/hostname", O_RDONLY); struct flock l = {.l_type = F_RDLCK, .l_whence = 99}; SHOW("setlkw", fcntl(fd, F_SETLKW, &l)); }
CASE(hostile_io_fcntl_setlkw_wrlck_rdonly) { int fd = open("/etc/hostname", O_RDONLY); struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET}; SHOW("setlkw", fcntl(fd, F_SETLKW, &l)); }
CASE(hostile_io_fcntl_setlkw_pipe) { int p[2]; pipe(p); struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET}; SHOW("setlkw", fcntl(p[0], F_SETLKW, &l)); }
CASE(hostile_io_fcntl_getlk_null) { int fd = open("/etc/hostname", O_RDONLY); SHOW("getlk", fcntl(fd, F_GETLK, NULLPTR)); }
CASE(hostile_io_fcntl_ofd_setlkw_nonzero_pid) { int fd = open("/etc/hostname", O_RDONLY); struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1}; SHOW("ofd_setlkw", fcntl(fd, F_OFD_SETLKW, &l)); }
CASE(hostile_io_fcntl_getpipe_sz_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("getpipe_sz", fcntl(s[0], F_GETPIPE_SZ)); }
CASE(hostile_io_ioctl_fionbio_null) { int p[2]; pipe(p); SHOW("fionbio", ioctl(p[0], FIONBIO, NULLPTR)); }
CASE(hostile_io_ioctl_fionbio_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("fionbio", ioctl(s[0], FIONBIO, noaccess())); printf("nonblock=%d\n", !!(fcntl(s[0], F_GETFL) & O_NONBLOCK)); }
CASE(hostile_io_ioctl_fionread_null) { int p[2]; pipe_with_data(p); SHOW("fionread", ioctl(p[0], FIONREAD, NULLPTR)); }
CASE(hostile_io_ioctl_fionread_noaccess) { int s[2]; sock_with_data(s); SHOW("fionread", ioctl(s[0], FIONREAD, noaccess())); }
CASE(hostile_io_ioctl_bad_request) { int p[2]; pipe(p); SHOW("ioctl", ioctl(p[0], (unsigned long)opaque(0x7fff1234), 0)); }
CASE(hostile_io_ioctl_fioasync_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); int on = 1; SHOW("fioasync", ioctl(s[0], FIOASYNC, &on)); }
CASE(hostile_io_ioctl_fionbio_off_then_read) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s); int off = 0; SHOW("fionbio", ioctl(s[0], FIONBIO, &off)); printf("nonblock=%d\n", !!(fcntl(s[0], F_GETFL) & O_NONBLOCK)); (void)!write(s[1], "x", 1); SHOW("read", read(s[0], buf, 1)); }

/* ---- file-ish calls ------------------------------------------------------------------ */

CASE(hostile_io_fsync_pipe) { int p[2]; pipe(p); SHOW("fsync", fsync(p[0])); }
CASE(hostile_io_fsync_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("fsync", fsync(s[0])); }
CASE(hostile_io_fdatasync_pipe) { int p[2]; pipe(p); SHOW("fdatasync", fdatasync(p[1])); }
CASE(hostile_io_fsync_o_path) { int d = open("/etc/hostname", O_PATH); SHOW("fsync", fsync(d)); }
CASE(hostile_io_flock_bad_op) { int fd = open("/etc/hostname", O_RDONLY); SHOW("flock", flock(fd, (int)opaque(0x7f))); }
CASE(hostile_io_flock_zero_op) { int fd = open("/etc/hostname", O_RDONLY); SHOW("flock", flock(fd, 0)); }
CASE(hostile_io_flock_pipe) { int p[2]; pipe(p); SHOW("flock", flock(p[0], LOCK_EX | LOCK_NB)); }
CASE(hostile_io_flock_conflict_nb) { int a = open("/etc/hostname", O_RDONLY), b = open("/etc/hostname", O_RDONLY); SHOW("flock a", flock(a, LOCK_EX)); SHOW("flock b", flock(b, LOCK_EX | LOCK_NB)); }
CASE(hostile_io_lockf_bad_cmd) { int fd = open("/etc/hostname", O_RDONLY); SHOW("lockf", lockf(fd, (int)opaque(99), 0)); }
CASE(hostile_io_lockf_rdonly_lock) { int fd = open("/etc/hostname", O_RDONLY); SHOW("lockf", lockf(fd, F_LOCK, 0)); }
CASE(hostile_io_lockf_negative_len) { char p[] = "/tmp/greenify-hostile-XXXXXX"; int fd = mkstemp(p); unlink(p); SHOW("lockf", lockf(fd, F_TLOCK, -10)); }
CASE(hostile_io_sendfile_offset_noaccess) { int f = open("/etc/hostname", O_RDONLY); int p[2]; pipe(p); SHOW("sendfile", sendfile(p[1], f, noaccess(), 4)); }
CASE(hostile_io_sendfile_offset_negative) { int f = open("/etc/hostname", O_RDONLY); int p[2]; pipe(p); off_t o = -1; SHOW("sendfile", sendfile(p[1], f, &o, 4)); }
CASE(hostile_io_sendfile_zero) { int f = open("/etc/hostname", O_RDONLY); int p[2]; pipe(p); SHOW("sendfile", sendfile(p[1], f, NULL, 0)); }
CASE(hostile_io_sendfile_huge) { int f = open("/etc/hostname", O_RDONLY); int p[2]; pipe(p); SHOW("sendfile ok", sendfile(p[1], f, NULL, (size_t)opaque(-1)) > 0); }
CASE(hostile_io_sendfile_in_pipe_with_offset) { int p[2]; pipe_with_data(p); int q[2]; pipe(q); off_t o = 0; SHOW("sendfile", sendfile(q[1], p[0], &o, 4)); }
CASE(hostile_io_sendfile_in_socket) { int s[2]; sock_with_data(s); int q[2]; pipe(q); SHOW("sendfile", sendfile(q[1], s[0], NULL, 4)); }
CASE(hostile_io_sendfile_out_rdonly) { int f = open("/etc/hostname", O_RDONLY); int p[2]; pipe(p); SHOW("sendfile", sendfile(p[0], f, NULL, 4)); }
CASE(hostile_io_sendfile_out_shut_socket) { signal(SIGPIPE, SIG_IGN); int f = open("/etc/hostname", O_RDONLY); int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); shutdown(s[0], SHUT_WR); SHOW("sendfile", sendfile(s[0], f, NULL, 4)); }
CASE(hostile_io_fdopen_bad_mode) { int p[2]; pipe(p); errno = 0; FILE *f = fdopen(p[0], "z"); printf("fdopen: %s errno=%s\n", f ? "stream" : "NULL", f ? "0" : en(errno)); }
#define SHOWSTREAM(what, expr)                                                       \
    do {                                                                             \
        errno = 0;                                                                   \
        FILE *showstream_f_ = (expr);                                                \
        printf("%s: %s errno=%s\n", what, showstream_f_ ? "stream" : "NULL",        \
               showstream_f_ ? "0" : en(errno));                                    \
    } while (0)
CASE(hostile_io_fdopen_write_mode_on_read_end) { int p[2]; pipe(p); SHOWSTREAM("fdopen w", fdopen(p[0], "w")); SHOWSTREAM("fdopen a", fdopen(p[0], "a")); SHOWSTREAM("fdopen r+", fdopen(p[0], "r+")); SHOWSTREAM("fdopen rb+", fdopen(p[0], "rb+")); SHOWSTREAM("fdopen rbxe", fdopen(p[0], "rbxe")); }
CASE(hostile_io_fdopen_read_mode_on_write_end) { int p[2]; pipe(p); SHOWSTREAM("fdopen r", fdopen(p[1], "r")); SHOWSTREAM("fdopen w+", fdopen(p[1], "w+")); SHOWSTREAM("fdopen wbbbb+", fdopen(p[1], "wbbbb+")); SHOWSTREAM("fdopen w", fdopen(p[1], "w")); }
CASE(hostile_io_fdopen_append_sets_o_append) { int p[2]; pipe(p); SHOWSTREAM("fdopen a", fdopen(p[1], "a")); printf("append=%d\n", !!(fcntl(p[1], F_GETFL) & O_APPEND)); int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOWSTREAM("fdopen a+", fdopen(s[0], "a+")); printf("append=%d\n", !!(fcntl(s[0], F_GETFL) & O_APPEND)); }
CASE(hostile_io_fdopen_bad_mode_closed_fd) { int fd = closed_fd(); SHOWSTREAM("fdopen z", fdopen(fd, "z")); SHOWSTREAM("fdopen empty", fdopen(fd, "")); SHOWSTREAM("fdopen r", fdopen(fd, "r")); }
CASE(hostile_io_fdopen_bad_mode_socket) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOWSTREAM("fdopen empty", fdopen(s[0], "")); SHOWSTREAM("fdopen x", fdopen(s[0], "x")); SHOWSTREAM("fdopen r+", fdopen(s[0], "r+")); }
CASE(hostile_io_fdopen_mode_mismatch) { int p[2]; pipe(p); errno = 0; FILE *f = fdopen(p[0], "w"); printf("fdopen: %s errno=%s\n", f ? "stream" : "NULL", f ? "0" : en(errno)); }
CASE(hostile_io_fdopen_socket_then_closed_fd_io) { int s[2]; sock_with_data(s); FILE *f = fdopen(s[0], "r"); close(s[0]); errno = 0; int c = fgetc(f); printf("fgetc: %d errno=%s ferror=%d\n", c, en(errno), ferror(f)); }
CASE(hostile_io_fdopen_pipe_write_to_closed_reader) { signal(SIGPIPE, SIG_IGN); int p[2]; pipe(p); close(p[0]); FILE *f = fdopen(p[1], "w"); fputs("data", f); errno = 0; int r = fflush(f); printf("fflush: %d errno=%s ferror=%d\n", r, en(errno), ferror(f)); }

/* ---- fd-creating calls with bad flags ----------------------------------------------- */

CASE(hostile_io_eventfd_bad_flags) { SHOWFD("eventfd", eventfd(0, (int)opaque(0x7fffffff))); }
CASE(hostile_io_eventfd_semaphore_read) { int e = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK); uint64_t v; SHOW("read", read(e, &v, 8)); printf("value=%llu\n", (unsigned long long)v); }
CASE(hostile_io_memfd_null) { SHOWFD("memfd_create", memfd_create(NULLPTR, 0)); }
CASE(hostile_io_memfd_bad_flags) { SHOWFD("memfd_create", memfd_create("x", (unsigned)opaque(0x7fffffff))); }
CASE(hostile_io_memfd_long_name) { static char n[300]; memset(n, 'n', 299); SHOWFD("memfd_create", memfd_create(n, 0)); }
CASE(hostile_io_memfd_noaccess) { SHOWFD("memfd_create", memfd_create(noaccess(), 0)); }
CASE(hostile_io_inotify_bad_flags) { SHOWFD("inotify_init1", inotify_init1((int)opaque(0x7fffffff))); }
CASE(hostile_io_timerfd_bad_clock) { SHOWFD("timerfd_create", timerfd_create((int)opaque(12345), 0)); }
CASE(hostile_io_timerfd_cputime_clock) { SHOWFD("timerfd_create", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0)); }
CASE(hostile_io_timerfd_bad_flags) { SHOWFD("timerfd_create", timerfd_create(CLOCK_MONOTONIC, (int)opaque(0x7fffffff))); }
CASE(hostile_io_epoll_create_zero) { SHOWFD("epoll_create", epoll_create((int)opaque(0))); }
CASE(hostile_io_epoll_create_neg) { SHOWFD("epoll_create", epoll_create((int)opaque(-1))); }
CASE(hostile_io_epoll_create1_bad_flags) { SHOWFD("epoll_create1", epoll_create1((int)opaque(0x7fffffff))); }
