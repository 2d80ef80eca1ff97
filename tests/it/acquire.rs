//! Real recordings of `assets/spin.c` (built here with the system C compiler).
//!
//! Without perf_event_open (no kernel support, or not permitted) a test prints why and passes, unless
//! `STACKTOP_REQUIRE_PERF=1` makes it fail.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::skip;
use stacktop::acquire::record::{Record, PERF_CONTEXT_USER};
use stacktop::acquire::{
    AcquireError, CallGraphMode, CommandOutput, EventSpec, Session, SessionConfig, Target,
};
use stacktop::process::{Processes, Resolved};
use stacktop::unwind::fp;

/// `assets/spin.c` compiled once per test run; None when there is no C compiler.
fn spin() -> Option<&'static Path> {
    static SPIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    SPIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stacktop-acquire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let out = dir.join("spin");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/spin.c");
        let status = Command::new("cc")
            .args(["-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .ok()?;
        status.success().then_some(out)
    })
    .as_deref()
}

fn config(target: Target) -> SessionConfig {
    SessionConfig {
        target,
        event: EventSpec::default(), // cycles: falls back to cpu-clock without a PMU
        frequency: 1000,
        call_graph: CallGraphMode::Fp,
        command_output: CommandOutput::Null,
        off_cpu: false,
        locks: None,
    }
}

/// Starts a session; skips the test when this machine cannot record.
fn start(target: Target) -> Option<Session> {
    match Session::start(config(target)) {
        Ok(s) => Some(s),
        Err(e @ (AcquireError::Unsupported | AcquireError::PermissionDenied { .. })) => {
            skip(&e.to_string())
        }
        Err(e) => panic!("cannot start session: {e}"),
    }
}

/// Reads until the target finishes or `limit` passes, then finishes the session.
fn record(session: &mut Session, limit: Duration) -> Vec<Record> {
    let mut out = vec![];
    let start = Instant::now();
    while !session.is_finished() && start.elapsed() < limit {
        session.read(Duration::from_millis(50), &mut out).unwrap();
    }
    session.finish(&mut out).unwrap();
    out
}

fn assert_time_ordered(records: &[Record]) {
    for pair in records.windows(2) {
        assert!(pair[0].time() <= pair[1].time(), "out of order: {pair:?}");
    }
}

/// Fraction of samples whose innermost user frame resolves into the spin executable.
fn share_in_spin(records: &[Record]) -> f64 {
    let mut processes = Processes::new();
    let (mut total, mut in_spin) = (0, 0);
    for r in records {
        processes.apply(r);
        let Record::Sample(s) = r else { continue };
        total += 1;
        let stack = fp::frames(&s.callchain);
        let Some(user) = stack.frames.iter().find(|f| !f.kernel) else {
            continue;
        };
        if let Resolved::Module { module, .. } =
            processes.resolve(s.pid, user.address.lookup_address())
        {
            if module.path.ends_with("/spin") {
                in_spin += 1;
            }
        }
    }
    in_spin as f64 / total.max(1) as f64
}

