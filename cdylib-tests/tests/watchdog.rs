//! GREENIFY_WATCHDOG: a thread that keeps its worker is named with its tid, name and
//! function, once however long it spins; a worker stuck in a read no hook saw is named
//! with its call and site; both with preemption on and off. A cycle of mutex waits and
//! joins is reported once, each thread with what it waits for and where; a chain without
//! a cycle is not. No report without the variable; a bad value warns.
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

/// `case` greenified with the watchdog on; it ends by SIGALRM (a deadlock) or by itself.
/// Returns the run and the tids its threads printed, by name.
fn run_deadlock(case: &str, alarm: bool) -> (Output, Vec<(String, String)>) {
    let out = Cmd::new(program())
        .arg(case)
        .greenified()
        .env("GREENIFY_WATCHDOG", "50")
        .timeout(TIMEOUT)
        .run();
    use std::os::unix::process::ExitStatusExt;
    if alarm {
        assert_eq!(out.status.signal(), Some(libc::SIGALRM), "{}", out.report());
    } else {
        out.assert_success();
    }
    let fields = out
        .stdout
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (out, fields)
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    let found = fields.iter().find(|(k, _)| k == key);
    &found.unwrap_or_else(|| panic!("{key}= printed")).1
}

/// Two threads each hold one mutex and take the other's: one report of the cycle, each
/// thread with the mutex it waits for, who holds it, and where it waits.
#[test]
fn a_cycle_of_mutex_waits_is_reported_once() {
    let (out, fields) = run_deadlock("deadlock", true);
    let tid = |name| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} tid=")))
            .unwrap_or_else(|| panic!("{name} tid= printed"))
    };
    let (first, second) = (field(&fields, "first"), field(&fields, "second"));
    let lines = reports(&out);
    assert_eq!(lines.len(), 3, "{}", out.report());
    assert_eq!(
        lines[0],
        "greenify watchdog: deadlock: 2 threads wait for each other for ever",
        "{}",
        out.report()
    );
    let left = format!(
        "greenify watchdog:   thread {} (left) waits for mutex {second} held by thread {} (right), in take+0x",
        tid("left"),
        tid("right")
    );
    let right = format!(
        "greenify watchdog:   thread {} (right) waits for mutex {first} held by thread {} (left), in take+0x",
        tid("right"),
        tid("left")
    );
    for expected in [left, right] {
        let line = lines[1..].iter().find(|l| l.starts_with(&expected));
        let line = line.unwrap_or_else(|| panic!("{expected}...\n{}", out.report()));
        assert!(line.contains(" <- crosser+0x"), "{}", out.report());
    }
}

/// Main holds a mutex and joins the thread that waits for it: the join closes the cycle.
#[test]
fn a_join_that_closes_a_cycle_is_reported() {
    let (out, fields) = run_deadlock("deadlock_join", true);
    // "main tid=N" comes first.
    let (main, mutex) = (field(&fields, "tid"), field(&fields, "first"));
    let child_tid = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("child tid="))
        .expect("child tid= printed");
    let lines = reports(&out);
    assert_eq!(lines.len(), 3, "{}", out.report());
    let waits = format!(
        "greenify watchdog:   thread {child_tid} (child) waits for mutex {mutex} held by thread {main} (main), in "
    );
    let joins = format!(
        "greenify watchdog:   thread {main} (main) joins thread {child_tid} (child), in main+0x"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.starts_with(&waits) && l.contains("take+0x")),
        "{waits}\n{}",
        out.report()
    );
    assert!(
        lines[1..].iter().any(|l| l.starts_with(&joins)),
        "{joins}\n{}",
        out.report()
    );
}

/// A wait for a mutex whose owner sleeps, while main joins both: no cycle, no report.
#[test]
fn a_chain_of_waits_without_a_cycle_is_not_a_deadlock() {
    let (out, _) = run_deadlock("lock_chain", false);
    assert!(out.stdout.ends_with("chain done\n"), "{}", out.report());
    assert!(reports(&out).is_empty(), "{}", out.report());
}
