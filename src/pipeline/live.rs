//! The live sampler `top` runs: three threads, so neither a full ring nor a slow symbol load freezes the
//! screen:
//!
//! ```text
//! reader (Session: drains the rings) --records--> sampler (Pipeline: unwind, symbolize) --Update/refresh--> UI
//! ```
//! The sampler builds one profile and each refresh hands the UI what it gained (`Pipeline::take_delta`: the
//! interval's samples, the names and stacks new to it); the UI adds that to its own profile, translating ids,
//! so an address is symbolized once per session and interned once per table generation (the tables start
//! afresh when they outgrow their budget, and the UI then keeps only the stacks its sums weigh: see
//! `profile::Delta`). Modules load on a
//! fourth thread (the pipeline's background loader): until a module is read its addresses show as
//! `[unknown] MODULE+0xOFF (loading)`, and the delta after it is read renames those locations in place.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::reader::{read_until_done, Pace, Pacer};
use super::{Config, Loading, Pipeline};
use crate::acquire::record::Record;
use crate::acquire::{sched, CommandOutput, Recycler, Session, SessionConfig, Stats, Target};
use crate::profile::Delta;
use crate::render::text::frameless_warning;
use crate::symbolize::Symbolizer;

/// What the header shows besides the profile: filled by the sampler each refresh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    pub event: String,
    pub frequency: u64,
    /// `command ./split`, `pid 123`, `all CPUs`, or the file shown with `-i`.
    pub target: String,
    pub call_graph: String,
    /// Where a launched command's output goes.
    pub output_file: Option<String>,
    pub samples_per_sec: f64,
    pub samples: u64,
    pub lost: u64,
    pub throttled: u64,
    /// stacktop's own CPU use (all threads), percent of one CPU over the last 10 s.
    pub cpu_percent: f64,
    /// Set when the target has ended (`exit 0`), or for a recorded profile (`recorded`).
    pub ended: Option<String>,
    /// fp mode: the warning about stacks through code without frame pointers, in one line (see
    /// `render::text::frameless_warning`).
    pub unwind_warning: Option<String>,
}

/// One refresh from the sampler: what its profile gained in the last interval (its samples, the stacks and
/// names new to it, and the loading placeholders named since), and the header figures.
#[derive(Debug)]
pub struct Update {
    pub delta: Delta,
    pub status: Status,
}

