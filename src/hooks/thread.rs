//! pthread_create and every function that takes a `pthread_t`.
//!
//! A green thread's `pthread_t` is a runtime handle (see `runtime::sched::Handle`: its TCB
//! address when green threads have TCBs of their own); the program's main thread keeps its
//! real one, so calls about it go to libc unchanged.
//! Functions that act on an OS thread (scheduling, affinity, CPU clock, signals) act on
//! the OS thread the green thread runs on.

use super::signal::Sent;
use super::{end_application, enter, start_application, Green};
use crate::real;
use crate::runtime::{self, Handle, JoinWait, SpawnOptions, StackRequest};
use libc::{
    c_char, c_int, c_void, clockid_t, cpu_set_t, pthread_attr_t, pthread_t, sched_param, size_t,
    timespec,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::OnceLock;

extern "C" {
    // Deprecated, but the one way to tell "no stack address set" (NULL) apart.
    fn pthread_attr_getstackaddr(attr: *const pthread_attr_t, addr: *mut *mut c_void) -> c_int;
    fn pthread_attr_getdetachstate(attr: *const pthread_attr_t, state: *mut c_int) -> c_int;
    fn pthread_attr_getsigmask_np(attr: *const pthread_attr_t, mask: *mut libc::sigset_t) -> c_int;
}

type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;

/// The default thread stack size glibc reports now (pthread_setattr_default_np changes it).
fn glibc_default_stack_size() -> usize {
    // SAFETY: a local attr, filled by glibc, read and destroyed.
    unsafe {
        let mut attr: pthread_attr_t = std::mem::zeroed();
        let mut size = 0;
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_getstacksize(&attr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        size
    }
}

/// glibc's default stack size when the process started: a size equal to it was not
/// chosen by the program, so greenify's own default applies.
fn native_default_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(glibc_default_stack_size)
}

/// Records glibc's default stack size when the library loads, before the program can
/// change it.
extern "C" fn record_native_default() {
    native_default_stack_size();
}

#[used]
#[link_section = ".init_array"]
static RECORD_NATIVE_DEFAULT: extern "C" fn() = record_native_default;

/// Whether the program called pthread_setattr_default_np: until it does, glibc's default
/// stack size is the one recorded at load, and a spawn need not ask glibc again.
static DEFAULT_ATTR_SET: AtomicBool = AtomicBool::new(false);

#[no_mangle]
pub unsafe extern "C" fn pthread_setattr_default_np(attr: *const pthread_attr_t) -> c_int {
    // Set before the call: a spawn racing with it asks glibc, which answers either size.
    DEFAULT_ATTR_SET.store(true, Relaxed);
    // SAFETY: forwarded.
    unsafe { real::pthread_setattr_default_np(attr) }
}

/// The stack of a thread created without an explicit size: greenify's default, unless the
/// program changed glibc's default (pthread_setattr_default_np).
fn default_stack() -> StackRequest {
    if DEFAULT_ATTR_SET.load(Relaxed) {
        let current = glibc_default_stack_size();
        if current != native_default_stack_size() {
            return StackRequest::Size(current);
        }
    }
    StackRequest::Size(super::config().stack_size)
}

/// The name a new thread inherits: its creator's (for main, the process's comm).
fn creator_name() -> [u8; 16] {
    if let Some(handle) = runtime::current_handle() {
        return runtime::name(handle).unwrap_or([0; 16]);
    }
    os_thread_name()
}

/// Renames of the OS thread seen so far (prctl, pthread_setname_np): the cached name below
/// is good while no rename came since it was read.
static RENAMES: AtomicU64 = AtomicU64::new(1);
static CACHED_AT: AtomicU64 = AtomicU64::new(0);
static CACHED_NAME: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// The OS thread may have been renamed.
fn os_thread_renamed() {
    RENAMES.fetch_add(1, SeqCst);
}

/// main's name (its OS thread's comm), asked of the kernel once per rename rather than
/// once per pthread_create. Only main reads and fills the cache. (A rename by writing
/// /proc/self/comm is not seen.)
fn os_thread_name() -> [u8; 16] {
    let renames = RENAMES.load(SeqCst);
    let mut name = [0u8; 16];
    if CACHED_AT.load(SeqCst) == renames {
        for (half, cached) in name.chunks_exact_mut(8).zip(&CACHED_NAME) {
            half.copy_from_slice(&cached.load(Relaxed).to_ne_bytes());
        }
        return name;
    }
    if let Ok(now) = main_name(None) {
        name = now;
    }
    for (half, cached) in name.chunks_exact(8).zip(&CACHED_NAME) {
        let word = u64::from_ne_bytes(half.try_into().expect("8 bytes"));
        cached.store(word, Relaxed);
    }
    CACHED_AT.store(renames, SeqCst);
    name
}

/// Reads (`set` None) or sets main's name: the comm of the process's first OS thread,
/// which `ps` and other processes see. With several workers main may run on another OS
/// thread: it then goes through /proc/self/task/PID/comm, as glibc does for a thread other
/// than the caller (a file descriptor for the moment, as glibc takes one). Err: an error
/// number.
fn main_name(set: Option<&[u8]>) -> Result<[u8; 16], c_int> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let mut name = [0u8; 16];
    if rustix::thread::gettid().as_raw_nonzero().get() == pid {
        let (option, arg) = match set {
            Some(new) => {
                let n = new.len().min(15);
                name[..n].copy_from_slice(&new[..n]);
                (libc::PR_SET_NAME, name.as_ptr() as usize)
            }
            None => (libc::PR_GET_NAME, name.as_mut_ptr() as usize),
        };
        // SAFETY: PR_SET_NAME reads and PR_GET_NAME writes 16 bytes (a raw syscall:
        // prctl is greenify's own hook).
        let r = unsafe { runtime::raw::syscall(libc::SYS_prctl, &[option as usize, arg]) };
        return if r < 0 { Err(-r as c_int) } else { Ok(name) };
    }
    let r = match set {
        Some(new) => {
            let fd = runtime::raw::open_task_file(pid, "comm", libc::O_WRONLY);
            if fd < 0 {
                return Err(-fd as c_int);
            }
            let n = new.len().min(15);
            // SAFETY: `new` has `n` bytes (raw calls: write and close are greenify's own
            // hooks).
            let r = unsafe {
                runtime::raw::syscall(libc::SYS_write, &[fd as usize, new.as_ptr() as usize, n])
            };
            runtime::raw::close(fd as i32);
            r
        }
        None => {
            let r = runtime::raw::read_task_file(pid, "comm", &mut name[..15]);
            // The comm file ends the name with a newline.
            if let Some(end) = name.iter().position(|&b| b == b'\n') {
                name[end] = 0;
            }
            r
        }
    };
    if r < 0 {
        Err(-r as c_int)
    } else {
        Ok(name)
    }
}

