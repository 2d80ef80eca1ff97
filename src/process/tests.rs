//! Unit tests of `Processes`: address spaces over mmap, fork, exec and exit, and what is released when.

use super::*;

fn mmap(pid: u32, time: u64, start: u64, len: u64, pgoff: u64, path: &str) -> Record {
    Record::Mmap(MmapRecord {
        pid,
        tid: pid,
        time,
        start,
        len,
        pgoff,
        path: path.to_owned(),
        build_id: None,
        executable: true,
        dev: 1,
        inode: 2,
    })
}

fn module_at(p: &Processes, pid: u32, addr: u64) -> Option<(String, u64)> {
    match p.resolve(pid, Avma(addr)) {
        Resolved::Module { module, offset, .. } => Some((module.path.clone(), offset.0)),
        _ => None,
    }
}

#[test]
fn resolves_file_offsets() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x2000, 0x5000, "/bin/a"));
    assert_eq!(module_at(&p, 10, 0x1000), Some(("/bin/a".into(), 0x5000)));
    assert_eq!(module_at(&p, 10, 0x2fff), Some(("/bin/a".into(), 0x6fff)));
    assert_eq!(p.resolve(10, Avma(0x3000)), Resolved::Unmapped);
    assert_eq!(p.resolve(10, Avma(0xfff)), Resolved::Unmapped);
    assert_eq!(p.resolve(11, Avma(0x1000)), Resolved::Unmapped);
    assert_eq!(p.resolve(10, Avma(0xffff_ffff_8100_0000)), Resolved::Kernel);
}

#[test]
fn anonymous_memory_is_told_from_files_and_images() {
    let module = |path: &str| Module {
        path: path.to_owned(),
        build_id: None,
        dev: 0,
        inode: 0,
    };
    for path in [
        "",
        "//anon",
        "[anon:jit_mprotect]",
        "[anon_shmem:x]",
        "[heap]",
        "[stack]",
        "[stack:1234]",
        "/dev/zero (deleted)",
        "/anon_hugepage (deleted)",
        "/SYSV00000000 (deleted)",
        "/memfd:doublemapper (deleted)",
    ] {
        assert!(module(path).is_anonymous(), "{path:?}");
    }
    for path in [
        "/usr/lib/libc.so.6",
        "[vdso]",
        "[vsyscall]",
        "/memfd:jit (deleted)",
        "/tmp/anon",
        "/dev/zeros",
    ] {
        assert!(!module(path).is_anonymous(), "{path:?}");
    }
}

#[test]
fn fork_inherits_mappings_and_comm() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&Record::Comm {
        pid: 10,
        tid: 10,
        time: 1,
        name: "a".into(),
        exec: false,
    });
    p.apply(&Record::Fork {
        pid: 20,
        ppid: 10,
        tid: 20,
        ptid: 10,
        time: 2,
    });
    assert_eq!(module_at(&p, 20, 0x1800), Some(("/bin/a".into(), 0x800)));
    assert_eq!(p.comm(20, 20), "a");
    // Later mmaps in the child do not leak into the parent.
    p.apply(&mmap(20, 3, 0x9000, 0x1000, 0, "/lib/b.so"));
    assert!(module_at(&p, 20, 0x9000).is_some());
    assert_eq!(p.resolve(10, Avma(0x9000)), Resolved::Unmapped);
    // The same file in two processes is one module.
    let (Resolved::Module { module: m1, .. }, Resolved::Module { module: m2, .. }) =
        (p.resolve(10, Avma(0x1000)), p.resolve(20, Avma(0x1000)))
    else {
        panic!("both resolve");
    };
    assert!(Arc::ptr_eq(&m1, &m2));
}

