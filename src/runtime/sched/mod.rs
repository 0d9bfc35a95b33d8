//! The scheduler of one OS thread: green threads, the run queue, park and ready.
//!
//! # Model
//! The OS thread's own stack belongs to the green thread [`MAIN`] (the program's main
//! thread keeps its stack). Every other green thread is a corosensei coroutine on a
//! [`GreenStack`](crate::runtime::stack::GreenStack). Coroutines are only ever resumed from the *run loop*, and the run loop
//! only runs on MAIN's stack, inside MAIN's own `park`: when MAIN must wait, it runs the
//! other threads until it is ready again. A coroutine that parks suspends back into that
//! loop. So a switch between two coroutines passes through the loop (two ~2 ns switches),
//! and a green thread never leaves the OS thread that created it.
//!
//! # States
//! ```text
//!   spawn -> Ready -> Running -> (park) Parked -> (ready) Ready -> ... -> Exited
//! ```
//! A parked thread is woken by a [`WaitKey`]: its id plus its wait sequence number. Every
//! wake bumps the sequence, so the other registrations of the same wait (a timer, other
//! fds of a poll set) no longer match and are ignored: no wait is ever woken twice, and
//! no stale event can wake a later wait.
//!
//! errno is per green thread: `park` saves it before switching away and restores it after.
//!
//! # TCBs
//! With per-thread TLS on (see tcb.rs and [`Config::tls`]), every green thread but MAIN
//! has a TCB of its own, made at spawn and put back on the pool's free list when the thread
//! is done; the run loop switches the thread pointer as it dispatches, and a thread's
//! `pthread_t` is its TCB's address. Off, all share the OS thread's TCB and handles are
//! tagged numbers.
//!
//! # Access
//! The scheduler lives in a leaked box reached through a word of the TCB (see
//! os_thread.rs), which every green TCB carries too. [`with`]
//! lends it out for a short, non-switching section; re-entering it is a bug and aborts.
//!
//! # Rooms
//! This file keeps the [`Scheduler`] itself, its creation and [`with`]; each submodule
//! adds one job to it: `thread` (the per-thread record), `run` (the run loop and
//! switching), `park`, `slice` (yield and stepping aside), `lifecycle` (spawn, join,
//! exit, detach), `attrs`, `handle` (`pthread_t`), `tls`, `signals` (masks and handler
//! delivery), `cancel`, `deadlock` (the watchdog's cycle of waits), `identity` (thread
//! ids), `io` (the reactor), `futex_wait`, `fork` (the child's reset) and `stats`. The
//! vocabulary of waiting they share with the reactor, timers and futex table is
//! `runtime/wait.rs`.

mod attrs;
mod cancel;
mod deadlock;
mod fork;
mod futex_wait;
mod handle;
mod identity;
mod io;
mod lifecycle;
mod park;
mod run;
mod signals;
mod slice;
pub mod snapshot;
mod stats;
#[cfg(test)]
mod tests;
mod thread;
mod tls;

pub use super::wait::{Reason, ThreadId, WaitKey, Wake, MAIN};
pub use attrs::{is_detached, name, set_name, specific, stack_bounds};
pub use cancel::{
    cancel, cancel_requested, cancel_taken, cancellation_point, cleanup_top, set_cancel_action,
    set_cancel_async, set_cancel_disabled, set_cleanup_top,
};
pub use deadlock::{mutex_taken, waits_for_mutex};
pub use fork::after_fork_child;
pub use futex_wait::{futex_wait, futex_wake};
pub use handle::{is_green_handle, Handle};
pub use identity::{
    altstack, current_tid, running_identity, set_altstack, thread_by_tid, AltStack, PID_MAX_LIMIT,
};
pub use io::{fd_closed, fd_poke, is_drained, open_reactor, set_drained, wait_fd, wait_fds};
pub use lifecycle::{
    current_handle, current_id, current_is_main, detach, exists, exit_current, exit_main, is_alive,
    is_alone, join, spawn, thread_id, JoinWait, SpawnOptions, StackRequest,
};
pub use park::{current_key, park, park_interruptible, sleep_until, Interrupts};
pub use run::stdio_lock;
pub use signals::{
    apply_interruptions, current_for_signal, enter_handler, hold_handlers, leave_handler,
    reapply_mask, set_handler_action, sigmask, signal_is_for_current, take_due_handlers,
};
pub use slice::{completed_without_parking, preempt, preempt_at_return, yield_now};
pub use stats::{stats, Stats};
pub use tls::{os_thread_tcb, thread_exiting};

