//! Reading pprof: bounded decompression, then the message walked one top-level element at a time.
//!
//! What a file may cost is bounded at each step, since a small file can describe a great deal:
//! - gzip output stops at [`MAX_DECOMPRESSED`], and once past [`RATIO_FLOOR`] as soon as it is more than
//!   [`MAX_RATIO`] times the input it came from, so a bomb fails in a fraction of a second;
//! - the message is never decoded whole (`prost` would hold every sample, label and line as structs, up to
//!   ~36 times the bytes for empty messages): the string table is kept as slices of the buffer, mappings,
//!   functions and locations are interned as they are met, and samples go into the profile one by one;
//! - every length is checked against the bytes that remain before anything is sliced (see `wire`), and
//!   repeated fields are pushed one element at a time, so no count from the file sizes an allocation;
//! - text copied out of the string table by reference (comments) may not exceed the file's size, and the
//!   frames the samples expand to (inline lines included) are capped at [`MAX_FRAMES`]: both are ways for a
//!   few bytes that refer to big things many times to make the queries' work explode.

use foldhash::{HashMap, HashMapExt};
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use prost::Message;

use super::{proto, GZIP_MAGIC};
use crate::format::wire::{self, Fields, Value, WireError};
use crate::format::{read_input, FormatError, Input};
use crate::profile::{
    Function, FunctionId, Line, Location, LocationId, LockStats, Mapping, MappingId, Meta,
    ModuleUnwind, OffCpuStats, Profile, Role, ShortCopies, Values,
};

/// Profiles larger than this once decompressed are refused. A large real profile is tens of MiB (by estimate,
/// a long system-wide recording of ~500,000 distinct stacks at ~100 bytes each is ~50 MiB). Reading costs up to
/// ~14 bytes of memory per byte of file (measured: a 250 MiB file of 20 million distinct locations took 3.7 GB),
/// so this keeps the worst accepted file under ~2 GB while leaving room for twice that large real one.
pub const MAX_DECOMPRESSED: u64 = 128 << 20;

/// Gzip output may be at most this many times its input (past `RATIO_FLOOR`). Real profiles compress a few
/// times (measured: a stacktop recording 3.3, a 10,000-frame stack 2.2); deflate's ceiling is ~1030, and a
/// bomb sits near it (the one in the tests: ~690).
pub const MAX_RATIO: u64 = 100;

/// Below this much output the ratio is not checked: a small file costs little whatever its ratio.
pub const RATIO_FLOOR: u64 = 16 << 20;

/// Samples may expand to at most this many frames in all (each location contributes its inline lines, at least
/// one), since a few bytes can name a location with many inline lines many times over. Every query holds the
/// frames of the samples it reads, and the profile a node per distinct prefix: measured, one sample this deep
/// costs `report` 1.6 GB and `report --folded` 2.0 GB. Still above the largest real profiles (by estimate,
/// ~500,000 distinct stacks of ~30 frames: 15 million).
pub const MAX_FRAMES: u64 = 1 << 24;

/// Reads a pprof profile from bytes (gzipped or not).
pub fn read_pprof(bytes: &[u8]) -> Result<Profile, FormatError> {
    let plain;
    let data: &[u8] = if bytes.starts_with(&GZIP_MAGIC) {
        plain = gunzip(bytes)?;
        &plain
    } else {
        if bytes.len() as u64 > MAX_DECOMPRESSED {
            return Err(FormatError::TooLarge {
                limit: MAX_DECOMPRESSED,
            });
        }
        bytes
    };
    decode(data)
}

/// Reads a pprof profile from a file (at most what [`read_input`] reads).
pub fn read_pprof_file(path: &Path) -> Result<Profile, FormatError> {
    match read_input(path)? {
        Input::Pprof(bytes) => read_pprof(&bytes),
        Input::PerfData => Err(FormatError::Unrecognized),
    }
}

/// Whether `start`, a file's first bytes, can begin a pprof profile: gzip's magic, or a protobuf field key
/// (a field number and one of the wire types a message can use). Anything else is refused before the rest of
/// the input is read: `/dev/zero` starts with field 0.
pub fn plausible_start(start: &[u8]) -> bool {
    if start.is_empty() || start.starts_with(&GZIP_MAGIC) {
        return true;
    }
    match wire::varint(start) {
        Ok((key, _)) => key >> 3 != 0 && matches!(key & 7, 0 | 1 | 2 | 5),
        // The key's varint may not be complete in so few bytes.
        Err(_) => start.len() < 10,
    }
}

