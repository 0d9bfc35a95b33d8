//! Green synchronisation (issue 3): the synchronisation demos of `c-examples/` (mutexes,
//! condition variables, rwlocks, semaphores, barriers, once and keys) and ordinary threaded
//! Python programs run natively and under `LD_PRELOAD=libgreenify.so`: same stdout, exit 0,
//! and greenified on the workers' OS threads and the monitor's, however many threads run
//! (as greenify counts them, and as a [`Sampler`] sees them over the longer runs).
//!
//! Every run is bounded by a timeout, only loopback addresses are used, and every process is
//! killed (with its process group) when its guard drops, also when a test fails. Heavy or
//! timing-sensitive tests hold [`exclusive`] so that they run alone. A missing demo or script
//! fails the test with its path (nothing is skipped).
//!
//! Run: `cargo test --release -p cdylib-tests --test sync` (builds libgreenify.so itself;
//! the Python tests need `python3` on `PATH`).

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use cdylib_tests::*;

const LOOPBACK: &str = "127.0.0.1";
/// Bound for one run of a demo (natively they take a few seconds at most).
const TIMEOUT: Duration = Duration::from_secs(60);

/// A native and a greenified run of the same command line, and what a [`Sampler`] saw of
/// the greenified process.
struct Compared {
    native: Output,
    green: Output,
    green_samples: Samples,
}

/// Runs `program args` natively, then greenified (sampled, with its stats line); both must
/// exit 0 and print the same stdout.
#[track_caller]
fn native_vs_greenified<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    timeout: Duration,
) -> Compared {
    let native = Cmd::new(program).args(args).timeout(timeout).run();
    native.assert_success();
    let running = Cmd::new(program)
        .args(args)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(timeout)
        .spawn();
    let sampler = Sampler::start(running.pid());
    let green = running.wait();
    let green_samples = sampler.stop();
    green.assert_success();
    assert_same_stdout(&native, &green);
    Compared {
        native,
        green,
        green_samples,
    }
}

/// Runs the demo `name ARGS` both ways and checks its stdout is exactly `expected`; returns
/// the runs.
#[track_caller]
fn demo(name: &str, args: &[&str], expected: &str) -> Compared {
    let runs = native_vs_greenified(&example(name), args, TIMEOUT);
    runs.native.assert_stdout(expected);
    runs
}

// ---------------------------------------------------------------------------------------------
// The C synchronisation demos
// ---------------------------------------------------------------------------------------------

/// Runs the demo `name ARGS` greenified alone, sampled, long enough (about a second) for the
/// [`Sampler`] to watch it many times: its stdout must be exactly `expected`, and it runs
/// on the workers and their monitor alone.
#[track_caller]
fn greenified_on_one_os_thread(name: &str, args: &[&str], expected: &str) {
    let running = Cmd::new(example(name))
        .args(args)
        .greenified()
        .env("GREENIFY_STATS", "1")
        .timeout(TIMEOUT)
        .spawn();
    let sampler = Sampler::start(running.pid());
    let out = running.wait();
    let samples = sampler.stop();
    out.assert_success().assert_stdout(expected);
    assert_greenified_os_threads(
        &format!("greenified {name}"),
        &out.stats(),
        0,
        Some((&samples, 10)),
        &out.report(),
    );
}

/// The expected stdout of `prodcons 4 4 ITEMS CAPACITY`: producer p pushes p*ITEMS+i, so
/// the values are 0..4*ITEMS once each.
fn prodcons_expected(items: u64) -> String {
    let n = 4 * items;
    format!(
        "producers=4 consumers=4 items={n} consumed={n} sum={} ok\n",
        n * (n - 1) / 2
    )
}

/// Bounded FIFO with one mutex and two condition variables: 4 producers, 4 consumers,
/// 400,000 items, capacity 64; then 4,000,000 items greenified while a [`Sampler`] watches.
#[test]
fn prodcons_native_vs_greenified_on_one_os_thread() {
    let _serial = exclusive();
    demo(
        "prodcons",
        &["4", "4", "100000", "64"],
        &prodcons_expected(100_000),
    );
    greenified_on_one_os_thread(
        "prodcons",
        &["4", "4", "1000000", "64"],
        &prodcons_expected(1_000_000),
    );
}

