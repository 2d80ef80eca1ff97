//! One ELF module as a pure view over already-read bytes: file offset -> SVMA through the `PT_LOAD` segments,
//! function symbols, DWARF (inline frames, file:line) from the binary or its separate debug file, and the
//! extents of the unwind tables' FDEs for code no symbol covers (`fde.rs`). Opening and finding files is
//! `loader.rs`'s job; this file does no I/O (data arrives as `object::ReadRef`, which is a byte slice in tests
//! and a read cache over a file in the loader).

use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{
    Endianness, Object, ObjectSection, ObjectSegment, ObjectSymbol, ReadRef, SectionFlags,
    SectionKind, SymbolKind,
};

use super::demangle::demangle;
use super::fde::{self, FdeTable};
use super::symbols::{
    alias_order_of, is_blank, strip_version, Binding, FileSymbol, NameRef, SymbolTable,
};
use super::Frame;
use crate::acquire::memory::{FileBytes, SharedBytes};
use crate::addr::{FileOffset, Svma};

/// DWARF is read in place from a mapped file, else from a copy of its sections.
type Reader = gimli::EndianReader<gimli::RunTimeEndian, SharedBytes>;

/// A `PT_LOAD` segment: `size` bytes at file `offset` are mapped at `vaddr` (SVMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub size: u64,
    pub vaddr: u64,
}

/// The SVMA at which the byte at file offset `off` is loaded.
///
/// ```text
///   file:   [p_offset ........ off ..... p_offset+p_filesz)
///   memory: [p_vaddr  ........ svma ....)            svma = off - p_offset + p_vaddr
/// ```
/// This holds for PIE executables, shared libraries (both start near 0) and non-PIE executables (0x400000)
/// alike; the load bias is the process stage's business (it already turned the AVMA into a file offset).
/// `p_filesz`, not `p_memsz`: bytes past the file part (`.bss`) have no file offset and are never code.
pub fn offset_to_svma(segments: &[Segment], off: FileOffset) -> Option<Svma> {
    segments
        .iter()
        .find(|s| off.0 >= s.offset && off.0 - s.offset < s.size)
        .map(|s| Svma((off.0 - s.offset).wrapping_add(s.vaddr)))
}

/// The file offset of `svma`: the inverse of [`offset_to_svma`], through the segment containing it.
pub fn svma_to_offset(segments: &[Segment], svma: Svma) -> Option<FileOffset> {
    segments
        .iter()
        .find(|s| svma.0 >= s.vaddr && svma.0 - s.vaddr < s.size)
        .map(|s| FileOffset(svma.0 - s.vaddr + s.offset))
}

/// What one ELF file (a binary or a debug file) contributes: copied out of its bytes, except the names of its
/// symbols (read where they are when a table is built of them) and its DWARF when the file is mapped.
pub struct ElfFile {
    /// The file: the names of `symbols` and `objects` with `NameRef::file` 0 are in it.
    pub bytes: Arc<FileBytes>,
    /// Names made up here (PLT stubs'): `NameRef::file` 1.
    pub made_names: Vec<u8>,
    pub segments: Vec<Segment>,
    pub symbols: Vec<FileSymbol>,
    pub build_id: Option<Vec<u8>>,
    /// `.gnu_debuglink`: the debug file's name and the CRC-32 of its contents.
    pub debuglink: Option<(String, u32)>,
    /// `.gnu_debugaltlink`: the supplementary DWARF file (made by `dwz`) holding DIEs and strings shared with
    /// other files, and its build-id.
    pub debugaltlink: Option<(String, Vec<u8>)>,
    /// DWARF sections, present when `.debug_info` has contents.
    pub dwarf: Option<gimli::Dwarf<Reader>>,
    /// The code ranges `(start SVMA, length)` of the FDEs of `.eh_frame` and `.debug_frame`.
    pub fdes: Vec<(u64, u64)>,
    /// Sized data objects in writable memory (`.data`, `.bss` and the like), globals and file-locals: what a
    /// lock's address is named by.
    pub objects: Vec<FileSymbol>,
}

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not a readable ELF file")]
    Parse(#[source] object::Error),
    #[error("not an ELF file")]
    NotElf,
}

