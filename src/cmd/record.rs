//! `stacktop record`: sample a target until it exits, `--duration` passes or a signal arrives, then write the
//! profile file (to a temporary name, renamed when complete).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::acquire::record::{Record, SampleKind};
use crate::acquire::{
    sched, signals, CallGraphMode, Recycler, Session, Stats, DEFAULT_HYBRID_STACK_BYTES,
    MAX_STACK_BYTES,
};
use crate::cli::{self, RecordArgs};
use crate::format::output::write_profile;
use crate::pipeline::reader::{read_until_done, Pace, Pacer};
use crate::pipeline::{Config, Loading, Pipeline};

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    let mut config = args.sampling.session_config(DEFAULT_HYBRID_STACK_BYTES)?;
    if let Some(bytes) = args.unwind_check {
        config.call_graph = self_check_mode(config.call_graph, bytes)?;
    }
    let duration = cli::duration(args.duration)?;
    let stop = signals::stop_flag().context("installing signal handlers")?;
    let started = SystemTime::now();
    let session = Session::start(config)?;
    for note in session.notes() {
        eprintln!("stacktop: {note}");
    }
    let mut config = Config::live(&session);
    if args.sampling.no_continue {
        config.continuation = None;
    }
    if let Some(bytes) = args.unwind_check {
        config.self_check = Some(bytes as usize);
        config.stack_budget = None;
    }
    // Symbols are read after the samples, named in place before the file is written: read on the spot, a
    // library's (libc's debug info: 60 to 80 ms) held up switch-outs that come by the hundred thousand a second
    // until the backlog overflowed, and read meanwhile in the background they still cost the CPU the workload
    // shares (on the split workload, reading libc's DWARF and `/proc/kallsyms` was 70% of stacktop's CPU).
    config.loading = Loading::Deferred;
    let (pace, mut pacer) = Pacer::new(config.continuation.is_some() && config.tables.is_some());
    // This thread unwinds every sample: it needs its share as much as the reader (see `sched`). Raised
    // before the pipeline starts its symbol loader, which inherits the priority: the loader's main work is
    // the deferred symbols after the samples, while `record` waits for it; at nice 0 on a machine busy with
    // twenty threads it took 20 s of wall time for 1 s of CPU after a 5 s recording.
    let _ = sched::raise_sampling_thread();
    let mut pipeline = Pipeline::new(config);
    let begin = Instant::now();
    let deadline = duration.map(|d| begin + d);
    // The rings are drained on their own thread, so a slow symbol load on this one never lets them
    // overflow; batches wait in the channel instead.
    let (batches, received) = mpsc::channel::<Vec<Record>>();
    let recycler = session.recycler();
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("stacktop-reader".to_owned())
            .spawn(move || {
                // Not allowed (no CAP_SYS_NICE): the rings may overflow on a saturated machine, and the
                // lost samples say so.
                let _ = sched::raise_sampling_thread();
                drain(session, &stop, deadline, begin, &pace, &batches)
            })?
    };
    let mut cutoff = Cutoff::new(deadline);
    for mut batch in received {
        cutoff.drop_late_samples(&stop, &mut batch, &recycler);
        pipeline.look_ahead(&batch);
        pipeline.keep_up(recycler.backlog_share());
        for record in &batch {
            pipeline.on_record(record);
        }
        recycler.give_back(batch);
        if let Some(pacer) = &mut pacer {
            pacer.note(pipeline.target_walks(), Instant::now());
        }
    }
    let session = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the ring-buffer reader thread panicked"))??;

    // Intervals and waits still open end where the counters stopped.
    pipeline.finish_off_cpu(session.stop_time());
    pipeline.finish_locks(session.stop_time());
    // Nothing is walked any more: what the walks took goes before the symbols are read.
    drop(recycler);
    pipeline.release_unwind_tables();
    pipeline.finish_loading(|| false);
    let mut stats = session.stats();
    let cut = cutoff.dropped + cutoff.dropped_switches + cutoff.dropped_locks;
    stats.lost += cut;
    stats.dropped += cut;
    stats.lost_off_cpu += cutoff.dropped_switches;
    stats.lost_locks += cutoff.dropped_locks;
    stats.locks = stats.locks.saturating_sub(cutoff.dropped_locks);
    stats.samples = stats.samples.saturating_sub(cutoff.dropped);
    stats.switches = stats.switches.saturating_sub(cutoff.dropped_switches);
    let failure = session.child_failure();
    let (fell_back, unwind_modules) = pipeline.unwind_summary();
    let truncated = pipeline.truncated;
    let frameless = pipeline.frameless();
    let short_copies = pipeline.short_copies();
    let continuation = pipeline.continuation();
    let check = pipeline.self_check().cloned();
    let shed = (pipeline.shed > 0).then(|| {
        format!(
            "{} samples were walked by frame pointers alone while stacktop caught up with sampling (a frameless function may hide its caller in them); lower -F to avoid it",
            pipeline.shed
        )
    });
    // The figures of the end; event, rate and mode are the start's (`Config::live`).
    let meta = pipeline.meta_mut();
    meta.lost = stats.lost;
    meta.throttled = stats.throttled;
    meta.notes = session.notes().to_vec();
    meta.notes
        .extend(off_cpu_note(&session, &stats, begin.elapsed()));
    meta.notes.extend(locks_note(&session, &stats));
    meta.time_nanos = started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    meta.duration_nanos = begin.elapsed().as_nanos() as i64;
    meta.truncated = truncated;
    meta.fell_back = fell_back;
    meta.frameless = frameless;
    meta.short_copies = short_copies;
    meta.continuation = continuation;
    meta.unwind_modules = unwind_modules;
    if let Some(check) = &check {
        meta.notes.push(check.summary());
    }
    meta.notes.extend(shed.clone());
    let profile = pipeline.into_profile();
    write_profile(&profile, &args.output)?;
    let mut switches = if session.off_cpu() {
        format!(", {} switch-outs", stats.switches)
    } else {
        String::new()
    };
    if session.locks().is_some() {
        switches.push_str(&format!(", {} lock probe hits", stats.locks));
    }
    eprintln!(
        "stacktop: wrote {} ({} samples{switches}, {} lost, {} throttled)",
        args.output.display(),
        stats.samples,
        stats.lost,
        stats.throttled
    );
    if let Some(line) = session
        .locks()
        .and_then(|(probes, _)| elsewhere_line(stats.locks_elsewhere, probes.every_call))
    {
        eprintln!("{line}");
    }
    if let Some(check) = &check {
        eprintln!("stacktop: {}", check.summary());
        for (pid, tid, frame, full, continued, how) in &check.wrongs {
            eprintln!(
                "stacktop: unwind check: wrong {pid}/{tid} at frame {frame}: full {full:#x} continued {continued:#x} ({how})"
            );
        }
    }
    if let Some(shed) = &shed {
        eprintln!("stacktop: {shed}");
    }
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

