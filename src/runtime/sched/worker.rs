//! Workers: the OS threads that run green threads, and the lock they share the one
//! [`Scheduler`] under.
//!
//! What belongs to one OS thread rather than to the scheduler (the green thread it runs,
//! the signal mask it has, its slice and dispatch counts, its OS thread id, whether it is
//! inside a scheduler section) lives in its [`Worker`] record, reached through the TCB's
//! scheduler word (see os_thread.rs): every green TCB carries the record of the worker
//! that runs it. The record points at the scheduler.
//!
//! The scheduler itself is one object behind one lock ([`BigLock`]): every section
//! ([`super::with`]) is short and never blocks, so a plain word is enough (an
//! uncontended exchange, a short spin, then a futex wait; raw system calls only, so it
//! never meets the program's hooks or errno). While only the program's own OS thread
//! runs green threads (`GREENIFY_WORKERS=1`, or before the first thread is created),
//! sections skip the lock: its two atomic operations per section would cost about a
//! tenth of a green switch. A switch takes two sections: the one the thread leaves in
//! (run.rs, `switch_out`) and the run loop's, which dispatches the next thread and
//! leaves it a note of what it finds as it resumes ([`Resumed`]).
//!
//! With `GREENIFY_WORKERS=N` (N > 1; the default is 1), the first spawn turns the lock on
//! and starts workers 1..N-1 ([`start_workers`]): OS threads of greenify's own, each with
//! its own record and TCB, running the run loop on their own stacks; the first worker's
//! loop gets a stack and a TCB of its own too, so that MAIN may run on any worker (see
//! `run::run_loop`). Each has its own run queue, all under the one lock (queues.rs): a
//! ready thread goes back to the worker it last ran on, and an idle worker steals.
//! A thread queued while its coroutine is out stays with its worker until the coroutine is
//! back (`Scheduler::enqueue`, as Go's park_m; a single worker queues it at once). A worker with nothing to run goes idle
//! ([`Scheduler::go_idle`]): the first waits in epoll for all, outside the lock (the
//! poller, as Go's netpoll), the others sleep on a futex word in their record; queueing a
//! thread wakes one, or rings the poller's doorbell (Go's wakep); a thread that a running
//! thread wakes runs next on its worker instead, waking none (Go's runnext, see
//! `Scheduler::enqueue_shared`), unless that thread was seen to run on after its wakes
//! (`Thread::runs_on`). Several workers need a TCB per green thread (a thread may
//! resume on another OS thread).
//!
//! A worker stuck in a call no hook saw gets a spare, started by the same path
//! ([`start_thread`]), which joins the workers for as long as it is stuck (handoff.rs).

use super::handoff::FIRST_SPARE;
use super::run::run_loop;
use super::signals::os_sigmask;
use super::tls::Tls;
use super::{with, Scheduler};
use crate::runtime::reactor::{EpollWait, DEGRADED_TICK};
use crate::runtime::wait::{ThreadId, Wake, MAIN};
use crate::runtime::{monitor, os_thread, overflow, own_threads, raw};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The hooks' mode a worker record starts in: "inside greenify" (the hooks' LIBRARY; a
/// worker's first code is greenify's own).
pub const START_MODE: u8 = 3;
/// The hooks' mode of a worker whose green thread runs the program's code (the hooks'
/// APPLICATION).
pub const APPLICATION_MODE: u8 = 2;

/// [`Worker::sleep`]: running, or woken.
const AWAKE: u32 = 0;
/// [`Worker::sleep`]: waiting idle until another worker wakes it.
const ASLEEP: u32 = 1;
/// [`Worker::sleep`]: a spare, out of the workers until the monitor hands it the role of
/// a stuck one (see handoff.rs).
pub(super) const RETIRED: u32 = 2;

/// One OS thread running green threads.
pub(super) struct Worker {
    /// The hooks' mode of this OS thread (see hooks/mod.rs): whether the green thread it
    /// runs is inside greenify or in the program's code.
    pub(super) mode: AtomicU8,
    /// Its OS thread's Syscall User Dispatch selector (see runtime/escapes.rs).
    pub(super) selector: AtomicU8,
    pub(super) sched: *mut Scheduler,
    /// Its place among the workers (0: the program's own OS thread, or the forking one in
    /// a forked child).
    pub(super) index: usize,
    /// The TCB its run loop runs on: its OS thread's own, or for the first worker once
    /// MAIN may leave it, one made for its loop (0: the pool's, MAIN's).
    pub(super) own_tcb: usize,
    /// Its OS thread's own glibc thread descriptor (`struct pthread`), the one on glibc's
    /// thread lists whose tid is this OS thread's: the TCB it had before green threads
    /// ran on it (MAIN's on the first worker; in a forked child, the TCB that forked).
    /// Written before the worker runs: read without a section, also by signal handlers.
    pub(super) os_pd: usize,
    /// It may run MAIN: the first worker, and every worker started once MAIN may move,
    /// spares too as they join (see `run::run_loop`; a spare's loop could be MAIN's
    /// stack's neighbour only with one worker, where MAIN stays on the first).
    pub(super) runs_main: bool,
    /// Its run loop's saved context while MAIN runs on it (0: its loop runs on MAIN's
    /// stack, or has not dispatched MAIN yet; see `run::run_loop`).
    pub(super) loop_context: usize,
    /// [`AWAKE`], or [`ASLEEP`] while it waits idle for a wake (a futex word).
    pub(super) sleep: AtomicU32,
    /// The scheduler's lock (kept apart from it: a section's `&mut Scheduler` must not
    /// cover a word other OS threads touch meanwhile).
    pub(super) lock: &'static BigLock,
    /// The green thread it runs ([`MAIN`] while its run loop runs).
    pub(super) current: ThreadId,
    /// Its run loop runs (from a thread's switch back to the next dispatch, idle waits
    /// included): `current` names no running thread then. Its wakes (a look at epoll, a
    /// timer) are no running thread's (see `Scheduler::waker_runs_on`).
    pub(super) in_loop: bool,
    /// The signal mask its OS thread has now.
    pub(super) applied_mask: u64,
    /// Hooked calls that came back without waiting since the current thread was
    /// dispatched, and when its slice began (see `slice::completed_without_parking`).
    pub(super) unparked_calls: u32,
    pub(super) slice_start: Option<Instant>,
    /// Dispatches since its last look at epoll.
    pub(super) dispatches_since_poll: u32,
    /// What the thread it dispatched last finds as it resumes.
    pub(super) resumed: Resumed,
    /// The thread it runs next (Go's `runnext`, see `Scheduler::enqueue`), and how many
    /// times it took one from there (see `Scheduler::pop_ready`).
    pub(super) next: Option<ThreadId>,
    pub(super) next_taken: u32,
    /// Its run queue: ready threads that last ran here, new ones spread here, or ones it
    /// stole (see queues.rs). Only touched in sections, under the lock once shared.
    pub(super) queue: VecDeque<ThreadId>,
    /// The first thread of its queue, and the thread in its runnext with its dispatch
    /// count, when another worker last looked for threads stranded here, and the
    /// dispatches since it last looked itself (see `Scheduler::rescue`, queues.rs).
    pub(super) front_seen: Option<ThreadId>,
    pub(super) next_seen: Option<(ThreadId, u32)>,
    pub(super) since_rescue: u32,
    /// The monitor handed its role to a spare: it is stuck in a call no hook saw, and
    /// its queue went to the spare (see handoff.rs).
    pub(super) stuck: AtomicBool,
    /// Its OS thread.
    pub(super) os_tid: rustix::thread::Pid,
    /// Real-time signals the trampoline blocked on its OS thread, whose next instances
    /// may wait in that thread's kernel queue (see nudge.rs).
    pub(super) held_here: AtomicU64,
    /// Signals another worker asked its OS thread to block (see nudge.rs).
    pub(super) block_request: AtomicU64,
    /// greenify's signal handlers open on its OS thread that will return to the context
    /// they interrupted, and what nudges taken inside them changed of the mask, which each
    /// one's sigreturn must keep (see nudge.rs `Frame`).
    pub(super) open_frames: AtomicU32,
    pub(super) frames_blocked: AtomicU64,
    pub(super) frames_opened: AtomicU64,
    /// A dump's look at the thread it runs (see look.rs): the state word, the registers
    /// its handler recorded, and those a preemption published as it waits for the lock.
    pub(super) look: AtomicU32,
    pub(super) look_registers: [AtomicUsize; 3],
    pub(super) still_registers: [AtomicUsize; 3],
    /// What the preemption monitor watches of it: the run loop bumps its dispatch count
    /// and says when it waits idle (see monitor.rs).
    pub(super) watch: &'static monitor::Worker,
    /// The stack of the thread it runs, for its OS thread's fault handler.
    pub(super) running_stack: overflow::Running,
    /// A section of this OS thread is open or opening (re-entering one, from the section
    /// itself or a signal handler that interrupted it, is a bug: the lock is not
    /// recursive). Set before the lock is taken, so a handler never waits for its own
    /// thread's lock.
    pub(super) in_section: bool,
    /// Sections take the lock: another worker may exist. Only the thread that sets it
    /// ran sections before, and the other workers start after the section that set it
    /// closed (with it set); or the monitor sets it on the first worker before a spare
    /// runs a section (see handoff.rs).
    pub(super) shared: bool,
}

