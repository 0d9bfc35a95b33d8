//! The one way a hook waits: try, and park instead of blocking. [`run`] (and its forms
//! [`write_all`] and [`transfer`]) waits for an fd's data; [`wait_for`] is the driver of
//! every other wait (a child, a signal, a message queue, a connection, poll and its
//! family), with the same rules for deadlines, handlers (`ending`) and cancellation.
//!
//! How an attempt is made depends on what the fd is (see `runtime::fdtable`):
//! * an owned socket is O_NONBLOCK underneath: try the call, park on EAGAIN;
//! * an inherited socket keeps its flags: add MSG_DONTWAIT where the call takes flags;
//! * any other pollable fd keeps its flags: call only once a zero-timeout poll says the
//!   call cannot block ("gated"), and write at most PIPE_BUF bytes per call, which a
//!   writable pipe always takes without blocking;
//! * regular files, and fds the program made non-blocking itself, go straight through.
//!
//! Outside a green thread an owned socket still has to look blocking to the program, so
//! we wait with a real poll(2) there.

use super::{errno, fail, set_errno, Green};
use crate::runtime::fdtable::{self, FdInfo, Kind};
use crate::runtime::{self, Interest, Reason, Wake};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::FileType;
use std::time::{Duration, Instant};

/// How the hook must perform this attempt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Attempt {
    /// Just call it (it will not block, or is meant to block natively).
    Plain,
    /// Call it with MSG_DONTWAIT added to its flags.
    DontWait,
    /// A poll said it cannot block now; write at most PIPE_BUF bytes.
    Gated,
    /// Call the preadv2/pwritev2 form with RWF_NOWAIT (pipes, FIFOs, eventfds: the
    /// kernel checks the call as usual and answers EAGAIN instead of blocking).
    NoWait,
}

/// One blocking operation on one fd.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub fd: i32,
    pub interest: Interest,
    pub reason: Reason,
    /// The call takes socket flags, so [`Attempt::DontWait`] is possible.
    pub has_flags: bool,
    /// The call has a preadv2/pwritev2 form, so [`Attempt::NoWait`] is possible.
    pub has_nowait: bool,
    /// What the call reads into, where its length matters.
    pub reads: Reads,
}

/// What a read consumes into (one value: a field each made every call's `Op` bigger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Not a consuming read, or one whose length nothing asks.
    Unknown,
    /// Up to this many bytes: on a stream socket a short result means the queue is empty.
    Bytes(usize),
    /// Up to this many bytes without consuming them as they come (MSG_PEEK, MSG_WAITALL):
    /// only whether it asks for none matters.
    Looks(usize),
    /// The iovecs of this `recvmsg` header, read only when their length matters (see
    /// [`holds_no_byte`]).
    Msg(*const libc::msghdr),
}

impl Op {
    pub fn new(fd: i32, interest: Interest, reason: Reason) -> Op {
        Op {
            fd,
            interest,
            reason,
            has_flags: false,
            has_nowait: false,
            reads: Reads::Unknown,
        }
    }

    /// A `recvmsg` into `msg`'s iovecs.
    pub fn receiving_into(self, msg: *const libc::msghdr) -> Op {
        Op {
            reads: Reads::Msg(msg),
            ..self
        }
    }

    /// Whether it is a receive of no byte: of 0 bytes, or a `recvmsg` whose iovecs hold
    /// none (see [`holds_no_byte`]).
    #[inline]
    fn asks_nothing(&self) -> bool {
        match self.reads {
            Reads::Unknown => false,
            Reads::Bytes(n) | Reads::Looks(n) => n == 0,
            Reads::Msg(msg) => holds_no_byte(msg),
        }
    }

    /// A consuming read of up to `len` bytes: on a stream socket a short result means
    /// the queue is empty, so the next read can wait for readiness without trying.
    pub fn reading(self, len: usize) -> Op {
        Op {
            reads: Reads::Bytes(len),
            ..self
        }
    }

