//! Signal handlers and the calls that wait for signals.
//!
//! The program's handlers are wrapped: the kernel runs our trampoline, which notes that a
//! handler ran (so that a parked green thread returns EINTR, or restarts under
//! SA_RESTART, as the thread the kernel chose would have; see runtime/interrupt.rs) and
//! then calls the program's handler with the arguments the kernel gave. `sigaction`
//! reports the program's own handler and flags back, never the trampoline.
//!
//! A handler runs in the green thread the kernel would have chosen, on that thread's own
//! stack, so that it may siglongjmp back into the thread's frames: at once if that thread
//! is running the program's code (and always for a fault, which belongs to the code that
//! caused it); otherwise the signal is *delivered*: the chosen thread is woken and runs
//! the handler when it leaves its wait or greenify's code (see [`run_delivered`]).

use super::blocking::{close_own, own_fd, uninterrupted, wait_for, Remaining, Tried, Waits};
use super::{enter, fail};
use crate::real;
use crate::runtime::{self, held, interrupt, Interest, Reason, Wake};
use libc::{c_int, c_void, siginfo_t, sigset_t, timespec, ucontext_t};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

const NSIG: usize = 65;

/// The program's handler and flags, per signal, while the trampoline stands in for it.
static HANDLERS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static FLAGS: [AtomicI32; NSIG] = [const { AtomicI32::new(0) }; NSIG];
/// Their sa_mask (kernel bits): blocked while a delivered handler runs.
static MASKS: [AtomicU64; NSIG] = [const { AtomicU64::new(0) }; NSIG];
/// Signals whose `signal()` handlers must not restart calls (siginterrupt).
static INTERRUPTING: AtomicU64 = AtomicU64::new(0);
/// Handlers run so far (sigsuspend checks whether one ran while it changed the mask).
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// The siginfo and context of the latest signal of each number whose handler waits to
/// be delivered (a second one of the same number before that replaces it, as standard
/// signals merge natively).
struct Saved(UnsafeCell<[MaybeUninit<(siginfo_t, ucontext_t)>; NSIG]>);

// SAFETY: a trampoline writes a standard signal's (a second one arriving during the
// delivery's read only makes the copy mixed, as a second instance would natively); a
// real-time signal's is written only by its slot's holder (see runtime/held.rs). The
// delivery reads it before it frees the slot.
unsafe impl Sync for Saved {}

static SAVED: Saved = Saved(UnsafeCell::new([const { MaybeUninit::zeroed() }; NSIG]));

extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // First: a nudge may come from here on (see sched/nudge.rs).
    let frame = runtime::sched::Frame::enter();
    let entered = runtime::overflow::handler_os_thread();
    match route(sig, info, context) {
        Route::Return { hold } => {
            // SAFETY: the kernel's context, whose mask its sigreturn sets.
            unsafe { leave(frame, context, hold.then_some(sig)) };
        }
        Route::RunHandler(handler, flags) => {
            // The handler runs in the interrupted thread, with the thread's mask.
            frame.forget();
            // The kernel has given the OS thread the handler's mask: it is the running
            // green thread's while the handler runs, even if it waits and others run
            // meanwhile.
            let mut mark = 0;
            let frame = runtime::handler::mark(&mut mark);
            let recorded = runtime::sched::enter_handler(None, frame).is_some();
            // SAFETY: the program's handler with the kernel's arguments.
            unsafe { call(handler, flags, sig, info, context) };
            runtime::handler::unmark(&mut mark);
            if recorded {
                // SAFETY: the kernel's context, whose mask its sigreturn sets.
                let restored = kernel_mask(unsafe { &(*context.cast::<ucontext_t>()).uc_sigmask });
                handler_returned(restored, true);
            }
            // The handler may have waited, and its thread may run on another worker now.
            // SAFETY: the kernel's context for this handler.
            unsafe { runtime::overflow::altstack_follows(context, entered) };
        }
    }
}

/// What the trampoline does after routing a signal.
enum Route {
    /// Returns at once; `hold`: keeping the signal blocked on this OS thread (a
    /// real-time signal whose next instances wait in its kernel queue, see
    /// runtime/held.rs).
    Return { hold: bool },
    /// Runs the program's handler (and flags) here, now.
    RunHandler(usize, c_int),
}

