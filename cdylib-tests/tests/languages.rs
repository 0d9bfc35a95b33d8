//! Real multi-threaded programs of other languages and tools (`cdylib-tests/lang/`), each run
//! natively and greenified: both runs succeed and print the same stdout. Their runtimes keep
//! per-thread state in TLS (Rust's current thread, C++ `thread_local`, Ruby's execution
//! context, HotSpot's `Thread::current()`, V8's current isolate), wait with the futex system
//! call, or wait for children in `pselect` (make's jobserver). Everyday tools with threads
//! (xz, zstd, pigz, sort, git) give the native output byte for byte; threaded servers
//! (memcached, redis-server) answer many connections at once with the right data.
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

/// A server program started on a free loopback port, with `GREENIFY_STATS=1`.
struct Daemon {
    running: Running,
    port: u16,
    what: String,
}

impl Daemon {
    /// Starts what `make(port)` builds in `mode` and waits (at most 10 s) until the port
    /// takes a connection.
    #[track_caller]
    fn start(make: impl Fn(u16) -> Cmd, mode: Mode) -> Daemon {
        // a port the kernel just handed out and that nobody holds now
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cmd = make(port)
            .env("GREENIFY_STATS", "1")
            .mode(mode)
            .timeout(RUN_TIMEOUT);
        let what = format!("[{mode}] {}", cmd.describe());
        let running = cmd.spawn();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                let out = running.wait_bounded().unwrap_or_else(|out| out);
                panic!("{what} did not listen on {port}\n{}", out.report());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            running,
            port,
            what,
        }
    }

    /// A new client connection, with timeouts so that a server that stops answering fails
    /// the test instead of hanging it.
    fn connect(&self) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.what));
        s.set_read_timeout(Some(RUN_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(RUN_TIMEOUT)).expect("timeout");
        s
    }

    /// Stops it with SIGTERM: it must exit with status 0 (greenified: print its stats line).
    #[track_caller]
    fn stop(self) -> Output {
        // SAFETY: kill(2) of our own child, which is not reaped before wait_bounded.
        unsafe { libc::kill(self.running.pid() as libc::pid_t, libc::SIGTERM) };
        let out = self.running.wait_bounded().unwrap_or_else(|out| {
            panic!("{} did not exit after SIGTERM\n{}", self.what, out.report())
        });
        out.assert_success();
        out
    }
}

/// Client connections from test threads, `clients` at once, each running `body(client
/// number)`; returns the bodies' results in client order.
fn from_clients<T: Send + 'static>(
    clients: usize,
    body: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let body = std::sync::Arc::new(body);
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let body = body.clone();
            std::thread::spawn(move || body(c))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

/// One line (without its `\r\n`) of a text protocol.
fn read_line(r: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("reading a reply line");
    line.trim_end_matches("\r\n").to_string()
}

/// memcached's text protocol on one connection: `set`, multi-key `get`, `incr`.
struct Memcache {
    w: std::net::TcpStream,
    r: std::io::BufReader<std::net::TcpStream>,
}

impl Memcache {
    fn new(s: std::net::TcpStream) -> Memcache {
        let r = std::io::BufReader::new(s.try_clone().expect("clone"));
        Memcache { w: s, r }
    }

    /// Sends `text` and returns the first line of the answer.
    fn ask(&mut self, text: &[u8]) -> String {
        use std::io::Write;
        self.w.write_all(text).expect("sending a command");
        read_line(&mut self.r)
    }

    /// The values of `keys` that the server has, by key.
    fn get(&mut self, keys: &[String]) -> std::collections::BTreeMap<String, Vec<u8>> {
        use std::io::Read;
        let mut line = self.ask(format!("get {}\r\n", keys.join(" ")).as_bytes());
        let mut found = std::collections::BTreeMap::new();
        while line != "END" {
            // VALUE <key> <flags> <bytes>
            let fields: Vec<&str> = line.split(' ').collect();
            assert!(
                fields.len() == 4 && fields[0] == "VALUE",
                "get answered {line:?}"
            );
            let mut data = vec![0u8; fields[3].parse::<usize>().expect("length") + 2];
            self.r.read_exact(&mut data).expect("a value");
            data.truncate(data.len() - 2);
            found.insert(fields[1].to_string(), data);
            line = read_line(&mut self.r);
        }
        found
    }
}

