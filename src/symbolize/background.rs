//! Loading modules off the sampling thread, for `top`: reading a large library's symbols and DWARF can take
//! seconds, and no sample would be processed meanwhile.
//!
//! ```text
//!  sampling thread                                   loader thread
//!  frames(): module loaded? ── yes ──> its frames
//!            └─ no: request it once ──ModuleSpec──> ModuleLoader::load (reads the files)
//!               and name the address by a                 │
//!               placeholder, remembering it               │
//!  install_finished() <──────────LoadedModule─────────────┘
//!    installs it into the Symbolizer and resolves every remembered address: the Resolutions go to whoever
//!    holds profiles with the placeholders (the TUI rewrites them).
//! ```
//! The placeholder is `[unknown] MODULE+0xOFFSET (loading)`; it is never cached here: once the module is
//! installed, `frames` returns its real frames. `report` does not use this: it loads on the spot.
//! A deferred loader (`record`) names every address of a module by one placeholder, `[unknown] MODULE
//! (loading)`: nothing shows it before the end renames each address, and a name of its own per address cost
//! a string formatted and interned and a function added per new address (30,000 in 10 s of a Rust build:
//! about 7% of stacktop's CPU while it recorded).
//!
//! `record` uses it deferred ([`BackgroundLoader::spawn_deferred`]): a module whose mapped file is the host's
//! file at its path (same device and inode) is not read until the recording ends, so reading symbols and
//! DWARF costs no CPU while the workload runs; its file is still there, by its path, after the process exits.
//! A module only the process can reach (a deleted or replaced file, a container's) is read at once, as `top`
//! does, while `/proc/PID/map_files` still leads to it. A deferred module is read for its placeholders' offsets
//! only ([`super::ModuleLoader::load_for`]): they are all known by then, and nothing asks for the module again.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::{
    loading_frames, loading_module_frames, module_name, Frame, LoadedModule, ModuleKey,
    ModuleLoader, ModuleSpec, Resolution, Symbolizer,
};
use crate::addr::{Avma, FileOffset};

/// A module requested and not installed yet, with the addresses named by placeholders meanwhile.
struct Pending {
    spec: ModuleSpec,
    /// (address in the process, file offset) of every placeholder handed out.
    addresses: HashSet<(u64, u64)>,
    /// `record`: the one placeholder of all the module's addresses (see [`loading_module_frames`]).
    shared: Option<Arc<[Frame]>>,
}

/// How many addresses of a module read for its placeholders are named between two releases of the pages read
/// of its files: the peak RSS of the end of a recording was stacktop's own DWARF, read page by page for its
/// own samples.
const RELEASE_EVERY: usize = 16;

/// The end of a recording: how many deferred modules the loader is asked for ahead of the one being named (see
/// [`BackgroundLoader::install_all_into`]).
const END_AHEAD: usize = 2;

/// A module to read: whole, or for these file offsets only.
type Request = (ModuleSpec, Option<Vec<FileOffset>>);

/// A loader thread and the placeholders waiting for it.
pub struct BackgroundLoader {
    requests: Sender<Request>,
    loaded: Receiver<LoadedModule>,
    pending: HashMap<ModuleKey, Pending>,
    /// The loader thread is gone (it panicked): modules load on the caller's thread again.
    dead: bool,
    /// Deferred loading: the modules held back until [`BackgroundLoader::install_all`]; `None`: every module
    /// is requested at once.
    deferred: Option<Vec<ModuleSpec>>,
}

impl BackgroundLoader {
    /// Starts the loader thread; `load` reads one module (normally `ModuleLoader::load`). The thread is not
    /// joined: dropping the loader ends it after the load in progress, whose result is dropped.
    pub fn spawn(
        mut load: impl FnMut(&ModuleSpec) -> LoadedModule + Send + 'static,
    ) -> std::io::Result<BackgroundLoader> {
        // A whole module names every offset: what it was asked for need not be told.
        BackgroundLoader::spawn_with(move |spec, _| load(spec))
    }

