//! Settings from the environment, read once.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | GREENIFY_STACK_SIZE | stack of a green thread created without an explicit size: bytes, or with a K/M/G suffix, from 16K to 4G | 256K |
//! | GREENIFY_STATS | `1`: print one stats line to stderr at exit; `0`: do not | 0 |
//! | GREENIFY_LOG | off, error, warn, info, debug, trace | warn |
//! | GREENIFY_OFFLOAD_FILES | `1` (`0`: off): reads and writes of regular files run on helper threads (a slow disk then stalls only the calling thread) | off: inline, from the page cache |
//! | GREENIFY_GUARD_PAGES | how many stacks get a guard page (the rest a write-protected or checked gap) | what vm.max_map_count affords |
//! | GREENIFY_SLICE_MS | how long a green thread may run without a switch before the monitor preempts it; `0`: never | 10 |
//! | GREENIFY_ESCAPES | `report`: count the blocking system calls that bypass the hooks (Syscall User Dispatch) and list them at exit; `catch`: also park the green thread in them | off |
//! | GREENIFY_TLS | `on`: every green thread has its own TCB and TLS; `off`: all share the OS thread's; `auto`: on when several workers run or a loaded module other than libc has TLS of its own when the first thread is created | auto |
//! | GREENIFY_WORKERS | how many OS threads run green threads, 1 or more (several need a TCB per green thread: without one, one runs them) | the CPUs in the process's affinity mask, at most 128 |
//!
//! An empty value counts as unset. Any other value the library does not take, and a
//! GREENIFY_* name it does not know, gives one warning at load naming what it takes and
//! what is used instead (the default). Each program an exec starts reads its environment
//! anew, so warns again; a forked child keeps its parent's settings and says nothing.

use std::ffi::CStr;
use std::fmt;

pub const DEFAULT_STACK_SIZE: usize = 256 << 10;
pub const DEFAULT_SLICE: std::time::Duration = std::time::Duration::from_millis(10);
/// Stack sizes outside these bounds are refused (the wrapper's `--stack-size` takes the same).
pub const MIN_STACK_SIZE: usize = 16 << 10;
pub const MAX_STACK_SIZE: usize = 4 << 30;
/// The default workers (one per CPU) stop here: the monitor watches 256 OS threads, the
/// workers and up to 128 spares that take over stuck ones. A count set by GREENIFY_WORKERS
/// is taken as it is.
const MAX_DEFAULT_WORKERS: usize = 128;

/// The variables something of greenify reads: the library (the first ones), the wrapper
/// (GREENIFY_LIB) and the tests (GREENIFY_TEST_LIB, GREENIFY_SOAK_SECS). Another GREENIFY_*
/// name in the environment is warned about: most likely a typo.
pub const NAMES: [&str; 13] = [
    "GREENIFY_STACK_SIZE",
    "GREENIFY_STATS",
    "GREENIFY_LOG",
    "GREENIFY_GUARD_PAGES",
    "GREENIFY_OFFLOAD_FILES",
    "GREENIFY_SLICE_MS",
    "GREENIFY_TLS",
    "GREENIFY_WORKERS",
    "GREENIFY_ESCAPES",
    "GREENIFY_WATCHDOG",
    "GREENIFY_LIB",
    "GREENIFY_TEST_LIB",
    "GREENIFY_SOAK_SECS",
];

/// GREENIFY_TLS: whether green threads get TCBs (and TLS) of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Auto,
    On,
    Off,
}

/// How many workers run green threads (GREENIFY_WORKERS, or the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workers {
    /// 1 or more.
    pub count: usize,
    /// Asked for by GREENIFY_WORKERS (false: the CPUs of the affinity mask, a default that
    /// falls back to one worker without a warning when green threads share one TCB).
    pub explicit: bool,
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
    pub escapes: Escapes,
    /// Report a thread that keeps its worker, or a worker stuck in a call, this long
    /// (None: no watchdog).
    pub watchdog: Option<std::time::Duration>,
    pub workers: Workers,
    /// The variables whose values were not taken (and unknown GREENIFY_* names), to warn
    /// about once the logger runs.
    pub bad: BadValues,
}

/// Up to this many bad variables are named one by one; the rest are counted.
const N_BAD: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BadValues {
    list: [Option<Bad>; N_BAD],
    len: usize,
}

