//! Parking the current thread until its wait key is woken, a deadline passes, a signal
//! handler or a cancel request interrupts it: the one place a thread parks.

use super::cancel::cancellation_point;
use super::run::{resumed, switch_out};
use super::signals::run_due_handlers;
use super::worker::Resumed;
use super::{with, Scheduler};
use crate::runtime::wait::{Reason, WaitKey, Wake};
use crate::runtime::{errno, interrupt};
use std::time::Instant;

/// The wait key the current thread will park under.
pub fn current_key() -> WaitKey {
    with(|s| s.key(s.current()))
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
    park_if(reason, deadline, interrupts, |_| true).unwrap_or(Wake::Ready)
}

/// Whether a park for `reason` is a cancellation point that acts on a request itself,
/// before and after it waits.
pub(super) fn acts_on_cancel(reason: Reason, interrupts: Interrupts) -> bool {
    let cancellable = interrupts != Interrupts::Nothing || reason == Reason::Join;
    cancellable && interrupts != Interrupts::Cancel
}

/// Parks as [`park_as`] does if `still_waits`, run in the section that parks, says so
/// (it may also register the thread where its waker will look); None at once otherwise,
/// or at once the wake that came before it parked (see `Scheduler::ready`).
/// Out of line: each caller's copy would be a few kilobytes.
#[inline(never)]
pub(super) fn park_if(
    reason: Reason,
    deadline: Option<Instant>,
    interrupts: Interrupts,
    still_waits: impl FnOnce(&mut Scheduler) -> bool,
) -> Option<Wake> {
    // Waiting calls are cancellation points (lock waits excepted).
    let interruptible = interrupts == Interrupts::Signals;
    let cancellable = interrupts != Interrupts::Nothing || reason == Reason::Join;
    let acts_here = acts_on_cancel(reason, interrupts);
    if acts_here {
        cancellation_point();
    }
    let saved = errno::get();
    let mut early = None;
    let mut gathered_away = false;
    let parked = switch_out(|s, me| {
        let alone = s.alone();
        early = s.threads[me as usize].word.take_owed(alone);
        if early.is_some() || !still_waits(s) {
            gathered_away = !alone && s.gathered();
            return false;
        }
        // The record's own fields first, under one borrow (each borrow re-checks the
        // index).
        let t = &mut s.threads[me as usize];
        if let Err(wake) = t.word.parked(alone) {
            // Woken as `still_waits` registered it (by another worker).
            early = Some(wake);
            gathered_away = !alone && s.gathered();
            return false;
        }
        t.interruptible = interruptible;
        t.cancellable = cancellable;
        if interruptible {
            t.parked_at = interrupt::next_park();
        }
        t.timed_wait = deadline.is_some();
        t.note_wait_after_wake();
        s.stats.parks[reason as usize] += 1;
        s.note_park(me, reason);
        if let Some(deadline) = deadline {
            let key = s.key(me);
            s.timers.arm(deadline, key);
            s.timer_armed(deadline);
            s.timed_waits += 1;
        }
        true
    });
    if !parked {
        if gathered_away {
            super::slice::leave_gathered_worker();
        }
        return early;
    }
    errno::set(saved);
    let Resumed {
        wake,
        mut handlers_due,
        mut due_restart,
    } = resumed();
    if interruptible && !handlers_due {
        // A signal handled between its dispatch and now (the note is the dispatch's)
        // ends this wait too.
        (handlers_due, due_restart) = with(|s| {
            let t = s.running();
            (t.has_handlers_due(), t.due_restart)
        });
    }
    // Handlers that run as this wait ends came during the call (the ones due before it
    // ran at its start), and a signal whose handler runs during a call the kernel would
    // wait in ends it: also when it came between two parks of the call, or after this
    // park was woken but before the thread ran again.
    let wake = match wake {
        Wake::Interrupted { .. } => wake,
        _ if interruptible && handlers_due => Wake::Interrupted {
            restart: due_restart,
        },
        wake => wake,
    };
    if acts_here {
        cancellation_point();
    }
    if handlers_due {
        run_due_handlers();
    }
    Some(wake)
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
