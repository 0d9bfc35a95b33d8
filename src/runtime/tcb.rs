//! A glibc TCB and static TLS block per green thread, switched with the thread pointer.
//!
//! A green thread with its own TCB has its own `__thread`/`thread_local` variables (C,
//! C++, Rust), its own errno, and a `pthread_self()` that agrees with what glibc reads
//! from `%fs:0x10`. Blocks come from glibc's own allocator (`_dl_allocate_tls`, which lays
//! out the static TLS of every module and the DTV as for a new thread) and are reused
//! through a free list, as glibc reuses whole thread stacks: its allocator costs ~5 us.
//!
//! # Layout facts (glibc 2.36, x86_64)
//! The TCB is glibc's `struct pthread`, whose first member is `tcbhead_t`. Offsets that
//! glibc publishes for libthread_db (`_thread_db_*` descriptors: {bits, count, offset})
//! are read and compared with the table below; the rest are per version, so the table is
//! used only on the version it was measured on. [`Layout::check`] verifies every fact on
//! the running process before anything is written; if one fails, green threads share the
//! OS thread's TCB as before (one warning).
//!
//! # Lifecycle
//! - make: a block from the free list (its static TLS images copied again, its dynamic TLS
//!   blocks freed) or a new one; then the fields `pthread_create` sets.
//! - switch: the run loop writes the FS base (`wrfsbase`, or `arch_prctl` when the CPU or
//!   kernel lacks FSGSBASE) only when the target differs from the current one.
//! - exit, in the thread itself: `__call_tls_dtors` (C++ and Rust thread_local
//!   destructors), then (hooks) the key destructors; then the block goes back on the list.
//! - fork, from a green thread: its TCB is glibc's descriptor of the child's one OS thread
//!   from then on, never reused there ([`Pool::keep_as_os_thread`]); its `user_stack`
//!   flag keeps it out of glibc's stack cache in a grandchild (set with the others).
//!
//! libc's own static TLS (its malloc cache and arena, ctype tables) stays with the block
//! across reuse, as a cached glibc stack keeps its tcache only until glibc frees it at
//! exit: re-copying libc's image would leak the malloc cache of every exited thread
//! (glibc frees it with `__libc_thread_freeres`, which it does not export). The
//! per-thread locale is reset at exit instead.

use super::os_thread;
use libc::{c_char, c_int, c_void, dl_phdr_info, size_t};
use std::collections::BTreeSet;
use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::OnceLock;

/// tcbhead_t (all glibc versions since 2.26).
const TCB_SELF_PTR: usize = 0x0;
const DTV: usize = 0x8;
const SELF: usize = 0x10;
const MULTIPLE_THREADS: usize = 0x18;
const SYSINFO: usize = 0x20;
const STACK_GUARD: usize = 0x28;
const POINTER_GUARD: usize = 0x30;
const FEATURE_1: usize = 0x48;

/// struct pthread, glibc 2.36 (checked against the `_thread_db_*` descriptors where they
/// exist: tid, specific, sizeof; l_tls_offset/modid in link_map).
struct Table {
    version: &'static str,
    sizeof_pthread: usize,
    tid: usize,
    list: usize,
    cancelhandling: usize,
    robust_prev: usize,
    robust_head: usize,
    specific_1stblock: usize,
    specific: usize,
    /// `bool user_stack`, the byte after `report_events` (which has a descriptor).
    user_stack: usize,
    stackblock: usize,
    stackblock_size: usize,
    res: usize,
    res_size: usize,
    l_tls_offset: usize,
    l_tls_modid: usize,
    /// In `_rtld_global`: the list of threads with user stacks; the stack cache list and
    /// its lock (an int) follow it.
    dl_stack_user: usize,
    dl_stack_cache: usize,
    dl_in_flight_stack: usize,
    dl_stack_cache_lock: usize,
}

const TABLES: &[Table] = &[Table {
    version: "2.36",
    sizeof_pthread: 2368,
    tid: 720,
    list: 704,
    cancelhandling: 776,
    robust_prev: 728,
    robust_head: 736,
    specific_1stblock: 784,
    specific: 1296,
    user_stack: 1554,
    stackblock: 1680,
    stackblock_size: 1688,
    res: 1720,
    res_size: std::mem::size_of::<ResState>(),
    l_tls_offset: 1144,
    l_tls_modid: 1152,
    dl_stack_user: 4280,
    dl_stack_cache: 4296,
    dl_in_flight_stack: 4320,
    dl_stack_cache_lock: 4328,
}];

/// `cancelhandling`'s EXITING bit: glibc's setxid broadcast (setuid and friends) skips
/// such threads. A green TCB must be skipped: its thread cannot answer the signal.
const EXITING_BITMASK: i32 = 0x10;

/// `struct __res_state` is 568 bytes on x86_64.
#[repr(C)]
struct ResState([u64; 71]);

