//! A module's unwind tables (`.eh_frame`, `.eh_frame_hdr`, `.debug_frame`) read from its ELF bytes, and the
//! address math that places them in a process for framehop.
//!
//! ```text
//!   file offset f  ──(mapping: start S, pgoff P)──>  avma = S + (f - P)
//!   svma v in a PT_LOAD segment (p_offset, p_vaddr)  ──>  f = v - p_vaddr + p_offset
//!   so avma = v + bias, with bias = S - P + p_offset - p_vaddr        (wrapping arithmetic)
//! ```
//! `UnwindTables::parse` takes bytes, `UnwindTables::read` an open file of which it reads only the headers
//! and the tables (a large library is hundreds of megabytes, its tables a few percent); opening files is the
//! caller's business.
//!
//! The same tables also say, address by address, whether a frame-pointer chain can be trusted there
//! ([`UnwindTables::frame_kind`]), for the kernel's chains in fp mode and perf.data imports (`unwind::fpcheck`).

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use gimli::{
    BaseAddresses, CfaRule, CieOrFde, CommonInformationEntry, DebugFrame, EhFrame, EndianSlice,
    LittleEndian, RegisterRule, UnwindContext, UnwindOffset, UnwindSection, X86_64,
};
use object::read::ReadCache;
use object::{Architecture, Object, ObjectSection, ObjectSegment, ReadRef};

use crate::acquire::memory::{FileBytes, MappedFile, SharedBytes};
use crate::addr::{FileOffset, Svma};

/// The entry code [`UnwindTables::is_entry`] takes for the root of a stack: ld.so's `_start` is 8 bytes (`mov
/// %rsp,%rdi; call _dl_start`), glibc's crt1 `_start` 38.
const ENTRY_BYTES: u64 = 48;

/// How much of `.text` the frame-pointer heuristic reads: a sample of the functions is enough.
const TEXT_SAMPLE_BYTES: u64 = 4 << 20;

/// A shared slice of a module's bytes: many processes map the same library, its tables are read once. A
/// file's tables are read in place from its mapping (only the pages a walk touches become resident, and
/// they are the page cache's); bytes that came from memory (the vdso) or a file that could not be mapped
/// are owned.
pub type Bytes = SharedBytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("not an ELF file: {0}")]
    Parse(#[from] object::Error),
}

#[derive(Clone, Debug)]
struct Section {
    svma: Range<u64>,
    bytes: Bytes,
}

/// What framehop needs of one file.
#[derive(Clone, Debug)]
pub struct UnwindTables {
    base_svma: u64,
    text_svma: Option<Range<u64>>,
    eh_frame: Option<Section>,
    eh_frame_hdr: Option<Section>,
    /// `.eh_frame_hdr`'s binary-search table, when it has the usual layout (see [`SearchTable`]).
    search: Option<SearchTable>,
    debug_frame: Option<Bytes>,
    segments: Vec<Segment>,
    /// Whether the file has any CFI at all.
    pub has_tables: bool,
    /// Heuristic: most functions start with `push %rbp; mov %rsp,%rbp` (x86_64), i.e. the code keeps frame
    /// pointers. Decided from the text: the count of that prologue against the number of FDEs.
    pub has_frame_pointers: bool,
    /// The file is x86_64 code: [`UnwindTables::frame_kind`] knows its frame pointer (rbp).
    x86_64: bool,
    /// SVMA ranges of the PLT sections (`.plt`, `.plt.sec`, `.plt.got`): stubs that jump on without a frame.
    plt: Vec<Range<u64>>,
    /// The file's entry point (SVMA), where its program starts, when it has one.
    entry: Option<u64>,
}

/// What a module's CFI says of the frame of one address, for trusting a frame-pointer chain there.
///
/// ```text
///   a frame based at rbp (CFA = rbp + 16):     the kernel's walk from this frame:
///   ┌──────────────┐
///   │ return addr  │ rbp + 8   <- read as this frame's caller: right
///   │ saved rbp    │ rbp       <- followed to the caller's frame
///   └──────────────┘
///   any other frame (CFA = rsp + N): rbp still holds the caller's base (its caller is read: the caller is
///   skipped), or, in code built without frame pointers, whatever the code keeps in it (garbage callers)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// The CFA is rbp + 16 here: the chain finds this frame's caller.
    FramePointer,
    /// CFA from rsp here, in a function whose CFI bases its frame on rbp elsewhere (its prologue or
    /// epilogue, an early exit before its frame is set up), or in a PLT stub: any frame-pointer walk skips
    /// this frame's caller, however the module was built.
    Between,
    /// CFA from rsp in a function whose CFI never bases its frame on rbp: code built without frame pointers.
    /// Its caller is skipped, or the chain follows whatever the code keeps in rbp into garbage.
    Frameless,
    /// The CFI marks the outermost frame (its return address is undefined: `_start`, a new thread's first).
    Outermost,
    /// No CFI covers the address, or its rules are of another kind (a CFA expression, a realigned stack),
    /// or the file is not x86_64: nothing is claimed.
    Unknown,
}

