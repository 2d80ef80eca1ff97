//! `PERF_RECORD_SAMPLE` straight from the ring's bytes into a reused [`SampleRecord`].
//!
//! The crate's parser allocates a fresh vector per call chain context, per register set and per stack copy
//! (up to 16 KiB a sample in hybrid mode), and the sampler thread frees them again: at 2,000 samples a
//! second those allocations were a third of `stacktop top`'s own CPU. Samples are the only hot record, so
//! they are read here, into buffers the consumer hands back through a [`Recycler`]; every other record (and
//! a sample whose layout this reader does not cover) still goes through the crate.
//!
//! The layout (`perf_event_open(2)`, `PERF_RECORD_SAMPLE`), as far as it is read: fields after the user
//! stack are not needed and are skipped.
//! ```text
//! header (8) | id? | ip? | pid,tid? | time? | addr? | id? | stream_id? | cpu,res? | period? | read?
//!            | callchain: nr, ips[nr]? | raw? | branch_stack? | regs_user: abi, regs[..]?
//!            | stack_user: size, data[size], dyn_size? | ...
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, TryLockError};

use foldhash::HashMap;

use super::record::{Record, SampleKind, SampleRecord};

const PERF_RECORD_SAMPLE: u32 = 9;
const PERF_RECORD_SWITCH: u32 = 14;
const PERF_RECORD_SWITCH_CPU_WIDE: u32 = 15;
const PERF_RECORD_MISC_CPUMODE_MASK: u16 = 7;
const PERF_RECORD_MISC_USER: u16 = 2;
const PERF_RECORD_MISC_SWITCH_OUT: u16 = 1 << 13;
const PERF_RECORD_MISC_SWITCH_OUT_PREEMPT: u16 = 1 << 14;

const IP: u64 = 1 << 0;
const TID: u64 = 1 << 1;
const TIME: u64 = 1 << 2;
const ADDR: u64 = 1 << 3;
const READ: u64 = 1 << 4;
const CALLCHAIN: u64 = 1 << 5;
const ID: u64 = 1 << 6;
const CPU: u64 = 1 << 7;
const PERIOD: u64 = 1 << 8;
const STREAM_ID: u64 = 1 << 9;
const RAW: u64 = 1 << 10;
const BRANCH_STACK: u64 = 1 << 11;
const REGS_USER: u64 = 1 << 12;
const STACK_USER: u64 = 1 << 13;
const IDENTIFIER: u64 = 1 << 16;

/// Fields before the user stack whose layout this reader does not parse; a sample type with any of them is
/// left to the crate.
const UNSUPPORTED: u64 = READ | RAW | BRANCH_STACK;

/// Whether `parse` can read samples of this `sample_type`.
pub(crate) fn supported(sample_type: u64) -> bool {
    sample_type & UNSUPPORTED == 0
}

/// Whether the record in `bytes` (header included) is a sample.
pub(crate) fn is_sample(bytes: &[u8]) -> bool {
    record_type(bytes) == Some(PERF_RECORD_SAMPLE)
}

