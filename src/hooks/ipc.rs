//! Message queues and semaphores, whose calls wait in the kernel.
//!
//! A POSIX message queue is an fd that epoll watches (readable: a message is there;
//! writable: there is room), so a green thread parks on the reactor. Each attempt is the
//! timed call with an absolute timeout already past: where the call would wait it answers
//! ETIMEDOUT at once, and the queue's own O_NONBLOCK still answers EAGAIN as natively.
//!
//! SysV message queues and semaphores have no fd: the call is first made so that it cannot
//! wait (with IPC_NOWAIT); when it would wait, the blocking call runs on a helper thread
//! while the green thread parks. A signal does not interrupt the helper's wait: the
//! handler runs once the call has returned.

use super::blocking::{self, uninterrupted, wait_for, Remaining, Tried, Waits};
use super::clock::abs_deadline;
use super::offloaded::off_errno;
use super::{enter, errno, fail, memory};
use crate::real;
use crate::runtime::{self, Interest, Reason};
use libc::{c_char, c_int, c_long, c_uint, c_void, size_t, ssize_t, timespec};

/// An absolute time long past: the timed call does not wait.
const PAST: timespec = timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// What the kernel accepts as a timeout (a negative second is refused too).
fn valid(t: &timespec) -> bool {
    t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec)
}

/// One POSIX message queue call as natively: `call(abstime)` makes the real timed call.
/// A green thread parks while the queue is empty (or full), until `abstime` if given.
fn mq_call(
    mq: c_int,
    interest: Interest,
    abstime: *const timespec,
    mut call: impl FnMut(*const timespec) -> isize,
) -> isize {
    let Some(green) = enter() else {
        return call(abstime);
    };
    if runtime::reactor::hidden(mq) {
        // Not the program's fd: to it, that number is not open.
        return fail(libc::EBADF);
    }
    let deadline = if abstime.is_null() {
        None
    } else {
        match memory::read(abstime) {
            // The kernel refuses a bad timeout before it looks at the queue.
            Some(t) if valid(&t) => abs_deadline(libc::CLOCK_REALTIME, &t).ok(),
            _ => return call(abstime),
        }
    };
    let reason = match interest {
        Interest::Read => Reason::Read,
        Interest::Write => Reason::Write,
    };
    // The kernel restarts these calls after an SA_RESTART handler, timed or not.
    let waits = Waits {
        deadline,
        every: None,
        restarts: true,
    };
    let fds = [(mq, interest)];
    wait_for(
        Some(&green),
        waits,
        || match call(&PAST) {
            -1 if errno() == libc::ETIMEDOUT => Tried::Waits(-1),
            result => Tried::Done(result),
        },
        |until| blocking::park_on(&fds, reason, until),
    )
}

