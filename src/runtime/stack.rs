//! Green thread stacks: slots carved from large arenas.
//!
//! A slot is `[gap ......][usable stack ...............]`, lowest address first. The stack
//! grows down from the slot's top towards the gap, [`GAP_BYTES`] that no healthy thread
//! ever touches. An arena is `[PROT_NONE page][slot][slot]...`: an overflow that runs
//! through every slot below it faults there instead of reaching other memory.
//!
//! Guarding: `vm.max_map_count` (65530 here) caps the number of mappings a process may
//! have, and an `mprotect`ed guard page splits the arena into two extra mappings. So only
//! the first `guard_budget` slots get a real `PROT_NONE` guard page (the gap's top page,
//! the rest of their gap watched as below). The rest are [`StackKind::Watched`]: their
//! whole gap is write-protected with the
//! process's userfaultfd, which costs no mapping, so a write anywhere in it (of zeros too,
//! or by a sparse frame that skipped the gap's top) faults at once, like a guard page.
//! Where userfaultfd cannot do that (older kernels, seccomp filters, a forked child) they
//! are [`StackKind::Canary`]: the scheduler checks at every switch away from the thread that
//! no page of its gap has become resident (`mincore`, about 1 µs), before any other thread
//! runs. Every kind reports an overflow naming the thread. A write further down than the gap
//! faults (the arena's first page) or lands in a neighbour's gap (which faults or is
//! checked) or, for a frame that skips more than the gap and writes only its far end, in a
//! neighbour's stack, as a frame larger than the guard page can natively.
//!
//! Memory: the arenas are reserved, not committed; a thread costs only the pages it
//! touched. They are mapped without `MAP_NORESERVE`, as glibc maps thread stacks, so the
//! kernel's overcommit policy refuses a stack it could never back, and they are sized to fit
//! the address-space limit (`RLIMIT_AS`). Freed stacks are kept warm for reuse; past
//! [`WARM_STACKS`] they are returned to the kernel with `MADV_DONTNEED` first, and an arena
//! whose slots are all free is unmapped.

use super::reactor::{close_raw, internal_fd_floor, place_internal};
use corosensei::stack::{Stack, StackPointer};
use memmap2::{MmapMut, MmapOptions};
use rustix::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// Bytes below each usable stack that no healthy thread touches: the guard page (or, past
/// the guard budget, the watched or checked gap) and room for a large frame that skips it.
/// Address space only: these pages are never written, so they cost no memory.
pub const GAP_BYTES: usize = 64 << 10;
/// Freed stacks kept without `MADV_DONTNEED`, per size class.
const WARM_STACKS: usize = 256;
/// Address space reserved per arena (not memory: touched pages only).
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
    /// A `PROT_NONE` page just below the stack.
    Guarded,
    /// The gap is write-protected by the process's userfaultfd: a write there faults.
    Watched,
    /// The gap is checked with `mincore` at every switch away from the thread.
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

    /// False once a thread on this stack wrote below it where only a check can see it
    /// (always true for a stack whose overflow faults).
    pub fn gap_untouched(&self) -> bool {
        !gap_check_needed(self.kind) || gap_untouched_below(self.bottom)
    }
}

/// Whether a stack of this kind needs [`gap_untouched_below`] at every switch away from it:
/// an unwatched gap, or a watched one in a forked child (which does not inherit the watch).
pub fn gap_check_needed(kind: StackKind) -> bool {
    match kind {
        StackKind::Canary => true,
        StackKind::Watched => GAP_WATCH.load(Relaxed) < 0,
        StackKind::Guarded | StackKind::User => false,
    }
}

/// Whether no page of the gap below the usable stack starting at `bottom` is resident,
/// i.e. nothing read or wrote there since the slot was made. Only for stacks that
/// [`gap_check_needed`]. One `mincore`: it sees a write of zeros, and one far from the gap's
/// top, which a check of the gap's contents would miss.
pub fn gap_untouched_below(bottom: usize) -> bool {
    let page = page_size();
    let mut resident = [0u8; GAP_BYTES / 4096];
    let pages = GAP_BYTES.div_ceil(page);
    // SAFETY: the gap is page-aligned memory of our own live arena mapping (never
    // unmapped while its slot is in use) and `resident` has a byte for each of its pages.
    let done = unsafe {
        libc::mincore(
            (bottom - GAP_BYTES) as *mut _,
            GAP_BYTES,
            resident.as_mut_ptr(),
        )
    };
    done == 0 && resident[..pages].iter().all(|&r| r & 1 == 0)
}

