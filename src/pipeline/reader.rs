//! The ring-reading loop `record` and `top` run on their reader thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::acquire::record::Record;
use crate::acquire::Session;

/// How often the rings are drained when no wakeup comes first.
pub const TICK: Duration = Duration::from_millis(100);

/// The same when walks are continued in live memory (`unwind::live`): a walk continued within milliseconds
/// of its sample finds the thread still under the frames it was sampled in far more often (on a rustc
/// compile the median delay from sample to walk fell from 58 ms to 8 ms, and the continuations refused
/// because the thread had moved on by half). Costs about 250 wakeups a second.
pub const CONTINUE_TICK: Duration = Duration::from_millis(4);

/// The tick for a session whose walks are continued in live memory, or not.
pub fn tick(continuing: bool) -> Duration {
    if continuing {
        CONTINUE_TICK
    } else {
        TICK
    }
}

/// The reader thread's loop, shared by `record` and `top`: hands each drained batch (possibly empty) to
/// `deliver` (every `tick` at least) until the target ends, `deadline` passes, `stop` is set or `deliver` returns false (nobody
/// listens any more); in the last two cases a launched command gets SIGTERM. Then stops the counters and
/// delivers what was still buffered.
pub fn read_until_done(
    session: &mut Session,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    tick: Duration,
    mut deliver: impl FnMut(Vec<Record>, &Session) -> bool,
) -> Result<()> {
    loop {
        let mut batch = Vec::new();
        session.read(tick, &mut batch)?;
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
