//! Unit tests of the symbolizer (`mod.rs`): module cache and eviction, JIT maps, names of what cannot be read.

use super::*;

#[test]
fn symbolizer_can_move_to_a_worker_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Symbolizer>();
}

/// The module and file offset of an address of this process, from `/proc/self/maps`.
pub(crate) fn own_code(addr: u64) -> (ModuleSpec, FileOffset) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        if (start..end).contains(&addr) {
            let pgoff = u64::from_str_radix(fields[2], 16).unwrap();
            let spec = ModuleSpec {
                path: fields[5..].join(" "),
                ..ModuleSpec::default()
            };
            return (spec, FileOffset(addr - start + pgoff));
        }
    }
    panic!("{addr:#x} is not mapped");
}

#[test]
fn evicted_modules_take_their_frames_and_load_again() {
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    let (libc, offset) = own_code(libc::getpid as *const () as u64);
    assert!(libc.path.contains("libc"), "{}", libc.path);
    let first = s.symbolize_user(&libc, offset);
    assert_eq!(first.last().map(|f| f.function.as_str()), Some("getpid"));
    let gone = ModuleSpec {
        path: "/nonexistent/libgone.so".to_owned(),
        ..ModuleSpec::default()
    };
    s.symbolize_user(&gone, FileOffset(0x10));
    s.symbolize_user(&gone, FileOffset(0x20));
    assert_eq!(s.module_count(), 2);
    let frames = |s: &Symbolizer| s.modules.values().map(|m| m.frames.len()).sum::<usize>();
    assert_eq!(frames(&s), 3);

    let key = ModuleKey::of(&libc);
    assert_eq!(s.retain_modules(|k| k != &key), 1);
    assert_eq!(s.module_count(), 1);
    assert_eq!(frames(&s), 2, "the evicted module's frames went with it");
    assert_eq!(s.module_status(&libc), ModuleStatus::NotLoaded);
    assert!(matches!(
        s.module_status(&gone),
        ModuleStatus::Unreadable { .. }
    ));

    // A later lookup loads the module again and resolves the same frames afresh.
    let again = s.symbolize_user(&libc, offset);
    assert_eq!(again, first);
    assert!(!Arc::ptr_eq(&again, &first));
    assert!(matches!(
        s.module_status(&libc),
        ModuleStatus::Loaded { .. }
    ));
    assert_eq!(s.retain_modules(|_| false), 2);
    assert_eq!((s.module_count(), frames(&s)), (0, 0));
}

#[test]
fn without_the_frame_cache_frames_are_made_afresh_and_not_kept() {
    let (libc, offset) = own_code(libc::getpid as *const () as u64);
    let mut kept = Symbolizer::new().with_debug_dirs(vec![]);
    let mut once = Symbolizer::new()
        .with_debug_dirs(vec![])
        .without_frame_cache();
    let frames = |s: &Symbolizer| s.modules.values().map(|m| m.frames.len()).sum::<usize>();
    let first = once.symbolize_user(&libc, offset);
    assert_eq!(first, kept.symbolize_user(&libc, offset));
    assert_eq!((frames(&once), frames(&kept)), (0, 1));
    let again = once.symbolize_user(&libc, offset);
    assert_eq!(again, first);
    assert!(!Arc::ptr_eq(&again, &first));
    assert_eq!(once.module_count(), 1, "the module itself stays loaded");
}

