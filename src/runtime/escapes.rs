//! Escapes: system calls that reach the kernel without passing through a hook, seen with
//! Syscall User Dispatch (Linux >= 5.11, x86_64).
//!
//! An armed OS thread traps every `syscall` instruction outside greenify's own text while
//! its selector byte says BLOCK: the kernel sends SIGSYS instead of making the call. The
//! hooks keep the selector at ALLOW while greenify's code (and the libc functions it calls)
//! runs, and at BLOCK while the program's code runs, so a trap is a call the program made
//! past the hooks (glibc-internal I/O, `syscall` in assembly).
//!
//! The SIGSYS handler ([`on_sigsys`]) decides:
//! * a call that cannot wait nor depends on the signal mask ([`QUICK`]) is made at once,
//!   from the handler (our text passes), and its answer put in `rax`;
//! * `rt_sigreturn` (libc's restorer of another handler) is made again from our text;
//!   `rt_sigprocmask` is applied to the mask the handler's return restores;
//! * `execve`, `execveat` are made from the handler, with the program's mask and dispatch
//!   off (it survives exec);
//! * `fork`, `vfork`, `clone`, `clone3` run again at the program's own instruction with
//!   the selector at ALLOW (their child needs that very context); the next hook brings
//!   the selector back;
//! * every other one (a call that may wait, `sigaltstack`, `rt_sigsuspend`, any number
//!   not known to be quick) is made outside the handler: the handler rewrites its
//!   context to return into `greenify_escape_entry` on the program's stack (below the red
//!   zone), which saves the vector state, calls the dispatcher the hooks registered, and
//!   returns to the instruction after the `syscall` with `rax` set and every other
//!   register as the kernel leaves it (`rcx` = that address, `r11` = the flags).
//!
//! Each call that may wait is counted per (number, call site) in a fixed table (nothing allocates
//! on these paths), printed by [`write_report`].

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering::*};

/// The kernel's selector values.
const ALLOW: u8 = 0;
const BLOCK: u8 = 1;

/// Some OS thread is armed: the selector is live and SIGSYS is ours.
static ARMED: AtomicBool = AtomicBool::new(false);
/// greenify's SIGSYS handler is installed.
static HANDLER: AtomicBool = AtomicBool::new(false);
/// The process that armed (a forked child inherits the statics, not the arming).
static ARMED_BY: AtomicI32 = AtomicI32::new(0);
/// Catch mode: futex wakes (a green sleeper must see them) and the calls that close fds
/// (the fd table must see them) go to the dispatcher too.
static CATCH: AtomicBool = AtomicBool::new(false);
const CLOSING: [i64; 4] = [
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup2,
    libc::SYS_dup3,
];

/// greenify's executable segment: calls made from it always pass.
static TEXT: AtomicUsize = AtomicUsize::new(0);
static TEXT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Bytes XSAVE writes for the enabled state components.
static XSAVE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// A call made outside the handler: (number, arguments, address of its `syscall`
/// instruction, the program's stack pointer there) -> the kernel-style answer (a value,
/// or -errno).
pub type Dispatch = fn(i64, [i64; 6], usize, usize) -> i64;
static DISPATCH: AtomicUsize = AtomicUsize::new(0);
/// What the program's own SIGSYS (one not from dispatch: seccomp, kill) runs.
pub type Forward = unsafe fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
static FORWARD: AtomicUsize = AtomicUsize::new(0);

const PR_SET_SYSCALL_USER_DISPATCH: usize = 59;
const PR_SYS_DISPATCH_ON: usize = 1;
/// siginfo.si_code of a dispatch trap.
const SYS_USER_DISPATCH: i32 = 2;
const SA_RESTORER: u64 = 0x0400_0000;

/// Whether an OS thread is armed (SIGSYS is then greenify's).
#[inline]
pub fn armed() -> bool {
    ARMED.load(Relaxed)
}

/// Whether this process armed an OS thread (its escapes are its own to report).
pub fn armed_here() -> bool {
    armed() && ARMED_BY.load(Relaxed) == rustix::process::getpid().as_raw_nonzero().get()
}

