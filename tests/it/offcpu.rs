//! Off-CPU time (issue 13's acceptance items 1 to 4 and 6): where threads wait, on workloads whose truth is
//! known by construction and measured by the workloads themselves with `clock_gettime` (`assets/offcpu_*.c`;
//! each says what it prints). The workload's own figures are the truth; stacktop's are read back from the
//! recorded pprof file through the library (`Profile::weigh` projects it onto one view), with a light look at
//! the report's text where the issue asks for it.
//!
//! Off-CPU recording is on by default for `stacktop record -- CMD`. A recording without switch samples fails
//! with "no off-CPU samples", not with a share that happens to be zero. Each test records (or reuses the run's
//! recording of) its workload, then hands it to a `check_*` function that asserts on it.

use stacktop::profile::{Profile, Weigh};

use crate::common::*;
use crate::offcpu_workloads::*;

/// Acceptance 1: one thread alternates nap_long (30 ms) and nap_short (10 ms).
pub fn sleep_naps_split_3_to_1_and_total_matches_the_workload() {
    if !perf_available() {
        return;
    }
    let rec = recorded(SLEEP);
    check_sleep(&rec, &with_off_cpu(&rec.file));
}

/// The naps' off-CPU split within 3 points of the workload's (and of 3:1), the thread's off-CPU total within
/// 5% of its time asleep.
pub fn check_sleep(rec: &Recording, profile: &Profile) {
    let sleeper = rec.printed.thread("sleeper");
    let measured = |key: &str| rec.printed.num("sleep", ("", ""), key);
    let (long, short, asleep, naps) = (
        measured("nap_long_ns"),
        measured("nap_short_ns"),
        measured("asleep_ns"),
        measured("naps"),
    );
    let off = weighed(profile, Weigh::OffCpu);
    let tids = [sleeper.tid];
    let (ours_long, ours_short) = (
        under(&off, "nap_long", &tids),
        under(&off, "nap_short", &tids),
    );
    // Each nap switches out at least once (the last may be cut by the exit).
    assert!(
        ours_long.count + ours_short.count + 2 >= naps,
        "{} + {} switch-outs under the naps for {naps} naps",
        ours_long.count,
        ours_short.count
    );
    let theirs = share(long, long + short);
    let ours = share(ours_long.period, ours_long.period + ours_short.period);
    eprintln!(
        "nap_long: stacktop {ours:.2}% of {:.1} ms, the workload {theirs:.2}% of {:.1} ms",
        ms(ours_long.period + ours_short.period),
        ms(long + short)
    );
    assert_near(
        "nap_long's share of the naps' off-CPU time",
        ours,
        theirs,
        3.0,
    );
    assert_near("nap_long's share, by construction", ours, 75.0, 3.0);
    let total = thread_values(profile, sleeper.tid);
    assert_within(
        "the sleeping thread's off-CPU time against its time asleep",
        total.blocked + total.runnable,
        asleep,
        5.0,
    );
}

/// Acceptance 2: waiters take a contended mutex through wait_often and wait_rarely.
pub fn lock_waiters_callers_match_the_workload_and_fp_is_wrong() {
    if !perf_available() {
        return;
    }
    let rec = recorded(LOCK);
    check_lock(&rec, &with_off_cpu(&rec.file));
    check_lock_report(&rec);
    let fp = record_workload("offcpu_lock_fp", (LOCK.0, "1.5"), &["--call-graph", "fp"]);
    check_lock_fp(&fp, &with_off_cpu(&fp.file));
}

