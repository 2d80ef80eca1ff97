//! Hostile perf.data files: each claims a count or size far beyond its few kilobytes. `stacktop report -i`
//! must end with exit status 1 and one line on stderr, promptly: no abort on a failed allocation (SIGABRT,
//! the shell's 134), no panic text before the error. The fixtures are tests/fixtures/hostile/*.perf.data,
//! written by make_hostile.py there from base.perf.data (a `perf record`, see the README.md there).
//!
//! Before linux-perf-data was patched (vendor/linux-perf-data/PATCH-NOTES.md), the ones marked "abort" ended
//! in SIGABRT ("memory allocation of N bytes failed") and the ones marked "panic" printed "panicked at" and a
//! backtrace before the error line.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::common::*;

/// Longer than a debug build needs for a 6 KiB file on a loaded machine by far; a parser that follows a
/// huge count byte by byte would not make it.
const DEADLINE: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(format!("{name}.perf.data"))
}

/// Runs `stacktop report -i FIXTURE`; kills it and fails past [`DEADLINE`].
fn report(name: &str) -> Output {
    let mut cmd = stacktop(&["report", "-i"]);
    cmd.arg(fixture(name));
    run_within(cmd, None, DEADLINE).0
}

/// Exit status 1 and exactly one line on stderr, naming the file and containing each of `needles`.
fn assert_clean_error(name: &str, needles: &[&str]) {
    let out = report(name);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: want exit status 1, got {} (a signal when there is no code); stderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "{name}: panic text:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: want one line, got:\n{stderr}");
    let prefix = format!(
        "stacktop: cannot read perf.data file {}",
        fixture(name).display()
    );
    assert!(lines[0].starts_with(&prefix), "{name}: {stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{name}: {needle:?} not in: {stderr}"
        );
    }
}

pub fn hostile_base_and_control_read_fine() {
    // The unchanged recording, and the same without its EVENT_DESC section (the fallback the attr and
    // event_types fixtures go through): both read, so the fixtures below fail only on what they change.
    for name in ["base", "no_event_desc"] {
        let out = report(name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {}\n{stderr}", out.status);
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

pub fn hostile_cmdline_count_is_one_line_error() {
    // abort: 2^32 - 1 strings, a 64 GiB Vec<&str> (PerfFile::read_string_list).
    assert_clean_error(
        "cmdline_count",
        &["CMDLINE header section", "string list count 4294967295"],
    );
}

pub fn hostile_event_desc_count_is_one_line_error() {
    // abort: 2^32 - 1 events, a 700 GiB Vec<AttributeDescription>
    // (AttributeDescription::parse_event_desc_section).
    assert_clean_error("event_desc_count", &["EVENT_DESC event count 4294967295"]);
}

pub fn hostile_event_desc_id_list_is_one_line_error() {
    // abort: 2^32 - 1 ids of the first event, a 32 GiB Vec<u64> (parse_event_desc_section again; this
    // machine has 23 GiB and no swap, so the kernel refuses it).
    assert_clean_error("event_desc_ids", &["EVENT_DESC event ID count 4294967295"]);
}

pub fn hostile_event_types_size_is_one_line_error() {
    // abort: a 1 TiB event_types section, 900 GiB of parsed entries
    // (AttributeDescription::parse_event_types_section).
    assert_clean_error(
        "event_types_size",
        &["event_types section (1099511627776 bytes"],
    );
}

pub fn hostile_attr_section_size_is_one_line_error() {
    // panic: a 2^64 - 256 byte attr section, "capacity overflow" in Vec::with_capacity
    // (AttributeDescription::parse_attr_section); the caught panic printed its message first.
    assert_clean_error(
        "attr_section_size",
        &["attr section (18446744073709551360 bytes"],
    );
}

pub fn hostile_attr_size_zero_is_one_line_error() {
    // panic: attr_size 0 divides the attr section's size ("attempt to divide by zero", parse_attr_section).
    assert_clean_error("attr_size_zero", &["attribute size 0 is invalid"]);
}

pub fn hostile_feature_section_size_is_one_line_error() {
    // abort: a 1 TiB HOSTNAME section, vec![0; 1 TiB] (PerfFileReader::parse_file_impl).
    assert_clean_error(
        "feature_section_size",
        &["HOSTNAME feature section (1099511627776 bytes"],
    );
}

pub fn hostile_data_section_overflow_is_one_line_error() {
    // panic: data.offset + data.size, where the feature table starts, overflows u64 (parse_file_impl; a debug
    // build's overflow check panics, a release build seeks to the wrapped offset).
    assert_clean_error("data_section_overflow", &["data section"]);
}

pub fn hostile_data_section_past_eof_is_one_line_error() {
    // Not an abort before the patch either: the records were read until the end of the file, and the error
    // came from whatever followed them. Now the header's claim is refused before any record is read.
    assert_clean_error(
        "data_section_past_eof",
        &["data section (1099511627776 bytes at offset 264) does not fit in the file of 5860 bytes"],
    );
}

pub fn hostile_auxtrace_size_is_one_line_error() {
    // abort: a PERF_RECORD_AUXTRACE whose trace data claims 1 TiB, Vec::resize to 1 TiB
    // (PerfRecordIter::read_next_round_impl).
    assert_clean_error("auxtrace_size", &["AUXTRACE data size 1099511627776"]);
}

pub fn hostile_callchain_length_is_a_skipped_record() {
    // panic: one sample's call-chain length times 8 overflows (linux-perf-event-reader's SampleRecord::parse;
    // a debug build's overflow check panics). A bad record is data, not an error: the file reads, the record
    // is skipped (or, in a release build, misread), and nothing reaches stderr.
    let out = report("callchain_length");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}

/// Found by the fuzzer (`fuzz/crashes/perfdata/mmap2-pgoff-overflow`, see the README there): a real recording
/// whose one mapping record claims file offset 2^64 - 1. Resolving a sample in it overflowed (a panic where
/// overflow checks are on, as in this suite's build); the address is now just not found in the file.
pub fn hostile_mapping_file_offset_is_no_panic() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/crashes/perfdata/mmap2-pgoff-overflow");
    let mut cmd = stacktop(&["report", "-i"]);
    cmd.arg(&path);
    let out = run_within(cmd, None, DEADLINE).0;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

crate::tests![
    hostile_base_and_control_read_fine,
    hostile_cmdline_count_is_one_line_error,
    hostile_event_desc_count_is_one_line_error,
    hostile_event_desc_id_list_is_one_line_error,
    hostile_event_types_size_is_one_line_error,
    hostile_attr_section_size_is_one_line_error,
    hostile_attr_size_zero_is_one_line_error,
    hostile_feature_section_size_is_one_line_error,
    hostile_data_section_overflow_is_one_line_error,
    hostile_data_section_past_eof_is_one_line_error,
    hostile_auxtrace_size_is_one_line_error,
    hostile_callchain_length_is_a_skipped_record,
    hostile_mapping_file_offset_is_no_panic,
];
