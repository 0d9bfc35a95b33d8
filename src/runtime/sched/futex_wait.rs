//! Parking green threads by address (the green futex): wait on a word, wake its
//! sleepers, and answer the doorbell rung by wakers on other OS threads.

use super::park::{acts_on_cancel, park_as, park_if, Interrupts};
use super::state::Woken;
use super::table::Threads;
use super::{with, Queue, Scheduler};
use crate::runtime::futex;
use crate::runtime::wait::{Reason, WaitKey, Wake};
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

    /// Each wait ends in the pop that finds it still on (one look at the thread's
    /// state word), the threads parked in them queued after.
    pub(super) fn futex_wake(&mut self, addr: usize, n: usize) -> usize {
        let alone = self.alone();
        let threads = &self.threads;
        if n == 1 {
            // A mutex's hand-off or a signal: no list of the woken to borrow and give back.
            let mut parked = None;
            let count = self.futex.pop(addr, 1, |k| {
                end_wait(threads, alone, k, |k| parked = Some(k.tid))
            });
            if let Some(tid) = parked {
                self.enqueue(tid, Queue::Next);
            }
            return count;
        }
        let mut parked = std::mem::take(&mut self.woken);
        let count = self
            .futex
            .pop(addr, n, |k| end_wait(threads, alone, k, |k| parked.push(k)));
        for key in parked.drain(..) {
            self.enqueue(key.tid, Queue::Next);
        }
        self.woken = parked;
        count
    }
}

/// Ends the wait of `key` if it is still on, as `Scheduler::ready` does, for a caller
/// that holds the thread table: whether it did; `parked` is given the key if the thread
/// was parked in it, to be queued once the table is free.
#[inline(always)]
fn end_wait(threads: &Threads, alone: bool, key: WaitKey, mut parked: impl FnMut(WaitKey)) -> bool {
    let woken = threads[key.tid as usize]
        .word
        .woken(alone, key.seq, Wake::Ready);
    if woken == Woken::Ready {
        parked(key);
    }
    woken != Woken::Stale
}
