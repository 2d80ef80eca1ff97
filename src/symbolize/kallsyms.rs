//! `/proc/kallsyms` as a lookup table: kernel text symbols by address. The parser takes the file's text; the
//! symbolizer reads the file (once, lazily).

use super::demangle::demangle;
use super::symbols::{alias_order, Binding, RawSymbol};
use crate::addr::Avma;

#[derive(Clone, Debug, PartialEq, Eq)]
struct KernelSymbol {
    address: u64,
    /// `name` for the core kernel, `name [module]` for a loadable module's symbol.
    name: Box<str>,
}

/// Kernel text symbols sorted by address.
#[derive(Clone, Debug, Default)]
pub struct Kallsyms {
    symbols: Vec<KernelSymbol>,
    /// True when the file listed symbols but every address was 0 (`kernel.kptr_restrict` hides them).
    restricted: bool,
}

/// One text symbol line of the file, borrowed from it.
struct Line<'a> {
    address: u64,
    binding: Binding,
    name: &'a str,
    module: Option<&'a str>,
}

/// A text symbol line (`None` for data symbols and malformed lines).
fn text_symbol(line: &str) -> Option<Line<'_>> {
    let mut fields = line.split_whitespace();
    let (addr, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
    let address = u64::from_str_radix(addr, 16).ok()?;
    let binding = match kind {
        "T" => Binding::Global,
        "w" | "W" => Binding::Weak,
        "t" => Binding::Local,
        _ => return None,
    };
    let module = fields.next().filter(|m| m.starts_with('['));
    Some(Line {
        address,
        binding,
        name,
        module,
    })
}

impl Line<'_> {
    fn owned(&self) -> (RawSymbol, Option<String>) {
        let raw = RawSymbol {
            name: self.name.to_owned(),
            address: self.address,
            size: 0,
            end: u64::MAX,
            binding: self.binding,
        };
        (raw, self.module.map(str::to_owned))
    }
}

impl Kallsyms {
    /// Parses lines `ffffffff81000000 T _stext` and `ffffffffc0a01000 t helper\t[nf_tables]`. Data symbols and
    /// malformed lines are skipped.
    pub fn parse(text: &str) -> Kallsyms {
        let mut candidates = Vec::new();
        let mut listed = 0usize;
        for line in text.lines().filter_map(text_symbol) {
            listed += 1;
            if line.address != 0 {
                candidates.push(line.owned());
            }
        }
        Kallsyms::from_candidates(candidates, listed)
    }

