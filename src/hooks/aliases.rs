//! libc's other names for the functions greenify hooks.
//!
//! glibc exports many functions under several names at one address (`__read` is `read`,
//! `fcntl64` is `fcntl`, `_IO_popen` is `popen`) and programs link whichever their headers
//! chose: with 64-bit file offsets, a program built against glibc >= 2.28 calls `fcntl64`,
//! never `fcntl`. An unhooked name reaches glibc's code directly and splits the program's
//! view from greenify's (`fcntl64(F_GETFL)` would show greenify's O_NONBLOCK), so each
//! name is exported here and calls the hook of its family: one implementation per
//! function. `cdylib-tests/tests/symbols.rs` reads libc's dynamic symbol table and fails
//! when a name is missing from this table.
//!
//! On x86_64 `off_t` is 64 bits, so the `64` twins take the very same arguments.
//! Names glibc keeps in its GLIBC_PRIVATE version are left out: programs cannot link them.
//!
//! Every alias forwards the caller's arguments unchanged, so each call has the hook's own
//! contract (the libc function's).

use super::{
    fortify, identity, io, keys, net, offloaded, poll, process, signal, stdio, sync, thread, time,
};
use libc::{
    c_char, c_int, c_long, c_void, fd_set, nfds_t, off_t, pid_t, pollfd, pthread_key_t,
    pthread_mutex_t, pthread_mutexattr_t, pthread_rwlock_t, pthread_rwlockattr_t, size_t, sockaddr,
    socklen_t, ssize_t, timespec, timeval,
};

macro_rules! aliases {
    ($(
        $module:ident::$hook:ident as [$($alias:ident),+] $params:tt -> $ret:ty;
    )*) => {$($(
        aliases!(@one $module::$hook as $alias $params -> $ret);
    )+)*};
    (@one $module:ident::$hook:ident as $alias:ident ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[no_mangle]
        pub unsafe extern "C" fn $alias($($arg: $ty),*) -> $ret {
            // SAFETY: the same function under libc's other name (see the module's comment).
            unsafe { $module::$hook($($arg),*) }
        }
    };
}

