//! Answers `greenify dump` and `greenify stats` (a request posted by [`request`]): the
//! scheduler writes its counters, the record of every green thread and a copy of the top
//! of each one's stack into a memfd in one section of its run loop, and hands the memfd
//! to the asking process over its abstract unix socket. Nothing is kept between requests
//! and nothing exists before the first one (no thread, no fd). Threads that other workers
//! run meanwhile stand still with their registers recorded while their stacks are copied
//! (look.rs).
//!
//! The answer is never written to a socket: a memfd is filled without waiting for the
//! reader, and the one `sendmsg` that passes it is a few bytes, so the section is bounded
//! by the copy (4 to 11 ms measured for 1,000 threads of an echo server under load, on a
//! busy 2-core machine) whatever the asking process does.
//!
//! Layout of the memfd: the stack copies one after the other, then the text header
//! (counters, one line per thread with its registers at its last switch and where its
//! copy is), then the header's offset as 8 little-endian bytes.

use super::deadlock::MUTEX_OWNER;
use super::look::{Look, Looks, Unseen};
use super::state::State;
use super::Scheduler;
use crate::runtime::reactor::{close_raw, internal_fd_floor, place_internal};
use crate::runtime::wait::{Reason, ThreadId, WaitKey, MAIN};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Instant;

/// What the asking process wants.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request {
    Stats = 1,
    Dump = 2,
}

/// The pending request: its kind in the high 32 bits, the asking pid in the low ones.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// At most this much of a stack is copied, from its saved stack pointer up.
const STACK_COPY: usize = 16 << 10;

/// Asks the scheduler for an answer to `pid` (async-signal-safe: one store and a ring of
/// the doorbells; a second request before the first is answered replaces it).
pub fn request(kind: Request, pid: i32) {
    PENDING.store(((kind as u64) << 32) | pid as u32 as u64, SeqCst);
    crate::runtime::futex::ring_doorbells();
}

/// Whether a request waits (one load per dispatch of the run loop).
#[inline(always)]
pub(super) fn pending() -> bool {
    PENDING.load(std::sync::atomic::Ordering::Relaxed) != 0
}

