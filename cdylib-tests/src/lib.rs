//! Harness for greenify's integration tests.
//!
//! The library under test is a cdylib that exports `read`, `write`, `pthread_create`, ...; it
//! must never be linked into a test binary (its hooks would hijack the harness itself, and
//! `cargo test` does not build a cdylib). Instead the tests:
//!
//! * build `libgreenify.so` once per test process with a nested `cargo build` ([`lib_path`]),
//! * compile the demo programs of `c-examples/` with gcc ([`example`], [`example_with`]),
//! * run them natively or under `LD_PRELOAD` ([`Cmd`], [`Mode`]), every run bounded by a
//!   timeout, every child killed (with its whole process group) when the test ends or fails,
//! * start servers and read their port ([`Server`]),
//! * run the Python scripts of `cdylib-tests/py/` with the real interpreter ([`python3`],
//!   [`py_script`]),
//! * watch a process from outside: [`os_threads`], [`open_fds`], [`Sampler`],
//! * read the library's exit statistics ([`parse_stats`]).
//!
//! Environment knobs:
//! * `GREENIFY_TEST_LIB=/path/to/lib.so`: use this library instead of building one (handy to
//!   test the harness itself against a stub library).
//! * `CARGO`: the cargo to run for the nested build (cargo sets it for tests; else `cargo`).
//! * `CARGO_TARGET_DIR`: honoured like cargo does (relative paths are taken from the workspace
//!   root); by default everything goes below `<workspace>/target`.
//!
//! Every child gets its `RLIMIT_NOFILE` soft limit raised to the hard limit, its own process
//! group, stdin from `/dev/null` (unless a test passes another), and neither `LD_PRELOAD` nor
//! `GREENIFY_STATS` from the test's environment (a test sets them explicitly).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The keys of the `greenify stats:` line, in the order the library prints them.
pub const STATS_KEYS: [&str; 12] = [
    "threads_created",
    "peak_alive",
    "context_switches",
    "epoll_waits",
    "parks_read",
    "parks_write",
    "parks_accept",
    "parks_connect",
    "parks_sleep",
    "parks_poll",
    "parks_join",
    "parks_yield",
];

/// How long the nested `cargo build` of the library may take before we give up.
const LIB_BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a server may take to print `listening on PORT`.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for a child's stdout/stderr to reach EOF once it has exited (a grandchild
/// could keep them open; we do not wait forever for that).
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many bytes of a stream are shown (head and tail) in a failure report.
const REPORT_LIMIT: usize = 12 * 1024;

// ---------------------------------------------------------------------------------------------
// Paths and the library under test
// ---------------------------------------------------------------------------------------------

/// The workspace root (the directory holding the root `Cargo.toml`, `src/`, `c-examples/`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cdylib-tests lives inside the workspace")
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace root if
/// relative) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// Absolute path of the `libgreenify.so` under test, built on first use in this process.
///
/// Runs `$CARGO build --release -p greenify --lib` at the workspace root (once per test
/// process, guarded by a `OnceLock`) and returns `<target>/release/libgreenify.so`. When
/// `GREENIFY_TEST_LIB` is set, that file is used as is and nothing is built.
///
/// Nested cargo and the build-directory lock: measured with cargo 1.95, a nested
/// `cargo build --release` started from a test of `cargo test --workspace --release` (and of
/// `cargo test -p cdylib-tests`, release or debug) does NOT block: cargo releases the lock on
/// the target directory before it runs the test binaries. So the nested build shares the
/// ordinary target directory (and reuses what `cargo build --release` already built) instead
/// of a separate `CARGO_TARGET_DIR`. Were that ever to change, the nested build would print
/// "Blocking waiting for file lock" and hit [`LIB_BUILD_TIMEOUT`]; the failure message shows
/// cargo's stderr, so it would be obvious.
///
/// Panics with cargo's output when the build fails.
#[track_caller]
pub fn lib_path() -> &'static Path {
    static LIB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LIB.get_or_init(build_lib) {
        Ok(path) => path,
        Err(msg) => panic!("{msg}"),
    }
}

/// Absolute path of `greenify-ctl` (the command behind `greenify dump` and `greenify
/// stats`), built with `$CARGO build --release -p greenify-ctl` once per test process.
pub fn ctl_path() -> &'static Path {
    static CTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = CTL.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--release", "-p", "greenify-ctl"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building greenify-ctl failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(target_dir().join("release/greenify-ctl"))
    });
    match built {
        Ok(path) => path,
        Err(msg) => panic!("{msg}"),
    }
}

