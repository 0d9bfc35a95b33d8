//! Semaphore: glibc's new_sem (value in the low 32 bits, sleepers in the high 32 bits).

use super::word::{sleep_on, wake_word, Slept};
use super::{Caller, LockWait};
use crate::runtime::sched::Interrupts;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;
const SEM_NWAITERS_ONE: u64 = 1 << 32;

#[repr(C)]
pub struct Semaphore {
    data: AtomicU64,
    /// glibc's `private`: FUTEX_PRIVATE_FLAG for process-shared (LLL_SHARED, also what
    /// sem_open writes), 0 for process-private (so a zeroed sem_t is private).
    private: AtomicI32,
}

impl Semaphore {
    /// # Safety
    /// `ptr` points to a sem_t (32 bytes, 8-aligned) that outlives the borrow.
    pub unsafe fn at<'a>(ptr: *mut libc::sem_t) -> &'a Semaphore {
        // SAFETY: 12 bytes of atomics inside glibc's 32.
        unsafe { &*ptr.cast::<Semaphore>() }
    }

    pub fn init(&self, shared: bool, value: u32) -> Result<(), i32> {
        if value > SEM_VALUE_MAX {
            return Err(libc::EINVAL);
        }
        self.data.store(u64::from(value), Relaxed);
        let private = if shared { libc::FUTEX_PRIVATE_FLAG } else { 0 };
        self.private.store(private, Release);
        Ok(())
    }

    fn shared(&self) -> bool {
        self.private.load(Relaxed) != 0
    }

    /// The 32-bit value word (the low half on little-endian x86_64), glibc's futex word.
    fn value_word(&self) -> &AtomicU32 {
        // SAFETY: the low 4 bytes of an aligned AtomicU64; glibc uses the same futex word.
        unsafe { &*(self as *const Semaphore).cast::<AtomicU32>() }
    }

    pub fn value(&self) -> u32 {
        self.data.load(Relaxed) as u32
    }

    pub fn try_take(&self) -> bool {
        let mut data = self.data.load(Relaxed);
        loop {
            if data as u32 == 0 {
                return false;
            }
            match self
                .data
                .compare_exchange_weak(data, data - 1, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => data = now,
            }
        }
    }

    pub fn wait(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        loop {
            if self.try_take() {
                return Ok(());
            }
            if matches!(wait, LockWait::Try) {
                return Err(libc::EAGAIN);
            }
            self.data.fetch_add(SEM_NWAITERS_ONE, SeqCst);
            let slept = sleep_on(
                self.value_word(),
                0,
                wait.deadline(),
                self.shared(),
                caller,
                Interrupts::Signals,
            );
            self.data.fetch_sub(SEM_NWAITERS_ONE, SeqCst);
            match slept {
                Slept::Woken | Slept::Looked => {}
                // As the kernel's futex wait under glibc: a wait without a deadline is
                // restarted after an SA_RESTART handler, a timed one never is.
                Slept::Interrupted { restart } if restart && wait.deadline().is_none() => {}
                Slept::Interrupted { .. } => return Err(libc::EINTR),
                Slept::TimedOut if self.try_take() => return Ok(()),
                Slept::TimedOut => return Err(libc::ETIMEDOUT),
            }
        }
    }

    pub fn post(&self, caller: Caller) -> Result<(), i32> {
        let mut data = self.data.load(Relaxed);
        loop {
            if data as u32 == SEM_VALUE_MAX {
                return Err(libc::EOVERFLOW);
            }
            match self
                .data
                .compare_exchange_weak(data, data + 1, Release, Relaxed)
            {
                Ok(_) => break,
                Err(now) => data = now,
            }
        }
        if data >> 32 > 0 {
            wake_word(self.value_word(), 1, self.shared(), caller);
        }
        Ok(())
    }
}
