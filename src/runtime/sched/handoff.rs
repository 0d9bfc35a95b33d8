//! Hand-off: a worker stuck in a call no hook saw gives its role to a spare OS thread, as
//! Go's sysmon retakes the P of an M stuck in a system call (`retake`, `handoffp`).
//!
//! A worker's OS thread that blocks in the kernel past the hooks (libgomp's own `futex`
//! instruction, glibc's internal reads, writes and lock waits, a page-fault storm) holds
//! up every runnable green thread, the reactor and the timers: with one worker, all of
//! them. The monitor (monitor.rs) sees such a worker (its dispatch count and CPU clock
//! stood still and the kernel shows it waiting, in a call of the program's or one
//! greenify makes for it) and calls [`hand_off`]. The rule, Go's: N workers (`GREENIFY_WORKERS`) that are not stuck keep
//! running. So each stuck worker gets a spare: a parked one if there is one, else a new
//! OS thread, at most [`MAX_SPARES`] in the process's life. A spare is a worker like the
//! others (its own record, TCB, SUD selector byte and monitor record, started by the same
//! path, see worker.rs): it takes the stuck worker's run queue (see queues.rs), and polls
//! the reactor and timers when idle. The stuck worker keeps its green thread, which
//! continues there when the call returns.
//!
//! When the monitor sees the stuck worker switch or go idle again, it says so
//! ([`hand_off`] with `stuck` false); then more than N + the stuck ones run, and the first
//! spare to reach a dispatch point leaves the workers ([`Scheduler::surplus`]): it parks
//! on its sleep word (`RETIRED`, every signal blocked, named `greenify-spare`) until the
//! monitor hands it another stuck worker's role. Only spares retire; the N workers stay.
//!
//! Green threads that move between OS threads need TCBs of their own, so there is no
//! hand-off while they share one (`GREENIFY_TLS=off`, or `auto` in a program whose
//! modules have no TLS of their own, with one worker).
//!
//! The lock. With one worker, sections skip the scheduler's lock (worker.rs): the first
//! hand-off turns it on for good. The monitor sets the first worker's `shared` flag (a
//! full barrier), then asks the kernel again whether the worker waits there, then reads
//! its `in_section`. A thread the kernel shows waiting has passed a full barrier on the
//! way (`set_current_state`), so its `in_section` is seen as it is, and every section it
//! opens after it wakes reads `shared` set (it takes the lock). A section open while it
//! waits (an idle wait is never handed off, but a lock or a dump may wait in one) is
//! waited for: the monitor tries again at its next look, and a spare runs a section only
//! after a look that found the worker waiting outside one. No signal and no `membarrier`
//! (whose registration takes a grace period, 13 to 19 ms here).
//!
//! With one worker, MAIN runs only on the first (whose loop runs on MAIN's stack, see
//! `run::run_loop`): while it is stuck in another thread's call, MAIN waits for that call
//! to return. With several, MAIN runs on any.

use super::signals::{os_sigmask, ALL_BLOCKED};
use super::worker::{start_thread, Idle, Worker, RETIRED};
use super::{current_worker, Scheduler};
use crate::runtime::{monitor, raw, watchdog};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};

/// Spare OS threads made at most (in the process's life; parked ones are reused). A
/// stuck worker beyond them keeps its threads waiting, as without hand-off. An OpenMP
/// team has one thread per CPU by default, and at a barrier all but one wait in their own
/// futex call: 128 covers that on a machine of up to 129 CPUs with one worker (the
/// monitor watches 256 workers at most). A parked spare is one sleeping OS thread.
pub const MAX_SPARES: usize = 128;

/// A spare's place among the workers: above every worker's (only spares retire).
pub(super) const FIRST_SPARE: usize = 1 << 16;

/// Spares made so far, in order (only the monitor makes them); a slot is filled before
/// the count covers it.
static SPARES: [AtomicPtr<Worker>; MAX_SPARES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_SPARES];
static SPARE_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Workers handed off whose call has not returned yet.
static STUCK: AtomicUsize = AtomicUsize::new(0);
/// Green threads have TCBs of their own (decided at the first spawn).
static POSSIBLE: AtomicBool = AtomicBool::new(false);
/// The first worker, while the monitor waits for a section it may have opened without
/// the lock to close (see the module doc), or null.
static TURNING_ON: AtomicPtr<Worker> = AtomicPtr::new(std::ptr::null_mut());
/// The warning that the spares ran out was given.
static WARNED: AtomicBool = AtomicBool::new(false);

