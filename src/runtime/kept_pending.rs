//! The program's own instances of the preemption signal (SIGURG) that wait, pending, for
//! a thread that blocks it.
//!
//! greenify keeps SIGURG open on every worker OS thread whatever the running green
//! thread's mask (see sched::kept_open), so the kernel never keeps the program's SIGURG
//! pending: it always runs greenify's handler, on whichever OS thread it chose. An
//! instance that no thread may take now is kept here instead, where every worker sees it
//! (an OS thread's own queue is seen only by the green thread that runs there next):
//! - sent to a green thread (pthread_kill) that blocks it: pending on that thread;
//! - sent to the process while every thread blocks it: pending on the process.
//!
//! Where no thread's mask can be read (a handler that interrupted a scheduler section or
//! greenify's own code), the instance waits unsettled until the scheduler says whose it
//! is.
//!
//! Each owner has at most one (SIGURG is a standard signal: a second instance while one
//! is pending is dropped, as natively), with its siginfo. `sigpending` shows, and the
//! sigwait family takes, the calling thread's own or else the process's; a thread that
//! unblocks SIGURG takes one and has it delivered at once.
//!
//! Parking runs in the signal handler: a fixed table, no allocation, no lock. A slot's
//! word says whose it is and whether its siginfo is complete:
//! `FREE` -> owner | `BUSY` (claimed, the siginfo being written) -> owner (complete)
//! -> owner | `BUSY` (being taken, the siginfo being read) -> `FREE`.

use libc::siginfo_t;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// Whose a pending instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The green thread with this id.
    Thread(u32),
    /// The process: the first thread to take or unblock it.
    Process,
    /// Not known yet: caught where no thread's mask could be read, sent to this thread
    /// (None: to the process). No one takes it until the scheduler [`settle`]s it.
    Unsettled(Option<u32>),
}

impl Owner {
    const fn key(self) -> u64 {
        let (kind, tid) = match self {
            Owner::Thread(tid) => (1, tid),
            Owner::Process => (2, 0),
            Owner::Unsettled(Some(tid)) => (3, tid),
            Owner::Unsettled(None) => (4, 0),
        };
        kind << 32 | tid as u64
    }
}

const FREE: u64 = 0;
const BUSY: u64 = 1 << 63;
const PROCESS: u64 = Owner::Process.key();
/// Owners with an instance pending at once (threads that block SIGURG and were sent one,
/// and the process); a send beyond is left to the caller (see [`park`]).
const SLOTS: usize = 32;

struct Slots {
    words: [AtomicU64; SLOTS],
    infos: [UnsafeCell<MaybeUninit<siginfo_t>>; SLOTS],
}

// SAFETY: a slot's siginfo is written only by whoever moved its word FREE -> BUSY, and read
// only by whoever moved it owner -> owner | BUSY; no one else touches it meanwhile.
unsafe impl Sync for Slots {}

/// Slots not FREE: [`any`] in one load.
static TAKEN: AtomicU32 = AtomicU32::new(0);

static SLOTS_TABLE: Slots = Slots {
    words: [const { AtomicU64::new(FREE) }; SLOTS],
    infos: [const { UnsafeCell::new(MaybeUninit::uninit()) }; SLOTS],
};

/// Keeps `info` pending for `owner`; one already pending for it keeps its own (the new one
/// merges with it). False if the table is full: the caller keeps the signal otherwise.
/// Async-signal-safe.
pub fn park(owner: Owner, info: &siginfo_t) -> bool {
    let key = owner.key();
    let table = &SLOTS_TABLE;
    if find(key).is_some() {
        return true;
    }
    let Some(i) = (0..SLOTS).find(|&i| {
        table.words[i]
            .compare_exchange(FREE, key | BUSY, SeqCst, SeqCst)
            .is_ok()
    }) else {
        return false;
    };
    TAKEN.fetch_add(1, SeqCst);
    // Two handlers (on two workers) parking for the same owner at once: the lower slot
    // keeps it, as one instance.
    if (0..i).any(|j| table.words[j].load(SeqCst) & !BUSY == key) {
        free(i);
        return true;
    }
    // SAFETY: this slot is ours (FREE -> BUSY above) until its word is stored.
    unsafe { (*table.infos[i].get()).write(*info) };
    table.words[i].store(key, SeqCst);
    true
}

