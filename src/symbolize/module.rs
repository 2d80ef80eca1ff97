//! One module as the symbolizer keeps it: found and opened (binary, separate debug file, supplementary
//! file, through `loader`), parsed (`elf`), and its frames cached by file offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use super::elf::{DwarfSource, ElfModule};
use super::loader::{self, OpenFailure};
use super::{module_name, DebugInfo, Frame, ModuleSpec, ModuleStatus, UNKNOWN};
use crate::addr::FileOffset;

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
        if let Some(frames) = self.frames.get(&offset.0) {
            return frames.clone();
        }
        let unknown = unknown_name(self, offset);
        let mut frames = match &self.elf {
            Some(elf) => elf
                .svma(offset)
                .map(|svma| elf.frames(svma, &unknown))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if frames.is_empty() {
            frames.push(Frame {
                function: unknown,
                file: None,
                line: 0,
            });
        }
        let frames: Arc<[Frame]> = frames.into();
        self.frames.insert(offset.0, frames.clone());
        frames
    }
}

fn unknown_name(module: &Module, offset: FileOffset) -> String {
    let reason = match module.status {
        ModuleStatus::BuildIdMismatch { .. } => " (build-id mismatch)",
        ModuleStatus::Unreadable { .. } => " (unreadable)",
        _ => "",
    };
    format!("{UNKNOWN} {}+{:#x}{reason}", module.name, offset.0)
}

pub(super) fn load_module(spec: &ModuleSpec, debug_dirs: &[PathBuf]) -> Module {
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
    let binary = match opened {
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
    // A binary with its own DWARF needs no debug file; looking costs a few failed opens per module otherwise.
    let debug = if binary.file.dwarf.is_none() {
        loader::find_debug_file(spec, &binary.file, debug_dirs)
    } else {
        None
    };
    let debug_path = debug.as_ref().map(|d| d.path.clone());
    // The supplementary file is named by whichever file holds the DWARF; a relative name is relative to it.
    let sup = match &debug {
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
    let elf = ElfModule::new(binary.file, debug.map(|d| d.file), sup.map(|s| s.file));
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
