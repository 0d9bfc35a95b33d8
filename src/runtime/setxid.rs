//! glibc's setxid broadcast (the set*id family and `setgroups`) with green TCBs.
//!
//! Credentials belong to each OS thread, so glibc's set*id functions (`__nptl_setxid`)
//! mark every thread descriptor on its thread lists except the caller's (`THREAD_SELF`),
//! send the OS thread of each (its `tid`) SIGSETXID, and wait until every handler ran;
//! the handler makes the call on its OS thread and clears the mark of `THREAD_SELF`. The
//! caller signals again each descriptor still marked until a round signals none, then
//! makes the call itself. When green threads have TCBs of their own, `THREAD_SELF` names
//! the green thread, not the OS thread:
//! - a handler cleared the mark of the green TCB installed where it ran, the OS thread's
//!   own descriptor stayed marked, and the caller signalled it for ever (setgid from a
//!   thread hung with 2 workers or `GREENIFY_TLS=on`);
//! - MAIN, whose TCB is the first OS thread's descriptor, running on another worker:
//!   glibc skipped the first OS thread (its credentials stayed) and signalled the
//!   caller's own, whose handler then cleared MAIN's mark instead.
//!
//! So greenify's handler stands in front of glibc's (put there by the first set*id call
//! after glibc installed its own, at the first OS thread started: [`run`]) and installs
//! the OS thread's own descriptor around it ([`on_setxid`]); and a caller whose TCB is
//! another OS thread's descriptor (MAIN away from the first worker) makes the call with
//! its own OS thread's installed. A green thread's TCB is never marked (its EXITING bit,
//! tcb.rs), so the OS thread of a green caller is signalled like any other and makes the
//! call in the handler, before the caller makes it again: the same request twice on one
//! OS thread, which the kernel answers the same way the second time (a request allowed
//! from the old credentials is allowed from the new ones it made, one refused is refused
//! again), as glibc's check that all threads agree requires.

use super::{errno, escapes, os_thread, raw, sched, tcb};
use libc::{c_int, c_void, siginfo_t};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

/// glibc's SIGSETXID.
const SIGSETXID: usize = 33;
const SIG_IGN: usize = 1;

/// glibc's handler (0 until greenify's stands in front of it).
static GLIBC_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// The kernel's `struct sigaction` on x86_64: handler, flags, restorer, mask.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct KernelAction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Runs `call` (glibc's set*id function, or `initgroups`) for the calling thread and
/// returns its result and the errno it left.
pub fn run(call: impl FnOnce() -> c_int) -> (c_int, i32) {
    stand_in_front_of_glibc();
    let Some(own) = sched::os_thread_tcb_if_lent() else {
        let ret = call();
        return (ret, errno::get());
    };
    // MAIN on another worker: the calling OS thread's own descriptor, which only this OS
    // thread ever installs, for the call (glibc reads it as the caller's, and leaves its
    // errno there).
    let lent = os_thread::thread_pointer();
    tcb::set_thread_pointer_as_is(own);
    let ret = call();
    let e = errno::get();
    tcb::set_thread_pointer_as_is(lent);
    (ret, e)
}

/// Puts [`on_setxid`] in front of glibc's handler, once glibc installed that (at its
/// first thread start; again in a forked child that starts one). Before that, glibc's
/// set*id functions only make their own call: the process has one OS thread.
fn stand_in_front_of_glibc() {
    let mut action = KernelAction::default();
    // SAFETY: reads the action into `action`, with an 8-byte mask.
    let r = unsafe {
        raw::syscall(
            libc::SYS_rt_sigaction,
            &[SIGSETXID, 0, &mut action as *mut KernelAction as usize, 8],
        )
    };
    let ours = on_setxid as *const () as usize;
    if r != 0 || action.handler == ours || action.handler <= SIG_IGN {
        return;
    }
    GLIBC_HANDLER.store(action.handler, SeqCst);
    // Every signal but SIGSYS (escapes.rs' traps, which libc's restorer may make) waits
    // while it runs: another of greenify's handlers would find the worker through the
    // descriptor installed, which on the first OS thread may be MAIN's while MAIN runs
    // on another worker.
    let wrapped = KernelAction {
        handler: ours,
        mask: !(1 << (libc::SIGSYS - 1)),
        ..action
    };
    // SAFETY: as above; glibc's flags (SA_SIGINFO among them) and restorer are kept.
    unsafe {
        raw::syscall(
            libc::SYS_rt_sigaction,
            &[SIGSETXID, &wrapped as *const KernelAction as usize, 0, 8],
        )
    };
}

/// SIGSETXID: glibc's handler, on the OS thread's own descriptor (which it reads as
/// `THREAD_SELF`, to clear its mark). glibc's handler touches only that descriptor's
/// setxid words (no errno), so it may run while MAIN, whose descriptor the first OS
/// thread's is, runs elsewhere.
extern "C" fn on_setxid(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let glibc = GLIBC_HANDLER.load(SeqCst);
    if glibc == 0 {
        return;
    }
    // Found through the TCB installed now, before another is.
    let selector = escapes::allow_here();
    let here = os_thread::thread_pointer();
    let own = sched::os_thread_tcb().map_or(here, |tcb| tcb as usize);
    if own != here {
        tcb::set_thread_pointer_as_is(own);
    }
    // SAFETY: glibc's SA_SIGINFO handler, called with the kernel's arguments.
    unsafe {
        let glibc: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            std::mem::transmute::<usize, _>(glibc);
        glibc(sig, info, context);
    }
    if own != here {
        tcb::set_thread_pointer_as_is(here);
    }
    escapes::restore_selector(selector);
}
