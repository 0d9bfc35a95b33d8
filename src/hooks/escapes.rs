//! GREENIFY_ESCAPES=report|catch: the system calls that bypass the hooks.
//!
//! The runtime (runtime/escapes.rs) traps them with Syscall User Dispatch on every OS
//! thread that runs green threads; this file arms those threads, runs each trapped call
//! that may wait (`report`: as it is, counted per call site; `catch`: through the
//! `syscall()` hook, so it parks the green thread as the wrapper's hook would), keeps the
//! program's own SIGSYS action apart from greenify's handler, and prints the report at exit.

use super::stand_in::{Delivery, ProgramAction};
use super::{config, io, mode, syscall, APPLICATION};
use crate::config::Escapes;
use crate::real;
use crate::runtime::{self, escapes as sud};
use libc::{c_int, c_long, c_void, siginfo_t};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// Arms the calling OS thread (it runs green threads) if GREENIFY_ESCAPES asks; a kernel
/// without Syscall User Dispatch gets one warning.
pub fn arm_this_thread() {
    let wanted = config().escapes;
    if wanted == Escapes::Off {
        return;
    }
    static FIRST: AtomicBool = AtomicBool::new(true);
    if FIRST.swap(false, SeqCst) {
        // The program's SIGSYS action so far becomes the one greenify's handler forwards to.
        // SAFETY: an all-zero sigaction is valid to read into.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the current action.
        if unsafe { real::sigaction(libc::SIGSYS, std::ptr::null(), &mut old) } == 0 {
            set_program_action(&old);
        }
    }
    if let Err(e) = sud::arm_this_thread(dispatch, forward, wanted == Escapes::Catch) {
        ::log::warn!("GREENIFY_ESCAPES: Syscall User Dispatch is unavailable ({e:?}); escapes are not watched");
    }
}

/// In a forked child: the counts were the parent's, and the arming (not inherited) is
/// made again if the child's thread runs green threads.
pub fn after_fork_child(green: bool) {
    sud::forget();
    if green {
        arm_this_thread();
    }
}

/// A trapped call that may wait, outside the SIGSYS handler: counted, then made as it is
/// (`report`) or as the `syscall()` hook makes it (`catch`; there the calls that close an
/// fd go through their hooks too). Answers as the kernel does.
fn dispatch(nr: i64, args: [i64; 6], site: usize, stack: usize) -> i64 {
    // greenify's code and the libc functions it calls run untrapped.
    sud::set_blocking(false);
    let errno = runtime::errno::get();
    let catching = config().escapes == Escapes::Catch;
    let id = runtime::sched::current_id();
    // A call a hook passes on to libc inside a caught one is greenify's, not an escape.
    let outer = !catching || sud::begin_catch(id);
    if outer && sud::is_blocking(nr, &args) {
        sud::count(nr, site, stack);
    }
    let [a1, a2, a3, a4, a5, a6] = args.map(|a| a as c_long);
    // SAFETY: the program's call, with its arguments as the kernel would take them.
    let r = unsafe {
        if catching && outer {
            let fd = |a: c_long| a as c_int;
            let r = match nr {
                // The fd table forgets what it knew of a closed fd.
                libc::SYS_close => c_long::from(io::close(fd(a1))),
                libc::SYS_close_range => c_long::from(io::close_range(a1 as _, a2 as _, fd(a3))),
                libc::SYS_dup2 => c_long::from(io::dup2(fd(a1), fd(a2))),
                libc::SYS_dup3 => c_long::from(io::dup3(fd(a1), fd(a2), fd(a3))),
                _ => syscall::syscall(nr, a1, a2, a3, a4, a5, a6),
            };
            sud::end_catch(id);
            r
        } else {
            syscall::pass_through(nr, [a1, a2, a3, a4, a5, a6])
        }
    };
    let r = if r == -1 {
        -i64::from(runtime::errno::get())
    } else {
        r
    };
    runtime::errno::set(errno);
    sud::set_blocking(mode() == APPLICATION);
    r
}

