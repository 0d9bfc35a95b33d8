//! The monitor: preemption of a green thread that runs too long without a switch, and
//! hand-off of a worker stuck in a call no hook saw.
//!
//! Green threads switch only in greenify's calls, so a thread that computes without making
//! one (a spin on a plain flag, a tight loop) keeps every other thread, and every timer,
//! out. As Go's `sysmon` does, one OS thread of greenify's own (not green; started with the
//! first green thread, so a program that never creates a thread has none) watches every
//! worker (each registers itself with [`register`]) through a small record of atomics
//! ([`Worker`]), looking at each when its own view of it says (a quarter slice while it
//! switches, sooner when its slice ends):
//!
//! - `dispatches`, bumped by the run loop at every dispatch (one plain store). The monitor
//!   notes when it first saw the current value: a value unchanged for a slice (10 ms,
//!   `GREENIFY_SLICE_MS`) means one thread has run that long.
//! - `next_timer`: the earliest deadline of a parked thread's timer. When it passes, the
//!   running thread's slice ends there (a sleeper whose time came runs as soon as it
//!   would natively, where the kernel's timer interrupt preempts a spinning thread).
//! - `next_waits`: a thread the running one woke waits to run next on this worker (Go's
//!   `runnext`: no idle worker is woken for it). At a look that finds the worker still
//!   running the thread of the last look, the scheduler has an idle worker take it
//!   (`take_next`), as Go's stealers take a `runnext` that waited a few microseconds,
//!   and marks the running thread so that its next wakes wake an idle worker at once.
//! - `state`: whether the worker is in its idle wait. The monitor then does not signal it,
//!   and, once the worker has stayed idle a while, stops looking at it until the worker
//!   rings the monitor's bell as it leaves the wait (the worker makes that system call
//!   only then): an idle process has a monitor that never wakes.
//!
//! Before it interrupts, the monitor checks that the worker is computing, not blocked in the
//! kernel in a call no hook saw (a raw futex, a read of a slow file): there a signal could
//! end the call with EINTR, which the program would see. The worker's per-thread CPU clock
//! must advance by at least a quarter of the wall time over a 200 us sample just before
//! the signal (a blocked thread's advances by nothing; a spinner's by all of it, less
//! what other processes take on a loaded machine): a thread that computed for most of
//! its slice and then blocked is not signalled. When the sample shows no progress, the
//! CPU time of the whole slice tells a blocked worker (counted in the stats, looked at
//! again a quarter slice later) from one that waits for a CPU on a loaded machine (looked
//! at again a millisecond later).
//!
//! Nor does it signal a worker inside greenify's calls: the kernel ends even a zero-timeout
//! poll with EINTR when a handler runs, and a thread that loops on calls that never wait
//! steps aside on its own there (see `sched::completed_without_parking`).
//!
//! Otherwise it sends the worker [`SIGNAL`] with `rt_tgsigqueueinfo(2)`: `si_code` SI_QUEUE,
//! our pid and [`MAGIC`] in `si_value`, and sets the worker's `requested` flag, so that the
//! handler (hooks/preempt.rs) tells it from a SIGURG the program receives. The handler
//! switches away only at a safe point; otherwise the monitor tries again a millisecond later.
//! One safe-point condition lives here: the interrupted instruction is not in libc, the
//! loader, libgcc_s, the vDSO or greenify ([`in_excluded_code`]: their executable
//! segments, found with `dl_iterate_phdr` when the monitor starts and again before each
//! signal, as libgcc_s may be loaded late).
//!
//! Hand-off (as Go's sysmon retakes the P of an M stuck in a system call): a worker whose
//! dispatch count stood still and whose CPU clock advanced by less than a quarter of the
//! wall time over a whole look interval (and at each look since) is blocked; if the
//! kernel shows it waiting (`/proc/self/task/TID/syscall` is not `running`: a thread that
//! waits for a CPU is not stuck), the monitor asks the scheduler to hand its role to a
//! spare OS thread (`hand_off`, see sched/handoff.rs), and says when it sees that worker
//! switch or go idle again. No signal is sent to it. The call may be the program's or
//! one greenify makes for it (a read of a slow file, an escape run as it is): the
//! scheduler only needs the worker outside its sections, which idle waits are not
//! (the worker is then idle, not running).
//!
//! Each worker's `/proc` file is opened once, by whoever starts its OS thread, and kept in
//! greenify's fd range ([`open_syscall_file`]): an open takes the lowest free number of
//! the fd table the program shares, so one at each look would, for a moment, hand a
//! program open on another worker the next number up.
//!
//! With `GREENIFY_WATCHDOG` the monitor also runs the watchdog's looks (watchdog.rs), and
//! runs with preemption off too (then it never preempts).
//!
//! In a child of fork the monitor does not exist: the child starts its own when it next
//! creates a thread.

use super::raw;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::time::{Duration, Instant};

use Ordering::{Relaxed, SeqCst};

/// The preemption signal. SIGURG, as Go: ignored by default, rarely used by programs (only
/// for sockets' out-of-band data), and not one a terminal or a shell sends. The program's
/// own SIGURG disposition is kept and honoured by the handler.
pub const SIGNAL: i32 = libc::SIGURG;
/// `si_value` of greenify's own preemption signals ("grnfy").
pub const MAGIC: u64 = 0x0067_726e_6679;

