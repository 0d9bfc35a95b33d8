//! Parking green threads by address (the green futex): wait on a word, wake its
//! sleepers, and answer the doorbell rung by wakers on other OS threads.

use super::park::{acts_on_cancel, park_as, park_if, Interrupts};
use super::{with, Scheduler};
use crate::runtime::futex;
use crate::runtime::wait::{Reason, Wake};
use std::time::Instant;

/// Parks the current thread on `addr` if `still_waiting()` (checked atomically with
/// respect to green wakers) says so; returns Ready at once otherwise. Inlined into its
/// callers (a wrapper's call and saved registers were a sixth of a park).
#[inline(always)]
pub fn futex_wait(
    addr: usize,
    still_waiting: impl FnOnce() -> bool,
    reason: Reason,
    deadline: Option<Instant>,
    interrupts: Interrupts,
) -> Wake {
    // Counted before the check, so that a waker on another OS thread that changes the word
    // after our check is sure to see us (see futex.rs).
    futex::green_sleeper_added();
    let wake = if acts_on_cancel(reason, interrupts) {
        cancellable_futex_wait(addr, still_waiting, reason, deadline, interrupts)
    } else {
        // One section checks, registers and parks.
        park_if(reason, deadline, interrupts, |s| {
            s.futex_enqueue(addr, still_waiting, false)
        })
        .unwrap_or(Wake::Ready)
    };
    futex::green_sleeper_gone();
    wake
}

/// A futex wait that is a cancellation point: it acts on a cancel request before it
/// parks, but only once it knows it will (as natively, a wait that is over at once does
/// not).
#[inline(never)]
fn cancellable_futex_wait(
    addr: usize,
    still_waiting: impl FnOnce() -> bool,
    reason: Reason,
    deadline: Option<Instant>,
    interrupts: Interrupts,
) -> Wake {
    if with(|s| s.futex_enqueue(addr, still_waiting, true)) {
        park_as(reason, deadline, interrupts)
    } else {
        Wake::Ready
    }
}

/// Wakes up to `n` green threads parked on `addr`, oldest first; returns how many.
pub fn futex_wake(addr: usize, n: usize) -> usize {
    with(|s| s.futex_wake(addr, n))
}

impl Scheduler {
    /// Queues the current thread on `addr` if `still_waiting()` says so (and says whether
    /// it did); `ahead`: it parks in a later section (see [`Scheduler::register_ahead`]).
    /// Inlined into both callers: out of line, a park took 8 more instructions.
    #[inline(always)]
    pub(super) fn futex_enqueue(
        &mut self,
        addr: usize,
        still_waiting: impl FnOnce() -> bool,
        ahead: bool,
    ) -> bool {
        if !still_waiting() {
            return false;
        }
        let key = if ahead {
            self.register_ahead()
        } else {
            self.key(self.current())
        };
        let threads = &self.threads;
        self.futex
            .push(addr, key, |k| Scheduler::is_waiting(threads, k));
        true
    }

    /// Wakes every green sleeper of the addresses posted from outside this thread.
    pub(super) fn answer_doorbell(&mut self) {
        let mailbox = self.mailbox;
        if mailbox.take(|addr| {
            self.futex_wake(addr, usize::MAX);
        }) {
            for addr in self.futex.addresses() {
                self.futex_wake(addr, usize::MAX);
            }
        }
    }

    pub(super) fn futex_wake(&mut self, addr: usize, n: usize) -> usize {
        if n == 1 {
            // A mutex's hand-off or a signal: no list of the woken to borrow and give back.
            let mut woken = None;
            let threads = &self.threads;
            let count = self.futex.pop(
                addr,
                1,
                |k| Scheduler::is_waiting(threads, k),
                |k| woken = Some(k),
            );
            if let Some(key) = woken {
                self.ready(key, Wake::Ready);
            }
            return count;
        }
        let mut woken = std::mem::take(&mut self.woken);
        let threads = &self.threads;
        let count = self.futex.pop(
            addr,
            n,
            |k| Scheduler::is_waiting(threads, k),
            |k| woken.push(k),
        );
        for key in woken.drain(..) {
            self.ready(key, Wake::Ready);
        }
        self.woken = woken;
        count
    }
}
