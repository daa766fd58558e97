// SPDX-License-Identifier: GPL-2.0
//! Inodes and the namespace: iget, eviction, directory and inode operations.
//!
//! The engine is the single source of truth for every attribute: a namespace
//! operation runs one engine transaction (durable when it returns), then the
//! VFS inodes it touched are refreshed from the engine with `refresh`.
//! Directory entries are copied out of the engine in batches and emitted to
//! userspace only after the engine lock is dropped, because copying to a user
//! buffer can fault on a ferrofs mapping and re-enter the engine.

use crate::bindings;
use crate::engine;
use crate::inode::{attrs_of, refresh};
use crate::mount::{info_of, FsInfo, Op};
use crate::vfs::{err_ptr, to_c, Cached, DirContext, Idmap, Inode, Locked, NamedDentry, NewInode, Ops, SuperBlock, Table, UnhashedInode};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::types::ARef;

const S_IFMT: u32 = bindings::S_IFMT;

/// Gets the VFS inode for `ino`, reading it from the engine if not cached.
pub(crate) fn iget(sb: &SuperBlock, ino: u64) -> Result<ARef<Inode>> {
    match sb.iget_locked(ino)? {
        Cached::Live(i) => Ok(i),
        Cached::New(mut n) => {
            // on error, dropping `n` fails the new inode (iget_failed)
            let di = FsInfo::of(sb)?.with_fs(Op::Inode, |fs| fs.read_inode(ino))?;
            n.init(&attrs_of(&di), &ops_for(di.mode, di.rdev));
            Ok(n.publish())
        }
    }
}

/// The operation tables for an inode of `mode`.
pub(crate) fn ops_for(mode: u32, rdev: u32) -> Ops {
    let base = Ops { iops: &SPECIAL_IOPS, fops: None, aops: None, s_flags: 0, special_rdev: None, nohighmem: false };
    match mode & S_IFMT {
        bindings::S_IFDIR => Ops { iops: &DIR_IOPS, fops: Some(&DIR_FOPS_T.0), ..base },
        bindings::S_IFREG => crate::file::ops(),
        bindings::S_IFLNK => Ops { iops: &SYMLINK_IOPS, nohighmem: true, ..base },
        // SAFETY: pure arithmetic on the on-media device number.
        _ => Ops { special_rdev: Some(unsafe { bindings::ferrofs_decode_dev(rdev) }), ..base },
    }
}

/// # Safety
/// `dir` is a ferrofs directory whose i_rwsem the VFS holds (exclusively for
/// a create, shared for a lookup, which is all `Locked` is used for here
/// until the operation ends) and `d` a dentry in it; both live for `'a`.
unsafe fn dir_args<'a>(dir: *mut bindings::inode, d: *mut bindings::dentry) -> (Locked<'a>, &'a NamedDentry) {
    // SAFETY: per the function's contract.
    unsafe { (Inode::from_raw(dir).assume_locked(), NamedDentry::from_raw(d)) }
}

unsafe extern "C" fn lookup(dir: *mut bindings::inode, d: *mut bindings::dentry, _flags: c_uint) -> *mut bindings::dentry {
    // SAFETY: the VFS holds dir (its i_rwsem shared, which keeps the
    // dentry's name stable) and the dentry for the call.
    let (dir, d) = unsafe { (Inode::from_raw(dir), NamedDentry::from_raw(d)) };
    let name = d.name();
    if name.len() > engine::NAME_MAX {
        return err_ptr(crate::vfs::code::enametoolong());
    }
    let r = info_of(dir).and_then(|info| info.with_fs(Op::Lookup, |fs| fs.lookup(dir.ino(), name)));
    let inode = match r {
        Ok(Some(ino)) => match iget(dir.sb(), ino) {
            Ok(i) => Some(i),
            Err(e) => return err_ptr(e),
        },
        Ok(None) => None,
        Err(e) => return err_ptr(e),
    };
    d.splice_alias(inode)
}

