//! `syscall()`: the numbers that wait or show a thread's identity take the hooks' paths.
//!
//! Programs and runtimes call some system calls through libc's `syscall()` instead of a
//! wrapper: Rust's std and C++20 `atomic::wait` wait with `SYS_futex`, CPython reads
//! `SYS_gettid`. On a green thread these go where the wrapper's hook would take them:
//! * `futex` WAIT/WAIT_BITSET park on the green futex and WAKE/WAKE_BITSET wake it (then
//!   the kernel's sleepers, other OS threads); any other futex operation is the kernel's,
//!   and the green sleepers of the addresses it names are woken to look again;
//! * `gettid`, `tgkill`, `tkill`, `rt_tgsigqueueinfo` (see identity.rs), `sched_yield`,
//!   `sigaltstack`, `pause`;
//! * the sleeps, the reads, writes, socket calls and waits: their hooks, whose -1/errno is
//!   already syscall()'s convention. `pread64`/`pwrite64` need no hook: they only work on
//!   seekable files, which never wait.
//!
//! Every other number, and every call that is not green (among them greenify's own, made
//! inside its hooks), is the real `syscall()`.

use super::blocking::{uninterrupted, Remaining};
use super::{enter, fail, identity, io, net, poll, process, signal, thread, time};
use crate::real;
use crate::runtime::futex as green_futex;
use crate::runtime::sched::{self, Interrupts};
use crate::runtime::sync::{self, Slept};
use libc::{c_int, c_long, timespec};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

