//! Per-process unwinders for dwarf and hybrid modes: each process's executable mappings as framehop
//! modules, rebuilt when its mappings change; each file's unwind tables read once and shared.
//!
//! Files are opened by the caller's loader (the edge): this module only asks for bytes.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

pub use super::dwarf::Regs;
use super::dwarf::{self, Cache, StackCopy, Unwinder, WalkEnd};
use super::hybrid::{self, Outcome};
use super::live::{self, Continuer, LiveMemory};
use super::tables::{Covering, FdeIndex, UnwindTables};
use super::{fp, Frame, Stack};
use crate::acquire::record::{SampleKind, SampleRecord};
use crate::acquire::StackBudget;
use crate::addr::{Avma, Svma};
use crate::process::{Mapping, Module, Processes, Resolved};
use crate::profile::{ContinuationStats, ShortCopies};

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
    /// fp mode: samples whose frame-pointer chain went wrong in this module's code without frame pointers
    /// (see `fpcheck`).
    pub frameless: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Quality {
    pub samples: u64,
    pub truncated: u64,
    pub fell_back: u64,
    /// Samples that carried no registers or stack (the kernel could not copy them): frame pointers only.
    pub no_stack: u64,
    /// Truncated samples whose walk ran off a copy the kernel had cut short (it copied less than asked).
    pub short_copies: ShortCopies,
    /// Walks that ran off their copy, and their continuations in the live process.
    pub continuation: ContinuationStats,
    pub modules: HashMap<Arc<Module>, ModuleQuality>,
}

struct ProcessUnwinder {
    generation: u64,
    unwinder: Unwinder,
}

/// Reads a module's unwind tables: `(module, one of its mappings)` -> tables, or `None` when its file cannot be read.
pub type Loader<'a> = dyn FnMut(&Module, &Mapping) -> Option<UnwindTables> + 'a;

pub struct Unwinders {
    mode: Mode,
    limits: fp::Limits,
    processes: HashMap<u32, ProcessUnwinder>,
    tables: HashMap<Arc<Module>, Option<Arc<UnwindTables>>>,
    /// Modules' FDE indexes, built the first time the continuation asks which function a return address is
    /// in (see `live::Continuer::extend`).
    fdes: HashMap<Arc<Module>, FdeIndex>,
    cache: Cache,
    /// CPU samples' walks.
    pub quality: Quality,
    /// Switch-out samples' walks (off-CPU time): apart, so that the CPU figures every header states keep
    /// their meaning (shares of the CPU samples).
    pub off_cpu_quality: Quality,
    /// Hybrid mode: learns how much of each process's stack copy its walks read (see `Budgets`).
    budgets: Option<Budgets>,
    scratch: Scratch,
    /// Whether the last sample's stack is a function of its call chain, its walk registers, the stack words
    /// of `scratch.walk.reads` and the process's mappings alone (see [`Unwinders::last_reads`]).
    last_pure: bool,
    /// Live recordings: walks that run off their copy go on in the process's memory (see `live`).
    continuer: Option<Continuer>,
    /// `record --unwind-check`: each CPU sample's walk of its first bytes and the continuation, against
    /// the walk of its whole copy.
    check: Option<SelfCheck>,
}

/// The self-check of the continuation: CPU samples are walked from their first `bytes` bytes plus the
/// continuation, as the default mode walks them, and from their whole (64 KiB) copy.
#[derive(Clone, Debug, Default)]
pub struct SelfCheck {
    pub bytes: usize,
    /// Samples with a stack copy.
    pub samples: u64,
    /// Walks of the first `bytes` bytes that ran off their end.
    pub cut: u64,
    /// Of them, walks the continuation extended.
    pub continued: u64,
    /// Continued walks that hold every frame of the full walk, in order.
    pub identical: u64,
    /// Continued walks that differ in a frame the full walk reached.
    pub wrong: u64,
    /// Continued walks that agree with the full walk but stopped before its end.
    pub short: u64,
    /// The first [`MAX_CHECK_LINES`] wrong walks: pid, tid, frame index, the full walk's and the
    /// continued walk's address there.
    pub wrongs: Vec<(u32, u32, usize, u64, u64, &'static str)>,
}

/// Wrong walks the self-check keeps for its report (it counts them all).
const MAX_CHECK_LINES: usize = 1000;

impl SelfCheck {
    /// The one-line summary (`record` prints it and keeps it in the profile's notes).
    pub fn summary(&self) -> String {
        format!(
            "unwind check: {} samples, {} cut at {} bytes, {} continued ({} identical, {} wrong, {} stopped short), {} not continued",
            self.samples,
            self.cut,
            self.bytes,
            self.continued,
            self.identical,
            self.wrong,
            self.short,
            self.cut - self.continued
        )
    }

