//! The symbolizer against real files: this test binary resolving its own functions (like the addr2line crate's
//! self-test), the running libc with libc6-dbg's separate debug file, and C/C++ fixtures from `assets/` built
//! here with the system compiler (plain, stripped, split debug, compressed debug sections).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{function_symbol, root_or_skip, scratch_dir, skip, svma_to_offset};
use object::{Object, ObjectSymbol};
use stacktop::addr::{Avma, FileOffset};
use stacktop::symbolize::{read_build_id, DebugInfo, Frame, ModuleSpec, ModuleStatus, Symbolizer};

/// One line of `/proc/self/maps`.
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

fn mapping_of(addr: u64) -> Mapping {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next().expect("range");
        let (_perms, offset, _dev, _inode) =
            (fields.next(), fields.next(), fields.next(), fields.next());
        let path = fields.collect::<Vec<_>>().join(" ");
        let (start, end) = range.split_once('-').expect("start-end");
        let start = u64::from_str_radix(start, 16).expect("hex");
        let end = u64::from_str_radix(end, 16).expect("hex");
        if (start..end).contains(&addr) {
            let offset = u64::from_str_radix(offset.expect("offset"), 16).expect("hex");
            return Mapping {
                start,
                end,
                offset,
                path,
            };
        }
    }
    panic!("{addr:#x} is in no mapping of /proc/self/maps");
}

/// The module spec and file offset of an address in this process, as the process stage would compute them.
fn locate(addr: u64) -> (ModuleSpec, FileOffset) {
    let m = mapping_of(addr);
    let spec = ModuleSpec {
        path: m.path,
        build_id: None,
        pid: Some(std::process::id()),
        map_start: m.start,
        map_end: m.end,
    };
    (spec, FileOffset(addr - m.start + m.offset))
}

fn show(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| {
            format!(
                "{} at {}:{}",
                f.function,
                f.file.as_deref().unwrap_or("?"),
                f.line
            )
        })
        .collect::<Vec<_>>()
        .join(" <- ")
}

const MARKER_LINE: u32 = line!();
#[inline(never)]
fn marker() -> u64 {
    std::hint::black_box(0x5eed)
}

