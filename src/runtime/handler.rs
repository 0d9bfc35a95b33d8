//! Which of a green thread's signal handlers are still running, so that the scheduler
//! knows whose mask the thread has.
//!
//! While a program's handler runs, its thread's mask is the handler's (the mask before
//! it, its sa_mask, and the signal unless SA_NODEFER), as the kernel does per thread: that
//! mask goes with the green thread when the handler waits and other threads run, and the
//! mask before the handler comes back when it returns. A handler may also leave by
//! `siglongjmp` (which sets the mask its `sigsetjmp` saved, with a system call no hook
//! sees) or `longjmp` (which keeps the handler's). So while a thread has a handler
//! recorded, the OS thread's mask, which is always the running thread's, is read back
//! before the thread parks or looks at its mask. Each handler's frame carries a mark; once
//! the thread runs above it, or the mark was written over, that handler was jumped out
//! of and is forgotten.
//!
//! Kept without allocation: handlers are entered from the kernel's signal frames.

use std::ptr;

/// Handlers nested deeper than this are counted, not recorded (while they run, the
/// recorded ones are kept).
const DEPTH: usize = 8;

/// What a handler's mark holds, mixed with its address.
const MAGIC: u64 = 0x6772_6565_6e68_646c;

/// Marks a handler's frame through `slot`, a local of the function that calls the handler;
/// returns the frame's address for [`Frames::push`].
pub fn mark(slot: &mut u64) -> usize {
    let addr = slot as *mut u64 as usize;
    // SAFETY: the caller's own local.
    unsafe { ptr::write_volatile(slot, MAGIC ^ addr as u64) };
    addr
}

/// The handler of `slot`'s frame returned.
pub fn unmark(slot: &mut u64) {
    // SAFETY: the caller's own local.
    unsafe { ptr::write_volatile(slot, 0) };
}

/// The running handlers of one green thread, innermost last.
#[derive(Clone, Copy, Debug, Default)]
pub struct Frames {
    marks: [usize; DEPTH],
    depth: usize,
    /// Nested handlers beyond DEPTH, not recorded.
    unrecorded: usize,
}

impl Frames {
    pub const NONE: Frames = Frames {
        marks: [0; DEPTH],
        depth: 0,
        unrecorded: 0,
    };

    /// A handler whose frame is marked at `mark` starts.
    pub fn push(&mut self, mark: usize) {
        if self.depth < DEPTH {
            self.marks[self.depth] = mark;
            self.depth += 1;
        } else {
            self.unrecorded += 1;
        }
    }

    /// The innermost handler returned.
    pub fn pop(&mut self) {
        if self.unrecorded > 0 {
            self.unrecorded -= 1;
        } else {
            self.depth = self.depth.saturating_sub(1);
        }
    }

    /// Whether a handler may be running (or was left by a jump not yet noticed).
    pub fn any(&self) -> bool {
        self.depth + self.unrecorded != 0
    }

    /// Forgets the handlers the thread, now running at `sp`, has jumped out of: their
    /// frames lie below `sp`, or their marks were written over. Says whether it forgot any.
    pub fn forget_left(&mut self, sp: usize) -> bool {
        let depth = self.depth;
        while self.unrecorded == 0 && self.depth > 0 {
            let mark = self.marks[self.depth - 1];
            // SAFETY: a mark on this thread's stack (or the OS thread's alternate stack),
            // which stays mapped while the thread lives; read only, it may be stale.
            let intact = mark >= sp
                && unsafe { ptr::read_volatile(mark as *const u64) } == MAGIC ^ mark as u64;
            if intact {
                break;
            }
            self.depth -= 1;
        }
        self.depth != depth
    }
}

/// The stack pointer of the caller, near enough to compare with frames' marks.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_and_jumps_out_of_handlers() {
        let (mut outer, mut inner) = (0u64, 0u64);
        let mut f = Frames::NONE;
        assert!(!f.any());
        let (o, i) = (mark(&mut outer), mark(&mut inner));
        f.push(o);
        f.push(i);
        let below = o.min(i) - 64;
        f.forget_left(below);
        assert_eq!(f.depth, 2);
        unmark(&mut inner);
        f.pop();
        // The outer one's mark written over: a jump left it, and the stack was reused.
        outer = 1;
        std::hint::black_box(&mut outer);
        f.forget_left(below);
        assert!(!f.any());
    }

    #[test]
    fn a_frame_below_the_stack_pointer_was_left() {
        let mut slot = 0u64;
        let m = mark(&mut slot);
        let mut f = Frames::NONE;
        f.push(m);
        f.forget_left(m + 8);
        assert!(!f.any());
    }

    #[test]
    fn deep_nesting_is_counted() {
        let mut f = Frames::NONE;
        for i in 0..DEPTH + 2 {
            f.push(i);
        }
        // The unrecorded handlers keep the recorded ones until they return.
        f.forget_left(usize::MAX);
        assert!(f.any());
        f.pop();
        f.pop();
        f.forget_left(usize::MAX);
        assert!(!f.any());
    }
}
