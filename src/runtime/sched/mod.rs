//! The scheduler: green threads, the run queues, park and ready, shared by the workers
//! (the OS threads that run green threads, see worker.rs; one unless `GREENIFY_WORKERS`
//! says more).
//!
//! # Model
//! The OS thread's own stack belongs to the green thread [`MAIN`] (the program's main
//! thread keeps its stack). Every other green thread is a corosensei coroutine on a
//! [`GreenStack`](crate::runtime::stack::GreenStack). Coroutines are only ever resumed from the *run loop*. With one
//! worker the run loop runs on MAIN's stack, inside MAIN's own `park`: when MAIN must
//! wait, it runs the other threads until it is ready again. A coroutine that parks
//! suspends back into that loop. So a switch between two coroutines passes through the
//! loop (two ~2 ns switches). With several, every worker runs the loop on a stack of its
//! own (the first one's made as they start), and MAIN switches by hand between its stack
//! and the loop of the worker it runs on (context.rs): every green thread, MAIN too, may
//! resume on any worker.
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
//! (which keeps the OS thread's, and takes it along to any worker) has a TCB of its own, made at spawn and put back on the pool's free list when the thread
//! is done; the run loop switches the thread pointer as it dispatches, and a thread's
//! `pthread_t` is its TCB's address. Off, all share the OS thread's TCB and handles are
//! tagged numbers.
//!
//! # Access
//! The scheduler lives in a leaked box. A word of the TCB (see os_thread.rs), which
//! every green TCB carries too, names the record of the worker (the OS thread) running
//! there, which points at it (see worker.rs). [`with`] lends it out for a short,
//! non-switching section, under its lock once several workers may exist; re-entering
//! it is a bug and aborts.
//!
//! # Rooms
//! This file keeps the [`Scheduler`] itself, its creation and [`with`]; each submodule
//! adds one job to it: `thread` (the per-thread record), `run` (the run loop and
//! switching), `park`, `queues` (a run queue per worker, placement and stealing),
//! `slice` (yield, stepping aside and the pick of the next thread), `lifecycle` (spawn, join,
//! exit, detach), `attrs`, `handle` (`pthread_t`), `tls`, `signals` (masks and handler
//! delivery), `cancel`, `deadlock` (the watchdog's cycle of waits), `identity` (thread
//! ids), `io` (the reactor), `futex_wait`, `fork` (the child's reset), `stats` and
//! `worker` (the per-OS-thread record and the lock). The vocabulary of waiting they share
//! with the reactor, timers and futex table is `runtime/wait.rs`.

mod attrs;
mod cancel;
mod context;
mod deadlock;
mod fork;
mod futex_wait;
mod handle;
mod handoff;
mod identity;
mod io;
mod lifecycle;
mod look;
mod nudge;
mod park;
mod queues;
mod run;
mod signals;
mod slice;
pub mod snapshot;
mod state;
mod stats;
mod table;
#[cfg(test)]
mod tests;
mod thread;
mod tls;
mod worker;

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
pub use handoff::{hand_off, in_section, spares_started, take_next, MAX_SPARES};
pub use identity::{
    altstack, current_tid, running_identity, set_altstack, thread_by_tid, AltStack, PID_MAX_LIMIT,
};
pub use io::{
    fd_closed, fd_closed_by, fd_poke, open_reactor, set_drained, wait_fd, wait_fds,
    wait_read_if_drained,
};
pub use lifecycle::{
    current_handle, current_id, current_is_main, detach, exists, exit_current, exit_main, is_alive,
    is_alone, join, new_tcb_block, spawn, spawn_to, thread_id, JoinWait, SpawnOptions,
    StackRequest,
};
pub use nudge::{close_idle_masks, hold_here, nudge_holders, settle_nudge, Frame};
pub use park::{current_key, park, park_interruptible, sleep_until, Interrupts};
pub use run::stdio_lock;
pub use signals::{
    apply_interruptions, current_for_signal, enter_handler, hold_handlers, keep_for_blocking,
    kept_signal_taker, leave_handler, reapply_mask, sent_to_main_tid, set_handler_action,
    set_keep_action, sigmask, signal_is_for_current, take_due_handlers, taken_now, wait_signals,
    KeptTaker,
};
pub use slice::{
    answer_dump_here, completed_without_parking, preempt, preempt_at_return, yield_now,
};
pub use stats::{each_counter, stats, Stats};
pub use tls::{main_tcb, os_thread_tcb, os_thread_tcb_if_lent, thread_exiting};

