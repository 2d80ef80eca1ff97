//! perf ring records: one `PERF_RECORD_SAMPLE` as the ring buffer holds it, read by
//! `acquire::sample::parse` (every live sample of a layout it covers goes through it), then split into typed
//! frames as `unwind::fp` does for every sample.
//!
//! Input: `sample_type` (u64, little-endian) | user register count (u8, mod 64) | stack copy limit (u8: 0
//! none, else 16 bytes a step) | the record, header included.
//!
//! Not fuzzed: the other record kinds, which go through the `perf-event-open` crate's parser. It is
//! `unsafe` with the contract that the bytes come from the kernel's ring for the same counter, and reads
//! through raw pointers; fed arbitrary bytes it would read out of bounds by design.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stacktop::acquire::record::SampleRecord;
use stacktop::acquire::sample::parse;
use stacktop::unwind::dwarf::Regs;
use stacktop::unwind::fp;

fuzz_target!(|data: &[u8]| {
    let Some((head, record)) = data.split_first_chunk::<10>() else {
        return;
    };
    let mut sample_type = [0u8; 8];
    sample_type.copy_from_slice(&head[..8]);
    let sample_type = u64::from_le_bytes(sample_type);
    let regs = usize::from(head[8] % 64);
    let limit = usize::from(head[9]) * 16;
    let stack_limit = move |_pid: u32| (limit > 0).then_some(limit);
    let mut out = SampleRecord::default();
    // Twice into the same record: the second read reuses the first one's buffers, as the reader does.
    for _ in 0..2 {
        if parse(record, sample_type, regs, &stack_limit, &mut out).is_none() {
            return;
        }
        let stack = fp::frames(&out.callchain);
        assert!(stack.frames.len() <= out.callchain.len());
        if let Some(regs) = out.user_regs.as_deref() {
            let _ = Regs::from_sample(regs);
        }
        if let Some(stack) = &out.user_stack {
            assert!(limit == 0 || stack.len() <= limit);
        }
    }
});
