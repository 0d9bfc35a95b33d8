//! pthread_cancel's bookkeeping: cancel requests, the cancel state and type, the cleanup
//! buffer chain, and the cancellation points that act on a request (through an action the
//! hooks set).

use super::handle::Handle;
use super::state::State;
use super::with;
use crate::runtime::wait::Wake;
use rustix::io::Errno;

/// What to do when a cancellation point finds a cancel request (set by the hooks; it
/// runs the thread's cleanup handlers and ends it, never returning).
static CANCEL_ACTION: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the action a cancellation point runs (see [`CANCEL_ACTION`]).
pub fn set_cancel_action(action: fn() -> !) {
    CANCEL_ACTION.store(action as usize, std::sync::atomic::Ordering::SeqCst);
}

/// A cancellation point: acts on a pending cancel request (and then never returns).
/// Inlined: in a program that never cancels it is one load, less than a call.
#[inline]
pub fn cancellation_point() {
    if CANCEL_EVER_REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
        act_on_cancel();
    }
}

#[cold]
#[inline(never)]
fn act_on_cancel() {
    if !cancel_requested() {
        return;
    }
    let action = CANCEL_ACTION.load(std::sync::atomic::Ordering::SeqCst);
    if action != 0 {
        // SAFETY: the address was stored from a `fn() -> !` by set_cancel_action.
        let action: fn() -> ! = unsafe { std::mem::transmute(action) };
        action();
    }
}

/// Some thread of this process was asked to cancel (pthread_cancel, only ever on this
/// OS thread's green threads).
static CANCEL_EVER_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// pthread_cancel: marks the thread; one parked at a cancellation point wakes up to act.
pub fn cancel(handle: Handle) -> Result<(), Errno> {
    with(|s| {
        let tid = s.resolve(handle).ok_or(Errno::SRCH)?;
        CANCEL_EVER_REQUESTED.store(true, std::sync::atomic::Ordering::Relaxed);
        let t = &mut s.threads[tid as usize];
        t.cancel_pending = true;
        if t.state() == State::Parked && t.cancellable && !t.cancel_disabled {
            let key = s.key(tid);
            s.ready(key, Wake::Interrupted { restart: false });
        }
        Ok(())
    })
}

/// A cancel request the current thread must act on now.
#[inline]
pub fn cancel_requested() -> bool {
    // Condition waits ask twice per call: a program that never cancels skips the look.
    if !CANCEL_EVER_REQUESTED.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    with(|s| {
        let t = &s.threads[s.current() as usize];
        t.cancel_pending && !t.cancel_disabled
    })
}

/// The current thread is acting on its cancel request: no second time.
pub fn cancel_taken() {
    with(|s| {
        let me = s.current() as usize;
        s.threads[me].cancel_pending = false;
        s.threads[me].cancel_disabled = true;
    })
}

/// pthread_setcancelstate: sets "disabled", returns the previous value.
pub fn set_cancel_disabled(disabled: bool) -> bool {
    with(|s| {
        let me = s.current() as usize;
        std::mem::replace(&mut s.threads[me].cancel_disabled, disabled)
    })
}

/// pthread_setcanceltype: sets "asynchronous", returns the previous value.
pub fn set_cancel_async(asynchronous: bool) -> bool {
    with(|s| {
        let me = s.current() as usize;
        std::mem::replace(&mut s.threads[me].cancel_async, asynchronous)
    })
}

/// The current thread's innermost cleanup buffer (0: none).
#[inline]
pub fn cleanup_top() -> usize {
    with(|s| s.threads[s.current() as usize].cleanup_top)
}

pub fn set_cleanup_top(buffer: usize) {
    with(|s| {
        let me = s.current() as usize;
        s.threads[me].cleanup_top = buffer;
    })
}
