//! The table of thread records, indexed by thread id: records that never move once made.
//!
//! A `Vec` moved every record as it grew, so nothing outside the scheduler's lock could
//! keep a pointer to one; a waker that readies a thread without the lock (issue 11) needs
//! records at stable addresses. The table is chunks that are never moved nor freed:
//! chunk `k` holds `FIRST << k` records, from id `FIRST * (2^k - 1)` on, allocated from
//! greenify's allocator (alloc.rs) as the table reaches it. The first chunk, made with
//! the table, serves most programs' threads at a `Vec`'s cost (one compare, then the
//! record's address); past it a record costs a look-up in the chunk directory (a few
//! instructions). Chunks are large blocks, mapped by the allocator and touched only as
//! records are made: a million records take the pages they fill, as the `Vec` did.
//!
//! Not one reservation of address space for the most records (a mapping made writable as
//! it grows, which would have cost the `Vec`'s instructions everywhere): a program that
//! lowers its `RLIMIT_AS` below what it uses could then map nothing more (the `stacks`
//! test's `stack_limits` hung so, with greenify's own tables unable to allocate).
//!
//! The table lives as long as its scheduler, which is never dropped (a forked child keeps
//! its copy): records are neither dropped nor freed.

use super::thread::Thread;
use std::alloc::{alloc, Layout};
use std::ops::{Index, IndexMut};

/// Records in the first chunk.
const FIRST: usize = 4096;
/// Chunks at most: `FIRST * (2^CHUNKS - 1)` records, more than ids can name.
const CHUNKS: usize = 21;

pub(super) struct Threads {
    /// `chunks[0]`, for the fast path of an index.
    first: *mut Thread,
    /// Records made in the first chunk: `len` up to [`FIRST`].
    first_len: usize,
    len: usize,
    chunks: [*mut Thread; CHUNKS],
}

impl Threads {
    /// A table holding `first` (the record of MAIN, id 0).
    pub(super) fn new(first: Thread) -> Threads {
        let mut threads = Threads {
            first: std::ptr::null_mut(),
            first_len: 0,
            len: 0,
            chunks: [std::ptr::null_mut(); CHUNKS],
        };
        if threads.push(first).is_none() {
            crate::runtime::overflow::die("greenify: no memory for thread records");
        }
        threads.first = threads.chunks[0];
        threads
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `t`; its id, or None when no memory is left for its chunk.
    pub(super) fn push(&mut self, t: Thread) -> Option<usize> {
        let (chunk, offset) = place(self.len);
        if self.chunks[chunk].is_null() {
            self.chunks[chunk] = new_chunk(chunk)?;
        }
        // SAFETY: `offset` lies inside chunk `chunk` (see `place`), whose records from
        // `offset` on are not made yet.
        unsafe { self.chunks[chunk].add(offset).write(t) };
        self.len += 1;
        self.first_len = self.len.min(FIRST);
        Some(self.len - 1)
    }

    pub(super) fn get(&self, id: usize) -> Option<&Thread> {
        (id < self.len).then(|| &self[id])
    }

    pub(super) fn get_mut(&mut self, id: usize) -> Option<&mut Thread> {
        (id < self.len).then(|| &mut self[id])
    }

    /// The records, by id.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Thread> {
        self.filled().flat_map(|(at, n)| {
            // SAFETY: the records made in one chunk.
            unsafe { std::slice::from_raw_parts(at, n) }
        })
    }

    /// The records, by id.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Thread> {
        self.filled().flat_map(|(at, n)| {
            // SAFETY: the records made in one chunk, disjoint from the other chunks';
            // `&mut self` lends them all out once.
            unsafe { std::slice::from_raw_parts_mut(at, n) }
        })
    }

    /// Each chunk that holds records: its start and how many it holds.
    fn filled(&self) -> impl Iterator<Item = (*mut Thread, usize)> + use<'_> {
        let len = self.len;
        (0..CHUNKS).map_while(move |k| {
            let from = FIRST * ((1 << k) - 1);
            (from < len).then(|| (self.chunks[k], (len - from).min(FIRST << k)))
        })
    }

    /// The record `id` past the first chunk.
    #[cold]
    #[inline(never)]
    fn far(&self, id: usize) -> *mut Thread {
        assert!(
            id < self.len,
            "thread id {id} past the table ({})",
            self.len
        );
        let (chunk, offset) = place(id);
        // SAFETY: a made record lies in an allocated chunk, at `offset` inside it.
        unsafe { self.chunks[chunk].add(offset) }
    }
}

/// The chunk that holds record `id`, and its offset there.
#[inline]
fn place(id: usize) -> (usize, usize) {
    let k = (usize::BITS - 1 - (id / FIRST + 1).leading_zeros()) as usize;
    (k, id - FIRST * ((1 << k) - 1))
}

/// A new chunk `k` (uninitialized), or None without memory.
#[cold]
fn new_chunk(k: usize) -> Option<*mut Thread> {
    let layout = Layout::array::<Thread>(FIRST << k).ok()?;
    // SAFETY: the layout is not zero-sized.
    let at = unsafe { alloc(layout) }.cast::<Thread>();
    (!at.is_null()).then_some(at)
}

impl Index<usize> for Threads {
    type Output = Thread;

    #[inline(always)]
    fn index(&self, id: usize) -> &Thread {
        let at = if id < self.first_len {
            // SAFETY: a made record of the first chunk.
            unsafe { self.first.add(id) }
        } else {
            self.far(id)
        };
        // SAFETY: a made record; `&self` lends it out shared.
        unsafe { &*at }
    }
}

impl IndexMut<usize> for Threads {
    #[inline(always)]
    fn index_mut(&mut self, id: usize) -> &mut Thread {
        let at = if id < self.first_len {
            // SAFETY: a made record of the first chunk.
            unsafe { self.first.add(id) }
        } else {
            self.far(id)
        };
        // SAFETY: a made record; `&mut self` makes this the only reference.
        unsafe { &mut *at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_addresses_as_the_table_grows() {
        let records = FIRST * 7 + 5;
        let mut table = Threads::new(Thread::free());
        table[0].generation = 7;
        let first = std::ptr::from_ref(&table[0]);
        let mut addresses = vec![first];
        while table.len() < records {
            let id = table.push(Thread::free()).expect("memory for records");
            table[id].generation = id as u32;
            addresses.push(std::ptr::from_ref(&table[id]));
        }
        assert_eq!(table[0].generation, 7);
        assert!((1..records).all(|id| table[id].generation == id as u32));
        assert!((0..records).all(|id| std::ptr::from_ref(&table[id]) == addresses[id]));
        let by_iter: Vec<_> = table.iter().map(std::ptr::from_ref).collect();
        assert_eq!(by_iter, addresses);
        assert_eq!(table.iter_mut().count(), records);
        assert!(table.get(records).is_none());
        assert_eq!(place(FIRST - 1), (0, FIRST - 1));
        assert_eq!(place(FIRST), (1, 0));
        assert_eq!(place(3 * FIRST), (2, 0));
    }
}
