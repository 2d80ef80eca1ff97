//! Per-process unwinders for dwarf and hybrid modes: each process's executable mappings as framehop
//! modules, rebuilt when its mappings change; each file's unwind tables read once and shared.
//!
//! Files are opened by the caller's loader (the edge): this module only asks for bytes.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use super::dwarf::{self, Cache, Regs, StackCopy, Unwinder, WalkEnd};
use super::hybrid::{self, Outcome};
use super::tables::UnwindTables;
use super::{fp, Frame, Stack};
use crate::acquire::record::SampleRecord;
use crate::addr::Avma;
use crate::process::{Mapping, Module, Processes, Resolved};

/// Which walk a sample gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Tables over the copied stack, then the kernel's frame-pointer chain beyond it.
    Hybrid,
    /// Tables over the copied stack only.
    Dwarf,
}

/// Unwind quality of one module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleQuality {
    pub has_tables: bool,
    pub has_frame_pointers: bool,
    /// Samples whose table walk stopped in this module without reaching the frame-pointer chain.
    pub fell_back: u64,
    /// Samples whose walk stopped in this module because it went wrong (no unwind info, garbage).
    pub broken: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Quality {
    pub samples: u64,
    pub truncated: u64,
    pub fell_back: u64,
    /// Samples that carried no registers or stack (the kernel could not copy them): frame pointers only.
    pub no_stack: u64,
    pub modules: HashMap<Arc<Module>, ModuleQuality>,
}

struct ProcessUnwinder {
    generation: u64,
    unwinder: Unwinder,
}

/// Reads a module's file: `(module, one of its mappings)` -> bytes, or `None` when it cannot be read.
pub type Loader<'a> = dyn FnMut(&Module, &Mapping) -> Option<Arc<[u8]>> + 'a;

pub struct Unwinders {
    mode: Mode,
    limits: fp::Limits,
    processes: HashMap<u32, ProcessUnwinder>,
    tables: HashMap<Arc<Module>, Option<Arc<UnwindTables>>>,
    cache: Cache,
    pub quality: Quality,
}

impl Unwinders {
    pub fn new(mode: Mode, limits: fp::Limits) -> Unwinders {
        Unwinders {
            mode,
            limits,
            processes: HashMap::new(),
            tables: HashMap::new(),
            cache: Cache::new(),
            quality: Quality::default(),
        }
    }

    /// Forgets a process (after it exited and its samples were processed).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// The stack of one sample: kernel frames from the kernel's chain, user frames from the tables (and, in
    /// hybrid mode, the frame-pointer chain beyond the copy).
    pub fn unwind(
        &mut self,
        sample: &SampleRecord,
        processes: &Processes,
        loader: &mut Loader<'_>,
    ) -> Stack {
        let chain = fp::frames_with(&sample.callchain, self.limits);
        let (kernel, user): (Vec<Frame>, Vec<Frame>) = chain.frames.iter().partition(|f| f.kernel);
        self.quality.samples += 1;
        let regs = sample.user_regs.as_deref().and_then(Regs::from_sample);
        let (Some(regs), Some(bytes)) = (regs, sample.user_stack.as_deref()) else {
            // A kernel thread, or a sample the kernel could not copy a stack for.
            self.quality.no_stack += 1;
            if chain.truncated {
                self.quality.truncated += 1;
            }
            return chain;
        };
        if regs.sp == 0 || bytes.is_empty() {
            self.quality.no_stack += 1;
            if chain.truncated {
                self.quality.truncated += 1;
            }
            return chain;
        }
        self.refresh(sample.pid, processes, loader);
        let Some(process) = self.processes.get(&sample.pid) else {
            return chain;
        };
        let stack = StackCopy { sp: regs.sp, bytes };
        let walk = dwarf::walk(
            &process.unwinder,
            &mut self.cache,
            regs,
            stack,
            self.limits.max_depth.saturating_sub(kernel.len()),
        );
        let stopped_at = walk.frames.last().map(|f| f.address.lookup_address());
        let broken = walk.end == WalkEnd::Broken;
        let (user_frames, outcome) = match self.mode {
            Mode::Hybrid => hybrid::splice(walk, regs.bp, stack, &user, chain.truncated),
            Mode::Dwarf => {
                let truncated = walk.end != WalkEnd::Complete;
                (
                    walk.frames,
                    Outcome {
                        truncated,
                        fell_back: false,
                    },
                )
            }
        };
        self.record_outcome(sample.pid, processes, outcome, broken, stopped_at);
        let mut frames = kernel;
        frames.extend(user_frames);
        Stack {
            frames,
            truncated: outcome.truncated,
        }
    }

    fn record_outcome(
        &mut self,
        pid: u32,
        processes: &Processes,
        outcome: Outcome,
        broken: bool,
        stopped_at: Option<Avma>,
    ) {
        if outcome.truncated {
            self.quality.truncated += 1;
        }
        if outcome.fell_back {
            self.quality.fell_back += 1;
        }
        if !(outcome.fell_back || broken) {
            return;
        }
        let Some(Resolved::Module { module, .. }) = stopped_at.map(|a| processes.resolve(pid, a))
        else {
            return;
        };
        let tables = self.tables.get(&module).cloned().flatten();
        let entry = self.quality.modules.entry(module).or_default();
        if let Some(t) = tables {
            entry.has_tables = t.has_tables;
            entry.has_frame_pointers = t.has_frame_pointers;
        }
        if outcome.fell_back {
            entry.fell_back += 1;
        }
        if broken {
            entry.broken += 1;
        }
    }

    /// Rebuilds the process's framehop unwinder when its mappings changed since the last sample.
    fn refresh(&mut self, pid: u32, processes: &Processes, loader: &mut Loader<'_>) {
        let generation = processes.generation(pid);
        if self
            .processes
            .get(&pid)
            .is_some_and(|p| p.generation == generation)
        {
            return;
        }
        let mut unwinder = Unwinder::new();
        for (mapping, module) in processes.mappings(pid) {
            if module.path.is_empty() || module.path.starts_with("//anon") {
                continue;
            }
            let tables = self
                .tables
                .entry(Arc::clone(&module))
                .or_insert_with(|| {
                    let data = loader(&module, &mapping)?;
                    UnwindTables::parse(data).ok().map(Arc::new)
                })
                .clone();
            let Some(tables) = tables else { continue };
            if let Some(m) = tables.module(
                &module.path,
                mapping.start.0,
                mapping.end.0,
                mapping.pgoff.0,
            ) {
                use framehop::Unwinder as _;
                unwinder.add_module(m);
            }
        }
        self.processes.insert(
            pid,
            ProcessUnwinder {
                generation,
                unwinder,
            },
        );
    }

    /// Drops the unwind tables and quality figures of the modules for which `keep` is false (no process maps
    /// them any more). A process unwinder built with one keeps its tables until it is rebuilt or forgotten.
    pub fn retain_modules(&mut self, mut keep: impl FnMut(&Module) -> bool) {
        self.tables.retain(|m, _| keep(m));
        self.quality.modules.retain(|m, _| keep(m));
    }

    /// Modules whose unwind tables were read (or found missing).
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Unwind tables of modules loaded so far (for the quality summary).
    pub fn tables(&self, module: &Arc<Module>) -> Option<&UnwindTables> {
        self.tables.get(module).and_then(|t| t.as_deref())
    }
}
