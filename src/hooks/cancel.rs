//! Deferred cancellation and cleanup handlers for green threads.
//!
//! C's `pthread_cleanup_push` (without -fexceptions) saves a jmp_buf in a buffer on the
//! thread's stack and registers it with `__pthread_register_cancel`; when the thread
//! exits, glibc jumps into each buffer in turn, which runs its handler and calls
//! `__pthread_unwind_next`. greenify keeps each green thread's chain of buffers itself
//! (glibc's lives in the OS thread, shared by all green threads) and walks it the same
//! way on pthread_exit and on cancellation. Cancellation is deferred: it acts when the
//! thread waits at a cancellation point (the waiting calls, and pthread_join) or calls
//! pthread_testcancel; the asynchronous type is treated as deferred.

use super::{enter, start_application, thread};
use crate::real;
use crate::runtime::sched;
use libc::c_int;

/// glibc's `__pthread_unwind_buf_t` on x86_64: a jmp_buf and its mask flag, then four
/// spare pointers: we keep the previous buffer in the first and the exit value in the
/// second.
#[repr(C)]
pub struct UnwindBuf {
    jmp: [u64; 9],
    pad: [usize; 4],
}

// glibc's values (not in the libc crate).
const PTHREAD_CANCEL_ENABLE: c_int = 0;
const PTHREAD_CANCEL_DISABLE: c_int = 1;
const PTHREAD_CANCEL_DEFERRED: c_int = 0;
const PTHREAD_CANCEL_ASYNCHRONOUS: c_int = 1;

/// `(void *) -1`, what a cancelled thread returns.
const PTHREAD_CANCELED: usize = usize::MAX;

/// Runs the exiting green thread's next cleanup handler, or ends the thread.
pub fn unwind_or_finish(retval: usize) -> ! {
    let top = sched::cleanup_top();
    if top == 0 {
        thread::finish_exit(retval);
    }
    let buffer = top as *mut UnwindBuf;
    // SAFETY: the buffer was registered by this thread's pthread_cleanup_push and its
    // frame is still live (we are deeper on the same stack).
    unsafe {
        sched::set_cleanup_top((*buffer).pad[0]);
        (*buffer).pad[1] = retval;
    }
    // The handler is the program's code.
    start_application();
    // SAFETY: jumps back into pthread_cleanup_push's frame, which runs the handler and
    // calls __pthread_unwind_next; the frames in between hold nothing to drop.
    unsafe { real::siglongjmp(buffer.cast(), 1) }
}

/// A cancellation point found a cancel request: end the thread as cancelled.
fn act_on_cancel() -> ! {
    sched::cancel_taken();
    unwind_or_finish(PTHREAD_CANCELED)
}

/// Called once the runtime runs: cancellation points act through [`act_on_cancel`].
pub fn install() {
    sched::set_cancel_action(act_on_cancel);
}

#[no_mangle]
pub unsafe extern "C" fn __pthread_register_cancel(buffer: *mut UnwindBuf) {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::__pthread_register_cancel(buffer.cast()) };
    };
    // SAFETY: the program's buffer on its own stack.
    unsafe { (*buffer).pad[0] = sched::cleanup_top() };
    sched::set_cleanup_top(buffer as usize);
}

#[no_mangle]
pub unsafe extern "C" fn __pthread_unregister_cancel(buffer: *mut UnwindBuf) {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::__pthread_unregister_cancel(buffer.cast()) };
    };
    // SAFETY: the program's buffer, registered above.
    sched::set_cleanup_top(unsafe { (*buffer).pad[0] });
}

#[no_mangle]
pub unsafe extern "C" fn __pthread_unwind_next(buffer: *mut UnwindBuf) -> ! {
    let Some(green) = enter() else {
        // SAFETY: forwarded (glibc's own exit path).
        unsafe { real::__pthread_unwind_next(buffer.cast()) };
        // SAFETY: __pthread_unwind_next does not return.
        unsafe { std::hint::unreachable_unchecked() }
    };
    drop(green);
    // SAFETY: the buffer we jumped into carries the exit value.
    unwind_or_finish(unsafe { (*buffer).pad[1] })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_setcancelstate(state, old) };
    };
    let disable = match state {
        PTHREAD_CANCEL_ENABLE => false,
        PTHREAD_CANCEL_DISABLE => true,
        _ => return libc::EINVAL,
    };
    let was = sched::set_cancel_disabled(disable);
    if !old.is_null() {
        // SAFETY: the program's out-pointer.
        unsafe {
            *old = if was {
                PTHREAD_CANCEL_DISABLE
            } else {
                PTHREAD_CANCEL_ENABLE
            }
        };
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setcanceltype(ty: c_int, old: *mut c_int) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_setcanceltype(ty, old) };
    };
    let asynchronous = match ty {
        PTHREAD_CANCEL_DEFERRED => false,
        PTHREAD_CANCEL_ASYNCHRONOUS => true,
        _ => return libc::EINVAL,
    };
    let was = sched::set_cancel_async(asynchronous);
    if !old.is_null() {
        // SAFETY: the program's out-pointer.
        unsafe {
            *old = if was {
                PTHREAD_CANCEL_ASYNCHRONOUS
            } else {
                PTHREAD_CANCEL_DEFERRED
            }
        };
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_testcancel() {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_testcancel() };
    };
    if sched::cancel_requested() {
        drop(green);
        act_on_cancel();
    }
}
