//! The program's own instances of signals that wait, pending, for a thread that
//! blocks them, where every worker sees them (an OS thread's own kernel queue is seen only
//! by the green thread that runs there next, and a green thread moves between workers).
//!
//! Two kinds come here:
//! - a signal the program sends one of its green threads (pthread_kill, tgkill) that the
//!   target blocks: the sender's OS thread is not the target's, so the kernel's queue of
//!   it is the wrong place (see sched::keep_for_blocking);
//! - the preemption signal (SIGURG), which greenify keeps open on every worker OS thread
//!   whatever the running green thread's mask (see sched::kept_open), so the kernel never
//!   keeps the program's SIGURG pending: it always runs greenify's handler, on whichever
//!   OS thread it chose. An instance sent to a green thread that blocks it is pending on
//!   that thread; one sent to the process while every thread blocks it, on the process.
//!   Where no thread's mask can be read (a handler that interrupted a scheduler section
//!   or greenify's own code), the instance waits unsettled until the scheduler says whose
//!   it is.
//!
//! Each owner has at most one of each standard signal (a second instance while one is
//! pending is dropped, as natively), and the instances of a real-time signal in the order
//! they came (each with a sequence number), with their siginfo. `sigpending` shows, and the
//! sigwait family takes, the calling thread's own or else the process's; a thread that
//! unblocks a signal takes one and has it delivered at once.
//!
//! Parking may run in a signal handler: a table of chunks, which grows only where a
//! signal is sent through a hook ([`reserve`]), no allocation, no lock. A slot's
//! word says whose it is, of which signal, and whether its siginfo is complete:
//! `FREE` -> key | `BUSY` (claimed, the siginfo being written) -> key (complete)
//! -> key | `BUSY` (being taken, the siginfo being read) -> `FREE`.

use libc::siginfo_t;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst,
};

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
    /// The key of this owner's instance of `sig`: the signal above the owner.
    const fn key(self, sig: u32) -> u64 {
        let (kind, tid) = match self {
            Owner::Thread(tid) => (1, tid),
            Owner::Process => (2, 0),
            Owner::Unsettled(Some(tid)) => (3, tid),
            Owner::Unsettled(None) => (4, 0),
        };
        (sig as u64) << SIG_SHIFT | kind << 32 | tid as u64
    }
}

const FREE: u64 = 0;
const BUSY: u64 = 1 << 63;
/// A word's fields, from the bottom: the green thread's id (32 bits), the owner's kind (3),
/// the signal (7), a real-time instance's sequence number (21), BUSY.
const SIG_SHIFT: u32 = 35;
/// A key's owner part.
const OWNER_BITS: u64 = (1 << SIG_SHIFT) - 1;
/// A real-time instance's sequence number, above the key (0 for a standard signal's): its
/// window (2M) is far wider than the table, so the oldest is always told apart.
const SEQ_SHIFT: u32 = 42;
const SEQ_MASK: u64 = (1 << 21) - 1;
/// A word's key: owner and signal, without the sequence number and BUSY.
const KEY_BITS: u64 = (1 << SEQ_SHIFT) - 1;
/// The next real-time instance's sequence number.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// Slots in a chunk of the table: the first is all a program that keeps few pending
/// looks through (a look reads every slot's word).
const CHUNK: usize = 32;
/// Chunks at most: 65,536 instances pending at once (of every owner and signal); a send
/// beyond is left to the caller (see [`park`]).
const CHUNKS: usize = 2048;
/// Free slots [`reserve`] keeps ahead of the instances pending, for those parked where
/// nothing may allocate (a signal handler, a scheduler section).
const HEADROOM: usize = CHUNK / 2;

struct Slots {
    words: [AtomicU64; CHUNK],
    infos: [UnsafeCell<MaybeUninit<siginfo_t>>; CHUNK],
}

// SAFETY: a slot's siginfo is written only by whoever moved its word FREE -> BUSY, and read
// only by whoever moved it owner -> owner | BUSY; no one else touches it meanwhile.
unsafe impl Sync for Slots {}

impl Slots {
    const fn empty() -> Slots {
        Slots {
            words: [const { AtomicU64::new(FREE) }; CHUNK],
            infos: [const { UnsafeCell::new(MaybeUninit::uninit()) }; CHUNK],
        }
    }
}