fn build_lib() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("GREENIFY_TEST_LIB").filter(|p| !p.is_empty()) {
        let path = fs::canonicalize(&path)
            .map_err(|e| format!("GREENIFY_TEST_LIB={}: {e}", Path::new(&path).display()))?;
        return Ok(path);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "-p", "greenify", "--lib"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!(
        "`{} build --release -p greenify --lib` in {}",
        Path::new(&cargo).display(),
        workspace_root().display()
    );
    let out = run_command(cmd, &what, LIB_BUILD_TIMEOUT)
        .map_err(|e| format!("building libgreenify.so failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building libgreenify.so failed: {what} exited with {}\n--- cargo stderr ---\n{}\
             \n--- cargo stdout ---\n{}",
            out.status,
            clip(&out.stderr),
            clip(&out.stdout)
        ));
    }
    let lib = target_dir().join("release").join("libgreenify.so");
    if !lib.is_file() {
        return Err(format!(
            "{what} succeeded but {} does not exist\n--- cargo stderr ---\n{}",
            lib.display(),
            clip(&out.stderr)
        ));
    }
    fs::canonicalize(&lib).map_err(|e| format!("{}: {e}", lib.display()))
}

/// Path of the wrapper script `scripts/greenify` (panics if it does not exist yet).
#[track_caller]
pub fn wrapper_path() -> PathBuf {
    let path = workspace_root().join("scripts").join("greenify");
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

// ---------------------------------------------------------------------------------------------
// Compiling C programs
// ---------------------------------------------------------------------------------------------

/// The flags every example is compiled with (before any extra flags).
pub const BASE_CFLAGS: [&str; 5] = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"];

/// Compiles `c-examples/NAME.c` into `<target>/c-examples/NAME` (once per process) and returns
/// the path. Panics with gcc's output if it does not compile.
#[track_caller]
pub fn example(name: &str) -> PathBuf {
    example_with(name, "", &[])
}

/// Like [`example`] with extra gcc flags appended; the binary is `<target>/c-examples/NAME-TAG`
/// (`NAME` when `tag` is empty). Each (name, tag) is compiled once per process; concurrent
/// callers wait for the one compilation.
#[track_caller]
pub fn example_with(name: &str, tag: &str, extra_cflags: &[&str]) -> PathBuf {
    let src = workspace_root()
        .join("c-examples")
        .join(format!("{name}.c"));
    let out_name = if tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}-{tag}")
    };
    let mut flags: Vec<&str> = BASE_CFLAGS.to_vec();
    flags.extend_from_slice(extra_cflags);
    compile_cached(&src, &out_name, &flags)
}

/// Compiles the test-only program `cdylib-tests/c/NAME.c` (with the examples' flags plus
/// `extra_cflags`) into `<target>/c-examples/NAME`, once per process.
#[track_caller]
pub fn test_program(name: &str, extra_cflags: &[&str]) -> PathBuf {
    let src = workspace_root()
        .join("cdylib-tests")
        .join("c")
        .join(format!("{name}.c"));
    let mut flags: Vec<&str> = BASE_CFLAGS.to_vec();
    flags.extend_from_slice(extra_cflags);
    compile_cached(&src, name, &flags)
}

/// Writes `source` to `<target>/c-examples/OUT_NAME.c` and compiles it with exactly `cflags`
/// (no base flags) into `<target>/c-examples/OUT_NAME`, once per process.
#[track_caller]
pub fn compile_c_source(out_name: &str, source: &str, cflags: &[&str]) -> PathBuf {
    let dir = examples_dir();
    let src = dir.join(format!("{out_name}.c"));
    // Write via a temporary name so that a concurrent compile never sees half a file.
    let tmp = dir.join(format!(".{out_name}.c.{}", std::process::id()));
    fs::write(&tmp, source).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    fs::rename(&tmp, &src).unwrap_or_else(|e| panic!("renaming to {}: {e}", src.display()));
    compile_cached(&src, out_name, cflags)
}

