//! Deadlines: a min-heap of (deadline, waiter).
//!
//! Cancelling is lazy: a waiter woken by something else bumps its wait sequence, so its
//! timer entry no longer matches and is dropped when it reaches the top. To keep such dead
//! entries from piling up (many short I/O waits with long timeouts), the heap is compacted
//! when dead entries outnumber live ones.

use super::wait::WaitKey;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, WaitKey)>>,
    /// Insertion counter: equal deadlines fire in the order they were armed.
    next_order: u64,
}

impl Timers {
    pub fn arm(&mut self, deadline: Instant, key: WaitKey) {
        self.heap.push(Reverse((deadline, self.next_order, key)));
        self.next_order += 1;
    }

    /// The earliest deadline, live or dead (a dead one only causes an early wakeup).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Removes every entry due at `now` and hands its key to `fire`.
    pub fn expire(&mut self, now: Instant, mut fire: impl FnMut(WaitKey)) {
        while let Some(Reverse((deadline, _, key))) = self.heap.peek() {
            if *deadline > now {
                break;
            }
            let key = *key;
            self.heap.pop();
            fire(key);
        }
    }

    /// Every armed entry (for a thread dump; stale keys included).
    pub fn each(&self, mut each: impl FnMut(Instant, WaitKey)) {
        self.heap
            .iter()
            .for_each(|Reverse((d, _, key))| each(*d, *key));
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops the entries whose waiter is gone, when they are the majority.
    pub fn compact(&mut self, live: usize, is_live: impl Fn(WaitKey) -> bool) {
        if self.heap.len() > 2 * live + 1024 {
            self.heap.retain(|Reverse((_, _, key))| is_live(*key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(tid: u32) -> WaitKey {
        WaitKey { tid, seq: 0 }
    }

    #[test]
    fn fires_in_deadline_then_arming_order() {
        let mut t = Timers::default();
        let base = Instant::now();
        t.arm(base + Duration::from_millis(30), key(3));
        t.arm(base + Duration::from_millis(10), key(1));
        t.arm(base + Duration::from_millis(10), key(2));
        t.arm(base + Duration::from_millis(50), key(4));
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(10)));
        let mut fired = vec![];
        t.expire(base + Duration::from_millis(30), |k| fired.push(k.tid));
        assert_eq!(fired, vec![1, 2, 3]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn compaction_keeps_live_entries() {
        let mut t = Timers::default();
        let base = Instant::now();
        for i in 0..5000 {
            t.arm(base + Duration::from_secs(1), key(i));
        }
        t.compact(1, |k| k.tid == 7);
        assert_eq!(t.len(), 1);
        let mut fired = vec![];
        t.expire(base + Duration::from_secs(2), |k| fired.push(k.tid));
        assert_eq!(fired, vec![7]);
    }
}
