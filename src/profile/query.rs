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

use std::collections::{HashMap, HashSet};
use std::fmt;

use regex::Regex;

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
    #[error("invalid call graph option `{0}` (expected graph|fractal|folded[,THRESHOLD[,caller|callee]])")]
    CallGraph(String),
}

impl Profile {
    /// The frames of a stack, innermost first, inline frames expanded.
    pub fn frames(&self, leaf: Option<super::NodeId>) -> Vec<Frame> {
        let mut frames = Vec::new();
        for location in self.stack(leaf) {
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
        frames
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

/// Which samples, frames and rows a query looks at. Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub pids: Vec<u32>,
    pub tids: Vec<u32>,
    pub comms: Vec<String>,
    /// Modules, by full path or file name. `top_functions` lists only rows of these modules (perf's `--dsos`);
    /// stack outputs (callers, callees, folded, flamegraph) keep only samples with a frame in one of them.
    pub modules: Vec<String>,
    /// Drop kernel frames; samples left with no frame are dropped.
    pub hide_kernel: bool,
    /// `top_functions` rows and callers/callees tree nodes under this percentage of the filtered total are
    /// folded into `[other]`. Folded stacks and flamegraphs ignore it (inferno drops narrow frames itself).
    pub percent_limit: f64,
}

impl Filter {
    fn accepts_labels(&self, profile: &Profile, group: &SampleGroup) -> bool {
        (self.pids.is_empty() || self.pids.contains(&group.pid))
            && (self.tids.is_empty() || self.tids.contains(&group.tid))
            && (self.comms.is_empty() || self.comms.iter().any(|c| c == profile.str(group.comm)))
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
    fn add(&mut self, group: &SampleGroup) {
        self.period += group.period;
        self.count += group.count;
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

/// Per-function (per `keys`) self and total weights. With `children`, rows are sorted by total, else by self
/// (and rows with no self weight are dropped, as `perf report --no-children` does).
pub fn top_functions(
    profile: &Profile,
    filter: &Filter,
    keys: &[SortKey],
    children: bool,
) -> TopFunctions {
    let samples = filtered_samples(profile, filter, false);
    let total = total_weight(&samples);
    let mut rows: HashMap<RowKey, TopRow> = HashMap::new();
    let mut seen: HashSet<RowKey> = HashSet::new();
    for s in &samples {
        let Some(leaf) = s.frames.first() else {
            continue;
        };
        let key = RowKey::new(keys, profile, s.group, leaf);
        row_entry(&mut rows, key).self_.add(s.group);
        seen.clear();
        for frame in &s.frames {
            let key = RowKey::new(keys, profile, s.group, frame);
            if seen.insert(key) {
                row_entry(&mut rows, key).total.add(s.group);
            }
        }
    }
    let mut rows: Vec<TopRow> = rows
        .into_values()
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

fn row_entry(rows: &mut HashMap<RowKey, TopRow>, key: RowKey) -> &mut TopRow {
    rows.entry(key).or_insert(TopRow {
        key,
        self_: Weight::default(),
        total: Weight::default(),
    })
}

// ---------------------------------------------------------------------------------------------------------
// Call trees.

/// A node of a `CallTree`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// The function; meaningless when `other` is set.
    pub func: FuncKey,
    /// Set on the node that `fold_below` made of small siblings: display it as `[other]`.
    pub other: bool,
    /// Samples whose path goes through this node.
    pub weight: Weight,
    /// Samples whose path ends at this node.
    pub self_weight: Weight,
    pub parent: Option<usize>,
    /// Sorted heaviest first, ties by name, once `finish` has run.
    pub children: Vec<usize>,
}

/// A forest of paths merged by function, each node with the weight of the samples whose path passes through it.
/// What a root is depends on the query: the function itself for `callers_of`/`callees_of`, the outermost frame
/// or the entry's function for the report's per-entry graphs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTree {
    pub nodes: Vec<TreeNode>,
    pub roots: Vec<usize>,
    /// Weight of all samples that passed the filter (the "of all" denominator).
    pub total: Weight,
    index: HashMap<(Option<usize>, FuncKey), usize>,
}

impl CallTree {
    fn new(total: Weight) -> CallTree {
        CallTree {
            total,
            ..CallTree::default()
        }
    }

    /// Sum of the roots' weights (the "of the function" denominator for callers/callees trees).
    pub fn roots_weight(&self) -> Weight {
        let mut w = Weight::default();
        for &r in &self.roots {
            w.period += self.nodes[r].weight.period;
            w.count += self.nodes[r].weight.count;
        }
        w
    }

    fn add_path(&mut self, path: impl IntoIterator<Item = FuncKey>, group: &SampleGroup) {
        let mut parent = None;
        for func in path {
            let next = self.nodes.len();
            let id = *self.index.entry((parent, func)).or_insert(next);
            if id == next {
                self.nodes.push(TreeNode {
                    func,
                    other: false,
                    weight: Weight::default(),
                    self_weight: Weight::default(),
                    parent,
                    children: Vec::new(),
                });
                match parent {
                    Some(p) => self.nodes[p].children.push(id),
                    None => self.roots.push(id),
                }
            }
            self.nodes[id].weight.add(group);
            parent = Some(id);
        }
        if let Some(last) = parent {
            self.nodes[last].self_weight.add(group);
        }
    }

    /// Sorts roots and children heaviest first, ties by function name then module.
    fn finish(&mut self, profile: &Profile) {
        let nodes = &self.nodes;
        let order = |a: &usize, b: &usize| {
            let (na, nb) = (&nodes[*a], &nodes[*b]);
            (nb.weight.period, nb.weight.count)
                .cmp(&(na.weight.period, na.weight.count))
                .then_with(|| na.other.cmp(&nb.other))
                .then_with(|| profile.func_name(&na.func).cmp(profile.func_name(&nb.func)))
                .then_with(|| {
                    profile
                        .module_name(&na.func.module)
                        .cmp(profile.module_name(&nb.func.module))
                })
                .then_with(|| na.func.cmp(&nb.func))
        };
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by(order);
        let mut all_children: Vec<Vec<usize>> =
            self.nodes.iter().map(|n| n.children.clone()).collect();
        for children in &mut all_children {
            children.sort_by(order);
        }
        for (node, children) in self.nodes.iter_mut().zip(all_children) {
            node.children = children;
        }
        self.roots = roots;
    }

    /// Replaces the children (below the roots) lighter than `min_period` by one `[other]` child per parent.
    /// The folded subtrees stay in `nodes` but are no longer reachable.
    pub fn fold_below(&mut self, min_period: u64) {
        for id in 0..self.nodes.len() {
            let children = std::mem::take(&mut self.nodes[id].children);
            let (keep, drop): (Vec<usize>, Vec<usize>) = children
                .into_iter()
                .partition(|&c| self.nodes[c].weight.period >= min_period);
            let mut kept = keep;
            if !drop.is_empty() {
                let mut w = Weight::default();
                for &c in &drop {
                    w.period += self.nodes[c].weight.period;
                    w.count += self.nodes[c].weight.count;
                }
                let func = self.nodes[drop[0]].func;
                let other = self.nodes.len();
                self.nodes.push(TreeNode {
                    func,
                    other: true,
                    weight: w,
                    self_weight: w,
                    parent: Some(id),
                    children: Vec::new(),
                });
                kept.push(other);
            }
            self.nodes[id].children = kept;
        }
    }
}

/// Which way a tree grows from a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Toward callers (the root is the function, its children call it).
    Callers,
    /// Toward callees (the root is the function, its children are called by it).
    Callees,
}

/// Every sample with a matching function on its stack, counted once at its outermost matching frame, as a tree
/// rooted at the matched function(s) growing toward the callers.
pub fn callers_of(profile: &Profile, filter: &Filter, matcher: &Matcher) -> CallTree {
    function_tree(profile, filter, matcher, Direction::Callers)
}

/// Same as `callers_of`, growing from the outermost matching frame toward the leaf.
pub fn callees_of(profile: &Profile, filter: &Filter, matcher: &Matcher) -> CallTree {
    function_tree(profile, filter, matcher, Direction::Callees)
}

pub fn function_tree(
    profile: &Profile,
    filter: &Filter,
    matcher: &Matcher,
    direction: Direction,
) -> CallTree {
    let samples = filtered_samples(profile, filter, true);
    let mut tree = CallTree::new(total_weight(&samples));
    let mut matches: HashMap<FuncKey, bool> = HashMap::new();
    for s in &samples {
        let keys: Vec<FuncKey> = s.frames.iter().map(|f| profile.func_key(f)).collect();
        // Frames are innermost first: the outermost occurrence is the last match.
        let Some(at) = keys.iter().rposition(|k| {
            *matches
                .entry(*k)
                .or_insert_with(|| matcher.matches(profile, k))
        }) else {
            continue;
        };
        match direction {
            Direction::Callers => tree.add_path(keys[at..].iter().copied(), s.group),
            Direction::Callees => tree.add_path(keys[..=at].iter().rev().copied(), s.group),
        }
    }
    tree.finish(profile);
    tree
}

// ---------------------------------------------------------------------------------------------------------
// The report's per-entry call graphs (perf report -g).

/// How the report draws an entry's call graph (`-g graph|fractal|folded[,THRESHOLD[,caller|callee]]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphOptions {
    pub mode: GraphMode,
    /// Branches under this percentage are hidden: of all samples for `graph`, of the parent for `fractal`.
    pub threshold: f64,
    /// `None`: perf's default, caller with `--children` and callee without.
    pub order: Option<GraphOrder>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphMode {
    /// Percentages of all samples.
    Graph,
    /// Percentages of the parent branch.
    Fractal,
    /// One line per path: `percent a;b;c`.
    Folded,
    /// No call graph.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphOrder {
    /// Root first: from the outermost caller down to the entry (and from the entry to its callees).
    Caller,
    /// Leaf first: from the entry toward its callers.
    Callee,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            mode: GraphMode::Graph,
            threshold: 0.5,
            order: None,
        }
    }
}

impl GraphOptions {
    /// Parses perf's `-g` argument: `graph|fractal|folded|none[,THRESHOLD[,caller|callee]]`; fields may be
    /// omitted or given in any order, as perf allows.
    pub fn parse(s: &str) -> Result<GraphOptions, QueryError> {
        let mut opts = GraphOptions::default();
        let err = || QueryError::CallGraph(s.to_owned());
        for field in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            match field {
                "graph" => opts.mode = GraphMode::Graph,
                "fractal" => opts.mode = GraphMode::Fractal,
                "folded" => opts.mode = GraphMode::Folded,
                "none" => opts.mode = GraphMode::None,
                "caller" => opts.order = Some(GraphOrder::Caller),
                "callee" => opts.order = Some(GraphOrder::Callee),
                // perf's extra fields that do not change what we draw.
                "function" | "percent" => {}
                number => {
                    let t: f64 = number.parse().map_err(|_| err())?;
                    if !(0.0..=100.0).contains(&t) {
                        return Err(err());
                    }
                    opts.threshold = t;
                }
            }
        }
        Ok(opts)
    }

