//! The record of one green thread: its state, coroutine, wait sequence and the per-thread
//! state the other modules keep in it.

use super::deadlock::Note;
use super::identity::Identity;
use super::state::{State, StateWord};
use super::worker::Worker;
use crate::runtime::handler;
use crate::runtime::keys::Values;
use crate::runtime::overflow;
use crate::runtime::stack::{gap_check_needed, gap_untouched_below, GreenStack, StackKind};
use crate::runtime::wait::{Reason, WaitKey};
use corosensei::{Coroutine, Yielder};
use std::time::{Duration, Instant};

pub(super) enum Suspend {
    Park,
    Exit(usize),
}

/// A thread that parks this soon after waking another would have let it run at once in
/// its worker's runnext: an idle worker woken instead takes tens of microseconds to come,
/// and the woken thread runs away from the caches it shares with its waker.
pub(super) const WAITS_SOON: Duration = Duration::from_micros(50);

/// How many of its wakes in a row a thread seen to run on after one (see
/// `Thread::runs_on`) must park soon after before its wakes go to its worker's runnext
/// again. A wake that waits in runnext while its waker runs on is 2.5 to 5 ms late (the
/// monitor's look); one that wakes an idle worker needlessly costs the waker a futex
/// call and the idle worker's CPU some microseconds; and a thread that hands work over
/// may park soon after some of its wakes (`sort --parallel`'s merging threads wait when
/// the queue they share is empty, and compute on when it is not).
pub(super) const RUNS_ON: u8 = 16;

pub(super) type Co = Coroutine<(), Suspend, usize, GreenStack>;

pub(super) struct Thread {
    pub(super) generation: u32,
    /// Its state, wait sequence, the wake owed to it and whether its coroutine is out
    /// (see state.rs).
    pub(super) word: StateWord,
    /// The coroutine, while the thread is not running (MAIN has none). Boxed: a dispatch
    /// and the run loop pass it on as a pointer, not as 48 bytes copied several times.
    pub(super) co: Option<Box<Co>>,
    pub(super) yielder: *const Yielder<(), Suspend>,
    /// With several workers: a thread it woke waited in its worker's runnext until the
    /// monitor had an idle worker take it, as it ran on. While this is not 0 its wakes go
    /// to the run queues and wake an idle worker at once (see
    /// `Scheduler::enqueue_shared`): set to [`RUNS_ON`] then, and again by each such wake
    /// it runs on after, less one for each it parks within [`WAITS_SOON`] of (`woke_at`:
    /// when it last woke one so).
    pub(super) runs_on: u8,
    pub(super) woke_at: Option<Instant>,
    /// The worker it last ran on, with several workers (null: none yet): it is queued
    /// there when ready (see queues.rs), and a look at epoll on another one may leave it
    /// there (see `Scheduler::lend_found`).
    pub(super) ran_on: *mut Worker,
    pub(super) retval: usize,
    pub(super) detached: bool,
    pub(super) joiner: Option<WaitKey>,
    pub(super) name: [u8; 16],
    pub(super) stack: (usize, usize),
    pub(super) stack_kind: StackKind,
    /// Its own TCB (0: the OS thread's).
    pub(super) tcb: usize,
    /// pthread_setspecific values.
    pub(super) specific: Values,
    /// glibc stdio locks it holds (see `tcb::LentLock`), once per level of nesting.
    pub(super) stdio_locks: Vec<usize>,
    /// The current park may be interrupted by a signal (EINTR).
    pub(super) interruptible: bool,
    /// The number of the current park (see interrupt.rs).
    pub(super) parked_at: u64,
    /// The current park is a cancellation point.
    pub(super) cancellable: bool,
    /// The current park armed a timer (it counts in `timed_waits` until dispatched).
    pub(super) timed_wait: bool,
    /// pthread_cancel was called for this thread.
    pub(super) cancel_pending: bool,
    /// PTHREAD_CANCEL_DISABLE.
    pub(super) cancel_disabled: bool,
    /// PTHREAD_CANCEL_ASYNCHRONOUS (recorded; acted on as deferred).
    pub(super) cancel_async: bool,
    /// The innermost pthread_cleanup_push buffer (the program's memory), 0 if none.
    pub(super) cleanup_top: usize,
    /// This thread's signal mask (kernel sigset: bit n-1 for signal n).
    pub(super) sigmask: u64,
    /// Signals whose handlers this thread must run (see interrupt.rs), same bits.
    pub(super) handlers_due: u64,
    /// Whether every handler due was installed with SA_RESTART (what an interruptible
    /// wait they end returns: see park_as).
    pub(super) due_restart: bool,
    /// Its waits do not run handlers (a helper thread writes into its stack until the
    /// wait ends, so the handler must not jump out of it).
    pub(super) holds_handlers: bool,
    /// Its latest sigwait's park: the signals it waits for and the wait's sequence number
    /// (see signals.rs `keep_for_blocking`); stale once that wait ended (`seq` moved on).
    pub(super) waits_for_signals: (u64, u32),
    /// Its signal handlers that are running (its mask is the innermost one's).
    pub(super) handler_frames: handler::Frames,
    /// Its thread id and the per-thread kernel state greenify keeps for it.
    pub(super) identity: Identity,
    /// Why and since when (coarse clock, ns; 0 until stamped, see snapshot.rs) it is
    /// parked, for a thread dump.
    pub(super) park_reason: Reason,
    pub(super) parked_since: u64,
    /// Its registers when it last switched out, for a thread dump (see snapshot.rs).
    pub(super) saved_registers: [usize; 3],
    /// What it waits for in the park under the sequence given, for the deadlock report.
    pub(super) blocked: Note,
}

