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
//! blocks; shared in faults), then the engine semaphore (inside iomap_begin
//! and every engine call, never held across a copy to or from userspace;
//! shared for lookups, exclusive for transactions; iomap_begin answers
//! written, unshared blocks from the inode's extent cache without it; see
//! Documentation/design.md, "Concurrency and locking").

use crate::bindings;
use crate::engine;
use crate::inode::{refresh, write_attrs, write_times};
use crate::mm_glue::report_data_loss;
use crate::mount::{info_of, FsInfo, Op, Stop};
use crate::vfs::{
    to_c, Dentry, FiemapInfo, File, IAttr, Idmap, Inode, InvalidateGuard, IoMap, IoMapKind, IomapOps, IovIter, Kiocb, Locked, Ops, Table,
    IoLocked, ReadLocked, RemapLocked, Run, VmFault,
};
use core::sync::atomic::Ordering;
use kernel::ffi::{c_int, c_uint, c_ulong};
use kernel::prelude::*;

const BLOCK: u64 = engine::BLOCK_SIZE as u64;
const PMD_BLOCKS: u64 = (bindings::FERROFS_PMD_SIZE as u64) / BLOCK;

/// The operation tables of a regular file (S_DAX: all data is on pmem).
pub(crate) fn ops() -> Ops {
    Ops {
        iops: &FILE_IOPS,
        fops: Some(&FILE_FOPS.0),
        aops: Some(&DAX_AOPS),
        s_flags: bindings::S_DAX,
        special_rdev: None,
        nohighmem: false,
    }
}

/// The byte offset of block `b` as the VFS's signed offsets: the end of
/// the last block (2^63) is one past the largest offset and comes back as
/// `i64::MAX`, which is where every range the kernel hands us ends.
fn byte_of(b: u64) -> i64 {
    b.saturating_mul(BLOCK).min(i64::MAX as u64) as i64
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
    // SAFETY: iomap_iter holds a reference on the inode for the call and
    // hands us both maps to fill.
    let (inode, iomap, srcmap) = unsafe { (Inode::from_raw(ip), IoMap::from_raw(iomap), IoMap::from_raw(srcmap)) };
    map_blocks(inode, pos, length, flags, iomap, srcmap)
}

/// The mapping of bytes [pos, pos+length) for iomap: the engine's extent
/// map, with writable exclusive blocks allocated first for writes.
fn map_blocks(inode: &Inode, pos: i64, length: i64, flags: c_uint, iomap: &mut IoMap, srcmap: &mut IoMap) -> c_int {
    let Ok(info) = info_of(inode) else { return EIO.to_errno() };
    let (lblk, end) = blocks(pos, length);
    let count = end - lblk;
    let ino = inode.ino();
    let fault = flags & bindings::IOMAP_FAULT != 0;
    // The mapping, whether its blocks are new (were a hole or unwritten),
    // and whether they replace shared blocks (CoW): from the inode's extent
    // cache without any lock when it has the block, else from the engine.
    let cacheable = flags & bindings::IOMAP_REPORT == 0
        && info.stats.poisoned_blocks.load(Ordering::Relaxed) == 0
        && !info.is_shut_down();
    let r = match cacheable.then(|| cached_mapping(info, inode, lblk, count)).flatten() {
        Some(m) => Ok((m, false, false)),
        None => map_engine(info, inode, lblk, count, flags),
    };
    let (m, new, cow) = match r {
        // iomap needs a mapping that starts at pos and is not empty, or it
        // warns and loops on the same position: never hand it one (the
        // engine answers Corrupt for the damage that could produce it)
        Ok((m, ..)) if m.count == 0 || m.lblk != lblk => {
            crate::vfs::fs_err!(info.dev(), "inode {}: mapping of block {} came back as {}+{}; refusing it\n", ino, lblk, m.lblk, m.count);
            return crate::vfs::code::euclean().to_errno();
        }
        Ok(v) => v,
        // A fault on a quarantined (poisoned) block: VM_FAULT_HWPOISON, so
        // the process gets SIGBUS/BUS_MCEERR_AR like on poisoned memory.
        Err(e) if fault && e == EIO && !info.is_shut_down() => return -(bindings::EHWPOISON as c_int),
        Err(e) => return e.to_errno(),
    };
    let kind = match m.kind {
        engine::MapKind::Hole => IoMapKind::Hole,
        // Unwritten blocks hold whatever was on the media: only FIEMAP and
        // SEEK_HOLE/DATA (IOMAP_REPORT) and writers see them as such. To
        // readers they are a hole, which reads and faults treat alike, and
        // which keeps dax_dedupe_file_range_compare from comparing stale
        // media bytes (it reads unwritten extents raw and could call
        // unequal data "same").
        engine::MapKind::Unwritten
            if flags & (bindings::IOMAP_REPORT | bindings::IOMAP_WRITE | bindings::IOMAP_ZERO) == 0 =>
        {
            IoMapKind::Hole
        }
        engine::MapKind::Unwritten => IoMapKind::Unwritten,
        engine::MapKind::Written => IoMapKind::Mapped,
    };
    let mut f = 0u16;
    if kind != IoMapKind::Hole {
        if m.shared {
            f |= bindings::IOMAP_F_SHARED as u16;
        }
        if new {
            f |= bindings::IOMAP_F_NEW as u16;
        }
    }
    if cow {
        // The engine already copied the old blocks into the new ones inside
        // its transaction (crash-safe), so the source fsdax copies "around"
        // the write is the new extent itself. The SHARED flag makes fsdax
        // drop this file's entries and page table entries for the old
        // blocks (other owners keep theirs).
        f |= bindings::IOMAP_F_SHARED as u16;
    }
    // A byte offset on the dax device for the DAX paths, on the block
    // device for the others (FIEMAP's fe_physical), as XFS adds the
    // partition offset only under IOMAP_DAX.
    let part = if flags & bindings::IOMAP_DAX != 0 { info.dax.start_off } else { 0 };
    let addr = part + m.pblk * BLOCK;
    iomap.set(kind, (m.lblk * BLOCK) as i64, m.count * BLOCK, addr, f, inode.sb().bdev(), info.dax.dev());
    if cow {
        iomap.copy_to(srcmap);
    }
    0
}

