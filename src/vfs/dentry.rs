// SPDX-License-Identifier: GPL-2.0
//! Dentries and open files.

use super::inode::{Inode, NewInode};
use crate::bindings;
use kernel::prelude::*;
use kernel::types::{ARef, Opaque};

/// A dentry the VFS holds for the callback that received it. Its inode,
/// when it has one, is pinned by it.
#[repr(transparent)]
pub(crate) struct Dentry(Opaque<bindings::dentry>);

impl Dentry {
    /// # Safety
    /// The VFS holds a reference on `ptr` for `'a` (true for the dentry of
    /// any callback), and its inode, if positive, does not change during
    /// `'a` other than through this wrapper's own `instantiate*` calls.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::dentry {
        self.0.get()
    }

    /// The inode, if the dentry is positive (all ferrofs dentries name
    /// ferrofs inodes: a dentry belongs to one super_block).
    pub(crate) fn inode(&self) -> Option<&Inode> {
        // SAFETY: the dentry is live; d_inode is stable (type invariant).
        let p = unsafe { bindings::ferrofs_d_inode(self.as_ptr()) };
        // SAFETY: a positive dentry holds a reference on its inode for as
        // long as we hold the dentry.
        (!p.is_null()).then(|| unsafe { Inode::from_raw(p) })
    }

    /// The inode of a dentry the VFS guarantees positive (setattr, getattr,
    /// fileattr, the victim of unlink/rmdir, the source of link/rename).
    pub(crate) fn positive(&self) -> Result<&Inode> {
        self.inode().ok_or(ENOENT)
    }

    /// `d_instantiate`: the dentry takes over our reference.
    pub(crate) fn instantiate(&self, inode: ARef<Inode>) {
        let p = ARef::into_raw(inode);
        // SAFETY: a negative dentry of a create we are serving; the
        // reference moves into it.
        unsafe { bindings::d_instantiate(self.as_ptr(), p.as_ptr().cast()) };
    }

    /// `d_instantiate_new`: takes the reference and publishes the inode.
    pub(crate) fn instantiate_new(&self, inode: NewInode) {
        // SAFETY: as above; it also unlocks the new inode (I_NEW).
        unsafe { bindings::d_instantiate_new(self.as_ptr(), inode.into_raw()) };
    }

    /// `d_splice_alias` for a lookup: returns what `->lookup` returns.
    pub(crate) fn splice_alias(&self, inode: Option<ARef<Inode>>) -> *mut bindings::dentry {
        let p = inode.map_or(core::ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast());
        // SAFETY: the dentry of the lookup we serve; consumes the reference.
        unsafe { bindings::d_splice_alias(p, self.as_ptr()) }
    }
}

/// A dentry whose name is stable while we hold it: the callback's caller
/// holds the parent directory's `i_rwsem` (lookup shared; create, link,
/// unlink, rmdir and both sides of rename exclusive), which is what
/// `d_move` needs to change a name.
#[repr(transparent)]
pub(crate) struct NamedDentry(Dentry);

impl NamedDentry {
    /// # Safety
    /// As [`Dentry::from_raw`], and the parent's `i_rwsem` is held for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The name (bytes, no NUL).
    pub(crate) fn name(&self) -> &[u8] {
        // SAFETY: d_name cannot change while the parent is locked (type
        // invariant); its bytes live as long as the name does.
        unsafe {
            let q = &(*self.0.as_ptr()).d_name;
            core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize)
        }
    }

    /// The name as the VFS keeps it, for C helpers that take a `qstr`; valid
    /// as long as `self` (the same invariant as [`name`](Self::name)).
    pub(super) fn qstr(&self) -> *const bindings::qstr {
        // SAFETY: the dentry is live (type invariant); this only takes the
        // field's address.
        unsafe { core::ptr::addr_of!((*self.0.as_ptr()).d_name) }
    }
}

impl core::ops::Deref for NamedDentry {
    type Target = Dentry;
    fn deref(&self) -> &Dentry {
        &self.0
    }
}

/// `d_obtain_alias`: a dentry for a file-handle lookup; consumes the
/// reference (also on error) and returns what exportfs expects.
pub(crate) fn obtain_alias(inode: ARef<Inode>) -> *mut bindings::dentry {
    // SAFETY: the reference moves into d_obtain_alias.
    unsafe { bindings::d_obtain_alias(ARef::into_raw(inode).as_ptr().cast()) }
}

/// An open file (the VFS holds it for the callback that received it).
#[repr(transparent)]
pub(crate) struct File(Opaque<bindings::file>);

impl File {
    /// # Safety
    /// `ptr` is an open ferrofs file the VFS holds for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::file) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// The file's inode (an open file pins it).
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: an open file of ours pins its ferrofs inode.
        unsafe { Inode::from_raw(bindings::ferrofs_file_inode(self.as_ptr())) }
    }

    /// Whether the file was opened for writing (`FMODE_WRITE`).
    pub(crate) fn is_writable(&self) -> bool {
        // SAFETY: reads f_mode of a live file.
        unsafe { bindings::ferrofs_file_writable(self.as_ptr()) }
    }

    /// `mnt_want_write_file`: EROFS on a read-only mount, and freeze
    /// protection until the guard drops (`mnt_drop_write_file`). For ioctls
    /// that change a file; the VFS takes it itself for write, fallocate and
    /// setattr.
    pub(crate) fn want_write(&self) -> Result<WriteAccess<'_>> {
        // SAFETY: a live file; on success the guard pairs the drop.
        let r = unsafe { bindings::mnt_want_write_file(self.as_ptr()) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(WriteAccess(self))
    }

    /// `file_accessed` (atime).
    pub(crate) fn accessed(&self) {
        // SAFETY: a live file.
        unsafe { bindings::ferrofs_file_accessed(self.as_ptr()) };
    }

    /// Finishes an O_TMPFILE open on the new, unlinked inode: `d_tmpfile`
    /// takes our reference, then the inode is published and the file opened.
    pub(crate) fn open_tmpfile(&self, inode: NewInode) -> Result {
        let p = inode.into_raw();
        // SAFETY: the file is the one vfs_tmpfile is opening; d_tmpfile
        // expects nlink 1 and drops it to 0 (the engine inode is already at
        // 0 and on the orphan list), takes the reference; we held I_NEW.
        let r = unsafe {
            bindings::set_nlink(p, 1);
            bindings::d_tmpfile(self.as_ptr(), p);
            bindings::unlock_new_inode(p);
            bindings::ferrofs_finish_open_simple(self.as_ptr(), 0)
        };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }
}