/// prctl: PR_SET_NAME and PR_GET_NAME name the calling green thread, as they name the
/// calling thread natively (not the OS thread that all green threads share).
#[no_mangle]
pub unsafe extern "C" fn prctl(
    option: c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
    arg4: libc::c_ulong,
    arg5: libc::c_ulong,
) -> c_int {
    let green = enter();
    if green.is_some() && matches!(option, libc::PR_SET_NAME | libc::PR_GET_NAME) {
        return match runtime::current_handle() {
            Some(handle) => green_thread_name(option, handle, arg2 as *mut u8),
            None => main_thread_name(option, arg2 as *mut u8),
        };
    }
    let args = [
        option as usize,
        arg2 as usize,
        arg3 as usize,
        arg4 as usize,
        arg5 as usize,
    ];
    // SAFETY: glibc's prctl is this system call with the same five arguments.
    let result = unsafe { runtime::raw::syscall(libc::SYS_prctl, &args) };
    if result < 0 {
        return super::fail(-result as c_int);
    }
    if option == libc::PR_SET_NAME {
        os_thread_renamed();
    }
    result as c_int
}

/// PR_SET_NAME / PR_GET_NAME for main (see [`main_name`]).
fn main_thread_name(option: c_int, buf: *mut u8) -> c_int {
    let result = if option == libc::PR_SET_NAME {
        let Some(name) = super::memory::read_c_string(buf, 15) else {
            return super::fail(libc::EFAULT);
        };
        let result = main_name(Some(&name));
        os_thread_renamed();
        result
    } else {
        main_name(None).and_then(|name| {
            if super::memory::write_bytes(buf, &name) {
                Ok(name)
            } else {
                Err(libc::EFAULT)
            }
        })
    };
    match result {
        Ok(_) => 0,
        Err(e) => super::fail(e),
    }
}

