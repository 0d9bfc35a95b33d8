//! system, popen and pclose, rebuilt on posix_spawn and a green wait (glibc's own would
//! wait for the child inside, where no hook sees it).

use super::spawn::spawn;
use super::wait::wait4_as;
use crate::hooks::{enter, Green};
use crate::runtime::fdtable;
use crate::{real, runtime};
use libc::{c_char, c_int, pid_t};
use std::collections::HashMap;
use std::sync::Mutex;

extern "C" {
    static mut environ: *mut *mut c_char;
}

/// Spawns `/bin/sh -c cmd` with `actions`, the signal settings system() and popen()
/// give the child. Returns the pid or an error number.
unsafe fn spawn_shell(
    cmd: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    default_signals: &[c_int],
    mask: Option<&libc::sigset_t>,
) -> Result<pid_t, c_int> {
    let sh = c"/bin/sh";
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, std::ptr::null()];
    // SAFETY: a local spawn attr, initialised, filled and destroyed here.
    unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        let mut flags = 0;
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut defaults);
        for &sig in default_signals {
            libc::sigaddset(&mut defaults, sig);
        }
        if !default_signals.is_empty() {
            libc::posix_spawnattr_setsigdefault(&mut attr, &defaults);
            flags |= libc::POSIX_SPAWN_SETSIGDEF;
        }
        if let Some(mask) = mask {
            libc::posix_spawnattr_setsigmask(&mut attr, mask);
            flags |= libc::POSIX_SPAWN_SETSIGMASK;
        }
        libc::posix_spawnattr_setflags(&mut attr, flags as libc::c_short);
        let mut pid = 0;
        let err = spawn(
            &mut pid,
            sh.as_ptr(),
            actions,
            &attr,
            argv.as_ptr() as *const *mut c_char,
            environ as *const *mut c_char,
        );
        libc::posix_spawnattr_destroy(&mut attr);
        if err == 0 {
            Ok(pid)
        } else {
            Err(err)
        }
    }
}

/// Waits for `pid` as glibc's system()/pclose() do: restarting after signals.
fn wait_child(green: Option<&Green>, pid: pid_t) -> c_int {
    let mut status = 0;
    loop {
        // SAFETY: our own child and status.
        let r = unsafe { wait4_as(green, pid, &mut status, 0, std::ptr::null_mut()) };
        if r == pid {
            return status;
        }
        if r < 0 && crate::hooks::errno() != libc::EINTR {
            return -1;
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::system(cmd) };
    };
    if cmd.is_null() {
        drop(green);
        // SAFETY: system(NULL) only asks whether a shell exists.
        return unsafe { real::system(cmd) };
    }
    // As glibc: SIGINT and SIGQUIT ignored and SIGCHLD blocked while the command runs;
    // the child gets the defaults and the original mask back.
    // SAFETY: zeroed sigactions and sigsets are valid; the calls use local values.
    unsafe {
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        let (mut old_int, mut old_quit): (libc::sigaction, libc::sigaction) =
            (std::mem::zeroed(), std::mem::zeroed());
        real::sigaction(libc::SIGINT, &ignore, &mut old_int);
        real::sigaction(libc::SIGQUIT, &ignore, &mut old_quit);
        let chld = 1u64 << (libc::SIGCHLD - 1);
        let old = runtime::sched::sigmask(libc::SIG_BLOCK, Some(chld)).unwrap_or(0);
        let mut old_mask: libc::sigset_t = std::mem::zeroed();
        *(&mut old_mask as *mut libc::sigset_t).cast::<u64>() = old;
        let status = match spawn_shell(
            cmd,
            std::ptr::null(),
            &[libc::SIGINT, libc::SIGQUIT],
            Some(&old_mask),
        ) {
            Ok(pid) => wait_child(Some(&green), pid),
            // The shell could not run: status 127, as glibc.
            Err(_) => 127 << 8,
        };
        real::sigaction(libc::SIGINT, &old_int, std::ptr::null_mut());
        real::sigaction(libc::SIGQUIT, &old_quit, std::ptr::null_mut());
        let _ = runtime::sched::sigmask(libc::SIG_SETMASK, Some(old));
        status
    }
}

