//! A live profile handed over in pieces (`top`). The sampler builds one profile for the session and, each
//! refresh, cuts a [`Delta`]: the strings, mappings, functions, locations and stack nodes it appended since the
//! last cut, the older locations it renamed in place (loading placeholders named), and the interval's samples.
//! The UI adds each delta to its own profile, translating the sampler's ids into its own as it goes
//! ([`SenderIds`]): nothing is symbolized twice, and a hot address is interned once per table generation
//! instead of once per refresh.
//!
//! Generations keep both sides bounded for a session of any length. Under process churn (`top -a` over a
//! build, or for hours) new stacks keep coming, and stacks whose weight has decayed to nothing would stay
//! interned forever. So when the sampler's tables have grown past a budget it starts them afresh, and the
//! next delta says so ([`Delta::fresh`]): the UI then rebuilds its tables from the stacks its sums still
//! reference ([`Profile::compact`]) and starts a new translation.

use foldhash::{HashMap, HashMapExt, HashSet};

use super::{
    add_group_in, Function, FunctionId, GroupKey, Line, Location, LocationId, Lock, LockId,
    Mapping, MappingId, Meta, Node, NodeId, Profile, Program, SampleGroup, SampleSet, StrId,
};

/// The frame that stands for the cumulative sums' lightest stacks once a copy holds
/// [`CUMULATIVE_NODES`] nodes (see [`Profile::compact`]).
pub const SMALL_STACKS: &str = "[small stacks]";

/// At a new generation, a copy keeps its second set's stacks (the TUI's cumulative sums), heaviest first, up to
/// this many stack nodes by default ([`SampleSet::node_limit`]); the lighter ones are summed per thread under one [`SMALL_STACKS`] frame, so their
/// weight stays in every total. The first set (the TUI's decaying sums, which drop what decays below what a
/// percentage column shows) is kept whole.
pub const CUMULATIVE_NODES: usize = 50_000;

/// How many entries each table of a profile holds: where the next delta starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableMarks {
    strings: usize,
    mappings: usize,
    functions: usize,
    locations: usize,
    nodes: usize,
}

/// What a profile gained since a [`TableMarks`] (see the module comment).
#[derive(Clone, Debug, Default)]
pub struct Delta {
    pub meta: Meta,
    /// The sender's tables start afresh with this delta (`base` is empty): the receiver forgets the sender's
    /// earlier ids and keeps only the stacks its sums reference.
    pub fresh: bool,
    /// The tables' sizes this delta starts from: the receiver must have received exactly as many.
    base: TableMarks,
    strings: Vec<String>,
    mappings: Vec<Mapping>,
    functions: Vec<Function>,
    locations: Vec<Location>,
    nodes: Vec<Node>,
    /// Locations older than `base` whose lines changed, with their new lines.
    relined: Vec<(LocationId, Vec<Line>)>,
    /// The interval's sample groups, over the sender's ids.
    pub samples: Vec<SampleGroup>,
    /// Processes whose program was first seen or changed in the interval, over the sender's ids.
    programs: Vec<(u32, Program)>,
    /// Locks first seen or changed in the interval (a symbol found, a longer wait), by the sender's id.
    locks: Vec<(LockId, Lock)>,
    /// Processes that exited and were let go since the last delta. The receiver folds their sample groups
    /// into pid 0 (tid 0), one per stack and command name: under process churn (a build, `top -a` for hours)
    /// groups per dead pid would grow the receiver's sums without bound.
    pub exited: Vec<u32>,
}

/// A delta that does not start where the receiving profile ends (a bug, not bad input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a profile update does not follow the previous one ({expected:?} expected, {got:?} received)"
)]
pub struct OutOfStep {
    pub expected: TableMarks,
    pub got: TableMarks,
}

/// A receiving profile's ids for the sender's entries of the current generation, by the sender's id.
#[derive(Clone, Debug, Default)]
pub(super) struct SenderIds {
    strings: Vec<StrId>,
    mappings: Vec<MappingId>,
    functions: Vec<FunctionId>,
    locations: Vec<LocationId>,
    nodes: Vec<NodeId>,
    /// By the sender's lock id (locks are interned by pid and address, so they survive generations).
    locks: HashMap<LockId, LockId>,
}