/// At the first spawn: whether green threads have TCBs of their own (a thread handed to
/// a spare resumes on another OS thread).
pub(super) fn set_possible(possible: bool) {
    POSSIBLE.store(possible, SeqCst);
}

/// For the monitor (on its own thread): the worker registered with `tag` (its record) is
/// `stuck` in a call no hook saw, and its role goes to a spare; or (`stuck` false) the
/// worker it handed off earlier came back. Says whether the role was handed off (false:
/// not now; the monitor asks again at its next look).
pub fn hand_off(tag: usize, stuck: bool) -> bool {
    let worker = tag as *mut Worker;
    if !stuck {
        STUCK.fetch_sub(1, SeqCst);
        // SAFETY: worker records are never freed; the flag is atomic.
        unsafe { (*worker).stuck.store(false, SeqCst) };
        // A spare leaves at a dispatch point; one idle then would wait for ever (a thread
        // that runs next keeps the first worker busy and wakes nobody): it looks now.
        // SAFETY: as in `take_next`.
        unsafe {
            let lock = (*worker).lock;
            lock.lock();
            (*(*worker).sched).wake_idle_from(FIRST_SPARE);
            lock.unlock();
        }
        return false;
    }
    // In a section it waits for the scheduler's lock (its holder lost its CPU on a busy
    // machine) or in greenify's own wait, not in a call of the program's: a spare would
    // only contend for the same lock (prodcons with 2 workers made 3 spares).
    if in_section(tag) || !POSSIBLE.load(SeqCst) || !lock_on(worker) {
        return false;
    }
    // Counted and marked first: the spare must not find itself surplus as it joins, and
    // takes the stuck worker's queue then (`Scheduler::rejoin`).
    STUCK.fetch_add(1, SeqCst);
    // SAFETY: worker records are never freed; the flag is atomic.
    let mark = |stuck| unsafe { (*worker).stuck.store(stuck, SeqCst) };
    mark(true);
    if wake_spare() || new_spare(worker) {
        return true;
    }
    mark(false);
    STUCK.fetch_sub(1, SeqCst);
    false
}

/// For the monitor (on its own thread): whether the worker registered with `tag` (its
/// record) is inside a section, or stands still for a dump that another worker answers
/// in its section (look.rs). Asked after the kernel showed it waiting (see the module
/// doc), the wait is then greenify's own (the scheduler's lock, mostly), not a call of
/// the program's: not handed off, nor reported by the watchdog. (A worker held by a
/// dump under two busy loops was handed off, and stayed marked stuck while its spinner
/// never switched: later dumps said it waited in a system call.)
pub fn in_section(tag: usize) -> bool {
    let worker = tag as *mut Worker;
    // SAFETY: worker records are never freed; `in_section` is a plain bool its own OS
    // thread writes, read volatile.
    let in_section = unsafe { std::ptr::addr_of!((*worker).in_section).read_volatile() };
    in_section || super::look::held(worker)
}

/// For the monitor (on its own thread): the worker registered with `tag` (its record) runs
/// the thread it ran at the monitor's last look, and a thread that one woke waits in its
/// runnext (see `Scheduler::enqueue_shared`). An idle worker is woken (a sleeping one, or
/// the poller), and takes it (`Scheduler::pop_ready`); with none idle, this changes
/// nothing but one spurious look at epoll. The thread that runs there, the waker, is
/// marked to run on after its wakes (`Thread::runs_on`) if the worker `computed` since
/// the last look. None is when the worker is in its run loop (its OS thread lost its CPU
/// between two dispatches on a busy machine): marked then, MAIN, which the loop's
/// `current` names, ran on for good in its eyes, and every later look at epoll queued
/// what it found away from its waker (a pipe pair split over the two workers for hundreds
/// of turns). The scheduler's lock is taken for that: it is on, as several workers exist
/// or did (a hand-off leaves it on).
pub fn take_next(tag: usize, computed: bool) {
    let worker = tag as *mut Worker;
    // SAFETY: worker records are never freed, nor is the scheduler, and `lock` and
    // `sched` never change; under the lock the scheduler is this thread's alone, and so
    // are the worker's `next`, `current` and `in_loop` (only written in its sections);
    // `wake_worker` reads no worker record of the calling OS thread (the monitor has none).
    unsafe {
        let lock = (*worker).lock;
        lock.lock();
        let sched = &mut *(*worker).sched;
        let waker = std::ptr::addr_of!((*worker).current).read();
        let in_loop = std::ptr::addr_of!((*worker).in_loop).read();
        if std::ptr::addr_of!((*worker).next).read().is_some() {
            sched.stats.runnext_late += 1;
            if let Some(t) = sched
                .threads
                .get_mut(waker as usize)
                .filter(|_| computed && !in_loop)
            {
                t.runs_on = super::thread::RUNS_ON;
            }
        }
        sched.wake_worker(false);
        lock.unlock();
    }
}