#[test]
fn new_thread_shares_address_space() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&Record::Comm {
        pid: 10,
        tid: 10,
        time: 1,
        name: "a".into(),
        exec: false,
    });
    p.apply(&Record::Fork {
        pid: 10,
        ppid: 10,
        tid: 11,
        ptid: 10,
        time: 2,
    });
    p.apply(&mmap(10, 3, 0x5000, 0x1000, 0, "/lib/c.so"));
    assert_eq!(p.comm(10, 11), "a");
    assert!(module_at(&p, 10, 0x1000).is_some());
    assert!(module_at(&p, 10, 0x5000).is_some());
    p.apply(&Record::Comm {
        pid: 10,
        tid: 11,
        time: 4,
        name: "worker".into(),
        exec: false,
    });
    assert_eq!(p.comm(10, 11), "worker");
    assert_eq!(p.comm(10, 10), "a");
    assert_eq!(p.comm(10, 12), "a");
    assert_eq!(p.comm(99, 99), "[unknown]");
}

#[test]
fn exec_replaces_mappings() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/sh"));
    p.apply(&mmap(10, 1, 0x8000, 0x1000, 0, "/lib/libc.so"));
    // Kernel order: exec comm first, then the new image's mmaps.
    p.apply(&Record::Comm {
        pid: 10,
        tid: 10,
        time: 2,
        name: "spin".into(),
        exec: true,
    });
    p.apply(&mmap(10, 3, 0x4000, 0x1000, 0, "/tmp/spin"));
    assert_eq!(p.resolve(10, Avma(0x1000)), Resolved::Unmapped);
    assert_eq!(p.resolve(10, Avma(0x8000)), Resolved::Unmapped);
    assert_eq!(module_at(&p, 10, 0x4000), Some(("/tmp/spin".into(), 0)));
    assert_eq!(p.comm(10, 10), "spin");
}

#[test]
fn late_mmap_resolves_later_samples() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    assert_eq!(p.resolve(10, Avma(0x7000_0000)), Resolved::Unmapped);
    // dlopen
    p.apply(&mmap(10, 5, 0x7000_0000, 0x4000, 0x1000, "/lib/plugin.so"));
    assert_eq!(
        module_at(&p, 10, 0x7000_0010),
        Some(("/lib/plugin.so".into(), 0x1010))
    );
}

#[test]
fn overlapping_mmap_replaces_the_overlap() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x4000, 0, "/bin/old")); // [0x1000, 0x5000)
    p.apply(&mmap(10, 2, 0x2000, 0x1000, 0, "/bin/new")); // [0x2000, 0x3000)
    assert_eq!(module_at(&p, 10, 0x1fff), Some(("/bin/old".into(), 0xfff)));
    assert_eq!(module_at(&p, 10, 0x2000), Some(("/bin/new".into(), 0)));
    // The right-hand remainder keeps its original file offsets.
    assert_eq!(module_at(&p, 10, 0x3000), Some(("/bin/old".into(), 0x2000)));
    assert_eq!(module_at(&p, 10, 0x4fff), Some(("/bin/old".into(), 0x3fff)));
    // A mapping covering several old ones replaces them all.
    p.apply(&mmap(10, 3, 0x0, 0x10000, 0, "/bin/all"));
    assert_eq!(module_at(&p, 10, 0x2000), Some(("/bin/all".into(), 0x2000)));
    assert_eq!(module_at(&p, 10, 0x4000), Some(("/bin/all".into(), 0x4000)));
}

#[test]
fn non_executable_mmaps_are_ignored() {
    let mut p = Processes::new();
    let Record::Mmap(mut m) = mmap(10, 1, 0x1000, 0x1000, 0, "/data") else {
        unreachable!()
    };
    m.executable = false;
    p.apply(&Record::Mmap(m));
    assert_eq!(p.resolve(10, Avma(0x1000)), Resolved::Unmapped);
}

#[test]
fn exit_keeps_state() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&Record::Exit {
        pid: 10,
        ppid: 1,
        tid: 10,
        ptid: 1,
        time: 9,
    });
    assert!(p.has_exited(10));
    assert!(module_at(&p, 10, 0x1000).is_some());
}

#[test]
fn exited_processes_are_released_one_call_later() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&mmap(11, 1, 0x1000, 0x1000, 0, "/bin/b"));
    p.apply(&Record::Exit {
        pid: 10,
        ppid: 1,
        tid: 10,
        ptid: 1,
        time: 9,
    });
    assert_eq!(p.release_exited(), Vec::<u32>::new());
    assert!(module_at(&p, 10, 0x1000).is_some());
    assert_eq!(p.release_exited(), vec![10]);
    assert!(module_at(&p, 10, 0x1000).is_none());
    assert!(module_at(&p, 11, 0x1000).is_some());
}