/// The registers an unwinder starts from: program counter, stack pointer and frame
/// pointer, all of the caller's frame (inlined there), which stays live while it waits.
#[inline(always)]
pub(super) fn registers_here() -> [usize; 3] {
    let (pc, sp, fp): (usize, usize, usize);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads three registers, touches no memory.
    unsafe {
        std::arch::asm!("lea {pc}, [rip]", "mov {sp}, rsp", "mov {fp}, rbp",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp,
            options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads three registers, touches no memory.
    unsafe {
        std::arch::asm!("adr {pc}, .", "mov {sp}, sp", "mov {fp}, x29",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp,
            options(nomem, nostack, preserves_flags));
    }
    [pc, sp, fp]
}

/// The scheduler's counters, if this OS thread has one: also from a signal handler that
/// interrupted one of its sections (an idle server waits in epoll inside one), where
/// [`super::stats`] would abort.
pub fn stats_now() -> Option<super::Stats> {
    let sched = super::current_sched();
    if sched.is_null() {
        return None;
    }
    // SAFETY: the scheduler is never freed and only this OS thread uses it; plain
    // counters copied through the raw pointer, no reference made while a section may
    // hold one (the interrupted section is not running meanwhile).
    Some(unsafe { std::ptr::addr_of!((*sched).stats).read_volatile() })
}

/// A coarse monotonic clock in nanoseconds (the vDSO's): when a park began.
pub(super) fn coarse_now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The `parked_since` of a thread that parked after the scheduler's last look at epoll.
const UNSTAMPED: u64 = 0;

impl Scheduler {
    /// The current thread `me` parks for `reason`. It is stamped with the time at the next
    /// look at epoll ([`Scheduler::stamp_parks`]), which comes at the latest after
    /// `POLL_EVERY` dispatches, before the worker waits idle, and at a preemption: a
    /// clock read at every park cost 5 to 10% of a condition-variable round trip.
    #[inline(always)]
    pub(super) fn note_park(&mut self, me: ThreadId, reason: Reason) {
        let t = &mut self.threads[me as usize];
        t.park_reason = reason;
        t.parked_since = UNSTAMPED;
        self.unstamped.push(me);
    }

    /// Stamps the threads parked since the last look with the time now (a thread woken
    /// meanwhile is left alone: its next park notes it again).
    pub(super) fn stamp_parks(&mut self) {
        if self.unstamped.is_empty() {
            return;
        }
        let now = coarse_now();
        for tid in self.unstamped.drain(..) {
            if let Some(t) = self.threads.get_mut(tid as usize) {
                // The stamp first: most entries are of threads woken (and parked and
                // stamped again) since, and it costs less to read than the state.
                if t.parked_since == UNSTAMPED && t.state() == State::Parked {
                    t.parked_since = now;
                }
            }
        }
    }

    /// Answers the pending request, if any: from the run loop, or from the preemption of
    /// `running_here` (its registers saved). Every other thread is switched out with its
    /// registers saved, or runs on another worker (see look.rs).
    pub(super) fn answer_request(&mut self, running_here: Option<ThreadId>) {
        let pending = PENDING.swap(0, SeqCst);
        let kind = match pending >> 32 {
            1 => Request::Stats,
            2 => Request::Dump,
            _ => return,
        };
        let pid = pending as u32 as i32;
        self.stamp_parks();
        // The answer is best effort: a requester gone meanwhile finds nothing.
        let _ = self.answer(kind, pid, running_here);
    }

    /// Its fds go into greenify's range at once, hidden from the program, and are closed
    /// with the raw call (libc's close is a hook): a socket or memfd is made at the
    /// lowest free number, where for a few microseconds a program open on another worker
    /// gets the next number up.
    fn answer(
        &mut self,
        kind: Request,
        pid: i32,
        running_here: Option<ThreadId>,
    ) -> Result<(), Errno> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        let socket = place_internal(
            rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::SEQPACKET,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
                None,
            )?,
            internal_fd_floor(),
        );
        let answered = self.answer_on(&socket, kind, pid, running_here);
        close_raw(socket);
        answered
    }

    fn answer_on(
        &mut self,
        socket: &OwnedFd,
        kind: Request,
        pid: i32,
        running_here: Option<ThreadId>,
    ) -> Result<(), Errno> {
        let address = rustix::net::SocketAddrUnix::new_abstract_name(socket_name(pid).bytes())?;
        rustix::net::connect(socket, &address)?;
        // Only to the process that asked: the name is anyone's to take.
        if rustix::net::sockopt::socket_peercred(socket)?
            .pid
            .as_raw_nonzero()
            .get()
            != pid
        {
            return Err(Errno::PERM);
        }
        let memfd = place_internal(
            rustix::fs::memfd_create("greenify-snapshot", rustix::fs::MemfdFlags::CLOEXEC)?,
            internal_fd_floor(),
        );
        let sent = self.send_snapshot(socket, &memfd, kind, running_here);
        close_raw(memfd);
        sent
    }

    /// Fills `memfd` with the answer to `kind` and sends it over `socket`.
    fn send_snapshot(
        &mut self,
        socket: &OwnedFd,
        memfd: &OwnedFd,
        kind: Request,
        running_here: Option<ThreadId>,
    ) -> Result<(), Errno> {
        let started = Instant::now();
        let mut header = String::with_capacity(256 + 160 * self.threads.len());
        self.write_counters(&mut header);
        if kind == Request::Dump {
            // The threads other workers run stand still while their stacks are copied.
            let looks = self.look_at_running();
            self.write_threads(&mut header, memfd, &looks, running_here);
            looks.release();
        }
        // How long the workers' threads waited for this answer, for the dump's reader.
        let _ = write!(
            header,
            "snapshot_us {}\nend\n",
            started.elapsed().as_micros()
        );
        let offset = rustix::fs::seek(memfd, rustix::fs::SeekFrom::End(0))?;
        write_all(memfd, header.as_bytes())?;
        write_all(memfd, &offset.to_le_bytes())?;
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        let fds = [rustix::fd::AsFd::as_fd(memfd)];
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            socket,
            &[std::io::IoSlice::new(b"greenify")],
            &mut control,
            rustix::net::SendFlags::empty(),
        )?;
        Ok(())
    }

    fn write_counters(&self, out: &mut String) {
        let _ = write!(
            out,
            "greenify-snapshot 1\nnow_ns {}\nalive {}\nready {}\n",
            coarse_now(),
            self.live + u64::from(!self.main_exited),
            self.queued() + self.preempted.len() + self.in_runnext(),
        );
        super::each_counter(&self.stats, |prefix, name, value| {
            let _ = writeln!(out, "{prefix}{name} {value}");
        });
    }

    /// One line per thread, and its stack copy appended to `memfd`: a thread running on
    /// another worker from the registers its look found (`looks`), or none, with why.
    fn write_threads(
        &self,
        out: &mut String,
        memfd: &OwnedFd,
        looks: &Looks,
        running_here: Option<ThreadId>,
    ) {
        // What each parked thread waits for, from the tables that will wake it.
        let mut fds: Vec<(WaitKey, i32, bool)> = Vec::new();
        self.reactor
            .each_waiter(|fd, key, write| fds.push((key, fd, write)));
        fds.sort_unstable();
        let mut addrs: Vec<(WaitKey, usize)> = Vec::new();
        self.futex.each_waiter(|addr, key| addrs.push((key, addr)));
        addrs.sort_unstable();
        let mut deadlines: Vec<(WaitKey, Instant)> = Vec::new();
        self.timers
            .each(|deadline, key| deadlines.push((key, deadline)));
        deadlines.sort_unstable();
        let now = Instant::now();
        let mut copied: u64 = 0;
        for (id, t) in self.threads.iter().enumerate() {
            let state = match t.state() {
                State::Free | State::Exited => continue,
                State::Ready => "ready",
                State::Running => "running",
                State::Parked => "parked",
            };
            let key = self.key(id as u32);
            let _ = write!(out, "thread tid={} state={state}", t.identity.tid);
            if t.state() == State::Parked {
                let _ = write!(
                    out,
                    " reason={} since_ns={}",
                    t.park_reason.name(),
                    t.parked_since
                );
                // All its fds in one field (a poll waits on several).
                for (i, (_, fd, write)) in matching(&fds, key, |e| e.0).enumerate() {
                    let interest = if *write { "write" } else { "read" };
                    let sep = if i == 0 { " fds=" } else { "," };
                    let _ = write!(out, "{sep}{fd}:{interest}");
                }
                for (_, addr) in matching(&addrs, key, |e| e.0) {
                    let _ = write!(out, " addr={addr:#x}");
                    // A mutex's owner is named only if it is a live thread (then the
                    // lock is a mutex).
                    let owner = read_i32(addr + MUTEX_OWNER).and_then(|o| self.owner_tid(o));
                    if let Some(owner) = owner {
                        let _ = write!(out, " owner={owner}");
                    }
                }
                if let Some((_, d)) = matching(&deadlines, key, |e| e.0).next() {
                    let ms = d.saturating_duration_since(now).as_millis();
                    let _ = write!(out, " deadline_in_ms={ms}");
                }
                if let Some(joined) = self.threads.iter().find(|o| o.joiner == Some(key)) {
                    let _ = write!(out, " joins={}", joined.identity.tid);
                }
            }
            // A thread that never ran has no frames yet.
            let started = id == MAIN as usize
                || t.state() == State::Running
                || t.co.as_ref().is_some_and(|c| c.started());
            let (bottom, size) = t.stack;
            let on_stack = |sp: usize| size == 0 || (bottom..bottom + size).contains(&sp);
            let registers = match looks.of(id as ThreadId) {
                _ if t.state() != State::Running || running_here == Some(id as ThreadId) => {
                    Ok(t.saved_registers)
                }
                Some(Look::Seen(r)) if on_stack(r[1]) => Ok(r),
                Some(Look::Seen(_)) => Err(Unseen::SignalStack),
                Some(Look::Unseen(why)) => Err(why),
                None => Err(Unseen::Greenify),
            };
            if let Err(why) = registers {
                let _ = write!(out, " unseen={}", why.name());
            }
            let [pc, sp, fp] = registers.unwrap_or_default();
            if started && sp != 0 {
                let top = if size != 0 {
                    (bottom + size).min(sp + STACK_COPY)
                } else {
                    sp + STACK_COPY
                };
                // Written straight from the stack (buffering the copies first, to write
                // them at once, was not faster: 16 MB copied twice at 1,000 threads).
                let len = copy_mapped(memfd, sp, top - sp);
                let _ = write!(
                    out,
                    " pc={pc:#x} sp={sp:#x} fp={fp:#x} copy_at={copied} copy_len={len}"
                );
                copied += len as u64;
            }
            let name_len = t.name.iter().position(|&b| b == 0).unwrap_or(t.name.len());
            out.push_str(" name=");
            for &b in &t.name[..name_len] {
                out.push(if b.is_ascii_graphic() { b as char } else { '_' });
            }
            out.push('\n');
        }
    }
}