aliases! {
    // fds (fcntl and open are variadic: their one optional argument is passed as hooks
    // take it, in the next integer register)
    io::read as [__read](fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    io::write as [__write](fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    io::close as [__close](fd: c_int) -> c_int;
    io::dup2 as [__dup2](old: c_int, new: c_int) -> c_int;
    io::pipe as [__pipe](fds: *mut c_int) -> c_int;
    io::fcntl as [fcntl64, __fcntl](fd: c_int, cmd: c_int, arg: usize) -> c_int;
    io::open as [__open](path: *const c_char, flags: c_int, mode: libc::c_uint) -> c_int;
    io::open64 as [__open64](path: *const c_char, flags: c_int, mode: libc::c_uint) -> c_int;
    io::sendfile as [sendfile64](out_fd: c_int, in_fd: c_int, offset: *mut off_t,
        count: size_t) -> ssize_t;
    offloaded::lockf as [lockf64](fd: c_int, cmd: c_int, len: off_t) -> c_int;
    stdio::fdopen as [_IO_fdopen](fd: c_int, mode: *const c_char) -> *mut libc::FILE;
    stdio::flockfile as [_IO_flockfile](file: *mut libc::FILE) -> ();
    stdio::ftrylockfile as [_IO_ftrylockfile](file: *mut libc::FILE) -> c_int;
    stdio::funlockfile as [_IO_funlockfile](file: *mut libc::FILE) -> ();

    // the resolver's names in programs built against glibc before 2.34
    offloaded::res_query as [__res_query](name: *const c_char, class: c_int, ty: c_int,
        answer: *mut u8, len: c_int) -> c_int;
    offloaded::res_search as [__res_search](name: *const c_char, class: c_int, ty: c_int,
        answer: *mut u8, len: c_int) -> c_int;
    offloaded::res_querydomain as [__res_querydomain](name: *const c_char,
        domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;
    offloaded::res_nquery as [__res_nquery](state: *mut c_void, name: *const c_char,
        class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;
    offloaded::res_nsearch as [__res_nsearch](state: *mut c_void, name: *const c_char,
        class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;
    offloaded::res_nquerydomain as [__res_nquerydomain](state: *mut c_void,
        name: *const c_char, domain: *const c_char, class: c_int, ty: c_int, answer: *mut u8,
        len: c_int) -> c_int;
    fortify::__fdelt_chk as [__fdelt_warn](fd: c_long) -> c_long;

    // sockets
    net::connect as [__connect](fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    net::send as [__send](fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;

    // waiting
    poll::poll as [__poll](fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    poll::select as [__select](n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set,
        timeout: *mut timeval) -> c_int;
    time::nanosleep as [__nanosleep](req: *const timespec, rem: *mut timespec) -> c_int;
    thread::sched_yield as [__sched_yield]() -> c_int;
    identity::sched_setscheduler as [__sched_setscheduler](tid: pid_t, policy: c_int,
        param: *const libc::sched_param) -> c_int;
    identity::sched_getscheduler as [__sched_getscheduler](tid: pid_t) -> c_int;
    identity::sched_getparam as [__sched_getparam](tid: pid_t, param: *mut libc::sched_param)
        -> c_int;

    // processes
    process::fork as [__fork]() -> pid_t;
    process::vfork as [__vfork]() -> pid_t;
    process::wait as [__wait](status: *mut c_int) -> pid_t;
    process::waitpid as [__waitpid](pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
    process::popen as [_IO_popen](cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE;

    // signals
    signal::signal as [ssignal](sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    signal::sysv_signal as [__sysv_signal](sig: c_int, handler: libc::sighandler_t)
        -> libc::sighandler_t;
    signal::sigaction as [__sigaction](sig: c_int, act: *const libc::sigaction,
        old: *mut libc::sigaction) -> c_int;
    signal::sigsuspend as [__sigsuspend](mask: *const libc::sigset_t) -> c_int;

    // synchronisation (glibc's compatibility names from before libpthread joined libc;
    // libgcc and libstdc++ still test `__pthread_key_create` to see if threads are in use)
    sync::pthread_mutex_init as [__pthread_mutex_init](m: *mut pthread_mutex_t,
        attr: *const pthread_mutexattr_t) -> c_int;
    sync::pthread_mutex_destroy as [__pthread_mutex_destroy](m: *mut pthread_mutex_t) -> c_int;
    sync::pthread_mutex_lock as [__pthread_mutex_lock](m: *mut pthread_mutex_t) -> c_int;
    sync::pthread_mutex_trylock as [__pthread_mutex_trylock](m: *mut pthread_mutex_t) -> c_int;
    sync::pthread_mutex_unlock as [__pthread_mutex_unlock](m: *mut pthread_mutex_t) -> c_int;
    sync::pthread_rwlock_init as [__pthread_rwlock_init](l: *mut pthread_rwlock_t,
        attr: *const pthread_rwlockattr_t) -> c_int;
    sync::pthread_rwlock_destroy as [__pthread_rwlock_destroy](l: *mut pthread_rwlock_t) -> c_int;
    sync::pthread_rwlock_rdlock as [__pthread_rwlock_rdlock](l: *mut pthread_rwlock_t) -> c_int;
    sync::pthread_rwlock_wrlock as [__pthread_rwlock_wrlock](l: *mut pthread_rwlock_t) -> c_int;
    sync::pthread_rwlock_tryrdlock as [__pthread_rwlock_tryrdlock](l: *mut pthread_rwlock_t)
        -> c_int;
    sync::pthread_rwlock_trywrlock as [__pthread_rwlock_trywrlock](l: *mut pthread_rwlock_t)
        -> c_int;
    sync::pthread_rwlock_unlock as [__pthread_rwlock_unlock](l: *mut pthread_rwlock_t) -> c_int;
    sync::pthread_once as [__pthread_once](control: *mut libc::pthread_once_t,
        routine: extern "C" fn()) -> c_int;
    keys::pthread_key_create as [__pthread_key_create](key: *mut pthread_key_t,
        destructor: Option<unsafe extern "C" fn(*mut c_void)>) -> c_int;
    keys::pthread_getspecific as [__pthread_getspecific](key: pthread_key_t) -> *mut c_void;
    keys::pthread_setspecific as [__pthread_setspecific](key: pthread_key_t,
        value: *const c_void) -> c_int;
}