/// Hands the signal to the thread that takes it, or says to run its handler here.
fn route(sig: c_int, info: *mut siginfo_t, context: *mut c_void) -> Route {
    let i = sig as usize;
    let (handler, flags) = (HANDLERS[i].load(SeqCst), FLAGS[i].load(SeqCst));
    // First, before any system call: a real-time signal's place in line, in the order
    // the OS threads took its instances (see runtime/held.rs).
    let queued = is_function(handler) && held::is_queued(sig as u32);
    let ticket = queued.then(|| held::Ticket::take(sig as u32)).flatten();
    // SAFETY: the kernel's siginfo, ours to change.
    let target = unsafe { take_mark(info) }
        .or_else(|| timer_target(info))
        // SAFETY: the kernel's siginfo (or NULL), not changed while this reads it.
        .or_else(|| runtime::sched::sent_to_main_tid(unsafe { info.as_ref() }));
    let restart = flags & libc::SA_RESTART != 0;
    HANDLED.fetch_add(1, SeqCst);
    // A real-time signal's instance waits behind older ones (a full line has some).
    let behind = queued && ticket.as_ref().is_none_or(held::Ticket::behind_others);
    let waits = is_function(handler) && (behind || must_wait(sig, info, target));
    if waits {
        // A signal this OS thread sent itself outside the hooks (raise) while the running
        // thread blocked it, unblocked now inside a hooked call (sigsuspend): natively it
        // was pending on that thread, so it is that thread's.
        let target = target.or_else(|| {
            raised_here(info)
                .then(runtime::sched::current_for_signal)
                .flatten()
        });
        // SAFETY: the kernel's siginfo, copied.
        let copy = unsafe { *info };
        if let Some(ticket) = ticket {
            ticket.wait(held::Instance {
                info: copy,
                target,
                restart,
            });
            hand_on(sig, context);
            return Route::Return { hold: false };
        }
        if queued {
            // Its line is full: it waits in the kernel (lost if the kernel's queue is
            // full too).
            let hold = held::put_back(sig as u32, &marked(copy, target));
            return Route::Return { hold };
        }
        let _saving = held::Saving::start();
        held::take_slot(sig as u32);
        // SAFETY: the kernel's siginfo and context for this handler; our own slot (the
        // next instance of a standard signal merges into it, as natively).
        unsafe {
            (*SAVED.0.get())[i].write((copy, *context.cast::<ucontext_t>()));
        }
        if interrupt::post(sig as u32, target, restart, true) {
            return Route::Return { hold: false };
        }
        held::free_slot(sig as u32);
    } else if !(is_function(handler) && runtime::sched::is_active()) {
        // A handler that runs here, now, on the scheduler's OS thread runs in the running
        // green thread, the kernel's choice: no parked thread is interrupted, and nothing
        // is posted. (Untargeted, the masks chose a thread later, while this one's mask
        // blocked the signal for its handler: a thread parked in a read got EINTR.
        // Targeted at this thread, it interrupted nothing, but a thread that never parks
        // filled the queue with such entries; a delivery that could merge with none then
        // ran its handler at once, inside the scheduler section the signal interrupted.)
        interrupt::post(sig as u32, target, restart, false);
    }
    if let Some(ticket) = ticket {
        // It runs here, now: the instances behind it go on.
        ticket.pass();
        hand_on(sig, context);
    }
    if is_function(handler) {
        Route::RunHandler(handler, flags)
    } else {
        Route::Return { hold: false }
    }
}

/// Hands the next instance in the line of real-time signal `sig` to its delivery if its
/// slot is free (see runtime/held.rs): saved with `context`, the kernel's for the
/// trampoline running, or NULL outside one (the context saved last stays: a delivered
/// handler's context is never its thread's own).
fn hand_on(sig: c_int, context: *mut c_void) {
    held::pump(sig as u32, |instance| {
        // SAFETY: the slot of `sig`, which `pump` took for us; the context is the kernel's
        // (or NULL), the slot zeroed or written before.
        unsafe {
            let slot = (*SAVED.0.get())[sig as usize].as_mut_ptr();
            (*slot).0 = instance.info;
            if let Some(context) = context.cast::<ucontext_t>().as_ref() {
                (*slot).1 = *context;
            }
        }
        interrupt::post(sig as u32, instance.target, instance.restart, true)
    });
}

/// Timers whose signal names a green thread (timer_create with SIGEV_THREAD_ID): the
/// kernel's timer id + 1 in the high half, the green thread in the low; 0: free. Read by
/// the trampoline, so lock-free.
static THREAD_TIMERS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

/// Sends the signals of kernel timer `timer` to green thread `target` (None: as the
/// kernel routes them). False if too many timers name green threads already.
pub fn route_timer(timer: i32, target: Option<u32>) -> bool {
    let key = (timer as u32 as u64 + 1) << 32;
    for slot in &THREAD_TIMERS {
        if slot.load(SeqCst) & !0xFFFF_FFFF == key {
            slot.store(0, SeqCst);
        }
    }
    let Some(target) = target else { return true };
    let entry = key | u64::from(target);
    THREAD_TIMERS
        .iter()
        .any(|slot| slot.compare_exchange(0, entry, SeqCst, SeqCst).is_ok())
}

/// The green thread a timer's signal names, if it does.
fn timer_target(info: *const siginfo_t) -> Option<u32> {
    if info.is_null() {
        return None;
    }
    // SAFETY: the kernel's siginfo; for SI_TIMER its union starts with the timer id
    // (`si_timerid`, at offset 16 on every 64-bit Linux).
    let timer = unsafe {
        if (*info).si_code != libc::SI_TIMER {
            return None;
        }
        *info.cast::<u8>().add(16).cast::<i32>()
    };
    let key = (timer as u32 as u64 + 1) << 32;
    THREAD_TIMERS.iter().find_map(|slot| {
        let entry = slot.load(SeqCst);
        (entry & !0xFFFF_FFFF == key).then_some(entry as u32)
    })
}

/// Whether a signal came from this process's tgkill of this OS thread (raise).
fn raised_here(info: *const siginfo_t) -> bool {
    // SAFETY: the kernel's siginfo (SA_SIGINFO is always set for the trampoline); si_pid
    // is meaningful for SI_TKILL.
    !info.is_null()
        && unsafe {
            (*info).si_code == libc::SI_TKILL
                && (*info).si_pid() == rustix::process::getpid().as_raw_nonzero().get()
        }
}

/// Calls the program's handler as the kernel would.
pub(super) unsafe fn call(
    handler: usize,
    flags: c_int,
    sig: c_int,
    info: *mut siginfo_t,
    context: *mut c_void,
) {
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this as an SA_SIGINFO handler.
        let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, context);
    } else {
        // SAFETY: the program installed this as a plain handler.
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// Whether the handler of a signal that just arrived must wait to be delivered to its
/// green thread (see the module's comment) instead of running here, now.
fn must_wait(sig: c_int, info: *const siginfo_t, target: Option<u32>) -> bool {
    // A fault belongs to the code that caused it (and happens again if not handled).
    const FAULTS: [c_int; 6] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];
    let code = if info.is_null() {
        0
    } else {
        // SAFETY: the kernel's siginfo (SA_SIGINFO is always set for the trampoline).
        unsafe { (*info).si_code }
    };
    let from_kernel = code > 0;
    if !runtime::sched::is_active() || (FAULTS.contains(&sig) && from_kernel) {
        return false;
    }
    match super::mode() {
        // greenify's own code runs (the scheduler, or a hook): never the place.
        super::LIBRARY => true,
        // A tgkill of this OS thread made outside greenify's hooks (raise) is the running
        // thread's; the program's pthread_kill names its target through the hook.
        super::APPLICATION => {
            target.is_some()
                || (code != libc::SI_TKILL && !runtime::sched::signal_is_for_current(sig as u32))
        }
        // Not a green OS thread.
        _ => false,
    }
}

