//! The OS threads greenify starts for itself (workers, spares, the preemption monitor,
//! offload helpers), all through [`spawn`], which counts them: the stats line then says
//! how many OS threads the process ran, an exact figure where a look at `/proc` from
//! outside can miss a thread of a short run.
//!
//! Each of them runs until the process ends, so the most OS threads the process ran at
//! once is its own first one plus those started. OS threads the program starts outside
//! greenify (before it loads, or glibc's own helpers) are not counted.

use super::raw;
use std::sync::atomic::{
    AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Release, Ordering::SeqCst,
};
use std::sync::Arc;
use std::thread::{Builder, JoinHandle};

/// OS threads started by [`spawn`] in this process.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Starts an OS thread of greenify's as `builder` says, running `f`; counted once the
/// kernel made it. Returns once the thread runs `f`: std's start of a thread allocates
/// with glibc's `calloc` (its TLS destructor list) and glibc aborts the process if that
/// fails, so it must not wait for the CPU while the program takes the rest of the memory
/// (under `RLIMIT_AS`, a program creating threads until EAGAIN did so on a busy machine).
pub fn spawn<F: FnOnce() + Send + 'static>(
    builder: Builder,
    f: F,
) -> std::io::Result<JoinHandle<()>> {
    let running = Arc::new(AtomicU32::new(0));
    let started = Arc::clone(&running);
    let spawned = builder.spawn(move || {
        started.store(1, Release);
        raw::futex_wake_one(&started);
        drop(started);
        f()
    });
    if spawned.is_ok() {
        STARTED.fetch_add(1, SeqCst);
        while running.load(Acquire) == 0 {
            raw::futex_wait(&running, 0, None);
        }
    }
    spawned
}

/// The most OS threads the process ran at once: its first one and greenify's.
pub fn peak() -> u64 {
    1 + STARTED.load(SeqCst)
}

/// In a forked child only the forking OS thread exists.
pub fn after_fork_child() {
    STARTED.store(0, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_threads_started() {
        let before = peak();
        spawn(Builder::new(), || {}).unwrap().join().unwrap();
        assert!(peak() > before);
    }

    #[test]
    fn returns_once_the_thread_has_started() {
        // std names a thread as it starts it, before running its function: the name is
        // there as soon as spawn returns.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let handle = spawn(Builder::new().name("own-started".into()), move || {
            let _ = wait.recv();
        })
        .unwrap();
        let named = std::fs::read_dir("/proc/self/task").unwrap().any(|task| {
            let comm = task.unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == "own-started")
        });
        release.send(()).unwrap();
        handle.join().unwrap();
        assert!(named);
    }
}
