//! `stacktop annotate SYM -i FILE` on recordings of assets/split.c: the hot line and the hot instruction are
//! the loop's, shares sum to 100%, and the stripped, missing and replaced binary cases say so.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// One row of the annotate body: marker, percent, and the rest (`FILE:LINE  TEXT` or `ADDR:  INSN`).
#[derive(Debug)]
struct Row {
    marker: String,
    share: f64,
    body: String,
}

impl Row {
    /// The instruction address of an asm row.
    fn address(&self) -> Option<u64> {
        let (addr, _) = self.body.trim_start().split_once(':')?;
        u64::from_str_radix(addr, 16).ok()
    }

    fn is_source(&self) -> bool {
        self.address().is_none()
    }

    fn instruction(&self) -> &str {
        self.body
            .trim_start()
            .split_once(':')
            .map_or("", |(_, i)| i.trim())
    }
}

fn rows(out: &str) -> Vec<Row> {
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (left, body) = l.split_once(" : ")?;
            let (marker, share) = left.split_at(2);
            Some(Row {
                marker: marker.trim().to_owned(),
                share: share.trim().parse().ok()?,
                body: body.to_owned(),
            })
        })
        .collect()
}

fn split_profile(name: &str, bin: &Path) -> PathBuf {
    record(name, &[], &[bin, Path::new("1")])
}

pub fn hot_a_hot_line_and_instruction_are_the_loop() {
    if !perf_available() {
        return;
    }
    let bin = build_c("split.c", "split-annotate", &[]);
    let file = split_profile("annotate-split", &bin);
    let out = stdout_of(stacktop(&["annotate", "hot_a", "-i"]).arg(&file));
    let rows = rows(&out);
    assert!(out.contains("# Annotate: hot_a in "), "{out}");
    assert!(out.contains("of event 'cpu-clock'"), "{out}");

    // BURN_BODY is a macro, so all of hot_a's code is on its line in split.c: line 6.
    let hot_src: Vec<&Row> = rows
        .iter()
        .filter(|r| r.is_source() && r.marker == ">>")
        .collect();
    assert_eq!(hot_src.len(), 1, "{out}");
    assert!(hot_src[0].body.starts_with("split.c:6 "), "{out}");
    assert!(hot_src[0].body.contains("void hot_a("), "{out}");

    // The loop: from the backward jne's target to the jne. The hottest instruction is in it (the sample skids
    // past the imul onto the next instruction, as perf annotate shows too), and the loop holds the imul.
    let asm: Vec<&Row> = rows.iter().filter(|r| !r.is_source()).collect();
    let back = asm
        .iter()
        .find_map(|r| {
            let target = r.instruction().strip_prefix("jne")?.trim();
            let target = u64::from_str_radix(
                target.split_whitespace().next()?.trim_start_matches("0x"),
                16,
            )
            .ok()?;
            (target < r.address()?).then(|| (target, r.address().unwrap_or(0)))
        })
        .unwrap_or_else(|| panic!("no loop back edge in:\n{out}"));
    let in_loop = |r: &Row| r.address().is_some_and(|a| a >= back.0 && a <= back.1);
    assert!(
        asm.iter()
            .filter(|r| in_loop(r))
            .any(|r| r.instruction().starts_with("imul")),
        "{out}"
    );
    let hottest: Vec<&&Row> = asm.iter().filter(|r| r.marker == ">>").collect();
    assert_eq!(hottest.len(), 1, "{out}");
    assert!(
        in_loop(hottest[0]),
        "hottest {:?} not in loop {back:x?}:\n{out}",
        hottest[0]
    );
    let loop_share: f64 = asm.iter().filter(|r| in_loop(r)).map(|r| r.share).sum();
    assert!(loop_share > 90.0, "loop has {loop_share}%:\n{out}");

    let asm_sum: f64 = asm.iter().map(|r| r.share).sum();
    let src_sum: f64 = rows.iter().filter(|r| r.is_source()).map(|r| r.share).sum();
    assert_near("instruction shares", asm_sum, 100.0, 0.5);
    assert_near("source shares", src_sum, 100.0, 0.5);
}

