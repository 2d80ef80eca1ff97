//! Off-CPU outputs (issue 13's acceptance item 5, but for `top`'s tmux test): `go tool pprof -sample_index`
//! reads each sample type of stacktop's pprof files, and golden files for the off-CPU report, its callers
//! tree, the per-thread totals and the off-CPU and wall flamegraphs of a small profile written by hand.
//!
//! The goldens are made through the command line (`--weight`), from a pprof file written through the library,
//! so they hold whatever the renderers' options become. Re-bless them with
//! `STACKTOP_BLESS=1 cargo test --release -- offcpu_output`.
//!
//! The profile (innermost frame first; pid 100, module `/usr/bin/app` unless said; cpu-clock at 1000 Hz,
//! 1 ms a sample; off-CPU recorded, one interval open at the stop and two of unknown length):
//! ```text
//! G1 hold_lock <- holder <- start_thread [libc]                       tid 101 holder  6 samples 6 ms; 2 switch-outs runnable 2 ms
//! G2 futex_wait [k] <- __lll_lock_wait [libc] <- pthread_mutex_lock [libc] <- wait_often <- waiter <- start_thread
//!                                                                     tid 102 waiter  30 switch-outs blocked 27 ms runnable 3 ms
//! G3 the same through wait_rarely                                     tid 103 waiter  10 switch-outs blocked 9 ms runnable 1 ms
//! G4 wait_often <- waiter <- start_thread                             tid 102 waiter  1 sample 1 ms
//! G5 do_nanosleep [k] <- nanosleep [libc] <- nap <- main <- _start    tid 100 app     4 switch-outs blocked 20 ms
//! G6 main <- _start                                                   tid 100 app     1 sample 1 ms
//! ```
//! By hand: CPU 8 ms (hold_lock 75%); blocked 56 ms, runnable 6 ms, off-CPU 62 ms, wall 70 ms; off-CPU of
//! pthread_mutex_lock 40 ms (64.52% of off-CPU), wait_often 30 ms of it (75%), wait_rarely 10 ms (25%);
//! thread 102's wall 31 ms (44.29% of wall).

use std::path::{Path, PathBuf};
use std::process::Command;

use stacktop::format::pprof::write_pprof_file;
use stacktop::profile::{
    Function, Line, Location, LocationId, Mapping, Meta, OffCpuStats, Profile, Values, Weigh,
    BLOCKED, RUNNABLE,
};

use crate::common::*;
use crate::offcpu_workloads::{caller_line, callers, recorded, weighed, with_off_cpu, LOCK};
use crate::render::golden;

const APP: &str = "/usr/bin/app";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const KERNEL: &str = "[kernel.kallsyms]";
const MS: u64 = 1_000_000;

fn location(p: &mut Profile, module: &str, address: u64, name: &str) -> LocationId {
    let kernel = module == KERNEL;
    let path = p.intern(module);
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: if kernel {
            0xffff_ffff_8100_0000
        } else {
            0x40_0000
        },
        limit: if kernel {
            0xffff_ffff_8200_0000
        } else {
            0x50_0000
        },
        offset: 0,
        kernel,
    });
    let name = p.intern(name);
    let function = p.add_function(Function { name, file: None });
    p.add_location(Location {
        mapping: Some(mapping),
        address,
        lines: vec![Line { function, line: 0 }],
    })
}

