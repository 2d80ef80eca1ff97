//! Address spaces over time: processes, threads, comm names and mappings (from /proc and MMAP2).
//!
//! [`Processes`] is a sans-IO state machine fed the record stream in time order; at any point it holds
//! the state as of the last record applied, so a sample is resolved against the mappings valid at its
//! timestamp simply by resolving it when it comes along. It never opens files: a resolved [`Module`]
//! and its [`Mapping`] say where the symbolizer may find the bytes (`/proc/PID/root/PATH` or
//! `/proc/PID/map_files/START-END` while the process lives, else the path itself).
//!
//! Kernel order around `execve` (checked on Linux 6.18): `COMM` with the exec flag comes first, then the
//! `MMAP2`s of the new image (executable, then the dynamic loader, then libraries as it maps them). So an
//! exec comm clears the pid's mappings and the mmaps that follow fill the new address space.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::acquire::record::{MmapRecord, Record};
use crate::addr::{Avma, FileOffset};

/// A file (or pseudo-file such as `[vdso]`) that code is mapped from. One `Arc<Module>` per distinct file
/// across all processes, so the symbolizer loads each once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Module {
    /// Path as the kernel named it (`/usr/lib/...`, `[vdso]`, `//anon`).
    pub path: String,
    /// GNU build-id, when the kernel sent it.
    pub build_id: Option<Vec<u8>>,
    /// Device (`makedev(major, minor)`) and inode, 0 when unknown (the kernel sends either these or a
    /// build-id).
    pub dev: u64,
    pub inode: u64,
}

impl Module {
    /// Pseudo-files with no file behind them: `[vdso]`, `[stack]`, `//anon`, `[anon:...]`.
    pub fn is_pseudo(&self) -> bool {
        self.path.starts_with('[') || self.path.starts_with("//") || self.path.is_empty()
    }

    /// Memory no file or image backs: code there was written at run time, by a JIT, and only the process's
    /// perf map (`/tmp/perf-PID.map`) can name it. The kernel names such a mapping `//anon` in its records and
    /// leaves it unnamed in `/proc/PID/maps`, or names it `[anon:NAME]` there when the program did
    /// (`PR_SET_VMA_ANON_NAME`); a JIT may also write code into the heap, a stack, `/dev/zero`, huge pages or
    /// SysV shared memory, which perf treats the same way. .NET maps its JIT code twice (writable, and
    /// executable) from a memfd, `/memfd:doublemapper`, which holds no ELF image either.
    pub fn is_anonymous(&self) -> bool {
        const NAMES: [&str; 5] = ["", "//anon", "[heap]", "/dev/zero", "/anon_hugepage"];
        const PREFIXES: [&str; 5] = [
            "[anon:",
            "[anon_shmem:",
            "[stack",
            "/SYSV",
            "/memfd:doublemapper",
        ];
        let path = self.path.strip_suffix(" (deleted)").unwrap_or(&self.path);
        NAMES.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p))
    }
}

/// Where a module is mapped in one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub pid: u32,
    pub start: Avma,
    /// One past the last mapped byte.
    pub end: Avma,
    /// File offset of `start`.
    pub pgoff: FileOffset,
}

impl Mapping {
    /// `/proc/PID/map_files/START-END`: opens the very file mapped, even if deleted or in another mount
    /// namespace, while the process lives (needs privileges over the process).
    pub fn map_files_path(&self) -> String {
        format!(
            "/proc/{}/map_files/{:x}-{:x}",
            self.pid, self.start.0, self.end.0
        )
    }

    /// `/proc/PID/root/PATH`: the path as seen from the process's root (containers).
    pub fn root_path(&self, module: &Module) -> String {
        format!("/proc/{}/root{}", self.pid, module.path)
    }
}

/// What an address in a process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Module {
        module: Arc<Module>,
        mapping: Mapping,
        /// Offset of the address in the module's file: `avma - start + pgoff`.
        offset: FileOffset,
    },
    /// A kernel address (upper half of the address space).
    Kernel,
    /// No known mapping covers it.
    Unmapped,
}

