//! Sockets: creation (owned, O_NONBLOCK underneath), accept, connect, the send and recv
//! families, and the socket timeouts greenify must honour itself.

use super::blocking::{self, ready_now, wait_for, write_all, Attempt, Op, Tried, Waits};
use super::io::{fresh_fd, iovecs_after};
use super::{enter, errno, fail, Green};
use crate::real;
use crate::runtime::fdtable::{self, Direction, Kind};
use crate::runtime::{self, Interest, Reason, Wake};
use libc::{c_int, c_uint, c_void, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t};
use rustix::fd::BorrowedFd;
use rustix::fs::OFlags;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Records a socket the program just got: owned (we made it O_NONBLOCK) when green.
fn new_socket(green: Option<&Green>, fd: c_int, user_nonblock: bool, tcp: bool) {
    if fd < 0 {
        return;
    }
    fresh_fd(green, fd);
    if green.is_some() {
        fdtable::set(fd, Kind::Owned, user_nonblock, true);
        if tcp {
            fdtable::mark_tcp(fd);
        }
    }
}

/// Whether a socket of this domain and type (with its flags) is TCP.
fn is_tcp(domain: c_int, ty: c_int) -> bool {
    ty & 0xF == libc::SOCK_STREAM && matches!(domain, libc::AF_INET | libc::AF_INET6)
}

fn nonblock_if(green: Option<&Green>) -> c_int {
    if green.is_some() {
        libc::SOCK_NONBLOCK
    } else {
        0
    }
}

fn dontwait(how: Attempt) -> c_int {
    if how == Attempt::DontWait {
        libc::MSG_DONTWAIT
    } else {
        0
    }
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let green = enter();
    // SAFETY: forwarded, with SOCK_NONBLOCK added for green threads.
    let fd = unsafe { real::socket(domain, ty | nonblock_if(green.as_ref()), protocol) };
    new_socket(
        green.as_ref(),
        fd,
        ty & libc::SOCK_NONBLOCK != 0,
        is_tcp(domain, ty),
    );
    fd
}

#[no_mangle]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> c_int {
    let green = enter();
    // SAFETY: forwarded, with SOCK_NONBLOCK added for green threads.
    let result =
        unsafe { real::socketpair(domain, ty | nonblock_if(green.as_ref()), protocol, sv) };
    if result == 0 {
        for i in 0..2 {
            // SAFETY: socketpair succeeded, so both entries are written.
            let fd = unsafe { *sv.add(i) };
            new_socket(
                green.as_ref(),
                fd,
                ty & libc::SOCK_NONBLOCK != 0,
                is_tcp(domain, ty),
            );
        }
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { accept4(fd, addr, len, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let green = enter();
    let extra = nonblock_if(green.as_ref());
    let op = Op::new(fd, Interest::Read, Reason::Accept);
    let new = blocking::run(green.as_ref(), op, |_| {
        // SAFETY: forwarded; the new socket is private, so it may be O_NONBLOCK underneath.
        unsafe { real::accept4(fd, addr, len, flags | extra) as isize }
    }) as c_int;
    let listener_is_tcp = fdtable::get(fd).is_tcp;
    new_socket(
        green.as_ref(),
        new,
        flags & libc::SOCK_NONBLOCK != 0,
        listener_is_tcp,
    );
    if new >= 0 {
        record_timeouts(new);
    }
    new
}

/// Whether `fd` is a SOCK_STREAM socket (MSG_WAITALL waits for all bytes only there).
fn is_stream(fd: c_int) -> bool {
    let mut ty: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: SO_TYPE writes one int.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut c_int).cast(),
            &mut len,
        )
    };
    r == 0 && ty == libc::SOCK_STREAM
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let green = enter();
    // SAFETY: forwarded.
    let attempt = || unsafe { real::connect(fd, addr, len) };
    let Some(info) = blocking::facts(fd) else {
        return attempt();
    };
    if info.user_nonblock {
        return attempt();
    }
    match info.kind {
        Kind::Owned => connect_waiting(green.as_ref(), fd, info.send_timeout, attempt),
        // A socket a child may share (see hooks/process/) is blocking underneath, and connect
        // takes no MSG_DONTWAIT: make it non-blocking just for this call, so the wait is
        // green, then blocking again. One that is non-blocking already connects as is.
        Kind::Gated
            if green.is_some() && info.is_socket && !blocking::description_nonblocking(fd) =>
        {
            // SAFETY: borrowed for the fcntl calls of this connect.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let Ok(status) = rustix::fs::fcntl_getfl(borrowed) else {
                return attempt();
            };
            if rustix::fs::fcntl_setfl(borrowed, status | OFlags::NONBLOCK).is_err() {
                return attempt();
            }
            let result = connect_waiting(green.as_ref(), fd, info.send_timeout, attempt);
            // rustix does not touch errno, so connect's own stays.
            let _ = rustix::fs::fcntl_setfl(borrowed, status);
            result
        }
        _ => attempt(),
    }
}

