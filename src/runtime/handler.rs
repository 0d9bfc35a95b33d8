//! Which of a green thread's signal handlers are still running, so that the scheduler
//! knows whose mask the thread has.
//!
//! While a program's handler runs, its thread's mask is the handler's (the mask before
//! it, its sa_mask, and the signal unless SA_NODEFER), as the kernel does per thread: that
//! mask goes with the green thread when the handler waits and other threads run, and the
//! mask before the handler comes back when it returns. A handler may also leave by
//! `siglongjmp` (which sets the mask its `sigsetjmp` saved, with a system call no hook
//! sees) or `longjmp` (which keeps the handler's). So each running handler's stack
//! pointer is recorded: once the thread runs above one, that handler was jumped out of,
//! and the OS thread's mask, which is the running thread's, is its mask again.
//!
//! Kept without allocation: handlers are entered from the kernel's signal frames.

/// Handlers nested deeper than this are not recorded (their exit by a jump is then
/// noticed only when the outer ones are left).
const DEPTH: usize = 8;

/// The running handlers of one green thread, innermost last.
#[derive(Clone, Copy, Debug, Default)]
pub struct Frames {
    sp: [usize; DEPTH],
    depth: usize,
    /// Nested handlers beyond DEPTH, not recorded.
    unrecorded: usize,
}

impl Frames {
    pub const NONE: Frames = Frames {
        sp: [0; DEPTH],
        depth: 0,
        unrecorded: 0,
    };

    /// A handler whose frame is at `sp` starts.
    pub fn push(&mut self, sp: usize) {
        if self.depth < DEPTH {
            self.sp[self.depth] = sp;
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

    /// Forgets the handlers the thread, now running at `sp`, has jumped out of (their
    /// frames lie below `sp`); says whether there were any.
    pub fn jumped_out(&mut self, sp: usize) -> bool {
        let before = self.depth;
        while self.unrecorded == 0 && self.depth > 0 && self.sp[self.depth - 1] < sp {
            self.depth -= 1;
        }
        self.depth != before
    }
}

/// The stack pointer of the caller, near enough to compare with recorded frames.
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
        let mut f = Frames::NONE;
        assert!(!f.jumped_out(1000));
        f.push(900);
        f.push(800);
        // Inside the inner handler, both run.
        assert!(!f.jumped_out(700));
        f.pop();
        assert!(!f.jumped_out(850));
        // A jump from the outer handler to above it.
        assert!(f.jumped_out(950));
        assert!(!f.jumped_out(950));
    }

    #[test]
    fn deep_nesting_is_counted() {
        let mut f = Frames::NONE;
        for i in 0..DEPTH + 2 {
            f.push(1000 - i);
        }
        // The unrecorded handlers hide the recorded ones until they return.
        assert!(!f.jumped_out(2000));
        f.pop();
        f.pop();
        assert!(f.jumped_out(2000));
    }
}