impl Worker {
    /// A record for the calling OS thread, whose mask is `os_mask`, leaked: workers live
    /// as long as the process.
    pub(super) fn new(sched: *mut Scheduler, lock: &'static BigLock, os_mask: u64) -> Worker {
        Worker {
            mode: AtomicU8::new(START_MODE),
            selector: AtomicU8::new(0),
            sched,
            index: 0,
            own_tcb: 0,
            os_pd: os_thread::thread_pointer(),
            runs_main: false,
            loop_context: 0,
            sleep: AtomicU32::new(AWAKE),
            lock,
            current: MAIN,
            in_loop: true,
            applied_mask: os_mask,
            unparked_calls: 0,
            slice_start: None,
            dispatches_since_poll: 0,
            resumed: Resumed {
                wake: Wake::Ready,
                handlers_due: false,
                due_restart: false,
            },
            next: None,
            next_taken: 0,
            queue: VecDeque::new(),
            front_seen: None,
            next_seen: None,
            since_rescue: 0,
            stuck: AtomicBool::new(false),
            os_tid: rustix::thread::gettid(),
            held_here: AtomicU64::new(0),
            block_request: AtomicU64::new(0),
            open_frames: AtomicU32::new(0),
            frames_blocked: AtomicU64::new(0),
            frames_opened: AtomicU64::new(0),
            look: AtomicU32::new(0),
            look_registers: Default::default(),
            still_registers: Default::default(),
            watch: &monitor::WORKER,
            running_stack: overflow::Running::default(),
            in_section: false,
            shared: false,
        }
    }
}

/// The scheduler with the record of its first worker (the OS thread that made it), in
/// one allocation, leaked. While no other worker may exist, a section finds the
/// scheduler at a fixed offset from the record the TCB names instead of loading the
/// record's pointer: that one dependent load per section cost about a tenth of a green
/// switch.
#[repr(C)]
pub(super) struct Home {
    worker: Worker,
    sched: Scheduler,
}

impl Home {
    /// Makes the calling OS thread's, whose signal mask is `os_mask`, around `sched`;
    /// returns its worker record.
    pub(super) fn make(sched: Scheduler, lock: &'static BigLock, os_mask: u64) -> *mut Worker {
        let home = Box::into_raw(Box::new(Home {
            worker: Worker {
                // The program's own thread: MAIN runs on it.
                in_loop: false,
                ..Worker::new(std::ptr::null_mut(), lock, os_mask)
            },
            sched,
        }));
        // SAFETY: just made, never freed.
        unsafe {
            (*home).worker.sched = std::ptr::addr_of_mut!((*home).sched);
            std::ptr::addr_of_mut!((*home).worker)
        }
    }

    /// The scheduler of `worker`, the first worker's record (any section while the
    /// record is not `shared`: no other worker exists, and a forked child's only one is
    /// the forking thread, the first worker today).
    #[inline(always)]
    pub(super) fn sched_of(worker: *mut Worker) -> *mut Scheduler {
        // SAFETY: `worker` is the first field of a leaked `Home` (repr(C)); only the
        // address is computed.
        unsafe { std::ptr::addr_of_mut!((*worker.cast::<Home>()).sched) }
    }
}

/// What a dispatched thread finds as it resumes, noted by the dispatch's section so that
/// the thread needs no section of its own to learn it (see `run::resumed`).
#[derive(Clone, Copy)]
pub(super) struct Resumed {
    /// How its park ended.
    pub(super) wake: Wake,
    /// Signal handlers are due in it.
    pub(super) handlers_due: bool,
    /// Every handler due was installed with SA_RESTART (what an interruptible wait they
    /// end returns).
    pub(super) due_restart: bool,
}

impl Worker {
    /// Takes the scheduler's lock for the section `worker` (the calling OS thread's
    /// record) opens; returns the scheduler. Out of line: the sections of a single
    /// worker never take it.
    #[cold]
    #[inline(never)]
    pub(super) fn lock_for_section(worker: *mut Worker) -> *mut Scheduler {
        // SAFETY: worker records are never freed; `lock` and `sched` never change.
        unsafe {
            (*worker).lock.lock();
            (*worker).sched
        }
    }

