//! Record real workloads whose profile is known by construction and check the shares stacktop reports.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// Extra compiler flags: none beyond the workloads' own `-O2 -g -fno-omit-frame-pointer`. (gcc still sets up
/// no frame in a leaf that needs no stack, so in fp mode a hot leaf's caller is skipped; the shares of the
/// leaves themselves are exact.)
const FP: &[&str] = &[];

fn no_children_rows(file: &Path, sort: &str) -> Vec<(String, f64)> {
    let report = stdout_of(stacktop(&["report", "--no-children", "--sort", sort, "-i"]).arg(file));
    self_shares(&report)
}

fn sample_count(file: &Path) -> u64 {
    sample_count_of(file, &[])
}

pub fn split_60_30_10() {
    if !perf_available() {
        return;
    }
    let bin = build_c("split.c", "split", FP);
    let file = record("split", &["--call-graph", "fp"], &[&bin, Path::new("2")]);
    assert!(sample_count(&file) >= 1000, "too few samples");
    let rows = no_children_rows(&file, "sym");
    let a = share_of(&rows, "hot_a");
    let b = share_of(&rows, "warm_b");
    let c = share_of(&rows, "cool_c");
    let sum = a + b + c;
    assert!(
        sum > 90.0,
        "the three functions have only {sum:.1}%: {rows:?}"
    );
    assert_near("hot_a", a * 100.0 / sum, 60.0, 5.0);
    assert_near("warm_b", b * 100.0 / sum, 30.0, 5.0);
    assert_near("cool_c", c * 100.0 / sum, 10.0, 5.0);
}

pub fn inline_frames_split_2_to_1() {
    if !perf_available() {
        return;
    }
    let bin = build_c("inline_split.c", "inline_split", FP);
    let file = record("inline", &["--call-graph", "fp"], &[&bin, Path::new("2")]);
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(&file));
    let count = |needle: &str| -> u64 {
        folded
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let two = count("caller_two;mixed");
    let one = count("caller_one;mixed");
    assert!(
        two + one >= 500,
        "too few samples in the inline frame:\n{folded}"
    );
    let share_two = two as f64 * 100.0 / (two + one) as f64;
    assert_near("mixed under caller_two", share_two, 66.7, 7.0);
    // The callers query sees the inline frame as a function of its own.
    let callers = stdout_of(stacktop(&["report", "--callers", "mixed", "-i"]).arg(&file));
    assert!(
        callers.contains("caller_two") && callers.contains("caller_one"),
        "{callers}"
    );
}

fn thread_shares(file: &Path) {
    let rows = no_children_rows(file, "comm");
    let total: f64 = (1..=8)
        .map(|k| share_of_exact(&rows, &format!("worker-{k}")))
        .sum();
    assert!(total > 90.0, "workers have only {total:.1}%: {rows:?}");
    for k in 1..=8 {
        let share = share_of_exact(&rows, &format!("worker-{k}")) * 100.0 / total;
        assert_near(&format!("worker-{k}"), share, k as f64 * 100.0 / 36.0, 3.0);
    }
}

fn share_of_exact(rows: &[(String, f64)], key: &str) -> f64 {
    rows.iter().filter(|(k, _)| k == key).map(|(_, p)| p).sum()
}

pub fn eight_named_threads() {
    if !perf_available() {
        return;
    }
    let bin = build_c("threads.c", "threads", FP);
    let file = record("threads", &[], &[&bin, Path::new("400")]);
    assert!(sample_count(&file) >= 1000);
    thread_shares(&file);
}

pub fn attach_to_pid_whose_threads_start_later() {
    if !perf_available() {
        return;
    }
    let bin = build_c("threads.c", "threads", FP);
    // The threads start 1 s after launch; stacktop attaches well before that.
    let file = record_attached("attach.pb.gz", &bin, &["400", "1"]);
    thread_shares(&file);
}

