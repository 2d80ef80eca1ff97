//! The aggregated profile: the one data model every output reads (report, flamegraph, TUI, pprof).
//!
//! Strings, functions, locations and mappings are interned once. Stacks live in a prefix tree of
//! `(parent, location) -> node`, root (outermost caller) first; a sample group points at its leaf node and
//! carries its labels (pid, tid, comm), sample count and period total. A location is one sampled address
//! with its inline frames (innermost first), as in pprof; queries expand locations into frames.
//!
//! This module does not symbolize, read files or print: it is filled by `cmd/` (from the symbolizer) or by
//! `format/` (from a file), and read by `render/` and `tui/`.

mod delta;
mod locks;
pub mod query;
mod resolve;
mod scale;
mod weigh;

pub use delta::{Delta, OutOfStep, TableMarks, CUMULATIVE_NODES, SMALL_STACKS};
pub use locks::{Lock, LockRow, LockStats, Role};
pub use weigh::{UnknownWeigh, Weigh, Weighed, BLOCKED, RUNNABLE};

use foldhash::HashMap;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
        impl From<u32> for $name {
            fn from(id: u32) -> $name {
                $name(id)
            }
        }
    };
}
id_type!(StrId);
id_type!(MappingId);
id_type!(FunctionId);
id_type!(LocationId);
id_type!(NodeId);
id_type!(LockId);

/// A module (binary, library, kernel) that locations belong to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// Path as recorded, or `[kernel.kallsyms]`, `[vdso]`, `[unknown]`.
    pub path: StrId,
    /// Lower-case hex GNU build-id, when known.
    pub build_id: Option<StrId>,
    pub start: u64,
    pub limit: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub kernel: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Function {
    /// Demangled name users know (the ELF alias), or `[unknown]`-style placeholder built by the symbolizer.
    pub name: StrId,
    /// Source file, when debug info names it.
    pub file: Option<StrId>,
}

/// One frame of a location: a function and the line in it (0 when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Line {
    pub function: FunctionId,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub mapping: Option<MappingId>,
    /// The sampled address in the process (for a caller: its return address - 1, inside the call).
    pub address: u64,
    /// Inline frames, innermost first; the last one is the function that owns the machine code.
    pub lines: Vec<Line>,
}

/// A node of the call tree: a location called from its parent node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    pub parent: Option<NodeId>,
    pub location: LocationId,
}

/// Samples with the same stack and the same labels, summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleGroup {
    /// Innermost location of the stack; `None` for an empty stack.
    pub leaf: Option<NodeId>,
    pub pid: u32,
    pub tid: u32,
    pub comm: StrId,
    /// CPU samples and their period total (nanoseconds for clock events).
    pub count: u64,
    pub period: u64,
    /// Off-CPU: switch-outs counted (context-switch samples) and the time, in nanoseconds, until the thread
    /// ran again, split by why it was off CPU: it gave the CPU up (blocked: a lock, I/O, a sleep) or was
    /// preempted and waited for a CPU (runnable).
    pub switches: u64,
    pub blocked: u64,
    pub runnable: u64,
    /// Lock contention (`--locks`): the lock this group's waits or caused waits are on, `None` for CPU and
    /// off-CPU samples. A group of waiters (Go's block profile) has `contentions` and `delay`; a group of
    /// holders (Go's mutex profile: the stacks that released a lock others waited for) has
    /// `caused_contentions` and `caused_delay`.
    pub lock: Option<LockId>,
    pub contentions: u64,
    pub delay: u64,
    pub caused_contentions: u64,
    pub caused_delay: u64,
}

impl SampleGroup {
    pub fn values(&self) -> Values {
        Values {
            count: self.count,
            period: self.period,
            switches: self.switches,
            blocked: self.blocked,
            runnable: self.runnable,
            contentions: self.contentions,
            delay: self.delay,
            caused_contentions: self.caused_contentions,
            caused_delay: self.caused_delay,
        }
    }

    pub fn add(&mut self, v: Values) {
        let mut sum = self.values();
        sum.add(v);
        self.set_values(sum);
    }

