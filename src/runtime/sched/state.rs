//! A thread's state as one atomic word, changed only by the transitions below (as Go's
//! `casgstatus`): so that a waker on another worker can ready a thread without the
//! scheduler's lock (issue 11), every fact a wake tests or changes is in the word: the
//! state, the wait sequence, whether a wait is registered ahead, the wake owed, whether
//! the thread's coroutine is out and the queue it asked for meanwhile.
//!
//! # The word (64 bits)
//! ```text
//!   bits  0..3   state      Free, Ready, Running, Parked, Exited
//!   bit   3      REGISTERED a Running thread registered a wait under seq that it has not
//!                           parked in yet (see `Scheduler::register_ahead`)
//!   bit   4      OWED       a wake came for that wait before it parked: its next park
//!                           ends at once with `wake`
//!   bit   5      OUT        its coroutine is out: running, or on its way out to the run
//!                           loop that dispatched it (for MAIN: its switch back to that
//!                           loop is not complete); no other worker may dispatch it
//!   bits  6..8   requeue    made ready while OUT: the queue the run loop puts it in once
//!                           it is back (0: none)
//!   bits  8..16  wake       how the last wake ended its wait (read at its dispatch): the
//!                           `Wake`'s own byte
//!   bits 16..48  seq        the wait sequence: a wait is named by (thread id, seq)
//!   bits 48..64  (the carries of seq: read by nothing)
//! ```
//! The flags sit low and the sequence above them so that every mask, and a change of
//! state and sequence at once, is an instruction's 32-bit immediate; the sequence moves
//! on by one add, whose carry out of it falls into bits nothing reads (with the fields
//! the other way round a transition cost a dozen instructions more).
//!
//! # Transitions
//! ```text
//!   transition     from                          to
//!   spawned        Free                          Ready, wake Ready, flags clear
//!   dispatched     Ready                         Running + OUT            (answers wake)
//!   registered     Running                       Running + REGISTERED
//!   voided         Running                       seq + 1                  (own waits off)
//!   take_owed      Running + OWED                Running                  (answers wake)
//!   parked         Running, not OWED             Parked
//!   woken(seq)     Parked, seq                   Ready, seq + 1, wake, REGISTERED clear
//!                  Running + REGISTERED, seq     Running + OWED, seq + 1, wake,
//!                                                REGISTERED clear
//!   yielded        Running                       Ready
//!   deferred(q)    Ready + OUT                   requeue q
//!   back           OUT                           OUT clear, requeue clear (answers it)
//!   claimed        not OUT                       OUT                      (MAIN's exit)
//!   exited         any but Free                  Exited, seq + 1, REGISTERED clear
//!   released       Exited (any in a fork child)  Free
//! ```
//! Every transition is one compare-and-swap of the whole word (a load and a store when
//! one worker alone touches records: see [`StateWord::update`]; `dispatched` always, as
//! no other transition may come between them), so each is valid without the lock: a wake and a park that race end in exactly one of "parked, then woken" and
//! "woken early, the park returns at once"; a deferral and a `back` that race end in
//! exactly one of "the run loop queues it" and "the waker queues it".

use super::Queue;
use crate::runtime::wait::Wake;
use std::sync::atomic::{
    AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    Free,
    Ready,
    Running,
    Parked,
    Exited,
}

const STATE_MASK: u64 = 0b111;
const REGISTERED: u64 = 1 << 3;
const OWED: u64 = 1 << 4;
const OUT: u64 = 1 << 5;
const REQUEUE_SHIFT: u32 = 6;
const REQUEUE_MASK: u64 = 0b11 << REQUEUE_SHIFT;
const WAKE_SHIFT: u32 = 8;
const WAKE_MASK: u64 = 0xff << WAKE_SHIFT;
const SEQ_SHIFT: u32 = 16;
const SEQ_ONE: u64 = 1 << SEQ_SHIFT;
/// The sequence and its carries: what a new thread keeps of its record's word.
const SEQ_MASK: u64 = !0 << SEQ_SHIFT;
const RUNNING_REGISTERED: u64 = State::Running as u64 | REGISTERED;