fn examples_dir() -> PathBuf {
    let dir = target_dir().join("c-examples");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

type CompileCell = Arc<OnceLock<Result<PathBuf, String>>>;

#[track_caller]
fn compile_cached(src: &Path, out_name: &str, cflags: &[&str]) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, CompileCell>>> = OnceLock::new();
    let cell = {
        let mut map = lock(CACHE.get_or_init(Default::default));
        map.entry(out_name.to_string()).or_default().clone()
    };
    // Compile outside the map lock: different programs compile in parallel, callers of the
    // same program wait on its OnceLock.
    match cell.get_or_init(|| compile(src, out_name, cflags)) {
        Ok(path) => path.clone(),
        Err(msg) => panic!("{msg}"),
    }
}

fn compile(src: &Path, out_name: &str, cflags: &[&str]) -> Result<PathBuf, String> {
    if !src.is_file() {
        return Err(format!(
            "{} does not exist (c-examples/ not written yet?)",
            src.display()
        ));
    }
    let dir = examples_dir();
    let out = dir.join(out_name);
    let tmp = dir.join(format!(".{out_name}.tmp.{}", std::process::id()));
    let mut cmd = Command::new("gcc");
    cmd.args(cflags)
        .arg("-o")
        .arg(&tmp)
        .arg(src)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!(
        "gcc {} -o {} {}",
        cflags.join(" "),
        out.display(),
        src.display()
    );
    let res = run_command(cmd, &what, Duration::from_secs(120))?;
    if !res.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "compiling failed: {what}: {}\n{}{}",
            res.status,
            clip(&res.stderr),
            clip(&res.stdout)
        ));
    }
    // Rename is atomic: another test process never runs a half-written binary.
    fs::rename(&tmp, &out).map_err(|e| format!("renaming to {}: {e}", out.display()))?;
    Ok(out)
}

/// Writes an executable file `<target>/c-examples/NAME` holding `content` (atomically).
pub fn write_executable(name: &str, content: &str) -> PathBuf {
    let path = examples_dir().join(name);
    let tmp = examples_dir().join(format!(".{name}.{}", std::process::id()));
    fs::write(&tmp, content).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", tmp.display()));
    fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("renaming to {}: {e}", path.display()));
    path
}

// ---------------------------------------------------------------------------------------------
// Python programs
// ---------------------------------------------------------------------------------------------

/// The path of the CPython interpreter that `python3` on `PATH` runs (its `sys.executable`),
/// asked once per process; panics with a clear message when there is none.
///
/// Tests run this path rather than `python3` itself: `python3` on `PATH` may be a shell shim
/// (pyenv's is a bash script that forks helpers before it execs the interpreter), and a
/// greenified run must preload the interpreter, not a shell in front of it; the [`Sampler`]
/// then watches the interpreter's own pid.
#[track_caller]
pub fn python3() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", "import sys; print(sys.executable)"])
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = run_command(
            cmd,
            "python3 -c 'import sys; print(sys.executable)'",
            Duration::from_secs(60),
        )
        .map_err(|e| format!("python3 is needed for this test but could not be run: {e}"))?;
        let path = PathBuf::from(out.stdout.trim());
        if !out.status.success() || !path.is_file() {
            return Err(format!(
                "python3 is needed for this test but did not name its interpreter\n{}",
                out.report()
            ));
        }
        Ok(path)
    });
    match found {
        Ok(path) => path,
        Err(msg) => panic!("{msg}"),
    }
}

/// The path of the test script `cdylib-tests/py/NAME`; panics if it does not exist.
#[track_caller]
pub fn py_script(name: &str) -> PathBuf {
    let path = workspace_root().join("cdylib-tests").join("py").join(name);
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

// ---------------------------------------------------------------------------------------------
// Test serialisation
// ---------------------------------------------------------------------------------------------

static SERIAL: RwLock<()> = RwLock::new(());

/// Taken by tests that create heavy load (thousands of threads or connections) or that judge
/// timings: they run alone, so they neither disturb nor get disturbed by other tests.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// Taken by light tests: they run in parallel with each other, never with an [`exclusive`]
/// one.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------------------------

/// Native run, or under `LD_PRELOAD=libgreenify.so`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Native,
    Greenified,
}

impl Mode {
    /// Both modes, native first.
    pub const BOTH: [Mode; 2] = [Mode::Native, Mode::Greenified];
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Greenified => "greenified",
        })
    }
}

