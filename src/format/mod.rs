//! Profile files in and out. `pprof` writes and reads Google's `profile.proto` (gzipped or not), the format
//! pprof, Pyroscope, Parca and speedscope read. Folded stacks are text output and live in `render`.
//! Opening files happens in the `*_file` functions; the codecs work on bytes and `impl Write`.

pub mod perfdata;
pub mod pprof;
pub mod proto;

use std::path::PathBuf;

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
    #[error("profile is larger than {limit} bytes once decompressed; not reading it")]
    TooLarge { limit: u64 },
}