fn record_type(bytes: &[u8]) -> Option<u32> {
    bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// Whether the record in `bytes` (header included) is a context switch record.
pub(crate) fn is_switch(bytes: &[u8]) -> bool {
    matches!(
        record_type(bytes),
        Some(PERF_RECORD_SWITCH | PERF_RECORD_SWITCH_CPU_WIDE)
    )
}

/// Reads a `PERF_RECORD_SWITCH` or `PERF_RECORD_SWITCH_CPU_WIDE` record (header included), whose thread and
/// time are in its `sample_id` trailer (`sample_id_all`, laid out by `sample_type`). They come by the hundred
/// thousand a second from a switch-heavy target: read here without the crate's allocation per record. `None`
/// when the record is cut short, not a switch, or its trailer lacks the thread or the time.
///
/// ```text
/// header (8) | next_prev_pid, next_prev_tid (CPU_WIDE only) | pid,tid? | time? | id? | stream_id? | cpu,res? | identifier?
/// ```
pub(crate) fn parse_switch(bytes: &[u8], sample_type: u64) -> Option<Record> {
    let kind = record_type(bytes)?;
    if !matches!(kind, PERF_RECORD_SWITCH | PERF_RECORD_SWITCH_CPU_WIDE)
        || sample_type & (TID | TIME) != TID | TIME
    {
        return None;
    }
    let misc = u16::from_ne_bytes(bytes.get(4..6)?.try_into().ok()?);
    let mut c = Cursor {
        bytes: bytes.get(8..)?,
    };
    if kind == PERF_RECORD_SWITCH_CPU_WIDE {
        c.u64()?;
    }
    let (pid, tid) = c.u32_pair()?;
    let time = c.u64()?;
    let out = misc & PERF_RECORD_MISC_SWITCH_OUT != 0;
    Some(Record::Switch {
        pid,
        tid,
        time,
        out,
        preempt: out && misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT != 0,
    })
}

/// A cursor over a record's bytes that fails instead of reading past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.bytes.split_first_chunk::<8>()?;
        self.bytes = rest;
        Some(u64::from_ne_bytes(*head))
    }

    fn u32_pair(&mut self) -> Option<(u32, u32)> {
        let v = self.u64()?.to_ne_bytes();
        let (a, b) = v.split_at(4);
        Some((
            u32::from_ne_bytes(a.try_into().ok()?),
            u32::from_ne_bytes(b.try_into().ok()?),
        ))
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(head)
    }

    fn u64s(&mut self, n: u64, out: &mut Vec<u64>) -> Option<()> {
        let len = usize::try_from(n).ok()?.checked_mul(8)?;
        let bytes = self.take(len)?;
        out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default())),
        );
        Some(())
    }
}

/// Reads the sample in `bytes` (header included) into `out`, reusing its buffers. `regs` is the number of
/// registers in the requested user register mask; `stack_limit` gives, per pid, how much of the stack copy
/// to keep (see [`StackBudget`]). Returns the id of the counter that took it (`PERF_SAMPLE_IDENTIFIER` or
/// `PERF_SAMPLE_ID`; 0 without either), which tells lock probes apart. `None` when the record is cut short or
/// not a sample; `out` is then in an unspecified (but valid) state. Public for the fuzz targets only.
#[doc(hidden)]
pub fn parse(
    bytes: &[u8],
    sample_type: u64,
    regs: usize,
    stack_limit: &dyn Fn(u32) -> Option<usize>,
    out: &mut SampleRecord,
) -> Option<u64> {
    if !is_sample(bytes) || !supported(sample_type) {
        return None;
    }
    let misc = u16::from_ne_bytes(bytes.get(4..6)?.try_into().ok()?);
    let mut c = Cursor {
        bytes: bytes.get(8..)?,
    };
    let has = |flag: u64| sample_type & flag != 0;
    let mut id = 0;
    if has(IDENTIFIER) {
        id = c.u64()?;
    }
    if has(IP) {
        c.u64()?;
    }
    (out.pid, out.tid) = if has(TID) { c.u32_pair()? } else { (0, 0) };
    out.time = if has(TIME) { c.u64()? } else { 0 };
    if has(ADDR) {
        c.u64()?;
    }
    if has(ID) {
        id = c.u64()?;
    }
    if has(STREAM_ID) {
        c.u64()?;
    }
    out.cpu = if has(CPU) { c.u32_pair()?.0 } else { 0 };
    out.period = if has(PERIOD) { c.u64()? } else { 1 };
    out.user_mode = misc & PERF_RECORD_MISC_CPUMODE_MASK == PERF_RECORD_MISC_USER;
    out.callchain.clear();
    if has(CALLCHAIN) {
        let nr = c.u64()?;
        c.u64s(nr, &mut out.callchain)?;
    }
    if has(REGS_USER) {
        let abi = c.u64()?;
        if abi == 0 {
            out.user_regs = None;
        } else {
            let r = out.user_regs.get_or_insert_with(Vec::new);
            r.clear();
            c.u64s(regs as u64, r)?;
        }
    } else {
        out.user_regs = None;
    }
    if has(STACK_USER) {
        let size = usize::try_from(c.u64()?).ok()?;
        let data = c.take(size)?;
        let dyn_size = if size > 0 {
            usize::try_from(c.u64()?).ok()?.min(size)
        } else {
            0
        };
        out.stack_asked = u32::try_from(size).unwrap_or(u32::MAX);
        out.stack_copied = u32::try_from(dyn_size).unwrap_or(u32::MAX);
        let keep = stack_limit(out.pid).map_or(dyn_size, |limit| limit.min(dyn_size));
        let stack = out.user_stack.get_or_insert_with(Vec::new);
        stack.clear();
        stack.extend_from_slice(&data[..keep]);
    } else {
        out.user_stack = None;
        out.stack_asked = 0;
        out.stack_copied = 0;
    }
    Some(id)
}

