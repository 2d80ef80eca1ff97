//! perf.data import: reads a `perf record` file (through `linux-perf-data`) and turns its events into the
//! same typed [`Record`] stream a live recording yields, in time order, so the rest of the pipeline (address
//! spaces, unwinding, symbolization) cannot tell the two apart.
//!
//! This module owns the file's layout: the header and its feature sections (event names, build-ids,
//! hostname, command line), the choice of one event among several, the mapping of perf's register order
//! onto [`crate::acquire::USER_REGS`], and build-ids for mappings whose records lack them. It does not unwind
//! or symbolize; `cmd/` feeds the records to the pipeline.
//!
//! Outside bytes never panic: malformed records are skipped and counted, a malformed file is an error.
//! The counts and sizes in the file's header are checked against the file inside `linux-perf-data` (a patched
//! copy in `vendor/linux-perf-data/`, see its PATCH-NOTES.md); the parser's remaining asserts are caught here
//! without a word on stderr, so the user sees one error line.

use foldhash::HashMap;
use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use linux_perf_data::linux_perf_event_reader::{
    AttrFlags, ContextSwitchRecord, CpuMode, EventRecord, Mmap2FileId, PerfEventType,
    RawEventRecord, RecordType, SampleFormat, SamplingPolicy, SoftwareCounterType,
    TaskWasPreempted,
};
use linux_perf_data::{DsoKey, PerfFileReader, PerfFileRecord, PerfRecordIter};

use crate::acquire::record::{
    MmapRecord, Record, SampleKind, SampleRecord, PERF_CONTEXT_KERNEL, PERF_CONTEXT_USER,
};

/// The first eight bytes of every perf.data file (version 2, the only one perf has written since 2009).
pub const MAGIC: &[u8; 8] = b"PERFILE2";

/// `PERF_RECORD_MISC_MMAP_BUILD_ID`: the MMAP2 record carries a build-id instead of device and inode.
const MISC_MMAP_BUILD_ID: u16 = 1 << 14;
/// `PROT_EXEC` in an MMAP2 record's protection.
const PROT_EXEC: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PerfDataError {
    #[error("cannot read {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid perf.data file", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: linux_perf_data::Error,
    },
    #[error("{} is not a valid perf.data file: its {section} header section is malformed", path.display())]
    Section {
        path: PathBuf,
        section: &'static str,
        #[source]
        source: linux_perf_data::Error,
    },
    #[error("{} is corrupt at a record: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("event `{wanted}` is not in {}; it holds: {}", path.display(), available.join(", "))]
    NoSuchEvent {
        path: PathBuf,
        wanted: String,
        available: Vec<String>,
    },
}

/// How the chosen event's samples carry their stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallChains {
    /// Plain `perf record`: the sampled instruction pointer only.
    None,
    /// `perf record -g`: the kernel's frame-pointer call chain.
    FramePointers,
    /// `perf record --call-graph dwarf[,SIZE]`: registers and a copy of SIZE bytes of user stack.
    Dwarf { stack_bytes: u32 },
}

impl CallChains {
    /// The name used in report headers (stacktop's `--call-graph` spelling).
    pub fn name(&self) -> String {
        match self {
            CallChains::None => "none (sampled ip only)".to_owned(),
            CallChains::FramePointers => "fp".to_owned(),
            CallChains::Dwarf { stack_bytes } => format!("dwarf,{stack_bytes}"),
        }
    }
}

/// One event of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    pub name: String,
    /// Sampling frequency in Hz, 0 when sampling by period.
    pub frequency: u64,
    /// Fixed sampling period, 0 when sampling by frequency.
    pub period: u64,
    /// Clock events count nanoseconds; others count events.
    pub clock: bool,
    pub call_chains: CallChains,
    /// `sample_max_stack` of the attribute (0: the kernel's default).
    pub max_stack: u16,
    /// A sample at every context switch (`-e context-switches -c 1`): with switch records in the file, each is
    /// a thread's switch-out, the start of its time off CPU.
    pub switch_outs: bool,
    /// The attribute asked for switch records (`--switch-events`, `context_switch`).
    pub switch_records: bool,
}

