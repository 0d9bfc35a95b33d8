//! stdio over sockets and pipes: glibc's stdio reads and writes through its internal
//! read/write, which no hook sees, so `fgets` on an fdopen'ed socket would block the
//! whole OS thread. `fdopen` on a socket or pipe (and greenify's `popen`) returns a
//! `fopencookie` stream instead, whose reads and writes go through greenify's own
//! `read`/`write` and so park. `fileno` still gives the fd.
//!
//! Stream locks: `flockfile` sections of green threads exclude each other with a green
//! recursive mutex per stream, so a thread that waits for one parks. glibc's own lock of
//! the stream is still taken, and while a green thread that holds it (in a `flockfile`
//! section, or inside a green stream's read or write) is parked, it is lent out (see
//! `runtime::tcb::LentLock`): another green thread's `printf` to that stream then goes
//! ahead instead of hanging the OS thread in glibc's lock.

use super::blocking;
use super::io;
use crate::real;
use crate::runtime::fdtable::Kind;
use crate::runtime::{sched, sync};
use libc::{c_char, c_int, c_void, size_t, ssize_t};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex as StdMutex;

/// glibc's `cookie_io_functions_t`.
#[repr(C)]
struct CookieFunctions {
    read: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, size_t) -> ssize_t>,
    write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, size_t) -> ssize_t>,
    seek: Option<unsafe extern "C" fn(*mut c_void, *mut i64, c_int) -> c_int>,
    close: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

extern "C" {
    fn fopencookie(
        cookie: *mut c_void,
        mode: *const c_char,
        functions: CookieFunctions,
    ) -> *mut libc::FILE;
}

/// Offset of `_fileno` in glibc's `struct _IO_FILE` on x86_64 (after the flags word and
/// eleven pointers, `_markers` and `_chain`).
const FILENO_OFFSET: usize = 112;
/// Offset of `_lock` (a pointer to the stream's `_IO_lock_t`).
const LOCK_OFFSET: usize = 136;

/// The address of a stream's glibc lock.
///
/// # Safety
/// `file` is an open stream.
unsafe fn lock_of(file: *mut libc::FILE) -> usize {
    // SAFETY: per the caller.
    unsafe { *file.cast::<u8>().add(LOCK_OFFSET).cast::<usize>() }
}

/// A green stream's cookie: its fd, and the stream (known once fopencookie returned).
struct Cookie {
    fd: c_int,
    file: AtomicUsize,
}

/// Runs a green stream's I/O, which may park while glibc holds the stream's lock for
/// this thread: the lock is lent meanwhile.
///
/// # Safety
/// `cookie` is one of ours.
unsafe fn stream_io(cookie: *mut c_void, io: impl FnOnce(c_int) -> ssize_t) -> ssize_t {
    // SAFETY: per the caller.
    let cookie = unsafe { &*(cookie as *const Cookie) };
    let file = cookie.file.load(Relaxed) as *mut libc::FILE;
    let lent = !file.is_null() && sched::is_active();
    // SAFETY: the stream is open while glibc calls its functions.
    let lock = if lent { unsafe { lock_of(file) } } else { 0 };
    if lent {
        sched::stdio_lock(lock, true);
    }
    let result = io(cookie.fd);
    if lent {
        sched::stdio_lock(lock, false);
    }
    result
}

unsafe extern "C" fn cookie_read(cookie: *mut c_void, buf: *mut c_char, size: size_t) -> ssize_t {
    // SAFETY: glibc passes its buffer of `size` bytes and our cookie.
    unsafe { stream_io(cookie, |fd| io::read(fd, buf.cast(), size)) }
}

unsafe extern "C" fn cookie_write(
    cookie: *mut c_void,
    buf: *const c_char,
    size: size_t,
) -> ssize_t {
    // SAFETY: as above. glibc wants a count, never a negative value.
    unsafe { stream_io(cookie, |fd| io::write(fd, buf.cast(), size).max(0)) }
}

unsafe extern "C" fn cookie_close(cookie: *mut c_void) -> c_int {
    // SAFETY: our cookie, made by Box::into_raw, freed once here with its stream.
    let cookie = unsafe { Box::from_raw(cookie as *mut Cookie) };
    // SAFETY: the stream owns its fd.
    unsafe { io::close(cookie.fd) }
}

/// A stdio stream on `fd` whose I/O goes through greenify's hooks.
///
/// # Safety
/// `fd` is an open fd the stream takes ownership of; `mode` is a valid fopen mode.
pub unsafe fn green_stream_mode(fd: c_int, mode: *const c_char) -> *mut libc::FILE {
    let functions = CookieFunctions {
        read: Some(cookie_read),
        write: Some(cookie_write),
        seek: None,
        close: Some(cookie_close),
    };
    let cookie = Box::into_raw(Box::new(Cookie {
        fd,
        file: AtomicUsize::new(0),
    }));
    // SAFETY: the cookie lives until the stream's close; the functions for ever.
    let file = unsafe { fopencookie(cookie.cast(), mode, functions) };
    if file.is_null() {
        // SAFETY: not handed to a stream.
        drop(unsafe { Box::from_raw(cookie) });
        return file;
    }
    // SAFETY: glibc marks cookie streams with _fileno -2; the fd makes fileno() work
    // and changes nothing else for a cookie stream (its I/O uses the functions).
    unsafe {
        *file.cast::<u8>().add(FILENO_OFFSET).cast::<c_int>() = fd;
        (*cookie).file.store(file as usize, Relaxed);
    }
    file
}

