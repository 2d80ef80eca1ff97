//! Output files (`-o` of `record`, `convert` and `flamegraph`) are written whole or not at all, never through a
//! planted symbolic link, and never replace a device; a launched command's fate is stacktop's exit status and
//! it does not outlive a killed stacktop.
//!
//! Several tests need root (device nodes, links owned by another user, mounts in a private namespace): they are
//! skipped elsewhere, and fail instead under `STACKTOP_REQUIRE_PERF=1`.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

/// A small profile file to convert and draw (the render tests' hand-written profile).
fn input() -> PathBuf {
    static INPUT: OnceLock<PathBuf> = OnceLock::new();
    INPUT
        .get_or_init(|| {
            let path = scratch_file("output-input.pb.gz");
            stacktop::format::pprof::write_pprof_file(&crate::render::profile(), &path).unwrap();
            path
        })
        .clone()
}

/// A fresh directory in the scratch area with `mode`.
fn fresh_dir(name: &str, mode: u32) -> PathBuf {
    let dir = scratch_file(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Another user's trick from before: the temporary name was `.NAME.PID.tmp`, beside the output, opened
/// following symlinks. Planted in a world-writable, non-sticky directory (so the kernel's
/// `fs.protected_symlinks` does not step in), it made root overwrite any file.
pub fn a_planted_temporary_name_is_not_followed() {
    let dir = fresh_dir("planted", 0o777);
    let victim = scratch_file("planted-victim");
    std::fs::write(&victim, "precious").unwrap();
    let out = dir.join("out.pb.gz");
    // The shell's pid is stacktop's once it execs, so the name can be planted before stacktop starts.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"sleep 0.5; exec "$0" convert -i "$1" -o "$2""#)
        .arg(stacktop_bin())
        .arg(input())
        .arg(&out)
        .spawn()
        .unwrap();
    let planted = dir.join(format!(".out.pb.gz.{}.tmp", child.id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "convert failed: {status}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    let written = std::fs::symlink_metadata(&out).unwrap();
    assert!(written.file_type().is_file(), "{written:?}");
    // Profiles are private to their owner, as perf.data is.
    assert_eq!(written.permissions().mode() & 0o777, 0o600);
    let report = stdout_of(stacktop(&["report", "--no-children", "-i"]).arg(&out));
    assert!(report.contains("main"), "{report}");
}

/// `-o` itself a symbolic link planted by another user: not followed, for any command that writes.
pub fn a_link_planted_by_another_user_is_refused() {
    if !root_or_skip("planting a link owned by another user") {
        return;
    }
    let dir = fresh_dir("planted-o", 0o777);
    let victim = scratch_file("planted-o-victim");
    std::fs::write(&victim, "precious").unwrap();
    for (cmd, name) in [("flamegraph", "out.svg"), ("convert", "out.folded")] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let out = stacktop(&[cmd, "-i"])
            .arg(input())
            .arg("-o")
            .arg(&link)
            .output()
            .unwrap();
        assert_one_line_error(&out, &["refusing to write through"]);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}

/// A character device (here a node of the test's own for the null and full devices) is written in place,
/// never replaced by a regular file.
pub fn a_device_is_written_in_place_not_replaced() {
    if !root_or_skip("making device nodes") {
        return;
    }
    let dir = fresh_dir("devices", 0o755);
    let null = dir.join("null");
    let full = dir.join("full");
    run(Command::new("mknod").arg(&null).args(["c", "1", "3"]));
    run(Command::new("mknod").arg(&full).args(["c", "1", "7"]));
    let is_device = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap()
            .file_type()
            .is_char_device()
    };
    run(stacktop(&["convert", "-i"])
        .arg(input())
        .arg("-o")
        .arg(&null)
        .args(["--to", "pprof"]));
    run(stacktop(&["flamegraph", "-i"])
        .arg(input())
        .arg("-o")
        .arg(&null));
    assert!(is_device(&null));
    if perf_available() {
        run(stacktop(&["record", "-e", "cpu-clock", "-o"])
            .arg(&null)
            .args(["--", "true"]));
        assert!(is_device(&null));
    }
    // The full device fails every write: one clear line, and it is still a device.
    let out = stacktop(&["flamegraph", "-i"])
        .arg(input())
        .arg("-o")
        .arg(&full)
        .output()
        .unwrap();
    assert_one_line_error(&out, &["No space left on device"]);
    assert!(is_device(&full));
    assert_eq!(names_in(&dir), ["full", "null"]);
    // A directory is refused.
    let out = stacktop(&["flamegraph", "-i"])
        .arg(input())
        .arg("-o")
        .arg(&dir)
        .output()
        .unwrap();
    assert_one_line_error(&out, &["is a directory"]);
}

/// Runs `script` as root in a private mount namespace (`unshare -m`), so a small or read-only file system
/// can be mounted for one test without touching the machine's.
fn in_mount_namespace(script: &str, dir: &Path) -> Output {
    Command::new("unshare")
        .args(["-m", "sh", "-euc", script])
        .arg(dir)
        .arg(stacktop_bin())
        .arg(input())
        .output()
        .unwrap()
}

/// A full disk, a read-only or missing directory: one clear line, a non-zero exit, the old file intact and
/// no temporary file left, for every command that writes.
pub fn full_read_only_or_missing_directories_fail_cleanly_and_keep_the_old_file() {
    if !root_or_skip("mounting a small file system") || !tool_available("unshare") {
        return;
    }
    let dir = fresh_dir("full-disk", 0o755);
    // Commands: flamegraph, convert to pprof and to folded text (and record when perf works).
    let mut commands = vec![
        r#""$1" flamegraph -i "$2" -o "$0/out""#.to_owned(),
        r#""$1" convert -i "$2" -o "$0/out" --to pprof"#.to_owned(),
        r#""$1" convert -i "$2" -o "$0/out" --to folded"#.to_owned(),
    ];
    if perf_available() {
        commands.push(r#""$1" record -e cpu-clock -o "$0/out" -- true"#.to_owned());
    }
    for command in &commands {
        // Full: the old file is there, the rest of the file system is filled.
        let script = format!(
            r#"mount -t tmpfs -o size=64k tmpfs "$0"
            printf old > "$0/out"
            head -c 1M /dev/zero > "$0/fill" 2>/dev/null || true
            rc=0; {command} 2> /tmp/stacktop-full-err.$$ || rc=$?
            echo "rc=$rc"; cat /tmp/stacktop-full-err.$$; rm -f /tmp/stacktop-full-err.$$
            echo "old=$(cat "$0/out")"; ls -A "$0" | tr '\n' ' '"#
        );
        let out = in_mount_namespace(&script, &dir);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("rc=1\n"), "{command}: {text}");
        assert!(
            text.contains("No space left on device"),
            "{command}: {text}"
        );
        assert!(!text.contains("panicked"), "{command}: {text}");
        assert!(
            text.contains("old=old\n"),
            "{command}: the old file changed: {text}"
        );
        assert!(
            text.trim_end().ends_with("fill out"),
            "{command}: left behind: {text}"
        );

        // Read-only.
        let script = format!(
            r#"mount -t tmpfs -o ro tmpfs "$0"
            rc=0; {command} 2> /tmp/stacktop-ro-err.$$ || rc=$?
            echo "rc=$rc"; cat /tmp/stacktop-ro-err.$$; rm -f /tmp/stacktop-ro-err.$$"#
        );
        let out = in_mount_namespace(&script, &dir);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("rc=1\n"), "{command}: {text}");
        assert!(text.contains("Read-only file system"), "{command}: {text}");
        assert_eq!(
            text.lines().count(),
            2,
            "{command}: want one error line: {text}"
        );
    }
    // Missing directory.
    let out = stacktop(&["flamegraph", "-i"])
        .arg(input())
        .args(["-o", "/nonexistent/stacktop/out.svg"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["/nonexistent/stacktop"]);
}

pub fn record_exits_with_the_commands_status() {
    if !perf_available() {
        return;
    }
    for (script, code, says) in [
        ("exit 3", 3, "exited with status 3"),
        ("kill -9 $$", 137, "killed by signal 9"),
        ("exit 0", 0, "wrote"),
    ] {
        let out = stacktop(&["record", "-e", "cpu-clock", "-o"])
            .arg(scratch_file("status.pb.gz"))
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{script}: {stderr}");
        assert!(stderr.contains(says), "{script}: {stderr}");
        // The profile is written all the same.
        assert!(stderr.contains("wrote"), "{script}: {stderr}");
    }
}

/// SIGKILL gives stacktop no chance to clean up: the launched command must still end (a parent-death signal),
/// and no half-written file may stand under the output name.
pub fn a_killed_stacktop_takes_its_command_along_and_leaves_no_half_file() {
    if !perf_available() {
        return;
    }
    let bin = build_c("spin.c", "spin", &[]);
    let dir = fresh_dir("sigkill", 0o755);
    let out = dir.join("killed.pb.gz");
    let mut recorder = stacktop(&["record", "-e", "cpu-clock", "-o"])
        .arg(&out)
        .arg("--")
        .arg(&bin)
        .arg("60")
        .spawn()
        .unwrap();
    // Wait for the command to start.
    let started = Instant::now();
    let child = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", recorder.id()))
                .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no command started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    let gone = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
        })
    };
    let started = Instant::now();
    while !gone(&child) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the command {child} outlived the killed stacktop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!out.exists(), "a file stands under the output name");
}

crate::tests![
    a_planted_temporary_name_is_not_followed,
    a_link_planted_by_another_user_is_refused,
    a_device_is_written_in_place_not_replaced,
    full_read_only_or_missing_directories_fail_cleanly_and_keep_the_old_file,
    record_exits_with_the_commands_status,
    a_killed_stacktop_takes_its_command_along_and_leaves_no_half_file,
];
