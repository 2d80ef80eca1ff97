//! pprof (`profile.proto`) out of and into a `Profile`.
//!
//! Written: sample values `samples/count` and the event total (`cpu/nanoseconds` for clock events, else
//! `EVENT/UNIT` from `Meta`); mappings with file name and build-id (the kernel is `[kernel.kallsyms]`);
//! locations with their address and inline frames as lines (innermost first, as pprof wants); functions with
//! names and source files; labels `pid`, `tid` (numbers) and `comm` (string); the recording's metadata as
//! `key: value` comments (`command`, `event`, `frequency`, `call_graph`, `lost`, `throttled`, `note`), so that
//! reading the file back restores `Meta`. Gzipped when the path ends in `.gz`.
//!
//! Read: any valid pprof, gzipped (magic `1f 8b`) or not. Every id and string index is checked before the
//! `Profile` is built (its accessors index vectors), so a corrupt file is an error, never a panic. Files from
//! other tools may lack labels, functions or a count value; see `choose_values` for which value is used.

use foldhash::{HashMap, HashMapExt};
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use super::proto;
use super::FormatError;
use crate::profile::{
    Function, Line, Location, LocationId, Mapping, MappingId, Meta, ModuleUnwind, Profile,
};

/// Decompressed profiles larger than this are refused (a real profile is a few MiB; a gzip bomb is not).
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

// ---------------------------------------------------------------------------------------------------------
// Writing.

/// Builds pprof's string table: index 0 is "".
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings {
            table: Vec::new(),
            index: HashMap::new(),
        };
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// The pprof message for `profile`.
pub fn to_proto(profile: &Profile) -> proto::Profile {
    let mut strings = Strings::new();
    let meta = &profile.meta;
    let unit = if meta.period_unit.is_empty() {
        "events"
    } else {
        meta.period_unit.as_str()
    };
    let value_name = if unit == "nanoseconds" {
        "cpu"
    } else if meta.event.is_empty() {
        "events"
    } else {
        meta.event.as_str()
    };
    let samples_type = proto::ValueType {
        r#type: strings.get("samples"),
        unit: strings.get("count"),
    };
    let period_type = proto::ValueType {
        r#type: strings.get(value_name),
        unit: strings.get(unit),
    };

    let mut mapping_has_functions = vec![false; profile.mappings.len()];
    for location in &profile.locations {
        if let Some(m) = location.mapping {
            if !location.lines.is_empty() {
                if let Some(flag) = mapping_has_functions.get_mut(m.index()) {
                    *flag = true;
                }
            }
        }
    }
    let mut mapping: Vec<proto::Mapping> = profile
        .mappings
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let has = mapping_has_functions[i];
            proto::Mapping {
                id: i as u64 + 1,
                memory_start: m.start,
                memory_limit: m.limit,
                file_offset: m.offset,
                filename: strings.get(profile.str(m.path)),
                build_id: m.build_id.map_or(0, |b| strings.get(profile.str(b))),
                has_functions: has,
                has_filenames: has,
                has_line_numbers: has,
                has_inline_frames: has,
            }
        })
        .collect();
    // pprof takes the first mapping for the main binary (its "File:" line, its symbolization guesses).
    if let Some(main) = main_mapping(profile) {
        let m = mapping.remove(main);
        mapping.insert(0, m);
    }
    let function = profile
        .functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = strings.get(profile.str(f.name));
            proto::Function {
                id: i as u64 + 1,
                name,
                system_name: name,
                filename: f.file.map_or(0, |s| strings.get(profile.str(s))),
                start_line: 0,
            }
        })
        .collect();
    let location = profile
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| proto::Location {
            id: i as u64 + 1,
            mapping_id: l.mapping.map_or(0, |m| m.0 as u64 + 1),
            address: l.address,
            line: l
                .lines
                .iter()
                .map(|line| proto::Line {
                    function_id: line.function.0 as u64 + 1,
                    line: i64::from(line.line),
                    column: 0,
                })
                .collect(),
            is_folded: false,
        })
        .collect();
    let (pid, tid, comm) = (strings.get("pid"), strings.get("tid"), strings.get("comm"));
    let sample = profile
        .samples
        .iter()
        .map(|s| proto::Sample {
            location_id: profile.stack(s.leaf).map(|l| l.0 as u64 + 1).collect(),
            value: vec![saturating_i64(s.count), saturating_i64(s.period)],
            label: vec![
                num_label(pid, s.pid),
                num_label(tid, s.tid),
                proto::Label {
                    key: comm,
                    str: strings.get(profile.str(s.comm)),
                    num: 0,
                    num_unit: 0,
                },
            ],
        })
        .collect();

    let mut comments = vec![
        format!("command: {}", meta.command_line),
        format!("event: {}", meta.event),
    ];
    comments.push(format!("frequency: {}", meta.frequency));
    comments.push(format!("call_graph: {}", meta.call_graph));
    comments.push(format!("lost: {}", meta.lost));
    comments.push(format!("throttled: {}", meta.throttled));
    comments.push(format!("truncated: {}", meta.truncated));
    comments.push(format!("fell_back: {}", meta.fell_back));
    comments.extend(
        meta.unwind_modules
            .iter()
            .map(|m| format!("unwind_module: {}", m.to_comment())),
    );
    comments.extend(meta.notes.iter().map(|n| format!("note: {n}")));
    let comment = comments.iter().map(|c| strings.get(c)).collect();
    let period = if unit == "nanoseconds" && meta.frequency > 0 {
        1_000_000_000 / meta.frequency as i64
    } else {
        0
    };
    let default_sample_type = period_type.r#type;
    proto::Profile {
        sample_type: vec![samples_type, period_type.clone()],
        sample,
        mapping,
        location,
        function,
        string_table: strings.table,
        drop_frames: 0,
        keep_frames: 0,
        time_nanos: meta.time_nanos,
        duration_nanos: meta.duration_nanos,
        period_type: Some(period_type),
        period,
        comment,
        default_sample_type,
    }
}