/// The abstract socket name of asking process `pid`: `greenify-ctl-PID`.
fn socket_name(pid: i32) -> crate::log::Line<32> {
    let mut name = crate::log::Line::new();
    name.push("greenify-ctl-");
    name.num(pid.unsigned_abs() as usize, 10);
    name
}

/// The entries of `sorted` (sorted by key) whose key is `key`.
fn matching<T>(
    sorted: &[T],
    key: WaitKey,
    key_of: impl Fn(&T) -> WaitKey,
) -> impl Iterator<Item = &T> {
    let start = sorted.partition_point(|e| key_of(e) < key);
    sorted[start..].iter().take_while(move |e| key_of(e) == key)
}

impl Scheduler {
    /// The thread id of the live thread whose lock owner identity is `owner`: a green
    /// thread's (see deadlock.rs), or a kernel thread id that one of them carries.
    fn owner_tid(&self, owner: i32) -> Option<i32> {
        match self.green_owner(owner) {
            Some(id) => Some(self.threads[id as usize].identity.tid),
            None if owner != 0 => self
                .threads
                .iter()
                .find(|t| t.is_live() && t.identity.tid == owner)
                .map(|t| t.identity.tid),
            None => None,
        }
    }
}

/// Reads an i32 of this process's memory that may be unmapped (a fault is an error).
fn read_i32(addr: usize) -> Option<i32> {
    let mut value = 0i32;
    let local = [&mut value as *mut i32 as usize, 4];
    let remote = [addr, 4];
    let pid = rustix::process::getpid().as_raw_nonzero().get() as usize;
    // SAFETY: process_vm_readv writes 4 bytes into `value` and reads through the kernel,
    // which reports an unmapped address as an error.
    let n = unsafe {
        crate::runtime::raw::syscall(
            libc::SYS_process_vm_readv,
            &[
                pid,
                local.as_ptr() as usize,
                1,
                remote.as_ptr() as usize,
                1,
                0,
            ],
        )
    };
    (n == 4).then_some(value)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends the `len` bytes at `addr`, or as many of them as are mapped (a write from
/// memory that ends early stops short, without a fault); returns how many.
fn copy_mapped(fd: &OwnedFd, addr: usize, len: usize) -> usize {
    let fd = rustix::fd::AsRawFd::as_raw_fd(fd) as usize;
    let mut done = 0;
    while done < len {
        // SAFETY: write(2) only reads the range, and reports an unmapped part as a short
        // write or EFAULT.
        let n = unsafe {
            crate::runtime::raw::syscall(libc::SYS_write, &[fd, addr + done, len - done])
        };
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
    done
}