    /// Releases the lock at the end of the section of `worker`.
    #[cold]
    #[inline(never)]
    pub(super) fn unlock_after_section(worker: *mut Worker) {
        // SAFETY: as in `lock_for_section`.
        unsafe { (*worker).lock.unlock() }
    }
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and some OS thread may sleep in a futex wait for it.
const CONTENDED: u32 = 2;

/// Exchanges tried before sleeping: a section lasts well under a microsecond.
const SPINS: u32 = 100;

/// The scheduler's lock (a futex word, as in Drepper's "Futexes Are Tricky", mutex 2).
pub(super) struct BigLock {
    word: AtomicU32,
    /// Nanoseconds the workers spent spinning for it, in all (see `Gather`). Written
    /// only with the lock held (it shares the word's line, which the taker owns then).
    spun: AtomicU64,
}

impl BigLock {
    pub(super) const fn new() -> BigLock {
        BigLock {
            word: AtomicU32::new(UNLOCKED),
            spun: AtomicU64::new(0),
        }
    }

    /// The nanoseconds spun for it so far; read with the lock held.
    pub(super) fn spun(&self) -> u64 {
        self.spun.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub(super) fn lock(&self) {
        if self
            .word
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let since = Instant::now();
        let mut taken = false;
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .word
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                taken = true;
                break;
            }
        }
        // The spin only: a sleep in the futex costs no CPU.
        let spun = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if !taken {
            while self.word.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
                // Any answer (woken, EAGAIN because the word changed, EINTR) just leads
                // to another exchange.
                raw::futex_wait(&self.word, CONTENDED, None);
            }
        }
        // Held now: no other writer.
        self.spun
            .store(self.spun().saturating_add(spun), Ordering::Relaxed);
    }

    #[inline(always)]
    pub(super) fn unlock(&self) {
        if self.word.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        raw::futex_wake_one(&self.word);
    }

    /// In a forked child only the forking OS thread exists: nobody holds the lock (a
    /// section of its own that the handler that forked interrupted releases it, or
    /// takes it, harmlessly).
    pub(super) fn after_fork(&self) {
        self.word.store(UNLOCKED, Ordering::Relaxed);
    }
}

impl Scheduler {
    /// At a spawn: the first one (of the process, or of a forked child) turns the lock on
    /// when more workers are configured, and says how many to start (see
    /// [`start_workers`]) once its section has closed. The section that turns the lock on
    /// takes it here and releases it as it closes, as every section does from then on.
    /// The unit tests take the lock as if workers started, but start none (their
    /// schedulers run on the test harness's threads).
    pub(super) fn share(&mut self) -> usize {
        let wanted = self.workers.count;
        if self.workers_started || wanted <= 1 {
            return 0;
        }
        if !cfg!(test) && !matches!(self.tls, Tls::PerThread(_)) {
            // A thread that moved to another OS thread would find another's TLS. Only a
            // count the user asked for is warned about, not the default (the CPUs).
            if self.workers.explicit {
                ::log::warn!(
                    "GREENIFY_WORKERS={wanted}, but green threads share one TCB: one worker runs them"
                );
            }
            self.workers.count = 1;
            return 0;
        }
        // The section closes as a shared one does, releasing the lock (uncontended: no
        // other worker runs yet).
        // The reactor's fds are made at the lowest free number and then moved up: before
        // the other workers start, so that no call of the program's on another worker
        // meets that number (a socket() got the next number up, 1 run in 200).
        self.open_reactor();
        self.workers_started = true;
        let w = self.w();
        // A forked child's only worker, if it was not the parent's first, has its lock on
        // already (fork.rs): this section holds it.
        if !w.shared {
            w.lock.lock();
            w.shared = true;
        }
        self.reactor.track_missed();
        if cfg!(test) {
            0
        } else {
            wanted - 1
        }
    }

    /// The worker goes idle with nothing to run (the lock held): the first idle one waits
    /// in epoll until `deadline`, the next timer, for all of them (the poller); the
    /// others sleep until [`Scheduler::wake_worker`] wakes them (as Go's netpoll and
    /// stopm). Without an epoll instance the poller polls here, under the lock (with
    /// several workers without waiting, then it sleeps apart).
    pub(super) fn go_idle(&mut self, deadline: Option<Instant>, timeout: Option<Duration>) -> Idle {
        // A gathered worker leaves the polling to the first one too (woken for it if none
        // polls).
        let gathered = self.gathered();
        if gathered && self.poller.is_null() {
            self.wake_worker(false);
        }
        if gathered || !self.poller.is_null() {
            return self.sleep_idle(self.gather.until.filter(|_| gathered));
        }
        self.w().watch.idle(true);
        let (timeout, rung) = self.poll_prepare(timeout);
        let Some(wait) = self.reactor.wait_apart() else {
            if !self.w().shared {
                self.poll_prepared(timeout, rung);
                return Idle::Nothing;
            }
            // The degraded poll (no epoll instance: the fd limit) would wait a tick under
            // the lock, which the other workers' sections need; an unfair lock kept a wake
            // there 200 ms late. So it looks without waiting, and sleeps apart for at most
            // a tick if it found nothing to run.
            self.poll_prepared(Some(Duration::ZERO), rung);
            if !self.w().queue.is_empty() || !self.preempted.is_empty() || self.w().next.is_some() {
                return Idle::Nothing;
            }
            let tick = Instant::now() + DEGRADED_TICK;
            return self.sleep_idle(Some(deadline.map_or(tick, |d| d.min(tick))));
        };
        self.poller = super::current_worker();
        self.poll_until = if timeout == Some(Duration::ZERO) {
            Some(Instant::now())
        } else {
            deadline
        };
        self.poller_kicked = false;
        Idle::Poll {
            wait,
            timeout,
            rung,
        }
    }

    /// Sleeps idle until another worker wakes it, or until `until` (the lock held).
    fn sleep_idle(&mut self, until: Option<Instant>) -> Idle {
        let w = self.w();
        w.watch.idle(true);
        w.sleep.store(ASLEEP, Ordering::SeqCst);
        Idle::Sleep(std::ptr::addr_of!(w.sleep), until)
    }

    /// The worker's idle wait ended (the lock held again); what it waits for next, if
    /// anything. What the poller found wakes its threads, and another idle worker becomes
    /// the poller, unless all it found is the one thread it runs next itself (as Go's
    /// netpoller, whose M runs what it found without waking another to poll): else two
    /// threads that hand work to each other through fds (a pipe ping-pong) would cross OS
    /// threads at every turn, each worker's look finding the other's thread; for the same
    /// reason that one thread may be lent back to the worker it ran on
    /// ([`Scheduler::lend_found`]). A spare joins the workers.
    pub(super) fn idle_done(&mut self, waited: Idle) -> Option<Idle> {
        self.w().watch.idle(false);
        match waited {
            Idle::Poll { wait, rung, .. } => {
                self.poller = std::ptr::null_mut();
                let mut woken = std::mem::take(&mut self.woken);
                let doorbell = self.reactor.apply(wait, &mut woken) || rung;
                self.poll_finish(doorbell, woken);
                if let Some(lent) = self.lend_found() {
                    return Some(lent);
                }
                if !self.w().queue.is_empty() || self.w().next.is_none() {
                    self.wake_worker(false);
                }
            }
            Idle::Lend { worker, tid, .. } => return self.lend_done(worker, tid),
            Idle::Spare(_) => self.rejoin(),
            // Awake again, also when its time ran out (else a wake would be spent on it).
            Idle::Sleep(..) => self.w().sleep.store(AWAKE, Ordering::SeqCst),
            Idle::Nothing => {}
        }
        None
    }