/// The calling worker's selector follows the mode: BLOCK while the program's code runs.
#[inline]
pub fn set_blocking(blocking: bool) {
    if !ARMED.load(Relaxed) {
        return;
    }
    if let Some(selector) = super::sched::current_selector() {
        selector.store(if blocking { BLOCK } else { ALLOW }, Relaxed);
    }
}

/// Lets the calling worker's system calls pass while a handler of glibc's that greenify
/// runs between the program's instructions makes its own (see setxid.rs); returns the
/// selector to put back with [`restore_selector`]. Async-signal-safe.
pub fn allow_here() -> u8 {
    if !ARMED.load(Relaxed) {
        return ALLOW;
    }
    super::sched::current_selector().map_or(ALLOW, |selector| selector.swap(ALLOW, Relaxed))
}

/// Puts back what [`allow_here`] returned.
pub fn restore_selector(previous: u8) {
    if previous != ALLOW {
        if let Some(selector) = super::sched::current_selector() {
            selector.store(previous, Relaxed);
        }
    }
}

/// The SIGSYS bit, which no mask of an armed process may hold: a trap while SIGSYS is
/// blocked kills the process.
pub fn kept_unblocked() -> u64 {
    if armed() {
        1 << (libc::SIGSYS - 1)
    } else {
        0
    }
}

/// Why escapes cannot be watched here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The kernel has no Syscall User Dispatch (EINVAL) or refused it.
    Kernel(i32),
    /// Not x86_64 with XSAVE, or greenify's text was not found.
    Platform,
}

/// Arms the calling OS thread (the first time, installs the SIGSYS handler).
pub fn arm_this_thread(
    dispatch: Dispatch,
    forward: Forward,
    catch: bool,
) -> Result<(), Unavailable> {
    if TEXT_LEN.load(Relaxed) == 0 {
        prepare(dispatch, forward, catch)?;
    }
    let r = dispatch_on(true);
    if r < 0 {
        return Err(Unavailable::Kernel(-r as i32));
    }
    // The handler only once dispatch works: a kernel without it leaves SIGSYS alone.
    if !HANDLER.swap(true, Relaxed) {
        if let Err(e) = install_handler() {
            dispatch_on(false);
            HANDLER.store(false, Relaxed);
            return Err(e);
        }
    }
    ARMED.store(true, Relaxed);
    ARMED_BY.store(rustix::process::getpid().as_raw_nonzero().get(), Relaxed);
    Ok(())
}

/// Turns dispatch on (with our text range and the worker's selector) or off for the
/// calling thread; the kernel's answer.
fn dispatch_on(on: bool) -> isize {
    const PR_SYS_DISPATCH_OFF: usize = 0;
    let selector = super::sched::current_selector();
    let args = if let Some(selector) = selector.filter(|_| on) {
        [
            PR_SET_SYSCALL_USER_DISPATCH,
            PR_SYS_DISPATCH_ON,
            TEXT.load(Relaxed),
            TEXT_LEN.load(Relaxed),
            selector.as_ptr() as usize,
        ]
    } else {
        [PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0]
    };
    // SAFETY: prctl with our text range and a worker's selector byte, which lives as long
    // as the process (worker records are never freed).
    unsafe { super::raw::syscall(libc::SYS_prctl, &args) }
}

/// Dispatch survives exec, where nothing would handle its SIGSYS: an armed thread turns it
/// off before an exec ([`exec_failed`] turns it on again).
pub fn before_exec() {
    dispatch_on(false);
}

/// The exec did not happen: the thread is armed again.
pub fn exec_failed() {
    dispatch_on(true);
}

/// Finds greenify's text and the XSAVE size, and records the hooks' functions.
fn prepare(dispatch: Dispatch, forward: Forward, catch: bool) -> Result<(), Unavailable> {
    let size = xsave_size().ok_or(Unavailable::Platform)?;
    let (text, len) = own_text().ok_or(Unavailable::Platform)?;
    XSAVE_SIZE.store(size, Relaxed);
    DISPATCH.store(dispatch as usize, Relaxed);
    FORWARD.store(forward as usize, Relaxed);
    CATCH.store(catch, Relaxed);
    TEXT.store(text, Relaxed);
    TEXT_LEN.store(len, Relaxed);
    Ok(())
}

