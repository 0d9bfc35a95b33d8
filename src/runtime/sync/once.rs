//! pthread_once: one caller runs the routine, the others wait until it has finished.

use super::word::{wait_word, wake_word};
use super::Caller;
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Mutex as StdMutex;

const ONCE_RUNNING: u32 = 1;
const ONCE_DONE: u32 = 2;

/// Once controls whose routine is running, per owner: reset if that thread exits inside
/// the routine (pthread_exit or cancellation), so that another caller runs it again.
static ONCE_RUNNING_BY: StdMutex<Option<HashMap<i32, Vec<usize>>>> = StdMutex::new(None);

pub(super) fn once_running_by(f: impl FnOnce(&mut HashMap<i32, Vec<usize>>)) {
    let mut guard = ONCE_RUNNING_BY.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new));
}

/// pthread_once: runs `init` exactly once; later callers wait until it has finished.
pub fn once(control: &AtomicU32, caller: Caller, init: impl FnOnce()) {
    let addr = control as *const AtomicU32 as usize;
    loop {
        match control.compare_exchange(0, ONCE_RUNNING, Acquire, Acquire) {
            Ok(_) => {
                once_running_by(|m| m.entry(caller.owner).or_default().push(addr));
                init();
                once_running_by(|m| {
                    if let Some(list) = m.get_mut(&caller.owner) {
                        list.retain(|&a| a != addr);
                        if list.is_empty() {
                            m.remove(&caller.owner);
                        }
                    }
                });
                control.store(ONCE_DONE, Release);
                wake_word(control, u32::MAX, false, caller);
                return;
            }
            Err(ONCE_DONE) => return,
            Err(state) => {
                wait_word(control, state, None, false, caller);
            }
        }
    }
}
