//! Signal masks and handler delivery bookkeeping: each green thread's mask and the OS
//! thread's, which thread a signal's handler belongs to, and the handlers due per thread
//! (run through an action the hooks set).

use super::state::State;
use super::thread::Thread;
use super::{current_worker, section_may_start, with, Scheduler};
use crate::runtime::kept_pending::{self, Owner};
use crate::runtime::wait::{ThreadId, WaitKey, Wake, MAIN};
use crate::runtime::{handler, held, interrupt, monitor};
use rustix::io::Errno;
use std::sync::OnceLock;

/// A signal's bit in a kernel sigset.
fn sig_bit(sig: u32) -> u64 {
    1u64 << (sig.clamp(1, 64) - 1)
}

/// Runs the handlers due in the current thread (set by the hooks: signal.rs). Set before
/// any signal path runs; a `OnceLock` is then read with one atomic load.
static HANDLER_ACTION: OnceLock<fn()> = OnceLock::new();

/// Sets what runs the handlers a thread must run (see [`take_due_handlers`]), once, as
/// the hooks start (a later setting is ignored).
pub fn set_handler_action(action: fn()) {
    let _ = HANDLER_ACTION.set(action);
}

/// Moves the saved siginfo of a delivered signal into greenify's pending records (set by
/// the hooks: signal.rs); see `Scheduler::keeps_pending`.
static KEEP_ACTION: OnceLock<fn(u32, Owner) -> bool> = OnceLock::new();

/// Sets what keeps a delivered instance of a signal greenify keeps open pending for its
/// owner instead (false: it could not, the delivery goes on), once, as the hooks start.
pub fn set_keep_action(action: fn(u32, Owner) -> bool) {
    let _ = KEEP_ACTION.set(action);
}

pub(super) fn run_due_handlers() {
    if let Some(action) = HANDLER_ACTION.get() {
        action();
    }
}

/// Hands out the interruptions posted since the scheduler last looked (from a hook that
/// returns: the handlers they bring may be the current thread's to run before it goes on).
pub fn apply_interruptions() {
    with(|s| interrupt::take(|i| s.interrupt(i)));
}

/// Takes the signals whose handlers the current thread must run now (not those it
/// blocks, nor any during a wait that holds them); says whether any thread still has
/// handlers to run.
pub fn take_due_handlers() -> u64 {
    with(|s| {
        let t = s.running();
        let due = if t.holds_handlers {
            0
        } else {
            t.handlers_due & !t.sigmask
        };
        t.handlers_due &= !due;
        let handed = s
            .threads
            .iter()
            .filter(|t| t.is_live())
            .fold(0, |all, t| all | t.handlers_due);
        held::recount(handed | due, interrupt::queued_deliveries);
        interrupt::set_deliveries_pending(handed != 0);
        due
    })
}

/// Gives the OS thread the mask the scheduler applied again: the trampoline may have
/// blocked real-time signals behind it whose next instances wait in the kernel (see
/// runtime/held.rs). Those the running thread accepts come in now.
pub fn reapply_mask() {
    with(|s| {
        let applied = s.w().applied_mask;
        let mask = if applied == UNKNOWN_MASK {
            s.running().sigmask
        } else {
            applied
        };
        s.w().applied_mask = mask;
        os_sigmask(Some(mask & !kept_open()));
    })
}

/// Signals a green thread's mask never blocks on its OS thread: greenify's preemption
/// signal once the monitor runs (a thread that blocks every signal, as `xz -T2`'s
/// compressing threads do, was never preempted), and SIGSYS while escapes are armed. The
/// program's own instance of the preemption signal that its taker blocks waits in
/// greenify's records (see [`kept_signal_taker`] and runtime/kept_pending.rs).
pub fn kept_open() -> u64 {
    let preemption = if monitor::started() {
        1 << (monitor::SIGNAL - 1)
    } else {
        0
    };
    preemption | crate::runtime::escapes::kept_unblocked()
}

