//! Who calls the hot function, without frame pointers in libc: hybrid (the default) and dwarf modes
//! against fp, on real workloads.

use std::path::Path;

use crate::common::*;

fn callers_shares(file: &Path, sym: &str) -> String {
    stdout_of(stacktop(&["report", "--callers", sym, "-i"]).arg(file))
}

/// The percent-of-SYM column of the first tree line that names `caller` as a direct caller.
fn caller_share(tree: &str, caller: &str) -> f64 {
    tree.lines()
        .find(|l| (l.contains("|-- ") || l.contains("`-- ")) && l.contains(&format!(" {caller} ")))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.strip_suffix('%'))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0)
}

pub fn mutex_callers_75_25_in_default_mode_and_wrong_in_fp() {
    if !perf_available() {
        return;
    }
    let bin = build_c("mutex.c", "mutex", &[]);
    let file = record("mutex_default", &[], &[&bin, Path::new("3")]);
    let tree = callers_shares(&file, "pthread_mutex_lock");
    let often = caller_share(&tree, "lock_often");
    let rarely = caller_share(&tree, "lock_rarely");
    assert!(often + rarely > 90.0, "callers do not add up:\n{tree}");
    assert_near("lock_often", often * 100.0 / (often + rarely), 75.0, 7.0);
    // Samples in the kernel's futex path keep pthread_mutex_lock with its caller above it.
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(&file));
    let futex_with_caller = folded
        .lines()
        .filter(|l| l.contains("futex") && l.contains("_[k]"))
        .filter(|l| {
            l.contains("lock_often;pthread_mutex_lock;")
                || l.contains("lock_rarely;pthread_mutex_lock;")
        })
        .count();
    assert!(
        futex_with_caller > 0,
        "no futex stack with pthread_mutex_lock under its caller:\n{folded}"
    );
    // The names perf prints for it (the exported non-default version; libc6-dbg's local aliases) find it too.
    let mut aliases = vec!["__pthread_mutex_lock"];
    if Path::new("/usr/share/doc/libc6-dbg").exists() {
        aliases.extend(["___pthread_mutex_lock", "__GI___pthread_mutex_lock"]);
    } else if require_env() {
        panic!("required but missing (STACKTOP_REQUIRE_PERF=1): libc6-dbg");
    }
    for alias in aliases {
        let out = stacktop(&["report", "--callers", alias, "-i"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            tree,
            "--callers {alias}"
        );
        assert!(
            stderr.contains(&format!("{alias} is named pthread_mutex_lock here")),
            "{stderr}"
        );
    }
    let annotated = stdout_of(stacktop(&["annotate", "__pthread_mutex_lock", "-i"]).arg(&file));
    assert!(annotated.contains("pthread_mutex_lock"), "{annotated}");
    // The tables walk libc's frameless code: no warning about it.
    let report = stdout_of(stacktop(&["report", "-g", "none", "-i"]).arg(&file));
    assert!(!report.contains("without frame pointers"), "{report}");

    // Frame pointers skip the caller of the frameless pthread_mutex_lock.
    let file = record("mutex_fp", &["--call-graph", "fp"], &[&bin, Path::new("2")]);
    let tree = callers_shares(&file, "pthread_mutex_lock");
    let fp_callers = caller_share(&tree, "lock_often") + caller_share(&tree, "lock_rarely");
    assert!(
        fp_callers < 20.0,
        "fp mode unexpectedly found the callers ({fp_callers:.1}%):\n{tree}"
    );
    // The header says why, and names libc: its samples, and those in the kernel, which come from libc's
    // futex calls (`__lll_lock_wait`, `__lll_lock_wake`), have a frameless libc function innermost.
    let report = stdout_of(
        stacktop(&[
            "report",
            "--no-children",
            "--sort",
            "dso",
            "-g",
            "none",
            "-i",
        ])
        .arg(&file),
    );
    let rows = self_shares(&report);
    let expected = share_of(&rows, "libc.so.6") + share_of(&rows, "[kernel.kallsyms]");
    let (count, percent) = frameless_charged(&report, "libc.so.6")
        .unwrap_or_else(|| panic!("libc.so.6 is not named:\n{report}"));
    assert_near("samples charged to libc.so.6", percent, expected, 3.0);
    assert!(count >= 500, "{count} samples charged to libc.so.6");
}

