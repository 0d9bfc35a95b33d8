//! Unit tests of the scheduler (run as plain Rust, one scheduler per test thread).

use super::*;
use crate::runtime::errno;
use crate::runtime::reactor::Interest;
use rustix::io::Errno;
use state::State;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

fn init() {
    // Several workers: sections take the lock once a thread was spawned.
    init_with_workers(2);
}

fn init_with_workers(count: usize) {
    init_current_thread(Config {
        guard_budget: 64,
        fd_floor: 200,
        tls: crate::config::Tls::Off,
        workers: crate::config::Workers {
            count,
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

#[test]
fn spawn_join_returns_values_in_order() {
    init();
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let log = log.clone();
            spawn(
                move || {
                    log.borrow_mut().push(i);
                    yield_now();
                    log.borrow_mut().push(100 + i);
                    i * 2
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(join(h, JoinWait::Block), Ok(i * 2));
    }
    let log = log.borrow();
    assert_eq!(&log[..10], &(0..10).collect::<Vec<_>>()[..]);
    assert_eq!(log.len(), 20);
}

/// With one worker (with several, the first spawn opens it before the others start: see
/// `Scheduler::share`).
#[test]
fn the_reactor_is_opened_by_the_first_sleep_not_before() {
    init_with_workers(1);
    let h = spawn(
        || {
            yield_now();
            3
        },
        opts(),
    )
    .unwrap();
    assert_eq!(join(h, JoinWait::Block), Ok(3));
    assert!(with(|s| s.reactor.is_unopened() && s.doorbell < 0));
    // A wake posted from another thread before the doorbell exists marks the mailbox.
    std::thread::spawn(|| futex::post_remote(0x10))
        .join()
        .unwrap();
    assert!(with(|s| s.mailbox.rung()));
    let start = Instant::now();
    sleep_until(start + Duration::from_millis(2));
    assert!(start.elapsed() >= Duration::from_millis(2));
    assert!(with(|s| !s.reactor.is_unopened() && s.doorbell >= 0));
}

#[test]
fn with_several_workers_the_first_spawn_opens_the_reactor() {
    init();
    assert!(with(|s| s.reactor.is_unopened()));
    let h = spawn(|| 3, opts()).unwrap();
    assert!(with(|s| !s.reactor.is_unopened() && s.doorbell >= 0));
    assert_eq!(join(h, JoinWait::Block), Ok(3));
}

#[test]
fn join_errors_are_native() {
    init();
    let h = spawn(|| 7, opts()).unwrap();
    assert_eq!(join(h, JoinWait::Try), Err(Errno::BUSY));
    assert_eq!(
        join(
            h,
            JoinWait::Until(Instant::now() + Duration::from_millis(5))
        ),
        Ok(7)
    );
    assert_eq!(join(h, JoinWait::Block), Err(Errno::SRCH));
    let d = spawn(|| 0, opts()).unwrap();
    detach(d).unwrap();
    assert_eq!(detach(d), Err(Errno::INVAL));
    assert_eq!(join(d, JoinWait::Block), Err(Errno::INVAL));
    let slow = spawn(
        || {
            sleep_until(Instant::now() + Duration::from_millis(50));
            1
        },
        opts(),
    )
    .unwrap();
    let t0 = Instant::now();
    assert_eq!(
        join(slow, JoinWait::Until(t0 + Duration::from_millis(10))),
        Err(Errno::TIMEDOUT)
    );
    assert_eq!(join(slow, JoinWait::Block), Ok(1));
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

#[test]
fn sleepers_run_concurrently_and_wake_in_deadline_order() {
    init();
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..200u64)
        .map(|i| {
            let order = order.clone();
            let ms = 100 - (i % 10) * 10;
            spawn(
                move || {
                    sleep_until(t0 + Duration::from_millis(ms));
                    order.borrow_mut().push(ms);
                    0
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for h in handles {
        join(h, JoinWait::Block).unwrap();
    }
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(100));
    // Serialised sleeps would take 11 s; concurrency bound, not a speed target.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let order = order.borrow();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
}

#[test]
fn sleeps_are_finer_than_a_millisecond() {
    init();
    // With millisecond epoll timeouts every 100 us sleep would last >= 1 ms; the
    // median is immune to a noisy machine's occasional late wakeup.
    let mut took: Vec<Duration> = (0..101)
        .map(|_| {
            let t0 = Instant::now();
            sleep_until(t0 + Duration::from_micros(100));
            t0.elapsed()
        })
        .collect();
    took.sort();
    assert!(took[0] >= Duration::from_micros(100));
    assert!(
        took[50] < Duration::from_micros(900),
        "median {:?}",
        took[50]
    );
}

#[test]
fn errno_is_per_green_thread() {
    init();
    let h = spawn(
        || {
            errno::set(11);
            yield_now();
            errno::get() as usize
        },
        opts(),
    )
    .unwrap();
    errno::set(22);
    yield_now();
    assert_eq!(errno::get(), 22);
    assert_eq!(join(h, JoinWait::Block), Ok(11));
}

#[test]
fn wait_fd_parks_until_a_pipe_is_readable() {
    use rustix::fd::AsRawFd;
    init();
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let fd = rd.as_raw_fd();
    let reader = spawn(
        move || {
            let wake = wait_fd(fd, Interest::Read, Reason::Read, None);
            assert_eq!(wake, Wake::Ready);
            let mut b = [0u8; 1];
            rustix::io::read(&rd, &mut b).unwrap();
            b[0] as usize
        },
        opts(),
    )
    .unwrap();
    yield_now();
    sleep_until(Instant::now() + Duration::from_millis(20));
    assert!(is_alive(reader));
    rustix::io::write(&wr, b"\x2a").unwrap();
    assert_eq!(join(reader, JoinWait::Block), Ok(42));
}

#[test]
fn wait_fd_times_out_and_closing_wakes() {
    use rustix::fd::AsRawFd;
    init();
    let (rd, _wr) = rustix::pipe::pipe().unwrap();
    let fd = rd.as_raw_fd();
    let t0 = Instant::now();
    let wake = wait_fd(
        fd,
        Interest::Read,
        Reason::Read,
        Some(t0 + Duration::from_millis(30)),
    );
    assert_eq!(wake, Wake::TimedOut);
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let waiter = spawn(
        move || (wait_fd(fd, Interest::Read, Reason::Read, None) == Wake::Closed) as usize,
        opts(),
    )
    .unwrap();
    yield_now();
    fd_closed(fd);
    assert_eq!(join(waiter, JoinWait::Block), Ok(1));
}

#[test]
fn a_thread_whose_calls_never_wait_still_lets_the_others_run() {
    init();
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = done.clone();
    let spinner = spawn(
        move || {
            let t0 = Instant::now();
            // Natively the kernel would run the other thread meanwhile.
            while !flag.get() {
                completed_without_parking();
            }
            t0.elapsed().as_micros() as usize
        },
        opts(),
    )
    .unwrap();
    let setter = spawn(
        {
            let done = done.clone();
            move || {
                done.set(true);
                0
            }
        },
        opts(),
    )
    .unwrap();
    let spun = join(spinner, JoinWait::Block).unwrap();
    join(setter, JoinWait::Block).unwrap();
    // One slice, or a few on a busy machine; never the forever of a livelock.
    assert!(spun < 1_000_000, "spun {spun} us before the other ran");
}

#[test]
fn threads_that_wait_for_each_other_keep_going_beside_one_that_never_waits() {
    init();
    let stop = Rc::new(Cell::new(false));
    let progress = Rc::new(Cell::new(0usize));
    let hog = spawn(
        {
            let (stop, progress) = (stop.clone(), progress.clone());
            move || {
                let mut turns = 0;
                while !stop.get() {
                    let before = progress.get();
                    completed_without_parking();
                    // The pair ran meanwhile: the hog had stepped aside.
                    turns += usize::from(progress.get() != before);
                }
                turns
            }
        },
        opts(),
    )
    .unwrap();
    // A pair handing the turn back and forth: each hand-off goes through the
    // scheduler, as in a condvar or semaphore ping-pong.
    let rounds = 20_000;
    let pair: Vec<_> = (0..2)
        .map(|_| {
            let progress = progress.clone();
            spawn(
                move || {
                    for _ in 0..rounds {
                        progress.set(progress.get() + 1);
                        yield_now();
                    }
                    0
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    for h in pair {
        join(h, JoinWait::Block).unwrap();
    }
    stop.set(true);
    let turns = join(hog, JoinWait::Block).unwrap();
    // Stepping aside for one hand-off at a time would take 40,000 turns: the pair
    // runs a slice at a time beside the hog (a few dozen turns).
    assert!(turns < 2_000, "{turns} hog turns");
}

#[test]
fn many_threads_reuse_stacks() {
    init();
    for _ in 0..3 {
        let hs: Vec<_> = (0..2000)
            .map(|i| spawn(move || i, opts()).unwrap())
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(join(h, JoinWait::Block), Ok(i));
        }
    }
    let s = stats();
    assert_eq!(s.threads_created, 6000);
    assert_eq!(s.peak_alive, 2001);
}

#[test]
fn with_tcbs_thread_locals_and_errno_are_per_green_thread() {
    init_current_thread(Config {
        guard_budget: 64,
        fd_floor: 200,
        tls: crate::config::Tls::On,
        workers: crate::config::Workers {
            count: 1,
            explicit: true,
        },
        worker_started: || {},
    });
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(0) };
    }
    MINE.with(|m| m.set(1000));
    let main_tp = os_thread::thread_pointer();
    let handles: Vec<_> = (1..=3)
        .map(|i| {
            spawn(
                move || {
                    assert_eq!(MINE.with(Cell::get), 0, "a fresh TLS block");
                    MINE.with(|m| m.set(i));
                    errno::set(i as i32);
                    yield_now();
                    let tp = os_thread::thread_pointer();
                    assert_ne!(tp, main_tp);
                    // The handle is the TCB, as glibc's pthread_self reads it.
                    assert_eq!(current_handle().unwrap().0 as usize, tp);
                    assert_eq!(errno::get(), i as i32);
                    MINE.with(Cell::get)
                },
                opts(),
            )
            .unwrap()
        })
        .collect();
    yield_now();
    for (i, h) in handles.into_iter().enumerate() {
        assert!(is_green_handle(h.0));
        assert_eq!(join(h, JoinWait::Block), Ok(i + 1));
    }
    assert_eq!(MINE.with(Cell::get), 1000);
    assert_eq!(os_thread::thread_pointer(), main_tp);
    // Reused blocks start from the TLS image again.
    for _ in 0..3 {
        let h = spawn(|| MINE.with(Cell::get), opts()).unwrap();
        assert_eq!(join(h, JoinWait::Block), Ok(0));
    }
    assert!(!is_green_handle(main_tp as u64));
    assert_eq!(
        join(Handle(main_tp as u64 + 8), JoinWait::Try),
        Err(Errno::SRCH)
    );
}

#[test]
fn handles_are_tagged_and_checked() {
    init();
    let h = spawn(|| 0, opts()).unwrap();
    assert!(is_green_handle(h.0));
    assert!(!is_green_handle(0x7f00_0000_1000));
    assert_eq!(
        join(Handle(0x7f00_0000_1000), JoinWait::Try),
        Err(Errno::SRCH)
    );
    set_name(h, b"worker").unwrap();
    assert_eq!(&name(h).unwrap()[..7], b"worker\0");
    join(h, JoinWait::Block).unwrap();
}

/// Yields until `n` threads are parked.
fn until_parked(n: usize) {
    while with(|s| {
        s.threads
            .iter()
            .filter(|t| t.state() == State::Parked)
            .count()
    }) < n
    {
        yield_now();
    }
}

#[test]
fn a_wake_between_registering_and_parking_ends_the_park_at_once() {
    init();
    let word = 0u32;
    let addr = &word as *const u32 as usize;
    // A futex wait that is a cancellation point registers in one section and parks in
    // the next: another worker's wake may come in between.
    assert!(with(|s| s.futex_enqueue(addr, || true, true)));
    assert_eq!(futex_wake(addr, 1), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let wake = park::park_as(Reason::Sync, Some(deadline), Interrupts::Signals);
    assert_eq!(wake, Wake::Ready);
    assert!(Instant::now() < deadline);
    assert_eq!(futex_wake(addr, 1), 0);
}

#[test]
fn a_wake_skips_the_entry_of_a_thread_that_ended_before_it_parked() {
    init();
    let (word, other) = (0u32, 0u32);
    let (addr, other) = (&word as *const u32 as usize, &other as *const u32 as usize);
    // It registers its wait and ends before it parks (as a cancel request acted on
    // there ends it).
    let gone = spawn(
        move || usize::from(with(|s| s.futex_enqueue(addr, || true, true))),
        opts(),
    )
    .unwrap();
    assert_eq!(join(gone, JoinWait::Block), Ok(1));
    // The next thread in its slot waits on another word, a third on the same one.
    let woken = Rc::new([Cell::new(false), Cell::new(false)]);
    let sleeper = |addr: usize, i: usize| {
        let woken = woken.clone();
        move || {
            let wake = futex_wait(addr, || true, Reason::Sync, None, Interrupts::Nothing);
            woken[i].set(true);
            usize::from(wake == Wake::Ready)
        }
    };
    let elsewhere = spawn(sleeper(other, 0), opts()).unwrap();
    let waiter = spawn(sleeper(addr, 1), opts()).unwrap();
    until_parked(2);
    assert_eq!(futex_wake(addr, 1), 1);
    while !woken[0].get() && !woken[1].get() {
        yield_now();
    }
    assert_eq!((woken[0].get(), woken[1].get()), (false, true));
    assert_eq!(join(waiter, JoinWait::Block), Ok(1));
    assert_eq!(futex_wake(other, 1), 1);
    assert_eq!(join(elsewhere, JoinWait::Block), Ok(1));
}

#[test]
fn a_park_is_stamped_at_the_next_look_at_epoll_before_an_idle_wait() {
    init();
    let sleeper = spawn(
        || {
            sleep_until(Instant::now() + Duration::from_millis(500));
            0
        },
        opts(),
    )
    .unwrap();
    let parked_since = || {
        with(|s| {
            let t = s.threads.iter().find(|t| t.state() == State::Parked);
            t.map(|t| (t.park_reason, t.parked_since))
        })
    };
    // The sleeper parks and MAIN runs again without a look at epoll: no clock read yet.
    yield_now();
    assert_eq!(parked_since(), Some((Reason::Sleep, 0)));
    // MAIN sleeps too: the run loop looks at epoll before it waits idle, and stamps the
    // sleeper with the time then, not when the wait ends.
    sleep_until(Instant::now() + Duration::from_millis(60));
    let (reason, since) = parked_since().expect("the sleeper still sleeps");
    assert_eq!(reason, Reason::Sleep);
    let waited = snapshot::coarse_now() - since;
    assert!(
        (40_000_000..490_000_000).contains(&waited),
        "stamped {waited} ns ago"
    );
    assert_eq!(join(sleeper, JoinWait::Block), Ok(0));
}
