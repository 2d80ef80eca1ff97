//! The unwinder replayed on recorded samples, without perf_event_open, root or perf: perf.data files
//! recorded with `--call-graph dwarf` (each sample's registers and stack bytes) and the exact binaries they
//! were recorded against (libc included), in `tests/fixtures/replay` (rebuilt by its `make.sh`). The
//! binaries are found the way `perf archive` ships them: in perf's build-id cache, `$HOME/.debug`.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replay")
}

/// `report --folded` of a fixture, as printed.
fn folded_text(file: &str) -> String {
    let dir = fixtures();
    stdout_of(
        stacktop(&["report", "--folded", "-i"])
            .arg(dir.join(file))
            .env("HOME", dir.join("home")),
    )
}

/// `report --folded` of a fixture: (frames root first, samples) per line.
fn folded(file: &str) -> Vec<(Vec<String>, u64)> {
    folded_text(file)
        .lines()
        .filter_map(|line| {
            let (stack, count) = line.rsplit_once(' ')?;
            let frames = stack.split(';').map(str::to_owned).collect();
            Some((frames, count.parse().ok()?))
        })
        .collect()
}

fn total(stacks: &[(Vec<String>, u64)]) -> u64 {
    stacks.iter().map(|(_, n)| n).sum()
}

/// Samples of `stacks` for which `pred` holds, as a share of all.
fn share(stacks: &[(Vec<String>, u64)], pred: impl Fn(&[String]) -> bool) -> f64 {
    let hits: u64 = stacks.iter().filter(|(f, _)| pred(f)).map(|(_, n)| n).sum();
    hits as f64 / total(stacks).max(1) as f64
}

pub fn a_200_deep_recursion_is_walked_to_start() {
    let stacks = folded("recursion.data");
    assert!(total(&stacks) >= 30, "too few samples: {}", total(&stacks));
    // _start -> __libc_start_main -> ... -> main -> descend x 201 -> leaf_work: past the kernel's 127 frames.
    let whole = share(&stacks, |f| {
        f.first().is_some_and(|s| s == "_start")
            && f.iter().any(|s| s == "main")
            && f.iter().filter(|s| *s == "descend").count() >= 200
            && f.last().is_some_and(|s| s == "leaf_work")
    });
    assert!(
        whole >= 0.9,
        "{:.0}% of stacks reach _start through 200 frames",
        whole * 100.0
    );
}

pub fn a_copy_too_small_ends_in_truncated() {
    let stacks = folded("recursion_cut.data");
    assert!(total(&stacks) >= 30, "too few samples: {}", total(&stacks));
    let cut = share(&stacks, |f| {
        f.first().is_some_and(|s| s == "[truncated]") && f.last().is_some_and(|s| s == "leaf_work")
    });
    assert!(
        cut >= 0.9,
        "{:.0}% of stacks end in [truncated]",
        cut * 100.0
    );
    // Nothing made up past the copy: no stack claims to reach main.
    assert_eq!(share(&stacks, |f| f.iter().any(|s| s == "main")), 0.0);
}

pub fn callers_are_found_through_a_frameless_libc() {
    let stacks = folded("mutex.data");
    let locked: Vec<_> = stacks
        .into_iter()
        .filter(|(f, _)| f.iter().any(|s| s == "pthread_mutex_lock"))
        .collect();
    assert!(
        total(&locked) >= 20,
        "too few samples in pthread_mutex_lock: {}",
        total(&locked)
    );
    // Built that way (assets/mutex.c): 3/4 of the lock's time is lock_often's, 1/4 lock_rarely's.
    let often = share(&locked, |f| f.iter().any(|s| s == "lock_often"));
    let rarely = share(&locked, |f| f.iter().any(|s| s == "lock_rarely"));
    assert_near("lock_often", often * 100.0, 75.0, 15.0);
    assert_near("lock_rarely", rarely * 100.0, 25.0, 15.0);
    // Every such stack reaches the thread's root.
    let rooted = share(&locked, |f| f.first().is_some_and(|s| s == "clone3"));
    assert!(rooted >= 0.9, "{:.0}% reach clone3", rooted * 100.0);
}

/// The same program recorded without call graphs, with the kernel's frame-pointer chains (`-g`: cut at its
/// 127 frames) and with stack copies (dwarf): the folded output of each, exactly (re-bless with
/// `STACKTOP_BLESS=1`).
pub fn plain_fp_and_dwarf_recordings_fold_as_golden() {
    for (file, golden) in [
        ("plain.data", "replay-plain.folded"),
        ("fp.data", "replay-fp.folded"),
        ("recursion.data", "replay-dwarf.folded"),
    ] {
        crate::render::golden(golden, folded_text(file).as_bytes());
    }
}

crate::tests![
    a_200_deep_recursion_is_walked_to_start,
    a_copy_too_small_ends_in_truncated,
    callers_are_found_through_a_frameless_libc,
    plain_fp_and_dwarf_recordings_fold_as_golden,
];