/// syscall(2).
///
/// # Safety
/// glibc declares `long syscall(long number, ...)`. On x86_64 (and aarch64) Linux a
/// variadic callee finds its integer arguments exactly where a non-variadic one does: the
/// first six in registers, the seventh on the stack at the call. glibc's own syscall()
/// reads them so (its sixth system-call argument from the stack), so declaring the six
/// arguments reads what any caller passed; those it did not pass are garbage nobody uses,
/// as in glibc. Each number's arguments are then the program's, as the kernel takes them.
#[no_mangle]
pub unsafe extern "C" fn syscall(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    // SAFETY: forwarded unchanged.
    let pass = || unsafe { pass_through(nr, [a1, a2, a3, a4, a5, a6]) };
    if !DISPATCHED.contains(&nr) {
        // Made as it is (see `fdtable::set_private`).
        crate::runtime::fdtable::forget_private_before(nr);
        return pass();
    }
    let Some(green) = enter() else {
        // Another OS thread's wake (not greenify's own, made inside a hook) may be meant
        // for green sleepers too.
        if nr == libc::SYS_futex && super::mode() == super::NATIVE {
            // SAFETY: forwarded.
            return unsafe { futex_not_green(a1, a2 as c_int, a5, pass) };
        }
        return pass();
    };
    let (fd, int) = (a1 as c_int, |a: c_long| a as c_int);
    // SAFETY: in every arm, the program's arguments for this number, passed on unchanged
    // to the function the kernel's call corresponds to (or read as the kernel reads them).
    unsafe {
        match nr {
            libc::SYS_futex => futex(a1, int(a2), int(a3) as u32, a4, a5, int(a6) as u32, pass),
            libc::SYS_gettid => c_long::from(sched::current_tid()),
            libc::SYS_tgkill => c_long::from(identity_tgkill(int(a1), int(a2), int(a3), green)),
            libc::SYS_tkill => identity::tkill(int(a1), int(a2)),
            libc::SYS_rt_tgsigqueueinfo => {
                identity::rt_tgsigqueueinfo(int(a1), int(a2), int(a3), a4 as *mut _)
            }
            _ => {
                // The hooks below enter greenify themselves.
                drop(green);
                match nr {
                    libc::SYS_sched_yield => c_long::from(thread::sched_yield()),
                    libc::SYS_sigaltstack => c_long::from(signal::sigaltstack(ptr(a1), ptr(a2))),
                    libc::SYS_pause => c_long::from(signal::pause()),
                    // The fd table keeps the program's view of O_NONBLOCK.
                    libc::SYS_fcntl => c_long::from(io::fcntl(fd, int(a2), a3 as usize)),
                    libc::SYS_ioctl => {
                        c_long::from(io::ioctl(fd, a2 as libc::c_ulong, a3 as usize))
                    }
                    libc::SYS_nanosleep => c_long::from(time::nanosleep(ptr(a1), ptr(a2))),
                    libc::SYS_clock_nanosleep => {
                        match time::clock_nanosleep(int(a1), int(a2), ptr(a3), ptr(a4)) {
                            0 => 0,
                            e => fail(e),
                        }
                    }
                    libc::SYS_read => io::read(fd, ptr(a2), a3 as usize) as c_long,
                    libc::SYS_write => io::write(fd, ptr(a2), a3 as usize) as c_long,
                    libc::SYS_readv => io::readv(fd, ptr(a2), int(a3)) as c_long,
                    libc::SYS_writev => io::writev(fd, ptr(a2), int(a3)) as c_long,
                    libc::SYS_recvfrom => {
                        net::recvfrom(fd, ptr(a2), a3 as usize, int(a4), ptr(a5), ptr(a6)) as c_long
                    }
                    libc::SYS_sendto => {
                        net::sendto(fd, ptr(a2), a3 as usize, int(a4), ptr(a5), a6 as u32) as c_long
                    }
                    libc::SYS_recvmsg => net::recvmsg(fd, ptr(a2), int(a3)) as c_long,
                    libc::SYS_sendmsg => net::sendmsg(fd, ptr(a2), int(a3)) as c_long,
                    libc::SYS_accept => c_long::from(net::accept(fd, ptr(a2), ptr(a3))),
                    libc::SYS_accept4 => c_long::from(net::accept4(fd, ptr(a2), ptr(a3), int(a4))),
                    libc::SYS_connect => c_long::from(net::connect(fd, ptr(a2), a3 as u32)),
                    libc::SYS_poll => c_long::from(poll::poll(ptr(a1), a2 as _, int(a3))),
                    libc::SYS_select => {
                        c_long::from(poll::select(fd, ptr(a2), ptr(a3), ptr(a4), ptr(a5)))
                    }
                    libc::SYS_ppoll => masked(ptr(a3), ptr(a4), a5 as usize, |ts, mask| {
                        poll::ppoll(ptr(a1), a2 as _, ts, mask)
                    }),
                    libc::SYS_pselect6 => pselect6(fd, ptr(a2), ptr(a3), ptr(a4), ptr(a5), ptr(a6)),
                    libc::SYS_epoll_wait => {
                        c_long::from(poll::epoll_wait(fd, ptr(a2), int(a3), int(a4)))
                    }
                    libc::SYS_epoll_pwait => {
                        masked(std::ptr::null_mut(), ptr(a5), a6 as usize, |_, mask| {
                            poll::epoll_pwait(fd, ptr(a2), int(a3), int(a4), mask)
                        })
                    }
                    libc::SYS_wait4 => c_long::from(process::wait4(fd, ptr(a2), int(a3), ptr(a4))),
                    libc::SYS_waitid => waitid(int(a1), a2 as _, ptr(a3), int(a4), a5, pass),
                    _ => pass(),
                }
            }
        }
    }
}

/// Where a number the kernel does not restart after a handler whatever SA_RESTART says
/// (signal(7)) has its relative timeout, if it has one.
#[derive(Clone, Copy)]
enum Timeout {
    /// None, an absolute one, or one the kernel writes the time left into (select,
    /// pselect6 and ppoll do, where glibc's wrappers pass a copy).
    Kept,
    /// A timespec, at this argument.
    Timespec(usize),
    /// Milliseconds, at this argument.
    Millis(usize),
}

/// The numbers that wait in the kernel and end with EINTR after any handler (None: the
/// kernel restarts it, or it does not wait); those no hook takes are made as they are.
fn not_restarted(nr: c_long, args: &[c_long; 6]) -> Option<Timeout> {
    Some(match nr {
        libc::SYS_semop
        | libc::SYS_msgrcv
        | libc::SYS_msgsnd
        | libc::SYS_rt_sigsuspend
        | libc::SYS_pause
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_ppoll => Timeout::Kept,
        libc::SYS_clock_nanosleep if args[1] & c_long::from(libc::TIMER_ABSTIME) != 0 => {
            Timeout::Kept
        }
        libc::SYS_nanosleep => Timeout::Timespec(0),
        libc::SYS_clock_nanosleep | libc::SYS_rt_sigtimedwait => Timeout::Timespec(2),
        libc::SYS_semtimedop | libc::SYS_epoll_pwait2 => Timeout::Timespec(3),
        libc::SYS_io_getevents => Timeout::Timespec(4),
        libc::SYS_poll => Timeout::Millis(2),
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait => Timeout::Millis(3),
        _ => return None,
    })
}

