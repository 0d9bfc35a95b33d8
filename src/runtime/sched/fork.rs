//! The scheduler in a forked child: only the forking green thread lives on; the parent's
//! other threads, waits, timers and reactor are dropped.

use super::identity::os_tid;
use super::state::State;
use super::tls::Tls;
use super::worker::Home;
use super::{current_worker, is_active, signals, with};
use crate::runtime::timer::Timers;
use crate::runtime::wait::{ThreadId, Wake, MAIN};
use crate::runtime::{futex, held, interrupt, tcb};
use std::sync::atomic::Ordering::SeqCst;

/// In the child of a fork, on the thread that forked: only this green thread exists.
/// The epoll instance and the doorbell are the parent's (shared across fork), so they
/// are closed, and the child makes its own when it first needs them (a child that only
/// execs never does); the other threads, their waits and timers are dropped (their
/// coroutines are forgotten, never resumed nor unwound).
pub fn after_fork_child() {
    futex::forget_mailboxes();
    crate::runtime::stack::after_fork_child();
    super::handoff::after_fork_child();
    if !is_active() {
        interrupt::take(|_| {});
        return;
    }
    let worker = current_worker();
    // A fork from a signal handler may have interrupted a scheduler section (the idle
    // epoll_wait): the child's handler returns into it, so it stays open afterwards.
    // SAFETY: worker records are never freed; only this thread exists in the child.
    let interrupted_section = unsafe { std::mem::replace(&mut (*worker).in_section, false) };
    // It is the only worker, the first (it idles with the threads' masks, see run.rs),
    // and starts the others at its next spawn as the parent's first did (`share`). The
    // program's first one skips the lock again until then; another keeps it (its record
    // is not next to the scheduler, see worker.rs' Home).
    // SAFETY: as above.
    unsafe {
        (*worker).lock.after_fork();
        (*worker).shared = !std::ptr::eq(Home::sched_of(worker), (*worker).sched);
        (*worker).index = 0;
        (*worker).runs_main = true;
        (*worker)
            .sleep
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
    with(|s| {
        // The parent's epoll instance and doorbell stay open, unused, holding their
        // numbers until the child makes its own (exec closes them).
        s.reactor.after_fork();
        s.stacks.forked();
        s.mailbox = futex::new_mailbox();
        for &other in &s.all_workers {
            super::worker::forget_os_thread(other);
        }
        s.all_workers.retain(|&w| w == worker);
        s.workers_started = false;
        // The parent's dispatch window and CPU clock are not the child's.
        s.gather = super::worker::Gather::new();
        // The child's stats line counts its own life (the forking thread alive).
        s.stats = super::Stats {
            peak_alive: 1,
            ..Default::default()
        };
        // Nothing is stuck in the child (see handoff.rs).
        // SAFETY: as above.
        unsafe { (*worker).stuck.store(false, SeqCst) };
        s.poller = std::ptr::null_mut();
        let me = s.current();
        s.w().os_tid = rustix::thread::gettid();
        // glibc's one descriptor in the child is the TCB that forked (setxid.rs).
        let os_pd = crate::runtime::os_thread::thread_pointer();
        // The run loop of a worker other than the program's first runs on its OS
        // thread's own descriptor and stack; unless that is the one that forked, glibc
        // freed them in the child.
        let own = s.w().own_tcb;
        if own == s.w().os_pd && own != os_pd {
            tcb::keep_from_reuse(own, s.w().os_tid.as_raw_nonzero().get());
        }
        s.w().os_pd = os_pd;
        crate::runtime::tcb::adopt_as_os_thread(os_pd);
        if let Tls::PerThread(pool) = &mut s.tls {
            pool.keep_as_os_thread(os_pd);
        }
        s.free_ids.clear();
        let alone = s.alone();
        for (tid, t) in s.threads.iter_mut().enumerate() {
            let tid = tid as ThreadId;
            if tid == me || tid == MAIN || t.state() == State::Free {
                continue;
            }
            std::mem::forget(t.co.take());
            t.word.released(alone, true);
            t.generation = t.generation.wrapping_add(1);
            t.joiner = None;
            t.detached = false;
            s.free_ids.push(tid);
        }
        if me != MAIN {
            s.main_exited = true;
            s.main_gone = true;
            s.threads[MAIN as usize].word.exited(alone);
            s.live = 1;
        } else {
            s.live = 0;
        }
        s.w().queue.clear();
        s.preempted.clear();
        s.w().next = None;
        s.w().watch.next_waits(false);
        s.timers = Timers::default();
        s.timed_waits = 0;
        s.futex = futex::Table::default();
        s.woken.clear();
        // A handler that forked interrupted this thread's wait: it gets its EINTR (or
        // restart) as natively, or else waits again, in the new reactor and timers.
        // Handlers that had not run yet are the parent's (pending signals are not
        // inherited).
        s.threads[me as usize].handlers_due = 0;
        // The forking thread is the child's first thread: its id is the OS thread's again.
        s.threads[me as usize].identity.tid = os_tid();
        interrupt::take(|i| {
            s.interrupt(interrupt::Interruption {
                deliver: false,
                ..i
            })
        });
        interrupt::set_deliveries_pending(false);
        crate::runtime::kept_pending::after_fork();
        if held::after_fork() {
            // The forked mask still blocks them.
            s.w().applied_mask = signals::UNKNOWN_MASK;
            let mask = s.threads[me as usize].sigmask;
            s.apply_mask(mask);
        }
        if s.threads[me as usize].state() == State::Parked {
            let key = s.key(me);
            s.ready(key, Wake::Ready);
        }
    });
    // SAFETY: as above.
    unsafe { (*worker).in_section = interrupted_section };
}
