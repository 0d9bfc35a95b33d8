//! The `log` backend: formats into a fixed buffer and writes it to stderr with a raw
//! write(2), so logging never allocates and never enters greenify's own hooks. A
//! thread-local flag drops a message logged while another is being written (a signal).

use std::cell::Cell;
use std::fmt::Write;

struct RawStderr;

static LOGGER: RawStderr = RawStderr;

thread_local! {
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl ::log::Log for RawStderr {
    fn enabled(&self, metadata: &::log::Metadata) -> bool {
        metadata.level() <= ::log::max_level()
    }

    fn log(&self, record: &::log::Record) {
        if !self.enabled(record.metadata()) || WRITING.with(|w| w.replace(true)) {
            return;
        }
        let mut line = Line {
            buf: [0; 512],
            len: 0,
        };
        let _ = writeln!(
            line,
            "greenify: {}: {}",
            record.level().as_str().to_ascii_lowercase(),
            record.args()
        );
        if line.len == line.buf.len() {
            line.buf[line.len - 1] = b'\n';
        }
        // SAFETY: fd 2 is only borrowed for this write; a closed stderr just fails.
        let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
        let _ = rustix::io::write(stderr, &line.buf[..line.len]);
        WRITING.with(|w| w.set(false));
    }

    fn flush(&self) {}
}

/// Installs the backend once, at the given level.
pub fn init(level: ::log::LevelFilter) {
    if ::log::set_logger(&LOGGER).is_ok() {
        ::log::set_max_level(level);
    }
}
