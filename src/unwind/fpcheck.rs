//! Frame-pointer chains checked against the unwind tables: in fp mode and in perf.data files recorded with
//! `perf record -g`, which stacks went wrong in code without frame pointers, and in which module.
//!
//! The kernel walks a chain by rbp: each frame's caller is read at `rbp + 8`, the next frame at `[rbp]`. That
//! holds only in a frame whose CFA is `rbp + 16`. In any other frame (a function built without frame
//! pointers, such as Debian's libc; a function's first or last instructions; a PLT stub) rbp still holds the
//! caller's frame, so the caller is skipped, or it holds whatever the code keeps there and the chain goes on
//! through garbage (`[unknown] [unmapped]+0x0`). Each user frame's address is looked up in its module's CFI
//! ([`UnwindTables::frame_kind`]); the first frame in a function that never keeps a frame pointer, or before a
//! return address that lies in no mapping, marks the sample, charged to that frame's module.
//!
//! What it costs: a module's tables are read when a chain first passes through it (its headers, `.eh_frame`,
//! `.eh_frame_hdr`, `.debug_frame` and up to 4 MiB of its text, as hybrid mode reads every mapped module's;
//! libc's tables are 0.3 MB), and its FDEs indexed once (24 bytes each). Each distinct address then costs one
//! FDE parsed and its CFI program run, once; later samples pay a mapping lookup and a hash lookup per user
//! frame, up to the first wrong one. fp mode's walk itself stays the kernel's. Measured on a debug build
//! importing a `perf record -g -a` file of 11,735 samples: 52 ms of the report's 510, of which 32 ms reading
//! libc's tables, 1 ms for the 80 distinct addresses, the rest the per-sample lookups.

use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;

use super::modules::{Loader, ModuleQuality};
use super::tables::{FdeIndex, FrameKind, UnwindTables};
use super::Stack;
use crate::addr::{FileOffset, FrameAddress};
use crate::process::{Mapping, Module, Processes, Resolved};

/// One user frame of a chain, as [`first_wrong`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Code in a module, with what its CFI says of the frame there.
    Code(FrameKind),
    /// An address in no mapping, or in the kernel's half: what the chain read there was no return address.
    Garbage,
}

/// What a chain of user frames is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every frame the CFI knows keeps a frame pointer.
    Right,
    /// Some frame was at a function's entry or exit, or in a PLT stub: one caller is skipped, as in any
    /// frame-pointer walk, whatever the code was built with.
    SkippedOne,
    /// Frame `at` is in code without frame pointers, or the chain followed garbage above it: its callers are
    /// skipped or wrong.
    Wrong { at: usize },
}

/// The verdict on a chain of `len` user frames, innermost first, `link(i)` telling frame `i` (asked in order,
/// and no further than the first wrong frame).
///
/// The outermost frame of a chain is left out when it is frameless: the chain ends there, and what it loses is
/// above it, a thread's or a program's start routine (libc's `start_thread`, `__libc_start_call_main`, which
/// most distributions build without frame pointers). A chain of that one frame alone has lost every caller.
/// The sampled instruction (frame 0) outside every mapping is JIT code or a gap in the records, not garbage.
pub fn first_wrong(len: usize, mut link: impl FnMut(usize) -> Link) -> Verdict {
    let mut skipped = false;
    for i in 0..len {
        match link(i) {
            Link::Code(FrameKind::Frameless) if i == 0 || i + 1 < len => {
                return Verdict::Wrong { at: i };
            }
            Link::Code(FrameKind::Between) => skipped = true,
            Link::Code(FrameKind::Outermost) => break,
            Link::Garbage if i > 0 => return Verdict::Wrong { at: i - 1 },
            Link::Code(_) | Link::Garbage => {}
        }
    }
    if skipped {
        Verdict::SkippedOne
    } else {
        Verdict::Right
    }
}

/// A module's tables with their FDEs indexed.
struct Rules {
    tables: UnwindTables,
    index: FdeIndex,
}

