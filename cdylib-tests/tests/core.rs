//! Core integration tests: the c-examples run natively and under `LD_PRELOAD=libgreenify.so`
//! and must behave the same; greenified they must stay on the workers' OS threads (one per
//! CPU by default) and the monitor's.
//!
//! Every run is bounded by a timeout, only loopback addresses are used, and every process is
//! killed (with its process group) when its guard drops, also when a test fails. Heavy or
//! timing-sensitive tests hold [`exclusive`] so that they run alone.
//!
//! Run: `cargo test --release -p cdylib-tests` (builds libgreenify.so itself).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cdylib_tests::*;

const LOOPBACK: &str = "127.0.0.1";

/// Runs `program args` natively and greenified; both must succeed and print the same stdout.
/// Returns (native, greenified).
#[track_caller]
fn native_vs_greenified(program: &Path, args: &[&str], timeout: Duration) -> (Output, Output) {
    let native = Cmd::new(program).args(args).timeout(timeout).run();
    native.assert_success();
    let green = Cmd::new(program)
        .args(args)
        .greenified()
        .timeout(timeout)
        .run();
    green.assert_success();
    assert_same_stdout(&native, &green);
    (native, green)
}

/// Runs the native load client against `server`; on failure the message carries the server's
/// output too. Checks the server is still alive afterwards.
#[track_caller]
fn load_client(server: &mut Server, args: &[&str], timeout: Duration) -> Output {
    let port = server.port_arg();
    let out = Cmd::new(example("load_client"))
        .args(args)
        .args([LOOPBACK, port.as_str()])
        .timeout(timeout)
        .run();
    if !out.status.success() {
        panic!("load client failed\n{}\n{}", out.report(), server.report());
    }
    server.assert_alive();
    out
}

// ---------------------------------------------------------------------------------------------
// Echo and HTTP servers
// ---------------------------------------------------------------------------------------------

/// The headline: a greenified thread-per-connection server holds 2,000 concurrent connections
/// (every byte verified) on a single OS thread.
#[test]
fn echo_server_greenified_serves_2000_connections_on_one_os_thread() {
    let _serial = exclusive();
    let server_bin = example("echo_server");
    example("load_client");
    let mut server = Server::start(&server_bin, Mode::Greenified, &[("GREENIFY_STATS", "1")]);
    let sampler = Sampler::start(server.pid());
    let out = load_client(
        &mut server,
        &["-c", "2000", "-r", "20", "-s", "64", "-H", "1500"],
        Duration::from_secs(120),
    );
    let samples = sampler.stop();
    out.assert_stdout("mode=echo conns=2000 rounds=20 size=64 ok=40000 errors=0\n");
    let report = server.report();
    // The workers and their preemption monitor, plus the spares that stood in for a worker
    // the kernel held in a call (the main thread's accept4 sleeps on the listening
    // socket's lock while 2,000 connections arrive, and the monitor hands its threads off).
    let stats = server.stats_at_exit();
    assert_greenified_os_threads(
        "the greenified server",
        &stats,
        stats["spares_started"],
        Some((&samples, 10)),
        &report,
    );
    assert!(
        samples.fds_max >= 2003,
        "the server never held 2,000 connections at once (max {} open fds, want >= 2003): \
         {samples:?}\n{}",
        samples.fds_max,
        server.report()
    );
}

/// Same client result against the server run natively and greenified.
#[test]
fn echo_server_native_vs_greenified() {
    let _serial = exclusive();
    let server_bin = example("echo_server");
    example("load_client");
    let mut outs = Vec::new();
    for mode in Mode::BOTH {
        let mut server = Server::start(&server_bin, mode, &[]);
        let out = load_client(
            &mut server,
            &["-c", "100", "-r", "200"],
            Duration::from_secs(60),
        );
        out.assert_stdout("mode=echo conns=100 rounds=200 size=16 ok=20000 errors=0\n");
        outs.push(out);
    }
    assert_same_stdout(&outs[0], &outs[1]);
}

/// The greenified client (500 pthreads, blocking connect/usleep/write/read) against a native
/// server: correct, and on one OS thread.
#[test]
fn echo_client_greenified_against_native_server() {
    let _serial = exclusive();
    let client = example("load_client");
    let mut server = Server::start(&example("echo_server"), Mode::Native, &[]);
    let port = server.port_arg();
    let args = [
        "-c",
        "500",
        "-r",
        "20",
        "-H",
        "300",
        LOOPBACK,
        port.as_str(),
    ];
    let expected = "mode=echo conns=500 rounds=20 size=16 ok=10000 errors=0\n";

    let native = Cmd::new(&client)
        .args(args)
        .timeout(Duration::from_secs(60))
        .run();
    native.assert_success().assert_stdout(expected);

    let running = Cmd::new(&client)
        .args(args)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(60))
        .spawn();
    let sampler = Sampler::start(running.pid());
    let green = running.wait();
    let samples = sampler.stop();
    if !green.status.success() {
        panic!(
            "greenified client failed\n{}\n{}",
            green.report(),
            server.report()
        );
    }
    green.assert_stdout(expected);
    server.assert_alive();
    assert_greenified_os_threads(
        "the greenified client",
        &green.stats(),
        0,
        Some((&samples, 5)),
        &green.report(),
    );
}

