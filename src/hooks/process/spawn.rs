//! Starting programs: posix_spawn(p) and the exec family. Before any child can inherit
//! fds, greenify's O_NONBLOCK sockets go back to blocking for it.

use crate::hooks::{children, enter};
use crate::real;
use crate::runtime::fdtable;
use libc::{c_char, c_int, pid_t};

#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let _green = enter();
    // SAFETY: forwarded.
    unsafe { spawn(pid, path, actions, attr, argv, envp) }
}

/// posix_spawn with the fds released for the child first (also for system and popen).
pub(super) unsafe fn spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: forwarded.
    let spawned = || unsafe { real::posix_spawn(pid, path, actions, attr, argv, envp) };
    // SAFETY: `pid` is posix_spawn's, per the caller.
    unsafe { releasing_fds(pid, spawned) }
}

/// Runs a posix_spawn-like `call` once greenify's sockets are blocking again for the
/// child, and records the child it started at `pid`.
///
/// # Safety
/// `pid` is NULL or where `call` writes the child's pid on success.
unsafe fn releasing_fds(pid: *mut pid_t, call: impl FnOnce() -> c_int) -> c_int {
    fdtable::release_for_children();
    let result = call();
    // A pipe made by another worker during the spawn may be the child's too.
    fdtable::forget_private();
    if result == 0 && !pid.is_null() {
        // SAFETY: the call succeeded and wrote the pid (per the caller).
        children::started(unsafe { *pid });
    }
    result
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let _green = enter();
    // SAFETY: forwarded.
    let spawned = || unsafe { real::posix_spawnp(pid, file, actions, attr, argv, envp) };
    // SAFETY: `pid` is posix_spawnp's.
    unsafe { releasing_fds(pid, spawned) }
}

macro_rules! exec_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            let _green = enter();
            let _exec = crate::hooks::escapes::exec();
            fdtable::release_for_children();
            // SAFETY: forwarded.
            unsafe { real::$name($($arg),*) }
        }
    )*};
}

exec_hooks! {
    execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char);
    execv(path: *const c_char, argv: *const *const c_char);
    execvp(file: *const c_char, argv: *const *const c_char);
    execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char);
    fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char);
}