/// A blocking connect on a socket that is non-blocking underneath: start it, wait for it
/// (green, or with a real poll outside green threads), then report as natively. Under
/// SA_RESTART it goes on waiting, unless the socket has a send timeout (signal(7)), whose
/// end answers as the kernel's: EINPROGRESS, or EAGAIN on a full Unix backlog.
fn connect_waiting(
    green: Option<&Green>,
    fd: c_int,
    timeout: Option<Duration>,
    attempt: impl Fn() -> c_int,
) -> c_int {
    // The error of the latest attempt (0 before the first).
    let error = Cell::new(0);
    let mut backoff = Duration::from_micros(500);
    let waits = Waits {
        deadline: timeout.map(|t| Instant::now() + t),
        every: None,
        restarts: timeout.is_none(),
    };
    let connects = || {
        let first = error.get() == 0;
        if !first && error.get() != libc::EAGAIN && !ready_now(fd, Interest::Write) {
            return Tried::Waits(fail(libc::EINPROGRESS));
        }
        // After the first, connect once more, as the kernel's blocking connect does after
        // its wait: it reports the outcome and leaves the socket in the state a blocking
        // connect would (connected, or unconnected after a failure).
        if attempt() == 0 {
            return Tried::Done(0);
        }
        error.set(errno());
        match error.get() {
            libc::EISCONN if !first => Tried::Done(0),
            // The program's own earlier non-blocking connect is still in progress.
            libc::EALREADY if first => Tried::Done(fail(libc::EALREADY)),
            libc::EINPROGRESS | libc::EALREADY => Tried::Waits(fail(libc::EINPROGRESS)),
            libc::EAGAIN => Tried::Waits(fail(libc::EAGAIN)),
            e => Tried::Done(fail(e)),
        }
    };
    wait_for(green, waits, connects, |until| {
        if error.get() != libc::EAGAIN {
            return blocking::wait(green, fd, Interest::Write, Reason::Connect, until);
        }
        // A Unix socket whose listener's backlog is full: natively connect waits for
        // room, which epoll does not announce; retry with a growing pause.
        let pause = Instant::now() + backoff;
        backoff = (backoff * 2).min(Duration::from_millis(20));
        blocking::sleep_until(green, until.map_or(pause, |d| d.min(pause)))
    })
}