/// The real `syscall()`. A number [`not_restarted`] lists is made again (with what is left
/// of a relative timeout) when only a SIGURG ended it (see blocking::uninterrupted).
///
/// # Safety
/// The program's call.
pub(super) unsafe fn pass_through(nr: c_long, mut args: [c_long; 6]) -> c_long {
    let call = |args: &[c_long; 6]| {
        // SAFETY: per the caller.
        unsafe { real::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) }
    };
    let Some(timeout) = not_restarted(nr, &args) else {
        return call(&args);
    };
    let mut remaining = match timeout {
        Timeout::Timespec(i) => Remaining::timespec(args[i] as *const timespec),
        Timeout::Millis(i) => Remaining::millis(args[i] as c_int),
        Timeout::Kept => Remaining::millis(-1),
    };
    uninterrupted(|| {
        match timeout {
            Timeout::Timespec(i) => args[i] = remaining.next_timespec() as c_long,
            Timeout::Millis(i) => args[i] = c_long::from(remaining.next_millis()),
            Timeout::Kept => {}
        }
        call(&args)
    })
}

/// The numbers that may take another path than the kernel's (see the module's comment).
const DISPATCHED: [c_long; 31] = [
    libc::SYS_futex,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_gettid,
    libc::SYS_tgkill,
    libc::SYS_tkill,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sched_yield,
    libc::SYS_sigaltstack,
    libc::SYS_pause,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_wait4,
    libc::SYS_waitid,
];

fn ptr<T>(a: c_long) -> *mut T {
    a as usize as *mut T
}

unsafe fn identity_tgkill(pid: c_int, tid: c_int, sig: c_int, green: super::Green) -> c_int {
    // tgkill enters greenify itself.
    drop(green);
    // SAFETY: plain numbers.
    unsafe { identity::tgkill(pid, tid, sig) }
}

/// The calls whose kernel form takes a signal mask with its size (ppoll, epoll_pwait), and
/// for ppoll a timeout the kernel writes the time left back into: EINVAL for a mask of
/// another size than the kernel's 8 bytes, as the kernel says.
unsafe fn masked(
    timeout: *mut timespec,
    mask: *const libc::sigset_t,
    mask_size: usize,
    call: impl FnOnce(*const timespec, *const libc::sigset_t) -> c_int,
) -> c_long {
    if !mask.is_null() && mask_size != 8 {
        return fail(libc::EINVAL);
    }
    let asked = super::memory::read(timeout);
    let start = Instant::now();
    let r = call(timeout, mask);
    if let Some(asked) = asked.filter(|_| r >= 0 || super::errno() == libc::EINTR) {
        write_time_left(timeout, &asked, start);
    }
    c_long::from(r)
}

/// pselect6: its sixth argument points to { const sigset_t *mask; size_t size; }.
unsafe fn pselect6(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut timespec,
    mask_arg: *const [usize; 2],
) -> c_long {
    let (mask, size) = if mask_arg.is_null() {
        (0, 8)
    } else {
        match super::memory::read(mask_arg) {
            Some([mask, size]) => (mask, size),
            None => return fail(libc::EFAULT),
        }
    };
    // SAFETY: the program's sets, timeout and mask, for pselect's hook.
    unsafe {
        masked(timeout, mask as *const libc::sigset_t, size, |ts, mask| {
            poll::pselect(n, r, w, e, ts, mask)
        })
    }
}

/// Writes the time left of a wait that took `asked` and began at `start` back into the
/// program's timespec, as the kernel's ppoll and pselect6 do (libc's wrappers hide it).
fn write_time_left(timeout: *mut timespec, asked: &timespec, start: Instant) {
    if asked.tv_sec < 0 || !(0..1_000_000_000).contains(&asked.tv_nsec) {
        return;
    }
    let asked = std::time::Duration::new(asked.tv_sec as u64, asked.tv_nsec as u32);
    let left = asked.saturating_sub(start.elapsed());
    let left = timespec {
        tv_sec: left.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
    };
    // SAFETY: a local timespec, seen as bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&left as *const timespec).cast::<u8>(),
            std::mem::size_of::<timespec>(),
        )
    };
    super::memory::write_bytes(timeout.cast(), bytes);
}

