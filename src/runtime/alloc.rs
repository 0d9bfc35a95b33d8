//! greenify's own memory allocator: no allocation of the library ever calls the
//! program's `malloc`.
//!
//! The program's allocator (jemalloc, tcmalloc, its own) calls hooked functions from
//! inside itself (`pthread_mutex_lock`, `pthread_once`, `nanosleep`, `sched_yield`); if
//! greenify then allocated from it, that allocator would be re-entered in the middle of
//! its own work (jemalloc crashes, tcmalloc spins for ever), and a program's `malloc` that
//! takes a mutex a parked green thread holds would deadlock a scheduler section.
//!
//! Hand-written rather than a crate: the crates that fit a global allocator either lock
//! with `pthread_mutex` (rlsf's `GlobalTlsf`), or spin with no notion of an owner (so a
//! re-entrant call from a signal handler deadlocks: `spin`-locked talc and
//! buddy_system_allocator), or search lists in O(n) (linked_list_allocator), and none
//! takes its memory with raw system calls. Rust hands `dealloc` the layout, so blocks need
//! no header: this is a few size classes and bump pointers.
//!
//! - Small blocks (up to [`SMALL_MAX`], alignment up to 4 KiB): 40 size classes (16-byte
//!   steps to 128, then four per doubling, so at most 25% is lost to rounding), each a
//!   free list and a bump range carved out of 64 KiB slabs of 4 MiB `mmap`'d chunks
//!   (pages are touched only when used). A block over-aligned for its size takes the
//!   power-of-two class of its alignment: those blocks sit at multiples of their size
//!   from a page-aligned slab. Freed blocks go back to their class's list, never to the
//!   kernel.
//! - Large blocks: straight from `mmap` (always zeroed: `alloc_zeroed` writes nothing),
//!   grown by `mremap`, returned by `munmap`. They take no lock.
//! - The lock is a word holding the owner's thread pointer (`%fs:0`, unique per OS thread
//!   and per green thread, and green threads never switch inside the allocator), spun on
//!   with raw `sched_yield`: no hooked function. A call made while the same thread holds
//!   it (a program's signal handler that interrupted the allocator and called a hook that
//!   allocates) is served from a lock-free emergency bump area whose blocks are never
//!   reused, and a block freed that way is leaked: the lists are mid-update.
//! - fork: a child whose lock another OS thread held at the fork takes it over with empty
//!   lists ([`after_fork_child`]), as the fork hook returns or as soon as an atfork
//!   handler of the child allocates. The lock is not held across the fork: the program's
//!   prepare handlers may park, and other green threads allocate meanwhile.

use super::raw::syscall;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

/// The largest small block; larger ones are mapped on their own.
pub const SMALL_MAX: usize = 32 << 10;
/// The largest alignment a small block may ask for (a slab is page-aligned).
const SMALL_ALIGN_MAX: usize = 4096;
const CLASSES: usize = 40;
const SLAB: usize = 64 << 10;
const CHUNK: usize = 4 << 20;
/// The emergency area's size: only re-entrant calls (from a signal handler) use it.
const EMERGENCY: usize = 4 << 20;

const fn class_size(class: usize) -> usize {
    if class < 8 {
        16 * (class + 1)
    } else {
        let bits = 7 + (class - 8) / 4;
        (5 + (class - 8) % 4) << (bits - 2)
    }
}

const SIZES: [usize; CLASSES] = {
    let mut sizes = [0; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        sizes[c] = class_size(c);
        c += 1;
    }
    sizes
};

/// The class of a block of `size` bytes (16-byte aligned), for `size <= SMALL_MAX`.
#[inline]
fn class_of_size(size: usize) -> usize {
    if size <= 128 {
        return size.max(1).div_ceil(16) - 1;
    }
    let n = size - 1;
    let bits = (usize::BITS - 1 - n.leading_zeros()) as usize;
    8 + (bits - 7) * 4 + ((n >> (bits - 2)) - 4)
}

/// The small class of `layout`, or None for a large block.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    let size = if align <= 16 {
        size
    } else if align <= SMALL_ALIGN_MAX {
        size.max(align).checked_next_power_of_two()?
    } else {
        return None;
    };
    (size <= SMALL_MAX).then(|| class_of_size(size))
}

