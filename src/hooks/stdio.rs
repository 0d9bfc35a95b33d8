//! stdio over sockets and pipes: glibc's stdio reads and writes through its internal
//! read/write, which no hook sees, so `fgets` on an fdopen'ed socket would block the
//! whole OS thread. `fdopen` on a socket or pipe (and greenify's `popen`) returns a
//! `fopencookie` stream instead, whose reads and writes go through greenify's own
//! `read`/`write` and so park. `fileno` still gives the fd.

use super::blocking;
use super::io;
use crate::real;
use crate::runtime::fdtable::Kind;
use libc::{c_char, c_int, c_void, size_t, ssize_t};

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

unsafe extern "C" fn cookie_read(cookie: *mut c_void, buf: *mut c_char, size: size_t) -> ssize_t {
    // SAFETY: glibc passes its buffer of `size` bytes; the cookie is our fd.
    unsafe { io::read(cookie as usize as c_int, buf.cast(), size) }
}

unsafe extern "C" fn cookie_write(
    cookie: *mut c_void,
    buf: *const c_char,
    size: size_t,
) -> ssize_t {
    // SAFETY: as above. glibc wants a count, never a negative value.
    unsafe { io::write(cookie as usize as c_int, buf.cast(), size) }.max(0)
}

unsafe extern "C" fn cookie_close(cookie: *mut c_void) -> c_int {
    // SAFETY: the stream owns its fd.
    unsafe { io::close(cookie as usize as c_int) }
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
    // SAFETY: the cookie is the fd itself; the functions stay valid for ever.
    let file = unsafe { fopencookie(fd as usize as *mut c_void, mode, functions) };
    if !file.is_null() {
        // SAFETY: glibc marks cookie streams with _fileno -2; the fd makes fileno() work
        // and changes nothing else for a cookie stream (its I/O uses the functions).
        unsafe { *file.cast::<u8>().add(FILENO_OFFSET).cast::<c_int>() = fd };
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
    if crate::runtime::reactor::is_internal(fd) {
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