/// The FDEs of a module's CFI sorted by start, to find the one covering an address without parsing the
/// others. Built by [`UnwindTables::fde_index`] in one pass over the FDEs (libc's 3,000 in well under a
/// millisecond), 24 bytes each.
#[derive(Clone, Debug, Default)]
pub struct FdeIndex {
    entries: Vec<FdeEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FdeEntry {
    start: u64,
    end: u64,
    /// Offset of the FDE in its section; the top bit set for `.debug_frame`.
    offset: u64,
}

const IN_DEBUG_FRAME: u64 = 1 << 63;

impl FdeIndex {
    fn lookup(&self, svma: u64) -> Option<FdeEntry> {
        let i = self
            .entries
            .partition_point(|e| e.start <= svma)
            .checked_sub(1)?;
        let e = *self.entries.get(i)?;
        (svma < e.end).then_some(e)
    }

    /// The start of the FDE (the function) covering `svma`.
    pub fn start_of(&self, svma: u64) -> Option<u64> {
        self.lookup(svma).map(|e| e.start)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `push %rbp; mov %rsp,%rbp`
const FP_PROLOGUE: [u8; 4] = [0x55, 0x48, 0x89, 0xe5];

impl UnwindTables {
    /// The tables of an ELF image in memory (the vdso, tests), parsed in place in a copy of it.
    pub fn parse(data: Arc<[u8]>) -> Result<UnwindTables, TablesError> {
        let bytes = Arc::new(FileBytes::Read(Box::from(&*data)));
        Self::parse_from(&**bytes, Some(&bytes))
    }

    /// Reads the tables of an open ELF file, and only them (and its headers). The file is mapped and its
    /// tables read in place: a large library's `.eh_frame` is megabytes (rustc's driver library's 18 MB, all
    /// of it on the heap when copied), of which a profile's walks touch the FDEs of the functions sampled.
    /// The pages the parse itself read (the search table checked whole, the start of the text) are handed
    /// back at its end. A file that cannot be mapped has its tables copied out.
    pub fn read(file: &File) -> Result<UnwindTables, TablesError> {
        match MappedFile::map(file) {
            Ok(mapped) => {
                let bytes = Arc::new(FileBytes::Mapped(mapped));
                let tables = Self::parse_from(&**bytes, Some(&bytes));
                bytes.release_pages();
                tables
            }
            Err(_) => Self::parse_from(&ReadCache::new(file), None),
        }
    }

    /// `in_place`: the bytes `data` reads, whose sections the tables then share; else each section is
    /// copied out, so the file's bytes can go.
    fn parse_from<'data, R: ReadRef<'data>>(
        data: R,
        in_place: Option<&Arc<FileBytes>>,
    ) -> Result<UnwindTables, TablesError> {
        let file = object::File::parse(data)?;
        let section = |name: &str| -> Option<Section> {
            let s = file.section_by_name(name)?;
            let bytes = match in_place {
                Some(whole) => {
                    let (offset, size) = s.file_range()?;
                    let start = usize::try_from(offset).ok()?;
                    let end = start.checked_add(usize::try_from(size).ok()?)?;
                    SharedBytes::new(whole, start..end)?
                }
                None => SharedBytes::owned(Box::from(s.data().ok()?)),
            };
            Some(Section {
                svma: s.address()..s.address().checked_add(s.size())?,
                bytes,
            })
        };
        // The start of the text only: read from a file, the whole of it would be read in.
        let text_bytes = file
            .section_by_name(".text")
            .and_then(|s| {
                let (offset, size) = s.file_range()?;
                data.read_bytes_at(offset, size.min(TEXT_SAMPLE_BYTES)).ok()
            })
            .unwrap_or(&[]);
        let text_svma = file
            .section_by_name(".text")
            .and_then(|s| Some(s.address()..s.address().checked_add(s.size())?));
        let eh_frame = section(".eh_frame");
        // framehop trusts the search table: an entry pointing outside `.eh_frame` makes gimli subtract past
        // zero. Without the table framehop indexes `.eh_frame` itself.
        let hdr = section(".eh_frame_hdr");
        let search = hdr.as_ref().and_then(|hdr| SearchTable::parse(&hdr.bytes));
        let eh_frame_hdr = hdr.filter(|hdr| {
            eh_frame
                .as_ref()
                .is_some_and(|eh| search_table_is_sound(hdr, search, eh))
        });
        let search = search.filter(|_| eh_frame_hdr.is_some());
        let debug_frame = section(".debug_frame").map(|s| s.bytes);
        let segments: Vec<Segment> = file
            .segments()
            .map(|s| {
                let (offset, filesz) = s.file_range();
                Segment {
                    offset,
                    vaddr: s.address(),
                    filesz,
                }
            })
            .collect();
        let base_svma = segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let has_tables = eh_frame.is_some() || debug_frame.is_some();
        let plt = [".plt", ".plt.sec", ".plt.got"]
            .iter()
            .filter_map(|name| {
                let s = file.section_by_name(name)?;
                Some(s.address()..s.address().checked_add(s.size())?)
            })
            .collect();
        let has_frame_pointers = match (text_bytes.is_empty(), &eh_frame) {
            (false, Some(eh)) => {
                let sampled = text_bytes
                    .windows(FP_PROLOGUE.len())
                    .filter(|w| *w == FP_PROLOGUE)
                    .count() as u64;
                // Scaled up to the whole text when only its start was read.
                let text_len = text_svma.as_ref().map_or(0, |t| t.end - t.start);
                let prologues =
                    sampled.saturating_mul(text_len.max(1)) / (text_bytes.len() as u64).max(1);
                // The search table counts the FDEs without reading `.eh_frame` (megabytes) page by page.
                let fdes = search
                    .as_ref()
                    .map_or_else(|| count_fdes(&eh.bytes), |t| t.count)
                    .max(1) as u64;
                prologues.saturating_mul(2) >= fdes
            }
            _ => false,
        };
        Ok(UnwindTables {
            base_svma,
            text_svma,
            eh_frame,
            eh_frame_hdr,
            search,
            debug_frame,
            segments,
            has_tables,
            has_frame_pointers,
            x86_64: file.architecture() == Architecture::X86_64,
            plt,
            entry: Some(file.entry()).filter(|&e| e != 0),
        })
    }

    /// Whether `svma` lies in the first instructions of the file's entry point: the outermost frame of a
    /// process's main thread when the entry code has no CFI (ld.so's `_start`, which calls `_dl_start`).
    pub fn is_entry(&self, svma: u64) -> bool {
        self.entry
            .is_some_and(|e| svma >= e && svma - e < ENTRY_BYTES)
    }

    /// The SVMA at which the byte at file offset `offset` is loaded (through the segment holding it).
    pub fn offset_to_svma(&self, offset: FileOffset) -> Option<Svma> {
        self.segments
            .iter()
            .find(|s| offset.0 >= s.offset && offset.0 - s.offset < s.filesz)
            .map(|s| Svma((offset.0 - s.offset).wrapping_add(s.vaddr)))
    }

    fn bases(&self) -> BaseAddresses {
        let mut bases = BaseAddresses::default();
        if let Some(eh) = &self.eh_frame {
            bases = bases.set_eh_frame(eh.svma.start);
        }
        if let Some(hdr) = &self.eh_frame_hdr {
            bases = bases.set_eh_frame_hdr(hdr.svma.start);
        }
        if let Some(text) = &self.text_svma {
            bases = bases.set_text(text.start);
        }
        bases
    }

    fn eh_frame_section(&self) -> Option<EhFrame<EndianSlice<'_, LittleEndian>>> {
        let mut section = EhFrame::new(&self.eh_frame.as_ref()?.bytes, LittleEndian);
        section.set_address_size(8);
        Some(section)
    }

    fn debug_frame_section(&self) -> Option<DebugFrame<EndianSlice<'_, LittleEndian>>> {
        let mut section = DebugFrame::new(self.debug_frame.as_deref()?, LittleEndian);
        section.set_address_size(8);
        Some(section)
    }

