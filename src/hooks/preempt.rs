//! The preemption signal's handler, and the program's view of that signal (SIGURG).
//!
//! The monitor (runtime/monitor.rs) signals the worker when a green thread has run a
//! slice without a switch. The handler runs on the interrupted thread's own stack (not
//! SA_ONSTACK): the kernel's signal frame there keeps every register and the FPU state,
//! and `sigreturn` puts them back when the thread, switched away from inside the handler,
//! is resumed. It switches away only at a safe point: the thread runs the program's code
//! (greenify's mode says so, and the interrupted instruction is not in libc, the loader,
//! libgcc_s, the vDSO or greenify), not on the alternate signal stack, and the scheduler
//! agrees (no section of its own runs; the thread is on its stack with its own mask, so
//! no handler of the program's runs). Otherwise the handler returns at once and the
//! monitor tries again a little later; in libc, the loader or the unwinder, a dump that
//! waits is answered from there first (see `sched::answer_dump_here`). With the watchdog on, the handler first stores the
//! interrupted PC and stack pointer and the running thread for it (runtime/watchdog.rs);
//! with `GREENIFY_SLICE_MS=0` that is all it does with greenify's signal. The same
//! signal carries a dump's look at the thread, from the worker that answers it
//! (runtime/sched/look.rs): the handler records its registers and stands still.
//!
//! The program sees SIGURG as natively: `sigaction` reports and records its action while
//! greenify's handler stands in, and a SIGURG that is not greenify's (told apart by its
//! siginfo, see `monitor::is_preemption_signal`) runs the program's handler as the kernel
//! would (its sa_mask and the signal blocked, SA_RESETHAND honoured), or nothing if the
//! program left SIGURG at its default or ignored it (SIGURG's default is to ignore).

use super::stand_in::{Delivery, ProgramAction};
use crate::real;
use crate::runtime::{self, monitor};
use libc::{c_int, c_void, siginfo_t, ucontext_t};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};

/// The program's action for SIGURG while greenify's handler stands in.
static PROGRAM: ProgramAction = ProgramAction::new();
/// greenify's handler is installed (inherited by a child of fork, like the handler).
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// SIGURGs whose handling ran no handler of the program's: greenify's own, and the
/// program's while it ignores SIGURG (see [`absorbed`]).
static ABSORBED: AtomicU64 = AtomicU64::new(0);

/// How many SIGURGs ran no handler of the program's so far. Natively neither kind ends a
/// call (greenify's does not exist, an ignored signal is discarded when sent); here the
/// handler ends a wait in the kernel that is not restarted with EINTR, so a hook that sees
/// EINTR while this moved and no handler of the program's ran makes its call again (see
/// hooks::blocking::uninterrupted).
pub fn absorbed() -> u64 {
    ABSORBED.load(SeqCst)
}

/// A green thread was created: the first one starts the monitor (unless
/// `GREENIFY_SLICE_MS=0` and no `GREENIFY_WATCHDOG`).
pub fn thread_spawned() {
    if monitor::started() {
        return;
    }
    let config = super::config();
    if config.slice.is_none() && config.watchdog.is_none() {
        return;
    }
    let Some((worker, tag)) = runtime::sched::watched() else {
        return;
    };
    install();
    runtime::watchdog::set_output(crate::stats::output());
    monitor::start(
        config.slice,
        config.watchdog,
        on_signal as *const () as usize,
        monitor::Calls {
            in_program,
            hand_off: runtime::sched::hand_off,
            take_next: runtime::sched::take_next,
            in_section: runtime::sched::in_section,
        },
        worker,
        tag,
    );
}

/// Runs from `.fini_array`: the watchdog's sites seen again after their report.
extern "C" fn watchdog_at_exit() {
    if super::config().watchdog.is_some() && monitor::started() {
        runtime::watchdog::write_repeats();
    }
}

#[used]
#[link_section = ".fini_array"]
static WATCHDOG_AT_EXIT: extern "C" fn() = watchdog_at_exit;

/// Whether the worker registered with `tag` (its scheduler word) runs the program's code
/// (read by the monitor).
fn in_program(tag: usize) -> bool {
    runtime::sched::hook_mode(tag).load(Relaxed) == super::APPLICATION
}

