//! Profile files in: stacktop's pprof as is, and perf.data files, whose records go through the same pipeline
//! a live recording feeds (address spaces over time, stacktop's own dwarf unwinder for `--call-graph dwarf`
//! stack copies, the symbolizer), in offline mode: the processes are gone, so binaries are found by path and
//! build-id.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Config, OffCpuConfig, Pipeline};
use crate::format::perfdata::{self, CallChains, Header, PerfDataReader};
use crate::format::{pprof, read_input, Input};
use crate::profile::query::Filter;
use crate::profile::{Meta, Profile};
use crate::symbolize::{Kallsyms, Symbolizer};
use crate::unwind::fp;
use crate::unwind::modules::Mode;

/// The kernel's default `perf_event_max_stack`, used when the recording did not set its own.
const DEFAULT_KERNEL_MAX_STACK: usize = 127;

/// How much of each sampled address a perf.data import keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Each address its own location, with its source line: what `report` and `annotate` show.
    Addresses,
    /// One location per function and inline chain (no address, no line): all a flamegraph names. A large
    /// recording's millions of distinct sampled addresses (every leaf instruction, in every thread) then
    /// make as many stacks as its functions do: an 825 MB `-g` recording of a build held 5 million
    /// address-level stacks and 160,000 function-level ones.
    Functions,
    /// `Functions`, and CPU samples without their process and thread (their thread's name kept): one group
    /// per stack and name, however many threads ran it (a build runs thousands).
    Stacks,
}

impl Detail {
    /// What an output that names functions, never lines (`report`, `flamegraph`), reads: by stack alone,
    /// unless `filter` picks processes or threads or the output shows them (`by_thread`).
    pub fn for_functions(filter: &Filter, by_thread: bool) -> Detail {
        match filter.needs_threads() || by_thread {
            true => Detail::Functions,
            false => Detail::Stacks,
        }
    }
}

/// Nanoseconds of a recording between two lets-go of its exited processes (see [`load_perf_data`]).
const RELEASE_EVERY_NS: u64 = 1_000_000_000;

/// Reads a perf.data file into a profile; `event` picks one of its events by name (default: the first).
pub fn load_perf_data(path: &Path, event: Option<&str>, detail: Detail) -> Result<Profile> {
    let mut reader = PerfDataReader::open(path, event)?;
    let header = reader.header().clone();
    let info = header
        .event()
        .cloned()
        .context("the file declares no events")?;
    let limits = fp::Limits {
        kernel_max_stack: match info.max_stack {
            0 => DEFAULT_KERNEL_MAX_STACK,
            n => usize::from(n),
        },
        ..fp::Limits::default()
    };
    let tables = match info.call_chains {
        CallChains::Dwarf { .. } => Some(Mode::Dwarf),
        CallChains::None | CallChains::FramePointers => None,
    };
    let (symbolizer, kernel_note) = kernel_symbolizer(&header);
    // `perf record -e context-switches -c 1 --switch-events`: its samples are switch-outs, the switch
    // records end them, through the same intervals as a live recording's.
    let off_cpu = header.off_cpu().map(|e| OffCpuConfig {
        attach: None,
        stack_bytes: match e.call_chains {
            CallChains::Dwarf { stack_bytes } => stack_bytes,
            CallChains::None | CallChains::FramePointers => 0,
        },
    });
    let mut pipeline = Pipeline::new(Config {
        offline: true,
        symbolizer: Some(symbolizer),
        // `perf record -g`: the kernel's frame-pointer chains, checked as fp mode's are.
        check_frame_pointers: info.call_chains == CallChains::FramePointers,
        off_cpu: off_cpu.clone(),
        function_stacks: detail != Detail::Addresses,
        merge_threads: detail == Detail::Stacks,
        ..Config::new(Meta::default(), limits, tables)
    });
    // As `top` does at each refresh, the processes that exited are let go every second of the recording,
    // with what only they needed (the symbols, DWARF and unwind tables of the modules no process maps any
    // more: a build's scripts, its compilers' plugins), so memory follows what runs, not the file's length.
    let mut released_at = None;
    while let Some(record) = reader.next_record()? {
        pipeline.on_record(&record);
        let time = record.time();
        match released_at {
            None if time > 0 => released_at = Some(time),
            Some(at) if time >= at + RELEASE_EVERY_NS => {
                pipeline.release_exited();
                released_at = Some(time);
            }
            _ => {}
        }
    }
    // Threads still off CPU when the file ends: their intervals end at its last record.
    pipeline.finish_off_cpu(None);
    let stats = reader.stats().clone();
    let mut notes = vec![format!("imported from perf.data {}", path.display())];
    if header.events.len() > 1 {
        let names: Vec<String> = header
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if Some(i) == header.cpu_event {
                    format!("{} (shown)", e.name)
                } else if Some(i) == header.switch_event {
                    format!("{} (off-CPU)", e.name)
                } else {
                    e.name.clone()
                }
            })
            .collect();
        notes.push(format!(
            "events in the file: {}; pick one with -e",
            names.join(", ")
        ));
    }
    if let Some(e) = header.off_cpu() {
        let cpu = match header.cpu() {
            Some(cpu) => format!("; CPU samples from {}", cpu.name),
            None => "; no CPU samples".to_owned(),
        };
        notes.push(format!(
            "off-CPU time from {} samples ({} switch-outs) ended by the file's switch records{cpu}",
            e.name, stats.switch_outs
        ));
    }
    if let Some(host) = &header.hostname {
        let release = header.os_release.as_deref().unwrap_or("?");
        notes.push(format!("recorded on {host} (Linux {release})"));
    }
    notes.extend(kernel_note);
    if stats.malformed > 0 {
        notes.push(format!(
            "{} malformed records were skipped",
            stats.malformed
        ));
    }
    let (fell_back, unwind_modules) = pipeline.unwind_summary();
    let truncated = pipeline.truncated;
    let off_cpu_stats = pipeline.meta_mut().off_cpu;
    // The header names the CPU event: the chosen one, or the one read as CPU samples beside switch-outs.
    let info = header.cpu().unwrap_or(&info).clone();
    *pipeline.meta_mut() = Meta {
        event: info.name.clone(),
        period_unit: if info.clock { "nanoseconds" } else { "events" }.to_owned(),
        frequency: info.frequency,
        call_graph: info.call_chains.name(),
        lost: stats.lost,
        throttled: stats.throttled,
        command_line: header.command_line.clone().unwrap_or_default(),
        notes,
        time_nanos: 0,
        duration_nanos: i64::try_from(header.duration_nanos).unwrap_or(0),
        truncated,
        fell_back,
        frameless: pipeline.frameless(),
        unwind_modules,
        short_copies: pipeline.short_copies(),
        off_cpu: off_cpu_stats,
        locks: Default::default(),
        // The processes are gone: nothing is continued after the fact.
        continuation: Default::default(),
    };
    Ok(pipeline.into_profile())
}

