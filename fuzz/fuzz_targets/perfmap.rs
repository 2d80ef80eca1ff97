//! JIT perf maps (`/tmp/perf-PID.map`): `symbolize::PerfMap::parse`, then lookups at, just before and just
//! after each line's start address, and the demangling `Symbolizer::symbolize_jit` applies to a hit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::addr::Avma;
use stacktop::symbolize::{demangle, PerfMap};

/// The one place that knows `PerfMap::parse`'s signature (it is to take the file's bytes).
fn parse(data: &[u8]) -> PerfMap {
    PerfMap::parse(data)
}

fn hex(field: &str) -> Option<u64> {
    let digits = field.strip_prefix("0x").unwrap_or(field);
    u64::from_str_radix(digits, 16).ok()
}

fuzz_target!(|data: &[u8]| {
    let map = parse(data);
    let _ = (map.len(), map.is_empty());
    let text = stacktop_fuzz::text(data);
    for start in text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(hex)
    {
        for addr in [start.wrapping_sub(1), start, start.wrapping_add(1)] {
            if let Some(name) = map.lookup(Avma(addr)) {
                let _ = demangle(name);
            }
        }
    }
});
