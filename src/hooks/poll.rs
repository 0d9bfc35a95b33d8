//! poll, ppoll, select, pselect and the epoll_wait family on the program's own fds.
//!
//! Each is the same loop: ask the kernel with a zero timeout (the real call, so results
//! and errors are exactly libc's); if nothing is ready, park on the fds until one may be
//! ready or the deadline passes; ask again.

use super::blocking::{self, uninterrupted, wait_for, Remaining, Tried, Waits};
use super::{enter, fail, Green};
use crate::real;
use crate::runtime::{self, Interest, Reason, Wake};
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
use std::time::{Duration, Instant};

const ZERO_TS: timespec = timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

fn deadline_after(timeout: Duration) -> Instant {
    // A timeout too long to represent is as good as forever.
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400))
}

fn ms_deadline(timeout_ms: c_int) -> Option<Instant> {
    (timeout_ms >= 0).then(|| deadline_after(Duration::from_millis(timeout_ms as u64)))
}

/// A timespec timeout: Err(()) if invalid (EINVAL natively), Ok(None) if NULL (forever).
///
/// # Safety
/// `ts` is NULL or points to a timespec.
pub unsafe fn ts_deadline(ts: *const timespec) -> Result<Option<Instant>, ()> {
    if ts.is_null() {
        return Ok(None);
    }
    // Unreadable: Err, and the real call reports it as it does natively.
    let ts = super::memory::read(ts).ok_or(())?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(());
    }
    Ok(Some(deadline_after(Duration::new(
        ts.tv_sec as u64,
        ts.tv_nsec as u32,
    ))))
}

/// A look that does not wait (a zero-timeout poll, select or epoll_wait), or a call a
/// non-green thread makes as it is (with what is left of its timeout when made again):
/// made again when only a SIGURG that ran no handler of the program's ended it with EINTR
/// (the kernel ends even a zero-timeout look so; see [`uninterrupted`]). For a green
/// caller, a loop of such looks waits for another thread, which must get its turn (see
/// runtime::sched::completed_without_parking).
fn polled_without_waiting(green: &Option<super::Green>, call: impl FnMut() -> c_int) -> c_int {
    let result = uninterrupted(call);
    if green.is_some() {
        runtime::sched::completed_without_parking();
    }
    result
}

/// Runs the wait of ppoll, pselect or epoll_pwait(2) with the call's signal mask as the
/// thread's own, as the kernel does: a signal the mask lets in ends the wait at once with
/// EINTR (also one pending before the call) and its handler runs under that mask; one the
/// mask blocks waits until the thread's own mask is back. None if the mask is unreadable
/// (the real call then says EFAULT).
fn under_mask(mask: *const sigset_t, wait: impl FnOnce() -> c_int) -> Option<c_int> {
    if mask.is_null() {
        return Some(wait());
    }
    // The kernel's sigset: the first 64 bits of glibc's.
    let wanted = super::memory::read(mask.cast::<u64>())?;
    let handled = super::signal::handled();
    let saved = runtime::sched::sigmask(libc::SIG_SETMASK, Some(wanted)).ok()?;
    super::signal::deliver_kept();
    // A signal pending under the old mask arrives as soon as the mask lets it in.
    let result = if super::signal::handled() != handled {
        fail(libc::EINTR)
    } else {
        wait()
    };
    // Handlers the call's mask let in run before it returns, under that mask.
    super::signal::run_delivered();
    let _ = runtime::sched::sigmask(libc::SIG_SETMASK, Some(saved));
    Some(result)
}

