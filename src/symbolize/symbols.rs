//! A function symbol table: the ELF symbols of a module, one name per address (the alias users know), looked up
//! by SVMA. Built from `.symtab` and `.dynsym` of the binary and of its debug file, whose names it reads where
//! they are (byte ranges of the files' bytes, see [`NameRef`]) and copies only for the entries it keeps;
//! opens no file.

use crate::addr::Svma;

/// ELF binding of a symbol, as far as alias choice cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Global,
    Weak,
    Local,
}

/// One function symbol as read from a symbol table (name still mangled, maybe with a `@VERSION` suffix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSymbol {
    pub name: String,
    pub address: u64,
    /// 0 when the symbol table does not say; such a symbol extends to the next symbol, but not past `end`.
    pub size: u64,
    /// End of the symbol's section (`u64::MAX` when unknown): the limit of an unsized symbol.
    pub end: u64,
    pub binding: Binding,
}

/// Where a symbol's name is, without a copy of it: `len` bytes at `start` of the `file`-th of the byte
/// buffers its table is built from (a file's string table, read in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRef {
    pub file: u8,
    /// The name is empty once its version suffix is dropped (see [`is_blank`]): said when it is read, so
    /// that a table leaves such symbols out without reading every name again.
    pub blank: bool,
    pub start: u64,
    pub len: u32,
}

/// True for a name that is empty once its version suffix is dropped (`""`, `@@VERS`): no symbol's name.
pub fn is_blank(name: &[u8]) -> bool {
    name.first().is_none_or(|&b| b == b'@') && !name.ends_with(b"@plt")
}

impl NameRef {
    /// The name's bytes; empty when the range is not in `files` (only a caller's bug does that).
    pub fn bytes<'a>(&self, files: &[&'a [u8]]) -> &'a [u8] {
        let Some(file) = files.get(usize::from(self.file)) else {
            return &[];
        };
        usize::try_from(self.start)
            .ok()
            .and_then(|start| file.get(start..start.checked_add(self.len as usize)?))
            .unwrap_or(&[])
    }

    /// The name, as `String::from_utf8_lossy` reads it.
    pub fn get<'a>(&self, files: &[&'a [u8]]) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.bytes(files))
    }
}

/// A function symbol as read from a symbol table, its name left in the file (see [`NameRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSymbol {
    pub name: NameRef,
    pub address: u64,
    /// As in [`RawSymbol`].
    pub size: u64,
    pub end: u64,
    pub binding: Binding,
}

/// An entry: the symbols at one address, sized, named by the best alias (or not named: see
/// [`SymbolTable::for_addresses`]).
#[derive(Clone, Copy, Debug)]
struct Entry {
    address: u64,
    /// Never 0: the largest size among the aliases at this address, else the distance to the next entry or
    /// to the section's end.
    size: u64,
    /// The best alias, version suffix dropped, still mangled: `len` bytes at `start` of `names`.
    name: u32,
    len: u32,
}

/// Marks an entry left unnamed.
const UNNAMED: u32 = u32::MAX;

/// Function symbols sorted by address, one entry (the best alias) per address. The names live in one buffer:
/// a large Rust library has 165,000 symbols of 120 bytes on average.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    entries: Vec<Entry>,
    names: String,
    /// The other aliases (version suffix dropped, still mangled) with their address, sorted by name: a name
    /// another tool printed (perf's `___pthread_mutex_lock`) finds the entry the profile names. Each is
    /// `(start, len)` in `names`.
    aliases: Vec<(u32, u32, u64)>,
}

/// How far back a lookup walks when the nearest symbol ends before the address: an enclosing symbol can start
/// before a smaller one (hand-written assembly does this), but never far before.
const ENCLOSING_LOOKBACK: usize = 4;

/// Which entries a table names.
enum Naming<'w> {
    /// Every entry, and the other aliases.
    All,
    /// Only those that `lookup_range` finds for these SVMAs.
    For(&'w [u64]),
}