    /// A read of up to `len` bytes that does not consume them as they come (see
    /// [`Reads::Looks`]).
    pub fn looking(self, len: usize) -> Op {
        Op {
            reads: Reads::Looks(len),
            ..self
        }
    }

    pub fn with_flags(self) -> Op {
        Op {
            has_flags: true,
            ..self
        }
    }

    pub fn with_nowait(self) -> Op {
        Op {
            has_nowait: true,
            ..self
        }
    }
}

/// Whether the iovecs of `msg` hold no byte: read through the kernel, only as a timeout
/// ends a wait (a header or iovec that cannot be read says no, and the call's own try
/// reports it). Out of line: every read's `run` would carry it.
#[cold]
#[inline(never)]
fn holds_no_byte(msg: *const libc::msghdr) -> bool {
    let Some(msg) = super::memory::read(msg) else {
        return false;
    };
    let mut iov = msg.msg_iov.cast_const();
    for _ in 0..msg.msg_iovlen {
        match super::memory::read(iov) {
            Some(one) if one.iov_len == 0 => iov = iov.wrapping_add(1),
            _ => return false,
        }
    }
    true
}

/// What we know of `fd`, looking at it the first time. None: not an open fd.
/// Inline: every read and write asks (one call cost ~58 instructions, a pipe round trip
/// asked six times), and each caller uses only some of the facts.
#[inline]
pub fn facts(fd: i32) -> Option<FdInfo> {
    let info = fdtable::get(fd);
    if info.kind == Kind::Unknown {
        return fdtable::classify(fd);
    }
    Some(info)
}

/// Whether the program sees `fd` as blocking (so its calls must wait).
pub fn blocks(fd: i32) -> bool {
    facts(fd).is_some_and(|i| !i.user_nonblock && i.kind != Kind::Passthrough)
}

fn would_block(e: i32) -> bool {
    e == libc::EAGAIN || e == libc::EWOULDBLOCK
}

fn poll_flags(interest: Interest) -> PollFlags {
    match interest {
        Interest::Read => PollFlags::IN | PollFlags::PRI,
        Interest::Write => PollFlags::OUT,
    }
}

/// A zero-timeout poll: true if the call would not block now (ready, error or hangup).
/// One that only a SIGURG ended looks again (see [`uninterrupted`]).
pub fn ready_now(fd: i32, interest: Interest) -> bool {
    // SAFETY: the fd is only borrowed for this poll; a closed fd reports POLLNVAL.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::from_borrowed_fd(borrowed, poll_flags(interest))];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let polled = uninterrupted_by(
        || rustix::event::poll(&mut fds, Some(&zero)),
        |r| *r == Err(rustix::io::Errno::INTR),
    );
    matches!(polled, Ok(n) if n > 0)
}

/// Makes a call to the kernel for the program, again while a SIGURG that ran no handler of
/// the program's is what ended it with EINTR (see `preempt::absorbed`): greenify's
/// preemption signal, sent as a thread that computed enters a call that waits, or the
/// program's own SIGURG while it ignores that signal. The kernel restarts many calls
/// after the handler (it has SA_RESTART), but never sleeps, the waits for signals, poll
/// and its family, SysV IPC waits, io_getevents (signal(7)); natively neither kind of
/// signal ends them. `interrupted` tells such an end from the call's result. A call with a
/// relative timeout is made again with what is left of it ([`Remaining`]).
pub fn uninterrupted_by<R>(mut call: impl FnMut() -> R, interrupted: impl Fn(&R) -> bool) -> R {
    loop {
        let (absorbed, handled) = (super::preempt::absorbed(), super::signal::handled());
        let result = call();
        if !interrupted(&result)
            || super::preempt::absorbed() == absorbed
            || super::signal::handled() != handled
        {
            return result;
        }
    }
}

