//! A green thread's life: spawn, join, detach, exit (of a green thread or of MAIN), and
//! the questions about who is alive and who is running.

use super::deadlock::Blocker;
use super::handle::Handle;
use super::identity::{next_green_tid, Identity};
use super::park::park;
use super::run::switch_thread;
use super::slice::completed_without_parking;
use super::state::State;
use super::thread::{Co, Suspend, Thread};
use super::tls::Tls;
use super::worker::start_workers;
use super::{with, Queue, Scheduler};
use crate::runtime::keys::Values;
use crate::runtime::stack::{round_stack_size, GreenStack};
use crate::runtime::wait::{Reason, ThreadId, Wake, MAIN};
use crate::runtime::{errno, handler, overflow, tcb, watchdog};
use corosensei::{Coroutine, Yielder};
use rustix::io::Errno;
use std::time::Instant;

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

/// Spawns a green thread that runs `body` and exits with its return value.
pub fn spawn(
    body: impl FnOnce() -> usize + 'static,
    options: SpawnOptions,
) -> Result<Handle, Errno> {
    // SAFETY: null: nothing is written.
    unsafe { spawn_to(std::ptr::null_mut(), body, options, None) }
}

/// [`spawn`], which also stores the new thread's handle at `handle_to` (unless null)
/// before the thread may run: with several workers it may run at once elsewhere, and
/// read that word (pthread_create's `*thread`) first thing.
///
/// # Safety
/// `handle_to` is null or valid for a write.
pub unsafe fn spawn_to(
    handle_to: *mut u64,
    body: impl FnOnce() -> usize + 'static,
    options: SpawnOptions,
    fresh: Option<usize>,
) -> Result<Handle, Errno> {
    let mut start = 0;
    let fresh = fresh.or_else(new_tcb_block);
    let spawned = with(|s| {
        s.decide_tls();
        start = s.share();
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
        let creator_mask = s.threads[s.current() as usize].sigmask;
        let Some(tid) = s.allocate_id() else {
            s.stacks.free(stack);
            return Err(Errno::AGAIN);
        };
        let (tcb, layout) = match &mut s.tls {
            Tls::PerThread(pool) => match pool.make(tid, bounds, fresh) {
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
                let me = s.current() as usize;
                s.threads[me].yielder = yielder;
            });
            if let Some(layout) = layout {
                tcb::thread_started(layout);
            }
            errno::set(0);
            body()
        });
        let green_tid = next_green_tid(&s.threads);
        let alone = s.alone();
        let t = &mut s.threads[tid as usize];
        t.tcb = tcb;
        t.word.spawned(alone);
        t.co = Some(Box::new(co));
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
        t.handler_frames = handler::Frames::NONE;
        let (varies, accepts) = (t.sigmask != creator_mask, !t.sigmask);
        t.stack_kind = kind;
        t.specific = Values::default();
        t.identity = Identity::new(green_tid);
        t.stdio_locks.clear();
        t.runs_on = 0;
        t.woke_at = None;
        // Never ran: spread over the workers (see queues.rs), not queued where the slot's
        // last thread ran.
        t.ran_on = std::ptr::null_mut();
        if varies {
            s.masks_vary = true;
            s.accepts_more(accepts);
        }
        if !handle_to.is_null() {
            // SAFETY: the caller's contract.
            unsafe { *handle_to = s.handle(tid).0 };
        }
        s.enqueue(tid, Queue::Run);
        s.live += 1;
        s.stats.threads_created += 1;
        s.stats.peak_alive = s.stats.peak_alive.max(s.live + 1);
        Ok(s.handle(tid))
    });
    if start > 0 {
        start_workers(start);
    }
    spawned
}

/// A new TCB block for a spawn ([`spawn_to`]'s `fresh`) if the pool has none free, made
/// outside any section: glibc makes it with the program's malloc, which may wait for a
/// lock a green thread holds (the spawner makes it as the program's code, so that such a
/// wait parks). None: none needed (or no scheduler: made in the section).
pub fn new_tcb_block() -> Option<usize> {
    // Until a first TCB is made, spawns of threads without TLS of their own pay one load.
    if !super::tls::tcbs_made() || !super::is_active() {
        return None;
    }
    let layout = with(|s| match &s.tls {
        Tls::PerThread(pool) if pool.needs_block() => Some(pool.layout()),
        _ => None,
    })?;
    Some(tcb::new_block(layout))
}

/// Ends the current green thread (not MAIN) with `retval`.
pub fn exit_current(retval: usize) -> ! {
    let (me, yielder) = with(|s| (s.current(), s.threads[s.current() as usize].yielder));
    if me == MAIN {
        overflow::die("greenify: runtime: exit_current called on the main thread");
    }
    // SAFETY: as in switch_out; the scheduler never resumes an exited coroutine.
    unsafe { (*yielder).suspend(Suspend::Exit(retval)) };
    overflow::die("greenify: runtime: an exited green thread was resumed");
}

