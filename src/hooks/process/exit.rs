//! `_exit` and `_Exit`: the process ends without atexit handlers or `.fini_array`, so the
//! stats line (GREENIFY_STATS=1) is printed here; dash, forked children and programs that
//! skip their cleanup leave this way.

use libc::c_int;

#[no_mangle]
pub extern "C" fn _exit(status: c_int) -> ! {
    crate::stats::print();
    loop {
        // SAFETY: exit_group ends the process; it takes one integer and never returns.
        unsafe { crate::runtime::raw::syscall(libc::SYS_exit_group, &[status as usize]) };
    }
}

#[no_mangle]
pub extern "C" fn _Exit(status: c_int) -> ! {
    _exit(status)
}