    pub fn order(&self, children: bool) -> GraphOrder {
        self.order.unwrap_or(if children {
            GraphOrder::Caller
        } else {
            GraphOrder::Callee
        })
    }
}

/// Which branches of an entry's graph are expanded: the ones `perf report -g` would draw. Hidden branches stay
/// as unexpanded nodes, so a parent still knows its weight and its number of children.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Prune {
    /// Expand branches of at least this period (`graph` and `folded`: a share of all samples).
    Below(f64),
    /// Expand branches of at least this percentage of their siblings' sum (`fractal`).
    Fraction(f64),
}

impl Prune {
    fn keeps(self, weight: u64, siblings: u64) -> bool {
        match self {
            Prune::Below(min) => weight as f64 >= min,
            Prune::Fraction(t) => weight as f64 >= (siblings as f64 * t / 100.0).ceil(),
        }
    }
}

/// One sample's path in one entry's graph: `keys[sample][start..]`.
#[derive(Clone, Copy, Debug)]
struct PathRef {
    sample: u32,
    start: u32,
}

/// The call graph of each of `rows` as `perf report -g` draws it (`opts` gives the mode, the threshold
/// and the order; see `GraphOptions::order` for the default order).
///
/// For a row's self samples the path is the whole stack (root first in caller order, leaf first in callee
/// order). With `children`, a sample where the row appears but is not the innermost frame adds the path from
/// the row's first occurrence in the chosen order to the end: in caller order from the outermost occurrence
/// down to the leaf, in callee order from the innermost occurrence up to the root (perf's rule: a sample is
/// added once per entry, at the first occurrence met).
///
/// Only the branches that will be drawn are expanded (branches under the threshold keep their weight but
/// not their subtrees), so memory stays proportional to the drawing, not to rows x samples x depth.
pub fn entry_graphs(
    profile: &Profile,
    filter: &Filter,
    keys: &[SortKey],
    rows: &[RowKey],
    children: bool,
    opts: &GraphOptions,
) -> Vec<CallTree> {
    let samples = filtered_samples(profile, filter, false);
    let total = total_weight(&samples);
    let order = opts.order(children);
    let prune = match opts.mode {
        GraphMode::Fractal => Prune::Fraction(opts.threshold),
        _ => Prune::Below(total.period as f64 * opts.threshold / 100.0),
    };
    let index: HashMap<RowKey, usize> = rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let mut refs: Vec<Vec<PathRef>> = vec![Vec::new(); rows.len()];
    // Function keys of each sample, root first for the caller order, leaf first for the callee order.
    let mut ordered: Vec<Vec<FuncKey>> = Vec::with_capacity(samples.len());
    let mut done: HashSet<RowKey> = HashSet::new();
    for (n, s) in samples.iter().enumerate() {
        let frames: Vec<&Frame> = match order {
            GraphOrder::Caller => s.frames.iter().rev().collect(),
            GraphOrder::Callee => s.frames.iter().collect(),
        };
        ordered.push(frames.iter().map(|f| profile.func_key(f)).collect());
        let (Some(leaf), Ok(sample)) = (s.frames.first(), u32::try_from(n)) else {
            continue;
        };
        if opts.mode == GraphMode::None {
            continue;
        }
        let self_key = RowKey::new(keys, profile, s.group, leaf);
        if let Some(&i) = index.get(&self_key) {
            refs[i].push(PathRef { sample, start: 0 });
        }
        if !children {
            continue;
        }
        done.clear();
        done.insert(self_key);
        for (pos, frame) in frames.iter().enumerate() {
            let key = RowKey::new(keys, profile, s.group, frame);
            if !done.insert(key) {
                continue;
            }
            if let (Some(&i), Ok(start)) = (index.get(&key), u32::try_from(pos)) {
                refs[i].push(PathRef { sample, start });
            }
        }
    }
    refs.into_iter()
        .map(|r| {
            let mut tree = CallTree::new(total);
            grow(&mut tree, &samples, &ordered, r, prune);
            tree.finish(profile);
            tree
        })
        .collect()
}

