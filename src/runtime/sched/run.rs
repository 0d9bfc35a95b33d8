//! The run loop and switching: which thread runs next, resuming its coroutine and
//! handling how it came back, and leaving the current thread (with the glibc stdio locks
//! it holds lent out meanwhile).

use super::context;
use super::signals::run_due_handlers;
use super::thread::{Co, Suspend};
use super::tls::Tls;
use super::worker::{Idle, Resumed};
use super::{running_worker, with, with_after, Queue, Scheduler};
use crate::runtime::wait::{ThreadId, MAIN};
use crate::runtime::{errno, tcb};
use corosensei::{CoroutineResult, Yielder};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// MAIN's saved context while it is away from every worker, once it may run on any (see
/// [`run_loop`]): its stack pointer, stored by its own switch and read by the worker that
/// dispatches it after a section ordered the two.
static MAIN_CONTEXT: AtomicUsize = AtomicUsize::new(0);

/// Dispatches between two non-blocking looks at epoll when threads are always ready.
const POLL_EVERY: u32 = 61;

/// Cache lines around a parked thread's saved stack pointer that its resume touches
/// (the switch's saved registers below it, the frames of its way out above it).
const STACK_LINES: usize = 16;

/// Asks the CPU to bring the cache line of `addr` in (any address: a prefetch never
/// faults).
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint reads nothing architecturally and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

enum Step {
    Main,
    Run(ThreadId, Box<Co>),
    /// The last thread of a child forked by a green thread ended (MAIN is gone): the
    /// process exits.
    AllExited,
    /// Nothing to run: wait as the run loop's idle slot says, outside the lock (see
    /// worker.rs). Not carried in the step, which stays a few bytes the loop matches
    /// cheaply at every dispatch.
    Idle,
}

/// Runs green threads. One section between two coroutines: what the last one left, and
/// which runs next. Says whether the process must exit: the last thread of a child
/// forked by a green thread (MAIN is gone) ended.
///
/// On MAIN's own stack (`on_main`: a single worker; MAIN parked calls it) it runs until
/// MAIN is ready again (or, after MAIN exited, until no thread is left), and returns.
/// On a worker's own stack (every worker once several run: the first one's loop gets a
/// stack of its own, see [`start_loop_context`]) it runs for good, and dispatches MAIN
/// by switching to MAIN's saved context: MAIN's park switches back to the loop of the
/// worker it then runs on (see [`switch_thread`]), so MAIN may run on any worker.
pub(super) fn run_loop(on_main: bool) -> bool {
    let mut back = None;
    let mut wait = None;
    loop {
        // One call site, so that it stays inlined into the loop; an idle wait is a section
        // of its own (out of line), so that the dispatch's carries no idle state.
        let step = with(|s| {
            if let Some((tid, co, result)) = back.take() {
                s.after_resume(tid, co, result);
            }
            s.next_step(&mut wait)
        });
        // The dispatch first: one compare, where a match of the four took a jump table.
        if let Step::Run(tid, mut co) = step {
            let result = co.resume(());
            back = Some((tid, co, result));
            continue;
        }
        match step {
            Step::Main if on_main => return false,
            Step::Main => run_main(),
            Step::AllExited => return true,
            Step::Run(..) => unreachable!("dispatched above"),
            Step::Idle => idle(&mut wait),
        }
    }
}

/// Runs MAIN on this worker until it leaves again (see [`run_loop`]). Out of line: only
/// several workers dispatch MAIN this way.
#[inline(never)]
fn run_main() {
    let worker = running_worker();
    // SAFETY: MAIN was popped (or is the process's exit) in a section after the one in
    // which its switch away was noted back (`main_back`), so its saved context is
    // complete and nothing else resumes it; this worker's loop context is stored before
    // MAIN can run, and only MAIN, parking on this OS thread, resumes it.
    unsafe {
        context::switch(
            std::ptr::addr_of_mut!((*worker).loop_context),
            MAIN_CONTEXT.load(Relaxed),
        )
    };
    with(|s| s.main_back());
}

