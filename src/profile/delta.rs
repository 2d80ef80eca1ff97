//! A live profile handed over in pieces (`top`). The sampler builds one profile for the whole session and, each
//! refresh, cuts a [`Delta`]: the strings, mappings, functions, locations and stack nodes it appended since the
//! last cut, the older locations it renamed in place (loading placeholders named), and the interval's samples.
//! The UI appends each delta to its copy of the same tables, so ids agree on both sides: nothing is interned
//! twice, and a hot address is symbolized and interned once per session instead of once per refresh.

use foldhash::HashSet;

use super::{
    add_group_in, Function, GroupKey, Line, Location, LocationId, Mapping, Meta, Node, Profile,
    SampleGroup, SampleSet,
};

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
    /// The tables' sizes this delta starts from: the receiving profile must hold exactly as many.
    base: TableMarks,
    strings: Vec<String>,
    mappings: Vec<Mapping>,
    functions: Vec<Function>,
    locations: Vec<Location>,
    nodes: Vec<Node>,
    /// Locations older than `base` whose lines changed, with their new lines.
    relined: Vec<(LocationId, Vec<Line>)>,
    /// The interval's sample groups, over the ids of the whole profile.
    pub samples: Vec<SampleGroup>,
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
            base,
            strings: tail(&self.strings, base.strings),
            mappings: tail(&self.mappings, base.mappings),
            functions: tail(&self.functions, base.functions),
            locations: tail(&self.locations, base.locations),
            nodes: tail(&self.nodes, base.nodes),
            relined,
            samples: std::mem::take(&mut self.samples),
            exited,
        };
        *since = self.marks();
        delta
    }

    /// Appends `delta` (cut from a profile whose tables this one copies) and adds its samples here and to
    /// `also`, a second set of sums over this profile's stacks. Nothing changes when the delta does not start
    /// where this profile ends.
    pub fn apply_delta(
        &mut self,
        delta: Delta,
        mut also: Option<&mut SampleSet>,
    ) -> Result<(), OutOfStep> {
        if delta.base != self.marks() {
            return Err(OutOfStep {
                expected: self.marks(),
                got: delta.base,
            });
        }
        append(&mut self.strings, &mut self.string_ids, delta.strings);
        append(&mut self.mappings, &mut self.mapping_ids, delta.mappings);
        append(&mut self.functions, &mut self.function_ids, delta.functions);
        append(&mut self.locations, &mut self.location_ids, delta.locations);
        append(&mut self.nodes, &mut self.node_ids, delta.nodes);
        for (id, lines) in delta.relined {
            self.reline(id, lines);
        }
        for g in delta.samples {
            let key = (g.leaf, g.pid, g.tid, g.comm);
            self.add_group(key, g.count, g.period);
            if let Some(set) = also.as_deref_mut() {
                add_group_in(&mut set.samples, &mut set.ids, key, g.count, g.period);
            }
        }
        if !delta.exited.is_empty() {
            let gone: HashSet<u32> = delta.exited.into_iter().collect();
            fold_exited(&mut self.samples, &mut self.sample_ids, &gone);
            if let Some(set) = also {
                fold_exited(&mut set.samples, &mut set.ids, &gone);
            }
        }
        self.meta = delta.meta;
        Ok(())
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
        add_group_in(
            samples,
            ids,
            (g.leaf, g.pid, g.tid, g.comm),
            g.count,
            g.period,
        );
    }
}

fn tail<T: Clone>(items: &[T], from: usize) -> Vec<T> {
    items.get(from..).unwrap_or_default().to_vec()
}

/// Pushes `new` items with the ids they had where they were cut from (their positions), indexing each.
fn append<T: Clone + Eq + std::hash::Hash, I: From<u32> + Copy>(
    items: &mut Vec<T>,
    ids: &mut foldhash::HashMap<T, I>,
    new: Vec<T>,
) {
    for item in new {
        let id = I::from(items.len() as u32);
        ids.entry(item.clone()).or_insert(id);
        items.push(item);
    }
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
}