/// Makes a new VFS inode of `mode` in `dir`, backed by the engine inode that
/// `make` creates, with the ACLs it inherits (stored by a transaction of
/// their own after `make`'s, as XFS does). Returns it hashed and still
/// locked (I_NEW); the caller labels it ([`label`]). `data_blocks` are the
/// blocks `make` gives the new inode (`engine::symlink_blocks`), charged
/// to its quotas with the inode, before `make` runs.
fn new_vfs_inode(
    idmap: &Idmap,
    dir: &Locked<'_>,
    mode: u16,
    rdev: u32,
    new_entries: u64,
    data_blocks: u64,
    make: impl FnOnce(&mut engine::Fs<crate::dax::PmemMedia>, &engine::NewInode) -> engine::Result<(u64, engine::Inode)>,
) -> Result<NewInode> {
    let info = info_of(dir)?;
    // dropped on any error below: marked bad (never reached the engine) and released
    let mut u = UnhashedInode::new(dir.sb())?;
    u.init_owner(idmap, dir, mode);
    // the project the engine will give it, to charge before it does
    let ds = dir.state();
    u.inode().state().set_projid(engine::inherited_projid(ds.flags(), ds.projid()));
    crate::quota::init(dir)?;
    u.charge_quota(data_blocks)?;
    // With SB_POSIXACL the VFS leaves the umask to us: posix_acl_create
    // applies it, or the directory's default ACL instead.
    let acls = if u32::from(mode) & S_IFMT == bindings::S_IFLNK {
        crate::vfs::Inherited { default: None, access: None }
    } else {
        u.acl_create(dir)?
    };
    let mode = u32::from(u.inode().mode());
    let new = engine::NewInode {
        mode,
        uid: u.inode().uid(),
        gid: u.inode().gid(),
        rdev,
        flags: engine::inherited_flags(dir.state().flags(), mode),
        time: dir.now(),
    };
    let (ino, di) = in_dir(info, dir, new_entries, |fs| make(fs, &new))?;
    let n = u.insert(ino, &attrs_of(&di), &ops_for(mode, rdev))?;
    if let Err(e) = crate::xattr::acl_init(&n, acls) {
        crate::vfs::fs_err!(dir.sb().id(), "inode {}: storing inherited ACLs failed: {:?}\n", ino, e);
    }
    Ok(n)
}

/// An exclusive engine section `f` that changes the entries of `dir`,
/// adding at most `new_entries` (0 or 1): a directory is charged the blocks
/// its entries take in the DIR btree (`engine::dir_blocks`), so a name
/// added by a user over the limit of the directory's owner, when it takes
/// a new block's worth, is EDQUOT before anything changes (XFS reserves
/// quota for a directory's growth the same way), and the charge is
/// settled at the directory's new count afterwards (a removal gives blocks
/// back). `crate::quota::init(dir)` must have run.
fn in_dir<R>(
    info: &crate::mount::FsInfo,
    dir: &Inode,
    new_entries: u64,
    f: impl FnOnce(&mut engine::Fs<crate::dax::PmemMedia>) -> engine::Result<R>,
) -> Result<R> {
    let dino = dir.ino();
    info.with_fs_mut_charged(
        Op::Namespace,
        dir,
        |fs| {
            let size = fs.read_inode(dino)?.size;
            Ok(engine::dir_blocks(size + new_entries) - engine::dir_blocks(size))
        },
        f,
    )
}

/// Settles the quota charge of a directory a section changed besides the
/// one `in_dir` settles (the source directory of a rename; the root after
/// the mount made /aquota.project in it), inside that section.
pub(crate) fn settle_dir(fs: &engine::Fs<crate::dax::PmemMedia>, dir: &Inode) {
    let blocks = fs.read_inode(dir.ino()).map(|i| i.blocks).ok();
    crate::quota::settle_blocks(dir, blocks, 0);
    if let Some(b) = blocks {
        dir.state().set_blocks(b);
    }
}

/// Stores the labels the active LSMs (SELinux, Smack, EVM) give the new
/// inode `n`, a child of `dir` named `name` (`None`: O_TMPFILE), each as
/// its own transaction after the create's, as XFS does. Without them the
/// label would live in the LSM's memory only and be gone at the next
/// mount. A failure (ENOMEM, ENOSPC) is the caller's to undo.
fn label(n: &NewInode, dir: &Inode, name: Option<&NamedDentry>) -> Result {
    n.init_security(dir, name, &mut |inode, suffix, value| crate::xattr::security_init(inode, suffix, value))
}

