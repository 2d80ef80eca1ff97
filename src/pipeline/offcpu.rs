//! Off-CPU intervals: from a thread's switch-out to its next switch-in, charged to the stack it left its CPU
//! from. Sans-IO: it is fed the switch-out samples (their stacks already walked), the switch records, and the
//! thread lifecycle records, in time order, and hands back [`Charge`]s; it never reads the kernel or the
//! profile.
//!
//! ```text
//!   thread  ──running──┤ switch-out sample (stack) ├ switch-out record (preempt?) ··· off CPU ··· ├ switch-in ──running──
//!                      t0                          t1                                          t2
//!   charge: the stack, blocked (or runnable when preempted) = t2 - t1
//! ```
//! The sample and the switch-out record of one switch are written one after the other by the same CPU (the
//! sample first: the scheduler takes it before it emits the record), so they are paired per thread.
//!
//! Nothing is invented. An interval is charged only from a switch-out to the thread's next switch-in, or to an
//! end that is counted ([`OffCpuStats`]): the thread's exit (`ended_at_exit`), the recording's stop
//! (`open_at_stop`), or, for a thread already off CPU when an attached recording started, from the attach
//! (`blocked_at_attach`, charged to a `[blocked at attach]` frame: its stack was never sampled). An interval
//! whose ends do not pair up (a lost record: a switch-in without its switch-out, a switch-out sample without
//! its record or the reverse, a thread seen running while it was off CPU, any interval open across a
//! `PERF_RECORD_LOST` of a switch ring) is counted as `unknown_length` and not charged.
//!
//! `top` charges the part of each open interval elapsed so far at every refresh ([`Intervals::cut`]), then
//! starts it again there: the table grows while a thread waits, and the total is the same.

use foldhash::{HashMap, HashMapExt};

use crate::acquire::record::Attach;
use crate::profile::{OffCpuStats, Values};

/// Why a thread was off CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// It gave the CPU up: a lock, I/O, a sleep.
    Blocked,
    /// It was preempted (still runnable) and waited for a CPU.
    Runnable,
}

impl Wait {
    fn values(self, nanos: u64, switches: u64) -> Values {
        let (blocked, runnable) = match self {
            Wait::Blocked => (nanos, 0),
            Wait::Runnable => (0, nanos),
        };
        Values {
            switches,
            blocked,
            runnable,
            ..Values::default()
        }
    }
}

/// Time off CPU to add to the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge<S> {
    pub pid: u32,
    pub tid: u32,
    /// The stack the thread left its CPU from; `None`: it was off CPU when the recording attached, and its
    /// stack was never sampled (the `[blocked at attach]` frame).
    pub stack: Option<S>,
    /// `switches` is 1 for the first charge of an interval (a `cut` charges an interval in parts).
    pub values: Values,
}

#[derive(Debug)]
struct Out<S> {
    /// The switch-out record's time once it came, the sample's until then.
    since: u64,
    stack: Option<S>,
    /// From the switch-out record (`None`: not come yet).
    wait: Option<Wait>,
    /// Some of it was charged already (`cut`): its switch is counted.
    counted: bool,
    /// A switch ring lost records while it was open: its end may be among them.
    tainted: bool,
}

impl<S> Out<S> {
    /// The stack and wait of an interval that can be charged: both ends of its switch-out seen, nothing lost.
    fn chargeable(&self) -> Option<(&S, Wait)> {
        match (&self.stack, self.wait, self.tainted) {
            (Some(stack), Some(wait), false) => Some((stack, wait)),
            _ => None,
        }
    }
}

#[derive(Debug)]
enum State<S> {
    /// On a CPU, or nothing said otherwise (a launched command's threads start running when their counters
    /// do).
    Running,
    /// Created during the recording: waits for its first run, which closes nothing.
    New,
    /// Found when an attached recording started; off CPU then if its first record is a switch-in. `since`
    /// moves with `cut`.
    Attached {
        since: u64,
        wait: Wait,
        counted: bool,
        tainted: bool,
    },
    Off(Out<S>),
    /// Exited at this time: a system-wide recording still sees the dying thread's last switch-out, which no
    /// switch-in follows; it is ignored.
    Exited(u64),
}

