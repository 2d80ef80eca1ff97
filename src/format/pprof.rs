//! pprof (`profile.proto`) out of and into a `Profile`.
//!
//! Written: sample values `samples/count` and the event total (`cpu/nanoseconds` for clock events, else
//! `EVENT/UNIT` from `Meta`); mappings with file name and build-id (the kernel is `[kernel.kallsyms]`);
//! locations with their address and inline frames as lines (innermost first, as pprof wants); functions with
//! names and source files; labels `pid`, `tid` (numbers), `comm` (the thread's name), `process` (its main
//! thread's name) and `program` (the path of the program it runs; both when known); the recording's metadata as
//! `key: value` comments (`command`, `event`, `frequency`, `call_graph`, `lost`, `throttled`, `note`), so that
//! reading the file back restores `Meta`. Gzipped when the path ends in `.gz`.
//!
//! Read: any valid pprof, gzipped (magic `1f 8b`) or not. Every id and string index is checked before the
//! `Profile` is built (its accessors index vectors), so a corrupt file is an error, never a panic. Files from
//! other tools may lack labels, functions or a count value; see `choose_values` for which value is used.

use foldhash::{HashMap, HashMapExt};
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use super::proto;
use super::FormatError;
use crate::profile::{Profile, Role};

mod read;
pub use read::{
    from_proto, plausible_start, read_pprof, read_pprof_file, MAX_DECOMPRESSED, MAX_FRAMES,
    MAX_RATIO, RATIO_FLOOR,
};

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
    // Off-CPU values, when recorded: their own sample types after the CPU ones, so that the default stays
    // CPU and `-sample_index=off-cpu` (or blocked, runnable, wall) picks each.
    let off_cpu = profile.meta.off_cpu.enabled || profile.has_off_cpu();
    let wall = off_cpu && unit == "nanoseconds";
    let mut sample_type = vec![samples_type, period_type.clone()];
    if off_cpu {
        for (t, u) in OFF_CPU_TYPES {
            sample_type.push(proto::ValueType {
                r#type: strings.get(t),
                unit: strings.get(u),
            });
        }
    }
    if wall {
        sample_type.push(proto::ValueType {
            r#type: strings.get(WALL_TYPE.0),
            unit: strings.get(WALL_TYPE.1),
        });
    }
    // Lock waits, when recorded: Go's own types, each sample labelled with its role and its lock, so that
    // `-sample_index=delay -tagfocus=role=waiter` is Go's block profile and `role=holder` its mutex profile.
    let locks = profile.meta.locks.enabled || profile.has_locks();
    if locks {
        for (t, u) in LOCK_TYPES {
            sample_type.push(proto::ValueType {
                r#type: strings.get(t),
                unit: strings.get(u),
            });
        }
    }

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
    // Only the functions some location names: a recording names each new address by a placeholder function
    // until its module is read at the end, then renames it, and the placeholders (one per address: 30,000 in
    // ten seconds of a Rust build) would be written for nothing. Ids are renumbered densely.
    let mut function_ids = vec![0u64; profile.functions.len()];
    for line in profile.locations.iter().flat_map(|l| &l.lines) {
        if let Some(id) = function_ids.get_mut(line.function.0 as usize) {
            *id = 1;
        }
    }
    let mut next = 0;
    for id in function_ids.iter_mut().filter(|id| **id != 0) {
        next += 1;
        *id = next;
    }
    let function = profile
        .functions
        .iter()
        .zip(&function_ids)
        .filter(|&(_, &id)| id != 0)
        .map(|(f, &id)| {
            let name = strings.get(profile.str(f.name));
            proto::Function {
                id,
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
                    function_id: function_ids
                        .get(line.function.0 as usize)
                        .copied()
                        .unwrap_or(0),
                    line: i64::from(line.line),
                    column: 0,
                })
                .collect(),
            is_folded: false,
        })
        .collect();
    let (pid, tid, comm) = (strings.get("pid"), strings.get("tid"), strings.get("comm"));
    let (process, program) = (strings.get("process"), strings.get("program"));
    let lock_keys = LockKeys {
        role: strings.get(ROLE_LABEL),
        lock: strings.get(LOCK_LABEL),
        address: strings.get(LOCK_ADDRESS_LABEL),
        first: strings.get(LOCK_FIRST_LABEL),
        waiter: strings.get(Role::Waiter.name()),
        holder: strings.get(Role::Holder.name()),
    };
    let mut first_marked = vec![false; profile.locks.len()];
    let mut sample = Vec::with_capacity(profile.samples.len());
    for s in &profile.samples {
        let mut label = vec![
            num_label(pid, s.pid),
            num_label(tid, s.tid),
            str_label(comm, strings.get(profile.str(s.comm))),
        ];
        if let Some(p) = profile.programs.get(&s.pid) {
            label.push(str_label(process, strings.get(profile.str(p.name))));
            if let Some(path) = p.path {
                label.push(str_label(program, strings.get(profile.str(path))));
            }
        }
        let location_id: Vec<u64> = profile.stack(s.leaf).map(|l| l.0 as u64 + 1).collect();
        let mut values = sample_values(s, off_cpu, wall);
        let has_lock_values =
            s.contentions > 0 || s.delay > 0 || s.caused_contentions > 0 || s.caused_delay > 0;
        if !has_lock_values {
            if locks {
                values.extend([0, 0]);
            }
            sample.push(proto::Sample {
                location_id,
                value: values,
                label,
            });
            continue;
        }
        // A group's CPU and off-CPU values (none, for the groups the recorder makes) go with its waits.
        let lock_label = s.lock.map(|id| {
            let name = strings.get(&profile.lock_label(id));
            let address = profile.lock(id).map_or(0, |l| l.address);
            (id, name, address)
        });
        for (role, contentions, delay) in [
            (lock_keys.waiter, s.contentions, s.delay),
            (lock_keys.holder, s.caused_contentions, s.caused_delay),
        ] {
            let cpu = std::mem::take(&mut values);
            if contentions == 0 && delay == 0 && cpu.iter().all(|&v| v == 0) {
                continue;
            }
            let mut value = if cpu.is_empty() {
                vec![0; sample_type.len() - 2]
            } else {
                cpu
            };
            value.extend([saturating_i64(contentions), saturating_i64(delay)]);
            let mut label = label.clone();
            label.push(str_label(lock_keys.role, role));
            if let Some((id, name, address)) = lock_label {
                label.push(str_label(lock_keys.lock, name));
                label.push(proto::Label {
                    key: lock_keys.address,
                    str: 0,
                    num: saturating_i64(address),
                    num_unit: 0,
                });
                let first = profile.lock(id).and_then(|l| l.first);
                if role == lock_keys.waiter && first == s.leaf && !first_marked[id.index()] {
                    first_marked[id.index()] = true;
                    label.push(proto::Label {
                        key: lock_keys.first,
                        str: 0,
                        num: 1,
                        num_unit: 0,
                    });
                }
            }
            sample.push(proto::Sample {
                location_id: location_id.clone(),
                value,
                label,
            });
        }
    }

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
    if meta.frameless > 0 {
        comments.push(format!("frameless: {}", meta.frameless));
    }
    if meta.off_cpu.enabled {
        comments.push(format!("off_cpu: {}", meta.off_cpu.to_comment()));
    }
    if locks {
        comments.push(format!("locks: {}", meta.locks.to_comment()));
        comments.extend(meta.locks.probes.iter().map(|p| format!("lock_probe: {p}")));
        comments.extend(profile.locks.iter().map(|l| {
            let name = |s: Option<crate::profile::StrId>| {
                s.map_or_else(String::new, |s| escape_field(profile.str(s)))
            };
            format!(
                "lock: {}\t{:#x}\t{}\t{}\t{}",
                l.pid,
                l.address,
                l.longest,
                name(l.symbol),
                name(l.module)
            )
        }));
    }
    if meta.continuation.ran_off > 0 {
        comments.push(format!("continuation: {}", meta.continuation.to_comment()));
    }
    if meta.short_copies.samples > 0 {
        comments.push(format!("short_copies: {}", meta.short_copies.to_comment()));
    }
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
        sample_type,
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

