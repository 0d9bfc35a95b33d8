//! A dump's look at the threads that other workers run (see snapshot.rs).
//!
//! The answer is written in a section of the answering worker: every thread that is
//! switched out has its registers of its switch and a stack that does not move. A thread
//! that another worker runs meanwhile has neither: its registers of its last switch are
//! stale, and its stack changes as it is copied. So before the answer is written, the
//! answering worker makes each other worker that runs a green thread stand still, with
//! that thread's registers recorded, until the answer is written ([`Looks::release`]):
//!
//! - A worker whose thread is being preempted (`slice::preempt`, waiting for the
//!   scheduler's lock that the answer holds) published the registers it switches away
//!   with before its section ([`still`]), and withdraws them only in the section where it
//!   steps aside ([`moving`]): its stack above them does not move meanwhile. The answerer
//!   claims them, and the thread does not move until it is released.
//! - A worker that runs the program's code is sent greenify's SIGURG with [`LOOK_VALUE`]
//!   (as a nudge, see nudge.rs). Its handler runs on the thread's own stack, above the
//!   kernel's signal frame, as a preemption's does: it records its registers there and
//!   waits ([`stand_still`]), so the dump shows the thread's frames under
//!   `-- preempted here --`. The interrupted code may be the program's, libc's or the
//!   loader's: the answering worker needs no lock of theirs (it makes raw system calls
//!   and allocates from greenify's own allocator). Not greenify's own (a hook's edge, one
//!   of its handlers, its allocator): the handler refuses, and the answerer asks again.
//!   SIGURG is a standard signal: one sent while another is pending for the OS thread
//!   (the monitor's, whose retries come every millisecond at a thread in libc) is merged
//!   into it, so every one of greenify's SIGURG handlers answers a look that waits.
//! - A worker inside a call of greenify's (it will wait for the lock the answer holds, or
//!   waits in the kernel), in a system call (a signal could end it with EINTR, which the
//!   program would see) or stuck (handed off) is not asked: the dump shows its thread
//!   without frames and says why ([`Unseen`]).
//!
//! Both waits are bounded: the answerer waits [`ANSWER_WAIT`] at most for the handlers
//! and for a worker to leave greenify's own code, [`LOADED_WAIT`] for a worker that got no
//! CPU meanwhile (a loaded machine; one that still did not answer is shown without
//! frames), and
//! a handler stands still [`HOLD_MAX`] at most. Nothing here allocates on the handler's
//! side; only raw system calls.
//!
//! The states of a worker's `look` word:
//! ```text
//!   FREE --answerer--> ASKED --handler--> HELD (look_registers) | a refusal --answerer--> FREE
//!   FREE --preempt---> STILL (still_registers) --answerer--> HELD --answerer--> FREE
//!   ASKED or a refusal --preempt--> STILL          STILL --preempt, in its next section--> FREE
//! ```

use super::state::State;
use super::worker::{Worker, APPLICATION_MODE};
use super::{current_worker, running_worker, Scheduler};
use crate::runtime::wait::ThreadId;
use crate::runtime::{monitor, raw, watchdog};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// `si_value` of a look (the high bytes "grnlok").
const LOOK_VALUE: u64 = 0x6772_6e6c_6f6b_0001;

/// How long the answering worker waits at most for the workers it asked: a signalled
/// thread that waits for a CPU on a loaded machine (two busy loops on 2 cores) ran its
/// handler within a few milliseconds.
const ANSWER_WAIT: Duration = Duration::from_millis(20);
/// How long it waits at most for a worker that got no CPU since it was asked (its
/// handler runs as soon as it does): with three busy loops and other work on 2 cores
/// (load 9), 1 dump in 8 showed a spinner without frames after [`ANSWER_WAIT`].
const LOADED_WAIT: Duration = Duration::from_millis(250);
/// CPU time an asked worker may use without answering and still be taken as waiting for
/// a CPU (its handler answers within microseconds of running).
const RAN: Duration = Duration::from_millis(1);
/// How many looks that find a worker waiting in the kernel tell that it does.
const IN_KERNEL_LOOKS: u32 = 3;
/// How long a thread stands still at most for one answer (the answerer releases it as
/// soon as its stack is copied).
const HOLD_MAX: Duration = Duration::from_secs(1);