/// Undoes a create whose inode could not be labelled, as XFS's
/// `xfs_cleanup_inode` does: removes the name again, so the create fails
/// with nothing left behind (the unlink puts the inode on the orphan list,
/// and dropping our reference frees it). A failure here leaves the
/// unlabelled file in place, said in dmesg.
fn unmake_node(dir: &Locked<'_>, d: &NamedDentry, n: NewInode) {
    let inode = n.publish();
    let (dino, name, t) = (dir.ino(), d.name(), dir.now());
    let is_dir = inode.is_dir();
    let r = info_of(dir).and_then(|info| {
        in_dir(info, dir, 0, |fs| if is_dir { fs.rmdir(dino, name, t) } else { fs.unlink(dino, name, t) }.map(|_| ()))
    });
    match r {
        Ok(()) => {
            let _ = refresh(&inode.lock());
        }
        Err(e) => crate::vfs::fs_err!(dir.sb().id(), "inode {}: removing it after its LSM label failed also failed ({:?}); it stays, unlabelled\n", inode.ino(), e),
    }
    let _ = refresh(dir);
}

/// Creates an inode of `mode` named by `d` in `dir`, instantiates `d`.
fn make_node(idmap: &Idmap, dir: &Locked<'_>, d: &NamedDentry, mode: u16, rdev: u32, symlink: Option<&[u8]>) -> Result {
    let (dino, name) = (dir.ino(), d.name());
    let blocks = symlink.map_or(0, |t| engine::symlink_blocks(t.len()));
    let n = new_vfs_inode(idmap, dir, mode, rdev, 1, blocks, |fs, new| match symlink {
        Some(target) => fs.symlink(dino, name, target, new),
        None => fs.create(dino, name, new),
    })?;
    if let Err(e) = label(&n, dir, Some(d)) {
        unmake_node(dir, d, n);
        return Err(e);
    }
    let _ = refresh(dir);
    d.instantiate_new(n);
    Ok(())
}

unsafe extern "C" fn tmpfile(idmap: *mut bindings::mnt_idmap, dirp: *mut bindings::inode, file: *mut bindings::file, mode: u16) -> c_int {
    // SAFETY: vfs_tmpfile holds dir's i_rwsem, the file being opened and
    // the idmap.
    let (dir, file, idmap) = unsafe { (Inode::from_raw(dirp).assume_locked(), crate::vfs::File::from_raw(file), Idmap::from_raw(idmap)) };
    let dino = dir.ino();
    let r = new_vfs_inode(idmap, &dir, mode, 0, 0, 0, |fs, new| fs.tmpfile(dino, new)).and_then(|n| {
        if let Err(e) = label(&n, &dir, None) {
            // unlabelled: dropping our reference to the unlinked inode frees it
            drop(n.publish());
            return Err(e);
        }
        file.open_tmpfile(n)
    });
    to_c(r)
}

unsafe extern "C" fn create(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16, _excl: bool) -> c_int {
    // SAFETY: the VFS holds dir's i_rwsem exclusively, the dentry and the idmap.
    let ((dir, d), idmap) = unsafe { (dir_args(dir, d), Idmap::from_raw(idmap)) };
    to_c(make_node(idmap, &dir, d, mode | bindings::S_IFREG as u16, 0, None))
}

unsafe extern "C" fn mkdir(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16) -> c_int {
    // SAFETY: as in create.
    let ((dir, d), idmap) = unsafe { (dir_args(dir, d), Idmap::from_raw(idmap)) };
    to_c(make_node(idmap, &dir, d, mode | bindings::S_IFDIR as u16, 0, None))
}

unsafe extern "C" fn mknod(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16, rdev: bindings::dev_t) -> c_int {
    // SAFETY: as in create.
    let ((dir, d), idmap) = unsafe { (dir_args(dir, d), Idmap::from_raw(idmap)) };
    // SAFETY: pure arithmetic.
    let enc = unsafe { bindings::ferrofs_encode_dev(rdev) };
    to_c(make_node(idmap, &dir, d, mode, enc, None))
}

unsafe extern "C" fn symlink(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, target: *const c_char) -> c_int {
    // SAFETY: as in create.
    let ((dir, d), idmap) = unsafe { (dir_args(dir, d), Idmap::from_raw(idmap)) };
    // SAFETY: the VFS passes a NUL-terminated kernel copy of the target.
    let t = unsafe { kernel::str::CStr::from_char_ptr(target) }.as_bytes();
    if t.len() >= bindings::FERROFS_PAGE_SIZE as usize {
        return crate::vfs::code::enametoolong().to_errno();
    }
    to_c(make_node(idmap, &dir, d, (bindings::S_IFLNK | 0o777) as u16, 0, Some(t)))
}

