//! Processes: fork, vfork, posix_spawn, exec, the wait family, system and popen, _exit.
//!
//! * fork: the child keeps only the calling thread; the parent's epoll instance and
//!   doorbell (shared across fork) only hold their numbers in it until its own replace
//!   them at its first wait (see sched::after_fork_child); atfork handlers run in the
//!   usual order inside glibc's fork, as the program's code: the prepare and parent
//!   handlers' lock waits park (the holder may be a green thread); the child's handlers
//!   run before the child's runtime is reset, so their calls pass through.
//! * Before any child can inherit fds, sockets greenify made O_NONBLOCK go back to
//!   blocking for it (see fdtable::release_for_children).
//! * The waits park: a child's exit is watched through its pidfd; a wait for "any
//!   child" watches the pidfds of the children started here (children.rs); waits for
//!   stops, and for children started behind our back, look again every few milliseconds.
//! * system() and popen() are rebuilt on posix_spawn and a green wait (glibc's own wait
//!   internally, which no hook sees).
//!
//! One file per job: `exit` (the stats line on `_exit`), `fork`, `spawn` (posix_spawn and the exec family), `wait` (the wait
//! family and ptrace) and `shell` (system, popen, pclose).

mod exit;
mod fork;
mod shell;
mod spawn;
mod wait;

pub use fork::{fork, vfork};
pub use shell::popen;
pub(super) use wait::note_waited;
pub use wait::{wait, wait4, waitid, waitpid};