/// What the checked chains were worth.
#[derive(Clone, Debug, Default)]
pub struct FpQuality {
    /// Samples with user frames, checked.
    pub samples: u64,
    /// Samples whose chain went wrong in code without frame pointers ([`Verdict::Wrong`]).
    pub frameless: u64,
    /// By module: `frameless` counts the samples charged to it; what its tables say of it.
    pub modules: HashMap<Arc<Module>, ModuleQuality>,
}

/// Checks the kernel's frame-pointer chains (see the module docs).
pub struct FpCheck {
    rules: HashMap<Arc<Module>, Option<Arc<Rules>>>,
    /// By module (the address of its `Arc`, held in `rules` while the entry lives) and file offset.
    kinds: HashMap<(usize, u64), FrameKind>,
    /// CPU samples' chains.
    pub quality: FpQuality,
    /// Switch-out samples' chains (off-CPU time), counted apart as `Unwinders::off_cpu_quality` is.
    pub off_cpu_quality: FpQuality,
    /// The user frames of the sample being checked (reused).
    user: Vec<FrameAddress>,
}

impl Default for FpCheck {
    fn default() -> FpCheck {
        FpCheck::new()
    }
}

impl FpCheck {
    pub fn new() -> FpCheck {
        FpCheck {
            rules: HashMap::new(),
            kinds: HashMap::new(),
            quality: FpQuality::default(),
            off_cpu_quality: FpQuality::default(),
            user: Vec::new(),
        }
    }

    /// `check`, for the chain of a switch-out sample: counted in `off_cpu_quality`.
    pub fn check_off_cpu(
        &mut self,
        pid: u32,
        stack: &Stack,
        processes: &Processes,
        loader: &mut Loader<'_>,
    ) {
        std::mem::swap(&mut self.quality, &mut self.off_cpu_quality);
        self.check(pid, stack, processes, loader);
        std::mem::swap(&mut self.quality, &mut self.off_cpu_quality);
    }

    /// Checks the user frames of `stack`, a frame-pointer chain of process `pid`.
    pub fn check(
        &mut self,
        pid: u32,
        stack: &Stack,
        processes: &Processes,
        loader: &mut Loader<'_>,
    ) {
        let mut user = std::mem::take(&mut self.user);
        user.clear();
        user.extend(stack.frames.iter().filter(|f| !f.kernel).map(|f| f.address));
        if !user.is_empty() {
            self.quality.samples += 1;
            let verdict = first_wrong(user.len(), |i| {
                match processes.resolve(pid, user[i].lookup_address()) {
                    // JIT code: no file, no tables.
                    Resolved::Module { module, .. } if module.is_anonymous() => {
                        Link::Code(FrameKind::Unknown)
                    }
                    Resolved::Module {
                        module,
                        mapping,
                        offset,
                    } => Link::Code(self.kind(&module, &mapping, offset.0, loader)),
                    Resolved::Kernel | Resolved::Unmapped => Link::Garbage,
                }
            });
            match verdict {
                // One caller skipped at a function's entry or exit is any frame-pointer walk's lot: no warning.
                Verdict::Right | Verdict::SkippedOne => {}
                Verdict::Wrong { at } => {
                    self.quality.frameless += 1;
                    if let Resolved::Module { module, .. } =
                        processes.resolve(pid, user[at].lookup_address())
                    {
                        self.charge(module);
                    }
                }
            }
        }
        self.user = user;
    }

    fn charge(&mut self, module: Arc<Module>) {
        let rules = self.rules.get(&module).cloned().flatten();
        let entry = self.quality.modules.entry(module).or_default();
        if let Some(r) = rules {
            entry.has_tables = r.tables.has_tables;
            entry.has_frame_pointers = r.tables.has_frame_pointers;
        }
        entry.frameless += 1;
    }

