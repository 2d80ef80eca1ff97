//! Shared test helpers: building the C and Rust workloads under `assets/`, running the stacktop binary, and
//! skipping (reported as ignored; with `STACKTOP_REQUIRE_PERF=1`, failing) where the machine lacks what a test
//! needs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn require_env() -> bool {
    std::env::var("STACKTOP_REQUIRE_PERF").is_ok_and(|v| v == "1")
}

/// The panic payload of a test that cannot run on this machine: the harness reports it as ignored.
pub struct Skipped(pub String);

/// Ends the test here as ignored, saying why; with `STACKTOP_REQUIRE_PERF=1`, as failed.
pub fn skip(reason: &str) -> ! {
    if require_env() {
        panic!("required but missing (STACKTOP_REQUIRE_PERF=1): {reason}");
    }
    std::panic::panic_any(Skipped(reason.to_owned()))
}

/// Whether perf_event_open works here as the tests expect it (as CI runs them, as root): a software event on
/// a launched process, kernel stacks included. Where the kernel allows user space only
/// (`perf_event_paranoid` 2 for a user without CAP_PERFMON), the tests that sample are ignored: their
/// expectations (kernel frames, `-a`, `-p 1`) hold only with full access.
pub fn perf_available() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = AVAILABLE.get_or_init(|| {
        let out = Command::new(stacktop_bin())
            .args(["record", "-e", "cpu-clock", "-o"])
            .arg(scratch_dir().join("probe.pb.gz"))
            .args(["--", "true"])
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() && !stderr.contains("not permitted") {
            Ok(())
        } else if out.status.success() {
            Err(stderr.trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    match result {
        Ok(()) => true,
        Err(reason) => skip(&format!("perf_event_open unavailable: {reason}")),
    }
}

/// True when the tests run as root; else the test is skipped, saying that `what` needs root.
pub fn root_or_skip(what: &str) -> bool {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    root || skip(&format!("{what} needs root"))
}

pub fn tool_available(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    found || skip(&format!("`{tool}` is not installed"))
}

pub fn stacktop_bin() -> &'static str {
    env!("CARGO_BIN_EXE_stacktop")
}

pub fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// A per-run scratch directory under cargo's target tmpdir, or under the system's temporary directory when
/// that one is not ours to write (the test binary run as another user).
pub fn scratch_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let name = format!("it-{}", std::process::id());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
        if std::fs::create_dir_all(&dir).is_ok() {
            return dir;
        }
        let dir = std::env::temp_dir().join(format!("stacktop-{name}"));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
    .clone()
}

/// A fresh file path in the scratch directory.
pub fn scratch_file(name: &str) -> PathBuf {
    scratch_dir().join(name)
}

/// Compiles `assets/<source>` with the system C compiler (flags as written at the top of each workload),
/// once per test run, and returns the binary's path.
pub fn build_c(source: &str, output: &str, extra: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(output) {
        return path.clone();
    }
    let out = scratch_dir().join(output);
    let status = Command::new("cc")
        .args(["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(assets_dir().join(source))
        .args(["-ldl"])
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {source}");
    built.insert(output.to_owned(), out.clone());
    out
}

/// The file offset and size of the function symbol `name` of the ELF file at `path`.
pub fn function_symbol(path: &Path, name: &str) -> (u64, u64) {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(path).expect("read fixture");
    let file = object::File::parse(&*data).expect("parse fixture");
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("{name} in {path:?}"));
    (svma_to_offset(&file, sym.address()), sym.size())
}

/// The file offset of `svma` in `file`, through the `PT_LOAD` segment holding it.
pub fn svma_to_offset(file: &object::File<'_>, svma: u64) -> u64 {
    use object::{Object, ObjectSegment};
    for seg in file.segments() {
        let (off, size) = seg.file_range();
        if svma >= seg.address() && svma - seg.address() < size {
            return svma - seg.address() + off;
        }
    }
    panic!("{svma:#x} is in no PT_LOAD segment");
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn stacktop(args: &[&str]) -> Command {
    let mut cmd = Command::new(stacktop_bin());
    cmd.args(args);
    cmd
}

/// Records `command` with stacktop (cpu-clock: this machine has no hardware PMU) into a fresh file.
pub fn record(name: &str, extra: &[&str], command: &[&Path]) -> PathBuf {
    let file = scratch_file(&format!("{name}.pb.gz"));
    let mut cmd = stacktop(&["record", "-e", "cpu-clock", "-F", "999"]);
    cmd.args(extra).arg("-o").arg(&file).arg("--").args(command);
    run(&mut cmd);
    file
}

pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Parses `stacktop report --no-children --sort KEYS` entry lines into (key text, self percent).
/// An entry line starts with a percentage; the rest of the line, after the percentage columns, is the key.
pub fn self_shares(report: &str) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    for line in report.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || line.starts_with(' ') && line.trim_start().starts_with('|') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Some(pct) = first.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) else {
            continue;
        };
        let rest: Vec<&str> = words.filter(|w| !w.ends_with('%')).collect();
        rows.push((rest.join(" "), pct));
    }
    rows
}

/// Sum of the self shares of rows whose key contains `needle`.
pub fn share_of(rows: &[(String, f64)], needle: &str) -> f64 {
    rows.iter()
        .filter(|(k, _)| k.contains(needle))
        .map(|(_, p)| p)
        .sum()
}

/// What a report header's warning about code without frame pointers charges to `module`
/// (`#   NAME: N samples (P%)`): N and P.
pub fn frameless_charged(header: &str, module: &str) -> Option<(u64, f64)> {
    let line = header
        .lines()
        .find(|l| l.starts_with(&format!("#   {module}: ")))?;
    let rest = line.split_once(": ")?.1;
    let (count, rest) = rest.split_once(" samples (")?;
    Some((count.parse().ok()?, rest.strip_suffix("%)")?.parse().ok()?))
}

pub fn assert_near(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual:.2}% is not within {tolerance} points of {expected}%"
    );
}

/// Runs `cmd` with `input` on its stdin, killing it past `timeout`; returns its output and how long it took.
pub fn run_within(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> (Output, Duration) {
    let begin = Instant::now();
    let mut child: Child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("stdin");
        // A refused input may close the pipe early: a failed write is not the test's concern.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if begin.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = begin.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let output = Output {
        status,
        stdout: stdout.join().expect("stdout thread"),
        stderr: stderr.join().expect("stderr thread"),
    };
    (output, elapsed)
}

/// A failure a user can hit: exit status 1 (not a signal), no panic text, and exactly one line on stderr (a
/// note that `cycles` fell back to `cpu-clock` aside) that contains each of `needles`.
pub fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "want exit 1; stderr: {stderr}");
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
