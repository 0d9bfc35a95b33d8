//! Processes: fork, vfork, posix_spawn, exec, the wait family, system and popen.
//!
//! * fork: the child keeps only the calling thread; the parent's epoll instance and
//!   doorbell (shared across fork) only hold their numbers in it until its own replace
//!   them at its first wait (see sched::after_fork_child); atfork handlers run in the
//!   usual order inside glibc's fork, as the program's code: the prepare and parent
//!   handlers' lock waits park (the holder may be a green thread); the child's handlers
//!   run before the child's runtime is reset, so their calls pass through.
//! * Before any child can inherit fds, sockets greenify made O_NONBLOCK go back to
//!   blocking for it (see fdtable::release_for_children).
//! * The waits park: a child's exit is watched through its pidfd; a wait for "any
//!   child" watches the pidfds of the children started here (children.rs); waits for
//!   stops, and for children started behind our back, look again every few milliseconds.
//! * system() and popen() are rebuilt on posix_spawn and a green wait (glibc's own wait
//!   internally, which no hook sees).

use super::{children, enter, fail, memory, Green};
use crate::real;
use crate::runtime::{self, fdtable, Interest, Reason, Wake};
use libc::{c_char, c_int, id_t, idtype_t, pid_t, siginfo_t};
use rustix::fd::IntoRawFd;
use std::collections::HashMap;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

extern "C" {
    static mut environ: *mut *mut c_char;
}

#[no_mangle]
pub unsafe extern "C" fn fork() -> pid_t {
    let green = enter();
    fdtable::release_for_children();
    // SAFETY: forwarded.
    let fork = || unsafe { real::fork() };
    let pid = match green {
        Some(_) => super::fork_as_application(fork),
        None => fork(),
    };
    if pid == 0 {
        runtime::sched::after_fork_child();
        runtime::offload::after_fork_child();
        runtime::monitor::after_fork_child();
        children::forget_all();
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
unsafe fn spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    fdtable::release_for_children();
    // SAFETY: forwarded.
    let result = unsafe { real::posix_spawn(pid, path, actions, attr, argv, envp) };
    if result == 0 && !pid.is_null() {
        // SAFETY: posix_spawn succeeded and wrote the pid.
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
    fdtable::release_for_children();
    // SAFETY: forwarded.
    let result = unsafe { real::posix_spawnp(pid, file, actions, attr, argv, envp) };
    if result == 0 && !pid.is_null() {
        // SAFETY: posix_spawnp succeeded and wrote the pid.
        children::started(unsafe { *pid });
    }
    result
}

macro_rules! exec_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            let _green = enter();
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

/// How often a wait that no pidfd can watch looks again (stops, children not started
/// through the hooks).
const WAIT_POLL: Duration = Duration::from_millis(5);
/// How often a wait on a pidfd looks again anyway: a child that asked to be traced
/// (PTRACE_TRACEME) reports its stops to a plain waitpid, and no pidfd signals them.
const TRACEME_POLL: Duration = Duration::from_millis(50);

/// Parks until `check` (a WNOHANG version of the wait) reports something. With
/// `exits_only`, `pid > 0` waits on that child's pidfd and other waits on the pidfds of
/// the children started through the hooks; every wait also looks again every WAIT_POLL
/// (TRACEME_POLL on a single child's pidfd).
fn green_wait(pid: pid_t, exits_only: bool, mut check: impl FnMut() -> Option<c_int>) -> c_int {
    let pidfd = if pid > 0 && exits_only {
        children::open_pidfd(pid).map_or(-1, IntoRawFd::into_raw_fd)
    } else {
        -1
    };
    let result = loop {
        if let Some(result) = check() {
            break result;
        }
        let wake = if pidfd >= 0 {
            let deadline = Instant::now() + TRACEME_POLL;
            runtime::wait_fd(pidfd, Interest::Read, Reason::Join, Some(deadline))
        } else {
            let deadline = Instant::now() + WAIT_POLL;
            let watch = (pid <= 0 && exits_only).then(children::Watch::open);
            match watch.as_ref().map(children::Watch::fds) {
                Some(fds) if !fds.is_empty() => {
                    runtime::wait_fds(fds, Reason::Join, Some(deadline))
                }
                _ => runtime::park_interruptible(Reason::Join, Some(deadline)),
            }
        };
        match wake {
            // waitpid is restarted under SA_RESTART (signal(7)).
            Wake::Interrupted { restart: false } => break fail(libc::EINTR),
            _ => continue,
        }
    };
    if pidfd >= 0 {
        children::close_pidfd(pidfd);
    }
    result
}

/// The process has traced another (ptrace): its waits also report the tracees' stops,
/// which no pidfd signals.
static TRACER: AtomicBool = AtomicBool::new(false);

fn watches_exit_only(options: c_int) -> bool {
    options & (libc::WUNTRACED | libc::WCONTINUED) == 0 && !TRACER.load(Relaxed)
}

/// ptrace, as glibc's wrapper (PEEK requests return the word and clear errno), noting
/// that this process traces: from then on its waits look for stops too.
#[no_mangle]
pub unsafe extern "C" fn ptrace(
    request: libc::c_uint,
    pid: pid_t,
    addr: *mut libc::c_void,
    data: *mut libc::c_void,
) -> libc::c_long {
    if request != libc::PTRACE_TRACEME {
        TRACER.store(true, Relaxed);
    }
    let peek = matches!(
        request,
        libc::PTRACE_PEEKTEXT | libc::PTRACE_PEEKDATA | libc::PTRACE_PEEKUSER
    );
    let mut word: libc::c_long = 0;
    let data = if peek {
        (&mut word as *mut libc::c_long).cast()
    } else {
        data
    };
    let args = [request as usize, pid as usize, addr as usize, data as usize];
    // SAFETY: the program's own arguments (for PEEK requests, our own word to fill).
    let result = unsafe { crate::runtime::raw::syscall(libc::SYS_ptrace, &args) };
    if result < 0 {
        return super::fail(-result as c_int);
    }
    if peek {
        super::set_errno(0);
        return word;
    }
    result as libc::c_long
}

/// A wait returned `pid` with `status` (or NULL): if the child ended, it was reaped.
fn note_reaped(pid: pid_t, status: *const c_int, exits_only: bool) {
    if pid <= 0 {
        return;
    }
    let ended = if status.is_null() {
        exits_only
    } else {
        // SAFETY: the kernel just wrote the program's status word.
        let status = unsafe { *status };
        libc::WIFEXITED(status) || libc::WIFSIGNALED(status)
    };
    if ended {
        children::reaped(pid);
    }
}

#[no_mangle]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(pid, status, options, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(-1, status, 0, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn wait3(
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(-1, status, options, usage) }
}

