//! What greenify knows of each fd number: process-wide, lock-free, indexed by fd.
//!
//! * [`Kind::Owned`]: a socket the program created through us. We set O_NONBLOCK on its
//!   open file description at creation (nobody else shares it yet), so every operation
//!   can simply be tried and parked on EAGAIN. `user_nonblock` is the program's own view
//!   of O_NONBLOCK, which fcntl/ioctl show and change.
//! * [`Kind::Gated`]: a pollable fd we did not create (inherited stdio, pipes, ttys,
//!   inherited sockets). Its description may be shared with other processes, so we never
//!   touch its flags: an operation runs only once a zero-timeout poll says it cannot block.
//! * [`Kind::Passthrough`]: regular files, directories, block devices: never block in
//!   the poll sense; calls go straight to libc.
//! * [`Kind::Unknown`]: not looked at yet; [`classify`] finds out with fstat.
//!
//! The table is reset whenever an fd number is (re)created or closed through our hooks.
//! An fd closed and reopened behind our back (inside glibc) may carry stale facts; every
//! path stays correct with stale facts (see the hooks), only greener or less green.

use rustix::fd::BorrowedFd;
use rustix::fs::FileType;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Unknown,
    Passthrough,
    Owned,
    Gated,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FdInfo {
    pub kind: Kind,
    /// The program's own O_NONBLOCK view (meaningful for Owned and Gated).
    pub user_nonblock: bool,
    /// No other process holds its open file description, and this one changes the
    /// description's O_NONBLOCK only through the hooks: `user_nonblock` is the
    /// description's own (see [`set_private`]).
    pub private: bool,
    pub is_socket: bool,
    /// A TCP socket: a short read means its receive queue was empty (not so for AF_UNIX
    /// streams, whose reads stop at a message carrying fds or other credentials).
    pub is_tcp: bool,
    pub recv_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
}

impl FdInfo {
    /// The program's O_NONBLOCK view is all a call needs, without asking the kernel:
    /// the description is non-blocking underneath whatever the view (Owned), or nobody
    /// but the hooks changes it ([`FdInfo::private`]).
    #[inline]
    pub fn view_decides(&self) -> bool {
        self.kind == Kind::Owned || self.private
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Recv,
    Send,
}

#[derive(Default)]
struct Entry {
    flags: AtomicU32,
    recv_timeout_ns: AtomicU64,
    send_timeout_ns: AtomicU64,
    /// Which open file description this fd names (dups share it, and with it the
    /// O_NONBLOCK view and the socket timeouts); 0: unknown.
    description: AtomicU32,
}

/// Description numbers handed out so far.
static DESCRIPTIONS: AtomicU32 = AtomicU32::new(0);
/// One past the highest fd ever recorded (bounds the scans for dups).
static HIGH_WATER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One past the highest fd number ever recorded.
pub fn tracked_limit() -> usize {
    HIGH_WATER.load(Relaxed)
}

/// Every entry naming the same description as `fd` (including `fd` itself).
fn same_description(fd: i32, mut f: impl FnMut(&Entry)) {
    let Some(e) = entry(fd) else { return };
    let description = e.description.load(Relaxed);
    if description == 0 {
        f(e);
        return;
    }
    let high = HIGH_WATER.load(Relaxed).min(table().len());
    for other in &table()[..high] {
        if other.description.load(Relaxed) == description {
            f(other);
        }
    }
}

const KIND_MASK: u32 = 0b11;
const USER_NONBLOCK: u32 = 1 << 2;
const IS_SOCKET: u32 = 1 << 3;
/// See [`FdInfo::is_tcp`].
const IS_TCP: u32 = 1 << 4;
/// See [`FdInfo::private`].
const PRIVATE: u32 = 1 << 5;
/// Bits 8..16: an error the kernel reported for the socket after a write had made
/// progress (see [`keep_error`]); 0: none.
const PENDING_SHIFT: u32 = 8;
const PENDING_MASK: u32 = 0xff << PENDING_SHIFT;
/// Upper bound on the table, whatever RLIMIT_NOFILE says.
const MAX_FDS: usize = 1 << 20;

/// Makes the table now, while the process is young. Made at the program's first fd call
/// instead, it could come after the program had taken all of `RLIMIT_AS` (threads created
/// until EAGAIN): its allocation failed, std's report of that went through the `write`
/// hook back into the table's own initialization, and the process hung.
pub fn init() {
    table();
}

#[inline]
fn table() -> &'static [Entry] {
    static TABLE: OnceLock<Box<[Entry]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .map_or(MAX_FDS, |m| m as usize);
        let len = hard.clamp(1024, MAX_FDS);
        // Zeroed memory straight from the allocator (fresh mmap pages for a large table):
        // writing a default into every entry would touch ~0.5 MiB in every process, and
        // copy it in every fork.
        let layout = std::alloc::Layout::array::<Entry>(len).expect("the table fits in memory");
        // SAFETY: `layout` has a non-zero size; an all-zero Entry is its Default (atomic
        // zeros), so the zeroed allocation is `len` valid entries, owned by the Box.
        unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Entry>();
            if ptr.is_null() {
                // Not std's report (handle_alloc_error): it writes through the hooks.
                ::log::error!(
                    "cannot allocate the fd table ({} bytes): out of memory",
                    layout.size()
                );
                std::process::abort();
            }
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len))
        }
    })
}

