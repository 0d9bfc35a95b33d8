//! Several workers (`GREENIFY_WORKERS`): green threads run on several OS threads at once.
//!
//! Run: `cargo test --release -p cdylib-tests --test workers`. Needs 2 CPUs (skipped,
//! saying so, with fewer).

use std::time::Duration;

use cdylib_tests::*;

/// Two green threads that compute without waiting each see the other advance, on two
/// OS threads, with two workers (one worker would switch between them only at its
/// preemption slices, far too seldom to finish in time).
#[test]
fn two_workers_run_two_spinning_threads_at_once() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipped: two_workers_run_two_spinning_threads_at_once needs 2 CPUs, has {cpus}");
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_parallel", &[]);
    let expected = "both saw the other advance 20000 times on another OS thread\n";
    Cmd::new(&program)
        .timeout(Duration::from_secs(60))
        .run()
        .assert_success()
        .assert_stdout(expected);
    Cmd::new(&program)
        .greenified()
        .env("GREENIFY_WORKERS", "2")
        .timeout(Duration::from_secs(60))
        .run()
        .assert_success()
        .assert_stdout(expected);
}