/// Runs the handlers the current green thread must run (delivered signals), as the
/// kernel runs a handler: with its signal and sa_mask blocked in that thread's mask
/// (while it runs and while it waits), errno kept. Called where
/// the thread leaves a wait or a hooked call; a handler may siglongjmp out of it.
pub fn run_delivered() {
    let saved = super::errno();
    loop {
        runtime::sched::apply_interruptions();
        let due = runtime::sched::take_due_handlers();
        if due == 0 {
            // A slot freed with instances behind it, but by none that hands them on (see
            // held::recount): their deliveries are posted, and run in the next round if
            // theirs.
            let (in_line, mut handed) = (held::in_line(), false);
            for sig in 32..NSIG {
                if in_line & (1 << (sig - 1)) != 0 && !held::slot_taken(sig as u32) {
                    hand_on(sig as c_int, std::ptr::null_mut());
                    handed |= held::slot_taken(sig as u32);
                }
            }
            if handed {
                continue;
            }
            if held::release() {
                // The next instances of real-time signals whose handlers ran come in
                // (the trampoline saves one each), and run in the next round if theirs;
                // those another worker's OS thread holds come in there.
                runtime::sched::reapply_mask();
                runtime::sched::nudge_holders();
                continue;
            }
            break;
        }
        for sig in 1..NSIG {
            if due & (1 << (sig - 1)) != 0 {
                run_one_delivered(sig);
            }
        }
    }
    super::set_errno(saved);
}

fn run_one_delivered(sig: usize) {
    let (handler, flags) = (HANDLERS[sig].load(SeqCst), FLAGS[sig].load(SeqCst));
    // SAFETY: written before this delivery was posted; copied out first, as another
    // signal of this number may replace it while the handler runs.
    let (mut info, mut context) = unsafe { (*SAVED.0.get())[sig].assume_init_read() };
    held::free_slot(sig as u32);
    // The next instance in line, if a real-time signal's, is delivered after this one.
    hand_on(sig as c_int, std::ptr::null_mut());
    if !is_function(handler) {
        return;
    }
    let mut block = MASKS[sig].load(SeqCst);
    if flags & libc::SA_NODEFER == 0 {
        block |= 1 << (sig - 1);
    }
    // The thread's mask while the handler runs (and waits), as the kernel sets it; its
    // context holds the mask to go back to, as a kernel signal frame does.
    let mut mark = 0;
    let frame = runtime::handler::mark(&mut mark);
    let before = runtime::sched::enter_handler(Some(block), frame);
    if let Some(before) = before {
        context.uc_sigmask = to_sigset(before);
    }
    super::run_application(|| {
        let context = (&mut context as *mut ucontext_t).cast();
        // SAFETY: the program's handler, with copies of the kernel's arguments.
        unsafe { call(handler, flags, sig as c_int, &mut info, context) };
    });
    runtime::handler::unmark(&mut mark);
    if before.is_some() {
        handler_returned(kernel_mask(&context.uc_sigmask), false);
    }
}

/// A handler of the program's returned, to `mask` (see `sched::leave_handler`): a SIGURG of
/// the program's kept while the handler blocked it is delivered now that it may run, as
/// the kernel delivers a signal left pending by a handler's mask as that handler returns.
fn handler_returned(mask: u64, by_kernel: bool) {
    runtime::sched::leave_handler(mask, by_kernel);
    deliver_kept();
}

/// The scheduler found that the taker of delivered signal `sig` (greenify's SIGURG,
/// caught inside a scheduler section) blocks it, or that nobody takes it: its saved
/// siginfo becomes pending for `owner` in greenify's records instead (see
/// runtime/kept_pending.rs); false if they are full.
pub(super) fn keep_delivered(sig: u32, owner: runtime::kept_pending::Owner) -> bool {
    // SAFETY: written by the trampoline before it posted this delivery, which the
    // scheduler is handing out; copied, the slot stays as it is.
    let (info, _) = unsafe { (*SAVED.0.get())[sig as usize].assume_init_read() };
    if !runtime::kept_pending::park(owner, &info) {
        return false;
    }
    held::free_slot(sig);
    true
}

pub(super) fn is_function(handler: usize) -> bool {
    handler != libc::SIG_DFL && handler != libc::SIG_IGN && handler != libc::SIG_ERR
}

