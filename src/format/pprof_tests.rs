use super::*;
use crate::profile::{
    Function, Line, Location, Mapping, Meta, ModuleUnwind, OffCpuStats, ShortCopies, StrId, Values,
    Weigh,
};

fn sample_profile() -> Profile {
    let mut p = Profile::new(Meta {
        event: "cpu-clock".into(),
        period_unit: "nanoseconds".into(),
        frequency: 999,
        call_graph: "dwarf,8192".into(),
        lost: 3,
        throttled: 1,
        command_line: "stacktop record -o x.pb.gz -- ./app --flag 'a b'".into(),
        notes: vec![
            "cycles unavailable, fell back to cpu-clock".into(),
            "key: like note".into(),
        ],
        time_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 2_000_000_000,
        truncated: 3,
        fell_back: 1,
        frameless: 5,
        unwind_modules: vec![
            ModuleUnwind {
                path: "/usr/lib/libfoo.so".into(),
                frame_pointers: false,
                tables: true,
                fell_back: 1,
                broken: 2,
                frameless: 0,
            },
            ModuleUnwind {
                path: "/opt/frameless=9 lib.so".into(),
                frame_pointers: false,
                tables: true,
                fell_back: 0,
                broken: 0,
                frameless: 5,
            },
        ],
        short_copies: ShortCopies {
            samples: 4,
            min_copied: 536,
            max_copied: 2480,
            asked: 16384,
        },
        off_cpu: OffCpuStats {
            enabled: true,
            open_at_stop: 2,
            ended_at_exit: 1,
            unknown_length: 3,
            blocked_at_attach: 4,
        },
        locks: Default::default(),
        continuation: crate::profile::ContinuationStats {
            ran_off: 20,
            from_memory: 5,
            from_cache: 9,
            partial: 1,
            not_completed: [1, 2, 0, 3, 0, 0, 0, 0, 4, 6, 7],
            processes: vec![(4242, crate::profile::Refusal::NotPermitted, 3)],
        },
    });
    let app = p.intern("/usr/bin/app");
    let build_id = p.intern("0123456789abcdef");
    let kernel_path = p.intern("[kernel.kallsyms]");
    let app_map = p.add_mapping(Mapping {
        path: app,
        build_id: Some(build_id),
        start: 0x55_0000,
        limit: 0x56_0000,
        offset: 0x1000,
        kernel: false,
    });
    let kernel = p.add_mapping(Mapping {
        path: kernel_path,
        build_id: None,
        start: 0xffff_ffff_8100_0000,
        limit: 0xffff_ffff_8300_0000,
        offset: 0,
        kernel: true,
    });
    let file = p.intern("app.c");
    let func = |p: &mut Profile, name: &str, file: Option<StrId>| {
        let name = p.intern(name);
        p.add_function(Function { name, file })
    };
    let main = func(&mut p, "main", Some(file));
    let work = func(&mut p, "work", Some(file));
    let inl = func(&mut p, "inlined_helper", Some(file));
    let sys = func(&mut p, "do_syscall_64", None);
    let l_main = p.add_location(Location {
        mapping: Some(app_map),
        address: 0x55_1234,
        lines: vec![Line {
            function: main,
            line: 12,
        }],
    });
    let l_work = p.add_location(Location {
        mapping: Some(app_map),
        address: 0x55_2000,
        lines: vec![
            Line {
                function: inl,
                line: 3,
            },
            Line {
                function: work,
                line: 40,
            },
        ],
    });
    let l_sys = p.add_location(Location {
        mapping: Some(kernel),
        address: 0xffff_ffff_8100_1000,
        lines: vec![Line {
            function: sys,
            line: 0,
        }],
    });
    let l_raw = p.add_location(Location {
        mapping: None,
        address: 0xdead,
        lines: vec![],
    });
    let comm = p.intern("app");
    let other = p.intern("app-worker");
    p.add_sample(&[l_work, l_main], 10, 10, comm, 5, 5_005_005);
    p.add_sample(&[l_sys, l_work, l_main], 10, 11, other, 1, 1_001_001);
    p.add_sample(&[l_raw], 12, 12, comm, 2, 2_002_002);
    p.add_sample(&[], 12, 12, comm, 1, 1_001_001);
    // Off CPU under `work` (thread 11, in the kernel) and in a group of CPU samples as well (thread 10).
    let waited = Values {
        switches: 3,
        blocked: 30_000_000,
        runnable: 2_500_000,
        ..Values::default()
    };
    p.add_sample_values(&[l_sys, l_work, l_main], 10, 11, other, waited);
    p.add_sample_values(&[l_work, l_main], 10, 10, comm, waited);
    p.set_program(10, "app", Some("/usr/bin/app"));
    p.set_program(12, "raw", None);
    p
}