/// PR_SET_NAME / PR_GET_NAME for a green thread other than main.
fn green_thread_name(option: c_int, handle: Handle, buf: *mut u8) -> c_int {
    if option == libc::PR_SET_NAME {
        let Some(name) = super::memory::read_c_string(buf, 15) else {
            return super::fail(libc::EFAULT);
        };
        return match runtime::set_name(handle, &name) {
            Ok(()) => 0,
            Err(e) => super::fail(e.raw_os_error()),
        };
    }
    let name = runtime::name(handle).unwrap_or([0; 16]);
    if super::memory::write_bytes(buf, &name) {
        0
    } else {
        super::fail(libc::EFAULT)
    }
}

/// Where glibc keeps an attr's stack size (`struct pthread_attr`: schedparam, policy,
/// flags, guardsize, stackaddr, then stacksize): 0 until `pthread_attr_setstacksize`.
const ATTR_STACKSIZE_OFFSET: usize = 32;

/// Whether the program set `attr`'s stack size itself. `pthread_attr_getstacksize` reports
/// glibc's default for an attr without one, so a chosen size equal to the default (Rust's
/// and rustc's threads ask for exactly 8 MiB) would otherwise read as "not chosen". The
/// field's place is verified once on an attr of our own; if it is not where expected, a
/// size equal to the default counts as not chosen.
///
/// # Safety
/// `attr` is an initialised attr.
unsafe fn stack_size_chosen(attr: *const pthread_attr_t) -> bool {
    static LAYOUT_HOLDS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let field = |attr: *const pthread_attr_t| {
        // SAFETY: pthread_attr_t is 56 bytes; the word at the offset is inside it.
        unsafe {
            attr.cast::<u8>()
                .add(ATTR_STACKSIZE_OFFSET)
                .cast::<usize>()
                .read_unaligned()
        }
    };
    let holds = *LAYOUT_HOLDS.get_or_init(|| {
        const PROBE: usize = 3 << 20;
        // SAFETY: a local attr, initialised, set, read and destroyed here.
        unsafe {
            let mut probe: pthread_attr_t = std::mem::zeroed();
            libc::pthread_attr_init(&mut probe);
            let unset = field(&probe);
            libc::pthread_attr_setstacksize(&mut probe, PROBE);
            let set = field(&probe);
            libc::pthread_attr_destroy(&mut probe);
            unset == 0 && set == PROBE
        }
    });
    holds && field(attr) != 0
}