impl ElfFile {
    /// Parses a file's bytes (read whole or mapped).
    pub fn parse(bytes: Arc<FileBytes>) -> Result<ElfFile, ElfError> {
        let data: &[u8] = &bytes;
        let file = object::File::parse(data).map_err(ElfError::Parse)?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(ElfError::NotElf);
        }
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                Segment {
                    offset,
                    size,
                    vaddr: s.address(),
                }
            })
            .filter(|s| s.size > 0)
            .collect();
        // What is read of a mapped file here (symbol and string tables, unwind tables) is not needed again
        // but for the few names a table keeps: its pages leave the RSS as the reading goes (a large library's
        // tables are 30 MB, and were most of the peak RSS of the end of a recording).
        let release = || bytes.release_pages();
        let mut made_names = Vec::new();
        let mut symbols = function_symbols(&file, data, &mut made_names, &release);
        let plt = plt_symbols(&file, &symbols, data, &mut made_names);
        symbols.extend(plt);
        let objects = data_symbols(&file, data, &mut made_names, &release);
        // Mapped, the DWARF sections are read in place for as long as the module is loaded; read whole, the
        // file's other bytes would stay with them, so they are copied out.
        let in_place = matches!(*bytes, FileBytes::Mapped(_));
        let dwarf = load_dwarf(&file, in_place.then_some(&bytes));
        let fdes = fde_extents(&file);
        release();
        Ok(ElfFile {
            made_names,
            segments,
            symbols,
            build_id: file.build_id().ok().flatten().map(<[u8]>::to_vec),
            debuglink: file
                .gnu_debuglink()
                .ok()
                .flatten()
                .map(|(name, crc)| (String::from_utf8_lossy(name).into_owned(), crc)),
            debugaltlink: file
                .gnu_debugaltlink()
                .ok()
                .flatten()
                .map(|(path, id)| (String::from_utf8_lossy(path).into_owned(), id.to_vec())),
            dwarf,
            fdes,
            objects,
            bytes,
        })
    }

    /// Parses bytes that are no file's (the vdso, tests, fuzzing): a copy of them.
    pub fn parse_copy(bytes: &[u8]) -> Result<ElfFile, ElfError> {
        ElfFile::parse(Arc::new(FileBytes::Read(bytes.into())))
    }
}

/// How many symbols are read between two releases of a mapped file's pages: about 1 MB of symbol and string
/// tables.
const RELEASE_EVERY: usize = 8192;

/// Where `name`, a slice of `data` (as object hands out names read from a byte slice), is in it; a name from
/// elsewhere is copied into `made`, whose names are `NameRef::file` 1.
fn name_ref(data: &[u8], name: &[u8], made: &mut Vec<u8>) -> NameRef {
    let len = u32::try_from(name.len()).unwrap_or(0);
    let offset = (name.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
    if offset
        .checked_add(name.len())
        .is_some_and(|end| end <= data.len())
    {
        return NameRef {
            file: 0,
            blank: is_blank(name),
            start: offset as u64,
            len,
        };
    }
    made_name(name, made)
}

/// A name of our own making, appended to `made` (`NameRef::file` 1).
fn made_name(name: &[u8], made: &mut Vec<u8>) -> NameRef {
    let start = made.len() as u64;
    made.extend_from_slice(name);
    NameRef {
        file: 1,
        blank: is_blank(name),
        start,
        len: u32::try_from(name.len()).unwrap_or(0),
    }
}

/// The sized data objects of writable sections: `static pthread_mutex_t table_lock` is a local `OBJECT` in
/// `.bss` (or `.data` with an initializer other than zeros). Thread-local and read-only objects hold no lock.
fn data_symbols<'d>(
    file: &object::File<'d, &'d [u8]>,
    data: &[u8],
    made: &mut Vec<u8>,
    release: &dyn Fn(),
) -> Vec<FileSymbol> {
    let mut out = Vec::new();
    for (i, sym) in file.symbols().chain(file.dynamic_symbols()).enumerate() {
        if i % RELEASE_EVERY == RELEASE_EVERY - 1 {
            release();
        }
        if sym.is_undefined() || sym.kind() != SymbolKind::Data || sym.size() == 0 {
            continue;
        }
        let writable = sym
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .is_some_and(|s| {
                matches!(s.kind(), SectionKind::Data | SectionKind::UninitializedData)
            });
        if !writable {
            continue;
        }
        let Ok(name) = sym.name_bytes() else { continue };
        if name.is_empty() {
            continue;
        }
        out.push(FileSymbol {
            name: name_ref(data, name, made),
            address: sym.address(),
            size: sym.size(),
            end: u64::MAX,
            binding: if sym.is_weak() {
                Binding::Weak
            } else if sym.is_local() {
                Binding::Local
            } else {
                Binding::Global
            },
        });
    }
    out
}

