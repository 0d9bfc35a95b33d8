//! Reading and writing the program's memory without trusting it: a bad pointer must give
//! the program EFAULT (as the real call would), never crash greenify. process_vm_readv and
//! process_vm_writev on our own process copy through the kernel, which reports a bad
//! address instead of faulting.

use std::mem::{size_of, MaybeUninit};

/// Copies `n` values from the program's memory at `ptr`, or None if it is not readable.
pub fn read_slice<T: Copy>(ptr: *const T, n: usize) -> Option<Vec<T>> {
    let bytes = n.checked_mul(size_of::<T>())?;
    if bytes == 0 {
        return Some(Vec::new());
    }
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(n);
    copy_in(ptr, out.as_mut_ptr().cast(), bytes)?;
    // SAFETY: copy_in initialised all `bytes` bytes.
    unsafe { out.set_len(n) };
    // SAFETY: MaybeUninit<T> and T have the same layout, and every element is initialised.
    Some(unsafe { std::mem::transmute::<Vec<MaybeUninit<T>>, Vec<T>>(out) })
}

/// Copies one value from the program's memory, or None if it is not readable.
/// Allocates nothing: hooks read their arguments with it while the program's own malloc
/// may be what called them (tcmalloc's spin lock sleeps in nanosleep).
pub fn read<T: Copy>(ptr: *const T) -> Option<T> {
    let mut out = MaybeUninit::<T>::uninit();
    copy_in(ptr, out.as_mut_ptr().cast(), size_of::<T>())?;
    // SAFETY: copy_in initialised all its bytes.
    Some(unsafe { out.assume_init() })
}

/// Copies `bytes` bytes from the program's memory at `ptr` to `dst`, or None if they are
/// not readable.
fn copy_in<T>(ptr: *const T, dst: *mut u8, bytes: usize) -> Option<()> {
    if bytes == 0 {
        return Some(());
    }
    if ptr.is_null() {
        return None;
    }
    let local = libc::iovec {
        iov_base: dst.cast(),
        iov_len: bytes,
    };
    let remote = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: bytes,
    };
    let Some(copied) = through_kernel(&local, &remote, Direction::Read) else {
        // Forbidden here (a seccomp profile): trust the pointer, as libc itself would.
        // SAFETY: the program passed this pointer for `bytes` bytes; `dst` has room for them.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), dst, bytes) };
        return Some(());
    };
    (copied == bytes as isize).then_some(())
}

/// Copies `bytes` into the program's memory at `ptr`; false if it is not writable.
pub fn write_bytes(ptr: *mut u8, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if ptr.is_null() {
        return false;
    }
    let local = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: ptr.cast(),
        iov_len: bytes.len(),
    };
    let Some(copied) = through_kernel(&local, &remote, Direction::Write) else {
        // Forbidden here (a seccomp profile): trust the pointer, as libc itself would.
        // SAFETY: the program passed this pointer for `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        return true;
    };
    copied == bytes.len() as isize
}

enum Direction {
    Read,
    Write,
}

/// One process_vm_readv (remote to local) or process_vm_writev (local to remote) on our
/// own process: the bytes copied, or -1 for a bad address; None if the calls are
/// forbidden here. errno is left as it was.
fn through_kernel(
    local: &libc::iovec,
    remote: &libc::iovec,
    direction: Direction,
) -> Option<isize> {
    let saved = super::errno();
    // SAFETY: `local` is our own buffer of its length; the kernel copies to or from
    // `remote` (ours too) and reports EFAULT rather than faulting.
    let copied = unsafe {
        match direction {
            Direction::Read => libc::process_vm_readv(libc::getpid(), local, 1, remote, 1, 0),
            Direction::Write => libc::process_vm_writev(libc::getpid(), local, 1, remote, 1, 0),
        }
    };
    let error = super::errno();
    super::set_errno(saved);
    if copied < 0 && matches!(error, libc::EPERM | libc::ENOSYS) {
        return None;
    }
    Some(copied)
}

/// A NUL-terminated string of at most `max` bytes (without the NUL) from the program's
/// memory, as the kernel reads one (strncpy_from_user): None if its first bytes are not
/// readable.
pub fn read_c_string(ptr: *const u8, max: usize) -> Option<Vec<u8>> {
    // One copy normally; byte by byte only if the string ends right before unreadable
    // memory.
    let mut bytes = read_slice(ptr, max + 1).or_else(|| {
        let mut v = Vec::new();
        for i in 0..=max {
            // SAFETY: only an address computation; the read itself is checked.
            match read(unsafe { ptr.add(i) }) {
                Some(b) => {
                    v.push(b);
                    if b == 0 {
                        break;
                    }
                }
                None if i > 0 => break,
                None => return None,
            }
        }
        Some(v)
    })?;
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(max.min(bytes.len()));
    bytes.truncate(end);
    Some(bytes)
}
