//! Hostile conditions (issue 9): a byte-verified soak of the echo server with partial writes
//! and peer resets, and fault injection: descriptor exhaustion, address-space limits, fork
//! with every descriptor in use, and a signal every millisecond while thousands of threads do
//! I/O and hand locks around. Wherever native behaviour is defined the greenified run is
//! compared with it. (The bad-input sweeps are catalogue cases: `cdylib-tests/diff/hostile_*.c`.)
//!
//! The soak is short by default (seconds). To soak for minutes:
//! `GREENIFY_SOAK_SECS=300 cargo test --release -p cdylib-tests --test hostile soak`
//! (`GREENIFY_SOAK_SECS` is the length of each of the two soaks, native and greenified).
//!
//! Run: `cargo test --release -p cdylib-tests --test hostile` (builds libgreenify.so itself).

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use cdylib_tests::*;

/// Connections the soak client keeps open greenified (thousands of green threads) and
/// natively (one OS thread each: kept to a few hundred, pid_max is machine-wide).
const SOAK_CONCURRENCY_GREEN: &str = "2000";
const SOAK_CONCURRENCY_NATIVE: &str = "200";
/// Per mille of the soak's connections that abort mid-stream with an RST.
const SOAK_RESET_PERMILLE: &str = "50";

/// The soak's length in seconds: `GREENIFY_SOAK_SECS`, else `default`.
fn soak_secs(default: u64) -> u64 {
    match std::env::var("GREENIFY_SOAK_SECS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("GREENIFY_SOAK_SECS={v:?} is not a number of seconds")),
        Err(_) => default,
    }
}

/// The fields of the soak client's `connections=N verified_bytes=B resets=R errors=E` line.
fn soak_figures(out: &Output) -> [u64; 4] {
    let line = out.stdout.lines().next().unwrap_or("");
    let mut figures = [0u64; 4];
    let keys = ["connections", "verified_bytes", "resets", "errors"];
    for tok in line.split_whitespace() {
        if let Some((k, v)) = tok.split_once('=') {
            if let (Some(i), Ok(v)) = (keys.iter().position(|x| *x == k), v.parse()) {
                figures[i] = v;
            }
        }
    }
    figures
}

/// Soaks the echo server in `mode` with `concurrency` connections for `secs`, then checks the
/// server: still alive, answering, back to the descriptors it had before, no greenify error.
fn soak(mode: Mode, concurrency: &str, secs: u64, seed: &str) {
    let _serial = exclusive();
    let client = test_program("hostile_soak_client", &[]);
    let mut server = Server::start(&example("echo_server"), mode, &[]);
    let fds_before = open_sockets(server.pid());
    let out = Cmd::new(&client)
        .args([
            &server.port_arg(),
            &secs.to_string(),
            concurrency,
            SOAK_RESET_PERMILLE,
            seed,
        ])
        .timeout(Duration::from_secs(secs + 60))
        .run();
    eprintln!("soak [{mode}] {}: {}", concurrency, out.stdout.trim_end());
    if !out.status.success() {
        panic!("soak client failed\n{}\n{}", out.report(), server.report());
    }
    let [conns, bytes, resets, errors] = soak_figures(&out);
    let min_conns: u64 = concurrency.parse().expect("a number");
    assert!(
        conns >= min_conns && bytes > 0 && resets > 0 && errors == 0,
        "the soak did too little: every connection of the first wave, some bytes and some \
         resets expected\n{}",
        out.report()
    );
    server.assert_alive();
    let answered = echo_round_trip(server.port, b"still there?", Duration::from_secs(10));
    assert!(
        matches!(answered, Ok(true)),
        "the server does not echo after the soak: {answered:?}\n{}",
        server.report()
    );
    // The server's threads close their connections once the client's are gone (a reset one
    // too): its sockets come back to what it had before the soak. (Sockets only: greenify
    // opens some fds of its own with the first thread, which are no leak.)
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fds = open_sockets(server.pid());
    while fds > fds_before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        fds = open_sockets(server.pid());
    }
    assert!(
        fds <= fds_before,
        "the server holds {fds} sockets 20 s after the soak, {fds_before} before it\n{}",
        server.report()
    );
    let errors = server.stderr();
    let errors = greenify_errors(&errors);
    assert!(
        errors.is_empty(),
        "greenify reported errors: {errors:?}\n{}",
        server.report()
    );
}

