//! JIT symbol maps, `/tmp/perf-PID.map`: one line per JIT-compiled function, `START SIZE name` with START and SIZE
//! in hex (with or without `0x`). The name is the rest of the line and may contain spaces. The parser takes the
//! file's bytes, line by line: the JIT that writes the file is the profiled program, so a line that is not
//! UTF-8 (a name in another encoding, or garbage) costs that line's name its exactness, never the other lines.
//! The symbolizer reads the file (see `loader::read_perf_map` for how much of it).

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

fn hex(field: &[u8]) -> Option<u64> {
    let digits = field
        .strip_prefix(b"0x")
        .or_else(|| field.strip_prefix(b"0X"))
        .unwrap_or(field);
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// `line` split at its first run of ASCII whitespace (after leading whitespace): `(field, rest)`.
fn first_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.trim_ascii_start();
    let end = line.iter().position(u8::is_ascii_whitespace)?;
    Some((&line[..end], line[end..].trim_ascii_start()))
}

impl PerfMap {
    pub fn parse(bytes: &[u8]) -> PerfMap {
        let mut symbols = Vec::new();
        for line in bytes.split(|&b| b == b'\n') {
            let Some((start, rest)) = first_field(line) else {
                continue;
            };
            let Some((size, name)) = first_field(rest) else {
                continue;
            };
            let (Some(start), Some(size)) = (hex(start), hex(size)) else {
                continue;
            };
            // Bytes that are not UTF-8 become U+FFFD: the rest of the name still tells the function apart.
            let name = String::from_utf8_lossy(name.trim_ascii());
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
            b"7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n\
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
        let m = PerfMap::parse(b"1000 10 LazyCompile:*fib /app/fib.js:3\n");
        assert_eq!(
            m.lookup(Avma(0x1008)),
            Some("LazyCompile:*fib /app/fib.js:3")
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_costs_only_itself() {
        // Before: the whole file was read as one UTF-8 string, so one bad byte anywhere dropped every symbol.
        let m = PerfMap::parse(
            b"1000 10 before\n2000 10 bad\xff\xfename\n\xff\xff 10 garbage\n3000 10 after\n",
        );
        assert_eq!(m.lookup(Avma(0x1004)), Some("before"));
        assert_eq!(m.lookup(Avma(0x3004)), Some("after"));
        assert_eq!(m.lookup(Avma(0x2004)), Some("bad\u{fffd}\u{fffd}name"));
        assert_eq!(m.len(), 3);
    }
}
