//! The watchdog's deadlock report (GREENIFY_WATCHDOG): a green thread about to wait,
//! without a deadline, for a mutex or for a thread to exit, follows the chain of whom it
//! waits for (the mutex's owner, the joined thread) through threads that are parked in
//! such waits themselves. When the chain comes back to it, no thread of the cycle can
//! ever run again: the cycle goes to the watchdog, whose monitor thread reports it.
//!
//! Each thread notes what it waits for (and its stack pointer there, for the report)
//! under its wait sequence, so a note left by a wait that ended in any way (woken,
//! cancelled, a handler that jumped out) never counts: a wake bumps the sequence; a
//! mutex wait that ends without a park clears its note. A cycle is found once, by the
//! wait that closes it (the other waits of the cycle found a thread still running at
//! theirs). Only pthread mutexes of this process and joins carry whom they wait for;
//! condition variables, semaphores, rwlocks and futexes do not, so cycles through them
//! are not seen.

use super::state::State;
use super::{with, Scheduler};
use crate::runtime::sync::GREEN_OWNER_BASE;
use crate::runtime::wait::ThreadId;
use crate::runtime::watchdog::{self, Waiter, CYCLE};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// What a parked thread waits for, as far as a deadlock is concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Blocker {
    Nothing,
    /// A mutex (its address): its owner may release it.
    Mutex(usize),
    /// A thread's exit.
    Join(ThreadId),
}

/// What a thread noted it waits for: valid while its wait sequence is `seq`. With its
/// stack pointer at the note, which stays below its callers' frames for the whole wait:
/// its registers saved at its last switch are of an earlier wait while it runs between
/// its note and its park, where the wait that closes a cycle on another worker may find
/// it (MAIN, never switched out before, was then reported "in ?").
#[derive(Clone, Copy, Debug)]
pub(super) struct Note {
    pub(super) on: Blocker,
    pub(super) seq: u32,
    pub(super) sp: usize,
}

impl Note {
    pub(super) const NOTHING: Note = Note {
        on: Blocker::Nothing,
        seq: 0,
        sp: 0,
    };
}

/// The current green thread is about to wait for the mutex at `mutex` without a deadline
/// (only with the watchdog on: see [`watchdog::watching_locks`]).
pub fn waits_for_mutex(mutex: usize) {
    with(|s| s.waits_for(Blocker::Mutex(mutex)));
}

/// The current green thread has the mutex it noted: a wait that ended without a park
/// (another OS thread released it meanwhile) left its note valid.
pub fn mutex_taken() {
    with(|s| {
        let me = s.current();
        s.threads[me as usize].blocked = Note::NOTHING;
    });
}

impl Scheduler {
    /// Notes what the current thread will wait for in its next park, and reports the
    /// cycle that wait closes, if any.
    pub(super) fn waits_for(&mut self, on: Blocker) {
        let me = self.current();
        let sp = super::snapshot::registers_here()[1];
        let t = &mut self.threads[me as usize];
        t.blocked = Note {
            on,
            seq: t.word.load().seq(),
            sp,
        };
        let mut cycle = [Waiter::default(); CYCLE];
        cycle[0] = self.waiter(me, on, sp);
        let mut len = 1;
        let mut next = self.holder(on);
        while let Some(at) = next {
            if at == me {
                watchdog::deadlock(&cycle[..len]);
                return;
            }
            let t = &self.threads[at as usize];
            let Note {
                on: blocker,
                seq,
                sp,
            } = t.blocked;
            // Parked, or running between its note and its park (on another worker: its
            // check ran before this thread's note, so this one closes the cycle).
            let word = t.word.load();
            let waiting =
                matches!(word.state(), State::Parked | State::Running) && seq == word.seq();
            if !waiting || len == CYCLE {
                return;
            }
            cycle[len] = self.waiter(at, blocker, sp);
            len += 1;
            next = self.holder(blocker);
        }
    }

    /// The live thread that `on` waits for.
    fn holder(&self, on: Blocker) -> Option<ThreadId> {
        match on {
            Blocker::Nothing => None,
            Blocker::Join(tid) => Some(tid),
            Blocker::Mutex(addr) => {
                // SAFETY: a thread waits for this mutex just now (the current one, or one
                // whose note is of its current park), so the program keeps it alive; its
                // owner word is an aligned i32 that lock and unlock change atomically.
                let owner = unsafe { &*((addr + MUTEX_OWNER) as *const AtomicI32) };
                self.green_owner(owner.load(Relaxed))
            }
        }
    }

    /// The live green thread whose lock owner identity is `owner` (runtime/sync: a green
    /// thread's index above GREEN_OWNER_BASE; other owners are not green threads).
    pub(super) fn green_owner(&self, owner: i32) -> Option<ThreadId> {
        if owner & GREEN_OWNER_BASE == 0 {
            return None;
        }
        let id = (owner & !GREEN_OWNER_BASE) as ThreadId;
        self.threads.get(id as usize)?.is_live().then_some(id)
    }

    fn waiter(&self, id: ThreadId, on: Blocker, sp: usize) -> Waiter {
        let t = &self.threads[id as usize];
        let mutex = match on {
            Blocker::Mutex(addr) => addr,
            Blocker::Join(_) | Blocker::Nothing => 0,
        };
        Waiter {
            tid: t.identity.tid,
            name: t.name,
            mutex,
            sp,
        }
    }
}

/// Where glibc's mutex keeps its owner: the word 8 bytes past the lock word.
pub(super) const MUTEX_OWNER: usize = 8;
