#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::profile::query::edit_distance;
use crate::profile::{Function, Line, Location, Mapping, Meta, Profile};

const BASE: u64 = 0x5555_0000_0000;

/// A module whose file offsets equal its SVMAs, holding `hot` at 0x1000 (the loop of assets/split.c's hot_a,
/// bytes from objdump) and `other` at 0x1020.
struct FakeCode {
    debug: bool,
}

const HOT: [u8; 17] = [
    0x48, 0x0f, 0xaf, 0xc1, // 0x1000 imul %rcx,%rax
    0x48, 0x83, 0xc2, 0x01, // 0x1004 add $0x1,%rdx
    0x48, 0x39, 0xfa, // 0x1008 cmp %rdi,%rdx
    0x75, 0xf3, // 0x100b jne 0x1000
    0xe8, 0x10, 0x00, 0x00, // 0x100d call (truncated on purpose: 4 of 5 bytes)
];

impl CodeSource for FakeCode {
    fn open(&mut self, module: &ModuleSpec) -> Result<ModuleInfo, CodeError> {
        if module.path == "/gone" {
            return Err(CodeError::Missing {
                path: module.path.clone(),
                reason: "No such file or directory".to_owned(),
            });
        }
        Ok(ModuleInfo {
            opened: module.path.clone(),
            debug_info: if self.debug {
                DebugInfo::Embedded
            } else {
                DebugInfo::None
            },
            segments: vec![Segment {
                offset: 0,
                size: 0x10000,
                vaddr: 0,
            }],
        })
    }
    fn function_at(&mut self, _: &ModuleSpec, svma: Svma) -> Option<FunctionSymbol> {
        (0x1000..0x1011).contains(&svma.0).then(|| FunctionSymbol {
            name: "hot".to_owned(),
            start: Svma(0x1000),
            size: HOT.len() as u64,
        })
    }
    fn functions_named(&mut self, m: &ModuleSpec, name: &str) -> Vec<FunctionSymbol> {
        self.function_at(m, Svma(0x1000))
            .filter(|f| f.name == name)
            .into_iter()
            .collect()
    }
    fn bytes(&mut self, _: &ModuleSpec, start: Svma, len: u64) -> Option<Vec<u8>> {
        (start.0 == 0x1000 && len == HOT.len() as u64).then(|| HOT.to_vec())
    }
    fn frames(&mut self, _: &ModuleSpec, svma: Svma) -> Vec<Frame> {
        let frame = |function: &str, file: &str, line| Frame {
            function: function.to_owned(),
            file: Some(file.to_owned()),
            line,
        };
        match svma.0 {
            // The multiply is code inlined from `mix` (mix.h:3) into hot at hot.c:10.
            0x1000 => vec![
                frame("mix", "/src/mix.h", 3),
                frame("hot", "/src/hot.c", 10),
            ],
            0x1004..=0x100c => vec![frame("hot", "/src/hot.c", 11)],
            _ => vec![frame("hot", "/src/hot.c", 12)],
        }
    }
    fn source(&mut self, path: &str) -> Option<Arc<[String]>> {
        (path == "/src/hot.c").then(|| {
            (1..=20)
                .map(|i| format!("hot.c line {i}"))
                .collect::<Vec<_>>()
                .into()
        })
    }
}

struct Builder {
    p: Profile,
    mapping: crate::profile::MappingId,
}

impl Builder {
    fn new(path: &str) -> Builder {
        let mut p = Profile::new(Meta {
            event: "cpu-clock".to_owned(),
            ..Meta::default()
        });
        let path = p.intern(path);
        let mapping = p.add_mapping(Mapping {
            path,
            build_id: None,
            start: BASE,
            limit: BASE + 0x10000,
            offset: 0,
            kernel: false,
        });
        Builder { p, mapping }
    }

    /// A location at SVMA `svma` with frames `names` (innermost first).
    fn loc(&mut self, svma: u64, names: &[&str]) -> LocationId {
        let lines = names
            .iter()
            .map(|n| {
                let name = self.p.intern(n);
                Line {
                    function: self.p.add_function(Function { name, file: None }),
                    line: 1,
                }
            })
            .collect();
        self.p.add_location(Location {
            mapping: Some(self.mapping),
            address: BASE + svma,
            lines,
        })
    }

    fn sample(&mut self, stack: &[LocationId], count: u64) {
        let comm = self.p.intern("app");
        self.p.add_sample(stack, 1, 1, comm, count, count * 1000);
    }
}

