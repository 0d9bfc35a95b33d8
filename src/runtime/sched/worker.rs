//! Workers: the OS threads that run green threads, and the lock they share the one
//! [`Scheduler`] under.
//!
//! What belongs to one OS thread rather than to the scheduler (the green thread it runs,
//! the signal mask it has, its slice and dispatch counts, its OS thread id, whether it is
//! inside a scheduler section) lives in its [`Worker`] record, reached through the TCB's
//! scheduler word (see os_thread.rs): every green TCB carries the record of the worker
//! that runs it. The record points at the scheduler.
//!
//! The scheduler itself is one object behind one lock ([`BigLock`]): every section
//! ([`super::with`]) is short and never blocks, so a plain word is enough (an
//! uncontended exchange, a short spin, then a futex wait; raw system calls only, so it
//! never meets the program's hooks or errno). While only the program's own OS thread
//! runs green threads (`GREENIFY_WORKERS=1`, or before the first thread is created),
//! sections skip the lock: its two atomic operations per section would cost about a
//! tenth of a green switch. A switch takes two sections: the one the thread leaves in
//! (run.rs, `switch_out`) and the run loop's, which dispatches the next thread and
//! leaves it a note of what it finds as it resumes ([`Resumed`]).
//!
//! Today one worker runs (the OS thread that made the scheduler) and sections never take
//! the lock, whatever is configured: the first spawn turns it on where it starts the other
//! workers ([`STARTS_WORKERS`]).

use super::Scheduler;
use crate::runtime::wait::{ThreadId, Wake, MAIN};
use crate::runtime::{monitor, raw};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// One OS thread running green threads.
pub(super) struct Worker {
    pub(super) sched: *mut Scheduler,
    /// The scheduler's lock (kept apart from it: a section's `&mut Scheduler` must not
    /// cover a word other OS threads touch meanwhile).
    pub(super) lock: &'static BigLock,
    /// The green thread it runs ([`MAIN`] while its run loop runs, on worker 0).
    pub(super) current: ThreadId,
    /// The signal mask its OS thread has now.
    pub(super) applied_mask: u64,
    /// Hooked calls that came back without waiting since the current thread was
    /// dispatched, and when its slice began (see `slice::completed_without_parking`).
    pub(super) unparked_calls: u32,
    pub(super) slice_start: Option<Instant>,
    /// Dispatches since its last look at epoll.
    pub(super) dispatches_since_poll: u32,
    /// What the thread it dispatched last finds as it resumes.
    pub(super) resumed: Resumed,
    /// Its OS thread.
    pub(super) os_tid: rustix::thread::Pid,
    /// What the preemption monitor watches of it: the run loop bumps its dispatch count
    /// and says when it waits idle (see monitor.rs).
    pub(super) watch: &'static monitor::Worker,
    /// A section of this OS thread is open or opening (re-entering one, from the section
    /// itself or a signal handler that interrupted it, is a bug: the lock is not
    /// recursive). Set before the lock is taken, so a handler never waits for its own
    /// thread's lock.
    pub(super) in_section: bool,
    /// Sections take the lock: another worker may exist. Only the thread that sets it
    /// ran sections before, and the other workers start after the section that set it
    /// closed (with it set).
    pub(super) shared: bool,
}

impl Worker {
    /// A record for the calling OS thread, whose mask is `os_mask`, leaked: workers live
    /// as long as the process.
    fn new(sched: *mut Scheduler, lock: &'static BigLock, os_mask: u64) -> Worker {
        Worker {
            sched,
            lock,
            current: MAIN,
            applied_mask: os_mask,
            unparked_calls: 0,
            slice_start: None,
            dispatches_since_poll: 0,
            resumed: Resumed {
                wake: Wake::Ready,
                handlers_due: false,
                due_restart: false,
            },
            os_tid: rustix::thread::gettid(),
            watch: &monitor::WORKER,
            in_section: false,
            shared: false,
        }
    }
}

/// The scheduler with the record of its first worker (the OS thread that made it), in
/// one allocation, leaked. While no other worker may exist, a section finds the
/// scheduler at a fixed offset from the record the TCB names instead of loading the
/// record's pointer: that one dependent load per section cost about a tenth of a green
/// switch.
#[repr(C)]
pub(super) struct Home {
    worker: Worker,
    sched: Scheduler,
}

impl Home {
    /// Makes the calling OS thread's, whose signal mask is `os_mask`, around `sched`;
    /// returns its worker record.
    pub(super) fn make(sched: Scheduler, lock: &'static BigLock, os_mask: u64) -> *mut Worker {
        let home = Box::into_raw(Box::new(Home {
            worker: Worker::new(std::ptr::null_mut(), lock, os_mask),
            sched,
        }));
        // SAFETY: just made, never freed.
        unsafe {
            (*home).worker.sched = std::ptr::addr_of_mut!((*home).sched);
            std::ptr::addr_of_mut!((*home).worker)
        }
    }

    /// The scheduler of `worker`, the first worker's record (any section while the
    /// record is not `shared`: no other worker exists, and a forked child's only one is
    /// the forking thread, the first worker today).
    #[inline(always)]
    pub(super) fn sched_of(worker: *mut Worker) -> *mut Scheduler {
        // SAFETY: `worker` is the first field of a leaked `Home` (repr(C)); only the
        // address is computed.
        unsafe { std::ptr::addr_of_mut!((*worker.cast::<Home>()).sched) }
    }
}

