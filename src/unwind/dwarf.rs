//! Walking a copied user stack with unwind tables (framehop), frame by frame, keeping each frame's
//! canonical frame address (CFA) so hybrid mode can splice the walk onto the frame-pointer chain.
//!
//! The stack copy starts at the sampled stack pointer; framehop reads it through a closure and never sees
//! memory outside it: a read past the copy ends the walk as `CopyExhausted`.

use std::cell::Cell;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::Unwinder as _;

use super::tables::Bytes;
use super::Frame;
use crate::addr::{Avma, FrameAddress};

pub type Unwinder = UnwinderX86_64<Bytes>;
pub type Cache = CacheX86_64;

/// The user registers a walk starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

impl Regs {
    /// A sample's registers, in `arch::USER_REGS` order.
    pub fn from_sample(user_regs: &[u64]) -> Option<Regs> {
        let r = crate::arch::walk_regs(user_regs)?;
        Some(Regs {
            ip: r.ip,
            sp: r.sp,
            bp: r.fp,
        })
    }
}

/// A copy of user stack memory starting at `sp`.
#[derive(Clone, Copy, Debug)]
pub struct StackCopy<'a> {
    pub sp: u64,
    pub bytes: &'a [u8],
}

impl StackCopy<'_> {
    pub fn read(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.sp)?).ok()?;
        let b = self.bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// One past the last copied address.
    pub fn end(&self) -> u64 {
        self.sp.saturating_add(self.bytes.len() as u64)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WalkEnd {
    /// The tables say this is the outermost frame (or the return address is 0).
    #[default]
    Complete,
    /// The next frame's return address lies beyond the copy.
    CopyExhausted,
    /// The walk went wrong (no progress, garbage); the frames so far are kept.
    Broken,
    /// Our depth cap.
    DepthCap,
}

/// Frames found by the tables, innermost first, with the CFA of each frame (for the first frame, the
/// sampled stack pointer): frame `i`'s caller resumes at `frames[i + 1]` with `sp = cfas[i + 1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub frames: Vec<Frame>,
    pub cfas: Vec<u64>,
    /// The bp register each frame resumes with (framehop tracks ip, sp and bp): with `frames` and `cfas`,
    /// what a walk needs to go on from any of its frames (see [`resume_into`]).
    pub bps: Vec<u64>,
    pub end: WalkEnd,
    /// Every stack word the walk read, `(address, value)`, in order: the walk is a function of the registers,
    /// the unwind tables and these words alone, so a later stack that holds the same words at the same
    /// addresses walks the same (see `Unwinders::last_reads`).
    pub reads: Vec<(u64, u64)>,
}

impl Walk {
    /// Forgets the frames from `len` on (a continuation that was not kept).
    pub fn truncate(&mut self, len: usize, end: WalkEnd) {
        self.frames.truncate(len);
        self.cfas.truncate(len);
        self.bps.truncate(len);
        self.end = end;
    }
}

/// Walks the user stack from `regs` through `stack`, at most `max_depth` frames.
pub fn walk(
    unwinder: &Unwinder,
    cache: &mut Cache,
    regs: Regs,
    stack: StackCopy<'_>,
    max_depth: usize,
) -> Walk {
    let mut walk = Walk::default();
    walk_into(unwinder, cache, regs, stack, max_depth, &mut walk);
    walk
}

/// `walk` into `out`, reusing its buffers (a sample then allocates nothing here).
pub fn walk_into(
    unwinder: &Unwinder,
    cache: &mut Cache,
    regs: Regs,
    stack: StackCopy<'_>,
    max_depth: usize,
    out: &mut Walk,
) {
    out.frames.clear();
    out.cfas.clear();
    out.bps.clear();
    out.reads.clear();
    out.frames.push(Frame {
        address: FrameAddress::InstructionPointer(Avma(regs.ip)),
        kernel: false,
    });
    out.cfas.push(regs.sp);
    out.bps.push(regs.bp);
    let unwind_regs = UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp);
    let address = framehop::FrameAddress::from_instruction_pointer(regs.ip);
    let end = stack.end();
    let mut read = |addr: u64| match stack.read(addr) {
        Some(value) => Read::Value(value),
        None if addr >= end => Read::PastEnd,
        None => Read::Invalid,
    };
    out.end = run(
        unwinder,
        cache,
        unwind_regs,
        address,
        &mut read,
        &mut |_| true,
        max_depth,
        out,
    );
}