/// A program to run: a small builder over `std::process::Command` that adds the mode, a
/// timeout, output capture and clean-up.
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    mode: Mode,
    timeout: Duration,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    dir: Option<PathBuf>,
}

impl Cmd {
    /// A native run of `program` with a 60 s timeout, stdin `/dev/null`, stdout and stderr
    /// captured.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            mode: Mode::Native,
            timeout: Duration::from_secs(60),
            stdin: None,
            stdout: None,
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (applied after the mode's `LD_PRELOAD`, so it can
    /// override it).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn mode(mut self, mode: Mode) -> Cmd {
        self.mode = mode;
        self
    }

    /// Shorthand for `.mode(Mode::Greenified)`.
    pub fn greenified(self) -> Cmd {
        self.mode(Mode::Greenified)
    }

    /// The whole run (start to exit) must fit in `timeout`, or the child is killed and the
    /// test fails.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Replaces the default stdin (`/dev/null`).
    pub fn stdin(mut self, stdin: impl Into<Stdio>) -> Cmd {
        self.stdin = Some(stdin.into());
        self
    }

    /// Replaces the default stdout (a pipe captured into [`Output::stdout`]).
    pub fn stdout(mut self, stdout: impl Into<Stdio>) -> Cmd {
        self.stdout = Some(stdout.into());
        self
    }

    /// Runs the program in `dir` instead of the test's working directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// One line describing the run, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = format!("[{}] {}", self.mode, Path::new(&self.program).display());
        if let Some(dir) = &self.dir {
            s.push_str(&format!(" (in {})", dir.display()));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        for (k, v) in &self.env {
            s.push_str(&format!(
                " ({}={})",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
        s
    }

    #[track_caller]
    fn into_command(self) -> (Command, String, Duration) {
        let desc = self.describe();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_remove("LD_PRELOAD")
            .env_remove("GREENIFY_STATS");
        if self.mode == Mode::Greenified {
            cmd.env("LD_PRELOAD", lib_path());
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(self.stdin.unwrap_or_else(Stdio::null))
            .stdout(self.stdout.unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped());
        prepare_child(&mut cmd);
        (cmd, desc, self.timeout)
    }

    /// Starts the program; the returned [`Running`] kills it (and its process group) when
    /// dropped before it was waited for.
    #[track_caller]
    pub fn spawn(self) -> Running {
        let (mut cmd, desc, timeout) = self.into_command();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Running {
            child: Some(child),
            desc,
            started: Instant::now(),
            timeout,
            stdout,
            stderr,
        }
    }

    /// Runs the program to its end (see [`Running::wait`]).
    #[track_caller]
    pub fn run(self) -> Output {
        self.spawn().wait()
    }
}

/// Sets up what every child gets: RLIMIT_NOFILE soft = hard, and its own process group (so
/// that clean-up can kill it together with anything it started).
fn prepare_child(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec; it only makes the
    // async-signal-safe system calls getrlimit, setrlimit and setpgid, touches no lock and
    // allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
                rl.rlim_cur = rl.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Reads a stream to its end on a thread; the result arrives on the channel.
fn drain<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn collect(rx: Option<mpsc::Receiver<Vec<u8>>>) -> String {
    match rx {
        None => String::new(),
        Some(rx) => match rx.recv_timeout(PIPE_DRAIN_TIMEOUT) {
            Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => "<stream still open after the process exited; not read>".to_string(),
        },
    }
}

/// Kills the process group led by `child` (and the child itself), then reaps the child.
fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group `pid`, which our child
        // created with setpgid(0, 0) and which still exists because the child is not reaped.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// A started program (see [`Cmd::spawn`]).
pub struct Running {
    child: Option<Child>,
    desc: String,
    started: Instant,
    timeout: Duration,
    stdout: Option<mpsc::Receiver<Vec<u8>>>,
    stderr: Option<mpsc::Receiver<Vec<u8>>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the exit, bounded by the timeout of the [`Cmd`]: on timeout the process group
    /// is killed and the test fails with what the program printed so far.
    #[track_caller]
    pub fn wait(self) -> Output {
        let timeout = self.timeout;
        match self.wait_bounded() {
            Ok(out) => out,
            Err(out) => panic!("TIMEOUT: killed after {timeout:?}\n{}", out.report()),
        }
    }

    /// Like [`wait`](Self::wait), but a timeout is an `Err` carrying what the program did
    /// until it was killed (for tests that record outcomes instead of failing at once).
    #[track_caller]
    pub fn wait_bounded(mut self) -> Result<Output, Output> {
        let mut child = self.child.take().expect("running");
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    kill_and_reap(&mut child);
                    panic!("waiting for {}: {e}", self.desc);
                }
            }
            if self.started.elapsed() > self.timeout {
                kill_and_reap(&mut child);
                timed_out = true;
                break child.wait().expect("reaped");
            }
            thread::sleep(Duration::from_millis(5));
        };
        let out = Output {
            desc: self.desc.clone(),
            status,
            stdout: collect(self.stdout.take()),
            stderr: collect(self.stderr.take()),
            elapsed: self.started.elapsed(),
        };
        if timed_out {
            Err(out)
        } else {
            Ok(out)
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_and_reap(child);
        }
    }
}

/// What a finished program did.
#[derive(Debug)]
pub struct Output {
    /// The [`Cmd::describe`] line.
    pub desc: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From start to exit.
    pub elapsed: Duration,
}

impl Output {
    /// A multi-line account of the run (command, status, time, stdout, stderr) for failure
    /// messages.
    pub fn report(&self) -> String {
        format!(
            "command: {}\nstatus: {} after {:.3} s\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.desc,
            self.status,
            self.elapsed.as_secs_f64(),
            clip(&self.stdout),
            clip(&self.stderr)
        )
    }

    /// Panics with the [`report`](Self::report) unless the program exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(
            self.status.success(),
            "program did not exit with status 0\n{}",
            self.report()
        );
        self
    }