// A `Wake` is one byte (checked here), kept as is in the word: read back by a shift.
const _: () = assert!(std::mem::size_of::<Wake>() == 1);

/// The byte of `wake` (see [`Word::wake`]).
const fn wake_bits(wake: Wake) -> u64 {
    // SAFETY: `Wake` is one byte (asserted above) of plain data: any of its values is a
    // valid `u8`.
    (unsafe { std::mem::transmute::<Wake, u8>(wake) } as u64) << WAKE_SHIFT
}

// The states decoded by a table look-up (a `match` cost a dozen instructions a transition).
const STATES: [State; 8] = [
    State::Free,
    State::Ready,
    State::Running,
    State::Parked,
    State::Exited,
    State::Exited,
    State::Exited,
    State::Exited,
];
const REQUEUES: [Option<Queue>; 4] = [
    None,
    Some(Queue::Run),
    Some(Queue::Next),
    Some(Queue::Preempted),
];

/// One value of a state word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Word(u64);

impl Word {
    /// Free, its wake Ready (what a new thread's first dispatch answers).
    const FREE: Word = Word(wake_bits(Wake::Ready));

    pub(super) fn state(self) -> State {
        STATES[(self.0 & STATE_MASK) as usize]
    }

    pub(super) fn seq(self) -> u32 {
        (self.0 >> SEQ_SHIFT) as u32
    }

    pub(super) fn wake(self) -> Wake {
        // SAFETY: the word's wake byte is only ever written by `wake_bits`, from a `Wake`.
        unsafe { std::mem::transmute::<u8, Wake>((self.0 >> WAKE_SHIFT) as u8) }
    }

    pub(super) fn out(self) -> bool {
        self.0 & OUT != 0
    }

    /// Made and not yet reaped: running, ready or parked.
    pub(super) fn is_live(self) -> bool {
        !matches!(self.state(), State::Free | State::Exited)
    }

    /// Whether the wait under `seq` is still on: the thread is parked in it, or registered
    /// it and runs on to park.
    #[inline(always)]
    pub(super) fn waits(self, seq: u32) -> bool {
        self.seq() == seq
            && (self.is(State::Parked) || self.0 & (STATE_MASK | REGISTERED) == RUNNING_REGISTERED)
    }

    fn with_state(self, state: State) -> Word {
        Word(self.0 & !STATE_MASK | state as u64)
    }

    fn next_seq(self) -> Word {
        Word(self.0.wrapping_add(SEQ_ONE))
    }

    fn requeue(self) -> Option<Queue> {
        REQUEUES[((self.0 & REQUEUE_MASK) >> REQUEUE_SHIFT) as usize]
    }

    fn with_requeue(self, queue: Queue) -> Word {
        let bits: u64 = match queue {
            Queue::Run => 1,
            Queue::Next => 2,
            Queue::Preempted => 3,
        };
        Word(self.0 & !REQUEUE_MASK | bits << REQUEUE_SHIFT)
    }

    #[inline(always)]
    fn is(self, state: State) -> bool {
        self.0 & STATE_MASK == state as u64
    }
}

/// What [`StateWord::woken`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Woken {
    /// The wait was over already (woken, ended, or another one now).
    Stale,
    /// The thread was parked in it: it is Ready now, to be queued.
    Ready,
    /// It registered the wait and had not parked yet: its park ends at once.
    Early,
}

/// A thread's state word (see the module's doc).
pub(super) struct StateWord(AtomicU64);

impl StateWord {
    pub(super) const fn free() -> StateWord {
        StateWord(AtomicU64::new(Word::FREE.0))
    }

