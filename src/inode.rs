// SPDX-License-Identifier: GPL-2.0
//! Inodes between the engine and the VFS: attributes in both directions,
//! eviction, writeback of lazy times, getattr and the inode flags.
//!
//! The engine is the single source of truth for every attribute: an
//! operation runs one engine transaction (durable when it returns), then the
//! VFS inodes it touched are refreshed from the engine (`refresh`), under
//! their `i_rwsem`. Attributes a reader needs without asking the engine
//! (btime, blocks, flags) are kept in the inode's state beside the VFS
//! inode, so getattr and fileattr_get take no engine lock.

use crate::bindings;
use crate::engine;
use crate::mount::{info_of, Op};
use crate::vfs::{to_c, Attrs, Dentry, FileAttr, Idmap, Inode, Kstat, Locked};
use kernel::ffi::{c_int, c_uint};
use kernel::prelude::*;
use core::sync::atomic::Ordering;

/// The VFS attributes of an engine inode.
pub(crate) fn attrs_of(di: &engine::Inode) -> Attrs {
    Attrs {
        mode: di.mode,
        uid: di.uid,
        gid: di.gid,
        nlink: di.nlink,
        size: di.size,
        blocks: di.blocks,
        generation: di.generation as u32,
        atime: di.atime,
        mtime: di.mtime,
        ctime: di.ctime,
        btime: di.btime,
        flags: di.flags,
        s_flags: s_flags_of(di.flags),
        projid: di.projid,
    }
}

/// The VFS inode flags (`S_*`) that engine inode flags imply.
pub(crate) fn s_flags_of(flags: u32) -> u32 {
    let mut s_flags = 0;
    if flags & engine::IFLAG_IMMUTABLE != 0 {
        s_flags |= bindings::S_IMMUTABLE;
    }
    if flags & engine::IFLAG_APPEND != 0 {
        s_flags |= bindings::S_APPEND;
    }
    if flags & engine::IFLAG_NOATIME != 0 {
        s_flags |= bindings::S_NOATIME;
    }
    if flags & engine::IFLAG_SYNC != 0 {
        s_flags |= bindings::S_SYNC;
    }
    s_flags
}

/// Re-reads the inode's attributes from the engine into the VFS inode.
/// atime and mtime reach the engine lazily (write_inode), so each VFS
/// timestamp newer than the engine's stays.
pub(crate) fn refresh(inode: &Locked<'_>) -> Result {
    let info = info_of(inode)?;
    let di = info.with_fs(Op::Inode, |fs| {
        let di = fs.read_inode(inode.ino())?;
        // under the engine lock, which every change of the count holds
        // exclusively, the two must agree, unless the change's own read
        // back failed: then this shared hold settles it, as exactly
        if inode.state().swap_unsettled(false) {
            crate::quota::settle_blocks(inode, Some(di.blocks), 0);
        } else {
            crate::quota::check_blocks(inode, di.blocks);
        }
        check_owner(inode, di.uid, di.gid);
        // here, not in fill: faults change the count without i_rwsem,
        // under the exclusive engine lock that this shared hold excludes
        inode.state().set_blocks(di.blocks);
        Ok(di)
    })?;
    inode.fill(&attrs_of(&di), true);
    Ok(())
}

/// Says (in the kernel log, the first ten times) if the owner the engine
/// holds is not the VFS inode's. Only setattr stores an owner, under the
/// i_rwsem that a refresh holds too, so the two agree unless some path
/// stored a stale one (writeback and fsync once did: `write_attrs`); the
/// refresh then brings the media's owner in, without moving its quota
/// usage.
fn check_owner(inode: &Inode, uid: u32, gid: u32) {
    static SAID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let (vuid, vgid) = (inode.uid(), inode.gid());
    if (vuid, vgid) != (uid, gid) && SAID.fetch_add(1, Ordering::Relaxed) < 10 {
        crate::vfs::fs_err!(inode.sb().id(), "inode {}: owner {}:{} on media, {}:{} in memory; the media's wins, quota usage stays with {}:{} until quotacheck\n",
            inode.ino(), uid, gid, vuid, vgid, vuid, vgid);
    }
}

