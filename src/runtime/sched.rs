//! The scheduler of one OS thread: green threads, the run queue, park and ready.
//!
//! # Model
//! The OS thread's own stack belongs to the green thread [`MAIN`] (the program's main
//! thread keeps its stack). Every other green thread is a corosensei coroutine on a
//! [`GreenStack`]. Coroutines are only ever resumed from the *run loop*, and the run loop
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

use super::keys::Values;
use super::reactor::{Interest, Reactor, RegisterError};
use super::stack::{
    gap_check_needed, gap_untouched_below, round_stack_size, GreenStack, StackKind, StackPool,
};
use super::timer::Timers;
use super::{errno, futex, interrupt, monitor, os_thread, overflow, tcb};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use rustix::io::Errno;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub type ThreadId = u32;
/// The program's main thread (the OS thread's own stack).
pub const MAIN: ThreadId = 0;

/// Identifies one wait of one thread.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct WaitKey {
    pub tid: ThreadId,
    pub seq: u32,
}

/// Why a parked thread was woken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wake {
    /// What it waited for happened (or may have: callers re-check).
    Ready,
    TimedOut,
    /// The fd it waited on was closed.
    Closed,
    /// A signal handler ran (EINTR); with SA_RESTART, restartable calls go on waiting.
    Interrupted {
        restart: bool,
    },
}

/// What a thread parks for; counted in the stats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    Read,
    Write,
    Accept,
    Connect,
    Sleep,
    Poll,
    Join,
    Yield,
    /// Mutexes, condition variables, semaphores and the other synchronisation objects.
    Sync,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Read,
        Reason::Write,
        Reason::Accept,
        Reason::Connect,
        Reason::Sleep,
        Reason::Poll,
        Reason::Join,
        Reason::Yield,
        Reason::Sync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Read => "read",
            Reason::Write => "write",
            Reason::Accept => "accept",
            Reason::Connect => "connect",
            Reason::Sleep => "sleep",
            Reason::Poll => "poll",
            Reason::Join => "join",
            Reason::Yield => "yield",
            Reason::Sync => "sync",
        }
    }
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    pub threads_created: u64,
    pub peak_alive: u64,
    pub context_switches: u64,
    pub epoll_waits: u64,
    pub parks: [u64; Reason::ALL.len()],
}

/// A green thread's handle as the program sees it (`pthread_t`).
///
/// With TCBs per thread, a handle is the thread's TCB address (what glibc's own
/// `pthread_self` reads from the TCB). Otherwise handles are non-canonical addresses (top
/// 17 bits set), which no real `pthread_t` can be: a libc function we failed to hook
/// crashes at once on one instead of reading garbage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Handle(pub u64);

const HANDLE_TAG: u64 = 0xFFFF_8000_0000_0000;
const TID_BITS: u32 = 24;
const GEN_MASK: u64 = (1 << (47 - TID_BITS)) - 1;

impl Handle {
    fn new(tid: ThreadId, generation: u32) -> Handle {
        Handle(HANDLE_TAG | ((u64::from(generation) & GEN_MASK) << TID_BITS) | u64::from(tid))
    }

    fn is_tagged(raw: u64) -> bool {
        raw & HANDLE_TAG == HANDLE_TAG
    }

    fn decode(self) -> Option<(ThreadId, u32)> {
        if !Handle::is_tagged(self.0) {
            return None;
        }
        let tid = (self.0 & ((1 << TID_BITS) - 1)) as ThreadId;
        let generation = ((self.0 >> TID_BITS) & GEN_MASK) as u32;
        Some((tid, generation))
    }
}

/// How `join` may wait.
#[derive(Clone, Copy, Debug)]
pub enum JoinWait {
    Block,
    Try,
    Until(Instant),
}

/// Where a new thread's stack comes from.
#[derive(Clone, Copy, Debug)]
pub enum StackRequest {
    /// One of ours, with at least this many usable bytes.
    Size(usize),
    /// The program's own memory (`pthread_attr_setstack`).
    User { addr: usize, size: usize },
}

#[derive(Clone, Copy, Debug)]
pub struct SpawnOptions {
    pub stack: StackRequest,
    pub detached: bool,
    /// The new thread's name (a new thread inherits its creator's, as natively).
    pub name: [u8; 16],
    /// Its signal mask; None: its creator's, as natively.
    pub sigmask: Option<u64>,
}

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

/// Whether green threads have TCBs of their own.
enum Tls {
    /// Decided at the first spawn (auto mode looks at the modules loaded by then).
    Undecided(crate::config::Tls),
    Shared,
    PerThread(tcb::Pool),
}

enum Suspend {
    Park,
    Exit(usize),
}

type Co = Coroutine<(), Suspend, usize, GreenStack>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Free,
    Ready,
    Running,
    Parked,
    Exited,
}

struct Thread {
    generation: u32,
    state: State,
    /// The coroutine, while the thread is not running (MAIN has none).
    co: Option<Co>,
    yielder: *const Yielder<(), Suspend>,
    seq: u32,
    wake: Wake,
    retval: usize,
    detached: bool,
    joiner: Option<WaitKey>,
    name: [u8; 16],
    stack: (usize, usize),
    stack_kind: StackKind,
    /// Its own TCB (0: the OS thread's).
    tcb: usize,
    /// pthread_setspecific values.
    specific: Values,
    /// glibc stdio locks it holds (see `tcb::LentLock`), once per level of nesting.
    stdio_locks: Vec<usize>,
    /// The current park may be interrupted by a signal (EINTR).
    interruptible: bool,
    /// The number of the current park (see interrupt.rs).
    parked_at: u64,
    /// The current park is a cancellation point.
    cancellable: bool,
    /// pthread_cancel was called for this thread.
    cancel_pending: bool,
    /// PTHREAD_CANCEL_DISABLE.
    cancel_disabled: bool,
    /// PTHREAD_CANCEL_ASYNCHRONOUS (recorded; acted on as deferred).
    cancel_async: bool,
    /// The innermost pthread_cleanup_push buffer (the program's memory), 0 if none.
    cleanup_top: usize,
    /// This thread's signal mask (kernel sigset: bit n-1 for signal n).
    sigmask: u64,
    /// Signals whose handlers this thread must run (see interrupt.rs), same bits.
    handlers_due: u64,
    /// Its waits do not run handlers (a helper thread writes into its stack until the
    /// wait ends, so the handler must not jump out of it).
    holds_handlers: bool,
    /// Its thread id and the per-thread kernel state greenify keeps for it.
    identity: Identity,
}

impl Thread {
    fn free() -> Thread {
        Thread {
            generation: 0,
            state: State::Free,
            co: None,
            yielder: std::ptr::null(),
            seq: 0,
            wake: Wake::Ready,
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
            cancel_pending: false,
            cancel_disabled: false,
            cancel_async: false,
            cleanup_top: 0,
            sigmask: 0,
            handlers_due: 0,
            holds_handlers: false,
            identity: Identity::FREE,
        }
    }
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
}

/// Dispatches between two non-blocking looks at epoll when threads are always ready.
const POLL_EVERY: u32 = 61;

/// The calling OS thread's scheduler (from a word of the TCB that every green TCB
/// carries too: see os_thread.rs), or null.
#[inline(always)]
fn current_sched() -> *mut Scheduler {
    match os_thread::sched_word() {
        os_thread::UNDECIDED | os_thread::NO_SCHEDULER => std::ptr::null_mut(),
        sched => sched as *mut Scheduler,
    }
}

/// A new doorbell eventfd (above `fd_floor` or at `placeholder`'s number, our own) that
/// `reactor` watches.
fn new_doorbell(
    reactor: &mut Reactor,
    fd_floor: u32,
    placeholder: &mut Option<i32>,
) -> Result<i32, Errno> {
    use rustix::fd::{BorrowedFd, FromRawFd};
    let make = || {
        rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
    };
    let doorbell = super::reactor::new_internal_fd(make, placeholder, fd_floor)?;
    // SAFETY: the fd just made, borrowed for one epoll_ctl.
    if let Err(e) = reactor.watch_doorbell(unsafe { BorrowedFd::borrow_raw(doorbell) }) {
        // SAFETY: the fd just made, given up.
        super::reactor::close_raw(unsafe { rustix::fd::OwnedFd::from_raw_fd(doorbell) });
        return Err(e);
    }
    Ok(doorbell)
}