pub fn resolves_its_own_function() {
    let addr = marker as *const () as u64;
    assert_eq!(marker(), 0x5eed);
    let (spec, offset) = locate(addr);
    let mut s = Symbolizer::new();
    let frames = s.symbolize_user(&spec, offset);
    eprintln!("{:#x} -> {}", addr, show(&frames));
    // `black_box` may be inlined at the very start of `marker`: then it is the innermost frame.
    let f = frames.last().expect("frames");
    assert_eq!(f.function, "it::symbolize::marker", "{}", show(&frames));
    assert!(
        f.file
            .as_deref()
            .is_some_and(|p| p.ends_with("tests/it/symbolize.rs")),
        "{f:?}"
    );
    assert!(
        (MARKER_LINE + 1..=MARKER_LINE + 4).contains(&f.line),
        "{f:?}, fn at line {}",
        MARKER_LINE + 2
    );
    // Opened through the process, as while profiling a live one.
    match s.module_status(&spec) {
        ModuleStatus::Loaded {
            debug_info: DebugInfo::Embedded,
            opened,
            ..
        } => {
            // map_files needs CAP_SYS_ADMIN; without it, the file through the process's root.
            let pid = std::process::id();
            assert!(
                opened.starts_with(format!("/proc/{pid}/map_files/"))
                    || opened.starts_with(format!("/proc/{pid}/root/")),
                "{opened:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Resolved once: the same Arc comes back.
    assert!(std::sync::Arc::ptr_eq(
        &frames,
        &s.symbolize_user(&spec, offset)
    ));
}

pub fn libc_pthread_mutex_lock_with_libc6_dbg() {
    let addr = libc::pthread_mutex_lock as *const () as u64;
    let (spec, offset) = locate(addr);
    let libc_path = spec.path.clone();
    let id =
        read_build_id(&std::fs::read(&libc_path).expect("read libc")).expect("libc has a build-id");
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    if !Path::new(&debug).exists() {
        skip(&format!("{debug} is missing (install libc6-dbg)"));
    }
    let mut s = Symbolizer::new();
    let spec = ModuleSpec {
        build_id: Some(id),
        ..spec
    };
    let frames = s.symbolize_user(&spec, offset);
    eprintln!("{libc_path}+{:#x} -> {}", offset.0, show(&frames));
    let outer = frames.last().expect("frames");
    assert_eq!(outer.function, "pthread_mutex_lock", "{}", show(&frames));
    let f = &frames[0];
    assert!(
        f.file
            .as_deref()
            .is_some_and(|p| p.contains("pthread_mutex_lock.c")),
        "{}",
        show(&frames)
    );
    assert!(f.line > 0);
    match s.module_status(&spec) {
        ModuleStatus::Loaded {
            debug_info: DebugInfo::Separate(path),
            ..
        } => assert_eq!(path, Path::new(&debug)),
        other => panic!("{other:?}"),
    }
}

pub fn libc_plt_stubs_are_named_including_ifunc_slots() {
    let addr = libc::pthread_mutex_lock as *const () as u64;
    let (spec, _) = locate(addr);
    let data = std::fs::read(&spec.path).expect("read libc");
    let file = object::File::parse(&*data).expect("parse libc");
    let Some(plt) = object::Object::section_by_name(&file, ".plt") else {
        skip("libc has no .plt");
    };
    let (off, size) = object::ObjectSection::file_range(&plt).expect("in file");
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    // Entry 0 is the lazy-binding resolver stub; every other entry jumps through a slot that names it,
    // IRELATIVE ones (libc calling its own IFUNCs: memmove, strlen, ...) included.
    let names: Vec<String> = (off + 16..off + size)
        .step_by(16)
        .map(|entry| {
            s.symbolize_user(&spec, FileOffset(entry + 2))[0]
                .function
                .clone()
        })
        .collect();
    let named = names.iter().filter(|n| n.ends_with("@plt")).count();
    eprintln!(
        "{named} of {} libc PLT stubs named, e.g. {:?}",
        names.len(),
        names.first()
    );
    assert_eq!(named, names.len(), "{names:?}");
}

pub fn vdso_functions_are_named() {
    let Some((start, end)) = vdso_range() else {
        skip("no [vdso] mapping");
    };
    let mut image = vec![0u8; (end - start) as usize];
    {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::File::open("/proc/self/mem").expect("open /proc/self/mem");
        mem.read_exact_at(&mut image, start).expect("read vdso");
    }
    let file = object::File::parse(&image[..]).expect("vdso is ELF");
    let sym = file
        .dynamic_symbols()
        .find(|s| s.name() == Ok("__vdso_clock_gettime"))
        .expect("vdso exports __vdso_clock_gettime");
    let offset = svma_to_offset(&file, sym.address());
    let spec = ModuleSpec {
        path: "[vdso]".to_owned(),
        build_id: None,
        pid: Some(std::process::id()),
        map_start: start,
        map_end: end,
    };
    let frames = Symbolizer::new().symbolize_user(&spec, FileOffset(offset + 1));
    eprintln!("[vdso]+{:#x} -> {}", offset + 1, show(&frames));
    // The weak alias `clock_gettime` is the name users know.
    assert_eq!(
        frames.last().map(|f| f.function.as_str()),
        Some("clock_gettime")
    );
}

/// The `[vdso]` range from `/proc/self/maps`.
fn vdso_range() -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    ))
}

// ---- C and C++ fixtures -------------------------------------------------------------------------------------

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// A fresh directory (or a file) for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = scratch_dir().join(format!("symbolize-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    Scratch(dir)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cc -O2 -g -o OUT assets/inline.c`.
fn build_inline(dir: &Path) -> PathBuf {
    build_inline_with(dir, "inline", &[])
}

/// `cc -O2 -g EXTRA.. -o DIR/NAME assets/inline.c`.
fn build_inline_with(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    run(Command::new("cc")
        .args(["-O2", "-g"])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(assets().join("inline.c")));
    out
}

