//! GREENIFY_STATS=1: one line of counters on stderr when the program exits (normally or
//! through `_exit`), labelled with its pid and name.

use crate::runtime::{self, Reason};
use std::fmt::Write;

/// Where the stats line goes: a private copy of stderr taken when the library loads, so
/// that programs which close stderr at exit (coreutils' close_stdout) still get it.
static OUTPUT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(2);

/// Runs from `.init_array`: keeps a copy of stderr if stats or the escapes report are wanted.
extern "C" fn keep_stderr() {
    let config = crate::hooks::config();
    if !config.stats && config.escapes == crate::config::Escapes::Off {
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
    let stats = if runtime::sched::is_active() {
        runtime::stats()
    } else {
        runtime::Stats::default()
    };
    let mut line = Line::default();
    let _ = write!(line, "greenify stats: pid={pid} program=");
    line.program_name();
    let _ = write!(
        line,
        " threads_created={} peak_alive={} context_switches={} epoll_waits={}",
        stats.threads_created,
        // The main thread is alive even when no green call was made.
        stats.peak_alive.max(1),
        stats.context_switches,
        stats.epoll_waits
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
    let _ = line.write_str("\n");
    // SAFETY: our copy of stderr (or fd 2), borrowed for one write.
    let out = unsafe {
        rustix::fd::BorrowedFd::borrow_raw(OUTPUT.load(std::sync::atomic::Ordering::Relaxed))
    };
    let _ = rustix::io::write(out, line.bytes());
}

/// The stats line, built on the stack: `_exit` may be called where malloc is not safe
/// (a forked child, a signal handler).
struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; 1024],
            len: 0,
        }
    }
}

impl Line {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The program's short name (glibc's `program_invocation_short_name`), with blanks
    /// and `=` made `_` so the line stays `key=value` pairs.
    fn program_name(&mut self) {
        extern "C" {
            static program_invocation_short_name: *const libc::c_char;
        }
        // SAFETY: glibc sets it before any constructor runs, to a NUL-terminated string
        // that lives as long as the process (or NULL).
        let name = unsafe { program_invocation_short_name };
        if name.is_null() {
            return;
        }
        // SAFETY: as above.
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        for &b in name.to_bytes().iter().take(64) {
            let b = if b.is_ascii_whitespace() || b == b'=' {
                b'_'
            } else {
                b
            };
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[used]
#[link_section = ".fini_array"]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;
