//! Reading and writing the program's memory without trusting it: a bad pointer must give
//! the program EFAULT (as the real call would), never crash greenify. process_vm_readv and
//! process_vm_writev on our own process copy through the kernel, which reports a bad
//! address instead of faulting.

use std::mem::{size_of, MaybeUninit};

/// Copies `n` values from the program's memory at `ptr`, or None if it is not readable.
pub fn read_slice<T: Copy>(ptr: *const T, n: usize) -> Option<Vec<T>> {
    let bytes = n.checked_mul(size_of::<T>())?;
    let mut out: Vec<MaybeUninit<T>> = Vec::with_capacity(n);
    if bytes == 0 {
        return Some(Vec::new());
    }
    if ptr.is_null() {
        return None;
    }
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: bytes,
    };
    let remote = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: bytes,
    };
    let Some(copied) = through_kernel(&local, &remote, Direction::Read) else {
        // Forbidden here (a seccomp profile): trust the pointer, as libc itself would.
        // SAFETY: the program passed this pointer for `n` values.
        return Some(unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec());
    };
    if copied != bytes as isize {
        return None;
    }
    // SAFETY: the kernel initialised all `bytes` bytes.
    unsafe { out.set_len(n) };
    // SAFETY: MaybeUninit<T> and T have the same layout, and every element is initialised.
    Some(unsafe { std::mem::transmute::<Vec<MaybeUninit<T>>, Vec<T>>(out) })
}

/// Copies one value from the program's memory, or None if it is not readable.
pub fn read<T: Copy>(ptr: *const T) -> Option<T> {
    read_slice(ptr, 1).map(|v| v[0])
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
