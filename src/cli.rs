//! Command line, in two phases (as ripgrep does): clap parses raw flags into `Args`, then `validate` turns
//! them into the configuration structs the subcommands take, with errors a user can act on.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::acquire::{CallGraphMode, CommandOutput, EventSpec, SessionConfig, Target};
use crate::profile::query::Filter;
use crate::profile::Weigh;

#[derive(Debug, Parser)]
#[command(
    name = "stacktop",
    version,
    about = "A sampling profiler for Linux: where does the time go, and who calls the hot function?"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a profile of a command, processes, threads or the whole machine.
    Record(RecordArgs),
    /// Print the call-graph report of a recorded profile.
    Report(ReportArgs),
    /// Render a flamegraph SVG of a recorded profile.
    Flamegraph(FlamegraphArgs),
    /// Live view of the hottest functions, their callers and callees (or a recorded profile with -i).
    Top(TopArgs),
    /// Show a function's source lines and disassembly with the share of its samples on each.
    Annotate(AnnotateArgs),
    /// Convert a profile between formats: perf.data or pprof in, pprof or folded stacks out.
    Convert(ConvertArgs),
}

/// What to sample; with none of these, the whole machine.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Attach to these processes (all their threads, present and future).
    #[arg(
        short = 'p',
        long = "pid",
        value_delimiter = ',',
        value_name = "PID[,PID..]"
    )]
    pub pids: Vec<u32>,
    /// Sample these threads only.
    #[arg(
        short = 't',
        long = "tid",
        value_delimiter = ',',
        value_name = "TID[,TID..]"
    )]
    pub tids: Vec<u32>,
    /// Sample every process on the machine (the default without a target).
    #[arg(short = 'a', long = "all-cpus")]
    pub all: bool,
    /// The command to launch and sample, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What to sample and how: shared by `record` and `top`.
#[derive(Debug, clap::Args)]
pub struct SamplingArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Sampling frequency in Hz.
    #[arg(short = 'F', long = "freq", default_value_t = 999)]
    pub frequency: u64,
    /// Event to sample: cycles, cpu-clock or task-clock, with perf's :u / :k modifiers.
    #[arg(short = 'e', long = "event", default_value = "cycles")]
    pub event: String,
    /// How call stacks are walked: fp, hybrid[,STACK_BYTES] (default; 65528 bytes in record, the kernel's
    /// largest, and 4096 in top, halved above 2048 Hz and at each doubling of the rate, to 4096 at least) or
    /// dwarf[,STACK_BYTES] (8192).
    #[arg(long = "call-graph", value_name = "MODE", default_value = "hybrid")]
    pub call_graph: String,
    /// Record off-CPU time too: where threads wait (blocked, or preempted and waiting for a CPU), from a
    /// context-switch sample at every switch-out. On by default for a command, -p and -t; this turns it on
    /// for -a.
    #[arg(long = "off-cpu", overrides_with = "no_off_cpu")]
    pub off_cpu: bool,
    /// Record CPU samples only (no context-switch samples: no cost at a target's context switches).
    #[arg(long = "no-off-cpu", overrides_with = "off_cpu")]
    pub no_off_cpu: bool,
    /// Do not continue stack walks that run off their stack copy in the target's live memory (hybrid and
    /// dwarf modes continue them by default; such stacks then end in [truncated]).
    #[arg(long = "no-continue")]
    pub no_continue: bool,
    /// Record lock contention: which mutex threads waited for, how long, at which stacks, and the stacks that
    /// released it to them. Probes only the contended paths of glibc's mutexes (their symbols come from libc's
    /// debug file: libc6-dbg) and Rust's std::sync::Mutex, so an uncontended lock costs nothing;
    /// --locks=pthread probes every pthread_mutex_lock call instead (costlier). The probes trap in every process
    /// that maps the probed files, not only the target's. Needs root or CAP_PERFMON.
    #[arg(
        long = "locks",
        value_name = "pthread",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "contended"
    )]
    pub locks: Option<crate::pipeline::lockplan::LockMode>,
}

