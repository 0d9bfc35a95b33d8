//! Several workers (`GREENIFY_WORKERS`): green threads run on several OS threads at once,
//! and a worker stuck in a call no hook saw hands its threads to a spare OS thread.
//!
//! Run: `cargo test --release -p cdylib-tests --test workers`. The test of two spinning
//! threads needs 2 CPUs (skipped, saying so, with fewer).

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

/// One green thread blocks its OS thread in a call no hook sees (an inline-assembly `read`
/// of an empty pipe) and another must run to write the byte it waits for. With the default
/// single worker that deadlocked: the monitor now hands the stuck worker's other threads
/// to a spare OS thread. When the read returns, the reader goes on on its own OS thread
/// (its TLS unchanged) and the spare parks again: the OS threads that are not parked
/// spares are the workers and the monitor again. With two workers, the other one runs the
/// writer, and the count comes back the same way.
#[test]
fn a_stuck_worker_hands_its_threads_to_a_spare_os_thread() {
    let _serial = exclusive();
    let program = test_program("handoff", &[]);
    let read = "reader: read 1 byte 'x', same TLS: yes\n";
    Cmd::new(&program)
        .arg("1")
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success()
        .assert_stdout(&format!("{read}OS threads running: 1\n"));
    for workers in [1, 2] {
        // the workers and the monitor
        let expected = workers + 1;
        Cmd::new(&program)
            .arg(expected.to_string())
            .greenified()
            .env("GREENIFY_WORKERS", workers.to_string())
            .timeout(Duration::from_secs(30))
            .run()
            .assert_success()
            .assert_stdout(&format!("{read}OS threads running: {expected}\n"));
    }
}
