//! sleep, usleep, nanosleep, clock_nanosleep: park on a timer. POSIX timers that signal a
//! green thread by its id (SIGEV_THREAD_ID).
//!
//! A zero-length sleep yields to the other green threads (a native zero sleep lets the
//! kernel run others too; a spin loop around `usleep(0)` must not starve them).

use super::blocking::{uninterrupted, uninterrupted_by, Remaining};
use super::{enter, fail, signal};
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

/// The kernel's own sleep, for a thread that is not green: `first` makes the program's call
/// as it is (-1 and EINTR if a signal ended it); when only a SIGURG ended it (see
/// blocking::uninterrupted), the rest of `duration` is slept with nanosleep, which leaves
/// the time left in `rem` if a handler of the program's ends it. Says whether `first` made
/// the last call.
fn kernel_sleep(
    duration: Duration,
    first: impl FnOnce() -> c_int,
    rem: *mut timespec,
) -> (c_int, bool) {
    let given = to_timespec(duration);
    let mut remaining = Remaining::timespec(&given);
    let mut first = Some(first);
    let result = uninterrupted(|| {
        let left = remaining.next_timespec();
        match first.take() {
            Some(call) => call(),
            // SAFETY: our timespec; `rem` is NULL or the program's out-pointer.
            None => unsafe { real::nanosleep(left, rem) },
        }
    });
    (result, first.is_some())
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
        let saved = super::errno();
        let (mut unslept, mut rem) = (0, to_timespec(Duration::ZERO));
        let first = || {
            super::set_errno(0);
            // SAFETY: forwarded.
            unslept = unsafe { real::sleep(secs) };
            // glibc's sleep keeps errno unless a signal ended it (when less than a second
            // was left, it then says 0 all the same).
            if super::errno() == libc::EINTR {
                -1
            } else {
                0
            }
        };
        return match kernel_sleep(Duration::from_secs(u64::from(secs)), first, &mut rem) {
            (0, _) => {
                super::set_errno(saved);
                0
            }
            (_, true) => unslept,
            // glibc's sleep: the whole seconds left.
            (_, false) => rem.tv_sec as c_uint,
        };
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
        let first = || unsafe { real::usleep(usecs) };
        let duration = Duration::from_micros(u64::from(usecs));
        return kernel_sleep(duration, first, std::ptr::null_mut()).0;
    };
    match sleep_for(Duration::from_micros(u64::from(usecs))) {
        Some(_) => fail(libc::EINTR),
        None => 0,
    }
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let request = super::memory::read(req);
    let (Some(_green), Some(req)) = (enter(), request) else {
        let mut remaining = Remaining::timespec(req);
        // SAFETY: forwarded (an unreadable request fails there with EFAULT).
        return uninterrupted(|| unsafe { real::nanosleep(remaining.next_timespec(), rem) });
    };
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

/// Now on `clock`, for the wall and monotonic clocks we wait on with a timer.
fn now_on(clock: clockid_t) -> Option<Duration> {
    match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => {
            clock_now(clock)
        }
        _ => None,
    }
}