/// Gives the first worker's run loop a stack and a TCB of its own (the other workers'
/// loops run on their own OS threads' stacks and TCBs), as several workers start, so that
/// MAIN may run on any worker: called by MAIN, at the spawn that starts them. Without
/// them (no memory), MAIN keeps running on the first worker only.
pub(super) fn start_loop_context() {
    let layout = with(|s| match &s.tls {
        Tls::PerThread(pool) if !s.main_moves => Some(pool.layout()),
        _ => None,
    });
    let Some(layout) = layout else {
        return;
    };
    // Outside any section, as for a spawn (see `new_tcb_block`).
    let block = tcb::new_block(layout);
    let Some((context, stack)) = context::Context::start(first_worker_loop, 0) else {
        ::log::warn!("no stack for the first worker's run loop: the main thread stays on it");
        return;
    };
    with(|s| {
        let Tls::PerThread(pool) = &mut s.tls else {
            return;
        };
        let Some(tcb) = pool.make(MAIN, stack, Some(block)) else {
            return;
        };
        let w = s.w();
        w.own_tcb = tcb;
        w.loop_context = context;
        s.main_moves = true;
    });
}

/// The first worker's run loop on its own stack (see [`start_loop_context`]): entered
/// by MAIN's first switch away, which it notes as every later one.
extern "C" fn first_worker_loop(_: usize) -> ! {
    with(|s| s.main_back());
    run_loop(false);
    std::process::exit(0)
}

/// Waits idle as `slot` says, outside the lock but inside a section (see worker.rs), and
/// takes in what the wait found, until that asks for no further wait.
#[inline(never)]
fn idle(slot: &mut Option<Idle>) {
    let mut wait = slot.take();
    while let Some(now) = wait {
        wait = with_after(|| now.wait(), |s, waited| s.idle_done(waited));
    }
}

/// Leaves the current thread until the scheduler picks it again, in one section with
/// `prepare`, which marks it (`me`) Parked or queues it as Ready and says whether to
/// leave at all (false: it goes on at once). The stdio locks it holds are free
/// meanwhile. Says whether it left.
pub(super) fn switch_out(prepare: impl FnOnce(&mut Scheduler, ThreadId) -> bool) -> bool {
    // Its stack pointer also tells which handlers it left (no second read of it).
    let registers @ [_, sp, _] = super::snapshot::registers_here();
    let Some((me, yielder, holds_locks)) = with(|s| {
        // Read once for the section: the compiler repeats every read of the worker's
        // record (behind the TCB word), and each costs a bounds check of `threads` too.
        let me = s.current();
        if !prepare(s, me) {
            return None;
        }
        // The mask it leaves with is the one it comes back with.
        s.settle_handler_jumps(me, sp);
        let t = &mut s.threads[me as usize];
        t.saved_registers = registers;
        Some((me, t.yielder, !t.stdio_locks.is_empty()))
    }) else {
        return false;
    };
    if holds_locks {
        switch_lending_locks(me, yielder);
    } else {
        switch_thread(me, yielder);
    }
    true
}

/// [`switch_thread`] for a thread that holds glibc stdio locks: they are free while it is
/// away. Out of line (rare), in a section of its own after the one that parked or queued
/// it: until its coroutine is back in the run loop, no worker resumes it.
#[cold]
#[inline(never)]
fn switch_lending_locks(me: ThreadId, yielder: *const Yielder<(), Suspend>) {
    let lent: Vec<_> = with(|s| {
        let mut unique = s.threads[me as usize].stdio_locks.clone();
        unique.sort_unstable();
        unique.dedup();
        // SAFETY: a stream's lock stays valid while a thread holds it.
        unique
            .into_iter()
            .filter_map(|l| unsafe { tcb::lend_io_lock(l) })
            .collect()
    });
    switch_thread(me, yielder);
    for lock in lent {
        // SAFETY: lent above; the stream is still locked by this thread's count.
        while !unsafe { tcb::retake_io_lock(&lock) } {
            // Another thread entered the stream meanwhile: let it finish.
            with(|s| {
                let alone = s.alone();
                s.threads[me as usize].word.yielded(alone);
                s.enqueue(me, Queue::Run);
            });
            switch_thread(me, yielder);
        }
    }
}

/// The current thread holds (`held`) or released one level of a glibc stdio lock.
pub fn stdio_lock(lock: usize, held: bool) {
    with(|s| {
        let locks = &mut s.running().stdio_locks;
        if held {
            locks.push(lock);
        } else if let Some(i) = locks.iter().rposition(|&l| l == lock) {
            locks.swap_remove(i);
        }
    })
}

