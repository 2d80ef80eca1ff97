//! Adding one profile into another, with the sample weights scaled (every string, location and stack
//! re-interned, so the other profile may come from anywhere), and scaling a profile's weights in place: the
//! TUI's decaying sums lose 1/8 each refresh, as perf top's do.

use super::{
    Function, GroupKey, Location, LocationId, Mapping, Node, NodeId, Profile, SampleGroup,
    SampleSet, StrId,
};
use foldhash::HashMap;

impl Profile {
    /// Adds every sample group of `other` with its count and period multiplied by `num / den` (rounded down);
    /// groups whose period rounds to less than `min_period` are left out. Strings, functions, locations and
    /// stacks are re-interned, so `other` may come from anywhere.
    pub fn merge_scaled(&mut self, other: &Profile, num: u64, den: u64, min_period: u64) {
        let den = den.max(1);
        let mut merger = Merger {
            from: other,
            strings: vec![None; other.strings.len()],
            locations: vec![None; other.locations.len()],
            nodes: vec![None; other.nodes.len()],
            path: Vec::new(),
        };
        for group in &other.samples {
            let period = scale(group.period, num, den);
            if period < min_period.max(1) && group.period > 0 {
                continue;
            }
            let count = scale(group.count, num, den);
            let leaf = group.leaf.map(|n| merger.node(self, n));
            let comm = merger.string(self, group.comm);
            self.add_group((leaf, group.pid, group.tid, comm), count, period);
        }
    }

    /// Multiplies every sample group's count and period by `num / den` in place and drops the groups whose
    /// period falls below `min_period`. Cheaper than `merge_scaled` into a fresh profile (nothing is
    /// re-interned), but the stacks of dropped groups stay interned until the profile is rebuilt.
    pub fn scale_samples(&mut self, num: u64, den: u64, min_period: u64) {
        scale_groups(
            &mut self.samples,
            &mut self.sample_ids,
            num,
            den,
            min_period,
        );
    }
}

impl SampleSet {
    /// [`Profile::scale_samples`] of this set.
    pub fn scale_samples(&mut self, num: u64, den: u64, min_period: u64) {
        scale_groups(&mut self.samples, &mut self.ids, num, den, min_period);
    }
}

fn scale_groups(
    samples: &mut Vec<SampleGroup>,
    ids: &mut HashMap<GroupKey, usize>,
    num: u64,
    den: u64,
    min_period: u64,
) {
    let den = den.max(1);
    for group in samples.iter_mut() {
        group.period = scale(group.period, num, den);
        group.count = scale(group.count, num, den);
    }
    let before = samples.len();
    samples.retain(|g| g.period >= min_period.max(1));
    if samples.len() != before {
        *ids = samples
            .iter()
            .enumerate()
            .map(|(i, g)| ((g.leaf, g.pid, g.tid, g.comm), i))
            .collect();
    }
}

fn scale(value: u64, num: u64, den: u64) -> u64 {
    (u128::from(value) * u128::from(num) / u128::from(den)) as u64
}

/// Ids of `from` already copied into the destination, indexed by `from`'s ids (they are dense), so a merge
/// hashes each string, location and node of `from` once, when it is first copied.
struct Merger<'a> {
    from: &'a Profile,
    strings: Vec<Option<StrId>>,
    locations: Vec<Option<LocationId>>,
    nodes: Vec<Option<NodeId>>,
    /// Reused by `node`.
    path: Vec<NodeId>,
}

/// `map[id]`, treating an id out of range (a profile built inconsistently) as not yet copied.
fn copied<T: Copy>(map: &[Option<T>], index: usize) -> Option<T> {
    map.get(index).copied().flatten()
}

fn remember<T>(map: &mut [Option<T>], index: usize, value: T) {
    if let Some(slot) = map.get_mut(index) {
        *slot = Some(value);
    }
}

