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
use crate::engine::{self, BlockUse};
use crate::mount::{FsInfo, Op};
use crate::vfs::{Inode, SuperBlock, Table};
use core::sync::atomic::Ordering;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

const BLOCK: u64 = engine::BLOCK_SIZE;

/// An owner of a poisoned block: page `index` of inode `ino` (ordered by
/// inode, then page, so one inode's lost pages sort into runs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Victim {
    ino: u64,
    index: u64,
}

/// The dax holder operations of every ferrofs mount.
pub(crate) static HOLDER_OPS: bindings::dax_holder_operations = bindings::dax_holder_operations {
    notify_failure: Some(notify_failure),
};

/// `dax_holder_operations.notify_failure`: memory failure on our device, or
/// the device about to go away (MF_MEM_PRE_REMOVE).
unsafe extern "C" fn notify_failure(dax_dev: *mut bindings::dax_device, offset: u64, len: u64, mf_flags: c_int) -> c_int {
    // The holder lock keeps the holder (our super_block) and its FsInfo
    // from going away while we use them: put_super releases both under it.
    let _g = crate::dax::HolderLock::new();
    // SAFETY: the dax core calls us with the device we claimed; reading its
    // holder under the holder lock is what makes the pointer usable below.
    let holder = unsafe { bindings::dax_holder(dax_dev) }.cast::<bindings::super_block>();
    if holder.is_null() {
        // the claim was released (unmount) before we got the lock
        return ENODEV.to_errno();
    }
    // SAFETY: a non-NULL holder under the holder lock is a live ferrofs
    // super_block: it stays until the claim is dropped, which takes the lock.
    let sb = unsafe { SuperBlock::from_raw(holder) };
    let Ok(info) = FsInfo::of(sb) else {
        // fill_super has not finished, or put_super is tearing down
        return EBUSY.to_errno();
    };
    crate::vfs::to_c(memory_failure(sb, info, offset, len, mf_flags))
}

