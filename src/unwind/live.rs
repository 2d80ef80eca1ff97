//! Continuing a walk in the live process: when a table walk runs off the end of the kernel's stack copy,
//! the rest of the stack is read from the target's memory (through [`LiveMemory`], the caller's edge:
//! `process_vm_readv`), but only where it can be shown to be the same stack.
//!
//! The walk is made within milliseconds of the sample, while the thread's outer frames almost always still
//! exist: the frames that say which query, which pass or which request a sample belongs to, and which the
//! kernel's copy (at most 64 KiB, and cut at the first stack page it cannot read in the interrupt) misses.
//!
//! What makes a continuation trusted (each check ends it otherwise, and the stack ends in `[truncated]` as
//! without a continuation):
//! - **Overlap**: the stack words the walk read in the highest [`CHECKED`] bytes it read of the copy (the
//!   return addresses and saved registers of the outermost frames in the copy) must still be in live memory
//!   as copied. A thread that returned past those frames and called elsewhere since has rewritten them.
//!   Words the walk read, not the copy's last bytes: locals change while their frames stay, and a copy that
//!   ends inside a large buffer ends in bytes that stay the same whoever runs under them (an untouched
//!   buffer is all zeros): with a byte overlap there, the self-check found wrong rustc stacks.
//! - **Code**: every return address read from live memory must point into an executable mapping.
//! - **Call**: the first return address read past the copy (the junction) must follow a call of the
//!   function its callee frame runs in, where the call's bytes tell (a direct call, or one through a GOT
//!   slot or a PLT entry). A thread that returned past the copy's outermost frames and made shallow calls
//!   since (rustc's compiler thread at its exit, in the allocator's thread cleanup) leaves the checked
//!   words as they were, but a return address there of a call to something else. A tail call fails it too
//!   (the stack then ends at the copy, as without a continuation). Where the bytes don't tell (a call
//!   through a register or memory: a callback, a virtual call, the vDSO's clock), the junction must be a
//!   frame of one of the thread's kept stacks (the same return address at the same CFA) over a callee in
//!   the same function: a call seen made from there. An event loop back in its clock call, whose return
//!   address sits where the sampled handler's was, is refused so (assets/event_loop.c). Every frame read
//!   after the junction must not follow a call of another function than its callee's either (unknown calls
//!   pass there): a thread back in its loop leaves the deep frames, the junction among them, stale but
//!   whole, while the loop's own slot holds its clock call. A tail call anywhere there refuses the walk.
//! - **Whole**: a live walk that goes wrong or cannot read on (a garbage return address, an unmapped
//!   word) adds none of its frames: the stack changed under it, and the frames it took before are no more
//!   trusted than the one it stopped at (the self-check found such partial walks wrong). Only the depth cap
//!   keeps a partial walk.
//! - **Churn** (the overlap's blind spot): a recursion re-entered from two callers in turn leaves the same
//!   bytes at the same addresses under a changed outer frame; a continuation read while it runs takes
//!   whichever caller is live at the read, not the sampled one, and no check of the sample's own bytes can
//!   tell. So each thread's complete stacks are compared with the one before: two stacks that differ in a
//!   frame and agree again over at least [`OVERLAP`] bytes of frames below it (same return addresses at the
//!   same stack addresses) show a slot that changes under unchanged inner frames. While such a slot is held
//!   barred, no continuation of that thread may read through it: no copy may end under it. A slot's bar holds
//!   from the last churn seen there for twice as long as churn has gone on there ([`MIN_HOLD_NS`] to
//!   [`HOLD_NS`], and the slot's churn is remembered for [`HOLD_NS`]): a slot that keeps changing stays barred
//!   at any pace, and one seen changing once (a program's phase moving from one call site to another) is
//!   free again within a second.
//!   One exception narrows the bar: when the slot returns into the same function in both stacks (one
//!   function calling the same code from two call sites, as rustc's passes call queries), only that slot
//!   differs, and the agreeing frames under it hold no return address twice (no recursion), a copy that
//!   ends below those frames holds frames the two calls were seen to run differently, which the overlap
//!   check compares: only copies ending from the lowest agreeing frame up to the slot are barred. A
//!   thread keeps a few such bars ([`MAX_BARS`]). The first [`PROBATION`]
//!   continuations of a thread are made only to look (the stacks are compared, not kept), so that a thread
//!   churning from its start is caught before any of its continuations is used.
//! - **No cache**: the thread's kept complete stacks ([`KEPT`]) serve the checks above, never as frames. A
//!   cache that took a walk's outer frames from the kept stack holding its outermost copied frame (same stack
//!   address, same return address), after checking the caller's return address above it in live memory,
//!   served 85% of rustc's continuations and made nearly every wrong stack its self-check found (16 of
//!   53,505 continued in 10 runs, 15 from the cache, at `collect_items_rec`'s two call sites of itself and
//!   other calls of one function from two sites, far above the junction). Its stacks were never looked at
//!   by the churn check (a served stack is the kept one), so churn that a live walk shows at once went
//!   unseen. Checking the words read near the copy's end as well, or serving only from the latest stack,
//!   left as many wrong. Without it: 6 of 60,543 in 11 runs (0.010%, all read live at those two call sites,
//!   three at a time), at 5% more CPU per sample and a point fewer rustc stacks reaching their root (see
//!   benches/README.md).
//!
//! - **Anchored**: a copy that ends inside a large buffer of its outermost frame (at least
//!   [`UNREAD_BUFFER`] bytes the walk did not read: memcached's `drive_machine` holds 16 KiB) fails the
//!   overlap check or the samples-ahead check whenever the thread has moved on under that frame or
//!   returned to its event loop since, though the frame itself, buffer and return address, is where it
//!   was. Such a walk is read on from live memory without the checked words and taken only when it
//!   reaches the thread's root and its junction follows a *direct* call of the frame under it (then the
//!   churn check looks at it as at any other), or returns into the same caller at another call site under
//!   the same outer frames as a kept stack of the thread that shows the caller's direct call of that frame's
//!   function at that address: the junction then takes the kept return address. memcached under load, with
//!   16 KiB copies: cut stacks 38-46% -> 20-21%, with none wrong in its self-check (891 continued); with
//!   `record`'s default since, the kernel's largest copies, the copy holds the buffer and none is cut.
//!
//! - **Samples ahead**: the samples of a batch are known before any of them is walked, so a walk knows
//!   where the thread's stack pointer was in the samples taken after its own, up to shortly before the live
//!   read. One above the outermost frame the copy holds means the thread returned past that frame since:
//!   the frames above it may be others now, and stack memory it left keeps its old words, so the checked
//!   words would still match (the self-check found rustc threads whose live read, after such a return,
//!   took a stale return address of an allocator call for the sampled caller). Not continued, and counted
//!   apart from the overlap check's refusals ([`Refusal::Returned`]).
//!
//! What none of this can catch: a stack that changes and changes back between the sample and the live read,
//! once, with no churn before or after, and between two samples. The self-check (`record --unwind-check`) measures how often continued stacks
//! differ from the walks of full copies.

use std::time::{Duration, Instant};

use foldhash::{HashMap, HashMapExt};

use super::dwarf::{self, Cache, Read, StackCopy, Unwinder, Walk, WalkEnd};
use super::{Frame, FrameAddress};
use crate::profile::{ContinuationStats, Refusal};

/// Bytes at the end of the copy that must still be in live memory as copied.
pub const OVERLAP: u64 = 256;
/// The highest bytes of the copy the walk read, whose words must still be in live memory as copied.
const CHECKED: u64 = 1024;
/// Bytes at the copy's end the walk did not read, from which the copy is taken to end inside a buffer.
const UNREAD_BUFFER: u64 = 4096;
/// Call targets [`Continuer::call_target`] keeps before it starts again.
const MAX_CALL_TARGETS: usize = 65_536;
/// Bytes read from the process at once, from a page's start.
const CHUNK: usize = 16 * 1024;
/// Windows of live memory start at a page.
const PAGE: u64 = 4096;
/// Windows of live memory kept for the next walks (see [`Continuer::view`]).
const MAX_WINDOWS: usize = 64;
/// How long windows of live memory serve later walks (see [`Continuer::view`]); less than [`APART`].
const WINDOWS_FOR_NS: u64 = 1_000_000;
/// Most bytes read from the process for one walk.
const MAX_LIVE: usize = 1024 * 1024;
/// Continuations of a thread that are only looked at, before any is used.
pub const PROBATION: u32 = 10;
/// Complete stacks count for the probations only this far apart in time: looks made in one batch all see
/// the live memory of one moment (the self-check saw a recursion's two callers pass 20 such looks unseen).
const APART: Duration = Duration::from_millis(2);
/// The same for each thread of a process one of whose threads churned.
pub const THREAD_PROBATION: u32 = 3;
/// Bytes above a churning slot in which a copy's end also bars the continuation.
const BAR_ABOVE: u64 = 4096;
/// How long a slot seen changing under unchanged inner frames bars continuations through it after the last
/// churn seen there: [`HOLD_SPAN`] times as long as churn has been seen there, at least [`MIN_HOLD_NS`], at
/// most [`HOLD_NS`].
pub const HOLD_NS: u64 = 10_000_000_000;
/// The shortest bar: one churn seen once (a phase of a program that moves from one call site to another).
pub const MIN_HOLD_NS: u64 = 250_000_000;
/// A bar holds this many times as long as the churn that made it has gone on: a slot that keeps changing,
/// at whatever pace, stays barred from its second churn on.
const HOLD_SPAN: u64 = 2;
/// Complete stacks kept per thread: a loop between two callees (a server's handler and its clock) leaves
/// its frame at one stack address with either return address; the junction's checks know both calls.
const KEPT: usize = 4;
/// Threads remembered at once; the least recently seen go first.
const MAX_THREADS: usize = 4096;
/// Samples ahead remembered per thread (see [`Continuer::ahead`]).
const MAX_AHEAD: usize = 64;
/// The longest time from the last sample seen ahead to a live read: what the thread did after it is unseen.
/// Normally 1 to 10 ms (the reader's tick and the time order's slack); longer when stacktop falls behind.
const MAX_UNSEEN_NS: u64 = 25_000_000;