/// The `look` word's states (see the module doc); the refusals are [`Unseen`] values.
const FREE: u32 = 0;
const ASKED: u32 = 1;
const STILL: u32 = 2;
const HELD: u32 = 3;

/// Why a running thread is shown without frames.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub(super) enum Unseen {
    /// Its worker runs greenify's code (a hooked call, its handlers).
    Greenify = 16,
    /// Its worker waits in a system call (or is stuck in one, handed off).
    Syscall = 17,
    /// It runs a signal handler on its alternate stack.
    SignalStack = 18,
    /// Its worker did not answer within [`ANSWER_WAIT`].
    Late = 19,
}

impl Unseen {
    /// The name the snapshot gives it (`unseen=`).
    pub(super) fn name(self) -> &'static str {
        match self {
            Unseen::Greenify => "greenify",
            Unseen::Syscall => "syscall",
            Unseen::SignalStack => "sigstack",
            Unseen::Late => "late",
        }
    }

    fn from_word(word: u32) -> Option<Unseen> {
        [
            Unseen::Greenify,
            Unseen::Syscall,
            Unseen::SignalStack,
            Unseen::Late,
        ]
        .into_iter()
        .find(|u| *u as u32 == word)
    }
}

/// What a look found of one running thread.
#[derive(Clone, Copy, Debug)]
pub(super) enum Look {
    /// Its registers (as `snapshot::registers_here`); it stands still until released.
    Seen([usize; 3]),
    Unseen(Unseen),
}

/// The running threads looked at, and the workers that stand still until [`Looks::release`].
#[derive(Default)]
pub(super) struct Looks {
    found: Vec<(ThreadId, Look)>,
    held: Vec<*mut Worker>,
}

impl Looks {
    /// What was found of running thread `tid` (registers if any worker gave them).
    pub(super) fn of(&self, tid: ThreadId) -> Option<Look> {
        let mut found = self
            .found
            .iter()
            .filter(|(t, _)| *t == tid)
            .map(|(_, l)| *l);
        let first = found.next()?;
        Some(found.find(|l| matches!(l, Look::Seen(_))).unwrap_or(first))
    }

    /// The answer is written: the workers held go on.
    pub(super) fn release(self) {
        for worker in self.held {
            // SAFETY: worker records are never freed; the word is atomic.
            let look = unsafe { &(*worker).look };
            look.store(FREE, SeqCst);
            raw::futex_wake_all(look);
        }
    }
}

/// The words of a worker's record that a look uses.
fn words(worker: *mut Worker) -> (&'static AtomicU32, &'static [AtomicUsize; 3]) {
    // SAFETY: worker records are never freed; the words are atomic.
    unsafe { (&(*worker).look, &(*worker).look_registers) }
}

fn read(registers: &[AtomicUsize; 3]) -> [usize; 3] {
    registers.each_ref().map(|r| r.load(SeqCst))
}

