//! Demangling of symbol names: Rust (legacy `_ZN..17h<hash>E` and v0 `_R..`) and C++ (Itanium `_Z..`).
//! Plain C names pass through untouched, and so does anything a demangler rejects.

use cpp_demangle::{DemangleOptions, ParseOptions};

/// Deep C++ templates can make the demangler recurse; an adversarial name must not blow the stack.
const CPP_RECURSION_LIMIT: u32 = 96;

/// The readable form of a symbol name. Rust names are printed without their hash (`{:#}`). A PLT stub's
/// `@plt` suffix is kept after the demangled name.
pub fn demangle(name: &str) -> String {
    if let Some(base) = name.strip_suffix("@plt") {
        return format!("{}@plt", demangle(base));
    }
    if !looks_mangled(name) {
        return name.to_owned();
    }
    // Rust first: a Rust legacy name is also valid Itanium syntax, and the C++ demangler would keep the hash.
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if let Some(d) = demangle_cpp(name) {
        return d;
    }
    name.to_owned()
}

fn looks_mangled(name: &str) -> bool {
    name.starts_with("_Z")
        || name.starts_with("__Z")
        || name.starts_with("_R")
        || name.starts_with("__R")
}

fn demangle_cpp(name: &str) -> Option<String> {
    let parse = ParseOptions::default().recursion_limit(CPP_RECURSION_LIMIT);
    let sym = cpp_demangle::Symbol::new_with_options(name, &parse).ok()?;
    let opts = DemangleOptions::new().recursion_limit(CPP_RECURSION_LIMIT);
    sym.demangle(&opts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_legacy_drops_the_hash() {
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h2b3c1a9e0f4d5c6bE"),
            "core::ptr::drop_in_place"
        );
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"),
            "std::rt::lang_start"
        );
    }

    #[test]
    fn rust_v0() {
        // From the v0 mangling RFC: `mycrate::example` with crate disambiguator.
        assert_eq!(
            demangle("_RNvCs15kBYyAo9fc_7mycrate7example"),
            "mycrate::example"
        );
    }

    #[test]
    fn cpp_with_parameters() {
        assert_eq!(demangle("_ZN3foo3barEi"), "foo::bar(int)");
        assert_eq!(demangle("_Z3addii"), "add(int, int)");
        assert_eq!(demangle("_Z3addii@plt"), "add(int, int)@plt");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back(int const&)"
        );
    }

    #[test]
    fn c_names_and_garbage_pass_through() {
        assert_eq!(demangle("pthread_mutex_lock"), "pthread_mutex_lock");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Zgarbage!!"), "_Zgarbage!!");
        assert_eq!(demangle("_R"), "_R");
        assert_eq!(demangle(""), "");
        // Deeply nested template garbage: must return, not overflow the stack.
        let deep = format!("_Z1fI{}E", "St6vectorI".repeat(5000));
        let _ = demangle(&deep);
    }
}