/// What the file's header says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub events: Vec<EventInfo>,
    /// Index into `events` of the event whose samples are read.
    pub chosen: usize,
    /// Off-CPU time: the event whose samples are switch-outs, when the file also holds switch records (see
    /// [`Header::off_cpu`]).
    pub switch_event: Option<usize>,
    /// The event read as CPU samples: the chosen one, unless it is `switch_event`; then another sampling event
    /// of the file, if there is one.
    pub cpu_event: Option<usize>,
    pub hostname: Option<String>,
    pub os_release: Option<String>,
    pub perf_version: Option<String>,
    /// The `perf record` command line.
    pub command_line: Option<String>,
    /// Build-id of `[kernel.kallsyms]` on the recording machine.
    pub kernel_build_id: Option<Vec<u8>>,
    /// Whether the records are zstd-compressed (`perf record -z`).
    pub compressed: bool,
    /// Nanoseconds between the first and the last sample, 0 when unknown.
    pub duration_nanos: u64,
}

impl Header {
    pub fn event(&self) -> Option<&EventInfo> {
        self.events.get(self.chosen)
    }

    /// The event whose samples are switch-outs (`perf record -e context-switches -c 1 --switch-events`):
    /// off-CPU time can be measured from this file.
    pub fn off_cpu(&self) -> Option<&EventInfo> {
        self.switch_event.and_then(|i| self.events.get(i))
    }

    /// The event read as CPU samples, if any.
    pub fn cpu(&self) -> Option<&EventInfo> {
        self.cpu_event.and_then(|i| self.events.get(i))
    }
}

/// Which event's samples are switch-outs and which are CPU samples (see [`Header`]).
fn sample_roles(events: &[EventInfo], chosen: usize) -> (Option<usize>, Option<usize>) {
    let switch_event = events
        .iter()
        .any(|e| e.switch_records)
        .then(|| events.iter().position(|e| e.switch_outs))
        .flatten();
    let samples = |e: &EventInfo| e.frequency > 0 || e.period > 0;
    let cpu_event = if Some(chosen) != switch_event {
        Some(chosen)
    } else {
        events
            .iter()
            .enumerate()
            .position(|(i, e)| Some(i) != switch_event && samples(e))
    };
    (switch_event, cpu_event)
}

/// Counts over the records read so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Samples of the chosen event (or of the CPU event, see [`Header::cpu_event`]).
    pub samples: u64,
    /// Samples of the context-switch event read as switch-outs (see [`Header::switch_event`]).
    pub switch_outs: u64,
    /// Samples of other events, skipped.
    pub other_events: u64,
    /// Samples lost by the kernel (`PERF_RECORD_LOST`).
    pub lost: u64,
    pub throttled: u64,
    /// Records that could not be parsed, skipped.
    pub malformed: u64,
}

/// True when the bytes start like a perf.data file.
pub fn is_perf_data(start: &[u8]) -> bool {
    start.starts_with(MAGIC)
}

/// True when the file at `path` starts with perf.data's magic (false when it cannot be read).
pub fn is_perf_data_file(path: &Path) -> bool {
    let mut start = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| is_perf_data(&start))
}

/// A perf.data file being read: the header up front, then [`Record`]s in time order.
pub struct PerfDataReader {
    path: PathBuf,
    header: Header,
    file: linux_perf_data::PerfFile,
    iter: PerfRecordIter<Source>,
    build_ids: HashMap<DsoKey, Vec<u8>>,
    stats: Stats,
}

impl PerfDataReader {
    /// Opens `path` and reads its header; `event` picks the event whose samples are read (by name, as the
    /// header lists them), else the first.
    pub fn open(path: &Path, event: Option<&str>) -> Result<PerfDataReader, PerfDataError> {
        let file = File::open(path).map_err(|source| PerfDataError::Open {
            path: path.to_owned(),
            source,
        })?;
        PerfDataReader::from_source(path, Source::File(BufReader::new(file)), event)
    }

    /// Like `open`, for a file held in memory (tests, fuzzing); `name` stands for its path in errors.
    pub fn from_bytes(
        bytes: Vec<u8>,
        name: &Path,
        event: Option<&str>,
    ) -> Result<PerfDataReader, PerfDataError> {
        PerfDataReader::from_source(name, Source::Bytes(Cursor::new(bytes)), event)
    }