/// A JIT map in a directory of its own, named for a pid no process has (so only the directory is searched).
fn jit_map(name: &str, bytes: &[u8]) -> (PathBuf, u32) {
    let dir = std::env::temp_dir().join(format!("stacktop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid = 4_000_000_001;
    std::fs::write(dir.join(format!("perf-{pid}.map")), bytes).unwrap();
    (dir, pid)
}

fn jit_name(s: &mut Symbolizer, pid: u32, addr: u64) -> Option<String> {
    s.symbolize_jit(pid, Avma(addr))
        .map(|f| f[0].function.clone())
}

#[test]
fn jit_map_with_a_line_that_is_not_utf8_keeps_its_other_lines() {
    // Before: the map was read as one UTF-8 string, so this one byte made every JIT frame unknown.
    let (dir, pid) = jit_map(
        "jit-utf8",
        b"1000 100 before\n2000 100 bad\xffname\n3000 100 after\n",
    );
    let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
    assert_eq!(jit_name(&mut s, pid, 0x1010).as_deref(), Some("before"));
    assert_eq!(jit_name(&mut s, pid, 0x3010).as_deref(), Some("after"));
    assert_eq!(
        jit_name(&mut s, pid, 0x2010).as_deref(),
        Some("bad\u{fffd}name")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn huge_jit_map_is_read_only_up_to_the_cap() {
    // A sparse file: one symbol at the start, another 100 MiB in (past the cap), zeros between.
    let (dir, pid) = jit_map("jit-huge", b"1000 100 first\n");
    let path = dir.join(format!("perf-{pid}.map"));
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(100 << 20)).unwrap();
        f.write_all(b"\n2000 100 late\n").unwrap();
    }
    let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
    let begin = Instant::now();
    assert_eq!(jit_name(&mut s, pid, 0x1010).as_deref(), Some("first"));
    // Before: the whole file was read (a 2 GB map took 2 GB and 30 s), and `late` was found.
    assert_eq!(jit_name(&mut s, pid, 0x2010), None);
    assert!(begin.elapsed() < Duration::from_secs(10));
    let notes = s.take_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("64 MiB"), "{notes:?}");
    // Said once, though every miss looks at the file again.
    assert_eq!(jit_name(&mut s, pid, 0x2010), None);
    assert!(s.take_notes().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grown_jit_map_is_read_on_refresh_and_named_as_read_until_then() {
    let (dir, pid) = jit_map("jit-refresh", b"1000 100 first\n");
    let map = dir.join(format!("perf-{pid}.map"));
    let mut s = Symbolizer::new()
        .with_perf_map_dir(dir.clone())
        .with_jit_recheck(Duration::from_secs(3600));
    let as_read = |s: &mut Symbolizer, addr: u64| {
        s.symbolize_jit_as_read(pid, Avma(addr))
            .map(|f| f[0].function.clone())
    };
    assert_eq!(as_read(&mut s, 0x1010).as_deref(), Some("first"));
    std::fs::write(&map, "1000 100 first\n2000 100 second\n").unwrap();
    assert_eq!(as_read(&mut s, 0x2010), None, "the map as read");
    // Read a moment ago: the recheck interval holds the next look back.
    s.refresh_jit_map(pid);
    assert_eq!(as_read(&mut s, 0x2010), None);
    let mut s = s.with_jit_recheck(Duration::ZERO);
    s.refresh_jit_map(pid);
    assert_eq!(as_read(&mut s, 0x2010).as_deref(), Some("second"));
    assert_eq!(as_read(&mut s, 0x1010).as_deref(), Some("first"));
    // A process that has no map yet is read once, and again once it has one.
    s.forget_process(pid);
    std::fs::remove_file(&map).unwrap();
    assert_eq!(as_read(&mut s, 0x1010), None);
    std::fs::write(&map, "1000 100 later\n").unwrap();
    assert_eq!(as_read(&mut s, 0x1010), None);
    s.refresh_jit_map(pid);
    assert_eq!(as_read(&mut s, 0x1010).as_deref(), Some("later"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forgotten_process_rereads_its_jit_map() {
    let dir = std::env::temp_dir().join(format!("stacktop-jit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A pid no process has: the map is found in the directory only.
    let pid = 4_000_000_000;
    let map = dir.join(format!("perf-{pid}.map"));
    std::fs::write(&map, "1000 100 first\n").unwrap();
    let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
    let name = |s: &mut Symbolizer| {
        s.symbolize_jit(pid, Avma(0x1010))
            .map(|f| f[0].function.clone())
    };
    assert_eq!(name(&mut s).as_deref(), Some("first"));
    assert_eq!(s.jit_process_count(), 1);
    s.forget_process(pid);
    assert_eq!(s.jit_process_count(), 0);
    // The pid is reused by a process with a map of the same length: it is read, not the cached frame.
    std::fs::write(&map, "1000 100 again\n").unwrap();
    assert_eq!(name(&mut s).as_deref(), Some("again"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn module_names() {
    assert_eq!(
        module_name("/usr/lib/x86_64-linux-gnu/libc.so.6"),
        "libc.so.6"
    );
    assert_eq!(module_name("/tmp/a.out (deleted)"), "a.out");
    assert_eq!(module_name("[vdso]"), "[vdso]");
    assert_eq!(module_name(""), "[anon]");
    assert_eq!(module_name("relative"), "relative");
}

#[test]
fn missing_file_costs_only_its_own_frames() {
    let mut s = Symbolizer::new();
    let spec = ModuleSpec {
        path: "/nonexistent/libgone.so".to_owned(),
        ..ModuleSpec::default()
    };
    let frames = s.symbolize_user(&spec, FileOffset(0x1234));
    assert_eq!(
        &*frames,
        &[Frame {
            function: "[unknown] libgone.so+0x1234 (unreadable)".to_owned(),
            file: None,
            line: 0
        }]
    );
    assert!(frames[0].is_unknown());
    assert!(matches!(
        s.module_status(&spec),
        ModuleStatus::Unreadable { .. }
    ));
}

#[test]
fn devices_are_not_read() {
    let mut s = Symbolizer::new();
    let spec = ModuleSpec {
        path: "/dev/zero".to_owned(),
        ..ModuleSpec::default()
    };
    assert_eq!(
        s.symbolize_user(&spec, FileOffset(0))[0].function,
        "[unknown] zero+0x0 (unreadable)"
    );
    match s.module_status(&spec) {
        ModuleStatus::Unreadable { reason } => {
            assert!(reason.contains("not a regular file"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pseudo_mappings_are_named() {
    let mut s = Symbolizer::new();
    let heap = ModuleSpec {
        path: "[heap]".to_owned(),
        ..ModuleSpec::default()
    };
    assert_eq!(
        s.symbolize_user(&heap, FileOffset(0x10))[0].function,
        "[unknown] [heap]+0x10"
    );
    assert_eq!(s.module_status(&heap), ModuleStatus::NotAFile);
    let anon = ModuleSpec::default();
    assert_eq!(
        s.symbolize_user(&anon, FileOffset(0x20))[0].function,
        "[unknown] [anon]+0x20"
    );
}

#[test]
fn kernel_from_given_kallsyms() {
    let k = Kallsyms::parse("ffffffff81000000 T _stext\nffffffff81001000 T do_syscall_64\n");
    let mut s = Symbolizer::new().with_kallsyms(k);
    assert_eq!(
        s.symbolize_kernel(Avma(0xffffffff81001010))[0].function,
        "do_syscall_64"
    );
    assert_eq!(
        s.symbolize_kernel(Avma(0x1000))[0].function,
        "[unknown] [kernel.kallsyms]+0x1000"
    );
    let restricted = Kallsyms::parse("0000000000000000 T _stext\n");
    let mut s = Symbolizer::new().with_kallsyms(restricted);
    assert_eq!(
        s.symbolize_kernel(Avma(0xffffffff81001010))[0].function,
        "[unknown] [kernel.kallsyms]+0xffffffff81001010"
    );
}

/// Offsets of `spec`'s code: every `step` bytes of its executable mappings in this process.
fn code_offsets(spec: &ModuleSpec, step: u64) -> Vec<FileOffset> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut out = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[5..].join(" ") != spec.path || !fields[1].contains('x') {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let pgoff = u64::from_str_radix(fields[2], 16).unwrap();
        out.extend(
            (0..end - start)
                .step_by(step as usize)
                .map(|d| FileOffset(pgoff + d)),
        );
    }
    out
}

#[test]
fn a_module_read_for_some_offsets_names_them_as_a_whole_one() {
    let loader = Symbolizer::new().loader();
    // This test binary (large and mapped: its DWARF is read in place, with inline frames and lines) and libc
    // (its debug file when installed, with aliases such as pthread_mutex_lock's).
    for addr in [
        a_module_read_for_some_offsets_names_them_as_a_whole_one as *const () as u64,
        libc::pthread_mutex_lock as *const () as u64,
    ] {
        let (spec, own) = own_code(addr);
        let mut offsets = code_offsets(&spec, 4099);
        offsets.push(own);
        offsets.push(FileOffset(u64::MAX / 2));
        let mut whole = loader.load(&spec);
        let mut some = loader.load_for(&spec, &offsets);
        assert!(!whole.is_partial() && some.is_partial());
        assert_eq!(some.status(), whole.status());
        let mut named = 0;
        for &offset in &offsets {
            let frames = whole.frames_at(offset);
            named += usize::from(!frames[0].is_unknown());
            assert_eq!(
                some.frames_at(offset),
                frames,
                "{}+{:#x}",
                spec.path,
                offset.0
            );
        }
        assert!(named > offsets.len() / 4, "{}: {named} named", spec.path);
        // Releasing the pages read changes no answer.
        some.release_pages();
        assert_eq!(some.frames_at(own), whole.frames_at(own));
        // Not for a symbolizer: it knows only these offsets.
        let mut s = Symbolizer::new();
        assert!(!s.install(some));
        assert!(!s.is_loaded(&spec));
    }
}

#[inline(never)]
fn a_function_of_this_test() -> u64 {
    std::hint::black_box(7)
}

#[test]
fn the_code_of_the_process_named_by_symbols_only_has_no_line_tables() {
    let (spec, offset) = own_code(a_function_of_this_test as *const () as u64);
    let own = ModuleSpec {
        pid: Some(std::process::id()),
        ..spec.clone()
    };
    let symbols_only = || {
        Symbolizer::new()
            .with_symbols_only_for(std::process::id(), std::env::current_exe().unwrap())
    };
    // Sampled in another process (stacktop profiling a build of itself), or by a symbolizer not told to: the
    // DWARF names the line.
    for (mut s, spec) in [
        (symbols_only(), spec.clone()),
        (Symbolizer::new().with_debug_dirs(vec![]), own.clone()),
    ] {
        let elsewhere = s.symbolize_user(&spec, offset);
        let outer = elsewhere.last().unwrap();
        assert!(
            outer.function.contains("a_function_of_this_test"),
            "{elsewhere:?}"
        );
        assert!(outer.line > 0, "{elsewhere:?}");
    }
    // Sampled in this very process (`-a` samples stacktop too): the symbol table alone, in the symbolizer
    // and in the loader of its background thread.
    let mut s = symbols_only();
    let loaded = s.loader().load(&own);
    assert!(matches!(
        loaded.status(),
        ModuleStatus::Loaded {
            debug_info: DebugInfo::None,
            ..
        }
    ));
    // The libraries the process maps are other programs' too (modules are shared by build-id): they keep
    // their debug info.
    let (libc, _) = own_code(libc::getpid as *const () as u64);
    let libc = ModuleSpec {
        pid: Some(std::process::id()),
        ..libc
    };
    let plain = Symbolizer::new().loader().load(&libc);
    assert_eq!(s.loader().load(&libc).status(), plain.status());
    let frames = s.symbolize_user(&own, offset);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        frames[0].function.contains("a_function_of_this_test"),
        "{frames:?}"
    );
    assert_eq!((frames[0].file.as_deref(), frames[0].line), (None, 0));
    assert!(matches!(
        s.module_status(&own),
        ModuleStatus::Loaded {
            debug_info: DebugInfo::None,
            ..
        }
    ));
}