/// glibc's `NO_TLS_OFFSET` and `FORCED_DYNAMIC_TLS_OFFSET` on x86_64.
const NO_TLS_OFFSET: usize = 0;
const FORCED_DYNAMIC_TLS_OFFSET: usize = usize::MAX;
/// glibc's `TLS_DTV_UNALLOCATED`.
const DTV_UNALLOCATED: usize = usize::MAX;
/// `RSEQ_CPU_ID_REGISTRATION_FAILED`: sched_getcpu asks the kernel instead.
const RSEQ_CPU_ID_UNREGISTERED: i32 = -2;

type AllocateTls = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type VoidFn = unsafe extern "C" fn();

/// Every fact the green TCBs rely on, verified on this process.
pub struct Layout {
    table: &'static Table,
    allocate: AllocateTls,
    call_tls_dtors: VoidFn,
    ctype_init: VoidFn,
    /// Where `__resp` (libc's resolver-state pointer) is, from the thread pointer.
    resp: Option<isize>,
    /// Offset of rseq's cpu_id from the thread pointer, if glibc registered rseq.
    rseq_cpu_id: Option<isize>,
    fsgsbase: bool,
    /// Load address of libc (its TLS stays with a reused block).
    libc_base: usize,
    /// Load address of greenify itself (not a reason to turn TLS on in auto mode).
    own_base: usize,
    /// `_rtld_global`.
    rtld_global: usize,
}

// SAFETY: function pointers and plain numbers.
unsafe impl Sync for Layout {}
// SAFETY: as above.
unsafe impl Send for Layout {}

/// The layout, once checked (see [`Layout::get`]).
static LAYOUT: OnceLock<Result<Layout, &'static str>> = OnceLock::new();

/// A symbol's address, or None.
fn symbol(name: &CStr, version: Option<&CStr>) -> Option<usize> {
    // SAFETY: NUL-terminated names; RTLD_DEFAULT searches every loaded module.
    let addr = unsafe {
        match version {
            Some(v) => libc::dlvsym(libc::RTLD_DEFAULT, name.as_ptr(), v.as_ptr()),
            None => libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()),
        }
    };
    (!addr.is_null()).then_some(addr as usize)
}

/// The offset a `_thread_db_*` descriptor ({bits, count, offset}) gives.
fn db_offset(name: &CStr) -> Option<usize> {
    let addr = symbol(name, Some(c"GLIBC_PRIVATE"))?;
    // SAFETY: glibc's descriptors are three u32s in its read-only data.
    Some(unsafe { *(addr as *const u32).add(2) } as usize)
}

/// The base address of the module containing `addr`.
fn module_base(addr: usize) -> usize {
    // SAFETY: dladdr fills `info` for any address; zeroed is a valid initial value.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        libc::dladdr(addr as *const c_void, &mut info);
        info.dli_fbase as usize
    }
}

/// Reads a word at `base + offset`.
///
/// # Safety
/// The address is readable.
unsafe fn word(base: usize, offset: usize) -> usize {
    // SAFETY: per the caller.
    unsafe { *((base + offset) as *const usize) }
}

/// Writes a word at `base + offset`.
///
/// # Safety
/// The address is writable and the word is ours to write.
unsafe fn set_word(base: usize, offset: usize, value: usize) {
    // SAFETY: per the caller.
    unsafe { *((base + offset) as *mut usize) = value }
}

impl Layout {
    /// The verified layout, or why it cannot be used. Checked once, on the thread that
    /// runs the scheduler, while its TCB is still glibc's.
    pub fn get() -> Result<&'static Layout, &'static str> {
        LAYOUT.get_or_init(Layout::check).as_ref().map_err(|e| *e)
    }