    /// MAIN's, as the scheduler is made: running, on its way nowhere.
    pub(super) fn running_main() -> StateWord {
        StateWord(AtomicU64::new(
            Word::FREE.with_state(State::Running).0 | OUT,
        ))
    }

    #[inline(always)]
    pub(super) fn load(&self) -> Word {
        Word(self.0.load(Acquire))
    }

    /// Applies `change` to the word: `Ok((new word, answer))`, or `Err(answer)` to leave
    /// it as it is. With `alone` (one worker: nothing else touches records) a load and a
    /// store; else a compare-and-swap loop. The answer comes from `change` itself, so
    /// that no caller decodes the word again to learn which way it went; a refusal costs
    /// the load alone.
    #[inline(always)]
    fn update<R>(&self, alone: bool, change: impl Fn(Word) -> Result<(Word, R), R>) -> R {
        let old = self.load();
        let (new, answer) = match change(old) {
            Ok(done) => done,
            Err(answer) => return answer,
        };
        if !alone {
            return self.swap_in(old, change);
        }
        self.0.store(new.0, Relaxed);
        answer
    }

    /// [`StateWord::update`]'s compare-and-swap loop, from the word `old` it read (out of
    /// line: it kept the hot paths of one worker from being inlined).
    #[inline(never)]
    fn swap_in<R>(&self, mut old: Word, change: impl Fn(Word) -> Result<(Word, R), R>) -> R {
        loop {
            let (new, answer) = match change(old) {
                Ok(done) => done,
                Err(answer) => return answer,
            };
            match self.0.compare_exchange_weak(old.0, new.0, AcqRel, Acquire) {
                Ok(_) => return answer,
                Err(now) => old = Word(now),
            }
        }
    }

    /// Applies `change`, which the transition's caller knows to be valid from the word's
    /// state (checked in debug builds only: these are the transitions the scheduler makes
    /// of a thread only it touches then, and a check cost instructions at every switch).
    /// The new word.
    #[inline(always)]
    fn set(&self, alone: bool, from: &[State], change: impl Fn(Word) -> Word) -> Word {
        self.update(alone, move |w| {
            debug_assert!(from.contains(&w.state()), "{:?} from {:?}", from, w.state());
            let new = change(w);
            Ok((new, new))
        })
    }

    /// Free -> Ready, for a new thread in a free record.
    pub(super) fn spawned(&self, alone: bool) {
        self.set(alone, &[State::Free], |w| {
            Word(w.0 & SEQ_MASK | Word::FREE.0).with_state(State::Ready)
        });
    }

    /// Ready -> Running, its coroutine out; the wake that ended its wait. A load and a
    /// store whatever the worker count: no transition but under the scheduler's lock
    /// applies to a Ready word in a queue (`woken` refuses it, as `deferred` does unless
    /// it is out, which a queued thread is only as MAIN that does not move, never
    /// deferred), so none comes between them.
    #[inline(always)]
    pub(super) fn dispatched(&self) -> Wake {
        let was = self.load();
        debug_assert_eq!(was.state(), State::Ready);
        let now = Word((was.0 + 1) | OUT);
        self.0.store(now.0, Release);
        now.wake()
    }

    /// It registers a wait ahead of the section it parks in.
    pub(super) fn registered(&self, alone: bool) {
        self.set(alone, &[State::Running], |w| Word(w.0 | REGISTERED));
    }

    /// Its waits registered under the current sequence are off (it does not park in them).
    pub(super) fn voided(&self, alone: bool) {
        self.set(alone, &[State::Running], Word::next_seq);
    }

    /// The wake owed to its next park, taken (None if none came).
    #[inline(always)]
    pub(super) fn take_owed(&self, alone: bool) -> Option<Wake> {
        self.update(alone, |w| {
            if w.0 & OWED == 0 {
                return Err(None);
            }
            Ok((Word(w.0 & !OWED), Some(w.wake())))
        })
    }

