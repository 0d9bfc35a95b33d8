//! The exported C ABI: a thin skin over the runtime, one file per family.
//!
//! Every hook starts with [`enter`]: it answers whether this call may go green and, if so,
//! marks the OS thread as "inside greenify" until the returned guard drops. A call that
//! may not go green (another OS thread, a call made from inside greenify, or before the
//! runtime could start) goes to the real libc function unchanged.
//!
//! The mode is one byte per OS thread. It stays consistent across green switches because
//! every switch happens inside a hook (mode `LIBRARY` on both sides); a new green thread
//! starts in `APPLICATION` mode, and goes back to `LIBRARY` when its start routine returns.
//! The OS threads that run green threads (the workers) keep their mode in their worker
//! record, which the scheduler word (`runtime::os_thread`) of every TCB they run on
//! names; every other OS thread is told apart by that word itself.

pub mod aliases;
pub mod blocking;
pub mod c11;
pub mod cancel;
pub mod children;
pub mod clock;
pub mod control;
pub mod escapes;
pub mod fortify;
pub mod identity;
pub mod io;
pub mod ipc;
pub mod keys;
pub mod memory;
pub mod net;
pub mod offloaded;
pub mod poll;
pub mod preempt;
pub mod process;
pub mod sem;
pub mod setxid;
pub mod signal;
pub mod signal_jump;
pub mod stand_in;
pub mod stdio;
pub mod sync;
pub mod syscall;
pub mod thread;
pub mod time;

use crate::config::Config;
use crate::runtime;
use runtime::os_thread::{self, NO_SCHEDULER};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

/// An OS thread that made no hooked call yet.
const UNDECIDED: u8 = 0;
/// Not a green OS thread: everything passes through.
const NATIVE: u8 = 1;
/// A green thread running the program's code.
const APPLICATION: u8 = runtime::sched::APPLICATION_MODE;
/// A green thread inside greenify (the mode a worker starts in).
const LIBRARY: u8 = runtime::sched::START_MODE;

/// The mode of the calling OS thread: a worker's is in its record (which the scheduler
/// word names), every other's is the word itself.
#[inline]
fn mode() -> u8 {
    match os_thread::sched_word() {
        os_thread::UNDECIDED => UNDECIDED,
        NO_SCHEDULER => NATIVE,
        worker => runtime::sched::hook_mode(worker).load(Relaxed),
    }
}

/// Sets the mode of the calling worker.
#[inline]
fn set_mode(mode: u8) {
    runtime::sched::hook_mode(os_thread::sched_word()).store(mode, Relaxed);
    // Escapes are calls the program makes past the hooks: trapped only in its own code.
    runtime::escapes::set_blocking(mode == APPLICATION);
}

/// Proof that the current call runs green; restores APPLICATION mode when dropped. It
/// may step aside as it does (a preemption came during the call, see preempt.rs), unless
/// the call took a lock ([`Green::keep_running`]).
#[must_use]
pub struct Green {
    may_step_aside: bool,
}

impl Green {
    /// The call takes a lock: it steps aside now, before it holds it, if it is to step
    /// aside at all, and not as it returns (a thread that left holding a lock would keep
    /// every thread that wants it waiting, and greenify's own allocations too, if the
    /// program's malloc takes that lock).
    pub fn keep_running(&mut self) {
        self.may_step_aside = false;
        preempt::step_aside_if_due();
    }
}

impl Drop for Green {
    #[inline]
    fn drop(&mut self) {
        // Handlers that waited for greenify's code to finish (see signal.rs).
        if runtime::interrupt::deliveries_pending() {
            signal::run_delivered();
        }
        if self.may_step_aside {
            preempt::step_aside_if_due();
        }
        set_mode(APPLICATION);
    }
}

/// Enters greenify for a hooked call, or says the call must pass through. Inlined into
/// every hook: the usual case (a green thread in the program's code, no fork yet) is a
/// few instructions; out of line with the rest, its saved registers alone cost 16
/// instructions a call.
#[inline(always)]
pub fn enter() -> Option<Green> {
    if mode() == APPLICATION && FORKS.load(Relaxed) == 0 {
        set_mode(LIBRARY);
        return Some(Green {
            may_step_aside: true,
        });
    }
    enter_otherwise()
}

