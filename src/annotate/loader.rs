//! The [`CodeSource`] that reads real files: the only part of annotate that does I/O.
//!
//! Modules are found and checked by the symbolizer (same candidates, same build-id rule, same separate debug
//! files, e.g. libc's under `/usr/lib/debug`), so annotate and the report name the same functions. The code
//! bytes come from the very file the symbolizer opened. Source files are read from the paths DWARF gives.

use foldhash::HashMap;
use std::sync::Arc;

use super::{CodeError, CodeSource, ModuleInfo};
use crate::addr::Svma;
use crate::symbolize::{
    svma_to_offset, Frame, FunctionSymbol, ModuleSpec, ModuleStatus, Segment, Symbolizer,
};

/// Reads modules and source files from disk. Keep one per session (the TUI): modules are loaded once.
#[derive(Default)]
pub struct ElfCode {
    symbolizer: Symbolizer,
    /// Opened file and its segments, per module path.
    files: HashMap<String, (String, Vec<Segment>)>,
    sources: HashMap<String, Option<Arc<[String]>>>,
}

impl ElfCode {
    pub fn new() -> ElfCode {
        ElfCode::default()
    }

    /// Uses this symbolizer (e.g. one with other debug directories).
    pub fn with_symbolizer(symbolizer: Symbolizer) -> ElfCode {
        ElfCode {
            symbolizer,
            ..ElfCode::default()
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CodeSource for ElfCode {
    fn open(&mut self, module: &ModuleSpec) -> Result<ModuleInfo, CodeError> {
        let path = module.path.clone();
        match self.symbolizer.load_module(module) {
            ModuleStatus::Loaded {
                opened, debug_info, ..
            } => {
                let opened = opened.display().to_string();
                let segments = self.symbolizer.segments(module);
                self.files.insert(path, (opened.clone(), segments.clone()));
                Ok(ModuleInfo {
                    opened,
                    debug_info,
                    segments,
                })
            }
            ModuleStatus::BuildIdMismatch {
                opened,
                expected,
                found,
            } => Err(CodeError::BuildIdMismatch {
                path: opened.display().to_string(),
                expected: hex(&expected),
                found: hex(&found),
            }),
            ModuleStatus::Unreadable { reason } => Err(CodeError::Missing { path, reason }),
            ModuleStatus::NotAFile | ModuleStatus::NotLoaded => Err(CodeError::NotAFile { path }),
        }
    }

    fn function_at(&mut self, module: &ModuleSpec, svma: Svma) -> Option<FunctionSymbol> {
        self.symbolizer.function_at(module, svma)
    }

    fn functions_named(&mut self, module: &ModuleSpec, name: &str) -> Vec<FunctionSymbol> {
        self.symbolizer.functions_named(module, name)
    }

    fn bytes(&mut self, module: &ModuleSpec, start: Svma, len: u64) -> Option<Vec<u8>> {
        let (opened, segments) = self.files.get(&module.path)?;
        let off = svma_to_offset(segments, start)?;
        // A function larger than this is not one (a bogus size): refuse rather than read megabytes.
        let len = usize::try_from(len).ok().filter(|&l| l <= 1 << 22)?;
        let mut buf = vec![0u8; len];
        let file = std::fs::File::open(opened).ok()?;
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, off.0).ok()?;
        Some(buf)
    }

    fn frames(&mut self, module: &ModuleSpec, svma: Svma) -> Vec<Frame> {
        let Some((_, segments)) = self.files.get(&module.path) else {
            return Vec::new();
        };
        match svma_to_offset(segments, svma) {
            Some(off) => self.symbolizer.symbolize_user(module, off).to_vec(),
            None => Vec::new(),
        }
    }

    fn source(&mut self, path: &str) -> Option<Arc<[String]>> {
        self.sources
            .entry(path.to_owned())
            .or_insert_with(|| {
                let bytes = std::fs::read(path).ok()?;
                let text = String::from_utf8_lossy(&bytes);
                Some(text.lines().map(expand_tabs).collect())
            })
            .clone()
    }
}

fn expand_tabs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.trim_end().chars() {
        if c == '\t' {
            let pad = 8 - out.chars().count() % 8;
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_live_on_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<ElfCode>();
        assert_send::<super::super::Annotation>();
    }

    #[test]
    fn tabs_expand_to_eight_columns() {
        assert_eq!(expand_tabs("\tx = 1;\t// c  "), "        x = 1;  // c");
    }
}
