//! The green runtime: scheduler, stacks, reactor, timers and the fd table.
//!
//! It knows nothing of hooks: it speaks of threads, fds, interests and deadlines, never
//! of libc functions, and it calls no libc function that greenify overrides (its own
//! I/O is raw syscalls through rustix or `raw`). Everything here is unit-tested as plain Rust.

pub mod alloc;
pub mod errno;
pub mod escapes;
pub mod fdtable;
pub mod futex;
pub mod handler;
pub mod held;
pub mod interrupt;
pub mod kept_pending;
pub mod keys;
pub mod modules;
pub mod monitor;
pub mod offload;
pub mod os_thread;
pub mod overflow;
pub mod own_threads;
pub mod raw;
pub mod reactor;
pub mod sched;
pub mod setxid;
pub mod stack;
pub mod sync;
pub mod tcb;
pub mod timer;
pub mod wait;
pub mod watchdog;

pub use reactor::Interest;
pub use sched::{
    current_handle, current_is_main, detach, exists, exit_current, exit_main, fd_closed,
    fd_closed_by, fd_poke, init_current_thread, is_alive, join, name, park, park_interruptible,
    set_name, sleep_until, spawn, spawn_to, stack_bounds, stats, wait_fd, wait_fds,
    wait_read_if_drained, yield_now, Config, Handle, JoinWait, Reason, SpawnOptions, StackRequest,
    Stats, Wake,
};