impl Thread {
    /// Where its stack's gap is checked at switches (`stack::gap_check_needed`: no
    /// userfaultfd watch), reports an overflow that wrote there (the process ends).
    /// The test inline and the check out of line: with the report inlined, LLVM kept the
    /// whole call out of line, a call at every switch (+32 instructions a yield round trip).
    #[inline(always)]
    pub(super) fn check_gap(&self) {
        if gap_check_needed(self.stack_kind) {
            self.check_unwatched_gap();
        }
    }

    #[cold]
    #[inline(never)]
    fn check_unwatched_gap(&self) {
        if !gap_untouched_below(self.stack.0) {
            overflow::report(
                &self.name,
                self.stack.1,
                "it wrote below the bottom of its stack",
            );
        }
    }

    /// It parks: if it runs on after its wakes (`runs_on`), how soon after its last
    /// counts (see `runs_on`).
    #[inline(always)]
    pub(super) fn note_wait_after_wake(&mut self) {
        if let Some(woke) = self.woke_at.take() {
            self.runs_on = if woke.elapsed() < WAITS_SOON {
                self.runs_on.saturating_sub(1)
            } else {
                RUNS_ON
            };
        }
    }

    pub(super) fn state(&self) -> State {
        self.word.load().state()
    }

    /// Made and not yet reaped: running, ready or parked.
    pub(super) fn is_live(&self) -> bool {
        self.word.load().is_live()
    }

    pub(super) fn free() -> Thread {
        Thread {
            generation: 0,
            word: StateWord::free(),
            co: None,
            yielder: std::ptr::null(),
            runs_on: 0,
            woke_at: None,
            ran_on: std::ptr::null_mut(),
            retval: 0,
            detached: false,
            joiner: None,
            name: [0; 16],
            stack: (0, 0),
            stack_kind: StackKind::User,
            tcb: 0,
            specific: Values::default(),
            stdio_locks: Vec::new(),
            interruptible: false,
            parked_at: 0,
            cancellable: false,
            timed_wait: false,
            cancel_pending: false,
            cancel_disabled: false,
            cancel_async: false,
            cleanup_top: 0,
            sigmask: 0,
            handlers_due: 0,
            due_restart: false,
            holds_handlers: false,
            waits_for_signals: (0, 0),
            handler_frames: handler::Frames::NONE,
            identity: Identity::FREE,
            park_reason: Reason::Yield,
            parked_since: 0,
            saved_registers: [0; 3],
            blocked: Note::NOTHING,
        }
    }
}