/// [`green_stream_mode`] for popen: "r" or "w".
///
/// # Safety
/// As for [`green_stream_mode`].
pub unsafe fn green_stream(fd: c_int, reading: bool) -> *mut libc::FILE {
    let mode = if reading { c"r" } else { c"w" };
    // SAFETY: forwarded.
    unsafe { green_stream_mode(fd, mode.as_ptr()) }
}

#[no_mangle]
pub unsafe extern "C" fn fdopen(fd: c_int, mode: *const c_char) -> *mut libc::FILE {
    let green = super::enter();
    if crate::runtime::reactor::hidden(fd) {
        // Not the program's fd (as in close).
        super::set_errno(libc::EBADF);
        return std::ptr::null_mut();
    }
    let parks = green.is_some()
        && blocking::facts(fd)
            .is_some_and(|i| i.is_socket || (i.kind == Kind::Gated && !is_tty(fd)));
    drop(green);
    if !parks {
        // SAFETY: forwarded.
        return unsafe { real::fdopen(fd, mode) };
    }
    // SAFETY: forwarded; glibc's fdopen reads the mode string as well.
    if let Err(e) = unsafe { fit_mode(fd, mode) } {
        super::set_errno(e);
        return std::ptr::null_mut();
    }
    // SAFETY: the program hands the fd to the stream.
    unsafe { green_stream_mode(fd, mode) }
}

/// What glibc's fdopen checks before it makes a stream, in its order: the mode is valid
/// (else EINVAL), the fd is open, the mode asks only for the access the fd has (else
/// EINVAL); and "a" sets O_APPEND on the fd if it lacks it.
///
/// # Safety
/// `mode` is a NUL-terminated string (glibc's fdopen reads it too).
unsafe fn fit_mode(fd: c_int, mode: *const c_char) -> Result<(), c_int> {
    // SAFETY: the caller's promise; glibc looks at the first byte and up to four more,
    // stopping at the NUL or at a '+'.
    let mode = unsafe { std::ffi::CStr::from_ptr(mode) }.to_bytes();
    let Some(&first) = mode.first() else {
        return Err(libc::EINVAL);
    };
    let plus = mode[1..].iter().take(4).any(|&c| c == b'+');
    let (read, write) = match first {
        b'r' => (true, plus),
        b'w' | b'a' => (plus, true),
        _ => return Err(libc::EINVAL),
    };
    // SAFETY: forwarded fcntl on the program's fd.
    let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return Err(super::errno());
    }
    let access = flags & libc::O_ACCMODE;
    if (access == libc::O_RDONLY && write) || (access == libc::O_WRONLY && read) {
        return Err(libc::EINVAL);
    }
    if first == b'a' && flags & libc::O_APPEND == 0 {
        // SAFETY: forwarded fcntl on the program's fd.
        if unsafe { real::fcntl(fd, libc::F_SETFL, (flags | libc::O_APPEND) as usize) } < 0 {
            return Err(super::errno());
        }
    }
    Ok(())
}

fn is_tty(fd: c_int) -> bool {
    // SAFETY: borrowed for one ioctl.
    rustix::termios::isatty(unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) })
}

/// The green recursive mutex of a stream's `flockfile` sections (made on first use, kept
/// for the stream's address).
fn section_lock(file: *mut libc::FILE) -> &'static sync::Mutex {
    static LOCKS: StdMutex<BTreeMap<usize, usize>> = StdMutex::new(BTreeMap::new());
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let mutex = *locks.entry(file as usize).or_insert_with(|| {
        // SAFETY: a zeroed pthread_mutex_t is a valid (normal) mutex; leaked, so the
        // reference below lives for ever.
        let raw = Box::into_raw(Box::new(unsafe {
            std::mem::zeroed::<libc::pthread_mutex_t>()
        }));
        // SAFETY: as above.
        unsafe { sync::Mutex::at(raw) }.init(sync::MUTEX_RECURSIVE);
        raw as usize
    });
    // SAFETY: made above, never freed.
    unsafe { sync::Mutex::at(mutex as *mut libc::pthread_mutex_t) }
}

#[no_mangle]
pub unsafe extern "C" fn flockfile(file: *mut libc::FILE) {
    let green = super::enter();
    if green.is_some() {
        // A recursive mutex: it fails only on misuse, which glibc does not check either.
        let _ = section_lock(file).lock(super::caller(&green), sync::LockWait::Block);
    }
    // SAFETY: forwarded.
    unsafe { real::flockfile(file) };
    if green.is_some() {
        // SAFETY: the program's open stream.
        sched::stdio_lock(unsafe { lock_of(file) }, true);
    }
}

#[no_mangle]
pub unsafe extern "C" fn ftrylockfile(file: *mut libc::FILE) -> c_int {
    let green = super::enter();
    let Some(_) = green else {
        // SAFETY: forwarded.
        return unsafe { real::ftrylockfile(file) };
    };
    let section = section_lock(file);
    let caller = super::caller(&green);
    if section.lock(caller, sync::LockWait::Try).is_err() {
        return -1;
    }
    // SAFETY: forwarded.
    if unsafe { real::ftrylockfile(file) } != 0 {
        let _ = section.unlock(caller);
        return -1;
    }
    // SAFETY: the program's open stream.
    sched::stdio_lock(unsafe { lock_of(file) }, true);
    0
}

#[no_mangle]
pub unsafe extern "C" fn funlockfile(file: *mut libc::FILE) {
    let green = super::enter();
    if green.is_some() {
        // SAFETY: the program's open stream.
        sched::stdio_lock(unsafe { lock_of(file) }, false);
    }
    // SAFETY: forwarded.
    unsafe { real::funlockfile(file) };
    if green.is_some() {
        // Not held (misuse): glibc does not check either.
        let _ = section_lock(file).unlock(super::caller(&green));
    }
}