fn hottest_stack(file: &Path) -> String {
    let folded = stdout_of(stacktop(&["report", "--folded", "-i"]).arg(file));
    folded
        .lines()
        .max_by_key(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|c| c.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .unwrap_or_default()
        .to_owned()
}

pub fn deep_recursion_reaches_main_in_default_and_dwarf_modes() {
    if !perf_available() {
        return;
    }
    let bin = build_c("recursion.c", "recursion", &[]);
    for mode in [None, Some("dwarf,16384")] {
        let extra: Vec<&str> = mode.map(|m| vec!["--call-graph", m]).unwrap_or_default();
        let file = record("recursion", &extra, &[&bin, Path::new("1")]);
        let hottest = hottest_stack(&file);
        assert!(
            hottest.starts_with("__libc_start_call_main;main;descend;")
                || hottest.contains(";main;descend;"),
            "{mode:?}: hottest stack does not reach main: {}",
            &hottest[..hottest.len().min(300)]
        );
        assert!(
            hottest.matches("descend").count() >= 200,
            "{mode:?}: fewer than 200 descend frames"
        );
    }
    // In fp mode the kernel cuts the chain at its frame limit, and the report says so.
    let file = record(
        "recursion_fp",
        &["--call-graph", "fp"],
        &[&bin, Path::new("1")],
    );
    let hottest = hottest_stack(&file);
    assert!(
        hottest.starts_with("[truncated];"),
        "fp stack not marked cut: {}",
        &hottest[..hottest.len().min(200)]
    );
    let report = stdout_of(stacktop(&["report", "-i"]).arg(&file));
    let header: String = report
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        header.contains("cut") || header.contains("truncated"),
        "header does not say stacks were cut:\n{header}"
    );
}

/// Records a fixture with registers and stack copies, then unwinds every sample both ways: where the dwarf
/// walk reaches the root inside the copy, hybrid must give the same frames; neither may panic elsewhere.
fn hybrid_and_dwarf_agree_on(binary: &Path, depth: &str) -> (usize, usize) {
    use stacktop::acquire::record::Record;
    use stacktop::acquire::{
        CallGraphMode, CommandOutput, EventKind, EventSpec, Session, SessionConfig, Target,
    };
    use stacktop::pipeline::unwind_tables;
    use stacktop::process::{Mapping, Module, Processes};
    use stacktop::symbolize::ModuleSpec;
    use stacktop::unwind::fp;
    use stacktop::unwind::modules::{Mode, Unwinders};

    let config = SessionConfig {
        target: Target::Command(vec![binary.into(), "1".into(), depth.into()]),
        event: EventSpec {
            kind: EventKind::CpuClock,
            exclude_user: false,
            exclude_kernel: false,
        },
        frequency: 499,
        call_graph: CallGraphMode::Hybrid(32768),
        command_output: CommandOutput::Null,
        off_cpu: false,
        locks: None,
    };
    let mut session = Session::start(config).unwrap();
    let mut records = Vec::new();
    while !session.is_finished() {
        session
            .read(std::time::Duration::from_millis(50), &mut records)
            .unwrap();
    }
    session.finish(&mut records).unwrap();
    let mut processes = Processes::new();
    let limits = fp::Limits::default();
    let mut hybrid = Unwinders::new(Mode::Hybrid, limits);
    let mut dwarf = Unwinders::new(Mode::Dwarf, limits);
    let mut loader = |module: &Module, mapping: &Mapping| {
        unwind_tables(&ModuleSpec {
            path: module.path.clone(),
            build_id: module.build_id.clone(),
            pid: None,
            map_start: mapping.start.0,
            map_end: mapping.end.0,
        })
    };
    let (mut compared, mut complete) = (0, 0);
    for record in &records {
        let Record::Sample(sample) = record else {
            processes.apply(record);
            continue;
        };
        if sample.pid != session.child_pid().unwrap_or(0) {
            continue;
        }
        let h = hybrid.unwind(sample, &processes, &mut loader);
        let d = dwarf.unwind(sample, &processes, &mut loader);
        compared += 1;
        if !d.truncated {
            complete += 1;
            assert_eq!(
                h.frames, d.frames,
                "hybrid and dwarf disagree on a complete walk"
            );
        }
    }
    (compared, complete)
}