/// Data objects by address, one per address (the best alias), for naming an address inside one.
#[derive(Debug, Default)]
pub struct DataTable {
    /// `(start, size, name still mangled, version dropped)`, by start.
    entries: Vec<(u64, u64, Box<str>)>,
}

impl DataTable {
    /// The table of `symbols`, whose names are in `files` (see [`NameRef`]).
    pub fn new(mut symbols: Vec<FileSymbol>, files: &[&[u8]]) -> DataTable {
        let name = |s: &FileSymbol| s.name.get(files);
        symbols.sort_by(|a, b| {
            a.address
                .cmp(&b.address)
                .then_with(|| alias_order_of(&name(a), a.binding, &name(b), b.binding))
        });
        let mut entries: Vec<(u64, u64, Box<str>)> = Vec::with_capacity(symbols.len());
        for s in symbols {
            match entries.last_mut() {
                Some(last) if last.0 == s.address => last.1 = last.1.max(s.size),
                _ => entries.push((s.address, s.size, strip_version(&name(&s)).into())),
            }
        }
        entries.shrink_to_fit();
        DataTable { entries }
    }

    /// The object containing `svma`: its (mangled) name and the offset of `svma` in it.
    pub fn lookup(&self, svma: Svma) -> Option<(&str, u64)> {
        let after = self.entries.partition_point(|e| e.0 <= svma.0);
        let (start, size, name) = self.entries.get(after.checked_sub(1)?)?;
        (svma.0 - start < *size).then(|| (&**name, svma.0 - start))
    }
}

/// The FDE extents of `.eh_frame` and `.debug_frame` (a debug file's `.eh_frame` has no contents; it may have
/// a `.debug_frame`). A section that cannot be read counts as empty.
fn fde_extents<'data, R: ReadRef<'data>>(file: &object::File<'data, R>) -> Vec<(u64, u64)> {
    let encoding = fde::Encoding {
        endian: if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        },
        address_size: if file.is_64() { 8 } else { 4 },
        text: file.section_by_name(".text").map(|s| s.address()),
        got: file.section_by_name(".got").map(|s| s.address()),
    };
    let mut out = Vec::new();
    if let Some(section) = file.section_by_name(".eh_frame") {
        if let Ok(bytes) = section.data() {
            fde::eh_frame_extents(bytes, section.address(), encoding, &mut out);
        }
    }
    if let Some(section) = file.section_by_name(".debug_frame") {
        if let Ok(bytes) = section.uncompressed_data() {
            fde::debug_frame_extents(&bytes, encoding, &mut out);
        }
    }
    out
}

fn function_symbols<'d>(
    file: &object::File<'d, &'d [u8]>,
    data: &[u8],
    made: &mut Vec<u8>,
    release: &dyn Fn(),
) -> Vec<FileSymbol> {
    // Sized once: grown by doubling, the vector of a large library's 300,000 symbols was copied at twice
    // its size.
    let mut out = Vec::with_capacity(file.symbols().count() + file.dynamic_symbols().count());
    for (i, sym) in file.symbols().chain(file.dynamic_symbols()).enumerate() {
        if i % RELEASE_EVERY == RELEASE_EVERY - 1 {
            release();
        }
        if sym.is_undefined() {
            continue;
        }
        let binding = if sym.is_weak() {
            Binding::Weak
        } else if sym.is_local() {
            Binding::Local
        } else {
            Binding::Global
        };
        let is_function = match sym.kind() {
            SymbolKind::Text => true,
            // Hand-written assembly may leave out `.type sym, @function`: ld.so's `_start` (where every
            // program's main thread begins) is a local untyped label, which perf names. Local untyped
            // markers in code (`.annobin_*`, `.L*`, ARM's `$x` mapping symbols) start with `.` or `$`.
            SymbolKind::Unknown => {
                let marker = binding == Binding::Local
                    && sym
                        .name_bytes()
                        .map_or(true, |n| n.first().is_none_or(|c| matches!(c, b'.' | b'$')));
                // A separate debug file's `.text` holds no bytes (`SHT_NOBITS`) but keeps its flags.
                !marker
                    && sym
                        .section_index()
                        .and_then(|i| file.section_by_index(i).ok())
                        .is_some_and(|s| {
                            s.kind() == SectionKind::Text
                                || matches!(s.flags(), SectionFlags::Elf { sh_flags, .. }
                                    if sh_flags.0 & elf::SHF_EXECINSTR.0 != 0)
                        })
            }
            _ => false,
        };
        if !is_function || sym.section_index().is_none() {
            continue;
        }
        let Ok(name) = sym.name_bytes() else { continue };
        // An unsized symbol (`_init`, assembly) reaches to the next symbol, but never past its section.
        let end = sym
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .map_or(u64::MAX, |s| s.address().saturating_add(s.size()));
        out.push(FileSymbol {
            name: name_ref(data, name, made),
            address: sym.address(),
            size: sym.size(),
            end,
            binding,
        });
    }
    out
}

