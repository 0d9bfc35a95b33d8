//! Green thread stacks at the edges: overflows of stacks that have no guard page left (past
//! the kernel's mapping limit), and the address-space limit (`ulimit -v`): how many threads
//! fit, whether a joined burst gives its address space back, and stack requests the system
//! cannot back.
//!
//! Run: `cargo test --release -p cdylib-tests --test stacks`.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// More live green threads than the guard budget could ever cover (one guard page costs two
/// of `vm.max_map_count`'s mappings), and at least 30,000.
fn threads_past_the_guard_budget() -> usize {
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("max_map_count")
        .trim()
        .parse()
        .expect("a number");
    (max_maps / 2).max(30_000)
}

/// Whether this kernel lets an unprivileged process write-protect never-touched pages with
/// userfaultfd and get a SIGBUS for a write there (what greenify watches stack gaps with).
fn gaps_can_be_watched() -> bool {
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const WANTED: u64 = (1 << 7) | (1 << 13); // UFFD_FEATURE_SIGBUS | UFFD_FEATURE_WP_UNPOPULATED
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
    // SAFETY: userfaultfd takes only flags.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
    if fd < 0 {
        return false;
    }
    let mut api = [0xaa_u64, WANTED, 0];
    // SAFETY: UFFDIO_API on the fresh userfaultfd, with its three-word struct; then the fd
    // is closed.
    let ok = unsafe {
        let ok = libc::ioctl(fd as libc::c_int, UFFDIO_API, api.as_mut_ptr()) == 0;
        libc::close(fd as libc::c_int);
        ok
    };
    ok && api[1] & WANTED == WANTED
}

const RAN_PAST: &str = "it ran past the bottom of its stack";
const WROTE_BELOW: &str = "it wrote below the bottom of its stack";

/// Each kind of overflow of a stack without a guard page ends the process with greenify's
/// report naming the thread and a signal, before the neighbouring thread (whose stack lies
/// just below) can run on a corrupted stack. Where the gap below each stack is watched
/// (userfaultfd), the overflowing write itself faults, as at a guard page, also in a
/// forked child (which does not inherit the watch: it watches its gaps again as it makes
/// its first stack); elsewhere the gap is checked at the next switch.
#[test]
fn overflows_past_the_guard_budget_are_reported_and_never_corrupt_a_neighbour() {
    let _g = shared();
    let program = test_program("stack_past_guards", &["-fno-stack-clash-protection"]);
    // Natively, runaway recursion and a filled 1 MiB buffer hit the guard page.
    for mode in ["recursion", "buffer"] {
        let native = Cmd::new(&program).args(["10", mode]).timeout(TIMEOUT).run();
        assert_eq!(
            native.status.signal(),
            Some(libc::SIGSEGV),
            "{}",
            native.report()
        );
    }
    let checked = [
        ("sparse", WROTE_BELOW, libc::SIGABRT),
        ("recursion", RAN_PAST, libc::SIGSEGV),
        ("buffer", WROTE_BELOW, libc::SIGABRT),
    ];
    let watched = [
        ("sparse", RAN_PAST, libc::SIGSEGV),
        ("recursion", RAN_PAST, libc::SIGSEGV),
        ("buffer", RAN_PAST, libc::SIGSEGV),
    ];
    let fillers = threads_past_the_guard_budget().to_string();
    let expected = if gaps_can_be_watched() {
        &watched[..]
    } else {
        &checked[..]
    };
    let mut runs = vec![
        (fillers.as_str(), "fork", expected),
        (fillers.as_str(), "", expected),
    ];
    if gaps_can_be_watched() {
        // A guarded stack (few threads): the sparse frame skips the guard page and lands in
        // the watched rest of the gap.
        runs.push(("10", "", &watched[..1]));
    }
    for (fillers, how, expected) in runs {
        for &(mode, why, signal) in expected {
            let green = Cmd::new(&program)
                .args([fillers, mode, how])
                .greenified()
                .timeout(TIMEOUT)
                .run();
            let what = format!("{fillers} {mode} {how}");
            assert!(
                green.stderr.contains(&format!(
                    "stack overflow in green thread \"hog\" (64 KiB stack): {why}"
                )),
                "{what}: {}",
                green.report()
            );
            assert_eq!(
                green.status.signal(),
                Some(signal),
                "{what}: {}",
                green.report()
            );
            assert_eq!(green.stdout, "", "{what}: {}", green.report());
        }
    }
}

/// A 64 KiB stack overflowed by a 65 KiB array (stack_overflow.c) with no guard pages at
/// all, alone or with a neighbour's stack below: the write lands in the gap below the stack,
/// watched (it faults) or checked at the next switch.
#[test]
fn stack_overflow_without_guard_pages_is_still_caught() {
    let _g = shared();
    let program = test_program("stack_overflow", &[]);
    let (why, signal) = if gaps_can_be_watched() {
        (RAN_PAST, libc::SIGSEGV)
    } else {
        (WROTE_BELOW, libc::SIGABRT)
    };
    for args in [&[][..], &["neighbour"][..]] {
        let out = Cmd::new(&program)
            .args(args)
            .greenified()
            .env("GREENIFY_GUARD_PAGES", "0")
            .timeout(TIMEOUT)
            .run();
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
}

/// Runs `stack_limits MODE LIMIT_MIB` natively and greenified; both succeed.
fn limits_both_ways(mode: &str, limit_mib: &str) -> (Output, Output) {
    let program = test_program("stack_limits", &[]);
    let native = Cmd::new(&program)
        .args([mode, limit_mib])
        .timeout(TIMEOUT)
        .run();
    native.assert_success();
    let green = Cmd::new(&program)
        .args([mode, limit_mib])
        .greenified()
        .timeout(TIMEOUT)
        .run();
    green.assert_success();
    (native, green)
}

/// "threads N stopped by E" -> (N, E).
fn threads_created(out: &Output) -> (usize, String) {
    let line = out.stdout.trim();
    let rest = line
        .strip_prefix("threads ")
        .unwrap_or_else(|| panic!("{}", out.report()));
    let (n, why) = rest
        .split_once(" stopped by ")
        .unwrap_or_else(|| panic!("{}", out.report()));
    (n.parse().expect("a count"), why.to_string())
}

#[test]
fn under_an_address_space_limit_at_least_as_many_threads_as_natively() {
    let _g = shared();
    let (native, green) = limits_both_ways("count", "150");
    let (native_n, native_why) = threads_created(&native);
    let (green_n, green_why) = threads_created(&green);
    assert!(native_n > 0, "{}", native.report());
    assert!(
        green_n >= native_n,
        "{}\n{}",
        native.report(),
        green.report()
    );
    assert_eq!(native_why, "EAGAIN", "{}", native.report());
    assert_eq!(green_why, "EAGAIN", "{}", green.report());
}

#[test]
fn a_joined_burst_of_threads_gives_its_address_space_back() {
    let _g = shared();
    let (native, green) = limits_both_ways("burst", "2048");
    native
        .assert_stdout("after joining a burst of threads (stopped by EAGAIN), malloc 1 GiB: ok\n");
    assert_same_stdout(&native, &green);
}

#[test]
fn a_stack_the_system_cannot_back_fails_as_natively() {
    let _g = shared();
    // With and without an address-space limit: natively EAGAIN (overcommit refuses a
    // 1 TiB stack on any machine with less memory than that).
    for limit in ["0", "2048"] {
        let (native, green) = limits_both_ways("huge", limit);
        assert_same_stdout(&native, &green);
    }
}