impl SenderIds {
    fn marks(&self) -> TableMarks {
        TableMarks {
            strings: self.strings.len(),
            mappings: self.mappings.len(),
            functions: self.functions.len(),
            locations: self.locations.len(),
            nodes: self.nodes.len(),
        }
    }

    // A delta cut by `take_delta` only refers to ids below its end, which the translation holds once its
    // tables are added in order; a missing id (a bug) becomes id 0 rather than a panic.
    fn string(&self, id: StrId) -> StrId {
        self.strings.get(id.index()).copied().unwrap_or(StrId(0))
    }

    fn mapping(&self, id: MappingId) -> MappingId {
        self.mappings
            .get(id.index())
            .copied()
            .unwrap_or(MappingId(0))
    }

    fn function(&self, id: FunctionId) -> FunctionId {
        self.functions
            .get(id.index())
            .copied()
            .unwrap_or(FunctionId(0))
    }

    fn location(&self, id: LocationId) -> LocationId {
        self.locations
            .get(id.index())
            .copied()
            .unwrap_or(LocationId(0))
    }

    fn node(&self, id: NodeId) -> NodeId {
        self.nodes.get(id.index()).copied().unwrap_or(NodeId(0))
    }

    fn lines(&self, lines: Vec<Line>) -> Vec<Line> {
        lines
            .into_iter()
            .map(|l| Line {
                function: self.function(l.function),
                line: l.line,
            })
            .collect()
    }
}

impl Profile {
    /// The sizes of the tables now.
    pub fn marks(&self) -> TableMarks {
        TableMarks {
            strings: self.strings.len(),
            mappings: self.mappings.len(),
            functions: self.functions.len(),
            locations: self.locations.len(),
            nodes: self.nodes.len(),
        }
    }

    /// Cuts a delta of everything appended since `since` (then moved to the end), with the lines of the
    /// `relined` locations older than `since`, and takes the sample groups: the profile keeps its tables and
    /// starts a new interval with no samples.
    pub fn take_delta(
        &mut self,
        since: &mut TableMarks,
        relined: &[LocationId],
        exited: Vec<u32>,
    ) -> Delta {
        let base = *since;
        let relined = relined
            .iter()
            .filter(|id| id.index() < base.locations)
            .filter_map(|&id| Some((id, self.locations.get(id.index())?.lines.clone())))
            .collect();
        self.sample_ids.clear();
        let delta = Delta {
            meta: self.meta.clone(),
            fresh: false,
            base,
            strings: tail(&self.strings, base.strings),
            mappings: tail(&self.mappings, base.mappings),
            functions: tail(&self.functions, base.functions),
            locations: tail(&self.locations, base.locations),
            nodes: tail(&self.nodes, base.nodes),
            relined,
            samples: std::mem::take(&mut self.samples),
            programs: std::mem::take(&mut self.programs_changed)
                .into_iter()
                .filter_map(|pid| Some((pid, *self.programs.get(&pid)?)))
                .collect(),
            locks: self.take_changed_locks(),
            exited,
        };
        *since = self.marks();
        delta
    }