/// Elsewhere than x86_64 there is no entry: [`prepare`] already said so.
#[cfg(not(target_arch = "x86_64"))]
fn install_handler() -> Result<(), Unavailable> {
    Err(Unavailable::Platform)
}

/// Installs the SIGSYS handler, with a restorer in our text (libc's would trap).
#[cfg(target_arch = "x86_64")]
fn install_handler() -> Result<(), Unavailable> {
    // The kernel's struct sigaction: handler, flags, restorer, mask. Every signal is
    // blocked while the handler runs: another handler's call would trap with SIGSYS
    // blocked, which kills.
    let action: [u64; 4] = [
        on_sigsys as *const () as u64,
        (libc::SA_SIGINFO as u64) | SA_RESTORER,
        greenify_escape_restorer as *const () as u64,
        !0,
    ];
    // SAFETY: rt_sigaction with a valid kernel sigaction and an 8-byte mask.
    let r = unsafe {
        super::raw::syscall(
            libc::SYS_rt_sigaction,
            &[libc::SIGSYS as usize, action.as_ptr() as usize, 0, 8],
        )
    };
    if r < 0 {
        return Err(Unavailable::Kernel(-r as i32));
    }
    Ok(())
}

/// XSAVE's area size for the enabled components, if the OS enabled XSAVE.
fn xsave_size() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        // cpuid exists on every x86_64 CPU; leaf 0xD is read only when leaf 1 says the
        // OS enabled XSAVE.
        let osxsave = std::arch::x86_64::__cpuid(1).ecx & (1 << 27) != 0;
        osxsave.then(|| std::arch::x86_64::__cpuid_count(0xD, 0).ebx as usize)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The executable PT_LOAD segment of the module this code is in.
fn own_text() -> Option<(usize, usize)> {
    let own = own_text as *const () as usize;
    let mut found = None;
    super::modules::each(&mut |module| {
        found = module
            .code()
            .find(|&(start, end)| (start..end).contains(&own));
        found.is_some()
    });
    found.map(|(start, end)| (start, end - start))
}

// ---- the handler ----

/// The numbers that may wait in the kernel, counted as escapes and made outside the
/// handler (futex: only its waits; see [`waits`]).
const BLOCKING: [i64; 37] = [
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvmmsg,
    libc::SYS_sendmmsg,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_pause,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_msgrcv,
    libc::SYS_msgsnd,
    libc::SYS_semop,
    libc::SYS_semtimedop,
];

/// Whether a futex call may wait.
fn waits(op: i64) -> bool {
    const WAITS: [i64; 5] = [
        libc::FUTEX_WAIT as i64,
        libc::FUTEX_WAIT_BITSET as i64,
        libc::FUTEX_LOCK_PI as i64,
        13, // FUTEX_LOCK_PI2
        libc::FUTEX_WAIT_REQUEUE_PI as i64,
    ];
    WAITS.contains(&(op & 127))
}

/// Whether a trapped call counts as an escape (it may wait).
pub fn is_blocking(nr: i64, args: &[i64; 6]) -> bool {
    BLOCKING.contains(&nr) || (nr == libc::SYS_futex && waits(args[1]))
}

#[cfg(target_arch = "x86_64")]
mod arch {
    /// Frame slots (u64) the entry writes below the program's red zone.
    pub const NR: usize = 0;
    pub const ARGS: usize = 1; // 6 slots: rdi, rsi, rdx, r10, r8, r9
    pub const RETURN: usize = 7;
    pub const RSP: usize = 8;
    /// The frame's size; the XSAVE area follows it (64-byte aligned).
    pub const FRAME: usize = 128;
    /// The program's red zone, which a call may not touch.
    pub const RED_ZONE: usize = 128;

