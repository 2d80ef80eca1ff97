//! JIT code in anonymous executable memory, named from `/tmp/perf-PID.map`. The workload (assets/jit.c) copies
//! two hot loops into a read-write-execute page (`jit_rwx_loop`) and a read-write page mprotect'ed to
//! read-execute (`jit_mprotect_loop`), runs them 75/25 from main and names them in its map, before it runs
//! them or (`late`) halfway through. It is profiled launched, attached, through `top`'s live sampler and from a
//! perf.data file; the pipeline is also fed records by hand, for what a real process cannot be made to do on
//! demand (two processes with unnamed JIT code at one address). The workload leaves its map for `perf report`;
//! each test removes it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use stacktop::acquire::record::{MmapRecord, Record, SampleRecord, PERF_CONTEXT_USER};
use stacktop::acquire::{CommandOutput, SessionConfig, Target};
use stacktop::pipeline::live::Sampler;
use stacktop::pipeline::{Config, Pipeline};
use stacktop::profile::{Meta, Profile};
use stacktop::symbolize::Symbolizer;
use stacktop::tui::App;
use stacktop::unwind::fp;

use crate::common::*;

/// A workload's perf map, removed when the test ends, however it ends.
struct MapFile(PathBuf);

impl MapFile {
    /// The map the workload named in its `map PATH` line of `output`.
    fn named_in(output: &str) -> MapFile {
        let path = output
            .lines()
            .find_map(|l| l.strip_prefix("map "))
            .unwrap_or_else(|| panic!("no `map PATH` line in the workload's output: {output:?}"));
        MapFile(PathBuf::from(path.trim()))
    }
}

impl Drop for MapFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn jit_workload() -> PathBuf {
    if !cfg!(target_arch = "x86_64") {
        skip("assets/jit.c writes x86-64 machine code");
    }
    build_c("jit.c", "jit", &[])
}

/// The JIT loops' self shares in `file` (period-weighted, percent of all samples), checked: at least `min`
/// samples, the loops 75/25 within 5 points, and next to nothing left unknown. Returns them.
fn check_shares(file: &Path, min: u64) -> (f64, f64) {
    let report = stdout_of(stacktop(&["report", "--no-children", "--sort", "sym", "-i"]).arg(file));
    let rows = self_shares(&report);
    let rwx = share_of(&rows, "jit_rwx_loop");
    let mprotect = share_of(&rows, "jit_mprotect_loop");
    let unknown = share_of(&rows, "[unknown]");
    eprintln!(
        "{}: jit_rwx_loop {rwx:.2}%, jit_mprotect_loop {mprotect:.2}%, [unknown] {unknown:.2}%",
        file.display()
    );
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(file));
    let count = |needle: &str| -> u64 {
        folded
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let samples = count("");
    assert!(samples >= min, "{samples} samples, fewer than {min}");
    let sum = rwx + mprotect;
    assert!(sum > 90.0, "the JIT loops have only {sum:.1}%: {rows:?}");
    assert_near("jit_rwx_loop", rwx * 100.0 / sum, 75.0, 5.0);
    assert_near("jit_mprotect_loop", mprotect * 100.0 / sum, 25.0, 5.0);
    assert!(unknown < 2.0, "[unknown] has {unknown:.1}%: {rows:?}");
    // The loops keep a frame pointer: whichever way the stack is walked, main called them.
    let in_loops = count(";jit_");
    let from_main = count(";main;jit_");
    assert!(
        from_main * 100 >= in_loops * 95,
        "{from_main} of {in_loops} samples of the loops have main as their caller:\n{folded}"
    );
    (rwx, mprotect)
}

