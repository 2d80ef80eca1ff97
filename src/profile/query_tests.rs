use super::*;
use crate::profile::{Function, Line, Location, Mapping, Meta};

/// Builds stacks from names, innermost first; `name@lib` puts the function in module `lib`, a leading `!`
/// makes it a kernel frame. Each name is its own location.
struct Builder {
    p: Profile,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            p: Profile::new(Meta::default()),
        }
    }

    fn loc(&mut self, spec: &str) -> LocationId {
        let (kernel, spec) = match spec.strip_prefix('!') {
            Some(s) => (true, s),
            None => (false, spec),
        };
        let (name, module) = match spec.split_once('/') {
            Some((n, m)) => (n, m),
            None if kernel => (spec, "[kernel.kallsyms]"),
            None => (spec, "/bin/app"),
        };
        let path = self.p.intern(module);
        let mapping = self.p.add_mapping(Mapping {
            path,
            build_id: None,
            start: 0,
            limit: 0,
            offset: 0,
            kernel,
        });
        let name = self.p.intern(name);
        let function = self.p.add_function(Function { name, file: None });
        self.p.add_location(Location {
            mapping: Some(mapping),
            address: u64::from(function.0) * 16,
            lines: vec![Line { function, line: 0 }],
        })
    }

    fn sample(&mut self, stack: &[&str], pid: u32, comm: &str, period: u64) -> &mut Builder {
        let locs: Vec<LocationId> = stack.iter().map(|s| self.loc(s)).collect();
        let comm = self.p.intern(comm);
        self.p.add_sample(&locs, pid, pid, comm, 1, period);
        self
    }
}

fn name_of(p: &Profile, tree: &CallTree, id: usize) -> String {
    p.func_name(&tree.nodes[id].func).to_owned()
}

