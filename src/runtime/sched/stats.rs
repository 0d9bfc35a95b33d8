//! The scheduler's counters (threads, switches, epoll waits, steals, parks per reason).

use super::with;
use crate::runtime::wait::Reason;

#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    pub threads_created: u64,
    pub peak_alive: u64,
    pub context_switches: u64,
    pub epoll_waits: u64,
    /// Steals: a worker took threads from another's run queue (see queues.rs).
    pub steals: u64,
    pub parks: [u64; Reason::ALL.len()],
}

pub fn stats() -> Stats {
    with(|s| s.stats)
}
