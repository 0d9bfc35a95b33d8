//! Thread ids: `gettid`, and signals sent by thread id (`tgkill`, and through `syscall()`
//! also `tkill` and `rt_tgsigqueueinfo`).
//!
//! Each green thread shows its own id (see runtime/sched/identity.rs): MAIN the OS thread's, the
//! others numbers above any the kernel hands out. A signal sent to a live green thread's
//! id goes to the OS thread, and its handler runs in that green thread, as for
//! `pthread_kill` on its handle; an id in the green range that names no live thread is
//! ESRCH, as the kernel says for an exited thread; any other id (a real OS thread of this
//! process, or another process) is the kernel's.
//!
//! The calls that set or read a thread's scheduling (affinity, policy, nice value) act on
//! the OS thread for a green thread's id, as `pthread_setaffinity_np` and friends do on
//! its handle: the green threads share that OS thread.

use super::signal::{self, Sent};
use super::{enter, fail};
use crate::real;
use crate::runtime::sched::{self, ThreadId};
use libc::{c_int, c_long, pid_t, siginfo_t};

#[no_mangle]
pub unsafe extern "C" fn gettid() -> pid_t {
    match enter() {
        Some(_green) => sched::current_tid(),
        // SAFETY: no arguments.
        None => unsafe { real::gettid() },
    }
}

#[no_mangle]
pub unsafe extern "C" fn tgkill(pid: pid_t, tid: pid_t, sig: c_int) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::tgkill(pid, tid, sig) };
    };
    send(Some(pid), tid, sig, Sent::Kill).unwrap_or_else(|| {
        // SAFETY: forwarded.
        unsafe { real::tgkill(pid, tid, sig) }
    })
}

/// `syscall(SYS_tkill, tid, sig)` for a green caller.
pub fn tkill(tid: pid_t, sig: c_int) -> c_long {
    match send(None, tid, sig, Sent::Kill) {
        Some(r) => c_long::from(r),
        // SAFETY: tkill takes plain numbers.
        None => c_long::from(unsafe { raw(libc::SYS_tkill, [tid, sig, 0]) }),
    }
}

/// `syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, info)` for a green caller.
///
/// # Safety
/// `info` is the program's siginfo pointer, read by the kernel.
pub unsafe fn rt_tgsigqueueinfo(
    pid: pid_t,
    tid: pid_t,
    sig: c_int,
    info: *mut siginfo_t,
) -> c_long {
    // The kernel reads the program's siginfo: EFAULT if it cannot.
    let Some(program_info) = super::memory::read(info) else {
        return c_long::from(fail::<c_int>(libc::EFAULT));
    };
    match send(Some(pid), tid, sig, Sent::Info(program_info)) {
        Some(r) => c_long::from(r),
        // SAFETY: forwarded.
        None => unsafe {
            real::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                c_long::from(pid),
                c_long::from(tid),
                c_long::from(sig),
                info as c_long,
                0,
                0,
            )
        },
    }
}

/// Sends `sig` to the green thread whose id is `tid` (in process `pid`, if given), as
/// `sent` says; -1/errno or 0. None: the id is not a green thread's, and the kernel's call
/// must answer.
fn send(pid: Option<pid_t>, tid: pid_t, sig: c_int, sent: Sent) -> Option<c_int> {
    if pid.is_some_and(|pid| pid != getpid()) || tid <= 0 {
        return None;
    }
    let target: ThreadId = match sched::thread_by_tid(tid) {
        Some(target) => target,
        None if tid > sched::PID_MAX_LIMIT => {
            // An invalid signal number is EINVAL before the kernel looks for the thread.
            let e = if (0..=64).contains(&sig) {
                libc::ESRCH
            } else {
                libc::EINVAL
            };
            return Some(fail(e));
        }
        None => return None,
    };
    if sig == 0 {
        return Some(0);
    }
    Some(match signal::send_to_green(target, sig, sent) {
        Ok(()) => 0,
        Err(e) => fail(e),
    })
}

/// The kernel's id for `tid`, for a green caller: the OS thread's for a live green
/// thread's id.
fn kernel_tid(green: &Option<super::Green>, tid: pid_t) -> pid_t {
    if green.is_some() && tid > sched::PID_MAX_LIMIT && sched::thread_by_tid(tid).is_some() {
        rustix::thread::gettid().as_raw_nonzero().get()
    } else {
        tid
    }
}

/// Hooks whose first argument is a thread id: the kernel gets its id for it.
macro_rules! takes_tid {
    ($(fn $name:ident(tid: pid_t $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(tid: pid_t $(, $arg: $ty)*) -> $ret {
            let green = enter();
            let tid = kernel_tid(&green, tid);
            // SAFETY: forwarded, with the kernel's id.
            unsafe { real::$name(tid $(, $arg)*) }
        }
    )*};
}

takes_tid! {
    fn sched_setaffinity(tid: pid_t, size: libc::size_t, set: *const libc::cpu_set_t) -> c_int;
    fn sched_getaffinity(tid: pid_t, size: libc::size_t, set: *mut libc::cpu_set_t) -> c_int;
    fn sched_setscheduler(tid: pid_t, policy: c_int, param: *const libc::sched_param) -> c_int;
    fn sched_getscheduler(tid: pid_t) -> c_int;
    fn sched_setparam(tid: pid_t, param: *const libc::sched_param) -> c_int;
    fn sched_getparam(tid: pid_t, param: *mut libc::sched_param) -> c_int;
    fn sched_rr_get_interval(tid: pid_t, interval: *mut libc::timespec) -> c_int;
}

/// The id a PRIO_PROCESS priority call gives the kernel.
fn priority_who(green: &Option<super::Green>, which: c_int, who: libc::id_t) -> libc::id_t {
    if which == libc::PRIO_PROCESS as c_int {
        kernel_tid(green, who as pid_t) as libc::id_t
    } else {
        who
    }
}

#[no_mangle]
pub unsafe extern "C" fn setpriority(which: c_int, who: libc::id_t, prio: c_int) -> c_int {
    let green = enter();
    let who = priority_who(&green, which, who);
    // SAFETY: forwarded, with the kernel's id.
    unsafe { real::setpriority(which, who, prio) }
}

#[no_mangle]
pub unsafe extern "C" fn getpriority(which: c_int, who: libc::id_t) -> c_int {
    let green = enter();
    let who = priority_who(&green, which, who);
    // SAFETY: forwarded, with the kernel's id.
    unsafe { real::getpriority(which, who) }
}

fn getpid() -> pid_t {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// libc's syscall() with three plain-number arguments: -1/errno or the result.
unsafe fn raw(nr: c_long, args: [c_int; 3]) -> c_int {
    // SAFETY: the caller passes a system call that takes three numbers.
    unsafe {
        real::syscall(
            nr,
            c_long::from(args[0]),
            c_long::from(args[1]),
            c_long::from(args[2]),
            0,
            0,
            0,
        ) as c_int
    }
}