/// waitid's kernel form also fills a struct rusage: the hook waits (leaving the child
/// waitable), then the kernel's call reaps it and fills both.
unsafe fn waitid(
    idtype: c_int,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
    usage: c_long,
    pass: impl FnOnce() -> c_long,
) -> c_long {
    if usage == 0 || options & (libc::WNOHANG | libc::WNOWAIT) != 0 {
        // SAFETY: the program's arguments.
        return c_long::from(unsafe { process::waitid(idtype as _, id, info, options) });
    }
    // SAFETY: the program's arguments; WNOWAIT leaves the child as it is.
    let r = unsafe { process::waitid(idtype as _, id, info, options | libc::WNOWAIT) };
    if r != 0 {
        return c_long::from(r);
    }
    let r = pass();
    if r == 0 && !info.is_null() {
        // SAFETY: waitid succeeded, so it filled the program's siginfo.
        process::note_waited(unsafe { &*info }, options);
    }
    r
}

// ---- futex ----

const CMD_MASK: c_int = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);

/// The words other OS threads of this process wait on in the kernel through syscall()
/// (0: a free slot), and how many such waits found no free slot. A green waker that
/// changed its word first and finds it in neither needs no kernel wake (a wait that
/// registers later finds the word changed). Words of other processes' sleepers (a
/// process-shared futex) are never known: those are always woken in the kernel too.
static RAW_WAITS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
static RAW_WAITS_UNLISTED: AtomicUsize = AtomicUsize::new(0);

/// Runs `wait`, a kernel futex wait on `addr`, listed in [`RAW_WAITS`].
fn listed_raw_wait(addr: usize, wait: impl FnOnce() -> c_long) -> c_long {
    let slot = RAW_WAITS
        .iter()
        .position(|s| s.compare_exchange(0, addr, SeqCst, SeqCst).is_ok());
    if slot.is_none() {
        RAW_WAITS_UNLISTED.fetch_add(1, SeqCst);
    }
    let r = wait();
    match slot {
        Some(i) => RAW_WAITS[i].store(0, SeqCst),
        None => {
            RAW_WAITS_UNLISTED.fetch_sub(1, SeqCst);
        }
    }
    r
}

/// Whether an OS thread of this process may sleep in the kernel on `addr`.
fn raw_waiters_may_exist(addr: usize) -> bool {
    RAW_WAITS_UNLISTED.load(SeqCst) != 0 || RAW_WAITS.iter().any(|s| s.load(SeqCst) == addr)
}

/// A futex call from a thread that is not green: the kernel's, and a call that may wake
/// sleepers also wakes the green sleepers of the addresses it names (they look again).
unsafe fn futex_not_green(
    addr: c_long,
    op: c_int,
    addr2: c_long,
    pass: impl FnOnce() -> c_long,
) -> c_long {
    if is_wait(op) {
        return listed_raw_wait(addr as usize, pass);
    }
    let r = pass();
    if r >= 0 && green_futex::green_sleepers_exist() {
        green_futex::post_remote(addr as usize);
        if names_second_address(op) {
            green_futex::post_remote(addr2 as usize);
        }
    }
    r
}

fn is_wait(op: c_int) -> bool {
    matches!(op & CMD_MASK, libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET)
}

fn names_second_address(op: c_int) -> bool {
    matches!(
        op & CMD_MASK,
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP
    )
}