/// One mutex per account, two locked in index order, holders sleeping; an auditor locks all
/// 16 at once every 2 ms. Then ten times the transfers greenified while a [`Sampler`]
/// watches.
#[test]
fn bank_native_vs_greenified_on_one_os_thread() {
    let _serial = shared();
    demo(
        "bank",
        &["16", "8", "2000"],
        "accounts=16 threads=8 transfers=2000 total=16000 audits_ok violations=0\n",
    );
    greenified_on_one_os_thread(
        "bank",
        &["16", "8", "20000"],
        "accounts=16 threads=8 transfers=20000 total=16000 audits_ok violations=0\n",
    );
}

/// A rwlock: writers never overlap readers, readers share it.
#[test]
fn readers_writers_native_vs_greenified() {
    let _serial = shared();
    demo(
        "readers_writers",
        &["8", "2", "500"],
        "readers=8 writers=2 rounds=500 reads=4000 writes=1000 inconsistent=0 \
         concurrent_readers=yes\n",
    );
}

/// A counting semaphore limits 50 clients to a pool of 5 (sem_wait, sem_trywait,
/// sem_timedwait).
#[test]
fn conn_pool_native_vs_greenified() {
    let _serial = shared();
    demo(
        "conn_pool",
        &["50", "5", "20"],
        "clients=50 pool=5 rounds=20 uses=1000 max_in_use=5 within_limit=yes\n",
    );
}

/// 16 threads, 50 phases, two barrier waits per phase.
#[test]
fn barrier_phases_native_vs_greenified() {
    let _serial = shared();
    demo(
        "barrier_phases",
        &["16", "50"],
        "threads=16 phases=50 serial=100 checks_ok\n",
    );
}

/// pthread_once, thread-specific data per green thread, destructors (two rounds), key delete.
#[test]
fn tsd_keys_native_vs_greenified() {
    let _serial = shared();
    demo(
        "tsd_keys",
        &["50"],
        "threads=50 once_inits=1 own_values=50 destructor_a=50 destructor_b_rounds=100 ok\n",
    );
}

/// Two threads hand a turn back and forth 100,000 times through one mutex and one condvar.
#[test]
fn condvar_pingpong_native_vs_greenified() {
    let _serial = exclusive();
    demo("condvar_pingpong", &["100000"], "rounds=100000 ok\n");
}

// ---------------------------------------------------------------------------------------------
// The chat server: a mutex held across blocking writes to every client
// ---------------------------------------------------------------------------------------------

const CHAT_CLIENTS: &str = "20";
const CHAT_LINES: &str = "10";
const CHAT_EXPECTED: &str = "clients=20 lines=10 received=200 each ok\n";

/// Runs chat_client (20 clients x 10 lines) in `mode` against `server`; checks its stdout
/// (and, greenified, that it runs on the workers and their monitor alone: as greenify
/// counts them, the client living too briefly for a [`Sampler`]) and that the server is
/// still alive.
#[track_caller]
fn chat_round(server: &mut Server, mode: Mode) {
    let port = server.port_arg();
    let out = Cmd::new(example("chat_client"))
        .args([LOOPBACK, port.as_str(), CHAT_CLIENTS, CHAT_LINES])
        .mode(mode)
        .env("GREENIFY_STATS", "1")
        .timeout(TIMEOUT)
        .run();
    if !out.status.success() || out.stdout != CHAT_EXPECTED {
        panic!(
            "{mode} chat client failed or printed something else than {CHAT_EXPECTED:?}\n{}\n{}",
            out.report(),
            server.report()
        );
    }
    if mode == Mode::Greenified {
        assert_greenified_os_threads(
            "the greenified chat client",
            &out.stats(),
            0,
            None,
            &out.report(),
        );
    }
    server.assert_alive();
}

/// The chat server natively, with a native and then a greenified client.
#[test]
fn chat_server_native_serves_native_and_greenified_clients() {
    let _serial = exclusive();
    example("chat_client");
    let mut server = Server::start(&example("chat_server"), Mode::Native, &[]);
    chat_round(&mut server, Mode::Native);
    chat_round(&mut server, Mode::Greenified);
}

/// The chat server greenified, on one OS thread throughout, with a native and then a
/// greenified client.
#[test]
fn chat_server_greenified_on_one_os_thread_serves_native_and_greenified_clients() {
    let _serial = exclusive();
    example("chat_client");
    let mut server = Server::start(
        &example("chat_server"),
        Mode::Greenified,
        &[("GREENIFY_STATS", "1")],
    );
    let sampler = Sampler::start(server.pid());
    chat_round(&mut server, Mode::Native);
    chat_round(&mut server, Mode::Greenified);
    let samples = sampler.stop();
    let report = server.report();
    assert_greenified_os_threads(
        "the greenified chat server",
        &server.stats_at_exit(),
        0,
        Some((&samples, 5)),
        &report,
    );
}