/// The slot of `key`'s pending instance (complete or being written or taken).
fn find(key: u64) -> Option<usize> {
    (0..SLOTS).find(|&i| SLOTS_TABLE.words[i].load(SeqCst) & !BUSY == key)
}

fn free(i: usize) {
    SLOTS_TABLE.words[i].store(FREE, SeqCst);
    TAKEN.fetch_sub(1, SeqCst);
}

/// Whether any instance may be pending (one load: read at every mask change).
pub fn any() -> bool {
    TAKEN.load(SeqCst) != 0
}

/// Whether green thread `tid` has an instance pending: its own, or the process's.
pub fn pending_for(tid: u32) -> bool {
    any() && (find(Owner::Thread(tid).key()).is_some() || find(PROCESS).is_some())
}

/// Takes the instance pending for green thread `tid`: its own first, as the kernel serves
/// a thread's queue before the process's, else the process's.
pub fn take_for(tid: u32) -> Option<siginfo_t> {
    if !any() {
        return None;
    }
    take(Owner::Thread(tid).key()).or_else(|| take(PROCESS))
}

fn take(key: u64) -> Option<siginfo_t> {
    let i = find(key)?;
    let word = &SLOTS_TABLE.words[i];
    // Only a complete one; one still being written is not pending yet.
    word.compare_exchange(key, key | BUSY, SeqCst, SeqCst)
        .ok()?;
    // SAFETY: complete (its word was `key`), and ours (key -> key | BUSY above).
    let info = unsafe { (*SLOTS_TABLE.infos[i].get()).assume_init_read() };
    free(i);
    Some(info)
}

/// The scheduler saw who takes the instance caught for `target` (see
/// [`Owner::Unsettled`]): it becomes `owner`'s, or goes (None: a thread that accepts it
/// took it, and its action ignores it). False if there was none.
pub fn settle(target: Option<u32>, owner: Option<Owner>) -> bool {
    let Some(info) = take(Owner::Unsettled(target).key()) else {
        return false;
    };
    if let Some(owner) = owner {
        park(owner, &info);
    }
    true
}

/// Green thread `tid` ended: what was pending on it goes with it (its id is reused).
/// Nothing pending: one load, where the look through every slot cost a create+join pair
/// ~160 instructions.
pub fn thread_ended(tid: u32) {
    if !any() {
        return;
    }
    let key = Owner::Thread(tid).key();
    while take(key).is_some() {}
}

/// In a forked child: nothing is pending (the kernel drops pending signals at fork).
/// Only words not FREE are written: a write to the table's page cost each fork's child a
/// page fault.
pub fn after_fork() {
    for word in &SLOTS_TABLE.words {
        if word.load(SeqCst) != FREE {
            word.store(FREE, SeqCst);
        }
    }
    TAKEN.store(0, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(code: i32) -> siginfo_t {
        // SAFETY: an all-zero siginfo is a valid value.
        let mut info: siginfo_t = unsafe { std::mem::zeroed() };
        info.si_signo = libc::SIGURG;
        info.si_code = code;
        info
    }

    #[test]
    fn pending_instances_merge_per_owner_and_a_thread_takes_its_own_first() {
        assert!(park(Owner::Process, &info(1)));
        assert!(park(Owner::Process, &info(2)), "merged");
        assert!(park(Owner::Thread(7), &info(3)));
        assert!(
            pending_for(7) && pending_for(8),
            "the process's is everyone's"
        );
        assert_eq!(take_for(7).map(|i| i.si_code), Some(3));
        assert_eq!(
            take_for(8).map(|i| i.si_code),
            Some(1),
            "the first one kept"
        );
        assert!(!pending_for(7) && take_for(7).is_none());
        assert!(park(Owner::Thread(9), &info(4)));
        thread_ended(9);
        assert!(!any());
        assert!(park(Owner::Unsettled(None), &info(5)));
        assert!(!pending_for(7), "nobody's yet");
        assert!(settle(None, Some(Owner::Thread(7))) && !settle(None, None));
        assert_eq!(take_for(7).map(|i| i.si_code), Some(5));
        assert!(!any());
    }
}
