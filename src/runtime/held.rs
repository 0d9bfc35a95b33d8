//! Real-time signals that wait for their turn.
//!
//! A handler that must run in another green thread than the one its OS thread runs is
//! *delivered* (see interrupt.rs): the signal trampoline saves the signal's siginfo, one
//! slot per signal number, until the chosen thread runs the handler. That suits standard
//! signals, which merge natively while one is pending. Real-time signals do not: each
//! instance is queued with its own siginfo (a `sigqueue` value) and runs the handler once,
//! in the kernel's order. So each real-time signal has a *line* in memory, behind its
//! slot:
//! - the trampoline takes a [`Ticket`] first thing, before any system call. With several
//!   workers two OS threads may take instances of one signal at once (both leave it open:
//!   an idle worker for a parked thread that accepts it, and the worker running that
//!   thread), and the order in which their trampolines reached the slot, a few system
//!   calls in, was often not the kernel's: 20 rounds of five `sigqueue`s ran out of order
//!   in 11 runs of 100 on a loaded machine (two busy loops);
//! - an instance that waits for a delivery, or comes while older ones wait, is written at
//!   its ticket's place ([`Ticket::wait`]); one that runs at once leaves its place empty
//!   ([`Ticket::pass`]);
//! - whoever holds the slot hands the next instance in line to its delivery ([`pump`]):
//!   the one that wrote it if the slot is free, else the delivery that frees it.
//!
//! A ticket only follows the order in which trampolines start: an OS thread preempted
//! between the kernel's dequeue and its trampoline still lets a newer instance taken on
//! another OS thread go first (8 runs of 100 above, with tickets alone). So the program's
//! own `sigqueue` to its process, when a thread takes the signal, puts the instance in
//! line itself, in the order sent, without the kernel (hooks/signal.rs): 0 in 100.
//!
//! The line holds [`LINE`] instances of a signal; more wait in the kernel (the trampoline
//! blocks the signal on its OS thread, in the context its sigreturn restores, and puts the
//! instance back with `rt_tgsigqueueinfo` to the OS thread itself, whose queue the kernel
//! serves before the process's), and come in again once their signal is *released*
//! ([`release`]): the worker that frees the slot nudges the holders (sched/nudge.rs). Those
//! may run out of order.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// Signals whose saved siginfo a delivery has not run yet (bit `sig - 1`).
static UNRUN: AtomicU64 = AtomicU64::new(0);
/// Real-time signals the trampoline blocked behind the scheduler's mask, with instances
/// that may wait in the kernel.
static HELD: AtomicU64 = AtomicU64::new(0);
/// Real-time signals whose line ever gave out a ticket: a forked child resets only their
/// lines (each line is pages of its own: a write to every one cost each fork's child 33
/// page faults, its CPU time +15% in a greenified shell's loop).
static LINED: AtomicU64 = AtomicU64::new(0);

fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// Whether `sig` is a real-time signal: natively, each of its instances is queued.
pub fn is_queued(sig: u32) -> bool {
    (FIRST_QUEUED..=64).contains(&sig)
}

const FIRST_QUEUED: u32 = 32;

/// Instances of one real-time signal that wait in memory (see the module's comment).
pub const LINE: u64 = 64;

/// An instance of a real-time signal waiting for its delivery.
#[derive(Clone, Copy)]
pub struct Instance {
    pub info: libc::siginfo_t,
    /// The green thread it was sent to (None: the scheduler chooses).
    pub target: Option<u32>,
    /// Whether the handler restarts the call it interrupts (SA_RESTART).
    pub restart: bool,
}

/// A place in a line: `seq` is `(ticket + 1) << 1`, with [`EMPTY`] for an instance that
/// ran at once, once its ticket's trampoline wrote it; any other value before.
struct Place {
    seq: AtomicU64,
    instance: UnsafeCell<MaybeUninit<Instance>>,
}

const EMPTY: u64 = 1;

/// The line of one real-time signal: tickets from `head` (the next to hand to a
/// delivery; only the slot's holder moves it) to `tail` (the next to give out).
struct Line {
    head: AtomicU64,
    tail: AtomicU64,
    places: [Place; LINE as usize],
}

struct Lines([Line; 33]);

// SAFETY: a place's instance is written only by the trampoline holding its ticket, before
// it publishes `seq`, and read only by the slot's holder after it saw `seq`; the place is
// given out again only once `head` passed it.
unsafe impl Sync for Lines {}

static LINES: Lines = Lines(
    [const {
        Line {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            places: [const {
                Place {
                    seq: AtomicU64::new(0),
                    instance: UnsafeCell::new(MaybeUninit::uninit()),
                }
            }; LINE as usize],
        }
    }; 33],
);

fn line(sig: u32) -> Option<&'static Line> {
    is_queued(sig).then(|| line_of(sig))
}

/// The line of real-time signal `sig`.
fn line_of(sig: u32) -> &'static Line {
    &LINES.0[(sig - FIRST_QUEUED) as usize]
}

/// An instance's place in the line of its real-time signal, taken first thing in the
/// trampoline; it must be filled ([`Ticket::wait`]) or left empty ([`Ticket::pass`]), and
/// then the line [`pump`]ed.
pub struct Ticket {
    sig: u32,
    number: u64,
}