    /// Panics with the report unless stdout is exactly `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) -> &Output {
        assert!(
            self.stdout == expected,
            "unexpected stdout: expected {expected:?}, got {:?}\n{}",
            self.stdout,
            self.report()
        );
        self
    }

    /// The parsed `greenify stats:` line; panics with the report when there is none.
    #[track_caller]
    pub fn stats(&self) -> BTreeMap<String, u64> {
        match parse_stats(&self.stderr) {
            Some(stats) => stats,
            None => panic!("no `greenify stats:` line on stderr\n{}", self.report()),
        }
    }
}

/// Shows the lines of two outputs that differ (for a mismatch message).
pub fn diff_lines(a_name: &str, a: &str, b_name: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            out.push_str(&format!(
                "line {}:\n  {a_name:>10}: {}\n  {b_name:>10}: {}\n",
                i + 1,
                x.unwrap_or(&"<missing>"),
                y.unwrap_or(&"<missing>")
            ));
        }
    }
    out
}

/// Panics with a line diff and both reports unless the two runs printed the same stdout.
#[track_caller]
pub fn assert_same_stdout(native: &Output, green: &Output) {
    assert!(
        native.stdout == green.stdout,
        "stdout differs between the native and the greenified run\n{}\n=== native ===\n{}\n=== greenified ===\n{}",
        diff_lines("native", &native.stdout, "greenified", &green.stdout),
        native.report(),
        green.report()
    );
}

/// Keeps at most [`REPORT_LIMIT`] bytes of `s`: its head and its tail.
pub fn clip(s: &str) -> String {
    if s.len() <= REPORT_LIMIT {
        return s.to_string();
    }
    let half = REPORT_LIMIT / 2;
    let mut head = half;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - half;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[... {} bytes left out ...]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// Runs a prepared command with a timeout, capturing both streams (for cargo and gcc).
fn run_command(mut cmd: Command, what: &str, timeout: Duration) -> Result<Output, String> {
    prepare_child(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let running = Running {
        child: Some(child),
        desc: what.to_string(),
        started: Instant::now(),
        timeout,
        stdout,
        stderr,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| running.wait()));
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "panicked".to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// A running server (echo_server, http_server) started with port 0. Dropping it kills it
/// (SIGKILL to its process group) and reaps it.
pub struct Server {
    child: Child,
    /// The port it printed in `listening on PORT`.
    pub port: u16,
    desc: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn drain_into<R: Read + Send + 'static>(mut r: R, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => lock(&buf).extend_from_slice(&chunk[..n]),
            }
        }
    })
}