/// [`uninterrupted_by`] for a call that fails with -1 and errno.
pub fn uninterrupted<R: PartialEq + From<i8>>(call: impl FnMut() -> R) -> R {
    uninterrupted_by(call, |result| {
        *result == R::from(-1) && errno() == libc::EINTR
    })
}

/// A relative timeout of a call that [`uninterrupted`] may make again: the program's own
/// the first time, what is left of it afterwards (the kernel refuses a bad one, or one it
/// cannot read, before it waits, so that one is only ever passed as given).
pub struct Remaining {
    given: *const libc::timespec,
    given_ms: libc::c_int,
    deadline: Option<Instant>,
    made: bool,
    left: libc::timespec,
}

impl Remaining {
    /// A timeout given as a timespec (NULL: none).
    pub fn timespec(given: *const libc::timespec) -> Remaining {
        let valid = |t: &libc::timespec| t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec);
        let timeout = super::memory::read(given)
            .filter(valid)
            .map(|t| Duration::new(t.tv_sec as u64, t.tv_nsec as u32));
        Remaining::of(given, -1, timeout)
    }

    /// A timeout given in milliseconds (negative: none).
    pub fn millis(given_ms: libc::c_int) -> Remaining {
        let timeout = (given_ms >= 0).then(|| Duration::from_millis(given_ms as u64));
        Remaining::of(std::ptr::null(), given_ms, timeout)
    }

    fn of(given: *const libc::timespec, given_ms: libc::c_int, timeout: Option<Duration>) -> Self {
        Remaining {
            given,
            given_ms,
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            made: false,
            left: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        }
    }

    /// The time left, None for the first call (or a timeout that is not one).
    fn next(&mut self) -> Option<Duration> {
        let again = std::mem::replace(&mut self.made, true);
        let deadline = self.deadline.filter(|_| again)?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// The timespec to pass to the next call (valid until the one after).
    pub fn next_timespec(&mut self) -> *const libc::timespec {
        let Some(left) = self.next() else {
            return self.given;
        };
        self.left = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        &self.left
    }

    /// The milliseconds to pass to the next call (rounded up, as the kernel rounds).
    pub fn next_millis(&mut self) -> libc::c_int {
        match self.next() {
            None => self.given_ms,
            Some(left) => left.as_nanos().div_ceil(1_000_000) as libc::c_int,
        }
    }
}