/// MAIN ends but the process lives on: the other threads run until none is left, then
/// this returns, in MAIN (on whichever worker ran the last one).
pub fn exit_main() {
    with(|s| {
        s.main_exited = true;
        let alone = s.alone();
        s.threads[MAIN as usize].word.exited(alone);
    });
    switch_thread(MAIN, std::ptr::null());
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
#[inline]
pub fn current_is_main() -> bool {
    super::running_thread() == MAIN
}

/// The current thread's handle (MAIN has none: it keeps its real identity).
#[inline]
pub fn current_handle() -> Option<Handle> {
    with(|s| (s.current() != MAIN).then(|| s.handle(s.current())))
}

/// Waits for `handle`'s thread to exit and returns its value (pthread_join semantics).
pub fn join(handle: Handle, wait: JoinWait) -> Result<usize, Errno> {
    if !matches!(wait, JoinWait::Block) {
        // A loop of tryjoins (or of timed joins past their deadline) waits for the thread
        // it joins, which must get its turn.
        completed_without_parking();
    }
    // An endless join notes whom it waits for (the watchdog's deadlock report).
    let noted = matches!(wait, JoinWait::Block) && watchdog::watching_locks();
    let early = with(|s| -> Result<Option<usize>, Errno> {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        if tid == s.current() {
            return Err(Errno::DEADLK);
        }
        let t = &s.threads[tid as usize];
        if t.detached || t.joiner.is_some() {
            return Err(Errno::INVAL);
        }
        if t.state() == State::Exited {
            let retval = t.retval;
            s.release(tid);
            return Ok(Some(retval));
        }
        match wait {
            JoinWait::Try => return Err(Errno::BUSY),
            JoinWait::Until(d) if d <= Instant::now() => return Err(Errno::TIMEDOUT),
            _ => {}
        }
        let key = s.register_ahead();
        s.threads[tid as usize].joiner = Some(key);
        if noted {
            s.waits_for(Blocker::Join(tid));
        }
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
            let t = &s.threads[tid as usize];
            if t.state() == State::Exited {
                let retval = t.retval;
                s.release(tid);
                return Some(Ok(retval));
            }
            if wake == Wake::TimedOut {
                s.threads[tid as usize].joiner = None;
                return Some(Err(Errno::TIMEDOUT));
            }
            // Woken for another reason: wait again under the new key.
            let again = s.register_ahead();
            s.threads[tid as usize].joiner = Some(again);
            if noted {
                s.waits_for(Blocker::Join(tid));
            }
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
        if t.state() == State::Exited {
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
            .is_some_and(|tid| s.threads[tid as usize].state() != State::Exited)
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

/// The current green thread's id (MAIN is 0): unique among live green threads.
#[inline]
pub fn current_id() -> ThreadId {
    super::running_thread()
}

impl Scheduler {
    pub(super) fn finish(&mut self, tid: ThreadId, retval: usize) {
        self.live -= 1;
        let alone = self.alone();
        let t = &mut self.threads[tid as usize];
        // A wait it registered and left without a wake (a cancel request acted on before
        // it parked) is over: its entries must not match the slot's next thread.
        t.word.exited(alone);
        t.retval = retval;
        if t.detached {
            self.release(tid);
        } else if let Some(joiner) = t.joiner {
            self.ready(joiner, Wake::Ready);
        }
        if self.main_exited && self.live == 0 && self.all_workers.len() > 1 && !self.main_moves {
            // The first worker ends the process (else this one does, in MAIN: see
            // `run::run_loop`).
            self.wake_worker(true);
        }
    }

    fn release(&mut self, tid: ThreadId) {
        let alone = self.alone();
        let t = &mut self.threads[tid as usize];
        if let (Tls::PerThread(pool), tcb @ 1..) = (&mut self.tls, t.tcb) {
            // Kept until now: the handle names this thread until it is reaped.
            pool.release(tcb);
        }
        t.tcb = 0;
        t.word.released(alone, false);
        t.generation = t.generation.wrapping_add(1);
        t.joiner = None;
        t.detached = false;
        crate::runtime::kept_pending::thread_ended(tid);
        self.free_ids.push(tid);
    }

    /// A free record's id; None when no memory is left for a new chunk (see table.rs).
    fn allocate_id(&mut self) -> Option<ThreadId> {
        if let Some(tid) = self.free_ids.pop() {
            return Some(tid);
        }
        Some(self.threads.push(Thread::free())? as ThreadId)
    }
}