    fn check() -> Result<Layout, &'static str> {
        if !cfg!(target_arch = "x86_64") {
            return Err("a TCB per green thread is only built on x86_64");
        }
        extern "C" {
            fn gnu_get_libc_version() -> *const c_char;
        }
        // SAFETY: returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(gnu_get_libc_version()) };
        let table = TABLES
            .iter()
            .find(|t| t.version.as_bytes() == version.to_bytes())
            .ok_or("this glibc version's TCB layout is not known")?;
        let db = |name: &CStr, expect: usize| db_offset(name) == Some(expect);
        let sizeof_ok = symbol(c"_thread_db_sizeof_pthread", Some(c"GLIBC_PRIVATE"))
            // SAFETY: a u32 in libc's read-only data.
            .is_some_and(|a| unsafe { *(a as *const u32) } as usize == table.sizeof_pthread);
        if !(sizeof_ok
            && db(c"_thread_db_pthread_tid", table.tid)
            && db(c"_thread_db_pthread_specific", table.specific)
            && db(c"_thread_db_pthread_dtvp", DTV)
            && db(c"_thread_db_link_map_l_tls_offset", table.l_tls_offset)
            && db(c"_thread_db_link_map_l_tls_modid", table.l_tls_modid)
            && db(c"_thread_db_pthread_list", table.list)
            && db(c"_thread_db_pthread_cancelhandling", table.cancelhandling)
            && db(c"_thread_db_pthread_report_events", table.user_stack - 1)
            && db(
                c"_thread_db_rtld_global__dl_stack_user",
                table.dl_stack_user,
            )
            && db(
                c"_thread_db_rtld_global__dl_stack_used",
                table.dl_stack_user - 16,
            ))
        {
            return Err("glibc's thread_db descriptors disagree with the known layout");
        }
        let tp = os_thread::thread_pointer();
        // SAFETY: the calling thread's own TCB, laid out as checked above.
        let (tcb, self_ptr, tid) = unsafe {
            (
                word(tp, TCB_SELF_PTR),
                word(tp, SELF),
                *((tp + table.tid) as *const i32),
            )
        };
        if tcb != tp || self_ptr != tp || tid != rustix::thread::gettid().as_raw_nonzero().get() {
            return Err("the TCB's self pointers or thread id are not where expected");
        }
        let mut static_size: size_t = 0;
        let mut static_align: size_t = 0;
        let info = symbol(c"_dl_get_tls_static_info", Some(c"GLIBC_PRIVATE"))
            .ok_or("_dl_get_tls_static_info is missing")?;
        // SAFETY: ld.so's function, with its signature (two out-pointers).
        unsafe {
            let info: unsafe extern "C" fn(*mut size_t, *mut size_t) = std::mem::transmute(info);
            info(&mut static_size, &mut static_align);
        }
        if static_size == 0 || static_size > 1 << 20 {
            return Err("the static TLS size is implausible");
        }
        let fn_at = |name: &CStr, version: Option<&CStr>| symbol(name, version);
        let allocate = fn_at(c"_dl_allocate_tls", Some(c"GLIBC_PRIVATE"))
            .ok_or("_dl_allocate_tls is missing")?;
        let call_tls_dtors = fn_at(c"__call_tls_dtors", Some(c"GLIBC_PRIVATE"))
            .ok_or("__call_tls_dtors is missing")?;
        let ctype_init =
            fn_at(c"__ctype_init", Some(c"GLIBC_PRIVATE")).ok_or("__ctype_init is missing")?;
        let rtld_global =
            symbol(c"_rtld_global", Some(c"GLIBC_PRIVATE")).ok_or("_rtld_global is missing")?;
        // The stack cache list after dl_stack_user is a well-formed circular list, and
        // this thread (glibc made it) is on the list its user_stack flag names: the
        // program's first thread and threads on stacks of their own on dl_stack_user.
        // SAFETY: ld.so's _rtld_global, laid out as the descriptors just confirmed.
        let lists_ok = unsafe {
            let cache = rtld_global + table.dl_stack_cache;
            let user = rtld_global + table.dl_stack_user;
            let on_list = |head: usize| {
                let mut at = word(head, 0);
                while at != head && at != 0 {
                    if at == tp + table.list {
                        return true;
                    }
                    at = word(at, 0);
                }
                false
            };
            let user_stack = *((tp + table.user_stack) as *const u8);
            word(word(cache, 0), 8) == cache
                && match user_stack {
                    0 => on_list(user - 16),
                    1 => on_list(user),
                    _ => false,
                }
        };
        if !lists_ok {
            return Err("ld.so's thread lists are not where expected");
        }
        let libc_base = module_base(fn_at(c"gnu_get_libc_version", None).unwrap_or(0));
        let own_base = module_base(Layout::get as *const () as usize);
        // SAFETY: the functions were found under these names and versions.
        let (allocate, call_tls_dtors, ctype_init) = unsafe {
            (
                std::mem::transmute::<usize, AllocateTls>(allocate),
                std::mem::transmute::<usize, VoidFn>(call_tls_dtors),
                std::mem::transmute::<usize, VoidFn>(ctype_init),
            )
        };
        // Every static module's TLS is where link_map's l_tls_offset says.
        let modules = Modules::scan_with(table, tp, libc_base, own_base);
        if !modules.consistent {
            return Err("a module's static TLS is not where link_map says");
        }
        let layout = Layout {
            table,
            allocate,
            call_tls_dtors,
            ctype_init,
            resp: find_resp(tp, &modules),
            rseq_cpu_id: rseq_cpu_id(),
            fsgsbase: fsgsbase(),
            libc_base,
            own_base,
            rtld_global,
        };
        Ok(layout)
    }
}

/// Whether the CPU and kernel let user space write the FS base (`wrfsbase`).
fn fsgsbase() -> bool {
    const HWCAP2_FSGSBASE: u64 = 1 << 1;
    // SAFETY: getauxval has no preconditions.
    (unsafe { libc::getauxval(libc::AT_HWCAP2) } & HWCAP2_FSGSBASE) != 0
}