pub fn launched_command_is_sampled_from_exec_to_exit() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    let Some(mut session) = start(Target::Command(vec![spin.into(), "0.5".into()])) else {
        return;
    };
    let pid = session.child_pid().unwrap();
    let records = record(&mut session, Duration::from_secs(10));

    assert!(session.is_finished());
    assert_eq!(session.child_exit_status(), Some(0));
    assert_time_ordered(&records);
    let samples: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s),
            _ => None,
        })
        .collect();
    eprintln!(
        "event {} notes {:?} stats {:?}",
        session.event_name(),
        session.notes(),
        session.stats()
    );
    assert!(
        samples.len() > 50,
        "only {} samples in 0.5 s at 1000 Hz",
        samples.len()
    );
    assert_eq!(session.stats().samples, samples.len() as u64);
    assert!(samples.iter().all(|s| s.pid == pid && s.tid == pid));
    assert!(samples
        .iter()
        .all(|s| !s.callchain.is_empty() && s.period > 0));
    assert!(samples
        .iter()
        .any(|s| s.callchain.contains(&PERF_CONTEXT_USER)));

    // The exec comm comes before the executable's mmap, which comes before the first sample.
    let comm = records
        .iter()
        .position(|r| matches!(r, Record::Comm { pid: p, name, exec: true, .. } if *p == pid && name == "spin"))
        .expect("exec comm");
    let mmap = records
        .iter()
        .position(|r| matches!(r, Record::Mmap(m) if m.pid == pid && m.executable && m.path.ends_with("/spin")))
        .expect("mmap of the executable");
    let first_sample = records
        .iter()
        .position(|r| matches!(r, Record::Sample(_)))
        .unwrap();
    assert!(
        comm < mmap && mmap < first_sample,
        "comm {comm} mmap {mmap} sample {first_sample}"
    );
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Exit { pid: p, .. } if *p == pid)));

    let share = share_in_spin(&records);
    assert!(share > 0.5, "only {share:.2} of samples resolve into spin");
}

pub fn children_of_a_launched_command_are_followed() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    let script = format!("{} 0.3; true", spin.display());
    let Some(mut session) = start(Target::Command(vec![
        "sh".into(),
        "-c".into(),
        script.into(),
    ])) else {
        return;
    };
    let sh = session.child_pid().unwrap();
    let records = record(&mut session, Duration::from_secs(10));
    assert_eq!(session.child_exit_status(), Some(0));
    let forked: Vec<u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::Fork { pid, ppid, .. } if *ppid == sh && *pid != sh => Some(*pid),
            _ => None,
        })
        .collect();
    assert!(!forked.is_empty(), "no fork of sh seen");
    let child_samples = records
        .iter()
        .filter(|r| matches!(r, Record::Sample(s) if forked.contains(&s.pid)))
        .count();
    assert!(
        child_samples > 30,
        "only {child_samples} samples of sh's child"
    );
    assert!(share_in_spin(&records) > 0.5);
}

pub fn attaching_to_a_running_process_gets_samples_and_its_mappings() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    // Three threads on two CPUs: every existing thread must be followed, not just the main one.
    let mut child = Command::new(spin).args(["3", "3"]).spawn().unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(100));
    let Some(mut session) = start(Target::Pids(vec![pid])) else {
        child.kill().ok();
        child.wait().ok();
        return;
    };
    let mut records = vec![];
    let begin = Instant::now();
    while begin.elapsed() < Duration::from_millis(500) {
        session
            .read(Duration::from_millis(50), &mut records)
            .unwrap();
    }
    assert!(!session.is_finished());
    session.finish(&mut records).unwrap();
    child.kill().ok();
    child.wait().ok();

    assert_time_ordered(&records);
    let first_sample = records
        .iter()
        .position(|r| matches!(r, Record::Sample(_)))
        .expect("samples");
    let synthetic = &records[..first_sample];
    assert!(synthetic
        .iter()
        .any(|r| matches!(r, Record::Comm { pid: p, name, .. } if *p == pid && name == "spin")));
    assert!(synthetic
        .iter()
        .any(|r| matches!(r, Record::Mmap(m) if m.pid == pid && m.path.ends_with("/spin") && m.inode != 0)));
    let samples = records
        .iter()
        .filter(|r| matches!(r, Record::Sample(s) if s.pid == pid))
        .count();
    assert!(samples > 100, "only {samples} samples in 0.5 s");
    let tids: HashSet<u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s.tid),
            _ => None,
        })
        .collect();
    assert_eq!(tids.len(), 3, "samples from threads {tids:?}");
    let comms = synthetic
        .iter()
        .filter(|r| matches!(r, Record::Comm { .. }))
        .count();
    assert_eq!(comms, 3, "a comm per thread");
    assert!(share_in_spin(&records) > 0.5);
}

/// Lists a process's threads.
fn threads(pid: u32) -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