/// The tree as `name weight` lines, children indented.
fn dump(p: &Profile, tree: &CallTree) -> Vec<String> {
    fn walk(p: &Profile, tree: &CallTree, id: usize, depth: usize, out: &mut Vec<String>) {
        let n = &tree.nodes[id];
        let name = if n.other {
            OTHER.to_owned()
        } else {
            name_of(p, tree, id)
        };
        out.push(format!(
            "{}{} {}",
            "  ".repeat(depth),
            name,
            n.weight.period
        ));
        for &c in &n.children {
            walk(p, tree, c, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    for &r in &tree.roots {
        walk(p, tree, r, 0, &mut out);
    }
    out
}

fn recursive() -> Profile {
    let mut b = Builder::new();
    b.sample(&["f", "f", "f", "main"], 1, "app", 10)
        .sample(&["g", "f", "main"], 1, "app", 5)
        .sample(&["f", "g", "f", "main"], 1, "app", 3);
    b.p
}

#[test]
fn total_counts_a_sample_once_under_recursion() {
    let p = recursive();
    let top = top_functions(&p, &Filter::default(), &[SortKey::Sym], true);
    let f = top
        .rows
        .iter()
        .find(|r| p.func_name(&r.key.sym.expect("sym")) == "f")
        .expect("f");
    assert_eq!(f.total.period, 18);
    assert_eq!(f.total.count, 3);
    assert_eq!(f.self_.period, 13);
    assert_eq!(top.total.period, 18);
    // main and f both at 18: tie broken by name.
    let names: Vec<&str> = top
        .rows
        .iter()
        .map(|r| p.func_name(&r.key.sym.expect("sym")))
        .collect();
    assert_eq!(names, ["f", "main", "g"]);
}

#[test]
fn callers_count_at_outermost_occurrence() {
    let p = recursive();
    let tree = callers_of(&p, &Filter::default(), &Matcher::exact("f"));
    assert_eq!(dump(&p, &tree), ["f 18", "  main 18"]);
    let tree = callees_of(&p, &Filter::default(), &Matcher::exact("f"));
    assert_eq!(
        dump(&p, &tree),
        ["f 18", "  f 10", "    f 10", "  g 8", "    f 3"]
    );
    assert_eq!(tree.roots_weight().period, 18);
}

#[test]
fn entry_graph_starts_at_outermost_occurrence_in_caller_order() {
    let p = recursive();
    let top = top_functions(&p, &Filter::default(), &[SortKey::Sym], true);
    let g = top
        .rows
        .iter()
        .find(|r| p.func_name(&r.key.sym.expect("sym")) == "g")
        .expect("g");
    let trees = entry_graphs(
        &p,
        &Filter::default(),
        &[SortKey::Sym],
        &[g.key],
        true,
        &GraphOptions::parse("graph,0,caller").expect("-g"),
    );
    // Self sample: whole stack root first; children sample: from the outermost g down to the leaf.
    assert_eq!(
        dump(&p, &trees[0]),
        ["main 5", "  f 5", "    g 5", "g 3", "  f 3"]
    );
}

#[test]
fn version_suffix_is_ignored_on_both_sides() {
    let mut b = Builder::new();
    b.sample(&["pthread_mutex_lock", "main"], 1, "app", 1)
        .sample(&["memcpy@@GLIBC_2.14", "main"], 1, "app", 1);
    let p = b.p;
    assert_eq!(
        callers_of(
            &p,
            &Filter::default(),
            &Matcher::exact("pthread_mutex_lock@@GLIBC_2.2.5")
        )
        .roots
        .len(),
        1
    );
    assert_eq!(
        callers_of(&p, &Filter::default(), &Matcher::exact("memcpy"))
            .roots
            .len(),
        1
    );
    assert_eq!(
        callers_of(
            &p,
            &Filter::default(),
            &Matcher::exact("memcpy@GLIBC_2.2.5")
        )
        .roots
        .len(),
        1
    );
    assert_eq!(
        strip_version("operator new(unsigned long)"),
        "operator new(unsigned long)"
    );
    assert_eq!(strip_version("@foo"), "@foo");
}

#[test]
fn regex_is_anchored() {
    let mut b = Builder::new();
    b.sample(&["lock_slow", "main"], 1, "app", 1)
        .sample(&["lock", "main"], 1, "app", 2);
    let p = b.p;
    let tree = callers_of(
        &p,
        &Filter::default(),
        &Matcher::regex("lock").expect("regex"),
    );
    assert_eq!(dump(&p, &tree), ["lock 2", "  main 2"]);
    let tree = callers_of(
        &p,
        &Filter::default(),
        &Matcher::regex("lock.*").expect("regex"),
    );
    assert_eq!(tree.roots_weight().period, 3);
    assert!(Matcher::regex("(").is_err());
}

#[test]
fn sort_keys_make_rows() {
    let mut b = Builder::new();
    b.sample(&["work", "main"], 1, "one", 4)
        .sample(&["work", "main"], 2, "two", 6)
        .sample(&["memcpy/libc.so.6", "main"], 2, "two", 1);
    let p = b.p;
    let keys = SortKey::parse_list("comm,sym").expect("keys");
    let top = top_functions(&p, &Filter::default(), &keys, false);
    let rows: Vec<(String, String, u64)> = top
        .rows
        .iter()
        .map(|r| {
            (
                p.str(r.key.comm.expect("comm")).to_owned(),
                p.func_name(&r.key.sym.expect("sym")).to_owned(),
                r.self_.period,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("two".into(), "work".into(), 6),
            ("one".into(), "work".into(), 4),
            ("two".into(), "memcpy".into(), 1)
        ]
    );
    let top = top_functions(&p, &Filter::default(), &[SortKey::Dso], true);
    let dsos: Vec<(&str, u64, u64)> = top
        .rows
        .iter()
        .map(|r| {
            (
                p.module_name(&r.key.dso.expect("dso")),
                r.self_.period,
                r.total.period,
            )
        })
        .collect();
    assert_eq!(dsos, [("/bin/app", 10, 11), ("libc.so.6", 1, 1)]);
    let top = top_functions(&p, &Filter::default(), &[SortKey::Pid], true);
    assert_eq!(
        top.rows
            .iter()
            .map(|r| (r.key.pid, r.total.period))
            .collect::<Vec<_>>(),
        [(Some(2), 7), (Some(1), 4)]
    );
    assert!(SortKey::parse_list("sym,bogus").is_err());
}

#[test]
fn filters_by_pid_comm_kernel_and_module() {
    let mut b = Builder::new();
    b.sample(&["!do_syscall", "write/libc.so.6", "main"], 1, "one", 4)
        .sample(&["work", "main"], 2, "two", 6)
        .sample(&["!idle"], 0, "swapper", 5);
    let p = b.p;
    let names = |filter: &Filter| -> Vec<(String, u64)> {
        top_functions(&p, filter, &[SortKey::Sym], false)
            .rows
            .iter()
            .map(|r| {
                (
                    p.func_name(&r.key.sym.expect("sym")).to_owned(),
                    r.self_.period,
                )
            })
            .collect()
    };
    assert_eq!(
        names(&Filter {
            pids: vec![1],
            ..Filter::default()
        }),
        [("do_syscall".to_owned(), 4)]
    );
    assert_eq!(
        names(&Filter {
            comms: vec!["two".into()],
            ..Filter::default()
        }),
        [("work".to_owned(), 6)]
    );
    let no_kernel = Filter {
        hide_kernel: true,
        ..Filter::default()
    };
    assert_eq!(
        names(&no_kernel),
        [("work".to_owned(), 6), ("write".to_owned(), 4)]
    );
    assert_eq!(
        top_functions(&p, &no_kernel, &[SortKey::Sym], false)
            .total
            .period,
        10
    );
    let libc = Filter {
        modules: vec!["libc.so.6".into()],
        ..Filter::default()
    };
    let top = top_functions(&p, &libc, &[SortKey::Sym], true);
    assert_eq!(top.rows.len(), 1);
    assert_eq!(top.rows[0].total.period, 4);
    let tree = callees_of(&p, &libc, &Matcher::exact("main"));
    assert_eq!(tree.roots_weight().period, 4);
}

#[test]
fn process_filter_matches_main_thread_name_program_path_and_file_name() {
    let mut b = Builder::new();
    b.sample(&["work", "main"], 7, "mc-worker", 6)
        .sample(&["idle", "main"], 8, "bash", 2)
        .sample(&["other", "main"], 9, "nameless", 1);
    let mut p = b.p;
    p.set_program(7, "memcached", Some("/usr/bin/memcached"));
    p.set_program(8, "bash", None);
    let weight = |names: &[&str]| {
        let filter = Filter {
            processes: names.iter().map(|n| n.to_string()).collect(),
            ..Filter::default()
        };
        top_functions(&p, &filter, &[SortKey::Sym], false)
            .total
            .period
    };
    assert_eq!(weight(&["memcached"]), 6);
    assert_eq!(weight(&["/usr/bin/memcached"]), 6);
    assert_eq!(weight(&["bash", "memcached"]), 8);
    // A part of a name, or a thread's name, is not a process's name.
    assert_eq!(weight(&["memc"]), 0);
    assert_eq!(weight(&["mc-worker"]), 0);
    let error = Filter {
        processes: vec!["mc-worker".into()],
        ..Filter::default()
    }
    .check_labels(&p)
    .expect_err("nothing matches")
    .to_string();
    assert!(
        error.contains("--process mc-worker")
            && error.contains("mc-worker (1)")
            && error.contains("processes: bash (1), memcached (1)"),
        "{error}"
    );
}

#[test]
fn percent_limit_folds_into_other() {
    let mut b = Builder::new();
    b.sample(&["big", "main"], 1, "app", 90)
        .sample(&["small", "main"], 1, "app", 6)
        .sample(&["tiny", "main"], 1, "app", 4);
    let p = b.p;
    let filter = Filter {
        percent_limit: 5.0,
        ..Filter::default()
    };
    let top = top_functions(&p, &filter, &[SortKey::Sym], false);
    assert_eq!(top.rows.len(), 2);
    assert_eq!(
        top.other,
        Some(Weight {
            period: 4,
            count: 1
        })
    );
    let mut tree = callees_of(&p, &filter, &Matcher::exact("main"));
    tree.fold_below(10);
    assert_eq!(dump(&p, &tree), ["main 100", "  big 90", "  [other] 10"]);
}

#[test]
fn inline_frames_are_frames() {
    let mut p = Profile::new(Meta::default());
    let names: Vec<FunctionId> = ["inner", "outer", "main"]
        .iter()
        .map(|n| {
            let name = p.intern(n);
            p.add_function(Function { name, file: None })
        })
        .collect();
    let leaf = p.add_location(Location {
        mapping: None,
        address: 0x10,
        lines: vec![
            Line {
                function: names[0],
                line: 3,
            },
            Line {
                function: names[1],
                line: 7,
            },
        ],
    });
    let main = p.add_location(Location {
        mapping: None,
        address: 0x20,
        lines: vec![Line {
            function: names[2],
            line: 1,
        }],
    });
    let comm = p.intern("app");
    p.add_sample(&[leaf, main], 1, 1, comm, 1, 1);
    let frames = p.frames(p.samples[0].leaf);
    assert_eq!(frames.len(), 3);
    assert!(frames[0].inlined && !frames[1].inlined && !frames[2].inlined);
    let tree = callers_of(&p, &Filter::default(), &Matcher::exact("inner"));
    assert_eq!(dump(&p, &tree), ["inner 1", "  outer 1", "    main 1"]);
}

#[test]
fn graph_options_parse() {
    assert_eq!(
        GraphOptions::parse("graph,0.5,caller").expect("ok").order,
        Some(GraphOrder::Caller)
    );
    let f = GraphOptions::parse("fractal,2").expect("ok");
    assert_eq!(
        (f.mode, f.threshold, f.order),
        (GraphMode::Fractal, 2.0, None)
    );
    assert_eq!(f.order(true), GraphOrder::Caller);
    assert_eq!(f.order(false), GraphOrder::Callee);
    assert!(GraphOptions::parse("graph,abc").is_err());
    assert!(GraphOptions::parse("graph,200").is_err());
}
