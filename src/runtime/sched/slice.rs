//! Sharing the OS thread among ready threads: `yield_now`, the step aside of a thread
//! whose hooked calls never wait once it has run a slice while others are ready, and the
//! preemption of one that computes without calls (the monitor's signal, see monitor.rs).

use super::queues::pop;
use super::run::switch_keeping_errno;
use super::state::State;
use super::{section_may_start, with, with_worker, Queue, Scheduler};
use crate::runtime::wait::{Reason, ThreadId, MAIN};
use std::time::{Duration, Instant};

/// Lets every other ready thread run once before the current one continues.
pub fn yield_now() {
    step_aside(Behind::AllReady, false);
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
    let due = with_worker(|w| {
        w.unparked_calls += 1;
        if w.unparked_calls % CLOCK_EVERY != 0 {
            return false;
        }
        let now = Instant::now();
        match w.slice_start {
            Some(start) if now.saturating_duration_since(start) >= SLICE => {
                w.slice_start = Some(now);
                true
            }
            Some(_) => false,
            None => {
                w.slice_start = Some(now);
                false
            }
        }
    });
    if due {
        step_aside(Behind::ForASlice, false);
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
/// goes on at once if none is ready after a look at epoll and the timers. `published`:
/// its preemption published its registers for a dump (see look.rs), withdrawn in this
/// section: its stack above them did not move until here.
fn step_aside(behind: Behind, published: bool) {
    switch_keeping_errno(|s, me| {
        if published {
            super::look::moving();
        }
        if !s.others_ready() {
            return false;
        }
        s.stats.parks[Reason::Yield as usize] += 1;
        let alone = s.alone();
        s.threads[me as usize].word.yielded(alone);
        let queue = match behind {
            Behind::AllReady => Queue::Run,
            Behind::ForASlice => Queue::Preempted,
        };
        s.enqueue(me, queue);
        true
    });
}

/// The current thread's wait ended before it parked (a wake came first, or what it
/// waits for was there already) on a worker the threads gather away from (see `Gather`,
/// worker.rs): it moves to the first worker's queue now. A thread that takes turns with
/// one that runs on the first worker, woken each time before it parks, ran on there for
/// the whole gathering instead, every turn crossing OS threads (a condvar pair that
/// gathered on a busy machine: 120 crossings in 20 ms).
#[cold]
#[inline(never)]
pub(super) fn leave_gathered_worker() {
    switch_keeping_errno(|s, me| {
        if !s.gathered() {
            return false;
        }
        let alone = s.alone();
        s.threads[me as usize].word.yielded(alone);
        // Queued where placement puts it: not on this worker (see `Scheduler::takes`).
        s.enqueue(me, Queue::Run);
        true
    });
}

/// The preemption signal interrupted the current thread in the program's code (the
/// handler checked where, see monitor.rs): it steps aside behind every ready thread (it
/// had a whole slice) if this is a safe point for the scheduler too: no scheduler
/// section runs, and the thread runs on its own stack (`sp`, the interrupted stack
/// pointer) with its own signal mask (`mask`, the interrupted one: a program's handler
/// running adds its signal and sa_mask). Says whether it was a safe point.
pub fn preempt(sp: usize, mask: u64) -> bool {
    stop_here(sp, mask, true)
}

/// The preemption signal interrupted the current thread where it may not switch (in
/// libc, the loader or the unwinder, whose locks it may hold) while a dump waits: with one
/// worker nothing else answers until it leaves that code, which for a thread that spends
/// most of its time in libc took seconds on a loaded machine (3 dumps of 40 over 3 s, the
/// dump's limit). The answer takes none of those locks (greenify's allocator, raw system
/// calls), so it is made here, and the thread goes on. As [`preempt`] otherwise.
pub fn answer_dump_here(sp: usize, mask: u64) {
    if super::snapshot::pending() {
        stop_here(sp, mask, false);
    }
}

/// [`preempt`], which steps aside (`may_switch`), and [`answer_dump_here`], which only
/// answers a pending dump: both where the thread's record and stack are its own.
fn stop_here(sp: usize, mask: u64, may_switch: bool) -> bool {
    if !section_may_start() {
        return false;
    }
    let registers = super::snapshot::registers_here();
    // A dump answered on another worker meanwhile may show it from here.
    super::look::still(registers);
    let safe = with(|s| {
        let me = s.current();
        let applied = s.w().applied_mask;
        let t = &s.threads[me as usize];
        let (bottom, size) = t.stack;
        let own_stack = me == MAIN || (bottom..bottom + size).contains(&sp);
        // The kernel's mask lacks what greenify keeps open (`kept_open`).
        let open = super::signals::kept_open();
        let same = |a: u64, b: u64| a | open == b | open;
        let safe = t.state() == State::Running
            && own_stack
            && same(mask, t.sigmask)
            && same(applied, mask);
        if safe && super::snapshot::pending() {
            // A thread that keeps its worker answers a dump here: it may be alone.
            s.threads[me as usize].saved_registers = registers;
            s.answer_request(Some(me));
        }
        if safe && may_switch {
            // Sleepers whose deadline passed and threads whose fds are ready run first.
            s.poll_io(Some(Duration::ZERO));
        }
        safe
    });
    if safe && may_switch {
        step_aside(Behind::AllReady, true);
    } else {
        super::look::moving();
    }
    safe
}

/// The preemption signal found the current thread in greenify's own code, in a hooked
/// call that does not wait (a loop of such calls is mostly greenify's and the kernel's
/// code, where the signal cannot switch): the hook steps aside as it returns to the
/// program, a safe point, as `preempt` would have. Says whether it was one.
pub fn preempt_at_return() -> bool {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    if !section_may_start() {
        return false;
    }
    let mask = with(|s| s.w().applied_mask);
    preempt(sp, mask)
}

/// Takes the thread that waits in `worker`'s runnext, if `wanted` says so.
///
/// # Safety
/// A section of the scheduler is open: worker records are never freed, and their `next` is
/// only touched in sections, under the lock (another worker's whole record is not
/// borrowed: its OS thread writes other fields outside sections); `watch` never changes.
pub(super) unsafe fn take_runnext(
    worker: *mut super::Worker,
    wanted: impl FnOnce(ThreadId) -> bool,
) -> Option<ThreadId> {
    // SAFETY: as the caller vouches.
    unsafe {
        let next = std::ptr::addr_of_mut!((*worker).next);
        let tid = (*next).filter(|&tid| wanted(tid))?;
        *next = None;
        (*worker).watch.next_waits(false);
        Some(tid)
    }
}

/// Of this many picks of a worker's runnext, one goes to the queues instead when
/// they hold threads (as Go's scheduler looks at its global queue every 61st schedule): a
/// pair that hands work to each other keeps the other threads waiting at most that long.
const NEXT_TURNS: u32 = 61;

impl Scheduler {
    /// The next thread to run: the worker's runnext (see `Scheduler::enqueue_shared`), then
    /// its run queue's first, unless a preempted thread has waited a slice (or nothing
    /// else is ready); with nothing in its queue, it steals from another's first (see
    /// queues.rs); with nothing there either, the runnext of another worker. MAIN only if
    /// `main_ok` (see `run::run_loop`: a worker whose loop runs on MAIN's stack has it).
    pub(super) fn pop_ready(&mut self, main_ok: bool) -> Option<ThreadId> {
        if self.all_workers.len() > 1 {
            let tid = self.pop_shared(main_ok);
            if tid.is_some() {
                self.count_dispatch();
            }
            return tid;
        }
        self.pop_queues(main_ok)
    }

    /// [`Scheduler::pop_ready`] with several workers: the worker's runnext first; nothing
    /// else while the threads gather on the first worker (see `Gather`, worker.rs); with
    /// nothing it may run in its own queue, it steals; now and then, busy or not, it takes
    /// threads stranded on another worker (see `Scheduler::rescue`).
    #[inline(never)]
    fn pop_shared(&mut self, main_ok: bool) -> Option<ThreadId> {
        self.rescue(main_ok);
        if let Some(tid) = self.pop_next() {
            return Some(tid);
        }
        if self.gathered() {
            // Its own runnext still (left there when the queues had their turn; a
            // gathered worker never holds MAIN).
            let w = self.w();
            w.watch.next_waits(false);
            return w.next.take();
        }
        if !self.runnable_queued(main_ok) {
            self.steal(main_ok);
        }
        self.pop_queues(main_ok)
    }

    /// The worker's run queue's first, unless a preempted thread has waited a slice (or
    /// nothing else is ready); with nothing there and several workers, a runnext.
    #[inline(always)]
    fn pop_queues(&mut self, main_ok: bool) -> Option<ThreadId> {
        if !self.preempted.is_empty()
            && (!self.runnable_queued(main_ok) || self.preempted_turn.elapsed() >= SLICE)
        {
            if let Some(tid) = pop(&mut self.preempted, main_ok) {
                self.preempted_turn = Instant::now();
                return Some(tid);
            }
        }
        match pop(&mut self.w().queue, main_ok) {
            None if self.all_workers.len() > 1 => self.steal_next(main_ok),
            tid => tid,
        }
    }

    /// The worker's runnext, unless its run queue and the preempted threads have their turn.
    #[inline(never)]
    fn pop_next(&mut self) -> Option<ThreadId> {
        let queued = !self.w().queue.is_empty() || !self.preempted.is_empty();
        let w = self.w();
        w.next?;
        w.next_taken = w.next_taken.wrapping_add(1);
        if queued && w.next_taken.is_multiple_of(NEXT_TURNS) {
            return None;
        }
        w.watch.next_waits(false);
        w.next.take()
    }

    /// With nothing else to run: the thread waiting in the worker's own runnext (left
    /// there when the shared queues had their turn but held only MAIN), else in another
    /// worker's (its worker runs on, see `take_next`, handoff.rs). MAIN only if `main_ok`.
    #[inline(never)]
    fn steal_next(&mut self, main_ok: bool) -> Option<ThreadId> {
        let me = super::running_worker();
        let others = self.all_workers.iter().filter(|&&worker| worker != me);
        std::iter::once(&me).chain(others).find_map(|&worker| {
            // SAFETY: called in a section (see `take_runnext`).
            unsafe { take_runnext(worker, |tid| main_ok || tid != MAIN) }
        })
    }

    /// How many threads wait in the workers' runnext.
    pub(super) fn in_runnext(&self) -> usize {
        let waits = |&&worker: &&*mut super::Worker| {
            // SAFETY: as in `steal_next`; a plain read.
            unsafe { std::ptr::addr_of!((*worker).next).read().is_some() }
        };
        self.all_workers.iter().filter(waits).count()
    }

    /// Whether another thread is ready, after a look at epoll when none is (parked
    /// threads whose fds became ready or whose timers are due get their turn). With
    /// several workers, threads queued on another worker are stolen first: the thread that
    /// steps aside then waits behind them (its worker's queue is the one it joins).
    fn others_ready(&mut self) -> bool {
        if !self.w().queue.is_empty() {
            return true;
        }
        if self.all_workers.len() > 1 {
            let main_ok = self.w().runs_main;
            if self.steal(main_ok) {
                return true;
            }
        }
        if self.preempted.is_empty() {
            self.poll_io(Some(Duration::ZERO));
        }
        !self.w().queue.is_empty() || !self.preempted.is_empty() || self.w().next.is_some()
    }
}
