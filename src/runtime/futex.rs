//! Park by address: a futex that parks green threads, and wakes them from anywhere.
//!
//! Every green synchronisation object (mutex, condvar, rwlock, semaphore, barrier, once)
//! is an atomic word plus this one primitive: `wait(word, expected, deadline)` sleeps
//! while the word still holds `expected`; `wake(word, n)` wakes up to n sleepers, oldest
//! first.
//!
//! Three kinds of sleepers may wait on one word:
//! * green threads of the scheduler: queued per address in the scheduler's [`Table`];
//! * other OS threads of this process (not green): the kernel's futex;
//! * other processes, for PTHREAD_PROCESS_SHARED objects: the kernel's shared futex. A
//!   green thread cannot sit in the kernel's queue without blocking its OS thread, so on
//!   a shared word it re-checks every [`SHARED_POLL`] instead.
//!
//! A waker on the scheduler's own thread wakes green sleepers directly. A waker anywhere
//! else (another OS thread, or a signal handler that interrupted greenify itself) cannot
//! touch a scheduler: it drops the address into each scheduler's lock-free mailbox, marks
//! it rung and pokes the eventfd its reactor watches, once the scheduler has made one
//! ([`post_remote`]); the scheduler, which looks at the mark before it sleeps, then wakes every
//! green sleeper of that address, who re-check their word (all wakeups may be spurious).
//! Global counters of sleepers of each kind let a waker skip what nobody needs.

use super::wait::WaitKey;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering::SeqCst,
};
use std::time::{Duration, Instant};

/// How often a green sleeper on a process-shared word looks again.
pub const SHARED_POLL: Duration = Duration::from_micros(500);

/// Green threads currently parked on some word.
static GREEN_SLEEPERS: AtomicUsize = AtomicUsize::new(0);
/// OS threads of this process currently in a futex wait of ours.
static NATIVE_SLEEPERS: AtomicUsize = AtomicUsize::new(0);

/// Stale (woken or timed out) entries tolerated per address before pruning.
const PRUNE_AT: usize = 64;

/// Hashes an address: a multiply spreads the aligned bits (SipHash would cost more than
/// the rest of a lock handover).
#[derive(Default, Clone, Copy)]
pub struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

type AddressMap<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddressHasher>>;

/// Empty queues kept for reuse (no allocation per wait) until the map has this many.
const KEEP_EMPTY_QUEUES: usize = 4096;

/// Drops the stale keys of a long queue (see [`PRUNE_AT`]).
#[cold]
#[inline(never)]
fn prune(queue: &mut VecDeque<WaitKey>, is_live: impl Fn(WaitKey) -> bool) {
    queue.retain(|k| is_live(*k));
}

/// The green sleepers of one scheduler, per address, oldest first.
#[derive(Default)]
pub struct Table {
    queues: AddressMap<VecDeque<WaitKey>>,
}

impl Table {
    /// Inlined into the park's section (out of line, a call and its saved registers cost
    /// a fifth of it); the rare pruning stays out of line.
    #[inline(always)]
    pub fn push(&mut self, addr: usize, key: WaitKey, is_live: impl Fn(WaitKey) -> bool) {
        let queue = self.queues.entry(addr).or_default();
        // At 64 entries, then each time the queue doubles: a queue of thousands of live
        // sleepers (a condition variable all threads wait on) is not scanned at every push.
        if queue.len() >= PRUNE_AT && queue.len().is_power_of_two() {
            prune(queue, is_live);
        }
        queue.push_back(key);
    }

    /// Pops sleepers of `addr`, oldest first, handing each to `wake`, which ends its
    /// wait if it is still on and says whether it did, until `n` of them did.
    pub fn pop(&mut self, addr: usize, n: usize, mut wake: impl FnMut(WaitKey) -> bool) -> usize {
        let Some(queue) = self.queues.get_mut(&addr) else {
            return 0;
        };
        let mut woken = 0;
        while woken < n {
            let Some(key) = queue.pop_front() else { break };
            if wake(key) {
                woken += 1;
            }
        }
        if queue.is_empty() && self.queues.len() > KEEP_EMPTY_QUEUES {
            self.queues.remove(&addr);
        }
        woken
    }

    /// Every sleeper and its address (for a thread dump; stale keys included).
    pub fn each_waiter(&self, mut each: impl FnMut(usize, WaitKey)) {
        for (&addr, queue) in &self.queues {
            queue.iter().for_each(|&key| each(addr, key));
        }
    }

    /// Every address with sleepers (after a mailbox overflow: wake them all).
    pub fn addresses(&self) -> Vec<usize> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(addr, _)| *addr)
            .collect()
    }
}

pub fn green_sleeper_added() {
    GREEN_SLEEPERS.fetch_add(1, SeqCst);
}

pub fn green_sleeper_gone() {
    GREEN_SLEEPERS.fetch_sub(1, SeqCst);
}