pub fn attaching_to_one_thread_samples_only_it() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    let mut child = Command::new(spin).args(["3", "2"]).spawn().unwrap();
    let pid = child.id();
    let begin = Instant::now();
    while threads(pid).len() < 2 && begin.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let tid = *threads(pid).iter().find(|&&t| t != pid).unwrap();
    let Some(mut session) = start(Target::Tids(vec![tid])) else {
        child.kill().ok();
        child.wait().ok();
        return;
    };
    let mut records = vec![];
    let begin = Instant::now();
    while begin.elapsed() < Duration::from_millis(500) {
        session
            .read(Duration::from_millis(50), &mut records)
            .unwrap();
    }
    session.finish(&mut records).unwrap();
    child.kill().ok();
    child.wait().ok();

    let samples: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(samples.len() > 50, "only {} samples", samples.len());
    assert!(samples.iter().all(|s| s.tid == tid && s.pid == pid));
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Mmap(m) if m.pid == pid && m.path.ends_with("/spin"))));
}

pub fn system_wide_sees_every_process() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    let mut child = Command::new(spin).args(["2"]).spawn().unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(50));
    let Some(mut session) = start(Target::System) else {
        child.kill().ok();
        child.wait().ok();
        return;
    };
    let mut records = vec![];
    let begin = Instant::now();
    while begin.elapsed() < Duration::from_millis(400) {
        session
            .read(Duration::from_millis(50), &mut records)
            .unwrap();
    }
    assert!(!session.is_finished());
    session.finish(&mut records).unwrap();
    child.kill().ok();
    child.wait().ok();

    assert_time_ordered(&records);
    let spin_samples = records
        .iter()
        .filter(|r| matches!(r, Record::Sample(s) if s.pid == pid))
        .count();
    assert!(spin_samples > 50, "only {spin_samples} samples of spin");
    // Our own process was running before the session too, so it has a synthetic comm.
    let me = std::process::id();
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Comm { pid: p, time: 0, .. } if *p == me)));
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Mmap(m) if m.pid == pid && m.path.ends_with("/spin"))));
}

