//! The real libc functions behind the ones greenify exports.
//!
//! Each is resolved once, on first use, with `dlsym(RTLD_NEXT)` (or `dlvsym` where glibc
//! keeps several versions), and cached in an atomic. Resolution is lazy because hooks can
//! run before our constructor (another preloaded library may call `sleep` first).
//! A missing symbol is a broken installation: say which and abort.

use libc::{
    c_char, c_int, c_uint, c_ulong, c_void, clockid_t, cpu_set_t, epoll_event, fd_set, iovec,
    mmsghdr, mode_t, msghdr, nfds_t, off_t, pollfd, pthread_attr_t, pthread_t, sigset_t, size_t,
    sockaddr, socklen_t, ssize_t, timespec, timeval,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Resolves `name` (NUL-terminated), optionally at glibc symbol `version`.
#[cold]
fn resolve(name: &'static str, version: Option<&'static str>, slot: &AtomicUsize) -> usize {
    // SAFETY: both strings are NUL-terminated literals made by the macro below.
    let addr = unsafe {
        match version {
            None => libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()),
            Some(v) => libc::dlvsym(libc::RTLD_NEXT, name.as_ptr().cast(), v.as_ptr().cast()),
        }
    } as usize;
    if addr == 0 {
        crate::runtime::overflow::die(&format!(
            "greenify: cannot find the real {} in libc",
            name.trim_end_matches('\0')
        ));
    }
    slot.store(addr, Ordering::Relaxed);
    addr
}

/// The cached address of a libc symbol, resolved on first use.
macro_rules! address {
    ($name:ident, $version:expr) => {{
        static SLOT: AtomicUsize = AtomicUsize::new(0);
        match SLOT.load(Ordering::Relaxed) {
            0 => resolve(concat!(stringify!($name), "\0"), $version, &SLOT),
            addr => addr,
        }
    }};
}

macro_rules! real_fn {
    // A variadic function, called with its one extra argument.
    ($name:ident, $version:expr, ($($arg:ident: $ty:ty),*), $varg:ident: $vty:ty, $ret:ty) => {
        /// The libc function of this name (not greenify's hook).
        ///
        /// # Safety
        /// As for the libc function itself.
        pub unsafe fn $name($($arg: $ty,)* $varg: $vty) -> $ret {
            let addr = address!($name, $version);
            let f: unsafe extern "C" fn($($ty,)* ...) -> $ret =
                // SAFETY: `addr` is libc's definition of this very (variadic) symbol.
                unsafe { std::mem::transmute::<usize, _>(addr) };
            // SAFETY: forwarded caller contract.
            unsafe { f($($arg,)* $varg) }
        }
    };
    ($name:ident, $version:expr, ($($arg:ident: $ty:ty),*), $ret:ty) => {
        /// The libc function of this name (not greenify's hook).
        ///
        /// # Safety
        /// As for the libc function itself.
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $name($($arg: $ty),*) -> $ret {
            let addr = address!($name, $version);
            let f: unsafe extern "C" fn($($ty),*) -> $ret =
                // SAFETY: `addr` is libc's definition of this very symbol, whose C
                // prototype is the one declared here.
                unsafe { std::mem::transmute::<usize, _>(addr) };
            // SAFETY: forwarded caller contract.
            unsafe { f($($arg),*) }
        }
    };
}

