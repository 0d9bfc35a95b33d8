//! Preemption seen from outside: the stats line counts it, `GREENIFY_SLICE_MS=0` turns it
//! off, a program that creates no thread has no monitor, and CPython's test that needs it
//! passes greenified. The tests that count preemptions run one worker: with more, a thread
//! that waits for a spinning one may run on another worker instead. (What preemption lets programs do is in the differential catalogue,
//! `cdylib-tests/diff/preempt.c`.)
//!
//! Run: `cargo test --release -p cdylib-tests --test preempt`.

use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(30);

fn stat(stats: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    *stats
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in the stats line: {stats:?}"))
}

/// Main spins until a thread sets a flag. With one worker (set here: with more, the thread
/// runs on another worker and nothing needs preempting) only preemption lets that thread
/// run. The monitor is one more OS thread; at the default workers the program finishes too.
#[test]
fn a_spinning_main_is_preempted_and_counted() {
    let _serial = shared();
    let program = test_program("preempt_stats", &[]);
    let out = Cmd::new(&program)
        .arg("spin")
        .greenified()
        .env("GREENIFY_STATS", "1")
        .env("GREENIFY_WORKERS", "1")
        .timeout(TIMEOUT)
        .run();
    out.assert_success().assert_stdout("os threads=2\n");
    let stats = out.stats();
    assert!(stat(&stats, "preemptions") >= 1, "{}", out.report());
    assert!(
        stat(&stats, "preempt_signals") >= stat(&stats, "preemptions"),
        "{}",
        out.report()
    );
    Cmd::new(&program)
        .arg("spin")
        .greenified()
        .timeout(TIMEOUT)
        .run()
        .assert_success()
        .assert_stdout(&format!("os threads={}\n", greenified_os_threads()));
}

/// `GREENIFY_SLICE_MS=0`: no monitor thread, no preemption signal, although a thread
/// computes for five slices (the spinning case would hang, so a program that needs no
/// preemption shows it).
#[test]
fn slice_ms_0_turns_preemption_off() {
    let _serial = shared();
    let program = test_program("preempt_stats", &[]);
    let out = Cmd::new(&program)
        .arg("compute")
        .greenified()
        .env("GREENIFY_STATS", "1")
        .env("GREENIFY_SLICE_MS", "0")
        .timeout(TIMEOUT)
        .run();
    out.assert_success()
        .assert_stdout(&format!("os threads={}\n", workers()));
    let stats = out.stats();
    assert_eq!(stat(&stats, "preempt_signals"), 0, "{}", out.report());
    assert_eq!(stat(&stats, "preemptions"), 0, "{}", out.report());
}

/// A program that never creates a thread has no monitor.
#[test]
fn no_thread_no_monitor() {
    let _serial = shared();
    let out = Cmd::new(test_program("preempt_stats", &[]))
        .arg("none")
        .greenified()
        .timeout(TIMEOUT)
        .run();
    out.assert_success().assert_stdout("os threads=1\n");
}

/// Runs the tests `names` of CPython's test module `module` greenified, with
/// `GREENIFY_WORKERS=workers` (empty: the default), and checks that they all passed.
fn cpython_tests(module: &str, names: &[&str], workers: &str) -> Output {
    let mut args = vec!["-m", "test", module];
    for name in names {
        args.extend(["-m", name]);
    }
    let out = Cmd::new(python3())
        .args(args)
        .greenified()
        .env("GREENIFY_STATS", "1")
        // Empty: unset, the default.
        .env("GREENIFY_WORKERS", workers)
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_success();
    assert!(out.stdout.contains("Result: SUCCESS"), "{}", out.report());
    out
}

/// CPython's `test_can_interrupt_tight_loops`: a thread runs `while continue_run: pass`
/// while main must get to set the flag: at the default workers, and with one worker (set
/// here), where only a preemption lets main in.
#[test]
fn cpython_can_interrupt_tight_loops() {
    let _serial = shared();
    for workers in ["", "1"] {
        let out = cpython_tests(
            "test_threading",
            &["test_can_interrupt_tight_loops"],
            workers,
        );
        if workers == "1" {
            assert!(stat(&out.stats(), "preemptions") >= 1, "{}", out.report());
        }
    }
}

/// Two tests of CPython's `test_asyncio` that hung when greenify ran one thread until it
/// waited: the event loop polls (a select that returns at once) while a thread of its
/// executor must run (a finalizer run from another thread, a name resolved in the default
/// executor). A thread whose hooked calls never wait now steps aside after a short slice
/// (slice.rs), with or without the monitor's preemption; the whole `test_asyncio` passes
/// greenified (README).
#[test]
fn cpython_asyncio_loop_beside_its_executor_threads() {
    let _serial = shared();
    for workers in ["", "1"] {
        cpython_tests(
            "test_asyncio.test_base_events",
            &["test_asyncgen_finalization_by_gc_in_other_thread"],
            workers,
        );
        cpython_tests(
            "test_asyncio.test_selector_events",
            &["test_sock_connect_resolve_using_socket_params"],
            workers,
        );
    }
}

/// CPython's signal stress tests: handlers run at once while a lone main thread never
/// parks (their interruptions fill greenify's queue), then signals land inside greenify's
/// sections. It aborted with "scheduler re-entered" in about one run in six; the runs
/// repeat so that a regression shows.
#[test]
fn cpython_signal_stress_delivery() {
    let _serial = shared();
    for _ in 0..8 {
        cpython_tests(
            "test_signal",
            &[
                "test_stress_delivery_simultaneous",
                "test_stress_delivery_dependent",
                "test_stress_modifying_handlers",
            ],
            "",
        );
    }
}

/// The catalogue's `preempt_eintr_computing_then_*` cases with a 1 ms slice, so that the
/// monitor often decides to signal main just before it enters a wait in the kernel: main
/// computes a little longer than a slice, then waits 2 ms (a relative timeout the kernel
/// never restarts), 40 rounds per run. Every wait must end at its timeout, as natively;
/// before greenify made such calls again, 28 runs in 30 saw EINTR.
#[test]
fn waits_in_the_kernel_are_not_ended_by_the_preemption_signal() {
    let _serial = shared();
    let dir = workspace_root().join("cdylib-tests/diff");
    let source = std::fs::read_to_string(dir.join("preempt_eintr.c")).expect("preempt_eintr.c");
    let include = format!("-I{}", dir.display());
    let program = compile_c_source(
        "preempt-eintr",
        &source,
        &[
            "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", &include, "-lrt",
        ],
    );
    let cases = [
        ("semtimedop", "semtimedop_syscall"),
        ("rt_sigtimedwait", "sigtimedwait_syscall"),
        ("semtimedop zero timeout", "zero_timeout_semtimedop"),
    ];
    for _ in 0..RUNS {
        for (what, case) in cases {
            let out = Cmd::new(&program)
                .arg(format!("preempt_eintr_computing_then_{case}"))
                .greenified()
                .env("GREENIFY_SLICE_MS", "1")
                .timeout(TIMEOUT)
                .run();
            out.assert_success().assert_stdout(&format!(
                "{what}: 0 of 40 rounds ended otherwise (first errno 0)\nend\n"
            ));
        }
    }
}

/// Runs of each case in the test above.
const RUNS: usize = 5;