/// The profile of the module docs.
pub fn profile() -> Profile {
    let mut p = Profile::new(Meta {
        event: "cpu-clock".into(),
        period_unit: "nanoseconds".into(),
        frequency: 1000,
        call_graph: "hybrid,16384".into(),
        command_line: "stacktop record -o app.pb.gz -- ./app".into(),
        notes: vec!["synthetic profile for the off-CPU golden tests".into()],
        off_cpu: OffCpuStats {
            enabled: true,
            open_at_stop: 1,
            ended_at_exit: 0,
            unknown_length: 2,
            blocked_at_attach: 0,
        },
        ..Meta::default()
    });
    let start = location(&mut p, APP, 0x40_1000, "_start");
    let main = location(&mut p, APP, 0x40_1100, "main");
    let nap = location(&mut p, APP, 0x40_1200, "nap");
    let holder = location(&mut p, APP, 0x40_1300, "holder");
    let hold_lock = location(&mut p, APP, 0x40_1400, "hold_lock");
    let waiter = location(&mut p, APP, 0x40_1500, "waiter");
    let often = location(&mut p, APP, 0x40_1600, "wait_often");
    let often_cpu = location(&mut p, APP, 0x40_1610, "wait_often");
    let rarely = location(&mut p, APP, 0x40_1700, "wait_rarely");
    let start_thread = location(&mut p, LIBC, 0x40_2000, "start_thread");
    let lock = location(&mut p, LIBC, 0x40_2100, "pthread_mutex_lock");
    let lll = location(&mut p, LIBC, 0x40_2200, "__lll_lock_wait");
    let nanosleep = location(&mut p, LIBC, 0x40_2300, "nanosleep");
    let futex = location(&mut p, KERNEL, 0xffff_ffff_8100_1000, "futex_wait");
    let sleep = location(&mut p, KERNEL, 0xffff_ffff_8100_2000, "do_nanosleep");
    let (app, holder_comm, waiter_comm) = (p.intern("app"), p.intern("holder"), p.intern("waiter"));
    let off = |switches, blocked, runnable| Values {
        switches,
        blocked: blocked * MS,
        runnable: runnable * MS,
        ..Values::default()
    };
    let held = Values {
        count: 6,
        period: 6 * MS,
        ..off(2, 0, 2)
    };
    p.add_sample_values(
        &[hold_lock, holder, start_thread],
        100,
        101,
        holder_comm,
        held,
    );
    let waits = [futex, lll, lock];
    let often_stack = [&waits[..], &[often, waiter, start_thread][..]].concat();
    let rarely_stack = [&waits[..], &[rarely, waiter, start_thread][..]].concat();
    p.add_sample_values(&often_stack, 100, 102, waiter_comm, off(30, 27, 3));
    p.add_sample_values(&rarely_stack, 100, 103, waiter_comm, off(10, 9, 1));
    p.add_sample(
        &[often_cpu, waiter, start_thread],
        100,
        102,
        waiter_comm,
        1,
        MS,
    );
    p.add_sample_values(
        &[sleep, nanosleep, nap, main, start],
        100,
        100,
        app,
        off(4, 20, 0),
    );
    p.add_sample(&[main, start], 100, 100, app, 1, MS);
    p.set_program(100, "app", Some(APP));
    p
}

/// The profile of the module docs as a pprof file.
fn profile_file() -> PathBuf {
    let file = scratch_file("offcpu-synthetic.pb.gz");
    write_pprof_file(&profile(), &file).expect("write the synthetic profile");
    file
}

/// stdout of a stacktop subcommand given `--weight`, failing with a plain message where the option is not
/// there yet.
fn weighed_output(args: &[&str], file: &Path) -> Vec<u8> {
    let out = stacktop(args).arg("-i").arg(file).output().expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stacktop {args:?} failed ({}){}: {stderr}",
        out.status,
        if stderr.contains("--weight") {
            " (no --weight yet: issue 13's time views)"
        } else {
            ""
        }
    );
    out.stdout
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("utf-8")
}

/// The library's sums are the figures of the module docs (the goldens rest on them).
pub fn synthetic_profile_weighs_as_written_by_hand() {
    let p = profile();
    let totals = p.totals();
    assert_eq!(
        (totals.count, totals.period, totals.switches),
        (8, 8 * MS, 46)
    );
    assert_eq!((totals.blocked, totals.runnable), (56 * MS, 6 * MS));
    for (by, period) in [
        (Weigh::Cpu, 8),
        (Weigh::OffCpu, 62),
        (Weigh::Blocked, 56),
        (Weigh::Runnable, 6),
        (Weigh::Wall, 70),
    ] {
        let mut view = p.clone();
        view.weigh(by, false);
        assert_eq!(view.total_period(), period * MS, "{by}");
    }
    let off = weighed(&p, Weigh::OffCpu);
    let callers = callers(&off, "pthread_mutex_lock", &[]);
    let of = |c: &str| callers.get(c).map_or(0, |w| w.period);
    assert_eq!((of("wait_often"), of("wait_rarely")), (30 * MS, 10 * MS));
    // Read back, it is the same profile.
    let back = with_off_cpu(&profile_file());
    assert_eq!(back.totals(), totals);
    assert_eq!(back.meta.off_cpu, p.meta.off_cpu);
}

/// go pprof's total of `-sample_index=INDEX -top` (`... of 62ms total`), in the type's unit (nanoseconds for
/// times).
fn go_pprof_total(file: &Path, index: Option<&str>) -> (String, f64) {
    let mut cmd = Command::new("go");
    cmd.args(["tool", "pprof", "-top"]);
    if let Some(index) = index {
        cmd.arg(format!("-sample_index={index}"));
    }
    let top = stdout_of(cmd.arg(file));
    let kind = top
        .lines()
        .find_map(|l| l.strip_prefix("Type: "))
        .unwrap_or_else(|| panic!("no `Type:` line in:\n{top}"))
        .to_owned();
    let total = top
        .lines()
        .find_map(|l| l.split(" of ").nth(1)?.strip_suffix(" total"))
        .unwrap_or_else(|| panic!("no `of X total` in:\n{top}"));
    let split = total
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(total.len());
    let (number, unit) = total.split_at(split);
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("total {total:?} in:\n{top}"));
    let scale = match unit {
        "" | "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "mins" => 60e9,
        "hrs" => 3600e9,
        _ => panic!("unit of {total:?} in:\n{top}"),
    };
    (kind, number * scale)
}