/// Asks `check` until it reports something, the deadline passes, or it is a pure poll;
/// parks on the fds `interests()` lists in between (on nothing, if empty: then only the
/// deadline wakes it). `interests` is called after the first check, once the kernel has
/// validated the program's arguments. Never restarted, whatever SA_RESTART says
/// (signal(7)).
fn wait_loop(
    green: &Green,
    mut check: impl FnMut() -> c_int,
    interests: impl FnOnce() -> Vec<(i32, Interest)>,
    deadline: Option<Instant>,
) -> c_int {
    let waits = Waits {
        deadline,
        every: None,
        restarts: false,
    };
    // A look that only a SIGURG ended looks again.
    let look = || match uninterrupted(&mut check) {
        0 => Tried::Waits(0),
        result => Tried::Done(result),
    };
    let mut interests = Some(interests);
    let mut fds = Vec::new();
    let park = |until| {
        if let Some(interests) = interests.take() {
            fds = interests();
        }
        match blocking::park_on(&fds, Reason::Poll, until) {
            // A closed fd is the check's to report (POLLNVAL, or epoll's silence).
            Wake::Closed => Wake::Ready,
            wake => wake,
        }
    };
    wait_for(Some(green), waits, look, park)
}

/// The interests of a pollfd array.
///
/// # Safety
/// `fds` points to `n` pollfds.
unsafe fn poll_interests(fds: *const pollfd, n: nfds_t) -> Vec<(i32, Interest)> {
    // The kernel takes nfds as an unsigned int.
    let n = n as u32 as usize;
    let mut list = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: i < n.
        let p = unsafe { *fds.add(i) };
        if p.fd < 0 {
            continue;
        }
        let reads = p.events
            & (libc::POLLIN
                | libc::POLLPRI
                | libc::POLLRDHUP
                | libc::POLLRDNORM
                | libc::POLLRDBAND);
        let writes = p.events & (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND);
        // Hangups and errors are reported whatever was asked: watch reads for those.
        if reads != 0 || writes == 0 {
            list.push((p.fd, Interest::Read));
        }
        if writes != 0 {
            list.push((p.fd, Interest::Write));
        }
    }
    list
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout_ms: c_int) -> c_int {
    let green = enter();
    let Some(waiting) = green.as_ref().filter(|_| timeout_ms != 0) else {
        let mut timeout = Remaining::millis(timeout_ms);
        // SAFETY: forwarded.
        let call = || unsafe { real::poll(fds, n, timeout.next_millis()) };
        return polled_without_waiting(&green, call);
    };
    // SAFETY: forwarded; a bad pointer makes the first real call fail with EFAULT.
    let check = || unsafe { real::poll(fds, n, 0) };
    // SAFETY: read only after the kernel accepted `n` pollfds at `fds`.
    let interests = || unsafe { poll_interests(fds, n) };
    wait_loop(waiting, check, interests, ms_deadline(timeout_ms))
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let Some(green) = enter() else {
        let mut timeout = Remaining::timespec(timeout);
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe { real::ppoll(fds, n, timeout.next_timespec(), mask) });
    };
    // SAFETY: NULL or the program's timespec.
    let Ok(deadline) = (unsafe { ts_deadline(timeout) }) else {
        // SAFETY: forwarded: libc and the kernel report a bad timeout as natively.
        return unsafe { real::ppoll(fds, n, timeout, mask) };
    };
    // SAFETY: forwarded with a zero timeout.
    let check = || unsafe { real::ppoll(fds, n, &ZERO_TS, mask) };
    // SAFETY: read only after the kernel accepted `n` pollfds at `fds`.
    let interests = || unsafe { poll_interests(fds, n) };
    under_mask(mask, || wait_loop(&green, check, interests, deadline))
        // SAFETY: forwarded: the kernel reports the unreadable mask.
        .unwrap_or_else(|| unsafe { real::ppoll(fds, n, timeout, mask) })
}

/// The fd_set words that hold the first `nfds` bits.
fn set_words(nfds: c_int) -> usize {
    (nfds.max(0) as usize).div_ceil(64)
}

/// A copy of the first `nfds` bits of a set (empty if NULL); None if unreadable.
fn copy_set(set: *const fd_set, nfds: c_int) -> Option<Vec<u64>> {
    if set.is_null() {
        return Some(Vec::new());
    }
    super::memory::read_slice(set.cast::<u64>(), set_words(nfds))
}