/// The running green thread, read from a signal handler (None on an OS thread without a
/// scheduler). Inside a section that switches threads it may name either of the two.
pub fn current_for_signal() -> Option<ThreadId> {
    let worker = current_worker();
    // SAFETY: worker records are never freed and only this OS thread writes this one; a
    // u32 read through the raw pointer, no reference made while a section may hold one.
    (!worker.is_null()).then(|| unsafe { std::ptr::addr_of!((*worker).current).read_volatile() })
}

/// The green thread a signal that just arrived on this OS thread was sent to, when the
/// sender named the process's main thread by its id (a `tgkill(pid, pid, sig)` of
/// another process; the program's own name their target through the hooks): MAIN,
/// which may run on another worker than the OS thread the kernel knows by that id.
/// None if MAIN runs here, or the signal was not such (or the OS thread is not the
/// process's first).
pub fn sent_to_main_tid(info: Option<&libc::siginfo_t>) -> Option<ThreadId> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    // SAFETY: si_pid is meaningful for SI_TKILL.
    let from_outside =
        info.is_some_and(|i| i.si_code == libc::SI_TKILL && unsafe { i.si_pid() } != pid);
    if !from_outside || rustix::thread::gettid().as_raw_nonzero().get() != pid {
        return None;
    }
    current_for_signal().filter(|&t| t != MAIN).map(|_| MAIN)
}

/// Whether an instance of `sig` the process sends itself now would be taken at once, in
/// order: no instance of it waits in the kernel (on this OS thread or the process, which
/// it would have to follow), and some live thread takes it (does not block it).
pub fn taken_now(sig: u32) -> bool {
    os_sigpending() & 1 << (sig - 1) == 0 && with(|s| s.chosen(sig, None).is_some())
}

/// Whether the handler of `sig` (process-directed) belongs to the current thread: the
/// kernel would have chosen it, or no thread at all. No while a scheduler section runs
/// (the signal interrupted it): the handler must not run, nor jump, out of the middle
/// of one.
pub fn signal_is_for_current(sig: u32) -> bool {
    if !section_may_start() {
        return current_worker().is_null();
    }
    with(|s| s.chosen(sig, None).is_none_or(|t| t == s.current()))
}

/// Who takes the program's own instance of a signal greenify keeps open (see
/// [`kept_open`] and runtime/kept_pending.rs), which the kernel gave the calling OS thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptTaker {
    /// A thread that accepts it (or its target is gone): routed as any other signal.
    Accepting,
    /// Pending for this owner: its target (a pthread_kill's), which blocks it, or the
    /// process, when every live thread blocks it.
    Pending(Owner),
}

/// Who takes an instance of `sig` (kept open) sent to `target` (None: to the process),
/// from the handler that caught it in the program's code; None if no scheduler section
/// may start here (the signal interrupted one, or greenify does not run here). Not from
/// greenify's own code, which may hold a lock that a section elsewhere waits for while
/// this waits for the scheduler's: the scheduler decides later (see `keeps_pending`).
pub fn kept_signal_taker(sig: u32, target: Option<ThreadId>) -> Option<KeptTaker> {
    if !section_may_start() {
        return None;
    }
    Some(with(|s| s.kept_taker(sig, s.chosen(sig, target))))
}

/// Keeps `info`, a signal the program sends green thread `target` (pthread_kill,
/// tgkill), pending for it in greenify's records (runtime/kept_pending.rs) if `target`
/// blocks it, and wakes `target` if it waits for it (see [`wait_signals`]). Through the
/// kernel it would be pending on the sender's OS thread, where a target on another worker
/// never saw it (pbzip2's terminator thread waited in sigwait for ever) and a handler's
/// delivery could not show it to the target's sigwait. False: the target takes it now (or
/// is gone, or the table is full): it goes through the kernel.
pub fn keep_for_blocking(target: ThreadId, info: &libc::siginfo_t) -> bool {
    let sig = info.si_signo as u32;
    if !(1..=64).contains(&sig) || !section_may_start() {
        return false;
    }
    with(|s| {
        let bit = sig_bit(sig);
        let Some(t) = s.threads.get_mut(target as usize) else {
            return false;
        };
        if !t.is_live() || t.sigmask & bit == 0 || !kept_pending::park(Owner::Thread(target), info)
        {
            return false;
        }
        s.wake_signal_waiter(target, sig);
        true
    })
}