/// The thread pointer: the running thread's TCB, unique among the live OS threads and
/// green threads.
#[inline]
fn thread_pointer() -> usize {
    let tp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: glibc keeps the TCB's own address at %fs:0 for every thread (greenify's
    // green TCBs too).
    unsafe {
        std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads the thread register.
    unsafe {
        std::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nostack, nomem, preserves_flags));
    }
    tp
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// Anonymous private memory of `len` bytes (a page multiple), or None.
fn map(len: usize) -> Option<usize> {
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as usize;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE) as usize;
    // SAFETY: a new anonymous mapping; no memory of ours is named.
    let at = unsafe { syscall(libc::SYS_mmap, &[0, len, prot, flags, usize::MAX, 0]) };
    (at >= 0).then_some(at as usize)
}

/// # Safety
/// `[at, at + len)` is a mapping of ours that nothing uses any more.
unsafe fn unmap(at: usize, len: usize) {
    if len > 0 {
        // SAFETY: the caller's promise.
        unsafe { syscall(libc::SYS_munmap, &[at, len]) };
    }
}

struct Heap {
    free: [usize; CLASSES],
    bump: [usize; CLASSES],
    end: [usize; CLASSES],
    chunk: usize,
    chunk_end: usize,
}

impl Heap {
    const EMPTY: Heap = Heap {
        free: [0; CLASSES],
        bump: [0; CLASSES],
        end: [0; CLASSES],
        chunk: 0,
        chunk_end: 0,
    };

    fn slab(&mut self) -> Option<usize> {
        if self.chunk == self.chunk_end {
            self.chunk = map(CHUNK)?;
            self.chunk_end = self.chunk + CHUNK;
        }
        let slab = self.chunk;
        self.chunk += SLAB;
        Some(slab)
    }

    fn alloc(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if head != 0 {
            // SAFETY: a free block of this class holds the next one's address.
            self.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = SIZES[class];
        if self.bump[class] + size > self.end[class] {
            let Some(slab) = self.slab() else {
                return std::ptr::null_mut();
            };
            self.bump[class] = slab;
            self.end[class] = slab + SLAB;
        }
        let block = self.bump[class];
        self.bump[class] += size;
        block as *mut u8
    }

    /// # Safety
    /// `block` came from `alloc(class)` and is no longer used.
    unsafe fn free(&mut self, block: *mut u8, class: usize) {
        // SAFETY: the block is ours and at least 16 bytes.
        unsafe { *(block as *mut usize) = self.free[class] };
        self.free[class] = block as usize;
    }
}

struct Locked {
    owner: AtomicUsize,
    heap: UnsafeCell<Heap>,
}

// SAFETY: `heap` is touched only by the thread whose thread pointer is in `owner`.
unsafe impl Sync for Locked {}

static HEAP: Locked = Locked {
    owner: AtomicUsize::new(0),
    heap: UnsafeCell::new(Heap::EMPTY),
};

/// The heap, locked for this thread; it unlocks when dropped.
struct Guard(());

impl Guard {
    /// None if this very thread holds the lock already (a signal handler interrupted it).
    #[inline]
    fn lock() -> Option<Guard> {
        let me = thread_pointer();
        let mut spins = 0u32;
        loop {
            match HEAP.owner.compare_exchange_weak(0, me, Acquire, Relaxed) {
                Ok(_) => return Some(Guard(())),
                Err(owner) if owner == me => return None,
                Err(owner) => {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        if let Some(guard) = take_stale(owner, me) {
                            return Some(guard);
                        }
                        // SAFETY: takes no argument; raw, so no hook sees it.
                        unsafe { syscall(libc::SYS_sched_yield, &[]) };
                    }
                }
            }
        }
    }

    fn heap(&mut self) -> &mut Heap {
        // SAFETY: this thread owns the lock, and the guard lends the heap once at a time.
        unsafe { &mut *HEAP.heap.get() }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        HEAP.owner.store(0, Release);
    }
}

/// The process whose heap this is, noted by the fork hook before it forks (0: none
/// forked yet). A lock found held in a child the hook has not yet met (its atfork
/// handlers run first) is a forked copy of another OS thread's.
static HEAP_PID: AtomicUsize = AtomicUsize::new(0);

