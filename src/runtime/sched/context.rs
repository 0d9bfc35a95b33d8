//! MAIN's switch: the program's own thread keeps the stack the kernel gave it, which no
//! coroutine library can take over (corosensei only resumes stacks it set up), so with
//! several workers MAIN and each worker's run loop switch by hand ([`switch`]): the
//! callee-saved registers of the SysV ABI (rbx, rbp, r12-r15, the x87 control word and
//! MXCSR) pushed on the stack being left, its stack pointer stored, the other one's loaded
//! and its registers popped. Everything else is caller-saved, so a call of [`switch`] is
//! all the compiler needs to know. A context that never ran yet ([`Context::start`]) is a
//! new stack laid out as if it had switched away just before calling its entry function.

use crate::runtime::stack::page_size;
use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".globl greenify_switch_context",
    ".type greenify_switch_context,@function",
    "greenify_switch_context:",
    // rdi: where to store the stack pointer left; rsi: the stack pointer to load.
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "stmxcsr [rsp]",
    "fnstcw [rsp + 4]",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "ldmxcsr [rsp]",
    "fldcw [rsp + 4]",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".size greenify_switch_context, . - greenify_switch_context",
    // A new context's first return lands here: its entry function in r12, its argument
    // in r13 (popped from the layout `Context::start` wrote), a 16-byte aligned stack.
    ".globl greenify_context_entry",
    ".type greenify_context_entry,@function",
    "greenify_context_entry:",
    "mov rdi, r13",
    "call r12",
    "ud2",
    ".size greenify_context_entry, . - greenify_context_entry",
);

extern "sysv64" {
    fn greenify_switch_context(save: *mut usize, load: usize);
    fn greenify_context_entry();
}

/// Stores the calling context's stack pointer at `save` and continues the context saved
/// at `load` (by an earlier [`switch`] or [`Context::start`]); returns when some OS thread
/// switches back to the stack pointer stored at `save`.
///
/// # Safety
/// `load` is a context saved and not resumed since, whose stack is not in use; `save`
/// stays valid until the switch back, and nothing resumes it before this switch stored
/// it (the caller's own ordering: see run.rs).
#[inline(always)]
pub(super) unsafe fn switch(save: *mut usize, load: usize) {
    // SAFETY: the caller's contract; the assembly keeps every register the ABI says a
    // call keeps.
    unsafe { greenify_switch_context(save, load) }
}

/// A context of greenify's own on a stack of its own, never freed (a worker's run loop).
pub(super) struct Context;

/// The stack of such a context (the size of a worker OS thread's, as std gives it).
const STACK_BYTES: usize = 2 << 20;

/// MXCSR and the x87 control word at power-on: every exception masked, round to nearest.
const MXCSR: usize = 0x1F80;
const FPU_CONTROL: usize = 0x037F;

impl Context {
    /// A context whose first switch runs `entry(arg)` on a new stack (which it must never
    /// return from); its stack pointer, for [`switch`], and the stack's (lowest, size).
    /// None if no stack could be mapped.
    pub(super) fn start(
        entry: extern "C" fn(usize) -> !,
        arg: usize,
    ) -> Option<(usize, (usize, usize))> {
        // A guard page below (mapped without access), as glibc gives a thread's stack;
        // never unmapped: the context runs for as long as the process.
        let guard = page_size();
        // SAFETY: a new private mapping, which nothing else refers to.
        let base = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                guard + STACK_BYTES,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .ok()? as usize;
        // SAFETY: the usable part of the mapping just made.
        unsafe {
            rustix::mm::mprotect(
                (base + guard) as *mut _,
                STACK_BYTES,
                rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE,
            )
        }
        .ok()?;
        let top = base + guard + STACK_BYTES;
        let bounds = (base + guard, STACK_BYTES);
        // What `switch` pops, from the saved stack pointer up: MXCSR and the control word,
        // r15, r14, r13 (the argument), r12 (the entry), rbx, rbp, the return address;
        // then the entry's call pushes its return address at a 16-byte boundary.
        let frame = [
            MXCSR | (FPU_CONTROL << 32),
            0,
            0,
            arg,
            entry as usize,
            0,
            0,
            greenify_context_entry as *const () as usize,
        ];
        let sp = top - 16 - frame.len() * 8;
        // SAFETY: the stack was just mapped, writable, and is ours; `sp` lies inside it.
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), sp as *mut usize, frame.len()) };
        Some((sp, bounds))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::{switch, Context};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// The test's context while the new one runs, and the new one's while the test runs.
    static CALLER: AtomicUsize = AtomicUsize::new(0);
    static CALLEE: AtomicUsize = AtomicUsize::new(0);
    static SEEN: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn entry(arg: usize) -> ! {
        let mut round = arg;
        loop {
            // A float computed here must not leak into the caller's registers' values.
            SEEN.store(round + (round as f64 * 0.5) as usize, SeqCst);
            // SAFETY: CALLER holds the test's context, stored by its switch here.
            unsafe { switch(CALLEE.as_ptr(), CALLER.load(SeqCst)) };
            round += 1;
        }
    }

    #[test]
    fn a_new_context_runs_its_entry_and_both_sides_keep_their_state() {
        let (sp, (low, size)) = Context::start(entry, 10).expect("a stack");
        assert!(sp > low && sp < low + size);
        CALLEE.store(sp, SeqCst);
        let kept = [1.25f64, 2.5, 3.75];
        for round in 0..3 {
            // SAFETY: CALLEE holds the entry's context (new, or stored by its switch back).
            unsafe { switch(CALLER.as_ptr(), CALLEE.load(SeqCst)) };
            let n = 10 + round;
            assert_eq!(SEEN.load(SeqCst), n + n / 2);
            assert_eq!(kept.iter().sum::<f64>(), 7.5);
        }
    }
}
