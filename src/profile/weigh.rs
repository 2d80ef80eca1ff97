//! What the outputs weigh: CPU samples, off-CPU time or both (wall-clock time). A profile holds every kind
//! of value per sample group (see [`Values`]); [`Profile::weigh`] projects it onto one kind by rewriting each
//! group's `count` and `period`, which every query, renderer and the TUI read, and drops the groups that weigh
//! nothing in that view. One projection, so the report, the flamegraph, annotate and `top` cannot disagree.

use std::fmt;
use std::str::FromStr;

use std::collections::BTreeMap;

use super::{Function, Line, Location, Node, NodeId, Profile, SampleGroup, StrId, Values};

/// The frames that stand for the wait itself on top of an off-CPU stack in a marked projection (the
/// flamegraph's: off-CPU towers are then told apart from CPU ones by their top frame and its colour).
pub const BLOCKED: &str = "[blocked]";
pub const RUNNABLE: &str = "[runnable]";

/// What is weighed: `--weight`, and the TUI's `w` key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Weigh {
    /// CPU samples, by period (the default everywhere).
    #[default]
    Cpu,
    /// Off-CPU time: blocked and runnable.
    OffCpu,
    /// Off CPU because the thread gave the CPU up (a lock, I/O, a sleep).
    Blocked,
    /// Off CPU because the thread was preempted and waited for a CPU.
    Runnable,
    /// CPU and off-CPU time: the thread's wall-clock time.
    Wall,
    /// Contended lock waits, at the waiters' stacks (Go's block profile; `--locks` recordings).
    LockWait,
    /// The same waits at the stacks of the threads that released the lock to the waiters (Go's mutex
    /// profile: the critical sections that made others wait).
    LockHold,
}

impl Weigh {
    pub const ALL: [Weigh; 7] = [
        Weigh::Cpu,
        Weigh::OffCpu,
        Weigh::Blocked,
        Weigh::Runnable,
        Weigh::Wall,
        Weigh::LockWait,
        Weigh::LockHold,
    ];

    /// The next view of the TUI's `w` key: CPU, off-CPU, wall.
    pub fn next(self) -> Weigh {
        match self {
            Weigh::Cpu => Weigh::OffCpu,
            Weigh::OffCpu | Weigh::Blocked | Weigh::Runnable => Weigh::Wall,
            Weigh::Wall | Weigh::LockWait | Weigh::LockHold => Weigh::Cpu,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Weigh::Cpu => "cpu",
            Weigh::OffCpu => "off-cpu",
            Weigh::Blocked => "blocked",
            Weigh::Runnable => "runnable",
            Weigh::Wall => "wall",
            Weigh::LockWait => "lock-wait",
            Weigh::LockHold => "lock-hold",
        }
    }

    /// Whether this view weighs off-CPU or lock time (so its values are nanoseconds whatever the CPU event).
    pub fn is_time(self) -> bool {
        self != Weigh::Cpu
    }

    /// What this view counts: CPU samples, switch-outs, or lock waits.
    pub fn count_noun(self) -> &'static str {
        match self {
            Weigh::Cpu => "samples",
            Weigh::OffCpu | Weigh::Blocked | Weigh::Runnable | Weigh::Wall => {
                "samples and switch-outs"
            }
            Weigh::LockWait | Weigh::LockHold => "waits",
        }
    }

    /// Whether this view weighs lock waits (a `--locks` recording's).
    pub fn is_lock(self) -> bool {
        matches!(self, Weigh::LockWait | Weigh::LockHold)
    }

    /// `(count, period)` of `v` in this view: the samples (CPU samples, switch-outs or both) and their weight.
    /// The switch-outs of a group with no time of the kind asked for do not count (a preempted thread's
    /// switch-outs are no rows of weight 0 in the blocked view).
    pub fn of(self, v: &Values) -> (u64, u64) {
        let switches_with = |time: u64| if time > 0 { v.switches } else { 0 };
        match self {
            Weigh::Cpu => (v.count, v.period),
            Weigh::OffCpu => (v.switches, v.blocked.saturating_add(v.runnable)),
            Weigh::Blocked => (switches_with(v.blocked), v.blocked),
            Weigh::Runnable => (switches_with(v.runnable), v.runnable),
            Weigh::Wall => (
                v.count.saturating_add(v.switches),
                v.period
                    .saturating_add(v.blocked)
                    .saturating_add(v.runnable),
            ),
            Weigh::LockWait => (v.contentions, v.delay),
            Weigh::LockHold => (v.caused_contentions, v.caused_delay),
        }
    }
}

