//! Looking inside a running greenified process: `greenify dump PID` names every green
//! thread with its wait and its stack, `greenify stats PID [--json]` reads the counters
//! live, a process that cannot answer is told apart (and untouched), and with
//! `GREENIFY_STATS=1` a process stopped by SIGTERM, SIGINT or SIGHUP still prints its
//! stats line and dies as natively, and a forked child's line counts the child's own
//! life.
//!
//! Run: `cargo test --release -p cdylib-tests --test observe`.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test waits for a program to reach the state it checks.
const SETTLE: Duration = Duration::from_secs(20);

/// `greenify ARGS...` through the wrapper.
fn greenify(args: &[&str]) -> Output {
    ctl_path();
    lib_path();
    Cmd::new(wrapper_path()).args(args).timeout(TIMEOUT).run()
}

/// Runs `check` on `greenify ARGS` until it says the state is reached, or fails with the
/// last output.
fn until(args: &[&str], check: impl Fn(&Output) -> Result<(), String>) -> Output {
    let start = Instant::now();
    loop {
        let out = greenify(args);
        match check(&out) {
            Ok(()) => return out,
            Err(why) if start.elapsed() > SETTLE => panic!("{why}\n{}", out.report()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The dump's block (header line and frames) of the thread named `name`.
fn block<'a>(dump: &'a str, name: &str) -> Result<&'a str, String> {
    dump.split("\n\n")
        .find(|b| b.starts_with("thread ") && b.contains(&format!(" \"{name}\" ")))
        .ok_or_else(|| format!("no thread named {name} in the dump"))
}

fn expect(block: &str, what: &[&str]) -> Result<(), String> {
    match what.iter().find(|w| !block.contains(*w)) {
        Some(w) => Err(format!("{w:?} missing from:\n{block}")),
        None => Ok(()),
    }
}

/// Threads parked in read on a pipe, in pthread_mutex_lock on a mutex main holds, in
/// nanosleep, one spinning, and main in pthread_join: each is named with its wait and the
/// program's own (static) function on its stack, with file:line. With the default workers
/// (one per CPU) the spinner computes on one worker while another may answer: the answer
/// makes it stand still with its registers recorded (runtime/sched/look.rs), so every
/// dump shows its frames, though it never switched (before, a dump answered by the other
/// worker showed it without frames: with main's library of then, 12 runs in 15 failed,
/// and 15 in 15 of the two-spinner test below; the one-worker test passed).
#[test]
fn dump_names_each_thread_its_wait_and_its_functions() {
    dump_shows_every_thread(None, &["spinner"]);
}

/// As above with a second spinner, mostly inside libc's memset: with two workers no worker
/// is idle, the preemption of one spinner answers and the other is looked at, in libc or
/// in the program's code.
#[test]
fn dump_shows_the_frames_of_two_spinners() {
    dump_shows_every_thread(None, &["spinner", "spinner2"]);
}

/// As above with one worker, where the spinners' own preemptions answer.
#[test]
fn dump_names_each_thread_its_wait_and_its_functions_with_one_worker() {
    dump_shows_every_thread(Some("1"), &["spinner", "spinner2"]);
}

/// As above with one worker whose one running thread computes all but always inside
/// libc (a megabyte's memset), where it may not be switched away: the dump is answered
/// from where the preemption signal finds it. Before, only a signal that came in the
/// program's code between two memsets answered, which took seconds (a dump failed after
/// 3 s in 4 runs of 5).
#[test]
fn dump_is_answered_while_the_one_worker_computes_in_libc() {
    dump_shows_every_thread(Some("1"), &["inlibc"]);
}

/// Dumps after the program settled that must each show every thread (see above).
const DUMPS: usize = 5;

fn dump_shows_every_thread(workers: Option<&str>, spinners: &[&str]) {
    let _serial = shared();
    let program = test_program("observe_dump", &["-g"]);
    let mut cmd = Cmd::new(&program)
        .args(spinners)
        .greenified()
        .timeout(TIMEOUT);
    if let Some(workers) = workers {
        cmd = cmd.env("GREENIFY_WORKERS", workers);
    }
    let running = cmd.spawn();
    let pid = running.pid().to_string();
    // Settled without asking the process: an answer made by a spinner's own preemption
    // left it registers that later dumps would show though nobody looked again.
    wait_until("the spinners to compute for 0.3 s", || {
        cpu_seconds(&pid) >= 0.3
    });
    let mut out = None;
    for _ in 0..DUMPS {
        let dump = greenify(&["dump", &pid]);
        if let Err(why) = check_dump(&pid, spinners, &dump) {
            panic!("{why}\n{}", dump.report());
        }
        out = Some(dump);
    }
    let out = out.expect("dumps");
    drop(running);
    eprintln!("{}", out.stdout);
}

/// The CPU time process `pid` used so far (user and system), in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis: utime and stime are 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads its argument.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / per_second as f64
}

fn check_dump(pid: &str, spinners: &[&str], out: &Output) -> Result<(), String> {
    if !out.status.success() {
        return Err("dump failed".into());
    }
    let d = &out.stdout;
    let header = d.lines().next().unwrap_or("");
    let threads = 4 + spinners.len();
    if !header.starts_with(&format!(
        "greenify dump: pid={pid} program=observe_dump threads={threads} "
    )) {
        return Err(format!("unexpected header: {header}"));
    }
    let main = block(d, "main")?;
    let reader = block(d, "reader")?;
    let reader_tid = reader.split(' ').nth(1).unwrap_or("?");
    expect(
        main,
        &[
            &format!("thread {pid} \"main\" parked in join, joining thread {reader_tid}, for "),
            "pthread_join [greenify]",
            "main at observe_dump.c:",
        ],
    )?;
    expect(
        reader,
        &[
            "parked in read, fd ",
            "(read), for ",
            "#0  read [greenify]",
            "observe_reader at observe_dump.c:",
        ],
    )?;
    expect(
        block(d, "locker")?,
        &[
            "parked in sync, on address 0x",
            &format!(", held by thread {pid}, for "),
            "pthread_mutex_lock [greenify]",
            "observe_locker at observe_dump.c:",
        ],
    )?;
    expect(
        block(d, "sleeper")?,
        &[
            "parked in sleep, wakes in ",
            "nanosleep [greenify]",
            "observe_sleeper at observe_dump.c:",
        ],
    )?;
    for name in spinners {
        let spinner = block(d, name)?;
        if !spinner.contains("\" running\n") && !spinner.contains("\" ready ") {
            return Err(format!(
                "the spinner is neither running nor ready:\n{spinner}"
            ));
        }
        expect(
            spinner,
            &["-- preempted here --", "observe_spinner at observe_dump.c:"],
        )?;
    }
    Ok(())
}

/// `greenify stats PID --json`: one JSON object with the exit line's counters, now.
#[test]
fn stats_json_has_the_counters_while_running() {
    let _serial = shared();
    let program = test_program("observe_dump", &["-g"]);
    let running = Cmd::new(&program).greenified().timeout(TIMEOUT).spawn();
    let pid = running.pid().to_string();
    until(&["stats", &pid, "--json"], |out| {
        let fields = json_object(out.stdout.trim())?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("no {k} in {}", out.stdout))
        };
        if get("pid")? != pid || get("program")? != "\"observe_dump\"" {
            return Err("wrong pid or program".into());
        }
        for key in [
            "context_switches",
            "epoll_waits",
            "preemptions",
            "parks_read",
            "parks_sync",
        ] {
            get(key)?
                .parse::<u64>()
                .map_err(|e| format!("{key}: {e}"))?;
        }
        match (get("threads_created")?.as_str(), get("alive")?.as_str()) {
            ("4", "5") => Ok(()),
            _ => Err("threads_created is not 4 or alive not 5".into()),
        }
    });
    drop(running);
}