use crate::runtime::reactor::Reactor;
use crate::runtime::stack::StackPool;
use crate::runtime::timer::Timers;
use crate::runtime::{futex, monitor, os_thread, overflow};
use identity::{os_tid, Identity};
pub use look::{is_look, stand_still};
use signals::os_sigmask;
use state::Woken;
use std::collections::VecDeque;
use std::sync::atomic::{compiler_fence, AtomicU8, Ordering::SeqCst};
use std::time::Instant;
use table::Threads;
use thread::Thread;
use tls::Tls;
use worker::{BigLock, Home, Worker};
pub use worker::{APPLICATION_MODE, START_MODE};

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// At most this many slots get a real guard page (fewer if the machine's mapping
    /// limit affords fewer, see `stack.rs`).
    pub guard_budget: usize,
    /// Lowest fd number for the scheduler's own fds.
    pub fd_floor: u32,
    /// Whether green threads get TCBs of their own (decided at the first spawn).
    pub tls: crate::config::Tls,
    /// How many workers run green threads, from the first spawn on.
    pub workers: crate::config::Workers,
    /// What each worker OS thread but the first runs before its first green thread (the
    /// hooks arm it as the first was).
    pub worker_started: fn(),
}

pub struct Scheduler {
    /// Every thread's record, indexed by its id: records never move (see table.rs).
    threads: Threads,
    free_ids: Vec<ThreadId>,
    /// Where the next new thread is queued, among `all_workers` (see queues.rs).
    spread: usize,
    /// Green threads other than MAIN that have not exited.
    live: u64,
    main_exited: bool,
    /// MAIN may run on any worker: their run loops have stacks of their own (see
    /// `run::run_loop`).
    main_moves: bool,
    reactor: Reactor,
    timers: Timers,
    /// Parked threads with an armed timer, for timer compaction.
    timed_waits: usize,
    stacks: StackPool,
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
    /// Some thread's mask differs from the others'.
    masks_vary: bool,
    stats: Stats,
    /// Ready threads that used up their slice: they wait while the others run, for up to
    /// a slice since `preempted_turn` (when this queue last had a turn).
    preempted: VecDeque<ThreadId>,
    preempted_turn: Instant,
    tls: Tls,
    /// See [`Config::workers`].
    workers: crate::config::Workers,
    worker_started: fn(),
    /// Every worker's record, the first one first (see worker.rs).
    all_workers: Vec<*mut Worker>,
    /// The first spawn started the other workers (see `Scheduler::share`); a forked
    /// child starts its own at its next spawn (fork.rs).
    workers_started: bool,
    /// The worker waiting in epoll for all the idle ones, or null; until when, and
    /// whether it was already asked to look again (see `Scheduler::wake_worker`).
    poller: *mut Worker,
    poll_until: Option<Instant>,
    poller_kicked: bool,
    /// Threads parked since the last look at epoll, which stamps them (see snapshot.rs).
    unstamped: Vec<ThreadId>,
    /// Whether threads gather on the first worker (see worker.rs).
    gather: worker::Gather,
}

/// The calling OS thread's worker record (from a word of the TCB that every green TCB
/// carries too: see os_thread.rs), or null.
#[inline(always)]
fn current_worker() -> *mut Worker {
    match os_thread::sched_word() {
        os_thread::UNDECIDED | os_thread::NO_SCHEDULER => std::ptr::null_mut(),
        worker => worker as *mut Worker,
    }
}

/// The calling OS thread's worker record, when it is known to run a scheduler (inside a
/// section, or a green thread that just switched): no check of the word.
#[inline(always)]
fn running_worker() -> *mut Worker {
    os_thread::sched_word() as *mut Worker
}

