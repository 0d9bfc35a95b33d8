/* Bad-input sweep, polling and time: poll/ppoll/select/pselect, epoll_wait/epoll_pwait/
 * epoll_pwait2 (and __poll_chk/__ppoll_chk/__fdelt_chk), sleep/usleep/nanosleep/
 * clock_nanosleep, timerfd, eventfd, signalfd, sigtimedwait: NULL and unmapped
 * (PROT_NONE) arrays and timeouts, negative and out-of-range timespecs and timevals,
 * huge counts, bad clocks, bad flags, bad and wrong-kind fds. Each case runs both in main
 * and, where greenify takes another path, in a thread. */
#include "case.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

extern int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
extern int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                       const sigset_t *ss, size_t fdslen);
extern long int __fdelt_chk(long int d);

/* Prints the timing class too, for calls that should return at once (0 ms expected). */
#define SHOWQ(what, expr)                                                            \
    do {                                                                             \
        double showq_t_ = now_ms();                                                  \
        SHOW(what, expr);                                                            \
        printf("  %s\n", timing(now_ms() - showq_t_, 0));                            \
    } while (0)

static struct timespec ts(long s, long ns) { struct timespec t = {s, ns}; return t; }
static struct timeval tv(long s, long us) { struct timeval t = {s, us}; return t; }

static void interrupted(int sig) { (void)sig; }

/* Interrupts the calling thread's next wait with SIGUSR1 (a handler, no SA_RESTART) in
 * 50 ms: a timeout some kernels turn into a sleep of many minutes (6.18 normalises a huge
 * tv_usec) then ends in EINTR, where others fail at once. */
static timer_t interrupt_in_50ms(void) {
    set_handler(SIGUSR1, interrupted, 0);
    timer_t timer;
    signal_thread_in((pid_t)syscall(SYS_gettid), SIGUSR1, 50000000, &timer);
    return timer;
}

/* ---- poll / ppoll ------------------------------------------------------------------- */