/// Installs greenify's handler unless the kernel has it already. Marked installed only once
/// it is: a thread may fork meanwhile on another worker (the first thread's first act,
/// while the first spawn is still here), and a child that inherited the mark without the
/// handler never preempted a thread (2 runs in 2,000 of a fork case under load hung
/// with the forking thread spinning). A child that inherited the handler without the mark
/// finds it in place.
fn install() {
    if INSTALLED.load(SeqCst) {
        return;
    }
    // SAFETY: zeroed sigactions are valid values; the real sigaction reads and writes them.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if real::sigaction(monitor::SIGNAL, std::ptr::null(), &mut old) != 0 {
            return;
        }
        if old.sa_sigaction != on_signal as *const () as usize {
            set_program_action(&old);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_NODEFER;
            libc::sigemptyset(&mut act.sa_mask);
            if real::sigaction(monitor::SIGNAL, &act, std::ptr::null_mut()) != 0 {
                return;
            }
        }
        INSTALLED.store(true, SeqCst);
    }
}

/// For the sigaction hook: if greenify's handler stands in for `sig` (`current` is what
/// the kernel has), puts the program's action in `current` and says so; the hook then
/// records a new action with [`set_program_action`] instead of installing it.
pub fn program_action(sig: c_int, current: &mut libc::sigaction) -> bool {
    if sig != monitor::SIGNAL || current.sa_sigaction != on_signal as *const () as usize {
        return false;
    }
    PROGRAM.show(current);
    true
}

/// Records the program's action for the preemption signal (see [`program_action`]).
pub fn set_program_action(action: &libc::sigaction) {
    PROGRAM.record(action);
}

extern "C" fn on_signal(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // First: a nudge may come from here on, nested (SA_NODEFER; see sched/nudge.rs).
    let frame = runtime::sched::Frame::enter();
    let entered = runtime::overflow::handler_os_thread();
    let saved = runtime::errno::get();
    // SAFETY: the kernel's arguments for this handler.
    match unsafe { take(sig, info, context) } {
        // SAFETY: the kernel's context for this handler, whose mask its sigreturn sets.
        Taken::Done => unsafe { super::signal::leave(frame, context, None) },
        Taken::Forward { ours, requested } => {
            // In the program's code, the program's handler or a switch away may run now,
            // in the context interrupted (whose mask is then its thread's own); in
            // greenify's, the handler returns to it.
            let frame = if !ours || super::mode() == super::APPLICATION {
                frame.forget();
                None
            } else {
                Some(frame)
            };
            // SAFETY: the kernel's arguments.
            if ours || !unsafe { forward(sig, info, context) } {
                ABSORBED.fetch_add(1, SeqCst);
            }
            if ours && super::config().watchdog.is_some() && super::mode() == super::APPLICATION {
                // SAFETY: the kernel's context for this handler.
                if let Some(context) = unsafe { context.cast::<ucontext_t>().as_ref() } {
                    let (pc, sp, _) = interrupted(context);
                    runtime::watchdog::sample(pc, sp, runtime::sched::running_identity());
                }
            }
            // With GREENIFY_SLICE_MS=0 the signal only ever comes from the watchdog.
            if (ours || requested) && super::config().slice.is_some() {
                // SAFETY: the kernel's context for this handler.
                unsafe { preempt(context.cast()) };
            }
            if let Some(frame) = frame {
                // SAFETY: the kernel's context for this handler.
                unsafe { super::signal::leave(frame, context, None) };
            }
        }
    }
    // A thread switched away (preempted, or in the program's handler) may be back on
    // another worker.
    // SAFETY: the kernel's context for this handler.
    unsafe { runtime::overflow::altstack_follows(context, entered) };
    runtime::errno::set(saved);
}

/// What the preemption signal's handler does after its first look.
enum Taken {
    /// It was a request of greenify's own, a nudge, or the program's signal kept for
    /// later: the handler returns.
    Done,
    /// It goes to the program's handler (not `ours`) and may preempt (`ours`, or a
    /// program's signal that carried a request).
    Forward { ours: bool, requested: bool },
}

