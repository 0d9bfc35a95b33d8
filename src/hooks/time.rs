//! sleep, usleep, nanosleep, clock_nanosleep: park on a timer.
//!
//! A zero-length sleep yields to the other green threads (a native zero sleep lets the
//! kernel run others too; a spin loop around `usleep(0)` must not starve them).

use super::{enter, fail};
use crate::real;
use crate::runtime::{self, Reason, Wake};
use libc::{c_int, c_uint, clockid_t, timespec};
use std::time::{Duration, Instant};

/// Sleeps; returns the time left if a signal handler interrupted the sleep (sleeps are
/// never restarted, whatever SA_RESTART says).
fn sleep_for(duration: Duration) -> Option<Duration> {
    if duration.is_zero() {
        runtime::yield_now();
        return None;
    }
    let Some(deadline) = Instant::now().checked_add(duration) else {
        // Longer than the clock can express: until a signal, as far as anyone can tell.
        loop {
            if let Wake::Interrupted { .. } = runtime::park_interruptible(Reason::Sleep, None) {
                return Some(duration);
            }
        }
    };
    match runtime::sleep_until(deadline) {
        Wake::Interrupted { .. } => Some(deadline.saturating_duration_since(Instant::now())),
        _ => None,
    }
}

fn to_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
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
    match sleep_for(Duration::from_secs(u64::from(secs))) {
        // glibc's sleep: the whole seconds left (errno stays EINTR).
        Some(left) => {
            super::set_errno(libc::EINTR);
            left.as_secs() as c_uint
        }
        None => 0,
    }
}

#[no_mangle]
pub unsafe extern "C" fn usleep(usecs: libc::useconds_t) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::usleep(usecs) };
    };
    match sleep_for(Duration::from_micros(u64::from(usecs))) {
        Some(_) => fail(libc::EINTR),
        None => 0,
    }
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
    match sleep_for(duration(&req)) {
        Some(left) => {
            if !rem.is_null() {
                // SAFETY: the program's out-pointer.
                unsafe { *rem = to_timespec(left) };
            }
            fail(libc::EINTR)
        }
        None => 0,
    }
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
    match sleep_for(wait) {
        Some(left) => {
            // The remaining time is reported for relative sleeps only.
            if flags & libc::TIMER_ABSTIME == 0 && !rem.is_null() {
                // SAFETY: the program's out-pointer.
                unsafe { *rem = to_timespec(left) };
            }
            libc::EINTR
        }
        None => 0,
    }
}