/// Slots not FREE: [`any`] in one load.
static TAKEN: AtomicU32 = AtomicU32::new(0);

/// The first chunk, in the library's own memory.
static FIRST: Slots = Slots::empty();

/// The chunks after the first, as [`reserve`] added them (never freed: a slot may be read
/// at any time); the first `GROWN` are set.
static MORE: [AtomicPtr<Slots>; CHUNKS - 1] =
    [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS - 1];
static GROWN: AtomicUsize = AtomicUsize::new(0);
/// Held by the one [`reserve`] that adds a chunk.
static GROWING: AtomicBool = AtomicBool::new(false);

/// Chunk `c` (below `1 + GROWN`).
fn chunk(c: usize) -> &'static Slots {
    if c == 0 {
        return &FIRST;
    }
    // SAFETY: set before GROWN counted it, and never freed.
    unsafe { &*MORE[c - 1].load(SeqCst) }
}

/// Slots in the table now.
fn capacity() -> usize {
    (1 + GROWN.load(SeqCst)) * CHUNK
}

/// Slot `i`'s word and siginfo (`i` below [`capacity`]).
fn slot(
    i: usize,
) -> (
    &'static AtomicU64,
    &'static UnsafeCell<MaybeUninit<siginfo_t>>,
) {
    let c = chunk(i / CHUNK);
    (&c.words[i % CHUNK], &c.infos[i % CHUNK])
}

fn free_slots() -> usize {
    capacity().saturating_sub(TAKEN.load(SeqCst) as usize)
}

/// Every slot's word, with its index.
fn words() -> impl Iterator<Item = (usize, &'static AtomicU64)> {
    (0..=GROWN.load(SeqCst))
        .flat_map(|c| chunk(c).words.iter())
        .enumerate()
}

/// Grows the table where allocating is allowed (a hook that sends a signal, never a
/// handler): keeps [`HEADROOM`] free slots ahead, so that many instances may be pending
/// at once (natively a thread has one of each standard signal, and real-time instances up
/// to RLIMIT_SIGPENDING) without any allocation on the paths that park them.
pub fn reserve() {
    if free_slots() >= HEADROOM || GROWN.load(SeqCst) == CHUNKS - 1 || GROWING.swap(true, SeqCst) {
        return;
    }
    let grown = GROWN.load(SeqCst);
    if free_slots() < HEADROOM && grown < CHUNKS - 1 {
        MORE[grown].store(Box::into_raw(Box::new(Slots::empty())), SeqCst);
        GROWN.store(grown + 1, SeqCst);
    }
    GROWING.store(false, SeqCst);
}

/// Keeps `info` pending for `owner`: a standard signal's merges with one of the same
/// signal already pending for it (which keeps its own), a real-time signal's goes after
/// those pending. False if the table is full: the caller keeps the signal otherwise.
/// Async-signal-safe.
pub fn park(owner: Owner, info: &siginfo_t) -> bool {
    let sig = info.si_signo as u32;
    let key = owner.key(sig);
    let queued = sig >= 32;
    if !queued && find(key).is_some() {
        return true;
    }
    let word = if queued {
        key | (NEXT_SEQ.fetch_add(1, SeqCst) & SEQ_MASK) << SEQ_SHIFT
    } else {
        key
    };
    let Some((i, claimed)) = words().find(|(_, w)| {
        w.compare_exchange(FREE, word | BUSY, SeqCst, SeqCst)
            .is_ok()
    }) else {
        return false;
    };
    TAKEN.fetch_add(1, SeqCst);
    // Two handlers (on two workers) parking a standard signal for the same owner at once:
    // the lower slot keeps it, as one instance.
    if !queued
        && words()
            .take(i)
            .any(|(_, w)| w.load(SeqCst) & KEY_BITS == key)
    {
        free(claimed);
        return true;
    }
    // SAFETY: this slot is ours (FREE -> BUSY above) until its word is stored.
    unsafe { (*slot(i).1.get()).write(*info) };
    claimed.store(word, SeqCst);
    true
}