/// After this many looks that found the worker idle, the monitor sleeps until it wakes.
const IDLE_LOOKS: u32 = 5;
/// How soon the monitor tries again after the handler found no safe point.
const RETRY: Duration = Duration::from_millis(1);
/// How long the monitor watches the worker's CPU clock before it signals.
const SAMPLE: Duration = Duration::from_micros(200);
/// The longest look interval while the worker is idle but not yet for long.
const IDLE_TICK_MAX: Duration = Duration::from_millis(10);

/// Worker states (see the module doc).
const RUNNING: u32 = 0;
const IDLE: u32 = 1;
/// Idle, and the monitor sleeps on `state` until the worker leaves its wait.
const IDLE_WATCHED: u32 = 2;

/// What the monitor knows of one worker (one scheduler OS thread).
pub struct Worker {
    /// Its kernel thread id (0: not known yet).
    os_tid: AtomicI32,
    /// Watched (see [`register`]).
    registered: AtomicBool,
    /// Its `/proc/self/task/TID/syscall`, opened as it registers and kept in greenify's fd
    /// range (-1: none, see [`open_syscall_file`]).
    syscall_fd: AtomicI32,
    /// What `in_program` is asked about it (see [`start`]).
    tag: AtomicUsize,
    /// Bumped at every dispatch; only the worker writes it.
    dispatches: AtomicU32,
    state: AtomicU32,
    /// A preemption signal was sent and no handler looked at it yet.
    requested: AtomicBool,
    /// A preemption signal came while greenify's code ran a hooked call here: the call
    /// steps aside as it returns (see [`Worker::defer_to_return`]).
    at_return: AtomicBool,
    /// The earliest deadline of its parked threads' timers, in nanoseconds since
    /// [`epoch`] (u64::MAX: none); may be one that no longer matters.
    next_timer: AtomicU64,
    /// A thread that another worker may run waits in its `runnext` (see [`start`]).
    next_waits: AtomicBool,
}

impl Worker {
    pub(crate) const fn new() -> Worker {
        Worker {
            os_tid: AtomicI32::new(0),
            registered: AtomicBool::new(false),
            syscall_fd: AtomicI32::new(-1),
            tag: AtomicUsize::new(0),
            dispatches: AtomicU32::new(0),
            state: AtomicU32::new(RUNNING),
            requested: AtomicBool::new(false),
            at_return: AtomicBool::new(false),
            next_timer: AtomicU64::new(u64::MAX),
            next_waits: AtomicBool::new(false),
        }
    }

    /// A thread that another worker may run waits (`true`) or no longer waits in its
    /// `runnext`.
    #[inline]
    pub fn next_waits(&self, waits: bool) {
        self.next_waits.store(waits, Relaxed);
    }

    /// A new slice began (a dispatch, or a preemption that found nothing else to run).
    /// Called on the worker's OS thread only, so a load and a store suffice.
    #[inline]
    pub fn dispatched(&self) {
        self.dispatches
            .store(self.dispatches.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// The preemption handler found this worker's thread inside a hooked call: the call
    /// steps aside as it returns ([`Worker::take_at_return`]). Signal-safe.
    pub fn defer_to_return(&self) {
        if !self.at_return.swap(true, SeqCst) {
            AT_RETURN_PENDING.fetch_add(1, SeqCst);
        }
    }

    /// Whether a hooked call returning on this worker must step aside (and no longer).
    pub fn take_at_return(&self) -> bool {
        let due = self.at_return.swap(false, SeqCst);
        if due {
            AT_RETURN_PENDING.fetch_sub(1, SeqCst);
        }
        due
    }

    /// Its kernel thread id.
    pub fn os_tid(&self) -> i32 {
        self.os_tid.load(SeqCst)
    }

    /// Reads its `/proc/self/task/TID/syscall` into `buf` (see [`open_syscall_file`]): what
    /// was read, or None if the file cannot be read.
    pub fn read_syscall_file<'a>(&self, buf: &'a mut [u8]) -> Option<&'a [u8]> {
        let n = match self.syscall_fd.load(Relaxed) {
            fd if fd >= 0 => raw::read_from_start(fd, buf),
            _ => raw::read_task_file(self.os_tid(), "syscall", buf),
        };
        buf.get(..usize::try_from(n).ok()?)
    }

    /// Its dispatches so far (wrapping): another worker sees it dispatch.
    #[inline]
    pub fn dispatch_count(&self) -> u32 {
        self.dispatches.load(Relaxed)
    }

    /// Whether it waits idle.
    pub fn is_idle(&self) -> bool {
        self.state.load(SeqCst) != RUNNING
    }

    /// A parked thread armed a timer for `deadline`.
    #[inline]
    pub fn timer_armed(&self, deadline: Instant) {
        self.next_timer.fetch_min(since_epoch(deadline), Relaxed);
    }

    /// The scheduler expired the due timers: `next` is the earliest left.
    #[inline]
    pub fn timers_expired(&self, next: Option<Instant>) {
        self.next_timer
            .store(next.map_or(u64::MAX, since_epoch), Relaxed);
    }