fn fixture(path: &str) -> Profile {
    let mut b = Builder::new(path);
    let main = b.loc(0x2000, &["main"]);
    let imul = b.loc(0x1000, &["mix", "hot"]);
    let add = b.loc(0x1004, &["hot"]);
    let cmp = b.loc(0x1008, &["hot"]);
    // A caller frame inside hot's call (ra - 1): not a self sample of hot.
    let call = b.loc(0x1010, &["hot"]);
    let leaf = b.loc(0x3000, &["leaf"]);
    b.sample(&[imul, main], 2);
    b.sample(&[add, main], 6);
    b.sample(&[cmp, main], 2);
    b.sample(&[leaf, call, main], 10);
    b.p
}

fn share_sum(a: &Annotation, kind: LineKind) -> f64 {
    a.lines
        .iter()
        .filter(|l| l.kind == kind)
        .map(|l| l.share)
        .sum()
}

#[test]
fn self_samples_land_on_their_instructions_and_lines() {
    let p = fixture("/bin/app");
    let a = annotate(
        &p,
        &Matcher::exact("hot"),
        &Filter::default(),
        &mut FakeCode { debug: true },
    )
    .unwrap();
    assert_eq!(a.samples.count, 10);
    assert_eq!(a.total.count, 20);
    assert_eq!(a.outside, Weight::default());
    let shares: Vec<(u64, f64)> = a
        .instructions
        .iter()
        .map(|i| (i.address.0, i.share))
        .collect();
    assert_eq!(
        shares,
        [
            (0x1000, 20.0),
            (0x1004, 60.0),
            (0x1008, 20.0),
            (0x100b, 0.0),
            // The truncated call: undecodable, then decoding resumes byte by byte (`adc %al,(%rax)`, bad).
            (0x100d, 0.0),
            (0x100e, 0.0),
            (0x1010, 0.0)
        ]
    );
    assert!((share_sum(&a, LineKind::Asm) - 100.0).abs() < 1e-9);
    assert!((share_sum(&a, LineKind::Source) - 100.0).abs() < 1e-9);
    // Rows: mix.h:3 (inlined), imul, hot.c:11, add, cmp, jne, hot.c:12, the call's 4 bytes (3 rows).
    let kinds: Vec<(LineKind, f64)> = a.lines.iter().map(|l| (l.kind, l.share)).collect();
    use LineKind::{Asm, Source};
    assert_eq!(
        kinds,
        [
            (Source, 20.0),
            (Asm, 20.0),
            (Source, 80.0),
            (Asm, 60.0),
            (Asm, 20.0),
            (Asm, 0.0),
            (Source, 0.0),
            (Asm, 0.0),
            (Asm, 0.0),
            (Asm, 0.0)
        ]
    );
    assert_eq!(a.lines[0].inlined_from.as_deref(), Some("mix"));
    assert_eq!(a.lines[0].text, "", "mix.h is unreadable: file:line only");
    assert_eq!(a.lines[2].text, "hot.c line 11");
    assert_eq!(a.lines[2].inlined_from, None);
    assert_eq!(a.hottest, Some(3));
    assert_eq!(a.hottest_source, Some(2));
    assert_eq!(a.hot_lines, [0, 1, 2, 3, 4]);
    assert_eq!(a.next_hot(4), Some(0));
    assert_eq!(a.next_hot(1), Some(2));
    assert_eq!(a.prev_hot(0), Some(4));
    assert_eq!(a.sources[0].line, 11);
    assert_eq!(a.sources[0].share, 80.0);
    assert_eq!(a.lines[5].text, "jne    0x1000 <hot>");
    assert_eq!(a.lines[7].text, "(bad)");
}

#[test]
fn without_debug_info_disassembly_only() {
    let p = fixture("/bin/app");
    let a = annotate(
        &p,
        &Matcher::exact("hot"),
        &Filter::default(),
        &mut FakeCode { debug: false },
    )
    .unwrap();
    assert!(a.lines.iter().all(|l| l.kind == LineKind::Asm));
    assert!(a.sources.is_empty());
    assert!(a.notes.iter().any(|n| n.contains("disassembly only")));
    assert!((share_sum(&a, LineKind::Asm) - 100.0).abs() < 1e-9);
}