    pub fn set_values(&mut self, v: Values) {
        self.count = v.count;
        self.period = v.period;
        self.switches = v.switches;
        self.blocked = v.blocked;
        self.runnable = v.runnable;
        self.contentions = v.contentions;
        self.delay = v.delay;
        self.caused_contentions = v.caused_contentions;
        self.caused_delay = v.caused_delay;
    }

    /// The labels that tell it from other groups.
    fn key(&self) -> GroupKey {
        (self.leaf, self.pid, self.tid, self.comm, self.lock)
    }

    /// Off-CPU nanoseconds, blocked and runnable.
    pub fn off_cpu(&self) -> u64 {
        self.blocked.saturating_add(self.runnable)
    }
}

/// What one sample or a sum of samples weighs: the values of a [`SampleGroup`], as pprof's sample types
/// (`samples/count`, `cpu/nanoseconds`, `switches/count`, `blocked/nanoseconds`, `runnable/nanoseconds`,
/// and Go's `contentions/count`, `delay/nanoseconds` for waiters and holders).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Values {
    pub count: u64,
    pub period: u64,
    pub switches: u64,
    pub blocked: u64,
    pub runnable: u64,
    /// Contended lock waits and their time, nanoseconds, at the waiter's stack.
    pub contentions: u64,
    pub delay: u64,
    /// The same waits at the stack of the thread that released the lock to them (the holder's).
    pub caused_contentions: u64,
    pub caused_delay: u64,
}

impl Values {
    /// CPU samples: `count` samples of `period` in all.
    pub fn cpu(count: u64, period: u64) -> Values {
        Values {
            count,
            period,
            ..Values::default()
        }
    }

    /// Sums, saturating rather than wrapping (a wrapped total makes every share of it nonsense).
    pub fn add(&mut self, other: Values) {
        self.count = self.count.saturating_add(other.count);
        self.period = self.period.saturating_add(other.period);
        self.switches = self.switches.saturating_add(other.switches);
        self.blocked = self.blocked.saturating_add(other.blocked);
        self.runnable = self.runnable.saturating_add(other.runnable);
        self.contentions = self.contentions.saturating_add(other.contentions);
        self.delay = self.delay.saturating_add(other.delay);
        self.caused_contentions = self
            .caused_contentions
            .saturating_add(other.caused_contentions);
        self.caused_delay = self.caused_delay.saturating_add(other.caused_delay);
    }

    /// A contended wait of `nanos` at the waiter's stack.
    pub fn wait(nanos: u64) -> Values {
        Values {
            contentions: 1,
            delay: nanos,
            ..Values::default()
        }
    }

    /// A contended wait of `nanos` at the stack of the thread that released the lock.
    pub fn caused(nanos: u64) -> Values {
        Values {
            caused_contentions: 1,
            caused_delay: nanos,
            ..Values::default()
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Values::default()
    }
}

/// What a process runs: its main thread's name (`ps`'s COMMAND, where the threads' names may differ: memcached's
/// are `mc-worker`...) and the path of its program, when a mapping of it was seen. Kept by pid as of the last
/// sample (a pid reused within one recording keeps its last process's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: StrId,
    pub path: Option<StrId>,
}

/// What was recorded and how: every human-readable header states these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// e.g. `cpu-clock`, with modifiers as given (`cpu-clock:u`).
    pub event: String,
    /// Unit of `period` (`nanoseconds` for clock events, `events` otherwise).
    pub period_unit: String,
    /// Sampling frequency in Hz (0 when sampling by period).
    pub frequency: u64,
    /// Unwinding mode: `fp`, `hybrid`, `dwarf,8192`.
    pub call_graph: String,
    pub lost: u64,
    pub throttled: u64,
    /// The command line that made the recording.
    pub command_line: String,
    /// Free-form notes (e.g. "cycles unavailable, fell back to cpu-clock"), kept in the file's comments.
    pub notes: Vec<String>,
    /// Recording start and duration, nanoseconds (0 when unknown).
    pub time_nanos: i64,
    pub duration_nanos: i64,
    /// Samples whose stack was cut before its root (they end in a `[truncated]` frame).
    pub truncated: u64,
    /// Samples whose table walk could not be joined to the frame-pointer chain (hybrid mode): only the
    /// table-walked frames were kept.
    pub fell_back: u64,
    /// Samples whose frame-pointer chain went wrong in code without frame pointers (fp mode, and perf.data
    /// files of `perf record -g`): callers skipped or garbage.
    pub frameless: u64,
    /// Modules in which stack walks stopped early (dwarf, hybrid) or frame-pointer chains went wrong (fp),
    /// with what they lack.
    pub unwind_modules: Vec<ModuleUnwind>,
    /// Samples cut because the kernel copied less user stack than asked.
    pub short_copies: ShortCopies,
    /// Walks continued in the live process (CPU samples'), and how.
    pub continuation: ContinuationStats,
    /// How the off-CPU time was recorded and what it could not measure.
    pub off_cpu: OffCpuStats,
    /// How lock contention was recorded (`--locks`) and what it could not measure.
    pub locks: LockStats,
}