/// How much of each process's user stack copy the consumer reads, shared by the consumer (which learns it
/// from its stack walks) and the reader (which copies only that much out of the ring).
///
/// The kernel copies up to the requested size (16 KiB in hybrid mode) from the sampled stack pointer
/// upwards, but a walk of a frame-pointer program joins the kernel's chain within a few hundred bytes: on
/// the benchmark load the walks read 350 bytes of 7.7 KiB copied on average, and copying the rest out of
/// the ring was most of the reader's time. A process without a limit gets the whole copy.
#[derive(Clone, Debug, Default)]
pub struct StackBudget {
    limits: Arc<RwLock<HashMap<u32, u32>>>,
}

impl StackBudget {
    /// Keep at most `bytes` of `pid`'s stack copies from now on; `None`: all of it.
    pub fn set(&self, pid: u32, bytes: Option<u32>) {
        let mut limits = self.limits.write().unwrap_or_else(|e| e.into_inner());
        match bytes {
            Some(b) => limits.insert(pid, b),
            None => limits.remove(&pid),
        };
    }

    /// The limit of `pid`, if any.
    #[cfg(test)]
    pub fn get(&self, pid: u32) -> Option<u32> {
        let limits = self.limits.read().unwrap_or_else(|e| e.into_inner());
        limits.get(&pid).copied()
    }

    /// Runs `f` with a lookup of the current limits, taking the lock once. Never waits: while the consumer
    /// holds or waits for the write lock, `f` sees no limits (whole copies). A reader that waited here
    /// would wait for the consumer thread to be scheduled, and on a busy machine the rings overflow
    /// meanwhile.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&dyn Fn(u32) -> Option<usize>) -> R) -> R {
        match self.limits.try_read() {
            Ok(limits) => f(&|pid: u32| limits.get(&pid).map(|&b| b as usize)),
            Err(TryLockError::Poisoned(e)) => {
                let limits = e.into_inner();
                f(&|pid: u32| limits.get(&pid).map(|&b| b as usize))
            }
            Err(TryLockError::WouldBlock) => f(&|_| None),
        }
    }
}

/// Most samples kept for reuse; the rest are freed (each may hold a stack copy of up to 64 KiB)...
const MAX_SPARE: usize = 16384;
/// ... and the most memory they may hold: 1024 whole 16 KiB copies, or thousands of the small switch-out
/// samples that a switch-heavy target sends by the hundred thousand a second (with fewer kept, most of them
/// were allocated by the reader and freed by the consumer, a tenth of the two threads' time).
const MAX_SPARE_BYTES: usize = 16 << 20;

/// The most memory that samples read from the rings and not yet handed back may hold (see [`Recycler`]).
/// When processing falls behind sampling (a burst of samples, a large library's symbols loading), the
/// backlog waits here instead of in the kernel's rings, which are small; past this, samples are dropped and
/// counted as lost, as the kernel does when a ring is full. 64 MiB hold about 4,000 whole 16 KiB copies, and
/// far more of the few hundred bytes that a frame-pointer program's budget keeps (see [`StackBudget`]).
pub const MAX_BACKLOG_BYTES: usize = 64 << 20;

