//! GREENIFY_STATS=1: one line of counters on stderr when the program exits (normally,
//! through `_exit`, or killed by SIGINT, SIGTERM or SIGHUP left at their default action),
//! labelled with its pid and name.
//!
//! For those three signals a handler of greenify's stands in for the default action: it
//! prints the line, puts the default action back and raises the signal again, so the
//! process dies by it as natively (same wait status). The program sees SIG_DFL from
//! `sigaction` meanwhile (see [`program_view`]).

use crate::runtime;
use std::fmt::Write;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

/// The stats line: 1,024 bytes on the stack.
type Line = crate::log::Line<1024>;

/// Where the stats line goes: a private copy of stderr taken when the library loads, so
/// that programs which close stderr at exit (coreutils' close_stdout) still get it.
static OUTPUT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(2);

/// Runs from `.init_array`: keeps a copy of stderr if stats, the escapes report or the
/// watchdog are wanted.
extern "C" fn keep_stderr() {
    let config = crate::hooks::config();
    if !config.stats && config.escapes == crate::config::Escapes::Off && config.watchdog.is_none() {
        return;
    }
    // SAFETY: fd 2 is only borrowed for the dup.
    let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
    let floor = runtime::reactor::internal_fd_floor();
    if let Some(copy) = runtime::reactor::dup_internal(stderr, floor) {
        let fd = rustix::fd::IntoRawFd::into_raw_fd(copy);
        OUTPUT.store(fd, std::sync::atomic::Ordering::Relaxed);
    }
    for sig in FATAL {
        // SAFETY: zeroed sigactions are valid; the real sigaction reads and writes them.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            // An inherited SIG_IGN (nohup) or a handler stays as it is.
            if crate::real::sigaction(sig, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_DFL
            {
                let act = fatal_action();
                crate::real::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    }
}

/// The signals whose default action ends the process that a user sends to stop a server.
const FATAL: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn fatal_action() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; its mask is emptied below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_fatal_signal as *const () as usize;
    // SAFETY: a local sigset.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    act
}

/// Prints the line, then dies by `sig` as the default action would: the signal, raised
/// again with the default action back, is blocked until this handler returns.
extern "C" fn on_fatal_signal(sig: libc::c_int) {
    print();
    // SAFETY: a zeroed sigaction is SIG_DFL with no flags; the real sigaction was resolved
    // when the handler was installed (no dlsym here).
    unsafe {
        let dfl: libc::sigaction = std::mem::zeroed();
        crate::real::sigaction(sig, &dfl, std::ptr::null_mut());
        let pid = rustix::process::getpid().as_raw_nonzero().get() as usize;
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as usize;
        runtime::raw::syscall(libc::SYS_tgkill, &[pid, tid, sig as usize]);
    }
}

/// The kernel's flag for a sigaction that carries its own signal return trampoline.
const SA_RESTORER: libc::c_int = 0x0400_0000;

/// The flags and mask the program last set with SIG_DFL for each of [`FATAL`] (what the
/// kernel would report back), while greenify's handler stands in.
static DEFAULT_FLAGS: [AtomicI32; 3] = [const { AtomicI32::new(0) }; 3];
static DEFAULT_MASKS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// For the sigaction hook: the program's view of `sig`'s current action (`current`, what
/// the kernel has): SIG_DFL where greenify's handler stands in.
pub fn program_view(sig: libc::c_int, current: &mut libc::sigaction) {
    let Some(i) = FATAL.iter().position(|&s| s == sig) else {
        return;
    };
    if current.sa_sigaction == on_fatal_signal as *const () as usize {
        current.sa_sigaction = libc::SIG_DFL;
        current.sa_flags = DEFAULT_FLAGS[i].load(Relaxed);
        // SAFETY: a sigset_t starts with the 64 bits the kernel uses; the rest stays empty.
        unsafe {
            libc::sigemptyset(&mut current.sa_mask);
            *(&mut current.sa_mask as *mut libc::sigset_t).cast::<u64>() =
                DEFAULT_MASKS[i].load(Relaxed);
        }
    }
}

/// For the sigaction hook: the action to install when the program sets `wanted`: a
/// default fatal action stays greenify's handler while stats are on.
pub fn keep_on_default(sig: libc::c_int, wanted: &mut libc::sigaction) {
    let Some(i) = FATAL.iter().position(|&s| s == sig) else {
        return;
    };
    if wanted.sa_sigaction == libc::SIG_DFL && crate::hooks::config().stats {
        // glibc's sigaction adds SA_RESTORER on x86_64, and the kernel reports it back.
        let restorer = if cfg!(target_arch = "x86_64") {
            SA_RESTORER
        } else {
            0
        };
        DEFAULT_FLAGS[i].store(wanted.sa_flags | restorer, Relaxed);
        // SAFETY: a sigset_t starts with the 64 bits the kernel uses.
        let mask = unsafe { *(&wanted.sa_mask as *const libc::sigset_t).cast::<u64>() };
        DEFAULT_MASKS[i].store(mask, Relaxed);
        *wanted = fatal_action();
    }
}

#[used]
#[link_section = ".init_array"]
static KEEP_STDERR: extern "C" fn() = keep_stderr;

/// The fd the stats line (and the escapes report) goes to.
pub fn output() -> i32 {
    OUTPUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs from `.fini_array`, after the program's atexit handlers.
extern "C" fn print_at_exit() {
    print();
}

/// The process that printed its line (a forked child prints its own).
static PRINTED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Prints the stats line once per process, if stats are wanted: at a normal exit and
/// from `_exit` (see hooks/process/exit.rs). Allocates nothing.
pub fn print() {
    let config = crate::hooks::config();
    if !config.stats {
        return;
    }
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if PRINTED_BY.swap(pid, std::sync::atomic::Ordering::SeqCst) == pid {
        return;
    }
    // A scheduler exists only if a green call was ever made on this OS thread.
    let stats = runtime::sched::snapshot::stats_now().unwrap_or_default();
    // Built on the stack: `_exit` may be called where malloc is not safe (a forked
    // child, a signal handler).
    let mut line = Line::default();
    let _ = write!(line, "greenify stats: pid={pid} program=");
    push_program_name(&mut line);
    runtime::sched::each_counter(&stats, |prefix, name, value| {
        let _ = write!(line, " {prefix}{name}={value}");
    });
    let _ = line.write_str("\n");
    // SAFETY: our copy of stderr (or fd 2), borrowed for one write.
    let out = unsafe {
        rustix::fd::BorrowedFd::borrow_raw(OUTPUT.load(std::sync::atomic::Ordering::Relaxed))
    };
    let _ = rustix::io::write(out, line.bytes());
}

/// The program's short name, with blanks and `=` made `_` so the line stays `key=value`
/// pairs.
fn push_program_name(line: &mut Line) {
    for &b in crate::log::program_name_bytes().iter().take(64) {
        let b = if b.is_ascii_whitespace() || b == b'=' {
            b'_'
        } else {
            b
        };
        line.push_bytes(&[b]);
    }
}

#[used]
#[link_section = ".fini_array"]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;
