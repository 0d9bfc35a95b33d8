//! pthread keys: one process-wide table of keys; the values live with each green thread
//! (see `sched::specific`), or in a thread-local table for OS threads that are not green.
//!
//! A key's slot carries a sequence number, odd while the key exists. A value remembers
//! the sequence it was set under, so after pthread_key_delete and a new
//! pthread_key_create of the same slot, old values read as NULL, as in glibc.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

/// PTHREAD_KEYS_MAX on glibc.
pub const KEYS_MAX: usize = 1024;
/// PTHREAD_DESTRUCTOR_ITERATIONS on glibc.
pub const DESTRUCTOR_ROUNDS: usize = 4;

struct Slot {
    seq: AtomicU64,
    destructor: AtomicUsize,
}

static SLOTS: [Slot; KEYS_MAX] = [const {
    Slot {
        seq: AtomicU64::new(0),
        destructor: AtomicUsize::new(0),
    }
}; KEYS_MAX];

/// Creates a key with an optional destructor (a C function address, 0 for none).
pub fn create(destructor: usize) -> Result<u32, i32> {
    for (key, slot) in SLOTS.iter().enumerate() {
        let seq = slot.seq.load(SeqCst);
        if seq % 2 == 0
            && slot
                .seq
                .compare_exchange(seq, seq + 1, SeqCst, SeqCst)
                .is_ok()
        {
            slot.destructor.store(destructor, SeqCst);
            return Ok(key as u32);
        }
    }
    Err(libc::EAGAIN)
}

/// Which keys exist now: the keys made after this are those it does not name.
pub fn existing() -> [bool; KEYS_MAX] {
    let mut exists = [false; KEYS_MAX];
    for (key, e) in exists.iter_mut().enumerate() {
        *e = sequence(key as u32).is_some();
    }
    exists
}

/// Deletes a key (its values are not destroyed, as natively).
pub fn delete(key: u32) -> Result<(), i32> {
    let slot = SLOTS.get(key as usize).ok_or(libc::EINVAL)?;
    let seq = slot.seq.load(SeqCst);
    if seq % 2 == 0
        || slot
            .seq
            .compare_exchange(seq, seq + 1, SeqCst, SeqCst)
            .is_err()
    {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// The live sequence of `key`, or None if it does not exist.
pub fn sequence(key: u32) -> Option<u64> {
    let seq = SLOTS.get(key as usize)?.seq.load(SeqCst);
    (seq % 2 == 1).then_some(seq)
}

/// The destructor of a live key, if it has one and `seq` is still its sequence.
pub fn destructor(key: u32, seq: u64) -> Option<usize> {
    let slot = SLOTS.get(key as usize)?;
    (slot.seq.load(SeqCst) == seq)
        .then(|| slot.destructor.load(SeqCst))
        .filter(|&d| d != 0)
}

/// The values of one thread: (value, sequence it was set under) per key.
#[derive(Default)]
pub struct Values {
    values: Vec<(usize, u64)>,
}

impl Values {
    pub fn get(&self, key: u32) -> usize {
        match (self.values.get(key as usize), sequence(key)) {
            (Some(&(value, seq)), Some(live)) if seq == live => value,
            _ => 0,
        }
    }

    /// Stores a value. Grows the table if `key` is beyond it: callers that must not
    /// allocate here make room first (see [`Values::room_needed`]).
    pub fn set(&mut self, key: u32, value: usize) -> Result<(), i32> {
        let seq = sequence(key).ok_or(libc::EINVAL)?;
        let i = key as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, (0, 0));
        }
        self.values[i] = (value, seq);
        Ok(())
    }

    /// The capacity to allocate before `set(key)` can store without allocating, if the
    /// table lacks it (doubling, so that growing is rare).
    pub fn room_needed(&self, key: u32) -> Option<usize> {
        sequence(key)?;
        let needed = key as usize + 1;
        (needed > self.values.capacity()).then(|| needed.max(2 * self.values.capacity()))
    }

    /// Moves the values into `room` (empty, allocated by the caller after
    /// [`Values::room_needed`]) if it is larger, without allocating; returns the storage
    /// to free (the old one, or `room` if it was not larger).
    pub fn grow_into(&mut self, mut room: Vec<(usize, u64)>) -> Vec<(usize, u64)> {
        if room.capacity() <= self.values.capacity() {
            return room;
        }
        room.extend_from_slice(&self.values);
        std::mem::replace(&mut self.values, room)
    }

    /// The next value due for destruction at or after `from`: a non-NULL value of a live
    /// key with a destructor, cleared and returned as (key, destructor, value). Allocates
    /// nothing (it runs inside the scheduler).
    pub fn take_due(&mut self, from: usize) -> Option<(usize, usize, usize)> {
        let entries = self.values.iter_mut().enumerate().skip(from);
        for (key, entry) in entries {
            let (value, seq) = *entry;
            if value == 0 {
                continue;
            }
            if let Some(destructor) = destructor(key as u32, seq) {
                *entry = (0, 0);
                return Some((key, destructor, value));
            }
        }
        None
    }
}

thread_local! {
    /// Values of an OS thread that is not green, made on its first use. A thread-local is
    /// right here: such a thread keeps its own TCB (only green threads have theirs
    /// switched). Constant, with no destructor: a destructor is registered with glibc's
    /// `calloc` under its loader lock, and std sets a key as it starts each of greenify's
    /// OS threads (workers, the monitor): one started while the program held that lock
    /// (OpenBLAS creating its threads inside `dlopen`) waited for the `dlopen` to end, and
    /// one that got the CPU only after the program took all of `RLIMIT_AS` aborted the
    /// process. No native thread's key destructors run, so an OS thread of that kind
    /// that ends leaves its table behind (a few words).
    static NATIVE_VALUES: Cell<*const RefCell<Values>> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` on the calling (non-green) OS thread's values.
pub fn with_native<R>(f: impl FnOnce(&mut Values) -> R) -> R {
    NATIVE_VALUES.with(|slot| {
        if slot.get().is_null() {
            slot.set(Box::into_raw(Box::new(RefCell::new(Values::default()))));
        }
        // SAFETY: made above, never freed (see NATIVE_VALUES), and only this OS thread
        // reaches it.
        let values = unsafe { &*slot.get() };
        f(&mut values.borrow_mut())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_key_lifetimes() {
        let a = create(0).unwrap();
        let b = create(0x1234).unwrap();
        assert_ne!(a, b);
        let mut v = Values::default();
        assert_eq!(v.get(a), 0);
        v.set(a, 10).unwrap();
        v.set(b, 20).unwrap();
        assert_eq!((v.get(a), v.get(b)), (10, 20));
        assert_eq!(v.take_due(0), Some((b as usize, 0x1234, 20)));
        assert_eq!(v.take_due(0), None);
        assert_eq!(v.get(b), 0);
        let mut fresh = Values::default();
        let room = fresh.room_needed(a).unwrap();
        assert_eq!(fresh.grow_into(Vec::with_capacity(room)).capacity(), 0);
        assert_eq!(fresh.room_needed(a), None);
        fresh.set(a, 30).unwrap();
        assert_eq!((fresh.get(a), fresh.values.capacity()), (30, room));
        assert_eq!(fresh.room_needed(KEYS_MAX as u32), None);
        delete(a).unwrap();
        assert_eq!(delete(a), Err(libc::EINVAL));
        assert_eq!(v.get(a), 0);
        assert_eq!(v.set(a, 1), Err(libc::EINVAL));
        delete(b).unwrap();
        assert_eq!(delete(KEYS_MAX as u32), Err(libc::EINVAL));
    }
}