    /// After a look at epoll that found one thread only, which this worker would run
    /// next: when another worker runs a thread inside greenify (most likely the one whose
    /// write or send made it ready, about to wait for the answer, as in a pipe or socket
    /// ping-pong), the found thread waits in that worker's runnext (the worker it last ran
    /// on first), and this one watches it dispatch for a moment ([`Idle::Lend`]). Run
    /// here instead, such a pair could settle into crossing OS threads at every turn, one
    /// thread on each worker: each worker, going idle as its thread waits, becomes the
    /// poller that the other's next write wakes.
    fn lend_found(&mut self) -> Option<Idle> {
        if !self.w().queue.is_empty() || !self.preempted.is_empty() {
            return None;
        }
        let tid = self.w().next.filter(|&tid| tid != MAIN)?;
        let me = super::running_worker();
        // SAFETY: worker records are never freed; another worker's `next` is only touched
        // in sections, under the lock held here (its whole record is not borrowed: its OS
        // thread writes other fields outside sections); the other words read are atomic.
        let busy_inside = |worker: *mut Worker| unsafe {
            worker != me
                && std::ptr::addr_of!((*worker).next).read().is_none()
                && (*worker).sleep.load(Ordering::SeqCst) == AWAKE
                && !(*worker).watch.is_idle()
                && (*worker).mode.load(Ordering::Relaxed) == START_MODE
        };
        let ran_on = self.threads[tid as usize].ran_on;
        let worker = if self.all_workers.contains(&ran_on) && busy_inside(ran_on) {
            ran_on
        } else {
            *self
                .all_workers
                .iter()
                .find(|&&worker| busy_inside(worker))?
        };
        // SAFETY: as above.
        unsafe {
            std::ptr::addr_of_mut!((*worker).next).write(Some(tid));
            (*worker).watch.next_waits(true);
        }
        let w = self.w();
        w.next = None;
        w.watch.next_waits(false);
        w.watch.idle(true);
        Some(Idle::Lend {
            worker,
            tid,
            // SAFETY: as above.
            dispatches: unsafe { (*worker).watch.dispatch_count() },
        })
    }

    /// The lent thread `tid` was watched for a moment: still in `worker`'s runnext, it
    /// comes back to run here; taken, this worker sleeps instead of looking at epoll
    /// again (that worker, going idle, will), unless there is more to run.
    fn lend_done(&mut self, worker: *mut Worker, tid: ThreadId) -> Option<Idle> {
        // SAFETY: in the idle wait's section.
        if unsafe { super::slice::take_runnext(worker, |lent| lent == tid) }.is_some() {
            self.w().next = Some(tid);
            return None;
        }
        let more = !self.w().queue.is_empty() || !self.preempted.is_empty();
        (!more && self.w().next.is_none()).then(|| self.sleep_idle(None))
    }

    /// A thread was queued (`main`: MAIN, while only the first worker runs it: one worker
    /// and a spare, see `run::run_loop`): wakes an
    /// idle worker to run it, a sleeping one first, else the poller (Go's wakep); not one
    /// that sleeps while the threads gather on the first worker (see [`Gather`]). Out of
    /// line: a single worker never calls it, and the enqueue that does stays small.
    #[inline(never)]
    pub(super) fn wake_worker(&mut self, main: bool) {
        let candidates = if main { 1 } else { self.all_workers.len() };
        for &worker in &self.all_workers[..candidates] {
            // One the threads gathered away from sleeps until the gathering ends (see
            // `Gather`).
            if !self.gathers_away(worker) && wake_sleeping(worker) {
                return;
            }
        }
        if !self.poller.is_null() && (!main || self.poller == self.all_workers[0]) {
            self.kick_poller();
        }
    }

    /// Wakes every idle worker whose index is `first` or more (the poller looks again),
    /// so that each looks at its state.
    pub(super) fn wake_idle_from(&mut self, first: usize) {
        let mut poller_too = false;
        for &worker in &self.all_workers {
            // SAFETY: worker records are never freed; `index` never changes.
            if unsafe { (*worker).index } < first {
                continue;
            }
            poller_too |= worker == self.poller;
            wake_sleeping(worker);
        }
        if poller_too {
            self.kick_poller();
        }
    }

    /// Wakes `worker` if it waits idle (it looks at its state again); nothing if it runs.
    /// Says whether it waited idle.
    pub(super) fn wake_idle(&mut self, worker: *mut Worker) -> bool {
        if worker == self.poller {
            self.kick_poller();
            true
        } else {
            wake_sleeping(worker)
        }
    }

    /// A thread armed a timer for `deadline`: the poller, if it waits past it, looks
    /// again.
    pub(super) fn timer_armed(&mut self, deadline: Instant) {
        self.w().watch.timer_armed(deadline);
        if !self.poller.is_null() && self.poll_until.is_none_or(|until| deadline < until) {
            self.kick_poller();
        }
    }

    fn kick_poller(&mut self) {
        if !self.poller_kicked {
            self.poller_kicked = true;
            self.mailbox.ring();
        }
    }

    /// Back on the worker's own TCB from that of the thread it ran last, before a section
    /// of its run loop ends without dispatching another: that thread may run on another
    /// worker next, which names itself in the thread's TCB (see `run::next_step`).
    pub(super) fn switch_home(&mut self) {
        let own = self.w().own_tcb;
        if let Tls::PerThread(pool) = &self.tls {
            pool.switch_to(if own == 0 { pool.main() } else { own });
        }
    }
}

/// Wakes `worker` if it sleeps idle; says whether it did.
fn wake_sleeping(worker: *mut Worker) -> bool {
    // SAFETY: worker records are never freed; the word is atomic.
    let sleep = unsafe { &(*worker).sleep };
    if sleep.load(Ordering::SeqCst) != ASLEEP {
        return false;
    }
    sleep.store(AWAKE, Ordering::SeqCst);
    raw::futex_wake_one(sleep);
    true
}