    /// What the CFI of `module` says of the frame at file offset `offset`, its tables read on first use.
    fn kind(
        &mut self,
        module: &Arc<Module>,
        mapping: &Mapping,
        offset: u64,
        loader: &mut Loader<'_>,
    ) -> FrameKind {
        let key = (Arc::as_ptr(module) as usize, offset);
        if let Some(&kind) = self.kinds.get(&key) {
            return kind;
        }
        let rules = self
            .rules
            .entry(Arc::clone(module))
            .or_insert_with(|| {
                loader(module, mapping).map(|tables| {
                    let index = tables.fde_index();
                    Arc::new(Rules { tables, index })
                })
            })
            .clone();
        let kind = rules
            .and_then(|r| {
                let svma = r.tables.offset_to_svma(FileOffset(offset))?;
                Some(r.tables.frame_kind(&r.index, svma))
            })
            .unwrap_or(FrameKind::Unknown);
        self.kinds.insert(key, kind);
        kind
    }

    /// Drops the tables and answers of the modules for which `keep` is false (no process maps them any
    /// more), while their `Arc`s still hold the addresses the answers are keyed by; their figures too unless
    /// `figures` (a file read keeps them for its header: a module mapped again counts on in them).
    pub fn retain_modules(&mut self, mut keep: impl FnMut(&Module) -> bool, figures: bool) {
        self.rules.retain(|m, _| keep(m));
        let live: HashSet<usize> = self.rules.keys().map(|m| Arc::as_ptr(m) as usize).collect();
        self.kinds.retain(|(m, _), _| live.contains(m));
        if !figures {
            self.quality.modules.retain(|m, _| keep(m));
            self.off_cpu_quality.modules.retain(|m, _| keep(m));
        }
    }

    /// Modules whose tables were read (or found missing).
    pub fn table_count(&self) -> usize {
        self.rules.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FrameKind::*;

    fn verdict(links: &[Link]) -> Verdict {
        let mut asked = 0;
        let v = first_wrong(links.len(), |i| {
            assert_eq!(i, asked, "frames are asked in order");
            asked += 1;
            links[i]
        });
        if let Verdict::Wrong { at } = v {
            assert!(asked <= at + 2, "no frame asked past the first wrong one");
        }
        v
    }

    #[test]
    fn a_chain_of_frame_pointer_frames_is_right() {
        let c = Link::Code;
        assert_eq!(verdict(&[]), Verdict::Right);
        assert_eq!(
            verdict(&[c(FramePointer), c(FramePointer), c(Unknown)]),
            Verdict::Right
        );
        // A thread's start routine without frame pointers ends the chain: nothing shown is wrong.
        assert_eq!(verdict(&[c(FramePointer), c(Frameless)]), Verdict::Right);
        // Past the outermost frame nothing is looked at.
        assert_eq!(
            verdict(&[c(FramePointer), c(Outermost), Link::Garbage]),
            Verdict::Right
        );
        // The sampled address in no mapping (JIT code the records do not map) is not garbage.
        assert_eq!(verdict(&[Link::Garbage, c(FramePointer)]), Verdict::Right);
    }

    #[test]
    fn frameless_code_and_garbage_make_a_chain_wrong() {
        let c = Link::Code;
        // libc's pthread_mutex_lock sampled: its caller is skipped.
        assert_eq!(
            verdict(&[c(Frameless), c(FramePointer), c(Frameless)]),
            Verdict::Wrong { at: 0 }
        );
        // A frameless leaf alone has lost every caller.
        assert_eq!(verdict(&[c(Frameless)]), Verdict::Wrong { at: 0 });
        // A frameless function in the middle.
        assert_eq!(
            verdict(&[c(FramePointer), c(Frameless), c(FramePointer)]),
            Verdict::Wrong { at: 1 }
        );
        // The chain read garbage above frame 1: frame 1 is charged (its tables did not say why).
        assert_eq!(
            verdict(&[c(FramePointer), c(Unknown), Link::Garbage, Link::Garbage]),
            Verdict::Wrong { at: 1 }
        );
    }

    #[test]
    fn a_prologue_or_plt_stub_skips_one_caller_only() {
        let c = Link::Code;
        assert_eq!(
            verdict(&[c(Between), c(FramePointer), c(FramePointer)]),
            Verdict::SkippedOne
        );
        assert_eq!(
            verdict(&[c(Between), c(Frameless), c(FramePointer)]),
            Verdict::Wrong { at: 1 }
        );
    }
}
