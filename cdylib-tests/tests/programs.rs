//! Test-only C programs (`cdylib-tests/c/`): the pthread API on green handles, main's
//! pthread_exit, errno across switches, fd semantics and the less common send/recv calls,
//! hooks called from another preloaded library's constructor, stack overflows, shell and
//! debugger waits, more
//! green threads than the kernel's mapping limit allows guard pages for, and other
//! allocators preloaded after greenify.
//!
//! Run: `cargo test --release -p cdylib-tests` (builds libgreenify.so itself).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `program` natively and greenified: both succeed and print the same stdout.
#[track_caller]
fn same_both_ways(program: &Path, args: &[&str]) -> (Output, Output) {
    let native = Cmd::new(program).args(args).timeout(TIMEOUT).run();
    native.assert_success();
    let green = Cmd::new(program)
        .args(args)
        .greenified()
        .timeout(TIMEOUT)
        .run();
    green.assert_success();
    assert_same_stdout(&native, &green);
    (native, green)
}

#[test]
fn pthread_api_on_green_handles_is_native() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("thread_api", &[]), &[]);
    assert!(
        green.stdout.contains("tryjoin running: EBUSY"),
        "{}",
        green.report()
    );
    assert!(
        green.stdout.contains("join self: EDEADLK"),
        "{}",
        green.report()
    );
}

#[test]
fn main_pthread_exit_waits_for_the_last_thread_then_runs_atexit() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("main_exit", &[]), &[]);
    assert!(
        green
            .stdout
            .ends_with("worker 3 done\natexit handler ran\n"),
        "{}",
        green.report()
    );
}

#[test]
fn errno_survives_switches() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("errno_switch", &[]), &[]);
    assert_eq!(
        green.stdout,
        "threads with intact errno: 20/20, main intact: 1\n"
    );
}

#[test]
fn fd_semantics_and_socket_calls_match_native() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("fd_semantics", &[]), &[]);
    // The program's own fds start at 3: greenify's epoll fd lives far away.
    assert!(
        green.stdout.starts_with("first fds: socket=3 pipe=4,5\n"),
        "{}",
        green.report()
    );
    assert!(green.stdout.contains("socket flags: nonblock=0\n"));
}

#[test]
fn hooks_called_from_an_earlier_constructor_work() {
    let _g = shared();
    let early = {
        let src = std::fs::read_to_string(workspace_root().join("cdylib-tests/c/early_ctor.c"))
            .expect("early_ctor.c");
        compile_c_source(
            "libearly_ctor.so",
            &src,
            &["-O2", "-Wall", "-Werror", "-pthread", "-shared", "-fPIC"],
        )
    };
    let program = test_program("main_exit", &[]);
    // Both orders: the other library's constructor runs before anything of greenify's.
    for preload in [
        format!("{}:{}", lib_path().display(), early.display()),
        format!("{}:{}", early.display(), lib_path().display()),
    ] {
        let out = Cmd::new(&program)
            .env("LD_PRELOAD", &preload)
            .timeout(TIMEOUT)
            .run();
        out.assert_success();
        assert!(
            out.stdout
                .starts_with("early constructor: joined 5\nmain exits first\n"),
            "{}",
            out.report()
        );
    }
}

/// The overflow report: stderr names the thread, and the process dies by a signal.
#[track_caller]
fn assert_overflow_reported(out: &Output, why: &str, signal: i32) {
    assert!(
        out.stderr.contains(&format!(
            "stack overflow in green thread \"hog\" (64 KiB stack): {why}"
        )),
        "{}",
        out.report()
    );
    assert_eq!(out.status.signal(), Some(signal), "{}", out.report());
    assert!(!out.stdout.contains("survived"), "{}", out.report());
}

#[test]
fn stack_overflow_hits_the_guard_page_and_names_the_thread() {
    let _g = shared();
    let program = test_program("stack_overflow", &[]);
    let native = Cmd::new(&program).timeout(TIMEOUT).run();
    assert_eq!(
        native.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        native.report()
    );
    let green = Cmd::new(&program).greenified().timeout(TIMEOUT).run();
    assert_overflow_reported(&green, "it ran past the bottom of its stack", libc::SIGSEGV);
}