/// Threads that hand a lock to each other across workers, running briefly between
/// hand-offs (a GIL-bound program: CPython's threads take turns at one lock, dropping it
/// around each blocking call), lose more to a second OS thread than it gives them: the
/// threads of both run at once, each finds the lock held by the other's and waits, and
/// the turns of the lock cross OS threads (CPython's ThreadingTCPServer echo with 2
/// workers: 1.5 lock waits and 1.2 dispatches on another OS thread per request, against
/// 0.01 and none with one worker). One worker that runs them all never finds the lock
/// held: its threads switch only where they wait, the lock dropped. So the scheduler
/// watches windows of [`GATHER_WINDOW`] dispatches: when an eighth of them or more ran a
/// thread that a thread of another worker woke from a lock wait, and the window took less
/// than [`HANDOFF_RUN`] a dispatch, the threads gather on the first worker for a while:
/// the others take no thread from the queues (their own goes to the first worker as
/// the gathering begins; they run what waits in their own runnext, and what they wake
/// goes to another worker's queue), poll nothing, and sleep until
/// the while ends. Then the next window decides again: a gathering that follows one lasts
/// twice as long (up to [`GATHER_MAX`]), a window in which the other workers ran an
/// eighth of the threads without such hand-offs (and the look at the CPU below found
/// them spread usefully) halves it. As the kernel keeps a waker
/// and its wakee on one CPU while their runs are short. Spares (standing in for a stuck
/// worker, see handoff.rs) never gather.
///
/// Threads that run briefly gather too when the other workers get no CPU of their own:
/// when over at least [`CPU_LOOK`] the process used less than [`SPREAD_CPUS`] CPUs, under
/// [`HANDOFF_RUN`] of CPU a dispatch. Their runs then only interleave on one CPU's worth
/// of time (the other CPUs busy elsewhere: a load generator on a 2-CPU machine), and
/// each dispatch pays for the spread (a thread's stack, TCB and sockets cold on the CPU
/// it resumes on, the lock's and the run queue's lines moving between CPUs, workers
/// waking each other): a thread-per-connection echo with 2 workers made 20 to 25% fewer
/// round trips than with one, on the same CPU time. Its next window looks again, as for
/// hand-offs: with a CPU free for the other workers the process uses more than
/// [`SPREAD_CPUS`] and the threads stay spread. Nor do they gather again while, spread,
/// they dispatch at least [`SPREAD_KEEPS`] as fast as they did in such gatherings, for at
/// most [`SPREAD_COSTS`] of the CPU a dispatch ([`Rate`]s over the last few hundred
/// milliseconds), unless the workers may only run on
/// one CPU between them (their affinity, as for the echo above): a process that gets
/// under [`SPREAD_CPUS`] only because other processes take the rest of the CPUs gets more
/// with each worker it runs. 64 condvar pairs with about 3 us of work after every turn,
/// beside two spinning processes, gathered so in every run (92 to 95% of their sampled
/// turns on the first worker; spread, 50 to 60%).
///
/// Threads that run briefly gather too when the workers spend a quarter of a CPU or more
/// spinning for the scheduler's lock ([`SPIN_SHARE`], over a window that took under
/// [`HANDOFF_RUN`] a dispatch): independent pairs that hand over through a condvar each
/// stay on one worker, but with pairs on both workers every wake, park and dispatch (a
/// section each) found the lock held by the other worker. 64 such pairs took 0.6 to
/// 1.3 us a round trip on 2 workers, a third to a half of their CPU spent waiting for
/// the lock, against 0.27 gathered; the CPU look above misses them, as the spinning
/// uses both CPUs.
pub(super) struct Gather {
    /// Dispatches and cross-worker lock hand-offs in the window, when it began, and the
    /// scheduler lock's spin total then ([`BigLock::spun`]).
    dispatches: u32,
    handoffs: u32,
    since: Instant,
    spun_since: u64,
    /// Since when and from what process CPU time (ns) the CPU the process uses is
    /// compared (over at least [`CPU_LOOK`], outside gatherings), and the dispatches since.
    cpu_since: Option<(Instant, u64)>,
    cpu_dispatches: u32,
    /// Dispatches in the window by the workers but the first.
    elsewhere: u32,
    /// Until when the workers but the first take no shared thread (None: they do), and
    /// since when.
    until: Option<Instant>,
    began: Instant,
    /// For a gathering the CPU look began: when its rate starts to count (see
    /// [`GATHER_SETTLE`]), then, from that moment on, the moment and the process CPU time
    /// (ns) then; the dispatches of such gatherings, and of the threads spread while
    /// the process used under [`SPREAD_CPUS`] quarters of a CPU (see
    /// [`Gather::spread_pays`]).
    settles_at: Option<Instant>,
    crowded_since: Option<(Instant, u64)>,
    gathered_rate: Rate,
    spread_rate: Rate,
    /// How long the next gathering lasts.
    period: Duration,
}

/// Dispatches in a window of [`Gather`].
const GATHER_WINDOW: u32 = 512;
/// Below this wall time a dispatch (over all workers), a window's threads run briefly
/// between hand-offs: a hand-off across OS threads (a wake, a dispatch, cold caches)
/// costs about what a second CPU gives them.
const HANDOFF_RUN: Duration = Duration::from_micros(50);
/// Threads gather on the first worker when the workers spent a `1 / SPIN_SHARE`th of the
/// window's wall time or more spinning for the scheduler's lock (a quarter of a CPU).
const SPIN_SHARE: u128 = 4;
/// How long threads gather on the first worker before the others look again: at least,
/// and at most.
const GATHER_MIN: Duration = Duration::from_millis(20);
const GATHER_MAX: Duration = Duration::from_millis(640);
/// The least wall time over which [`Gather`] compares the CPU the process used: the
/// kernel adds a running thread's time to the process's clock at its ticks and switches.
const CPU_LOOK: Duration = Duration::from_millis(10);
/// Below this many quarters of a CPU used by the process, threads that run briefly gather
/// on the first worker (see [`Gather`]): the other workers add no CPU of their own, and
/// one worker does on one CPU what the spread threads did on about 1.25.
const SPREAD_CPUS: u64 = 5;
/// Spread threads that keep at least this share of the dispatch rate they had gathered
/// (a ratio) stay spread, however little CPU the process gets (see [`Gather`]); 7/8 and
/// 9/8 below let a busy machine's noise gather condvar pairs with work between turns
/// for most of a run, 3 runs in 20.
const SPREAD_KEEPS: (u128, u128) = (3, 4);
/// ... if their dispatches cost at most this many times the CPU they cost gathered: the
/// switch-heavy ones, whose workers wait for each other at the scheduler's lock, spread
/// for a larger share of an oversubscribed machine's CPUs, not for their own progress.
const SPREAD_COSTS: (u128, u128) = (5, 4);
/// ... if, gathered, their dispatches took this much CPU or more: shorter ones (64 condvar
/// pairs without work, 0.15 us a dispatch) stayed spread on a machine loaded by a dozen
/// other threads, where their workers rarely ran at once, took twice the CPU share and
/// waited at the lock for each other whenever they did.
const SPREAD_RUN: Duration = Duration::from_micros(1);