/// What the reader thread sends the sampler thread.
enum Batch {
    /// Records, the stats so far, and the session's watermark (every record stamped up to it is in this
    /// batch or an earlier one).
    Records(Vec<Record>, Stats, u64),
    /// Sampling is over: the launched command's exit status, if there was one, and when the counters stopped.
    End(Stats, Option<i32>, Option<u64>),
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
        Sampler::start_with(config, delay, duration, true)
    }

    /// `start`, and whether walks that run off their stack copy go on in live memory (`--no-continue`).
    pub fn start_with(
        config: SessionConfig,
        delay: Duration,
        duration: Option<Duration>,
        continue_walks: bool,
    ) -> Result<Sampler> {
        let target_text = describe(&config.target);
        let output_file = match &config.command_output {
            CommandOutput::File(p) => Some(p.display().to_string()),
            _ => None,
        };
        let session = Session::start(config)?;
        let config = Config {
            // Each refresh resolves its addresses anew: a JIT map is re-read for a missing one once a second.
            symbolizer: Some(Symbolizer::new().with_jit_recheck(Duration::from_secs(1))),
            loading: Loading::Background,
            ..Config::live(&session)
        };
        let config = Config {
            continuation: config.continuation.filter(|_| continue_walks),
            ..config
        };
        let (pace, pacer) = Pacer::new(config.continuation.is_some() && config.tables.is_some());
        let status = Status {
            event: config.meta.event.clone(),
            frequency: config.meta.frequency,
            target: target_text,
            call_graph: config.meta.call_graph.clone(),
            output_file,
            ..Status::default()
        };
        let notes = session.notes().to_vec();
        let recycler = session.recycler();
        let stop = Arc::new(AtomicBool::new(false));
        let (batches, batches_rx) = mpsc::channel::<Batch>();
        let (updates_tx, updates) = mpsc::channel::<Update>();
        let reader = {
            let stop = Arc::clone(&stop);
            let deadline = duration.map(|d| Instant::now() + d);
            std::thread::Builder::new()
                .name("stacktop-reader".to_owned())
                .spawn(move || {
                    let _ = sched::raise_sampling_thread();
                    read_rings(session, &stop, deadline, &pace, &batches)
                })?
        };
        let sampler = {
            let status = status.clone();
            let stop = Arc::clone(&stop);
            // Spawns the background loader here, at this thread's priority, not the sampler's.
            let pipeline = Pipeline::new(config);
            std::thread::Builder::new()
                .name("stacktop-sampler".to_owned())
                .spawn(move || {
                    let _ = sched::raise_sampling_thread();
                    sample(
                        pipeline,
                        pacer,
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
    pace: &Pace,
    batches: &Sender<Batch>,
) -> Result<()> {
    read_until_done(&mut session, stop, deadline, pace, |batch, session| {
        batches
            .send(Batch::Records(batch, session.stats(), session.watermark()))
            .is_ok()
    })?;
    let _ = batches.send(Batch::End(
        session.stats(),
        session.child_exit_status(),
        session.stop_time(),
    ));
    Ok(())
}

/// Feeds records to the pipeline and sends the UI one update per `delay`, and a last one when sampling ends.
#[allow(clippy::too_many_arguments)]
fn sample(
    mut pipeline: Pipeline,
    mut pacer: Option<Pacer>,
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
            Ok(Batch::Records(records, s, watermark)) => {
                pipeline.look_ahead(&records);
                pipeline.keep_up(recycler.backlog_share());
                for record in &records {
                    pipeline.on_record(record);
                }
                recycler.give_back(records);
                pipeline.advance_to(watermark);
                if let Some(pacer) = &mut pacer {
                    pacer.note(pipeline.target_walks(), Instant::now());
                }
                stats = s;
                None
            }
            Ok(Batch::End(s, exit, stopped)) => {
                stats = s;
                // Intervals and waits still open end where the counters stopped.
                pipeline.finish_off_cpu(stopped);
                pipeline.finish_locks(stopped);
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
        let (fell_back, unwind_modules) = pipeline.unwind_summary();
        let frameless = pipeline.frameless();
        let samples = pipeline.samples;
        let continuation = pipeline.continuation();
        let short_copies = pipeline.short_copies();
        let meta = pipeline.meta_mut();
        meta.continuation = continuation;
        meta.short_copies = short_copies;
        meta.lost = stats.lost;
        meta.throttled = stats.throttled;
        meta.fell_back = fell_back;
        meta.frameless = frameless;
        meta.unwind_modules = unwind_modules;
        status.unwind_warning = frameless_warning(meta, samples).map(|w| w.one_line());
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

/// This process's CPU time (all threads), as a percentage of one CPU over the last [`CPU_WINDOW`]: a refresh's
/// own interval alone jumped around (5% shown where the minute's average was 1.9%).
struct CpuClock {
    /// `(when, CPU nanoseconds then)`, oldest first, spanning at most the window.
    seen: std::collections::VecDeque<(Instant, u64)>,
}

/// The span the header's own CPU figure averages over.
const CPU_WINDOW: Duration = Duration::from_secs(10);

impl CpuClock {
    fn new() -> CpuClock {
        let mut clock = CpuClock {
            seen: std::collections::VecDeque::new(),
        };
        clock.note(Instant::now(), own_cpu_nanos().unwrap_or(0));
        clock
    }

    fn percent(&mut self) -> f64 {
        let now = Instant::now();
        let nanos = own_cpu_nanos().unwrap_or_else(|| self.seen.back().map_or(0, |&(_, n)| n));
        self.note(now, nanos)
    }

    /// Adds a reading; returns the CPU use since the oldest one kept.
    fn note(&mut self, now: Instant, nanos: u64) -> f64 {
        // A thread that ended takes its time out of the sum: start the window afresh rather than count
        // negative time.
        if self.seen.back().is_some_and(|&(_, n)| nanos < n) {
            self.seen.clear();
        }
        self.seen.push_back((now, nanos));
        // Keep the newest reading at or before the window's start, so the window stays full.
        while self
            .seen
            .get(1)
            .is_some_and(|&(at, _)| now.duration_since(at) >= CPU_WINDOW)
        {
            self.seen.pop_front();
        }
        let Some(&(at, first)) = self.seen.front() else {
            return 0.0;
        };
        let seconds = now.duration_since(at).as_secs_f64();
        if seconds > 0.0 {
            nanos.saturating_sub(first) as f64 / 1e9 * 100.0 / seconds
        } else {
            0.0
        }
    }
}

/// The CPU time of this process's threads, in nanoseconds: the sum of `/proc/self/task/*/schedstat` (time on
/// a CPU, to the nanosecond), else utime + stime from `/proc/self/stat` (in 10 ms ticks: at stacktop's usual
/// 1% of a CPU, one tick per second or none, so the header showed 0.0% for many refreshes).
fn own_cpu_nanos() -> Option<u64> {
    let from_schedstat = std::fs::read_dir("/proc/self/task").ok().and_then(|tasks| {
        let mut sum = 0u64;
        let mut any = false;
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            if let Some(n) = text
                .split_whitespace()
                .next()
                .and_then(|f| f.parse::<u64>().ok())
            {
                sum = sum.saturating_add(n);
                any = true;
            }
        }
        any.then_some(sum)
    });
    from_schedstat.or_else(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may contain spaces, end at its closing parenthesis.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 of `rest` (which starts at field 3), in
        // USER_HZ ticks (100 per second on every Linux ABI).
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) * 10_000_000)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_is_averaged_over_the_window() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut clock = CpuClock {
            seen: std::collections::VecDeque::new(),
        };
        assert_eq!(clock.note(t0, 0), 0.0);
        // 100 ms of CPU in the first second: 10%.
        assert!((clock.note(s(1), 100_000_000) - 10.0).abs() < 1e-9);
        // A burst of 500 ms in the next second shows averaged with the first: 30%, not 50%.
        assert!((clock.note(s(2), 600_000_000) - 30.0).abs() < 1e-9);
        // Idle seconds after: the burst fades out of the window once it is 10 s old.
        for k in 3..=12 {
            clock.note(s(k), 600_000_000);
        }
        assert!((clock.note(s(13), 600_000_000) - 0.0).abs() < 1e-9);
        assert!(clock.seen.len() <= 12);
        // A thread that ended takes its time out of the sum: never negative, the window starts afresh.
        assert_eq!(clock.note(s(14), 500_000_000), 0.0);
        assert!((clock.note(s(15), 520_000_000) - 2.0).abs() < 1e-9);
    }
}