    fn compare(
        &mut self,
        pid: u32,
        tid: u32,
        full: &[Frame],
        continued: &[Frame],
        how: &'static str,
    ) {
        self.continued += 1;
        let differs = full.iter().zip(continued).position(|(a, b)| a != b);
        match differs {
            Some(i) => {
                self.wrong += 1;
                if self.wrongs.len() < MAX_CHECK_LINES {
                    self.wrongs.push((
                        pid,
                        tid,
                        i,
                        full[i].address.lookup_address().0,
                        continued[i].address.lookup_address().0,
                        how,
                    ));
                }
            }
            None if continued.len() >= full.len() => self.identical += 1,
            None => self.short += 1,
        }
    }
}

/// Buffers reused from sample to sample.
#[derive(Default)]
struct Scratch {
    /// The kernel's chain, and its user frames.
    chain: Stack,
    user: Vec<Frame>,
    walk: dwarf::Walk,
    fp_frames: Vec<(u64, u64)>,
    /// The self-check's walk of the first bytes.
    cut: dwarf::Walk,
}

/// Samples a process's walks are watched for before its stack copies are cut to what they read.
const BUDGET_WINDOW: u32 = 256;
/// The smallest cut: a walk of a frame-pointer program reads a few hundred bytes.
const MIN_BUDGET: u64 = 256;

/// Per process, the most stack any walk read lately; once `BUDGET_WINDOW` walks have read at most two thirds
/// of a limit, the reader keeps only that limit of later copies (the bytes copied out of the ring are much of
/// the reader's cost, see `benches/README.md`). A walk that then runs off the end of a cut copy
/// restores the whole copy, and the process is watched twice as long before it is cut again. In hybrid mode
/// a walk cut short still joins the frame-pointer chain where it can (that is what the chain is for); a
/// program without frame pointers reads deep into its copies and is never cut.
struct Budgets {
    shared: StackBudget,
    processes: HashMap<u32, ProcessBudget>,
}

#[derive(Default)]
struct ProcessBudget {
    /// The limit in force (None: the whole copy).
    limit: Option<u32>,
    /// Most bytes read by a walk in this window; `u64::MAX` once a walk ran off a whole copy.
    most: u64,
    walks: u32,
    /// Times a cut copy proved too short.
    misses: u32,
}

impl Budgets {
    fn observe(&mut self, pid: u32, sp: u64, copied: usize, walk: &dwarf::Walk) {
        let p = self.processes.entry(pid).or_default();
        let exhausted = walk.end == WalkEnd::CopyExhausted;
        if let Some(limit) = p.limit {
            if exhausted && copied >= limit as usize {
                p.limit = None;
                p.misses = p.misses.saturating_add(1);
                p.most = 0;
                p.walks = 0;
                self.shared.set(pid, None);
            }
            return;
        }
        // A walk reads the return address just below each frame's CFA: the outermost CFA bounds the read.
        let read = walk.cfas.last().map_or(0, |cfa| cfa.saturating_sub(sp));
        p.most = if exhausted {
            u64::MAX
        } else {
            p.most.max(read)
        };
        p.walks += 1;
        if p.walks < BUDGET_WINDOW.saturating_mul(1 << p.misses.min(6)) {
            return;
        }
        let limit = p
            .most
            .saturating_mul(3)
            .div_ceil(2)
            .div_ceil(64)
            .saturating_mul(64)
            .max(MIN_BUDGET);
        if limit < copied as u64 {
            p.limit = u32::try_from(limit).ok();
            self.shared.set(pid, p.limit);
        }
        p.most = 0;
        p.walks = 0;
    }

    fn forget(&mut self, pid: u32) {
        if self
            .processes
            .remove(&pid)
            .is_some_and(|p| p.limit.is_some())
        {
            self.shared.set(pid, None);
        }
    }
}

impl Unwinders {
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn new(mode: Mode, limits: fp::Limits) -> Unwinders {
        Unwinders {
            mode,
            limits,
            processes: HashMap::new(),
            tables: HashMap::new(),
            fdes: HashMap::new(),
            cache: Cache::new(),
            quality: Quality::default(),
            off_cpu_quality: Quality::default(),
            budgets: None,
            scratch: Scratch::default(),
            last_pure: false,
            continuer: None,
            check: None,
        }
    }