    /// Running -> Parked; the wake owed instead (taken) if one came first.
    #[inline(always)]
    pub(super) fn parked(&self, alone: bool) -> Result<(), Wake> {
        self.update(alone, |w| {
            debug_assert_eq!(w.state(), State::Running);
            Ok(if w.0 & OWED == 0 {
                (Word(w.0 + 1), Ok(()))
            } else {
                (Word(w.0 & !OWED), Err(w.wake()))
            })
        })
    }

    /// Ends the wait under `seq` with `how`, if it is still on.
    #[inline(always)]
    pub(super) fn woken(&self, alone: bool, seq: u32, how: Wake) -> Woken {
        self.update(alone, move |w| {
            if w.seq() != seq {
                return Err(Woken::Stale);
            }
            // The sequence moves on, the wake is noted and the wait is no longer
            // registered ahead.
            let ended = Word(w.next_seq().0 & !(WAKE_MASK | REGISTERED) | wake_bits(how));
            if w.is(State::Parked) {
                Ok((
                    Word(ended.0 - (State::Parked as u64 - State::Ready as u64)),
                    Woken::Ready,
                ))
            } else if w.0 & (STATE_MASK | REGISTERED) == RUNNING_REGISTERED {
                // Running stays, owed the wake.
                Ok((Word(ended.0 | OWED), Woken::Early))
            } else {
                Err(Woken::Stale)
            }
        })
    }

    /// Running -> Ready: it steps aside, to be queued.
    pub(super) fn yielded(&self, alone: bool) {
        self.set(alone, &[State::Running], |w| w.with_state(State::Ready));
    }

    /// A Ready thread whose coroutine is out asks its run loop to queue it in `queue` once
    /// it is back; false if it is not out (the caller queues it).
    #[inline(always)]
    pub(super) fn deferred(&self, alone: bool, queue: Queue) -> bool {
        self.update(alone, move |w| {
            debug_assert_eq!(w.state(), State::Ready);
            if !w.out() {
                return Err(false);
            }
            Ok((w.with_requeue(queue), true))
        })
    }

    /// Its coroutine is back in the run loop: the queue it asked for meanwhile.
    #[inline(always)]
    pub(super) fn back(&self, alone: bool) -> Option<Queue> {
        if !alone {
            return self.back_shared();
        }
        let before = self.load();
        if before.0 & REQUEUE_MASK == 0 {
            self.0.store(before.0 & !OUT, Relaxed);
            return None;
        }
        self.0.store(before.0 & !(OUT | REQUEUE_MASK), Relaxed);
        before.requeue()
    }

    /// [`StateWord::back`] with several workers: one atomic and, as a deferral may race
    /// with it (out of line and cold: inlined, the jump over it cost one instruction at
    /// every return of one worker's threads).
    #[cold]
    #[inline(never)]
    fn back_shared(&self) -> Option<Queue> {
        Word(self.0.fetch_and(!(OUT | REQUEUE_MASK), AcqRel)).requeue()
    }

    /// Marks it out if it is not (MAIN, taken back to exit); whether it was not.
    pub(super) fn claimed(&self, alone: bool) -> bool {
        self.update(alone, |w| {
            if w.out() {
                return Err(false);
            }
            Ok((Word(w.0 | OUT), true))
        })
    }

    /// Its end (or MAIN's exit): every wait it registered is off.
    pub(super) fn exited(&self, alone: bool) {
        let from = [State::Ready, State::Running, State::Parked, State::Exited];
        self.set(alone, &from, |w| {
            Word(w.next_seq().0 & !(REGISTERED | OWED)).with_state(State::Exited)
        });
    }