// ---------------------------------------------------------------------------------------------
// Python: threading and socketserver, unmodified
// ---------------------------------------------------------------------------------------------

/// Every primitive of `threading` and `queue` (timeouts included) gives the same lines
/// natively and greenified, on one OS thread.
#[test]
fn python_threading_all_native_vs_greenified_on_one_os_thread() {
    let _serial = exclusive();
    let script = py_script("threading_all.py");
    let runs = native_vs_greenified(python3(), &[script.as_os_str()], Duration::from_secs(120));
    assert!(
        runs.native.stdout.lines().count() >= 30
            && runs.native.stdout.ends_with("all checks done\n"),
        "threading_all.py did not run all its checks natively\n{}",
        runs.native.report()
    );
    assert!(
        !runs.native.stdout.contains("time=early") && !runs.native.stdout.contains("time=late"),
        "a timed check was off natively (the machine is too busy to judge)\n{}",
        runs.native.report()
    );
    assert_greenified_os_threads(
        "greenified python3 threading_all.py",
        &runs.green.stats(),
        0,
        Some((&runs.green_samples, 5)),
        &runs.green.report(),
    );
}

/// multiprocessing.Pool runs and closes greenified as natively. Its workers wait on named
/// semaphores (sem_open: glibc marks them process-shared) that another process posts,
/// and its parent's worker-handler thread polls in a loop that only the result-handler
/// thread's reads end: without fairness among green threads it spun forever.
#[test]
fn python_multiprocessing_pool_native_vs_greenified() {
    let _g = shared();
    let script = py_script("mp_pool.py");
    for mode in [Mode::Native, Mode::Greenified] {
        let out = Cmd::new(python3())
            .arg(script.as_os_str())
            .mode(mode)
            .timeout(Duration::from_secs(60))
            .run();
        out.assert_success()
            .assert_stdout("10000\n[1, 2, 3]\nclosed\n");
    }
}

const PY_ECHO_ARGS: [&str; 6] = ["-c", "1000", "-r", "10", "-s", "64"];
const PY_ECHO_EXPECTED: &str = "mode=echo conns=1000 rounds=10 size=64 ok=10000 errors=0\n";

/// Starts `python3 echo_server.py 0` in `mode`, runs the native load client (1,000
/// connections, 10 round trips of 64 bytes each) against it and checks every byte came back.
/// Returns the server's [`Samples`] over the client's run.
#[track_caller]
fn python_echo(mode: Mode) -> Samples {
    let script = py_script("echo_server.py");
    let client = example("load_client");
    let mut server = Server::start_with_args(
        python3(),
        &[script.as_os_str()],
        mode,
        &[("GREENIFY_STATS", "1")],
    );
    let sampler = Sampler::start(server.pid());
    let port = server.port_arg();
    let out = Cmd::new(client)
        .args(PY_ECHO_ARGS)
        .args([LOOPBACK, port.as_str()])
        .timeout(Duration::from_secs(120))
        .run();
    let samples = sampler.stop();
    if !out.status.success() || out.stdout != PY_ECHO_EXPECTED {
        panic!(
            "load client against the {mode} python echo server failed or printed something \
             else than {PY_ECHO_EXPECTED:?}\n{}\n{}",
            out.report(),
            server.report()
        );
    }
    server.assert_alive();
    if mode == Mode::Greenified {
        // The workers and their preemption monitor, plus the spares that stood in for a
        // worker the kernel held in a call (its accept4 waits for the listening socket's
        // lock while 1,000 connections arrive, as in core.rs's server: CI beside two busy
        // loops ran a fourth OS thread). The report after the exit holds the stats line.
        let stats = server.stats_at_exit();
        let report = server.report();
        assert_greenified_os_threads(
            "the greenified python echo server",
            &stats,
            stats["spares_started"],
            Some((&samples, 5)),
            &report,
        );
    }
    samples
}

/// socketserver.ThreadingTCPServer natively: the reference for the greenified run.
#[test]
fn python_echo_server_native_serves_1000_clients() {
    let _serial = exclusive();
    python_echo(Mode::Native);
}

/// socketserver.ThreadingTCPServer greenified: 1,000 clients, byte-exact, on one OS thread.
#[test]
fn python_echo_server_greenified_serves_1000_clients_on_one_os_thread() {
    let _serial = exclusive();
    python_echo(Mode::Greenified);
}