#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let _green = enter();
    let valid = (1..NSIG as c_int).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP;
    if !valid {
        // SAFETY: forwarded: libc reports the error.
        return unsafe { real::sigaction(sig, act, old) };
    }
    let i = sig as usize;
    // SAFETY: an all-zero sigaction is a valid value to read the current one into.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reading the current action.
    if unsafe { real::sigaction(sig, std::ptr::null(), &mut current) } != 0 {
        return -1;
    }
    // The preemption signal's handler stands in for the program's (see preempt.rs).
    let stood_in = super::preempt::program_action(sig, &mut current);
    // So does the stats line's for a default fatal action (see stats.rs).
    crate::stats::program_view(sig, &mut current);
    // greenify's SIGSYS handler stands in for the program's too (see escapes.rs).
    let escapes_stood_in = super::escapes::program_action(sig, &mut current);
    if current.sa_sigaction == trampoline as *const () as usize {
        current.sa_sigaction = HANDLERS[i].load(SeqCst);
        current.sa_flags =
            (current.sa_flags & !libc::SA_SIGINFO) | (FLAGS[i].load(SeqCst) & libc::SA_SIGINFO);
    }
    if !act.is_null() {
        // SAFETY: the program's action.
        let mut wanted = unsafe { *act };
        if is_function(wanted.sa_sigaction) {
            HANDLERS[i].store(wanted.sa_sigaction, SeqCst);
            FLAGS[i].store(wanted.sa_flags, SeqCst);
            MASKS[i].store(kernel_mask(&wanted.sa_mask), SeqCst);
            wanted.sa_sigaction = trampoline as *const () as usize;
            wanted.sa_flags |= libc::SA_SIGINFO;
        }
        crate::stats::keep_on_default(sig, &mut wanted);
        super::escapes::keep_sigsys_unblocked(&mut wanted.sa_mask);
        if stood_in {
            super::preempt::set_program_action(&wanted);
        } else if escapes_stood_in {
            super::escapes::set_program_action(&wanted);
        } else {
            // SAFETY: installs the (wrapped) action.
            if unsafe { real::sigaction(sig, &wanted, std::ptr::null_mut()) } != 0 {
                return -1;
            }
        }
    }
    if !old.is_null() {
        // SAFETY: the program's out-pointer.
        unsafe { *old = current };
    }
    0
}

/// signal(), bsd_signal() and sysv_signal() through our sigaction.
unsafe fn install(sig: c_int, handler: usize, flags: c_int, mask_self: bool) -> usize {
    // SAFETY: zeroed sigactions are valid; the fields are set below.
    let (mut act, mut old): (libc::sigaction, libc::sigaction) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    act.sa_sigaction = handler;
    act.sa_flags = flags;
    // SAFETY: a local sigset.
    unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        if mask_self && sig > 0 && (sig as usize) < NSIG {
            libc::sigaddset(&mut act.sa_mask, sig);
        }
    }
    // SAFETY: our own hook, with valid pointers.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

fn bsd_flags(sig: c_int) -> c_int {
    let interrupting = (1..64).contains(&sig) && INTERRUPTING.load(SeqCst) & (1 << sig) != 0;
    if interrupting {
        0
    } else {
        libc::SA_RESTART
    }
}

#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: glibc's signal() is bsd_signal().
    unsafe { install(sig, handler, bsd_flags(sig), true) }
}

#[no_mangle]
pub unsafe extern "C" fn bsd_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: as glibc's bsd_signal.
    unsafe { install(sig, handler, bsd_flags(sig), true) }
}

#[no_mangle]
pub unsafe extern "C" fn sysv_signal(
    sig: c_int,
    handler: libc::sighandler_t,
) -> libc::sighandler_t {
    // SAFETY: as glibc's sysv_signal: one-shot, not masked while running.
    unsafe { install(sig, handler, libc::SA_RESETHAND | libc::SA_NODEFER, false) }
}

#[no_mangle]
pub unsafe extern "C" fn siginterrupt(sig: c_int, interrupt: c_int) -> c_int {
    // SAFETY: a zeroed sigaction to read into.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: our own hook, reading the program's view.
    if unsafe { sigaction(sig, std::ptr::null(), &mut action) } != 0 {
        return -1;
    }
    if interrupt != 0 {
        INTERRUPTING.fetch_or(1 << sig, SeqCst);
        action.sa_flags &= !libc::SA_RESTART;
    } else {
        INTERRUPTING.fetch_and(!(1 << sig), SeqCst);
        action.sa_flags |= libc::SA_RESTART;
    }
    // SAFETY: our own hook.
    unsafe { sigaction(sig, &action, std::ptr::null_mut()) }
}

/// A signal greenify sends for the program to one of its green threads carries the target
/// in its siginfo's `si_errno`, which libc's calls leave 0: this mark in the high byte, the
/// thread's id + 1 in the low 24 bits. The trampoline takes it out before a handler sees
/// the siginfo. It stays with the signal while a mask blocks it (the sender's own, or a
/// real-time signal's held back, see runtime/held.rs), where a note kept beside the send
/// would be gone when the signal arrives.
const MARK: i32 = 0x4700_0000;
const MARK_BITS: i32 = !0xFF_FFFF;

/// `info` with green thread `target` marked as the signal's target (if any).
fn marked(mut info: siginfo_t, target: Option<u32>) -> siginfo_t {
    if let Some(tid) = target {
        info.si_errno = MARK | (tid as i32 + 1);
    }
    info
}

/// The green thread a signal is marked for.
///
/// # Safety
/// `info` is NULL or a siginfo the caller may read.
pub(super) unsafe fn mark_of(info: *const siginfo_t) -> Option<u32> {
    // SAFETY: the caller's.
    let errno = unsafe { info.as_ref() }?.si_errno;
    if errno & MARK_BITS != MARK || errno & 0xFF_FFFF == 0 {
        return None;
    }
    Some((errno & 0xFF_FFFF) as u32 - 1)
}

/// `info` without the mark of its target.
pub(super) fn unmarked(mut info: siginfo_t) -> siginfo_t {
    // SAFETY: a local siginfo.
    if unsafe { mark_of(&info) }.is_some() {
        info.si_errno = 0;
    }
    info
}

