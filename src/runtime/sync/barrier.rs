//! Barrier (32 bytes): the last of `count` arrivals starts the next round and wakes the
//! others.

use super::word::{wait_word, wake_word};
use super::Caller;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

#[repr(C)]
pub struct Barrier {
    count: AtomicU32,
    arrived: AtomicU32,
    round: AtomicU32,
}

impl Barrier {
    /// # Safety
    /// `ptr` points to a pthread_barrier_t (32 bytes) that outlives the borrow.
    pub unsafe fn at<'a>(ptr: *mut libc::pthread_barrier_t) -> &'a Barrier {
        // SAFETY: 12 bytes of atomics inside glibc's 32.
        unsafe { &*ptr.cast::<Barrier>() }
    }

    pub fn init(&self, count: u32) -> Result<(), i32> {
        if count == 0 {
            return Err(libc::EINVAL);
        }
        self.arrived.store(0, Relaxed);
        self.round.store(0, Relaxed);
        self.count.store(count, Release);
        Ok(())
    }

    pub fn destroy(&self) -> Result<(), i32> {
        if self.arrived.load(SeqCst) != 0 {
            return Err(libc::EBUSY);
        }
        Ok(())
    }

    /// True for the one caller of each round that gets PTHREAD_BARRIER_SERIAL_THREAD.
    pub fn wait(&self, caller: Caller) -> bool {
        let round = self.round.load(SeqCst);
        let arrived = self.arrived.fetch_add(1, SeqCst) + 1;
        if arrived == self.count.load(Relaxed) {
            self.arrived.store(0, SeqCst);
            self.round.fetch_add(1, SeqCst);
            wake_word(&self.round, u32::MAX, false, caller);
            return true;
        }
        while self.round.load(SeqCst) == round {
            wait_word(&self.round, round, None, false, caller);
        }
        false
    }
}