/// Runs `make` (which opens fds); if the soft fd limit stops it, runs it once more under
/// the hard limit and then puts the soft one back (fds above a soft limit stay usable).
/// A program that used every fd up to its soft limit still gets greenify's fds when it
/// first waits.
fn under_hard_fd_limit<T>(mut make: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    match make() {
        Err(Errno::MFILE) => {}
        other => return other,
    }
    let soft = getrlimit(Resource::Nofile);
    if soft.current == soft.maximum {
        return Err(Errno::MFILE);
    }
    let hard = Rlimit {
        current: soft.maximum,
        maximum: soft.maximum,
    };
    setrlimit(Resource::Nofile, hard)?;
    let result = make();
    let _ = setrlimit(Resource::Nofile, soft);
    result
}

/// In the child of a fork, on the thread that forked: only this green thread exists.
/// The epoll instance and the doorbell are the parent's (shared across fork), so they
/// are closed, and the child makes its own when it first needs them (a child that only
/// execs never does); the other threads, their waits and timers are dropped (their
/// coroutines are forgotten, never resumed nor unwound).
pub fn after_fork_child() {
    futex::forget_mailboxes();
    super::stack::after_fork_child();
    if !is_active() {
        interrupt::take(|_| {});
        return;
    }
    let sched = current_sched();
    // A fork from a signal handler may have interrupted a scheduler section (the idle
    // epoll_wait): the child's handler returns into it, so it stays lent afterwards.
    // SAFETY: the scheduler is never freed; only this thread exists in the child.
    let interrupted_section = unsafe { std::mem::replace(&mut (*sched).lent, false) };
    with(|s| {
        // The parent's epoll instance and doorbell stay open, unused, holding their
        // numbers until the child makes its own (exec closes them).
        s.reactor.after_fork();
        s.mailbox = futex::new_mailbox();
        let me = s.current;
        s.os_tid = rustix::thread::gettid();
        s.free_ids.clear();
        for (tid, t) in s.threads.iter_mut().enumerate() {
            let tid = tid as ThreadId;
            if tid == me || tid == MAIN || t.state == State::Free {
                continue;
            }
            std::mem::forget(t.co.take());
            t.state = State::Free;
            t.generation = t.generation.wrapping_add(1);
            t.joiner = None;
            t.detached = false;
            s.free_ids.push(tid);
        }
        if me != MAIN {
            s.main_exited = true;
            s.main_gone = true;
            s.threads[MAIN as usize].state = State::Exited;
            s.live = 1;
        } else {
            s.live = 0;
        }
        s.run_queue.clear();
        s.preempted.clear();
        s.timers = Timers::default();
        s.timed_waits = 0;
        s.futex = futex::Table::default();
        s.woken.clear();
        // A handler that forked interrupted this thread's wait: it gets its EINTR (or
        // restart) as natively, or else waits again, in the new reactor and timers.
        // Handlers that had not run yet are the parent's (pending signals are not
        // inherited).
        s.threads[me as usize].handlers_due = 0;
        // The forking thread is the child's first thread: its id is the OS thread's again.
        s.threads[me as usize].identity.tid = os_tid();
        interrupt::take(|i| {
            s.interrupt(interrupt::Interruption {
                deliver: false,
                ..i
            })
        });
        interrupt::set_deliveries_pending(false);
        if s.threads[me as usize].state == State::Parked {
            let key = s.key(me);
            s.ready(key, Wake::Ready);
        }
    });
    // SAFETY: as above.
    unsafe { (*sched).lent = interrupted_section };
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
    });
    let sched = Box::into_raw(sched);
    os_thread::set_sched_word(sched as usize);
    os_thread::set_thread_word(MAIN as usize + 1);
}