/// The green thread a signal is marked for, taking the mark out.
///
/// # Safety
/// `info` is NULL or a siginfo the caller may change.
unsafe fn take_mark(info: *mut siginfo_t) -> Option<u32> {
    // SAFETY: the caller's.
    let tid = unsafe { mark_of(info) }?;
    // SAFETY: the caller's, not NULL (it is marked).
    unsafe { (*info).si_errno = 0 };
    Some(tid)
}

/// What a signal sent to a green thread shows in its handler's siginfo.
pub enum Sent {
    /// From pthread_kill, tgkill or tkill: SI_TKILL, this process, this user.
    Kill,
    /// From kill: SI_USER, this process, this user.
    User,
    /// From pthread_sigqueue: SI_QUEUE with this value.
    Queue(libc::sigval),
    /// From rt_tgsigqueueinfo: the program's own siginfo.
    Info(siginfo_t),
}

/// kill. The kernel hands a signal sent to the process to its first OS thread when that
/// accepts it, natively the main thread (the sender, when the main thread sends its own
/// process one: it runs the handler before kill returns). With several workers the main
/// thread may run on another OS thread: such a signal, which it accepts, is queued to the
/// calling OS thread for it instead, as the kernel would have delivered it.
#[no_mangle]
pub unsafe extern "C" fn kill(pid: libc::pid_t, sig: c_int) -> c_int {
    let green = enter();
    let own = rustix::process::getpid().as_raw_nonzero().get();
    if green.is_some()
        && pid == own
        && (1..=64).contains(&sig)
        && runtime::current_is_main()
        && rustix::thread::gettid().as_raw_nonzero().get() != own
        && runtime::sched::sigmask(libc::SIG_BLOCK, None).is_ok_and(|m| m & 1 << (sig - 1) == 0)
    {
        return match send_to_green(runtime::sched::MAIN, sig, Sent::User) {
            Ok(()) => 0,
            Err(e) => fail(e),
        };
    }
    // SAFETY: forwarded.
    unsafe { real::kill(pid, sig) }
}

/// sigqueue. An instance of a real-time signal the program queues to its own process,
/// which one of its threads takes now, goes straight into the signal's line (see
/// runtime/held.rs), in the order sent, and its delivery is posted as the trampoline
/// posts one: through the kernel, two OS threads could take instances at once (an idle
/// worker for a parked thread, and the worker running it), and the later trampoline to
/// start might hold the older instance. A handler it hands the calling thread runs before
/// the call returns, as natively. Otherwise (no thread takes it now, an older instance
/// waits in the kernel, or the line is full) the kernel queues it.
#[no_mangle]
pub unsafe extern "C" fn sigqueue(pid: libc::pid_t, sig: c_int, value: libc::sigval) -> c_int {
    let green = enter();
    let own = rustix::process::getpid().as_raw_nonzero().get();
    if green.is_some() && pid == own && line_up(sig, value) {
        return 0;
    }
    // SAFETY: forwarded.
    unsafe { real::sigqueue(pid, sig, value) }
}

/// Puts an instance of `sig` this process queues itself, with `value`, in the signal's
/// line (see [`sigqueue`]); false if it must go through the kernel.
fn line_up(sig: c_int, value: libc::sigval) -> bool {
    if !(held::is_queued(sig as u32) && is_function(HANDLERS[sig as usize].load(SeqCst))) {
        return false;
    }
    if !runtime::sched::taken_now(sig as u32) {
        return false;
    }
    let Some(ticket) = held::Ticket::take(sig as u32) else {
        return false;
    };
    ticket.wait(held::Instance {
        info: runtime::raw::own_queued_info(sig as u32, value.sival_ptr as u64),
        target: None,
        restart: FLAGS[sig as usize].load(SeqCst) & libc::SA_RESTART != 0,
    });
    // It arrived, as for the trampoline (see [`handled`]).
    HANDLED.fetch_add(1, SeqCst);
    hand_on(sig, std::ptr::null_mut());
    true
}

/// Sends `sig` to green thread `tid`: pending for `tid` in greenify's records if `tid`
/// blocks it (see `sched::keep_for_blocking`); else to this OS thread, marked for `tid`
/// (see [`MARK`]), so that its handler runs in `tid` and `tid` is the thread it
/// interrupts. Err: the kernel's error number.
pub fn send_to_green(tid: u32, sig: c_int, sent: Sent) -> Result<(), c_int> {
    let mut info = match sent {
        Sent::Info(info) => info,
        Sent::Queue(value) => runtime::raw::own_queued_info(sig as u32, value.sival_ptr as u64),
        Sent::Kill | Sent::User => {
            // The kill members (si_pid, si_uid) as a queue's, without a value.
            let mut info = runtime::raw::own_queued_info(sig as u32, 0);
            info.si_code = if matches!(sent, Sent::User) {
                libc::SI_USER
            } else {
                libc::SI_TKILL
            };
            info
        }
    };
    info.si_signo = sig;
    // Room for it to wait in greenify's records, grown here where allocating is allowed.
    runtime::kept_pending::reserve();
    if runtime::sched::keep_for_blocking(tid, &info) {
        return Ok(());
    }
    let r = runtime::raw::queue_to_this_thread(sig as u32, &marked(info, Some(tid)));
    if r < 0 {
        return Err(-r as c_int);
    }
    Ok(())
}

