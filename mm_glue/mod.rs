// SPDX-License-Identifier: GPL-2.0
//! Memory-management glue: memory failure and device removal reported by the
//! dax holder, and the debugfs view of the per-PFN reverse map.
//!
//! A poisoned data block is resolved to every owner through the engine's
//! on-media rmap btree (authoritative, includes inodes not in cache) and the
//! in-memory `PfnRmap`; every cached owner's mapping goes through
//! `mf_dax_kill_procs` (early-kill mappers get BUS_MCEERR_AO) and then loses
//! the page from its page tables, so every other mapper gets BUS_MCEERR_AR
//! at its next access, through whichever reflinked file it maps. The block is quarantined in the engine's bad
//! block list (never reallocated; reads of it fail with EIO). A poisoned
//! metadata block, device removal or a whole-device failure shut the
//! filesystem down instead.

use crate::bindings;
use crate::engine;
use crate::super_ops::FsInfo;
use crate::vfs::{SuperBlock, Table};
use core::sync::atomic::Ordering;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

const BLOCK: u64 = engine::BLOCK_SIZE;

/// An owner of a poisoned block: page `index` of inode `ino`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Victim {
    ino: u64,
    index: u64,
}

/// Handles `dax_holder_operations.notify_failure` for a mounted ferrofs.
pub(crate) fn memory_failure(sb: &SuperBlock, info: &FsInfo, offset: u64, len: u64, mf_flags: c_int) -> Result {
    info.stats.memory_failures.fetch_add(1, Ordering::Relaxed);
    let pre_remove = mf_flags & bindings::FERROFS_MF_MEM_PRE_REMOVE != 0;
    if pre_remove || (offset == 0 && len == u64::MAX) {
        let why = if pre_remove { "the pmem device is being removed" } else { "the whole device failed" };
        info.shutdown(why);
        if !pre_remove {
            // every file may have lost data: one FS_ERROR for the filesystem
            report_error(sb, core::ptr::null_mut());
        }
        // SAFETY: sb is live (we are its dax holder); the shim takes the
        // inode list lock and references as drop_pagecache_sb does.
        unsafe { bindings::ferrofs_unmap_all(sb.as_ptr(), pre_remove) };
        return Ok(());
    }
    let dev_len = info.dax.len;
    let start = offset.checked_sub(info.dax.start_off).filter(|s| *s < dev_len).ok_or(ENXIO)?;
    let end = start.saturating_add(len).min(dev_len);
    let (pblk, count) = (start / BLOCK, end.div_ceil(BLOCK) - start / BLOCK);

    // 1. Who owns these blocks, and what are they?
    let mut victims: KVec<Victim> = KVec::new();
    let mut kind = "free space";
    let r = info.with_fs(|fs| {
        let data_start = fs.superblock().data_start;
        let mut push_err = false;
        fs.owners(pblk, count, &mut |ino, lblk, p, l| {
            // (p, l, lblk) come from the media: no overflow on a damaged record
            let (s, e) = (p.max(pblk), p.saturating_add(l).min(pblk + count));
            for b in s..e {
                push_err |= victims.push(Victim { ino, index: lblk.saturating_add(b - p) }, GFP_KERNEL).is_err();
            }
        })?;
        if push_err {
            return Err(engine::Error::NoSpace);
        }
        if pblk < data_start {
            kind = "fixed metadata (superblock, journal or bitmap)";
        } else if victims.is_empty() && fs.block_in_use(pblk)? {
            kind = "metadata (btree node or xattr value)";
        } else if !victims.is_empty() {
            kind = "file data";
        }
        if kind != "fixed metadata (superblock, journal or bitmap)" {
            fs.quarantine(pblk, count)?;
        }
        Ok(())
    });
    if let Err(e) = r {
        info.shutdown("cannot record a memory failure");
        return Err(e);
    }
    crate::vfs::fs_err!(info.dev(), "memory failure in {} at block {} (+{}), {} owner pages\n", kind, pblk, count, victims.len());
    if kind.contains("metadata") {
        info.shutdown("memory failure in metadata");
        report_error(sb, core::ptr::null_mut());
        // SAFETY: as above.
        unsafe { bindings::ferrofs_unmap_all(sb.as_ptr(), false) };
        return Ok(());
    }
    info.stats.poisoned_blocks.fetch_add(count, Ordering::Relaxed);

    // 2. Owners the in-memory rmap knows about (mapped shared pages).
    {
        let rmap = info.rmap.lock();
        for b in pblk..pblk + count {
            for o in rmap.owners_of(b) {
                let v = Victim { ino: o.ino, index: o.index };
                if !victims.iter().any(|x| *x == v) {
                    let _ = victims.push(v, GFP_KERNEL);
                }
            }
        }
    }

    // 3. Signal early-kill mappers, then unmap the lost page from every
    //    cached owner's mapping, whoever maps it; tell fanotify once per
    //    owner.
    let mut reported: KVec<u64> = KVec::new();
    for v in victims.iter() {
        // SAFETY: sb is live; ilookup returns a referenced inode or NULL
        // (an owner not in cache maps nothing; its next access goes through
        // iomap_begin, which refuses the quarantined block).
        let ip = unsafe { bindings::ilookup(sb.as_ptr(), v.ino as _) };
        if ip.is_null() {
            continue;
        }
        crate::vfs::fs_err!(info.dev(), "inode {} lost page {} to a memory failure\n", v.ino, v.index);
        if !reported.contains(&v.ino) {
            let _ = reported.push(v.ino, GFP_KERNEL);
            report_error(sb, ip);
        }
        // SAFETY: the inode is referenced; its mapping is live.
        let e = unsafe { bindings::mf_dax_kill_procs((*ip).i_mapping, v.index as _, 1, mf_flags) };
        if e != 0 && e != -(bindings::EBUSY as c_int) {
            crate::vfs::fs_err!(info.dev(), "inode {} page {}: mf_dax_kill_procs failed ({})\n", v.ino, v.index, e);
        }
        // mf_dax_kill_procs unmaps the page only when it collected a task
        // (an early-kill one, or the current one if it maps this file), so
        // a late-kill process mapping it through this file would keep its
        // PTE or PMD and load the poison again. Unmap it here, always: the
        // next access faults, iomap_begin refuses the block and the process
        // gets SIGBUS/BUS_MCEERR_AR at the address it touched. Unmapping a
        // page inside a DAX PMD mapping zaps the whole PMD (a file PMD is
        // never split into PTEs), and the other 511 pages fault back in
        // through PTEs. After mf_dax_kill_procs, not before: it finds the
        // early-kill tasks by their page-table entries. The invalidate lock
        // waits for a fault that mapped the block before the quarantine.
        // even_cows=0: a MAP_PRIVATE copy a process already made is its own.
        // SAFETY: the inode is referenced; the lock is the mapping's own.
        unsafe {
            bindings::ferrofs_invalidate_lock(ip);
            bindings::unmap_mapping_range((*ip).i_mapping, (v.index * BLOCK) as i64, BLOCK as i64, 0);
            bindings::ferrofs_invalidate_unlock(ip);
        }
        // SAFETY: drops the ilookup reference.
        unsafe { bindings::iput(ip) };
    }
    Ok(())
}