    /// Continue walks that run off their copy in the live process, read through `memory` (live recordings
    /// only: after the fact the process is gone, and its pid may be another's).
    pub fn with_continuation(mut self, memory: Box<dyn LiveMemory + Send>) -> Unwinders {
        self.continuer = Some(Continuer::new(memory));
        self
    }

    /// The self-check (see [`SelfCheck`]): the profile gets the walks of the whole copies. Stack budgets
    /// are off (they would cut the copies).
    pub fn with_self_check(mut self, bytes: usize) -> Unwinders {
        self.check = Some(SelfCheck {
            bytes,
            ..SelfCheck::default()
        });
        self.budgets = None;
        self
    }

    /// The self-check's figures, when on.
    pub fn self_check(&self) -> Option<&SelfCheck> {
        self.check.as_ref()
    }

    /// Hybrid mode: cut each process's stack copies to what its walks read, through `shared` (the reader's
    /// side of it). Dwarf mode keeps whole copies: there a walk cut short is a stack cut short.
    pub fn with_stack_budget(mut self, shared: StackBudget) -> Unwinders {
        if self.mode == Mode::Hybrid {
            self.budgets = Some(Budgets {
                shared,
                processes: HashMap::new(),
            });
        }
        self
    }

    /// The stack words the last `unwind_into` read, `(address, value)`, when its stack is a function of the
    /// sample's call chain, the walk registers ([`Regs::from_sample`]), these words and the process's mappings
    /// alone (a walk by the tables that ended by itself; or no walk at all); `None` otherwise. A later sample
    /// of the same process, mappings, chain and registers whose copy holds these words gets the same stack.
    pub fn last_reads(&self) -> Option<&[(u64, u64)]> {
        self.last_pure.then_some(self.scratch.walk.reads.as_slice())
    }

    /// A sample read before the ones before it are walked: the continuation learns where its thread's stack
    /// pointer was (see `live::Continuer::ahead`).
    pub fn ahead(&mut self, sample: &SampleRecord) {
        if let (Some(c), Some(regs)) = (
            &mut self.continuer,
            sample.user_regs.as_deref().and_then(Regs::from_sample),
        ) {
            c.ahead(sample.tid, sample.time, regs.sp);
        }
    }

    /// Forgets a process (after it exited and its samples were processed).
    /// The end of a recording: no sample is walked any more, so every process's unwinder and the modules'
    /// unwind tables and FDE indexes go (tens of MB under a Rust build: rustc's and LLVM's tables), before
    /// the symbols are read. The statistics stay.
    pub fn release_tables(&mut self) {
        self.processes = HashMap::default();
        self.tables = HashMap::default();
        self.fdes = HashMap::default();
    }

    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
        if let Some(c) = &mut self.continuer {
            c.forget(pid);
        }
        if let Some(b) = &mut self.budgets {
            b.forget(pid);
        }
    }

    /// The stack of one sample: kernel frames from the kernel's chain, user frames from the tables (and, in
    /// hybrid mode, the frame-pointer chain beyond the copy).
    pub fn unwind(
        &mut self,
        sample: &SampleRecord,
        processes: &Processes,
        loader: &mut Loader<'_>,
    ) -> Stack {
        let mut stack = Stack::default();
        self.unwind_into(sample, processes, loader, &mut stack);
        stack
    }

    /// `unwind` into `out`, reusing its buffer and this unwinder's scratch space: once warm, a sample
    /// allocates nothing here. A switch-out sample's walk (and a lock probe's) counts in `off_cpu_quality` and
    /// teaches the stack budget nothing (its copy is smaller than a CPU sample's, see
    /// `acquire::SWITCH_HYBRID_STACK_BYTES` and `LOCK_HYBRID_STACK_BYTES`).
    pub fn unwind_into(
        &mut self,
        sample: &SampleRecord,
        processes: &Processes,
        loader: &mut Loader<'_>,
        out: &mut Stack,
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        if sample.kind != SampleKind::Cpu {
            std::mem::swap(&mut self.quality, &mut self.off_cpu_quality);
            let budgets = self.budgets.take();
            self.unwind_with(&mut scratch, sample, processes, loader, out);
            self.budgets = budgets;
            std::mem::swap(&mut self.quality, &mut self.off_cpu_quality);
        } else {
            self.unwind_with(&mut scratch, sample, processes, loader, out);
        }
        self.scratch = scratch;
    }

