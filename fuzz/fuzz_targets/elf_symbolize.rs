//! ELF/DWARF symbolization of one module: `symbolize::MemoryModule` parses the file (segments, symbol
//! tables, PLT, build-id, debug links, DWARF, the FDEs of `.eh_frame` and `.debug_frame`) as `Symbolizer`
//! does for a module it loads, then symbolizes file offsets taken from the input (frames with inlines and
//! file:line through addr2line, or named by their FDE) and looks up the functions annotate asks for.
//!
//! Input: four file offsets (u64, little-endian; each taken modulo the file's length + 64, so most land in
//! the file) | the ELF file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::addr::{FileOffset, Svma};
use stacktop::symbolize::MemoryModule;

fuzz_target!(|data: &[u8]| {
    let Some((offsets, elf)) = data.split_first_chunk::<32>() else {
        return;
    };
    let mut module = MemoryModule::parse("/fuzz/libfuzz.so", elf);
    let _ = module.status();
    let span = elf.len() as u64 + 64;
    for word in offsets.chunks_exact(8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let offset = u64::from_le_bytes(bytes) % span;
        let frames = module.frames_at(FileOffset(offset));
        assert!(!frames.is_empty(), "an address always gets a frame");
        if let Some(function) = module.function_at(Svma(offset)) {
            let _ = module.functions_named(&function.name);
        }
    }
});