/// The mapping of `count` blocks at `lblk` from the inode's extent cache,
/// if it holds them at the current map epoch: written, unshared blocks,
/// which a read, a fault and an overwrite all map as they are.
fn cached_mapping(info: &FsInfo, inode: &Inode, lblk: u64, count: u64) -> Option<engine::Mapping> {
    let run = inode.state().maps.lookup(info.map_epoch(), lblk)?;
    info.locks.map_cache_hits.fetch_add(1, Ordering::Relaxed);
    let off = lblk - run.lblk;
    Some(engine::Mapping {
        kind: engine::MapKind::Written,
        lblk,
        pblk: run.pblk + off,
        count: count.min(run.count - off),
        shared: false,
    })
}

/// The mapping from the engine: looked up under the shared engine lock
/// (beside other readers and mappers), and only when blocks must be
/// allocated or copied, looked up again and allocated under the exclusive
/// lock. A written, unshared answer goes into the inode's extent cache.
fn map_engine(info: &FsInfo, inode: &Inode, lblk: u64, count: u64, flags: c_uint) -> Result<(engine::Mapping, bool, bool)> {
    let ino = inode.ino();
    let write = flags & (bindings::IOMAP_WRITE | bindings::IOMAP_ZERO) != 0;
    let zero_only = flags & bindings::IOMAP_ZERO != 0 && flags & bindings::IOMAP_WRITE == 0;
    let fault = flags & bindings::IOMAP_FAULT != 0;
    let huge = fault && count >= PMD_BLOCKS;
    let looked_up = info.with_fs(Op::Map, |fs| {
        let mut m = fs.map(ino, lblk, count)?;
        refuse_poisoned(info, fs, &m)?;
        if m.kind == engine::MapKind::Written && !m.shared {
            // under the shared lock no exclusive section runs, so this
            // epoch names the state we looked at
            if let Some(w) = fs.written_run(ino, lblk)? {
                inode.state().maps.insert(info.map_epoch(), Run { lblk: w.lblk, pblk: w.pblk, count: w.count });
            }
            return Ok(Some(m));
        }
        if write && !(zero_only && m.kind != engine::MapKind::Written) {
            return Ok(None); // allocate or copy, below
        }
        if m.shared && m.kind == engine::MapKind::Written {
            if huge {
                // Never a PMD entry over shared blocks: a later PTE fault
                // of the range would make fsdax (6.12 dax_insert_entry)
                // swap the 512-page entry for a 1-page one and leak 511
                // from mapping->nrpages. Shorter than a PMD => fallback.
                m.count = 1;
            } else if fault {
                // fsdax maps exactly the faulted page or PMD: record it.
                m.count = m.count.min(count);
                let mut rmap = info.rmap.lock();
                for i in 0..m.count {
                    if rmap.add(m.pblk + i, ino, m.lblk + i).is_err() {
                        // the on-media rmap still knows the owner, so memory
                        // failure reaches it; count it (and say so) instead
                        info.rmap_unrecorded(ino, m.lblk + i, m.pblk + i);
                    }
                }
            }
        }
        Ok(Some(m))
    })?;
    if let Some(m) = looked_up {
        return Ok((m, false, false));
    }
    let flags = engine::AllocFlags { unwritten: false, huge_align: huge, cow_unit: false };
    // Over a quota limit for `want` blocks, ask for half as many, down to
    // one (as ext4's allocator does): a write then stops exactly at the
    // limit. A PMD fault does not shrink: its EDQUOT makes fsdax fall
    // back to a 4 KiB fault, which asks for one block.
    let mut want = count;
    loop {
        let r = info.with_fs_mut_charged(Op::Alloc, inode, |fs| fs.alloc_write_charge(ino, lblk, want, flags), |fs| {
            // again: the map may have changed between the two locks
            let m = fs.map(ino, lblk, want)?;
            refuse_poisoned(info, fs, &m)?;
            if m.kind == engine::MapKind::Written && !m.shared {
                return Ok((m, false, false));
            }
            let n = fs.alloc_write(ino, lblk, want, flags)?;
            if m.shared {
                info.rmap.lock().forget_range(m.pblk, n.count.min(m.count), ino, m.lblk);
            }
            Ok((n, m.kind != engine::MapKind::Written, m.shared))
        });
        match r {
            Err(e) if e == crate::vfs::code::edquot() && want > 1 && !huge => want /= 2,
            r => return r,
        }
    }
}

/// EIO for a written mapping over a quarantined (poisoned) block; the
/// lookup is skipped while the filesystem has none.
fn refuse_poisoned(info: &FsInfo, fs: &engine::Fs<crate::dax::PmemMedia>, m: &engine::Mapping) -> core::result::Result<(), engine::Error> {
    if m.kind == engine::MapKind::Written
        && info.stats.poisoned_blocks.load(Ordering::Relaxed) != 0
        && fs.has_bad_block(m.pblk, m.count)?
    {
        return Err(engine::Error::Io { block: m.pblk });
    }
    Ok(())
}

static IOMAP_OPS: IomapOps = bindings::iomap_ops { iomap_begin: Some(iomap_begin), iomap_end: None };

unsafe extern "C" fn read_iter(iocb: *mut bindings::kiocb, to: *mut bindings::iov_iter) -> isize {
    // SAFETY: the VFS hands us the kiocb and iterator of this read.
    let (iocb, to) = unsafe { (Kiocb::from_raw(iocb), IovIter::from_raw(to)) };
    let inode = iocb.file().inode();
    // shared i_rwsem excludes truncate/fallocate while we copy
    let r = {
        let g = inode.lock_shared();
        iocb.dax_read(to, &IOMAP_OPS, &g)
    };
    iocb.file().accessed();
    if r == EIO.to_errno() as isize {
        report_data_loss(inode);
    }
    r
}

/// Zeroes the tail of the block holding the old EOF, so that bytes a mmap
/// store left beyond EOF never become file data when the file grows.
fn zero_eof_tail(inode: &Locked<'_>, old: i64, new: i64) -> Result {
    let tail = old as u64 % BLOCK;
    if tail == 0 || new <= old {
        return Ok(());
    }
    let len = ((BLOCK - tail) as i64).min(new - old);
    inode.dax_zero_range(old, len, &IOMAP_OPS)
}