fn exit(pid: u32, tid: u32) -> Record {
    Record::Exit {
        pid,
        ppid: 1,
        tid,
        ptid: 1,
        time: 9,
    }
}

fn comm(pid: u32, tid: u32, name: &str) -> Record {
    Record::Comm {
        pid,
        tid,
        time: 1,
        name: name.to_owned(),
        exec: false,
    }
}

fn thread(pid: u32, tid: u32) -> Record {
    Record::Fork {
        pid,
        ppid: pid,
        tid,
        ptid: pid,
        time: 2,
    }
}

#[test]
fn exited_thread_names_are_released_one_call_later() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&comm(10, 10, "a"));
    for tid in [11, 12] {
        p.apply(&thread(10, tid));
        p.apply(&comm(10, tid, &format!("worker{tid}")));
    }
    assert_eq!(p.thread_count(), 3);
    p.apply(&exit(10, 11));
    assert_eq!(p.release_exited(), Vec::<u32>::new());
    // Samples still in flight keep their thread's name until the next call.
    assert_eq!(p.comm(10, 11), "worker11");
    p.release_exited();
    assert_eq!(p.comm(10, 11), "a", "falls back to the process's name");
    assert_eq!(p.comm(10, 12), "worker12");
    assert_eq!(p.thread_count(), 2);
    // The process is alive: its mappings and main thread's name stay.
    assert!(module_at(&p, 10, 0x1000).is_some());

    // A tid reused after its exit is a new thread, kept.
    p.apply(&exit(10, 12));
    p.release_exited();
    p.apply(&thread(10, 12));
    p.apply(&comm(10, 12, "again"));
    p.release_exited();
    assert_eq!(p.comm(10, 12), "again");

    // The whole process goes: its last thread, then its main thread.
    p.apply(&exit(10, 12));
    p.apply(&exit(10, 10));
    p.release_exited();
    assert_eq!(p.release_exited(), vec![10]);
    assert_eq!(p.thread_count(), 0);
    assert_eq!(p.process_count(), 0);
}

#[test]
fn unmapped_modules_are_released() {
    let mut p = Processes::new();
    p.apply(&mmap(10, 1, 0x1000, 0x1000, 0, "/bin/a"));
    p.apply(&mmap(10, 1, 0x8000, 0x1000, 0, "/lib/libc.so"));
    p.apply(&mmap(11, 1, 0x1000, 0x1000, 0, "/bin/b"));
    p.apply(&mmap(11, 1, 0x8000, 0x1000, 0, "/lib/libc.so"));
    assert_eq!(p.modules().count(), 3);
    assert!(p.release_unmapped_modules().is_empty());
    p.apply(&exit(10, 10));
    p.release_exited();
    assert!(
        p.release_unmapped_modules().is_empty(),
        "an exited process keeps its modules until it is released"
    );
    p.release_exited();
    let released: Vec<String> = p
        .release_unmapped_modules()
        .iter()
        .map(|m| m.path.clone())
        .collect();
    assert_eq!(released, ["/bin/a"]);
    assert!(p.has_module(&Module {
        path: "/lib/libc.so".into(),
        build_id: None,
        dev: 1,
        inode: 2,
    }));
    // exec unmaps the old image without any exit.
    p.apply(&Record::Comm {
        pid: 11,
        tid: 11,
        time: 5,
        name: "c".into(),
        exec: true,
    });
    p.apply(&mmap(11, 6, 0x4000, 0x1000, 0, "/bin/c"));
    let mut released: Vec<String> = p
        .release_unmapped_modules()
        .iter()
        .map(|m| m.path.clone())
        .collect();
    released.sort();
    assert_eq!(released, ["/bin/b", "/lib/libc.so"]);
    assert_eq!(p.modules().count(), 1);
    assert_eq!(module_at(&p, 11, 0x4000), Some(("/bin/c".into(), 0)));
}