/// memcached with 2 worker threads (`-t 2`), each with its own libevent loop, the
/// dispatcher handing new connections over a pipe: 24 connections at once each store 60
/// values of their own (1 to 2,000 bytes) and read them back with multi-key gets; all
/// increment one counter. Every value comes back, the counter is exact, and the server
/// stops on SIGTERM, natively and greenified.
#[test]
fn memcached_two_threads_serves_many_connections() {
    const CLIENTS: usize = 24;
    const KEYS: usize = 60;
    let _g = shared();
    let test = "memcached_two_threads_serves_many_connections";
    if let Some(why) = missing(&["memcached"], "apt-get install memcached") {
        return skip(test, &why);
    }
    let value = |c: usize, k: usize| format!("{c}:{k};").repeat(1 + (c * 7 + k * 13) % 400);
    for mode in Mode::BOTH {
        let server = Daemon::start(
            |port| {
                Cmd::new("memcached").args([
                    "-u",
                    "root",
                    "-l",
                    "127.0.0.1",
                    "-U",
                    "0",
                    "-t",
                    "2",
                    "-p",
                    &port.to_string(),
                ])
            },
            mode,
        );
        let conns: Vec<_> = (0..CLIENTS).map(|_| server.connect()).collect();
        let conns = std::sync::Mutex::new(conns);
        let wrong = from_clients(CLIENTS, move |c| {
            let mut mc = Memcache::new(conns.lock().expect("conns").pop().expect("a conn"));
            let mut wrong = Vec::new();
            mc.ask(b"add counter 0 0 1\r\n0\r\n");
            for k in 0..KEYS {
                let v = value(c, k);
                let stored = mc.ask(format!("set k{c}-{k} 0 0 {}\r\n{v}\r\n", v.len()).as_bytes());
                if stored != "STORED" {
                    wrong.push(format!("set k{c}-{k}: {stored}"));
                }
                mc.ask(b"incr counter 1\r\n");
            }
            for batch in (0..KEYS).collect::<Vec<_>>().chunks(15) {
                let keys: Vec<String> = batch.iter().map(|k| format!("k{c}-{k}")).collect();
                let found = mc.get(&keys);
                for &k in batch {
                    if found.get(&format!("k{c}-{k}")).map(Vec::as_slice)
                        != Some(value(c, k).as_bytes())
                    {
                        wrong.push(format!("k{c}-{k}"));
                    }
                }
            }
            wrong
        });
        let wrong: Vec<String> = wrong.into_iter().flatten().collect();
        let mut mc = Memcache::new(server.connect());
        let counter = mc.get(&["counter".to_string()]);
        let what = server.what.clone();
        let out = server.stop();
        assert!(
            wrong.is_empty(),
            "{what}: wrong or missing: {wrong:?}\n{}",
            out.report()
        );
        assert_eq!(
            counter
                .get("counter")
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            Some((CLIENTS * KEYS).to_string()),
            "{what}: the shared counter\n{}",
            out.report()
        );
        if mode == Mode::Greenified {
            let stats = stats_of("memcached", &out);
            assert!(
                stat(&stats, "threads_created") >= 2,
                "{stats:?}\n{}",
                out.report()
            );
        }
    }
}

/// A Redis reply.
#[derive(Debug, PartialEq, Eq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

/// Redis's protocol (RESP2) on one connection.
struct Redis {
    w: std::net::TcpStream,
    r: std::io::BufReader<std::net::TcpStream>,
}

impl Redis {
    fn new(s: std::net::TcpStream) -> Redis {
        let r = std::io::BufReader::new(s.try_clone().expect("clone"));
        Redis { w: s, r }
    }

