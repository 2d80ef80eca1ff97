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
    let mut frames = Vec::new();
    let outcome = splice_into(
        &walk,
        sampled_bp,
        stack,
        user_chain,
        kernel_cut,
        &mut Vec::new(),
        &mut frames,
    );
    (frames, outcome)
}

/// `splice`, appending the user frames to `out`; `fp_frames` is scratch space (reused across samples).
pub fn splice_into(
    walk: &Walk,
    sampled_bp: u64,
    stack: StackCopy<'_>,
    user_chain: &[Frame],
    kernel_cut: bool,
    fp_frames: &mut Vec<(u64, u64)>,
    out: &mut Vec<Frame>,
) -> Outcome {
    match walk.end {
        WalkEnd::Complete => {
            out.extend_from_slice(&walk.frames);
            return Outcome::default();
        }
        WalkEnd::DepthCap => {
            out.extend_from_slice(&walk.frames);
            return Outcome {
                truncated: true,
                fell_back: false,
            };
        }
        WalkEnd::CopyExhausted | WalkEnd::Broken => {}
    }
    // Frame-pointer frames inside the copy: frame k is based at bp_k and holds return address ra_k.
    fp_frames.clear();
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
    // The bases grow strictly (the walk above stops otherwise), so a frame whose CFA is `bp_k + 16` is found
    // by binary search, without building an index per sample.
    let join = walk.cfas.iter().enumerate().rev().find_map(|(j, cfa)| {
        let k = fp_frames
            .binary_search_by_key(&cfa.wrapping_sub(16), |&(bp, _)| bp)
            .ok()?;
        Some((j, k))
    });
    let Some((j, k)) = join else {
        out.extend_from_slice(&walk.frames);
        return Outcome {
            truncated: true,
            fell_back: true,
        };
    };
    out.extend_from_slice(walk.frames.get(..=j).unwrap_or(&walk.frames));
    // The table frame j returned to ra_k. Its callers: the frame-pointer frames still inside the copy
    // (these can go past the kernel's frame limit), then the kernel's chain beyond the copy, where
    // user_chain[i + 1] is ra_i.
    out.extend(fp_frames[k + 1..].iter().map(|&(_, ra)| Frame {
        address: FrameAddress::ReturnAddress(Avma(ra)),
        kernel: false,
    }));
    let beyond = fp_frames.len() + 1;
    out.extend_from_slice(user_chain.get(beyond..).unwrap_or(&[]));
    // Beyond the copy only the kernel's chain knows the frames, and it may have stopped at its limit.
    Outcome {
        truncated: !reached_root && kernel_cut,
        fell_back: false,
    }
}