/// A sigwait of the current thread: waits as `wait_fds` on `fds` (its signalfd), unless
/// one of `set` is pending for it in greenify's records, where [`keep_for_blocking`]
/// wakes it when one comes (the look and the park are one section, so none comes
/// unseen between them).
pub fn wait_signals(
    fds: &[(i32, crate::runtime::Interest)],
    set: u64,
    reason: crate::runtime::Reason,
    deadline: Option<std::time::Instant>,
) -> Wake {
    let wake = super::io::wait_fds_if(fds, reason, deadline, |s| {
        let me = s.current();
        if kept_pending::pending_for(me) & set != 0 {
            return false;
        }
        // No section after the wait clears it: any wake moves the thread's sequence on,
        // which makes this record stale (see `wake_signal_waiter`).
        s.threads[me as usize].waits_for_signals = (set, s.key(me).seq);
        true
    });
    wake.unwrap_or(Wake::Ready)
}

/// The current thread's waits run no handlers while `hold` (see `holds_handlers`).
#[inline]
pub fn hold_handlers(hold: bool) {
    with(|s| {
        let me = s.current() as usize;
        s.threads[me].holds_handlers = hold;
    })
}

/// An OS mask no thread can have (SIGKILL and SIGSTOP cannot be blocked): the mask the
/// OS thread has is not known (a handler's sigreturn will set it), so the next switch
/// sets it whatever it is.
pub(super) const UNKNOWN_MASK: u64 = u64::MAX;

/// Signals no mask holds: SIGKILL and SIGSTOP cannot be blocked; glibc keeps its own
/// SIGCANCEL and SIGSETXID (32, 33) deliverable too.
const NEVER: u64 =
    (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)) | monitor::GLIBC_INTERNAL;

/// The mask of an OS thread that takes no signal of the program's (an idle worker but the
/// first, a parked spare): every one but [`NEVER`]. Not [`UNKNOWN_MASK`], which would
/// make its mask look unknown (see `apply_mask`).
pub(super) const ALL_BLOCKED: u64 = !NEVER;

/// A program's signal handler starts in the current thread, its frame marked at `frame`:
/// the thread's mask becomes the handler's (see handler.rs). `extra`: the signals to
/// block on top of the thread's mask; None: the kernel has set the OS thread's mask for
/// the handler already. Returns the mask before; None when no scheduler section may start
/// (the signal interrupted one, or greenify does not run here): the handler runs
/// unrecorded.
pub fn enter_handler(extra: Option<u64>, frame: usize) -> Option<u64> {
    if !section_may_start() {
        return None;
    }
    with(|s| {
        let me = s.current() as usize;
        let before = s.threads[me].sigmask;
        let mask = match extra {
            Some(extra) => (before | extra) & !NEVER,
            None => {
                let kernel = os_sigmask(None);
                s.w().applied_mask = kernel;
                kernel & !NEVER
            }
        };
        let t = &mut s.threads[me];
        t.handler_frames.push(frame);
        t.sigmask = mask;
        s.masks_vary |= mask != before;
        s.apply_mask(mask);
        Some(before)
    })
}

/// The handler [`enter_handler`] recorded returned; the thread's mask is `mask` again
/// (the one its context holds). `by_kernel`: the handler's sigreturn sets the OS
/// thread's mask.
pub fn leave_handler(mask: u64, by_kernel: bool) {
    with(|s| {
        let me = s.current() as usize;
        let t = &mut s.threads[me];
        t.handler_frames.pop();
        let before = std::mem::replace(&mut t.sigmask, mask & !NEVER);
        s.masks_vary = true;
        s.accepts_more(before & !mask);
        if by_kernel {
            s.w().applied_mask = UNKNOWN_MASK;
        } else {
            s.apply_mask(mask & !NEVER);
        }
    })
}

