//! The set*id family, `setgroups` and `initgroups` (which calls glibc's `setgroups`
//! inside libc): glibc broadcasts each to every OS thread of the process, which needs
//! greenify's help when green threads have TCBs of their own (see runtime/setxid.rs).
//!
//! Every hook forwards the caller's arguments unchanged to the libc function of its name,
//! so each call has that function's contract.

use super::{enter, set_errno};
use crate::real;
use crate::runtime::setxid;
use libc::{c_char, c_int, gid_t, size_t, uid_t};

macro_rules! setxid_hooks {
    ($(fn $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            let _green = enter();
            // SAFETY: forwarded.
            let (ret, e) = setxid::run(|| unsafe { real::$name($($arg),*) });
            if ret == -1 {
                set_errno(e);
            }
            ret
        }
    )*};
}

setxid_hooks! {
    fn setuid(uid: uid_t);
    fn setgid(gid: gid_t);
    fn seteuid(uid: uid_t);
    fn setegid(gid: gid_t);
    fn setreuid(ruid: uid_t, euid: uid_t);
    fn setregid(rgid: gid_t, egid: gid_t);
    fn setresuid(ruid: uid_t, euid: uid_t, suid: uid_t);
    fn setresgid(rgid: gid_t, egid: gid_t, sgid: gid_t);
    fn setgroups(size: size_t, list: *const gid_t);
    fn initgroups(user: *const c_char, group: gid_t);
}