impl Server {
    /// Starts `program 0` in `mode` with extra `env`, and waits (at most 20 s) for its
    /// `listening on PORT` line.
    #[track_caller]
    pub fn start(program: &Path, mode: Mode, env: &[(&str, &str)]) -> Server {
        Server::start_with_args(program, &[], mode, env)
    }

    /// Like [`start`](Self::start), with `args` before the port: starts `program ARGS... 0`
    /// (for a server that is a script: `python3 server.py 0`).
    #[track_caller]
    pub fn start_with_args(
        program: &Path,
        args: &[&OsStr],
        mode: Mode,
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Cmd::new(program).args(args).arg("0").mode(mode);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let (mut command, desc, _) = cmd.into_command();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        drain_into(child.stderr.take().expect("piped"), stderr.clone());
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let out: ChildStdout = child.stdout.take().expect("piped");
        let out_buf = stdout.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            lock(&out_buf).extend_from_slice(line.as_bytes());
            let _ = tx.send(line);
            let _ = drain_into(reader, out_buf).join();
        });
        let mut server = Server {
            child,
            port: 0,
            desc,
            stdout,
            stderr,
        };
        let line = match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!(
                "server did not print `listening on PORT` within {SERVER_START_TIMEOUT:?}\n{}",
                server.report()
            ),
        };
        let port = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse::<u16>().ok());
        match port {
            Some(port) if port != 0 => server.port = port,
            _ => {
                // Give the server a moment to finish its error message before reporting.
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "server's first line is not `listening on PORT`: {line:?}\n{}",
                    server.report()
                )
            }
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port as a string, for command lines.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// Panics with the server's output if it has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            thread::sleep(Duration::from_millis(100));
            panic!("server exited with {status}\n{}", self.report());
        }
    }

    /// The server's command line, its status and what it printed so far.
    pub fn report(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "still running".to_string(),
        };
        format!(
            "server: {}\nserver status: {status}\n--- server stdout ---\n{}\n--- server stderr ---\n{}\n--------------",
            self.desc,
            clip(&String::from_utf8_lossy(&lock(&self.stdout))),
            clip(&String::from_utf8_lossy(&lock(&self.stderr)))
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// Watching processes from outside
// ---------------------------------------------------------------------------------------------

fn count_dir(path: &Path) -> io::Result<usize> {
    Ok(fs::read_dir(path)?.count())
}

/// Number of OS threads of `pid` (entries of `/proc/PID/task`).
pub fn os_threads(pid: u32) -> io::Result<usize> {
    count_dir(&Path::new("/proc").join(pid.to_string()).join("task"))
}

/// Number of open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> io::Result<usize> {
    count_dir(&Path::new("/proc").join(pid.to_string()).join("fd"))
}

/// The workers a greenified run of this test starts once the program creates a thread:
/// `GREENIFY_WORKERS` as the test's environment passes it on, else greenify's default, the
/// CPUs of the affinity mask the program inherits from this test (at most 128); one with
/// `GREENIFY_TLS=off` (several need a TCB per green thread).
pub fn workers() -> usize {
    if std::env::var("GREENIFY_TLS").is_ok_and(|v| v.trim() == "off") {
        return 1;
    }
    workers_variable().unwrap_or_else(|| affinity_cpus().min(128))
}