    fn next_timer(&self) -> Instant {
        match self.next_timer.load(Relaxed) {
            u64::MAX => epoch() + Duration::from_secs(1 << 32),
            nanos => epoch() + Duration::from_nanos(nanos),
        }
    }

    /// The worker enters (`true`) or leaves its idle wait.
    #[inline]
    pub fn idle(&self, idle: bool) {
        if idle {
            self.state.store(IDLE, SeqCst);
        } else if self.state.swap(RUNNING, SeqCst) == IDLE_WATCHED {
            ring();
        }
    }
}

/// The time [`Worker::next_timer`] counts from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

/// How many workers have a hooked call to step aside as it returns: every hooked call's
/// return reads this one word, and looks at its own worker only when it is not 0.
static AT_RETURN_PENDING: AtomicU32 = AtomicU32::new(0);

/// Whether some worker has a hooked call to step aside as it returns
/// ([`Worker::defer_to_return`]).
#[inline]
pub fn at_return_pending() -> bool {
    AT_RETURN_PENDING.load(Relaxed) != 0
}

/// The first worker's record (the program's own OS thread).
pub static WORKER: Worker = Worker::new();

/// At most this many workers are watched.
const MAX_WATCHED: usize = 256;
/// The workers registered, in order ([`register`]); a slot may still be null while its
/// worker fills it.
static REGISTERED: [AtomicPtr<Worker>; MAX_WATCHED] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_WATCHED];
static REGISTERED_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Whether the worker registered with a tag runs the program's code (see [`start`]).
type InProgram = fn(usize) -> bool;
/// The worker registered with a tag is stuck, and its role goes to another OS thread;
/// or (false) it came back (see [`start`]).
type HandOff = fn(usize, bool) -> bool;
/// An idle worker is to take the thread waiting in the runnext of the worker registered
/// with a tag, whose OS thread computed meanwhile or not (see [`start`]).
type TakeNext = fn(usize, bool);
/// Whether the worker registered with a tag is inside a scheduler section (see [`start`]).
type InSection = fn(usize) -> bool;

/// What the monitor asks the scheduler (see [`start`]).
#[derive(Clone, Copy)]
pub struct Calls {
    pub in_program: InProgram,
    pub hand_off: HandOff,
    pub take_next: TakeNext,
    pub in_section: InSection,
}

/// The monitor sleeps on this word; bumped (and woken) when a worker leaves a wait the
/// monitor stopped looking at, or registers.
static BELL: AtomicU32 = AtomicU32::new(0);

/// Preemption signals sent, handlers that found a safe point, and looks that found the
/// worker blocked in the kernel (for the stats).
static SIGNALS_SENT: AtomicU64 = AtomicU64::new(0);
static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
static BLOCKED_SIGHTINGS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Default, Debug)]
pub struct Stats {
    pub signals: u64,
    pub preemptions: u64,
    pub blocked_sightings: u64,
}

pub fn stats() -> Stats {
    Stats {
        signals: SIGNALS_SENT.load(Relaxed),
        preemptions: PREEMPTIONS.load(Relaxed),
        blocked_sightings: BLOCKED_SIGHTINGS.load(Relaxed),
    }
}

/// The monitor of this process runs (or is being started).
static STARTED: AtomicBool = AtomicBool::new(false);

/// Whether this process has its monitor already.
#[inline]
pub fn started() -> bool {
    STARTED.load(Relaxed)
}

/// Starts the monitor, once per process, with the calling worker's (`worker`, `tag`):
/// `slice` is how long a thread may run without a switch (None: no preemption),
/// `watchdog` how long before the watchdog reports one (None: no watchdog). `own_code` is
/// an address in greenify's code. Of the `calls`, `in_program(tag)` tells whether the
/// worker registered with `tag` runs the program's code now (outside greenify's calls,
/// where a signal would only end the call greenify makes with EINTR). `hand_off(tag,
/// true)` gives the role of the worker registered with `tag`, stuck in a call no hook
/// saw, to another OS thread and says whether it did; `hand_off(tag, false)` says that
/// worker came back. `take_next(tag, computed)` has an idle worker take the thread that
/// waits to run next on that worker (Go's `runnext`) while it runs the same thread as at
/// the monitor's last look; `computed`: that worker's OS thread was on a CPU for most of
/// that time (the thread ran on; else the kernel held it off a CPU). `in_section(tag)`
/// tells whether that worker is inside a section of the scheduler: a wait the kernel
/// shows it in is then greenify's own (for the scheduler's lock), not a call of the
/// program's. Called on the worker's OS thread.
/// One monitor thread watches every worker registered, before or after.
pub fn start(
    slice: Option<Duration>,
    watchdog: Option<Duration>,
    own_code: usize,
    calls: Calls,
    worker: &'static Worker,
    tag: usize,
) {
    OWN_CODE.store(own_code, SeqCst);
    if STARTED.swap(true, SeqCst) {
        return;
    }
    scan_modules();
    register_first(worker, tag);
    // The monitor takes no signal of the program's: it is born with every signal blocked
    // (a new thread inherits its creator's mask), and the worker's mask is put back.
    let all = u64::MAX;
    let previous = sigprocmask(libc::SIG_SETMASK, &all);
    let spawned = super::own_threads::spawn(
        std::thread::Builder::new()
            .name("greenify-monitor".into())
            .stack_size(64 << 10),
        move || watch(slice, watchdog, calls),
    );
    sigprocmask(libc::SIG_SETMASK, &previous);
    if let Err(e) = spawned {
        ::log::warn!(
            "cannot start the preemption monitor ({e}): threads that never wait are not preempted"
        );
    }
}

