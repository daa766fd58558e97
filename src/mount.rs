// SPDX-License-Identifier: GPL-2.0
//! The mount's state (`FsInfo`), owned for the mount's whole life, and its
//! one accessor.
//!
//! Lifetime: fill_super installs the pinned `FsInfo` in `s_fs_info` (under
//! the dax holder lock) once the engine is mounted; put_super takes it out
//! (under the same lock) after the VFS evicted every inode, unmounts the
//! engine and drops it, which releases the dax_device claim (`fs_put_dax`,
//! again under the holder lock). Every inode, file and dentry callback runs
//! while its object pins the super_block and, with it, the `FsInfo` (the
//! VFS calls put_super only after the last inode is gone). The only caller
//! without such a pin is the dax holder callback (memory failure, device
//! removal): it finds the super_block and the `FsInfo` under the holder
//! lock, which put_super's two steps also take, so neither can go away
//! while it runs (see `dax::HolderLock`).

use crate::bindings;
use crate::dax::{DaxClaim, PmemMedia};
use crate::engine;
use crate::rmap::PfnRmap;
use crate::vfs::{to_kerr, Inode, RwSem, SuperBlock};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// How file data is accessed. ferrofs keeps file data only on pmem and reads
/// and writes it through DAX, so `always` is the only mode it implements.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DaxMode {
    Always,
}

/// Options parsed from the mount request.
#[derive(Clone, Copy)]
pub(crate) struct MountOpts {
    pub(crate) dax: DaxMode,
    /// `-o ro,norecovery`: mount without rolling back or reaping anything.
    pub(crate) norecovery: bool,
    /// Quota types `usrquota`/`grpquota` turned on (`quota::USR|GRP`).
    pub(crate) quota: u8,
}

/// Counters exported read-only in debugfs
/// (`/sys/kernel/debug/ferrofs/<dev>/`), for tests and users.
#[derive(Default)]
pub(crate) struct Stats {
    /// Faults that installed a 2 MiB PMD mapping.
    pub(crate) pmd_faults: AtomicU64,
    /// PMD faults that fell back to PTEs (unaligned or short extent).
    pub(crate) pmd_fallbacks: AtomicU64,
    /// 4 KiB faults.
    pub(crate) pte_faults: AtomicU64,
    /// Blocks quarantined after memory failures (including earlier mounts).
    pub(crate) poisoned_blocks: AtomicU64,
    /// Memory failure notifications handled.
    pub(crate) memory_failures: AtomicU64,
    /// Engine operations that failed with a media error (EIO).
    pub(crate) media_errors: AtomicU64,
    /// Mapping owners of shared blocks the in-memory rmap could not record
    /// (allocation failure); memory failure reaches them through the
    /// on-media rmap.
    pub(crate) rmap_unrecorded: AtomicU64,
    /// Unlinked inodes evicted after a shutdown, left on the on-media
    /// orphan list for the next mount to free (reported once, at umount).
    pub(crate) orphans_left: AtomicU64,
}

/// What an engine call is for: the class its acquisitions of the engine
/// lock are counted under (debugfs `locks/<class>_{shared,exclusive}`), and
/// whether its exclusive sections may change a written, unshared mapping
/// (which invalidates every inode's extent cache; see `vfs::MapCache`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    /// iomap_begin lookups (reads, faults, overwrites, FIEMAP, SEEK).
    Map,
    /// Writes and write faults that allocate or copy (CoW).
    Alloc,
    /// Inode attributes: read for iget, written back (times, mode, flags).
    Inode,
    /// Name lookup.
    Lookup,
    /// Directory reads.
    Readdir,
    /// create, mknod, mkdir, symlink, tmpfile, link, unlink, rmdir, rename.
    Namespace,
    /// Extended attributes and ACLs.
    Xattr,
    /// Size changes that may shrink (truncate).
    Truncate,
    /// i_size growth after a write, fallocate or reflink past EOF.
    Size,
    /// punch, zero range, fallocate, unshare, collapse and insert range.
    Space,
    /// Reflink and dedupe.
    Remap,
    /// Freeing an unlinked inode.
    Evict,
    /// statfs.
    Statfs,
    /// Memory failure handling.
    MemFail,
    /// The quota layer's reads and writes of the quota files.
    Quota,
    /// Mount, remount, the rest.
    Other,
}

