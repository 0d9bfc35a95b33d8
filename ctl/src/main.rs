//! greenify-ctl: `greenify dump PID` and `greenify stats PID [--json]`.
//!
//! It listens on the abstract unix socket `greenify-ctl-<its pid>` and queues SIGURG to
//! the target with a value that greenify's handler recognises. The target's scheduler
//! answers from its run loop with a memfd: its counters, one record per green thread
//! (registers at its last switch, wait reason) and a copy of the top of each stack. The
//! stacks are unwound here with the modules' `.eh_frame` (as perf does with its stack
//! copies) and symbolised from `.symtab`, with file:line where there is debug info.
//!
//! The request goes only to a process where greenify's handler stands in for SIGURG: one
//! that has libgreenify.so mapped (/proc/PID/maps) and greenify's monitor thread (started
//! with the handler, at the first green thread). Any other process is told apart and left
//! untouched; and were one asked, SIGURG's default action is to ignore it.

mod dump;
mod snapshot;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

/// Must match src/hooks/control.rs.
const CONTROL_MAGIC: u64 = 0x6772_6e63_746c_0000;
const STATS: u64 = 1;
const DUMP: u64 = 2;

/// How long the target may take to answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

fn usage() -> ExitCode {
    eprintln!("usage: greenify-ctl dump PID\n       greenify-ctl stats PID [--json]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, rest) = match args.first().map(String::as_str) {
        Some("dump") => (DUMP, &args[1..]),
        Some("stats") => (STATS, &args[1..]),
        _ => return usage(),
    };
    let mut json = false;
    let mut pid = None;
    for arg in rest {
        match arg.as_str() {
            "--json" if kind == STATS => json = true,
            a => match a.parse::<i32>() {
                Ok(p) if p > 0 && pid.is_none() => pid = Some(p),
                _ => return usage(),
            },
        }
    }
    let Some(pid) = pid else { return usage() };
    let timeout = std::env::var("GREENIFY_CTL_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT);
    match ask(pid, kind, timeout) {
        Ok(snap) => {
            if kind == STATS {
                snapshot::print_stats(pid, &snap, json);
            } else {
                dump::print(pid, &snap);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::NotGreenified) => {
            eprintln!("greenify: {pid}: not greenified (libgreenify.so is not loaded)");
            ExitCode::from(3)
        }
        Err(Failure::NoGreenThread) => {
            eprintln!("greenify: {pid}: greenified, but no green thread yet (greenify answers once the program has created a thread, unless GREENIFY_SLICE_MS=0)");
            ExitCode::from(3)
        }
        Err(Failure::NoAnswer) => {
            eprintln!(
                "greenify: {pid}: no answer within {} ms (a thread that keeps its worker outside the program's code delays it)",
                timeout.as_millis()
            );
            ExitCode::from(3)
        }
        Err(Failure::Error(e)) => {
            eprintln!("greenify: {pid}: {e}");
            ExitCode::from(2)
        }
    }
}

enum Failure {
    NotGreenified,
    NoGreenThread,
    NoAnswer,
    Error(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Error(e.to_string())
    }
}

/// Whether greenify's handler answers in `pid`: it has libgreenify.so mapped and
/// greenify's monitor thread runs.
fn answering(pid: i32) -> Result<(), Failure> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|_| Failure::Error("no such process".into()))?;
    if !maps.lines().any(|l| l.ends_with("/libgreenify.so")) {
        return Err(Failure::NotGreenified);
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    let monitor = tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end() == "greenify-monito")
    });
    if monitor {
        Ok(())
    } else {
        Err(Failure::NoGreenThread)
    }
}

fn check(ret: libc::c_int) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Sends the request and returns the memfd's contents.
fn ask(pid: i32, kind: u64, timeout: Duration) -> Result<Vec<u8>, Failure> {
    answering(pid)?;
    let me = std::process::id() as i32;
    // SAFETY: plain socket calls on a socket we own; the address is built in place.
    let listener = unsafe {
        let fd = check(libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let listener = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let name = format!("greenify-ctl-{me}");
        for (i, b) in name.bytes().enumerate() {
            addr.sun_path[i + 1] = b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
        check(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        ))?;
        check(libc::listen(fd, 4))?;
        listener
    };
    // SAFETY: a zeroed siginfo filled as the kernel lays it out for SI_QUEUE.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let raw = (&mut info as *mut libc::siginfo_t).cast::<u8>();
        *raw.cast::<i32>() = libc::SIGURG;
        *raw.add(8).cast::<i32>() = libc::SI_QUEUE;
        *raw.add(16).cast::<i32>() = me;
        *raw.add(20).cast::<u32>() = libc::getuid();
        *raw.add(24).cast::<u64>() = CONTROL_MAGIC | kind;
        check(libc::syscall(libc::SYS_rt_sigqueueinfo, pid, libc::SIGURG, raw) as libc::c_int)?;
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if n == 0 {
            return Err(Failure::NoAnswer);
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        // SAFETY: accept on our listener.
        let conn = unsafe {
            OwnedFd::from_raw_fd(check(libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            ))?)
        };
        // Only the target may answer.
        if peer_pid(&conn)? != pid {
            continue;
        }
        let memfd = receive_fd(&conn)?;
        let mut file = std::fs::File::from(memfd);
        // The target's writes left the shared offset at the end.
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        return Ok(bytes);
    }
}

fn peer_pid(conn: &OwnedFd) -> std::io::Result<i32> {
    // SAFETY: SO_PEERCRED fills a ucred.
    unsafe {
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        check(libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        ))?;
        Ok(cred.pid)
    }
}

/// The fd passed with the answer's one message.
fn receive_fd(conn: &OwnedFd) -> Result<OwnedFd, Failure> {
    let mut data = [0u8; 16];
    let mut control = [0u64; 8];
    // SAFETY: recvmsg into buffers we own; the control message is read as the kernel
    // lays it out.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        check(libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) as i32)?;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(Failure::Error("the answer carried no snapshot".into()));
        }
        let fd = *libc::CMSG_DATA(cmsg).cast::<i32>();
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