/// Registers the calling OS thread as a worker (`tag` for `in_program`, see [`start`]):
/// watched from the monitor's start on (a running monitor is rung to look at it). Once.
pub fn register(worker: &'static Worker, tag: usize) {
    if worker.registered.swap(true, SeqCst) {
        return;
    }
    worker
        .os_tid
        .store(rustix::thread::gettid().as_raw_nonzero().get(), SeqCst);
    worker.tag.store(tag, SeqCst);
    let slot = REGISTERED_COUNT.fetch_add(1, SeqCst);
    let Some(slot) = REGISTERED.get(slot) else {
        ::log::warn!("more than {MAX_WATCHED} workers: the others are not preempted");
        return;
    };
    slot.store(worker as *const Worker as *mut Worker, SeqCst);
    ring();
}

/// The monitor will start with the first green thread (set as the library reads its
/// settings): workers open their `/proc` file as they register.
static WANTED: AtomicBool = AtomicBool::new(false);

/// The monitor will start with the first green thread (GREENIFY_SLICE_MS is not 0, or
/// GREENIFY_WATCHDOG is set).
pub fn will_start() {
    WANTED.store(true, SeqCst);
}

/// Opens `/proc/self/task/TID/syscall` of `worker`'s OS thread `tid` for the monitor,
/// which re-reads it from offset 0 at each look (the kernel writes it afresh). The open
/// takes the lowest free fd number of the table the program shares, so it is made once
/// per OS thread, and the fd is moved at once into greenify's range (as the reactor's
/// are), by whoever starts the thread: the first worker for itself ([`register_first`]),
/// the spawn that starts the others under the scheduler's lock, so that no worker
/// dispatches a thread meanwhile (the spawn does not wait for the new threads themselves,
/// which may need the loader's lock that a library constructor's `pthread_create` holds:
/// numpy's OpenBLAS hung so; the one thread that spawn made may already run on a new
/// worker, and an open of its at that moment gets the next number up), the monitor for a
/// spare (while the program runs: once in a spare's life, a program open at that moment
/// gets the next number up). Where no number is free
/// in greenify's range (it holds 32 fds of greenify's), the monitor opens the file for
/// each read instead, with that moment at each read.
pub fn open_syscall_file(worker: &Worker, tid: i32) {
    use rustix::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
    if !WANTED.load(SeqCst) || worker.syscall_fd.load(SeqCst) >= 0 {
        return;
    }
    let fd = raw::open_task_file(tid, "syscall", libc::O_RDONLY);
    if fd < 0 {
        return;
    }
    // SAFETY: the fd just opened, ours alone; closed below (raw: close is a hook).
    let low = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let placed = super::reactor::dup_internal(low.as_fd(), super::reactor::internal_fd_floor());
    raw::close(low.into_raw_fd());
    match placed {
        Some(fd) => worker.syscall_fd.store(fd.into_raw_fd(), SeqCst),
        None => {
            ::log::debug!("no room in greenify's fd range: the monitor opens /proc at each look")
        }
    }
}

/// Registers the calling worker (`worker`, `tag`) with its `/proc` file opened now, while
/// only its own code runs: the first worker as the first spawn is about to start more
/// workers, or as the monitor starts (with one worker, no worker is started: without the
/// file opened here, each look that read it took the lowest free fd for a moment, and an
/// open of the program's then got the next number up).
pub fn register_first(worker: &'static Worker, tag: usize) {
    if WANTED.load(SeqCst) {
        register(worker, tag);
        open_syscall_file(worker, worker.os_tid());
    }
}

/// Wakes the monitor from its sleep on [`BELL`] to look at once (a new worker, one that
/// left an idle wait the monitor stopped looking at, a report the watchdog posted).
pub fn ring() {
    BELL.fetch_add(1, SeqCst);
    raw::futex_wake_one(&BELL);
}

/// In the child of a fork: no monitor (it is started again with the next thread), no
/// preemption counted yet and no worker registered; the forking worker is running. The
/// workers' `/proc` files are the parent's threads': closed (out of the program's
/// numbers, so it sees no change).
pub fn after_fork_child() {
    STARTED.store(false, SeqCst);
    // The child's stats count its own preemptions.
    for counter in [&SIGNALS_SENT, &PREEMPTIONS, &BLOCKED_SIGHTINGS] {
        counter.store(0, SeqCst);
    }
    let count = REGISTERED_COUNT.swap(0, SeqCst).min(MAX_WATCHED);
    for slot in &REGISTERED[..count] {
        // SAFETY: registered records live as long as the process.
        if let Some(worker) = unsafe { slot.swap(std::ptr::null_mut(), SeqCst).as_ref() } {
            worker.registered.store(false, SeqCst);
            let fd = worker.syscall_fd.swap(-1, SeqCst);
            if fd >= 0 {
                // SAFETY: greenify's own fd, given up here.
                super::reactor::close_raw(unsafe { rustix::fd::FromRawFd::from_raw_fd(fd) });
            }
            worker.state.store(RUNNING, SeqCst);
            worker.requested.store(false, SeqCst);
            worker.take_at_return();
            worker.next_timer.store(u64::MAX, SeqCst);
        }
    }
}

