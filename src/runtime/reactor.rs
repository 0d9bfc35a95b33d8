//! The epoll reactor: which parked threads wait for which fd.
//!
//! Each fd is registered once, edge-triggered, for every direction, the first time a
//! thread waits on it, and stays registered until the program closes it ([`Reactor::forget`]).
//! Edge-triggered is enough on one scheduler: a waiter parks only after its own call
//! returned EAGAIN (or a zero-timeout poll said "not ready"), so any readiness that
//! arrives later is a new edge and is reported by the next `epoll_wait`.
//!
//! The epoll token carries the fd and a generation; the generation changes whenever the
//! fd number is closed or reused, so events for an old description are dropped.
//!
//! The reactor only hands back the keys of waiters to wake; the scheduler decides.
//!
//! The epoll instance is made on first need ([`Reactor::open`]: the scheduler's first wait
//! on an fd or first sleep in the kernel), so a program that never waits has no fd of
//! ours. Where it cannot be made (every fd number taken), the reactor is *degraded*: the
//! same waiters, watched with a level-triggered poll(2) of their fds at each look.

use super::wait::WaitKey;
use rustix::event::epoll;
use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::Errno;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Interest {
    Read,
    Write,
}

/// Why a waiter could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// epoll refuses this kind of file (regular files, some devices): always ready.
    NotPollable,
    /// The fd is not open (or another kernel error).
    Os(Errno),
    /// An event came for this direction while nobody waited (see
    /// [`Reactor::track_missed`]): look again before waiting.
    ReadyMeanwhile,
}

#[derive(Default)]
struct FdSlot {
    registered: bool,
    /// A stream read came back short (its queue was empty) and no readable event came
    /// since: a read now would only say EAGAIN.
    drained: bool,
    /// The peer shut down (or an error came): a read returns at once from now on (EOF
    /// or the error) and no further event will say so, so never skip it.
    ended: bool,
    /// Urgent (out-of-band) data came: a TCP read stops short at its mark with data
    /// still queued, so short reads no longer mean "drained" for this fd.
    urgent: bool,
    generation: u32,
    readers: Vec<WaitKey>,
    writers: Vec<WaitKey>,
    /// An event came for reading (writing) while no thread waited for it (tracked only
    /// with several workers, see [`Reactor::track_missed`]).
    missed_read: bool,
    missed_write: bool,
}

/// Per-fd state by fd number. greenify's own fds sit in a reserved range (see
/// [`internal_fd_floor`]): they live in a short list, so that watching one does not grow
/// the table to the range's numbers.
struct Slots {
    low: Vec<FdSlot>,
    high: Vec<(i32, FdSlot)>,
    /// The reserved range (the program's fds may be there too, and above it).
    reserved: std::ops::Range<i32>,
}

impl Slots {
    fn get(&self, fd: i32) -> Option<&FdSlot> {
        if self.reserved.contains(&fd) {
            return self.high.iter().find(|(f, _)| *f == fd).map(|(_, s)| s);
        }
        self.low.get(usize::try_from(fd).ok()?)
    }

    fn get_mut(&mut self, fd: i32) -> Option<&mut FdSlot> {
        if self.reserved.contains(&fd) {
            return self.high.iter_mut().find(|(f, _)| *f == fd).map(|(_, s)| s);
        }
        self.low.get_mut(usize::try_from(fd).ok()?)
    }

    /// `fd` must be >= 0. Inline up to a slot that exists: every park on an fd asks.
    #[inline]
    fn get_or_insert(&mut self, fd: i32) -> &mut FdSlot {
        let i = fd as usize;
        if i < self.low.len() && !self.reserved.contains(&fd) {
            return &mut self.low[i];
        }
        self.insert(fd)
    }

    /// [`Slots::get_or_insert`] of a slot that may not exist yet.
    #[inline(never)]
    fn insert(&mut self, fd: i32) -> &mut FdSlot {
        if self.reserved.contains(&fd) {
            let i = match self.high.iter().position(|(f, _)| *f == fd) {
                Some(i) => i,
                None => {
                    self.high.push((fd, FdSlot::default()));
                    self.high.len() - 1
                }
            };
            return &mut self.high[i].1;
        }
        let i = fd as usize;
        if i >= self.low.len() {
            self.low.resize_with(i + 1, FdSlot::default);
        }
        &mut self.low[i]
    }
}

/// How readiness is watched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    /// Nothing yet: no waiter has needed the kernel.
    Unopened,
    /// Nothing yet, in a forked child: this fd is the parent's epoll instance, kept open
    /// only to hold its number (the child's fds number as the parent's did); the child's
    /// own instance takes that number when it is made.
    Inherited(i32),
    /// This epoll fd (owned; raw so that a forked child can close the parent's).
    Epoll(i32),
    /// No epoll instance could be made: poll(2) on the waiters' fds.
    Degraded,
}

