//! Errors a user can hit end in one clear line on stderr and a non-zero exit, never a panic.

use std::process::{Command, Output};

use crate::common::*;

fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("stacktop: cycles:"))
        .collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} not in: {stderr}");
    }
}

#[test]
fn no_such_pid() {
    let out = stacktop(&["record", "-p", "999999999", "-e", "cpu-clock"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["999999999"]);
}

#[test]
fn unknown_event() {
    let out = stacktop(&["record", "-e", "bogus-event", "--", "true"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["bogus-event"]);
}

#[test]
fn command_not_found() {
    if !perf_available() {
        return;
    }
    let out = stacktop(&["record", "-e", "cpu-clock", "-o"])
        .arg(scratch_file("nf.pb.gz"))
        .args(["--", "/nonexistent/stacktop-no-such-command"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["stacktop-no-such-command"]);
}

#[test]
fn missing_input_file() {
    let out = stacktop(&["report", "-i", "/nonexistent/profile.pb.gz"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["/nonexistent/profile.pb.gz"]);
}

#[test]
fn corrupt_input_file() {
    let file = scratch_file("corrupt.pb.gz");
    // A gzip header followed by garbage, then plain garbage.
    std::fs::write(&file, b"\x1f\x8b\x08\x00garbage that is not deflate").unwrap();
    let out = stacktop(&["report", "-i"]).arg(&file).output().unwrap();
    assert_one_line_error(&out, &["corrupt.pb.gz"]);
    std::fs::write(&file, b"\xff\xff\xff\xff\xff not a protobuf").unwrap();
    let out = stacktop(&["flamegraph", "-i"]).arg(&file).output().unwrap();
    assert_one_line_error(&out, &["corrupt.pb.gz"]);
}

#[test]
fn output_not_writable() {
    if !perf_available() {
        return;
    }
    let out = stacktop(&[
        "record",
        "-e",
        "cpu-clock",
        "-o",
        "/nonexistent/dir/out.pb.gz",
        "--",
        "true",
    ])
    .output()
    .unwrap();
    assert_one_line_error(&out, &["/nonexistent/dir/"]);
}

#[test]
fn permission_denied_for_unprivileged_system_wide() {
    if !perf_available() || !tool_available("setpriv") {
        return;
    }
    let paranoid =
        std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
    let paranoid: i32 = paranoid.trim().parse().unwrap_or(2);
    if paranoid < 1 {
        // An unprivileged user may sample the whole machine here: nothing to deny.
        skip("kernel.perf_event_paranoid < 1 lets anyone sample system-wide");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(stacktop_bin())
        .args([
            "record",
            "-a",
            "-e",
            "cpu-clock",
            "--duration",
            "0.2",
            "-o",
            "/tmp/stacktop-denied.pb.gz",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["perf_event_paranoid"]);
}

#[test]
fn broken_pipe_is_quiet() {
    if !perf_available() {
        return;
    }
    let bin = build_c("split.c", "split", &[]);
    let file = record("pipe", &[], &[&bin, std::path::Path::new("0.5")]);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} report -i {} | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
            stacktop_bin(),
            file.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("stacktop"), "stderr: {stderr}");
}
