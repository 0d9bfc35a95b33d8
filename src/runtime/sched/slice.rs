//! Sharing the OS thread among ready threads: `yield_now`, the step aside of a thread
//! whose hooked calls never wait once it has run a slice while others are ready, and the
//! preemption of one that computes without calls (the monitor's signal, see monitor.rs).

use super::run::switch_keeping_errno;
use super::thread::State;
use super::{current_sched, with, Scheduler};
use crate::runtime::wait::{Reason, ThreadId, MAIN};
use std::time::{Duration, Instant};

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
    let registers = super::snapshot::registers_here();
    let safe = with(|s| {
        let t = &s.threads[s.current as usize];
        let (bottom, size) = t.stack;
        let own_stack = s.current == MAIN || (bottom..bottom + size).contains(&sp);
        let safe =
            t.state == State::Running && own_stack && mask == t.sigmask && s.applied_mask == mask;
        if safe && super::snapshot::pending() {
            // A thread that keeps its worker answers a dump here: it may be alone.
            s.threads[s.current as usize].saved_registers = registers;
            s.answer_request();
        }
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

/// The preemption signal found the current thread in greenify's own code, in a hooked
/// call that does not wait (a loop of such calls is mostly greenify's and the kernel's
/// code, where the signal cannot switch): the hook steps aside as it returns to the
/// program, a safe point, as `preempt` would have. Says whether it was one.
pub fn preempt_at_return() -> bool {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let Some(mask) = (!current_sched().is_null()).then(|| with(|s| s.applied_mask)) else {
        return false;
    };
    preempt(sp, mask)
}

impl Scheduler {
    /// The next thread to run: the run queue's first, unless a preempted thread has waited
    /// a slice (or nothing else is ready).
    pub(super) fn pop_ready(&mut self) -> Option<ThreadId> {
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
}
