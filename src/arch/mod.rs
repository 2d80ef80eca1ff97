//! What stacktop knows of a CPU architecture, one file per architecture: the user registers a stack walk
//! starts from, their numbers in perf's `PERF_REG_*` (the live sampling mask and perf.data files), and how a
//! sample's registers become a walk's. Supporting a second architecture is one new file here, plus its
//! framehop unwinder in `unwind::dwarf`. Where the unwinder does not walk an architecture, no registers are
//! sampled and no stack is copied: a copy nobody walks would only cost ring bandwidth.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{walk_regs, FIRST_ARG_REG, USER_REGS, USER_REG_NUMBERS};

#[cfg(not(target_arch = "x86_64"))]
mod unsupported;
#[cfg(not(target_arch = "x86_64"))]
pub use unsupported::{walk_regs, FIRST_ARG_REG, USER_REGS, USER_REG_NUMBERS};

/// `sample_regs_user`: the bits of [`USER_REG_NUMBERS`] (0 where no registers are sampled).
pub const USER_REGS_MASK: u64 = mask(USER_REG_NUMBERS);

/// `sample_regs_user` of lock probes: the walk's registers plus the first argument's ([`FIRST_ARG_REG`]), which
/// holds the lock's address at a function's entry; 0 where lock probes are not supported.
pub const LOCK_REGS_MASK: u64 = match FIRST_ARG_REG {
    Some(arg) => USER_REGS_MASK | (1 << arg),
    None => 0,
};

/// Takes the first argument's register out of a lock probe's sampled registers (in [`LOCK_REGS_MASK`] order),
/// leaving the walk's registers in [`USER_REGS`] order as every other sample has them. `None` when the sample
/// has no such register.
pub fn take_first_arg(regs: &mut Vec<u64>) -> Option<u64> {
    let arg = FIRST_ARG_REG?;
    // perf orders a sample's registers by number: the argument comes after the walk's registers numbered below it.
    let index = USER_REG_NUMBERS.iter().filter(|&&n| n < arg).count();
    (index < regs.len()).then(|| regs.remove(index))
}

const fn mask(numbers: &[u64]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < numbers.len() {
        mask |= 1 << numbers[i];
        i += 1;
    }
    mask
}

/// The registers a walk starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkRegs {
    pub ip: u64,
    pub sp: u64,
    /// The frame pointer.
    pub fp: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_has_one_bit_per_register() {
        assert_eq!(USER_REGS.len(), USER_REG_NUMBERS.len());
        assert_eq!(USER_REGS_MASK.count_ones() as usize, USER_REG_NUMBERS.len());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lock_probes_take_rdi_out_of_the_walk_registers() {
        assert_eq!(LOCK_REGS_MASK, (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8));
        let mut regs = vec![0xd1, 1, 2, 3];
        assert_eq!(take_first_arg(&mut regs), Some(0xd1));
        assert_eq!(regs, vec![1, 2, 3]);
        let mut none = Vec::new();
        assert_eq!(take_first_arg(&mut none), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_samples_bp_sp_ip() {
        assert_eq!(USER_REGS_MASK, (1 << 6) | (1 << 7) | (1 << 8));
        assert_eq!(
            walk_regs(&[1, 2, 3]),
            Some(WalkRegs {
                ip: 3,
                sp: 2,
                fp: 1
            })
        );
        assert_eq!(walk_regs(&[1, 2]), None);
    }
}
