//! `stacktop top`: the live view. Three threads, so neither a full ring nor a slow symbol load freezes the
//! screen:
//!
//! ```text
//! reader (Session: drains the rings) --records--> sampler (Pipeline: unwind, symbolize) --Update/refresh--> UI
//! ```
//! The sampler builds one profile for the whole session and each refresh hands the UI what it gained
//! (`Pipeline::take_delta`: the interval's samples, the names and stacks new to it); the UI appends that to its
//! copy of the same tables and adds the samples to a decaying and a cumulative sum (`tui::App`), so an address
//! is symbolized and interned once per session. Modules load on a fourth thread (the pipeline's background
//! loader): until a module is read its addresses show as `[unknown] MODULE+0xOFF (loading)`, and the delta
//! after it is read renames those locations in place. The UI sleeps until a key, an update or an annotation
//! arrives (keys are read on a thread of their own). `top -i FILE` shows a recorded profile frozen.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::acquire::record::Record;
use crate::acquire::{
    CallGraphMode, CommandOutput, Recycler, Session, SessionConfig, Stats, Target,
    TOP_HYBRID_STACK_BYTES,
};
use crate::annotate::{self, annotate, ElfCode};
use crate::cli::TopArgs;
use crate::cmd::pipeline::Pipeline;
use crate::cmd::record::{duration, read_until_done, session_config};
use crate::profile::query::{Filter, Matcher};
use crate::profile::{Meta, Profile};
use crate::symbolize::Symbolizer;
use crate::tui::{
    self, AnnotatedLine, Annotation, Annotator, App, FuncRef, LineKind, Status, Update,
};
use crate::unwind::fp;
use crate::unwind::modules::Mode;