impl BadValues {
    fn push(&mut self, bad: Bad) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = Some(bad);
        }
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bad> {
        self.list.iter().flatten()
    }

    /// How many more there were than [`BadValues::iter`] names.
    pub fn untold(&self) -> usize {
        self.len.saturating_sub(N_BAD)
    }
}

/// A variable with a value the library does not take, or an unknown GREENIFY_* name.
/// Its text is copied (the environment may change later) into fixed buffers: config is
/// read without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bad {
    name: Text,
    value: Text,
    /// What the variable takes (for an unknown name: the known name closest to it, or "").
    accepted: &'static str,
    /// What the library does instead.
    used: &'static str,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (name, value) = (self.name.as_str(), self.value.as_str());
        if self.used.is_empty() {
            write!(f, "unknown variable {name}={value} ignored")?;
            return match self.accepted {
                "" => write!(f, " (greenify reads {})", Known),
                closest => write!(f, " (did you mean {closest}?)"),
            };
        }
        write!(
            f,
            "{name}={value} is not valid (it takes {}): using {}",
            self.accepted, self.used
        )
    }
}

/// The library's variables, for the unknown-name message.
struct Known;

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, name) in NAMES[..10].iter().enumerate() {
            write!(f, "{}{name}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

/// Up to 40 bytes of an environment string, control characters shown as `?`, longer ones
/// cut with `...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Text {
    buf: [u8; 40],
    len: u8,
}

impl Text {
    fn new(text: &str) -> Text {
        let mut t = Text {
            buf: [0; 40],
            len: 0,
        };
        let cut = text.len() > t.buf.len();
        let keep = if cut { t.buf.len() - 3 } else { text.len() };
        for c in text.chars() {
            let mut utf8 = [0; 4];
            let c = if c.is_control() {
                "?"
            } else {
                c.encode_utf8(&mut utf8)
            };
            if t.len as usize + c.len() > keep {
                break;
            }
            t.buf[t.len as usize..t.len as usize + c.len()].copy_from_slice(c.as_bytes());
            t.len += c.len() as u8;
        }
        if cut {
            t.buf[t.len as usize..t.len as usize + 3].copy_from_slice(b"...");
            t.len += 3;
        }
        t
    }

    fn as_str(&self) -> &str {
        // Built from whole UTF-8 characters only.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("?")
    }
}

/// Reads variables, noting the values it does not take.
struct Reader<F> {
    lookup: F,
    bad: BadValues,
}

impl<F: Fn(&str) -> Option<&'static str>> Reader<F> {
    /// `name`'s value parsed, or None when unset or empty (`GREENIFY_STATS= prog` means
    /// "not set") or malformed (noted, with what it takes and what is `used` instead).
    fn read<T>(
        &mut self,
        name: &'static str,
        accepted: &'static str,
        used: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let value = (self.lookup)(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())?;
        let parsed = parse(value);
        if parsed.is_none() {
            self.bad.push(Bad {
                name: Text::new(name),
                value: Text::new(value),
                accepted,
                used,
            });
        }
        parsed
    }
}

impl Config {
    /// Reads the environment (via libc's getenv, which greenify does not override).
    /// Allocates nothing: the first hooked call reads it, and that call may come from inside
    /// the program's malloc (tcmalloc calls pthread_once while it initialises).
    pub fn from_env() -> Config {
        let mut config = Config::from_lookup(affinity_cpus(), |name| {
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
        });
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        // SAFETY: glibc's environ is NULL or a NULL-terminated array of NUL-terminated
        // strings; it is read once here, before the program's threads start.
        let mut entry = unsafe { environ };
        let entries = std::iter::from_fn(|| {
            // SAFETY: as above: `entry` stays within the array up to its NULL.
            let text = unsafe { entry.as_ref() }
                .copied()
                .filter(|p| !p.is_null())?;
            // SAFETY: as above; the next slot exists since this one was not the NULL.
            entry = unsafe { entry.add(1) };
            // SAFETY: an environment string is NUL-terminated.
            Some(unsafe { CStr::from_ptr(text) }.to_bytes())
        });
        config.note_unknown_names(entries);
        config
    }