/// How long an exited thread is remembered (see [`State::Exited`]), in nanoseconds.
const EXITED_KEPT: u64 = 1_000_000_000;

/// Per-thread off-CPU intervals (see the module docs). `S` is a walked stack, whatever the caller makes of
/// one.
#[derive(Debug)]
pub struct Intervals<S> {
    threads: HashMap<u32, (u32, State<S>)>,
    stats: OffCpuStats,
    /// Stacks of closed intervals, for the caller to reuse.
    spare: Vec<S>,
}

/// Most stacks kept for reuse.
const MAX_SPARE: usize = 256;

impl<S: Clone> Intervals<S> {
    /// `attach`: the threads an attached recording found, and when it started.
    pub fn new(attach: Option<&Attach>) -> Intervals<S> {
        let mut threads = HashMap::new();
        if let Some(attach) = attach {
            for t in &attach.threads {
                let wait = if t.runnable {
                    Wait::Runnable
                } else {
                    Wait::Blocked
                };
                let state = State::Attached {
                    since: attach.time,
                    wait,
                    counted: false,
                    tainted: false,
                };
                threads.insert(t.tid, (t.pid, state));
            }
        }
        Intervals {
            threads,
            stats: OffCpuStats {
                enabled: true,
                ..OffCpuStats::default()
            },
            spare: Vec::new(),
        }
    }

    /// What was counted so far (`enabled` set).
    pub fn stats(&self) -> OffCpuStats {
        self.stats
    }

    /// A stack buffer of a closed interval, to fill for the next switch-out.
    pub fn spare(&mut self) -> Option<S> {
        self.spare.pop()
    }

    /// Gives back the stack of a charge once the caller is done with it, for reuse.
    pub fn give_back(&mut self, stack: S) {
        self.recycle(Some(stack));
    }

