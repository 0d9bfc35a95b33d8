//! Nudges: asking another worker's OS thread to change its own signal mask, which no
//! other thread can do. The nudge is greenify's own SIGURG (every green thread's mask keeps
//! it open once the monitor runs); its handler changes the mask in the context its
//! sigreturn restores, and at once ([`settle_nudge`]). Two kinds of change:
//!
//! - **Held real-time signals** (see runtime/held.rs). The trampoline keeps the next
//!   instances of a real-time signal in the kernel's queue of the OS thread it runs on, by
//!   blocking the signal there until the saved one has run; only that OS thread can take
//!   them. With several workers the handler that frees the slot may run on another worker,
//!   which nudges the holders to unblock it ([`nudge_holders`]). Before, the instances
//!   stayed blocked there until that worker's mask happened to be applied again: with 2
//!   workers, one run in 15 of five `pthread_sigqueue`s ran the handler once.
//! - **An idle worker's mask** (see run.rs: the first worker, idle, leaves open what any
//!   live thread accepts). When a thread on another worker blocks a signal that no live
//!   thread accepts any more, the idle worker must block it too before the thread goes on
//!   ([`close_idle_masks`]): else a `kill` of its own process right after reached the idle
//!   OS thread, and a signal left at its default action killed the process (with 2
//!   workers, `cdylib-tests/c/signals.c` died of SIGUSR1 in 10 runs of 40).
//!
//! A nudge may come while another of greenify's handlers runs on that OS thread (the
//! trampoline handing an idle worker's signal to a thread, say), whose sigreturn then
//! restores the mask from before the nudge: each such handler is a [`Frame`], and keeps
//! what the nudges inside it changed.

use super::signals::UNKNOWN_MASK;
use super::worker::Worker;
use super::{current_worker, with};
use crate::runtime::{held, monitor, raw};
use std::sync::atomic::Ordering::SeqCst;

/// One of greenify's signal handlers on a worker's OS thread that returns to the context
/// it interrupted: the idle loop, the run loop, greenify's own code in a thread. Its
/// sigreturn restores the mask it interrupted, which a nudge taken meanwhile changed (the
/// trampoline handing a signal to a thread that another worker runs, which then blocked a
/// signal and sent it to its process: the sigreturn opened it again on the idle OS thread,
/// and the signal at its default action killed the process, 1 run in 4 with 2 workers).
/// So the nudges inside a frame note what they changed, and the frame's sigreturn keeps
/// it ([`Frame::leave`]). A handler that runs the program's code, or switches away, in
/// the context it interrupted (whose mask is then a green thread's own) is no longer one
/// ([`Frame::forget`]).
pub struct Frame(*mut Worker);

impl Frame {
    /// The handler starts (first thing, before a nudge can come).
    pub fn enter() -> Frame {
        let worker = current_worker();
        if !worker.is_null() {
            // SAFETY: worker records are never freed; the word is atomic.
            unsafe { (*worker).open_frames.fetch_add(1, SeqCst) };
        }
        Frame(worker)
    }

    /// The handler returns, to restore `mask` (its context's, which its sigreturn sets):
    /// what nudges inside it changed is kept there. The preemption signal (the nudge) is
    /// blocked from here to the sigreturn, which opens it again: one that comes later
    /// lands in the context restored.
    pub fn leave(self, mask: &mut u64) {
        if self.0.is_null() {
            return;
        }
        if monitor::started() {
            monitor::sigprocmask(libc::SIG_BLOCK, &(1 << (monitor::SIGNAL - 1)));
        }
        // SAFETY: as in `enter`.
        let worker = unsafe { &*self.0 };
        *mask = (*mask | worker.frames_blocked.load(SeqCst)) & !worker.frames_opened.load(SeqCst);
        self.forget();
    }

    /// The handler goes on in the interrupted context's own terms (see [`Frame`]).
    pub fn forget(self) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: as in `enter`.
        let worker = unsafe { &*self.0 };
        if worker.open_frames.fetch_sub(1, SeqCst) == 1 {
            worker.frames_blocked.store(0, SeqCst);
            worker.frames_opened.store(0, SeqCst);
        }
    }
}

/// A nudge inside an open [`Frame`] blocked `blocked` and unblocked `opened` on its OS
/// thread: the frame's sigreturn must keep that (the latest change of a signal wins).
fn note_for_frames(worker: &Worker, blocked: u64, opened: u64) {
    // The nudge's own handler is a frame too.
    if worker.open_frames.load(SeqCst) < 2 {
        return;
    }
    let still_blocked = worker.frames_blocked.load(SeqCst) & !opened;
    worker.frames_blocked.store(still_blocked | blocked, SeqCst);
    let still_opened = worker.frames_opened.load(SeqCst) & !blocked;
    worker.frames_opened.store(still_opened | opened, SeqCst);
}

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
    send_nudges(&holders[..count]);
}

