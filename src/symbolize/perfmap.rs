//! JIT symbol maps, `/tmp/perf-PID.map`: one line per JIT-compiled function, `START SIZE name` with START and SIZE
//! in hex (with or without `0x`). The name is the rest of the line and may contain spaces. The parser takes the
//! file's text; the symbolizer reads the file.

use crate::addr::Avma;

#[derive(Clone, Debug, PartialEq, Eq)]
struct JitSymbol {
    start: u64,
    size: u64,
    name: Box<str>,
}

/// JIT functions sorted by start address.
#[derive(Clone, Debug, Default)]
pub struct PerfMap {
    symbols: Vec<JitSymbol>,
}

fn hex(field: &str) -> Option<u64> {
    let digits = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .unwrap_or(field);
    u64::from_str_radix(digits, 16).ok()
}

impl PerfMap {
    pub fn parse(text: &str) -> PerfMap {
        let mut symbols = Vec::new();
        for line in text.lines() {
            let line = line.trim_start();
            let Some((start, rest)) = line.split_once(char::is_whitespace) else {
                continue;
            };
            let rest = rest.trim_start();
            let Some((size, name)) = rest.split_once(char::is_whitespace) else {
                continue;
            };
            let (Some(start), Some(size)) = (hex(start), hex(size)) else {
                continue;
            };
            let name = name.trim();
            if size == 0 || name.is_empty() {
                continue;
            }
            symbols.push(JitSymbol {
                start,
                size,
                name: name.into(),
            });
        }
        // A JIT may reuse an address for new code: the line written last describes what is there now, so it must
        // win. A stable sort keeps file order among equal starts; keep the last of each run.
        symbols.sort_by_key(|s| s.start);
        let mut deduped: Vec<JitSymbol> = Vec::with_capacity(symbols.len());
        for s in symbols {
            match deduped.last_mut() {
                Some(last) if last.start == s.start => *last = s,
                _ => deduped.push(s),
            }
        }
        PerfMap { symbols: deduped }
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The function whose `[start, start + size)` contains `addr`.
    pub fn lookup(&self, addr: Avma) -> Option<&str> {
        let after = self.symbols.partition_point(|s| s.start <= addr.0);
        let s = &self.symbols[after.checked_sub(1)?];
        (addr.0 - s.start < s.size).then_some(&*s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up() {
        let m = PerfMap::parse(
            "7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n\
             0x7f0000002000 0x10 stub\n\
             bad line\n\
             7f0000003000 zz nope\n\
             7f0000004000 0 empty\n\
             7f0000001000 20 recompiled\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup(Avma(0x7f0000000fff)), None);
        assert_eq!(
            m.lookup(Avma(0x7f0000001000)),
            Some("recompiled"),
            "the last line for an address wins"
        );
        assert_eq!(m.lookup(Avma(0x7f000000101f)), Some("recompiled"));
        assert_eq!(m.lookup(Avma(0x7f0000001020)), None);
        assert_eq!(m.lookup(Avma(0x7f000000200f)), Some("stub"));
        assert_eq!(m.lookup(Avma(0x7f0000004000)), None);
    }

    #[test]
    fn names_keep_their_spaces() {
        let m = PerfMap::parse("1000 10 LazyCompile:*fib /app/fib.js:3\n");
        assert_eq!(
            m.lookup(Avma(0x1008)),
            Some("LazyCompile:*fib /app/fib.js:3")
        );
    }
}