    fn from_source(
        path: &Path,
        source: Source,
        event: Option<&str>,
    ) -> Result<PerfDataReader, PerfDataError> {
        let parsed = guard(|| PerfFileReader::parse_file(source))
            .unwrap_or_else(|reason| {
                Err(linux_perf_data::Error::IoError(std::io::Error::other(
                    reason,
                )))
            })
            .map_err(|source| PerfDataError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let PerfFileReader {
            perf_file,
            record_iter,
        } = parsed;
        let events: Vec<EventInfo> = perf_file
            .event_attributes()
            .iter()
            .enumerate()
            .map(|(i, a)| event_info(i, a))
            .collect();
        let chosen = match event {
            None => 0,
            Some(wanted) => events
                .iter()
                .position(|e| e.name == wanted || e.name.split(':').next() == Some(wanted))
                .ok_or_else(|| PerfDataError::NoSuchEvent {
                    path: path.to_owned(),
                    wanted: wanted.to_owned(),
                    available: events.iter().map(|e| e.name.clone()).collect(),
                })?,
        };
        let build_ids: HashMap<DsoKey, Vec<u8>> = perf_file
            .build_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|(key, info)| (key, info.build_id))
            .collect();
        let text = |section, read: Result<Option<&str>, linux_perf_data::Error>| {
            let text = feature_section(path, section, read)?;
            Ok::<_, PerfDataError>(text.map(|s| s.trim_end_matches('\0').to_owned()))
        };
        let duration_nanos = feature_section(path, "SAMPLE_TIME", perf_file.sample_time_range())?
            .map_or(0, |r| {
                r.last_sample_time.saturating_sub(r.first_sample_time)
            });
        let (switch_event, cpu_event) = sample_roles(&events, chosen);
        let header = Header {
            chosen,
            switch_event,
            cpu_event,
            hostname: text("HOSTNAME", perf_file.hostname())?,
            os_release: text("OSRELEASE", perf_file.os_release())?,
            perf_version: text("VERSION", perf_file.perf_version())?,
            command_line: feature_section(path, "CMDLINE", perf_file.cmdline())?
                .map(|v| v.join(" ")),
            kernel_build_id: build_ids.get(&DsoKey::Kernel).cloned(),
            compressed: feature_section(path, "COMPRESSED", perf_file.compression_info())?
                .is_some(),
            duration_nanos,
            events,
        };
        Ok(PerfDataReader {
            path: path.to_owned(),
            header,
            file: perf_file,
            iter: record_iter,
            build_ids,
            stats: Stats::default(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The next record of interest, `None` at the end of the file. Records of no interest (other events'
    /// samples, perf's bookkeeping, unknown types) are skipped; malformed ones are skipped and counted.
    pub fn next_record(&mut self) -> Result<Option<Record>, PerfDataError> {
        loop {
            let roles = Roles {
                cpu: self.header.cpu_event,
                switch_outs: self.header.switch_event,
                // Without PERF_SAMPLE_PERIOD in the samples (`perf record -c N`), each stands for the fixed
                // period.
                fixed_period: self.header.cpu().map_or(1, |e| e.period.max(1)),
            };
            let build_ids = &self.build_ids;
            let stats = &mut self.stats;
            let iter = &mut self.iter;
            let file = &mut self.file;
            let step = guard(
                || -> Result<Option<Option<Record>>, linux_perf_data::Error> {
                    let Some(record) = iter.next_record(file)? else {
                        return Ok(None);
                    };
                    let PerfFileRecord::EventRecord { attr_index, record } = record else {
                        return Ok(Some(None));
                    };
                    Ok(Some(convert(&record, attr_index, &roles, build_ids, stats)))
                },
            );
            match step {
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(Some(record)))) => return Ok(Some(record)),
                Ok(Ok(Some(None))) => continue,
                Ok(Err(e)) => {
                    return Err(PerfDataError::Corrupt {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    })
                }
                Err(reason) => {
                    return Err(PerfDataError::Corrupt {
                        path: self.path.clone(),
                        reason,
                    })
                }
            }
        }
    }
}

/// Where the file's bytes come from: the file itself, or memory (see `PerfDataReader::from_bytes`).
enum Source {
    File(BufReader<File>),
    Bytes(Cursor<Vec<u8>>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::File(f) => f.read(buf),
            Source::Bytes(b) => b.read(buf),
        }
    }

    // Records are read with `read_exact`: keep `BufReader`'s fast path for it.
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        match self {
            Source::File(f) => f.read_exact(buf),
            Source::Bytes(b) => b.read_exact(buf),
        }
    }
}

impl Seek for Source {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Source::File(f) => f.seek(pos),
            Source::Bytes(b) => b.seek(pos),
        }
    }
}

/// A header feature section read by `linux-perf-data`. A section whose counts and lengths do not fit in it
/// makes the file invalid; text that is not UTF-8 is only left out, as before.
fn feature_section<T>(
    path: &Path,
    section: &'static str,
    read: Result<Option<T>, linux_perf_data::Error>,
) -> Result<Option<T>, PerfDataError> {
    match read {
        Ok(value) => Ok(value),
        Err(linux_perf_data::Error::StringUtf8) => Ok(None),
        Err(source) => Err(PerfDataError::Section {
            path: path.to_owned(),
            section,
            source,
        }),
    }
}

