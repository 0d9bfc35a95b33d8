//! Requests of `greenify dump` and `greenify stats`: a SIGURG queued by greenify-ctl with
//! [`CONTROL_MAGIC`] and the kind of request in its value and its own pid in `si_pid`.
//! SIGURG's default action is to ignore it, so a process where greenify's SIGURG handler
//! is not installed (no green thread yet, or not greenified) is left untouched.
//!
//! The handler allocates nothing: it posts the request to the scheduler (see
//! runtime/sched/snapshot.rs), which answers from its run loop.

use crate::runtime::sched::snapshot::{self, Request};

/// The high 48 bits of the signal's value (low 16: the request). The preemption signal's
/// value is another number.
const CONTROL_MAGIC: u64 = 0x6772_6e63_746c_0000;

/// If `info` is a request of greenify-ctl, posts it and says so.
///
/// # Safety
/// `info` is the kernel's siginfo for this handler, or null.
pub unsafe fn take_request(info: *const libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: the kernel's siginfo; for SI_QUEUE, si_pid and si_value are set (si_value
    // is at offset 24 on 64-bit Linux).
    let (code, pid, value) = unsafe {
        (
            (*info).si_code,
            (*info).si_pid(),
            *info.cast::<u8>().add(24).cast::<u64>(),
        )
    };
    if code != libc::SI_QUEUE || value & !0xffff != CONTROL_MAGIC || pid <= 0 {
        return false;
    }
    let kind = match value & 0xffff {
        1 => Request::Stats,
        2 => Request::Dump,
        _ => return false,
    };
    snapshot::request(kind, pid);
    true
}