/// # Safety
/// The kernel's arguments for this handler.
unsafe fn take(sig: c_int, info: *mut siginfo_t, context: *mut c_void) -> Taken {
    // SAFETY: the kernel's siginfo for this handler.
    if unsafe { super::control::take_request(info) } {
        ABSORBED.fetch_add(1, SeqCst);
        return Taken::Done;
    }
    // A look or a nudge merges with any other SIGURG pending for this OS thread (the
    // kernel keeps one instance of a standard signal; the monitor's retries came every
    // millisecond at a thread in libc and a look waited for nothing): every handler
    // answers a look that waits, and a look's settles a nudge too.
    // SAFETY: the kernel's context for this handler.
    let looked = unsafe { answer_look(context) };
    // SAFETY: the kernel's siginfo for this handler.
    if unsafe { crate::runtime::held::is_nudge(info) || runtime::sched::is_look(info) } {
        // Another worker may ask this OS thread to change its mask (see sched/nudge.rs).
        // SAFETY: the kernel's context for this handler, whose mask its sigreturn sets.
        if let Some(mask) = unsafe { super::signal::context_mask(context) } {
            runtime::sched::settle_nudge(mask);
        }
        ABSORBED.fetch_add(1, SeqCst);
        return Taken::Done;
    }
    if looked {
        // The handler goes on (it may switch away, or run the program's handler): the
        // signal the look blocked is open again.
        monitor::sigprocmask(libc::SIG_UNBLOCK, &(1 << (monitor::SIGNAL - 1)));
    }
    // SAFETY: the kernel's siginfo for this handler.
    let ours = unsafe { monitor::is_preemption_signal(info) };
    // SAFETY: the kernel's siginfo for this handler.
    if !ours && unsafe { kept_pending(sig, info) } {
        ABSORBED.fetch_add(1, SeqCst);
        return Taken::Done;
    }
    // A SIGURG of the program's that arrived while ours was pending carries the request.
    let requested = runtime::sched::watched().is_some_and(|(w, _)| monitor::take_request(w));
    Taken::Forward { ours, requested }
}

/// A dump answered on another worker may wait for the thread interrupted here to stand
/// still (runtime/sched/look.rs); says whether it did (SIGURG is blocked then).
///
/// # Safety
/// `context` is the kernel's context for this handler.
unsafe fn answer_look(context: *mut c_void) -> bool {
    // SAFETY: the caller's.
    let pc = unsafe { context.cast::<ucontext_t>().as_ref() }.map(|c| interrupted(c).0);
    let in_program = pc.is_some() && super::mode() == super::APPLICATION;
    runtime::sched::stand_still(in_program, pc.unwrap_or(0))
}

/// The program's own SIGURG, for a thread that blocks it (its target, or every thread for
/// one sent to the process): greenify keeps the signal open on every OS thread (for
/// preemption), so the kernel never keeps it pending; greenify's records do, where
/// whichever worker runs its taker later sees it (runtime/kept_pending.rs). Says whether
/// it is kept so; if not, the trampoline routes it to a thread that accepts it.
///
/// Only in the program's code may the handler read the threads' masks (see
/// `sched::kept_signal_taker`). Elsewhere the scheduler decides as it hands out the
/// delivery that the trampoline posts (see sched/signals.rs `keeps_pending`); if the
/// program's action is not a function there is no trampoline, and the handler keeps the
/// signal unsettled and posts the delivery itself.
///
/// # Safety
/// `info` is the kernel's siginfo for this handler.
unsafe fn kept_pending(sig: c_int, info: *const siginfo_t) -> bool {
    use runtime::kept_pending::{park, Owner};
    use runtime::sched::KeptTaker;
    // SAFETY: the caller's, read.
    let target = unsafe { super::signal::mark_of(info) };
    let decided = if super::mode() == super::APPLICATION {
        runtime::sched::kept_signal_taker(sig as u32, target)
    } else {
        None
    };
    let owner = match decided {
        Some(KeptTaker::Pending(owner)) => owner,
        Some(KeptTaker::Accepting) => return false,
        None if program_runs_a_function() => return false,
        None => Owner::Unsettled(target),
    };
    // SAFETY: the caller's, copied; the mark is the record's owner now. A full table
    // leaves it to the trampoline, whose delivery waits until its thread unblocks it.
    if !park(owner, &super::signal::unmarked(unsafe { *info })) {
        return false;
    }
    if let Owner::Unsettled(target) = owner {
        runtime::interrupt::post(sig as u32, target, false, true);
    }
    true
}