pub fn binary_without_debug_info_gives_disassembly_only() {
    if !perf_available() || !tool_available("strip") {
        return;
    }
    let bin = build_c("split.c", "split-annotate", &[]);
    let stripped = scratch_file("split-nodebug");
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin));
    let file = split_profile("annotate-nodebug", &stripped);
    let out = stdout_of(stacktop(&["annotate", "hot_a", "-i"]).arg(&file));
    let rows = rows(&out);
    assert!(
        out.contains("# Source lines: none, disassembly only"),
        "{out}"
    );
    assert!(
        !rows.is_empty() && rows.iter().all(|r| !r.is_source()),
        "{out}"
    );
    assert_eq!(rows.iter().filter(|r| r.marker == ">>").count(), 1, "{out}");
    assert_near(
        "instruction shares",
        rows.iter().map(|r| r.share).sum(),
        100.0,
        0.5,
    );
}

fn one_line_failure(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

pub fn missing_or_replaced_binary_is_a_clear_error() {
    if !perf_available() {
        return;
    }
    // A build-id of its own: perf's build-id cache (~/.debug) may hold an identical build of split.c, and
    // annotate rightly finds the profiled binary there.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let build_id = format!("-Wl,--build-id=0x{nonce:032x}{:08x}", std::process::id());
    let bin = build_c("split.c", "split-annotate-own-build-id", &[&build_id]);
    let copy = scratch_file("split-gone");
    std::fs::copy(&bin, &copy).unwrap();
    let file = split_profile("annotate-gone", &copy);

    // Replaced by another build: its build-id differs, so it is not used.
    let other = build_c("spin.c", "spin-for-annotate", &[]);
    std::fs::copy(&other, &copy).unwrap();
    let out = stacktop(&["annotate", "hot_a", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = one_line_failure(&out);
    assert!(
        stderr.contains("is not the binary that was profiled"),
        "{stderr}"
    );

    std::fs::remove_file(&copy).unwrap();
    let out = stacktop(&["annotate", "hot_a", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = one_line_failure(&out);
    assert!(
        stderr.contains("cannot annotate hot_a: cannot read"),
        "{stderr}"
    );
    assert!(stderr.contains("split-gone"), "{stderr}");

    let out = stacktop(&["annotate", "hot_x", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = one_line_failure(&out);
    assert!(
        stderr.contains("no function hot_x in the profile (close matches: hot_a"),
        "{stderr}"
    );
}

/// assets/memfd_exec.c runs its code from a memfd named with a window-title escape: the kernel names the
/// mapping (and the command) after it. Neither the report nor annotate's error (the memfd cannot be opened
/// afterwards) lets it reach the terminal raw.
pub fn memfd_program_name_stays_inert() {
    if !perf_available() {
        return;
    }
    let bin = build_c("memfd_exec.c", "memfd_exec", &[]);
    let file = record("memfd", &[], &[&bin, Path::new("0.3")]);
    let report = stdout_of(stacktop(&["report", "--no-children", "-i"]).arg(&file));
    assert!(
        report.contains("memfd:\\x1b]0;pwned\\x07 (deleted)") && report.contains("memfd_work"),
        "{report}"
    );
    assert!(!report.contains(['\x1b', '\x07']), "{report}");
    let out = stacktop(&["annotate", "memfd_work", "-i"])
        .arg(&file)
        .output()
        .unwrap();
    crate::errors::assert_inert_error(
        &out,
        &["cannot annotate memfd_work", "/memfd:\\x1b]0;pwned\\x07"],
    );
}

crate::tests![
    hot_a_hot_line_and_instruction_are_the_loop,
    binary_without_debug_info_gives_disassembly_only,
    missing_or_replaced_binary_is_a_clear_error,
    memfd_program_name_stays_inert,
];