/// Writes the VFS inode's mode, owner and times to the engine, after a
/// setattr or an ACL change made them (under i_rwsem).
///
/// The VFS values are read inside the exclusive engine section, as are
/// `write_times`'s: these sections then store the attributes in the order
/// they read them, so the engine ends with the VFS inode's latest values.
/// (Read before the section, a writeback's snapshot taken before a chown
/// could reach the engine after the chown's, and put the old owner back
/// on the media for the next read of the inode to bring back.)
pub(crate) fn write_attrs(inode: &Inode) -> Result {
    store(inode, true)
}

/// Writes the VFS inode's times to the engine (writeback and fsync, which
/// run without i_rwsem): the only attributes kept lazily. Owner and mode
/// reach the engine in the setattr that changes them (`write_attrs`), so
/// these paths never store them.
pub(crate) fn write_times(inode: &Inode) -> Result {
    store(inode, false)
}

fn store(inode: &Inode, owner_and_mode: bool) -> Result {
    info_of(inode)?.with_fs_mut(Op::Inode, |fs| {
        let mut di = fs.read_inode(inode.ino())?;
        if owner_and_mode {
            (di.mode, di.uid, di.gid) = (u32::from(inode.mode()), inode.uid(), inode.gid());
        }
        (di.atime, di.mtime, di.ctime) = (inode.time(0), inode.time(1), inode.time(2));
        fs.write_inode(inode.ino(), &di)
    })
}

/// `super_operations.evict_inode`.
pub(crate) unsafe extern "C" fn evict_inode(p: *mut bindings::inode) {
    // SAFETY: the VFS hands us the inode being evicted (I_FREEING): nobody
    // else uses it and it stays allocated until free_inode.
    let inode = unsafe { Inode::from_raw(p) };
    evict(inode);
    crate::quota::drop_inode(inode);
    // SAFETY: the final step of eviction, after the mapping is emptied.
    unsafe { bindings::clear_inode(p) };
}

fn evict(inode: &Inode) {
    // SAFETY: drops every page-cache / DAX entry of the mapping of an inode
    // being evicted (nothing can map it any more).
    unsafe { bindings::truncate_inode_pages_final(inode.mapping()) };
    let Ok(info) = info_of(inode) else { return };
    info.rmap.lock().forget_inode(inode.ino());
    if inode.nlink() == 0 && !inode.is_bad() && inode.ino() != 0 {
        // a freeze waits for this, and holds it off until the thaw (the
        // last close of an unlinked file during a freeze sleeps here)
        let _intwrite = inode.sb().start_intwrite();
        if info.is_shut_down() {
            // Nothing can be written. The inode has been on the orphan list
            // since its last unlink, so the next mount frees it; umount
            // says how many (one line, not one per open unlinked file).
            info.stats.orphans_left.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // the owner's dquots, to give the inode back to them (never inside
        // the engine sections below)
        if let Err(e) = crate::quota::init(inode) {
            crate::vfs::fs_err!(inode.sb().id(), "inode {}: its owner's quota cannot be read ({:?}); the usage it frees stays counted until quotacheck\n", inode.ino(), e);
        }
        match free_unlinked(info, inode) {
            Ok(()) => crate::quota::free_inode(inode),
            Err(e) => crate::vfs::fs_err!(inode.sb().id(), "freeing inode {} failed ({:?}); it stays on the orphan list for the next mount\n", inode.ino(), e),
        }
    } else if !inode.is_bad() && inode.state().swap_unsettled(false) {
        settle_at_evict(info, inode);
    }
}

/// A linked inode leaves memory with its quota charge unsettled: the read
/// back after its last change failed (`with_fs_mut_charged`), and no
/// `refresh` came since. Its next life starts from the media's count, so
/// the charge is settled at that count now, or the owner's usage would keep
/// the difference until quotacheck.
fn settle_at_evict(info: &crate::mount::FsInfo, inode: &Inode) {
    // dquots first: never inside an engine section
    let r = crate::quota::init(inode).and_then(|()| {
        info.with_fs(Op::Inode, |fs| {
            let di = fs.read_inode(inode.ino())?;
            crate::quota::settle_blocks(inode, Some(di.blocks), 0);
            Ok(())
        })
    });
    if let Err(e) = r {
        crate::vfs::fs_err!(inode.sb().id(), "inode {}: its quota charge cannot be settled at eviction ({:?}); quota usage is off until quotacheck\n", inode.ino(), e);
    }
}

/// Frees an unlinked inode: its blocks a few MiB per exclusive section
/// (the inode is an orphan since its last unlink, so a crash in between
/// leaves the rest to the orphan scan at mount), then the inode.
fn free_unlinked(info: &crate::mount::FsInfo, inode: &Inode) -> Result {
    let ino = inode.ino();
    if inode.is_reg() {
        info.punch_steps(Op::Evict, inode, 0, engine::MAX_LBLK)?;
    }
    info.with_fs_mut(Op::Evict, |fs| fs.evict(ino))?;
    // nothing left to charge (the punches gave the blocks back already)
    crate::quota::settle_blocks(inode, Some(0), 0);
    Ok(())
}

/// `super_operations.write_inode`: lazily updated attributes (times) reach
/// the engine here (writeback, fsync, umount). Everything else is written
/// when it changes.
pub(crate) unsafe extern "C" fn write_inode(p: *mut bindings::inode, _wbc: *mut bindings::writeback_control) -> c_int {
    // SAFETY: writeback holds a reference on the inode for the call.
    let inode = unsafe { Inode::from_raw(p) };
    if inode.is_bad() || inode.nlink() == 0 {
        return 0;
    }
    to_c(write_times(inode))
}


/// `inode_operations.getattr` of every inode type. No engine call and no
/// mount-wide lock: btime and the block count come from the inode's state
/// (faults allocate blocks without passing through the VFS inode, and
/// iomap_begin updates the state when they do).
pub(crate) unsafe extern "C" fn getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    mask: u32,
    _flags: c_uint,
) -> c_int {
    // SAFETY: the VFS holds path->dentry, the idmap and the kstat for the call.
    let (d, idmap, stat) = unsafe { (Dentry::from_raw((*path).dentry), Idmap::from_raw(idmap), Kstat::from_raw(stat)) };
    let Ok(inode) = d.positive() else { return ENOENT.to_errno() };
    let st = inode.state();
    stat.fill(idmap, mask, inode);
    let flags = st.flags();
    let attrs = STATX_MAP.iter().filter(|(e, _)| flags & e != 0).fold(0, |a, (_, x)| a | u64::from(*x));
    stat.set_extra(st.btime(), st.blocks() * 8, inode.is_dax(), attrs);
    0
}

