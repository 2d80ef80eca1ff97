//! Queries over a profile: filtered stacks of frames, top functions, callers and callees trees, and the
//! per-entry call graphs of the report. The TUI and the report call the same functions, so they cannot disagree.
//!
//! Vocabulary:
//! - A **frame** is one line of a location: a location with inline frames expands into several frames,
//!   innermost first (`Profile::frames`). A location without lines is one frame of an unknown function.
//! - A **function**'s identity is `FuncKey`: its name and its module (the mapping's path, plus whether the
//!   mapping is the kernel). Two `Function` entries that differ only by source file are one function; the same
//!   name in two modules (a static `init` in two libraries) are two functions. Functions without a name
//!   (locations with no lines) are `[unknown]` in their module.
//! - Percentages are weighted by period. "Total" (perf's "children") counts a sample once per function even
//!   under recursion; "self" is the period of samples whose innermost frame is the function.
//!
//! Filters select samples by labels (pid, tid, comm), drop kernel frames, and restrict by module (see
//! `Filter::modules`). Totals for percentages are the totals of the samples that pass the filter.

use foldhash::{HashMap, HashMapExt};
use std::fmt;

use regex::Regex;

mod tree;
pub use tree::*;

use super::{FunctionId, LocationId, Profile, SampleGroup, StrId};

/// Shown for a frame whose location has no function.
pub const UNKNOWN: &str = "[unknown]";
/// Shown for the rows or tree nodes folded by a percent limit.
pub const OTHER: &str = "[other]";

/// One frame of a stack: one line of a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub location: LocationId,
    /// `None` when the location has no lines (unsymbolized).
    pub function: Option<FunctionId>,
    /// Source line (0 when unknown).
    pub line: u32,
    /// True for an inline frame: a function inlined into the next (outer) frame of the same location.
    pub inlined: bool,
}

/// A module as queries see it: the mapping path (`None`: no mapping) and whether it is the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleKey {
    pub path: Option<StrId>,
    pub kernel: bool,
}

/// A function's identity in queries: name (`None`: unknown) and module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncKey {
    pub name: Option<StrId>,
    pub module: ModuleKey,
}

/// Errors from parsing query arguments.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("unknown sort key `{0}` (expected comm, pid, tid, dso or sym)")]
    SortKey(String),
    #[error("invalid regular expression `{pattern}`")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("invalid call graph option `{0}` (expected graph|fractal|folded|none[,THRESHOLD[,caller|callee]])")]
    CallGraph(String),
    #[error("no sample matches {asked}; thread names seen (samples): {seen}")]
    NothingMatched { asked: String, seen: String },
}

impl Profile {
    /// The frames of a stack, innermost first, inline frames expanded.
    pub fn frames(&self, leaf: Option<super::NodeId>) -> Vec<Frame> {
        let mut frames = Vec::new();
        self.frames_into(leaf, &mut frames);
        frames
    }

    /// `frames` into a buffer the caller reuses (cleared first).
    pub fn frames_into(&self, leaf: Option<super::NodeId>, frames: &mut Vec<Frame>) {
        frames.clear();
        for location in self.stack(leaf) {
            self.location_frames_into(location, frames);
        }
    }

    /// Appends the frames of one location (its inlined functions first, then the one they are inlined in).
    pub fn location_frames_into(&self, location: LocationId, frames: &mut Vec<Frame>) {
        let lines = &self.location(location).lines;
        if lines.is_empty() {
            frames.push(Frame {
                location,
                function: None,
                line: 0,
                inlined: false,
            });
        }
        for (i, line) in lines.iter().enumerate() {
            frames.push(Frame {
                location,
                function: Some(line.function),
                line: line.line,
                inlined: i + 1 < lines.len(),
            });
        }
    }

    pub fn module_key(&self, location: LocationId) -> ModuleKey {
        match self.location(location).mapping {
            Some(m) => {
                let mapping = self.mapping(m);
                ModuleKey {
                    path: Some(mapping.path),
                    kernel: mapping.kernel,
                }
            }
            None => ModuleKey {
                path: None,
                kernel: false,
            },
        }
    }

    pub fn func_key(&self, frame: &Frame) -> FuncKey {
        FuncKey {
            name: frame.function.map(|f| self.function(f).name),
            module: self.module_key(frame.location),
        }
    }

    /// The function's name as stored (unsanitized), `[unknown]` when there is none.
    pub fn func_name(&self, key: &FuncKey) -> &str {
        key.name.map_or(UNKNOWN, |n| self.str(n))
    }