#[test]
fn a_caller_without_self_samples_shows_its_code() {
    // Only caller frames of hot: its code with zero shares and a note, no hottest row.
    let mut b = Builder::new("/bin/app");
    let call = b.loc(0x1010, &["hot"]);
    let leaf = b.loc(0x3000, &["leaf"]);
    b.sample(&[leaf, call], 3);
    let a = annotate(
        &b.p,
        &Matcher::exact("hot"),
        &Filter::default(),
        &mut FakeCode { debug: false },
    )
    .unwrap();
    assert_eq!(a.samples.count, 0);
    assert_eq!(a.hottest, None);
    assert!(a.hot_lines.is_empty());
    assert_eq!(a.next_hot(0), None);
    assert!(a.notes.iter().any(|n| n.contains("no self samples")));
}

#[test]
fn errors_say_what_to_do() {
    let p = fixture("/bin/app");
    let mut code = FakeCode { debug: true };
    let err = annotate(&p, &Matcher::exact("hto"), &Filter::default(), &mut code).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no function hto in the profile (close matches: hot)"
    );
    let err = annotate(&p, &Matcher::exact("mix"), &Filter::default(), &mut code).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mix has no code of its own: it was inlined into hot; annotate one of those"
    );
    let gone = fixture("/gone");
    let err = annotate(&gone, &Matcher::exact("hot"), &Filter::default(), &mut code).unwrap_err();
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err)),
        "cannot annotate hot: cannot read /gone: No such file or directory"
    );
}

#[test]
fn kernel_functions_are_refused() {
    let mut p = Profile::new(Meta::default());
    let path = p.intern("[kernel.kallsyms]");
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: 0,
        limit: 0,
        offset: 0,
        kernel: true,
    });
    let name = p.intern("do_syscall_64");
    let function = p.add_function(Function { name, file: None });
    let loc = p.add_location(Location {
        mapping: Some(mapping),
        address: 0xffffffff81000000,
        lines: vec![Line { function, line: 0 }],
    });
    let comm = p.intern("app");
    p.add_sample(&[loc], 1, 1, comm, 1, 1);
    let err = annotate(
        &p,
        &Matcher::exact("do_syscall_64"),
        &Filter::default(),
        &mut FakeCode { debug: true },
    )
    .unwrap_err();
    assert!(matches!(err, AnnotateError::Kernel { .. }), "{err}");
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("hot_a", "hot_a"), 0);
    assert_eq!(edit_distance("hot_a", "hota"), 1);
    assert_eq!(edit_distance("warm_b", "wram_b"), 2);
    assert_eq!(hex_bytes("0aff"), Some(vec![0x0a, 0xff]));
    assert_eq!(hex_bytes("0af"), None);
}

// ---------------------------------------------------------------------------------------------------------
// A real binary: assets/split.c compiled here, read through ElfCode.

fn compile_split(dir: &str, extra: &[&str]) -> Option<PathBuf> {
    let out_dir =
        std::env::temp_dir().join(format!("stacktop-annotate-{}-{dir}", std::process::id()));
    std::fs::create_dir_all(&out_dir).ok()?;
    let exe = out_dir.join("split");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/split.c");
    // As written at the top of assets/split.c.
    let status = Command::new("cc")
        .args(["-O2", "-g", "-fno-omit-frame-pointer"])
        .args(extra)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => Some(exe),
        _ => {
            eprintln!("skipped: cc could not build assets/split.c");
            None
        }
    }
}

/// hot_a's symbol (address, size) and its instructions' addresses, from the ELF.
fn hot_a_range(exe: &std::path::Path) -> (u64, u64) {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sym = file.symbols().find(|s| s.name() == Ok("hot_a")).unwrap();
    (sym.address(), sym.size())
}

/// A profile of `exe` mapped whole at BASE (file offset = SVMA for cc's PIE output), with `samples` leaf
/// samples at each SVMA.
fn profile_of(exe: &std::path::Path, samples: &[(u64, u64)]) -> Profile {
    let mut b = Builder::new(exe.to_str().unwrap());
    let main = b.loc(0x1100, &["main"]);
    for &(svma, n) in samples {
        let loc = b.loc(svma, &["hot_a"]);
        b.sample(&[loc, main], n);
    }
    b.p
}