    /// Adds `delta` (cut from the sender's profile by `take_delta`) to this profile, and its samples here and
    /// to `also`, a second set of sums over this profile's stacks. A fresh delta first compacts this profile
    /// to what its sums reference. Nothing changes when the delta does not start where the last one ended.
    pub fn apply_delta(
        &mut self,
        delta: Delta,
        mut also: Option<&mut SampleSet>,
    ) -> Result<(), OutOfStep> {
        let expected = if delta.fresh {
            TableMarks::default()
        } else {
            self.sender.marks()
        };
        if delta.base != expected {
            return Err(OutOfStep {
                expected,
                got: delta.base,
            });
        }
        if delta.fresh {
            self.compact(also.as_deref_mut());
        }
        for s in delta.strings {
            let id = self.intern(&s);
            self.sender.strings.push(id);
        }
        for m in delta.mappings {
            let mapping = Mapping {
                path: self.sender.string(m.path),
                build_id: m.build_id.map(|b| self.sender.string(b)),
                ..m
            };
            let id = self.add_mapping(mapping);
            self.sender.mappings.push(id);
        }
        for f in delta.functions {
            let function = Function {
                name: self.sender.string(f.name),
                file: f.file.map(|file| self.sender.string(file)),
            };
            let id = self.add_function(function);
            self.sender.functions.push(id);
        }
        for l in delta.locations {
            let location = Location {
                mapping: l.mapping.map(|m| self.sender.mapping(m)),
                address: l.address,
                lines: self.sender.lines(l.lines),
            };
            let id = self.add_location(location);
            self.sender.locations.push(id);
        }
        for n in delta.nodes {
            let node = Node {
                parent: n.parent.map(|p| self.sender.node(p)),
                location: self.sender.location(n.location),
            };
            let id = self.add_node(node);
            self.sender.nodes.push(id);
        }
        for (id, lines) in delta.relined {
            let lines = self.sender.lines(lines);
            self.reline(self.sender.location(id), lines);
        }
        for (id, lock) in delta.locks {
            let lock = Lock {
                symbol: lock.symbol.map(|s| self.sender.string(s)),
                module: lock.module.map(|m| self.sender.string(m)),
                first: lock.first.map(|n| self.sender.node(n)),
                ..lock
            };
            let here = self.merge_lock(lock);
            self.sender.locks.insert(id, here);
        }
        for g in delta.samples {
            let key = (
                g.leaf.map(|n| self.sender.node(n)),
                g.pid,
                g.tid,
                self.sender.string(g.comm),
                g.lock.and_then(|l| self.sender.locks.get(&l).copied()),
            );
            self.add_group(key, g.values());
            if let Some(set) = also.as_deref_mut() {
                add_group_in(&mut set.samples, &mut set.ids, key, g.values());
            }
        }
        for (pid, p) in delta.programs {
            let program = Program {
                name: self.sender.string(p.name),
                path: p.path.map(|path| self.sender.string(path)),
            };
            self.programs.insert(pid, program);
        }
        if !delta.exited.is_empty() {
            // Their samples go to pid 0: what they ran goes with their pids.
            for pid in &delta.exited {
                self.programs.remove(pid);
            }
            let gone: HashSet<u32> = delta.exited.into_iter().collect();
            fold_exited(&mut self.samples, &mut self.sample_ids, &gone);
            if let Some(set) = also {
                fold_exited(&mut set.samples, &mut set.ids, &gone);
            }
        }
        self.meta = delta.meta;
        Ok(())
    }

    /// Rebuilds the tables from the stacks the sample groups reference (this profile's, all kept, then
    /// `also`'s, heaviest first, while the tables hold fewer than its `node_limit` nodes; the lighter ones
    /// are summed per thread under a [`SMALL_STACKS`] frame) and forgets the sender's ids: what no group
    /// references any more goes. Ids change; names, stacks and sums do not.
    pub fn compact(&mut self, also: Option<&mut SampleSet>) {
        let meta = std::mem::take(&mut self.meta);
        let old = std::mem::replace(self, Profile::new(meta));
        let mut copy = Copier::new(&old);
        // Every lock is kept (there are few), with its old id: groups keep pointing at it.
        for lock in &old.locks {
            let lock = Lock {
                symbol: lock.symbol.map(|s| copy.string(self, s)),
                module: lock.module.map(|m| copy.string(self, m)),
                first: lock.first.map(|n| copy.node(self, n)),
                ..lock.clone()
            };
            self.merge_lock(lock);
        }
        self.locks_changed.clear();
        for g in &old.samples {
            let leaf = g.leaf.map(|n| copy.node(self, n));
            let comm = copy.string(self, g.comm);
            self.add_group((leaf, g.pid, g.tid, comm, g.lock), g.values());
        }
        for (&pid, p) in &old.programs {
            let program = Program {
                name: copy.string(self, p.name),
                path: p.path.map(|path| copy.string(self, path)),
            };
            self.programs.insert(pid, program);
        }
        let Some(set) = also else {
            return;
        };
        let mut groups = std::mem::take(&mut set.samples);
        set.ids.clear();
        // Heaviest first by CPU period and off-CPU time together: a stack that only waits is kept as surely as
        // one that runs.
        let heft = |g: &SampleGroup| {
            g.period
                .saturating_add(g.off_cpu())
                .saturating_add(g.delay)
                .saturating_add(g.caused_delay)
        };
        groups.sort_by(|a, b| heft(b).cmp(&heft(a)).then(b.count.cmp(&a.count)));
        let mut small = None;
        for g in groups {
            let leaf = if self.nodes.len() < set.node_limit {
                g.leaf.map(|n| copy.node(self, n))
            } else {
                Some(*small.get_or_insert_with(|| self.small_stacks_node()))
            };
            let comm = copy.string(self, g.comm);
            add_group_in(
                &mut set.samples,
                &mut set.ids,
                (leaf, g.pid, g.tid, comm, g.lock),
                g.values(),
            );
        }
    }