/// Sends a nudge (greenify's SIGURG with the nudge's value) to each of the OS threads
/// `tids`; its handler there settles it ([`settle_nudge`]).
fn send_nudges(tids: &[i32]) {
    let info = held::nudge_info(monitor::SIGNAL as u32);
    for &tid in tids {
        raw::queue_to_thread(tid, monitor::SIGNAL as u32, &info);
    }
}

/// In greenify's SIGURG handler, for a nudge, on the nudged OS thread: blocks what another
/// worker asked it to (at once, and in `mask`, the interrupted context's, which its
/// sigreturn restores), then says so; and unblocks in `mask` the real-time signals this OS
/// thread holds that are released, unless the running thread's own mask blocks them.
pub fn settle_nudge(mask: &mut u64) {
    let worker = current_worker();
    if worker.is_null() {
        return;
    }
    // SAFETY: worker records are never freed; the words are atomic.
    let (request, held_here) = unsafe { (&(*worker).block_request, &(*worker).held_here) };
    let block = request.load(SeqCst);
    if block != 0 {
        monitor::sigprocmask(libc::SIG_BLOCK, &block);
        *mask |= block;
        // SAFETY: only this OS thread writes `applied_mask` (this handler runs on it).
        unsafe {
            let applied = std::ptr::addr_of_mut!((*worker).applied_mask);
            if applied.read_volatile() != UNKNOWN_MASK {
                applied.write_volatile(applied.read_volatile() | block);
            }
        }
    }
    let released = held_here.load(SeqCst) & !held::held();
    let mut opened = 0;
    if released != 0 {
        held_here.fetch_and(!released, SeqCst);
        // SAFETY: only this OS thread writes `applied_mask`, which a handler interrupting
        // it reads whole (see signals.rs `apply_mask`).
        let applied = unsafe { std::ptr::addr_of!((*worker).applied_mask).read_volatile() };
        // Not known (a handler the kernel ran returned since): the thread's own mask is
        // applied again at its next switch; a signal it blocks that comes in meanwhile is
        // routed by the trampoline as any other.
        let blocked = if applied == UNKNOWN_MASK { 0 } else { applied };
        opened = released & !blocked;
        *mask &= !opened;
    }
    // SAFETY: as above.
    note_for_frames(unsafe { &*worker }, block, opened);
    // Said last: the frames it is inside now keep the block too.
    if block != 0 {
        request.fetch_and(!block, SeqCst);
    }
}

/// After the calling thread blocked more signals (the lock not held): every other worker
/// whose mask leaves open a signal that no live thread accepts now (an idle worker's
/// common mask, computed before) is nudged to block it, and waited for, for up to
/// [`CLOSE_WAIT`]. Only once the monitor runs (no handler of greenify's takes the nudge
/// otherwise; the README says what remains then).
pub fn close_idle_masks() {
    if !monitor::started() {
        return;
    }
    let mut asked = [std::ptr::null_mut::<super::worker::Worker>(); 64];
    let mut tids = [0i32; 64];
    let count = with(|s| {
        if s.all_workers.len() < 2 || !s.masks_vary {
            return 0;
        }
        let accepted_by_none = s.idle_mask();
        let me = current_worker();
        let mut count = 0;
        for &worker in &s.all_workers {
            // SAFETY: worker records are never freed; `applied_mask` is read whole (a u64
            // its own OS thread writes), `os_tid` is written before the worker runs.
            let (applied, tid) = unsafe {
                (
                    std::ptr::addr_of!((*worker).applied_mask).read_volatile(),
                    (*worker).os_tid,
                )
            };
            // A mask not known (a handler the kernel ran there returned since) may leave
            // any of them open.
            let maybe_open = if applied == UNKNOWN_MASK { 0 } else { applied };
            let open = !maybe_open & accepted_by_none & !super::signals::kept_open();
            if worker == me || open == 0 || count == asked.len() {
                continue;
            }
            // SAFETY: as above; the word is atomic.
            unsafe { (*worker).block_request.fetch_or(open, SeqCst) };
            asked[count] = worker;
            tids[count] = tid.as_raw_nonzero().get();
            count += 1;
        }
        count
    });
    if count == 0 {
        return;
    }
    send_nudges(&tids[..count]);
    let until = std::time::Instant::now() + CLOSE_WAIT;
    for &worker in &asked[..count] {
        // SAFETY: as above.
        let request = unsafe { &(*worker).block_request };
        while request.load(SeqCst) != 0 && std::time::Instant::now() < until {
            // SAFETY: sched_yield has no arguments (raw: it is greenify's own hook).
            unsafe { raw::syscall(libc::SYS_sched_yield, &[]) };
        }
    }
}

/// How long a thread that blocked more signals waits for the idle workers it nudged at
/// most: their OS threads answer as soon as the kernel runs them, which on a loaded
/// machine took over 5 ms (a wait of 5 ms still let the process die in 5 runs of 40).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
