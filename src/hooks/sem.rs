//! POSIX semaphores (glibc's layout, so named and process-shared ones interoperate with
//! processes that are not greenified). These report errors through errno.

use super::clock::abs_deadline;
use super::{caller, enter, fail};
use crate::runtime::sync::{LockWait, Semaphore};
use libc::{c_int, c_uint, clockid_t, sem_t, timespec};

fn errno_result(result: Result<(), i32>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sem_init(s: *mut sem_t, pshared: c_int, value: c_uint) -> c_int {
    let _green = enter();
    // SAFETY: the program's semaphore.
    errno_result(unsafe { Semaphore::at(s) }.init(pshared != 0, value))
}

#[no_mangle]
pub unsafe extern "C" fn sem_destroy(_s: *mut sem_t) -> c_int {
    0
}

unsafe fn sem_wait_with(s: *mut sem_t, wait: LockWait) -> c_int {
    let mut green = enter();
    super::sync::lock_call(&mut green);
    // SAFETY: the program's semaphore.
    errno_result(unsafe { Semaphore::at(s) }.wait(caller(&green), wait))
}

#[no_mangle]
pub unsafe extern "C" fn sem_wait(s: *mut sem_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { sem_wait_with(s, LockWait::Block) }
}

#[no_mangle]
pub unsafe extern "C" fn sem_trywait(s: *mut sem_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { sem_wait_with(s, LockWait::Try) }
}

#[no_mangle]
pub unsafe extern "C" fn sem_timedwait(s: *mut sem_t, abstime: *const timespec) -> c_int {
    // SAFETY: forwarded.
    unsafe { sem_clockwait(s, libc::CLOCK_REALTIME, abstime) }
}

#[no_mangle]
pub unsafe extern "C" fn sem_clockwait(
    s: *mut sem_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: the program's timespec.
    match abs_deadline(clock, unsafe { &*abstime }) {
        // SAFETY: forwarded.
        Ok(deadline) => unsafe { sem_wait_with(s, LockWait::Until(deadline)) },
        Err(e) => fail(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sem_post(s: *mut sem_t) -> c_int {
    // Also called from signal handlers: a handler that interrupted greenify itself is not
    // green here and wakes green sleepers through the scheduler's mailbox.
    let green = enter();
    // SAFETY: the program's semaphore.
    errno_result(unsafe { Semaphore::at(s) }.post(caller(&green)))
}

#[no_mangle]
pub unsafe extern "C" fn sem_getvalue(s: *mut sem_t, value: *mut c_int) -> c_int {
    // SAFETY: the program's semaphore and out-pointer.
    unsafe { *value = Semaphore::at(s).value() as c_int };
    0
}
