/* Bad-input sweep, the socket family: socket/socketpair, connect, accept/accept4,
 * send/sendto/sendmsg/sendmmsg, recv/recvfrom/recvmsg/recvmmsg (and the fortified
 * __recv_chk/__recvfrom_chk), shutdown, setsockopt, and name resolution (getaddrinfo,
 * getnameinfo, gethostbyname*_r, gethostbyaddr_r) with bad fds, NULL and unmapped
 * (PROT_NONE) pointers, bad lengths, bad flags and sockets in the wrong state. Loopback
 * and numeric names only. */
#include "case.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

extern ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
extern ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                              struct sockaddr *addr, socklen_t *alen);

/* ---- helpers ---------------------------------------------------------------------- */

static char buf[65536];

/* A bound, listening loopback TCP socket; its address in *a. */
static int listener(struct sockaddr_in *a) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    listen(l, 16);
    socklen_t len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    if (a) *a = sa;
    return l;
}

/* A connected loopback TCP pair: c[0] client, c[1] accepted. */
static void tcp_pair(int c[2]) {
    struct sockaddr_in a;
    int l = listener(&a);
    c[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(c[0], (struct sockaddr *)&a, sizeof a);
    c[1] = accept(l, NULL, NULL);
    close(l);
}

/* A loopback address nothing listens on (a port bound but never listened). */
static struct sockaddr_in dead_addr(void) {
    static int keep = -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    keep = socket(AF_INET, SOCK_STREAM, 0);
    bind(keep, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(keep, (struct sockaddr *)&a, &len);
    return a;
}

/* A bound UDP socket on loopback and its address. */
static int udp_bound(struct sockaddr_in *a) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(u, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(u, (struct sockaddr *)&sa, &len);
    if (a) *a = sa;
    return u;
}

#define SHOWFD(what, expr)                                                           \
    do {                                                                             \
        errno = 0;                                                                   \
        int showfd_r_ = (expr);                                                      \
        int showfd_e_ = errno;                                                       \
        if (showfd_r_ >= 0) printf("%s: fd\n", what);                                \
        else printf("%s: ret=%d errno=%s\n", what, showfd_r_, en(showfd_e_));        \
    } while (0)

/* getaddrinfo-style result: the EAI_ name. */
static const char *eai(int r) {
    switch (r) {
    case 0: return "0";
    case EAI_BADFLAGS: return "EAI_BADFLAGS";
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    case EAI_OVERFLOW: return "EAI_OVERFLOW";
    default: return "other";
    }
}

static struct sockaddr_in lo_addr(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ---- the fd sweep ----------------------------------------------------------------- */

/* Six cases per call: fd -1, a closed fd, 1<<20, INT_MAX, a pipe, a regular file. */
#define FD_SWEEP(tag, expr)                                                          \
    CASE(hostile_net_##tag##_fd_neg) { int fd = -1; SHOW(#tag, expr); }             \
    CASE(hostile_net_##tag##_fd_closed) { int fd = closed_fd(); SHOW(#tag, expr); } \
    CASE(hostile_net_##tag##_fd_huge) { int fd = 1 << 20; SHOW(#tag, expr); }       \
    CASE(hostile_net_##tag##_fd_intmax) { int fd = INT_MAX; SHOW(#tag, expr); }     \
    CASE(hostile_net_##tag##_fd_pipe) {                                              \
        int p_[2];                                                                   \
        pipe(p_);                                                                    \
        (void)!write(p_[1], "abc", 3);                                               \
        int fd = p_[0];                                                              \
        SHOW(#tag, expr);                                                            \
    }                                                                                \
    CASE(hostile_net_##tag##_fd_file) {                                              \
        int fd = open("/etc/hostname", O_RDONLY);                                    \
        SHOW(#tag, expr);                                                            \
    }

static struct sockaddr_in any_lo;
static struct iovec iov1 = {buf, 16};
static struct msghdr msg1 = {.msg_iov = &iov1, .msg_iovlen = 1};
static struct mmsghdr mmsg1 = {.msg_hdr = {.msg_iov = &iov1, .msg_iovlen = 1}};

FD_SWEEP(connect, ({ any_lo = lo_addr(9); connect(fd, (struct sockaddr *)&any_lo, sizeof any_lo); }))
FD_SWEEP(accept, accept(fd, NULL, NULL))
FD_SWEEP(accept4, accept4(fd, NULL, NULL, SOCK_CLOEXEC))
FD_SWEEP(send, send(fd, "x", 1, MSG_NOSIGNAL))
FD_SWEEP(sendto, sendto(fd, "x", 1, MSG_NOSIGNAL, NULL, 0))
FD_SWEEP(sendmsg, sendmsg(fd, &msg1, MSG_NOSIGNAL))
FD_SWEEP(sendmmsg, sendmmsg(fd, &mmsg1, 1, MSG_NOSIGNAL))
FD_SWEEP(recv, recv(fd, buf, 16, 0))
FD_SWEEP(recvfrom, recvfrom(fd, buf, 16, 0, NULL, NULL))
FD_SWEEP(recvmsg, recvmsg(fd, &msg1, 0))
FD_SWEEP(recvmmsg, recvmmsg(fd, &mmsg1, 1, 0, NULL))
FD_SWEEP(recv_chk, __recv_chk(fd, buf, 16, sizeof buf, 0))
FD_SWEEP(recvfrom_chk, __recvfrom_chk(fd, buf, 16, sizeof buf, 0, NULL, NULL))
FD_SWEEP(shutdown, shutdown(fd, SHUT_RDWR))
FD_SWEEP(setsockopt, ({ int one_ = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one_, sizeof one_); }))
FD_SWEEP(setsockopt_rcvtimeo, ({ struct timeval tv_ = {1, 0}; setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv_, sizeof tv_); }))

/* ---- socket, socketpair ------------------------------------------------------------ */

CASE(hostile_net_socket_bad_domain) { SHOWFD("socket", socket((int)opaque(12345), SOCK_STREAM, 0)); }
CASE(hostile_net_socket_bad_type) { SHOWFD("socket", socket(AF_INET, (int)opaque(12345), 0)); }
CASE(hostile_net_socket_bad_flags) { SHOWFD("socket", socket(AF_INET, SOCK_STREAM | (int)opaque(0x40000000), 0)); }
CASE(hostile_net_socket_bad_protocol) { SHOWFD("socket", socket(AF_INET, SOCK_STREAM, (int)opaque(IPPROTO_UDP))); }
CASE(hostile_net_socket_negative_protocol) { SHOWFD("socket", socket(AF_INET, SOCK_DGRAM, (int)opaque(-1))); }
CASE(hostile_net_socketpair_inet) { int s[2]; SHOW("socketpair", socketpair(AF_INET, SOCK_STREAM, 0, s)); }
CASE(hostile_net_socketpair_null) { SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, NULLPTR)); }
CASE(hostile_net_socketpair_noaccess) { SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, noaccess())); }
CASE(hostile_net_socketpair_bad_type) { int s[2]; SHOW("socketpair", socketpair(AF_UNIX, (int)opaque(12345), 0, s)); }
CASE(hostile_net_socketpair_bad_flags) { int s[2]; SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM | (int)opaque(0x40000000), 0, s)); }
CASE(hostile_net_socketpair_bad_protocol) { int s[2]; SHOW("socketpair", socketpair(AF_UNIX, SOCK_STREAM, (int)opaque(7), s)); }

/* ---- connect ------------------------------------------------------------------------ */

CASE(hostile_net_connect_null_addr) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("connect", connect(s, NULLPTR, sizeof(struct sockaddr_in))); }
CASE(hostile_net_connect_noaccess_addr) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("connect", connect(s, noaccess(), sizeof(struct sockaddr_in))); }
CASE(hostile_net_connect_short_len) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(9); SHOW("connect", connect(s, (struct sockaddr *)&a, 4)); }
CASE(hostile_net_connect_zero_len) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(9); SHOW("connect", connect(s, (struct sockaddr *)&a, 0)); }
CASE(hostile_net_connect_huge_len) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(9); SHOW("connect", connect(s, (struct sockaddr *)&a, (socklen_t)opaque(1 << 20))); }
CASE(hostile_net_connect_negative_len) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(9); SHOW("connect", connect(s, (struct sockaddr *)&a, (socklen_t)opaque(-1))); }
CASE(hostile_net_connect_wrong_family) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(9); a.sin_family = AF_INET6; SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_connect_unix_to_missing_path) { int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un u = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/greenify-sock"}; SHOW("connect", connect(s, (struct sockaddr *)&u, sizeof u)); }
CASE(hostile_net_connect_unix_len_too_big) { int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un u = {.sun_family = AF_UNIX}; SHOW("connect", connect(s, (struct sockaddr *)&u, sizeof u + 10)); }
CASE(hostile_net_connect_refused) { struct sockaddr_in a = dead_addr(); int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a)); SHOW("connect again", connect(s, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_connect_refused_nonblock) { struct sockaddr_in a = dead_addr(); int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a)); msleep(50); int e = 0; socklen_t l = sizeof e; getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &l); printf("so_error=%s\n", en(e)); }
CASE(hostile_net_connect_twice_connected) { int c[2]; tcp_pair(c); struct sockaddr_in a = lo_addr(9); SHOW("connect", connect(c[0], (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_connect_listener) { struct sockaddr_in a; int l = listener(&a); SHOW("connect", connect(l, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_connect_af_unspec_disconnect_udp) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); struct sockaddr un = {.sa_family = AF_UNSPEC}; SHOW("disconnect", connect(c, &un, sizeof un)); SHOW("send", send(c, "x", 1, 0)); close(u); }
CASE(hostile_net_connect_udp_to_port_zero) { int c = socket(AF_INET, SOCK_DGRAM, 0); struct sockaddr_in a = lo_addr(0); SHOW("connect", connect(c, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_connect_after_shutdown) { int s = socket(AF_INET, SOCK_STREAM, 0); shutdown(s, SHUT_RDWR); struct sockaddr_in a = dead_addr(); SHOW("connect", connect(s, (struct sockaddr *)&a, sizeof a)); }

/* ---- accept ------------------------------------------------------------------------- */

CASE(hostile_net_accept_not_listening) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("accept", accept(s, NULL, NULL)); }
CASE(hostile_net_accept_udp) { int u = udp_bound(NULL); SHOW("accept", accept(u, NULL, NULL)); }
CASE(hostile_net_accept_connected) { int c[2]; tcp_pair(c); SHOW("accept", accept(c[0], NULL, NULL)); }
CASE(hostile_net_accept_unix_pair) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("accept", accept(s[0], NULL, NULL)); }
CASE(hostile_net_accept_addr_null_len_set) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); socklen_t len = sizeof a; SHOWFD("accept", accept(l, NULL, &len)); }
CASE(hostile_net_accept_len_null_addr_set) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); struct sockaddr_in peer; SHOWFD("accept", accept(l, (struct sockaddr *)&peer, NULL)); fcntl(l, F_SETFL, O_NONBLOCK); SHOWFD("accept nonblock after", accept4(l, NULL, NULL, SOCK_NONBLOCK)); }
CASE(hostile_net_accept_addr_noaccess) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); socklen_t len = sizeof a; SHOWFD("accept", accept(l, noaccess(), &len)); fcntl(l, F_SETFL, O_NONBLOCK); SHOWFD("accept nonblock after", accept4(l, NULL, NULL, SOCK_NONBLOCK)); }
CASE(hostile_net_accept_len_noaccess) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); struct sockaddr_in peer; SHOWFD("accept", accept(l, (struct sockaddr *)&peer, noaccess())); }
CASE(hostile_net_accept_negative_len) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); struct sockaddr_in peer; socklen_t len = (socklen_t)opaque(-1); SHOWFD("accept", accept(l, (struct sockaddr *)&peer, &len)); }
CASE(hostile_net_accept_zero_len) { struct sockaddr_in a; int l = listener(&a); int c = socket(AF_INET, SOCK_STREAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); struct sockaddr_in peer; socklen_t len = 0; SHOWFD("accept", accept(l, (struct sockaddr *)&peer, &len)); printf("len=%u\n", len); }
CASE(hostile_net_accept4_bad_flags) { struct sockaddr_in a; int l = listener(&a); SHOWFD("accept4", accept4(l, NULL, NULL, (int)opaque(0x1))); }
CASE(hostile_net_accept4_all_flags) { struct sockaddr_in a; int l = listener(&a); SHOWFD("accept4", accept4(l, NULL, NULL, (int)opaque(-1))); }
CASE(hostile_net_accept_nonblock_empty) { int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); struct sockaddr_in a = lo_addr(0); bind(l, (struct sockaddr *)&a, sizeof a); listen(l, 1); SHOW("accept", accept(l, NULL, NULL)); }
CASE(hostile_net_accept4_nonblock_flag_blocking_listener_empty) { int l = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = lo_addr(0); bind(l, (struct sockaddr *)&a, sizeof a); listen(l, 1); fcntl(l, F_SETFL, O_NONBLOCK); SHOW("accept4", accept4(l, NULL, NULL, SOCK_NONBLOCK)); }
CASE(hostile_net_accept_after_shutdown_listener) { struct sockaddr_in a; int l = listener(&a); shutdown(l, SHUT_RDWR); SHOW("accept", accept(l, NULL, NULL)); }