BOTH(hostile_pt_poll_null_nfds1, { SHOWQ("poll", poll(NULLPTR, 1, 0)); SHOWQ("poll 50ms", poll(NULLPTR, 1, 50)); })
BOTH(hostile_pt_poll_noaccess, { SHOWQ("poll", poll(noaccess(), 1, 50)); })
BOTH(hostile_pt_poll_null_nfds0, { double t = now_ms(); SHOW("poll", poll(NULLPTR, 0, 30)); printf("%s\n", timing(now_ms() - t, 30)); })
BOTH(hostile_pt_poll_nfds_huge, { struct pollfd p = {0, POLLIN, 0}; SHOWQ("poll", poll(&p, (nfds_t)opaque(1 << 30), 0)); })
BOTH(hostile_pt_poll_nfds_above_rlimit, { struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); static struct pollfd p[70000]; for (int i = 0; i < 70000; i++) { p[i].fd = -1; } SHOWQ("poll", poll(p, (nfds_t)rl.rlim_cur + 1, 0)); })
BOTH(hostile_pt_poll_negative_fds_ignored, { struct pollfd p[2] = {{-1, POLLIN, 0}, {-5, POLLOUT, 0}}; double t = now_ms(); SHOW("poll", poll(p, 2, 30)); printf("%s revents=%d,%d\n", timing(now_ms() - t, 30), p[0].revents, p[1].revents); })
BOTH(hostile_pt_poll_closed_fd_pollnval, { struct pollfd p = {closed_fd(), POLLIN, 0}; SHOWQ("poll", poll(&p, 1, 1000)); printf("revents=%#x\n", p.revents); })
BOTH(hostile_pt_poll_huge_fd_pollnval, { struct pollfd p = {1 << 20, POLLIN, 0}; SHOWQ("poll", poll(&p, 1, 1000)); printf("revents=%#x\n", p.revents); })
BOTH(hostile_pt_poll_intmax_fd_pollnval, { struct pollfd p = {INT_MAX, POLLIN, 0}; SHOWQ("poll", poll(&p, 1, 1000)); printf("revents=%#x\n", p.revents); })
BOTH(hostile_pt_poll_garbage_events, { int q[2]; pipe(q); struct pollfd p = {q[1], (short)0xffff, 0x1234}; SHOWQ("poll", poll(&p, 1, 0)); printf("revents=%#x\n", p.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLNVAL)); })
BOTH(hostile_pt_poll_zero_events, { int q[2]; pipe(q); (void)!write(q[1], "x", 1); struct pollfd p = {q[0], 0, 0}; double t = now_ms(); SHOW("poll", poll(&p, 1, 30)); printf("%s revents=%#x\n", timing(now_ms() - t, 30), p.revents); })
BOTH(hostile_pt_poll_timeout_very_negative, { int q[2]; pipe(q); (void)!write(q[1], "x", 1); struct pollfd p = {q[0], POLLIN, 0}; SHOWQ("poll", poll(&p, 1, INT_MIN)); })
BOTH(hostile_pt_poll_same_fd_twice, { int q[2]; pipe(q); (void)!write(q[1], "x", 1); struct pollfd p[2] = {{q[0], POLLIN, 0}, {q[0], POLLOUT, 0}}; SHOWQ("poll", poll(p, 2, 0)); printf("revents=%#x,%#x\n", p[0].revents, p[1].revents); })
BOTH(hostile_pt_poll_chk_overflow, { struct pollfd p = {0, POLLIN, 0}; SHOW("__poll_chk", __poll_chk(&p, 2, 0, sizeof p)); })
BOTH(hostile_pt_poll_chk_null, { SHOWQ("__poll_chk", __poll_chk(NULLPTR, 1, 0, 8)); })
BOTH(hostile_pt_ppoll_ts_negative, { struct pollfd p = {-1, 0, 0}; struct timespec t = ts(-1, 0); SHOWQ("ppoll", ppoll(&p, 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_ts_nsec_big, { struct pollfd p = {-1, 0, 0}; struct timespec t = ts(0, 1000000000); SHOWQ("ppoll", ppoll(&p, 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_ts_nsec_negative, { struct pollfd p = {-1, 0, 0}; struct timespec t = ts(0, -1); SHOWQ("ppoll", ppoll(&p, 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_ts_noaccess, { struct pollfd p = {-1, 0, 0}; SHOWQ("ppoll", ppoll(&p, 1, noaccess(), NULL)); })
BOTH(hostile_pt_ppoll_ts_bad_with_ready_fd, { int q[2]; pipe(q); struct pollfd p = {q[1], POLLOUT, 0}; struct timespec t = ts(0, 2000000000); SHOWQ("ppoll", ppoll(&p, 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_sigmask_noaccess, { struct pollfd p = {-1, 0, 0}; struct timespec t = ts(0, 0); SHOWQ("ppoll", ppoll(&p, 1, &t, noaccess())); })
BOTH(hostile_pt_ppoll_fds_noaccess, { struct timespec t = ts(0, 20000000); SHOWQ("ppoll", ppoll(noaccess(), 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_ts_huge, { int q[2]; pipe(q); struct pollfd p = {q[1], POLLOUT, 0}; struct timespec t = ts(LONG_MAX, 999999999); SHOWQ("ppoll", ppoll(&p, 1, &t, NULL)); })
BOTH(hostile_pt_ppoll_chk_overflow, { struct pollfd p = {0, POLLIN, 0}; struct timespec t = ts(0, 0); SHOW("__ppoll_chk", __ppoll_chk(&p, 2, &t, NULL, sizeof p)); })

/* ---- select / pselect --------------------------------------------------------------- */

BOTH(hostile_pt_select_nfds_negative, { fd_set r; FD_ZERO(&r); struct timeval t = tv(0, 0); SHOWQ("select", select((int)opaque(-1), &r, NULL, NULL, &t)); })
BOTH(hostile_pt_select_tv_negative, { fd_set r; FD_ZERO(&r); struct timeval t = tv(-1, 0); SHOWQ("select", select(0, &r, NULL, NULL, &t)); })
BOTH(hostile_pt_select_tv_usec_negative, { struct timeval t = tv(0, -1); SHOWQ("select", select(0, NULL, NULL, NULL, &t)); })
BOTH(hostile_pt_select_tv_usec_big, { struct timeval t = tv(0, 1000000); double s = now_ms(); SHOW("select", select(0, NULL, NULL, NULL, &t)); printf("%s sec=%ld usec=%ld\n", timing(now_ms() - s, 1000), (long)t.tv_sec, (long)t.tv_usec); })
BOTH(hostile_pt_select_tv_usec_huge, { struct timeval t = tv(0, 2000000000L); timer_t alarm = interrupt_in_50ms(); double at = now_ms(); errno = 0; int r = select(0, NULL, NULL, NULL, &t); int e = errno; double took = now_ms() - at; timer_delete(alarm); printf("select: ret=%d errno=%s\n  %s\n", r, r == -1 ? en(e) : "0", timing(took, r == -1 && e == EINTR ? 50 : 0)); })
BOTH(hostile_pt_select_tv_noaccess, { SHOWQ("select", select(0, NULL, NULL, NULL, noaccess())); })
BOTH(hostile_pt_select_set_noaccess, { struct timeval t = tv(0, 0); SHOWQ("select", select(1, noaccess(), NULL, NULL, &t)); })
BOTH(hostile_pt_select_closed_fd, { int fd = closed_fd(); fd_set r; FD_ZERO(&r); FD_SET(fd, &r); struct timeval t = tv(1, 0); SHOWQ("select", select(fd + 1, &r, NULL, NULL, &t)); })
BOTH(hostile_pt_select_nfds_huge_empty, { static fd_set r[64]; memset(r, 0, sizeof r); struct timeval t = tv(0, 0); SHOWQ("select", select((int)opaque(INT_MAX), r, NULL, NULL, &t)); })
BOTH(hostile_pt_select_tv_zero_written_back, { int q[2]; pipe(q); fd_set r; FD_ZERO(&r); FD_SET(q[0], &r); struct timeval t = tv(0, 30000); double s = now_ms(); SHOW("select", select(q[0] + 1, &r, NULL, NULL, &t)); printf("%s left=%ld.%06ld isset=%d\n", timing(now_ms() - s, 30), (long)t.tv_sec, (long)t.tv_usec, FD_ISSET(q[0], &r)); })
BOTH(hostile_pt_pselect_ts_negative, { struct timespec t = ts(-1, 0); SHOWQ("pselect", pselect(0, NULL, NULL, NULL, &t, NULL)); })
BOTH(hostile_pt_pselect_ts_nsec_big, { struct timespec t = ts(0, 1000000000); SHOWQ("pselect", pselect(0, NULL, NULL, NULL, &t, NULL)); })
BOTH(hostile_pt_pselect_ts_nsec_negative, { struct timespec t = ts(0, -1); SHOWQ("pselect", pselect(0, NULL, NULL, NULL, &t, NULL)); })
BOTH(hostile_pt_pselect_ts_noaccess, { SHOWQ("pselect", pselect(0, NULL, NULL, NULL, noaccess(), NULL)); })
BOTH(hostile_pt_pselect_sigmask_noaccess, { struct timespec t = ts(0, 0); SHOWQ("pselect", pselect(0, NULL, NULL, NULL, &t, noaccess())); })
BOTH(hostile_pt_pselect_nfds_negative, { struct timespec t = ts(0, 0); SHOWQ("pselect", pselect((int)opaque(-1), NULL, NULL, NULL, &t, NULL)); })
BOTH(hostile_pt_pselect_bad_ts_ready_fd, { int q[2]; pipe(q); fd_set w; FD_ZERO(&w); FD_SET(q[1], &w); struct timespec t = ts(0, 1000000000); SHOWQ("pselect", pselect(q[1] + 1, NULL, &w, NULL, &t, NULL)); })
CASE(hostile_pt_fdelt_chk_negative) { SHOW("__fdelt_chk", __fdelt_chk(opaque(-1))); }
CASE(hostile_pt_fdelt_chk_too_big) { SHOW("__fdelt_chk", __fdelt_chk(opaque(FD_SETSIZE))); }
CASE(hostile_pt_fdelt_chk_ok) { SHOW("__fdelt_chk", __fdelt_chk(opaque(FD_SETSIZE - 1))); }

/* ---- epoll -------------------------------------------------------------------------- */

BOTH(hostile_pt_epoll_wait_maxevents_zero, { int e = epoll_create1(0); struct epoll_event ev; SHOWQ("epoll_wait", epoll_wait(e, &ev, 0, 1000)); })
BOTH(hostile_pt_epoll_wait_maxevents_negative, { int e = epoll_create1(0); struct epoll_event ev; SHOWQ("epoll_wait", epoll_wait(e, &ev, (int)opaque(-1), 1000)); })
BOTH(hostile_pt_epoll_wait_maxevents_huge, { int e = epoll_create1(0); struct epoll_event ev; SHOWQ("epoll_wait", epoll_wait(e, &ev, (int)opaque(INT_MAX), 0)); })
BOTH(hostile_pt_epoll_wait_events_null_ready, { int e = epoll_create1(0); int q[2]; pipe(q); struct epoll_event ev = {.events = EPOLLOUT}; epoll_ctl(e, EPOLL_CTL_ADD, q[1], &ev); SHOWQ("epoll_wait", epoll_wait(e, NULLPTR, 1, 1000)); })
BOTH(hostile_pt_epoll_wait_events_noaccess_ready, { int e = epoll_create1(0); int q[2]; pipe(q); struct epoll_event ev = {.events = EPOLLOUT}; epoll_ctl(e, EPOLL_CTL_ADD, q[1], &ev); SHOWQ("epoll_wait", epoll_wait(e, noaccess(), 1, 1000)); SHOWQ("epoll_wait again", epoll_wait(e, &ev, 1, 1000)); })
BOTH(hostile_pt_epoll_wait_events_noaccess_idle, { int e = epoll_create1(0); SHOWQ("epoll_wait", epoll_wait(e, noaccess(), 1, 0)); })
BOTH(hostile_pt_epoll_wait_events_null_idle_timeout, { int e = epoll_create1(0); SHOWQ("epoll_wait", epoll_wait(e, NULLPTR, 1, 30)); })
BOTH(hostile_pt_epoll_wait_not_epoll, { int q[2]; pipe(q); struct epoll_event ev; SHOWQ("epoll_wait", epoll_wait(q[0], &ev, 1, 1000)); })
BOTH(hostile_pt_epoll_wait_timeout_very_negative_ready, { int e = epoll_create1(0); int q[2]; pipe(q); struct epoll_event ev = {.events = EPOLLOUT}; epoll_ctl(e, EPOLL_CTL_ADD, q[1], &ev); SHOWQ("epoll_wait", epoll_wait(e, &ev, 1, INT_MIN)); })
BOTH(hostile_pt_epoll_pwait_sigmask_noaccess, { int e = epoll_create1(0); struct epoll_event ev; SHOWQ("epoll_pwait", epoll_pwait(e, &ev, 1, 0, noaccess())); })
BOTH(hostile_pt_epoll_pwait_maxevents_zero, { int e = epoll_create1(0); struct epoll_event ev; sigset_t s; sigemptyset(&s); SHOWQ("epoll_pwait", epoll_pwait(e, &ev, 0, 0, &s)); })
BOTH(hostile_pt_epoll_pwait2_ts_negative, { int e = epoll_create1(0); struct epoll_event ev; struct timespec t = ts(-1, 0); SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_ts_nsec_big, { int e = epoll_create1(0); struct epoll_event ev; struct timespec t = ts(0, 1000000000); SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_ts_nsec_negative, { int e = epoll_create1(0); struct epoll_event ev; struct timespec t = ts(0, -1); SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_ts_noaccess, { int e = epoll_create1(0); struct epoll_event ev; SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 1, noaccess(), NULL)); })
BOTH(hostile_pt_epoll_pwait2_bad_ts_ready, { int e = epoll_create1(0); int q[2]; pipe(q); struct epoll_event ev = {.events = EPOLLOUT}; epoll_ctl(e, EPOLL_CTL_ADD, q[1], &ev); struct timespec t = ts(0, 1000000000); SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_maxevents_zero, { int e = epoll_create1(0); struct epoll_event ev; struct timespec t = ts(0, 0); SHOWQ("epoll_pwait2", epoll_pwait2(e, &ev, 0, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_not_epoll, { struct epoll_event ev; struct timespec t = ts(0, 0); SHOWQ("epoll_pwait2", epoll_pwait2(0, &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_pwait2_closed, { struct epoll_event ev; struct timespec t = ts(0, 0); SHOWQ("epoll_pwait2", epoll_pwait2(closed_fd(), &ev, 1, &t, NULL)); })
BOTH(hostile_pt_epoll_wait_on_itself, { int e = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN}; SHOW("ctl add self", epoll_ctl(e, EPOLL_CTL_ADD, e, &ev)); SHOWQ("epoll_wait", epoll_wait(e, &ev, 1, 0)); })

/* ---- sleeps ------------------------------------------------------------------------- */

BOTH(hostile_pt_nanosleep_null, { SHOWQ("nanosleep", nanosleep(NULLPTR, NULL)); })
BOTH(hostile_pt_nanosleep_noaccess, { SHOWQ("nanosleep", nanosleep(noaccess(), NULL)); })
BOTH(hostile_pt_nanosleep_negative, { struct timespec t = ts(-1, 0); SHOWQ("nanosleep", nanosleep(&t, NULL)); })
BOTH(hostile_pt_nanosleep_nsec_big, { struct timespec t = ts(0, 1000000000); SHOWQ("nanosleep", nanosleep(&t, NULL)); })
BOTH(hostile_pt_nanosleep_nsec_negative, { struct timespec t = ts(0, -1); SHOWQ("nanosleep", nanosleep(&t, NULL)); })
BOTH(hostile_pt_nanosleep_zero, { struct timespec t = ts(0, 0), r = ts(7, 7); SHOWQ("nanosleep", nanosleep(&t, &r)); printf("rem=%ld.%ld\n", (long)r.tv_sec, r.tv_nsec); })
BOTH(hostile_pt_nanosleep_rem_noaccess, { struct timespec t = ts(0, 20000000); double s = now_ms(); SHOW("nanosleep", nanosleep(&t, noaccess())); printf("%s\n", timing(now_ms() - s, 20)); })
BOTH(hostile_pt_nanosleep_rem_same_as_req, { struct timespec t = ts(0, 20000000); double s = now_ms(); SHOW("nanosleep", nanosleep(&t, &t)); printf("%s\n", timing(now_ms() - s, 20)); })
BOTH(hostile_pt_clock_nanosleep_bad_clock, { struct timespec t = ts(0, 1000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep((clockid_t)opaque(12345), 0, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_thread_cputime, { struct timespec t = ts(0, 1000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_negative_clock, { struct timespec t = ts(0, 1000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep((clockid_t)opaque(-1), 0, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_bad_flags, { struct timespec t = ts(0, 1000000); double s = now_ms(); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, (int)opaque(0x7ffe), &t, NULL))); printf("%s\n", timing(now_ms() - s, 1)); })
BOTH(hostile_pt_clock_nanosleep_null, { printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, 0, NULLPTR, NULL))); })
BOTH(hostile_pt_clock_nanosleep_noaccess, { printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, 0, noaccess(), NULL))); })
BOTH(hostile_pt_clock_nanosleep_negative, { struct timespec t = ts(-1, 0); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_nsec_big, { struct timespec t = ts(0, 1000000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_abs_nsec_big, { struct timespec t = ts(0, 1000000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_abs_negative, { struct timespec t = ts(-5, 0); double s = now_ms(); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL))); printf("%s\n", timing(now_ms() - s, 0)); })
BOTH(hostile_pt_clock_nanosleep_abs_past, { struct timespec t = ts(1, 0); double s = now_ms(); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, NULL))); printf("%s\n", timing(now_ms() - s, 0)); })
BOTH(hostile_pt_clock_nanosleep_rem_noaccess, { struct timespec t = ts(0, 20000000); double s = now_ms(); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, noaccess()))); printf("%s\n", timing(now_ms() - s, 20)); })
BOTH(hostile_pt_clock_nanosleep_boottime, { struct timespec t = ts(0, 20000000); double s = now_ms(); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_BOOTTIME, 0, &t, NULL))); printf("%s\n", timing(now_ms() - s, 20)); })
BOTH(hostile_pt_clock_nanosleep_tai_abs_past, { struct timespec t = ts(0, 0); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_TAI, TIMER_ABSTIME, &t, NULL))); })
BOTH(hostile_pt_clock_nanosleep_monotonic_raw, { struct timespec t = ts(0, 1000000); printf("clock_nanosleep: %s\n", en(clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &t, NULL))); })
BOTH(hostile_pt_usleep_million, { double s = now_ms(); SHOW("usleep", usleep(1000000)); printf("%s\n", timing(now_ms() - s, 1000)); })
BOTH(hostile_pt_usleep_zero, { SHOWQ("usleep", usleep(0)); })
BOTH(hostile_pt_sleep_zero, { SHOWQ("sleep", sleep(0)); })

/* ---- timerfd / eventfd / signalfd ---------------------------------------------------- */

BOTH(hostile_pt_timerfd_settime_nsec_big, { int t = timerfd_create(CLOCK_MONOTONIC, 0); struct itimerspec i = {{0, 0}, {0, 1000000000}}; SHOW("settime", timerfd_settime(t, 0, &i, NULL)); })
BOTH(hostile_pt_timerfd_settime_negative, { int t = timerfd_create(CLOCK_MONOTONIC, 0); struct itimerspec i = {{0, 0}, {-1, 0}}; SHOW("settime", timerfd_settime(t, 0, &i, NULL)); })
BOTH(hostile_pt_timerfd_read_unarmed_nonblock, { int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK); uint64_t v; SHOWQ("read", read(t, &v, 8)); })
BOTH(hostile_pt_timerfd_read_buf_noaccess, { int t = timerfd_create(CLOCK_MONOTONIC, 0); struct itimerspec i = {{0, 0}, {0, 1000000}}; timerfd_settime(t, 0, &i, NULL); msleep(5); SHOWQ("read", read(t, noaccess(), 8)); })
BOTH(hostile_pt_timerfd_fires_read, { int t = timerfd_create(CLOCK_MONOTONIC, 0); struct itimerspec i = {{0, 0}, {0, 20000000}}; double s = now_ms(); timerfd_settime(t, 0, &i, NULL); uint64_t v = 0; SHOW("read", read(t, &v, 8)); printf("%s ticks=%llu\n", timing(now_ms() - s, 20), (unsigned long long)v); })
BOTH(hostile_pt_timerfd_poll_unarmed, { int t = timerfd_create(CLOCK_MONOTONIC, 0); struct pollfd p = {t, POLLIN | POLLOUT, 0}; double s = now_ms(); SHOW("poll", poll(&p, 1, 30)); printf("%s revents=%#x\n", timing(now_ms() - s, 30), p.revents); })
BOTH(hostile_pt_eventfd_read_nonblock_zero, { int e = eventfd(0, EFD_NONBLOCK); uint64_t v; SHOWQ("read", read(e, &v, 8)); })
BOTH(hostile_pt_eventfd_read_buf_noaccess, { int e = eventfd(5, 0); SHOWQ("read", read(e, noaccess(), 8)); uint64_t v = 0; fcntl(e, F_SETFL, O_NONBLOCK); SHOW("read again", read(e, &v, 8)); printf("value=%llu\n", (unsigned long long)v); })
BOTH(hostile_pt_eventfd_write_buf_noaccess, { int e = eventfd(0, 0); SHOWQ("write", write(e, noaccess(), 8)); })
BOTH(hostile_pt_signalfd_bad_flags, { sigset_t s; sigemptyset(&s); SHOW("signalfd", signalfd(-1, &s, (int)opaque(0x7fff)) >= 0); })
BOTH(hostile_pt_signalfd_mask_null, { SHOW("signalfd", signalfd(-1, NULLPTR, 0) >= 0); })
BOTH(hostile_pt_signalfd_mask_noaccess, { SHOW("signalfd", signalfd(-1, noaccess(), 0) >= 0); })
BOTH(hostile_pt_signalfd_read_short, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); int f = signalfd(-1, &s, SFD_NONBLOCK); SHOWQ("read", read(f, (char[8]){0}, 8)); })
BOTH(hostile_pt_signalfd_read_empty_nonblock, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); int f = signalfd(-1, &s, SFD_NONBLOCK); struct signalfd_siginfo si; SHOWQ("read", read(f, &si, sizeof si)); })
BOTH(hostile_pt_signalfd_on_pipe, { int q[2]; pipe(q); sigset_t s; sigemptyset(&s); SHOW("signalfd", signalfd(q[0], &s, 0)); })

/* ---- sigtimedwait ------------------------------------------------------------------- */

BOTH(hostile_pt_sigtimedwait_ts_negative, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); struct timespec t = ts(-1, 0); SHOWQ("sigtimedwait", sigtimedwait(&s, NULL, &t)); })
BOTH(hostile_pt_sigtimedwait_ts_nsec_big, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); struct timespec t = ts(0, 1000000000); SHOWQ("sigtimedwait", sigtimedwait(&s, NULL, &t)); })
BOTH(hostile_pt_sigtimedwait_ts_noaccess, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); SHOWQ("sigtimedwait", sigtimedwait(&s, NULL, noaccess())); })
BOTH(hostile_pt_sigtimedwait_set_null, { struct timespec t = ts(0, 0); SHOWQ("sigtimedwait", sigtimedwait(NULLPTR, NULL, &t)); })
BOTH(hostile_pt_sigtimedwait_set_noaccess, { struct timespec t = ts(0, 0); SHOWQ("sigtimedwait", sigtimedwait(noaccess(), NULL, &t)); })
BOTH(hostile_pt_sigtimedwait_zero, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); struct timespec t = ts(0, 0); SHOWQ("sigtimedwait", sigtimedwait(&s, NULL, &t)); })
BOTH(hostile_pt_sigtimedwait_empty_set, { sigset_t s; sigemptyset(&s); struct timespec t = ts(0, 20000000); double st = now_ms(); SHOW("sigtimedwait", sigtimedwait(&s, NULL, &t)); printf("%s\n", timing(now_ms() - st, 20)); })
BOTH(hostile_pt_sigtimedwait_info_noaccess_pending, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); pthread_sigmask(SIG_BLOCK, &s, NULL); raise(SIGUSR2); struct timespec t = ts(0, 0); SHOWQ("sigtimedwait", sigtimedwait(&s, noaccess(), &t)); sigset_t p; sigpending(&p); printf("still pending=%d\n", sigismember(&p, SIGUSR2)); struct timespec z = ts(0, 0); sigtimedwait(&s, NULL, &z); })
BOTH(hostile_pt_sigtimedwait_kill_in_set, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGKILL); sigaddset(&s, SIGSTOP); struct timespec t = ts(0, 0); SHOWQ("sigtimedwait", sigtimedwait(&s, NULL, &t)); })
BOTH(hostile_pt_sigwaitinfo_pending_info_noaccess, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); pthread_sigmask(SIG_BLOCK, &s, NULL); raise(SIGUSR2); SHOWQ("sigwaitinfo", sigwaitinfo(&s, noaccess())); struct timespec z = ts(0, 0); sigtimedwait(&s, NULL, &z); })
BOTH(hostile_pt_sigwait_pending_sig_noaccess, { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR2); pthread_sigmask(SIG_BLOCK, &s, NULL); raise(SIGUSR2); printf("sigwait: %s\n", en(sigwait(&s, noaccess()))); struct timespec z = ts(0, 0); sigtimedwait(&s, NULL, &z); })
