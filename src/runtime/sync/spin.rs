//! pthread_spin_lock: a green thread spinning lets the holder run.

use super::Caller;
use crate::runtime::sched;
use std::sync::atomic::AtomicI32;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

/// pthread_spin_lock: a green thread spinning lets the holder run.
pub fn spin_lock(word: &AtomicI32, caller: Caller) {
    while word.compare_exchange_weak(0, 1, Acquire, Relaxed).is_err() {
        if caller.green {
            sched::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}