/// Raises FS_ERROR (EIO) for `inode`, or for the whole filesystem if it is
/// null: a fanotify group watching the filesystem with FAN_FS_ERROR gets
/// the inode's file handle and the error. fanotify merges error events of
/// one filesystem while one is still queued (6.12), so a burst reaches a
/// slow reader as one event whose count says how many were raised.
pub(crate) fn report_error(sb: &SuperBlock, inode: *mut bindings::inode) {
    // SAFETY: sb is live; inode is null or referenced by the caller.
    unsafe { bindings::ferrofs_fsnotify_sb_error(sb.as_ptr(), inode, bindings::EIO as c_int) };
}

/// A read, write or fault of `inode` failed on lost data (a quarantined
/// block, or a load that consumed poison): FS_ERROR for the inode. Not once
/// the filesystem is shut down: that was reported for the filesystem.
pub(crate) fn report_data_loss(inode: &crate::vfs::Inode) {
    if inode.sb().info().is_some_and(|i| !i.is_shut_down()) {
        report_error(inode.sb(), inode.as_ptr());
    }
}

/// Before a write of bytes [pos, pos+len) of `inode`: every quarantined
/// block the write covers whole is punched out of the file, so the write
/// puts the new data in a fresh block instead of failing with EIO (a block
/// covered in part still fails: the rest of it is lost). The bad block
/// stays quarantined and other files sharing it keep their reference. This
/// is how an overwrite repairs a damaged file; if the write itself fails
/// afterwards, the range reads as a hole. Caller holds i_rwsem exclusively.
pub(crate) fn replace_damaged(inode: &crate::vfs::Inode, pos: i64, len: i64) -> Result {
    let info = crate::super_ops::info_of(inode)?;
    if info.stats.poisoned_blocks.load(Ordering::Relaxed) == 0 || pos < 0 || len <= 0 {
        return Ok(());
    }
    let first = (pos as u64).div_ceil(BLOCK);
    let end = (pos as u64).saturating_add(len as u64) / BLOCK;
    let ino = inode.ino();
    // (first file block, blocks) of each lost run the write covers
    let mut lost: KVec<(u64, u64)> = KVec::new();
    info.with_fs(|fs| {
        let mut cur = first;
        while cur < end {
            let m = fs.map(ino, cur, end - cur)?;
            if m.kind == engine::MapKind::Written && has_bad_block(fs, m.pblk, m.count)? {
                for i in 0..m.count {
                    if has_bad_block(fs, m.pblk + i, 1)? {
                        let l = m.lblk + i;
                        match lost.last_mut() {
                            Some(r) if r.0 + r.1 == l => r.1 += 1,
                            _ => lost.push((l, 1), GFP_KERNEL).map_err(|_| engine::Error::NoSpace)?,
                        }
                    }
                }
            }
            cur = m.lblk + m.count.max(1);
        }
        Ok(())
    })?;
    if lost.is_empty() {
        return Ok(());
    }
    let p = inode.as_ptr();
    // SAFETY: i_rwsem is held; the exclusive invalidate lock keeps faults
    // out while the blocks leave the file, as for a punch.
    unsafe { bindings::ferrofs_invalidate_lock(p) };
    let r = lost.iter().try_for_each(|&(l, n)| {
        crate::file::unmap_blocks(inode, (l * BLOCK) as i64, ((l + n) * BLOCK) as i64)?;
        info.with_fs(|fs| fs.punch(ino, l, n))?;
        crate::vfs::fs_info!(info.dev(), "inode {}: bytes {}-{} lost to a memory failure are being overwritten; the damaged block stays quarantined\n", ino, l * BLOCK, (l + n) * BLOCK - 1);
        Ok(())
    });
    // SAFETY: paired with the lock above.
    unsafe { bindings::ferrofs_invalidate_unlock(p) };
    r
}