/// What a dispatched thread finds as it resumes, noted by the dispatch's section so that
/// the thread needs no section of its own to learn it (see `run::resumed`).
#[derive(Clone, Copy)]
pub(super) struct Resumed {
    /// How its park ended.
    pub(super) wake: Wake,
    /// Signal handlers are due in it.
    pub(super) handlers_due: bool,
    /// Every handler due was installed with SA_RESTART (what an interruptible wait they
    /// end returns).
    pub(super) due_restart: bool,
}

impl Worker {
    /// Takes the scheduler's lock for the section it opens.
    #[inline(never)]
    pub(super) fn take_lock(&self) {
        self.lock.lock();
    }

    /// Releases the lock at the end of its section.
    #[inline(never)]
    pub(super) fn release_lock(&self) {
        self.lock.unlock();
    }
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and some OS thread may sleep in a futex wait for it.
const CONTENDED: u32 = 2;

/// Exchanges tried before sleeping: a section lasts well under a microsecond.
const SPINS: u32 = 100;

/// The scheduler's lock (a futex word, as in Drepper's "Futexes Are Tricky", mutex 2).
pub(super) struct BigLock(AtomicU32);

impl BigLock {
    pub(super) const fn new() -> BigLock {
        BigLock(AtomicU32::new(UNLOCKED))
    }

    #[inline(always)]
    pub(super) fn lock(&self) {
        if self
            .0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.0.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .0
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        while self.0.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            // SAFETY: a private futex wait on a live word, no timeout; any answer (woken,
            // EAGAIN because the word changed, EINTR) just leads to another exchange.
            unsafe {
                raw::syscall(
                    libc::SYS_futex,
                    &[
                        self.0.as_ptr() as usize,
                        (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
                        CONTENDED as usize,
                    ],
                );
            }
        }
    }

    #[inline(always)]
    pub(super) fn unlock(&self) {
        if self.0.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        // SAFETY: a private futex wake of one sleeper on a live word.
        unsafe {
            raw::syscall(
                libc::SYS_futex,
                &[
                    self.0.as_ptr() as usize,
                    (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize,
                    1,
                ],
            );
        }
    }

    /// In a forked child only the forking OS thread exists: nobody holds the lock (a
    /// section of its own that the handler that forked interrupted releases it, or
    /// takes it, harmlessly).
    pub(super) fn after_fork(&self) {
        self.0.store(UNLOCKED, Ordering::Relaxed);
    }
}

/// Whether the first spawn starts the other workers configured. None starts yet, so
/// sections skip the lock; the unit tests take it as if one did, so that its path stays
/// tested.
pub(super) const STARTS_WORKERS: bool = cfg!(test);

impl Scheduler {
    /// At a spawn: from the first on, once other workers start, sections take the lock.
    /// The section that turns it on closes without it: no other worker runs before that.
    pub(super) fn share(&mut self) {
        if !STARTS_WORKERS
            || self.w().shared
            || *self.workers.get_or_insert_with(affinity_cpus) <= 1
        {
            return;
        }
        self.w().shared = true;
    }
}

/// The CPUs the process may run on (at least 1).
fn affinity_cpus() -> usize {
    let mut set = [0u64; 16];
    // SAFETY: sched_getaffinity of the calling thread into a 1024-CPU buffer of that size.
    let len = unsafe {
        raw::syscall(
            libc::SYS_sched_getaffinity,
            &[0, std::mem::size_of_val(&set), set.as_mut_ptr() as usize],
        )
    };
    if len <= 0 {
        return 1;
    }
    let words = (len as usize).div_ceil(8).min(set.len());
    (set[..words]
        .iter()
        .map(|w| w.count_ones() as usize)
        .sum::<usize>())
    .max(1)
}

#[cfg(test)]
mod tests {
    use super::{affinity_cpus, BigLock};
    use std::cell::UnsafeCell;

    #[test]
    fn affinity_cpus_counts_the_mask() {
        // SAFETY: a zeroed cpu_set_t filled by glibc's sched_getaffinity.
        let expected = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set),
                0
            );
            libc::CPU_COUNT(&set) as usize
        };
        assert_eq!(affinity_cpus(), expected);
    }

    struct Counted {
        lock: BigLock,
        count: UnsafeCell<u64>,
    }
    // SAFETY: `count` is only touched under `lock`.
    unsafe impl Sync for Counted {}

    #[test]
    fn big_lock_excludes_under_contention() {
        let shared = Counted {
            lock: BigLock::new(),
            count: UnsafeCell::new(0),
        };
        let shared = &shared;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(move || {
                    for i in 0..100_000u64 {
                        shared.lock.lock();
                        // SAFETY: under the lock; a non-atomic read-modify-write that a
                        // second holder would make lose counts.
                        unsafe {
                            let v = std::ptr::read_volatile(shared.count.get());
                            if i % 1000 == 0 {
                                std::thread::yield_now();
                            }
                            std::ptr::write_volatile(shared.count.get(), v + 1);
                        }
                        shared.lock.unlock();
                    }
                });
            }
        });
        // SAFETY: every thread has ended.
        assert_eq!(unsafe { *shared.count.get() }, 400_000);
    }
}