    /// The index of this module's FDEs, for [`UnwindTables::frame_kind`] (empty unless x86_64). Bytes that
    /// break the framing of the entries end the pass; an FDE that does not parse is left out.
    pub fn fde_index(&self) -> FdeIndex {
        let mut entries = Vec::new();
        if !self.x86_64 {
            return FdeIndex { entries };
        }
        let bases = self.bases();
        if let Some(section) = self.eh_frame_section() {
            index_fdes(&section, &bases, 0, &mut entries);
        }
        if let Some(section) = self.debug_frame_section() {
            index_fdes(&section, &bases, IN_DEBUG_FRAME, &mut entries);
        }
        entries.sort_unstable_by_key(|e| (e.start, e.end));
        FdeIndex { entries }
    }

    /// The start of the FDE (the function) covering `svma`, found through `.eh_frame_hdr`'s search table
    /// and the one FDE it points to; [`Covering::AskIndex`] when the module has no such table (then
    /// [`FdeIndex::start_of`] answers, as it would here).
    pub fn function_start(&self, svma: u64) -> Covering {
        let (Some(search), Some(hdr), Some(section)) = (
            self.search,
            self.eh_frame_hdr.as_ref(),
            self.eh_frame_section(),
        ) else {
            return Covering::AskIndex;
        };
        let initial = |i: usize| search.entry(&hdr.bytes, hdr.svma.start, i);
        // The last entry starting at or before `svma` (the table is sorted by initial location).
        let (mut lo, mut hi) = (0, search.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match initial(mid) {
                Some((start, _)) if start <= svma => lo = mid + 1,
                Some(_) => hi = mid,
                None => return Covering::Nothing,
            }
        }
        let Some((_, fde_svma)) = lo.checked_sub(1).and_then(initial) else {
            return Covering::Nothing;
        };
        let Some(offset) = self
            .eh_frame
            .as_ref()
            .and_then(|eh| fde_svma.checked_sub(eh.svma.start))
            .and_then(|o| usize::try_from(o).ok())
        else {
            return Covering::Nothing;
        };
        let fde = section.fde_from_offset(
            &self.bases(),
            gimli::EhFrameOffset(offset),
            EhFrame::cie_from_offset,
        );
        match fde {
            Ok(fde) if fde.contains(svma) => Covering::Fde(fde.initial_address()),
            _ => Covering::Nothing,
        }
    }

