//! Real multi-threaded programs of other languages and tools (`cdylib-tests/lang/`), each run
//! natively and greenified: both runs succeed and print the same stdout. Their runtimes keep
//! per-thread state in TLS (Rust's current thread, C++ `thread_local`, Ruby's execution
//! context, HotSpot's `Thread::current()`, V8's current isolate), wait with the futex system
//! call, or wait for children in `pselect` (make's jobserver). Everyday tools with threads
//! (xz, zstd, pigz, sort, git) give the native output byte for byte.
//!
//! A test whose runtime or tool is not installed prints `SKIPPED <test>: <reason>` on stderr
//! and passes (`.ci/run` installs them on a fresh machine).
//!
//! Every run is bounded: a program still running at its limit is killed with its process
//! group, and the test fails with the state of each of its OS threads just before (state,
//! system call), which tells a spin from a wait no hook saw.
//!
//! Run: `cargo test --release -p cdylib-tests --test languages` (builds libgreenify.so and
//! the Rust program itself). Two need what the monitor does: numpy with a 2-thread OpenBLAS
//! (preemption) and an OpenMP program (hand-off of a worker stuck in libgomp's own futex
//! system call); both hung greenified before.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdylib_tests::*;

/// One run of a program; natively each takes well under 2 s.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// A compiler or `cargo build` of the Rust program (its first build fetches rayon).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

fn lang_source(rel: &str) -> PathBuf {
    workspace_root().join("cdylib-tests").join("lang").join(rel)
}

