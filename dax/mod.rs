// SPDX-License-Identifier: GPL-2.0
//! The pmem side of a mount: claiming the `dax_device` as its holder, and the
//! engine's media backed by the device's direct (kernel) mapping.
//!
//! ferrofs reaches its metadata with loads and stores on the dax mapping, the
//! same mapping fsdax hands to user page tables for file data. Reads use
//! `copy_mc_to_kernel` so a poisoned line becomes a `MediaError` (EIO)
//! instead of a machine-check panic; writes use `memcpy_flushcache` and
//! explicit write-back, and `fence` is `pmem_wmb()`.

use crate::bindings;
use crate::engine::{Media, MediaError};
use crate::vfs::SuperBlock;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

/// A claimed dax_device: we are its holder until the last of the mount's
/// `DaxClaim` and the engine's `PmemMedia` is dropped (`fs_put_dax`).
pub(crate) struct DaxClaim(Arc<Claim>);

/// The claim itself, shared by the mount and the media over it.
pub(crate) struct Claim {
    dev: *mut bindings::dax_device,
    holder: *mut c_void,
    /// Byte offset of the block device (partition) within the dax device.
    pub(crate) start_off: u64,
    /// Kernel virtual address of the first byte of the block device.
    kaddr: *mut u8,
    /// Bytes mapped (the whole block device).
    pub(crate) len: u64,
    /// Page frame number of the first byte of the block device.
    pfn: u64,
}

// SAFETY: the dax_device pointer and the kernel mapping are valid from any
// thread while the claim is held; all access to the mapping is serialised by
// the engine's mutex or is to user data ranges owned by fsdax.
unsafe impl Send for Claim {}
// SAFETY: as above; `&Claim` hands out only the raw dax_device pointer
// (the mapping is reached through `PmemMedia` alone).
unsafe impl Sync for Claim {}

impl core::ops::Deref for DaxClaim {
    type Target = Claim;
    fn deref(&self) -> &Claim {
        &self.0
    }
}

/// The holder lock (a global mutex): held by the holder callback while it
/// turns the claim's holder into a super_block and its state, and by
/// whoever publishes or releases either (`FsInfo::install`/`release`,
/// `DaxClaim`'s drop). A callback that found our super_block as the holder
/// therefore finishes before the claim is dropped and the super_block can
/// be freed; one that starts later finds no holder (fs_put_dax cleared it).
/// 6.12 gives a holder no such guarantee itself (`fs_put_dax` does not wait
/// for a running `dax_holder_notify_failure`), and the dax SRCU that would
/// is private to drivers/dax. Memory failures are rare and slow: one lock
/// for all mounts costs nothing that matters.
///
/// Lock order: holder lock, then everything a memory failure takes (the
/// invalidate lock of an owner, the engine, the rmap).
pub(crate) struct HolderLock(());

impl HolderLock {
    pub(crate) fn new() -> Self {
        // SAFETY: a static mutex; released by Drop.
        unsafe { bindings::ferrofs_holder_lock() };
        HolderLock(())
    }
}

impl Drop for HolderLock {
    fn drop(&mut self) {
        // SAFETY: taken in new.
        unsafe { bindings::ferrofs_holder_unlock() };
    }
}

impl DaxClaim {
    /// Claims the dax_device behind `sb`'s block device as its holder with
    /// `ops`, and maps all of it.
    pub(crate) fn claim(sb: &SuperBlock, ops: &'static bindings::dax_holder_operations) -> Result<Self> {
        let sbp = sb.as_ptr();
        // SAFETY: during fill_super, s_bdev is the opened block device.
        let bdev = unsafe { (*sbp).s_bdev };
        // SAFETY: bdev is live (opened by get_tree_bdev).
        if !unsafe { bindings::ferrofs_bdev_dax_capable(bdev) } {
            crate::vfs::fs_err!(sb.id(), "device does not support DAX; ferrofs needs a pmem device in fsdax mode\n");
            return Err(EINVAL);
        }
        let mut start_off: u64 = 0;
        // SAFETY: bdev is live; holder is our super_block, which outlives the
        // claim (dropped in put_super or fill_super's failure path, before
        // the super_block goes); ops is a static table.
        let dev = unsafe { bindings::fs_dax_get_by_bdev(bdev, &mut start_off, sbp.cast(), ops) };
        if dev.is_null() {
            crate::vfs::fs_err!(sb.id(), "dax device is already claimed by another holder\n");
            return Err(EBUSY);
        }
        let mut claim = Claim { dev, holder: sbp.cast(), start_off, kaddr: core::ptr::null_mut(), len: 0, pfn: 0 };
        // SAFETY: bdev is live.
        let len = unsafe { bindings::ferrofs_bdev_nr_bytes(bdev) } as u64;
        let pages = (len / bindings::FERROFS_PAGE_SIZE as u64) as isize;
        let mut kaddr: *mut c_void = core::ptr::null_mut();
        // SAFETY: an all-zero pfn_t is valid; filled below.
        let mut pfn = unsafe { core::mem::zeroed::<bindings::pfn_t>() };
        // SAFETY: dax_read_lock/unlock bracket the translation as required;
        // dev is claimed and alive; kaddr/pfn are valid out-pointers.
        let got = unsafe {
            let id = bindings::dax_read_lock();
            let got = bindings::dax_direct_access(
                dev,
                (start_off / bindings::FERROFS_PAGE_SIZE as u64) as usize,
                pages,
                bindings::dax_access_mode_DAX_ACCESS,
                &mut kaddr,
                &mut pfn,
            );
            bindings::dax_read_unlock(id);
            got
        };
        if got < 0 {
            crate::vfs::fs_err!(sb.id(), "dax_direct_access failed: {}\n", got);
            return Err(Error::from_errno(got as c_int));
        }
        if got < pages {
            crate::vfs::fs_err!(sb.id(), "only {} of {} pages are directly mapped (media errors?); refusing to mount\n", got, pages
            );
            return Err(EIO);
        }
        claim.kaddr = kaddr.cast();
        claim.len = len;
        // pfn_t keeps its flags in the top 12 bits.
        claim.pfn = pfn.val & ((1u64 << 52) - 1);
        Ok(DaxClaim(Arc::new(claim, GFP_KERNEL)?))
    }

