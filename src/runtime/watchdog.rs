//! GREENIFY_WATCHDOG=MS: names what keeps a worker from switching for longer than MS.
//!
//! The monitor (monitor.rs) already sees a worker whose dispatch counter stood still and
//! tells a computing worker from one blocked in the kernel by its CPU clock. With the
//! watchdog on it also reports, once per site (the function of the interrupted
//! instruction), on the stats output:
//!
//! - a green thread that kept its worker longer than MS without a switch of its own (a
//!   preemption that resumed the same thread does not count): the monitor sends the
//!   preemption signal, and the handler stores the interrupted PC and stack pointer and
//!   the running thread's id and name here ([`sample`]: atomics, nothing allocated);
//! - a worker stuck longer than MS in a system call no hook saw: the kernel shows the
//!   call's number, arguments, stack pointer and PC in `/proc/self/task/TID/syscall`,
//!   read without a signal (which could end the call with EINTR).
//!
//! - a cycle of green threads each waiting for the next's mutex or exit (a deadlock):
//!   found by the wait that closes it (sched/deadlock.rs) and posted here ([`deadlock`]);
//!   the monitor, rung, writes it at once ([`write_deadlock`]).
//!
//! A site is reported once; the sites seen again in later stretches are counted, one line
//! each at exit. The monitor thread (not green) symbolises the PC and the return addresses
//! found above the stack pointer with `dladdr`, as the escapes report does.

use super::escapes::{self, Line, CALLERS};
use super::{monitor, raw};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Duration;

/// The handler's last sample: PC, stack pointer, green thread id and name (16 bytes).
static SAMPLES: AtomicU32 = AtomicU32::new(0);
static PC: AtomicUsize = AtomicUsize::new(0);
static SP: AtomicUsize = AtomicUsize::new(0);
static TID: AtomicI32 = AtomicI32::new(0);
static NAME: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// The sites reported so far (function addresses) and how often each was seen again.
const SITES: usize = 64;
static SITE_AT: [AtomicUsize; SITES] = [const { AtomicUsize::new(0) }; SITES];
static SITE_SEEN: [AtomicU64; SITES] = [const { AtomicU64::new(0) }; SITES];

/// For the preemption handler: the interrupted `pc` and `sp`, and the running green
/// thread (None: the handler interrupted the scheduler itself).
pub fn sample(pc: usize, sp: usize, thread: Option<(i32, [u8; 16])>) {
    let Some((tid, name)) = thread else { return };
    PC.store(pc, Relaxed);
    SP.store(sp, Relaxed);
    TID.store(tid, Relaxed);
    for (word, half) in NAME.iter().zip(name_words(&name)) {
        word.store(half, Relaxed);
    }
    SAMPLES.fetch_add(1, Release);
}

/// How many samples the handler took so far (the monitor waits for this to move).
pub fn samples() -> u32 {
    SAMPLES.load(Acquire)
}

/// Whether green threads note whom they wait for (the deadlock report): set once, as the
/// library reads GREENIFY_WATCHDOG at load.
static WATCHING_LOCKS: AtomicBool = AtomicBool::new(false);

/// Turns the deadlock report on (GREENIFY_WATCHDOG).
pub fn watch_locks() {
    WATCHING_LOCKS.store(true, Relaxed);
}

/// Whether endless waits note whom they wait for (one load on a lock wait's slow path).
#[inline]
pub fn watching_locks() -> bool {
    WATCHING_LOCKS.load(Relaxed)
}

/// One thread of a deadlock: who it is, what it waits for (a mutex's address; 0: the
/// next thread's exit) and its stack pointer in that wait.
#[derive(Clone, Copy, Default, Debug)]
pub struct Waiter {
    pub tid: i32,
    pub name: [u8; 16],
    pub mutex: usize,
    pub sp: usize,
}

/// The longest cycle the report holds (a longer one is not followed to its end).
pub const CYCLE: usize = 16;