/// The offset of rseq's cpu_id from the thread pointer, if glibc registered rseq.
fn rseq_cpu_id() -> Option<isize> {
    let offset = symbol(c"__rseq_offset", None)?;
    let size = symbol(c"__rseq_size", None)?;
    // SAFETY: libc's exported `ptrdiff_t __rseq_offset` and `unsigned int __rseq_size`.
    let (offset, size) = unsafe { (*(offset as *const isize), *(size as *const u32)) };
    (size >= 8).then_some(offset + 4)
}

/// Where libc keeps `__resp` (the calling thread's resolver state, which starts out as
/// `&_res`): the one word of libc's static TLS equal to `__res_state()`.
fn find_resp(tp: usize, modules: &Modules) -> Option<isize> {
    let libc_block = modules.libc?;
    extern "C" {
        fn __res_state() -> *mut c_void;
    }
    // SAFETY: __res_state returns the calling thread's resolver state pointer.
    let resp = unsafe { __res_state() } as usize;
    let start = tp - libc_block.offset;
    let mut found = None;
    for at in (start..start + libc_block.memsz).step_by(8) {
        // SAFETY: inside libc's static TLS block of the calling thread.
        if unsafe { *(at as *const usize) } == resp {
            if found.is_some() {
                return None;
            }
            found = Some(at as isize - tp as isize);
        }
    }
    found
}

/// One module's static TLS: at `tcb - offset`, `filesz` bytes from `image`, then zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    modid: usize,
    offset: usize,
    image: usize,
    filesz: usize,
    memsz: usize,
}

#[derive(Default)]
struct Modules {
    /// Static TLS of every module except libc's.
    blocks: Vec<Block>,
    libc: Option<Block>,
    /// Modules with TLS other than libc, ld.so and greenify (auto mode's question).
    foreign_tls: bool,
    /// Every static block lies where the calling thread's TLS is.
    consistent: bool,
}

struct Scan<'a> {
    table: &'a Table,
    tp: usize,
    libc_base: usize,
    own_base: usize,
    out: Modules,
}

impl Modules {
    fn scan_with(table: &Table, tp: usize, libc_base: usize, own_base: usize) -> Modules {
        let mut scan = Scan {
            table,
            tp,
            libc_base,
            own_base,
            out: Modules {
                consistent: true,
                ..Modules::default()
            },
        };
        // SAFETY: the callback gets `scan` back as its data pointer.
        unsafe { libc::dl_iterate_phdr(Some(each_module), (&mut scan as *mut Scan).cast()) };
        scan.out
    }
}

/// link_map of the module whose TLS module id is `modid` (walks ld.so's list).
fn link_map_of(table: &Table, modid: usize) -> Option<usize> {
    extern "C" {
        static _r_debug: RDebug;
    }
    #[repr(C)]
    struct RDebug {
        version: c_int,
        map: usize,
    }
    // SAFETY: ld.so's r_debug; link_map's l_next is its fourth word (public layout).
    let mut map = unsafe { _r_debug.map };
    while map != 0 {
        // SAFETY: a live link_map, read at offsets checked by the layout self-check.
        if unsafe { word(map, table.l_tls_modid) } == modid {
            return Some(map);
        }
        // SAFETY: as above.
        map = unsafe { word(map, 24) };
    }
    None
}

unsafe extern "C" fn each_module(
    info: *mut dl_phdr_info,
    _size: size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our data pointer.
    let (info, scan) = unsafe { (&*info, &mut *(data as *mut Scan)) };
    if info.dlpi_tls_modid == 0 {
        return 0;
    }
    // SAFETY: dlpi_phdr has dlpi_phnum entries.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let Some(tls) = phdrs.iter().find(|p| p.p_type == libc::PT_TLS) else {
        return 0;
    };
    let base = info.dlpi_addr as usize;
    if base != scan.libc_base && base != scan.own_base {
        scan.out.foreign_tls = true;
    }
    let modid = info.dlpi_tls_modid;
    let Some(map) = link_map_of(scan.table, modid) else {
        scan.out.consistent = false;
        return 0;
    };
    // SAFETY: a live link_map.
    let offset = unsafe { word(map, scan.table.l_tls_offset) };
    if offset == NO_TLS_OFFSET || offset == FORCED_DYNAMIC_TLS_OFFSET {
        return 0;
    }
    if !info.dlpi_tls_data.is_null() && info.dlpi_tls_data as usize != scan.tp - offset {
        scan.out.consistent = false;
    }
    let block = Block {
        modid,
        offset,
        image: base + tls.p_vaddr as usize,
        filesz: tls.p_filesz as usize,
        memsz: tls.p_memsz as usize,
    };
    if base == scan.libc_base {
        scan.out.libc = Some(block);
    } else {
        scan.out.blocks.push(block);
    }
    0
}

/// How many modules were loaded and unloaded so far (ld.so's counters).
fn loads() -> u64 {
    unsafe extern "C" fn first(info: *mut dl_phdr_info, _: size_t, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr's info and our counter.
        unsafe { *(data as *mut u64) = (*info).dlpi_adds.wrapping_add((*info).dlpi_subs) };
        1
    }
    let mut count = 0u64;
    // SAFETY: the callback writes our counter and stops at the first module.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut count as *mut u64).cast()) };
    count
}

