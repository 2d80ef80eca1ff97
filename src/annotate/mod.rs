//! Annotate: one function's disassembly and source lines with the share of its samples on each, for
//! `stacktop annotate SYM` and the TUI's `a` key.
//!
//! Owns: choosing the samples (the function's self samples), mapping their addresses to instructions and
//! source lines, and the interleaved view both outputs draw ([`Annotation::lines`]). Leaves to others: reading
//! files ([`CodeSource`]; [`ElfCode`] is the implementation that opens them, the only I/O here), printing
//! (`render::annotate` for text, `tui` for the screen).
//!
//! Which samples: those whose innermost frame's machine code belongs to SYM, that is whose leaf location's
//! outermost (non-inline) line is SYM, as perf annotate counts a symbol's samples. Code inlined into SYM counts
//! for SYM and shows the inlined function's source lines. A function that only ever appears inlined has no code
//! of its own to show: the error names the functions it was inlined into.
//!
//! Addresses (see `crate::addr`): a location keeps the sampled AVMA; the mapping turns it into a file offset
//! and the ELF segments into the SVMA that disassembly and DWARF use:
//! ```text
//!   avma ── - mapping.start + mapping.offset ──> file offset ── - p_offset + p_vaddr ──> svma
//! ```
//! A sample is charged to the instruction whose byte range contains its address (a caller's `ra - 1` lies
//! inside its call instruction; a leaf's IP is an instruction's first byte).
//!
//! Shares are of the function's event count (period), as perf's "percent: local period". A source row's share
//! is that of the instructions under it, up to the next source row; rows and instructions each sum to 100%
//! (less what fell outside the symbol, reported in `outside`). Disassembly is AT&T syntax (objdump's and perf's).

mod disasm;
mod loader;
mod view;

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

pub use disasm::{disassemble, Decoded};
pub use loader::ElfCode;
use view::build_view;

use crate::addr::{FileOffset, Svma};
use crate::profile::query::{close_matches, filtered_samples, percent, Filter, Matcher, Weight};
use crate::profile::{LocationId, Profile};
use crate::symbolize::{offset_to_svma, DebugInfo, Frame, FunctionSymbol, ModuleSpec, Segment};

/// A row is hot at or above this share of the function (the hottest rows are hot whatever their share).
pub const HOT_PERCENT: f64 = 5.0;

/// A module's files could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("cannot read {path}: {reason}")]
    Missing { path: String, reason: String },
    #[error("{path} is not the binary that was profiled (build-id {found}, recorded {expected})")]
    BuildIdMismatch {
        path: String,
        expected: String,
        found: String,
    },
    #[error("{path} is not a file (no code to show)")]
    NotAFile { path: String },
}

/// Why a function cannot be annotated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnotateError {
    #[error("no function {wanted} in the profile{}", close_list(.close))]
    NotFound { wanted: String, close: Vec<String> },
    /// `into` lists the functions whose code holds it, most self samples first: the TUI can annotate `into[0]`.
    #[error("{wanted} has no code of its own: it was inlined into {}; annotate one of those", .into.join(", "))]
    OnlyInlined { wanted: String, into: Vec<String> },
    #[error("{function} is in the kernel; annotating kernel code is not supported")]
    Kernel { function: String },
    #[error("{function} has no module file to read ({module})")]
    NoModule { function: String, module: String },
    #[error("cannot annotate {function}")]
    Code {
        function: String,
        #[source]
        source: CodeError,
    },
    #[error("no symbol for {function} in {path}, so its code cannot be found")]
    NoSymbol { function: String, path: String },
}

fn close_list(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" (close matches: {})", close.join(", "))
    }
}

/// A loaded module, as annotate needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The file actually read.
    pub opened: String,
    pub debug_info: DebugInfo,
    pub segments: Vec<Segment>,
}

/// What annotate reads from a module's files. [`ElfCode`] reads real files; tests give fixed bytes.
pub trait CodeSource {
    /// Opens `module`, checking its build-id against the recorded one.
    fn open(&mut self, module: &ModuleSpec) -> Result<ModuleInfo, CodeError>;
    /// The function symbol containing `svma`.
    fn function_at(&mut self, module: &ModuleSpec, svma: Svma) -> Option<FunctionSymbol>;
    /// The function symbols named `name` (as the profile names functions).
    fn functions_named(&mut self, module: &ModuleSpec, name: &str) -> Vec<FunctionSymbol>;
    /// `len` bytes of code at `start`.
    fn bytes(&mut self, module: &ModuleSpec, start: Svma, len: u64) -> Option<Vec<u8>>;
    /// Frames at `svma`, innermost inline first (DWARF); file and line are absent without debug info.
    fn frames(&mut self, module: &ModuleSpec, svma: Svma) -> Vec<Frame>;
    /// The lines of a source file, tabs expanded, when it can be read.
    fn source(&mut self, path: &str) -> Option<Arc<[String]>>;
}