fn clock_now(clock: clockid_t) -> Option<Duration> {
    let mut now = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime (not a hook) writes one timespec.
    (unsafe { libc::clock_gettime(clock, &mut now) } == 0)
        .then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// A process CPU clock (ours, or another process's from clock_getcpuclockid): it only
/// advances while green threads run, so the sleeper must let them run. Thread CPU
/// clocks are left to the kernel, which refuses them (EINVAL).
fn is_cpu_clock(clock: clockid_t) -> bool {
    const PER_THREAD: clockid_t = 4;
    clock == libc::CLOCK_PROCESS_CPUTIME_ID
        || (clock < 0 && clock & PER_THREAD == 0 && clock & 3 != 3)
}

/// clock_nanosleep on a CPU clock: parks in slices until the clock reaches the target.
/// Not through `blocking::wait_for`: clock_nanosleep answers with an error number and
/// leaves errno alone.
fn cpu_sleep(clock: clockid_t, flags: c_int, req: &timespec) -> c_int {
    let Some(start) = clock_now(clock) else {
        return libc::EINVAL;
    };
    let target = if flags & libc::TIMER_ABSTIME != 0 {
        duration(req)
    } else {
        start + duration(req)
    };
    loop {
        let Some(now) = clock_now(clock) else {
            return libc::EINVAL;
        };
        if now >= target {
            return 0;
        }
        // CPU time cannot pass faster than wall time on one OS thread.
        let slice = (target - now).max(Duration::from_micros(100));
        if let Wake::Interrupted { .. } = runtime::sleep_until(Instant::now() + slice) {
            return libc::EINTR;
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let green = enter();
    let request = super::memory::read(req);
    let (Some(_green), Some(req)) = (green, request) else {
        // SAFETY: forwarded: bad pointers are the kernel's business.
        return unsafe { forward_clock_nanosleep(clock, flags, req, rem) };
    };
    if !valid(&req) {
        return libc::EINVAL;
    }
    let Some(now) = now_on(clock) else {
        if is_cpu_clock(clock) {
            return cpu_sleep(clock, flags, &req);
        }
        // SAFETY: forwarded: libc answers for clocks it does not support.
        return unsafe { forward_clock_nanosleep(clock, flags, &req, rem) };
    };
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

/// clock_nanosleep made by the kernel, made again with the time left (a relative sleep) or
/// as it is (an absolute one) when only a SIGURG ended it (see blocking::uninterrupted).
///
/// # Safety
/// As for clock_nanosleep.
unsafe fn forward_clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let mut remaining = Remaining::timespec(req);
    let relative = flags & libc::TIMER_ABSTIME == 0;
    let call = || {
        let req = if relative {
            remaining.next_timespec()
        } else {
            req
        };
        // SAFETY: per the caller; `req` is the program's or our time left.
        unsafe { real::clock_nanosleep(clock, flags, req, rem) }
    };
    // It returns its error number.
    uninterrupted_by(call, |r| *r == libc::EINTR)
}

/// timer_create: a SIGEV_THREAD_ID timer naming a green thread's id signals the process,
/// and its handler runs in the green thread named (see signal.rs), as natively. Not this
/// OS thread: the green thread may run elsewhere by then, and an idle worker other than
/// the first blocks every signal (sched/run.rs), so a sleep it should end slept on. A
/// timer aimed at a thread that exits before the timer is deleted may reach the thread
/// that later takes its place in the scheduler.
#[no_mangle]
pub unsafe extern "C" fn timer_create(
    clock: clockid_t,
    event: *mut libc::sigevent,
    timer: *mut libc::timer_t,
) -> c_int {
    let green = enter();
    let wanted = super::memory::read(event).filter(|_| green.is_some());
    let target = wanted
        .filter(|e| e.sigev_notify == libc::SIGEV_THREAD_ID)
        .and_then(|e| runtime::sched::thread_by_tid(e.sigev_notify_thread_id));
    let (Some(mut event), Some(target)) = (wanted, target) else {
        // SAFETY: forwarded.
        let r = unsafe { real::timer_create(clock, event, timer) };
        if r == 0 && green.is_some() && kernel_timer(event).is_some() {
            // A timer of the same kernel id deleted earlier no longer names a thread.
            // SAFETY: timer_create filled it.
            signal::route_timer(unsafe { *timer } as usize as i32, None);
        }
        return r;
    };
    event.sigev_notify = libc::SIGEV_SIGNAL;
    // SAFETY: the program's clock and out-pointer, our copy of its event.
    let r = unsafe { real::timer_create(clock, &mut event, timer) };
    // SAFETY: timer_create filled it: a SIGEV_SIGNAL timer_t is the kernel's timer id.
    if r == 0 && !signal::route_timer(unsafe { *timer } as usize as i32, Some(target)) {
        ::log::warn!("too many timers signal green threads: this one goes to any thread");
    }
    r
}

/// Whether `event` makes glibc hand back the kernel's own timer id (every notification
/// but SIGEV_THREAD, which glibc runs itself).
fn kernel_timer(event: *const libc::sigevent) -> Option<()> {
    match super::memory::read(event) {
        Some(e) if e.sigev_notify == libc::SIGEV_THREAD => None,
        _ => Some(()),
    }
}

#[no_mangle]
pub unsafe extern "C" fn timer_delete(timer: libc::timer_t) -> c_int {
    // SAFETY: forwarded.
    let r = unsafe { real::timer_delete(timer) };
    if r == 0 && (timer as isize) >= 0 {
        signal::route_timer(timer as usize as i32, None);
    }
    r
}
