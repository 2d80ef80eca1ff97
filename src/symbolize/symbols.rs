//! A function symbol table: the ELF symbols of a module, one name per address (the alias users know), looked up
//! by SVMA. Built from `.symtab` and `.dynsym` of the binary and of its debug file; knows nothing about files.

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

#[derive(Clone, Debug)]
struct Entry {
    address: u64,
    /// The largest size among the aliases at this address; 0 while none has one.
    size: u64,
    /// Section end, for an unsized entry.
    end: u64,
    /// Best alias, version suffix dropped, still mangled.
    name: Box<str>,
}

/// Function symbols sorted by address, one entry (the best alias) per address.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    entries: Vec<Entry>,
    /// The other aliases (version suffix dropped, still mangled) with their address, sorted by name: a name
    /// another tool printed (perf's `___pthread_mutex_lock`) finds the entry the profile names.
    aliases: Vec<(Box<str>, u64)>,
}

/// How far back a lookup walks when the nearest symbol ends before the address: an enclosing symbol can start
/// before a smaller one (hand-written assembly does this), but never far before.
const ENCLOSING_LOOKBACK: usize = 4;

impl SymbolTable {
    pub fn new(mut symbols: Vec<RawSymbol>) -> SymbolTable {
        symbols.retain(|s| !strip_version(&s.name).is_empty());
        symbols.sort_by(|a, b| a.address.cmp(&b.address).then_with(|| alias_order(a, b)));
        let mut entries: Vec<Entry> = Vec::with_capacity(symbols.len());
        let mut aliases: Vec<(Box<str>, u64)> = Vec::new();
        for s in symbols {
            match entries.last_mut() {
                // Sorted best-first within an address: the first alias wins, the others only widen the size.
                Some(last) if last.address == s.address => {
                    last.size = last.size.max(s.size);
                    last.end = last.end.min(s.end);
                    let name = strip_version(&s.name);
                    if name != &*last.name {
                        aliases.push((name.into(), s.address));
                    }
                }
                _ => entries.push(Entry {
                    address: s.address,
                    size: s.size,
                    end: s.end,
                    name: strip_version(&s.name).into(),
                }),
            }
        }
        // Give unsized entries the size up to the next symbol or their section's end, whichever comes first,
        // so that every entry is sized from here on and none overlaps its successor by accident.
        for i in 0..entries.len() {
            if entries[i].size == 0 {
                let next = entries.get(i + 1).map_or(u64::MAX, |n| n.address);
                let e = &mut entries[i];
                e.size = next.min(e.end).saturating_sub(e.address);
            }
        }
        entries.retain(|e| e.size > 0);
        aliases.sort_unstable();
        aliases.dedup();
        aliases.shrink_to_fit();
        SymbolTable { entries, aliases }
    }

    /// The entry that `name`, an alias other than the entry's own name, names: `(mangled name, start, size)`.
    pub fn alias_target(&self, name: &str) -> Option<(&str, u64, u64)> {
        let first = self.aliases.partition_point(|(n, _)| &**n < name);
        let &(ref found, address) = self.aliases.get(first)?;
        if &**found != name {
            return None;
        }
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
        let after = self.entries.partition_point(|e| e.address <= svma.0);
        let nearest = after.checked_sub(1)?;
        let start = nearest.saturating_sub(ENCLOSING_LOOKBACK);
        self.entries[start..=nearest]
            .iter()
            .rev()
            .find(|e| svma.0 - e.address < e.size)
            .map(|e| (&*e.name, e.address, e.size))
    }

    /// Every entry as `(mangled name, start, size)`, by address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.entries.iter().map(|e| (&*e.name, e.address, e.size))
    }
}

/// Orders aliases at one address best first: the name a user knows. Global and weak rank alike (glibc exports
/// `gettimeofday` as weak, `__gettimeofday` as global), above local (`___pthread_mutex_lock`,
/// `__GI___pthread_mutex_lock`); then fewer leading underscores; then the default version (`@@` or none) over a
/// non-default one (`@`); then shorter, then alphabetical so the choice is deterministic.
pub fn alias_order(a: &RawSymbol, b: &RawSymbol) -> std::cmp::Ordering {
    let key = |s: &RawSymbol| {
        let name = strip_version(&s.name);
        (
            s.binding == Binding::Local,
            name.len() - name.trim_start_matches('_').len(),
            !is_default_version(&s.name),
            name.len(),
        )
    };
    key(a)
        .cmp(&key(b))
        .then_with(|| strip_version(&a.name).cmp(strip_version(&b.name)))
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
    fn empty_names_are_ignored() {
        let t = SymbolTable::new(vec![sym("", 0x100, 0x10, Binding::Global)]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.lookup(Svma(0x100)), None);
    }
}
