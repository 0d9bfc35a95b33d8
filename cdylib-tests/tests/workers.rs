//! Several workers (`GREENIFY_WORKERS`): green threads run on several OS threads at once,
//! and a worker stuck in a call no hook saw hands its threads to a spare OS thread.
//!
//! Run: `cargo test --release -p cdylib-tests --test workers`. The test of two spinning
//! threads needs 2 CPUs (skipped, saying so, with fewer).

use std::time::Duration;

use cdylib_tests::*;

/// Whether the machine has 2 CPUs or more; says the test `name` is skipped if not (its
/// workers could not run at once).
fn two_cpus(name: &str) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipped: {name} needs 2 CPUs, has {cpus}");
    }
    cpus >= 2
}

/// Two green threads that compute without waiting each see the other advance, on two
/// OS threads, with two workers (one worker would switch between them only at its
/// preemption slices, far too seldom to finish in time).
#[test]
fn two_workers_run_two_spinning_threads_at_once() {
    if !two_cpus("two_workers_run_two_spinning_threads_at_once") {
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_parallel", &[]);
    let expected = "both saw the other advance 20000 times on another OS thread\n";
    Cmd::new(&program)
        .timeout(Duration::from_secs(60))
        .run()
        .assert_success()
        .assert_stdout(expected);
    Cmd::new(&program)
        .greenified()
        .env("GREENIFY_WORKERS", "2")
        .timeout(Duration::from_secs(60))
        .run()
        .assert_success()
        .assert_stdout(expected);
}

/// One green thread blocks its OS thread in a call no hook sees (an inline-assembly `read`
/// of an empty pipe) and another must run to write the byte it waits for. With the default
/// single worker that deadlocked: the monitor now hands the stuck worker's other threads
/// to a spare OS thread. When the read returns, the reader goes on on its own OS thread
/// (its TLS unchanged) and the spare parks again: the OS threads that are not parked
/// spares are the workers and the monitor again. With two workers, the other one runs the
/// writer, and the count comes back the same way.
#[test]
fn a_stuck_worker_hands_its_threads_to_a_spare_os_thread() {
    let _serial = exclusive();
    let program = test_program("handoff", &[]);
    let read = "reader: read 1 byte 'x', same TLS: yes\n";
    Cmd::new(&program)
        .arg("1")
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success()
        .assert_stdout(&format!("{read}OS threads running: 1\n"));
    for workers in [1, 2] {
        // the workers and the monitor
        let expected = workers + 1;
        Cmd::new(&program)
            .arg(expected.to_string())
            .greenified()
            .env("GREENIFY_WORKERS", workers.to_string())
            .timeout(Duration::from_secs(30))
            .run()
            .assert_success()
            .assert_stdout(&format!("{read}OS threads running: {expected}\n"));
    }
}

/// A library's constructor that creates the process's first threads inside `dlopen` (as
/// OpenBLAS does when numpy loads it) starts the workers and the monitor there, while glibc
/// holds its loader lock: none of their starts may wait for that lock (std's start of a
/// thread registered a TLS destructor, which takes it: numpy hung so).
#[test]
fn threads_a_library_constructor_creates_inside_dlopen_run() {
    let _g = shared();
    let library = test_program("ctor_threads_lib", &["-shared", "-fPIC"]);
    let program = test_program("ctor_threads", &[]);
    let library = library.to_str().expect("a UTF-8 path");
    let native = Cmd::new(&program)
        .arg(library)
        .timeout(Duration::from_secs(30))
        .run();
    native
        .assert_success()
        .assert_stdout("the constructor's threads computed 5999995\n");
    let green = Cmd::new(&program)
        .arg(library)
        .greenified()
        .timeout(Duration::from_secs(30))
        .run();
    green.assert_success().assert_stdout(&native.stdout);
}

/// The counts in `stdout`, whose words must be those of `shape` with a count wherever
/// `shape` has `#` (a test program's one line of output).
fn counts<const N: usize>(stdout: &str, shape: &str) -> [u64; N] {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let wanted: Vec<&str> = shape.split_whitespace().collect();
    let mut found = Vec::new();
    let fits = words.len() == wanted.len()
        && words.iter().zip(&wanted).all(|(word, want)| match *want {
            "#" => word.parse().map(|count| found.push(count)).is_ok(),
            _ => word == want,
        });
    match found.try_into() {
        Ok(counts) if fits => counts,
        _ => panic!("unexpected output {stdout:?} (want {shape:?})"),
    }
}

/// Parses "turns N crossings C sleeps S" (see workers_locality.c).
fn locality(stdout: &str) -> [u64; 3] {
    counts(stdout, "turns # crossings # sleeps #")
}

/// Two threads that take strict turns (a condition variable, or two pipes) stay on one
/// OS thread with two workers: the thread a running thread wakes runs next on the waker's
/// worker (Go's `runnext`), where it used to go to the shared queue and wake the idle
/// worker (a condvar turn in forty then ran on the other OS thread, and one in twenty
/// woke a worker from its sleep); and the poller keeps its role when all it found is the
/// thread it runs itself (else every other pipe turn crossed), or lends that thread to the
/// worker running its partner inside greenify (else, in one pipe run in ten, the pair
/// settled one thread on each worker, hundreds of turns crossing); nor is the waker taken
/// for one that runs on after its wakes when the monitor looks twice within microseconds
/// (in one pipe run in fifteen the pair split so, see `take_next`: hence several runs).
/// Counted, not timed: the turns taken on another OS thread than the turn before, and how
/// often the process's OS threads but the monitor slept in the kernel meanwhile (natively
/// each thread is an OS thread: every turn crosses).
#[test]
fn threads_that_take_turns_stay_on_one_os_thread_with_two_workers() {
    let _serial = exclusive();
    let program = test_program("workers_locality", &[]);
    for kind in ["condvar", "pipe"] {
        let native = Cmd::new(&program)
            .arg(kind)
            .timeout(Duration::from_secs(60))
            .run();
        native.assert_success();
        let [turns, crossings, _] = locality(&native.stdout);
        assert_eq!((turns, crossings), (20000, 19999), "{kind} natively");
        for workers in ["1", "2", "2", "2", "2", "2", "2", "2", "2"] {
            let out = Cmd::new(&program)
                .arg(kind)
                .greenified()
                .env("GREENIFY_WORKERS", workers)
                // Its counters (steals, runnext_late) in a failure's report.
                .env("GREENIFY_STATS", "1")
                .timeout(Duration::from_secs(60))
                .run();
            out.assert_success();
            let [turns, crossings, sleeps] = locality(&out.stdout);
            assert_eq!(turns, 20000);
            // A few: the workers' start and end, a thread the monitor saw wait while its
            // worker's OS thread lost its CPU (see take_next).
            assert!(
                crossings * 100 < turns && sleeps * 100 < turns,
                "{kind} with {workers} workers: {crossings} of {turns} turns on another OS \
                 thread than the turn before, {sleeps} sleeps in the kernel\n{}",
                out.report()
            );
        }
    }
}

/// A thread wakes another and then spins on a flag only the woken one sets: the woken
/// thread waits to run next on its waker's worker, and the idle worker must take it from
/// there (at the monitor's next look), also with preemption off (GREENIFY_SLICE_MS=0,
/// with the watchdog keeping the monitor on: else it hung), and without any monitor.
#[test]
fn a_thread_woken_by_one_that_runs_on_is_taken_by_an_idle_worker() {
    if !two_cpus("a_thread_woken_by_one_that_runs_on_is_taken_by_an_idle_worker") {
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_wake_spin", &[]);
    let expected = "the woken thread ran while its waker spun\n";
    Cmd::new(&program)
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success()
        .assert_stdout(expected);
    for env in [
        &[][..],
        &[("GREENIFY_SLICE_MS", "0"), ("GREENIFY_WATCHDOG", "600000")],
        &[("GREENIFY_SLICE_MS", "0")],
    ] {
        let mut cmd = Cmd::new(&program)
            .greenified()
            .env("GREENIFY_WORKERS", "2")
            .timeout(Duration::from_secs(30));
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run().assert_success().assert_stdout(expected);
    }
}

/// Parses "items N taken while the producer computed T" (see workers_producer.c).
fn producer_counts(stdout: &str) -> [u64; 2] {
    counts(stdout, "items # taken within 1 ms #")
}

/// A producer wakes its consumer at each item and computes on for 6 ms, as `sort
/// --parallel`'s merging threads hand work over: with two workers the consumer takes
/// most items within 1 ms of the offer, as natively. A waker seen to run on (the monitor
/// had an idle worker take a thread it woke from its runnext) has the threads it wakes
/// queued for an idle worker at once; before, each waited in the producer's runnext for
/// the monitor's next look (2.5 to 5 ms): 106 to 123 items of 200 within 1 ms, against
/// 198 to 200 now and 199 natively (182 to 189 both ways under two busy loops). The
/// producer computes longer than two looks, so that the monitor sees it run on at its
/// first item: with 2 ms, its dispatches rarely spanned a look, and in 3 runs of 20 it
/// was never seen (runnext_late=0, 0 or 1 item taken at once).
#[test]
fn a_thread_woken_by_one_that_computes_on_runs_at_once_on_an_idle_worker() {
    if !two_cpus("a_thread_woken_by_one_that_computes_on_runs_at_once_on_an_idle_worker") {
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_producer", &[]);
    let native = Cmd::new(&program).timeout(Duration::from_secs(60)).run();
    native.assert_success();
    let [items, natively] = producer_counts(&native.stdout);
    assert_eq!(items, 200);
    let out = Cmd::new(&program)
        .greenified()
        .env("GREENIFY_WORKERS", "2")
        .timeout(Duration::from_secs(60))
        .run();
    out.assert_success();
    let [items, taken] = producer_counts(&out.stdout);
    assert_eq!(items, 200);
    assert!(
        taken * 4 >= natively * 3,
        "{taken} items of {items} taken within 1 ms of the offer (natively {natively})\n{}",
        out.report()
    );
}

/// Runs test program `name` natively, then greenified with one worker and with two (with
/// the stats line); each run must succeed.
fn native_then_one_and_two_workers(name: &str) -> [Output; 3] {
    let program = test_program(name, &[]);
    let native = Cmd::new(&program).timeout(Duration::from_secs(120)).run();
    native.assert_success();
    let greenified = |workers: &str| {
        let out = Cmd::new(&program)
            .greenified()
            .env("GREENIFY_WORKERS", workers)
            .env("GREENIFY_STATS", "1")
            .timeout(Duration::from_secs(120))
            .run();
        out.assert_success();
        out
    };
    [native, greenified("1"), greenified("2")]
}

/// Parses "requests N lock_waits W crossings C" (see workers_gil.c).
fn gil_counts(stdout: &str) -> [u64; 3] {
    counts(stdout, "requests # lock_waits # crossings #")
}

/// A server whose threads take turns at one big lock, dropped around each read and write
/// (as CPython's threads take the GIL), does not lose with two workers what one gave it:
/// with one worker its threads never wait for the lock (they switch only where a read
/// waits, the lock dropped); with two, threads of both ran at once and waited for each
/// other's lock at about every request (30k requests: 38k to 43k waits), until the
/// scheduler saw the lock hand-offs across workers and gathered the threads on one
/// worker (6k to 12k). Counted, not timed: the waits for the lock per request.
#[test]
fn threads_that_take_turns_at_one_lock_gather_on_one_worker() {
    let _serial = exclusive();
    let [native, with_one, with_two] = native_then_one_and_two_workers("workers_gil");
    assert_eq!(gil_counts(&native.stdout)[0], 30000, "natively");
    for (workers, out) in [(1, with_one), (2, with_two)] {
        let [requests, waits, crossings] = gil_counts(&out.stdout);
        assert_eq!(requests, 30000);
        // The server's stats line (its 200 threads; the client is a process of its own)
        // tells the gathering (one worker has nothing to gather on).
        let server = stats_lines_with(&out.stderr, "threads_created", "200").next();
        let gatherings = server.map(|stats| stats["gatherings"]);
        assert_eq!(
            gatherings.map(|n| n > 0),
            Some(workers == 2),
            "{}",
            out.report()
        );
        let bound = if workers == 1 {
            requests / 100
        } else {
            requests / 2
        };
        assert!(
            waits < bound,
            "with {workers} workers: {waits} waits for the lock in {requests} requests \
             ({crossings} on another OS thread than the request before)\n{}",
            out.report()
        );
    }
}

/// Parses "samples N apart A cpu C of T" (see workers_pairs.c).
fn pairs_counts(stdout: &str) -> [u64; 4] {
    counts(stdout, "samples # apart # cpu # of #")
}

/// 64 independent condvar pairs, each handing over every few hundred nanoseconds, gather
/// on one worker with two: spread over both, the workers spent a third to a half of
/// their CPU waiting for each other at the scheduler's lock (2 to 8 times one worker's
/// CPU per turn, and slower), and the scheduler now sees that spin and gathers them (see
/// `Gather`, worker.rs). Which runs spread was a matter of luck and load: in some series
/// one in three, in others every run (about 40% of the turns on the second OS thread,
/// which used half the CPU; gathered, under 2%, and next to no CPU). Counted, not
/// timed: the sampled turns taken on another OS thread than the busiest.
#[test]
fn condvar_pairs_that_hand_over_briefly_gather_on_one_worker() {
    let _serial = exclusive();
    let [native, with_one, with_two] = native_then_one_and_two_workers("workers_pairs");
    assert_eq!(pairs_counts(&native.stdout)[0], 80000, "natively");
    for (workers, out) in [(1, with_one), (2, with_two)] {
        let [samples, apart, cpu_apart, cpu] = pairs_counts(&out.stdout);
        assert_eq!(samples, 80000);
        assert!(
            apart * 4 < samples,
            "with {workers} workers: {apart} of {samples} sampled turns on another OS thread \
             than the busiest (which used {} of the {cpu} CPU ticks)\n{}",
            cpu - cpu_apart,
            out.report()
        );
    }
}

/// 64 independent condvar pairs with about 3 µs of work after every turn, beside two
/// spinning processes, run on both workers with two: each worker's pairs stay on it, so
/// the second worker adds its CPU share at no cost per turn. The process gets about one
/// CPU of the two, under the 1.25 at which threads that run briefly gathered on the first
/// worker (see `Gather`, worker.rs): main's library kept them there in every run (5 to 8%
/// of the sampled turns on the other OS thread, against 40 to 50% spread); the gathering
/// now ends for good when, spread, the threads dispatch at least 3/4 as fast as they did
/// gathered, on at most 5/4 of the CPU a dispatch. Counted, not timed: the sampled turns
/// taken on another OS thread than the busiest.
#[test]
fn condvar_pairs_that_work_between_turns_use_both_workers_beside_spinners() {
    if !two_cpus("condvar_pairs_that_work_between_turns_use_both_workers_beside_spinners") {
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_pairs", &[]);
    let out = Cmd::new(&program)
        .args(["10000", "2000", "2"])
        .greenified()
        .env("GREENIFY_WORKERS", "2")
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_success();
    let [samples, apart, cpu_apart, cpu] = pairs_counts(&out.stdout);
    assert_eq!(samples, 8064);
    assert!(
        apart * 4 >= samples,
        "{apart} of {samples} sampled turns on another OS thread than the busiest (which \
         used {} of the {cpu} CPU ticks)\n{}",
        cpu - cpu_apart,
        out.report()
    );
}

/// Parses "requests N crossings C" (see workers_one_cpu.c).
fn one_cpu_counts(stdout: &str) -> [u64; 2] {
    counts(stdout, "requests # crossings #")
}

/// A thread-per-connection echo server whose process has one CPU (pinned to it, with its
/// load generator) keeps its threads on one worker with two: the workers only take turns
/// on that CPU, and a thread that resumes on another OS thread than its request before
/// finds its stack, TLS and socket cold there (the plain echo with 2 workers, its load
/// generator busy on the other of 2 CPUs, made 20 to 25% fewer round trips than with one
/// worker). The scheduler sees the process use about one CPU while its threads run
/// briefly, and gathers them on the first worker. Counted, not timed: the requests that
/// ran on another OS thread than the same connection's request before (without the
/// gathering, 2 in 5; with it, 1 in 200 to 1 in 20: the workers spread again for a few
/// milliseconds now and then, to look whether a second CPU became free).
#[test]
fn threads_of_a_process_that_gets_one_cpu_gather_on_one_worker() {
    let _serial = exclusive();
    let [native, with_one, with_two] = native_then_one_and_two_workers("workers_one_cpu");
    assert_eq!(one_cpu_counts(&native.stdout), [96000, 0], "natively");
    for (workers, out) in [(1, with_one), (2, with_two)] {
        let [requests, crossings] = one_cpu_counts(&out.stdout);
        assert_eq!(requests, 96000);
        assert!(
            crossings * 8 < requests,
            "with {workers} workers: {crossings} of {requests} requests on another OS thread \
             than the connection's request before\n{}",
            out.report()
        );
    }
}

/// Ready threads queued on a worker that computes without waiting run on the idle one
/// (see workers_steal.c): threads created by a thread that then spins (new threads are
/// spread over the workers' queues, half on the spinner's), and threads that wake from a
/// sleep while the main thread spins, none lost. With preemption off and no monitor
/// (`GREENIFY_SLICE_MS=0`), nothing but the idle worker's steal runs the threads queued
/// behind the spinner: without it the spawn case failed (8 of 16 ran). The steals are
/// counted where a steal is the only way: the spawn case (the spinner's queued threads
/// run elsewhere only if stolen: preempted, the spinner's worker would run them on the
/// spinner's OS thread, which the program reports), and the wake case without a monitor.
/// With one, the worker whose look at epoll finds the sleeper runs it next, and a round
/// steals only if the idle worker takes the new sleeper before the main thread waits for
/// it to start: a matter of the OS's timing (none in 20 rounds once in about 70 runs of
/// the suite beside two busy loops).
#[test]
fn threads_queued_on_a_busy_worker_are_stolen_by_an_idle_one() {
    if !two_cpus("threads_queued_on_a_busy_worker_are_stolen_by_an_idle_one") {
        return;
    }
    let _serial = exclusive();
    let program = test_program("workers_steal", &[]);
    let cases = [
        (
            "spawn",
            "16 threads ran while their creator spun, on other OS threads\n",
        ),
        (
            "wake",
            "the sleeper ran while the main thread spun, 20 rounds\n",
        ),
    ];
    for (case, expected) in cases {
        Cmd::new(&program)
            .arg(case)
            .timeout(Duration::from_secs(30))
            .run()
            .assert_success()
            .assert_stdout(expected);
        for slice in ["10", "0"] {
            let out = Cmd::new(&program)
                .arg(case)
                .greenified()
                .env("GREENIFY_WORKERS", "2")
                .env("GREENIFY_SLICE_MS", slice)
                .env("GREENIFY_STATS", "1")
                .timeout(Duration::from_secs(30))
                .run();
            out.assert_success().assert_stdout(expected);
            let stats = parse_stats(&out.stderr).unwrap_or_else(|| panic!("{}", out.report()));
            if case == "wake" && slice != "0" {
                continue;
            }
            assert!(
                stat(&stats, "steals") > 0,
                "{case} with GREENIFY_SLICE_MS={slice}: no steal\n{}",
                out.report()
            );
        }
    }
}
