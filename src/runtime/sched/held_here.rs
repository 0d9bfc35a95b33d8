//! Real-time signal instances that wait in one worker's kernel queue (see
//! runtime/held.rs).
//!
//! The trampoline keeps the next instances of a real-time signal in the kernel's queue of
//! the OS thread it runs on, by blocking the signal there until the saved one has run; only
//! that OS thread can take them. With several workers, the handler that frees the slot may
//! run on another worker, which cannot unblock the signal on the holder's OS thread: it
//! asks the holders with greenify's own SIGURG ([`nudge_holders`]), which every green
//! thread's mask keeps open once the monitor runs, and the holder's handler unblocks the
//! signal in the context its sigreturn restores ([`unblock_released`]). Before, the
//! instances stayed blocked there until that worker's mask happened to be applied again:
//! with 2 workers, one run in 15 of five `pthread_sigqueue`s ran the handler once.

use super::signals::UNKNOWN_MASK;
use super::{current_worker, with};
use crate::runtime::{held, monitor, raw};
use std::sync::atomic::Ordering::SeqCst;

/// The trampoline blocks real-time signal `sig` on the calling OS thread as it returns
/// (async-signal-safe).
pub fn hold_here(sig: u32) {
    let worker = current_worker();
    if !worker.is_null() {
        // SAFETY: worker records are never freed; the word is atomic.
        unsafe { (*worker).held_here.fetch_or(1 << (sig - 1), SeqCst) };
    }
}

/// After [`held::release`] on this worker (whose own mask the caller applies again): the
/// other workers whose OS threads hold a released signal are asked to unblock it. Only
/// once the monitor runs: without it no handler of greenify's takes SIGURG, and the held
/// instances come in when those workers next apply a mask.
pub fn nudge_holders() {
    let still_held = held::held();
    let me = current_worker();
    if !me.is_null() {
        // SAFETY: as in `hold_here`; this OS thread's mask no longer blocks them.
        unsafe { (*me).held_here.fetch_and(still_held, SeqCst) };
    }
    if !monitor::started() {
        return;
    }
    let mut holders = [0i32; 64];
    let count = with(|s| {
        let mut count = 0;
        for &worker in &s.all_workers {
            // SAFETY: worker records are never freed; the word is atomic and `os_tid` is
            // written once, before the worker runs.
            let (held, tid) = unsafe { ((*worker).held_here.load(SeqCst), (*worker).os_tid) };
            if worker != me && held & !still_held != 0 && count < holders.len() {
                holders[count] = tid.as_raw_nonzero().get();
                count += 1;
            }
        }
        count
    });
    let info = held::nudge_info(monitor::SIGNAL as u32);
    for &tid in &holders[..count] {
        raw::queue_to_thread(tid, monitor::SIGNAL as u32, &info);
    }
}

/// In greenify's SIGURG handler, for a nudge: unblocks in `mask` (the interrupted
/// context's, which its sigreturn restores) the real-time signals this OS thread holds
/// that are released, unless the running thread's own mask blocks them.
pub fn unblock_released(mask: &mut u64) {
    let worker = current_worker();
    if worker.is_null() {
        return;
    }
    // SAFETY: worker records are never freed; the word is atomic.
    let held_here = unsafe { &(*worker).held_here };
    let released = held_here.load(SeqCst) & !held::held();
    if released == 0 {
        return;
    }
    held_here.fetch_and(!released, SeqCst);
    // SAFETY: only this OS thread writes `applied_mask`, which a handler interrupting it
    // reads whole (see signals.rs `blocks_now`).
    let applied = unsafe { std::ptr::addr_of!((*worker).applied_mask).read_volatile() };
    // Not known (a handler the kernel ran returned since): the thread's own mask is
    // applied again at its next switch; a signal it blocks that comes in meanwhile is
    // routed by the trampoline as any other.
    let blocked = if applied == UNKNOWN_MASK { 0 } else { applied };
    *mask &= !(released & !blocked);
}