/// Spawn options from a pthread attr (NULL: defaults).
///
/// # Safety
/// `attr` is NULL or an initialised attr.
unsafe fn spawn_options(attr: *const pthread_attr_t) -> SpawnOptions {
    let default = SpawnOptions {
        stack: default_stack(),
        detached: false,
        name: creator_name(),
        sigmask: None,
    };
    if attr.is_null() {
        return default;
    }
    let mut detach = 0;
    let mut size = 0;
    let mut addr = std::ptr::null_mut();
    // SAFETY: an initialised attr, per the caller.
    unsafe {
        pthread_attr_getdetachstate(attr, &mut detach);
        libc::pthread_attr_getstacksize(attr, &mut size);
        pthread_attr_getstackaddr(attr, &mut addr);
    }
    // SAFETY: an initialised attr, per the caller.
    let chosen = unsafe { stack_size_chosen(attr) };
    let stack = if !addr.is_null() {
        // glibc keeps the top of a program-provided stack.
        StackRequest::User {
            addr: addr as usize - size,
            size,
        }
    } else if size == native_default_stack_size() && !chosen {
        default.stack
    } else {
        StackRequest::Size(size)
    };
    // pthread_attr_setsigmask_np: the new thread's mask (0 means one was set).
    // SAFETY: a zeroed sigset to fill from the program's attr.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: an initialised attr, per the caller.
    let has_mask = unsafe { pthread_attr_getsigmask_np(attr, &mut mask) } == 0;
    SpawnOptions {
        stack,
        detached: detach == libc::PTHREAD_CREATE_DETACHED,
        name: default.name,
        // SAFETY: the first 8 bytes of a sigset_t are the kernel's mask.
        sigmask: has_mask.then(|| unsafe { *(&mask as *const libc::sigset_t).cast::<u64>() }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_create(thread, attr, start, arg) };
    };
    // SAFETY: NULL or the program's initialised attr.
    let options = unsafe { spawn_options(attr) };
    let arg = arg as usize;
    let body = move || {
        // The program's SIGURG pending on the process while every thread blocked it is
        // this thread's if it accepts it: its handler runs before the start routine.
        if super::signal::deliver_kept() {
            super::signal::run_delivered();
        }
        start_application();
        let retval = start(arg as *mut c_void) as usize;
        thread_ending();
        end_application();
        retval
    };
    // glibc makes a new TCB with the program's malloc: as the program's code, so that a
    // lock it waits for inside that malloc parks this thread (see runtime/alloc.rs).
    let fresh = super::run_application(runtime::sched::new_tcb_block);
    // SAFETY: the program's out-pointer, written before the new thread may run.
    match unsafe { runtime::spawn_to(thread.cast(), body, options, fresh) } {
        Ok(_) => {
            super::preempt::thread_spawned();
            0
        }
        Err(e) => {
            ::log::warn!("pthread_create: no stack for a green thread ({e})");
            e.raw_os_error()
        }
    }
}

/// The current green thread is ending (its start routine returned, or it called
/// pthread_exit): its thread_local destructors run, then its key destructors (glibc's
/// order), and its robust mutexes become "owner dead".
fn thread_ending() {
    super::run_application(runtime::sched::thread_exiting);
    super::keys::run_destructors();
    let owner = runtime::sync::GREEN_OWNER_BASE | runtime::sched::current_id() as i32;
    runtime::sync::owner_exited(owner, true);
}

/// A green thread cannot wait for the main thread: glibc would wait in the kernel for the
/// OS thread, which runs them all, to end (with shared TCBs glibc sees a self-join).
fn joins_main(green: &Option<Green>, t: pthread_t) -> bool {
    green.is_some() && t == main_handle()
}

/// The main thread's handle (its TCB), wherever it runs: not the calling OS thread's own
/// descriptor ([`os_thread`]), which is another one on a worker other than the first.
fn main_handle() -> pthread_t {
    // SAFETY: no arguments.
    runtime::sched::main_tcb().unwrap_or_else(|| unsafe { real::pthread_self() })
}

/// `t` as a green handle, if it is one and we are green.
/// Whether `t` is main's own handle, asked by main: glibc would then name the OS thread
/// main runs on, which with several workers may not be its own.
fn is_main_itself(t: pthread_t) -> bool {
    // SAFETY: pthread_self has no preconditions.
    t == unsafe { libc::pthread_self() } && runtime::current_handle().is_none()
}