    /// The module's path, `[unknown]` when the location has no mapping.
    pub fn module_name(&self, key: &ModuleKey) -> &str {
        key.path.map_or(UNKNOWN, |p| self.str(p))
    }
}

/// Up to five function names of the profile close to `wanted`: containing it (or contained), or within a few
/// edits, case-insensitively.
pub fn close_matches(profile: &Profile, wanted: &str) -> Vec<String> {
    let want = wanted.to_lowercase();
    let mut names: Vec<(usize, String)> = Vec::new();
    for f in &profile.functions {
        let name = profile.str(f.name);
        if name.starts_with(UNKNOWN) || names.iter().any(|(_, n)| n == name) {
            continue;
        }
        let lower = name.to_lowercase();
        // A name inside the wanted one counts when it is at least half of it (`pthread_mutex_lock` in perf's
        // `___pthread_mutex_lock`), not any one-letter name.
        let inside = !lower.is_empty() && want.contains(&lower) && lower.len() * 2 >= want.len();
        let distance = if lower.contains(&want) || inside {
            0
        } else {
            edit_distance(&lower, &want)
        };
        if distance <= 2.max(want.len() / 4) {
            names.push((distance, name.to_owned()));
        }
    }
    names.sort();
    names.into_iter().take(5).map(|(_, n)| n).collect()
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

/// Which samples, frames and rows a query looks at. Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub pids: Vec<u32>,
    pub tids: Vec<u32>,
    pub comms: Vec<String>,
    /// Processes by name: a main thread's name, a program's path or its file name (see
    /// [`Profile::process_is`]).
    pub processes: Vec<String>,
    /// Modules, by full path or file name. `top_functions` lists only rows of these modules (perf's `--dsos`);
    /// stack outputs (callers, callees, folded, flamegraph) keep only samples with a frame in one of them.
    pub modules: Vec<String>,
    /// Drop kernel frames; samples left with no frame are dropped.
    pub hide_kernel: bool,
    /// Drop inline frames: each address counts for the function that owns its machine code, as `perf
    /// report`'s symbol column and `perf report --no-inline` count it (by default an inlined function is a
    /// frame of its own and takes the self time of its code).
    pub no_inline: bool,
    /// `top_functions` rows and callers/callees tree nodes under this percentage of the filtered total are
    /// folded into `[other]`. Folded stacks and flamegraphs ignore it (inferno drops narrow frames itself).
    pub percent_limit: f64,
    /// Locks, by symbol or address (`--lock`): only the waits on them and the holds that caused them.
    pub locks: Vec<String>,
}

impl Filter {
    /// Whether the filter picks samples by process or thread (`--pid`, `--tid`, `--process`), which a
    /// profile read without them (`import::Detail::Stacks`) cannot answer.
    pub fn needs_threads(&self) -> bool {
        !(self.pids.is_empty() && self.tids.is_empty() && self.processes.is_empty())
    }

    /// Whether some sample passes the label filters (`--pid`, `--tid`, `--comm`); when none does, an error
    /// that says what was asked and lists the command names the profile has, most samples first: a thread's
    /// name is often not its program's (memcached's threads are `mc-worker`, `mc-lrumaint`...).
    pub fn check_labels(&self, profile: &Profile) -> Result<(), QueryError> {
        self.check_locks(profile)?;
        let labelled = !(self.pids.is_empty()
            && self.tids.is_empty()
            && self.comms.is_empty()
            && self.processes.is_empty());
        if !labelled
            || profile.samples.is_empty()
            || profile
                .samples
                .iter()
                .any(|g| self.accepts_labels(profile, g))
        {
            return Ok(());
        }
        let mut asked = Vec::new();
        let list = |v: Vec<String>| v.join(",");
        if !self.comms.is_empty() {
            asked.push(format!("--comm {}", list(self.comms.clone())));
        }
        if !self.processes.is_empty() {
            asked.push(format!("--process {}", list(self.processes.clone())));
        }
        if !self.pids.is_empty() {
            asked.push(format!(
                "--pid {}",
                list(self.pids.iter().map(u32::to_string).collect())
            ));
        }
        if !self.tids.is_empty() {
            asked.push(format!(
                "--tid {}",
                list(self.tids.iter().map(u32::to_string).collect())
            ));
        }
        let mut by_comm: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        let mut by_process: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for g in &profile.samples {
            *by_comm.entry(profile.str(g.comm)).or_default() += g.count;
            if let Some(program) = profile.programs.get(&g.pid) {
                *by_process.entry(profile.str(program.name)).or_default() += g.count;
            }
        }
        let mut seen = most_first(by_comm);
        if !by_process.is_empty() {
            seen.push_str("; processes: ");
            seen.push_str(&most_first(by_process));
        }
        Err(QueryError::NothingMatched {
            asked: asked.join(" "),
            seen,
        })
    }

