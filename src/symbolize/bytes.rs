//! A module's whole file as bytes, for consumers that need more than symbols (the unwinder reads its
//! `.eh_frame`). Same candidates and build-id rule as symbol loading: `/proc/PID/map_files`, then
//! `/proc/PID/root/PATH`, then PATH; a file whose build-id differs from the recorded one is not used. The
//! vdso has no file: it is read from the process's memory, else from our own (same kernel).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{read_build_id, ModuleSpec};

/// Files larger than this are not read whole (no unwind tables worth that much memory).
const MAX_MODULE_BYTES: u64 = 1 << 30;

pub fn module_bytes(spec: &ModuleSpec) -> Option<Arc<[u8]>> {
    if spec.path == "[vdso]" {
        return vdso_bytes(spec).map(|(_, bytes)| bytes);
    }
    if spec.path.is_empty() || spec.path.starts_with('[') || spec.path.starts_with("//") {
        return None;
    }
    let candidates = super::loader::binary_candidates(spec);
    candidates.into_iter().find_map(|candidate| {
        let meta = std::fs::metadata(&candidate).ok()?;
        if !meta.is_file() || meta.len() > MAX_MODULE_BYTES {
            return None;
        }
        let data = std::fs::read(&candidate).ok()?;
        let fits = match (&spec.build_id, read_build_id(&data)) {
            (Some(want), Some(have)) => *want == have,
            _ => true,
        };
        fits.then(|| Arc::from(data))
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