/// Dispatches, and the wall and process CPU time (ns) they took, the older half forgotten
/// past [`RATE_SPAN`]: rates that follow a load that changes, but not a single look's
/// noise (a few milliseconds without a CPU for the second worker, on a busy machine).
#[derive(Clone, Copy, Default)]
struct Rate {
    dispatches: u64,
    wall: u64,
    cpu: u64,
}

/// A gathering's rate counts from this fraction of its length on: its first milliseconds
/// move the threads (their stacks and TCBs cold on the first worker's CPU), and a plain
/// echo's 20 ms gatherings measured 7.6 to 12 µs of CPU a dispatch where one worker makes
/// 6.4 in a steady run.
const GATHER_SETTLE: u32 = 4;
/// The wall time a [`Rate`] keeps before it halves.
const RATE_SPAN: Duration = Duration::from_millis(320);

impl Rate {
    fn add(&mut self, more: Rate) {
        if u128::from(self.wall.saturating_add(more.wall)) > RATE_SPAN.as_nanos() {
            (self.dispatches, self.wall, self.cpu) =
                (self.dispatches / 2, self.wall / 2, self.cpu / 2);
        }
        self.dispatches = self.dispatches.saturating_add(more.dispatches);
        self.wall = self.wall.saturating_add(more.wall);
        self.cpu = self.cpu.saturating_add(more.cpu);
    }
}

impl Gather {
    /// At the end of a window: whether, over the [`CPU_LOOK`] or more since the last such
    /// look, the process used under [`SPREAD_CPUS`] quarters of a CPU, each dispatch under
    /// [`HANDOFF_RUN`] of it (a window's dispatches are counted in already); None until
    /// that much time has passed. A CPU clock that cannot be read says no.
    fn cpu_bound_to_one(&mut self, now: Instant, one_cpu: impl FnOnce() -> bool) -> Option<bool> {
        self.cpu_dispatches += self.dispatches;
        let Some((since, cpu_since)) = self.cpu_since else {
            self.cpu_since = Some((now, process_cpu()));
            self.cpu_dispatches = 0;
            return None;
        };
        let wall = now.saturating_duration_since(since);
        if wall < CPU_LOOK {
            return None;
        }
        if cpu_since == 0 {
            return Some(false);
        }
        let cpu = process_cpu();
        let used = cpu.saturating_sub(cpu_since);
        let dispatches = u64::from(std::mem::take(&mut self.cpu_dispatches));
        self.cpu_since = Some((now, cpu));
        let wall = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
        let crowded = used * 4 < wall.saturating_mul(SPREAD_CPUS)
            && u128::from(used) < HANDOFF_RUN.as_nanos() * u128::from(dispatches);
        let spread = Rate {
            dispatches,
            wall,
            cpu: used,
        };
        Some(crowded && (one_cpu() || !self.spread_pays(spread)))
    }

    /// Whether the spread threads, `now` (over the last look), kept at least
    /// [`SPREAD_KEEPS`] of the dispatch rate they had in the gatherings the CPU look began,
    /// at most [`SPREAD_COSTS`] of the CPU a dispatch, where gathered a dispatch took
    /// [`SPREAD_RUN`] or more (no gathering with a dispatch yet: no): then the other
    /// workers add CPU time of their own, and the spread costs the threads little.
    fn spread_pays(&mut self, now: Rate) -> bool {
        // Not before a gathering to compare with: the first look holds the start-up.
        if self.gathered_rate.wall > 0 {
            self.spread_rate.add(now);
        }
        let (spread, gathered) = (self.spread_rate, self.gathered_rate);
        let [dispatches, wall, cpu] = [spread.dispatches, spread.wall, spread.cpu].map(u128::from);
        let [g_dispatches, g_wall, g_cpu] =
            [gathered.dispatches, gathered.wall, gathered.cpu].map(u128::from);
        // A gathering that dispatched nothing (a server's start-up, accepting its
        // connections) says nothing of the threads' rate: every comparison with it held,
        // and a server so compared its spread threads with it for good.
        g_wall > 0
            && g_dispatches > 0
            && g_cpu >= g_dispatches * SPREAD_RUN.as_nanos()
            && dispatches * g_wall * SPREAD_KEEPS.1 >= g_dispatches * wall * SPREAD_KEEPS.0
            && cpu * g_dispatches * SPREAD_COSTS.1 <= g_cpu * dispatches * SPREAD_COSTS.0
    }

    /// How long the gathering under way has lasted by `now` (zero: none is).
    pub(super) fn so_far(&self, now: Instant) -> Duration {
        match self.until {
            Some(_) => now.saturating_duration_since(self.began),
            None => Duration::ZERO,
        }
    }

    /// A gathering ends: one the CPU look began adds its dispatch rate and CPU to compare
    /// with (see [`Gather::spread_pays`]).
    fn end(&mut self, now: Instant) {
        if let Some((began, cpu_began)) = self.crowded_since.take() {
            let wall = now.saturating_duration_since(began).as_nanos();
            self.gathered_rate.add(Rate {
                dispatches: u64::from(self.dispatches),
                wall: u64::try_from(wall).unwrap_or(u64::MAX),
                cpu: process_cpu().saturating_sub(cpu_began),
            });
        }
        (self.until, self.cpu_since, self.settles_at) = (None, None, None);
        self.new_window();
    }

    /// The next window begins: its counts start again (see [`Scheduler::count_dispatch`]).
    fn new_window(&mut self) {
        (self.dispatches, self.handoffs, self.elsewhere) = (0, 0, 0);
    }

    pub(super) fn new() -> Gather {
        Gather {
            dispatches: 0,
            handoffs: 0,
            elsewhere: 0,
            since: Instant::now(),
            spun_since: 0,
            cpu_since: None,
            cpu_dispatches: 0,
            until: None,
            began: Instant::now(),
            crowded_since: None,
            settles_at: None,
            gathered_rate: Rate::default(),
            spread_rate: Rate::default(),
            period: GATHER_MIN,
        }
    }
}

impl Scheduler {
    /// Whether the calling worker takes no thread from the shared queues now (see
    /// [`Gather`]); ends a gathering whose time is up.
    pub(super) fn gathered(&mut self) -> bool {
        let index = self.w().index;
        let Some(until) = self.gather.until else {
            return false;
        };
        if index == 0 || index >= FIRST_SPARE {
            return false;
        }
        if Instant::now() < until {
            return true;
        }
        // The next window begins at the next dispatch.
        let now = Instant::now();
        self.stats.note_gathered(self.gather.so_far(now));
        self.gather.end(now);
        false
    }

