//! The vocabulary of waiting, shared by the scheduler and what wakes its threads (the
//! reactor, the timers, the green futex): thread ids, wait keys, why a thread parks and
//! why it was woken. It depends on nothing, so those modules need not know the scheduler.

pub type ThreadId = u32;

/// The program's main thread (the OS thread's own stack).
pub const MAIN: ThreadId = 0;

/// Identifies one wait of one thread.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct WaitKey {
    pub tid: ThreadId,
    pub seq: u32,
}

/// Why a parked thread was woken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wake {
    /// What it waited for happened (or may have: callers re-check).
    Ready,
    TimedOut,
    /// The fd it waited on was closed.
    Closed,
    /// A signal handler ran (EINTR); with SA_RESTART, restartable calls go on waiting.
    Interrupted {
        restart: bool,
    },
}

/// What a thread parks for; counted in the stats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    Read,
    Write,
    Accept,
    Connect,
    Sleep,
    Poll,
    Join,
    Yield,
    /// Mutexes, condition variables, semaphores and the other synchronisation objects.
    Sync,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Read,
        Reason::Write,
        Reason::Accept,
        Reason::Connect,
        Reason::Sleep,
        Reason::Poll,
        Reason::Join,
        Reason::Yield,
        Reason::Sync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Read => "read",
            Reason::Write => "write",
            Reason::Accept => "accept",
            Reason::Connect => "connect",
            Reason::Sleep => "sleep",
            Reason::Poll => "poll",
            Reason::Join => "join",
            Reason::Yield => "yield",
            Reason::Sync => "sync",
        }
    }
}
