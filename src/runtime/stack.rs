//! Green thread stacks: slots carved from large `MAP_NORESERVE` arenas.
//!
//! A slot is `[protect page][usable stack ...............]`, lowest address first. The
//! stack grows down from the slot's top towards the protect page.
//!
//! Guarding: `vm.max_map_count` (65530 here) caps the number of mappings a process may
//! have, and an `mprotect`ed guard page splits the arena into two extra mappings. So only
//! the first `guard_budget` slots get a real `PROT_NONE` guard page; the rest keep their
//! protect page readable and zero (it is never written by a healthy thread) and the
//! scheduler checks its top [`CANARY_BYTES`] at every switch. Both kinds report an
//! overflow naming the thread; a guard page catches it at the faulting instruction, the
//! canary at the next switch.
//!
//! Memory: the arenas are reserved, not committed; a thread costs only the pages it
//! touched. Freed stacks are kept warm for reuse; past [`WARM_STACKS`] they are returned to
//! the kernel with `MADV_DONTNEED` first.

use corosensei::stack::{Stack, StackPointer};
use memmap2::{MmapMut, MmapOptions};
use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;

/// Bytes at the top of an unguarded slot's protect page that must stay zero.
pub const CANARY_BYTES: usize = 256;
/// Freed stacks kept without `MADV_DONTNEED`, per size class.
const WARM_STACKS: usize = 256;
/// Address space reserved per arena (not memory: `MAP_NORESERVE`, touched pages only).
const ARENA_BYTES: usize = 256 << 20;
/// The smallest stack we hand out.
pub const MIN_STACK: usize = 16 << 10;

pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Rounds a requested stack size to whole pages, at least [`MIN_STACK`].
pub fn round_stack_size(requested: usize) -> usize {
    let page = page_size();
    requested.max(MIN_STACK).div_ceil(page) * page
}

/// One green thread's stack. Either a slot of our arenas or memory the program gave us
/// with `pthread_attr_setstack`.
pub struct GreenStack {
    /// Highest address (exclusive); the stack grows down from here.
    top: usize,
    /// Lowest usable address (just above the protect page for our slots).
    bottom: usize,
    /// Where this stack came from, which decides how it is checked and freed.
    kind: StackKind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StackKind {
    Guarded,
    Canary,
    /// The program's own memory: no guard, no canary, never freed by us.
    User,
}

impl GreenStack {
    /// Wraps memory the program provides (`pthread_attr_setstack`).
    ///
    /// # Safety
    /// `[addr, addr + size)` must be writable memory that nothing else uses while the
    /// thread runs.
    pub unsafe fn from_user(addr: usize, size: usize) -> GreenStack {
        let align = corosensei::stack::STACK_ALIGNMENT;
        GreenStack {
            top: (addr + size) & !(align - 1),
            bottom: addr.next_multiple_of(align),
            kind: StackKind::User,
        }
    }

    pub fn kind(&self) -> StackKind {
        self.kind
    }

    /// Lowest usable address and usable size, as `pthread_getattr_np` reports them.
    pub fn bounds(&self) -> (usize, usize) {
        (self.bottom, self.top - self.bottom)
    }

    /// The protect page below the stack: where an overflow lands first.
    pub fn protect_range(&self) -> Option<(usize, usize)> {
        match self.kind {
            StackKind::User => None,
            _ => Some((self.bottom - page_size(), self.bottom)),
        }
    }

    /// True while the canary of an unguarded stack is intact (always true otherwise).
    pub fn canary_intact(&self) -> bool {
        self.kind != StackKind::Canary || canary_intact_below(self.bottom)
    }
}

/// Whether the canary below the usable stack starting at `bottom` is still zero.
/// Only for stacks of kind [`StackKind::Canary`].
pub fn canary_intact_below(bottom: usize) -> bool {
    let start = (bottom - CANARY_BYTES) as *const u64;
    // SAFETY: for a canary slot, the page below `bottom` is part of our arena mapping and
    // readable (never mprotected), and CANARY_BYTES < page size.
    let words = unsafe { std::slice::from_raw_parts(start, CANARY_BYTES / 8) };
    words.iter().all(|&w| w == 0)
}

// SAFETY: `top` and `bottom` are 16-byte aligned, `limit` includes the protect page (or
// is the user's lowest address), and the memory stays mapped for as long as the
// GreenStack lives (arenas are never unmapped; user stacks are the program's promise).
unsafe impl Stack for GreenStack {
    fn base(&self) -> StackPointer {
        NonZeroUsize::new(self.top).expect("stack top is never zero")
    }

    fn limit(&self) -> StackPointer {
        let limit = match self.kind {
            StackKind::User => self.bottom,
            _ => self.bottom - page_size(),
        };
        NonZeroUsize::new(limit).expect("stack limit is never zero")
    }
}

/// Slots of one stack size.
struct SizeClass {
    /// Bytes of one slot: protect page + usable stack.
    slot_bytes: usize,
    arenas: Vec<MmapMut>,
    /// Next never-used slot in the last arena.
    next_fresh: usize,
    warm: Vec<GreenStack>,
    cold: Vec<GreenStack>,
}

/// All stacks of one scheduler.
pub struct StackPool {
    classes: HashMap<usize, SizeClass>,
    /// How many more slots may get a real guard page.
    guard_budget: usize,
    pub stats: StackStats,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct StackStats {
    pub guarded: usize,
    pub canary: usize,
    pub arenas: usize,
}

impl StackPool {
    pub fn new(guard_budget: usize) -> StackPool {
        StackPool {
            classes: HashMap::new(),
            guard_budget,
            stats: StackStats::default(),
        }
    }

