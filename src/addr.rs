//! Address spaces as types, so the compiler catches the off-by-ones and load biases that profilers get wrong.
//!
//! ```text
//!   process (AVMA)             file (offset)              ELF (SVMA)
//!   map.start ─┐               map.pgoff ─┐               segment.p_vaddr ─┐
//!   avma ──────┼─ - start + pgoff ──> off ─┼─ - p_offset + p_vaddr ──> svma │
//! ```
//! `FrameAddress::ReturnAddress(ra)` is looked up at `ra - 1`: the return address points after the call
//! instruction, possibly into the next function or the next line.

/// An address in a process's virtual memory ("actual virtual memory address").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Avma(pub u64);

/// An address as stated in an ELF file's program and section headers ("stated virtual memory address").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Svma(pub u64);

/// A byte offset into a mapped file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileOffset(pub u64);

/// One frame of a walked stack, before symbolization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameAddress {
    /// The sampled instruction itself (the innermost frame, or a frame whose registers were sampled).
    InstructionPointer(Avma),
    /// A return address found on the stack: the caller resumes here after the call.
    ReturnAddress(Avma),
}

impl FrameAddress {
    /// The address as found (what pprof locations keep as "the sampled address" is `lookup_address`).
    pub fn raw(self) -> Avma {
        match self {
            FrameAddress::InstructionPointer(a) | FrameAddress::ReturnAddress(a) => a,
        }
    }

    /// The address to symbolize: the IP itself, or `ra - 1`, which lies inside the call instruction.
    pub fn lookup_address(self) -> Avma {
        match self {
            FrameAddress::InstructionPointer(a) => a,
            FrameAddress::ReturnAddress(a) => Avma(a.0.saturating_sub(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_address_is_looked_up_inside_the_call() {
        assert_eq!(
            FrameAddress::ReturnAddress(Avma(0x1005)).lookup_address(),
            Avma(0x1004)
        );
        assert_eq!(
            FrameAddress::InstructionPointer(Avma(0x1005)).lookup_address(),
            Avma(0x1005)
        );
        assert_eq!(
            FrameAddress::ReturnAddress(Avma(0)).lookup_address(),
            Avma(0)
        );
    }
}