/// Lines of `assets/NAME` carrying `/* @MARK */`.
fn marked_lines(name: &str, mark: &str) -> Vec<u32> {
    let src = std::fs::read_to_string(assets().join(name)).expect("read asset");
    let tag = format!("@{mark} ");
    (1..)
        .zip(src.lines())
        .filter(|(_, l)| l.contains(&tag))
        .map(|(n, _)| n)
        .collect()
}

fn spec_for(path: &Path) -> ModuleSpec {
    ModuleSpec {
        path: path.to_string_lossy().into_owned(),
        ..ModuleSpec::default()
    }
}

/// Every address of `hash_words`: those in the inlined `mix` give two frames, `mix` first; the others one.
fn check_inline_frames(s: &mut Symbolizer, binary: &Path, symbols_from: &Path) {
    let (start, size) = function_symbol(symbols_from, "hash_words");
    let body = marked_lines("inline.c", "mix-body");
    let call = marked_lines("inline.c", "mix-call");
    assert_eq!((body.len(), call.len()), (3, 1));
    let spec = spec_for(binary);
    let mut inlined = 0;
    for off in start..start + size {
        let frames = s.symbolize_user(&spec, FileOffset(off));
        match &*frames {
            [inner, outer] => {
                inlined += 1;
                assert_eq!(inner.function, "mix", "{off:#x}: {}", show(&frames));
                assert!(body.contains(&inner.line), "{off:#x}: {}", show(&frames));
                assert_eq!(outer.function, "hash_words");
                assert_eq!(outer.line, call[0], "{off:#x}: {}", show(&frames));
                for f in [inner, outer] {
                    assert!(
                        f.file
                            .as_deref()
                            .is_some_and(|p| p.ends_with("assets/inline.c")),
                        "{f:?}"
                    );
                }
            }
            [only] => assert_eq!(only.function, "hash_words", "{off:#x}: {}", show(&frames)),
            _ => panic!("{off:#x}: {}", show(&frames)),
        }
    }
    assert!(
        inlined > 0,
        "no address of hash_words is in the inlined mix()"
    );
}

pub fn c_fixture_inline_frames() {
    let dir = scratch("inline");
    let exe = build_inline(&dir);
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    check_inline_frames(&mut s, &exe, &exe);
    // One example in the log for whoever reads it.
    let (start, _) = function_symbol(&exe, "hash_words");
    eprintln!(
        "hash_words+0x10 -> {}",
        show(&s.symbolize_user(&spec_for(&exe), FileOffset(start + 0x10)))
    );
}

pub fn c_fixture_non_pie_executable_and_shared_library() {
    let dir = scratch("layouts");
    // Non-PIE: SVMAs start at 0x400000, so file offset and SVMA differ.
    let exe = build_inline_with(&dir, "inline-nopie", &["-no-pie", "-fno-pie"]);
    check_inline_frames(&mut Symbolizer::new().with_debug_dirs(vec![]), &exe, &exe);
    let so = build_inline_with(&dir, "libinline.so", &["-shared", "-fPIC"]);
    check_inline_frames(&mut Symbolizer::new().with_debug_dirs(vec![]), &so, &so);
    // A stripped shared library still names its exported functions, from .dynsym.
    let stripped = dir.join("libinline-stripped.so");
    run(Command::new("strip").arg("-o").arg(&stripped).arg(&so));
    let (start, _) = function_symbol(&so, "hash_words");
    let frames = Symbolizer::new()
        .with_debug_dirs(vec![])
        .symbolize_user(&spec_for(&stripped), FileOffset(start + 2));
    assert_eq!(
        &*frames,
        &[Frame {
            function: "hash_words".to_owned(),
            file: None,
            line: 0
        }]
    );
}

