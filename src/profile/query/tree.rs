//! Call trees over the filtered samples: `callers_of` / `callees_of` (rooted at a function, each sample
//! counted once at its outermost occurrence) and the report's per-entry graphs (`entry_graphs`, perf's rules).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::{
    filtered_samples, total_weight, Filter, Frame, FuncKey, Matcher, QueryError, RowKey, SortKey,
    StackSample, Weight,
};
use crate::profile::{Profile, SampleGroup};

/// A node of a `CallTree`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// The function; meaningless when `other` is set.
    pub func: FuncKey,
    /// Set on the node that `fold_below` made of small siblings: display it as `[other]`.
    pub other: bool,
    /// Set on the node that stands for the frames past `MAX_GRAPH_DEPTH` (report graphs only): its weight is
    /// that of the paths that go deeper, and they all end at it.
    pub cut: bool,
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
                    cut: false,
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
                    cut: false,
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

/// Levels an entry's graph is drawn to; the paths that go deeper end in one `cut` node. perf keeps 127 frames
/// of a call chain (`kernel.perf_event_max_stack`); without a cap a stack of depth d draws about d levels under
/// each of its d functions, d^2 lines for one sample.
pub const MAX_GRAPH_DEPTH: usize = 128;

/// The call graph of each of `rows` as `perf report -g` draws it (`opts` gives the mode, the threshold
/// and the order; see `GraphOptions::order` for the default order). See [`EntryGraphs`], which builds them one at
/// a time.
pub fn entry_graphs(
    profile: &Profile,
    filter: &Filter,
    keys: &[SortKey],
    rows: &[RowKey],
    children: bool,
    opts: &GraphOptions,
) -> Vec<CallTree> {
    let mut graphs = EntryGraphs::new(profile, filter, keys, rows, children, opts);
    (0..rows.len()).map(|i| graphs.tree(i)).collect()
}

/// The samples' paths through each entry, from which each entry's graph is built when it is drawn: the report
/// holds one graph at a time, so memory follows the samples, not rows x depth.
///
/// For a row's self samples the path is the whole stack (root first in caller order, leaf first in callee
/// order). With `children`, a sample where the row appears but is not the innermost frame adds the path from
/// the row's first occurrence in the chosen order to the end: in caller order from the outermost occurrence
/// down to the leaf, in callee order from the innermost occurrence up to the root (perf's rule: a sample is
/// added once per entry, at the first occurrence met).
///
/// Only the branches that will be drawn are expanded (branches under the threshold keep their weight but
/// not their subtrees), to at most `MAX_GRAPH_DEPTH` levels.
pub struct EntryGraphs<'p> {
    profile: &'p Profile,
    samples: Vec<StackSample<'p>>,
    /// Function keys of each sample, root first for the caller order, leaf first for the callee order.
    ordered: Vec<Vec<FuncKey>>,
    /// Each row's paths; taken by `tree`.
    refs: Vec<Vec<PathRef>>,
    total: Weight,
    prune: Prune,
}

impl<'p> EntryGraphs<'p> {
    pub fn new(
        profile: &'p Profile,
        filter: &Filter,
        keys: &[SortKey],
        rows: &[RowKey],
        children: bool,
        opts: &GraphOptions,
    ) -> EntryGraphs<'p> {
        let samples = filtered_samples(profile, filter, false);
        let total = total_weight(&samples);
        let order = opts.order(children);
        let prune = match opts.mode {
            GraphMode::Fractal => Prune::Fraction(opts.threshold),
            _ => Prune::Below(total.period as f64 * opts.threshold / 100.0),
        };
        let index: HashMap<RowKey, usize> = rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let mut refs: Vec<Vec<PathRef>> = vec![Vec::new(); rows.len()];
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
        EntryGraphs {
            profile,
            samples,
            ordered,
            refs,
            total,
            prune,
        }
    }

    /// The graph of row `i` (empty when asked twice).
    pub fn tree(&mut self, i: usize) -> CallTree {
        let refs = self.refs.get_mut(i).map(std::mem::take).unwrap_or_default();
        let mut tree = CallTree::new(self.total);
        grow(&mut tree, &self.samples, &self.ordered, refs, self.prune);
        tree.finish(self.profile);
        tree
    }
}

/// Builds `tree` from `refs`, level by level, expanding only the branches `prune` keeps, to `MAX_GRAPH_DEPTH`.
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
        if let (Some(p), true) = (parent, depth >= MAX_GRAPH_DEPTH) {
            let mut weight = Weight::default();
            for r in refs.iter().filter(|r| path(r).len() > depth) {
                weight.add(samples[r.sample as usize].group);
            }
            if weight != Weight::default() {
                let id = tree.nodes.len();
                tree.nodes.push(TreeNode {
                    func: tree.nodes[p].func,
                    other: false,
                    cut: true,
                    weight,
                    self_weight: weight,
                    parent,
                    children: Vec::new(),
                });
                tree.nodes[p].children.push(id);
            }
            continue;
        }
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
                cut: false,
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