// ---- the mailboxes for wakes from outside a scheduler's thread ----

const MAILBOX_SLOTS: usize = 64;
/// At most this many schedulers (OS threads running green threads) can be woken remotely.
const MAX_SCHEDULERS: usize = 64;

/// One scheduler's mailbox: addresses posted from outside, and the eventfd to ring.
pub struct Mailbox {
    slots: [AtomicUsize; MAILBOX_SLOTS],
    /// The mailbox was full: every green sleeper must look again.
    overflow: AtomicBool,
    /// Something was posted (or a signal came) since the scheduler last took the mailbox.
    rung: AtomicBool,
    /// The eventfd that wakes the scheduler from its sleep; -1 until it first sleeps.
    doorbell: AtomicI32,
}

static MAILBOXES: [AtomicPtr<Mailbox>; MAX_SCHEDULERS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_SCHEDULERS];

/// A new scheduler's mailbox, with no doorbell yet ([`Mailbox::set_doorbell`]).
/// Lives for the rest of the process.
pub fn new_mailbox() -> &'static Mailbox {
    let mailbox: &'static Mailbox = Box::leak(Box::new(Mailbox {
        slots: [const { AtomicUsize::new(0) }; MAILBOX_SLOTS],
        overflow: AtomicBool::new(false),
        rung: AtomicBool::new(false),
        doorbell: AtomicI32::new(-1),
    }));
    let ptr = mailbox as *const Mailbox as *mut Mailbox;
    let registered = MAILBOXES.iter().any(|slot| {
        slot.compare_exchange(std::ptr::null_mut(), ptr, SeqCst, SeqCst)
            .is_ok()
    });
    if !registered {
        ::log::warn!("more than {MAX_SCHEDULERS} schedulers: wakes from other threads may be late");
    }
    mailbox
}

/// In a forked child: the registered mailboxes are the parent's schedulers' (their
/// doorbells are shared eventfds); forget them.
pub fn forget_mailboxes() {
    for slot in &MAILBOXES {
        slot.store(std::ptr::null_mut(), SeqCst);
    }
}

/// Asks every scheduler to wake its green sleepers of `addr`. Lock-free and
/// async-signal-safe: usable from any thread and from signal handlers.
pub fn post_remote(addr: usize) {
    for slot in &MAILBOXES {
        let ptr = slot.load(SeqCst);
        if ptr.is_null() {
            break;
        }
        // SAFETY: registered mailboxes are leaked, so they live forever.
        let mailbox = unsafe { &*ptr };
        mailbox.post(addr);
    }
}

/// Rings every scheduler's doorbell (a signal arrived: see interrupt.rs).
/// Async-signal-safe.
pub fn ring_doorbells() {
    for slot in &MAILBOXES {
        let ptr = slot.load(SeqCst);
        if ptr.is_null() {
            break;
        }
        // SAFETY: registered mailboxes are leaked, so they live forever.
        unsafe { &*ptr }.ring();
    }
}

impl Mailbox {
    /// From now on, rings also write to `fd` (an eventfd the scheduler's reactor watches).
    /// The scheduler looks at [`Mailbox::rung`] after this and before it sleeps: a ring
    /// that did not see `fd` is seen there (both sides are SeqCst).
    pub fn set_doorbell(&self, fd: i32) {
        self.doorbell.store(fd, SeqCst);
    }

    /// Whether something was posted since the last [`Mailbox::take`].
    pub fn rung(&self) -> bool {
        self.rung.load(SeqCst)
    }

    /// Wakes the scheduler from its sleep in epoll (also from another OS thread or a
    /// signal handler).
    pub fn ring(&self) {
        self.rung.store(true, SeqCst);
        let fd = self.doorbell.load(SeqCst);
        if fd < 0 {
            return;
        }
        // SAFETY: the doorbell is the scheduler's eventfd, never closed; borrowed for one
        // 8-byte write (EAGAIN on a saturated counter is fine: it is already ringing).
        let doorbell = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        let _ = rustix::io::write(doorbell, &1u64.to_ne_bytes());
    }

    fn post(&self, addr: usize) {
        let posted = self.slots.iter().any(|slot| {
            slot.compare_exchange(0, addr, SeqCst, SeqCst).is_ok() || slot.load(SeqCst) == addr
        });
        if !posted {
            self.overflow.store(true, SeqCst);
        }
        self.ring();
    }

    /// Quiets the doorbell and empties the mailbox, handing each address posted to `each`;
    /// returns whether it overflowed (then every sleeper must look again).
    /// A post made after the mark is cleared marks it again, so none is missed.
    /// Allocates nothing: it runs inside scheduler sections, where the program's malloc
    /// may wait for a lock a switched-out green thread holds.
    pub fn take(&self, mut each: impl FnMut(usize)) -> bool {
        self.rung.store(false, SeqCst);
        let fd = self.doorbell.load(SeqCst);
        if fd >= 0 {
            let mut buf = [0u8; 8];
            // SAFETY: as in `ring`; a non-blocking read of the counter.
            let doorbell = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
            let _ = rustix::io::read(doorbell, &mut buf);
        }
        for slot in &self.slots {
            let addr = slot.swap(0, SeqCst);
            if addr != 0 {
                each(addr);
            }
        }
        self.overflow.swap(false, SeqCst)
    }
}