/// The deadlock waiting for the monitor to report it: its state (FREE, BUSY being filled
/// or written, POSTED), then its threads as words: tid, name, mutex, stack pointer (a
/// scheduler section fills it, the monitor thread reads it; nothing is allocated).
static CYCLE_STATE: AtomicU32 = AtomicU32::new(FREE);
const FREE: u32 = 0;
const BUSY: u32 = 1;
const POSTED: u32 = 2;
static CYCLE_LEN: AtomicUsize = AtomicUsize::new(0);
static CYCLE_WORDS: [[AtomicU64; 5]; CYCLE] = [const { [const { AtomicU64::new(0) }; 5] }; CYCLE];
/// Deadlocks found while one was still waiting for its report (counted at exit).
static CYCLES_UNREPORTED: AtomicU64 = AtomicU64::new(0);

/// A green thread's wait closed `cycle` (each waits for the next's mutex or exit, the
/// last for the first's): posted for the monitor, which reports it, and woken.
pub fn deadlock(cycle: &[Waiter]) {
    if CYCLE_STATE
        .compare_exchange(FREE, BUSY, Acquire, Relaxed)
        .is_err()
    {
        CYCLES_UNREPORTED.fetch_add(1, Relaxed);
        return;
    }
    let cycle = &cycle[..cycle.len().min(CYCLE)];
    for (w, words) in cycle.iter().zip(&CYCLE_WORDS) {
        let [low, high] = name_words(&w.name);
        let fields = [w.tid as u64, low, high, w.mutex as u64, w.sp as u64];
        for (word, value) in words.iter().zip(fields) {
            word.store(value, Relaxed);
        }
    }
    CYCLE_LEN.store(cycle.len(), Relaxed);
    CYCLE_STATE.store(POSTED, Release);
    super::monitor::ring();
}

/// For the monitor: reports the deadlock posted, if any. A line names the cycle, then one
/// line per thread: what it waits for, who holds it, and where the thread waits.
pub fn write_deadlock() {
    // Claimed, so that the exit's look and the monitor's never both write it.
    if CYCLE_STATE
        .compare_exchange(POSTED, BUSY, Acquire, Relaxed)
        .is_err()
    {
        return;
    }
    let len = CYCLE_LEN.load(Relaxed);
    let at = |i: usize| {
        let [tid, low, high, mutex, sp] = CYCLE_WORDS[i % len].each_ref().map(|w| w.load(Relaxed));
        Waiter {
            tid: tid as i32,
            name: name_of([low, high]),
            mutex: mutex as usize,
            sp: sp as usize,
        }
    };
    let mut line = Line::default();
    line.push("greenify watchdog: deadlock: ");
    line.num(len, 10);
    line.push(" threads wait for each other for ever\n");
    write(&line);
    for i in 0..len {
        let (w, next) = (at(i), at(i + 1));
        let mut line = Line::default();
        line.push("greenify watchdog:   ");
        push_thread(&mut line, w.tid, &w.name);
        if w.mutex != 0 {
            line.push(" waits for mutex 0x");
            line.num(w.mutex, 16);
            line.push(" held by ");
        } else {
            line.push(" joins ");
        }
        push_thread(&mut line, next.tid, &next.name);
        line.push(", in ");
        callers(&mut line, w.sp, "");
        write(&line);
    }
    CYCLE_STATE.store(FREE, Release);
}

/// A thread name (16 bytes) as two words, for atomics that a signal handler or another
/// thread fills.
fn name_words(name: &[u8; 16]) -> [u64; 2] {
    let (low, high) = name.split_at(8);
    [low, high].map(|half| u64::from_ne_bytes(half.try_into().unwrap_or([0; 8])))
}

/// The name [`name_words`] split.
fn name_of(words: [u64; 2]) -> [u8; 16] {
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(&words[0].to_ne_bytes());
    name[8..].copy_from_slice(&words[1].to_ne_bytes());
    name
}

/// `thread TID (name)`, the name left out when empty.
fn push_thread(line: &mut Line, tid: i32, name: &[u8; 16]) {
    line.push("thread ");
    line.num(tid as usize, 10);
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    if len > 0 {
        line.push(" (");
        line.push_bytes(&name[..len]);
        line.push(")");
    }
}

