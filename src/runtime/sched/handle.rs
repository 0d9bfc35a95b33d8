//! A green thread's `pthread_t`: making one for a thread and resolving one back to it
//! (a TCB address with TCBs per thread, else a tagged number), stale handles included.

use super::state::State;
use super::tls::Tls;
use super::{with, Scheduler};
use crate::runtime::wait::ThreadId;

/// A green thread's handle as the program sees it (`pthread_t`).
///
/// With TCBs per thread, a handle is the thread's TCB address (what glibc's own
/// `pthread_self` reads from the TCB). Otherwise handles are non-canonical addresses (top
/// 17 bits set), which no real `pthread_t` can be: a libc function we failed to hook
/// crashes at once on one instead of reading garbage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Handle(pub u64);

const HANDLE_TAG: u64 = 0xFFFF_8000_0000_0000;
const TID_BITS: u32 = 24;
const GEN_MASK: u64 = (1 << (47 - TID_BITS)) - 1;

/// Whether `raw` may be a green thread's `pthread_t` (a tagged handle, or one of our
/// TCBs); hooks then ask the runtime about it, which answers ESRCH for a stale one.
pub fn is_green_handle(raw: u64) -> bool {
    Handle::is_tagged(raw)
        || with(|s| matches!(&s.tls, Tls::PerThread(pool) if pool.contains(raw as usize)))
}

impl Handle {
    pub(super) fn new(tid: ThreadId, generation: u32) -> Handle {
        Handle(HANDLE_TAG | ((u64::from(generation) & GEN_MASK) << TID_BITS) | u64::from(tid))
    }

    fn is_tagged(raw: u64) -> bool {
        raw & HANDLE_TAG == HANDLE_TAG
    }

    fn decode(self) -> Option<(ThreadId, u32)> {
        if !Handle::is_tagged(self.0) {
            return None;
        }
        let tid = (self.0 & ((1 << TID_BITS) - 1)) as ThreadId;
        let generation = ((self.0 >> TID_BITS) & GEN_MASK) as u32;
        Some((tid, generation))
    }
}

impl Scheduler {
    pub(super) fn resolve(&self, handle: Handle) -> Option<ThreadId> {
        if let Tls::PerThread(pool) = &self.tls {
            let tcb = handle.0 as usize;
            if !pool.contains(tcb) {
                return None;
            }
            // SAFETY: one of our TCBs, whose thread word is its thread's id + 1.
            let tid = unsafe { *((tcb + 0x38) as *const usize) }.checked_sub(1)? as ThreadId;
            let t = self.threads.get(tid as usize)?;
            return (t.state() != State::Free && t.tcb == tcb).then_some(tid);
        }
        let (tid, generation) = handle.decode()?;
        let t = self.threads.get(tid as usize)?;
        (t.state() != State::Free && u64::from(t.generation) & GEN_MASK == u64::from(generation))
            .then_some(tid)
    }

    pub(super) fn handle(&self, tid: ThreadId) -> Handle {
        match self.threads[tid as usize].tcb {
            0 => Handle::new(tid, self.threads[tid as usize].generation),
            tcb => Handle(tcb as u64),
        }
    }
}