/// shutdown: a send parked on the socket must see its own SHUT_WR (epoll does not always
/// report it), so its waiters look again.
#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let green = enter();
    // SAFETY: forwarded.
    let r = unsafe { real::shutdown(fd, how) };
    if r == 0 && green.is_some() {
        runtime::fd_poke(fd);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: forwarded.
    unsafe {
        recvfrom(
            fd,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    let green = enter();
    let op = Op::new(fd, Interest::Read, Reason::Read).with_flags();
    let once = |offset: usize, how: Attempt| {
        // SAFETY: forwarded; offset < n keeps the pointer inside the program's buffer.
        unsafe {
            real::recvfrom(
                fd,
                buf.cast::<u8>().add(offset).cast(),
                n - offset,
                flags | dontwait(how),
                addr,
                len,
            )
        }
    };
    // The error queue never blocks: empty, it answers EAGAIN at once.
    if flags & (libc::MSG_DONTWAIT | libc::MSG_ERRQUEUE) != 0 {
        return once(0, Attempt::Plain);
    }
    let op = if flags & (libc::MSG_PEEK | libc::MSG_OOB | libc::MSG_WAITALL) == 0 {
        op.reading(n)
    } else if flags & libc::MSG_OOB == 0 {
        op.looking(n)
    } else {
        op
    };
    let first = blocking::run(green.as_ref(), op, |how| once(0, how));
    let stream_wait_all = flags & libc::MSG_WAITALL != 0 && is_stream(fd);
    if stream_wait_all && flags & libc::MSG_PEEK != 0 && green.is_some() {
        // Peeking for all n bytes: look again each time more data arrives. Not through
        // blocking::wait_for: once some data is there, any other wake ends the call with it.
        let mut seen = first;
        while seen > 0 && (seen as usize) < n && blocking::blocks(fd) {
            if runtime::wait_fd(fd, Interest::Read, Reason::Read, None) != Wake::Ready {
                break;
            }
            let again = once(0, Attempt::DontWait);
            if again < 0 && errno() == libc::EAGAIN {
                continue;
            }
            seen = again;
        }
        return seen;
    }
    let wait_all = stream_wait_all && flags & libc::MSG_PEEK == 0;
    if !wait_all || first <= 0 || first as usize >= n || !blocking::blocks(fd) {
        return first;
    }
    // MSG_WAITALL on a blocking stream: natively the call waits for all n bytes.
    let mut got = first as usize;
    while got < n {
        let more = blocking::run(green.as_ref(), op, |how| once(got, how));
        if more <= 0 {
            break;
        }
        got += more as usize;
    }
    got as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let green = enter();
    let op = Op::new(fd, Interest::Read, Reason::Read)
        .with_flags()
        .receiving_into(msg);
    // The error queue never blocks, as in recvfrom.
    if flags & (libc::MSG_DONTWAIT | libc::MSG_ERRQUEUE) != 0 {
        // SAFETY: forwarded.
        return unsafe { real::recvmsg(fd, msg, flags) };
    }
    blocking::run(green.as_ref(), op, |how| {
        // SAFETY: forwarded.
        unsafe { real::recvmsg(fd, msg, flags | dontwait(how)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    let green = enter();
    let op = Op::new(fd, Interest::Read, Reason::Read).with_flags();
    if flags & libc::MSG_DONTWAIT != 0 || green.is_none() {
        // SAFETY: forwarded.
        return unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) };
    }
    // The kernel checks the timeout before it receives anything: unreadable is EFAULT,
    // out of range EINVAL.
    let timeout = if timeout.is_null() {
        None
    } else {
        match super::memory::read(timeout) {
            None => return super::fail(libc::EFAULT),
            Some(t) if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) => {
                return super::fail(libc::EINVAL)
            }
            Some(t) => Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32)),
        }
    };
    let batch = |from: c_uint, extra: c_int| {
        // SAFETY: forwarded; from < vlen keeps the pointer inside the program's array.
        unsafe {
            real::recvmmsg(
                fd,
                msgs.add(from as usize),
                vlen - from,
                flags | extra,
                std::ptr::null_mut(),
            ) as isize
        }
    };
    let first = blocking::run(green.as_ref(), op, |how| batch(0, dontwait(how)));
    if first <= 0 || flags & libc::MSG_WAITFORONE != 0 || !blocking::blocks(fd) {
        return first as c_int;
    }
    // Natively a blocking recvmmsg waits for vlen messages, checking `timeout` after each;
    // any other wake ends it with the messages it has (so not blocking::wait_for).
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut got = first as c_uint;
    while got < vlen {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let more = batch(got, libc::MSG_DONTWAIT);
        if more > 0 {
            got += more as c_uint;
            continue;
        }
        if more < 0 && errno() != libc::EAGAIN {
            break;
        }
        if runtime::wait_fd(fd, Interest::Read, Reason::Read, deadline) != Wake::Ready {
            break;
        }
    }
    got as c_int
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: forwarded.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    let green = enter();
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: forwarded.
        return unsafe { real::sendto(fd, buf, n, flags, addr, len) };
    }
    let op = Op::new(fd, Interest::Write, Reason::Write).with_flags();
    write_all(
        green.as_ref(),
        op,
        || n,
        |how, offset, cap| {
            let chunk = (n - offset).min(cap);
            // SAFETY: forwarded; offset + chunk stays inside the program's buffer.
            unsafe {
                real::sendto(
                    fd,
                    buf.cast::<u8>().add(offset).cast(),
                    chunk,
                    flags | dontwait(how),
                    addr,
                    len,
                )
            }
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let green = enter();
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: forwarded.
        return unsafe { send_noting_fds(fd, msg, flags) };
    }
    // The first attempt passes the program's header as it is (the kernel checks it: EFAULT,
    // EMSGSIZE); the rest of a partly sent message needs a copy of the header and iovecs,
    // read safely, and only then.
    let copy = std::cell::OnceCell::new();
    let copied = || {
        copy.get_or_init(|| {
            super::memory::read(msg)
                .filter(|h| h.msg_iovlen <= libc::UIO_MAXIOV as usize)
                .and_then(|h| Some((h, super::memory::read_slice(h.msg_iov, h.msg_iovlen)?)))
        })
        .as_ref()
    };
    let total = || {
        copied().map_or(0, |(_, iovecs)| {
            iovecs
                .iter()
                .fold(0usize, |t, v| t.saturating_add(v.iov_len))
        })
    };
    let op = Op::new(fd, Interest::Write, Reason::Write).with_flags();
    write_all(green.as_ref(), op, total, |how, offset, cap| {
        if offset == 0 && how != Attempt::Gated {
            // SAFETY: forwarded.
            return unsafe { send_noting_fds(fd, msg, flags | dontwait(how)) };
        }
        let Some((header, iovecs)) = copied() else {
            // Unreadable now (it was sent from at first): the kernel's answer.
            return fail(libc::EFAULT);
        };
        // The rest of a partially sent stream message: same header, fewer bytes, and the
        // ancillary data (already sent with the first part) left out.
        // SAFETY: re-slices our copy of the program's iovecs.
        let mut rest = unsafe { iovecs_after(iovecs.as_ptr(), iovecs.len(), offset) };
        let mut budget = cap;
        rest.retain_mut(|v| {
            let keep = budget > 0;
            v.iov_len = v.iov_len.min(budget);
            budget -= v.iov_len;
            keep
        });
        let mut part = *header;
        part.msg_iov = rest.as_mut_ptr();
        part.msg_iovlen = rest.len();
        if offset > 0 {
            part.msg_control = std::ptr::null_mut();
            part.msg_controllen = 0;
        }
        // SAFETY: `part` points into the program's buffers.
        unsafe { send_noting_fds(fd, &part, flags | dontwait(how)) }
    })
}

/// The real sendmsg. Ancillary data sent may carry fds (SCM_RIGHTS), whose descriptions
/// another process holds from then on (see `fdtable::set_private`).
///
/// # Safety
/// sendmsg's: `msg` is a header the kernel may read (it is read again here only if the
/// call succeeded, so read by the kernel).
unsafe fn send_noting_fds(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: per the caller.
    let sent = unsafe { real::sendmsg(fd, msg, flags) };
    // SAFETY: the kernel just read the header to send it.
    if sent >= 0 && unsafe { (*msg).msg_controllen } > 0 {
        fdtable::forget_private();
    }
    sent
}

#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
) -> c_int {
    let green = enter();
    // Each message may carry fds (see `send_noting_fds`): not worth reading them for.
    fdtable::forget_private();
    if flags & libc::MSG_DONTWAIT != 0 || green.is_none() {
        // SAFETY: forwarded.
        return unsafe { real::sendmmsg(fd, msgs, vlen, flags) };
    }
    let op = Op::new(fd, Interest::Write, Reason::Write).with_flags();
    // As a blocking write: until every message is sent (or an error after some were).
    write_all(
        green.as_ref(),
        op,
        || vlen as usize,
        |how, sent, cap| {
            let left = (vlen as usize - sent).min(cap);
            // SAFETY: forwarded; sent < vlen keeps the pointer inside the program's array.
            unsafe {
                real::sendmmsg(fd, msgs.add(sent), left as c_uint, flags | dontwait(how)) as isize
            }
        },
    ) as c_int
}