#[test]
fn compiled_split_hot_a_loop_is_hot() {
    let Some(exe) = compile_split("debug", &[]) else {
        return;
    };
    let (start, _) = hot_a_range(&exe);
    // Find the loop's multiply first, to place the samples where perf finds them: on the instruction after
    // it (the sample skids past the long-latency imul), and a few on the loop's compare.
    let probe = profile_of(&exe, &[(start, 1)]);
    let mut code = ElfCode::new();
    let a = annotate(
        &probe,
        &Matcher::exact("hot_a"),
        &Filter::default(),
        &mut code,
    )
    .unwrap();
    let imul = a
        .instructions
        .iter()
        .position(|i| i.text.starts_with("imul") && i.text.contains("%rax"))
        .unwrap();
    let after = a.instructions[imul + 1].address.0;
    let cmp = a.instructions[imul..]
        .iter()
        .find(|i| i.text.starts_with("cmp"))
        .unwrap()
        .address
        .0;

    let p = profile_of(&exe, &[(after, 9), (cmp, 1)]);
    let a = annotate(&p, &Matcher::exact("hot_a"), &Filter::default(), &mut code).unwrap();
    assert_eq!(a.function, "hot_a");
    assert_eq!(a.start.0, start);
    assert_eq!(a.debug_info, DebugInfo::Embedded);
    let hottest = &a.lines[a.hottest.unwrap()];
    assert_eq!(hottest.address, Some(Svma(after)));
    assert_eq!(hottest.share, 90.0);
    assert!((share_sum(&a, LineKind::Asm) - 100.0).abs() < 1e-9);
    assert!((share_sum(&a, LineKind::Source) - 100.0).abs() < 1e-9);
    // BURN_BODY is a macro: all of hot_a's code is on split.c's line 6, whose text is read from the file.
    let src = &a.lines[a.hottest_source.unwrap()];
    assert!(src.file.as_deref().unwrap().ends_with("assets/split.c"));
    assert_eq!(src.line, 6);
    assert!(
        src.text.contains("void hot_a(unsigned long units)"),
        "{}",
        src.text
    );
    assert_eq!(a.sources[0].share, 100.0);
    // The last instruction is hot_a's return.
    assert_eq!(a.instructions.last().unwrap().text, "ret");
}

#[test]
fn compiled_split_without_debug_info_is_disassembly_only() {
    let Some(exe) = compile_split("nodebug", &["-g0"]) else {
        return;
    };
    let (start, size) = hot_a_range(&exe);
    let p = profile_of(&exe, &[(start, 1)]);
    let mut code =
        ElfCode::with_symbolizer(crate::symbolize::Symbolizer::new().with_debug_dirs(vec![]));
    let a = annotate(&p, &Matcher::exact("hot_a"), &Filter::default(), &mut code).unwrap();
    assert_eq!(a.debug_info, DebugInfo::None);
    assert!(a.lines.iter().all(|l| l.kind == LineKind::Asm));
    let covered: u64 = a.instructions.iter().map(|i| i.bytes.len() as u64).sum();
    assert_eq!(covered, size);
    assert_eq!(a.instructions[0].share, 100.0);
}

#[test]
fn same_name_in_two_modules_hottest_or_as_filtered() {
    let mut p = fixture("/bin/app");
    let path = p.intern("/lib/other.so");
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: 0x7f00_0000_0000,
        limit: 0x7f00_0001_0000,
        offset: 0,
        kernel: false,
    });
    let name = p.intern("hot");
    let function = p.add_function(Function { name, file: None });
    let loc = p.add_location(Location {
        mapping: Some(mapping),
        address: 0x7f00_0000_1004,
        lines: vec![Line { function, line: 1 }],
    });
    let comm = p.intern("app");
    p.add_sample(&[loc], 1, 1, comm, 1, 1000);
    let mut code = FakeCode { debug: false };
    let a = annotate(&p, &Matcher::exact("hot"), &Filter::default(), &mut code).unwrap();
    assert_eq!(a.module, "/bin/app");
    assert!(
        a.notes
            .iter()
            .any(|n| n == "hot in /lib/other.so also has samples; only /bin/app is shown"),
        "{:?}",
        a.notes
    );
    let only_other = Filter {
        modules: vec!["other.so".to_owned()],
        ..Filter::default()
    };
    let a = annotate(&p, &Matcher::exact("hot"), &only_other, &mut code).unwrap();
    assert_eq!(a.module, "/lib/other.so");
    assert_eq!(a.samples.count, 1);
    assert_eq!(a.instructions[1].share, 100.0);
}