/// HTTP/1.1 keep-alive server, native vs greenified, same client output, no errors.
#[test]
fn http_server_native_vs_greenified() {
    let _serial = exclusive();
    let server_bin = example("http_server");
    example("load_client");
    let mut outs = Vec::new();
    for mode in Mode::BOTH {
        let mut server = Server::start(&server_bin, mode, &[]);
        let out = load_client(
            &mut server,
            &["-m", "http", "-c", "100", "-r", "50"],
            Duration::from_secs(60),
        );
        assert!(
            out.stdout.starts_with("mode=http conns=100 rounds=50 ")
                && out.stdout.contains(" ok=5000 ")
                && out.stdout.ends_with(" errors=0\n"),
            "unexpected client output against the {mode} http server\n{}\n{}",
            out.report(),
            server.report()
        );
        outs.push(out);
    }
    assert_same_stdout(&outs[0], &outs[1]);
}

// ---------------------------------------------------------------------------------------------
// Sleepers, pipes, timeouts
// ---------------------------------------------------------------------------------------------

#[test]
fn sleepers_native_vs_greenified() {
    let _serial = exclusive();
    let (native, _) = native_vs_greenified(
        &example("sleepers"),
        &["1000", "3", "100"],
        Duration::from_secs(60),
    );
    native.assert_stdout("threads=1000 sleeps=3 ms=100 done\n");
}

/// 10,000 threads each sleeping 500 ms: all sleep at once (wall time far below the 5,000 s that
/// serialised sleeps would take; 5 s is a correctness bound, not a speed target) on the
/// workers' OS threads.
#[track_caller]
fn ten_thousand_sleepers(extra_env: &[(&str, &str)]) {
    let _serial = exclusive();
    let mut cmd = Cmd::new(example("sleepers"))
        .args(["10000", "1", "500"])
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(60));
    for (k, v) in extra_env {
        cmd = cmd.env(k, v);
    }
    let running = cmd.spawn();
    let sampler = Sampler::start(running.pid());
    let out = running.wait();
    let samples = sampler.stop();
    out.assert_success()
        .assert_stdout("threads=10000 sleeps=1 ms=500 done\n");
    // The workers and their preemption monitor, plus the spares that stood in for a
    // worker stuck in a call: on a loaded machine, a worker's mprotect of a new stack's
    // guard page waits in the kernel for the memory map lock (its holder, the other
    // worker, lost its CPU) for longer than a look, and the monitor hands it off.
    let stats = out.stats();
    assert_greenified_os_threads(
        "greenified sleepers",
        &stats,
        stats["spares_started"],
        Some((&samples, 5)),
        &out.report(),
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "10,000 concurrent 500 ms sleeps took {:.3} s (bound: 5 s)\n{}",
        out.elapsed.as_secs_f64(),
        out.report()
    );
}

#[test]
fn sleepers_10000_greenified_on_the_workers() {
    ten_thousand_sleepers(&[]);
}

#[test]
fn sleepers_10000_greenified_small_stack_on_the_workers() {
    ten_thousand_sleepers(&[("SLEEPERS_SMALL_STACK", "1")]);
}

#[test]
fn pipe_pingpong_native_vs_greenified() {
    let _serial = exclusive();
    let (native, _) = native_vs_greenified(
        &example("pipe_pingpong"),
        &["10000"],
        Duration::from_secs(60),
    );
    assert!(
        native.stdout.starts_with("rounds=10000 "),
        "{}",
        native.report()
    );
}

/// Every timeout-related check of `timeouts` gives the same line natively and greenified.
#[test]
fn timeouts_native_vs_greenified() {
    let _serial = exclusive();
    let (native, _) = native_vs_greenified(&example("timeouts"), &[], Duration::from_secs(60));
    assert!(
        native.stdout.lines().count() >= 20,
        "timeouts printed too few lines\n{}",
        native.report()
    );
}

// ---------------------------------------------------------------------------------------------
// _FORTIFY_SOURCE
// ---------------------------------------------------------------------------------------------

const CHK_SYMBOLS: [&str; 7] = [
    "__read_chk",
    "__recv_chk",
    "__recvfrom_chk",
    "__poll_chk",
    "__ppoll_chk",
    "__fdelt_chk",
    "__pread_chk",
];

fn fortified_io() -> std::path::PathBuf {
    example_with("fortified_io", "fortify", &["-O2", "-D_FORTIFY_SOURCE=2"])
}

/// The fortified build really calls the `*_chk` entry points (else the next test proves
/// nothing).
#[test]
fn fortified_io_references_chk_symbols() {
    let _serial = shared();
    let bin = fortified_io();
    let out = Cmd::new("nm").arg("-D").arg(&bin).run();
    out.assert_success();
    let undefined: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            match (it.next(), it.next()) {
                (Some("U"), Some(sym)) => Some(sym.split('@').next().unwrap_or(sym)),
                _ => None,
            }
        })
        .collect();
    let missing: Vec<&str> = CHK_SYMBOLS
        .iter()
        .copied()
        .filter(|s| !undefined.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} does not reference {missing:?}\n{}",
        bin.display(),
        out.report()
    );
}

#[test]
fn fortified_io_native_vs_greenified() {
    let _serial = exclusive();
    let bin = fortified_io();
    native_vs_greenified(&bin, &[], Duration::from_secs(30));
    let stats_run = Cmd::new(&bin)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(30))
        .run();
    stats_run.assert_success();
    let stats = stats_run.stats();
    assert!(
        stat(&stats, "parks_read") + stat(&stats, "parks_poll") > 0,
        "the fortified reads/polls never parked (were the *_chk calls hooked?): {stats:?}\n{}",
        stats_run.report()
    );
}

