//! (module, address) -> frames with inline functions and file:line: ELF, DWARF, kallsyms, JIT maps.