    /// The configuration from `lookup` (a variable's value; one that is not UTF-8 counts as
    /// unset), on a process that may run on `cpus` CPUs.
    pub fn from_lookup(cpus: usize, lookup: impl Fn(&str) -> Option<&'static str>) -> Config {
        let mut env = Reader {
            lookup,
            bad: BadValues::default(),
        };
        let stack_size = env
            .read(
                "GREENIFY_STACK_SIZE",
                "bytes from 16K to 4G, with an optional K, M or G suffix",
                "256K",
                parse_size,
            )
            .unwrap_or(DEFAULT_STACK_SIZE);
        let stats = env
            .read("GREENIFY_STATS", "0 or 1", "0", on_off)
            .unwrap_or(false);
        let log_level = env
            .read(
                "GREENIFY_LOG",
                "off, error, warn, info, debug or trace",
                "warn",
                |v| v.parse().ok(),
            )
            .unwrap_or(::log::LevelFilter::Warn);
        let guard_pages = env.read(
            "GREENIFY_GUARD_PAGES",
            "a count, 0 or more",
            "as many as vm.max_map_count affords",
            |v| v.parse().ok(),
        );
        let offload_files = env
            .read("GREENIFY_OFFLOAD_FILES", "0 or 1", "0", on_off)
            .unwrap_or(false);
        let tls = env
            .read("GREENIFY_TLS", "auto, on or off", "auto", |v| match v {
                "auto" => Some(Tls::Auto),
                "on" => Some(Tls::On),
                "off" => Some(Tls::Off),
                _ => None,
            })
            .unwrap_or(Tls::Auto);
        let slice = env
            .read(
                "GREENIFY_SLICE_MS",
                "milliseconds, 0 for never",
                "10",
                |v| v.parse::<u64>().ok(),
            )
            .map_or(Some(DEFAULT_SLICE), |ms| {
                (ms > 0).then(|| std::time::Duration::from_millis(ms))
            });
        let escapes = env
            .read(
                "GREENIFY_ESCAPES",
                "off, report or catch",
                "off",
                |v| match v {
                    "report" => Some(Escapes::Report),
                    "catch" => Some(Escapes::Catch),
                    "off" => Some(Escapes::Off),
                    _ => None,
                },
            )
            .unwrap_or(Escapes::Off);
        let watchdog = env
            .read("GREENIFY_WATCHDOG", "milliseconds, 0 for off", "0", |v| {
                v.parse::<u64>().ok()
            })
            .and_then(|ms| (ms > 0).then(|| std::time::Duration::from_millis(ms)));
        let workers = env
            .read(
                "GREENIFY_WORKERS",
                "a count, 1 or more",
                "the CPUs in the affinity mask",
                |v| v.parse().ok().filter(|&n: &usize| n > 0),
            )
            .map_or(
                Workers {
                    count: cpus.clamp(1, MAX_DEFAULT_WORKERS),
                    explicit: false,
                },
                |count| Workers {
                    count,
                    explicit: true,
                },
            );
        Config {
            watchdog,
            workers,
            stack_size,
            slice,
            escapes,
            stats,
            log_level,
            guard_pages,
            offload_files,
            tls,
            bad: env.bad,
        }
    }

    /// Notes each `GREENIFY_*=...` entry of `environment` whose name is none of [`NAMES`].
    pub fn note_unknown_names<'a>(&mut self, environment: impl Iterator<Item = &'a [u8]>) {
        for entry in environment {
            let Some(rest) = entry.strip_prefix(b"GREENIFY_") else {
                continue;
            };
            let eq = rest.iter().position(|&b| b == b'=').unwrap_or(rest.len());
            let name = &entry[..9 + eq];
            if NAMES.iter().any(|known| known.as_bytes() == name) {
                continue;
            }
            let (Ok(name), Ok(value)) = (
                std::str::from_utf8(name),
                std::str::from_utf8(entry.get(10 + eq..).unwrap_or(b"")),
            ) else {
                continue;
            };
            let closest = NAMES
                .iter()
                .map(|known| (distance(name, known), *known))
                .min()
                // Close: a letter or two off, fewer for a short name (FOO is not LOG).
                .filter(|&(d, known)| d <= 2 && 3 * d <= known.len() - 9)
                .map_or("", |(_, known)| known);
            self.bad.push(Bad {
                name: Text::new(name),
                value: Text::new(value),
                accepted: closest,
                used: "",
            });
        }
    }
}

