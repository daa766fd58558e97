// SPDX-License-Identifier: GPL-2.0
//! Regular files: the DAX data path.
//!
//! All file data lives on pmem and is reached through fsdax: `read_iter` and
//! `write_iter` are `dax_iomap_rw`, faults are `dax_iomap_fault` (PTE and
//! 2 MiB PMD), and our `iomap_begin` turns the engine's extent map into
//! iomaps. Writes (and write faults) ask the engine for writable, exclusive
//! blocks first (`alloc_write`): holes get zeroed blocks, shared blocks are
//! copied (CoW) and remapped in one engine transaction, so the iomap we
//! return is always plain `IOMAP_MAPPED`.
//!
//! Locking, outermost first: `i_rwsem` (write, truncate, fallocate), the
//! mapping's `invalidate_lock` (exclusive for anything that removes or moves
//! blocks; shared in faults), then the engine mutex (inside iomap_begin and
//! every engine call, never held across a copy to or from userspace).

use crate::bindings;
use crate::engine;
use crate::super_ops::info_of;
use crate::vfs::{to_c, Inode, SuperBlock, Table};
use kernel::ffi::{c_int, c_uint, c_ulong};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

const BLOCK: u64 = engine::BLOCK_SIZE as u64;
const PMD_BLOCKS: u64 = (bindings::FERROFS_PMD_SIZE as u64) / BLOCK;

pub(crate) fn set_file_ops(inode: &Inode) {
    let p = inode.as_ptr();
    // SAFETY: called on a new inode before it is published.
    unsafe {
        (*p).i_op = &FILE_IOPS;
        (*p).__bindgen_anon_3.i_fop = &FILE_FOPS.0;
        (*(*p).i_mapping).a_ops = &DAX_AOPS;
        bindings::inode_set_flags(p, bindings::S_DAX, bindings::S_DAX);
    }
}

/// First and one-past-last block covering [pos, pos+len).
fn blocks(pos: i64, len: i64) -> (u64, u64) {
    let start = pos as u64 / BLOCK;
    let end = (pos as u64).saturating_add(len as u64).div_ceil(BLOCK);
    (start, end.max(start + 1))
}

