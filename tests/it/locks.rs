//! Lock contention (issue 14's acceptance items 1 to 6, but `top`'s, which `top`'s tests cover): which lock,
//! who waits for it and who caused the waits, on workloads whose truth is known by construction and measured
//! by the workloads themselves (`assets/locks_table.c`, `assets/locks_rust.rs`; each says what it counts and
//! prints). The workload's own figures are the truth. stacktop's are read through its report as a user reads
//! them (`report --locks`, `--weight lock-wait|lock-hold`, `--lock`, `--callers`), and through the library's
//! locks view (`Profile::lock_rows`, which the report prints) where exact figures are compared.
//!
//! A recording without lock waits fails with "no lock waits", not with a share that happens to be zero.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::locks_workloads::*;

/// `record --locks -- locks_table`, made once per test run and shared by the tests that read it.
fn recorded_table() -> LockRun {
    static RUN: OnceLock<Mutex<Option<LockRun>>> = OnceLock::new();
    let run = RUN.get_or_init(Default::default);
    let mut run = run.lock().unwrap_or_else(|e| e.into_inner());
    run.get_or_insert_with(|| {
        record_launched("locks_table", &["--locks"], &locks_table(), &[SECONDS])
    })
    .clone()
}

/// Acceptance 1: `record --locks -- locks_table`.
pub fn c_workload_locks_ranked_named_timed_and_charged() {
    if !perf_available() || !root_or_skip("probes (uprobes)") {
        return;
    }
    check_table(&recorded_table(), "table_lock");
}

/// Acceptance 2: the same, attached with `-p` to the running workload (inside its measurement window).
pub fn attached_with_p_the_same() {
    if !perf_available() || !root_or_skip("probes (uprobes)") {
        return;
    }
    check_table(&record_in_window("locks_table_attached"), "table_lock");
}

/// The locks ranked as the workload measured them, `table` (table_lock's label: its name, or its address in
/// a stripped build) first and named in the report; its total wait within 10% of the workload's; the waiters'
/// split within 5 points; slow_update's share of the waits it caused within 10 points.
fn check_table(run: &LockRun, table: &str) {
    let f = &run.figures;
    let profile = with_locks(&run.file);
    let (_, waits, wait_ns) = f.lock("table_lock");
    let (_, stats_waits, stats_ns) = f.lock("stats_lock");
    assert!(
        wait_ns > 20 * stats_ns.max(1) && stats_waits > 0,
        "the workload did not contend as built: table_lock {:.1} ms in {waits} waits, stats_lock {:.1} ms in \
         {stats_waits}",
        ms(wait_ns),
        ms(stats_ns)
    );
    let row = lock_row(&profile, table);
    let stats = if table == "table_lock" {
        "stats_lock".to_owned()
    } else {
        f.lock("stats_lock").0
    };
    eprintln!(
        "{table}: stacktop {:.1} ms in {} contentions, the workload {:.1} ms in {waits} waits; stats_lock: \
         stacktop {:.1} ms, the workload {:.1} ms; lock stats {:?}",
        ms(row.delay),
        row.contentions,
        ms(wait_ns),
        profile
            .lock_rows()
            .iter()
            .find(|r| profile.lock_label(r.lock) == stats)
            .map_or(0.0, |r| ms(r.delay)),
        ms(stats_ns),
        profile.meta.locks
    );
    assert!(
        row.contentions >= 300,
        "only {} contentions",
        row.contentions
    );
    let off = (row.contentions as f64 - waits as f64).abs() * 100.0 / waits as f64;
    assert!(
        off <= 10.0,
        "{table}: stacktop counts {} contentions, the workload {waits} waits: {off:.1}% apart (at most 10%)",
        row.contentions
    );
    let off = (row.delay as f64 - wait_ns as f64).abs() * 100.0 / wait_ns as f64;
    assert!(
        off <= 10.0,
        "{table}'s total wait: stacktop {:.1} ms, the workload {:.1} ms: {off:.1}% apart (at most 10%)",
        ms(row.delay),
        ms(wait_ns)
    );

    // The report's locks view: table_lock first, named, with its total wait; stats_lock after it.
    let text = report(&run.file, &["--locks"]);
    let lines = lock_lines(&text, &[table, &stats]);
    assert!(
        lines.first().is_some_and(|(label, _)| label == table),
        "{table} is not the first lock of `report --locks`:\n{text}"
    );
    assert!(
        lines.iter().any(|(label, _)| *label == stats),
        "no row for {stats} in `report --locks`:\n{text}"
    );
    let total = ms(row.delay);
    assert!(
        numbers(lines[0].1)
            .iter()
            .any(|n| (n - total).abs() <= total * 0.01 + 0.1),
        "{table}'s row does not show its total wait of {total:.1} ms:\n{}",
        lines[0].1
    );

    // Who waited: pthread_mutex_lock's callers, weighed by wait, on table_lock alone.
    let tree = report(
        &run.file,
        &[
            "--weight",
            "lock-wait",
            "--lock",
            table,
            "--callers",
            "pthread_mutex_lock",
        ],
    );
    let callers = direct_callers(&tree);
    let named = |function: &str| stripped_name(table, function);
    for function in ["reader_often", "reader_rarely", "fast_lookup"] {
        let ours = caller_share(&callers, &named(function));
        let theirs = f.wait_share("table_lock", function);
        eprintln!("{function}: stacktop {ours:.2}% of {table}'s wait, the workload {theirs:.2}%");
        assert_near(
            &format!("{function}'s share of the wait for {table}"),
            ours,
            theirs,
            5.0,
        );
    }

    // Who caused the waits: slow_update's share of the wait charged to the releasers.
    let slow = named("slow_update");
    let tree = report(
        &run.file,
        &["--weight", "lock-hold", "--lock", table, "--callers", &slow],
    );
    let (_, ours) = callers_header(&tree, &slow);
    let theirs = f.caused_share("table_lock", "slow_update");
    eprintln!("slow_update: stacktop {ours:.2}% of the caused wait, the workload {theirs:.2}%");
    assert_near(
        "slow_update's share of the wait charged to holders",
        ours,
        theirs,
        10.0,
    );
}