/// Off-CPU recording: whether it was on, and the intervals whose ends were not seen as such. Nothing is
/// invented: an interval is charged only from a switch-out to the thread's next switch-in, or to an end said
/// here (the thread's exit, the recording's stop).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffCpuStats {
    /// Switch-outs were recorded (context-switch samples and switch records).
    pub enabled: bool,
    /// Intervals still open when the recording stopped: they end at the stop.
    pub open_at_stop: u64,
    /// Threads that exited while off CPU: their interval ends at the exit.
    pub ended_at_exit: u64,
    /// Switch-outs whose end was not seen (switch records lost): not charged, their length is unknown.
    pub unknown_length: u64,
    /// Threads already off CPU when the recording attached: their first interval starts at the attach.
    pub blocked_at_attach: u64,
}

impl OffCpuStats {
    /// `ENABLED OPEN_AT_STOP ENDED_AT_EXIT UNKNOWN_LENGTH BLOCKED_AT_ATTACH`: the pprof comment form.
    pub fn to_comment(&self) -> String {
        format!(
            "{} {} {} {} {}",
            u8::from(self.enabled),
            self.open_at_stop,
            self.ended_at_exit,
            self.unknown_length,
            self.blocked_at_attach
        )
    }

    pub fn from_comment(s: &str) -> Option<OffCpuStats> {
        let mut n = s.split_whitespace().map(str::parse::<u64>);
        let stats = OffCpuStats {
            enabled: n.next()?.ok()? != 0,
            open_at_stop: n.next()?.ok()?,
            ended_at_exit: n.next()?.ok()?,
            unknown_length: n.next()?.ok()?,
            blocked_at_attach: n.next()?.ok()?,
        };
        n.next().is_none().then_some(stats)
    }
}

/// Stacks cut because the kernel copied less of the user stack than asked: it stops at a page it cannot read
/// in the sampling interrupt (a page never touched, under a large stack buffer), so asking for more changes
/// nothing. The sizes of those copies, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortCopies {
    pub samples: u64,
    pub min_copied: u32,
    pub max_copied: u32,
    pub asked: u32,
}

impl ShortCopies {
    /// Counts one more cut copy of `copied` bytes where `asked` were asked for.
    pub fn add(&mut self, copied: u32, asked: u32) {
        if self.samples == 0 {
            self.min_copied = copied;
        }
        self.samples += 1;
        self.min_copied = self.min_copied.min(copied);
        self.max_copied = self.max_copied.max(copied);
        self.asked = self.asked.max(asked);
    }

    /// `SAMPLES MIN MAX ASKED`: the pprof comment form.
    pub fn to_comment(&self) -> String {
        format!(
            "{} {} {} {}",
            self.samples, self.min_copied, self.max_copied, self.asked
        )
    }

    pub fn from_comment(s: &str) -> Option<ShortCopies> {
        let mut n = s.split_whitespace().map(str::parse);
        let short = ShortCopies {
            samples: n.next()?.ok()?,
            min_copied: u32::try_from(n.next()?.ok()?).ok()?,
            max_copied: u32::try_from(n.next()?.ok()?).ok()?,
            asked: u32::try_from(n.next()?.ok()?).ok()?,
        };
        n.next().is_none().then_some(short)
    }
}