impl fmt::Display for Weigh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown weight `{0}` (expected cpu, off-cpu, blocked, runnable, wall, lock-wait or lock-hold)"
)]
pub struct UnknownWeigh(String);

impl FromStr for Weigh {
    type Err = UnknownWeigh;

    fn from_str(s: &str) -> Result<Weigh, UnknownWeigh> {
        Weigh::ALL
            .into_iter()
            .find(|w| w.name() == s || (s == "offcpu" && *w == Weigh::OffCpu))
            .ok_or_else(|| UnknownWeigh(s.to_owned()))
    }
}

/// What a projected profile was projected from: its view, and the values of every kind before it, in all and
/// per thread (the report's header and its per-thread table state them whatever the view).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Weighed {
    pub by: Weigh,
    pub totals: Values,
    /// By (pid, tid): the thread's last name and its values.
    pub threads: BTreeMap<(u32, u32), (StrId, Values)>,
}

impl Profile {
    /// Every value summed over all sample groups.
    pub fn totals(&self) -> Values {
        let mut sum = Values::default();
        for g in &self.samples {
            sum.add(g.values());
        }
        sum
    }

    /// Whether any group holds off-CPU time (the recording had off-CPU sampling on and threads waited).
    pub fn has_off_cpu(&self) -> bool {
        self.samples
            .iter()
            .any(|g| g.switches > 0 || g.off_cpu() > 0)
    }

    /// Projects the profile onto one view (see the module docs): each group's `count` and `period` become its
    /// weight in `by`, its other values are cleared, and groups that weigh nothing are dropped. With `mark`,
    /// off-CPU time sits on a [`BLOCKED`] or [`RUNNABLE`] frame on top of its stack (a group with both kinds,
    /// or with CPU samples as well in the wall view, splits in two or three).
    pub fn weigh(&mut self, by: Weigh, mark: bool) {
        let groups = std::mem::take(&mut self.samples);
        self.sample_ids.clear();
        let mut weighed = Weighed {
            by,
            ..Weighed::default()
        };
        for g in &groups {
            weighed.totals.add(g.values());
            let thread = weighed
                .threads
                .entry((g.pid, g.tid))
                .or_insert((g.comm, Values::default()));
            thread.0 = g.comm;
            thread.1.add(g.values());
        }
        // Projected twice (a second view of an already projected profile), the values before are the first's.
        if self.weighed.is_none() {
            self.weighed = Some(weighed);
        }
        if by == Weigh::Cpu {
            // The projection keeps each group's key, so it is done in place: rebuilding the groups held two
            // copies at once (200 MB more for a `perf record -g` file of a 15-minute build).
            self.samples = groups;
            self.samples.retain(|g| g.count > 0 || g.period > 0);
            for g in &mut self.samples {
                g.set_values(Values::cpu(g.count, g.period));
            }
            let ids = self.samples.iter().enumerate().map(|(i, g)| (g.key(), i));
            self.sample_ids.extend(ids);
            return;
        }
        let marks = mark.then(|| {
            let (blocked, runnable) = (self.intern(BLOCKED), self.intern(RUNNABLE));
            (self.marker(blocked), self.marker(runnable))
        });
        for g in groups {
            let v = g.values();
            let Some((blocked_mark, runnable_mark)) =
                marks.filter(|_| by != Weigh::Cpu && !by.is_lock())
            else {
                self.add_projected(&g, g.leaf, by.of(&v));
                continue;
            };
            if by == Weigh::Wall {
                self.add_projected(&g, g.leaf, (v.count, v.period));
            }
            // The switch-outs go with the blocked part when there is one (a count cannot be split).
            let blocked = matches!(by, Weigh::OffCpu | Weigh::Blocked | Weigh::Wall);
            let runnable = matches!(by, Weigh::OffCpu | Weigh::Runnable | Weigh::Wall);
            let mut switches = v.switches;
            if blocked && v.blocked > 0 {
                let leaf = self.marked(g.leaf, blocked_mark);
                self.add_projected(&g, Some(leaf), (std::mem::take(&mut switches), v.blocked));
            }
            if runnable && (v.runnable > 0 || switches > 0) {
                let leaf = self.marked(g.leaf, runnable_mark);
                self.add_projected(&g, Some(leaf), (switches, v.runnable));
            }
        }
    }

