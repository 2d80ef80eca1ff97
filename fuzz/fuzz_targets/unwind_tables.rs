//! Unwind tables of one module: `unwind::tables::UnwindTables` reads `.eh_frame`, `.eh_frame_hdr` and
//! `.debug_frame` from the ELF bytes and places them in a process, framehop walks a copied stack from the
//! input with them (`unwind::dwarf::walk`), and `unwind::hybrid::splice` joins the walk to a frame-pointer
//! chain, as `unwind::modules::Unwinders` does for every sample; `UnwindTables::frame_kind` tells what the
//! CFI says of the frames of that chain, as `unwind::fpcheck` does in fp mode, and
//! `UnwindTables::function_start` which function covers them (the continuation's identity of a function).
//!
//! Input (all little-endian u64): mapping start | mapping length | mapping file offset | ip | sp | bp, then
//! 512 bytes of stack copy (from sp up), then the ELF file.
#![no_main]

use std::sync::Arc;

use framehop::Unwinder as _;
use libfuzzer_sys::fuzz_target;
use stacktop::addr::{Avma, FileOffset, FrameAddress, Svma};
use stacktop::unwind::dwarf::{self, Cache, Regs, StackCopy, Unwinder};
use stacktop::unwind::hybrid;
use stacktop::unwind::tables::UnwindTables;
use stacktop::unwind::Frame;

const HEADER: usize = 48;
const STACK: usize = 512;
/// What `Unwinders` allows a walk (its default depth cap).
const MAX_DEPTH: usize = 1024;

fn word(data: &[u8], i: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[i * 8..i * 8 + 8]);
    u64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER + STACK {
        return;
    }
    let (header, rest) = data.split_at(HEADER);
    let (stack, elf) = rest.split_at(STACK);
    // The kernel maps whole pages at page-aligned file offsets.
    let start = word(header, 0) & !0xfff;
    let end = start.saturating_add((word(header, 1) & 0xffff_ffff).max(1));
    let pgoff = word(header, 2) & !0xfff;
    let regs = Regs {
        ip: word(header, 3),
        sp: word(header, 4),
        bp: word(header, 5),
    };
    let Ok(tables) = UnwindTables::parse(Arc::from(elf)) else {
        return;
    };
    let _ = (tables.has_tables, tables.has_frame_pointers);
    let _ = tables.bias(start, pgoff);
    let mut unwinder = Unwinder::new();
    if let Some(module) = tables.module("/fuzz/libfuzz.so", start, end, pgoff) {
        unwinder.add_module(module);
    }
    let copy = StackCopy {
        sp: regs.sp,
        bytes: stack,
    };
    let mut cache = Cache::new();
    let walk = dwarf::walk(&unwinder, &mut cache, regs, copy, MAX_DEPTH);
    assert!(walk.frames.len() <= MAX_DEPTH && walk.frames.len() == walk.cfas.len());
    // The kernel's user chain, as its frame-pointer walk would find it in this copy.
    let mut chain = vec![Frame {
        address: FrameAddress::InstructionPointer(Avma(regs.ip)),
        kernel: false,
    }];
    let mut bp = regs.bp;
    while let (Some(next), Some(ra)) = (copy.read(bp), copy.read(bp.wrapping_add(8))) {
        chain.push(Frame {
            address: FrameAddress::ReturnAddress(Avma(ra)),
            kernel: false,
        });
        if next <= bp || chain.len() > 127 {
            break;
        }
        bp = next;
    }
    // fp mode's check: each chain address read as a file offset of this module.
    let index = tables.fde_index();
    for frame in &chain {
        let lookup = frame.address.lookup_address().0;
        let svma = tables
            .offset_to_svma(FileOffset(lookup))
            .unwrap_or(Svma(lookup));
        let _ = tables.frame_kind(&index, svma);
        // The continuation's function identity: the search table, else the index.
        if let stacktop::unwind::tables::Covering::Fde(start) = tables.function_start(svma.0) {
            assert!(start <= svma.0);
        }
    }
    let _ = hybrid::splice(walk, regs.bp, copy, &chain, chain.len() > 127);
});
