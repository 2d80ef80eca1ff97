//! What already runs: threads, names and executable mappings from `/proc`, turned into the same records
//! the kernel sends for things that happen later.

use std::fs;
use std::io;

use super::record::{MmapRecord, Record};

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    pub start: u64,
    pub end: u64,
    pub executable: bool,
    pub pgoff: u64,
    pub dev: u64,
    pub inode: u64,
    pub path: String,
}

/// Parses `/proc/PID/maps` text; malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<MapsEntry> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<MapsEntry> {
    // 55d0c0a00000-55d0c0a02000 r-xp 00002000 08:01 1234    /usr/bin/cat
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        f
    };
    let range = field();
    let perms = field();
    let offset = field();
    let dev = field();
    let inode = field();
    let path = rest.trim_start();
    let (start, end) = range.split_once('-')?;
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    Some(MapsEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        pgoff: u64::from_str_radix(offset, 16).ok()?,
        dev: libc::makedev(major, minor),
        inode: inode.parse().ok()?,
        // The kernel names anonymous executable memory (JIT code) `//anon` in its mmap records.
        path: if path.is_empty() {
            "//anon".to_owned()
        } else {
            path.to_owned()
        },
    })
}

/// Thread ids of a process (`/proc/PID/task`).
pub(crate) fn tasks(pid: u32) -> io::Result<Vec<u32>> {
    let mut tids: Vec<u32> = fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// All process ids (`/proc/[0-9]*`).
pub(crate) fn pids() -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The process (thread group) a thread belongs to.
pub(crate) fn tgid(tid: u32) -> io::Result<u32> {
    let status = fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Tgid in status"))
}

/// What `/proc/ID/stat` says of a process or thread that a user named with `-p` or `-t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// Runs user code: something to sample.
    User,
    /// Has exited and waits for its parent to reap it.
    Zombie,
    /// A kernel thread (`PF_KTHREAD`): it has no user space, and its own counters would see almost nothing.
    Kernel,
}

/// `PF_KTHREAD` in the flags field of `/proc/ID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

/// Reads `/proc/ID/stat` (`None`: no such task).
pub(crate) fn task(id: u32) -> Option<Task> {
    let stat = fs::read_to_string(format!("/proc/{id}/stat")).ok()?;
    match parse_task(&stat) {
        // A process whose main thread ended while others run shows that thread as a zombie.
        Task::Zombie if tasks(id).is_ok_and(|t| t.iter().any(|&t| t != id && is_alive(t))) => {
            Some(Task::User)
        }
        task => Some(task),
    }
}

fn parse_task(stat: &str) -> Task {
    // "pid (comm) S ppid pgrp session tty tpgid flags ..." — comm may hold spaces and parens, so the fields
    // are counted from the last ')'.
    let mut fields = stat
        .rfind(')')
        .map_or("", |i| &stat[i + 1..])
        .split_whitespace();
    let state = fields.next().unwrap_or("");
    let flags: u64 = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
    if state.starts_with(['Z', 'X']) {
        Task::Zombie
    } else if flags & PF_KTHREAD != 0 {
        Task::Kernel
    } else {
        Task::User
    }
}

/// Whether the process or thread still runs (exists and is not a zombie).
pub(crate) fn is_alive(id: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{id}/stat")) else {
        return false;
    };
    !matches!(parse_state(&stat), Some('Z' | 'X') | None)
}

/// Whether thread `tid` of `pid` is runnable (`R`: on a CPU or waiting for one) rather than asleep (`S`, `D`, a
/// stop...), from its `/proc/PID/task/TID/stat`; `None` when it is gone.
pub(crate) fn is_runnable(pid: u32, tid: u32) -> Option<bool> {
    let stat = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_state(&stat).map(|state| state == 'R')
}

/// The state letter of a `/proc/.../stat` line ("pid (comm) S ..."; comm may hold spaces and parens).
fn parse_state(stat: &str) -> Option<char> {
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
}

fn comm(pid: u32, tid: u32) -> Option<String> {
    let name = fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
    Some(name.trim_end_matches('\n').to_owned())
}

/// `Comm` records for the given threads of `pid` and `Mmap` records for its executable mappings, stamped
/// `time`. A process that vanished meanwhile yields what could still be read.
pub(crate) fn synthesize(pid: u32, tids: &[u32], time: u64, out: &mut Vec<Record>) {
    for &tid in tids {
        if let Some(name) = comm(pid, tid) {
            out.push(Record::Comm {
                pid,
                tid,
                time,
                name,
                exec: false,
            });
        }
    }
    let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return;
    };
    for m in parse_maps(&maps).into_iter().filter(|m| m.executable) {
        out.push(Record::Mmap(MmapRecord {
            pid,
            tid: pid,
            time,
            start: m.start,
            len: m.end.saturating_sub(m.start),
            pgoff: m.pgoff,
            path: m.path,
            build_id: None,
            executable: true,
            dev: m.dev,
            inode: m.inode,
        }));
    }
}

/// `kernel.perf_event_paranoid` as text, for error messages.
pub(crate) fn paranoid() -> String {
    fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `kernel.perf_event_max_sample_rate`, the highest frequency the kernel accepts (it lowers it itself
/// when sampling takes too long).
pub(crate) fn max_sample_rate() -> Option<u64> {
    fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// `kernel.perf_event_max_stack` (127 unless changed).
pub(crate) fn max_stack() -> u16 {
    fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(127)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_after_the_last_parenthesis() {
        assert_eq!(parse_state("12 (a) b) R 1 2"), Some('R'));
        assert_eq!(parse_state("12 (sleep) S 1"), Some('S'));
        assert_eq!(parse_state("12 (x"), None);
        assert_eq!(parse_state("12 (x)"), None);
    }

    #[test]
    fn parses_maps_lines() {
        let text = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234                       /usr/bin/cat
55d0c0a02000-55d0c0a07000 r-xp 00002000 08:01 1234                       /usr/bin/my prog (deleted)
7ffd1c3f0000-7ffd1c3f2000 r-xp 00000000 00:00 0                          [vdso]
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
garbage line
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 4);
        assert!(!maps[0].executable);
        assert_eq!(
            maps[1],
            MapsEntry {
                start: 0x55d0c0a02000,
                end: 0x55d0c0a07000,
                executable: true,
                pgoff: 0x2000,
                dev: libc::makedev(8, 1),
                inode: 1234,
                path: "/usr/bin/my prog (deleted)".into(),
            }
        );
        assert_eq!(maps[2].path, "[vdso]");
        assert_eq!(maps[3].path, "//anon");
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(is_alive(pid));
        let tids = tasks(pid).unwrap();
        assert!(tids.contains(&pid));
        assert_eq!(tgid(pid).unwrap(), pid);
        let mut out = vec![];
        synthesize(pid, &[pid], 0, &mut out);
        assert!(out.iter().any(|r| matches!(r, Record::Comm { .. })));
        assert!(out
            .iter()
            .any(|r| matches!(r, Record::Mmap(m) if m.executable)));
    }

    #[test]
    fn tasks_told_apart_by_state_and_flags() {
        assert_eq!(
            parse_task("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0"),
            Task::Kernel
        );
        assert_eq!(
            parse_task("77 (a) b) c) Z 1 77 77 0 -1 4194572 0 0"),
            Task::Zombie
        );
        assert_eq!(
            parse_task("1 (systemd) S 0 1 1 0 -1 4194560 0 0"),
            Task::User
        );
        assert_eq!(parse_task("garbage"), Task::User);
    }
}