/// `--unwind-check BYTES`: the mode asked for, with whole copies (the self-check walks their first BYTES).
fn self_check_mode(mode: CallGraphMode, bytes: u32) -> Result<CallGraphMode> {
    if bytes == 0 || !bytes.is_multiple_of(8) || bytes >= MAX_STACK_BYTES {
        anyhow::bail!(
            "--unwind-check takes a multiple of 8 bytes below {MAX_STACK_BYTES}, got {bytes}"
        );
    }
    Ok(match mode {
        CallGraphMode::Hybrid(_) => CallGraphMode::Hybrid(MAX_STACK_BYTES),
        CallGraphMode::Dwarf(_) => CallGraphMode::Dwarf(MAX_STACK_BYTES),
        CallGraphMode::Fp => {
            anyhow::bail!("--unwind-check checks stack copies: use --call-graph hybrid or dwarf")
        }
    })
}

/// The header's line on off-CPU recording: what was recorded and what it cost the target.
fn off_cpu_note(session: &Session, stats: &Stats, elapsed: Duration) -> Option<String> {
    let bytes = session.switch_stack_bytes()?;
    let rate = stats.switches as f64 / elapsed.as_secs_f64().max(1e-3);
    let copy = match bytes {
        0 => "frame-pointer chain".to_owned(),
        n => format!("{n}-byte stack copy"),
    };
    let lost = match stats.lost_off_cpu {
        0 => String::new(),
        n => format!("; {n} switch samples or records lost"),
    };
    Some(format!(
        "off-CPU: a context-switch sample ({copy}) at each of {} switch-outs ({rate:.0}/s){lost}; {}",
        stats.switches,
        crate::acquire::OFF_CPU_COST
    ))
}