/// Frame-pointer frames re-walked in one copy at most (a 64 KiB copy holds at most 4096 of them).
const MAX_FP_FRAMES: usize = 8192;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Synthetic stacks with no modules: framehop then walks frame pointers itself, so these tests pin down
    //! the splice (by stack address) and the stops, independent of any binary.

    use super::*;
    use crate::unwind::dwarf::{self, Cache, Regs, Unwinder};

    const SP: u64 = 0x7ffc_0000_1000;
    const RA_REC: u64 = 0x5555_0000_1234; // the same return address at every recursion level
    const RA_MAIN: u64 = 0x5555_0000_2000;
    const IP: u64 = 0x5555_0000_1100;

    /// A stack of `depth` recursive frames of 32 bytes each, then main's frame whose saved bp is 0.
    /// Returns (stack bytes, bp of the innermost frame, the kernel's user chain).
    fn recursion(depth: usize) -> (Vec<u8>, u64, Vec<Frame>) {
        let mut words = vec![0u64; 16]; // the leaf's locals below its frame
        let mut chain = vec![Frame {
            address: FrameAddress::InstructionPointer(Avma(IP)),
            kernel: false,
        }];
        let first_bp = SP + 8 * words.len() as u64;
        for level in 0..=depth {
            let bp = SP + 8 * words.len() as u64;
            let last = level == depth;
            let saved_bp = if last { 0 } else { bp + 32 };
            let ra = if last { RA_MAIN } else { RA_REC };
            words.extend([saved_bp, ra, 0xaaaa, 0xbbbb]);
            chain.push(Frame {
                address: FrameAddress::ReturnAddress(Avma(ra)),
                kernel: false,
            });
        }
        let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        (bytes, first_bp, chain)
    }

    fn regs(bp: u64) -> Regs {
        Regs { ip: IP, sp: SP, bp }
    }

    fn walk(bytes: &[u8], bp: u64) -> Walk {
        dwarf::walk(
            &Unwinder::new(),
            &mut Cache::new(),
            regs(bp),
            StackCopy { sp: SP, bytes },
            1024,
        )
    }

    #[test]
    fn full_copy_walks_to_the_root_and_matches_the_kernel_chain() {
        let (bytes, bp, chain) = recursion(20);
        let w = walk(&bytes, bp);
        assert_eq!(w.end, WalkEnd::Complete);
        let (frames, outcome) = splice(
            w,
            bp,
            StackCopy {
                sp: SP,
                bytes: &bytes,
            },
            &chain,
            false,
        );
        assert_eq!(frames, chain);
        assert_eq!(outcome, Outcome::default());
    }

    #[test]
    fn a_cut_copy_is_joined_by_stack_address_even_when_return_addresses_repeat() {
        let (bytes, bp, chain) = recursion(20);
        // Cut the copy inside the recursion: the tables see only the first levels.
        for cut in [200usize, 264, 400, 512] {
            let copy = &bytes[..cut];
            let w = walk(copy, bp);
            assert_eq!(w.end, WalkEnd::CopyExhausted, "cut {cut}");
            let (frames, outcome) = splice(
                w,
                bp,
                StackCopy {
                    sp: SP,
                    bytes: copy,
                },
                &chain,
                false,
            );
            assert_eq!(frames.len(), chain.len(), "cut {cut}: wrong join");
            assert_eq!(frames, chain, "cut {cut}");
            assert!(
                !outcome.truncated && !outcome.fell_back,
                "cut {cut}: {outcome:?}"
            );
        }
    }

    #[test]
    fn the_copy_walks_past_a_cut_kernel_chain() {
        let (bytes, bp, chain) = recursion(200);
        // The kernel stopped at 127 addresses; the copy holds the whole stack.
        let cut_chain = &chain[..127];
        let w = walk(&bytes, bp);
        let (frames, outcome) = splice(
            w,
            bp,
            StackCopy {
                sp: SP,
                bytes: &bytes,
            },
            cut_chain,
            true,
        );
        assert_eq!(frames, chain);
        assert!(!outcome.truncated);
        // A copy that ends before the root, with the kernel chain cut: truncated, and said so.
        let copy = &bytes[..4096];
        let w = walk(copy, bp);
        let (frames, outcome) = splice(
            w,
            bp,
            StackCopy {
                sp: SP,
                bytes: copy,
            },
            cut_chain,
            true,
        );
        assert!(outcome.truncated);
        assert!(frames.len() >= 127);
    }

    #[test]
    fn garbage_frame_pointer_stops_both_modes_cleanly() {
        let (mut bytes, bp, chain) = recursion(20);
        // Level 5's saved bp points backwards (below its own frame).
        let level5 = (bp - SP) as usize + 5 * 32;
        bytes[level5..level5 + 8].copy_from_slice(&0x10u64.to_le_bytes());
        let w = walk(&bytes, bp);
        assert_eq!(w.end, WalkEnd::Broken);
        assert!(
            w.frames.len() >= 6 && w.frames.len() <= 8,
            "{}",
            w.frames.len()
        );
        // dwarf mode keeps what it walked; hybrid joins what it can and keeps the frames below the garbage.
        let kernel_chain = &chain[..7];
        let (frames, outcome) = splice(
            w.clone(),
            bp,
            StackCopy {
                sp: SP,
                bytes: &bytes,
            },
            kernel_chain,
            false,
        );
        assert_eq!(&frames[..6], &chain[..6]);
        assert!(!outcome.fell_back);
        // An unreadable bp (outside the copy) from the start: no fp frame to join, the table frames stay.
        let w = walk(&bytes, 0x10);
        let (frames, outcome) = splice(
            w,
            0x10,
            StackCopy {
                sp: SP,
                bytes: &bytes,
            },
            &chain[..1],
            false,
        );
        assert_eq!(frames.len(), 1);
        assert!(outcome.fell_back && outcome.truncated);
    }
}