/// Opens the calling thread's reactor now, if it is not yet (see
/// [`Scheduler::open_reactor`]), before another thread of ours can run: its fds are made
/// at the lowest free number and then moved up, a moment in which another thread's call
/// on that number (a helper's fsync of a closed fd) would reach our fd.
pub fn open_reactor() {
    with(|s| s.open_reactor())
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
        if std::mem::replace(&mut (*sched).lent, true) {
            overflow::die("greenify: runtime: scheduler re-entered");
        }
        let result = f(&mut *sched);
        (*sched).lent = false;
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

    fn resolve(&self, handle: Handle) -> Option<ThreadId> {
        if let Tls::PerThread(pool) = &self.tls {
            let tcb = handle.0 as usize;
            if !pool.contains(tcb) {
                return None;
            }
            // SAFETY: one of our TCBs, whose thread word is its thread's id + 1.
            let tid = unsafe { *((tcb + 0x38) as *const usize) }.checked_sub(1)? as ThreadId;
            let t = self.threads.get(tid as usize)?;
            return (t.state != State::Free && t.tcb == tcb).then_some(tid);
        }
        let (tid, generation) = handle.decode()?;
        let t = self.threads.get(tid as usize)?;
        (t.state != State::Free && u64::from(t.generation) & GEN_MASK == u64::from(generation))
            .then_some(tid)
    }

    fn handle(&self, tid: ThreadId) -> Handle {
        match self.threads[tid as usize].tcb {
            0 => Handle::new(tid, self.threads[tid as usize].generation),
            tcb => Handle(tcb as u64),
        }
    }

    /// Decides, at the first spawn, whether green threads get TCBs of their own.
    fn decide_tls(&mut self) {
        use crate::config::Tls as Mode;
        let Tls::Undecided(mode) = self.tls else {
            return;
        };
        let layout = match (mode, tcb::Layout::get()) {
            (Mode::Off, _) => None,
            (Mode::On, Err(why)) => {
                ::log::warn!("GREENIFY_TLS=on, but green threads share one TCB: {why}");
                None
            }
            (Mode::Auto, Err(why)) => {
                ::log::debug!("green threads share one TCB: {why}");
                None
            }
            (Mode::On, Ok(layout)) => Some(layout),
            (Mode::Auto, Ok(layout)) => tcb::foreign_tls_present(layout).then_some(layout),
        };
        ::log::debug!("a TCB per green thread: {}", layout.is_some());
        self.tls = match layout {
            Some(layout) => Tls::PerThread(tcb::Pool::new(layout)),
            None => Tls::Shared,
        };
    }

    /// Makes `tid`'s TCB the current one (or, sharing one, names it the running thread).
    #[inline]
    fn switch_tcb(&mut self, tid: ThreadId) {
        match &mut self.tls {
            Tls::PerThread(pool) => {
                let tcb = match self.threads[tid as usize].tcb {
                    0 => pool.main(),
                    tcb => tcb,
                };
                pool.switch_to(tcb);
            }
            _ => os_thread::set_thread_word(tid as usize + 1),
        }
    }

    fn poll_io(&mut self, timeout: Option<Duration>) {
        self.stats.epoll_waits += 1;
        if timeout != Some(Duration::ZERO) {
            self.open_reactor();
        }
        // Posted before the doorbell existed, or since the last look: look, do not sleep.
        let rung = self.mailbox.rung();
        let timeout = if rung { Some(Duration::ZERO) } else { timeout };
        let mut woken = std::mem::take(&mut self.woken);
        let doorbell = self.reactor.poll(timeout, &mut woken) || rung;
        for key in woken.drain(..) {
            self.ready(key, Wake::Ready);
        }
        if doorbell {
            self.answer_doorbell();
            interrupt::take(|i| self.interrupt(i));
        }
        self.timers.expire(Instant::now(), |key| woken.push(key));
        self.worker.timers_expired(self.timers.next_deadline());
        for key in woken.drain(..) {
            self.ready(key, Wake::TimedOut);
        }
        self.woken = woken;
        self.dispatches_since_poll = 0;
        let threads = &self.threads;
        self.timers
            .compact(self.timed_waits, |k| Scheduler::is_waiting(threads, k));
    }

    /// Makes the epoll instance and the doorbell on first need: the first wait on an fd,
    /// or the first sleep in the kernel (a wake from another thread or a signal must be
    /// able to end it). Where no fd can be had, even under the hard limit, the reactor
    /// degrades to polling (one warning): every call still behaves as natively.
    fn open_reactor(&mut self) {
        if !self.reactor.is_unopened() {
            return;
        }
        let fd_floor = self.fd_floor;
        let reactor = &mut self.reactor;
        let mut placeholder = (self.doorbell >= 0).then_some(self.doorbell);
        let opened = under_hard_fd_limit(|| {
            reactor.open(fd_floor)?;
            new_doorbell(reactor, fd_floor, &mut placeholder)
        });
        if let Some(held) = placeholder {
            // SAFETY: the parent's doorbell, ours to close; not used again.
            super::reactor::close_raw(unsafe { rustix::fd::FromRawFd::from_raw_fd(held) });
        }
        self.doorbell = -1;
        match opened {
            Ok(doorbell) => {
                self.doorbell = doorbell;
                self.mailbox.set_doorbell(doorbell);
            }
            Err(e) => {
                ::log::warn!(
                    "cannot make an epoll instance and an eventfd ({e}): waits use poll(2), \
                     and wakes from other threads may take {} ms",
                    super::reactor::DEGRADED_TICK.as_millis()
                );
                self.reactor.degrade();
            }
        }
    }

    /// Wakes every green sleeper of the addresses posted from outside this thread.
    fn answer_doorbell(&mut self) {
        let mut addrs = Vec::new();
        if self.mailbox.take(&mut addrs) {
            addrs = self.futex.addresses();
        }
        for addr in addrs {
            self.futex_wake(addr, usize::MAX);
        }
    }

    fn apply_mask(&mut self, mask: u64) {
        if mask != self.applied_mask {
            os_sigmask(Some(mask));
            self.applied_mask = mask;
        }
    }

    /// Signals every live thread blocks (only these stay blocked while all wait).
    fn idle_mask(&self) -> u64 {
        if !self.masks_vary {
            return self.threads[self.current as usize].sigmask;
        }
        self.threads
            .iter()
            .filter(|t| !matches!(t.state, State::Free | State::Exited))
            .fold(u64::MAX, |all, t| all & t.sigmask)
    }

    /// The thread the kernel would run the handler of `sig` on: `target` (a
    /// pthread_kill's), else the main thread, else a thread not blocking the signal.
    fn chosen(&self, sig: u32, target: Option<ThreadId>) -> Option<ThreadId> {
        let bit = sig_bit(sig);
        let accepts =
            |t: &Thread| t.sigmask & bit == 0 && !matches!(t.state, State::Free | State::Exited);
        match target {
            Some(tid) => Some(tid),
            None if !self.main_exited && accepts(&self.threads[MAIN as usize]) => Some(MAIN),
            None => {
                (0..self.threads.len() as ThreadId).find(|&t| accepts(&self.threads[t as usize]))
            }
        }
    }

    /// Applies a signal's interruption to the thread the kernel would have chosen; hands
    /// it the handler to run if the handler has not run yet, waking it from any wait to
    /// do so (a wait that is not interrupted goes on after the handler: callers re-check).
    fn interrupt(&mut self, i: interrupt::Interruption) {
        let eligible = |t: &Thread| {
            t.state == State::Parked
                && t.interruptible
                && interrupt::parked_before(t.parked_at, i.epoch)
        };
        let target = self.chosen(i.sig, i.target);
        let Some(tid) = target.filter(|&t| (t as usize) < self.threads.len()) else {
            // No thread takes it: the one running now does, when it unblocks it.
            if i.deliver {
                let me = self.current as usize;
                self.threads[me].handlers_due |= sig_bit(i.sig);
            }
            return;
        };
        if eligible(&self.threads[tid as usize]) {
            let key = self.key(tid);
            self.ready(key, Wake::Interrupted { restart: i.restart });
        }
        let t = &mut self.threads[tid as usize];
        if !i.deliver || matches!(t.state, State::Free | State::Exited) {
            return;
        }
        t.handlers_due |= sig_bit(i.sig);
        if t.state == State::Parked && t.sigmask & sig_bit(i.sig) == 0 && !t.holds_handlers {
            let key = self.key(tid);
            self.ready(key, Wake::Ready);
        }
    }

    fn futex_wake(&mut self, addr: usize, n: usize) -> usize {
        let mut woken = std::mem::take(&mut self.woken);
        let threads = &self.threads;
        let count = self.futex.pop(
            addr,
            n,
            |k| Scheduler::is_waiting(threads, k),
            |k| woken.push(k),
        );
        for key in woken.drain(..) {
            self.ready(key, Wake::Ready);
        }
        self.woken = woken;
        count
    }

    fn next_step(&mut self) -> Step {
        loop {
            if self.dispatches_since_poll >= POLL_EVERY {
                self.poll_io(Some(Duration::ZERO));
            }
            if let Some(tid) = self.pop_ready() {
                self.worker.dispatched();
                self.dispatches_since_poll += 1;
                self.unparked_calls = 0;
                self.slice_start = None;
                self.current = tid;
                self.switch_tcb(tid);
                let mask = self.threads[tid as usize].sigmask;
                self.apply_mask(mask);
                let t = &mut self.threads[tid as usize];
                t.state = State::Running;
                if tid == MAIN {
                    return Step::Main;
                }
                self.stats.context_switches += 1;
                overflow::entering(&t.name, t.stack, t.stack_kind);
                let co = t.co.take().expect("a ready coroutine has its coroutine");
                return Step::Run(tid, co);
            }
            if self.main_exited && self.live == 0 {
                // The process ends on the OS thread's own TCB (in a child forked by a
                // green thread, the forking thread's is the child's own).
                if !self.main_gone {
                    self.switch_tcb(MAIN);
                }
                return Step::AllExited;
            }
            let timeout = self
                .timers
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            // While everyone waits, a signal is deliverable if any thread accepts it.
            let idle_mask = self.idle_mask();
            self.apply_mask(idle_mask);
            self.worker.idle(true);
            self.poll_io(timeout);
            self.worker.idle(false);
        }
    }

    /// The next thread to run: the run queue's first, unless a preempted thread has waited
    /// a slice (or nothing else is ready).
    fn pop_ready(&mut self) -> Option<ThreadId> {
        if !self.preempted.is_empty()
            && (self.run_queue.is_empty() || self.preempted_turn.elapsed() >= SLICE)
        {
            self.preempted_turn = Instant::now();
            return self.preempted.pop_front();
        }
        self.run_queue.pop_front()
    }

    /// Whether another thread is ready, after a look at epoll when none is (parked
    /// threads whose fds became ready or whose timers are due get their turn).
    fn others_ready(&mut self) -> bool {
        if self.run_queue.is_empty() && self.preempted.is_empty() {
            self.poll_io(Some(Duration::ZERO));
        }
        !self.run_queue.is_empty() || !self.preempted.is_empty()
    }

    fn after_resume(&mut self, tid: ThreadId, mut co: Co, result: CoroutineResult<Suspend, usize>) {
        self.current = MAIN;
        overflow::left();
        let t = &self.threads[tid as usize];
        if gap_check_needed(t.stack_kind) && !gap_untouched_below(t.stack.0) {
            overflow::report(&t.name, t.stack.1, "it wrote below the bottom of its stack");
        }
        let retval = match result {
            CoroutineResult::Yield(Suspend::Park) => {
                self.threads[tid as usize].co = Some(co);
                return;
            }
            CoroutineResult::Yield(Suspend::Exit(retval)) => {
                // SAFETY: pthread_exit abandons the thread's frames, as natively; the only
                // Rust frames above the suspend point hold no values that need dropping
                // (the hooks' exit path keeps none alive across the call).
                unsafe { co.force_reset() };
                retval
            }
            CoroutineResult::Return(retval) => retval,
        };
        self.stacks.free(co.into_stack());
        self.finish(tid, retval);
    }

    fn finish(&mut self, tid: ThreadId, retval: usize) {
        self.live -= 1;
        let t = &mut self.threads[tid as usize];
        t.state = State::Exited;
        t.retval = retval;
        if t.detached {
            self.release(tid);
        } else if let Some(joiner) = t.joiner {
            self.ready(joiner, Wake::Ready);
        }
    }

    fn release(&mut self, tid: ThreadId) {
        let t = &mut self.threads[tid as usize];
        if let (Tls::PerThread(pool), tcb @ 1..) = (&mut self.tls, t.tcb) {
            // Kept until now: the handle names this thread until it is reaped.
            pool.release(tcb);
        }
        t.tcb = 0;
        t.state = State::Free;
        t.generation = t.generation.wrapping_add(1);
        t.joiner = None;
        t.detached = false;
        self.free_ids.push(tid);
    }

    fn allocate_id(&mut self) -> ThreadId {
        if let Some(tid) = self.free_ids.pop() {
            return tid;
        }
        self.threads.push(Thread::free());
        (self.threads.len() - 1) as ThreadId
    }
}

enum Step {
    Main,
    Run(ThreadId, Co),
    AllExited,
}

/// Runs other green threads until MAIN is ready again (or, after MAIN exited, until no
/// thread is left). Only ever called on MAIN's stack.
fn run_loop() {
    loop {
        match with(|s| s.next_step()) {
            Step::Main | Step::AllExited => return,
            Step::Run(tid, mut co) => {
                let result = co.resume(());
                with(|s| s.after_resume(tid, co, result));
            }
        }
    }
}

