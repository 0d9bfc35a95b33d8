//! Calls that block in the kernel with nothing to wait on, run on a helper OS thread
//! while the green thread parks (runtime/offload.rs): name resolution, file locks,
//! fsync, and opening a FIFO (which waits for the other end).

use super::{enter, Green};
use crate::real;
use crate::runtime::offload;
use libc::{addrinfo, c_char, c_int, hostent, size_t, sockaddr, socklen_t};

extern "C" {
    fn inet_pton(af: c_int, src: *const c_char, dst: *mut libc::c_void) -> c_int;
}

/// A raw pointer that the parked caller keeps valid while a helper uses it.
#[derive(Clone, Copy)]
struct Lent<T>(T);
// SAFETY: the green thread that lends it is parked until the helper is done with it.
unsafe impl<T> Send for Lent<T> {}

/// Runs `call` on a helper when green, right here otherwise.
fn off<R>(green: &Option<Green>, call: impl FnOnce() -> R) -> R {
    match green {
        Some(_) => offload::run(call),
        None => call(),
    }
}

/// An address literal (or no name at all) needs no lookup: resolve it right here.
fn is_numeric(node: *const c_char, hints: *const addrinfo) -> bool {
    if node.is_null() {
        return true;
    }
    // SAFETY: NULL or the program's hints.
    if !hints.is_null() && unsafe { (*hints).ai_flags } & libc::AI_NUMERICHOST != 0 {
        return true;
    }
    let mut buf = [0u8; 16];
    // SAFETY: a NUL-terminated name; inet_pton writes at most 16 bytes.
    unsafe {
        inet_pton(libc::AF_INET, node, buf.as_mut_ptr().cast()) == 1
            || inet_pton(libc::AF_INET6, node, buf.as_mut_ptr().cast()) == 1
    }
}

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let green = enter().filter(|_| !is_numeric(node, hints));
    let args = Lent((node, service, hints, res));
    off(&green, move || {
        let (node, service, hints, res) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::getaddrinfo(node, service, hints, res) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn getnameinfo(
    sa: *const sockaddr,
    salen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let numeric = flags & libc::NI_NUMERICHOST != 0 || host.is_null();
    let green = enter().filter(|_| !numeric);
    let args = Lent((sa, host, serv));
    off(&green, move || {
        let (sa, host, serv) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::getnameinfo(sa, salen, host, hostlen, serv, servlen, flags) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let green = enter();
    let args = Lent((name, ret, buf, result, h_errnop));
    off(&green, move || {
        let (name, ret, buf, result, h_errnop) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let green = enter();
    let args = Lent((name, ret, buf, result, h_errnop));
    off(&green, move || {
        let (name, ret, buf, result, h_errnop) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn gethostbyaddr_r(
    addr: *const libc::c_void,
    len: socklen_t,
    ty: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let green = enter();
    let args = Lent((addr, ret, buf, result, h_errnop));
    off(&green, move || {
        let (addr, ret, buf, result, h_errnop) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::gethostbyaddr_r(addr, len, ty, ret, buf, buflen, result, h_errnop) }
    })
}

/// Runs a call that reports failure through errno on a helper, carrying errno back.
fn off_errno(green: &Option<Green>, call: impl FnOnce() -> c_int) -> c_int {
    let (result, error) = off(green, || {
        let r = call();
        (r, super::errno())
    });
    if result < 0 {
        super::set_errno(error);
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn flock(fd: c_int, op: c_int) -> c_int {
    let green = enter().filter(|_| op & libc::LOCK_NB == 0);
    // SAFETY: forwarded.
    off_errno(&green, || unsafe { real::flock(fd, op) })
}

#[no_mangle]
pub unsafe extern "C" fn lockf(fd: c_int, cmd: c_int, len: libc::off_t) -> c_int {
    let green = enter().filter(|_| cmd == libc::F_LOCK);
    // SAFETY: forwarded.
    off_errno(&green, || unsafe { real::lockf(fd, cmd, len) })
}

#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let green = enter();
    // SAFETY: forwarded.
    off_errno(&green, || unsafe { real::fsync(fd) })
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let green = enter();
    // SAFETY: forwarded.
    off_errno(&green, || unsafe { real::fdatasync(fd) })
}

/// fcntl(F_SETLKW / F_OFD_SETLKW), from the fcntl hook.
pub fn waiting_lock(green: &Option<Green>, fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwarded (the flock struct stays valid while the caller waits).
    off_errno(green, || unsafe { real::fcntl(fd, cmd, arg) })
}

/// What a look at `path` before opening it found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BeforeOpen {
    /// Not looked at: the open cannot wait (O_NONBLOCK, O_RDWR) or there is no path.
    NotLooked,
    /// A FIFO: the open waits for the other end.
    WaitingFifo,
    /// A regular file, directory or block device: no call on it ever waits in the poll
    /// sense, so the fd needs no classifying later.
    NeverWaits,
    /// Anything else, or nothing there (the open says why).
    Other,
}

/// Looks at `path` before it is opened with `flags`: an open of a FIFO without
/// O_NONBLOCK waits for the other end, so it must run on a helper.
pub fn before_open(dirfd: c_int, path: *const c_char, flags: c_int) -> BeforeOpen {
    if flags & libc::O_NONBLOCK != 0 || flags & libc::O_ACCMODE == libc::O_RDWR || path.is_null() {
        return BeforeOpen::NotLooked;
    }
    // SAFETY: an all-zero stat is a valid value to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the program's NUL-terminated path (fstatat is not a hook).
    if unsafe { libc::fstatat(dirfd, path, &mut st, 0) } != 0 {
        return BeforeOpen::Other;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => BeforeOpen::WaitingFifo,
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK => BeforeOpen::NeverWaits,
        _ => BeforeOpen::Other,
    }
}

/// An open that waits for a FIFO's other end, on a helper.
pub fn open_fifo(green: &Option<Green>, call: impl FnOnce() -> c_int) -> c_int {
    off_errno(green, call)
}