    /// Threads tracked (alive, or exited within the last second).
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The stacks of the open intervals, for a caller that renumbers what they refer to.
    pub fn stacks_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.threads
            .values_mut()
            .filter_map(|(_, state)| match state {
                State::Off(out) => out.stack.as_mut(),
                _ => None,
            })
    }

    fn recycle(&mut self, stack: Option<S>) {
        if let Some(s) = stack {
            if self.spare.len() < MAX_SPARE {
                self.spare.push(s);
            }
        }
    }

    /// Counts an interval that cannot be charged, and keeps its stack for reuse.
    fn unknown(&mut self, out: Out<S>) {
        self.stats.unknown_length += 1;
        self.recycle(out.stack);
    }

    /// A switch-out sample of `tid` at `time`, with its walked stack.
    pub fn switch_out_sample(&mut self, pid: u32, tid: u32, time: u64, stack: S) {
        // The idle tasks (one per CPU, all tid 0) are not off CPU when they leave it; a dying thread's last
        // switch-out is not either (see `State::Exited`).
        if tid == 0 || matches!(self.threads.get(&tid), Some((_, State::Exited(_)))) {
            self.recycle(Some(stack));
            return;
        }
        let fresh = State::Off(Out {
            since: time,
            stack: Some(stack),
            wait: None,
            counted: false,
            tainted: false,
        });
        match self.threads.insert(tid, (pid, fresh)) {
            // Its switch-in was lost (or its record: a second sample without a record).
            Some((_, State::Off(out))) => self.unknown(out),
            Some((_, State::Attached { tainted: true, .. })) => self.stats.unknown_length += 1,
            _ => {}
        }
    }

    /// A switch-out record of `tid` at `time`: `preempt` when the thread was still runnable.
    pub fn switch_out(&mut self, pid: u32, tid: u32, time: u64, preempt: bool) {
        if tid == 0 {
            return;
        }
        let wait = if preempt {
            Wait::Runnable
        } else {
            Wait::Blocked
        };
        match self.threads.get_mut(&tid) {
            Some((_, State::Off(out))) if out.wait.is_none() && out.stack.is_some() => {
                out.wait = Some(wait);
                out.since = time;
                return;
            }
            Some((_, State::Exited(_))) => return,
            _ => {}
        }
        // No sample before it: the sample was lost. The interval is measured, but has no stack to charge.
        let fresh = State::Off(Out {
            since: time,
            stack: None,
            wait: Some(wait),
            counted: false,
            tainted: false,
        });
        match self.threads.insert(tid, (pid, fresh)) {
            Some((_, State::Off(out))) => self.unknown(out),
            Some((_, State::Attached { tainted: true, .. })) => self.stats.unknown_length += 1,
            _ => {}
        }
    }

    /// A switch-in of `tid` at `time`: closes its interval.
    pub fn switch_in(&mut self, pid: u32, tid: u32, time: u64, out: &mut Vec<Charge<S>>) {
        if tid == 0 {
            return;
        }
        let Some((_, state)) = self.threads.get_mut(&tid) else {
            // Never seen, so not found at attach nor created since: its switch-out was lost.
            self.stats.unknown_length += 1;
            self.threads.insert(tid, (pid, State::Running));
            return;
        };
        match std::mem::replace(state, State::Running) {
            State::Off(interval) => self.close(pid, tid, interval, time, out),
            State::Attached {
                since,
                wait,
                counted,
                tainted,
            } => self.close_attached(pid, tid, (since, wait, counted, tainted), time, out),
            State::New => {}
            State::Running => self.stats.unknown_length += 1,
            State::Exited(at) => *state = State::Exited(at),
        }
    }

    fn close(&mut self, pid: u32, tid: u32, interval: Out<S>, end: u64, out: &mut Vec<Charge<S>>) {
        let Some((_, wait)) = interval.chargeable() else {
            self.unknown(interval);
            return;
        };
        out.push(Charge {
            pid,
            tid,
            values: wait.values(
                end.saturating_sub(interval.since),
                u64::from(!interval.counted),
            ),
            stack: interval.stack,
        });
    }

    fn close_attached(
        &mut self,
        pid: u32,
        tid: u32,
        (since, wait, counted, tainted): (u64, Wait, bool, bool),
        end: u64,
        out: &mut Vec<Charge<S>>,
    ) {
        if tainted {
            self.stats.unknown_length += 1;
            return;
        }
        if !counted {
            self.stats.blocked_at_attach += 1;
        }
        out.push(Charge {
            pid,
            tid,
            stack: None,
            values: wait.values(end.saturating_sub(since), u64::from(!counted)),
        });
    }

    /// A CPU sample of `tid`: it is running, so an interval still open lost its switch-in.
    pub fn running(&mut self, tid: u32) {
        let Some((_, state)) = self.threads.get_mut(&tid) else {
            return;
        };
        match state {
            State::Off(_) => {
                if let State::Off(interval) = std::mem::replace(state, State::Running) {
                    self.unknown(interval);
                }
            }
            State::Attached { tainted, .. } => {
                if *tainted {
                    self.stats.unknown_length += 1;
                }
                *state = State::Running;
            }
            State::New => *state = State::Running,
            State::Running | State::Exited(_) => {}
        }
    }

    /// `tid` was created: its first switch-in ends no interval.
    pub fn fork(&mut self, pid: u32, tid: u32) {
        if let Some((_, State::Off(interval))) = self.threads.insert(tid, (pid, State::New)) {
            // A tid reused while its last owner seemed off CPU: that one's exit was lost.
            self.unknown(interval);
        }
    }

    /// `tid` exited at `time`: an interval still open ends there.
    pub fn exit(&mut self, pid: u32, tid: u32, time: u64, out: &mut Vec<Charge<S>>) {
        if tid == 0 {
            return;
        }
        let previous = self.threads.insert(tid, (pid, State::Exited(time)));
        match previous {
            Some((_, State::Off(interval))) => {
                if interval.chargeable().is_some() {
                    self.stats.ended_at_exit += 1;
                }
                self.close(pid, tid, interval, time, out);
            }
            Some((
                _,
                State::Attached {
                    since,
                    wait,
                    counted,
                    tainted,
                },
            )) => {
                if !tainted {
                    self.stats.ended_at_exit += 1;
                }
                self.close_attached(pid, tid, (since, wait, counted, tainted), time, out);
            }
            _ => {}
        }
    }

    /// A switch ring lost records at `time`: any open interval may have lost its end.
    pub fn lost(&mut self) {
        for (_, state) in self.threads.values_mut() {
            match state {
                State::Off(interval) => interval.tainted = true,
                State::Attached { tainted, .. } => *tainted = true,
                _ => {}
            }
        }
    }

    /// `top`'s refresh: charges the part of every open interval up to `now` (when every record up to `now` has
    /// been fed) and starts it again at `now`. Exited threads are forgotten a while after their exit.
    pub fn cut(&mut self, now: u64, out: &mut Vec<Charge<S>>) {
        let mut attached = 0;
        self.threads.retain(|&tid, (pid, state)| {
            match state {
                State::Off(interval) => {
                    if let Some((stack, wait)) = interval.chargeable() {
                        if now > interval.since {
                            out.push(Charge {
                                pid: *pid,
                                tid,
                                stack: Some(stack.clone()),
                                values: wait
                                    .values(now - interval.since, u64::from(!interval.counted)),
                            });
                            interval.since = now;
                            interval.counted = true;
                        }
                    }
                }
                State::Attached {
                    since,
                    wait,
                    counted,
                    tainted: false,
                } if now > *since => {
                    if !*counted {
                        attached += 1;
                    }
                    out.push(Charge {
                        pid: *pid,
                        tid,
                        stack: None,
                        values: wait.values(now - *since, u64::from(!*counted)),
                    });
                    *since = now;
                    *counted = true;
                }
                State::Exited(at) => return at.saturating_add(EXITED_KEPT) > now,
                _ => {}
            }
            true
        });
        self.stats.blocked_at_attach += attached;
    }

    /// The end of the recording at `time`: every interval still open ends there.
    pub fn stop(&mut self, time: u64, out: &mut Vec<Charge<S>>) {
        let threads = std::mem::take(&mut self.threads);
        let mut sorted: Vec<(u32, (u32, State<S>))> = threads.into_iter().collect();
        // Charges in thread order: the profile's sample groups come out the same from run to run.
        sorted.sort_unstable_by_key(|&(tid, _)| tid);
        for (tid, (pid, state)) in sorted {
            match state {
                State::Off(interval) => {
                    if interval.chargeable().is_some() {
                        self.stats.open_at_stop += 1;
                    }
                    self.close(pid, tid, interval, time, out);
                }
                State::Attached {
                    since,
                    wait,
                    counted,
                    tainted,
                } => {
                    if !tainted {
                        self.stats.open_at_stop += 1;
                    }
                    self.close_attached(pid, tid, (since, wait, counted, tainted), time, out);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::acquire::record::AttachedThread;

    type Stack = &'static str;

    /// Feeds a sequence and returns the charges as (tid, stack, switches, blocked, runnable).
    struct Run {
        iv: Intervals<Stack>,
        out: Vec<Charge<Stack>>,
    }

    impl Run {
        fn new(attach: Option<&Attach>) -> Run {
            Run {
                iv: Intervals::new(attach),
                out: Vec::new(),
            }
        }

        fn switch(&mut self, tid: u32, out_at: u64, preempt: bool, stack: Stack, in_at: u64) {
            self.iv.switch_out_sample(1, tid, out_at, stack);
            self.iv.switch_out(1, tid, out_at + 1, preempt);
            self.iv.switch_in(1, tid, in_at, &mut self.out);
        }

        fn charges(&mut self) -> Vec<(u32, Option<Stack>, u64, u64, u64)> {
            self.out
                .drain(..)
                .map(|c| {
                    let v = c.values;
                    assert_eq!((v.count, v.period), (0, 0));
                    (c.tid, c.stack, v.switches, v.blocked, v.runnable)
                })
                .collect()
        }
    }

    #[test]
    fn a_switch_out_is_charged_until_the_switch_in_as_blocked_or_runnable() {
        let mut r = Run::new(None);
        r.switch(5, 100, false, "nap_long", 30_101);
        r.switch(5, 30_200, false, "nap_short", 40_201);
        r.switch(6, 1_000, true, "spin", 1_501);
        assert_eq!(
            r.charges(),
            vec![
                (5, Some("nap_long"), 1, 30_000, 0),
                (5, Some("nap_short"), 1, 10_000, 0),
                (6, Some("spin"), 1, 0, 500),
            ]
        );
        let stats = r.iv.stats();
        assert!(stats.enabled);
        assert_eq!(
            stats,
            OffCpuStats {
                enabled: true,
                ..OffCpuStats::default()
            }
        );
    }

    #[test]
    fn threads_interleave_and_the_idle_task_is_ignored() {
        let mut r = Run::new(None);
        r.iv.switch_out_sample(1, 5, 10, "a");
        r.iv.switch_out_sample(1, 6, 11, "b");
        r.iv.switch_out(1, 6, 12, false);
        r.iv.switch_out(1, 5, 13, true);
        r.iv.switch_out_sample(0, 0, 14, "idle");
        r.iv.switch_out(0, 0, 14, false);
        r.iv.switch_in(0, 0, 15, &mut r.out);
        r.iv.switch_in(1, 6, 112, &mut r.out);
        r.iv.switch_in(1, 5, 1013, &mut r.out);
        assert_eq!(
            r.charges(),
            vec![(6, Some("b"), 1, 100, 0), (5, Some("a"), 1, 0, 1000)]
        );
        assert_eq!(r.iv.stats().unknown_length, 0);
        // The idle task's stack is kept for reuse (a charge's goes to the caller, who gives it back).
        assert_eq!(r.iv.spare(), Some("idle"));
        assert_eq!(r.iv.spare(), None);
    }

    #[test]
    fn unpaired_ends_are_counted_not_charged() {
        let mut r = Run::new(None);
        // A switch-in without a switch-out (a thread of a launched command: it was running).
        r.iv.switch_in(1, 5, 10, &mut r.out);
        // A sample whose record was lost, then the next switch-out.
        r.iv.switch_out_sample(1, 5, 20, "lost record");
        r.iv.switch_out_sample(1, 5, 30, "x");
        r.iv.switch_out(1, 5, 31, false);
        // Its switch-in was lost: a CPU sample shows it running.
        r.iv.running(5);
        // A record whose sample was lost: measured, but no stack.
        r.iv.switch_out(1, 5, 40, false);
        r.iv.switch_in(1, 5, 50, &mut r.out);
        // A tid never seen switching in.
        r.iv.switch_in(1, 9, 60, &mut r.out);
        assert_eq!(r.charges(), vec![]);
        assert_eq!(r.iv.stats().unknown_length, 5);
        // After all that, a normal interval.
        r.switch(5, 100, false, "ok", 201);
        assert_eq!(r.charges(), vec![(5, Some("ok"), 1, 100, 0)]);
    }

    #[test]
    fn a_lost_record_taints_every_open_interval() {
        let mut r = Run::new(None);
        r.iv.switch_out_sample(1, 5, 10, "a");
        r.iv.switch_out(1, 5, 11, false);
        r.iv.lost();
        r.iv.switch_in(1, 5, 500, &mut r.out);
        assert_eq!(r.charges(), vec![]);
        assert_eq!(r.iv.stats().unknown_length, 1);
        // Intervals opened after the loss are fine.
        r.switch(5, 600, false, "b", 701);
        assert_eq!(r.charges(), vec![(5, Some("b"), 1, 100, 0)]);
    }

    #[test]
    fn a_thread_created_during_the_recording_starts_with_a_switch_in() {
        let mut r = Run::new(None);
        r.iv.fork(1, 7);
        r.iv.switch_in(1, 7, 10, &mut r.out);
        r.switch(7, 20, false, "w", 41);
        assert_eq!(r.charges(), vec![(7, Some("w"), 1, 20, 0)]);
        assert_eq!(r.iv.stats().unknown_length, 0);
    }

    #[test]
    fn exit_and_stop_end_open_intervals_and_say_so() {
        let mut r = Run::new(None);
        r.iv.switch_out_sample(1, 5, 10, "exits");
        r.iv.switch_out(1, 5, 10, false);
        r.iv.exit(1, 5, 110, &mut r.out);
        // A system-wide recording sees the dead thread's last switch-out: ignored.
        r.iv.switch_out_sample(1, 5, 111, "dead");
        r.iv.switch_out(1, 5, 112, false);
        r.iv.switch_out_sample(1, 6, 20, "still waiting");
        r.iv.switch_out(1, 6, 20, true);
        r.iv.stop(1020, &mut r.out);
        assert_eq!(
            r.charges(),
            vec![
                (5, Some("exits"), 1, 100, 0),
                (6, Some("still waiting"), 1, 0, 1000)
            ]
        );
        let s = r.iv.stats();
        assert_eq!(
            (s.ended_at_exit, s.open_at_stop, s.unknown_length),
            (1, 1, 0)
        );
        assert_eq!(r.iv.threads(), 0);
    }

    fn attach() -> Attach {
        Attach {
            time: 1000,
            threads: vec![
                AttachedThread {
                    pid: 1,
                    tid: 1,
                    runnable: false,
                },
                AttachedThread {
                    pid: 1,
                    tid: 2,
                    runnable: true,
                },
                AttachedThread {
                    pid: 1,
                    tid: 3,
                    runnable: false,
                },
                AttachedThread {
                    pid: 1,
                    tid: 4,
                    runnable: false,
                },
            ],
        }
    }

    #[test]
    fn threads_off_cpu_at_attach_are_charged_from_the_attach_to_a_marker() {
        let attach = attach();
        let mut r = Run::new(Some(&attach));
        // 1 sleeps until 5000; 2 was waiting for a CPU until 1200; 3 was running (it switches out first);
        // 4 sleeps through the whole recording.
        r.iv.switch_in(1, 1, 5000, &mut r.out);
        r.iv.switch_in(1, 2, 1200, &mut r.out);
        r.switch(3, 1500, false, "s3", 1601);
        r.iv.stop(9000, &mut r.out);
        let mut charges = r.charges();
        charges.sort();
        assert_eq!(
            charges,
            vec![
                (1, None, 1, 4000, 0),
                (2, None, 1, 0, 200),
                (3, Some("s3"), 1, 100, 0),
                (4, None, 1, 8000, 0),
            ]
        );
        let s = r.iv.stats();
        assert_eq!(
            (s.blocked_at_attach, s.open_at_stop, s.unknown_length),
            (3, 1, 0)
        );
    }

    #[test]
    fn cuts_charge_open_intervals_in_parts_that_add_up() {
        let attach = attach();
        let mut r = Run::new(Some(&attach));
        r.iv.running(2);
        r.iv.running(3);
        r.iv.running(4);
        r.iv.switch_out_sample(1, 2, 1100, "wait");
        r.iv.switch_out(1, 2, 1100, false);
        r.iv.cut(2000, &mut r.out);
        r.iv.cut(2000, &mut r.out);
        r.iv.cut(3000, &mut r.out);
        r.iv.switch_in(1, 2, 3500, &mut r.out);
        r.iv.switch_in(1, 1, 4000, &mut r.out);
        let mut charges = r.charges();
        charges.sort();
        assert_eq!(
            charges,
            vec![
                (1, None, 0, 1000, 0),
                (1, None, 0, 1000, 0),
                (1, None, 1, 1000, 0),
                (2, Some("wait"), 0, 500, 0),
                (2, Some("wait"), 0, 1000, 0),
                (2, Some("wait"), 1, 900, 0),
            ]
        );
        let s = r.iv.stats();
        assert_eq!((s.blocked_at_attach, s.unknown_length), (1, 0));
    }

    #[test]
    fn exited_threads_are_forgotten_by_cuts_after_a_while() {
        let mut r = Run::new(None);
        r.switch(5, 10, false, "x", 20);
        r.iv.exit(1, 5, 30, &mut r.out);
        r.iv.cut(40, &mut r.out);
        assert_eq!(r.iv.threads(), 1);
        r.iv.cut(30 + EXITED_KEPT, &mut r.out);
        assert_eq!(r.iv.threads(), 0);
        r.charges();
        assert_eq!(r.iv.stats().ended_at_exit, 0);
    }
}
