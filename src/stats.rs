//! GREENIFY_STATS=1: one line of counters on stderr when the program exits.

use crate::runtime::{self, Reason};
use std::fmt::Write;

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
    for reason in Reason::ALL {
        let _ = write!(
            line,
            " parks_{}={}",
            reason.name(),
            stats.parks[reason as usize]
        );
    }
    line.push('\n');
    // SAFETY: fd 2 borrowed for one write.
    let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
    let _ = rustix::io::write(stderr, line.as_bytes());
}

#[used]
#[link_section = ".fini_array"]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;
