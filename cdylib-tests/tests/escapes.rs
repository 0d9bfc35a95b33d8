//! GREENIFY_ESCAPES: blocking system calls that bypass the hooks, seen with Syscall User
//! Dispatch. `report` lists them at exit with their call site and count; `catch` parks the
//! green thread in them, so another thread keeps running. Every case's output is the
//! native one. On a kernel without Syscall User Dispatch the cases say so and skip.
//!
//! Run: `cargo test --release -p cdylib-tests --test escapes`.

use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The test program (`cdylib-tests/c/escapes.c`) run with `case`, natively.
fn native(case: &str) -> Output {
    let out = Cmd::new(test_program("escapes", &[]))
        .arg(case)
        .timeout(TIMEOUT)
        .run();
    out.assert_success();
    out
}

/// The same, greenified with GREENIFY_ESCAPES=`mode`; None (and a visible skip) when the
/// kernel has no Syscall User Dispatch.
fn greenified(case: &str, mode: &str) -> Option<Output> {
    let out = Cmd::new(test_program("escapes", &[]))
        .arg(case)
        .greenified()
        .env("GREENIFY_ESCAPES", mode)
        .timeout(TIMEOUT)
        .run();
    if out
        .stderr
        .contains("Syscall User Dispatch is unavailable (Kernel(22))")
    {
        eprintln!("SKIP: prctl(PR_SET_SYSCALL_USER_DISPATCH) says EINVAL here");
        return None;
    }
    out.assert_success();
    Some(out)
}

/// The report's lines (`greenify escapes: ...`).
fn report(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("greenify escapes: "))
        .collect()
}

/// The count in a report line (`... write x3 at ...`).
fn count(line: &str) -> u64 {
    let after = line.split(" x").nth(1).expect("a count");
    after.split(' ').next().unwrap().parse().expect("a number")
}

/// A 256 KiB `fwrite` to a pipe that a child process drains later: glibc's internal write
/// blocks past the hooks. The report names it, its site in libc, and `fwrite` above it.
#[test]
fn report_names_fwrite_to_a_full_pipe() {
    let _serial = shared();
    let expected = native("pipe");
    let Some(out) = greenified("pipe", "report") else {
        return;
    };
    out.assert_stdout(&expected.stdout);
    let lines = report(&out);
    let line = lines
        .iter()
        .find(|l| l.contains("escaped write x") && l.contains("fwrite"))
        .unwrap_or_else(|| panic!("no fwrite escape reported\n{}", out.report()));
    assert!(count(line) >= 1, "{}", out.report());
    assert!(
        line.contains("write+0x") && line.contains("(libc.so.6)"),
        "the site is not named in libc: {line}"
    );
}

/// Catch mode: thread A is stuck in glibc's internal write to a full pipe; thread B keeps
/// printing progress (A not done yet), then drains the pipe. Without catching, A's write
/// blocks the OS thread and B never runs.
#[test]
fn catch_parks_a_stuck_fwrite_while_another_thread_runs() {
    let _serial = shared();
    let expected = native("progress");
    assert!(expected.stdout.contains("progress 5, writer done: no"));
    let Some(out) = greenified("progress", "catch") else {
        return;
    };
    out.assert_stdout(&expected.stdout);
    assert!(
        report(&out)
            .iter()
            .any(|l| l.contains("caught write x") && l.contains("fwrite")),
        "{}",
        out.report()
    );
}

/// A `read` made with the `syscall` instruction in the program's own code is caught: the
/// reader parks while another thread prints progress and then writes the byte.
#[test]
fn an_inline_syscall_read_is_caught() {
    let _serial = shared();
    let expected = native("asm_read");
    let Some(out) = greenified("asm_read", "catch") else {
        return;
    };
    out.assert_stdout(&expected.stdout);
    let lines = report(&out);
    let line = lines
        .iter()
        .find(|l| l.contains("caught read x1 at ") && l.contains("(escapes)"))
        .unwrap_or_else(|| panic!("the inline read is not reported\n{}", out.report()));
    assert_eq!(count(line), 1);
}

/// Off (the default), greenify installs no SIGSYS handler and prints no report; on, the
/// program still sees its own SIGSYS action, and its handler runs for its own SIGSYS.
#[test]
fn sigsys_stays_the_programs() {
    let _serial = shared();
    let expected = native("sigsys");
    assert!(expected.stderr.contains("kernel handler: no"));
    let off = Cmd::new(test_program("escapes", &[]))
        .arg("sigsys")
        .greenified()
        .timeout(TIMEOUT)
        .run();
    off.assert_success().assert_stdout(&expected.stdout);
    assert!(
        off.stderr.contains("kernel handler: no"),
        "{}",
        off.report()
    );
    assert!(report(&off).is_empty(), "{}", off.report());
    for mode in ["report", "catch"] {
        let Some(out) = greenified("sigsys", mode) else {
            return;
        };
        out.assert_stdout(&expected.stdout);
        assert!(
            out.stderr.contains("kernel handler: yes"),
            "{}",
            out.report()
        );
    }
}

/// The cases that do not need parking give the native output in both modes. `services`:
/// glibc's internal close of its nscd socket reaches the fd table in catch mode (the fd
/// number comes back for /etc/services, which must not be taken for that socket). `exec`:
/// dispatch, which the kernel keeps across exec, is off in the new program. `asm_fcntl`:
/// a pipe made non-blocking by an inline fcntl reads as EAGAIN (greenify skips the look
/// at the description's flags before a wait only until such a call, fdtable.rs).
#[test]
fn output_is_native_in_both_modes() {
    let _serial = shared();
    for case in ["pipe", "sigsys", "services", "exec", "asm_fcntl"] {
        let expected = native(case);
        for mode in ["report", "catch"] {
            let Some(out) = greenified(case, mode) else {
                return;
            };
            out.assert_stdout(&expected.stdout);
        }
    }
}