pub struct Reactor {
    backend: Backend,
    fds: Slots,
    events: Vec<libc::epoll_event>,
    /// See [`Reactor::track_missed`].
    tracks_missed: bool,
    /// Fds registered in the epoll instance: none, and a look without waiting can only
    /// find the doorbell, whose ring the mailbox's flag says without a system call.
    registered: usize,
}

/// The longest a degraded reactor sleeps: it has no doorbell, so wakes posted from other
/// threads are seen at its next look.
pub const DEGRADED_TICK: Duration = Duration::from_millis(10);

const EVENT_BATCH: usize = 1024;
/// The epoll token of the doorbell eventfd (no fd token can be all ones: fds are >= 0).
const DOORBELL_TOKEN: u64 = u64::MAX;
/// Stale waiter entries tolerated per fd before they are pruned on the next push.
const PRUNE_AT: usize = 64;

impl Reactor {
    /// Every registered waiter: its fd, key and whether it waits to write (for a thread
    /// dump; stale keys are included, the caller matches them with live waits).
    pub fn each_waiter(&self, mut each: impl FnMut(i32, WaitKey, bool)) {
        let low = self
            .fds
            .low
            .iter()
            .enumerate()
            .map(|(fd, s)| (fd as i32, s));
        let high = self.fds.high.iter().map(|(fd, s)| (*fd, s));
        for (fd, slot) in low.chain(high) {
            slot.readers.iter().for_each(|&key| each(fd, key, false));
            slot.writers.iter().for_each(|&key| each(fd, key, true));
        }
    }

    /// A reactor with no epoll instance yet (see [`Reactor::open`]).
    pub fn new(fd_floor: u32) -> Reactor {
        Reactor {
            backend: Backend::Unopened,
            fds: Slots {
                low: Vec::new(),
                high: Vec::new(),
                reserved: {
                    let floor = i32::try_from(fd_floor).unwrap_or(i32::MAX);
                    floor..floor.saturating_add(RESERVED_FDS as i32)
                },
            },
            events: Vec::new(),
            tracks_missed: false,
            registered: 0,
        }
    }

    /// From now on, an event that finds no waiter for its direction is kept for the next
    /// one. With several workers, one may look at epoll between another's attempt (which
    /// found the fd not ready) and its wait, and take the edge that the wait needed; with
    /// one, nothing looks there in between.
    pub fn track_missed(&mut self) {
        self.tracks_missed = true;
    }

    /// Whether no epoll instance was made yet (nor given up on).
    #[inline]
    pub fn is_unopened(&self) -> bool {
        matches!(self.backend, Backend::Unopened | Backend::Inherited(_))
    }

    /// Makes the epoll instance, at `fd_floor` or above (programs rely on lowest-free-fd
    /// numbering for their own fds), or at the number the parent's held. Does nothing if
    /// it exists.
    pub fn open(&mut self, fd_floor: u32) -> Result<(), Errno> {
        let mut placeholder = match self.backend {
            Backend::Epoll(_) => return Ok(()),
            Backend::Inherited(fd) => Some(fd),
            Backend::Unopened | Backend::Degraded => None,
        };
        let made = new_internal_fd(
            || epoll::create(epoll::CreateFlags::CLOEXEC),
            &mut placeholder,
            fd_floor,
        );
        self.backend = match (made, placeholder) {
            (Ok(fd), _) => Backend::Epoll(fd),
            (Err(e), held) => {
                self.backend = held.map_or(Backend::Unopened, Backend::Inherited);
                return Err(e);
            }
        };
        self.events = Vec::with_capacity(EVENT_BATCH);
        Ok(())
    }

    /// No epoll instance can be had: watch the waiters with poll(2) from now on.
    pub fn degrade(&mut self) {
        self.close();
        self.backend = Backend::Degraded;
    }

    /// In a forked child: the epoll instance is the parent's (shared across fork) and every
    /// registration in it too. Forgets every registration and keeps the parent's instance
    /// only as a placeholder; the child makes its own when it first needs one (a child
    /// that only execs never does, and exec closes the placeholder).
    pub fn after_fork(&mut self) {
        self.backend = match self.backend {
            Backend::Epoll(fd) | Backend::Inherited(fd) => Backend::Inherited(fd),
            Backend::Unopened | Backend::Degraded => Backend::Unopened,
        };
        self.fds.low.clear();
        self.fds.high.clear();
        self.registered = 0;
    }