#[no_mangle]
pub unsafe extern "C" fn mq_timedreceive(
    mq: c_int,
    msg: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
    abstime: *const timespec,
) -> ssize_t {
    mq_call(mq, Interest::Read, abstime, |t| {
        // SAFETY: the program's arguments; `t` is its timeout or ours.
        unsafe { real::mq_timedreceive(mq, msg, len, prio, t) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn mq_receive(
    mq: c_int,
    msg: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
) -> ssize_t {
    // SAFETY: forwarded.
    unsafe { mq_timedreceive(mq, msg, len, prio, std::ptr::null()) }
}

#[no_mangle]
pub unsafe extern "C" fn mq_timedsend(
    mq: c_int,
    msg: *const c_char,
    len: size_t,
    prio: c_uint,
    abstime: *const timespec,
) -> c_int {
    mq_call(mq, Interest::Write, abstime, |t| {
        // SAFETY: the program's arguments; `t` is its timeout or ours.
        unsafe { real::mq_timedsend(mq, msg, len, prio, t) as isize }
    }) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn mq_send(
    mq: c_int,
    msg: *const c_char,
    len: size_t,
    prio: c_uint,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { mq_timedsend(mq, msg, len, prio, std::ptr::null()) }
}

/// A SysV call that may wait, from a green thread (`green`): `attempt` makes it so that
/// it cannot wait, failing with `busy` where it would; then `wait`, the blocking call,
/// runs on a helper. Before that, the other ready threads run once and the call is tried
/// again: the thread that would post or send is often one of them, and a helper costs two
/// wakes of OS threads. Not green: `wait` right here. Either way `wait` makes its call
/// again when only a SIGURG ended it (see blocking::uninterrupted): a SIGURG sent to the
/// process may land on the helper.
fn sysv_call(
    green: Option<super::Green>,
    busy: c_int,
    mut attempt: impl FnMut() -> isize,
    wait: impl FnOnce() -> isize,
) -> isize {
    if green.is_none() {
        return wait();
    }
    let result = attempt();
    if result != -1 || errno() != busy {
        runtime::sched::completed_without_parking();
        return result;
    }
    runtime::yield_now();
    let result = attempt();
    if result != -1 || errno() != busy {
        return result;
    }
    off_errno(&green, wait)
}

/// MSG_COPY (not in the libc crate): a copy by position, which requires IPC_NOWAIT.
const MSG_COPY: c_int = 0o40000;

#[no_mangle]
pub unsafe extern "C" fn msgsnd(
    id: c_int,
    msg: *const c_void,
    size: size_t,
    flags: c_int,
) -> c_int {
    let green = enter().filter(|_| flags & libc::IPC_NOWAIT == 0);
    sysv_call(
        green,
        libc::EAGAIN,
        // SAFETY: the program's arguments.
        || unsafe { real::msgsnd(id, msg, size, flags | libc::IPC_NOWAIT) as isize },
        // SAFETY: the program's arguments, valid while it waits.
        || uninterrupted(|| unsafe { real::msgsnd(id, msg, size, flags) as isize }),
    ) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn msgrcv(
    id: c_int,
    msg: *mut c_void,
    size: size_t,
    ty: c_long,
    flags: c_int,
) -> ssize_t {
    let green = enter().filter(|_| flags & (libc::IPC_NOWAIT | MSG_COPY) == 0);
    sysv_call(
        green,
        libc::ENOMSG,
        // SAFETY: the program's arguments.
        || unsafe { real::msgrcv(id, msg, size, ty, flags | libc::IPC_NOWAIT) },
        // SAFETY: the program's arguments, valid while it waits.
        || uninterrupted(|| unsafe { real::msgrcv(id, msg, size, ty, flags) }),
    )
}

/// Far more operations than a kernel takes at once (its semopm is 500 by default): such
/// a call goes straight through (the kernel refuses it with E2BIG unless semopm was
/// raised that high).
const MAX_SEMOPS: size_t = 1 << 16;

#[no_mangle]
pub unsafe extern "C" fn semtimedop(
    id: c_int,
    sops: *mut libc::sembuf,
    n: size_t,
    timeout: *const timespec,
) -> c_int {
    // A zero timeout (or one the kernel refuses) never waits.
    let waits = timeout.is_null()
        || memory::read(timeout).is_some_and(|t| valid(&t) && (t.tv_sec, t.tv_nsec) != (0, 0));
    let green = enter().filter(|_| waits && n <= MAX_SEMOPS);
    let mut remaining = Remaining::timespec(timeout);
    // SAFETY: the program's arguments, valid while it waits; its timeout, or what is left.
    let mut wait = move || unsafe { real::semtimedop(id, sops, n, remaining.next_timespec()) };
    // The attempt gives every operation IPC_NOWAIT (a zero timeout would still sleep for
    // the timer slack). Operations that cannot be read: the kernel says EFAULT at once.
    let ops = green.as_ref().and_then(|_| memory::read_slice(sops, n));
    let Some(mut ops) = ops else {
        // Made as it is (a zero timeout still sleeps, for the thread's timer slack).
        return uninterrupted(wait);
    };
    for op in &mut ops {
        op.sem_flg |= libc::IPC_NOWAIT as libc::c_short;
    }
    sysv_call(
        green,
        libc::EAGAIN,
        // SAFETY: our copy of the program's operations, with IPC_NOWAIT.
        || unsafe { real::semtimedop(id, ops.as_mut_ptr(), n, std::ptr::null()) as isize },
        || uninterrupted(&mut wait) as isize,
    ) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn semop(id: c_int, sops: *mut libc::sembuf, n: size_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { semtimedop(id, sops, n, std::ptr::null()) }
}
