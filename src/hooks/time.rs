//! sleep, usleep, nanosleep, clock_nanosleep: park on a timer.
//!
//! A zero-length sleep yields to the other green threads (a native zero sleep lets the
//! kernel run others too; a spin loop around `usleep(0)` must not starve them).

use super::{enter, fail};
use crate::real;
use crate::runtime;
use libc::{c_int, c_uint, clockid_t, timespec};
use std::time::{Duration, Instant};

fn sleep_for(duration: Duration) {
    if duration.is_zero() {
        runtime::yield_now();
        return;
    }
    match Instant::now().checked_add(duration) {
        Some(deadline) => runtime::sleep_until(deadline),
        // Longer than the clock can express: forever, as far as anyone can tell.
        None => loop {
            runtime::park(runtime::Reason::Sleep, None);
        },
    }
}

fn valid(ts: &timespec) -> bool {
    ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec)
}

fn duration(ts: &timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::sleep(secs) };
    };
    sleep_for(Duration::from_secs(u64::from(secs)));
    0
}

#[no_mangle]
pub unsafe extern "C" fn usleep(usecs: libc::useconds_t) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::usleep(usecs) };
    };
    sleep_for(Duration::from_micros(u64::from(usecs)));
    0
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let Some(_green) = enter().filter(|_| !req.is_null()) else {
        // SAFETY: forwarded (a NULL request fails there with EFAULT).
        return unsafe { real::nanosleep(req, rem) };
    };
    // SAFETY: non-NULL request from the program.
    let req = unsafe { *req };
    if !valid(&req) {
        return fail(libc::EINVAL);
    }
    sleep_for(duration(&req));
    0
}

/// Now on `clock`, or None for a clock we do not emulate.
fn now_on(clock: clockid_t) -> Option<Duration> {
    let clock = match clock {
        libc::CLOCK_REALTIME => rustix::time::ClockId::Realtime,
        libc::CLOCK_MONOTONIC => rustix::time::ClockId::Monotonic,
        libc::CLOCK_BOOTTIME => rustix::time::ClockId::Boottime,
        _ => return None,
    };
    let now = rustix::time::clock_gettime(clock);
    Some(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let green = enter();
    let now = now_on(clock);
    let (Some(_green), Some(now), false) = (green, now, req.is_null()) else {
        // SAFETY: forwarded: other clocks (CPU time) and bad pointers are libc's business.
        return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    };
    // SAFETY: non-NULL request from the program.
    let req = unsafe { *req };
    if !valid(&req) {
        return libc::EINVAL;
    }
    let wait = if flags & libc::TIMER_ABSTIME != 0 {
        // An absolute time on that clock: wait out the distance from now (a realtime
        // clock step during the wait is not followed; see the README).
        duration(&req).saturating_sub(now)
    } else {
        duration(&req)
    };
    if flags & libc::TIMER_ABSTIME != 0 && wait.is_zero() {
        return 0;
    }
    sleep_for(wait);
    0
}