/// `stacktop record -- ./jit 2 [late]`, in `mode`.
fn record_launched(name: &str, mode: &str, late: bool) -> (PathBuf, MapFile) {
    let bin = jit_workload();
    let file = scratch_file(&format!("{name}.pb.gz"));
    let mut cmd = stacktop(&[
        "record",
        "-e",
        "cpu-clock",
        "-F",
        "999",
        "--call-graph",
        mode,
    ]);
    cmd.arg("-o").arg(&file).arg("--").arg(&bin).arg("2");
    if late {
        cmd.arg("late");
    }
    let out = cmd.output().expect("spawn stacktop");
    let map = MapFile::named_in(&String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (file, map)
}

pub fn launched_jit_code_is_named_from_the_perf_map() {
    if !perf_available() {
        return;
    }
    for mode in ["hybrid", "fp", "dwarf"] {
        let (file, _map) = record_launched(&format!("jit-{mode}"), mode, false);
        check_shares(&file, 1000);
    }
    // The flamegraph reads the same profile.
    let (file, _map) = record_launched("jit-flamegraph", "hybrid", false);
    let svg = scratch_file("jit.svg");
    run(stacktop(&["flamegraph", "-i"])
        .arg(&file)
        .arg("-o")
        .arg(&svg));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("jit_rwx_loop") && svg.contains("jit_mprotect_loop"),
        "the flamegraph lacks the JIT loops"
    );
}

/// The map lists the loops only halfway through: the samples taken before get the names too, as they do in
/// `perf report`, which reads the map at the end.
pub fn jit_code_sampled_before_its_map_line_is_named_once_listed() {
    if !perf_available() {
        return;
    }
    let (file, _map) = record_launched("jit-late", "hybrid", true);
    check_shares(&file, 1000);
}

