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
use crate::super_ops::info_of;
use crate::vfs::{err_ptr, to_c, Inode, SuperBlock, Table};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;

const S_IFMT: u32 = bindings::S_IFMT;

/// Gets the VFS inode for `ino`, reading it from the engine if not cached.
/// Returns a referenced inode.
pub(crate) fn iget(sb: &SuperBlock, ino: u64) -> Result<*mut bindings::inode> {
    // SAFETY: sb is live; iget_locked returns a referenced inode or NULL.
    let p = unsafe { bindings::iget_locked(sb.as_ptr(), ino as _) };
    if p.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: p is referenced; i_state is read under the rules of I_NEW.
    if unsafe { (*p).i_state } & bindings::I_NEW == 0 {
        return Ok(p);
    }
    // SAFETY: p is a new, locked inode that only we can see.
    let inode = unsafe { Inode::from_raw(p) };
    let r = sb.info().ok_or(EIO).and_then(|info| info.with_fs(|fs| fs.read_inode(ino)));
    match r {
        Ok(di) => {
            inode.fill_from(&di);
            set_ops(inode, di.rdev);
            // SAFETY: fully initialised; publish it.
            unsafe { bindings::unlock_new_inode(p) };
            Ok(p)
        }
        Err(e) => {
            // SAFETY: a new inode that failed to initialise.
            unsafe { bindings::iget_failed(p) };
            Err(e)
        }
    }
}

/// Installs the operation tables for the inode's type.
fn set_ops(inode: &Inode, rdev: u32) {
    let p = inode.as_ptr();
    let mode = u32::from(inode.mode());
    // SAFETY: the inode is new (I_NEW or not yet published); we own its ops.
    unsafe {
        match mode & S_IFMT {
            bindings::S_IFDIR => {
                (*p).i_op = &DIR_IOPS;
                (*p).__bindgen_anon_3.i_fop = &DIR_FOPS_T.0;
            }
            bindings::S_IFREG => crate::file::set_file_ops(inode),
            bindings::S_IFLNK => {
                (*p).i_op = &SYMLINK_IOPS;
                bindings::inode_nohighmem(p);
            }
            _ => {
                (*p).i_op = &SPECIAL_IOPS;
                bindings::init_special_inode(p, inode.mode(), bindings::ferrofs_decode_dev(rdev));
            }
        }
    }
}

/// Re-reads `ino`'s attributes from the engine into its cached VFS inode.
pub(crate) fn refresh(inode: &Inode) -> Result {
    let info = info_of(inode)?;
    let di = info.with_fs(|fs| fs.read_inode(inode.ino()))?;
    inode.refresh_from(&di);
    Ok(())
}

pub(crate) unsafe extern "C" fn evict_inode(p: *mut bindings::inode) {
    // SAFETY: the VFS hands us the inode being evicted; nobody else uses it.
    let inode = unsafe { Inode::from_raw(p) };
    // SAFETY: drops every page-cache / DAX entry of the mapping.
    unsafe { bindings::truncate_inode_pages_final(&mut (*p).i_data) };
    // SAFETY: reading the state of the inode being evicted.
    let bad = unsafe { bindings::is_bad_inode(p) };
    if let Ok(info) = info_of(inode) {
        info.rmap.lock().forget_inode(inode.ino());
    }
    if inode.nlink() == 0 && !bad && inode.ino() != 0 {
        if let Ok(info) = info_of(inode) {
            if let Err(e) = info.with_fs(|fs| fs.evict(inode.ino())) {
                crate::vfs::fs_err!(inode.sb().id(), "freeing inode {} failed ({:?}); fsck will reclaim it\n", inode.ino(), e);
            }
        }
    }
    // SAFETY: the final step of eviction.
    unsafe { bindings::clear_inode(p) };
}

/// A name from a dentry, valid for the callback.
fn dname<'a>(d: *mut bindings::dentry) -> &'a [u8] {
    // SAFETY: the VFS keeps d_name stable while it holds the parent's lock,
    // which it does for every callback that passes us a dentry to name.
    unsafe {
        let q = &(*d).d_name;
        core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize)
    }
}

