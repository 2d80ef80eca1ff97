//! pprof, gzipped: the input is the raw protobuf, gzipped here before `format::pprof::read_pprof` reads it,
//! so mutations reach the decoder behind the gunzip step instead of dying on gzip's CRC. Mutated gzip
//! streams themselves are the `pprof` target's business (its seeds include gzipped files).
#![no_main]

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use stacktop::format::pprof::read_pprof;

fuzz_target!(|data: &[u8]| {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    if gz.write_all(data).is_err() {
        return;
    }
    let Ok(gzipped) = gz.finish() else {
        return;
    };
    if let Ok(profile) = read_pprof(&gzipped) {
        stacktop_fuzz::exercise_profile(&profile);
    }
});
