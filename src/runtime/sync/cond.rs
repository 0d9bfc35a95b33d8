//! Condition variable (48 bytes; all-zero = PTHREAD_COND_INITIALIZER).

use super::mutex::Mutex;
use super::word::{sleep_on, wake_word, Slept};
use super::{Caller, LockWait};
use crate::runtime::sched;
use crate::runtime::sched::Interrupts;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::time::Instant;

const COND_MONOTONIC: u32 = 1;
const COND_SHARED: u32 = 2;

/// A sequence count that every signal bumps; waiters sleep on it.
#[repr(C)]
pub struct Cond {
    seq: AtomicU32,
    flags: AtomicU32,
    waiters: AtomicU32,
}

impl Cond {
    /// # Safety
    /// `ptr` points to a pthread_cond_t (48 bytes, 8-aligned) that outlives the borrow.
    pub unsafe fn at<'a>(ptr: *mut libc::pthread_cond_t) -> &'a Cond {
        // SAFETY: our three words fit in the 48 bytes; all atomics.
        unsafe { &*ptr.cast::<Cond>() }
    }

    pub fn init(&self, monotonic: bool, shared: bool) {
        self.seq.store(0, Relaxed);
        self.waiters.store(0, Relaxed);
        let flags =
            if monotonic { COND_MONOTONIC } else { 0 } | if shared { COND_SHARED } else { 0 };
        self.flags.store(flags, Release);
    }

    pub fn monotonic(&self) -> bool {
        self.flags.load(Relaxed) & COND_MONOTONIC != 0
    }

    pub fn destroy(&self) -> Result<(), i32> {
        Ok(())
    }

    /// Unlocks `mutex`, sleeps until signalled (or `deadline`), relocks `mutex`. A
    /// cancellation point for green callers (POSIX): a cancel request acts with `mutex`
    /// held, so that cleanup handlers may unlock it.
    pub fn wait(
        &self,
        mutex: &Mutex,
        caller: Caller,
        deadline: Option<Instant>,
    ) -> Result<(), i32> {
        if caller.green {
            sched::cancellation_point();
        }
        let seq = self.seq.load(SeqCst);
        self.waiters.fetch_add(1, SeqCst);
        if let Err(e) = mutex.unlock(caller) {
            self.waiters.fetch_sub(1, SeqCst);
            return Err(e);
        }
        let shared = self.flags.load(Relaxed) & COND_SHARED != 0;
        let slept = sleep_on(&self.seq, seq, deadline, shared, caller, Interrupts::Cancel);
        self.waiters.fetch_sub(1, SeqCst);
        let relocked = mutex.lock(caller, LockWait::Block);
        if caller.green && sched::cancel_requested() {
            // A signal this waiter took (it may have been cancelled after it was woken)
            // goes to another waiter, as glibc passes it on: at worst a spurious wakeup.
            if matches!(slept, Slept::Woken | Slept::Looked) {
                self.signal(caller);
            }
            sched::cancellation_point();
        }
        let in_time = slept != Slept::TimedOut;
        match relocked {
            Err(libc::EOWNERDEAD) => Err(libc::EOWNERDEAD),
            Err(e) => Err(e),
            Ok(()) if !in_time => Err(libc::ETIMEDOUT),
            Ok(()) => Ok(()),
        }
    }

    fn bump_and_wake(&self, n: u32, caller: Caller) {
        if self.waiters.load(SeqCst) == 0 {
            return;
        }
        self.seq.fetch_add(1, SeqCst);
        let shared = self.flags.load(Relaxed) & COND_SHARED != 0;
        wake_word(&self.seq, n, shared, caller);
    }

    pub fn signal(&self, caller: Caller) {
        self.bump_and_wake(1, caller);
    }

    pub fn broadcast(&self, caller: Caller) {
        self.bump_and_wake(u32::MAX, caller);
    }
}
