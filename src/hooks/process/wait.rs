//! The wait family and ptrace's PTRACE_TRACEME: waits for a child park on its pidfd, or
//! look again every few milliseconds for what no pidfd reports.

use crate::hooks::blocking::{close_own, park_on, wait_for, Tried, Waits};
use crate::hooks::{children, enter, fail, memory, Green};
use crate::runtime::{Interest, Reason};
use crate::{real, runtime};
use libc::{c_int, id_t, idtype_t, pid_t, siginfo_t};
use rustix::fd::AsRawFd;
use std::mem::size_of;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How often a wait that no pidfd can watch looks again (stops, children not started
/// through the hooks).
const WAIT_POLL: Duration = Duration::from_millis(5);

/// How often a wait on a pidfd looks again anyway: a child that asked to be traced
/// (PTRACE_TRACEME) reports its stops to a plain waitpid, and no pidfd signals them.
const TRACEME_POLL: Duration = Duration::from_millis(50);

/// Parks until `check` (a WNOHANG version of the wait) reports something. With
/// `exits_only`, `pid > 0` waits on that child's pidfd and other waits on the pidfds of
/// the children started through the hooks; every wait also looks again every WAIT_POLL
/// (TRACEME_POLL on a single child's pidfd).
fn green_wait(
    green: &Green,
    pid: pid_t,
    exits_only: bool,
    mut check: impl FnMut() -> Option<c_int>,
) -> c_int {
    let pidfd = if pid > 0 && exits_only {
        children::open_pidfd(pid)
    } else {
        None
    };
    let waits = Waits {
        deadline: None,
        every: Some(if pidfd.is_some() {
            TRACEME_POLL
        } else {
            WAIT_POLL
        }),
        // waitpid is restarted under SA_RESTART (signal(7)).
        restarts: true,
    };
    let result = wait_for(
        Some(green),
        waits,
        || check().map_or(Tried::Waits(0), Tried::Done),
        |until| match &pidfd {
            Some(fd) => runtime::wait_fd(fd.as_raw_fd(), Interest::Read, Reason::Join, until),
            None => {
                // Opened for each park: it watches the children started meanwhile too.
                let watch = (pid <= 0 && exits_only).then(children::Watch::open);
                park_on(
                    watch.as_ref().map_or(&[], children::Watch::fds),
                    Reason::Join,
                    until,
                )
            }
        },
    );
    if let Some(fd) = pidfd {
        close_own(fd);
    }
    result
}

/// The process has traced another (ptrace): its waits also report the tracees' stops,
/// which no pidfd signals.
static TRACER: AtomicBool = AtomicBool::new(false);

fn watches_exit_only(options: c_int) -> bool {
    options & (libc::WUNTRACED | libc::WCONTINUED) == 0 && !TRACER.load(Relaxed)
}

/// ptrace, as glibc's wrapper (PEEK requests return the word and clear errno), noting
/// that this process traces: from then on its waits look for stops too.
#[no_mangle]
pub unsafe extern "C" fn ptrace(
    request: libc::c_uint,
    pid: pid_t,
    addr: *mut libc::c_void,
    data: *mut libc::c_void,
) -> libc::c_long {
    if request != libc::PTRACE_TRACEME {
        TRACER.store(true, Relaxed);
    }
    let peek = matches!(
        request,
        libc::PTRACE_PEEKTEXT | libc::PTRACE_PEEKDATA | libc::PTRACE_PEEKUSER
    );
    let mut word: libc::c_long = 0;
    let data = if peek {
        (&mut word as *mut libc::c_long).cast()
    } else {
        data
    };
    let args = [request as usize, pid as usize, addr as usize, data as usize];
    // SAFETY: the program's own arguments (for PEEK requests, our own word to fill).
    let result = unsafe { crate::runtime::raw::syscall(libc::SYS_ptrace, &args) };
    if result < 0 {
        return crate::hooks::fail(-result as c_int);
    }
    if peek {
        crate::hooks::set_errno(0);
        return word;
    }
    result as libc::c_long
}

/// A wait returned `pid` with `status` (or NULL): if the child ended, it was reaped.
fn note_reaped(pid: pid_t, status: *const c_int, exits_only: bool) {
    if pid <= 0 {
        return;
    }
    let ended = if status.is_null() {
        exits_only
    } else {
        // SAFETY: the kernel just wrote the program's status word.
        let status = unsafe { *status };
        libc::WIFEXITED(status) || libc::WIFSIGNALED(status)
    };
    if ended {
        children::reaped(pid);
    }
}

#[no_mangle]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(pid, status, options, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(-1, status, 0, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn wait3(
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(-1, status, options, usage) }
}

