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

use std::fs::File;
use std::ops::{Deref, Range};
use std::sync::Arc;

use object::read::ReadCache;
use object::{Object, ObjectSection, ObjectSegment, ReadRef};

/// How much of `.text` the frame-pointer heuristic reads: a sample of the functions is enough.
const TEXT_SAMPLE_BYTES: u64 = 4 << 20;

/// A shared slice of a module's bytes: many processes map the same library, its tables are read once.
#[derive(Clone, Debug)]
pub struct Bytes {
    data: Arc<[u8]>,
    range: Range<usize>,
}

impl Bytes {
    fn new(data: &Arc<[u8]>, range: Range<usize>) -> Option<Bytes> {
        data.get(range.clone())?;
        Some(Bytes {
            data: Arc::clone(data),
            range,
        })
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data.get(self.range.clone()).unwrap_or(&[])
    }
}

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
    debug_frame: Option<Bytes>,
    segments: Vec<Segment>,
    /// Whether the file has any CFI at all.
    pub has_tables: bool,
    /// Heuristic: most functions start with `push %rbp; mov %rsp,%rbp` (x86_64), i.e. the code keeps frame
    /// pointers. Decided from the text: the count of that prologue against the number of FDEs.
    pub has_frame_pointers: bool,
}

/// `push %rbp; mov %rsp,%rbp`
const FP_PROLOGUE: [u8; 4] = [0x55, 0x48, 0x89, 0xe5];

impl UnwindTables {
    pub fn parse(data: Arc<[u8]>) -> Result<UnwindTables, TablesError> {
        Self::parse_from(&*data)
    }

    /// Reads the tables of an open ELF file, and only them (and its headers).
    pub fn read(file: &File) -> Result<UnwindTables, TablesError> {
        Self::parse_from(&ReadCache::new(file))
    }

    fn parse_from<'data, R: ReadRef<'data>>(data: R) -> Result<UnwindTables, TablesError> {
        let file = object::File::parse(data)?;
        // Each section is copied out, so the file's bytes can go: a big library's unwind tables are a few
        // percent of it (framehop reads no text on ELF; the frame-pointer heuristic runs here, once).
        let section = |name: &str| -> Option<Section> {
            let s = file.section_by_name(name)?;
            let bytes = s.data().ok()?;
            let owned: Arc<[u8]> = Arc::from(bytes);
            let len = owned.len();
            Some(Section {
                svma: s.address()..s.address().checked_add(s.size())?,
                bytes: Bytes::new(&owned, 0..len)?,
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
        let eh_frame_hdr = section(".eh_frame_hdr").filter(|hdr| {
            eh_frame
                .as_ref()
                .is_some_and(|eh| search_table_is_sound(hdr, eh))
        });
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
                let fdes = count_fdes(&eh.bytes).max(1) as u64;
                prologues.saturating_mul(2) >= fdes
            }
            _ => false,
        };
        Ok(UnwindTables {
            base_svma,
            text_svma,
            eh_frame,
            eh_frame_hdr,
            debug_frame,
            segments,
            has_tables,
            has_frame_pointers,
        })
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
/// table is sound: lookups through it find nothing.
fn search_table_is_sound(hdr: &Section, eh_frame: &Section) -> bool {
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
    let mut entries = table.iter(&bases);
    loop {
        match entries.next() {
            Ok(Some((_, Pointer::Direct(fde)))) => {
                if fde < floor.max(eh_frame.svma.start) || fde >= eh_frame.svma.end {
                    return false;
                }
            }
            Ok(None) => return true,
            Ok(Some((_, Pointer::Indirect(_)))) | Err(_) => return false,
        }
    }
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
    }
}