/// `<target>/lang/NAME`, created empty when `fresh`.
fn build_dir(name: &str, fresh: bool) -> PathBuf {
    let dir = target_dir().join("lang").join(name);
    if fresh && dir.exists() {
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The executable file `program` in a directory of `PATH`, if there is one.
fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The reason to skip when one of `programs` is missing.
fn missing(programs: &[&str], install: &str) -> Option<String> {
    let absent: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_on_path(p).is_none())
        .collect();
    (!absent.is_empty()).then(|| format!("{} not installed ({install})", absent.join(", ")))
}

/// The reason to skip a Ruby test: no ruby, or one without WEBrick (a separate package since
/// Ruby 3.0).
fn ruby_webrick_missing() -> Option<String> {
    missing(&["ruby"], "apt-get install ruby ruby-webrick").or_else(|| {
        let webrick = Cmd::new("ruby")
            .args(["-e", "require 'webrick'"])
            .timeout(RUN_TIMEOUT)
            .run();
        (!webrick.status.success())
            .then(|| "ruby cannot load webrick (apt-get install ruby-webrick)".to_string())
    })
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// Runs a build step, failing the test with its output unless it succeeds.
#[track_caller]
fn build(cmd: Cmd) {
    cmd.timeout(BUILD_TIMEOUT).run().assert_success();
}

/// One line per OS thread of process `pid`: its id, name, state (R running, S sleeping, ...)
/// and the system call it is in (`/proc/PID/task/TID/syscall`: a number, or "running").
fn thread_states(pid: u32) -> String {
    // the calls a hung program is usually found in, by their x86-64 numbers
    const NAMES: [(&str, &str); 7] = [
        ("7", "poll"),
        ("24", "sched_yield"),
        ("35", "nanosleep"),
        ("202", "futex"),
        ("230", "clock_nanosleep"),
        ("232", "epoll_wait"),
        ("281", "epoll_pwait"),
    ];
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(process {pid} is gone)");
    };
    let mut lines: Vec<String> = tasks
        .flatten()
        .map(|task| {
            let dir = task.path();
            let stat = fs::read_to_string(dir.join("stat")).unwrap_or_default();
            // "TID (COMM) STATE ...": the name may hold spaces and parentheses
            let name = stat
                .find('(')
                .zip(stat.rfind(')'))
                .map_or("?", |(a, b)| &stat[a + 1..b]);
            let state = stat.rfind(')').map_or("?", |b| stat[b + 1..].trim_start());
            let state = state.split(' ').next().unwrap_or("?");
            let call = fs::read_to_string(dir.join("syscall")).unwrap_or_default();
            let number = call.split_whitespace().next().unwrap_or("?");
            let call = match NAMES.iter().find(|(n, _)| *n == number) {
                Some((_, known)) => format!("system call {number} ({known})"),
                None if number == "running" => "running (in no system call)".to_string(),
                None => format!("system call {number}"),
            };
            format!(
                "  thread {} {name:?}: state {state}, {call}",
                task.file_name().to_string_lossy()
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// Runs `cmd` for at most `limit`. A program that is still running then is described
/// ([`thread_states`]), killed with its process group, and the test fails saying it hung.
#[track_caller]
fn run_bounded(cmd: Cmd, limit: Duration) -> Output {
    let desc = cmd.describe();
    // the grace lets a program that finishes just at the limit be reaped, not killed
    let running = cmd.timeout(limit + Duration::from_secs(2)).spawn();
    let pid = running.pid();
    let started = Instant::now();
    // until it exits (a zombie: not reaped before wait_bounded) or the limit
    let exited = || {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rfind(')')
                .is_some_and(|b| s[b + 1..].trim_start().starts_with('Z'))
        })
    };
    while !exited() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    let states = (!exited()).then(|| thread_states(pid));
    match running.wait_bounded() {
        Ok(out) => out,
        Err(out) => panic!(
            "HANG: {desc} did not finish in {limit:?} and was killed; its OS threads then:\n{}\n{}",
            states.unwrap_or_default(),
            out.report()
        ),
    }
}

/// Runs the command `make` builds natively, then greenified: both exit 0, print the same
/// stdout, and that stdout ends with `last_line`. Returns the greenified run.
#[track_caller]
fn same_both_ways(make: impl Fn() -> Cmd, last_line: &str) -> Output {
    let native = run_bounded(make(), RUN_TIMEOUT);
    native.assert_success();
    assert!(
        native.stdout.ends_with(&format!("{last_line}\n")),
        "the native run did not get to its end\n{}",
        native.report()
    );
    let green = run_bounded(make().greenified(), RUN_TIMEOUT);
    green.assert_success();
    assert_same_stdout(&native, &green);
    green
}

/// std threads with names, a contended `Mutex`, `Condvar`, `mpsc`, `thread_local!` with a
/// destructor, `thread::scope`, `park`/`unpark` and a rayon pool.
#[test]
fn rust_std_threads_and_rayon() {
    let _g = shared();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = workspace_root().join("Cargo.toml");
    build(
        Cmd::new(&cargo)
            .arg("build")
            .arg("--release")
            .args(["-p", "lang-rust"])
            .arg("--manifest-path")
            .arg(&manifest),
    );
    let program = target_dir().join("release").join("lang-rust");
    let green = same_both_ways(|| Cmd::new(&program), "done");
    for line in [
        "thread_local counters: [(50, \"t0\"), (50, \"t1\"), (50, \"t2\"), (50, \"t3\")]\n",
        "thread_local destructors ran for: [0, 1, 2, 3]\n",
        "mutex total: 40080\n",
    ] {
        assert!(
            green.stdout.contains(line),
            "{line:?} missing\n{}",
            green.report()
        );
    }
}

/// `thread_local` objects with constructors and destructors, `std::mutex`,
/// `std::condition_variable`, `std::async`, distinct `std::thread::id`s, `std::latch` and
/// C++20 `std::atomic::wait`/`notify`.
#[test]
fn cpp_thread_local_mutex_condvar_async_atomic_wait() {
    let _g = shared();
    if let Some(why) = missing(&["g++"], "apt-get install g++") {
        return skip("cpp_thread_local_mutex_condvar_async_atomic_wait", &why);
    }
    let program = build_dir("cpp", false).join("threads");
    build(
        Cmd::new("g++")
            .args([
                "-std=c++20",
                "-O2",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pthread",
                "-o",
            ])
            .arg(&program)
            .arg(lang_source("cpp/threads.cpp")),
    );
    let green = same_both_ways(|| Cmd::new(&program), "done");
    for line in [
        "thread_local counters: 50 50 50 50\n",
        "thread_local constructed 4, destroyed for: 0 1 2 3\n",
        "distinct std::thread::id: 4 (main's differs: 1)\n",
    ] {
        assert!(
            green.stdout.contains(line),
            "{line:?} missing\n{}",
            green.report()
        );
    }
}

/// Ruby threads with Mutex, Queue, SizedQueue, ConditionVariable and thread-locals, then a
/// threaded WEBrick server answering 200 requests from 8 client threads.
#[test]
fn ruby_threads_and_webrick_server() {
    let _g = shared();
    let test = "ruby_threads_and_webrick_server";
    if let Some(why) = ruby_webrick_missing() {
        return skip(test, &why);
    }
    let script = lang_source("ruby/threads.rb");
    let green = same_both_ways(|| Cmd::new("ruby").arg(&script), "done");
    assert!(
        green
            .stdout
            .contains("webrick: 200 of 200 requests answered right\n"),
        "{}",
        green.report()
    );
}

/// Asks `GET /square?n=N` on a fresh connection: whether the answer is `200` with N*N.
fn square_request(port: u16, n: u64) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(RUN_TIMEOUT))?;
    write!(s, "GET /square?n={n} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body);
    Ok(answer.starts_with("HTTP/1.1 200 ") && body == Some((n * n).to_string().as_str()))
}

/// A threaded WEBrick server under load from another process: 16 client threads, each
/// asking 20 questions on fresh connections, all answered right natively and greenified.
#[test]
fn ruby_webrick_server_under_load() {
    const CLIENTS: u64 = 16;
    const REQUESTS: u64 = 20;
    let _g = shared();
    let test = "ruby_webrick_server_under_load";
    if let Some(why) = ruby_webrick_missing() {
        return skip(test, &why);
    }
    let script = lang_source("ruby/webrick_server.rb");
    let ruby = find_on_path("ruby").expect("found above");
    for mode in Mode::BOTH {
        let mut server = Server::start_with_args(&ruby, &[script.as_os_str()], mode, &[]);
        let port = server.port;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                std::thread::spawn(move || {
                    (0..REQUESTS)
                        .filter(|r| square_request(port, c * REQUESTS + r).unwrap_or(false))
                        .count() as u64
                })
            })
            .collect();
        let right: u64 = clients
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .sum();
        server.assert_alive();
        assert_eq!(
            right,
            CLIENTS * REQUESTS,
            "[{mode}] right answers\n{}",
            server.report()
        );
    }
}