/// Whether a waker outside the scheduler's thread must post to the mailbox.
pub fn green_sleepers_exist() -> bool {
    GREEN_SLEEPERS.load(SeqCst) > 0
}

// ---- the kernel futex, for OS threads that are not green ----

fn futex_op(shared: bool, op: libc::c_int) -> libc::c_int {
    if shared {
        op
    } else {
        op | libc::FUTEX_PRIVATE_FLAG
    }
}

/// Blocks the calling OS thread while `*word == expected`, until woken or `deadline`.
/// Returns false on timeout. Leaves errno as it was.
pub fn native_wait(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    shared: bool,
) -> bool {
    NATIVE_SLEEPERS.fetch_add(1, SeqCst);
    let timeout = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let mut in_time = true;
    if timeout.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0) {
        in_time = false;
    } else {
        let ts = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT reads the word atomically and sleeps; `ts` outlives the call.
        let r = unsafe {
            super::raw::syscall(
                libc::SYS_futex,
                &[
                    word.as_ptr() as usize,
                    futex_op(shared, libc::FUTEX_WAIT) as usize,
                    expected as usize,
                    ts as usize,
                ],
            )
        };
        if r == -(libc::ETIMEDOUT as isize) {
            in_time = false;
        }
    }
    NATIVE_SLEEPERS.fetch_sub(1, SeqCst);
    in_time
}

/// Wakes up to `n` OS threads (or processes, for a shared word) sleeping on `word`, when
/// any may be there. Leaves errno as it was.
pub fn native_wake(word: &AtomicU32, n: u32, shared: bool) {
    if !shared && NATIVE_SLEEPERS.load(SeqCst) == 0 {
        return;
    }
    // SAFETY: FUTEX_WAKE only reads the address.
    unsafe {
        super::raw::syscall(
            libc::SYS_futex,
            &[
                word.as_ptr() as usize,
                futex_op(shared, libc::FUTEX_WAKE) as usize,
                n.min(i32::MAX as u32) as usize,
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_before_the_doorbell_exists_marks_the_mailbox() {
        let mailbox = new_mailbox();
        mailbox.post(0x1000);
        assert!(mailbox.rung());
        let mut addrs = vec![];
        mailbox.take(|addr| addrs.push(addr));
        // Other tests post to every mailbox too.
        assert!(addrs.contains(&0x1000));
    }

    fn key(tid: u32) -> WaitKey {
        WaitKey { tid, seq: 0 }
    }

    #[test]
    fn table_wakes_oldest_live_first() {
        let mut t = Table::default();
        for tid in 1..=4 {
            t.push(0x1000, key(tid), |_| true);
        }
        let mut woken = vec![];
        let n = t.pop(0x1000, 2, |k| {
            let live = k.tid != 1;
            if live {
                woken.push(k.tid);
            }
            live
        });
        assert_eq!((n, woken.clone()), (2, vec![2, 3]));
        assert_eq!(
            t.pop(0x1000, 10, |k| {
                woken.push(k.tid);
                true
            }),
            1
        );
        assert_eq!(t.pop(0x1000, 10, |_| true), 0);
        assert!(t.addresses().is_empty());
    }

    #[test]
    fn many_live_sleepers_on_one_word_are_not_rescanned_at_every_push() {
        let mut t = Table::default();
        let checks = std::cell::Cell::new(0usize);
        let n = 20_000;
        for tid in 0..n {
            t.push(0x1000, key(tid), |_| {
                checks.set(checks.get() + 1);
                true
            });
        }
        // Pruned at 64, 128, ... 16384 entries: under 2n checks, not n * n / 2.
        assert!(checks.get() < 2 * n as usize, "{} checks", checks.get());
        assert_eq!(t.pop(0x1000, usize::MAX, |_| true), n as usize);
    }

    #[test]
    fn native_wait_times_out_and_wakes() {
        let word = AtomicU32::new(7);
        let t0 = Instant::now();
        assert!(!native_wait(
            &word,
            7,
            Some(t0 + Duration::from_millis(20)),
            false
        ));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        // A changed value returns at once.
        assert!(native_wait(&word, 8, None, false));
        let word = std::sync::Arc::new(AtomicU32::new(0));
        let w = word.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.store(1, SeqCst);
            native_wake(&w, 1, false);
        });
        while word.load(SeqCst) == 0 {
            native_wait(
                &word,
                0,
                Some(Instant::now() + Duration::from_secs(5)),
                false,
            );
        }
        waker.join().unwrap();
    }
}
