//! Frame-pointer mode: the kernel already walked the stack; split its call chain at the `PERF_CONTEXT_*`
//! markers and type each address.
//!
//! ```text
//!  callchain: [KERNEL, k_ip, k_ra, k_ra, USER, u_ip, u_ra, u_ra ...]
//!                      ^IP   ^RA...       ^     ^IP   ^RA...
//!                                         marker values are skipped
//! ```
//! The kernel stops storing addresses once it has stored `perf_event_max_stack` of them (markers not
//! counted), so a chain with that many addresses was probably cut.

use super::{Frame, Stack};
use crate::acquire::record::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER};
use crate::addr::{Avma, FrameAddress};

/// The kernel's default `kernel.perf_event_max_stack`.
pub const DEFAULT_KERNEL_MAX_STACK: usize = 127;

/// Deepest stack we keep; anything deeper is cut and marked truncated. Continued walks reach the roots of
/// recursions thousands of frames deep (a 2,000-deep one is among the tests).
pub const DEFAULT_MAX_DEPTH: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `kernel.perf_event_max_stack` (or the `sample_max_stack` the counter was opened with).
    pub kernel_max_stack: usize,
    /// Our own cap on frames kept.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            kernel_max_stack: DEFAULT_KERNEL_MAX_STACK,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Frames of a raw kernel call chain with the default limits.
pub fn frames(callchain: &[u64]) -> Stack {
    frames_with(callchain, Limits::default())
}

/// Frames of a raw kernel call chain, innermost first.
pub fn frames_with(callchain: &[u64], limits: Limits) -> Stack {
    let mut stack = Stack::default();
    frames_into(callchain, limits, &mut stack);
    stack
}

/// `frames_with` into `stack`, reusing its buffer.
pub fn frames_into(callchain: &[u64], limits: Limits, stack: &mut Stack) {
    stack.frames.clear();
    stack.frames.reserve(callchain.len().min(limits.max_depth));
    stack.truncated = false;
    // Before any marker, the kernel's convention is kernel context; a chain never starts without one in
    // practice, but a hand-made or imported chain might.
    let mut kernel = true;
    let mut first_in_context = true;
    let mut addresses = 0usize;
    for &value in callchain {
        if value >= PERF_CONTEXT_MAX {
            // Guest and hypervisor contexts are treated like the kernel: not user code of this process.
            kernel = value != PERF_CONTEXT_USER;
            first_in_context = true;
            continue;
        }
        addresses += 1;
        if stack.frames.len() >= limits.max_depth {
            stack.truncated = true;
            break;
        }
        let avma = Avma(value);
        let address = if first_in_context {
            FrameAddress::InstructionPointer(avma)
        } else {
            FrameAddress::ReturnAddress(avma)
        };
        first_in_context = false;
        stack.frames.push(Frame { address, kernel });
    }
    if limits.kernel_max_stack > 0 && addresses >= limits.kernel_max_stack {
        stack.truncated = true;
    }
}

/// Whether the chain holds any kernel context (used to tell kernel samples apart without the sample's mode).
pub fn has_kernel_context(callchain: &[u64]) -> bool {
    callchain.contains(&PERF_CONTEXT_KERNEL)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(a: u64) -> FrameAddress {
        FrameAddress::InstructionPointer(Avma(a))
    }
    fn ra(a: u64) -> FrameAddress {
        FrameAddress::ReturnAddress(Avma(a))
    }

    #[test]
    fn splits_kernel_and_user_contexts() {
        let chain = [
            PERF_CONTEXT_KERNEL,
            0xffff_ffff_8100_0001,
            0xffff_ffff_8100_0002,
            PERF_CONTEXT_USER,
            0x10,
            0x20,
            0x30,
        ];
        let stack = frames(&chain);
        let got: Vec<_> = stack.frames.iter().map(|f| (f.address, f.kernel)).collect();
        assert_eq!(
            got,
            vec![
                (ip(0xffff_ffff_8100_0001), true),
                (ra(0xffff_ffff_8100_0002), true),
                (ip(0x10), false),
                (ra(0x20), false),
                (ra(0x30), false),
            ]
        );
        assert!(!stack.truncated);
        assert!(has_kernel_context(&chain));
    }

    #[test]
    fn user_only_and_empty_chains() {
        let stack = frames(&[PERF_CONTEXT_USER, 0x10, 0x20]);
        assert_eq!(stack.frames.len(), 2);
        assert_eq!(stack.frames[0].address, ip(0x10));
        assert!(!stack.frames[0].kernel);
        assert_eq!(frames(&[]), Stack::default());
        assert_eq!(frames(&[PERF_CONTEXT_USER]).frames.len(), 0);
    }

    #[test]
    fn marks_chains_at_the_kernel_limit_truncated() {
        let mut chain = vec![PERF_CONTEXT_USER];
        chain.extend(1..=127u64);
        let stack = frames(&chain);
        assert_eq!(stack.frames.len(), 127);
        assert!(stack.truncated);

        chain.pop();
        assert!(!frames(&chain).truncated);
    }

    #[test]
    fn caps_depth() {
        let mut chain = vec![PERF_CONTEXT_USER];
        chain.extend(1..=50u64);
        let limits = Limits {
            kernel_max_stack: 0,
            max_depth: 10,
        };
        let stack = frames_with(&chain, limits);
        assert_eq!(stack.frames.len(), 10);
        assert!(stack.truncated);
        assert_eq!(stack.frames[9].address, ra(10));
    }

    #[test]
    fn other_contexts_are_not_user() {
        use crate::acquire::record::PERF_CONTEXT_HV;
        let stack = frames(&[PERF_CONTEXT_HV, 5, PERF_CONTEXT_USER, 6]);
        assert!(stack.frames[0].kernel);
        assert!(!stack.frames[1].kernel);
        assert_eq!(stack.frames[1].address, ip(6));
    }
}