/// A JVM running threads with `synchronized`, wait/notify, `ThreadLocal`, an
/// `ExecutorService`, a bounded queue and a `ReentrantLock`.
#[test]
fn java_threads_monitors_and_executor() {
    let _g = shared();
    if let Some(why) = missing(
        &["java", "javac"],
        "apt-get install openjdk-17-jdk-headless",
    ) {
        return skip("java_threads_monitors_and_executor", &why);
    }
    let classes = build_dir("java", true);
    build(
        Cmd::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg(lang_source("java/Threads.java")),
    );
    // A crashing JVM writes hs_err_PID.log into its working directory: keep it in target/.
    let error_file = format!("-XX:ErrorFile={}/hs_err_%p.log", classes.display());
    let green = same_both_ways(
        || {
            Cmd::new("java")
                .arg(&error_file)
                .arg("-cp")
                .arg(&classes)
                .arg("Threads")
        },
        "done",
    );
    assert!(
        green.stdout.contains("synchronized total: 40080\n"),
        "{}",
        green.report()
    );
}

/// node `worker_threads`: three isolates take turns through `Atomics.wait`, allocate and post
/// messages back.
#[test]
fn node_worker_threads_take_turns_and_post_messages() {
    let _g = shared();
    if let Some(why) = missing(&["node"], "apt-get install nodejs") {
        return skip("node_worker_threads_take_turns_and_post_messages", &why);
    }
    let script = lang_source("node/workers.js");
    let green = same_both_ways(|| Cmd::new("node").arg(&script), "done");
    assert!(
        green.stdout.starts_with("messages: 90, rounds done: 90\n"),
        "{}",
        green.report()
    );
}

/// Writes a Makefile whose six parts each run several recipe lines that sleep and write
/// files, and a summary that needs them all.
fn write_makefile(dir: &Path) {
    let makefile = "PARTS := p1 p2 p3 p4 p5 p6\n\
        all: summary\n\
        summary: $(PARTS)\n\
        \tcat $(PARTS) > $@\n\
        \techo built $$(wc -l < $@) lines from $(words $(PARTS)) parts\n\
        $(PARTS):\n\
        \tsleep 0.05\n\
        \techo start $@ > $@.tmp\n\
        \tsleep 0.05\n\
        \techo $@ done >> $@.tmp\n\
        \tmv $@.tmp $@\n";
    fs::write(dir.join("Makefile"), makefile).expect("writing the Makefile");
}