#[inline]
fn entry(fd: i32) -> Option<&'static Entry> {
    usize::try_from(fd).ok().and_then(|i| table().get(i))
}

fn encode(kind: Kind) -> u32 {
    match kind {
        Kind::Unknown => 0,
        Kind::Passthrough => 1,
        Kind::Owned => 2,
        Kind::Gated => 3,
    }
}

fn decode(bits: u32) -> Kind {
    match bits & KIND_MASK {
        0 => Kind::Unknown,
        1 => Kind::Passthrough,
        2 => Kind::Owned,
        _ => Kind::Gated,
    }
}

fn duration(ns: u64) -> Option<Duration> {
    (ns != 0).then(|| Duration::from_nanos(ns))
}

/// What we know of `fd` (Unknown for numbers beyond the table). Inline, as
/// `blocking::facts`.
#[inline]
pub fn get(fd: i32) -> FdInfo {
    match entry(fd) {
        None => FdInfo {
            kind: Kind::Unknown,
            user_nonblock: false,
            private: false,
            is_socket: false,
            is_tcp: false,
            recv_timeout: None,
            send_timeout: None,
        },
        Some(e) => {
            let flags = e.flags.load(Relaxed);
            FdInfo {
                kind: decode(flags),
                user_nonblock: flags & USER_NONBLOCK != 0,
                private: flags & PRIVATE != 0,
                is_socket: flags & IS_SOCKET != 0,
                is_tcp: flags & IS_TCP != 0,
                recv_timeout: duration(e.recv_timeout_ns.load(Relaxed)),
                send_timeout: duration(e.send_timeout_ns.load(Relaxed)),
            }
        }
    }
}

/// Records a fresh fd: its kind and the program's O_NONBLOCK view; clears timeouts.
pub fn set(fd: i32, kind: Kind, user_nonblock: bool, is_socket: bool) {
    if let Some(e) = entry(fd) {
        let mut flags = encode(kind);
        if user_nonblock {
            flags |= USER_NONBLOCK;
        }
        if is_socket {
            flags |= IS_SOCKET;
        }
        e.flags.store(flags, Relaxed);
        e.recv_timeout_ns.store(0, Relaxed);
        e.send_timeout_ns.store(0, Relaxed);
        let description = if kind == Kind::Unknown {
            0
        } else {
            DESCRIPTIONS.fetch_add(1, Relaxed) + 1
        };
        e.description.store(description, Relaxed);
        HIGH_WATER.fetch_max(fd as usize + 1, Relaxed);
    }
}

/// `fd` is a TCP socket (see [`FdInfo::is_tcp`]).
pub fn mark_tcp(fd: i32) {
    if let Some(e) = entry(fd) {
        e.flags.fetch_or(IS_TCP, Relaxed);
    }
}

/// Keeps `error` (a socket's pending error, which the kernel reports once) for the next
/// call on `fd`: greenify's own retry met it after part of a write had gone, so the
/// write returns short, and natively the next call would be the one to see it.
pub fn keep_error(fd: i32, error: i32) {
    if let (Some(e), Ok(error)) = (entry(fd), u32::try_from(error)) {
        if error > 0 && error <= 0xff {
            e.flags.fetch_or(error << PENDING_SHIFT, Relaxed);
        }
    }
}

/// The error kept for `fd` by [`keep_error`], now handed over (so forgotten).
pub fn take_error(fd: i32) -> Option<i32> {
    let e = entry(fd)?;
    if e.flags.load(Relaxed) & PENDING_MASK == 0 {
        return None;
    }
    let old = e.flags.fetch_and(!PENDING_MASK, Relaxed);
    let error = (old & PENDING_MASK) >> PENDING_SHIFT;
    (error != 0).then_some(error as i32)
}

