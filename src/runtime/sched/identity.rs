//! Thread ids and the per-thread kernel state greenify keeps (the alternate signal stack).
//!
//! The program sees a thread id per green thread (gettid, tgkill). MAIN keeps the OS
//! thread's own id (== getpid in the process's first thread); every other green thread gets
//! a number the kernel never hands out, above PID_MAX_LIMIT, never reused while numbers
//! last. Looking a thread up by id scans the threads: only signals sent by id need it, so
//! spawn and exit pay one counter increment and nothing else.

use super::state::State;
use super::table::Threads;
use super::with;
use crate::runtime::wait::ThreadId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI32};

/// The kernel's largest thread id on 64-bit (PID_MAX_LIMIT): green ids start above it.
pub const PID_MAX_LIMIT: i32 = 4 << 20;
static NEXT_GREEN_TID: AtomicI32 = AtomicI32::new(PID_MAX_LIMIT + 1);

/// The numbers ran out once and started again: a new one may be taken.
static GREEN_TIDS_WRAPPED: AtomicBool = AtomicBool::new(false);

/// An alternate signal stack as the program set it (`sigaltstack`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AltStack {
    pub sp: usize,
    pub size: usize,
    pub flags: i32,
}

/// What the program sees of a green thread's kernel identity.
#[derive(Clone, Copy, Debug)]
pub(super) struct Identity {
    /// Its thread id: the OS thread's own for MAIN (and for the thread that forked, in the
    /// child), kept here so that gettid makes no system call.
    pub(super) tid: i32,
    pub(super) altstack: AltStack,
}

/// A fresh green thread id. After i32::MAX the numbers start again from the bottom of the
/// range, skipping those live threads hold (as the kernel's own ids wrap at pid_max).
/// Only the main OS thread's scheduler spawns (see hooks/mod.rs), so a plain load and
/// store suffice: no locked instruction on the spawn path.
pub(super) fn next_green_tid(threads: &Threads) -> i32 {
    loop {
        let tid = NEXT_GREEN_TID.load(Relaxed);
        let next = tid.checked_add(1).unwrap_or_else(|| {
            GREEN_TIDS_WRAPPED.store(true, Relaxed);
            PID_MAX_LIMIT + 1
        });
        NEXT_GREEN_TID.store(next, Relaxed);
        let taken = GREEN_TIDS_WRAPPED.load(Relaxed)
            && threads
                .iter()
                .any(|t| t.state() != State::Free && t.identity.tid == tid);
        if !taken {
            return tid;
        }
    }
}

pub(super) fn os_tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// The current green thread's id, as gettid shows it.
#[inline]
pub fn current_tid() -> i32 {
    with(|s| s.threads[s.current() as usize].identity.tid)
}

/// For a signal handler on a worker: the running green thread's id and name, unless the
/// handler interrupted one of the scheduler's own sections (or the thread has none).
pub fn running_identity() -> Option<(i32, [u8; 16])> {
    if !super::section_may_start() {
        return None;
    }
    Some(with(|s| {
        let t = &s.threads[s.current() as usize];
        (t.identity.tid, t.name)
    }))
}

/// The live (not exited) green thread whose id is `tid`, if any.
pub fn thread_by_tid(tid: i32) -> Option<ThreadId> {
    with(|s| {
        s.threads.iter().position(|t| {
            matches!(t.state(), State::Ready | State::Running | State::Parked)
                && t.identity.tid == tid
        })
    })
    .map(|i| i as ThreadId)
}

/// The current green thread's alternate signal stack, as the program set it.
pub fn altstack() -> AltStack {
    with(|s| s.threads[s.current() as usize].identity.altstack)
}

pub fn set_altstack(stack: AltStack) {
    with(|s| s.running().identity.altstack = stack);
}

impl AltStack {
    pub const DISABLED: AltStack = AltStack {
        sp: 0,
        size: 0,
        flags: libc::SS_DISABLE,
    };
}

impl Identity {
    pub(super) const FREE: Identity = Identity {
        tid: 0,
        altstack: AltStack::DISABLED,
    };

    pub(super) fn new(tid: i32) -> Identity {
        Identity {
            tid,
            altstack: AltStack::DISABLED,
        }
    }
}