/// Runs one blocking operation as the program expects it to behave. `attempt` performs
/// the real call the way it is told and returns its result (-1 with errno on failure).
pub fn run(green: Option<&Green>, op: Op, mut attempt: impl FnMut(Attempt) -> isize) -> isize {
    if runtime::reactor::hidden(op.fd) {
        // Not the program's fd: to it, that number is not open.
        return fail(libc::EBADF);
    }
    if green.is_none() {
        return run_native(op, attempt);
    }
    let Some(info) = facts(op.fd) else {
        return attempt(Attempt::Plain);
    };
    if info.kind == Kind::Passthrough {
        // Regular files: inline (the page cache answers), or on a helper if asked.
        if super::config().offload_files && matches!(op.reason, Reason::Read | Reason::Write) {
            return runtime::offload::run(|| {
                let result = attempt(Attempt::Plain);
                (result, errno())
            })
            .with_errno();
        }
        return attempt(Attempt::Plain);
    }
    if info.view_decides() && info.user_nonblock {
        // The program's own non-blocking call: a loop of them waits for another thread.
        let result = attempt(Attempt::Plain);
        runtime::sched::completed_without_parking();
        return result;
    }
    let mut how = attempt_kind(&info, op);
    // An owned socket is normally still O_NONBLOCK underneath: then just try (errors such
    // as accept's EINVAL come at once); only a description a child made blocking is gated.
    if how == Attempt::Gated && info.kind == Kind::Owned && description_nonblocking(op.fd) {
        how = Attempt::Plain;
    }
    let timeout = match op.interest {
        Interest::Read => info.recv_timeout,
        Interest::Write => info.send_timeout,
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let tracks_drain =
        matches!(op.reads, Reads::Bytes(n) if n > 0) && info.kind == Kind::Owned && info.is_tcp;
    // TCP ends a zero-length receive whose timeout passed with 0, not EAGAIN (tcp_recvmsg
    // leaves its loop once its one wait ends, with nothing copied).
    let wake_ends = |wake: Wake| match wake {
        Wake::TimedOut if timeout.is_some() && info.is_tcp && op.asks_nothing() => Some(0),
        wake => after_wake(wake, timeout),
    };
    let mut parked = false;
    // A call that succeeds leaves errno as it found it: not the EAGAIN of a try before.
    let entry_errno = errno();
    // A read that would only find nothing waits at once: the look and the park are one
    // section. (A gated read looks with a poll anyway.)
    if tracks_drain && how != Attempt::Gated {
        if let Some(wake) = runtime::wait_read_if_drained(op.fd, op.reason, deadline) {
            parked = true;
            if let Some(result) = wake_ends(wake) {
                return result;
            }
        }
    }
    loop {
        if how != Attempt::Gated || ready_now(op.fd, op.interest) {
            if parked {
                set_errno(entry_errno);
            }
            let result = attempt(how);
            if tracks_drain
                && result > 0
                && matches!(op.reads, Reads::Bytes(n) if (result as usize) < n)
            {
                runtime::sched::set_drained(op.fd);
            }
            if result != -1 {
                if !parked {
                    runtime::sched::completed_without_parking();
                }
                // A reset socket reads as closed once its error is taken: hand over the
                // one a write of ours took (see write_all).
                if result == 0 && op.interest == Interest::Read {
                    if let Some(error) = fdtable::take_error(op.fd) {
                        return fail(error);
                    }
                }
                return result;
            }
            let error = errno();
            // Files that cannot do RWF_NOWAIT say so: fall back to waiting for readiness.
            if how == Attempt::NoWait
                && matches!(error, libc::EOPNOTSUPP | libc::EINVAL)
                && (error == libc::EOPNOTSUPP || lacks_read_iter(op.fd))
            {
                how = Attempt::Gated;
                continue;
            }
            if !would_block(error) {
                return result;
            }
        }
        // Not ready. O_NONBLOCK belongs to the open file description: if the program (or
        // anyone sharing it) made it non-blocking, the answer is the call's own EAGAIN
        // (known without asking where the program's view decides).
        if !info.view_decides() && description_nonblocking(op.fd) {
            let result = attempt(Attempt::Plain);
            runtime::sched::completed_without_parking();
            return result;
        }
        if how == Attempt::Gated && !parked {
            if let Some(error) = refused_at_once(op) {
                return fail(error);
            }
        }
        parked = true;
        match runtime::wait_fd(op.fd, op.interest, op.reason, deadline) {
            // A sender the kernel wakes looks at the socket's error first (a peer that
            // closed with unread data: ECONNRESET), before its state (EPIPE, SIGPIPE).
            Wake::Ready if op.interest == Interest::Write && info.is_socket => {
                if let Some(error) = take_socket_error(op.fd) {
                    return fail(error);
                }
            }
            wake => {
                if let Some(result) = wake_ends(wake) {
                    return result;
                }
            }
        }
    }
}

/// What a wake means for a blocking call bounded by a socket `timeout`: go on (None), or
/// return this. SA_RESTART restarts the call, unless the socket has a timeout (signal(7));
/// with no timeout, a timed-out wait was only a pause of greenify's own.
fn after_wake(wake: Wake, timeout: Option<std::time::Duration>) -> Option<isize> {
    match wake {
        Wake::TimedOut if timeout.is_some() => Some(fail(libc::EAGAIN)),
        wake => ending(wake, timeout.is_none()).map(fail),
    }
}

/// The error a wake ends a waiting call with, or None: it tries again. A handler ends it
/// with EINTR unless it has SA_RESTART and the call `restarts` (signal(7)); the fd it
/// waited on being closed, with EBADF. A timed-out park only says to look again: the
/// call's own deadline is the driver's business ([`wait_for`]).
fn ending(wake: Wake, restarts: bool) -> Option<i32> {
    match wake {
        Wake::Ready | Wake::TimedOut => None,
        Wake::Closed => Some(libc::EBADF),
        Wake::Interrupted { restart } if restart && restarts => None,
        Wake::Interrupted { .. } => Some(libc::EINTR),
    }
}

/// What one attempt of a waiting call found.
pub enum Tried<R> {
    /// The call's answer.
    Done(R),
    /// The call would wait: this is its answer once its deadline has passed.
    Waits(R),
}

/// How a call waits between attempts (see [`wait_for`]).
#[derive(Clone, Copy, Debug)]
pub struct Waits {
    /// The call's own deadline (None: it may wait for ever).
    pub deadline: Option<Instant>,
    /// Look again at least this often, for what no wake announces.
    pub every: Option<Duration>,
    /// Whether a handler with SA_RESTART restarts the call (signal(7)).
    pub restarts: bool,
}

/// The one waiting loop of the calls that wait for something other than an fd's data (a
/// child, a signal, a message queue, a connection, readiness in poll and its family, or
/// just a handler in pause): try, park, try again, map the wake to the call's answer. `attempt` makes the call so that it cannot wait; `park(until)` waits
/// until what may end the call happens, or until `until` (the deadline, or sooner to look
/// again), and says what woke it. The parks are cancellation points: a cancelled thread
/// exits from them. A thread that never parks counts as a call that did not wait (see
/// `sched::completed_without_parking`). Outside a green thread `park` must wait natively.
pub fn wait_for<R: From<i8>>(
    green: Option<&Green>,
    waits: Waits,
    mut attempt: impl FnMut() -> Tried<R>,
    mut park: impl FnMut(Option<Instant>) -> Wake,
) -> R {
    let mut parked = false;
    // A call that succeeds leaves errno as it found it: not the EAGAIN of a try before.
    let entry_errno = errno();
    loop {
        let due = waits.deadline.is_some_and(|d| Instant::now() >= d);
        if parked {
            set_errno(entry_errno);
        }
        let answer = match attempt() {
            Tried::Done(answer) => Some(answer),
            Tried::Waits(answer) => due.then_some(answer),
        };
        if let Some(answer) = answer {
            if !parked && green.is_some() {
                runtime::sched::completed_without_parking();
            }
            return answer;
        }
        parked = true;
        let look = waits.every.map(|every| Instant::now() + every);
        let until = match (waits.deadline, look) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        if let Some(error) = ending(park(until), waits.restarts) {
            return fail(error);
        }
    }
}

/// An fd a wait opened for itself, moved into greenify's reserved range: at the number
/// the kernel gave it, the program's other threads would get other numbers than natively
/// while the wait lasts, and their close-everything could close it. None if the range
/// has no room (the wait then looks again periodically instead).
pub fn own_fd(fd: OwnedFd) -> Option<OwnedFd> {
    let floor = runtime::reactor::internal_fd_floor();
    let placed = runtime::reactor::dup_internal(fd.as_fd(), floor);
    runtime::reactor::close_raw(fd);
    placed
}

/// Closes an fd of [`own_fd`], and forgets the reactor's registration of it.
pub fn close_own(fd: OwnedFd) {
    runtime::fd_closed(fd.as_raw_fd());
    runtime::reactor::close_raw(fd);
}

/// A [`wait_for`] park of a green thread on `fds` (none: only the time, or a handler).
pub fn park_on(fds: &[(i32, Interest)], reason: Reason, until: Option<Instant>) -> Wake {
    if fds.is_empty() {
        runtime::park_interruptible(reason, until)
    } else {
        runtime::wait_fds(fds, reason, until)
    }
}

/// The time from now until `until` (zero once it has passed), for a real poll or sleep.
fn time_left(until: Instant) -> rustix::time::Timespec {
    let left = until.saturating_duration_since(Instant::now());
    rustix::time::Timespec {
        tv_sec: left.as_secs() as i64,
        tv_nsec: left.subsec_nanos() as _,
    }
}

/// The socket's pending error (SO_ERROR), taken as the kernel's own waits take it.
fn take_socket_error(fd: i32) -> Option<i32> {
    // SAFETY: borrowed for one getsockopt.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match rustix::net::sockopt::socket_error(borrowed) {
        Ok(Err(error)) => Some(error.raw_os_error()),
        _ => None,
    }
}