/// One of greenify's handlers (the trampoline, the preemption signal's) returns to
/// `context` (see sched/nudge.rs `Frame`); with `hold`, leaving
/// real-time signal `hold` blocked on its OS thread while its slot is taken: its next
/// instances wait in this OS thread's kernel queue (see runtime/held.rs). Once the slot is
/// free, a release unblocks it: on another worker, by a nudge, which greenify's SIGURG
/// handler takes in the context it interrupted. The frame's leaving blocks SIGURG until
/// the sigreturn: a nudge that came while this handler ran has released the signal
/// already, and is seen here; one that comes later lands in the context restored.
///
/// # Safety
/// `context` is the kernel's context of a running handler.
pub(super) unsafe fn leave(
    frame: runtime::sched::Frame,
    context: *mut c_void,
    hold: Option<c_int>,
) {
    if let Some(sig) = hold {
        runtime::sched::hold_here(sig as u32);
    }
    // SAFETY: the caller's.
    let Some(mask) = (unsafe { context_mask(context) }) else {
        return frame.forget();
    };
    frame.leave(mask);
    if let Some(sig) = hold {
        if held::slot_taken(sig as u32) && held::is_held(sig as u32) {
            *mask |= 1u64 << (sig - 1);
        }
    }
}

/// The mask (kernel bits) of a handler's `context`, which its sigreturn sets; None for a
/// NULL context.
///
/// # Safety
/// `context` is the kernel's context of a running handler, or NULL.
pub(super) unsafe fn context_mask<'a>(context: *mut c_void) -> Option<&'a mut u64> {
    // SAFETY: the caller's; a sigset_t starts with the 64 bits the kernel uses.
    unsafe {
        let context = context.cast::<ucontext_t>().as_mut()?;
        Some(&mut *std::ptr::addr_of_mut!(context.uc_sigmask).cast::<u64>())
    }
}

/// The kernel mask (first 8 bytes) of a sigset_t.
fn kernel_mask(set: &sigset_t) -> u64 {
    // SAFETY: a sigset_t starts with the 64 bits the kernel uses.
    unsafe { *(set as *const sigset_t).cast::<u64>() }
}

fn to_sigset(mask: u64) -> sigset_t {
    // SAFETY: an all-zero sigset is empty; its first 8 bytes take the kernel mask.
    let mut set: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { *(&mut set as *mut sigset_t).cast::<u64>() = mask };
    set
}

/// A green thread's pthread_sigmask: an error number, or 0. As glibc's: the new set is
/// read in the caller's memory (a bad pointer faults), the old one is written as the
/// kernel does (EFAULT, with the new mask already in place).
fn green_sigmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> Result<(), c_int> {
    // SAFETY: the program's set, read as glibc reads it.
    let wanted = (!set.is_null()).then(|| kernel_mask(unsafe { &*set }));
    let previous = runtime::sched::sigmask(how, wanted).map_err(|e| e.raw_os_error())?;
    deliver_kept();
    if !old.is_null() {
        let previous = to_sigset(previous);
        // SAFETY: a local sigset, seen as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts((&previous as *const sigset_t).cast::<u8>(), 8) };
        if !super::memory::write_bytes(old.cast(), bytes) {
            return Err(libc::EFAULT);
        }
    }
    Ok(())
}

/// Sets the calling green thread's mask to `set` as pthread_sigmask does (see
/// signal_jump.rs): an error number, or 0.
pub(super) fn set_green_mask(set: &sigset_t) -> Result<(), c_int> {
    green_sigmask(libc::SIG_SETMASK, set, std::ptr::null_mut())
}

/// The program's own signals pending for the calling thread in greenify's records (its
/// own, or the process's: see runtime/kept_pending.rs), once its mask opens them, are
/// delivered to it at once, as natively: queued to this OS thread, marked for it, where
/// greenify's handler routes each to the program's (which runs as the hook returns), or
/// the kernel takes the default action. Says whether it queued one.
pub(super) fn deliver_kept() -> bool {
    if !runtime::kept_pending::any() {
        return false;
    }
    let (Some(me), Ok(mask)) = (
        runtime::sched::current_for_signal(),
        runtime::sched::sigmask(libc::SIG_BLOCK, None),
    ) else {
        return false;
    };
    let mut queued = false;
    while let Some(info) = runtime::kept_pending::take_for(me, !mask) {
        let sig = info.si_signo as u32;
        if runtime::raw::queue_to_this_thread(sig, &marked(info, Some(me))) < 0 {
            // The kernel's queue is full: it stays pending.
            runtime::kept_pending::park(runtime::kept_pending::Owner::Thread(me), &info);
            break;
        }
        queued = true;
    }
    queued
}

/// sigpending: the kernel's answer, with the program's own signals that greenify's
/// records keep pending for the calling thread (see runtime/kept_pending.rs).
#[no_mangle]
pub unsafe extern "C" fn sigpending(set: *mut sigset_t) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::sigpending(set) };
    let Some(_green) = enter() else { return r };
    let kept = runtime::sched::current_for_signal().map_or(0, runtime::kept_pending::pending_for);
    if r == 0 && kept != 0 {
        // SAFETY: the program's set, which the kernel just wrote.
        let pending = unsafe { &mut *set.cast::<u64>() };
        *pending |= kept;
    }
    r
}

/// Signal masks are per green thread: the scheduler gives the OS thread the running
/// thread's mask at every switch.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_sigmask(how, set, old) };
    };
    green_sigmask(how, set, old).err().unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::sigprocmask(how, set, old) };
    };
    match green_sigmask(how, set, old) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// sigaltstack: once green threads exist, each has its own, as the program set it (a new
