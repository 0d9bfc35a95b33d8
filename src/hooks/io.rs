//! read/write and friends, pipes, close/dup, fcntl/ioctl, and the calls that create fds.

use super::blocking::{self, write_all, Attempt, End, Op};
use super::{enter, Green};
use crate::real;
use crate::runtime::fdtable::{self, Kind};
use crate::runtime::{self, reactor, Interest, Reason};
use libc::{c_char, c_int, c_uint, c_ulong, c_void, iovec, mode_t, off_t, size_t, ssize_t};

/// The program now has a new fd `fd`: forget whatever that number meant before.
pub fn fresh_fd(green: Option<&Green>, fd: c_int) {
    if fd < 0 {
        return;
    }
    fdtable::reset(fd);
    if green.is_some() {
        runtime::fd_closed(fd);
    }
}

/// Closes the reactor's view of `fd` after the number went away (close_range).
fn fd_going_away(green: Option<&Green>, fd: c_int) {
    if green.is_some() {
        runtime::fd_closed(fd);
    }
    fdtable::reset(fd);
}

/// `close` makes the number `fd` go away or replaces it: the fd table forgets it first,
/// and the reactor around it (see `runtime::fd_closed_by`).
fn fd_closing<R>(green: Option<&Green>, fd: c_int, close: impl FnOnce() -> R) -> R {
    fdtable::reset(fd);
    if green.is_some() {
        runtime::fd_closed_by(fd, close)
    } else {
        close()
    }
}

/// preadv2(fd, iov, count, -1, flags | RWF_NOWAIT): a read at the current position that
/// the kernel checks as usual but answers EAGAIN instead of blocking.
///
/// Made with the instruction itself, as glibc's preadv2 makes it, without glibc's
/// cancellation point around it (~75 instructions a call, six calls a pipe round trip):
/// only green threads make it, whose cancellation is greenify's own, and it never waits.
fn read_nowait(fd: c_int, iov: *const iovec, count: c_int, flags: c_int) -> ssize_t {
    // SAFETY: preadv2's arguments (the offset as its low and high halves: -1, the
    // current position); the program's iovecs, for the kernel to check.
    nowait_answer(unsafe { raw_nowait(libc::SYS_preadv2, fd, iov, count, flags) })
}

/// pwritev2(fd, iov, count, -1, flags | RWF_NOWAIT), as [`read_nowait`].
fn write_nowait(fd: c_int, iov: *const iovec, count: c_int, flags: c_int) -> ssize_t {
    // SAFETY: as above, for pwritev2.
    nowait_answer(unsafe { raw_nowait(libc::SYS_pwritev2, fd, iov, count, flags) })
}

/// System call `nr` (preadv2 or pwritev2) at the current position with RWF_NOWAIT added.
///
/// # Safety
/// `nr` takes (fd, iov, count, offset low, offset high, flags); `iov` is the program's.
#[inline]
unsafe fn raw_nowait(
    nr: libc::c_long,
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    flags: c_int,
) -> isize {
    // Sign-extended, as glibc passes them (a negative fd or count gets the kernel's own
    // answer).
    let args = [
        fd as isize as usize,
        iov as usize,
        count as isize as usize,
        usize::MAX,
        0,
        (flags | libc::RWF_NOWAIT) as isize as usize,
    ];
    // SAFETY: the caller vouches for `nr` and the iovecs.
    unsafe { runtime::raw::syscall(nr, &args) }
}

