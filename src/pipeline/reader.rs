//! The ring-reading loop `record` and `top` run on their reader thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// The shortest tick while a thread's first continuations are only looked at (`unwind::live::PROBATION`): its
/// probation counts looks at live memory made apart in time, one per batch at most, so at `CONTINUE_TICK` a
/// new thread's first continued stack came twice as late (the big-buffer test's four threads, which start
/// together, lost 0.4 points of their rooted share to it).
pub const PROBATION_TICK: Duration = Duration::from_millis(4);

/// The stretch of time over which the pace counts the walks that ran off their copies.
const HURRY_FOR: Duration = Duration::from_secs(2);

/// The reader's tick, set by the thread that walks (see [`Pacer::note`]): about one walk that ran off its
/// copy per tick, from `CONTINUE_TICK` (a deep stack without frame pointers sampled at every tick or more:
/// a rustc compile) to `TICK` (none); half of that, `PROBATION_TICK` at the least, while a followed thread's
/// first continuations are looked at. Most stacks fit their copy (code with frame pointers, shallow stacks), and
/// a fast tick then only costs wakeups; when a deep one comes, at most one `TICK` of samples waits long.
#[derive(Debug)]
pub struct Pace {
    /// The tick, in nanoseconds.
    tick: AtomicU64,
}

impl Pace {
    /// The reader's next tick.
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick.load(Ordering::Relaxed))
    }

    fn set(&self, tick: Duration) {
        let nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
        self.tick.store(nanos, Ordering::Relaxed);
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
    started: Instant,
    /// The walks that ran off so far, as of each batch of the last `HURRY_FOR` (and the one before it),
    /// oldest first.
    seen: VecDeque<(Instant, u64)>,
}

impl Pacer {
    /// A pace and its pacer, which starts hurried and with threads on probation (a launched command's deep
    /// stacks come at once); or no pacer when no walk is continued (the tick stays `TICK`).
    pub fn new(continuing: bool) -> (Arc<Pace>, Option<Pacer>) {
        let pace = Arc::new(Pace {
            tick: AtomicU64::new(0),
        });
        pace.set(if continuing { PROBATION_TICK } else { TICK });
        let started = Instant::now();
        let pacer = continuing.then(|| Pacer {
            pace: Arc::clone(&pace),
            walks: TargetWalks::default(),
            started,
            seen: VecDeque::from([(started, 0)]),
        });
        (pace, pacer)
    }

    /// `walks`: the target's walks so far. The tick gives about one walk that ran off per tick over the
    /// last `HURRY_FOR`: each tick wakes the reader and the walking thread (about 130 us of CPU all told on
    /// this 2-CPU VM), which pays where walks are many, and not for a trickle (`top -a` beside `perf top`,
    /// whose deep stacks ran off their 4 KiB copies 14 times a second, held the 4 and 8 ms ticks for good:
    /// 150 wakeups a second of each thread). The probation tick holds for the next batch after one with a
    /// walk refused for probation.
    pub fn note(&mut self, walks: TargetWalks, now: Instant) {
        let probation = walks.on_probation > self.walks.on_probation;
        self.walks = walks;
        self.seen.push_back((now, walks.ran_off));
        // The latest batch at or before the window's start is the base.
        while self
            .seen
            .get(1)
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) >= HURRY_FOR)
        {
            self.seen.pop_front();
        }
        let (since, base) = self.seen.front().copied().unwrap_or((now, walks.ran_off));
        let ran_off = u32::try_from(walks.ran_off.saturating_sub(base)).unwrap_or(u32::MAX);
        let tick = if ran_off == 0 {
            // Hurried from the start until the first walks say how deep the target is.
            if now.saturating_duration_since(self.started) < HURRY_FOR {
                CONTINUE_TICK
            } else {
                TICK
            }
        } else {
            (now.saturating_duration_since(since) / ran_off).clamp(CONTINUE_TICK, TICK)
        };
        let tick = if probation {
            (tick / 2).max(PROBATION_TICK)
        } else {
            tick
        };
        self.pace.set(tick);
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
    fn the_pace_gives_about_one_walk_that_ran_off_per_tick() {
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
        let start = pacer.started;
        let ms = Duration::from_millis;
        pacer.note(walks(3, 2), start + ms(8));
        assert_eq!(pace.tick(), PROBATION_TICK);
        // A batch without a walk on probation: the continuation's tick.
        pacer.note(walks(6, 2), start + ms(16));
        assert_eq!(pace.tick(), CONTINUE_TICK);
        // No walk ran off in the last stretch: the slow tick.
        pacer.note(walks(6, 2), start + HURRY_FOR + ms(17));
        assert_eq!(pace.tick(), TICK);
        // A trickle, one walk every 40 ms: a tick of about 40 ms.
        let later = start + 3 * HURRY_FOR;
        for k in 1..=100u32 {
            pacer.note(walks(6 + u64::from(k), 2), later + ms(40) * k);
        }
        let tick = pace.tick();
        assert!(tick >= ms(38) && tick <= ms(42), "{tick:?}");
        // A thread on probation meanwhile: half of it.
        pacer.note(walks(107, 3), later + ms(4_001));
        assert!(pace.tick() <= tick / 2 + ms(1), "{:?}", pace.tick());
        // Walks at every batch: the continuation's tick, and the probation tick on probation.
        let busy = later + ms(5_000);
        for k in 1..=300u32 {
            pacer.note(walks(107 + 10 * u64::from(k), 3), busy + ms(8) * k);
        }
        assert_eq!(pace.tick(), CONTINUE_TICK);
        pacer.note(walks(3_200, 4), busy + ms(2_408));
        assert_eq!(pace.tick(), PROBATION_TICK);
        // The window stays short.
        assert!(pacer.seen.len() <= 260, "{}", pacer.seen.len());
    }
}