/// thread none, as natively; main the one it had set before), checked as the kernel
/// checks it. The OS thread keeps the alternate stack
/// greenify gave it (runtime/overflow.rs): a handler the kernel runs on an alternate
/// stack runs there, so one thread's stack going away (Rust's std unmaps it at thread
/// exit) never leaves another's handler without one. While such a handler runs for a
/// thread that has an alternate stack, that thread is reported on it (SS_ONSTACK).
#[no_mangle]
pub unsafe extern "C" fn sigaltstack(ss: *const libc::stack_t, old: *mut libc::stack_t) -> c_int {
    let green = enter();
    if green.is_none() || !runtime::overflow::armed() {
        // Another OS thread's, or no green thread has a stack of greenify's yet: the OS
        // thread's alternate stack is still the program's own.
        // SAFETY: forwarded.
        return unsafe { real::sigaltstack(ss, old) };
    }
    if runtime::sched::current_is_main() {
        if let Some((sp, size)) = runtime::overflow::take_program_altstack() {
            runtime::sched::set_altstack(runtime::sched::AltStack { sp, size, flags: 0 });
        }
    }
    let wanted = if ss.is_null() {
        None
    } else {
        match super::memory::read(ss) {
            Some(wanted) => Some(wanted),
            None => return fail(libc::EFAULT),
        }
    };
    let mine = runtime::sched::altstack();
    let here = &wanted as *const _ as usize;
    let on_it = is_on(&mine, here) || (mine.size != 0 && is_on(&os_altstack(), here));
    if let Some(wanted) = wanted {
        if on_it {
            return fail(libc::EPERM);
        }
        match checked_altstack(&wanted) {
            Ok(stack) => runtime::sched::set_altstack(stack),
            Err(e) => return fail(e),
        }
    }
    if !old.is_null() {
        let state = if on_it {
            libc::SS_ONSTACK
        } else if mine.size == 0 {
            libc::SS_DISABLE
        } else {
            0
        };
        let reported = libc::stack_t {
            ss_sp: mine.sp as *mut c_void,
            ss_flags: state | (mine.flags & SS_AUTODISARM),
            ss_size: mine.size,
        };
        // SAFETY: a local stack_t, seen as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&reported as *const libc::stack_t).cast::<u8>(),
                std::mem::size_of::<libc::stack_t>(),
            )
        };
        if !super::memory::write_bytes(old.cast(), bytes) {
            return fail(libc::EFAULT);
        }
    }
    0
}

/// sigaltstack's flag: disarm the stack while a handler runs on it (<linux/signal.h>).
const SS_AUTODISARM: c_int = 1 << 31;

/// A new alternate stack as the kernel accepts it (its mode 0, SS_ONSTACK, which old
/// programs pass, or SS_DISABLE, with SS_AUTODISARM; at least MINSIGSTKSZ bytes), or its
/// error.
fn checked_altstack(wanted: &libc::stack_t) -> Result<runtime::sched::AltStack, c_int> {
    const MINSIGSTKSZ: usize = 2048;
    let mode = wanted.ss_flags & !SS_AUTODISARM;
    if mode == libc::SS_DISABLE {
        return Ok(runtime::sched::AltStack::DISABLED);
    }
    if mode != 0 && mode != libc::SS_ONSTACK {
        return Err(libc::EINVAL);
    }
    if wanted.ss_size < MINSIGSTKSZ {
        return Err(libc::ENOMEM);
    }
    Ok(runtime::sched::AltStack {
        sp: wanted.ss_sp as usize,
        size: wanted.ss_size,
        flags: wanted.ss_flags & SS_AUTODISARM,
    })
}

/// Whether the stack pointer `sp` lies on `stack`, as the kernel decides it.
fn is_on(stack: &runtime::sched::AltStack, sp: usize) -> bool {
    sp > stack.sp && sp - stack.sp <= stack.size
}

/// The OS thread's own alternate stack.
fn os_altstack() -> runtime::sched::AltStack {
    // SAFETY: an all-zero stack_t to read into.
    let mut os: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a query into our own stack_t.
    if unsafe { real::sigaltstack(std::ptr::null(), &mut os) } != 0
        || os.ss_flags & libc::SS_DISABLE != 0
    {
        return runtime::sched::AltStack::DISABLED;
    }
    runtime::sched::AltStack {
        sp: os.ss_sp as usize,
        size: os.ss_size,
        flags: 0,
    }
}

#[no_mangle]
pub unsafe extern "C" fn pause() -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe { real::pause() });
    };
    wait_for(
        Some(&green),
        UNTIL_A_HANDLER,
        || Tried::Waits(-1),
        park_for_handler,
    )
}

/// pause and sigsuspend wait for nothing but a handler, which always ends them (EINTR).
const UNTIL_A_HANDLER: Waits = Waits {
    deadline: None,
    every: None,
    restarts: false,
};

/// A park of [`wait_for`] that only the time or a handler ends.
fn park_for_handler(until: Option<Instant>) -> Wake {
    runtime::park_interruptible(Reason::Sleep, until)
}

#[no_mangle]
pub unsafe extern "C" fn sigsuspend(mask: *const sigset_t) -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe { real::sigsuspend(mask) });
    };
    let Some(wanted) = super::memory::read(mask) else {
        return fail(libc::EFAULT);
    };
    let before = HANDLED.load(SeqCst);
    // The program's mask for this thread during the wait.
    let Ok(saved) = runtime::sched::sigmask(libc::SIG_SETMASK, Some(kernel_mask(&wanted))) else {
        return fail(libc::EINVAL);
    };
    deliver_kept();
    // A signal pending under the old mask is delivered as soon as the mask changes.
    let ran = || {
        if HANDLED.load(SeqCst) != before {
            Tried::Done(-1)
        } else {
            Tried::Waits(-1)
        }
    };
    let _: c_int = wait_for(Some(&green), UNTIL_A_HANDLER, ran, park_for_handler);
    // Its handler runs under the mask of the wait, as natively.
    run_delivered();
    let _ = runtime::sched::sigmask(libc::SIG_SETMASK, Some(saved));
    fail(libc::EINTR)
}

/// `r`, what sigtimedwait returned into `info`, with the mark of a signal sent to a green
/// thread taken out of `info`.
///
/// # Safety
/// `info` is NULL or the program's siginfo that sigtimedwait wrote.
unsafe fn taken(r: c_int, info: *mut siginfo_t) -> c_int {
    if r > 0 {
        // SAFETY: the caller's.
        unsafe { take_mark(info) };
    }
    r
}

