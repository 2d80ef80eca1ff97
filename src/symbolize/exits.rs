//! Where a function's machine code leaves it: its `ret` instructions (where a probe sees the function end
//! without a return probe, which would replace the return address on the stack), and whether it may also
//! leave by a jump (a tail call) that no `ret` probe sees. A pure view over the function's bytes.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction};

/// The exits of one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exits {
    /// The SVMA of each `ret`, in address order.
    pub rets: Vec<u64>,
    /// A jump leaves the function's bytes (a tail call), or goes through a register or memory (which may):
    /// the function can end without reaching a `ret`.
    pub jumps_out: bool,
}

/// The exits of the x86-64 function whose `code` is loaded at `start` (SVMA). Decoding is linear, from the
/// first byte: compilers put no data inside a function's symbol range on x86-64. A byte that does not decode
/// is skipped.
pub fn exits(code: &[u8], start: u64) -> Exits {
    let end = start.saturating_add(code.len() as u64);
    let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
    let mut out = Exits::default();
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instr);
        if instr.is_invalid() {
            continue;
        }
        match instr.flow_control() {
            FlowControl::Return => out.rets.push(instr.ip()),
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                let target = instr.near_branch_target();
                if !(start..end).contains(&target) {
                    out.jumps_out = true;
                }
            }
            FlowControl::IndirectBranch => out.jumps_out = true,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_ret_and_tail_calls() {
        // glibc 2.36's __lll_lock_wait, cut short: mov (%rdi),%eax; cmp $2,%eax; je +0; ret; xchg; ret
        let code = [
            0x8b, 0x07, // mov (%rdi),%eax
            0x83, 0xf8, 0x02, // cmp $0x2,%eax
            0x74, 0x01, // je +1 (inside)
            0xc3, // ret
            0xf3, 0xc3, // repz ret
        ];
        let got = exits(&code, 0x1000);
        assert_eq!(got.rets, vec![0x1007, 0x1008]);
        assert!(!got.jumps_out);
        // A tail call: jmp rel32 out of the function.
        let tail = [0x48, 0x89, 0xf8, 0xe9, 0x00, 0x10, 0x00, 0x00];
        let got = exits(&tail, 0x2000);
        assert!(got.rets.is_empty());
        assert!(got.jumps_out);
        // An indirect jump may leave.
        assert!(exits(&[0xff, 0xe0], 0).jumps_out);
        // Garbage does not panic.
        let _ = exits(&[0x0f, 0x0f, 0xff], 0);
    }
}