impl SymbolTable {
    /// A table of symbols whose names are their own.
    #[cfg(test)]
    pub fn new(symbols: Vec<RawSymbol>) -> SymbolTable {
        let (symbols, buffer) = in_buffer(symbols);
        SymbolTable::build(symbols, &[&buffer], Naming::All)
    }

    /// The table of `symbols`, whose names are in `files` (see [`NameRef`]).
    pub fn from_files(symbols: Vec<FileSymbol>, files: &[&[u8]]) -> SymbolTable {
        SymbolTable::build(symbols, files, Naming::All)
    }

    /// As [`SymbolTable::from_files`], but only the entries that name `wanted` (SVMAs, in any order) get their
    /// name copied: `lookup_range` of a wanted address answers as the whole table's would, of another address
    /// it may answer `None`; [`SymbolTable::covering`] answers for every address. No alias is kept. For
    /// naming the sampled addresses of a recording at its end, where a whole table of rustc's driver
    /// library was 20 MB of names copied, to be dropped at once.
    pub fn for_addresses(symbols: Vec<FileSymbol>, files: &[&[u8]], wanted: &[u64]) -> SymbolTable {
        SymbolTable::build(symbols, files, Naming::For(wanted))
    }

    fn build(mut symbols: Vec<FileSymbol>, files: &[&[u8]], naming: Naming) -> SymbolTable {
        let name = |s: &FileSymbol| s.name.get(files);
        symbols.retain(|s| !s.name.blank);
        symbols.sort_unstable_by_key(|s| s.address);
        // One entry per address: the aliases there widen its size, and the nearest section end among them
        // limits it. An unsized entry gets the size up to the next symbol or its section's end, whichever
        // comes first, so that every entry is sized and none overlaps its successor by accident; one left
        // with no size is dropped.
        let mut entries: Vec<Entry> = Vec::with_capacity(symbols.len());
        let mut group: Option<(u64, u64, u64)> = None; // (address, size, end) of the group being read
        let mut close = |group: (u64, u64, u64), next: u64| {
            let (address, size, end) = group;
            let size = if size == 0 {
                next.min(end).saturating_sub(address)
            } else {
                size
            };
            if size > 0 {
                entries.push(Entry {
                    address,
                    size,
                    name: UNNAMED,
                    len: 0,
                });
            }
        };
        for s in &symbols {
            match &mut group {
                Some((address, size, end)) if *address == s.address => {
                    *size = (*size).max(s.size);
                    *end = (*end).min(s.end);
                }
                _ => {
                    if let Some(done) = group {
                        close(done, s.address);
                    }
                    group = Some((s.address, s.size, s.end));
                }
            }
        }
        if let Some(done) = group {
            close(done, u64::MAX);
        }
        entries.shrink_to_fit();
        let mut table = SymbolTable {
            entries,
            names: String::new(),
            aliases: Vec::new(),
        };
        let mut named: Vec<usize> = match naming {
            Naming::All => (0..table.entries.len()).collect(),
            Naming::For(wanted) => wanted.iter().filter_map(|&a| table.find(a)).collect(),
        };
        named.sort_unstable();
        named.dedup();
        let mut aliases: Vec<(u32, u32, u64)> = Vec::new();
        for i in named {
            let address = table.entries[i].address;
            let from = symbols.partition_point(|s| s.address < address);
            let to = symbols.partition_point(|s| s.address <= address);
            let group = &symbols[from..to];
            // Best first: the first alias names the entry.
            let Some(best) = group
                .iter()
                .min_by(|a, b| alias_order_of(&name(a), a.binding, &name(b), b.binding))
            else {
                continue;
            };
            let best_name = name(best);
            let best_name = strip_version(&best_name);
            let Some((start, len)) = table.push_name(best_name) else {
                continue;
            };
            table.entries[i].name = start;
            table.entries[i].len = len;
            if matches!(naming, Naming::All) {
                for s in group {
                    let other = name(s);
                    let other = strip_version(&other);
                    if other != best_name {
                        if let Some((start, len)) = table.push_name(other) {
                            aliases.push((start, len, s.address));
                        }
                    }
                }
            }
        }
        let names = &table.names;
        let text = |start: u32, len: u32| &names[start as usize..start as usize + len as usize];
        aliases.sort_unstable_by(|a, b| text(a.0, a.1).cmp(text(b.0, b.1)).then(a.2.cmp(&b.2)));
        aliases.dedup_by(|a, b| a.2 == b.2 && text(a.0, a.1) == text(b.0, b.1));
        aliases.shrink_to_fit();
        table.aliases = aliases;
        table.names.shrink_to_fit();
        table
    }