/// How full the backlog of samples read and not yet processed may be (a share of its bound) before hybrid
/// CPU samples are walked by frame pointers alone (`Pipeline::keep_up`), and before the reader keeps no stack
/// copy for them, since they will be walked so (`Session::drain`). A table walk costs tens of microseconds
/// (more when it continues in live memory); at thousands of samples a second on each CPU of a busy machine the
/// sampling thread falls behind, and once the backlog is full the reader drops samples. A sample walked by
/// frame pointers keeps its weight, its leaf and most callers (a frameless leaf hides its caller), where a
/// dropped one keeps nothing. A pause (a large library's unwind tables read on the spot) fills the backlog a
/// little and drains: only an overload that lasts sheds.
pub const SHED_ABOVE: f64 = 0.5;

/// Samples dropped by [`Recycler::admit`], by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) cpu: u64,
    pub(crate) switches: u64,
    /// Lock probes' samples.
    pub(crate) locks: u64,
}

/// Processed samples handed back by the consumer, so the reader refills their buffers instead of
/// allocating new ones. Cheap to clone; both ends share one pool.
///
/// It also bounds the backlog between the two threads: once a consumer took a recycler
/// ([`crate::acquire::Session::recycler`]), the reader counts the bytes of every record it hands out and
/// the consumer gives them back through [`Recycler::give_back`]; samples that would take the backlog past
/// its limit are dropped and counted as lost. Other records (mappings, names, forks and exits) are always
/// kept: the samples after them need them.
#[derive(Clone, Debug)]
pub struct Recycler {
    spare: Arc<Mutex<Spare>>,
    /// Bytes handed out and not given back.
    backlog: Arc<AtomicUsize>,
    limit: Arc<AtomicUsize>,
}

impl Default for Recycler {
    fn default() -> Recycler {
        Recycler {
            spare: Arc::default(),
            backlog: Arc::default(),
            limit: Arc::new(AtomicUsize::new(usize::MAX)),
        }
    }
}

/// Samples kept for reuse, and the memory they hold (their [`footprint`]s).
#[derive(Debug, Default)]
struct Spare {
    samples: Vec<SampleRecord>,
    bytes: usize,
}

/// The memory a record holds, as counted in the backlog.
fn footprint(record: &Record) -> usize {
    std::mem::size_of::<Record>()
        + match record {
            Record::Sample(s) => {
                s.callchain.capacity() * 8
                    + s.user_regs.as_ref().map_or(0, |r| r.capacity() * 8)
                    + s.user_stack.as_ref().map_or(0, Vec::capacity)
            }
            Record::Mmap(m) => m.path.capacity(),
            Record::Comm { name, .. } => name.capacity(),
            _ => 0,
        }
}

impl Recycler {
    /// Keeps the samples of `records` for reuse (others are dropped) and takes them off the backlog.
    pub fn give_back(&self, records: impl IntoIterator<Item = Record>) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = 0;
        for record in records {
            let size = footprint(&record);
            bytes += size;
            if let Record::Sample(s) = record {
                if spare.samples.len() < MAX_SPARE && spare.bytes + size <= MAX_SPARE_BYTES {
                    spare.samples.push(s);
                    spare.bytes += size;
                }
            }
        }
        drop(spare);
        // Saturating: records handed out before the bound was set were never counted.
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    /// How full the backlog is: the bytes handed out and not given back, as a share of its bound (0 while
    /// unbounded).
    pub fn backlog_share(&self) -> f64 {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == usize::MAX || limit == 0 {
            return 0.0;
        }
        self.backlog.load(Ordering::Relaxed) as f64 / limit as f64
    }

