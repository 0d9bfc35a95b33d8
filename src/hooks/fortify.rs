//! The `_FORTIFY_SOURCE` entry points. glibc's own versions check the buffer size and
//! then jump to internal functions no hook sees, so we check the size the same way and
//! call our hook instead. A failed check ends the program through glibc's __chk_fail,
//! with its usual "buffer overflow detected" message.

use super::{io, net, poll};
use crate::real;
use libc::{
    c_int, c_long, c_void, nfds_t, off_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t,
    timespec,
};

fn check(needed: usize, available: usize) {
    if needed > available {
        // SAFETY: __chk_fail takes no arguments and does not return.
        unsafe { real::__chk_fail() };
    }
}

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    check(n, buflen);
    // SAFETY: forwarded after the size check.
    unsafe { io::read(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    check(n, buflen);
    // SAFETY: forwarded after the size check.
    unsafe { net::recv(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    check(n, buflen);
    // SAFETY: forwarded after the size check.
    unsafe { net::recvfrom(fd, buf, n, flags, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    offset: off_t,
    buflen: size_t,
) -> ssize_t {
    check(n, buflen);
    // SAFETY: forwarded after the size check (pread never waits on readiness).
    unsafe { real::pread(fd, buf, n, offset) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread64_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    offset: off_t,
    buflen: size_t,
) -> ssize_t {
    check(n, buflen);
    // SAFETY: forwarded after the size check.
    unsafe { real::pread64(fd, buf, n, offset) }
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    check(n as usize, fdslen / std::mem::size_of::<pollfd>());
    // SAFETY: forwarded after the size check.
    unsafe { poll::poll(fds, n, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: *const timespec,
    mask: *const sigset_t,
    fdslen: size_t,
) -> c_int {
    check(n as usize, fdslen / std::mem::size_of::<pollfd>());
    // SAFETY: forwarded after the size check.
    unsafe { poll::ppoll(fds, n, timeout, mask) }
}

#[no_mangle]
pub unsafe extern "C" fn __fdelt_chk(fd: c_long) -> c_long {
    // Used by FD_SET and friends; it never blocks, so libc's answer stands.
    // SAFETY: forwarded.
    unsafe { real::__fdelt_chk(fd) }
}