/// A flat JSON object of numbers and strings, as (key, raw value) pairs.
fn json_object(text: &str) -> Result<Vec<(String, String)>, String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("not a JSON object: {text}"))?;
    inner
        .split(',')
        .map(|field| {
            let (k, v) = field.split_once(':').ok_or(format!("bad field {field}"))?;
            let key = k
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .ok_or(format!("bad key {k}"))?;
            let string = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
            if !string && v.parse::<u64>().is_err() {
                return Err(format!("bad value {v}"));
            }
            Ok((key.to_string(), v.to_string()))
        })
        .collect()
}

/// The OS threads and fds of `pid`, to show that asking changes nothing.
fn threads_and_fds(pid: &str) -> (usize, Vec<String>) {
    let count = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/{dir}: {e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    (count("task").len(), count("fd"))
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < SETTLE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn maps(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default()
}

/// A greenified process without a green thread, and a native one, are told apart and
/// not signalled: their threads and fds stay as they were, and nothing is made for the
/// control channel in a process that has green threads until it is asked, nor kept after.
#[test]
fn processes_that_cannot_answer_are_told_apart_and_untouched() {
    let _serial = shared();
    let sleeper = PathBuf::from("/bin/sleep");
    for (mode, says) in [
        (Mode::Greenified, "greenified, but no green thread yet"),
        (Mode::Native, "not greenified"),
    ] {
        let running = Cmd::new(&sleeper)
            .arg("60")
            .mode(mode)
            .timeout(TIMEOUT)
            .spawn();
        let pid = running.pid().to_string();
        if mode == Mode::Greenified {
            wait_until("libgreenify.so to be mapped", || {
                maps(&pid).contains("/libgreenify.so")
            });
        } else {
            wait_until("sleep to be exec'd", || maps(&pid).contains("sleep"));
        }
        // Settled in its sleep (greenified, its reactor made): two looks agree.
        let mut before = threads_and_fds(&pid);
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = threads_and_fds(&pid);
            if now == before {
                break;
            }
            assert!(start.elapsed() < SETTLE, "{mode}: sleep does not settle");
            before = now;
        }
        for sub in [
            &["dump", pid.as_str()][..],
            &["stats", pid.as_str(), "--json"],
        ] {
            let out = greenify(sub);
            assert_eq!(out.status.code(), Some(3), "{}", out.report());
            assert!(
                out.stderr.contains(&format!("greenify: {pid}: {says}")),
                "{}",
                out.report()
            );
        }
        assert_eq!(
            threads_and_fds(&pid),
            before,
            "{mode}: asking changed the process"
        );
        drop(running);
    }

    let program = test_program("observe_dump", &["-g"]);
    let running = Cmd::new(&program).greenified().timeout(TIMEOUT).spawn();
    let pid = running.pid().to_string();
    // Settled: five green threads, the workers and their monitors, and the fds the program made.
    until(&["stats", &pid, "--json"], |out| {
        expect(&out.stdout, &["\"alive\":5,"]).map(|_| ())
    });
    let before = threads_and_fds(&pid);
    assert_eq!(
        before.0,
        greenified_os_threads(),
        "the workers and their monitors"
    );
    let out = greenify(&["dump", &pid]);
    out.assert_success();
    assert_eq!(
        threads_and_fds(&pid),
        before,
        "the answer left something behind"
    );
}

/// Killed by a signal left at its default action, a greenified program with
/// GREENIFY_STATS=1 prints its stats line and dies by that signal as natively; it sees
/// SIG_DFL (and the flags it set) from sigaction as natively.
#[test]
fn stats_line_at_death_by_signal_with_the_native_status() {
    let _serial = shared();
    let program = test_program("observe_term", &[]);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let run = |mode: Mode| {
            let stdout = target_dir().join(format!("observe_term-{mode}-{sig}.out"));
            let file = std::fs::File::create(&stdout).expect("create the stdout file");
            let running = Cmd::new(&program)
                .mode(mode)
                .env("GREENIFY_STATS", "1")
                .stdout(file)
                .timeout(TIMEOUT)
                .spawn();
            let read = || std::fs::read_to_string(&stdout).unwrap_or_default();
            wait_until("ready", || read().ends_with("ready\n"));
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(running.pid() as libc::pid_t, sig) };
            let mut out = running.wait();
            out.stdout = read();
            out
        };
        let native = run(Mode::Native);
        let green = run(Mode::Greenified);
        assert_eq!(native.status.signal(), Some(sig), "{}", native.report());
        assert_eq!(green.status.signal(), Some(sig), "{}", green.report());
        assert_same_stdout(&native, &green);
        let stats = green.stats();
        assert_eq!(stats.get("threads_created"), Some(&1), "{}", green.report());
        assert!(
            !native.stderr.contains("greenify stats"),
            "{}",
            native.report()
        );
    }
}