    /// Bounds the backlog to `bytes` from now on.
    pub(crate) fn bound(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// The reader, before handing out `records[from..]`: adds them to the backlog, except samples that would
    /// take it past its limit, which are removed (their buffers kept for reuse in `spare`). Returns how many
    /// samples of each kind were dropped.
    pub(crate) fn admit(
        &self,
        records: &mut Vec<Record>,
        from: usize,
        spare: &mut Vec<SampleRecord>,
    ) -> Dropped {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut total = self.backlog.load(Ordering::Relaxed);
        let start = total;
        let mut dropped = Dropped::default();
        let mut kept = from;
        for i in from..records.len() {
            let size = footprint(&records[i]);
            let is_sample = matches!(records[i], Record::Sample(_));
            if is_sample && total.saturating_add(size) > limit {
                let placeholder = Record::Lost {
                    time: 0,
                    count: 0,
                    off_cpu: false,
                };
                if let Record::Sample(s) = std::mem::replace(&mut records[i], placeholder) {
                    match s.kind {
                        SampleKind::Cpu => dropped.cpu += 1,
                        SampleKind::SwitchOut => dropped.switches += 1,
                        _ => dropped.locks += 1,
                    }
                    if spare.len() < MAX_SPARE {
                        spare.push(s);
                    }
                }
                continue;
            }
            total = total.saturating_add(size);
            records.swap(kept, i);
            kept += 1;
        }
        records.truncate(kept);
        self.backlog.fetch_add(total - start, Ordering::Relaxed);
        dropped
    }

    /// Bytes the backlog can still take before its limit.
    pub(crate) fn room(&self) -> usize {
        self.limit
            .load(Ordering::Relaxed)
            .saturating_sub(self.backlog.load(Ordering::Relaxed))
    }

    /// Bytes handed out and not given back yet.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Moves the kept samples into `into` (the reader's local stock), taking the lock once.
    /// Never waits for the consumer (see `StackBudget::with`): when it holds the pool, nothing is moved and
    /// the reader allocates.
    pub(crate) fn refill(&self, into: &mut Vec<SampleRecord>) {
        let mut spare = match self.spare.try_lock() {
            Ok(spare) => spare,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        into.append(&mut spare.samples);
        spare.bytes = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(misc: u16, words: &[u64], tail: &[u8]) -> Vec<u8> {
        let size = 8 + words.len() * 8 + tail.len();
        let mut b = Vec::new();
        b.extend_from_slice(&PERF_RECORD_SAMPLE.to_ne_bytes());
        b.extend_from_slice(&misc.to_ne_bytes());
        b.extend_from_slice(&(size as u16).to_ne_bytes());
        for w in words {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(tail);
        b
    }

    fn pair(a: u32, b: u32) -> u64 {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&a.to_ne_bytes());
        bytes[4..].copy_from_slice(&b.to_ne_bytes());
        u64::from_ne_bytes(bytes)
    }

    const TYPE: u64 = TID | TIME | CPU | PERIOD | CALLCHAIN | REGS_USER | STACK_USER;

    fn none(_: u32) -> Option<usize> {
        None
    }
    const NONE: fn(u32) -> Option<usize> = none;

    fn full() -> Vec<u8> {
        let marker = -512i64 as u64;
        let mut stack = Vec::new();
        stack.extend_from_slice(&16u64.to_ne_bytes());
        stack.extend_from_slice(&[7u8; 16]);
        stack.extend_from_slice(&5u64.to_ne_bytes());
        record(
            PERF_RECORD_MISC_USER,
            &[
                pair(10, 11),
                1234,
                pair(1, 0),
                999,
                3,
                marker,
                0x401000,
                0x402000,
                1,
                0xa,
                0xb,
            ],
            &stack,
        )
    }

    #[test]
    fn reads_every_field_and_only_the_dynamic_part_of_the_stack() {
        let mut out = SampleRecord::default();
        parse(&full(), TYPE, 2, &NONE, &mut out).unwrap();
        assert_eq!(
            (out.pid, out.tid, out.time, out.cpu, out.period),
            (10, 11, 1234, 1, 999)
        );
        assert!(out.user_mode);
        assert_eq!(out.callchain, vec![-512i64 as u64, 0x401000, 0x402000]);
        assert_eq!(out.user_regs, Some(vec![0xa, 0xb]));
        assert_eq!(out.user_stack, Some(vec![7u8; 5]));
        assert_eq!((out.stack_asked, out.stack_copied), (16, 5));
    }

    #[test]
    fn returns_the_counter_id_that_tells_lock_probes_apart() {
        let mut out = SampleRecord::default();
        assert_eq!(parse(&full(), TYPE, 2, &NONE, &mut out), Some(0));
        // PERF_SAMPLE_ID comes after the time: tid, time, id, cpu, period, then an empty chain and no regs.
        let with_id = record(
            PERF_RECORD_MISC_USER,
            &[pair(10, 11), 1234, 77, pair(1, 0), 1, 0, 0, 0],
            &[],
        );
        assert_eq!(parse(&with_id, TYPE | ID, 2, &NONE, &mut out), Some(77));
        assert_eq!((out.pid, out.tid, out.time, out.cpu), (10, 11, 1234, 1));
    }

    #[test]
    fn reuses_buffers_and_clears_what_a_new_sample_lacks() {
        let mut out = SampleRecord::default();
        parse(&full(), TYPE, 2, &NONE, &mut out).unwrap();
        let before = out.user_stack.as_ref().unwrap().as_ptr();
        parse(&full(), TYPE, 2, &NONE, &mut out).unwrap();
        assert_eq!(out.user_stack.as_ref().unwrap().as_ptr(), before);
        // No register set (abi 0) and an empty stack copy.
        let bytes = record(1, &[pair(3, 4), 5, pair(0, 0), 1, 0, 0, 0], &[]);
        parse(&bytes, TYPE, 2, &NONE, &mut out).unwrap();
        assert!(!out.user_mode);
        assert!(out.callchain.is_empty());
        assert_eq!(out.user_regs, None);
        assert_eq!(out.user_stack, Some(Vec::new()));
    }

    #[test]
    fn cut_or_lying_records_are_refused_without_panicking() {
        let bytes = full();
        let mut out = SampleRecord::default();
        for len in 0..bytes.len() {
            assert!(
                parse(&bytes[..len], TYPE, 2, &NONE, &mut out).is_none(),
                "len {len}"
            );
        }
        // A call chain that claims more entries than the record holds.
        let lying = record(2, &[pair(1, 1), 1, pair(0, 0), 1, u64::MAX], &[]);
        assert!(parse(&lying, TYPE, 2, &NONE, &mut out).is_none());
        // Not a sample, or a layout this reader leaves to the crate.
        let mut mmap = full();
        mmap[0] = 1;
        assert!(parse(&mmap, TYPE, 2, &NONE, &mut out).is_none());
        assert!(parse(&full(), TYPE | READ, 2, &NONE, &mut out).is_none());
    }

    #[test]
    fn a_stack_budget_keeps_only_the_start_of_that_process_s_copies() {
        let budget = StackBudget::default();
        budget.set(10, Some(3));
        budget.set(99, Some(1));
        let mut out = SampleRecord::default();
        budget
            .with(|limit| parse(&full(), TYPE, 2, limit, &mut out))
            .unwrap();
        assert_eq!(out.user_stack, Some(vec![7u8; 3]));
        budget.set(10, Some(100));
        budget
            .with(|limit| parse(&full(), TYPE, 2, limit, &mut out))
            .unwrap();
        assert_eq!(
            out.user_stack,
            Some(vec![7u8; 5]),
            "never more than the kernel copied"
        );
        budget.set(10, None);
        assert_eq!(budget.get(10), None);
        assert_eq!(budget.get(99), Some(1));
    }

    fn switch(kind: u32, misc: u16, words: &[u64]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&misc.to_ne_bytes());
        b.extend_from_slice(&((8 + words.len() * 8) as u16).to_ne_bytes());
        for w in words {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b
    }

    #[test]
    fn reads_switch_records_of_both_kinds() {
        const ID: u64 = TID | TIME | CPU;
        let out = PERF_RECORD_MISC_SWITCH_OUT;
        let preempt = out | PERF_RECORD_MISC_SWITCH_OUT_PREEMPT;
        let task = switch(
            PERF_RECORD_SWITCH,
            preempt,
            &[pair(10, 11), 500, pair(1, 0)],
        );
        assert!(is_switch(&task) && !is_sample(&task));
        assert_eq!(
            parse_switch(&task, ID),
            Some(Record::Switch {
                pid: 10,
                tid: 11,
                time: 500,
                out: true,
                preempt: true
            })
        );
        // CPU-wide: the other task's pid and tid come first; the record's own thread is in the trailer.
        let wide = switch(
            PERF_RECORD_SWITCH_CPU_WIDE,
            0,
            &[pair(99, 98), pair(10, 12), 600, pair(0, 0)],
        );
        assert_eq!(
            parse_switch(&wide, ID),
            Some(Record::Switch {
                pid: 10,
                tid: 12,
                time: 600,
                out: false,
                preempt: false
            })
        );
        // A switch-in never says preempted; a blocked switch-out neither.
        let blocked = switch(PERF_RECORD_SWITCH, out, &[pair(1, 2), 3, 0]);
        assert!(matches!(
            parse_switch(&blocked, ID),
            Some(Record::Switch {
                out: true,
                preempt: false,
                ..
            })
        ));
    }

    #[test]
    fn cut_or_foreign_switch_records_are_refused() {
        let wide = switch(PERF_RECORD_SWITCH_CPU_WIDE, 0, &[pair(9, 9), pair(1, 2), 3]);
        for len in 0..wide.len() {
            assert_eq!(parse_switch(&wide[..len], TID | TIME), None, "len {len}");
        }
        assert!(parse_switch(&wide, TID | TIME).is_some());
        // Without the thread and time in the trailer there is nothing to pair.
        assert_eq!(parse_switch(&wide, TIME), None);
        assert_eq!(parse_switch(&full(), TYPE), None);
    }

    #[test]
    fn recycler_keeps_samples_only_and_a_bounded_number() {
        let r = Recycler::default();
        let many = (0..MAX_SPARE + 10).map(|_| Record::Sample(SampleRecord::default()));
        r.give_back(many.chain([Record::Lost {
            time: 0,
            count: 1,
            off_cpu: false,
        }]));
        let mut got = Vec::new();
        r.refill(&mut got);
        assert_eq!(got.len(), MAX_SPARE);
        r.refill(&mut got);
        assert_eq!(got.len(), MAX_SPARE);
    }

    #[test]
    fn a_full_backlog_drops_samples_only_until_batches_come_back() {
        let r = Recycler::default();
        let sample = || {
            Record::Sample(SampleRecord {
                user_stack: Some(vec![0; 4096]),
                ..SampleRecord::default()
            })
        };
        let comm = || Record::Comm {
            pid: 1,
            tid: 1,
            time: 0,
            name: "x".into(),
            exec: false,
        };
        let one = footprint(&sample());
        // Unbounded until a consumer takes the recycler.
        let mut batch: Vec<Record> = (0..10).map(|_| sample()).collect();
        assert_eq!(r.admit(&mut batch, 0, &mut Vec::new()), Dropped::default());
        r.give_back(batch);
        assert_eq!(r.backlog(), 0);
        // Room for three samples: the rest of the samples go, the comm stays, in order.
        r.bound(3 * one + footprint(&comm()));
        let mut batch = vec![sample(), comm(), sample(), sample(), sample(), sample()];
        let mut spare = Vec::new();
        assert_eq!(r.admit(&mut batch, 0, &mut spare).cpu, 2);
        assert_eq!(batch.len(), 4);
        assert!(matches!(batch[1], Record::Comm { .. }));
        assert_eq!(spare.len(), 2);
        assert!(r.room() < one);
        // Non-samples pass even when full.
        let mut more = vec![sample(), comm()];
        assert_eq!(r.admit(&mut more, 0, &mut spare).cpu, 1);
        assert_eq!(more.len(), 1);
        // Given back, the room is there again.
        r.give_back(batch);
        r.give_back(more);
        assert_eq!(r.backlog(), 0);
        let mut batch = vec![sample()];
        assert_eq!(r.admit(&mut batch, 0, &mut spare), Dropped::default());
    }
}
