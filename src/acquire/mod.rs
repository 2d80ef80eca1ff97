//! perf_event_open: counters, ring buffers and the typed record stream. All kernel-facing `unsafe` lives here.
//!
//! [`Session`] opens one sampling counter per CPU for the target (a launched command, attached pids or
//! threads, or the whole system), gives each CPU one ring buffer, and turns the rings' contents into
//! [`record::Record`]s in timestamp order. Processes that already run when a session starts get
//! synthetic `Comm` and `Mmap` records from `/proc`, emitted before any sample.
//!
//! What this module leaves to others: address spaces over time (`process`), stack walking (`unwind`),
//! symbols (`symbolize`). It never changes kernel settings.

mod convert;
mod error;
mod event;
mod launch;
mod order;
mod procfs;
pub mod record;
mod session;

use std::ffi::OsString;

pub use error::AcquireError;
pub use event::{EventKind, EventSpec};
pub use session::Session;

/// What to profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Launch this command (program and arguments) and profile it and its descendants.
    Command(Vec<OsString>),
    /// Attach to these processes: all their threads, and threads and children they create later.
    Pids(Vec<u32>),
    /// Attach to these threads only.
    Tids(Vec<u32>),
    /// Every CPU, every process.
    System,
}

/// How call chains are recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CallGraphMode {
    /// The kernel walks frame pointers (`PERF_SAMPLE_CALLCHAIN`), kernel and user.
    #[default]
    Fp,
}

impl std::fmt::Display for CallGraphMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallGraphMode::Fp => f.write_str("fp"),
        }
    }
}

/// Where a launched command's stdout and stderr go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommandOutput {
    /// Shared with stacktop (perf's behaviour).
    #[default]
    Inherit,
    /// `/dev/null` (for the TUI, where the command would draw over the screen, and for tests).
    Null,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub target: Target,
    pub event: EventSpec,
    /// Samples per second per CPU (frequency mode: the kernel adjusts the period to hit it).
    pub frequency: u64,
    pub call_graph: CallGraphMode,
    pub command_output: CommandOutput,
}

/// Counts for the header of every output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub samples: u64,
    /// Samples the kernel dropped because a ring buffer was full (`PERF_RECORD_LOST` and `LOST_SAMPLES`).
    pub lost: u64,
    /// Times the kernel throttled sampling because it was too frequent.
    pub throttled: u64,
}