/// A forked child's stats line counts what the child did, not the parent's history too:
/// the parent runs 6 threads at once and forks, the child runs 2 (with the default
/// workers, so the child starts its own second worker and monitor).
#[test]
fn forked_child_stats_line_counts_its_own_life() {
    let _serial = shared();
    let program = test_program("stats_fork", &[]);
    let running = Cmd::new(&program)
        .mode(Mode::Greenified)
        .env("GREENIFY_STATS", "1")
        .timeout(TIMEOUT)
        .spawn();
    let parent_pid = running.pid();
    let out = running.wait();
    out.assert_success();
    let child = out
        .stdout
        .strip_prefix("child ")
        .and_then(|rest| rest.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no child pid\n{}", out.report()));
    let line_of = |pid: u32| {
        stats_lines_with(&out.stderr, "pid", &pid.to_string())
            .next()
            .unwrap_or_else(|| panic!("no stats line of {pid}\n{}", out.report()))
    };
    let parent = line_of(parent_pid);
    let child = line_of(child);
    for (who, stats, threads) in [("parent", &parent, 6), ("child", &child, 2)] {
        assert_eq!(stat(stats, "threads_created"), threads, "{who}: {stats:?}");
        assert_eq!(stat(stats, "peak_alive"), threads + 1, "{who}: {stats:?}");
        assert_eq!(stat(stats, "parks_sleep"), threads, "{who}: {stats:?}");
    }
    assert!(
        stat(&child, "context_switches") < stat(&parent, "context_switches"),
        "the child's switches include the parent's: parent {parent:?}, child {child:?}"
    );
}