macro_rules! real_fns {
    ($(
        $(#[version = $ver:literal])?
        fn $name:ident($($arg:ident: $ty:ty),* $(; ...$varg:ident: $vty:ty)?) -> $ret:ty;
    )*) => {$(
        real_fn!($name, real_fns!(@version $($ver)?), ($($arg: $ty),*), $($varg: $vty,)? $ret);
    )*};
    (@version) => { None };
    (@version $ver:literal) => { Some(concat!($ver, "\0")) };
}

real_fns! {
    // threads
    fn pthread_create(t: *mut pthread_t, attr: *const pthread_attr_t,
        start: extern "C" fn(*mut c_void) -> *mut c_void, arg: *mut c_void) -> c_int;
    fn pthread_join(t: pthread_t, retval: *mut *mut c_void) -> c_int;
    fn pthread_tryjoin_np(t: pthread_t, retval: *mut *mut c_void) -> c_int;
    fn pthread_timedjoin_np(t: pthread_t, retval: *mut *mut c_void, abstime: *const timespec) -> c_int;
    fn pthread_clockjoin_np(t: pthread_t, retval: *mut *mut c_void, clock: clockid_t,
        abstime: *const timespec) -> c_int;
    fn pthread_detach(t: pthread_t) -> c_int;
    fn pthread_self() -> pthread_t;
    fn pthread_exit(retval: *mut c_void) -> ();
    fn pthread_getattr_np(t: pthread_t, attr: *mut pthread_attr_t) -> c_int;
    fn pthread_setattr_default_np(attr: *const pthread_attr_t) -> c_int;
    fn pthread_setname_np(t: pthread_t, name: *const c_char) -> c_int;
    fn pthread_getname_np(t: pthread_t, name: *mut c_char, len: size_t) -> c_int;
    fn pthread_kill(t: pthread_t, sig: c_int) -> c_int;
    fn kill(pid: libc::pid_t, sig: c_int) -> c_int;
    fn sigqueue(pid: libc::pid_t, sig: c_int, value: libc::sigval) -> c_int;
    fn pthread_sigqueue(t: pthread_t, sig: c_int, value: libc::sigval) -> c_int;
    fn pthread_cancel(t: pthread_t) -> c_int;
    fn pthread_getcpuclockid(t: pthread_t, clock: *mut clockid_t) -> c_int;
    fn pthread_setschedparam(t: pthread_t, policy: c_int, param: *const libc::sched_param) -> c_int;
    fn pthread_getschedparam(t: pthread_t, policy: *mut c_int, param: *mut libc::sched_param) -> c_int;
    fn pthread_setschedprio(t: pthread_t, prio: c_int) -> c_int;
    fn pthread_setaffinity_np(t: pthread_t, size: size_t, set: *const cpu_set_t) -> c_int;
    fn pthread_getaffinity_np(t: pthread_t, size: size_t, set: *mut cpu_set_t) -> c_int;
    fn sched_yield() -> c_int;
    fn __pthread_register_cancel(buffer: *mut c_void) -> ();
    fn __pthread_unregister_cancel(buffer: *mut c_void) -> ();
    fn __pthread_unwind_next(buffer: *mut c_void) -> ();
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_setcanceltype(ty: c_int, old: *mut c_int) -> c_int;
    fn pthread_testcancel() -> ();

    // time
    fn sleep(secs: c_uint) -> c_uint;
    fn usleep(usecs: libc::useconds_t) -> c_int;
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;

    // fds
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int; ...arg: usize) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong; ...arg: usize) -> c_int;
    fn open(path: *const c_char, flags: c_int; ...mode: c_uint) -> c_int;
    fn open64(path: *const c_char, flags: c_int; ...mode: c_uint) -> c_int;
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int; ...mode: c_uint) -> c_int;
    fn openat64(dirfd: c_int, path: *const c_char, flags: c_int; ...mode: c_uint) -> c_int;
    fn creat(path: *const c_char, mode: mode_t) -> c_int;
    fn creat64(path: *const c_char, mode: mode_t) -> c_int;
    fn __open_2(path: *const c_char, flags: c_int) -> c_int;
    fn __open64_2(path: *const c_char, flags: c_int) -> c_int;
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn eventfd(initval: c_uint, flags: c_int) -> c_int;
    fn timerfd_create(clock: clockid_t, flags: c_int) -> c_int;
    fn signalfd(fd: c_int, mask: *const sigset_t, flags: c_int) -> c_int;
    fn epoll_create(size: c_int) -> c_int;
    fn epoll_create1(flags: c_int) -> c_int;
    fn inotify_init() -> c_int;
    fn inotify_init1(flags: c_int) -> c_int;
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn sendfile(out_fd: c_int, in_fd: c_int, offset: *mut off_t, count: size_t) -> ssize_t;
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, offset: off_t) -> ssize_t;
    fn pread64(fd: c_int, buf: *mut c_void, n: size_t, offset: off_t) -> ssize_t;
    fn preadv2(fd: c_int, iov: *const iovec, n: c_int, offset: off_t, flags: c_int) -> ssize_t;
    fn pwritev2(fd: c_int, iov: *const iovec, n: c_int, offset: off_t, flags: c_int) -> ssize_t;
    fn splice(fd_in: c_int, off_in: *mut libc::loff_t, fd_out: c_int, off_out: *mut libc::loff_t,
        len: size_t, flags: c_uint) -> ssize_t;
    fn tee(fd_in: c_int, fd_out: c_int, len: size_t, flags: c_uint) -> ssize_t;
    fn vmsplice(fd: c_int, iov: *const iovec, n: size_t, flags: c_uint) -> ssize_t;

    // sockets
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn shutdown(fd: c_int, how: c_int) -> c_int;
    fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr,
        len: *mut socklen_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    fn recvmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int, timeout: *mut timespec) -> c_int;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr,
        len: socklen_t) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int;

    // waiting
    fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    fn ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int;
    fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec,
        mask: *const sigset_t) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int,
        mask: *const sigset_t) -> c_int;
    fn epoll_pwait2(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: *const timespec,
        mask: *const sigset_t) -> c_int;

    // process-shared synchronisation objects, left to glibc
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_init(c: *mut libc::pthread_cond_t, attr: *const libc::pthread_condattr_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_destroy(c: *mut libc::pthread_cond_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_wait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_timedwait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t,
        abstime: *const timespec) -> c_int;
    fn pthread_cond_clockwait(c: *mut libc::pthread_cond_t, m: *mut libc::pthread_mutex_t,
        clock: clockid_t, abstime: *const timespec) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_signal(c: *mut libc::pthread_cond_t) -> c_int;
    #[version = "GLIBC_2.3.2"]
    fn pthread_cond_broadcast(c: *mut libc::pthread_cond_t) -> c_int;
    fn pthread_rwlock_init(l: *mut libc::pthread_rwlock_t, attr: *const libc::pthread_rwlockattr_t) -> c_int;
    fn pthread_rwlock_destroy(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_rdlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_wrlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_tryrdlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_trywrlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_rwlock_clockrdlock(l: *mut libc::pthread_rwlock_t, clock: clockid_t,
        abstime: *const timespec) -> c_int;
    fn pthread_rwlock_clockwrlock(l: *mut libc::pthread_rwlock_t, clock: clockid_t,
        abstime: *const timespec) -> c_int;
    fn pthread_rwlock_unlock(l: *mut libc::pthread_rwlock_t) -> c_int;
    fn pthread_barrier_init(b: *mut libc::pthread_barrier_t, attr: *const libc::pthread_barrierattr_t,
        count: c_uint) -> c_int;
    fn pthread_barrier_destroy(b: *mut libc::pthread_barrier_t) -> c_int;
    fn pthread_barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int;

    // signals
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    fn pause() -> c_int;
    fn pthread_sigmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int;
    fn sigprocmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int;
    fn sigsuspend(mask: *const sigset_t) -> c_int;
    fn sigpending(set: *mut sigset_t) -> c_int;
    fn sigtimedwait(set: *const sigset_t, info: *mut libc::siginfo_t, timeout: *const timespec) -> c_int;
    fn sigwaitinfo(set: *const sigset_t, info: *mut libc::siginfo_t) -> c_int;
    fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int;
    fn siglongjmp(env: *mut crate::hooks::signal_jump::JmpBuf, value: c_int) -> !;
    fn longjmp(env: *mut crate::hooks::signal_jump::JmpBuf, value: c_int) -> !;
    fn _longjmp(env: *mut crate::hooks::signal_jump::JmpBuf, value: c_int) -> !;
    fn __longjmp_chk(env: *mut crate::hooks::signal_jump::JmpBuf, value: c_int) -> !;

    // processes
    fn fork() -> libc::pid_t;
    fn posix_spawn(pid: *mut libc::pid_t, path: *const c_char, actions: *const libc::posix_spawn_file_actions_t,
        attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    fn posix_spawnp(pid: *mut libc::pid_t, file: *const c_char, actions: *const libc::posix_spawn_file_actions_t,
        attr: *const libc::posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
    fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t;
    fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int;
    fn system(cmd: *const c_char) -> c_int;
    fn popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE;
    fn pclose(file: *mut libc::FILE) -> c_int;
    fn fdopen(fd: c_int, mode: *const c_char) -> *mut libc::FILE;
    fn flockfile(file: *mut libc::FILE) -> ();
    fn ftrylockfile(file: *mut libc::FILE) -> c_int;
    fn funlockfile(file: *mut libc::FILE) -> ();

    // offloaded
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo,
        res: *mut *mut libc::addrinfo) -> c_int;
    fn getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut c_char, hostlen: socklen_t,
        serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int;
    fn gethostbyname_r(name: *const c_char, ret: *mut libc::hostent, buf: *mut c_char, buflen: size_t,
        result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut libc::hostent, buf: *mut c_char,
        buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn gethostbyaddr_r(addr: *const c_void, len: socklen_t, ty: c_int, ret: *mut libc::hostent,
        buf: *mut c_char, buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn flock(fd: c_int, op: c_int) -> c_int;
    fn lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int;
    fn fsync(fd: c_int) -> c_int;
    fn fdatasync(fd: c_int) -> c_int;

    // message queues and semaphores (ipc.rs), NSS and the resolver (offloaded.rs)
    fn mq_timedreceive(mq: c_int, msg: *mut c_char, len: size_t, prio: *mut c_uint,
        abstime: *const timespec) -> ssize_t;
    fn mq_timedsend(mq: c_int, msg: *const c_char, len: size_t, prio: c_uint,
        abstime: *const timespec) -> c_int;
    fn msgsnd(id: c_int, msg: *const c_void, size: size_t, flags: c_int) -> c_int;
    fn msgrcv(id: c_int, msg: *mut c_void, size: size_t, ty: libc::c_long, flags: c_int) -> ssize_t;
    fn semtimedop(id: c_int, sops: *mut libc::sembuf, n: size_t, timeout: *const timespec) -> c_int;
    fn getpwnam_r(name: *const c_char, pwd: *mut libc::passwd, buf: *mut c_char, len: size_t,
        result: *mut *mut libc::passwd) -> c_int;
    fn getpwuid_r(uid: libc::uid_t, pwd: *mut libc::passwd, buf: *mut c_char, len: size_t,
        result: *mut *mut libc::passwd) -> c_int;
    fn getgrnam_r(name: *const c_char, grp: *mut libc::group, buf: *mut c_char, len: size_t,
        result: *mut *mut libc::group) -> c_int;
    fn getgrgid_r(gid: libc::gid_t, grp: *mut libc::group, buf: *mut c_char, len: size_t,
        result: *mut *mut libc::group) -> c_int;
    fn getpwnam(name: *const c_char) -> *mut libc::passwd;
    fn getpwuid(uid: libc::uid_t) -> *mut libc::passwd;
    fn getgrnam(name: *const c_char) -> *mut libc::group;
    fn getgrgid(gid: libc::gid_t) -> *mut libc::group;
    fn getgrouplist(user: *const c_char, group: libc::gid_t, groups: *mut libc::gid_t,
        ngroups: *mut c_int) -> c_int;
    fn getservbyname_r(name: *const c_char, proto: *const c_char, ret: *mut libc::servent,
        buf: *mut c_char, len: size_t, result: *mut *mut libc::servent) -> c_int;
    fn res_query(name: *const c_char, class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;
    fn res_search(name: *const c_char, class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;
    fn res_querydomain(name: *const c_char, domain: *const c_char, class: c_int, ty: c_int,
        answer: *mut u8, len: c_int) -> c_int;
    fn res_nquery(state: *mut c_void, name: *const c_char, class: c_int, ty: c_int,
        answer: *mut u8, len: c_int) -> c_int;
    fn res_nsearch(state: *mut c_void, name: *const c_char, class: c_int, ty: c_int,
        answer: *mut u8, len: c_int) -> c_int;
    fn res_nquerydomain(state: *mut c_void, name: *const c_char, domain: *const c_char,
        class: c_int, ty: c_int, answer: *mut u8, len: c_int) -> c_int;

    // fortify
    fn __chk_fail() -> ();
    fn __fdelt_chk(fd: libc::c_long) -> libc::c_long;

    // credentials (setxid.rs)
    fn setuid(uid: libc::uid_t) -> c_int;
    fn setgid(gid: libc::gid_t) -> c_int;
    fn seteuid(uid: libc::uid_t) -> c_int;
    fn setegid(gid: libc::gid_t) -> c_int;
    fn setreuid(ruid: libc::uid_t, euid: libc::uid_t) -> c_int;
    fn setregid(rgid: libc::gid_t, egid: libc::gid_t) -> c_int;
    fn setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t) -> c_int;
    fn setresgid(rgid: libc::gid_t, egid: libc::gid_t, sgid: libc::gid_t) -> c_int;
    fn setgroups(size: size_t, list: *const libc::gid_t) -> c_int;
    fn initgroups(user: *const c_char, group: libc::gid_t) -> c_int;

    // thread ids and per-thread kernel state
    fn gettid() -> libc::pid_t;
    fn tgkill(pid: libc::pid_t, tid: libc::pid_t, sig: c_int) -> c_int;
    fn sigaltstack(ss: *const libc::stack_t, old: *mut libc::stack_t) -> c_int;
    fn timer_create(clock: clockid_t, event: *mut libc::sigevent, timer: *mut libc::timer_t) -> c_int;
    fn timer_delete(timer: libc::timer_t) -> c_int;
    fn sched_setaffinity(tid: libc::pid_t, size: size_t, set: *const cpu_set_t) -> c_int;
    fn sched_getaffinity(tid: libc::pid_t, size: size_t, set: *mut cpu_set_t) -> c_int;
    fn sched_setscheduler(tid: libc::pid_t, policy: c_int, param: *const libc::sched_param) -> c_int;
    fn sched_getscheduler(tid: libc::pid_t) -> c_int;
    fn sched_setparam(tid: libc::pid_t, param: *const libc::sched_param) -> c_int;
    fn sched_getparam(tid: libc::pid_t, param: *mut libc::sched_param) -> c_int;
    fn sched_rr_get_interval(tid: libc::pid_t, interval: *mut timespec) -> c_int;
    fn setpriority(which: c_int, who: libc::id_t, prio: c_int) -> c_int;
    fn getpriority(which: c_int, who: libc::id_t) -> c_int;
    // The seventh argument is read from the stack, as every variadic one would be.
    fn syscall(nr: libc::c_long, a1: libc::c_long, a2: libc::c_long, a3: libc::c_long,
        a4: libc::c_long, a5: libc::c_long; ...a6: libc::c_long) -> libc::c_long;
}