// ---------------------------------------------------------------------------------------------
// The status flags of inherited stdio are left alone: O_NONBLOCK belongs to the open file
// description, which the parent shell and other processes share
// ---------------------------------------------------------------------------------------------

/// Asserts that neither kept descriptor's open file description has O_NONBLOCK.
#[track_caller]
fn assert_blocking(when: &str, stdin_keep: &OwnedFd, stdout_keep: &OwnedFd) {
    let (i, o) = (is_nonblocking(stdin_keep), is_nonblocking(stdout_keep));
    assert!(
        !i && !o,
        "{when}: O_NONBLOCK set on the shared open file description of stdin: {i}, of stdout: {o} \
         (greenify must not change flags that other processes share)"
    );
}

/// Reads everything from `r` on a thread (EOF arrives once every write end is closed).
fn read_all_async(r: OwnedFd) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let res = File::from(r).read_to_end(&mut buf);
        let _ = tx.send(res.map(|_| buf).unwrap_or_default());
    });
    rx
}

/// Greenified `/bin/cat` between two pipes whose ends the test also holds: data arrives slowly,
/// comes out byte-exact, and the shared open file descriptions never get O_NONBLOCK.
#[test]
fn stdio_flags_unchanged_greenified_cat() {
    let _serial = shared();
    lib_path();
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let stdin_keep = dup_cloexec(&in_r);
    let stdout_keep = dup_cloexec(&out_w);
    assert_blocking("before the run", &stdin_keep, &stdout_keep);

    let running = Cmd::new("/bin/cat")
        .greenified()
        .stdin(in_r)
        .stdout(out_w)
        .timeout(Duration::from_secs(20))
        .spawn();
    let output = read_all_async(out_r);

    let data: Vec<u8> = (0..3 * 1500u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut writer = File::from(in_w);
    for (k, chunk) in data.chunks(1500).enumerate() {
        writer.write_all(chunk).expect("write to cat's stdin");
        thread::sleep(Duration::from_millis(50));
        // cat has copied the chunk and waits in read() again: the moment a library that
        // flips O_NONBLOCK around its waits would be caught.
        assert_blocking(
            &format!("while cat waits (after chunk {k})"),
            &stdin_keep,
            &stdout_keep,
        );
    }
    drop(writer);

    let out = running.wait();
    out.assert_success();
    assert_blocking("after cat exited", &stdin_keep, &stdout_keep);
    drop(stdout_keep); // last write end: the reader gets EOF
    let got = output
        .recv_timeout(Duration::from_secs(10))
        .expect("reading cat's output did not finish");
    assert!(
        got == data,
        "cat's output differs: got {} bytes, want {} (first difference at byte {:?})\n{}",
        got.len(),
        data.len(),
        got.iter().zip(&data).position(|(a, b)| a != b),
        out.report()
    );
}

/// One run of `timeouts` with stdin and stdout on pipes whose ends the test also holds.
/// Returns the run and its stdout.
#[track_caller]
fn timeouts_on_pipes(mode: Mode) -> (Output, String) {
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let stdin_keep = dup_cloexec(&in_r);
    let stdout_keep = dup_cloexec(&out_w);
    assert_blocking("before the run", &stdin_keep, &stdout_keep);
    let running = Cmd::new(example("timeouts"))
        .mode(mode)
        .stdin(in_r)
        .stdout(out_w)
        .timeout(Duration::from_secs(60))
        .spawn();
    let output = read_all_async(out_r);
    let out = running.wait();
    out.assert_success();
    assert_blocking(&format!("after the {mode} run"), &stdin_keep, &stdout_keep);
    drop(in_w);
    drop(stdout_keep);
    let stdout = output
        .recv_timeout(Duration::from_secs(10))
        .expect("reading the output did not finish");
    (out, String::from_utf8_lossy(&stdout).into_owned())
}

#[test]
fn stdio_flags_unchanged_greenified_timeouts() {
    let _serial = exclusive();
    let (native, native_stdout) = timeouts_on_pipes(Mode::Native);
    let (green, green_stdout) = timeouts_on_pipes(Mode::Greenified);
    let flags = |s: &str| -> String {
        s.lines()
            .filter(|l| l.starts_with("stdio_flags"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let (n, g) = (flags(&native_stdout), flags(&green_stdout));
    assert!(
        n.lines().count() == 2,
        "expected two stdio_flags lines natively, got:\n{native_stdout}\n{}",
        native.report()
    );
    assert!(
        n == g,
        "stdio_flags lines differ\n{}\n=== greenified ===\n{}",
        diff_lines("native", &n, "greenified", &g),
        green.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

#[test]
fn stats_line_printed_with_greenify_stats() {
    let _serial = shared();
    let out = Cmd::new(example("sleepers"))
        .args(["10", "2", "10"])
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_success()
        .assert_stdout("threads=10 sleeps=2 ms=10 done\n");
    let stats = out.stats();
    for key in STATS_KEYS {
        stat(&stats, key);
    }
    assert!(
        stat(&stats, "threads_created") >= 10,
        "{stats:?}\n{}",
        out.report()
    );
    assert!(
        stat(&stats, "parks_sleep") >= 20,
        "{stats:?}\n{}",
        out.report()
    );
    assert!(
        stat(&stats, "parks_join") >= 1,
        "{stats:?}\n{}",
        out.report()
    );
}

/// The line comes at `_exit` too (no atexit handlers, no `.fini_array` run then), once per
/// process, labelled with the pid and the program's name; a program that never made a
/// green call still counts its main thread alive.
#[test]
fn stats_line_on_every_exit_names_pid_and_program() {
    let _serial = shared();
    let program = compile_c_source(
        "stats_exit_paths",
        r#"#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void *run(void *arg) { return arg; }
int main(int argc, char **argv) {
    if (argc > 1) return 0; /* no thread, no green call */
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    pthread_join(t, NULL);
    pid_t child = fork();
    if (child == 0) _exit(4);
    int status;
    waitpid(child, &status, 0);
    printf("child %d exited %d\n", (int)child, WEXITSTATUS(status));
    fflush(stdout);
    _Exit(3);
}
"#,
        &["-O2", "-pthread"],
    );
    let running = Cmd::new(&program)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(30))
        .spawn();
    let pid = running.pid();
    let out = running.wait();
    assert_eq!(out.status.code(), Some(3), "{}", out.report());
    let child: u32 = out
        .stdout
        .strip_prefix("child ")
        .and_then(|rest| rest.strip_suffix(" exited 4\n"))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("unexpected stdout\n{}", out.report()));
    let lines: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("greenify stats:"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per process\n{}", out.report());
    let line_of = |pid: u32| {
        lines
            .iter()
            .find(|l| l.contains(&format!(" pid={pid} ")))
            .unwrap_or_else(|| panic!("no line of pid {pid}\n{}", out.report()))
    };
    let parent = line_of(pid);
    assert!(
        parent.contains(" program=stats_exit_paths "),
        "{}",
        out.report()
    );
    let stats = parse_stats(parent).expect("a stats line");
    assert!(stat(&stats, "threads_created") >= 1, "{}", out.report());
    assert!(line_of(child).contains(" program=stats_exit_paths "));

    let quiet = Cmd::new(&program)
        .arg("no-threads")
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(30))
        .run();
    quiet.assert_success();
    assert_eq!(stat(&quiet.stats(), "peak_alive"), 1, "{}", quiet.report());
}

/// A GREENIFY_* value the library does not take, and an unknown GREENIFY_* name, give one
/// warning each at load with what the variable takes and what is used instead; a forked
/// child keeps its parent's settings silently, an exec'd program reads them anew and warns
/// again. The wrapper passes the variables on without a second copy of the lines.
#[test]
fn bad_greenify_values_warn_once_per_program() {
    let _serial = shared();
    let program = compile_c_source(
        "bad_values",
        r#"#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) { puts("exec'd"); return 0; }
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    fflush(stdout);
    execl(argv[0], argv[0], "again", (char *)NULL);
    return 1;
}
"#,
        &["-O2"],
    );
    let warnings = "greenify: warn: GREENIFY_STACK_SIZE=1 is not valid (it takes bytes from 16K to 4G, with an optional K, M or G suffix): using 256K
greenify: warn: GREENIFY_STATS=true is not valid (it takes 0 or 1): using 0
greenify: warn: GREENIFY_LOG=verbose is not valid (it takes off, error, warn, info, debug or trace): using warn
greenify: warn: unknown variable GREENIFY_STAT=1 ignored (did you mean GREENIFY_STATS?)
";
    let bad = |cmd: Cmd| {
        cmd.env("GREENIFY_STACK_SIZE", "1")
            .env("GREENIFY_STATS", "true")
            .env("GREENIFY_LOG", "verbose")
            .env("GREENIFY_STAT", "1")
            .timeout(Duration::from_secs(30))
            .run()
    };
    let out = bad(Cmd::new(&program).greenified());
    out.assert_success().assert_stdout("exec'd\n");
    assert_eq!(out.stderr, warnings.repeat(2), "{}", out.report());
    let out = bad(Cmd::new(wrapper_path())
        .env("GREENIFY_LIB", lib_path())
        .args([&program, Path::new("again")]));
    out.assert_success().assert_stdout("exec'd\n");
    assert_eq!(out.stderr, warnings, "{}", out.report());
    let native = bad(Cmd::new(&program));
    assert_eq!(native.stderr, "", "{}", native.report());
}

/// GREENIFY_LOG=info confirms greenify is active: one line with the version, the process
/// and the options in effect.
#[test]
fn log_info_prints_one_start_line() {
    let _serial = shared();
    let running = Cmd::new(example("sleepers"))
        .args(["2", "1", "1"])
        .greenified()
        .env("GREENIFY_LOG", "info")
        .env("GREENIFY_SLICE_MS", "20")
        .env("GREENIFY_STACK_SIZE", "64k")
        .timeout(Duration::from_secs(30))
        .spawn();
    let pid = running.pid();
    let out = running.wait();
    out.assert_success();
    let ours: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("greenify"))
        .collect();
    assert_eq!(
        ours,
        [format!(
            "greenify: info: greenify {} active in pid {pid} (sleepers): GREENIFY_STACK_SIZE=65536 GREENIFY_STATS=0 GREENIFY_LOG=info GREENIFY_GUARD_PAGES=max GREENIFY_OFFLOAD_FILES=0 GREENIFY_TLS=auto GREENIFY_SLICE_MS=20 GREENIFY_ESCAPES=off GREENIFY_WATCHDOG=0 GREENIFY_WORKERS={}",
            package_version(),
            match workers_variable() {
                Some(n) => n.to_string(),
                None => format!("{} (the CPUs in the affinity mask)", affinity_cpus().min(128)),
            }
        )],
        "{}",
        out.report()
    );
}

/// Without GREENIFY_WORKERS a program gets one worker per CPU of its affinity mask: pinned
/// to one CPU (`taskset`), one; with the test's own mask, that many; with green threads
/// sharing one TCB (GREENIFY_TLS=off), one, silently, where an explicit count is warned
/// about. `preempt_stats compute` counts its OS threads after its thread ran: with
/// preemption off, only the workers.
#[test]
fn default_workers_are_the_cpus_of_the_affinity_mask() {
    let _serial = shared();
    let program = test_program("preempt_stats", &[]);
    // SAFETY: a cpu_set_t is plain bits; all zero is an empty set.
    let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
    // SAFETY: `set` is a cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(r, 0);
    // SAFETY: `set` was filled in above; the index is below CPU_SETSIZE.
    let first = (0..libc::CPU_SETSIZE as usize)
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .expect("no CPU in the affinity mask");
    let pinned = || {
        Cmd::new("taskset")
            .args(["-c", &first.to_string()])
            .arg(&program)
    };
    let warning = "greenify: warn: GREENIFY_WORKERS=2, but green threads share one TCB: one worker runs them\n";
    for (cmd, workers, tls, expected, stderr) in [
        (pinned(), "", "", 1, ""),
        (Cmd::new(&program), "", "", affinity_cpus().min(128), ""),
        (Cmd::new(&program), "", "off", 1, ""),
        (Cmd::new(&program), "2", "off", 1, warning),
    ] {
        let out = cmd
            .arg("compute")
            .greenified()
            // Empty counts as unset: the test's environment may set them.
            .env("GREENIFY_WORKERS", workers)
            .env("GREENIFY_TLS", tls)
            .env("GREENIFY_SLICE_MS", "0")
            .timeout(Duration::from_secs(30))
            .run();
        out.assert_success()
            .assert_stdout(&format!("os threads={expected}\n"));
        assert_eq!(out.stderr, stderr, "{}", out.report());
    }
}

#[test]
fn stats_line_absent_without_greenify_stats() {
    let _serial = shared();
    let out = Cmd::new(example("sleepers"))
        .args(["10", "2", "10"])
        .greenified()
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_success()
        .assert_stdout("threads=10 sleeps=2 ms=10 done\n");
    assert!(
        !out.stderr.contains("greenify stats"),
        "stats printed although GREENIFY_STATS is not set\n{}",
        out.report()
    );
}

// ---------------------------------------------------------------------------------------------
// The wrapper scripts/greenify
// ---------------------------------------------------------------------------------------------

/// The `version` of the root package in the workspace's Cargo.toml.
fn package_version() -> String {
    let toml = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    let mut in_package = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(v) = line
                .strip_prefix("version")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
            {
                return v.trim().trim_matches('"').to_string();
            }
        }
    }
    panic!("no [package] version in Cargo.toml");
}

