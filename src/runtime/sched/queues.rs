//! The run queues: one per worker, all under the scheduler's one lock (as Go's P's
//! `runq`, without its lock-free ring).
//!
//! - Placement ([`Scheduler::push_ready`]): a thread made ready goes to the queue of the
//!   worker it last ran on (`ran_on`: its stack, TCB and record are likeliest still in
//!   that CPU's caches), unless that worker cannot take it ([`Scheduler::takes`]: a
//!   retired spare, one stuck in a call no hook saw whose role a spare took, or one the
//!   threads gathered away from, see `Gather` in worker.rs); then the calling worker's,
//!   else the first that can. New threads are spread round-robin, so that a burst of
//!   `pthread_create` reaches every worker. MAIN, while only the first worker may run it,
//!   goes to the first's.
//! - Wakes: queueing on a worker that waits idle wakes it; on a busy one (the calling
//!   worker included), an idle worker is woken, which steals it (Go's `wakep`).
//! - Stealing ([`Scheduler::steal`]): a worker whose own queue holds nothing it may run
//!   takes half of the longest other queue before it runs a preempted thread, another
//!   worker's runnext, or goes idle (the poller too: it polls only once idle). Every
//!   pick and every idle decision is made under the lock, in the same section as the
//!   queues were looked at, so a thread queued anywhere is seen or wakes someone.
//! - Rescue ([`Scheduler::rescue`]): a busy worker never steals, so every
//!   [`RESCUE_EVERY`] dispatches each worker also takes the threads that waited through a
//!   whole such stretch on another worker that ran none of them (one blocked in a call no
//!   hook sees, between short bursts or before the monitor hands it off).
//! - Hand-over ([`Scheduler::give_queue`]): a spare that takes a stuck worker's role
//!   takes its queue, a retiring spare gives its own back, and a gathering moves the
//!   gathered workers' queues to the first worker. A forked child drops them all but its
//!   own (fork.rs).
//!
//! With one worker there is one queue, the worker's, and none of this runs: a thread
//! made ready is queued on it at once (`Scheduler::enqueue`).

use super::worker::Worker;
use super::{running_worker, Scheduler};
use crate::runtime::wait::{ThreadId, MAIN};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::SeqCst;

/// The first thread of `queue`, or its second if the first is MAIN and not `main_ok`
/// (MAIN is in the queues at most once).
#[inline(always)]
pub(super) fn pop(queue: &mut VecDeque<ThreadId>, main_ok: bool) -> Option<ThreadId> {
    if main_ok || queue.front() != Some(&MAIN) {
        queue.pop_front()
    } else {
        queue.remove(1)
    }
}

/// Dispatches of a worker between two looks for threads stranded on another (see
/// [`Scheduler::rescue`]): as often as it looks at epoll while busy (`run::POLL_EVERY`).
const RESCUE_EVERY: u32 = 61;

/// How many threads a steal takes of a victim's `len` queued: half, rounded up (Go's
/// runqsteal), so that one queued thread is taken too.
fn steal_count(len: usize) -> usize {
    len.div_ceil(2)
}

impl Scheduler {
    /// The run queue of `worker` (a worker record: never freed). A section is open (the
    /// lock held once shared) and `&mut self` borrows for as long as the queue does, so
    /// the reference is the only one: a queue is only touched in sections (another
    /// worker's OS thread writes other fields of its record meanwhile, never this one).
    pub(super) fn queue(&mut self, worker: *mut Worker) -> &mut VecDeque<ThreadId> {
        // SAFETY: as said above.
        unsafe { &mut *std::ptr::addr_of_mut!((*worker).queue) }
    }

    /// How many threads of `worker`'s queue a worker may take ([`pop`]): one that may not
    /// run MAIN (not `main_ok`) sees a queue that holds only MAIN as empty (else a
    /// preempted thread would wait behind MAIN for a worker that runs another thread).
    fn runnable_in(&self, worker: *mut Worker, main_ok: bool) -> usize {
        // SAFETY: as in `queue`; a shared reference for the reading, `&self` borrowed.
        let queue = unsafe { &*std::ptr::addr_of!((*worker).queue) };
        queue.len() - usize::from(!main_ok && queue.front() == Some(&MAIN))
    }

    /// Whether the calling worker's queue holds a thread it may run (MAIN only if
    /// `main_ok`).
    pub(super) fn runnable_queued(&self, main_ok: bool) -> bool {
        self.runnable_in(running_worker(), main_ok) > 0
    }

    /// Threads waiting in the workers' run queues.
    pub(super) fn queued(&self) -> usize {
        let all = self.all_workers.iter();
        all.map(|&worker| self.runnable_in(worker, true)).sum()
    }

    /// Whether `worker` may be given threads: it is one of the workers, not stuck, and
    /// the threads are not gathered away from it.
    pub(super) fn takes(&self, worker: *mut Worker) -> bool {
        // SAFETY: worker records are never freed; `stuck` is atomic.
        self.all_workers.contains(&worker)
            && !unsafe { (*worker).stuck.load(SeqCst) }
            && !self.gathers_away(worker)
    }

    /// The worker that gets threads meant for `preferred` (null: none): it, if it
    /// [`takes`](Scheduler::takes) them, else the calling worker, else the first that
    /// does (else the first: MAIN's, never retired).
    fn home_for(&self, preferred: *mut Worker) -> *mut Worker {
        let me = running_worker();
        [preferred, me]
            .into_iter()
            .chain(self.all_workers.iter().copied())
            .find(|&worker| self.takes(worker))
            .unwrap_or(self.all_workers[0])
    }

