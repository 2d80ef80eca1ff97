//! A module whose file is already in memory, for the fuzz targets: the ELF parse and the lookups
//! [`Symbolizer`](super::Symbolizer) does on a module it loaded, minus the files (no separate debug file
//! or supplementary DWARF is looked for).

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use super::elf::{DwarfSource, ElfFile, ElfModule};
use super::{module_name, DebugInfo, Frame, FunctionSymbol, Module, ModuleStatus};
use crate::addr::{FileOffset, Svma};

/// One module parsed from its file's bytes.
#[doc(hidden)]
pub struct MemoryModule(Module);

impl MemoryModule {
    /// `bytes` as the file of a module mapped from `path`. Bytes that are no ELF file give an unreadable
    /// module, whose frames are all unknown, as a file on disk would.
    pub fn parse(path: &str, bytes: &[u8]) -> MemoryModule {
        let (elf, status) = match ElfFile::parse_copy(bytes) {
            Ok(file) => {
                let elf = ElfModule::new(file, None, None);
                let status = ModuleStatus::Loaded {
                    opened: path.into(),
                    build_id: elf.build_id().map(<[u8]>::to_vec),
                    symbols: elf.symbol_count(),
                    debug_info: match elf.dwarf_source() {
                        DwarfSource::None => DebugInfo::None,
                        _ => DebugInfo::Embedded,
                    },
                };
                (Some(elf), status)
            }
            Err(e) => (
                None,
                ModuleStatus::Unreadable {
                    reason: format!("{path}: {e}"),
                },
            ),
        };
        MemoryModule(Module {
            name: module_name(path),
            elf,
            status,
            frames: HashMap::new(),
        })
    }

    pub fn status(&self) -> &ModuleStatus {
        &self.0.status
    }

    /// What `Symbolizer::symbolize_user` gives for `offset` in this module.
    pub fn frames_at(&mut self, offset: FileOffset) -> Arc<[Frame]> {
        self.0.frames_at(offset)
    }

    /// What `Symbolizer::function_at` gives.
    pub fn function_at(&self, svma: Svma) -> Option<FunctionSymbol> {
        self.0.function_at(svma)
    }

    /// What `Symbolizer::functions_named` gives.
    pub fn functions_named(&self, name: &str) -> Vec<FunctionSymbol> {
        self.0.functions_named(name)
    }
}