/// Builds a `Profile` from a decoded message, validating every reference first.
pub fn from_proto(p: &proto::Profile) -> Result<Profile, FormatError> {
    decode(&p.encode_to_vec())
}

/// Counts the bytes the gzip decoder has taken, so output is checked against the input it came from.
struct Counted<'a> {
    rest: &'a [u8],
    taken: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.taken += n as u64;
        Ok(n)
    }
}

/// Decompresses `bytes`, stopping at `MAX_DECOMPRESSED` of output, and past `RATIO_FLOOR` as soon as the
/// output is more than `MAX_RATIO` times the input taken so far: a bomb is caught after at most 16 MiB of
/// output, whatever its size. (The decoder reads ahead, so the ratio is if anything underestimated.)
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut decoder = MultiGzDecoder::new(Counted {
        rest: bytes,
        taken: 0,
    });
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FormatError::Corrupt(format!("gzip: {e}"))),
        };
        out.extend_from_slice(&chunk[..n]);
        let (made, taken) = (out.len() as u64, decoder.get_ref().taken);
        if made > MAX_DECOMPRESSED {
            return Err(FormatError::TooLarge {
                limit: MAX_DECOMPRESSED,
            });
        }
        if made > RATIO_FLOOR && made > taken.saturating_mul(MAX_RATIO) {
            return Err(FormatError::Expands { ratio: MAX_RATIO });
        }
    }
    Ok(out)
}

fn corrupt(what: impl Into<String>) -> FormatError {
    FormatError::Corrupt(what.into())
}

fn wire_error(what: &str, e: WireError) -> FormatError {
    corrupt(format!("{what}: {e}"))
}

/// The integer in a scalar field (protobuf's `int64` is the varint's bits as two's complement).
fn int(tag: u32, value: Value<'_>, what: &str) -> Result<u64, FormatError> {
    match value {
        Value::Varint(v) => Ok(v),
        _ => Err(corrupt(format!("{what}: field {tag} is not an integer"))),
    }
}

/// The message in a field.
fn message<'a>(tag: u32, value: Value<'a>, what: &str) -> Result<&'a [u8], FormatError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(corrupt(format!("{what}: field {tag} is not a message"))),
    }
}

/// Calls `each` with the bytes of every top-level field numbered `tag`, in file order.
fn each_element<'a>(
    data: &'a [u8],
    tag: u32,
    what: &str,
    mut each: impl FnMut(&'a [u8]) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    for field in Fields::new(data) {
        let (t, value) = field.map_err(|e| wire_error("profile", e))?;
        if t == tag {
            each(message(t, value, what)?)?;
        }
    }
    Ok(())
}

/// Checked access to the string table, whose entries are slices of the decompressed buffer.
struct Table<'a>(Vec<&'a str>);

impl<'a> Table<'a> {
    fn get(&self, index: i64, what: &str) -> Result<&'a str, FormatError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .ok_or_else(|| {
                corrupt(format!(
                    "{what} refers to string {index}, past the string table"
                ))
            })
    }
}

/// The profile's scalar fields, sample types, comments and string table: everything but the elements that
/// are read one at a time.
struct Header<'a> {
    table: Table<'a>,
    sample_type: Vec<proto::ValueType>,
    comment: Vec<i64>,
    time_nanos: i64,
    duration_nanos: i64,
    period: i64,
    default_sample_type: i64,
}