impl Scheduler {
    /// Makes every other worker that runs a green thread stand still with its registers
    /// recorded, or says why it does not (module doc). Inside the answer's section.
    pub(super) fn look_at_running(&mut self) -> Looks {
        let mut looks = Looks::default();
        if !monitor::started() {
            // greenify's SIGURG handler is not installed: nobody would answer.
            return looks;
        }
        let me = running_worker();
        // Each worker to look at, the thread it runs, how often it was seen in the kernel,
        // and its CPU time as the dump began.
        let mut pending: Vec<(*mut Worker, ThreadId, u32, u64)> = Vec::new();
        for &worker in &self.all_workers {
            // SAFETY: worker records are never freed; `current` is written in sections
            // only, which this one excludes.
            let tid = unsafe { std::ptr::addr_of!((*worker).current).read() };
            let running = self
                .threads
                .get(tid as usize)
                .is_some_and(|t| t.state() == State::Running);
            if worker != me && running {
                pending.push((worker, tid, 0, cpu_time_of(worker)));
            }
        }
        let start = Instant::now();
        while !pending.is_empty() {
            let mut asked: Vec<(*mut Worker, ThreadId, u64)> = Vec::new();
            pending.retain_mut(|(worker, tid, in_kernel, ran_before)| {
                let late = waited_enough(*worker, *ran_before, start);
                match looks.first_look(*worker, *tid, in_kernel, late) {
                    Next::Done => false,
                    Next::Asked => {
                        asked.push((*worker, *tid, *ran_before));
                        false
                    }
                    Next::Later => true,
                }
            });
            for &(worker, _, ran_before) in &asked {
                let (look, _) = words(worker);
                while look.load(SeqCst) == ASKED && !waited_enough(worker, ran_before, start) {
                    raw::futex_wait(look, ASKED, Some(ANSWER_WAIT / 4));
                }
            }
            for (worker, tid, ran_before) in asked {
                let late = waited_enough(worker, ran_before, start);
                if looks.take_answer(worker, tid, late) {
                    pending.push((worker, tid, 0, ran_before));
                }
            }
            if !pending.is_empty() {
                // SAFETY: sched_yield has no arguments (raw: it is greenify's own hook).
                unsafe { raw::syscall(libc::SYS_sched_yield, &[]) };
            }
        }
        looks
    }
}

/// The CPU time `worker`'s OS thread has used, in ns.
fn cpu_time_of(worker: *mut Worker) -> u64 {
    // SAFETY: worker records are never freed; `os_tid` is written before it runs.
    let tid = unsafe { (*worker).os_tid.as_raw_nonzero().get() };
    monitor::cpu_time(monitor::cpu_clock(tid))
}

/// Whether the answerer, which began at `start`, has waited long enough for `worker`
/// (whose CPU time was `ran_before` then) to answer or to leave greenify's own code:
/// [`ANSWER_WAIT`], or up to [`LOADED_WAIT`] while it got no CPU (a loaded machine; it
/// does either within microseconds of running). A spinner's worker met between the two
/// sections of a preemption on a loaded machine was shown without frames so.
fn waited_enough(worker: *mut Worker, ran_before: u64, start: Instant) -> bool {
    let waited = start.elapsed();
    waited >= LOADED_WAIT
        || (waited >= ANSWER_WAIT
            && cpu_time_of(worker).saturating_sub(ran_before) >= RAN.as_nanos() as u64)
}

/// What the answerer does next with a worker it looks at.
enum Next {
    /// Its thread was found, or why not.
    Done,
    /// It was sent the look: its handler answers.
    Asked,
    /// It runs greenify's code outside a section (a hook's edge, a handler's way back to
    /// the program, between a preemption's two sections): looked at again.
    Later,
}