/// Another process's memory, read by the caller (the edge that talks to the kernel).
pub trait LiveMemory {
    /// Reads `buf.len()` bytes at `address` of process `pid`, or fewer where readable memory ends.
    fn read(&mut self, pid: u32, address: u64, buf: &mut [u8]) -> Result<usize, LiveError>;
    /// The time now, on the clock of the samples' times (`CLOCK_MONOTONIC` nanoseconds).
    fn now(&self) -> u64;
}

/// Why a read of another process failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveError {
    /// Not allowed to read its memory (another user's process, `ptrace_scope`).
    NotPermitted,
    /// The process has exited.
    Exited,
    /// Nothing mapped there.
    Unmapped,
}

/// How a continuation went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The walk reached the thread's root through live memory.
    FromMemory,
    /// Frames were added from live memory up to the depth cap (the only stop that keeps them).
    Partial(Refusal),
    /// Nothing was added (why).
    Refused(Refusal),
}

/// One thread's last complete stack and what its stacks showed.
#[derive(Default)]
struct ThreadState {
    pid: u32,
    /// The last complete stacks (frames, CFAs innermost first: the CFAs grow), the latest first, at most
    /// [`KEPT`], no two alike above their leaf (see [`Continuer::observe`]).
    stacks: Vec<Walk>,
    /// Complete stacks seen (the probation).
    observed: u32,
    /// The stack ranges in which a copy's end bars the continuation (see [`Bar`]).
    bars: Vec<Bar>,
    seen: u64,
    /// When the thread's last complete stack counted for the probations was seen.
    counted_at: Option<Instant>,
}

/// Continues walks in live memory (see the module's docs).
pub struct Continuer {
    memory: Box<dyn LiveMemory + Send>,
    threads: HashMap<u32, ThreadState>,
    /// Processes whose memory cannot be read, and why.
    refused: HashMap<u32, LiveError>,
    /// Per process: complete stacks seen (counted apart, see [`APART`]), and whether any thread of it
    /// churned.
    processes: HashMap<u32, (u32, bool)>,
    /// Live memory read in windows of [`CHUNK`] bytes, all of process `windows_pid` and read at or after
    /// `windows_since` (see [`Continuer::view`]).
    windows: Vec<(u64, Vec<u8>)>,
    windows_pid: u32,
    windows_since: u64,
    spare: Vec<Vec<u8>>,
    scratch: Walk,
    /// The words a live walk checks first (see [`checked_words`]), reused.
    checks: Vec<(u64, u64)>,
    /// Per followed thread: `(time, stack pointer)` of its samples not yet walked (see [`Continuer::ahead`]).
    ahead: HashMap<u32, Vec<(u64, u64)>>,
    /// The latest time of any sample seen ahead.
    horizon: u64,
    /// [`Continuer::call_target`]'s answers per `(pid, return address)`: the code does not change while
    /// the process maps it, and the same few hundred call sites come back in every walk.
    call_targets: HashMap<(u32, u64), Option<u64>>,
    /// [`Continuer::junction_call`]'s answers per `(pid, return address, callee frame's address)`, for the
    /// same reason: a continued stack's outer frames come back in walk after walk, and each asks two
    /// function lookups.
    junction_calls: HashMap<(u32, u64, FrameAddress), Option<bool>>,
}

impl Continuer {
    pub fn new(memory: Box<dyn LiveMemory + Send>) -> Continuer {
        Continuer {
            memory,
            threads: HashMap::new(),
            refused: HashMap::new(),
            processes: HashMap::new(),
            windows: Vec::new(),
            windows_pid: 0,
            windows_since: 0,
            spare: Vec::new(),
            scratch: Walk::default(),
            checks: Vec::new(),
            ahead: HashMap::new(),
            horizon: 0,
            call_targets: HashMap::new(),
            junction_calls: HashMap::new(),
        }
    }

    /// A sample of thread `tid` at `time` with stack pointer `sp`, seen before the samples before it are
    /// walked (a batch is read before it is walked): walks of the thread's earlier samples learn from it
    /// that the thread was no deeper than `sp` then (see the module's docs).
    pub fn ahead(&mut self, tid: u32, time: u64, sp: u64) {
        self.horizon = self.horizon.max(time);
        if !self.threads.contains_key(&tid) {
            return;
        }
        let seen = self.ahead.entry(tid).or_default();
        if seen.len() >= MAX_AHEAD {
            seen.remove(0);
        }
        seen.push((time, sp));
    }

    /// The highest stack pointer among thread `tid`'s samples after `time` seen ahead; forgets those up to
    /// `time` (samples are walked in time order).
    fn highest_ahead(&mut self, tid: u32, time: u64) -> Option<u64> {
        let seen = self.ahead.get_mut(&tid)?;
        seen.retain(|&(t, _)| t > time);
        seen.iter().map(|&(_, sp)| sp).max()
    }

