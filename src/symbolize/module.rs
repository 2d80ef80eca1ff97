//! One module as the symbolizer keeps it: found and opened (binary, separate debug file, supplementary
//! file, through `loader`), parsed (`elf`), and its frames cached by file offset. Names code without symbols
//! (see "Unknown frames" in `mod.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use super::elf::{svma_to_offset, DwarfSource, ElfModule};
use super::loader::{self, OpenFailure};
use super::{module_name, DebugInfo, Frame, FunctionSymbol, ModuleSpec, ModuleStatus, UNKNOWN};
use crate::addr::{FileOffset, Svma};

pub(super) struct Module {
    /// Short name used in unknown frames.
    pub(super) name: String,
    pub(super) elf: Option<ElfModule>,
    pub(super) status: ModuleStatus,
    /// Frames by file offset, each resolved once; evicted with the module.
    pub(super) frames: HashMap<u64, Arc<[Frame]>>,
}

impl Module {
    /// The frames at `offset`, resolved once.
    pub(super) fn frames_at(&mut self, offset: FileOffset) -> Arc<[Frame]> {
        self.frames_keeping(offset, true)
    }

    /// The frames at `offset`; kept for the next ask only with `keep`.
    pub(super) fn frames_keeping(&mut self, offset: FileOffset, keep: bool) -> Arc<[Frame]> {
        if let Some(frames) = self.frames.get(&offset.0) {
            return frames.clone();
        }
        let svma = self.elf.as_ref().and_then(|elf| elf.svma(offset));
        let unknown = match svma.and_then(|svma| self.fde_function(svma)) {
            Some(function) => function.name,
            None => unknown_name(self, offset),
        };
        let mut frames = match (&self.elf, svma) {
            (Some(elf), Some(svma)) => elf.frames(svma, &unknown),
            _ => Vec::new(),
        };
        if frames.is_empty() {
            frames.push(Frame {
                function: unknown,
                file: None,
                line: 0,
            });
        }
        let frames: Arc<[Frame]> = frames.into();
        if keep {
            self.frames.insert(offset.0, frames.clone());
        }
        frames
    }

    /// The function symbol containing `svma`, else the function its FDE gives (named as its frames are).
    pub(super) fn function_at(&self, svma: Svma) -> Option<FunctionSymbol> {
        let elf = self.elf.as_ref()?;
        elf.function_at(svma).or_else(|| self.fde_function(svma))
    }

    /// The function symbols named `name`, else the function of the FDE so named.
    pub(super) fn functions_named(&self, name: &str) -> Vec<FunctionSymbol> {
        let Some(elf) = &self.elf else {
            return Vec::new();
        };
        let symbols = elf.functions_named(name);
        if !symbols.is_empty() {
            return symbols;
        }
        fde_name_offset(&self.name, name)
            .and_then(|offset| elf.svma(offset))
            .and_then(|svma| elf.fde_starting_at(svma))
            .and_then(|(start, _)| self.fde_function(start))
            .into_iter()
            .collect()
    }

    /// The function that the FDE covering `svma` gives, named by the file offset of its start.
    fn fde_function(&self, svma: Svma) -> Option<FunctionSymbol> {
        let elf = self.elf.as_ref()?;
        let (start, size) = elf.fde_at(svma)?;
        let offset = svma_to_offset(elf.segments(), start)?;
        Some(FunctionSymbol {
            name: fde_name(&self.name, offset),
            start,
            size,
        })
    }
}

/// The mark that ends the name of a function known only by its FDE.
const FDE: &str = " (fde)";

/// `[unknown] MODULE+0xSTART (fde)`: the function whose FDE starts at file offset `start`.
fn fde_name(module: &str, start: FileOffset) -> String {
    format!("{UNKNOWN} {module}+{:#x}{FDE}", start.0)
}

/// The file offset in an [`fde_name`] of `module`.
fn fde_name_offset(module: &str, name: &str) -> Option<FileOffset> {
    let hex = name
        .strip_prefix(UNKNOWN)?
        .strip_prefix(' ')?
        .strip_prefix(module)?
        .strip_prefix("+0x")?
        .strip_suffix(FDE)?;
    u64::from_str_radix(hex, 16).ok().map(FileOffset)
}

