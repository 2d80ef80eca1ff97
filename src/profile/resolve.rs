//! Naming, after the fact, a location that entered a profile with a loading placeholder (`top` loads modules
//! off the sampling thread and names their addresses `[unknown] MODULE+0xOFF (loading)` meanwhile): the
//! location keeps its id, so stacks and sample groups are untouched; only its lines change. Which locations
//! are placeholders is the pipeline's business: it renames them by id.

use super::{Function, Line, LocationId, Profile};
use crate::symbolize::Frame;

impl Profile {
    /// Gives location `id` `frames` as its lines (functions interned anew).
    ///
    /// When the renamed location equals one the profile already has, both ids stay in use and interning the
    /// content finds the older.
    pub fn rename(&mut self, id: LocationId, frames: &[Frame]) {
        let lines = frames.iter().map(|frame| self.line(frame)).collect();
        self.reline(id, lines);
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
    use crate::profile::{Location, Mapping, MappingId, Meta};

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

        let frames = |names: &[&str]| names.iter().map(|n| frame(n)).collect::<Vec<_>>();
        p.rename(waiting, &frames(&["hot_inline", "hot"]));
        p.rename(again, &frames(&["inner", "outer"]));
        assert_eq!(names(&p, waiting), ["hot_inline", "hot"]);
        assert_eq!(p.location(waiting).lines[0].line, 7);
        assert_eq!(names(&p, other_module), ["[unknown] b.so+0x10 (loading)"]);
        assert_eq!(names(&p, named), ["already"]);
        assert_eq!(names(&p, unresolved), ["[unknown] a.so+0x30 (loading)"]);
        assert_eq!(names(&p, again), ["inner", "outer"]);
        // Stacks and samples point at the same ids.
        assert_eq!((&p.nodes, &p.samples), (&nodes, &samples));

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