    /// The locks added or changed since the last delta, each once.
    fn take_changed_locks(&mut self) -> Vec<(LockId, Lock)> {
        let mut ids = std::mem::take(&mut self.locks_changed);
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| Some((id, self.lock(id)?.clone())))
            .collect()
    }

    /// Adds a lock received from elsewhere (its ids already this profile's) or merges it into the same lock
    /// here: the symbol found, the first stack kept, the longest wait.
    fn merge_lock(&mut self, lock: Lock) -> LockId {
        let id = self.add_lock(lock.pid, lock.address);
        if let Some(here) = self.locks.get_mut(id.index()) {
            here.symbol = lock.symbol.or(here.symbol);
            here.module = lock.module.or(here.module);
            here.first = here.first.or(lock.first);
            here.longest = here.longest.max(lock.longest);
        }
        id
    }

    fn small_stacks_node(&mut self) -> NodeId {
        let name = self.intern(SMALL_STACKS);
        let function = self.add_function(Function { name, file: None });
        let location = self.add_location(Location {
            mapping: None,
            address: 0,
            lines: vec![Line { function, line: 0 }],
        });
        self.add_node(Node {
            parent: None,
            location,
        })
    }

    /// Gives location `id` new lines, keeping its id; the content's index follows (an equal location already
    /// interned keeps its own id, and interning the content finds that one).
    pub(super) fn reline(&mut self, id: LocationId, lines: Vec<Line>) {
        let Some(location) = self.locations.get_mut(id.index()) else {
            return;
        };
        let old = Location {
            lines: std::mem::replace(&mut location.lines, lines),
            ..location.clone()
        };
        let new = location.clone();
        if self.location_ids.get(&old) == Some(&id) {
            self.location_ids.remove(&old);
        }
        self.location_ids.entry(new).or_insert(id);
    }
}

/// Copies entries of an old profile into a new one on demand, each once ([`Profile::compact`]).
struct Copier<'p> {
    old: &'p Profile,
    strings: HashMap<StrId, StrId>,
    mappings: HashMap<MappingId, MappingId>,
    functions: HashMap<FunctionId, FunctionId>,
    locations: HashMap<LocationId, LocationId>,
    nodes: HashMap<NodeId, NodeId>,
}