/// Leaves the current thread (already marked Parked or queued as Ready) until the
/// scheduler picks it again. The stdio locks it holds are free meanwhile.
fn switch_out() {
    let lent = with(|s| {
        let locks = &mut s.threads[s.current as usize].stdio_locks;
        if locks.is_empty() {
            return Vec::new();
        }
        let mut unique = locks.clone();
        unique.sort_unstable();
        unique.dedup();
        // SAFETY: a stream's lock stays valid while a thread holds it.
        unique
            .into_iter()
            .filter_map(|l| unsafe { tcb::lend_io_lock(l) })
            .collect()
    });
    switch_thread();
    for lock in lent {
        // SAFETY: lent above; the stream is still locked by this thread's count.
        while !unsafe { tcb::retake_io_lock(&lock) } {
            // Another thread entered the stream meanwhile: let it finish.
            with(|s| {
                let me = s.current;
                s.threads[me as usize].state = State::Ready;
                s.run_queue.push_back(me);
            });
            switch_thread();
        }
    }
}

/// The current thread holds (`held`) or released one level of a glibc stdio lock.
pub fn stdio_lock(lock: usize, held: bool) {
    with(|s| {
        let locks = &mut s.threads[s.current as usize].stdio_locks;
        if held {
            locks.push(lock);
        } else if let Some(i) = locks.iter().rposition(|&l| l == lock) {
            locks.swap_remove(i);
        }
    })
}

/// Switches to the run loop (see [`switch_out`]).
fn switch_thread() {
    let (me, yielder) = with(|s| (s.current, s.threads[s.current as usize].yielder));
    if me == MAIN {
        run_loop();
        if with(|s| s.main_gone) {
            // The last thread of a child forked by a green thread ended: as natively,
            // the process exits with status 0.
            std::process::exit(0);
        }
    } else {
        // SAFETY: `yielder` was stored by this coroutine's entry closure and lives on its
        // own stack for as long as the coroutine runs, which it does right now.
        unsafe { (*yielder).suspend(Suspend::Park) };
    }
}

/// Leaves the current thread (queued as Ready) and comes back with its errno.
/// Switches away from a thread that stays ready (a yield, a step aside), keeping its
/// errno; handlers delivered to it meanwhile run as it resumes.
fn switch_keeping_errno() {
    let saved = errno::get();
    switch_out();
    errno::set(saved);
    if with(|s| s.threads[s.current as usize].has_handlers_due()) {
        run_due_handlers();
    }
}

/// Spawns a green thread that runs `body` and exits with its return value.
pub fn spawn(
    body: impl FnOnce() -> usize + 'static,
    options: SpawnOptions,
) -> Result<Handle, Errno> {
    with(|s| {
        s.decide_tls();
        let stack = match options.stack {
            StackRequest::Size(size) => s
                .stacks
                .alloc(round_stack_size(size))
                .map_err(|_| Errno::AGAIN)?,
            // SAFETY: pthread_attr_setstack's contract: the memory is the thread's.
            StackRequest::User { addr, size } => unsafe { GreenStack::from_user(addr, size) },
        };
        let bounds = stack.bounds();
        let kind = stack.kind();
        let creator_mask = s.threads[s.current as usize].sigmask;
        let tid = s.allocate_id();
        let (tcb, layout) = match &mut s.tls {
            Tls::PerThread(pool) => match pool.make(tid, bounds) {
                Some(tcb) => (tcb, Some(pool.layout())),
                None => {
                    s.stacks.free(stack);
                    s.free_ids.push(tid);
                    return Err(Errno::AGAIN);
                }
            },
            _ => (0, None),
        };
        let co: Co = Coroutine::with_stack(stack, move |yielder: &Yielder<(), Suspend>, ()| {
            with(|s| {
                let me = s.current as usize;
                s.threads[me].yielder = yielder;
            });
            if let Some(layout) = layout {
                tcb::thread_started(layout);
            }
            errno::set(0);
            body()
        });
        let green_tid = next_green_tid(&s.threads);
        let t = &mut s.threads[tid as usize];
        t.tcb = tcb;
        t.state = State::Ready;
        t.co = Some(co);
        t.detached = options.detached;
        t.joiner = None;
        t.retval = 0;
        t.name = options.name;
        t.cancel_pending = false;
        t.cancel_disabled = false;
        t.cancel_async = false;
        t.cleanup_top = 0;
        t.stack = bounds;
        t.sigmask = options.sigmask.unwrap_or(creator_mask);
        t.handlers_due = 0;
        t.holds_handlers = false;
        if t.sigmask != creator_mask {
            s.masks_vary = true;
        }
        t.stack_kind = kind;
        t.specific = Values::default();
        t.identity = Identity::new(green_tid);
        t.stdio_locks.clear();
        s.run_queue.push_back(tid);
        s.live += 1;
        s.stats.threads_created += 1;
        s.stats.peak_alive = s.stats.peak_alive.max(s.live + 1);
        Ok(s.handle(tid))
    })
}

/// The wait key the current thread will park under.
pub fn current_key() -> WaitKey {
    with(|s| s.key(s.current))
}

/// What may end a park early, besides what it waits for and its deadline.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Interrupts {
    /// Nothing (a join still acts on a cancel request: it is a cancellation point).
    Nothing,
    /// A signal handler ([`Wake::Interrupted`], for calls that return EINTR natively);
    /// a cancel request ends the thread there.
    Signals,
    /// A cancel request, returned as [`Wake::Interrupted`]: the caller first restores
    /// what it must (a condition wait relocks its mutex), then calls
    /// [`cancellation_point`].
    Cancel,
}

/// Parks the current thread until its key is woken or `deadline` passes.
pub fn park(reason: Reason, deadline: Option<Instant>) -> Wake {
    park_as(reason, deadline, Interrupts::Nothing)
}

/// Like [`park`], but a signal handler running meanwhile ends it with
/// [`Wake::Interrupted`] (for calls that return EINTR natively).
pub fn park_interruptible(reason: Reason, deadline: Option<Instant>) -> Wake {
    park_as(reason, deadline, Interrupts::Signals)
}

/// What to do when a cancellation point finds a cancel request (set by the hooks; it
/// runs the thread's cleanup handlers and ends it, never returning).
static CANCEL_ACTION: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the action a cancellation point runs (see [`CANCEL_ACTION`]).
pub fn set_cancel_action(action: fn() -> !) {
    CANCEL_ACTION.store(action as usize, std::sync::atomic::Ordering::SeqCst);
}

/// A cancellation point: acts on a pending cancel request (and then never returns).
pub fn cancellation_point() {
    if !cancel_requested() {
        return;
    }
    let action = CANCEL_ACTION.load(std::sync::atomic::Ordering::SeqCst);
    if action != 0 {
        // SAFETY: the address was stored from a `fn() -> !` by set_cancel_action.
        let action: fn() -> ! = unsafe { std::mem::transmute(action) };
        action();
    }
}

fn park_as(reason: Reason, deadline: Option<Instant>, interrupts: Interrupts) -> Wake {
    // Waiting calls are cancellation points (lock waits excepted).
    let interruptible = interrupts == Interrupts::Signals;
    let cancellable = interrupts != Interrupts::Nothing || reason == Reason::Join;
    let acts_here = cancellable && interrupts != Interrupts::Cancel;
    if acts_here {
        cancellation_point();
    }
    let saved = errno::get();
    with(|s| {
        let me = s.current;
        let t = &mut s.threads[me as usize];
        t.interruptible = interruptible;
        t.cancellable = cancellable;
        if interruptible {
            t.parked_at = interrupt::next_park();
        }
        s.stats.parks[reason as usize] += 1;
        if let Some(deadline) = deadline {
            let key = s.key(me);
            s.timers.arm(deadline, key);
            s.worker.timer_armed(deadline);
            s.timed_waits += 1;
        }
        s.threads[me as usize].state = State::Parked;
    });
    switch_out();
    errno::set(saved);
    let (wake, handlers_due) = with(|s| {
        if deadline.is_some() {
            // Saturating: a fork (in a signal handler) during this park reset the count.
            s.timed_waits = s.timed_waits.saturating_sub(1);
        }
        let t = &s.threads[s.current as usize];
        (t.wake, t.has_handlers_due())
    });
    if acts_here {
        cancellation_point();
    }
    if handlers_due {
        run_due_handlers();
    }
    wake
}

/// A signal's bit in a kernel sigset.
fn sig_bit(sig: u32) -> u64 {
    1u64 << (sig.clamp(1, 64) - 1)
}

impl Thread {
    /// Handlers handed to this thread that it may run now (the others wait until it
    /// unblocks their signals), unless its wait must not run them.
    fn has_handlers_due(&self) -> bool {
        self.handlers_due & !self.sigmask != 0 && !self.holds_handlers
    }
}

/// Runs the handlers due in the current thread (set by the hooks: signal.rs).
static HANDLER_ACTION: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets what runs the handlers a thread must run (see [`take_due_handlers`]).
pub fn set_handler_action(action: fn()) {
    HANDLER_ACTION.store(action as usize, std::sync::atomic::Ordering::SeqCst);
}