/// Errors a socket reports once from its pending error (sk_err), not from its state.
fn is_socket_error(e: i32) -> bool {
    matches!(
        e,
        libc::ECONNRESET
            | libc::ETIMEDOUT
            | libc::ECONNREFUSED
            | libc::ECONNABORTED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::EPROTO
    )
}

/// Waits until `fd` may be ready for `interest` (or the deadline): parked when green,
/// else with a real poll (an owned socket must still behave as blocking there).
pub fn wait(
    green: Option<&Green>,
    fd: i32,
    interest: Interest,
    reason: Reason,
    deadline: Option<Instant>,
) -> Wake {
    if green.is_some() {
        return runtime::wait_fd(fd, interest, reason, deadline);
    }
    let timeout = deadline.map(time_left);
    // SAFETY: borrowed only for this poll.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::from_borrowed_fd(borrowed, poll_flags(interest))];
    match rustix::event::poll(&mut fds, timeout.as_ref()) {
        Ok(0) => Wake::TimedOut,
        _ => Wake::Ready,
    }
}

/// Sleeps until `until` (or a signal handler runs): parked when green, else a real
/// nanosleep.
pub fn sleep_until(green: Option<&Green>, until: Instant) -> Wake {
    if green.is_some() {
        return runtime::sleep_until(until);
    }
    let _ = rustix::thread::nanosleep(&time_left(until));
    Wake::TimedOut
}

