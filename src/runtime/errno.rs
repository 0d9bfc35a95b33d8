//! The calling OS thread's errno. Green threads share it, so the scheduler saves and
//! restores it around every switch.

pub fn get() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

pub fn set(value: i32) {
    // SAFETY: as in `get`.
    unsafe { *libc::__errno_location() = value }
}