/// Forgets everything about `fd` (closed, or reopened behind our back).
pub fn reset(fd: i32) {
    set(fd, Kind::Unknown, false, false);
}

/// The program's O_NONBLOCK view, for `fd` and every dup of it.
pub fn set_user_nonblock(fd: i32, on: bool) {
    same_description(fd, |e| {
        if on {
            e.flags.fetch_or(USER_NONBLOCK, Relaxed);
        } else {
            e.flags.fetch_and(!USER_NONBLOCK, Relaxed);
        }
    });
}

/// Some fd was marked private since the last [`forget_private`].
static ANY_PRIVATE: AtomicBool = AtomicBool::new(false);

/// `fd` and its description are new, made by this process (a pipe): no other process
/// holds the description until one may inherit it or be sent it, and until then its
/// O_NONBLOCK changes only through this process's hooked calls (fcntl, ioctl, also made
/// through `syscall()`), which keep `user_nonblock` up to date. A blocking call on it
/// that finds nothing then waits without asking the kernel whether the description
/// became non-blocking (an F_GETFL at every wait), and a non-blocking one makes no try
/// that cannot wait first. Every way out of that state the hooks see ends it for all
/// ([`forget_private`]): fork, vfork, posix_spawn (system, popen), exec, a sendmsg with
/// ancillary data, any sendmmsg, and with `GREENIFY_ESCAPES` the raw fork, clone,
/// fcntl, ioctl and sendmsg calls it traps. Not seen: a child made by libc's `clone()`,
/// `daemon()`, `forkpty()` or `_Fork()` (or by a raw system call without
/// `GREENIFY_ESCAPES`) that makes an inherited pipe non-blocking: a blocking read of it
/// here then waits for data where natively it fails with EAGAIN (README).
pub fn set_private(fd: i32) {
    if let Some(e) = entry(fd) {
        ANY_PRIVATE.store(true, Relaxed);
        e.flags.fetch_or(PRIVATE, Relaxed);
    }
}

/// Another process may hold our descriptions now, or their O_NONBLOCK may have changed
/// behind the hooks (see [`set_private`]): none is private any more. Async-signal-safe
/// (atomics only), as the trap of an escaped call calls it.
pub fn forget_private() {
    if !ANY_PRIVATE.swap(false, Relaxed) {
        return;
    }
    let high = HIGH_WATER.load(Relaxed).min(table().len());
    for e in &table()[..high] {
        if e.flags.load(Relaxed) & PRIVATE != 0 {
            e.flags.fetch_and(!PRIVATE, Relaxed);
        }
    }
}

/// System calls that may hand our descriptions to another process (a child, the
/// receiver of fds) or change a description's O_NONBLOCK (see [`set_private`]).
const SHARING_CALLS: [i64; 8] = [
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
];

/// The program makes system call `nr` past the hooks (through `syscall()`, or an
/// instruction trapped with `GREENIFY_ESCAPES`): [`forget_private`] if it may share a
/// description. Async-signal-safe.
pub fn forget_private_before(nr: i64) {
    if SHARING_CALLS.contains(&nr) {
        forget_private();
    }
}

/// SO_RCVTIMEO / SO_SNDTIMEO as the program set them (None or zero: no timeout).
/// (They belong to the socket, so every dup of `fd` sees them.)
pub fn set_timeout(fd: i32, direction: Direction, timeout: Option<Duration>) {
    let ns = timeout.map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
    same_description(fd, |e| match direction {
        Direction::Recv => e.recv_timeout_ns.store(ns, Relaxed),
        Direction::Send => e.send_timeout_ns.store(ns, Relaxed),
    });
}

/// `to` is a duplicate of `from` (same open file description).
pub fn copy(from: i32, to: i32) {
    if let (Some(src), Some(dst)) = (entry(from), entry(to)) {
        dst.flags
            .store(src.flags.load(Relaxed) & !PENDING_MASK, Relaxed);
        dst.recv_timeout_ns
            .store(src.recv_timeout_ns.load(Relaxed), Relaxed);
        dst.send_timeout_ns
            .store(src.send_timeout_ns.load(Relaxed), Relaxed);
        dst.description
            .store(src.description.load(Relaxed), Relaxed);
        HIGH_WATER.fetch_max(to as usize + 1, Relaxed);
    }
}