    /// Whether some lock is named by `--lock`; when none is, an error listing the locks the profile has.
    fn check_locks(&self, profile: &Profile) -> Result<(), QueryError> {
        if self.locks.is_empty()
            || profile.locks.iter().enumerate().any(|(i, _)| {
                self.locks
                    .iter()
                    .any(|n| profile.lock_is(crate::profile::LockId(i as u32), n))
            })
        {
            return Ok(());
        }
        let rows = profile.lock_rows();
        let mut seen: Vec<String> = rows
            .iter()
            .take(10)
            .map(|r| profile.lock_label(r.lock))
            .collect();
        if rows.len() > 10 {
            seen.push(format!("and {} more", rows.len() - 10));
        }
        if seen.is_empty() {
            seen.push("none (record with --locks)".to_owned());
        }
        Err(QueryError::NothingMatched {
            asked: format!("--lock {}", self.locks.join(",")),
            seen: format!("locks: {}", seen.join(", ")),
        })
    }

    /// Whether `group` passes the label filters (pid, tid, comm, process, lock).
    pub fn accepts_labels(&self, profile: &Profile, group: &SampleGroup) -> bool {
        (self.pids.is_empty() || self.pids.contains(&group.pid))
            && (self.tids.is_empty() || self.tids.contains(&group.tid))
            && (self.comms.is_empty() || self.comms.iter().any(|c| c == profile.str(group.comm)))
            && (self.processes.is_empty()
                || self
                    .processes
                    .iter()
                    .any(|p| profile.process_is(group.pid, p)))
            && (self.locks.is_empty()
                || group
                    .lock
                    .is_some_and(|l| self.locks.iter().any(|n| profile.lock_is(l, n))))
    }

    /// Whether `module` is one of `modules` (or `modules` is empty).
    pub fn accepts_module(&self, profile: &Profile, module: &ModuleKey) -> bool {
        if self.modules.is_empty() {
            return true;
        }
        let path = profile.module_name(module);
        let base = path.rsplit('/').next().unwrap_or(path);
        self.modules.iter().any(|m| m == path || m == base)
    }
}

/// `name (samples)` for the ten names with the most samples, most first, then how many more there are.
fn most_first(counts: std::collections::HashMap<&str, u64>) -> String {
    let mut seen: Vec<(&str, u64)> = counts.into_iter().collect();
    seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    const SHOWN: usize = 10;
    let mut names: Vec<String> = seen
        .iter()
        .take(SHOWN)
        .map(|(name, n)| format!("{name} ({n})"))
        .collect();
    if seen.len() > SHOWN {
        names.push(format!("and {} more", seen.len() - SHOWN));
    }
    names.join(", ")
}

/// A sample group that passed a filter, with its frames (innermost first).
#[derive(Clone, Debug)]
pub struct StackSample<'p> {
    pub group: &'p SampleGroup,
    pub frames: Vec<Frame>,
}

/// The samples that pass `filter`, with their frames expanded (kernel frames dropped if asked).
/// `require_module` applies the module list to samples (see `Filter::modules`).
pub fn filtered_samples<'p>(
    profile: &'p Profile,
    filter: &Filter,
    require_module: bool,
) -> Vec<StackSample<'p>> {
    let mut out = Vec::new();
    for group in &profile.samples {
        if !filter.accepts_labels(profile, group) {
            continue;
        }
        let mut frames = profile.frames(group.leaf);
        if filter.no_inline {
            frames.retain(|f| !f.inlined);
        }
        if filter.hide_kernel {
            frames.retain(|f| !profile.module_key(f.location).kernel);
            if frames.is_empty() && group.leaf.is_some() {
                continue;
            }
        }
        if require_module
            && !filter.modules.is_empty()
            && !frames
                .iter()
                .any(|f| filter.accepts_module(profile, &profile.module_key(f.location)))
        {
            continue;
        }
        out.push(StackSample { group, frames });
    }
    out
}

/// Period and sample count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weight {
    pub period: u64,
    pub count: u64,
}

