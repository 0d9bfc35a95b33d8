//! pthread mutexes, condition variables, rwlocks, barriers, once and spinlocks: every
//! caller, green or not, goes through the runtime's implementation (runtime/sync/), so
//! one object never has two representations. Process-shared condition variables, rwlocks
//! and barriers are left to glibc (their layouts are glibc's, for other processes to
//! share); a green thread waiting on one blocks its OS thread (see the README).

use super::clock::abs_deadline;
use super::{caller, enter, run_application};
use crate::real;
use crate::runtime::sync::{
    self, Barrier, Cond, LockWait, Mutex, RwLock, MUTEX_PRIO_INHERIT, MUTEX_PRIO_PROTECT,
    MUTEX_PSHARED, MUTEX_ROBUST,
};
use libc::{
    c_int, c_uint, clockid_t, pthread_barrier_t, pthread_barrierattr_t, pthread_cond_t,
    pthread_condattr_t, pthread_mutex_t, pthread_mutexattr_t, pthread_rwlock_t,
    pthread_rwlockattr_t, timespec,
};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

extern "C" {
    fn pthread_mutexattr_gettype(attr: *const pthread_mutexattr_t, ty: *mut c_int) -> c_int;
    fn pthread_mutexattr_getrobust(attr: *const pthread_mutexattr_t, robust: *mut c_int) -> c_int;
    fn pthread_mutexattr_getprotocol(
        attr: *const pthread_mutexattr_t,
        protocol: *mut c_int,
    ) -> c_int;
    fn pthread_condattr_getclock(attr: *const pthread_condattr_t, clock: *mut clockid_t) -> c_int;
    fn pthread_rwlockattr_getkind_np(attr: *const pthread_rwlockattr_t, kind: *mut c_int) -> c_int;
    fn pthread_rwlockattr_getpshared(
        attr: *const pthread_rwlockattr_t,
        pshared: *mut c_int,
    ) -> c_int;
    fn pthread_barrierattr_getpshared(
        attr: *const pthread_barrierattr_t,
        pshared: *mut c_int,
    ) -> c_int;
}

fn code(result: Result<(), i32>) -> c_int {
    result.err().unwrap_or(0)
}

/// A lock or try call of a green thread: a loop of them (a busy-wait on a try-lock, or an
/// uncontended lock/check/unlock of a flag) waits for another thread, which must get its
/// turn (see runtime::sched::completed_without_parking). Called before the lock is taken,
/// so that a thread never steps aside holding it.
pub(super) fn lock_call(green: &mut Option<super::Green>) {
    if let Some(green) = green {
        crate::runtime::sched::completed_without_parking();
        green.keep_running();
    }
}

// ---- mutexes ----

