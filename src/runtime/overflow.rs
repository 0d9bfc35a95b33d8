//! Reporting a green thread's stack overflow, and dying loudly.
//!
//! Each worker records the running thread's stack bottom and name at every switch in its
//! [`Running`] (a few plain stores). A SIGSEGV/SIGBUS handler on an alternate signal stack
//! (installed with the first green stack, see [`arm`]; each worker OS thread has its own
//! alternate stack, [`arm_worker`]) checks
//! whether the faulting address lies below that bottom and not far below the lower of the
//! bottom and the stack pointer: a guard page hit, a large frame that jumped over the
//! guard, or a thread whose stack pointer ran far below its stack (runaway recursion,
//! a huge local array) and faulted at the bottom of the arena or in a watched gap (whose
//! SIGBUS becomes a SIGSEGV, as natively). If so it names the thread;
//! in every case it then restores the previous disposition and returns, so the fault
//! happens again and ends the process exactly as it would have without us (or reaches
//! the program's own handler).
//!
//! Everything here is async-signal-safe: no allocation, raw `write(2)` only.

use super::stack::{page_size, StackKind};
use crate::log::{write_stderr, Line};
use std::cell::UnsafeCell;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// How far below the lower of a stack's bottom and the stack pointer a fault still counts
/// as that stack's overflow (a frame's writes land at or a little below its stack pointer).
const OVERFLOW_WINDOW: usize = 64 << 10;

/// The stack of the green thread a worker runs, for its OS thread's fault handler.
#[derive(Default)]
pub struct Running {
    /// Its bottom (0: none of ours, or MAIN).
    bottom: AtomicUsize,
    size: AtomicUsize,
    name: [AtomicUsize; 2],
}

impl Running {
    /// The worker is about to run a thread with this stack.
    pub fn entering(&self, name: &[u8; 16], (bottom, size): (usize, usize), kind: StackKind) {
        let bottom = match kind {
            StackKind::User => 0,
            _ => bottom,
        };
        self.bottom.store(bottom, Relaxed);
        self.size.store(size, Relaxed);
        self.renamed(name);
    }

    /// The thread it runs was named (by itself, or by a thread on another worker).
    pub fn renamed(&self, name: &[u8; 16]) {
        self.name[0].store(usize::from_ne_bytes(name[..8].try_into().unwrap()), Relaxed);
        self.name[1].store(usize::from_ne_bytes(name[8..].try_into().unwrap()), Relaxed);
    }

    /// Back on the worker's own stack.
    pub fn left(&self) {
        self.bottom.store(0, Relaxed);
    }
}

fn name_str(name: &[u8; 16]) -> &str {
    let end = name.iter().position(|&b| b == 0).unwrap_or(16);
    match std::str::from_utf8(&name[..end]) {
        Ok("") | Err(_) => "unnamed",
        Ok(s) => s,
    }
}

fn overflow_line(name: &[u8; 16], size: usize, why: &str) -> Line<320> {
    let mut line = Line::new();
    let _ = writeln!(
        line,
        "greenify: stack overflow in green thread \"{}\" ({} KiB stack): {}; give it a \
         bigger stack (GREENIFY_STACK_SIZE or pthread_attr_setstacksize)",
        name_str(name),
        size / 1024,
        why
    );
    line
}

/// An overflow seen at a switch (canary): report and abort.
pub fn report(name: &[u8; 16], size: usize, why: &str) -> ! {
    let line = overflow_line(name, size, why);
    write_stderr(line.bytes());
    std::process::abort()
}

/// A broken invariant of the runtime: say so and abort.
pub fn die(message: &str) -> ! {
    write_stderr(message.as_bytes());
    write_stderr(b"\n");
    std::process::abort()
}

/// The sigaction to use (the real libc one: the library's own is a hook).
type SigactionFn =
    unsafe fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;
static SIGACTION: AtomicUsize = AtomicUsize::new(0);

struct Saved(UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: written once by `arm` before the handler can run, then only read.
unsafe impl Sync for Saved {}
// SAFETY: an all-zero sigaction is a valid (SIG_DFL) value.
static PREVIOUS: Saved = Saved(UnsafeCell::new(unsafe { std::mem::zeroed() }));
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];
const ALT_STACK_BYTES: usize = 64 << 10;