/// The mapping most likely to be the main executable: the first that is neither the kernel, nor a
/// pseudo-file like `[vdso]`, nor a shared library.
fn main_mapping(profile: &Profile) -> Option<usize> {
    profile.mappings.iter().position(|m| {
        let path = profile.str(m.path);
        let name = path.rsplit('/').next().unwrap_or(path);
        !m.kernel && !path.starts_with('[') && !name.ends_with(".so") && !name.contains(".so.")
    })
}

fn num_label(key: i64, num: u32) -> proto::Label {
    proto::Label {
        key,
        str: 0,
        num: i64::from(num),
        num_unit: 0,
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Writes `profile` as pprof to `w`, gzipped if `gzip`.
pub fn write_pprof(profile: &Profile, w: impl Write, gzip: bool) -> Result<(), FormatError> {
    let bytes = to_proto(profile).encode_to_vec();
    if gzip {
        let mut encoder = GzEncoder::new(w, Compression::default());
        encoder.write_all(&bytes)?;
        encoder.finish()?.flush()?;
    } else {
        let mut w = w;
        w.write_all(&bytes)?;
        w.flush()?;
    }
    Ok(())
}

/// Writes `profile` to `path`, gzipped when the path ends in `.gz`.
pub fn write_pprof_file(profile: &Profile, path: &Path) -> Result<(), FormatError> {
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let err = |source| FormatError::Write {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    match write_pprof(profile, std::io::BufWriter::new(file), gzip) {
        Err(FormatError::Io(source)) => Err(err(source)),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reading.

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
    let message = proto::Profile::decode(data)?;
    from_proto(&message)
}

/// Reads a pprof profile from a file.
pub fn read_pprof_file(path: &Path) -> Result<Profile, FormatError> {
    let bytes = std::fs::read(path).map_err(|source| FormatError::Read {
        path: path.to_owned(),
        source,
    })?;
    read_pprof(&bytes)
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::Corrupt(format!("gzip: {e}")))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(FormatError::TooLarge {
            limit: MAX_DECOMPRESSED,
        });
    }
    Ok(out)
}

fn corrupt(what: impl Into<String>) -> FormatError {
    FormatError::Corrupt(what.into())
}

/// Checked access to the string table.
struct Table<'a>(&'a [String]);

impl<'a> Table<'a> {
    fn get(&self, index: i64, what: &str) -> Result<&'a str, FormatError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                corrupt(format!(
                    "{what} refers to string {index}, past the string table"
                ))
            })
    }
}

/// Which sample values are the count and the period: `(count index, period index)`.
///
/// The period is pprof's `default_sample_type` when set, else the first `cpu`-like value (type `cpu`, unit
/// `nanoseconds`), else the last value (pprof's own default). The count is the value `samples/count` (or the
/// first with unit `count`); without one, the count is derived from the period (see `from_proto`).
fn choose_values(
    p: &proto::Profile,
    table: &Table<'_>,
) -> Result<(Option<usize>, usize), FormatError> {
    let mut types = Vec::new();
    for vt in &p.sample_type {
        types.push((
            table.get(vt.r#type, "sample type")?,
            table.get(vt.unit, "sample unit")?,
        ));
    }
    if types.is_empty() {
        return Err(corrupt("no sample types"));
    }
    let count = types
        .iter()
        .position(|&(t, u)| t == "samples" && u == "count")
        .or_else(|| types.iter().position(|&(_, u)| u == "count"));
    let default = if p.default_sample_type != 0 {
        let name = table.get(p.default_sample_type, "default sample type")?;
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
            ("unwind_module", _) => match ModuleUnwind::from_comment(value) {
                Some(m) => meta.unwind_modules.push(m),
                None => meta.notes.push((*comment).to_owned()),
            },
            _ => meta.notes.push((*comment).to_owned()),
        }
    }
    meta
}