    /// Whether the threads are gathered away from `worker` now (see [`Gather`]): a worker
    /// but the first, not a spare, during a gathering.
    pub(super) fn gathers_away(&self, worker: *mut Worker) -> bool {
        // SAFETY: worker records are never freed; `index` never changes.
        let index = unsafe { (*worker).index };
        self.gather.until.is_some() && index != 0 && index < FIRST_SPARE
    }

    /// A thread that a thread of another worker woke from a lock wait (see [`Gather`]).
    #[inline(always)]
    pub(super) fn lock_handed_across(&mut self) {
        self.gather.handoffs += 1;
    }

    /// A worker dispatches a thread (several workers): closes a window of [`Gather`]
    /// every [`GATHER_WINDOW`] dispatches outside a gathering.
    pub(super) fn count_dispatch(&mut self) {
        let w = self.w();
        let (first, lock) = (w.index == 0, w.lock);
        let gather = &mut self.gather;
        if gather.until.is_some() {
            // Counted for the gathering's rate (see `Gather::end`), once it settled.
            gather.dispatches = gather.dispatches.saturating_add(1);
            // The clock is read only while a rate waits to settle, every 32 dispatches.
            if let Some(at) = gather
                .settles_at
                .filter(|_| gather.dispatches.is_multiple_of(32))
            {
                let now = Instant::now();
                if now >= at {
                    gather.crowded_since = Some((now, process_cpu()));
                    (gather.settles_at, gather.dispatches) = (None, 0);
                }
            }
            return;
        }
        if gather.dispatches == 0 {
            gather.since = Instant::now();
            gather.spun_since = lock.spun();
        }
        gather.dispatches += 1;
        gather.elsewhere += u32::from(!first);
        if gather.dispatches < GATHER_WINDOW {
            return;
        }
        let now = Instant::now();
        let window = now.saturating_duration_since(gather.since);
        let brief = window < HANDOFF_RUN * GATHER_WINDOW;
        let spun = lock.spun().saturating_sub(gather.spun_since);
        let spinning = brief && u128::from(spun) * SPIN_SHARE >= window.as_nanos();
        let handed = spinning || (brief && gather.handoffs * 8 >= GATHER_WINDOW);
        let crowded = if handed {
            None
        } else {
            let workers = &self.all_workers;
            gather.cpu_bound_to_one(now, || share_one_cpu(workers))
        };
        if handed || crowded == Some(true) {
            (gather.until, gather.began) = (Some(now + gather.period), now);
            gather.settles_at = (!handed).then(|| now + gather.period / GATHER_SETTLE);
            gather.crowded_since = None;
            gather.period = (gather.period * 2).min(GATHER_MAX);
            gather.new_window();
            self.stats.gatherings += 1;
            // The threads queued on the workers they gather away from go to the first. One
            // of those asleep idle is woken to sleep again until the gathering's end: only
            // such a worker ends it (`gathered`), and no wake reaches it meanwhile
            // (`wake_worker`), so one that slept without a deadline kept the threads gathered
            // for good, with the first worker blocked in a call no hook sees (MariaDB's main
            // thread, ready to accept connections, waited 18 minutes on a spare, which may
            // not run it).
            for i in 1..self.all_workers.len() {
                let worker = self.all_workers[i];
                if self.gathers_away(worker) {
                    self.give_queue(worker, self.all_workers[0]);
                    wake_sleeping(worker);
                }
            }
            return;
        } else if crowded == Some(false) && gather.elsewhere * 8 >= GATHER_WINDOW {
            // Only once the CPU look too found the spread worth it.
            gather.period = (gather.period / 2).max(GATHER_MIN);
        }
        gather.new_window();
    }
}

/// Whether the OS threads of `workers` may only run on one CPU between them (their
/// affinity masks allow one together; a mask that cannot be read says no).
fn share_one_cpu(workers: &[*mut Worker]) -> bool {
    use rustix::thread::{sched_getaffinity, CpuSet};
    let mut union = CpuSet::new();
    for &worker in workers {
        // SAFETY: worker records are never freed; `os_tid` is written before the worker
        // runs.
        let Ok(mask) = sched_getaffinity(Some(unsafe { (*worker).os_tid })) else {
            return false;
        };
        (0..CpuSet::MAX_CPU)
            .filter(|&cpu| mask.is_set(cpu))
            .for_each(|cpu| union.set(cpu));
    }
    union.count() < 2
}

