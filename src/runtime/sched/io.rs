//! The scheduler's side of the reactor: opening the epoll instance and the doorbell on
//! first need, polling them, parking a thread on fds, and what the fd table tells it
//! (an fd closed, drained or poked).

use super::park::{park_if, Interrupts};
use super::{with, Scheduler};
use crate::runtime::interrupt;
use crate::runtime::reactor::{Interest, Reactor, RegisterError};
use crate::runtime::wait::{Reason, WaitKey, Wake};
use rustix::io::Errno;
use std::time::{Duration, Instant};

/// A new doorbell eventfd (above `fd_floor` or at `placeholder`'s number, our own) that
/// `reactor` watches.
fn new_doorbell(
    reactor: &mut Reactor,
    fd_floor: u32,
    placeholder: &mut Option<i32>,
) -> Result<i32, Errno> {
    use rustix::fd::{BorrowedFd, FromRawFd};
    let make = || {
        rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
    };
    let doorbell = crate::runtime::reactor::new_internal_fd(make, placeholder, fd_floor)?;
    // SAFETY: the fd just made, borrowed for one epoll_ctl.
    if let Err(e) = reactor.watch_doorbell(unsafe { BorrowedFd::borrow_raw(doorbell) }) {
        // SAFETY: the fd just made, given up.
        crate::runtime::reactor::close_raw(unsafe { rustix::fd::OwnedFd::from_raw_fd(doorbell) });
        return Err(e);
    }
    Ok(doorbell)
}

/// Runs `make` (which opens fds); if the soft fd limit stops it, runs it once more under
/// the hard limit and then puts the soft one back (fds above a soft limit stay usable).
/// A program that used every fd up to its soft limit still gets greenify's fds when it
/// first waits.
fn under_hard_fd_limit<T>(mut make: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    match make() {
        Err(Errno::MFILE) => {}
        other => return other,
    }
    let soft = getrlimit(Resource::Nofile);
    if soft.current == soft.maximum {
        return Err(Errno::MFILE);
    }
    let hard = Rlimit {
        current: soft.maximum,
        maximum: soft.maximum,
    };
    setrlimit(Resource::Nofile, hard)?;
    let result = make();
    let _ = setrlimit(Resource::Nofile, soft);
    result
}

/// Opens the calling thread's reactor now, if it is not yet (see
/// [`Scheduler::open_reactor`]), before another thread of ours can run: its fds are made
/// at the lowest free number and then moved up, a moment in which another thread's call
/// on that number (a helper's fsync of a closed fd) would reach our fd.
pub fn open_reactor() {
    with(|s| s.open_reactor())
}

/// Waits until `fd` may be ready for `interest`, the deadline passes, or it is closed.
/// Files epoll cannot watch (regular files) are always ready.
pub fn wait_fd(fd: i32, interest: Interest, reason: Reason, deadline: Option<Instant>) -> Wake {
    wait_fds(&[(fd, interest)], reason, deadline)
}

/// Waits until any of `fds` may be ready (see [`wait_fd`]).
pub fn wait_fds(fds: &[(i32, Interest)], reason: Reason, deadline: Option<Instant>) -> Wake {
    wait_fds_if(fds, reason, deadline, |_| true).unwrap_or(Wake::Ready)
}

/// Waits as [`wait_fd`] for `fd` to be readable, only if a read now would find nothing
/// (see [`set_drained`]): the look and the park are one section (with several workers,
/// a section of its own for the look cost a lock round trip per read). None: not
/// drained, nothing waited: read it.
pub fn wait_read_if_drained(fd: i32, reason: Reason, deadline: Option<Instant>) -> Option<Wake> {
    wait_fds_if(&[(fd, Interest::Read)], reason, deadline, |s| {
        s.reactor.is_drained(fd)
    })
}

/// Waits as [`wait_fds`] if `needed`, asked in the section that parks, says so (None
/// if not). Registers and parks in one section: with several workers, another may apply
/// the fd's event between the two.
pub(super) fn wait_fds_if(
    fds: &[(i32, Interest)],
    reason: Reason,
    deadline: Option<Instant>,
    needed: impl FnOnce(&mut Scheduler) -> bool,
) -> Option<Wake> {
    let mut refused = None;
    let parked = park_if(reason, deadline, Interrupts::Signals, |s| {
        if !needed(s) {
            return false;
        }
        if !fds.is_empty() {
            s.open_reactor();
        }
        let me = s.current();
        let key = s.key(me);
        for &(fd, interest) in fds {
            let threads = &s.threads;
            let result = s
                .reactor
                .add_waiter(fd, interest, key, |k| Scheduler::is_waiting(threads, k));
            refused = Some(match result {
                Ok(()) => continue,
                // Always ready, not an fd at all, or ready meanwhile: the caller's next
                // attempt tells.
                Err(RegisterError::NotPollable | RegisterError::ReadyMeanwhile) => Wake::Ready,
                Err(RegisterError::Os(_)) => Wake::Closed,
            });
            // Void the registrations made so far.
            let alone = s.alone();
            s.threads[me as usize].word.voided(alone);
            return false;
        }
        true
    });
    parked.or(refused)
}

/// The program closed `fd` (or reused its number): wake its waiters, drop its registration.
pub fn fd_closed(fd: i32) {
    with(|s| {
        let mut woken = std::mem::take(&mut s.woken);
        s.reactor.forget(fd, &mut woken);
        for key in woken.drain(..) {
            s.ready(key, Wake::Closed);
        }
        s.woken = woken;
    })
}