    // The entry. The handler leaves every register the program's except rip, rsp (the
    // program's less its red zone), rcx (the return address, as `syscall` leaves it) and
    // r11 (the program's rsp). It lays out the frame (64-byte aligned, the XSAVE area
    // after it), saves flags and the vector state, calls the dispatcher with the frame,
    // restores them and the argument registers (the kernel keeps them), sets rax to the
    // answer, rcx to the return address and r11 to the flags as `syscall` does, and jumps
    // back on the program's stack. Nothing is written above the red zone: the handler's
    // signal frame was there, and is gone now.
    std::arch::global_asm!(
        ".text",
        ".globl greenify_escape_entry",
        ".hidden greenify_escape_entry",
        ".type greenify_escape_entry,@function",
        "greenify_escape_entry:",
        "and rsp, -64",
        "sub rsp, qword ptr [rip + {xsave_size}]",
        "sub rsp, {frame}",
        "and rsp, -64",
        "mov [rsp + 0*8], rax",
        "mov [rsp + 1*8], rdi",
        "mov [rsp + 2*8], rsi",
        "mov [rsp + 3*8], rdx",
        "mov [rsp + 4*8], r10",
        "mov [rsp + 5*8], r8",
        "mov [rsp + 6*8], r9",
        "mov [rsp + 7*8], rcx",
        "mov [rsp + 8*8], r11",
        // The XSAVE header must be zero before XSAVE (XRSTOR checks it).
        "xor eax, eax",
        "mov [rsp + {frame} + 512 + 0*8], rax",
        "mov [rsp + {frame} + 512 + 1*8], rax",
        "mov [rsp + {frame} + 512 + 2*8], rax",
        "mov [rsp + {frame} + 512 + 3*8], rax",
        "mov [rsp + {frame} + 512 + 4*8], rax",
        "mov [rsp + {frame} + 512 + 5*8], rax",
        "mov [rsp + {frame} + 512 + 6*8], rax",
        "mov [rsp + {frame} + 512 + 7*8], rax",
        "pushfq",
        "sub rsp, 8",
        "mov eax, -1",
        "mov edx, -1",
        "xsave64 [rsp + 16 + {frame}]",
        "lea rdi, [rsp + 16]",
        "cld",
        "call {dispatch}",
        "mov [rsp + 16 + 9*8], rax",
        "mov eax, -1",
        "mov edx, -1",
        "xrstor64 [rsp + 16 + {frame}]",
        "add rsp, 8",
        "popfq",
        "mov r11, [rsp - 8]",
        "mov rdi, [rsp + 1*8]",
        "mov rsi, [rsp + 2*8]",
        "mov rdx, [rsp + 3*8]",
        "mov r10, [rsp + 4*8]",
        "mov r8, [rsp + 5*8]",
        "mov r9, [rsp + 6*8]",
        "mov rax, [rsp + 9*8]",
        "mov rcx, [rsp + 7*8]",
        "mov rsp, [rsp + 8*8]",
        "jmp rcx",
        ".size greenify_escape_entry, . - greenify_escape_entry",
        // rt_sigreturn from our text: the SIGSYS handler's restorer, and where a trapped
        // rt_sigreturn of another handler is made again (same rsp).
        ".globl greenify_escape_restorer",
        ".hidden greenify_escape_restorer",
        ".type greenify_escape_restorer,@function",
        "greenify_escape_restorer:",
        "mov eax, 15",
        "syscall",
        "ud2",
        ".size greenify_escape_restorer, . - greenify_escape_restorer",
        frame = const FRAME,
        dispatch = sym super::from_entry,
        xsave_size = sym super::XSAVE_SIZE,
    );
}

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn greenify_escape_entry();
    fn greenify_escape_restorer();
}

/// Called by the entry with the frame the handler wrote.
#[cfg(target_arch = "x86_64")]
extern "C" fn from_entry(frame: *const u64) -> i64 {
    // SAFETY: the handler wrote the frame's slots before returning into the entry.
    let slot = |i: usize| unsafe { *frame.add(i) };
    let nr = slot(arch::NR) as i64;
    let args: [i64; 6] = std::array::from_fn(|i| slot(arch::ARGS + i) as i64);
    let site = slot(arch::RETURN) as usize - 2;
    let dispatch = DISPATCH.load(Relaxed);
    // SAFETY: set (to a Dispatch) before any thread was armed.
    let dispatch: Dispatch = unsafe { std::mem::transmute::<usize, Dispatch>(dispatch) };
    dispatch(nr, args, site, slot(arch::RSP) as usize)
}

