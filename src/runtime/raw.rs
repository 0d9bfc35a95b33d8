//! System calls made with the instruction itself.
//!
//! greenify exports a `syscall` of its own (a hook), so `libc::syscall` from inside the
//! library would reach it; and the runtime must not touch the program's errno. A raw call
//! does neither: it answers the kernel's value, a negative errno on failure.

/// Makes system call `nr` with up to six arguments (missing ones are 0) and returns the
/// kernel's answer: the result, or `-errno`.
///
/// # Safety
/// The arguments must be what the kernel expects for `nr`: pointers valid for what the
/// call reads and writes.
#[inline]
pub unsafe fn syscall(nr: libc::c_long, args: &[usize]) -> isize {
    let mut a = [0usize; 6];
    a[..args.len()].copy_from_slice(args);
    let ret: isize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in rdi,
    // rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 and returns in rax. The
    // caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the aarch64 Linux convention: number in x8, arguments and result in x0..x5.
    // The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack),
        );
    }
    ret
}

/// Sleeps while the process-private futex `word` holds `expected`, for at most `timeout`
/// (None: no limit), or until a wake, a signal or a spurious return; the kernel's answer.
pub fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: Option<std::time::Duration>,
) -> isize {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the live word atomically and sleeps; `ts` outlives the call.
    unsafe {
        syscall(
            libc::SYS_futex,
            &[
                word.as_ptr() as usize,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
                expected as usize,
                ts_ptr as usize,
            ],
        )
    }
}

/// Wakes one sleeper of the process-private futex `word`.
pub fn futex_wake_one(word: &std::sync::atomic::AtomicU32) {
    futex_wake(word, 1);
}

/// Wakes every sleeper of the process-private futex `word`.
pub fn futex_wake_all(word: &std::sync::atomic::AtomicU32) {
    futex_wake(word, i32::MAX as usize);
}