/// A symbolizer whose kernel symbols are `/proc/kallsyms` only when the running kernel is the recorded one
/// (same build-id), else perf's cached copy in `~/.debug` when present, else none (kernel frames unknown).
fn kernel_symbolizer(header: &Header) -> (Symbolizer, Option<String>) {
    // The recorded processes are gone: their JIT maps will not grow, so each is read once. Rechecking at
    // every address a map does not list (the default, for live processes) cost a `stat` and a read of
    // `/proc/PID/status` per garbage return address of a `perf record -g` file: 65% of the import's time.
    // Each module offset is symbolized once: the pipeline keeps its location.
    let symbolizer = Symbolizer::new()
        .with_jit_recheck(std::time::Duration::MAX)
        .without_frame_cache();
    let Some(recorded) = &header.kernel_build_id else {
        return (symbolizer, None);
    };
    let running = std::fs::read("/sys/kernel/notes")
        .ok()
        .and_then(|notes| perfdata::build_id_from_notes(&notes));
    if running.as_ref() == Some(recorded) {
        return (symbolizer, None);
    }
    let hex: String = recorded.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(cached) = crate::symbolize::perf_build_id_cache(recorded, "kallsyms")
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        let note = format!("kernel symbols from perf's build-id cache (kernel build-id {hex})");
        return (
            symbolizer.with_kallsyms(Kallsyms::parse(&cached)),
            Some(note),
        );
    }
    let note = format!(
        "the recording's kernel (build-id {hex}) is not the running one and perf's ~/.debug cache lacks it: kernel frames are [unknown]"
    );
    (symbolizer.with_kallsyms(Kallsyms::parse("")), Some(note))
}

/// Reads a profile file given with `-i`: stacktop's pprof or a perf.data file (told apart by content).
pub fn load_profile(path: &Path) -> Result<Profile> {
    load_profile_event(path, None, Detail::Addresses)
}

/// Like [`load_profile`]; `event` picks one event of a perf.data file holding several (default: the first).
/// The file is opened once and its type told from the bytes read, so a pipe (`/dev/stdin`) works for pprof.
/// `detail` says what a perf.data import keeps of each address (a pprof file is read as it is).
pub fn load_profile_event(path: &Path, event: Option<&str>, detail: Detail) -> Result<Profile> {
    let context = || format!("cannot read profile {}", path.display());
    match read_input(path).with_context(context)? {
        Input::PerfData => load_perf_data(path, event, detail)
            .with_context(|| format!("cannot read perf.data file {}", path.display())),
        Input::Pprof(bytes) => pprof::read_pprof(&bytes).with_context(context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_read_by_stack_unless_processes_or_threads_are_asked_for() {
        let plain = Filter::default();
        assert_eq!(Detail::for_functions(&plain, false), Detail::Stacks);
        assert_eq!(Detail::for_functions(&plain, true), Detail::Functions);
        // A thread's name stays in a reading by stack.
        let comm = Filter {
            comms: vec!["worker".to_owned()],
            ..Filter::default()
        };
        assert_eq!(Detail::for_functions(&comm, false), Detail::Stacks);
        for filter in [
            Filter {
                pids: vec![1],
                ..Filter::default()
            },
            Filter {
                tids: vec![1],
                ..Filter::default()
            },
            Filter {
                processes: vec!["rustc".to_owned()],
                ..Filter::default()
            },
        ] {
            assert_eq!(Detail::for_functions(&filter, false), Detail::Functions);
        }
    }
}
