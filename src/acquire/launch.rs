//! Launching the command to profile, stopped before `execve`, so counters can be attached first.
//!
//! ```text
//!  stacktop                         child (fork)
//!  fork ──────────────────────────> blocks reading `go`
//!  open counters (enable_on_exec)
//!  write `go` ────────────────────> execv(program)
//!  read `status`: EOF = exec ok <── CLOEXEC closes `status` / or writes errno, _exit(127)
//! ```
//! Everything the child needs (paths, argv) is allocated before `fork`: between `fork` and `execv` the
//! child of a possibly multithreaded process may only make async-signal-safe calls.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{AcquireError, CommandOutput};

/// A forked child waiting for [`Stopped::release`] to exec the command.
pub(crate) struct Stopped {
    pid: libc::pid_t,
    command: String,
    go: Option<File>,
    status: Option<File>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Finds `program` the way `execvp` would: as given if it holds a `/`, else in `PATH`.
pub(crate) fn resolve(program: &OsStr) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn cstring(s: &OsStr, command: &str) -> Result<CString, AcquireError> {
    CString::new(s.as_bytes()).map_err(|_| AcquireError::Exec {
        command: command.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte"),
    })
}

/// Forks the child and leaves it blocked before `execv`.
pub(crate) fn spawn_stopped(
    argv: &[OsString],
    output: &CommandOutput,
) -> Result<Stopped, AcquireError> {
    let program = argv.first().ok_or(AcquireError::EmptyCommand)?;
    let command = program.to_string_lossy().into_owned();
    let path = resolve(program).ok_or_else(|| AcquireError::CommandNotFound {
        command: command.clone(),
    })?;
    let c_path = cstring(path.as_os_str(), &command)?;
    let c_args = argv
        .iter()
        .map(|a| cstring(a, &command))
        .collect::<Result<Vec<_>, _>>()?;
    let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    c_argv.push(std::ptr::null());

    let devnull = match output {
        CommandOutput::Null => Some(
            File::options()
                .write(true)
                .open("/dev/null")
                .map_err(|e| AcquireError::io("opening /dev/null", e))?,
        ),
        CommandOutput::File(path) => Some(
            File::options()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| AcquireError::io("opening the command's output file", e))?,
        ),
        CommandOutput::Inherit => None,
    };
    let devnull_fd = devnull.as_ref().map_or(-1, |f| f.as_raw_fd());
    let (go_read, go_write) = pipe().map_err(|e| AcquireError::io("creating a pipe", e))?;
    let (status_read, status_write) = pipe().map_err(|e| AcquireError::io("creating a pipe", e))?;
    let (go_r, go_w) = (go_read.as_raw_fd(), go_write.as_raw_fd());
    let (st_r, st_w) = (status_read.as_raw_fd(), status_write.as_raw_fd());

    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork has no memory-safety preconditions; the child branch below only makes
    // async-signal-safe calls on data prepared before the fork, and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(AcquireError::io("fork", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: only async-signal-safe libc calls on fds and C strings that stay valid in the child's
        // copy of memory; the branch ends in execv or _exit and never unwinds into Rust code.
        unsafe {
            libc::close(go_w);
            libc::close(st_r);
            // The command must not outlive stacktop, even a SIGKILLed one: the kernel sends SIGKILL when the
            // forking thread (stacktop's main thread, which lives until the end) dies. If stacktop died
            // before the prctl, the child was reparented already.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(126);
            }
            if devnull_fd >= 0 {
                libc::dup2(devnull_fd, 1);
                libc::dup2(devnull_fd, 2);
            }
            // Rust ignores SIGPIPE and the caller may block signals; the command expects defaults.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            let mut byte = 0u8;
            let n = loop {
                let n = libc::read(go_r, (&mut byte as *mut u8).cast(), 1);
                if n >= 0 || *libc::__errno_location() != libc::EINTR {
                    break n;
                }
            };
            if n != 1 {
                // stacktop gave up (closed the pipe without releasing us).
                libc::_exit(126);
            }
            libc::execv(c_path.as_ptr(), c_argv.as_ptr());
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(st_w, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    drop(go_read);
    drop(status_write);
    drop(devnull);
    Ok(Stopped {
        pid,
        command,
        go: Some(File::from(go_write)),
        status: Some(File::from(status_read)),
    })
}

impl Stopped {
    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Lets the child exec; returns once the exec happened, or the reason it failed.
    pub(crate) fn release(mut self) -> Result<u32, AcquireError> {
        let pid = self.pid;
        let command = std::mem::take(&mut self.command);
        if let Some(mut go) = self.go.take() {
            go.write_all(&[1])
                .map_err(|e| AcquireError::io("releasing the command", e))?;
        }
        let mut buf = Vec::new();
        if let Some(mut status) = self.status.take() {
            status
                .read_to_end(&mut buf)
                .map_err(|e| AcquireError::io("waiting for the command to start", e))?;
        }
        if buf.len() < 4 {
            // EOF without an errno: the exec succeeded (CLOEXEC closed the pipe). The child is now
            // the caller's to reap.
            self.pid = 0;
            return Ok(pid as u32);
        }
        let errno = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        // Drop reaps the child, which has _exit'ed.
        Err(match errno {
            libc::ENOENT => AcquireError::CommandNotFound { command },
            _ => AcquireError::Exec {
                command,
                source: io::Error::from_raw_os_error(errno),
            },
        })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // Closing `go` without writing makes a waiting child _exit; then reap it.
        self.go.take();
        self.status.take();
        if self.pid > 0 {
            wait(self.pid as u32, true);
        }
    }
}

/// Reaps `pid`; returns its exit status (128 + signal when killed) once it has exited, -1 when it is gone
/// but its status could not be collected (someone else reaped it).
pub(crate) fn wait(pid: u32, block: bool) -> Option<i32> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: `status` is a valid int for waitpid to write.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
        if rc < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Some(-1),
                _ => return None,
            }
        }
        if rc == 0 {
            return None;
        }
        break;
    }
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some(128 + libc::WTERMSIG(status))
    } else {
        None
    }
}

/// Sends SIGTERM to `pid` (a child we launched and have not reaped, so the pid cannot have been reused).
pub(crate) fn terminate(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}