fn unknown_name(module: &Module, offset: FileOffset) -> String {
    let reason = match module.status {
        ModuleStatus::BuildIdMismatch { .. } => " (build-id mismatch)",
        ModuleStatus::Unreadable { .. } => " (unreadable)",
        _ => "",
    };
    format!("{UNKNOWN} {}+{:#x}{reason}", module.name, offset.0)
}

/// Loads the module of `spec`; with `offsets`, only what naming them takes (see `ElfModule::for_offsets`);
/// with `symbols_only`, without its DWARF (see `Symbolizer::with_symbols_only_for`).
pub(super) fn load_module(
    spec: &ModuleSpec,
    debug_dirs: &[PathBuf],
    offsets: Option<&[FileOffset]>,
    symbols_only: bool,
) -> Module {
    let name = module_name(&spec.path);
    let path = loader::clean_path(&spec.path);
    let opened = if path == "[vdso]" {
        loader::read_vdso(spec).ok_or_else(|| {
            OpenFailure::Unreadable("[vdso]: could not copy it out of process memory".to_owned())
        })
    } else if path.is_empty() || path.starts_with('[') || path.starts_with("//anon") {
        return Module {
            name,
            elf: None,
            status: ModuleStatus::NotAFile,
            frames: HashMap::new(),
        };
    } else {
        loader::open_binary(spec)
    };
    let mut binary = match opened {
        Ok(binary) => binary,
        Err(OpenFailure::Mismatch {
            opened,
            expected,
            found,
        }) => {
            let status = ModuleStatus::BuildIdMismatch {
                opened,
                expected,
                found,
            };
            return Module {
                name,
                elf: None,
                status,
                frames: HashMap::new(),
            };
        }
        Err(OpenFailure::Unreadable(reason)) => {
            return Module {
                name,
                elf: None,
                status: ModuleStatus::Unreadable { reason },
                frames: HashMap::new(),
            };
        }
    };
    if symbols_only {
        binary.file.dwarf = None;
    }
    // A binary with its own DWARF needs no debug file; looking costs a few failed opens per module otherwise.
    let debug = if symbols_only {
        None
    } else if binary.file.dwarf.is_none() {
        loader::find_debug_file(spec, &binary.file, debug_dirs)
    } else {
        None
    };
    let debug_path = debug.as_ref().map(|d| d.path.clone());
    // The supplementary file is named by whichever file holds the DWARF; a relative name is relative to it.
    let sup = match &debug {
        _ if symbols_only => None,
        Some(d) if d.file.dwarf.is_some() => d
            .file
            .debugaltlink
            .as_ref()
            .and_then(|link| loader::find_sup_file(spec, link, d.path.parent(), debug_dirs)),
        _ => binary.file.debugaltlink.as_ref().and_then(|link| {
            let dir = Path::new(loader::clean_path(&spec.path)).parent();
            loader::find_sup_file(spec, link, dir, debug_dirs)
        }),
    };
    let (debug, sup) = (debug.map(|d| d.file), sup.map(|s| s.file));
    let elf = match offsets {
        None => ElfModule::new(binary.file, debug, sup),
        Some(offsets) => ElfModule::for_offsets(binary.file, debug, sup, offsets),
    };
    let debug_info = match (elf.dwarf_source(), debug_path) {
        (DwarfSource::Separate, Some(path)) => DebugInfo::Separate(path),
        (DwarfSource::None, _) => DebugInfo::None,
        _ => DebugInfo::Embedded,
    };
    let status = ModuleStatus::Loaded {
        opened: binary.path,
        build_id: elf.build_id().map(<[u8]>::to_vec),
        symbols: elf.symbol_count(),
        debug_info,
    };
    Module {
        name,
        elf: Some(elf),
        status,
        frames: HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fde_names_read_back() {
        let name = fde_name("memcached", FileOffset(0x16260));
        assert_eq!(name, "[unknown] memcached+0x16260 (fde)");
        assert_eq!(
            fde_name_offset("memcached", &name),
            Some(FileOffset(0x16260))
        );
        assert_eq!(fde_name_offset("memcache", &name), None);
        assert_eq!(
            fde_name_offset("memcached", "[unknown] memcached+0x16260"),
            None
        );
        assert_eq!(
            fde_name_offset("memcached", "[unknown] memcached+0xzz (fde)"),
            None
        );
    }
}
