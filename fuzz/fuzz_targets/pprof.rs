//! pprof, as stacktop reads any profile file: `format::pprof::read_pprof` on the bytes as given (gzipped
//! when they start with gzip's magic, raw protobuf otherwise), then what `report` and `convert` do with
//! the profile (see `stacktop_fuzz::exercise_profile`). `pprof_gzip` fuzzes the protobuf behind a valid
//! gzip layer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::format::pprof::read_pprof;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = read_pprof(data) {
        stacktop_fuzz::exercise_profile(&profile);
    }
});