/// `make -j2`: the jobserver waits for its children in `pselect` with SIGCHLD unblocked only
/// by the call's mask.
#[test]
fn make_j2_runs_parallel_recipes() {
    let _g = shared();
    if let Some(why) = missing(&["make"], "apt-get install make") {
        return skip("make_j2_runs_parallel_recipes", &why);
    }
    let mut summaries = Vec::new();
    for mode in Mode::BOTH {
        let dir = build_dir(&format!("make-{mode}"), true);
        write_makefile(&dir);
        let out = Cmd::new("make")
            .args(["-s", "-j2", "--no-print-directory", "-C"])
            .arg(&dir)
            .mode(mode)
            .timeout(RUN_TIMEOUT)
            .run();
        out.assert_success()
            .assert_stdout("built 12 lines from 6 parts\n");
        summaries.push(fs::read_to_string(dir.join("summary")).expect("summary written"));
    }
    assert_eq!(summaries[0], summaries[1]);
    assert!(summaries[1].ends_with("p6 done\n"), "{}", summaries[1]);
}

/// Writes a tree of 10 directories of 20 files; line `l` of file `f` in directory `d` holds
/// the needle when (d * 20 + f + l) is a multiple of 7.
fn write_search_tree(root: &Path) {
    for d in 0..10 {
        let dir = root.join(format!("d{d}"));
        fs::create_dir_all(&dir).expect("creating the tree");
        for f in 0..20 {
            let text: String = (0..31)
                .map(|l| match (d * 20 + f + l) % 7 {
                    0 => format!("line {l} has a needle\n"),
                    _ => format!("line {l} is hay\n"),
                })
                .collect();
            fs::write(dir.join(format!("f{f}.txt")), text).expect("writing the tree");
        }
    }
}

/// `rg -j2`: ripgrep's directory walker and searchers on two threads (Rust std threads and
/// crossbeam channels). Its output order depends on the threads, so lines are compared sorted.
#[test]
fn ripgrep_j2_searches_a_tree() {
    let _g = shared();
    if let Some(why) = missing(&["rg"], "apt-get install ripgrep") {
        return skip("ripgrep_j2_searches_a_tree", &why);
    }
    let root = build_dir("rg-tree", true);
    write_search_tree(&root);
    let mut results = Vec::new();
    for mode in Mode::BOTH {
        let out = Cmd::new("rg")
            .args(["-j2", "--no-config", "-c", "needle"])
            .arg(&root)
            .mode(mode)
            .timeout(RUN_TIMEOUT)
            .run();
        out.assert_success();
        let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        lines.sort();
        results.push((lines, out));
    }
    let (native, green) = (&results[0], &results[1]);
    assert_eq!(native.0.len(), 200, "{}", native.1.report());
    assert!(
        native.0 == green.0,
        "rg -j2 found other matches greenified\n{}\n{}",
        native.1.report(),
        green.1.report()
    );
}

/// A `#pragma omp parallel` program (libgomp): a reduction, barrier-separated phases, a
/// critical section and a dynamic parallel for, in a team of 4, with the default
/// configuration (a worker per CPU; green threads have TCBs of their own, which a spare OS
/// thread needs).
/// libgomp waits with its own `futex` system call, which no hook sees: the worker's OS
/// thread blocks, and only the hand-off of its other threads to a spare OS thread lets
/// the team go on (it hung before).
#[test]
fn openmp_parallel_reduction_barrier_critical() {
    let _g = shared();
    let test = "openmp_parallel_reduction_barrier_critical";
    if let Some(why) = missing(&["gcc"], "apt-get install gcc") {
        return skip(test, &why);
    }
    let program = build_dir("openmp", false).join("parallel");
    let compiled = Cmd::new("gcc")
        .args(["-fopenmp", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg(lang_source("openmp/parallel.c"))
        .timeout(BUILD_TIMEOUT)
        .run();
    if !compiled.status.success() {
        let why = format!(
            "gcc -fopenmp cannot build it, libgomp missing? (apt-get install libgomp1 \
             libgcc-12-dev): {}",
            clip(&compiled.stderr)
        );
        return skip(test, &why);
    }
    let green = same_both_ways(|| Cmd::new(&program), "done");
    for line in [
        "team: 4\n",
        "reduction: 1999998\n",
        "barrier phases: 50, wrong reads: 0\n",
        "critical: 40000 (per thread: 10000 10000 10000 10000)\n",
    ] {
        assert!(
            green.stdout.contains(line),
            "{line:?} missing\n{}",
            green.report()
        );
    }
}

/// The python of a venv under `<target>/lang/numpy-venv` with numpy from PyPI (installed on
/// first use), or why there is none.
fn numpy_python() -> Result<PathBuf, String> {
    let venv = target_dir().join("lang").join("numpy-venv");
    let python = venv.join("bin").join("python");
    let has_numpy = || {
        python.is_file()
            && Cmd::new(&python)
                .args(["-c", "import numpy"])
                .timeout(RUN_TIMEOUT)
                .run()
                .status
                .success()
    };
    if has_numpy() {
        return Ok(python);
    }
    let steps = [
        Cmd::new(python3()).args(["-m", "venv"]).arg(&venv),
        Cmd::new(&python).args(["-m", "pip", "install", "--quiet", "numpy"]),
    ];
    for step in steps {
        let what = step.describe();
        match step.timeout(BUILD_TIMEOUT).spawn().wait_bounded() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("{what} failed: {}", clip(&out.stderr))),
            Err(_) => return Err(format!("{what} timed out")),
        }
    }
    if has_numpy() {
        Ok(python)
    } else {
        Err("numpy installed but cannot be imported".to_string())
    }
}