    /// Goes on with `walk`, which ran off the end of `copy` (`CopyExhausted`), for thread `tid` of `pid`
    /// sampled at `time`. `is_code` says whether a return address lies in executable code. On success the
    /// walk holds the whole stack; otherwise it holds at least what it held.
    #[allow(clippy::too_many_arguments)]
    pub fn extend(
        &mut self,
        unwinder: &Unwinder,
        cache: &mut Cache,
        pid: u32,
        tid: u32,
        time: u64,
        copy: StackCopy<'_>,
        walk: &mut Walk,
        max_depth: usize,
        is_code: &mut dyn FnMut(u64) -> bool,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
        stats: &mut ContinuationStats,
    ) -> Outcome {
        stats.ran_off += 1;
        let outcome = self.extend_inner(
            unwinder,
            cache,
            pid,
            tid,
            time,
            copy,
            walk,
            max_depth,
            is_code,
            function_of,
        );
        stats.add(outcome, pid);
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    fn extend_inner(
        &mut self,
        unwinder: &Unwinder,
        cache: &mut Cache,
        pid: u32,
        tid: u32,
        time: u64,
        copy: StackCopy<'_>,
        walk: &mut Walk,
        max_depth: usize,
        is_code: &mut dyn FnMut(u64) -> bool,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Outcome {
        if let Some(&e) = self.refused.get(&pid) {
            return Outcome::Refused(refusal(e));
        }
        self.thread(pid, tid, time);
        // The samples seen ahead tell what the thread did after this one up to the horizon; after it,
        // nothing is known. When stacktop falls behind (a loaded machine), that stretch grows long enough for
        // the thread to leave and re-enter its frames unseen (a recursion run in rounds was continued wrongly
        // so under load): no live read, no look.
        if self.memory.now().saturating_sub(self.horizon.max(time)) > MAX_UNSEEN_NS {
            return Outcome::Refused(Refusal::Late);
        }
        let junction = copy.end();
        let state = self.threads.get(&tid);
        // The slot's callers just above it change with it (the two callers of a recursion): the bar covers
        // them too.
        let barred = state.is_some_and(|s| {
            s.bars
                .iter()
                .any(|b| time < b.until && (b.floor..b.top).contains(&junction))
        });
        // A process is looked at before any continuation of it is used; a thread of it, only when one of
        // its threads was seen churning (a fooled thread is caught in its first samples, and its process's
        // new threads are looked at as well; other programs' new threads, rustc's codegen threads among
        // them, continue at once).
        let (process_observed, churned) = self.processes.get(&pid).copied().unwrap_or_default();
        let probation = process_observed < PROBATION
            || (churned && state.is_none_or(|s| s.observed < THREAD_PROBATION));
        if barred || probation {
            // Look without keeping: the stacks seen keep the churn check (and the probation) going.
            let mut look = std::mem::take(&mut self.scratch);
            look.clone_from(walk);
            let looked = self.live(
                unwinder,
                cache,
                (pid, tid, time),
                copy,
                &mut look,
                max_depth,
                is_code,
                function_of,
            );
            if looked == Outcome::FromMemory {
                let _ = self.observe(tid, time, &look, function_of);
            }
            self.scratch = look;
            return Outcome::Refused(match (looked, barred) {
                (Outcome::Refused(r @ (Refusal::NotPermitted | Refusal::Exited)), _) => r,
                (_, true) => Refusal::Churn,
                (_, false) => Refusal::FirstSamples,
            });
        }
        // The thread returned past the copy's outermost frame after this sample (a later sample's stack
        // pointer lies above it): what lies above may be other frames now, or stale ones.
        let outermost = walk.cfas.last().copied().unwrap_or(0);
        let returned = self
            .highest_ahead(tid, time)
            .is_some_and(|sp| sp > outermost);
        let outcome = if returned {
            Outcome::Refused(Refusal::Returned)
        } else {
            let len = walk.frames.len();
            let end = walk.end;
            let outcome = self.live(
                unwinder,
                cache,
                (pid, tid, time),
                copy,
                walk,
                max_depth,
                is_code,
                function_of,
            );
            // A continued stack that, against the thread's last one, shows a slot changed under unchanged
            // inner frames is the ambiguity itself: not kept.
            if outcome == Outcome::FromMemory && self.observe(tid, time, walk, function_of) {
                walk.truncate(len, end);
                return Outcome::Refused(Refusal::Churn);
            }
            outcome
        };
        // Returned past the copy, or moved on from its end: a walk anchored below a buffer may still be whole.
        if returned || outcome == Outcome::Refused(Refusal::Overlap) {
            if let Some(anchored) = self.anchored(
                unwinder,
                cache,
                (pid, tid, time),
                copy,
                walk,
                max_depth,
                is_code,
                function_of,
            ) {
                return anchored;
            }
        }
        outcome
    }

    /// The thread's state, made when first needed.
    fn thread(&mut self, pid: u32, tid: u32, time: u64) {
        if !self.threads.contains_key(&tid) && self.threads.len() >= MAX_THREADS {
            // The least recently seen half goes.
            let mut seen: Vec<u64> = self.threads.values().map(|s| s.seen).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.threads.retain(|_, s| s.seen > cut);
            let threads = &self.threads;
            self.ahead.retain(|tid, _| threads.contains_key(tid));
        }
        let state = self.threads.entry(tid).or_default();
        if state.pid != pid {
            // A new thread with a reused tid (or a new process).
            *state = ThreadState {
                pid,
                ..ThreadState::default()
            };
        }
        state.seen = time;
    }

    /// A process whose memory may not be read, or that is gone, is not read again.
    fn note_refusal(&mut self, pid: u32, failure: Option<Failure>) {
        if let Some(e @ (LiveError::NotPermitted | LiveError::Exited)) =
            failure.and_then(|f| f.error())
        {
            self.refused.insert(pid, e);
        }
    }

    /// The copy and process `pid`'s memory, read [`CHUNK`] bytes at a time; live memory is read only once
    /// `self.checks` (if any) are found in it as copied. The windows earlier views read serve this one when
    /// they are of the same process and were all read after `time`, the sample's: a walk of the sample made
    /// when they were read would have read the same bytes, and an earlier read is nearer the sample (the
    /// walks of a batch, made one after the other within a millisecond, each read the same outer frames of a
    /// thread; rustc's compile: a third of the continuation's CPU was `process_vm_readv`, a third less with
    /// this). Otherwise, when [`MAX_WINDOWS`] are kept, or when they are older than [`WINDOWS_FOR_NS`],
    /// they are given back: looks counted apart in time for a probation ([`APART`]) read apart.
    fn view<'a>(&'a mut self, pid: u32, time: u64, copy: StackCopy<'a>) -> View<'a> {
        let now = self.memory.now();
        if pid != self.windows_pid
            || time > self.windows_since
            || now.saturating_sub(self.windows_since) > WINDOWS_FOR_NS
            || self.windows.len() >= MAX_WINDOWS
        {
            self.give_back_windows();
            self.windows_pid = pid;
            self.windows_since = now;
        }
        View {
            pid,
            copy,
            checks: &self.checks,
            verified: self.checks.is_empty(),
            memory: &mut *self.memory,
            windows: &mut self.windows,
            spare: &mut self.spare,
            fetched: 0,
            failure: None,
        }
    }

    /// The last view's windows, back to the spare buffers.
    fn give_back_windows(&mut self) {
        for (_, buf) in self.windows.drain(..) {
            self.spare.push(buf);
        }
    }

    /// A complete stack of thread `tid` (from a copy, or continued): compared with the thread's last one
    /// for churn, then kept for the junction's checks. Only for threads whose walks ran off their copies. Returns whether
    /// the two show churn.
    pub fn observe(
        &mut self,
        tid: u32,
        time: u64,
        walk: &Walk,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> bool {
        let Some(state) = self.threads.get_mut(&tid) else {
            return false;
        };
        if walk.end != WalkEnd::Complete {
            return false;
        }
        let mut churned = false;
        if let Some(latest) = state.stacks.first() {
            if let Some(seen) = churn(latest, walk, function_of) {
                churned = true;
                bar(&mut state.bars, time, seen);
                self.processes.entry(state.pid).or_default().1 = true;
            }
        }
        // Stacks looked at within a moment of each other (one batch of samples is walked in microseconds)
        // saw the same live memory: they count once for the probations.
        let now = Instant::now();
        if state
            .counted_at
            .is_none_or(|at| now.duration_since(at) >= APART)
        {
            state.counted_at = Some(now);
            let process = self.processes.entry(state.pid).or_default();
            process.0 = process.0.saturating_add(1);
            state.observed = state.observed.saturating_add(1);
        }
        // Kept first, in place of a stack alike above its leaf (a leaf's own moves make no new outer frames)
        // or of the oldest; after churn alone (what the older stacks show above the slot may be the other
        // caller). The frames only: the words read are not needed again.
        let stacks = &mut state.stacks;
        if churned {
            stacks.truncate(1);
        }
        let alike = |w: &Walk| {
            w.frames.get(1..) == walk.frames.get(1..) && w.cfas.get(1..) == walk.cfas.get(1..)
        };
        let mut kept = match stacks.iter().position(alike) {
            Some(i) => stacks.remove(i),
            None if stacks.len() >= KEPT || churned => stacks.pop().unwrap_or_default(),
            None => Walk::default(),
        };
        kept.frames.clone_from(&walk.frames);
        kept.cfas.clone_from(&walk.cfas);
        kept.bps.clone_from(&walk.bps);
        kept.end = walk.end;
        stacks.insert(0, kept);
        state.seen = time;
        churned
    }

    /// Whether thread `tid` is followed (its walks ran off their copies): its complete walks then go to
    /// [`Continuer::observe`].
    pub fn follows(&self, tid: u32) -> bool {
        self.threads.contains_key(&tid)
    }

    /// Forgets a process (it exited and its samples were processed).
    pub fn forget(&mut self, pid: u32) {
        self.refused.remove(&pid);
        self.processes.remove(&pid);
        let Continuer { threads, ahead, .. } = self;
        ahead.retain(|tid, _| threads.get(tid).is_some_and(|s| s.pid != pid));
        threads.retain(|_, s| s.pid != pid);
        self.call_targets.retain(|&(p, _), _| p != pid);
        self.junction_calls.retain(|&(p, _, _), _| p != pid);
    }

    /// Walks on from `walk`'s last frame through the copy, then live memory.
    #[allow(clippy::too_many_arguments)]
    fn live(
        &mut self,
        unwinder: &Unwinder,
        cache: &mut Cache,
        (pid, tid, time): (u32, u32, u64),
        copy: StackCopy<'_>,
        walk: &mut Walk,
        max_depth: usize,
        is_code: &mut dyn FnMut(u64) -> bool,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Outcome {
        let len = walk.frames.len();
        let end = walk.end;
        let reads = walk.reads.len();
        checked_words(copy, walk, &mut self.checks);
        if self.checks.is_empty() {
            // Nothing of the copy to check live memory against.
            return Outcome::Refused(Refusal::Overlap);
        }
        let mut view = self.view(pid, time, copy);
        let mut read = |addr: u64| view.read(addr);
        dwarf::resume_into(unwinder, cache, &mut read, is_code, max_depth, walk);
        let failure = view.failure;
        // The live words are not the sample's: a switch-out memo must not match on them.
        walk.reads.truncate(reads);
        self.note_refusal(pid, failure);
        let why = match (failure, walk.end) {
            (Some(f), _) => f.refusal(),
            (None, WalkEnd::Complete) => {
                if self.junction_calls_its_callee(pid, tid, copy, walk, len, function_of) {
                    return Outcome::FromMemory;
                }
                walk.truncate(len, end);
                return Outcome::Refused(Refusal::CallSite);
            }
            (None, WalkEnd::DepthCap) => Refusal::DepthCap,
            (None, _) => Refusal::Broke,
        };
        // A walk that went wrong in live memory, or could not read it, shows the stack changed under it: the
        // frames it took before are no more trusted than the one it stopped at. Only the depth cap stops a walk
        // that went right.
        if walk.frames.len() > len
            && why == Refusal::DepthCap
            && self.junction_calls_its_callee(pid, tid, copy, walk, len, function_of)
        {
            Outcome::Partial(why)
        } else {
            walk.truncate(len, end);
            Outcome::Refused(why)
        }
    }

    /// Whether the first return address the walk took from live memory (past the copy's end: the junction)
    /// returns from a call of the function its callee frame runs in, where the call's bytes tell. A thread
    /// that returned past the copy's outermost frames and called elsewhere leaves a return address there
    /// that the checked words cannot tell from the sampled one when the new calls are shallow: the
    /// self-check found rustc's compiler thread, sampled in its last drops, continued through the
    /// allocator's thread-exit cleanup that ran by the live read. The call then is of another function.
    ///
    /// Where the bytes don't tell (a call through a register or memory other than a GOT slot, or to no
    /// function's start), taken only when a kept stack of the thread saw that call made there
    /// ([`Continuer::junction_seen`]). A tail call (the called function jumps to the callee) fails the
    /// check, and the stack ends at the copy as without a continuation.
    fn junction_calls_its_callee(
        &mut self,
        pid: u32,
        tid: u32,
        copy: StackCopy<'_>,
        walk: &Walk,
        len: usize,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> bool {
        let Some(k) = junction(copy, walk, len) else {
            return true;
        };
        let junction_holds = match self.junction_call(pid, walk, k, function_of) {
            Some(calls) => calls,
            None => self.junction_seen(tid, walk, k, function_of),
        };
        junction_holds && self.callers_call(pid, walk, k + 1, function_of)
    }

    /// Whether no frame from `from` on returns from a call of another function than the one its callee
    /// frame runs in, where the bytes tell. A thread back in its event loop leaves the deep frames it left
    /// (the junction among them) as they were, stale but whole, while its loop's slot above them holds the
    /// return address of whatever it calls now (assets/event_loop.c's clock call, where `on_event`'s return
    /// address was: 1 run in 12 had 4-5 such stacks in its self-check before this).
    fn callers_call(
        &mut self,
        pid: u32,
        walk: &Walk,
        from: usize,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> bool {
        (from..walk.frames.len())
            .all(|j| self.junction_call(pid, walk, j, function_of) != Some(false))
    }

    /// Whether the return address of frame `k` (the junction) follows a call of its callee frame's function:
    /// `None` when the call's bytes don't tell (a call through a register or memory).
    fn junction_call(
        &mut self,
        pid: u32,
        walk: &Walk,
        k: usize,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Option<bool> {
        let (frame, inner) = junction_frames(walk, k)?;
        let key = (pid, frame.address.raw().0, inner.address);
        if let Some(&known) = self.junction_calls.get(&key) {
            return known;
        }
        let answer = function_at(inner, function_of)
            .and_then(|callee| self.calls(pid, frame.address.raw().0, callee, function_of));
        if self.junction_calls.len() >= MAX_CALL_TARGETS {
            self.junction_calls.clear();
        }
        self.junction_calls.insert(key, answer);
        answer
    }

    /// Whether the call before return address `ra` calls function `callee`, where its bytes tell (see
    /// [`Continuer::call_target`]).
    fn calls(
        &mut self,
        pid: u32,
        ra: u64,
        callee: (usize, u64),
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Option<bool> {
        let target = self.call_target(pid, ra, function_of)?;
        Some(function_of(target.wrapping_add(1)) == Some(callee))
    }

    /// Whether one of the thread's kept stacks has the junction's frame (frame `k`: the same return address
    /// at the same CFA) over a callee in the same function: a call its bytes cannot tell (through a pointer)
    /// is taken where it was seen making this very call. A thread back in its event loop, calling its clock
    /// through the vDSO where the sampled handler's return address was, is refused so (the self-check's
    /// event-loop workload).
    fn junction_seen(
        &self,
        tid: u32,
        walk: &Walk,
        k: usize,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> bool {
        let Some((frame, callee)) = junction_at(walk, k, function_of) else {
            return false;
        };
        self.kept_over(tid, walk, k, callee, function_of)
            .any(|(kept, m)| kept.frames.get(m) == Some(frame))
    }

    /// The kept stacks of thread `tid` that have a frame at the CFA of `walk`'s frame `k` over a callee in
    /// function `callee`, with that frame's index in each.
    fn kept_over<'s>(
        &'s self,
        tid: u32,
        walk: &'s Walk,
        k: usize,
        callee: (usize, u64),
        function_of: &'s mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> impl Iterator<Item = (&'s Walk, usize)> + 's {
        let cfa = walk.cfas.get(k).copied();
        let kept = self.threads.get(&tid).map(|s| s.stacks.as_slice());
        kept.unwrap_or_default().iter().filter_map(move |kept| {
            let m = kept.cfas.iter().position(|&c| Some(c) == cfa)?;
            let inner = kept.frames.get(m.checked_sub(1)?)?;
            (function_at(inner, function_of) == Some(callee)).then_some((kept, m))
        })
    }

    /// A walk whose copy ends inside its outermost frame's own stack (a function with a large buffer), where
    /// the thread has moved on below or past that frame since: live memory read without checking the copy's
    /// words, taken only when the walk reaches the root and the junction's return address follows a direct
    /// call of that frame's function (or the call a kept stack saw, see [`Continuer::junction_as_kept`]),
    /// then looked at by the churn check. `None` when not taken (the walk is as it was).
    #[allow(clippy::too_many_arguments)]
    fn anchored(
        &mut self,
        unwinder: &Unwinder,
        cache: &mut Cache,
        (pid, tid, time): (u32, u32, u64),
        copy: StackCopy<'_>,
        walk: &mut Walk,
        max_depth: usize,
        is_code: &mut dyn FnMut(u64) -> bool,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Option<Outcome> {
        // Only where the copy ends in a large stretch the walk did not read (a buffer).
        let highest = walk
            .reads
            .iter()
            .map(|&(a, _)| a)
            .filter(|&a| a >= copy.sp && a < copy.end())
            .max()
            .unwrap_or(copy.sp);
        if copy.end().saturating_sub(highest) < UNREAD_BUFFER {
            return None;
        }
        let len = walk.frames.len();
        let end = walk.end;
        let reads = walk.reads.len();
        self.checks.clear();
        let mut view = self.view(pid, time, copy);
        let mut read = |addr: u64| view.read(addr);
        dwarf::resume_into(unwinder, cache, &mut read, is_code, max_depth, walk);
        let failure = view.failure;
        walk.reads.truncate(reads);
        self.note_refusal(pid, failure);
        let complete =
            failure.is_none() && walk.end == WalkEnd::Complete && walk.frames.len() > len;
        let taken = complete
            && junction(copy, walk, len).is_some_and(|k| {
                (self.junction_call(pid, walk, k, function_of) == Some(true)
                    || self.junction_as_kept(pid, tid, walk, k, function_of))
                    && self.callers_call(pid, walk, k + 1, function_of)
            });
        if !taken {
            walk.truncate(len, end);
            return None;
        }
        if self.observe(tid, time, walk, function_of) {
            walk.truncate(len, end);
            return Some(Outcome::Refused(Refusal::Churn));
        }
        Some(Outcome::FromMemory)
    }

    /// An anchored walk (see [`Continuer::anchored`]) whose junction returns into the function that called
    /// the anchored frame, at another call site: the caller is still there (the same function with its frame
    /// at the same address, under the same outer frames), calling something else now (memcached's
    /// `event_handler`, which called `drive_machine` when sampled, logging or closing the connection when
    /// read). When one of the thread's kept stacks has that frame (same CFA, a return address into the
    /// same function that follows a direct call of the anchored frame's function) under the same outer
    /// frames, the junction is given its return address, the call made at the sample, and the walk is
    /// taken.
    fn junction_as_kept(
        &mut self,
        pid: u32,
        tid: u32,
        walk: &mut Walk,
        k: usize,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> bool {
        let Some((frame, callee)) = junction_at(walk, k, function_of) else {
            return false;
        };
        let Some(caller) = function_at(frame, function_of) else {
            return false;
        };
        let seen = self
            .kept_over(tid, walk, k, callee, function_of)
            .find_map(|(kept, m)| {
                let f = kept.frames.get(m)?;
                let same = kept.frames.get(m + 1..) == walk.frames.get(k + 1..)
                    && kept.cfas.get(m + 1..) == walk.cfas.get(k + 1..);
                same.then_some(*f)
            });
        let Some(seen) = seen.filter(|f| function_at(f, function_of) == Some(caller)) else {
            return false;
        };
        if self.calls(pid, seen.address.raw().0, callee, function_of) != Some(true) {
            return false;
        }
        if let Some(f) = walk.frames.get_mut(k) {
            *f = seen;
        }
        true
    }

    /// The function start the call before return address `ra` calls, where its bytes tell (a direct call, or
    /// one through a GOT slot; a PLT entry's jump is followed); `None` when they don't.
    fn call_target(
        &mut self,
        pid: u32,
        ra: u64,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Option<u64> {
        if let Some(&known) = self.call_targets.get(&(pid, ra)) {
            return known;
        }
        if self.call_targets.len() >= MAX_CALL_TARGETS {
            self.call_targets.clear();
        }
        let target = self.read_call_target(pid, ra, function_of);
        self.call_targets.insert((pid, ra), target);
        target
    }

    fn read_call_target(
        &mut self,
        pid: u32,
        ra: u64,
        function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
    ) -> Option<u64> {
        let mut before = [0u8; CALL_BYTES];
        self.read_exact(pid, ra.checked_sub(CALL_BYTES as u64)?, &mut before)?;
        let target = match decode_call(ra, before) {
            Callee::Direct(target) => target,
            Callee::Slot(slot) => self.read_word(pid, slot)?,
            Callee::Unknown => return None,
        };
        // A PLT entry jumps on through its GOT slot (an entry may begin the FDE that covers its section:
        // followed first).
        let mut stub = [0u8; PLT_BYTES];
        self.read_exact(pid, target, &mut stub)?;
        let target = match plt_slot(target, stub) {
            Some(slot) => self.read_word(pid, slot)?,
            None => target,
        };
        // A function's start: the function there differs from the one just before it (bytes decoded as a
        // call by chance rarely point at one; a lazily bound GOT slot points back into the PLT).
        let f = function_of(target.wrapping_add(1));
        (f.is_some() && f != function_of(target)).then_some(target)
    }

    fn read_exact(&mut self, pid: u32, address: u64, buf: &mut [u8]) -> Option<()> {
        (self.memory.read(pid, address, buf).ok()? == buf.len()).then_some(())
    }

    fn read_word(&mut self, pid: u32, address: u64) -> Option<u64> {
        let mut word = [0u8; 8];
        self.read_exact(pid, address, &mut word)?;
        Some(u64::from_le_bytes(word))
    }
}

/// The words the walk read highest in the copy (return addresses, saved registers of its outermost frames
/// there): what must still be in live memory as copied. Those frames are the ones a thread that moved on
/// is least likely to still have by chance; and locals may change while their frames stay.
fn checked_words(copy: StackCopy<'_>, walk: &Walk, out: &mut Vec<(u64, u64)>) {
    out.clear();
    let inside = |a: u64| a >= copy.sp && a < copy.end();
    let Some(top) = walk
        .reads
        .iter()
        .map(|&(a, _)| a)
        .filter(|&a| inside(a))
        .max()
    else {
        return;
    };
    let from = top.saturating_sub(CHECKED);
    out.extend(
        walk.reads
            .iter()
            .copied()
            .filter(|&(a, _)| a >= from && inside(a)),
    );
}

/// The junction of a walk continued from `len` frames: the first frame whose return address lies past the
/// copy (x86-64: just under its callee's CFA).
fn junction(copy: StackCopy<'_>, walk: &Walk, len: usize) -> Option<usize> {
    let end = copy.end();
    (len.max(1)..walk.frames.len())
        .find(|&k| walk.cfas.get(k).is_some_and(|c| c.saturating_sub(8) >= end))
}

/// Frame `k` of `walk` (the junction) and the function its callee frame runs in.
fn junction_at<'w>(
    walk: &'w Walk,
    k: usize,
    function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
) -> Option<(&'w Frame, (usize, u64))> {
    let (frame, inner) = junction_frames(walk, k)?;
    Some((frame, function_at(inner, function_of)?))
}

/// Frame `k` of `walk` (the junction) and its callee frame.
fn junction_frames(walk: &Walk, k: usize) -> Option<(&Frame, &Frame)> {
    Some((walk.frames.get(k)?, walk.frames.get(k.checked_sub(1)?)?))
}

/// The function a frame runs in (its module and FDE start), as `function_of` tells it from a return address.
fn function_at(
    frame: &Frame,
    function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
) -> Option<(usize, u64)> {
    match frame.address {
        FrameAddress::InstructionPointer(a) => function_of(a.0.wrapping_add(1)),
        FrameAddress::ReturnAddress(a) => function_of(a.0),
    }
}

/// Bytes before a return address that hold the calls [`decode_call`] tells apart.
const CALL_BYTES: usize = 6;
/// Bytes of a PLT entry [`plt_slot`] reads.
const PLT_BYTES: usize = 16;

/// What the instruction before a return address calls, as far as its bytes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Callee {
    /// `call rel32`: this address.
    Direct(u64),
    /// `call *disp32(%rip)`: the address held in this slot (a GOT entry).
    Slot(u64),
    /// Through a register or other memory.
    Unknown,
}

/// The call that `before`, the [`CALL_BYTES`] bytes before return address `ra`, ends with (x86-64).
fn decode_call(ra: u64, before: [u8; CALL_BYTES]) -> Callee {
    let [b0, b1, d0, d1, d2, d3] = before;
    let displaced = ra.wrapping_add(i64::from(i32::from_le_bytes([d0, d1, d2, d3])) as u64);
    match (b0, b1) {
        (_, 0xe8) => Callee::Direct(displaced),
        (0xff, 0x15) => Callee::Slot(displaced),
        _ => Callee::Unknown,
    }
}

/// The GOT slot a PLT entry at `at` jumps through: `[endbr64] [bnd] jmp *disp32(%rip)`.
fn plt_slot(at: u64, code: [u8; PLT_BYTES]) -> Option<u64> {
    let mut i = if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        4
    } else {
        0
    };
    if code.get(i) == Some(&0xf2) {
        i += 1;
    }
    let jump = code.get(i..i + 6)?;
    if jump[..2] != [0xff, 0x25] {
        return None;
    }
    let disp = i32::from_le_bytes([jump[2], jump[3], jump[4], jump[5]]);
    Some(
        at.wrapping_add(i as u64 + 6)
            .wrapping_add(i64::from(disp) as u64),
    )
}

fn refusal(e: LiveError) -> Refusal {
    match e {
        LiveError::NotPermitted => Refusal::NotPermitted,
        LiveError::Exited => Refusal::Exited,
        LiveError::Unmapped => Refusal::Unreadable,
    }
}

/// Why live memory stopped a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The copy's last bytes are no longer in live memory as copied (or there was nothing to compare).
    Overlap,
    /// A read failed.
    Read(LiveError),
    /// More than [`MAX_LIVE`] bytes read.
    TooMuch,
}

impl Failure {
    fn error(self) -> Option<LiveError> {
        match self {
            Failure::Read(e) => Some(e),
            _ => None,
        }
    }

    fn refusal(self) -> Refusal {
        match self {
            Failure::Overlap => Refusal::Overlap,
            Failure::Read(e) => refusal(e),
            Failure::TooMuch => Refusal::DepthCap,
        }
    }
}

/// The copy, then live memory read in windows of [`CHUNK`] bytes as the walk asks for them.
struct View<'a> {
    pid: u32,
    copy: StackCopy<'a>,
    /// Stack words the walk read in the copy's last [`CHECKED`] bytes.
    checks: &'a [(u64, u64)],
    memory: &'a mut (dyn LiveMemory + Send),
    windows: &'a mut Vec<(u64, Vec<u8>)>,
    spare: &'a mut Vec<Vec<u8>>,
    verified: bool,
    fetched: usize,
    failure: Option<Failure>,
}

impl View<'_> {
    fn read(&mut self, addr: u64) -> Read {
        if let Some(value) = self.copy.read(addr) {
            return Read::Value(value);
        }
        if addr < self.copy.sp {
            return Read::Invalid;
        }
        if self.failure.is_some() {
            return Read::PastEnd;
        }
        if !self.verified {
            if let Err(f) = self.verify() {
                self.failure = Some(f);
                return Read::PastEnd;
            }
            self.verified = true;
        }
        if let Some(value) = self.cached(addr) {
            return Read::Value(value);
        }
        match self.fetch(addr, addr) {
            Ok(()) => self.cached(addr).map_or(Read::PastEnd, Read::Value),
            Err(f) => {
                self.failure = Some(f);
                Read::PastEnd
            }
        }
    }

    fn cached(&self, addr: u64) -> Option<u64> {
        self.windows
            .iter()
            .find_map(|(start, bytes)| StackCopy { sp: *start, bytes }.read(addr))
    }

    /// Reads a window from the start of `from`'s page (windows kept for later walks overlap less), which
    /// must cover `need`.
    fn fetch(&mut self, from: u64, need: u64) -> Result<(), Failure> {
        let from = from & !(PAGE - 1);
        if self.fetched >= MAX_LIVE {
            return Err(Failure::TooMuch);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let n = match self.memory.read(self.pid, from, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                self.spare.push(buf);
                return Err(Failure::Read(e));
            }
        };
        buf.truncate(n);
        self.fetched += n;
        if need.saturating_add(8) > from.saturating_add(n as u64) {
            self.spare.push(buf);
            return Err(Failure::Read(LiveError::Unmapped));
        }
        self.windows.push((from, buf));
        Ok(())
    }

    /// The stack words checked (see [`checked_words`]) must be in live memory as copied (the frames there
    /// are still the same frames); the window read for the check goes on past the copy's end, where the walk
    /// reads next.
    fn verify(&mut self) -> Result<(), Failure> {
        let (Some(from), Some(top)) = (
            self.checks.iter().map(|&(a, _)| a).min(),
            self.checks.iter().map(|&(a, _)| a).max(),
        ) else {
            return Err(Failure::Overlap);
        };
        if self
            .checks
            .iter()
            .any(|&(address, _)| self.cached(address).is_none())
        {
            self.fetch(from, top)?;
        }
        if self
            .checks
            .iter()
            .all(|&(address, value)| self.cached(address) == Some(value))
        {
            Ok(())
        } else {
            Err(Failure::Overlap)
        }
    }
}

/// A stack range in which a copy's end bars the continuation of a thread's walks, until a time: a slot
/// seen churning, the callers just above it (which change with it: the two callers of a recursion), and
/// the frames under it down to the churn's floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bar {
    /// The slot seen churning.
    slot: u64,
    floor: u64,
    top: u64,
    /// When the first churn at its slot was seen (the earliest of the bars folded into it, when there were
    /// too many).
    since: u64,
    /// When the last churn at its slot was seen.
    last: u64,
    /// Until when it bars.
    until: u64,
}

/// Most bars a thread keeps; past it, one that ran out makes room, or all fold into one.
const MAX_BARS: usize = 8;

/// Adds what a churn seen at `time` bars to a thread's `bars`, one per slot seen churning: each holds from
/// the last churn at its slot for twice as long as churn has gone on there (see [`HOLD_NS`]), and is
/// remembered for [`HOLD_NS`] after it. A program that moves once from one call site of a function to another
/// (rustc's passes calling one query from two places in turn, a few times in a row) is barred for a moment;
/// one that keeps alternating at a slot, fast or slow (up to [`HOLD_NS`] a phase), is barred from its second
/// churn there on, as each churn comes before the bar the last one made has run out. Churn at other slots
/// does not lengthen a slot's bar (rustc's compiler thread churns at a dozen slots in turn, a few times each).
fn bar(bars: &mut Vec<Bar>, time: u64, seen: Churn) {
    // A bar that ran out is remembered for as long as the longest hold from its last churn: a slot that
    // changes again later (a slow alternation) is held from that much earlier.
    bars.retain(|b| time < b.last.saturating_add(HOLD_NS));
    let top = if seen.floor == 0 {
        seen.slot.saturating_add(BAR_ABOVE)
    } else {
        seen.slot
    };
    let k = match bars.iter().position(|b| b.slot == seen.slot) {
        Some(k) => k,
        None => {
            let mut new = Bar {
                slot: seen.slot,
                floor: seen.floor,
                top,
                since: time,
                last: time,
                until: time,
            };
            if bars.len() >= MAX_BARS {
                // Too many slots: one that ran out goes (the one churning longest ago), or, when all hold,
                // one bar covers them all.
                let gone = (0..bars.len())
                    .filter(|&k| bars[k].until <= time)
                    .min_by_key(|&k| bars[k].last);
                match gone {
                    Some(k) => {
                        bars.swap_remove(k);
                    }
                    None => {
                        for b in bars.drain(..) {
                            new.floor = new.floor.min(b.floor);
                            new.top = new.top.max(b.top);
                            new.since = new.since.min(b.since);
                            new.until = new.until.max(b.until);
                        }
                    }
                }
            }
            bars.push(new);
            bars.len() - 1
        }
    };
    let b = &mut bars[k];
    b.floor = b.floor.min(seen.floor);
    b.top = b.top.max(top);
    b.last = time;
    let hold = time
        .saturating_sub(b.since)
        .saturating_mul(HOLD_SPAN)
        .clamp(MIN_HOLD_NS, HOLD_NS);
    b.until = b.until.max(time.saturating_add(hold));
}

/// What two complete stacks of one thread show changed under unchanged inner frames (see [`churn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Churn {
    /// The highest stack address (a frame's CFA) at which the two hold different return addresses (or a
    /// frame only one has), with at least [`OVERLAP`] bytes of frames below it that agree.
    slot: u64,
    /// The lowest CFA down to which the frames under the slot agree, when the churn is one function calling
    /// the same code from two of its call sites (see [`churn`]); else 0: every junction under the slot is
    /// barred.
    floor: u64,
}

/// The churn two complete stacks of one thread show: a slot at which they hold different return addresses
/// (or a frame only one has), with at least [`OVERLAP`] bytes of frames below it that agree (same return
/// addresses at the same addresses).
///
/// Its floor: where the slot returns into the same function in both stacks (one function calling the
/// same code from two call sites, as rustc's passes call queries), nothing above the slot differs, and
/// the agreeing frames under it hold no return address twice (no recursion), a walk whose copy ends below
/// the agreeing frames ends in frames that the two calls were seen to run differently, which the overlap
/// check then compares: only junctions from the floor up are barred. A recursion under the slot agrees
/// as deep as the shallower of the two stacks, and a deeper one would agree deeper still: every junction
/// under the slot stays barred, as for two different callers (the alternating recursion of the module's
/// docs).
fn churn(
    old: &Walk,
    new: &Walk,
    function_of: &mut dyn FnMut(u64) -> Option<(usize, u64)>,
) -> Option<Churn> {
    // Frame i (i >= 1) returns to frames[i] with sp = cfas[i]; both stacks are sorted by cfa, innermost
    // first. Walk the new stack from its root inward.
    let old_cfas = old.cfas.get(1..)?;
    let at = |cfa: u64| old_cfas.binary_search(&cfa).ok().map(|j| j + 1);
    // The differing slot (its index in the new stack, and in the old one if it has a frame there), and how
    // many slots differed from the root down to it.
    let mut differ: Option<(usize, Option<usize>)> = None;
    let mut differences = 0u32;
    // The highest CFA of the frames agreeing under the slot (they are `new.frames[i..slot]`).
    let mut agree_top: Option<u64> = None;
    let mut i = new.cfas.len();
    let (slot, slot_j) = loop {
        i = i.checked_sub(1).filter(|&i| i >= 1)?;
        let cfa = new.cfas[i];
        let j = at(cfa);
        let same = j.is_some_and(|j| old.frames.get(j) == new.frames.get(i));
        if !same {
            differ = Some((i, j));
            differences += 1;
            agree_top = None;
            continue;
        }
        let Some((d, dj)) = differ else { continue };
        let top = *agree_top.get_or_insert(cfa);
        if top.saturating_sub(cfa) >= OVERLAP {
            break (d, dj);
        }
    };
    let slot_cfa = new.cfas[slot];
    let wide = Churn {
        slot: slot_cfa,
        floor: 0,
    };
    let ra = |w: &Walk, k: usize| w.frames.get(k).map(|f| f.address.raw().0);
    let same_function = match (ra(new, slot), slot_j.and_then(|j| ra(old, j))) {
        (Some(a), Some(b)) => function_of(a).is_some_and(|f| function_of(b) == Some(f)),
        _ => false,
    };
    if differences != 1 || !same_function {
        return Some(wide);
    }
    // Go on down while both stacks hold the same frames, one for one.
    let mut floor = new.cfas[i];
    let mut j = at(floor);
    while let Some(k) = i.checked_sub(1).filter(|&k| k >= 1) {
        let cfa = new.cfas[k];
        let Some(jk) = at(cfa).filter(|&jk| Some(jk + 1) == j) else {
            break;
        };
        if old.frames.get(jk) != new.frames.get(k) {
            break;
        }
        (i, j, floor) = (k, Some(jk), cfa);
    }
    // A return address twice among them is a recursion. Quadratic, but only for a churn seen (rare), and
    // with no allocation on the path every complete stack takes.
    let agreeing = &new.frames[i..slot];
    if agreeing
        .iter()
        .enumerate()
        .any(|(k, f)| agreeing[k + 1..].contains(f))
    {
        return Some(wide);
    }
    Some(Churn {
        slot: slot_cfa,
        floor,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::addr::{Avma, FrameAddress};
    use crate::unwind::Frame;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn stack(frames: &[(u64, u64)]) -> Walk {
        let mut w = Walk {
            end: WalkEnd::Complete,
            ..Walk::default()
        };
        w.frames.push(Frame {
            address: FrameAddress::InstructionPointer(Avma(0x1000)),
            kernel: false,
        });
        w.cfas.push(0x7000);
        for &(cfa, ra) in frames {
            w.frames.push(Frame {
                address: FrameAddress::ReturnAddress(Avma(ra)),
                kernel: false,
            });
            w.cfas.push(cfa);
        }
        w.bps = vec![0; w.cfas.len()];
        w
    }

    /// A recursion of `depth` 32-byte frames returning to 0x2000, under an outer frame at a fixed address
    /// returning to `outer`, under main.
    fn recursion(depth: u64, outer: u64) -> Walk {
        const TOP: u64 = 0x9000;
        let mut frames: Vec<(u64, u64)> =
            (1..=depth).rev().map(|i| (TOP - 32 * i, 0x2000)).collect();
        frames.push((TOP, outer));
        frames.push((TOP + 64, 0x3000));
        stack(&frames)
    }

    /// The functions of the tests' code: one per 256 bytes.
    fn functions(ra: u64) -> Option<(usize, u64)> {
        Some((1, ra & !0xff))
    }

    fn churn_of(old: &Walk, new: &Walk) -> Option<Churn> {
        churn(old, new, &mut functions)
    }

    #[test]
    fn a_changed_outer_frame_over_the_same_recursion_is_churn() {
        let a = recursion(40, 0xa000);
        let b = recursion(30, 0xb000);
        // Two different callers: every junction under the slot is barred.
        assert_eq!(
            churn_of(&a, &b),
            Some(Churn {
                slot: 0x9000,
                floor: 0
            })
        );
        // The same outer frame: no churn, whatever the depths.
        assert_eq!(churn_of(&a, &recursion(12, 0xa000)), None);
        // A short agreement (under OVERLAP bytes) is what ordinary code shows: not churn.
        assert_eq!(
            churn_of(&recursion(40, 0xa000), &recursion(3, 0xb000)),
            None
        );
    }

    #[test]
    fn one_function_calling_from_two_sites_bars_only_down_to_where_the_frames_agree() {
        // A chain of three distinct frames (0x100 bytes each) under a slot that returns into one function
        // at two call sites; the innermost frames differ.
        let calls = |site: u64, inner: u64| {
            stack(&[
                (0x8b00, inner),
                (0x8c00, 0x2400),
                (0x8d00, 0x2500),
                (0x8e00, 0x2600),
                (0x9000, site),
                (0x9040, 0x3000),
            ])
        };
        assert_eq!(
            churn_of(&calls(0xa010, 0x5000), &calls(0xa040, 0x6000)),
            Some(Churn {
                slot: 0x9000,
                floor: 0x8c00
            })
        );
        // The same function over a recursion: the agreement says nothing of deeper stacks, all barred.
        assert_eq!(
            churn_of(&recursion(40, 0xa010), &recursion(30, 0xa040)),
            Some(Churn {
                slot: 0x9000,
                floor: 0
            })
        );
    }

    #[test]
    fn a_bar_holds_for_twice_as_long_as_churn_went_on_at_its_slot() {
        const MS: u64 = 1_000_000;
        let mut bars = Vec::new();
        let narrow = Churn {
            slot: 0x9000,
            floor: 0x8c00,
        };
        let at = |bars: &[Bar], slot: u64| *bars.iter().find(|b| b.slot == slot).unwrap();
        // One churn: the shortest hold.
        bar(&mut bars, 10 * MS, narrow);
        assert_eq!(
            bars,
            vec![Bar {
                slot: 0x9000,
                floor: 0x8c00,
                top: 0x9000,
                since: 10 * MS,
                last: 10 * MS,
                until: 10 * MS + MIN_HOLD_NS
            }]
        );
        // Another slot is another bar; a wide churn bars everything under its slot and a page above it.
        let wide = Churn {
            slot: 0x7000,
            floor: 0,
        };
        bar(&mut bars, 20 * MS, wide);
        assert_eq!(bars.len(), 2);
        assert_eq!(
            (at(&bars, 0x7000).floor, at(&bars, 0x7000).top),
            (0, 0x8000)
        );
        // The same slot again, agreeing less deep: the bar widens down, holds from the first churn.
        bar(
            &mut bars,
            30 * MS,
            Churn {
                slot: 0x9000,
                floor: 0x8b00,
            },
        );
        assert_eq!(
            at(&bars, 0x9000),
            Bar {
                slot: 0x9000,
                floor: 0x8b00,
                top: 0x9000,
                since: 10 * MS,
                last: 30 * MS,
                until: 30 * MS + MIN_HOLD_NS
            }
        );
        // Churn elsewhere does not lengthen it.
        bar(&mut bars, 150 * MS, wide);
        assert_eq!(at(&bars, 0x9000).until, 30 * MS + MIN_HOLD_NS);
        // Churn that goes on at the slot holds twice as long as it has gone on, so that the next one (at any
        // pace) comes while the bar holds.
        bar(&mut bars, 200 * MS, narrow);
        assert_eq!(at(&bars, 0x9000).until, 200 * MS + 2 * 190 * MS);
        bar(&mut bars, 500 * MS, narrow);
        assert_eq!(at(&bars, 0x9000).until, 500 * MS + 2 * 490 * MS);
        // A bar that ran out is remembered: a slow alternation's next churn holds from the first.
        bar(&mut bars, 3_000 * MS, narrow);
        assert_eq!(at(&bars, 0x9000).until, 3_000 * MS + 2 * 2_990 * MS);
        // Up to the longest hold.
        bar(&mut bars, 9_000 * MS, narrow);
        assert_eq!(at(&bars, 0x9000).until, 9_000 * MS + HOLD_NS);
        // A bar is forgotten the longest hold after its last churn (the wide one is gone with it): a new
        // churn starts a new one.
        let later = 9_000 * MS + HOLD_NS + MS;
        bar(&mut bars, later, narrow);
        assert_eq!(
            bars,
            vec![Bar {
                slot: 0x9000,
                floor: 0x8c00,
                top: 0x9000,
                since: later,
                last: later,
                until: later + MIN_HOLD_NS
            }]
        );
        // Too many slots at once: one bar covers them all, as long as the longest.
        for k in 0..2 * MAX_BARS as u64 {
            bar(
                &mut bars,
                later + MS,
                Churn {
                    slot: 0x20_0000 + k * 0x1000 + 0x100,
                    floor: 0x20_0000 + k * 0x1000,
                },
            );
        }
        assert!(bars.len() <= MAX_BARS);
        for k in 0..2 * MAX_BARS as u64 {
            let junction = 0x20_0000 + k * 0x1000 + 0x80;
            assert!(bars
                .iter()
                .any(|b| later + MS < b.until && (b.floor..b.top).contains(&junction)));
        }
        assert!(bars
            .iter()
            .any(|b| later + MS < b.until && (b.floor..b.top).contains(&0x8d00)));
        // Slots whose bars ran out make room for new ones instead.
        let mut bars = Vec::new();
        for k in 0..MAX_BARS as u64 {
            bar(
                &mut bars,
                k * MS,
                Churn {
                    slot: 0x1000 * (k + 1),
                    floor: 0x10,
                },
            );
        }
        bar(
            &mut bars,
            300 * MS,
            Churn {
                slot: 0x50_0000,
                floor: 0x10,
            },
        );
        assert_eq!(bars.len(), MAX_BARS);
        assert!(bars.iter().all(|b| b.slot != 0x1000));
    }

    /// A process's memory as bytes from `base` (the unit tests' stand-in for `process_vm_readv`).
    struct Bytes {
        base: u64,
        bytes: Vec<u8>,
    }

    impl LiveMemory for Bytes {
        fn read(&mut self, _pid: u32, address: u64, buf: &mut [u8]) -> Result<usize, LiveError> {
            let off = address
                .checked_sub(self.base)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o < self.bytes.len())
                .ok_or(LiveError::Unmapped)?;
            let n = buf.len().min(self.bytes.len() - off);
            buf[..n].copy_from_slice(&self.bytes[off..off + n]);
            Ok(n)
        }

        fn now(&self) -> u64 {
            0
        }
    }

    fn view<'a>(
        copy: StackCopy<'a>,
        checks: &'a [(u64, u64)],
        memory: &'a mut Bytes,
        windows: &'a mut Vec<(u64, Vec<u8>)>,
        spare: &'a mut Vec<Vec<u8>>,
    ) -> View<'a> {
        View {
            pid: 1,
            copy,
            checks,
            memory,
            windows,
            spare,
            verified: false,
            fetched: 0,
            failure: None,
        }
    }

    /// Code from 0x2000 for the call checks (functions of 256 bytes, as [`functions`]), and the return
    /// addresses of its calls: of function A (0x2000) directly, through a GOT slot, through a PLT entry;
    /// of another function; through a register; into A's middle.
    fn calls() -> (Bytes, [u64; 6]) {
        let mut bytes = vec![0x90u8; 0x1000];
        let mut put = |at: u64, code: &[u8]| {
            let o = (at - 0x2000) as usize;
            bytes[o..o + code.len()].copy_from_slice(code);
        };
        let rel = |ra: u64, to: u64| (to.wrapping_sub(ra) as i32).to_le_bytes();
        put(0x2150, &[0xe8]);
        put(0x2151, &rel(0x2155, 0x2000));
        put(0x2250, &[0xe8]);
        put(0x2251, &rel(0x2255, 0x2300));
        put(0x2400, &[0xff, 0x15]);
        put(0x2402, &rel(0x2406, 0x2800));
        put(0x2800, &0x2000u64.to_le_bytes());
        put(0x2450, &[0xe8]);
        put(0x2451, &rel(0x2455, 0x2600));
        put(0x2600, &[0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25]);
        put(0x2607, &rel(0x260b, 0x2810));
        put(0x2810, &0x2000u64.to_le_bytes());
        put(0x2500, &[0xff, 0xd0]);
        put(0x2550, &[0xe8]);
        put(0x2551, &rel(0x2555, 0x2040));
        let memory = Bytes {
            base: 0x2000,
            bytes,
        };
        (memory, [0x2155, 0x2406, 0x2455, 0x2255, 0x2502, 0x2555])
    }

    #[test]
    fn a_return_address_past_the_copy_must_follow_a_call_of_its_callee() {
        let (memory, [direct, got, plt, other, register, middle]) = calls();
        let mut c = Continuer::new(Box::new(memory));
        // As the pipeline's `function_of`: the function a return address returns into (it ran `ra - 1`).
        let mut function_of = |ra: u64| Some((1, ra.wrapping_sub(1) & !0xff));
        let mut also_function_of = function_of;
        let bytes = [0u8; 0x180];
        let copy = StackCopy {
            sp: 0x7000,
            bytes: &bytes,
        };
        // Frame 1 (in the copy) runs in function A; frame 2's return address is the first past the copy.
        let junction = |ra: u64| stack(&[(0x7100, 0x2080), (0x7200, ra), (0x7300, 0x3000)]);
        let mut holds = |c: &mut Continuer, ra: u64| {
            c.junction_calls_its_callee(1, 1, copy, &junction(ra), 2, &mut function_of)
        };
        assert!(holds(&mut c, direct));
        assert!(holds(&mut c, got));
        assert!(holds(&mut c, plt));
        // A call of another function: the thread had moved on (rustc's thread exit, in the self-check).
        assert!(!holds(&mut c, other));
        // The same return address over a callee in another function (0x2300): not A's call (the answers are
        // remembered per return address and callee frame).
        let mut elsewhere = junction(direct);
        elsewhere.frames[1].address = FrameAddress::ReturnAddress(Avma(0x2380));
        assert!(!c.junction_calls_its_callee(1, 1, copy, &elsewhere, 2, &mut also_function_of));
        assert!(holds(&mut c, direct));
        // What the bytes can't tell (through a register, into a function's middle, unreadable code) is
        // refused until a kept stack of the thread shows that call made there: the same return address at
        // the same CFA over a callee in the same function (at another address in it).
        for ra in [register, middle, 0x9000] {
            assert!(!holds(&mut c, ra));
        }
        let mut seen = junction(register);
        seen.frames[1].address = FrameAddress::ReturnAddress(Avma(0x20c0));
        c.threads.entry(1).or_default().stacks.push(seen);
        assert!(holds(&mut c, register));
        assert!(!holds(&mut c, middle));
        // Seen at another CFA, or over a callee in another function: not that call.
        let mut elsewhere = junction(middle);
        elsewhere.cfas[2] = 0x7280;
        let mut other_callee = junction(middle);
        other_callee.frames[1].address = FrameAddress::ReturnAddress(Avma(0x2380));
        c.threads.entry(1).or_default().stacks = vec![elsewhere, other_callee];
        assert!(!holds(&mut c, middle));
    }

    #[test]
    fn an_anchored_junction_at_another_call_site_of_its_caller_takes_the_call_a_kept_stack_saw() {
        let (memory, [direct, ..]) = calls();
        let mut c = Continuer::new(Box::new(memory));
        let mut function_of = |ra: u64| Some((1, ra.wrapping_sub(1) & !0xff));
        // Function A (0x2000) was sampled under its caller, function 0x2100, whose call of A returns to
        // `direct`; read live, the caller's frame is at the same place under the same outer frames, its
        // return-address slot holding another call site of it (0x21a0).
        let live = |ra: u64| stack(&[(0x7100, 0x2080), (0x7200, ra), (0x7300, 0x3000)]);
        let kept = |ra: u64, outer: u64| stack(&[(0x7100, 0x20c0), (0x7200, ra), (0x7300, outer)]);
        let mut takes = |c: &mut Continuer, stacks: Vec<Walk>| {
            c.threads.entry(1).or_default().stacks = stacks;
            let mut walk = live(0x21a0);
            let taken = c.junction_as_kept(1, 1, &mut walk, 2, &mut function_of);
            (taken, walk.frames[2].address.raw().0)
        };
        assert_eq!(takes(&mut c, vec![]), (false, 0x21a0));
        assert_eq!(takes(&mut c, vec![kept(direct, 0x3000)]), (true, direct));
        // Other outer frames (the caller returned and was called from elsewhere): not the same stack.
        assert_eq!(takes(&mut c, vec![kept(direct, 0x3100)]), (false, 0x21a0));
        // A kept call site of the caller that the bytes don't show calling A.
        assert_eq!(takes(&mut c, vec![kept(0x21c0, 0x3000)]), (false, 0x21a0));
    }

    #[test]
    fn live_memory_is_read_past_the_copy_only_when_the_words_checked_are_unchanged() {
        const SP: u64 = 0x7ff0_0000;
        let live: Vec<u8> = (0..8192u64).flat_map(|w| (w * 3).to_le_bytes()).collect();
        let copy = StackCopy {
            sp: SP,
            bytes: &live[..4096],
        };
        let word =
            |addr: u64| u64::from_le_bytes(live[(addr - SP) as usize..][..8].try_into().unwrap());
        let checks = [(SP + 4000, word(SP + 4000))];
        let (mut windows, mut spare) = (Vec::new(), Vec::new());
        let mut memory = Bytes {
            base: SP,
            bytes: live.clone(),
        };
        let mut v = view(copy, &checks, &mut memory, &mut windows, &mut spare);
        assert!(matches!(v.read(SP + 8), Read::Value(v) if v == 3));
        assert!(matches!(v.read(SP + 6000), Read::Value(x) if x == word(SP + 6000)));
        assert!(matches!(v.read(SP - 8), Read::Invalid));
        // Past what the process maps: the walk ends there.
        assert!(matches!(v.read(SP + 70_000), Read::PastEnd));

        // The thread moved on: a word the walk read near the copy's end changed.
        let mut moved = live.clone();
        moved[4000..4008].copy_from_slice(&1u64.to_le_bytes());
        let mut memory = Bytes {
            base: SP,
            bytes: moved,
        };
        let (mut windows, mut spare) = (Vec::new(), Vec::new());
        let mut v = view(copy, &checks, &mut memory, &mut windows, &mut spare);
        assert!(matches!(v.read(SP + 6000), Read::PastEnd));
        assert_eq!(v.failure, Some(Failure::Overlap));

        // A local that changed elsewhere in the copy's end does not matter.
        let mut local = live.clone();
        local[4088..4096].copy_from_slice(&1u64.to_le_bytes());
        let mut memory = Bytes {
            base: SP,
            bytes: local,
        };
        let (mut windows, mut spare) = (Vec::new(), Vec::new());
        let mut v = view(copy, &checks, &mut memory, &mut windows, &mut spare);
        assert!(matches!(v.read(SP + 6000), Read::Value(_)));

        // Nothing read there by the walk (the copy ends inside a buffer): not continued.
        let mut memory = Bytes {
            base: SP,
            bytes: live.clone(),
        };
        let (mut windows, mut spare) = (Vec::new(), Vec::new());
        let mut v = view(copy, &[], &mut memory, &mut windows, &mut spare);
        assert!(matches!(v.read(SP + 6000), Read::PastEnd));
        assert_eq!(v.failure, Some(Failure::Overlap));
    }

    /// [`Bytes`] that count their reads, on a clock the test sets.
    struct Counted {
        bytes: Bytes,
        reads: Arc<AtomicU64>,
        now: Arc<AtomicU64>,
    }

    impl LiveMemory for Counted {
        fn read(&mut self, pid: u32, address: u64, buf: &mut [u8]) -> Result<usize, LiveError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.bytes.read(pid, address, buf)
        }

        fn now(&self) -> u64 {
            self.now.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn live_windows_serve_walks_of_samples_taken_before_they_were_read() {
        const SP: u64 = 0x7ff0_0000;
        let live: Vec<u8> = (0..16384u64).flat_map(|w| (w * 3).to_le_bytes()).collect();
        let (reads, now) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut c = Continuer::new(Box::new(Counted {
            bytes: Bytes {
                base: SP,
                bytes: live.clone(),
            },
            reads: Arc::clone(&reads),
            now: Arc::clone(&now),
        }));
        let copy = StackCopy {
            sp: SP,
            bytes: &live[..4096],
        };
        // Read past the copy for a sample of process 1 at `time`, `now` being `at`: the reads so far.
        let mut look = |pid: u32, time: u64, at: u64| {
            now.store(at, Ordering::Relaxed);
            c.checks.clear();
            let mut v = c.view(pid, time, copy);
            assert!(matches!(v.read(SP + 0x2008), Read::Value(x) if x == 3 * 0x401));
            // The window starts at the page: the next word is in it too.
            assert!(matches!(v.read(SP + 0x2000), Read::Value(x) if x == 3 * 0x400));
            reads.load(Ordering::Relaxed)
        };
        assert_eq!(look(1, 1_000, 2_000), 1);
        // A sample taken before the window was read, soon after: served from it.
        assert_eq!(look(1, 1_500, 2_100), 1);
        assert_eq!(look(1, 2_000, 2_200), 1);
        // A sample taken after it: read again (the window may hold what the thread did before).
        assert_eq!(look(1, 2_001, 2_300), 2);
        // Another process.
        assert_eq!(look(2, 2_100, 2_400), 3);
        // Windows older than a millisecond are read again.
        assert_eq!(look(2, 2_100, 2_400 + WINDOWS_FOR_NS + 1), 4);
    }

    #[test]
    fn samples_ahead_count_only_after_the_walked_one_and_for_followed_threads() {
        let mut c = Continuer::new(Box::new(Bytes {
            base: 0,
            bytes: Vec::new(),
        }));
        // A thread not followed (none of its walks ran off its copy): nothing kept.
        c.ahead(7, 10, 0x9000);
        assert_eq!(c.highest_ahead(7, 0), None);
        c.thread(1, 7, 5);
        c.ahead(7, 10, 0x8000);
        c.ahead(7, 20, 0x9000);
        c.ahead(7, 30, 0x8800);
        // The walk of the sample at 15 sees the two after it; the one at 10 is forgotten.
        assert_eq!(c.highest_ahead(7, 15), Some(0x9000));
        assert_eq!(c.highest_ahead(7, 25), Some(0x8800));
        assert_eq!(c.highest_ahead(7, 30), None);
        c.forget(1);
        assert!(c.ahead.is_empty());
    }

    #[test]
    fn each_thread_keeps_its_last_few_stacks_and_only_the_churned_one_after_churn() {
        let mut c = Continuer::new(Box::new(Bytes {
            base: 0x7000,
            bytes: Vec::new(),
        }));
        c.thread(1, 7, 0);
        // A loop's frame at 0x7010 calls its handler (the return address 0x4362), then its clock (0x436f),
        // under its caller (0x5010 at 0x7038): two stacks kept.
        let complete =
            |site: u64, leaf: u64| stack(&[(0x7008, leaf), (0x7010, site), (0x7040, 0x5010)]);
        assert!(!c.observe(7, 1, &complete(0x4362, 0x4120), &mut functions));
        assert!(!c.observe(7, 2, &complete(0x436f, 0x4800), &mut functions));
        // The leaf moved, nothing above it: one stack, not two.
        let mut moved = complete(0x436f, 0x4800);
        moved.frames[0].address = FrameAddress::InstructionPointer(Avma(0x1010));
        assert!(!c.observe(7, 3, &moved, &mut functions));
        assert_eq!(c.threads[&7].stacks[0].frames[0], moved.frames[0]);
        assert_eq!(c.threads[&7].stacks.len(), 2);
        // Churn keeps only the stack that showed it.
        for k in 0..KEPT as u64 {
            c.observe(7, 10 + k, &complete(0x4380 + k, 0x4120), &mut functions);
        }
        assert_eq!(c.threads[&7].stacks.len(), KEPT);
        let mut deep = recursion(40, 0xa000);
        let other = recursion(30, 0xb000);
        c.observe(7, 20, &deep, &mut functions);
        assert!(c.observe(7, 21, &other, &mut functions));
        assert_eq!(c.threads[&7].stacks.len(), 1);
        deep.clone_from(&c.threads[&7].stacks[0]);
        assert_eq!(deep.frames, other.frames);
    }

    #[test]
    fn different_paths_are_not_churn() {
        let a = stack(&[(0x7100, 0x10), (0x7200, 0x11), (0x7300, 0x3000)]);
        let b = stack(&[(0x7180, 0x20), (0x7280, 0x21), (0x7300, 0x3000)]);
        assert_eq!(churn_of(&a, &b), None);
    }
}