/// The green thread the calling OS thread runs, read without a section (one would cost
/// more than the rest of an uncontended lock's hook): the worker's own record, which only
/// this OS thread writes, in sections, and a thread never switches inside greenify.
#[inline(always)]
fn running_thread() -> ThreadId {
    let worker = current_worker();
    if worker.is_null() {
        overflow::die("greenify: runtime used on an OS thread without a scheduler");
    }
    // SAFETY: worker records are never freed; a plain read through the raw pointer, no
    // reference made while a section (one a signal handler interrupted) may hold one.
    unsafe { std::ptr::addr_of!((*worker).current).read_volatile() }
}

/// The calling OS thread's scheduler, or null.
fn current_sched() -> *mut Scheduler {
    let worker = current_worker();
    if worker.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: worker records are never freed.
    unsafe { (*worker).sched }
}

/// Whether a section may start on this OS thread now: it runs a scheduler and is not
/// inside a section (a signal handler that interrupted one must stay out of it).
fn section_may_start() -> bool {
    let worker = current_worker();
    // SAFETY: worker records are never freed and only this OS thread writes this one; a
    // bool read through the raw pointer, no reference made while a section may hold one.
    !worker.is_null() && !unsafe { std::ptr::addr_of!((*worker).in_section).read_volatile() }
}

/// Creates the scheduler of the calling OS thread; its current code becomes [`MAIN`].
/// It opens no fd: its reactor is opened when it first has to wait.
pub fn init_current_thread(config: Config) {
    let os_thread = rustix::thread::gettid();
    // glibc hands an exited thread's TCB, words and all, to a new thread: a scheduler
    // word is this thread's only if the scheduler says so.
    // SAFETY: worker records are never freed.
    if is_active() && unsafe { (*current_worker()).os_tid } == os_thread {
        return;
    }
    let mut main = Thread::free();
    // Running, out: no other worker may dispatch it until its switch back to the loop
    // that ran it is complete (see `run::run_loop`).
    main.word = state::StateWord::running_main();
    main.name[..4].copy_from_slice(b"main");
    main.identity = Identity::new(os_tid());
    let os_mask = os_sigmask(None);
    main.sigmask = os_mask;
    let sched = Scheduler {
        threads: Threads::new(main),
        free_ids: Vec::new(),
        spread: 0,
        live: 0,
        main_exited: false,
        main_moves: false,
        reactor: Reactor::new(config.fd_floor),
        timers: Timers::default(),
        timed_waits: 0,
        stacks: StackPool::new(config.guard_budget),
        woken: Vec::new(),
        futex: futex::Table::default(),
        mailbox: futex::new_mailbox(),
        doorbell: -1,
        fd_floor: config.fd_floor,
        main_gone: false,
        masks_vary: false,
        stats: Stats::default(),
        preempted: VecDeque::new(),
        preempted_turn: Instant::now(),
        tls: Tls::Undecided(config.tls),
        workers: config.workers,
        worker_started: config.worker_started,
        all_workers: Vec::new(),
        workers_started: false,
        poller: std::ptr::null_mut(),
        poll_until: None,
        poller_kicked: false,
        unstamped: Vec::new(),
        gather: worker::Gather::new(),
    };
    let worker = Home::make(sched, Box::leak(Box::new(BigLock::new())), os_mask);
    // SAFETY: just made, not yet shared.
    unsafe {
        (*worker).runs_main = true;
        (*(*worker).sched).all_workers.push(worker);
    }
    os_thread::set_sched_word(worker as usize);
    os_thread::set_thread_word(MAIN as usize + 1);
}

/// The hooks' mode byte of the worker whose record `word` (a scheduler word, see
/// os_thread.rs) names: one per OS thread that runs green threads.
#[inline(always)]
pub fn hook_mode(word: usize) -> &'static AtomicU8 {
    // SAFETY: a scheduler word other than UNDECIDED and NO_SCHEDULER names a worker
    // record, and records are never freed; the byte is atomic.
    unsafe { &(*(word as *const Worker)).mode }
}

/// The calling worker's Syscall User Dispatch selector byte (the kernel reads one per OS
/// thread); None if this OS thread runs no scheduler. Also from a signal handler.
#[inline]
pub fn current_selector() -> Option<&'static AtomicU8> {
    let worker = current_worker();
    // SAFETY: a worker record, never freed; the byte is atomic.
    (!worker.is_null()).then(|| unsafe { &(*worker).selector })
}

