//! `stacktop record`: sample a target until it exits, `--duration` passes or a signal arrives, then write the
//! profile file (to a temporary name, renamed when complete).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::acquire::record::Record;
use crate::acquire::{
    signals, CallGraphMode, CommandOutput, EventSpec, Recycler, Session, SessionConfig, Target,
    DEFAULT_HYBRID_STACK_BYTES,
};
use crate::cli::{RecordArgs, SamplingArgs, TargetArgs};
use crate::cmd::output::{self, Access};
use crate::cmd::pipeline::Pipeline;
use crate::format::pprof;
use crate::profile::{Meta, Profile};
use crate::unwind::fp;
use crate::unwind::modules::Mode;

/// How often the rings are drained and the status line redrawn.
const TICK: Duration = Duration::from_millis(100);

pub fn target(args: &TargetArgs) -> Result<Target> {
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

/// The validated session configuration of `record` and `top` (a launched command's output inherited);
/// `hybrid_bytes` is the stack copy of a `--call-graph hybrid` that names no size.
pub fn session_config(args: &SamplingArgs, hybrid_bytes: u32) -> Result<SessionConfig> {
    if args.frequency == 0 {
        bail!("-F must be at least 1 Hz");
    }
    Ok(SessionConfig {
        target: target(&args.target)?,
        event: args.event.parse::<EventSpec>()?,
        frequency: args.frequency,
        call_graph: CallGraphMode::parse(&args.call_graph, hybrid_bytes)?,
        command_output: CommandOutput::Inherit,
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

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    let config = session_config(&args.sampling, DEFAULT_HYBRID_STACK_BYTES)?;
    let duration = duration(args.duration)?;
    let stop = signals::stop_flag().context("installing signal handlers")?;
    let started = SystemTime::now();
    let session = Session::start(config)?;
    for note in session.notes() {
        eprintln!("stacktop: {note}");
    }
    let limits = fp::Limits {
        kernel_max_stack: session.max_stack(),
        ..fp::Limits::default()
    };
    let tables = match session.call_graph() {
        CallGraphMode::Fp => None,
        CallGraphMode::Hybrid(_) => Some(Mode::Hybrid),
        CallGraphMode::Dwarf(_) => Some(Mode::Dwarf),
    };
    let mut pipeline =
        Pipeline::new(Meta::default(), limits, tables).with_stack_budget(session.stack_budget());
    let begin = Instant::now();
    let deadline = duration.map(|d| begin + d);
    // The rings are drained on their own thread, so a slow symbol load on this one never lets them
    // overflow; batches wait in the channel instead.
    let (batches, received) = mpsc::channel::<Vec<Record>>();
    let recycler = session.recycler();
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || drain(session, &stop, deadline, begin, &batches))
    };
    let mut cutoff = Cutoff::new(deadline);
    for mut batch in received {
        cutoff.drop_late_samples(&stop, &mut batch, &recycler);
        for record in &batch {
            pipeline.on_record(record);
        }
        recycler.give_back(batch);
    }
    let session = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the ring-buffer reader thread panicked"))??;

    let mut stats = session.stats();
    stats.lost += cutoff.dropped;
    stats.dropped += cutoff.dropped;
    stats.samples = stats.samples.saturating_sub(cutoff.dropped);
    let failure = session.child_failure();
    let notes: Vec<String> = session.notes().to_vec();
    let (fell_back, unwind_modules) = pipeline.unwind_summary();
    let truncated = pipeline.truncated;
    let meta = pipeline.meta_mut();
    *meta = Meta {
        event: session.event_name(),
        period_unit: session.event().kind.period_unit().to_owned(),
        frequency: session.frequency(),
        call_graph: session.call_graph().to_string(),
        lost: stats.lost,
        throttled: stats.throttled,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        notes,
        time_nanos: started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
        duration_nanos: begin.elapsed().as_nanos() as i64,
        truncated,
        fell_back,
        unwind_modules,
    };
    let profile = pipeline.into_profile();
    write_profile(&profile, &args.output)?;
    eprintln!(
        "stacktop: wrote {} ({} samples, {} lost, {} throttled)",
        args.output.display(),
        stats.samples,
        stats.lost,
        stats.throttled
    );
    if stats.dropped > 0 {
        eprintln!(
            "stacktop: {} of the lost samples were dropped because unwinding fell behind sampling; lower -F or use --call-graph fp",
            stats.dropped
        );
    }
    Ok(match failure {
        Some(status) => {
            if status > 128 {
                eprintln!(
                    "stacktop: the command was killed by signal {}",
                    status - 128
                );
            } else {
                eprintln!("stacktop: the command exited with status {status}");
            }
            // As perf does: a script sees the workload's failure through stacktop.
            ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX))
        }
        None => ExitCode::SUCCESS,
    })
}

