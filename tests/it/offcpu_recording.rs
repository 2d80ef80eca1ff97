//! Off-CPU recording on the kernel's real switches: a thread's waits, from its switch-outs to its switch-ins,
//! add up to the time it slept, whether the recording launched it, attached to it asleep, or drives the
//! live pipeline as `top` does; and the flags turn it on and off as documented. Only `sleep` and `sh` are
//! run, so the waits are known by construction.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stacktop::acquire::{CommandOutput, Session, SessionConfig, Target};
use stacktop::pipeline::import::load_profile;
use stacktop::pipeline::{Config, Pipeline, BLOCKED_AT_ATTACH};
use stacktop::profile::{Profile, SampleGroup};

use crate::common::*;

/// The off-CPU nanoseconds (blocked, runnable) and switch-outs of the samples of threads named `comm`.
fn off_cpu_of(profile: &Profile, comm: &str) -> (u64, u64, u64) {
    profile
        .samples
        .iter()
        .filter(|g| profile.str(g.comm) == comm)
        .fold((0, 0, 0), |(b, r, s), g| {
            (b + g.blocked, r + g.runnable, s + g.switches)
        })
}

fn leaf_name(profile: &Profile, group: &SampleGroup) -> String {
    profile
        .stack(group.leaf)
        .next()
        .and_then(|loc| profile.location(loc).lines.first().copied())
        .map(|line| profile.str(profile.function(line.function).name).to_owned())
        .unwrap_or_default()
}