/// Switches the current thread `me`, whose coroutine's yielder is `yielder`, to the run
/// loop (see [`switch_out`]).
pub(super) fn switch_thread(me: ThreadId, yielder: *const Yielder<(), Suspend>) {
    if me == MAIN {
        // SAFETY: MAIN runs on this OS thread, which alone writes its record's
        // `loop_context` (its loop stored it as it dispatched MAIN).
        let worker_loop = unsafe { (*running_worker()).loop_context };
        if worker_loop != 0 {
            // SAFETY: the loop's context was stored as it switched to MAIN and nothing
            // resumed it since; MAIN's is stored before any worker may dispatch MAIN
            // (the section that noted MAIN away comes after this switch, see `main_back`).
            unsafe { context::switch(MAIN_CONTEXT.as_ptr(), worker_loop) };
        } else if run_loop(true) {
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

/// Switches away from a thread that stays ready (a yield, a step aside: `prepare` queues
/// it, see [`switch_out`]), keeping its errno; handlers delivered to it meanwhile run as
/// it resumes.
pub(super) fn switch_keeping_errno(prepare: impl FnOnce(&mut Scheduler, ThreadId) -> bool) {
    let saved = errno::get();
    if !switch_out(prepare) {
        return;
    }
    errno::set(saved);
    if resumed().handlers_due {
        run_due_handlers();
    }
}

/// What the current thread, just switched back in, finds as it resumes (noted by the
/// section that dispatched it: nothing else ran on this OS thread since but signal
/// handlers, which leave it alone).
pub(super) fn resumed() -> Resumed {
    let worker = running_worker();
    // SAFETY: the current thread runs a scheduler (it just switched), its worker record
    // is never freed and only this OS thread writes it, in sections; none is open here.
    unsafe { std::ptr::addr_of!((*worker).resumed).read() }
}

impl Scheduler {
    fn next_step(&mut self, wait: &mut Option<Idle>) -> Step {
        self.w().in_loop = true;
        loop {
            // Every several-worker step behind one predictable branch.
            if self.all_workers.len() > 1 {
                if let Some(spare) = self.surplus() {
                    self.switch_home();
                    *wait = Some(spare);
                    return Step::Idle;
                }
            }
            if super::snapshot::pending() {
                self.answer_request(None);
            }
            if self.w().dispatches_since_poll >= POLL_EVERY {
                self.poll_io(Some(Duration::ZERO));
            }
            let main_ok = self.w().runs_main;
            if let Some(tid) = self.pop_ready(main_ok) {
                // The thread's record read and written under one borrow (one bounds
                // check), the worker's after it.
                let t = &mut self.threads[tid as usize];
                let wake = t.word.dispatched();
                let mask = t.sigmask;
                let timed = std::mem::take(&mut t.timed_wait);
                let resumed = Resumed {
                    wake,
                    handlers_due: t.has_handlers_due(),
                    due_restart: t.due_restart,
                };
                let co = (tid != MAIN).then(|| (t.co.take(), t.name, t.stack, t.stack_kind));
                if timed {
                    // Saturating: a fork (in a signal handler) during its park reset the
                    // count.
                    self.timed_waits = self.timed_waits.saturating_sub(1);
                }
                let w = self.w();
                w.watch.dispatched();
                w.dispatches_since_poll += 1;
                w.unparked_calls = 0;
                w.slice_start = None;
                w.current = tid;
                w.in_loop = false;
                w.resumed = resumed;
                let Some((co, name, stack, kind)) = co else {
                    self.switch_tcb(tid);
                    self.apply_mask(mask);
                    return Step::Main;
                };
                w.running_stack.entering(&name, stack, kind);
                self.stats.context_switches += 1;
                self.prefetch_next();
                self.switch_tcb(tid);
                self.apply_mask(mask);
                return Step::Run(tid, co.expect("a ready coroutine has its coroutine"));
            }
            // Nothing to dispatch: with several workers the loop waits on the worker's own
            // TCB, not on that of the thread it ran last, which another worker may
            // dispatch once this section ends (see `after_resume`).
            if self.all_workers.len() > 1 {
                self.switch_home();
            }
            let first = self.w().index == 0;
            if self.main_exited && self.live == 0 {
                // In a child forked by a green thread, the process ends here (the
                // forking thread's TCB is the child's own).
                if self.main_gone {
                    return Step::AllExited;
                }
                // Else in MAIN, on its TCB, where it exited: once its switch away is
                // complete, on whichever worker sees it first.
                let main_here = if self.main_moves {
                    let alone = self.alone();
                    self.threads[MAIN as usize].word.claimed(alone)
                } else {
                    first
                };
                if main_here {
                    self.switch_tcb(MAIN);
                    return Step::Main;
                }
            }
            let deadline = self.timers.next_deadline();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // While everyone waits, a signal is deliverable if any thread accepts it: at the
            // first worker only, so that it is pending, not taken, while the program's
            // thread that unblocks it runs elsewhere (another idle worker's mask would be
            // out of date once that thread changes its own).
            let idle_mask = if first {
                self.idle_mask()
            } else {
                // A signal queued to this OS thread (a `pthread_kill` marked for its target
                // by a sender that blocks it) comes in first: only this thread can take it.
                self.release_stuck_signals();
                super::signals::ALL_BLOCKED
            };
            self.apply_mask(idle_mask);
            if self.all_workers.len() > 1 {
                *wait = Some(self.go_idle(deadline, timeout));
                return Step::Idle;
            }
            self.w().watch.idle(true);
            self.poll_io(timeout);
            self.w().watch.idle(false);
        }
    }

    /// Starts bringing into the cache, while the thread dispatched now runs, what the
    /// dispatches after it will touch: for the thread next in line its coroutine, the top
    /// of its stack and its TCB's busy lines, and the record of the one after it (read
    /// here at the next dispatch). A thread-per-connection server's ready threads each
    /// find them cold: a thousand threads' records, stacks and TCBs outgrow the caches
    /// between two turns. Only while two threads or more wait: threads that take turns
    /// one at a time (a ping-pong pair) find their lines still cached, and would pay the
    /// prefetches for nothing.
    #[inline(always)]
    fn prefetch_next(&mut self) {
        let next = self.w().next;
        let queued = &self.w().queue;
        let (first, second) = match next {
            Some(tid) => (Some(tid), queued.front().copied()),
            None => (queued.front().copied(), queued.get(1).copied()),
        };
        let (Some(first), Some(second)) = (first, second) else {
            return;
        };
        if first != MAIN {
            let t = &self.threads[first as usize];
            if let Some(co) = t.co.as_deref() {
                prefetch(std::ptr::from_ref(co) as usize);
            }
            // 0 before its first run: the lines prefetched are then nobody's.
            let low = t.saved_registers[1].wrapping_sub(STACK_LINES * 32);
            for offset in (0..STACK_LINES).map(|l| l * 64) {
                prefetch(low.wrapping_add(offset));
            }
            if t.tcb != 0 {
                // libc's TLS (errno) just below the thread pointer, and tcbhead_t.
                for offset in [-128, -64, 0, 64] {
                    prefetch(t.tcb.wrapping_add_signed(offset));
                }
            }
        }
        let record = std::ptr::from_ref(&self.threads[second as usize]) as usize;
        for offset in (0..std::mem::size_of::<super::thread::Thread>()).step_by(64) {
            prefetch(record + offset);
        }
    }

    /// MAIN, dispatched by this worker's loop, switched back to it: it may run on another
    /// worker now, queued as it asked while it was on its way out (as a coroutine's
    /// thread is in [`Scheduler::after_resume`]).
    fn main_back(&mut self) {
        self.switch_home();
        let alone = self.alone();
        let t = &mut self.threads[MAIN as usize];
        t.ran_on = running_worker();
        if let Some(queue) = t.word.back(alone) {
            self.enqueue(MAIN, queue);
        }
    }

    fn after_resume(
        &mut self,
        tid: ThreadId,
        mut co: Box<Co>,
        result: CoroutineResult<Suspend, usize>,
    ) {
        let w = self.w();
        w.current = MAIN;
        w.running_stack.left();
        // The loop stays on the thread's TCB, which names this worker: the dispatch that
        // ends this section switches straight to the next thread's, and every other way
        // out of it goes back to the worker's own first (see `next_step`). Until the
        // section ends no other worker may dispatch the thread (and name itself in its
        // TCB) or reuse its block.
        if self.all_workers.len() > 1 {
            self.threads[tid as usize].ran_on = running_worker();
        }
        let alone = self.alone();
        let t = &mut self.threads[tid as usize];
        t.check_gap();
        let retval = match result {
            CoroutineResult::Yield(Suspend::Park) => {
                t.co = Some(co);
                if let Some(queue) = t.word.back(alone) {
                    self.enqueue(tid, queue);
                }
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
        // Its TCB goes back to the pool, where another worker may take it once this
        // section ends: the loop leaves it first.
        if self.all_workers.len() > 1 {
            self.switch_home();
        }
        self.stacks.free(co.into_stack());
        self.finish(tid, retval);
    }
}