/// Whether the program's action for SIGURG is a function (the trampoline, by then).
fn program_runs_a_function() -> bool {
    // SAFETY: an all-zero sigaction is a valid value to show the action in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    PROGRAM.show(&mut action);
    super::signal::is_function(action.sa_sigaction)
}

/// Switches away from the interrupted thread if it is at a safe point (module doc).
unsafe fn preempt(context: *const ucontext_t) {
    if super::mode() == super::LIBRARY {
        // Inside a hooked call: a thread that calls one that never waits in a loop (a
        // close of a closed fd, a trylock) is almost always there when the signal comes.
        // The mark is its worker's: with several, another worker's thread must not take it.
        if let Some((worker, _)) = runtime::sched::watched() {
            worker.defer_to_return();
        }
        return;
    }
    if super::mode() != super::APPLICATION || context.is_null() {
        return;
    }
    // SAFETY: the kernel's context: the interrupted registers and signal mask.
    let (pc, sp, mask) = unsafe { interrupted(&*context) };
    if monitor::on_signal_stack() {
        return;
    }
    if monitor::in_excluded_code(pc) {
        if !monitor::in_own_code(pc) {
            // As greenify's code (a signal that comes meanwhile waits as in any hook),
            // without a hook's step aside as it returns: not here.
            super::set_mode(super::LIBRARY);
            runtime::sched::answer_dump_here(sp, mask);
            super::set_mode(super::APPLICATION);
        }
        return;
    }
    let Some(_green) = super::enter() else { return };
    if runtime::sched::preempt(sp, mask) {
        if let Some((worker, _)) = runtime::sched::watched() {
            monitor::preempted(worker);
        }
    }
}

/// As a hooked call returns to the program: steps aside if a preemption signal came
/// during the call on this worker (one load otherwise).
#[inline]
pub fn step_aside_if_due() {
    if monitor::at_return_pending() {
        step_aside_if_marked();
    }
}

#[inline(never)]
fn step_aside_if_marked() {
    let Some((worker, _)) = runtime::sched::watched() else {
        return;
    };
    if worker.take_at_return() && runtime::sched::preempt_at_return() {
        monitor::preempted(worker);
    }
}

/// The interrupted program counter, stack pointer and signal mask.
fn interrupted(context: &ucontext_t) -> (usize, usize, u64) {
    // SAFETY: a sigset_t starts with the 64 bits the kernel uses.
    let mask = unsafe { *(&context.uc_sigmask as *const libc::sigset_t).cast::<u64>() };
    #[cfg(target_arch = "x86_64")]
    let (pc, sp) = (
        context.uc_mcontext.gregs[libc::REG_RIP as usize] as usize,
        context.uc_mcontext.gregs[libc::REG_RSP as usize] as usize,
    );
    #[cfg(target_arch = "aarch64")]
    let (pc, sp) = (
        context.uc_mcontext.pc as usize,
        context.uc_mcontext.sp as usize,
    );
    (pc, sp, mask)
}

/// Runs the program's action for a SIGURG that is not greenify's, as the kernel would;
/// says whether that ran a handler.
unsafe fn forward(sig: c_int, info: *mut siginfo_t, context: *mut c_void) -> bool {
    let Delivery {
        handler,
        flags,
        mask,
    } = PROGRAM.deliver();
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN || handler == libc::SIG_ERR {
        // SIGURG's default action is to ignore it.
        return false;
    }
    let mut block = mask;
    if flags & libc::SA_NODEFER == 0 {
        block |= 1 << (sig - 1);
    }
    let previous = monitor::sigprocmask(libc::SIG_BLOCK, &block);
    // SAFETY: the program's handler, installed with these flags, and the kernel's arguments.
    unsafe { super::signal::call(handler, flags, sig, info, context) };
    monitor::sigprocmask(libc::SIG_SETMASK, &previous);
    true
}