/// True if [pblk, pblk+count) contains a quarantined block.
pub(crate) fn has_bad_block(fs: &engine::Fs<crate::dax::PmemMedia>, pblk: u64, count: u64) -> engine::Result<bool> {
    let mut bad = false;
    fs.bad_blocks(&mut |p, n| bad |= p < pblk.saturating_add(count) && pblk < p.saturating_add(n))?;
    Ok(bad)
}

unsafe extern "C" fn rmap_show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: single_open stored the FsInfo pointer (the debugfs file's
    // data); debugfs keeps the file alive only while the FsInfo is.
    let info = unsafe { &*((*m).private as *const FsInfo) };
    let rmap = info.rmap.lock();
    let mut out: KVec<u8> = KVec::new();
    let mut line = |args: core::fmt::Arguments<'_>| {
        let mut w = Writer(&mut out);
        let _ = core::fmt::write(&mut w, args);
    };
    line(format_args!(
        "# shared pages {} owners {} bytes {}\n# block pfn inode index\n",
        rmap.pages(),
        rmap.owners(),
        rmap.bytes()
    ));
    let base_pfn = info.dax.base_pfn();
    rmap.for_each(|p, o| line(format_args!("{} {:#x} {} {}\n", p, base_pfn + p, o.ino, o.index)));
    drop(rmap);
    // SAFETY: m is the seq_file being shown; out is a valid buffer.
    unsafe { bindings::seq_write(m, out.as_ptr().cast(), out.len()) };
    0
}

struct Writer<'a>(&'a mut KVec<u8>);
impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes(), GFP_KERNEL).map_err(|_| core::fmt::Error)
    }
}

unsafe extern "C" fn rmap_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: debugfs inode with our FsInfo as i_private.
    unsafe { bindings::single_open(file, Some(rmap_show), (*inode).i_private) }
}

/// file_operations of `/sys/kernel/debug/ferrofs/<dev>/rmap`.
pub(crate) static RMAP_FOPS: Table<bindings::file_operations> = Table(bindings::file_operations {
    open: Some(rmap_open),
    read: Some(bindings::seq_read),
    llseek: Some(bindings::seq_lseek),
    release: Some(bindings::single_release),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});
