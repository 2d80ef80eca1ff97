//! Scaling a profile's weights in place: the TUI's decaying sums lose 1/8 each refresh, as perf top's do, and
//! the groups that decayed to nothing are dropped (their stacks stay interned: the cumulative sums share them).

use super::{Profile, Values};

impl Profile {
    /// [`Profile::scale_values`] with a floor for the CPU period only (off-CPU time is kept down to 1 ns).
    pub fn scale_samples(&mut self, num: u64, den: u64, min_period: u64) {
        self.scale_values(num, den, Values::cpu(0, min_period));
    }

    /// Multiplies every value of every sample group (CPU samples and period, switch-outs and off-CPU time) by
    /// `num / den` (rounded down) in place, and drops the groups none of whose weights (period, blocked,
    /// runnable) reaches its `floor` (at least 1): a group of off-CPU time only is kept for its time, whatever
    /// the CPU floor. Nothing is re-interned.
    pub fn scale_values(&mut self, num: u64, den: u64, floor: Values) {
        let den = den.max(1);
        for group in &mut self.samples {
            group.period = scale(group.period, num, den);
            group.count = scale(group.count, num, den);
            group.switches = scale(group.switches, num, den);
            group.blocked = scale(group.blocked, num, den);
            group.runnable = scale(group.runnable, num, den);
            group.contentions = scale(group.contentions, num, den);
            group.delay = scale(group.delay, num, den);
            group.caused_contentions = scale(group.caused_contentions, num, den);
            group.caused_delay = scale(group.caused_delay, num, den);
        }
        let before = self.samples.len();
        self.samples.retain(|g| {
            g.period >= floor.period.max(1)
                || g.blocked >= floor.blocked.max(1)
                || g.runnable >= floor.runnable.max(1)
                || g.delay >= floor.delay.max(1)
                || g.caused_delay >= floor.caused_delay.max(1)
        });
        if self.samples.len() != before {
            self.sample_ids = self
                .samples
                .iter()
                .enumerate()
                .map(|(i, g)| (g.key(), i))
                .collect();
        }
    }
}

fn scale(value: u64, num: u64, den: u64) -> u64 {
    (u128::from(value) * u128::from(num) / u128::from(den)) as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::profile::{Function, Line, Location, LocationId, Meta, Profile, Values};

    fn add(p: &mut Profile, names: &[&str], period: u64) {
        let stack: Vec<LocationId> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let name = p.intern(n);
                let function = p.add_function(Function { name, file: None });
                p.add_location(Location {
                    mapping: None,
                    address: i as u64,
                    lines: vec![Line { function, line: 0 }],
                })
            })
            .collect();
        let comm = p.intern("w");
        p.add_sample(&stack, 1, 1, comm, 1, period);
    }

    #[test]
    fn scaling_decays_drops_and_keeps_the_index() {
        let mut p = Profile::new(Meta::default());
        add(&mut p, &["leaf", "main"], 800);
        add(&mut p, &["other", "main"], 8);
        p.scale_samples(7, 8, 10);
        // 800*7/8; the 8-period group decays to 7 < 10 and is dropped.
        assert_eq!(p.samples.len(), 1);
        assert_eq!(p.samples[0].period, 700);
        // Adding to the kept group still finds it.
        add(&mut p, &["leaf", "main"], 100);
        assert_eq!(p.samples.len(), 1);
        assert_eq!(p.samples[0].period, 800);
        let frames: Vec<&str> = p
            .stack(p.samples[0].leaf)
            .map(|l| p.str(p.function(p.location(l).lines[0].function).name))
            .collect();
        assert_eq!(frames, ["leaf", "main"]);
    }

    #[test]
    fn off_cpu_time_decays_and_keeps_its_group() {
        let mut p = Profile::new(Meta::default());
        add(&mut p, &["run"], 800);
        let name = p.intern("wait");
        let function = p.add_function(Function { name, file: None });
        let wait = p.add_location(Location {
            mapping: None,
            address: 9,
            lines: vec![Line { function, line: 0 }],
        });
        let comm = p.intern("w");
        let off = Values {
            switches: 8,
            blocked: 8_000,
            runnable: 80,
            ..Values::default()
        };
        p.add_sample_values(&[wait], 1, 1, comm, off);
        p.add_sample_values(&[wait], 1, 2, comm, Values { blocked: 0, ..off });
        // The CPU floor drops neither off-CPU group (no period); the runnable floor drops the second.
        p.scale_values(
            7,
            8,
            Values {
                period: 100,
                runnable: 71,
                ..Values::default()
            },
        );
        let kept: Vec<(u32, Values)> = p.samples.iter().map(|g| (g.tid, g.values())).collect();
        assert_eq!(
            kept,
            [
                (1, Values::cpu(0, 700)),
                (
                    1,
                    Values {
                        switches: 7,
                        blocked: 7_000,
                        runnable: 70,
                        ..Values::default()
                    }
                )
            ]
        );
    }
}
