//! Function extents from a module's unwind tables, for naming code that no symbol covers.
//!
//! The compiler gives every function a frame description entry (FDE) in `.eh_frame` (or `.debug_frame`),
//! and `strip` keeps them, since exceptions and unwinders need them: each covers one function's code,
//! `[initial_location, initial_location + address_range)` in SVMA. The symbolizer names an address no symbol
//! covers by the start of its FDE (see "Unknown frames" in `mod.rs`), so the samples of one function in a
//! stripped binary make one frame, not one per address.
//!
//! A pure view over section bytes, like `symbols.rs`: `elf.rs` hands the sections over, gimli parses them.
//! Only the extents are kept, 12 bytes per FDE (and `ElfModule` drops those a symbol covers anyway). The
//! unwinder reads the same sections through framehop for its own purpose, lazily and only in dwarf and
//! hybrid modes; it has no list of FDEs to share, and the stages share no module state.
//!
//! `.eh_frame` is read whole rather than through `.eh_frame_hdr`'s sorted table: the table gives the starts
//! but not the ends, which take parsing each FDE anyway, and some files have no table. Bytes that break the
//! framing of the entries end the pass; an FDE that does not parse (its CIE is garbage) is skipped. Either
//! way the FDEs read stand.

use gimli::{
    BaseAddresses, CieOrFde, CommonInformationEntry, DebugFrame, EhFrame, EndianSlice,
    RunTimeEndian, UnwindOffset, UnwindSection,
};

use crate::addr::Svma;

/// How to read a module's unwind sections: the file's byte order and address size, and the section
/// addresses that `.eh_frame`'s relative pointer encodings are relative to.
#[derive(Clone, Copy, Debug)]
pub struct Encoding {
    pub endian: RunTimeEndian,
    pub address_size: u8,
    /// SVMA of `.text` and `.got`, when the file has them (`DW_EH_PE_textrel`, `DW_EH_PE_datarel`).
    pub text: Option<u64>,
    pub got: Option<u64>,
}

/// The code ranges of the FDEs of `.eh_frame` (`bytes`, loaded at `svma`), added to `out`.
pub fn eh_frame_extents(bytes: &[u8], svma: u64, encoding: Encoding, out: &mut Vec<(u64, u64)>) {
    let mut section = EhFrame::new(bytes, encoding.endian);
    section.set_address_size(encoding.address_size);
    let bases = bases(encoding).set_eh_frame(svma);
    extents(&section, &bases, out);
}

/// The code ranges of the FDEs of `.debug_frame`, added to `out`.
pub fn debug_frame_extents(bytes: &[u8], encoding: Encoding, out: &mut Vec<(u64, u64)>) {
    let mut section = DebugFrame::new(bytes, encoding.endian);
    section.set_address_size(encoding.address_size);
    extents(&section, &bases(encoding), out);
}

fn bases(encoding: Encoding) -> BaseAddresses {
    let mut bases = BaseAddresses::default();
    if let Some(text) = encoding.text {
        bases = bases.set_text(text);
    }
    if let Some(got) = encoding.got {
        bases = bases.set_got(got);
    }
    bases
}

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

