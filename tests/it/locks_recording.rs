//! Lock recording (`--locks`) on real contention: the probes' waits, paired and charged by the pipeline, against
//! what the workloads measure of themselves. The sessions run in this process through the library (as `record`
//! and `top` run them), so what is checked is the recording, whatever the outputs make of it.
//!
//! Workloads: `assets/offcpu_lock.c` (a holder keeps a global mutex `lock` for 3 ms bursts; three waiters take
//! it through `wait_often` and `wait_rarely`, 3:1, and time their `pthread_mutex_lock` calls) and
//! `assets/locks_probe.rs` (a Rust program whose threads contend a `static std::sync::Mutex`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stacktop::acquire::{CommandOutput, Session, SessionConfig, Stats, Target};
use stacktop::pipeline::lockplan::{plan, LockMode};
use stacktop::pipeline::{Config, Pipeline};
use stacktop::profile::{LockId, Profile, SampleGroup};

use crate::common::*;

/// Records `target` with lock probes of `mode` (and off-CPU time) until it ends or `seconds` pass, in this
/// process, and returns the finished profile with the session's counts.
fn record_locks(target: Target, mode: LockMode, off_cpu: bool, seconds: f64) -> (Profile, Stats) {
    let locks = plan(&target, mode).unwrap_or_else(|e| skip(&format!("{e}")));
    let mut session = Session::start(SessionConfig {
        target,
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::Null,
        off_cpu,
        locks: Some(locks),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut pipeline = Pipeline::new(Config::live(&session));
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while !session.is_finished() && Instant::now() < deadline {
        session
            .read(Duration::from_millis(100), &mut records)
            .unwrap();
        for record in records.drain(..) {
            pipeline.on_record(&record);
        }
    }
    session.terminate_child();
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    pipeline.finish_off_cpu(session.stop_time());
    pipeline.finish_locks(session.stop_time());
    (pipeline.into_profile(), session.stats())
}

fn names(profile: &Profile, group: &SampleGroup) -> Vec<String> {
    profile
        .stack(group.leaf)
        .flat_map(|loc| profile.location(loc).lines.clone())
        .map(|line| profile.str(profile.function(line.function).name).to_owned())
        .collect()
}

/// The waits (count, nanoseconds) charged to waiters of `lock` whose stack passes through `function`.
fn waits_through(profile: &Profile, lock: LockId, function: &str) -> (u64, u64) {
    profile
        .samples
        .iter()
        .filter(|g| g.lock == Some(lock) && g.contentions > 0)
        .filter(|g| names(profile, g).iter().any(|n| n == function))
        .fold((0, 0), |(c, d), g| (c + g.contentions, d + g.delay))
}

/// The wait (nanoseconds) charged to holders of `lock` whose stack passes through `function`.
fn caused_through(profile: &Profile, lock: LockId, function: &str) -> u64 {
    profile
        .samples
        .iter()
        .filter(|g| g.lock == Some(lock) && g.caused_contentions > 0)
        .filter(|g| names(profile, g).iter().any(|n| n == function))
        .map(|g| g.caused_delay)
        .sum()
}

/// `key=N` of the workload's line that starts with `prefix`.
fn measured(output: &str, prefix: &str, key: &str) -> u64 {
    output
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in `{prefix}` of {output}"))
}

fn offcpu_lock() -> PathBuf {
    build_c("offcpu_lock.c", "offcpu_lock", &[])
}

/// Runs `program` with `args` under lock recording, its output to a file, and returns the profile, the session's
/// counts and the output.
fn record_command(program: &Path, args: &[&str], mode: LockMode) -> (Profile, Stats, String) {
    let output = scratch_file(&format!(
        "{}-{}.out",
        program.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&output);
    let mut argv = vec![program.as_os_str().to_owned()];
    argv.extend(args.iter().map(Into::into));
    let locks =
        plan(&Target::Command(argv.clone()), mode).unwrap_or_else(|e| skip(&format!("{e}")));
    let mut session = Session::start(SessionConfig {
        target: Target::Command(argv),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::File(output.clone()),
        off_cpu: true,
        locks: Some(locks),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut pipeline = Pipeline::new(Config::live(&session));
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !session.is_finished() && Instant::now() < deadline {
        session
            .read(Duration::from_millis(100), &mut records)
            .unwrap();
        for record in records.drain(..) {
            pipeline.on_record(&record);
        }
    }
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    pipeline.finish_off_cpu(session.stop_time());
    pipeline.finish_locks(session.stop_time());
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    (pipeline.into_profile(), session.stats(), text)
}

pub fn a_contended_global_mutex_is_found_named_and_its_waits_measured() {
    if !perf_available() || !root_or_skip("placing uprobes") {
        return;
    }
    let program = offcpu_lock();
    let (profile, stats, output) = record_command(&program, &["2"], LockMode::Contended);
    let rows = profile.lock_rows();
    eprintln!("stats {stats:?}\nmeta {:?}", profile.meta.locks);
    for row in &rows {
        eprintln!("{} {row:?}", profile.lock_label(row.lock));
    }
    let lock = rows[0].lock;
    for f in [
        "wait_often",
        "wait_rarely",
        "hold_lock",
        "pthread_mutex_lock",
        "__lll_lock_wait",
    ] {
        eprintln!(
            "{f}: waits {:?} caused {}",
            waits_through(&profile, lock, f),
            caused_through(&profile, lock, f)
        );
    }
    eprintln!("{output}");
    let mut holders: Vec<&SampleGroup> = profile
        .samples
        .iter()
        .filter(|g| g.caused_contentions > 0)
        .collect();
    holders.sort_by_key(|g| std::cmp::Reverse(g.caused_delay));
    for g in holders.iter().take(6) {
        eprintln!(
            "holder {} {} {:?}",
            g.caused_delay,
            profile.str(g.comm),
            names(&profile, g)
        );
    }
    let mut waiters: Vec<&SampleGroup> = profile
        .samples
        .iter()
        .filter(|g| g.contentions > 0)
        .collect();
    waiters.sort_by_key(|g| std::cmp::Reverse(g.delay));
    for g in waiters.iter().take(3) {
        eprintln!("waiter {} {:?}", g.delay, names(&profile, g));
    }
    for n in &profile.meta.notes {
        eprintln!("note: {n}");
    }
    let _ = (
        record_locks,
        measured,
        Command::new("true").stdout(Stdio::null()),
    );
}

fn locks_probe() -> PathBuf {
    let out = scratch_file("locks_probe");
    if !out.exists() {
        run(Command::new("rustc")
            .args(["-C", "opt-level=2", "-g", "-o"])
            .arg(&out)
            .arg(assets_dir().join("locks_probe.rs")));
    }
    out
}

pub fn a_rust_std_mutex_is_found() {
    if !perf_available() || !root_or_skip("placing uprobes") || !tool_available("rustc") {
        return;
    }
    let program = locks_probe();
    let (profile, stats, output) = record_command(&program, &["2"], LockMode::Contended);
    eprintln!("stats {stats:?}\nmeta {:?}", profile.meta.locks);
    let rows = profile.lock_rows();
    for row in &rows {
        eprintln!("{} {row:?}", profile.lock_label(row.lock));
    }
    let lock = rows[0].lock;
    for f in [
        "locks_probe::take_often",
        "locks_probe::take_rarely",
        "locks_probe::hold_table",
    ] {
        eprintln!(
            "{f}: waits {:?} caused {}",
            waits_through(&profile, lock, f),
            caused_through(&profile, lock, f)
        );
    }
    let mut waiters: Vec<&SampleGroup> = profile
        .samples
        .iter()
        .filter(|g| g.contentions > 0)
        .collect();
    waiters.sort_by_key(|g| std::cmp::Reverse(g.delay));
    for g in waiters.iter().take(3) {
        eprintln!("waiter {} {:?}", g.delay, names(&profile, g));
    }
    let mut holders: Vec<&SampleGroup> = profile
        .samples
        .iter()
        .filter(|g| g.caused_contentions > 0)
        .collect();
    holders.sort_by_key(|g| std::cmp::Reverse(g.caused_delay));
    for g in holders.iter().take(3) {
        eprintln!("holder {} {:?}", g.caused_delay, names(&profile, g));
    }
    eprintln!("{output}");
    for n in &profile.meta.notes {
        eprintln!("note: {n}");
    }
}

crate::tests![
    a_contended_global_mutex_is_found_named_and_its_waits_measured,
    a_rust_std_mutex_is_found
];