    /// What the CFI says of the frame at `svma` (see [`FrameKind`]); `index` is this module's
    /// [`fde_index`](UnwindTables::fde_index). Costs one FDE parsed and its CFI program run to the end (a few
    /// dozen instructions for a compiled function): callers keep the answer per address.
    pub fn frame_kind(&self, index: &FdeIndex, svma: Svma) -> FrameKind {
        if !self.x86_64 {
            return FrameKind::Unknown;
        }
        if self.plt.iter().any(|r| r.contains(&svma.0)) {
            return FrameKind::Between;
        }
        let Some(entry) = index.lookup(svma.0) else {
            return FrameKind::Unknown;
        };
        let bases = self.bases();
        let offset = usize::try_from(entry.offset & !IN_DEBUG_FRAME).unwrap_or(usize::MAX);
        let kind = if entry.offset & IN_DEBUG_FRAME != 0 {
            self.debug_frame_section()
                .and_then(|s| kind_of_frame(&s, &bases, offset, svma.0))
        } else {
            self.eh_frame_section()
                .and_then(|s| kind_of_frame(&s, &bases, offset, svma.0))
        };
        kind.unwrap_or(FrameKind::Unknown)
    }

    /// The load bias of a mapping of this file at `start` with file offset `pgoff`: `avma = svma + bias`.
    ///
    /// The segment is the one the kernel mapped at `pgoff`: its offset rounded down to a page is `pgoff`.
    /// Only where none is (an odd mapping) does a segment that merely contains `pgoff` do; the first such
    /// one can be wrong, since the page at `pgoff` often holds the tail of the previous segment as well.
    pub fn bias(&self, start: u64, pgoff: u64) -> Option<u64> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.filesz > 0 && s.offset & !0xfff == pgoff)
            .or_else(|| {
                self.segments.iter().find(|s| {
                    s.filesz > 0
                        && pgoff >= s.offset & !0xfff
                        && pgoff < s.offset.saturating_add(s.filesz)
                })
            })?;
        Some(
            start
                .wrapping_sub(pgoff)
                .wrapping_add(seg.offset)
                .wrapping_sub(seg.vaddr),
        )
    }

    /// The framehop module for a mapping `[start, end)` at file offset `pgoff`.
    pub fn module(
        &self,
        name: &str,
        start: u64,
        end: u64,
        pgoff: u64,
    ) -> Option<framehop::Module<Bytes>> {
        // framehop adds a 32-bit offset to `base_svma` unchecked: a file whose segments sit at the very top
        // of the address space (no real one does) is left without tables rather than overflow there.
        self.base_svma.checked_add(u64::from(u32::MAX))?;
        let bias = self.bias(start, pgoff)?;
        let info = framehop::ExplicitModuleSectionInfo {
            base_svma: self.base_svma,
            text_svma: self.text_svma.clone(),
            text: None,
            eh_frame_svma: self.eh_frame.as_ref().map(|s| s.svma.clone()),
            eh_frame: self.eh_frame.as_ref().map(|s| s.bytes.clone()),
            eh_frame_hdr_svma: self.eh_frame_hdr.as_ref().map(|s| s.svma.clone()),
            eh_frame_hdr: self.eh_frame_hdr.as_ref().map(|s| s.bytes.clone()),
            debug_frame: self.debug_frame.clone(),
            stubs_svma: None,
            stub_helper_svma: None,
            got_svma: None,
            unwind_info: None,
            text_segment_svma: None,
            text_segment: None,
        };
        Some(framehop::Module::new(
            name.to_owned(),
            start..end,
            self.base_svma.wrapping_add(bias),
            info,
        ))
    }
}

/// Whether every entry of `.eh_frame_hdr`'s binary-search table points into `.eh_frame`, at or after the
/// header's own `eh_frame_ptr` (where gimli turns pointers into offsets by subtracting it). A header without a
/// table is sound: lookups through it find nothing. `search`: the table read in the usual layout, if it is.
fn search_table_is_sound(hdr: &Section, search: Option<SearchTable>, eh_frame: &Section) -> bool {
    use gimli::{BaseAddresses, EhFrameHdr, LittleEndian, Pointer};
    let bases = BaseAddresses::default()
        .set_eh_frame_hdr(hdr.svma.start)
        .set_eh_frame(eh_frame.svma.start);
    let Ok(parsed) = EhFrameHdr::new(&hdr.bytes, LittleEndian).parse(&bases, 8) else {
        return false;
    };
    let Pointer::Direct(floor) = parsed.eh_frame_ptr() else {
        return false;
    };
    let Some(table) = parsed.table() else {
        return true;
    };
    let floor = floor.max(eh_frame.svma.start);
    // The usual layout is checked with plain arithmetic: gimli decodes each of a large library's hundreds of
    // thousands of entries through its general pointer decoder.
    if let Some(search) = search {
        return (0..search.count).all(|i| {
            search
                .entry(&hdr.bytes, hdr.svma.start, i)
                .is_some_and(|(_, fde)| fde >= floor && fde < eh_frame.svma.end)
        });
    }
    let mut entries = table.iter(&bases);
    loop {
        match entries.next() {
            Ok(Some((_, Pointer::Direct(fde)))) => {
                if fde < floor || fde >= eh_frame.svma.end {
                    return false;
                }
            }
            Ok(None) => return true,
            Ok(Some((_, Pointer::Indirect(_)))) | Err(_) => return false,
        }
    }
}