impl Op {
    const COUNT: usize = 16;
    const ALL: [Op; Op::COUNT] = [
        Op::Map,
        Op::Alloc,
        Op::Inode,
        Op::Lookup,
        Op::Readdir,
        Op::Namespace,
        Op::Xattr,
        Op::Truncate,
        Op::Size,
        Op::Space,
        Op::Remap,
        Op::Evict,
        Op::Statfs,
        Op::MemFail,
        Op::Quota,
        Op::Other,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Map => "map",
            Op::Alloc => "alloc",
            Op::Inode => "inode",
            Op::Lookup => "lookup",
            Op::Readdir => "readdir",
            Op::Namespace => "namespace",
            Op::Xattr => "xattr",
            Op::Truncate => "truncate",
            Op::Size => "size",
            Op::Space => "space",
            Op::Remap => "remap",
            Op::Evict => "evict",
            Op::Statfs => "statfs",
            Op::MemFail => "memfail",
            Op::Quota => "quota",
            Op::Other => "other",
        }
    }

    /// May an exclusive section of this class change a mapping the extent
    /// caches hold (written and unshared)? Attributes, names and xattrs
    /// never touch extent maps. `alloc_write` (writes, faults, quota-file
    /// writes) fills holes and unwritten blocks and replaces shared ones, never a written unshared block
    /// (the engine's `written_run` documents the same contract). An unlinked
    /// inode's blocks are freed only by evict, which needs no bump either:
    /// only the evicted inode, which nobody can reach any more, mapped them
    /// unshared (a block it shared becomes unshared for its other owner,
    /// which had not cached it while shared). Growing the size frees
    /// nothing (a size change that shrinks is `Truncate`).
    fn changes_maps(self) -> bool {
        !matches!(
            self,
            Op::Inode | Op::Namespace | Op::Xattr | Op::Alloc | Op::Quota | Op::Size | Op::Evict | Op::Lookup | Op::Readdir | Op::Statfs
        )
    }
}

/// Whether a long range operation (`FsInfo::with_fs_mut_steps`) stops
/// between two steps when the caller has a fatal signal pending.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It runs to the end (punch, unshare: what a truncate or a write needs).
    Never,
    /// It stops, as XFS's remap loop does (xfstests generic/297, 298).
    OnFatalSignal,
}

/// Blocks (8 MiB) one exclusive section of a long range operation (punch,
/// unshare, reflink, dedupe, freeing an unlinked file) covers at most.
pub(crate) const STEP_BLOCKS: u64 = 2048;

/// Acquisitions of the engine lock per class, and extent-cache hits (the
/// iomap_begin calls that took no lock at all).
pub(crate) struct LockStats {
    pub(crate) shared: [AtomicU64; Op::COUNT],
    pub(crate) exclusive: [AtomicU64; Op::COUNT],
    pub(crate) map_cache_hits: AtomicU64,
}

impl Default for LockStats {
    fn default() -> Self {
        LockStats {
            shared: [const { AtomicU64::new(0) }; Op::COUNT],
            exclusive: [const { AtomicU64::new(0) }; Op::COUNT],
            map_cache_hits: AtomicU64::new(0),
        }
    }
}

impl LockStats {
    /// (name, shared counter, exclusive counter) of every class, for debugfs.
    pub(crate) fn classes(&self) -> impl Iterator<Item = (Op, &AtomicU64, &AtomicU64)> {
        Op::ALL.iter().map(move |&op| (op, &self.shared[op as usize], &self.exclusive[op as usize]))
    }
}

/// Per-mount state, pointed to by `sb->s_fs_info`.
#[pin_data]
pub(crate) struct FsInfo {
    /// The engine; `None` once the filesystem is shut down. Read-only
    /// engine calls take it shared, transactions exclusive (`with_fs`,
    /// `with_fs_mut`).
    #[pin]
    pub(crate) fs: RwSem<Option<engine::Fs<PmemMedia>>>,
    /// Bumped at the start of every exclusive section that may change a
    /// written, unshared mapping: the inodes' extent caches hold entries of
    /// one epoch only (see `vfs::MapCache`). Starts at 1 (0 marks an empty
    /// entry).
    pub(crate) map_epoch: AtomicU64,
    pub(crate) locks: LockStats,
    /// Who maps each shared block (see rmap/). Lock order: fs, then rmap.
    #[pin]
    pub(crate) rmap: Mutex<PfnRmap>,
    pub(crate) dax: DaxClaim,
    pub(crate) opts: MountOpts,
    pub(crate) dev: [u8; 32],
    pub(crate) stats: Stats,
    pub(crate) debug_dir: AtomicPtr<bindings::dentry>,
    /// Set (once, never cleared) when the filesystem shuts down, before the
    /// engine is dropped: readers test it without the engine lock.
    pub(crate) shut_down: AtomicBool,
}