/// Which samples of a recorded profile to look at, by their labels.
#[derive(Debug, clap::Args)]
pub struct SampleFilterArgs {
    /// Only samples of these processes.
    #[arg(long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Only samples of these threads.
    #[arg(long = "tid", value_delimiter = ',')]
    pub tids: Vec<u32>,
    /// Only samples of threads with these names (a thread's name, as `ps -L` shows it: a program's threads
    /// may be named otherwise than the program).
    #[arg(long = "comm", value_delimiter = ',')]
    pub comms: Vec<String>,
    /// Only samples of these processes, by name: a process's main thread name (as `ps` shows it), its
    /// program's path, or the program's file name.
    #[arg(long = "process", value_delimiter = ',', value_name = "NAME[,NAME..]")]
    pub processes: Vec<String>,
    /// Count each address for the function that owns its machine code, as `perf report` does: inlined
    /// functions are not frames of their own.
    #[arg(long = "no-inline")]
    pub no_inline: bool,
    /// What is weighed: CPU samples (cpu, the default), time off CPU (off-cpu: blocked and runnable, or
    /// either alone), or both (wall: the threads' wall-clock time). Off-CPU time is in recordings made with
    /// off-CPU sampling on (the default for a command, -p and -t). In recordings made with --locks:
    /// contended lock waits at the waiters' stacks (lock-wait) or at the stacks that released the lock to
    /// them (lock-hold).
    #[arg(
        long = "weight",
        value_name = "cpu|off-cpu|blocked|runnable|wall|lock-wait|lock-hold",
        default_value = "cpu"
    )]
    pub weight: Weigh,
    /// Only the waits on these locks and the holds that caused them, by symbol (`table_lock`) or address
    /// (`0x55d0c8a2b2a0`), as the locks view names them.
    #[arg(
        id = "lock",
        long = "lock",
        value_delimiter = ',',
        value_name = "LOCK[,LOCK..]"
    )]
    pub locks: Vec<String>,
}

impl SampleFilterArgs {
    pub fn filter(&self) -> Filter {
        Filter {
            pids: self.pids.clone(),
            tids: self.tids.clone(),
            comms: self.comms.clone(),
            processes: self.processes.clone(),
            no_inline: self.no_inline,
            locks: self.locks.clone(),
            ..Filter::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Record call chains (always on; accepted as perf's spelling of the default).
    #[arg(short = 'g')]
    pub g: bool,
    /// Output file: pprof, gzipped when the name ends in .gz.
    #[arg(short = 'o', long = "output", default_value = "stacktop.pb.gz")]
    pub output: PathBuf,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_name = "SECS")]
    pub duration: Option<f64>,
    /// Check the continuation of stack walks (for tests and benchmarks): copy 65528 bytes of stack per sample,
    /// and compare each sample's walk of its whole copy (which the profile gets) with the walk of its first
    /// BYTES bytes continued in live memory; print how many are identical and every difference.
    #[arg(long = "unwind-check", value_name = "BYTES")]
    pub unwind_check: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Profile to read (stacktop's pprof files, any pprof, or a perf.data file).
    #[arg(short = 'i', long = "input", default_value = "stacktop.pb.gz")]
    pub input: PathBuf,
    /// perf.data files with several events: the event to show (default: the first).
    #[arg(short = 'e', long = "event")]
    pub event: Option<String>,
    /// Show the sample count column.
    #[arg(short = 'n', long = "show-nr-samples")]
    pub show_samples: bool,
    /// Accumulate callees into their callers' "Children" column (the default).
    #[arg(long = "children", overrides_with = "no_children")]
    pub children: bool,
    /// Only self time.
    #[arg(long = "no-children", overrides_with = "children")]
    pub no_children: bool,
    /// Call graph style: graph|fractal|folded|none[,THRESHOLD[,caller|callee]].
    #[arg(
        short = 'g',
        long = "call-graph",
        value_name = "STYLE",
        default_value = "graph,0.5,caller"
    )]
    pub call_graph: String,
    /// Hide entries below this percentage.
    #[arg(long = "percent-limit", default_value_t = 0.0)]
    pub percent_limit: f64,
    /// Keys of an entry: sym, dso, comm, pid, tid, comma-separated.
    #[arg(short = 's', long = "sort", default_value = "comm,dso,sym")]
    pub sort: String,
    /// Who calls SYM: every sample with SYM on its stack, as a tree toward the callers.
    #[arg(long = "callers", value_name = "SYM")]
    pub callers: Option<String>,
    /// Whom SYM calls: a tree toward the callees.
    #[arg(long = "callees", value_name = "SYM")]
    pub callees: Option<String>,
    /// Like --callers, for every function whose name matches this anchored regular expression.
    #[arg(long = "callers-regex", value_name = "RE")]
    pub callers_regex: Option<String>,
    #[command(flatten)]
    pub samples: SampleFilterArgs,
    /// Print collapsed stacks (`a;b;c 12`) instead of the report.
    #[arg(long = "folded")]
    pub folded: bool,
    /// The locks view of a recording made with --locks: one row per lock (waits, total and longest wait,
    /// waiting threads), then for the most waited-for lock (or those given with --lock) the waiters' callers
    /// weighed by their wait and the holders' (the code that released the lock to a waiter) weighed by the
    /// wait they caused.
    #[arg(long = "locks", conflicts_with_all = ["callers", "callees", "callers_regex", "folded"])]
    pub locks: bool,
    /// Accepted for perf compatibility; the report is always plain text.
    #[arg(long = "stdio")]
    pub stdio: bool,
}