/// A socket timeout as the kernel keeps it: {0, 0} is none; a negative one means "do
/// not wait" (kept as one nanosecond).
fn timeout_of(tv: libc::timeval) -> Option<Duration> {
    if tv.tv_sec < 0 {
        return Some(Duration::from_nanos(1));
    }
    let timeout =
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64);
    (!timeout.is_zero()).then_some(timeout)
}

/// Some socket timeout was ever set (else accepted sockets need not be asked for theirs).
static TIMEOUTS_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The timeouts the kernel gave an accepted socket (TCP copies the listener's at the
/// handshake; AF_UNIX starts without).
fn record_timeouts(fd: c_int) {
    if !TIMEOUTS_USED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    for (name, direction) in [
        (libc::SO_RCVTIMEO, Direction::Recv),
        (libc::SO_SNDTIMEO, Direction::Send),
    ] {
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
        // SAFETY: reads one timeval into a local.
        let r = unsafe {
            real::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut tv as *mut libc::timeval).cast(),
                &mut len,
            )
        };
        if r == 0 {
            fdtable::set_timeout(fd, direction, timeout_of(tv));
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let _green = enter();
    // SAFETY: forwarded.
    let result = unsafe { real::getsockopt(fd, level, name, value, len) };
    if result == 0 && level == libc::SOL_SOCKET && name == libc::SO_ERROR {
        // The kernel checked the arguments and wrote an int: the error greenify kept
        // for the socket (see blocking::write_all) is the one it would have shown.
        let slot = value.cast::<c_int>();
        // SAFETY: getsockopt(SO_ERROR) succeeded, so `value` holds one writable int.
        if unsafe { *slot } == 0 {
            if let Some(error) = fdtable::take_error(fd) {
                // SAFETY: as above.
                unsafe { *slot = error };
            }
        }
    }
    result
}

/// Some socket was ever set to linger (else closes need not ask).
static LINGER_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether closing `fd` may linger: a socket with SO_LINGER on and a time to wait (its
/// close then blocks until the data is sent or the time passes). Accepted sockets
/// inherit it from their listener, so ask the kernel.
pub fn lingers(fd: c_int) -> bool {
    if !LINGER_USED.load(std::sync::atomic::Ordering::Relaxed) || !fdtable::get(fd).is_socket {
        return false;
    }
    let mut linger = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = std::mem::size_of::<libc::linger>() as socklen_t;
    // SAFETY: reads one linger into a local.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut linger as *mut libc::linger).cast(),
            &mut len,
        )
    };
    r == 0 && linger.l_onoff != 0 && linger.l_linger > 0
}

