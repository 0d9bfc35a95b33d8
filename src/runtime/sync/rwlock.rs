//! Reader-writer lock (56 bytes; all-zero = PTHREAD_RWLOCK_INITIALIZER).

use super::word::{wait_word, wake_word};
use super::{Caller, LockWait};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicU32};

const WRITER: u32 = 1 << 31;

/// glibc's PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, at glibc's `__flags` offset.
const PREFER_WRITER_NONRECURSIVE: u32 = 2;

#[repr(C)]
pub struct RwLock {
    /// Reader count, or WRITER.
    state: AtomicU32,
    writers_waiting: AtomicU32,
    readers_waiting: AtomicU32,
    /// Bumped on every release; sleepers sleep on it.
    seq: AtomicU32,
    _pad: [AtomicU32; 2],
    /// Owner of the write lock (glibc's `__cur_writer` offset).
    writer: AtomicI32,
    /// glibc's `__shared` offset.
    shared: AtomicI32,
    _pad2: [AtomicU32; 4],
    /// glibc's `__flags` offset: the kind.
    flags: AtomicU32,
}

impl RwLock {
    /// # Safety
    /// `ptr` points to a pthread_rwlock_t (56 bytes, 8-aligned) that outlives the borrow.
    pub unsafe fn at<'a>(ptr: *mut libc::pthread_rwlock_t) -> &'a RwLock {
        // SAFETY: our layout is exactly 56 bytes of atomics.
        unsafe { &*ptr.cast::<RwLock>() }
    }

    pub fn init(&self, kind: u32) {
        for word in [
            &self.state,
            &self.writers_waiting,
            &self.readers_waiting,
            &self.seq,
        ] {
            word.store(0, Relaxed);
        }
        self.writer.store(0, Relaxed);
        self.shared.store(0, Relaxed);
        self.flags.store(kind, Release);
    }

    pub fn destroy(&self) -> Result<(), i32> {
        Ok(())
    }

    fn prefer_writers(&self) -> bool {
        self.flags.load(Relaxed) == PREFER_WRITER_NONRECURSIVE
    }

    fn sleep(
        &self,
        waiting: &AtomicU32,
        seq: u32,
        caller: Caller,
        wait: LockWait,
    ) -> Result<(), i32> {
        waiting.fetch_add(1, SeqCst);
        let in_time = wait_word(&self.seq, seq, wait.deadline(), false, caller);
        waiting.fetch_sub(1, SeqCst);
        if in_time {
            Ok(())
        } else {
            Err(libc::ETIMEDOUT)
        }
    }

    /// The caller holds the write lock: EDEADLK for a waiting call, EBUSY for a try.
    fn own_writer(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        if self.writer.load(Relaxed) == caller.owner && self.state.load(Relaxed) == WRITER {
            return Err(if matches!(wait, LockWait::Try) {
                libc::EBUSY
            } else {
                libc::EDEADLK
            });
        }
        Ok(())
    }

    pub fn read(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        self.own_writer(caller, wait)?;
        loop {
            let seq = self.seq.load(SeqCst);
            let state = self.state.load(SeqCst);
            let blocked = state & WRITER != 0
                || (self.prefer_writers() && self.writers_waiting.load(SeqCst) > 0);
            if !blocked {
                if state & !WRITER == !WRITER {
                    return Err(libc::EAGAIN);
                }
                if self
                    .state
                    .compare_exchange(state, state + 1, Acquire, Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            if matches!(wait, LockWait::Try) {
                return Err(libc::EBUSY);
            }
            self.sleep(&self.readers_waiting, seq, caller, wait)?;
        }
    }

    pub fn write(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        self.own_writer(caller, wait)?;
        loop {
            let seq = self.seq.load(SeqCst);
            if self
                .state
                .compare_exchange(0, WRITER, Acquire, Relaxed)
                .is_ok()
            {
                self.writer.store(caller.owner, Relaxed);
                return Ok(());
            }
            if matches!(wait, LockWait::Try) {
                return Err(libc::EBUSY);
            }
            self.sleep(&self.writers_waiting, seq, caller, wait)?;
        }
    }

    pub fn unlock(&self, caller: Caller) -> Result<(), i32> {
        let state = self.state.load(SeqCst);
        if state == WRITER {
            if self.writer.load(Relaxed) != caller.owner {
                return Err(libc::EPERM);
            }
            self.writer.store(0, Relaxed);
            self.state.store(0, Release);
        } else if state == 0 {
            return Err(libc::EPERM);
        } else {
            self.state.fetch_sub(1, Release);
        }
        let waiting = self.readers_waiting.load(SeqCst) + self.writers_waiting.load(SeqCst);
        if waiting > 0 && self.state.load(SeqCst) & !WRITER == 0 {
            self.seq.fetch_add(1, SeqCst);
            wake_word(&self.seq, u32::MAX, false, caller);
        }
        Ok(())
    }
}