fn run_due_handlers() {
    let action = HANDLER_ACTION.load(std::sync::atomic::Ordering::SeqCst);
    if action != 0 {
        // SAFETY: the address was stored from a `fn()` by set_handler_action.
        let action: fn() = unsafe { std::mem::transmute(action) };
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
        let t = &mut s.threads[s.current as usize];
        let due = if t.holds_handlers {
            0
        } else {
            t.handlers_due & !t.sigmask
        };
        t.handlers_due &= !due;
        let waiting = s
            .threads
            .iter()
            .any(|t| t.handlers_due != 0 && !matches!(t.state, State::Free | State::Exited));
        interrupt::set_deliveries_pending(waiting);
        due
    })
}

/// Whether the handler of `sig` (process-directed) belongs to the current thread: the
/// kernel would have chosen it, or no thread at all. No while a scheduler section runs
/// (the signal interrupted it): the handler must not run, nor jump, out of the middle
/// of one.
/// The running green thread, read from a signal handler (None on an OS thread without a
/// scheduler). Inside a section that switches threads it may name either of the two.
pub fn current_for_signal() -> Option<ThreadId> {
    let sched = current_sched();
    // SAFETY: the scheduler is never freed and only this OS thread uses it; a u32 read
    // through the raw pointer, no reference made while a section may hold one.
    (!sched.is_null()).then(|| unsafe { std::ptr::addr_of!((*sched).current).read_volatile() })
}

pub fn signal_is_for_current(sig: u32) -> bool {
    let sched = current_sched();
    // SAFETY: the scheduler is never freed; only this OS thread uses it.
    if sched.is_null() || unsafe { (*sched).lent } {
        return sched.is_null();
    }
    with(|s| s.chosen(sig, None).is_none_or(|t| t == s.current))
}

/// The current thread's waits run no handlers while `hold` (see `holds_handlers`).
pub fn hold_handlers(hold: bool) {
    with(|s| {
        let me = s.current as usize;
        s.threads[me].holds_handlers = hold;
    })
}

/// An OS mask no thread can have (SIGKILL and SIGSTOP cannot be blocked): the mask the
/// OS thread has is not known (a handler ran and may have jumped out, restoring a mask
/// behind the scheduler's back), so the next switch sets it whatever it is.
const UNKNOWN_MASK: u64 = u64::MAX;

/// While a delivered handler runs: the OS thread blocks `extra` too, on top of the
/// current thread's mask, as the kernel does around a handler. `None` when it returned.
pub fn handler_mask(extra: Option<u64>) {
    with(|s| {
        let mine = s.threads[s.current as usize].sigmask;
        s.applied_mask = UNKNOWN_MASK;
        match extra {
            Some(extra) => {
                os_sigmask(Some(mine | extra));
            }
            None => s.apply_mask(mine),
        }
    })
}

/// The OS thread's signal mask (rt_sigprocmask, raw: greenify hooks pthread_sigmask):
/// sets it to `mask` if given; returns the previous one.
fn os_sigmask(mask: Option<u64>) -> u64 {
    let mut old: u64 = 0;
    let new_ptr = mask.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
    // SAFETY: rt_sigprocmask with an 8-byte kernel sigset, both pointers valid or NULL.
    unsafe {
        super::raw::syscall(
            libc::SYS_rt_sigprocmask,
            &[
                libc::SIG_SETMASK as usize,
                new_ptr as usize,
                &mut old as *mut u64 as usize,
                8,
            ],
        );
    }
    old
}

/// pthread_sigmask for the current green thread: `how` is SIG_BLOCK, SIG_UNBLOCK or
/// SIG_SETMASK with `set`, or just a query without one. Returns the previous mask.
pub fn sigmask(how: i32, set: Option<u64>) -> Result<u64, Errno> {
    // SIGKILL and SIGSTOP cannot be blocked; glibc keeps its own SIGCANCEL and SIGSETXID
    // (32, 33) deliverable too.
    const NEVER: u64 =
        (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)) | (1 << 31) | (1 << 32);
    with(|s| {
        let me = s.current as usize;
        let old = s.threads[me].sigmask;
        let Some(set) = set else { return Ok(old) };
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
        Ok(old)
    })
}

/// Some thread of this process was asked to cancel (pthread_cancel, only ever on this
/// OS thread's green threads).
static CANCEL_EVER_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// pthread_cancel: marks the thread; one parked at a cancellation point wakes up to act.
pub fn cancel(handle: Handle) -> Result<(), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        CANCEL_EVER_REQUESTED.store(true, std::sync::atomic::Ordering::Relaxed);
        let t = &mut s.threads[tid as usize];
        t.cancel_pending = true;
        if t.state == State::Parked && t.cancellable && !t.cancel_disabled {
            let key = s.key(tid);
            s.ready(key, Wake::Interrupted { restart: false });
        }
        Ok(())
    })
}

/// A cancel request the current thread must act on now.
pub fn cancel_requested() -> bool {
    // Condition waits ask twice per call: a program that never cancels skips the look.
    if !CANCEL_EVER_REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    with(|s| {
        let t = &s.threads[s.current as usize];
        t.cancel_pending && !t.cancel_disabled
    })
}

/// The current thread is acting on its cancel request: no second time.
pub fn cancel_taken() {
    with(|s| {
        let me = s.current as usize;
        s.threads[me].cancel_pending = false;
        s.threads[me].cancel_disabled = true;
    })
}

/// pthread_setcancelstate: sets "disabled", returns the previous value.
pub fn set_cancel_disabled(disabled: bool) -> bool {
    with(|s| {
        let me = s.current as usize;
        std::mem::replace(&mut s.threads[me].cancel_disabled, disabled)
    })
}

/// pthread_setcanceltype: sets "asynchronous", returns the previous value.
pub fn set_cancel_async(asynchronous: bool) -> bool {
    with(|s| {
        let me = s.current as usize;
        std::mem::replace(&mut s.threads[me].cancel_async, asynchronous)
    })
}

/// The current thread's innermost cleanup buffer (0: none).
pub fn cleanup_top() -> usize {
    with(|s| s.threads[s.current as usize].cleanup_top)
}

pub fn set_cleanup_top(buffer: usize) {
    with(|s| {
        let me = s.current as usize;
        s.threads[me].cleanup_top = buffer;
    })
}

/// Waits until `fd` may be ready for `interest`, the deadline passes, or it is closed.
/// Files epoll cannot watch (regular files) are always ready.
pub fn wait_fd(fd: i32, interest: Interest, reason: Reason, deadline: Option<Instant>) -> Wake {
    wait_fds(&[(fd, interest)], reason, deadline)
}

/// Waits until any of `fds` may be ready (see [`wait_fd`]).
pub fn wait_fds(fds: &[(i32, Interest)], reason: Reason, deadline: Option<Instant>) -> Wake {
    let registered = with(|s| {
        if !fds.is_empty() {
            s.open_reactor();
        }
        let key = s.key(s.current);
        for &(fd, interest) in fds {
            let threads = &s.threads;
            let result = s
                .reactor
                .add_waiter(fd, interest, key, |k| Scheduler::is_waiting(threads, k));
            match result {
                Ok(()) => {}
                // Always ready, or not an fd at all: the caller's next attempt tells.
                Err(RegisterError::NotPollable) => return Some(Wake::Ready),
                Err(RegisterError::Os(_)) => return Some(Wake::Closed),
            }
        }
        None
    });
    match registered {
        None => park_interruptible(reason, deadline),
        Some(wake) => {
            // Void the registrations made so far.
            with(|s| {
                let me = s.current as usize;
                s.threads[me].seq = s.threads[me].seq.wrapping_add(1);
            });
            wake
        }
    }
}

/// Sleeps until `deadline`, unless a signal handler interrupts the sleep.
pub fn sleep_until(deadline: Instant) -> Wake {
    while Instant::now() < deadline {
        let wake = park_interruptible(Reason::Sleep, Some(deadline));
        if matches!(wake, Wake::Interrupted { .. }) {
            return wake;
        }
    }
    Wake::TimedOut
}

/// Lets every other ready thread run once before the current one continues.
pub fn yield_now() {
    step_aside(Behind::AllReady);
}

/// How long a thread may run through hooked calls that never wait while others are
/// ready (natively the kernel's time slices would let them run meanwhile). Short next to
/// a kernel's slice (milliseconds), so the others wait little; long next to a switch
/// (0.1 us), so stepping aside costs nothing measurable.
const SLICE: Duration = Duration::from_micros(200);

/// Calls between two looks at the clock (a look costs more than an uncontended lock).
const CLOCK_EVERY: u32 = 32;

