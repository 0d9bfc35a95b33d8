//! pthread keys: values per green thread, destructors run when a green thread exits.

use super::{enter, run_application, Green};
use crate::runtime::{keys, sched};
use libc::{c_int, c_void, pthread_key_t};

fn with_values<R>(green: &Option<Green>, f: impl FnOnce(&mut keys::Values) -> R) -> R {
    match green {
        Some(_) => sched::specific(f),
        None => keys::with_native(f),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_key_create(
    key: *mut pthread_key_t,
    destructor: Option<unsafe extern "C" fn(*mut c_void)>,
) -> c_int {
    let _green = enter();
    match keys::create(destructor.map_or(0, |d| d as usize)) {
        Ok(k) => {
            // SAFETY: the program's out-pointer.
            unsafe { *key = k };
            0
        }
        Err(e) => e,
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_key_delete(key: pthread_key_t) -> c_int {
    let _green = enter();
    keys::delete(key).err().unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getspecific(key: pthread_key_t) -> *mut c_void {
    let green = enter();
    with_values(&green, |v| v.get(key)) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setspecific(key: pthread_key_t, value: *const c_void) -> c_int {
    let green = enter();
    if green.is_some() {
        make_room(key);
    }
    with_values(&green, |v| v.set(key, value as usize))
        .err()
        .unwrap_or(0)
}

/// Grows the current green thread's table for `key` outside the scheduler, as the
/// program's code: the program's malloc may take a lock that a parked green thread holds,
/// and only the program's code can wait for it by parking.
fn make_room(key: pthread_key_t) {
    while let Some(capacity) = sched::specific(|v| v.room_needed(key)) {
        let room = run_application(|| Vec::with_capacity(capacity));
        let spare = sched::specific(|v| v.grow_into(room));
        run_application(|| drop(spare));
    }
}

/// A green thread is ending: runs its key destructors as glibc does (up to
/// PTHREAD_DESTRUCTOR_ITERATIONS rounds, each value cleared before its destructor runs),
/// as the program's code, on the exiting thread.
pub fn run_destructors() {
    for _ in 0..keys::DESTRUCTOR_ROUNDS {
        let mut from = 0;
        while let Some((key, destructor, value)) = sched::specific(|v| v.take_due(from)) {
            from = key + 1;
            // SAFETY: the address came from pthread_key_create's destructor argument.
            let destructor: unsafe extern "C" fn(*mut c_void) =
                unsafe { std::mem::transmute(destructor) };
            // SAFETY: calling the program's destructor with its own value, as glibc does.
            run_application(|| unsafe { destructor(value as *mut c_void) });
        }
        if from == 0 {
            return;
        }
    }
}