    fn close(&mut self) {
        if let Backend::Epoll(fd) | Backend::Inherited(fd) = self.backend {
            // SAFETY: our own fd, closed once (the backend changes right after).
            close_raw(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        self.backend = Backend::Unopened;
    }

    /// The epoll fd, if there is one.
    fn epoll(&self) -> Option<BorrowedFd<'static>> {
        match self.backend {
            // SAFETY: the reactor owns its epoll fd until `close`, which never runs while
            // a borrow made here is in use (each is used for one call).
            Backend::Epoll(fd) => Some(unsafe { BorrowedFd::borrow_raw(fd) }),
            _ => None,
        }
    }

    /// Watches `fd` (an eventfd): [`Reactor::poll`] reports when it becomes readable.
    /// Needs the epoll instance ([`Reactor::open`]).
    pub fn watch_doorbell(&mut self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        let data = epoll::EventData::new_u64(DOORBELL_TOKEN);
        let epoll = self.epoll().ok_or(Errno::BADF)?;
        epoll::add(
            epoll,
            fd,
            data,
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )
    }

    /// Adds a waiter for `fd` in direction `interest`; registers the fd on first use.
    pub fn add_waiter(
        &mut self,
        fd: i32,
        interest: Interest,
        key: WaitKey,
        is_live: impl Fn(WaitKey) -> bool,
    ) -> Result<(), RegisterError> {
        if fd < 0 {
            return Err(RegisterError::Os(Errno::BADF));
        }
        debug_assert!(
            !self.is_unopened(),
            "a waiter before the reactor was opened"
        );
        let epoll = self.epoll();
        let slot = self.fds.get_or_insert(fd);
        // Degraded: no registration, the next look polls the fd.
        if let (Some(epoll), false) = (epoll, slot.registered) {
            // SAFETY: the caller says `fd` is an open descriptor of the program; we only
            // borrow it for the duration of epoll_ctl.
            let target = unsafe { BorrowedFd::borrow_raw(fd) };
            let data = epoll::EventData::new_u64(token(fd, slot.generation));
            let flags = epoll::EventFlags::IN
                | epoll::EventFlags::OUT
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::PRI
                | epoll::EventFlags::ET;
            match epoll::add(epoll, target, data, flags) {
                Ok(()) => {}
                // Registered before under this number (closed behind our back and reused,
                // or dup'ed): take it over with our current token.
                Err(Errno::EXIST) => {
                    epoll::modify(epoll, target, data, flags).map_err(RegisterError::Os)?
                }
                Err(Errno::PERM) => return Err(RegisterError::NotPollable),
                Err(e) => return Err(RegisterError::Os(e)),
            }
            slot.registered = true;
            self.registered += 1;
        }
        let missed = match interest {
            Interest::Read => std::mem::take(&mut slot.missed_read),
            Interest::Write => std::mem::take(&mut slot.missed_write),
        };
        if missed {
            slot.drained = false;
            return Err(RegisterError::ReadyMeanwhile);
        }
        let list = match interest {
            Interest::Read => &mut slot.readers,
            Interest::Write => &mut slot.writers,
        };
        if list.len() >= PRUNE_AT {
            list.retain(|k| is_live(*k));
        }
        list.push(key);
        Ok(())
    }

    /// Something happened on `fd` that epoll may not report: hand back its waiters.
    pub fn poke(&mut self, fd: i32, woken: &mut Vec<WaitKey>) {
        if let Some(slot) = self.fds.get_mut(fd) {
            slot.drained = false;
            slot.ended = true;
            woken.append(&mut slot.readers);
            woken.append(&mut slot.writers);
        }
    }

    /// The program closed (or is about to close) `fd`: drop the registration and return
    /// every waiter so the scheduler can wake them.
    pub fn forget(&mut self, fd: i32, woken: &mut Vec<WaitKey>) {
        let Some(slot) = self.fds.get_mut(fd) else {
            return;
        };
        if let (true, Backend::Epoll(epoll)) = (slot.registered, self.backend) {
            // SAFETY: as in `epoll` (the borrow of `self.fds` forbids calling it).
            let epoll = unsafe { BorrowedFd::borrow_raw(epoll) };
            // SAFETY: `fd` is still open (we run before the real close) or already closed,
            // in which case the kernel answers EBADF/ENOENT and nothing happens.
            let _ = epoll::delete(epoll, unsafe { BorrowedFd::borrow_raw(fd) });
            slot.registered = false;
            self.registered -= 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.drained = false;
        slot.ended = false;
        slot.urgent = false;
        slot.missed_read = false;
        slot.missed_write = false;
        woken.append(&mut slot.readers);
        woken.append(&mut slot.writers);
    }

    /// A read of `fd` came back short: until epoll reports it readable again, reads
    /// would find nothing (only for registered fds: their next data is an edge).
    pub fn set_drained(&mut self, fd: i32) {
        if let Some(slot) = self.fds.get_mut(fd) {
            slot.drained = slot.registered && !slot.ended && !slot.urgent && !slot.missed_read;
        }
    }

    pub fn is_drained(&self, fd: i32) -> bool {
        self.fds.get(fd).is_some_and(|s| s.drained)
    }

    /// Waits up to `timeout` (None: forever) and appends the keys of the waiters whose fd
    /// became ready to `woken`. Returns whether the doorbell rang.
    /// Never blocks while unopened (the scheduler opens it before it would).
    /// A look without waiting while no fd is registered makes no system call: the caller
    /// reads the doorbell's flag itself (`Mailbox::rung`), and a ring it answers drains
    /// the eventfd too. With several workers the run loop's fairness look (every 61
    /// dispatches) was an epoll_pwait2 under the scheduler's lock, for nothing, in a
    /// program whose threads wait on no fd.
    pub fn poll(&mut self, timeout: Option<Duration>, woken: &mut Vec<WaitKey>) -> bool {
        if timeout == Some(Duration::ZERO)
            && self.registered == 0
            && self.backend != Backend::Degraded
        {
            return false;
        }
        let Some(mut wait) = self.wait_apart() else {
            if self.backend == Backend::Degraded {
                self.poll_degraded(timeout, woken);
            }
            return false;
        };
        wait.wait(timeout);
        self.apply(wait, woken)
    }

    /// The epoll instance and the event buffer, for a wait made apart from the reactor
    /// (by a worker that lets the others use the scheduler meanwhile); None while it has
    /// no epoll instance. The buffer comes back with [`Reactor::apply`].
    pub fn wait_apart(&mut self) -> Option<EpollWait> {
        let Backend::Epoll(epoll) = self.backend else {
            return None;
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        events.reserve(EVENT_BATCH);
        Some(EpollWait { epoll, events })
    }

    /// Appends the keys of the waiters whose fd `wait` found ready to `woken` (an event
    /// for an fd closed or reused meanwhile is dropped by its generation); returns
    /// whether the doorbell rang.
    pub fn apply(&mut self, wait: EpollWait, woken: &mut Vec<WaitKey>) -> bool {
        self.events = wait.events;
        let tracks_missed = self.tracks_missed;
        let mut doorbell = false;
        for event in &self.events {
            if event.u64 == DOORBELL_TOKEN {
                doorbell = true;
                continue;
            }
            let (fd, generation) = untoken(event.u64);
            let flags = event.events as i32;
            let Some(slot) = self.fds.get_mut(fd) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            let hangup = flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            if hangup || flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0 {
                slot.drained = false;
                slot.missed_read = tracks_missed && slot.readers.is_empty();
                woken.append(&mut slot.readers);
            }
            if hangup || flags & libc::EPOLLRDHUP != 0 {
                slot.ended = true;
            }
            if flags & libc::EPOLLPRI != 0 {
                slot.urgent = true;
            }
            if hangup || flags & libc::EPOLLOUT != 0 {
                slot.missed_write = tracks_missed && slot.writers.is_empty();
                woken.append(&mut slot.writers);
            }
        }
        doorbell
    }

    /// The degraded look: one poll(2) of every fd with waiters, for at most
    /// [`DEGRADED_TICK`]; wakes the waiters of each fd that is ready.
    fn poll_degraded(&mut self, timeout: Option<Duration>, woken: &mut Vec<WaitKey>) {
        let waited = |s: &FdSlot| !s.readers.is_empty() || !s.writers.is_empty();
        let fds = (0..)
            .zip(&self.fds.low)
            .chain(self.fds.high.iter().map(|(f, s)| (*f, s)));
        let mut polled: Vec<libc::pollfd> = fds
            .filter(|(_, s)| waited(s))
            .map(|(fd, s)| libc::pollfd {
                fd,
                events: (if s.readers.is_empty() {
                    0
                } else {
                    libc::POLLIN | libc::POLLPRI
                }) | (if s.writers.is_empty() {
                    0
                } else {
                    libc::POLLOUT
                }),
                revents: 0,
            })
            .collect();
        let wait = timeout.map_or(DEGRADED_TICK, |t| t.min(DEGRADED_TICK));
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: wait.as_nanos() as libc::c_long,
        };
        // SAFETY: `polled` holds `len` pollfds and `ts` lives across the call; no signal
        // mask is passed. The raw system call: libc's ppoll is greenify's own hook.
        let n = unsafe {
            super::raw::syscall(
                libc::SYS_ppoll,
                &[
                    polled.as_mut_ptr() as usize,
                    polled.len(),
                    &ts as *const libc::timespec as usize,
                    0,
                    8,
                ],
            )
        };
        if n <= 0 {
            return;
        }
        for p in &polled {
            let Some(slot) = self.fds.get_mut(p.fd) else {
                continue;
            };
            let failed = p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
            if failed || p.revents & (libc::POLLIN | libc::POLLPRI) != 0 {
                woken.append(&mut slot.readers);
            }
            if failed || p.revents & libc::POLLOUT != 0 {
                woken.append(&mut slot.writers);
            }
        }
    }
}

/// A wait on the reactor's epoll instance, made apart from it (see
/// [`Reactor::wait_apart`]).
pub struct EpollWait {
    epoll: i32,
    events: Vec<libc::epoll_event>,
}

impl EpollWait {
    /// Waits up to `timeout` (None: forever) for events.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        self.events.clear();
        let n = precise_wait(
            self.epoll,
            &mut self.events.spare_capacity_mut()[..EVENT_BATCH],
            timeout,
        );
        // SAFETY: the kernel initialised the first `n` events of the spare capacity.
        unsafe { self.events.set_len(n) };
    }
}

/// epoll_pwait2 (nanosecond timeouts, Linux >= 5.11), falling back to epoll_pwait with the
/// timeout rounded up to whole milliseconds on older kernels. Returns the number of events
/// (0 on EINTR or any error: the caller re-evaluates its timers and loops).
/// Leaves errno as it found it.
fn precise_wait(
    epfd: i32,
    events: &mut [std::mem::MaybeUninit<libc::epoll_event>],
    timeout: Option<Duration>,
) -> usize {
    static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
    let buf = events.as_mut_ptr() as usize;
    let len = events.len();
    let mut result = -1;
    if !NO_PWAIT2.load(Ordering::Relaxed) {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `buf` has room for `len` events; the timespec lives across the call; no
        // signal mask is passed.
        result = unsafe {
            super::raw::syscall(
                libc::SYS_epoll_pwait2,
                &[epfd as usize, buf, len, ts_ptr as usize, 0, 8],
            )
        };
        if result == -(libc::ENOSYS as isize) {
            NO_PWAIT2.store(true, Ordering::Relaxed);
        }
    }
    if NO_PWAIT2.load(Ordering::Relaxed) {
        let ms = timeout.map_or(-1, |d| {
            d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // SAFETY: as above, with a millisecond timeout.
        result = unsafe {
            super::raw::syscall(
                libc::SYS_epoll_pwait,
                &[epfd as usize, buf, len, ms as usize, 0, 8],
            )
        };
    }
    result.max(0) as usize
}

fn token(fd: i32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | fd as u32 as u64
}

fn untoken(data: u64) -> (i32, u32) {
    (data as u32 as i32, (data >> 32) as u32)
}

/// greenify's own fds (epoll instances, doorbells, the pidfds of a wait): the program
/// must not be able to close them (daemons close "all" fds), see hooks::io::close.
static INTERNAL: [std::sync::atomic::AtomicI32; 32] =
    [const { std::sync::atomic::AtomicI32::new(-1) }; 32];

/// The lowest fd ever marked internal: most fds are below it, and the hooks ask about
/// every fd they see (see [`is_internal`]).
static LOWEST_INTERNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(i32::MAX);

/// Records `fd` as greenify's own; false if every slot is taken.
fn mark_internal(fd: i32) -> bool {
    LOWEST_INTERNAL.fetch_min(fd, Ordering::SeqCst);
    INTERNAL.iter().any(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// `fd` is no longer greenify's own.
fn unmark_internal(fd: i32) {
    for slot in &INTERNAL {
        let _ = slot.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Whether `fd` is one of greenify's own. Inline up to the scan of the slots: every read
/// and write asks, nearly always about an fd below them all.
#[inline]
pub fn is_internal(fd: i32) -> bool {
    fd >= 0 && fd >= LOWEST_INTERNAL.load(Ordering::Relaxed) && among_internal(fd)
}

#[inline(never)]
fn among_internal(fd: i32) -> bool {
    INTERNAL
        .iter()
        .any(|slot| slot.load(Ordering::Relaxed) == fd)
}

/// Whether a hook answers for `fd` as for a closed number: it is greenify's own, or it is
/// in greenify's range and closed. There the answer is taken where no fd of greenify's is
/// placed meanwhile: a number found free would otherwise be greenify's new fd (another
/// worker opening its epoll instance) by the time the hook's own call reached it. A
/// number the program holds in the range stays the program's until it closes it.
///
/// Inline, with the look made while another OS thread may place an fd out of line: every
/// read and write asks (a pipe round trip with one worker: 4110 -> 4069 instructions).
#[inline]
pub fn hidden(fd: i32) -> bool {
    let low = RANGE_LOW.load(Ordering::SeqCst);
    let outside = fd < 0 || (fd as u32) < low || (fd as u32) - low >= RESERVED_FDS;
    if outside || !MAY_RACE.load(Ordering::SeqCst) {
        return is_internal(fd);
    }
    hidden_while_placements_race(fd)
}

#[inline(never)]
fn hidden_while_placements_race(fd: i32) -> bool {
    let _placing = Placing::hold();
    // SAFETY: borrowed for one fcntl; a closed number just fails it.
    is_internal(fd) || rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) }).is_err()
}

/// Another OS thread of greenify's may place an fd while a hook runs: until then (one
/// worker) [`hidden`] needs no hold nor system call (the program's fds in greenify's
/// range, a server's connections past 960, paid two system calls at every read and write).
static MAY_RACE: AtomicBool = AtomicBool::new(false);

/// A second OS thread that runs greenify's sections is about to start (a worker or a
/// spare).
pub fn placements_may_race() {
    MAY_RACE.store(true, Ordering::SeqCst);
}

/// greenify's own fds, sorted.
pub fn internal_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = INTERNAL
        .iter()
        .map(|slot| slot.load(Ordering::Relaxed))
        .filter(|&fd| fd >= 0)
        .collect();
    fds.sort_unstable();
    fds
}

/// The lowest [`internal_fd_floor`] ever computed. The scheduler computes it before a
/// second OS thread runs the program's code, so every hook that may race with a
/// placement sees it.
static RANGE_LOW: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// Where greenify's own fds go: the [`RESERVED_FDS`] numbers below 1024 (or below the soft
/// RLIMIT_NOFILE, if lower), out of the way of the program's lowest-free numbering.
/// Not just below a higher limit: the kernel's fd table grows to the highest open fd and
/// every fork copies it (at 20,000 a fork took 170 µs longer; under a container's
/// 1,048,576 the table would be 8 MiB per process).
pub fn internal_fd_floor() -> u32 {
    const CEILING: u64 = 1024;
    let floor = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(CEILING, |soft| soft.min(CEILING))
        .saturating_sub(u64::from(RESERVED_FDS))
        .max(3) as u32;
    RANGE_LOW.fetch_min(floor, Ordering::SeqCst);
    floor
}

/// How many fd numbers from [`internal_fd_floor`] up are greenify's range.
pub const RESERVED_FDS: u32 = 64;

/// Held while greenify places an fd of its own (marks a free number, then dups onto it),
/// and while a hook closes or replaces program fds in greenify's range: otherwise a
/// number the hook found free, so not greenify's, could be greenify's new fd by the time
/// the kernel closes it (with several workers, a worker opens its epoll instance while
/// the program runs on another). The holder's pid, 0 when free: a forked child takes
/// over a hold its parent's other threads had (they do not exist there).
static PLACING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// A hold on [`PLACING`], released on drop.
struct Placing;

impl Placing {
    fn hold() -> Placing {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut spins = 0u32;
        loop {
            match PLACING.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Placing,
                Err(holder) if holder != 0 && holder != me => {
                    // Held in the parent when it forked: stale here.
                    if PLACING
                        .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Placing;
                    }
                }
                Err(_) => {}
            }
            // Holders make one or two short system calls: spin, then let them run.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield takes no arguments (raw: libc's is hooked).
                unsafe { super::raw::syscall(libc::SYS_sched_yield, &[]) };
            }
        }
    }
}