/// Whether a module other than libc, ld.so, the vDSO and greenify has TLS of its own
/// (auto mode turns per-thread TCBs on then).
pub fn foreign_tls_present(layout: &Layout) -> bool {
    let tp = os_thread::thread_pointer();
    Modules::scan_with(layout.table, tp, layout.libc_base, layout.own_base).foreign_tls
}

/// Sets the FS base (the thread pointer) to `tp`.
#[inline(always)]
fn set_thread_pointer(layout: &Layout, tp: usize) {
    if layout.fsgsbase {
        // SAFETY: `tp` is a live TCB; the memory clobber keeps the compiler from moving
        // any %fs-relative access across the write.
        unsafe { std::arch::asm!("wrfsbase {}", in(reg) tp, options(nostack, preserves_flags)) };
    } else {
        const ARCH_SET_FS: usize = 0x1002;
        // SAFETY: as above, through the kernel.
        unsafe { super::raw::syscall(libc::SYS_arch_prctl, &[ARCH_SET_FS, tp]) };
    }
}

/// Makes `tp`, a TCB that is not a green thread's (an OS thread's own, see setxid.rs),
/// the calling OS thread's thread pointer as it is (the scheduler word in it is left
/// alone). Async-signal-safe: checks nothing, and does nothing until the layout was
/// checked (only then can a TCB other than the OS thread's own be installed).
pub fn set_thread_pointer_as_is(tp: usize) {
    if let Some(Ok(layout)) = LAYOUT.get() {
        set_thread_pointer(layout, tp);
    }
}

/// The word of glibc's descriptor `pd` that holds its OS thread's kernel id, where glibc's
/// thread_db descriptor says it lies (also without a TCB per green thread).
fn tid_word<'a>(pd: usize) -> Option<&'a AtomicI32> {
    static OFFSET: OnceLock<Option<usize>> = OnceLock::new();
    let offset = (*OFFSET.get_or_init(|| db_offset(c"_thread_db_pthread_tid")))?;
    // SAFETY: a descriptor glibc made, never unmapped while greenify names it; glibc and
    // the kernel write the word atomically.
    Some(unsafe { &*((pd + offset) as *const AtomicI32) })
}

/// The kernel's id of the OS thread whose glibc descriptor is `pd` (a live thread's:
/// pthread_create's caller knows it once the call returns; the kernel wrote it there as
/// it made the thread, CLONE_PARENT_SETTID).
pub fn tid_of(pd: usize) -> Option<i32> {
    tid_word(pd).map(|word| word.load(SeqCst))
}

/// In a forked child: keeps glibc from giving `pd`, the descriptor of one of the parent's
/// other OS threads, and the stack it heads, to a new thread. glibc's fork put both in its
/// stack cache as free (tid 0), but the forking worker's run loop still runs on them (the
/// forking green thread's coroutine returns there), and the child's next OS thread with
/// that stack size (a spare, a worker) took them: two OS threads on one TCB and one stack.
/// glibc takes a cached stack only while its tid is 0 or less (`FREE_P`), so it gets
/// `tid`, the child's.
pub fn keep_from_reuse(pd: usize, tid: i32) {
    if let Some(word) = tid_word(pd) {
        word.store(tid, SeqCst);
    }
}

/// Whether glibc's setxid broadcast would signal the OS thread of the descriptor `tp`
/// (see setxid.rs): its EXITING bit is clear, as in every descriptor glibc made and
/// unlike a green thread's TCB. Async-signal-safe, as [`set_thread_pointer_as_is`].
pub fn signalled_by_setxid(tp: usize) -> bool {
    cancelhandling(tp).is_none_or(|word| word.load(SeqCst) & EXITING_BITMASK == 0)
}

/// In a forked child: the TCB that forked is glibc's descriptor of the child's one OS
/// thread, and if it is a green thread's, its EXITING bit would keep glibc's setxid
/// broadcast from that OS thread (its credentials would stay when a thread on another
/// worker changes them). Cleared: the OS thread answers the signal.
pub fn adopt_as_os_thread(tp: usize) {
    // Only this thread exists in the child.
    if let Some(word) = cancelhandling(tp) {
        word.fetch_and(!EXITING_BITMASK, SeqCst);
    }
}

/// The `cancelhandling` word of TCB `tp` (None until the layout was checked).
/// Async-signal-safe.
fn cancelhandling<'a>(tp: usize) -> Option<&'a AtomicI32> {
    let Ok(layout) = LAYOUT.get()? else {
        return None;
    };
    // SAFETY: `tp` is a live TCB laid out as checked; glibc changes the word atomically.
    Some(unsafe { &*((tp + layout.table.cancelhandling) as *const AtomicI32) })
}

