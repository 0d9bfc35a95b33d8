//! Which OS thread is running, answered without a thread-local lookup.
//!
//! A `thread_local!` in a shared library costs a call to `__tls_get_addr` on every
//! access, and the hooks ask "is this the green OS thread?" several times per call. The
//! thread pointer (the FS base on x86_64) names the OS thread in one instruction. The
//! process's main OS thread lives as long as the process, so its thread pointer can
//! stand for it in a process-wide static; no other OS thread can ever have it.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The calling OS thread's thread pointer (glibc's TCB address). A coroutine never moves
/// between OS threads, so the value is stable within any function body.
#[inline(always)]
pub fn thread_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: usize;
        // SAFETY: on x86_64 Linux, %fs:0 holds the TCB's own address (tcbhead_t.tcb),
        // readable by every thread; the read has no side effect.
        unsafe {
            std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
        }
        tp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let tp: usize;
        // SAFETY: TPIDR_EL0 is the thread pointer, readable at EL0 without side effects.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nostack, nomem, preserves_flags));
        }
        tp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // Elsewhere: the address of a thread-local (pthread_self is greenify's own hook).
        thread_local! {
            static ANCHOR: u8 = const { 0 };
        }
        ANCHOR.with(|anchor| anchor as *const u8 as usize)
    }
}

/// The thread pointer of the process's main OS thread, once it runs a scheduler.
static MAIN: AtomicUsize = AtomicUsize::new(0);

/// Records the calling thread as the process's main OS thread (the one that lives as
/// long as the process: the first thread, or the thread that forked this child).
pub fn claim_main() {
    MAIN.store(thread_pointer(), Relaxed);
}

/// Whether the calling OS thread is the one recorded by [`claim_main`].
#[inline(always)]
pub fn is_main() -> bool {
    thread_pointer() == MAIN.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_pointers_differ_between_threads_and_are_stable() {
        let here = thread_pointer();
        assert_ne!(here, 0);
        assert_eq!(here, thread_pointer());
        let there = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(here, there);
    }
}
