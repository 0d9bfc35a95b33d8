//! Greenify's per-OS-thread words, kept where a switch of the thread pointer carries them.
//!
//! When every green thread has its own TCB (tcb.rs), the thread pointer (the FS base on
//! x86_64) names the green thread, not the OS thread, and a Rust `thread_local!` would be
//! per green thread. So greenify keeps its own state in two words of glibc's `tcbhead_t`
//! that glibc leaves unused (`__unused_vgetcpu_cache`, at `%fs:0x38` and `%fs:0x40`), and
//! writes them into every TCB it makes: switching the thread pointer switches them too.
//!
//! - [`sched_word`] (`%fs:0x40`): the OS thread's scheduler, [`UNDECIDED`] (0) on an OS
//!   thread that never made a hooked call, or [`NO_SCHEDULER`].
//! - [`thread_word`] (`%fs:0x38`): the running green thread's id + 1 (0: none).
//!
//! The TCB self-check (tcb.rs) verifies both words are 0 in glibc's TCBs before the first
//! write; elsewhere than x86_64 they are thread-locals (no TCB per green thread there).

/// `sched_word` of an OS thread that has made no hooked call yet.
pub const UNDECIDED: usize = 0;
/// `sched_word` of an OS thread that runs no scheduler (its calls pass through).
pub const NO_SCHEDULER: usize = 1;

#[cfg(target_arch = "x86_64")]
mod words {
    /// `tcbhead_t.__unused_vgetcpu_cache[0]`: the running green thread.
    pub const THREAD: usize = 0x38;
    /// `tcbhead_t.__unused_vgetcpu_cache[1]`: the scheduler.
    pub const SCHED: usize = 0x40;

    #[inline(always)]
    pub fn read<const OFFSET: usize>() -> usize {
        let value: usize;
        // SAFETY: every glibc thread's %fs points at its TCB, whose first 0x48 bytes are
        // tcbhead_t; the two words read here are ours (see the module doc).
        unsafe {
            std::arch::asm!("mov {}, fs:[{off}]", out(reg) value, off = const OFFSET,
                options(pure, nostack, readonly, preserves_flags));
        }
        value
    }

    #[inline(always)]
    pub fn write<const OFFSET: usize>(value: usize) {
        // SAFETY: as in `read`; the word is unused by glibc and ours to write.
        unsafe {
            std::arch::asm!("mov fs:[{off}], {}", in(reg) value, off = const OFFSET,
                options(nostack, preserves_flags));
        }
    }

    /// Zeroes both words in the TCB at `tp`.
    ///
    /// # Safety
    /// `tp` is a glibc thread descriptor (or a TCB greenify made) that no running thread
    /// uses.
    pub unsafe fn clear_in(tp: usize) {
        for offset in [THREAD, SCHED] {
            // SAFETY: the caller's; both words lie in the descriptor's tcbhead_t.
            unsafe { ((tp + offset) as *mut usize).write_volatile(0) };
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod words {
    use std::cell::Cell;

    pub const THREAD: usize = 0;
    pub const SCHED: usize = 1;

    thread_local! {
        // No TCB per green thread on this architecture: the OS thread's TLS is stable.
        static WORDS: [Cell<usize>; 2] = const { [Cell::new(0), Cell::new(0)] };
    }

    pub fn read<const OFFSET: usize>() -> usize {
        WORDS.with(|w| w[OFFSET].get())
    }

    pub fn write<const OFFSET: usize>(value: usize) {
        WORDS.with(|w| w[OFFSET].set(value))
    }

    /// Nothing to do: glibc initialises a reused stack's thread-locals again.
    ///
    /// # Safety
    /// None needed; as on x86_64 for the signature.
    pub unsafe fn clear_in(_tp: usize) {}
}

/// The calling OS thread's scheduler address, or [`UNDECIDED`] / [`NO_SCHEDULER`].
#[inline(always)]
pub fn sched_word() -> usize {
    words::read::<{ words::SCHED }>()
}

/// Sets [`sched_word`] in the current TCB.
#[inline(always)]
pub fn set_sched_word(value: usize) {
    words::write::<{ words::SCHED }>(value)
}

/// The running green thread's id + 1 (0: none).
#[inline(always)]
pub fn thread_word() -> usize {
    words::read::<{ words::THREAD }>()
}

/// Sets [`thread_word`] in the current TCB.
#[inline(always)]
pub fn set_thread_word(value: usize) {
    words::write::<{ words::THREAD }>(value)
}

/// Makes the descriptor `tp` of an OS thread that is gone forget greenify's words: glibc
/// gives a gone thread's descriptor and stack to its next new thread as they are, words
/// included, and a new OS thread that started with a gone worker's scheduler word would
/// run its first hooked calls as that worker (a forked child's new worker, in std's
/// thread start, found its descriptor naming a parent's worker caught inside a section,
/// and aborted as a re-entered scheduler).
///
/// # Safety
/// `tp` is the descriptor of an OS thread that no longer runs (in a forked child: one of
/// the parent's other threads), not the calling thread's.
pub unsafe fn forget_words_of(tp: usize) {
    // SAFETY: the caller's.
    unsafe { words::clear_in(tp) }
}

/// The calling thread's thread pointer (the FS base on x86_64): names the green thread
/// when green threads have their own TCBs, else the OS thread.
#[inline(always)]
pub fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: usize;
        // SAFETY: on x86_64 Linux, %fs:0 holds the TCB's own address (tcbhead_t.tcb).
        unsafe {
            std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
        }
        tp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        thread_local! {
            static ANCHOR: u8 = const { 0 };
        }
        ANCHOR.with(|anchor| anchor as *const u8 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_per_os_thread() {
        let here = thread_pointer();
        assert_ne!(here, 0);
        let there = std::thread::spawn(|| {
            assert_eq!((sched_word(), thread_word()), (0, 0));
            set_thread_word(7);
            (thread_pointer(), thread_word())
        })
        .join()
        .unwrap();
        assert_ne!(here, there.0);
        assert_eq!(there.1, 7);
    }

    /// glibc's stack cache hands a joined thread's descriptor to the next thread of the
    /// same stack size with greenify's words as the gone thread left them, until
    /// [`forget_words_of`] clears them. (A stack size no other test's thread would take:
    /// glibc gives a cached stack only to threads wanting at least a quarter of it.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_reused_descriptor_keeps_the_words_until_they_are_forgotten() {
        let spawn = |f: fn() -> (usize, usize, usize)| {
            std::thread::Builder::new()
                .stack_size(9 << 20)
                .spawn(f)
                .unwrap()
                .join()
                .unwrap()
        };
        let gone = spawn(|| {
            set_sched_word(0x5a5a0);
            set_thread_word(3);
            (thread_pointer(), 0, 0)
        });
        let seen = || (thread_pointer(), sched_word(), thread_word());
        let reused = spawn(seen);
        assert_eq!(
            reused,
            (gone.0, 0x5a5a0, 3),
            "glibc reused the descriptor as it was"
        );
        // SAFETY: the descriptor's thread was joined.
        unsafe { forget_words_of(gone.0) };
        assert_eq!(spawn(seen), (gone.0, 0, 0));
    }
}
