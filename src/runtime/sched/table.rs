//! The table of thread records, indexed by thread id: records that never move once made.
//!
//! A `Vec` moved every record as it grew, so nothing outside the scheduler's lock could
//! keep a pointer to one; a waker that readies a thread without the lock (issue 11) needs
//! records at stable addresses. The table is one mapping reserved at once (`PROT_NONE`:
//! address space only, no commit charge, no page touched) and made writable as it grows,
//! [`COMMIT_STEP`] at a time; a record's address is the mapping's plus its id times the
//! record's size, as in a `Vec`, so indexing costs what it did. A million records take
//! the pages they touch, as a `Vec` of them did (whose spare capacity was untouched).
//!
//! The reservation is [`MAX_RECORDS`] records, or a sixteenth of the address-space limit
//! (`RLIMIT_AS`) when that is smaller, as the stack arenas do (stack.rs), halved while
//! the kernel refuses; a spawn past it fails with `EAGAIN` as one past the stacks does.
//! The table lives as long as its scheduler, which is never dropped (a forked child keeps
//! its copy): records are neither dropped nor unmapped.

use super::thread::Thread;
use crate::runtime::raw::syscall;
use std::ops::{Deref, DerefMut};

/// The most records a table holds: 16 Mi, far above what memory affords (a thread takes
/// some 4 KiB besides its record), reserved as address space only.
const MAX_RECORDS: usize = 16 << 20;
/// How much of the reservation each growth makes writable (one `mprotect`).
const COMMIT_STEP: usize = 256 << 10;
/// The fewest records a reservation is shrunk to before the table gives up.
const MIN_RECORDS: usize = 64;

pub(super) struct Threads {
    base: *mut Thread,
    len: usize,
    /// Bytes of the mapping made writable (from its start).
    writable: usize,
    /// Records the reservation holds.
    capacity: usize,
}

impl Threads {
    /// A table holding `first` (the record of MAIN, id 0).
    pub(super) fn new(first: Thread) -> Threads {
        Threads::with_capacity(first, reservation_target() / std::mem::size_of::<Thread>())
    }

    /// A table holding `first`, with room reserved for at most `capacity` records.
    fn with_capacity(first: Thread, mut capacity: usize) -> Threads {
        let size = std::mem::size_of::<Thread>();
        let base = loop {
            if capacity < MIN_RECORDS {
                crate::runtime::overflow::die("greenify: no address space for thread records");
            }
            // SAFETY: a new anonymous mapping; no memory of ours is named.
            let at = unsafe {
                syscall(
                    libc::SYS_mmap,
                    &[
                        0,
                        capacity * size,
                        libc::PROT_NONE as usize,
                        (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE) as usize,
                        usize::MAX,
                        0,
                    ],
                )
            };
            if at >= 0 {
                break at as *mut Thread;
            }
            capacity /= 2;
        };
        let mut threads = Threads {
            base,
            len: 0,
            writable: 0,
            capacity,
        };
        if threads.push(first).is_none() {
            crate::runtime::overflow::die("greenify: no memory for thread records");
        }
        threads
    }

    /// Appends `t`; its index, or None when the reservation is full or the kernel will not
    /// back more of it.
    pub(super) fn push(&mut self, t: Thread) -> Option<usize> {
        let end = (self.len + 1) * std::mem::size_of::<Thread>();
        if end > self.writable && !self.commit_more(end) {
            return None;
        }
        // SAFETY: the slot after the last record ends within the writable part of the
        // mapping and is unused; it is aligned as the mapping (page-aligned) plus a
        // multiple of the record's size.
        unsafe { self.base.add(self.len).write(t) };
        self.len += 1;
        Some(self.len - 1)
    }

    /// Makes the reservation writable up to `end` bytes and [`COMMIT_STEP`] more where it
    /// has them (out of line: once per some hundreds of records); false if it cannot.
    #[cold]
    #[inline(never)]
    fn commit_more(&mut self, end: usize) -> bool {
        let page = rustix::param::page_size();
        let reserved = (self.capacity * std::mem::size_of::<Thread>()).div_ceil(page) * page;
        let (from, to) = (self.writable, (self.writable + COMMIT_STEP).min(reserved));
        if to < end {
            return false;
        }
        // SAFETY: `[from, to)` lies inside the reservation, which only this table uses.
        let done = unsafe {
            syscall(
                libc::SYS_mprotect,
                &[
                    self.base as usize + from,
                    to - from,
                    (libc::PROT_READ | libc::PROT_WRITE) as usize,
                ],
            )
        };
        if done < 0 {
            return false;
        }
        self.writable = to;
        true
    }
}

/// How many bytes of address space to reserve first: room for [`MAX_RECORDS`], or a
/// sixteenth of the address-space limit when that is smaller.
fn reservation_target() -> usize {
    let most = MAX_RECORDS * std::mem::size_of::<Thread>();
    match rustix::process::getrlimit(rustix::process::Resource::As).current {
        Some(limit) => (limit as usize / 16).min(most),
        None => most,
    }
}

impl Deref for Threads {
    type Target = [Thread];

    #[inline(always)]
    fn deref(&self) -> &[Thread] {
        // SAFETY: the first `len` records are initialized and never move; `&self` lends
        // them out shared.
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }
}

impl DerefMut for Threads {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [Thread] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_addresses_as_the_table_grows_until_it_is_full() {
        let records = 3 * COMMIT_STEP / std::mem::size_of::<Thread>();
        let mut table = Threads::with_capacity(Thread::free(), records);
        let first = std::ptr::from_ref(&table[0]);
        table[0].seq = 7;
        while table.push(Thread::free()).is_some() {
            let last = table.len() - 1;
            table[last].seq = last as u32;
        }
        assert_eq!(table.len(), records);
        assert_eq!(std::ptr::from_ref(&table[0]), first);
        assert_eq!(table[0].seq, 7);
        assert!((1..records).all(|i| table[i].seq == i as u32));
    }
}