pub fn c_fixture_deleted_binary_of_a_live_process_via_map_files() {
    root_or_skip("reading a deleted binary through /proc/PID/map_files");
    let dir = scratch("deleted");
    let exe = build_inline(&dir);
    let (start, _) = function_symbol(&exe, "hash_words");
    let victim = dir.join("victim");
    std::fs::copy(&exe, &victim).expect("copy");
    /// Kills the child when the test ends, whichever way it ends.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Child(
        Command::new(&victim)
            .arg("30")
            .spawn()
            .expect("spawn victim"),
    );
    let pid = child.0.id();
    // Wait until the exec has happened and the binary is mapped.
    let maps = (0..200)
        .find_map(|_| {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            if maps.contains("/victim") {
                return Some(maps);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            None
        })
        .expect("victim mapped");
    std::fs::remove_file(&victim).expect("delete the binary");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or(maps);
    let mapping = maps
        .lines()
        .filter(|l| l.contains("/victim"))
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-')?;
            let (s, e) = (
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            );
            let pgoff = u64::from_str_radix(f[2], 16).ok()?;
            (pgoff <= start && start < pgoff + (e - s)).then(|| (s, e, f[5..].join(" ")))
        });
    let result = mapping.map(|(map_start, map_end, path)| {
        assert!(path.ends_with("victim (deleted)"), "{path}");
        let spec = ModuleSpec {
            path,
            build_id: None,
            pid: Some(pid),
            map_start,
            map_end,
        };
        let mut s = Symbolizer::new().with_debug_dirs(vec![]);
        (
            s.symbolize_user(&spec, FileOffset(start)),
            s.module_status(&spec),
        )
    });
    drop(child);
    let (frames, status) = result.expect("a mapping of victim holds hash_words");
    assert_eq!(
        frames.last().map(|f| f.function.as_str()),
        Some("hash_words"),
        "{}",
        show(&frames)
    );
    match status {
        ModuleStatus::Loaded { opened, .. } => {
            assert!(
                opened.starts_with(format!("/proc/{pid}/map_files/")),
                "{opened:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

pub fn c_fixture_plt_stubs_are_named() {
    let dir = scratch("plt");
    let exe = build_inline(&dir);
    let data = std::fs::read(&exe).expect("read");
    let file = object::File::parse(&*data).expect("parse");
    let mut names = Vec::new();
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    for name in [".plt", ".plt.sec"] {
        use object::ObjectSection;
        let Some(section) = file.section_by_name(name) else {
            continue;
        };
        let (off, size) = section.file_range().expect("in file");
        for entry in (off..off + size).step_by(16) {
            let frames = s.symbolize_user(&spec_for(&exe), FileOffset(entry + 4));
            names.push(frames[0].function.clone());
        }
    }
    // `atoi` may be inlined as a call of `strtol`: only `sleep` is sure to go through the PLT.
    assert!(names.iter().any(|n| n == "sleep@plt"), "{names:?}");
    assert!(
        names.iter().filter(|n| n.ends_with("@plt")).count() >= 2,
        "{names:?}"
    );
    // `_init` has no size and precedes `.plt`; it must end with its section, not swallow the PLT's first stub.
    assert!(!names.iter().any(|n| n == "_init"), "{names:?}");
}

pub fn c_fixture_dwz_supplementary_file() {
    if Command::new("dwz").arg("--version").output().is_err() {
        // Fails instead under STACKTOP_REQUIRE_PERF=1 (.ci/run installs dwz).
        crate::common::skip("dwz is not installed (apt-get install dwz)");
    }
    let dir = scratch("dwz");
    let a = build_inline_with(&dir, "a", &[]);
    let b = build_inline_with(&dir, "b", &["-fno-inline-functions-called-once"]);
    let (a_plain, b_plain) = (dir.join("a-plain"), dir.join("b-plain"));
    std::fs::copy(&a, &a_plain).expect("copy");
    std::fs::copy(&b, &b_plain).expect("copy");
    // Shared DIEs move into common.debug; a and b then refer to it by .gnu_debugaltlink.
    let common = dir.join("common.debug");
    run(Command::new("dwz")
        .arg("-m")
        .arg(&common)
        .arg("-M")
        .arg(&common)
        .arg(&a)
        .arg(&b));
    let data = std::fs::read(&a).expect("read");
    let file = object::File::parse(&*data).expect("parse");
    assert!(
        file.gnu_debugaltlink().ok().flatten().is_some(),
        "dwz left no altlink"
    );
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    check_inline_frames(&mut s, &a, &a_plain);
    check_inline_frames(&mut s, &b, &b_plain);
    // Without the supplementary file: no panic, and the symbol table still names the function.
    std::fs::remove_file(&common).expect("rm");
    let (start, _) = function_symbol(&a_plain, "hash_words");
    let frames = Symbolizer::new()
        .with_debug_dirs(vec![])
        .symbolize_user(&spec_for(&a), FileOffset(start));
    assert_eq!(
        frames.last().map(|f| f.function.as_str()),
        Some("hash_words")
    );
}

pub fn c_fixture_compressed_debug_sections() {
    let dir = scratch("compressed");
    let exe = build_inline(&dir);
    for kind in ["zlib", "zstd"] {
        let out = dir.join(format!("inline-{kind}"));
        run(Command::new("objcopy")
            .arg(format!("--compress-debug-sections={kind}"))
            .arg(&exe)
            .arg(&out));
        check_inline_frames(&mut Symbolizer::new().with_debug_dirs(vec![]), &out, &exe);
    }
}

pub fn c_fixture_stripped_is_named_by_fde_start() {
    let dir = scratch("stripped");
    // A PIE, where file offsets equal SVMAs, and a non-PIE executable, where they do not.
    for (name, extra) in [("inline", &[][..]), ("inline-nopie", &["-no-pie"][..])] {
        let exe = build_inline_with(&dir, name, extra);
        let stripped = dir.join(format!("{name}-stripped"));
        run(Command::new("strip").arg("-o").arg(&stripped).arg(&exe));
        let (start, size) = function_symbol(&exe, "hash_words");
        let mut s = Symbolizer::new().with_debug_dirs(vec![]);
        let spec = spec_for(&stripped);
        // Every address of the function, its first and last byte included, is the function at its start.
        let named = format!("[unknown] {name}-stripped+{start:#x} (fde)");
        for offset in [start, start + 4, start + size - 1] {
            let frames = s.symbolize_user(&spec, FileOffset(offset));
            assert_eq!(
                &*frames,
                &[Frame {
                    function: named.clone(),
                    file: None,
                    line: 0
                }],
                "{name}+{offset:#x}"
            );
            assert!(frames[0].is_unknown());
        }
        // Past its end is the next function's code (or padding, which no FDE covers): not this name.
        let after = s.symbolize_user(&spec, FileOffset(start + size));
        assert_ne!(after[0].function, named);
        // No FDE covers the ELF header: that address keeps a name of its own.
        assert_eq!(
            s.symbolize_user(&spec, FileOffset(0x10))[0].function,
            format!("[unknown] {name}-stripped+0x10")
        );
        // Annotate finds the function's code by that name and by an address in it.
        let segments = s.segments(&spec);
        let svma = stacktop::symbolize::offset_to_svma(&segments, FileOffset(start + 4)).unwrap();
        let function = s.function_at(&spec, svma).expect("function by its FDE");
        assert_eq!(
            (function.name.as_str(), function.size),
            (named.as_str(), size)
        );
        assert_eq!(s.functions_named(&spec, &named), vec![function]);
        assert!(matches!(
            s.module_status(&spec),
            ModuleStatus::Loaded {
                debug_info: DebugInfo::None,
                ..
            }
        ));
    }
}

/// `exe`'s debug file (`objcopy --only-keep-debug`) under a debug root in `dir`, by build-id: the root, the
/// debug file's path and the build-id.
fn debug_root_for(exe: &Path, dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let id = read_build_id(&std::fs::read(exe).expect("read")).expect("cc links with --build-id");
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let root = dir.join("debug-root");
    let by_id = root
        .join(".build-id")
        .join(&hex[..2])
        .join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(by_id.parent().expect("parent")).expect("mkdir");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(exe)
        .arg(&by_id));
    (root, by_id, id)
}

/// `exe` with every symbol and debug section stripped, at `out`.
fn stripped_copy(exe: &Path, out: &Path) -> PathBuf {
    run(Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(out)
        .arg(exe));
    out.to_path_buf()
}

pub fn c_fixture_separate_debug_file_by_build_id_and_debuglink() {
    let dir = scratch("split");
    let exe = build_inline(&dir);
    let debug = dir.join("inline.debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&exe)
        .arg(&debug));

    // By build-id under a debug root.
    let (root, by_id, id) = debug_root_for(&exe, &dir);
    let stripped = stripped_copy(&exe, &dir.join("inline-nodebug"));
    let mut s = Symbolizer::new().with_debug_dirs(vec![root.clone()]);
    check_inline_frames(&mut s, &stripped, &exe);
    match s.module_status(&spec_for(&stripped)) {
        ModuleStatus::Loaded {
            debug_info: DebugInfo::Separate(p),
            build_id,
            ..
        } => {
            assert_eq!(p, by_id);
            assert_eq!(build_id, Some(id.clone()));
        }
        other => panic!("{other:?}"),
    }

    // By .gnu_debuglink in the binary's directory (no debug root given).
    let linked = dir.join("inline-linked");
    run(Command::new("objcopy")
        .arg("--strip-all")
        .arg(format!("--add-gnu-debuglink={}", debug.display()))
        .arg(&exe)
        .arg(&linked));
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    check_inline_frames(&mut s, &linked, &exe);
    match s.module_status(&spec_for(&linked)) {
        ModuleStatus::Loaded {
            debug_info: DebugInfo::Separate(p),
            ..
        } => assert_eq!(p, debug),
        other => panic!("{other:?}"),
    }

    // A debug file of another build is not used: the same source built again with another build-id.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    run(Command::new("cc")
        .args(["-O2", "-g", "-Wl,--build-id=0x0123456789abcdef", "-o"])
        .arg(other.join("inline"))
        .arg(assets().join("inline.c")));
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(other.join("inline"))
        .arg(other.join("inline.debug")));
    std::fs::copy(other.join("inline.debug"), &debug).expect("overwrite debug file");
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    let (start, _) = function_symbol(&exe, "hash_words");
    let frames = s.symbolize_user(&spec_for(&linked), FileOffset(start));
    assert!(frames[0].is_unknown(), "{}", show(&frames));
    assert!(matches!(
        s.module_status(&spec_for(&linked)),
        ModuleStatus::Loaded {
            debug_info: DebugInfo::None,
            ..
        }
    ));
}

