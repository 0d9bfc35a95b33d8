//! Mutex: glibc's pthread_mutex_t (40 bytes), with its types (normal, recursive,
//! errorcheck, adaptive), robust and process-shared variants.

use super::robust::{robust_held, INCONSISTENT, OWNER_DEAD, OWNER_NOT_RECOVERABLE};
use super::word::{wait_word, wake_word};
use super::{os_tid, Caller, LockWait};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize};

pub const MUTEX_NORMAL: i32 = 0;
pub const MUTEX_RECURSIVE: i32 = 1;
pub const MUTEX_ERRORCHECK: i32 = 2;
pub const MUTEX_ADAPTIVE: i32 = 3;
pub const MUTEX_ROBUST: i32 = 16;
pub const MUTEX_PRIO_INHERIT: i32 = 32;
pub const MUTEX_PRIO_PROTECT: i32 = 64;
pub const MUTEX_PSHARED: i32 = 128;

/// A kind whose lock and unlock check nothing (no owner, count or robust list to look
/// at, nobody else's memory): normal or adaptive, process-private.
#[inline(always)]
fn unchecked(kind: i32) -> bool {
    kind == MUTEX_NORMAL || kind == MUTEX_ADAPTIVE
}

/// The words of glibc's `struct __pthread_mutex_s`.
///
/// `lock` is glibc's lock word: 0 free, 1 locked, 2 locked and maybe sleepers.
#[repr(C)]
pub struct Mutex {
    lock: AtomicU32,
    count: AtomicU32,
    pub(super) owner: AtomicI32,
    nusers: AtomicU32,
    kind: AtomicI32,
    spins_elision: AtomicU32,
    list: [AtomicUsize; 2],
}

impl Mutex {
    /// # Safety
    /// `ptr` points to a pthread_mutex_t (40 bytes, 8-aligned) that outlives the borrow.
    pub unsafe fn at<'a>(ptr: *mut libc::pthread_mutex_t) -> &'a Mutex {
        // SAFETY: same size and alignment; every field is an atomic, so concurrent use by
        // other threads is defined.
        unsafe { &*ptr.cast::<Mutex>() }
    }

    pub fn init(&self, kind: i32) {
        self.lock.store(0, Relaxed);
        self.count.store(0, Relaxed);
        self.owner.store(0, Relaxed);
        self.nusers.store(0, Relaxed);
        self.spins_elision.store(0, Relaxed);
        self.list[0].store(0, Relaxed);
        self.list[1].store(0, Relaxed);
        self.kind.store(kind, Release);
    }

    pub fn kind(&self) -> i32 {
        self.kind.load(Relaxed)
    }

    fn shared(&self) -> bool {
        self.kind() & MUTEX_PSHARED != 0
    }

    fn me(&self, caller: Caller) -> i32 {
        if self.shared() {
            os_tid()
        } else {
            caller.owner
        }
    }

    pub fn destroy(&self) -> Result<(), i32> {
        if self.kind() & MUTEX_ROBUST == 0 && self.nusers.load(Relaxed) != 0 {
            return Err(libc::EBUSY);
        }
        self.kind.store(-1, Relaxed);
        Ok(())
    }

    /// Locks it. A free mutex of a kind that checks nothing (normal or adaptive, not
    /// robust, process-private) is taken inline: with the checks of the other kinds in
    /// the same function, its saved registers alone cost 16 instructions a call.
    #[inline(always)]
    pub fn lock(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        let kind = self.kind();
        if unchecked(kind) && self.lock.compare_exchange(0, 1, Acquire, Relaxed).is_ok() {
            return self.acquired(caller.owner, kind, false);
        }
        self.lock_checked(caller, wait)
    }