/// The slot of `key`'s pending instance (complete or being written or taken); of a
/// real-time signal's, the oldest, and its word.
fn find(key: u64) -> Option<(usize, u64)> {
    let next = NEXT_SEQ.load(SeqCst);
    let age = |word: u64| next.wrapping_sub(word >> SEQ_SHIFT) & SEQ_MASK;
    words()
        .map(|(i, w)| (i, w.load(SeqCst)))
        .filter(|&(_, word)| word & KEY_BITS == key)
        // The first of the oldest: a standard signal's second slot is a moment's.
        .min_by_key(|&(_, word)| SEQ_MASK - age(word & !BUSY))
}

fn free(word: &AtomicU64) {
    word.store(FREE, SeqCst);
    TAKEN.fetch_sub(1, SeqCst);
}

/// Whether any instance may be pending (one load: read at every mask change).
pub fn any() -> bool {
    TAKEN.load(SeqCst) != 0
}

/// The signals (kernel sigset bits) pending for `owner`.
fn pending_on(owner: Owner) -> u64 {
    let owner = owner.key(0);
    words().fold(0, |set, (_, word)| {
        let key = word.load(SeqCst) & KEY_BITS;
        let sig = key >> SIG_SHIFT;
        if key != FREE && key & OWNER_BITS == owner && (1..=64).contains(&sig) {
            set | 1 << (sig - 1)
        } else {
            set
        }
    })
}

/// The signals (kernel sigset bits) pending for green thread `tid`: its own and the
/// process's. One load when nothing is pending.
pub fn pending_for(tid: u32) -> u64 {
    if !any() {
        return 0;
    }
    pending_on(Owner::Thread(tid)) | pending_on(Owner::Process)
}

/// Takes the lowest signal of `set` pending for green thread `tid`: of its own first, as
/// the kernel serves a thread's queue before the process's, else of the process's.
pub fn take_for(tid: u32, set: u64) -> Option<siginfo_t> {
    if !any() {
        return None;
    }
    [Owner::Thread(tid), Owner::Process]
        .into_iter()
        .find_map(|owner| take_lowest(owner, set))
}

/// Takes the lowest signal of `set` pending for `owner`.
fn take_lowest(owner: Owner, set: u64) -> Option<siginfo_t> {
    let ready = pending_on(owner) & set;
    (ready != 0)
        .then(|| take(owner.key(ready.trailing_zeros() + 1)))
        .flatten()
}

fn take(key: u64) -> Option<siginfo_t> {
    let (i, seen) = find(key)?;
    let (word, info) = slot(i);
    // Only a complete one; one still being written (or taken) is not pending.
    if seen & BUSY != 0 {
        return None;
    }
    word.compare_exchange(seen, seen | BUSY, SeqCst, SeqCst)
        .ok()?;
    // SAFETY: complete (its word was `seen`), and ours (seen -> seen | BUSY above).
    let info = unsafe { (*info.get()).assume_init_read() };
    free(word);
    Some(info)
}