/// How long the samples still queued when the recording is told to end (`--duration` or a signal) may take to
/// process: past this, the rest are dropped and counted as lost, so a recording that fell behind still ends
/// when asked, as perf's does, instead of unwinding its backlog for seconds more.
const GRACE: Duration = Duration::from_millis(1500);

/// Ends the processing of samples [`GRACE`] after the recording was told to end.
struct Cutoff {
    deadline: Option<Instant>,
    stopped: Option<Instant>,
    dropped: u64,
}

impl Cutoff {
    fn new(deadline: Option<Instant>) -> Cutoff {
        Cutoff {
            deadline,
            stopped: None,
            dropped: 0,
        }
    }

    /// Past the grace period, takes the samples out of `batch` (other records still go through: they are
    /// cheap, and the samples kept need them).
    fn drop_late_samples(
        &mut self,
        stop: &AtomicBool,
        batch: &mut Vec<Record>,
        recycler: &Recycler,
    ) {
        let now = Instant::now();
        if self.stopped.is_none() && stop.load(Ordering::Relaxed) {
            self.stopped = Some(now);
        }
        let end = match (self.deadline, self.stopped) {
            (Some(d), Some(s)) => d.min(s),
            (d, s) => match d.or(s) {
                Some(end) => end,
                None => return,
            },
        };
        if now < end + GRACE {
            return;
        }
        let before = batch.len();
        let late: Vec<Record> = batch
            .extract_if(.., |r| matches!(r, Record::Sample(_)))
            .collect();
        self.dropped += (before - batch.len()) as u64;
        recycler.give_back(late);
    }
}

/// Reads the rings until the target ends, the deadline passes or a signal arrives, then stops the counters
/// and sends what is left.
fn drain(
    mut session: Session,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    begin: Instant,
    batches: &mpsc::Sender<Vec<Record>>,
) -> Result<Session> {
    let status = StatusLine::new();
    read_until_done(&mut session, stop, deadline, |batch, session| {
        let listening = batch.is_empty() || batches.send(batch).is_ok();
        status.show(begin.elapsed(), session);
        listening
    })?;
    status.clear();
    Ok(session)
}

/// The reader thread's loop, shared by `record` and `top`: hands each drained batch (possibly empty) to
/// `deliver` until the target ends, `deadline` passes, `stop` is set or `deliver` returns false (nobody
/// listens any more); in the last two cases a launched command gets SIGTERM. Then stops the counters and
/// delivers what was still buffered.
pub fn read_until_done(
    session: &mut Session,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    mut deliver: impl FnMut(Vec<Record>, &Session) -> bool,
) -> Result<()> {
    loop {
        let mut batch = Vec::new();
        session.read(TICK, &mut batch)?;
        if !deliver(batch, session) || stop.load(Ordering::Relaxed) {
            session.terminate_child();
            break;
        }
        if session.is_finished() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let mut rest = Vec::new();
    session.finish(&mut rest)?;
    deliver(rest, session);
    Ok(())
}

/// Writes the profile whole or not at all, private to its owner (see [`output`]).
pub fn write_profile(profile: &Profile, path: &Path) -> Result<()> {
    let gzip = path.extension().is_some_and(|e| e == "gz");
    output::write_output(path, Access::Private, |out| {
        pprof::write_pprof(profile, out, gzip).map_err(std::io::Error::other)
    })
}

/// One line on stderr with elapsed time, samples and lost samples; silent when stderr is not a terminal.
struct StatusLine {
    enabled: bool,
}

impl StatusLine {
    fn new() -> StatusLine {
        StatusLine {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, elapsed: Duration, session: &Session) {
        if !self.enabled {
            return;
        }
        let stats = session.stats();
        eprint!(
            "\r\x1b[Kstacktop: recording {:.1}s  {} samples  {} lost",
            elapsed.as_secs_f64(),
            stats.samples,
            stats.lost
        );
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}