impl Merger<'_> {
    fn string(&mut self, to: &mut Profile, id: StrId) -> StrId {
        if let Some(done) = copied(&self.strings, id.index()) {
            return done;
        }
        let new = to.intern(self.from.str(id));
        remember(&mut self.strings, id.index(), new);
        new
    }

    fn location(&mut self, to: &mut Profile, id: LocationId) -> LocationId {
        if let Some(done) = copied(&self.locations, id.index()) {
            return done;
        }
        let from = self.from;
        let loc = from.location(id);
        let mapping = loc.mapping.map(|m| {
            let m = from.mapping(m);
            let mapping = Mapping {
                path: self.string(to, m.path),
                build_id: m.build_id.map(|b| self.string(to, b)),
                ..m.clone()
            };
            to.add_mapping(mapping)
        });
        let lines = loc
            .lines
            .iter()
            .map(|line| {
                let f = from.function(line.function);
                let function = Function {
                    name: self.string(to, f.name),
                    file: f.file.map(|s| self.string(to, s)),
                };
                super::Line {
                    function: to.add_function(function),
                    line: line.line,
                }
            })
            .collect();
        let new = to.add_location(Location {
            mapping,
            address: loc.address,
            lines,
        });
        remember(&mut self.locations, id.index(), new);
        new
    }

    fn node(&mut self, to: &mut Profile, id: NodeId) -> NodeId {
        if let Some(done) = copied(&self.nodes, id.index()) {
            return done;
        }
        // Walk up to the first node already copied (or the root), then copy downward: no recursion, so a
        // 10,000-frame stack cannot overflow ours.
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        path.push(id);
        let mut parent = None;
        while let Some(&last) = path.last() {
            match self.from.node(last).parent {
                Some(p) => match copied(&self.nodes, p.index()) {
                    Some(done) => {
                        parent = Some(done);
                        break;
                    }
                    None => path.push(p),
                },
                None => break,
            }
        }
        for &old in path.iter().rev() {
            let location = self.location(to, self.from.node(old).location);
            let new = to.add_node(Node { parent, location });
            remember(&mut self.nodes, old.index(), new);
            parent = Some(new);
        }
        self.path = path;
        parent.unwrap_or(NodeId(0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::Meta;

    fn profile(stacks: &[(&[&str], u64)]) -> Profile {
        let mut p = Profile::new(Meta::default());
        for (names, period) in stacks {
            let stack: Vec<LocationId> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let name = p.intern(n);
                    let function = p.add_function(Function { name, file: None });
                    p.add_location(Location {
                        mapping: None,
                        address: i as u64,
                        lines: vec![super::super::Line { function, line: 0 }],
                    })
                })
                .collect();
            let comm = p.intern("w");
            p.add_sample(&stack, 1, 1, comm, 1, *period);
        }
        p
    }

    #[test]
    fn merging_adds_and_scales() {
        let a = profile(&[(&["leaf", "main"], 800), (&["other", "main"], 8)]);
        let b = profile(&[(&["leaf", "main"], 100)]);
        let mut m = Profile::default();
        m.merge_scaled(&a, 7, 8, 10);
        m.merge_scaled(&b, 1, 1, 0);
        // 800*7/8 + 100; the 8-period group decays to 7 < 10 and is dropped.
        assert_eq!(m.samples.len(), 1);
        assert_eq!(m.samples[0].period, 800);
        let frames: Vec<&str> = m
            .stack(m.samples[0].leaf)
            .map(|l| m.str(m.function(m.location(l).lines[0].function).name))
            .collect();
        assert_eq!(frames, ["leaf", "main"]);

        // In place: the same result, and adding to a kept group still finds it.
        let mut q = a.clone();
        q.scale_samples(7, 8, 10);
        q.merge_scaled(&b, 1, 1, 0);
        assert_eq!(q.samples.len(), 1);
        assert_eq!(q.samples[0].period, 800);
    }
}
