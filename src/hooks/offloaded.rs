//! Calls that block in the kernel with nothing to wait on, run on a helper OS thread
//! while the green thread parks (runtime/offload.rs): name resolution, NSS lookups (users,
//! groups, services: their modules may ask a network service), resolver queries, file
//! locks, fsync, and opening a FIFO (which waits for the other end).

use super::{enter, Green};
use crate::real;
use crate::runtime::offload;
use libc::{addrinfo, c_char, c_int, hostent, size_t, sockaddr, socklen_t};

extern "C" {
    fn inet_pton(af: c_int, src: *const c_char, dst: *mut libc::c_void) -> c_int;
    fn __h_errno_location() -> *mut c_int;
    fn __res_state() -> *mut libc::c_void;
    fn __res_init() -> c_int;
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

fn h_errno() -> c_int {
    // SAFETY: the calling thread's h_errno.
    unsafe { *__h_errno_location() }
}

fn set_h_errno(value: c_int) {
    // SAFETY: the calling thread's h_errno.
    unsafe { *__h_errno_location() = value };
}

/// Runs a lookup on a helper when green, right here otherwise. Lookups report through
/// errno and h_errno on success as on failure (ERANGE, ENOENT, HOST_NOT_FOUND, and errno
/// left alone when nothing went wrong), and both are per thread: the helper starts with
/// the caller's values, and the caller gets the helper's back.
fn lookup<R>(green: &Option<Green>, call: impl FnOnce() -> R) -> R {
    if green.is_none() {
        return call();
    }
    let before = (super::errno(), h_errno());
    let (result, after) = offload::run(move || {
        super::set_errno(before.0);
        set_h_errno(before.1);
        let result = call();
        (result, (super::errno(), h_errno()))
    });
    set_h_errno(after.1);
    super::set_errno(after.0);
    result
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
    lookup(&green, move || {
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
    lookup(&green, move || {
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
    lookup(&green, move || {
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
    lookup(&green, move || {
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
    lookup(&green, move || {
        let (addr, ret, buf, result, h_errnop) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::gethostbyaddr_r(addr, len, ty, ret, buf, buflen, result, h_errnop) }
    })
}

/// A user or group lookup by name or number into the caller's buffer (the `_r` forms):
/// the same five-argument shape for passwd and group entries.
macro_rules! entry_r {
    ($name:ident, $key:ty, $entry:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            key: $key,
            entry: *mut $entry,
            buf: *mut c_char,
            len: size_t,
            result: *mut *mut $entry,
        ) -> c_int {
            let green = enter();
            let args = Lent((entry, buf, result));
            lookup(&green, move || {
                let (entry, buf, result) = args.0;
                // SAFETY: the program's arguments, valid while it waits.
                unsafe { real::$name(key, entry, buf, len, result) }
            })
        }
    };
}

entry_r!(getpwnam_r, *const c_char, libc::passwd);
entry_r!(getpwuid_r, libc::uid_t, libc::passwd);
entry_r!(getgrnam_r, *const c_char, libc::group);
entry_r!(getgrgid_r, libc::gid_t, libc::group);

/// The forms that return libc's static entry: the caller is its only user meanwhile.
macro_rules! entry {
    ($name:ident, $key:ty, $entry:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(key: $key) -> *mut $entry {
            let green = enter();
            let key = Lent(key);
            lookup(&green, move || {
                // SAFETY: the program's argument, valid while it waits.
                Lent(unsafe { real::$name(key.0) })
            })
            .0
        }
    };
}

entry!(getpwnam, *const c_char, libc::passwd);
entry!(getpwuid, libc::uid_t, libc::passwd);
entry!(getgrnam, *const c_char, libc::group);
entry!(getgrgid, libc::gid_t, libc::group);

#[no_mangle]
pub unsafe extern "C" fn getgrouplist(
    user: *const c_char,
    group: libc::gid_t,
    groups: *mut libc::gid_t,
    ngroups: *mut c_int,
) -> c_int {
    let green = enter();
    let args = Lent((user, groups, ngroups));
    lookup(&green, move || {
        let (user, groups, ngroups) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::getgrouplist(user, group, groups, ngroups) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn getservbyname_r(
    name: *const c_char,
    proto: *const c_char,
    ret: *mut libc::servent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut libc::servent,
) -> c_int {
    let green = enter();
    let args = Lent((name, proto, ret, buf, result));
    lookup(&green, move || {
        let (name, proto, ret, buf, result) = args.0;
        // SAFETY: the program's arguments, valid while it waits.
        unsafe { real::getservbyname_r(name, proto, ret, buf, len, result) }
    })
}

/// The start of glibc's `struct __res_state`, enough to see whether it is initialised
/// (the first two fields only place `options`).
#[repr(C)]
struct ResState {
    retrans: c_int,
    retry: c_int,
    options: libc::c_ulong,
}

const RES_INIT: libc::c_ulong = 1;
const NETDB_INTERNAL: c_int = -1;

/// The calling thread's resolver state (`_res`), initialised as res_query does on first
/// use; None (h_errno set) if that fails. The queries that use it run on a helper, whose
/// own `_res` is not the program's, so they run as the `res_n*` form on this one (unlike
/// natively, a resolv.conf changed after the first query is then not reloaded).
fn callers_state() -> Option<*mut libc::c_void> {
    // SAFETY: glibc's per-thread resolver state, which lives as long as the thread.
    let state = unsafe { __res_state() }.cast::<ResState>();
    // SAFETY: as above; `options` is where glibc keeps RES_INIT.
    if unsafe { (*state).options } & RES_INIT == 0 && unsafe { __res_init() } == -1 {
        set_h_errno(NETDB_INTERNAL);
        return None;
    }
    Some(state.cast())
}

/// res_query, res_search: the implicit-state form of `$n`.
macro_rules! res_call {
    ($name:ident, $n:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            name: *const c_char,
            class: c_int,
            ty: c_int,
            answer: *mut u8,
            len: c_int,
        ) -> c_int {
            let Some(green) = enter() else {
                // SAFETY: forwarded.
                return unsafe { real::$name(name, class, ty, answer, len) };
            };
            let Some(state) = callers_state() else {
                return -1;
            };
            let args = Lent((state, name, answer));
            lookup(&Some(green), move || {
                let (state, name, answer) = args.0;
                // SAFETY: the program's arguments and resolver state, valid while it waits.
                unsafe { real::$n(state, name, class, ty, answer, len) }
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn $n(
            state: *mut libc::c_void,
            name: *const c_char,
            class: c_int,
            ty: c_int,
            answer: *mut u8,
            len: c_int,
        ) -> c_int {
            let green = enter();
            let args = Lent((state, name, answer));
            lookup(&green, move || {
                let (state, name, answer) = args.0;
                // SAFETY: the program's arguments and resolver state, valid while it waits.
                unsafe { real::$n(state, name, class, ty, answer, len) }
            })
        }
    };
}

res_call!(res_query, res_nquery);
res_call!(res_search, res_nsearch);

#[no_mangle]
pub unsafe extern "C" fn res_querydomain(
    name: *const c_char,
    domain: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    len: c_int,
) -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::res_querydomain(name, domain, class, ty, answer, len) };
    };
    let Some(state) = callers_state() else {
        return -1;
    };
    let args = Lent((state, name, domain, answer));
    lookup(&Some(green), move || {
        let (state, name, domain, answer) = args.0;
        // SAFETY: the program's arguments and resolver state, valid while it waits.
        unsafe { real::res_nquerydomain(state, name, domain, class, ty, answer, len) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn res_nquerydomain(
    state: *mut libc::c_void,
    name: *const c_char,
    domain: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    len: c_int,
) -> c_int {
    let green = enter();
    let args = Lent((state, name, domain, answer));
    lookup(&green, move || {
        let (state, name, domain, answer) = args.0;
        // SAFETY: the program's arguments and resolver state, valid while it waits.
        unsafe { real::res_nquerydomain(state, name, domain, class, ty, answer, len) }
    })
}

/// Runs a call that reports failure through errno on a helper, carrying errno back.
pub fn off_errno<R: Copy + PartialOrd + From<i8>>(
    green: &Option<Green>,
    call: impl FnOnce() -> R,
) -> R {
    let (result, error) = off(green, || {
        let r = call();
        (r, super::errno())
    });
    if result < R::from(0) {
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