/// Writes `bits` back into the program's set (no-op for NULL sets).
///
/// # Safety
/// As for [`copy_set`].
unsafe fn store_set(set: *mut fd_set, bits: &[u64]) {
    if !set.is_null() {
        // SAFETY: per the caller; `bits` has set_words(nfds) words.
        unsafe { std::ptr::copy_nonoverlapping(bits.as_ptr(), set.cast::<u64>(), bits.len()) };
    }
}

fn set_interests(nfds: c_int, sets: [(&[u64], Interest); 3]) -> Vec<(i32, Interest)> {
    let mut list = Vec::new();
    for (bits, interest) in sets {
        for (w, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let fd = (w * 64 + word.trailing_zeros() as usize) as i32;
                word &= word - 1;
                if fd < nfds {
                    list.push((fd, interest));
                }
            }
        }
    }
    list
}

/// The select loop shared by select and pselect: `call(r, w, e)` is the real call with a
/// zero timeout on scratch copies of the sets.
///
/// # Safety
/// The sets are NULL or hold `nfds` bits.
unsafe fn select_loop(
    green: &Green,
    nfds: c_int,
    sets: [*mut fd_set; 3],
    deadline: Option<Instant>,
    mut call: impl FnMut(*mut fd_set, *mut fd_set, *mut fd_set) -> c_int,
) -> c_int {
    let copies = sets.map(|s| copy_set(s, nfds));
    let [Some(r), Some(w), Some(e)] = copies else {
        // An unreadable set: the real call reports EFAULT, as natively.
        return call(sets[0], sets[1], sets[2]);
    };
    let original = [r, w, e];
    let interests = set_interests(
        nfds,
        [
            (&original[0], Interest::Read),
            (&original[1], Interest::Write),
            (&original[2], Interest::Read),
        ],
    );
    let mut scratch = original.clone();
    let check = || {
        scratch.clone_from(&original);
        let ptrs = [0, 1, 2].map(|i| {
            if sets[i].is_null() {
                std::ptr::null_mut()
            } else {
                scratch[i].as_mut_ptr().cast::<fd_set>()
            }
        });
        call(ptrs[0], ptrs[1], ptrs[2])
    };
    let result = wait_loop(green, check, || interests, deadline);
    // The kernel writes the sets back only when it answers (a count, or 0 at the
    // deadline): an error, EINTR included, leaves them as the program passed them, and a
    // retry after EINTR selects on them again.
    if result >= 0 {
        // SAFETY: per the caller; `scratch` holds the last answer's sets.
        (0..3).for_each(|i| unsafe { store_set(sets[i], &scratch[i]) });
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *mut timeval,
) -> c_int {
    let green = enter();
    let tv = match timeout.is_null() {
        true => None,
        false => match super::memory::read(timeout) {
            Some(tv) => Some(tv),
            // SAFETY: forwarded: an unreadable timeout is libc's business, as natively.
            None => return unsafe { real::select(nfds, r, w, e, timeout) },
        },
    };
    let zero_timeout = tv.is_some_and(|t| t.tv_sec == 0 && t.tv_usec == 0);
    let waits = !zero_timeout && nfds >= 0 && !tv.is_some_and(|t| t.tv_sec < 0 || t.tv_usec < 0);
    let Some(waiting) = green.as_ref().filter(|_| waits) else {
        // SAFETY: forwarded: libc reports invalid arguments itself. Linux leaves the time
        // left in the timeval, so a call made again waits only that.
        return polled_without_waiting(&green, || unsafe { real::select(nfds, r, w, e, timeout) });
    };
    let deadline = tv.map(|t| {
        deadline_after(
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64),
        )
    });
    let zero_select = |r, w, e| {
        let mut zero = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: scratch sets and a zero timeout.
        unsafe { real::select(nfds, r, w, e, &mut zero) }
    };
    // SAFETY: the program's sets hold nfds bits.
    let result = unsafe { select_loop(waiting, nfds, [r, w, e], deadline, zero_select) };
    if let Some(deadline) = deadline {
        // Linux writes the time left back into the timeval.
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: non-NULL (deadline came from it).
        unsafe {
            (*timeout).tv_sec = left.as_secs() as libc::time_t;
            (*timeout).tv_usec = left.subsec_micros() as libc::suseconds_t;
        }
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let green = enter();
    // SAFETY: NULL or the program's timespec.
    let deadline = unsafe { ts_deadline(timeout) };
    // SAFETY: forwarded: libc reports invalid arguments itself.
    let forward = || unsafe { real::pselect(nfds, r, w, e, timeout, mask) };
    let (Some(green), Ok(deadline)) = (green.filter(|_| nfds >= 0), deadline) else {
        let mut timeout = Remaining::timespec(timeout);
        // SAFETY: as `forward`.
        return uninterrupted(|| unsafe {
            real::pselect(nfds, r, w, e, timeout.next_timespec(), mask)
        });
    };
    let zero_timeout = deadline.is_some_and(|d| d <= Instant::now());
    let waited = under_mask(mask, || {
        if zero_timeout {
            let result = uninterrupted(&forward);
            runtime::sched::completed_without_parking();
            return result;
        }
        // SAFETY: scratch sets and a zero timeout.
        let zero_pselect = |r, w, e| unsafe { real::pselect(nfds, r, w, e, &ZERO_TS, mask) };
        // SAFETY: the program's sets hold nfds bits; glibc's pselect leaves the timeout alone.
        unsafe { select_loop(&green, nfds, [r, w, e], deadline, zero_pselect) }
    });
    waited.unwrap_or_else(forward)
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout_ms: c_int,
) -> c_int {
    let green = enter();
    if crate::runtime::reactor::hidden(epfd) {
        // Not the program's fd (as in close).
        return super::fail(libc::EBADF);
    }
    let Some(waiting) = green.as_ref().filter(|_| timeout_ms != 0) else {
        let mut timeout = Remaining::millis(timeout_ms);
        // SAFETY: forwarded.
        let call = || unsafe { real::epoll_wait(epfd, events, max, timeout.next_millis()) };
        return polled_without_waiting(&green, call);
    };
    // SAFETY: forwarded with a zero timeout.
    let check = || unsafe { real::epoll_wait(epfd, events, max, 0) };
    wait_loop(
        waiting,
        check,
        || vec![(epfd, Interest::Read)],
        ms_deadline(timeout_ms),
    )
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout_ms: c_int,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: forwarded.
    let forward = || unsafe { real::epoll_pwait(epfd, events, max, timeout_ms, mask) };
    let Some(green) = enter() else {
        let mut timeout = Remaining::millis(timeout_ms);
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe {
            real::epoll_pwait(epfd, events, max, timeout.next_millis(), mask)
        });
    };
    // SAFETY: forwarded with a zero timeout.
    let check = || unsafe { real::epoll_pwait(epfd, events, max, 0, mask) };
    let interests = || vec![(epfd, Interest::Read)];
    under_mask(mask, || {
        wait_loop(&green, check, interests, ms_deadline(timeout_ms))
    })
    .unwrap_or_else(forward)
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let green = enter();
    // SAFETY: forwarded (libc reports an invalid timeout itself).
    let forward = || unsafe { real::epoll_pwait2(epfd, events, max, timeout, mask) };
    // SAFETY: NULL or the program's timespec.
    let (Some(green), Ok(deadline)) = (green, unsafe { ts_deadline(timeout) }) else {
        let mut timeout = Remaining::timespec(timeout);
        // SAFETY: forwarded.
        return uninterrupted(|| unsafe {
            real::epoll_pwait2(epfd, events, max, timeout.next_timespec(), mask)
        });
    };
    // SAFETY: forwarded with a zero timeout.
    let check = || unsafe { real::epoll_pwait2(epfd, events, max, &ZERO_TS, mask) };
    let interests = || vec![(epfd, Interest::Read)];
    under_mask(mask, || wait_loop(&green, check, interests, deadline)).unwrap_or_else(forward)
}