    /// Queues `tid`, which is Ready and whose coroutine is back, with several workers: on
    /// the worker placement picks (see the module doc), waking one to run it.
    pub(super) fn push_ready(&mut self, tid: ThreadId) {
        let main_stays = tid == MAIN && !self.main_moves;
        let preferred = if main_stays {
            self.all_workers[0]
        } else {
            match self.threads[tid as usize].ran_on {
                ran_on if !ran_on.is_null() => ran_on,
                _ => {
                    self.spread = (self.spread + 1) % self.all_workers.len();
                    self.all_workers[self.spread]
                }
            }
        };
        let worker = if main_stays {
            preferred
        } else {
            self.home_for(preferred)
        };
        self.queue(worker).push_back(tid);
        self.wake_for(worker, main_stays);
    }

    /// Threads were queued on `worker`: it is woken if it waits idle; else (it runs, or
    /// is the calling worker) an idle one is, which will steal them (Go's wakep). `main`:
    /// they include MAIN, which only the first worker may run.
    fn wake_for(&mut self, worker: *mut Worker, main: bool) {
        if worker != running_worker() && self.wake_idle(worker) {
            return;
        }
        self.wake_worker(main);
    }

    /// Moves `from`'s queue to the back of `to`'s, and wakes a worker for it.
    pub(super) fn give_queue(&mut self, from: *mut Worker, to: *mut Worker) {
        if from == to || self.queue(from).is_empty() {
            return;
        }
        let mut moved = std::mem::take(self.queue(from));
        let main = !self.main_moves && moved.contains(&MAIN);
        self.queue(to).append(&mut moved);
        // The emptied buffer stays with its worker.
        *self.queue(from) = moved;
        self.wake_for(to, main);
    }

    /// Gives `from`'s queue to the worker that takes threads in its stead (see
    /// [`Scheduler::home_for`]).
    pub(super) fn give_queue_away(&mut self, from: *mut Worker) {
        let to = self.home_for(std::ptr::null_mut());
        self.give_queue(from, to);
    }

    /// The calling worker, whose own queue holds nothing it may run (MAIN only if
    /// `main_ok`), moves to it half of the longest other queue's threads (Go's
    /// runqsteal), unless the threads are gathered away from it. Says whether it took any.
    pub(super) fn steal(&mut self, main_ok: bool) -> bool {
        if self.gathered() {
            return false;
        }
        let me = running_worker();
        let others = self.all_workers.iter().copied().filter(|&w| w != me);
        let Some((victim, runnable)) = others
            .map(|worker| (worker, self.runnable_in(worker, main_ok)))
            .max_by_key(|&(_, runnable)| runnable)
            .filter(|&(_, runnable)| runnable > 0)
        else {
            return false;
        };
        self.take_half(victim, runnable, main_ok);
        true
    }

    /// Moves half of the `runnable` threads of `victim`'s queue to the calling worker's.
    fn take_half(&mut self, victim: *mut Worker, runnable: usize, main_ok: bool) {
        let me = running_worker();
        for _ in 0..steal_count(runnable) {
            let Some(tid) = pop(self.queue(victim), main_ok) else {
                break;
            };
            self.queue(me).push_back(tid);
        }
        self.stats.steals += 1;
    }

    /// Every [`RESCUE_EVERY`] dispatches of the calling worker, busy or not: threads that
    /// wait on another worker that ran none of them since the last such look are moved
    /// here: half of its queue if its first thread is the same, the thread in its runnext
    /// if that is the same and the worker did not dispatch meanwhile. That worker is
    /// blocked in a call no hook sees (not yet, or no longer, handed off: the monitor
    /// waits for a look interval without a dispatch, see monitor.rs), or keeps running a
    /// pair that hands its turns through runnext: a busy worker never steals, and a
    /// thread readied there waited for the call to end (a completion thread blocking in
    /// `io_uring_enter` between short bursts, while 45 threads took short turns on the
    /// other worker: one waited there for seconds). As Go's sysmon retakes the P of an M
    /// in a system call when its run queue holds work.
    pub(super) fn rescue(&mut self, main_ok: bool) {
        let w = self.w();
        w.since_rescue += 1;
        if w.since_rescue < RESCUE_EVERY || self.gathered() {
            return;
        }
        self.w().since_rescue = 0;
        let me = running_worker();
        for i in 0..self.all_workers.len() {
            let victim = self.all_workers[i];
            if victim == me {
                continue;
            }
            let runnable = self.runnable_in(victim, main_ok);
            let front = (runnable > 0)
                .then(|| self.queue(victim).front().copied())
                .flatten();
            // SAFETY: worker records are never freed; `front_seen`, `next_seen` and `next`
            // are only touched in sections (as `queue`), `watch` never changes.
            let (front_seen, next_seen, next, dispatches) = unsafe {
                (
                    &mut *std::ptr::addr_of_mut!((*victim).front_seen),
                    &mut *std::ptr::addr_of_mut!((*victim).next_seen),
                    std::ptr::addr_of!((*victim).next).read(),
                    (*victim).watch.dispatch_count(),
                )
            };
            let stranded = front.is_some() && *front_seen == front;
            *front_seen = if stranded { None } else { front };
            let next = next
                .filter(|&tid| main_ok || tid != MAIN)
                .map(|tid| (tid, dispatches));
            let next_stranded = next.is_some() && *next_seen == next;
            *next_seen = if next_stranded { None } else { next };
            if stranded {
                self.take_half(victim, runnable, main_ok);
            }
            if next_stranded {
                // SAFETY: in a section.
                if let Some(tid) = unsafe { super::slice::take_runnext(victim, |_| true) } {
                    self.queue(me).push_back(tid);
                    self.stats.steals += 1;
                }
            }
        }
    }
}