impl FsInfo {
    pub(crate) fn dev(&self) -> &str {
        let n = self.dev.iter().position(|&b| b == 0).unwrap_or(self.dev.len());
        core::str::from_utf8(&self.dev[..n]).unwrap_or("?")
    }

    /// Counts an owner of a shared block that the in-memory rmap could not
    /// record; logs the first ten, then every power of two.
    pub(crate) fn rmap_unrecorded(&self, ino: u64, index: u64, pblk: u64) {
        let n = self.stats.rmap_unrecorded.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n.is_power_of_two() {
            crate::vfs::fs_err!(self.dev(), "rmap: inode {} page {} (block {}) not recorded: out of memory ({} so far); the on-media rmap still finds it\n", ino, index, pblk, n);
        }
    }

    /// Runs the read-only `f` on the engine under the shared engine lock, so
    /// that it runs beside other readers. Corruption is logged with the
    /// device and structure; a shut-down filesystem returns EIO.
    pub(crate) fn with_fs<R>(
        &self,
        op: Op,
        f: impl FnOnce(&engine::Fs<PmemMedia>) -> core::result::Result<R, engine::Error>,
    ) -> Result<R> {
        self.locks.shared[op as usize].fetch_add(1, Ordering::Relaxed);
        self.engine_section(|| {
            let g = self.fs.read();
            match g.as_ref() {
                None => Err(EIO),
                Some(fs) => f(fs).map_err(|e| self.engine_error(e)),
            }
        })
    }

    /// Runs the transaction(s) of `f` under the exclusive engine lock.
    pub(crate) fn with_fs_mut<R>(
        &self,
        op: Op,
        f: impl FnOnce(&mut engine::Fs<PmemMedia>) -> core::result::Result<R, engine::Error>,
    ) -> Result<R> {
        self.locks.exclusive[op as usize].fetch_add(1, Ordering::Relaxed);
        self.engine_section(|| {
            let mut g = self.fs.write();
            if op.changes_maps() {
                // before anything changes: from here on no cached mapping
                // is served until the cache is refilled under a shared lock,
                // which waits for us
                self.next_epoch();
            }
            match g.as_mut() {
                None => Err(EIO),
                Some(fs) => f(fs).map_err(|e| self.engine_error(e)),
            }
        })
    }

    /// Runs `f`, an exclusive section that may change the blocks `inode`
    /// maps, with its quota charge kept exact: first, if a limit can apply
    /// (`quota::limits_may_apply`), `growth(fs)` blocks (the most `f` can
    /// add) are charged, and if that is over a limit (EDQUOT) `f` does not
    /// run; after `f`, whatever it returned (a
    /// failed transaction rolls back), the charge is settled at the block
    /// count the engine has for the inode, and that count becomes the one
    /// getattr reports (faults allocate without passing through the VFS
    /// inode). Both happen inside the section, so no other allocation of
    /// this filesystem comes in between. If the inode cannot be read back
    /// (a media error), a failed `f` gives its charge back, and a
    /// successful one still succeeds: its change is committed, so an error
    /// would tell the caller (a create, say) that nothing happened when a
    /// name is on the media. Its charge is then marked unsettled, and the
    /// next read of the inode (`inode::refresh`) settles it.
    pub(crate) fn with_fs_mut_charged<R>(
        &self,
        op: Op,
        inode: &Inode,
        growth: impl FnOnce(&engine::Fs<PmemMedia>) -> core::result::Result<u64, engine::Error>,
        f: impl FnOnce(&mut engine::Fs<PmemMedia>) -> core::result::Result<R, engine::Error>,
    ) -> Result<R> {
        let ino = inode.ino();
        self.with_fs_mut(op, |fs| {
            let g = if crate::quota::limits_may_apply(inode) { growth(fs)? } else { 0 };
            if let Err(e) = crate::quota::charge_blocks(inode, g) {
                return Ok(Err(e));
            }
            let r = f(fs);
            match fs.read_inode(ino) {
                // f may have committed steps before it failed: show them too
                Ok(i) => {
                    crate::quota::settle_blocks(inode, Some(i.blocks), g);
                    inode.state().set_blocks(i.blocks);
                    inode.state().swap_unsettled(false);
                }
                Err(_) if r.is_err() => crate::quota::settle_blocks(inode, None, g),
                // the media error itself is in the log already
                Err(_) => {
                    inode.state().swap_unsettled(true);
                }
            }
            Ok(Ok(r?))
        })?
    }