    /// As [`BackgroundLoader::spawn`], with `load` told the offsets a module is read for, when it is.
    fn spawn_with(
        mut load: impl FnMut(&ModuleSpec, Option<&[FileOffset]>) -> LoadedModule + Send + 'static,
    ) -> std::io::Result<BackgroundLoader> {
        let (requests, to_load) = mpsc::channel::<Request>();
        let (done, loaded) = mpsc::channel();
        std::thread::Builder::new()
            .name("stacktop-loader".to_owned())
            .spawn(move || {
                for (spec, offsets) in to_load {
                    if done.send(load(&spec, offsets.as_deref())).is_err() {
                        break;
                    }
                }
            })?;
        Ok(BackgroundLoader {
            requests,
            loaded,
            pending: HashMap::new(),
            dead: false,
            deferred: None,
        })
    }

    /// As [`BackgroundLoader::spawn`] with `loader`, but a module whose file the host reaches by its path
    /// ([`super::loader::same_file_on_host`]) is requested only when [`BackgroundLoader::install_all`] is
    /// called (the end of a recording), not while samples come, and then read for its placeholders' offsets
    /// only.
    pub fn spawn_deferred(loader: ModuleLoader) -> std::io::Result<BackgroundLoader> {
        let mut background = BackgroundLoader::spawn_with(move |spec, offsets| match offsets {
            Some(offsets) => loader.load_for(spec, offsets),
            None => loader.load(spec),
        })?;
        background.deferred = Some(Vec::new());
        Ok(background)
    }

    /// The frames of `offset` in `module` (at `address` in the process) if `symbolizer` has the module, else a
    /// placeholder, asking the loader thread for the module the first time.
    pub fn frames(
        &mut self,
        symbolizer: &mut Symbolizer,
        module: &ModuleSpec,
        address: Avma,
        offset: FileOffset,
    ) -> Arc<[Frame]> {
        if let Some(frames) = symbolizer.symbolize_loaded(module, offset) {
            return frames;
        }
        if self.dead {
            return symbolizer.symbolize_user(module, offset);
        }
        let key = ModuleKey::of(module);
        let pending = match self.pending.get_mut(&key) {
            Some(p) => p,
            None => {
                let deferred = self
                    .deferred
                    .as_mut()
                    .filter(|_| super::loader::same_file_on_host(module));
                if let Some(deferred) = deferred {
                    deferred.push(module.clone());
                } else if self.requests.send((module.clone(), None)).is_err() {
                    self.dead = true;
                    return symbolizer.symbolize_user(module, offset);
                }
                let shared = self
                    .deferred
                    .is_some()
                    .then(|| loading_module_frames(&module_name(&module.path)));
                self.pending.entry(key).or_insert(Pending {
                    spec: module.clone(),
                    addresses: HashSet::new(),
                    shared,
                })
            }
        };
        pending.addresses.insert((address.0, offset.0));
        match &pending.shared {
            Some(frames) => Arc::clone(frames),
            None => loading_frames(module, offset),
        }
    }

