//! Unit tests of the synchronisation objects (green and OS-thread callers).

use super::*;
use crate::runtime::sched::{
    self, init_current_thread, join, spawn, Config, JoinWait, SpawnOptions, StackRequest,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

fn init() {
    init_current_thread(Config {
        guard_budget: 16,
        fd_floor: 200,
        tls: crate::config::Tls::Off,
        workers: crate::config::Workers {
            count: 1,
            explicit: true,
        },
        worker_started: || {},
    });
}

fn opts() -> SpawnOptions {
    SpawnOptions {
        stack: StackRequest::Size(64 << 10),
        detached: false,
        name: [0; 16],
        sigmask: None,
    }
}

fn me() -> Caller {
    let id = sched::current_id();
    Caller {
        green: true,
        owner: GREEN_OWNER_BASE | id as i32,
    }
}

fn boxed<T>() -> &'static T {
    // SAFETY: all-zero is the static initialiser of every object here.
    Box::leak(Box::new(unsafe { std::mem::zeroed::<T>() }))
}

fn nap(ms: u64) {
    sched::sleep_until(Instant::now() + Duration::from_millis(ms));
}

#[test]
fn a_mutex_held_across_a_park_excludes_others_in_fifo_order() {
    init();
    let m: &'static Mutex = boxed();
    let order = Rc::new(RefCell::new(Vec::new()));
    let inside = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..5)
        .map(|i| {
            let (order, inside) = (order.clone(), inside.clone());
            spawn(
                move || {
                    m.lock(me(), LockWait::Block).unwrap();
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1);
                    nap(2);
                    order.borrow_mut().push(i);
                    inside.set(inside.get() - 1);
                    m.unlock(me()).unwrap();
                    0
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for h in hs {
        join(h, JoinWait::Block).unwrap();
    }
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3, 4]);
    assert_eq!(m.destroy(), Ok(()));
}

#[test]
fn mutex_kinds_give_native_errors() {
    init();
    let m: &'static Mutex = boxed();
    m.init(MUTEX_ERRORCHECK);
    m.lock(me(), LockWait::Block).unwrap();
    assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EDEADLK));
    assert_eq!(m.lock(me(), LockWait::Try), Err(libc::EBUSY));
    assert_eq!(m.destroy(), Err(libc::EBUSY));
    let other = spawn(move || m.unlock(me()).unwrap_err() as usize, opts()).unwrap();
    assert_eq!(join(other, JoinWait::Block), Ok(libc::EPERM as usize));
    let timed = spawn(
        move || {
            let t0 = Instant::now();
            let r = m.lock(me(), LockWait::Until(t0 + Duration::from_millis(20)));
            assert!(t0.elapsed() >= Duration::from_millis(20));
            r.unwrap_err() as usize
        },
        opts(),
    )
    .unwrap();
    assert_eq!(join(timed, JoinWait::Block), Ok(libc::ETIMEDOUT as usize));
    m.unlock(me()).unwrap();
    assert_eq!(m.unlock(me()), Err(libc::EPERM));
    let r: &'static Mutex = boxed();
    r.init(MUTEX_RECURSIVE);
    for _ in 0..3 {
        r.lock(me(), LockWait::Block).unwrap();
    }
    assert_eq!(r.lock(me(), LockWait::Try), Ok(()));
    for _ in 0..4 {
        r.unlock(me()).unwrap();
    }
    assert_eq!(r.unlock(me()), Err(libc::EPERM));
    m.destroy().unwrap();
    assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EINVAL));
}

#[test]
fn robust_mutex_of_an_exited_owner() {
    init();
    let m: &'static Mutex = boxed();
    m.init(MUTEX_ROBUST);
    let dies = spawn(
        move || {
            m.lock(me(), LockWait::Block).unwrap();
            owner_exited(me().owner, true);
            0
        },
        opts(),
    )
    .unwrap();
    join(dies, JoinWait::Block).unwrap();
    assert_eq!(m.lock(me(), LockWait::Block), Err(libc::EOWNERDEAD));
    m.unlock(me()).unwrap();
    assert_eq!(m.lock(me(), LockWait::Block), Err(libc::ENOTRECOVERABLE));
    let fixed: &'static Mutex = boxed();
    fixed.init(MUTEX_ROBUST);
    fixed.lock(me(), LockWait::Block).unwrap();
    owner_exited(me().owner, true);
    assert_eq!(fixed.lock(me(), LockWait::Block), Err(libc::EOWNERDEAD));
    fixed.make_consistent().unwrap();
    fixed.unlock(me()).unwrap();
    assert_eq!(fixed.lock(me(), LockWait::Block), Ok(()));
}