#[cfg(target_arch = "x86_64")]
extern "C" fn on_sigsys(sig: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo; si_code is in every siginfo.
    if unsafe { (*info).si_code } != SYS_USER_DISPATCH {
        let forward = FORWARD.load(Relaxed);
        // SAFETY: set (to a Forward) before the handler was installed; the kernel's args.
        unsafe { std::mem::transmute::<usize, Forward>(forward)(sig, info, context) };
        return;
    }
    // SAFETY: the kernel's context for this handler.
    let uc = unsafe { &mut *context.cast::<libc::ucontext_t>() };
    let g = &mut uc.uc_mcontext.gregs;
    let nr = g[libc::REG_RAX as usize];
    let args = [
        g[libc::REG_RDI as usize],
        g[libc::REG_RSI as usize],
        g[libc::REG_RDX as usize],
        g[libc::REG_R10 as usize],
        g[libc::REG_R8 as usize],
        g[libc::REG_R9 as usize],
    ];
    // Made as it is unless caught (see `super::fdtable::set_private`).
    super::fdtable::forget_private_before(nr);
    match nr {
        libc::SYS_rt_sigreturn => {
            g[libc::REG_RIP as usize] = greenify_escape_restorer as *const () as i64;
        }
        libc::SYS_rt_sigprocmask => {
            // SAFETY: the mask the handler's return restores, and the program's call.
            g[libc::REG_RAX as usize] = unsafe { sigprocmask(&mut uc.uc_sigmask, &args) };
        }
        libc::SYS_execve | libc::SYS_execveat => {
            // SAFETY: the mask the handler's return restores, and the program's call.
            g[libc::REG_RAX as usize] = unsafe { exec(&uc.uc_sigmask, nr, &args) };
        }
        libc::SYS_fork | libc::SYS_vfork | libc::SYS_clone | libc::SYS_clone3 => {
            if let Some(selector) = super::sched::current_selector() {
                selector.store(ALLOW, Relaxed);
            }
            g[libc::REG_RIP as usize] -= 2;
        }
        _ if QUICK.contains(&nr) && !(CATCH.load(Relaxed) && CLOSING.contains(&nr)) => {
            let a = args.map(|a| a as usize);
            // SAFETY: the program's own call, made as it asked.
            g[libc::REG_RAX as usize] = unsafe { super::raw::syscall(nr, &a) } as i64;
        }
        _ => to_entry(g),
    }
}

/// Calls that never wait nor depend on the signal mask: made in the handler itself (every
/// other one is made outside it, where signals arrive as they would at the call).
const QUICK: [i64; 52] = [
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_gettid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getpgrp,
    libc::SYS_getrandom,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_time,
    libc::SYS_uname,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_getcwd,
    libc::SYS_getdents64,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_pipe2,
    libc::SYS_socket,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigpending,
    libc::SYS_prlimit64,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_yield,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_exit_group,
];

/// Makes the trapped context return into `greenify_escape_entry` (see there for the registers it takes).
#[cfg(target_arch = "x86_64")]
fn to_entry(g: &mut [i64; 23]) {
    let rsp = g[libc::REG_RSP as usize];
    g[libc::REG_R11 as usize] = rsp;
    g[libc::REG_RSP as usize] = rsp - arch::RED_ZONE as i64;
    g[libc::REG_RCX as usize] = g[libc::REG_RIP as usize];
    g[libc::REG_RIP as usize] = greenify_escape_entry as *const () as i64;
}

/// An exec from the handler: the new program gets the program's mask (not the handler's)
/// and no dispatch; if the exec fails, both come back.
///
/// # Safety
/// The program's arguments.
#[cfg(target_arch = "x86_64")]
unsafe fn exec(saved: &libc::sigset_t, nr: i64, args: &[i64; 6]) -> i64 {
    let mut handler_mask = 0u64;
    let mask = [
        libc::SIG_SETMASK as usize,
        saved as *const _ as usize,
        &mut handler_mask as *mut u64 as usize,
        8,
    ];
    // SAFETY: an 8-byte kernel mask (the context's) and an out-pointer, both valid.
    unsafe { super::raw::syscall(libc::SYS_rt_sigprocmask, &mask) };
    before_exec();
    let a = args.map(|a| a as usize);
    // SAFETY: the program's exec, as it asked.
    let r = unsafe { super::raw::syscall(nr, &a) };
    exec_failed();
    let back = [
        libc::SIG_SETMASK as usize,
        &handler_mask as *const u64 as usize,
        0,
        8,
    ];
    // SAFETY: the handler's own mask, back.
    unsafe { super::raw::syscall(libc::SYS_rt_sigprocmask, &back) };
    r as i64
}

