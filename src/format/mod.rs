//! Profile files in and out. `pprof` writes and reads Google's `profile.proto` (gzipped or not), the format
//! pprof, Pyroscope, Parca and speedscope read. Folded stacks are text output and live in `render`.
//! Opening files happens in the `*_file` functions and in [`read_input`] (what `-i` names, read once and within
//! a size cap); the codecs work on bytes and `impl Write`.

pub mod output;
pub mod perfdata;
pub mod pprof;
pub mod proto;
mod wire;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a profile file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write failed")]
    Io(#[from] std::io::Error),
    #[error("not a pprof profile, or corrupt: {0}")]
    Corrupt(String),
    #[error("not a pprof profile, or corrupt: protobuf decoding failed")]
    Decode(#[from] prost::DecodeError),
    #[error("profile is larger than {} MiB once decompressed; stacktop does not read profiles this large", limit >> 20)]
    TooLarge { limit: u64 },
    #[error("gzip data expands more than {ratio} times: a gzip bomb, not a profile")]
    Expands { ratio: u64 },
    #[error("file is larger than {} MiB, more than any profile stacktop reads", limit >> 20)]
    FileTooLarge { limit: u64 },
    #[error(
        "samples expand to more than {limit} frames; stacktop does not read profiles this large"
    )]
    TooManyFrames { limit: u64 },
    #[error("sample values add up past 2^64 at sample {sample}: not a profile")]
    ValuesOverflow { sample: usize },
    #[error("a perf.data file must be a regular file (it is read out of order), not a pipe or device: save it to a file first")]
    PerfDataNotAFile,
    #[error("neither a pprof profile nor a perf.data file")]
    Unrecognized,
}

/// A profile input (`-i`), told apart by content.
#[derive(Debug)]
pub enum Input {
    /// A perf.data file, to be read by path (`perfdata` seeks in it, and it may be far larger than a pprof).
    PerfData,
    /// The bytes of a pprof profile, gzipped or not.
    Pprof(Vec<u8>),
}

/// A pprof file may be this much larger than `pprof::MAX_DECOMPRESSED`: gzip adds 5 bytes per 64 KiB to data
/// it cannot compress, plus a header.
const MAX_INPUT: u64 = pprof::MAX_DECOMPRESSED + (pprof::MAX_DECOMPRESSED >> 10);

/// Opens `path` once and reads what it starts with: a perf.data file is left to be read by path; anything else
/// is read as a pprof profile, at most `MAX_INPUT` bytes. The type is told from the bytes read, never by opening
/// the path again, so `/dev/stdin` and other pipes work; a file past the limit is refused before it is read
/// when its size is known, and after `MAX_INPUT` bytes when not (a pipe, `/dev/zero`).
pub fn read_input(path: &Path) -> Result<Input, FormatError> {
    let err = |source| FormatError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    let size = meta.is_file().then_some(meta.len());
    let mut start = [0u8; 8];
    let mut got = 0;
    // A pipe may hand over fewer bytes than asked: read until the magic is in or the input ends.
    while got < start.len() {
        match file.read(&mut start[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    let start = &start[..got];
    if perfdata::is_perf_data(start) {
        return match size {
            Some(_) => Ok(Input::PerfData),
            None => Err(FormatError::PerfDataNotAFile),
        };
    }
    if !pprof::plausible_start(start) {
        return Err(FormatError::Unrecognized);
    }
    if size.is_some_and(|s| s > MAX_INPUT) {
        return Err(FormatError::FileTooLarge { limit: MAX_INPUT });
    }
    let mut bytes = Vec::with_capacity(size.map_or(0, |s| s as usize));
    bytes.extend_from_slice(start);
    file.take(MAX_INPUT + 1 - start.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(FormatError::FileTooLarge { limit: MAX_INPUT });
    }
    Ok(Input::Pprof(bytes))
}