/// `function` as the report names it: by name, or in a stripped build (its lock then labelled by address)
/// by where its unwind-table entry starts, which is where the unstripped build's symbol starts (a PIE: the
/// address stated in the file is its file offset).
fn stripped_name(table: &str, function: &str) -> String {
    if table == "table_lock" {
        return function.to_owned();
    }
    let (start, _) = function_symbol(&locks_table(), function);
    format!("[unknown] locks_table+{start:#x} (fde)")
}

/// Acceptance 3: a Rust `std::sync::Mutex`: the lock found (named by its static's symbol) and the waiters'
/// split within 5 points of the workload's.
pub fn rust_mutex_found_and_waiters_split() {
    if !perf_available() || !root_or_skip("probes (uprobes)") || !tool_available("rustc") {
        return;
    }
    let run = record_launched("locks_rust", &["--locks"], &locks_rust(), &[SECONDS]);
    let f = &run.figures;
    let profile = with_locks(&run.file);
    let (address, waits, wait_ns) = f.lock("TABLE");
    let rows = profile.lock_rows();
    let first = rows.first().expect("a lock row");
    let label = profile.lock_label(first.lock);
    let lock = profile.lock(first.lock).expect("lock");
    eprintln!(
        "rust: {label} at {:#x}: stacktop {:.1} ms in {} contentions, the workload {:.1} ms in {waits} waits \
         at {address}",
        lock.address,
        ms(first.delay),
        first.contentions,
        ms(wait_ns)
    );
    assert_eq!(
        format!("{:#x}", lock.address),
        address,
        "the most waited lock is not the workload's mutex"
    );
    assert!(
        label.contains("TABLE"),
        "the lock is not named by its static: {label}"
    );
    assert!(
        first.contentions >= 300,
        "only {} contentions",
        first.contentions
    );
    let text = report(&run.file, &["--locks"]);
    assert!(
        lock_lines(&text, &[&label])
            .first()
            .is_some_and(|(l, _)| *l == label),
        "{label} is not the first lock of `report --locks`:\n{text}"
    );
    let total: f64 = ["take_often", "take_rarely"]
        .iter()
        .map(|c| f.wait_share("TABLE", c))
        .sum();
    assert!(total > 90.0, "the waiters waited {total:.1}% of the time");
    for function in ["take_often", "take_rarely"] {
        let sym = format!("locks_rust::{function}");
        let tree = report(
            &run.file,
            &["--weight", "lock-wait", "--lock", &label, "--callers", &sym],
        );
        let (_, ours) = callers_header(&tree, &sym);
        let theirs = f.wait_share("TABLE", function);
        eprintln!("{function}: stacktop {ours:.2}% of the wait, the workload {theirs:.2}%");
        assert_near(
            &format!("{function}'s share of the wait"),
            ours,
            theirs,
            5.0,
        );
    }
}