/// The off-CPU split of pthread_mutex_lock's callers within 5 points of the workload's, their total within
/// 10%; the CPU view of the same run charges it to another function.
pub fn check_lock(rec: &Recording, profile: &Profile) {
    let measured = |caller: &str| rec.printed.num("lock", ("caller", caller), "lock_ns");
    let (often, rarely) = (measured("wait_often"), measured("wait_rarely"));
    let off = weighed(profile, Weigh::OffCpu);
    let by_caller = callers(&off, "pthread_mutex_lock", &[]);
    let get = |c: &str| by_caller.get(c).copied().unwrap_or_default();
    let (ours_often, ours_rarely) = (get("wait_often"), get("wait_rarely"));
    let ours_total = ours_often.period + ours_rarely.period;
    eprintln!(
        "wait_often: stacktop {:.2}% of {:.1} ms ({} switch-outs), the workload {:.2}% of {:.1} ms",
        share(ours_often.period, ours_total),
        ms(ours_total),
        ours_often.count + ours_rarely.count,
        share(often, often + rarely),
        ms(often + rarely)
    );
    assert!(
        ours_often.count + ours_rarely.count >= 300,
        "only {} switch-outs under pthread_mutex_lock's callers: {by_caller:?}",
        ours_often.count + ours_rarely.count
    );
    assert_near(
        "wait_often's share of the off-CPU time in pthread_mutex_lock",
        share(ours_often.period, ours_total),
        share(often, often + rarely),
        5.0,
    );
    assert_within(
        "off-CPU time in pthread_mutex_lock under its two callers",
        ours_total,
        often + rarely,
        10.0,
    );

    // The CPU view of the same run tells another story: the CPU time is the holder's spinning in hold_lock,
    // and pthread_mutex_lock, where the waiters spent most of their time, is next to nothing in it.
    let cpu = weighed(profile, Weigh::Cpu);
    let cpu_total = cpu.total_period();
    let cpu_lock = share(under(&cpu, "pthread_mutex_lock", &[]).period, cpu_total);
    let cpu_hold = share(under(&cpu, "hold_lock", &[]).period, cpu_total);
    let off_lock = share(
        under(&off, "pthread_mutex_lock", &[]).period,
        off.total_period(),
    );
    let story = format!(
        "CPU view: hold_lock {cpu_hold:.1}%, pthread_mutex_lock {cpu_lock:.1}% of {:.0} ms of CPU; \
         off-CPU view: pthread_mutex_lock {off_lock:.1}% of {:.0} ms off CPU",
        ms(cpu_total),
        ms(off.total_period())
    );
    eprintln!("{story}");
    assert!(
        cpu_hold > 80.0 && cpu_lock < 5.0 && off_lock > 30.0,
        "the CPU view should charge the run to the holder spinning in hold_lock and hardly anything to \
         pthread_mutex_lock, the off-CPU view a large part to pthread_mutex_lock: {story}"
    );
}

/// The report answers "which of my callers waited for this lock, and how long", in ms and percent.
fn check_lock_report(rec: &Recording) {
    let tree = stdout_of(
        stacktop(&[
            "report",
            "--weight",
            "off-cpu",
            "--callers",
            "pthread_mutex_lock",
            "-i",
        ])
        .arg(&rec.file),
    );
    assert!(tree.contains("ms"), "no milliseconds in:\n{tree}");
    assert!(
        caller_line(&tree, "wait_often") < caller_line(&tree, "wait_rarely"),
        "wait_often is not listed first:\n{tree}"
    );
}

/// Frame pointers: the waiters' chains through libc's frameless lock path skip pthread_mutex_lock and its
/// caller, so under a fifth of the time the workload measured in the lock is found under its callers. The
/// time is recorded all the same (at least 90% of it), charged to the wrong stacks.
pub fn check_lock_fp(fp: &Recording, profile: &Profile) {
    let measured = |caller: &str| fp.printed.num("lock", ("caller", caller), "lock_ns");
    let truth = measured("wait_often") + measured("wait_rarely");
    let off = weighed(profile, Weigh::OffCpu);
    let by_caller = callers(&off, "pthread_mutex_lock", &[]);
    let found: u64 = ["wait_often", "wait_rarely"]
        .iter()
        .filter_map(|c| by_caller.get(*c))
        .map(|w| w.period)
        .sum();
    eprintln!(
        "fp: {:.1} ms under pthread_mutex_lock's callers of the {:.1} ms the workload measured",
        ms(found),
        ms(truth)
    );
    assert!(
        share(found, truth) < 20.0,
        "fp mode unexpectedly found pthread_mutex_lock's callers: {:.1} ms of the {:.1} ms the workload \
         measured; by caller: {by_caller:?}",
        ms(found),
        ms(truth)
    );
    let waited: u64 = fp
        .printed
        .threads()
        .iter()
        .filter(|t| t.role == "waiter")
        .map(|t| {
            let v = thread_values(profile, t.tid);
            v.blocked + v.runnable
        })
        .sum();
    assert!(
        waited >= truth * 9 / 10,
        "fp mode lost the waiters' off-CPU time itself ({:.1} ms for {:.1} ms in the lock)",
        ms(waited),
        ms(truth)
    );
}

/// Acceptance 3: per thread, the sampled CPU time against the thread's CPU clock, and CPU + blocked +
/// runnable against its elapsed time, on the three workloads (every thread of each lives from the start of
/// the run to its end).
pub fn per_thread_cpu_and_wall_match_the_threads_own_clocks() {
    if !perf_available() {
        return;
    }
    let recs: Vec<(Recording, Profile)> = [SLEEP, LOCK, BUSY]
        .into_iter()
        .map(|w| {
            let rec = recorded(w);
            let profile = with_off_cpu(&rec.file);
            (rec, profile)
        })
        .collect();
    check_threads(&recs);
}