impl Weight {
    /// Saturates rather than wraps, like the profile's totals.
    fn add(&mut self, group: &SampleGroup) {
        self.period = self.period.saturating_add(group.period);
        self.count = self.count.saturating_add(group.count);
    }

    /// This weight as a percentage of `total`'s period (0 when `total` is empty).
    pub fn percent_of(&self, total: Weight) -> f64 {
        percent(self.period, total.period)
    }
}

pub fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

fn total_weight(samples: &[StackSample<'_>]) -> Weight {
    let mut w = Weight::default();
    for s in samples {
        w.add(s.group);
    }
    w
}

// ---------------------------------------------------------------------------------------------------------
// Matching functions by name.

/// Selects functions by name: exact (ignoring an `@VERSION`/`@@VERSION` suffix on either side) or by a
/// regular expression anchored at both ends.
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Regex(Regex),
}

/// `pthread_mutex_lock@@GLIBC_2.2.5` -> `pthread_mutex_lock`. A suffix counts as a version only if it has no
/// spaces, parentheses or further `@`, so C++ signatures are left alone.
pub fn strip_version(name: &str) -> &str {
    if let Some(at) = name.find('@') {
        let rest = name[at..].trim_start_matches('@');
        if at > 0
            && !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return &name[..at];
        }
    }
    name
}

impl Matcher {
    pub fn exact(name: &str) -> Matcher {
        Matcher::Exact(strip_version(name).to_owned())
    }

    /// `pattern` must match the whole name (it is wrapped in `^(?:...)$`).
    pub fn regex(pattern: &str) -> Result<Matcher, QueryError> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(Matcher::Regex)
            .map_err(|source| QueryError::Regex {
                pattern: pattern.to_owned(),
                source,
            })
    }

    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            Matcher::Exact(want) => strip_version(name) == want,
            Matcher::Regex(re) => re.is_match(name) || re.is_match(strip_version(name)),
        }
    }

    pub fn matches(&self, profile: &Profile, key: &FuncKey) -> bool {
        key.name.is_some() && self.matches_name(profile.func_name(key))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(name) => f.write_str(name),
            Matcher::Regex(re) => {
                let s = re.as_str();
                let inner = s
                    .strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(s);
                write!(f, "/{inner}/")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Top functions.

/// A `perf report --sort` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    Comm,
    Pid,
    Tid,
    Dso,
    Sym,
}

impl SortKey {
    /// perf's default: `comm,dso,sym`.
    pub const DEFAULT: [SortKey; 3] = [SortKey::Comm, SortKey::Dso, SortKey::Sym];

    /// Parses a comma-separated list such as `comm,dso,sym`.
    pub fn parse_list(s: &str) -> Result<Vec<SortKey>, QueryError> {
        s.split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| match k.trim() {
                "comm" => Ok(SortKey::Comm),
                "pid" => Ok(SortKey::Pid),
                "tid" => Ok(SortKey::Tid),
                "dso" => Ok(SortKey::Dso),
                "sym" | "symbol" => Ok(SortKey::Sym),
                other => Err(QueryError::SortKey(other.to_owned())),
            })
            .collect()
    }
}

/// A row's identity: the components for the chosen sort keys, `None` for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub comm: Option<StrId>,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub dso: Option<ModuleKey>,
    pub sym: Option<FuncKey>,
}

impl RowKey {
    fn new(keys: &[SortKey], profile: &Profile, group: &SampleGroup, frame: &Frame) -> RowKey {
        let mut row = RowKey {
            comm: None,
            pid: None,
            tid: None,
            dso: None,
            sym: None,
        };
        for key in keys {
            match key {
                SortKey::Comm => row.comm = Some(group.comm),
                SortKey::Pid => row.pid = Some(group.pid),
                SortKey::Tid => row.tid = Some(group.tid),
                SortKey::Dso => row.dso = Some(profile.module_key(frame.location)),
                SortKey::Sym => row.sym = Some(profile.func_key(frame)),
            }
        }
        row
    }

    /// The row's module, from `dso` or `sym`.
    pub fn module(&self) -> Option<ModuleKey> {
        self.dso.or(self.sym.map(|s| s.module))
    }

    /// Text used to break ties deterministically: symbol, module, comm, then numbers.
    fn tie_break<'p>(
        &self,
        profile: &'p Profile,
    ) -> (&'p str, &'p str, &'p str, Option<u32>, Option<u32>) {
        (
            self.sym.as_ref().map_or("", |s| profile.func_name(s)),
            self.module()
                .as_ref()
                .map_or("", |m| profile.module_name(m)),
            self.comm.map_or("", |c| profile.str(c)),
            self.pid,
            self.tid,
        )
    }
}