fn futex_wake(word: &std::sync::atomic::AtomicU32, count: usize) {
    // SAFETY: FUTEX_WAKE only reads the address.
    unsafe {
        syscall(
            libc::SYS_futex,
            &[
                word.as_ptr() as usize,
                (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize,
                count,
            ],
        );
    }
}

/// A siginfo of greenify's own for a signal this process queues to one of its threads:
/// SI_QUEUE from this process (its pid and uid) with `value` (the kernel's layout on
/// 64-bit Linux: the union at byte 16 holds si_pid, si_uid, si_value).
pub fn own_queued_info(sig: u32, value: u64) -> libc::siginfo_t {
    // SAFETY: an all-zero siginfo is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    info.si_signo = sig as i32;
    info.si_code = libc::SI_QUEUE;
    let base = (&mut info as *mut libc::siginfo_t).cast::<u8>();
    // SAFETY: offsets 16, 20 and 24 lie inside the 128-byte siginfo.
    unsafe {
        base.add(16)
            .cast::<i32>()
            .write(rustix::process::getpid().as_raw_nonzero().get());
        base.add(20)
            .cast::<u32>()
            .write(rustix::process::getuid().as_raw());
        base.add(24).cast::<u64>().write(value);
    }
    info
}

/// The value of a signal this process queued to itself ([`own_queued_info`]); None for
/// any other signal (or a null `info`).
///
/// # Safety
/// `info` is the kernel's siginfo for a handler, or null.
pub unsafe fn own_queued_value(info: *const libc::siginfo_t) -> Option<u64> {
    // SAFETY: the caller's; for SI_QUEUE, si_pid and si_value are set.
    unsafe {
        let info = info.as_ref()?;
        (info.si_code == libc::SI_QUEUE
            && info.si_pid() == rustix::process::getpid().as_raw_nonzero().get())
        .then(|| {
            *(info as *const libc::siginfo_t)
                .cast::<u8>()
                .add(24)
                .cast::<u64>()
        })
    }
}

/// Queues signal `sig` with siginfo `info` to the calling OS thread (rt_tgsigqueueinfo to
/// its own process, where any `si_code` is allowed); the kernel's answer. Async-signal-safe.
pub fn queue_to_this_thread(sig: u32, info: &libc::siginfo_t) -> isize {
    queue_to_thread(rustix::thread::gettid().as_raw_nonzero().get(), sig, info)
}

/// Queues signal `sig` with siginfo `info` to OS thread `tid` of this process; the
/// kernel's answer. Async-signal-safe.
pub fn queue_to_thread(tid: i32, sig: u32, info: &libc::siginfo_t) -> isize {
    let pid = rustix::process::getpid().as_raw_nonzero().get() as usize;
    // SAFETY: the kernel only reads the 128-byte siginfo, a live reference.
    unsafe {
        syscall(
            libc::SYS_rt_tgsigqueueinfo,
            &[
                pid,
                tid as usize,
                sig as usize,
                info as *const libc::siginfo_t as usize,
            ],
        )
    }
}

/// Opens `/proc/self/task/TID/FILE` (`flags` and O_CLOEXEC): the fd, or `-errno`. It
/// takes the lowest free number of the fd table the program shares, as glibc's own
/// opens of these files do.
pub fn open_task_file(tid: i32, file: &str, flags: i32) -> isize {
    let mut path = crate::log::Line::<48>::new();
    path.push("/proc/self/task/");
    path.num(tid as usize, 10);
    path.push("/");
    path.push(file);
    path.push("\0");
    // SAFETY: a NUL-terminated path on this stack.
    unsafe {
        syscall(
            libc::SYS_openat,
            &[
                libc::AT_FDCWD as usize,
                path.bytes().as_ptr() as usize,
                (flags | libc::O_CLOEXEC) as usize,
            ],
        )
    }
}

/// Reads `fd` from offset 0 into `buf`: the bytes read, or `-errno`. A /proc file of one
/// value (`syscall`, `comm`) is made afresh at each read from offset 0, so an fd kept open
/// gives the value of now every time.
pub fn read_from_start(fd: i32, buf: &mut [u8]) -> isize {
    // SAFETY: pread64 writes at most `buf.len()` bytes into `buf`.
    unsafe {
        syscall(
            libc::SYS_pread64,
            &[fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0],
        )
    }
}

/// Closes `fd` (raw: `close` is greenify's own hook).
pub fn close(fd: i32) {
    // SAFETY: the caller gives up `fd`; a bad number only fails.
    unsafe { syscall(libc::SYS_close, &[fd as usize]) };
}

/// Reads `/proc/self/task/TID/FILE` into `buf` (open, read, close; nothing allocated):
/// the bytes read, or `-errno`.
pub fn read_task_file(tid: i32, file: &str, buf: &mut [u8]) -> isize {
    let fd = open_task_file(tid, file, libc::O_RDONLY);
    if fd < 0 {
        return fd;
    }
    let n = read_from_start(fd as i32, buf);
    close(fd as i32);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_results_and_negative_errnos_without_touching_errno() {
        // SAFETY: getpid takes no argument; close(-1) only fails.
        unsafe {
            assert_eq!(syscall(libc::SYS_getpid, &[]), libc::getpid() as isize);
            *libc::__errno_location() = 1234;
            assert_eq!(
                syscall(libc::SYS_close, &[usize::MAX]),
                -(libc::EBADF as isize)
            );
            assert_eq!(*libc::__errno_location(), 1234);
        }
    }

    #[test]
    fn a_task_file_kept_open_reads_afresh_from_the_start() {
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        let mut buf = [0u8; 64];
        let n = read_task_file(tid, "comm", &mut buf);
        assert!(n > 0, "{n}");
        let own = buf[..n as usize].to_vec();
        let fd = open_task_file(tid, "comm", libc::O_RDONLY) as i32;
        assert!(fd >= 0, "{fd}");
        assert_eq!(read_from_start(fd, &mut buf), n);
        assert_eq!(&buf[..n as usize], &own[..]);
        // SAFETY: PR_SET_NAME reads a NUL-terminated name.
        unsafe {
            syscall(
                libc::SYS_prctl,
                &[libc::PR_SET_NAME as usize, c"renamed".as_ptr() as usize],
            )
        };
        let n = read_from_start(fd, &mut buf);
        assert_eq!(&buf[..n as usize], b"renamed\n");
        close(fd);
        let mut name = [0u8; 16];
        name[..own.len() - 1].copy_from_slice(&own[..own.len() - 1]);
        // SAFETY: as above: the harness's name for this thread again.
        unsafe {
            syscall(
                libc::SYS_prctl,
                &[libc::PR_SET_NAME as usize, name.as_ptr() as usize],
            )
        };
        assert_eq!(
            read_task_file(-5, "comm", &mut buf),
            -(libc::ENOENT as isize)
        );
    }
}