unsafe extern "C" fn link(old: *mut bindings::dentry, dir: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    // SAFETY: the VFS holds dir's i_rwsem and the new dentry; vfs_link holds
    // the source dentry and its inode's i_rwsem.
    let (dir, d, old) = unsafe { (Inode::from_raw(dir).assume_locked(), NamedDentry::from_raw(d), crate::vfs::Dentry::from_raw(old)) };
    to_c(old.positive().and_then(|inode| {
        // SAFETY: vfs_link holds the source inode's i_rwsem (see above).
        let inode = unsafe { inode.assume_locked() };
        crate::quota::init(&dir)?;
        in_dir(info_of(&dir)?, &dir, 1, |fs| fs.link(inode.ino(), dir.ino(), d.name(), dir.now()))?;
        let _ = refresh(&inode);
        let _ = refresh(&dir);
        d.instantiate(inode.to_aref());
        Ok(())
    }))
}

fn remove(dir: &Locked<'_>, d: &NamedDentry, is_dir: bool) -> Result {
    let victim = d.positive()?;
    // SAFETY: vfs_unlink and vfs_rmdir hold the victim's i_rwsem.
    let victim = unsafe { victim.assume_locked() };
    let t = dir.now();
    crate::quota::init(dir)?;
    in_dir(info_of(dir)?, dir, 0, |fs| if is_dir { fs.rmdir(dir.ino(), d.name(), t) } else { fs.unlink(dir.ino(), d.name(), t) }.map(|_| ()))?;
    refresh(&victim)?;
    refresh(dir)
}

unsafe extern "C" fn unlink(dir: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    // SAFETY: the VFS holds dir's i_rwsem exclusively and the dentry.
    let (dir, d) = unsafe { dir_args(dir, d) };
    to_c(remove(&dir, d, false))
}

unsafe extern "C" fn rmdir(dir: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    // SAFETY: as in unlink.
    let (dir, d) = unsafe { dir_args(dir, d) };
    to_c(remove(&dir, d, true))
}

unsafe extern "C" fn rename(
    idmap: *mut bindings::mnt_idmap,
    odir: *mut bindings::inode,
    od: *mut bindings::dentry,
    ndir: *mut bindings::inode,
    nd: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    // SAFETY: lock_rename holds both directories' i_rwsem (one lock if they
    // are the same: `Locked` never unlocks here, so two views are harmless)
    // and the VFS holds both dentries and the idmap.
    let ((odir, od), (ndir, nd), idmap) = unsafe { (dir_args(odir, od), dir_args(ndir, nd), Idmap::from_raw(idmap)) };
    to_c(rename_locked(idmap, &odir, od, &ndir, nd, flags))
}