impl<'a> Header<'a> {
    fn read(data: &'a [u8]) -> Result<Header<'a>, FormatError> {
        let mut h = Header {
            table: Table(Vec::new()),
            sample_type: Vec::new(),
            comment: Vec::new(),
            time_nanos: 0,
            duration_nanos: 0,
            period: 0,
            default_sample_type: 0,
        };
        for field in Fields::new(data) {
            let (tag, value) = field.map_err(|e| wire_error("profile", e))?;
            match tag {
                1 => h.sample_type.push(proto::ValueType::decode(message(
                    tag,
                    value,
                    "sample type",
                )?)?),
                6 => {
                    let s = std::str::from_utf8(message(tag, value, "string table")?)
                        .map_err(|_| corrupt("a string is not UTF-8"))?;
                    h.table.0.push(s);
                }
                9 => h.time_nanos = int(tag, value, "time")? as i64,
                10 => h.duration_nanos = int(tag, value, "duration")? as i64,
                12 => h.period = int(tag, value, "period")? as i64,
                13 => {
                    for c in wire::varints(value) {
                        h.comment
                            .push(c.map_err(|e| wire_error("comments", e))? as i64);
                    }
                }
                14 => h.default_sample_type = int(tag, value, "default sample type")? as i64,
                // Samples, mappings, locations and functions are read in their own passes; drop_frames,
                // keep_frames and period_type are not used, and unknown fields are skipped as protobuf says.
                _ => {}
            }
        }
        Ok(h)
    }
}

/// Which sample values are the count and the period: `(count index, period index)`.
///
/// The period is pprof's `default_sample_type` when set, else the first `cpu`-like value (type `cpu`, unit
/// `nanoseconds`), else the last value (pprof's own default). The count is the value `samples/count` (or the
/// first with unit `count`); without one, the count is derived from the period (see `Samples::add`).
fn choose_values(h: &Header<'_>) -> Result<(Option<usize>, usize), FormatError> {
    let mut types = Vec::new();
    for vt in &h.sample_type {
        types.push((
            h.table.get(vt.r#type, "sample type")?,
            h.table.get(vt.unit, "sample unit")?,
        ));
    }
    if types.is_empty() {
        return Err(corrupt("no sample types"));
    }
    let count = types
        .iter()
        .position(|&(t, u)| t == "samples" && u == "count")
        .or_else(|| types.iter().position(|&(_, u)| u == "count"));
    let default = if h.default_sample_type != 0 {
        let name = h.table.get(h.default_sample_type, "default sample type")?;
        // The last one: ours puts the event total after `samples/count`, even for an event named `samples`.
        types.iter().rposition(|&(t, _)| t == name)
    } else {
        None
    };
    let period = default
        .or_else(|| {
            types
                .iter()
                .position(|&(t, u)| t == "cpu" || u == "nanoseconds")
        })
        .unwrap_or(types.len() - 1);
    Ok((count, period))
}

/// Where the off-CPU values are (`switches/count`, `blocked/nanoseconds`, `runnable/nanoseconds`, as
/// stacktop writes them): all three or none.
fn off_cpu_values(h: &Header<'_>) -> Result<Option<[usize; 3]>, FormatError> {
    let mut found = [None; 3];
    for (i, vt) in h.sample_type.iter().enumerate() {
        let t = h.table.get(vt.r#type, "sample type")?;
        let u = h.table.get(vt.unit, "sample unit")?;
        let slot = match (t, u) {
            ("switches", "count") => 0,
            ("blocked", "nanoseconds") => 1,
            ("runnable", "nanoseconds") => 2,
            _ => continue,
        };
        found[slot].get_or_insert(i);
    }
    Ok(match found {
        [Some(s), Some(b), Some(r)] => Some([s, b, r]),
        _ => None,
    })
}

/// Where the lock values are (`contentions/count`, `delay/nanoseconds`), when the file has both and neither is
/// the count or the period chosen (a Go block or mutex profile is read as its count and delay).
fn lock_values(
    h: &Header<'_>,
    (count, period): (Option<usize>, usize),
) -> Result<Option<[usize; 2]>, FormatError> {
    let mut found = [None; 2];
    for (i, vt) in h.sample_type.iter().enumerate() {
        let t = h.table.get(vt.r#type, "sample type")?;
        let u = h.table.get(vt.unit, "sample unit")?;
        let slot = match (t, u) {
            ("contentions", "count") => 0,
            ("delay", "nanoseconds") => 1,
            _ => continue,
        };
        found[slot].get_or_insert(i);
    }
    Ok(match found {
        [Some(c), Some(d)] if count != Some(c) && period != d => Some([c, d]),
        _ => None,
    })
}

/// A lock as a `lock:` comment describes it: `PID\tADDRESS\tLONGEST\tSYMBOL\tMODULE` (the last two may be
/// empty).
struct LockComment {
    pid: u32,
    address: u64,
    longest: u64,
    symbol: String,
    module: String,
}

/// Undoes `escape_field`: `\\`, `\t`, `\n`; any other backslash stays as it is.
fn unescape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn lock_comment(s: &str) -> Option<LockComment> {
    let mut parts = s.split('\t');
    let pid = parts.next()?.parse().ok()?;
    let address = u64::from_str_radix(parts.next()?.strip_prefix("0x")?, 16).ok()?;
    let longest = parts.next()?.parse().ok()?;
    let symbol = unescape_field(parts.next()?);
    let module = unescape_field(parts.next()?);
    parts.next().is_none().then_some(LockComment {
        pid,
        address,
        longest,
        symbol,
        module,
    })
}

/// Adds the locks the `lock:` comments describe (names and longest waits; the samples add their waits).
fn add_commented_locks(profile: &mut Profile, comments: &[&str]) {
    for comment in comments {
        let Some(lock) = comment.strip_prefix("lock: ").and_then(lock_comment) else {
            continue;
        };
        let id = profile.add_lock(lock.pid, lock.address);
        if !lock.symbol.is_empty() {
            let module = (!lock.module.is_empty()).then_some(lock.module.as_str());
            profile.set_lock_symbol(id, &lock.symbol, module);
        }
        profile.set_lock_details(id, lock.longest, None);
    }
}

/// Metadata from `key: value` comments; other comments become notes.
fn meta_from_comments(comments: &[&str]) -> Meta {
    let mut meta = Meta::default();
    for comment in comments {
        let Some((key, value)) = comment
            .split_once(": ")
            .or_else(|| comment.strip_suffix(':').map(|k| (k, "")))
        else {
            meta.notes.push((*comment).to_owned());
            continue;
        };
        let number = value.trim().parse::<u64>();
        match (key, number) {
            ("command", _) => meta.command_line = value.to_owned(),
            ("event", _) => meta.event = value.to_owned(),
            ("call_graph", _) => meta.call_graph = value.to_owned(),
            ("note", _) => meta.notes.push(value.to_owned()),
            ("frequency", Ok(n)) => meta.frequency = n,
            ("lost", Ok(n)) => meta.lost = n,
            ("throttled", Ok(n)) => meta.throttled = n,
            ("truncated", Ok(n)) => meta.truncated = n,
            ("fell_back", Ok(n)) => meta.fell_back = n,
            ("frameless", Ok(n)) => meta.frameless = n,
            ("off_cpu", _) => match OffCpuStats::from_comment(value) {
                Some(s) => meta.off_cpu = s,
                None => meta.notes.push((*comment).to_owned()),
            },
            ("locks", _) => match LockStats::from_comment(value) {
                Some(s) => {
                    meta.locks = LockStats {
                        probes: std::mem::take(&mut meta.locks.probes),
                        ..s
                    }
                }
                None => meta.notes.push((*comment).to_owned()),
            },
            ("lock_probe", _) => meta.locks.probes.push(value.to_owned()),
            // Read by `add_commented_locks`.
            ("lock", _) if lock_comment(value).is_some() => {}
            ("continuation", _) => match crate::profile::ContinuationStats::from_comment(value) {
                Some(c) => meta.continuation = c,
                None => meta.notes.push((*comment).to_owned()),
            },
            ("short_copies", _) => match ShortCopies::from_comment(value) {
                Some(s) => meta.short_copies = s,
                None => meta.notes.push((*comment).to_owned()),
            },
            ("unwind_module", _) => match ModuleUnwind::from_comment(value) {
                Some(m) => meta.unwind_modules.push(m),
                None => meta.notes.push((*comment).to_owned()),
            },
            _ => meta.notes.push((*comment).to_owned()),
        }
    }
    meta
}

/// The `Meta` of a profile: its comments, sample types and times.
fn read_meta<'a>(
    h: &Header<'a>,
    period_index: usize,
    budget: usize,
) -> Result<(Meta, Vec<&'a str>), FormatError> {
    let mut comments = Vec::new();
    let mut text = 0usize;
    for &c in &h.comment {
        let comment = h.table.get(c, "comment")?;
        // Each comment is copied into the notes: a long string named by many comments would be copied as
        // many times, so the copies may not add up to more than the file.
        text = text.saturating_add(comment.len());
        if text > budget {
            return Err(corrupt(
                "the comments refer to more text than the file holds",
            ));
        }
        comments.push(comment);
    }
    let mut meta = meta_from_comments(&comments);
    let vt = &h.sample_type[period_index];
    let (value_type, value_unit) = (
        h.table.get(vt.r#type, "sample type")?,
        h.table.get(vt.unit, "sample unit")?,
    );
    if meta.event.is_empty() {
        meta.event = value_type.to_owned();
    }
    meta.period_unit = value_unit.to_owned();
    meta.time_nanos = h.time_nanos;
    meta.duration_nanos = h.duration_nanos;
    Ok((meta, comments))
}

/// Reads a decompressed pprof message into a `Profile`: the header first, then mappings, functions, locations
/// and samples, each in a pass of its own over the top-level fields (each refers to the ones before it, and a
/// writer may put them in any order).
fn decode(data: &[u8]) -> Result<Profile, FormatError> {
    let h = Header::read(data)?;
    let table = &h.table;
    if table.0.first().is_some_and(|s| !s.is_empty()) {
        return Err(corrupt("string table does not start with the empty string"));
    }
    let (count_index, period_index) = choose_values(&h)?;
    let off_cpu_indexes = off_cpu_values(&h)?;
    let lock_indexes = lock_values(&h, (count_index, period_index))?;
    let (meta, comments) = read_meta(&h, period_index, data.len())?;
    let mut profile = Profile::new(meta);
    add_commented_locks(&mut profile, &comments);

    let mut mappings: HashMap<u64, MappingId> = HashMap::new();
    each_element(data, 3, "mapping", |bytes| {
        let m = proto::Mapping::decode(bytes)?;
        if m.id == 0 || mappings.contains_key(&m.id) {
            return Err(corrupt(format!("mapping id {} is zero or repeated", m.id)));
        }
        let path = table.get(m.filename, "mapping file name")?;
        let build_id = table.get(m.build_id, "mapping build-id")?;
        let mapping = Mapping {
            path: profile.intern(if path.is_empty() { "[unknown]" } else { path }),
            build_id: (!build_id.is_empty()).then(|| profile.intern(build_id)),
            start: m.memory_start,
            limit: m.memory_limit,
            offset: m.file_offset,
            kernel: path.starts_with("[kernel"),
        };
        // Two identical mappings intern to one id; both pprof ids point at it.
        mappings.insert(m.id, profile.add_mapping(mapping));
        Ok(())
    })?;

    let mut functions = HashMap::new();
    each_element(data, 5, "function", |bytes| {
        let f = proto::Function::decode(bytes)?;
        if f.id == 0 || functions.contains_key(&f.id) {
            return Err(corrupt(format!("function id {} is zero or repeated", f.id)));
        }
        let mut name = table.get(f.name, "function name")?;
        if name.is_empty() {
            name = table.get(f.system_name, "function system name")?;
        }
        let file = table.get(f.filename, "function file name")?;
        let function = Function {
            name: profile.intern(if name.is_empty() { "[unknown]" } else { name }),
            file: (!file.is_empty()).then(|| profile.intern(file)),
        };
        functions.insert(f.id, profile.add_function(function));
        Ok(())
    })?;

    // Each location's id and its frame count (inline lines, at least one), for the frames budget.
    let mut locations: HashMap<u64, (LocationId, u64)> = HashMap::new();
    each_element(data, 4, "location", |bytes| {
        let (id, location) = read_location(bytes, &mappings, &functions)?;
        if id == 0 || locations.contains_key(&id) {
            return Err(corrupt(format!("location id {id} is zero or repeated")));
        }
        let frames = location.lines.len().max(1) as u64;
        locations.insert(id, (profile.add_location(location), frames));
        Ok(())
    })?;

    let mut samples = Samples {
        value_count: h.sample_type.len(),
        count_index,
        period_index,
        off_cpu_indexes,
        lock_indexes,
        period: h.period,
        stack: Vec::new(),
        values: Vec::new(),
        frames: 0,
        count: 0,
        total: 0,
        index: 0,
    };
    each_element(data, 2, "sample", |bytes| {
        samples.add(bytes, table, &locations, &mut profile)
    })?;
    Ok(profile)
}

/// A `Location` message, read field by field so that its lines go straight into the profile's form.
fn read_location(
    bytes: &[u8],
    mappings: &HashMap<u64, MappingId>,
    functions: &HashMap<u64, FunctionId>,
) -> Result<(u64, Location), FormatError> {
    let (mut id, mut mapping_id, mut address) = (0, 0, 0);
    let mut lines = Vec::new();
    // Reported once the id is known: fields may come in any order.
    let mut missing = None;
    for field in Fields::new(bytes) {
        let (tag, value) = field.map_err(|e| wire_error("location", e))?;
        match tag {
            1 => id = int(tag, value, "location")?,
            2 => mapping_id = int(tag, value, "location")?,
            3 => address = int(tag, value, "location")?,
            4 => {
                let line = proto::Line::decode(message(tag, value, "location line")?)?;
                match functions.get(&line.function_id) {
                    Some(&function) => lines.push(Line {
                        function,
                        line: u32::try_from(line.line).unwrap_or(0),
                    }),
                    None => missing = missing.or(Some(line.function_id)),
                }
            }
            _ => {}
        }
    }
    if let Some(f) = missing {
        return Err(corrupt(format!(
            "location {id} refers to missing function {f}"
        )));
    }
    let mapping = match mapping_id {
        0 => None,
        m => Some(
            *mappings
                .get(&m)
                .ok_or_else(|| corrupt(format!("location {id} refers to missing mapping {m}")))?,
        ),
    };
    Ok((
        id,
        Location {
            mapping,
            address,
            lines,
        },
    ))
}

/// Samples read one at a time, with the buffers they reuse and the running totals that keep them sane.
struct Samples {
    value_count: usize,
    count_index: Option<usize>,
    period_index: usize,
    /// Where the switch-outs, blocked and runnable time are, when the file has them.
    off_cpu_indexes: Option<[usize; 3]>,
    /// Where the contentions and their delay are, when the file has them.
    lock_indexes: Option<[usize; 2]>,
    /// The profile's `period`, to derive counts when no value is a count.
    period: i64,
    stack: Vec<LocationId>,
    values: Vec<i64>,
    /// Frames the samples expand to so far (see `MAX_FRAMES`).
    frames: u64,
    /// Counts and periods so far: every sum a query makes is a sum of some of these, so refusing a file whose
    /// totals pass `u64::MAX` keeps every percentage a share of a true total.
    count: u64,
    total: u64,
    index: usize,
}

impl Samples {
    fn add(
        &mut self,
        bytes: &[u8],
        table: &Table<'_>,
        locations: &HashMap<u64, (LocationId, u64)>,
        profile: &mut Profile,
    ) -> Result<(), FormatError> {
        let i = self.index;
        self.index += 1;
        self.stack.clear();
        self.values.clear();
        let (mut pid, mut tid, mut comm) = (0u32, 0u32, None);
        let (mut process, mut program) = (None, None);
        let (mut role, mut lock_name, mut lock_address, mut lock_first) = (None, None, None, false);
        for field in Fields::new(bytes) {
            let (tag, value) = field.map_err(|e| wire_error("sample", e))?;
            match tag {
                1 => {
                    for id in wire::varints(value) {
                        let id = id.map_err(|e| wire_error("sample", e))?;
                        let &(location, frames) = locations.get(&id).ok_or_else(|| {
                            corrupt(format!("sample {i} refers to missing location {id}"))
                        })?;
                        self.frames = self.frames.saturating_add(frames);
                        if self.frames > MAX_FRAMES {
                            return Err(FormatError::TooManyFrames { limit: MAX_FRAMES });
                        }
                        self.stack.push(location);
                    }
                }
                2 => {
                    for v in wire::varints(value) {
                        self.values
                            .push(v.map_err(|e| wire_error("sample", e))? as i64);
                        if self.values.len() > self.value_count {
                            return Err(corrupt(format!(
                                "sample {i} has more values than the {} sample types",
                                self.value_count
                            )));
                        }
                    }
                }
                3 => {
                    let label = proto::Label::decode(message(tag, value, "label")?)?;
                    let key = table.get(label.key, "label key")?;
                    let text = table.get(label.str, "label value")?;
                    let num = u32::try_from(label.num).unwrap_or(0);
                    match label_role(key) {
                        Some(LabelRole::Pid) => pid = num,
                        Some(LabelRole::Tid) => tid = num,
                        Some(LabelRole::Comm) if !text.is_empty() => comm = Some(text),
                        Some(LabelRole::Process) if !text.is_empty() => process = Some(text),
                        Some(LabelRole::Program) if !text.is_empty() => program = Some(text),
                        Some(LabelRole::Role) => role = Role::from_name(text),
                        Some(LabelRole::Lock) if !text.is_empty() => lock_name = Some(text),
                        Some(LabelRole::LockAddress) => {
                            lock_address = u64::try_from(label.num).ok()
                        }
                        Some(LabelRole::LockFirst) => lock_first = label.num != 0,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if self.values.len() != self.value_count {
            return Err(self.value_mismatch(i));
        }
        // Negative values mean nothing for a sampling profile: they count as 0.
        let period = u64::try_from(self.values[self.period_index]).unwrap_or(0);
        let count = match self.count_index {
            Some(c) => u64::try_from(self.values[c]).unwrap_or(0),
            None if self.period > 0 => (period / self.period as u64).max(1),
            None => 1,
        };
        let value = |i: usize| u64::try_from(self.values[i]).unwrap_or(0);
        let [switches, blocked, runnable] = self.off_cpu_indexes.map_or([0; 3], |ix| ix.map(value));
        let [contentions, delay] = self.lock_indexes.map_or([0; 2], |ix| ix.map(value));
        // Off-CPU time adds to the totals checked: the wall view sums it with the period. Lock waits too,
        // though no view sums them with anything: every total stays a true one.
        let (Some(total), Some(all)) = (
            [period, blocked, runnable, delay]
                .into_iter()
                .try_fold(self.total, u64::checked_add),
            [count, switches, contentions]
                .into_iter()
                .try_fold(self.count, u64::checked_add),
        ) else {
            return Err(FormatError::ValuesOverflow { sample: i });
        };
        (self.total, self.count) = (total, all);
        if let Some(name) = process {
            profile.set_program(pid, name, program);
        }
        let comm = profile.intern(comm.unwrap_or("[unknown]"));
        let mut values = Values {
            count,
            period,
            switches,
            blocked,
            runnable,
            ..Values::default()
        };
        if contentions == 0 && delay == 0 {
            profile.add_sample_values(&self.stack, pid, tid, comm, values);
            return Ok(());
        }
        // A lock's waits: by its address when the file gives it, else by its name if that is an address.
        let address = lock_address.or_else(|| {
            let hex = lock_name?.strip_prefix("0x")?;
            u64::from_str_radix(hex, 16).ok()
        });
        let lock = address.map(|a| profile.add_lock(pid, a));
        if let (Some(id), Some(name), None) =
            (lock, lock_name, lock.and_then(|l| profile.lock(l)?.symbol))
        {
            if !name.starts_with("0x") {
                profile.set_lock_symbol(id, name, None);
            }
        }
        match role {
            Some(Role::Holder) => {
                values.caused_contentions = contentions;
                values.caused_delay = delay;
            }
            // Go's block and mutex profiles have no role: their delays are read as waits.
            Some(Role::Waiter) | None => {
                values.contentions = contentions;
                values.delay = delay;
            }
        }
        let leaf = profile.add_lock_values(&self.stack, (pid, tid, comm), lock, values);
        if let (Some(id), true) = (lock, lock_first) {
            profile.set_lock_details(id, 0, leaf);
        }
        Ok(())
    }

    fn value_mismatch(&self, i: usize) -> FormatError {
        corrupt(format!(
            "sample {i} has {} values for {} sample types",
            self.values.len(),
            self.value_count
        ))
    }
}

/// What a sample label means, by its key: ours first, then common spellings of other tools.
enum LabelRole {
    Pid,
    Tid,
    Comm,
    Process,
    Program,
    Role,
    Lock,
    LockAddress,
    LockFirst,
}

fn label_role(key: &str) -> Option<LabelRole> {
    match key {
        "pid" | "process_id" => Some(LabelRole::Pid),
        "tid" | "thread_id" => Some(LabelRole::Tid),
        "comm" | "thread_name" | "process_name" => Some(LabelRole::Comm),
        "process" => Some(LabelRole::Process),
        "program" => Some(LabelRole::Program),
        super::ROLE_LABEL => Some(LabelRole::Role),
        super::LOCK_LABEL => Some(LabelRole::Lock),
        super::LOCK_ADDRESS_LABEL => Some(LabelRole::LockAddress),
        super::LOCK_FIRST_LABEL => Some(LabelRole::LockFirst),
        _ => None,
    }
}