#[derive(Debug, clap::Args)]
pub struct FlamegraphArgs {
    /// Profile to read (pprof or perf.data).
    #[arg(short = 'i', long = "input", default_value = "stacktop.pb.gz")]
    pub input: PathBuf,
    /// perf.data files with several events: the event to show (default: the first).
    #[arg(short = 'e', long = "event")]
    pub event: Option<String>,
    /// SVG to write.
    #[arg(short = 'o', long = "output", default_value = "flamegraph.svg")]
    pub output: PathBuf,
    /// Icicle graph: roots at the top.
    #[arg(long = "inverted")]
    pub inverted: bool,
    /// Merge stacks at their leaves (reverse stack order).
    #[arg(long = "reverse")]
    pub reverse: bool,
    /// Only the stacks that reach SYM, cut at SYM: who calls it.
    #[arg(long = "callers", value_name = "SYM")]
    pub callers: Option<String>,
    /// Title of the graph.
    #[arg(long = "title")]
    pub title: Option<String>,
    #[command(flatten)]
    pub samples: SampleFilterArgs,
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Seconds between refreshes of the view (perf top's default, 2: each refresh keeps 7/8 of the old
    /// samples' weight, as perf top's does, so the view fades at perf top's pace).
    #[arg(
        short = 'd',
        long = "delay",
        value_name = "SECS",
        default_value_t = 2.0
    )]
    pub delay: f64,
    /// Stop sampling after this many seconds; the view then stays on the whole run until `q`.
    #[arg(long = "duration", value_name = "SECS")]
    pub duration: Option<f64>,
    /// Show a recorded profile instead of sampling.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Start limited to threads of this name (the `t` key changes the limit).
    #[arg(long = "comm", value_name = "NAME", conflicts_with = "process")]
    pub comm: Option<String>,
    /// Start limited to processes of this name: a main thread's name, a program's path or its file name (the
    /// `t` key changes the limit).
    #[arg(long = "process", value_name = "NAME")]
    pub process: Option<String>,
    /// What the view weighs at start: CPU samples, off-CPU time (blocked and runnable, or one of them) or
    /// both (wall-clock time); with --locks, lock waits at the waiters' stacks (lock-wait) or at the stacks
    /// that released the lock to them (lock-hold). The `w` key switches cpu, off-cpu, wall, lock-wait,
    /// lock-hold; `L` lists the locks.
    #[arg(
        long = "weight",
        value_name = "cpu|off-cpu|blocked|runnable|wall|lock-wait|lock-hold",
        default_value = "cpu"
    )]
    pub weight: crate::profile::Weigh,
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// The function to annotate (as the report names it; an @VERSION suffix is ignored).
    #[arg(value_name = "SYM")]
    pub symbol: String,
    /// Profile to read.
    #[arg(short = 'i', long = "input", default_value = "stacktop.pb.gz")]
    pub input: PathBuf,
    #[command(flatten)]
    pub samples: SampleFilterArgs,
    /// Accepted for perf compatibility; the output is always plain text.
    #[arg(long = "stdio")]
    pub stdio: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Profile to read: perf.data or pprof (told apart by content).
    #[arg(short = 'i', long = "input")]
    pub input: PathBuf,
    /// File to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Output format: pprof or folded (default: from the output name, .pb.gz/.pb/.pprof or .folded/.txt).
    #[arg(long = "to", value_name = "FORMAT")]
    pub to: Option<String>,
    /// perf.data files with several events: the event to convert (default: the first).
    #[arg(short = 'e', long = "event")]
    pub event: Option<String>,
}