// SO_RCVTIMEO_NEW / SO_SNDTIMEO_NEW (64-bit time) share the timeval layout on x86_64.
const SO_RCVTIMEO_NEW: c_int = 66;
const SO_SNDTIMEO_NEW: c_int = 67;

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    let _green = enter();
    // SAFETY: forwarded.
    let result = unsafe { real::setsockopt(fd, level, name, value, len) };
    if result == 0
        && level == libc::SOL_SOCKET
        && name == libc::SO_LINGER
        && len as usize >= std::mem::size_of::<libc::linger>()
    {
        // SAFETY: the kernel accepted it, so `value` holds a linger.
        let linger = unsafe { *value.cast::<libc::linger>() };
        if linger.l_onoff != 0 && linger.l_linger > 0 {
            LINGER_USED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let direction = match name {
        libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => Direction::Recv,
        libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => Direction::Send,
        _ => return result,
    };
    if result == 0
        && level == libc::SOL_SOCKET
        && len as usize >= std::mem::size_of::<libc::timeval>()
    {
        // SAFETY: the kernel accepted it, so `value` holds a timeval.
        let tv = unsafe { *value.cast::<libc::timeval>() };
        fdtable::set_timeout(fd, direction, timeout_of(tv));
        TIMEOUTS_USED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    result
}
