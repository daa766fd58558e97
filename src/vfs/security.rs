// SPDX-License-Identifier: GPL-2.0
//! LSM labels of new inodes: `security_inode_init_security`.
//!
//! A filesystem with xattrs must store the `security.*` attributes that the
//! active LSMs (SELinux, Smack, EVM) give an inode when it is created, or
//! the label is lost: the LSM keeps it in memory for this boot only, and
//! after a remount the file reads as unlabelled. ext4, XFS and btrfs call
//! this for every inode they create, whiteouts included.

use super::dentry::NamedDentry;
use super::inode::{Inode, NewInode};
use crate::bindings;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// Stores one attribute: the inode, the name's suffix after `security.`
/// (e.g. `selinux`), the value.
pub(crate) type StoreXattr<'a> = &'a mut dyn FnMut(&Inode, &[u8], &[u8]) -> Result;

impl NewInode {
    /// Asks the LSMs for this new inode's initial security attributes as a
    /// child of `dir` named `name` (`None` for an O_TMPFILE inode, which
    /// has no name yet) and hands each to `store`. With no labelling LSM
    /// active (or none willing: SELinux before its policy is loaded) it
    /// stores nothing. It fails when an LSM does (ENOMEM) or `store` does.
    pub(crate) fn init_security(&self, dir: &Inode, name: Option<&NamedDentry>, mut store: StoreXattr<'_>) -> Result {
        let q = name.map_or(core::ptr::null(), NamedDentry::qstr);
        let data = core::ptr::addr_of_mut!(store).cast::<c_void>();
        // SAFETY: both inodes are live (we hold references; the new one is
        // I_NEW, so the LSM hooks see it before anyone else). `q` is NULL
        // or the name of a dentry the caller holds with its parent locked.
        // `data` points to `store`, which outlives the call: the callback
        // runs synchronously inside it, at most once, and nobody keeps the
        // pointer (security/security.c).
        let r = unsafe { bindings::ferrofs_init_security(self.inode().as_ptr(), dir.as_ptr(), q, Some(initxattrs), data) };
        if r < 0 {
            Err(Error::from_errno(r))
        } else {
            Ok(())
        }
    }
}

unsafe extern "C" fn initxattrs(inode: *mut bindings::inode, xattrs: *const bindings::xattr, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `&mut StoreXattr` that init_security passed,
    // alive and not otherwise borrowed while security_inode_init_security
    // runs, and this is called from inside it.
    let store = unsafe { &mut *data.cast::<StoreXattr<'_>>() };
    // SAFETY: the new inode init_security passed, which we hold.
    let inode = unsafe { Inode::from_raw(inode) };
    let mut x = xattrs;
    loop {
        // SAFETY: security_inode_init_security allocates one entry more
        // than the LSMs can fill, zeroed (kcalloc): the array ends with an
        // entry whose name is NULL, and we stop there.
        let e = unsafe { &*x };
        if e.name.is_null() {
            return 0;
        }
        // SAFETY: an LSM's attribute name is a NUL-terminated static
        // string (XATTR_SELINUX_SUFFIX and the like).
        let name = unsafe { kernel::str::CStr::from_char_ptr(e.name) }.as_bytes();
        let value: &[u8] = if e.value.is_null() {
            &[]
        } else {
            // SAFETY: the LSM allocated value_len bytes at value, freed
            // only after this callback returns.
            unsafe { core::slice::from_raw_parts(e.value.cast::<u8>(), e.value_len) }
        };
        if let Err(err) = store(inode, name, value) {
            return err.to_errno();
        }
        // SAFETY: this entry was not the terminator, so the next one is
        // still inside the array.
        x = unsafe { x.add(1) };
    }
}