impl Scheduler {
    /// While the current thread `me`, running at `sp`, has handlers recorded, its mask is
    /// read back from the OS thread (a jump out of a handler set it behind the hooks).
    /// Inlined into every switch: a thread with no handler recorded pays one test.
    #[inline(always)]
    pub(super) fn settle_handler_jumps(&mut self, me: ThreadId, sp: usize) {
        if self.threads[me as usize].handler_frames.any() {
            self.settle_handler_jumps_now(sp);
        }
    }

    #[cold]
    #[inline(never)]
    fn settle_handler_jumps_now(&mut self, sp: usize) {
        let me = self.current() as usize;
        let left = self.threads[me].handler_frames.forget_left(sp);
        let mask = os_sigmask(None);
        self.w().applied_mask = mask;
        // The OS thread's mask never shows the signals greenify keeps open: the thread's
        // record keeps them (a handler of the program's SIGURG blocks it: a second one
        // sent from it ran the handler nested, with 2 workers), unless a jump out of a
        // handler left a mask from before it, which the record does not hold.
        let kept = kept_open();
        let kept_blocked = if left {
            0
        } else {
            self.threads[me].sigmask & kept
        };
        let now = (mask & !kept | kept_blocked) & !NEVER;
        let before = std::mem::replace(&mut self.threads[me].sigmask, now);
        self.masks_vary = true;
        self.accepts_more(before & !now);
    }

    /// The current thread (or a new one) accepts the signals `newly` now: the first
    /// worker, idle on another OS thread, may block one of them still (its mask leaves
    /// open what some thread accepted as it went idle, see run.rs), and is woken to look
    /// again. Else a signal sent to the process that only this thread accepts waited for
    /// that worker's next wake: with 2 workers, the main thread's sigsuspend for a timer's
    /// SIGALRM, after a sigwait with it blocked, waited for ever.
    pub(super) fn accepts_more(&mut self, newly: u64) {
        if newly == 0 || self.all_workers.len() < 2 {
            return;
        }
        let first = self.all_workers[0];
        // SAFETY: worker records are never freed; `applied_mask` is read whole (a u64 its
        // own OS thread writes).
        let applied = unsafe { std::ptr::addr_of!((*first).applied_mask).read_volatile() };
        if first != super::running_worker() && applied & newly != 0 {
            self.wake_idle(first);
        }
    }

    /// A signal pending on the OS thread that the running thread blocks while another
    /// accepts it (a process-directed SIGTERM, say) would wait for the OS thread to go
    /// idle, for ever if threads always run: it is unblocked for a moment, so that it
    /// kills as natively, or its trampoline hands it to a thread that accepts it.
    pub(super) fn release_stuck_signals(&mut self) {
        let blocked = self.w().applied_mask;
        if blocked == 0 || blocked == UNKNOWN_MASK || !self.masks_vary {
            return;
        }
        let pending = os_sigpending() & blocked;
        if pending == 0 {
            return;
        }
        let stuck = pending & !self.idle_mask();
        if stuck != 0 {
            os_sigmask(Some(blocked & !stuck));
            os_sigmask(Some(blocked));
        }
    }
}

/// The signals pending on the OS thread or the process (rt_sigpending, raw).
fn os_sigpending() -> u64 {
    let mut set: u64 = 0;
    // SAFETY: rt_sigpending into an 8-byte kernel sigset.
    unsafe {
        crate::runtime::raw::syscall(libc::SYS_rt_sigpending, &[&mut set as *mut u64 as usize, 8]);
    }
    set
}