/// One row of `top_functions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopRow {
    pub key: RowKey,
    /// Samples whose innermost frame is this row's.
    pub self_: Weight,
    /// Samples with this row anywhere on the stack, once per sample ("children" in perf).
    pub total: Weight,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopFunctions {
    /// Hottest first (by total when sorted by children, else by self); ties by name.
    pub rows: Vec<TopRow>,
    /// Self weight of the rows folded away by the percent limit (perf hides them; we say how much).
    pub other: Option<Weight>,
    /// All samples that passed the filter.
    pub total: Weight,
}

/// A stack with the labels a table shows.
type StackLabels = (Option<super::NodeId>, Labels);

/// Per-function (per `keys`) self and total weights. With `children`, rows are sorted by total, else by self
/// (and rows with no self weight are dropped, as `perf report --no-children` does).
pub fn top_functions(
    profile: &Profile,
    filter: &Filter,
    keys: &[SortKey],
    children: bool,
) -> TopFunctions {
    // Groups that differ only in labels the rows do not show (the tids of one command, say) walk their
    // stack once: the TUI runs this every refresh over thousands of groups.
    let label = |k: SortKey| keys.contains(&k);
    let (by_comm, by_pid, by_tid) = (
        label(SortKey::Comm),
        label(SortKey::Pid),
        label(SortKey::Tid),
    );
    let labels_of = |group: &SampleGroup| -> Labels {
        (
            by_comm.then_some(group.comm),
            by_pid.then_some(group.pid),
            by_tid.then_some(group.tid),
        )
    };
    let mut stacks: HashMap<StackLabels, usize> = HashMap::new();
    let mut merged: Vec<SampleGroup> = Vec::new();
    let mut total = Weight::default();
    for group in &profile.samples {
        if !filter.accepts_labels(profile, group) {
            continue;
        }
        let i = *stacks
            .entry((group.leaf, labels_of(group)))
            .or_insert_with(|| {
                merged.push(SampleGroup {
                    count: 0,
                    period: 0,
                    switches: 0,
                    blocked: 0,
                    runnable: 0,
                    ..group.clone()
                });
                merged.len() - 1
            });
        merged[i].add(group.values());
    }
    // Each location's frames as row parts (module, function), worked out the first time the location comes
    // up, and each row found by two small numbers: the TUI runs this every refresh, and the same few thousand
    // locations come back in every stack (hashing a row's whole key per frame was most of its time).
    let mut parts = RowParts::new(profile, keys, filter);
    let mut labels: HashMap<Labels, u32> = HashMap::new();
    let mut rows = Rows::default();
    // Per part, the last group it was counted in: once per sample in the totals.
    let mut counted: Vec<u32> = Vec::new();
    let mut frames: Vec<u32> = Vec::new();
    for (g, group) in (1u32..).zip(&merged) {
        frames.clear();
        for location in profile.stack(group.leaf) {
            frames.extend_from_slice(parts.of(location));
        }
        if filter.hide_kernel && frames.is_empty() && group.leaf.is_some() {
            continue;
        }
        total.add(group);
        let Some(&leaf) = frames.first() else {
            continue;
        };
        let label = labels_of(group);
        let next = u32::try_from(labels.len()).unwrap_or(u32::MAX);
        let label_id = *labels.entry(label).or_insert(next);
        let label = (label_id, label);
        rows.at(label, parts.keys[leaf as usize], leaf)
            .self_
            .add(group);
        for &part in &frames {
            if counted.get(part as usize) != Some(&g) {
                if counted.len() <= part as usize {
                    counted.resize(part as usize + 1, 0);
                }
                counted[part as usize] = g;
                rows.at(label, parts.keys[part as usize], part)
                    .total
                    .add(group);
            }
        }
    }
    let mut rows: Vec<TopRow> = rows
        .found
        .into_iter()
        .filter(|r| children || r.self_.period > 0 || r.self_.count > 0)
        .filter(|r| match r.key.module() {
            Some(m) => filter.accepts_module(profile, &m),
            None => filter.modules.is_empty(),
        })
        .collect();
    let primary = |r: &TopRow| {
        if children {
            (r.total, r.self_)
        } else {
            (r.self_, r.total)
        }
    };
    rows.sort_by(|a, b| {
        let (pa, sa) = primary(a);
        let (pb, sb) = primary(b);
        (pb.period, sb.period, pb.count)
            .cmp(&(pa.period, sa.period, pa.count))
            .then_with(|| a.key.tie_break(profile).cmp(&b.key.tie_break(profile)))
            .then_with(|| a.key.cmp(&b.key))
    });
    let mut other = None;
    if filter.percent_limit > 0.0 {
        let (keep, drop): (Vec<TopRow>, Vec<TopRow>) = rows
            .into_iter()
            .partition(|r| primary(r).0.percent_of(total) >= filter.percent_limit);
        rows = keep;
        if !drop.is_empty() {
            let mut w = Weight::default();
            for r in &drop {
                w.period += r.self_.period;
                w.count += r.self_.count;
            }
            other = Some(w);
        }
    }
    TopFunctions { rows, other, total }
}