/// The off-CPU sample types, in the order written: switch-outs, then their time by kind and in all.
pub const OFF_CPU_TYPES: [(&str, &str); 4] = [
    ("switches", "count"),
    ("off-cpu", "nanoseconds"),
    ("blocked", "nanoseconds"),
    ("runnable", "nanoseconds"),
];
/// Lock waits, as Go's block and mutex profiles name them: the waits, and their time.
pub const LOCK_TYPES: [(&str, &str); 2] = [("contentions", "count"), ("delay", "nanoseconds")];
/// Labels of lock samples: the side (`waiter` or `holder`), the lock's name (symbol or address), its address
/// (a number), and a mark on the sample holding the first wait seen on the lock.
pub const ROLE_LABEL: &str = "role";
pub const LOCK_LABEL: &str = "lock";
pub const LOCK_ADDRESS_LABEL: &str = "lock_address";
pub const LOCK_FIRST_LABEL: &str = "lock_first";

/// A name in a tab-separated comment: backslashes, tabs and line ends escaped (see `read::unescape_field`).
fn escape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The string indexes of the lock labels' keys and role values.
struct LockKeys {
    role: i64,
    lock: i64,
    address: i64,
    first: i64,
    waiter: i64,
    holder: i64,
}

/// CPU and off-CPU time summed, written when the CPU value is nanoseconds too.
pub const WALL_TYPE: (&str, &str) = ("wall", "nanoseconds");

fn sample_values(s: &crate::profile::SampleGroup, off_cpu: bool, wall: bool) -> Vec<i64> {
    let mut values = vec![saturating_i64(s.count), saturating_i64(s.period)];
    if off_cpu {
        values.extend(
            [s.switches, s.off_cpu(), s.blocked, s.runnable]
                .into_iter()
                .map(saturating_i64),
        );
    }
    if wall {
        values.push(saturating_i64(s.period.saturating_add(s.off_cpu())));
    }
    values
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

fn str_label(key: i64, str: i64) -> proto::Label {
    proto::Label {
        key,
        str,
        num: 0,
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
        // The fastest level, as Go's runtime/pprof writes its profiles: compressing a rustc compile's 4.4 MB
        // profile at the default level (6) was 6 to 8% of `record`'s own CPU; the fastest takes half that
        // for a file 15 to 20% larger (0.8 -> 0.9 MB).
        let mut encoder = GzEncoder::new(w, Compression::fast());
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

#[cfg(test)]
#[path = "pprof_tests.rs"]
mod tests;