pub fn c_fixture_build_id_mismatch_is_not_used() {
    let dir = scratch("mismatch");
    let exe = build_inline(&dir);
    let (start, _) = function_symbol(&exe, "hash_words");
    let spec = ModuleSpec {
        build_id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        ..spec_for(&exe)
    };
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    let frames = s.symbolize_user(&spec, FileOffset(start));
    assert_eq!(
        frames[0].function,
        format!("[unknown] inline+{start:#x} (build-id mismatch)")
    );
    assert!(frames[0].is_unknown());
    match s.module_status(&spec) {
        ModuleStatus::BuildIdMismatch {
            opened,
            expected,
            found,
        } => {
            assert_eq!(opened, exe);
            assert_eq!(expected, vec![0xde, 0xad, 0xbe, 0xef]);
            assert_eq!(
                Some(found),
                read_build_id(&std::fs::read(&exe).expect("read"))
            );
        }
        other => panic!("{other:?}"),
    }
    // The right build-id is accepted.
    let id = read_build_id(&std::fs::read(&exe).expect("read"));
    let spec = ModuleSpec {
        build_id: id,
        ..spec_for(&exe)
    };
    assert_eq!(
        Symbolizer::new().symbolize_user(&spec, FileOffset(start))[0].function,
        "hash_words"
    );
}