/// Synthetic `name@plt` symbols for the x86-64 PLT stubs, as perf shows them; no symbol table lists them, so
/// a hot stub would otherwise be unknown.
///
/// Every stub that calls out jumps through a GOT slot, `ff 25 disp32` = `jmp *disp32(%rip)` (after `endbr64`
/// and a `bnd` prefix in `.plt.sec`), and the dynamic relocation of that slot names the function:
/// ```text
///   stub:  [endbr64] [bnd] ff 25 <disp32>      slot = address after the jmp + disp32
///   .rela.plt / .rela.dyn:  slot -> JUMP_SLOT / GLOB_DAT against `memcpy`   =>  stub is `memcpy@plt`
/// ```
/// The lazy-binding stubs of `.plt` with IBT (`push n; jmp .plt`) have no such jump and stay unnamed. An
/// `IRELATIVE` slot (a call of an IFUNC such as `memmove` from inside its own library) is named after the
/// function symbol at its resolver's address.
fn plt_symbols<'d>(
    file: &object::File<'d, &'d [u8]>,
    functions: &[FileSymbol],
    data: &[u8],
    made: &mut Vec<u8>,
) -> Vec<FileSymbol> {
    use object::{ObjectSymbolTable, RelocationFlags, RelocationTarget};
    use std::collections::HashMap;

    let mut out = Vec::new();
    if file.architecture() != object::Architecture::X86_64 {
        return out;
    }
    let (Some(relocations), Some(dynsym)) =
        (file.dynamic_relocations(), file.dynamic_symbol_table())
    else {
        return out;
    };
    let mut slots: HashMap<u64, String> = HashMap::new();
    for (slot, reloc) in relocations {
        // An IFUNC call inside a library (libc calling its own `memmove`) goes through an IRELATIVE slot whose
        // addend is the resolver, which carries the function's own (IFUNC) symbol.
        let irelative = matches!(reloc.flags(), RelocationFlags::Elf { r_type } if r_type == object::elf::R_X86_64_IRELATIVE);
        if irelative {
            let resolver = reloc.addend() as u64;
            let files: [&[u8]; 2] = [data, made];
            let name = |f: &FileSymbol| f.name.get(&files);
            if let Some(best) = functions
                .iter()
                .filter(|f| f.address == resolver)
                .min_by(|a, b| alias_order_of(&name(a), a.binding, &name(b), b.binding))
            {
                slots.insert(slot, name(best).into_owned());
            }
            continue;
        }
        if let RelocationTarget::Symbol(index) = reloc.target() {
            if let Some(name) = dynsym
                .symbol_by_index(index)
                .ok()
                .and_then(|s| s.name_bytes().ok())
            {
                if !name.is_empty() {
                    slots.insert(slot, String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    if slots.is_empty() {
        return out;
    }
    for name in [".plt", ".plt.sec", ".plt.got"] {
        let Some(section) = file.section_by_name(name) else {
            continue;
        };
        let Ok(data) = section.data() else { continue };
        // Stubs are 16 bytes, but `.plt.got` without IBT packs 8-byte ones (its alignment says which).
        let entry = if section.align() >= 16 { 16 } else { 8 };
        let base = section.address();
        for i in 0..data.len().saturating_sub(5) {
            if data[i] != 0xff || data[i + 1] != 0x25 {
                continue;
            }
            let disp = i32::from_le_bytes([data[i + 2], data[i + 3], data[i + 4], data[i + 5]]);
            let next = base.wrapping_add(i as u64 + 6);
            let slot = next.wrapping_add_signed(i64::from(disp));
            if let Some(target) = slots.get(&slot) {
                let name = format!("{}@plt", strip_version(target));
                out.push(FileSymbol {
                    name: made_name(name.as_bytes(), made),
                    address: base.wrapping_add(i as u64 & !(entry - 1)),
                    size: entry,
                    end: u64::MAX,
                    binding: Binding::Local,
                });
            }
        }
    }
    out
}

/// The DWARF sections, read in place from `in_place` (the file's bytes) when given and the section is not
/// compressed, else copied out (decompressing `SHF_COMPRESSED` and `.zdebug_` ones); `addr2line::Context`
/// then parses them lazily. A section that cannot be read counts as empty.
fn load_dwarf<'d>(
    file: &object::File<'d, &'d [u8]>,
    in_place: Option<&Arc<FileBytes>>,
) -> Option<gimli::Dwarf<Reader>> {
    let has_info = file
        .section_by_name(".debug_info")
        .is_some_and(|s| s.kind() != SectionKind::UninitializedData && s.size() > 0);
    if !has_info {
        return None;
    }
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
        // Variables' locations and macros name no code: libc's debug file has 1.4 MB of location lists.
        let unused = matches!(
            id,
            gimli::SectionId::DebugLoc
                | gimli::SectionId::DebugLocLists
                | gimli::SectionId::DebugMacinfo
                | gimli::SectionId::DebugMacro
        );
        let section = file
            .section_by_name(id.name())
            .filter(|s| !unused && s.kind() != SectionKind::UninitializedData);
        let empty = || SharedBytes::owned(Box::default());
        let Some(section) = section else {
            return Ok(Reader::new(empty(), endian));
        };
        let shared = in_place.and_then(|bytes| {
            let range = section.compressed_file_range().ok()?;
            if range.format != object::CompressionFormat::None {
                return None;
            }
            let start = usize::try_from(range.offset).ok()?;
            let end = start.checked_add(usize::try_from(range.compressed_size).ok()?)?;
            SharedBytes::new(bytes, start..end)
        });
        let shared = shared.unwrap_or_else(|| {
            section
                .uncompressed_data()
                .map(|d| SharedBytes::owned(d.into()))
                .unwrap_or_else(|_| empty())
        });
        Ok(Reader::new(shared, endian))
    };
    gimli::Dwarf::load(load).ok()
}

/// Where a module's DWARF came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DwarfSource {
    None,
    Embedded,
    Separate,
}

/// A loaded module: the binary's segments, the union of the binary's and the debug file's symbols, the
/// DWARF of the debug file (else of the binary), completed by its supplementary file when it has one, and the
/// FDEs of both files' unwind tables that reach outside every symbol.
pub struct ElfModule {
    segments: Vec<Segment>,
    symbols: SymbolTable,
    objects: DataTable,
    fdes: FdeTable,
    dwarf: Option<addr2line::Context<Reader>>,
    dwarf_source: DwarfSource,
    build_id: Option<Vec<u8>>,
    /// The module's files that are mapped, whose pages [`ElfModule::release_pages`] lets go.
    mapped: Vec<Arc<FileBytes>>,
    /// Demangled names by symbol start: a hot function is sampled at many addresses, and demangling a
    /// long C++ or Rust name costs more than the rest of a lookup.
    demangled: Mutex<HashMap<(u64, u64), String>>,
}

impl ElfModule {
    pub fn new(binary: ElfFile, debug: Option<ElfFile>, sup: Option<ElfFile>) -> ElfModule {
        ElfModule::build(binary, debug, sup, None)
    }

    /// A module that knows only what naming the addresses at these file offsets takes: [`ElfModule::frames`]
    /// at them gives what a whole module's would, and every other query may answer otherwise (no data
    /// objects, no aliases, names only for the symbols of these addresses). The end of a recording names its
    /// sampled addresses this way, without copying every name of a large library.
    pub fn for_offsets(
        binary: ElfFile,
        debug: Option<ElfFile>,
        sup: Option<ElfFile>,
        offsets: &[FileOffset],
    ) -> ElfModule {
        ElfModule::build(binary, debug, sup, Some(offsets))
    }

    fn build(
        binary: ElfFile,
        debug: Option<ElfFile>,
        sup: Option<ElfFile>,
        wanted: Option<&[FileOffset]>,
    ) -> ElfModule {
        let ElfFile {
            bytes: binary_bytes,
            made_names: binary_made,
            segments,
            symbols: mut raw,
            build_id,
            dwarf: binary_dwarf,
            fdes: mut fde_extents,
            mut objects,
            ..
        } = binary;
        let mut debug_bytes = None;
        let mut debug_made = Vec::new();
        let (dwarf, dwarf_source) = match debug {
            Some(debug) => {
                // The debug file's names are files 2 and 3 of the table's.
                let moved = |mut s: FileSymbol| {
                    s.name.file += 2;
                    s
                };
                raw.extend(debug.symbols.into_iter().map(moved));
                objects.extend(debug.objects.into_iter().map(moved));
                fde_extents.extend(debug.fdes);
                debug_bytes = Some(debug.bytes);
                debug_made = debug.made_names;
                match debug.dwarf {
                    Some(d) => (Some(d), DwarfSource::Separate),
                    None => (binary_dwarf, DwarfSource::Embedded),
                }
            }
            None => (binary_dwarf, DwarfSource::Embedded),
        };
        let mut mapped: Vec<Arc<FileBytes>> = Vec::new();
        let dwarf = dwarf.and_then(|mut d| {
            if let Some(sup) = sup {
                mapped.push(Arc::clone(&sup.bytes));
                if let Some(sup) = sup.dwarf {
                    d.set_sup(sup);
                }
            }
            addr2line::Context::from_dwarf(d).ok()
        });
        let dwarf_source = if dwarf.is_some() {
            dwarf_source
        } else {
            DwarfSource::None
        };
        let files: [&[u8]; 4] = [
            &binary_bytes,
            &binary_made,
            debug_bytes.as_deref().map_or(&[][..], |b| b),
            &debug_made,
        ];
        let (symbols, objects) = match wanted {
            None => (
                SymbolTable::from_files(raw, &files),
                DataTable::new(objects, &files),
            ),
            Some(offsets) => {
                let svmas: Vec<u64> = offsets
                    .iter()
                    .filter_map(|&off| offset_to_svma(&segments, off))
                    .map(|svma| svma.0)
                    .collect();
                (
                    SymbolTable::for_addresses(raw, &files, &svmas),
                    DataTable::default(),
                )
            }
        };
        // An FDE within one symbol never names anything: the symbol does. Unstripped, that is all of them.
        let mut fdes = FdeTable::new(fde_extents);
        fdes.retain(|start, len| {
            symbols
                .covering(Svma(start))
                .is_none_or(|(sym, size)| (start - sym).saturating_add(len) > size)
        });
        mapped.push(binary_bytes);
        mapped.extend(debug_bytes);
        mapped.retain(|b| matches!(**b, FileBytes::Mapped(_)));
        let module = ElfModule {
            segments,
            symbols,
            objects,
            fdes,
            dwarf,
            dwarf_source,
            build_id,
            mapped,
            demangled: Mutex::default(),
        };
        // The names the tables keep are copied: what building them read of the files goes.
        module.release_pages();
        module
    }

    /// Lets go of the pages read so far of the module's mapped files (see `FileBytes::release_pages`); its
    /// DWARF reads them again when it needs them.
    pub fn release_pages(&self) {
        for bytes in &self.mapped {
            bytes.release_pages();
        }
    }

    pub fn svma(&self, off: FileOffset) -> Option<Svma> {
        offset_to_svma(&self.segments, off)
    }

    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// The FDE covering `svma`, as `(start, length)`.
    pub fn fde_at(&self, svma: Svma) -> Option<(Svma, u64)> {
        self.fdes.lookup(svma)
    }

    /// The FDE starting at `svma`, as `(start, length)`.
    pub fn fde_starting_at(&self, svma: Svma) -> Option<(Svma, u64)> {
        self.fdes.starting_at(svma)
    }

    pub fn dwarf_source(&self) -> &DwarfSource {
        &self.dwarf_source
    }

    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The function symbol containing `svma`, named as in frames (alias users know, demangled).
    pub fn function_at(&self, svma: Svma) -> Option<super::FunctionSymbol> {
        self.symbols
            .lookup_range(svma)
            .map(|(name, start, size)| super::FunctionSymbol {
                name: demangle(name),
                start: Svma(start),
                size,
            })
    }

    /// The data object containing `svma` (a global or file-local variable of a writable section), named as
    /// frames are (demangled), with the offset of `svma` in it.
    pub fn data_at(&self, svma: Svma) -> Option<(String, u64)> {
        self.objects
            .lookup(svma)
            .map(|(name, offset)| (demangle(name), offset))
    }

    /// The function symbols whose mangled name contains `hint` and whose demangled name `matches` (each
    /// candidate demangled once: `hint` keeps a search through a large binary's names cheap).
    pub fn functions_where(
        &self,
        hint: &str,
        matches: &dyn Fn(&str) -> bool,
    ) -> Vec<super::FunctionSymbol> {
        self.symbols
            .iter()
            .filter(|(n, _, _)| n.contains(hint))
            .map(|(n, start, size)| super::FunctionSymbol {
                name: demangle(n),
                start: Svma(start),
                size,
            })
            .filter(|f| matches(&f.name))
            .collect()
    }

    /// The function symbols whose demangled name is `name`.
    pub fn functions_named(&self, name: &str) -> Vec<super::FunctionSymbol> {
        self.symbols
            .iter()
            .map(|(n, start, size)| super::FunctionSymbol {
                name: demangle(n),
                start: Svma(start),
                size,
            })
            .filter(|f| f.name == name)
            .collect()
    }

    /// The function that `name` names as another alias of its address (`___pthread_mutex_lock`,
    /// `__GI___pthread_mutex_unlock_usercnt`, as perf may print them), under the name frames get.
    pub fn function_aliased(&self, name: &str) -> Option<super::FunctionSymbol> {
        let (canonical, start, size) = self.symbols.alias_target(name)?;
        Some(super::FunctionSymbol {
            name: demangle(canonical),
            start: Svma(start),
            size,
        })
    }

    /// Frames at `svma`, innermost inline first; empty when neither symbols nor DWARF know the address.
    /// DWARF supplies the inline frames and file:line; the outermost frame is named by the ELF symbol alias
    /// (`pthread_mutex_lock`, where DWARF says `___pthread_mutex_lock`). A frame DWARF leaves nameless is
    /// called `unnamed`.
    pub fn frames(&self, svma: Svma, unnamed: &str) -> Vec<Frame> {
        let symbol = self.symbols.lookup_range(svma).map(|(name, start, size)| {
            let mut cache = self.demangled.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry((start, size))
                .or_insert_with(|| demangle(name))
                .clone()
        });
        let mut frames = self.dwarf_frames(svma, unnamed);
        match (frames.last_mut(), symbol) {
            (Some(outer), Some(alias)) => outer.function = alias,
            (None, Some(alias)) => frames.push(Frame {
                function: alias,
                file: None,
                line: 0,
            }),
            _ => {}
        }
        frames
    }

    fn dwarf_frames(&self, svma: Svma, unnamed: &str) -> Vec<Frame> {
        let mut frames = Vec::new();
        let Some(ctx) = &self.dwarf else {
            return frames;
        };
        // Split DWARF (.dwo) is not supported: its loads are skipped, leaving what the main file knows.
        let Ok(mut iter) = ctx.find_frames(svma.0).skip_all_loads() else {
            return frames;
        };
        // Garbage DWARF ends the walk; the frames found so far stand.
        while let Ok(Some(f)) = iter.next() {
            let function = f
                .function
                .as_ref()
                .and_then(|n| n.raw_name().ok())
                .map(|n| demangle(&n))
                .unwrap_or_else(|| unnamed.to_owned());
            let (file, line) = match f.location {
                Some(loc) => (loc.file.map(str::to_owned), loc.line.unwrap_or(0)),
                None => (None, 0),
            };
            frames.push(Frame {
                function,
                file,
                line,
            });
        }
        frames
    }
}

/// The GNU build-id of an ELF file, if it has one: from its note segments (the ELF header, the program
/// headers and the notes, a few hundred bytes), else from its sections. Parsing the whole file for it reads
/// the section headers and the symbol table too: megabytes of rustc's driver, read while recording (a
/// module still loading in the background has its build-id read so).
pub fn read_build_id(data: &[u8]) -> Option<Vec<u8>> {
    build_id_of(data)
}

/// [`read_build_id`] of a file read as it is asked (`object::ReadCache`).
pub(crate) fn build_id_of<'data, R: ReadRef<'data>>(data: R) -> Option<Vec<u8>> {
    if let Some(id) = build_id_of_segments(data) {
        return Some(id);
    }
    let file = object::File::parse(data).ok()?;
    file.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// Note segments larger than this are not read for a build-id (its note is 36 bytes; a size from a corrupt
/// header would have the whole file read): the sections are asked instead.
const MAX_NOTE_SEGMENT: u64 = 64 * 1024;

fn build_id_of_segments<'data, R: ReadRef<'data>>(data: R) -> Option<Vec<u8>> {
    let header = FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    for segment in header.program_headers(endian, data).ok()? {
        if segment.p_filesz(endian) > MAX_NOTE_SEGMENT {
            continue;
        }
        let Ok(Some(mut notes)) = segment.notes(endian, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                return Some(note.desc().to_vec());
            }
        }
    }
    None
}

/// True when the ELF file carries DWARF line or function information (`.debug_info` with contents).
pub fn has_debug_info(data: &[u8]) -> bool {
    object::File::parse(data).is_ok_and(|file| {
        file.section_by_name(".debug_info")
            .is_some_and(|s| s.kind() != SectionKind::UninitializedData && s.size() > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_to_svma_through_the_containing_segment() {
        // Debian 12's libc.so.6 (readelf -lW): file offsets equal SVMAs.
        let libc = [
            Segment {
                offset: 0,
                size: 0x25388,
                vaddr: 0,
            },
            Segment {
                offset: 0x26000,
                size: 0x1550fc,
                vaddr: 0x26000,
            },
            Segment {
                offset: 0x1cf8d0,
                size: 0x4f98,
                vaddr: 0x1cf8d0,
            },
        ];
        assert_eq!(
            offset_to_svma(&libc, FileOffset(0x8c370)),
            Some(Svma(0x8c370))
        );
        // A non-PIE executable: text at 0x401000 from file offset 0x1000; data segment offset != vaddr - base.
        let exe = [
            Segment {
                offset: 0,
                size: 0x500,
                vaddr: 0x400000,
            },
            Segment {
                offset: 0x1000,
                size: 0x1800,
                vaddr: 0x401000,
            },
            Segment {
                offset: 0x2e10,
                size: 0x220,
                vaddr: 0x403e10,
            },
        ];
        assert_eq!(
            offset_to_svma(&exe, FileOffset(0x1234)),
            Some(Svma(0x401234))
        );
        assert_eq!(
            offset_to_svma(&exe, FileOffset(0x2e20)),
            Some(Svma(0x403e20))
        );
        // A gap between segments, and past the end of the last file part.
        assert_eq!(offset_to_svma(&exe, FileOffset(0x800)), None);
        assert_eq!(offset_to_svma(&exe, FileOffset(0x3030)), None);
        assert_eq!(offset_to_svma(&[], FileOffset(0)), None);
        // And back.
        assert_eq!(
            svma_to_offset(&exe, Svma(0x401234)),
            Some(FileOffset(0x1234))
        );
        assert_eq!(svma_to_offset(&exe, Svma(0x402900)), None);
        assert_eq!(
            svma_to_offset(&exe, Svma(0x403e20)),
            Some(FileOffset(0x2e20))
        );
    }

    #[test]
    fn garbage_and_truncated_input_are_errors_not_panics() {
        assert!(ElfFile::parse_copy(b"").is_err());
        assert!(ElfFile::parse_copy(b"\x7fELF garbage").is_err());
        assert_eq!(read_build_id(b"nope"), None);
        assert!(!has_debug_info(b"\x7fELF"));
        // Every prefix of a real ELF file: no panic, whatever the outcome.
        if let Ok(exe) = std::fs::read("/proc/self/exe") {
            for len in (0..exe.len().min(1 << 16)).step_by(97) {
                if let Ok(f) = ElfFile::parse_copy(&exe[..len]) {
                    let m = ElfModule::new(f, None, None);
                    let _ = m.frames(Svma(0x1000), "?");
                }
            }
        }
    }
}