pub fn hybrid_and_dwarf_agree_with_and_without_frame_pointers() {
    if !perf_available() {
        return;
    }
    let with_fp = build_c("recursion.c", "recursion", &[]);
    let without_fp = build_c("recursion.c", "recursion_nofp", &["-fomit-frame-pointer"]);
    for bin in [&with_fp, &without_fp] {
        let (compared, complete) = hybrid_and_dwarf_agree_on(bin, "40");
        assert!(compared >= 50, "{}: only {compared} samples", bin.display());
        assert!(
            complete * 10 >= compared * 9,
            "{}: only {complete} of {compared} dwarf walks completed",
            bin.display()
        );
    }
}

/// The inputs that crashed the `unwind_tables` fuzz target (`fuzz/crashes/unwind_tables/`, described in the
/// README there), replayed as that target runs them: the tables of a crafted ELF placed in a process and a
/// copied stack walked with them, and what their CFI says of the frames there asked. Each once panicked on an
/// integer overflow (this suite builds with overflow checks on), in stacktop's bias search, in framehop's lookup
/// and in gimli's `.eh_frame_hdr` table.
pub fn fuzz_crashes_of_the_unwind_tables_replay_cleanly() {
    use std::sync::Arc;

    use framehop::Unwinder as _;
    use stacktop::addr::{FileOffset, Svma};
    use stacktop::unwind::dwarf::{self, Cache, Regs, StackCopy, Unwinder};
    use stacktop::unwind::tables::UnwindTables;

    let word =
        |data: &[u8], i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/crashes/unwind_tables");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        // The target's input: six words (mapping start, length, file offset, ip, sp, bp), 512 bytes of
        // stack, then the ELF file.
        let (header, rest) = data.split_at(48);
        let (stack, elf) = rest.split_at(512);
        let start = word(header, 0) & !0xfff;
        let end = start.saturating_add((word(header, 1) & 0xffff_ffff).max(1));
        let pgoff = word(header, 2) & !0xfff;
        let regs = Regs {
            ip: word(header, 3),
            sp: word(header, 4),
            bp: word(header, 5),
        };
        replayed += 1;
        let Ok(tables) = UnwindTables::parse(Arc::from(elf)) else {
            continue;
        };
        let _ = tables.bias(start, pgoff);
        let mut unwinder = Unwinder::new();
        if let Some(module) = tables.module("/fuzz/libfuzz.so", start, end, pgoff) {
            unwinder.add_module(module);
        }
        let copy = StackCopy {
            sp: regs.sp,
            bytes: stack,
        };
        let walk = dwarf::walk(&unwinder, &mut Cache::new(), regs, copy, 1024);
        assert!(walk.frames.len() <= 1024);
        // fp mode's check of a chain (`unwind::fpcheck`): the CFI asked about each address.
        let index = tables.fde_index();
        for address in [regs.ip, regs.sp, regs.bp] {
            let svma = tables
                .offset_to_svma(FileOffset(address))
                .unwrap_or(Svma(address));
            let _ = tables.frame_kind(&index, svma);
        }
    }
    assert!(
        replayed >= 3,
        "the crash inputs are missing from {}",
        dir.display()
    );
}

crate::tests![
    mutex_callers_75_25_in_default_mode_and_wrong_in_fp,
    deep_recursion_reaches_main_in_default_and_dwarf_modes,
    hybrid_and_dwarf_agree_with_and_without_frame_pointers,
    fuzz_crashes_of_the_unwind_tables_replay_cleanly,
];
