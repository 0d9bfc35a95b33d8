//! Signals that interrupt parked green threads (EINTR).
//!
//! A signal handler that runs while green threads are parked must make one of them
//! return EINTR, as the kernel would for the thread it delivered the signal to: the
//! thread a `pthread_kill` named, or else the main thread (the kernel's choice for a
//! process-directed signal when main does not block it). The signal trampoline records
//! that in a small lock-free queue ([`post`], async-signal-safe) and rings the
//! schedulers' doorbells; the scheduler applies it ([`take`]).
//!
//! A handler the kernel runs in the green thread that is running interrupts no other: that
//! thread was the kernel's choice, and it was not parked (see the trampoline).
//!
//! Only a thread that was already parked when the signal arrived is interrupted: every
//! park takes a number from [`PARKS`], and the signal records the number current at
//! its arrival. A call that begins after the handler ran waits normally, as natively.
//!
//! A handler that must run in another green thread than the one the OS thread runs now
//! (or while greenify's own code runs) is *delivered*: the interruption says so, the
//! scheduler hands the signal to the chosen thread, and that thread runs the handler
//! itself, on its own stack, when it next leaves a wait or a hooked call. So a handler
//! may siglongjmp back into its thread's frames, as natively.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// Numbers the parks (30 bits are kept: comparisons wrap).
static PARKS: AtomicU64 = AtomicU64::new(1);
const EPOCH_BITS: u32 = 30;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;

const SLOTS: usize = 32;
static QUEUE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// One pending interruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// The green thread a pthread_kill aimed at; None: process-directed.
    pub target: Option<u32>,
    /// The handler has SA_RESTART: restartable calls go on waiting.
    pub restart: bool,
    /// Parks numbered below this were already parked when the signal came.
    pub epoch: u64,
    /// The signal.
    pub sig: u32,
    /// The handler has not run: the chosen thread runs it (see the module's comment).
    pub deliver: bool,
}

// One queue entry, a word: bit 0 taken, 1 restart, 2 deliver, 3..27 the target + 1 (0:
// none), 27..34 the signal, 34.. the epoch.
const DELIVER: u64 = 4;
const TARGET_SHIFT: u32 = 3;
const SIG_SHIFT: u32 = 27;
const EPOCH_SHIFT: u32 = 34;

impl Interruption {
    fn encode(self) -> u64 {
        let target_bits = self.target.map_or(0, |t| u64::from(t) + 1) & 0xFF_FFFF;
        1 | (u64::from(self.restart) << 1)
            | (u64::from(self.deliver) * DELIVER)
            | (target_bits << TARGET_SHIFT)
            | ((u64::from(self.sig) & 0x7F) << SIG_SHIFT)
            | (self.epoch << EPOCH_SHIFT)
    }

    fn decode(entry: u64) -> Interruption {
        let target_bits = (entry >> TARGET_SHIFT) & 0xFF_FFFF;
        Interruption {
            target: (target_bits != 0).then(|| (target_bits - 1) as u32),
            restart: entry & 2 != 0,
            deliver: entry & DELIVER != 0,
            sig: ((entry >> SIG_SHIFT) & 0x7F) as u32,
            epoch: entry >> EPOCH_SHIFT,
        }
    }
}

/// Some handler waits to be delivered (posted, or handed to a thread that has not run
/// it yet): the hooks look for it when they return. Set here and by the scheduler.
static DELIVERIES: AtomicBool = AtomicBool::new(false);