    /// The engine's media over the whole device; it shares the claim, so
    /// the mapping stays valid for as long as the media exists.
    pub(crate) fn media(&self) -> PmemMedia {
        PmemMedia { claim: self.0.clone() }
    }
}

impl Claim {
    pub(crate) fn dev(&self) -> *mut bindings::dax_device {
        self.dev
    }

    /// Page frame number of filesystem block 0.
    pub(crate) fn base_pfn(&self) -> u64 {
        self.pfn
    }

    /// For debugfs (read-only, the value never changes after mount).
    pub(crate) fn pfn_ptr(&self) -> *mut u64 {
        (&self.pfn as *const u64).cast_mut()
    }

}

impl Drop for Claim {
    fn drop(&mut self) {
        let _g = HolderLock::new();
        // SAFETY: we hold the claim taken in `claim` with this holder; under
        // the holder lock no callback is using the holder (see HolderLock).
        unsafe { bindings::fs_put_dax(self.dev, self.holder) };
    }
}

/// The engine's byte-addressable media: the device's kernel dax mapping,
/// valid while the claim it shares is held (always, by construction).
pub(crate) struct PmemMedia {
    claim: Arc<Claim>,
}

impl PmemMedia {
    /// The mapping's address of bytes [off, off+len), if inside the device.
    fn range(&self, off: u64, len: u64) -> Option<*mut u8> {
        let end = off.checked_add(len)?;
        if end > self.claim.len {
            pr_err!("media access {:#x}+{:#x} beyond device end {:#x}\n", off, len, self.claim.len);
            return None;
        }
        // SAFETY: off < len of the mapping, checked above; the mapping is
        // valid while the claim we share is held.
        Some(unsafe { self.claim.kaddr.add(off as usize) })
    }
}

impl Media for PmemMedia {
    fn size(&self) -> u64 {
        self.claim.len
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> core::result::Result<(), MediaError> {
        // SAFETY: consults our fault_attr (debugfs fail_media_load).
        if unsafe { bindings::ferrofs_should_fail_media_load(buf.len()) } {
            return Err(MediaError { offset: off });
        }
        let src = self.range(off, buf.len() as u64).ok_or(MediaError { offset: off })?;
        // SAFETY: src..src+len is inside the mapping; buf is a valid
        // destination; copy_mc returns the bytes not copied on a poisoned line.
        let left = unsafe { bindings::ferrofs_copy_mc_to_kernel(buf.as_mut_ptr().cast(), src.cast(), buf.len()) };
        if left != 0 {
            return Err(MediaError { offset: off + (buf.len() - left) as u64 });
        }
        Ok(())
    }

    fn write(&self, off: u64, data: &[u8]) {
        if let Some(dst) = self.range(off, data.len() as u64) {
            // SAFETY: dst..dst+len is inside the mapping, exclusively ours
            // under the engine lock; memcpy_flushcache writes around the cache.
            unsafe { bindings::ferrofs_memcpy_flushcache(dst.cast(), data.as_ptr().cast(), data.len()) };
        }
    }

    fn zero(&self, off: u64, len: u64) {
        if let Some(dst) = self.range(off, len) {
            // SAFETY: inside the mapping, as for write; then written back.
            unsafe {
                core::ptr::write_bytes(dst, 0, len as usize);
                bindings::ferrofs_wb_cache_pmem(dst.cast(), len as usize);
            }
        }
    }

    fn copy(&self, dst: u64, src: u64, len: u64) -> core::result::Result<(), MediaError> {
        // SAFETY: as in read.
        if unsafe { bindings::ferrofs_should_fail_media_load(len as usize) } {
            return Err(MediaError { offset: src });
        }
        let d = self.range(dst, len).ok_or(MediaError { offset: dst })?;
        let s = self.range(src, len).ok_or(MediaError { offset: src })?;
        // SAFETY: both ranges are inside the mapping; the engine never copies
        // a block onto itself (CoW copies to a freshly allocated block).
        let left = unsafe { bindings::ferrofs_copy_mc_to_kernel(d.cast(), s.cast(), len as usize) };
        if left != 0 {
            return Err(MediaError { offset: src + (len - left as u64) });
        }
        // SAFETY: d..d+len is inside the mapping.
        unsafe { bindings::ferrofs_wb_cache_pmem(d.cast(), len as usize) };
        Ok(())
    }

    fn flush(&self, off: u64, len: u64) {
        if let Some(p) = self.range(off, len) {
            // SAFETY: inside the mapping; clwb has no other effect.
            unsafe { bindings::ferrofs_wb_cache_pmem(p.cast(), len as usize) };
        }
    }

    fn fence(&self) {
        // SAFETY: a store fence.
        unsafe { bindings::ferrofs_pmem_wmb() };
    }
}
