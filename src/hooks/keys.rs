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

/// std, inside greenify, runs the TLS destructors of the threads it starts (the monitor,
/// the offload helpers) and drops their `thread::current()` handle through a pthread key
/// it makes the first time a thread needs one; made through this file's
/// `pthread_key_create`, it is a slot of the program's table. This makes it when the
/// library loads, before the program can hold every key: made later, as the monitor
/// starts, there might be none left and std would abort the process ("out of TLS keys").
/// The value std gives it on this thread is cleared: a program that reads a slot it never
/// made finds NULL, as natively.
extern "C" fn take_std_keys() {
    struct Registers;
    impl Drop for Registers {
        fn drop(&mut self) {}
    }
    thread_local! {
        static REGISTERS: Registers = const { Registers };
    }
    let before = keys::existing();
    drop(std::thread::current());
    REGISTERS.with(|_| {});
    let after = keys::existing();
    let green = enter();
    with_values(&green, |values| {
        for key in (0..keys::KEYS_MAX).filter(|&k| after[k] && !before[k]) {
            let _ = values.set(key as u32, 0);
        }
    });
}

#[used]
#[link_section = ".init_array"]
static TAKE_STD_KEYS: extern "C" fn() = take_std_keys;
