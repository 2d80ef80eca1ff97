//! Stack walking: the kernel's frame-pointer chains (`fp`), unwind tables over a copied user stack
//! (`dwarf`), and the two joined (`hybrid`) -> innermost-first frame addresses; and the frame-pointer chains
//! checked against the unwind tables for code without frame pointers (`fpcheck`).
//!
//! This module owns turning what the kernel delivered into innermost-first [`Stack`]s of
//! [`FrameAddress`](crate::addr::FrameAddress)es. It does no I/O: limits such as the kernel's
//! `perf_event_max_stack` are read by the caller (see `acquire::Session::max_stack`) and passed in, and
//! module files are read by a loader the caller gives (`modules::Loader`).

pub mod dwarf;
pub mod fp;
pub mod fpcheck;
pub mod hybrid;
pub mod live;
pub mod modules;
pub mod tables;

use crate::addr::FrameAddress;

/// One walked frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub address: FrameAddress,
    /// The frame lies in the kernel (it came after a `PERF_CONTEXT_KERNEL` marker).
    pub kernel: bool,
}

/// A walked stack, innermost frame first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<Frame>,
    /// The walk stopped early (kernel frame limit, end of the stack copy, or our depth cap): outer frames
    /// are missing, and outputs should end this stack in a truncation marker.
    pub truncated: bool,
}