/// One end of a transfer between fds (splice, tee, vmsplice): read from, or written to.
#[derive(Clone, Copy, Debug)]
pub struct End {
    pub fd: i32,
    pub interest: Interest,
}

/// splice, tee and vmsplice, as natively. Each end blocks by its own rule (measured): a
/// pipe unless the call asks SPLICE_F_NONBLOCK or the pipe is O_NONBLOCK, a socket unless
/// it is O_NONBLOCK (SPLICE_F_NONBLOCK does not reach sockets). `attempt` makes the call
/// with SPLICE_F_NONBLOCK added, so that no pipe blocks the thread, and greenify's own
/// O_NONBLOCK under owned sockets does the rest. On EAGAIN, an end that is not ready
/// decides: the answer stands if the program sees that end as non-blocking, else the
/// thread waits for it (a socket's SO_RCVTIMEO or SO_SNDTIMEO bounds that) and retries.
/// A socket greenify does not own, blocking underneath, is only called once it is ready.
pub fn transfer(
    green: Option<&Green>,
    ends: &[End],
    asked_nonblock: bool,
    mut attempt: impl FnMut() -> isize,
) -> isize {
    let start = Instant::now();
    loop {
        let unready_gated = ends.iter().find(|e| {
            facts(e.fd).is_some_and(|i| i.kind == Kind::Gated && i.is_socket)
                && !description_nonblocking(e.fd)
                && !ready_now(e.fd, e.interest)
        });
        let stuck = match unready_gated {
            Some(end) => *end,
            None => {
                let result = attempt();
                if result != -1 || !would_block(errno()) {
                    return result;
                }
                let Some(end) = ends.iter().find(|e| !ready_now(e.fd, e.interest)) else {
                    // Every end looks ready, yet the call would block: look again soon.
                    let soon = Instant::now() + std::time::Duration::from_millis(1);
                    if let Some(result) = after_wake(sleep_until(green, soon), None) {
                        return result;
                    }
                    continue;
                };
                if end_nonblocking(*end, asked_nonblock) {
                    return fail(libc::EAGAIN);
                }
                *end
            }
        };
        let info = facts(stuck.fd);
        let timeout = info
            .filter(|i| i.is_socket)
            .and_then(|i| match stuck.interest {
                Interest::Read => i.recv_timeout,
                Interest::Write => i.send_timeout,
            });
        let reason = match stuck.interest {
            Interest::Read => Reason::Read,
            Interest::Write => Reason::Write,
        };
        let wake = wait(
            green,
            stuck.fd,
            stuck.interest,
            reason,
            timeout.map(|t| start + t),
        );
        if let Some(result) = after_wake(wake, timeout) {
            return result;
        }
    }
}