/// The monitor saw worker `worker` run one green thread for `held` and signalled it; the
/// handler's sample is the one after `before`. Reports it unless its site was reported
/// already; false when there is no new sample (the monitor looks again later).
pub fn spinning(before: u32, held: Duration) -> bool {
    if samples() == before {
        return false;
    }
    let (pc, sp, tid) = (PC.load(Relaxed), SP.load(Relaxed), TID.load(Relaxed));
    let name = name_of(NAME.each_ref().map(|w| w.load(Relaxed)));
    if !first_at(site(pc)) {
        return true;
    }
    let mut line = Line::default();
    line.push("greenify watchdog: ");
    push_thread(&mut line, tid, &name);
    line.push(" kept its worker ");
    line.num(held.as_millis() as usize, 10);
    line.push(" ms without a switch, at ");
    place_with_callers(&mut line, pc, sp);
    write(&line);
    true
}

/// The monitor saw `worker` blocked for `held` in the program's code. Reports the system
/// call it is in unless its site was reported already; false when it is in none just
/// now, or in greenify's own wait (the monitor looks again later). `in_section` tells
/// whether the worker is inside a scheduler section, asked after the kernel showed it
/// waiting (as hand-off asks, see sched/handoff.rs): a wait there is for the scheduler's
/// lock, whose holder lost its CPU on a busy machine, not a call no hook saw.
pub fn stuck(worker: &monitor::Worker, held: Duration, in_section: impl Fn() -> bool) -> bool {
    let Some(call) = syscall_of(worker) else {
        return false;
    };
    if in_section() {
        return false;
    }
    if !first_at(site(call.pc)) {
        return true;
    }
    let mut line = Line::default();
    line.push("greenify watchdog: worker ");
    line.num(worker.os_tid() as usize, 10);
    line.push(" stuck ");
    line.num(held.as_millis() as usize, 10);
    line.push(" ms in ");
    line.push(escapes::name(call.nr));
    line.push("(");
    line.num(call.arg0, 10);
    line.push(", ...) that no hook saw, at ");
    place_with_callers(&mut line, call.pc, call.sp);
    write(&line);
    true
}

/// `function+0xoff (module)` of `pc`, then those of the return addresses above `sp`.
fn place_with_callers(line: &mut Line, pc: usize, sp: usize) {
    escapes::place(line, pc);
    callers(line, sp, " <- ");
}

/// `function+0xoff (module)` of each return address of the program above `sp`, the
/// innermost first, each after `lead` or " <- " ("?" if none is found), and the end of
/// the line.
fn callers(line: &mut Line, sp: usize, lead: &str) {
    let callers = [const { AtomicUsize::new(0) }; CALLERS];
    // Only the program's: the scan leaves greenify's own frames out.
    escapes::scan_callers(sp, &callers);
    let callers = callers.iter().map(|c| c.load(Relaxed));
    let mut found = false;
    for c in callers.filter(|&c| c != 0) {
        line.push(if found { " <- " } else { lead });
        escapes::place(line, c);
        found = true;
    }
    if !found && lead.is_empty() {
        line.push("?");
    }
    line.push("\n");
}

/// The function `pc` lies in (or `pc` itself, if no symbol covers it).
fn site(pc: usize) -> usize {
    match escapes::symbol(pc) {
        Some(info) if !info.dli_saddr.is_null() => info.dli_saddr as usize,
        _ => pc,
    }
}

/// Notes a sighting at `site`; true the first time (then it is reported).
fn first_at(site: usize) -> bool {
    for (at, seen) in SITE_AT.iter().zip(&SITE_SEEN) {
        match at.load(Relaxed) {
            0 => {
                at.store(site, Relaxed);
                return true;
            }
            s if s == site => {
                seen.fetch_add(1, Relaxed);
                return false;
            }
            _ => {}
        }
    }
    // A full table: quiet rather than a report per look.
    false
}