/// The OS thread's signal mask (rt_sigprocmask, raw: greenify hooks pthread_sigmask):
/// sets it to `mask` if given; returns the previous one.
pub(super) fn os_sigmask(mask: Option<u64>) -> u64 {
    match mask {
        Some(mask) => monitor::sigprocmask(
            libc::SIG_SETMASK,
            &(mask & !crate::runtime::escapes::kept_unblocked()),
        ),
        // Blocking nothing only reads it.
        None => monitor::sigprocmask(libc::SIG_BLOCK, &0),
    }
}

/// pthread_sigmask for the current green thread: `how` is SIG_BLOCK, SIG_UNBLOCK or
/// SIG_SETMASK with `set`, or just a query without one. Returns the previous mask.
pub fn sigmask(how: i32, set: Option<u64>) -> Result<u64, Errno> {
    let sp = handler::stack_pointer();
    with(|s| {
        let me = s.current();
        s.settle_handler_jumps(me, sp);
        let me = me as usize;
        let old = s.threads[me].sigmask;
        let Some(set) = set else {
            return Ok((old, false));
        };
        let new = match how {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::INVAL),
        } & !NEVER;
        s.threads[me].sigmask = new;
        // From now on threads may differ: idle waits compute the common mask.
        s.masks_vary |= new != old;
        s.apply_mask(new);
        s.accepts_more(old & !new);
        Ok((old, new & !old != 0))
    })
    .map(|(old, blocked_more)| {
        if blocked_more {
            super::nudge::close_idle_masks();
        }
        old
    })
}

impl Scheduler {
    pub(super) fn apply_mask(&mut self, mask: u64) {
        if mask != self.w().applied_mask {
            // Noted first: a signal comes in as the mask changes, and a handler reads it
            // (a nudge, see nudge.rs).
            self.w().applied_mask = mask;
            os_sigmask(Some(mask & !kept_open()));
        }
    }

    /// Signals every live thread blocks (only these stay blocked while all wait).
    pub(super) fn idle_mask(&self) -> u64 {
        if !self.masks_vary {
            return self.threads[self.current() as usize].sigmask;
        }
        self.threads
            .iter()
            .filter(|t| t.is_live())
            .fold(u64::MAX, |all, t| all & t.sigmask)
    }

    /// The thread the kernel would run the handler of `sig` on: `target` (a
    /// pthread_kill's), else the main thread, else a thread not blocking the signal.
    fn chosen(&self, sig: u32, target: Option<ThreadId>) -> Option<ThreadId> {
        let bit = sig_bit(sig);
        let accepts = |t: &Thread| t.sigmask & bit == 0 && t.is_live();
        match target {
            Some(tid) => Some(tid),
            None if !self.main_exited && accepts(&self.threads[MAIN as usize]) => Some(MAIN),
            None => {
                (0..self.threads.len() as ThreadId).find(|&t| accepts(&self.threads[t as usize]))
            }
        }
    }

    /// Who takes an instance of `sig` (kept open) that the kernel would give `target` (see
    /// [`Scheduler::chosen`]; None: no thread accepts it).
    fn kept_taker(&self, sig: u32, target: Option<ThreadId>) -> KeptTaker {
        match target {
            None => KeptTaker::Pending(Owner::Process),
            Some(tid) => match self.threads.get(tid as usize) {
                Some(t) if t.is_live() && t.sigmask & sig_bit(sig) != 0 => {
                    KeptTaker::Pending(Owner::Thread(tid))
                }
                _ => KeptTaker::Accepting,
            },
        }
    }