pub fn unknown_pid_is_a_clear_error() {
    let pid = 0x3fff_fff0; // above the kernel's pid_max limit (4194304)
    match Session::start(config(Target::Pids(vec![pid]))) {
        Err(e @ AcquireError::NoSuchProcess { .. }) => {
            assert!(e.to_string().contains(&pid.to_string()))
        }
        Err(AcquireError::Unsupported) => skip("perf events unsupported"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("attached to a pid that cannot exist"),
    }
}

pub fn command_not_found_is_a_clear_error() {
    let name = "stacktop-test-no-such-command";
    match Session::start(config(Target::Command(vec![name.into()]))) {
        Err(e @ AcquireError::CommandNotFound { .. }) => {
            assert!(e.to_string().contains(name), "{e}")
        }
        Err(AcquireError::Unsupported) => skip("perf events unsupported"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("started a command that does not exist"),
    }
    // A path that exists but cannot be executed fails at exec, reported the same clear way.
    match Session::start(config(Target::Command(vec![
        "/etc/hostname-does-not-exist".into(),
    ]))) {
        Err(AcquireError::CommandNotFound { .. }) => {}
        Err(AcquireError::Unsupported | AcquireError::PermissionDenied { .. }) => {
            skip("perf unavailable")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("started a command that does not exist"),
    }
    let Some(_) = spin() else { return };
    let not_executable = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/spin.c");
    match Session::start(config(Target::Command(vec![not_executable.into()]))) {
        Err(e @ AcquireError::Exec { .. }) => assert!(e.to_string().contains("spin.c"), "{e}"),
        Err(AcquireError::Unsupported | AcquireError::PermissionDenied { .. }) => {
            skip("perf unavailable")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("executed a C source file"),
    }
}

pub fn stack_copying_modes_deliver_registers_and_stack_bytes() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    for mode in [CallGraphMode::Dwarf(4096), CallGraphMode::Hybrid(4096)] {
        let mut cfg = config(Target::Command(vec![spin.into(), "0.3".into()]));
        cfg.call_graph = mode;
        let mut session = match Session::start(cfg) {
            Ok(s) => s,
            Err(e @ (AcquireError::Unsupported | AcquireError::PermissionDenied { .. })) => {
                skip(&e.to_string())
            }
            Err(e) => panic!("cannot start session: {e}"),
        };
        let records = record(&mut session, Duration::from_secs(10));
        let samples: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                Record::Sample(s) => Some(s),
                _ => None,
            })
            .collect();
        assert!(samples.len() > 30, "{mode}: only {} samples", samples.len());
        let user: Vec<_> = samples.iter().filter(|s| s.user_mode).collect();
        assert!(!user.is_empty());
        for s in &user {
            let regs = s.user_regs.as_ref().expect("user registers");
            assert_eq!(regs.len(), stacktop::acquire::USER_REGS.len());
            let stack = s.user_stack.as_ref().expect("user stack");
            assert!(
                !stack.is_empty() && stack.len() <= 4096,
                "{mode}: {} bytes",
                stack.len()
            );
        }
        // The sampled instruction pointer register is the user chain's first address.
        let ip_reg = stacktop::acquire::USER_REGS
            .iter()
            .position(|r| *r == "ip" || *r == "pc");
        if let (Some(i), CallGraphMode::Hybrid(_)) = (ip_reg, mode) {
            let s = user[0];
            let at = s
                .callchain
                .iter()
                .position(|&a| a == PERF_CONTEXT_USER)
                .unwrap();
            assert_eq!(s.user_regs.as_ref().unwrap()[i], s.callchain[at + 1]);
        }
        let has_user_chain = user
            .iter()
            .any(|s| s.callchain.contains(&PERF_CONTEXT_USER));
        assert_eq!(
            has_user_chain,
            matches!(mode, CallGraphMode::Hybrid(_)),
            "{mode}"
        );
    }
}

pub fn a_full_ring_counts_lost_samples() {
    let Some(spin) = spin() else {
        skip("no C compiler (cc) to build assets/spin.c");
    };
    // 64 KiB stack copies at 10 kHz fill even the largest ring (32 MiB) in 50 ms of the command's CPU time;
    // nobody reads it until the command has exited, however long a busy machine takes to give it 0.3 s.
    let mut cfg = config(Target::Command(vec![spin.into(), "0.3".into()]));
    cfg.call_graph = CallGraphMode::Dwarf(65528);
    cfg.frequency = 10_000;
    let mut session = match Session::start(cfg) {
        Ok(s) => s,
        Err(e @ (AcquireError::Unsupported | AcquireError::PermissionDenied { .. })) => {
            skip(&e.to_string())
        }
        Err(e) => panic!("cannot start session: {e}"),
    };
    let pid = session.child_pid().unwrap();
    let exited = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        })
    };
    let begin = Instant::now();
    while !exited() && begin.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut records = vec![];
    session.finish(&mut records).unwrap();
    let lost: u64 = records
        .iter()
        .map(|r| match r {
            Record::Lost { count, .. } => *count,
            _ => 0,
        })
        .sum();
    eprintln!("stats {:?}", session.stats());
    assert!(lost > 0, "nothing lost: {:?}", session.stats());
    assert_eq!(session.stats().lost, lost);
    assert!(session.stats().samples > 0);
    assert_time_ordered(&records);
}

crate::tests![
    launched_command_is_sampled_from_exec_to_exit,
    children_of_a_launched_command_are_followed,
    attaching_to_a_running_process_gets_samples_and_its_mappings,
    attaching_to_one_thread_samples_only_it,
    system_wide_sees_every_process,
    unknown_pid_is_a_clear_error,
    command_not_found_is_a_clear_error,
    stack_copying_modes_deliver_registers_and_stack_bytes,
    a_full_ring_counts_lost_samples,
];
