//! A module's file, opened, for consumers that need more than symbols (the unwinder reads its
//! `.eh_frame`). Same candidates and build-id rule as symbol loading: `/proc/PID/map_files`, then
//! `/proc/PID/root/PATH`, then PATH; a file whose build-id differs from the recorded one is not used. The
//! vdso has no file: it is read from the process's memory, else from our own (same kernel).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use object::read::ReadCache;
use object::Object;

use super::ModuleSpec;

/// A module's contents as found: its file, open, or bytes (the vdso, read from memory).
#[derive(Debug)]
pub enum ModuleData {
    File(File),
    Bytes(Arc<[u8]>),
}

/// Files larger than this are left alone.
const MAX_MODULE_BYTES: u64 = 1 << 30;

/// The module's file, opened, for a reader that takes only what it needs of it (the unwinder reads its
/// tables); the vdso, which has no file, as bytes.
pub fn module_data(spec: &ModuleSpec) -> Option<ModuleData> {
    if spec.path == "[vdso]" {
        return vdso_bytes(spec).map(|(_, bytes)| ModuleData::Bytes(bytes));
    }
    if spec.path.is_empty() || spec.path.starts_with('[') || spec.path.starts_with("//") {
        return None;
    }
    let candidates = super::loader::binary_candidates(spec);
    candidates.into_iter().find_map(|candidate| {
        let file = File::open(&candidate).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_MODULE_BYTES {
            return None;
        }
        if let Some(want) = &spec.build_id {
            let cache = ReadCache::new(&file);
            let have = object::File::parse(&cache)
                .ok()
                .and_then(|elf| elf.build_id().ok().flatten().map(<[u8]>::to_vec));
            if have.is_some_and(|have| *want != have) {
                return None;
            }
        }
        Some(ModuleData::File(file))
    })
}

/// The vdso image of the process while it lives, else our own (the same kernel's), with where it was read.
pub(super) fn vdso_bytes(spec: &ModuleSpec) -> Option<(PathBuf, Arc<[u8]>)> {
    let read = |pid: &str, start: u64, end: u64| -> Option<(PathBuf, Arc<[u8]>)> {
        let len = usize::try_from(end.checked_sub(start)?)
            .ok()
            .filter(|&l| l > 0 && l <= 1 << 24)?;
        let path = PathBuf::from(format!("/proc/{pid}/mem"));
        let mem = File::open(&path).ok()?;
        let mut buf = vec![0u8; len];
        mem.read_exact_at(&mut buf, start).ok()?;
        Some((path, Arc::from(buf)))
    };
    if let Some(found) = spec
        .pid
        .and_then(|pid| read(&pid.to_string(), spec.map_start, spec.map_end))
    {
        return Some(found);
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    read(
        "self",
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    )
}