unsafe extern "C" fn iomap_begin(
    ip: *mut bindings::inode,
    pos: i64,
    length: i64,
    flags: c_uint,
    iomap: *mut bindings::iomap,
    srcmap: *mut bindings::iomap,
) -> c_int {
    // SAFETY: iomap_iter holds a reference on the inode for the call.
    let inode = unsafe { Inode::from_raw(ip) };
    let Ok(info) = info_of(inode) else { return EIO.to_errno() };
    let (lblk, end) = blocks(pos, length);
    let count = end - lblk;
    let write = flags & (bindings::IOMAP_WRITE | bindings::IOMAP_ZERO) != 0;
    let zero_only = flags & bindings::IOMAP_ZERO != 0 && flags & bindings::IOMAP_WRITE == 0;
    let fault = flags & bindings::IOMAP_FAULT != 0;
    let huge = fault && count >= PMD_BLOCKS;
    // Returns the mapping, whether its blocks are new (were a hole or
    // unwritten), and whether they replace shared blocks (CoW).
    let r = info.with_fs(|fs| {
        let mut m = fs.map(inode.ino(), lblk, count)?;
        if m.kind == engine::MapKind::Written
            && info.stats.poisoned_blocks.load(Ordering::Relaxed) != 0
            && crate::mm_glue::has_bad_block(fs, m.pblk, m.count)?
        {
            return Err(engine::Error::Io { block: m.pblk });
        }
        if !write || (zero_only && m.kind != engine::MapKind::Written) {
            if huge && m.shared && m.kind == engine::MapKind::Written {
                // Never a PMD entry over shared blocks: a later PTE fault
                // of the range would make fsdax (6.12 dax_insert_entry)
                // swap the 512-page entry for a 1-page one and leak 511
                // from mapping->nrpages. Shorter than a PMD => fallback.
                m.count = 1;
                return Ok((m, false, false));
            }
            if fault && m.shared && m.kind == engine::MapKind::Written {
                // fsdax maps exactly the faulted page or PMD: record it.
                m.count = m.count.min(count);
                let mut rmap = info.rmap.lock();
                for i in 0..m.count {
                    if rmap.add(m.pblk + i, inode.ino(), m.lblk + i).is_err() {
                        break; // the on-media rmap still knows the owner
                    }
                }
            }
            return Ok((m, false, false));
        }
        if m.kind == engine::MapKind::Written && !m.shared {
            return Ok((m, false, false));
        }
        let flags = engine::AllocFlags { unwritten: false, huge_align: huge, cow_unit: false };
        let n = fs.alloc_write(inode.ino(), lblk, count, flags)?;
        if m.shared {
            info.rmap.lock().forget_range(m.pblk, n.count.min(m.count), inode.ino(), m.lblk);
        }
        Ok((n, m.kind != engine::MapKind::Written, m.shared))
    });
    let (m, new, cow) = match r {
        // iomap needs a mapping that starts at pos and is not empty, or it
        // warns and loops on the same position: never hand it one (the
        // engine answers Corrupt for the damage that could produce it)
        Ok((m, ..)) if m.count == 0 || m.lblk != lblk => {
            crate::vfs::fs_err!(info.dev(), "inode {}: mapping of block {} came back as {}+{}; refusing it\n", inode.ino(), lblk, m.lblk, m.count);
            return crate::vfs::code::euclean().to_errno();
        }
        Ok(v) => v,
        // A fault on a quarantined (poisoned) block: VM_FAULT_HWPOISON, so
        // the process gets SIGBUS/BUS_MCEERR_AR like on poisoned memory.
        Err(e) if fault && e == EIO && !info.is_shut_down() => return -(bindings::EHWPOISON as c_int),
        Err(e) => return e.to_errno(),
    };
    // SAFETY: iomap is ours to fill for this call; dax_dev and bdev outlive
    // the mount.
    unsafe {
        (*iomap).offset = (m.lblk * BLOCK) as i64;
        (*iomap).length = (m.count * BLOCK) as u64;
        (*iomap).bdev = (*(*ip).i_sb).s_bdev;
        (*iomap).dax_dev = info.dax.dev();
        (*iomap).flags = 0;
        match m.kind {
            engine::MapKind::Hole => {
                (*iomap).type_ = bindings::IOMAP_HOLE as u16;
                (*iomap).addr = bindings::IOMAP_NULL_ADDR as u64;
            }
            // Unwritten blocks hold whatever was on the media: only FIEMAP
            // and SEEK_HOLE/DATA (IOMAP_REPORT) and writers see them as
            // such. To readers they are a hole, which reads and faults
            // treat alike, and which keeps dax_dedupe_file_range_compare
            // from comparing stale media bytes (it reads unwritten extents
            // raw and could call unequal data "same").
            engine::MapKind::Unwritten if flags & (bindings::IOMAP_REPORT | bindings::IOMAP_WRITE | bindings::IOMAP_ZERO) == 0 => {
                (*iomap).type_ = bindings::IOMAP_HOLE as u16;
                (*iomap).addr = bindings::IOMAP_NULL_ADDR as u64;
            }
            kind => {
                (*iomap).type_ = if kind == engine::MapKind::Unwritten {
                    bindings::IOMAP_UNWRITTEN as u16
                } else {
                    bindings::IOMAP_MAPPED as u16
                };
                (*iomap).addr = info.dax.start_off + m.pblk * BLOCK;
                if m.shared {
                    (*iomap).flags |= bindings::IOMAP_F_SHARED as u16;
                }
                if new {
                    (*iomap).flags |= bindings::IOMAP_F_NEW as u16;
                }
            }
        }
        if cow {
            // The engine already copied the old blocks into the new ones
            // inside its transaction (crash-safe), so the source fsdax
            // copies "around" the write is the new extent itself. The
            // SHARED flag makes fsdax drop this file's entries and page
            // table entries for the old blocks (other owners keep theirs).
            (*iomap).flags |= bindings::IOMAP_F_SHARED as u16;
            *srcmap = *iomap;
            (*srcmap).flags = 0;
        }
    }
    0
}