impl Looks {
    /// The first look at `worker`, which runs thread `tid` (module doc); `in_kernel`: how
    /// often it was seen in the kernel before; `late`: the wait is over.
    fn first_look(
        &mut self,
        worker: *mut Worker,
        tid: ThreadId,
        in_kernel: &mut u32,
        late: bool,
    ) -> Next {
        let (look, _) = words(worker);
        // A preemption waiting for this section: it stands still already.
        if look.compare_exchange(STILL, HELD, SeqCst, SeqCst).is_ok() {
            self.claim_still(worker, tid);
            return Next::Done;
        }
        // SAFETY: worker records are never freed; the flags are atomic, `watch` is set
        // before the worker runs, and `in_section` is a bool its OS thread writes, read
        // volatile (as the monitor does).
        let (mode, stuck, watch, in_section) = unsafe {
            (
                (*worker).mode.load(SeqCst),
                (*worker).stuck.load(SeqCst),
                (*worker).watch,
                std::ptr::addr_of!((*worker).in_section).read_volatile(),
            )
        };
        let why = if in_section {
            // Waiting for this section's lock: a preemption publishes its registers first.
            if look.compare_exchange(STILL, HELD, SeqCst, SeqCst).is_ok() {
                self.claim_still(worker, tid);
                return Next::Done;
            }
            Unseen::Greenify
        } else if stuck {
            Unseen::Syscall
        } else if watchdog::in_system_call(watch) {
            // Seen waiting once, a worker was running the program's code the next moment
            // (1 dump in 100 of two spinners, one in libc, lost its frames so).
            *in_kernel += 1;
            if *in_kernel < IN_KERNEL_LOOKS && !late {
                return Next::Later;
            }
            Unseen::Syscall
        } else if mode == APPLICATION_MODE {
            return self.ask(worker, tid, late);
        } else if late {
            Unseen::Greenify
        } else {
            return Next::Later;
        };
        self.found.push((tid, Look::Unseen(why)));
        Next::Done
    }

    /// The answerer claimed `worker`'s published registers (state HELD now).
    fn claim_still(&mut self, worker: *mut Worker, tid: ThreadId) {
        // SAFETY: worker records are never freed; the words are atomic.
        let registers = read(unsafe { &(*worker).still_registers });
        self.found.push((tid, Look::Seen(registers)));
        self.held.push(worker);
    }

    /// Sends `worker` the look.
    fn ask(&mut self, worker: *mut Worker, tid: ThreadId, late: bool) -> Next {
        let (look, _) = words(worker);
        if look.compare_exchange(FREE, ASKED, SeqCst, SeqCst).is_err() {
            if late {
                self.found.push((tid, Look::Unseen(Unseen::Late)));
                return Next::Done;
            }
            // Its preemption published its registers since the first look.
            return Next::Later;
        }
        // SAFETY: worker records are never freed; `os_tid` is written before it runs.
        let os_tid = unsafe { (*worker).os_tid.as_raw_nonzero().get() };
        let info = raw::own_queued_info(monitor::SIGNAL as u32, LOOK_VALUE);
        if raw::queue_to_thread(os_tid, monitor::SIGNAL as u32, &info) != 0 {
            let _ = look.compare_exchange(ASKED, FREE, SeqCst, SeqCst);
            self.found.push((tid, Look::Unseen(Unseen::Late)));
            return Next::Done;
        }
        Next::Asked
    }

    /// Takes what `worker`'s handler answered; true if it is to be looked at again (its
    /// handler found greenify's own code running: a hook's edge or one of greenify's
    /// handlers, over in microseconds).
    fn take_answer(&mut self, worker: *mut Worker, tid: ThreadId, late: bool) -> bool {
        let (look, registers) = words(worker);
        let answer = match look.load(SeqCst) {
            ASKED => match look.compare_exchange(ASKED, FREE, SeqCst, SeqCst) {
                Ok(_) => Look::Unseen(Unseen::Late),
                // It answered as the wait ended.
                Err(_) => return self.take_answer(worker, tid, late),
            },
            // Its preemption published its registers instead.
            STILL => return true,
            HELD => {
                self.held.push(worker);
                Look::Seen(read(registers))
            }
            refused => {
                if look
                    .compare_exchange(refused, FREE, SeqCst, SeqCst)
                    .is_err()
                {
                    // Its preemption published its registers meanwhile.
                    return true;
                }
                let why = Unseen::from_word(refused).unwrap_or(Unseen::Late);
                if why == Unseen::Greenify && !late {
                    return true;
                }
                Look::Unseen(why)
            }
        };
        self.found.push((tid, answer));
        false
    }
}