/// Builds `tree` from `refs`, level by level, expanding only the branches `prune` keeps.
fn grow(
    tree: &mut CallTree,
    samples: &[StackSample<'_>],
    keys: &[Vec<FuncKey>],
    refs: Vec<PathRef>,
    prune: Prune,
) {
    let path = |r: &PathRef| -> &[FuncKey] {
        keys.get(r.sample as usize)
            .and_then(|k| k.get(r.start as usize..))
            .unwrap_or(&[])
    };
    // Work items: (parent, depth of the children to make, the paths through the parent).
    let mut work: Vec<(Option<usize>, usize, Vec<PathRef>)> = vec![(None, 0, refs)];
    while let Some((parent, depth, refs)) = work.pop() {
        let mut groups: Vec<(FuncKey, Vec<PathRef>)> = Vec::new();
        let mut group_of: HashMap<FuncKey, usize> = HashMap::new();
        for r in refs {
            let Some(&key) = path(&r).get(depth) else {
                continue;
            };
            let g = *group_of.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(r);
        }
        let weights: Vec<(Weight, Weight)> = groups
            .iter()
            .map(|(_, refs)| {
                let (mut weight, mut self_weight) = (Weight::default(), Weight::default());
                for r in refs {
                    let group = samples[r.sample as usize].group;
                    weight.add(group);
                    if path(r).len() == depth + 1 {
                        self_weight.add(group);
                    }
                }
                (weight, self_weight)
            })
            .collect();
        let siblings: u64 = weights.iter().map(|(w, _)| w.period).sum();
        for ((func, refs), (weight, self_weight)) in groups.into_iter().zip(weights) {
            let id = tree.nodes.len();
            tree.nodes.push(TreeNode {
                func,
                other: false,
                weight,
                self_weight,
                parent,
                children: Vec::new(),
            });
            match parent {
                Some(p) => tree.nodes[p].children.push(id),
                None => tree.roots.push(id),
            }
            if prune.keeps(weight.period, siblings) {
                work.push((Some(id), depth + 1, refs));
            }
        }
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