/// The glibc mutex kind an attr describes.
///
/// # Safety
/// `attr` is NULL or an initialised mutexattr.
unsafe fn mutex_kind(attr: *const pthread_mutexattr_t) -> i32 {
    if attr.is_null() {
        return 0;
    }
    let (mut ty, mut robust, mut pshared, mut protocol) = (0, 0, 0, 0);
    // SAFETY: an initialised attr, per the caller.
    unsafe {
        pthread_mutexattr_gettype(attr, &mut ty);
        pthread_mutexattr_getrobust(attr, &mut robust);
        libc::pthread_mutexattr_getpshared(attr, &mut pshared);
        pthread_mutexattr_getprotocol(attr, &mut protocol);
    }
    let mut kind = ty & 3;
    if robust == libc::PTHREAD_MUTEX_ROBUST {
        kind |= MUTEX_ROBUST;
    }
    if pshared == libc::PTHREAD_PROCESS_SHARED {
        kind |= MUTEX_PSHARED;
    }
    match protocol {
        libc::PTHREAD_PRIO_INHERIT => kind | MUTEX_PRIO_INHERIT,
        libc::PTHREAD_PRIO_PROTECT => kind | MUTEX_PRIO_PROTECT,
        _ => kind,
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_init(
    m: *mut pthread_mutex_t,
    attr: *const pthread_mutexattr_t,
) -> c_int {
    let _green = enter();
    // SAFETY: the program's mutex and attr.
    unsafe { Mutex::at(m).init(mutex_kind(attr)) };
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_destroy(m: *mut pthread_mutex_t) -> c_int {
    let _green = enter();
    // SAFETY: the program's mutex.
    code(unsafe { Mutex::at(m) }.destroy())
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int {
    let mut green = enter();
    lock_call(&mut green);
    // SAFETY: the program's mutex.
    code(unsafe { Mutex::at(m) }.lock(caller(&green), LockWait::Block))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_trylock(m: *mut pthread_mutex_t) -> c_int {
    let mut green = enter();
    lock_call(&mut green);
    // SAFETY: the program's mutex.
    code(unsafe { Mutex::at(m) }.lock(caller(&green), LockWait::Try))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_timedlock(
    m: *mut pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { pthread_mutex_clocklock(m, libc::CLOCK_REALTIME, abstime) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_clocklock(
    m: *mut pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    let mut green = enter();
    lock_call(&mut green);
    // SAFETY: the program's mutex.
    let mutex = unsafe { Mutex::at(m) };
    if !matches!(clock, libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC) {
        return libc::EINVAL;
    }
    // SAFETY: the program's timespec.
    match abs_deadline(clock, unsafe { &*abstime }) {
        Ok(deadline) => code(mutex.lock(caller(&green), LockWait::Until(deadline))),
        // As glibc: an invalid time only matters when the call has to wait.
        Err(e) => match mutex.lock(caller(&green), LockWait::Try) {
            Err(libc::EBUSY) => e,
            other => code(other),
        },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_unlock(m: *mut pthread_mutex_t) -> c_int {
    let green = enter();
    // SAFETY: the program's mutex.
    code(unsafe { Mutex::at(m) }.unlock(caller(&green)))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_consistent(m: *mut pthread_mutex_t) -> c_int {
    let _green = enter();
    // SAFETY: the program's mutex.
    code(unsafe { Mutex::at(m) }.make_consistent())
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_consistent_np(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { pthread_mutex_consistent(m) }
}

// ---- condition variables ----

/// Offset of glibc's `__wrefs` in pthread_cond_t; its bit 0 marks a process-shared condvar
/// (initialised by glibc; bit 1 is its clock). Our own layout never touches it.
const COND_WREFS: usize = 36;

/// # Safety
/// `c` points to a pthread_cond_t.
unsafe fn cond_is_shared(c: *mut pthread_cond_t) -> bool {
    // SAFETY: a 4-aligned word inside the 48-byte object.
    let wrefs = unsafe { &*c.cast::<u8>().add(COND_WREFS).cast::<AtomicU32>() };
    wrefs.load(Ordering::Relaxed) & 1 != 0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_init(
    c: *mut pthread_cond_t,
    attr: *const pthread_condattr_t,
) -> c_int {
    let _green = enter();
    let (mut pshared, mut clock) = (0, libc::CLOCK_REALTIME);
    if !attr.is_null() {
        // SAFETY: the program's initialised attr.
        unsafe {
            libc::pthread_condattr_getpshared(attr, &mut pshared);
            pthread_condattr_getclock(attr, &mut clock);
        }
    }
    if pshared == libc::PTHREAD_PROCESS_SHARED {
        // SAFETY: forwarded to glibc, which owns process-shared condvars.
        return unsafe { real::pthread_cond_init(c, attr) };
    }
    // SAFETY: the program's condvar: cleared whole, then ours.
    unsafe {
        std::ptr::write_bytes(c, 0, 1);
        Cond::at(c).init(clock == libc::CLOCK_MONOTONIC, false);
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_destroy(c: *mut pthread_cond_t) -> c_int {
    let _green = enter();
    // SAFETY: the program's condvar.
    if unsafe { cond_is_shared(c) } {
        // SAFETY: forwarded.
        return unsafe { real::pthread_cond_destroy(c) };
    }
    // SAFETY: the program's condvar.
    code(unsafe { Cond::at(c) }.destroy())
}

/// The shared body of the wait family; `clock` None: wait without a deadline.
unsafe fn cond_wait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    time: Option<(Option<clockid_t>, *const timespec)>,
) -> c_int {
    let green = enter();
    // SAFETY: the program's condvar.
    if unsafe { cond_is_shared(c) } {
        drop(green);
        // SAFETY: forwarded to glibc, which owns process-shared condvars.
        return unsafe {
            match time {
                None => real::pthread_cond_wait(c, m),
                Some((None, t)) => real::pthread_cond_timedwait(c, m, t),
                Some((Some(clock), t)) => real::pthread_cond_clockwait(c, m, clock, t),
            }
        };
    }
    // SAFETY: the program's condvar and mutex.
    let (cond, mutex) = unsafe { (Cond::at(c), Mutex::at(m)) };
    let deadline = match time {
        None => None,
        Some((clock, abstime)) => {
            let clock = clock.unwrap_or(if cond.monotonic() {
                libc::CLOCK_MONOTONIC
            } else {
                libc::CLOCK_REALTIME
            });
            // SAFETY: the program's timespec.
            match abs_deadline(clock, unsafe { &*abstime }) {
                Ok(deadline) => Some(deadline),
                Err(e) => return e,
            }
        }
    };
    code(cond.wait(mutex, caller(&green), deadline))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { cond_wait(c, m, None) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { cond_wait(c, m, Some((None, abstime))) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { cond_wait(c, m, Some((Some(clock), abstime))) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_signal(c: *mut pthread_cond_t) -> c_int {
    let green = enter();
    // SAFETY: the program's condvar.
    if unsafe { cond_is_shared(c) } {
        // SAFETY: forwarded.
        return unsafe { real::pthread_cond_signal(c) };
    }
    // SAFETY: the program's condvar.
    unsafe { Cond::at(c) }.signal(caller(&green));
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_broadcast(c: *mut pthread_cond_t) -> c_int {
    let green = enter();
    // SAFETY: the program's condvar.
    if unsafe { cond_is_shared(c) } {
        // SAFETY: forwarded.
        return unsafe { real::pthread_cond_broadcast(c) };
    }
    // SAFETY: the program's condvar.
    unsafe { Cond::at(c) }.broadcast(caller(&green));
    0
}

// ---- rwlocks ----

/// Offset of glibc's `__shared` in pthread_rwlock_t (non-zero: process-shared, glibc's).
const RWLOCK_SHARED: usize = 28;

/// # Safety
/// `l` points to a pthread_rwlock_t.
unsafe fn rwlock_is_shared(l: *mut pthread_rwlock_t) -> bool {
    // SAFETY: a 4-aligned word inside the 56-byte object.
    let shared = unsafe { &*l.cast::<u8>().add(RWLOCK_SHARED).cast::<AtomicI32>() };
    shared.load(Ordering::Relaxed) != 0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_init(
    l: *mut pthread_rwlock_t,
    attr: *const pthread_rwlockattr_t,
) -> c_int {
    let _green = enter();
    let (mut kind, mut pshared) = (0, 0);
    if !attr.is_null() {
        // SAFETY: the program's initialised attr.
        unsafe {
            pthread_rwlockattr_getkind_np(attr, &mut kind);
            pthread_rwlockattr_getpshared(attr, &mut pshared);
        }
    }
    if pshared == libc::PTHREAD_PROCESS_SHARED {
        // SAFETY: forwarded to glibc, which owns process-shared rwlocks.
        return unsafe { real::pthread_rwlock_init(l, attr) };
    }
    // SAFETY: the program's rwlock.
    unsafe { RwLock::at(l) }.init(kind as u32);
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_destroy(l: *mut pthread_rwlock_t) -> c_int {
    let _green = enter();
    // SAFETY: the program's rwlock.
    if unsafe { rwlock_is_shared(l) } {
        // SAFETY: forwarded.
        return unsafe { real::pthread_rwlock_destroy(l) };
    }
    // SAFETY: the program's rwlock.
    code(unsafe { RwLock::at(l) }.destroy())
}

#[derive(Clone, Copy)]
enum Side {
    Read,
    Write,
}

/// The shared body of every rwlock lock call.
unsafe fn rwlock_lock(l: *mut pthread_rwlock_t, side: Side, wait: Wait) -> c_int {
    let mut green = enter();
    // SAFETY: the program's rwlock.
    if unsafe { rwlock_is_shared(l) } {
        drop(green);
        // SAFETY: forwarded to glibc, which owns process-shared rwlocks.
        return unsafe {
            match (side, wait) {
                (Side::Read, Wait::Block) => real::pthread_rwlock_rdlock(l),
                (Side::Write, Wait::Block) => real::pthread_rwlock_wrlock(l),
                (Side::Read, Wait::Try) => real::pthread_rwlock_tryrdlock(l),
                (Side::Write, Wait::Try) => real::pthread_rwlock_trywrlock(l),
                (Side::Read, Wait::Until(c, t)) => real::pthread_rwlock_clockrdlock(l, c, t),
                (Side::Write, Wait::Until(c, t)) => real::pthread_rwlock_clockwrlock(l, c, t),
            }
        };
    }
    lock_call(&mut green);
    let how = match wait {
        Wait::Block => LockWait::Block,
        Wait::Try => LockWait::Try,
        // SAFETY: the program's timespec.
        Wait::Until(clock, abstime) => match abs_deadline(clock, unsafe { &*abstime }) {
            Ok(deadline) => LockWait::Until(deadline),
            Err(e) => return e,
        },
    };
    // SAFETY: the program's rwlock.
    let lock = unsafe { RwLock::at(l) };
    code(match side {
        Side::Read => lock.read(caller(&green), how),
        Side::Write => lock.write(caller(&green), how),
    })
}

#[derive(Clone, Copy)]
enum Wait {
    Block,
    Try,
    Until(clockid_t, *const timespec),
}

macro_rules! rwlock_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*) => $side:expr, $wait:expr;)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(l: *mut pthread_rwlock_t $(, $arg: $ty)*) -> c_int {
            // SAFETY: forwarded.
            unsafe { rwlock_lock(l, $side, $wait) }
        }
    )*};
}

rwlock_hooks! {
    pthread_rwlock_rdlock() => Side::Read, Wait::Block;
    pthread_rwlock_wrlock() => Side::Write, Wait::Block;
    pthread_rwlock_tryrdlock() => Side::Read, Wait::Try;
    pthread_rwlock_trywrlock() => Side::Write, Wait::Try;
    pthread_rwlock_timedrdlock(t: *const timespec) => Side::Read, Wait::Until(libc::CLOCK_REALTIME, t);
    pthread_rwlock_timedwrlock(t: *const timespec) => Side::Write, Wait::Until(libc::CLOCK_REALTIME, t);
    pthread_rwlock_clockrdlock(c: clockid_t, t: *const timespec) => Side::Read, Wait::Until(c, t);
    pthread_rwlock_clockwrlock(c: clockid_t, t: *const timespec) => Side::Write, Wait::Until(c, t);
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_unlock(l: *mut pthread_rwlock_t) -> c_int {
    let green = enter();
    // SAFETY: the program's rwlock.
    if unsafe { rwlock_is_shared(l) } {
        // SAFETY: forwarded.
        return unsafe { real::pthread_rwlock_unlock(l) };
    }
    // SAFETY: the program's rwlock.
    code(unsafe { RwLock::at(l) }.unlock(caller(&green)))
}

// ---- barriers ----

/// Offset of glibc's `shared` in pthread_barrier_t: glibc writes FUTEX_SHARED (0) for a
/// process-shared barrier; ours carry FUTEX_PRIVATE (128) there.
const BARRIER_SHARED: usize = 12;
const BARRIER_PRIVATE_MARK: i32 = 128;

/// # Safety
/// `b` points to a pthread_barrier_t.
unsafe fn barrier_mark<'a>(b: *mut pthread_barrier_t) -> &'a AtomicI32 {
    // SAFETY: a 4-aligned word inside the 32-byte object.
    unsafe { &*b.cast::<u8>().add(BARRIER_SHARED).cast::<AtomicI32>() }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_init(
    b: *mut pthread_barrier_t,
    attr: *const pthread_barrierattr_t,
    count: c_uint,
) -> c_int {
    let _green = enter();
    let mut pshared = 0;
    if !attr.is_null() {
        // SAFETY: the program's initialised attr.
        unsafe { pthread_barrierattr_getpshared(attr, &mut pshared) };
    }
    if pshared == libc::PTHREAD_PROCESS_SHARED {
        // SAFETY: forwarded to glibc, which owns process-shared barriers.
        return unsafe { real::pthread_barrier_init(b, attr, count) };
    }
    if count > i32::MAX as c_uint {
        return libc::EINVAL;
    }
    // SAFETY: the program's barrier.
    let result = unsafe { Barrier::at(b) }.init(count);
    if result.is_ok() {
        // SAFETY: as above.
        unsafe { barrier_mark(b) }.store(BARRIER_PRIVATE_MARK, Ordering::Release);
    }
    code(result)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_destroy(b: *mut pthread_barrier_t) -> c_int {
    let _green = enter();
    // SAFETY: the program's barrier.
    if unsafe { barrier_mark(b) }.load(Ordering::Relaxed) != BARRIER_PRIVATE_MARK {
        // SAFETY: forwarded.
        return unsafe { real::pthread_barrier_destroy(b) };
    }
    // SAFETY: the program's barrier.
    code(unsafe { Barrier::at(b) }.destroy())
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int {
    let green = enter();
    // SAFETY: the program's barrier.
    if unsafe { barrier_mark(b) }.load(Ordering::Relaxed) != BARRIER_PRIVATE_MARK {
        drop(green);
        // SAFETY: forwarded.
        return unsafe { real::pthread_barrier_wait(b) };
    }
    // SAFETY: the program's barrier.
    if unsafe { Barrier::at(b) }.wait(caller(&green)) {
        libc::PTHREAD_BARRIER_SERIAL_THREAD
    } else {
        0
    }
}

// ---- once and spinlocks ----

#[no_mangle]
pub unsafe extern "C" fn pthread_once(
    control: *mut libc::pthread_once_t,
    routine: extern "C" fn(),
) -> c_int {
    let green = enter();
    // SAFETY: pthread_once_t is an int, 4-aligned.
    let control = unsafe { &*control.cast::<AtomicU32>() };
    sync::once(control, caller(&green), || run_application(|| routine()));
    0
}

/// # Safety
/// `lock` points to a pthread_spinlock_t (an int).
unsafe fn spin_word<'a>(lock: *mut libc::pthread_spinlock_t) -> &'a AtomicI32 {
    // SAFETY: per the caller.
    unsafe { &*lock.cast::<AtomicI32>() }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_init(
    lock: *mut libc::pthread_spinlock_t,
    _pshared: c_int,
) -> c_int {
    // SAFETY: the program's spinlock (glibc's layout: 0 free, 1 held).
    unsafe { spin_word(lock) }.store(0, Ordering::Release);
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_destroy(_lock: *mut libc::pthread_spinlock_t) -> c_int {
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_lock(lock: *mut libc::pthread_spinlock_t) -> c_int {
    let mut green = enter();
    lock_call(&mut green);
    // SAFETY: the program's spinlock.
    sync::spin_lock(unsafe { spin_word(lock) }, caller(&green));
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_trylock(lock: *mut libc::pthread_spinlock_t) -> c_int {
    lock_call(&mut enter());
    // SAFETY: the program's spinlock.
    match unsafe { spin_word(lock) }.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed) {
        Ok(_) => 0,
        Err(_) => libc::EBUSY,
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_unlock(lock: *mut libc::pthread_spinlock_t) -> c_int {
    // SAFETY: the program's spinlock.
    unsafe { spin_word(lock) }.store(0, Ordering::Release);
    0
}