// SAFETY: `top` and `bottom` are 16-byte aligned, `limit` includes the guard page (or is
// the user's lowest address), and the memory stays mapped for as long as the GreenStack
// lives (an arena is unmapped only once all its slots are free; user stacks are the
// program's promise).
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
    /// Bytes of one slot: gap + usable stack.
    slot_bytes: usize,
    /// By the address of their first slot.
    arenas: BTreeMap<usize, Arena>,
    /// The arena new slots are carved from (its key), if it has any left.
    carving: Option<usize>,
    /// Arenas (keys) whose `free` list is not empty; an entry whose arena was since
    /// unmapped or emptied is skipped when met.
    partial: Vec<usize>,
    /// Freed stacks still holding their pages, reused first (counted live in their arena).
    warm: Vec<GreenStack>,
}

/// One mapping of slots.
struct Arena {
    /// The whole mapping, the PROT_NONE page included; held only to be unmapped on drop.
    _map: MmapMut,
    slots: usize,
    /// Slots carved so far (the next fresh one is slot number `carved`).
    carved: usize,
    /// Carved slots not in `free` (running, or warm).
    live: usize,
    /// Guard pages given to its slots, returned to the budget when it is unmapped.
    guarded: usize,
    /// Registered with the userfaultfd: its unguarded slots' gaps can be write-protected.
    watched: bool,
    /// Freed slots whose pages went back to the kernel; capacity for every slot is
    /// reserved when the arena is made, so freeing never allocates.
    free: Vec<GreenStack>,
}

/// All stacks of one scheduler.
pub struct StackPool {
    /// By slot size, hashed as the green futex hashes addresses (SipHash showed as a
    /// tenth of a create + join).
    classes: HashMap<usize, SizeClass, BuildHasherDefault<super::futex::AddressHasher>>,
    /// How many more slots may get a real guard page (before the first arena: the
    /// caller's cap, to be lowered to what the machine affords).
    guard_budget: usize,
    /// An arena was mapped: the budget is settled and the fault handler armed.
    started: bool,
    /// A forked child's gaps are to be watched again (see [`StackPool::forked`]).
    watch_again: bool,
    pub stats: StackStats,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct StackStats {
    pub guarded: usize,
    pub canary: usize,
    /// Arenas mapped now.
    pub arenas: usize,
}

impl StackPool {
    /// At most `guard_budget` slots get a real guard page. Nothing is read nor mapped
    /// until the first stack is asked for.
    pub fn new(guard_budget: usize) -> StackPool {
        StackPool {
            classes: HashMap::default(),
            guard_budget,
            started: false,
            watch_again: false,
            stats: StackStats::default(),
        }
    }

    /// The guard budget this machine affords: half of what is left of `vm.max_map_count`
    /// after a generous reserve for the program's own mappings.
    fn default_guard_budget() -> usize {
        let max_maps = read_max_map_count().unwrap_or(65530);
        max_maps.saturating_sub(16384) / 2
    }