pub fn a_launched_command_s_sleeps_are_its_blocked_time() {
    if !perf_available() {
        return;
    }
    let file = scratch_file("offcpu-sleeps.pb.gz");
    let out = run(stacktop(&["record", "-e", "cpu-clock", "-o"])
        .arg(&file)
        .args(["--", "sh", "-c", "sleep 0.3; sleep 0.2"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("switch-outs, 0 lost"), "{stderr}");
    let profile = load_profile(&file).unwrap();
    let stats = profile.meta.off_cpu;
    assert!(stats.enabled, "{stats:?}");
    assert_eq!(
        (
            stats.unknown_length,
            stats.open_at_stop,
            stats.blocked_at_attach
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    // Each sleep process waits in one nanosleep; sh waits for each child in turn.
    let (sleep_blocked, _, sleep_switches) = off_cpu_of(&profile, "sleep");
    assert!(sleep_switches >= 2, "{sleep_switches} switch-outs of sleep");
    assert_near(
        "sleep's blocked seconds",
        sleep_blocked as f64 / 1e9,
        0.5,
        0.05,
    );
    let (sh_blocked, _, _) = off_cpu_of(&profile, "sh");
    assert_near("sh's blocked seconds", sh_blocked as f64 / 1e9, 0.5, 0.07);
    // The waits are charged to the stack the thread slept in: the kernel's sleep, under the system call.
    let sleeping = profile
        .samples
        .iter()
        .filter(|g| profile.str(g.comm) == "sleep" && g.blocked > 100_000_000)
        .count();
    assert!(sleeping >= 1, "no long sleep charged to a stack");
    let names: Vec<String> = profile
        .samples
        .iter()
        .filter(|g| profile.str(g.comm) == "sleep" && g.blocked > 100_000_000)
        .flat_map(|g| profile.stack(g.leaf).collect::<Vec<_>>())
        .flat_map(|loc| profile.location(loc).lines.clone())
        .map(|line| profile.str(profile.function(line.function).name).to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("nanosleep")),
        "no nanosleep frame under sleep's wait: {names:?}"
    );
}

pub fn a_thread_asleep_at_attach_is_charged_from_the_attach_to_the_stop() {
    if !perf_available() {
        return;
    }
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let it reach its nanosleep.
    std::thread::sleep(Duration::from_millis(200));
    let file = scratch_file("offcpu-attach.pb.gz");
    let out = run(
        stacktop(&["record", "-e", "cpu-clock", "--duration", "1", "-o"])
            .arg(&file)
            .args(["-p", &sleeper.id().to_string()]),
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(out.status.success(), "{out:?}");
    let profile = load_profile(&file).unwrap();
    let stats = profile.meta.off_cpu;
    assert_eq!(
        (
            stats.blocked_at_attach,
            stats.open_at_stop,
            stats.unknown_length
        ),
        (1, 1, 0),
        "{stats:?}"
    );
    let groups: Vec<&SampleGroup> = profile.samples.iter().filter(|g| g.blocked > 0).collect();
    assert_eq!(groups.len(), 1, "{:?}", profile.samples);
    assert_eq!(leaf_name(&profile, groups[0]), BLOCKED_AT_ATTACH);
    assert_near(
        "blocked seconds of an attached sleeper",
        groups[0].blocked as f64 / 1e9,
        1.0,
        0.1,
    );
    assert!(profile
        .meta
        .notes
        .iter()
        .any(|n| n.contains(BLOCKED_AT_ATTACH)));
}

pub fn off_cpu_is_on_for_commands_and_asked_for_with_all_cpus() {
    if !perf_available() {
        return;
    }
    let cases: [(&[&str], bool); 4] = [
        (&["--", "sleep", "0.05"], true),
        (&["--no-off-cpu", "--", "sleep", "0.05"], false),
        (&["-a", "--duration", "0.2"], false),
        (&["-a", "--off-cpu", "--duration", "0.2"], true),
    ];
    for (i, (args, on)) in cases.into_iter().enumerate() {
        let file = scratch_file(&format!("offcpu-flags-{i}.pb.gz"));
        let out = run(stacktop(&["record", "-e", "cpu-clock", "-o"])
            .arg(&file)
            .args(args));
        assert!(out.status.success(), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.contains("switch-outs"), on, "{args:?}: {stderr}");
        let profile = load_profile(&file).unwrap();
        assert_eq!(profile.meta.off_cpu.enabled, on, "{args:?}");
        let switches: u64 = profile.samples.iter().map(|g| g.switches).sum();
        assert_eq!(switches > 0, on, "{args:?}: {switches} switch-outs");
        assert_eq!(
            profile.meta.notes.iter().any(|n| n.starts_with("off-CPU:")),
            on,
            "{args:?}: {:?}",
            profile.meta.notes
        );
    }
}

/// The live pipeline as `top` runs it: each refresh charges the part of an open wait elapsed so far, so a
/// one-second sleep shows up refresh by refresh, and the parts add up to the second.
pub fn live_refreshes_charge_a_long_wait_as_it_goes() {
    if !perf_available() {
        return;
    }
    let mut session = Session::start(SessionConfig {
        target: Target::Command(vec!["sleep".into(), "1".into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::Null,
        off_cpu: true,
        locks: None,
    })
    .unwrap();
    assert!(session.off_cpu());
    let mut pipeline = Pipeline::new(Config::live(&session));
    let mut records = Vec::new();
    let mut parts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !session.is_finished() && Instant::now() < deadline {
        session
            .read(Duration::from_millis(200), &mut records)
            .unwrap();
        for record in records.drain(..) {
            pipeline.on_record(&record);
        }
        pipeline.advance_to(session.watermark());
        let delta = pipeline.take_delta();
        parts.push(delta.samples.iter().map(|g| g.blocked).sum::<u64>());
    }
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    pipeline.finish_off_cpu(session.stop_time());
    let last = pipeline.take_delta();
    parts.push(last.samples.iter().map(|g| g.blocked).sum::<u64>());
    let total: u64 = parts.iter().sum();
    let charged = parts.iter().filter(|&&p| p > 50_000_000).count();
    assert!(
        charged >= 3,
        "the wait was not charged as it went: parts {parts:?}"
    );
    assert_near("the sleep's blocked seconds", total as f64 / 1e9, 1.0, 0.05);
    assert_eq!(
        last.meta.off_cpu.unknown_length, 0,
        "{:?}",
        last.meta.off_cpu
    );
}

crate::tests![
    a_launched_command_s_sleeps_are_its_blocked_time,
    a_thread_asleep_at_attach_is_charged_from_the_attach_to_the_stop,
    off_cpu_is_on_for_commands_and_asked_for_with_all_cpus,
    live_refreshes_charge_a_long_wait_as_it_goes,
];