use crate::runtime::reactor::Reactor;
use crate::runtime::stack::StackPool;
use crate::runtime::timer::Timers;
use crate::runtime::{futex, monitor, os_thread, overflow};
use identity::{os_tid, Identity};
use signals::os_sigmask;
use std::collections::VecDeque;
use std::sync::atomic::{compiler_fence, Ordering::SeqCst};
use std::time::Instant;
use thread::{State, Thread};
use tls::Tls;

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// At most this many slots get a real guard page (fewer if the machine's mapping
    /// limit affords fewer, see `stack.rs`).
    pub guard_budget: usize,
    /// Lowest fd number for the scheduler's own fds.
    pub fd_floor: u32,
    /// Whether green threads get TCBs of their own (decided at the first spawn).
    pub tls: crate::config::Tls,
}

pub struct Scheduler {
    threads: Vec<Thread>,
    free_ids: Vec<ThreadId>,
    run_queue: VecDeque<ThreadId>,
    current: ThreadId,
    /// Green threads other than MAIN that have not exited.
    live: u64,
    main_exited: bool,
    reactor: Reactor,
    timers: Timers,
    /// Parked threads with an armed timer, for timer compaction.
    timed_waits: usize,
    stacks: StackPool,
    dispatches_since_poll: u32,
    woken: Vec<WaitKey>,
    /// Green threads parked by address (the green futex).
    futex: futex::Table,
    /// Wakes posted from outside this thread; its doorbell eventfd (owned, -1 until the
    /// reactor is opened, see [`Scheduler::open_reactor`]) stays open for the process's life.
    /// While the reactor is unopened in a forked child, `doorbell` is the parent's, kept
    /// only to hold its number (see `Reactor::after_fork`).
    mailbox: &'static futex::Mailbox,
    doorbell: i32,
    /// Lowest number for our own fds.
    fd_floor: u32,
    /// In a child forked by another green thread, MAIN does not exist: when the last
    /// thread ends the process exits, instead of returning into MAIN's code.
    main_gone: bool,
    /// The signal mask the OS thread has now.
    applied_mask: u64,
    /// Some thread's mask differs from the others'.
    masks_vary: bool,
    stats: Stats,
    /// A `with` section holds the scheduler (re-entering it is a bug).
    lent: bool,
    /// Hooked calls that came back without waiting since the current thread was
    /// dispatched, and when its slice began (see [`completed_without_parking`]).
    unparked_calls: u32,
    slice_start: Option<Instant>,
    /// Ready threads that used up their slice: they wait while the others run, for up to
    /// a slice since `preempted_turn` (when this queue last had a turn).
    preempted: VecDeque<ThreadId>,
    preempted_turn: Instant,
    tls: Tls,
    /// The OS thread it runs on.
    os_tid: rustix::thread::Pid,
    /// What the preemption monitor watches of this worker: the run loop bumps its
    /// dispatch count and says when it waits idle (see monitor.rs).
    worker: &'static monitor::Worker,
    /// Threads parked since the last look at epoll, which stamps them (see snapshot.rs).
    unstamped: Vec<ThreadId>,
}

/// The calling OS thread's scheduler (from a word of the TCB that every green TCB
/// carries too: see os_thread.rs), or null.
#[inline(always)]
fn current_sched() -> *mut Scheduler {
    match os_thread::sched_word() {
        os_thread::UNDECIDED | os_thread::NO_SCHEDULER => std::ptr::null_mut(),
        sched => sched as *mut Scheduler,
    }
}