/// Dispatch off for an exec by a thread that runs green threads (the kernel keeps it across
/// exec, where nothing would handle its SIGSYS); on again when dropped (the exec failed).
pub struct Exec(bool);

pub fn exec() -> Exec {
    let armed = sud::armed_here() && runtime::sched::is_active();
    if armed {
        sud::before_exec();
    }
    Exec(armed)
}

impl Drop for Exec {
    fn drop(&mut self) {
        if self.0 {
            sud::exec_failed();
        }
    }
}

// ---- the program's SIGSYS ----

static PROGRAM: ProgramAction = ProgramAction::new();

/// For the sigaction hook: if greenify's SIGSYS handler is installed, puts the program's
/// action in `current` and says so; the hook then records a new one with
/// [`set_program_action`] instead of installing it.
pub fn program_action(sig: c_int, current: &mut libc::sigaction) -> bool {
    if sig != libc::SIGSYS || !sud::armed() {
        return false;
    }
    PROGRAM.show(current);
    true
}

/// Records the program's SIGSYS action (see [`program_action`]).
pub fn set_program_action(action: &libc::sigaction) {
    PROGRAM.record(action);
}

/// Removes SIGSYS from a handler's mask once a thread is armed: a trap while it runs with
/// SIGSYS blocked would kill the process.
pub fn keep_sigsys_unblocked(mask: &mut libc::sigset_t) {
    // SAFETY: a sigset_t starts with the 64 bits the kernel uses.
    unsafe { *(mask as *mut libc::sigset_t).cast::<u64>() &= !sud::kept_unblocked() };
}

/// A SIGSYS that is not a trap (seccomp's, a kill): the program's action, as natively.
///
/// # Safety
/// The kernel's arguments to a SIGSYS handler.
unsafe fn forward(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let Delivery { handler, flags, .. } = PROGRAM.deliver();
    match handler {
        libc::SIG_IGN => {}
        libc::SIG_DFL | libc::SIG_ERR => {
            // The default action (the process dies): the signal comes again, pending until
            // the handler returns, with nothing to catch it. No trap may come after.
            sud::set_blocking(false);
            let action = [libc::SIG_DFL as u64, 0, 0, 0];
            // SAFETY: rt_sigaction to the default action; tgkill of this thread.
            unsafe {
                runtime::raw::syscall(
                    libc::SYS_rt_sigaction,
                    &[sig as usize, action.as_ptr() as usize, 0, 8],
                );
                let pid = rustix::process::getpid().as_raw_nonzero().get() as usize;
                let tid = rustix::thread::gettid().as_raw_nonzero().get() as usize;
                runtime::raw::syscall(libc::SYS_tgkill, &[pid, tid, sig as usize]);
            }
        }
        // SAFETY: the program's handler, installed with these flags, and the kernel's
        // arguments.
        f => unsafe { super::signal::call(f, flags, sig, info, context) },
    }
}

// ---- the report ----

/// Prints the escapes counted (one line per call site) where the stats line goes.
pub fn print_report() {
    if !sud::armed_here() {
        return;
    }
    // dladdr, which names the sites, is libc's.
    sud::set_blocking(false);
    let verb = match config().escapes {
        Escapes::Catch => "caught",
        _ => "escaped",
    };
    let out = crate::stats::output();
    // SAFETY: our copy of stderr (or fd 2), borrowed for each write.
    let out = unsafe { rustix::fd::BorrowedFd::borrow_raw(out) };
    let any = sud::write_report(verb, &mut |line| {
        let _ = rustix::io::write(out, line);
    });
    if !any {
        let _ = rustix::io::write(out, b"greenify escapes: none\n");
    }
}

/// Runs from `.fini_array`, after the program's atexit handlers.
extern "C" fn print_at_exit() {
    print_report();
}

#[used]
#[link_section = ".fini_array"]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;