/// What the preemption monitor watches of the calling worker, and the tag it is
/// registered with (its record's address, which [`hook_mode`] takes); None if this OS
/// thread runs no scheduler. Also from a signal handler.
pub fn watched() -> Option<(&'static crate::runtime::monitor::Worker, usize)> {
    let worker = current_worker();
    // SAFETY: a worker record, never freed; its `watch` is set before it runs threads.
    (!worker.is_null()).then(|| unsafe { ((*worker).watch, worker as usize) })
}

/// The stack record of the calling worker, for the fault handler (None if this OS thread
/// runs no scheduler).
pub fn running_stack() -> Option<&'static overflow::Running> {
    let worker = current_worker();
    // SAFETY: a worker record, never freed; the record's atomics only.
    (!worker.is_null()).then(|| unsafe { &(*worker).running_stack })
}

/// Whether the calling OS thread runs a scheduler.
pub fn is_active() -> bool {
    !current_sched().is_null()
}

/// Lends the scheduler out, under its lock once it is shared, for a section that does
/// not switch.
#[inline(always)]
fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    with_after(|| (), |s, ()| f(s))
}

/// Like [`with`], but first runs `wait` inside the section, before its lock is taken:
/// an idle worker's wait, which lets the other workers use the scheduler meanwhile while
/// signal handlers stay out of the section as during any other.
#[inline]
fn with_after<T, R>(wait: impl FnOnce() -> T, f: impl FnOnce(&mut Scheduler, T) -> R) -> R {
    let (worker, open) = open_section();
    let waited = wait();
    // SAFETY: worker records are never freed and only this OS thread writes this one;
    // the lock (once shared) or being the only worker makes the scheduler's reference
    // the only one.
    let result = unsafe {
        // Until a second worker may exist, this OS thread is the scheduler's only user and
        // the scheduler sits next to its record (see `Scheduler::share`): one predictable
        // branch, the lock's path out of line. `shared` is read again as the section
        // closes, volatile: a section that sets it also takes the lock (`share`), and a
        // flag known to the compiler for the whole section let it copy the call of `f`
        // onto both paths, after which LLVM inlined neither (a call per section).
        // The monitor may set `shared` from its own thread (the first hand-off, see
        // handoff.rs) while no section is open, or while one waits: such a section then
        // reads it set as it closes and releases the lock it did not take, which nobody
        // holds (no spare runs before a look finds this worker out of its section), so
        // the release changes nothing.
        let shared = std::ptr::addr_of!((*worker).shared);
        let sched = if shared.read_volatile() {
            Worker::lock_for_section(worker)
        } else {
            Home::sched_of(worker)
        };
        let result = f(&mut *sched, waited);
        if shared.read_volatile() {
            Worker::unlock_after_section(worker);
        }
        result
    };
    close_section(open);
    result
}

/// Lends out the calling worker's own record alone for a short section: signal handlers
/// stay out as during any section, but neither the scheduler nor its lock is needed, as
/// only this OS thread writes the record.
#[inline(always)]
fn with_worker<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    let (worker, open) = open_section();
    // SAFETY: worker records are never freed and only this OS thread writes this one;
    // `in_section` keeps the reference below the only one (a section of this OS thread,
    // ours or one a signal handler interrupted, would abort as re-entered).
    let result = f(unsafe { &mut *worker });
    close_section(open);
    result
}

/// Opens a section on the calling OS thread: marks its worker record inside one (a second,
/// from the section itself or a signal handler that interrupted it, aborts); returns the
/// record and its mark, for [`close_section`].
#[inline(always)]
fn open_section() -> (*mut Worker, *mut bool) {
    let worker = current_worker();
    if worker.is_null() {
        overflow::die("greenify: runtime used on an OS thread without a scheduler");
    }
    // SAFETY: worker records are never freed and only this OS thread writes this one; a
    // bool written through the raw pointer, no reference made.
    let in_section = unsafe { std::ptr::addr_of_mut!((*worker).in_section) };
    // SAFETY: as above.
    unsafe {
        if in_section.read_volatile() {
            overflow::die("greenify: runtime: scheduler re-entered");
        }
        // Signal handlers read `in_section` to stay out of a section they interrupted: it
        // must really be set for the whole section, lock wait included. A plain store that
        // nothing in the section reads was elided when the section was inlined (a signal
        // handler then entered the scheduler inside it: CPython's
        // test_stress_delivery_simultaneous).
        in_section.write_volatile(true);
    }
    compiler_fence(SeqCst);
    (worker, in_section)
}

