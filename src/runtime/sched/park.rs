//! Parking the current thread until its wait key is woken, a deadline passes, a signal
//! handler or a cancel request interrupts it: the one place a thread parks.

use super::cancel::cancellation_point;
use super::run::switch_out;
use super::signals::run_due_handlers;
use super::thread::State;
use super::with;
use crate::runtime::wait::{Reason, WaitKey, Wake};
use crate::runtime::{errno, interrupt};
use std::time::Instant;

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

pub(super) fn park_as(reason: Reason, deadline: Option<Instant>, interrupts: Interrupts) -> Wake {
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
        s.note_park(reason);
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
        let due = t.has_handlers_due();
        // Handlers that run as this wait ends came during the call (the ones due before
        // it ran at its start), and a signal whose handler runs during a call the kernel
        // would wait in ends it: also when it came between two parks of the call, or
        // after this park was woken but before the thread ran again.
        let wake = match t.wake {
            Wake::Interrupted { .. } => t.wake,
            _ if interruptible && due => Wake::Interrupted {
                restart: t.due_restart,
            },
            wake => wake,
        };
        (wake, due)
    });
    if acts_here {
        cancellation_point();
    }
    if handlers_due {
        run_due_handlers();
    }
    wake
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