/// The options in effect, as `NAME=value` pairs (the start line at GREENIFY_LOG=info).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "GREENIFY_STACK_SIZE={} GREENIFY_STATS={} GREENIFY_LOG={} GREENIFY_GUARD_PAGES=",
            self.stack_size,
            u8::from(self.stats),
            self.log_level.as_str().to_ascii_lowercase()
        )?;
        match self.guard_pages {
            Some(n) => write!(f, "{n}")?,
            None => f.write_str("max")?,
        }
        let tls = match self.tls {
            Tls::Auto => "auto",
            Tls::On => "on",
            Tls::Off => "off",
        };
        let escapes = match self.escapes {
            Escapes::Off => "off",
            Escapes::Report => "report",
            Escapes::Catch => "catch",
        };
        write!(
            f,
            " GREENIFY_OFFLOAD_FILES={} GREENIFY_TLS={tls} GREENIFY_SLICE_MS={} GREENIFY_ESCAPES={escapes} GREENIFY_WATCHDOG={} GREENIFY_WORKERS={}{}",
            u8::from(self.offload_files),
            self.slice.map_or(0, |s| s.as_millis()),
            self.watchdog.map_or(0, |w| w.as_millis()),
            self.workers.count,
            if self.workers.explicit {
                ""
            } else {
                " (the CPUs in the affinity mask)"
            }
        )
    }
}

/// The CPUs the calling thread may run on (its affinity mask, which a new thread inherits),
/// at least 1. A raw system call: this runs at the first hooked call, which may come from
/// inside the program's malloc.
fn affinity_cpus() -> usize {
    rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count().max(1) as usize)
}