#[test]
fn wrapper_help_and_version() {
    let _serial = shared();
    let help = Cmd::new(wrapper_path())
        .arg("--help")
        .timeout(Duration::from_secs(20))
        .run();
    help.assert_success();
    assert!(
        help.stdout.contains("--stats"),
        "--help does not describe the options\n{}",
        help.report()
    );
    let version = Cmd::new(wrapper_path())
        .arg("--version")
        .timeout(Duration::from_secs(20))
        .run();
    version.assert_success();
    assert_eq!(
        version.stdout.lines().next(),
        Some(format!("greenify {}", package_version()).as_str()),
        "\n{}",
        version.report()
    );
}

/// Runs the wrapper on `program` and expects a refusal: exit 2, the program's name on stderr,
/// and the program not run.
#[track_caller]
fn assert_refused(program: &str, why: &str) {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_string());
    let out = Cmd::new(wrapper_path())
        .arg(program)
        .env("GREENIFY_LIB", lib_path())
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the wrapper should refuse {why} with exit status 2\n{}",
        out.report()
    );
    assert!(
        out.stderr.contains(&name),
        "the refusal of {why} does not name {name:?}\n{}",
        out.report()
    );
    assert!(
        !out.stdout.contains("program ran"),
        "the wrapper ran {why}\n{}",
        out.report()
    );
}

