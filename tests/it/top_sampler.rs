//! The pipeline as `top` drives it, one profile per refresh: its caches stay bounded while short-lived
//! processes come and go.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stacktop::acquire::record::Record;
use stacktop::acquire::{CommandOutput, Session, SessionConfig, Target};
use stacktop::cmd::pipeline::{Footprint, Pipeline};
use stacktop::profile::{Meta, Profile};
use stacktop::unwind::fp;
use stacktop::unwind::modules::Mode;

use crate::common::*;

/// `count` copies of the spin workload, each under its own name: to the symbolizer, distinct modules.
fn spin_copies(count: usize) -> Vec<PathBuf> {
    let spin = build_c("spin.c", "spin", &[]);
    let dir = scratch_file("spin-copies");
    std::fs::create_dir_all(&dir).unwrap();
    (0..count)
        .map(|i| {
            let copy = dir.join(format!("spin-{i:03}"));
            std::fs::copy(&spin, &copy).unwrap();
            copy
        })
        .collect()
}

/// Records `script` (run by `sh -c`) in hybrid mode, taking a profile every `refresh` as `top` does; calls
/// `each` with every profile and the footprint right after it was taken.
fn drive(script: &str, refresh: Duration, mut each: impl FnMut(Profile, Footprint)) {
    let config = SessionConfig {
        target: Target::Command(vec!["sh".into(), "-c".into(), script.into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::Null,
    };
    let mut session = Session::start(config).unwrap();
    let limits = fp::Limits {
        kernel_max_stack: session.max_stack(),
        ..fp::Limits::default()
    };
    let mut pipeline = Pipeline::new(Meta::default(), limits, Some(Mode::Hybrid));
    let mut records: Vec<Record> = Vec::new();
    let mut next = Instant::now() + refresh;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !session.is_finished() && Instant::now() < deadline {
        session
            .read(Duration::from_millis(50), &mut records)
            .unwrap();
        for record in records.drain(..) {
            pipeline.on_record(&record);
        }
        if Instant::now() >= next {
            let profile = pipeline.take_profile();
            each(profile, pipeline.footprint());
            next = Instant::now() + refresh;
        }
    }
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    // Exited processes go one refresh after their exit was seen.
    for _ in 0..2 {
        let profile = pipeline.take_profile();
        each(profile, pipeline.footprint());
    }
}

/// Per module path (of the spin copies only): samples, and samples whose innermost frame has a name.
fn spin_samples(profile: &Profile, counts: &mut std::collections::BTreeMap<String, (u64, u64)>) {
    for group in &profile.samples {
        let Some(leaf) = profile.stack(group.leaf).next() else {
            continue;
        };
        let location = profile.location(leaf);
        let Some(mapping) = location.mapping else {
            continue;
        };
        let path = profile.str(profile.mapping(mapping).path);
        if !path.contains("/spin-copies/") {
            continue;
        }
        let named = location.lines.iter().all(|l| {
            !profile
                .str(profile.function(l.function).name)
                .starts_with("[unknown]")
        });
        let entry = counts.entry(path.to_owned()).or_default();
        entry.0 += group.count;
        entry.1 += if named { group.count } else { 0 };
    }
}

#[test]
fn caches_stay_bounded_while_short_lived_processes_come_and_go() {
    if !perf_available() {
        return;
    }
    const COPIES: usize = 120;
    let copies = spin_copies(COPIES);
    // Each copy burns 30 ms of CPU in two threads, then exits: a new module, process and thread every time.
    let script = format!(
        "for f in {}/spin-*; do \"$f\" 0.03 2; done",
        copies[0].parent().unwrap().display()
    );
    let mut max = Footprint::default();
    let mut last = Footprint::default();
    let mut counts = std::collections::BTreeMap::new();
    let mut refreshes = 0;
    drive(&script, Duration::from_millis(200), |profile, footprint| {
        spin_samples(&profile, &mut counts);
        max.symbol_modules = max.symbol_modules.max(footprint.symbol_modules);
        max.unwind_modules = max.unwind_modules.max(footprint.unwind_modules);
        max.processes = max.processes.max(footprint.processes);
        max.threads = max.threads.max(footprint.threads);
        last = footprint;
        refreshes += 1;
    });
    let seen: BTreeSet<&String> = counts.keys().collect();
    let samples: u64 = counts.values().map(|c| c.0).sum();
    let named: u64 = counts.values().map(|c| c.1).sum();
    eprintln!(
        "{} of {COPIES} copies sampled ({samples} samples, {named} named) over {refreshes} refreshes; \
         most at once: {max:?}; at the end: {last:?}",
        seen.len()
    );
    assert!(
        seen.len() >= COPIES * 3 / 4,
        "only {} copies were sampled",
        seen.len()
    );
    // Without eviction every copy would stay loaded: more than COPIES modules by the end.
    assert!(
        max.symbol_modules < 30 && max.unwind_modules < 30,
        "caches grew: {max:?}"
    );
    assert!(max.processes < 30 && max.threads < 30, "{max:?}");
    assert!(
        last.symbol_modules <= 2 && last.unwind_modules <= 2 && last.processes <= 1,
        "left after every process exited: {last:?}"
    );
    // Evicting never costs names: a module mapped again loads again.
    assert!(
        named * 100 >= samples * 95,
        "{named} of {samples} samples named"
    );
}
