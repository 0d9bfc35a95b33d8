//! The run loop and switching: which thread runs next, resuming its coroutine and
//! handling how it came back, and leaving the current thread (with the glibc stdio locks
//! it holds lent out meanwhile).

use super::signals::run_due_handlers;
use super::thread::{Co, State, Suspend};
use super::{with, Scheduler};
use crate::runtime::stack::{gap_check_needed, gap_untouched_below};
use crate::runtime::wait::{ThreadId, MAIN};
use crate::runtime::{errno, overflow, tcb};
use corosensei::{CoroutineResult, Yielder};
use std::time::{Duration, Instant};

/// Dispatches between two non-blocking looks at epoll when threads are always ready.
const POLL_EVERY: u32 = 61;

enum Step {
    Main,
    Run(ThreadId, Co),
    AllExited,
}

/// Runs other green threads until MAIN is ready again (or, after MAIN exited, until no
/// thread is left). Only ever called on MAIN's stack.
pub(super) fn run_loop() {
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
pub(super) fn switch_out() {
    // Its stack pointer also tells which handlers it left (no second read of it).
    let registers @ [_, sp, _] = super::snapshot::registers_here();
    let (from, lent) = with(|s| {
        s.threads[s.current as usize].saved_registers = registers;
        // The mask it leaves with is the one it comes back with.
        s.settle_handler_jumps(sp);
        let from = s.leaving();
        let locks = &mut s.threads[s.current as usize].stdio_locks;
        if locks.is_empty() {
            return (from, Vec::new());
        }
        let mut unique = locks.clone();
        unique.sort_unstable();
        unique.dedup();
        // SAFETY: a stream's lock stays valid while a thread holds it.
        let lent = unique
            .into_iter()
            .filter_map(|l| unsafe { tcb::lend_io_lock(l) })
            .collect();
        (from, lent)
    });
    switch_thread(from);
    for lock in lent {
        // SAFETY: lent above; the stream is still locked by this thread's count.
        while !unsafe { tcb::retake_io_lock(&lock) } {
            // Another thread entered the stream meanwhile: let it finish.
            let from = with(|s| {
                let me = s.current;
                s.threads[me as usize].state = State::Ready;
                s.run_queue.push_back(me);
                s.leaving()
            });
            switch_thread(from);
        }
    }
}

/// The thread that switches out and how: its id and its coroutine's yielder.
type Leaving = (ThreadId, *const Yielder<(), Suspend>);

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

/// Switches `from` the current thread to the run loop (see [`switch_out`]).
fn switch_thread((me, yielder): Leaving) {
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
pub(super) fn switch_keeping_errno() {
    let saved = errno::get();
    switch_out();
    errno::set(saved);
    if with(|s| s.threads[s.current as usize].has_handlers_due()) {
        run_due_handlers();
    }
}

impl Scheduler {
    /// The current thread, as [`switch_thread`] leaves it (read in the caller's section).
    fn leaving(&self) -> Leaving {
        (self.current, self.threads[self.current as usize].yielder)
    }

    fn next_step(&mut self) -> Step {
        loop {
            if super::snapshot::pending() {
                self.answer_request();
            }
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
}