/// A hooked call came back without waiting (a read, a poll, an accept, a try-lock, an
/// uncontended lock...). A thread that loops on such calls (busy-waiting on a try-lock,
/// or on a poll that is always ready because the thread that would drain it never runs)
/// would keep every other thread out, where natively the kernel's time slices let them
/// run. Once it has run for a [`SLICE`] since it was dispatched, it steps aside: it
/// waits (in `preempted`) while the ready threads run, for up to a slice, then runs
/// again; threads that wait for each other (a ping-pong pair) keep going meanwhile.
pub fn completed_without_parking() {
    let due = with(|s| {
        s.unparked_calls += 1;
        if s.unparked_calls % CLOCK_EVERY != 0 {
            return false;
        }
        let now = Instant::now();
        match s.slice_start {
            Some(start) if now.saturating_duration_since(start) >= SLICE => {
                s.slice_start = Some(now);
                true
            }
            Some(_) => false,
            None => {
                s.slice_start = Some(now);
                false
            }
        }
    });
    if due {
        step_aside(Behind::ForASlice);
    }
}

/// Where a thread that steps aside waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behind {
    /// At the back of the run queue: every thread ready now runs first.
    AllReady,
    /// In `preempted`: the ready threads run for up to a slice, then it runs again.
    ForASlice,
}

/// The current thread, which stays ready, lets others run (waiting as `behind` says); it
/// goes on at once if none is ready after a look at epoll and the timers.
fn step_aside(behind: Behind) {
    let others_ready = with(|s| {
        if !s.others_ready() {
            return false;
        }
        let me = s.current;
        s.stats.parks[Reason::Yield as usize] += 1;
        s.threads[me as usize].state = State::Ready;
        match behind {
            Behind::AllReady => s.run_queue.push_back(me),
            Behind::ForASlice => {
                if s.preempted.is_empty() {
                    s.preempted_turn = Instant::now();
                }
                s.preempted.push_back(me);
            }
        }
        true
    });
    if others_ready {
        switch_keeping_errno();
    }
}

/// The preemption signal interrupted the current thread in the program's code (the
/// handler checked where, see monitor.rs): it steps aside behind every ready thread (it
/// had a whole slice) if this is a safe point for the scheduler too: no scheduler
/// section runs, and the thread runs on its own stack (`sp`, the interrupted stack
/// pointer) with its own signal mask (`mask`, the interrupted one: a program's handler
/// running adds its signal and sa_mask). Says whether it was a safe point.
pub fn preempt(sp: usize, mask: u64) -> bool {
    let sched = current_sched();
    // SAFETY: the scheduler is never freed; only this OS thread uses it; a bool read
    // through the raw pointer, no reference made while a section may hold one.
    if sched.is_null() || unsafe { std::ptr::addr_of!((*sched).lent).read_volatile() } {
        return false;
    }
    let safe = with(|s| {
        let t = &s.threads[s.current as usize];
        let (bottom, size) = t.stack;
        let own_stack = s.current == MAIN || (bottom..bottom + size).contains(&sp);
        let safe =
            t.state == State::Running && own_stack && mask == t.sigmask && s.applied_mask == mask;
        if safe {
            // Sleepers whose deadline passed and threads whose fds are ready run first.
            s.poll_io(Some(Duration::ZERO));
        }
        safe
    });
    if safe {
        step_aside(Behind::AllReady);
    }
    safe
}

/// The current green thread is about to end: with a TCB of its own, its C++ and Rust
/// thread_local destructors run now, in it (before its key destructors, as in glibc).
pub fn thread_exiting() {
    let layout = with(|s| match &s.tls {
        Tls::PerThread(pool) if s.threads[s.current as usize].tcb != 0 => Some(pool.layout()),
        _ => None,
    });
    if let Some(layout) = layout {
        tcb::thread_exiting(layout);
    }
}

/// The OS thread's own TCB, when green threads have TCBs of their own.
pub fn os_thread_tcb() -> Option<u64> {
    if !is_active() {
        return None;
    }
    with(|s| match &s.tls {
        Tls::PerThread(pool) => Some(pool.main() as u64),
        _ => None,
    })
}

/// Whether `raw` may be a green thread's `pthread_t` (a tagged handle, or one of our
/// TCBs); hooks then ask the runtime about it, which answers ESRCH for a stale one.
pub fn is_green_handle(raw: u64) -> bool {
    Handle::is_tagged(raw)
        || with(|s| matches!(&s.tls, Tls::PerThread(pool) if pool.contains(raw as usize)))
}

/// Ends the current green thread (not MAIN) with `retval`.
pub fn exit_current(retval: usize) -> ! {
    let (me, yielder) = with(|s| (s.current, s.threads[s.current as usize].yielder));
    if me == MAIN {
        overflow::die("greenify: runtime: exit_current called on the main thread");
    }
    // SAFETY: as in switch_out; the scheduler never resumes an exited coroutine.
    unsafe { (*yielder).suspend(Suspend::Exit(retval)) };
    overflow::die("greenify: runtime: an exited green thread was resumed");
}

/// MAIN ends but the process lives on: runs the other threads until none is left.
pub fn exit_main() {
    with(|s| {
        s.main_exited = true;
        s.threads[MAIN as usize].state = State::Exited;
    });
    run_loop();
}

/// Whether the current thread is the only one that could run: no other green thread is
/// alive, so handing its blocking call to a helper would gain nothing.
pub fn is_alone() -> bool {
    with(|s| {
        let main_alive = !s.main_exited && !s.main_gone;
        s.live + u64::from(main_alive) == 1
    })
}

/// Whether the current thread is MAIN.
pub fn current_is_main() -> bool {
    with(|s| s.current == MAIN)
}

/// The current thread's handle (MAIN has none: it keeps its real identity).
pub fn current_handle() -> Option<Handle> {
    with(|s| (s.current != MAIN).then(|| s.handle(s.current)))
}

/// Waits for `handle`'s thread to exit and returns its value (pthread_join semantics).
pub fn join(handle: Handle, wait: JoinWait) -> Result<usize, Errno> {
    if !matches!(wait, JoinWait::Block) {
        // A loop of tryjoins (or of timed joins past their deadline) waits for the thread
        // it joins, which must get its turn.
        completed_without_parking();
    }
    let early = with(|s| -> Result<Option<usize>, Errno> {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        if tid == s.current {
            return Err(Errno::DEADLK);
        }
        let t = &s.threads[tid as usize];
        if t.detached || t.joiner.is_some() {
            return Err(Errno::INVAL);
        }
        if t.state == State::Exited {
            let retval = t.retval;
            s.release(tid);
            return Ok(Some(retval));
        }
        match wait {
            JoinWait::Try => return Err(Errno::BUSY),
            JoinWait::Until(d) if d <= Instant::now() => return Err(Errno::TIMEDOUT),
            _ => {}
        }
        let key = s.key(s.current);
        s.threads[tid as usize].joiner = Some(key);
        Ok(None)
    })?;
    if let Some(retval) = early {
        return Ok(retval);
    }
    let deadline = match wait {
        JoinWait::Until(d) => Some(d),
        _ => None,
    };
    loop {
        let wake = park(Reason::Join, deadline);
        let done = with(|s| {
            let tid = s
                .resolve(handle)
                .expect("a joined thread stays until reaped");
            let again = s.key(s.current);
            let t = &mut s.threads[tid as usize];
            if t.state == State::Exited {
                let retval = t.retval;
                s.release(tid);
                return Some(Ok(retval));
            }
            if wake == Wake::TimedOut {
                t.joiner = None;
                return Some(Err(Errno::TIMEDOUT));
            }
            // Woken for another reason: wait again under the new key.
            t.joiner = Some(again);
            None
        });
        if let Some(result) = done {
            return result;
        }
    }
}

/// pthread_detach semantics.
pub fn detach(handle: Handle) -> Result<(), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        let t = &mut s.threads[tid as usize];
        if t.detached || t.joiner.is_some() {
            return Err(Errno::INVAL);
        }
        if t.state == State::Exited {
            s.release(tid);
        } else {
            t.detached = true;
        }
        Ok(())
    })
}

/// Whether `handle` names a thread that has not been reaped.
pub fn is_alive(handle: Handle) -> bool {
    with(|s| {
        s.resolve(handle)
            .is_some_and(|tid| s.threads[tid as usize].state != State::Exited)
    })
}

/// The id of the thread `handle` names (if not reaped).
pub fn thread_id(handle: Handle) -> Option<ThreadId> {
    with(|s| s.resolve(handle))
}

/// Whether `handle` names a thread that has not been reaped (it may have exited).
pub fn exists(handle: Handle) -> bool {
    with(|s| s.resolve(handle).is_some())
}