    /// Appends `name` to the names; `None` past 4 GiB of names (only garbage has that many).
    fn push_name(&mut self, name: &str) -> Option<(u32, u32)> {
        let start = u32::try_from(self.names.len()).ok()?;
        let len = u32::try_from(name.len()).ok()?;
        start.checked_add(len).filter(|&end| end != UNNAMED)?;
        self.names.push_str(name);
        Some((start, len))
    }

    fn name_of(&self, e: &Entry) -> Option<&str> {
        if e.name == UNNAMED {
            return None;
        }
        self.names
            .get(e.name as usize..e.name as usize + e.len as usize)
    }

    /// The entry that `name`, an alias other than the entry's own name, names: `(mangled name, start, size)`.
    pub fn alias_target(&self, name: &str) -> Option<(&str, u64, u64)> {
        let text = |&(start, len, _): &(u32, u32, u64)| {
            self.names
                .get(start as usize..start as usize + len as usize)
                .unwrap_or("")
        };
        let first = self.aliases.partition_point(|a| text(a) < name);
        let found = self.aliases.get(first)?;
        if text(found) != name {
            return None;
        }
        let address = found.2;
        self.lookup_range(Svma(address))
            .filter(|&(_, start, _)| start == address)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The (mangled) name of the function containing `svma`. An address past the end of a sized symbol is not
    /// in it; an unsized symbol reaches up to the next symbol or the end of its section.
    #[cfg(test)]
    pub fn lookup(&self, svma: Svma) -> Option<&str> {
        self.lookup_range(svma).map(|(name, _, _)| name)
    }

    /// Like `lookup`, with the symbol's start address and size: `(mangled name, start, size)`.
    pub fn lookup_range(&self, svma: Svma) -> Option<(&str, u64, u64)> {
        let e = &self.entries[self.find(svma.0)?];
        Some((self.name_of(e)?, e.address, e.size))
    }

    /// The start and size of the function containing `svma`, named or not (see
    /// [`SymbolTable::for_addresses`]).
    pub fn covering(&self, svma: Svma) -> Option<(u64, u64)> {
        let e = &self.entries[self.find(svma.0)?];
        Some((e.address, e.size))
    }

    /// The index of the entry containing `svma`.
    fn find(&self, svma: u64) -> Option<usize> {
        let after = self.entries.partition_point(|e| e.address <= svma);
        let nearest = after.checked_sub(1)?;
        let start = nearest.saturating_sub(ENCLOSING_LOOKBACK);
        (start..=nearest)
            .rev()
            .find(|&i| svma - self.entries[i].address < self.entries[i].size)
    }

    /// Every named entry as `(mangled name, start, size)`, by address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.entries
            .iter()
            .filter_map(|e| Some((self.name_of(e)?, e.address, e.size)))
    }
}