/// Creates the scheduler of the calling OS thread; its current code becomes [`MAIN`].
/// It opens no fd: its reactor is opened when it first has to wait.
pub fn init_current_thread(config: Config) {
    let os_thread = rustix::thread::gettid();
    // glibc hands an exited thread's TCB, words and all, to a new thread: a scheduler
    // word is this thread's only if the scheduler says so.
    // SAFETY: schedulers are never freed.
    if is_active() && unsafe { (*current_sched()).os_tid } == os_thread {
        return;
    }
    let mut main = Thread::free();
    main.state = State::Running;
    main.name[..4].copy_from_slice(b"main");
    main.identity = Identity::new(os_tid());
    let os_mask = os_sigmask(None);
    main.sigmask = os_mask;
    let sched = Box::new(Scheduler {
        threads: vec![main],
        free_ids: Vec::new(),
        run_queue: VecDeque::new(),
        current: MAIN,
        live: 0,
        main_exited: false,
        reactor: Reactor::new(config.fd_floor),
        timers: Timers::default(),
        timed_waits: 0,
        stacks: StackPool::new(config.guard_budget),
        dispatches_since_poll: 0,
        woken: Vec::new(),
        futex: futex::Table::default(),
        mailbox: futex::new_mailbox(),
        doorbell: -1,
        fd_floor: config.fd_floor,
        main_gone: false,
        applied_mask: os_mask,
        masks_vary: false,
        stats: Stats::default(),
        lent: false,
        unparked_calls: 0,
        slice_start: None,
        preempted: VecDeque::new(),
        preempted_turn: Instant::now(),
        tls: Tls::Undecided(config.tls),
        os_tid: os_thread,
        worker: &monitor::WORKER,
        unstamped: Vec::new(),
    });
    let sched = Box::into_raw(sched);
    os_thread::set_sched_word(sched as usize);
    os_thread::set_thread_word(MAIN as usize + 1);
}

/// Whether the calling OS thread runs a scheduler.
pub fn is_active() -> bool {
    !current_sched().is_null()
}

/// Lends the scheduler out for a section that does not switch.
#[inline]
fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    let sched = current_sched();
    if sched.is_null() {
        overflow::die("greenify: runtime used on an OS thread without a scheduler");
    }
    // SAFETY: the pointer comes from Box::into_raw and is never freed. Only this OS
    // thread uses it, and `lent` makes the reference below the only one while `f` runs.
    unsafe {
        let lent = std::ptr::addr_of_mut!((*sched).lent);
        if lent.read_volatile() {
            overflow::die("greenify: runtime: scheduler re-entered");
        }
        // Signal handlers read `lent` to stay out of a section they interrupted: it must
        // really be set for the whole section. A plain store that nothing in the section
        // reads was elided when the section was inlined (a signal handler then entered
        // the scheduler inside it: CPython's test_stress_delivery_simultaneous).
        lent.write_volatile(true);
        compiler_fence(SeqCst);
        let result = f(&mut *sched);
        compiler_fence(SeqCst);
        lent.write_volatile(false);
        result
    }
}

impl Scheduler {
    fn key(&self, tid: ThreadId) -> WaitKey {
        WaitKey {
            tid,
            seq: self.threads[tid as usize].seq,
        }
    }

    fn is_waiting(threads: &[Thread], key: WaitKey) -> bool {
        let t = &threads[key.tid as usize];
        t.state == State::Parked && t.seq == key.seq
    }

    /// Makes the waiter of `key` ready, if that wait is still the one it is in.
    fn ready(&mut self, key: WaitKey, how: Wake) {
        let t = &mut self.threads[key.tid as usize];
        if t.state != State::Parked || t.seq != key.seq {
            return;
        }
        t.seq = t.seq.wrapping_add(1);
        t.wake = how;
        t.state = State::Ready;
        self.run_queue.push_back(key.tid);
    }
}