/// Handles a memory failure (or device removal) on a mounted ferrofs.
fn memory_failure(sb: &SuperBlock, info: &FsInfo, offset: u64, len: u64, mf_flags: c_int) -> Result {
    info.stats.memory_failures.fetch_add(1, Ordering::Relaxed);
    let pre_remove = mf_flags & bindings::FERROFS_MF_MEM_PRE_REMOVE != 0;
    if pre_remove || (offset == 0 && len == u64::MAX) {
        let why = if pre_remove { "the pmem device is being removed" } else { "the whole device failed" };
        info.shutdown(why);
        if !pre_remove {
            // every file may have lost data: one FS_ERROR for the filesystem
            report_error(sb, None);
        }
        sb.unmap_all(pre_remove);
        return Ok(());
    }
    let dev_len = info.dax.len;
    let start = offset.checked_sub(info.dax.start_off).filter(|s| *s < dev_len).ok_or(ENXIO)?;
    let end = start.saturating_add(len).min(dev_len);
    let (pblk, count) = (start / BLOCK, end.div_ceil(BLOCK) - start / BLOCK);

    // 1. Who owns these blocks, and what are they? One block can have
    //    millions of owners (reflinks): a kvmalloc'd list, not one kmalloc
    //    (past 4 MiB, 262144 owners, that fails and warns).
    let mut victims: KVVec<Victim> = KVVec::new();
    let mut what = BlockUse::Free;
    let r = info.with_fs_mut(Op::MemFail, |fs| {
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
        what = fs.block_use(pblk, !victims.is_empty())?;
        if what != BlockUse::FixedMetadata {
            fs.quarantine(pblk, count)?;
        }
        Ok(())
    });
    if let Err(e) = r {
        info.shutdown("cannot record a memory failure");
        return Err(e);
    }
    crate::vfs::fs_err!(info.dev(), "memory failure in {} at block {} (+{}), {} owner pages\n", what.describe(), pblk, count, victims.len());
    if what.is_metadata() {
        info.shutdown("memory failure in metadata");
        report_error(sb, None);
        sb.unmap_all(false);
        return Ok(());
    }
    info.stats.poisoned_blocks.fetch_add(count, Ordering::Relaxed);

    // 2. Owners the in-memory rmap knows about (mapped shared pages). Most
    //    are in the on-media list already: sort, and skip repeats below
    //    (a linear search per owner was O(n^2) for a block's n owners).
    {
        let mut rmap = info.rmap.lock();
        for b in pblk..pblk + count {
            rmap.owners_of(b, |o| {
                let _ = victims.push(Victim { ino: o.ino, index: o.index }, GFP_KERNEL);
            });
        }
    }
    victims.sort_unstable();

    // 3. Signal early-kill mappers, then unmap the lost pages from every
    //    cached owner's mapping, whoever maps them; tell fanotify once per
    //    owner. An inode's lost pages come as runs of consecutive indexes
    //    (a file of reflinks of one block loses every page): one log line,
    //    one inode lookup and one unmap per run.
    let v = victims.as_slice();
    let mut i = 0;
    while i < v.len() {
        let (ino, first) = (v[i].ino, v[i].index);
        let mut j = i + 1;
        let mut last = first;
        while j < v.len() && v[j].ino == ino && v[j].index <= last.saturating_add(1) {
            last = v[j].index;
            j += 1;
        }
        let new_inode = i == 0 || v[i - 1].ino != ino;
        i = j;
        // An owner not in cache maps nothing; its next access goes through
        // iomap_begin, which refuses the quarantined block.
        let Some(inode) = sb.ilookup(ino) else { continue };
        if first == last {
            crate::vfs::fs_err!(info.dev(), "inode {} lost page {} to a memory failure\n", ino, first);
        } else {
            crate::vfs::fs_err!(info.dev(), "inode {} lost pages {}-{} ({} pages) to a memory failure\n", ino, first, last, last - first + 1);
        }
        if new_inode {
            report_error(sb, Some(&inode));
        }
        // one page at a time: mf_dax_kill_procs stops a range at the first
        // page it cannot lock (EBUSY), and this one may be unmapped
        for index in first..=last {
            let e = inode.kill_procs(index, 1, mf_flags);
            if e != 0 && e != -(bindings::EBUSY as c_int) {
                crate::vfs::fs_err!(info.dev(), "inode {} page {}: mf_dax_kill_procs failed ({})\n", ino, index, e);
            }
            // SAFETY: process context (the hwpoison path may sleep).
            unsafe { bindings::ferrofs_cond_resched() };
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
        // A MAP_PRIVATE copy a process already made is its own.
        let _inv = inode.invalidate_lock_only();
        inode.unmap_range((first * BLOCK) as i64, ((last - first + 1) * BLOCK) as i64);
    }
    Ok(())
}

/// Raises FS_ERROR (EIO) for `inode`, or for the whole filesystem: a
/// fanotify group watching the filesystem with FAN_FS_ERROR gets the
/// inode's file handle and the error. fanotify merges error events of one
/// filesystem while one is still queued (6.12), so a burst reaches a slow
/// reader as one event whose count says how many were raised.
pub(crate) fn report_error(sb: &SuperBlock, inode: Option<&Inode>) {
    sb.report_error(inode, bindings::EIO)
}

/// A read, write or fault of `inode` failed on lost data (a quarantined
/// block, or a load that consumed poison): FS_ERROR for the inode. Not once
/// the filesystem is shut down: that was reported for the filesystem.
pub(crate) fn report_data_loss(inode: &Inode) {
    if FsInfo::of(inode.sb()).is_ok_and(|i| !i.is_shut_down()) {
        report_error(inode.sb(), Some(inode));
    }
}

unsafe extern "C" fn rmap_show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: single_open stored the FsInfo pointer (the debugfs file's
    // data); debugfs keeps the file alive only while the FsInfo is.
    let info = unsafe { &*((*m).private as *const FsInfo) };
    let rmap = info.rmap.lock();
    // ~30 bytes a line: a block with 300k owners is ~9 MiB, more than one
    // kmalloc can hold (that warned and cut the listing short)
    let mut out: KVVec<u8> = KVVec::new();
    let mut full = true;
    let mut line = |args: core::fmt::Arguments<'_>| {
        let mut w = Writer(&mut out);
        full &= core::fmt::write(&mut w, args).is_ok();
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
    if !full {
        // a cut listing would pass for the whole map: fail the read
        return ENOMEM.to_errno();
    }
    // SAFETY: m is the seq_file being shown; out is a valid buffer.
    unsafe { bindings::seq_write(m, out.as_ptr().cast(), out.len()) };
    0
}

struct Writer<'a>(&'a mut KVVec<u8>);
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