fn extents<'a, S: UnwindSection<Reader<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    out: &mut Vec<(u64, u64)>,
) {
    // The FDEs of one object file share its CIE, so the last CIE parsed is nearly always the next one asked.
    let mut last_cie: Option<(usize, CommonInformationEntry<Reader<'a>>)> = None;
    let mut entries = section.entries(bases);
    while let Ok(Some(entry)) = entries.next() {
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
        if let Ok(fde) = fde {
            out.push((fde.initial_address(), fde.len()));
        }
    }
}

/// FDE extents sorted by start, for lookups by SVMA.
#[derive(Clone, Debug, Default)]
pub struct FdeTable {
    starts: Vec<u64>,
    /// `lens[i]` is the length of the FDE at `starts[i]`: no function is 4 GiB.
    lens: Vec<u32>,
}

impl FdeTable {
    /// A table of the extents `(start, len)`, in any order. Empty extents, extents that wrap past the end
    /// of the address space or span 4 GiB are left out (only garbage has them); of several extents at one
    /// start, the longest is kept.
    pub fn new(mut extents: Vec<(u64, u64)>) -> FdeTable {
        extents.retain(|&(start, len)| {
            len > 0 && u32::try_from(len).is_ok() && start.checked_add(len).is_some()
        });
        extents.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        extents.dedup_by_key(|e| e.0);
        let mut table = FdeTable {
            starts: Vec::with_capacity(extents.len()),
            lens: Vec::with_capacity(extents.len()),
        };
        for (start, len) in extents {
            table.starts.push(start);
            table.lens.push(len as u32);
        }
        table
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// The FDE covering `svma`, as `(start, len)`: the last one starting at or before it, if `svma` is before
    /// its end. Linked code has no overlapping FDEs; where crafted ones overlap, that last one decides.
    pub fn lookup(&self, svma: Svma) -> Option<(Svma, u64)> {
        let i = self
            .starts
            .partition_point(|&s| s <= svma.0)
            .checked_sub(1)?;
        let (start, len) = (self.starts[i], u64::from(self.lens[i]));
        (svma.0 - start < len).then_some((Svma(start), len))
    }

    /// The FDE that starts exactly at `svma`, as `(start, len)`.
    pub fn starting_at(&self, svma: Svma) -> Option<(Svma, u64)> {
        let i = self.starts.binary_search(&svma.0).ok()?;
        Some((svma, u64::from(self.lens[i])))
    }

    /// Keeps the extents `(start, len)` for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, u64) -> bool) {
        let mut kept = 0;
        for i in 0..self.starts.len() {
            if keep(self.starts[i], u64::from(self.lens[i])) {
                self.starts[kept] = self.starts[i];
                self.lens[kept] = self.lens[i];
                kept += 1;
            }
        }
        self.starts.truncate(kept);
        self.lens.truncate(kept);
        self.starts.shrink_to_fit();
        self.lens.shrink_to_fit();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const X86_64: Encoding = Encoding {
        endian: RunTimeEndian::Little,
        address_size: 8,
        text: None,
        got: None,
    };

    #[test]
    fn lookup_inside_at_start_past_end_and_between() {
        // Two functions with a gap between them, given out of order.
        let t = FdeTable::new(vec![(0x1280, 0x41), (0x1230, 0x41)]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.lookup(Svma(0x1230)),
            Some((Svma(0x1230), 0x41)),
            "at start"
        );
        assert_eq!(t.lookup(Svma(0x124e)), Some((Svma(0x1230), 0x41)), "inside");
        assert_eq!(
            t.lookup(Svma(0x1270)),
            Some((Svma(0x1230), 0x41)),
            "last byte"
        );
        assert_eq!(t.lookup(Svma(0x1271)), None, "past the end, in the gap");
        assert_eq!(t.lookup(Svma(0x127f)), None, "in the gap");
        assert_eq!(t.lookup(Svma(0x12c0)), Some((Svma(0x1280), 0x41)));
        assert_eq!(t.lookup(Svma(0x12c1)), None, "past the last");
        assert_eq!(t.lookup(Svma(0x122f)), None, "before the first");
        assert_eq!(t.lookup(Svma(0)), None);
        assert_eq!(t.lookup(Svma(u64::MAX)), None);
        assert_eq!(t.starting_at(Svma(0x1280)), Some((Svma(0x1280), 0x41)));
        assert_eq!(t.starting_at(Svma(0x1281)), None);
        assert_eq!(FdeTable::default().lookup(Svma(0x1230)), None);
    }

    #[test]
    fn bad_extents_are_left_out() {
        let t = FdeTable::new(vec![
            (0x100, 0),
            (0x200, 1 << 32),
            (u64::MAX - 4, 8),
            (0x300, 0x10),
            (0x300, 0x20),
        ]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(Svma(0x100)), None);
        assert_eq!(t.lookup(Svma(0x200)), None);
        assert_eq!(t.lookup(Svma(u64::MAX - 1)), None);
        assert_eq!(
            t.lookup(Svma(0x31f)),
            Some((Svma(0x300), 0x20)),
            "the longest of two at one start"
        );
    }

    #[test]
    fn retain_keeps_order_and_lookups() {
        let mut t = FdeTable::new(vec![(0x100, 0x10), (0x200, 0x10), (0x300, 0x10)]);
        t.retain(|start, _| start != 0x200);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(Svma(0x205)), None);
        assert_eq!(t.lookup(Svma(0x305)), Some((Svma(0x300), 0x10)));
        assert_eq!(t.lookup(Svma(0x105)), Some((Svma(0x100), 0x10)));
    }

    /// A CIE (version 1, "zR", pointers pcrel|sdata4) and FDEs for `[(start, len)]`, as gcc and ld lay out
    /// `.eh_frame` at `svma`, with the zero terminator.
    fn eh_frame(svma: u64, fdes: &[(u64, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        // CIE: length, id 0, version 1, "zR\0", code align 1, data align -8, RA register 16,
        // augmentation length 1, FDE encoding 0x1b (pcrel | sdata4), padding.
        let cie_body: &[u8] = &[0, 0, 0, 0, 1, b'z', b'R', 0, 1, 0x78, 16, 1, 0x1b, 0, 0, 0];
        out.extend_from_slice(&(cie_body.len() as u32).to_le_bytes());
        out.extend_from_slice(cie_body);
        for &(start, len) in fdes {
            let at = out.len();
            // length, CIE pointer (back to offset 0), pc_begin (pcrel), pc_range, augmentation length 0.
            out.extend_from_slice(&16u32.to_le_bytes());
            out.extend_from_slice(&(at as u32 + 4).to_le_bytes());
            let field = svma + at as u64 + 8;
            out.extend_from_slice(&(start.wrapping_sub(field) as i32).to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    }

    #[test]
    fn reads_the_fdes_of_an_eh_frame() {
        let bytes = eh_frame(0x2000, &[(0x1230, 0x41), (0x1060, 0xdb)]);
        let mut out = Vec::new();
        eh_frame_extents(&bytes, 0x2000, X86_64, &mut out);
        assert_eq!(out, vec![(0x1230, 0x41), (0x1060, 0xdb)]);
        let t = FdeTable::new(out);
        assert_eq!(t.lookup(Svma(0x10a5)), Some((Svma(0x1060), 0xdb)));
    }

    #[test]
    fn bad_tables_give_what_they_hold_and_never_panic() {
        let good = eh_frame(0x2000, &[(0x1230, 0x41), (0x1280, 0x41), (0x12d0, 0x41)]);
        let eh = |bytes: &[u8]| {
            let mut out = Vec::new();
            eh_frame_extents(bytes, 0x2000, X86_64, &mut out);
            out
        };
        // The CIE is 20 bytes, each FDE 20. Cut inside the third FDE: the first two stand.
        assert_eq!(
            eh(&good[..20 + 2 * 20 + 3]),
            [(0x1230, 0x41), (0x1280, 0x41)]
        );
        // An FDE whose CIE pointer leads to no CIE (to the FDE itself) is skipped; the framing holds, so the
        // next one is read.
        let mut bad_cie = good.clone();
        bad_cie[20 + 20 + 4..20 + 20 + 8].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(eh(&bad_cie), [(0x1230, 0x41), (0x12d0, 0x41)]);
        // A length that runs past the end breaks the framing: what came before stands.
        let mut bad_len = good.clone();
        bad_len[20 + 20..20 + 20 + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert_eq!(eh(&bad_len), [(0x1230, 0x41)]);
        // Garbage, every prefix and every single-byte change of a good table, read as either section: no
        // panic.
        let both = |bytes: &[u8]| {
            let mut out = eh(bytes);
            debug_frame_extents(bytes, X86_64, &mut out);
            FdeTable::new(out)
        };
        assert_eq!(both(&[]).len(), 0);
        let _ = both(&[0xff; 64]);
        for len in 0..good.len() {
            let _ = both(&good[..len]);
        }
        for i in 0..good.len() {
            for byte in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] = byte;
                let _ = both(&b).lookup(Svma(0x1240));
            }
        }
    }
}