fn green_handle(green: &Option<Green>, t: pthread_t) -> Option<Handle> {
    (green.is_some() && runtime::sched::is_green_handle(t)).then_some(Handle(t))
}

unsafe fn join_with(t: pthread_t, retval: *mut *mut c_void, wait: JoinWait) -> c_int {
    match runtime::join(Handle(t), wait) {
        Ok(value) => {
            if !retval.is_null() {
                // SAFETY: the program's out-pointer.
                unsafe { *retval = value as *mut c_void };
            }
            0
        }
        Err(e) => e.raw_os_error(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_join(t: pthread_t, retval: *mut *mut c_void) -> c_int {
    let green = enter();
    // A green handle first: it is never main's, which takes a section to tell.
    if green_handle(&green, t).is_some() {
        // SAFETY: the program's out-pointer.
        return unsafe { join_with(t, retval, JoinWait::Block) };
    }
    if joins_main(&green, t) {
        return libc::EDEADLK;
    }
    // SAFETY: forwarded.
    unsafe { real::pthread_join(t, retval) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_tryjoin_np(t: pthread_t, retval: *mut *mut c_void) -> c_int {
    let green = enter();
    if green_handle(&green, t).is_none() {
        // SAFETY: forwarded.
        return unsafe { real::pthread_tryjoin_np(t, retval) };
    }
    // SAFETY: the program's out-pointer.
    unsafe { join_with(t, retval, JoinWait::Try) }
}

/// How a timed join waits for an absolute time on `clock` (EINVAL for a bad clock).
fn join_deadline(clock: clockid_t, abstime: &timespec) -> Result<JoinWait, c_int> {
    match super::clock::abs_deadline(clock, abstime) {
        Ok(deadline) => Ok(JoinWait::Until(deadline)),
        // glibc 2.36 retries its futex wait on the EINVAL an invalid nanosecond field gives,
        // until the thread exits: the join simply blocks.
        Err(_) if matches!(clock, libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC) => {
            Ok(JoinWait::Block)
        }
        Err(e) => Err(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_timedjoin_np(
    t: pthread_t,
    retval: *mut *mut c_void,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { clockjoin(t, retval, libc::CLOCK_REALTIME, abstime, false) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_clockjoin_np(
    t: pthread_t,
    retval: *mut *mut c_void,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { clockjoin(t, retval, clock, abstime, true) }
}

unsafe fn clockjoin(
    t: pthread_t,
    retval: *mut *mut c_void,
    clock: clockid_t,
    abstime: *const timespec,
    with_clock: bool,
) -> c_int {
    let green = enter();
    if joins_main(&green, t) {
        return libc::EDEADLK;
    }
    if green_handle(&green, t).is_none() {
        // SAFETY: forwarded.
        return unsafe {
            if with_clock {
                real::pthread_clockjoin_np(t, retval, clock, abstime)
            } else {
                real::pthread_timedjoin_np(t, retval, abstime)
            }
        };
    }
    let wait = if abstime.is_null() {
        JoinWait::Block
    } else {
        // SAFETY: non-NULL, from the program.
        match join_deadline(clock, unsafe { &*abstime }) {
            Ok(wait) => wait,
            Err(e) => return e,
        }
    };
    // SAFETY: the program's out-pointer.
    unsafe { join_with(t, retval, wait) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_detach(t: pthread_t) -> c_int {
    let green = enter();
    match green_handle(&green, t) {
        Some(h) => runtime::detach(h).err().map_or(0, |e| e.raw_os_error()),
        // SAFETY: forwarded.
        None => unsafe { real::pthread_detach(t) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_self() -> pthread_t {
    let handle = enter().and_then(|_green| runtime::current_handle());
    match handle {
        Some(h) => h.0,
        // SAFETY: forwarded.
        None => unsafe { real::pthread_self() },
    }
}

#[no_mangle]
pub extern "C" fn pthread_equal(a: pthread_t, b: pthread_t) -> c_int {
    (a == b) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn pthread_exit(retval: *mut c_void) -> ! {
    if let Some(green) = enter() {
        drop(green);
        // Cleanup handlers first (cancel.rs), then keys and the thread's end.
        super::cancel::unwind_or_finish(retval as usize);
    }
    // SAFETY: forwarded.
    unsafe { real::pthread_exit(retval) };
    // SAFETY: the real pthread_exit never returns.
    unsafe { std::hint::unreachable_unchecked() }
}

/// Ends the current green thread after its cleanup handlers ran: key destructors, robust
/// mutexes, then the thread itself (for main: the process lives until the last thread
/// ends, then exits with status 0, as glibc does).
pub fn finish_exit(retval: usize) -> ! {
    let green = enter();
    thread_ending();
    if runtime::current_is_main() {
        runtime::exit_main();
        drop(green);
        // SAFETY: ends the process as the last thread's exit does natively.
        unsafe { libc::exit(0) }
    }
    runtime::exit_current(retval);
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getattr_np(t: pthread_t, attr: *mut pthread_attr_t) -> c_int {
    let green = enter();
    let Some(handle) = green_handle(&green, t) else {
        // SAFETY: forwarded.
        return unsafe { real::pthread_getattr_np(t, attr) };
    };
    let (bottom, size) = match runtime::stack_bounds(handle) {
        Ok(bounds) => bounds,
        Err(e) => return e.raw_os_error(),
    };
    let detached = runtime::sched::is_detached(handle).unwrap_or(false);
    // SAFETY: the program's attr, which pthread_getattr_np initialises itself.
    unsafe {
        libc::pthread_attr_init(attr);
        libc::pthread_attr_setstack(attr, bottom as *mut c_void, size);
        if detached {
            libc::pthread_attr_setdetachstate(attr, libc::PTHREAD_CREATE_DETACHED);
        }
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setname_np(t: pthread_t, name: *const c_char) -> c_int {
    let green = enter();
    let Some(handle) = green_handle(&green, t) else {
        if green.is_some() && is_main_itself(t) {
            // SAFETY: a NUL-terminated name from the program.
            let bytes = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
            if bytes.len() > 15 {
                return libc::ERANGE;
            }
            let result = main_name(Some(bytes)).err().unwrap_or(0);
            os_thread_renamed();
            return result;
        }
        // SAFETY: forwarded.
        let result = unsafe { real::pthread_setname_np(t, name) };
        os_thread_renamed();
        return result;
    };
    // SAFETY: a NUL-terminated name from the program.
    let bytes = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
    if bytes.len() > 15 {
        return libc::ERANGE;
    }
    runtime::set_name(handle, bytes)
        .err()
        .map_or(0, |e| e.raw_os_error())
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getname_np(t: pthread_t, buf: *mut c_char, len: size_t) -> c_int {
    let green = enter();
    let name = match green_handle(&green, t) {
        Some(handle) => match runtime::name(handle) {
            Ok(name) => name,
            Err(e) => return e.raw_os_error(),
        },
        None if green.is_some() && is_main_itself(t) => match main_name(None) {
            Ok(name) => name,
            Err(e) => return e,
        },
        // SAFETY: forwarded.
        None => return unsafe { real::pthread_getname_np(t, buf, len) },
    };
    let n = name.iter().position(|&b| b == 0).unwrap_or(15);
    if len < n + 1 {
        return libc::ERANGE;
    }
    // SAFETY: `buf` has room for `len` >= n + 1 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast(), n);
        *buf.add(n) = 0;
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn sched_yield() -> c_int {
    let Some(_green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::sched_yield() };
    };
    runtime::yield_now();
    0
}

/// The OS thread's real handle, for calls that act on the OS thread a green one runs on
/// (glibc's pthread_self names the running green thread's TCB when it has its own).
pub fn os_thread() -> pthread_t {
    // SAFETY: no arguments.
    runtime::sched::os_thread_tcb().unwrap_or_else(|| unsafe { real::pthread_self() })
}

/// Runs `on_os_thread` for a live green handle (ESRCH for a reaped one), or forwards.
fn on_thread(t: pthread_t, on_os_thread: impl FnOnce(pthread_t) -> c_int) -> c_int {
    let green = enter();
    match green_handle(&green, t) {
        Some(h) if !runtime::exists(h) => libc::ESRCH,
        Some(_) => on_os_thread(os_thread()),
        None => on_os_thread(t),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_kill(t: pthread_t, sig: c_int) -> c_int {
    let green = enter();
    if let Some(h) = green_handle(&green, t) {
        if !runtime::exists(h) {
            return libc::ESRCH;
        }
        if sig == 0 {
            return 0;
        }
        // The signal reaches the OS thread; the green thread it aims at is the one a
        // handler interrupts (see signal.rs).
        let tid = runtime::sched::thread_id(h).unwrap_or(0);
        return send_to_green(tid, sig, Sent::Kill);
    }
    if green.is_some() && sig != 0 && t == main_handle() {
        // The main thread's own handle: its handler runs in the main thread.
        return send_to_green(runtime::sched::MAIN, sig, Sent::Kill);
    }
    // SAFETY: forwarded.
    unsafe { real::pthread_kill(t, sig) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_sigqueue(t: pthread_t, sig: c_int, value: libc::sigval) -> c_int {
    let green = enter();
    let tid = match green_handle(&green, t) {
        Some(h) if !runtime::exists(h) => return libc::ESRCH,
        Some(h) => runtime::sched::thread_id(h).unwrap_or(0),
        None if green.is_some() && t == main_handle() => runtime::sched::MAIN,
        // SAFETY: forwarded.
        None => return unsafe { real::pthread_sigqueue(t, sig, value) },
    };
    // As pthread_kill, the handler runs in `tid`.
    send_to_green(tid, sig, Sent::Queue(value))
}

/// pthread_kill or pthread_sigqueue of green thread `tid`: glibc's checks, then the send.
fn send_to_green(tid: u32, sig: c_int, sent: Sent) -> c_int {
    // glibc keeps its own signals (cancellation, setxid) from the program.
    if sig == 32 || sig == 33 {
        return libc::EINVAL;
    }
    super::signal::send_to_green(tid, sig, sent)
        .err()
        .unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cancel(t: pthread_t) -> c_int {
    let green = enter();
    match green_handle(&green, t) {
        Some(h) => runtime::sched::cancel(h)
            .err()
            .map_or(0, |e| e.raw_os_error()),
        // SAFETY: forwarded.
        None => unsafe { real::pthread_cancel(t) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getcpuclockid(t: pthread_t, clock: *mut clockid_t) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe { real::pthread_getcpuclockid(os, clock) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setschedparam(
    t: pthread_t,
    policy: c_int,
    param: *const sched_param,
) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe {
        real::pthread_setschedparam(os, policy, param)
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getschedparam(
    t: pthread_t,
    policy: *mut c_int,
    param: *mut sched_param,
) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe {
        real::pthread_getschedparam(os, policy, param)
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setschedprio(t: pthread_t, prio: c_int) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe { real::pthread_setschedprio(os, prio) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setaffinity_np(
    t: pthread_t,
    size: size_t,
    set: *const cpu_set_t,
) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe {
        real::pthread_setaffinity_np(os, size, set)
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getaffinity_np(
    t: pthread_t,
    size: size_t,
    set: *mut cpu_set_t,
) -> c_int {
    // SAFETY: forwarded to the (OS) thread.
    on_thread(t, |os| unsafe {
        real::pthread_getaffinity_np(os, size, set)
    })
}