pub fn cpp_fixture_demangles() {
    let dir = scratch("cpp");
    let exe = dir.join("demangle");
    run(Command::new("c++")
        .args(["-O2", "-g", "-o"])
        .arg(&exe)
        .arg(assets().join("demangle.cpp")));
    let (start, _) = function_symbol(&exe, "_ZNK6shapes3Box4areaEi");
    let stripped = dir.join("demangle-symtab-only");
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&exe));
    for path in [&exe, &stripped] {
        let frames = Symbolizer::new()
            .with_debug_dirs(vec![])
            .symbolize_user(&spec_for(path), FileOffset(start));
        eprintln!("{} -> {}", path.display(), show(&frames));
        assert_eq!(
            frames.last().map(|f| f.function.as_str()),
            Some("shapes::Box::area(int) const")
        );
    }
}

pub fn jit_perf_map() {
    let dir = scratch("jit");
    let pid = 9_000_000; // above the largest pid_max (2^22): no real process owns this map
    let map = dir.join(format!("perf-{pid}.map"));
    std::fs::write(&map, "7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n").expect("write map");
    let mut s = Symbolizer::new().with_perf_map_dir(dir.to_path_buf());
    let frames = s.symbolize_jit(pid, Avma(0x7f0000001010)).expect("listed");
    assert_eq!(frames[0].function, "LazyCompile:*fib /app/fib.js:3");
    assert!(s.symbolize_jit(pid, Avma(0x7f0000002010)).is_none());
    // The JIT appends as it compiles: a miss rereads the grown file.
    std::fs::write(
        &map,
        "7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n7f0000002000 20 _ZN3jit4stubEv\n",
    )
    .expect("append");
    assert_eq!(
        s.symbolize_jit(pid, Avma(0x7f0000002010)).expect("listed")[0].function,
        "jit::stub()"
    );
    assert!(
        s.symbolize_jit(pid + 1, Avma(0x7f0000001010)).is_none(),
        "no map file"
    );

    // With a recheck interval (top's), a miss looks at the file again only once the interval has passed.
    std::fs::write(&map, "7f0000001000 40 first\n").expect("rewrite");
    let mut s = Symbolizer::new()
        .with_perf_map_dir(dir.to_path_buf())
        .with_jit_recheck(Duration::from_secs(3600));
    assert!(s.symbolize_jit(pid, Avma(0x7f0000002010)).is_none());
    std::fs::write(&map, "7f0000001000 40 first\n7f0000002000 20 second\n").expect("append");
    assert!(
        s.symbolize_jit(pid, Avma(0x7f0000002010)).is_none(),
        "not rechecked yet"
    );
    assert_eq!(
        s.symbolize_jit(pid, Avma(0x7f0000001010)).expect("listed")[0].function,
        "first"
    );
}