/* ---- send family -------------------------------------------------------------------- */

CASE(hostile_net_send_null) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("send", send(s[0], NULLPTR, 8, 0)); }
CASE(hostile_net_send_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("send", send(s[0], noaccess(), 8, 0)); }
CASE(hostile_net_send_null_zero) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("send", send(s[0], NULLPTR, 0, 0)); }
CASE(hostile_net_send_sizemax) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("send", send(s[0], buf, (size_t)opaque(-1), 0)); }
CASE(hostile_net_send_bad_flags) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("send", send(s[0], "x", 1, (int)opaque(0x7fff0000))); }
CASE(hostile_net_send_msg_oob_unix) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); SHOW("send", send(s[0], "x", 1, MSG_OOB)); }
CASE(hostile_net_send_unconnected_tcp_nosignal) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("send", send(s, "x", 1, MSG_NOSIGNAL)); }
CASE(hostile_net_send_unconnected_tcp_sigpipe) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("send", send(s, "x", 1, 0)); }
CASE(hostile_net_send_unconnected_udp) { int u = socket(AF_INET, SOCK_DGRAM, 0); SHOW("send", send(u, "x", 1, 0)); }
CASE(hostile_net_send_listener) { struct sockaddr_in a; int l = listener(&a); SHOW("send", send(l, "x", 1, MSG_NOSIGNAL)); }
CASE(hostile_net_send_shut_wr_nosignal) { int c[2]; tcp_pair(c); shutdown(c[0], SHUT_WR); SHOW("send", send(c[0], "x", 1, MSG_NOSIGNAL)); }
CASE(hostile_net_send_to_reset_peer) { int c[2]; tcp_pair(c); struct linger lg = {1, 0}; setsockopt(c[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg); close(c[1]); msleep(50); SHOW("send", send(c[0], "x", 1, MSG_NOSIGNAL)); SHOW("send again", send(c[0], "x", 1, MSG_NOSIGNAL)); }
CASE(hostile_net_send_udp_too_big) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); connect(c, (struct sockaddr *)&a, sizeof a); static char big[70000]; SHOW("send", send(c, big, sizeof big, 0)); close(u); }
CASE(hostile_net_send_unix_dgram_too_big) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); int small = 4096; setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small); static char big[1 << 20]; SHOW("send", send(s[0], big, sizeof big, 0)); }
CASE(hostile_net_sendto_null_addr_len) { int u = socket(AF_INET, SOCK_DGRAM, 0); SHOW("sendto", sendto(u, "x", 1, 0, NULLPTR, sizeof(struct sockaddr_in))); }
CASE(hostile_net_sendto_noaccess_addr) { int u = socket(AF_INET, SOCK_DGRAM, 0); SHOW("sendto", sendto(u, "x", 1, 0, noaccess(), sizeof(struct sockaddr_in))); }
CASE(hostile_net_sendto_short_len) { int u = socket(AF_INET, SOCK_DGRAM, 0); struct sockaddr_in a = lo_addr(9); SHOW("sendto", sendto(u, "x", 1, 0, (struct sockaddr *)&a, 3)); }
CASE(hostile_net_sendto_wrong_family) { int u = socket(AF_INET, SOCK_DGRAM, 0); struct sockaddr_in a = lo_addr(9); a.sin_family = AF_UNIX; SHOW("sendto", sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_sendto_addr_on_connected_tcp) { int c[2]; tcp_pair(c); struct sockaddr_in a = lo_addr(9); SHOW("sendto", sendto(c[0], "x", 1, 0, (struct sockaddr *)&a, sizeof a)); SHOW("peer", recv(c[1], buf, 16, MSG_DONTWAIT)); }
CASE(hostile_net_sendto_udp_port_zero) { int u = socket(AF_INET, SOCK_DGRAM, 0); struct sockaddr_in a = lo_addr(0); SHOW("sendto", sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof a)); }
CASE(hostile_net_sendmsg_null) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("sendmsg", sendmsg(s[0], NULLPTR, 0)); }
CASE(hostile_net_sendmsg_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("sendmsg", sendmsg(s[0], noaccess(), 0)); }
CASE(hostile_net_sendmsg_iov_null) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct msghdr m = {.msg_iov = NULLPTR, .msg_iovlen = 1}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_iov_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct msghdr m = {.msg_iov = noaccess(), .msg_iovlen = 1}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_base_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct iovec v = {noaccess(), 8}; struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_iovlen_1025) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); static struct iovec v[1025]; for (int i = 0; i < 1025; i++) { v[i].iov_base = buf; v[i].iov_len = 1; } struct msghdr m = {.msg_iov = v, .msg_iovlen = 1025}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_iovlen_huge) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct msghdr m = {.msg_iov = &iov1, .msg_iovlen = (size_t)opaque(-1)}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_iovlen_zero) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct msghdr m = {.msg_iov = NULLPTR, .msg_iovlen = 0}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_control_garbage) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); char ctl[64]; memset(ctl, 0xff, sizeof ctl); struct msghdr m = {.msg_iov = &iov1, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_control_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct msghdr m = {.msg_iov = &iov1, .msg_iovlen = 1, .msg_control = noaccess(), .msg_controllen = 64}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_scm_rights_bad_fd) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } u; struct msghdr m = {.msg_iov = &iov1, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b}; struct cmsghdr *c = CMSG_FIRSTHDR(&m); c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int)); int bad = 12345; memcpy(CMSG_DATA(c), &bad, sizeof bad); SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmsg_name_on_stream) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct sockaddr_in a = lo_addr(9); struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov1, .msg_iovlen = 1}; SHOW("sendmsg", sendmsg(s[0], &m, 0)); }
CASE(hostile_net_sendmmsg_null) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); SHOW("sendmmsg", sendmmsg(s[0], NULLPTR, 1, 0)); }
CASE(hostile_net_sendmmsg_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); SHOW("sendmmsg", sendmmsg(s[0], noaccess(), 1, 0)); }
CASE(hostile_net_sendmmsg_vlen_zero) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); SHOW("sendmmsg", sendmmsg(s[0], &mmsg1, 0, 0)); }
CASE(hostile_net_sendmmsg_vlen_huge) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); static struct mmsghdr v[2000]; for (int i = 0; i < 2000; i++) { v[i].msg_hdr.msg_iov = &iov1; v[i].msg_hdr.msg_iovlen = 1; } int big = 1 << 22; setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big); SHOW("sendmmsg", sendmmsg(s[0], v, 2000, MSG_DONTWAIT)); }
CASE(hostile_net_sendmmsg_second_bad) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct iovec bad = {noaccess(), 8}; struct mmsghdr v[2] = {{.msg_hdr = {.msg_iov = &iov1, .msg_iovlen = 1}}, {.msg_hdr = {.msg_iov = &bad, .msg_iovlen = 1}}}; SHOW("sendmmsg", sendmmsg(s[0], v, 2, 0)); printf("len0=%u\n", v[0].msg_len); }
CASE(hostile_net_sendmmsg_first_bad) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct iovec bad = {noaccess(), 8}; struct mmsghdr v[2] = {{.msg_hdr = {.msg_iov = &bad, .msg_iovlen = 1}}, {.msg_hdr = {.msg_iov = &iov1, .msg_iovlen = 1}}}; SHOW("sendmmsg", sendmmsg(s[0], v, 2, 0)); }
CASE(hostile_net_sendmmsg_unconnected_udp) { int u = socket(AF_INET, SOCK_DGRAM, 0); SHOW("sendmmsg", sendmmsg(u, &mmsg1, 1, 0)); }