#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let green = enter();
    // SAFETY: forwarded.
    unsafe { wait4_as(green.as_ref(), pid, status, options, usage) }
}

/// wait4 for a caller that is (`Some`) or is not green.
pub(super) unsafe fn wait4_as(
    green: Option<&Green>,
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let exits_only = watches_exit_only(options);
    let r = match green {
        Some(green) if options & libc::WNOHANG == 0 => green_wait(green, pid, exits_only, || {
            // SAFETY: forwarded with WNOHANG.
            let r = unsafe { real::wait4(pid, status, options | libc::WNOHANG, usage) };
            (r != 0).then_some(r)
        }),
        // SAFETY: forwarded.
        _ => unsafe { real::wait4(pid, status, options, usage) },
    };
    note_reaped(r, status, exits_only);
    r
}

#[no_mangle]
pub unsafe extern "C" fn waitid(
    idtype: idtype_t,
    id: id_t,
    info: *mut siginfo_t,
    options: c_int,
) -> c_int {
    let green = enter();
    let green = match &green {
        Some(green) if options & libc::WNOHANG == 0 && !info.is_null() => green,
        _ => {
            // SAFETY: forwarded.
            let r = unsafe { real::waitid(idtype, id, info, options) };
            if r == 0 && !info.is_null() {
                // SAFETY: waitid succeeded, so it filled the program's siginfo.
                note_waited(unsafe { &*info }, options);
            }
            return r;
        }
    };
    let pid = if idtype == libc::P_PID {
        id as pid_t
    } else {
        -1
    };
    let exits_only = options & (libc::WSTOPPED | libc::WCONTINUED) == 0 && !TRACER.load(Relaxed);
    // Waited into our own siginfo, then copied out: a bad pointer gives EFAULT (after the
    // child is reaped, as the kernel does) instead of crashing greenify.
    // SAFETY: siginfo_t is plain data; zero is its "no child changed state" value.
    let mut mine: siginfo_t = unsafe { std::mem::zeroed() };
    let r = green_wait(green, pid, exits_only, || {
        // SAFETY: our own siginfo; si_pid stays 0 when no child changed state.
        unsafe {
            mine = std::mem::zeroed();
            let r = real::waitid(idtype, id, &mut mine, options | libc::WNOHANG);
            (r != 0 || mine.si_pid() != 0).then_some(r)
        }
    });
    if r != 0 {
        return r;
    }
    note_waited(&mine, options);
    // SAFETY: only the address is taken; the bytes are copied through the kernel.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&mine as *const siginfo_t).cast::<u8>(),
            size_of::<siginfo_t>(),
        )
    };
    if !memory::write_bytes(info.cast(), bytes) {
        return fail(libc::EFAULT);
    }
    0
}

/// Records a child that waitid reaped (WNOWAIT leaves it waitable).
pub(in crate::hooks) fn note_waited(info: &siginfo_t, options: c_int) {
    if options & libc::WNOWAIT == 0
        && matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        )
    {
        // SAFETY: a siginfo a successful waitid filled, so si_pid is set.
        children::reaped(unsafe { info.si_pid() });
    }
}
