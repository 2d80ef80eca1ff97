//! Time views of a profile written by hand: the report, the callers tree, the off-CPU and wall flamegraphs,
//! against golden files (`STACKTOP_BLESS=1` rewrites them) and shares computed by hand.
//!
//! The profile is `render::profile()` with its CPU periods made milliseconds (10 ms a sample, 100 ms in all),
//! plus off-CPU time (innermost frame first; pid 100):
//! ```text
//! O1  __schedule [k] <- pthread_mutex_lock (libc) <- c <- a <- main <- _start   tid 100, 3 switch-outs, blocked 60 ms
//! O2  __schedule [k] <- pthread_mutex_lock (libc) <- c <- b <- main <- _start   tid 100, 1 switch-out,  blocked 20 ms
//! O3  __schedule [k] <- c <- b <- main <- _start                                tid 100, 2 switch-outs, runnable 10 ms
//! O4  __schedule [k] <- nanosleep (libc) <- main <- _start                      tid 101, 1 switch-out,  blocked 110 ms
//! ```
//! Off-CPU: 200 ms (blocked 190, runnable 10); wall 300 ms. Callers of pthread_mutex_lock off CPU: a 60 ms
//! (75%), b 20 ms (25%); on CPU the profile has no pthread_mutex_lock at all.

use stacktop::profile::query::{callers_of, top_functions, Filter, Matcher, SortKey};
use stacktop::profile::{
    Function, Line, Location, LocationId, Mapping, OffCpuStats, Profile, Values, Weigh,
};
use stacktop::render::{
    write_calltree, write_flamegraph, write_report, CalltreeOptions, FlamegraphOptions,
    ReportOptions,
};

use std::process::Command;

use super::common::{scratch_file, stdout_of, tool_available};
use super::render::{golden, profile};

const MS: u64 = 1_000_000;