    /// The program's own instance of `sig` sent to `sent_to` (None: the process), which the
    /// kernel would give `target`, whose delivery the trampoline posted (or, for the
    /// signal greenify keeps open, which its handler caught where it could not read the
    /// threads' masks, see [`kept_signal_taker`]): if `target` blocks it (or, for the
    /// signal kept open, nobody takes it), it is pending in greenify's records instead
    /// (runtime/kept_pending.rs), where the taker's sigwait finds it (woken if it waits)
    /// and its unblocking delivers it. True if it needs no delivery: kept so, or taken by
    /// a thread whose action ignores it. A real-time signal's instance stays a handler due
    /// (its line, runtime/held.rs, hands on the next as its handler runs).
    fn keeps_pending(
        &mut self,
        sig: u32,
        sent_to: Option<ThreadId>,
        target: Option<ThreadId>,
    ) -> bool {
        let kept_open = sig == monitor::SIGNAL as u32 && kept_open() & sig_bit(sig) != 0;
        if !kept_open && sig >= 32 {
            return false;
        }
        let owner = match self.kept_taker(sig, target) {
            KeptTaker::Pending(owner) => Some(owner),
            KeptTaker::Accepting => None,
        };
        // Its handler kept it unsettled (the program's action is not a function).
        if kept_open && kept_pending::settle(sig, sent_to, owner) {
            return true;
        }
        let owner = match owner {
            Some(Owner::Thread(tid)) => Owner::Thread(tid),
            Some(Owner::Process) if kept_open => Owner::Process,
            _ => return false,
        };
        if !KEEP_ACTION.get().is_some_and(|keep| keep(sig, owner)) {
            return false;
        }
        if let Owner::Thread(tid) = owner {
            self.wake_signal_waiter(tid, sig);
        }
        true
    }

    /// Wakes thread `tid` if it is parked in a sigwait for `sig` (see [`wait_signals`]):
    /// the record of its latest sigwait names that park's sequence number, which a park
    /// it is in now has only if it is that one (`ready` ignores any other).
    fn wake_signal_waiter(&mut self, tid: ThreadId, sig: u32) {
        let (set, seq) = self.threads[tid as usize].waits_for_signals;
        if set & sig_bit(sig) != 0 && self.threads[tid as usize].state() == State::Parked {
            self.ready(WaitKey { tid, seq }, Wake::Ready);
        }
    }

    /// Applies a signal's interruption to the thread the kernel would have chosen; hands
    /// it the handler to run if the handler has not run yet, waking it from any wait to
    /// do so (a wait that is not interrupted goes on after the handler: callers re-check).
    pub(super) fn interrupt(&mut self, i: interrupt::Interruption) {
        let eligible = |t: &Thread| {
            t.state() == State::Parked
                && t.interruptible
                && interrupt::parked_before(t.parked_at, i.epoch)
        };
        let target = self.chosen(i.sig, i.target);
        if i.deliver && self.keeps_pending(i.sig, i.target, target) {
            return;
        }
        let Some(tid) = target.filter(|&t| (t as usize) < self.threads.len()) else {
            // No thread takes it: the one running now does, when it unblocks it.
            if i.deliver {
                let me = self.current() as usize;
                self.threads[me].hand(i.sig, i.restart);
            }
            return;
        };
        if eligible(&self.threads[tid as usize]) {
            let key = self.key(tid);
            self.ready(key, Wake::Interrupted { restart: i.restart });
        }
        let t = &mut self.threads[tid as usize];
        if !i.deliver || !t.is_live() {
            return;
        }
        t.hand(i.sig, i.restart);
        if t.state() == State::Parked && t.sigmask & sig_bit(i.sig) == 0 && !t.holds_handlers {
            let key = self.key(tid);
            self.ready(key, Wake::Ready);
        }
    }
}

impl Thread {
    /// Hands this thread the handler of `sig` (installed with SA_RESTART or not).
    fn hand(&mut self, sig: u32, restart: bool) {
        self.due_restart = restart && (self.handlers_due == 0 || self.due_restart);
        self.handlers_due |= sig_bit(sig);
    }

    /// Handlers handed to this thread that it may run now (the others wait until it
    /// unblocks their signals), unless its wait must not run them.
    pub(super) fn has_handlers_due(&self) -> bool {
        self.handlers_due & !self.sigmask != 0 && !self.holds_handlers
    }
}
