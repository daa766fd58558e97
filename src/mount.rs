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
use crate::vfs::{to_kerr, Inode, SuperBlock};
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
}

/// Per-mount state, pointed to by `sb->s_fs_info`.
#[pin_data]
pub(crate) struct FsInfo {
    /// The engine; `None` once the filesystem is shut down.
    #[pin]
    pub(crate) fs: Mutex<Option<engine::Fs<PmemMedia>>>,
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

    /// Runs `f` on the engine under the mount's lock. Corruption is logged
    /// with the device and structure; a shut-down filesystem returns EIO.
    pub(crate) fn with_fs<R>(
        &self,
        f: impl FnOnce(&mut engine::Fs<PmemMedia>) -> core::result::Result<R, engine::Error>,
    ) -> Result<R> {
        // SAFETY: dax_read_lock/unlock bracket every access to the mapping so
        // that device removal (kill_dax) waits for us. Allocations under the
        // engine lock must not recurse into filesystem reclaim (inode
        // eviction takes the same lock): a NOFS scope, like a transaction.
        let (id, nofs) = unsafe { (bindings::dax_read_lock(), bindings::ferrofs_memalloc_nofs_save()) };
        // SAFETY: our claim keeps the dax_device allocated.
        let r = if !unsafe { bindings::dax_alive(self.dax.dev()) } {
            Err(EIO)
        } else {
            let mut g = self.fs.lock();
            match g.as_mut() {
                None => Err(EIO),
                Some(fs) => f(fs).map_err(|e| {
                    match e {
                        engine::Error::Corrupt { what, block } => {
                            crate::vfs::fs_err!(self.dev(), "metadata corruption in {} at block {}\n", what, block)
                        }
                        engine::Error::Io { block } => {
                            // the first ten, then every power of two: a
                            // failing device must not flood the log
                            let n = self.stats.media_errors.fetch_add(1, Ordering::Relaxed) + 1;
                            if n <= 10 || n.is_power_of_two() {
                                crate::vfs::fs_err!(self.dev(), "media error at block {} (EIO; {} so far)\n", block, n);
                            }
                        }
                        _ => {}
                    }
                    to_kerr(e)
                }),
            }
        };
        // SAFETY: paired with the lock and scope above.
        unsafe {
            bindings::ferrofs_memalloc_nofs_restore(nofs);
            bindings::dax_read_unlock(id);
        }
        r
    }

    /// Stops all further engine access (memory failure in metadata, device
    /// removal). The engine is dropped without its clean unmount, so the
    /// superblock stays marked dirty; put_super then only releases the device.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn shutdown(&self, why: &str) {
        self.shut_down.store(true, Ordering::Release);
        if self.fs.lock().take().is_some() {
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