/// Closes the section whose mark [`open_section`] set.
#[inline(always)]
fn close_section(in_section: *mut bool) {
    compiler_fence(SeqCst);
    // SAFETY: the calling OS thread's record, never freed; as in `open_section`.
    unsafe { in_section.write_volatile(false) };
}

impl Scheduler {
    /// The record of the worker that holds the scheduler: the calling OS thread's (a
    /// section never leaves the OS thread that opened it).
    #[inline(always)]
    fn w(&mut self) -> &mut Worker {
        // SAFETY: a section runs, so the scheduler word names this OS thread's record;
        // only this OS thread writes it, here inside its own section, and `&mut self`
        // keeps this the only reference made.
        unsafe { &mut *running_worker() }
    }

    /// The green thread the worker holding the scheduler runs.
    #[inline(always)]
    fn current(&self) -> ThreadId {
        // SAFETY: as in `w`; a plain read.
        unsafe { (*running_worker()).current }
    }

    /// The record of the green thread the worker holding the scheduler runs.
    fn running(&mut self) -> &mut Thread {
        let me = self.current();
        &mut self.threads[me as usize]
    }

    fn key(&self, tid: ThreadId) -> WaitKey {
        WaitKey {
            tid,
            seq: self.threads[tid as usize].word.load().seq(),
        }
    }

    /// One worker alone touches the thread records: their state words change by a plain
    /// load and store (see state.rs).
    #[inline(always)]
    fn alone(&self) -> bool {
        self.all_workers.len() <= 1
    }

    /// The current thread's key for a wait it registers now and parks in by a later
    /// section (a futex wait that is a cancellation point, a join): with several workers
    /// a wake may come in between, and must count (see [`Scheduler::ready`]).
    fn register_ahead(&mut self) -> WaitKey {
        let alone = self.alone();
        self.running().word.registered(alone);
        self.key(self.current())
    }

    /// Whether the wait `key` names is still on: its thread is parked in it, or registered
    /// it and runs on to park (see [`Scheduler::register_ahead`]). Every way out of a
    /// wait moves the thread's sequence on: a wake, the thread's end.
    fn is_waiting(threads: &Threads, key: WaitKey) -> bool {
        threads[key.tid as usize].word.load().waits(key.seq)
    }

    /// Makes the waiter of `key` ready, if that wait is still the one it is in. One woken
    /// between the section that registered its wait and the one it parks in (only another
    /// worker runs meanwhile) is owed the wake: that park ends at once.
    #[inline(always)]
    fn ready(&mut self, key: WaitKey, how: Wake) {
        let alone = self.alone();
        if self.threads[key.tid as usize]
            .word
            .woken(alone, key.seq, how)
            == Woken::Ready
        {
            self.enqueue(key.tid, Queue::Next);
        }
    }

    /// Queues `tid`, which is Ready, in `queue`: the one way a thread enters a queue. A
    /// single worker queues at once, `Next` as `Run`: its run loop dispatches only after
    /// the coroutine of the thread it ran is back, and there is no idle worker to wake.
    fn enqueue(&mut self, tid: ThreadId, queue: Queue) {
        if self.all_workers.len() > 1 {
            return self.enqueue_shared(tid, queue);
        }
        match queue {
            Queue::Run | Queue::Next => self.w().queue.push_back(tid),
            Queue::Preempted => self.push_preempted(tid),
        }
    }