/// Acceptance 4: a stripped copy of the C workload: the lock shown by its address, the waiters still named
/// (pthread_mutex_lock through libc's debug symbols, the workload's own functions by their unwind-table
/// entries), with the same figures as acceptance 1.
pub fn stripped_copy_lock_by_address_waiters_named() {
    if !perf_available() || !root_or_skip("probes (uprobes)") || !tool_available("strip") {
        return;
    }
    let dir = scratch_file("stripped");
    std::fs::create_dir_all(&dir).unwrap();
    let stripped = dir.join("locks_table");
    std::fs::copy(locks_table(), &stripped).unwrap();
    run(Command::new("strip").arg(&stripped));
    let run = record_launched("locks_table_stripped", &["--locks"], &stripped, &[SECONDS]);
    let (address, _, _) = run.figures.lock("table_lock");
    let profile = with_locks(&run.file);
    assert!(
        profile
            .lock_rows()
            .iter()
            .all(|r| profile.lock_label(r.lock).starts_with("0x")),
        "a lock of the stripped build has a name: {:?}",
        profile
            .lock_rows()
            .iter()
            .map(|r| profile.lock_label(r.lock))
            .collect::<Vec<_>>()
    );
    check_table(&run, &address);
}

/// Acceptance 5: no uprobe PMU (hidden here by an empty file system mounted over its sysfs directory, in a
/// mount namespace of the test's own): one line and exit status 1.
pub fn without_the_uprobe_pmu_one_line() {
    if !perf_available() || !root_or_skip("mounting over sysfs") || !tool_available("unshare") {
        return;
    }
    let bin = locks_table();
    let file = scratch_file("locks_no_pmu.pb.gz");
    let pmu = std::fs::canonicalize("/sys/bus/event_source/devices/uprobe");
    let script = match &pmu {
        Ok(dir) => format!(r#"mount -t tmpfs tmpfs "{}" && exec "$@""#, dir.display()),
        Err(_) => r#"exec "$@""#.to_owned(),
    };
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script, "sh"])
        .arg(stacktop_bin())
        .args(["record", "--locks", "-e", "cpu-clock", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .arg("0.5")
        .output()
        .unwrap();
    assert_one_line_error(&out, &["uprobe"]);
}

/// Acceptance 5: a libc whose symbols cannot be found (a copy without its build-id note and debug link, so
/// libc6-dbg's file is not its): one line naming the fallback and exit status 1, attached and launched; the
/// fallback asked for (`--locks=pthread`) finds table_lock.
pub fn libc_without_symbols_one_line_or_the_fallback() {
    if !perf_available() || !root_or_skip("probes (uprobes)") || !tool_available("objcopy") {
        return;
    }
    let bin = locks_table();
    let dir = scratch_file("libc_nosyms");
    std::fs::create_dir_all(&dir).unwrap();
    let system_libc = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libc.so.6"))
        .expect("the test runs on glibc")
        .to_owned();
    run(Command::new("objcopy")
        .args([
            "--remove-section=.note.gnu.build-id",
            "--remove-section=.gnu_debuglink",
            &system_libc,
        ])
        .arg(dir.join("libc.so.6")));

    // Launched: stacktop's environment is the command's.
    let file = scratch_file("locks_nosyms.pb.gz");
    let out = stacktop(&["record", "--locks", "-e", "cpu-clock", "-o"])
        .arg(&file)
        .arg("--")
        .arg(&bin)
        .arg("0.5")
        .env("LD_LIBRARY_PATH", &dir)
        .output()
        .unwrap();
    assert_one_line_error(&out, &["--locks=pthread"]);

    // Attached.
    let target = Target::spawn(Command::new(&bin).arg("6").env("LD_LIBRARY_PATH", &dir));
    let pid = target.pid().to_string();
    wait_for_copy(&pid, &dir);
    let out = stacktop(&["record", "--locks", "-e", "cpu-clock", "--duration", "1"])
        .args(["-p", &pid, "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert_one_line_error(&out, &["--locks=pthread"]);

    // The fallback, asked for.
    let out = stacktop(&[
        "record",
        "--locks=pthread",
        "-e",
        "cpu-clock",
        "--duration",
        "1",
    ])
    .args(["-p", &pid, "-o"])
    .arg(&file)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "record --locks=pthread failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile = with_locks(&file);
    let rows = profile.lock_rows();
    assert!(
        rows.first()
            .is_some_and(|r| profile.lock_label(r.lock) == "table_lock"),
        "--locks=pthread: table_lock is not the most waited lock: {:?}",
        rows.iter()
            .map(|r| (profile.lock_label(r.lock), r.delay))
            .collect::<Vec<_>>()
    );
}

/// Waits until process `pid` has mapped the libc of `dir`.
fn wait_for_copy(pid: &str, dir: &Path) {
    let want = dir.join("libc.so.6").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains(&want)) {
        assert!(Instant::now() < deadline, "{pid} did not map {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Acceptance 5: stacktop killed with SIGKILL in the middle of a recording leaves no probe behind: the
/// breakpoints in the target's libc (read through /proc/PID/mem) are gone once stacktop is, and the target
/// runs on to its normal end.
pub fn sigkill_leaves_no_probe_behind() {
    if !perf_available() || !root_or_skip("probes (uprobes)") {
        return;
    }
    let target = Target::spawn(Command::new(locks_table()).arg("4"));
    let pid = target.pid();
    let probes = [
        LibcFunction::find(pid, "__lll_lock_wait"),
        LibcFunction::find(pid, "__lll_lock_wake"),
    ];
    wait_unprobed(pid, &probes);
    let (mut recorder, _) = spawn_attached("locks_killed", &["--locks"], pid);
    wait_probed(pid, &probes, &mut recorder);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        probes.iter().all(|p| p.probed(pid)),
        "the probes went away while stacktop ran"
    );
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while probes.iter().any(|p| p.probed(pid)) {
        assert!(
            Instant::now() < deadline,
            "2 s after stacktop was killed, breakpoints are still in {:?} (stacktop processes now: {})",
            probes
                .iter()
                .filter(|p| p.probed(pid))
                .map(|p| (&p.name, p.memory(pid)))
                .collect::<Vec<_>>(),
            other_stacktops()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // And they stay gone while the target goes on taking its locks.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        for p in &probes {
            assert_eq!(
                p.memory(pid),
                p.file_bytes,
                "{} changed again after stacktop was killed (stacktop processes now: {})",
                p.name,
                other_stacktops()
            );
        }
    }
    let figures = target.finish(Duration::from_secs(60));
    let (_, waits, _) = figures.lock("table_lock");
    assert!(waits > 100, "the target waited only {waits} times");
}

/// Placing probes needs root or CAP_PERFMON: without, one line and exit status 1.
pub fn unprivileged_one_line() {
    if !perf_available() || !root_or_skip("changing user") || !tool_available("setpriv") {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(stacktop_bin())
        .args(["record", "--locks", "-e", "cpu-clock", "-o"])
        .arg("/tmp/stacktop-locks-denied.pb.gz")
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        ["root", "CAP_PERFMON", "CAP_SYS_ADMIN"]
            .iter()
            .any(|w| stderr.contains(w)),
        "the error does not say what rights are needed: {stderr}"
    );
}

/// Acceptance 6: the probes leave stacks walkable: the off-CPU callers of pthread_mutex_lock, recorded with
/// and without --locks on the same workload, agree within 5 points, and as much of the workload's waiting is
/// found under them.
pub fn off_cpu_callers_the_same_with_and_without_locks() {
    if !perf_available() || !root_or_skip("probes (uprobes)") {
        return;
    }
    let with = recorded_table();
    let without = record_launched("locks_table_nolocks", &[], &locks_table(), &[SECONDS]);
    let look = |run: &LockRun| {
        let tree = report(
            &run.file,
            &["--weight", "off-cpu", "--callers", "pthread_mutex_lock"],
        );
        let (found, _) = callers_header(&tree, "pthread_mutex_lock");
        let waited = run.figures.lock("table_lock").2 + run.figures.lock("stats_lock").2;
        (direct_callers(&tree), found * 100.0 / ms(waited), tree)
    };
    let (callers_with, found_with, tree_with) = look(&with);
    let (callers_without, found_without, tree_without) = look(&without);
    eprintln!(
        "off-CPU under pthread_mutex_lock: {found_with:.1}% of the workload's wait with --locks, \
         {found_without:.1}% without"
    );
    assert!(
        (found_with - found_without).abs() <= 10.0,
        "off-CPU time found under pthread_mutex_lock: {found_with:.1}% of the wait with --locks, \
         {found_without:.1}% without:\n{tree_with}\n{tree_without}"
    );
    for function in ["reader_often", "reader_rarely", "fast_lookup"] {
        let (a, b) = (
            caller_share(&callers_with, function),
            caller_share(&callers_without, function),
        );
        eprintln!("{function}: {a:.2}% with --locks, {b:.2}% without");
        assert_near(
            &format!("{function}'s off-CPU share with --locks against without"),
            a,
            b,
            5.0,
        );
    }
}

crate::tests![
    c_workload_locks_ranked_named_timed_and_charged,
    attached_with_p_the_same,
    rust_mutex_found_and_waiters_split,
    stripped_copy_lock_by_address_waiters_named,
    without_the_uprobe_pmu_one_line,
    libc_without_symbols_one_line_or_the_fallback,
    sigkill_leaves_no_probe_behind,
    unprivileged_one_line,
    off_cpu_callers_the_same_with_and_without_locks,
];