    /// A stack with `usable` bytes (already rounded by [`round_stack_size`]). Fails (the
    /// caller says EAGAIN) when the kernel will not map one.
    pub fn alloc(&mut self, usable: usize) -> io::Result<GreenStack> {
        let slot_bytes = usable
            .checked_add(GAP_BYTES)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // Before any new watch: one opened first would count the lost ones as watched.
        if std::mem::take(&mut self.watch_again) {
            self.watch_again();
        }
        let class = self.classes.entry(usable).or_insert_with(|| SizeClass {
            slot_bytes,
            arenas: BTreeMap::new(),
            carving: None,
            partial: Vec::new(),
            warm: Vec::new(),
        });
        if let Some(stack) = class.warm.pop() {
            return Ok(stack);
        }
        while let Some(&key) = class.partial.last() {
            let Some(arena) = class.arenas.get_mut(&key) else {
                class.partial.pop();
                continue;
            };
            let Some(stack) = arena.free.pop() else {
                class.partial.pop();
                continue;
            };
            arena.live += 1;
            return Ok(stack);
        }
        let key = match class.carving {
            Some(key) => key,
            None => {
                if !self.started {
                    self.started = true;
                    self.guard_budget = self.guard_budget.min(Self::default_guard_budget());
                    super::overflow::arm();
                }
                let (key, arena) = map_arena(class.slot_bytes)?;
                // Room for this arena's entry, so that freeing never allocates.
                class
                    .partial
                    .try_reserve(class.arenas.len() + 1)
                    .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
                class.arenas.insert(key, arena);
                class.carving = Some(key);
                self.stats.arenas += 1;
                key
            }
        };
        let arena = class
            .arenas
            .get_mut(&key)
            .expect("the carving arena is mapped");
        let slot = key + arena.carved * class.slot_bytes;
        arena.carved += 1;
        arena.live += 1;
        if arena.carved == arena.slots {
            class.carving = None;
        }
        let bottom = slot + GAP_BYTES;
        let mut kind = StackKind::Canary;
        if self.guard_budget > 0 {
            let page = page_size();
            // SAFETY: the page just below the usable stack lies in the slot's gap, inside
            // our own live mapping.
            let protected = unsafe {
                rustix::mm::mprotect(
                    (bottom - page) as *mut _,
                    page,
                    rustix::mm::MprotectFlags::empty(),
                )
            };
            // Past the kernel's mapping limit mprotect fails with ENOMEM: fall back to
            // watching the gap and stop spending guards.
            match protected {
                Ok(()) => {
                    self.guard_budget -= 1;
                    arena.guarded += 1;
                    kind = StackKind::Guarded;
                }
                Err(_) => self.guard_budget = 0,
            }
        }
        // Below a guard page the rest of the gap is watched too: a sparse frame that skips
        // the guard page still faults.
        let watched_bytes = match kind {
            StackKind::Guarded => GAP_BYTES - page_size(),
            _ => GAP_BYTES,
        };
        if arena.watched && watch_gap(slot, watched_bytes) && kind == StackKind::Canary {
            kind = StackKind::Watched;
        }
        match kind {
            StackKind::Guarded => self.stats.guarded += 1,
            _ => self.stats.canary += 1,
        }
        Ok(GreenStack {
            top: slot + class.slot_bytes,
            bottom,
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
        let slot = stack.bottom - GAP_BYTES;
        let Some((&key, arena)) = class.arenas.range_mut(..=slot).next_back() else {
            return;
        };
        arena.live -= 1;
        if arena.live == 0 && class.carving != Some(key) {
            // Every slot is free: the address space goes back to the kernel.
            self.guard_budget += arena.guarded;
            self.stats.arenas -= 1;
            class.arenas.remove(&key);
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
        if arena.free.is_empty() {
            class.partial.push(key);
        }
        arena.free.push(stack);
    }

    /// In a forked child (after [`after_fork_child`]): as its first new stack is made
    /// (a child that only execs never pays for it: one ioctl per slot), its own
    /// userfaultfd watches the gaps of the slots of its watched arenas again; until then
    /// they are checked at switches.
    pub fn forked(&mut self) {
        self.watch_again = true;
    }

    /// Watches again the gaps of every slot carved in a watched arena, so that an
    /// overflow in a forked child faults at once, as in the parent. Checked at switches
    /// instead, the overflowing thread ran on through its neighbours' stacks while they
    /// ran on another worker: with 2 workers the `stacks` test's forked child reported the
    /// wrong thread, or died of a silent SIGSEGV, in 12 runs of 20 beside a busy loop. If
    /// any arena cannot be watched again, none is (the check at switches takes over).
    fn watch_again(&mut self) {
        let page = page_size();
        let watched = self.classes.values().all(|class| {
            class
                .arenas
                .iter()
                .filter(|(_, arena)| arena.watched)
                .all(|(&first, arena)| {
                    register_for_watch(first, arena.slots * class.slot_bytes)
                        && (0..arena.carved)
                            .map(|i| first + i * class.slot_bytes)
                            // The whole gap, or below its guard page where it has one.
                            .all(|slot| {
                                watch_gap(slot, GAP_BYTES) || watch_gap(slot, GAP_BYTES - page)
                            })
                })
        });
        if !watched {
            let fd = GAP_WATCH.swap(NO_WATCH, Relaxed);
            close_watch(fd);
        }
    }
}

/// How many bytes of arena to try first: [`ARENA_BYTES`], or a sixteenth of the
/// address-space limit when that is smaller, so that stacks leave the program room.
fn arena_target() -> usize {
    match rustix::process::getrlimit(rustix::process::Resource::As).current {
        Some(limit) => (limit as usize / 16).min(ARENA_BYTES),
        None => ARENA_BYTES,
    }
}

/// Maps an arena for slots of `slot_bytes`: as many as [`arena_target`] allows, fewer
/// (down to one) while the kernel refuses. Returns the address of its first slot.
fn map_arena(slot_bytes: usize) -> io::Result<(usize, Arena)> {
    let page = page_size();
    let mut slots = (arena_target() / slot_bytes).max(1);
    let map = loop {
        let mapped = slots
            .checked_mul(slot_bytes)
            .and_then(|bytes| bytes.checked_add(page))
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
            .and_then(|len| MmapOptions::new().len(len).map_anon());
        match mapped {
            Ok(map) => break map,
            Err(_) if slots > 1 => slots /= 2,
            Err(e) => return Err(e),
        }
    };
    // SAFETY: the first page of our own fresh mapping.
    unsafe {
        rustix::mm::mprotect(
            map.as_ptr() as *mut _,
            page,
            rustix::mm::MprotectFlags::empty(),
        )
    }?;
    let mut free = Vec::new();
    free.try_reserve_exact(slots)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let first = map.as_ptr() as usize + page;
    Ok((
        first,
        Arena {
            _map: map,
            slots,
            carved: 0,
            live: 0,
            guarded: 0,
            watched: register_for_watch(first, slots * slot_bytes),
            free,
        },
    ))
}

// Watching gaps with userfaultfd: the arena is registered for write protection (one flag
// on its mapping, no split), then each unguarded slot's gap is write-protected page by page
// (markers in the page table, no mapping either); with UFFD_FEATURE_SIGBUS a write there
// raises SIGBUS in the writing thread at once, and no other thread has to serve faults.
// Unprivileged processes may use it for faults in user mode (UFFD_USER_MODE_ONLY, Linux
// 5.11); UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4) protects pages never touched. Where it is
// missing (older kernels, seccomp filters), slots fall back to the check at switches.

/// The process's userfaultfd (-1: not opened yet; [`NO_WATCH`]: unavailable, or lost in a
/// forked child).
static GAP_WATCH: AtomicI32 = AtomicI32::new(-1);
const NO_WATCH: i32 = -2;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_API: u64 = 0xaa;
const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFDIO_API: u64 = 0xc018_aa3f;
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT: u64 = 0xc018_aa06;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;

/// The userfaultfd, opened on first use; None if the kernel cannot watch gaps.
fn gap_watch() -> Option<i32> {
    let mut fd = GAP_WATCH.load(Relaxed);
    if fd == -1 {
        let opened = open_gap_watch().unwrap_or(NO_WATCH);
        fd = match GAP_WATCH.compare_exchange(-1, opened, Relaxed, Relaxed) {
            Ok(_) => opened,
            Err(first) => {
                // Another scheduler's thread opened one first.
                close_watch(opened);
                first
            }
        };
    }
    (fd >= 0).then_some(fd)
}

fn open_gap_watch() -> Option<i32> {
    let flags = (libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) as usize;
    // SAFETY: userfaultfd takes only flags and returns a new fd or -errno.
    let fd = unsafe { super::raw::syscall(libc::SYS_userfaultfd, &[flags]) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let fd = place_internal(fd, internal_fd_floor()).into_raw_fd();
    let wanted = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_WP_UNPOPULATED;
    let mut api = [UFFD_API, wanted, 0];
    if uffd_ioctl(fd, UFFDIO_API, &mut api) && api[1] & wanted == wanted {
        Some(fd)
    } else {
        close_watch(fd);
        None
    }
}

fn close_watch(fd: i32) {
    if fd >= 0 {
        // SAFETY: `fd` is our userfaultfd, given up here.
        close_raw(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// An ioctl on the userfaultfd with its argument struct (as u64 words). Through the raw
/// system call: libc's ioctl is greenify's own hook.
fn uffd_ioctl(fd: i32, request: u64, arg: &mut [u64]) -> bool {
    // SAFETY: `request` is a userfaultfd ioctl whose argument struct is `arg`'s words.
    unsafe {
        let args = [fd as usize, request as usize, arg.as_mut_ptr() as usize];
        super::raw::syscall(libc::SYS_ioctl, &args) == 0
    }
}

/// Registers an arena's slots for write protection; false if gaps cannot be watched.
fn register_for_watch(start: usize, len: usize) -> bool {
    let Some(fd) = gap_watch() else {
        return false;
    };
    let mut register = [start as u64, len as u64, UFFDIO_REGISTER_MODE_WP, 0];
    uffd_ioctl(fd, UFFDIO_REGISTER, &mut register)
}

/// Write-protects `len` bytes of gap from `start`, in a registered arena.
fn watch_gap(start: usize, len: usize) -> bool {
    let Some(fd) = gap_watch() else {
        return false;
    };
    let mut protect = [start as u64, len as u64, UFFDIO_WRITEPROTECT_MODE_WP];
    uffd_ioctl(fd, UFFDIO_WRITEPROTECT, &mut protect)
}

/// In a forked child: an open userfaultfd still serves the parent's memory and the
/// child's arenas lost their registration, so it is closed, and the child's gaps are
/// checked at switches until it opens its own (see [`StackPool::forked`]).
pub fn after_fork_child() {
    let fd = GAP_WATCH.load(Relaxed);
    if fd >= 0 {
        GAP_WATCH.store(-1, Relaxed);
        close_watch(fd);
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
    close_raw(fd);
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
    fn guards_until_the_budget_then_gaps() {
        let mut pool = StackPool::new(2);
        let a = pool.alloc(MIN_STACK).unwrap();
        let b = pool.alloc(MIN_STACK).unwrap();
        let c = pool.alloc(MIN_STACK).unwrap();
        assert_eq!(a.kind(), StackKind::Guarded);
        assert_eq!(b.kind(), StackKind::Guarded);
        // Watched where the kernel lets us, else checked at switches.
        assert!(matches!(c.kind(), StackKind::Watched | StackKind::Canary));
        assert!(c.gap_untouched());
        // Slots of one class are adjacent and disjoint, a gap below each stack.
        assert_eq!(a.bounds().1, MIN_STACK);
        assert!(b.bounds().0 >= a.bounds().0 + MIN_STACK + GAP_BYTES);
    }

    #[test]
    fn a_write_anywhere_in_the_gap_is_seen() {
        let map = MmapOptions::new().len(4 * GAP_BYTES).map_anon().unwrap();
        let base = map.as_ptr() as usize;
        for (i, offset) in [GAP_BYTES - 8, GAP_BYTES / 2, 0].into_iter().enumerate() {
            let bottom = base + (i + 1) * GAP_BYTES;
            assert!(gap_untouched_below(bottom));
            // SAFETY: inside our own writable mapping.
            unsafe { *((bottom - GAP_BYTES + offset) as *mut u8) = 0 };
            assert!(
                !gap_untouched_below(bottom),
                "a zero written at offset {offset}"
            );
        }
    }

    #[test]
    fn freed_stacks_are_reused() {
        let mut pool = StackPool::new(0);
        let s = pool.alloc(MIN_STACK).unwrap();
        let top = s.bounds();
        pool.free(s);
        assert_eq!(pool.alloc(MIN_STACK).unwrap().bounds(), top);
    }

    #[test]
    fn an_arena_whose_slots_are_all_free_is_unmapped() {
        let mut pool = StackPool::new(0);
        let usable = 256 << 10;
        let per_arena = ARENA_BYTES / (usable + GAP_BYTES);
        assert!(per_arena > WARM_STACKS + 1);
        // Two full arenas and a third being carved.
        let stacks: Vec<_> = (0..2 * per_arena + WARM_STACKS + 1)
            .map(|_| pool.alloc(usable).unwrap())
            .collect();
        assert_eq!(pool.stats.arenas, 3);
        // The last made are freed first: they are the warm ones, in the third arena.
        for s in stacks.into_iter().rev() {
            pool.free(s);
        }
        // Only the arena being carved stays.
        assert_eq!(pool.stats.arenas, 1);
        // Freed slots are found again, cold ones after the warm ones.
        for _ in 0..WARM_STACKS + 2 {
            pool.alloc(usable).unwrap();
        }
        assert_eq!(pool.stats.arenas, 1);
    }
}
