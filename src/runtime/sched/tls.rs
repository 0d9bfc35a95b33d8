//! Whether green threads get TCBs of their own (decided at the first spawn), switching the
//! thread pointer at dispatch, and the TCB-side end of a thread.

use super::{current_worker, with, Scheduler};
use crate::runtime::wait::ThreadId;
use crate::runtime::{os_thread, tcb};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Some scheduler of the process gave green threads TCBs of their own (never unset): while
/// none has, the questions below need no section.
static TCBS_MADE: AtomicBool = AtomicBool::new(false);

/// Whether green threads have TCBs of their own.
pub(super) enum Tls {
    /// Decided at the first spawn (auto mode looks at the modules loaded by then).
    Undecided(crate::config::Tls),
    Shared,
    PerThread(tcb::Pool),
}

/// Whether green threads have had TCBs of their own (a scheduler gave one; never unset).
pub(super) fn tcbs_made() -> bool {
    TCBS_MADE.load(Relaxed)
}

/// The current green thread is about to end: with a TCB of its own, its C++ and Rust
/// thread_local destructors run now, in it (before its key destructors, as in glibc).
pub fn thread_exiting() {
    if !TCBS_MADE.load(Relaxed) {
        return;
    }
    let layout = with(|s| match &s.tls {
        Tls::PerThread(pool) if s.threads[s.current() as usize].tcb != 0 => Some(pool.layout()),
        _ => None,
    });
    if let Some(layout) = layout {
        tcb::thread_exiting(layout);
    }
}

/// The calling OS thread's own TCB (glibc's descriptor of it, see worker.rs `os_pd`),
/// when it runs a scheduler: the running green thread's TCB may be another (its own, or
/// MAIN's away from the first worker). No section: also from a signal handler.
pub fn os_thread_tcb() -> Option<u64> {
    let worker = current_worker();
    // SAFETY: worker records are never freed; `os_pd` is written before the record is
    // named (see worker.rs `worker_main`) and, in a forked child, by this OS thread.
    (!worker.is_null()).then(|| unsafe { (*worker).os_pd } as u64)
}

/// The main thread's TCB (its glibc descriptor, its handle), when green threads have TCBs
/// of their own; else the one TCB every thread shares is it.
pub fn main_tcb() -> Option<u64> {
    if !TCBS_MADE.load(Relaxed) || !super::is_active() {
        return None;
    }
    with(|s| match &s.tls {
        Tls::PerThread(pool) => Some(pool.main() as u64),
        _ => None,
    })
}

/// For glibc's setxid broadcast (runtime/setxid.rs): the calling OS thread's own TCB when
/// the one installed is another OS thread's descriptor, which glibc would take for the
/// caller's: MAIN's, while MAIN runs on a worker other than the first (or in a forked
/// child, the forking thread's away from the child's first OS thread).
pub fn os_thread_tcb_if_lent() -> Option<usize> {
    let own = os_thread_tcb()? as usize;
    let here = os_thread::thread_pointer();
    (here != own && tcb::signalled_by_setxid(here)).then_some(own)
}

impl Scheduler {
    /// Decides, at the first spawn, whether green threads get TCBs of their own.
    pub(super) fn decide_tls(&mut self) {
        use crate::config::Tls as Mode;
        let Tls::Undecided(mode) = self.tls else {
            return;
        };
        let layout = match (mode, tcb::Layout::get()) {
            (Mode::Off, _) => None,
            (Mode::On, Err(why)) => {
                ::log::warn!("GREENIFY_TLS=on, but green threads share one TCB: {why}");
                None
            }
            (Mode::Auto, Err(why)) => {
                ::log::debug!("green threads share one TCB: {why}");
                None
            }
            (Mode::On, Ok(layout)) => Some(layout),
            // A thread that moves between workers must keep its TLS where the code that
            // runs it has seen it (compilers keep `&errno` across calls).
            (Mode::Auto, Ok(layout)) => {
                (self.workers.count > 1 || tcb::foreign_tls_present(layout)).then_some(layout)
            }
        };
        ::log::debug!("a TCB per green thread: {}", layout.is_some());
        super::handoff::set_possible(layout.is_some());
        self.tls = match layout {
            Some(layout) => {
                TCBS_MADE.store(true, Relaxed);
                Tls::PerThread(tcb::Pool::new(layout))
            }
            None => Tls::Shared,
        };
    }

    /// Makes `tid`'s TCB the current one (or, sharing one, names it the running thread).
    #[inline]
    pub(super) fn switch_tcb(&mut self, tid: ThreadId) {
        match &mut self.tls {
            Tls::PerThread(pool) => {
                let tcb = match self.threads[tid as usize].tcb {
                    0 => pool.main(),
                    tcb => tcb,
                };
                // The TCB names the worker that runs it (a thread may move between them).
                pool.switch_to(tcb);
            }
            _ => os_thread::set_thread_word(tid as usize + 1),
        }
    }
}