/// numpy's `linalg.solve` on a 500x500 system and a matrix product, OpenBLAS with 2 threads.
/// The caller spins on a flag OpenBLAS's worker thread clears: only preemption lets that
/// thread run (it hung before).
#[test]
fn numpy_linalg_solve_with_two_openblas_threads() {
    let _g = shared();
    let test = "numpy_linalg_solve_with_two_openblas_threads";
    let python = match numpy_python() {
        Ok(python) => python,
        Err(why) => return skip(test, &why),
    };
    let script = lang_source("python/numpy_solve.py");
    let green = same_both_ways(
        || {
            Cmd::new(&python)
                .arg(&script)
                .env("OPENBLAS_NUM_THREADS", "2")
        },
        "done",
    );
    for line in ["max error below 1e-9: True\n", "checksum: 250.500000\n"] {
        assert!(
            green.stdout.contains(line),
            "{line:?} missing\n{}",
            green.report()
        );
    }
}

/// `count` lines of words drawn from a small vocabulary by a fixed generator: text that
/// compresses like prose and sorts with many equal keys.
fn write_word_text(path: &Path, count: usize) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<String> = (0..3000)
        .map(|_| {
            let len = 2 + next() % 8;
            (0..len)
                .map(|_| (b'a' + (next() % 10) as u8) as char)
                .collect()
        })
        .collect();
    let mut text = String::with_capacity(count * 48);
    for _ in 0..count {
        for w in 0..8 {
            if w > 0 {
                text.push(' ');
            }
            text.push_str(&words[(next() % words.len() as u64) as usize]);
        }
        text.push('\n');
    }
    fs::write(path, text).expect("writing the input text");
}

/// The stats line of the process named `program` in a greenified run's stderr (each
/// process of a pipeline prints its own).
#[track_caller]
fn stats_of(program: &str, out: &Output) -> std::collections::BTreeMap<String, u64> {
    stats_lines_with(&out.stderr, "program", program)
        .next()
        .unwrap_or_else(|| panic!("no stats line of {program}\n{}", out.report()))
}