/// Symbols whose names are their own as symbols whose names are in one buffer (file 0), and the buffer.
#[cfg(test)]
fn in_buffer(symbols: Vec<RawSymbol>) -> (Vec<FileSymbol>, Vec<u8>) {
    let mut buffer = Vec::new();
    let symbols = symbols
        .into_iter()
        .map(|s| {
            let start = buffer.len() as u64;
            buffer.extend_from_slice(s.name.as_bytes());
            FileSymbol {
                name: NameRef {
                    file: 0,
                    blank: is_blank(s.name.as_bytes()),
                    start,
                    len: u32::try_from(s.name.len()).unwrap_or(0),
                },
                address: s.address,
                size: s.size,
                end: s.end,
                binding: s.binding,
            }
        })
        .collect();
    (symbols, buffer)
}

/// Orders aliases at one address best first: the name a user knows. Global and weak rank alike (glibc exports
/// `gettimeofday` as weak, `__gettimeofday` as global), above local (`___pthread_mutex_lock`,
/// `__GI___pthread_mutex_lock`); then fewer leading underscores; then the default version (`@@` or none) over a
/// non-default one (`@`); then shorter, then alphabetical so the choice is deterministic.
pub fn alias_order(a: &RawSymbol, b: &RawSymbol) -> std::cmp::Ordering {
    alias_order_of(&a.name, a.binding, &b.name, b.binding)
}

/// [`alias_order`] of two symbols given by name (with its version suffix) and binding.
pub fn alias_order_of(
    a: &str,
    a_binding: Binding,
    b: &str,
    b_binding: Binding,
) -> std::cmp::Ordering {
    let key = |full: &str, binding: Binding| {
        let name = strip_version(full);
        (
            binding == Binding::Local,
            name.len() - name.trim_start_matches('_').len(),
            !is_default_version(full),
            name.len(),
        )
    };
    key(a, a_binding)
        .cmp(&key(b, b_binding))
        .then_with(|| strip_version(a).cmp(strip_version(b)))
}

/// `pthread_mutex_lock@@GLIBC_2.2.5` -> `pthread_mutex_lock`. No mangling scheme uses `@`. The synthetic
/// `memcpy@plt` names of PLT stubs are not versions and stay.
pub fn strip_version(name: &str) -> &str {
    if name.ends_with("@plt") {
        return name;
    }
    name.split_once('@').map_or(name, |(base, _)| base)
}

