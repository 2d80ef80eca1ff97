//! Naming, after the fact, the locations that entered a profile with a loading placeholder (`top` loads modules
//! off the sampling thread and names their addresses `[unknown] MODULE+0xOFF (loading)` meanwhile): the
//! location keeps its id, so stacks and sample groups are untouched; only its lines change.

use super::{Function, Line, Location, LocationId, Profile};
use crate::symbolize::{is_loading_name, Frame, Resolution};

impl Profile {
    /// Gives each location that is still a placeholder, in a mapping whose path is a resolution's module and at
    /// its address, the resolution's frames as lines (functions interned anew). Returns the locations that
    /// changed. A location already named is left alone, so applying a resolution twice changes nothing.
    ///
    /// When the renamed location equals one the profile already has (the same address was named before its
    /// module was evicted and loaded again), both ids stay in use and interning the content finds the older.
    pub fn resolve_placeholders(&mut self, resolutions: &[Resolution]) -> Vec<LocationId> {
        let mut renamed = Vec::new();
        if resolutions.is_empty() {
            return renamed;
        }
        let mut by_address: Vec<&Resolution> = resolutions.iter().collect();
        by_address.sort_by_key(|r| r.address);
        for index in 0..self.locations.len() {
            let location = &self.locations[index];
            let Some(mapping) = location.mapping else {
                continue;
            };
            let address = location.address;
            let first = by_address.partition_point(|r| r.address < address);
            let path = self.str(self.mapping(mapping).path);
            let Some(resolution) = by_address[first..]
                .iter()
                .take_while(|r| r.address == address)
                .find(|r| r.module == path)
            else {
                continue;
            };
            if !self.is_placeholder(location) {
                continue;
            }
            let lines = resolution
                .frames
                .iter()
                .map(|frame| self.line(frame))
                .collect();
            let id = LocationId(index as u32);
            self.reline(id, lines);
            renamed.push(id);
        }
        renamed
    }

    fn is_placeholder(&self, location: &Location) -> bool {
        !location.lines.is_empty()
            && location
                .lines
                .iter()
                .all(|l| is_loading_name(self.str(self.function(l.function).name)))
    }

    fn line(&mut self, frame: &Frame) -> Line {
        let name = self.intern(&frame.function);
        let file = frame.file.as_deref().map(|f| self.intern(f));
        Line {
            function: self.add_function(Function { name, file }),
            line: frame.line,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::query::{top_functions, Filter, SortKey};
    use crate::profile::{Mapping, MappingId, Meta};

    fn frame(name: &str) -> Frame {
        Frame {
            function: name.to_owned(),
            file: Some("a.c".to_owned()),
            line: 7,
        }
    }

    fn mapping(p: &mut Profile, path: &str) -> MappingId {
        let path = p.intern(path);
        p.add_mapping(Mapping {
            path,
            build_id: None,
            start: 0x1000,
            limit: 0x9000,
            offset: 0,
            kernel: false,
        })
    }

    fn location(p: &mut Profile, mapping: MappingId, address: u64, names: &[&str]) -> LocationId {
        let lines = names.iter().map(|n| p.line(&frame(n))).collect();
        p.add_location(Location {
            mapping: Some(mapping),
            address,
            lines,
        })
    }

    fn names(p: &Profile, id: LocationId) -> Vec<&str> {
        p.location(id)
            .lines
            .iter()
            .map(|l| p.str(p.function(l.function).name))
            .collect()
    }

    fn resolution(module: &str, address: u64, names: &[&str]) -> Resolution {
        Resolution {
            module: module.to_owned(),
            address,
            frames: names.iter().map(|n| frame(n)).collect::<Vec<_>>().into(),
        }
    }

    #[test]
    fn placeholders_are_renamed_in_place() {
        let mut p = Profile::new(Meta::default());
        let a = mapping(&mut p, "/lib/a.so");
        let b = mapping(&mut p, "/lib/b.so");
        let loading = "[unknown] a.so+0x10 (loading)";
        let waiting = location(&mut p, a, 0x1010, &[loading]);
        let other_module = location(&mut p, b, 0x1010, &["[unknown] b.so+0x10 (loading)"]);
        let named = location(&mut p, a, 0x1020, &["already"]);
        let unresolved = location(&mut p, a, 0x1030, &["[unknown] a.so+0x30 (loading)"]);
        // Seen before the module was evicted, named then.
        let earlier = location(&mut p, a, 0x1040, &["inner", "outer"]);
        let again = location(&mut p, a, 0x1040, &["[unknown] a.so+0x40 (loading)"]);
        let comm = p.intern("w");
        for (stack, period) in [
            (vec![waiting], 50),
            (vec![again, named], 30),
            (vec![earlier, named], 20),
        ] {
            p.add_sample(&stack, 1, 1, comm, 1, period);
        }
        let nodes = p.nodes.clone();
        let samples = p.samples.clone();

        let resolved = [
            resolution("/lib/a.so", 0x1010, &["hot_inline", "hot"]),
            resolution("/lib/a.so", 0x1020, &["not_a_placeholder"]),
            resolution("/lib/a.so", 0x1040, &["inner", "outer"]),
        ];
        assert_eq!(p.resolve_placeholders(&resolved).len(), 2);
        assert_eq!(names(&p, waiting), ["hot_inline", "hot"]);
        assert_eq!(p.location(waiting).lines[0].line, 7);
        assert_eq!(names(&p, other_module), ["[unknown] b.so+0x10 (loading)"]);
        assert_eq!(names(&p, named), ["already"]);
        assert_eq!(names(&p, unresolved), ["[unknown] a.so+0x30 (loading)"]);
        assert_eq!(names(&p, again), ["inner", "outer"]);
        // Stacks and samples point at the same ids.
        assert_eq!((&p.nodes, &p.samples), (&nodes, &samples));
        // Twice is once.
        assert_eq!(p.resolve_placeholders(&resolved).len(), 0);

        // The maps follow: the new content interns to its location, the placeholder is new again.
        let content = p.location(waiting).clone();
        assert_eq!(p.add_location(content), waiting);
        let content = p.location(again).clone();
        assert_eq!(p.add_location(content), earlier);
        let before = p.locations.len();
        let placeholder = location(&mut p, a, 0x1010, &[loading]);
        assert_eq!(placeholder.index(), before);

        // Queries see the names; the two ids of outer's location count as one function.
        let top = top_functions(&p, &Filter::default(), &SortKey::DEFAULT, true);
        let period = |name: &str| {
            top.rows
                .iter()
                .find(|r| r.key.sym.is_some_and(|s| p.func_name(&s) == name))
                .map(|r| r.total.period)
        };
        assert_eq!(period("hot"), Some(50));
        assert_eq!(period("outer"), Some(50));
    }
}