static IOMAP_OPS: bindings::iomap_ops = bindings::iomap_ops { iomap_begin: Some(iomap_begin), iomap_end: None };

fn file_inode<'a>(f: *mut bindings::file) -> &'a Inode {
    // SAFETY: an open file pins its inode.
    unsafe { Inode::from_raw(bindings::ferrofs_file_inode(f)) }
}

unsafe extern "C" fn read_iter(iocb: *mut bindings::kiocb, to: *mut bindings::iov_iter) -> isize {
    // SAFETY: iocb/to are valid for the call.
    let inode = file_inode(unsafe { (*iocb).ki_filp });
    // SAFETY: shared i_rwsem excludes truncate/fallocate while we copy.
    unsafe {
        bindings::ferrofs_inode_lock_shared(inode.as_ptr());
        let r = bindings::dax_iomap_rw(iocb, to, &IOMAP_OPS);
        bindings::ferrofs_inode_unlock_shared(inode.as_ptr());
        bindings::ferrofs_file_accessed((*iocb).ki_filp);
        if r == EIO.to_errno() as isize {
            crate::mm_glue::report_data_loss(inode);
        }
        r
    }
}

/// Zeroes the tail of the block holding the old EOF, so that bytes a mmap
/// store left beyond EOF never become file data when the file grows.
fn zero_eof_tail(inode: &Inode, old: i64, new: i64) -> Result {
    let tail = old as u64 % BLOCK;
    if tail == 0 || new <= old {
        return Ok(());
    }
    let len = ((BLOCK - tail) as i64).min(new - old);
    let mut did = false;
    // SAFETY: the caller holds i_rwsem exclusively.
    let r = unsafe { bindings::dax_zero_range(inode.as_ptr(), old, len, &mut did, &IOMAP_OPS) };
    if r < 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// Records a new size in the engine and the VFS inode.
fn commit_size(inode: &Inode, size: i64) -> Result {
    let info = info_of(inode)?;
    let t = inode.now();
    info.with_fs(|fs| fs.set_size(inode.ino(), size as u64, t))?;
    // The engine stamped the size change with `t`; the VFS inode shows the
    // same mtime and ctime. Otherwise the next refresh, which keeps the
    // newer of the two, moved mtime forward by the nanoseconds between
    // file_update_time and this call (xfstests generic/003: a rename after
    // an extending write changed the file's mtime).
    // SAFETY: the caller holds i_rwsem exclusively.
    unsafe {
        bindings::ferrofs_i_size_write(inode.as_ptr(), size);
        bindings::ferrofs_inode_set_time(inode.as_ptr(), 1, t.sec, t.nsec);
        bindings::ferrofs_inode_set_time(inode.as_ptr(), 2, t.sec, t.nsec);
    }
    Ok(())
}

unsafe extern "C" fn write_iter(iocb: *mut bindings::kiocb, from: *mut bindings::iov_iter) -> isize {
    // SAFETY: iocb/from are valid for the call.
    let inode = file_inode(unsafe { (*iocb).ki_filp });
    let p = inode.as_ptr();
    // SAFETY: exclusive i_rwsem for the whole write (size updates included).
    unsafe { bindings::ferrofs_inode_lock(p) };
    let r = (|| -> Result<isize> {
        // SAFETY: standard VFS write checks under i_rwsem.
        let n = unsafe { bindings::generic_write_checks(iocb, from) };
        if n <= 0 {
            return if n < 0 { Err(Error::from_errno(n as c_int)) } else { Ok(0) };
        }
        // SAFETY: as above (removes suid, updates times).
        let m = unsafe { bindings::kiocb_modified(iocb) };
        if m != 0 {
            return Err(Error::from_errno(m));
        }
        let old = inode.size();
        // SAFETY: valid iocb.
        let pos = unsafe { (*iocb).ki_pos };
        zero_eof_tail(inode, old, pos)?;
        crate::mm_glue::replace_damaged(inode, pos, n as i64)?;
        // SAFETY: i_rwsem held; dax_iomap_rw calls back into iomap_begin.
        let done = unsafe { bindings::dax_iomap_rw(iocb, from, &IOMAP_OPS) };
        // SAFETY: valid iocb.
        let end = unsafe { (*iocb).ki_pos };
        if done > 0 && end > inode.size() {
            commit_size(inode, end)?;
        }
        if done < 0 {
            return Err(Error::from_errno(done as c_int));
        }
        Ok(done)
    })();
    // SAFETY: paired with the lock above.
    unsafe { bindings::ferrofs_inode_unlock(p) };
    match r {
        // SAFETY: O_SYNC/O_DSYNC handling after the write.
        Ok(n) if n > 0 => unsafe { bindings::ferrofs_generic_write_sync(iocb, n) },
        Ok(n) => n,
        Err(e) => {
            if e == EIO {
                crate::mm_glue::report_data_loss(inode);
            }
            e.to_errno() as isize
        }
    }
}

/// Truncates or extends the file (setattr with ATTR_SIZE; i_rwsem held).
pub(crate) fn set_size(inode: &Inode, size: i64) -> Result {
    if !matches!(u32::from(inode.mode()) & bindings::S_IFMT, bindings::S_IFREG) {
        return Err(EINVAL);
    }
    let p = inode.as_ptr();
    // SAFETY: size limits for this inode.
    let r = unsafe { bindings::inode_newsize_ok(p, size) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    let old = inode.size();
    if size == old {
        // nothing to change: a truncate(2) to the current size leaves the
        // times alone too (ftruncate(2) asks for them through ATTR_*TIME,
        // which setattr_copy applies), as on XFS and ext4
        return Ok(());
    }
    if size > old {
        zero_eof_tail(inode, old, size)?;
        return commit_size(inode, size);
    }
    // SAFETY: exclusive invalidate lock keeps faults out while blocks go.
    unsafe { bindings::ferrofs_invalidate_lock(p) };
    let r = (|| -> Result {
        // SAFETY: lock held as the helper requires.
        let e = unsafe { bindings::ferrofs_break_layouts(p, size, i64::MAX) };
        if e != 0 {
            return Err(Error::from_errno(e));
        }
        forget_mappings(inode, size, old)?;
        let mut did = false;
        // SAFETY: zeroes the rest of the new EOF block (CoW if shared).
        let e = unsafe { bindings::dax_truncate_page(p, size, &mut did, &IOMAP_OPS) };
        if e != 0 {
            return Err(Error::from_errno(e));
        }
        // A PMD entry straddling the new EOF goes as a whole: write it back
        // first so the part below EOF keeps its flush.
        write_back_pmds(inode, size, size + 1)?;
        // SAFETY: sets i_size and unmaps every page table entry past it.
        unsafe { bindings::truncate_setsize(p, size) };
        let info = info_of(inode)?;
        let t = inode.now();
        info.with_fs(|fs| fs.set_size(inode.ino(), size as u64, t))
    })();
    // SAFETY: paired with the lock above.
    unsafe { bindings::ferrofs_invalidate_unlock(p) };
    r?;
    crate::namei::refresh(inode)
}

unsafe extern "C" fn fsync(file: *mut bindings::file, start: i64, end: i64, datasync: c_int) -> c_int {
    let inode = file_inode(file);
    // SAFETY: writes back (cache-flushes) dirty DAX entries of the range.
    let r = unsafe { bindings::file_write_and_wait_range(file, start, end) };
    if r != 0 {
        return r;
    }
    // Engine metadata is durable when each transaction returns; only the
    // lazily written timestamps may be pending.
    if datasync == 0 {
        return to_c(crate::namei::write_attrs(inode));
    }
    0
}

unsafe extern "C" fn mmap(file: *mut bindings::file, vma: *mut bindings::vm_area_struct) -> c_int {
    // SAFETY: file and vma are valid; we own vm_ops of a new vma.
    unsafe {
        bindings::ferrofs_file_accessed(file);
        (*vma).vm_ops = &DAX_VM_OPS;
        bindings::ferrofs_vm_flags_set(vma, bindings::FERROFS_VM_HUGEPAGE as c_ulong);
    }
    0
}

fn dax_fault(vmf: *mut bindings::vm_fault, order: c_uint) -> bindings::vm_fault_t {
    // SAFETY: vmf is valid for the fault; the vma pins the file and inode.
    let (ip, write) = unsafe { (bindings::ferrofs_vmf_inode(vmf), bindings::ferrofs_vmf_write_shared(vmf)) };
    // SAFETY: as above.
    let sb = unsafe { (*ip).i_sb };
    // SAFETY: the standard fsdax fault sequence (see ext4_dax_huge_fault):
    // freeze protection and time update for shared writes, the invalidate
    // lock shared against truncate/punch/reflink, then dax_iomap_fault.
    unsafe {
        if write {
            bindings::ferrofs_sb_start_pagefault(sb);
            bindings::file_update_time((*(*vmf).__bindgen_anon_1.vma).vm_file);
        }
        bindings::ferrofs_invalidate_lock_shared(ip);
        let mut pfn: bindings::pfn_t = core::mem::zeroed();
        let mut ret = bindings::dax_iomap_fault(vmf, order, &mut pfn, core::ptr::null_mut(), &IOMAP_OPS);
        bindings::ferrofs_invalidate_unlock_shared(ip);
        if ret & bindings::FERROFS_VM_FAULT_HWPOISON != 0 {
            crate::mm_glue::report_data_loss(Inode::from_raw(ip));
        }
        if let Some(info) = SuperBlock::from_raw(sb).info() {
            let st = &info.stats;
            // VM_FAULT_ERROR includes VM_FAULT_FALLBACK: test the
            // fallback first, or no fallback is ever counted.
            let c = if order != 0 && ret & bindings::FERROFS_VM_FAULT_FALLBACK != 0 {
                Some(&st.pmd_fallbacks)
            } else if ret & bindings::FERROFS_VM_FAULT_ERROR != 0 {
                None
            } else if order == 0 {
                Some(&st.pte_faults)
            } else {
                Some(&st.pmd_faults)
            };
            if let Some(c) = c {
                c.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            }
        }
        if ret & bindings::FERROFS_VM_FAULT_NEEDDSYNC != 0 {
            ret = bindings::dax_finish_sync_fault(vmf, order, pfn);
        }
        if write {
            bindings::ferrofs_sb_end_pagefault(sb);
        }
        ret
    }
}

unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    dax_fault(vmf, 0)
}

unsafe extern "C" fn huge_fault(vmf: *mut bindings::vm_fault, order: c_uint) -> bindings::vm_fault_t {
    dax_fault(vmf, order)
}

static DAX_VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    fault: Some(fault),
    huge_fault: Some(huge_fault),
    page_mkwrite: Some(fault),
    pfn_mkwrite: Some(fault),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

unsafe extern "C" fn llseek(file: *mut bindings::file, off: i64, whence: c_int) -> i64 {
    let inode = file_inode(file);
    let p = inode.as_ptr();
    // SAFETY: shared i_rwsem keeps the extent map stable while we walk it.
    unsafe {
        match whence as u32 {
            bindings::SEEK_HOLE | bindings::SEEK_DATA => {
                bindings::ferrofs_inode_lock_shared(p);
                let r = if whence as u32 == bindings::SEEK_HOLE {
                    bindings::iomap_seek_hole(p, off, &IOMAP_OPS)
                } else {
                    bindings::iomap_seek_data(p, off, &IOMAP_OPS)
                };
                bindings::ferrofs_inode_unlock_shared(p);
                if r < 0 {
                    return r;
                }
                bindings::vfs_setpos(file, r, (*(*p).i_sb).s_maxbytes)
            }
            _ => bindings::generic_file_llseek(file, off, whence),
        }
    }
}

/// Drops this inode's rmap owners of bytes [start, end): it is about to stop
/// mapping (or owning) those blocks.
fn forget_mappings(inode: &Inode, start: i64, end: i64) -> Result {
    let info = info_of(inode)?;
    let (first, last) = (start as u64 / BLOCK, (end as u64).div_ceil(BLOCK));
    let ino = inode.ino();
    info.with_fs(|fs| {
        let mut rmap = info.rmap.lock();
        if rmap.owners() == 0 {
            return Ok(());
        }
        let mut cur = first;
        while cur < last {
            let m = fs.map(ino, cur, last - cur)?;
            // not only blocks shared now: one recorded while shared may
            // have become exclusive since (another owner CoWed away)
            if m.kind == engine::MapKind::Written {
                rmap.forget_range(m.pblk, m.count, ino, m.lblk);
            }
            cur = m.lblk + m.count.max(1);
        }
        Ok(())
    })
}

/// Bytes [start, end) widened to whole 2 MiB (PMD) units.
fn pmd_bounds(start: i64, end: i64) -> (i64, i64) {
    let pmd = bindings::FERROFS_PMD_SIZE as i64;
    (start & !(pmd - 1), end.saturating_add(pmd - 1) & !(pmd - 1))
}

/// Writes back the dirty DAX entries of the PMD units covering bytes
/// [start, end) (flushes their CPU cache lines, clears their dirty tags), so
/// that dropping those entries as a whole loses no flush fsync owes.
fn write_back_pmds(inode: &Inode, start: i64, end: i64) -> Result {
    let (start, end) = pmd_bounds(start, end);
    // SAFETY: the mapping is the inode's and lives as long as it.
    let e = unsafe { bindings::filemap_write_and_wait_range((*inode.as_ptr()).i_mapping, start, end - 1) };
    if e != 0 {
        return Err(Error::from_errno(e));
    }
    Ok(())
}

/// Removes bytes [start, end) from page tables and DAX entries before the
/// engine frees, moves or shares their blocks. Caller holds i_rwsem and the
/// invalidate lock.
///
/// The range is widened to whole 2 MiB units: truncate_pagecache_range skips
/// a PMD entry that straddles either end, and a PMD entry left over blocks
/// that are freed (or become shared) keeps stale page associations and, on
/// the next shared PTE fault, corrupts mapping->nrpages (see iomap_begin).
/// The widening is written back first, so no dirty entry outside the range
/// loses the cache flush fsync owes it.
pub(crate) fn unmap_blocks(inode: &Inode, start: i64, end: i64) -> Result {
    let p = inode.as_ptr();
    let (start, end) = pmd_bounds(start, end);
    forget_mappings(inode, start, end)?;
    // SAFETY: locks held as documented.
    let e = unsafe { bindings::ferrofs_break_layouts(p, start, end) };
    if e != 0 {
        return Err(Error::from_errno(e));
    }
    write_back_pmds(inode, start, end)?;
    // SAFETY: unmaps user page tables and drops DAX entries of the range.
    unsafe { bindings::truncate_pagecache_range(p, start, end - 1) };
    Ok(())
}

unsafe extern "C" fn fallocate(file: *mut bindings::file, mode: c_int, off: i64, len: i64) -> isize {
    let inode = file_inode(file);
    let p = inode.as_ptr();
    let mode = mode as u32;
    let supported = bindings::FALLOC_FL_KEEP_SIZE
        | bindings::FALLOC_FL_PUNCH_HOLE
        | bindings::FALLOC_FL_ZERO_RANGE
        | bindings::FALLOC_FL_UNSHARE_RANGE;
    if mode & !supported != 0 {
        return crate::vfs::code::eopnotsupp().to_errno() as isize;
    }
    if off < 0 || len <= 0 {
        return EINVAL.to_errno() as isize;
    }
    // SAFETY: exclusive i_rwsem and invalidate lock for block removal/moves.
    unsafe {
        bindings::ferrofs_inode_lock(p);
        bindings::ferrofs_invalidate_lock(p);
    }
    let r = fallocate_locked(inode, mode, off, len);
    // SAFETY: paired with the locks above.
    unsafe {
        bindings::ferrofs_invalidate_unlock(p);
        bindings::ferrofs_inode_unlock(p);
    }
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}

fn fallocate_locked(inode: &Inode, mode: u32, off: i64, len: i64) -> Result {
    let info = info_of(inode)?;
    let end = off.checked_add(len).ok_or(EFBIG)?;
    let keep = mode & bindings::FALLOC_FL_KEEP_SIZE != 0;
    let ino = inode.ino();
    if !keep && end > inode.size() {
        // SAFETY: limits check for the new size.
        let r = unsafe { bindings::inode_newsize_ok(inode.as_ptr(), end) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
    }
    if mode & (bindings::FALLOC_FL_PUNCH_HOLE | bindings::FALLOC_FL_ZERO_RANGE) != 0 {
        // Zero partial blocks at both edges through DAX, free whole blocks.
        let first_full = (off as u64).div_ceil(BLOCK) as i64 * BLOCK as i64;
        let last_full = (end as u64 / BLOCK) as i64 * BLOCK as i64;
        let size = inode.size();
        let zero = |s: i64, e: i64| -> Result {
            let e = e.min(size);
            if e > s {
                let mut did = false;
                // SAFETY: locks held; zeroes through iomap (CoW if shared).
                let r = unsafe { bindings::dax_zero_range(inode.as_ptr(), s, e - s, &mut did, &IOMAP_OPS) };
                if r < 0 {
                    return Err(Error::from_errno(r));
                }
            }
            Ok(())
        };
        if first_full >= last_full {
            zero(off, end)?;
        } else {
            zero(off, first_full)?;
            zero(last_full, end)?;
            unmap_blocks(inode, first_full, last_full)?;
            let (l, c) = (first_full as u64 / BLOCK, (last_full - first_full) as u64 / BLOCK);
            info.with_fs(|fs| fs.punch(ino, l, c))?;
        }
        if mode & bindings::FALLOC_FL_PUNCH_HOLE != 0 {
            return crate::namei::refresh(inode);
        }
    }
    let (l, e) = blocks(off, len);
    if mode & bindings::FALLOC_FL_UNSHARE_RANGE != 0 {
        // UNSHARE is the default mode plus unsharing: the shared blocks of
        // the range get private copies here, and the preallocation below
        // fills its holes and, without KEEP_SIZE, extends the size (as on
        // XFS; xfstests' fsx uses it that way and found the size short).
        unmap_blocks(inode, (l * BLOCK) as i64, (e * BLOCK) as i64)?;
        info.with_fs(|fs| fs.unshare(ino, l, e - l))?;
    }
    let new_size = if keep || end <= inode.size() { None } else { Some(end) };
    // The engine would round a new size up to whole blocks; the byte-exact
    // size is ours to set (and only when the range ends beyond EOF).
    info.with_fs(|fs| fs.fallocate(ino, l, e - l, true))?;
    if let Some(s) = new_size {
        commit_size(inode, s)?;
    }
    crate::namei::refresh(inode)
}

/// FICLONE, FICLONERANGE, FIDEDUPERANGE and copy_file_range: share the
/// source's extents into the destination (O(extents), never O(bytes)).
unsafe extern "C" fn remap_file_range(
    fin: *mut bindings::file,
    pos_in: i64,
    fout: *mut bindings::file,
    pos_out: i64,
    len: i64,
    flags: c_uint,
) -> i64 {
    if flags & !(bindings::REMAP_FILE_DEDUP | bindings::REMAP_FILE_ADVISORY) != 0 {
        return EINVAL.to_errno() as i64;
    }
    let (src, dst) = (file_inode(fin), file_inode(fout));
    // SAFETY: both inodes are pinned by their files; the helpers order the
    // locks (and take one lock when src == dst).
    unsafe {
        bindings::lock_two_nondirectories(src.as_ptr(), dst.as_ptr());
        bindings::filemap_invalidate_lock_two((*src.as_ptr()).i_mapping, (*dst.as_ptr()).i_mapping);
    }
    let r = remap_locked(fin, pos_in, fout, pos_out, len, flags);
    // SAFETY: paired with the locks above.
    unsafe {
        bindings::filemap_invalidate_unlock_two((*src.as_ptr()).i_mapping, (*dst.as_ptr()).i_mapping);
        bindings::unlock_two_nondirectories(src.as_ptr(), dst.as_ptr());
    }
    match r {
        Ok(n) => n,
        Err(e) => e.to_errno() as i64,
    }
}

fn remap_locked(fin: *mut bindings::file, pos_in: i64, fout: *mut bindings::file, pos_out: i64, len: i64, flags: c_uint) -> Result<i64> {
    let (src, dst) = (file_inode(fin), file_inode(fout));
    let mut len = len;
    // SAFETY: both files valid and locked as the prep requires; it checks
    // types, ranges, EOF rules, immutability, writes back and write-protects
    // the source's dirty DAX entries (so later stores CoW), and for dedupe
    // compares the data through our iomap.
    let e = unsafe { bindings::dax_remap_file_range_prep(fin, pos_in, fout, pos_out, &mut len, flags, &IOMAP_OPS) };
    if e < 0 {
        return Err(Error::from_errno(e));
    }
    if len == 0 {
        return Ok(0);
    }
    let dedupe = flags & bindings::REMAP_FILE_DEDUP != 0;
    let nblocks = (len as u64).div_ceil(BLOCK);
    // Nothing may keep mapping the destination's old blocks, and no DAX
    // entry of the source may stay sized or marked for exclusive blocks.
    unmap_blocks(dst, pos_out, pos_out + (nblocks * BLOCK) as i64)?;
    unmap_blocks(src, pos_in, pos_in + (nblocks * BLOCK) as i64)?;
    let info = info_of(dst)?;
    let (s, d) = (src.ino(), dst.ino());
    let (sl, dl) = (pos_in as u64 / BLOCK, pos_out as u64 / BLOCK);
    info.with_fs(|fs| if dedupe { fs.dedupe(s, sl, d, dl, nblocks) } else { fs.reflink(s, sl, d, dl, nblocks) })?;
    if !dedupe && pos_out + len > dst.size() {
        commit_size(dst, pos_out + len)?;
    }
    crate::namei::refresh(dst)?;
    Ok(len)
}

unsafe extern "C" fn fiemap(ip: *mut bindings::inode, fi: *mut bindings::fiemap_extent_info, start: u64, len: u64) -> c_int {
    // SAFETY: the VFS holds a reference; shared i_rwsem keeps extents stable.
    unsafe {
        bindings::ferrofs_inode_lock_shared(ip);
        let r = bindings::iomap_fiemap(ip, fi, start, len, &IOMAP_OPS);
        bindings::ferrofs_inode_unlock_shared(ip);
        r
    }
}

unsafe extern "C" fn dax_writepages(mapping: *mut bindings::address_space, wbc: *mut bindings::writeback_control) -> c_int {
    // SAFETY: mapping->host is the inode being written back (referenced).
    let inode = unsafe { Inode::from_raw((*mapping).host) };
    let Ok(info) = info_of(inode) else { return EIO.to_errno() };
    // SAFETY: flushes CPU caches of dirty DAX entries of the mapping.
    unsafe { bindings::dax_writeback_mapping_range(mapping, info.dax.dev(), wbc) }
}

static DAX_AOPS: bindings::address_space_operations = bindings::address_space_operations {
    writepages: Some(dax_writepages),
    dirty_folio: Some(bindings::noop_dirty_folio),
    direct_IO: Some(bindings::noop_direct_IO),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

static FILE_FOPS: Table<bindings::file_operations> = Table(bindings::file_operations {
    llseek: Some(llseek),
    read_iter: Some(read_iter),
    write_iter: Some(write_iter),
    mmap: Some(mmap),
    open: Some(bindings::generic_file_open),
    fsync: Some(fsync),
    fallocate: Some(fallocate),
    get_unmapped_area: Some(bindings::thp_get_unmapped_area),
    splice_read: Some(bindings::copy_splice_read),
    // splice(2) into a file, and copy_file_range(2)'s fallback when the
    // range cannot be cloned (unaligned): write_iter with a bvec iterator
    splice_write: Some(bindings::iter_file_splice_write),
    remap_file_range: Some(remap_file_range),
    unlocked_ioctl: Some(crate::ioctl::ioctl),
    fop_flags: bindings::FERROFS_FOP_MMAP_SYNC,
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});

static FILE_IOPS: bindings::inode_operations = bindings::inode_operations {
    getattr: Some(crate::namei::getattr),
    setattr: Some(crate::namei::setattr),
    fiemap: Some(fiemap),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    fileattr_get: Some(crate::namei::fileattr_get),
    fileattr_set: Some(crate::namei::fileattr_set),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};