thread_local! {
    /// Set while this thread runs the third-party parser under [`guard`].
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
}

/// Runs a step of the third-party parser; a panic in it (it has a few asserts on file contents, and
/// overflow checks in debug builds) becomes an error instead of taking the program down.
///
/// The panic stays off stderr: its message is the error's text, and the user should see that once, in the
/// one error line. Panics on other threads, or outside a guard, still reach the hook that was there before.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    let outer = IN_GUARD.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.set(outer);
    result.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the perf.data parser failed".to_owned())
    })
}

/// Wraps the process's panic hook, once, in one that says nothing for panics inside [`guard`] on the
/// panicking thread. The flag is thread-local, so a guarded parse on one thread cannot silence a real panic
/// on another; `Once` keeps concurrent first calls from wrapping the hook twice. A hook set later stays
/// quiet for guarded panics only if it calls the one it replaced, and its own work (a TUI restoring the
/// terminal) still runs for them.
fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_GUARD.get() {
                previous(info);
            }
        }));
    });
}

fn event_info(index: usize, attr: &linux_perf_data::AttributeDescription) -> EventInfo {
    let a = &attr.attr;
    let (frequency, period) = match a.sampling_policy {
        SamplingPolicy::Frequency(f) => (f, 0),
        SamplingPolicy::Period(p) => (0, p.get()),
        SamplingPolicy::NoSampling => (0, 0),
    };
    let clock = matches!(
        a.type_,
        PerfEventType::Software(SoftwareCounterType::CpuClock | SoftwareCounterType::TaskClock)
    );
    let call_chains = if a.sample_format.contains(SampleFormat::REGS_USER)
        && a.sample_format.contains(SampleFormat::STACK_USER)
    {
        CallChains::Dwarf {
            stack_bytes: a.sample_stack_user,
        }
    } else if a.sample_format.contains(SampleFormat::CALLCHAIN) {
        CallChains::FramePointers
    } else {
        CallChains::None
    };
    EventInfo {
        name: attr
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("event{index}")),
        frequency,
        period,
        clock,
        call_chains,
        max_stack: a.sample_max_stack,
        switch_outs: matches!(
            a.type_,
            PerfEventType::Software(SoftwareCounterType::ContextSwitches)
        ) && period == 1,
        switch_records: a.flags.contains(AttrFlags::CONTEXT_SWITCH),
    }
}

/// What the samples of each event are read as.
struct Roles {
    cpu: Option<usize>,
    switch_outs: Option<usize>,
    fixed_period: u64,
}