#[test]
fn wrapper_refuses_missing_program() {
    let _serial = shared();
    assert_refused(
        "/nonexistent-greenify-dir/no-such-program",
        "a missing program (path)",
    );
    assert_refused(
        "greenify-no-such-program-in-path",
        "a missing program (PATH lookup)",
    );
}

#[test]
fn wrapper_refuses_non_elf_file() {
    let _serial = shared();
    let path = write_executable("not-an-elf-file", "program ran: this is plain text\n");
    assert_refused(path.to_str().expect("utf-8 path"), "a non-ELF file");
}

#[test]
fn wrapper_refuses_static_binary() {
    let _serial = shared();
    let path = compile_c_source(
        "static_hello",
        "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
        &["-O2", "-static"],
    );
    // Make sure it really is static (else the refusal would be for another reason).
    let file = Command::new("file").arg(&path).output();
    if let Ok(file) = file {
        let text = String::from_utf8_lossy(&file.stdout);
        assert!(text.contains("statically linked"), "{text}");
    }
    assert_refused(
        path.to_str().expect("utf-8 path"),
        "a statically linked binary",
    );
}

#[test]
fn wrapper_stats_option() {
    let _serial = shared();
    let sleepers = example("sleepers");
    let out = Cmd::new(wrapper_path())
        .arg("--stats")
        .arg(&sleepers)
        .args(["10", "1", "10"])
        .env("GREENIFY_LIB", lib_path())
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_success()
        .assert_stdout("threads=10 sleeps=1 ms=10 done\n");
    let stats = out.stats();
    assert!(
        stat(&stats, "threads_created") >= 10,
        "{stats:?}\n{}",
        out.report()
    );
}

