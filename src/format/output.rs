//! Writing an output file named with `-o` (`record`, `convert`, `flamegraph`) so that nothing is lost and
//! nothing else is overwritten, even when stacktop runs as root in a directory other users can write to.
//!
//! - A new name, or a regular file, is replaced whole: the output goes to a temporary file created beside
//!   it (exclusively: `O_CREAT|O_EXCL`, an unpredictable name, so a planted symlink or file is never opened)
//!   and is renamed over the name once complete. A reader never sees half a file; a full disk, a signal or
//!   SIGKILL leaves the old file as it was. A replaced file keeps its mode and owner.
//! - A character device or a FIFO (`/dev/null`, `/dev/stdout` on a pipe or terminal) is written in place: it
//!   must never be replaced by a regular file, which is what renaming over it would do as root.
//! - A symbolic link is followed only when it belongs to us or to root (the rule the kernel's
//!   `fs.protected_symlinks` applies in sticky directories, applied everywhere, since the setting may be off);
//!   a link to a regular file replaces that file, not the link.
//! - A directory, a block device or a socket is refused.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::profile::Profile;

/// Who may read a new output file (an existing one keeps its mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// 0600, as perf writes perf.data: a profile names every function, file and thread of the programs
    /// sampled, often by root.
    Private,
    /// 0666 less the umask, like any file a shell redirection creates (an SVG, folded text).
    Shared,
}

impl Access {
    fn mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Shared => 0o666,
        }
    }
}

/// How the name given with `-o` will be written.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Write a temporary file in `dest`'s directory and rename it over `dest`; `existing` is the file being
    /// replaced, whose mode and owner the new one keeps.
    Replace {
        dest: PathBuf,
        existing: Option<Owner>,
    },
    /// Open the name as it is (a device or FIFO) and write into it; `truncate` for a regular file reached
    /// through `/proc/self/fd` (a redirected `/dev/stdout` whose name cannot be found again).
    InPlace { truncate: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Owner {
    fn of(meta: &Metadata) -> Owner {
        Owner {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Writes `path` through `write`, whole or not at all (see the module comment for which files are replaced,
/// written in place or refused). `write` gets a buffered writer; its error, or any error of the file system,
/// leaves `path` as it was.
pub fn write_output(
    path: &Path,
    access: Access,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    match plan(path, effective_uid())? {
        Plan::Replace { dest, existing } => replace(path, &dest, existing, access, write),
        Plan::InPlace { truncate } => {
            let file = OpenOptions::new()
                .write(true)
                .truncate(truncate)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .with_context(|| format!("cannot open {} for writing", path.display()))?;
            let mut out = BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// Writes the profile whole or not at all, private to its owner (see this module).
pub fn write_profile(profile: &Profile, path: &Path) -> Result<()> {
    let gzip = path.extension().is_some_and(|e| e == "gz");
    write_output(path, Access::Private, |out| {
        super::pprof::write_pprof(profile, out, gzip).map_err(std::io::Error::other)
    })
}

fn effective_uid() -> u32 {
    // /proc/self is owned by the process's effective uid; std exposes no geteuid.
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

fn plan(path: &Path, euid: u32) -> Result<Plan> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Plan::Replace {
                dest: path.to_owned(),
                existing: None,
            })
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        if meta.uid() != euid && meta.uid() != 0 {
            bail!(
                "refusing to write through {}: it is a symbolic link owned by uid {}, not by you; remove it or give another name",
                path.display(),
                meta.uid()
            );
        }
        let target = match std::fs::metadata(path) {
            Ok(target) => target,
            // A dangling link of ours: the new file takes the link's place.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Plan::Replace {
                    dest: path.to_owned(),
                    existing: None,
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        };
        if target.is_file() {
            return Ok(match std::fs::canonicalize(path) {
                Ok(real) if !real.starts_with("/proc") => Plan::Replace {
                    dest: real,
                    existing: Some(Owner::of(&target)),
                },
                _ => Plan::InPlace { truncate: true },
            });
        }
        return not_regular(path, &target);
    }
    if meta.is_file() {
        return Ok(Plan::Replace {
            dest: path.to_owned(),
            existing: Some(Owner::of(&meta)),
        });
    }
    not_regular(path, &meta)
}

/// A name that is neither a regular file nor new: devices that stream (null, full, terminals) and FIFOs are
/// written in place; anything else is refused.
fn not_regular(path: &Path, meta: &Metadata) -> Result<Plan> {
    let kind = meta.file_type();
    if kind.is_char_device() || kind.is_fifo() {
        return Ok(Plan::InPlace { truncate: false });
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    bail!(
        "cannot write {}: it is {what}; give the name of a file",
        path.display()
    )
}

fn replace(
    shown: &Path,
    dest: &Path,
    existing: Option<Owner>,
    access: Access,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(access.mode()))
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write {}: check that {} exists and is writable",
                shown.display(),
                dir.display()
            )
        })?;
    if let Some(owner) = existing {
        keep_owner(temp.as_file(), owner);
    }
    let mut out = BufWriter::new(temp);
    write(&mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", shown.display()))?;
    let temp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", shown.display()))?;
    // On error the temporary file is removed when `temp` drops; `dest` is untouched.
    temp.persist(dest)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", dest.display()))?;
    Ok(())
}

/// The new file gets the replaced one's mode and, when we may (as root), its owner, so replacing a file
/// neither widens nor narrows who can read it. Failing that is not worth losing the profile over.
fn keep_owner(file: &File, owner: Owner) {
    let _ = std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid));
    let _ = file.set_permissions(Permissions::from_mode(owner.mode));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(path: &Path, text: &str) -> Result<()> {
        write_output(path, Access::Private, |w| w.write_all(text.as_bytes()))
    }

    #[test]
    fn new_file_is_private_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pb.gz");
        write(&path, "hello").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Nothing else is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaced_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.svg");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.svg");
        std::fs::write(&path, "old").unwrap();
        let err = write_output(&path, Access::Shared, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn devices_are_written_in_place_directories_refused() {
        let null = Path::new("/dev/null");
        assert_eq!(plan(null, 0).unwrap(), Plan::InPlace { truncate: false });
        write(null, "x").unwrap();
        assert!(std::fs::metadata(null)
            .unwrap()
            .file_type()
            .is_char_device());
        let dir = tempfile::tempdir().unwrap();
        let err = plan(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn a_link_owned_by_someone_else_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("out.pb.gz");
        symlink(&victim, &link).unwrap();
        let owner = std::fs::symlink_metadata(&link).unwrap().uid();
        if owner == 0 {
            // As root: the link handed to another user is refused by root.
            std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
            let err = plan(&link, 0).unwrap_err().to_string();
            assert!(err.contains("refusing to write through"), "{err}");
            std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
        } else {
            // Seen by a user who is neither the link's owner nor root.
            let err = plan(&link, owner + 1).unwrap_err().to_string();
            assert!(err.contains("refusing to write through"), "{err}");
        }
        // Its owner follows it and replaces the file it points to, not the link.
        write(&link, "profile").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "profile");
    }
}
