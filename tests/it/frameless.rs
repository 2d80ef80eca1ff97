//! Frame-pointer stacks through code without frame pointers are warned of (`unwind::fpcheck`), in fp mode and
//! in perf.data files of `perf record -g`, on one program whose library is built two ways.
//!
//! `assets/dlopen.c` (frame pointers) spends its time in `assets/dlopen_lib.c`: `lib_round` calls `lib_hot`
//! (3 units) and tail-calls `lib_cool` (1 unit). Built with `-fomit-frame-pointer`, the library keeps no frame
//! pointer, and the kernel's chains skip `lib_round` and `main`. Built with `-fstack-protector-all` as well as
//! the workloads' `-fno-omit-frame-pointer`, every function of it keeps one: gcc 12 sets up no frame in a leaf
//! that needs no stack even under `-fno-omit-frame-pointer` (or `-mno-omit-leaf-frame-pointer`), and the canary
//! gives each function a stack slot.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::perfdata::perf_record;

/// The library built without frame pointers, and with them throughout.
pub fn library(frame_pointers: bool) -> PathBuf {
    if frame_pointers {
        build_c(
            "dlopen_lib.c",
            "libstacktop_fp.so",
            &["-fstack-protector-all", "-shared", "-fPIC"],
        )
    } else {
        build_c(
            "dlopen_lib.c",
            "libstacktop_nofp.so",
            &["-fomit-frame-pointer", "-shared", "-fPIC"],
        )
    }
}

/// The `#` lines of a report of `file`.
fn header(file: &Path) -> String {
    let report = stdout_of(stacktop(&["report", "-g", "none", "-i"]).arg(file));
    report
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Samples of the folded stacks of `file` whose line contains `needle`.
fn folded_count(file: &Path, needle: &str) -> u64 {
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(file));
    folded
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn dso_share(file: &Path, dso: &str) -> f64 {
    let report = stdout_of(
        stacktop(&[
            "report",
            "--no-children",
            "--sort",
            "dso",
            "-g",
            "none",
            "-i",
        ])
        .arg(file),
    );
    share_of(&self_shares(&report), dso)
}

pub fn fp_mode_names_the_library_without_frame_pointers() {
    if !perf_available() {
        return;
    }
    let lib = library(false);
    let bin = build_c("dlopen.c", "dlopen", &[]);
    let file = record(
        "nofp_fp",
        &["--call-graph", "fp"],
        &[&bin, &lib, Path::new("2")],
    );
    let samples = folded_count(&file, "");
    assert!(samples >= 1000, "too few samples: {samples}");
    let header = header(&file);
    // Every sample in the library has its chain through the library's code: its self share.
    let lib_share = dso_share(&file, "libstacktop_nofp.so");
    assert!(lib_share > 90.0, "the library has {lib_share:.1}%");
    let (count, percent) = frameless_charged(&header, "libstacktop_nofp.so")
        .unwrap_or_else(|| panic!("the library is not named:\n{header}"));
    assert_near("samples charged to the library", percent, lib_share, 2.0);
    assert!(count >= 900, "{count} samples charged:\n{header}");
    assert!(
        header.contains("have frame-pointer stacks through code without frame pointers")
            && header.contains("record with --call-graph hybrid (the default) or dwarf"),
        "{header}"
    );
    // What the warning is about: lib_round and main are missing above lib_hot.
    let hot = folded_count(&file, "lib_hot");
    let right = folded_count(&file, "main;lib_round;lib_hot");
    assert!(
        hot >= 500 && right * 20 < hot,
        "{right} of {hot} lib_hot stacks have their callers"
    );
    // The flamegraph says it too.
    let svg = scratch_file("nofp_fp.svg");
    run(stacktop(&["flamegraph", "-i"])
        .arg(&file)
        .arg("-o")
        .arg(&svg));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("id=\"unwind-warning\"")
            && svg.contains("code without frame pointers (libstacktop_nofp.so"),
        "no warning in the flamegraph"
    );

    // As the warning advises: hybrid mode (the default) walks the library with its tables, and says nothing.
    let file = record("nofp_hybrid", &[], &[&bin, &lib, Path::new("1")]);
    let header = self::header(&file);
    assert!(!header.contains("without frame pointers"), "{header}");
    let hot = folded_count(&file, "lib_hot");
    let right = folded_count(&file, "main;lib_round;lib_hot");
    assert!(
        hot >= 300 && right * 100 >= hot * 95,
        "hybrid: {right} of {hot} lib_hot stacks have their callers"
    );
}

