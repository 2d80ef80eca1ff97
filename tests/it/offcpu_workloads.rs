//! The off-CPU workloads (`assets/offcpu_*.c`) as the tests of `offcpu` and `offcpu_output` use them:
//! recording one with stacktop or with perf, reading what it printed of itself, and the library queries the
//! tests weigh a recording with.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use stacktop::format::pprof::read_pprof_file;
use stacktop::profile::query::{callers_of, Filter, Matcher, Weight};
use stacktop::profile::{Profile, Values, Weigh};

use crate::common::*;

/// The workloads, each with the wall-clock seconds it runs for: long enough for hundreds of switch-outs,
/// short enough that the whole file runs in well under a minute on two cores.
pub const SLEEP: (&str, &str) = ("offcpu_sleep.c", "1.5");
pub const LOCK: (&str, &str) = ("offcpu_lock.c", "2");
pub const BUSY: (&str, &str) = ("offcpu_busy.c", "1.5");

/// The `key=value` lines a workload prints at exit, each under its first word (`sleep`, `lock`, `thread`...).
#[derive(Clone, Debug)]
pub struct Printed {
    text: String,
    lines: Vec<(String, HashMap<String, String>)>,
}

impl Printed {
    pub fn parse(text: &str) -> Printed {
        let lines = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let tag = words.next()?.to_owned();
                let fields = words
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                Some((tag, fields))
            })
            .collect();
        Printed {
            text: text.to_owned(),
            lines,
        }
    }

    /// The line `tag ... key=value ...` (`key` empty: the first line of `tag`).
    fn line(&self, tag: &str, key: &str, value: &str) -> &HashMap<String, String> {
        self.lines
            .iter()
            .find(|(t, f)| t == tag && (key.is_empty() || f.get(key).is_some_and(|v| v == value)))
            .map(|(_, f)| f)
            .unwrap_or_else(|| {
                panic!(
                    "the workload printed no `{tag} {key}={value}` line:\n{}",
                    self.text
                )
            })
    }

    /// The number `key` of the line `tag ... match_key=match_value` (see `line`).
    pub fn num(&self, tag: &str, (match_key, match_value): (&str, &str), key: &str) -> u64 {
        let line = self.line(tag, match_key, match_value);
        line.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number `{key}` in `{tag}` line {line:?}"))
    }

    /// Every thread's own clocks (`thread tid=T role=R cpu_ns=N elapsed_ns=N`).
    pub fn threads(&self) -> Vec<ThreadClock> {
        let threads: Vec<ThreadClock> = self
            .lines
            .iter()
            .filter(|(t, _)| t == "thread")
            .map(|(_, f)| {
                let num = |k: &str| -> u64 {
                    f.get(k)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("no `{k}` in thread line {f:?}"))
                };
                ThreadClock {
                    tid: num("tid") as u32,
                    role: f.get("role").cloned().unwrap_or_default(),
                    cpu_ns: num("cpu_ns"),
                    elapsed_ns: num("elapsed_ns"),
                }
            })
            .collect();
        assert!(!threads.is_empty(), "no thread lines in:\n{}", self.text);
        threads
    }

    pub fn thread(&self, role: &str) -> ThreadClock {
        self.threads()
            .into_iter()
            .find(|t| t.role == role)
            .unwrap_or_else(|| panic!("no thread of role {role} in:\n{}", self.text))
    }
}

/// What one thread measured of itself: its CPU clock and the time from its start to its end.
#[derive(Clone, Debug)]
pub struct ThreadClock {
    pub tid: u32,
    pub role: String,
    pub cpu_ns: u64,
    pub elapsed_ns: u64,
}

/// A recording of a workload and what the workload printed during it.
#[derive(Clone, Debug)]
pub struct Recording {
    pub file: PathBuf,
    pub printed: Printed,
}

/// Records `workload` with stacktop (cpu-clock at 999 Hz, as every recording test here: this machine has no
/// hardware PMU; off-CPU on, the default for a command), `extra` flags added.
pub fn record_workload(name: &str, (source, seconds): (&str, &str), extra: &[&str]) -> Recording {
    let bin = build_c(source, source.trim_end_matches(".c"), &[]);
    let file = scratch_file(&format!("{name}.pb.gz"));
    let mut cmd = stacktop(&["record", "-e", "cpu-clock", "-F", "999"]);
    cmd.args(extra)
        .arg("-o")
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .arg(seconds);
    let out = run(&mut cmd);
    Recording {
        file,
        printed: Printed::parse(&String::from_utf8_lossy(&out.stdout)),
    }
}

