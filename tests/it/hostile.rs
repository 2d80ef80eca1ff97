//! Hostile inputs to `-i`: files that are small but describe a great deal, inputs that never end, pipes, and
//! sample values that overflow. Each must end in output or in one line on stderr, quickly and in bounded
//! memory. Every run is under a 1 GiB address-space limit (`ulimit -v`) and a wall-clock timeout, so a
//! regression fails as a refused allocation or a timeout instead of swapping the machine.
//!
//! The small inputs are checked in under `tests/fixtures/hostile/` (`make.py` there writes them; see its
//! README); the large ones are generated here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use stacktop::format::pprof::write_pprof_file;
use stacktop::format::proto;
use stacktop::profile::{Function, Line, Location, LocationId, Mapping, Meta, Profile};

use crate::common::*;

/// The address-space limit of every run, in KiB.
const MEMORY_LIMIT_KIB: u64 = 1 << 20;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(name)
}

/// `sh -c SCRIPT stacktop ARGS...`: the script ends by running `"$0" "$@"` (stacktop) under the memory limit.
fn limited(pipe_from: Option<&str>, args: &[&str]) -> Command {
    let run = format!("(ulimit -v {MEMORY_LIMIT_KIB}; exec \"$0\" \"$@\")");
    let script = match pipe_from {
        Some(source) => format!("{source} | {run}"),
        None => run,
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(stacktop_bin()).args(args);
    cmd
}

fn report(input: &Path, extra: &[&str]) -> (Output, Duration) {
    let mut args = vec!["report", "-i", input.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    run_within(limited(None, &args), None, Duration::from_secs(60))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_success(out: &Output) -> String {
    let stderr = stderr_of(out);
    assert!(out.status.success(), "{}; stderr: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every percentage in a report is within 0..=100.
fn assert_sane_percentages(report: &str) {
    for word in report.split_whitespace() {
        if let Some(p) = word.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) {
            assert!((0.0..=100.0).contains(&p), "{p}% in:\n{report}");
        }
    }
}

/// A profile with one sample whose stack is `depth` distinct functions, `f0` the leaf.
fn deep_profile(depth: u64) -> Profile {
    let mut p = Profile::new(Meta {
        event: "cpu-clock".into(),
        period_unit: "nanoseconds".into(),
        ..Meta::default()
    });
    let path = p.intern("/usr/bin/deep");
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: 0x40_0000,
        limit: 0x50_0000,
        offset: 0,
        kernel: false,
    });
    let stack: Vec<LocationId> = (0..depth)
        .map(|i| {
            let name = p.intern(&format!("f{i}"));
            let function = p.add_function(Function { name, file: None });
            p.add_location(Location {
                mapping: Some(mapping),
                address: 0x40_0000 + 16 * i,
                lines: vec![Line { function, line: 0 }],
            })
        })
        .collect();
    let comm = p.intern("deep");
    p.add_sample(&stack, 1, 1, comm, 1, 1_000_000);
    p
}

pub fn deep_stack_of_distinct_functions_is_linear() {
    // Before: each of the 10,000 entries' graphs was built down the whole stack, all at once: 50 million tree
    // nodes (4.6 GB RSS, aborted at a 6 GB limit after 110 s). Now ~20 MB and ~3 s of CPU (debug build).
    let file = scratch_file("deep.pb.gz");
    write_pprof_file(&deep_profile(10_000), &file).expect("write");
    let (out, elapsed) = report(&file, &[]);
    let text = assert_success(&out);
    assert!(text.contains("[.] f9999"), "entry missing");
    assert!(text.contains("[deeper than 128 frames, not drawn]"));
    // Each entry's graph is at most ~128 lines: linear in the depth, not quadratic.
    let lines = text.lines().count();
    assert!(lines < 10_000 * 140, "{lines} lines");
    assert!(elapsed < Duration::from_secs(45), "took {elapsed:?}");

    // The callers tree is one 10,000-node chain: drawn without recursing once per node.
    let (out, _) = report(&file, &["--callers", "f0"]);
    let text = assert_success(&out);
    assert!(text.contains("f9999"));
}

pub fn gzip_bomb_is_refused_quickly() {
    // 300 MiB of one empty-stack sample repeated, gzipped to ~450 KB: under the old 1 GiB cap, and decoded
    // as ~100 bytes per 6-byte sample it took past 6 GB before. Now refused after 16 MiB of output.
    let header = proto::Profile {
        sample_type: vec![
            proto::ValueType { r#type: 1, unit: 2 },
            proto::ValueType { r#type: 3, unit: 4 },
        ],
        string_table: ["", "samples", "count", "cpu", "nanoseconds"]
            .map(String::from)
            .to_vec(),
        ..proto::Profile::default()
    };
    let one = proto::Profile {
        sample: vec![proto::Sample {
            value: vec![1, 1],
            ..proto::Sample::default()
        }],
        ..proto::Profile::default()
    }
    .encode_to_vec();
    let chunk = one.repeat((1 << 20) / one.len());
    let file = scratch_file("bomb.pb.gz");
    let mut gz = GzEncoder::new(
        std::fs::File::create(&file).expect("create"),
        Compression::best(),
    );
    gz.write_all(&header.encode_to_vec()).expect("write");
    for _ in 0..300 {
        gz.write_all(&chunk).expect("write");
    }
    gz.finish().expect("finish");
    let (out, elapsed) = report(&file, &[]);
    assert_one_line_error(&out, &["bomb.pb.gz", "gzip bomb", "100 times"]);
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

pub fn dev_zero_ends_at_once() {
    // Before: read until memory ran out.
    let (out, elapsed) = report(Path::new("/dev/zero"), &[]);
    assert_one_line_error(
        &out,
        &["/dev/zero", "neither a pprof profile nor a perf.data"],
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

pub fn profile_through_a_pipe() {
    // Before: the type was sniffed by opening the path, which ate the pipe's first bytes; reading the
    // profile opened it again and found it "corrupt".
    let file = scratch_file("piped.pb.gz");
    write_pprof_file(&deep_profile(3), &file).expect("write");
    let gzipped = std::fs::read(&file).expect("read");
    let plain = {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_end(&mut v)
            .expect("gunzip");
        v
    };
    for bytes in [gzipped, plain] {
        let (out, _) = run_within(
            limited(None, &["report", "-i", "/dev/stdin"]),
            Some(bytes),
            Duration::from_secs(30),
        );
        assert!(assert_success(&out).contains("[.] f2"));
    }
    // perf.data needs a file it can seek in: said in one line.
    let mut perf = b"PERFILE2".to_vec();
    perf.resize(4096, 0);
    let (out, _) = run_within(
        limited(None, &["report", "-i", "/dev/stdin"]),
        Some(perf),
        Duration::from_secs(30),
    );
    assert_one_line_error(&out, &["/dev/stdin", "regular file"]);
}

pub fn inputs_past_the_size_cap_are_refused() {
    // A file: refused by its size before it is read. It starts like a profile (field 1, a message).
    let file = scratch_file("huge.pb");
    let f = std::fs::File::create(&file).expect("create");
    (&f).write_all(b"\x0a").expect("write");
    f.set_len(200 << 20).expect("sparse file");
    let (out, elapsed) = report(&file, &[]);
    assert_one_line_error(&out, &["huge.pb", "larger than 128 MiB"]);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");

    // A pipe: read up to the cap, then refused.
    let source = "{ printf '\\n'; head -c 200000000 /dev/zero; }";
    let (out, elapsed) = run_within(
        limited(Some(source), &["report", "-i", "/dev/stdin"]),
        None,
        Duration::from_secs(60),
    );
    assert_one_line_error(&out, &["/dev/stdin", "larger than 128 MiB"]);
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

pub fn sample_values_that_overflow() {
    // Three samples of 2^63-1: the totals wrapped (three functions at 100%; a panic in a debug build).
    let (out, _) = report(&fixture("values-overflow.pb"), &[]);
    assert_one_line_error(&out, &["values-overflow.pb", "past 2^64"]);
    // The largest value, 1 and -5: read, the negative one as 0, and every share within 0..100%.
    let (out, _) = report(&fixture("values-extreme.pb"), &["--no-children"]);
    let text = assert_success(&out);
    assert_sane_percentages(&text);
    assert!(text.contains("100.00%"), "{text}");
}

pub fn references_that_multiply_are_refused() {
    // One 64 KiB string named by 100,000 comments (6.5 GB of notes before), and one location of 50,000 inline
    // lines named 2,000 times (100 million frames before): both a few hundred bytes gzipped.
    let (out, elapsed) = report(&fixture("comment-amplifier.pb.gz"), &[]);
    assert_one_line_error(&out, &["comment-amplifier.pb.gz", "comments"]);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let (out, elapsed) = report(&fixture("inline-amplifier.pb.gz"), &[]);
    assert_one_line_error(&out, &["inline-amplifier.pb.gz", "frames"]);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

crate::tests![
    deep_stack_of_distinct_functions_is_linear,
    gzip_bomb_is_refused_quickly,
    dev_zero_ends_at_once,
    profile_through_a_pipe,
    inputs_past_the_size_cap_are_refused,
    sample_values_that_overflow,
    references_that_multiply_are_refused,
];
