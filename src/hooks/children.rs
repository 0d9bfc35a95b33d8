//! The children this process started through the hooks (fork, vfork, posix_spawn), so
//! that a green wait for "any child" or a process group can watch their pidfds and wake
//! the moment one exits. Without them such a wait could only look again every few
//! milliseconds: a shell running short commands would pay that for every command.
//!
//! Lock-free slots, because waits are often made from SIGCHLD handlers, which may
//! interrupt a fork in progress.

use super::blocking::{close_own, own_fd};
use crate::runtime;
use libc::pid_t;
use rustix::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};

/// Children tracked at once; more are still waited for, by looking again periodically.
const TRACKED: usize = 256;
/// Pidfds one wait watches (they sit in greenify's small reserved fd range).
const WATCHED: usize = 16;

static CHILDREN: [AtomicI32; TRACKED] = [const { AtomicI32::new(0) }; TRACKED];

/// `pid` was just started by this process.
pub fn started(pid: pid_t) {
    if pid <= 0 {
        return;
    }
    for slot in &CHILDREN {
        if slot.compare_exchange(0, pid, SeqCst, SeqCst).is_ok() {
            return;
        }
    }
}

/// `pid` was reaped (or is gone): stop watching it.
pub fn reaped(pid: pid_t) {
    if pid <= 0 {
        return;
    }
    for slot in &CHILDREN {
        let _ = slot.compare_exchange(pid, 0, SeqCst, SeqCst);
    }
}

/// In a new child: its parent's children are not its own.
pub fn forget_all() {
    for slot in &CHILDREN {
        slot.store(0, SeqCst);
    }
}

/// Pidfds of tracked children, open for the length of one wait.
pub struct Watch {
    /// Each pidfd, with the interest a wait on it takes (readable: the child ended).
    fds: Vec<(i32, runtime::Interest)>,
}

/// A pidfd for `pid`, in greenify's range (see [`own_fd`]), or None.
pub fn open_pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    own_fd(rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?)
}

impl Watch {
    /// Opens pidfds for up to [`WATCHED`] tracked children; children that no longer
    /// exist are forgotten.
    pub fn open() -> Watch {
        let mut fds = Vec::new();
        for slot in &CHILDREN {
            if fds.len() == WATCHED {
                break;
            }
            let pid = slot.load(SeqCst);
            let Some(pid) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            let fd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::SRCH) => {
                    let _ = slot.compare_exchange(pid.as_raw_nonzero().get(), 0, SeqCst, SeqCst);
                    continue;
                }
                Err(_) => continue,
            };
            if let Some(fd) = own_fd(fd) {
                fds.push((fd.into_raw_fd(), runtime::Interest::Read));
            }
        }
        Watch { fds }
    }

    pub fn fds(&self) -> &[(i32, runtime::Interest)] {
        &self.fds
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for &(fd, _) in &self.fds {
            // SAFETY: a pidfd of our own, closed only here.
            close_own(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}