/// Per thread: CPU within 5% of its CPU clock, CPU + blocked + runnable within 5% of its elapsed time.
///
/// The CPU check applies to threads with at least 200 ms of CPU. A sampler does not see the kernel's switch
/// path, which the thread's CPU clock counts (no sampling event is on during it): about 4 us a switch here,
/// which is 40% of a lock waiter's 20 ms of CPU over 2000 switch-outs. Below that, the sampled CPU time must
/// not exceed the clock by more than 5% and two sampling periods (in a virtual machine the sampling clock runs
/// on through time stolen by the host, which the thread's clock leaves out: up to 1% more seen here).
pub fn check_threads(recs: &[(Recording, Profile)]) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (rec, profile) in recs {
        assert_eq!(profile.meta.period_unit, "nanoseconds");
        let period = 1_000_000_000 / profile.meta.frequency.max(1);
        for t in rec.printed.threads() {
            let v = thread_values(profile, t.tid);
            let wall = v.period + v.blocked + v.runnable;
            let line = format!(
                "{} {} (tid {}): CPU {:.1} ms (its clock {:.1} ms), blocked {:.1} ms, runnable {:.1} ms, \
                 wall {:.1} ms (elapsed {:.1} ms)",
                rec.file.display(),
                t.role,
                t.tid,
                ms(v.period),
                ms(t.cpu_ns),
                ms(v.blocked),
                ms(v.runnable),
                ms(wall),
                ms(t.elapsed_ns)
            );
            eprintln!("{line}");
            let cpu_off = (v.period as f64 - t.cpu_ns as f64).abs();
            if t.cpu_ns >= 200_000_000 && cpu_off > t.cpu_ns as f64 * 0.05 {
                failures.push(format!("CPU not within 5%: {line}"));
            }
            // Three periods of slack: a thread of a few ms of CPU whose wakeups line up with the timer catches
            // a tick more (5 samples against a 2.7 ms clock, seen once under load).
            if v.period > t.cpu_ns + t.cpu_ns / 20 + 3 * period {
                failures.push(format!("more CPU than the thread's clock: {line}"));
            }
            if (wall as f64 - t.elapsed_ns as f64).abs() > t.elapsed_ns as f64 * 0.05 {
                failures.push(format!("wall not within 5% of elapsed: {line}"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} threads checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Acceptance 4: four CPU-bound threads on two CPUs wait runnable, in their own functions; a sleeping
/// thread waits blocked.
pub fn busy_threads_wait_runnable_and_the_sleeper_blocked() {
    if !perf_available() {
        return;
    }
    let rec = recorded(BUSY);
    check_busy(&rec, &with_off_cpu(&rec.file));
}

/// The four busy threads: together off CPU at least two fifths of their time; each switched out at least 20
/// times, at least 90% of its off-CPU time runnable, at least 90% of that under its spin function. The sleeper: at least 95% of its off-CPU time blocked, within 5% of its
/// time asleep, at least 90% of it under doze.
pub fn check_busy(rec: &Recording, profile: &Profile) {
    let cpus = rec.printed.num("busy", ("", ""), "cpus");
    assert!(
        (1..=2).contains(&cpus),
        "the workload did not pin itself to two CPUs"
    );
    let runnable = weighed(profile, Weigh::Runnable);
    let blocked = weighed(profile, Weigh::Blocked);
    let (mut off_all, mut elapsed_all) = (0, 0);
    for spin in ["spin_a", "spin_b", "spin_c", "spin_d"] {
        let t = rec.printed.thread(spin);
        let v = thread_values(profile, t.tid);
        let off = v.blocked + v.runnable;
        let what = format!(
            "{spin} (tid {}): {} switch-outs, runnable {:.1} ms, blocked {:.1} ms, CPU clock {:.1} ms of \
             {:.1} ms",
            t.tid,
            v.switches,
            ms(v.runnable),
            ms(v.blocked),
            ms(t.cpu_ns),
            ms(t.elapsed_ns)
        );
        eprintln!("{what}");
        // Four threads on two CPUs: together off CPU about half of the time. One thread alone may keep a
        // CPU most of the run while the other three share the other (3:1, 1269 ms of 1491 ms seen once in
        // CI), so each must only have been switched out often; the share is checked for the four below.
        assert!(v.switches >= 20, "a busy thread hardly waited: {what}");
        off_all += off;
        elapsed_all += t.elapsed_ns;
        assert!(
            v.runnable * 10 >= off * 9,
            "a busy thread's off-CPU time is not mostly runnable: {what}"
        );
        let in_spin = under(&runnable, spin, &[t.tid]).period;
        assert!(
            in_spin * 10 >= v.runnable * 9,
            "{spin}'s runnable time is not charged to {spin}: {:.1} ms of {:.1} ms",
            ms(in_spin),
            ms(v.runnable)
        );
    }
    assert!(
        off_all * 5 >= elapsed_all * 2,
        "four busy threads on two CPUs were off CPU only {:.1} ms of {:.1} ms",
        ms(off_all),
        ms(elapsed_all)
    );
    let t = rec.printed.thread("sleeper");
    let v = thread_values(profile, t.tid);
    let asleep = rec.printed.num("sleep", ("", ""), "asleep_ns");
    let what = format!(
        "sleeper (tid {}): {} switch-outs, blocked {:.1} ms, runnable {:.1} ms, asleep {:.1} ms",
        t.tid,
        v.switches,
        ms(v.blocked),
        ms(v.runnable),
        ms(asleep)
    );
    eprintln!("{what}");
    assert!(
        v.blocked * 20 >= (v.blocked + v.runnable) * 19,
        "the sleeper's off-CPU time is not blocked: {what}"
    );
    assert_within("the sleeper's blocked time", v.blocked, asleep, 5.0);
    let in_doze = under(&blocked, "doze", &[t.tid]).period;
    assert!(
        in_doze * 10 >= v.blocked * 9,
        "the sleeper's blocked time is not charged to doze: {:.1} ms of {:.1} ms",
        ms(in_doze),
        ms(v.blocked)
    );
}

/// Acceptance 6: perf's own switch recording of the lock workload (`--call-graph dwarf`), imported, gives
/// the same callers split.
pub fn perf_data_switch_recording_gives_the_same_callers_split() {
    let Some(rec) = perf_record_switches("offcpu_lock_dwarf", (LOCK.0, "1.5")) else {
        return;
    };
    let converted = scratch_file("offcpu_lock_dwarf.pb.gz");
    run(stacktop(&["convert", "-i"])
        .arg(&rec.file)
        .arg("-o")
        .arg(&converted));
    check_perf_split(&rec, &with_off_cpu(&converted));
    // `report` reads the perf.data file directly the same way.
    let tree = stdout_of(
        stacktop(&[
            "report",
            "--weight",
            "off-cpu",
            "--callers",
            "pthread_mutex_lock",
            "-i",
        ])
        .arg(&rec.file),
    );
    assert!(
        caller_line(&tree, "wait_often") < caller_line(&tree, "wait_rarely"),
        "wait_often is not listed first:\n{tree}"
    );
}

/// The off-CPU split of pthread_mutex_lock's callers within 5 points of the workload's.
pub fn check_perf_split(rec: &Recording, profile: &Profile) {
    let measured = |caller: &str| rec.printed.num("lock", ("caller", caller), "lock_ns");
    let (often, rarely) = (measured("wait_often"), measured("wait_rarely"));
    let off = weighed(profile, Weigh::OffCpu);
    let by_caller = callers(&off, "pthread_mutex_lock", &[]);
    let get = |c: &str| by_caller.get(c).copied().unwrap_or_default();
    let (ours_often, ours_rarely) = (get("wait_often"), get("wait_rarely"));
    let ours_total = ours_often.period + ours_rarely.period;
    eprintln!(
        "perf.data: wait_often {:.2}% of {:.1} ms ({} switch-outs), the workload {:.2}% of {:.1} ms",
        share(ours_often.period, ours_total),
        ms(ours_total),
        ours_often.count + ours_rarely.count,
        share(often, often + rarely),
        ms(often + rarely)
    );
    assert!(
        ours_often.count + ours_rarely.count >= 200,
        "only {} switch-outs under pthread_mutex_lock's callers: {by_caller:?}",
        ours_often.count + ours_rarely.count
    );
    assert_near(
        "wait_often's share of the off-CPU time in pthread_mutex_lock (perf.data)",
        share(ours_often.period, ours_total),
        share(often, often + rarely),
        5.0,
    );
}

crate::tests![
    sleep_naps_split_3_to_1_and_total_matches_the_workload,
    lock_waiters_callers_match_the_workload_and_fp_is_wrong,
    per_thread_cpu_and_wall_match_the_threads_own_clocks,
    busy_threads_wait_runnable_and_the_sleeper_blocked,
    perf_data_switch_recording_gives_the_same_callers_split,
];