#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let green = enter();
    // SAFETY: forwarded.
    unsafe { wait4_as(green.as_ref(), pid, status, options, usage) }
}

/// wait4 for a caller that is (`Some`) or is not green.
unsafe fn wait4_as(
    green: Option<&Green>,
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let exits_only = watches_exit_only(options);
    let r = if green.is_none() || options & libc::WNOHANG != 0 {
        // SAFETY: forwarded.
        unsafe { real::wait4(pid, status, options, usage) }
    } else {
        green_wait(pid, exits_only, || {
            // SAFETY: forwarded with WNOHANG.
            let r = unsafe { real::wait4(pid, status, options | libc::WNOHANG, usage) };
            (r != 0).then_some(r)
        })
    };
    note_reaped(r, status, exits_only);
    r
}

#[no_mangle]
pub unsafe extern "C" fn waitid(
    idtype: idtype_t,
    id: id_t,
    info: *mut siginfo_t,
    options: c_int,
) -> c_int {
    let green = enter();
    if green.is_none() || options & libc::WNOHANG != 0 || info.is_null() {
        // SAFETY: forwarded.
        let r = unsafe { real::waitid(idtype, id, info, options) };
        if r == 0 && !info.is_null() {
            // SAFETY: waitid succeeded, so it filled the program's siginfo.
            note_waited(unsafe { &*info }, options);
        }
        return r;
    }
    let pid = if idtype == libc::P_PID {
        id as pid_t
    } else {
        -1
    };
    let exits_only = options & (libc::WSTOPPED | libc::WCONTINUED) == 0 && !TRACER.load(Relaxed);
    // Waited into our own siginfo, then copied out: a bad pointer gives EFAULT (after the
    // child is reaped, as the kernel does) instead of crashing greenify.
    // SAFETY: siginfo_t is plain data; zero is its "no child changed state" value.
    let mut mine: siginfo_t = unsafe { std::mem::zeroed() };
    let r = green_wait(pid, exits_only, || {
        // SAFETY: our own siginfo; si_pid stays 0 when no child changed state.
        unsafe {
            mine = std::mem::zeroed();
            let r = real::waitid(idtype, id, &mut mine, options | libc::WNOHANG);
            (r != 0 || mine.si_pid() != 0).then_some(r)
        }
    });
    if r != 0 {
        return r;
    }
    note_waited(&mine, options);
    // SAFETY: only the address is taken; the bytes are copied through the kernel.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&mine as *const siginfo_t).cast::<u8>(),
            size_of::<siginfo_t>(),
        )
    };
    if !memory::write_bytes(info.cast(), bytes) {
        return fail(libc::EFAULT);
    }
    0
}

/// Records a child that waitid reaped (WNOWAIT leaves it waitable).
pub(super) fn note_waited(info: &siginfo_t, options: c_int) {
    if options & libc::WNOWAIT == 0
        && matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        )
    {
        // SAFETY: a siginfo a successful waitid filled, so si_pid is set.
        children::reaped(unsafe { info.si_pid() });
    }
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
        if r < 0 && super::errno() != libc::EINTR {
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
    let file = unsafe { super::stdio::green_stream(mine, reading) };
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
    super::set_errno(e);
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