/// Why a walk that ran off its stack copy was not continued in the live process (see `unwind::live`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// The copy's last bytes were no longer in live memory as copied: the thread had moved on.
    Overlap,
    /// The walk went wrong in live memory (garbage, a return address outside code).
    Broke,
    /// Live memory could not be read there.
    Unreadable,
    /// Not allowed to read the process's memory.
    NotPermitted,
    /// The process had exited.
    Exited,
    /// The thread's outer frames were seen changing under unchanged inner frames.
    Churn,
    /// The thread's first continuations are only looked at.
    FirstSamples,
    /// The depth cap, or the most live memory one walk may read.
    DepthCap,
    /// The walk came too long after the last samples seen: the thread may have done anything since.
    Late,
    /// A later sample of the thread (read before this one was walked) had its stack pointer above the
    /// copy's outermost frame: the thread had returned past it, and the frames above may be others now.
    Returned,
    /// The first return address read from live memory follows a call of another function than its callee
    /// frame's (or a call through a pointer, not seen made there on the thread's kept stacks): the thread had
    /// returned past the copy's outermost frames and called elsewhere.
    CallSite,
}

impl Refusal {
    /// New kinds go at the end: a profile's comment counts them in this order.
    pub const ALL: [Refusal; 11] = [
        Refusal::Overlap,
        Refusal::Broke,
        Refusal::Unreadable,
        Refusal::NotPermitted,
        Refusal::Exited,
        Refusal::Churn,
        Refusal::FirstSamples,
        Refusal::DepthCap,
        Refusal::Late,
        Refusal::Returned,
        Refusal::CallSite,
    ];

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }

    /// What the header says of it.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Overlap => "the thread had moved on (its copy's end no longer in live memory)",
            Refusal::Returned => {
                "the thread had returned past the copy's outermost frame (seen in its later samples)"
            }
            Refusal::Broke => "the walk went wrong in live memory",
            Refusal::Unreadable => "live memory unreadable",
            Refusal::NotPermitted => "not permitted to read the process's memory",
            Refusal::Exited => "the process had exited",
            Refusal::Churn => "outer frames seen changing under the same inner frames",
            Refusal::FirstSamples => "a thread's first continuations are only checked",
            Refusal::DepthCap => "depth cap",
            Refusal::Late => "walked too long after the last samples seen (stacktop fell behind)",
            Refusal::CallSite => {
                "the return address past the copy follows a call of another function, or a call through a pointer \
                 not seen made there (the thread had moved on)"
            }
        }
    }
}

/// Walks that ran off their stack copy and how their continuation in the live process went (see
/// `unwind::live`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContinuationStats {
    /// Walks that ran off the end of their copy (the continuation was on).
    pub ran_off: u64,
    /// Completed to the thread's root through live memory.
    pub from_memory: u64,
    /// Completed through the thread's last complete stack: recordings made before the cache was taken out
    /// (see `unwind::live`) count them; none since.
    pub from_cache: u64,
    /// Extended, but stopped before the root.
    pub partial: u64,
    /// Not completed (extended or not), by why.
    pub not_completed: [u64; Refusal::ALL.len()],
    /// Processes whose memory could not be read: pid, why, walks refused.
    pub processes: Vec<(u32, Refusal, u64)>,
}

impl ContinuationStats {
    /// Walks not completed because of `why`.
    pub fn refused(&self, why: Refusal) -> u64 {
        self.not_completed[why.index()]
    }

    /// Counts one continuation of a walk of process `pid`.
    pub fn add(&mut self, outcome: crate::unwind::live::Outcome, pid: u32) {
        use crate::unwind::live::Outcome;
        let why = match outcome {
            Outcome::FromMemory => {
                self.from_memory += 1;
                return;
            }
            Outcome::Partial(why) => {
                self.partial += 1;
                why
            }
            Outcome::Refused(why) => why,
        };
        self.not_completed[why.index()] += 1;
        if matches!(why, Refusal::NotPermitted | Refusal::Exited) {
            match self
                .processes
                .iter_mut()
                .find(|(p, r, _)| *p == pid && *r == why)
            {
                Some((_, _, n)) => *n += 1,
                None => self.processes.push((pid, why, 1)),
            }
        }
    }

    pub fn completed(&self) -> u64 {
        self.from_memory + self.from_cache
    }