    /// [`Scheduler::enqueue`] with several workers. A thread whose coroutine is out is
    /// still on the worker that dispatched it (running, or parked but not yet suspended):
    /// only that worker's run loop may queue it, once the coroutine is back (as Go's
    /// park_m), or another worker could pick it before it has left; `Next` then puts it in
    /// that worker's runnext. MAIN is out in the same way until its switch back to the
    /// loop that ran it is complete (see `run::run_loop`). A thread queued in a
    /// run queue (placed and woken for as queues.rs says) wakes a worker; one put in
    /// runnext does not, as Go's `ready()` puts the thread a running
    /// one wakes in its P's `runnext`: the waker usually waits next (a lock or condvar
    /// hand-off, a request and its answer), and the pair goes on on one OS thread instead
    /// of waking another for every hand-off. If the waker runs on instead, an idle worker
    /// takes the thread at the monitor's next look (see `take_next`, handoff.rs), so
    /// without a monitor (`GREENIFY_SLICE_MS=0` and no watchdog) nothing goes to runnext.
    /// A waker seen to run on so (`Thread::runs_on`: a producer that hands work to others
    /// and computes on, as `sort --parallel`'s merging threads and `xz -T`'s reader do)
    /// queues the threads it wakes in the run queues instead, waking an idle worker at
    /// once (Go's `ready` wakes one for every runnext too): with runnext, each of its
    /// consumers waited 2.5 to 5 ms for that look, where natively it ran at once.
    /// MAIN goes to the first worker's only while only that worker runs it. Nor does a thread woken
    /// on a worker that the threads gathered away from (see `Gather`, worker.rs).
    #[inline(never)]
    fn enqueue_shared(&mut self, tid: ThreadId, queue: Queue) {
        self.check_waker_gap();
        let t = &mut self.threads[tid as usize];
        if queue == Queue::Next && t.park_reason == Reason::Sync && t.ran_on != running_worker() {
            // A lock or condvar hand-off across workers (see `Gather`, worker.rs); kept out
            // of `ready`, which a single worker needs inlined into its wakes.
            self.lock_handed_across();
        }
        // Its coroutine out (MAIN: out only once it may move): its run loop queues it.
        if (tid != MAIN || self.main_moves)
            && self.threads[tid as usize]
                .word
                .deferred(self.alone(), queue)
        {
            return;
        }
        let kicked = match queue {
            Queue::Next
                if (tid != MAIN || self.w().index == 0 || self.main_moves)
                    && monitor::started()
                    && !self.gathered()
                    && !self.waker_runs_on() =>
            {
                let movable = tid != MAIN || self.main_moves;
                let w = self.w();
                w.watch.next_waits(movable);
                match w.next.replace(tid) {
                    Some(kicked) => kicked,
                    None => return,
                }
            }
            Queue::Run | Queue::Next => tid,
            Queue::Preempted => {
                self.push_preempted(tid);
                self.wake_worker(tid == MAIN && !self.main_moves);
                return;
            }
        };
        self.push_ready(kicked);
    }

    /// Whether the running thread runs on after its wakes (see `Thread::runs_on`); if so,
    /// notes that it woke one now. No thread runs while the worker's loop makes a wake
    /// (what its look at epoll or its timers found).
    fn waker_runs_on(&mut self) -> bool {
        if self.w().in_loop {
            return false;
        }
        let waker = self.running();
        if waker.runs_on == 0 {
            return false;
        }
        waker.woke_at = Some(Instant::now());
        true
    }

    /// With several workers, a thread that the running one wakes may run on another worker
    /// before the running one switches: where its stack's gap is checked at switches
    /// (`stack::gap_check_needed`: no userfaultfd watch), it is checked before the wake
    /// too, so that an overflow that wrote into a neighbour's stack is reported before that
    /// neighbour runs (it died of a silent SIGSEGV, 3 runs in 16 of the `stacks` test's
    /// forked-child case with 2 workers).
    fn check_waker_gap(&self) {
        let me = self.current();
        if me == MAIN {
            return;
        }
        self.threads[me as usize].check_gap();
    }

    /// Queues `tid` in `preempted` (out of line: rare, and it reads the clock).
    #[inline(never)]
    fn push_preempted(&mut self, tid: ThreadId) {
        if self.preempted.is_empty() {
            self.preempted_turn = Instant::now();
        }
        self.preempted.push_back(tid);
    }
}

/// Where a ready thread waits for its turn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Queue {
    /// The run queue.
    Run,
    /// Made ready by the running thread: with several workers, next on its worker (see
    /// [`Scheduler::enqueue_shared`]); else the run queue.
    Next,
    /// Behind the ready threads for up to a slice (see slice.rs).
    Preempted,
}