pub fn fp_mode_has_no_warning_for_frame_pointers_throughout() {
    if !perf_available() {
        return;
    }
    let lib = library(true);
    let bin = build_c("dlopen.c", "dlopen", &[]);
    // CPU samples only: the threads' waits are in libc's system call wrappers, built without frame pointers,
    // and the off-CPU note rightly says so of the switch-out stacks.
    let file = record(
        "fp_fp",
        &["--call-graph", "fp", "--no-off-cpu"],
        &[&bin, &lib, Path::new("2")],
    );
    let header = header(&file);
    assert!(
        !header.contains("without frame pointers")
            && frameless_charged(&header, "libstacktop_fp.so").is_none(),
        "{header}"
    );
    // And the chains are right: the warning's absence is earned.
    let hot = folded_count(&file, "lib_hot");
    let right = folded_count(&file, "main;lib_round;lib_hot");
    assert!(
        hot >= 500 && right * 100 >= hot * 95,
        "{right} of {hot} lib_hot stacks have their callers"
    );
}

/// perf's share of the samples whose innermost user frame lies in `dso`, from `perf script`.
fn perf_innermost_user_share(file: &Path, dso: &str) -> f64 {
    let out = Command::new("perf")
        .args(["script", "-F", "ip,dso", "-i"])
        .arg(file)
        .output()
        .expect("spawn perf");
    assert!(out.status.success(), "perf script failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut all, mut in_dso) = (0u64, 0u64);
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        all += 1;
        let innermost_user = block
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.contains("[kernel.kallsyms]"));
        if innermost_user.is_some_and(|l| l.contains(dso)) {
            in_dso += 1;
        }
    }
    in_dso as f64 * 100.0 / all.max(1) as f64
}

pub fn perf_record_g_import_names_the_library_without_frame_pointers() {
    let lib = library(false);
    let bin = build_c("dlopen.c", "dlopen", &[]);
    let Some(file) = perf_record("nofp_g", &["-g"], &[&bin, &lib, Path::new("2")]) else {
        return;
    };
    let header = header(&file);
    let expected = perf_innermost_user_share(&file, "libstacktop_nofp.so");
    assert!(expected > 90.0, "perf has {expected:.1}% in the library");
    let (count, percent) = frameless_charged(&header, "libstacktop_nofp.so")
        .unwrap_or_else(|| panic!("the library is not named:\n{header}"));
    assert_near("samples charged to the library", percent, expected, 2.0);
    assert!(count >= 900, "{count} samples charged:\n{header}");
    // perf's own remedy.
    assert!(
        header.contains("record with perf record --call-graph dwarf"),
        "{header}"
    );
    // Carried by a conversion to pprof.
    let pprof = scratch_file("nofp_g.pb.gz");
    run(stacktop(&["convert", "-i"])
        .arg(&file)
        .arg("-o")
        .arg(&pprof));
    assert_eq!(
        frameless_charged(&self::header(&pprof), "libstacktop_nofp.so"),
        Some((count, percent))
    );
}

crate::tests![
    fp_mode_names_the_library_without_frame_pointers,
    fp_mode_has_no_warning_for_frame_pointers_throughout,
    perf_record_g_import_names_the_library_without_frame_pointers,
];