/// A thread that names itself while it runs is reported by that name (the fault handler
/// reads its worker's stack record, filled at the thread's dispatch).
#[test]
fn stack_overflow_names_a_thread_that_named_itself() {
    let _g = shared();
    let program = test_program("stack_overflow", &[]);
    let green = Cmd::new(&program)
        .arg("selfnamed")
        .greenified()
        .timeout(TIMEOUT)
        .run();
    assert_overflow_reported(&green, "it ran past the bottom of its stack", libc::SIGSEGV);
}

#[test]
fn more_green_threads_than_guard_pages_fit_under_max_map_count() {
    let _g = exclusive();
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("max_map_count")
        .trim()
        .parse()
        .expect("a number");
    // One guarded stack costs two mappings: this many could never all be guarded.
    let threads = (max_maps / 2 + 20_000).max(100_000);
    let n = threads.to_string();
    // Every thread waits until the last one exists: with several workers threads run while
    // main still creates more (sleepers' first threads ended before its last began).
    let running = Cmd::new(test_program("gathered", &[]))
        .arg(&n)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(Duration::from_secs(120))
        .spawn();
    let sampler = Sampler::start(running.pid());
    let out = running.wait();
    let samples = sampler.stop();
    out.assert_success()
        .assert_stdout(&format!("threads={threads} done\n"));
    // The workers and their preemption monitor, plus the spares that stood in for a
    // worker stuck in a call (on a loaded machine, a worker waiting in the kernel for the
    // memory map lock while the other maps stacks).
    let stats = out.stats();
    assert_greenified_os_threads(
        "greenified gathered",
        &stats,
        stats["spares_started"],
        Some((&samples, 1)),
        &out.report(),
    );
    assert_eq!(stats["peak_alive"], threads as u64 + 1, "{}", out.report());
}

/// `__thread` variables are per green thread (each has its own TCB: on by default for a
/// program with TLS of its own); GREENIFY_TLS=off makes them the OS thread's, shared.
#[test]
fn thread_local_variables_are_per_green_thread_unless_tls_is_off() {
    let _g = shared();
    let program = test_program("tls_shared", &[]);
    let own = "threads that kept their own __thread value: 4/4\n";
    Cmd::new(&program)
        .timeout(TIMEOUT)
        .run()
        .assert_success()
        .assert_stdout(own);
    for mode in ["auto", "on"] {
        Cmd::new(&program)
            .greenified()
            .env("GREENIFY_TLS", mode)
            .timeout(TIMEOUT)
            .run()
            .assert_success()
            .assert_stdout(own);
    }
    Cmd::new(&program)
        .greenified()
        .env("GREENIFY_TLS", "off")
        .timeout(TIMEOUT)
        .run()
        .assert_success()
        .assert_stdout("threads that kept their own __thread value: 1/4\n");
}

/// GREENIFY_TLS with another value: one warning, then auto.
#[test]
fn a_bad_greenify_tls_value_warns_and_means_auto() {
    let _g = shared();
    let program = test_program("tls_shared", &[]);
    let out = Cmd::new(&program)
        .greenified()
        .env("GREENIFY_TLS", "sometimes")
        .timeout(TIMEOUT)
        .run();
    out.assert_success()
        .assert_stdout("threads that kept their own __thread value: 4/4\n");
    assert_eq!(
        out.stderr
            .matches("GREENIFY_TLS=sometimes is not valid (it takes auto, on or off): using auto")
            .count(),
        1,
        "{}",
        out.report()
    );
}

#[test]
fn synchronisation_error_codes_and_timeouts_match_native() {
    let _g = exclusive();
    let (_, green) = same_both_ways(&test_program("sync_errors", &[]), &[]);
    for line in [
        "errorcheck relock: EDEADLK\n",
        "unlock errorcheck by non-owner: EPERM\n",
        "robust lock after owner died: EOWNERDEAD\n",
        "cond timedwait monotonic attr: ETIMEDOUT waited=ok\n",
        "sem_trywait empty: EAGAIN\n",
    ] {
        assert!(
            green.stdout.contains(line),
            "{line:?} missing\n{}",
            green.report()
        );
    }
}