/// The kernel's answer to [`raw_nowait`] as glibc gives it: a kernel without the call
/// (ENOSYS) is ENOTSUP, glibc's answer when it cannot emulate the flags.
fn nowait_answer(answer: isize) -> ssize_t {
    match answer {
        n if n >= 0 => n,
        n if n == -(libc::ENOSYS as isize) => super::fail(libc::EOPNOTSUPP),
        n => super::fail(-n as c_int),
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let green = enter();
    if past_user_space(buf, n) {
        // SAFETY: forwarded: the kernel answers EFAULT at once.
        return unsafe { real::read(fd, buf, n) };
    }
    let op = Op::new(fd, Interest::Read, Reason::Read)
        .with_flags()
        .with_nowait()
        .reading(n);
    // Counts past user space were answered above, so from here n <= SSIZE_MAX.
    blocking::run(green.as_ref(), op, |how| match how {
        // What read(2) answers before the socket: a zero count is 0 at once (recv would
        // wait for data).
        // SAFETY: the program's own arguments, passed on unchanged.
        Attempt::DontWait if n == 0 => unsafe { real::read(fd, buf, n) },
        // read checks that the whole count is addressable, recv only its first
        // MAX_RW_COUNT bytes; recvmsg checks its iovec whole, as read does.
        Attempt::DontWait if n > MAX_RW_COUNT => {
            let one = iovec {
                iov_base: buf,
                iov_len: n,
            };
            let mut msg = iov_msg(&one, 1);
            // SAFETY: the program's buffer, for the kernel to check.
            unsafe { real::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) }
        }
        // SAFETY: the program's own arguments, passed on unchanged.
        Attempt::DontWait => unsafe { real::recv(fd, buf, n, libc::MSG_DONTWAIT) },
        Attempt::NoWait => read_nowait(
            fd,
            &iovec {
                iov_base: buf,
                iov_len: n,
            },
            1,
            0,
        ),
        // SAFETY: as above.
        _ => unsafe { real::read(fd, buf, n) },
    })
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let green = enter();
    if past_user_space(buf, n) {
        // SAFETY: forwarded: the kernel answers EFAULT at once.
        return unsafe { real::write(fd, buf, n) };
    }
    let op = Op::new(fd, Interest::Write, Reason::Write)
        .with_flags()
        .with_nowait();
    // Counts past user space were answered above, so from here n <= SSIZE_MAX.
    write_all(
        green.as_ref(),
        op,
        || n,
        |how, offset, cap| {
            let len = (n - offset).min(cap);
            // SAFETY: offset + len stays within the program's buffer of n bytes.
            let at = unsafe { buf.cast::<u8>().add(offset) }.cast();
            match how {
                Attempt::DontWait if len > MAX_RW_COUNT => {
                    let one = iovec {
                        iov_base: at as *mut c_void,
                        iov_len: len,
                    };
                    let msg = iov_msg(&one, 1);
                    // SAFETY: the program's buffer, for the kernel to check.
                    unsafe { real::sendmsg(fd, &msg, libc::MSG_DONTWAIT) }
                }
                // SAFETY: the program's own buffer and fd.
                Attempt::DontWait => unsafe { real::send(fd, at, len, libc::MSG_DONTWAIT) },
                Attempt::NoWait => write_nowait(
                    fd,
                    &iovec {
                        iov_base: at as *mut c_void,
                        iov_len: len,
                    },
                    1,
                    0,
                ),
                // SAFETY: as above.
                _ => unsafe { real::write(fd, at, len) },
            }
        },
    )
}

/// Whether `n` bytes at `buf` end past any user address space (2^56 bounds every 64-bit
/// Linux layout). read and write check the whole count (EFAULT, without waiting) before
/// they cut it to [`MAX_RW_COUNT`]; the preadv2/pwritev2 and recv/send forms cut first.
fn past_user_space(buf: *const c_void, n: size_t) -> bool {
    (buf as usize)
        .checked_add(n)
        .is_none_or(|end| end > 1 << 56)
}