/// Parks the current thread on `addr` if `still_waiting()` (checked atomically with
/// respect to green wakers) says so; returns Ready at once otherwise.
pub fn futex_wait(
    addr: usize,
    still_waiting: impl FnOnce() -> bool,
    reason: Reason,
    deadline: Option<Instant>,
    interrupts: Interrupts,
) -> Wake {
    // Counted before the check, so that a waker on another OS thread that changes the word
    // after our check is sure to see us (see futex.rs).
    futex::green_sleeper_added();
    let queued = with(|s| {
        if !still_waiting() {
            return false;
        }
        let key = s.key(s.current);
        let threads = &s.threads;
        s.futex
            .push(addr, key, |k| Scheduler::is_waiting(threads, k));
        true
    });
    let wake = if queued {
        park_as(reason, deadline, interrupts)
    } else {
        Wake::Ready
    };
    futex::green_sleeper_gone();
    wake
}

/// Wakes up to `n` green threads parked on `addr`, oldest first; returns how many.
pub fn futex_wake(addr: usize, n: usize) -> usize {
    with(|s| s.futex_wake(addr, n))
}

/// Runs `f` on the current green thread's pthread_setspecific values.
pub fn specific<R>(f: impl FnOnce(&mut Values) -> R) -> R {
    with(|s| {
        let me = s.current as usize;
        f(&mut s.threads[me].specific)
    })
}

/// The current green thread's id (MAIN is 0): unique among live green threads.
pub fn current_id() -> ThreadId {
    with(|s| s.current)
}

/// Sets a thread's name (at most 15 bytes; the caller checks the length).
pub fn set_name(handle: Handle, name: &[u8]) -> Result<(), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        let t = &mut s.threads[tid as usize];
        t.name = [0; 16];
        let n = name.len().min(15);
        t.name[..n].copy_from_slice(&name[..n]);
        Ok(())
    })
}

/// A thread's name, NUL-terminated.
pub fn name(handle: Handle) -> Result<[u8; 16], Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].name)
    })
}

/// Whether a thread is detached.
pub fn is_detached(handle: Handle) -> Result<bool, Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].detached)
    })
}

/// (lowest address, size) of a thread's usable stack.
pub fn stack_bounds(handle: Handle) -> Result<(usize, usize), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].stack)
    })
}

/// The program closed `fd` (or reused its number): wake its waiters, drop its registration.
pub fn fd_closed(fd: i32) {
    with(|s| {
        let mut woken = std::mem::take(&mut s.woken);
        s.reactor.forget(fd, &mut woken);
        for key in woken.drain(..) {
            s.ready(key, Wake::Closed);
        }
        s.woken = woken;
    })
}

/// A stream read of `fd` came back short: skip reads until it is readable again.
pub fn set_drained(fd: i32) {
    with(|s| s.reactor.set_drained(fd))
}

/// Whether a read of `fd` would only find nothing (see [`set_drained`]).
pub fn is_drained(fd: i32) -> bool {
    with(|s| s.reactor.is_drained(fd))
}

/// Wakes every thread waiting on `fd` to look again (it stays registered).
pub fn fd_poke(fd: i32) {
    with(|s| {
        let mut woken = std::mem::take(&mut s.woken);
        s.reactor.poke(fd, &mut woken);
        for key in woken.drain(..) {
            s.ready(key, Wake::Ready);
        }
        s.woken = woken;
    })
}

// ---- Thread ids and per-thread kernel state ----
//
// The program sees a thread id per green thread (gettid, tgkill). MAIN keeps the OS
// thread's own id (== getpid in the process's first thread); every other green thread gets
// a number the kernel never hands out, above PID_MAX_LIMIT, never reused while numbers
// last. Looking a thread up by id scans the threads: only signals sent by id need it, so
// spawn and exit pay one counter increment and nothing else.

/// The kernel's largest thread id on 64-bit (PID_MAX_LIMIT): green ids start above it.
pub const PID_MAX_LIMIT: i32 = 4 << 20;

static NEXT_GREEN_TID: AtomicI32 = AtomicI32::new(PID_MAX_LIMIT + 1);
/// The numbers ran out once and started again: a new one may be taken.
static GREEN_TIDS_WRAPPED: AtomicBool = AtomicBool::new(false);

/// An alternate signal stack as the program set it (`sigaltstack`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AltStack {
    pub sp: usize,
    pub size: usize,
    pub flags: i32,
}

impl AltStack {
    pub const DISABLED: AltStack = AltStack {
        sp: 0,
        size: 0,
        flags: libc::SS_DISABLE,
    };
}

/// What the program sees of a green thread's kernel identity.
#[derive(Clone, Copy, Debug)]
struct Identity {
    /// Its thread id: the OS thread's own for MAIN (and for the thread that forked, in the
    /// child), kept here so that gettid makes no system call.
    tid: i32,
    altstack: AltStack,
}

impl Identity {
    const FREE: Identity = Identity {
        tid: 0,
        altstack: AltStack::DISABLED,
    };

    fn new(tid: i32) -> Identity {
        Identity {
            tid,
            altstack: AltStack::DISABLED,
        }
    }
}

/// A fresh green thread id. After i32::MAX the numbers start again from the bottom of the
/// range, skipping those live threads hold (as the kernel's own ids wrap at pid_max).
/// Only the main OS thread's scheduler spawns (see hooks/mod.rs), so a plain load and
/// store suffice: no locked instruction on the spawn path.
fn next_green_tid(threads: &[Thread]) -> i32 {
    loop {
        let tid = NEXT_GREEN_TID.load(Relaxed);
        let next = tid.checked_add(1).unwrap_or_else(|| {
            GREEN_TIDS_WRAPPED.store(true, Relaxed);
            PID_MAX_LIMIT + 1
        });
        NEXT_GREEN_TID.store(next, Relaxed);
        let taken = GREEN_TIDS_WRAPPED.load(Relaxed)
            && threads
                .iter()
                .any(|t| t.state != State::Free && t.identity.tid == tid);
        if !taken {
            return tid;
        }
    }
}

fn os_tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// The current green thread's id, as gettid shows it.
pub fn current_tid() -> i32 {
    with(|s| s.threads[s.current as usize].identity.tid)
}

/// The live (not exited) green thread whose id is `tid`, if any.
pub fn thread_by_tid(tid: i32) -> Option<ThreadId> {
    with(|s| {
        s.threads.iter().position(|t| {
            matches!(t.state, State::Ready | State::Running | State::Parked)
                && t.identity.tid == tid
        })
    })
    .map(|i| i as ThreadId)
}

/// The current green thread's alternate signal stack, as the program set it.
pub fn altstack() -> AltStack {
    with(|s| s.threads[s.current as usize].identity.altstack)
}

pub fn set_altstack(stack: AltStack) {
    with(|s| s.threads[s.current as usize].identity.altstack = stack);
}

