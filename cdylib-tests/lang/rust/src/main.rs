//! Run natively and under `LD_PRELOAD=libgreenify.so` by `cdylib-tests/tests/languages.rs`;
//! both runs must print the same lines, so it prints only facts that do not depend on how the
//! threads were scheduled. Each section forces real waits (sleeps while holding a lock, a
//! consumer ahead of its producer) so that green threads switch in the middle of it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

const THREADS: usize = 4;

/// Which threads' `thread_local!` destructors have run (thread numbers).
static DROPPED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

struct Tracker(Cell<usize>);

impl Drop for Tracker {
    fn drop(&mut self) {
        DROPPED.lock().unwrap().push(self.0.get());
    }
}

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
    static TRACKER: Tracker = const { Tracker(Cell::new(usize::MAX)) };
    static NAME_SEEN: RefCell<String> = const { RefCell::new(String::new()) };
}

fn named_threads_and_ids() {
    // All alive at once (the barrier), so their ids must differ.
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let barrier = barrier.clone();
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    barrier.wait();
                    let me = thread::current();
                    (me.name().unwrap_or("?").to_string(), me.id())
                })
                .unwrap()
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let names: Vec<_> = results.iter().map(|r| r.0.as_str()).collect();
    let ids: HashSet<_> = results.iter().map(|r| r.1).collect();
    println!("names: {names:?}");
    println!(
        "distinct thread ids: {} (main's differs: {})",
        ids.len(),
        !ids.contains(&thread::current().id())
    );
    println!("main is named: {:?}", thread::current().name());
}

fn thread_locals_are_per_thread() {
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            thread::spawn(move || {
                TRACKER.with(|t| t.0.set(i));
                NAME_SEEN.with(|n| *n.borrow_mut() = format!("t{i}"));
                for _ in 0..50 {
                    COUNTER.with(|c| c.set(c.get() + 1));
                    // Another thread runs its own increments here.
                    thread::sleep(Duration::from_micros(200));
                }
                (
                    COUNTER.with(Cell::get),
                    NAME_SEEN.with(|n| n.borrow().clone()),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("thread_local counters: {results:?}");
    println!("main's thread_local counter: {}", COUNTER.with(Cell::get));
    // join returns once the thread has exited, after its thread_local destructors.
    let mut dropped = DROPPED.lock().unwrap().clone();
    dropped.sort_unstable();
    println!("thread_local destructors ran for: {dropped:?}");
}

fn contended_mutex() {
    let total = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let total = total.clone();
            thread::spawn(move || {
                for round in 0..20 {
                    let mut guard = total.lock().unwrap();
                    *guard += 1;
                    if round % 4 == 0 {
                        // Sleep holding the lock: the others block on it.
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                for _ in 0..10_000 {
                    *total.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    println!("mutex total: {}", *total.lock().unwrap());
}

fn condvar_queue() {
    let pair = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let pair = pair.clone();
            thread::spawn(move || {
                let (queue, cv) = &*pair;
                let mut sum = 0u64;
                loop {
                    let mut q = cv
                        .wait_while(queue.lock().unwrap(), |q| q.is_empty())
                        .unwrap();
                    match q.pop_front() {
                        Some(None) => return sum,
                        Some(Some(v)) => sum += v,
                        None => unreachable!(),
                    }
                }
            })
        })
        .collect();
    // The consumers are waiting before anything arrives.
    thread::sleep(Duration::from_millis(5));
    let (queue, cv) = &*pair;
    for v in 1..=100u64 {
        queue.lock().unwrap().push_back(Some(v));
        cv.notify_one();
        if v % 25 == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    for _ in 0..2 {
        queue.lock().unwrap().push_back(None);
        cv.notify_all();
    }
    let sum: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    println!("condvar queue sum: {sum}");
}

fn mpsc_channels() {
    let (tx, rx) = mpsc::channel();
    let producers: Vec<_> = (0..THREADS as u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..250 {
                    tx.send(p * 1000 + i).unwrap();
                    if i % 100 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let (count, sum) = rx.iter().fold((0u64, 0u64), |(c, s), v| (c + 1, s + v));
    for p in producers {
        p.join().unwrap();
    }
    // A rendezvous channel: each send waits for its receive.
    let (stx, srx) = mpsc::sync_channel(0);
    let sender = thread::spawn(move || (0..20u64).all(|i| stx.send(i).is_ok()));
    let got: Vec<u64> = srx.iter().collect();
    println!(
        "mpsc: {count} messages, sum {sum}; sync_channel(0) in order: {} all sent: {}",
        got == (0..20).collect::<Vec<_>>(),
        sender.join().unwrap()
    );
}

fn scoped_threads() {
    let data: Vec<u64> = (1..=10_000).collect();
    let seen = AtomicUsize::new(0);
    let sums: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(2_500)
            .map(|chunk| {
                let seen = &seen;
                s.spawn(move || {
                    thread::sleep(Duration::from_millis(1));
                    seen.fetch_add(chunk.len(), Ordering::Relaxed);
                    chunk.iter().sum()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!(
        "scope: chunk sums {sums:?}, total {}, elements seen {}",
        sums.iter().sum::<u64>(),
        seen.load(Ordering::Relaxed)
    );
}

fn park_unpark() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let parker = thread::spawn(move || {
        // park may return spuriously: the flag says when to stop.
        while !flag.load(Ordering::Acquire) {
            thread::park();
        }
        // An unpark before the park leaves a token: this park returns at once.
        thread::current().unpark();
        thread::park();
        true
    });
    thread::sleep(Duration::from_millis(5));
    ready.store(true, Ordering::Release);
    parker.thread().unpark();
    println!("park/unpark: woke: {}", parker.join().unwrap());
}

fn rayon_pool() {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .thread_name(|i| format!("rayon-{i}"))
        .build()
        .unwrap();
    let (sum, names) = pool.install(|| {
        let sum: u64 = (0..1_000_000u64).into_par_iter().map(|x| x % 7).sum();
        let names: BTreeSet<String> = (0..64)
            .into_par_iter()
            .map(|_| {
                thread::sleep(Duration::from_micros(500));
                thread::current().name().unwrap_or("?").to_string()
            })
            .collect();
        (sum, names)
    });
    let squares: Vec<u64> = pool.install(|| (0..10u64).into_par_iter().map(|x| x * x).collect());
    println!("rayon: sum {sum}, squares {squares:?}");
    println!(
        "rayon: every task ran on a pool thread: {}",
        names.iter().all(|n| n.starts_with("rayon-"))
    );
}

fn main() {
    named_threads_and_ids();
    thread_locals_are_per_thread();
    contended_mutex();
    condvar_queue();
    mpsc_channels();
    scoped_threads();
    park_unpark();
    rayon_pool();
    println!("done");
}
