//! GREENIFY_WATCHDOG: a thread that keeps its worker is named with its tid, name and
//! function, once however long it spins; a worker stuck in a read no hook saw is named
//! with its call and site; both with preemption on and off. No report without the
//! variable; a bad value warns.
//!
//! Run: `cargo test --release -p cdylib-tests --test watchdog`.

use std::path::PathBuf;
use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `cdylib-tests/c/watchdog.c`, with its functions in the dynamic symbol table.
fn program() -> PathBuf {
    test_program("watchdog", &["-rdynamic"])
}

/// `case` greenified with `vars`.
fn run(case: &str, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Cmd::new(program()).arg(case).greenified();
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    let out = cmd.timeout(TIMEOUT).run();
    out.assert_success();
    out
}

/// The watchdog's lines.
fn reports(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("greenify watchdog: "))
        .collect()
}

/// The spinner spins for 400 ms, eight watchdog periods: one report, naming it.
fn spinner_named_once(slice_ms: &str) {
    let out = run(
        "spin",
        &[("GREENIFY_WATCHDOG", "50"), ("GREENIFY_SLICE_MS", slice_ms)],
    );
    let tid = out.stdout.trim().strip_prefix("tid=").expect("tid=N");
    let lines = reports(&out);
    assert_eq!(lines.len(), 1, "{}", out.report());
    let line = lines[0];
    assert!(
        line.starts_with(&format!(
            "greenify watchdog: thread {tid} (spinner) kept its worker "
        )),
        "{}",
        out.report()
    );
    assert!(
        line.contains(" ms without a switch, at spin_here+0x"),
        "{}",
        out.report()
    );
    assert!(line.contains(" <- spinner+0x"), "{}", out.report());
}

#[test]
fn a_spinning_thread_is_named_once_with_preemption() {
    spinner_named_once("10");
}

#[test]
fn a_spinning_thread_is_named_once_without_preemption() {
    spinner_named_once("0");
}

/// A second stretch at the same site after a switch is not reported again, but counted
/// at exit.
#[test]
fn a_site_seen_again_is_counted_at_exit() {
    let out = run("spin2", &[("GREENIFY_WATCHDOG", "50")]);
    let lines = reports(&out);
    assert_eq!(lines.len(), 2, "{}", out.report());
    assert!(
        lines[0].contains(" ms without a switch, at spin_here+0x"),
        "{}",
        out.report()
    );
    assert_eq!(
        lines[1],
        "greenify watchdog: spin_here+0x0 (watchdog) seen again 1 time(s)",
        "{}",
        out.report()
    );
}

/// The reader blocks its worker in an inline-assembly read until a child writes 300 ms
/// later: one report naming the call, its fd and its site.
fn stuck_read_reported(slice_ms: &str) {
    let out = run(
        "stuck",
        &[("GREENIFY_WATCHDOG", "50"), ("GREENIFY_SLICE_MS", slice_ms)],
    );
    out.assert_stdout("read 1 byte(s)\n");
    let lines = reports(&out);
    assert_eq!(lines.len(), 1, "{}", out.report());
    let line = lines[0];
    assert!(
        line.starts_with("greenify watchdog: worker "),
        "{}",
        out.report()
    );
    assert!(
        line.contains(" ms in read(3, ...) that no hook saw, at read_raw+0x"),
        "{}",
        out.report()
    );
    assert!(line.contains(" <- reader+0x"), "{}", out.report());
}

#[test]
fn a_worker_stuck_in_a_raw_read_is_reported_with_preemption() {
    stuck_read_reported("10");
}

#[test]
fn a_worker_stuck_in_a_raw_read_is_reported_without_preemption() {
    stuck_read_reported("0");
}

#[test]
fn no_report_without_the_variable() {
    for case in ["spin", "stuck"] {
        let out = run(case, &[]);
        assert!(reports(&out).is_empty(), "{}", out.report());
    }
    let out = run("spin", &[("GREENIFY_WATCHDOG", "0")]);
    assert!(reports(&out).is_empty(), "{}", out.report());
}

#[test]
fn a_bad_value_warns_and_turns_it_off() {
    let out = run("spin", &[("GREENIFY_WATCHDOG", "soon")]);
    assert!(
        out.stderr.contains(
            "GREENIFY_WATCHDOG=soon is not valid (it takes milliseconds, 0 for off): using 0"
        ),
        "{}",
        out.report()
    );
    assert!(reports(&out).is_empty(), "{}", out.report());
}
