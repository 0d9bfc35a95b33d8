//! The shared sleep-on-word driver every object here waits with: a green caller parks on
//! the green futex, any other sleeps in the kernel's; a wake reaches both.

use super::Caller;
use crate::runtime::sched::Interrupts;
use crate::runtime::wait::{Reason, Wake};
use crate::runtime::{futex, sched};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

/// How a sleep on a word ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Slept {
    /// Woken, or the word changed, or a spurious wakeup: look again.
    Woken,
    /// A process-shared word's periodic look (another process cannot wake a green
    /// thread): nobody woke it; look again.
    Looked,
    TimedOut,
    /// A signal handler ran (`restart`: it has SA_RESTART), or a cancel request came (see
    /// [`Interrupts`]).
    Interrupted {
        restart: bool,
    },
}

/// Sleeps while `*word == expected`.
pub(super) fn wait_word(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    shared: bool,
    caller: Caller,
) -> bool {
    sleep_on(
        word,
        expected,
        deadline,
        shared,
        caller,
        Interrupts::Nothing,
    ) != Slept::TimedOut
}

pub(super) fn sleep_on(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    shared: bool,
    caller: Caller,
    interrupts: Interrupts,
) -> Slept {
    if !caller.green {
        return if futex::native_wait(word, expected, deadline, shared) {
            Slept::Woken
        } else {
            Slept::TimedOut
        };
    }
    green_sleep_on(word, expected, deadline, shared, interrupts)
}

/// Parks the current green thread while `*word == expected` (the green futex), until
/// `deadline`. A shared word may be changed by another process, which cannot wake a
/// green thread: it is looked at again every SHARED_POLL.
pub fn green_sleep_on(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    shared: bool,
    interrupts: Interrupts,
) -> Slept {
    let nap = shared.then(|| Instant::now() + futex::SHARED_POLL);
    let until = match (deadline, nap) {
        (Some(d), Some(n)) => Some(d.min(n)),
        (d, n) => d.or(n),
    };
    let addr = word.as_ptr() as usize;
    let still = || word.load(SeqCst) == expected;
    match sched::futex_wait(addr, still, Reason::Sync, until, interrupts) {
        Wake::Interrupted { restart } => Slept::Interrupted { restart },
        Wake::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => Slept::TimedOut,
        Wake::TimedOut => Slept::Looked,
        Wake::Ready | Wake::Closed => Slept::Woken,
    }
}

/// Wakes up to `n` sleepers of `word`, green and native.
pub(super) fn wake_word(word: &AtomicU32, n: u32, shared: bool, caller: Caller) {
    let addr = word.as_ptr() as usize;
    let mut woken = 0;
    if caller.green {
        woken = sched::futex_wake(addr, n as usize);
    } else if futex::green_sleepers_exist() {
        futex::post_remote(addr);
    }
    if (woken as u32) < n {
        futex::native_wake(word, n - woken as u32, shared);
    }
}