fn now(inode: *mut bindings::inode) -> engine::Time {
    // SAFETY: inode is live; current_time only reads the sb granularity.
    let ts = unsafe { bindings::current_time(inode) };
    engine::Time { sec: ts.tv_sec, nsec: ts.tv_nsec as u32 }
}

unsafe extern "C" fn lookup(dir: *mut bindings::inode, d: *mut bindings::dentry, _flags: c_uint) -> *mut bindings::dentry {
    // SAFETY: dir is live and locked (shared) by the VFS for the call.
    let dir = unsafe { Inode::from_raw(dir) };
    let name = dname(d);
    if name.len() > engine::NAME_MAX {
        return err_ptr(crate::vfs::code::enametoolong());
    }
    let r = info_of(dir).and_then(|info| info.with_fs(|fs| fs.lookup(dir.ino(), name)));
    let inode = match r {
        Ok(Some(ino)) => match iget(dir.sb(), ino) {
            Ok(i) => i,
            Err(e) => return err_ptr(e),
        },
        Ok(None) => core::ptr::null_mut(),
        Err(e) => return err_ptr(e),
    };
    // SAFETY: inode is NULL (negative dentry) or referenced; d_splice_alias
    // consumes the reference.
    unsafe { bindings::d_splice_alias(inode, d) }
}

/// Makes a new VFS inode of `mode` in `dir`, backed by the engine inode that
/// `make` creates. Returns it hashed and still locked (I_NEW).
fn new_vfs_inode(
    idmap: *mut bindings::mnt_idmap,
    dirp: *mut bindings::inode,
    mode: u16,
    rdev: u32,
    make: impl FnOnce(&mut engine::Fs<crate::dax::PmemMedia>, &engine::NewInode) -> engine::Result<(u64, engine::Inode)>,
) -> Result<*mut bindings::inode> {
    // SAFETY: dir is live and locked by the VFS for the calling operation.
    let dir = unsafe { Inode::from_raw(dirp) };
    let info = info_of(dir)?;
    // SAFETY: new_inode returns an unhashed inode only we can see, or NULL.
    let p = unsafe { bindings::new_inode(dir.sb().as_ptr()) };
    if p.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: computes owner/group/mode (setgid directories) into the new inode.
    unsafe { bindings::inode_init_owner(idmap, p, dirp, mode) };
    // SAFETY: as above: the new inode is ours.
    let inode = unsafe { Inode::from_raw(p) };
    // With SB_POSIXACL the VFS leaves the umask to us: posix_acl_create
    // applies it, or the directory's default ACL instead.
    let is_link = u32::from(mode) & S_IFMT == bindings::S_IFLNK;
    let (dacl, acl) = if is_link {
        (core::ptr::null_mut(), core::ptr::null_mut())
    } else {
        let mut m = inode.mode();
        match crate::xattr::acl_create(dirp, &mut m) {
            Ok(v) => {
                // SAFETY: the new inode is still private to us.
                unsafe { (*p).i_mode = m };
                v
            }
            Err(e) => {
                // SAFETY: never reached the engine.
                unsafe {
                    bindings::make_bad_inode(p);
                    bindings::iput(p);
                }
                return Err(e);
            }
        }
    };
    // SAFETY: plain reads of the fields inode_init_owner just set.
    let (uid, gid) = unsafe { (bindings::ferrofs_i_uid_read(p), bindings::ferrofs_i_gid_read(p)) };
    let mode = u32::from(inode.mode());
    let mut new = engine::NewInode { mode, uid, gid, rdev, flags: 0, time: now(dirp) };
    let (ino, di) = match info.with_fs(|fs| {
        // FS_XFLAG_DAX of a directory is inherited by the files and
        // directories made in it (as on XFS and ext4).
        if matches!(mode & bindings::S_IFMT, bindings::S_IFREG | bindings::S_IFDIR)
            && fs.read_inode(dir.ino())?.flags & engine::IFLAG_DAX != 0
        {
            new.flags |= engine::IFLAG_DAX;
        }
        make(fs, &new)
    }) {
        Ok(v) => v,
        Err(e) => {
            // SAFETY: the inode never reached the engine: mark it bad so
            // eviction does not look for it there; drop the inherited ACLs.
            unsafe {
                for a in [dacl, acl] {
                    if !a.is_null() {
                        bindings::ferrofs_posix_acl_release(a);
                    }
                }
                bindings::make_bad_inode(p);
                bindings::iput(p);
            }
            return Err(e);
        }
    };
    // SAFETY: still private to us until insert_inode_locked hashes it.
    unsafe { (*p).i_ino = ino as _ };
    inode.fill_from(&di);
    set_ops(inode, rdev);
    // SAFETY: hashes the new inode (I_NEW) so iget finds it.
    if unsafe { bindings::insert_inode_locked(p) } < 0 {
        crate::vfs::fs_err!(dir.sb().id(), "inode {} already in cache: engine reused a live number\n", ino);
        // SAFETY: unpublish a broken inode.
        unsafe {
            bindings::make_bad_inode(p);
            bindings::unlock_new_inode(p);
            bindings::iput(p);
        }
        return Err(EIO);
    }
    if let Err(e) = crate::xattr::acl_init(inode, dacl, acl) {
        crate::vfs::fs_err!(dir.sb().id(), "inode {}: storing inherited ACLs failed: {:?}\n", ino, e);
    }
    Ok(p)
}