#[derive(Clone, Debug)]
struct Entry {
    end: u64,
    pgoff: u64,
    module: Arc<Module>,
}

/// One address space: non-overlapping ranges keyed by start address.
#[derive(Clone, Debug, Default)]
struct AddressSpace {
    ranges: BTreeMap<u64, Entry>,
    /// The program: the first file mapped executable into this space (the kernel maps the executable
    /// before the dynamic loader; an attached process's maps come by address, where the program is below
    /// its libraries).
    program: Option<Arc<Module>>,
}

impl AddressSpace {
    /// Maps `[start, end)`, cutting away whatever it overlaps (as a new mmap over an old range does).
    fn insert(&mut self, start: u64, end: u64, pgoff: u64, module: Arc<Module>) {
        if end <= start {
            return;
        }
        let overlapping: Vec<u64> = self
            .ranges
            .range(..end)
            .rev()
            .take_while(|(_, e)| e.end > start)
            .map(|(&s, _)| s)
            .collect();
        for s in overlapping {
            let Some(old) = self.ranges.remove(&s) else {
                continue;
            };
            if s < start {
                self.ranges.insert(
                    s,
                    Entry {
                        end: start,
                        pgoff: old.pgoff,
                        module: Arc::clone(&old.module),
                    },
                );
            }
            if old.end > end {
                let pgoff = old.pgoff.wrapping_add(end - s);
                self.ranges.insert(
                    end,
                    Entry {
                        end: old.end,
                        pgoff,
                        module: old.module,
                    },
                );
            }
        }
        self.ranges.insert(start, Entry { end, pgoff, module });
    }

    fn find(&self, addr: u64) -> Option<(u64, &Entry)> {
        let (&start, entry) = self.ranges.range(..=addr).next_back()?;
        (addr < entry.end).then_some((start, entry))
    }
}

#[derive(Clone, Debug, Default)]
struct ProcessState {
    space: AddressSpace,
    exited: bool,
    /// Changes whenever `space` does, so per-process caches built from the mappings (unwind modules) know
    /// when to rebuild.
    generation: u64,
}

/// Every process seen in the record stream, with its mappings and thread names as of the last record.
#[derive(Debug, Default)]
pub struct Processes {
    processes: HashMap<u32, ProcessState>,
    /// Thread names by tid (a process's main thread has tid == pid).
    comms: HashMap<u32, String>,
    modules: HashMap<Module, Arc<Module>>,
    /// Source of fresh `ProcessState::generation` values.
    generations: u64,
    /// Processes found exited by the last `release_exited`, released at the next call.
    releasing: Vec<u32>,
    /// Threads (other than a process's main thread) that exited and whose tid has not been reused since.
    exited_threads: HashSet<u32>,
    /// Threads found exited by the last `release_exited`: their names go at the next call.
    releasing_threads: Vec<u32>,
}

/// The first kernel address on 64-bit Linux (x86_64 and aarch64 alike put the kernel in the upper half).
const KERNEL_START: u64 = 1 << 63;

/// Whether `addr` can be an address of any process or of the kernel: x86-64 (with 5-level page tables)
/// and aarch64 use at most 56 bits, the upper ones copies of bit 55. Any other value is no address at all:
/// a word a frame-pointer chain or a table walk read as a return address where none was (rustc's outermost
/// "frame" `0xc500000080ec8147`, which the kernel half's test named a kernel address).
fn is_canonical(addr: u64) -> bool {
    !(1 << 56..!0u64 << 56).contains(&addr)
}

impl Processes {
    pub fn new() -> Processes {
        Processes::default()
    }