/// Whether the program sees this end of a transfer as non-blocking (see [`transfer`]).
fn end_nonblocking(end: End, asked_nonblock: bool) -> bool {
    let Some(info) = facts(end.fd) else {
        return true;
    };
    if info.kind == Kind::Owned {
        return info.user_nonblock;
    }
    // SAFETY: borrowed for one fstat.
    let borrowed = unsafe { BorrowedFd::borrow_raw(end.fd) };
    let is_pipe = rustix::fs::fstat(borrowed)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo);
    (is_pipe && asked_nonblock) || description_nonblocking(end.fd)
}

/// A result made on another thread, with that thread's errno.
trait WithErrno {
    fn with_errno(self) -> isize;
}

impl WithErrno for (isize, i32) {
    fn with_errno(self) -> isize {
        if self.0 < 0 {
            super::set_errno(self.1);
        }
        self.0
    }
}

/// Whether the open file description behind `fd` is O_NONBLOCK now.
pub fn description_nonblocking(fd: i32) -> bool {
    // SAFETY: borrowed for one fcntl.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::fs::fcntl_getfl(borrowed).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
}

/// preadv2 gives EINVAL for files with a plain read method (inotify, timerfd...); pipes,
/// sockets, eventfds and epoll fds mean it (a bad argument). Only on that error path.
fn lacks_read_iter(fd: i32) -> bool {
    fd_link(fd, |target| {
        let is = |name: &[u8]| target.windows(name.len()).any(|w| w == name);
        !(target.starts_with(b"pipe:")
            || target.starts_with(b"socket:")
            || is(b"[eventfd")
            || is(b"[eventpoll]"))
    })
}

/// `test` of what /proc/self/fd/`fd` links to (false if it cannot be read).
fn fd_link(fd: i32, test: impl FnOnce(&[u8]) -> bool) -> bool {
    let path = format!("/proc/self/fd/{fd}\0");
    let mut link = [0u8; 64];
    // SAFETY: a NUL-terminated path; readlink writes at most 63 bytes into `link`.
    let len = unsafe { libc::readlink(path.as_ptr().cast(), link.as_mut_ptr().cast(), 63) };
    len > 0 && test(&link[..len as usize])
}

/// What the kernel answers before any wait for a call that a gated fd would make wait
/// forever (its readiness never comes): an fd not open for the direction (EBADF), a
/// timerfd read shorter than its 8-byte count or any timerfd write (EINVAL). Asked only
/// before a gated call first parks.
fn refused_at_once(op: Op) -> Option<i32> {
    // SAFETY: F_GETFL only reads the fd's flags.
    let mode = unsafe { crate::real::fcntl(op.fd, libc::F_GETFL, 0) } & libc::O_ACCMODE;
    let wrong_way = match op.interest {
        Interest::Read => mode == libc::O_WRONLY,
        Interest::Write => mode == libc::O_RDONLY,
    };
    if wrong_way {
        return Some(libc::EBADF);
    }
    let timerfd = fd_link(op.fd, |target| target.ends_with(b"[timerfd]"));
    let refused = match op.interest {
        Interest::Read => op.reason == Reason::Read && matches!(op.reads, Reads::Bytes(1..8)),
        Interest::Write => op.reason == Reason::Write,
    };
    (timerfd && refused).then_some(libc::EINVAL)
}

