// SPDX-License-Identifier: GPL-2.0
//! POSIX ACLs: a borrowed view (`PosixAcl`, what the VFS passes to
//! `set_acl`) and an owned reference (`Acl`, released on drop).

use super::dentry::{Dentry, Idmap};
use super::inode::{Inode, Locked, UnhashedInode};
use crate::bindings;
use core::ptr::NonNull;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::Opaque;

/// An ACL someone else holds a reference on for as long as we borrow it.
#[repr(transparent)]
pub(crate) struct PosixAcl(Opaque<bindings::posix_acl>);

impl PosixAcl {
    /// # Safety
    /// `p` is NULL or an ACL the caller holds (a reference) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::posix_acl) -> Option<&'a Self> {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { p.cast::<Self>().as_ref() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::posix_acl {
        self.0.get()
    }

    /// The uapi xattr encoding (what `system.posix_acl_*` reads return).
    pub(crate) fn to_xattr(&self) -> Result<KVec<u8>> {
        // SAFETY: a live ACL; a_count is immutable once it is shared.
        let count = unsafe { (*self.as_ptr()).a_count } as c_int;
        // SAFETY: pure arithmetic.
        let size = unsafe { bindings::ferrofs_posix_acl_xattr_size(count) };
        let mut buf = KVec::from_elem(0u8, size, GFP_KERNEL)?;
        // SAFETY: buf has the size posix_acl_xattr_size computed for this
        // ACL; the encoding is in the initial user namespace (on-media form).
        let n = unsafe { bindings::posix_acl_to_xattr(&raw mut bindings::init_user_ns, self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        if n as usize != buf.len() {
            // the helper writes exactly posix_acl_xattr_size(a_count) bytes
            return Err(EINVAL);
        }
        Ok(buf)
    }
}

/// An ACL we hold one reference on.
pub(crate) struct Acl(NonNull<bindings::posix_acl>);

impl Acl {
    /// # Safety
    /// `p` is NULL or an ACL whose reference the caller hands over.
    unsafe fn from_owned(p: *mut bindings::posix_acl) -> Option<Self> {
        NonNull::new(p).map(Acl)
    }

    /// Decodes the uapi xattr encoding into a new ACL (`posix_acl_from_xattr`).
    pub(crate) fn from_xattr(value: &[u8]) -> Result<Option<Acl>> {
        // SAFETY: value is a valid buffer of its length; the result is a new
        // ACL (our reference), NULL for an empty one, or an ERR_PTR.
        let p = unsafe { bindings::posix_acl_from_xattr(&raw mut bindings::init_user_ns, value.as_ptr().cast(), value.len()) };
        if (p as usize) >= (-4095isize) as usize {
            return Err(Error::from_errno(p as isize as c_int));
        }
        // SAFETY: a new ACL (or NULL): the reference is ours.
        Ok(unsafe { Acl::from_owned(p) })
    }

    /// Hands our reference to the caller of `get_inode_acl`.
    pub(crate) fn into_raw(self) -> *mut bindings::posix_acl {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl core::ops::Deref for Acl {
    type Target = PosixAcl;
    fn deref(&self) -> &PosixAcl {
        // SAFETY: we hold a reference for as long as self lives.
        unsafe { &*self.0.as_ptr().cast::<PosixAcl>() }
    }
}

impl Drop for Acl {
    fn drop(&mut self) {
        // SAFETY: drops the reference we hold.
        unsafe { bindings::ferrofs_posix_acl_release(self.0.as_ptr()) };
    }
}

/// The ACLs a new inode inherits from its directory: (default, access).
pub(crate) struct Inherited {
    pub(crate) default: Option<Acl>,
    pub(crate) access: Option<Acl>,
}

impl UnhashedInode {
    /// `posix_acl_create`: adjusts the new inode's mode to the directory's
    /// default ACL (or the umask) and returns the ACLs to store on it.
    pub(crate) fn acl_create(&mut self, dir: &Locked<'_>) -> Result<Inherited> {
        let mut mode = self.inode().mode();
        let (mut dacl, mut acl) = (core::ptr::null_mut(), core::ptr::null_mut());
        // SAFETY: dir is locked; outputs are valid pointers; on success both
        // are NULL or new references that become ours.
        let r = unsafe { bindings::posix_acl_create(dir.as_ptr(), &mut mode, &mut dacl, &mut acl) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        self.set_mode(mode);
        // SAFETY: as above.
        Ok(unsafe { Inherited { default: Acl::from_owned(dacl), access: Acl::from_owned(acl) } })
    }
}

impl Inode {
    /// Caches `acl` (or its absence) as the inode's ACL of type `ty`
    /// (`set_cached_acl` takes its own reference).
    pub(crate) fn set_cached_acl(&self, ty: c_int, acl: Option<&PosixAcl>) {
        let p = acl.map_or(core::ptr::null_mut(), |a| a.as_ptr());
        // SAFETY: a live inode; the ACL is live or NULL.
        unsafe { bindings::set_cached_acl(self.as_ptr(), ty, p) };
    }
}

impl Locked<'_> {
    /// `posix_acl_update_mode`: the mode an access ACL implies, and whether
    /// the ACL is still needed (None: the mode says it all).
    pub(crate) fn acl_update_mode<'b>(&self, idmap: &Idmap, acl: &'b PosixAcl) -> Result<(u16, Option<&'b PosixAcl>)> {
        let mut mode = self.mode();
        let mut p = acl.as_ptr();
        // SAFETY: the inode is locked; idmap is the caller's (the VFS's);
        // the helper may only set p to NULL.
        let r = unsafe { bindings::posix_acl_update_mode(idmap.as_ptr(), self.as_ptr(), &mut mode, &mut p) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok((mode, if p.is_null() { None } else { Some(acl) }))
    }
}

impl Dentry {
    /// `posix_acl_chmod`: rewrites the access ACL to match a new mode.
    pub(crate) fn acl_chmod(&self, idmap: &Idmap, inode: &Locked<'_>, mode: u16) -> Result {
        debug_assert!(self.inode().is_some_and(|i| i.as_ptr() == inode.as_ptr()));
        // SAFETY: the dentry and idmap are live and the dentry's inode is
        // locked (the parameter: setattr's `Locked` of this dentry's inode).
        let r = unsafe { bindings::posix_acl_chmod(idmap.as_ptr(), self.as_ptr(), mode) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }
}
