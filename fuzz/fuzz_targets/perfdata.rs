//! perf.data, whole files: `format::perfdata::PerfDataReader` reads the header and every record, and the
//! records go where `stacktop import` sends them: address spaces (`process::Processes`), frame-pointer
//! chains (`unwind::fp`), and the resolution of each frame to a module and file offset.
//!
//! A panic inside the reader's `guard` (the third-party parser, and the conversion of its records) is
//! caught and silenced there, as in stacktop itself, so it is not a finding: the file is an error, the
//! record is counted as malformed. Any other panic reaches libFuzzer's hook and is.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stacktop::acquire::record::Record;
use stacktop::format::perfdata::PerfDataReader;
use stacktop::process::Processes;
use stacktop::unwind::dwarf::Regs;
use stacktop::unwind::fp;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) =
        PerfDataReader::from_bytes(data.to_vec(), Path::new("fuzz.perf.data"), None)
    else {
        return;
    };
    let limits = fp::Limits {
        kernel_max_stack: reader
            .header()
            .event()
            .map_or(fp::DEFAULT_KERNEL_MAX_STACK, |e| usize::from(e.max_stack)),
        ..fp::Limits::default()
    };
    let _ = reader.header().event().map(|e| e.call_chains.name());
    let mut processes = Processes::new();
    while let Ok(Some(record)) = reader.next_record() {
        processes.apply(&record);
        if let Record::Sample(s) = &record {
            let stack = fp::frames_with(&s.callchain, limits);
            for frame in &stack.frames {
                let _ = processes.resolve(s.pid, frame.address.lookup_address());
            }
            if let Some(regs) = s.user_regs.as_deref() {
                let _ = Regs::from_sample(regs);
            }
        }
    }
    let _ = reader.stats();
});