/// Content of a profile independent of interning order: every sample group with its resolved stack.
fn content(p: &Profile) -> (Meta, Vec<String>) {
    let mut groups: Vec<String> = p
        .samples
        .iter()
        .map(|s| {
            let stack: Vec<String> = p
                .stack(s.leaf)
                .map(|l| {
                    let loc = p.location(l);
                    let mapping = loc.mapping.map(|m| {
                        let m = p.mapping(m);
                        format!(
                            "{}@{:x}-{:x}+{:x} {:?} k={}",
                            p.str(m.path),
                            m.start,
                            m.limit,
                            m.offset,
                            m.build_id.map(|b| p.str(b)),
                            m.kernel
                        )
                    });
                    let lines: Vec<String> = loc
                        .lines
                        .iter()
                        .map(|line| {
                            let f = p.function(line.function);
                            format!(
                                "{}:{:?}:{}",
                                p.str(f.name),
                                f.file.map(|x| p.str(x)),
                                line.line
                            )
                        })
                        .collect();
                    format!("{mapping:?} {:#x} {lines:?}", loc.address)
                })
                .collect();
            format!(
                "{} {} {} {} {} {stack:?}",
                s.pid,
                s.tid,
                p.str(s.comm),
                s.count,
                s.period
            )
        })
        .collect();
    groups.sort();
    for (pid, program) in &p.programs {
        groups.push(format!(
            "process {pid}: {} {:?}",
            p.str(program.name),
            program.path.map(|x| p.str(x))
        ));
    }
    (p.meta.clone(), groups)
}

#[test]
fn round_trip_plain_and_gzip() {
    let p = sample_profile();
    for gzip in [false, true] {
        let mut bytes = Vec::new();
        write_pprof(&p, &mut bytes, gzip).expect("write");
        assert_eq!(bytes.starts_with(&GZIP_MAGIC), gzip);
        let back = read_pprof(&bytes).expect("read");
        assert_eq!(content(&back), content(&p));
    }
}