/// rt_sigprocmask applied to `saved` (what the handler's return restores): the thread's
/// mask becomes the program's, the call is made, and the result goes back into `saved`
/// without SIGSYS.
///
/// # Safety
/// The program's arguments.
#[cfg(target_arch = "x86_64")]
unsafe fn sigprocmask(saved: &mut libc::sigset_t, args: &[i64; 6]) -> i64 {
    let saved = (saved as *mut libc::sigset_t).cast::<u64>();
    let set = |mask: *const u64, old: *mut u64| {
        let a = [libc::SIG_SETMASK as usize, mask as usize, old as usize, 8];
        // SAFETY: an 8-byte kernel mask and an out-pointer, both ours.
        unsafe { super::raw::syscall(libc::SYS_rt_sigprocmask, &a) }
    };
    let mut handler_mask = 0u64;
    set(saved, &mut handler_mask);
    let a = args.map(|a| a as usize);
    // SAFETY: the program's call, on its own mask.
    let r = unsafe { super::raw::syscall(libc::SYS_rt_sigprocmask, &a) };
    // SAFETY: `saved` is the context's mask (8 bytes the kernel restores).
    unsafe {
        set(&handler_mask, saved);
        *saved &= !(1 << (libc::SIGSYS - 1));
    }
    r as i64
}

// ---- counting and the report ----

/// One escape site: number, `syscall` address, count, and return addresses seen above
/// its stack pointer the first time (the functions that led there).
struct Site {
    nr: AtomicI64,
    at: AtomicUsize,
    count: AtomicU64,
    callers: [AtomicUsize; CALLERS],
}

const SITES: usize = 64;
pub(crate) const CALLERS: usize = 6;
static TABLE: [Site; SITES] = [const {
    Site {
        nr: AtomicI64::new(0),
        at: AtomicUsize::new(0),
        count: AtomicU64::new(0),
        callers: [const { AtomicUsize::new(0) }; CALLERS],
    }
}; SITES];
/// Escapes of sites the table had no room for.
static UNLISTED: AtomicU64 = AtomicU64::new(0);

/// The green threads (by id) inside a caught call. A hook that passes a call on to libc
/// after leaving greenify's mode traps again; that inner call is made as it is.
static CATCHING: [AtomicU64; 1 << 14] = [const { AtomicU64::new(0) }; 1 << 14];

/// Marks green thread `id` as inside a caught call; false if it already is (or its id is
/// past the table: its calls are made as they are).
pub fn begin_catch(id: u32) -> bool {
    let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
    CATCHING
        .get(word)
        .is_some_and(|w| w.fetch_or(bit, Relaxed) & bit == 0)
}

/// Green thread `id` left its caught call.
pub fn end_catch(id: u32) {
    CATCHING[id as usize / 64].fetch_and(!(1u64 << (id % 64)), Relaxed);
}

/// In a forked child: no thread is armed and nothing was counted yet.
pub fn forget() {
    ARMED.store(false, Relaxed);
    for s in &TABLE {
        s.at.store(0, Relaxed);
        s.count.store(0, Relaxed);
        for c in &s.callers {
            c.store(0, Relaxed);
        }
    }
    UNLISTED.store(0, Relaxed);
}

/// Counts an escape of `nr` at `site`; `stack` is the program's stack pointer at the
/// call (scanned for return addresses the first time the site is seen).
pub fn count(nr: i64, site: usize, stack: usize) {
    for s in &TABLE {
        match s.at.compare_exchange(0, site, AcqRel, Acquire) {
            Ok(_) => {
                s.nr.store(nr, Relaxed);
                scan_callers(stack, &s.callers);
                s.count.fetch_add(1, Relaxed);
                return;
            }
            Err(at) if at == site && s.nr.load(Relaxed) == nr => {
                s.count.fetch_add(1, Relaxed);
                return;
            }
            Err(_) => {}
        }
    }
    UNLISTED.fetch_add(1, Relaxed);
}