/// A new TCB block (0 if none), from glibc's allocator for a new thread's TLS: the
/// program's malloc, which takes the program's own locks. With several workers it is
/// called outside scheduler sections: a green thread on another worker may hold that
/// lock while it waits for a section.
pub fn new_block(layout: &Layout) -> usize {
    // SAFETY: glibc's allocator for a new thread's TLS; NULL: it allocates.
    unsafe { (layout.allocate)(std::ptr::null_mut()) as usize }
}

/// The green TCBs of one scheduler: the blocks handed out and the free list.
pub struct Pool {
    layout: &'static Layout,
    /// Every block ever made (a `pthread_t` is checked here before it is read).
    ours: BTreeSet<usize>,
    free: Vec<usize>,
    /// Static TLS to copy again into a reused block, as of `loads` module loads and
    /// unloads (a library loaded later gets its initial-exec TLS initialised in every
    /// block by glibc itself: the blocks are on its thread list).
    modules: Vec<Block>,
    loads: u64,
    /// The OS thread's own TCB (MAIN keeps it).
    main: usize,
    /// In a forked child, the TCB that forked: glibc's descriptor of the child's first OS
    /// thread (0 until a fork), never reused (see [`Pool::release`]).
    os_thread: usize,
}

impl Pool {
    /// A pool for the calling OS thread, whose TCB stays MAIN's.
    pub fn new(layout: &'static Layout) -> Pool {
        let main = os_thread::thread_pointer();
        let loads = loads();
        let modules = Modules::scan_with(layout.table, main, layout.libc_base, layout.own_base);
        Pool {
            layout,
            ours: BTreeSet::new(),
            free: Vec::new(),
            modules: modules.blocks,
            loads,
            main,
            os_thread: 0,
        }
    }

    /// The OS thread's own TCB.
    pub fn main(&self) -> usize {
        self.main
    }

    /// The layout behind the pool (for [`thread_started`] and [`thread_exiting`]).
    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// Whether `tcb` is one of this pool's blocks (safe to read).
    pub fn contains(&self, tcb: usize) -> bool {
        self.ours.contains(&tcb)
    }

    /// Whether a new green thread's TCB would be a new block (none is free).
    pub fn needs_block(&self) -> bool {
        self.free.is_empty()
    }

    /// A TCB for a new green thread `id` on the stack `(lowest, size)`, ready to run:
    /// `fresh` if given (a block of [`new_block`], 0 if that failed), else a free one or
    /// a new one.
    pub fn make(&mut self, id: u32, stack: (usize, usize), fresh: Option<usize>) -> Option<usize> {
        let reused = if fresh.is_some() {
            None
        } else {
            self.free.pop()
        };
        let tcb = match reused {
            Some(tcb) => {
                let loads = loads();
                if loads != self.loads {
                    let l = self.layout;
                    self.modules =
                        Modules::scan_with(l.table, self.main, l.libc_base, l.own_base).blocks;
                    self.loads = loads;
                }
                self.reinit(tcb);
                tcb
            }
            None => {
                let tcb = fresh.unwrap_or_else(|| new_block(self.layout));
                if tcb == 0 {
                    return None;
                }
                self.ours.insert(tcb);
                self.link(tcb);
                tcb
            }
        };
        self.fill(tcb, id, stack);
        Some(tcb)
    }

    /// Puts a new block on ld.so's list of threads with user stacks, for good: glibc then
    /// initialises the static (initial-exec) TLS of a library loaded later in it, as in
    /// every thread it knows, and a fork from a green thread finds its TCB on a list.
    fn link(&self, tcb: usize) {
        let t = self.layout.table;
        let g = self.layout.rtld_global;
        let lock = (g + t.dl_stack_cache_lock) as *const std::sync::atomic::AtomicI32;
        let head = g + t.dl_stack_user;
        let elem = tcb + t.list;
        // SAFETY: ld.so's lock word and lists (verified by Layout::check); the lock is
        // glibc's lll_lock: 0 free, 1 taken, 2 taken with waiters.
        unsafe {
            use std::sync::atomic::Ordering::{Acquire, Release};
            while (*lock).compare_exchange(0, 1, Acquire, Acquire).is_err() {
                // Held only for list updates by another OS thread: let it finish.
                super::raw::syscall(libc::SYS_sched_yield, &[]);
            }
            set_word(g, t.dl_in_flight_stack, elem | 1);
            let first = word(head, 0);
            set_word(elem, 0, first);
            set_word(elem, 8, head);
            set_word(first, 8, elem);
            set_word(head, 0, elem);
            set_word(g, t.dl_in_flight_stack, 0);
            if (*lock).swap(0, Release) == 2 {
                let op = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize;
                super::raw::syscall(libc::SYS_futex, &[lock as usize, op, 1]);
            }
        }
    }