/// One instruction of the function.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    pub address: Svma,
    pub bytes: Vec<u8>,
    /// AT&T syntax.
    pub text: String,
    /// Self samples on this instruction.
    pub weight: Weight,
    /// Share of the function's period, percent.
    pub share: f64,
    /// Source frames at this address, innermost inline first (empty without debug info).
    pub frames: Vec<Frame>,
}

/// A source line's total over the whole function (its instructions may be scattered).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceShare {
    pub file: String,
    pub line: u32,
    /// The line's text, when the source file is readable.
    pub text: Option<String>,
    pub weight: Weight,
    pub share: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A source line, heading the instructions generated for it that follow.
    Source,
    /// One instruction.
    Asm,
}

/// One row of the view: what the TUI draws and the text output prints, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewLine {
    pub kind: LineKind,
    /// The instruction's address (asm rows).
    pub address: Option<Svma>,
    /// Index into `Annotation::instructions` (asm rows).
    pub instruction: Option<usize>,
    /// Source file and line (source rows).
    pub file: Option<String>,
    pub line: u32,
    /// Function of the source line when it is not the annotated one (code inlined from it).
    pub inlined_from: Option<String>,
    /// Asm: the disassembly. Source: the line's text, or empty when the file is unreadable. Unsanitized.
    pub text: String,
    pub weight: Weight,
    /// Percent of the function's period: the instruction's, or the instructions' under a source row.
    pub share: f64,
    /// At or above `HOT_PERCENT`, or the hottest row of its kind.
    pub hot: bool,
    /// The hottest row of its kind (one source row, one asm row).
    pub hottest: bool,
}

/// A function's annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// As the profile names it (unsanitized).
    pub function: String,
    /// The mapping's path as recorded.
    pub module: String,
    pub build_id: Option<String>,
    /// The file read.
    pub opened: String,
    pub debug_info: DebugInfo,
    pub start: Svma,
    pub size: u64,
    /// The function's self samples (the 100% of every share).
    pub samples: Weight,
    /// Every sample that passed the filter.
    pub total: Weight,
    /// Self samples whose address is not inside the symbol's instructions (a stale or odd symbol table).
    pub outside: Weight,
    pub instructions: Vec<Instruction>,
    /// Per source line over the function, hottest first (empty without debug info).
    pub sources: Vec<SourceShare>,
    pub lines: Vec<ViewLine>,
    /// Indices into `lines` of the hot rows, in display order: where "next hot line" jumps.
    pub hot_lines: Vec<usize>,
    /// Index into `lines` of the hottest instruction, and of the hottest source row.
    pub hottest: Option<usize>,
    pub hottest_source: Option<usize>,
    /// Things the reader should know (no debug info, other modules with the same name, ...).
    pub notes: Vec<String>,
}

impl Annotation {
    /// The next hot row after `row`, wrapping around; `None` when there is none.
    pub fn next_hot(&self, row: usize) -> Option<usize> {
        self.hot_lines
            .iter()
            .copied()
            .find(|&i| i > row)
            .or_else(|| self.hot_lines.first().copied())
    }

    /// The previous hot row before `row`, wrapping around.
    pub fn prev_hot(&self, row: usize) -> Option<usize> {
        self.hot_lines
            .iter()
            .rev()
            .copied()
            .find(|&i| i < row)
            .or_else(|| self.hot_lines.last().copied())
    }

    /// Percent of all samples that are this function's.
    pub fn percent_of_all(&self) -> f64 {
        percent(self.samples.period, self.total.period)
    }
}

/// The module key annotate groups by: path and build-id.
type ModuleGroup = (String, Option<String>);