/// A process-shared mutex, condvar and semaphore in shared memory, used by a greenified
/// process together with a native one, and by two greenified ones.
#[test]
fn process_shared_objects_work_across_greenified_and_native_processes() {
    let _g = shared();
    let program = test_program("pshared", &["-lrt"]);
    let lib = lib_path().to_str().unwrap().to_string();
    // (creator, peer): glibc and greenify initialise the objects in turn, and each side
    // really waits on a semaphore the other posts.
    for (mode, peer) in [
        (Mode::Native, "native"),
        (Mode::Native, "green"),
        (Mode::Greenified, "native"),
        (Mode::Greenified, "green"),
    ] {
        let name = format!("/greenify-test-{}-{mode}-{peer}", std::process::id());
        let out = Cmd::new(&program)
            .args([name.as_str(), "1000", peer])
            .env("PSHARED_PEER_PRELOAD", &lib)
            .mode(mode)
            .timeout(TIMEOUT)
            .run();
        out.assert_success()
            .assert_stdout("counter=2000 expected=2000 peer_exit=0\n");
    }
}

#[test]
fn signals_interrupt_parked_calls_as_natively() {
    let _g = exclusive();
    let (_, green) = same_both_ways(&test_program("signals", &[]), &[]);
    assert!(green
        .stdout
        .starts_with("read no-restart: -1 EINTR\nread restart: 1 x\n"));
}

/// greenify's own fds stay below 1024 even when RLIMIT_NOFILE is high (the harness
/// raises it to the hard limit): the kernel's fd table, which every fork copies, grows to
/// the highest open fd.
#[test]
fn greenify_fds_stay_below_1024_under_a_high_fd_limit() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("fd_placement", &[]), &[]);
    // (Under a hard limit of 1024 or less the first line says no and the check is moot.)
    assert!(
        green.stdout.ends_with("highest fd below 1024: yes\n"),
        "{}",
        green.report()
    );
}

/// Waits as shells and debuggers make them: for any child with SIGCHLD blocked, for a
/// child that asked to be traced (its stop comes through no pidfd), and for a child a
/// tracer seized.
#[test]
fn shell_and_debugger_waits_match_native() {
    let _g = shared();
    // Where ptrace is forbidden, both runs print the same refusals.
    let (_, green) = same_both_ways(&test_program("children", &[]), &[]);
    assert!(green
        .stdout
        .starts_with("shell: reaped 20, sum of codes 210, then No child processes\n"));
}

/// Ctrl-C stops a greenified `python3 -m http.server` with its KeyboardInterrupt, as
/// natively (the parked poll returns EINTR, so python runs its signal handler).
#[test]
fn ctrl_c_stops_a_greenified_python_http_server() {
    use std::io::{BufRead, BufReader, Read, Write};
    let _g = shared();
    for mode in Mode::BOTH {
        let mut cmd = std::process::Command::new(python3());
        cmd.args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .env_remove("LD_PRELOAD")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if mode == Mode::Greenified {
            cmd.env("LD_PRELOAD", lib_path());
        }
        let mut child = cmd.spawn().expect("python3 starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a first line");
        let port: u16 = line
            .split("port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no port in {line:?}"));
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.0 200"), "{mode}: {reply:?}");
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = std::time::Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{mode}: python did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(0), "{mode}: {status:?}");
        assert!(
            rest.contains("Keyboard interrupt received, exiting."),
            "{mode}: {rest:?}"
        );
    }
}

/// Name resolution runs on a helper thread: other green threads keep running during a
/// slow lookup. A local DNS server on 127.0.0.77 answers after 500 ms; the program runs
/// in a private mount namespace whose /etc/resolv.conf points at it.
#[test]
fn other_threads_run_during_a_slow_name_lookup() {
    use std::io::{BufRead, BufReader};
    let _g = exclusive();
    let program = test_program("slow_lookup", &[]);
    let mut dns = std::process::Command::new(python3())
        .arg(py_script("slow_dns.py"))
        .args(["127.0.0.77", "0.5"])
        .env_remove("LD_PRELOAD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the DNS server starts");
    let mut ready = String::new();
    BufReader::new(dns.stdout.take().unwrap())
        .read_line(&mut ready)
        .expect("the DNS server says ready");
    let dir = std::env::temp_dir().join(format!("greenify-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.77\noptions timeout:3 attempts:1\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {}",
        resolv.display(),
        program.display()
    );
    let mut outputs = Vec::new();
    for mode in Mode::BOTH {
        let out = Cmd::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .mode(mode)
            .timeout(TIMEOUT)
            .run();
        outputs.push(out);
    }
    let _ = dns.kill();
    let _ = dns.wait();
    let _ = std::fs::remove_dir_all(&dir);
    for out in &outputs {
        out.assert_success().assert_stdout(
            "getaddrinfo: ok address=127.1.2.3\n\
             lookup took at least 400 ms: 1\n\
             the other thread ran during the lookup: 1\n",
        );
    }
}

/// stdio on an fdopen'ed socket parks instead of blocking the OS thread.
#[test]
fn stdio_streams_on_sockets_park() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("stdio_socket", &[]), &[]);
    assert!(
        green.stdout.contains("ticker ran during fgets: 1\n"),
        "{}",
        green.report()
    );
}