/// `fd` goes away by `close` (a close, or a dup onto it): its registrations are dropped
/// first, and the threads that waited on it are woken once `close` returned. Woken before,
/// one on another worker could look while the fd is still open, find nothing and wait on
/// it again, a wait the close then drops unseen.
pub fn fd_closed_by<R>(fd: i32, close: impl FnOnce() -> R) -> R {
    let mut woken = Vec::new();
    with(|s| s.reactor.forget(fd, &mut woken));
    let result = close();
    if !woken.is_empty() {
        with(|s| {
            for key in woken {
                s.ready(key, Wake::Closed);
            }
        });
    }
    result
}

/// A stream read of `fd` came back short: skip reads until it is readable again.
pub fn set_drained(fd: i32) {
    with(|s| s.reactor.set_drained(fd))
}

/// Wakes every thread waiting on `fd` to look again (it stays registered).
pub fn fd_poke(fd: i32) {
    with(|s| {
        let mut woken = std::mem::take(&mut s.woken);
        s.reactor.poke(fd, &mut woken);
        for key in woken.drain(..) {
            s.ready(key, Wake::Ready);
        }
        s.woken = woken;
    })
}

impl Scheduler {
    pub(super) fn poll_io(&mut self, timeout: Option<Duration>) {
        if timeout == Some(Duration::ZERO) && !self.poller.is_null() {
            // An idle worker waits in epoll for everyone: it sees ready fds and due
            // timers at once, and a look here would take the doorbell it was rung with.
            // A signal this worker's running threads keep blocked is still this worker's
            // to release (the poller blocks every signal): a SIGTERM blocked by a thread
            // that yields for ever must kill as natively.
            self.w().dispatches_since_poll = 0;
            self.release_stuck_signals();
            return;
        }
        let (timeout, rung) = self.poll_prepare(timeout);
        self.poll_prepared(timeout, rung);
    }

    /// Before a look at epoll for up to `timeout`: the timeout to use, and whether the
    /// doorbell rang already.
    pub(super) fn poll_prepare(&mut self, timeout: Option<Duration>) -> (Option<Duration>, bool) {
        self.stats.epoll_waits += 1;
        // Before an idle wait: the threads that just parked did so now, not after it.
        self.stamp_parks();
        if timeout != Some(Duration::ZERO) {
            self.open_reactor();
        } else {
            // Before the doorbell is read: a handler this releases posts to it.
            self.release_stuck_signals();
        }
        // Posted before the doorbell existed, or since the last look: look, do not sleep.
        let rung = self.mailbox.rung();
        (if rung { Some(Duration::ZERO) } else { timeout }, rung)
    }

    /// The look itself, and what it found (see [`Scheduler::poll_prepare`]).
    pub(super) fn poll_prepared(&mut self, timeout: Option<Duration>, rung: bool) {
        let mut woken = std::mem::take(&mut self.woken);
        let doorbell = self.reactor.poll(timeout, &mut woken) || rung;
        self.poll_finish(doorbell, woken);
    }

    /// Wakes the threads whose fds were found ready (`woken`), answers the doorbell if it
    /// rang, expires the due timers.
    pub(super) fn poll_finish(&mut self, doorbell: bool, mut woken: Vec<WaitKey>) {
        for key in woken.drain(..) {
            self.ready(key, Wake::Ready);
        }
        if doorbell {
            self.answer_doorbell();
            interrupt::take(|i| self.interrupt(i));
        }
        // No timer armed (a pipe's ping-pong): no clock read.
        if !self.timers.is_empty() {
            self.timers.expire(Instant::now(), |key| woken.push(key));
        }
        let next = self.timers.next_deadline();
        self.w().watch.timers_expired(next);
        for key in woken.drain(..) {
            self.ready(key, Wake::TimedOut);
        }
        self.woken = woken;
        self.w().dispatches_since_poll = 0;
        let threads = &self.threads;
        self.timers
            .compact(self.timed_waits, |k| Scheduler::is_waiting(threads, k));
    }

    /// Makes the epoll instance and the doorbell on first need: the first wait on an fd,
    /// or the first sleep in the kernel (a wake from another thread or a signal must be
    /// able to end it). Where no fd can be had, even under the hard limit, the reactor
    /// degrades to polling (one warning): every call still behaves as natively.
    /// Inline, the opening out of line: every park on an fd and every look at epoll asks
    /// (a call cost ~30 instructions).
    #[inline]
    pub(super) fn open_reactor(&mut self) {
        if self.reactor.is_unopened() {
            self.open_reactor_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn open_reactor_now(&mut self) {
        let fd_floor = self.fd_floor;
        let reactor = &mut self.reactor;
        let mut placeholder = (self.doorbell >= 0).then_some(self.doorbell);
        let opened = under_hard_fd_limit(|| {
            reactor.open(fd_floor)?;
            new_doorbell(reactor, fd_floor, &mut placeholder)
        });
        if let Some(held) = placeholder {
            // SAFETY: the parent's doorbell, ours to close; not used again.
            crate::runtime::reactor::close_raw(unsafe { rustix::fd::FromRawFd::from_raw_fd(held) });
        }
        self.doorbell = -1;
        match opened {
            Ok(doorbell) => {
                self.doorbell = doorbell;
                self.mailbox.set_doorbell(doorbell);
            }
            Err(e) => {
                ::log::warn!(
                    "cannot make an epoll instance and an eventfd ({e}): waits use poll(2), \
                     and wakes from other threads may take {} ms",
                    crate::runtime::reactor::DEGRADED_TICK.as_millis()
                );
                self.reactor.degrade();
            }
        }
    }
}