/// The scheduler saw who takes the instance of `sig` caught for `target` (see
/// [`Owner::Unsettled`]): it becomes `owner`'s, or goes (None: a thread that accepts it
/// took it, and its action ignores it). False if there was none.
pub fn settle(sig: u32, target: Option<u32>, owner: Option<Owner>) -> bool {
    let Some(info) = take(Owner::Unsettled(target).key(sig)) else {
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
    while take_lowest(Owner::Thread(tid), u64::MAX).is_some() {}
}

/// In a forked child: nothing is pending (the kernel drops pending signals at fork).
/// Only words not FREE are written: a write to the table's page cost each fork's child a
/// page fault.
pub fn after_fork() {
    for (_, word) in words() {
        if word.load(SeqCst) != FREE {
            word.store(FREE, SeqCst);
        }
    }
    TAKEN.store(0, SeqCst);
    // A reserve of another thread's stopped at the fork.
    GROWING.store(false, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sig: i32, code: i32) -> siginfo_t {
        // SAFETY: an all-zero siginfo is a valid value.
        let mut info: siginfo_t = unsafe { std::mem::zeroed() };
        info.si_signo = sig;
        info.si_code = code;
        info
    }

    const URG: u64 = 1 << (libc::SIGURG - 1);
    const ALL: u64 = u64::MAX;

    #[test]
    fn pending_instances_merge_per_owner_and_signal_and_a_thread_takes_its_own_first() {
        let urg = |code| info(libc::SIGURG, code);
        assert!(park(Owner::Process, &urg(1)));
        assert!(park(Owner::Process, &urg(2)), "merged");
        assert!(park(Owner::Thread(7), &urg(3)));
        assert!(
            pending_for(7) == URG && pending_for(8) == URG,
            "the process's is everyone's"
        );
        assert_eq!(take_for(7, ALL).map(|i| i.si_code), Some(3));
        assert_eq!(
            take_for(8, ALL).map(|i| i.si_code),
            Some(1),
            "the first one kept"
        );
        assert!(pending_for(7) == 0 && take_for(7, ALL).is_none());
        assert!(park(Owner::Thread(9), &urg(4)));
        thread_ended(9);
        assert!(!any());
        assert!(park(Owner::Unsettled(None), &urg(5)));
        assert_eq!(pending_for(7), 0, "nobody's yet");
        let sig = libc::SIGURG as u32;
        assert!(settle(sig, None, Some(Owner::Thread(7))) && !settle(sig, None, None));
        assert_eq!(take_for(7, ALL).map(|i| i.si_code), Some(5));
        assert!(!any());
        // One test: the table is the process's.
        a_thread_takes_the_lowest_of_the_set_and_keeps_each_signal_apart();
    }

    fn a_thread_takes_the_lowest_of_the_set_and_keeps_each_signal_apart() {
        assert!(park(Owner::Thread(3), &info(libc::SIGUSR2, 1)));
        assert!(park(Owner::Thread(3), &info(libc::SIGUSR1, 2)));
        assert!(park(Owner::Thread(3), &info(libc::SIGUSR1, 3)), "merged");
        assert!(park(Owner::Process, &info(libc::SIGHUP, 4)));
        let usr = 1 << (libc::SIGUSR1 - 1) | 1 << (libc::SIGUSR2 - 1);
        assert_eq!(pending_for(3), usr | 1 << (libc::SIGHUP - 1));
        assert_eq!(take_for(3, usr).map(|i| i.si_code), Some(2));
        assert_eq!(
            take_for(3, ALL).map(|i| i.si_code),
            Some(1),
            "its own first"
        );
        assert_eq!(take_for(3, ALL).map(|i| i.si_code), Some(4));
        assert!(park(Owner::Thread(3), &info(libc::SIGUSR1, 5)));
        assert!(park(Owner::Thread(3), &info(libc::SIGTERM, 6)));
        thread_ended(3);
        assert!(!any());
        for code in 1..=3 {
            assert!(park(Owner::Thread(4), &info(libc::SIGRTMIN(), code)));
        }
        assert!(park(Owner::Thread(4), &info(libc::SIGUSR1, 9)));
        let rt = 1 << (libc::SIGRTMIN() - 1);
        assert_eq!(pending_for(4) & rt, rt);
        let codes: Vec<_> = std::iter::from_fn(|| take_for(4, rt).map(|i| i.si_code)).collect();
        assert_eq!(codes, [1, 2, 3], "real-time instances queue, in order");
        assert_eq!(take_for(4, ALL).map(|i| i.si_code), Some(9));
        assert!(!any());
        many_pending_instances_grow_the_table_where_reserved();
    }

    fn many_pending_instances_grow_the_table_where_reserved() {
        let room = capacity();
        for code in 0..room as i32 {
            assert!(park(Owner::Thread(5), &info(libc::SIGRTMIN(), code)));
        }
        assert!(
            !park(Owner::Thread(5), &info(libc::SIGRTMIN(), -1)),
            "full: never grown where it parks"
        );
        for code in room as i32..1000 {
            reserve();
            assert!(park(Owner::Thread(5), &info(libc::SIGRTMIN(), code)));
        }
        for tid in 0..64 {
            reserve();
            assert!(park(Owner::Thread(tid), &info(libc::SIGUSR1, tid as i32)));
        }
        let rt = 1 << (libc::SIGRTMIN() - 1);
        let codes: Vec<_> = std::iter::from_fn(|| take_for(5, rt).map(|i| i.si_code)).collect();
        assert_eq!(codes, (0..1000).collect::<Vec<_>>(), "in order");
        for tid in 0..64 {
            assert_eq!(take_for(tid, ALL).map(|i| i.si_code), Some(tid as i32));
        }
        assert!(!any());
    }
}
