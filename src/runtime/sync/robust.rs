//! What an owner leaves behind when it exits: the robust mutexes it holds (they become
//! EOWNERDEAD for the next locker) and the once routines it was running (reset for the
//! next caller).

use super::mutex::Mutex;
use super::once::once_running_by;
use super::word::wake_word;
use super::Caller;
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Mutex as StdMutex;

/// `owner` of a robust mutex whose owner exited holding it.
pub(super) const OWNER_DEAD: i32 = i32::MAX;

/// `owner` of a robust mutex unlocked while inconsistent: unusable for good.
pub(super) const OWNER_NOT_RECOVERABLE: i32 = i32::MAX - 1;

/// In `count`: the holder got EOWNERDEAD and has not called pthread_mutex_consistent.
pub(super) const INCONSISTENT: u32 = 1 << 31;

/// Robust mutexes held, per owner: released as "owner dead" when a green thread exits.
static ROBUST_HELD: StdMutex<Option<HashMap<i32, Vec<usize>>>> = StdMutex::new(None);

pub(super) fn robust_held(f: impl FnOnce(&mut HashMap<i32, Vec<usize>>)) {
    let mut guard = ROBUST_HELD.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new));
}

/// A green thread with owner id `owner` exited: its robust mutexes become "owner dead",
/// and a once routine it was running is reset for the next caller.
pub fn owner_exited(owner: i32, green: bool) {
    // Both maps are empty unless a thread holds something (entries go when their list
    // empties): most exits skip hashing their owner twice.
    let mut onces = Vec::new();
    once_running_by(|m| {
        if !m.is_empty() {
            onces = m.remove(&owner).unwrap_or_default();
        }
    });
    for addr in onces {
        // SAFETY: a once control whose routine was running when its thread exited; the
        // program keeps it alive (it is a static in practice).
        let control = unsafe { &*(addr as *const AtomicU32) };
        control.store(0, Release);
        wake_word(control, u32::MAX, false, Caller { green, owner: 0 });
    }
    let mut held = Vec::new();
    robust_held(|map| {
        if !map.is_empty() {
            held = map.remove(&owner).unwrap_or_default();
        }
    });
    for addr in held {
        // SAFETY: a robust mutex still registered as held is still locked by this owner,
        // so the program cannot have destroyed it legitimately.
        let m = unsafe { &*(addr as *const Mutex) };
        if m.owner.load(Relaxed) == owner {
            m.owner.store(OWNER_DEAD, Relaxed);
            m.release(green);
        }
    }
}