pub fn attached_jit_code_is_named_from_the_perf_map() {
    if !perf_available() {
        return;
    }
    let bin = jit_workload();
    for late in [false, true] {
        let mut cmd = Command::new(&bin);
        cmd.arg("3").stdout(Stdio::piped());
        if late {
            cmd.arg("late");
        }
        let mut child = cmd.spawn().unwrap();
        // The code is in place once the workload names its map.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _map = MapFile::named_in(&line);
        let file = scratch_file(&format!("jit-attached-{late}.pb.gz"));
        let out = stacktop(&["record", "-e", "cpu-clock", "-F", "999", "-p"])
            .arg(child.id().to_string())
            .arg("-o")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            child.wait().unwrap().success()
                && out.status.success()
                && !String::from_utf8_lossy(&out.stderr).contains("not permitted"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_shares(&file, 1500);
    }
}

/// `top`'s live sampler: its own JIT map recheck interval, its deltas carrying the renames to the TUI.
pub fn top_names_jit_code_live() {
    if !perf_available() {
        return;
    }
    let bin = jit_workload();
    let output = scratch_file("jit-top.out");
    let _ = std::fs::remove_file(&output);
    let config = SessionConfig {
        target: Target::Command(vec![bin.into_os_string(), "3".into(), "late".into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: "hybrid".parse().unwrap(),
        command_output: CommandOutput::File(output.clone()),
        off_cpu: false,
        locks: None,
    };
    let sampler = Sampler::start(config, Duration::from_millis(500), None).unwrap();
    let mut app = App::live(sampler.status.clone());
    let (updates, handle) = sampler.into_parts();
    for update in updates.iter() {
        let end = update.status.ended.is_some();
        app.update(update);
        if end {
            break;
        }
    }
    handle.stop().unwrap();
    let _map = MapFile::named_in(&std::fs::read_to_string(&output).unwrap());
    assert!(app.ended && app.cumulative_mode());
    let share = |name: &str| -> f64 {
        app.rows
            .iter()
            .filter(|r| r.symbol == name)
            .map(|r| r.self_pct)
            .sum()
    };
    let (rwx, mprotect) = (share("jit_rwx_loop"), share("jit_mprotect_loop"));
    let unknown: f64 = app
        .rows
        .iter()
        .filter(|r| r.symbol.starts_with("[unknown]"))
        .map(|r| r.self_pct)
        .sum();
    eprintln!(
        "top: jit_rwx_loop {rwx:.1}%, jit_mprotect_loop {mprotect:.1}%, [unknown] {unknown:.1}%"
    );
    assert!(app.total.count >= 1500, "{} samples", app.total.count);
    assert!(rwx + mprotect > 90.0, "rows: {:?}", app.rows);
    assert_near("jit_rwx_loop", rwx * 100.0 / (rwx + mprotect), 75.0, 5.0);
    assert!(unknown < 2.0, "rows: {:?}", app.rows);
}

/// `perf record -g` of the workload read by stacktop gives the loops perf's own shares.
pub fn perf_data_jit_code_is_named_as_perf_names_it() {
    if !perf_available() || !tool_available("perf") {
        return;
    }
    let bin = jit_workload();
    let file = scratch_file("jit.perf.data");
    let out = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .args(["2", "late"])
        .output()
        .unwrap();
    let _map = MapFile::named_in(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        skip(&format!(
            "perf record failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (rwx, mprotect) = check_shares(&file, 1000);
    let perf = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "sym",
            "-g",
            "none",
            "-i",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let rows = self_shares(&String::from_utf8_lossy(&perf.stdout));
    let (perf_rwx, perf_mprotect) = (
        share_of(&rows, "jit_rwx_loop"),
        share_of(&rows, "jit_mprotect_loop"),
    );
    eprintln!("perf report: jit_rwx_loop {perf_rwx:.2}%, jit_mprotect_loop {perf_mprotect:.2}%");
    assert_near("jit_rwx_loop against perf", rwx, perf_rwx, 0.2);
    assert_near(
        "jit_mprotect_loop against perf",
        mprotect,
        perf_mprotect,
        0.2,
    );
}

// The pipeline fed by hand: pids no process has, maps in a directory of the test's own.

const BASE: u64 = 0x7f00_0000_0000;

/// An anonymous executable mapping of one page at `start`, as the kernel records it (`//anon`; `pgoff` is
/// the start for anonymous memory, 0 where it comes from `/proc/PID/maps`).
fn anon_mmap(pid: u32, start: u64, pgoff: u64) -> Record {
    Record::Mmap(MmapRecord {
        pid,
        tid: pid,
        time: 1,
        start,
        len: 0x1000,
        pgoff,
        path: "//anon".to_owned(),
        build_id: None,
        executable: true,
        dev: 0,
        inode: 0,
    })
}

fn sample_at(pid: u32, ip: u64) -> Record {
    Record::Sample(SampleRecord {
        pid,
        tid: pid,
        time: 2,
        period: 1_000_000,
        user_mode: true,
        callchain: vec![PERF_CONTEXT_USER, ip],
        ..SampleRecord::default()
    })
}

/// A pipeline whose symbolizer finds JIT maps in `dir` (rechecked at every miss, as `record`'s).
fn pipeline_with_maps(dir: &Path) -> Pipeline {
    Pipeline::new(Config {
        symbolizer: Some(Symbolizer::new().with_perf_map_dir(dir.to_path_buf())),
        ..Config::new(Meta::default(), fp::Limits::default(), None)
    })
}

fn maps_dir(name: &str) -> PathBuf {
    let dir = scratch_file(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Each sample group's leaf function, with its pid, sorted.
fn leaves(profile: &Profile) -> Vec<(u32, String)> {
    let mut leaves: Vec<(u32, String)> = profile
        .samples
        .iter()
        .map(|g| {
            let leaf = profile.stack(g.leaf).next().unwrap();
            let line = profile.location(leaf).lines[0];
            (
                g.pid,
                profile.str(profile.function(line.function).name).to_owned(),
            )
        })
        .collect();
    leaves.sort();
    leaves
}

pub fn live_deltas_rename_jit_code_once_the_map_lists_it() {
    const PID: u32 = 4_100_000_001;
    let dir = maps_dir("jit-maps-live");
    let mut pipeline = pipeline_with_maps(&dir);
    let mut mirror = Profile::default();
    pipeline.on_record(&anon_mmap(PID, BASE, BASE));
    pipeline.on_record(&sample_at(PID, BASE + 0x10));
    mirror.apply_delta(pipeline.take_delta(), None).unwrap();
    assert_eq!(
        leaves(&mirror),
        [(PID, "[unknown] anon+0x7f0000000010".to_owned())]
    );
    // The JIT writes the line; the next refresh renames the location handed out before.
    std::fs::write(
        dir.join(format!("perf-{PID}.map")),
        "7f0000000000 40 jit_f\n",
    )
    .unwrap();
    mirror.apply_delta(pipeline.take_delta(), None).unwrap();
    assert_eq!(leaves(&mirror), [(PID, "jit_f".to_owned())]);
    pipeline.on_record(&sample_at(PID, BASE + 0x10));
    mirror.apply_delta(pipeline.take_delta(), None).unwrap();
    assert_eq!(leaves(&mirror), [(PID, "jit_f".to_owned())]);
    assert_eq!((mirror.total_count(), mirror.locations.len()), (2, 1));
}

pub fn a_recording_names_jit_code_listed_by_its_end() {
    const PID: u32 = 4_100_000_002;
    let dir = maps_dir("jit-maps-record");
    let mut pipeline = pipeline_with_maps(&dir);
    // Attached: the mappings come from /proc/PID/maps, every one with file offset 0. Each address is named as
    // it is in its own mapping, not in the terms of the first anonymous mapping met.
    pipeline.on_record(&anon_mmap(PID, BASE, 0));
    pipeline.on_record(&anon_mmap(PID, BASE + 0x10_0000, 0));
    pipeline.on_record(&sample_at(PID, BASE + 0x10));
    pipeline.on_record(&sample_at(PID, BASE + 0x10_0010));
    std::fs::write(
        dir.join(format!("perf-{PID}.map")),
        "7f0000000000 40 jit_first\n7f0000100000 40 jit_second\n",
    )
    .unwrap();
    let profile = pipeline.into_profile();
    assert_eq!(
        leaves(&profile),
        [
            (PID, "jit_first".to_owned()),
            (PID, "jit_second".to_owned())
        ]
    );
}

/// A JIT's forked child runs the code at the parent's addresses. Unnamed, both processes' samples share one
/// location: one process's map cannot name it for both. It stays unknown, and each process whose map names
/// the code gets a location of its own from then on.
pub fn jit_code_at_one_address_in_two_processes_is_named_per_process() {
    const PARENT: u32 = 4_100_000_003;
    const CHILD: u32 = 4_100_000_004;
    let dir = maps_dir("jit-maps-fork");
    let mut pipeline = pipeline_with_maps(&dir);
    let mut mirror = Profile::default();
    // A refresh (which looks at the maps), then a sample of each process.
    let mut sample_both = |pipeline: &mut Pipeline| {
        mirror.apply_delta(pipeline.take_delta(), None).unwrap();
        pipeline.on_record(&sample_at(PARENT, BASE + 0x10));
        pipeline.on_record(&sample_at(CHILD, BASE + 0x10));
        mirror.apply_delta(pipeline.take_delta(), None).unwrap();
        leaves(&mirror)
    };
    pipeline.on_record(&anon_mmap(PARENT, BASE, BASE));
    pipeline.on_record(&Record::Fork {
        pid: CHILD,
        ppid: PARENT,
        tid: CHILD,
        ptid: PARENT,
        time: 1,
    });
    let unknown = "[unknown] anon+0x7f0000000010".to_owned();
    let before = [(PARENT, unknown.clone()), (CHILD, unknown.clone())];
    assert_eq!(sample_both(&mut pipeline), before);
    std::fs::write(
        dir.join(format!("perf-{CHILD}.map")),
        "7f0000000000 40 child_f\n",
    )
    .unwrap();
    let mut expected = before.to_vec();
    expected.push((CHILD, "child_f".to_owned()));
    expected.sort();
    assert_eq!(sample_both(&mut pipeline), expected);
    std::fs::write(
        dir.join(format!("perf-{PARENT}.map")),
        "7f0000000000 40 parent_f\n",
    )
    .unwrap();
    expected.push((PARENT, "parent_f".to_owned()));
    expected.sort();
    assert_eq!(sample_both(&mut pipeline), expected);
}

crate::tests!(
    launched_jit_code_is_named_from_the_perf_map,
    jit_code_sampled_before_its_map_line_is_named_once_listed,
    attached_jit_code_is_named_from_the_perf_map,
    top_names_jit_code_live,
    perf_data_jit_code_is_named_as_perf_names_it,
    live_deltas_rename_jit_code_once_the_map_lists_it,
    a_recording_names_jit_code_listed_by_its_end,
    jit_code_at_one_address_in_two_processes_is_named_per_process,
);