pub fn jit_perf_map_in_the_process_root() {
    // Not in DIR: the map is looked up as the process wrote it, in its root's /tmp under its namespace pid
    // (for this test process: the host's /tmp and its own pid).
    let dir = scratch("jit-root");
    let pid = std::process::id();
    let map = Scratch(PathBuf::from(format!("/tmp/perf-{pid}.map")));
    std::fs::write(&*map, "1000 10 in_root\n").expect("write map");
    let mut s = Symbolizer::new().with_perf_map_dir(dir.to_path_buf());
    let frames = s.symbolize_jit(pid, Avma(0x1008)).expect("listed");
    assert_eq!(frames[0].function, "in_root");
}

pub fn kernel_addresses_from_proc_kallsyms() {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let Some(addr) = text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (a, k, n) = (f.next()?, f.next()?, f.next()?);
        (n == "do_syscall_64" && (k == "T" || k == "t")).then(|| u64::from_str_radix(a, 16).ok())?
    }) else {
        skip("no do_syscall_64 in /proc/kallsyms");
    };
    let mut s = Symbolizer::new();
    let f = &s.symbolize_kernel(Avma(addr + 1))[0];
    if addr == 0 {
        assert!(
            f.function.starts_with("[unknown] [kernel.kallsyms]"),
            "{f:?}"
        );
    } else {
        assert_eq!(f.function, "do_syscall_64");
    }
}