/// The default-mode recording of `workload`, made once per test run and shared by the tests that read it.
pub fn recorded(workload: (&'static str, &str)) -> Recording {
    static RUNS: OnceLock<Mutex<HashMap<&'static str, Recording>>> = OnceLock::new();
    let runs = RUNS.get_or_init(Default::default);
    let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
    runs.entry(workload.0)
        .or_insert_with(|| record_workload(workload.0.trim_end_matches(".c"), workload, &[]))
        .clone()
}

/// The profile in `file`, which must hold off-CPU time: else the test fails saying so.
pub fn with_off_cpu(file: &Path) -> Profile {
    let profile = read_pprof_file(file)
        .unwrap_or_else(|e| panic!("cannot read back {}: {e}", file.display()));
    let totals = profile.totals();
    assert!(
        totals.switches > 0 && totals.blocked.saturating_add(totals.runnable) > 0,
        "no off-CPU samples: recording did not produce switch samples ({}: {} CPU samples, {} switch-outs, \
         off-CPU recording {} in its metadata); off-CPU time is issue 13's feature, on by default for \
         `record -- CMD` and for perf.data files recorded with `-e context-switches --switch-events`",
        file.display(),
        totals.count,
        totals.switches,
        if profile.meta.off_cpu.enabled {
            "on"
        } else {
            "off"
        },
    );
    profile
}

/// `profile` projected onto one view: each group's `count` and `period` become its switch-outs (or CPU
/// samples) and nanoseconds in that view.
pub fn weighed(profile: &Profile, by: Weigh) -> Profile {
    let mut p = profile.clone();
    p.weigh(by, false);
    p
}

/// In an already weighed profile: per direct caller of the outermost `sym` frame, the weight of the samples
/// through it (summed over the matched roots), for `tids` (all when empty).
pub fn callers(profile: &Profile, sym: &str, tids: &[u32]) -> BTreeMap<String, Weight> {
    let filter = Filter {
        tids: tids.to_vec(),
        ..Filter::default()
    };
    let tree = callers_of(profile, &filter, &Matcher::exact(sym));
    let mut by_caller: BTreeMap<String, Weight> = BTreeMap::new();
    for &root in &tree.roots {
        for &child in &tree.nodes[root].children {
            let node = &tree.nodes[child];
            let w = by_caller
                .entry(profile.func_name(&node.func).to_owned())
                .or_default();
            w.period += node.weight.period;
            w.count += node.weight.count;
        }
    }
    by_caller
}

/// In an already weighed profile: the weight of the samples with `sym` on their stack (once each), for
/// `tids` (all when empty).
pub fn under(profile: &Profile, sym: &str, tids: &[u32]) -> Weight {
    let filter = Filter {
        tids: tids.to_vec(),
        ..Filter::default()
    };
    callers_of(profile, &filter, &Matcher::exact(sym)).roots_weight()
}

/// Every value recorded for thread `tid`.
pub fn thread_values(profile: &Profile, tid: u32) -> Values {
    let mut sum = Values::default();
    for g in profile.samples.iter().filter(|g| g.tid == tid) {
        sum.add(g.values());
    }
    sum
}

pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub fn share(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// `actual` within `percent`% of `expected`.
pub fn assert_within(what: &str, actual: u64, expected: u64, percent: f64) {
    let off = (actual as f64 - expected as f64).abs() * 100.0 / expected.max(1) as f64;
    assert!(
        off <= percent,
        "{what}: stacktop {:.1} ms, the workload {:.1} ms: {off:.1}% apart (at most {percent}%)",
        ms(actual),
        ms(expected)
    );
}

/// Records `workload` with the installed perf as the issue names it (`-e context-switches -c 1 --call-graph
/// dwarf --switch-events --sample-cpu`); `None` (test skipped, or failed under STACKTOP_REQUIRE_PERF=1) when
/// perf is missing or cannot record here. A file perf cannot read back itself (perf 6.1 now and then writes
/// one, see `perfdata::perf_record`) is recorded again.
pub fn perf_record_switches(name: &str, (source, seconds): (&str, &str)) -> Option<Recording> {
    if !tool_available("perf") {
        return None;
    }
    let bin = build_c(source, source.trim_end_matches(".c"), &[]);
    let file = scratch_file(&format!("{name}.perf.data"));
    for _attempt in 0..3 {
        let out = Command::new("perf")
            .args(["record", "-q", "-e", "context-switches", "-c", "1"])
            .args(["--call-graph", "dwarf", "--switch-events", "--sample-cpu"])
            .arg("-o")
            .arg(&file)
            .arg("--")
            .arg(&bin)
            .arg(seconds)
            .output()
            .expect("spawn perf");
        if !out.status.success() {
            skip(&format!(
                "perf record failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let check = Command::new("perf")
            .args(["script", "-F", "tid", "--hide-call-graph", "-i"])
            .arg(&file)
            .output()
            .expect("spawn perf");
        let stderr = String::from_utf8_lossy(&check.stderr);
        if check.status.success() && !stderr.contains("assertion failed") {
            return Some(Recording {
                file,
                printed: Printed::parse(&String::from_utf8_lossy(&out.stdout)),
            });
        }
        eprintln!(
            "perf cannot read back its own {}: {stderr}; recording again",
            file.display()
        );
    }
    panic!("perf wrote three files it cannot read back itself");
}

/// The index of the first line of a `report --callers` tree that names `caller` with a percentage.
pub fn caller_line(tree: &str, caller: &str) -> usize {
    tree.lines()
        .position(|l| l.contains(&format!(" {caller}")) && l.contains('%'))
        .unwrap_or_else(|| panic!("no line with {caller} and a percentage:\n{tree}"))
}