    /// Why the walks not completed were not, the commonest first: `N reason, N reason`.
    pub fn reasons(&self) -> String {
        let mut reasons: Vec<(u64, &str)> = Refusal::ALL
            .iter()
            .zip(self.not_completed)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (n, r.describe()))
            .collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.0));
        reasons
            .iter()
            .map(|(n, r)| format!("{n} {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `RAN_OFF FROM_MEMORY FROM_CACHE PARTIAL N*8 [PID:REASON:WALKS...]`: the pprof comment form.
    pub fn to_comment(&self) -> String {
        let mut s = format!(
            "{} {} {} {}",
            self.ran_off, self.from_memory, self.from_cache, self.partial
        );
        for n in self.not_completed {
            s.push_str(&format!(" {n}"));
        }
        for (pid, why, n) in &self.processes {
            s.push_str(&format!(" {pid}:{}:{n}", why.index()));
        }
        s
    }

    pub fn from_comment(s: &str) -> Option<ContinuationStats> {
        let mut words = s.split_whitespace();
        let mut n = || words.next()?.parse::<u64>().ok();
        let mut stats = ContinuationStats {
            ran_off: n()?,
            from_memory: n()?,
            from_cache: n()?,
            partial: n()?,
            ..ContinuationStats::default()
        };
        // Files written before the last kinds were added count fewer: those count 0.
        let mut words = words.peekable();
        for slot in &mut stats.not_completed {
            match words.peek() {
                Some(w) if !w.contains(':') => *slot = words.next()?.parse().ok()?,
                _ => break,
            }
        }
        for word in words {
            let mut parts = word.split(':');
            let pid = parts.next()?.parse().ok()?;
            let why = *Refusal::ALL.get(parts.next()?.parse::<usize>().ok()?)?;
            let walks = parts.next()?.parse().ok()?;
            stats.processes.push((pid, why, walks));
        }
        Some(stats)
    }

    /// Adds another's counts (CPU and off-CPU walks together).
    pub fn merge(&mut self, other: &ContinuationStats) {
        self.ran_off += other.ran_off;
        self.from_memory += other.from_memory;
        self.from_cache += other.from_cache;
        self.partial += other.partial;
        for (a, b) in self.not_completed.iter_mut().zip(other.not_completed) {
            *a += b;
        }
        for &(pid, why, n) in &other.processes {
            match self
                .processes
                .iter_mut()
                .find(|(p, r, _)| *p == pid && *r == why)
            {
                Some((_, _, m)) => *m += n,
                None => self.processes.push((pid, why, n)),
            }
        }
    }
}

/// Unwind quality of one module, for the "can this caller tree be trusted" summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleUnwind {
    pub path: String,
    pub frame_pointers: bool,
    pub tables: bool,
    /// Samples whose walk fell back inside this module.
    pub fell_back: u64,
    /// Samples whose table walk broke down inside this module (no unwind info, garbage).
    pub broken: u64,
    /// Samples whose frame-pointer chain went wrong in this module's code without frame pointers.
    pub frameless: u64,
}

