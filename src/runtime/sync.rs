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

use super::futex;
use super::sched::{self, Interrupts, Reason, Wake};
use std::collections::HashMap;
use std::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::Mutex as StdMutex;
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
fn wait_word(
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

fn sleep_on(
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
fn wake_word(word: &AtomicU32, n: u32, shared: bool, caller: Caller) {
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

// ---------------------------------------------------------------------------------------
// Mutex: glibc's pthread_mutex_t (40 bytes).
// ---------------------------------------------------------------------------------------

pub const MUTEX_NORMAL: i32 = 0;
pub const MUTEX_RECURSIVE: i32 = 1;
pub const MUTEX_ERRORCHECK: i32 = 2;
pub const MUTEX_ADAPTIVE: i32 = 3;
pub const MUTEX_ROBUST: i32 = 16;
pub const MUTEX_PRIO_INHERIT: i32 = 32;
pub const MUTEX_PRIO_PROTECT: i32 = 64;
pub const MUTEX_PSHARED: i32 = 128;

/// `owner` of a robust mutex whose owner exited holding it.
const OWNER_DEAD: i32 = i32::MAX;
/// `owner` of a robust mutex unlocked while inconsistent: unusable for good.
const OWNER_NOT_RECOVERABLE: i32 = i32::MAX - 1;
/// In `count`: the holder got EOWNERDEAD and has not called pthread_mutex_consistent.
const INCONSISTENT: u32 = 1 << 31;

/// The words of glibc's `struct __pthread_mutex_s`.
///
/// `lock` is glibc's lock word: 0 free, 1 locked, 2 locked and maybe sleepers.
#[repr(C)]
pub struct Mutex {
    lock: AtomicU32,
    count: AtomicU32,
    owner: AtomicI32,
    nusers: AtomicU32,
    kind: AtomicI32,
    spins_elision: AtomicU32,
    list: [AtomicUsize; 2],
}

/// Robust mutexes held, per owner: released as "owner dead" when a green thread exits.
static ROBUST_HELD: StdMutex<Option<HashMap<i32, Vec<usize>>>> = StdMutex::new(None);

fn robust_held(f: impl FnOnce(&mut HashMap<i32, Vec<usize>>)) {
    let mut guard = ROBUST_HELD.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new));
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

    pub fn lock(&self, caller: Caller, wait: LockWait) -> Result<(), i32> {
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
            // Take it as "locked, maybe sleepers": our unlock then wakes the next one.
            while self.lock.swap(2, Acquire) != 0 {
                if !wait_word(&self.lock, 2, wait.deadline(), shared, caller) {
                    return Err(libc::ETIMEDOUT);
                }
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

    pub fn unlock(&self, caller: Caller) -> Result<(), i32> {
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
                }
            });
            if self.count.load(Relaxed) & INCONSISTENT != 0 {
                next_owner = OWNER_NOT_RECOVERABLE;
            }
        }
        self.owner.store(next_owner, Relaxed);
        self.count.store(0, Relaxed);
        self.release(caller.green);
        Ok(())
    }

    fn release(&self, green: bool) {
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

/// A green thread with owner id `owner` exited: its robust mutexes become "owner dead",
/// and a once routine it was running is reset for the next caller.
pub fn owner_exited(owner: i32, green: bool) {
    let mut onces = Vec::new();
    once_running_by(|m| onces = m.remove(&owner).unwrap_or_default());
    for addr in onces {
        // SAFETY: a once control whose routine was running when its thread exited; the
        // program keeps it alive (it is a static in practice).
        let control = unsafe { &*(addr as *const AtomicU32) };
        control.store(0, Release);
        wake_word(control, u32::MAX, false, Caller { green, owner: 0 });
    }
    let mut held = Vec::new();
    robust_held(|map| held = map.remove(&owner).unwrap_or_default());
    for addr in held {
        // SAFETY: a robust mutex still registered as held is still locked by this owner,
        // so the program cannot have destroyed it legitimately.
        let m = unsafe { &*(addr as *const Mutex) };
        if m.owner.load(Relaxed) == owner {
            m.owner.store(OWNER_DEAD, Relaxed);
            m.release(green);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Condition variable (48 bytes; all-zero = PTHREAD_COND_INITIALIZER).
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Reader-writer lock (56 bytes; all-zero = PTHREAD_RWLOCK_INITIALIZER).
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Semaphore: glibc's new_sem (value in the low 32 bits, sleepers in the high 32 bits).
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Barrier (32 bytes), once, spinlock.
// ---------------------------------------------------------------------------------------

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

const ONCE_RUNNING: u32 = 1;
const ONCE_DONE: u32 = 2;

/// Once controls whose routine is running, per owner: reset if that thread exits inside
/// the routine (pthread_exit or cancellation), so that another caller runs it again.
static ONCE_RUNNING_BY: StdMutex<Option<HashMap<i32, Vec<usize>>>> = StdMutex::new(None);

fn once_running_by(f: impl FnOnce(&mut HashMap<i32, Vec<usize>>)) {
    let mut guard = ONCE_RUNNING_BY.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new));
}

/// pthread_once: runs `init` exactly once; later callers wait until it has finished.
pub fn once(control: &AtomicU32, caller: Caller, init: impl FnOnce()) {
    let addr = control as *const AtomicU32 as usize;
    loop {
        match control.compare_exchange(0, ONCE_RUNNING, Acquire, Acquire) {
            Ok(_) => {
                once_running_by(|m| m.entry(caller.owner).or_default().push(addr));
                init();
                once_running_by(|m| {
                    if let Some(list) = m.get_mut(&caller.owner) {
                        list.retain(|&a| a != addr);
                    }
                });
                control.store(ONCE_DONE, Release);
                wake_word(control, u32::MAX, false, caller);
                return;
            }
            Err(ONCE_DONE) => return,
            Err(state) => {
                wait_word(control, state, None, false, caller);
            }
        }
    }
}

/// pthread_spin_lock: a green thread spinning lets the holder run.
pub fn spin_lock(word: &AtomicI32, caller: Caller) {
    while word.compare_exchange_weak(0, 1, Acquire, Relaxed).is_err() {
        if caller.green {
            sched::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::sched::{
        init_current_thread, join, spawn, Config, JoinWait, SpawnOptions, StackRequest,
    };
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    fn init() {
        init_current_thread(Config {
            guard_budget: 16,
            fd_floor: 200,
            tls: crate::config::Tls::Off,
        });
    }

    fn opts() -> SpawnOptions {
        SpawnOptions {
            stack: StackRequest::Size(64 << 10),
            detached: false,
            name: [0; 16],
            sigmask: None,
        }
    }

    fn me() -> Caller {
        let id = sched::current_id();
        Caller {
            green: true,
            owner: GREEN_OWNER_BASE | id as i32,
        }
    }

    fn boxed<T>() -> &'static T {
        // SAFETY: all-zero is the static initialiser of every object here.
        Box::leak(Box::new(unsafe { std::mem::zeroed::<T>() }))
    }

    fn nap(ms: u64) {
        sched::sleep_until(Instant::now() + Duration::from_millis(ms));
    }

    #[test]
    fn a_mutex_held_across_a_park_excludes_others_in_fifo_order() {
        init();
        let m: &'static Mutex = boxed();
        let order = Rc::new(RefCell::new(Vec::new()));
        let inside = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let (order, inside) = (order.clone(), inside.clone());
                spawn(
                    move || {
                        m.lock(me(), LockWait::Block).unwrap();
                        inside.set(inside.get() + 1);
                        assert_eq!(inside.get(), 1);
                        nap(2);
                        order.borrow_mut().push(i);
                        inside.set(inside.get() - 1);
                        m.unlock(me()).unwrap();
                        0
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for h in hs {
            join(h, JoinWait::Block).unwrap();
        }
        assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
        assert_eq!(m.destroy(), Ok(()));
    }

    #[test]
    fn mutex_kinds_give_native_errors() {
        init();
        let m: &'static Mutex = boxed();
        m.init(MUTEX_ERRORCHECK);
        m.lock(me(), LockWait::Block).unwrap();
        assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EDEADLK));
        assert_eq!(m.lock(me(), LockWait::Try), Err(libc::EBUSY));
        assert_eq!(m.destroy(), Err(libc::EBUSY));
        let other = spawn(move || m.unlock(me()).unwrap_err() as usize, opts()).unwrap();
        assert_eq!(join(other, JoinWait::Block), Ok(libc::EPERM as usize));
        let timed = spawn(
            move || {
                let t0 = Instant::now();
                let r = m.lock(me(), LockWait::Until(t0 + Duration::from_millis(20)));
                assert!(t0.elapsed() >= Duration::from_millis(20));
                r.unwrap_err() as usize
            },
            opts(),
        )
        .unwrap();
        assert_eq!(join(timed, JoinWait::Block), Ok(libc::ETIMEDOUT as usize));
        m.unlock(me()).unwrap();
        assert_eq!(m.unlock(me()), Err(libc::EPERM));
        let r: &'static Mutex = boxed();
        r.init(MUTEX_RECURSIVE);
        for _ in 0..3 {
            r.lock(me(), LockWait::Block).unwrap();
        }
        assert_eq!(r.lock(me(), LockWait::Try), Ok(()));
        for _ in 0..4 {
            r.unlock(me()).unwrap();
        }
        assert_eq!(r.unlock(me()), Err(libc::EPERM));
        m.destroy().unwrap();
        assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EINVAL));
    }

    #[test]
    fn robust_mutex_of_an_exited_owner() {
        init();
        let m: &'static Mutex = boxed();
        m.init(MUTEX_ROBUST);
        let dies = spawn(
            move || {
                m.lock(me(), LockWait::Block).unwrap();
                owner_exited(me().owner, true);
                0
            },
            opts(),
        )
        .unwrap();
        join(dies, JoinWait::Block).unwrap();
        assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EOWNERDEAD));
        m.unlock(me()).unwrap();
        assert_eq!(m.lock(me(), LockWait::Block), Err(libc::ENOTRECOVERABLE));
        let fixed: &'static Mutex = boxed();
        fixed.init(MUTEX_ROBUST);
        fixed.lock(me(), LockWait::Block).unwrap();
        owner_exited(me().owner, true);
        assert_eq!(fixed.lock(me(), LockWait::Block), Err(libc::EOWNERDEAD));
        fixed.make_consistent().unwrap();
        fixed.unlock(me()).unwrap();
        assert_eq!(fixed.lock(me(), LockWait::Block), Ok(()));
    }

    #[test]
    fn condvar_ping_pong_and_timeout() {
        init();
        let m: &'static Mutex = boxed();
        let c: &'static Cond = boxed();
        let turn: &'static AtomicU32 = boxed();
        let other = spawn(
            move || {
                for i in 0..100 {
                    m.lock(me(), LockWait::Block).unwrap();
                    while turn.load(Relaxed) != 1 {
                        c.wait(m, me(), None).unwrap();
                    }
                    turn.store(0, Relaxed);
                    c.signal(me());
                    m.unlock(me()).unwrap();
                    let _ = i;
                }
                0
            },
            opts(),
        )
        .unwrap();
        for _ in 0..100 {
            m.lock(me(), LockWait::Block).unwrap();
            turn.store(1, Relaxed);
            c.signal(me());
            while turn.load(Relaxed) != 0 {
                c.wait(m, me(), None).unwrap();
            }
            m.unlock(me()).unwrap();
        }
        join(other, JoinWait::Block).unwrap();
        m.lock(me(), LockWait::Block).unwrap();
        let t0 = Instant::now();
        let r = c.wait(m, me(), Some(t0 + Duration::from_millis(15)));
        assert_eq!(r, Err(libc::ETIMEDOUT));
        assert!(t0.elapsed() >= Duration::from_millis(15));
        // The mutex is held again after a timeout.
        assert_eq!(m.unlock(me()), Ok(()));
    }

    #[test]
    fn rwlock_shares_readers_and_excludes_writers() {
        init();
        let l: &'static RwLock = boxed();
        let readers_inside = Rc::new(Cell::new(0));
        let max_inside = Rc::new(Cell::new(0));
        let mut hs = vec![];
        for _ in 0..4 {
            let (inside, max) = (readers_inside.clone(), max_inside.clone());
            hs.push(
                spawn(
                    move || {
                        l.read(me(), LockWait::Block).unwrap();
                        inside.set(inside.get() + 1);
                        max.set(max.get().max(inside.get()));
                        nap(5);
                        inside.set(inside.get() - 1);
                        l.unlock(me()).unwrap();
                        0
                    },
                    opts(),
                )
                .unwrap(),
            );
        }
        let inside = readers_inside.clone();
        hs.push(
            spawn(
                move || {
                    l.write(me(), LockWait::Block).unwrap();
                    assert_eq!(inside.get(), 0);
                    assert_eq!(l.write(me(), LockWait::Block), Err(libc::EDEADLK));
                    assert_eq!(l.read(me(), LockWait::Block), Err(libc::EDEADLK));
                    l.unlock(me()).unwrap();
                    0
                },
                opts(),
            )
            .unwrap(),
        );
        for h in hs {
            join(h, JoinWait::Block).unwrap();
        }
        assert!(max_inside.get() > 1);
        l.read(me(), LockWait::Block).unwrap();
        assert_eq!(l.write(me(), LockWait::Try), Err(libc::EBUSY));
        let t0 = Instant::now();
        assert_eq!(
            l.write(me(), LockWait::Until(t0 + Duration::from_millis(10))),
            Err(libc::ETIMEDOUT)
        );
        l.unlock(me()).unwrap();
        assert_eq!(l.unlock(me()), Err(libc::EPERM));
    }

    #[test]
    fn semaphore_counts_times_out_and_overflows() {
        init();
        let s: &'static Semaphore = boxed();
        s.init(false, 2).unwrap();
        s.wait(me(), LockWait::Block).unwrap();
        s.wait(me(), LockWait::Try).unwrap();
        assert_eq!(s.wait(me(), LockWait::Try), Err(libc::EAGAIN));
        let t0 = Instant::now();
        assert_eq!(
            s.wait(me(), LockWait::Until(t0 + Duration::from_millis(10))),
            Err(libc::ETIMEDOUT)
        );
        let waiter = spawn(
            move || s.wait(me(), LockWait::Block).map_or(1, |_| 0),
            opts(),
        )
        .unwrap();
        sched::yield_now();
        s.post(me()).unwrap();
        assert_eq!(join(waiter, JoinWait::Block), Ok(0));
        assert_eq!(s.value(), 0);
        s.init(false, SEM_VALUE_MAX).unwrap();
        assert_eq!(s.post(me()), Err(libc::EOVERFLOW));
        assert_eq!(s.init(false, SEM_VALUE_MAX + 1), Err(libc::EINVAL));
    }

    #[test]
    fn barrier_releases_each_round_with_one_serial_thread() {
        init();
        let b: &'static Barrier = boxed();
        b.init(4).unwrap();
        let serial = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let serial = serial.clone();
                spawn(
                    move || {
                        for _ in 0..10 {
                            if b.wait(me()) {
                                serial.set(serial.get() + 1);
                            }
                        }
                        0
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for h in hs {
            join(h, JoinWait::Block).unwrap();
        }
        assert_eq!(serial.get(), 10);
        assert_eq!(Barrier::init(b, 0), Err(libc::EINVAL));
    }

    #[test]
    fn once_runs_once_while_others_wait() {
        init();
        let control: &'static AtomicU32 = boxed();
        let runs = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let runs = runs.clone();
                spawn(
                    move || {
                        once(control, me(), || {
                            nap(5);
                            runs.set(runs.get() + 1);
                        });
                        runs.get()
                    },
                    opts(),
                )
                .unwrap()
            })
            .collect();
        for h in hs {
            assert_eq!(join(h, JoinWait::Block), Ok(1));
        }
    }

    #[test]
    fn a_native_thread_wakes_a_green_sleeper_through_the_mailbox() {
        init();
        let s: &'static Semaphore = boxed();
        s.init(false, 0).unwrap();
        let poster = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let native = Caller {
                green: false,
                owner: 1,
            };
            s.post(native).unwrap();
        });
        let t0 = Instant::now();
        s.wait(me(), LockWait::Until(t0 + Duration::from_secs(10)))
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5));
        poster.join().unwrap();
    }
}
