//! The crate's parsed records -> ours. Only the fields later stages read survive.

use perf_event_open::sample::record::ctx::Switch;
use perf_event_open::sample::record::mmap::Info;
use perf_event_open::sample::record::sample::CallChain;
use perf_event_open::sample::record::{Priv, Record as Raw, RecordId};

use super::record::{
    MmapRecord, Record, SampleRecord, PERF_CONTEXT_GUEST, PERF_CONTEXT_GUEST_KERNEL,
    PERF_CONTEXT_GUEST_USER, PERF_CONTEXT_HV, PERF_CONTEXT_KERNEL, PERF_CONTEXT_USER,
};

fn time_of(id: Option<&RecordId>) -> u64 {
    id.and_then(|id| id.time).unwrap_or(0)
}

/// Back to the kernel's flat layout: each context's marker, then its addresses.
fn flatten(chains: &[CallChain]) -> Vec<u64> {
    let mut flat = Vec::with_capacity(chains.iter().map(|c| c_len(c) + 1).sum());
    for chain in chains {
        let (marker, ips) = match chain {
            CallChain::Kernel(ips) => (PERF_CONTEXT_KERNEL, ips),
            CallChain::User(ips) => (PERF_CONTEXT_USER, ips),
            CallChain::Hv(ips) => (PERF_CONTEXT_HV, ips),
            CallChain::Guest(ips) => (PERF_CONTEXT_GUEST, ips),
            CallChain::GuestKernel(ips) => (PERF_CONTEXT_GUEST_KERNEL, ips),
            CallChain::GuestUser(ips) => (PERF_CONTEXT_GUEST_USER, ips),
            // A context we do not know: its addresses cannot be typed, leave them out.
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        flat.push(marker);
        flat.extend_from_slice(ips);
    }
    flat
}

fn c_len(chain: &CallChain) -> usize {
    match chain {
        CallChain::Kernel(ips)
        | CallChain::User(ips)
        | CallChain::Hv(ips)
        | CallChain::Guest(ips)
        | CallChain::GuestKernel(ips)
        | CallChain::GuestUser(ips)
        | CallChain::Unknown(ips) => ips.len(),
        #[allow(unreachable_patterns)]
        _ => 0,
    }
}

/// Converts one record; `None` for kinds later stages do not use.
pub(crate) fn convert(mode: Priv, raw: Raw) -> Option<Record> {
    Some(match raw {
        Raw::Sample(s) => {
            let s = *s;
            let task = s.record_id.task.as_ref();
            Record::Sample(SampleRecord {
                pid: task.map_or(0, |t| t.pid),
                tid: task.map_or(0, |t| t.tid),
                time: s.record_id.time.unwrap_or(0),
                cpu: s.record_id.cpu.unwrap_or(0),
                period: s.period.unwrap_or(1),
                user_mode: mode == Priv::User,
                callchain: s.call_chain.as_deref().map(flatten).unwrap_or_default(),
                user_regs: s.user_regs.map(|(regs, _abi)| regs),
                user_stack: s.user_stack,
                ..SampleRecord::default()
            })
        }
        Raw::Mmap(m) => {
            let (build_id, dev, inode) = match m.ext.as_ref().map(|e| &e.info) {
                Some(Info::BuildId(id)) => (Some(id.to_vec()), 0, 0),
                Some(Info::Device {
                    major,
                    minor,
                    inode,
                    ..
                }) => (None, libc::makedev(*major, *minor), *inode),
                None => (None, 0, 0),
            };
            let executable = match &m.ext {
                Some(ext) => ext.prot & libc::PROT_EXEC as u32 != 0,
                None => m.executable,
            };
            Record::Mmap(MmapRecord {
                pid: m.task.pid,
                tid: m.task.tid,
                time: time_of(m.record_id.as_ref()),
                start: m.addr,
                len: m.len,
                pgoff: m.page_offset,
                path: m.file.to_string_lossy().into_owned(),
                build_id,
                executable,
                dev,
                inode,
            })
        }
        Raw::Comm(c) => Record::Comm {
            pid: c.task.pid,
            tid: c.task.tid,
            time: time_of(c.record_id.as_ref()),
            name: c.comm.to_string_lossy().into_owned(),
            exec: c.by_execve,
        },
        Raw::Fork(f) => Record::Fork {
            pid: f.task.pid,
            ppid: f.parent_task.pid,
            tid: f.task.tid,
            ptid: f.parent_task.tid,
            time: f.time,
        },
        Raw::Exit(e) => Record::Exit {
            pid: e.task.pid,
            ppid: e.parent_task.pid,
            tid: e.task.tid,
            ptid: e.parent_task.tid,
            time: e.time,
        },
        // Which ring lost them is the reader's to say (see `session::RecordReader`).
        Raw::LostRecords(l) => Record::Lost {
            time: time_of(l.record_id.as_ref()),
            count: l.lost_records,
            off_cpu: false,
        },
        Raw::LostSamples(l) => Record::Lost {
            time: time_of(l.record_id.as_ref()),
            count: l.lost_samples,
            off_cpu: false,
        },
        Raw::CtxSwitch(c) => {
            let task = c.record_id.as_ref().and_then(|id| id.task.as_ref());
            let (out, preempt) = match c.info {
                Switch::OutTo { preempt, .. } => (true, preempt),
                Switch::InFrom(_) => (false, false),
            };
            Record::Switch {
                pid: task.map_or(0, |t| t.pid),
                tid: task.map_or(0, |t| t.tid),
                time: time_of(c.record_id.as_ref()),
                out,
                preempt,
            }
        }
        Raw::Throttle(t) => Record::Throttle {
            time: t.time,
            throttled: true,
        },
        Raw::Unthrottle(t) => Record::Throttle {
            time: t.time,
            throttled: false,
        },
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flattens_call_chains_with_markers() {
        let chains = vec![
            CallChain::Kernel(vec![0xffff_ffff_8100_0001, 0xffff_ffff_8100_0002]),
            CallChain::User(vec![0x10, 0x20]),
        ];
        assert_eq!(
            flatten(&chains),
            vec![
                PERF_CONTEXT_KERNEL,
                0xffff_ffff_8100_0001,
                0xffff_ffff_8100_0002,
                PERF_CONTEXT_USER,
                0x10,
                0x20
            ]
        );
        assert!(flatten(&[]).is_empty());
    }
}