/// Words above `sp` that look like return addresses: they point into a loaded module's
/// code just after a call instruction. A heuristic (a stale word may match), enough to
/// name the functions that led to a call in code built without frame pointers. greenify's
/// own are left out, and so is every word below the last of them that comes before the
/// first return into the program (not libc or the loader): those lie in greenify's own
/// frames, where a slot the current call never wrote can still hold a return address of
/// an earlier call (a parked thread's report named `_IO_do_write`, left there by a printf
/// before it, as its caller).
pub(crate) fn scan_callers(sp: usize, out: &[AtomicUsize; CALLERS]) {
    let mut words = [0usize; 512];
    let local = libc::iovec {
        iov_base: words.as_mut_ptr().cast(),
        iov_len: std::mem::size_of_val(&words),
    };
    let remote = libc::iovec {
        iov_base: sp as *mut libc::c_void,
        iov_len: local.iov_len,
    };
    let pid = rustix::process::getpid().as_raw_nonzero().get() as usize;
    // SAFETY: reads our own memory into a local buffer; the kernel stops at the first
    // unmapped page above the stack instead of faulting.
    let read = unsafe {
        super::raw::syscall(
            libc::SYS_process_vm_readv,
            &[
                pid,
                &local as *const _ as usize,
                1,
                &remote as *const _ as usize,
                1,
                0,
            ],
        )
    };
    let n = (read.max(0) as usize / 8).min(words.len());
    let mut found = [(0usize, Caller::Own); 512];
    let mut count = 0;
    for &w in &words[..n] {
        if let Some(kind) = after_call(w) {
            found[count] = (w, kind);
            count += 1;
        }
    }
    let found = &found[..count];
    let program = found
        .iter()
        .position(|&(_, kind)| kind == Caller::Program)
        .unwrap_or(count);
    let past_own = found[..program]
        .iter()
        .rposition(|&(_, kind)| kind == Caller::Own)
        .map_or(0, |last| last + 1);
    let callers = found[past_own..]
        .iter()
        .filter(|&&(_, kind)| kind != Caller::Own);
    for (slot, &(w, _)) in out.iter().zip(callers) {
        slot.store(w, Relaxed);
    }
}

/// Whose code a return address returns into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// greenify's (never the program's frames; the watchdog scans from deep in them).
    Own,
    /// libc's or the loader's.
    Base,
    /// The program's, or a library of its own.
    Program,
}

/// Whose code `addr` lies in, if it is in a module's text right after a call instruction.
fn after_call(addr: usize) -> Option<Caller> {
    if addr < 4096 {
        return None;
    }
    let info = symbol(addr)?;
    let kind = if info.dli_fbase as usize == own_base() {
        Caller::Own
    } else if is_base_module(info.dli_fname) {
        Caller::Base
    } else {
        Caller::Program
    };
    let start = if info.dli_saddr.is_null() {
        info.dli_fbase
    } else {
        info.dli_saddr
    };
    if (addr - 7) < start as usize || !in_code(addr) {
        return None;
    }
    // SAFETY: the 7 bytes before `addr` lie within the same executable segment (checked
    // above): mapped code of a loaded module.
    let b = unsafe { std::slice::from_raw_parts((addr - 7) as *const u8, 7) };
    let direct = b[2] == 0xe8;
    let indirect_reg = b[5] == 0xff && (0xd0..=0xd7).contains(&b[6]);
    let indirect_mem = (b[1] == 0xff && b[2] & 0x38 == 0x10)
        || (b[4] == 0xff && b[5] & 0x38 == 0x10)
        || (b[5] == 0xff && b[6] & 0x38 == 0x10);
    (direct || indirect_reg || indirect_mem).then_some(kind)
}

/// Whether the module at path `name` is libc or the loader.
fn is_base_module(name: *const libc::c_char) -> bool {
    if name.is_null() {
        return false;
    }
    // SAFETY: dladdr's module path, a NUL-terminated string the loader keeps.
    let path = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
    let file = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    [&b"libc.so"[..], b"ld-linux", b"ld64.so"]
        .iter()
        .any(|base| file.starts_with(base))
}

