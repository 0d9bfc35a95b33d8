//! Absolute times on the program's clocks, as deadlines on the monotonic clock.

use libc::{clockid_t, timespec};
use std::time::{Duration, Instant};

/// A deadline for an absolute time on `clock` (REALTIME or MONOTONIC): EINVAL for another
/// clock or an invalid nanosecond field. A time in the past is a deadline already due.
/// A realtime clock step after this call is not followed.
pub fn abs_deadline(clock: clockid_t, abstime: &timespec) -> Result<Instant, i32> {
    let id = match clock {
        libc::CLOCK_REALTIME => rustix::time::ClockId::Realtime,
        libc::CLOCK_MONOTONIC => rustix::time::ClockId::Monotonic,
        _ => return Err(libc::EINVAL),
    };
    if !(0..1_000_000_000).contains(&abstime.tv_nsec) {
        return Err(libc::EINVAL);
    }
    let now = rustix::time::clock_gettime(id);
    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    let target = Duration::new(abstime.tv_sec.max(0) as u64, abstime.tv_nsec as u32);
    let wait = target.saturating_sub(now);
    Ok(Instant::now()
        .checked_add(wait)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400)))
}