impl Drop for Placing {
    fn drop(&mut self) {
        PLACING.store(0, Ordering::Release);
    }
}

/// Runs `f`, a hook's close (or replacement) of the program's fd numbers `first..=last`,
/// so that no fd of greenify's is placed in that range meanwhile; `f` checks
/// [`is_internal`] itself. Ranges clear of greenify's range run as they are.
pub fn excluding_placement<R>(first: u32, last: u32, f: impl FnOnce() -> R) -> R {
    let low = RANGE_LOW.load(Ordering::SeqCst);
    let _placing = (last >= low && first < low.saturating_add(RESERVED_FDS)).then(Placing::hold);
    f()
}

/// A CLOEXEC duplicate of `fd` at the lowest free number at or above `floor`, greenify's
/// own: the number is marked before the duplicate exists, so no hook sees it open and
/// unmarked. None if every slot is taken or no number is free.
pub fn dup_internal(fd: BorrowedFd<'_>, floor: u32) -> Option<OwnedFd> {
    let _placing = Placing::hold();
    let mut n = i32::try_from(floor).ok()?;
    loop {
        // SAFETY: borrowed for one fcntl; a closed number just fails it.
        let open = rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(n) }).is_ok();
        if open || is_internal(n) {
            n = n.checked_add(1)?;
            continue;
        }
        if !mark_internal(n) {
            return None;
        }
        match rustix::io::fcntl_dupfd_cloexec(fd, n) {
            Ok(dup) if dup.as_raw_fd() == n => return Some(dup),
            Ok(dup) => {
                // The program put an fd of its own at `n` meanwhile (dup2): look further.
                unmark_internal(n);
                close_raw(dup);
                n = n.checked_add(1)?;
            }
            Err(_) => {
                unmark_internal(n);
                return None;
            }
        }
    }
}

