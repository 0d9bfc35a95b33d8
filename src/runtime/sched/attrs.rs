//! What the program reads and sets on a thread by its handle: its name, detach state and
//! stack bounds, and the current thread's pthread_setspecific values.

use super::handle::Handle;
use super::with;
use crate::runtime::keys::Values;
use rustix::io::Errno;

/// Runs `f` on the current green thread's pthread_setspecific values.
pub fn specific<R>(f: impl FnOnce(&mut Values) -> R) -> R {
    with(|s| {
        let me = s.current() as usize;
        f(&mut s.threads[me].specific)
    })
}

/// Sets a thread's name (at most 15 bytes; the caller checks the length).
pub fn set_name(handle: Handle, name: &[u8]) -> Result<(), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        let t = &mut s.threads[tid as usize];
        t.name = [0; 16];
        let n = name.len().min(15);
        t.name[..n].copy_from_slice(&name[..n]);
        let name = t.name;
        // A thread running now (this one, or one on another worker) is named in its
        // worker's stack record too, which the fault handler reads.
        for &worker in &s.all_workers {
            // SAFETY: worker records are never freed; `current` is written in sections
            // only (this one holds the scheduler), the stack record is atomics.
            unsafe {
                if std::ptr::addr_of!((*worker).current).read() == tid {
                    (*worker).running_stack.renamed(&name);
                }
            }
        }
        Ok(())
    })
}

/// A thread's name, NUL-terminated.
pub fn name(handle: Handle) -> Result<[u8; 16], Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].name)
    })
}

/// Whether a thread is detached.
pub fn is_detached(handle: Handle) -> Result<bool, Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].detached)
    })
}

/// (lowest address, size) of a thread's usable stack.
pub fn stack_bounds(handle: Handle) -> Result<(usize, usize), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        Ok(s.threads[tid as usize].stack)
    })
}