#[test]
fn condvar_ping_pong_and_timeout() {
    init();
    let m: &'static Mutex = boxed();
    let c: &'static Cond = boxed();
    let turn: &'static AtomicU32 = boxed();
    let other = spawn(
        move || {
            for i in 0..100 {
                m.lock(me(), LockWait::Block).unwrap();
                while turn.load(Relaxed) != 1 {
                    c.wait(m, me(), None).unwrap();
                }
                turn.store(0, Relaxed);
                c.signal(me());
                m.unlock(me()).unwrap();
                let _ = i;
            }
            0
        },
        opts(),
    )
    .unwrap();
    for _ in 0..100 {
        m.lock(me(), LockWait::Block).unwrap();
        turn.store(1, Relaxed);
        c.signal(me());
        while turn.load(Relaxed) != 0 {
            c.wait(m, me(), None).unwrap();
        }
        m.unlock(me()).unwrap();
    }
    join(other, JoinWait::Block).unwrap();
    m.lock(me(), LockWait::Block).unwrap();
    let t0 = Instant::now();
    let r = c.wait(m, me(), Some(t0 + Duration::from_millis(15)));
    assert_eq!(r, Err(libc::ETIMEDOUT));
    assert!(t0.elapsed() >= Duration::from_millis(15));
    // The mutex is held again after a timeout.
    assert_eq!(m.unlock(me()), Ok(()));
}

#[test]
fn rwlock_shares_readers_and_excludes_writers() {
    init();
    let l: &'static RwLock = boxed();
    let readers_inside = Rc::new(Cell::new(0));
    let max_inside = Rc::new(Cell::new(0));
    let mut hs = vec![];
    for _ in 0..4 {
        let (inside, max) = (readers_inside.clone(), max_inside.clone());
        hs.push(
            spawn(
                move || {
                    l.read(me(), LockWait::Block).unwrap();
                    inside.set(inside.get() + 1);
                    max.set(max.get().max(inside.get()));
                    nap(5);
                    inside.set(inside.get() - 1);
                    l.unlock(me()).unwrap();
                    0
                },
                opts(),
            )
            .unwrap(),
        );
    }
    let inside = readers_inside.clone();
    hs.push(
        spawn(
            move || {
                l.write(me(), LockWait::Block).unwrap();
                assert_eq!(inside.get(), 0);
                assert_eq!(l.write(me(), LockWait::Block), Err(libc::EDEADLK));
                assert_eq!(l.read(me(), LockWait::Block), Err(libc::EDEADLK));
                l.unlock(me()).unwrap();
                0
            },
            opts(),
        )
        .unwrap(),
    );
    for h in hs {
        join(h, JoinWait::Block).unwrap();
    }
    assert!(max_inside.get() > 1);
    l.read(me(), LockWait::Block).unwrap();
    assert_eq!(l.write(me(), LockWait::Try), Err(libc::EBUSY));
    let t0 = Instant::now();
    assert_eq!(
        l.write(me(), LockWait::Until(t0 + Duration::from_millis(10))),
        Err(libc::ETIMEDOUT)
    );
    l.unlock(me()).unwrap();
    assert_eq!(l.unlock(me()), Err(libc::EPERM));
}

#[test]
fn semaphore_counts_times_out_and_overflows() {
    init();
    let s: &'static Semaphore = boxed();
    s.init(false, 2).unwrap();
    s.wait(me(), LockWait::Block).unwrap();
    s.wait(me(), LockWait::Try).unwrap();
    assert_eq!(s.wait(me(), LockWait::Try), Err(libc::EAGAIN));
    let t0 = Instant::now();
    assert_eq!(
        s.wait(me(), LockWait::Until(t0 + Duration::from_millis(10))),
        Err(libc::ETIMEDOUT)
    );
    let waiter = spawn(
        move || s.wait(me(), LockWait::Block).map_or(1, |_| 0),
        opts(),
    )
    .unwrap();
    sched::yield_now();
    s.post(me()).unwrap();
    assert_eq!(join(waiter, JoinWait::Block), Ok(0));
    assert_eq!(s.value(), 0);
    s.init(false, SEM_VALUE_MAX).unwrap();
    assert_eq!(s.post(me()), Err(libc::EOVERFLOW));
    assert_eq!(s.init(false, SEM_VALUE_MAX + 1), Err(libc::EINVAL));
}

#[test]
fn barrier_releases_each_round_with_one_serial_thread() {
    init();
    let b: &'static Barrier = boxed();
    b.init(4).unwrap();
    let serial = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let serial = serial.clone();
            spawn(
                move || {
                    for _ in 0..10 {
                        if b.wait(me()) {
                            serial.set(serial.get() + 1);
                        }
                    }
                    0
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for h in hs {
        join(h, JoinWait::Block).unwrap();
    }
    assert_eq!(serial.get(), 10);
    assert_eq!(Barrier::init(b, 0), Err(libc::EINVAL));
}

#[test]
fn once_runs_once_while_others_wait() {
    init();
    let control: &'static AtomicU32 = boxed();
    let runs = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..5)
        .map(|_| {
            let runs = runs.clone();
            spawn(
                move || {
                    once(control, me(), || {
                        nap(5);
                        runs.set(runs.get() + 1);
                    });
                    runs.get()
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for h in hs {
        assert_eq!(join(h, JoinWait::Block), Ok(1));
    }
}

#[test]
fn a_native_thread_wakes_a_green_sleeper_through_the_mailbox() {
    init();
    let s: &'static Semaphore = boxed();
    s.init(false, 0).unwrap();
    let poster = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let native = Caller {
            green: false,
            owner: 1,
        };
        s.post(native).unwrap();
    });
    let t0 = Instant::now();
    s.wait(me(), LockWait::Until(t0 + Duration::from_secs(10)))
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    poster.join().unwrap();
}