    /// [`Mutex::lock`] for every other kind, and a mutex that is held.
    #[inline(never)]
    fn lock_checked(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
        let kind = self.kind();
        // Destroyed (-1) or a kind glibc does not know.
        if kind < 0
            || kind & !(3 | MUTEX_ROBUST | MUTEX_PRIO_INHERIT | MUTEX_PRIO_PROTECT | MUTEX_PSHARED)
                != 0
        {
            return Err(libc::EINVAL);
        }
        let ty = kind & 3;
        let robust = kind & MUTEX_ROBUST != 0;
        let me = self.me(caller);
        let owner = self.owner.load(Relaxed);
        if robust && owner == OWNER_NOT_RECOVERABLE {
            return Err(libc::ENOTRECOVERABLE);
        }
        if owner == me {
            match ty {
                MUTEX_RECURSIVE => {
                    let count = self.count.load(Relaxed);
                    if count & !INCONSISTENT == !INCONSISTENT {
                        return Err(libc::EAGAIN);
                    }
                    self.count.store(count + 1, Relaxed);
                    return Ok(());
                }
                // glibc: trylock on a plain errorcheck mutex says EBUSY, on a robust or
                // priority-inheriting one EDEADLK, like every other lock call.
                MUTEX_ERRORCHECK
                    if !matches!(wait, LockWait::Try)
                        || kind & (MUTEX_ROBUST | MUTEX_PRIO_INHERIT) != 0 =>
                {
                    return Err(libc::EDEADLK)
                }
                _ if robust && !matches!(wait, LockWait::Try) => return Err(libc::EDEADLK),
                _ => {}
            }
        }
        if self.lock.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            if matches!(wait, LockWait::Try) {
                return Err(libc::EBUSY);
            }
            let shared = self.shared();
            // With the watchdog on, an endless wait of a green thread notes whom it waits
            // for: the deadlock report follows those notes.
            let watched = caller.green
                && !shared
                && wait.deadline().is_none()
                && crate::runtime::watchdog::watching_locks();
            // Take it as "locked, maybe sleepers": our unlock then wakes the next one.
            while self.lock.swap(2, Acquire) != 0 {
                if watched {
                    crate::runtime::sched::waits_for_mutex(self as *const Mutex as usize);
                }
                if !wait_word(&self.lock, 2, wait.deadline(), shared, caller) {
                    return Err(libc::ETIMEDOUT);
                }
            }
            if watched {
                crate::runtime::sched::mutex_taken();
            }
        }
        self.acquired(me, ty, robust)
    }

    fn acquired(&self, me: i32, ty: i32, robust: bool) -> Result<(), i32> {
        // Plain loads and stores, as glibc: the lock we now hold protects these fields.
        let previous = self.owner.load(Relaxed);
        self.owner.store(me, Relaxed);
        self.nusers
            .store(self.nusers.load(Relaxed).wrapping_add(1), Relaxed);
        self.count.store(u32::from(ty == MUTEX_RECURSIVE), Relaxed);
        if !robust {
            return Ok(());
        }
        let addr = self as *const Mutex as usize;
        robust_held(|held| held.entry(me).or_default().push(addr));
        match previous {
            OWNER_DEAD => {
                self.count.fetch_or(INCONSISTENT, Relaxed);
                Err(libc::EOWNERDEAD)
            }
            OWNER_NOT_RECOVERABLE => {
                // Raced with the unlock that made it unrecoverable: give it back.
                self.owner.store(OWNER_NOT_RECOVERABLE, Relaxed);
                self.release(false);
                Err(libc::ENOTRECOVERABLE)
            }
            _ => Ok(()),
        }
    }

    /// Unlocks it: inline for a kind that checks nothing (see [`Mutex::lock`]).
    #[inline(always)]
    pub fn unlock(&self, caller: Caller) -> Result<(), i32> {
        if unchecked(self.kind()) {
            self.released(0, caller.green);
            return Ok(());
        }
        self.unlock_checked(caller)
    }

    /// [`Mutex::unlock`] for every other kind.
    #[inline(never)]
    fn unlock_checked(&self, caller: Caller) -> Result<(), i32> {
        let kind = self.kind();
        if kind < 0 {
            return Err(libc::EINVAL);
        }
        let ty = kind & 3;
        let robust = kind & MUTEX_ROBUST != 0;
        let me = self.me(caller);
        let checked = robust || ty == MUTEX_RECURSIVE || ty == MUTEX_ERRORCHECK;
        if checked && (self.owner.load(Relaxed) != me || self.lock.load(Relaxed) == 0) {
            return Err(libc::EPERM);
        }
        if ty == MUTEX_RECURSIVE {
            let count = self.count.load(Relaxed);
            if count & !INCONSISTENT > 1 {
                self.count.store(count - 1, Relaxed);
                return Ok(());
            }
        }
        let mut next_owner = 0;
        if robust {
            let addr = self as *const Mutex as usize;
            robust_held(|held| {
                if let Some(list) = held.get_mut(&me) {
                    list.retain(|&a| a != addr);
                    if list.is_empty() {
                        held.remove(&me);
                    }
                }
            });
            if self.count.load(Relaxed) & INCONSISTENT != 0 {
                next_owner = OWNER_NOT_RECOVERABLE;
            }
        }
        self.released(next_owner, caller.green);
        Ok(())
    }

    /// Its owner leaves it (to `next_owner`: 0, or OWNER_NOT_RECOVERABLE) and releases it.
    fn released(&self, next_owner: i32, green: bool) {
        self.owner.store(next_owner, Relaxed);
        self.count.store(0, Relaxed);
        self.release(green);
    }

    pub(super) fn release(&self, green: bool) {
        let users = self.nusers.load(Relaxed);
        self.nusers.store(users.saturating_sub(1), Relaxed);
        if self.lock.swap(0, Release) == 2 {
            let caller = Caller { green, owner: 0 };
            wake_word(&self.lock, 1, self.shared(), caller);
        }
    }

    /// pthread_mutex_consistent (glibc does not check who calls it).
    pub fn make_consistent(&self) -> Result<(), i32> {
        let robust = self.kind() & MUTEX_ROBUST != 0;
        if !robust || self.count.load(Relaxed) & INCONSISTENT == 0 {
            return Err(libc::EINVAL);
        }
        self.count.fetch_and(!INCONSISTENT, Relaxed);
        Ok(())
    }
}
