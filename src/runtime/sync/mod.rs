//! Mutexes, condition variables, rwlocks, semaphores, barriers, once and spinlocks, on
//! the memory of the program's pthread objects, all built on the green futex.
//!
//! Every caller uses these, green or not: two implementations on one object would
//! corrupt it. The layouts of the mutex and the semaphore are glibc's own (x86_64), so
//! static initialisers work and a PTHREAD_PROCESS_SHARED object can be shared with a
//! process that is not greenified. Condition variables, rwlocks and barriers have layouts
//! of our own inside glibc's sizes, valid when all-zero (the static initialisers);
//! process-shared ones are left to glibc by the hooks.
//!
//! Ownership belongs to the caller's identity ([`Caller::owner`]): a green thread's id
//! for green threads, the kernel thread id otherwise. Ids of green threads are above
//! any kernel thread id, so the two never collide.
//!
//! This file keeps who is calling ([`Caller`]) and how a lock may wait; each object has
//! its own file, and all of them sleep and wake through `word` (the shared sleep-on-word
//! driver); `robust` keeps what an exiting owner leaves behind.

mod barrier;
mod cond;
mod mutex;
mod once;
mod robust;
mod rwlock;
mod sem;
mod spin;
#[cfg(test)]
mod tests;
mod word;

pub use barrier::Barrier;
pub use cond::Cond;
pub use mutex::{
    Mutex, MUTEX_ADAPTIVE, MUTEX_ERRORCHECK, MUTEX_NORMAL, MUTEX_PRIO_INHERIT, MUTEX_PRIO_PROTECT,
    MUTEX_PSHARED, MUTEX_RECURSIVE, MUTEX_ROBUST,
};
pub use once::once;
pub use robust::owner_exited;
pub use rwlock::RwLock;
pub use sem::{Semaphore, SEM_VALUE_MAX};
pub use spin::spin_lock;
pub use word::{green_sleep_on, Slept};

use std::time::Instant;

/// Green owner ids start here (kernel thread ids stay below 2^22).
pub const GREEN_OWNER_BASE: i32 = 0x4000_0000;

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// On a green thread of the scheduler of this OS thread.
    pub green: bool,
    /// The owner identity recorded in mutexes and rwlocks.
    pub owner: i32,
}

/// The kernel thread id: the owner identity of process-shared mutexes (a process running
/// glibc compares it with its own thread ids).
pub fn os_tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// How a lock operation may wait.
#[derive(Clone, Copy, Debug)]
pub enum LockWait {
    Block,
    Try,
    Until(Instant),
}

impl LockWait {
    fn deadline(self) -> Option<Instant> {
        match self {
            LockWait::Until(d) => Some(d),
            _ => None,
        }
    }
}