/// A new fd of greenify's own from `make` (CLOEXEC), marked as such: put at the number of
/// `placeholder` (an fd of ours inherited across fork, replaced in one dup3), or else
/// moved to `fd_floor` or above. Without a free number (EMFILE), the placeholder is
/// closed first to free its number (it is None afterwards).
pub fn new_internal_fd(
    mut make: impl FnMut() -> Result<OwnedFd, Errno>,
    placeholder: &mut Option<i32>,
    fd_floor: u32,
) -> Result<i32, Errno> {
    use rustix::fd::IntoRawFd;
    let fd = match (make(), *placeholder) {
        (Err(Errno::MFILE), Some(held)) => {
            // SAFETY: our own placeholder, closed once (forgotten just below).
            close_raw(unsafe { OwnedFd::from_raw_fd(held) });
            *placeholder = None;
            make()?
        }
        (made, _) => made?,
    };
    let Some(held) = *placeholder else {
        return Ok(place_internal(fd, fd_floor).into_raw_fd());
    };
    // SAFETY: our placeholder is replaced in place (dup3 closes it); it stays marked.
    let mut target = unsafe { OwnedFd::from_raw_fd(held) };
    let placed = rustix::io::dup3(&fd, &mut target, rustix::io::DupFlags::CLOEXEC);
    let target = target.into_raw_fd();
    close_raw(fd);
    placed?;
    *placeholder = None;
    Ok(target)
}

