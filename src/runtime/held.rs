//! Real-time signals that wait in the kernel for their turn.
//!
//! A handler that must run in another green thread than the one its OS thread runs is
//! *delivered* (see interrupt.rs): the signal trampoline saves the signal's siginfo, one
//! slot per signal number, until the chosen thread runs the handler. That suits standard
//! signals, which merge natively while one is pending. Real-time signals do not: each
//! instance is queued with its own siginfo (a `sigqueue` value) and runs the handler once,
//! in order. So while the slot of a real-time signal is taken, its next instances stay in
//! the kernel's queue:
//! - after saving an instance, the trampoline blocks the signal on its OS thread (in the
//!   context its sigreturn restores), so the next one is not taken yet;
//! - an instance that still comes (the OS thread's mask was applied again meanwhile) is
//!   put back with `rt_tgsigqueueinfo` to the OS thread itself: the kernel serves a
//!   thread's own queue before the process's, so it stays first;
//! - once the handler ran and the slot is free, the OS thread's mask is applied again
//!   ([`release`]) and the next instance comes in.
//!
//! An instance aimed at a green thread is put back with its target marked, as it was sent
//! (see hooks/signal.rs). With several workers, instances put back on different OS
//! threads may run out of order, and the worker that frees the slot may not be the one
//! whose OS thread holds the next instances: it nudges the holders (sched/nudge.rs).
//!
//! The trampoline marks a signal held before it posts the saved instance, so that a
//! release on another worker, once the delivery ran, never comes before the mark.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// Signals whose saved siginfo a delivery has not run yet (bit `sig - 1`).
static UNRUN: AtomicU64 = AtomicU64::new(0);
/// Real-time signals the trampoline blocked behind the scheduler's mask, with instances
/// that may wait in the kernel.
static HELD: AtomicU64 = AtomicU64::new(0);

fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// Whether `sig` is a real-time signal: natively, each of its instances is queued.
pub fn is_queued(sig: u32) -> bool {
    (32..=64).contains(&sig)
}

/// Whether the saved siginfo of `sig` waits for its delivery to run.
pub fn slot_taken(sig: u32) -> bool {
    UNRUN.load(SeqCst) & bit(sig) != 0
}

/// The trampoline takes the slot of `sig` to save an instance for a delivery; false if
/// it was taken already. One step: the trampolines of two OS threads may take instances
/// of the same signal at once, and a check apart from the take let both save into the
/// one slot (with several workers, 1 run in 6 of `rt_held.c` lost an instance).
pub fn take_slot(sig: u32) -> bool {
    UNRUN.fetch_or(bit(sig), SeqCst) & bit(sig) == 0
}

/// The delivery of `sig` copied its saved siginfo out (or ran at once).
pub fn free_slot(sig: u32) {
    UNRUN.fetch_and(!bit(sig), SeqCst);
}

/// The trampoline blocked `sig` on its OS thread; its next instances wait in the kernel.
pub fn hold(sig: u32) {
    HELD.fetch_or(bit(sig), SeqCst);
}

/// Puts an instance of `sig` whose slot is taken back into the kernel's queue of the
/// calling OS thread, with its siginfo `info`; false if the kernel refused (its queue is
/// full). Async-signal-safe.
pub fn put_back(sig: u32, info: &libc::siginfo_t) -> bool {
    if super::raw::queue_to_this_thread(sig, info) != 0 {
        return false;
    }
    hold(sig);
    true
}

/// The signals held now (see [`hold`]).
pub fn held() -> u64 {
    HELD.load(SeqCst)
}

/// Whether `sig` is held (its slot taken, its next instances blocked on some OS thread).
pub fn is_held(sig: u32) -> bool {
    held() & bit(sig) != 0
}

/// The value of greenify's SIGURG that asks a worker to unblock the signals it holds
/// that are released (see sched/nudge.rs): the preemption signal's and greenify-ctl's
/// are other numbers.
const NUDGE_VALUE: u64 = 0x6772_6e68_6c64_0001;

/// The siginfo of a nudge: SI_QUEUE from this process with [`NUDGE_VALUE`].
pub fn nudge_info(sig: u32) -> libc::siginfo_t {
    super::raw::own_queued_info(sig, NUDGE_VALUE)
}

/// Whether `info` is a nudge of this process's (see [`nudge_info`]).
///
/// # Safety
/// `info` is the kernel's siginfo for a handler, or null.
pub unsafe fn is_nudge(info: *const libc::siginfo_t) -> bool {
    // SAFETY: the caller's.
    unsafe { super::raw::own_queued_value(info) == Some(NUDGE_VALUE) }
}

/// Takes the held signals whose slot is free: the caller applies its OS thread's mask
/// again so that their next instances come in. False if there are none.
pub fn release() -> bool {
    let ready = HELD.load(SeqCst) & !UNRUN.load(SeqCst);
    ready != 0 && HELD.fetch_and(!ready, SeqCst) & ready != 0
}

/// Trampolines between taking a slot and posting its delivery (see [`recount`]).
static SAVING: AtomicU32 = AtomicU32::new(0);

/// A trampoline saving an instance, from before it takes the slot until its delivery is
/// posted (or it gives up): meanwhile that delivery is in no count of the scheduler's.
pub struct Saving(());

impl Saving {
    pub fn start() -> Saving {
        SAVING.fetch_add(1, SeqCst);
        Saving(())
    }
}

impl Drop for Saving {
    fn drop(&mut self) {
        SAVING.fetch_sub(1, SeqCst);
    }
}

/// The scheduler's count of the deliveries still to run (in a section, where no posted
/// delivery is handed out): `due`, the signals handed to threads, and `queued()`, those
/// posted and not yet handed. A slot taken by neither was dropped (its thread ended) and
/// is free again. Only while no trampoline saves an instance, read in this order, and
/// only if no slot was taken or freed meanwhile: a trampoline between its take and its
/// post must keep its slot (a store of the counts freed it, and the next instance,
/// taken on another OS thread, replaced its siginfo).
pub fn recount(due: u64, queued: impl FnOnce() -> u64) {
    let taken = UNRUN.load(SeqCst);
    if taken & !due == 0 || SAVING.load(SeqCst) != 0 {
        return;
    }
    let dropped = taken & !(due | queued());
    if dropped != 0 {
        let _ = UNRUN.compare_exchange(taken, taken & !dropped, SeqCst, SeqCst);
    }
}

/// In a forked child: nothing is pending (the kernel drops pending signals at fork) and no
/// handler waits; true if signals were held, which the child's mask still blocks.
pub fn after_fork() -> bool {
    UNRUN.store(0, SeqCst);
    HELD.swap(0, SeqCst) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_signal_is_released_once_its_slot_is_free() {
        assert!(take_slot(40));
        assert!(!take_slot(40), "taken once");
        hold(40);
        assert!(!release(), "its delivery has not run");
        free_slot(40);
        assert!(release());
        assert!(!release(), "released once");
        take_slot(41);
        let saving = Saving::start();
        recount(0, || 0);
        assert!(slot_taken(41), "kept while an instance is saved");
        drop(saving);
        recount(0, || 1 << 40);
        assert!(slot_taken(41), "kept while its delivery is queued");
        recount(0, || 0);
        assert!(!slot_taken(41), "freed once its delivery is dropped");
        assert!(is_queued(34) && is_queued(64) && !is_queued(10) && !is_queued(31));
    }
}