/// An LD_PRELOAD already in the environment is kept, after ours.
#[test]
fn wrapper_keeps_existing_ld_preload() {
    let _serial = shared();
    let other = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("no libm.so.6 to preload");
    let lib = lib_path();
    let out = Cmd::new(wrapper_path())
        .arg("/usr/bin/env")
        .env("GREENIFY_LIB", lib)
        .env("LD_PRELOAD", other)
        .timeout(Duration::from_secs(20))
        .run();
    out.assert_success();
    let preload = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("LD_PRELOAD="))
        .unwrap_or_else(|| panic!("env printed no LD_PRELOAD\n{}", out.report()));
    let lib = lib.to_str().expect("utf-8 path");
    assert!(
        preload.starts_with(lib),
        "LD_PRELOAD={preload:?} does not start with {lib:?}\n{}",
        out.report()
    );
    assert!(
        preload[lib.len()..].contains(other),
        "LD_PRELOAD={preload:?} lost the preset {other:?}\n{}",
        out.report()
    );
}

/// A script runs as usual, its interpreter greenified: through `env NAME` (as pyenv's
/// shims start) and through a script that is itself run by a script.
#[test]
fn wrapper_runs_scripts_through_their_interpreter() {
    let _serial = shared();
    let inner = write_executable(
        "wrapper-inner.sh",
        "#!/usr/bin/env bash\necho \"program ran: $*\"\n",
    );
    let outer = write_executable(
        "wrapper-outer.sh",
        &format!("#!{}\nexit 3\n", inner.display()),
    );
    for (script, expected) in [
        (&inner, "program ran: a b\n".to_string()),
        (&outer, format!("program ran: {} a b\n", outer.display())),
    ] {
        let out = Cmd::new(wrapper_path())
            .arg("--stats")
            .arg(script)
            .args(["a", "b"])
            .env("GREENIFY_LIB", lib_path())
            .timeout(Duration::from_secs(30))
            .run();
        out.assert_success().assert_stdout(&expected);
        assert!(
            out.stderr.contains("greenify stats:"),
            "bash ran without the library\n{}",
            out.report()
        );
    }
}

#[test]
fn wrapper_refuses_scripts_it_cannot_greenify() {
    let _serial = shared();
    let static_interp = compile_c_source(
        "static_interpreter",
        "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
        &["-O2", "-static"],
    );
    for (name, first_line, why) in [
        (
            "wrapper-missing-interp.sh",
            "#!/nonexistent-greenify-dir/interp".to_string(),
            "a script whose interpreter does not exist",
        ),
        (
            "wrapper-env-missing.sh",
            "#!/usr/bin/env greenify-no-such-interpreter".to_string(),
            "a script whose env NAME is not in PATH",
        ),
        (
            "wrapper-static-interp.sh",
            format!("#!{}", static_interp.display()),
            "a script run by a statically linked interpreter",
        ),
        (
            "wrapper-text-interp.sh",
            format!(
                "#!{}",
                write_executable("wrapper-text", "program ran\n").display()
            ),
            "a script whose interpreter is neither ELF nor a script",
        ),
    ] {
        let script = write_executable(name, &format!("{first_line}\necho program ran\n"));
        assert_refused(script.to_str().expect("utf-8 path"), why);
    }
}

#[test]
fn wrapper_prints_the_environment_that_greenifies() {
    let _serial = shared();
    let lib = lib_path();
    let out = Cmd::new(wrapper_path())
        .args(["--print-env", "--stats", "--log", "info"])
        .env("GREENIFY_LIB", lib)
        .timeout(Duration::from_secs(20))
        .run();
    out.assert_success().assert_stdout(&format!(
        "LD_PRELOAD={}\nGREENIFY_STATS=1\nGREENIFY_LOG=info\n",
        lib.display()
    ));
    let with_program = Cmd::new(wrapper_path())
        .args(["--print-env", "/bin/true"])
        .env("GREENIFY_LIB", lib)
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(
        with_program.status.code(),
        Some(2),
        "--print-env with a PROGRAM must be refused\n{}",
        with_program.report()
    );
}