    /// Runs a long range operation over `count` blocks in steps of at most
    /// `STEP_BLOCKS`, one exclusive section each: `f(fs, at, n)` handles
    /// blocks `[at, at + n)` of the range. Each step starts where
    /// `next(fs, from)` says the first block at or after `from` with work
    /// is (None: nothing left), so that the holes of a sparse range cost
    /// nothing: a range can now be 2^51 blocks, 2^40 steps of nothing.
    /// Between two steps the engine lock is free, so reads, faults and
    /// other files' operations get in (the caller's inode locks keep its
    /// own files out). This changes nothing a crash can show: within one
    /// engine call each bounded transaction already commits on its own
    /// (`tx_restart`), so a crash leaves a prefix of the work done either
    /// way.
    /// Each step is charged to `inode`'s quotas as in
    /// `with_fs_mut_charged`: first what `charge(fs, at, n)` says the step
    /// may add (reflink: a block for each of its `n`; a copy-on-write or an
    /// unshare: a copy for each shared block while it runs; a step that
    /// frees or moves blocks: nothing), then settled.
    /// `stop` says whether a fatal signal may cut the operation short
    /// (`Stop::OnFatalSignal`: reflink and dedupe, as on XFS) between two
    /// steps. Returns how far it got: blocks `[0, done)` of the range are
    /// handled (`count` when it ran to the end). Each finished step is
    /// committed, so what it returns is what a crash would keep.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_fs_mut_steps(
        &self,
        op: Op,
        inode: &Inode,
        charge: impl Fn(&engine::Fs<PmemMedia>, u64, u64) -> core::result::Result<u64, engine::Error>,
        count: u64,
        next: impl Fn(&engine::Fs<PmemMedia>, u64) -> core::result::Result<Option<u64>, engine::Error>,
        mut f: impl FnMut(&mut engine::Fs<PmemMedia>, u64, u64) -> core::result::Result<(), engine::Error>,
        stop: Stop,
    ) -> Result<u64> {
        let mut at = self.with_fs(op, |fs| next(fs, 0))?;
        while let Some(o) = at.filter(|&o| o < count) {
            if stop == Stop::OnFatalSignal && crate::vfs::fatal_signal_pending() {
                // nothing of [o, count) is done; all before it is
                return Ok(o);
            }
            let n = (count - o).min(STEP_BLOCKS);
            at = self.with_fs_mut_charged(op, inode, |fs| charge(fs, o, n), |fs| {
                f(fs, o, n)?;
                next(fs, o + n)
            })?;
            crate::vfs::cond_resched();
        }
        Ok(count)
    }

    /// Frees blocks `[lblk, end)` of `inode` with `with_fs_mut_steps`, each
    /// step at the next mapped block: a sparse file with one block at 8 EiB
    /// is one step. Returns whether anything was mapped there.
    pub(crate) fn punch_steps(&self, op: Op, inode: &Inode, lblk: u64, end: u64) -> Result<bool> {
        let mut any = false;
        let ino = inode.ino();
        self.with_fs_mut_steps(
            op,
            inode,
            |_, _, _| Ok(0),
            end - lblk,
            |fs, from| Ok(fs.next_mapped(ino, lblk + from, end)?.map(|b| b - lblk)),
            |fs, at, n| {
                any = true;
                fs.punch(ino, lblk + at, n)
            },
            Stop::Never,
        )?;
        Ok(any)
    }

    /// Invalidates every inode's extent cache. Called with the engine lock
    /// held exclusive, which is what makes the new epoch cover the change
    /// (caches fill under the shared lock).
    fn next_epoch(&self) {
        self.map_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The current map epoch (see `map_epoch`).
    pub(crate) fn map_epoch(&self) -> u64 {
        self.map_epoch.load(Ordering::Acquire)
    }

    /// Brackets an engine section: the dax read lock (device removal waits
    /// for us) and a NOFS allocation scope.
    fn engine_section<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        // SAFETY: dax_read_lock/unlock bracket every access to the mapping so
        // that device removal (kill_dax) waits for us. Allocations under the
        // engine lock must not recurse into filesystem reclaim (inode
        // eviction takes the same lock): a NOFS scope, like a transaction.
        let (id, nofs) = unsafe { (bindings::dax_read_lock(), bindings::ferrofs_memalloc_nofs_save()) };
        // SAFETY: our claim keeps the dax_device allocated.
        let r = if !unsafe { bindings::dax_alive(self.dax.dev()) } { Err(EIO) } else { f() };
        // SAFETY: paired with the lock and scope above.
        unsafe {
            bindings::ferrofs_memalloc_nofs_restore(nofs);
            bindings::dax_read_unlock(id);
        }
        r
    }

    /// Logs what an engine error says about the device, and converts it.
    fn engine_error(&self, e: engine::Error) -> Error {
        match e {
            engine::Error::Corrupt { what, block } => {
                crate::vfs::fs_err!(self.dev(), "metadata corruption in {} at block {}\n", what, block)
            }
            engine::Error::Io { block } => {
                // the first ten, then every power of two: a failing device
                // must not flood the log
                let n = self.stats.media_errors.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 10 || n.is_power_of_two() {
                    crate::vfs::fs_err!(self.dev(), "media error at block {} (EIO; {} so far)\n", block, n);
                }
            }
            _ => {}
        }
        to_kerr(e)
    }

    /// Stops all further engine access (memory failure in metadata, device
    /// removal). The engine is dropped without its clean unmount, so the
    /// superblock stays marked dirty; put_super then only releases the device.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn shutdown(&self, why: &str) {
        self.shut_down.store(true, Ordering::Release);
        let mut g = self.fs.write();
        self.next_epoch();
        if let Some(fs) = g.as_mut() {
            // frozen (FIFREEZE, or the freeze of FS_IOC_SHUTDOWN's default
            // mode) the media says clean; after a shutdown it must say
            // that the next mount recovers, whatever the mode. If even
            // this write fails, the media is clean and consistent.
            let _ = fs.unquiesce();
        }
        if g.take().is_some() {
            crate::vfs::fs_err!(self.dev(), "shutting down: {}; further access fails with EIO\n", why);
        }
    }

}


