//! Lock recording (`--locks`) on real contention: the probes' waits, paired and charged by the pipeline, against
//! what the workloads measure of themselves. The sessions run in this process through the library, as `record`
//! and `top` run them, so what is checked is the recording, whatever the outputs make of it; the errors go
//! through the CLI.
//!
//! Workloads: `assets/offcpu_lock.c` (a holder keeps a global mutex `lock` for 3 ms bursts; three waiters take
//! it through `wait_often` and `wait_rarely`, 3:1, and time their `pthread_mutex_lock` calls) and
//! `assets/locks_probe.rs` (the same shape on a `static TABLE: std::sync::Mutex<u64>`, callers `take_often`
//! and `take_rarely`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stacktop::acquire::{CommandOutput, Session, SessionConfig, Stats, Target};
use stacktop::pipeline::lockplan::{plan, LockMode};
use stacktop::pipeline::{Config, Loading, Pipeline};
use stacktop::profile::{LockId, Profile, SampleGroup};

use crate::common::*;

/// How a test drives the pipeline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// As `record`: the whole profile at the end.
    Record,
    /// As `top`: symbols loaded in the background, a delta every 200 ms, applied to a profile of the
    /// receiver's, as the UI does.
    Live,
}

/// Records `target` with lock probes of `mode` and off-CPU time when `off_cpu`, until it ends or `seconds`
/// pass, and returns the profile and the session's counts. A launched command's output goes to `output`.
/// An attached recording with off-CPU time says in `Recorded::window` how long its counters ran.
fn record_locks(
    target: Target,
    mode: LockMode,
    off_cpu: bool,
    output: CommandOutput,
    seconds: f64,
    drive: Drive,
) -> (Profile, Stats, Option<f64>) {
    let locks = plan(&target, mode).unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::start(SessionConfig {
        target,
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: output,
        off_cpu,
        locks: Some(locks),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config::live(&session);
    if drive == Drive::Live {
        // As `top`: symbols load in the background, and a lock is named once its module is read.
        config.loading = Loading::Background;
    }
    let mut pipeline = Pipeline::new(config);
    let mut received = Profile::default();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while !session.is_finished() && Instant::now() < deadline {
        session
            .read(Duration::from_millis(200), &mut records)
            .unwrap();
        for record in records.drain(..) {
            pipeline.on_record(&record);
        }
        if drive == Drive::Live {
            pipeline.advance_to(session.watermark());
            received.apply_delta(pipeline.take_delta(), None).unwrap();
        }
    }
    session.terminate_child();
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    pipeline.finish_off_cpu(session.stop_time());
    pipeline.finish_locks(session.stop_time());
    let window = session
        .attach()
        .zip(session.stop_time())
        .map(|(attach, stop)| stop.saturating_sub(attach.time) as f64 / 1e9);
    let profile = match drive {
        Drive::Record => pipeline.into_profile(),
        Drive::Live => {
            received.apply_delta(pipeline.take_delta(), None).unwrap();
            received
        }
    };
    (profile, session.stats(), window)
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

/// The off-CPU blocked nanoseconds of stacks through both `waiting` and `caller`.
fn blocked_through(profile: &Profile, waiting: &str, caller: &str) -> u64 {
    profile
        .samples
        .iter()
        .filter(|g| g.blocked > 0)
        .filter(|g| {
            let n = names(profile, g);
            n.iter().any(|f| f == waiting) && n.iter().any(|f| f == caller)
        })
        .map(|g| g.blocked)
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

/// What a workload measured of its callers' time in `lock()`: (often, rarely) nanoseconds.
fn measured_split(output: &str, often: &str, rarely: &str) -> (u64, u64) {
    (
        measured(output, &format!("lock caller={often} "), "lock_ns"),
        measured(output, &format!("lock caller={rarely} "), "lock_ns"),
    )
}

fn offcpu_lock() -> PathBuf {
    build_c("offcpu_lock.c", "offcpu_lock", &[])
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

/// Runs `program ARGS` under lock recording and returns the profile, the session's counts and the program's
/// output.
fn record_command(
    program: &Path,
    args: &[&str],
    mode: LockMode,
    off_cpu: bool,
    drive: Drive,
) -> (Profile, Stats, String) {
    let output = scratch_file(&format!(
        "locks-{}.out",
        program.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&output);
    let mut argv = vec![program.as_os_str().to_owned()];
    argv.extend(args.iter().map(Into::into));
    let (profile, stats, _) = record_locks(
        Target::Command(argv),
        mode,
        off_cpu,
        CommandOutput::File(output.clone()),
        60.0,
        drive,
    );
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    (profile, stats, text)
}

/// Tests that place uprobes: perf events with root's rights.
fn probes_allowed() -> bool {
    perf_available() && root_or_skip("placing uprobes (CAP_PERFMON)")
}

/// The checks shared by the C workload's recordings: one lock, named `lock` in the workload's `.bss`; its
/// waits within 10% of what the waiters measured in `pthread_mutex_lock`, split between the callers within 5
/// points of theirs, every waiter stack through `waiting` and `pthread_mutex_lock`, and nearly every wait
/// charged to a holder's stack through `waking`.
fn check_c_workload(profile: &Profile, output: &str, waiting: &str, waking: &str) -> LockId {
    let rows = profile.lock_rows();
    assert_eq!(rows.len(), 1, "one lock expected: {rows:?}");
    let row = &rows[0];
    let lock = row.lock;
    assert_eq!(profile.lock_label(lock), "lock");
    let module = profile
        .lock(lock)
        .and_then(|l| l.module)
        .map(|m| profile.str(m).to_owned());
    assert!(
        module
            .as_deref()
            .is_some_and(|m| m.ends_with("/offcpu_lock")),
        "{module:?}"
    );
    assert!(row.contentions >= 200, "{row:?}");
    // The three waiters, and the holder when a waiter holds the lock as its burst begins. Driven live (as
    // `top`), a delta that comes after the workload exited folds its groups into pid 0 and tid 0 (`top` forgets
    // exited processes' threads), and the row then counts one thread: seen once in CI, 1,396 waits in one
    // "thread" of 4.0 s in a 2 s run.
    let folded = profile
        .samples
        .iter()
        .filter(|g| g.lock == Some(lock))
        .all(|g| (g.pid, g.tid) == (0, 0));
    assert!(
        (3..=4).contains(&row.threads) || (folded && row.threads == 1),
        "{row:?}"
    );
    let (often, rarely) = measured_split(output, "wait_often", "wait_rarely");
    let (_, by_often) = waits_through(profile, lock, "wait_often");
    let (_, by_rarely) = waits_through(profile, lock, "wait_rarely");
    let (_, by_holder) = waits_through(profile, lock, "hold_lock");
    assert_eq!(
        by_often + by_rarely + by_holder,
        row.delay,
        "waits outside the three callers"
    );
    assert_near(
        "the waiters' total wait, s",
        (by_often + by_rarely) as f64 / 1e9,
        (often + rarely) as f64 / 1e9,
        (often + rarely) as f64 / 1e9 * 0.10,
    );
    assert_near(
        "wait_often's share of the waiters' waits, %",
        by_often as f64 * 100.0 / (by_often + by_rarely) as f64,
        often as f64 * 100.0 / (often + rarely) as f64,
        5.0,
    );
    for g in profile.samples.iter().filter(|g| g.contentions > 0) {
        let n = names(profile, g);
        assert!(
            n.first().is_some_and(|f| f == waiting) && n.iter().any(|f| f == "pthread_mutex_lock"),
            "{n:?}"
        );
    }
    for g in profile.samples.iter().filter(|g| g.caused_contentions > 0) {
        let n = names(profile, g);
        assert!(n.iter().any(|f| f == waking), "{n:?}");
    }
    assert!(
        row.caused_delay as f64 >= row.delay as f64 * 0.9,
        "most waits have a holder: {row:?}"
    );
    lock
}

pub fn a_contended_global_mutex_is_found_named_and_its_waits_measured() {
    if !probes_allowed() {
        return;
    }
    let (profile, stats, output) = record_command(
        &offcpu_lock(),
        &["2"],
        LockMode::Contended,
        true,
        Drive::Record,
    );
    let locks = &profile.meta.locks;
    assert!(locks.enabled);
    assert!(
        locks
            .probes
            .iter()
            .any(|p| p.starts_with("glibc: __lll_lock_wait")),
        "{:?}",
        locks.probes
    );
    // Launched under the probes, the workload's every wait is seen from its start to its end.
    assert_eq!(
        (locks.unmatched_ends, locks.open_at_stop),
        (0, 0),
        "{locks:?}"
    );
    assert_eq!(stats.lost_locks, 0, "{stats:?}");
    assert!(stats.locks >= 600, "{stats:?}");
    check_c_workload(&profile, &output, "__lll_lock_wait", "__lll_lock_wake");
    // The probes leave the stacks walkable: the off-CPU time asleep in pthread_mutex_lock splits between its
    // callers as the waiters measured (a return probe's trampoline would cut those walks).
    let (often, rarely) = measured_split(&output, "wait_often", "wait_rarely");
    let blocked_often = blocked_through(&profile, "pthread_mutex_lock", "wait_often");
    let blocked_rarely = blocked_through(&profile, "pthread_mutex_lock", "wait_rarely");
    assert!(blocked_often + blocked_rarely > 1_000_000_000);
    assert_near(
        "wait_often's share of the off-CPU time in pthread_mutex_lock, %",
        blocked_often as f64 * 100.0 / (blocked_often + blocked_rarely) as f64,
        often as f64 * 100.0 / (often + rarely) as f64,
        5.0,
    );
}

pub fn call_probes_count_the_calls_that_waited() {
    if !probes_allowed() {
        return;
    }
    // Off-CPU recording on: a call counts if it blocked.
    let (profile, _, output) = record_command(
        &offcpu_lock(),
        &["2"],
        LockMode::Pthread,
        true,
        Drive::Record,
    );
    assert!(
        profile.meta.locks.probes[0].starts_with("glibc, every call: pthread_mutex_lock"),
        "{:?}",
        profile.meta.locks.probes
    );
    assert!(
        profile
            .meta
            .notes
            .iter()
            .any(|n| n.contains("--locks=pthread") && n.contains("did not block")),
        "{:?}",
        profile.meta.notes
    );
    check_c_workload(
        &profile,
        &output,
        "pthread_mutex_lock",
        "pthread_mutex_unlock",
    );
}

pub fn a_running_process_is_probed_from_the_attach() {
    if !probes_allowed() {
        return;
    }
    let output = scratch_file("locks-attach.out");
    let workload = Command::new(offcpu_lock())
        .arg("4")
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (profile, _, window) = record_locks(
        Target::Pids(vec![workload.id()]),
        LockMode::Contended,
        true,
        CommandOutput::Null,
        2.0,
        Drive::Record,
    );
    let window = window.unwrap();
    let out = workload.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let (often, rarely) = measured_split(&text, "wait_often", "wait_rarely");
    let rows = profile.lock_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(profile.lock_label(rows[0].lock), "lock");
    let (_, by_often) = waits_through(&profile, rows[0].lock, "wait_often");
    let (_, by_rarely) = waits_through(&profile, rows[0].lock, "wait_rarely");
    // The waiters wait at a steady rate: the attached window's share of their 4 s.
    let expected = (often + rarely) as f64 / 1e9 * window / 4.0;
    assert_near(
        "the waiters' waits in the attached window, s",
        (by_often + by_rarely) as f64 / 1e9,
        expected,
        expected * 0.2,
    );
    assert_near(
        "wait_often's share of the waiters' waits, %",
        by_often as f64 * 100.0 / (by_often + by_rarely) as f64,
        often as f64 * 100.0 / (often + rarely) as f64,
        5.0,
    );
    // A wait under way at the attach ends unseen at most once per thread.
    assert!(
        profile.meta.locks.unmatched_ends <= 4,
        "{:?}",
        profile.meta.locks
    );
}

pub fn a_rust_std_mutex_is_found_and_its_waiters_split() {
    if !probes_allowed() || !tool_available("rustc") {
        return;
    }
    let (profile, _, output) = record_command(
        &locks_probe(),
        &["2"],
        LockMode::Contended,
        false,
        Drive::Record,
    );
    assert!(
        profile.meta.locks.probes.iter().any(|p| p.starts_with(
            "Rust std: <std::sys::sync::mutex::futex::Mutex>::lock_contended (entry, "
        )),
        "{:?}",
        profile.meta.locks.probes
    );
    // TABLE is the workload's one mutex; glibc's own locks (thread start and exit) may be contended a few
    // times besides (1 to 3 waits, under 1 ms, seen in about half the runs, before and after issue 15).
    let rows = profile.lock_rows();
    assert!(!rows.is_empty(), "no lock found");
    let lock = rows[0].lock;
    assert_eq!(profile.lock_label(lock), "locks_probe::TABLE", "{rows:?}");
    let others: u64 = rows[1..].iter().map(|r| r.contentions).sum();
    assert!(others * 100 <= rows[0].contentions, "{rows:?}");
    let (often, rarely) = measured_split(&output, "take_often", "take_rarely");
    let (_, by_often) = waits_through(&profile, lock, "locks_probe::take_often");
    let (_, by_rarely) = waits_through(&profile, lock, "locks_probe::take_rarely");
    assert!(by_often + by_rarely > 500_000_000, "{rows:?}");
    assert_near(
        "take_often's share of the waits, %",
        by_often as f64 * 100.0 / (by_often + by_rarely) as f64,
        often as f64 * 100.0 / (often + rarely) as f64,
        5.0,
    );
    assert_near(
        "the waiters' total wait, s",
        (by_often + by_rarely) as f64 / 1e9,
        (often + rarely) as f64 / 1e9,
        (often + rarely) as f64 / 1e9 * 0.10,
    );
    // The holder that made them wait most: the burst in hold_table, released from the guard's drop.
    let held: u64 = profile
        .samples
        .iter()
        .filter(|g| g.caused_contentions > 0)
        .filter(|g| {
            let n = names(&profile, g);
            n.first()
                .is_some_and(|f| f == "<std::sys::sync::mutex::futex::Mutex>::wake")
                && n.iter().any(|f| f == "locks_probe::hold_table")
        })
        .map(|g| g.caused_delay)
        .sum();
    assert!(held > rows[0].caused_delay / 10, "{held} of {rows:?}");
}

pub fn live_deltas_carry_the_waits_and_the_lock_s_name() {
    if !probes_allowed() {
        return;
    }
    let (profile, _, output) = record_command(
        &offcpu_lock(),
        &["2"],
        LockMode::Contended,
        true,
        Drive::Live,
    );
    check_c_workload(&profile, &output, "__lll_lock_wait", "__lll_lock_wake");
}

pub fn without_lock_code_or_rights_one_line_says_what_to_do() {
    if !perf_available() {
        return;
    }
    // A static program without symbols: neither glibc's nor Rust's functions can be found.
    let stripped = scratch_file("locks-static-stripped");
    let built = Command::new("cc")
        .args(["-O2", "-static", "-pthread", "-s", "-o"])
        .arg(&stripped)
        .arg(assets_dir().join("offcpu_lock.c"))
        .status()
        .is_ok_and(|s| s.success());
    if built {
        let out = stacktop(&["record", "--locks", "-o"])
            .arg(scratch_file("locks-none.pb.gz"))
            .arg("--")
            .arg(&stripped)
            .arg("0.1")
            .output()
            .unwrap();
        assert_one_line_error(&out, &["--locks", "neither glibc's nor Rust's"]);
    }
    let out = stacktop(&["record", "--locks=spin", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    if tool_available("setpriv") {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(stacktop_bin())
            .args([
                "record",
                "--locks",
                "-e",
                "cpu-clock",
                "-o",
                "/tmp/stacktop-locks-denied.pb.gz",
                "--",
                "true",
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, &["lock probes", "CAP_PERFMON", "without --locks"]);
    }
}

/// `record --locks` through the CLI: the probe hits counted on stderr and in the file's notes, with the probes'
/// cost.
pub fn record_says_what_the_probes_caught() {
    if !probes_allowed() {
        return;
    }
    let file = scratch_file("locks-cli.pb.gz");
    let out = run(stacktop(&["record", "--locks", "-e", "cpu-clock", "-o"])
        .arg(&file)
        .arg("--")
        .arg(offcpu_lock())
        .arg("1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hits: u64 = stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" lock probe hits"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lock probe hits in: {stderr}"));
    assert!(hits >= 300, "{stderr}");
    let profile = stacktop::pipeline::import::load_profile(&file).unwrap();
    assert!(
        profile.meta.notes.iter().any(
            |n| n.starts_with(&format!("locks: {hits} lock probe hits")) && n.contains("18 us")
        ),
        "{:?}",
        profile.meta.notes
    );
}

/// No probe outlives stacktop: killed with SIGKILL while it records, the kernel removes its breakpoints with
/// its last file descriptor, and the target's code reads as the file's again.
pub fn a_killed_recording_leaves_no_probe_behind() {
    if !probes_allowed() {
        return;
    }
    // Longer than the probe takes to appear (10 s at most) and go (30 s at most): it is killed once the probe
    // is gone.
    let mut workload = Command::new(offcpu_lock())
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = workload.id();
    let probes = plan(&Target::Pids(vec![pid]), LockMode::Contended).unwrap();
    let wait = probes
        .probes
        .iter()
        .find(|p| p.role == stacktop::acquire::ProbeRole::Wait)
        .unwrap();
    // The wait function's entry in the workload's memory, through the mapping of that file offset.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let address = stacktop::acquire::parse_maps(&maps)
        .into_iter()
        .find(|m| {
            m.executable
                && wait
                    .path
                    .to_string_lossy()
                    .ends_with(&format!("{:x}-{:x}", m.start, m.end))
        })
        .map(|m| m.start + wait.offset - m.pgoff)
        .unwrap();
    // The byte, or why it cannot be read (the workload ended: how).
    let mut read = || {
        use std::os::unix::fs::FileExt;
        let mut byte = [0u8];
        match std::fs::File::open(format!("/proc/{pid}/mem"))
            .and_then(|mem| mem.read_exact_at(&mut byte, address))
        {
            Ok(()) => byte[0],
            Err(e) => panic!(
                "the workload's memory cannot be read ({e}); it ended: {:?}",
                workload.try_wait()
            ),
        }
    };
    let original = read();
    assert_ne!(original, 0xcc);
    let mut recording = stacktop(&["record", "--locks", "--duration", "20", "-o"])
        .arg(scratch_file("locks-killed.pb.gz"))
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The breakpoint (int3) is in place while it records...
    let placed = Instant::now();
    while read() != 0xcc && placed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(), 0xcc, "the probe never appeared");
    recording.kill().unwrap();
    let _ = recording.wait();
    // ... and gone once it is killed. Alone this takes under a second; in two clean-clone CI runs of
    // session 25, after the rest of the suite, the breakpoint was still there 10 s after stacktop was gone
    // (no stacktop process left): the kernel's teardown of the killed recording's events, not understood
    // yet. The time is printed when it is long.
    let killed = Instant::now();
    while read() != original && killed.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if killed.elapsed() > Duration::from_secs(1) {
        eprintln!(
            "the probe went {:?} after the recording was killed",
            killed.elapsed()
        );
    }
    if read() != original {
        // Another recording with lock probes on the same machine places the same breakpoint.
        let others = Command::new("pgrep").args(["-a", "stacktop"]).output();
        let others = others
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!("the probe outlived the recording; stacktop processes now: {others:?}");
    }
    // The workload runs on past the probe's removal (a breakpoint left without its probe would kill it).
    let running = workload.try_wait().unwrap();
    let _ = workload.kill();
    let _ = workload.wait();
    assert!(
        running.is_none(),
        "the workload did not run on: {running:?}"
    );
}

crate::tests![
    a_contended_global_mutex_is_found_named_and_its_waits_measured,
    call_probes_count_the_calls_that_waited,
    a_running_process_is_probed_from_the_attach,
    a_rust_std_mutex_is_found_and_its_waiters_split,
    live_deltas_carry_the_waits_and_the_lock_s_name,
    without_lock_code_or_rights_one_line_says_what_to_do,
    record_says_what_the_probes_caught,
    a_killed_recording_leaves_no_probe_behind,
];