/// Whether every section of `worker` takes the scheduler's lock now (see the module doc).
fn lock_on(worker: *mut Worker) -> bool {
    // SAFETY: worker records are never freed; `shared` is a plain bool that only its own
    // OS thread writes but for the one store here, read volatile; `watch` is set before
    // the worker is watched.
    unsafe {
        let shared = std::ptr::addr_of_mut!((*worker).shared);
        if TURNING_ON.load(SeqCst) != worker {
            if shared.read_volatile() {
                return true;
            }
            shared.write_volatile(true);
            // A full barrier (a locked exchange): the flag is seen by every CPU before
            // the kernel is asked about the worker below.
            TURNING_ON.store(worker, SeqCst);
        }
        if !watchdog::waiting_in_kernel((*worker).watch) || in_section(worker as usize) {
            return false;
        }
        TURNING_ON.store(std::ptr::null_mut(), SeqCst);
        true
    }
}

/// Wakes a parked spare, if there is one.
fn wake_spare() -> bool {
    let count = SPARE_COUNT.load(SeqCst);
    SPARES[..count].iter().any(|slot| {
        // SAFETY: spare records are never freed; the word is atomic.
        let sleep = unsafe { &(*slot.load(SeqCst)).sleep };
        let woken = sleep.compare_exchange(RETIRED, 0, SeqCst, SeqCst).is_ok();
        if woken {
            crate::runtime::raw::futex_wake_one(sleep);
        }
        woken
    })
}

/// The spare OS threads started so far (each stays, parked, once its stand-in ends).
pub fn spares_started() -> usize {
    SPARE_COUNT.load(SeqCst)
}

/// Starts a new spare for the scheduler of `worker`, unless [`MAX_SPARES`] exist.
fn new_spare(worker: *mut Worker) -> bool {
    let slot = SPARE_COUNT.load(SeqCst);
    if slot == MAX_SPARES {
        if !WARNED.swap(true, SeqCst) {
            ::log::warn!(
                "{MAX_SPARES} spare OS threads run the threads of stuck workers: another stuck \
                 worker's threads wait for its call"
            );
        }
        return false;
    }
    // SAFETY: worker records are never freed; `sched` and `lock` never change. The spare
    // starts with every signal blocked (the monitor's mask, which it inherits).
    let record = unsafe {
        let mut spare = Worker::new((*worker).sched, (*worker).lock, ALL_BLOCKED);
        spare.index = FIRST_SPARE + slot;
        spare.shared = true;
        spare.watch = Box::leak(Box::new(monitor::Worker::new()));
        Box::into_raw(Box::new(spare))
    };
    let Some(tid) = start_thread(record, None) else {
        return false;
    };
    if let Some(tid) = tid {
        // SAFETY: as above.
        monitor::open_syscall_file(unsafe { (*record).watch }, tid);
    }
    SPARES[slot].store(record, SeqCst);
    SPARE_COUNT.store(slot + 1, SeqCst);
    true
}

/// In a forked child: no spare exists, nothing is stuck, and the first worker skips the
/// lock again (see fork.rs).
pub(super) fn after_fork_child() {
    for slot in &SPARES {
        let spare = slot.swap(std::ptr::null_mut(), SeqCst);
        if !spare.is_null() {
            super::worker::forget_os_thread(spare);
        }
    }
    SPARE_COUNT.store(0, SeqCst);
    STUCK.store(0, SeqCst);
    TURNING_ON.store(std::ptr::null_mut(), SeqCst);
}

