//! `/proc/kallsyms` (or perf's cached copy of a recording's): `symbolize::Kallsyms::parse`, then lookups
//! at, just before and just after each line's address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::addr::Avma;
use stacktop::symbolize::Kallsyms;

fuzz_target!(|data: &[u8]| {
    let text = stacktop_fuzz::text(data);
    let kallsyms = Kallsyms::parse(&text);
    let _ = (
        kallsyms.len(),
        kallsyms.is_empty(),
        kallsyms.is_restricted(),
    );
    for addr in text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|a| u64::from_str_radix(a, 16).ok())
    {
        for addr in [addr.wrapping_sub(1), addr, addr.wrapping_add(1)] {
            let _ = kallsyms.lookup(Avma(addr));
        }
    }
});