impl ModuleUnwind {
    /// `fp=yes tables=no fell_back=3 broken=0 frameless=7 /path`: the pprof comment form (files written
    /// before `frameless=` have the path right after `broken=`).
    pub fn to_comment(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "fp={} tables={} fell_back={} broken={} frameless={} {}",
            yes(self.frame_pointers),
            yes(self.tables),
            self.fell_back,
            self.broken,
            self.frameless,
            self.path
        )
    }

    pub fn from_comment(s: &str) -> Option<ModuleUnwind> {
        let mut parts = s.splitn(5, ' ');
        let mut field = |key: &str| parts.next()?.strip_prefix(key).map(str::to_owned);
        let frame_pointers = field("fp=")? == "yes";
        let tables = field("tables=")? == "yes";
        let fell_back = field("fell_back=")?.parse().ok()?;
        let broken = field("broken=")?.parse().ok()?;
        let rest = parts.next()?;
        let (frameless, path) = rest
            .strip_prefix("frameless=")
            .and_then(|r| r.split_once(' '))
            .and_then(|(n, path)| Some((n.parse().ok()?, path)))
            .unwrap_or((0, rest));
        Some(ModuleUnwind {
            path: path.to_owned(),
            frame_pointers,
            tables,
            fell_back,
            broken,
            frameless,
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub meta: Meta,
    strings: Vec<String>,
    string_ids: HashMap<String, StrId>,
    pub mappings: Vec<Mapping>,
    mapping_ids: HashMap<Mapping, MappingId>,
    pub functions: Vec<Function>,
    function_ids: HashMap<Function, FunctionId>,
    pub locations: Vec<Location>,
    location_ids: HashMap<Location, LocationId>,
    pub nodes: Vec<Node>,
    node_ids: HashMap<Node, NodeId>,
    pub samples: Vec<SampleGroup>,
    sample_ids: HashMap<GroupKey, usize>,
    /// What each sampled process runs, by pid (filters by process name read it).
    pub programs: std::collections::BTreeMap<u32, Program>,
    /// Pids whose program changed since the last delta was cut.
    programs_changed: Vec<u32>,
    /// A copy fed by deltas: its ids for the sender's (see [`Delta`]).
    sender: delta::SenderIds,
    /// Set by [`Profile::weigh`]: the view the sample groups were projected onto, and what they held before.
    pub weighed: Option<Weighed>,
    /// Locks threads waited for (`--locks`), interned by (pid, address).
    pub locks: Vec<Lock>,
    lock_ids: HashMap<(u32, u64), LockId>,
    /// Locks added or changed since the last delta was cut.
    locks_changed: Vec<LockId>,
}

/// Each thread's last stack (locations, root first) and its nodes, for [`Profile::add_sample_cached`].
#[derive(Clone, Debug, Default)]
pub struct PathCache {
    last: HashMap<u32, (Vec<LocationId>, Vec<NodeId>)>,
}

impl PathCache {
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

/// The labels that tell sample groups apart: leaf node, pid, tid, comm, lock.
type GroupKey = (Option<NodeId>, u32, u32, StrId, Option<LockId>);

/// A second set of sample groups over a profile's interned stacks, swapped in and out of it
/// ([`Profile::swap_samples`]): the TUI keeps its decaying sums and its cumulative ones over one set of
/// interned stacks, and adds each refresh to both ([`Profile::apply_delta`]).
#[derive(Clone, Debug)]
pub struct SampleSet {
    samples: Vec<SampleGroup>,
    ids: HashMap<GroupKey, usize>,
    /// How many stack nodes this set's stacks keep when the profile is compacted (see
    /// [`Profile::compact`]).
    pub node_limit: usize,
}

impl SampleSet {
    /// The set's sample groups.
    pub fn groups(&self) -> &[SampleGroup] {
        &self.samples
    }

    /// An empty set whose stacks keep at most `node_limit` nodes at a compaction.
    pub fn with_node_limit(node_limit: usize) -> SampleSet {
        SampleSet {
            node_limit,
            ..SampleSet::default()
        }
    }
}

impl Default for SampleSet {
    fn default() -> SampleSet {
        SampleSet {
            samples: Vec::new(),
            ids: HashMap::default(),
            node_limit: CUMULATIVE_NODES,
        }
    }
}

impl Profile {
    pub fn new(meta: Meta) -> Profile {
        Profile {
            meta,
            ..Profile::default()
        }
    }

    pub fn intern(&mut self, s: &str) -> StrId {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = StrId(self.strings.len() as u32);
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    pub fn str(&self, id: StrId) -> &str {
        self.strings.get(id.index()).map_or("", String::as_str)
    }

    /// Records what process `pid` runs (its main thread's name, its program's path).
    pub fn set_program(&mut self, pid: u32, name: &str, path: Option<&str>) {
        let program = Program {
            name: self.intern(name),
            path: path.map(|p| self.intern(p)),
        };
        if self.programs.insert(pid, program) != Some(program) {
            self.programs_changed.push(pid);
        }
    }

    /// Whether process `pid` is `name`: its main thread's name, its program's path or the path's file name.
    pub fn process_is(&self, pid: u32, name: &str) -> bool {
        self.programs.get(&pid).is_some_and(|p| {
            self.str(p.name) == name
                || p.path.is_some_and(|path| {
                    let path = self.str(path);
                    path == name || path.rsplit('/').next() == Some(name)
                })
        })
    }

    pub fn add_mapping(&mut self, mapping: Mapping) -> MappingId {
        intern_in(
            &mut self.mappings,
            &mut self.mapping_ids,
            mapping,
            MappingId,
        )
    }

    pub fn add_function(&mut self, function: Function) -> FunctionId {
        intern_in(
            &mut self.functions,
            &mut self.function_ids,
            function,
            FunctionId,
        )
    }

    pub fn add_location(&mut self, location: Location) -> LocationId {
        intern_in(
            &mut self.locations,
            &mut self.location_ids,
            location,
            LocationId,
        )
    }

    /// Adds samples whose stack is `stack`, innermost location first (the order unwinders produce).
    pub fn add_sample(
        &mut self,
        stack: &[LocationId],
        pid: u32,
        tid: u32,
        comm: StrId,
        count: u64,
        period: u64,
    ) {
        self.add_sample_values(stack, pid, tid, comm, Values::cpu(count, period));
    }

    /// `add_sample` with every kind of value (off-CPU time as well as CPU samples).
    pub fn add_sample_values(
        &mut self,
        stack: &[LocationId],
        pid: u32,
        tid: u32,
        comm: StrId,
        values: Values,
    ) {
        let leaf = self.intern_stack(stack);
        self.add_group((leaf, pid, tid, comm, None), values);
    }

    /// The leaf node of `stack` (innermost location first), its nodes interned.
    fn intern_stack(&mut self, stack: &[LocationId]) -> Option<NodeId> {
        let mut parent = None;
        for &location in stack.iter().rev() {
            parent = Some(self.add_node(Node { parent, location }));
        }
        parent
    }

    /// `add_sample`, remembering each thread's last stack in `cache`: a thread sampled in the same loop again
    /// and again has the same stack, or one that differs only near the leaf, whose shared outer nodes are not
    /// looked up again. The cache belongs to this profile (its node ids); clear it when the profile is replaced.
    pub fn add_sample_cached(
        &mut self,
        cache: &mut PathCache,
        stack: &[LocationId],
        pid: u32,
        tid: u32,
        comm: StrId,
        values: Values,
    ) {
        self.add_sample_cached_for(cache, tid, stack, (pid, tid, comm), values);
    }

    /// `add_sample_cached` of thread `thread`'s sample, under the labels `(pid, tid, comm)` (which may be
    /// another thread's, or none: see `import::Detail::Stacks`).
    pub fn add_sample_cached_for(
        &mut self,
        cache: &mut PathCache,
        thread: u32,
        stack: &[LocationId],
        (pid, tid, comm): (u32, u32, StrId),
        values: Values,
    ) {
        let (locations, path) = cache.last.entry(thread).or_default();
        // Root first, as the nodes are built.
        let same = locations
            .iter()
            .zip(stack.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        locations.truncate(same);
        path.truncate(same);
        let mut parent = path.last().copied();
        for &location in stack.iter().rev().skip(same) {
            let node = self.add_node(Node { parent, location });
            locations.push(location);
            path.push(node);
            parent = Some(node);
        }
        self.add_group((parent, pid, tid, comm, None), values);
    }

    fn add_node(&mut self, node: Node) -> NodeId {
        intern_in(&mut self.nodes, &mut self.node_ids, node, NodeId)
    }

    /// Adds samples whose stack ends at `leaf` (already interned).
    fn add_group(&mut self, key: GroupKey, values: Values) {
        add_group_in(&mut self.samples, &mut self.sample_ids, key, values);
    }

    /// Exchanges this profile's sample groups with `set`'s; the interned stacks stay. The groups of `set`
    /// must have been built over this profile's ids (by [`Profile::apply_delta`]).
    pub fn swap_samples(&mut self, set: &mut SampleSet) {
        std::mem::swap(&mut self.samples, &mut set.samples);
        std::mem::swap(&mut self.sample_ids, &mut set.ids);
    }

    pub fn mapping(&self, id: MappingId) -> &Mapping {
        &self.mappings[id.index()]
    }

    pub fn function(&self, id: FunctionId) -> &Function {
        &self.functions[id.index()]
    }

    pub fn location(&self, id: LocationId) -> &Location {
        &self.locations[id.index()]
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The locations of a stack, innermost first.
    pub fn stack(&self, leaf: Option<NodeId>) -> impl Iterator<Item = LocationId> + '_ {
        std::iter::successors(leaf, |&n| self.node(n).parent).map(|n| self.node(n).location)
    }

    // Sums saturate rather than wrap: a wrapped total makes every share of it nonsense (a file read by
    // `format::pprof` cannot get there, its totals are checked; other sources are not).
    pub fn total_count(&self) -> u64 {
        self.samples
            .iter()
            .fold(0, |sum: u64, s| sum.saturating_add(s.count))
    }

    pub fn total_period(&self) -> u64 {
        self.samples
            .iter()
            .fold(0, |sum: u64, s| sum.saturating_add(s.period))
    }
}

fn add_group_in(
    samples: &mut Vec<SampleGroup>,
    ids: &mut HashMap<GroupKey, usize>,
    key: GroupKey,
    values: Values,
) {
    if let Some(group) = ids.get(&key).and_then(|&i| samples.get_mut(i)) {
        group.add(values);
        return;
    }
    let (leaf, pid, tid, comm, lock) = key;
    ids.insert(key, samples.len());
    let mut group = SampleGroup {
        leaf,
        pid,
        tid,
        comm,
        lock,
        count: 0,
        period: 0,
        switches: 0,
        blocked: 0,
        runnable: 0,
        contentions: 0,
        delay: 0,
        caused_contentions: 0,
        caused_delay: 0,
    };
    group.set_values(values);
    samples.push(group);
}

fn intern_in<T: Clone + Eq + std::hash::Hash, I: Copy>(
    items: &mut Vec<T>,
    ids: &mut HashMap<T, I>,
    item: T,
    make: fn(u32) -> I,
) -> I {
    if let Some(&id) = ids.get(&item) {
        return id;
    }
    let id = make(items.len() as u32);
    items.push(item.clone());
    ids.insert(item, id);
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn continuation_comments_read_back_and_older_ones_count_the_new_kinds_zero() {
        let mut stats = ContinuationStats {
            ran_off: 20,
            from_memory: 5,
            from_cache: 9,
            partial: 1,
            ..ContinuationStats::default()
        };
        stats.not_completed[Refusal::Returned.index()] = 6;
        stats.processes.push((42, Refusal::Exited, 2));
        let comment = stats.to_comment();
        assert_eq!(ContinuationStats::from_comment(&comment), Some(stats));
        // Written before `Returned` (nine kinds).
        let old = ContinuationStats::from_comment("20 5 9 1 1 2 0 3 0 0 0 0 4 42:4:2").unwrap();
        assert_eq!(old.not_completed, [1, 2, 0, 3, 0, 0, 0, 0, 4, 0, 0]);
        assert_eq!(old.processes, vec![(42, Refusal::Exited, 2)]);
        assert_eq!(ContinuationStats::from_comment("20 5 9 x"), None);
    }

    #[test]
    fn cached_paths_build_the_same_profile() {
        let mut plain = Profile::default();
        let mut cached = Profile::default();
        let mut cache = PathCache::default();
        let locations: Vec<LocationId> = (0..6)
            .map(|i| {
                let loc = Location {
                    mapping: None,
                    address: i,
                    lines: Vec::new(),
                };
                plain.add_location(loc.clone());
                cached.add_location(loc)
            })
            .collect();
        let l = |ids: &[usize]| -> Vec<LocationId> { ids.iter().map(|&i| locations[i]).collect() };
        // Innermost first: repeats, a new leaf, a shorter stack, a deeper one, another thread, an empty one.
        let stacks = [
            (1, l(&[0, 1, 2])),
            (1, l(&[0, 1, 2])),
            (1, l(&[3, 1, 2])),
            (2, l(&[0, 1, 2])),
            (1, l(&[1, 2])),
            (1, l(&[4, 5, 1, 2])),
            (2, l(&[5])),
            (1, l(&[])),
            (1, l(&[0, 1, 2])),
        ];
        for (tid, stack) in &stacks {
            let comm = plain.intern("w");
            plain.add_sample(stack, 1, *tid, comm, 1, 10);
            let comm = cached.intern("w");
            cached.add_sample_cached(&mut cache, stack, 1, *tid, comm, Values::cpu(1, 10));
        }
        assert_eq!(cached.nodes, plain.nodes);
        assert_eq!(cached.samples, plain.samples);
    }
}