/// `.eh_frame_hdr`'s binary-search table in the layout every linker writes: entries of two signed 32-bit
/// values relative to the header's start (`DW_EH_PE_datarel | DW_EH_PE_sdata4`), the first an FDE's initial
/// location, the second the FDE's address, sorted by initial location.
///
/// ```text
///   version(1) eh_frame_ptr_enc fde_count_enc table_enc(0x3b) | eh_frame_ptr | fde_count | table...
/// ```
/// It finds the FDE covering an address with a binary search of the section's bytes: nothing to build, where
/// an index of a large library's FDEs (rustc's driver library has over 200,000) costs a pass over all of
/// `.eh_frame` and megabytes of heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SearchTable {
    /// Where the table starts in the section.
    start: usize,
    count: usize,
}

impl SearchTable {
    const ENTRY_BYTES: usize = 8;

    /// `None` for another layout (gimli reads those) or a count the section cannot hold.
    fn parse(hdr: &[u8]) -> Option<SearchTable> {
        let &[1, ptr_enc, count_enc, 0x3b, ..] = hdr else {
            return None;
        };
        let ptr_len = Self::fixed_len(ptr_enc)?;
        let count_len = Self::fixed_len(count_enc)?;
        let count_at = 4usize.checked_add(ptr_len)?;
        let start = count_at.checked_add(count_len)?;
        let mut raw = [0u8; 8];
        raw.get_mut(..count_len)?
            .copy_from_slice(hdr.get(count_at..start)?);
        let count = usize::try_from(u64::from_le_bytes(raw)).ok()?;
        let end = count
            .checked_mul(Self::ENTRY_BYTES)
            .and_then(|len| len.checked_add(start))?;
        (end <= hdr.len()).then_some(SearchTable { start, count })
    }

    /// The byte length of a value of pointer encoding `enc` when it is fixed (an unsigned count must not be
    /// a signed format; a pointer may be either, relative to anything: only its length matters here).
    fn fixed_len(enc: u8) -> Option<usize> {
        match enc & 0x0f {
            0x00 | 0x04 | 0x0c => Some(8),
            0x02 | 0x0a => Some(2),
            0x03 | 0x0b => Some(4),
            _ => None,
        }
    }

    /// Entry `i`: (initial location, FDE address), both SVMAs (`hdr_svma` is the section's).
    fn entry(&self, hdr: &[u8], hdr_svma: u64, i: usize) -> Option<(u64, u64)> {
        let at = i
            .checked_mul(Self::ENTRY_BYTES)
            .and_then(|o| o.checked_add(self.start))?;
        let word = |o: usize| -> Option<u64> {
            let b = hdr.get(at.checked_add(o)?..at.checked_add(o + 4)?)?;
            let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Some(hdr_svma.wrapping_add_signed(i64::from(v)))
        };
        Some((word(0)?, word(4)?))
    }
}

/// What [`UnwindTables::function_start`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covering {
    /// The start of the FDE covering the address.
    Fde(u64),
    /// No FDE covers it.
    Nothing,
    /// The module has no search table of the usual layout: ask its [`FdeIndex`].
    AskIndex,
}

type Reader<'a> = EndianSlice<'a, LittleEndian>;

/// Adds the extents of the FDEs of `section` to `entries`, their offsets tagged with `tag`.
fn index_fdes<'a, S: UnwindSection<Reader<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    tag: u64,
    entries: &mut Vec<FdeEntry>,
) {
    // The FDEs of one object file share its CIE, so the last CIE parsed is nearly always the next one asked.
    let mut last_cie: Option<(usize, CommonInformationEntry<Reader<'a>>)> = None;
    let mut iter = section.entries(bases);
    while let Ok(Some(entry)) = iter.next() {
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let fde = partial.parse(|section, bases, offset| {
            let at = UnwindOffset::into(offset);
            if let Some((_, cie)) = last_cie.as_ref().filter(|(o, _)| *o == at) {
                return Ok(cie.clone());
            }
            let cie = section.cie_from_offset(bases, offset)?;
            last_cie = Some((at, cie.clone()));
            Ok(cie)
        });
        let Ok(fde) = fde else { continue };
        let start = fde.initial_address();
        let (Some(end), Ok(offset)) = (start.checked_add(fde.len()), u64::try_from(fde.offset()))
        else {
            continue;
        };
        if end > start && offset < IN_DEBUG_FRAME {
            entries.push(FdeEntry {
                start,
                end,
                offset: offset | tag,
            });
        }
    }
}

/// The kind of the frame at `svma` from the FDE at `offset` of `section`: its row there, and whether any of
/// its rows bases the CFA on rbp (x86_64's DWARF registers: rbp 6, rsp 7, return address 16). `None` when the
/// FDE or its program does not parse.
fn kind_of_frame<'a, S: UnwindSection<Reader<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    offset: usize,
    svma: u64,
) -> Option<FrameKind> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Row {
        Rbp,
        Rsp,
        Outermost,
        Other,
    }
    let fde = section
        .fde_from_offset(bases, S::Offset::from(offset), S::cie_from_offset)
        .ok()?;
    let mut ctx = UnwindContext::new();
    let mut rows = fde.rows(section, bases, &mut ctx).ok()?;
    let mut here = None;
    let mut rbp_somewhere = false;
    while let Some(row) = rows.next_row().ok()? {
        let kind = match row.cfa() {
            _ if row.register(X86_64::RA) == Some(RegisterRule::Undefined) => Row::Outermost,
            CfaRule::RegisterAndOffset {
                register: X86_64::RBP,
                offset: 16,
            } => Row::Rbp,
            CfaRule::RegisterAndOffset {
                register: X86_64::RSP,
                ..
            } => Row::Rsp,
            _ => Row::Other,
        };
        rbp_somewhere |= kind == Row::Rbp;
        if row.contains(svma) {
            here = Some(kind);
        }
    }
    Some(match here? {
        Row::Rbp => FrameKind::FramePointer,
        Row::Outermost => FrameKind::Outermost,
        Row::Rsp if rbp_somewhere => FrameKind::Between,
        Row::Rsp => FrameKind::Frameless,
        Row::Other => FrameKind::Unknown,
    })
}

