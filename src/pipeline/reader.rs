//! The ring-reading loop `record` and `top` run on their reader thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::acquire::record::Record;
use crate::acquire::Session;

/// How often the rings are drained when no wakeup comes first.
pub const TICK: Duration = Duration::from_millis(100);

/// The same while walks are being continued in live memory (`unwind::live`): a walk continued within
/// milliseconds of its sample finds the thread still under the frames it was sampled in far more often (on a
/// rustc compile the median delay from sample to walk fell from 58 ms to 8 ms, and the continuations refused
/// because the thread had moved on by half). Costs about 250 wakeups a second of the reader and of the thread
/// that walks: 0.75% of a CPU on this project's VM (`top -a` under the bench load: 1.9% in all against 1.1%
/// at `TICK`), so it is only used while walks need it (`Pace`).
pub const CONTINUE_TICK: Duration = Duration::from_millis(4);

/// How long the reader keeps `CONTINUE_TICK` after the last walk that ran off its copy.
const HURRY_FOR: Duration = Duration::from_secs(2);

/// The reader's tick, set by the thread that walks: `CONTINUE_TICK` while walks run off their stack copies
/// and are continued in live memory (a deep stack without frame pointers was sampled in the last
/// `HURRY_FOR`), else `TICK`. Most stacks fit their copy (code with frame pointers, shallow stacks), and the
/// fast tick then only costs wakeups; when a deep one comes, at most one `TICK` of samples waits long.
#[derive(Debug)]
pub struct Pace {
    hurry: AtomicBool,
}

impl Pace {
    /// The reader's next tick.
    pub fn tick(&self) -> Duration {
        if self.hurry.load(Ordering::Relaxed) {
            CONTINUE_TICK
        } else {
            TICK
        }
    }
}

/// The walking thread's side of a `Pace`: told, after each batch, how many walks have run off their copy so
/// far, it sets the pace.
#[derive(Debug)]
pub struct Pacer {
    pace: Arc<Pace>,
    ran_off: u64,
    last_ran_off: Option<Instant>,
}

impl Pacer {
    /// A pace and its pacer, which starts hurried (a launched command's deep stacks come at once) and slows
    /// down after `HURRY_FOR` without a walk that ran off; or no pacer when no walk is continued (the tick
    /// stays `TICK`).
    pub fn new(continuing: bool) -> (Arc<Pace>, Option<Pacer>) {
        let pace = Arc::new(Pace {
            hurry: AtomicBool::new(continuing),
        });
        let pacer = continuing.then(|| Pacer {
            pace: Arc::clone(&pace),
            ran_off: 0,
            last_ran_off: Some(Instant::now()),
        });
        (pace, pacer)
    }

    /// `ran_off`: the walks that ran off their copy so far (`Pipeline::target_ran_off`).
    pub fn note(&mut self, ran_off: u64, now: Instant) {
        if ran_off > self.ran_off {
            self.ran_off = ran_off;
            self.last_ran_off = Some(now);
        }
        let hurry = self
            .last_ran_off
            .is_some_and(|t| now.saturating_duration_since(t) < HURRY_FOR);
        self.pace.hurry.store(hurry, Ordering::Relaxed);
    }
}

/// The reader thread's loop, shared by `record` and `top`: hands each drained batch (possibly empty) to
/// `deliver` (every `pace.tick()` at least) until the target ends, `deadline` passes, `stop` is set or `deliver` returns false (nobody
/// listens any more); in the last two cases a launched command gets SIGTERM. Then stops the counters and
/// delivers what was still buffered.
pub fn read_until_done(
    session: &mut Session,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    pace: &Pace,
    mut deliver: impl FnMut(Vec<Record>, &Session) -> bool,
) -> Result<()> {
    loop {
        let mut batch = Vec::new();
        session.read(pace.tick(), &mut batch)?;
        if !deliver(batch, session) || stop.load(Ordering::Relaxed) {
            session.terminate_child();
            break;
        }
        if session.is_finished() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let mut rest = Vec::new();
    session.finish(&mut rest)?;
    deliver(rest, session);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_hurries_while_walks_run_off_and_slows_down_after() {
        let (pace, pacer) = Pacer::new(false);
        assert!(pacer.is_none());
        assert_eq!(pace.tick(), TICK);

        let (pace, pacer) = Pacer::new(true);
        let mut pacer = pacer.expect("a pacer when walks are continued");
        // A launched command's deep stacks come at once: it starts hurried.
        assert_eq!(pace.tick(), CONTINUE_TICK);
        let start = Instant::now();
        pacer.note(0, start + HURRY_FOR + Duration::from_millis(1));
        assert_eq!(pace.tick(), TICK);
        let later = start + 3 * HURRY_FOR;
        pacer.note(5, later);
        assert_eq!(pace.tick(), CONTINUE_TICK);
        pacer.note(5, later + HURRY_FOR / 2);
        assert_eq!(pace.tick(), CONTINUE_TICK);
        pacer.note(5, later + HURRY_FOR);
        assert_eq!(pace.tick(), TICK);
    }
}