/// The handler's side: takes the "preemption requested" flag of `worker` (the calling
/// one's).
pub fn take_request(worker: &Worker) -> bool {
    worker.requested.swap(false, SeqCst)
}

/// The handler found a safe point on `worker`: the slice starts again (if nothing else
/// was ready the thread goes on, and must not be signalled again at once).
pub fn preempted(worker: &Worker) {
    PREEMPTIONS.fetch_add(1, Relaxed);
    worker.dispatched();
}

/// Dispatches that were not a preemption resuming the same thread (the watchdog's
/// "switches"; a preemption that ran another thread counts through that dispatch).
fn switches(worker: &Worker) -> u32 {
    (worker.dispatches.load(Relaxed)).wrapping_sub(PREEMPTIONS.load(Relaxed) as u32)
}

/// The monitor's loop: looks at each registered worker when its [`View`] asks, and
/// sleeps on [`BELL`] until the earliest such look (or until rung).
fn watch(slice: Option<Duration>, watchdog: Option<Duration>, calls: Calls) {
    let look = look_interval(slice.into_iter().chain(watchdog).min().unwrap_or_default());
    let mut views: Vec<View> = Vec::new();
    loop {
        if watchdog.is_some() {
            super::watchdog::write_deadlock();
        }
        let bell = BELL.load(SeqCst);
        let count = REGISTERED_COUNT.load(SeqCst).min(MAX_WATCHED);
        for slot in &REGISTERED[views.len()..count] {
            // SAFETY: registered records live as long as the process.
            match unsafe { slot.load(SeqCst).as_ref() } {
                Some(worker) => views.push(View::new(worker)),
                // Its worker still fills it: looked at when rung.
                None => break,
            }
        }
        let mut next: Option<Instant> = None;
        for view in &mut views {
            let now = Instant::now();
            let woken = view.next.is_none() && view.worker.state.load(SeqCst) != IDLE_WATCHED;
            let due = view.next.is_some_and(|at| at <= now);
            if woken || due {
                view.next = view
                    .look(slice, watchdog, look, calls)
                    .map(|d| Instant::now() + d);
            }
            next = match (next, view.next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        raw::futex_wait(
            &BELL,
            bell,
            next.map(|at| at.saturating_duration_since(Instant::now())),
        );
    }
}

/// The monitor's view of one worker, between its looks.
struct View {
    worker: &'static Worker,
    tid: i32,
    tag: usize,
    clock: i32,
    /// The dispatch count last seen, since when, and the CPU clock then.
    seen: u32,
    since: Instant,
    cpu_since: u64,
    idle_looks: u32,
    /// The watchdog's view: the switch count, since when it stands, and whether this
    /// stretch was reported.
    seen_switches: u32,
    switch_since: Instant,
    reported: bool,
    /// The CPU clock at the last look and when that was; since when it stood still
    /// (while one thread runs); whether the worker's role was handed off.
    cpu_look: u64,
    look_at: Instant,
    still_since: Option<Instant>,
    handed_off: bool,
    /// When to look next (None: once the worker leaves its idle wait).
    next: Option<Instant>,
}

impl View {
    fn new(worker: &'static Worker) -> View {
        let tid = worker.os_tid.load(SeqCst);
        let clock = cpu_clock(tid);
        let since = Instant::now();
        let cpu_since = cpu_time(clock);
        View {
            worker,
            tid,
            tag: worker.tag.load(SeqCst),
            clock,
            seen: worker.dispatches.load(Relaxed),
            since,
            cpu_since,
            idle_looks: 0,
            seen_switches: switches(worker),
            switch_since: since,
            reported: false,
            cpu_look: cpu_since,
            look_at: since,
            still_since: None,
            handed_off: false,
            next: Some(since),
        }
    }

    /// One look at the worker (`look`: the interval while it switches); how long until
    /// the next (None: not before it leaves its idle wait).
    fn look(
        &mut self,
        slice: Option<Duration>,
        watchdog: Option<Duration>,
        look: Duration,
        calls: Calls,
    ) -> Option<Duration> {
        let (worker, clock, tag) = (self.worker, self.clock, self.tag);
        let Calls {
            in_program,
            hand_off,
            take_next,
            in_section,
        } = calls;
        let state = worker.state.load(SeqCst);
        let dispatches = worker.dispatches.load(Relaxed);
        let now = Instant::now();
        if switches(worker) != self.seen_switches || state != RUNNING {
            (self.seen_switches, self.switch_since, self.reported) = (switches(worker), now, false);
        }
        if let Some(limit) = watchdog.filter(|_| !self.reported && state == RUNNING) {
            let held = now.saturating_duration_since(self.switch_since);
            if held >= limit && in_program(tag) {
                self.reported = look_closer(
                    worker,
                    || in_section(tag),
                    clock,
                    held,
                    dispatches == self.seen,
                    self.cpu_since,
                    self.since,
                );
            }
        }
        if dispatches != self.seen || state != RUNNING {
            if self.handed_off {
                self.handed_off = hand_off(tag, false);
            }
            (self.cpu_look, self.look_at, self.still_since) = (cpu_time(clock), now, None);
            let unchanged = dispatches == self.seen;
            self.seen = dispatches;
            self.since = now;
            self.cpu_since = cpu_time(clock);
            if state == RUNNING {
                self.idle_looks = 0;
                return Some(look);
            } else {
                self.idle_looks = if unchanged { self.idle_looks + 1 } else { 0 };
                if self.idle_looks < IDLE_LOOKS {
                    let tick = look * (1 << self.idle_looks.min(4));
                    return Some(tick.min(IDLE_TICK_MAX));
                }
                let watched = state == IDLE_WATCHED
                    || worker
                        .state
                        .compare_exchange(IDLE, IDLE_WATCHED, SeqCst, SeqCst)
                        .is_ok();
                return if watched { None } else { Some(Duration::ZERO) };
            }
        }
        if worker.next_waits.load(Relaxed) && now.saturating_duration_since(self.since) >= look / 2
        {
            // The thread it runs woke one that waits to run next there, and ran on. Only
            // once its dispatch spanned most of a look: a look right after the last (the
            // worker left its idle wait as it was watched) sees the same dispatch count
            // microseconds later, and a pair taking turns over a pipe was taken for a
            // waker that runs on (marked `runs_on`, it split over the two workers). Nor
            // is a waker whose OS thread lost its CPU on a busy machine one that runs on:
            // with two busy loops, a condvar pair split so for hundreds of turns.
            take_next(
                tag,
                computed_at_least(clock, self.cpu_since, self.since, now, 2),
            );
        }
        if self.stuck(now, look) && super::watchdog::waiting_in_kernel(worker) {
            self.handed_off = hand_off(tag, true);
        }
        let Some(slice) = slice else {
            return Some(look);
        };
        // The slice ends after `slice`, or earlier when a parked thread's timer is due.
        let end = (self.since + slice).min(worker.next_timer());
        if now < end {
            return Some((end - now).min(look));
        }
        if !in_program(tag) {
            // In greenify's calls: those that never wait step aside on their own.
            return Some(look);
        }
        if !computing(worker, clock) {
            // Not on a CPU just now: blocked in the kernel (a signal could end its call
            // with EINTR), or waiting for a CPU on a loaded machine. Blocked, its CPU
            // clock fell behind over the whole slice too.
            if !computed_at_least(clock, self.cpu_since, self.since, Instant::now(), 4) {
                BLOCKED_SIGHTINGS.fetch_add(1, Relaxed);
                return Some(look);
            }
            return Some(RETRY);
        }
        if worker.dispatches.load(Relaxed) != self.seen || worker.state.load(SeqCst) != RUNNING {
            return Some(Duration::ZERO);
        }
        scan_modules();
        worker.requested.store(true, SeqCst);
        if send(self.tid) {
            SIGNALS_SENT.fetch_add(1, Relaxed);
        }
        Some(RETRY)
    }
}

impl View {
    /// Whether the worker, running one thread since the last look (at `now`), has been
    /// blocked for a look interval or more and is not handed off yet: its CPU clock
    /// advanced by less than a quarter of the wall time at every look meanwhile (a
    /// blocked thread's stands still). So a stuck call holds the other threads up for one
    /// to two look intervals (2.5 to 5 ms with the 10 ms slice), below the slice a
    /// computing thread may take, and the monitor looks no more often than it does
    /// anyway while threads run; a call that blocks for less is left alone.
    fn stuck(&mut self, now: Instant, look: Duration) -> bool {
        let cpu = cpu_time(self.clock);
        let computed = Duration::from_nanos(cpu.saturating_sub(self.cpu_look));
        let still = computed * 4 < now.saturating_duration_since(self.look_at);
        self.still_since = still.then(|| self.still_since.unwrap_or(self.look_at));
        (self.cpu_look, self.look_at) = (cpu, now);
        !self.handed_off
            && self
                .still_since
                .is_some_and(|since| now.saturating_duration_since(since) >= look)
    }
}

/// The watchdog's look at a worker that ran one thread for `held` in the program's code
/// (`unmoved`: its dispatch count stood still since `since`, when its CPU clock read
/// `cpu_since`; `in_section`: whether it is inside a scheduler section). Says whether
/// the stretch is dealt with (reported, or its site was).
fn look_closer(
    worker: &Worker,
    in_section: impl Fn() -> bool,
    clock: i32,
    held: Duration,
    unmoved: bool,
    cpu_since: u64,
    since: Instant,
) -> bool {
    let tid = worker.os_tid.load(SeqCst);
    if computing(worker, clock) {
        let before = super::watchdog::samples();
        if !send(tid) {
            return false;
        }
        for _ in 0..20 {
            if super::watchdog::samples() != before {
                break;
            }
            raw::futex_wait(&worker.state, RUNNING, Some(RETRY / 2));
        }
        return super::watchdog::spinning(before, held);
    }
    unmoved
        && !computed_at_least(clock, cpu_since, since, Instant::now(), 4)
        && super::watchdog::stuck(worker, held, in_section)
}

/// Whether the OS thread whose CPU clock is `clock`, which read `cpu_since` at `since`,
/// was on a CPU for at least 1/`share` of the time from then to `now`.
fn computed_at_least(clock: i32, cpu_since: u64, since: Instant, now: Instant, share: u32) -> bool {
    let computed = Duration::from_nanos(cpu_time(clock).saturating_sub(cpu_since));
    computed * share >= now.saturating_duration_since(since)
}

/// Whether the worker computes right now: its CPU clock advances by at least a quarter of
/// the wall time over a short sample. A thread blocked in the kernel gets none; a
/// spinner all of it, less what other processes take on a loaded machine.
fn computing(worker: &Worker, clock: i32) -> bool {
    let (cpu, start) = (cpu_time(clock), Instant::now());
    raw::futex_wait(&worker.state, RUNNING, Some(SAMPLE));
    let computed = Duration::from_nanos(cpu_time(clock).saturating_sub(cpu));
    computed * 4 >= start.elapsed()
}

/// How often the monitor looks while the worker switches: a quarter slice, so a thread is
/// seen to overrun at most that late, within 1..10 ms.
fn look_interval(slice: Duration) -> Duration {
    (slice / 4).clamp(Duration::from_millis(1), Duration::from_millis(10))
}

/// Sends the preemption signal to OS thread `tid` of this process.
fn send(tid: i32) -> bool {
    raw::queue_to_thread(
        tid,
        SIGNAL as u32,
        &raw::own_queued_info(SIGNAL as u32, MAGIC),
    ) == 0
}

/// Whether `info` is one of greenify's preemption signals (see [`send`]).
///
/// # Safety
/// `info` is the kernel's siginfo for a handler of [`SIGNAL`] (or null).
pub unsafe fn is_preemption_signal(info: *const libc::siginfo_t) -> bool {
    // SAFETY: the caller's.
    unsafe { raw::own_queued_value(info) == Some(MAGIC) }
}

/// The per-thread CPU clock of OS thread `tid` of this process (what
/// `pthread_getcpuclockid` makes: CPUCLOCK_SCHED of a thread).
pub(crate) fn cpu_clock(tid: i32) -> i32 {
    (!tid << 3) | 6
}

/// The CPU time of `clock`, in nanoseconds (0 if it cannot be read).
pub(crate) fn cpu_time(clock: i32) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    let r = unsafe {
        raw::syscall(
            libc::SYS_clock_gettime,
            &[clock as usize, &mut ts as *mut libc::timespec as usize],
        )
    };
    if r != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Changes the OS thread's signal mask (rt_sigprocmask, raw: greenify hooks the libc
/// ones) as `how` says; returns the previous one.
pub fn sigprocmask(how: i32, mask: &u64) -> u64 {
    // glibc's own signals stay open on every OS thread: its setuid and setgid signal
    // each thread with SIGSETXID and wait until all ran its handler (a greenify worker
    // that blocked it, idle, hung them).
    let mask = if how == libc::SIG_UNBLOCK {
        *mask
    } else {
        *mask & !GLIBC_INTERNAL
    };
    let mut old = 0u64;
    // SAFETY: 8-byte kernel sigsets, both valid.
    unsafe {
        raw::syscall(
            libc::SYS_rt_sigprocmask,
            &[
                how as usize,
                &mask as *const u64 as usize,
                &mut old as *mut u64 as usize,
                8,
            ],
        );
    }
    old
}

/// glibc's internal signals, SIGCANCEL and SIGSETXID (32 and 33), in kernel mask bits.
pub const GLIBC_INTERNAL: u64 = (1 << 31) | (1 << 32);

/// Whether the calling thread runs on its alternate signal stack (a handler the kernel
/// started there, or code that a handler interrupted there).
pub fn on_signal_stack() -> bool {
    let mut current = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: a query into our own stack_t.
    let r = unsafe {
        raw::syscall(
            libc::SYS_sigaltstack,
            &[0, &mut current as *mut libc::stack_t as usize],
        )
    };
    r == 0 && current.ss_flags & libc::SS_ONSTACK != 0
}

// ---- code where a thread must not be switched away (see the module doc) ----

/// The executable segments of libc, the loader, libgcc_s, the vDSO and greenify: start and
/// end, in pairs; only ever appended to (a handler reads them lock-free).
const MAX_RANGES: usize = 64;
static RANGES: [AtomicUsize; 2 * MAX_RANGES] = [const { AtomicUsize::new(0) }; 2 * MAX_RANGES];
static RANGE_COUNT: AtomicUsize = AtomicUsize::new(0);
static OWN_CODE: AtomicUsize = AtomicUsize::new(0);
/// greenify's own code, from the start of its first executable segment to the end of its
/// last (see [`in_own_code`]).
static OWN_START: AtomicUsize = AtomicUsize::new(0);
static OWN_END: AtomicUsize = AtomicUsize::new(0);

/// Modules whose code may hold locks greenify cannot see (or is greenify's own scheduler).
const EXCLUDED: [&[u8]; 8] = [
    b"libc.so",
    b"ld-linux",
    b"ld64.so",
    b"libgcc_s.so",
    b"linux-vdso.so",
    b"linux-gate.so",
    b"libpthread.so",
    b"libdl.so",
];

/// Whether `pc` lies in code a thread must not be switched away from.
pub fn in_excluded_code(pc: usize) -> bool {
    let count = RANGE_COUNT.load(SeqCst);
    (0..count).any(|i| {
        let (start, end) = (RANGES[2 * i].load(Relaxed), RANGES[2 * i + 1].load(Relaxed));
        (start..end).contains(&pc)
    })
}

/// Whether `pc` lies in greenify's own code (known once the monitor started).
pub fn in_own_code(pc: usize) -> bool {
    (OWN_START.load(SeqCst)..OWN_END.load(SeqCst)).contains(&pc)
}

/// Records the excluded modules' code (ranges known already are skipped).
fn scan_modules() {
    let own = OWN_CODE.load(Relaxed);
    super::modules::each(&mut |module| {
        let is_own = module
            .code()
            .any(|(start, end)| (start..end).contains(&own));
        if is_own {
            let low = module.code().map(|(start, _)| start).min().unwrap_or(0);
            let high = module.code().map(|(_, end)| end).max().unwrap_or(0);
            OWN_END.store(high, SeqCst);
            OWN_START.store(low, SeqCst);
        }
        let excluded = is_own || EXCLUDED.iter().any(|e| module.name.starts_with(e));
        if excluded {
            module.code().for_each(record);
        }
        false
    });
}

/// Adds one range, unless it is known already.
fn record((start, end): (usize, usize)) {
    let count = RANGE_COUNT.load(SeqCst);
    if count == MAX_RANGES || (0..count).any(|i| RANGES[2 * i].load(Relaxed) == start) {
        return;
    }
    RANGES[2 * count].store(start, Relaxed);
    RANGES[2 * count + 1].store(end, Relaxed);
    RANGE_COUNT.store(count + 1, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_clock_of_another_thread_tells_spinning_from_blocked() {
        let measure = |spin: bool| {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = std::sync::Arc::new(AtomicBool::new(false));
            let stop2 = stop.clone();
            let t = std::thread::spawn(move || {
                tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                    .unwrap();
                if spin {
                    while !stop2.load(Relaxed) {}
                } else {
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            let clock = cpu_clock(rx.recv().unwrap());
            let before = cpu_time(clock);
            std::thread::sleep(Duration::from_millis(50));
            let after = cpu_time(clock);
            stop.store(true, Relaxed);
            t.join().unwrap();
            after - before
        };
        assert!(measure(true) > 0);
        assert!(measure(false) < 5_000_000);
    }

    #[test]
    fn the_watchdog_names_no_wait_inside_a_section_as_a_call_no_hook_saw() {
        use std::io::Read;
        // A thread blocked in a futex wait, as a worker waiting for the scheduler's lock.
        static WORD: AtomicU32 = AtomicU32::new(0);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            while WORD.load(SeqCst) == 0 {
                raw::futex_wait(&WORD, 0, None);
            }
        });
        let tid = rx.recv().unwrap();
        let worker: &'static Worker = Box::leak(Box::new(Worker::new()));
        worker.os_tid.store(tid, SeqCst);
        while !super::super::watchdog::waiting_in_kernel(worker) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (out, into) = std::os::unix::net::UnixStream::pair().unwrap();
        out.set_nonblocking(true).unwrap();
        super::super::watchdog::set_output(std::os::fd::AsRawFd::as_raw_fd(&into));
        let clock = cpu_clock(tid);
        let (since, cpu_since) = (Instant::now(), cpu_time(clock));
        std::thread::sleep(Duration::from_millis(20));
        let held = Duration::from_millis(20);
        let in_section = look_closer(worker, || true, clock, held, true, cpu_since, since);
        let mut said = String::new();
        let _ = (&out).read_to_string(&mut said);
        let outside = look_closer(worker, || false, clock, held, true, cpu_since, since);
        let mut said_outside = String::new();
        let _ = (&out).read_to_string(&mut said_outside);
        super::super::watchdog::set_output(2);
        WORD.store(1, SeqCst);
        raw::futex_wake_all(&WORD);
        t.join().unwrap();
        assert!(!in_section && said.is_empty(), "{said}");
        assert!(outside, "a wait outside a section is reported");
        assert!(
            said_outside.contains(&format!("worker {tid} stuck 20 ms in futex(")),
            "{said_outside}"
        );
    }

    #[test]
    fn libc_code_is_excluded_and_this_test_is_not() {
        OWN_CODE.store(usize::MAX, SeqCst);
        scan_modules();
        assert!(in_excluded_code(libc::getpid as *const () as usize));
        assert!(!in_excluded_code(
            libc_code_is_excluded_and_this_test_is_not as *const () as usize
        ));
    }
}