/// [`enter`] in every other case: a forked child, an OS thread not decided yet, one that
/// runs no green thread, a call made from inside greenify.
#[cold]
#[inline(never)]
fn enter_otherwise() -> Option<Green> {
    match mode() {
        APPLICATION if FORKS.load(Relaxed) != 0 && in_fork_child() => None,
        APPLICATION => {
            set_mode(LIBRARY);
            Some(Green {
                may_step_aside: true,
            })
        }
        // The configuration is being read (it allocates, and the program's malloc may
        // lock): the thread stays undecided, the call passes through.
        UNDECIDED if CONFIGURING.load(Relaxed) => None,
        UNDECIDED => {
            // Calls made while deciding (there should be none) pass through.
            os_thread::set_sched_word(NO_SCHEDULER);
            if decide() {
                Some(Green {
                    may_step_aside: true,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A new green thread's start routine is about to run the program's code.
pub fn start_application() {
    set_mode(APPLICATION);
}

/// A green thread's start routine returned into greenify.
pub fn end_application() {
    set_mode(LIBRARY);
}

/// Runs the program's code (a once routine, a key destructor) from inside a hook.
pub fn run_application<R>(f: impl FnOnce() -> R) -> R {
    let previous = mode();
    if previous != LIBRARY && previous != APPLICATION {
        // An OS thread that runs no green thread has no mode to change (greenify's
        // helper, in an NSS module's pthread_once).
        return f();
    }
    set_mode(APPLICATION);
    let result = f();
    set_mode(previous);
    result
}

/// Forks under way in [`fork_as_application`], and the process that makes them (by pid:
/// another worker's OS thread may make hooked calls while one forks).
static FORKS: AtomicU32 = AtomicU32::new(0);
static FORKING_PID: AtomicI32 = AtomicI32::new(0);

/// Whether this is a fork's child before greenify reset its runtime (its atfork child
/// handlers run then).
#[cold]
fn in_fork_child() -> bool {
    rustix::process::getpid().as_raw_nonzero().get() != FORKING_PID.load(Relaxed)
}

/// Calls `fork` (the real one, which runs the atfork handlers) with the handlers running as
/// the program's code: a prepare or parent handler that waits for a lock held by a green
/// thread parks, as natively it waits for that thread. The child's handlers run before its
/// runtime is reset (which happens when `fork` returns): their calls pass through.
pub fn fork_as_application(fork: impl FnOnce() -> libc::pid_t) -> libc::pid_t {
    FORKING_PID.store(rustix::process::getpid().as_raw_nonzero().get(), Relaxed);
    FORKS.fetch_add(1, Relaxed);
    let pid = run_application(fork);
    if pid == 0 {
        FORKS.store(0, Relaxed);
    } else {
        FORKS.fetch_sub(1, Relaxed);
    }
    pid
}

/// Who is calling, for the synchronisation objects.
pub fn caller(green: &Option<Green>) -> runtime::sync::Caller {
    match green {
        Some(_) => runtime::sync::Caller {
            green: true,
            owner: runtime::sync::GREEN_OWNER_BASE | runtime::sched::current_id() as i32,
        },
        None => runtime::sync::Caller {
            green: false,
            owner: runtime::sync::os_tid(),
        },
    }
}

/// Set while [`config`] reads the settings.
static CONFIGURING: AtomicBool = AtomicBool::new(false);

/// Process-wide settings, read at the first hooked call.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        CONFIGURING.store(true, Relaxed);
        let config = Config::from_env();
        crate::log::init(config.log_level);
        crate::log::announce(&config);
        // What the runtime calls back into the hooks for (signal.rs), set once here,
        // before any handler of greenify's can run: signal paths only read them.
        runtime::sched::set_handler_action(signal::run_delivered);
        runtime::sched::set_keep_action(signal::keep_delivered);
        if config.watchdog.is_some() {
            // From the start: a new thread may wait for a lock at once (on another worker,
            // before its creator returns from pthread_create).
            runtime::watchdog::watch_locks();
        }
        if config.slice.is_some() || config.watchdog.is_some() {
            // Workers then open their /proc file as they start (see monitor.rs).
            runtime::monitor::will_start();
        }
        CONFIGURING.store(false, Relaxed);
        config
    })
}

/// Decides whether the calling OS thread becomes a green scheduler: only the process's
/// main thread does (this M:1 model); every other OS thread passes through.
/// Says whether the call that asked goes green (the scheduler's mode is then LIBRARY).
fn decide() -> bool {
    let config = config();
    if rustix::thread::gettid() != rustix::process::getpid() {
        ::log::debug!("an OS thread other than main makes calls: they pass through");
        return false;
    }
    if os_thread::thread_word() != 0 {
        // Its neighbour, now NO_SCHEDULER, was 0 too (UNDECIDED).
        ::log::warn!("this glibc uses the TCB words greenify keeps its state in; running natively");
        return false;
    }
    // Nothing of ours (fds, handlers, stacks) is made here, each on its first use, but the
    // fd table, whose memory the program might have taken by then (fdtable::init).
    runtime::fdtable::init();
    runtime::init_current_thread(runtime::sched::Config {
        guard_budget: config.guard_pages.unwrap_or(usize::MAX),
        fd_floor: runtime::reactor::internal_fd_floor(),
        tls: config.tls,
        workers: config.workers,
        worker_started: escapes::arm_this_thread,
    });
    runtime::overflow::set_sigaction(crate::real::sigaction, crate::real::sigaltstack);
    cancel::install();
    ::log::debug!(
        "green runtime started (stack size {} bytes)",
        config.stack_size
    );
    set_mode(LIBRARY);
    escapes::arm_this_thread();
    true
}

/// Sets errno (hooks set it last, after every other call).
pub fn set_errno(value: i32) {
    runtime::errno::set(value)
}

pub fn errno() -> i32 {
    runtime::errno::get()
}

/// A libc-style failure: errno = `e`, return -1.
pub fn fail<T: From<i8>>(e: i32) -> T {
    set_errno(e);
    T::from(-1)
}