fn is_default_version(name: &str) -> bool {
    match name.find('@') {
        None => true,
        Some(i) => name[i..].starts_with("@@"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, address: u64, size: u64, binding: Binding) -> RawSymbol {
        RawSymbol {
            name: name.to_owned(),
            address,
            size,
            end: u64::MAX,
            binding,
        }
    }

    #[test]
    fn other_aliases_find_the_entry_by_its_own_name() {
        let t = SymbolTable::new(vec![
            sym(
                "pthread_mutex_lock@@GLIBC_2.2.5",
                0x1000,
                0x40,
                Binding::Global,
            ),
            sym("___pthread_mutex_lock", 0x1000, 0x40, Binding::Local),
            sym(
                "__pthread_mutex_lock@GLIBC_2.2.5",
                0x1000,
                0x40,
                Binding::Global,
            ),
            sym("other", 0x2000, 0x10, Binding::Global),
        ]);
        assert_eq!(
            t.alias_target("___pthread_mutex_lock"),
            Some(("pthread_mutex_lock", 0x1000, 0x40))
        );
        assert_eq!(
            t.alias_target("__pthread_mutex_lock"),
            Some(("pthread_mutex_lock", 0x1000, 0x40))
        );
        // The entry's own name, and names no symbol has, are no aliases.
        assert_eq!(t.alias_target("pthread_mutex_lock"), None);
        assert_eq!(t.alias_target("other"), None);
        assert_eq!(t.alias_target("____pthread_mutex_lock"), None);
        assert_eq!(t.alias_target(""), None);
    }

    #[test]
    fn version_suffix_is_dropped() {
        assert_eq!(
            strip_version("pthread_mutex_lock@@GLIBC_2.2.5"),
            "pthread_mutex_lock"
        );
        assert_eq!(
            strip_version("__pthread_mutex_lock@GLIBC_2.2.5"),
            "__pthread_mutex_lock"
        );
        assert_eq!(strip_version("memcpy"), "memcpy");
        assert_eq!(strip_version("@@"), "");
        assert_eq!(strip_version("memcpy@plt"), "memcpy@plt");
    }

    #[test]
    fn glibc_mutex_lock_aliases_choose_the_public_name() {
        // As in libc6-dbg's debug file for Debian 12's libc.so.6 (readelf -Ws ... | grep mutex_lock).
        let t = SymbolTable::new(vec![
            sym("___pthread_mutex_lock", 0x8c370, 726, Binding::Local),
            sym("__GI___pthread_mutex_lock", 0x8c370, 726, Binding::Local),
            sym(
                "__pthread_mutex_lock@GLIBC_2.2.5",
                0x8c370,
                726,
                Binding::Global,
            ),
            sym(
                "pthread_mutex_lock@@GLIBC_2.2.5",
                0x8c370,
                726,
                Binding::Global,
            ),
        ]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(Svma(0x8c370)), Some("pthread_mutex_lock"));
        assert_eq!(t.lookup(Svma(0x8c370 + 725)), Some("pthread_mutex_lock"));
        assert_eq!(t.lookup(Svma(0x8c370 + 726)), None);
    }

    #[test]
    fn weak_ranks_with_global_and_underscores_decide() {
        let t = SymbolTable::new(vec![
            sym("__gettimeofday", 0x100, 0x20, Binding::Global),
            sym("gettimeofday", 0x100, 0x20, Binding::Weak),
        ]);
        assert_eq!(t.lookup(Svma(0x110)), Some("gettimeofday"));
    }

    #[test]
    fn global_beats_local_even_with_more_underscores() {
        let t = SymbolTable::new(vec![
            sym("helper", 0x100, 0x20, Binding::Local),
            sym("__helper", 0x100, 0, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x100)), Some("__helper"));
        // The entry keeps the largest size among the aliases.
        assert_eq!(t.lookup(Svma(0x11f)), Some("__helper"));
    }

    #[test]
    fn default_version_beats_non_default_then_shorter_then_alphabetical() {
        let t = SymbolTable::new(vec![
            sym("memcpy@GLIBC_2.2.5", 0x10, 8, Binding::Global),
            sym("memcpy@@GLIBC_2.14", 0x10, 8, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x10)), Some("memcpy"));
        let t = SymbolTable::new(vec![
            sym("bbb", 0x10, 8, Binding::Global),
            sym("aaa", 0x10, 8, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x10)), Some("aaa"));
        let t = SymbolTable::new(vec![
            sym("aaaa", 0x10, 8, Binding::Global),
            sym("zz", 0x10, 8, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x10)), Some("zz"));
    }

    #[test]
    fn lookup_by_address_with_sizes_and_gaps() {
        let t = SymbolTable::new(vec![
            sym("c", 0x300, 0, Binding::Global),
            sym("a", 0x100, 0x10, Binding::Global),
            sym("b", 0x200, 0x80, Binding::Local),
        ]);
        assert_eq!(t.lookup(Svma(0xff)), None);
        assert_eq!(t.lookup(Svma(0x100)), Some("a"));
        assert_eq!(t.lookup(Svma(0x10f)), Some("a"));
        assert_eq!(
            t.lookup(Svma(0x110)),
            None,
            "past the end of a sized symbol"
        );
        assert_eq!(t.lookup(Svma(0x27f)), Some("b"));
        assert_eq!(t.lookup(Svma(0x280)), None);
        assert_eq!(
            t.lookup(Svma(0x5000)),
            Some("c"),
            "an unsized symbol reaches to the next one"
        );
    }

    #[test]
    fn enclosing_symbol_found_behind_a_nested_one() {
        let t = SymbolTable::new(vec![
            sym("outer", 0x100, 0x100, Binding::Global),
            sym("inner", 0x150, 0x10, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x155)), Some("inner"));
        assert_eq!(t.lookup(Svma(0x180)), Some("outer"));
        let t = SymbolTable::new(vec![
            sym("unsized", 0x100, 0, Binding::Global),
            sym("sized", 0x200, 0x10, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x180)), Some("unsized"));
        assert_eq!(
            t.lookup(Svma(0x300)),
            None,
            "an unsized symbol ends where the next one starts"
        );
        let t = SymbolTable::new(vec![
            RawSymbol {
                end: 0x140,
                ..sym("_init", 0x100, 0, Binding::Global)
            },
            sym("later", 0x400, 0x10, Binding::Global),
        ]);
        assert_eq!(t.lookup(Svma(0x13f)), Some("_init"));
        assert_eq!(
            t.lookup(Svma(0x140)),
            None,
            "an unsized symbol ends with its section"
        );
    }

    #[test]
    fn blank_names_are_the_ones_without_a_base() {
        for blank in ["", "@", "@@GLIBC_2.2.5", "@GLIBC_2.2.5"] {
            assert!(is_blank(blank.as_bytes()), "{blank:?}");
            assert!(strip_version(blank).is_empty());
        }
        for named in ["a", "memcpy@plt", "@plt", "a@@V", "\u{fffd}@x"] {
            assert!(!is_blank(named.as_bytes()), "{named:?}");
            assert!(!strip_version(named).is_empty());
        }
    }

    /// A small deterministic generator (xorshift), so the property test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn a_table_for_some_addresses_names_them_as_the_whole_table() {
        let names = [
            "f",
            "_f",
            "__f",
            "g@@V2",
            "g@V1",
            "",
            "@@V",
            "h",
            "_Z1hv",
            "memcpy@plt",
        ];
        let bindings = [Binding::Global, Binding::Weak, Binding::Local];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            // Dense, overlapping, nested, unsized and aliased symbols in a small space, some cut by a
            // section end.
            let symbols: Vec<RawSymbol> = (0..rng.below(40))
                .map(|_| RawSymbol {
                    name: names[rng.below(names.len() as u64) as usize].to_owned(),
                    address: 0x100 + rng.below(0x100),
                    size: [0, 0, 1, 4, 16, 64][rng.below(6) as usize],
                    end: [u64::MAX, 0x180, 0x1c0][rng.below(3) as usize],
                    binding: bindings[rng.below(3) as usize],
                })
                .collect();
            let whole = SymbolTable::new(symbols.clone());
            let wanted: Vec<u64> = (0..rng.below(12))
                .map(|_| 0xf0 + rng.below(0x140))
                .collect();
            let (file_symbols, buffer) = in_buffer(symbols.clone());
            let some = SymbolTable::for_addresses(file_symbols, &[&buffer], &wanted);
            assert_eq!(some.len(), whole.len());
            for &a in &wanted {
                assert_eq!(
                    some.lookup_range(Svma(a)),
                    whole.lookup_range(Svma(a)),
                    "round {round}, address {a:#x}, symbols {symbols:?}"
                );
            }
            for a in 0xf0..0x240 {
                let named = whole
                    .lookup_range(Svma(a))
                    .map(|(_, start, size)| (start, size));
                assert_eq!(some.covering(Svma(a)), named, "round {round}, {a:#x}");
                assert_eq!(whole.covering(Svma(a)), named);
            }
            assert!(some.iter().count() <= wanted.len());
            assert!(some.alias_target("_f0").is_none());
        }
    }

    #[test]
    fn empty_names_are_ignored() {
        let t = SymbolTable::new(vec![sym("", 0x100, 0x10, Binding::Global)]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.lookup(Svma(0x100)), None);
    }
}