pub fn garbage_elf_dwarf_and_truncated_files_give_frames_not_panics() {
    let dir = scratch("garbage");
    let exe = build_inline(&dir);
    let data = std::fs::read(&exe).expect("read");
    let (start, size) = function_symbol(&exe, "hash_words");
    let ranges: Vec<(u64, u64)> = {
        use object::ObjectSection;
        let file = object::File::parse(&*data).expect("parse");
        file.sections()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(".debug_")))
            .filter_map(|s| s.file_range())
            .collect()
    };
    assert!(!ranges.is_empty());
    let target = dir.join("inline-garbage");
    // xorshift: deterministic "random" corruption, so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Rounds 0..40 corrupt DWARF, 40..80 the headers (ELF, program, section), 80..120 anything.
    for round in 0..120u64 {
        let mut bad = data.clone();
        for _ in 0..(1 + (round % 40) * 4) {
            let (off, len) = match round / 40 {
                0 => ranges[(next() % ranges.len() as u64) as usize],
                1 => (0, 1024),
                _ => (0, data.len() as u64),
            };
            if len > 0 {
                let at = (off + next() % len) as usize;
                bad[at] = next() as u8;
            }
        }
        std::fs::write(&target, &bad).expect("write");
        let mut s = Symbolizer::new().with_debug_dirs(vec![]);
        for off in start..start + size {
            let frames = s.symbolize_user(&spec_for(&target), FileOffset(off));
            assert!(!frames.is_empty());
        }
    }
    for len in [0, 16, 64, 1000, data.len() / 2, data.len() - 1] {
        std::fs::write(&target, &data[..len]).expect("write");
        let frames = Symbolizer::new().symbolize_user(&spec_for(&target), FileOffset(start));
        assert!(!frames.is_empty(), "truncated to {len}");
    }
}

/// Hand-written assembly's untyped labels in code: a local one is a function to perf (ld.so's `_start`, where
/// every program's main thread begins, is one: `LOCAL NOTYPE` in its debug file) and named so; a marker (a
/// local label starting with `.` or `$`) is not, and the function before it reaches past it. Named from the
/// binary and from its separate debug file alike.
pub fn c_fixture_untyped_local_labels_in_code_are_named() {
    let dir = scratch("untyped");
    let src = dir.join("untyped.c");
    std::fs::write(
        &src,
        "__asm__(\".text\\n\"\n\
         \"entry_label:\\n nop\\n nop\\n nop\\n nop\\n ret\\n\"\n\
         \".annobin_marker:\\n nop\\n nop\\n ret\\n\");\n\
         int main(void) { return 0; }\n",
    )
    .expect("write fixture");
    let exe = dir.join("untyped");
    run(Command::new("cc")
        .args(["-O2", "-g", "-o"])
        .arg(&exe)
        .arg(&src));
    let (label, _) = function_symbol(&exe, "entry_label");
    let (marker, _) = function_symbol(&exe, ".annobin_marker");
    let mut s = Symbolizer::new().with_debug_dirs(vec![]);
    for offset in [label, label + 2, marker + 1] {
        let frames = s.symbolize_user(&spec_for(&exe), FileOffset(offset));
        assert_eq!(
            frames[0].function,
            "entry_label",
            "{offset:#x}: {}",
            show(&frames)
        );
    }
    // From a separate debug file (as ld.so's), whose `.text` holds no bytes: found by build-id.
    let (root, _, _) = debug_root_for(&exe, &dir);
    let stripped = stripped_copy(&exe, &dir.join("untyped-stripped"));
    let mut s = Symbolizer::new().with_debug_dirs(vec![root]);
    let frames = s.symbolize_user(&spec_for(&stripped), FileOffset(label + 2));
    assert_eq!(frames[0].function, "entry_label", "{}", show(&frames));
}

crate::tests![
    resolves_its_own_function,
    libc_pthread_mutex_lock_with_libc6_dbg,
    libc_plt_stubs_are_named_including_ifunc_slots,
    vdso_functions_are_named,
    c_fixture_inline_frames,
    c_fixture_non_pie_executable_and_shared_library,
    c_fixture_deleted_binary_of_a_live_process_via_map_files,
    c_fixture_plt_stubs_are_named,
    c_fixture_dwz_supplementary_file,
    c_fixture_compressed_debug_sections,
    c_fixture_stripped_is_named_by_fde_start,
    c_fixture_separate_debug_file_by_build_id_and_debuglink,
    c_fixture_build_id_mismatch_is_not_used,
    cpp_fixture_demangles,
    jit_perf_map,
    jit_perf_map_in_the_process_root,
    kernel_addresses_from_proc_kallsyms,
    garbage_elf_dwarf_and_truncated_files_give_frames_not_panics,
    c_fixture_untyped_local_labels_in_code_are_named,
];