/// `xz -T2`, `zstd -T2`, `pigz -p 2`, `lbzip2 -n 2`, `pbzip2 -p2`, 7-Zip's `7zz -mmt2`
/// and `sort --parallel=2` on 10 MiB of text: each tool's threads (a thread per block, per
/// job, per sorted half) run as green threads on the workers, and every output is byte for
/// byte the native one (the compressors' output does not depend on their threads'
/// timing); each compressed file also unpacks to the input. pbzip2 ends by pthread_kill'ing
/// its terminator thread, which waits in sigwait for the SIGUSR1 every thread blocks.
#[test]
fn compressors_and_sort_with_two_threads_give_the_native_output() {
    let _g = shared();
    let test = "compressors_and_sort_with_two_threads_give_the_native_output";
    if let Some(why) = missing(
        &["xz", "zstd", "pigz", "lbzip2", "pbzip2", "7zz", "sort"],
        "apt-get install xz-utils zstd pigz lbzip2 pbzip2 7zip",
    ) {
        return skip(test, &why);
    }
    let dir = build_dir("tools", true);
    write_word_text(&dir.join("input"), 200_000);
    // (program, its arguments: input on stdin, output on stdout, how it unpacks)
    let tools: [(&str, &str, Option<&str>); 7] = [
        ("xz", "xz -T2 -1 --block-size=1MiB -c", Some("xz -d -c")),
        ("zstd", "zstd -T2 -3 -B1MiB -c -q", Some("zstd -d -c -q")),
        ("pigz", "pigz -p 2 -b 256 -c", Some("pigz -d -c")),
        ("lbzip2", "lbzip2 -n 2 -c", Some("lbzip2 -d -c")),
        ("pbzip2", "pbzip2 -p2 -b9 -c", Some("pbzip2 -d -c")),
        // An xz stream from 7-Zip's own threads (its archive formats carry times).
        (
            "7zz",
            "7zz a -txz -mmt2 -mx1 -si -so -bd unused",
            Some("xz -d -c"),
        ),
        // sort uses threads only for a buffer of at least 128 Ki lines (coreutils'
        // SUBTHREAD_LINES_HEURISTIC): 200,000 lines in one 32 MiB buffer.
        ("sort", "LC_ALL=C sort --parallel=2 -S 32M", None),
    ];
    for (program, command, unpack) in tools {
        let run = |mode: Mode| {
            let out = format!("{program}-{mode}");
            let script = format!("{command} < input > {out}");
            let result = run_bounded(
                Cmd::new("sh")
                    .args(["-c", &script])
                    .dir(&dir)
                    .env("GREENIFY_STATS", "1")
                    .mode(mode),
                RUN_TIMEOUT,
            );
            result.assert_success();
            (fs::read(dir.join(&out)).expect("the tool's output"), result)
        };
        let (native, _) = run(Mode::Native);
        let (green, run) = run(Mode::Greenified);
        assert!(
            native == green,
            "{command}: the greenified output differs ({} bytes against {} natively)\n{}",
            green.len(),
            native.len(),
            run.report()
        );
        let stats = stats_of(program, &run);
        assert!(
            stat(&stats, "threads_created") >= 1,
            "{command} ran no thread greenified: {stats:?}\n{}",
            run.report()
        );
        assert_greenified_os_threads(
            command,
            &stats,
            stat(&stats, "spares_started"),
            None,
            &run.report(),
        );
        if let Some(unpack) = unpack {
            let script = format!("{unpack} < {program}-greenified | cmp -s - input");
            run_bounded(Cmd::new("sh").args(["-c", &script]).dir(&dir), RUN_TIMEOUT)
                .assert_success();
        }
    }
}

/// git with two threads where it uses them (`pack.threads` in repack and gc, `grep.threads`
/// in grep), on a repository of 300 files in 3 commits made with fixed dates: the commit
/// ids, `fsck --full --strict`, the object counts, a grep and the archive's checksum are
/// the native ones; git's own child processes (pack-objects) run greenified too.
#[test]
fn git_repack_gc_grep_with_two_threads() {
    let _g = shared();
    let test = "git_repack_gc_grep_with_two_threads";
    if let Some(why) = missing(&["git", "md5sum"], "apt-get install git") {
        return skip(test, &why);
    }
    let script = r#"set -e
export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b
export GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z
export GIT_CONFIG_NOSYSTEM=1 HOME=$PWD
git init -q -b main .
for c in 1 2 3; do
  i=0
  while [ $i -lt 100 ]; do seq $((i * c)) $((i * c + 400)) > f$c-$i.txt; i=$((i + 1)); done
  git add -A
  git commit -q -m "commit $c"
done
git -c pack.threads=2 repack -q -a -d -f --window=50
git -c pack.threads=2 gc -q --aggressive
git fsck --full --strict
git count-objects -v | grep -v size
git log --format='%H %s'
git -c grep.threads=2 grep -c '^69' HEAD | sort | head -5
git archive HEAD | md5sum
echo done"#;
    let run = |mode: Mode| {
        let dir = build_dir(&format!("git-{mode}"), true);
        let out = run_bounded(
            Cmd::new("sh")
                .args(["-c", script])
                .dir(&dir)
                .env("GREENIFY_STATS", "1")
                .mode(mode),
            RUN_TIMEOUT,
        );
        out.assert_success();
        out
    };
    let native = run(Mode::Native);
    assert!(native.stdout.ends_with("done\n"), "{}", native.report());
    let green = run(Mode::Greenified);
    assert_same_stdout(&native, &green);
    let threaded = stats_lines_with(&green.stderr, "program", "git")
        .filter(|stats| stat(stats, "threads_created") >= 1)
        .count();
    assert!(
        threaded >= 2,
        "want repack's and grep's threads greenified, {threaded} git processes ran threads\n{}",
        green.report()
    );
}