/// One event record as a [`Record`]; `None` for records of no interest or that do not parse.
fn convert(
    raw: &RawEventRecord<'_>,
    attr_index: usize,
    roles: &Roles,
    build_ids: &HashMap<DsoKey, Vec<u8>>,
    stats: &mut Stats,
) -> Option<Record> {
    let kind = if Some(attr_index) == roles.switch_outs {
        SampleKind::SwitchOut
    } else {
        SampleKind::Cpu
    };
    if raw.record_type == RecordType::SAMPLE
        && kind == SampleKind::Cpu
        && Some(attr_index) != roles.cpu
    {
        stats.other_events += 1;
        return None;
    }
    // linux-perf-event-reader asserts on an MMAP2 build-id length above 20: check it first.
    if raw.record_type == RecordType::MMAP2 && raw.misc & MISC_MMAP_BUILD_ID != 0 {
        let len = raw.data.get(32..33).map(|b| b.as_slice().first().copied());
        if !matches!(len, Some(Some(0..=20))) {
            stats.malformed += 1;
            return None;
        }
    }
    let time = raw.timestamp().unwrap_or(0);
    // A record whose parse panics (linux-perf-event-reader multiplies a sample's call-chain length by 8
    // unchecked, which overflow checks turn into a panic) is as malformed as one that fails to parse.
    let parsed = match guard(|| raw.parse()) {
        Ok(Ok(p)) => p,
        Ok(Err(_)) | Err(_) => {
            stats.malformed += 1;
            return None;
        }
    };
    match parsed {
        EventRecord::Sample(s) => {
            let mut sample = sample(&s, time, roles.fixed_period);
            match kind {
                SampleKind::Cpu => stats.samples += 1,
                SampleKind::SwitchOut => {
                    stats.switch_outs += 1;
                    sample.kind = kind;
                    sample.period = 1;
                }
                // Lock probes' samples are stacktop's own; perf.data files are not read for them.
                SampleKind::LockWait { .. }
                | SampleKind::LockAcquired
                | SampleKind::LockWake { .. } => {}
            }
            Some(Record::Sample(sample))
        }
        // Its thread and time are in the record's sample_id (`perf record` sets sample_id_all).
        EventRecord::ContextSwitch(c) => {
            let id = raw.common_data().ok()?;
            let (out, preempt) = match c {
                ContextSwitchRecord::Out { preempted, .. } => {
                    (true, preempted == TaskWasPreempted::Yes)
                }
                ContextSwitchRecord::In { .. } => (false, false),
            };
            Some(Record::Switch {
                pid: u32::try_from(id.pid?).ok()?,
                tid: u32::try_from(id.tid?).ok()?,
                time: id.timestamp?,
                out,
                preempt,
            })
        }
        EventRecord::Mmap(m) => {
            if m.pid < 0 {
                return None; // the kernel and its modules: kernel addresses resolve without mappings
            }
            let path = String::from_utf8_lossy(&m.path.as_slice()).into_owned();
            let build_id = lookup_build_id(build_ids, &path, m.cpu_mode);
            Some(Record::Mmap(MmapRecord {
                pid: m.pid as u32,
                tid: m.tid as u32,
                time,
                start: m.address,
                len: m.length,
                pgoff: m.page_offset,
                path,
                build_id,
                executable: m.is_executable,
                dev: 0,
                inode: 0,
            }))
        }
        EventRecord::Mmap2(m) => {
            if m.pid < 0 {
                return None;
            }
            let path = String::from_utf8_lossy(&m.path.as_slice()).into_owned();
            let (build_id, dev, inode) = match m.file_id {
                Mmap2FileId::BuildId(id) => (Some(id), 0, 0),
                Mmap2FileId::InodeAndVersion(f) => (
                    lookup_build_id(build_ids, &path, m.cpu_mode),
                    libc::makedev(f.major, f.minor),
                    f.inode,
                ),
            };
            Some(Record::Mmap(MmapRecord {
                pid: m.pid as u32,
                tid: m.tid as u32,
                time,
                start: m.address,
                len: m.length,
                pgoff: m.page_offset,
                path,
                build_id,
                executable: m.protection & PROT_EXEC != 0,
                dev,
                inode,
            }))
        }
        EventRecord::Comm(c) => Some(Record::Comm {
            pid: c.pid as u32,
            tid: c.tid as u32,
            time,
            name: String::from_utf8_lossy(&c.name.as_slice()).into_owned(),
            exec: c.is_execve,
        }),
        EventRecord::Fork(f) => Some(Record::Fork {
            pid: f.pid as u32,
            ppid: f.ppid as u32,
            tid: f.tid as u32,
            ptid: f.ptid as u32,
            time: if f.timestamp != 0 { f.timestamp } else { time },
        }),
        EventRecord::Exit(f) => Some(Record::Exit {
            pid: f.pid as u32,
            ppid: f.ppid as u32,
            tid: f.tid as u32,
            ptid: f.ptid as u32,
            time: if f.timestamp != 0 { f.timestamp } else { time },
        }),
        EventRecord::Lost(l) => {
            stats.lost += l.count;
            // perf's rings hold every event's records: switches may be among those lost.
            Some(Record::Lost {
                time,
                count: l.count,
                off_cpu: true,
            })
        }
        EventRecord::Throttle(t) => {
            stats.throttled += 1;
            Some(Record::Throttle {
                time: t.timestamp,
                throttled: true,
            })
        }
        EventRecord::Unthrottle(t) => Some(Record::Throttle {
            time: t.timestamp,
            throttled: false,
        }),
        _ => None,
    }
}

/// The build-id the file's build-id table gives for a mapped path.
fn lookup_build_id(
    build_ids: &HashMap<DsoKey, Vec<u8>>,
    path: &str,
    mode: CpuMode,
) -> Option<Vec<u8>> {
    let key = DsoKey::detect(path.as_bytes(), mode)?;
    build_ids.get(&key).filter(|id| !id.is_empty()).cloned()
}