/// The most the kernel moves in one call (MAX_RW_COUNT: INT_MAX rounded down to a page);
/// recv and send take at most this much of a larger count.
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// A msghdr carrying just `count` iovecs (for readv/writev on sockets as recvmsg/sendmsg).
fn iov_msg(iov: *const iovec, count: usize) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov as *mut iovec;
    msg.msg_iovlen = count;
    msg
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: forwarded.
    unsafe { read_vectored(fd, iov, count, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn preadv2(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    offset: off_t,
    flags: c_int,
) -> ssize_t {
    if offset != -1 || flags & libc::RWF_NOWAIT != 0 {
        // A positioned read (files; others say ESPIPE), or one asked not to wait.
        // SAFETY: forwarded.
        return unsafe { real::preadv2(fd, iov, count, offset, flags) };
    }
    // SAFETY: forwarded.
    unsafe { read_vectored(fd, iov, count, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn preadv64v2(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    offset: off_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: the same call (off_t is 64 bits here).
    unsafe { preadv2(fd, iov, count, offset, flags) }
}

/// readv, and preadv2 at the current position with RWF flags: a read that may wait.
unsafe fn read_vectored(fd: c_int, iov: *const iovec, count: c_int, flags: c_int) -> ssize_t {
    let green = enter();
    let op = Op::new(fd, Interest::Read, Reason::Read).with_nowait();
    // RWF flags have no recvmsg form: then a socket takes preadv2 with RWF_NOWAIT.
    let op = if flags == 0 { op.with_flags() } else { op };
    // recvmsg only where it means readv: readv answers a bad count (EINVAL) and an empty
    // read (0) at once, where recvmsg would say EMSGSIZE or wait for data.
    let as_recvmsg = (1..=libc::UIO_MAXIOV).contains(&count)
        // Unreadable iovecs: readv's own EFAULT.
        && super::memory::read_slice(iov, count as usize)
            .is_some_and(|v| v.iter().any(|v| v.iov_len > 0));
    blocking::run(green.as_ref(), op, |how| match how {
        Attempt::NoWait => read_nowait(fd, iov, count, flags),
        Attempt::DontWait if as_recvmsg => {
            let mut msg = iov_msg(iov, count as usize);
            // SAFETY: readv on a socket is recvmsg of the same iovecs.
            unsafe { real::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) }
        }
        // SAFETY: the program's own arguments, passed on unchanged.
        _ if flags == 0 => unsafe { real::readv(fd, iov, count) },
        // SAFETY: as above.
        _ => unsafe { real::preadv2(fd, iov, count, -1, flags) },
    })
}

/// The part of `iov` left after skipping `skip` bytes.
///
/// # Safety
/// `iov` points to `count` valid iovecs.
pub unsafe fn iovecs_after(iov: *const iovec, count: usize, mut skip: usize) -> Vec<iovec> {
    let mut rest = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: i < count, per the caller's contract.
        let v = unsafe { *iov.add(i) };
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        rest.push(iovec {
            // SAFETY: skip < iov_len, so the pointer stays inside this buffer.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    rest
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: forwarded.
    unsafe { write_vectored(fd, iov, count, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn pwritev2(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    offset: off_t,
    flags: c_int,
) -> ssize_t {
    if offset != -1 || flags & libc::RWF_NOWAIT != 0 {
        // A positioned write (files; others say ESPIPE), or one asked not to wait.
        // SAFETY: forwarded.
        return unsafe { real::pwritev2(fd, iov, count, offset, flags) };
    }
    // SAFETY: forwarded.
    unsafe { write_vectored(fd, iov, count, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn pwritev64v2(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    offset: off_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: the same call (off_t is 64 bits here).
    unsafe { pwritev2(fd, iov, count, offset, flags) }
}

/// writev, and pwritev2 at the current position with RWF flags: as natively on a
/// blocking fd, everything is written before it returns.
unsafe fn write_vectored(fd: c_int, iov: *const iovec, count: c_int, flags: c_int) -> ssize_t {
    let green = enter();
    let op = Op::new(fd, Interest::Write, Reason::Write).with_nowait();
    // RWF flags have no sendmsg form: then a socket takes pwritev2 with RWF_NOWAIT.
    let op = if flags == 0 { op.with_flags() } else { op };
    let plain = |iov: *const iovec, count: c_int| {
        if flags == 0 {
            // SAFETY: the program's own (or re-sliced) iovecs.
            unsafe { real::writev(fd, iov, count) }
        } else {
            // SAFETY: as above.
            unsafe { real::pwritev2(fd, iov, count, -1, flags) }
        }
    };
    if !(1..=libc::UIO_MAXIOV).contains(&count) {
        // Forwarded: the kernel answers EINVAL (or writes nothing).
        return plain(iov, count);
    }
    let n = count as usize;
    let send = |iov: *const iovec, count: usize, how: Attempt| match how {
        Attempt::DontWait => {
            let msg = iov_msg(iov, count);
            // SAFETY: writev on a socket is sendmsg of the same iovecs.
            unsafe { real::sendmsg(fd, &msg, libc::MSG_DONTWAIT) }
        }
        Attempt::NoWait => write_nowait(fd, iov, count as c_int, flags),
        _ => plain(iov, count as c_int),
    };
    // The first attempt passes the program's iovecs (the kernel checks them: EFAULT,
    // EINVAL); the rest of a partial write needs a copy, read safely, and only then.
    let copy = std::cell::OnceCell::new();
    let copied = || {
        copy.get_or_init(|| super::memory::read_slice(iov, n))
            .as_deref()
    };
    let total = || {
        copied().map_or(0, |iovecs| {
            iovecs
                .iter()
                .fold(0usize, |t, v| t.saturating_add(v.iov_len))
        })
    };
    write_all(green.as_ref(), op, total, |how, offset, cap| {
        if offset == 0 && how != Attempt::Gated {
            return send(iov, n, how);
        }
        let Some(iovecs) = copied() else {
            // Unreadable now (it was written from at first): the kernel's answer.
            return super::fail(libc::EFAULT);
        };
        // SAFETY: re-slices our copy of the program's iovecs.
        let mut rest = unsafe { iovecs_after(iovecs.as_ptr(), n, offset) };
        let mut budget = cap;
        rest.retain_mut(|v| {
            let keep = budget > 0;
            v.iov_len = v.iov_len.min(budget);
            budget -= v.iov_len;
            keep
        });
        send(rest.as_ptr(), rest.len(), how)
    })
}

#[no_mangle]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { pipe2(fds, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    let green = enter();
    // SAFETY: the program's own array of two ints.
    let result = unsafe { real::pipe2(fds, flags) };
    if result == 0 {
        // SAFETY: pipe2 succeeded, so both entries are written.
        let (a, b) = unsafe { (*fds, *fds.add(1)) };
        for fd in [a, b] {
            fresh_fd(green.as_ref(), fd);
            // Pipes are shared with children more often than not: never touch their flags.
            fdtable::set(fd, Kind::Gated, flags & libc::O_NONBLOCK != 0, false);
            fdtable::set_private(fd);
        }
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let green = enter();
    if reactor::is_internal(fd) {
        // Not the program's fd: to it, that number is not open.
        return super::fail(libc::EBADF);
    }
    let spares = linger_spares(green.as_ref(), [fd]);
    let result = fd_closing(green.as_ref(), fd, || {
        // Asked again where no fd of greenify's can be placed meanwhile.
        reactor::excluding_placement(fd as c_uint, fd as c_uint, || {
            if reactor::is_internal(fd) {
                super::fail(libc::EBADF)
            } else {
                // SAFETY: forwarded.
                unsafe { real::close(fd) }
            }
        })
    });
    close_spares(spares);
    result
}

/// The last close of a lingering socket blocks until its data is sent or the linger time
/// passes. So before the program's numbers close, each lingering socket among `fds` gets
/// a spare greenify-owned dup: the program's close then returns at once, with the number
/// free as natively, and [`close_spares`] makes the last close, which lingers, on a
/// helper thread. A socket that gets no spare (no fd free) closes as usual.
fn linger_spares(
    green: Option<&Green>,
    fds: impl IntoIterator<Item = c_int>,
) -> Vec<rustix::fd::OwnedFd> {
    let mut spares = Vec::new();
    if green.is_none() {
        return spares;
    }
    let floor = reactor::internal_fd_floor();
    for fd in fds.into_iter().filter(|&fd| super::net::lingers(fd)) {
        // SAFETY: borrowed for one fcntl.
        let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        // Out of the program's reach (its close-everything) until the helper closes it.
        spares.extend(reactor::dup_internal(borrowed, floor));
    }
    spares
}

/// Closes the spares of [`linger_spares`] on a helper thread while this green thread waits.
fn close_spares(spares: Vec<rustix::fd::OwnedFd>) {
    if !spares.is_empty() {
        runtime::offload::run(move || spares.into_iter().for_each(reactor::close_raw));
    }
}

#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let green = enter();
    if first > last {
        // SAFETY: forwarded: the kernel answers EINVAL.
        return unsafe { real::close_range(first, last, flags) };
    }
    let spares = if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let high = last.min(fdtable::tracked_limit() as c_uint);
        linger_spares(green.as_ref(), (first..=high).map(|fd| fd as c_int))
    } else {
        Vec::new()
    };
    let r = reactor::excluding_placement(first, last, || close_program_range(first, last, flags));
    close_spares(spares);
    if r == 0 && flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        for fd in first..=last.min(fdtable::tracked_limit() as c_uint) {
            if !reactor::is_internal(fd as c_int) {
                fd_going_away(green.as_ref(), fd as c_int);
            }
        }
    }
    r
}

/// close_range over the program's ranges, around greenify's own fds.
fn close_program_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let mut start = first;
    for own in reactor::internal_fds() {
        let own = own as c_uint;
        if own < start || own > last {
            continue;
        }
        if own > start {
            // SAFETY: forwarded for the part below our fd.
            let r = unsafe { real::close_range(start, own - 1, flags) };
            if r != 0 {
                return r;
            }
        }
        start = own + 1;
    }
    if start <= last {
        // SAFETY: forwarded for the rest.
        unsafe { real::close_range(start, last, flags) }
    } else {
        0
    }
}

#[no_mangle]
pub unsafe extern "C" fn closefrom(lowest: c_int) {
    // SAFETY: closefrom is close_range to the end (errors are ignored, as in glibc).
    unsafe { close_range(lowest.max(0) as c_uint, c_uint::MAX, 0) };
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let green = enter();
    if reactor::hidden(fd) {
        // Not the program's fd (as in close).
        return super::fail(libc::EBADF);
    }
    // SAFETY: forwarded.
    let new = unsafe { real::dup(fd) };
    if new >= 0 {
        fresh_fd(green.as_ref(), new);
        fdtable::copy(fd, new);
    }
    new
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: forwarded; dup3 with no flags is dup2 except for old == new.
    unsafe { dup_onto(old, new, None) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { dup_onto(old, new, Some(flags)) }
}

unsafe fn dup_onto(old: c_int, new: c_int, flags: Option<c_int>) -> c_int {
    // greenify's own fds are not the program's to replace (its waits would break): the
    // number answers as one beyond the program's fd table.
    if reactor::is_internal(new) {
        return super::fail(libc::EBADF);
    }
    let green = enter();
    let valid_target = old != new && new >= 0;
    let mut spares = Vec::new();
    let dup = || {
        // Asked again where no fd of greenify's can be placed meanwhile (as in close).
        reactor::excluding_placement(new as c_uint, new as c_uint, || match flags {
            _ if reactor::is_internal(new) => super::fail(libc::EBADF),
            // SAFETY: forwarded.
            None => unsafe { real::dup2(old, new) },
            // SAFETY: forwarded.
            Some(flags) => unsafe { real::dup3(old, new, flags) },
        })
    };
    let result = if valid_target && facts_open(old) {
        // `new` is closed implicitly (lingering, if so, on a helper) and replaced.
        spares = linger_spares(green.as_ref(), [new]);
        fd_closing(green.as_ref(), new, dup)
    } else {
        dup()
    };
    close_spares(spares);
    if result >= 0 && valid_target {
        fresh_fd(green.as_ref(), result);
        fdtable::copy(old, result);
    }
    result
}

fn facts_open(fd: c_int) -> bool {
    blocking::facts(fd).is_some()
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    let green = enter();
    if reactor::hidden(fd) {
        // Not the program's fd (as in close).
        return super::fail(libc::EBADF);
    }
    let info = fdtable::get(fd);
    match cmd {
        libc::F_GETFL => {
            // SAFETY: forwarded.
            let flags = unsafe { real::fcntl(fd, cmd, arg) };
            if flags >= 0 && info.kind == Kind::Owned {
                // Show the program its own choice, not ours.
                let nonblock = if info.user_nonblock {
                    libc::O_NONBLOCK
                } else {
                    0
                };
                return (flags & !libc::O_NONBLOCK) | nonblock;
            }
            flags
        }
        libc::F_SETFL => {
            let wanted = arg as c_int;
            let passed = if info.kind == Kind::Owned {
                wanted | libc::O_NONBLOCK
            } else {
                wanted
            };
            // SAFETY: forwarded (with O_NONBLOCK kept on sockets we own).
            let result = unsafe { real::fcntl(fd, cmd, passed as usize) };
            if result == 0 && info.kind != Kind::Unknown {
                fdtable::set_user_nonblock(fd, wanted & libc::O_NONBLOCK != 0);
            }
            result
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // SAFETY: forwarded.
            let new = unsafe { real::fcntl(fd, cmd, arg) };
            if new >= 0 {
                fresh_fd(green.as_ref(), new);
                fdtable::copy(fd, new);
            }
            new
        }
        libc::F_SETLKW | libc::F_OFD_SETLKW => super::offloaded::waiting_lock(&green, fd, cmd, arg),
        // SAFETY: forwarded.
        _ => unsafe { real::fcntl(fd, cmd, arg) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    let _green = enter();
    if request != libc::FIONBIO as c_ulong || arg == 0 {
        // SAFETY: forwarded.
        return unsafe { real::ioctl(fd, request, arg) };
    }
    let info = fdtable::get(fd);
    let Some(wanted) = super::memory::read(arg as *const c_int) else {
        // SAFETY: forwarded: the kernel answers EFAULT.
        return unsafe { real::ioctl(fd, request, arg) };
    };
    let wanted = wanted != 0;
    let result = if info.kind == Kind::Owned {
        let one: c_int = 1;
        // SAFETY: keeps the socket non-blocking underneath; errors (EBADF) still surface.
        unsafe { real::ioctl(fd, request, &one as *const c_int as usize) }
    } else {
        // SAFETY: forwarded.
        unsafe { real::ioctl(fd, request, arg) }
    };
    if result == 0 && info.kind != Kind::Unknown {
        fdtable::set_user_nonblock(fd, wanted);
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn sendfile(
    out_fd: c_int,
    in_fd: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    // SAFETY: forwarded; the kernel advances `offset` (or the file position) itself.
    let transfer_up_to = |len: usize| unsafe { real::sendfile(out_fd, in_fd, offset, len) };
    if blocking::facts(in_fd).is_some_and(|i| i.is_socket) {
        // From a socket (only into a pipe: anything else is EINVAL), the call waits for
        // room as well as for data: each end by its own rule, as splice (measured: the
        // socket's O_NONBLOCK makes only the read not wait, the pipe's only the write),
        // and room first, as the kernel.
        let ends = [
            End {
                fd: out_fd,
                interest: Interest::Write,
            },
            End {
                fd: in_fd,
                interest: Interest::Read,
            },
        ];
        // The pipe's wait for room would block the thread: the call goes once it has a
        // free slot, and then fills what it can without waiting.
        return transfer(&ends, 0, |_| {
            if blocking::ready_now(out_fd, Interest::Write) {
                transfer_up_to(count)
            } else {
                super::fail(libc::EAGAIN)
            }
        });
    }
    let green = enter();
    let op = Op::new(out_fd, Interest::Write, Reason::Write);
    if blocking::facts(out_fd).is_some_and(|i| i.is_socket) {
        // From a file to a blocking socket, sendfile sends everything (or fails).
        return write_all(
            green.as_ref(),
            op,
            || count,
            |_, sent, cap| transfer_up_to((count - sent).min(cap)),
        );
    }
    // To a pipe: one transfer of what fits once there is room, as natively.
    blocking::run(green.as_ref(), op, |how| {
        // A count past SSIZE_MAX reaches the kernel whole: its EINVAL.
        let len = if how == Attempt::Gated && count <= isize::MAX as usize {
            count.min(pipe_room(out_fd))
        } else {
            count
        };
        transfer_up_to(len)
    })
}

#[no_mangle]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut libc::loff_t,
    fd_out: c_int,
    off_out: *mut libc::loff_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    let ends = [
        End {
            fd: fd_in,
            interest: Interest::Read,
        },
        End {
            fd: fd_out,
            interest: Interest::Write,
        },
    ];
    // SAFETY: forwarded, with the flags given.
    transfer(&ends, flags, |flags| unsafe {
        real::splice(fd_in, off_in, fd_out, off_out, len, flags)
    })
}

#[no_mangle]
pub unsafe extern "C" fn tee(fd_in: c_int, fd_out: c_int, len: size_t, flags: c_uint) -> ssize_t {
    let ends = [
        End {
            fd: fd_in,
            interest: Interest::Read,
        },
        End {
            fd: fd_out,
            interest: Interest::Write,
        },
    ];
    // SAFETY: forwarded, with the flags given.
    transfer(&ends, flags, |flags| unsafe {
        real::tee(fd_in, fd_out, len, flags)
    })
}

#[no_mangle]
pub unsafe extern "C" fn vmsplice(
    fd: c_int,
    iov: *const iovec,
    count: size_t,
    flags: c_uint,
) -> ssize_t {
    // Into the pipe from its write end, out of it from its read end.
    // SAFETY: reads the fd's access mode.
    let mode = unsafe { real::fcntl(fd, libc::F_GETFL, 0) } & libc::O_ACCMODE;
    let interest = if mode == libc::O_RDONLY {
        Interest::Read
    } else {
        Interest::Write
    };
    // SAFETY: forwarded, with the flags given.
    transfer(&[End { fd, interest }], flags, |flags| unsafe {
        real::vmsplice(fd, iov, count, flags)
    })
}

/// splice, tee, vmsplice and sendfile from a socket: see [`blocking::transfer`].
/// `call(flags)` makes the call.
fn transfer(ends: &[End], flags: c_uint, call: impl Fn(c_uint) -> ssize_t) -> ssize_t {
    let green = enter();
    let owned = |e: &End| fdtable::get(e.fd).kind == Kind::Owned;
    if green.is_none() && !ends.iter().any(owned) {
        return call(flags);
    }
    let asked = flags & libc::SPLICE_F_NONBLOCK != 0;
    blocking::transfer(green.as_ref(), ends, asked, || {
        call(flags | libc::SPLICE_F_NONBLOCK)
    })
}

/// Bytes a pipe takes now without blocking (at least one, so a ready pipe makes progress).
fn pipe_room(fd: c_int) -> usize {
    // SAFETY: F_GETPIPE_SZ and FIONREAD only read the pipe's sizes.
    let (capacity, queued) = unsafe {
        let mut queued: c_int = 0;
        let capacity = real::fcntl(fd, libc::F_GETPIPE_SZ, 0);
        real::ioctl(
            fd,
            libc::FIONREAD as c_ulong,
            &mut queued as *mut c_int as usize,
        );
        (capacity, queued)
    };
    if capacity <= 0 {
        return libc::PIPE_BUF;
    }
    (capacity - queued).max(1) as usize
}

// Calls that create fds: the number may have meant something else before.
macro_rules! creates_fd {
    ($(fn $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            let green = enter();
            // SAFETY: forwarded unchanged.
            let fd = unsafe { real::$name($($arg),*) };
            fresh_fd(green.as_ref(), fd);
            fd
        }
    )*};
}

/// open and openat: a FIFO's open waits for the other end, on a helper thread. What the
/// look before the open found also classifies the new fd (a file replaced by something
/// else in between would only make greenify less green for it, never wrong).
fn opened(
    green: Option<Green>,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    use super::offloaded::{before_open, open_fifo, BeforeOpen};
    let found = if green.is_some() {
        before_open(dirfd, path, flags)
    } else {
        BeforeOpen::NotLooked
    };
    let fd = if found == BeforeOpen::WaitingFifo {
        open_fifo(&green, call)
    } else {
        call()
    };
    fresh_fd(green.as_ref(), fd);
    if fd >= 0 && found == BeforeOpen::NeverWaits {
        fdtable::set(fd, fdtable::Kind::Passthrough, false, false);
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: forwarded unchanged.
    opened(enter(), libc::AT_FDCWD, path, flags, || unsafe {
        real::open(path, flags, mode)
    })
}

#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: forwarded unchanged.
    opened(enter(), libc::AT_FDCWD, path, flags, || unsafe {
        real::open64(path, flags, mode)
    })
}

#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: forwarded unchanged.
    opened(enter(), dirfd, path, flags, || unsafe {
        real::openat(dirfd, path, flags, mode)
    })
}

#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: forwarded unchanged.
    opened(enter(), dirfd, path, flags, || unsafe {
        real::openat64(dirfd, path, flags, mode)
    })
}

creates_fd! {
    fn creat(path: *const c_char, mode: mode_t);
    fn creat64(path: *const c_char, mode: mode_t);
    fn __open_2(path: *const c_char, flags: c_int);
    fn __open64_2(path: *const c_char, flags: c_int);
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int);
    fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int);
    fn eventfd(initval: c_uint, flags: c_int);
    fn timerfd_create(clock: libc::clockid_t, flags: c_int);
    fn epoll_create(size: c_int);
    fn epoll_create1(flags: c_int);
    fn inotify_init();
    fn inotify_init1(flags: c_int);
    fn memfd_create(name: *const c_char, flags: c_uint);
}

#[no_mangle]
pub unsafe extern "C" fn signalfd(fd: c_int, mask: *const libc::sigset_t, flags: c_int) -> c_int {
    let green = enter();
    // SAFETY: forwarded.
    let new = unsafe { real::signalfd(fd, mask, flags) };
    if new >= 0 && new != fd {
        fresh_fd(green.as_ref(), new);
    }
    new
}