    /// Applies one record; records must come in time order.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Mmap(m) => self.mmap(m),
            Record::Comm {
                pid,
                tid,
                name,
                exec,
                ..
            } => {
                if *exec {
                    // exec replaced the address space; the new image's mmaps follow this record.
                    let process = self.processes.entry(*pid).or_default();
                    process.space = AddressSpace::default();
                    process.exited = false;
                    self.generations += 1;
                    process.generation = self.generations;
                }
                self.exited_threads.remove(tid);
                self.comms.insert(*tid, name.clone());
            }
            Record::Fork {
                pid,
                ppid,
                tid,
                ptid,
                ..
            } => {
                if pid != ppid {
                    // A new process starts as a copy of its parent's address space.
                    let space = self
                        .processes
                        .get(ppid)
                        .map(|p| p.space.clone())
                        .unwrap_or_default();
                    self.generations += 1;
                    self.processes.insert(
                        *pid,
                        ProcessState {
                            space,
                            exited: false,
                            generation: self.generations,
                        },
                    );
                } else {
                    // A new thread shares its process's address space (keyed by pid already).
                    self.processes.entry(*pid).or_default();
                }
                // A tid the kernel hands out again is a new thread: its name must not go with the old one's.
                self.exited_threads.remove(tid);
                let name = self
                    .comms
                    .get(ptid)
                    .or_else(|| self.comms.get(ppid))
                    .cloned();
                if let Some(name) = name {
                    self.comms.insert(*tid, name);
                }
            }
            Record::Exit { pid, tid, .. } => {
                // Keep the mappings: samples of this process may still be in flight in other rings, and
                // the symbolizer may need them. Only mark it, so callers can tell.
                if pid == tid {
                    if let Some(p) = self.processes.get_mut(pid) {
                        p.exited = true;
                    }
                } else {
                    self.exited_threads.insert(*tid);
                }
            }
            Record::Sample(_)
            | Record::Lost { .. }
            | Record::Switch { .. }
            | Record::Throttle { .. } => {}
        }
    }

    fn mmap(&mut self, m: &MmapRecord) {
        if !m.executable {
            return;
        }
        let module = self.intern(Module {
            path: m.path.clone(),
            build_id: m.build_id.clone(),
            dev: m.dev,
            inode: m.inode,
        });
        let end = m.start.saturating_add(m.len);
        self.generations += 1;
        let process = self.processes.entry(m.pid).or_default();
        process.generation = self.generations;
        if process.space.program.is_none() && !module.is_pseudo() && !module.is_anonymous() {
            process.space.program = Some(Arc::clone(&module));
        }
        process.space.insert(m.start, end, m.pgoff, module);
    }

    fn intern(&mut self, module: Module) -> Arc<Module> {
        if let Some(m) = self.modules.get(&module) {
            return Arc::clone(m);
        }
        let arc = Arc::new(module.clone());
        self.modules.insert(module, Arc::clone(&arc));
        arc
    }

    /// What `addr` is in process `pid` right now (as of the last record applied).
    pub fn resolve(&self, pid: u32, addr: Avma) -> Resolved {
        if addr.0 >= KERNEL_START {
            return Resolved::Kernel;
        }
        let Some((start, entry)) = self.processes.get(&pid).and_then(|p| p.space.find(addr.0))
        else {
            return Resolved::Unmapped;
        };
        Resolved::Module {
            module: Arc::clone(&entry.module),
            mapping: Mapping {
                pid,
                start: Avma(start),
                end: Avma(entry.end),
                pgoff: FileOffset(entry.pgoff),
            },
            offset: FileOffset(addr.0.wrapping_sub(start).wrapping_add(entry.pgoff)),
        }
    }

    /// True when `addr` is a user address outside every mapping of `pid`, and `pid`'s mappings are known (it has
    /// some): such an address holds no code. Unknown processes say false: nothing is known against it. A value
    /// that is no address (see [`is_canonical`]) is outside every mapping of every process.
    pub fn outside_known_mappings(&self, pid: u32, addr: Avma) -> bool {
        if !is_canonical(addr.0) {
            return true;
        }
        if addr.0 >= KERNEL_START {
            return false;
        }
        self.processes
            .get(&pid)
            .is_some_and(|p| !p.space.ranges.is_empty() && p.space.find(addr.0).is_none())
    }

    /// The path of the program `pid` runs (see `AddressSpace::program`), when a mapping of it was seen.
    pub fn program(&self, pid: u32) -> Option<&str> {
        let program = self.processes.get(&pid)?.space.program.as_ref()?;
        Some(&program.path)
    }

    /// The thread's name, else its process's, else `"[unknown]"`.
    pub fn comm(&self, pid: u32, tid: u32) -> &str {
        self.comms
            .get(&tid)
            .or_else(|| self.comms.get(&pid))
            .map_or("[unknown]", String::as_str)
    }

    /// Forgets the processes that had already exited at the previous call (their mappings and main thread's
    /// name), and the names of other threads that had, and returns the pids, so long system-wide sessions stay
    /// bounded. One call of delay lets samples still in flight in other rings be resolved first. A pid or tid
    /// reused since is kept.
    pub fn release_exited(&mut self) -> Vec<u32> {
        let mut released = std::mem::take(&mut self.releasing);
        released.retain(|pid| self.processes.get(pid).is_some_and(|p| p.exited));
        for pid in &released {
            self.processes.remove(pid);
            self.comms.remove(pid);
        }
        self.releasing = self
            .processes
            .iter()
            .filter(|(_, p)| p.exited)
            .map(|(&pid, _)| pid)
            .collect();
        for tid in std::mem::take(&mut self.releasing_threads) {
            if self.exited_threads.remove(&tid) {
                self.comms.remove(&tid);
            }
        }
        self.releasing_threads = self.exited_threads.iter().copied().collect();
        released
    }

    /// Drops the interned modules that no tracked process maps any more and returns them, so the caches built
    /// per module (symbols, unwind tables) can drop theirs. A file mapped again later is interned anew.
    pub fn release_unmapped_modules(&mut self) -> Vec<Arc<Module>> {
        let mapped: HashSet<*const Module> = self
            .processes
            .values()
            .flat_map(|p| p.space.ranges.values())
            .map(|e| Arc::as_ptr(&e.module))
            .collect();
        if mapped.len() == self.modules.len() {
            return Vec::new();
        }
        let mut released = Vec::new();
        self.modules.retain(|_, m| {
            let keep = mapped.contains(&Arc::as_ptr(m));
            if !keep {
                released.push(Arc::clone(m));
            }
            keep
        });
        released
    }

    /// Whether `module` is still interned (mapped by some tracked process, as of the last release).
    pub fn has_module(&self, module: &Module) -> bool {
        self.modules.contains_key(module)
    }

    /// Processes tracked (alive, or exited and not yet released).
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Threads whose names are kept.
    pub fn thread_count(&self) -> usize {
        self.comms.len()
    }

    /// Whether the process's main thread has exited.
    pub fn has_exited(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.exited)
    }

    /// A value that changes whenever the process's mappings change (0 for an unknown process).
    pub fn generation(&self, pid: u32) -> u64 {
        self.processes.get(&pid).map_or(0, |p| p.generation)
    }

    /// The process's executable mappings, lowest address first.
    pub fn mappings(&self, pid: u32) -> Vec<(Mapping, Arc<Module>)> {
        let Some(process) = self.processes.get(&pid) else {
            return Vec::new();
        };
        process
            .space
            .ranges
            .iter()
            .map(|(&start, e)| {
                let mapping = Mapping {
                    pid,
                    start: Avma(start),
                    end: Avma(e.end),
                    pgoff: FileOffset(e.pgoff),
                };
                (mapping, Arc::clone(&e.module))
            })
            .collect()
    }

    /// Every distinct module mapped by a tracked process (or since the last `release_unmapped_modules`).
    pub fn modules(&self) -> impl Iterator<Item = &Arc<Module>> {
        self.modules.values()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