impl Scheduler {
    /// At a dispatch point: the calling worker leaves the workers if it is a spare and
    /// more run than N plus the stuck ones; how it then waits.
    #[inline(always)]
    pub(super) fn surplus(&mut self) -> Option<Idle> {
        if self.all_workers.len() <= self.workers.count {
            return None;
        }
        self.retire()
    }

    #[cold]
    fn retire(&mut self) -> Option<Idle> {
        let wanted = self.workers.count + STUCK.load(SeqCst);
        if self.w().index < FIRST_SPARE || self.all_workers.len() <= wanted {
            return None;
        }
        let me = current_worker();
        self.all_workers.retain(|&w| w != me);
        // Its run queue and runnext go to the workers that stay (MAIN too, if there),
        // and so does the last one's runnext if it stays alone (a single worker has no
        // runnext: see pop_ready).
        self.give_queue_away(me);
        let alone = self.all_workers.len() == 1;
        for worker in [me].into_iter().chain(alone.then(|| self.all_workers[0])) {
            // SAFETY: in the retiring worker's section.
            if let Some(tid) = unsafe { super::slice::take_runnext(worker, |_| true) } {
                self.push_ready(tid);
            }
        }
        if self.poller.is_null() {
            // Nobody polls the reactor and timers: a worker that sleeps idle will.
            self.wake_worker(false);
        }
        // No signal of the program's goes to a parked spare.
        self.apply_mask(ALL_BLOCKED);
        self.w().watch.idle(true);
        self.w().sleep.store(RETIRED, SeqCst);
        set_name(b"greenify-spare\0");
        Some(Idle::Spare(std::ptr::addr_of!(self.w().sleep)))
    }

    /// A spare, woken by the monitor, joins the workers, and takes the run queues of the
    /// stuck ones (marked before it was woken, see [`hand_off`]), and the threads waiting
    /// in their runnext: a thread its waker woke just before the call that blocked it
    /// would wait there for the call's end, as busy workers never look at another's
    /// runnext (a completion thread that wakes waiters, then blocks in `io_uring_enter`).
    pub(super) fn rejoin(&mut self) {
        let me = current_worker();
        self.all_workers.push(me);
        // MAIN, once it may move, runs here too. A spare ran it anyway when it came
        // through the spare's runnext (its poll found MAIN's wait over), so MAIN's last
        // worker could be a spare: a wake from the stuck worker's thread then queued MAIN
        // here and woke this spare alone, which left it queued and went back to its idle
        // wait, no other worker woken for it, until the stuck call returned (catalogue
        // `main_moves_woken_on_a_spare_runs_at_once`; MariaDB's accepting main thread
        // hung with a spare polling in 4 runs of 45, none in 60 since).
        self.w().runs_main = self.main_moves;
        for i in 0..self.all_workers.len() {
            let worker = self.all_workers[i];
            // SAFETY: worker records are never freed; the flag is atomic.
            if unsafe { (*worker).stuck.load(SeqCst) } {
                self.give_queue(worker, me);
                // SAFETY: in the spare's section (see `take_runnext`).
                if let Some(tid) = unsafe { super::slice::take_runnext(worker, |_| true) } {
                    // queued where the stuck worker's threads go (`push_ready`: here)
                    self.push_ready(tid);
                }
            }
        }
        set_name(b"greenify-work\0");
    }

    /// A new spare's first section: it joins the workers; what it runs before its first
    /// thread (as every worker does).
    pub(super) fn join_as_spare(&mut self) -> fn() {
        // It inherited the monitor's mask, every signal blocked: the same, but for what
        // no OS thread may block (SIGSYS while escapes are armed).
        os_sigmask(Some(ALL_BLOCKED));
        self.rejoin();
        self.worker_started
    }
}

/// Names the calling OS thread (`/proc/self/task/TID/comm`): a parked spare is told apart
/// from the workers.
fn set_name(name: &[u8]) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe {
        raw::syscall(
            libc::SYS_prctl,
            &[libc::PR_SET_NAME as usize, name.as_ptr() as usize],
        );
    }
}