/// Counts the FDEs of an `.eh_frame` section (records whose CIE pointer is non-zero), stopping at the
/// terminator or at the first malformed length.
fn count_fdes(eh_frame: &[u8]) -> usize {
    let mut pos = 0usize;
    let mut fdes = 0;
    while let Some(len_bytes) = eh_frame.get(pos..pos + 4) {
        let len =
            u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if len == 0 || len == 0xffff_ffff {
            break;
        }
        if let Some(id) = eh_frame.get(pos + 4..pos + 8) {
            if id != [0, 0, 0, 0] {
                fdes += 1;
            }
        }
        pos = match pos.checked_add(4 + len) {
            Some(p) => p,
            None => break,
        };
    }
    fdes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bias_of_a_pie_text_mapping() {
        // A typical PIE: text segment at file offset 0x1000, vaddr 0x1000, mapped at 0x5555_5555_5000.
        let tables = UnwindTables {
            base_svma: 0,
            text_svma: None,
            eh_frame: None,
            eh_frame_hdr: None,
            search: None,
            debug_frame: None,
            segments: vec![
                Segment {
                    offset: 0,
                    vaddr: 0,
                    filesz: 0x600,
                },
                Segment {
                    offset: 0x1000,
                    vaddr: 0x1000,
                    filesz: 0x2000,
                },
            ],
            has_tables: false,
            has_frame_pointers: false,
            x86_64: true,
            plt: Vec::new(),
            entry: None,
        };
        assert_eq!(
            tables.bias(0x5555_5555_5000, 0x1000),
            Some(0x5555_5555_4000)
        );
        // libc-style: the segment's file offset is not page aligned relative to its vaddr.
        let libc = UnwindTables {
            segments: vec![Segment {
                offset: 0x26000,
                vaddr: 0x26000,
                filesz: 0x155000,
            }],
            ..tables.clone()
        };
        assert_eq!(libc.bias(0x7f00_0002_6000, 0x26000), Some(0x7f00_0000_0000));
        // lld/Rust-style: the text segment shares its first page with the end of the read-only segment, and
        // its vaddr is one page ahead of its offset.
        let rust = UnwindTables {
            segments: vec![
                Segment {
                    offset: 0,
                    vaddr: 0,
                    filesz: 0x14c21c,
                },
                Segment {
                    offset: 0x14c220,
                    vaddr: 0x14d220,
                    filesz: 0x2f0a80,
                },
            ],
            ..tables.clone()
        };
        assert_eq!(
            rust.bias(0x5555_5574_1000, 0x14c000),
            Some(0x5555_5574_1000 - 0x14d000)
        );
        // An offset no segment covers has no bias.
        assert_eq!(tables.bias(0x1000, 0x10_0000), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(UnwindTables::parse(Arc::from(&b"\x7fELF garbage"[..])).is_err());
        assert!(UnwindTables::parse(Arc::from(&[][..])).is_err());
        assert_eq!(count_fdes(&[0xff, 0xff]), 0);
        assert_eq!(count_fdes(&[8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), 1);
    }

    #[test]
    fn reads_the_tables_of_this_test_binary() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let tables = UnwindTables::parse(Arc::from(exe)).unwrap();
        assert!(tables.has_tables);
        assert!(tables.eh_frame.is_some());
        // A real search table passes the check that keeps crafted ones away from framehop.
        assert!(tables.eh_frame_hdr.is_some());
        // Mapped, the same file gives the same tables.
        let mapped = UnwindTables::read(&File::open("/proc/self/exe").unwrap()).unwrap();
        assert_eq!(
            mapped.eh_frame.as_ref().map(|s| &*s.bytes),
            tables.eh_frame.as_ref().map(|s| &*s.bytes)
        );
        assert_eq!(mapped.search, tables.search);
        assert_eq!(mapped.has_frame_pointers, tables.has_frame_pointers);
    }

    /// The search table answers as the index of every FDE does, over the whole text of a real binary.
    #[test]
    fn the_search_table_finds_the_same_functions_as_the_fde_index() {
        let tables = UnwindTables::read(&File::open("/proc/self/exe").unwrap()).unwrap();
        let search = tables.search.expect("a linker's search table");
        assert!(search.count > 1000, "{search:?}");
        let index = tables.fde_index();
        assert!(
            index.len() * 100 >= search.count * 99,
            "{} {search:?}",
            index.len()
        );
        let text = tables.text_svma.clone().unwrap();
        let (mut found, mut gaps) = (0, 0);
        for svma in (text.start.saturating_sub(64)..text.end + 64).step_by(61) {
            let expected = match index.start_of(svma) {
                Some(start) => {
                    found += 1;
                    Covering::Fde(start)
                }
                None => {
                    gaps += 1;
                    Covering::Nothing
                }
            };
            assert_eq!(tables.function_start(svma), expected, "at {svma:#x}");
        }
        assert!(found > 1000 && gaps > 0, "{found} {gaps}");
    }

    /// `.eh_frame_hdr` as linkers write it at `hdr_svma` for `eh_frame` at 0x2000: one entry per FDE of
    /// `index`, sorted.
    fn search_table_bytes(hdr_svma: u64, index: &FdeIndex) -> Vec<u8> {
        let rel = |svma: u64| (svma.wrapping_sub(hdr_svma) as i32).to_le_bytes();
        let mut hdr = vec![1, 0x1b, 0x03, 0x3b];
        hdr.extend_from_slice(&((0x2000 - (hdr_svma + 4)) as i32).to_le_bytes());
        hdr.extend_from_slice(&(index.entries.len() as u32).to_le_bytes());
        for e in &index.entries {
            hdr.extend_from_slice(&rel(e.start));
            hdr.extend_from_slice(&rel(0x2000 + e.offset));
        }
        hdr
    }

    fn with_search_table(eh_frame: Vec<u8>, hdr: Vec<u8>) -> UnwindTables {
        let mut tables = cfi_tables(eh_frame);
        tables.search = SearchTable::parse(&hdr);
        tables.eh_frame_hdr = Some(Section {
            svma: 0x1800..0x1800 + hdr.len() as u64,
            bytes: SharedBytes::owned(hdr.into_boxed_slice()),
        });
        tables
    }

    #[test]
    fn function_starts_through_a_search_table() {
        let plain = cfi_tables(four_functions());
        let index = plain.fde_index();
        let hdr = search_table_bytes(0x1800, &index);
        let tables = with_search_table(four_functions(), hdr.clone());
        assert_eq!(tables.search.map(|s| s.count), Some(4));
        let (Some(h), Some(eh)) = (&tables.eh_frame_hdr, &tables.eh_frame) else {
            panic!("sections")
        };
        assert!(search_table_is_sound(h, tables.search, eh));
        assert_eq!(tables.function_start(0x0fff), Covering::Nothing);
        assert_eq!(tables.function_start(0x1000), Covering::Fde(0x1000));
        assert_eq!(tables.function_start(0x103f), Covering::Fde(0x1000));
        assert_eq!(tables.function_start(0x1040), Covering::Nothing);
        assert_eq!(tables.function_start(0x1110), Covering::Fde(0x1100));
        assert_eq!(tables.function_start(0x130f), Covering::Fde(0x1300));
        assert_eq!(tables.function_start(0x1310), Covering::Nothing);
        // Without the table, the index answers.
        assert_eq!(plain.function_start(0x1000), Covering::AskIndex);
        // An entry pointing outside `.eh_frame` makes the table unsound (framehop would trust it).
        let mut bad = hdr.clone();
        let last = bad.len() - 4;
        bad[last..].copy_from_slice(&0x7000_0000i32.to_le_bytes());
        let bad = with_search_table(four_functions(), bad);
        let (Some(h), Some(eh)) = (&bad.eh_frame_hdr, &bad.eh_frame) else {
            panic!("sections")
        };
        assert!(!search_table_is_sound(h, bad.search, eh));
        // Another layout is left to gimli and the index.
        let mut other = hdr.clone();
        other[3] = 0x1b;
        assert_eq!(SearchTable::parse(&other), None);
        // A count the section cannot hold.
        let mut long = hdr;
        long[8..12].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(SearchTable::parse(&long), None);
    }

    #[test]
    fn a_bad_search_table_never_panics() {
        let index = cfi_tables(four_functions()).fde_index();
        let good = search_table_bytes(0x1800, &index);
        let probe = |hdr: Vec<u8>| {
            let tables = with_search_table(four_functions(), hdr);
            if let (Some(h), Some(eh)) = (&tables.eh_frame_hdr, &tables.eh_frame) {
                let _ = search_table_is_sound(h, tables.search, eh);
            }
            for svma in (0x0ff0..0x1420).step_by(7) {
                let _ = tables.function_start(svma);
            }
        };
        for len in 0..good.len() {
            probe(good[..len].to_vec());
        }
        for i in 0..good.len() {
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = byte;
                probe(b);
            }
        }
    }

    /// `.eh_frame` as gcc lays it out at `svma`: one CIE (version 1, "zR", code align 1, data align -8,
    /// return address in 16, FDE pointers pcrel|sdata4; CFA = rsp + 8, return address at CFA - 8), then one
    /// FDE per `(start, len, CFI instructions)`, then the terminator.
    fn eh_frame(svma: u64, fdes: &[(u64, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let cie_body: &[u8] = &[
            0, 0, 0, 0, 1, b'z', b'R', 0, 1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1,
        ];
        out.extend_from_slice(&(cie_body.len() as u32).to_le_bytes());
        out.extend_from_slice(cie_body);
        for &(start, len, program) in fdes {
            let at = out.len();
            let mut body = Vec::new();
            body.extend_from_slice(&(at as u32 + 4).to_le_bytes());
            let field = svma + at as u64 + 8;
            body.extend_from_slice(&(start.wrapping_sub(field) as i32).to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            body.push(0);
            body.extend_from_slice(program);
            while (body.len() + 4) % 8 != 0 {
                body.push(0); // DW_CFA_nop
            }
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    }

    /// Tables holding only `eh_frame` at 0x2000 (and `.plt` at 0x1400, `.plt.sec` at 0x1500), x86_64.
    fn cfi_tables(eh_frame: Vec<u8>) -> UnwindTables {
        let len = eh_frame.len();
        UnwindTables {
            base_svma: 0,
            text_svma: Some(0x1000..0x2000),
            eh_frame: Some(Section {
                svma: 0x2000..0x2000 + len as u64,
                bytes: SharedBytes::owned(eh_frame.into_boxed_slice()),
            }),
            eh_frame_hdr: None,
            search: None,
            debug_frame: None,
            segments: vec![Segment {
                offset: 0,
                vaddr: 0,
                filesz: 0x3000,
            }],
            has_tables: true,
            has_frame_pointers: false,
            x86_64: true,
            plt: vec![0x1400..0x1410, 0x1500..0x1508],
            entry: None,
        }
    }

    /// A function with a frame pointer (push rbp; mov rsp,rbp; ...; pop rbp; ret), a frameless one, the
    /// outermost frame, one whose CFA is an expression.
    fn four_functions() -> Vec<u8> {
        eh_frame(
            0x2000,
            &[
                // advance 1, CFA offset 16, rbp at CFA-16, advance 3, CFA register rbp, advance 0x38, CFA rsp+8.
                (
                    0x1000,
                    0x40,
                    &[
                        0x41,
                        0x0e,
                        16,
                        0x86,
                        2,
                        0x43,
                        0x0d,
                        6,
                        0x40 | 0x38,
                        0x0c,
                        7,
                        8,
                    ],
                ),
                // advance 4, CFA offset 32, advance 0x18, CFA offset 8.
                (0x1100, 0x20, &[0x44, 0x0e, 32, 0x40 | 0x18, 0x0e, 8]),
                // The return address undefined.
                (0x1200, 0x10, &[0x07, 16]),
                // CFA = rsp + 8 as an expression (DW_OP_breg7 8).
                (0x1300, 0x10, &[0x0f, 2, 0x77, 8]),
            ],
        )
    }

    #[test]
    fn frame_kinds_from_cfi_rows() {
        let tables = cfi_tables(four_functions());
        let index = tables.fde_index();
        assert_eq!(index.len(), 4);
        let kind = |svma: u64| tables.frame_kind(&index, Svma(svma));
        // The function with a frame pointer: before `push %rbp`, between it and `mov %rsp,%rbp`, in its
        // body, after `pop %rbp`.
        assert_eq!(kind(0x1000), FrameKind::Between);
        assert_eq!(kind(0x1002), FrameKind::Between);
        assert_eq!(kind(0x1004), FrameKind::FramePointer);
        assert_eq!(kind(0x103b), FrameKind::FramePointer);
        assert_eq!(kind(0x103c), FrameKind::Between);
        // The frameless one, everywhere.
        assert_eq!(kind(0x1100), FrameKind::Frameless);
        assert_eq!(kind(0x1110), FrameKind::Frameless);
        assert_eq!(kind(0x111f), FrameKind::Frameless);
        assert_eq!(kind(0x1205), FrameKind::Outermost);
        assert_eq!(kind(0x1305), FrameKind::Unknown);
        // A PLT stub skips its caller whatever the CFI says; code no FDE covers is unknown.
        assert_eq!(kind(0x1404), FrameKind::Between);
        assert_eq!(kind(0x1507), FrameKind::Between);
        assert_eq!(kind(0x1508), FrameKind::Unknown);
        assert_eq!(kind(0x1120), FrameKind::Unknown);
        assert_eq!(kind(0x0fff), FrameKind::Unknown);
        assert_eq!(
            tables.offset_to_svma(FileOffset(0x1100)),
            Some(Svma(0x1100))
        );
        assert_eq!(tables.offset_to_svma(FileOffset(0x3000)), None);
        // Another architecture's CFI numbers its registers otherwise: nothing is claimed.
        let other = UnwindTables {
            x86_64: false,
            ..tables.clone()
        };
        assert!(other.fde_index().is_empty());
        assert_eq!(other.frame_kind(&index, Svma(0x1110)), FrameKind::Unknown);
    }

    #[test]
    fn bad_cfi_gives_unknown_frames_and_never_panics() {
        let good = four_functions();
        let probe = |bytes: Vec<u8>| {
            let tables = cfi_tables(bytes);
            let index = tables.fde_index();
            for svma in (0x0ff0..0x1420).step_by(3) {
                let _ = tables.frame_kind(&index, Svma(svma));
            }
            // An index of other bytes (a module's tables read again, changed) must not mislead either.
            let other = cfi_tables(good.clone()).fde_index();
            for svma in (0x0ff0..0x1420).step_by(5) {
                let _ = tables.frame_kind(&other, Svma(svma));
            }
        };
        probe(Vec::new());
        probe(vec![0xff; 64]);
        for len in 0..good.len() {
            probe(good[..len].to_vec());
        }
        for i in 0..good.len() {
            for byte in [0x00, 0x07, 0x0f, 0x40, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = byte;
                probe(b);
            }
        }
        // Cut inside the second FDE: the first stands.
        let tables = cfi_tables(good[..good.len() / 2].to_vec());
        let index = tables.fde_index();
        assert_eq!(
            tables.frame_kind(&index, Svma(0x1010)),
            FrameKind::FramePointer
        );
    }
}