/// popen streams greenify opened: the FILE, its fd, the child.
struct Popened {
    fd: c_int,
    pid: pid_t,
}

fn popened() -> &'static Mutex<HashMap<usize, Popened>> {
    static MAP: std::sync::OnceLock<Mutex<HashMap<usize, Popened>>> = std::sync::OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    let Some(green) = enter() else {
        // SAFETY: forwarded.
        return unsafe { real::popen(cmd, mode) };
    };
    // SAFETY: the program's mode string.
    let mode_bytes = unsafe { std::ffi::CStr::from_ptr(mode) }.to_bytes();
    let Some((reading, cloexec)) = popen_mode(mode_bytes) else {
        return no_stream(libc::EINVAL);
    };
    let mut fds = [0; 2];
    // SAFETY: a local array; both ends CLOEXEC until the child has its end.
    if unsafe { real::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return std::ptr::null_mut();
    }
    let (mine, theirs, target) = if reading {
        (fds[0], fds[1], 1)
    } else {
        (fds[1], fds[0], 0)
    };
    // SAFETY: local file actions: the child's end onto its stdin/stdout, and the other
    // popen streams closed in the child, as POSIX asks.
    let spawned = unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        libc::posix_spawn_file_actions_adddup2(&mut actions, theirs, target);
        for other in popened().lock().unwrap_or_else(|e| e.into_inner()).values() {
            libc::posix_spawn_file_actions_addclose(&mut actions, other.fd);
        }
        let r = spawn_shell(cmd, &actions, &[], None);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        r
    };
    // SAFETY: our own pipe end.
    unsafe { real::close(theirs) };
    let pid = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            // SAFETY: our own pipe end.
            unsafe { real::close(mine) };
            return no_stream(e);
        }
    };
    if !cloexec {
        // SAFETY: our own fd.
        unsafe { real::fcntl(mine, libc::F_SETFD, 0) };
    }
    fdtable::set(mine, fdtable::Kind::Gated, false, false);
    drop(green);
    // SAFETY: our own fd; the stream parks on it (see stdio.rs).
    let file = unsafe { crate::hooks::stdio::green_stream(mine, reading) };
    if file.is_null() {
        // SAFETY: our own fd.
        unsafe { real::close(mine) };
        return file;
    }
    popened()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(file as usize, Popened { fd: mine, pid });
    file
}

/// popen's mode as glibc parses it: any sequence of 'r', 'w' and 'e' with exactly one of
/// 'r' and 'w' (repeats allowed); gives (reading, close-on-exec).
fn popen_mode(mode: &[u8]) -> Option<(bool, bool)> {
    let (mut read, mut write, mut cloexec) = (false, false, false);
    for &c in mode {
        match c {
            b'r' => read = true,
            b'w' => write = true,
            b'e' => cloexec = true,
            _ => return None,
        }
    }
    (read != write).then_some((read, cloexec))
}

/// popen's failure: NULL with errno `e`.
fn no_stream(e: c_int) -> *mut libc::FILE {
    crate::hooks::set_errno(e);
    std::ptr::null_mut()
}

#[no_mangle]
pub unsafe extern "C" fn pclose(file: *mut libc::FILE) -> c_int {
    let entry = popened()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(file as usize));
    let Some(entry) = entry else {
        // SAFETY: a stream glibc's popen opened.
        return unsafe { real::pclose(file) };
    };
    // SAFETY: our own stream: closing it closes the pipe, so the child sees EOF.
    unsafe { libc::fclose(file) };
    let green = enter();
    wait_child(green.as_ref(), entry.pid)
}
