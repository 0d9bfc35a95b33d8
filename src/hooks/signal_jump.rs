//! siglongjmp, longjmp, _longjmp and __longjmp_chk (glibc's are one function): a jump
//! whose sigsetjmp saved the mask sets it again with glibc's own rt_sigprocmask, which no
//! hook sees. A signal greenify keeps pending for the thread (runtime/kept_pending.rs)
//! that this mask opens (one sent while a handler blocked it, which the jump leaves)
//! would then wait for the thread's next mask change. So the mask is set through the
//! thread's green mask first, which delivers those now: natively the kernel delivers them
//! as the jump's sigprocmask returns, before the jump lands.

use super::enter;
use crate::real;
use libc::{c_int, sigset_t};

/// glibc's `struct __jmp_buf_tag` on x86_64: the registers, whether the mask was saved,
/// the mask.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct JmpBuf {
    registers: [u64; 8],
    mask_was_saved: c_int,
    saved_mask: sigset_t,
}

/// Gives the calling green thread the mask `env` saved, if it saved one (through the
/// hooks' pthread_sigmask, which delivers the kept signals it opens; their handlers run as
/// the guard drops, here, before the jump).
fn restore_saved_mask(env: *const JmpBuf) {
    let Some(green) = enter() else { return };
    if let Some(buf) = super::memory::read(env).filter(|b| b.mask_was_saved != 0) {
        // The jump sets the same mask again: an error is its to have.
        let _ = super::signal::set_green_mask(&buf.saved_mask);
    }
    drop(green);
}

macro_rules! jump_hooks {
    ($($name:ident),*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name(env: *mut JmpBuf, value: c_int) -> ! {
            restore_saved_mask(env);
            // SAFETY: forwarded: the program's jmp_buf, whose frame it keeps live.
            unsafe { real::$name(env, value) }
        }
    )*};
}

jump_hooks!(siglongjmp, longjmp, _longjmp, __longjmp_chk);