/// Records a new size in the engine and the VFS inode.
fn commit_size(inode: &Locked<'_>, size: i64) -> Result {
    let info = info_of(inode)?;
    let t = inode.now();
    // callers only grow the file (the VFS size is the engine's, both set
    // here or in set_size under i_rwsem, which puts the engine's back when
    // its engine part fails); a shrink would free blocks, which the
    // Truncate class tells the extent caches about
    let op = if size < inode.size() { Op::Truncate } else { Op::Size };
    info.with_fs_mut(op, |fs| fs.set_size(inode.ino(), size as u64, t))?;
    // The engine stamped the size change with `t`; the VFS inode shows the
    // same mtime and ctime. Otherwise the next refresh, which keeps the
    // newer of the two, moved mtime forward by the nanoseconds between
    // file_update_time and this call (xfstests generic/003: a rename after
    // an extending write changed the file's mtime).
    inode.set_size(size);
    inode.set_time(1, t);
    inode.set_time(2, t);
    Ok(())
}

unsafe extern "C" fn write_iter(iocb: *mut bindings::kiocb, from: *mut bindings::iov_iter) -> isize {
    // SAFETY: the VFS hands us the kiocb and iterator of this write.
    let (iocb, from) = unsafe { (Kiocb::from_raw(iocb), IovIter::from_raw(from)) };
    let inode = iocb.file().inode();
    // exclusive i_rwsem for the whole write (size updates included)
    let r = {
        let l = inode.lock();
        write_locked(&l, iocb, from)
    };
    match r {
        Ok(n) if n > 0 => iocb.write_sync(n),
        Ok(n) => n,
        Err(e) => {
            if e == EIO {
                report_data_loss(inode);
            }
            e.to_errno() as isize
        }
    }
}

fn write_locked(inode: &Locked<'_>, iocb: &Kiocb, from: &IovIter) -> Result<isize> {
    let n = iocb.write_checks(from, inode)?;
    if n == 0 {
        return Ok(0);
    }
    iocb.modified(inode)?;
    let old = inode.size();
    let pos = iocb.pos();
    zero_eof_tail(inode, old, pos)?;
    replace_damaged(inode, pos, n as i64)?;
    unshare_cow_units(inode, old, pos, n as i64)?;
    let done = iocb.dax_write(from, &IOMAP_OPS, inode);
    let end = iocb.pos();
    if done > 0 && end > inode.size() {
        commit_size(inode, end)?;
    }
    if done < 0 {
        return Err(Error::from_errno(done as c_int));
    }
    Ok(done)
}

/// Truncates or extends the file (setattr with ATTR_SIZE; i_rwsem held).
fn set_size(inode: &Locked<'_>, size: i64) -> Result {
    if !inode.is_reg() {
        return Err(EINVAL);
    }
    inode.newsize_ok(size)?;
    let old = inode.size();
    if size == old {
        // The size stays, but blocks preallocated past EOF (fallocate
        // KEEP_SIZE) go, as on XFS and ext4 (xfstests generic/092). The
        // times stay too: ftruncate(2) asks for them through ATTR_*TIME,
        // which setattr_copy applies; truncate(2) does not.
        return free_past_eof(inode, size);
    }
    if size > old {
        zero_eof_tail(inode, old, size)?;
        return commit_size(inode, size);
    }
    let r = truncate_down(inode, size);
    // On failure too: the engine's size (the old one, or where its steps
    // got to) replaces the one truncate_setsize gave the VFS inode, so that
    // the two agree again and a later extending write (`commit_size`) never
    // shrinks the engine's file by the Size class, unsettled.
    let rr = refresh(inode);
    r.and(rr)
}

/// Shrinks a regular file from `inode.size()` to `size`: shoots down every
/// mapping past the new EOF, zeroes the rest of its block and frees the
/// blocks past it. The caller refreshes the VFS inode from the engine
/// afterwards, whether this succeeds or not.
fn truncate_down(inode: &Locked<'_>, size: i64) -> Result {
    let old = inode.size();
    // the exclusive invalidate lock keeps faults out while blocks go
    let inv = inode.invalidate_lock();
    inode.break_layouts(size, i64::MAX, &inv)?;
    forget_mappings(inode, size, old)?;
    // zeroes the rest of the new EOF block (CoW if shared)
    inode.dax_truncate_page(size, &IOMAP_OPS)?;
    // A PMD entry straddling the new EOF goes as a whole: write it back
    // first so the part below EOF keeps its flush.
    write_back_pmds(inode, size, size + 1)?;
    inode.truncate_setsize(size);
    let t = inode.now();
    info_of(inode)?.with_fs_mut_charged(Op::Truncate, inode, |_| Ok(0), |fs| fs.set_size(inode.ino(), size as u64, t))
}

/// Frees every block past the one holding byte `size - 1`, in stepped
/// exclusive sections. Nothing past that block can be mapped into a page
/// table (a fault past EOF is SIGBUS, and a PMD entry never straddles EOF),
/// so there is nothing to shoot down; the Truncate class retires the extent
/// caches.
fn free_past_eof(inode: &Locked<'_>, size: i64) -> Result {
    let info = info_of(inode)?;
    let first = (size as u64).div_ceil(BLOCK);
    if !info.punch_steps(Op::Truncate, inode, first, engine::MAX_LBLK)? {
        return Ok(());
    }
    refresh(inode)
}

/// `inode_operations.setattr` of every inode type: ownership, mode, times;
/// sizes of regular files go through the data path (`set_size`).
pub(crate) unsafe extern "C" fn setattr(idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, attr: *mut bindings::iattr) -> c_int {
    // SAFETY: notify_change holds the dentry and its inode's i_rwsem, and
    // passes its idmap and an iattr that is ours for the call.
    let (d, attr, idmap) = unsafe { (Dentry::from_raw(d), IAttr::from_raw(attr), Idmap::from_raw(idmap)) };
    let Ok(inode) = d.positive() else { return ENOENT.to_errno() };
    // SAFETY: as above: i_rwsem is held.
    let inode = unsafe { inode.assume_locked() };
    to_c(setattr_locked(idmap, d, &inode, attr))
}

