//! The program's action for a signal whose handler greenify keeps installed in its place
//! (the preemption signal, and SIGSYS while escapes are watched): `sigaction` shows and
//! records the program's action here, and greenify's handler runs it for a signal that is
//! not greenify's own.

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

pub struct ProgramAction {
    /// As installed at kernel level: a function of the program's is signal.rs's
    /// trampoline by then.
    handler: AtomicUsize,
    flags: AtomicI32,
    /// The 64 signals the kernel uses.
    mask: AtomicU64,
}

/// One delivery of the program's action.
pub struct Delivery {
    pub handler: usize,
    pub flags: i32,
    pub mask: u64,
}

impl ProgramAction {
    pub const fn new() -> Self {
        ProgramAction {
            handler: AtomicUsize::new(libc::SIG_DFL),
            flags: AtomicI32::new(0),
            mask: AtomicU64::new(0),
        }
    }

    /// Puts the program's action in `current`, as `sigaction` reports it.
    pub fn show(&self, current: &mut libc::sigaction) {
        current.sa_sigaction = self.handler.load(SeqCst);
        current.sa_flags = self.flags.load(SeqCst);
        // SAFETY: a sigset_t starts with the 64 bits the kernel uses; the rest stays empty.
        unsafe {
            libc::sigemptyset(&mut current.sa_mask);
            *(&mut current.sa_mask as *mut libc::sigset_t).cast::<u64>() = self.mask.load(SeqCst);
        }
    }

    /// Records the action the program set.
    pub fn record(&self, action: &libc::sigaction) {
        // SAFETY: a sigset_t starts with the 64 bits the kernel uses.
        let mask = unsafe { *(&action.sa_mask as *const libc::sigset_t).cast::<u64>() };
        self.mask.store(mask, SeqCst);
        self.flags.store(action.sa_flags, SeqCst);
        self.handler.store(action.sa_sigaction, SeqCst);
    }

    /// The action for one delivery; a SA_RESETHAND handler goes back to SIG_DFL, as the
    /// kernel does when it delivers.
    pub fn deliver(&self) -> Delivery {
        let handler = self.handler.load(SeqCst);
        let flags = self.flags.load(SeqCst);
        let is_function = ![libc::SIG_DFL, libc::SIG_IGN, libc::SIG_ERR].contains(&handler);
        if is_function && flags & libc::SA_RESETHAND != 0 {
            self.handler.store(libc::SIG_DFL, SeqCst);
        }
        Delivery {
            handler,
            flags,
            mask: self.mask.load(SeqCst),
        }
    }
}