/// `GREENIFY_WORKERS` in this test's environment, if it holds a count greenify takes.
pub fn workers_variable() -> Option<usize> {
    std::env::var("GREENIFY_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
}

/// The CPUs in this process's affinity mask (at least 1): what a program started from it
/// may run on, and so greenify's default number of workers there.
pub fn affinity_cpus() -> usize {
    // SAFETY: a cpu_set_t is plain bits; all zero is an empty set.
    let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
    // SAFETY: `set` is a cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity: {}", io::Error::last_os_error());
    // SAFETY: `set` was filled in above.
    (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
}

/// The OS threads of a greenified run once the program created a thread (with
/// preemption on): the workers and the one preemption monitor that watches them all.
pub fn greenified_os_threads() -> usize {
    workers() + 1
}

/// Panics unless the greenified process `what` ran exactly the OS threads greenify runs
/// green threads on (the workers and their preemption monitor), plus at most `spares`
/// spares that stood in for stuck workers: as greenify counted them (its stats line's
/// `peak_os_threads`, from `stats`: the process ran with `GREENIFY_STATS=1`), an exact
/// figure that a [`Sampler`] may miss on a short run, the second worker starting a moment
/// after the first thread. With `sampled` (what a [`Sampler`] saw over the whole run, and
/// the fewest samples that make it watched), no sample may have seen more (an OS thread
/// greenify did not start). `report` is the process's output, for the message.
#[track_caller]
pub fn assert_greenified_os_threads(
    what: &str,
    stats: &BTreeMap<String, u64>,
    spares: u64,
    sampled: Option<(&Samples, usize)>,
    report: &str,
) {
    let want = greenified_os_threads() as u64;
    let Some(&peak) = stats.get("peak_os_threads") else {
        panic!("{what}: no peak_os_threads in its stats line\n{report}");
    };
    assert!(
        (want..=want + spares).contains(&peak),
        "{what} ran {peak} OS threads (want the {} workers and their preemption monitor, \
         and up to the {spares} spares started)\n{report}",
        want - 1
    );
    if let Some((samples, min_samples)) = sampled {
        assert!(
            samples.count >= min_samples,
            "{what}: too few samples ({} < {min_samples}): {samples:?}\n{report}",
            samples.count
        );
        assert!(
            samples.threads_max as u64 <= peak,
            "{what} had up to {} OS threads, more than the {peak} greenify ran: \
             {samples:?}\n{report}",
            samples.threads_max
        );
    }
}

/// Extremes of what a [`Sampler`] saw. Samples that failed (process gone) are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Samples {
    /// Number of successful samples.
    pub count: usize,
    pub threads_max: usize,
    pub threads_min: usize,
    pub fds_max: usize,
    pub fds_min: usize,
}

/// Samples [`os_threads`] and [`open_fds`] of a process every ~20 ms on a thread of its own
/// until [`stop`](Sampler::stop)ped (or dropped).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Samples>>,
}