/* ---- recv family -------------------------------------------------------------------- */

/* Some kernels wait for data on a zero-length receive from an empty stream (6.18 does):
 * bounded, such a wait ends in EAGAIN after 50 ms. */
static void rcvtimeo_50ms(int fd) { struct timeval t = {0, 50000}; setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t); }
static void pair_with_data(int s[2]) { socketpair(AF_UNIX, SOCK_STREAM, 0, s); (void)!write(s[1], "hello world!", 12); }

CASE(hostile_net_recv_null) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], NULLPTR, 12, 0)); SHOW("recv again", recv(s[0], buf, 12, 0)); }
CASE(hostile_net_recv_noaccess) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], noaccess(), 12, 0)); }
CASE(hostile_net_recv_null_zero) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], NULLPTR, 0, 0)); }
CASE(hostile_net_recv_zero_empty) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); rcvtimeo_50ms(s[0]); SHOW("recv", recv(s[0], buf, 0, 0)); }
CASE(hostile_net_recv_zero_empty_tcp) { int c[2]; tcp_pair(c); rcvtimeo_50ms(c[0]); SHOW("recv", recv(c[0], buf, 0, 0)); }
CASE(hostile_net_recv_zero_peek_empty_tcp) { int c[2]; tcp_pair(c); rcvtimeo_50ms(c[0]); SHOW("recv", recv(c[0], buf, 0, MSG_PEEK)); }
CASE(hostile_net_recv_zero_waitall_empty_tcp) { int c[2]; tcp_pair(c); rcvtimeo_50ms(c[0]); SHOW("recv", recv(c[0], buf, 0, MSG_WAITALL)); }
CASE(hostile_net_recv_sizemax) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], buf, (size_t)opaque(-1), 0)); }
CASE(hostile_net_recv_bad_flags) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], buf, 12, (int)opaque(0x7fff0000))); }
CASE(hostile_net_recv_oob_unix) { int s[2]; pair_with_data(s); SHOW("recv", recv(s[0], buf, 12, MSG_OOB)); }
CASE(hostile_net_recv_oob_tcp_none) { int c[2]; tcp_pair(c); SHOW("recv", recv(c[0], buf, 12, MSG_OOB)); }
CASE(hostile_net_recv_errqueue_empty) { int u = udp_bound(NULL); SHOW("recv", recv(u, buf, 12, MSG_ERRQUEUE)); }
CASE(hostile_net_recv_peek_trunc) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "hello", 5, 0); SHOW("recv", recv(s[0], buf, 2, MSG_PEEK | MSG_TRUNC)); SHOW("recv", recv(s[0], buf, 2, MSG_TRUNC)); }
CASE(hostile_net_recv_listener) { struct sockaddr_in a; int l = listener(&a); SHOW("recv", recv(l, buf, 12, 0)); }
CASE(hostile_net_recv_unconnected_tcp) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("recv", recv(s, buf, 12, 0)); }
CASE(hostile_net_recv_reset_peer) { int c[2]; tcp_pair(c); (void)!send(c[0], "abc", 3, 0); msleep(20); struct linger lg = {1, 0}; setsockopt(c[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg); close(c[1]); msleep(50); SHOW("recv", recv(c[0], buf, 12, 0)); SHOW("recv again", recv(c[0], buf, 12, 0)); }
CASE(hostile_net_recv_shut_rd) { int c[2]; tcp_pair(c); shutdown(c[0], SHUT_RD); SHOW("recv", recv(c[0], buf, 12, 0)); }
CASE(hostile_net_recvfrom_addr_noaccess) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a); socklen_t len = sizeof a; SHOW("recvfrom", recvfrom(u, buf, 16, 0, noaccess(), &len)); SHOW("recv after", recv(u, buf, 16, MSG_DONTWAIT)); }
CASE(hostile_net_recvfrom_len_noaccess) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a); struct sockaddr_in from; SHOW("recvfrom", recvfrom(u, buf, 16, 0, (struct sockaddr *)&from, noaccess())); }
CASE(hostile_net_recvfrom_addr_null_len_set) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a); socklen_t len = sizeof a; SHOW("recvfrom", recvfrom(u, buf, 16, 0, NULL, &len)); }
CASE(hostile_net_recvfrom_negative_len) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a); struct sockaddr_in from; socklen_t len = (socklen_t)opaque(-1); SHOW("recvfrom", recvfrom(u, buf, 16, 0, (struct sockaddr *)&from, &len)); }
CASE(hostile_net_recvfrom_zero_len_addr) { struct sockaddr_in a; int u = udp_bound(&a); int c = socket(AF_INET, SOCK_DGRAM, 0); sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a); struct sockaddr_in from; socklen_t len = 0; SHOW("recvfrom", recvfrom(u, buf, 16, 0, (struct sockaddr *)&from, &len)); printf("len=%u\n", len); }
CASE(hostile_net_recvmsg_null) { int s[2]; pair_with_data(s); SHOW("recvmsg", recvmsg(s[0], NULLPTR, 0)); }
CASE(hostile_net_recvmsg_noaccess) { int s[2]; pair_with_data(s); SHOW("recvmsg", recvmsg(s[0], noaccess(), 0)); }
CASE(hostile_net_recvmsg_iov_null) { int s[2]; pair_with_data(s); struct msghdr m = {.msg_iov = NULLPTR, .msg_iovlen = 1}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_base_noaccess) { int s[2]; pair_with_data(s); struct iovec v = {noaccess(), 12}; struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
/* recvmsg asking for no byte (no iovec, or iovecs of length 0) is a zero-length receive:
 * on TCP its timeout ends it with 0, as recv's does. */
CASE(hostile_net_recvmsg_no_iov_empty_tcp) { int c[2]; tcp_pair(c); rcvtimeo_50ms(c[0]); struct msghdr m = {0}; SHOW("recvmsg", recvmsg(c[0], &m, 0)); }
CASE(hostile_net_recvmsg_zero_iovs_empty_tcp) { int c[2]; tcp_pair(c); rcvtimeo_50ms(c[0]); struct iovec v[2] = {{buf, 0}, {buf, 0}}; struct msghdr m = {.msg_iov = v, .msg_iovlen = 2}; SHOW("recvmsg", recvmsg(c[0], &m, 0)); }
CASE(hostile_net_recvmsg_zero_iov_empty_unix) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); rcvtimeo_50ms(s[0]); struct iovec v = {buf, 0}; struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_iovlen_1025) { int s[2]; pair_with_data(s); static struct iovec v[1025]; for (int i = 0; i < 1025; i++) { v[i].iov_base = buf + i; v[i].iov_len = 1; } struct msghdr m = {.msg_iov = v, .msg_iovlen = 1025}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_iovlen_zero_empty) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); rcvtimeo_50ms(s[0]); struct msghdr m = {.msg_iov = NULLPTR, .msg_iovlen = 0}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_control_noaccess) { int s[2]; pair_with_data(s); struct msghdr m = {.msg_iov = &iov1, .msg_iovlen = 1, .msg_control = noaccess(), .msg_controllen = 64}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_name_noaccess_dgram) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); struct msghdr m = {.msg_name = noaccess(), .msg_namelen = 16, .msg_iov = &iov1, .msg_iovlen = 1}; SHOW("recvmsg", recvmsg(s[0], &m, 0)); }
CASE(hostile_net_recvmsg_bad_flags) { int s[2]; pair_with_data(s); SHOW("recvmsg", recvmsg(s[0], &msg1, (int)opaque(0x7fff0000))); }
CASE(hostile_net_recvmmsg_null) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); SHOW("recvmmsg", recvmmsg(s[0], NULLPTR, 1, 0, NULL)); }
CASE(hostile_net_recvmmsg_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); SHOW("recvmmsg", recvmmsg(s[0], noaccess(), 1, 0, NULL)); }
CASE(hostile_net_recvmmsg_vlen_zero) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 0, 0, NULL)); }
CASE(hostile_net_recvmmsg_timeout_negative) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct timespec t = {-1, 0}; SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, &t)); }
CASE(hostile_net_recvmmsg_timeout_nsec_big) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct timespec t = {0, 1000000000}; SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, &t)); }
CASE(hostile_net_recvmmsg_timeout_nsec_negative) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct timespec t = {0, -1}; SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, &t)); }
CASE(hostile_net_recvmmsg_timeout_noaccess) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, noaccess())); }
CASE(hostile_net_recvmmsg_timeout_noaccess_with_data) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, noaccess())); }
CASE(hostile_net_recvmmsg_bad_timeout_with_data) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "x", 1, 0); struct timespec t = {0, 2000000000}; SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, 0, &t)); }
CASE(hostile_net_recvmmsg_zero_timeout_empty) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); struct timespec t = {0, 0}; SHOW("recvmmsg", recvmmsg(s[0], &mmsg1, 1, MSG_DONTWAIT, &t)); }
CASE(hostile_net_recvmmsg_second_bad) { int s[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, s); (void)!send(s[1], "a", 1, 0); (void)!send(s[1], "b", 1, 0); struct iovec bad = {noaccess(), 8}; struct mmsghdr v[2] = {{.msg_hdr = {.msg_iov = &iov1, .msg_iovlen = 1}}, {.msg_hdr = {.msg_iov = &bad, .msg_iovlen = 1}}}; SHOW("recvmmsg", recvmmsg(s[0], v, 2, 0, NULL)); printf("len0=%u\n", v[0].msg_len); }
CASE(hostile_net_recv_chk_overflow) { int s[2]; pair_with_data(s); SHOW("__recv_chk", __recv_chk(s[0], buf, 12, 4, 0)); }
CASE(hostile_net_recvfrom_chk_overflow) { int s[2]; pair_with_data(s); SHOW("__recvfrom_chk", __recvfrom_chk(s[0], buf, 12, 4, 0, NULL, NULL)); }
CASE(hostile_net_recv_chk_null) { int s[2]; pair_with_data(s); SHOW("__recv_chk", __recv_chk(s[0], NULLPTR, 12, 12, 0)); }