    fn add_projected(
        &mut self,
        g: &SampleGroup,
        leaf: Option<NodeId>,
        (count, period): (u64, u64),
    ) {
        if count == 0 && period == 0 {
            return;
        }
        self.add_group(
            (leaf, g.pid, g.tid, g.comm, g.lock),
            Values::cpu(count, period),
        );
    }

    /// A location of one frame named by `name` (no module).
    fn marker(&mut self, name: super::StrId) -> super::LocationId {
        let function = self.add_function(Function { name, file: None });
        self.add_location(Location {
            mapping: None,
            address: 0,
            lines: vec![Line { function, line: 0 }],
        })
    }

    fn marked(&mut self, leaf: Option<NodeId>, location: super::LocationId) -> NodeId {
        self.add_node(Node {
            parent: leaf,
            location,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::LocationId;

    fn profile() -> Profile {
        let mut p = Profile::default();
        let f = p.intern("f");
        let function = p.add_function(Function {
            name: f,
            file: None,
        });
        let loc = p.add_location(Location {
            mapping: None,
            address: 1,
            lines: vec![Line { function, line: 0 }],
        });
        let comm = p.intern("w");
        p.add_sample(&[loc], 1, 1, comm, 3, 3_000);
        let off = Values {
            switches: 2,
            blocked: 7_000,
            runnable: 1_000,
            ..Values::default()
        };
        p.add_sample_values(&[loc], 1, 1, comm, off);
        p.add_sample_values(&[loc], 1, 2, comm, off);
        p
    }

    #[test]
    fn each_view_weighs_its_values() {
        let totals = profile().totals();
        assert_eq!((totals.count, totals.period), (3, 3_000));
        assert_eq!(
            (totals.switches, totals.blocked, totals.runnable),
            (4, 14_000, 2_000)
        );
        for (by, count, period, groups) in [
            (Weigh::Cpu, 3, 3_000, 1),
            (Weigh::OffCpu, 4, 16_000, 2),
            (Weigh::Blocked, 4, 14_000, 2),
            (Weigh::Runnable, 4, 2_000, 2),
            (Weigh::Wall, 7, 19_000, 2),
        ] {
            let mut p = profile();
            p.weigh(by, false);
            assert_eq!((p.total_count(), p.total_period()), (count, period), "{by}");
            assert_eq!(p.samples.len(), groups, "{by}");
            assert!(!p.has_off_cpu(), "{by}");
        }
    }

    #[test]
    fn marks_put_the_wait_on_its_own_frame() {
        let mut p = profile();
        p.weigh(Weigh::Wall, true);
        assert_eq!((p.total_count(), p.total_period()), (7, 19_000));
        let top = |p: &Profile, g: &SampleGroup| {
            let frames = p.frames(g.leaf);
            p.func_name(&p.func_key(&frames[0])).to_owned()
        };
        let mut seen: Vec<(String, u32, u64)> = p
            .samples
            .iter()
            .map(|g| (top(&p, g), g.tid, g.period))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("[blocked]".to_owned(), 1, 7_000),
                ("[blocked]".to_owned(), 2, 7_000),
                ("[runnable]".to_owned(), 1, 1_000),
                ("[runnable]".to_owned(), 2, 1_000),
                ("f".to_owned(), 1, 3_000),
            ]
        );
    }

    #[test]
    fn a_kind_of_time_a_group_lacks_drops_it() {
        let mut p = profile();
        let loc = LocationId(0);
        let comm = p.intern("w");
        let preempted = Values {
            switches: 5,
            runnable: 500,
            ..Values::default()
        };
        p.add_sample_values(&[loc], 1, 3, comm, preempted);
        p.weigh(Weigh::Blocked, false);
        assert!(p.samples.iter().all(|g| g.tid != 3), "{:?}", p.samples);
        assert_eq!((p.total_count(), p.total_period()), (4, 14_000));
    }

    #[test]
    fn names_parse() {
        for w in Weigh::ALL {
            assert_eq!(w.name().parse::<Weigh>().unwrap(), w);
        }
        assert!("idle".parse::<Weigh>().is_err());
        assert_eq!(Weigh::Cpu.next().next().next(), Weigh::Cpu);
    }
}