impl Sampler {
    /// Takes the first sample right away.
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut s = Samples {
                threads_min: usize::MAX,
                fds_min: usize::MAX,
                ..Samples::default()
            };
            loop {
                if let (Ok(t), Ok(f)) = (os_threads(pid), open_fds(pid)) {
                    s.count += 1;
                    s.threads_max = s.threads_max.max(t);
                    s.threads_min = s.threads_min.min(t);
                    s.fds_max = s.fds_max.max(f);
                    s.fds_min = s.fds_min.min(f);
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            if s.count == 0 {
                s.threads_min = 0;
                s.fds_min = 0;
            }
            s
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling (after one last sample) and returns the extremes.
    pub fn stop(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("not stopped yet")
            .join()
            .expect("sampler thread panicked")
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Library statistics
// ---------------------------------------------------------------------------------------------

/// Parses the line starting with `greenify stats:` (the library prints it at exit when
/// `GREENIFY_STATS=1`) into its `key=value` tokens. `None` if there is no such line; tokens that
/// are not `key=<u64>` are left out (a lookup of their key then fails).
pub fn parse_stats(stderr: &str) -> Option<BTreeMap<String, u64>> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("greenify stats:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|tok| {
                let (k, v) = tok.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// The parsed `greenify stats:` lines of `stderr` that say `key=value` (each process of a
/// run prints its own: pick it by `pid` or by `program`).
pub fn stats_lines_with<'a>(
    stderr: &'a str,
    key: &str,
    value: &str,
) -> impl Iterator<Item = BTreeMap<String, u64>> + 'a {
    let pair = format!(" {key}={value} ");
    stderr
        .lines()
        .filter(move |line| line.starts_with("greenify stats:") && line.contains(&pair))
        .filter_map(parse_stats)
}

/// `stats[key]`, panicking with the whole map when the key is missing.
#[track_caller]
pub fn stat(stats: &BTreeMap<String, u64>, key: &str) -> u64 {
    match stats.get(key) {
        Some(v) => *v,
        None => panic!("stats line lacks `{key}=N`: {stats:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------------

/// A pipe `(read end, write end)`, both close-on-exec.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the 2-element array we pass.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A close-on-exec duplicate of `fd`: a new descriptor for the same open file description (so
/// it shares its status flags, O_NONBLOCK included).
pub fn dup_cloexec(fd: impl AsFd) -> OwnedFd {
    fd.as_fd()
        .try_clone_to_owned()
        .unwrap_or_else(|e| panic!("F_DUPFD_CLOEXEC: {e}"))
}

/// `fcntl(fd, F_GETFL)`: the file status flags of the open file description.
pub fn status_flags(fd: impl AsFd) -> libc::c_int {
    // SAFETY: F_GETFL only reads the flags of a descriptor we borrow, so it is valid.
    let flags = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags
}

/// Whether the open file description behind `fd` has O_NONBLOCK set.
pub fn is_nonblocking(fd: impl AsFd) -> bool {
    status_flags(fd) & libc::O_NONBLOCK != 0
}

// ---------------------------------------------------------------------------------------------
// Hostile tests' helpers
// ---------------------------------------------------------------------------------------------

impl Server {
    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// Ends the server with SIGTERM and returns greenify's stats line (the server must have
    /// run with `GREENIFY_STATS=1`: greenify prints it on every exit path).
    pub fn stats_at_exit(&mut self) -> BTreeMap<String, u64> {
        // SAFETY: kill(2) of our own child, not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The reader threads take what is left of stderr after the exit.
        std::thread::sleep(Duration::from_millis(100));
        let report = self.report();
        parse_stats(&self.stderr()).unwrap_or_else(|| panic!("no stats line\n{report}"))
    }
}

/// The lines of `stderr` in which the library reports an error or dies (`greenify: error: ...`
/// or a fatal `greenify: ...` message); its warnings and the stats line are not errors.
pub fn greenify_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("greenify:"))
        .filter(|l| {
            ![
                "greenify: warn:",
                "greenify: info:",
                "greenify: debug:",
                "greenify: trace:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect()
}

/// One echo round trip on a fresh loopback connection to `port`: whether `payload` came back
/// whole within `timeout`.
pub fn echo_round_trip(port: u16, payload: &[u8], timeout: Duration) -> io::Result<bool> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back)?;
    Ok(back == payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_line() {
        let err = "noise\ngreenify stats: threads_created=10 peak_alive=11 parks_sleep=20 bad x=y\nmore\n";
        let s = parse_stats(err).unwrap();
        assert_eq!(stat(&s, "threads_created"), 10);
        assert_eq!(stat(&s, "peak_alive"), 11);
        assert_eq!(stat(&s, "parks_sleep"), 20);
        assert_eq!(s.len(), 3);
        assert!(parse_stats("no stats here\n").is_none());
    }

    #[test]
    fn clip_keeps_head_and_tail() {
        let s = "é".repeat(REPORT_LIMIT);
        let c = clip(&s);
        assert!(c.len() < s.len());
        assert!(c.starts_with('é') && c.ends_with('é'));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn run_timeout_kills_the_process_group() {
        let res = std::panic::catch_unwind(|| {
            Cmd::new("/bin/sh")
                .args(["-c", "sleep 30 & echo started; wait"])
                .timeout(Duration::from_millis(300))
                .run()
        });
        let msg = *res.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("TIMEOUT"), "{msg}");
        assert!(msg.contains("started"), "{msg}");
    }

    #[test]
    fn children_get_raised_nofile_and_null_stdin() {
        let out = Cmd::new("/bin/sh")
            .args(["-c", "ulimit -Sn; ulimit -Hn; cat; echo end"])
            .run();
        out.assert_success();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", out.report());
        assert_eq!(lines[0], lines[1], "{}", out.report());
        assert_eq!(lines[2], "end");
    }

    #[test]
    fn sampler_sees_threads_and_fds() {
        let running = Cmd::new("/bin/sleep").arg("0.3").spawn();
        let sampler = Sampler::start(running.pid());
        thread::sleep(Duration::from_millis(100));
        let s = sampler.stop();
        running.wait().assert_success();
        assert!(s.count >= 2, "{s:?}");
        assert_eq!((s.threads_min, s.threads_max), (1, 1), "{s:?}");
        assert!(s.fds_min >= 3, "{s:?}");
    }

    #[test]
    fn dup_shares_status_flags() {
        let (r, _w) = pipe();
        let d = dup_cloexec(&r);
        assert!(!is_nonblocking(&d));
        // SAFETY: F_SETFL on a descriptor we own.
        let rc = unsafe {
            libc::fcntl(
                r.as_raw_fd(),
                libc::F_SETFL,
                status_flags(&r) | libc::O_NONBLOCK,
            )
        };
        assert_eq!(rc, 0);
        assert!(is_nonblocking(&d));
    }
}