impl TargetArgs {
    /// The one target given (`-p`, `-t`, `-a` or a command; none is `-a`).
    pub fn target(&self) -> Result<Target> {
        target(self)
    }
}

impl SamplingArgs {
    /// The validated session configuration of `record` and `top` (a launched command's output inherited);
    /// `hybrid_bytes` is the stack copy of a `--call-graph hybrid` that names no size. With `--locks`, the
    /// probes are planned from the target's files here (`pipeline::lockplan`).
    pub fn session_config(&self, hybrid_bytes: u32) -> Result<SessionConfig> {
        let mut config = session_config(self, hybrid_bytes)?;
        if let Some(mode) = self.locks {
            config.locks = Some(crate::pipeline::lockplan::plan(&config.target, mode)?);
        }
        Ok(config)
    }
}

fn target(args: &TargetArgs) -> Result<Target> {
    let given = [
        !args.command.is_empty(),
        !args.pids.is_empty(),
        !args.tids.is_empty(),
        args.all,
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        bail!("give one target: -p PID, -t TID, -a or -- COMMAND");
    }
    Ok(if !args.command.is_empty() {
        Target::Command(args.command.clone())
    } else if !args.pids.is_empty() {
        Target::Pids(args.pids.clone())
    } else if !args.tids.is_empty() {
        Target::Tids(args.tids.clone())
    } else {
        Target::System
    })
}

fn session_config(args: &SamplingArgs, hybrid_bytes: u32) -> Result<SessionConfig> {
    if args.frequency == 0 {
        bail!("-F must be at least 1 Hz");
    }
    let target = target(&args.target)?;
    // The whole machine switches hundreds of thousands of times a second: off-CPU recording costs every one of
    // those switches, so it is asked for there, not given.
    let off_cpu = if args.no_off_cpu {
        false
    } else {
        args.off_cpu || target != Target::System
    };
    Ok(SessionConfig {
        target,
        event: args.event.parse::<EventSpec>()?,
        frequency: args.frequency,
        call_graph: CallGraphMode::parse(
            &args.call_graph,
            crate::acquire::hybrid_bytes_at(hybrid_bytes, args.frequency),
        )?,
        command_output: CommandOutput::Inherit,
        off_cpu,
        // Planned by the command from the target's files (`pipeline::lockplan`), which `--locks` asks for.
        locks: None,
    })
}

/// `--duration`, checked: a finite number of seconds, not negative.
pub fn duration(seconds: Option<f64>) -> Result<Option<Duration>> {
    match seconds {
        Some(d) if !(d.is_finite() && d >= 0.0) => {
            bail!("--duration must be a number of seconds, got {d}")
        }
        other => Ok(other.map(Duration::from_secs_f64)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// clap's own checks of the definitions, and every subcommand parsed once: two fields of one id in
    /// flattened groups (a filter's `--lock` and the report's `--locks`) pass the checks and panic only
    /// when the arguments are read.
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Args::command().debug_assert();
        for line in [
            "report -i x.pb.gz --lock table_lock",
            "report --locks -i x.pb.gz",
            "flamegraph -i x.pb.gz --weight lock-hold",
            "annotate f -i x.pb.gz",
            "record -o x.pb.gz -- true",
            "top -- true",
            "convert -i a -o b",
        ] {
            let args = std::iter::once("stacktop").chain(line.split(' '));
            super::Args::try_parse_from(args).unwrap();
        }
    }
}