/// A green thread's futex call.
unsafe fn futex(
    addr: c_long,
    op: c_int,
    val: u32,
    timeout: c_long,
    addr2: c_long,
    bitset: u32,
    pass: impl FnOnce() -> c_long,
) -> c_long {
    let cmd = op & CMD_MASK;
    let aligned = addr % 4 == 0;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    let bitset_ok =
        !matches!(cmd, libc::FUTEX_WAIT_BITSET | libc::FUTEX_WAKE_BITSET) || bitset != 0;
    match cmd {
        // The kernel's errors (a misaligned word, an empty bitset) never block: its call
        // gives them.
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET if aligned && bitset_ok => {
            futex_wait(addr as usize, op, val, ptr(timeout), pass)
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET if aligned && bitset_ok && !realtime => {
            futex_wake(addr as usize, op, val as c_int, bitset)
        }
        _ => {
            // PI futexes and the requeue operations are the kernel's (a PI lock that must
            // wait blocks the OS thread); green sleepers of the words they wake look again.
            let r = pass();
            if r >= 0 && !is_wait(op) {
                sched::futex_wake(addr as usize, usize::MAX);
                if names_second_address(op) {
                    sched::futex_wake(addr2 as usize, usize::MAX);
                }
            }
            r
        }
    }
}

/// FUTEX_WAIT (a relative timeout) and FUTEX_WAIT_BITSET (an absolute one, on the
/// monotonic clock or with FUTEX_CLOCK_REALTIME the real-time one), as the kernel answers:
/// EAGAIN if the word does not hold `val`, ETIMEDOUT, EINTR after a handler (a wait
/// without a timeout restarts under SA_RESTART), 0 when woken. Every wake is by address:
/// a waiter's bitset is not compared (a spurious wakeup at worst). Not through
/// `blocking::wait_for`: a wake is the answer itself (0), not a sign to look again, as the
/// waker need not change the word.
fn futex_wait(
    addr: usize,
    op: c_int,
    val: u32,
    timeout: *const timespec,
    pass: impl FnOnce() -> c_long,
) -> c_long {
    let word = super::memory::read(addr as *const u32);
    let asked = if timeout.is_null() {
        Some(None)
    } else {
        super::memory::read(timeout).map(Some)
    };
    let (Some(_), Some(asked)) = (word, asked) else {
        // An unreadable word or timeout: the kernel's EFAULT.
        return pass();
    };
    let deadline = match asked {
        None => None,
        Some(ts) if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) => {
            return pass();
        }
        Some(ts) if op & CMD_MASK == libc::FUTEX_WAIT => {
            let wait = std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            Some(Instant::now().checked_add(wait).unwrap_or_else(far_future))
        }
        Some(ts) => {
            let clock = if op & libc::FUTEX_CLOCK_REALTIME != 0 {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_MONOTONIC
            };
            match super::clock::abs_deadline(clock, &ts) {
                Ok(d) => Some(d),
                Err(_) => return pass(),
            }
        }
    };
    // SAFETY: the word is readable (above), 4-aligned (checked by the caller), and the
    // program shares it with its other threads as an atomic, which is what a futex is.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let shared = op & libc::FUTEX_PRIVATE_FLAG == 0;
    // As the kernel compares: when the call starts, and when it restarts.
    let mut starting = true;
    loop {
        if word.load(SeqCst) != val {
            return if starting { fail(libc::EAGAIN) } else { 0 };
        }
        starting = false;
        match sync::green_sleep_on(word, val, deadline, shared, Interrupts::Signals) {
            Slept::TimedOut => return fail(libc::ETIMEDOUT),
            // A shared word's look: woken if it changed.
            Slept::Looked => {}
            Slept::Interrupted { restart } if restart && deadline.is_none() => starting = true,
            Slept::Interrupted { .. } => return fail(libc::EINTR),
            Slept::Woken => return 0,
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(100 * 365 * 86400)
}

/// FUTEX_WAKE and FUTEX_WAKE_BITSET: the green sleepers first (oldest first), then the
/// kernel's (other OS threads, or other processes for a shared word) for the rest. As in
/// the kernel, a count below 1 still wakes one.
fn futex_wake(addr: usize, op: c_int, n: c_int, bitset: u32) -> c_long {
    let n = n.max(1);
    let woken = sched::futex_wake(addr, n as usize) as c_int;
    let private = op & libc::FUTEX_PRIVATE_FLAG != 0;
    if woken == n || (private && !raw_waiters_may_exist(addr)) {
        return c_long::from(woken);
    }
    // SAFETY: a wake of the program's word with its own operation and bitset; the kernel
    // only looks the address up.
    let r = unsafe {
        real::syscall(
            libc::SYS_futex,
            addr as c_long,
            c_long::from(op),
            c_long::from(n - woken),
            0,
            0,
            c_long::from(bitset),
        )
    };
    match r {
        r if r >= 0 => c_long::from(woken) + r,
        _ if woken > 0 => c_long::from(woken),
        r => r,
    }
}