/// A placeholder renamed once its module was read names no location: it is not written, and the functions
/// that are keep their names (ids renumbered).
#[test]
fn functions_no_location_names_are_left_out() {
    let mut p = sample_profile();
    let leaf = p.samples[0].leaf;
    let work = p.stack(leaf).next().expect("a frame");
    let before = p.functions.len();
    let placeholder = p.intern("[unknown] app+0x2000 (loading)");
    let dead = p.add_function(Function {
        name: placeholder,
        file: None,
    });
    assert_eq!(dead.0 as usize, before);
    // Renamed from the placeholder: the location names another function now.
    p.rename(
        work,
        &[crate::symbolize::Frame {
            function: "work_renamed".into(),
            file: None,
            line: 41,
        }],
    );
    let message = to_proto(&p);
    // `inlined_helper` and `work` are named by no location any more either.
    assert_eq!(message.function.len(), before - 1);
    let ids: Vec<u64> = message.function.iter().map(|f| f.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let names: Vec<&str> = message
        .function
        .iter()
        .map(|f| message.string_table[f.name as usize].as_str())
        .collect();
    assert!(names.contains(&"work_renamed"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("(loading)") || *n == "work"),
        "{names:?}"
    );
    let mut bytes = Vec::new();
    write_pprof(&p, &mut bytes, false).expect("write");
    let back = read_pprof(&bytes).expect("read");
    assert_eq!(content(&back).1, content(&p).1);
}

#[test]
fn module_unwind_comments_of_older_files_read_without_frameless() {
    let old = ModuleUnwind::from_comment("fp=no tables=yes fell_back=3 broken=1 /usr/lib/a b.so");
    assert_eq!(
        old,
        Some(ModuleUnwind {
            path: "/usr/lib/a b.so".into(),
            frame_pointers: false,
            tables: true,
            fell_back: 3,
            broken: 1,
            frameless: 0,
        })
    );
    // A path that merely starts like the field is a path.
    let odd = ModuleUnwind::from_comment("fp=no tables=no fell_back=0 broken=0 frameless=x");
    assert_eq!(
        odd.map(|m| (m.path, m.frameless)),
        Some(("frameless=x".into(), 0))
    );
}

#[test]
fn written_message_follows_pprof_conventions() {
    let p = sample_profile();
    let m = to_proto(&p);
    let s = |i: i64| m.string_table[i as usize].as_str();
    assert_eq!(s(0), "");
    let types: Vec<(&str, &str)> = m
        .sample_type
        .iter()
        .map(|v| (s(v.r#type), s(v.unit)))
        .collect();
    assert_eq!(
        types,
        [
            ("samples", "count"),
            ("cpu", "nanoseconds"),
            ("switches", "count"),
            ("off-cpu", "nanoseconds"),
            ("blocked", "nanoseconds"),
            ("runnable", "nanoseconds"),
            ("wall", "nanoseconds"),
        ]
    );
    assert_eq!(s(m.default_sample_type), "cpu");
    // A group with both CPU and off-CPU values: wall is their sum.
    let both = m
        .sample
        .iter()
        .find(|x| x.value[0] == 5)
        .expect("thread 10's group");
    assert_eq!(
        both.value,
        [5, 5_005_005, 3, 32_500_000, 30_000_000, 2_500_000, 37_505_005]
    );
    // Without off-CPU recording, the CPU types only.
    let mut cpu_only = sample_profile();
    cpu_only.meta.off_cpu.enabled = false;
    cpu_only.weigh(crate::profile::Weigh::Cpu, false);
    assert_eq!(to_proto(&cpu_only).sample_type.len(), 2);
    assert_eq!(m.period, 1_000_000_000 / 999);
    let work = m
        .location
        .iter()
        .find(|l| l.line.len() == 2)
        .expect("inline location");
    let innermost = &m.function[work.line[0].function_id as usize - 1];
    assert_eq!(s(innermost.name), "inlined_helper");
    let kernel = m
        .mapping
        .iter()
        .find(|x| s(x.filename) == "[kernel.kallsyms]");
    assert!(kernel.is_some());
    let labels: Vec<&str> = m.sample[0].label.iter().map(|l| s(l.key)).collect();
    assert_eq!(labels, ["pid", "tid", "comm", "process", "program"]);
    let comments: Vec<&str> = m.comment.iter().map(|&c| s(c)).collect();
    assert!(comments.contains(&"event: cpu-clock"));
    assert!(comments.contains(&"call_graph: dwarf,8192"));
    assert!(comments.contains(&"lost: 3"));
}

#[test]
fn corrupt_input_is_an_error() {
    // Deterministic pseudo-random bytes (xorshift), several lengths and seeds.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [0usize, 1, 7, 64, 1000, 4096] {
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // Must not panic; most of these are errors, and any that decode must be valid profiles.
            let _ = read_pprof(&bytes);
        }
    }
    assert!(read_pprof(b"definitely not a profile").is_err());
    let mut gz = Vec::new();
    write_pprof(&sample_profile(), &mut gz, true).expect("write");
    for cut in [2, 10, gz.len() / 2, gz.len() - 4] {
        assert!(read_pprof(&gz[..cut]).is_err(), "truncated at {cut}");
    }
    let mut plain = Vec::new();
    write_pprof(&sample_profile(), &mut plain, false).expect("write");
    assert!(read_pprof(&plain[..plain.len() - 3]).is_err());
}

#[test]
fn dangling_references_are_errors() {
    let good = to_proto(&sample_profile());
    let mut bad = good.clone();
    bad.sample[0].location_id.push(999);
    assert!(matches!(from_proto(&bad), Err(FormatError::Corrupt(_))));
    let mut bad = good.clone();
    bad.location[0].mapping_id = 77;
    assert!(from_proto(&bad).is_err());
    let mut bad = good.clone();
    bad.function[0].name = 1 << 40;
    assert!(from_proto(&bad).is_err());
    let mut bad = good.clone();
    bad.sample[0].value.pop();
    assert!(from_proto(&bad).is_err());
    let mut bad = good.clone();
    bad.location[1].id = bad.location[0].id;
    assert!(from_proto(&bad).is_err());
    let mut bad = good.clone();
    bad.sample_type.clear();
    assert!(from_proto(&bad).is_err());
    let mut bad = good;
    bad.comment.push(-1);
    assert!(from_proto(&bad).is_err());
}

#[test]
fn reads_a_minimal_foreign_profile() {
    // What a minimal Go-style CPU profile looks like: no labels, no count type, one function-less location.
    let strings = ["", "cpu", "nanoseconds", "main.work", "/srv/app"];
    let foreign = proto::Profile {
        sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
        sample: vec![
            proto::Sample {
                location_id: vec![1, 2],
                value: vec![30_000_000],
                label: vec![],
            },
            proto::Sample {
                location_id: vec![2],
                value: vec![10_000_000],
                label: vec![],
            },
        ],
        mapping: vec![proto::Mapping {
            id: 7,
            memory_start: 0x40_0000,
            memory_limit: 0x50_0000,
            filename: 4,
            ..Default::default()
        }],
        location: vec![
            proto::Location {
                id: 1,
                mapping_id: 7,
                address: 0x40_1000,
                line: vec![proto::Line {
                    function_id: 5,
                    line: 9,
                    column: 0,
                }],
                is_folded: false,
            },
            proto::Location {
                id: 2,
                mapping_id: 7,
                address: 0x40_2000,
                ..Default::default()
            },
        ],
        function: vec![proto::Function {
            id: 5,
            name: 3,
            ..Default::default()
        }],
        string_table: strings.iter().map(|s| s.to_string()).collect(),
        period_type: Some(proto::ValueType { r#type: 1, unit: 2 }),
        period: 10_000_000,
        ..Default::default()
    };
    let bytes = foreign.encode_to_vec();
    let p = read_pprof(&bytes).expect("foreign profile");
    assert_eq!(p.meta.event, "cpu");
    assert_eq!(p.meta.period_unit, "nanoseconds");
    assert_eq!(p.total_period(), 40_000_000);
    assert_eq!(p.total_count(), 4);
    assert_eq!(p.samples[0].pid, 0);
    assert_eq!(p.str(p.samples[0].comm), "[unknown]");
    let leaf = p.location(p.stack(p.samples[0].leaf).next().expect("leaf"));
    assert_eq!(p.str(p.function(leaf.lines[0].function).name), "main.work");
    assert_eq!(
        p.str(p.mapping(leaf.mapping.expect("mapping")).path),
        "/srv/app"
    );
}

#[test]
fn several_sample_types_pick_default_or_cpu() {
    let mut m = to_proto(&sample_profile());
    // Put an extra value type first and make `cpu` the default: the period must still be the cpu value.
    let alloc = m.string_table.len() as i64;
    m.string_table.push("alloc_space".into());
    let bytes_unit = m.string_table.len() as i64;
    m.string_table.push("bytes".into());
    m.sample_type.insert(
        0,
        proto::ValueType {
            r#type: alloc,
            unit: bytes_unit,
        },
    );
    for s in &mut m.sample {
        s.value.insert(0, 123);
    }
    let p = from_proto(&m).expect("read");
    assert_eq!(p.total_period(), sample_profile().total_period());
    assert_eq!(p.total_count(), sample_profile().total_count());
    m.default_sample_type = alloc;
    let p = from_proto(&m).expect("read");
    assert_eq!(p.total_period(), 123 * 4);
    assert_eq!(p.meta.period_unit, "bytes");
}

#[test]
fn file_name_decides_compression() {
    let dir = std::env::temp_dir().join(format!("stacktop-pprof-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = sample_profile();
    for (name, gz) in [("x.pb.gz", true), ("x.pb", false)] {
        let path = dir.join(name);
        write_pprof_file(&p, &path).expect("write file");
        let bytes = std::fs::read(&path).expect("read back");
        assert_eq!(bytes.starts_with(&GZIP_MAGIC), gz);
        assert_eq!(content(&read_pprof_file(&path).expect("read")), content(&p));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(
        read_pprof_file(&dir.join("missing")),
        Err(FormatError::Read { .. })
    ));
}

#[test]
fn main_binary_is_the_first_mapping() {
    let mut p = Profile::new(Meta::default());
    for path in [
        "[kernel.kallsyms]",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "[vdso]",
        "/usr/bin/app",
    ] {
        let path_id = p.intern(path);
        p.add_mapping(Mapping {
            path: path_id,
            build_id: None,
            start: 0,
            limit: 0,
            offset: 0,
            kernel: path.starts_with("[kernel"),
        });
    }
    let m = to_proto(&p);
    let names: Vec<&str> = m
        .mapping
        .iter()
        .map(|x| m.string_table[x.filename as usize].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "/usr/bin/app",
            "[kernel.kallsyms]",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "[vdso]"
        ]
    );
    assert_eq!(m.mapping[0].id, 4, "ids are kept, only the order changes");
}

/// Re-encodes `message`'s top-level fields highest field number first (the string table before the samples; a
/// repeated field's elements keep their order, which carries meaning), and the samples' packed location ids
/// and values as one field per id: both are valid encodings a writer may choose.
fn reversed_and_unpacked(message: &[u8]) -> Vec<u8> {
    use crate::format::wire::{self, Fields, Value};
    fn key(out: &mut Vec<u8>, tag: u32, wire_type: u64) {
        prost::encoding::encode_varint(u64::from(tag) << 3 | wire_type, out);
    }
    fn bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
        key(out, tag, 2);
        prost::encoding::encode_varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    let mut fields: Vec<(u32, Value<'_>)> =
        Fields::new(message).map(|f| f.expect("field")).collect();
    fields.sort_by_key(|&(tag, _)| std::cmp::Reverse(tag));
    let mut out = Vec::new();
    for (tag, value) in fields {
        match (tag, value) {
            (2, Value::Bytes(sample)) => {
                let mut s = Vec::new();
                for field in Fields::new(sample) {
                    let (t, v) = field.expect("sample field");
                    match (t, v) {
                        (1 | 2, v) => {
                            for n in wire::varints(v) {
                                key(&mut s, t, 0);
                                prost::encoding::encode_varint(n.expect("varint"), &mut s);
                            }
                        }
                        (t, Value::Bytes(b)) => bytes(&mut s, t, b),
                        _ => panic!("unexpected sample field {t}"),
                    }
                }
                bytes(&mut out, 2, &s);
            }
            (tag, Value::Bytes(b)) => bytes(&mut out, tag, b),
            (tag, Value::Varint(n)) => {
                key(&mut out, tag, 0);
                prost::encoding::encode_varint(n, &mut out);
            }
            (tag, _) => panic!("unexpected field {tag}"),
        }
    }
    out
}

#[test]
fn fields_in_any_order_and_unpacked_ids_read_the_same() {
    // The reader makes a pass per kind of element, so the string table may come last or first.
    let mut plain = Vec::new();
    write_pprof(&sample_profile(), &mut plain, false).expect("write");
    let shuffled = reversed_and_unpacked(&plain);
    assert_ne!(shuffled, plain);
    let p = read_pprof(&shuffled).expect("read");
    assert_eq!(content(&p), content(&sample_profile()));
}

#[test]
fn gzip_output_is_bounded_by_ratio_past_the_floor() {
    use std::io::Write as _;
    // 32 MiB of zeros gzip to ~32 KB: a ratio of ~1000, past the floor, so refused.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 32 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(matches!(
        read_pprof(&bomb),
        Err(FormatError::Expands { ratio: 100, .. })
    ));
    // Under the floor a high ratio is fine (and these zeros are then not a profile).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1 << 20]).expect("gzip");
    assert!(matches!(
        read_pprof(&gz.finish().expect("gzip")),
        Err(FormatError::Corrupt(_))
    ));
}

/// `sample_profile` with lock waits: a global lock (waiters under `work`, released by `main`) and a heap one.
fn locked_profile() -> Profile {
    let mut p = sample_profile();
    p.meta.locks = crate::profile::LockStats {
        enabled: true,
        probes: vec!["glibc: __lll_lock_wait, __lll_lock_wake in /lib/libc.so.6".into()],
        open_at_stop: 1,
        unmatched_ends: 2,
        no_holder: 3,
    };
    let stacks: Vec<Vec<crate::profile::LocationId>> = p
        .samples
        .iter()
        .map(|g| p.stack(g.leaf).collect())
        .collect();
    let comm = p.intern("app");
    let table = p.add_lock(10, 0x55_4040);
    p.set_lock_symbol(table, "table lock\twith tab", Some("/usr/bin/app"));
    let heap = p.add_lock(10, 0x7f00_0000_1000);
    p.add_lock_wait(&stacks[0], (10, 10, comm), table, 3_000_000);
    p.add_lock_wait(&stacks[0], (10, 10, comm), table, 5_000_000);
    p.add_lock_wait(&stacks[1], (10, 11, comm), table, 1_000_000);
    p.add_lock_hold(&stacks[1], (10, 11, comm), table, 8_000_000);
    p.add_lock_wait(&stacks[1], (10, 11, comm), heap, 700);
    p
}

#[test]
fn locks_round_trip_with_their_roles_names_and_firsts() {
    let p = locked_profile();
    let bytes = {
        let mut bytes = Vec::new();
        write_pprof(&p, &mut bytes, false).expect("write");
        bytes
    };
    let back = read_pprof(&bytes).expect("read");
    assert_eq!(back.meta.locks, p.meta.locks);
    let rows = |p: &Profile| -> Vec<(String, u64, u64, u64, usize, u64, bool)> {
        p.lock_rows()
            .iter()
            .map(|r| {
                let lock = p.lock(r.lock).expect("lock");
                (
                    p.lock_label(r.lock),
                    r.contentions,
                    r.delay,
                    r.longest,
                    r.threads,
                    r.caused_delay,
                    lock.first.is_some(),
                )
            })
            .collect()
    };
    // A name with a tab survives the comment (escaped) and the label.
    assert_eq!(rows(&back), rows(&p));
    assert_eq!(
        back.lock_label(back.lock_rows()[0].lock),
        "table lock\twith tab"
    );
    for by in [Weigh::LockWait, Weigh::LockHold, Weigh::Cpu, Weigh::Wall] {
        let (mut a, mut b) = (p.clone(), back.clone());
        a.weigh(by, false);
        b.weigh(by, false);
        assert_eq!(content(&a).1, content(&b).1, "{by}");
    }
    // The CPU content is what it was.
    let mut cpu = back.clone();
    cpu.weigh(Weigh::Cpu, false);
    let mut plain = sample_profile();
    plain.weigh(Weigh::Cpu, false);
    assert_eq!(content(&cpu).1, content(&plain).1);
}

#[test]
fn lock_samples_carry_go_types_and_role_labels() {
    let p = locked_profile();
    let proto = to_proto(&p);
    let s = |i: i64| proto.string_table[i as usize].as_str();
    let types: Vec<(&str, &str)> = proto
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(
        &types[types.len() - 2..],
        &[("contentions", "count"), ("delay", "nanoseconds")]
    );
    assert_eq!(s(proto.default_sample_type), "cpu");
    let mut seen = Vec::new();
    for sample in &proto.sample {
        let label = |key: &str| sample.label.iter().find(|l| s(l.key) == key);
        if let Some(role) = label("role") {
            let n = sample.value.len();
            seen.push((
                s(role.str).to_owned(),
                label("lock").map(|l| s(l.str).to_owned()),
                sample.value[n - 2],
                sample.value[n - 1],
            ));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "holder".into(),
                Some("table lock\twith tab".into()),
                1,
                8_000_000
            ),
            ("waiter".into(), Some("0x7f0000001000".into()), 1, 700),
            (
                "waiter".into(),
                Some("table lock\twith tab".into()),
                1,
                1_000_000
            ),
            (
                "waiter".into(),
                Some("table lock\twith tab".into()),
                2,
                8_000_000
            ),
        ]
    );
}
