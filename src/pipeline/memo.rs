//! A memo of the frames last named: (process, its mappings' generation, address) to the location the
//! pipeline gave it.
//!
//! Naming a user frame costs a search of the process's mappings (twice: once to tell that a return address
//! lies in some mapping, once to find it), a module key and a hash lookup in the location table, per frame of
//! every sample: at 35,000 samples a second on each of two CPUs that was a quarter of the walking thread's
//! time (`benches/sustained_rate.sh`), for the same few thousand addresses again and again. A hit here is one
//! probe of a small array that stays in cache.
//!
//! Sound because a location is a function of the process's mappings and the address alone while the
//! location table keeps it: [`crate::process::Processes::generation`] changes with every change of a
//! process's mappings (mmap, exec, a fork's copy), generations are never reused (a pid reused by a new
//! process gets a new one), and the pipeline clears the memo whenever it clears or trims its location table.
//! Only stable names are kept: code in files and the kernel's, never JIT code, which a process's map may name
//! later.

use crate::profile::LocationId;

/// Slots (a power of two): the hot frames of a busy machine's few dozen threads fit, in 96 KiB.
const SLOTS: usize = 4096;

/// The generation kernel frames are kept under: the kernel's code is the same in every process.
const KERNEL: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Slot {
    address: u64,
    /// 0: empty (no process with known mappings has generation 0).
    generation: u64,
    pid: u32,
    id: LocationId,
}

const EMPTY: Slot = Slot {
    address: 0,
    generation: 0,
    pid: 0,
    id: LocationId(0),
};

pub(super) struct FrameMemo {
    slots: Box<[Slot]>,
}

impl Default for FrameMemo {
    fn default() -> FrameMemo {
        FrameMemo {
            slots: vec![EMPTY; SLOTS].into_boxed_slice(),
        }
    }
}

impl FrameMemo {
    /// The location of `address` (a lookup address) in `pid` under mappings of `generation`, if memoized; a
    /// kernel frame's is the same in every process.
    pub(super) fn get(
        &self,
        pid: u32,
        generation: u64,
        kernel: bool,
        address: u64,
    ) -> Option<LocationId> {
        let (pid, generation) = key(pid, generation, kernel);
        if generation == 0 {
            return None;
        }
        let slot = &self.slots[index(pid, address)];
        (slot.address == address && slot.generation == generation && slot.pid == pid)
            .then_some(slot.id)
    }

    /// Memoizes a stable location (see the module's docs); an unknown process's (generation 0) is not.
    pub(super) fn put(
        &mut self,
        pid: u32,
        generation: u64,
        kernel: bool,
        address: u64,
        id: LocationId,
    ) {
        let (pid, generation) = key(pid, generation, kernel);
        if generation == 0 {
            return;
        }
        self.slots[index(pid, address)] = Slot {
            address,
            generation,
            pid,
            id,
        };
    }

    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
    }
}

fn key(pid: u32, generation: u64, kernel: bool) -> (u32, u64) {
    match kernel {
        true => (0, KERNEL),
        false => (pid, generation),
    }
}

fn index(pid: u32, address: u64) -> usize {
    let h = (address ^ (u64::from(pid) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memoized_frame_is_found_only_under_its_process_and_generation() {
        let mut memo = FrameMemo::default();
        memo.put(7, 3, false, 0x1000, LocationId(5));
        assert_eq!(memo.get(7, 3, false, 0x1000), Some(LocationId(5)));
        // Another process, new mappings, another address.
        assert_eq!(memo.get(8, 3, false, 0x1000), None);
        assert_eq!(memo.get(7, 4, false, 0x1000), None);
        assert_eq!(memo.get(7, 3, false, 0x1008), None);
        // Kernel frames are shared by every process, whatever its generation.
        memo.put(7, 3, true, 0xffff_ffff_8100_0000, LocationId(9));
        assert_eq!(
            memo.get(1, 0, true, 0xffff_ffff_8100_0000),
            Some(LocationId(9))
        );
        // An unknown process's frames are never kept.
        memo.put(2, 0, false, 0x2000, LocationId(1));
        assert_eq!(memo.get(2, 0, false, 0x2000), None);
        memo.clear();
        assert_eq!(memo.get(7, 3, false, 0x1000), None);
        assert_eq!(memo.get(1, 0, true, 0xffff_ffff_8100_0000), None);
    }
}
