//! Helper OS threads for calls that block in the kernel with nothing to wait on
//! (name resolution, file locks, fsync, opening a FIFO): the green thread hands the
//! call to a helper and parks until the helper says it is done, so the other green
//! threads keep running. Helpers are plain OS threads: greenify lets every call they
//! make pass straight through.

use super::futex;
use super::sched::{self, Reason};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};

/// At most this many helpers (more calls queue).
const MAX_HELPERS: usize = 16;
const HELPER_STACK: usize = 512 << 10;

/// A call waiting for a helper: a type-erased pointer to a [`Job`] on the caller's stack.
struct Task {
    run: unsafe fn(*const ()),
    job: *const (),
}

// SAFETY: the job it points to lives on a parked green thread's stack until `done` is
// set, and only the helper touches it in between.
unsafe impl Send for Task {}

struct Pool {
    queue: Mutex<VecDeque<Task>>,
    ready: Condvar,
    helpers: AtomicUsize,
    idle: AtomicUsize,
}

static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

fn new_pool() -> *mut Pool {
    Box::into_raw(Box::new(Pool {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        helpers: AtomicUsize::new(0),
        idle: AtomicUsize::new(0),
    }))
}

fn pool() -> &'static Pool {
    let mut ptr = POOL.load(SeqCst);
    if ptr.is_null() {
        let fresh = new_pool();
        ptr = match POOL.compare_exchange(std::ptr::null_mut(), fresh, SeqCst, SeqCst) {
            Ok(_) => fresh,
            Err(existing) => existing,
        };
    }
    // SAFETY: pools are leaked, never freed.
    unsafe { &*ptr }
}

/// In a forked child the helpers do not exist (and may have held the queue's lock):
/// start over with a new pool; the old one is leaked.
pub fn after_fork_child() {
    POOL.store(new_pool(), SeqCst);
}

struct Job<F, R> {
    call: std::cell::Cell<Option<F>>,
    result: std::cell::Cell<Option<R>>,
    done: AtomicU32,
}

unsafe fn run_job<F: FnOnce() -> R, R>(job: *const ()) {
    // SAFETY: `job` is the Job<F, R> its caller submitted and still waits on.
    let job = unsafe { &*(job as *const Job<F, R>) };
    if let Some(call) = job.call.take() {
        job.result.set(Some(call()));
    }
    job.done.store(1, SeqCst);
    futex::post_remote(job.done.as_ptr() as usize);
}

fn helper_loop() {
    let pool = pool();
    loop {
        let task = {
            let mut queue = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(task) = queue.pop_front() {
                    break task;
                }
                pool.idle.fetch_add(1, SeqCst);
                queue = pool.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                pool.idle.fetch_sub(1, SeqCst);
            }
        };
        // SAFETY: the task was built by `run` below for this job type.
        unsafe { (task.run)(task.job) };
    }
}

/// Runs `call` on a helper OS thread while the current green thread parks; returns its
/// result. Runs it right here when no other green thread could use the time (a
/// single-threaded `ls -l` then makes no helper thread, and a signal interrupts the call
/// as natively), or if no helper can be started.
pub fn run<F: FnOnce() -> R, R>(call: F) -> R {
    if sched::is_alone() {
        return call();
    }
    let job = Job {
        call: std::cell::Cell::new(Some(call)),
        result: std::cell::Cell::new(None),
        done: AtomicU32::new(0),
    };
    // The helper's wake needs the doorbell, and no helper may run while it is made.
    sched::open_reactor();
    let pool = pool();
    let started = pool.idle.load(SeqCst) > 0 || pool.helpers.load(SeqCst) >= MAX_HELPERS || {
        pool.helpers.fetch_add(1, SeqCst);
        let spawned = super::own_threads::spawn(
            std::thread::Builder::new()
                .name("greenify-helper".into())
                .stack_size(HELPER_STACK),
            helper_loop,
        );
        if spawned.is_err() {
            pool.helpers.fetch_sub(1, SeqCst);
        }
        spawned.is_ok() || pool.helpers.load(SeqCst) > 0
    };
    if !started {
        let call = job.call.take().expect("not yet run");
        return call();
    }
    pool.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(Task {
            run: run_job::<F, R>,
            job: &job as *const Job<F, R> as *const (),
        });
    pool.ready.notify_one();
    let addr = job.done.as_ptr() as usize;
    // The helper writes into `job` on this stack until it is done: no signal handler
    // may jump out of this wait (they run when the hooked call returns).
    sched::hold_handlers(true);
    while job.done.load(SeqCst) == 0 {
        sched::futex_wait(
            addr,
            || job.done.load(SeqCst) == 0,
            Reason::Sync,
            None,
            sched::Interrupts::Nothing,
        );
    }
    sched::hold_handlers(false);
    job.result.take().expect("a finished job has its result")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::sched::{
        init_current_thread, join, spawn, Config, JoinWait, SpawnOptions, StackRequest,
    };
    use std::time::{Duration, Instant};

    #[test]
    fn green_threads_run_while_a_helper_blocks() {
        init_current_thread(Config {
            guard_budget: 4,
            fd_floor: 200,
            tls: crate::config::Tls::Off,
            workers: crate::config::Workers {
                count: 1,
                explicit: true,
            },
            worker_started: || {},
        });
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let ticker = spawn(
            move || {
                for _ in 0..10 {
                    sched::sleep_until(Instant::now() + Duration::from_millis(5));
                    t.set(t.get() + 1);
                }
                0
            },
            SpawnOptions {
                stack: StackRequest::Size(64 << 10),
                detached: false,
                name: [0; 16],
                sigmask: None,
            },
        )
        .unwrap();
        let value = run(|| {
            std::thread::sleep(Duration::from_millis(150));
            42
        });
        assert_eq!(value, 42);
        assert!(
            ticks.get() >= 5,
            "green threads were starved: {}",
            ticks.get()
        );
        join(ticker, JoinWait::Block).unwrap();
    }
}