/// How to try an operation on an fd the program sees as blocking.
///
/// A socket's O_NONBLOCK belongs to its open file description, which a child process
/// can share and clear (greenify clears it for children that exec, see hooks/process/).
/// So even on sockets greenify made non-blocking, calls that take flags add
/// MSG_DONTWAIT, and calls that cannot (accept) wait for readiness first: a socket
/// whose description became blocking behind our back still never blocks the thread.
fn attempt_kind(info: &FdInfo, op: Op) -> Attempt {
    let socket_call = (op.has_flags && !op.has_nowait) || op.reason == Reason::Accept;
    match info.kind {
        // recv/send/accept on something that is not a socket: ENOTSOCK, at once.
        _ if socket_call && !info.is_socket => Attempt::Plain,
        _ if info.is_socket && op.has_flags => Attempt::DontWait,
        Kind::Owned if op.reason == Reason::Accept => Attempt::Gated,
        Kind::Owned => Attempt::Plain,
        _ if op.has_nowait => Attempt::NoWait,
        _ => Attempt::Gated,
    }
}

/// Outside a green thread: native behaviour, except that an owned socket (O_NONBLOCK
/// underneath) must still block where the program believes it blocking.
fn run_native(op: Op, mut attempt: impl FnMut(Attempt) -> isize) -> isize {
    let info = fdtable::get(op.fd);
    if info.kind != Kind::Owned || info.user_nonblock {
        return attempt(Attempt::Plain);
    }
    let timeout = match op.interest {
        Interest::Read => info.recv_timeout,
        Interest::Write => info.send_timeout,
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let result = attempt(Attempt::Plain);
        if result != -1 || !would_block(errno()) {
            return result;
        }
        let wait = deadline.map(time_left);
        if wait.is_some_and(|w| w.tv_sec == 0 && w.tv_nsec == 0) {
            return fail(libc::EAGAIN);
        }
        // SAFETY: borrowed only for this poll.
        let borrowed = unsafe { BorrowedFd::borrow_raw(op.fd) };
        let mut fds = [PollFd::from_borrowed_fd(borrowed, poll_flags(op.interest))];
        let _ = rustix::event::poll(&mut fds, wait.as_ref());
    }
}

/// A write-like operation of `total()` bytes: as natively on a blocking fd, it returns
/// only once everything is written (or on an error, or a timeout after partial progress).
/// `attempt(how, offset, cap)` writes what is left from `offset`, at most `cap` bytes.
/// `total` is asked only once a first attempt wrote something on a blocking fd: sendmsg
/// and writev need a safe copy of the program's iovecs for it (two system calls), which a
/// first attempt that sends everything, or one on a non-blocking fd, never needs.
pub fn write_all(
    green: Option<&Green>,
    op: Op,
    total: impl FnOnce() -> usize,
    mut attempt: impl FnMut(Attempt, usize, usize) -> isize,
) -> isize {
    if let Some(error) = fdtable::take_error(op.fd) {
        return fail(error);
    }
    let blocking = blocks(op.fd);
    let total = std::cell::LazyCell::new(total);
    let mut done = 0usize;
    loop {
        let result = run(green, op, |how| {
            let cap = if how == Attempt::Gated {
                libc::PIPE_BUF
            } else {
                usize::MAX
            };
            attempt(how, done, cap)
        });
        if result < 0 {
            if done == 0 {
                return result;
            }
            // Natively a TCP send returns short and the socket keeps its error for the
            // next call; our retry took it from the kernel, so keep it ourselves.
            if fdtable::get(op.fd).is_tcp && is_socket_error(errno()) {
                fdtable::keep_error(op.fd, errno());
            }
            return done as isize;
        }
        done += result as usize;
        if !blocking || result == 0 || done >= *total {
            return done as isize;
        }
    }
}