/// `make install PREFIX=...` puts the wrapper, the library, the manual page and the licences
/// under the prefix; the installed wrapper works from any directory and preloads the
/// installed library. A wrapper merely copied out of the source tree says what to do.
#[test]
fn installed_wrapper_works_from_anywhere() {
    let _serial = shared();
    if Command::new("make").arg("--version").output().is_err() {
        println!("SKIPPED: make is not installed");
        return;
    }
    let prefix = target_dir().join(format!("install-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let install = Cmd::new("make")
        .arg("-s")
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("LIB={}", lib_path().display()))
        .arg(format!("CTL={}", ctl_path().display()))
        .dir(workspace_root())
        .timeout(Duration::from_secs(60))
        .run();
    install.assert_success();
    for file in [
        "lib/greenify/libgreenify.so",
        "lib/greenify/greenify-ctl",
        "share/man/man1/greenify.1",
        "share/doc/greenify/LICENSE-MIT",
        "share/doc/greenify/LICENSE-APACHE",
    ] {
        assert!(prefix.join(file).is_file(), "{file} was not installed");
    }
    let installed = prefix.join("bin/greenify");
    let version = Cmd::new(&installed)
        .arg("--version")
        .dir("/")
        .timeout(Duration::from_secs(20))
        .run();
    version
        .assert_success()
        .assert_stdout(&format!("greenify {}\n", package_version()));
    let env = Cmd::new(&installed)
        .arg("--print-env")
        .dir("/")
        .timeout(Duration::from_secs(20))
        .run();
    env.assert_success().assert_stdout(&format!(
        "LD_PRELOAD={}\n",
        prefix.join("lib/greenify/libgreenify.so").display()
    ));
    let run = Cmd::new(&installed)
        .arg("--stats")
        .arg(example("sleepers"))
        .args(["10", "1", "10"])
        .dir("/")
        .timeout(Duration::from_secs(30))
        .run();
    run.assert_success()
        .assert_stdout("threads=10 sleeps=1 ms=10 done\n");
    assert!(
        stat(&run.stats(), "threads_created") >= 10,
        "{}",
        run.report()
    );

    let copied = prefix.join("copied-greenify");
    std::fs::copy(wrapper_path(), &copied).expect("copying the wrapper");
    let lost = Cmd::new(&copied)
        .arg("/bin/true")
        .dir("/")
        .timeout(Duration::from_secs(20))
        .run();
    assert_eq!(lost.status.code(), Some(2), "{}", lost.report());
    assert!(
        lost.stderr.contains("make install"),
        "a copied wrapper should say how to install\n{}",
        lost.report()
    );
    let _ = std::fs::remove_dir_all(&prefix);
}

/// `greenify check` answers without running the program: a normal binary and a script can
/// be greenified (status 0), a static binary cannot (status 2, with the reason).
#[test]
fn wrapper_check_tells_static_script_and_normal() {
    let _serial = shared();
    let normal = compile_c_source(
        "check_normal",
        "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
        &["-O2"],
    );
    let static_bin = compile_c_source(
        "check_static",
        "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
        &["-O2", "-static"],
    );
    let script = write_executable(
        "check-script.sh",
        &format!("#!/usr/bin/env {}\n", normal.display()),
    );
    let check = |program: &Path| {
        Cmd::new(wrapper_path())
            .arg("check")
            .arg(program)
            .env("GREENIFY_LIB", lib_path())
            .timeout(Duration::from_secs(20))
            .run()
    };
    let out = check(&normal);
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!(
            "{}: can be greenified\n  {}: a dynamically linked ELF program\n  {}\n  library: {}\n",
            normal.display(),
            normal.display(),
            glibc_line(),
            lib_path().display()
        ),
        "\n{}",
        out.report()
    );
    let out = check(&script);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "a script: its #! line leads to {} ({})",
            normal.display(),
            normal.display()
        )),
        "{}",
        out.report()
    );
    let out = check(&static_bin);
    assert_eq!(out.status.code(), Some(2), "{}", out.report());
    assert!(out.stderr.contains("statically linked"), "{}", out.report());
    for out in [check(&normal), check(&script), check(&static_bin)] {
        assert!(!out.stdout.contains("program ran"), "{}", out.report());
    }
}

/// The glibc line of `greenify check` for a program of this machine's loader.
fn glibc_line() -> String {
    let out = Cmd::new("/lib64/ld-linux-x86-64.so.2")
        .arg("--version")
        .timeout(Duration::from_secs(20))
        .run();
    let version = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.split("release version ").nth(1))
        .map(|v| v.trim_end_matches('.'))
        .unwrap_or_else(|| panic!("no version\n{}", out.report()))
        .to_string();
    if version == "2.36" {
        "glibc 2.36 (the tested one)".to_string()
    } else {
        format!("glibc {version}, not the tested 2.36: green threads share the OS thread's TLS (none of its modules has TLS of its own)")
    }
}

/// `greenify check PROGRAM` as it answers: status, stdout, stderr.
fn check(program: &Path) -> Output {
    Cmd::new(wrapper_path())
        .arg("check")
        .arg(program)
        .env("GREENIFY_LIB", lib_path())
        .timeout(Duration::from_secs(20))
        .run()
}

#[track_caller]
fn assert_check_refuses(program: &Path, why: &str) {
    let out = check(program);
    assert_eq!(out.status.code(), Some(2), "{}", out.report());
    assert_eq!(
        out.stderr,
        format!(
            "greenify: {}: cannot be greenified: {why}\n",
            program.display()
        ),
        "{}",
        out.report()
    );
    assert_eq!(out.stdout, "", "{}", out.report());
}

const MAIN: &str = "int main(void) { return 0; }\n";