/// Whether `addr` and the 7 bytes before it are in one executable segment of a module.
fn in_code(addr: usize) -> bool {
    let mut found = false;
    super::modules::each(&mut |module| {
        found = module
            .code()
            .any(|(start, end)| start + 7 <= addr && addr <= end);
        found
    });
    found
}

/// The load address of greenify's own module (looked up once).
fn own_base() -> usize {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    match BASE.load(Relaxed) {
        0 => {
            let base = symbol(own_base as *const () as usize).map_or(1, |i| i.dli_fbase as usize);
            BASE.store(base, Relaxed);
            base
        }
        base => base,
    }
}

/// What `dladdr` knows of `addr`: its module and the symbol covering it.
pub(crate) fn symbol(addr: usize) -> Option<libc::Dl_info> {
    // SAFETY: an all-zero Dl_info is valid to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr with a valid out-pointer; it only looks the address up.
    let found = unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } != 0;
    found.then_some(info)
}

/// Writes the report (one line per site) with `write`, if any escape was counted; returns
/// whether there was one. `verb` says what happened to them ("escaped", "caught").
pub fn write_report(verb: &str, write: &mut dyn FnMut(&[u8])) -> bool {
    let mut any = false;
    for s in TABLE.iter() {
        let at = s.at.load(Acquire);
        if at == 0 {
            break;
        }
        any = true;
        let mut line = Line::default();
        line.push("greenify escapes: ");
        line.push(verb);
        line.push(" ");
        line.push(name(s.nr.load(Relaxed)));
        line.push(" x");
        line.num(s.count.load(Relaxed) as usize, 10);
        line.push(" at ");
        place(&mut line, at);
        for c in &s.callers {
            let c = c.load(Relaxed);
            if c != 0 {
                line.push(" <- ");
                place(&mut line, c);
            }
        }
        line.push("\n");
        write(line.bytes());
    }
    let unlisted = UNLISTED.load(Relaxed);
    if unlisted != 0 {
        let mut line = Line::default();
        line.push("greenify escapes: ");
        line.num(unlisted as usize, 10);
        line.push(" more at other sites\n");
        write(line.bytes());
    }
    any
}

/// The system call's name, for the numbers counted.
pub(crate) fn name(nr: i64) -> &'static str {
    const NAMES: [(i64, &str); 38] = [
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_writev, "writev"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_pwrite64, "pwrite64"),
        (libc::SYS_preadv, "preadv"),
        (libc::SYS_pwritev, "pwritev"),
        (libc::SYS_preadv2, "preadv2"),
        (libc::SYS_pwritev2, "pwritev2"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_recvmmsg, "recvmmsg"),
        (libc::SYS_sendmmsg, "sendmmsg"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_poll, "poll"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_select, "select"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_wait, "epoll_wait"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_epoll_pwait2, "epoll_pwait2"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_pause, "pause"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_futex, "futex"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == nr)
        .map_or("syscall", |(_, s)| s)
}

/// A report line, built on the stack (the report runs where malloc may not be safe).
pub(crate) type Line = crate::log::Line<1024>;

/// `function+0xoff (module)`, or the bare address.
pub(crate) fn place(line: &mut Line, addr: usize) {
    let Some(info) = symbol(addr) else {
        line.push("0x");
        return line.num(addr, 16);
    };
    if info.dli_sname.is_null() {
        line.push("0x");
        line.num(addr - info.dli_fbase as usize, 16);
    } else {
        // SAFETY: dladdr's names are NUL-terminated strings of the loaded module.
        line.push_bytes(unsafe { std::ffi::CStr::from_ptr(info.dli_sname) }.to_bytes());
        line.push("+0x");
        line.num(addr - info.dli_saddr as usize, 16);
    }
    line.push(" (");
    if !info.dli_fname.is_null() {
        // SAFETY: as above.
        let path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes();
        let base = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
        line.push_bytes(if base.is_empty() {
            b"main program"
        } else {
            base
        });
    }
    line.push(")");
}