fn setattr_locked(idmap: &Idmap, d: &Dentry, inode: &Locked<'_>, attr: &IAttr) -> Result {
    attr.prepare(idmap, d)?;
    crate::quota::setattr(idmap, inode, attr)?;
    let valid = attr.valid();
    if valid & bindings::ATTR_SIZE != 0 {
        let size = attr.size();
        // POSIX: a truncate that changes the size marks ctime and mtime for
        // update. ftruncate(2) asks for that (ATTR_MTIME|ATTR_CTIME);
        // truncate(2) does not, and leaves it to the filesystem (as XFS
        // does, take the current time for both unless the caller set them).
        if size != inode.size() && valid & (bindings::ATTR_MTIME | bindings::ATTR_CTIME) == 0 {
            attr.set_mtime_ctime(inode);
        }
        set_size(inode, size)?;
    }
    attr.copy_to(idmap, inode);
    write_attrs(inode)?;
    if valid & bindings::ATTR_MODE != 0 {
        d.acl_chmod(idmap, inode, inode.mode())?;
    }
    Ok(())
}

unsafe extern "C" fn fsync(file: *mut bindings::file, start: i64, end: i64, datasync: c_int) -> c_int {
    // SAFETY: the VFS holds the file for the call.
    let file = unsafe { File::from_raw(file) };
    // writes back (cache-flushes) dirty DAX entries of the range
    if let Err(e) = file.write_and_wait_range(start, end) {
        return e.to_errno();
    }
    // Engine metadata is durable when each transaction returns; only the
    // lazily written timestamps may be pending.
    if datasync == 0 {
        return to_c(write_times(file.inode()));
    }
    0
}

unsafe extern "C" fn mmap(file: *mut bindings::file, vma: *mut bindings::vm_area_struct) -> c_int {
    // SAFETY: the VFS holds the file for the call.
    unsafe { File::from_raw(file) }.accessed();
    // SAFETY: a new vma being set up by mmap_region: its vm_ops and flags
    // are ours to set.
    unsafe {
        (*vma).vm_ops = &DAX_VM_OPS;
        bindings::ferrofs_vm_flags_set(vma, bindings::FERROFS_VM_HUGEPAGE as c_ulong);
    }
    0
}

/// The fsdax fault sequence (see ext4_dax_huge_fault): freeze protection
/// and time update for shared writes, the invalidate lock shared against
/// truncate/punch/reflink, then dax_iomap_fault.
fn dax_fault(vmf: &VmFault, order: c_uint) -> bindings::vm_fault_t {
    let write = vmf.is_shared_write();
    let inode = vmf.inode();
    let sb = inode.sb();
    let _freeze = write.then(|| sb.start_pagefault());
    if write {
        vmf.file().update_time();
    }
    let (mut ret, pfn) = {
        let inv = inode.invalidate_lock_shared();
        vmf.dax_fault(order, &IOMAP_OPS, &inv)
    };
    if ret & bindings::FERROFS_VM_FAULT_HWPOISON != 0 {
        report_data_loss(inode);
    }
    if let Ok(info) = info_of(inode) {
        let st = &info.stats;
        // VM_FAULT_ERROR includes VM_FAULT_FALLBACK: test the fallback
        // first, or no fallback is ever counted.
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
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    if ret & bindings::FERROFS_VM_FAULT_NEEDDSYNC != 0 {
        ret = vmf.finish_sync(order, pfn);
    }
    ret
}

unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the fault being served on one of our vmas.
    dax_fault(unsafe { VmFault::from_raw(vmf) }, 0)
}

unsafe extern "C" fn huge_fault(vmf: *mut bindings::vm_fault, order: c_uint) -> bindings::vm_fault_t {
    // SAFETY: as in fault.
    dax_fault(unsafe { VmFault::from_raw(vmf) }, order)
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
    // SAFETY: the VFS holds the file for the call.
    let file = unsafe { File::from_raw(file) };
    match whence as u32 {
        w @ (bindings::SEEK_HOLE | bindings::SEEK_DATA) => {
            let inode = file.inode();
            // shared i_rwsem keeps the extent map stable while we walk it
            let r = {
                let g = inode.lock_shared();
                inode.seek(off, w == bindings::SEEK_HOLE, &IOMAP_OPS, &g)
            };
            if r < 0 {
                return r;
            }
            file.set_pos(r, inode.sb().max_bytes())
        }
        _ => file.generic_llseek(off, whence),
    }
}

