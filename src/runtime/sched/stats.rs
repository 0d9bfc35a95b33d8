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
    /// Threads that waited in a worker's runnext while their waker ran on, until the
    /// monitor had an idle worker take them (see `take_next`, handoff.rs).
    pub runnext_late: u64,
    /// Times the threads gathered on the first worker, and the nanoseconds they spent so
    /// (see `Gather`, worker.rs).
    pub gatherings: u64,
    pub gathered_ns: u64,
    pub parks: [u64; Reason::ALL.len()],
}

impl Stats {
    /// A gathering that lasted `gathered` ended.
    pub(super) fn note_gathered(&mut self, gathered: std::time::Duration) {
        let ns = u64::try_from(gathered.as_nanos()).unwrap_or(u64::MAX);
        self.gathered_ns = self.gathered_ns.saturating_add(ns);
    }
}

/// The counters now, the gathering under way counted in up to now.
pub fn stats() -> Stats {
    with(|s| {
        let mut stats = s.stats;
        stats.note_gathered(s.gather.so_far(std::time::Instant::now()));
        stats
    })
}

/// Every counter of the exit line (`GREENIFY_STATS`) and of `greenify stats PID`, in
/// their order, as `(prefix, name, value)`: one list for both. Allocates nothing (the exit
/// line is built where malloc may not be safe).
pub fn each_counter(s: &Stats, mut f: impl FnMut(&str, &str, u64)) {
    let preemption = crate::runtime::monitor::stats();
    for (name, value) in [
        ("threads_created", s.threads_created),
        // The main thread is alive even when no green call was made.
        ("peak_alive", s.peak_alive.max(1)),
        ("context_switches", s.context_switches),
        ("epoll_waits", s.epoll_waits),
        ("preempt_signals", preemption.signals),
        ("preemptions", preemption.preemptions),
        ("blocked_worker_sightings", preemption.blocked_sightings),
        ("spares_started", super::spares_started() as u64),
        ("steals", s.steals),
        ("runnext_late", s.runnext_late),
        ("gatherings", s.gatherings),
        ("gathered_ms", s.gathered_ns / 1_000_000),
        ("peak_os_threads", crate::runtime::own_threads::peak()),
    ] {
        f("", name, value);
    }
    for reason in Reason::ALL {
        f("parks_", reason.name(), s.parks[reason as usize]);
    }
}
