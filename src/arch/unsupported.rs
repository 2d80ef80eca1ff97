//! An architecture the unwinder does not walk (aarch64 among them, for now): no registers are sampled and no
//! stack is copied; stacks come from the kernel's frame-pointer chains. Adding one means a file like
//! `x86_64.rs` (its `PERF_REG_*` numbers: aarch64 samples x29, lr, sp and pc, 29 to 32; its first argument is
//! x0, 0) and its framehop unwinder in `unwind::dwarf`.

use super::WalkRegs;

pub const USER_REGS: &[&str] = &[];

pub const USER_REG_NUMBERS: &[u64] = &[];

/// Lock probes read no argument here: `--locks` is refused.
pub const FIRST_ARG_REG: Option<u64> = None;

pub fn walk_regs(_user_regs: &[u64]) -> Option<WalkRegs> {
    None
}