/// Drops this inode's rmap owners of bytes [start, end): it is about to stop
/// mapping (or owning) those blocks.
fn forget_mappings(inode: &Inode, start: i64, end: i64) -> Result {
    let info = info_of(inode)?;
    let (first, last) = (start as u64 / BLOCK, (end as u64).div_ceil(BLOCK));
    let ino = inode.ino();
    info.with_fs(Op::Map, |fs| {
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
    // the last PMD unit of the largest file ends past i64::MAX: i64::MAX
    (start & !(pmd - 1), end.checked_add(pmd - 1).map_or(i64::MAX, |e| e & !(pmd - 1)))
}

/// Writes back the dirty DAX entries of the PMD units covering bytes
/// [start, end) (flushes their CPU cache lines, clears their dirty tags), so
/// that dropping those entries as a whole loses no flush fsync owes.
fn write_back_pmds(inode: &Inode, start: i64, end: i64) -> Result {
    let (start, end) = pmd_bounds(start, end);
    inode.write_and_wait_range(start, end - 1)
}

/// Removes bytes [start, end) from page tables and DAX entries before the
/// engine frees, moves or shares their blocks. The caller holds i_rwsem
/// (`Locked`) and the invalidate lock (`inv`).
///
/// The range is widened to whole 2 MiB units: truncate_pagecache_range skips
/// a PMD entry that straddles either end, and a PMD entry left over blocks
/// that are freed (or become shared) keeps stale page associations and, on
/// the next shared PTE fault, corrupts mapping->nrpages (see map_blocks).
/// The widening is written back first, so no dirty entry outside the range
/// loses the cache flush fsync owes it.
fn unmap_blocks(inode: &impl IoLocked, start: i64, end: i64, inv: &InvalidateGuard<'_>) -> Result {
    let (start, end) = pmd_bounds(start, end);
    forget_mappings(inode, start, end)?;
    inode.break_layouts(start, end, inv)?;
    write_back_pmds(inode, start, end)?;
    inode.truncate_pagecache_range(start, end - 1, inv);
    Ok(())
}

unsafe extern "C" fn fallocate(file: *mut bindings::file, mode: c_int, off: i64, len: i64) -> isize {
    // SAFETY: the VFS holds the file for the call.
    let file = unsafe { File::from_raw(file) };
    let inode = file.inode();
    let mode = mode as u32;
    let supported = bindings::FALLOC_FL_KEEP_SIZE
        | bindings::FALLOC_FL_PUNCH_HOLE
        | bindings::FALLOC_FL_ZERO_RANGE
        | bindings::FALLOC_FL_UNSHARE_RANGE
        | bindings::FALLOC_FL_COLLAPSE_RANGE
        | bindings::FALLOC_FL_INSERT_RANGE;
    if mode & !supported != 0 {
        return crate::vfs::code::eopnotsupp().to_errno() as isize;
    }
    if off < 0 || len <= 0 {
        return EINVAL.to_errno() as isize;
    }
    // exclusive i_rwsem and invalidate lock for block removal and moves
    let l = inode.lock();
    // like a write, and as XFS does for every mode: suid/sgid go, and
    // mtime and ctime move (xfstests generic/683)
    if let Err(e) = file.modified(&l) {
        return e.to_errno() as isize;
    }
    let inv = l.invalidate_lock();
    match fallocate_locked(&l, &inv, mode, off, len) {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}

fn fallocate_locked(inode: &Locked<'_>, inv: &InvalidateGuard<'_>, mode: u32, off: i64, len: i64) -> Result {
    let info = info_of(inode)?;
    let end = off.checked_add(len).ok_or(EFBIG)?;
    let keep = mode & bindings::FALLOC_FL_KEEP_SIZE != 0;
    let ino = inode.ino();
    if mode & (bindings::FALLOC_FL_COLLAPSE_RANGE | bindings::FALLOC_FL_INSERT_RANGE) != 0 {
        // the VFS allows neither with any other flag
        return shift_range(inode, inv, mode & bindings::FALLOC_FL_INSERT_RANGE != 0, off, len);
    }
    if !keep && end > inode.size() {
        inode.newsize_ok(end)?;
    }
    let punch = mode & bindings::FALLOC_FL_PUNCH_HOLE != 0;
    if punch || mode & bindings::FALLOC_FL_ZERO_RANGE != 0 {
        // Zero partial blocks at both edges through DAX; whole blocks leave
        // the file (punch) or become unwritten extents (zero range), each in
        // one engine operation.
        let first_full = byte_of((off as u64).div_ceil(BLOCK));
        let last_full = byte_of(end as u64 / BLOCK);
        let size = inode.size();
        let zero = |s: i64, e: i64| -> Result {
            let e = e.min(size);
            if e > s { inode.dax_zero_range(s, e - s, &IOMAP_OPS) } else { Ok(()) }
        };
        if first_full >= last_full {
            zero(off, end)?;
        } else {
            zero(off, first_full)?;
            zero(last_full, end)?;
            unmap_blocks(inode, first_full, last_full, inv)?;
            let (l, c) = (first_full as u64 / BLOCK, (last_full - first_full) as u64 / BLOCK);
            if punch {
                info.punch_steps(Op::Space, inode, l, l + c)?;
            } else {
                info.with_fs_mut_charged(Op::Space, inode, |fs| fs.hole_blocks(ino, l, c), |fs| fs.zero_range(ino, l, c))?;
            }
        }
        if punch {
            return refresh(inode);
        }
    }
    let (l, e) = blocks(off, len);
    if mode & bindings::FALLOC_FL_UNSHARE_RANGE != 0 {
        // UNSHARE is the default mode plus unsharing: the shared blocks of
        // the range get private copies here, and the preallocation below
        // fills its holes and, without KEEP_SIZE, extends the size (as on
        // XFS; xfstests' fsx uses it that way and found the size short).
        unmap_blocks(inode, byte_of(l), byte_of(e), inv)?;
        let next = |fs: &engine::Fs<_>, from: u64| Ok(fs.next_mapped(ino, l + from, e)?.map(|b| b - l));
        // each step is charged the copies it makes, as XFS charges them
        let copies = |fs: &engine::Fs<_>, at: u64, n: u64| fs.shared_blocks(ino, l + at, n);
        info.with_fs_mut_steps(Op::Space, inode, copies, e - l, next, |fs, at, n| fs.unshare(ino, l + at, n), Stop::Never)?;
    }
    let new_size = if keep || end <= inode.size() { None } else { Some(end) };
    // Fills the holes left (for ZERO_RANGE: the partial edge blocks). The
    // engine would round a new size up to whole blocks; the byte-exact size
    // is ours to set (and only when the range ends beyond EOF).
    info.with_fs_mut_charged(Op::Space, inode, |fs| fs.hole_blocks(ino, l, e - l), |fs| fs.fallocate(ino, l, e - l, true))?;
    if let Some(s) = new_size {
        commit_size(inode, s)?;
    }
    refresh(inode)
}

/// FALLOC_FL_COLLAPSE_RANGE and FALLOC_FL_INSERT_RANGE, with XFS's checks in
/// XFS's order. Every page from `off` to EOF changes its file offset, so the
/// whole tail is handled as XFS's xfs_prepare_shift does: layouts broken
/// (pinned DAX pages waited for), written back, unmapped from every page
/// table and its DAX entries dropped, and its per-PFN rmap owners forgotten
/// (their page index is about to change; the next fault records the new
/// one). Then the engine moves the extents (shared ones stay shared, nothing
/// is copied) in bounded transactions. Caller holds i_rwsem and the
/// invalidate lock exclusively, so nothing faults the tail back meanwhile.
fn shift_range(inode: &Locked<'_>, inv: &InvalidateGuard<'_>, insert: bool, off: i64, len: i64) -> Result {
    let info = info_of(inode)?;
    if (off as u64 | len as u64) % BLOCK != 0 {
        return Err(EINVAL);
    }
    let size = inode.size();
    let max = engine::MAX_BYTES as i64; // s_maxbytes
    if insert {
        if max - size < len {
            return Err(EFBIG);
        }
        if off >= size {
            return Err(EINVAL);
        }
    } else if off + len >= size {
        // that would be a truncate
        return Err(EINVAL);
    }
    unmap_blocks(inode, off, max, inv)?;
    let (ino, t) = (inode.ino(), inode.now());
    let (l, c) = (off as u64 / BLOCK, len as u64 / BLOCK);
    let r = info.with_fs_mut_charged(Op::Space, inode, |_| Ok(0), |fs| if insert { fs.insert_range(ino, l, c, t) } else { fs.collapse_range(ino, l, c, t) });
    // an error may stop the shift between two committed steps
    // (Documentation/crash-consistency.md): show whatever size it left
    let r2 = refresh(inode);
    r?;
    r2
}

/// What online defragmentation did (`FERROFS_IOC_DEFRAG`).
pub(crate) struct Defragged {
    /// Bytes moved.
    pub(crate) moved: u64,
    /// Runs left fragmented for want of contiguous free space.
    pub(crate) no_space: u64,
}

/// `FERROFS_IOC_DEFRAG` on bytes `[start, start + len)` of an open regular
/// file (`len` 0: to the largest file offset, blocks past EOF included).
/// Only extents wholly inside the range, widened to whole blocks, move
/// (`engine::Fs::defrag_step`).
///
/// Like XFS's and ext4's extent swaps it needs the file open for writing
/// (EBADF), a writable mount (EROFS, and freeze protection), and refuses
/// append-only and immutable files (EPERM). Moving blocks under a DAX
/// mapping is a truncate as far as page tables go: with i_rwsem and the
/// invalidate lock exclusive, the range's layouts are broken, its pages
/// unmapped from every page table and its per-PFN owners forgotten, then
/// the engine moves one extent per exclusive section, so other files' work
/// goes on between steps. A fatal signal stops it between two steps with
/// EINTR; what moved stays moved. Times, size and i_blocks do not change.
pub(crate) fn defrag(file: &File, start: u64, len: u64) -> Result<Defragged> {
    let inode = file.inode();
    if !inode.is_reg() {
        return Err(EINVAL);
    }
    if !file.is_writable() {
        return Err(EBADF);
    }
    let _write = file.want_write()?;
    if inode.is_append_or_immutable() {
        return Err(EPERM);
    }
    let first = start / BLOCK;
    let end = if len == 0 { engine::MAX_LBLK } else { start.saturating_add(len).div_ceil(BLOCK).min(engine::MAX_LBLK) };
    let l = inode.lock();
    let inv = l.invalidate_lock();
    let info = info_of(&l)?;
    if first >= end {
        return Ok(Defragged { moved: 0, no_space: 0 });
    }
    unmap_blocks(&l, byte_of(first), byte_of(end), &inv)?;
    let ino = l.ino();
    let mut d = engine::Defrag::default();
    let mut cur = first;
    while let Some(next) = info.with_fs_mut_charged(Op::Space, &l, |_| Ok(0), |fs| fs.defrag_step(ino, cur, end, &mut d))? {
        cur = next;
        if crate::vfs::fatal_signal_pending() {
            return Err(EINTR);
        }
        crate::vfs::cond_resched();
    }
    Ok(Defragged { moved: d.moved * BLOCK, no_space: d.no_space })
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
    // SAFETY: the VFS holds both files for the call.
    let (fin, fout) = unsafe { (File::from_raw(fin), File::from_raw(fout)) };
    if flags & !(bindings::REMAP_FILE_DEDUP | bindings::REMAP_FILE_ADVISORY) != 0 {
        return EINVAL.to_errno() as i64;
    }
    // the source shared (reads of it go on), the destination exclusive,
    // both mappings exclusive (see RemapLocked)
    let locks = RemapLocked::new(fin.inode(), fout.inode());
    match remap_locked(fin, pos_in, fout, pos_out, len, flags, &locks) {
        Ok(n) => n,
        Err(e) => e.to_errno() as i64,
    }
}

fn remap_locked(fin: &File, pos_in: i64, fout: &File, pos_out: i64, len: i64, flags: c_uint, locks: &RemapLocked<'_>) -> Result<i64> {
    let len = fin.remap_prep(pos_in, fout, pos_out, len, flags, &IOMAP_OPS, locks)?;
    if len == 0 {
        return Ok(0);
    }
    let (src, dst): (ReadLocked<'_>, _) = (locks.src(), locks.dst());
    let (sinv, dinv) = (locks.src_invalidate(), locks.dst_invalidate());
    let dedupe = flags & bindings::REMAP_FILE_DEDUP != 0;
    // the destination's block count changes (a dedupe's too: holes and
    // unwritten blocks of the source become holes), so its dquots must be
    // attached: open attaches them for writers only, and dedupe is allowed
    // into a file its owner opened read-only
    crate::quota::init(&dst)?;
    let nblocks = (len as u64).div_ceil(BLOCK);
    // Nothing may keep mapping the destination's old blocks, and no DAX
    // entry of the source may stay sized or marked for exclusive blocks.
    unmap_blocks(&dst, pos_out, pos_out.saturating_add(byte_of(nblocks)), &dinv)?;
    unmap_blocks(&src, pos_in, pos_in.saturating_add(byte_of(nblocks)), &sinv)?;
    let info = info_of(&dst)?;
    let (s, d) = (src.ino(), dst.ino());
    let (sl, dl) = (pos_in as u64 / BLOCK, pos_out as u64 / BLOCK);
    // A step starts where either file has a block: where both are holes
    // there is nothing to share, clear or compare.
    let next = |fs: &engine::Fs<_>, from: u64| {
        let a = fs.next_mapped(s, sl + from, sl + nblocks)?.map(|b| b - sl);
        let b = fs.next_mapped(d, dl + from, dl + nblocks)?.map(|b| b - dl);
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    };
    // a reflink step may add a block to the destination for each it
    // shares (charged to its owner in full, as XFS does); dedupe replaces
    // blocks one for one
    let charge = |_: &engine::Fs<_>, _: u64, n: u64| Ok(if dedupe { 0 } else { n });
    // A fatal signal stops a long one between steps (generic/297, 298):
    // like XFS it then returns the bytes done, the destination's size
    // covering them, or EINTR if nothing was.
    let done = info.with_fs_mut_steps(
        Op::Remap,
        &dst,
        charge,
        nblocks,
        next,
        |fs, o, n| {
            if dedupe {
                fs.dedupe(s, sl + o, d, dl + o, n)
            } else {
                fs.reflink(s, sl + o, d, dl + o, n)
            }
        },
        Stop::OnFatalSignal,
    )?;
    let len = if done < nblocks { byte_of(done) } else { len };
    if !dedupe && len > 0 && pos_out + len > dst.size() {
        commit_size(&dst, pos_out + len)?;
    }
    refresh(&dst)?;
    if len == 0 {
        return Err(EINTR);
    }
    Ok(len)
}

/// FIEMAP_FLAG_XATTR (`xfs_io -c "fiemap -a"`, generic/425): where the
/// inode's extended attributes live. Each record sits in an xattr btree leaf
/// next to other inodes' records: reported as DATA_INLINE (the VFS adds
/// NOT_ALIGNED) at its byte address, as ext4 reports attributes inside its
/// inode table; a large value's own blocks are plain extents. Logical
/// offsets just count the bytes reported so far. The ranges are copied out
/// of the engine first: filling the user's array can fault on a ferrofs
/// mapping and re-enter the engine.
fn fiemap_xattr(inode: &Inode, fi: &FiemapInfo, start: u64, len: u64) -> Result {
    let mut len = len;
    // refuses flags other than XATTR (and SYNC) and clamps len
    fi.prep(inode, start, &mut len, bindings::FIEMAP_FLAG_XATTR)?;
    let info = info_of(inode)?;
    let mut v: KVec<(u64, u64, bool)> = KVec::new();
    let mut oom = false;
    info.with_fs(Op::Map, |fs| {
        fs.xattr_extents(inode.ino(), &mut |a, l, inl| {
            oom = v.push((a, l, inl), GFP_KERNEL).is_err();
            !oom
        })
    })?;
    if oom {
        return Err(ENOMEM);
    }
    let end = start.saturating_add(len);
    let mut logical = 0u64;
    for (n, &(phys, l, inl)) in v.iter().enumerate() {
        let lo = logical;
        logical += l;
        if logical <= start || lo >= end {
            continue;
        }
        let mut flags = if inl { bindings::FIEMAP_EXTENT_DATA_INLINE } else { 0 };
        if n + 1 == v.len() {
            flags |= bindings::FIEMAP_EXTENT_LAST;
        }
        // copies one extent to userspace (no engine lock held)
        if fi.fill_next(lo, phys, l, flags)? {
            break;
        }
    }
    Ok(())
}

unsafe extern "C" fn fiemap(ip: *mut bindings::inode, fi: *mut bindings::fiemap_extent_info, start: u64, len: u64) -> c_int {
    // SAFETY: the VFS holds the inode for the call; fi is its request.
    let (inode, fi) = unsafe { (Inode::from_raw(ip), FiemapInfo::from_raw(fi)) };
    if fi.flags() & bindings::FIEMAP_FLAG_XATTR != 0 {
        return to_c(fiemap_xattr(inode, fi, start, len));
    }
    // shared i_rwsem keeps the extents stable
    let g = inode.lock_shared();
    inode.fiemap(fi, start, len, &IOMAP_OPS, &g)
}

unsafe extern "C" fn dax_writepages(mapping: *mut bindings::address_space, wbc: *mut bindings::writeback_control) -> c_int {
    // SAFETY: writeback holds a reference on mapping->host, our inode.
    let inode = unsafe { Inode::from_raw((*mapping).host) };
    let Ok(info) = info_of(inode) else { return EIO.to_errno() };
    // SAFETY: flushes CPU caches of dirty DAX entries of the inode's own
    // mapping; wbc is writeback's for the call; our claim keeps dax_dev.
    unsafe { bindings::dax_writeback_mapping_range(mapping, info.dax.dev(), wbc) }
}

/// Before a write of bytes [pos, pos+len): every quarantined block the
/// write covers whole is punched out of the file, so the write puts the new
/// data in a fresh block instead of failing with EIO (a block covered in
/// part still fails: the rest of it is lost). The bad block stays
/// quarantined and other files sharing it keep their reference. This is how
/// an overwrite repairs a damaged file; if the write itself fails
/// afterwards, the range reads as a hole.
fn replace_damaged(inode: &Locked<'_>, pos: i64, len: i64) -> Result {
    let info = info_of(inode)?;
    if info.stats.poisoned_blocks.load(Ordering::Relaxed) == 0 || pos < 0 || len <= 0 {
        return Ok(());
    }
    let first = (pos as u64).div_ceil(BLOCK);
    let end = (pos as u64).saturating_add(len as u64) / BLOCK;
    let ino = inode.ino();
    // (first file block, blocks) of each lost run the write covers
    let mut lost: KVec<(u64, u64)> = KVec::new();
    info.with_fs(Op::Map, |fs| {
        let mut cur = first;
        while cur < end {
            let m = fs.map(ino, cur, end - cur)?;
            if m.kind == engine::MapKind::Written && fs.has_bad_block(m.pblk, m.count)? {
                for i in 0..m.count {
                    if fs.has_bad_block(m.pblk + i, 1)? {
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
    // the exclusive invalidate lock keeps faults out while the blocks leave
    // the file, as for a punch
    let inv = inode.invalidate_lock();
    lost.iter().try_for_each(|&(l, n)| {
        unmap_blocks(inode, byte_of(l), byte_of(l + n), &inv)?;
        info.with_fs_mut_charged(Op::Space, inode, |_| Ok(0), |fs| fs.punch(ino, l, n))?;
        crate::vfs::fs_info!(info.dev(), "inode {}: bytes {}-{} lost to a memory failure are being overwritten; the damaged block stays quarantined\n", ino, l * BLOCK, (l + n) * BLOCK - 1);
        Ok(())
    })
}

/// The copy-on-write unit of a file without a CoW extent size hint, in
/// blocks: XFS's default (`XFS_DEFAULT_COWEXTSZ_HINT`, 128 KiB).
const DEFAULT_COW_UNIT: u64 = 32;

/// Before a write of bytes [pos, pos+len) whose first or last block is
/// shared: every shared block of the aligned CoW unit around each end gets
/// its private copy first (fallocate UNSHARE of those blocks), so that small
/// writes into a reflinked file leave it in unit-sized extents instead of
/// one extent per block (xfstests generic/301, 302). The unit is the file's
/// CoW extent size hint, else 32 blocks, as on XFS. The middle of a long
/// write needs nothing: its blocks are copied in runs as long as the write.
///
/// XFS stages the unit in its CoW fork and remaps only what is written;
/// ferrofs copies the unit's shared blocks at once, which needs their old
/// mappings gone from every page table first. So this runs here, where
/// i_rwsem is held and the invalidate lock can be taken exclusive, and not
/// in `iomap_begin`, which write faults reach holding it shared (a write
/// fault still copies just its page or PMD). Without the free space for a
/// unit's copy, the write goes on as if there were no unit.
fn unshare_cow_units(inode: &Locked<'_>, size: i64, pos: i64, len: i64) -> Result {
    let info = info_of(inode)?;
    // blocks wholly past EOF are never shared (a remap extends the size
    // over what it shares): an append costs no lookup
    if pos < 0 || len <= 0 || pos as u64 >= (size.max(0) as u64).div_ceil(BLOCK) * BLOCK {
        return Ok(());
    }
    let first = pos as u64 / BLOCK;
    let last = (pos as u64).saturating_add(len as u64 - 1) / BLOCK;
    // an overwrite of cached, written, unshared blocks costs no engine call
    // (looked up without counting: map_cache_hits counts mappings served)
    let cached = |b: u64| inode.state().maps.lookup(info.map_epoch(), b).is_some();
    if cached(first) && cached(last) {
        return Ok(());
    }
    let ino = inode.ino();
    let poisoned = info.stats.poisoned_blocks.load(Ordering::Relaxed) != 0;
    // (shared, lost to a memory failure) for block b
    let state = |fs: &engine::Fs<crate::dax::PmemMedia>, b: u64| -> core::result::Result<(bool, bool), engine::Error> {
        let m = fs.map(ino, b, 1)?;
        let mapped = m.kind != engine::MapKind::Hole;
        Ok((m.shared && mapped, poisoned && mapped && fs.has_bad_block(m.pblk, 1)?))
    };
    let unit = info.with_fs(Op::Map, |fs| {
        let (a, b) = (state(fs, first)?, state(fs, last)?);
        // nothing shared, or a write that fails with EIO (it covers part
        // of a lost block): no copies for it
        if !(a.0 || b.0) || a.1 || b.1 {
            return Ok(0);
        }
        Ok(match fs.read_inode(ino)?.cowextsize_hint() {
            0 => DEFAULT_COW_UNIT,
            u => u,
        })
    })?;
    if unit <= 1 {
        return Ok(());
    }
    let around = |b: u64| (b / unit * unit, (b / unit + 1).saturating_mul(unit).min(engine::MAX_LBLK));
    let (a, b) = (around(first), around(last));
    let spans: [(u64, u64); 2] = if a.1 >= b.0 { [(a.0, b.1), (0, 0)] } else { [a, b] };
    // Faults are kept out from here on, so the shared runs found below are
    // the ones moved: none can turn private (and dirty) in between.
    let inv = inode.invalidate_lock();
    // One shared run at a time, looked up again after each copy: nothing
    // to allocate here (a failed allocation must not turn into ENOSPC).
    let next_run = |from: u64| {
        info.with_fs(Op::Map, |fs| {
            for &(s, e) in spans.iter().filter(|(s, e)| s < e) {
                let mut cur = s.max(from);
                while cur < e {
                    let m = fs.map(ino, cur, e - cur)?;
                    // a run holding a block lost to a memory failure stays
                    // shared: the write fails on it (EIO) if it touches it
                    if m.shared && m.kind != engine::MapKind::Hole && !(poisoned && fs.has_bad_block(m.pblk, m.count)?) {
                        return Ok(Some((m.lblk, m.count)));
                    }
                    cur = m.lblk + m.count.max(1);
                }
            }
            Ok(None)
        })
    };
    let mut from = 0;
    while let Some((l, n)) = next_run(from)? {
        from = l + n;
        unmap_blocks(inode, byte_of(l), byte_of(l + n), &inv)?;
        // a unit can be a large hint: bounded exclusive sections (a run is
        // mapped throughout: one step after the other)
        // The copies are charged to the file's quotas while they are made
        // (a run is all shared blocks: one copy each), as map_engine
        // charges a copy-on-write.
        match info.with_fs_mut_steps(Op::Space, inode, |_, _, k| Ok(k), n, |_, at| Ok(Some(at)), |fs, at, k| fs.unshare(ino, l + at, k), Stop::Never) {
            Ok(_) => {}
            // the write copies what it covers, block by block (and fails
            // with EIO where that is a block lost to a memory failure, or
            // EDQUOT where its own copies do not fit under a limit)
            Err(e) if e == ENOSPC || e == EIO || e == crate::vfs::code::edquot() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `address_space_operations.bmap` (the FIBMAP ioctl, which the VFS allows
/// only with CAP_SYS_RAWIO): the device block behind a file block, for
/// tools that read a file past the filesystem (`filefrag -B`). It answers 0
/// for a hole and for an unwritten block. For a shared block it answers 0
/// too, as XFS does for reflinked files: something that wrote to it through
/// the device would change every file that shares it.
unsafe extern "C" fn bmap(mapping: *mut bindings::address_space, block: bindings::sector_t) -> bindings::sector_t {
    // SAFETY: ioctl_fibmap holds the file, and so a reference on
    // mapping->host, our inode.
    let inode = unsafe { Inode::from_raw((*mapping).host) };
    let Ok(info) = info_of(inode) else { return 0 };
    match info.with_fs(Op::Map, |fs| fs.map(inode.ino(), block as u64, 1)) {
        Ok(m) if m.kind == engine::MapKind::Written && !m.shared => m.pblk as bindings::sector_t,
        _ => 0,
    }
}

static DAX_AOPS: bindings::address_space_operations = bindings::address_space_operations {
    bmap: Some(bmap),
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
    // generic_file_open, and a writer gets its dquots before any write
    // or write fault can charge blocks
    open: Some(bindings::ferrofs_dquot_file_open),
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
    getattr: Some(crate::inode::getattr),
    setattr: Some(setattr),
    fiemap: Some(fiemap),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    fileattr_get: Some(crate::inode::fileattr_get),
    fileattr_set: Some(crate::inode::fileattr_set),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};