    /// In a forked child: `tcb`, the TCB that forked, is glibc's descriptor of the
    /// child's first OS thread from now on (see [`adopt_as_os_thread`]).
    pub fn keep_as_os_thread(&mut self, tcb: usize) {
        self.os_thread = tcb;
    }

    /// Back on the free list (its thread ran its exit path; the FS base is elsewhere or
    /// moves before the block is used again), unless it is a forked child's OS thread
    /// descriptor, which outlives the thread that forked: a new green thread given it
    /// would mark it EXITING (glibc's setxid broadcast then skipped that OS thread, whose
    /// credentials stayed) and overwrite its tid (which the kernel clears when that OS
    /// thread exits). Kept, it costs one block per fork from a green thread.
    pub fn release(&mut self, tcb: usize) {
        if tcb != self.os_thread {
            self.free.push(tcb);
        }
    }

    /// Copies the static TLS images again and frees the dynamic TLS blocks (the DTV
    /// entries go back to "unallocated"), as glibc does for a cached stack.
    fn reinit(&self, tcb: usize) {
        for b in &self.modules {
            let at = tcb - b.offset;
            // SAFETY: the module's static TLS inside our block and its image in memory.
            unsafe {
                std::ptr::copy_nonoverlapping(b.image as *const u8, at as *mut u8, b.filesz);
                std::ptr::write_bytes((at + b.filesz) as *mut u8, 0, b.memsz - b.filesz);
            }
        }
        // SAFETY: the block's DTV: dtv[-1].counter entries after dtv[0], each
        // {val, to_free}; `to_free` is set only for blocks malloc'ed by __tls_get_addr.
        unsafe {
            let dtv = word(tcb, DTV);
            let entries = *((dtv - 16) as *const usize);
            for i in 1..=entries {
                let entry = dtv + 16 * i;
                let to_free = word(entry, 8);
                if to_free != 0 {
                    libc::free(to_free as *mut c_void);
                    set_word(entry, 0, DTV_UNALLOCATED);
                    set_word(entry, 8, 0);
                }
            }
        }
    }

    /// The fields `pthread_create` sets, copied or derived from MAIN's TCB.
    fn fill(&self, tcb: usize, id: u32, (lowest, size): (usize, usize)) {
        let t = self.layout.table;
        let main = self.main;
        // SAFETY: `tcb` is a block of `sizeof_pthread` bytes from glibc's allocator and
        // `main` the OS thread's TCB; offsets verified by Layout::check.
        unsafe {
            set_word(tcb, TCB_SELF_PTR, tcb);
            set_word(tcb, SELF, tcb);
            *((tcb + MULTIPLE_THREADS) as *mut i32) = 1;
            *((tcb + t.cancelhandling) as *mut i32) = EXITING_BITMASK;
            // Its stack is not glibc's: a fork from this thread leaves the TCB on ld.so's
            // list of threads with user stacks in the child (glibc's fork reads the flag),
            // from which a fork in the child drops it. On the list of glibc's own stacks, a
            // fork in the child would put it in the stack cache as free, and a new OS
            // thread there (a worker, a spare) would get it as its descriptor, with its
            // stack below it in the heap.
            *((tcb + t.user_stack) as *mut u8) = 1;
            for offset in [SYSINFO, STACK_GUARD, POINTER_GUARD] {
                set_word(tcb, offset, word(main, offset));
            }
            *((tcb + FEATURE_1) as *mut u32) = *((main + FEATURE_1) as *const u32);
            set_word(tcb, 0x38, id as usize + 1);
            set_word(tcb, 0x40, word(main, 0x40));
            *((tcb + t.tid) as *mut i32) = *((main + t.tid) as *const i32);
            // robust_head.list points at itself (empty), robust_prev at robust_head; the
            // futex offset is the same for every thread.
            set_word(tcb, t.robust_prev, tcb + t.robust_head);
            set_word(tcb, t.robust_head, tcb + t.robust_head);
            set_word(tcb, t.robust_head + 8, word(main, t.robust_head + 8));
            set_word(tcb, t.robust_head + 16, 0);
            set_word(tcb, t.specific, tcb + t.specific_1stblock);
            set_word(tcb, t.stackblock, lowest);
            set_word(tcb, t.stackblock_size, size);
            std::ptr::write_bytes((tcb + t.res) as *mut u8, 0, t.res_size);
            if let Some(resp) = self.layout.resp {
                set_word(tcb.wrapping_add_signed(resp), 0, tcb + t.res);
            }
            if let Some(cpu_id) = self.layout.rseq_cpu_id {
                *(tcb.wrapping_add_signed(cpu_id) as *mut i32) = RSEQ_CPU_ID_UNREGISTERED;
            }
        }
    }