/// How many of `pid`'s fds are sockets.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("server's /proc/PID/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn soak_echo_server_greenified() {
    soak(
        Mode::Greenified,
        SOAK_CONCURRENCY_GREEN,
        soak_secs(8),
        "0x9e3779b97f4a7c15",
    );
}

#[test]
fn soak_echo_server_native() {
    soak(
        Mode::Native,
        SOAK_CONCURRENCY_NATIVE,
        soak_secs(3),
        "0x2545f4914f6cdd1d",
    );
}

// ---------------------------------------------------------------------------------------------
// Descriptor exhaustion
// ---------------------------------------------------------------------------------------------

/// The descriptor limit the echo server runs under, and how many clients connect to it: more
/// than it has descriptors for, fewer than twice that.
const NOFILE: &str = "64";
const CLIENTS: usize = 90;

fn hostile_limit() -> PathBuf {
    test_program("hostile_limit", &[])
}

/// Waits until `streams[i]` (for every i not yet in `echoed`) has echoed its byte or
/// `settle` passed without a new echo (or `limit` passed in all); returns how many echoed.
fn collect_echoes(
    streams: &mut [Option<TcpStream>],
    echoed: &mut [bool],
    settle: Duration,
    limit: Duration,
) -> usize {
    let start = Instant::now();
    let mut last_new = Instant::now();
    while start.elapsed() < limit && last_new.elapsed() < settle {
        for (i, s) in streams.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            if echoed[i] {
                continue;
            }
            let mut b = [0u8; 1];
            match s.read(&mut b) {
                Ok(1) => {
                    assert_eq!(b[0], b'x', "client {i} got a wrong byte back");
                    echoed[i] = true;
                    last_new = Instant::now();
                }
                Ok(_) => panic!("client {i}: the server closed the connection"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client {i}: {e}"),
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    echoed.iter().filter(|e| **e).count()
}

/// The echo server at its RLIMIT_NOFILE: `accept` fails with EMFILE (the server says so and
/// backs off), the connections it did accept keep echoing, and once they are closed the
/// waiting ones are accepted and served, and a new one too.
#[test]
fn echo_server_at_its_fd_limit_recovers() {
    let _serial = exclusive();
    let server_bin = example("echo_server");
    let limit = hostile_limit();
    let mut served = Vec::new();
    for mode in Mode::BOTH {
        let args = ["nofile".as_ref(), NOFILE.as_ref(), server_bin.as_os_str()];
        let mut server = Server::start_with_args(&limit, &args, mode, &[]);
        let mut streams: Vec<Option<TcpStream>> = (0..CLIENTS)
            .map(|_| {
                let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
                std::io::Write::write_all(&mut &s, b"x").expect("send");
                s.set_nonblocking(true).expect("non-blocking");
                Some(s)
            })
            .collect();
        let mut echoed = vec![false; CLIENTS];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.stderr().contains("accept: Too many open files") {
            assert!(
                Instant::now() < deadline,
                "[{mode}] no EMFILE from accept with {CLIENTS} clients\n{}",
                server.report()
            );
            thread::sleep(Duration::from_millis(20));
        }
        let first = collect_echoes(
            &mut streams,
            &mut echoed,
            Duration::from_millis(1500),
            Duration::from_secs(20),
        );
        assert!(
            first > 0 && first < CLIENTS,
            "[{mode}] {first} of {CLIENTS} clients served at the limit\n{}",
            server.report()
        );
        served.push(first);
        // Free the server's descriptors: close every served connection.
        for (s, e) in streams.iter_mut().zip(&echoed) {
            if *e {
                *s = None;
            }
        }
        let all = collect_echoes(
            &mut streams,
            &mut echoed,
            Duration::from_secs(5),
            Duration::from_secs(30),
        );
        assert_eq!(
            all,
            CLIENTS,
            "[{mode}] the waiting clients were not served once descriptors were free\n{}",
            server.report()
        );
        drop(streams);
        server.assert_alive();
        let answered = echo_round_trip(server.port, b"after", Duration::from_secs(10));
        assert!(
            matches!(answered, Ok(true)),
            "[{mode}] no echo after the exhaustion: {answered:?}\n{}",
            server.report()
        );
        let stderr = server.stderr();
        let errors = greenify_errors(&stderr);
        assert!(errors.is_empty(), "[{mode}] greenify errors: {errors:?}");
    }
    eprintln!(
        "served at the fd limit: native {}, greenified {}",
        served[0], served[1]
    );
}

// ---------------------------------------------------------------------------------------------
// Address-space limit, fork at the fd limit
// ---------------------------------------------------------------------------------------------

/// Under `ulimit -v` (RLIMIT_AS set before exec) a program that creates threads and allocates
/// until it fails gets the errors native gets (pthread_create EAGAIN, malloc NULL, mmap
/// ENOMEM), never a crash, and can go on afterwards.
#[test]
fn address_space_limit_gives_errors_like_native() {
    let _serial = exclusive();
    let limit = hostile_limit();
    let program = test_program("hostile_memlimit", &[]);
    for bytes in ["268435456", "1073741824"] {
        let run = |mode| {
            Cmd::new(&limit)
                .args(["as".as_ref(), bytes.as_ref(), program.as_os_str()])
                .mode(mode)
                .timeout(Duration::from_secs(120))
                .run()
        };
        let native = run(Mode::Native);
        native.assert_success();
        let green = run(Mode::Greenified);
        green.assert_success();
        assert_same_stdout(&native, &green);
    }
}

/// fork (twice) with every descriptor in use, then with one free: the children run, create
/// a thread and exit as natively.
#[test]
fn fork_at_the_fd_limit_is_like_native() {
    let _g = shared();
    let program = test_program("hostile_forkfd", &[]);
    let native = Cmd::new(&program).run();
    native.assert_success();
    let green = Cmd::new(&program).greenified().run();
    green.assert_success();
    assert_same_stdout(&native, &green);
}

// ---------------------------------------------------------------------------------------------
// A signal every millisecond
// ---------------------------------------------------------------------------------------------

/// Pipe and socket ping-pong, condvar and semaphore hand-offs and a contended mutex while two
/// 1 ms timers signal the process (one handler with SA_RESTART, one without): every byte and
/// count arrives, the same as natively with a few hundred threads, and greenified with
/// thousands.
#[test]
fn signal_storm_loses_no_byte_and_no_count() {
    let _serial = exclusive();
    let program = test_program("hostile_storm", &["-lrt"]);
    let timeout = Duration::from_secs(120);
    let native = Cmd::new(&program)
        .args(["300", "2000"])
        .timeout(timeout)
        .run();
    native.assert_success();
    let green = Cmd::new(&program)
        .args(["300", "2000"])
        .greenified()
        .timeout(timeout)
        .run();
    green.assert_success();
    assert_same_stdout(&native, &green);
    let many = Cmd::new(&program)
        .args(["3000", "200"])
        .greenified()
        .timeout(timeout)
        .run();
    many.assert_success();
    many.assert_stdout(
        "pipe: pairs=375 bytes=613068000\n\
         socket: pairs=375 bytes=613068000\n\
         condvar: pairs=375 handoffs=150000\n\
         sem: pairs=375 handoffs=150000\n\
         lock total=600000 (want 600000)\n\
         SIGALRM handled: yes, SIGUSR1 handled: yes\n",
    );
}