/// The rows of [`top_functions`] as they are found, by labels and part number.
#[derive(Default)]
struct Rows {
    index: HashMap<(u32, u32), usize>,
    found: Vec<TopRow>,
}

/// The labels a table shows (comm, pid, tid), the others `None`.
type Labels = (Option<StrId>, Option<u32>, Option<u32>);

impl Rows {
    /// The row of the labels (numbered) and a frame's part (numbered), made when first asked for.
    fn at(
        &mut self,
        (label_id, labels): (u32, Labels),
        (dso, sym): (Option<ModuleKey>, Option<FuncKey>),
        part: u32,
    ) -> &mut TopRow {
        let found = &mut self.found;
        let i = *self.index.entry((label_id, part)).or_insert_with(|| {
            found.push(TopRow {
                key: RowKey {
                    comm: labels.0,
                    pid: labels.1,
                    tid: labels.2,
                    dso,
                    sym,
                },
                self_: Weight::default(),
                total: Weight::default(),
            });
            found.len() - 1
        });
        &mut found[i]
    }
}

/// The parts of rows a frame decides (its module and function, as the sort keys ask), numbered, and each
/// location's frames as those numbers (after the filter's `no_inline` and `hide_kernel`), found once per
/// location (see [`top_functions`]).
struct RowParts<'p> {
    profile: &'p Profile,
    dso: bool,
    sym: bool,
    no_inline: bool,
    hide_kernel: bool,
    keys: Vec<(Option<ModuleKey>, Option<FuncKey>)>,
    ids: HashMap<(Option<ModuleKey>, Option<FuncKey>), u32>,
    /// Per location index: its frames' span in `frames` (`u32::MAX` start: not yet seen).
    spans: Vec<(u32, u32)>,
    frames: Vec<u32>,
    scratch: Vec<Frame>,
}

impl<'p> RowParts<'p> {
    fn new(profile: &'p Profile, keys: &[SortKey], filter: &Filter) -> RowParts<'p> {
        RowParts {
            profile,
            dso: keys.contains(&SortKey::Dso),
            sym: keys.contains(&SortKey::Sym),
            no_inline: filter.no_inline,
            hide_kernel: filter.hide_kernel,
            keys: Vec::new(),
            ids: HashMap::new(),
            spans: Vec::new(),
            frames: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The frames of `location`, innermost first, as part numbers.
    fn of(&mut self, location: LocationId) -> &[u32] {
        let i = location.index();
        if i >= self.spans.len() {
            self.spans.resize(i + 1, (u32::MAX, 0));
        }
        let (start, len) = self.spans[i];
        if start == u32::MAX {
            let start = self.frames.len();
            let profile = self.profile;
            let module = profile.module_key(location);
            self.scratch.clear();
            profile.location_frames_into(location, &mut self.scratch);
            if !(self.hide_kernel && module.kernel) {
                for frame in &self.scratch {
                    if self.no_inline && frame.inlined {
                        continue;
                    }
                    let key = (
                        self.dso.then_some(module),
                        self.sym.then(|| profile.func_key(frame)),
                    );
                    let next = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                    let id = *self.ids.entry(key).or_insert_with(|| {
                        self.keys.push(key);
                        next
                    });
                    self.frames.push(id);
                }
            }
            let span = (
                u32::try_from(start).unwrap_or(u32::MAX - 1),
                u32::try_from(self.frames.len() - start).unwrap_or(0),
            );
            self.spans[i] = span;
            return &self.frames[start..];
        }
        &self.frames[start as usize..(start + len) as usize]
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
