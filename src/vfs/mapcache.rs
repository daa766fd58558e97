// SPDX-License-Identifier: GPL-2.0
//! The per-inode extent cache: a few runs of the file that are written and
//! not shared (file block → pmem block), so that iomap_begin for a read, a
//! read fault or an in-place overwrite of them needs no engine lock at all.
//!
//! Validity is an *epoch*, not invalidation by hand: each entry carries the
//! mount's map epoch it was read under, and the mount bumps the epoch at the
//! start of every exclusive engine section that may change a written,
//! unshared mapping (truncate, punch, collapse, reflink, evict, memory
//! failure; see `mount::Op::changes_maps`). An entry is used only while its
//! epoch is current, so no code path can forget to invalidate it. Entries
//! are filled under the shared engine lock, which excludes every such
//! section, so the epoch read there names exactly the state looked up.
//!
//! Concurrency is a sequence lock made of atomics: fillers (several may race
//! under the shared lock) *try* to take it and skip caching when they
//! cannot, so nobody ever waits on it; readers retry never, they treat a
//! concurrent fill as a miss. Everything is `Atomic*`, so this is safe code
//! whatever the interleaving; the sequence only makes an entry's fields
//! consistent with each other.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Entries per inode.
const ENTRIES: usize = 4;

struct Entry {
    /// Map epoch the entry was read under; 0: empty (epochs start at 1).
    epoch: AtomicU64,
    lblk: AtomicU64,
    pblk: AtomicU64,
    count: AtomicU64,
}

impl Entry {
    const fn new() -> Self {
        Entry { epoch: AtomicU64::new(0), lblk: AtomicU64::new(0), pblk: AtomicU64::new(0), count: AtomicU64::new(0) }
    }
}

/// A written, unshared run: file blocks `[lblk, lblk + count)` live at pmem
/// blocks `[pblk, pblk + count)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) lblk: u64,
    pub(crate) pblk: u64,
    pub(crate) count: u64,
}

/// See the module documentation.
pub(crate) struct MapCache {
    /// Even: stable; odd: a filler is writing.
    seq: AtomicU64,
    /// Next entry to replace when none is stale.
    victim: AtomicU32,
    ent: [Entry; ENTRIES],
}

impl MapCache {
    pub(crate) const fn new() -> Self {
        MapCache { seq: AtomicU64::new(0), victim: AtomicU32::new(0), ent: [const { Entry::new() }; ENTRIES] }
    }

    /// The cached run covering file block `lblk`, if one was read under
    /// `epoch` (the mount's current epoch).
    pub(crate) fn lookup(&self, epoch: u64, lblk: u64) -> Option<Run> {
        let s = self.seq.load(Ordering::Acquire);
        if s & 1 != 0 {
            return None;
        }
        let mut hit = None;
        for e in &self.ent {
            if e.epoch.load(Ordering::Relaxed) != epoch {
                continue;
            }
            let (l, c) = (e.lblk.load(Ordering::Relaxed), e.count.load(Ordering::Relaxed));
            if lblk >= l && lblk - l < c {
                hit = Some(Run { lblk: l, pblk: e.pblk.load(Ordering::Relaxed), count: c });
                break;
            }
        }
        // order the field loads before the re-check (seqlock reader)
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s {
            return None;
        }
        hit
    }

    /// Records `run`, read under `epoch`, unless another filler is at it.
    pub(crate) fn insert(&self, epoch: u64, run: Run) {
        if run.count == 0 {
            return;
        }
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 != 0 || self.seq.compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        // order the odd sequence before the field stores (seqlock writer)
        fence(Ordering::Release);
        let cur = |e: &Entry| e.epoch.load(Ordering::Relaxed) == epoch;
        if self.ent.iter().any(|e| cur(e) && e.lblk.load(Ordering::Relaxed) == run.lblk) {
            // already there (two readers missed at once)
            self.seq.store(s + 2, Ordering::Release);
            return;
        }
        let slot = self
            .ent
            .iter()
            .position(|e| !cur(e))
            .unwrap_or_else(|| self.victim.fetch_add(1, Ordering::Relaxed) as usize % ENTRIES);
        let e = &self.ent[slot];
        e.lblk.store(run.lblk, Ordering::Relaxed);
        e.pblk.store(run.pblk, Ordering::Relaxed);
        e.count.store(run.count, Ordering::Relaxed);
        e.epoch.store(epoch, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }
}