/// "0" or "1".
fn on_off(text: &str) -> Option<bool> {
    match text {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// The edit distance of two short names (longer ones count as far apart).
fn distance(a: &str, b: &str) -> usize {
    const N: usize = 40;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() >= N || b.len() >= N {
        return usize::MAX;
    }
    let mut row = [0usize; N];
    for (j, slot) in row.iter_mut().enumerate().take(b.len() + 1) {
        *slot = j;
    }
    for i in 1..=a.len() {
        let mut diagonal = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let above = row[j];
            row[j] = (above + 1)
                .min(row[j - 1] + 1)
                .min(diagonal + usize::from(a[i - 1] != b[j - 1]));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// "65536", "64K", "8m", "1G" -> bytes; None if malformed or outside 16K..=4G.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 10),
        'M' => (&text[..text.len() - 1], 20),
        'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits.trim().parse().ok()?;
    n.checked_mul(1usize << shift)
        .filter(|n| (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(n))
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
        assert_eq!(parse_size("1"), None);
        assert_eq!(parse_size("16k"), Some(16 << 10));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("5G"), None);
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn from_lookup_defaults_and_values() {
        let c = Config::from_lookup(2, |_| None);
        assert_eq!(c.stack_size, DEFAULT_STACK_SIZE);
        assert!(!c.stats);
        assert_eq!(c.log_level, ::log::LevelFilter::Warn);
        assert_eq!(c.guard_pages, None);
        assert!(!c.offload_files);
        assert_eq!(c.tls, Tls::Auto);
        assert_eq!(c.slice, Some(DEFAULT_SLICE));
        let c = Config::from_lookup(2, |k| {
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
            Config::from_lookup(2, slice).slice,
            Some(std::time::Duration::from_millis(25))
        );
        let on = |v: &'static str| move |k: &str| (k == "GREENIFY_TLS").then_some(v);
        assert_eq!(Config::from_lookup(2, on("on")).tls, Tls::On);
        assert_eq!(Config::from_lookup(2, on("maybe")).tls, Tls::Auto);
        assert_eq!(Config::from_lookup(2, on("auto")).bad, BadValues::default());
        assert_eq!(
            Config::from_lookup(2, on(" ")),
            Config::from_lookup(2, |_| None)
        );
        let escapes = |v: &'static str| move |k: &str| (k == "GREENIFY_ESCAPES").then_some(v);
        assert_eq!(Config::from_lookup(2, |_| None).escapes, Escapes::Off);
        assert_eq!(
            Config::from_lookup(2, escapes("report")).escapes,
            Escapes::Report
        );
        assert_eq!(
            Config::from_lookup(2, escapes("catch")).escapes,
            Escapes::Catch
        );
        assert_eq!(
            Config::from_lookup(2, escapes("loud")).escapes,
            Escapes::Off
        );
        assert_ne!(
            Config::from_lookup(2, escapes("loud")).bad,
            BadValues::default()
        );
    }

    #[test]
    fn workers_default_to_the_cpus_of_the_affinity_mask() {
        let workers = |cpus, v: &'static str| {
            Config::from_lookup(cpus, move |k: &str| (k == "GREENIFY_WORKERS").then_some(v))
        };
        let default = |count| Workers {
            count,
            explicit: false,
        };
        let explicit = |count| Workers {
            count,
            explicit: true,
        };
        assert_eq!(Config::from_lookup(2, |_| None).workers, default(2));
        assert_eq!(Config::from_lookup(1, |_| None).workers, default(1));
        assert_eq!(Config::from_lookup(64, |_| None).workers, default(64));
        assert_eq!(Config::from_lookup(1000, |_| None).workers, default(128));
        assert_eq!(workers(1000, "300").workers, explicit(300));
        // An affinity mask that could not be read counts as one CPU.
        assert_eq!(Config::from_lookup(0, |_| None).workers, default(1));
        assert_eq!(workers(2, " ").workers, default(2));
        assert_eq!(workers(2, " 1").workers, explicit(1));
        assert_eq!(workers(1, "3").workers, explicit(3));
        assert_eq!(workers(2, "3").bad, BadValues::default());
        for bad in ["0", "many", "-1", "2x"] {
            let c = workers(4, bad);
            assert_eq!(c.workers, default(4));
            assert_eq!(
                c.bad.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                [format!(
                    "GREENIFY_WORKERS={bad} is not valid (it takes a count, 1 or more): using the CPUs in the affinity mask"
                )]
            );
        }
    }

    #[test]
    fn the_affinity_mask_is_counted() {
        // This test's own mask, as `taskset -c 0 cargo test` would narrow it.
        // SAFETY: a cpu_set_t is plain bits; all zero is an empty set.
        let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
        // SAFETY: `set` is a cpu_set_t of the size passed.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        assert_eq!(r, 0);
        // SAFETY: `set` was filled in above.
        let expected = unsafe { libc::CPU_COUNT(&set) } as usize;
        assert!(expected >= 1);
        assert_eq!(affinity_cpus(), expected);
    }

    #[test]
    fn watchdog_takes_milliseconds_zero_is_off() {
        let watchdog = |v: &'static str| move |k: &str| (k == "GREENIFY_WATCHDOG").then_some(v);
        assert_eq!(Config::from_lookup(2, |_| None).watchdog, None);
        assert_eq!(Config::from_lookup(2, watchdog("0")).watchdog, None);
        assert_eq!(
            Config::from_lookup(2, watchdog("250")).watchdog,
            Some(std::time::Duration::from_millis(250))
        );
        let bad = Config::from_lookup(2, watchdog("1s"));
        assert_eq!(bad.watchdog, None);
        assert_ne!(bad.bad, BadValues::default());
    }

    /// The warnings a lookup gives, as the log prints them.
    fn warnings(lookup: impl Fn(&str) -> Option<&'static str>, env: &[&str]) -> Vec<String> {
        let mut c = Config::from_lookup(2, lookup);
        c.note_unknown_names(env.iter().map(|e| e.as_bytes()));
        c.bad.iter().map(|b| b.to_string()).collect()
    }

    #[test]
    fn bad_values_are_named_with_what_is_taken_and_used() {
        let bad = |k: &str| {
            Some(match k {
                "GREENIFY_STACK_SIZE" => "abc",
                "GREENIFY_STATS" => "true",
                "GREENIFY_LOG" => "verbose",
                "GREENIFY_GUARD_PAGES" => "-1",
                "GREENIFY_OFFLOAD_FILES" => "yes",
                "GREENIFY_TLS" => "maybe",
                "GREENIFY_SLICE_MS" => "5ms",
                _ => return None,
            })
        };
        let c = Config::from_lookup(2, bad);
        assert_eq!(
            (c.stack_size, c.stats, c.log_level, c.guard_pages),
            (DEFAULT_STACK_SIZE, false, ::log::LevelFilter::Warn, None)
        );
        assert_eq!((c.offload_files, c.tls), (false, Tls::Auto));
        assert_eq!(c.slice, Some(DEFAULT_SLICE));
        assert_eq!(
            warnings(bad, &[]),
            [
                "GREENIFY_STACK_SIZE=abc is not valid (it takes bytes from 16K to 4G, with an optional K, M or G suffix): using 256K",
                "GREENIFY_STATS=true is not valid (it takes 0 or 1): using 0",
                "GREENIFY_LOG=verbose is not valid (it takes off, error, warn, info, debug or trace): using warn",
                "GREENIFY_GUARD_PAGES=-1 is not valid (it takes a count, 0 or more): using as many as vm.max_map_count affords",
                "GREENIFY_OFFLOAD_FILES=yes is not valid (it takes 0 or 1): using 0",
                "GREENIFY_TLS=maybe is not valid (it takes auto, on or off): using auto",
                "GREENIFY_SLICE_MS=5ms is not valid (it takes milliseconds, 0 for never): using 10",
            ]
        );
        let one = |k: &str| (k == "GREENIFY_STACK_SIZE").then_some("1");
        assert_eq!(Config::from_lookup(2, one).stack_size, DEFAULT_STACK_SIZE);
        assert_eq!(warnings(one, &[]).len(), 1);
        let zero =
            |k: &str| (k == "GREENIFY_STATS" || k == "GREENIFY_OFFLOAD_FILES").then_some("0");
        assert_eq!(warnings(zero, &[]), Vec::<String>::new());
    }

    #[test]
    fn unknown_names_are_named_with_the_closest_known_one() {
        let env = [
            "PATH=/bin",
            "GREENIFY_STAT=1",
            "GREENIFY_LOG=info",
            "GREENIFY_FOO=bar\nbaz",
            "GREENIFY_TLSS",
        ];
        assert_eq!(
            warnings(|_| None, &env),
            [
                "unknown variable GREENIFY_STAT=1 ignored (did you mean GREENIFY_STATS?)",
                "unknown variable GREENIFY_FOO=bar?baz ignored (greenify reads GREENIFY_STACK_SIZE, GREENIFY_STATS, GREENIFY_LOG, GREENIFY_GUARD_PAGES, GREENIFY_OFFLOAD_FILES, GREENIFY_SLICE_MS, GREENIFY_TLS, GREENIFY_WORKERS, GREENIFY_ESCAPES, GREENIFY_WATCHDOG)",
                "unknown variable GREENIFY_TLSS= ignored (did you mean GREENIFY_TLS?)",
            ]
        );
        let many: Vec<String> = (0..10).map(|i| format!("GREENIFY_X{i}=1")).collect();
        let mut c = Config::from_lookup(2, |_| None);
        c.note_unknown_names(many.iter().map(|e| e.as_bytes()));
        assert_eq!((c.bad.iter().count(), c.bad.untold()), (N_BAD, 2));
    }

    #[test]
    fn long_values_are_cut() {
        let long = |k: &str| (k == "GREENIFY_TLS").then_some("x".repeat(100).leak() as &str);
        let text = &warnings(long, &[])[0];
        assert!(
            text.starts_with(&format!("GREENIFY_TLS={}... is", "x".repeat(37))),
            "{text}"
        );
    }

    #[test]
    fn the_options_in_effect() {
        assert_eq!(
            Config::from_lookup(2, |_| None).to_string(),
            "GREENIFY_STACK_SIZE=262144 GREENIFY_STATS=0 GREENIFY_LOG=warn GREENIFY_GUARD_PAGES=max GREENIFY_OFFLOAD_FILES=0 GREENIFY_TLS=auto GREENIFY_SLICE_MS=10 GREENIFY_ESCAPES=off GREENIFY_WATCHDOG=0 GREENIFY_WORKERS=2 (the CPUs in the affinity mask)"
        );
        assert!(
            Config::from_lookup(2, |k| (k == "GREENIFY_WORKERS").then_some("3"))
                .to_string()
                .ends_with(" GREENIFY_WORKERS=3")
        );
    }
}