    /// Exited -> Free: the record may be reused. A forked child frees the records of
    /// threads that were not copied, in whatever state (`any`).
    pub(super) fn released(&self, alone: bool, any: bool) {
        let from: &[State] = if any {
            &[State::Ready, State::Running, State::Parked, State::Exited]
        } else {
            &[State::Exited]
        };
        self.set(alone, from, |w| Word(w.0 & SEQ_MASK | Word::FREE.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    #[test]
    fn a_wake_ends_only_the_wait_it_names_and_only_once() {
        let word = StateWord::free();
        word.spawned(false);
        assert_eq!(word.dispatched(), Wake::Ready);
        let seq = word.load().seq();
        assert_eq!(word.woken(false, seq, Wake::Ready), Woken::Stale);
        word.parked(false).unwrap();
        assert_eq!(
            word.woken(false, seq.wrapping_add(1), Wake::Ready),
            Woken::Stale
        );
        assert_eq!(word.woken(false, seq, Wake::TimedOut), Woken::Ready);
        assert_eq!(word.woken(false, seq, Wake::Ready), Woken::Stale);
        assert!(
            word.deferred(false, Queue::Next),
            "out: its run loop queues it"
        );
        assert_eq!(word.back(false), Some(Queue::Next));
        assert!(
            !word.deferred(false, Queue::Next),
            "back: its waker queues it"
        );
        assert_eq!(word.dispatched(), Wake::TimedOut);
        word.registered(false);
        let seq = word.load().seq();
        assert_eq!(word.woken(false, seq, Wake::Closed), Woken::Early);
        assert_eq!(word.parked(false), Err(Wake::Closed));
        assert_eq!(word.take_owed(false), None);
        word.exited(false);
        assert!(!word.load().waits(seq.wrapping_add(1)));
        word.released(false, false);
        assert_eq!(word.load().state(), State::Free);
    }

    /// One OS thread runs a green thread through waits (registered ahead, as a futex
    /// wait that is a cancellation point does, then parked) and run-loop returns, as a
    /// worker does; others wake it and queue it, as wakers on other workers will without
    /// the lock. Every wait ends exactly once, every wake that readied it queues it
    /// exactly once (by its waker, or by the run loop once the coroutine is back), and
    /// no transition is refused (a refused one aborts the test).
    #[test]
    fn wakes_racing_parks_and_returns_end_each_wait_once_and_queue_once() {
        const WAITS: usize = 50_000;
        const WAKERS: usize = 2;
        let word = StateWord::free();
        let queued = AtomicUsize::new(0);
        let woke = AtomicUsize::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..WAKERS {
                scope.spawn(|| {
                    while !done.load(SeqCst) {
                        let seq = word.load().seq();
                        match word.woken(false, seq, Wake::Ready) {
                            Woken::Stale => std::hint::spin_loop(),
                            Woken::Early => {
                                woke.fetch_add(1, SeqCst);
                            }
                            Woken::Ready => {
                                woke.fetch_add(1, SeqCst);
                                if !word.deferred(false, Queue::Next) {
                                    assert_eq!(queued.fetch_add(1, SeqCst), 0, "queued twice");
                                }
                            }
                        }
                    }
                });
            }
            word.spawned(false);
            word.dispatched();
            let mut ended = 0;
            while ended < WAITS {
                word.registered(false);
                if word.take_owed(false).is_some() {
                    ended += 1;
                    continue;
                }
                match word.parked(false) {
                    Err(_) => ended += 1,
                    Ok(()) => {
                        // The coroutine is back in the run loop: queued by it or its waker.
                        if word.back(false).is_some() {
                            assert_eq!(queued.fetch_add(1, SeqCst), 0, "queued twice");
                        }
                        while queued.load(SeqCst) == 0 {
                            std::hint::spin_loop();
                        }
                        queued.fetch_sub(1, SeqCst);
                        assert_eq!(word.load().state(), State::Ready);
                        word.dispatched();
                        ended += 1;
                    }
                }
            }
            done.store(true, SeqCst);
        });
        assert_eq!(woke.load(SeqCst), WAITS);
        assert_eq!(queued.load(SeqCst), 0);
    }
}