fn rename_locked(idmap: &Idmap, odir: &Locked<'_>, od: &NamedDentry, ndir: &Locked<'_>, nd: &NamedDentry, flags: c_uint) -> Result {
    if flags & !(bindings::RENAME_NOREPLACE | bindings::RENAME_EXCHANGE | bindings::RENAME_WHITEOUT) != 0 {
        return Err(EINVAL);
    }
    let whiteout = flags & bindings::RENAME_WHITEOUT != 0;
    if whiteout && flags & bindings::RENAME_EXCHANGE != 0 {
        // (the VFS refuses WHITEOUT with EXCHANGE before calling us)
        return Err(EINVAL);
    }
    let moved = od.positive()?;
    let rf = engine::RenameFlags {
        noreplace: flags & bindings::RENAME_NOREPLACE != 0,
        exchange: flags & bindings::RENAME_EXCHANGE != 0,
    };
    let (o, n, oname, nname) = (odir.ino(), ndir.ino(), od.name(), nd.name());
    if whiteout {
        // RENAME_WHITEOUT (overlayfs on its upper layer): the engine renames
        // and puts a whiteout (character device 0/0) under the source name
        // in one transaction. Its owner and mode come from inode_init_owner
        // and the directory's default ACL, as for a mknod in `odir` (what
        // ext4 does; since 5.8 the VFS lets anyone make a whiteout). Like
        // ext4 and XFS we give it no dentry: d_move leaves the source name
        // unhashed, so the next lookup reads the whiteout from the engine.
        // The VFS calls no rename for two names of one inode, so the
        // engine's "nothing to do, no whiteout" answer cannot come; refuse
        // it if it does.
        // (the whiteout takes the source's entry in `odir`; a new name in
        // `ndir` is settled, not limited: overlayfs is copying up)
        crate::quota::init(ndir)?;
        let w = new_vfs_inode(idmap, odir, bindings::S_IFCHR as u16, 0, 0, 0, |fs, new| {
            let r = fs.rename_whiteout(o, oname, n, nname, rf, new)?.ok_or(engine::Error::Invalid);
            settle_dir(fs, ndir);
            r
        })?;
        // Labelled as a child named like the source (XFS 70b589a37e1a; what
        // generic/700 checks). The rename is durable already, so a label
        // that cannot be stored is said, not undone.
        if let Err(e) = label(&w, odir, Some(od)) {
            crate::vfs::fs_err!(odir.sb().id(), "whiteout inode {}: storing its LSM label failed ({:?})\n", w.inode().ino(), e);
        }
        // published and released: it stays cached (nlink 1)
        drop(w.publish());
    } else {
        // a new name in `ndir` (no target to replace, no exchange) is
        // charged to its owner; `odir` gives one back
        crate::quota::init(odir)?;
        crate::quota::init(ndir)?;
        let grows = u64::from(!rf.exchange && nd.inode().is_none());
        in_dir(info_of(odir)?, ndir, grows, |fs| {
            let r = fs.rename(o, oname, n, nname, rf, odir.now());
            settle_dir(fs, odir);
            r
        })?;
    }
    // the rename is done and durable: a failed refresh must not report it
    // failed. vfs_rename locks a child directory only when its parent
    // changes or when it is the victim (fs/namei.c, "lock children"): a
    // directory moved, or exchanged, within one parent is not locked, and
    // a chown or chmod of it may be running. Such a directory gets only
    // the ctime the engine stamped (the rename changes nothing else of
    // it); a refresh would store the owner and mode it read, putting back
    // what a racing setattr had just replaced.
    let same_parent = o == n;
    if moved.is_dir() && same_parent {
        rename_ctime(&moved);
    } else {
        // SAFETY: vfs_rename holds its i_rwsem (a non-directory, or a
        // directory whose parent changes).
        let _ = refresh(&unsafe { moved.assume_locked() });
    }
    if let Some(target) = nd.inode() {
        if rf.exchange && target.is_dir() && same_parent {
            rename_ctime(&target);
        } else {
            // SAFETY: vfs_rename holds its i_rwsem (the victim, a
            // non-directory, or a directory whose parent changes).
            let _ = refresh(&unsafe { target.assume_locked() });
        }
    }
    let _ = refresh(odir);
    let _ = refresh(ndir);
    Ok(())
}

/// The ctime the engine stamped on `inode` in a rename, into the VFS inode
/// of a directory the VFS did not lock for it (see `rename_locked`).
fn rename_ctime(inode: &Inode) {
    let Ok(info) = info_of(inode) else { return };
    if let Ok(di) = info.with_fs(Op::Inode, |fs| fs.read_inode(inode.ino())) {
        inode.set_ctime_of_unlocked_dir(di.ctime);
    }
}

unsafe extern "C" fn get_link(d: *mut bindings::dentry, p: *mut bindings::inode, done: *mut bindings::delayed_call) -> *const c_char {
    if d.is_null() {
        return err_ptr(ECHILD); // RCU walk: we may sleep on the engine lock
    }
    // SAFETY: the VFS holds a reference to the inode for the call.
    let inode = unsafe { Inode::from_raw(p) };
    let mut buf = match KVec::from_elem(0u8, bindings::FERROFS_PAGE_SIZE as usize, GFP_KERNEL) {
        Ok(b) => b,
        Err(_) => return err_ptr(ENOMEM),
    };
    let r = info_of(inode).and_then(|info| info.with_fs(Op::Inode, |fs| fs.read_link(inode.ino(), &mut buf[..])));
    let n = match r {
        Ok(n) if n < buf.len() => n,
        Ok(_) => return err_ptr(crate::vfs::code::euclean()),
        Err(e) => return err_ptr(e),
    };
    buf[n] = 0;
    let (ptr, _len, _cap) = buf.into_raw_parts();
    // SAFETY: the delayed call frees the buffer with kfree once the VFS is
    // done with the string (KVec allocates with krealloc, so kfree matches).
    unsafe {
        (*done).fn_ = Some(free_link);
        (*done).arg = ptr.cast();
    }
    ptr.cast()
}