impl FsInfo {
    /// The state of a mounted ferrofs super_block.
    ///
    /// Sound for any `&SuperBlock` of ours: `s_fs_info` is NULL or the
    /// pinned `FsInfo`, which stays until put_super, and a `&SuperBlock`
    /// only exists while something pins the super_block (an inode, a file,
    /// a dentry, the mount being set up or torn down by the caller, or the
    /// holder lock). EIO before fill_super installed it or after put_super
    /// took it.
    pub(crate) fn of(sb: &SuperBlock) -> Result<&FsInfo> {
        // SAFETY: see above: NULL or a live, pinned FsInfo that outlives
        // every borrow of `sb` that can reach this.
        unsafe { sb.fs_info().cast::<FsInfo>().as_ref() }.ok_or(EIO)
    }

    /// Installs the state in `sb` (fill_super, once the engine is mounted).
    pub(crate) fn install(sb: &SuperBlock, info: Pin<KBox<FsInfo>>) {
        let _g = crate::dax::HolderLock::new();
        // SAFETY: the FsInfo is never moved out of its box (it is only
        // dropped, in `release`); the super_block is being set up by us.
        let p = KBox::into_raw(unsafe { Pin::into_inner_unchecked(info) });
        // SAFETY: fill_super owns the new super_block's fields; the holder
        // callback reads s_fs_info only under the lock we hold.
        unsafe { sb.set_fs_info(p.cast()) };
    }

    /// Takes the state out of `sb` (put_super, or a failed fill_super):
    /// from here on no caller can reach it.
    pub(crate) fn release(sb: &SuperBlock) -> Option<KBox<FsInfo>> {
        let _g = crate::dax::HolderLock::new();
        let p = sb.fs_info().cast::<FsInfo>();
        if p.is_null() {
            return None;
        }
        // SAFETY: put_super (or fill_super's failure path) owns the
        // super_block's fields; the holder callback reads them only under
        // the lock we hold.
        unsafe { sb.set_fs_info(core::ptr::null_mut()) };
        // SAFETY: p came from KBox::into_raw in `install`, and is taken
        // once (the field is NULL now).
        Some(unsafe { KBox::from_raw(p) })
    }
}

/// The state of the super_block an inode belongs to.
pub(crate) fn info_of(inode: &Inode) -> Result<&FsInfo> {
    FsInfo::of(inode.sb())
}
