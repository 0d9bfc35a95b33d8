//! fork and vfork: the child keeps only the calling thread, and the scheduler resets
//! itself in it (atfork handlers run as the program's code), after greenify's allocator
//! dropped a lock another OS thread held.

use crate::hooks::{children, enter};
use crate::runtime::fdtable;
use crate::{real, runtime};
use libc::pid_t;

#[no_mangle]
pub unsafe extern "C" fn fork() -> pid_t {
    let green = enter();
    fdtable::release_for_children();
    runtime::alloc::before_fork();
    // SAFETY: forwarded.
    let fork = || unsafe { real::fork() };
    let pid = match green {
        Some(_) => crate::hooks::fork_as_application(fork),
        None => fork(),
    };
    // A pipe made by another worker during the fork may be the child's too.
    fdtable::forget_private();
    if pid == 0 {
        runtime::alloc::after_fork_child();
        runtime::sched::after_fork_child();
        runtime::offload::after_fork_child();
        runtime::monitor::after_fork_child();
        runtime::own_threads::after_fork_child();
        children::forget_all();
        crate::hooks::escapes::after_fork_child(green.is_some());
    } else {
        children::started(pid);
    }
    drop(green);
    pid
}

/// vfork behaves as fork: a hook cannot return into a vfork child while sharing the
/// parent's stack (see the README).
#[no_mangle]
pub unsafe extern "C" fn vfork() -> pid_t {
    // SAFETY: fork is a valid implementation of vfork for conforming programs.
    unsafe { fork() }
}