/// Inode flags statx reports in `stx_attributes`.
const STATX_MAP: [(u32, u32); 3] = [
    (engine::IFLAG_IMMUTABLE, bindings::STATX_ATTR_IMMUTABLE),
    (engine::IFLAG_APPEND, bindings::STATX_ATTR_APPEND),
    (engine::IFLAG_NODUMP, bindings::STATX_ATTR_NODUMP),
];

/// Inode flags ferrofs stores, as FS_*_FL (FS_IOC_GETFLAGS) bits. The VFS
/// mirrors them in FS_XFLAG_* bits (FS_PROJINHERIT_FL in
/// FS_XFLAG_PROJINHERIT).
const FL_MAP: [(u32, u32); 7] = [
    (engine::IFLAG_IMMUTABLE, bindings::FS_IMMUTABLE_FL),
    (engine::IFLAG_APPEND, bindings::FS_APPEND_FL),
    (engine::IFLAG_DAX, bindings::FS_DAX_FL),
    (engine::IFLAG_NOATIME, bindings::FS_NOATIME_FL),
    (engine::IFLAG_SYNC, bindings::FS_SYNC_FL),
    (engine::IFLAG_NODUMP, bindings::FS_NODUMP_FL),
    (engine::IFLAG_PROJINHERIT, bindings::FS_PROJINHERIT_FL),
];

/// Extent size hint flags, as FS_XFLAG_* (FS_IOC_FSGETXATTR) bits.
const XFL_MAP: [(u32, u32); 3] = [
    (engine::IFLAG_EXTSIZE, bindings::FS_XFLAG_EXTSIZE),
    (engine::IFLAG_EXTSZINHERIT, bindings::FS_XFLAG_EXTSZINHERIT),
    (engine::IFLAG_COWEXTSIZE, bindings::FS_XFLAG_COWEXTSIZE),
];

