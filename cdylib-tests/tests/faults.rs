//! Programs that run into the process's limits (`cdylib-tests/c/fault_*.c`): greenify must
//! behave as natively where its own resources compete with the program's.
//!
//! Run: `cargo test --release -p cdylib-tests --test faults` (builds libgreenify.so itself).

use std::time::Duration;

use cdylib_tests::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A fork with every fd up to RLIMIT_NOFILE in use: the child runs (closes and opens
/// fds, starts threads, sleeps, reads a pipe filled later, forks again), as natively; so
/// do posix_spawn, system and popen at the limit. Under the inherited limit, with the
/// soft limit lowered below greenify's fds, and with the hard limit lowered too (the
/// child then cannot open greenify's fds at all and runs natively).
#[test]
fn fork_at_the_fd_limit_runs_the_child_as_natively() {
    let _g = shared();
    let program = test_program("fault_fork_fd_limit", &[]);
    for mode in ["soft", "lowsoft", "lowhard"] {
        let native = Cmd::new(&program).arg(mode).timeout(TIMEOUT).run();
        native.assert_success();
        assert!(native.stdout.contains("child: ok\n"), "{}", native.report());
        let green = Cmd::new(&program)
            .arg(mode)
            .greenified()
            .timeout(TIMEOUT)
            .run();
        green.assert_success();
        assert_same_stdout(&native, &green);
    }
}
