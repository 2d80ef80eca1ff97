//! x86-64 disassembly of one function's bytes with `iced-x86`, in AT&T syntax as `objdump -d` and
//! `perf annotate` print it (`mov    0x2dea(%rip),%rax`), so the two read side by side.
//!
//! Branch and call targets get the symbol they land in (`jne 0x1258 <hot_a+0x28>`), RIP-relative operands the
//! address they reach (`# 0x4028`), both as objdump does. Bytes that do not decode become `(bad)` rows of one
//! byte, so a sample address is never lost to a decoding error.

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, OpKind};

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub address: u64,
    pub bytes: Vec<u8>,
    pub text: String,
}

/// Disassembles `bytes` loaded at `start` (SVMA). `symbol_at` names a target address (`hot_a+0x28`).
pub fn disassemble(
    bytes: &[u8],
    start: u64,
    symbol_at: &mut dyn FnMut(u64) -> Option<String>,
) -> Vec<Decoded> {
    let mut decoder = Decoder::with_ip(64, bytes, start, DecoderOptions::NONE);
    let mut formatter = GasFormatter::new();
    let options = formatter.options_mut();
    options.set_first_operand_char_index(7);
    options.set_uppercase_hex(false);
    options.set_branch_leading_zeros(false);
    options.set_small_hex_numbers_in_decimal(false);
    options.set_rip_relative_addresses(true);
    let mut out = Vec::new();
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut instr);
        let invalid = instr.is_invalid();
        // An undecodable byte is a row of its own; decoding resumes at the next byte.
        let len = if invalid { 1 } else { instr.len().max(1) };
        let end = (offset + len).min(bytes.len());
        let address = start.wrapping_add(offset as u64);
        let mut text = String::new();
        if invalid {
            text.push_str("(bad)");
        } else {
            formatter.format(&instr, &mut text);
            if is_near_branch(&instr) {
                if let Some(name) = symbol_at(instr.near_branch_target()) {
                    text.push_str(&format!(" <{name}>"));
                }
            } else if instr.is_ip_rel_memory_operand() {
                let target = instr.ip_rel_memory_address();
                match symbol_at(target) {
                    Some(name) => text.push_str(&format!("        # {target:#x} <{name}>")),
                    None => text.push_str(&format!("        # {target:#x}")),
                }
            }
        }
        out.push(Decoded {
            address,
            bytes: bytes[offset..end].to_vec(),
            text,
        });
        if invalid {
            decoder.set_ip(address.wrapping_add(1));
            if decoder.set_position(end).is_err() {
                break;
            }
        }
    }
    out
}

fn is_near_branch(instr: &Instruction) -> bool {
    instr.op_count() == 1
        && matches!(
            instr.op0_kind(),
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn att_syntax_with_branch_targets_named() {
        // From `objdump -d` of assets/split.c's hot_a (cc -O2): the loop body and its back edge.
        let bytes = [
            0x48, 0x0f, 0xaf, 0xc1, // imul %rcx,%rax
            0x48, 0x83, 0xc2, 0x01, // add $0x1,%rdx
            0x75, 0xf6, // jne back to the imul
            0x48, 0x8b, 0x05, 0xea, 0x2d, 0x00, 0x00, // mov 0x2dea(%rip),%rax
            0xc3, // ret
        ];
        let mut names = |addr: u64| (addr == 0x1258).then(|| "hot_a+0x28".to_owned());
        let d = disassemble(&bytes, 0x1258, &mut names);
        let texts: Vec<&str> = d.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "imul   %rcx,%rax",
                "add    $0x1,%rdx",
                "jne    0x1258 <hot_a+0x28>",
                "mov    0x2dea(%rip),%rax        # 0x4053",
                "ret",
            ]
        );
        assert_eq!(d[2].address, 0x1260);
        assert_eq!(d[2].bytes, [0x75, 0xf6]);
    }

    #[test]
    fn undecodable_and_truncated_bytes_are_rows_not_losses() {
        let mut none = |_| None;
        // 0x06 (push %es) is invalid in 64-bit mode; a lone 0x48 prefix at the end is truncated.
        let d = disassemble(&[0x06, 0xc3, 0x48], 0x100, &mut none);
        let covered: usize = d.iter().map(|d| d.bytes.len()).sum();
        assert_eq!(covered, 3);
        assert_eq!(d[0].text, "(bad)");
        assert_eq!(d[1].text, "ret");
        assert!(disassemble(&[], 0, &mut none).is_empty());
    }
}