/* ---- shutdown, setsockopt ------------------------------------------------------------ */

CASE(hostile_net_shutdown_bad_how) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); SHOW("shutdown", shutdown(s[0], (int)opaque(7))); SHOW("shutdown", shutdown(s[0], (int)opaque(-1))); }
CASE(hostile_net_shutdown_unconnected_tcp) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("shutdown", shutdown(s, SHUT_RDWR)); }
CASE(hostile_net_shutdown_listener) { struct sockaddr_in a; int l = listener(&a); SHOW("shutdown", shutdown(l, SHUT_RDWR)); SHOW("again", shutdown(l, SHUT_RDWR)); }
CASE(hostile_net_shutdown_twice) { int c[2]; tcp_pair(c); SHOW("shutdown", shutdown(c[0], SHUT_WR)); SHOW("again", shutdown(c[0], SHUT_WR)); SHOW("rd", shutdown(c[0], SHUT_RD)); }
CASE(hostile_net_setsockopt_null) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, NULLPTR, sizeof(int))); }
CASE(hostile_net_setsockopt_noaccess) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, noaccess(), sizeof(int))); }
CASE(hostile_net_setsockopt_short_len) { int s = socket(AF_INET, SOCK_STREAM, 0); int one = 1; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 1)); }
CASE(hostile_net_setsockopt_bad_level) { int s = socket(AF_INET, SOCK_STREAM, 0); int one = 1; SHOW("setsockopt", setsockopt(s, (int)opaque(12345), 1, &one, sizeof one)); }
CASE(hostile_net_setsockopt_bad_name) { int s = socket(AF_INET, SOCK_STREAM, 0); int one = 1; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, (int)opaque(12345), &one, sizeof one)); }
CASE(hostile_net_setsockopt_rcvtimeo_null) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, NULLPTR, sizeof(struct timeval))); }
CASE(hostile_net_setsockopt_rcvtimeo_noaccess) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, noaccess(), sizeof(struct timeval))); }
CASE(hostile_net_setsockopt_rcvtimeo_short) { int s = socket(AF_INET, SOCK_STREAM, 0); struct timeval tv = {1, 0}; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, 4)); }
CASE(hostile_net_setsockopt_rcvtimeo_negative) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct timeval tv = {-1, 0}; SHOW("setsockopt", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)); struct timeval got; socklen_t l = sizeof got; getsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &got, &l); printf("got=%ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec); (void)!write(s[1], "x", 1); SHOW("recv", recv(s[0], buf, 1, 0)); }
CASE(hostile_net_setsockopt_rcvtimeo_usec_big) { int s = socket(AF_INET, SOCK_STREAM, 0); struct timeval tv = {0, 1000000}; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)); }
CASE(hostile_net_setsockopt_rcvtimeo_usec_negative) { int s = socket(AF_INET, SOCK_STREAM, 0); struct timeval tv = {1, -1}; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)); }
CASE(hostile_net_setsockopt_sndtimeo_usec_big) { int s = socket(AF_INET, SOCK_STREAM, 0); struct timeval tv = {0, 5000000}; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv)); }
CASE(hostile_net_setsockopt_rcvtimeo_huge) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct timeval tv = {LONG_MAX, 0}; SHOW("setsockopt", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)); (void)!write(s[1], "x", 1); SHOW("recv", recv(s[0], buf, 1, 0)); }
CASE(hostile_net_setsockopt_rcvtimeo_tiny_timeout) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); struct timeval tv = {0, 1}; SHOW("setsockopt", setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)); SHOW("recv", recv(s[0], buf, 1, 0)); }
CASE(hostile_net_setsockopt_linger_short) { int s = socket(AF_INET, SOCK_STREAM, 0); int one = 1; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_LINGER, &one, sizeof one)); }
CASE(hostile_net_setsockopt_linger_noaccess) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_LINGER, noaccess(), sizeof(struct linger))); }
CASE(hostile_net_setsockopt_rcvlowat_negative) { int s = socket(AF_INET, SOCK_STREAM, 0); int v = -5; SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v)); }
CASE(hostile_net_setsockopt_nodelay_on_unix) { int s[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, s); int one = 1; SHOW("setsockopt", setsockopt(s[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)); }
CASE(hostile_net_setsockopt_zero_len_null) { int s = socket(AF_INET, SOCK_STREAM, 0); SHOW("setsockopt", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, NULLPTR, 0)); }