/// The CPU time all the process's OS threads used so far, in nanoseconds (0 if the clock
/// cannot be read).
fn process_cpu() -> u64 {
    monitor::cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// How an idle worker waits, outside the lock (see [`Scheduler::go_idle`]).
pub(super) enum Idle {
    /// In epoll, for every idle worker.
    Poll {
        wait: EpollWait,
        timeout: Option<Duration>,
        rung: bool,
    },
    /// On its sleep word until another worker wakes it, or until a gathering ends (see
    /// [`Gather`]).
    Sleep(*const AtomicU32, Option<Instant>),
    /// Out of the workers, on its sleep word until the monitor hands it a stuck worker's
    /// role (see handoff.rs).
    Spare(*const AtomicU32),
    /// Watching `worker` for a dispatch (`dispatches`: its count when `tid` was lent to
    /// its runnext), for at most [`LEND_WATCH`] (see [`Scheduler::lend_found`]).
    Lend {
        worker: *mut Worker,
        tid: ThreadId,
        dispatches: u32,
    },
    /// It polled already.
    Nothing,
}

/// How long a poller watches the worker it lent a thread to (see
/// [`Scheduler::lend_found`]): about what a thread takes from its write to its park in the
/// read of the answer, a few microseconds, with room for a busy machine.
const LEND_WATCH: Duration = Duration::from_micros(20);

impl Idle {
    /// Waits (inside the worker's section, the lock not held).
    pub(super) fn wait(mut self) -> Idle {
        match &mut self {
            Idle::Poll { wait, timeout, .. } => wait.wait(*timeout),
            // SAFETY: the worker's own record, never freed.
            Idle::Sleep(word, until) => unsafe {
                loop {
                    let now = (**word).load(Ordering::SeqCst);
                    let left = until.map(|until| until.saturating_duration_since(Instant::now()));
                    if now == AWAKE || left == Some(Duration::ZERO) {
                        break;
                    }
                    raw::futex_wait(&**word, now, left);
                }
            },
            // SAFETY: as above.
            Idle::Spare(word) => unsafe {
                loop {
                    let now = (**word).load(Ordering::SeqCst);
                    if now == AWAKE {
                        break;
                    }
                    raw::futex_wait(&**word, now, None);
                }
            },
            Idle::Lend {
                worker, dispatches, ..
            } => {
                let since = Instant::now();
                // SAFETY: worker records are never freed; `watch` never changes.
                let watch = unsafe { (**worker).watch };
                while watch.dispatch_count() == *dispatches && since.elapsed() < LEND_WATCH {
                    // Not a spin: the kernel often wakes a poller on its waker's CPU (a
                    // pipe's wake is a "sync" one), where spinning would keep the waker
                    // from reaching its park.
                    // SAFETY: sched_yield takes no arguments.
                    unsafe { raw::syscall(libc::SYS_sched_yield, &[]) };
                }
            }
            Idle::Nothing => {}
        }
        self
    }
}

/// Starts `count` more workers, after the section of the spawn that asked for them (on
/// the first worker, inside greenify): raw OS threads that never run a hook of their
/// own, each with its record named by its scheduler word before anything else runs.
pub(super) fn start_workers(count: usize) {
    // The main thread may run on any worker from now on (README, "The main thread on any
    // worker").
    super::run::start_loop_context();
    // Its /proc file for the monitor is opened while only its own code runs (monitor.rs).
    let me = super::current_worker();
    // SAFETY: the calling worker's record, never freed; `watch` is set before it runs.
    monitor::register_first(unsafe { (*me).watch }, me as usize);
    let mut started_threads = Vec::with_capacity(count);
    for _ in 0..count {
        let (record, started) = with(|s| {
            let first = s.all_workers[0];
            // SAFETY: worker records are never freed.
            let (lock, mask) = unsafe { ((*first).lock, (*first).applied_mask) };
            let mut worker = Worker::new(s, lock, mask);
            worker.index = s.all_workers.len();
            worker.runs_main = s.main_moves;
            worker.shared = true;
            worker.watch = Box::leak(Box::new(monitor::Worker::new()));
            let record = Box::into_raw(Box::new(worker));
            s.all_workers.push(record);
            (record as usize, s.worker_started)
        });
        match start_thread(record as *mut Worker, Some(started)) {
            Some(Some(tid)) => started_threads.push((record, tid)),
            Some(None) => {}
            None => with(|s| s.all_workers.retain(|&w| w as usize != record)),
        }
    }
    // The new workers' /proc files, opened under the lock: no worker dispatches a thread
    // meanwhile (monitor.rs `open_syscall_file`).
    with(|_| {
        for &(record, tid) in &started_threads {
            // SAFETY: worker records are never freed; `watch` is set before it starts.
            monitor::open_syscall_file(unsafe { (*(record as *mut Worker)).watch }, tid);
        }
    });
}

/// Starts the OS thread of worker `record`: `started` is what it runs first, or None for a
/// spare, which joins the workers in its first section (see handoff.rs). Says whether
/// the thread started, with its id when glibc's descriptor of it says it.
pub(super) fn start_thread(record: *mut Worker, started: Option<fn()>) -> Option<Option<i32>> {
    use std::os::unix::thread::JoinHandleExt;
    crate::runtime::reactor::placements_may_race();
    let record = record as usize;
    let spawned = own_threads::spawn(
        std::thread::Builder::new().name("greenify-work".into()),
        move || worker_main(record as *mut Worker, started),
    );
    match spawned {
        // Its thread id, which the kernel wrote into glibc's descriptor of it as it
        // created it; the handle drops (workers are never joined).
        Ok(handle) => Some(crate::runtime::tcb::tid_of(handle.as_pthread_t() as usize)),
        Err(e) => {
            ::log::warn!("cannot start a worker thread ({e}): fewer workers run");
            None
        }
    }
}

/// In a forked child, for a worker of the parent's (its OS thread is gone) other than the
/// one that forked: its OS thread's descriptor, which glibc's fork left free in its stack
/// cache, no longer names the record (see `os_thread::forget_words_of`). The forking
/// worker's stays as it is: its run loop may run on it (fork.rs keeps glibc from reusing
/// it), and the forking thread may run on another worker's (MAIN's TCB is the first
/// worker's OS thread's descriptor).
pub(super) fn forget_os_thread(record: *mut Worker) {
    if record == super::current_worker() {
        return;
    }
    // SAFETY: worker records are never freed; only the forking thread runs in the child.
    let pd = unsafe { (*record).os_pd };
    if pd != 0 && pd != os_thread::thread_pointer() {
        // SAFETY: the descriptor of a parent's OS thread that the child does not have.
        unsafe { os_thread::forget_words_of(pd) };
    }
}

/// A worker's OS thread: names its record, then runs threads for good.
fn worker_main(record: *mut Worker, started: Option<fn()>) {
    // Before the record is named: a setxid handler that finds it reads this (setxid.rs).
    // SAFETY: the record is this thread's own, never freed; no section is open.
    unsafe { (*record).os_pd = os_thread::thread_pointer() };
    os_thread::set_sched_word(record as usize);
    os_thread::set_thread_word(MAIN as usize + 1);
    // SAFETY: the record is this thread's own, never freed; no section is open.
    unsafe {
        (*record).os_tid = rustix::thread::gettid();
        (*record).own_tcb = os_thread::thread_pointer();
        (*record).applied_mask = os_sigmask(None);
        monitor::register((*record).watch, record as usize);
        overflow::arm_worker();
    }
    let started = started.unwrap_or_else(|| with(|s| s.join_as_spare()));
    started();
    // Returns only in a child forked by a green thread running here, when its last
    // thread ended.
    run_loop(false);
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::BigLock;
    use std::cell::UnsafeCell;

    struct Counted {
        lock: BigLock,
        count: UnsafeCell<u64>,
    }
    // SAFETY: `count` is only touched under `lock`.
    unsafe impl Sync for Counted {}

    #[test]
    fn big_lock_excludes_under_contention() {
        let shared = Counted {
            lock: BigLock::new(),
            count: UnsafeCell::new(0),
        };
        let shared = &shared;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(move || {
                    for i in 0..100_000u64 {
                        shared.lock.lock();
                        // SAFETY: under the lock; a non-atomic read-modify-write that a
                        // second holder would make lose counts.
                        unsafe {
                            let v = std::ptr::read_volatile(shared.count.get());
                            if i % 1000 == 0 {
                                std::thread::yield_now();
                            }
                            std::ptr::write_volatile(shared.count.get(), v + 1);
                        }
                        shared.lock.unlock();
                    }
                });
            }
        });
        // SAFETY: every thread has ended.
        assert_eq!(unsafe { *shared.count.get() }, 400_000);
    }

    #[test]
    fn big_lock_counts_the_spin_not_the_sleep() {
        let lock = BigLock::new();
        lock.lock();
        assert_eq!(lock.spun(), 0, "an uncontended lock spins none");
        let held = std::time::Duration::from_millis(50);
        let started = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                started.store(true, std::sync::atomic::Ordering::SeqCst);
                lock.lock();
                lock.unlock();
            });
            while !started.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::yield_now();
            }
            std::thread::sleep(held);
            lock.unlock();
            waiter.join().unwrap();
        });
        // The waiter spun, then slept in the futex for most of the 50 ms.
        let spun = lock.spun();
        assert!(
            spun > 0 && u128::from(spun) < held.as_nanos() / 2,
            "{spun} ns spun"
        );
    }
}