    /// Installs the modules loaded since the last call and returns the frames of their placeholder addresses,
    /// sorted by module and address. Does not wait.
    pub fn install_finished(&mut self, symbolizer: &mut Symbolizer) -> Vec<Resolution> {
        let mut out = Vec::new();
        while !self.pending.is_empty() {
            match self.loaded.try_recv() {
                Ok(loaded) => self.install(symbolizer, loaded, &mut out),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.load_here(symbolizer, &mut out);
                    break;
                }
            }
        }
        sort(&mut out);
        out
    }

    /// Waits until every requested module is installed, or `give_up` returns true (it is asked every tenth of
    /// a second), and returns the frames of the placeholder addresses of the modules installed (the end of a
    /// session: nothing should stay unnamed).
    pub fn install_all(
        &mut self,
        symbolizer: &mut Symbolizer,
        give_up: &dyn Fn() -> bool,
    ) -> Vec<Resolution> {
        let mut all = Vec::new();
        self.install_all_into(symbolizer, give_up, &mut |batch| all.extend(batch));
        sort(&mut all);
        all
    }

    /// As [`BackgroundLoader::install_all`], but the frames are handed to `sink` a module at a time (sorted
    /// by address), as each is installed: the end of a recording of a build names 100,000 addresses, whose
    /// frames need not all wait for the last module.
    pub fn install_all_into(
        &mut self,
        symbolizer: &mut Symbolizer,
        give_up: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(Vec<Resolution>),
    ) {
        let mut out = Vec::new();
        // Every placeholder of a deferred module is handed out by now: it is read for their offsets.
        let mut queue: VecDeque<Request> = VecDeque::new();
        for spec in self
            .deferred
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
        {
            let mut offsets: Vec<FileOffset> = self
                .pending
                .get(&ModuleKey::of(&spec))
                .map(|p| p.addresses.iter().map(|&(_, o)| FileOffset(o)).collect())
                .unwrap_or_default();
            offsets.sort_unstable_by_key(|o| o.0);
            offsets.dedup();
            queue.push_back((spec, Some(offsets)));
        }
        // The loader is asked for one deferred module ahead of the naming, no more: asked for all at once, it
        // ran ahead and held 21 modules read at once, with their files (14 MB), during a Rust build's
        // recording. (Modules asked for while recording, read at once while their process lives, go on
        // coming.)
        let mut in_flight: Vec<ModuleKey> = Vec::new();
        self.ask_for_next(&mut queue, &mut in_flight);
        if self.dead {
            self.load_here(symbolizer, &mut out);
            sort(&mut out);
            sink(std::mem::take(&mut out));
        }
        // What the recording freed goes back to the kernel before the symbols are read (on the loader thread,
        // in an arena of its own, they would not reuse it).
        if self.deferred.is_some() {
            crate::acquire::memory::release_free_memory();
        }
        // At the end of a deferred recording every placeholder of a module is named as it is installed, and
        // nothing asks for the module again: it goes at once, so that the end's peak memory is one large
        // module's tables (rustc's driver, LLVM), not all of them.
        let evict = self.deferred.is_some();
        while !self.pending.is_empty() && !give_up() {
            let mut installed = None;
            match self.loaded.recv_timeout(Duration::from_millis(100)) {
                Ok(loaded) => {
                    let key = loaded.key().clone();
                    self.install(symbolizer, loaded, &mut out);
                    if evict {
                        symbolizer.evict(&key);
                    }
                    installed = Some(key);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.load_here(symbolizer, &mut out),
            }
            if !out.is_empty() {
                sort(&mut out);
                sink(std::mem::take(&mut out));
            }
            // The next module is asked for once this one's names are handed over.
            if let Some(key) = installed {
                in_flight.retain(|k| *k != key);
                self.ask_for_next(&mut queue, &mut in_flight);
            }
        }
    }

    /// Asks the loader for the next deferred modules of `queue` until [`END_AHEAD`] are asked for and not yet
    /// installed.
    fn ask_for_next(&mut self, queue: &mut VecDeque<Request>, in_flight: &mut Vec<ModuleKey>) {
        while in_flight.len() < END_AHEAD && !self.dead {
            let Some(request) = queue.pop_front() else {
                return;
            };
            in_flight.push(ModuleKey::of(&request.0));
            if self.requests.send(request).is_err() {
                self.dead = true;
            }
        }
    }

    /// Modules requested and not installed yet.
    pub fn pending_modules(&self) -> usize {
        self.pending.len()
    }

    fn install(
        &mut self,
        symbolizer: &mut Symbolizer,
        mut loaded: LoadedModule,
        out: &mut Vec<Resolution>,
    ) {
        let pending = self.pending.remove(loaded.key());
        if loaded.is_partial() {
            // Read for these placeholders alone: it names them, and goes.
            if let Some(pending) = pending {
                for (i, (address, offset)) in pending.addresses.into_iter().enumerate() {
                    if i % RELEASE_EVERY == RELEASE_EVERY - 1 {
                        loaded.release_pages();
                    }
                    out.push(Resolution {
                        module: pending.spec.path.clone(),
                        address,
                        frames: loaded.frames_at(FileOffset(offset)),
                    });
                }
            }
            // Its tables were made on the loader thread, in an arena of its own: what they took goes back to
            // the kernel before the next large module is read, not only to that arena.
            drop(loaded);
            crate::acquire::memory::release_free_memory();
            return;
        }
        symbolizer.install(loaded);
        if let Some(pending) = pending {
            resolve(symbolizer, pending, out);
        }
    }

    /// The loader thread died: load what it was asked for here, and everything from now on.
    fn load_here(&mut self, symbolizer: &mut Symbolizer, out: &mut Vec<Resolution>) {
        self.dead = true;
        for (_, pending) in self.pending.drain() {
            resolve(symbolizer, pending, out);
        }
    }
}