/// The location of `name` in `module` (the mapping and function are interned again if known).
fn loc(p: &mut Profile, module: &str, address: u64, name: &str) -> LocationId {
    let kernel = module.starts_with("[kernel");
    let path = p.intern(module);
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: address & !0xffff,
        limit: (address & !0xffff) + 0x1_0000,
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

/// The location `render::profile()` interned for function `name`, found by name.
fn existing(p: &Profile, name: &str) -> LocationId {
    let i = p
        .locations
        .iter()
        .position(|l| {
            l.lines
                .first()
                .is_some_and(|x| p.str(p.function(x.function).name) == name)
        })
        .expect("location");
    LocationId(i as u32)
}

pub fn off_cpu_profile() -> Profile {
    let mut p = profile();
    for g in &mut p.samples {
        g.period *= MS;
    }
    p.meta.off_cpu = OffCpuStats {
        enabled: true,
        open_at_stop: 1,
        ended_at_exit: 0,
        unknown_length: 2,
        blocked_at_attach: 0,
    };
    let (start, main, a, b, c) = (
        existing(&p, "_start"),
        existing(&p, "main"),
        existing(&p, "a"),
        existing(&p, "b"),
        existing(&p, "c"),
    );
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let lock = loc(&mut p, libc, 0x7f00_0000_1000, "pthread_mutex_lock");
    let sleep = loc(&mut p, libc, 0x7f00_0000_2000, "nanosleep");
    let sched = loc(
        &mut p,
        "[kernel.kallsyms]",
        0xffff_ffff_8100_5000,
        "__schedule",
    );
    let app = p.intern("app");
    let off = |switches: u64, blocked: u64, runnable: u64| Values {
        switches,
        blocked: blocked * MS,
        runnable: runnable * MS,
        ..Values::default()
    };
    p.add_sample_values(
        &[sched, lock, c, a, main, start],
        100,
        100,
        app,
        off(3, 60, 0),
    );
    p.add_sample_values(
        &[sched, lock, c, b, main, start],
        100,
        100,
        app,
        off(1, 20, 0),
    );
    p.add_sample_values(&[sched, c, b, main, start], 100, 100, app, off(2, 0, 10));
    p.add_sample_values(&[sched, sleep, main, start], 100, 101, app, off(1, 110, 0));
    p
}

fn weighed(by: Weigh, mark: bool) -> Profile {
    let mut p = off_cpu_profile();
    p.weigh(by, mark);
    p
}

fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

pub fn off_cpu_shares_by_hand() {
    let p = weighed(Weigh::OffCpu, false);
    assert_eq!(p.total_period(), 200 * MS);
    let top = top_functions(&p, &Filter::default(), &[SortKey::Sym], true);
    let total = |name: &str| {
        top.rows
            .iter()
            .find(|r| r.key.sym.is_some_and(|s| p.func_name(&s) == name))
            .map_or(0.0, |r| r.total.percent_of(top.total))
    };
    assert!((total("pthread_mutex_lock") - 40.0).abs() < 1e-9);
    assert!((total("nanosleep") - 55.0).abs() < 1e-9);
    assert!((total("c") - 45.0).abs() < 1e-9);
    let tree = callers_of(
        &p,
        &Filter::default(),
        &Matcher::exact("pthread_mutex_lock"),
    );
    let callers: Vec<(String, u64)> = tree
        .roots
        .iter()
        .flat_map(|&r| tree.nodes[r].children.clone())
        .map(|n| {
            (
                p.func_name(&tree.nodes[n].func).to_owned(),
                tree.nodes[n].weight.period,
            )
        })
        .collect();
    // c is the only caller of the lock; its callers a and b split 75/25.
    assert_eq!(callers, [("c".to_owned(), 80 * MS)]);
    // The CPU view of the same profile: no lock at all, c's callers a 30 and b 20.
    let cpu = weighed(Weigh::Cpu, false);
    assert_eq!(cpu.total_period(), 100 * MS);
    let tree = callers_of(
        &cpu,
        &Filter::default(),
        &Matcher::exact("pthread_mutex_lock"),
    );
    assert!(tree.roots.is_empty());
    // Wall: CPU and off-CPU summed.
    assert_eq!(weighed(Weigh::Wall, false).total_period(), 300 * MS);
    assert_eq!(weighed(Weigh::Runnable, false).total_period(), 10 * MS);
}

pub fn off_cpu_report_golden() {
    let p = weighed(Weigh::OffCpu, false);
    let opts = ReportOptions {
        sort: vec![SortKey::Tid, SortKey::Sym],
        ..ReportOptions::default()
    };
    let report = render(|w| write_report(w, &p, &opts));
    for line in [
        "# Off-CPU: 7 switch-outs; blocked 190.0 ms, runnable 10.0 ms; CPU 100.0 ms; wall 300.0 ms",
        "# Weight: off-cpu (time off CPU, blocked and runnable); times in ms, percentages of 200.0 ms",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    golden("report-off-cpu.txt", report.as_bytes());
    let callers = CalltreeOptions {
        matcher: Matcher::exact("pthread_mutex_lock"),
        direction: stacktop::profile::query::Direction::Callers,
        filter: Filter::default(),
        show_module: true,
    };
    let tree = render(|w| write_calltree(w, &p, &callers));
    assert!(
        tree.contains(
            "# Callers of pthread_mutex_lock: 80.0 ms in 4 samples and switch-outs, 40.00% of all"
        ),
        "{tree}"
    );
    golden("callers-off-cpu.txt", tree.as_bytes());
}

pub fn off_cpu_and_wall_flamegraphs_golden() {
    let off = weighed(Weigh::OffCpu, true);
    let svg = render(|w| write_flamegraph(w, &off, &FlamegraphOptions::default()));
    // Every frame of the off-CPU view is off-CPU only; the waits sit on top in their own colours.
    assert!(svg.contains("Off-CPU Flame Graph"), "title");
    assert!(svg.contains("[blocked] (110 ms, 55.00%)"), "blocked frame");
    assert!(svg.contains("[runnable] (10 ms, 5.00%)"), "runnable frame");
    assert!(svg.contains("fill=\"rgb(40,60,190)\""), "blocked colour");
    assert!(svg.contains("fill=\"rgb(160,80,210)\""), "runnable colour");
    golden("flamegraph-off-cpu.svg", svg.as_bytes());

    let wall = weighed(Weigh::Wall, true);
    let svg = render(|w| write_flamegraph(w, &wall, &FlamegraphOptions::default()));
    assert!(svg.contains("Wall-clock Flame Graph"), "title");
    assert!(
        svg.contains("main (300 ms, 100.00%)"),
        "main merges CPU and off-CPU time"
    );
    // pthread_mutex_lock and nanosleep run only off CPU: annotated so inferno colours them apart, names
    // shown without the annotation.
    assert!(svg.contains("pthread_mutex_lock (60 ms, 20.00%)"), "{svg}");
    assert!(!svg.contains("_[w]<"), "annotation shown");
    golden("flamegraph-wall.svg", svg.as_bytes());
}

/// `go tool pprof -sample_index=T -top` for each type of the written file: each gives its own total and
/// hottest function, and the default stays CPU.
pub fn go_pprof_reads_each_sample_type() {
    if !tool_available("go") {
        return;
    }
    let file = scratch_file("off_cpu_types.pb.gz");
    let p = off_cpu_profile();
    stacktop::format::pprof::write_pprof_file(&p, &file).expect("write pprof");
    // (sample index, the total pprof states, the function heaviest in flat time)
    for (index, total, hottest) in [
        (None, "100ms", "c"),
        (Some("cpu"), "100ms", "c"),
        (Some("off-cpu"), "200ms", "__schedule"),
        (Some("blocked"), "190ms", "__schedule"),
        (Some("runnable"), "10ms", "__schedule"),
        (Some("wall"), "300ms", "__schedule"),
    ] {
        let mut cmd = Command::new("go");
        cmd.args(["tool", "pprof", "-top"]);
        if let Some(index) = index {
            cmd.arg(format!("-sample_index={index}"));
        }
        let top = stdout_of(cmd.arg(&file));
        assert!(
            top.contains(&format!("of {total} total")),
            "-sample_index={index:?}: not {total} in all:\n{top}"
        );
        let first = top
            .lines()
            .skip_while(|l| !l.contains("flat%"))
            .nth(1)
            .unwrap_or_default();
        assert!(
            first.ends_with(&format!(" {hottest}")),
            "-sample_index={index:?}: {hottest} is not first in:\n{top}"
        );
    }
}

crate::tests![
    go_pprof_reads_each_sample_type,
    off_cpu_shares_by_hand,
    off_cpu_report_golden,
    off_cpu_and_wall_flamegraphs_golden,
];
