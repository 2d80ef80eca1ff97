//! Errors a user can hit end in one clear line on stderr and a non-zero exit, never a panic.

use std::process::{Command, Output};

use crate::common::*;

pub fn no_such_pid() {
    let out = stacktop(&["record", "-p", "999999999", "-e", "cpu-clock"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["999999999"]);
}

pub fn unknown_event() {
    let out = stacktop(&["record", "-e", "bogus-event", "--", "true"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["bogus-event"]);
}

pub fn command_not_found() {
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

pub fn missing_input_file() {
    let out = stacktop(&["report", "-i", "/nonexistent/profile.pb.gz"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["/nonexistent/profile.pb.gz"]);
}

/// A filter that selects nothing says so, and which command names the profile has.
pub fn a_filter_that_matches_nothing_names_what_exists() {
    let file = scratch_file("filtered.pb.gz");
    stacktop::format::pprof::write_pprof_file(&crate::render::profile(), &file).unwrap();
    for args in [
        &["report", "--comm", "memcached"][..],
        &["report", "--pid", "4242", "--folded"],
        &[
            "flamegraph",
            "--tid",
            "4242",
            "-o",
            "/nonexistent/never.svg",
        ],
        &["annotate", "c", "--comm", "memcached"],
    ] {
        let out = stacktop(args).arg("-i").arg(&file).output().unwrap();
        assert_one_line_error(&out, &["no sample matches", "app (10)", "worker (1)"]);
    }
    // A filter that matches still works, in the flamegraph too.
    let svg = scratch_file("worker.svg");
    let out = stacktop(&["flamegraph", "--comm", "worker", "-i"])
        .arg(&file)
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    // Only worker's one sample: the root holds 1 sample, not the profile's 11.
    assert!(svg.contains("<title>all (1 samples, 100%)"), "{svg}");
    assert!(svg.contains("<title>main (1 samples, 100.00%)"), "{svg}");
    assert!(!svg.contains("<title>c ("), "c is app's, not worker's");
}

pub fn corrupt_input_file() {
    let file = scratch_file("corrupt.pb.gz");
    // A gzip header followed by garbage, then plain garbage.
    std::fs::write(&file, b"\x1f\x8b\x08\x00garbage that is not deflate").unwrap();
    let out = stacktop(&["report", "-i"]).arg(&file).output().unwrap();
    assert_one_line_error(&out, &["corrupt.pb.gz"]);
    std::fs::write(&file, b"\xff\xff\xff\xff\xff not a protobuf").unwrap();
    let out = stacktop(&["flamegraph", "-i"]).arg(&file).output().unwrap();
    assert_one_line_error(&out, &["corrupt.pb.gz"]);
}

pub fn output_not_writable() {
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

pub fn permission_denied_for_unprivileged_system_wide() {
    if !perf_available() || !tool_available("setpriv") {
        return;
    }
    let paranoid =
        std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
    let paranoid: i32 = paranoid.trim().parse().unwrap_or(2);
    if paranoid < 1 {
        // An unprivileged user may sample the whole machine here: nothing to deny.
        skip("kernel.perf_event_paranoid < 1 lets anyone sample system-wide");
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

pub fn broken_pipe_is_quiet() {
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

/// Asserts the failure's stderr is one line with no byte a terminal acts on (ESC, BEL, other C0 controls but
/// the final newline, DEL, C1 controls, bidi overrides), and holds each needle.
pub(crate) fn assert_inert_error(out: &Output, needles: &[&str]) {
    assert_one_line_error(out, needles);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let body = stderr.strip_suffix('\n').unwrap_or(&stderr);
    let acting = |c: char| {
        c.is_control()
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    assert!(
        !body.chars().any(acting),
        "stderr holds a control character: {body:?}"
    );
}

/// A profile whose one function, named with escapes, lives in a module that cannot be read: a memfd program's
/// mapping as the kernel names it, its file name chosen by the program.
fn hostile_profile() -> std::path::PathBuf {
    use stacktop::profile::{Function, Line, Location, Mapping, Meta, Profile};
    let mut p = Profile::new(Meta {
        event: "cpu-clock".into(),
        ..Meta::default()
    });
    let path = p.intern("/memfd:\x1b]0;pwned\x07 (deleted)");
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: 0x40_0000,
        limit: 0x50_0000,
        offset: 0,
        kernel: false,
    });
    let name = p.intern("work\x1b[2J\u{202e}");
    let function = p.add_function(Function { name, file: None });
    let location = p.add_location(Location {
        mapping: Some(mapping),
        address: 0x40_1000,
        lines: vec![Line { function, line: 0 }],
    });
    let comm = p.intern("memfd:\x1b]0;pwned");
    p.add_sample(&[location], 1, 1, comm, 3, 3);
    let file = scratch_file("hostile.pb.gz");
    stacktop::format::pprof::write_pprof_file(&p, &file).unwrap();
    file
}

pub fn hostile_names_in_errors_are_inert() {
    let file = hostile_profile();
    // The name asked for, echoed back; then a function that exists, whose module's name is the program's.
    let out = stacktop(&["annotate", "-i"])
        .arg(&file)
        .arg("\x1b]0;x\x07")
        .output()
        .unwrap();
    assert_inert_error(&out, &["no function \\x1b]0;x\\x07"]);
    let out = stacktop(&["annotate", "-i"])
        .arg(&file)
        .arg("work\x1b[2J\u{202e}")
        .output()
        .unwrap();
    assert_inert_error(
        &out,
        &[
            "work\\x1b[2J\\u{202e}",
            "/memfd:\\x1b]0;pwned\\x07 (deleted)",
        ],
    );
    // A callers regex that does not compile: regex's message spans lines and quotes the pattern.
    let out = stacktop(&["report", "--callers-regex", "\x1b]0;x\x07("])
        .arg("-i")
        .arg(&file)
        .output()
        .unwrap();
    assert_inert_error(&out, &["\\x1b]0;x\\x07"]);
}

pub fn hostile_arguments_in_usage_errors_are_inert() {
    // clap quotes the argument it could not take, in a message of several lines.
    for arg in ["\u{1}\u{9b}31m\u{202e}x", "\x1b]0;x\x07"] {
        let out = stacktop(&[arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{stderr:?}"
        );
        assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
    }
}

/// `-p` of a zombie or a kernel thread ends at once with one clear line; pid 1 is recorded like any process.
pub fn zombies_and_kernel_threads_are_refused_pid_1_is_recorded() {
    if !perf_available() {
        return;
    }
    // A child that exits and is never reaped by its parent (which sleeps).
    let mut parent = Command::new("python3")
        .args([
            "-c",
            "import os,sys,time\npid=os.fork()\nif pid==0: os._exit(0)\nprint(pid,flush=True)\ntime.sleep(30)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(parent.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let zombie = line.trim().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = stacktop(&["record", "-e", "cpu-clock", "-p", &zombie, "-o"])
        .arg(scratch_file("zombie.pb.gz"))
        .output()
        .unwrap();
    parent.kill().unwrap();
    parent.wait().unwrap();
    assert_one_line_error(&out, &[&zombie, "zombie"]);
    let kthreadd = "2";
    for flag in ["-p", "-t"] {
        let out = stacktop(&["record", "-e", "cpu-clock", flag, kthreadd, "-o"])
            .arg(scratch_file("kthread.pb.gz"))
            .output()
            .unwrap();
        assert_one_line_error(&out, &["kernel thread", "-a"]);
    }
    run(stacktop(&[
        "record",
        "-e",
        "cpu-clock",
        "-p",
        "1",
        "--duration",
        "0.5",
        "-o",
    ])
    .arg(scratch_file("init.pb.gz")));
}

crate::tests![
    no_such_pid,
    unknown_event,
    command_not_found,
    missing_input_file,
    corrupt_input_file,
    a_filter_that_matches_nothing_names_what_exists,
    output_not_writable,
    permission_denied_for_unprivileged_system_wide,
    broken_pipe_is_quiet,
    hostile_names_in_errors_are_inert,
    hostile_arguments_in_usage_errors_are_inert,
    zombies_and_kernel_threads_are_refused_pid_1_is_recorded,
];
