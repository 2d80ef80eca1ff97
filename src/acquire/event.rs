//! Event names as perf spells them: `cpu-clock`, `task-clock`, `cycles`, with `:u` / `:k` modifiers.

use std::fmt;
use std::str::FromStr;

use super::AcquireError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Software timer per CPU (hrtimer); works everywhere.
    CpuClock,
    /// Software timer of the task's own run time.
    TaskClock,
    /// Hardware CPU cycles; needs a PMU (absent in most VMs).
    Cycles,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::CpuClock => "cpu-clock",
            EventKind::TaskClock => "task-clock",
            EventKind::Cycles => "cycles",
        }
    }

    /// Unit of a sample's period.
    pub fn period_unit(self) -> &'static str {
        match self {
            EventKind::CpuClock | EventKind::TaskClock => "nanoseconds",
            EventKind::Cycles => "events",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventSpec {
    pub kind: EventKind,
    pub exclude_user: bool,
    pub exclude_kernel: bool,
}

impl EventSpec {
    pub fn new(kind: EventKind) -> EventSpec {
        EventSpec {
            kind,
            exclude_user: false,
            exclude_kernel: false,
        }
    }
}

impl Default for EventSpec {
    /// perf's default event.
    fn default() -> EventSpec {
        EventSpec::new(EventKind::Cycles)
    }
}

impl fmt::Display for EventSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match (self.exclude_user, self.exclude_kernel) {
            (false, true) => f.write_str(":u"),
            (true, false) => f.write_str(":k"),
            _ => Ok(()),
        }
    }
}

impl FromStr for EventSpec {
    type Err = AcquireError;

    fn from_str(s: &str) -> Result<EventSpec, AcquireError> {
        let unknown = || AcquireError::UnknownEvent { name: s.to_owned() };
        let (name, modifiers) = s.split_once(':').unwrap_or((s, ""));
        let kind = match name.trim() {
            "cpu-clock" => EventKind::CpuClock,
            "task-clock" => EventKind::TaskClock,
            "cycles" | "cpu-cycles" => EventKind::Cycles,
            _ => return Err(unknown()),
        };
        let (mut user, mut kernel) = (false, false);
        for c in modifiers.chars() {
            match c {
                'u' => user = true,
                'k' => kernel = true,
                _ => return Err(unknown()),
            }
        }
        // perf: no modifier means both; naming some levels excludes the others.
        let any = user || kernel;
        Ok(EventSpec {
            kind,
            exclude_user: any && !user,
            exclude_kernel: any && !kernel,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_event_names() {
        let e: EventSpec = "cpu-clock".parse().unwrap();
        assert_eq!(e, EventSpec::new(EventKind::CpuClock));
        let e: EventSpec = "task-clock:u".parse().unwrap();
        assert_eq!(e.kind, EventKind::TaskClock);
        assert!(e.exclude_kernel && !e.exclude_user);
        let e: EventSpec = "cycles:k".parse().unwrap();
        assert!(e.exclude_user && !e.exclude_kernel);
        let e: EventSpec = "cycles:uk".parse().unwrap();
        assert!(!e.exclude_user && !e.exclude_kernel);
        assert_eq!(
            "cpu-cycles".parse::<EventSpec>().unwrap().kind,
            EventKind::Cycles
        );
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["cpu-clock", "cpu-clock:u", "task-clock:k", "cycles"] {
            assert_eq!(s.parse::<EventSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn unknown_events_name_the_valid_ones() {
        let err = "instructions".parse::<EventSpec>().unwrap_err().to_string();
        assert!(err.contains("instructions"), "{err}");
        assert!(
            err.contains("cpu-clock") && err.contains("task-clock") && err.contains("cycles"),
            "{err}"
        );
        assert!("cpu-clock:x".parse::<EventSpec>().is_err());
    }
}