/// The interrupted code's stack pointer.
fn stack_pointer(ctx: *mut libc::c_void) -> usize {
    let ctx = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid ucontext as the third argument of SA_SIGINFO handlers.
    #[cfg(target_arch = "x86_64")]
    let sp = unsafe { (*ctx).uc_mcontext.gregs[libc::REG_RSP as usize] };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    let sp = unsafe { (*ctx).uc_mcontext.sp };
    // Elsewhere only faults just below the stack's bottom are recognised.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let sp = usize::MAX;
    sp as usize
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = super::sched::running_stack();
    let bottom = running.map_or(0, |r| r.bottom.load(Relaxed));
    let lowest = bottom.min(stack_pointer(ctx));
    let window = OVERFLOW_WINDOW.max(page_size());
    if bottom != 0 && (lowest.saturating_sub(window)..bottom).contains(&addr) {
        if sig == libc::SIGBUS {
            // A write into a gap watched by the userfaultfd (stack.rs). Make the page
            // PROT_NONE and return: the write faults again as a SIGSEGV, which is reported
            // below and ends the process as an overflow does natively.
            let page = addr & !(page_size() - 1);
            // SAFETY: a green thread overflowed its stack into this page (it lies in the
            // overflow window) and the process is ending; taking the page away only turns
            // the repeated fault into a SIGSEGV.
            let protected = unsafe {
                rustix::mm::mprotect(page as *mut _, 1, rustix::mm::MprotectFlags::empty())
            };
            if protected.is_ok() {
                return;
            }
        }
        if let Some(running) = running {
            let mut name = [0u8; 16];
            name[..8].copy_from_slice(&running.name[0].load(Relaxed).to_ne_bytes());
            name[8..].copy_from_slice(&running.name[1].load(Relaxed).to_ne_bytes());
            let line = overflow_line(
                &name,
                running.size.load(Relaxed),
                "it ran past the bottom of its stack",
            );
            write_stderr(line.bytes());
        }
    }
    let slot = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREVIOUS and SIGACTION were filled by `arm`; restoring the previous
    // action makes the re-executed faulting instruction reach the program's disposition.
    unsafe {
        let sigaction: SigactionFn = std::mem::transmute(SIGACTION.load(Relaxed));
        let previous = &(*PREVIOUS.0.get())[slot];
        sigaction(sig, previous, std::ptr::null_mut());
    }
}

/// The sigaltstack to use (the real libc one: the library's own is a hook).
type SigaltstackFn = unsafe fn(*const libc::stack_t, *mut libc::stack_t) -> libc::c_int;
static SIGALTSTACK: AtomicUsize = AtomicUsize::new(0);

/// The alternate stack the program had set when [`arm`] gave the OS thread greenify's
/// (sp, size; size 0: none), for the thread that made it to see as its own.
static PROGRAM_ALTSTACK: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static ARMED: AtomicBool = AtomicBool::new(false);

/// The sigaction and sigaltstack [`arm`] will use (the real ones: the library's own are
/// hooks).
pub fn set_sigaction(sigaction: SigactionFn, sigaltstack: SigaltstackFn) {
    SIGALTSTACK.store(sigaltstack as usize, Relaxed);
    SIGACTION.store(sigaction as usize, Relaxed);
}