    /// Sends each command of `commands` (pipelined), then reads one reply per command.
    fn ask(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Resp> {
        use std::io::Write;
        let mut out = Vec::new();
        for cmd in commands {
            out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for arg in cmd {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.w.write_all(&out).expect("sending commands");
        commands.iter().map(|_| self.reply()).collect()
    }

    /// One command given as words.
    fn one(&mut self, words: &[&str]) -> Resp {
        let cmd = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        self.ask(&[cmd]).pop().expect("one reply")
    }

    fn reply(&mut self) -> Resp {
        use std::io::Read;
        let line = read_line(&mut self.r);
        let (kind, rest) = line.split_at(1);
        let number = || {
            rest.parse::<i64>()
                .unwrap_or_else(|_| panic!("reply {line:?}"))
        };
        match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(number()),
            "$" if number() < 0 => Resp::Bulk(None),
            "$" => {
                let mut data = vec![0u8; number() as usize + 2];
                self.r.read_exact(&mut data).expect("a bulk reply");
                data.truncate(data.len() - 2);
                Resp::Bulk(Some(data))
            }
            "*" => Resp::Array((0..number().max(0)).map(|_| self.reply()).collect()),
            _ => panic!("not a RESP reply: {line:?}"),
        }
    }

    /// The value of `field` in `INFO section`.
    fn info(&mut self, section: &str, field: &str) -> String {
        let Resp::Bulk(Some(text)) = self.one(&["INFO", section]) else {
            panic!("INFO {section} did not answer text");
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
            .to_string()
    }
}

/// redis-server with 2 I/O threads that also read (`--io-threads 2 --io-threads-do-reads
/// yes`; they spin on an atomic counter, then sleep on a mutex the main thread holds), 24
/// connections at once, each pipelining SETs, RPUSHes and INCRs and reading its values back;
/// then BGSAVE forks a child that writes the data set while the server goes on answering.
/// Every value and count is right, the save succeeds, and the server stops on SIGTERM,
/// natively and greenified.
#[test]
fn redis_io_threads_and_background_save() {
    const CLIENTS: usize = 24;
    const KEYS: usize = 100;
    let _g = shared();
    let test = "redis_io_threads_and_background_save";
    if let Some(why) = missing(&["redis-server"], "apt-get install redis-server") {
        return skip(test, &why);
    }
    let value = |c: usize, k: usize| format!("{c}/{k}|").repeat(1 + (c * 5 + k * 11) % 300);
    for mode in Mode::BOTH {
        let dir = build_dir(&format!("redis-{mode}"), true);
        let server = Daemon::start(
            |port| {
                Cmd::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--io-threads", "2", "--io-threads-do-reads", "yes"])
                    .args([
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dbfilename",
                        "dump.rdb",
                    ])
                    .args(["--logfile", "server.log"])
                    .arg("--dir")
                    .arg(&dir)
            },
            mode,
        );
        let conns: Vec<_> = (0..CLIENTS).map(|_| server.connect()).collect();
        let conns = std::sync::Mutex::new(conns);
        let wrong = from_clients(CLIENTS, move |c| {
            let mut redis = Redis::new(conns.lock().expect("conns").pop().expect("a conn"));
            let mut wrong = Vec::new();
            for batch in (0..KEYS).collect::<Vec<_>>().chunks(10) {
                let mut cmds = Vec::new();
                for &k in batch {
                    let key = format!("k{c}-{k}").into_bytes();
                    cmds.push(vec![b"SET".to_vec(), key, value(c, k).into_bytes()]);
                    cmds.push(vec![
                        b"RPUSH".to_vec(),
                        format!("list{c}").into_bytes(),
                        k.to_string().into_bytes(),
                    ]);
                    cmds.push(vec![b"INCR".to_vec(), b"counter".to_vec()]);
                }
                for reply in redis.ask(&cmds) {
                    if matches!(reply, Resp::Error(_)) {
                        wrong.push(format!("{reply:?}"));
                    }
                }
            }
            let gets: Vec<_> = (0..KEYS)
                .map(|k| vec![b"GET".to_vec(), format!("k{c}-{k}").into_bytes()])
                .collect();
            for (k, reply) in redis.ask(&gets).into_iter().enumerate() {
                if reply != Resp::Bulk(Some(value(c, k).into_bytes())) {
                    wrong.push(format!("k{c}-{k}"));
                }
            }
            let list = redis.one(&["LRANGE", &format!("list{c}"), "0", "-1"]);
            let want: Vec<Resp> = (0..KEYS)
                .map(|k| Resp::Bulk(Some(k.to_string().into_bytes())))
                .collect();
            if list != Resp::Array(want) {
                wrong.push(format!("list{c}"));
            }
            wrong
        });
        let wrong: Vec<String> = wrong.into_iter().flatten().collect();
        let mut redis = Redis::new(server.connect());
        let counter = redis.one(&["GET", "counter"]);
        // BGSAVE: a forked child writes the data set while the server goes on answering
        let save = redis.one(&["BGSAVE"]);
        let started = Instant::now();
        let mut during = 0;
        while redis.info("persistence", "rdb_bgsave_in_progress") != "0" {
            assert!(
                started.elapsed() < RUN_TIMEOUT,
                "{}: BGSAVE did not end",
                server.what
            );
            during += usize::from(matches!(redis.one(&["INCR", "during"]), Resp::Int(_)));
        }
        let status = redis.info("persistence", "rdb_last_bgsave_status");
        let keys = redis.one(&["DBSIZE"]);
        let what = server.what.clone();
        let out = server.stop();
        let report = || {
            format!(
                "{}\n--- server.log ---\n{}",
                out.report(),
                fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            )
        };
        assert!(
            wrong.is_empty(),
            "{what}: wrong or missing: {wrong:?}\n{}",
            report()
        );
        assert_eq!(
            counter,
            Resp::Bulk(Some((CLIENTS * KEYS).to_string().into_bytes())),
            "{what}: the shared counter\n{}",
            report()
        );
        assert_eq!(
            save,
            Resp::Simple("Background saving started".into()),
            "{what}\n{}",
            report()
        );
        assert_eq!(
            status,
            "ok",
            "{what}: BGSAVE ({during} commands answered during it)\n{}",
            report()
        );
        let expect_keys = CLIENTS * KEYS + CLIENTS + 1 + usize::from(during > 0);
        assert_eq!(
            keys,
            Resp::Int(expect_keys as i64),
            "{what}: keys\n{}",
            report()
        );
        let rdb = fs::metadata(dir.join("dump.rdb"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            rdb > (CLIENTS * KEYS * 10) as u64,
            "{what}: dump.rdb has {rdb} bytes\n{}",
            report()
        );
        if mode == Mode::Greenified {
            // the server's line and the BGSAVE child's (which starts no thread)
            let threads = stats_lines_with(&out.stderr, "program", "redis-server")
                .map(|stats| stat(&stats, "threads_created"))
                .max();
            assert!(
                threads >= Some(2),
                "{what}: I/O threads greenified\n{}",
                report()
            );
        }
    }
}