    /// As [`Kallsyms::parse`] of what `text` reads, keeping only the symbols that name one of `addresses`
    /// (sorted, each the greatest symbol at or below one of them, with its aliases): what a recording needs
    /// of the 120,000 lines, read line by line instead of whole (5 MB of text and 20 MB of symbols at the end
    /// of a recording otherwise). [`Kallsyms::lookup`] of an address not given may be wrong.
    pub fn parse_for(mut text: impl std::io::BufRead, addresses: &[u64]) -> Kallsyms {
        // Slot i holds the symbols with the greatest address seen in (addresses[i - 1], addresses[i]]: the
        // best symbol of addresses[j] is in the last non-empty slot at or before j.
        let mut slots: Vec<Vec<(RawSymbol, Option<String>)>> = vec![Vec::new(); addresses.len()];
        let mut listed = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match text.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Some(symbol) = text_symbol(&line) else {
                continue;
            };
            listed += 1;
            if symbol.address == 0 {
                continue;
            }
            let i = addresses.partition_point(|&a| a < symbol.address);
            let Some(slot) = slots.get_mut(i) else {
                continue;
            };
            match slot.first().map(|(s, _)| s.address) {
                Some(best) if best > symbol.address => continue,
                Some(best) if best < symbol.address => slot.clear(),
                _ => {}
            }
            slot.push(symbol.owned());
        }
        Kallsyms::from_candidates(slots.into_iter().flatten().collect(), listed)
    }

    fn from_candidates(
        mut candidates: Vec<(RawSymbol, Option<String>)>,
        listed: usize,
    ) -> Kallsyms {
        // Several names can share an address (`__pi_memcpy` and `memcpy`, `_stext` and the first function):
        // choose as for ELF aliases, so the same rules name user and kernel functions.
        candidates
            .sort_by(|(a, _), (b, _)| a.address.cmp(&b.address).then_with(|| alias_order(a, b)));
        candidates.dedup_by_key(|(s, _)| s.address);
        let symbols: Vec<KernelSymbol> = candidates
            .into_iter()
            .map(|(raw, module)| {
                // Rust code in the kernel has v0-mangled names.
                let name = demangle(&raw.name);
                let name = match module {
                    Some(module) => format!("{name} {module}"),
                    None => name,
                };
                KernelSymbol {
                    address: raw.address,
                    name: name.into(),
                }
            })
            .collect();
        Kallsyms {
            restricted: listed > 0 && symbols.is_empty(),
            symbols,
        }
    }

    /// True when addresses are hidden (all zero), so no kernel frame can be named.
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The text symbol with the greatest address `<= addr` (kallsyms has no sizes).
    pub fn lookup(&self, addr: Avma) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.address <= addr.0);
        Some(&self.symbols[after.checked_sub(1)?].name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = "\
ffffffff81000000 T _stext
ffffffff81000000 T srso_alias_untrain_ret
ffffffff81000500 T __pi___x86_indirect_thunk_rax
ffffffff81000500 T __x86_indirect_thunk_rax
ffffffff81001000 T do_syscall_64
ffffffff81002000 D some_data
ffffffff81003000 t local_helper
ffffffff81004000 W weak_thing
garbage line
zzzz T bad_address
ffffffffc0a01000 t nft_do_chain\t[nf_tables]
ffffffffc0a02000 T nft_register\t[nf_tables]
ffffffffc0b00000 T _RNvCs15kBYyAo9fc_7mycrate7example\t[rust_mod]
";

    #[test]
    fn greatest_text_symbol_at_or_below() {
        let k = Kallsyms::parse(SNIPPET);
        assert!(!k.is_restricted());
        assert_eq!(k.lookup(Avma(0xffffffff80ffffff)), None);
        assert_eq!(
            k.lookup(Avma(0xffffffff81000000)),
            Some("srso_alias_untrain_ret")
        );
        assert_eq!(
            k.lookup(Avma(0xffffffff81000501)),
            Some("__x86_indirect_thunk_rax")
        );
        assert_eq!(k.lookup(Avma(0xffffffff81001234)), Some("do_syscall_64"));
        // The data symbol at 0x...2000 is skipped.
        assert_eq!(k.lookup(Avma(0xffffffff81002010)), Some("do_syscall_64"));
        assert_eq!(k.lookup(Avma(0xffffffff81003001)), Some("local_helper"));
        assert_eq!(k.lookup(Avma(0xffffffff81004001)), Some("weak_thing"));
        assert_eq!(
            k.lookup(Avma(0xffffffffc0a01010)),
            Some("nft_do_chain [nf_tables]")
        );
        assert_eq!(
            k.lookup(Avma(0xffffffffc0a02010)),
            Some("nft_register [nf_tables]")
        );
        assert_eq!(
            k.lookup(Avma(0xffffffffc0b00010)),
            Some("mycrate::example [rust_mod]")
        );
    }

    #[test]
    fn parse_for_names_the_given_addresses_as_parse_does() {
        let whole = Kallsyms::parse(SNIPPET);
        let addresses = [
            0xffffffff80ffffff,
            0xffffffff81000000,
            0xffffffff81000501,
            0xffffffff81001234,
            0xffffffff81002010,
            0xffffffff81003001,
            0xffffffff81004001,
            0xffffffffc0a01010,
            0xffffffffc0a02010,
            0xffffffffc0b00010,
        ];
        for count in 1..=addresses.len() {
            for first in 0..=addresses.len() - count {
                let given = &addresses[first..first + count];
                let part = Kallsyms::parse_for(SNIPPET.as_bytes(), given);
                assert!(part.len() <= count, "{given:x?}");
                for &a in given {
                    assert_eq!(
                        part.lookup(Avma(a)),
                        whole.lookup(Avma(a)),
                        "{a:#x} of {given:x?}"
                    );
                }
            }
        }
        // Symbols out of order (modules are listed after the core kernel, in no order between them).
        let shuffled: String = SNIPPET.lines().rev().map(|l| format!("{l}\n")).collect();
        let part = Kallsyms::parse_for(shuffled.as_bytes(), &addresses);
        for &a in &addresses {
            assert_eq!(part.lookup(Avma(a)), whole.lookup(Avma(a)), "{a:#x}");
        }
        let restricted = "0000000000000000 T _stext\n0000000000000000 t foo\t[mod]\n";
        assert!(Kallsyms::parse_for(restricted.as_bytes(), &addresses).is_restricted());
        assert!(!Kallsyms::parse_for(&b""[..], &addresses).is_restricted());
    }

    #[test]
    fn all_zero_addresses_mean_restricted() {
        let k = Kallsyms::parse("0000000000000000 T _stext\n0000000000000000 t foo\t[mod]\n");
        assert!(k.is_restricted());
        assert!(k.is_empty());
        assert_eq!(k.lookup(Avma(0xffffffff81000000)), None);
        assert!(!Kallsyms::parse("").is_restricted());
    }
}