/// Takes one of `set` pending for the calling thread without waiting (sigtimedwait with a
/// zero timeout), also of the program's signals kept in greenify's records
/// (runtime/kept_pending.rs): those after the signals below them that the kernel has
/// pending, as the kernel takes the lowest first.
///
/// # Safety
/// `set` is the program's readable set, `info` NULL or its writable siginfo.
unsafe fn take_signal(set: *const sigset_t, info: *mut siginfo_t) -> c_int {
    let zero = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the caller's.
    let wanted = kernel_mask(unsafe { &*set });
    let kept_for = runtime::sched::current_for_signal()
        .map(|me| (me, runtime::kept_pending::pending_for(me) & wanted))
        .filter(|&(_, kept)| kept != 0);
    if let Some((me, kept)) = kept_for {
        let lowest = kept & kept.wrapping_neg();
        let below = to_sigset(wanted & (lowest - 1));
        let saved = super::errno();
        // SAFETY: our own set, the caller's info; a zero timeout never blocks.
        let r = unsafe { real::sigtimedwait(&below, info, &zero) };
        if r > 0 {
            return r;
        }
        // A success leaves errno as it found it.
        super::set_errno(saved);
        if let Some(mut taken) = runtime::kept_pending::take_for(me, wanted) {
            // As glibc's sigtimedwait shows the kernel's: a tkill's SI_TKILL as SI_USER.
            if taken.si_code == libc::SI_TKILL {
                taken.si_code = libc::SI_USER;
            }
            // SAFETY: the caller's: NULL or the program's siginfo.
            if let Some(info) = unsafe { info.as_mut() } {
                *info = taken;
            }
            return taken.si_signo;
        }
    }
    // SAFETY: the caller's; a zero timeout never blocks.
    unsafe { real::sigtimedwait(set, info, &zero) }
}

/// Waits for one of `set` (blocked by the program) with a signalfd the reactor watches
/// (none if greenify's fd range is full: it then looks again every millisecond). Never
/// restarted after a handler, whatever SA_RESTART says (signal(7)).
unsafe fn wait_signal(
    green: &super::Green,
    set: *const sigset_t,
    info: *mut siginfo_t,
    deadline: Option<Instant>,
) -> c_int {
    // SAFETY: the program's set; a signalfd of our own, closed below.
    let fd = unsafe { real::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return -1;
    }
    // SAFETY: the signalfd just opened, ours.
    let fd = own_fd(unsafe { OwnedFd::from_raw_fd(fd) });
    let watched = fd.as_ref().map(|fd| [(fd.as_raw_fd(), Interest::Read)]);
    let fds = watched.as_ref().map_or(&[][..], |w| &w[..]);
    // SAFETY: the program's set, which signalfd has just read.
    let wanted = kernel_mask(unsafe { &*set });
    let urg = wanted & 1 << (runtime::monitor::SIGNAL - 1) != 0;
    let waits = Waits {
        deadline,
        // The program's SIGURG that greenify's preemption handler keeps in its records
        // comes with no wake (the handler can wake no one async-signal-safely): look
        // every millisecond. A signal the program sends a thread that blocks it wakes it
        // (sched::keep_for_blocking).
        every: (fd.is_none() || urg).then_some(Duration::from_millis(1)),
        restarts: false,
    };
    let result = wait_for(
        Some(green),
        waits,
        // SAFETY: the program's set and out-pointer.
        || match unsafe { taken(take_signal(set, info), info) } {
            -1 if super::errno() == libc::EAGAIN => Tried::Waits(-1),
            r => Tried::Done(r),
        },
        |until| runtime::sched::wait_signals(fds, wanted, Reason::Poll, until),
    );
    let saved = super::errno();
    if let Some(fd) = fd {
        close_own(fd);
    }
    super::set_errno(saved);
    result
}

#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(
    set: *const sigset_t,
    info: *mut siginfo_t,
    timeout: *const timespec,
) -> c_int {
    let green = enter();
    // SAFETY: NULL or the program's timespec.
    let deadline = unsafe { super::poll::ts_deadline(timeout) };
    let (Some(green), Ok(deadline)) = (green, deadline) else {
        let mut remaining = Remaining::timespec(timeout);
        // SAFETY: forwarded (libc reports an invalid timeout).
        return uninterrupted(|| unsafe {
            real::sigtimedwait(set, info, remaining.next_timespec())
        });
    };
    // SAFETY: forwarded.
    unsafe { wait_signal(&green, set, info, deadline) }
}

#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const sigset_t, info: *mut siginfo_t) -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe { real::sigwaitinfo(set, info) });
    };
    // SAFETY: forwarded.
    unsafe { wait_signal(&green, set, info, None) }
}

#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::sigwait(set, sig) };
    };
    drop(green);
    // SAFETY: a zeroed siginfo to receive into.
    let mut info: siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        let Some(green) = enter() else {
            // SAFETY: forwarded.
            return unsafe { real::sigwait(set, sig) };
        };
        // SAFETY: the program's set; our own siginfo.
        let r = unsafe { wait_signal(&green, set, &mut info, None) };
        drop(green);
        if r > 0 {
            // SAFETY: the program's out-pointer.
            unsafe { *sig = r };
            return 0;
        }
        // sigwait is restarted after a handler runs; it returns an error number otherwise.
        if super::errno() != libc::EINTR {
            return super::errno();
        }
    }
}

/// Handlers run so far: a call that changes the thread's mask for its wait (ppoll,
/// pselect) sees whether a signal pending under the old mask arrived at the change.
pub fn handled() -> u64 {
    HANDLED.load(SeqCst)
}
