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
/// because the thread had moved on by half). Each tick wakes the reader and the thread that walks, which then
/// walks with caches the target has emptied: on a rustc compile (2 CPUs busy, 3 runs each) stacktop's CPU per
/// sample was 77 to 87 us at a 4 ms tick, 62 to 67 us at 8 ms, 59 to 62 us at 12 ms and 43 to 47 us without
/// the continuation. A round that reads every ring to its end hands its records on at once
/// (`acquire::Session::read`), so at 8 ms a sample waits about as long for its walk as at 4 ms before, when
/// records waited a round: half a tick and the time order's slack, 4 to 5 ms, against 6 on average (rooted
/// share 88 to 89% at every tick; at 12 ms the big-buffer and top tests lost a point); it is only used while
/// walks need it (`Pace`).
pub const CONTINUE_TICK: Duration = Duration::from_millis(8);

/// The tick while a thread's first continuations are only looked at (`unwind::live::PROBATION`): its
/// probation counts looks at live memory made apart in time, one per batch at most, so at `CONTINUE_TICK` a
/// new thread's first continued stack came twice as late (the big-buffer test's four threads, which start
/// together, lost 0.4 points of their rooted share to it).
pub const PROBATION_TICK: Duration = Duration::from_millis(4);

/// How long the reader keeps `CONTINUE_TICK` after the last walk that ran off its copy.
const HURRY_FOR: Duration = Duration::from_secs(2);

/// The reader's tick, set by the thread that walks: `PROBATION_TICK` while a followed thread's first
/// continuations are looked at, `CONTINUE_TICK` while walks run off their stack copies and are continued in
/// live memory (a deep stack without frame pointers was sampled in the last `HURRY_FOR`), else `TICK`. Most
/// stacks fit their copy (code with frame pointers, shallow stacks), and the fast tick then only costs
/// wakeups; when a deep one comes, at most one `TICK` of samples waits long.
#[derive(Debug)]
pub struct Pace {
    hurry: AtomicBool,
    probation: AtomicBool,
}

impl Pace {
    /// The reader's next tick.
    pub fn tick(&self) -> Duration {
        if self.probation.load(Ordering::Relaxed) {
            PROBATION_TICK
        } else if self.hurry.load(Ordering::Relaxed) {
            CONTINUE_TICK
        } else {
            TICK
        }
    }
}

/// What the pace follows: of the target's walks so far, those that ran off their copy, and those whose
/// continuation was refused because their thread was on probation (see `Pipeline::target_walks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetWalks {
    pub ran_off: u64,
    pub on_probation: u64,
}

/// The walking thread's side of a `Pace`: told, after each batch, the target's walks so far, it sets the
/// pace.
#[derive(Debug)]
pub struct Pacer {
    pace: Arc<Pace>,
    walks: TargetWalks,
    last_ran_off: Option<Instant>,
}

impl Pacer {
    /// A pace and its pacer, which starts hurried and with threads on probation (a launched command's deep
    /// stacks come at once) and slows down after `HURRY_FOR` without a walk that ran off; or no pacer when
    /// no walk is continued (the tick stays `TICK`).
    pub fn new(continuing: bool) -> (Arc<Pace>, Option<Pacer>) {
        let pace = Arc::new(Pace {
            hurry: AtomicBool::new(continuing),
            probation: AtomicBool::new(continuing),
        });
        let pacer = continuing.then(|| Pacer {
            pace: Arc::clone(&pace),
            walks: TargetWalks::default(),
            last_ran_off: Some(Instant::now()),
        });
        (pace, pacer)
    }

    /// `walks`: the target's walks so far. The probation tick holds for the next batch after one with a
    /// walk refused for probation.
    pub fn note(&mut self, walks: TargetWalks, now: Instant) {
        if walks.ran_off > self.walks.ran_off {
            self.last_ran_off = Some(now);
        }
        let probation = walks.on_probation > self.walks.on_probation;
        self.walks = walks;
        let hurry = self
            .last_ran_off
            .is_some_and(|t| now.saturating_duration_since(t) < HURRY_FOR);
        self.pace.hurry.store(hurry, Ordering::Relaxed);
        self.pace
            .probation
            .store(hurry && probation, Ordering::Relaxed);
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
        // A launched command's deep stacks come at once, its threads' first continuations with them.
        assert_eq!(pace.tick(), PROBATION_TICK);
        let walks = |ran_off, on_probation| TargetWalks {
            ran_off,
            on_probation,
        };
        let start = Instant::now();
        pacer.note(walks(3, 2), start);
        assert_eq!(pace.tick(), PROBATION_TICK);
        // A batch without a walk on probation: the continuation's tick.
        pacer.note(walks(4, 2), start);
        assert_eq!(pace.tick(), CONTINUE_TICK);
        pacer.note(walks(4, 2), start + HURRY_FOR + Duration::from_millis(1));
        assert_eq!(pace.tick(), TICK);
        let later = start + 3 * HURRY_FOR;
        pacer.note(walks(5, 2), later);
        assert_eq!(pace.tick(), CONTINUE_TICK);
        pacer.note(walks(5, 3), later + HURRY_FOR / 2);
        assert_eq!(pace.tick(), PROBATION_TICK);
        pacer.note(walks(5, 3), later + HURRY_FOR);
        assert_eq!(pace.tick(), TICK);
    }
}
