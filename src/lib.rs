//! greenify: an LD_PRELOAD library that turns the threads and blocking calls of an
//! unmodified program into green threads on an epoll loop.
//!
//! Layers, arrows pointing one way: `hooks` (the exported C ABI, a thin skin) ->
//! `runtime` (scheduler, stacks, reactor, timers, fd table; plain Rust) -> `real`,
//! `log`, `config`. The hooks are left out of unit-test builds: a test binary that
//! exported `read` and `write` would hijack its own harness.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod config;
#[cfg(not(test))]
mod hooks;
pub mod log;
#[cfg(not(test))]
mod real;
pub mod runtime;
#[cfg(not(test))]
mod stats;

/// Every allocation of the library (and of its unit tests) comes from greenify's own
/// allocator, never from the program's malloc, which may call hooks from inside itself.
#[global_allocator]
static ALLOCATOR: runtime::alloc::Allocator = runtime::alloc::Allocator;