/// The header's line on lock recording: what the probes caught and what they cost the target.
fn locks_note(session: &Session, stats: &Stats) -> Option<String> {
    let (_, bytes) = session.locks()?;
    let copy = match bytes {
        0 => "frame-pointer chains".to_owned(),
        n => format!("{n}-byte stack copies"),
    };
    let mut lost = match stats.lost_locks {
        0 => String::new(),
        n => format!("; {n} lock probe samples lost"),
    };
    if stats.locks_elsewhere > 0 {
        // The probes are placed in every process that maps the probed files (see `acquire`).
        lost.push_str(&format!(
            "; {} hits in other processes dropped",
            stats.locks_elsewhere
        ));
    }
    Some(format!(
        "locks: {} lock probe hits (waits begun and ended, releases; {copy}){lost}; {}",
        stats.locks,
        crate::acquire::LOCK_PROBE_COST
    ))
}

/// Other processes' hits of the lock probes, from this many on, are told on stderr at the end of a recording
/// (100 a second over 10 s): each cost its thread a uprobe's trap, 16 us on a 2-CPU VM, whoever the target was.
const ELSEWHERE_TOLD: u64 = 1000;

/// The end-of-recording line on the lock probes' hits in other processes than the target's: a uprobe traps in
/// every process that maps the probed file (see `acquire`), so a recording attached to one process slows every
/// other one that contends a lock meanwhile, and with `--locks=pthread` every one that takes a lock at all
/// (seen: `--locks=pthread -p` of an idle process cut a memcached's throughput on the same machine by 97%).
/// Said only in the header's note otherwise, which a user reads after the fact, if at all.
fn elsewhere_line(elsewhere: u64, every_call: bool) -> Option<String> {
    if elsewhere < ELSEWHERE_TOLD {
        return None;
    }
    let what = if every_call {
        "every pthread_mutex_lock and pthread_mutex_unlock call"
    } else {
        "every contended lock and its release"
    };
    Some(format!(
        "stacktop: the lock probes were also hit {elsewhere} times in other processes (dropped): they trap at {what} of every process that maps the probed files, about 16 us each, and slowed those processes too"
    ))
}

/// How long the samples still queued when the recording is told to end (`--duration` or a signal) may take to
/// process: past this, the rest are dropped and counted as lost, so a recording that fell behind still ends
/// when asked, as perf's does, instead of unwinding its backlog for seconds more.
const GRACE: Duration = Duration::from_millis(1500);

/// Ends the processing of samples [`GRACE`] after the recording was told to end.
struct Cutoff {
    deadline: Option<Instant>,
    stopped: Option<Instant>,
    /// CPU samples, switch-out samples and lock probes' samples dropped.
    dropped: u64,
    dropped_switches: u64,
    dropped_locks: u64,
}

impl Cutoff {
    fn new(deadline: Option<Instant>) -> Cutoff {
        Cutoff {
            deadline,
            stopped: None,
            dropped: 0,
            dropped_switches: 0,
            dropped_locks: 0,
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
        let late: Vec<Record> = batch
            .extract_if(.., |r| matches!(r, Record::Sample(_)))
            .collect();
        for record in &late {
            if let Record::Sample(s) = record {
                match s.kind {
                    SampleKind::Cpu => self.dropped += 1,
                    SampleKind::SwitchOut => self.dropped_switches += 1,
                    _ => self.dropped_locks += 1,
                }
            }
        }
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
    pace: &Pace,
    batches: &mpsc::Sender<Vec<Record>>,
) -> Result<Session> {
    let status = StatusLine::new();
    read_until_done(&mut session, stop, deadline, pace, |batch, session| {
        let listening = batch.is_empty() || batches.send(batch).is_ok();
        status.show(begin.elapsed(), session);
        listening
    })?;
    status.clear();
    Ok(session)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_processes_hits_are_told_past_a_threshold() {
        assert_eq!(elsewhere_line(0, true), None);
        assert_eq!(elsewhere_line(ELSEWHERE_TOLD - 1, true), None);
        let contended = elsewhere_line(4684, false).unwrap_or_default();
        assert!(
            contended.contains("4684 times in other processes"),
            "{contended}"
        );
        assert!(contended.contains("every contended lock"), "{contended}");
        let every = elsewhere_line(523_046, true).unwrap_or_default();
        assert!(every.contains("every pthread_mutex_lock"), "{every}");
        assert!(
            every.starts_with("stacktop: ") && !every.contains('\n'),
            "{every}"
        );
    }
}
