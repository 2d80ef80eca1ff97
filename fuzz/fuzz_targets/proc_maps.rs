//! `/proc/PID/maps` lines: `acquire::parse_maps`, then what `acquire` does with them when it attaches to a
//! running process (an `Mmap` record per executable mapping) and what `process` does with those records
//! (address spaces), resolving addresses at the start, middle and end of every mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::acquire::parse_maps;
use stacktop::acquire::record::{MmapRecord, Record};
use stacktop::addr::Avma;
use stacktop::process::Processes;

const PID: u32 = 42;

fuzz_target!(|data: &[u8]| {
    let maps = parse_maps(&stacktop_fuzz::text(data));
    let mut processes = Processes::new();
    // As `acquire::procfs::synthesize` turns them into records.
    for m in maps.iter().filter(|m| m.executable) {
        processes.apply(&Record::Mmap(MmapRecord {
            pid: PID,
            tid: PID,
            time: 0,
            start: m.start,
            len: m.end.saturating_sub(m.start),
            pgoff: m.pgoff,
            path: m.path.clone(),
            build_id: None,
            executable: true,
            dev: m.dev,
            inode: m.inode,
        }));
    }
    for m in &maps {
        let middle = m.start / 2 + m.end / 2;
        for addr in [m.start, middle, m.end.wrapping_sub(1), m.end] {
            let _ = processes.resolve(PID, Avma(addr));
        }
    }
});