/// Makes a new fd greenify's own: moved to the lowest free number at or above `floor`
/// (see [`dup_internal`]), or, if that fails (e.g. a tiny RLIMIT_NOFILE), kept where it
/// is and marked there.
pub fn place_internal(fd: OwnedFd, floor: u32) -> OwnedFd {
    match dup_internal(rustix::fd::AsFd::as_fd(&fd), floor) {
        Some(high) => {
            close_raw(fd);
            high
        }
        None => {
            mark_internal(fd.as_raw_fd());
            fd
        }
    }
}

/// Closes an fd with the raw syscall: dropping an OwnedFd would call libc's close, which
/// is greenify's own hook. An fd of greenify's own stays marked until it is closed (a
/// hook answers for its number as for a closed one), and no placement can take the
/// number before it is unmarked ([`dup_internal`] skips marked numbers).
pub fn close_raw(fd: OwnedFd) {
    use rustix::fd::IntoRawFd;
    let fd = fd.into_raw_fd();
    super::raw::close(fd);
    unmark_internal(fd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsRawFd;

    fn key(tid: u32) -> WaitKey {
        WaitKey { tid, seq: 0 }
    }

    fn opened(fd_floor: u32) -> Reactor {
        let mut r = Reactor::new(fd_floor);
        r.open(fd_floor).unwrap();
        r
    }

    #[test]
    fn places_internal_fds_marked_at_the_lowest_free_number() {
        let (a, _b) = rustix::pipe::pipe().unwrap();
        // A number the program holds, and one marked but not open yet (a placement's
        // state between its mark and its dup), are both skipped.
        let theirs = rustix::io::fcntl_dupfd_cloexec(&a, 700).unwrap();
        assert_eq!(theirs.as_raw_fd(), 700);
        assert!(mark_internal(701));
        let placed = dup_internal(rustix::fd::AsFd::as_fd(&a), 700).unwrap();
        assert_eq!(placed.as_raw_fd(), 702);
        assert!(is_internal(702) && !is_internal(700));
        unmark_internal(701);
        // Closed, the number is free again.
        close_raw(placed);
        assert!(!is_internal(702));
        let again = place_internal(rustix::io::dup(&a).unwrap(), 701);
        assert_eq!(again.as_raw_fd(), 701);
        assert!(is_internal(701));
        close_raw(again);
        close_raw(theirs);
    }

    #[test]
    fn makes_no_fd_until_opened() {
        let mut r = Reactor::new(100);
        let mut woken = vec![];
        assert!(!r.poll(Some(Duration::ZERO), &mut woken));
        r.forget(5, &mut woken);
        assert!(r.is_unopened() && r.events.capacity() == 0);
        r.open(100).unwrap();
        let Backend::Epoll(fd) = r.backend else {
            panic!("no epoll instance");
        };
        assert!(is_internal(fd));
        r.after_fork();
        assert!(r.is_unopened());
        // The child's instance takes the number of the parent's.
        r.open(100).unwrap();
        assert_eq!(r.backend, Backend::Epoll(fd));
        r.degrade();
    }

    #[test]
    fn a_degraded_reactor_wakes_readers_by_poll() {
        let mut r = Reactor::new(100);
        r.degrade();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        r.add_waiter(rd.as_raw_fd(), Interest::Read, key(1), |_| true)
            .unwrap();
        r.add_waiter(wr.as_raw_fd(), Interest::Write, key(2), |_| true)
            .unwrap();
        let mut woken = vec![];
        let start = std::time::Instant::now();
        r.poll(None, &mut woken);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(woken, vec![key(2)]);
        woken.clear();
        r.poll(Some(Duration::ZERO), &mut woken);
        assert!(woken.is_empty());
        rustix::io::write(&wr, b"x").unwrap();
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(1)]);
    }

    #[test]
    fn wakes_readers_when_a_pipe_gets_data() {
        let mut r = opened(100);
        assert!(matches!(r.backend, Backend::Epoll(fd) if fd >= 100));
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        r.add_waiter(rd.as_raw_fd(), Interest::Read, key(1), |_| true)
            .unwrap();
        let mut woken = vec![];
        r.poll(Some(Duration::ZERO), &mut woken);
        assert!(woken.is_empty());
        rustix::io::write(&wr, b"x").unwrap();
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(1)]);
    }

    #[test]
    fn regular_files_are_not_pollable() {
        let mut r = opened(100);
        let f = rustix::fs::open(
            "/proc/self/status",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(
            r.add_waiter(f.as_raw_fd(), Interest::Read, key(1), |_| true),
            Err(RegisterError::NotPollable)
        );
    }

    #[test]
    fn a_look_without_waiting_skips_epoll_only_while_no_fd_is_registered() {
        let mut r = opened(100);
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let fd = rd.as_raw_fd();
        r.add_waiter(fd, Interest::Read, key(1), |_| true).unwrap();
        r.add_waiter(fd, Interest::Read, key(2), |_| true).unwrap();
        assert_eq!(r.registered, 1);
        rustix::io::write(&wr, b"x").unwrap();
        let mut woken = vec![];
        r.poll(Some(Duration::ZERO), &mut woken);
        assert_eq!(woken, vec![key(1), key(2)]);
        r.forget(fd, &mut woken);
        assert_eq!(r.registered, 0);
    }

    #[test]
    fn forgetting_an_fd_returns_its_waiters_and_drops_old_events() {
        let mut r = opened(100);
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let fd = rd.as_raw_fd();
        r.add_waiter(fd, Interest::Read, key(1), |_| true).unwrap();
        r.add_waiter(fd, Interest::Write, key(2), |_| true).unwrap();
        let mut woken = vec![];
        r.forget(fd, &mut woken);
        assert_eq!(woken, vec![key(1), key(2)]);
        woken.clear();
        rustix::io::write(&wr, b"x").unwrap();
        r.poll(Some(Duration::from_millis(50)), &mut woken);
        assert!(woken.is_empty());
    }

    #[test]
    fn drained_lasts_until_data_comes_and_never_after_urgent_data() {
        use std::io::Write;
        use std::os::fd::AsRawFd as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd = server.as_raw_fd();
        let mut r = opened(100);
        let mut woken = vec![];
        r.add_waiter(fd, Interest::Read, key(1), |_| true).unwrap();
        r.poll(Some(Duration::ZERO), &mut woken);
        r.set_drained(fd);
        assert!(r.is_drained(fd));
        client.write_all(b"x").unwrap();
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(1)]);
        assert!(!r.is_drained(fd));
        r.set_drained(fd);
        assert!(r.is_drained(fd));

        // Urgent data: a read stops short at its mark, so "short" no longer means "empty".
        // SAFETY: a valid socket and a one-byte buffer.
        let sent =
            unsafe { libc::send(client.as_raw_fd(), b"u".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        r.add_waiter(fd, Interest::Read, key(2), |_| true).unwrap();
        woken.clear();
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(2)]);
        r.set_drained(fd);
        assert!(!r.is_drained(fd));
    }

    #[test]
    fn a_closed_number_in_the_reserved_range_is_hidden_and_a_program_fd_there_is_not() {
        internal_fd_floor();
        let top = (RANGE_LOW.load(Ordering::SeqCst) + RESERVED_FDS - 1) as i32;
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        // SAFETY: borrowed for one fcntl.
        assert!(rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(top) }).is_err());
        // With one OS thread placing fds, a closed number is not greenify's.
        if !MAY_RACE.load(Ordering::SeqCst) {
            assert!(!hidden(top));
        }
        placements_may_race();
        assert!(!is_internal(top) && hidden(top));
        let program = rustix::io::fcntl_dupfd_cloexec(&rd, top).unwrap();
        assert_eq!(program.as_raw_fd(), top);
        assert!(!hidden(top));
        assert!(!hidden(rd.as_raw_fd()));
    }

    #[test]
    fn fds_in_the_reserved_range_do_not_grow_the_table() {
        let mut r = opened(100);
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let high = rustix::io::fcntl_dupfd_cloexec(&rd, 100).unwrap();
        let fd = high.as_raw_fd();
        assert!((100..100 + RESERVED_FDS as i32).contains(&fd));
        r.add_waiter(fd, Interest::Read, key(1), |_| true).unwrap();
        assert!(r.fds.low.len() < 100);
        rustix::io::write(&wr, b"x").unwrap();
        let mut woken = vec![];
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(1)]);
        r.forget(fd, &mut woken);
        assert_eq!(r.fds.high.len(), 1);
    }

    #[test]
    fn fds_above_the_reserved_range_are_indexed_directly() {
        let mut r = opened(100);
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        let above = rustix::io::fcntl_dupfd_cloexec(&rd, 100 + RESERVED_FDS as i32).unwrap();
        let fd = above.as_raw_fd();
        r.add_waiter(fd, Interest::Read, key(1), |_| true).unwrap();
        assert!(r.fds.high.is_empty());
        assert!(r.fds.low.len() > fd as usize);
        rustix::io::write(&wr, b"x").unwrap();
        let mut woken = vec![];
        r.poll(Some(Duration::from_secs(5)), &mut woken);
        assert_eq!(woken, vec![key(1)]);
    }
}