/// What a walk's memory gives for one stack word.
pub enum Read {
    Value(u64),
    /// Past the end of what can be read (the copy's end: `CopyExhausted`).
    PastEnd,
    /// Not stack memory (below sp, garbage): the walk is `Broken`.
    Invalid,
}

/// Goes on with a walk that ended (`CopyExhausted`, typically) from its last frame, reading the stack
/// through `read`, and keeping a frame only when `accept` takes its return address (a continuation in live
/// memory takes only addresses in executable code). Frames are appended; `reads` records only the words
/// read here that `read` gave.
pub fn resume_into(
    unwinder: &Unwinder,
    cache: &mut Cache,
    read: &mut dyn FnMut(u64) -> Read,
    accept: &mut dyn FnMut(u64) -> bool,
    max_depth: usize,
    out: &mut Walk,
) {
    let (Some(frame), Some(&sp), Some(&bp)) = (out.frames.last(), out.cfas.last(), out.bps.last())
    else {
        return;
    };
    let (ip, address) = match frame.address {
        FrameAddress::InstructionPointer(a) => {
            (a.0, framehop::FrameAddress::from_instruction_pointer(a.0))
        }
        FrameAddress::ReturnAddress(a) => match framehop::FrameAddress::from_return_address(a.0) {
            Some(address) => (a.0, address),
            None => return,
        },
    };
    let regs = UnwindRegsX86_64::new(ip, sp, bp);
    out.end = run(unwinder, cache, regs, address, read, accept, max_depth, out);
}

#[allow(clippy::too_many_arguments)]
fn run(
    unwinder: &Unwinder,
    cache: &mut Cache,
    mut unwind_regs: UnwindRegsX86_64,
    mut address: framehop::FrameAddress,
    read: &mut dyn FnMut(u64) -> Read,
    accept: &mut dyn FnMut(u64) -> bool,
    max_depth: usize,
    out: &mut Walk,
) -> WalkEnd {
    let Walk {
        frames,
        cfas,
        bps,
        reads,
        ..
    } = out;
    // Set when a read failed because it was past the end of the memory (not below sp, not garbage).
    let exhausted = Cell::new(false);
    let mut read_word = |addr: u64| -> Result<u64, ()> {
        match read(addr) {
            Read::Value(value) => {
                reads.push((addr, value));
                Ok(value)
            }
            Read::PastEnd => {
                exhausted.set(true);
                Err(())
            }
            Read::Invalid => Err(()),
        }
    };
    loop {
        if frames.len() >= max_depth {
            break WalkEnd::DepthCap;
        }
        let prev_sp = unwind_regs.sp();
        // No user stack lies in the first page; framehop would subtract 8 from a stack pointer computed
        // from one there unchecked (a fuzz crash in its x86_64 rules).
        if prev_sp < 4096 {
            break WalkEnd::Broken;
        }
        exhausted.set(false);
        match unwinder.unwind_frame(address, &mut unwind_regs, cache, &mut read_word) {
            Ok(Some(ra)) => {
                let cfa = unwind_regs.sp();
                // The stack grows down: every caller's frame lies above its callee's. Anything else is a
                // loop or garbage.
                if cfa <= prev_sp {
                    break WalkEnd::Broken;
                }
                let Some(next) = framehop::FrameAddress::from_return_address(ra) else {
                    break WalkEnd::Complete;
                };
                if !accept(ra) {
                    break WalkEnd::Broken;
                }
                frames.push(Frame {
                    address: FrameAddress::ReturnAddress(Avma(ra)),
                    kernel: false,
                });
                cfas.push(cfa);
                bps.push(unwind_regs.bp());
                address = next;
            }
            Ok(None) | Err(framehop::Error::ReturnAddressIsNull) => break WalkEnd::Complete,
            Err(_) if exhausted.get() => break WalkEnd::CopyExhausted,
            Err(_) => break WalkEnd::Broken,
        }
    }
}