/// Annotates the function `matcher` selects, from the self samples that pass `filter` (labels, and
/// `filter.modules` to pick one of several same-named functions; otherwise the one with the most samples is
/// shown and the others are named in `notes`). A function with no self samples but on stacks shows its code
/// with zero shares.
pub fn annotate(
    profile: &Profile,
    matcher: &Matcher,
    filter: &Filter,
    code: &mut dyn CodeSource,
) -> Result<Annotation, AnnotateError> {
    let samples = filtered_samples(profile, filter, false);
    let mut total = Weight::default();
    // Self weight per (module, function name), per location.
    let mut own: BTreeMap<(ModuleGroup, String), HashMap<LocationId, Weight>> = BTreeMap::new();
    for s in &samples {
        add(&mut total, s.group.count, s.group.period);
        let Some(leaf) = s.frames.first() else {
            continue;
        };
        let Some(name) = owner_name(profile, leaf.location) else {
            continue;
        };
        if matcher.matches_name(name)
            && filter.accepts_module(profile, &profile.module_key(leaf.location))
        {
            let key = (module_group(profile, leaf.location), name.to_owned());
            let w = own
                .entry(key)
                .or_default()
                .entry(leaf.location)
                .or_default();
            add(w, s.group.count, s.group.period);
        }
    }
    let mut notes = Vec::new();
    let (key, locations) = match pick_hottest(&own) {
        Some(key) => {
            let locations = own.get(&key).cloned().unwrap_or_default();
            (key, locations)
        }
        None => (code_without_samples(profile, matcher)?, HashMap::new()),
    };
    for other in own.keys().filter(|k| **k != key) {
        notes.push(format!(
            "{} in {} also has samples; only {} is shown",
            other.1, other.0 .0, key.0 .0
        ));
    }
    let ((module, build_id), function) = key;
    if locations.is_empty() {
        notes.push(format!(
            "{function} has no self samples (it appears only as a caller)"
        ));
    }
    let mapping = profile
        .locations
        .iter()
        .filter(|l| {
            l.lines
                .last()
                .is_some_and(|line| profile.str(profile.function(line.function).name) == function)
        })
        .filter_map(|l| l.mapping)
        .map(|m| profile.mapping(m))
        .find(|m| {
            profile.str(m.path) == module
                && m.build_id.map(|b| profile.str(b).to_owned()) == build_id
        });
    let Some(mapping) = mapping else {
        return Err(AnnotateError::NoModule { function, module });
    };
    if mapping.kernel {
        return Err(AnnotateError::Kernel { function });
    }
    let spec = ModuleSpec {
        path: module.clone(),
        build_id: build_id.as_deref().and_then(hex_bytes),
        pid: None,
        map_start: mapping.start,
        map_end: mapping.limit,
    };
    let info = code.open(&spec).map_err(|source| AnnotateError::Code {
        function: function.clone(),
        source,
    })?;

    // Sampled SVMAs. Each location carries its own mapping: the same module mapped at different addresses in
    // different processes lands on the same SVMA.
    let mut by_svma: BTreeMap<u64, Weight> = BTreeMap::new();
    let mut samples_w = Weight::default();
    let mut outside = Weight::default();
    for (&loc, w) in &locations {
        add(&mut samples_w, w.count, w.period);
        let location = profile.location(loc);
        let svma = location.mapping.map(|m| profile.mapping(m)).and_then(|m| {
            let off = location
                .address
                .wrapping_sub(m.start)
                .wrapping_add(m.offset);
            offset_to_svma(&info.segments, FileOffset(off))
        });
        match svma {
            Some(svma) => add(by_svma.entry(svma.0).or_default(), w.count, w.period),
            None => add(&mut outside, w.count, w.period),
        }
    }
    let hottest_svma = by_svma
        .iter()
        .max_by(|a, b| a.1.period.cmp(&b.1.period).then(b.0.cmp(a.0)))
        .map(|(&a, _)| Svma(a));
    let symbol = hottest_svma
        .and_then(|svma| code.function_at(&spec, svma))
        .or_else(|| code.functions_named(&spec, &function).into_iter().next());
    let Some(symbol) = symbol else {
        return Err(AnnotateError::NoSymbol {
            function,
            path: info.opened,
        });
    };
    let bytes = code
        .bytes(&spec, symbol.start, symbol.size)
        .ok_or_else(|| AnnotateError::Code {
            function: function.clone(),
            source: CodeError::Missing {
                path: info.opened.clone(),
                reason: format!(
                    "no file bytes at {:#x}..{:#x}",
                    symbol.start.0,
                    symbol.start.0.saturating_add(symbol.size)
                ),
            },
        })?;
    let mut name_at = |addr: u64| {
        if addr >= symbol.start.0 && addr - symbol.start.0 < symbol.size {
            return Some(offset_name(&symbol.name, addr - symbol.start.0));
        }
        code.function_at(&spec, Svma(addr))
            .map(|f| offset_name(&f.name, addr.wrapping_sub(f.start.0)))
    };
    let decoded = disassemble(&bytes, symbol.start.0, &mut name_at);

    let debug = info.debug_info != DebugInfo::None;
    let mut instructions: Vec<Instruction> = decoded
        .into_iter()
        .map(|d| Instruction {
            address: Svma(d.address),
            frames: if debug {
                code.frames(&spec, Svma(d.address))
            } else {
                Vec::new()
            },
            bytes: d.bytes,
            text: d.text,
            weight: Weight::default(),
            share: 0.0,
        })
        .collect();
    for (&svma, w) in &by_svma {
        let i = instructions.partition_point(|ins| ins.address.0 <= svma);
        match i.checked_sub(1).map(|i| (i, &mut instructions[i])) {
            Some((_, ins)) if svma - ins.address.0 < ins.bytes.len() as u64 => {
                add(&mut ins.weight, w.count, w.period)
            }
            _ => add(&mut outside, w.count, w.period),
        }
    }
    for ins in &mut instructions {
        ins.share = percent(ins.weight.period, samples_w.period);
    }
    if !debug {
        notes.push(format!(
            "no debug info for {}: disassembly only",
            info.opened
        ));
    }
    if outside.count > 0 {
        notes.push(format!(
            "{} samples fell outside {}'s instructions",
            outside.count, symbol.name
        ));
    }
    let mut a = Annotation {
        function,
        module,
        build_id,
        opened: info.opened,
        debug_info: info.debug_info,
        start: symbol.start,
        size: symbol.size,
        samples: samples_w,
        total,
        outside,
        instructions,
        sources: Vec::new(),
        lines: Vec::new(),
        hot_lines: Vec::new(),
        hottest: None,
        hottest_source: None,
        notes,
    };
    build_view(&mut a, code);
    Ok(a)
}