impl<'p> Copier<'p> {
    fn new(old: &'p Profile) -> Copier<'p> {
        Copier {
            old,
            strings: HashMap::new(),
            mappings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    fn string(&mut self, new: &mut Profile, id: StrId) -> StrId {
        if let Some(&copied) = self.strings.get(&id) {
            return copied;
        }
        let copied = new.intern(self.old.str(id));
        self.strings.insert(id, copied);
        copied
    }

    fn mapping(&mut self, new: &mut Profile, id: MappingId) -> MappingId {
        if let Some(&copied) = self.mappings.get(&id) {
            return copied;
        }
        let old = self.old.mapping(id).clone();
        let mapping = Mapping {
            path: self.string(new, old.path),
            build_id: old.build_id.map(|b| self.string(new, b)),
            ..old
        };
        let copied = new.add_mapping(mapping);
        self.mappings.insert(id, copied);
        copied
    }

    fn function(&mut self, new: &mut Profile, id: FunctionId) -> FunctionId {
        if let Some(&copied) = self.functions.get(&id) {
            return copied;
        }
        let old = self.old.function(id).clone();
        let function = Function {
            name: self.string(new, old.name),
            file: old.file.map(|f| self.string(new, f)),
        };
        let copied = new.add_function(function);
        self.functions.insert(id, copied);
        copied
    }

    fn location(&mut self, new: &mut Profile, id: LocationId) -> LocationId {
        if let Some(&copied) = self.locations.get(&id) {
            return copied;
        }
        let old_profile = self.old;
        let old = old_profile.location(id);
        let lines = old
            .lines
            .iter()
            .map(|l| Line {
                function: self.function(new, l.function),
                line: l.line,
            })
            .collect();
        let location = Location {
            mapping: old.mapping.map(|m| self.mapping(new, m)),
            address: old.address,
            lines,
        };
        let copied = new.add_location(location);
        self.locations.insert(id, copied);
        copied
    }

    /// The node `id` and its callers, copied root first from the outermost one not copied yet.
    fn node(&mut self, new: &mut Profile, id: NodeId) -> NodeId {
        let old = self.old;
        let mut path = Vec::new();
        let mut next = Some(id);
        let mut parent = None;
        while let Some(n) = next {
            if let Some(&copied) = self.nodes.get(&n) {
                parent = Some(copied);
                break;
            }
            path.push(n);
            next = old.node(n).parent;
        }
        for &n in path.iter().rev() {
            let location = self.location(new, old.node(n).location);
            let copied = new.add_node(Node { parent, location });
            self.nodes.insert(n, copied);
            parent = Some(copied);
        }
        parent.unwrap_or(NodeId(0))
    }
}

/// Folds the groups of the `gone` processes into pid 0, tid 0 (keeping stack and command name).
fn fold_exited(
    samples: &mut Vec<SampleGroup>,
    ids: &mut foldhash::HashMap<GroupKey, usize>,
    gone: &HashSet<u32>,
) {
    if !samples.iter().any(|g| g.pid != 0 && gone.contains(&g.pid)) {
        return;
    }
    ids.clear();
    for mut g in std::mem::take(samples) {
        if gone.contains(&g.pid) {
            g.pid = 0;
            g.tid = 0;
        }
        add_group_in(samples, ids, g.key(), g.values());
    }
}

fn tail<T: Clone>(items: &[T], from: usize) -> Vec<T> {
    items.get(from..).unwrap_or_default().to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::StrId;

    /// Adds `count` samples of the stack `names` (innermost first) to `p`, one location per name.
    /// One location per function name, innermost first.
    fn stack(p: &mut Profile, names: &[&str]) -> Vec<LocationId> {
        names
            .iter()
            .map(|n| {
                let name = p.intern(n);
                let function = p.add_function(Function { name, file: None });
                p.add_location(Location {
                    mapping: None,
                    address: u64::from(name.0),
                    lines: vec![Line { function, line: 1 }],
                })
            })
            .collect()
    }

    fn add(p: &mut Profile, names: &[&str], count: u64) {
        let stack = stack(p, names);
        let comm = p.intern("w");
        p.add_sample(&stack, 1, 1, comm, count, count * 10);
    }

    fn names(p: &Profile) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = p
            .samples
            .iter()
            .map(|g| {
                let frames: Vec<&str> = p
                    .stack(g.leaf)
                    .map(|l| p.str(p.function(p.location(l).lines[0].function).name))
                    .collect();
                (frames.join(";"), g.count)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn deltas_keep_a_copy_in_step_and_sum_both_sets() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        let mut other = SampleSet::default();
        add(&mut store, &["leaf", "main"], 3);
        copy.apply_delta(
            store.take_delta(&mut marks, &[], Vec::new()),
            Some(&mut other),
        )
        .unwrap();
        assert!(store.samples.is_empty(), "the store starts a new interval");
        // The second interval: an old stack again and a new one under the same caller.
        add(&mut store, &["leaf", "main"], 2);
        add(&mut store, &["other", "main"], 1);
        let second = store.take_delta(&mut marks, &[], Vec::new());
        assert_eq!(second.locations.len(), 1, "only the new location travels");
        copy.apply_delta(second, Some(&mut other)).unwrap();
        assert_eq!(copy.marks(), store.marks());
        assert_eq!(copy.locations, store.locations);
        assert_eq!(copy.nodes, store.nodes);
        assert_eq!(
            names(&copy),
            [("leaf;main".to_owned(), 5), ("other;main".to_owned(), 1)]
        );
        copy.swap_samples(&mut other);
        assert_eq!(names(&copy).len(), 2, "the other set got the same sums");
        // The copy's indexes follow: interning finds what the deltas brought.
        assert_eq!(copy.intern("other"), store.intern("other"));
        assert_eq!(copy.marks(), store.marks());
    }

    #[test]
    fn programs_travel_once_survive_compaction_and_go_with_their_process() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        store.set_program(7, "memcached", Some("/usr/bin/memcached"));
        store.set_program(8, "sh", None);
        add(&mut store, &["leaf", "main"], 1);
        let first = store.take_delta(&mut marks, &[], Vec::new());
        assert_eq!(first.programs.len(), 2);
        copy.apply_delta(first, None).unwrap();
        assert!(copy.process_is(7, "memcached") && copy.process_is(7, "/usr/bin/memcached"));
        // Set again unchanged: nothing travels. Changed (an exec): the new one does.
        store.set_program(7, "memcached", Some("/usr/bin/memcached"));
        store.set_program(8, "ls", Some("/usr/bin/ls"));
        let second = store.take_delta(&mut marks, &[], Vec::new());
        assert_eq!(second.programs.len(), 1);
        copy.apply_delta(second, None).unwrap();
        assert!(copy.process_is(8, "ls") && !copy.process_is(8, "sh"));
        // The sender starts afresh (a new generation): the copy compacts, keeping what it knew; 8 exits.
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        add(&mut store, &["leaf", "main"], 1);
        let mut fresh = store.take_delta(&mut marks, &[], vec![8]);
        fresh.fresh = true;
        copy.apply_delta(fresh, None).unwrap();
        assert!(copy.process_is(7, "/usr/bin/memcached"));
        assert!(!copy.programs.contains_key(&8));
    }

    #[test]
    fn a_location_renamed_in_place_is_renamed_in_the_copy() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        add(&mut store, &["placeholder"], 1);
        copy.apply_delta(store.take_delta(&mut marks, &[], Vec::new()), None)
            .unwrap();
        let name = store.intern("named");
        let function = store.add_function(Function { name, file: None });
        store.reline(LocationId(0), vec![Line { function, line: 9 }]);
        add(&mut store, &["new"], 1);
        copy.apply_delta(
            store.take_delta(&mut marks, &[LocationId(0)], Vec::new()),
            None,
        )
        .unwrap();
        assert_eq!(copy.locations, store.locations);
        assert_eq!(
            names(&copy),
            [("named".to_owned(), 1), ("new".to_owned(), 1)]
        );
    }

    #[test]
    fn exited_processes_fold_into_pid_0_by_command() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        let mut other = SampleSet::default();
        let stack = stack(&mut store, &["leaf", "main"]);
        let short = store.intern("true");
        let long = store.intern("server");
        // A thousand short-lived processes with the same stack, and one that lives on.
        for pid in 1000..2000u32 {
            store.add_sample(&stack, pid, pid, short, 1, 10);
            store.add_sample(&stack, 7, 8, long, 1, 10);
            let exited = vec![pid];
            copy.apply_delta(store.take_delta(&mut marks, &[], exited), Some(&mut other))
                .unwrap();
        }
        let groups = |p: &Profile| {
            let mut g: Vec<(u32, u32, String, u64)> = p
                .samples
                .iter()
                .map(|g| (g.pid, g.tid, p.str(g.comm).to_owned(), g.count))
                .collect();
            g.sort();
            g
        };
        let expected = vec![
            (0, 0, "true".to_owned(), 1000),
            (7, 8, "server".to_owned(), 1000),
        ];
        assert_eq!(groups(&copy), expected);
        copy.swap_samples(&mut other);
        assert_eq!(groups(&copy), expected);
    }

    #[test]
    fn a_delta_out_of_step_changes_nothing() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        add(&mut store, &["a"], 1);
        let first = store.take_delta(&mut marks, &[], Vec::new());
        add(&mut store, &["b"], 1);
        let second = store.take_delta(&mut marks, &[], Vec::new());
        let mut copy = Profile::default();
        let err = copy.apply_delta(second, None).unwrap_err();
        assert_eq!(err.expected, TableMarks::default());
        assert_eq!(copy.marks(), TableMarks::default());
        assert!(copy.samples.is_empty());
        copy.apply_delta(first, None).unwrap();
        assert_eq!(copy.str(StrId(0)), "a");
    }

