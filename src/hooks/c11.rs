//! C11 threads (`<threads.h>`). glibc implements them with internal calls to its pthread
//! functions, which no hook sees (`thrd_create` would make a real OS thread), so each is
//! exported here over the pthread hook it stands for: one implementation of each thing.
//! In glibc `thrd_t` is a `pthread_t`, `mtx_t`/`cnd_t` are a `pthread_mutex_t`/
//! `pthread_cond_t`, `once_flag` a `pthread_once_t` and `tss_t` a `pthread_key_t`; the
//! result codes are mapped exactly as glibc maps them.

use super::{keys, sync, thread, time};
use libc::{c_int, c_void, pthread_cond_t, pthread_mutex_t, pthread_t, timespec};

const THRD_SUCCESS: c_int = 0;
const THRD_BUSY: c_int = 1;
const THRD_ERROR: c_int = 2;
const THRD_NOMEM: c_int = 3;
const THRD_TIMEDOUT: c_int = 4;

const MTX_RECURSIVE: c_int = 1;
const MTX_TIMED: c_int = 2;

type ThrdStart = unsafe extern "C" fn(*mut c_void) -> c_int;

/// glibc's thrd_err_map: a pthread error number as a C11 result.
fn result(error: c_int) -> c_int {
    match error {
        0 => THRD_SUCCESS,
        libc::ENOMEM => THRD_NOMEM,
        libc::ETIMEDOUT => THRD_TIMEDOUT,
        libc::EBUSY => THRD_BUSY,
        _ => THRD_ERROR,
    }
}

/// A C11 start routine returns an int: glibc keeps it as the thread's `void *` result,
/// widened as `(void *)(uintptr_t)`, and `thrd_join` narrows it back.
extern "C" fn start_c11(boxed: *mut c_void) -> *mut c_void {
    // SAFETY: the box `thrd_create` made for this thread, taken once.
    let (func, arg) = *unsafe { Box::from_raw(boxed.cast::<(ThrdStart, usize)>()) };
    // SAFETY: the program's start routine with its own argument.
    let value = unsafe { func(arg as *mut c_void) };
    value as isize as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn thrd_create(
    thr: *mut pthread_t,
    func: ThrdStart,
    arg: *mut c_void,
) -> c_int {
    let boxed = Box::into_raw(Box::new((func, arg as usize)));
    // SAFETY: forwarded; the new thread owns the box.
    let error = unsafe { thread::pthread_create(thr, std::ptr::null(), start_c11, boxed.cast()) };
    if error != 0 {
        // SAFETY: no thread was made, so the box is still ours.
        drop(unsafe { Box::from_raw(boxed) });
    }
    result(error)
}

#[no_mangle]
pub unsafe extern "C" fn thrd_join(thr: pthread_t, res: *mut c_int) -> c_int {
    let mut value: *mut c_void = std::ptr::null_mut();
    // SAFETY: forwarded, with our own out-pointer.
    let error = unsafe { thread::pthread_join(thr, &mut value) };
    if !res.is_null() {
        // SAFETY: the program's out-pointer (glibc writes it whatever the outcome).
        unsafe { *res = value as usize as c_int };
    }
    result(error)
}

#[no_mangle]
pub unsafe extern "C" fn thrd_detach(thr: pthread_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { thread::pthread_detach(thr) })
}

#[no_mangle]
pub unsafe extern "C" fn thrd_exit(res: c_int) -> ! {
    // SAFETY: forwarded.
    unsafe { thread::pthread_exit(res as isize as *mut c_void) }
}

#[no_mangle]
pub unsafe extern "C" fn thrd_current() -> pthread_t {
    // SAFETY: forwarded.
    unsafe { thread::pthread_self() }
}

#[no_mangle]
pub extern "C" fn thrd_equal(a: pthread_t, b: pthread_t) -> c_int {
    thread::pthread_equal(a, b)
}

/// 0 when slept, -1 when a signal handler interrupted (with the time left in
/// `remaining`), -2 on another error.
#[no_mangle]
pub unsafe extern "C" fn thrd_sleep(duration: *const timespec, remaining: *mut timespec) -> c_int {
    // SAFETY: forwarded.
    match unsafe { time::clock_nanosleep(libc::CLOCK_REALTIME, 0, duration, remaining) } {
        0 => 0,
        libc::EINTR => -1,
        _ => -2,
    }
}

#[no_mangle]
pub unsafe extern "C" fn thrd_yield() {
    // SAFETY: forwarded.
    unsafe { thread::sched_yield() };
}

#[no_mangle]
pub unsafe extern "C" fn mtx_init(m: *mut pthread_mutex_t, ty: c_int) -> c_int {
    // SAFETY: an all-zero attr is overwritten by pthread_mutexattr_init.
    let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
    // Recursive if asked, else normal (mtx_timed changes nothing), as in glibc.
    let kind = if ty == MTX_RECURSIVE || ty == MTX_TIMED | MTX_RECURSIVE {
        libc::PTHREAD_MUTEX_RECURSIVE
    } else {
        libc::PTHREAD_MUTEX_NORMAL
    };
    // SAFETY: our own attr (these are libc's, not hooks: they only write it).
    unsafe {
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_settype(&mut attr, kind);
    }
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_mutex_init(m, &attr) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_lock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_mutex_lock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_timedlock(m: *mut pthread_mutex_t, abstime: *const timespec) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_mutex_timedlock(m, abstime) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_trylock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_mutex_trylock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_unlock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_mutex_unlock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_destroy(m: *mut pthread_mutex_t) {
    // SAFETY: forwarded.
    unsafe { sync::pthread_mutex_destroy(m) };
}

#[no_mangle]
pub unsafe extern "C" fn cnd_init(c: *mut pthread_cond_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_cond_init(c, std::ptr::null()) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_signal(c: *mut pthread_cond_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_cond_signal(c) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_broadcast(c: *mut pthread_cond_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_cond_broadcast(c) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_cond_wait(c, m) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_timedwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { sync::pthread_cond_timedwait(c, m, abstime) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_destroy(c: *mut pthread_cond_t) {
    // SAFETY: forwarded.
    unsafe { sync::pthread_cond_destroy(c) };
}

#[no_mangle]
pub unsafe extern "C" fn call_once(flag: *mut libc::pthread_once_t, func: extern "C" fn()) {
    // SAFETY: forwarded (a once_flag is glibc's pthread_once_t).
    unsafe { sync::pthread_once(flag, func) };
}

#[no_mangle]
pub unsafe extern "C" fn tss_create(
    key: *mut libc::pthread_key_t,
    destructor: Option<unsafe extern "C" fn(*mut c_void)>,
) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { keys::pthread_key_create(key, destructor) })
}

#[no_mangle]
pub unsafe extern "C" fn tss_get(key: libc::pthread_key_t) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { keys::pthread_getspecific(key) }
}

#[no_mangle]
pub unsafe extern "C" fn tss_set(key: libc::pthread_key_t, value: *mut c_void) -> c_int {
    // SAFETY: forwarded.
    result(unsafe { keys::pthread_setspecific(key, value) })
}

#[no_mangle]
pub unsafe extern "C" fn tss_delete(key: libc::pthread_key_t) {
    // SAFETY: forwarded.
    unsafe { keys::pthread_key_delete(key) };
}
