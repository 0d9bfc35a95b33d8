//! The `log` backend: formats into a fixed buffer and writes it to stderr with a raw
//! write(2), so logging never allocates and never enters greenify's own hooks. A
//! message logged while the same thread is writing another (from a signal handler) is
//! dropped: the writer is named by its thread pointer, not a thread-local (which would
//! cost an allocation in a green thread's TCB, and move with it).

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct RawStderr;

static LOGGER: RawStderr = RawStderr;

/// The longest log line (longer ones are cut, keeping their newline).
const N_LOG: usize = 512;

/// The thread pointer of the thread writing a message now (0: none). Another thread
/// that logs meanwhile just writes its own line.
static WRITER: AtomicUsize = AtomicUsize::new(0);

/// A line formatted into a fixed buffer (no allocation; usable in a signal handler).
/// What does not fit is cut off.
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Line::new()
    }
}

impl<const N: usize> Line<N> {
    pub fn new() -> Self {
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn push(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    pub fn push_bytes(&mut self, s: &[u8]) {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    /// `n` in `base` (2 to 16), without `format!`'s machinery.
    pub fn num(&mut self, mut n: usize, base: usize) {
        let mut digits = [0u8; 64];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[n % base];
            n /= base;
            if n == 0 {
                break;
            }
        }
        self.push_bytes(&digits[i..]);
    }
}

impl<const N: usize> Write for Line<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s);
        Ok(())
    }
}

/// Writes to fd 2 with a raw write(2); a closed stderr just fails quietly.
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: fd 2 is only borrowed for this write.
    let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
    let _ = rustix::io::write(stderr, bytes);
}

impl ::log::Log for RawStderr {
    fn enabled(&self, metadata: &::log::Metadata) -> bool {
        metadata.level() <= ::log::max_level()
    }

    fn log(&self, record: &::log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let me = crate::runtime::os_thread::thread_pointer();
        if WRITER.load(Relaxed) == me {
            return;
        }
        let claimed = WRITER.compare_exchange(0, me, Relaxed, Relaxed).is_ok();
        let mut line = Line::<N_LOG>::new();
        let _ = writeln!(
            line,
            "greenify: {}: {}",
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        );
        if line.len == N_LOG {
            line.buf[N_LOG - 1] = b'\n';
        }
        write_stderr(line.bytes());
        if claimed {
            WRITER.store(0, Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the backend once, at the given level.
pub fn init(level: ::log::LevelFilter) {
    if ::log::set_logger(&LOGGER).is_ok() {
        ::log::set_max_level(level);
    }
}

/// Warns once about each GREENIFY_* variable the library did not take, and at `info` says
/// greenify is active: its version, the process, the options in effect.
pub fn announce(config: &crate::config::Config) {
    for bad in config.bad.iter() {
        ::log::warn!("{bad}");
    }
    if config.bad.untold() > 0 {
        ::log::warn!("{} more GREENIFY_* variables ignored", config.bad.untold());
    }
    ::log::info!(
        "greenify {} active in pid {} ({}): {config}",
        env!("CARGO_PKG_VERSION"),
        rustix::process::getpid().as_raw_nonzero(),
        program_name()
    );
}

/// The program's short name (glibc's `program_invocation_short_name`; "?" if unset or not
/// UTF-8).
pub fn program_name() -> &'static str {
    std::str::from_utf8(program_name_bytes()).unwrap_or("?")
}

/// The program's short name as glibc keeps it (`program_invocation_short_name`), in bytes.
pub fn program_name_bytes() -> &'static [u8] {
    extern "C" {
        static program_invocation_short_name: *const libc::c_char;
    }
    // SAFETY: glibc sets it before any constructor runs, to NULL or a NUL-terminated string
    // that lives as long as the process.
    let name = unsafe { program_invocation_short_name };
    if name.is_null() {
        return b"?";
    }
    // SAFETY: as above.
    unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes()
}