    fn unwind_with(
        &mut self,
        scratch: &mut Scratch,
        sample: &SampleRecord,
        processes: &Processes,
        loader: &mut Loader<'_>,
        out: &mut Stack,
    ) {
        let Scratch {
            chain,
            user,
            walk,
            fp_frames,
            cut,
        } = scratch;
        fp::frames_into(&sample.callchain, self.limits, chain);
        // Kernel frames first, then user frames, each in the chain's order.
        user.clear();
        out.frames.clear();
        for &f in &chain.frames {
            if f.kernel {
                out.frames.push(f);
            } else {
                user.push(f);
            }
        }
        out.truncated = chain.truncated;
        self.quality.samples += 1;
        // The walk reads nothing of the stack on the way out below; a full walk sets it again.
        walk.reads.clear();
        self.last_pure = true;
        let regs = sample.user_regs.as_deref().and_then(Regs::from_sample);
        let (Some(regs), Some(bytes)) = (regs, sample.user_stack.as_deref()) else {
            // A kernel thread, or a sample the kernel could not copy a stack for.
            self.quality.no_stack += 1;
            if chain.truncated {
                self.quality.truncated += 1;
            }
            out.frames.clone_from(&chain.frames);
            return;
        };
        if regs.sp == 0 || bytes.is_empty() {
            self.quality.no_stack += 1;
            if chain.truncated {
                self.quality.truncated += 1;
            }
            out.frames.clone_from(&chain.frames);
            return;
        }
        self.refresh(sample.pid, processes, loader);
        let Some(process) = self.processes.get(&sample.pid) else {
            out.frames.clone_from(&chain.frames);
            return;
        };
        let max_depth = self.limits.max_depth.saturating_sub(out.frames.len());
        let mut is_code = |ra: u64| {
            matches!(
                processes.resolve(sample.pid, Avma(ra.saturating_sub(1))),
                Resolved::Module { .. }
            )
        };
        // Which function a return address returns into: its module and the start of its FDE.
        let (tables, fdes) = (&self.tables, &mut self.fdes);
        let mut function_of = |ra: u64| -> Option<(usize, u64)> {
            let (module, t, svma) =
                tables_at(tables, processes, sample.pid, Avma(ra.saturating_sub(1)))?;
            let start = match t.function_start(svma.0) {
                Covering::Fde(start) => start,
                Covering::Nothing => return None,
                Covering::AskIndex => fdes
                    .entry(Arc::clone(&module))
                    .or_insert_with(|| t.fde_index())
                    .start_of(svma.0)?,
            };
            Some((Arc::as_ptr(&module) as usize, start))
        };
        // The self-check walks the first bytes as the default mode would, continuation included; the
        // sample itself then gets the walk of its whole copy, not continued.
        let mut continuer = self.continuer.take();
        if let (Some(check), Some(c)) = (&mut self.check, &mut continuer) {
            if sample.kind == SampleKind::Cpu {
                check.samples += 1;
                let first = StackCopy {
                    sp: regs.sp,
                    bytes: bytes.get(..check.bytes).unwrap_or(bytes),
                };
                dwarf::walk_into(
                    &process.unwinder,
                    &mut self.cache,
                    regs,
                    first,
                    max_depth,
                    cut,
                );
                let full = dwarf::walk(
                    &process.unwinder,
                    &mut self.cache,
                    regs,
                    StackCopy { sp: regs.sp, bytes },
                    max_depth,
                );
                match cut.end {
                    WalkEnd::CopyExhausted => {
                        check.cut += 1;
                        let before = cut.frames.len();
                        let outcome = c.extend(
                            &process.unwinder,
                            &mut self.cache,
                            sample.pid,
                            sample.tid,
                            sample.time,
                            first,
                            cut,
                            max_depth,
                            &mut is_code,
                            &mut function_of,
                            &mut self.quality.continuation,
                        );
                        if cut.frames.len() > before
                            && !matches!(outcome, live::Outcome::Refused(_))
                        {
                            let how = match outcome {
                                live::Outcome::FromMemory => "from memory",
                                _ => "partly from memory",
                            };
                            check.compare(sample.pid, sample.tid, &full.frames, &cut.frames, how);
                        }
                    }
                    WalkEnd::Complete if c.follows(sample.tid) => {
                        let _ = c.observe(sample.tid, sample.time, cut, &mut function_of);
                    }
                    _ => {}
                }
            }
        }
        // Under the self-check the sample keeps its whole copy's walk.
        let live = self.check.is_none();
        let stack = StackCopy { sp: regs.sp, bytes };
        dwarf::walk_into(
            &process.unwinder,
            &mut self.cache,
            regs,
            stack,
            max_depth,
            walk,
        );
        if walk.end != WalkEnd::Complete
            && at_entry(&self.tables, processes, sample.pid, walk.frames.last())
        {
            walk.end = WalkEnd::Complete;
        } else if walk.frames.len() == 2
            && at_entry(&self.tables, processes, sample.pid, walk.frames.first())
        {
            // Sampled at a process's first instruction (its execve's return, the page fault of its first
            // fetch): the entry code's frame is the leaf, and the walk took the word at the stack pointer
            // (argc) for its return address.
            walk.truncate(1, WalkEnd::Complete);
        }
        if let Some(b) = &mut self.budgets {
            b.observe(sample.pid, regs.sp, bytes.len(), walk);
        }
        let mut stopped_at = walk.frames.last().map(|f| f.address.lookup_address());
        let mut broken = walk.end == WalkEnd::Broken;
        // A splice reads the frame-pointer chain in the copy besides: not tracked.
        self.last_pure = matches!(walk.end, WalkEnd::Complete | WalkEnd::DepthCap);
        let user_start = out.frames.len();
        let mut outcome = match self.mode {
            // A sample without the kernel's user chain (a switch-out's, see `acquire::counters::Opener::
            // switch_opts`): nothing is known beyond the copy, as when the kernel cut its chain.
            Mode::Hybrid => hybrid::splice_into(
                walk,
                regs.bp,
                stack,
                user,
                chain.truncated || user.is_empty(),
                fp_frames,
                &mut out.frames,
            ),
            Mode::Dwarf => {
                out.frames.extend_from_slice(&walk.frames);
                Outcome {
                    truncated: walk.end != WalkEnd::Complete,
                    fell_back: false,
                }
            }
        };
        if outcome.truncated
            && walk.end == WalkEnd::CopyExhausted
            && sample.stack_copied < sample.stack_asked
        {
            self.quality
                .short_copies
                .add(sample.stack_copied, sample.stack_asked);
        }
        match (continuer.as_mut().filter(|_| live), walk.end) {
            (Some(c), WalkEnd::CopyExhausted) if outcome.truncated => {
                let before = walk.frames.len();
                let continued = c.extend(
                    &process.unwinder,
                    &mut self.cache,
                    sample.pid,
                    sample.tid,
                    sample.time,
                    stack,
                    walk,
                    max_depth,
                    &mut is_code,
                    &mut function_of,
                    &mut self.quality.continuation,
                );
                // A partial continuation replaces a splice only where the splice kept nothing beyond the
                // table walk.
                let take = match continued {
                    live::Outcome::FromMemory => true,
                    live::Outcome::Partial(_) => outcome.fell_back || self.mode == Mode::Dwarf,
                    live::Outcome::Refused(_) => false,
                };
                if take {
                    out.frames.truncate(user_start);
                    out.frames.extend_from_slice(&walk.frames);
                    outcome = Outcome {
                        truncated: walk.end != WalkEnd::Complete,
                        fell_back: false,
                    };
                    stopped_at = walk.frames.last().map(|f| f.address.lookup_address());
                    broken = walk.end == WalkEnd::Broken;
                    self.last_pure = false;
                } else {
                    walk.truncate(before, WalkEnd::CopyExhausted);
                }
            }
            (Some(c), WalkEnd::Complete) if c.follows(sample.tid) => {
                let _ = c.observe(sample.tid, sample.time, walk, &mut function_of);
            }
            _ => {}
        }
        self.continuer = continuer;
        out.truncated = outcome.truncated;
        self.record_outcome(sample.pid, processes, outcome, broken, stopped_at);
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
            // JIT code has no unwind tables: framehop walks it by frame pointers.
            if module.is_anonymous() {
                continue;
            }
            let tables = self
                .tables
                .entry(Arc::clone(&module))
                .or_insert_with(|| loader(&module, &mapping).map(Arc::new))
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

    /// Drops the unwind tables of the modules for which `keep` is false (no process maps them any more), and
    /// their quality figures unless `figures` (a file read keeps them for its header). A process unwinder
    /// built with one keeps its tables until it is rebuilt or forgotten.
    pub fn retain_modules(&mut self, mut keep: impl FnMut(&Module) -> bool, figures: bool) {
        self.tables.retain(|m, _| keep(m));
        self.fdes.retain(|m, _| keep(m));
        if !figures {
            self.quality.modules.retain(|m, _| keep(m));
            self.off_cpu_quality.modules.retain(|m, _| keep(m));
        }
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

/// Whether `frame` (where a walk stopped) lies in the entry code of its module (see
/// [`UnwindTables::is_entry`]): the main thread's root, not a cut stack.
fn at_entry(
    tables: &HashMap<Arc<Module>, Option<Arc<UnwindTables>>>,
    processes: &Processes,
    pid: u32,
    frame: Option<&Frame>,
) -> bool {
    frame
        .and_then(|f| tables_at(tables, processes, pid, f.address.lookup_address()))
        .is_some_and(|(_, t, svma)| t.is_entry(svma.0))
}

/// The module of process `pid` that maps `addr`, its unwind tables (when read) and the SVMA there.
fn tables_at<'t>(
    tables: &'t HashMap<Arc<Module>, Option<Arc<UnwindTables>>>,
    processes: &Processes,
    pid: u32,
    addr: Avma,
) -> Option<(Arc<Module>, &'t UnwindTables, Svma)> {
    let Resolved::Module { module, offset, .. } = processes.resolve(pid, addr) else {
        return None;
    };
    let t = tables.get(&module)?.as_deref()?;
    let svma = t.offset_to_svma(offset)?;
    Some((module, t, svma))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn walk(sp: u64, read: u64, end: WalkEnd) -> dwarf::Walk {
        dwarf::Walk {
            reads: Vec::new(),
            frames: Vec::new(),
            cfas: vec![sp, sp + read],
            bps: Vec::new(),
            end,
        }
    }

    fn budgets() -> (StackBudget, Budgets) {
        let shared = StackBudget::default();
        let b = Budgets {
            shared: shared.clone(),
            processes: HashMap::new(),
        };
        (shared, b)
    }

    #[test]
    fn copies_are_cut_to_what_walks_read_and_restored_when_a_walk_runs_off_the_cut() {
        let (shared, mut b) = budgets();
        let sp = 0x7ffd_0000;
        for _ in 0..BUDGET_WINDOW - 1 {
            b.observe(7, sp, 16384, &walk(sp, 300, WalkEnd::Complete));
        }
        assert_eq!(shared.get(7), None, "watched a whole window first");
        b.observe(7, sp, 16384, &walk(sp, 2500, WalkEnd::Complete));
        assert_eq!(
            shared.get(7),
            Some(3776),
            "one and a half times the most read, rounded up to 64 bytes"
        );
        // A walk that ran off the cut copy brings the whole copy back, and the next window is longer.
        b.observe(7, sp, 5120, &walk(sp, 5000, WalkEnd::CopyExhausted));
        assert_eq!(shared.get(7), None);
        for _ in 0..BUDGET_WINDOW {
            b.observe(7, sp, 16384, &walk(sp, 300, WalkEnd::Complete));
        }
        assert_eq!(shared.get(7), None, "second window is twice as long");
        for _ in 0..BUDGET_WINDOW {
            b.observe(7, sp, 16384, &walk(sp, 300, WalkEnd::Complete));
        }
        assert_eq!(shared.get(7), Some(512), "450 bytes rounded up to 64");
        b.forget(7);
        for _ in 0..BUDGET_WINDOW {
            b.observe(7, sp, 16384, &walk(sp, 100, WalkEnd::Complete));
        }
        assert_eq!(
            shared.get(7),
            Some(MIN_BUDGET as u32),
            "never below the minimum"
        );
        b.forget(7);
        assert_eq!(shared.get(7), None);
    }

    #[test]
    fn a_program_that_needs_its_whole_copy_is_never_cut() {
        let (shared, mut b) = budgets();
        let sp = 0x7ffd_0000;
        for i in 0..BUDGET_WINDOW * 4 {
            let end = if i % 100 == 0 {
                WalkEnd::CopyExhausted
            } else {
                WalkEnd::Complete
            };
            b.observe(9, sp, 16384, &walk(sp, 9000, end));
        }
        assert_eq!(shared.get(9), None);
    }
}