/* ---- name resolution ----------------------------------------------------------------- */

CASE(hostile_net_gai_both_null) { struct addrinfo *r = NULL; printf("gai: %s\n", eai(getaddrinfo(NULL, NULL, NULL, &r))); }
CASE(hostile_net_gai_bad_flags) { struct addrinfo h = {.ai_flags = (int)opaque(0x7fff0000)}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("127.0.0.1", "80", &h, &r))); }
CASE(hostile_net_gai_bad_family) { struct addrinfo h = {.ai_family = 12345}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("127.0.0.1", "80", &h, &r))); }
CASE(hostile_net_gai_bad_socktype) { struct addrinfo h = {.ai_socktype = 12345}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("127.0.0.1", "80", &h, &r))); }
CASE(hostile_net_gai_bad_service) { struct addrinfo h = {.ai_flags = AI_NUMERICSERV}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("127.0.0.1", "http", &h, &r))); }
CASE(hostile_net_gai_numerichost_name) { struct addrinfo h = {.ai_flags = AI_NUMERICHOST}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("not-a-number", "80", &h, &r))); }
CASE(hostile_net_gai_canonname_no_node) { struct addrinfo h = {.ai_flags = AI_CANONNAME}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo(NULL, "80", &h, &r))); }
CASE(hostile_net_gai_empty_node) { struct addrinfo h = {.ai_flags = AI_NUMERICHOST}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("", "80", &h, &r))); }
CASE(hostile_net_gai_huge_port) { struct addrinfo h = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("127.0.0.1", "99999999", &h, &r))); }
CASE(hostile_net_gai_v6_on_v4_family) { struct addrinfo h = {.ai_family = AF_INET, .ai_flags = AI_NUMERICHOST}, *r = NULL; printf("gai: %s\n", eai(getaddrinfo("::1", "80", &h, &r))); }
CASE(hostile_net_gai_ok_numeric) { struct addrinfo h = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *r = NULL; int e = getaddrinfo("127.0.0.1", "8080", &h, &r); printf("gai: %s port=%d\n", eai(e), e ? 0 : ntohs(((struct sockaddr_in *)r->ai_addr)->sin_port)); if (!e) freeaddrinfo(r); }
CASE(hostile_net_gni_bad_len) { struct sockaddr_in a = lo_addr(80); char h[64], s[16]; printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, 3, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV))); }
CASE(hostile_net_gni_bad_family) { struct sockaddr_in a = lo_addr(80); a.sin_family = 12345; char h[64], s[16]; printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, sizeof a, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV))); }
CASE(hostile_net_gni_both_null) { struct sockaddr_in a = lo_addr(80); printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, sizeof a, NULL, 0, NULL, 0, NI_NUMERICHOST))); }
CASE(hostile_net_gni_small_host) { struct sockaddr_in a = lo_addr(80); char h[4], s[16]; printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, sizeof a, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV))); }
CASE(hostile_net_gni_small_serv) { struct sockaddr_in a = lo_addr(8080); char h[64], s[2]; printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, sizeof a, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV))); }
CASE(hostile_net_gni_bad_flags) { struct sockaddr_in a = lo_addr(80); char h[64], s[16]; printf("gni: %s\n", eai(getnameinfo((struct sockaddr *)&a, sizeof a, h, sizeof h, s, sizeof s, (int)opaque(0x7fff0000)))); }
CASE(hostile_net_gni_ok_numeric) { struct sockaddr_in a = lo_addr(8080); char h[64], s[16]; int e = getnameinfo((struct sockaddr *)&a, sizeof a, h, sizeof h, s, sizeof s, NI_NUMERICHOST | NI_NUMERICSERV); printf("gni: %s %s %s\n", eai(e), e ? "" : h, e ? "" : s); }
CASE(hostile_net_ghbn_r_small_buffer) { struct hostent he, *res = NULL; char b[8]; int herr = 0; int r = gethostbyname_r("127.0.0.1", &he, b, sizeof b, &res, &herr); printf("gethostbyname_r: %s res=%s\n", en(r), res ? "set" : "NULL"); }
CASE(hostile_net_ghbn_r_numeric) { struct hostent he, *res = NULL; char b[1024]; int herr = 0; int r = gethostbyname_r("127.0.0.1", &he, b, sizeof b, &res, &herr); printf("gethostbyname_r: %s res=%s len=%d\n", en(r), res ? "set" : "NULL", res ? res->h_length : 0); }
CASE(hostile_net_ghbn2_r_bad_family) { struct hostent he, *res = NULL; char b[1024]; int herr = 0; int r = gethostbyname2_r("127.0.0.1", 12345, &he, b, sizeof b, &res, &herr); printf("gethostbyname2_r: %s res=%s herr=%d\n", en(r), res ? "set" : "NULL", herr); }
CASE(hostile_net_ghbn2_r_small_buffer) { struct hostent he, *res = NULL; char b[4]; int herr = 0; int r = gethostbyname2_r("127.0.0.1", AF_INET, &he, b, sizeof b, &res, &herr); printf("gethostbyname2_r: %s res=%s\n", en(r), res ? "set" : "NULL"); }
CASE(hostile_net_ghba_r_bad_len) { struct in_addr ia = {htonl(INADDR_LOOPBACK)}; struct hostent he, *res = NULL; char b[1024]; int herr = 0; int r = gethostbyaddr_r(&ia, 2, AF_INET, &he, b, sizeof b, &res, &herr); printf("gethostbyaddr_r: %s res=%s herr=%d\n", en(r), res ? "set" : "NULL", herr); }
CASE(hostile_net_ghba_r_bad_family) { struct in_addr ia = {htonl(INADDR_LOOPBACK)}; struct hostent he, *res = NULL; char b[1024]; int herr = 0; int r = gethostbyaddr_r(&ia, sizeof ia, 12345, &he, b, sizeof b, &res, &herr); printf("gethostbyaddr_r: %s res=%s herr=%d\n", en(r), res ? "set" : "NULL", herr); }
CASE(hostile_net_ghba_r_small_buffer) { struct in_addr ia = {htonl(INADDR_LOOPBACK)}; struct hostent he, *res = NULL; char b[4]; int herr = 0; int r = gethostbyaddr_r(&ia, sizeof ia, AF_INET, &he, b, sizeof b, &res, &herr); printf("gethostbyaddr_r: %s res=%s\n", en(r), res ? "set" : "NULL"); }