/// `inode_operations.fileattr_get`: flags, the extent size hints and the
/// project ID.
pub(crate) unsafe extern "C" fn fileattr_get(d: *mut bindings::dentry, fa: *mut bindings::fileattr) -> c_int {
    // SAFETY: the VFS holds the dentry (positive) and the fileattr for the call.
    let (d, fa) = unsafe { (Dentry::from_raw(d), FileAttr::from_raw(fa)) };
    to_c(d.positive().and_then(|inode| {
        let di = info_of(inode)?.with_fs(Op::Inode, |fs| fs.read_inode(inode.ino()))?;
        let fl = FL_MAP.iter().filter(|(e, _)| di.flags & e != 0).fold(0, |a, (_, f)| a | f);
        let xf = XFL_MAP.iter().filter(|(e, _)| di.flags & e != 0).fold(0, |a, (_, f)| a | f);
        let bs = engine::BLOCK_SIZE as u32;
        // the extent size hints are reported in bytes
        fa.fill(fl, xf, di.extsize.saturating_mul(bs), di.cowextsize.saturating_mul(bs), di.projid);
        Ok(())
    }))
}

/// `inode_operations.fileattr_set`.
pub(crate) unsafe extern "C" fn fileattr_set(_idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, fa: *mut bindings::fileattr) -> c_int {
    // SAFETY: the VFS holds the dentry (positive) and the fileattr for the call.
    let (d, fa) = unsafe { (Dentry::from_raw(d), FileAttr::from_raw(fa)) };
    let Ok(inode) = d.positive() else { return ENOENT.to_errno() };
    // SAFETY: vfs_fileattr_set holds i_rwsem for FS_IOC_SETFLAGS/FSSETXATTR.
    let inode = unsafe { inode.assume_locked() };
    to_c(set_flags(&inode, fa))
}

fn set_flags(inode: &Locked<'_>, fa: &FileAttr) -> Result {
    // (vfs_fileattr_set keeps flags and xflags in step before calling us)
    let fl = fa.flags();
    let known = FL_MAP.iter().fold(0, |a, (_, f)| a | f);
    if fl & !known != 0 {
        return Err(crate::vfs::code::eopnotsupp());
    }
    let mut eflags = FL_MAP.iter().filter(|(_, f)| fl & f != 0).fold(0, |a, (e, _)| a | e);
    if !inode.is_dir() {
        // PROJINHERIT means something only on a directory: XFS drops it
        // elsewhere without a word, and so do we
        eflags &= !engine::IFLAG_PROJINHERIT;
    }
    // Extent size hints: the VFS has checked the flags against the file
    // type, cleared a flag whose value is 0 and, for FS_IOC_SETFLAGS,
    // filled in the current hints; the engine applies XFS's other rules
    // (EINVAL: over 2^21 blocks or half the filesystem, or a regular file
    // with blocks mapped changing its hint). Values are bytes here and
    // blocks on media, so they must be a multiple of the block size.
    let (xf, (ext, cow)) = (fa.xflags(), fa.hints());
    let bs = engine::BLOCK_SIZE as u32;
    if ext % bs != 0 || cow % bs != 0 {
        return Err(EINVAL);
    }
    let hflags = XFL_MAP.iter().filter(|(_, f)| xf & f != 0).fold(0, |a, (e, _)| a | e);
    // A new project ID takes the inode's usage with it, before the change
    // (EDQUOT if the new project is over its limit); the VFS has checked
    // that the caller may change it (the initial user namespace only).
    let (old, projid) = (inode.state().projid(), fa.projid());
    if projid != old {
        crate::quota::transfer_project(inode, projid)?;
    }
    let t = inode.now();
    let r = info_of(inode)?.with_fs_mut(Op::Inode, |fs| {
        let di = fs.read_inode(inode.ino())?;
        let fl_mask = FL_MAP.iter().fold(engine::IFLAG_HINTS, |a, (e, _)| a | e);
        let keep = di.flags & !fl_mask;
        fs.set_fsxattr(inode.ino(), keep | eflags | hflags, ext / bs, cow / bs, Some(projid), t)
    });
    if r.is_err() && projid != old {
        // the usage goes back with the ID that stays
        if let Err(e) = crate::quota::transfer_project(inode, old) {
            crate::vfs::fs_err!(inode.sb().id(), "inode {}: project quota usage stays with project {} after a failed change ({:?}); remount to recount\n",
                inode.ino(), projid, e);
        }
    }
    r?;
    refresh(inode)
}