fn sample(
    s: &linux_perf_data::linux_perf_event_reader::SampleRecord<'_>,
    time: u64,
    fixed_period: u64,
) -> SampleRecord {
    let user_mode = matches!(s.cpu_mode, CpuMode::User | CpuMode::GuestUser);
    let callchain = match &s.callchain {
        Some(chain) => (0..chain.len()).filter_map(|i| chain.get(i)).collect(),
        // No call chain recorded: the sampled ip alone, in its context.
        None => match s.ip {
            Some(ip) => vec![
                if user_mode {
                    PERF_CONTEXT_USER
                } else {
                    PERF_CONTEXT_KERNEL
                },
                ip,
            ],
            None => Vec::new(),
        },
    };
    let user_regs = s.user_regs.as_ref().and_then(|regs| {
        if crate::arch::USER_REG_NUMBERS.is_empty() {
            return None;
        }
        crate::arch::USER_REG_NUMBERS
            .iter()
            .map(|&r| regs.get(r))
            .collect()
    });
    let (mut stack_asked, mut stack_copied) = (0, 0);
    let user_stack = s.user_stack.as_ref().map(|(data, dyn_size)| {
        let bytes = data.as_slice();
        let len = usize::try_from(*dyn_size).map_or(bytes.len(), |d| d.min(bytes.len()));
        stack_asked = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        stack_copied = u32::try_from(len).unwrap_or(u32::MAX);
        bytes[..len].to_vec()
    });
    SampleRecord {
        kind: SampleKind::Cpu,
        pid: s.pid.unwrap_or(-1) as u32,
        tid: s.tid.unwrap_or(-1) as u32,
        time: s.timestamp.unwrap_or(time),
        cpu: s.cpu.unwrap_or(0),
        period: s.period.unwrap_or(fixed_period),
        user_mode,
        callchain,
        user_regs,
        user_stack,
        stack_asked,
        stack_copied,
        shed: false,
    }
}

/// The GNU build-id in a blob of ELF notes (`/sys/kernel/notes` holds the running kernel's).
pub fn build_id_from_notes(notes: &[u8]) -> Option<Vec<u8>> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |at: usize| -> Option<u32> {
        let b = notes.get(at..at.checked_add(4)?)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let align = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let namesz = usize::try_from(word(at)?).ok()?;
        let descsz = usize::try_from(word(at + 4)?).ok()?;
        let kind = word(at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(align(namesz)?)?;
        let next = desc_at.checked_add(align(descsz)?)?;
        let name = notes.get(name_at..name_at.checked_add(namesz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return notes
                .get(desc_at..desc_at.checked_add(descsz)?)
                .map(<[u8]>::to_vec);
        }
        at = next;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((name.len() as u32).to_ne_bytes());
        out.extend((desc.len() as u32).to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend(name);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn finds_the_gnu_build_id_note_after_others() {
        let mut notes = note(b"Xen\0", 3, &[1, 2, 3]);
        notes.extend(note(b"GNU\0", 3, &[0xab; 20]));
        assert_eq!(build_id_from_notes(&notes), Some(vec![0xab; 20]));
    }

    #[test]
    fn truncated_or_garbage_notes_give_none() {
        let notes = note(b"GNU\0", 3, &[0xab; 20]);
        for cut in 0..notes.len() {
            assert_eq!(build_id_from_notes(&notes[..cut]), None);
        }
        assert_eq!(build_id_from_notes(&[0xff; 64]), None);
    }

    #[test]
    fn magic_detects_perf_data() {
        assert!(is_perf_data(b"PERFILE2\x68\0\0\0"));
        assert!(!is_perf_data(b"\x1f\x8b\x08"));
    }

    #[test]
    fn a_guarded_panic_is_an_error_and_the_guard_flag_unwinds() {
        let inner = guard(|| {
            let nested = guard(|| -> u32 { panic!("inner {}", 1) });
            // Still inside the outer guard after the nested one caught its panic.
            (nested, IN_GUARD.get())
        });
        assert_eq!(inner.unwrap(), (Err("inner 1".to_owned()), true));
        assert_eq!(
            guard(|| panic!("static")),
            Err::<(), _>("static".to_owned())
        );
        assert!(!IN_GUARD.get());
    }

    #[test]
    fn garbage_after_the_magic_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("stacktop-perfdata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, len) in [8usize, 16, 104, 300, 4096].iter().enumerate() {
            let path = dir.join(format!("bad{i}.data"));
            let mut bytes = MAGIC.to_vec();
            bytes.extend((0..*len).map(|j| (j * 37 % 251) as u8));
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(mut r) = PerfDataReader::open(&path, None) {
                while let Ok(Some(_)) = r.next_record() {}
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
