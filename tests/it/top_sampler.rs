//! The pipeline as `top` drives it, one profile per refresh: its caches stay bounded while short-lived
//! processes come and go, and modules load in the background, their addresses named by placeholders until then.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stacktop::acquire::record::{MmapRecord, Record, SampleRecord, PERF_CONTEXT_USER};
use stacktop::acquire::{CommandOutput, Session, SessionConfig, Target};
use stacktop::pipeline::{Config, Footprint, Generations, Loading, Pipeline};
use stacktop::profile::{Delta, Meta, Profile, SampleSet, SMALL_STACKS};
use stacktop::symbolize::{ModuleSpec, Symbolizer};
use stacktop::tui::{App, Status, Update};
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

/// Records `script` (run by `sh -c`) in hybrid mode, taking a profile every `refresh` as `top` does (modules
/// load in the background); calls `each` with every profile, the resolutions of earlier placeholders and the
/// footprint right after it was taken.
fn drive(script: &str, refresh: Duration, mut each: impl FnMut(Delta, Footprint)) {
    let config = SessionConfig {
        target: Target::Command(vec!["sh".into(), "-c".into(), script.into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::Null,
        off_cpu: false,
        locks: None,
    };
    let mut session = Session::start(config).unwrap();
    let limits = fp::Limits {
        kernel_max_stack: session.max_stack(),
        ..fp::Limits::default()
    };
    let mut pipeline = Pipeline::new(Config {
        loading: Loading::Background,
        ..Config::new(Meta::default(), limits, Some(Mode::Hybrid))
    });
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
            let delta = pipeline.take_delta();
            each(delta, pipeline.footprint());
            next = Instant::now() + refresh;
        }
    }
    session.finish(&mut records).unwrap();
    for record in records.drain(..) {
        pipeline.on_record(&record);
    }
    pipeline.finish_loading(|| false);
    // Exited processes go one refresh after their exit was seen.
    for _ in 0..2 {
        let delta = pipeline.take_delta();
        each(delta, pipeline.footprint());
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

pub fn caches_stay_bounded_while_short_lived_processes_come_and_go() {
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
    let mut cumulative = Profile::default();
    let mut refreshes = 0;
    drive(&script, Duration::from_millis(200), |delta, footprint| {
        // As the TUI does.
        cumulative.apply_delta(delta, None).unwrap();
        max.symbol_modules = max.symbol_modules.max(footprint.symbol_modules);
        max.unwind_modules = max.unwind_modules.max(footprint.unwind_modules);
        max.processes = max.processes.max(footprint.processes);
        max.threads = max.threads.max(footprint.threads);
        last = footprint;
        refreshes += 1;
    });
    let mut counts = std::collections::BTreeMap::new();
    spin_samples(&cumulative, &mut counts);
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
    // Neither evicting nor loading in the background costs names: a module mapped again loads again, and the
    // placeholders handed out while a module loaded are named once it is in.
    assert!(
        named * 100 >= samples * 95,
        "{named} of {samples} samples named"
    );
}

/// The file offset of `offset_in` bytes into function `name` of `binary`.
fn function_offset(binary: &std::path::Path, name: &str, offset_in: u64) -> u64 {
    let spec = ModuleSpec {
        path: binary.display().to_string(),
        ..ModuleSpec::default()
    };
    let mut symbolizer = Symbolizer::new();
    let function = symbolizer.functions_named(&spec, name);
    let svma = function.first().expect("function in the binary").start.0 + offset_in;
    let segment = symbolizer
        .segments(&spec)
        .into_iter()
        .find(|s| (s.vaddr..s.vaddr + s.size).contains(&svma))
        .expect("a segment holds the function");
    svma - segment.vaddr + segment.offset
}

/// The innermost function of each sample group's stack, by name.
fn leaf_names(profile: &Profile) -> Vec<String> {
    let mut names: Vec<String> = profile
        .samples
        .iter()
        .filter_map(|g| profile.stack(g.leaf).next())
        .map(|l| {
            let line = profile.location(l).lines[0];
            profile.str(profile.function(line.function).name).to_owned()
        })
        .collect();
    names.sort();
    names
}

pub fn slow_module_loads_show_placeholders_until_their_names_are_ready() {
    // Records of a process that maps the spin workload whole at BASE (so an address is BASE + file offset),
    // sampled in spin_inner, called from burn.
    const PID: u32 = 3_999_999;
    const BASE: u64 = 0x5555_0000_0000;
    let spin = build_c("spin.c", "spin", &[]);
    let ip = BASE + function_offset(&spin, "spin_inner", 4);
    let ret = BASE + function_offset(&spin, "burn", 5);
    let len = std::fs::metadata(&spin)
        .unwrap()
        .len()
        .next_multiple_of(4096);
    let mmap = Record::Mmap(MmapRecord {
        pid: PID,
        tid: PID,
        time: 1,
        start: BASE,
        len,
        pgoff: 0,
        path: spin.display().to_string(),
        build_id: None,
        executable: true,
        dev: 0,
        inode: 0,
    });
    let sample = Record::Sample(SampleRecord {
        pid: PID,
        tid: PID,
        time: 2,
        period: 1_000_000,
        user_mode: true,
        callchain: vec![PERF_CONTEXT_USER, ip, ret],
        ..SampleRecord::default()
    });
    // A loader that waits for the test's word: as slow as the test wants.
    let gated = || {
        let (open, gate) = mpsc::channel::<()>();
        let loader = Symbolizer::new().loader();
        let pipeline = Pipeline::new(Config {
            loading: Loading::BackgroundWith(Box::new(move |spec: &ModuleSpec| {
                let _ = gate.recv();
                loader.load(spec)
            })),
            ..Config::new(Meta::default(), fp::Limits::default(), None)
        });
        (pipeline, open)
    };
    let (mut pipeline, open) = gated();
    pipeline.on_record(&mmap);
    pipeline.on_record(&sample);
    // The TUI keeps a copy of the sampler's profile, appending each refresh's delta; `mirror` is another.
    let mut app = App::live(Status::default());
    let mut mirror = Profile::default();
    let refresh = |pipeline: &mut Pipeline, app: &mut App, mirror: &mut Profile| {
        let delta = pipeline.take_delta();
        mirror.apply_delta(delta.clone(), None).unwrap();
        app.update(Update {
            delta,
            status: Status::default(),
        });
    };
    refresh(&mut pipeline, &mut app, &mut mirror);
    let placeholder = |address: u64| format!("[unknown] spin+{:#x} (loading)", address - BASE);
    assert_eq!(leaf_names(&mirror), [placeholder(ip)]);
    let caller = mirror.stack(mirror.samples[0].leaf).nth(1).unwrap();
    let caller_name = mirror
        .function(mirror.location(caller).lines[0].function)
        .name;
    assert_eq!(mirror.str(caller_name), placeholder(ret - 1));
    assert_eq!(pipeline.footprint().loading, 1);
    // The TUI shows the placeholder meanwhile.
    assert_eq!(app.rows[0].symbol, placeholder(ip));
    // Still loading: the samples go on, named by placeholders again.
    pipeline.on_record(&sample);
    refresh(&mut pipeline, &mut app, &mut mirror);
    assert_eq!(leaf_names(&mirror), [placeholder(ip)]);
    assert_eq!(mirror.total_count(), 2);

    open.send(()).unwrap();
    let started = Instant::now();
    // The deltas carry the renames; nothing piles up.
    while pipeline.footprint().loading > 0 {
        refresh(&mut pipeline, &mut app, &mut mirror);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the module never loaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    refresh(&mut pipeline, &mut app, &mut mirror);
    assert_eq!(pipeline.footprint().pending_renames, 0);
    // The locations handed out earlier are renamed in the copies, stacks and ids untouched.
    assert_eq!(leaf_names(&mirror), ["spin_inner"]);
    assert_eq!(mirror.total_count(), 2);
    // burn's frames: the inlined clock helper, then burn itself.
    let caller_names: Vec<&str> = mirror
        .location(caller)
        .lines
        .iter()
        .map(|l| mirror.str(mirror.function(l.function).name))
        .collect();
    assert_eq!(caller_names.last(), Some(&"burn"));
    // So is the TUI's view, decaying and cumulative.
    assert_eq!(app.rows[0].symbol, "spin_inner");
    app.set_cumulative_mode(true);
    app.refresh();
    assert_eq!(app.rows[0].symbol, "spin_inner");
    assert!(app.rows.iter().all(|r| !r.symbol.contains("(loading)")));
    // Installed: later samples are named at once, and nothing is left to resolve.
    pipeline.on_record(&sample);
    refresh(&mut pipeline, &mut app, &mut mirror);
    assert_eq!(leaf_names(&mirror), ["spin_inner"]);
    assert_eq!(mirror.total_count(), 3);
    assert_eq!(pipeline.footprint().pending_renames, 0);

    // At the end of a session, the pipeline waits for the loads in progress (unless told to give up).
    let (mut pipeline, open) = gated();
    pipeline.on_record(&mmap);
    pipeline.on_record(&sample);
    pipeline.finish_loading(|| true);
    assert_eq!(pipeline.footprint().loading, 1);
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        open.send(()).unwrap();
    });
    pipeline.finish_loading(|| false);
    opener.join().unwrap();
    assert_eq!(pipeline.footprint().pending_renames, 2);
    assert_eq!(leaf_names(&pipeline.into_profile()), ["spin_inner"]);
}

/// A process that maps `binary` whole at `base`, is sampled once with `callchain` and exits, from `time`.
fn short_lived(
    pid: u32,
    time: u64,
    binary: &std::path::Path,
    base: u64,
    len: u64,
    callchain: &[u64],
) -> [Record; 3] {
    [
        Record::Mmap(MmapRecord {
            pid,
            tid: pid,
            time,
            start: base,
            len,
            pgoff: 0,
            path: binary.display().to_string(),
            build_id: None,
            executable: true,
            dev: 0,
            inode: 0,
        }),
        Record::Sample(SampleRecord {
            pid,
            tid: pid,
            time: time + 1,
            period: 1_000_000,
            user_mode: true,
            callchain: callchain.to_vec(),
            ..SampleRecord::default()
        }),
        Record::Exit {
            pid,
            ppid: 1,
            tid: pid,
            ptid: 1,
            time: time + 2,
        },
    ]
}

/// The same code in many short-lived processes, each mapping the file at its own (randomized) address, is one
/// mapping and one location per instruction in the profile: under `top -a` with process churn, per-process
/// locations and stacks grew the session's profile (and the TUI's copy) without bound.
pub fn the_same_code_in_many_processes_is_one_location() {
    let spin = build_c("spin.c", "spin", &[]);
    let offsets = [
        function_offset(&spin, "spin_inner", 4),
        function_offset(&spin, "burn", 5),
    ];
    let len = std::fs::metadata(&spin)
        .unwrap()
        .len()
        .next_multiple_of(4096);
    let mut pipeline = Pipeline::new(Config::new(Meta::default(), fp::Limits::default(), None));
    let mut mirror = Profile::default();
    let mut sizes = Vec::new();
    for i in 0..200u32 {
        let pid = 3_000_000 + i;
        let base = 0x5555_0000_0000 + u64::from(i) * 0x10_0000;
        let callchain = [PERF_CONTEXT_USER, base + offsets[0], base + offsets[1]];
        for record in short_lived(pid, u64::from(i) * 10, &spin, base, len, &callchain) {
            pipeline.on_record(&record);
        }
        mirror.apply_delta(pipeline.take_delta(), None).unwrap();
        sizes.push((
            mirror.mappings.len(),
            mirror.locations.len(),
            mirror.nodes.len(),
        ));
    }
    assert_eq!(mirror.total_count(), 200);
    // One mapping, the two locations and two nodes of the first process, whatever came after.
    assert_eq!(sizes[0], (1, 2, 2), "{sizes:?}");
    assert!(sizes.iter().all(|&s| s == sizes[0]), "{:?}", sizes.last());
    // All at the same leaf (exited processes folded into pid 0).
    assert!(leaf_names(&mirror).iter().all(|n| n == "spin_inner"));
    // The recorded address is the first process's: its file offset is the sampled one.
    let leaf = mirror.location(mirror.stack(mirror.samples[0].leaf).next().unwrap());
    let mapping = mirror.mapping(leaf.mapping.unwrap());
    assert_eq!(leaf.address - mapping.start + mapping.offset, offsets[0]);
}

/// A module evicted when its last process exits and loaded again by the next, hundreds of times, in the
/// background as `top` loads: nothing of it stays behind (loaded modules, cached locations, names waiting
/// to be handed over), and the profile holds its one mapping and its locations once.
pub fn a_module_evicted_and_loaded_again_leaves_nothing_behind() {
    let spin = build_c("spin.c", "spin", &[]);
    let offset = function_offset(&spin, "spin_inner", 4);
    let len = std::fs::metadata(&spin)
        .unwrap()
        .len()
        .next_multiple_of(4096);
    let mut pipeline = Pipeline::new(Config {
        loading: Loading::Background,
        ..Config::new(Meta::default(), fp::Limits::default(), None)
    });
    let mut mirror = Profile::default();
    let mut footprints = Vec::new();
    for i in 0..300u32 {
        let pid = 4_000_000 + i;
        let base = 0x5555_0000_0000 + u64::from(i) * 0x10_0000;
        let callchain = [PERF_CONTEXT_USER, base + offset];
        for record in short_lived(pid, u64::from(i) * 10, &spin, base, len, &callchain) {
            pipeline.on_record(&record);
        }
        // Each module load finished before the refresh, so every refresh evicts and renames.
        pipeline.finish_loading(|| false);
        mirror.apply_delta(pipeline.take_delta(), None).unwrap();
        footprints.push(pipeline.footprint());
    }
    let last = footprints.last().unwrap();
    // Exited processes go one refresh later, their modules with them.
    assert!(last.processes <= 1 && last.symbol_modules <= 1, "{last:?}");
    assert_eq!(last.loading, 0, "{last:?}");
    assert_eq!(last.pending_renames, 0, "{last:?}");
    assert!(last.cached_locations <= 1, "{last:?}");
    let most = footprints.iter().map(|f| f.cached_locations).max().unwrap();
    assert!(most <= 2, "cached locations grew to {most}");
    assert_eq!(mirror.total_count(), 300);
    assert_eq!((mirror.mappings.len(), mirror.locations.len()), (1, 1));
    // The sample groups of exited processes are folded into pid 0: one group, plus the last process's.
    let names = leaf_names(&mirror);
    assert!(
        (1..=2).contains(&names.len()) && names.iter().all(|n| n == "spin_inner"),
        "{names:?}"
    );
}

/// Under churn every process brings a stack never seen before (a thousand here, as a build's compilers and
/// scripts do): the sampler starts its tables afresh past its budget, and the copy (as the TUI keeps it:
/// decaying sums, and cumulative ones held to a node budget) keeps only the stacks its sums still weigh.
/// Without generations both sides would hold every stack of the session. Every sample stays counted.
pub fn new_stacks_under_churn_leave_both_copies_bounded() {
    let spin = build_c("spin.c", "spin", &[]);
    let caller = function_offset(&spin, "burn", 5);
    let len = std::fs::metadata(&spin)
        .unwrap()
        .len()
        .next_multiple_of(4096);
    assert!(len >= 0x1000 + 4 * 1000, "spin is too small: {len}");
    let mut pipeline = Pipeline::new(Config {
        generations: Generations {
            nodes: 40,
            min_age: Duration::ZERO,
        },
        ..Config::new(Meta::default(), fp::Limits::default(), None)
    });
    let mut decaying = Profile::default();
    let mut cumulative = SampleSet::with_node_limit(50);
    let mut app = App::live(Status::default());
    let (mut most_nodes, mut most_copy, mut fresh) = (0, 0, 0);
    for i in 0..1000u32 {
        let pid = 5_000_000 + i;
        let base = 0x5555_0000_0000 + u64::from(i) * 0x10_0000;
        let leaf = base + 0x1000 + 4 * u64::from(i);
        let callchain = [PERF_CONTEXT_USER, leaf, base + caller];
        for record in short_lived(pid, u64::from(i) * 10, &spin, base, len, &callchain) {
            pipeline.on_record(&record);
        }
        let delta = pipeline.take_delta();
        fresh += usize::from(delta.fresh);
        most_nodes = most_nodes.max(pipeline.footprint().nodes);
        // As the TUI does: decay, then add to both sums.
        let floor = decaying.total_period() / 100_000;
        decaying.scale_samples(7, 8, floor);
        decaying
            .apply_delta(delta.clone(), Some(&mut cumulative))
            .unwrap();
        most_copy = most_copy.max(decaying.nodes.len());
        app.update(Update {
            delta,
            status: Status::default(),
        });
    }
    assert!(fresh >= 20, "{fresh} generations");
    assert!(
        most_nodes <= 41,
        "the sampler's tables grew to {most_nodes} nodes"
    );
    // A thousand distinct stacks (1,001 nodes) without generations; the decaying sums keep the last ~80
    // (1/8 lost per refresh), the cumulative ones 50 nodes, the current generation at most 41.
    assert!(most_copy <= 200, "the copy grew to {most_copy} nodes");
    // Every sample is in the cumulative sums, the lightest stacks under one frame.
    decaying.swap_samples(&mut cumulative);
    assert_eq!(decaying.total_count(), 1000);
    let names = leaf_names(&decaying);
    assert!(names.iter().any(|n| n == SMALL_STACKS), "{names:?}");
    assert!(
        names.iter().filter(|n| *n != SMALL_STACKS).count() >= 20,
        "{names:?}"
    );
    // Stacks are whole after each compaction: every kept one still has its caller.
    for group in &decaying.samples {
        let stack: Vec<_> = decaying.stack(group.leaf).collect();
        let root = decaying.location(*stack.last().unwrap());
        let name = decaying.str(decaying.function(root.lines.last().unwrap().function).name);
        assert!(name == "burn" || name == SMALL_STACKS, "{name}");
    }
    // The TUI took every update in step, and its cumulative view counts every sample.
    assert_eq!(app.message, None);
    app.set_cumulative_mode(true);
    app.refresh();
    assert_eq!(app.profile().total_count(), 1000);
}

crate::tests![
    a_module_evicted_and_loaded_again_leaves_nothing_behind,
    caches_stay_bounded_while_short_lived_processes_come_and_go,
    new_stacks_under_churn_leave_both_copies_bounded,
    slow_module_loads_show_placeholders_until_their_names_are_ready,
    the_same_code_in_many_processes_is_one_location,
];