fn getpid() -> usize {
    // SAFETY: takes no argument; raw, so no hook sees it.
    unsafe { syscall(libc::SYS_getpid, &[]) as usize }
}

/// Before `fork`: notes whose heap this is.
pub fn before_fork() {
    HEAP_PID.store(getpid(), Relaxed);
}

/// In a forked child, before anything else allocates: a lock another OS thread of the
/// parent held is stale (that thread does not exist here), and the lists it may have
/// been changing are given up for empty ones (the blocks they held stay mapped, and
/// blocks freed from now on go to the new lists).
pub fn after_fork_child() {
    let me = thread_pointer();
    if HEAP_PID.swap(getpid(), Relaxed) != getpid() {
        let owner = HEAP.owner.load(Relaxed);
        if owner != 0 && owner != me {
            // SAFETY: the only thread of the child; the stale owner is gone.
            unsafe { *HEAP.heap.get() = Heap::EMPTY };
            HEAP.owner.store(0, Release);
        }
    }
}

/// The spinning thread of a child whose atfork handlers allocate before the fork hook
/// ran [`after_fork_child`]: takes over the stale lock.
fn take_stale(owner: usize, me: usize) -> Option<Guard> {
    let parent = HEAP_PID.load(Relaxed);
    if parent == 0 || getpid() == parent {
        return None;
    }
    HEAP.owner
        .compare_exchange(owner, me, Acquire, Relaxed)
        .ok()?;
    HEAP_PID.store(getpid(), Relaxed);
    // SAFETY: the child's only thread holds the lock now.
    unsafe { *HEAP.heap.get() = Heap::EMPTY };
    Some(Guard(()))
}

static EMERGENCY_BASE: AtomicUsize = AtomicUsize::new(0);
static EMERGENCY_USED: AtomicUsize = AtomicUsize::new(0);

/// A block for a call made while this thread holds the lock: bumped, lock-free.
fn emergency(class: usize) -> *mut u8 {
    let mut base = EMERGENCY_BASE.load(Acquire);
    if base == 0 {
        let Some(mapped) = map(EMERGENCY) else {
            return std::ptr::null_mut();
        };
        base = match EMERGENCY_BASE.compare_exchange(0, mapped, Release, Acquire) {
            Ok(_) => mapped,
            Err(other) => {
                // SAFETY: our fresh mapping, lost the race and never handed out.
                unsafe { unmap(mapped, EMERGENCY) };
                other
            }
        };
    }
    let size = SIZES[class];
    // Power-of-two classes need their own alignment (up to a page): align every block
    // to the largest power of two dividing its size.
    let align = (1usize << size.trailing_zeros()).min(SMALL_ALIGN_MAX);
    let mut used = EMERGENCY_USED.load(Relaxed);
    loop {
        let at = (base + used).next_multiple_of(align);
        if at + size > base + EMERGENCY {
            return std::ptr::null_mut();
        }
        match EMERGENCY_USED.compare_exchange_weak(used, at + size - base, Relaxed, Relaxed) {
            Ok(_) => return at as *mut u8,
            Err(now) => used = now,
        }
    }
}

fn is_emergency(block: *mut u8) -> bool {
    let base = EMERGENCY_BASE.load(Relaxed);
    base != 0 && (base..base + EMERGENCY).contains(&(block as usize))
}

/// A large block's mapped length.
fn large_len(layout: Layout) -> Option<usize> {
    layout.size().max(1).checked_next_multiple_of(page_size())
}

fn alloc_large(layout: Layout) -> *mut u8 {
    let Some(len) = large_len(layout) else {
        return std::ptr::null_mut();
    };
    let align = layout.align();
    if align <= page_size() {
        return map(len).map_or(std::ptr::null_mut(), |at| at as *mut u8);
    }
    // Over-map, then give back the head and the tail around the aligned block.
    let Some(Some(at)) = len.checked_add(align).map(map) else {
        return std::ptr::null_mut();
    };
    let start = at.next_multiple_of(align);
    // SAFETY: the parts of our fresh mapping outside the block.
    unsafe {
        unmap(at, start - at);
        unmap(start + len, at + len + align - (start + len));
    }
    start as *mut u8
}