/// Launches `bin ARGS` and records it with `record -p` until it exits.
fn record_attached(name: &str, bin: &Path, args: &[&str]) -> std::path::PathBuf {
    let mut child = Command::new(bin).args(args).spawn().unwrap();
    let file = scratch_file(name);
    let pid = child.id().to_string();
    let out = stacktop(&["record", "-e", "cpu-clock", "-p", &pid, "-o"])
        .arg(&file)
        .output()
        .unwrap();
    child.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

pub fn fork_and_exec_children() {
    if !perf_available() {
        return;
    }
    let bin = build_c("forkexec.c", "forkexec", FP);
    let file = record("forkexec", &[], &[&bin, Path::new("1500")]);
    let rows = no_children_rows(&file, "sym");
    let parent = share_of(&rows, "parent_work");
    let forked = share_of(&rows, "forked_work");
    let child = share_of(&rows, "child_work");
    let sum = parent + forked + child;
    assert!(sum > 90.0, "work functions have only {sum:.1}%: {rows:?}");
    assert_near("parent_work", parent * 100.0 / sum, 25.0, 5.0);
    assert_near("forked_work", forked * 100.0 / sum, 25.0, 5.0);
    assert_near("child_work", child * 100.0 / sum, 50.0, 5.0);
    assert!(share_of(&rows, "[unknown]") < 2.0, "{rows:?}");
}

pub fn dlopened_library_is_symbolized() {
    if !perf_available() {
        return;
    }
    let lib = build_c("dlopen_lib.c", "libstacktop_dl.so", &["-shared", "-fPIC"]);
    let bin = build_c("dlopen.c", "dlopen", FP);
    let file = record("dlopen", &[], &[&bin, &lib, Path::new("2")]);
    let rows = no_children_rows(&file, "dso,sym");
    let hot = share_of(&rows, "lib_hot");
    let cool = share_of(&rows, "lib_cool");
    assert!(hot + cool > 90.0, "{rows:?}");
    assert_near("lib_hot", hot * 100.0 / (hot + cool), 75.0, 5.0);
    assert!(
        rows.iter()
            .any(|(k, _)| k.contains("libstacktop_dl.so") && k.contains("lib_hot")),
        "{rows:?}"
    );
}

/// The self share of each direct caller in a `report --callers` tree: `(caller, percent of the function)`.
fn direct_callers(tree: &str) -> Vec<(String, f64)> {
    tree.lines()
        .filter_map(|l| {
            let (columns, caller) = l.split_once("|-- ").or_else(|| l.split_once("`-- "))?;
            let share = columns.split_whitespace().next()?.strip_suffix('%')?;
            Some((caller.to_owned(), share.parse().ok()?))
        })
        .collect()
}

pub fn stripped_binary_is_named_by_fde_starts() {
    if !perf_available() || !tool_available("strip") {
        return;
    }
    let bin = build_c("callsites.c", "callsites", FP);
    let stripped = scratch_file("callsites_stripped");
    std::fs::copy(&bin, &stripped).unwrap();
    run(Command::new("strip").arg(&stripped));
    let file = record("callsites_stripped", &[], &[&stripped, Path::new("2")]);
    assert!(sample_count(&file) >= 1000, "too few samples");
    // Each function is named by where its FDE starts, which is where the unstripped build's symbol starts.
    let name = |function: &str| {
        let (start, _) = function_symbol(&bin, function);
        format!("[unknown] callsites_stripped+{start:#x} (fde)")
    };
    let rows = no_children_rows(&file, "sym");
    // One row per function, none per address. Startup code that no FDE covers (crtstuff's `frame_dummy`, run
    // once) is named by its address: a sample or two may land there (seen once in CI: 0.05%).
    assert!(
        rows.iter()
            .filter(|(k, share)| k.contains("callsites_stripped+") && *share >= 0.5)
            .all(|(k, _)| k.ends_with(" (fde)")),
        "{rows:?}"
    );
    let crunch = share_of_exact(&rows, &format!("[.] {}", name("crunch")));
    let light = share_of_exact(&rows, &format!("[.] {}", name("light")));
    assert!(crunch + light > 90.0, "{rows:?}");
    assert_near("crunch", crunch * 100.0 / (crunch + light), 80.0, 5.0);

    // Its callers merge: twice's two call sites are one caller.
    let tree = stdout_of(stacktop(&["report", "--callers", &name("crunch"), "-i"]).arg(&file));
    let callers: Vec<_> = direct_callers(&tree)
        .into_iter()
        .filter(|(caller, _)| caller.contains("callsites_stripped+"))
        .collect();
    let module = " [callsites_stripped]";
    let share = |function: &str| -> f64 {
        let key = format!("{}{module}", name(function));
        callers
            .iter()
            .filter(|(c, _)| *c == key)
            .map(|(_, p)| p)
            .sum()
    };
    assert_eq!(callers.len(), 2, "want twice and once:\n{tree}");
    let (twice, once) = (share("twice"), share("once"));
    assert!(twice + once > 90.0, "callers do not add up:\n{tree}");
    assert_near("twice", twice * 100.0 / (twice + once), 75.0, 7.0);

    // Annotate finds the function's code by that name: the FDE's range is the symbol's (a PIE, so its SVMA
    // is its file offset).
    let (start, size) = function_symbol(&bin, "crunch");
    let annotated = stdout_of(stacktop(&["annotate", &name("crunch"), "-i"]).arg(&file));
    assert!(
        annotated.contains(&format!("# Code: {size} bytes at {start:#x} in")),
        "{annotated}"
    );
}

fn build_rust(mangling: &str) -> std::path::PathBuf {
    let out = scratch_file(&format!("rustwork_{mangling}"));
    let mut cmd = Command::new("rustc");
    cmd.args(["-C", "opt-level=2", "-g", "-C", "force-frame-pointers=yes"]);
    if mangling == "v0" {
        cmd.args(["-C", "symbol-mangling-version=v0"]);
    }
    cmd.arg("-o")
        .arg(&out)
        .arg(assets_dir().join("rustwork.rs"));
    run(&mut cmd);
    out
}

pub fn rust_names_demangled_in_both_manglings() {
    if !perf_available() || !tool_available("rustc") {
        return;
    }
    for (mangling, expected) in [
        (
            "legacy",
            &[
                "rustwork::burn",
                "rustwork::main::{{closure}}",
                "rustwork::apply",
            ][..],
        ),
        (
            "v0",
            &[
                "rustwork::burn::<rustwork::Heavy>",
                "rustwork::burn::<rustwork::Light>",
                "rustwork::main::{closure#1}",
            ][..],
        ),
    ] {
        let bin = build_rust(mangling);
        let file = record(&format!("rust_{mangling}"), &[], &[&bin, Path::new("1")]);
        // Children (total) rows: the generic functions' own samples mostly land in std functions inlined
        // into them (`<u64>::wrapping_add`), which are frames of their own.
        let report =
            stdout_of(stacktop(&["report", "--children", "--sort", "sym", "-i"]).arg(&file));
        let rows = self_shares(&report);
        for name in expected {
            assert!(
                rows.iter().any(|(k, _)| k == &format!("[.] {name}")),
                "{mangling}: no row named exactly {name}: {rows:?}"
            );
        }
    }
}

pub fn system_wide_catches_a_workload_by_name() {
    if !perf_available() {
        return;
    }
    let bin = build_c("split.c", "split", FP);
    let mut child = Command::new(&bin).arg("4").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let file = scratch_file("system.pb.gz");
    let out = stacktop(&["record", "-a", "-e", "cpu-clock", "--duration", "2", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    child.kill().ok();
    child.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_of(
        stacktop(&[
            "report",
            "--no-children",
            "--sort",
            "sym",
            "--comm",
            "split",
            "-i",
        ])
        .arg(&file),
    );
    let rows = self_shares(&report);
    let a = share_of(&rows, "hot_a");
    let b = share_of(&rows, "warm_b");
    assert!(a + b > 50.0, "{rows:?}");
    assert_near("hot_a of split's samples", a * 100.0 / (a + b), 66.7, 6.0);
}

/// `--process` selects a program by its name, though none of its threads with samples bears it: `threads`'
/// main thread waits (no samples) while `worker-1`..`worker-8` work. A filter that selects nothing says which
/// threads and processes there are.
pub fn process_filter_finds_a_program_whose_threads_are_named_otherwise() {
    if !perf_available() {
        return;
    }
    let bin = build_c("threads.c", "threads", FP);
    // Attached (its names come from /proc, as for every process of `-a`) before its threads start.
    let file = record_attached("process-filter.pb.gz", &bin, &["400", "0.5"]);
    let path = bin.to_str().unwrap();
    for name in ["threads", path] {
        let rows = self_shares(&stdout_of(
            stacktop(&[
                "report",
                "--no-children",
                "--sort",
                "comm",
                "--process",
                name,
                "-i",
            ])
            .arg(&file),
        ));
        let workers: f64 = (1..=8)
            .map(|k| share_of_exact(&rows, &format!("worker-{k}")))
            .sum();
        assert!(workers > 99.0, "--process {name}: {rows:?}");
        let count = sample_count_of(&file, &["--process", name]);
        assert!(count >= 1000, "--process {name}: {count} samples");
    }
    // A name that matches nothing lists the threads' and the processes' names.
    let out = stacktop(&["report", "--comm", "thread", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        &["--comm thread;", "worker-8 (", "processes: threads ("],
    );
    // The other outputs take the same filter.
    let svg = scratch_file("process-filter.svg");
    let out = stacktop(&["flamegraph", "--process", "threads", "-i"])
        .arg(&file)
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("<title>thread_work ("),
        "no thread_work in the flamegraph"
    );
    let annotated =
        stdout_of(stacktop(&["annotate", "thread_work", "--process", "threads", "-i"]).arg(&file));
    assert!(annotated.contains("thread_work"), "{annotated}");
}

fn sample_count_of(file: &Path, filter: &[&str]) -> u64 {
    let folded = stdout_of(
        stacktop(&["report", "--folded"])
            .args(filter)
            .arg("-i")
            .arg(file),
    );
    folded
        .lines()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The hot loop runs under a 64 KiB stack buffer never touched (assets/stackbuf.c): the kernel's copy of the
/// user stack stops at its first page, far short of the 16 KiB asked. The header says so, with the sizes, and
/// does not advise a bigger copy (which changes nothing here). Without the continuation in live memory: its
/// reads map the untouched pages (the zero page), and the kernel's later copies are whole.
pub fn a_copy_the_kernel_cut_short_is_reported_as_such() {
    if !perf_available() {
        return;
    }
    let bin = build_c(
        "stackbuf.c",
        "stackbuf",
        &["-fomit-frame-pointer", "-fno-stack-clash-protection"],
    );
    for mode in ["hybrid,16384", "dwarf,16384"] {
        let file = record(
            &format!("stackbuf-{}", &mode[..5]),
            &["--call-graph", mode, "--no-continue"],
            &[&bin, Path::new("0.5")],
        );
        let report = stdout_of(stacktop(&["report", "-i"]).arg(&file));
        let note = report
            .lines()
            .find(|l| l.contains("where the kernel copied"))
            .unwrap_or_else(|| panic!("{mode}: no line on the short copies:\n{report}"));
        let count: u64 = note
            .trim_start_matches("# Unwind quality: ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(count >= 100, "{mode}: {note}");
        assert!(note.contains("of the 16384 bytes of stack asked"), "{note}");
        assert!(!report.contains("a larger stack copy"), "{mode}: {report}");
    }
}

pub fn sigint_writes_a_complete_file() {
    if !perf_available() {
        return;
    }
    let bin = build_c("split.c", "split", FP);
    let file = scratch_file("interrupted.pb.gz");
    let mut recorder = stacktop(&["record", "-e", "cpu-clock", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .arg("30")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    run(Command::new("kill").args(["-INT", &recorder.id().to_string()]));
    let status = recorder.wait().unwrap();
    assert!(status.success(), "record exited with {status}");
    // About 2500 on an idle machine; fewer when the machine is busy.
    assert!(
        sample_count(&file) > 100,
        "the interrupted recording lost its samples"
    );
    let rows = no_children_rows(&file, "sym");
    assert!(share_of(&rows, "hot_a") > 40.0, "{rows:?}");
}

pub fn go_pprof_reads_the_profile() {
    if !perf_available() || !tool_available("go") {
        return;
    }
    let bin = build_c("split.c", "split", FP);
    let file = record("for_go", &[], &[&bin, Path::new("1")]);
    let top = stdout_of(
        Command::new("go")
            .args(["tool", "pprof", "-top"])
            .arg(&file),
    );
    let first = top
        .lines()
        .skip_while(|l| !l.contains("flat%"))
        .nth(1)
        .unwrap_or_default();
    assert!(first.contains("hot_a"), "hot_a is not first in:\n{top}");
    let flat: f64 = first
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.strip_suffix('%'))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    assert_near("hot_a flat% in go tool pprof", flat, 60.0, 6.0);
    let raw = stdout_of(
        Command::new("go")
            .args(["tool", "pprof", "-raw"])
            .arg(&file),
    );
    let build_id = read_build_id(&bin);
    assert!(
        raw.contains(&build_id),
        "build-id {build_id} not in -raw output:\n{raw}"
    );
    assert!(raw.contains("split.c:"), "no source lines in -raw output");
    // A location with an inline frame lists both functions, innermost first.
    let bin = build_c("inline_split.c", "inline_split", FP);
    let file = record("for_go_inline", &[], &[&bin, Path::new("1")]);
    let raw = stdout_of(
        Command::new("go")
            .args(["tool", "pprof", "-raw"])
            .arg(&file),
    );
    let lines: Vec<&str> = raw.lines().collect();
    let inline_pair = lines.windows(2).any(|w| {
        w[0].contains(" mixed ")
            && w[0].contains("inline_split.c:")
            && w[1].trim_start().starts_with("caller_")
    });
    assert!(
        inline_pair,
        "no location with the inline frame `mixed` above its caller:\n{raw}"
    );
}

fn read_build_id(bin: &Path) -> String {
    let out = stdout_of(Command::new("readelf").arg("-n").arg(bin));
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_default()
        .to_owned()
}

/// A process's first instructions run in ld.so's `_start` (`mov %rsp,%rdi; call _dl_start`), which has no
/// CFI: walks stopped there and every stack of dynamic loading ended in `[truncated]` (1.4% of the samples
/// of `record -a` during a build). The module's entry point is the main thread's root: those stacks are
/// complete. Recorded at 15,000 Hz over 300 runs of `/bin/true`: thousands of samples in ld.so's startup.
pub fn process_startup_stacks_end_at_ld_so_start() {
    if !perf_available() {
        return;
    }
    let file = scratch_file("startup.pb.gz");
    run(
        stacktop(&["record", "-e", "cpu-clock", "-F", "15000", "-o"])
            .arg(&file)
            .args(["--", "sh", "-c", "for i in $(seq 300); do /bin/true; done"]),
    );
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(&file));
    let (mut rooted, mut cut) = (0u64, 0u64);
    for line in folded.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let count: u64 = count.parse().unwrap_or(0);
        if stack.starts_with("_start;_dl_start") || stack == "_start" {
            rooted += count;
        } else if stack.starts_with("[truncated];_start") {
            cut += count;
        }
    }
    eprintln!("ld.so startup: {rooted} samples rooted at _start, {cut} cut");
    assert!(rooted >= 100, "{rooted} samples rooted at ld.so's _start");
    assert!(cut * 100 <= rooted, "{cut} cut against {rooted} rooted");
}

crate::tests![
    process_startup_stacks_end_at_ld_so_start,
    split_60_30_10,
    inline_frames_split_2_to_1,
    eight_named_threads,
    process_filter_finds_a_program_whose_threads_are_named_otherwise,
    attach_to_pid_whose_threads_start_later,
    fork_and_exec_children,
    dlopened_library_is_symbolized,
    stripped_binary_is_named_by_fde_starts,
    rust_names_demangled_in_both_manglings,
    system_wide_catches_a_workload_by_name,
    a_copy_the_kernel_cut_short_is_reported_as_such,
    sigint_writes_a_complete_file,
    go_pprof_reads_the_profile,
];