/// Builds a `Profile` from a decoded message, validating every reference first.
pub fn from_proto(p: &proto::Profile) -> Result<Profile, FormatError> {
    let table = Table(&p.string_table);
    if p.string_table.first().is_some_and(|s| !s.is_empty()) {
        return Err(corrupt("string table does not start with the empty string"));
    }
    let (count_index, period_index) = choose_values(p, &table)?;
    let comments = p
        .comment
        .iter()
        .map(|&c| table.get(c, "comment"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut meta = meta_from_comments(&comments);
    let (value_type, value_unit) = {
        let vt = &p.sample_type[period_index];
        (
            table.get(vt.r#type, "sample type")?,
            table.get(vt.unit, "sample unit")?,
        )
    };
    if meta.event.is_empty() {
        meta.event = value_type.to_owned();
    }
    meta.period_unit = value_unit.to_owned();
    meta.time_nanos = p.time_nanos;
    meta.duration_nanos = p.duration_nanos;
    let mut profile = Profile::new(meta);

    let mut mappings: HashMap<u64, MappingId> = HashMap::new();
    for m in &p.mapping {
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
    }

    let mut functions = HashMap::new();
    for f in &p.function {
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
    }

    let mut locations: HashMap<u64, LocationId> = HashMap::new();
    for l in &p.location {
        if l.id == 0 || locations.contains_key(&l.id) {
            return Err(corrupt(format!("location id {} is zero or repeated", l.id)));
        }
        let mapping = match l.mapping_id {
            0 => None,
            id => Some(*mappings.get(&id).ok_or_else(|| {
                corrupt(format!("location {} refers to missing mapping {id}", l.id))
            })?),
        };
        let mut lines = Vec::with_capacity(l.line.len());
        for line in &l.line {
            let function = *functions.get(&line.function_id).ok_or_else(|| {
                corrupt(format!(
                    "location {} refers to missing function {}",
                    l.id, line.function_id
                ))
            })?;
            lines.push(Line {
                function,
                line: u32::try_from(line.line).unwrap_or(0),
            });
        }
        let location = Location {
            mapping,
            address: l.address,
            lines,
        };
        locations.insert(l.id, profile.add_location(location));
    }

    let mut stack = Vec::new();
    for (i, s) in p.sample.iter().enumerate() {
        if s.value.len() != p.sample_type.len() {
            return Err(corrupt(format!(
                "sample {i} has {} values for {} sample types",
                s.value.len(),
                p.sample_type.len()
            )));
        }
        stack.clear();
        for id in &s.location_id {
            stack.push(
                *locations.get(id).ok_or_else(|| {
                    corrupt(format!("sample {i} refers to missing location {id}"))
                })?,
            );
        }
        let period = u64::try_from(s.value[period_index]).unwrap_or(0);
        let count = match count_index {
            Some(c) => u64::try_from(s.value[c]).unwrap_or(0),
            None if p.period > 0 => (period / p.period as u64).max(1),
            None => 1,
        };
        let (mut pid, mut tid, mut comm) = (0u32, 0u32, None);
        for label in &s.label {
            let key = table.get(label.key, "label key")?;
            let text = table.get(label.str, "label value")?;
            let num = u32::try_from(label.num).unwrap_or(0);
            match label_role(key) {
                Some(LabelRole::Pid) => pid = num,
                Some(LabelRole::Tid) => tid = num,
                Some(LabelRole::Comm) if !text.is_empty() => comm = Some(text),
                _ => {}
            }
        }
        let comm = profile.intern(comm.unwrap_or("[unknown]"));
        profile.add_sample(&stack, pid, tid, comm, count, period);
    }
    Ok(profile)
}

/// What a sample label means, by its key: ours first, then common spellings of other tools.
enum LabelRole {
    Pid,
    Tid,
    Comm,
}

fn label_role(key: &str) -> Option<LabelRole> {
    match key {
        "pid" | "process_id" => Some(LabelRole::Pid),
        "tid" | "thread_id" => Some(LabelRole::Tid),
        "comm" | "thread_name" | "process_name" => Some(LabelRole::Comm),
        _ => None,
    }
}

#[cfg(test)]
#[path = "pprof_tests.rs"]
mod tests;