impl Ticket {
    /// The next place in the line of `sig`; None if `sig` is not a real-time signal or
    /// its line is full. Lock-free, async-signal-safe.
    pub fn take(sig: u32) -> Option<Ticket> {
        let line = line(sig)?;
        if LINED.load(SeqCst) & bit(sig) == 0 {
            LINED.fetch_or(bit(sig), SeqCst);
        }
        let mut tail = line.tail.load(SeqCst);
        loop {
            if tail.wrapping_sub(line.head.load(SeqCst)) >= LINE {
                return None;
            }
            match line.tail.compare_exchange(tail, tail + 1, SeqCst, SeqCst) {
                Ok(_) => return Some(Ticket { sig, number: tail }),
                Err(now) => tail = now,
            }
        }
    }

    /// Whether older instances of the signal wait (in line, or in its slot): then this
    /// one waits behind them.
    pub fn behind_others(&self) -> bool {
        line_of(self.sig).head.load(SeqCst) != self.number || slot_taken(self.sig)
    }

    /// The instance waits in its place for a delivery.
    pub fn wait(self, instance: Instance) {
        let place = self.place();
        // SAFETY: the place is this ticket's alone until `seq` says it is written (see
        // `Lines`).
        unsafe { (*place.instance.get()).write(instance) };
        place.seq.store((self.number + 1) << 1, SeqCst);
    }

    /// The instance ran at once: its place is passed over.
    pub fn pass(self) {
        self.place()
            .seq
            .store((self.number + 1) << 1 | EMPTY, SeqCst);
    }

    fn place(&self) -> &'static Place {
        &line_of(self.sig).places[(self.number % LINE) as usize]
    }
}

/// Hands the next instance in the line of `sig` to `hand` (which saves it and posts its
/// delivery; false if it could not), if the slot is free: the caller filled or passed a
/// place, or freed the slot. The slot stays taken by the instance handed. Async-signal-safe.
pub fn pump(sig: u32, mut hand: impl FnMut(&Instance) -> bool) {
    let Some(line) = line(sig) else { return };
    let _saving = Saving::start();
    loop {
        let head = line.head.load(SeqCst);
        let place = &line.places[(head % LINE) as usize];
        let seq = place.seq.load(SeqCst);
        // Not written yet: its trampoline pumps once it is.
        if seq >> 1 != head + 1 || !take_slot(sig) {
            return;
        }
        if line.head.load(SeqCst) != head {
            // Another holder handed it on between the look and the take.
            free_slot(sig);
            continue;
        }
        if seq & EMPTY != 0 {
            line.head.store(head + 1, SeqCst);
            free_slot(sig);
            continue;
        }
        // SAFETY: written before `seq` said so (see `Lines`); ours as the slot's holder,
        // read before `head` passes the place, which may then be given out again.
        let instance = unsafe { (*place.instance.get()).assume_init_read() };
        // Moved on before the delivery is posted: once posted it may run, free the slot
        // and pump on another worker at once.
        line.head.store(head + 1, SeqCst);
        if !hand(&instance) {
            // Every interruption slot is taken (see interrupt.rs): the instance is lost,
            // as one the kernel would not queue.
            free_slot(sig);
        }
        return;
    }
}

/// The real-time signals with instances in line (bit `sig - 1`): their slot may have been
/// freed by [`recount`], with nobody left to hand the next one on.
pub fn in_line() -> u64 {
    (FIRST_QUEUED..=64)
        .filter(|&sig| {
            let line = line_of(sig);
            line.head.load(SeqCst) != line.tail.load(SeqCst)
        })
        .fold(0, |all, sig| all | bit(sig))
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
    let lined = LINED.load(SeqCst);
    for (i, line) in LINES.0.iter().enumerate() {
        if lined & bit(FIRST_QUEUED + i as u32) != 0 {
            line.head.store(line.tail.load(SeqCst), SeqCst);
        }
    }
    HELD.swap(0, SeqCst) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(sig: u32, value: u64) -> Instance {
        Instance {
            info: super::super::raw::own_queued_info(sig, value),
            target: None,
            restart: false,
        }
    }

    /// Pumps the line of `sig`, noting the values handed.
    fn pump_into(sig: u32, handed: &mut Vec<u64>) {
        pump(sig, |i| {
            // SAFETY: our own siginfo.
            handed.push(unsafe { super::super::raw::own_queued_value(&i.info) }.unwrap());
            true
        });
    }

    #[test]
    fn instances_are_handed_on_in_ticket_order_whoever_writes_first() {
        let sig = 50;
        let (first, second, third) = (
            Ticket::take(sig).unwrap(),
            Ticket::take(sig).unwrap(),
            Ticket::take(sig).unwrap(),
        );
        let mut handed = Vec::new();
        second.wait(instance(sig, 2));
        pump_into(sig, &mut handed);
        assert!(
            handed.is_empty() && !slot_taken(sig),
            "the first is not written yet"
        );
        first.wait(instance(sig, 1));
        pump_into(sig, &mut handed);
        pump_into(sig, &mut handed);
        assert_eq!(handed, [1], "one at a time: the slot is taken");
        third.pass();
        free_slot(sig);
        pump_into(sig, &mut handed);
        assert_eq!(handed, [1, 2]);
        free_slot(sig);
        pump_into(sig, &mut handed);
        assert!(
            !slot_taken(sig) && in_line() & bit(sig) == 0,
            "the third ran at once"
        );
        let line: Vec<_> = (0..LINE).map(|_| Ticket::take(sig).unwrap()).collect();
        assert!(Ticket::take(sig).is_none(), "full");
        line.into_iter().for_each(Ticket::pass);
        pump_into(sig, &mut handed);
        assert_eq!(handed, [1, 2]);
        let next = Ticket::take(sig).unwrap();
        assert!(!next.behind_others(), "its turn");
        next.pass();
    }

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
