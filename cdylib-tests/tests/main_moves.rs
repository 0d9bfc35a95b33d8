//! The main thread on any worker: with several workers, greenify runs the program's main
//! thread on whichever worker is free as it wakes, as any other green thread (what the
//! program sees of it stays the same: `cdylib-tests/diff/main_moves.c`).
//!
//! Run: `cargo test --release -p cdylib-tests --test main_moves`.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Main waits and wakes 300 times while two threads compute: natively and with one
/// worker it stays on the process's first OS thread; with two it runs on both.
#[test]
fn with_two_workers_main_runs_on_more_than_one_os_thread() {
    let _serial = exclusive();
    let program = test_program("main_moves", &[]);
    let said = |yes: &str| format!("main ran on more than one OS thread: {yes}\n");
    Cmd::new(&program)
        .timeout(TIMEOUT)
        .run()
        .assert_success()
        .assert_stdout(&said("no"));
    for (workers, yes) in [(1, "no"), (2, "yes")] {
        Cmd::new(&program)
            .greenified()
            .env("GREENIFY_WORKERS", workers.to_string())
            .timeout(TIMEOUT)
            .run()
            .assert_success()
            .assert_stdout(&said(yes));
    }
}

/// Main overflows its stack while it runs on another OS thread than the process's first:
/// the process ends with SIGSEGV, as natively (the kernel grows the main thread's stack
/// for any OS thread of the process, up to its limit).
#[test]
fn main_overflowing_its_stack_on_another_worker_ends_as_natively() {
    let _serial = exclusive();
    let program = test_program("main_moves", &[]);
    let native = Cmd::new(&program).arg("overflow").timeout(TIMEOUT).run();
    assert_eq!(
        native.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        native.report()
    );
    native.assert_stdout("recursing on another OS thread: no\n");
    let green = Cmd::new(&program)
        .arg("overflow")
        .greenified()
        .env("GREENIFY_WORKERS", "2")
        .timeout(TIMEOUT)
        .run();
    assert_eq!(
        green.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        green.report()
    );
    green.assert_stdout("recursing on another OS thread: yes\n");
}