/// Write access to a file's mount, from `File::want_write`.
pub(crate) struct WriteAccess<'a>(&'a File);

impl Drop for WriteAccess<'_> {
    fn drop(&mut self) {
        // SAFETY: pairs the successful mnt_want_write_file of `want_write`.
        unsafe { bindings::mnt_drop_write_file(self.0.as_ptr()) };
    }
}

/// The idmap of the mount an operation came through (`mnt_idmap`).
#[repr(transparent)]
pub(crate) struct Idmap(Opaque<bindings::mnt_idmap>);

impl Idmap {
    /// # Safety
    /// `p` is the idmap the VFS passed to the callback being served (valid
    /// for the call).
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::mnt_idmap) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::mnt_idmap {
        self.0.get()
    }
}

/// The attribute changes of a setattr (`iattr`).
#[repr(transparent)]
pub(crate) struct IAttr(Opaque<bindings::iattr>);

impl IAttr {
    /// # Safety
    /// `p` is the iattr of the setattr being served, ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::iattr) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::iattr {
        self.0.get()
    }

    pub(crate) fn valid(&self) -> u32 {
        // SAFETY: a plain field of the iattr we own for the call.
        unsafe { (*self.0.get()).ia_valid }
    }

    pub(crate) fn size(&self) -> i64 {
        // SAFETY: as for valid.
        unsafe { (*self.0.get()).ia_size }
    }

    /// Sets both mtime and ctime to `now` and marks them valid.
    pub(crate) fn set_mtime_ctime(&self, inode: &Inode) {
        let a = self.0.get();
        // SAFETY: the iattr is ours for the call; current_time reads the
        // clock granularity of a live inode.
        unsafe {
            let now = bindings::current_time(inode.as_ptr());
            (*a).ia_mtime = now;
            (*a).ia_ctime = now;
            (*a).ia_valid |= bindings::ATTR_MTIME | bindings::ATTR_CTIME;
        }
    }

    /// `setattr_prepare`: permission and limit checks of the change.
    pub(crate) fn prepare(&self, idmap: &Idmap, d: &Dentry) -> Result {
        // SAFETY: all three are the live objects of the setattr being
        // served, the inode locked by notify_change.
        let r = unsafe { bindings::setattr_prepare(idmap.as_ptr(), d.as_ptr(), self.0.get()) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }

    /// `setattr_copy`: applies owner, mode and times to the VFS inode.
    pub(crate) fn copy_to(&self, idmap: &Idmap, inode: &super::Locked<'_>) {
        // SAFETY: the inode is locked (the parameter); idmap and iattr are
        // the live objects of the setattr being served.
        unsafe { bindings::setattr_copy(idmap.as_ptr(), inode.as_ptr(), self.0.get()) };
    }
}

/// The attributes of FS_IOC_GETFLAGS/SETFLAGS and FS_IOC_FSGETXATTR/
/// FSSETXATTR (`fileattr`).
#[repr(transparent)]
pub(crate) struct FileAttr(Opaque<bindings::fileattr>);

impl FileAttr {
    /// # Safety
    /// `p` is the fileattr of the fileattr_get/set call being served.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::fileattr) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    /// FS_*_FL flags (vfs_fileattr_set keeps them in step with the xflags).
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: a plain field of the request.
        unsafe { (*self.0.get()).flags }
    }

    /// FS_XFLAG_* flags.
    pub(crate) fn xflags(&self) -> u32 {
        // SAFETY: as for flags.
        unsafe { (*self.0.get()).fsx_xflags }
    }

    /// The extent size and CoW extent size hints (bytes).
    pub(crate) fn hints(&self) -> (u32, u32) {
        // SAFETY: as for flags.
        unsafe { ((*self.0.get()).fsx_extsize, (*self.0.get()).fsx_cowextsize) }
    }

    /// The project ID (FS_IOC_SETFLAGS: the current one, filled in by
    /// vfs_fileattr_set).
    pub(crate) fn projid(&self) -> u32 {
        // SAFETY: as for flags.
        unsafe { (*self.0.get()).fsx_projid }
    }

    /// Fills the answer of a get: FS_*_FL flags (and their xflags mirror),
    /// extra xflags, the hints in bytes and the project ID.
    pub(crate) fn fill(&self, flags: u32, xflags: u32, extsize: u32, cowextsize: u32, projid: u32) {
        let f = self.0.get();
        // SAFETY: the fileattr is ours to fill for the call.
        unsafe {
            bindings::fileattr_fill_flags(f, flags);
            (*f).fsx_xflags |= xflags;
            (*f).fsx_extsize = extsize;
            (*f).fsx_cowextsize = cowextsize;
            (*f).fsx_projid = projid;
        }
    }
}