/// Before a child process may inherit fds (fork, posix_spawn, exec): every socket we
/// made O_NONBLOCK underneath, that the program sees as blocking and that survives
/// exec, gets its description back to blocking, as the child (greenified or not)
/// expects. This process then treats it as a socket it does not own: MSG_DONTWAIT and
/// readiness waits keep it from ever blocking a green thread.
pub fn release_for_children() {
    forget_private();
    let high = tracked_limit().min(table().len());
    for (fd, e) in table()[..high].iter().enumerate() {
        let flags = e.flags.load(Relaxed);
        if decode(flags) != Kind::Owned || flags & USER_NONBLOCK != 0 {
            continue;
        }
        // SAFETY: borrowed for two fcntl calls; a closed fd just fails them.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd as i32) };
        let inherited = rustix::io::fcntl_getfd(borrowed)
            .is_ok_and(|f| !f.contains(rustix::io::FdFlags::CLOEXEC));
        if !inherited {
            continue;
        }
        if let Ok(status) = rustix::fs::fcntl_getfl(borrowed) {
            let _ = rustix::fs::fcntl_setfl(borrowed, status - rustix::fs::OFlags::NONBLOCK);
        }
        e.flags
            .store((flags & !KIND_MASK) | encode(Kind::Gated), Relaxed);
    }
}

/// Looks at an fd we have not seen yet and records what it is. Returns the new facts,
/// or `None` if the fd is not open.
pub fn classify(fd: i32) -> Option<FdInfo> {
    entry(fd)?;
    // SAFETY: the fd is only borrowed for fstat/fcntl; if it is not open they fail.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let stat = rustix::fs::fstat(borrowed).ok()?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    let is_socket = file_type == FileType::Socket;
    let kind = match file_type {
        FileType::RegularFile | FileType::Directory | FileType::BlockDevice => Kind::Passthrough,
        _ => Kind::Gated,
    };
    // Calls on a Passthrough fd never look at O_NONBLOCK.
    let nonblock = kind != Kind::Passthrough
        && rustix::fs::fcntl_getfl(borrowed)
            .is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK));
    set(fd, kind, nonblock, is_socket);
    Some(get(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsRawFd;

    #[test]
    fn classifies_pipes_files_and_sockets() {
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        assert_eq!(classify(rd.as_raw_fd()).unwrap().kind, Kind::Gated);
        let f = rustix::fs::open(
            "/proc/self/status",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(classify(f.as_raw_fd()).unwrap().kind, Kind::Passthrough);
        let (a, _b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        let info = classify(a.as_raw_fd()).unwrap();
        assert!(info.is_socket && info.user_nonblock);
        assert_eq!(classify(-1), None);
    }

    #[test]
    fn dup_copies_and_reset_forgets() {
        set(900, Kind::Owned, true, true);
        set_timeout(900, Direction::Recv, Some(Duration::from_millis(250)));
        copy(900, 901);
        let info = get(901);
        assert_eq!(info.kind, Kind::Owned);
        assert!(info.user_nonblock);
        assert_eq!(info.recv_timeout, Some(Duration::from_millis(250)));
        assert_eq!(info.send_timeout, None);
        set_user_nonblock(901, false);
        assert!(!get(901).user_nonblock);
        // The view belongs to the description: the original sees it too.
        assert!(!get(900).user_nonblock);
        set_timeout(900, Direction::Send, Some(Duration::from_millis(5)));
        assert_eq!(get(901).send_timeout, Some(Duration::from_millis(5)));
        reset(901);
        assert_eq!(get(901).kind, Kind::Unknown);
    }

    #[test]
    fn a_private_pipe_stays_so_in_its_dups_until_anything_may_share_it() {
        set(910, Kind::Gated, false, false);
        assert!(!get(910).private, "a description seen, not made here");
        set_private(910);
        copy(910, 911);
        assert!(get(910).private && get(911).private);
        set_user_nonblock(911, true);
        assert!(get(910).user_nonblock, "the view is the description's");
        forget_private();
        assert!(!get(910).private && !get(911).private);
        set_private(910);
        reset(910);
        assert!(
            !get(910).private,
            "closed: the number's next fd is another's"
        );
    }

    #[test]
    fn kept_error_is_handed_over_once() {
        set(902, Kind::Owned, false, true);
        assert_eq!(take_error(902), None);
        keep_error(902, libc::ECONNRESET);
        // The facts themselves are unchanged.
        assert_eq!(get(902).kind, Kind::Owned);
        assert!(!get(902).user_nonblock);
        assert_eq!(take_error(902), Some(libc::ECONNRESET));
        assert_eq!(take_error(902), None);
        keep_error(902, libc::ETIMEDOUT);
        reset(902);
        assert_eq!(take_error(902), None);
    }
}