fn add(w: &mut Weight, count: u64, period: u64) {
    w.count += count;
    w.period += period;
}

/// The function owning a location's machine code: its last (outermost, non-inline) line.
fn owner_name(profile: &Profile, location: LocationId) -> Option<&str> {
    let line = profile.location(location).lines.last()?;
    Some(profile.str(profile.function(line.function).name))
}

fn module_group(profile: &Profile, location: LocationId) -> ModuleGroup {
    match profile.location(location).mapping {
        Some(m) => {
            let m = profile.mapping(m);
            (
                profile.str(m.path).to_owned(),
                m.build_id.map(|b| profile.str(b).to_owned()),
            )
        }
        None => (crate::profile::query::UNKNOWN.to_owned(), None),
    }
}

fn pick_hottest(
    own: &BTreeMap<(ModuleGroup, String), HashMap<LocationId, Weight>>,
) -> Option<(ModuleGroup, String)> {
    own.iter()
        .map(|(k, locs)| (k, locs.values().map(|w| w.period).sum::<u64>()))
        // Hottest; ties go to the first key (the map is ordered), so the choice is deterministic.
        .fold(
            None,
            |best: Option<(&(ModuleGroup, String), u64)>, (k, p)| match best {
                Some((_, bp)) if bp >= p => best,
                _ => Some((k, p)),
            },
        )
        .map(|(k, _)| k.clone())
}

/// A function with no self samples: its code, if some location has it as owner (a caller); else the error
/// that says why not (only inlined, or not in the profile at all with close names).
fn code_without_samples(
    profile: &Profile,
    matcher: &Matcher,
) -> Result<(ModuleGroup, String), AnnotateError> {
    // Self period per leaf location, to list the functions it was inlined into hottest first.
    let mut leaf_period: HashMap<LocationId, u64> = HashMap::new();
    for group in &profile.samples {
        if let Some(leaf) = group.leaf {
            *leaf_period.entry(profile.node(leaf).location).or_default() += group.period;
        }
    }
    let mut inlined_into: Vec<(String, u64)> = Vec::new();
    for (i, location) in profile.locations.iter().enumerate() {
        let id = LocationId(i as u32);
        if let Some(name) = owner_name(profile, id) {
            if matcher.matches_name(name) {
                return Ok((module_group(profile, id), name.to_owned()));
            }
        }
        let inlined = location
            .lines
            .split_last()
            .map_or(&[][..], |(_, rest)| rest);
        if inlined
            .iter()
            .any(|l| matcher.matches_name(profile.str(profile.function(l.function).name)))
        {
            if let Some(owner) = owner_name(profile, id) {
                let period = leaf_period.get(&id).copied().unwrap_or(0);
                match inlined_into.iter_mut().find(|(n, _)| n == owner) {
                    Some((_, p)) => *p += period,
                    None => inlined_into.push((owner.to_owned(), period)),
                }
            }
        }
    }
    if !inlined_into.is_empty() {
        inlined_into.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        return Err(AnnotateError::OnlyInlined {
            wanted: matcher.to_string(),
            into: inlined_into.into_iter().map(|(n, _)| n).collect(),
        });
    }
    Err(AnnotateError::NotFound {
        wanted: matcher.to_string(),
        close: close_matches(profile, &matcher.to_string()),
    })
}

fn offset_name(name: &str, offset: u64) -> String {
    if offset == 0 {
        name.to_owned()
    } else {
        format!("{name}+{offset:#x}")
    }
}

pub(crate) fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