/// Whether `info` is a look (see [`Scheduler::look_at_running`]).
///
/// # Safety
/// `info` is the kernel's siginfo for a handler, or null.
pub unsafe fn is_look(info: *const libc::siginfo_t) -> bool {
    // SAFETY: the caller's.
    unsafe { raw::own_queued_value(info) == Some(LOOK_VALUE) }
}

/// In greenify's SIGURG handler, on a worker asked for a look (by this signal or by one
/// it merged with): the thread it interrupted (at `pc`, in the program's code if
/// `in_program`) stands still with the handler's registers recorded until the answer is
/// written, or the handler says why not. Says whether it was asked (SIGURG is blocked
/// on this OS thread then, until the handler's sigreturn or an unblock).
#[inline(never)]
pub fn stand_still(in_program: bool, pc: usize) -> bool {
    let worker = current_worker();
    if worker.is_null() {
        return false;
    }
    let (look, registers) = words(worker);
    if look.load(SeqCst) != ASKED {
        // Not asked, an answer that gave up on it, or a preemption's registers published.
        return false;
    }
    // The next look lands in the context this handler returns to (its sigreturn opens
    // the signal again), not in this handler: asked again at once after a refusal, a
    // look taken here was refused again, nested, until the thread's stack overflowed.
    monitor::sigprocmask(libc::SIG_BLOCK, &(1 << (monitor::SIGNAL - 1)));
    let refusal = if !in_program || monitor::in_own_code(pc) {
        Some(Unseen::Greenify)
    } else if monitor::on_signal_stack() {
        Some(Unseen::SignalStack)
    } else {
        None
    };
    let answer = match refusal {
        Some(why) => why as u32,
        None => {
            let here = super::snapshot::registers_here();
            for (word, value) in registers.iter().zip(here) {
                word.store(value, SeqCst);
            }
            HELD
        }
    };
    if look.compare_exchange(ASKED, answer, SeqCst, SeqCst).is_ok() {
        raw::futex_wake_all(look);
        if answer == HELD {
            hold(look);
        }
    }
    true
}

/// Whether `worker` stands still for an answer (for the monitor: its wait is greenify's).
pub(super) fn held(worker: *mut Worker) -> bool {
    let (look, _) = words(worker);
    look.load(SeqCst) == HELD
}

/// Waits while the answerer holds this worker (bounded by [`HOLD_MAX`]).
fn hold(look: &AtomicU32) {
    let until = Instant::now() + HOLD_MAX;
    while look.load(SeqCst) == HELD {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        raw::futex_wait(look, HELD, Some(left));
    }
}

/// A preemption of the current thread is about to wait for the scheduler's lock with
/// `registers` (its switch's, see `slice::preempt`): an answer holding the lock may use
/// them, and the thread does not move until [`moving`]. Several workers only.
pub(super) fn still(registers: [usize; 3]) {
    let worker = current_worker();
    // SAFETY: worker records are never freed; the words are atomic.
    let (look, published) = unsafe { (&(*worker).look, &(*worker).still_registers) };
    for (word, value) in published.iter().zip(registers) {
        word.store(value, SeqCst);
    }
    // An answer that asked this worker (its handler may have refused already, from
    // greenify's code) takes these instead of the handler's.
    let mut state = look.load(SeqCst);
    while state != HELD && state != STILL {
        match look.compare_exchange(state, STILL, SeqCst, SeqCst) {
            Ok(_) if state == FREE => return,
            Ok(_) => return raw::futex_wake_all(look),
            Err(now) => state = now,
        }
    }
}

/// The preemption that published its registers ([`still`]) moves on: they are withdrawn,
/// once an answer that claimed them released them. Called in the section where the thread
/// steps aside (an answer releases before its own section ends, so none holds them
/// there), or after the preemption's section when it does not step aside.
pub(super) fn moving() {
    let worker = current_worker();
    // SAFETY: worker records are never freed; the word is atomic.
    let look = unsafe { &(*worker).look };
    if look.compare_exchange(STILL, FREE, SeqCst, SeqCst).is_err() {
        hold(look);
    }
}