unsafe extern "C" fn free_link(arg: *mut c_void) {
    // SAFETY: arg is the krealloc'd buffer from get_link.
    unsafe { kernel::bindings::kfree(arg) };
}

unsafe extern "C" fn iterate_shared(file: *mut bindings::file, ctx: *mut bindings::dir_context) -> c_int {
    // SAFETY: the VFS holds the file (and so the directory) and hands us
    // the context of this call.
    let (file, ctx) = unsafe { (crate::vfs::File::from_raw(file), DirContext::from_raw(ctx)) };
    to_c(readdir(file.inode(), file, ctx))
}

/// Emits the directory's entries from the context's position on.
fn readdir(dir: &Inode, file: &crate::vfs::File, ctx: &DirContext) -> Result {
    if !ctx.emit_dots(file) {
        return Ok(());
    }
    let info = info_of(dir)?;
    let mut batch: KVec<u8> = KVec::new();
    loop {
        let pos = ctx.pos() as u64;
        // SAFETY: u8 has no destructor; shrinking the length is always valid.
        unsafe { batch.set_len(0) };
        let mut end = true;
        info.with_fs(Op::Readdir, |fs| {
            fs.readdir(dir.ino(), pos, &mut |name, ino, ftype, next| {
                // record: ino u64, next u64, type u8, len u8, name
                if batch.len() + 18 + name.len() > 16384 {
                    end = false;
                    return false;
                }
                let ok = batch.extend_from_slice(&ino.to_le_bytes(), GFP_KERNEL).is_ok()
                    && batch.extend_from_slice(&next.to_le_bytes(), GFP_KERNEL).is_ok()
                    && batch.extend_from_slice(&[ftype, name.len() as u8], GFP_KERNEL).is_ok()
                    && batch.extend_from_slice(name, GFP_KERNEL).is_ok();
                if !ok {
                    end = false;
                }
                ok
            })
        })?;
        let mut off = 0;
        let b = &batch[..];
        while off + 18 <= b.len() {
            let ino = u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]));
            let next = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap_or([0; 8]));
            let (ft, len) = (b[off + 16], b[off + 17] as usize);
            if !ctx.emit(&b[off + 18..off + 18 + len], ino, ft) {
                return Ok(());
            }
            ctx.set_pos(next as i64);
            off += 18 + len;
        }
        if end {
            return Ok(());
        }
    }
}
static DIR_IOPS: bindings::inode_operations = bindings::inode_operations {
    lookup: Some(lookup),
    create: Some(create),
    mkdir: Some(mkdir),
    mknod: Some(mknod),
    symlink: Some(symlink),
    link: Some(link),
    unlink: Some(unlink),
    rmdir: Some(rmdir),
    rename: Some(rename),
    tmpfile: Some(tmpfile),
    getattr: Some(crate::inode::getattr),
    setattr: Some(crate::file::setattr),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    fileattr_get: Some(crate::inode::fileattr_get),
    fileattr_set: Some(crate::inode::fileattr_set),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

/// Directory positions are hash cookies up to 2^62, beyond s_maxbytes.
unsafe extern "C" fn dir_llseek(file: *mut bindings::file, off: i64, whence: c_int) -> i64 {
    // SAFETY: file is valid for the call.
    unsafe { bindings::generic_file_llseek_size(file, off, whence, i64::MAX, i64::MAX) }
}

static DIR_FOPS_T: Table<bindings::file_operations> = Table(bindings::file_operations {
    llseek: Some(dir_llseek),
    read: Some(bindings::generic_read_dir),
    iterate_shared: Some(iterate_shared),
    fsync: Some(bindings::noop_fsync),
    unlocked_ioctl: Some(crate::ioctl::ioctl),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
});

static SYMLINK_IOPS: bindings::inode_operations = bindings::inode_operations {
    get_link: Some(get_link),
    getattr: Some(crate::inode::getattr),
    setattr: Some(crate::file::setattr),
    listxattr: Some(crate::xattr::listxattr),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

static SPECIAL_IOPS: bindings::inode_operations = bindings::inode_operations {
    getattr: Some(crate::inode::getattr),
    setattr: Some(crate::file::setattr),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};