fn resolve(symbolizer: &mut Symbolizer, pending: Pending, out: &mut Vec<Resolution>) {
    for (address, offset) in pending.addresses {
        out.push(Resolution {
            module: pending.spec.path.clone(),
            address,
            frames: symbolizer.symbolize_user(&pending.spec, FileOffset(offset)),
        });
    }
}

fn sort(resolutions: &mut [Resolution]) {
    resolutions.sort_by(|a, b| (&a.module, a.address).cmp(&(&b.module, b.address)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::symbolize::module_name;
    use crate::symbolize::tests::own_code;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn placeholders_until_the_loader_thread_is_done() {
        let mut symbolizer = Symbolizer::new().with_debug_dirs(vec![]);
        let (libc, offset) = own_code(libc::getpid as *const () as u64);
        let loads = Arc::new(AtomicUsize::new(0));
        let (open, gate) = mpsc::channel::<()>();
        let loader = symbolizer.loader();
        let counted = Arc::clone(&loads);
        let mut background = BackgroundLoader::spawn(move |spec| {
            counted.fetch_add(1, Ordering::SeqCst);
            gate.recv().unwrap();
            loader.load(spec)
        })
        .unwrap();

        let address = Avma(0x7f00_0000_0000 + offset.0);
        let frames = background.frames(&mut symbolizer, &libc, address, offset);
        assert!(frames[0].is_loading(), "{frames:?}");
        assert!(frames[0].is_unknown());
        assert_eq!(
            frames[0].function,
            format!(
                "[unknown] {}+{:#x} (loading)",
                module_name(&libc.path),
                offset.0
            )
        );
        // Asked for once, however many addresses wait for it.
        let other = FileOffset(offset.0 + 1);
        background.frames(&mut symbolizer, &libc, Avma(address.0 + 1), other);
        background.frames(&mut symbolizer, &libc, address, offset);
        assert!(background.install_finished(&mut symbolizer).is_empty());
        assert_eq!(background.pending_modules(), 1);
        assert!(!symbolizer.is_loaded(&libc));

        // Giving up returns at once, with nothing.
        assert!(background.install_all(&mut symbolizer, &|| true).is_empty());
        open.send(()).unwrap();
        let resolved = background.install_all(&mut symbolizer, &|| false);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(background.pending_modules(), 0);
        let addresses: Vec<u64> = resolved.iter().map(|r| r.address).collect();
        assert_eq!(addresses, [address.0, address.0 + 1]);
        assert!(resolved.iter().all(|r| r.module == libc.path));
        assert_eq!(
            resolved[0].frames.last().map(|f| f.function.as_str()),
            Some("getpid")
        );
        // Installed: real frames at once, no placeholder cached.
        let frames = background.frames(&mut symbolizer, &libc, address, offset);
        assert_eq!(frames, resolved[0].frames);
        assert!(background.install_finished(&mut symbolizer).is_empty());
    }

    #[test]
    fn a_dead_loader_thread_means_loading_here() {
        let mut symbolizer = Symbolizer::new().with_debug_dirs(vec![]);
        let mut background = BackgroundLoader::spawn(|_| panic!("loader bug")).unwrap();
        let gone = ModuleSpec {
            path: "/nonexistent/libgone.so".to_owned(),
            ..ModuleSpec::default()
        };
        let frames = background.frames(&mut symbolizer, &gone, Avma(0x10), FileOffset(0x10));
        assert!(frames[0].is_loading());
        let resolved = background.install_all(&mut symbolizer, &|| false);
        assert_eq!(
            resolved[0].frames[0].function,
            "[unknown] libgone.so+0x10 (unreadable)"
        );
        let frames = background.frames(&mut symbolizer, &gone, Avma(0x20), FileOffset(0x20));
        assert_eq!(frames[0].function, "[unknown] libgone.so+0x20 (unreadable)");
    }

    /// `record`: one placeholder for all the addresses of a module, each named at the end.
    #[test]
    fn a_deferred_module_has_one_placeholder_for_all_its_addresses() {
        let mut symbolizer = Symbolizer::new().with_debug_dirs(vec![]);
        let (libc, offset) = own_code(libc::getpid as *const () as u64);
        let mut background = BackgroundLoader::spawn_deferred(symbolizer.loader()).unwrap();
        let address = Avma(0x7f00_0000_0000 + offset.0);
        let first = background.frames(&mut symbolizer, &libc, address, offset);
        let other = FileOffset(offset.0 + 1);
        let second = background.frames(&mut symbolizer, &libc, Avma(address.0 + 1), other);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(
            first[0].function,
            format!("[unknown] {} (loading)", module_name(&libc.path))
        );
        assert!(first[0].is_loading());
        let resolved = background.install_all(&mut symbolizer, &|| false);
        let addresses: Vec<u64> = resolved.iter().map(|r| r.address).collect();
        assert_eq!(addresses, [address.0, address.0 + 1]);
        assert_eq!(
            resolved[0].frames.last().map(|f| f.function.as_str()),
            Some("getpid")
        );
    }

    /// The end of a recording: the loader is asked for one module ahead of the naming, not all of them.
    #[test]
    fn the_end_of_a_recording_reads_one_module_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut symbolizer = Symbolizer::new().with_debug_dirs(vec![]);
        let loads = Arc::new(AtomicUsize::new(0));
        let (loader, counted) = (symbolizer.loader(), Arc::clone(&loads));
        let mut background = BackgroundLoader::spawn_with(move |spec, offsets| {
            counted.fetch_add(1, Ordering::SeqCst);
            loader.load_for(spec, offsets.unwrap_or_default())
        })
        .unwrap();
        background.deferred = Some(Vec::new());
        // Files on the host that nobody maps: deferred (they are no ELF files: each names its address unreadable).
        for i in 0..4 {
            let path = dir.path().join(format!("lib{i}.so"));
            std::fs::write(&path, b"not an ELF file").unwrap();
            let spec = ModuleSpec {
                path: path.to_string_lossy().into_owned(),
                ..ModuleSpec::default()
            };
            let frames = background.frames(&mut symbolizer, &spec, Avma(0x10), FileOffset(0x10));
            assert!(frames[0].is_loading());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        let mut seen = Vec::new();
        background.install_all_into(&mut symbolizer, &|| false, &mut |batch| {
            // Time for a loader asked for every module to run ahead of this one.
            if seen.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
            }
            seen.push((batch.len(), loads.load(Ordering::SeqCst)));
        });
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.iter().all(|&(named, _)| named == 1), "{seen:?}");
        // The first module named: at most the next one read meanwhile.
        assert!(seen[0].1 <= END_AHEAD, "{seen:?}");
        assert_eq!(loads.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn loaded_modules_cross_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<LoadedModule>();
        assert_send::<Resolution>();
    }
}
