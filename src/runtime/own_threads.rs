//! The OS threads greenify starts for itself (workers, spares, the preemption monitor,
//! offload helpers), all through [`spawn`], which counts them: the stats line then says
//! how many OS threads the process ran, an exact figure where a look at `/proc` from
//! outside can miss a thread of a short run.
//!
//! Each of them runs until the process ends, so the most OS threads the process ran at
//! once is its own first one plus those started. OS threads the program starts outside
//! greenify (before it loads, or glibc's own helpers) are not counted.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::thread::{Builder, JoinHandle};

/// OS threads started by [`spawn`] in this process.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Starts an OS thread of greenify's as `builder` says, running `f`; counted once the
/// kernel made it.
pub fn spawn<F: FnOnce() + Send + 'static>(
    builder: Builder,
    f: F,
) -> std::io::Result<JoinHandle<()>> {
    let spawned = builder.spawn(f);
    if spawned.is_ok() {
        STARTED.fetch_add(1, SeqCst);
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
}