/// A Go program (found by its `.go.buildinfo` section: Go runs goroutines on threads it
/// parks with its own futex calls, and greenified it hangs) and a program of another libc's
/// loader are refused, by check and by a run.
#[test]
fn wrapper_check_refuses_go_and_other_libcs() {
    let _serial = shared();
    let go = compile_c_source(
        "check_go",
        "__attribute__((section(\".go.buildinfo\"), used)) static const char info[16] = \"\\xff Go buildinf:\";\nint main(void) { return 0; }\n",
        &["-O2"],
    );
    let musl = compile_c_source(
        "check_musl",
        MAIN,
        &["-O2", "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"],
    );
    let go_why = "a Go program: Go runs goroutines on threads it parks with futex system calls of its own, which greenify does not see; greenified it hangs";
    let musl_why = "its dynamic loader is /lib/ld-musl-x86_64.so.1, not glibc's: libgreenify.so works with glibc only (a musl or other libc program cannot load it)";
    for (program, why) in [(&go, go_why), (&musl, musl_why)] {
        let out = check(program);
        assert_eq!(out.status.code(), Some(2), "{}", out.report());
        assert_eq!(
            out.stderr,
            format!("greenify: {}: {why}\n", program.display()),
            "{}",
            out.report()
        );
        let run = Cmd::new(wrapper_path())
            .arg(program)
            .env("GREENIFY_LIB", lib_path())
            .timeout(Duration::from_secs(20))
            .run();
        assert_eq!(run.status.code(), Some(2), "{}", run.report());
        assert_eq!(run.stderr, out.stderr, "{}", run.report());
    }
}

/// Programs that can be preloaded but not greenified as they should: status 2 from check
/// with the reason, a warning when run anyway. OpenMP's libgomp waits with its own futex
/// calls (fine by default: a stuck worker is handed off; not without the monitor or with
/// shared TCBs); a setuid program runs natively (the loader drops LD_PRELOAD); on a glibc other
/// than the tested one green threads share the OS thread's TLS, which a module with TLS of
/// its own cannot take. Programs with TLS of their own are told that each green thread
/// gets its own.
#[test]
fn wrapper_check_names_openmp_setuid_other_glibc_and_tls() {
    let _serial = shared();
    let openmp = compile_c_source(
        "check_openmp",
        "#include <omp.h>\n#include <stdio.h>\nvolatile int n;\nint main(void) {\n#pragma omp parallel\n    n = omp_get_num_threads();\n    puts(\"program ran\");\n    return 0;\n}\n",
        &["-O2", "-fopenmp"],
    );
    let out = check(&openmp);
    out.assert_success();
    assert!(
        out.stdout.contains("\n  OpenMP (libgomp.so.1): a worker stuck in its own futex calls hands its other threads to a spare OS thread\n"),
        "{}",
        out.report()
    );
    for (name, value) in [("GREENIFY_TLS", "off"), ("GREENIFY_SLICE_MS", "0")] {
        let out = Cmd::new(wrapper_path())
            .arg("check")
            .arg(&openmp)
            .env("GREENIFY_LIB", lib_path())
            .env(name, value)
            .timeout(Duration::from_secs(20))
            .run();
        assert_eq!(out.status.code(), Some(2), "{}", out.report());
        assert!(
            out.stderr.contains("it loads libgomp.so.1 (OpenMP), whose threads wait with futex system calls of their own: with GREENIFY_TLS=off or GREENIFY_SLICE_MS=0 no spare OS thread takes over a worker stuck there, and a parallel region hangs greenified"),
            "{}",
            out.report()
        );
    }
    let run = Cmd::new(wrapper_path())
        .arg(&openmp)
        .env("GREENIFY_LIB", lib_path())
        .env("GREENIFY_TLS", "off")
        .env("OMP_NUM_THREADS", "1")
        .timeout(Duration::from_secs(20))
        .run();
    run.assert_success().assert_stdout("program ran\n");
    assert!(
        run.stderr.starts_with(&format!(
            "greenify: warning: {}: it loads libgomp.so.1 (OpenMP)",
            openmp.display()
        )),
        "{}",
        run.report()
    );

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let normal = compile_c_source("check_setuid_source", MAIN, &["-O2"]);
        let setuid = normal.with_file_name("check_setuid");
        let _ = std::fs::remove_file(&setuid);
        std::fs::copy(&normal, &setuid).expect("copy");
        std::os::unix::fs::chown(&setuid, Some(65534), Some(65534)).expect("chown");
        for mode in [0o4755, 0o2755] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            assert_check_refuses(&setuid, "setuid/setgid to another user or group: the loader ignores LD_PRELOAD for it (it runs natively)");
        }
    } else {
        println!("SKIPPED the setuid part: it needs root to make a program setuid to another user");
    }

    // A loader that says it is glibc 2.99 (and lists modules as the real one does).
    let loader = write_executable(
        "ld-linux-x86-64.so.2",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ld.so (GLIBC 2.99) stable release version 2.99.'; exit 0; fi\nexec /lib64/ld-linux-x86-64.so.2 \"$@\"\n",
    );
    let linker = format!("-Wl,--dynamic-linker={}", loader.display());
    let plain = compile_c_source("check_other_glibc", MAIN, &["-O2", &linker]);
    let out = check(&plain);
    out.assert_success();
    assert!(
        out.stdout.contains("\n  glibc 2.99, not the tested 2.36: green threads share the OS thread's TLS (none of its modules has TLS of its own)\n"),
        "{}",
        out.report()
    );
    let tls_source = "__thread int counter;\nint main(void) { return counter; }\n";
    let tls = compile_c_source("check_other_glibc_tls", tls_source, &["-O2", &linker]);
    assert_check_refuses(&tls, "glibc 2.99, not the tested 2.36, where green threads share the OS thread's TLS; but check_other_glibc_tls has thread-local data of its own, which every green thread would then share");

    let tls = compile_c_source("check_tls", tls_source, &["-O2"]);
    let out = check(&tls);
    out.assert_success();
    assert!(
        out.stdout.contains("\n  thread-local data of its own (check_tls): each green thread gets its own TCB and TLS (GREENIFY_TLS=auto)\n"),
        "{}",
        out.report()
    );
}