/// GREENIFY_OFFLOAD_FILES=1 sends regular-file reads and writes to helper threads, with
/// the same results: `cat` of a file, byte-exact.
#[test]
fn regular_file_io_can_be_offloaded() {
    let _g = shared();
    let path = std::env::temp_dir().join(format!("greenify-offload-{}", std::process::id()));
    let content: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&path, &content).unwrap();
    let out = Cmd::new("/bin/cat")
        .arg(&path)
        .greenified()
        .env("GREENIFY_OFFLOAD_FILES", "1")
        .timeout(TIMEOUT)
        .run();
    let _ = std::fs::remove_file(&path);
    out.assert_success();
    assert!(
        out.stdout == content,
        "cat's output differs from the file ({} vs {} bytes)",
        out.stdout.len(),
        content.len()
    );
}

/// Programs that close stderr at exit (coreutils' close_stdout) still get the stats line.
#[test]
fn stats_reach_stderr_after_the_program_closed_it() {
    let _g = shared();
    let out = Cmd::new("/bin/echo")
        .arg("hi")
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(TIMEOUT)
        .run();
    out.assert_success().assert_stdout("hi\n");
    out.stats();
}

/// An atfork prepare handler that waits for a lock a sleeping green thread holds (rustc's
/// jemalloc does this when it forks its linker): fork waits for the holder, as natively.
#[test]
fn fork_waits_for_a_lock_its_prepare_handler_takes() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("atfork_lock", &[]), &[]);
    assert_eq!(green.stdout, "prepared 1, parent handler 1, child exit 7\n");
}

/// The program's own malloc locks a pthread mutex on every call: greenify's start-up, which
/// allocates, does not call back into itself (it hung before main, so a short timeout).
#[test]
fn an_own_malloc_that_always_locks_starts() {
    let _g = shared();
    let program = test_program("own_malloc_always_locks", &["-fno-builtin"]);
    let out = Cmd::new(&program)
        .greenified()
        .timeout(Duration::from_secs(15))
        .run();
    out.assert_success().assert_stdout("started, joined\n");
}

/// The program's own malloc locks a pthread mutex and yields while holding it: greenify's
/// allocation for pthread_setspecific waits for that lock by parking, not on the OS thread.
#[test]
fn setspecific_room_waits_for_the_programs_malloc_lock_by_parking() {
    let _g = shared();
    let (_, green) = same_both_ways(&test_program("own_malloc_yields", &["-fno-builtin"]), &[]);
    assert_eq!(green.stdout, "values kept: 64/64\n");
}

/// Another allocator preloaded after greenify calls hooked functions from inside itself
/// (jemalloc's pthread_mutex_lock, tcmalloc's pthread_once and nanosleep while it holds
/// its spin lock): greenify's own allocations never re-enter it (jemalloc crashed, and
/// tcmalloc hung every run, when they did). A few runs each: the crash was 1 in 2.
#[test]
fn other_allocators_preloaded_after_greenify_run_as_natively() {
    let _g = shared();
    let program = test_program("alloc_stress", &[]);
    for name in [
        "libjemalloc.so.2",
        "libtcmalloc_minimal.so.4",
        "libmimalloc.so.2",
    ] {
        let allocator = Path::new("/usr/lib/x86_64-linux-gnu").join(name);
        if !allocator.exists() {
            eprintln!("SKIPPED: {} is not installed", allocator.display());
            continue;
        }
        let native = Cmd::new(&program)
            .env("LD_PRELOAD", &allocator)
            .timeout(TIMEOUT)
            .run();
        native.assert_success();
        for _ in 0..3 {
            let preload = format!("{} {}", lib_path().display(), allocator.display());
            let green = Cmd::new(&program)
                .greenified()
                .env("LD_PRELOAD", preload)
                .timeout(TIMEOUT)
                .run();
            green.assert_success();
            assert_same_stdout(&native, &green);
        }
    }
}
