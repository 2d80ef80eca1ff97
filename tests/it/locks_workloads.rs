//! The lock workloads (`assets/locks_table.c`, `assets/locks_rust.rs`) as the tests of `locks` use them:
//! building and recording them (launched, or attached with `-p` inside the workload's measurement window),
//! reading what they measured of themselves, reading stacktop's figures back through its report, and looking
//! into a target's memory for the probes' breakpoints.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stacktop::format::pprof::read_pprof_file;
use stacktop::profile::{LockRow, Profile};

use crate::common::*;

/// Seconds of contention per recording: about 650 contended waits on table_lock a second.
pub const SECONDS: &str = "2.5";

/// The C workload, built as its header says.
pub fn locks_table() -> PathBuf {
    build_c("locks_table.c", "locks_table", &[])
}

/// The Rust workload, built as its header says (legacy mangling, the stable default).
pub fn locks_rust() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = scratch_file("locks_rust");
            run(Command::new("rustc")
                .args(["-C", "opt-level=2", "-g", "-C", "force-frame-pointers=yes"])
                .arg("-o")
                .arg(&out)
                .arg(assets_dir().join("locks_rust.rs")));
            out
        })
        .clone()
}

/// What a lock workload printed at exit: per lock and function, its waits, the waits it caused and its
/// holds; per lock, its address and totals.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    text: String,
    /// (lock, caller) -> (waits, wait_ns)
    pub waits: HashMap<(String, String), (u64, u64)>,
    /// (lock, holder) -> (waits, caused_ns)
    pub caused: HashMap<(String, String), (u64, u64)>,
    /// lock -> (address, waits, wait_ns)
    pub locks: HashMap<String, (String, u64, u64)>,
}

impl Figures {
    pub fn parse(text: &str) -> Figures {
        let mut f = Figures {
            text: text.to_owned(),
            ..Figures::default()
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(tag) = words.next() else { continue };
            let kv: HashMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
            let s = |k: &str| kv.get(k).map(|v| v.to_string()).unwrap_or_default();
            let n = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            match tag {
                "wait" => {
                    f.waits
                        .insert((s("lock"), s("caller")), (n("waits"), n("wait_ns")));
                }
                "caused" => {
                    f.caused
                        .insert((s("lock"), s("holder")), (n("waits"), n("caused_ns")));
                }
                "lock" => {
                    f.locks
                        .insert(s("name"), (s("address"), n("waits"), n("wait_ns")));
                }
                _ => {}
            }
        }
        assert!(
            !f.locks.is_empty(),
            "the workload printed no `lock` line:\n{text}"
        );
        f
    }

    /// `lock`'s line: (address, waits, wait_ns).
    pub fn lock(&self, lock: &str) -> (String, u64, u64) {
        self.locks
            .get(lock)
            .cloned()
            .unwrap_or_else(|| panic!("no `lock name={lock}` line in:\n{}", self.text))
    }

    /// The time `caller` waited for `lock`, nanoseconds (0 when it never waited).
    pub fn wait_ns(&self, lock: &str, caller: &str) -> u64 {
        self.waits
            .get(&(lock.to_owned(), caller.to_owned()))
            .map_or(0, |w| w.1)
    }

    /// `caller`'s share of the time waited for `lock`, in percent.
    pub fn wait_share(&self, lock: &str, caller: &str) -> f64 {
        pct(self.wait_ns(lock, caller), self.lock(lock).2)
    }

    /// `holder`'s share of the waits for `lock` that some function caused (the waits before any wake,
    /// charged to `none`, left out on both sides: stacktop charges them to no holder).
    pub fn caused_share(&self, lock: &str, holder: &str) -> f64 {
        let caused = |h: &str| {
            self.caused
                .get(&(lock.to_owned(), h.to_owned()))
                .map_or(0, |c| c.1)
        };
        let all: u64 = self
            .caused
            .iter()
            .filter(|((l, h), _)| l == lock && h != "none")
            .map(|(_, c)| c.1)
            .sum();
        pct(caused(holder), all)
    }
}