pub fn run(args: TopArgs) -> Result<ExitCode> {
    if let Some(path) = &args.input {
        let profile = crate::cmd::load_profile(path)?;
        let status = recorded_status(&profile, &path.display().to_string());
        tui::run(App::frozen(profile, status), None, Some(annotator())).context("terminal")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !(args.delay.is_finite() && args.delay >= 0.05) {
        bail!("--delay must be at least 0.05 seconds, got {}", args.delay);
    }
    let duration = duration(args.duration)?;
    let mut config = session_config(&args.sampling, TOP_HYBRID_STACK_BYTES)?;
    // A launched command would draw over the screen: its output goes to a file named in the header.
    let output_file = match config.target {
        Target::Command(_) => Some(command_output_file()?),
        _ => None,
    };
    config.command_output = output_file
        .clone()
        .map_or(CommandOutput::Null, CommandOutput::File);
    let sampler = Sampler::start(config, Duration::from_secs_f64(args.delay), duration)?;
    let mut app = App::live(sampler.status.clone());
    app.message = sampler.notes.first().cloned();
    let (updates, handle) = sampler.into_parts();
    let ui = tui::run(app, Some(updates), Some(annotator()));
    // Ends the reader (SIGTERM to a launched command) whatever the UI's outcome.
    handle.stop()?;
    ui.context("terminal")?;
    Ok(ExitCode::SUCCESS)
}

/// A new file for a launched command's output, created exclusively under an unpredictable name: a
/// predictable name in the shared temporary directory could be planted as a symlink by another user, and
/// root's `top` would then append the command's output to whatever it points to.
fn command_output_file() -> Result<std::path::PathBuf> {
    let (_, path) = tempfile::Builder::new()
        .prefix(&format!("stacktop-top-{}-", std::process::id()))
        .suffix(".out")
        .tempfile()
        .and_then(|f| f.keep().map_err(|e| e.error))
        .context("cannot create a file for the command's output in the temporary directory")?;
    Ok(path)
}

/// The `a` key: `annotate::annotate` over the profile on screen, limited to the function's module, converted
/// to the rows the TUI draws. One `ElfCode` (and its symbolizer caches) serves every call.
pub fn annotator() -> Arc<Annotator> {
    let code = Mutex::new(ElfCode::new());
    Arc::new(move |profile: &Profile, func: &FuncRef| {
        let filter = Filter {
            modules: vec![func.module.clone()],
            ..Filter::default()
        };
        let mut code = code.lock().unwrap_or_else(|e| e.into_inner());
        let a = annotate(profile, &Matcher::exact(&func.name), &filter, &mut *code)
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
        let lines = a
            .lines
            .iter()
            .map(|l| AnnotatedLine {
                kind: match (l.kind, l.address) {
                    (annotate::LineKind::Asm, Some(address)) => LineKind::Instruction(address.0),
                    _ => LineKind::Source(l.line),
                },
                text: match (&l.inlined_from, l.kind) {
                    (Some(f), annotate::LineKind::Source) => format!("{}  [inlined {f}]", l.text),
                    _ => l.text.clone(),
                },
                share: l.share,
            })
            .collect();
        let mut notes = a.notes.clone();
        if a.debug_info == crate::symbolize::DebugInfo::None {
            notes.insert(0, "no debug info: disassembly only".to_owned());
        }
        Ok(Annotation {
            function: a.function.clone(),
            module: a.module.clone(),
            lines,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    })
}

fn describe(target: &Target) -> String {
    let list = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    match target {
        Target::Command(argv) => {
            let words: Vec<String> = argv
                .iter()
                .map(|a: &OsString| a.to_string_lossy().into_owned())
                .collect();
            crate::render::sanitize(&format!("command: {}", words.join(" "))).into_owned()
        }
        Target::Pids(p) => format!("pid {}", list(p)),
        Target::Tids(t) => format!("tid {}", list(t)),
        Target::System => "all CPUs".to_owned(),
    }
}

/// The header of a recorded profile.
pub fn recorded_status(profile: &Profile, file: &str) -> Status {
    let meta = &profile.meta;
    let seconds = meta.duration_nanos as f64 / 1e9;
    let samples = profile.total_count();
    Status {
        event: meta.event.clone(),
        frequency: meta.frequency,
        target: crate::render::sanitize(&format!("file: {file}")).into_owned(),
        call_graph: meta.call_graph.clone(),
        output_file: None,
        samples_per_sec: if seconds > 0.0 {
            samples as f64 / seconds
        } else {
            0.0
        },
        samples,
        lost: meta.lost,
        throttled: meta.throttled,
        cpu_percent: 0.0,
        ended: Some("recorded".to_owned()),
    }
}

/// What the reader thread sends the sampler thread.
enum Batch {
    Records(Vec<Record>, Stats),
    /// Sampling is over: the launched command's exit status, if there was one.
    End(Stats, Option<i32>),
}

/// A running recording that produces one `Update` per refresh until it ends.
pub struct Sampler {
    pub updates: Receiver<Update>,
    /// The header before the first refresh.
    pub status: Status,
    /// What was changed from the request (event fallback, user-space only).
    pub notes: Vec<String>,
    handle: SamplerHandle,
}

/// Stops and joins the sampler's threads.
pub struct SamplerHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Sampler {
    /// Starts counting and the reader and sampler threads. The last update has `status.ended` set.
    pub fn start(
        config: SessionConfig,
        delay: Duration,
        duration: Option<Duration>,
    ) -> Result<Sampler> {
        let target_text = describe(&config.target);
        let output_file = match &config.command_output {
            CommandOutput::File(p) => Some(p.display().to_string()),
            _ => None,
        };
        let session = Session::start(config)?;
        let limits = fp::Limits {
            kernel_max_stack: session.max_stack(),
            ..fp::Limits::default()
        };
        let tables = match session.call_graph() {
            CallGraphMode::Fp => None,
            CallGraphMode::Hybrid(_) => Some(Mode::Hybrid),
            CallGraphMode::Dwarf(_) => Some(Mode::Dwarf),
        };
        let meta = Meta {
            event: session.event_name(),
            period_unit: session.event().kind.period_unit().to_owned(),
            frequency: session.frequency(),
            call_graph: session.call_graph().to_string(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            notes: session.notes().to_vec(),
            ..Meta::default()
        };
        let status = Status {
            event: meta.event.clone(),
            frequency: meta.frequency,
            target: target_text,
            call_graph: meta.call_graph.clone(),
            output_file,
            ..Status::default()
        };
        let notes = session.notes().to_vec();
        let recycler = session.recycler();
        let budget = session.stack_budget();
        let stop = Arc::new(AtomicBool::new(false));
        let (batches, batches_rx) = mpsc::channel::<Batch>();
        let (updates_tx, updates) = mpsc::channel::<Update>();
        let reader = {
            let stop = Arc::clone(&stop);
            let deadline = duration.map(|d| Instant::now() + d);
            std::thread::Builder::new()
                .name("stacktop-reader".to_owned())
                .spawn(move || read_rings(session, &stop, deadline, &batches))?
        };
        let sampler = {
            let status = status.clone();
            let stop = Arc::clone(&stop);
            // Each refresh resolves its addresses anew: a JIT map is re-read for a missing one once a second.
            let symbolizer = Symbolizer::new().with_jit_recheck(Duration::from_secs(1));
            let pipeline = Pipeline::new(meta, limits, tables)
                .with_symbolizer(symbolizer)
                .with_stack_budget(budget)
                .with_background_loading();
            std::thread::Builder::new()
                .name("stacktop-sampler".to_owned())
                .spawn(move || {
                    sample(
                        pipeline,
                        status,
                        delay,
                        &stop,
                        &batches_rx,
                        &updates_tx,
                        &recycler,
                    );
                    Ok::<(), anyhow::Error>(())
                })?
        };
        Ok(Sampler {
            updates,
            status,
            notes,
            handle: SamplerHandle {
                stop,
                threads: vec![reader, sampler],
            },
        })
    }

    pub fn into_parts(self) -> (Receiver<Update>, SamplerHandle) {
        (self.updates, self.handle)
    }
}

impl SamplerHandle {
    /// Ends sampling (a launched command gets SIGTERM) and waits for the threads.
    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("a sampling thread panicked"))??;
        }
        Ok(())
    }
}

/// Drains the rings until the target ends, the deadline passes or `stop` is set, then says how it ended.
fn read_rings(
    mut session: Session,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    batches: &Sender<Batch>,
) -> Result<()> {
    read_until_done(&mut session, stop, deadline, |batch, session| {
        batches.send(Batch::Records(batch, session.stats())).is_ok()
    })?;
    let _ = batches.send(Batch::End(session.stats(), session.child_exit_status()));
    Ok(())
}

/// Feeds records to the pipeline and sends the UI one update per `delay`, and a last one when sampling ends.
fn sample(
    mut pipeline: Pipeline,
    mut status: Status,
    delay: Duration,
    stop: &AtomicBool,
    batches: &Receiver<Batch>,
    updates: &Sender<Update>,
    recycler: &Recycler,
) {
    let mut cpu = CpuClock::new();
    let mut last = Instant::now();
    let mut last_samples = 0;
    let mut next = last + delay;
    let mut stats = Stats::default();
    loop {
        let ended = match batches.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(Batch::Records(records, s)) => {
                for record in &records {
                    pipeline.on_record(record);
                }
                recycler.give_back(records);
                stats = s;
                None
            }
            Ok(Batch::End(s, exit)) => {
                stats = s;
                Some(exit.map_or_else(|| "sampling ended".to_owned(), |c| format!("exit {c}")))
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some("sampling ended".to_owned()),
        };
        let now = Instant::now();
        if now < next && ended.is_none() {
            continue;
        }
        let seconds = now.duration_since(last).as_secs_f64().max(1e-3);
        status.samples_per_sec = (stats.samples - last_samples.min(stats.samples)) as f64 / seconds;
        status.samples = stats.samples;
        status.lost = stats.lost;
        status.throttled = stats.throttled;
        status.cpu_percent = cpu.percent();
        status.ended = ended.clone();
        if ended.is_some() {
            // The last view is frozen: no name should stay a loading placeholder, unless the user is quitting.
            pipeline.finish_loading(|| stop.load(Ordering::Relaxed));
        }
        let meta = pipeline.meta_mut();
        meta.lost = stats.lost;
        meta.throttled = stats.throttled;
        let update = Update {
            delta: pipeline.take_delta(),
            status: status.clone(),
        };
        if updates.send(update).is_err() || ended.is_some() {
            return;
        }
        last = now;
        last_samples = stats.samples;
        next = now + delay;
    }
}

/// This process's CPU time (all threads) from `/proc/self/stat`, as a percentage of one CPU since the last call.
struct CpuClock {
    at: Instant,
    ticks: u64,
}

/// The kernel's `USER_HZ`, fixed at 100 on every Linux ABI stacktop runs on.
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuClock {
    fn new() -> CpuClock {
        CpuClock {
            at: Instant::now(),
            ticks: own_cpu_ticks().unwrap_or(0),
        }
    }

    fn percent(&mut self) -> f64 {
        let now = Instant::now();
        let ticks = own_cpu_ticks().unwrap_or(self.ticks);
        let seconds = now.duration_since(self.at).as_secs_f64();
        let used = ticks.saturating_sub(self.ticks) as f64 / TICKS_PER_SECOND;
        self.at = now;
        self.ticks = ticks;
        if seconds > 0.0 {
            used * 100.0 / seconds
        } else {
            0.0
        }
    }
}

/// utime + stime of this process, in clock ticks.
fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may contain spaces, end at its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 of `rest` (which starts at field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
