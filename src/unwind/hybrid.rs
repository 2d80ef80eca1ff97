//! Hybrid mode: the unwind tables walk the copied user stack (repairing the frames frame pointers skip: a
//! frameless leaf such as libc's `pthread_mutex_lock`, a prologue, an epilogue), and where the copy ends
//! the walk continues on the kernel's frame-pointer chain, joined by stack address.
//!
//! ```text
//!   high addresses                                        kernel's user chain (by frame pointers)
//!   ┌──────────────┐                                      u[0] = ip
//!   │ ra_1         │ bp_1 + 8     ... outside the copy    u[1] = ra_0   (read at bp_0 + 8)
//!   │ saved bp_2   │ bp_1                                 u[2] = ra_1   (read at bp_1 + 8)
//!   ├──────────────┤ <- copy ends                         ...
//!   │ ra_0         │ bp_0 + 8   <- a frame the tables found with CFA = bp_0 + 16
//!   │ saved bp_1   │ bp_0          has return address ra_0: splice here, continue with u[2..]
//!   │ ...          │
//!   │ frameless    │ <- tables find this frame; frame pointers skip it
//!   └──────────────┘ sp (sampled)
//! ```
//! The frame-pointer chain is re-walked inside the copy (`bp_0` is the sampled bp, `bp_{k+1} = [bp_k]`), so
//! the kernel's entry `u[k+1]` belongs to the frame based at `bp_k`. We join at the deepest table-walked frame
//! whose CFA equals some `bp_k + 16`: by stack address, not by return-address value (return addresses repeat
//! in recursion, and libc uses the bp register for other data). Where nothing matches, the table-walked
//! frames are kept and the sample counts as fallen back.

use std::collections::HashMap;

use super::dwarf::{StackCopy, Walk, WalkEnd};
use super::Frame;
use crate::addr::{Avma, FrameAddress};

/// How a hybrid (or dwarf) walk ended, for the unwind-quality summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Outer frames are missing.
    pub truncated: bool,
    /// The tables could not reach the frame-pointer chain; only the table-walked frames were kept.
    pub fell_back: bool,
}

/// Joins a table walk of the copied stack with the kernel's frame-pointer chain of user frames
/// (`user_chain[0]` is the ip; `kernel_cut` when the kernel stopped at its frame limit).
pub fn splice(
    walk: Walk,
    sampled_bp: u64,
    stack: StackCopy<'_>,
    user_chain: &[Frame],
    kernel_cut: bool,
) -> (Vec<Frame>, Outcome) {
    match walk.end {
        WalkEnd::Complete => return (walk.frames, Outcome::default()),
        WalkEnd::DepthCap => {
            return (
                walk.frames,
                Outcome {
                    truncated: true,
                    fell_back: false,
                },
            )
        }
        WalkEnd::CopyExhausted | WalkEnd::Broken => {}
    }
    // Frame-pointer frames inside the copy: frame k is based at bp_k and holds return address ra_k.
    let mut fp_frames: Vec<(u64, u64)> = Vec::new();
    let mut bp = sampled_bp;
    // The chain ends inside the copy at a saved bp of 0: the root frame.
    let mut reached_root = false;
    while let (Some(next), Some(ra)) = (stack.read(bp), stack.read(bp.wrapping_add(8))) {
        fp_frames.push((bp, ra));
        if next == 0 {
            reached_root = true;
            break;
        }
        if next <= bp || fp_frames.len() >= MAX_FP_FRAMES {
            break;
        }
        bp = next;
    }
    let bases: HashMap<u64, usize> = fp_frames
        .iter()
        .enumerate()
        .map(|(k, &(bp, _))| (bp.wrapping_add(16), k))
        .collect();
    let join = walk
        .cfas
        .iter()
        .enumerate()
        .rev()
        .find_map(|(j, cfa)| bases.get(cfa).map(|&k| (j, k)));
    let Some((j, k)) = join else {
        return (
            walk.frames,
            Outcome {
                truncated: true,
                fell_back: true,
            },
        );
    };
    let mut frames = walk.frames;
    frames.truncate(j + 1);
    // The table frame j returned to ra_k. Its callers: the frame-pointer frames still inside the copy
    // (these can go past the kernel's frame limit), then the kernel's chain beyond the copy, where
    // user_chain[i + 1] is ra_i.
    frames.extend(fp_frames[k + 1..].iter().map(|&(_, ra)| Frame {
        address: FrameAddress::ReturnAddress(Avma(ra)),
        kernel: false,
    }));
    let beyond = fp_frames.len() + 1;
    frames.extend_from_slice(user_chain.get(beyond..).unwrap_or(&[]));
    // Beyond the copy only the kernel's chain knows the frames, and it may have stopped at its limit.
    let truncated = !reached_root && kernel_cut;
    (
        frames,
        Outcome {
            truncated,
            fell_back: false,
        },
    )
}

/// Frame-pointer frames re-walked in one copy at most (a 64 KiB copy holds at most 4096 of them).
const MAX_FP_FRAMES: usize = 8192;