/// At exit: one line per reported site that was seen again in a later stretch, and the
/// deadlocks found while another waited for its report.
pub fn write_repeats() {
    write_deadlock();
    let unreported = CYCLES_UNREPORTED.load(Relaxed);
    if unreported > 0 {
        let mut line = Line::default();
        line.push("greenify watchdog: ");
        line.num(unreported as usize, 10);
        line.push(" more deadlock(s) found while one waited for its report\n");
        write(&line);
    }
    for (at, seen) in SITE_AT.iter().zip(&SITE_SEEN) {
        let (at, seen) = (at.load(Relaxed), seen.load(Relaxed));
        if at == 0 {
            break;
        }
        if seen == 0 {
            continue;
        }
        let mut line = Line::default();
        line.push("greenify watchdog: ");
        escapes::place(&mut line, at);
        line.push(" seen again ");
        line.num(seen as usize, 10);
        line.push(" time(s)\n");
        write(&line);
    }
}

/// Where the reports go: the stats output (a copy of stderr the program cannot close).
static OUTPUT: AtomicI32 = AtomicI32::new(2);

/// Sets the fd the reports go to (before the monitor starts).
pub fn set_output(fd: i32) {
    OUTPUT.store(fd, Relaxed);
}

fn write(line: &Line) {
    let out = OUTPUT.load(Relaxed);
    // SAFETY: write(2) of our own buffer to the stats fd.
    unsafe {
        raw::syscall(
            libc::SYS_write,
            &[
                out as usize,
                line.bytes().as_ptr() as usize,
                line.bytes().len(),
            ],
        );
    }
}

/// A system call a thread is blocked in, as `/proc/self/task/TID/syscall` shows it.
struct Call {
    nr: i64,
    arg0: usize,
    sp: usize,
    pc: usize,
}

/// The system call `worker` is in (None: it runs, or the file cannot be read). The file
/// holds `NR ARG1..ARG6 SP PC` (numbers in hex but NR).
fn syscall_of(worker: &monitor::Worker) -> Option<Call> {
    let mut buf = [0u8; 256];
    parse_syscall(worker.read_syscall_file(&mut buf)?)
}

/// Whether `worker` waits in a system call (not a fault, which a signal does not end).
pub fn in_system_call(worker: &monitor::Worker) -> bool {
    syscall_of(worker).is_some()
}

/// Whether `worker` waits in the kernel (in a system call or a fault):
/// `/proc/self/task/TID/syscall` says `running` for a thread on a CPU or waiting for one.
pub fn waiting_in_kernel(worker: &monitor::Worker) -> bool {
    let mut buf = [0u8; 256];
    worker
        .read_syscall_file(&mut buf)
        .is_some_and(|text| !text.starts_with(b"running"))
}

fn parse_syscall(text: &[u8]) -> Option<Call> {
    let text = std::str::from_utf8(text).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    let hex = |f: &str| usize::from_str_radix(f.trim_start_matches("0x"), 16).ok();
    let rest: Vec<usize> = fields.map(hex).collect::<Option<_>>()?;
    match rest[..] {
        [arg0, _, _, _, _, _, sp, pc] if nr >= 0 => Some(Call { nr, arg0, sp, pc }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_syscall_lines_parse() {
        let call = parse_syscall(b"0 0x3 0x7ffd10 0x1 0x0 0x0 0x0 0x7ffc00 0x55aa10\n").unwrap();
        assert_eq!(
            (call.nr, call.arg0, call.sp, call.pc),
            (0, 3, 0x7ffc00, 0x55aa10)
        );
        assert!(parse_syscall(b"running\n").is_none());
        assert!(parse_syscall(b"-1 0x7ffc00 0x55aa10\n").is_none());
    }

    #[test]
    fn a_site_is_reported_once() {
        assert!(first_at(0x1234));
        assert!(!first_at(0x1234));
        assert!(!first_at(0x1234));
        assert!(first_at(0x5678));
        let i = SITE_AT
            .iter()
            .position(|a| a.load(Relaxed) == 0x1234)
            .unwrap();
        assert_eq!(SITE_SEEN[i].load(Relaxed), 2);
    }
}