pub fn pct(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A recording and what the workload measured during it.
#[derive(Clone, Debug)]
pub struct LockRun {
    pub file: PathBuf,
    pub figures: Figures,
}

/// Records `bin ARGS` launched by stacktop (`record -e cpu-clock -F 999`, `extra` flags added).
pub fn record_launched(name: &str, extra: &[&str], bin: &Path, args: &[&str]) -> LockRun {
    let file = scratch_file(&format!("{name}.pb.gz"));
    let mut cmd = stacktop(&["record", "-e", "cpu-clock", "-F", "999"]);
    cmd.args(extra)
        .arg("-o")
        .arg(&file)
        .arg("--")
        .arg(bin)
        .args(args);
    let out = run(&mut cmd);
    LockRun {
        file,
        figures: Figures::parse(&String::from_utf8_lossy(&out.stdout)),
    }
}

/// A workload started by the test, its stdout read line by line on a thread of its own.
pub struct Target {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Target {
    pub fn spawn(cmd: &mut Command) -> Target {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn workload");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Target { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the line `want`, at most `timeout`.
    pub fn expect_line(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(_) => {}
                Err(_) => panic!("the workload did not print `{want}` within {timeout:?}"),
            }
        }
    }

    /// Waits for the workload's exit, at most `timeout`; it must succeed. Returns what it printed.
    pub fn finish(mut self, timeout: Duration) -> Figures {
        let status = wait_within(&mut self.child, timeout, "the workload");
        assert!(status.success(), "the workload exited with {status}");
        let text: Vec<String> = self.lines.iter().collect();
        Figures::parse(&text.join("\n"))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` at most `timeout`, killing it and failing past that.
pub fn wait_within(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stacktop record -e cpu-clock -F 999 EXTRA -p PID -o FILE`, started (stderr piped).
pub fn spawn_attached(name: &str, extra: &[&str], pid: u32) -> (Child, PathBuf) {
    let file = scratch_file(&format!("{name}.pb.gz"));
    let child = stacktop(&["record", "-e", "cpu-clock", "-F", "999"])
        .args(extra)
        .args(["-p", &pid.to_string(), "-o"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stacktop");
    (child, file)
}

/// What stacktop printed on stderr, once it has exited.
pub fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// Attaches stacktop with `--locks` to `locks_table SECONDS window` inside its measurement window: the
/// workload contends unmeasured for a while, parks every thread outside the locks (SIGUSR1), stacktop attaches
/// and places its probes (seen in the target's memory, then half a second more), then the measured part runs
/// (SIGUSR2) until the workload exits, which ends the recording.
pub fn record_in_window(name: &str) -> LockRun {
    let bin = locks_table();
    let target = Target::spawn(Command::new(&bin).args([SECONDS, "window"]));
    let pid = target.pid();
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "USR1");
    target.expect_line("paused", Duration::from_secs(10));
    let probes = [
        LibcFunction::find(pid, "__lll_lock_wait"),
        LibcFunction::find(pid, "__lll_lock_wake"),
    ];
    wait_unprobed(pid, &probes);
    let (mut recorder, file) = spawn_attached(name, &["--locks"], pid);
    wait_probed(pid, &probes, &mut recorder);
    // A breakpoint is in place from the opening of the first probe on; the others (one set per CPU), their
    // enabling and the attach to the target's threads follow within milliseconds.
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "USR2");
    let figures = target.finish(Duration::from_secs(60));
    let status = wait_within(&mut recorder, Duration::from_secs(60), "stacktop record -p");
    let stderr = stderr_of(&mut recorder);
    assert!(status.success(), "stacktop record -p failed: {stderr}");
    LockRun { file, figures }
}

pub fn signal(pid: u32, sig: &str) {
    run(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
}

/// A function of the libc that process `pid` runs: where it is in the process's memory and its bytes in
/// the file. A probe's breakpoint (`int3`, 0xcc) shows in the memory and not in the file.
pub struct LibcFunction {
    pub name: String,
    pub address: u64,
    pub file_bytes: Vec<u8>,
}

impl LibcFunction {
    /// Found through libc's separate debug file (libc6-dbg: the function is not exported).
    pub fn find(pid: u32, name: &str) -> LibcFunction {
        use object::{Object, ObjectSymbol};
        let (libc, maps) = libc_maps(pid);
        let data = std::fs::read(&libc).expect("read libc");
        let file = object::File::parse(&*data).expect("parse libc");
        let build_id = match file.build_id() {
            Ok(Some(id)) => id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            _ => panic!("{} has no build-id", libc.display()),
        };
        let debug = PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &build_id[..2],
            &build_id[2..]
        ));
        let Ok(debug_data) = std::fs::read(&debug) else {
            skip(&format!(
                "no debug file {} for libc (Debian: apt-get install libc6-dbg)",
                debug.display()
            ));
        };
        let debug_file = object::File::parse(&*debug_data).expect("parse libc's debug file");
        let sym = debug_file
            .symbols()
            .find(|s| s.name() == Ok(name) && s.size() > 0)
            .unwrap_or_else(|| panic!("no {name} in {}", debug.display()));
        let offset = svma_to_offset(&file, sym.address());
        let map = maps
            .iter()
            .find(|m| offset >= m.offset && offset - m.offset < m.end - m.start)
            .unwrap_or_else(|| {
                panic!("{name} at file offset {offset:#x} is in no mapping of libc")
            });
        let size = sym.size() as usize;
        LibcFunction {
            name: name.to_owned(),
            address: map.start + (offset - map.offset),
            file_bytes: data[offset as usize..offset as usize + size].to_vec(),
        }
    }

    /// The function's bytes in the memory of `pid` now.
    pub fn memory(&self, pid: u32) -> Vec<u8> {
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem");
        let mut bytes = vec![0; self.file_bytes.len()];
        mem.read_exact_at(&mut bytes, self.address)
            .expect("read /proc/PID/mem");
        bytes
    }

    /// Whether some byte of it in memory differs from the file: a breakpoint is in place.
    pub fn probed(&self, pid: u32) -> bool {
        self.memory(pid) != self.file_bytes
    }
}

struct Map {
    start: u64,
    end: u64,
    offset: u64,
}

/// The path of the libc that `pid` mapped, and its mappings (waiting up to 10 s for a process just started
/// to map it).
fn libc_maps(pid: u32) -> (PathBuf, Vec<Map>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
        if maps.contains("/libc.so.6") || Instant::now() > deadline {
            return parse_libc_maps(pid, &maps);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn parse_libc_maps(pid: u32, maps: &str) -> (PathBuf, Vec<Map>) {
    let mut path = None;
    let mut out = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[5].ends_with("/libc.so.6") {
            continue;
        }
        path.get_or_insert_with(|| PathBuf::from(fields[5]));
        let (start, end) = fields[0].split_once('-').expect("range");
        out.push(Map {
            start: u64::from_str_radix(start, 16).expect("start"),
            end: u64::from_str_radix(end, 16).expect("end"),
            offset: u64::from_str_radix(fields[2], 16).expect("offset"),
        });
    }
    let path = path.unwrap_or_else(|| panic!("process {pid} has no libc.so.6 mapped:\n{maps}"));
    (path, out)
}

/// Waits until none of `functions` holds a breakpoint in `pid`'s memory. Lock probes are placed in every
/// process that maps the probed file, so another recording with lock probes on the machine (another `record
/// --locks`, a `perf probe` session) puts its breakpoints in our target too, and then the breakpoints cannot
/// tell when our recording placed or removed its own: after 30 s of that, the test is skipped, saying so (in
/// CI, where tests run one at a time, it does not happen; with `STACKTOP_REQUIRE_PERF=1` it fails).
pub fn wait_unprobed(pid: u32, functions: &[LibcFunction]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while functions.iter().any(|f| f.probed(pid)) {
        if Instant::now() > deadline {
            skip(&format!(
                "another recording probes libc on this machine (stacktop processes: {}), so its \
                 breakpoints cannot be told from this test's",
                other_stacktops()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The command lines of the stacktop processes running now.
pub fn other_stacktops() -> String {
    let out = Command::new("pgrep").args(["-a", "stacktop"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', "; "))
        .unwrap_or_default()
}

/// Waits until every one of `functions` holds a breakpoint in `pid`'s memory (stacktop's probes are placed),
/// failing when stacktop exits first or after 20 s.
pub fn wait_probed(pid: u32, functions: &[LibcFunction], recorder: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if functions.iter().all(|f| f.probed(pid)) {
            return;
        }
        if let Some(status) = recorder.try_wait().expect("wait") {
            panic!(
                "stacktop exited ({status}) before its probes were in place: {}",
                stderr_of(recorder)
            );
        }
        if Instant::now() > deadline {
            let missing: Vec<&str> = functions
                .iter()
                .filter(|f| !f.probed(pid))
                .map(|f| f.name.as_str())
                .collect();
            panic!("after 20 s no breakpoint in {missing:?} of process {pid}: stacktop placed no probe there");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The profile in `file`, which must hold lock waits: else the test fails saying so.
pub fn with_locks(file: &Path) -> Profile {
    let profile = read_pprof_file(file)
        .unwrap_or_else(|e| panic!("cannot read back {}: {e}", file.display()));
    assert!(
        profile.meta.locks.enabled && profile.has_locks(),
        "no lock waits in {} (lock recording {} in its metadata; probes: {:?})",
        file.display(),
        if profile.meta.locks.enabled {
            "on"
        } else {
            "off"
        },
        profile.meta.locks.probes
    );
    profile
}

/// The locks view's row of the lock labelled `label`.
pub fn lock_row(profile: &Profile, label: &str) -> LockRow {
    profile
        .lock_rows()
        .into_iter()
        .find(|r| profile.lock_label(r.lock) == label)
        .unwrap_or_else(|| {
            let seen: Vec<String> = profile
                .lock_rows()
                .iter()
                .map(|r| profile.lock_label(r.lock))
                .collect();
            panic!("no lock {label} in the locks view; locks: {seen:?}")
        })
}

/// `stacktop report ARGS -i FILE`'s output.
pub fn report(file: &Path, args: &[&str]) -> String {
    let mut cmd = stacktop(&["report"]);
    cmd.args(args).arg("-i").arg(file);
    stdout_of(&mut cmd)
}

/// The lines of `report --locks` that name a lock (a word of the line equal to one of `labels`), in order,
/// with the lock each names.
pub fn lock_lines<'a>(text: &'a str, labels: &[&str]) -> Vec<(String, &'a str)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let label = l
                .split_whitespace()
                .find(|w| labels.contains(w))?
                .to_owned();
            Some((label, l))
        })
        .collect()
}

/// The numbers of a line (words that parse as numbers once a trailing `%` or `ms` is cut).
pub fn numbers(line: &str) -> Vec<f64> {
    line.split_whitespace()
        .filter_map(|w| {
            w.trim_end_matches('%')
                .trim_end_matches("ms")
                .replace(',', "")
                .parse()
                .ok()
        })
        .collect()
}

/// In a `report --callers SYM` tree: the direct callers of SYM (the branches of its first level), each with
/// the first percentage of its line (the share of SYM's weight).
pub fn direct_callers(tree: &str) -> Vec<(String, f64)> {
    tree.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (columns, caller) = l.split_once("|-- ").or_else(|| l.split_once("`-- "))?;
            // Deeper levels have the tree's bars before their branch.
            if columns.contains('|') || columns.contains('`') {
                return None;
            }
            let share = columns.split_whitespace().next()?.strip_suffix('%')?;
            let name = caller.split(" [").next().unwrap_or(caller).trim();
            Some((name.to_owned(), share.parse().ok()?))
        })
        .collect()
}

/// The share of SYM's direct caller `caller` in a `report --callers SYM` tree (0 when absent).
pub fn caller_share(callers: &[(String, f64)], caller: &str) -> f64 {
    callers
        .iter()
        .filter(|(c, _)| c == caller)
        .map(|(_, p)| p)
        .sum()
}

/// From a `report --callers SYM` header (`# Callers of SYM: 123.4 ms in N ..., 12.34% of all`): the time
/// and the percentage of all.
pub fn callers_header(tree: &str, sym: &str) -> (f64, f64) {
    let prefix = format!("# Callers of {sym}: ");
    let line = tree
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{tree}"));
    let rest = &line[prefix.len()..];
    let time = rest
        .split_whitespace()
        .next()
        .and_then(|w| w.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    let of_all = rest
        .split(", ")
        .find_map(|part| part.split_once(" of all").map(|(p, _)| p))
        .and_then(|p| p.trim().strip_suffix('%'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no `P% of all` in {line:?}"));
    (time, of_all)
}