/// The global allocator of the library (see the module's comment).
pub struct Allocator;

// SAFETY: small blocks come from disjoint slab ranges handed out under the lock (or the
// emergency area, bumped atomically), sized and aligned by their class; large blocks are
// their own page-aligned mappings; a block goes back where it came from, found by its
// layout (as `dealloc` receives the one `alloc` was given).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return alloc_large(layout);
        };
        match Guard::lock() {
            Some(mut heap) => heap.heap().alloc(class),
            None => emergency(class),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            let len = large_len(layout).expect("a mapped block's length fits");
            // SAFETY: a large block is its own mapping of that length.
            unsafe { unmap(block as usize, len) };
            return;
        };
        if is_emergency(block) {
            return;
        }
        if let Some(mut heap) = Guard::lock() {
            // SAFETY: the caller's block, of this class.
            unsafe { heap.heap().free(block, class) };
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // Fresh anonymous pages are zero.
            return alloc_large(layout);
        }
        // SAFETY: forwarded; a non-null block has `layout.size()` bytes.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                std::ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for the new size.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new)) {
            (Some(old), Some(class)) if old == class && !is_emergency(block) => return block,
            (None, None) if layout.align() <= page_size() => {
                let (Some(old_len), Some(new_len)) = (large_len(layout), large_len(new)) else {
                    return std::ptr::null_mut();
                };
                if old_len == new_len {
                    return block;
                }
                // SAFETY: our mapping of `old_len` bytes; the kernel moves it if needed.
                let at = unsafe {
                    syscall(
                        libc::SYS_mremap,
                        &[
                            block as usize,
                            old_len,
                            new_len,
                            libc::MREMAP_MAYMOVE as usize,
                        ],
                    )
                };
                return if at < 0 {
                    std::ptr::null_mut()
                } else {
                    at as *mut u8
                };
            }
            _ => {}
        }
        // SAFETY: a new block, the old one's bytes that fit, and the old block given back.
        unsafe {
            let moved = self.alloc(new);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size_with_at_most_a_quarter_lost() {
        let mut previous = 0;
        for (c, &size) in SIZES.iter().enumerate() {
            assert!(size > previous && size % 16 == 0, "class {c}: {size}");
            assert_eq!(class_of_size(size), c);
            assert_eq!(class_of_size(previous + 1), c);
            if previous >= 128 {
                assert!(
                    (size - previous - 1) * 4 <= previous + 1,
                    "class {c}: {size}"
                );
            }
            previous = size;
        }
        assert_eq!(previous, SMALL_MAX);
        assert_eq!(
            class_of(Layout::from_size_align(SMALL_MAX + 1, 8).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(8, 8192).unwrap()), None);
        assert_eq!(
            SIZES[class_of(Layout::from_size_align(40, 64).unwrap()).unwrap()],
            64
        );
    }

    /// Fills `block` with a pattern of `seed`, or checks it.
    fn pattern(block: *mut u8, len: usize, seed: u8, check: bool) {
        for i in 0..len {
            let want = seed.wrapping_add((i % 251) as u8);
            // SAFETY: `block` has `len` bytes.
            unsafe {
                if check {
                    assert_eq!(*block.add(i), want, "byte {i} of {len}");
                } else {
                    *block.add(i) = want;
                }
            }
        }
    }

    #[test]
    fn threads_allocate_and_free_at_once_every_size_and_alignment() {
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut held: Vec<(*mut u8, Layout, u8)> = Vec::new();
                    let mut seed = 0x9e37_79b9u32.wrapping_mul(u32::from(t) + 1);
                    for round in 0..3000u32 {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        let size = match round % 10 {
                            0 => 1 + (seed >> 8) as usize % (3 * SMALL_MAX),
                            1 => 1 + (seed >> 8) as usize % (SMALL_MAX + 4096),
                            _ => 1 + (seed >> 8) as usize % 2000,
                        };
                        let align = 1 << ((seed >> 4) % 17); // up to 64 KiB
                        let layout = Layout::from_size_align(size, align).unwrap();
                        // SAFETY: a non-zero size.
                        let block = unsafe { Allocator.alloc(layout) };
                        assert!(!block.is_null());
                        assert_eq!(block as usize % align, 0, "{layout:?}");
                        let mark = (seed >> 20) as u8;
                        pattern(block, size.min(512), mark, false);
                        held.push((block, layout, mark));
                        if held.len() > 64 {
                            let (block, layout, mark) = held.swap_remove((seed % 64) as usize);
                            pattern(block, layout.size().min(512), mark, true);
                            // SAFETY: allocated above with this layout.
                            unsafe { Allocator.dealloc(block, layout) };
                        }
                    }
                    for (block, layout, mark) in held {
                        pattern(block, layout.size().min(512), mark, true);
                        // SAFETY: allocated above with this layout.
                        unsafe { Allocator.dealloc(block, layout) };
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn realloc_grows_and_shrinks_keeping_the_contents() {
        for align in [8, 64, 4096, 16384] {
            let mut layout = Layout::from_size_align(24, align).unwrap();
            // SAFETY: a non-zero size.
            let mut block = unsafe { Allocator.alloc(layout) };
            pattern(block, 24, 7, false);
            let mut kept = 24;
            for size in [100, 5000, 40_000, 1 << 20, 3 << 20, 70_000, 300, 10] {
                // SAFETY: our block with its layout.
                block = unsafe { Allocator.realloc(block, layout, size) };
                assert!(!block.is_null());
                assert_eq!(block as usize % align, 0);
                kept = kept.min(size);
                pattern(block, kept, 7, true);
                pattern(block, size, 7, false);
                kept = size;
                layout = Layout::from_size_align(size, align).unwrap();
            }
            // SAFETY: our block with its layout.
            unsafe { Allocator.dealloc(block, layout) };
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        for size in [48, 3000, SMALL_MAX + 1, 1 << 20] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: a non-zero size; the block is filled, freed, and taken again zeroed.
            unsafe {
                let block = Allocator.alloc(layout);
                std::ptr::write_bytes(block, 0xa5, size);
                Allocator.dealloc(block, layout);
                let block = Allocator.alloc_zeroed(layout);
                assert!(std::slice::from_raw_parts(block, size)
                    .iter()
                    .all(|&b| b == 0));
                Allocator.dealloc(block, layout);
            }
        }
    }

    #[test]
    fn a_thread_that_holds_the_lock_is_served_from_the_emergency_area() {
        let layout = Layout::from_size_align(100, 8).unwrap();
        let big = Layout::from_size_align(SMALL_MAX * 2, 8).unwrap();
        // As a signal handler that interrupted this thread inside the allocator would.
        let held = Guard::lock().expect("not held by this thread yet");
        // SAFETY: non-zero sizes; the blocks are given back with their layouts.
        unsafe {
            let block = Allocator.alloc(layout);
            assert!(is_emergency(block));
            pattern(block, 100, 3, false);
            let large = Allocator.alloc(big);
            assert!(!large.is_null() && !is_emergency(large));
            Allocator.dealloc(large, big);
            Allocator.dealloc(block, layout);
            drop(held);
            let block2 = Allocator.alloc(layout);
            assert!(!is_emergency(block2));
            Allocator.dealloc(block2, layout);
        }
    }

    #[test]
    fn a_child_forked_while_another_thread_held_the_lock_allocates() {
        use std::sync::atomic::AtomicBool;
        static HELD: AtomicBool = AtomicBool::new(false);
        static RELEASE: AtomicBool = AtomicBool::new(false);
        let holder = std::thread::spawn(|| {
            let guard = Guard::lock();
            HELD.store(true, Release);
            while !RELEASE.load(Acquire) {
                std::hint::spin_loop();
            }
            drop(guard);
        });
        while !HELD.load(Acquire) {
            std::hint::spin_loop();
        }
        before_fork();
        // SAFETY: the child only allocates, frees and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            after_fork_child();
            let kept: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([1; 100])).collect();
            drop(kept);
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(0) };
        }
        RELEASE.store(true, Release);
        holder.join().unwrap();
        let mut status = 0;
        for _ in 0..1000 {
            // SAFETY: our child; status is ours.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "{status}"
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("the child spun on a lock no thread of its own held");
    }
}