/// go pprof reads every sample type: CPU by default, then each by name, with the totals the library
/// reads, on the profile written by hand and on a recording of the lock workload.
pub fn go_pprof_reads_each_sample_type() {
    if !tool_available("go") {
        return;
    }
    let check = |file: &Path, profile: &Profile| {
        let (kind, _) = go_pprof_total(file, None);
        assert_eq!(kind, "cpu", "the default sample type of {}", file.display());
        for by in [
            Weigh::Cpu,
            Weigh::OffCpu,
            Weigh::Blocked,
            Weigh::Runnable,
            Weigh::Wall,
        ] {
            let (kind, total) = go_pprof_total(file, Some(by.name()));
            assert_eq!(kind, by.name(), "{}", file.display());
            let ours = weighed(profile, by).total_period() as f64;
            eprintln!(
                "{}: {by} go pprof {total:.0} ns, stacktop {ours:.0} ns",
                file.display()
            );
            // go pprof prints three significant digits.
            assert!(
                (total - ours).abs() <= ours * 0.006,
                "{}: {by} total: go pprof {total:.0} ns, stacktop {ours:.0} ns",
                file.display()
            );
        }
    };
    let file = profile_file();
    check(&file, &profile());
    if !perf_available() {
        return;
    }
    let rec = recorded(LOCK);
    check(&rec.file, &with_off_cpu(&rec.file));
}

pub fn off_cpu_report_golden() {
    let file = profile_file();
    let out = weighed_output(&["report", "--weight", "off-cpu"], &file);
    golden("cli-report-off-cpu.txt", &out);
}

pub fn off_cpu_callers_golden() {
    let file = profile_file();
    let out = weighed_output(
        &[
            "report",
            "--weight",
            "off-cpu",
            "--callers",
            "pthread_mutex_lock",
        ],
        &file,
    );
    let tree = text(&out);
    assert!(tree.contains("ms"), "no milliseconds in:\n{tree}");
    let line = |caller: &str| {
        let at = caller_line(tree, caller);
        tree.lines().nth(at).unwrap_or_default().to_owned()
    };
    assert!(line("wait_often").contains("75.00%"), "{tree}");
    assert!(line("wait_rarely").contains("25.00%"), "{tree}");
    assert!(
        caller_line(tree, "wait_often") < caller_line(tree, "wait_rarely"),
        "{tree}"
    );
    golden("cli-callers-off-cpu-pthread_mutex_lock.txt", &out);
}

pub fn wall_per_thread_report_golden() {
    let file = profile_file();
    let out = weighed_output(
        &[
            "report",
            "--weight",
            "wall",
            "--sort",
            "tid",
            "--no-children",
            "-g",
            "none",
        ],
        &file,
    );
    let report = text(&out);
    let row = report
        .lines()
        .find(|l| !l.starts_with('#') && l.split_whitespace().last() == Some("102"))
        .unwrap_or_else(|| panic!("no row of thread 102:\n{report}"));
    // 31 ms of the 70 ms of wall time.
    assert!(row.contains("44.29%"), "{report}");
    golden("cli-report-wall-sort-tid.txt", &out);
}

pub fn off_cpu_and_wall_flamegraphs_golden() {
    let file = profile_file();
    let svg_of = |weight: &str, name: &str| {
        let svg = scratch_file(name);
        weighed_output(
            &[
                "flamegraph",
                "--weight",
                weight,
                "-o",
                svg.to_str().expect("utf-8 path"),
            ],
            &file,
        );
        std::fs::read(&svg).expect("read the flamegraph")
    };
    let off = svg_of("off-cpu", "offcpu-off-cpu.svg");
    assert!(
        text(&off).contains(" ms"),
        "the off-CPU flamegraph does not count in ms"
    );
    assert!(text(&off).contains("wait_often"));
    golden("cli-flamegraph-off-cpu.svg", &off);
    let wall = svg_of("wall", "offcpu-wall.svg");
    for frame in [BLOCKED, RUNNABLE, "hold_lock"] {
        assert!(
            text(&wall).contains(frame),
            "no {frame} in the wall flamegraph"
        );
    }
    golden("cli-flamegraph-wall.svg", &wall);
}

crate::tests![
    synthetic_profile_weighs_as_written_by_hand,
    go_pprof_reads_each_sample_type,
    off_cpu_report_golden,
    off_cpu_callers_golden,
    wall_per_thread_report_golden,
    off_cpu_and_wall_flamegraphs_golden,
];