pub fn stats() -> Stats {
    with(|s| s.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    fn init() {
        init_current_thread(Config {
            guard_budget: 64,
            fd_floor: 200,
            tls: crate::config::Tls::Off,
        });
    }

    fn opts() -> SpawnOptions {
        SpawnOptions {
            stack: StackRequest::Size(64 << 10),
            detached: false,
            name: [0; 16],
            sigmask: None,
        }
    }

    #[test]
    fn spawn_join_returns_values_in_order() {
        init();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let log = log.clone();
                spawn(
                    move || {
                        log.borrow_mut().push(i);
                        yield_now();
                        log.borrow_mut().push(100 + i);
                        i * 2
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(join(h, JoinWait::Block), Ok(i * 2));
        }
        let log = log.borrow();
        assert_eq!(&log[..10], &(0..10).collect::<Vec<_>>()[..]);
        assert_eq!(log.len(), 20);
    }

    #[test]
    fn the_reactor_is_opened_by_the_first_sleep_not_before() {
        init();
        let h = spawn(
            || {
                yield_now();
                3
            },
            opts(),
        )
        .unwrap();
        assert_eq!(join(h, JoinWait::Block), Ok(3));
        assert!(with(|s| s.reactor.is_unopened() && s.doorbell < 0));
        // A wake posted from another thread before the doorbell exists marks the mailbox.
        std::thread::spawn(|| futex::post_remote(0x10))
            .join()
            .unwrap();
        assert!(with(|s| s.mailbox.rung()));
        let start = Instant::now();
        sleep_until(start + Duration::from_millis(2));
        assert!(start.elapsed() >= Duration::from_millis(2));
        assert!(with(|s| !s.reactor.is_unopened() && s.doorbell >= 0));
    }

    #[test]
    fn join_errors_are_native() {
        init();
        let h = spawn(|| 7, opts()).unwrap();
        assert_eq!(join(h, JoinWait::Try), Err(Errno::BUSY));
        assert_eq!(
            join(
                h,
                JoinWait::Until(Instant::now() + Duration::from_millis(5))
            ),
            Ok(7)
        );
        assert_eq!(join(h, JoinWait::Block), Err(Errno::SRCH));
        let d = spawn(|| 0, opts()).unwrap();
        detach(d).unwrap();
        assert_eq!(detach(d), Err(Errno::INVAL));
        assert_eq!(join(d, JoinWait::Block), Err(Errno::INVAL));
        let slow = spawn(
            || {
                sleep_until(Instant::now() + Duration::from_millis(50));
                1
            },
            opts(),
        )
        .unwrap();
        let t0 = Instant::now();
        assert_eq!(
            join(slow, JoinWait::Until(t0 + Duration::from_millis(10))),
            Err(Errno::TIMEDOUT)
        );
        assert_eq!(join(slow, JoinWait::Block), Ok(1));
        assert!(t0.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn sleepers_run_concurrently_and_wake_in_deadline_order() {
        init();
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                let order = order.clone();
                let ms = 100 - (i % 10) * 10;
                spawn(
                    move || {
                        sleep_until(t0 + Duration::from_millis(ms));
                        order.borrow_mut().push(ms);
                        0
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for h in handles {
            join(h, JoinWait::Block).unwrap();
        }
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(100));
        // Serialised sleeps would take 11 s; concurrency bound, not a speed target.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        let order = order.borrow();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    #[test]
    fn sleeps_are_finer_than_a_millisecond() {
        init();
        // With millisecond epoll timeouts every 100 us sleep would last >= 1 ms; the
        // median is immune to a noisy machine's occasional late wakeup.
        let mut took: Vec<Duration> = (0..101)
            .map(|_| {
                let t0 = Instant::now();
                sleep_until(t0 + Duration::from_micros(100));
                t0.elapsed()
            })
            .collect();
        took.sort();
        assert!(took[0] >= Duration::from_micros(100));
        assert!(
            took[50] < Duration::from_micros(900),
            "median {:?}",
            took[50]
        );
    }

    #[test]
    fn errno_is_per_green_thread() {
        init();
        let h = spawn(
            || {
                errno::set(11);
                yield_now();
                errno::get() as usize
            },
            opts(),
        )
        .unwrap();
        errno::set(22);
        yield_now();
        assert_eq!(errno::get(), 22);
        assert_eq!(join(h, JoinWait::Block), Ok(11));
    }

    #[test]
    fn wait_fd_parks_until_a_pipe_is_readable() {
        use rustix::fd::AsRawFd;
        init();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let fd = rd.as_raw_fd();
        let reader = spawn(
            move || {
                let wake = wait_fd(fd, Interest::Read, Reason::Read, None);
                assert_eq!(wake, Wake::Ready);
                let mut b = [0u8; 1];
                rustix::io::read(&rd, &mut b).unwrap();
                b[0] as usize
            },
            opts(),
        )
        .unwrap();
        yield_now();
        sleep_until(Instant::now() + Duration::from_millis(20));
        assert!(is_alive(reader));
        rustix::io::write(&wr, b"\x2a").unwrap();
        assert_eq!(join(reader, JoinWait::Block), Ok(42));
    }

    #[test]
    fn wait_fd_times_out_and_closing_wakes() {
        use rustix::fd::AsRawFd;
        init();
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        let fd = rd.as_raw_fd();
        let t0 = Instant::now();
        let wake = wait_fd(
            fd,
            Interest::Read,
            Reason::Read,
            Some(t0 + Duration::from_millis(30)),
        );
        assert_eq!(wake, Wake::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let waiter = spawn(
            move || (wait_fd(fd, Interest::Read, Reason::Read, None) == Wake::Closed) as usize,
            opts(),
        )
        .unwrap();
        yield_now();
        fd_closed(fd);
        assert_eq!(join(waiter, JoinWait::Block), Ok(1));
    }

    #[test]
    fn a_thread_whose_calls_never_wait_still_lets_the_others_run() {
        init();
        let done = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = done.clone();
        let spinner = spawn(
            move || {
                let t0 = Instant::now();
                // Natively the kernel would run the other thread meanwhile.
                while !flag.get() {
                    completed_without_parking();
                }
                t0.elapsed().as_micros() as usize
            },
            opts(),
        )
        .unwrap();
        let setter = spawn(
            {
                let done = done.clone();
                move || {
                    done.set(true);
                    0
                }
            },
            opts(),
        )
        .unwrap();
        let spun = join(spinner, JoinWait::Block).unwrap();
        join(setter, JoinWait::Block).unwrap();
        // One slice, or a few on a busy machine; never the forever of a livelock.
        assert!(spun < 1_000_000, "spun {spun} us before the other ran");
    }

    #[test]
    fn threads_that_wait_for_each_other_keep_going_beside_one_that_never_waits() {
        init();
        let stop = Rc::new(Cell::new(false));
        let progress = Rc::new(Cell::new(0usize));
        let hog = spawn(
            {
                let (stop, progress) = (stop.clone(), progress.clone());
                move || {
                    let mut turns = 0;
                    while !stop.get() {
                        let before = progress.get();
                        completed_without_parking();
                        // The pair ran meanwhile: the hog had stepped aside.
                        turns += usize::from(progress.get() != before);
                    }
                    turns
                }
            },
            opts(),
        )
        .unwrap();
        // A pair handing the turn back and forth: each hand-off goes through the
        // scheduler, as in a condvar or semaphore ping-pong.
        let rounds = 20_000;
        let pair: Vec<_> = (0..2)
            .map(|_| {
                let progress = progress.clone();
                spawn(
                    move || {
                        for _ in 0..rounds {
                            progress.set(progress.get() + 1);
                            yield_now();
                        }
                        0
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for h in pair {
            join(h, JoinWait::Block).unwrap();
        }
        stop.set(true);
        let turns = join(hog, JoinWait::Block).unwrap();
        // Stepping aside for one hand-off at a time would take 40,000 turns: the pair
        // runs a slice at a time beside the hog (a few dozen turns).
        assert!(turns < 2_000, "{turns} hog turns");
    }

    #[test]
    fn many_threads_reuse_stacks() {
        init();
        for _ in 0..3 {
            let hs: Vec<_> = (0..2000)
                .map(|i| spawn(move || i, opts()).unwrap())
                .collect();
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(join(h, JoinWait::Block), Ok(i));
            }
        }
        let s = stats();
        assert_eq!(s.threads_created, 6000);
        assert_eq!(s.peak_alive, 2001);
    }

    #[test]
    fn with_tcbs_thread_locals_and_errno_are_per_green_thread() {
        init_current_thread(Config {
            guard_budget: 64,
            fd_floor: 200,
            tls: crate::config::Tls::On,
        });
        thread_local! {
            static MINE: Cell<usize> = const { Cell::new(0) };
        }
        MINE.with(|m| m.set(1000));
        let main_tp = os_thread::thread_pointer();
        let handles: Vec<_> = (1..=3)
            .map(|i| {
                spawn(
                    move || {
                        assert_eq!(MINE.with(Cell::get), 0, "a fresh TLS block");
                        MINE.with(|m| m.set(i));
                        errno::set(i as i32);
                        yield_now();
                        let tp = os_thread::thread_pointer();
                        assert_ne!(tp, main_tp);
                        // The handle is the TCB, as glibc's pthread_self reads it.
                        assert_eq!(current_handle().unwrap().0 as usize, tp);
                        assert_eq!(errno::get(), i as i32);
                        MINE.with(Cell::get)
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        yield_now();
        for (i, h) in handles.into_iter().enumerate() {
            assert!(is_green_handle(h.0));
            assert_eq!(join(h, JoinWait::Block), Ok(i + 1));
        }
        assert_eq!(MINE.with(Cell::get), 1000);
        assert_eq!(os_thread::thread_pointer(), main_tp);
        // Reused blocks start from the TLS image again.
        for _ in 0..3 {
            let h = spawn(|| MINE.with(Cell::get), opts()).unwrap();
            assert_eq!(join(h, JoinWait::Block), Ok(0));
        }
        assert!(!is_green_handle(main_tp as u64));
        assert_eq!(
            join(Handle(main_tp as u64 + 8), JoinWait::Try),
            Err(Errno::SRCH)
        );
    }

    #[test]
    fn handles_are_tagged_and_checked() {
        init();
        let h = spawn(|| 0, opts()).unwrap();
        assert!(is_green_handle(h.0));
        assert!(!is_green_handle(0x7f00_0000_1000));
        assert_eq!(
            join(Handle(0x7f00_0000_1000), JoinWait::Try),
            Err(Errno::SRCH)
        );
        set_name(h, b"worker").unwrap();
        assert_eq!(&name(h).unwrap()[..7], b"worker\0");
        join(h, JoinWait::Block).unwrap();
    }
}