    #[test]
    fn a_fresh_delta_compacts_the_copy_and_keeps_every_sum() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        let mut other = SampleSet::default();
        add(&mut store, &["old", "main"], 3);
        add(&mut store, &["gone", "main"], 2);
        copy.apply_delta(
            store.take_delta(&mut marks, &[], Vec::new()),
            Some(&mut other),
        )
        .unwrap();
        // The first set (decaying) lost "gone;main" (period 20 < 25).
        copy.scale_samples(1, 1, 25);
        // The sender starts afresh: new tables, where "new" gets ids the old ones had.
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        add(&mut store, &["new", "main"], 1);
        let mut fresh = store.take_delta(&mut marks, &[], Vec::new());
        fresh.fresh = true;
        copy.apply_delta(fresh, Some(&mut other)).unwrap();
        assert_eq!(
            names(&copy),
            [("new;main".to_owned(), 1), ("old;main".to_owned(), 3)]
        );
        copy.swap_samples(&mut other);
        assert_eq!(
            names(&copy),
            [
                ("gone;main".to_owned(), 2),
                ("new;main".to_owned(), 1),
                ("old;main".to_owned(), 3)
            ]
        );
        copy.swap_samples(&mut other);
        // Deltas of the new generation follow in step, their ids translated.
        add(&mut store, &["new", "main"], 4);
        add(&mut store, &["newer", "new", "main"], 1);
        copy.apply_delta(
            store.take_delta(&mut marks, &[], Vec::new()),
            Some(&mut other),
        )
        .unwrap();
        assert_eq!(
            names(&copy),
            [
                ("new;main".to_owned(), 5),
                ("newer;new;main".to_owned(), 1),
                ("old;main".to_owned(), 3)
            ]
        );
        // A delta of the old generation is refused.
        let mut old = Profile::default();
        add(&mut old, &["x"], 1);
        add(&mut old, &["y"], 1);
        let mut old_marks = TableMarks::default();
        let _ = old.take_delta(&mut old_marks, &[], Vec::new());
        add(&mut old, &["z"], 1);
        assert!(copy
            .apply_delta(old.take_delta(&mut old_marks, &[], Vec::new()), None)
            .is_err());
    }

    #[test]
    fn compaction_lets_go_of_stacks_no_sum_references_and_folds_the_lightest() {
        let mut store = Profile::default();
        let mut marks = TableMarks::default();
        let mut copy = Profile::default();
        let mut other = SampleSet::with_node_limit(3);
        add(&mut store, &["a", "main"], 5);
        add(&mut store, &["b", "main"], 1);
        add(&mut store, &["c", "main"], 2);
        copy.apply_delta(
            store.take_delta(&mut marks, &[], Vec::new()),
            Some(&mut other),
        )
        .unwrap();
        // Nothing left in the first set: only the second set's stacks, heaviest first, up to 3 nodes.
        copy.scale_samples(0, 1, 1);
        copy.compact(Some(&mut other));
        assert!(copy.samples.is_empty());
        copy.swap_samples(&mut other);
        assert_eq!(
            names(&copy),
            [
                (SMALL_STACKS.to_owned(), 1),
                ("a;main".to_owned(), 5),
                ("c;main".to_owned(), 2)
            ]
        );
        // "b" is gone from every table; the sums are whole.
        assert_eq!(copy.total_count(), 8);
        assert_eq!(copy.nodes.len(), 4);
        assert!(copy.functions.iter().all(|f| copy.str(f.name) != "b"));
        assert!(copy.locations.len() == 4 && copy.mappings.is_empty());
    }
}