/// Whether a handler may wait to be delivered (cheap: read at every hook's return).
#[inline]
pub fn deliveries_pending() -> bool {
    DELIVERIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records whether handlers still wait to be delivered (the scheduler, after handing
/// them out); an interruption still queued keeps the answer yes.
pub fn set_deliveries_pending(pending: bool) {
    DELIVERIES.store(pending, SeqCst);
    if !pending && QUEUE.iter().any(|slot| slot.load(SeqCst) & DELIVER != 0) {
        DELIVERIES.store(true, SeqCst);
    }
}

/// The signals of the deliveries posted and not yet taken (bit `sig - 1`).
pub fn queued_deliveries() -> u64 {
    QUEUE.iter().fold(0, |signals, slot| {
        let entry = slot.load(SeqCst);
        if entry & DELIVER == 0 {
            return signals;
        }
        signals | 1 << (Interruption::decode(entry).sig - 1)
    })
}

/// The number of a park that starts now.
pub fn next_park() -> u64 {
    PARKS.fetch_add(1, SeqCst) & EPOCH_MASK
}

/// Whether a park numbered `park` started before the signal of `epoch`.
pub fn parked_before(park: u64, epoch: u64) -> bool {
    let distance = epoch.wrapping_sub(park) & EPOCH_MASK;
    distance != 0 && distance < (1 << (EPOCH_BITS - 1))
}

/// Records an interruption (from a signal handler); with `deliver`, the handler has not
/// run and waits for its thread. Lock-free, async-signal-safe. When every slot is taken
/// (a lone thread that never parks leaves its handlers' interruptions there), it merges
/// with a pending one of the same signal and target (see [`merged`]). False if it could
/// not (the caller then runs the handler itself).
pub fn post(sig: u32, target: Option<u32>, restart: bool, deliver: bool) -> bool {
    let entry = Interruption {
        target,
        restart,
        epoch: PARKS.load(SeqCst) & EPOCH_MASK,
        sig,
        deliver,
    }
    .encode();
    let posted = QUEUE
        .iter()
        .any(|slot| slot.compare_exchange(0, entry, SeqCst, SeqCst).is_ok())
        || QUEUE.iter().any(|slot| {
            let pending = slot.load(SeqCst);
            merged(pending, entry)
                .is_some_and(|both| slot.compare_exchange(pending, both, SeqCst, SeqCst).is_ok())
        });
    if posted && deliver {
        DELIVERIES.store(true, SeqCst);
    }
    super::futex::ring_doorbells();
    posted
}

/// One entry that does what `pending` and `new` (same signal and target) both do, if
/// nothing is lost: the newer epoch interrupts every park the older one does and those
/// since, and a handler still to deliver stays so. Two deliveries of a standard signal
/// merge as the kernel merges a standard signal that is already pending; a real-time
/// signal's deliveries never do (each is queued natively).
fn merged(pending: u64, new: u64) -> Option<u64> {
    const SIG_AND_TARGET: u64 = ((1 << EPOCH_SHIFT) - 1) & !((1 << TARGET_SHIFT) - 1);
    if pending == 0 || pending & SIG_AND_TARGET != new & SIG_AND_TARGET {
        return None;
    }
    if pending & new & DELIVER != 0 && Interruption::decode(new).sig >= 32 {
        return None;
    }
    Some(new | (pending & DELIVER))
}

/// Hands every pending interruption to `apply`, oldest slots first.
pub fn take(mut apply: impl FnMut(Interruption)) {
    for slot in &QUEUE {
        let entry = slot.swap(0, SeqCst);
        if entry != 0 {
            apply(Interruption::decode(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue is one static: its tests take turns.
    static QUEUE_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn epochs_order_parks_and_signals() {
        assert!(parked_before(5, 6));
        assert!(!parked_before(6, 6));
        assert!(!parked_before(7, 6));
        // Wrapping at 30 bits.
        assert!(parked_before(EPOCH_MASK, 1));
    }

    #[test]
    fn a_full_queue_merges_with_the_same_signal_and_target() {
        let _g = QUEUE_TEST.lock().unwrap();
        take(|_| {});
        for _ in 0..SLOTS {
            assert!(post(14, None, false, false));
        }
        // An interruption of a handler that ran, and one still to deliver, merge in.
        assert!(post(14, None, true, false));
        assert!(post(14, None, true, true));
        // A standard signal merges with a pending delivery; another signal, or a
        // real-time signal's second delivery, does not.
        assert!(post(14, None, true, true));
        assert!(!post(10, None, true, false));
        assert!(!post(46, None, true, false));
        take(|_| {});
        for _ in 0..SLOTS {
            assert!(post(40, Some(3), false, true));
        }
        assert!(!post(40, Some(3), false, true));
        assert!(post(40, Some(3), false, false));
        let mut seen = vec![];
        take(|i| seen.push(i));
        assert_eq!(seen.len(), SLOTS);
        assert!(seen
            .iter()
            .all(|i| i.deliver && i.sig == 40 && i.target == Some(3)));
        set_deliveries_pending(false);
    }

    #[test]
    fn an_interruption_comes_back_as_posted() {
        let _g = QUEUE_TEST.lock().unwrap();
        assert!(post(10, Some(0xAB_CDEF), true, true));
        assert!(deliveries_pending());
        let mut seen = vec![];
        take(|i| seen.push(i));
        assert_eq!(seen.len(), 1);
        let i = seen[0];
        assert_eq!(
            (i.sig, i.target, i.restart, i.deliver),
            (10, Some(0xAB_CDEF), true, true)
        );
        set_deliveries_pending(false);
        assert!(!deliveries_pending());
    }
}