/// Creates an inode of `mode` named by `d` in `dir`, instantiates `d`.
fn make_node(
    idmap: *mut bindings::mnt_idmap,
    dirp: *mut bindings::inode,
    d: *mut bindings::dentry,
    mode: u16,
    rdev: u32,
    symlink: Option<&[u8]>,
) -> Result {
    // SAFETY: dir is live and exclusively locked by the VFS.
    let dir = unsafe { Inode::from_raw(dirp) };
    let name = dname(d);
    let dino = dir.ino();
    let p = new_vfs_inode(idmap, dirp, mode, rdev, |fs, new| match symlink {
        Some(target) => fs.symlink(dino, name, target, new),
        None => fs.create(dino, name, new),
    })?;
    let _ = refresh(dir);
    // SAFETY: d is the negative dentry of the create; consumes our reference
    // and unlocks the new inode.
    unsafe { bindings::d_instantiate_new(d, p) };
    Ok(())
}

unsafe extern "C" fn tmpfile(idmap: *mut bindings::mnt_idmap, dirp: *mut bindings::inode, file: *mut bindings::file, mode: u16) -> c_int {
    // SAFETY: dir is live for the call.
    let dino = unsafe { Inode::from_raw(dirp) }.ino();
    let p = match new_vfs_inode(idmap, dirp, mode, 0, |fs, new| fs.tmpfile(dino, new)) {
        Ok(p) => p,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: d_tmpfile expects nlink 1 and drops it to 0 (the engine inode
    // is already at 0 and on the orphan list); then publish and open.
    unsafe {
        bindings::set_nlink(p, 1);
        bindings::d_tmpfile(file, p);
        bindings::unlock_new_inode(p);
        bindings::ferrofs_finish_open_simple(file, 0)
    }
}

unsafe extern "C" fn create(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16, _excl: bool) -> c_int {
    to_c(make_node(idmap, dir, d, mode | bindings::S_IFREG as u16, 0, None))
}

unsafe extern "C" fn mkdir(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16) -> c_int {
    to_c(make_node(idmap, dir, d, mode | bindings::S_IFDIR as u16, 0, None))
}

unsafe extern "C" fn mknod(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, mode: u16, rdev: bindings::dev_t) -> c_int {
    // SAFETY: pure arithmetic.
    let enc = unsafe { bindings::ferrofs_encode_dev(rdev) };
    to_c(make_node(idmap, dir, d, mode, enc, None))
}

unsafe extern "C" fn symlink(idmap: *mut bindings::mnt_idmap, dir: *mut bindings::inode, d: *mut bindings::dentry, target: *const c_char) -> c_int {
    // SAFETY: the VFS passes a NUL-terminated kernel copy of the target.
    let t = unsafe { kernel::str::CStr::from_char_ptr(target) }.as_bytes();
    if t.len() >= bindings::FERROFS_PAGE_SIZE as usize {
        return crate::vfs::code::enametoolong().to_errno();
    }
    to_c(make_node(idmap, dir, d, (bindings::S_IFLNK | 0o777) as u16, 0, Some(t)))
}

unsafe extern "C" fn link(old: *mut bindings::dentry, dirp: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    // SAFETY: the VFS holds old's inode and locks dir.
    let (inode, dir) = unsafe { (Inode::from_raw(bindings::ferrofs_d_inode(old)), Inode::from_raw(dirp)) };
    let r = info_of(dir).and_then(|info| info.with_fs(|fs| fs.link(inode.ino(), dir.ino(), dname(d), now(dirp))));
    if let Err(e) = r {
        return e.to_errno();
    }
    let _ = refresh(inode);
    let _ = refresh(dir);
    // SAFETY: take a reference for the new dentry and instantiate it.
    unsafe {
        bindings::ihold(inode.as_ptr());
        bindings::d_instantiate(d, inode.as_ptr());
    }
    0
}

fn remove(dirp: *mut bindings::inode, d: *mut bindings::dentry, is_dir: bool) -> Result {
    // SAFETY: the VFS locks dir and the victim for the call.
    let (dir, victim) = unsafe { (Inode::from_raw(dirp), Inode::from_raw(bindings::ferrofs_d_inode(d))) };
    let info = info_of(dir)?;
    let t = now(dirp);
    info.with_fs(|fs| if is_dir { fs.rmdir(dir.ino(), dname(d), t) } else { fs.unlink(dir.ino(), dname(d), t) }.map(|_| ()))?;
    refresh(victim)?;
    refresh(dir)
}

unsafe extern "C" fn unlink(dir: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    to_c(remove(dir, d, false))
}

unsafe extern "C" fn rmdir(dir: *mut bindings::inode, d: *mut bindings::dentry) -> c_int {
    to_c(remove(dir, d, true))
}

unsafe extern "C" fn rename(
    _idmap: *mut bindings::mnt_idmap,
    odirp: *mut bindings::inode,
    od: *mut bindings::dentry,
    ndirp: *mut bindings::inode,
    nd: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    if flags & !(bindings::RENAME_NOREPLACE | bindings::RENAME_EXCHANGE) != 0 {
        return EINVAL.to_errno();
    }
    // SAFETY: the VFS locks both directories and both inodes (lock_rename +
    // lock_two_nondirectories) for the call.
    let (odir, ndir, moved) = unsafe {
        (Inode::from_raw(odirp), Inode::from_raw(ndirp), Inode::from_raw(bindings::ferrofs_d_inode(od)))
    };
    // SAFETY: as above; the target may be negative (NULL).
    let target = unsafe { bindings::ferrofs_d_inode(nd) };
    let rf = engine::RenameFlags {
        noreplace: flags & bindings::RENAME_NOREPLACE != 0,
        exchange: flags & bindings::RENAME_EXCHANGE != 0,
    };
    let r = info_of(odir).and_then(|info| {
        info.with_fs(|fs| fs.rename(odir.ino(), dname(od), ndir.ino(), dname(nd), rf, now(odirp)))
    });
    if let Err(e) = r {
        return e.to_errno();
    }
    let _ = refresh(moved);
    if !target.is_null() {
        // SAFETY: the target inode is referenced by its dentry and locked.
        let _ = refresh(unsafe { Inode::from_raw(target) });
    }
    let _ = refresh(odir);
    let _ = refresh(ndir);
    0
}

pub(crate) unsafe extern "C" fn getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    mask: u32,
    _flags: c_uint,
) -> c_int {
    // SAFETY: path->dentry is referenced for the call; its inode is positive.
    let p = unsafe { bindings::ferrofs_d_inode((*path).dentry) };
    // SAFETY: as above.
    let inode = unsafe { Inode::from_raw(p) };
    let btime = info_of(inode).and_then(|info| info.with_fs(|fs| fs.read_inode(inode.ino())));
    // SAFETY: fills stat from the live inode; stat is valid for the call.
    unsafe {
        bindings::generic_fillattr(idmap, mask, p, stat);
        if let Ok(di) = btime {
            (*stat).btime.tv_sec = di.btime.sec;
            (*stat).btime.tv_nsec = di.btime.nsec as _;
            (*stat).result_mask |= bindings::STATX_BTIME;
            // faults allocate blocks without passing through the VFS inode
            (*stat).blocks = di.blocks * 8;
            (*p).i_blocks = (di.blocks * 8) as _;
        }
        if bindings::ferrofs_is_dax(p) {
            (*stat).attributes |= bindings::STATX_ATTR_DAX as u64;
        }
        (*stat).attributes_mask |= bindings::STATX_ATTR_DAX as u64;
    }
    0
}

/// setattr for every inode type: ownership, mode, times; sizes for regular
/// files go through the data path (`file::set_size`).
pub(crate) unsafe extern "C" fn setattr(idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, attr: *mut bindings::iattr) -> c_int {
    // SAFETY: the VFS holds the inode lock for notify_change.
    let p = unsafe { bindings::ferrofs_d_inode(d) };
    // SAFETY: as above.
    let inode = unsafe { Inode::from_raw(p) };
    // SAFETY: validates the request against the inode (permissions, limits).
    let r = unsafe { bindings::setattr_prepare(idmap, d, attr) };
    if r != 0 {
        return r;
    }
    // SAFETY: attr is valid for the call.
    let valid = unsafe { (*attr).ia_valid };
    if valid & bindings::ATTR_SIZE != 0 {
        // SAFETY: attr is valid.
        let size = unsafe { (*attr).ia_size };
        // POSIX: a truncate that changes the size marks ctime and mtime for
        // update. ftruncate(2) asks for that (ATTR_MTIME|ATTR_CTIME);
        // truncate(2) does not, and leaves it to the filesystem (as XFS
        // does, take the current time for both unless the caller set them).
        if size != inode.size() && valid & (bindings::ATTR_MTIME | bindings::ATTR_CTIME) == 0 {
            // SAFETY: attr is valid and ours for the call; inode is live.
            unsafe {
                let now = bindings::current_time(p);
                (*attr).ia_mtime = now;
                (*attr).ia_ctime = now;
                (*attr).ia_valid |= bindings::ATTR_MTIME | bindings::ATTR_CTIME;
            }
        }
        if let Err(e) = crate::file::set_size(inode, size) {
            return e.to_errno();
        }
    }
    // SAFETY: applies uid/gid/mode/times to the VFS inode (we hold its lock).
    unsafe { bindings::setattr_copy(idmap, p, attr) };
    if let Err(e) = write_attrs(inode) {
        return e.to_errno();
    }
    if valid & bindings::ATTR_MODE != 0 {
        // SAFETY: rewrites the access ACL to match the new mode.
        return unsafe { bindings::posix_acl_chmod(idmap, d, inode.mode()) };
    }
    0
}

/// Writes the VFS inode's mode, owner and times to the engine.
pub(crate) fn write_attrs(inode: &Inode) -> Result {
    let info = info_of(inode)?;
    let p = inode.as_ptr();
    // SAFETY: reads of a live inode whose lock the caller holds.
    let (uid, gid) = unsafe { (bindings::ferrofs_i_uid_read(p), bindings::ferrofs_i_gid_read(p)) };
    let mode = u32::from(inode.mode());
    let (a, m, c) = (inode.time(0), inode.time(1), inode.time(2));
    info.with_fs(|fs| {
        let mut di = fs.read_inode(inode.ino())?;
        di.mode = mode;
        di.uid = uid;
        di.gid = gid;
        di.atime = a;
        di.mtime = m;
        di.ctime = c;
        fs.write_inode(inode.ino(), &di)
    })
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
    let r = info_of(inode).and_then(|info| info.with_fs(|fs| fs.read_link(inode.ino(), &mut buf[..])));
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

/// Collected directory entries, emitted after the engine lock is dropped.
struct Batch {
    buf: KVec<u8>,
}

unsafe extern "C" fn iterate_shared(file: *mut bindings::file, ctx: *mut bindings::dir_context) -> c_int {
    // SAFETY: file and ctx are valid for the call; the inode is referenced.
    let dir = unsafe { Inode::from_raw(bindings::ferrofs_file_inode(file)) };
    // SAFETY: emits "." and ".." at positions 0 and 1.
    if !unsafe { bindings::ferrofs_dir_emit_dots(file, ctx) } {
        return 0;
    }
    let Ok(info) = info_of(dir) else { return EIO.to_errno() };
    let mut batch = Batch { buf: KVec::new() };
    loop {
        // SAFETY: ctx is valid; pos is ours to read and advance.
        let pos = unsafe { (*ctx).pos } as u64;
        // SAFETY: u8 has no destructor; shrinking the length is always valid.
        unsafe { batch.buf.set_len(0) };
        let mut end = true;
        let r = info.with_fs(|fs| {
            fs.readdir(dir.ino(), pos, &mut |name, ino, ftype, next| {
                // record: ino u64, next u64, type u8, len u8, name
                if batch.buf.len() + 18 + name.len() > 16384 {
                    end = false;
                    return false;
                }
                let ok = batch.buf.extend_from_slice(&ino.to_le_bytes(), GFP_KERNEL).is_ok()
                    && batch.buf.extend_from_slice(&next.to_le_bytes(), GFP_KERNEL).is_ok()
                    && batch.buf.extend_from_slice(&[ftype, name.len() as u8], GFP_KERNEL).is_ok()
                    && batch.buf.extend_from_slice(name, GFP_KERNEL).is_ok();
                if !ok {
                    end = false;
                }
                ok
            })
        });
        if let Err(e) = r {
            return e.to_errno();
        }
        let mut off = 0;
        let b = &batch.buf[..];
        while off + 18 <= b.len() {
            let ino = u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]));
            let next = u64::from_le_bytes(b[off + 8..off + 16].try_into().unwrap_or([0; 8]));
            let (ft, len) = (b[off + 16], b[off + 17] as usize);
            let name = &b[off + 18..off + 18 + len];
            // SAFETY: ctx is valid; dir_emit copies the name to userspace.
            if !unsafe { bindings::ferrofs_dir_emit(ctx, name.as_ptr().cast(), len as c_int, ino, c_uint::from(ft)) } {
                return 0;
            }
            // SAFETY: advancing the position past the emitted entry.
            unsafe { (*ctx).pos = next as i64 };
            off += 18 + len;
        }
        if end {
            return 0;
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
    getattr: Some(getattr),
    setattr: Some(setattr),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    fileattr_get: Some(fileattr_get),
    fileattr_set: Some(fileattr_set),
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
    getattr: Some(getattr),
    setattr: Some(setattr),
    listxattr: Some(crate::xattr::listxattr),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

static SPECIAL_IOPS: bindings::inode_operations = bindings::inode_operations {
    getattr: Some(getattr),
    setattr: Some(setattr),
    listxattr: Some(crate::xattr::listxattr),
    get_inode_acl: Some(crate::xattr::get_inode_acl),
    set_acl: Some(crate::xattr::set_acl),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

/// `super_operations.write_inode`: lazily updated attributes (times) reach
/// the engine here (writeback, fsync, umount). Everything else is written
/// when it changes.
pub(crate) unsafe extern "C" fn write_inode(p: *mut bindings::inode, _wbc: *mut bindings::writeback_control) -> c_int {
    // SAFETY: writeback holds a reference on the inode for the call.
    let inode = unsafe { Inode::from_raw(p) };
    // SAFETY: reading the state of a live inode.
    if unsafe { bindings::is_bad_inode(p) } || inode.nlink() == 0 {
        return 0;
    }
    to_c(write_attrs(inode))
}

/// Inode flags ferrofs stores, as FS_*_FL (FS_IOC_GETFLAGS) bits.
const FL_MAP: [(u32, u32); 6] = [
    (engine::IFLAG_IMMUTABLE, bindings::FS_IMMUTABLE_FL),
    (engine::IFLAG_APPEND, bindings::FS_APPEND_FL),
    (engine::IFLAG_DAX, bindings::FS_DAX_FL),
    (engine::IFLAG_NOATIME, bindings::FS_NOATIME_FL),
    (engine::IFLAG_SYNC, bindings::FS_SYNC_FL),
    (engine::IFLAG_NODUMP, bindings::FS_NODUMP_FL),
];

pub(crate) unsafe extern "C" fn fileattr_get(d: *mut bindings::dentry, fa: *mut bindings::fileattr) -> c_int {
    // SAFETY: the VFS holds a reference to the dentry's inode.
    let inode = unsafe { Inode::from_raw(bindings::ferrofs_d_inode(d)) };
    let di = match info_of(inode).and_then(|i| i.with_fs(|fs| fs.read_inode(inode.ino()))) {
        Ok(di) => di,
        Err(e) => return e.to_errno(),
    };
    let fl = FL_MAP.iter().filter(|(e, _)| di.flags & e != 0).fold(0, |a, (_, f)| a | f);
    // SAFETY: fa is valid for the call; fills flags and the xflags mirror.
    unsafe { bindings::fileattr_fill_flags(fa, fl) };
    let xf = XFL_MAP.iter().filter(|(e, _)| di.flags & e != 0).fold(0, |a, (_, f)| a | f);
    let bs = engine::BLOCK_SIZE as u32;
    // SAFETY: as above; the extent size hints are reported in bytes.
    unsafe {
        (*fa).fsx_xflags |= xf;
        (*fa).fsx_extsize = di.extsize.saturating_mul(bs);
        (*fa).fsx_cowextsize = di.cowextsize.saturating_mul(bs);
    }
    0
}

/// Extent size hint flags, as FS_XFLAG_* (FS_IOC_FSGETXATTR) bits.
const XFL_MAP: [(u32, u32); 3] = [
    (engine::IFLAG_EXTSIZE, bindings::FS_XFLAG_EXTSIZE),
    (engine::IFLAG_EXTSZINHERIT, bindings::FS_XFLAG_EXTSZINHERIT),
    (engine::IFLAG_COWEXTSIZE, bindings::FS_XFLAG_COWEXTSIZE),
];

pub(crate) unsafe extern "C" fn fileattr_set(_idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, fa: *mut bindings::fileattr) -> c_int {
    // SAFETY: the VFS holds the inode lock for FS_IOC_SETFLAGS/FSSETXATTR.
    let inode = unsafe { Inode::from_raw(bindings::ferrofs_d_inode(d)) };
    // SAFETY: fa is valid for the call.
    // (vfs_fileattr_set keeps flags and xflags in step before calling us)
    let fl = unsafe { (*fa).flags };
    let known = FL_MAP.iter().fold(0, |a, (_, f)| a | f);
    if fl & !known != 0 {
        return crate::vfs::code::eopnotsupp().to_errno();
    }
    let eflags = FL_MAP.iter().filter(|(_, f)| fl & f != 0).fold(0, |a, (e, _)| a | e);
    // Extent size hints: the VFS has checked the flags against the file
    // type, cleared a flag whose value is 0 and, for FS_IOC_SETFLAGS,
    // filled in the current hints; the engine applies XFS's other rules
    // (EINVAL: over 2^21 blocks or half the filesystem, or a regular file
    // with blocks mapped changing its hint). Values are bytes here and
    // blocks on media, so they must be a multiple of the block size.
    // SAFETY: fa is valid for the call.
    let (xf, ext, cow) = unsafe { ((*fa).fsx_xflags, (*fa).fsx_extsize, (*fa).fsx_cowextsize) };
    let bs = engine::BLOCK_SIZE as u32;
    if ext % bs != 0 || cow % bs != 0 {
        return EINVAL.to_errno();
    }
    let hflags = XFL_MAP.iter().filter(|(_, f)| xf & f != 0).fold(0, |a, (e, _)| a | e);
    let t = now(inode.as_ptr());
    let r = info_of(inode).and_then(|info| {
        info.with_fs(|fs| {
            let di = fs.read_inode(inode.ino())?;
            let fl_mask = FL_MAP.iter().fold(engine::IFLAG_HINTS, |a, (e, _)| a | e);
            let keep = di.flags & !fl_mask;
            fs.set_flags_hints(inode.ino(), keep | eflags | hflags, ext / bs, cow / bs, t)
        })
    });
    if let Err(e) = r {
        return e.to_errno();
    }
    to_c(refresh(inode))
}
