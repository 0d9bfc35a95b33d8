//! Settings from the environment, read once.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | GREENIFY_STACK_SIZE | stack of a green thread created without an explicit size: bytes, or with a K/M/G suffix | 256K |
//! | GREENIFY_STATS | `1`: print one stats line to stderr at exit | off |
//! | GREENIFY_LOG | off, error, warn, info, debug, trace | warn |
//! | GREENIFY_OFFLOAD_FILES | `1`: reads and writes of regular files run on helper threads (a slow disk then stalls only the calling thread) | off: inline, from the page cache |
//! | GREENIFY_GUARD_PAGES | how many stacks get a guard page (the rest a write-protected or checked gap) | what vm.max_map_count affords |
//! | GREENIFY_SLICE_MS | how long a green thread may run without a switch before the monitor preempts it; `0`: never | 10 |
//! | GREENIFY_ESCAPES | `report`: count the blocking system calls that bypass the hooks (Syscall User Dispatch) and list them at exit; `catch`: also park the green thread in them | off |
//! | GREENIFY_TLS | `on`: every green thread has its own TCB and TLS; `off`: all share the OS thread's; `auto`: on when a loaded module other than libc has TLS of its own when the first thread is created | auto |

use std::ffi::CStr;

pub const DEFAULT_STACK_SIZE: usize = 256 << 10;
pub const DEFAULT_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// GREENIFY_TLS: whether green threads get TCBs (and TLS) of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Auto,
    On,
    Off,
}

/// GREENIFY_ESCAPES: what happens to system calls that bypass the hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escapes {
    Off,
    Report,
    Catch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub stack_size: usize,
    pub stats: bool,
    pub log_level: ::log::LevelFilter,
    /// At most this many stacks get a real guard page (None: as many as the kernel's
    /// mapping limit affords).
    pub guard_pages: Option<usize>,
    /// Regular-file reads and writes go to helper threads.
    pub offload_files: bool,
    pub tls: Tls,
    /// How long a thread may run without a switch (None: preemption off).
    pub slice: Option<std::time::Duration>,
    /// GREENIFY_TLS had another value (warned about, then auto).
    pub tls_bad_value: bool,
    pub escapes: Escapes,
}

impl Config {
    /// Reads the environment (via libc's getenv, which greenify does not override).
    /// Allocates nothing: the first hooked call reads it, and that call may come from inside
    /// the program's malloc (tcmalloc calls pthread_once while it initialises).
    pub fn from_env() -> Config {
        Config::from_lookup(|name| {
            let mut buf = [0u8; 64];
            buf.get_mut(..name.len())?.copy_from_slice(name.as_bytes());
            let name = CStr::from_bytes_until_nul(&buf).ok()?;
            // SAFETY: getenv takes a NUL-terminated name and returns NULL or a pointer into
            // the environment that stays valid while nobody calls setenv; from_lookup parses
            // it at once.
            let value = unsafe { libc::getenv(name.as_ptr()) };
            if value.is_null() {
                return None;
            }
            // SAFETY: a non-NULL getenv result is a NUL-terminated string.
            unsafe { CStr::from_ptr(value) }.to_str().ok()
        })
    }

    /// The configuration from `lookup` (a variable's value; one that is not UTF-8 counts as
    /// unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'static str>) -> Config {
        let stack_size = lookup("GREENIFY_STACK_SIZE")
            .and_then(parse_size)
            .unwrap_or(DEFAULT_STACK_SIZE);
        let stats = lookup("GREENIFY_STATS").is_some_and(|v| v.trim() == "1");
        let log_level = lookup("GREENIFY_LOG")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(::log::LevelFilter::Warn);
        let guard_pages = lookup("GREENIFY_GUARD_PAGES").and_then(|v| v.trim().parse().ok());
        let offload_files = lookup("GREENIFY_OFFLOAD_FILES").is_some_and(|v| v.trim() == "1");
        let tls = match lookup("GREENIFY_TLS").map(str::trim) {
            None | Some("auto") => Ok(Tls::Auto),
            Some("on") => Ok(Tls::On),
            Some("off") => Ok(Tls::Off),
            Some(_) => Err(Tls::Auto),
        };
        let slice = match lookup("GREENIFY_SLICE_MS").and_then(|v| v.trim().parse::<u64>().ok()) {
            None => Some(DEFAULT_SLICE),
            Some(0) => None,
            Some(ms) => Some(std::time::Duration::from_millis(ms)),
        };
        let escapes = match lookup("GREENIFY_ESCAPES").map(str::trim) {
            Some("report") => Escapes::Report,
            Some("catch") => Escapes::Catch,
            _ => Escapes::Off,
        };
        Config {
            escapes,
            stack_size,
            slice,
            stats,
            log_level,
            guard_pages,
            offload_files,
            tls: tls.unwrap_or_else(|auto| auto),
            tls_bad_value: tls.is_err(),
        }
    }
}

/// "65536", "64K", "8m", "1G" -> bytes; None if malformed or zero.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 10),
        'M' => (&text[..text.len() - 1], 20),
        'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize << shift).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn from_lookup_defaults_and_values() {
        let c = Config::from_lookup(|_| None);
        assert_eq!(c.stack_size, DEFAULT_STACK_SIZE);
        assert!(!c.stats);
        assert_eq!(c.log_level, ::log::LevelFilter::Warn);
        assert_eq!(c.guard_pages, None);
        assert!(!c.offload_files);
        assert_eq!(c.tls, Tls::Auto);
        assert_eq!(c.slice, Some(DEFAULT_SLICE));
        assert_eq!(c.escapes, Escapes::Off);
        let c = Config::from_lookup(|k| {
            Some(match k {
                "GREENIFY_STACK_SIZE" => "1M",
                "GREENIFY_STATS" => "1",
                "GREENIFY_GUARD_PAGES" => "0",
                "GREENIFY_TLS" => "off",
                "GREENIFY_SLICE_MS" => "0",
                _ => "debug",
            })
        });
        assert_eq!(c.stack_size, 1 << 20);
        assert!(c.stats);
        assert_eq!(c.log_level, ::log::LevelFilter::Debug);
        assert_eq!(c.guard_pages, Some(0));
        assert_eq!(c.tls, Tls::Off);
        assert_eq!(c.slice, None);
        let slice = |k: &str| (k == "GREENIFY_SLICE_MS").then_some("25");
        assert_eq!(
            Config::from_lookup(slice).slice,
            Some(std::time::Duration::from_millis(25))
        );
        let on = |v: &'static str| move |k: &str| (k == "GREENIFY_TLS").then_some(v);
        assert_eq!(Config::from_lookup(on("on")).tls, Tls::On);
        assert_eq!(Config::from_lookup(on("maybe")).tls, Tls::Auto);
        assert!(Config::from_lookup(on("maybe")).tls_bad_value);
        assert!(!Config::from_lookup(on("auto")).tls_bad_value);
        let escapes = |v: &'static str| move |k: &str| (k == "GREENIFY_ESCAPES").then_some(v);
        assert_eq!(
            Config::from_lookup(escapes("report")).escapes,
            Escapes::Report
        );
        assert_eq!(
            Config::from_lookup(escapes("catch")).escapes,
            Escapes::Catch
        );
    }
}