    /// The guard budget this machine affords: half of what is left of `vm.max_map_count`
    /// after a generous reserve for the program's own mappings.
    pub fn default_guard_budget() -> usize {
        let max_maps = read_max_map_count().unwrap_or(65530);
        max_maps.saturating_sub(16384) / 2
    }

    /// A stack with `usable` bytes (already rounded by [`round_stack_size`]).
    pub fn alloc(&mut self, usable: usize) -> io::Result<GreenStack> {
        let page = page_size();
        let class = self.classes.entry(usable).or_insert_with(|| SizeClass {
            slot_bytes: usable + page,
            arenas: Vec::new(),
            next_fresh: 0,
            warm: Vec::new(),
            cold: Vec::new(),
        });
        if let Some(stack) = class.warm.pop().or_else(|| class.cold.pop()) {
            return Ok(stack);
        }
        let slots_per_arena = (ARENA_BYTES / class.slot_bytes).max(1);
        if class.arenas.is_empty() || class.next_fresh == slots_per_arena {
            let arena = MmapOptions::new()
                .len(slots_per_arena * class.slot_bytes)
                .no_reserve_swap()
                .map_anon()?;
            class.arenas.push(arena);
            class.next_fresh = 0;
            self.stats.arenas += 1;
        }
        let arena = class.arenas.last().expect("an arena was just ensured");
        let slot = arena.as_ptr() as usize + class.next_fresh * class.slot_bytes;
        class.next_fresh += 1;
        let mut kind = StackKind::Canary;
        if self.guard_budget > 0 {
            // SAFETY: the page is the first page of a slot inside our own live mapping.
            let protected = unsafe {
                rustix::mm::mprotect(slot as *mut _, page, rustix::mm::MprotectFlags::empty())
            };
            // Past the kernel's mapping limit mprotect fails with ENOMEM: fall back to the
            // canary and stop spending guards.
            match protected {
                Ok(()) => {
                    self.guard_budget -= 1;
                    kind = StackKind::Guarded;
                }
                Err(_) => self.guard_budget = 0,
            }
        }
        match kind {
            StackKind::Guarded => self.stats.guarded += 1,
            _ => self.stats.canary += 1,
        }
        Ok(GreenStack {
            top: slot + class.slot_bytes,
            bottom: slot + page,
            kind,
        })
    }

    /// Takes back a stack whose thread has finished. User stacks are simply forgotten.
    pub fn free(&mut self, stack: GreenStack) {
        if stack.kind == StackKind::User {
            return;
        }
        let usable = stack.top - stack.bottom;
        let Some(class) = self.classes.get_mut(&usable) else {
            return;
        };
        if class.warm.len() < WARM_STACKS {
            class.warm.push(stack);
            return;
        }
        // SAFETY: the usable range belongs to our arena and no thread runs on it any more;
        // MADV_DONTNEED only drops its pages (they read back as zero).
        let _ = unsafe {
            rustix::mm::madvise(
                stack.bottom as *mut _,
                usable,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        class.cold.push(stack);
    }
}

fn read_max_map_count() -> Option<usize> {
    let fd = rustix::fs::open(
        "/proc/sys/vm/max_map_count",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 32];
    let n = rustix::io::read(&fd, &mut buf);
    super::reactor::close_raw(fd);
    std::str::from_utf8(&buf[..n.ok()?])
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_pages_with_a_minimum() {
        assert_eq!(round_stack_size(1), MIN_STACK);
        assert_eq!(round_stack_size(MIN_STACK + 1), MIN_STACK + page_size());
    }

    #[test]
    fn guards_until_the_budget_then_canaries() {
        let mut pool = StackPool::new(2);
        let a = pool.alloc(MIN_STACK).unwrap();
        let b = pool.alloc(MIN_STACK).unwrap();
        let c = pool.alloc(MIN_STACK).unwrap();
        assert_eq!(a.kind(), StackKind::Guarded);
        assert_eq!(b.kind(), StackKind::Guarded);
        assert_eq!(c.kind(), StackKind::Canary);
        assert!(c.canary_intact());
        // Slots of one class are adjacent and disjoint.
        assert_eq!(a.bounds().1, MIN_STACK);
        assert!(b.bounds().0 >= a.bounds().0 + MIN_STACK + page_size());
    }

    #[test]
    fn a_scribbled_canary_is_seen() {
        let mut pool = StackPool::new(0);
        let s = pool.alloc(MIN_STACK).unwrap();
        let (lo, _) = s.protect_range().unwrap();
        // SAFETY: the protect page of a canary slot is readable and writable arena memory.
        unsafe { *((lo + page_size() - 8) as *mut u64) = 1 };
        assert!(!s.canary_intact());
    }

    #[test]
    fn freed_stacks_are_reused() {
        let mut pool = StackPool::new(0);
        let s = pool.alloc(MIN_STACK).unwrap();
        let top = s.bounds();
        pool.free(s);
        assert_eq!(pool.alloc(MIN_STACK).unwrap().bounds(), top);
    }
}
