//! x86_64: a walk needs the frame pointer (rbp), the stack pointer and the instruction pointer.

use super::WalkRegs;

/// User registers sampled in the stack-copying modes, in the order of `SampleRecord::user_regs` (perf
/// orders a sample's registers by number).
pub const USER_REGS: &[&str] = &["bp", "sp", "ip"];

/// `PERF_REG_X86_BP`, `_SP`, `_IP`: the numbers of [`USER_REGS`], in that order.
pub const USER_REG_NUMBERS: &[u64] = &[6, 7, 8];

/// `PERF_REG_X86_DI`: the first integer argument of a call in the System V ABI (rdi). A lock probe placed at a
/// function's entry reads the lock's address there (`__lll_lock_wait(int *futex, int private)`).
pub const FIRST_ARG_REG: Option<u64> = Some(5);

/// A walk's registers from a sample's, in [`USER_REGS`] order.
pub fn walk_regs(user_regs: &[u64]) -> Option<WalkRegs> {
    match *user_regs {
        [bp, sp, ip] => Some(WalkRegs { ip, sp, fp: bp }),
        _ => None,
    }
}
