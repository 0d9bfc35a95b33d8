//! GREENIFY_STATS=1: one line of counters on stderr when the program exits.

use crate::runtime::{self, Reason};
use std::fmt::Write;

/// Where the stats line goes: a private copy of stderr taken when the library loads, so
/// that programs which close stderr at exit (coreutils' close_stdout) still get it.
static OUTPUT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(2);

/// Runs from `.init_array`: keeps a copy of stderr if stats are wanted.
extern "C" fn keep_stderr() {
    if !crate::hooks::config().stats {
        return;
    }
    // SAFETY: fd 2 is only borrowed for the dup.
    let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
    let floor = runtime::reactor::internal_fd_floor() as i32;
    if let Ok(copy) = rustix::io::fcntl_dupfd_cloexec(stderr, floor) {
        let fd = rustix::fd::IntoRawFd::into_raw_fd(copy);
        runtime::reactor::mark_internal(fd);
        OUTPUT.store(fd, std::sync::atomic::Ordering::Relaxed);
    }
}

#[used]
#[link_section = ".init_array"]
static KEEP_STDERR: extern "C" fn() = keep_stderr;

/// Runs from `.fini_array`, after the program's atexit handlers.
extern "C" fn print_at_exit() {
    let config = crate::hooks::config();
    if !config.stats {
        return;
    }
    // A scheduler exists only if a green call was ever made on this OS thread.
    let stats = if runtime::sched::is_active() {
        runtime::stats()
    } else {
        runtime::Stats::default()
    };
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        "greenify stats: threads_created={} peak_alive={} context_switches={} epoll_waits={}",
        stats.threads_created, stats.peak_alive, stats.context_switches, stats.epoll_waits
    );
    let preemption = runtime::monitor::stats();
    let _ = write!(
        line,
        " preempt_signals={} preemptions={} blocked_worker_sightings={}",
        preemption.signals, preemption.preemptions, preemption.blocked_sightings
    );
    for reason in Reason::ALL {
        let _ = write!(
            line,
            " parks_{}={}",
            reason.name(),
            stats.parks[reason as usize]
        );
    }
    line.push('\n');
    // SAFETY: our copy of stderr (or fd 2), borrowed for one write.
    let out = unsafe {
        rustix::fd::BorrowedFd::borrow_raw(OUTPUT.load(std::sync::atomic::Ordering::Relaxed))
    };
    let _ = rustix::io::write(out, line.as_bytes());
}

#[used]
#[link_section = ".fini_array"]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;