    /// Makes `tp` the calling OS thread's thread pointer, if it is not already (read
    /// from the TCB itself: every worker has its own). The TCB names the calling worker
    /// first (a thread may move between workers): a signal handler that runs just after
    /// the switch must find this OS thread's record, not the one the thread last ran on
    /// (it would open a section on that worker's record, under a lock this one holds).
    #[inline]
    pub fn switch_to(&self, tp: usize) {
        if os_thread::thread_pointer() != tp {
            // SAFETY: `tp` is a live TCB of this pool or MAIN's, not the thread pointer
            // of any other OS thread; the word is greenify's (see os_thread.rs).
            unsafe { set_word(tp, 0x40, os_thread::sched_word()) };
            set_thread_pointer(self.layout, tp);
        }
    }
}

/// Runs in a new green thread with its own TCB, before its start routine: the ctype
/// tables' thread-local pointers, as glibc's start_thread sets them.
pub fn thread_started(layout: &Layout) {
    // SAFETY: glibc's own per-thread initialiser, run in the thread.
    unsafe { (layout.ctype_init)() }
}

/// Runs in an exiting green thread with its own TCB: C++ and Rust thread_local
/// destructors (`__cxa_thread_atexit_impl`), then the per-thread locale goes back to
/// the global one (the block is reused).
pub fn thread_exiting(layout: &Layout) {
    // SAFETY: glibc's own exit-time call, in the exiting thread.
    unsafe {
        (layout.call_tls_dtors)();
        // LC_GLOBAL_LOCALE is (locale_t) -1.
        libc::uselocale(usize::MAX as libc::locale_t);
    }
}

/// A glibc stdio lock (`_IO_lock_t`: lock word, recursion count, owner TCB) lent out
/// while the green thread that holds it is switched out.
///
/// With a TCB per green thread, glibc tells green threads apart as lock owners: a second
/// green thread that enters a stream whose lock a parked one holds would wait in the
/// kernel, and the OS thread, which would run the holder, would hang. So a thread that
/// holds stream locks leaves them free while it is switched out and takes them back
/// before it goes on (waiting its turn if another holds one then).
#[derive(Clone, Copy, Debug)]
pub struct LentLock {
    lock: usize,
    cnt: i32,
    owner: usize,
}

/// `_IO_lock_t` words.
const IO_LOCK_CNT: usize = 4;
const IO_LOCK_OWNER: usize = 8;

/// Frees the stdio lock at `lock` if the calling thread (its TCB) holds it.
///
/// # Safety
/// `lock` points to a live `_IO_lock_t`.
pub unsafe fn lend_io_lock(lock: usize) -> Option<LentLock> {
    let word = lock as *const std::sync::atomic::AtomicI32;
    // SAFETY: per the caller; only the owner changes cnt and owner.
    unsafe {
        let owner = *((lock + IO_LOCK_OWNER) as *const usize);
        if owner != os_thread::thread_pointer() {
            return None;
        }
        let cnt = *((lock + IO_LOCK_CNT) as *const i32);
        *((lock + IO_LOCK_OWNER) as *mut usize) = 0;
        *((lock + IO_LOCK_CNT) as *mut i32) = 0;
        if (*word).swap(0, std::sync::atomic::Ordering::Release) == 2 {
            // An OS thread sleeps on it (glibc's lll_unlock does the same).
            let op = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize;
            super::raw::syscall(libc::SYS_futex, &[word as usize, op, 1]);
        }
        Some(LentLock { lock, cnt, owner })
    }
}

/// Takes a lent lock back; false if another holds it now (try again later).
///
/// # Safety
/// `lent` came from [`lend_io_lock`] and its stream is still open.
pub unsafe fn retake_io_lock(lent: &LentLock) -> bool {
    use std::sync::atomic::{AtomicI32, Ordering::Acquire};
    // SAFETY: per the caller.
    unsafe {
        let word = &*(lent.lock as *const AtomicI32);
        if word.compare_exchange(0, 1, Acquire, Acquire).is_err() {
            return false;
        }
        *((lent.lock + IO_LOCK_OWNER) as *mut usize) = lent.owner;
        *((lent.lock + IO_LOCK_CNT) as *mut i32) = lent.cnt;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_self_check_passes_on_the_glibc_it_was_measured_on() {
        extern "C" {
            fn gnu_get_libc_version() -> *const c_char;
        }
        // SAFETY: a static string.
        let version = unsafe { CStr::from_ptr(gnu_get_libc_version()) };
        let known = TABLES
            .iter()
            .any(|t| t.version.as_bytes() == version.to_bytes());
        let layout = Layout::get();
        assert_eq!(layout.is_ok(), known, "{:?}", layout.err());
        if let Ok(layout) = layout {
            assert!(layout.resp.is_some(), "__resp found in libc's TLS");
        }
    }

    #[test]
    fn loads_counts_a_dlopen() {
        let name = c"libresolv.so.2";
        // SAFETY: asks whether a library is loaded, by name.
        let loaded = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        assert!(
            loaded.is_null(),
            "the test binary does not load libresolv itself"
        );
        let before = loads();
        // SAFETY: loads a library every glibc system has.
        let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
        assert!(!h.is_null());
        assert!(loads() > before);
    }
}