/// Installs the fault handler on an alternate stack for the calling OS thread, once, when
/// the first green stack is mapped: until then no thread can overflow one of ours, and the
/// program's signal dispositions and alternate stack stay exactly its own. Does nothing
/// before [`set_sigaction`] (unit tests).
pub fn arm() {
    let sigaction = SIGACTION.load(Relaxed);
    if sigaction == 0 || ARMED.swap(true, Relaxed) {
        return;
    }
    // SAFETY: SIGACTION and SIGALTSTACK hold the functions set_sigaction stored.
    let (sigaction, sigaltstack) = unsafe {
        (
            std::mem::transmute::<usize, SigactionFn>(sigaction),
            std::mem::transmute::<usize, SigaltstackFn>(SIGALTSTACK.load(Relaxed)),
        )
    };
    let stack = leaked_alt_stack();
    // SAFETY: `stack` describes leaked memory that stays valid; the sigaction structs are
    // fully initialised; PREVIOUS is written before the handler is installed.
    unsafe {
        // From here on green threads have alternate stacks of their own (the sigaltstack
        // hook keeps them) and the OS thread has greenify's, which no thread can take away.
        let mut current: libc::stack_t = std::mem::zeroed();
        sigaltstack(std::ptr::null(), &mut current);
        if current.ss_flags & libc::SS_DISABLE == 0 {
            PROGRAM_ALTSTACK[0].store(current.ss_sp as usize, Relaxed);
            PROGRAM_ALTSTACK[1].store(current.ss_size, Relaxed);
        }
        sigaltstack(&stack, std::ptr::null_mut());
        for (i, &sig) in SIGNALS.iter().enumerate() {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            sigaction(sig, std::ptr::null(), &mut (*PREVIOUS.0.get())[i]);
            sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// An alternate signal stack for the fault handler, leaked on purpose: it must outlive
/// its OS thread's last fault.
fn leaked_alt_stack() -> libc::stack_t {
    let alt = vec![0u8; ALT_STACK_BYTES].leak();
    libc::stack_t {
        ss_sp: alt.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: ALT_STACK_BYTES,
    }
}

/// Gives the calling worker OS thread (one of greenify's own, never the program's) the
/// fault handler's alternate stack: an alternate stack is per OS thread, and without one
/// an overflow there would kill the process before the handler could name the thread.
/// Does nothing before [`set_sigaction`] (unit tests).
pub fn arm_worker() {
    if SIGACTION.load(Relaxed) == 0 {
        return;
    }
    // SAFETY: SIGALTSTACK holds the function set_sigaction stored (set with SIGACTION).
    let sigaltstack =
        unsafe { std::mem::transmute::<usize, SigaltstackFn>(SIGALTSTACK.load(Relaxed)) };
    let stack = leaked_alt_stack();
    // SAFETY: `stack` describes leaked memory that stays valid.
    unsafe { sigaltstack(&stack, std::ptr::null_mut()) };
}

/// Which OS thread runs a signal handler of greenify's that may switch its green thread
/// away (see [`altstack_follows`]), noted as the handler starts.
#[inline(always)]
pub fn handler_os_thread() -> usize {
    super::os_thread::sched_word()
}

/// Before a handler of greenify's returns through the kernel's signal frame `context`,
/// entered on the OS thread `entered` names ([`handler_os_thread`]): if its green thread
/// was switched away inside it and resumed on another OS thread, the frame's saved
/// alternate stack becomes this OS thread's. `sigreturn` gives the OS thread the alternate
/// stack its frame saved, here the first OS thread's, and two workers with one alternate
/// stack run their SA_ONSTACK handlers (glibc's SIGSETXID one, the fault handler) over
/// each other's frames: each returned into the other's context (a thread changing its
/// credentials beside threads preempted on one worker and resumed on the other hung or
/// crashed in 6 runs of 10). Async-signal-safe.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for the running handler.
pub unsafe fn altstack_follows(context: *mut libc::c_void, entered: usize) {
    if super::os_thread::sched_word() == entered || context.is_null() {
        return;
    }
    // SAFETY: zeroed is a valid stack_t; the kernel fills it.
    let mut here: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: reads the calling OS thread's alternate stack into `here`.
    let read = unsafe {
        super::raw::syscall(
            libc::SYS_sigaltstack,
            &[0, &mut here as *mut libc::stack_t as usize],
        )
    };
    if read != 0 {
        return;
    }
    // The handler is not on it (the flag only says where the call was made).
    here.ss_flags &= !libc::SS_ONSTACK;
    // SAFETY: the caller's: the frame this handler's sigreturn reads.
    unsafe { (*context.cast::<libc::ucontext_t>()).uc_stack = here };
}

/// Whether green threads have alternate stacks of their own yet (see [`arm`]); before,
/// the program's sigaltstack calls are the OS thread's, as natively.
pub fn armed() -> bool {
    ARMED.load(Relaxed)
}

/// The alternate stack the program had set before [`arm`] (sp, size), once: the thread
/// that set it takes it as its own.
pub fn take_program_altstack() -> Option<(usize, usize)> {
    let size = PROGRAM_ALTSTACK[1].swap(0, Relaxed);
    (size != 0).then(|| (PROGRAM_ALTSTACK[0].load(Relaxed), size))
}
