// SPDX-License-Identifier: GPL-2.0
//! Extended attributes (user., trusted., security.) and POSIX ACLs.
//!
//! Every attribute lives in the engine's xattr btree under a namespace index
//! (`NS_*`, part of the on-disk format); ACLs are stored in the uapi xattr
//! encoding (`posix_acl_to_xattr`), under their own namespace indices.

use crate::bindings;
use crate::engine::{
    XattrMode, XATTR_NAMESPACES as PREFIXES, XATTR_NS_ACL_ACCESS as NS_ACL_ACCESS,
    XATTR_NS_ACL_DEFAULT as NS_ACL_DEFAULT, XATTR_NS_SECURITY as NS_SECURITY, XATTR_NS_TRUSTED as NS_TRUSTED,
    XATTR_NS_USER as NS_USER,
};
use crate::mount::{info_of, Op};
use crate::vfs::{to_c, Acl, Dentry, Idmap, Inherited, Inode, Locked, NewInode, PosixAcl, Table};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;

/// # Safety
/// `p` is a NUL-terminated string that lives for `'a`.
unsafe fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: per the function's contract.
    unsafe { kernel::str::CStr::from_char_ptr(p) }.as_bytes()
}

/// Reads an attribute; an empty `buf` asks for the length.
fn get(inode: &Inode, ns: u8, name: &[u8], buf: &mut [u8]) -> Result<usize> {
    info_of(inode)?.with_fs(Op::Xattr, |fs| fs.xattr_get(inode.ino(), ns, name, buf))
}

/// Sets (`Some`) or removes (`None`) an attribute.
fn set(inode: &Inode, ns: u8, name: &[u8], value: Option<&[u8]>, flags: c_int) -> Result {
    let mode = if flags as u32 & bindings::XATTR_CREATE != 0 {
        XattrMode::Create
    } else if flags as u32 & bindings::XATTR_REPLACE != 0 {
        XattrMode::Replace
    } else {
        XattrMode::Any
    };
    let ino = inode.ino();
    info_of(inode)?.with_fs_mut(Op::Xattr, |fs| match value {
        Some(v) => fs.xattr_set(ino, ns, name, v, mode),
        None => fs.xattr_remove(ino, ns, name),
    })
}

unsafe extern "C" fn handler_get(
    h: *const bindings::xattr_handler,
    _d: *mut bindings::dentry,
    ip: *mut bindings::inode,
    name: *const c_char,
    buffer: *mut c_void,
    size: usize,
) -> c_int {
    // SAFETY: the VFS holds a reference on the inode; h is one of ours.
    let (inode, ns) = unsafe { (Inode::from_raw(ip), (*h).flags as u8) };
    let buf: &mut [u8] = if buffer.is_null() || size == 0 {
        &mut []
    } else {
        // SAFETY: the VFS gives a kernel buffer of `size` bytes.
        unsafe { core::slice::from_raw_parts_mut(buffer.cast(), size) }
    };
    // SAFETY: the VFS passes the attribute name NUL-terminated.
    let name = unsafe { cbytes(name) };
    match get(inode, ns, name, buf) {
        Ok(n) => n as c_int,
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn handler_set(
    h: *const bindings::xattr_handler,
    _idmap: *mut bindings::mnt_idmap,
    _d: *mut bindings::dentry,
    ip: *mut bindings::inode,
    name: *const c_char,
    value: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    // SAFETY: the VFS holds a reference on the inode and its i_rwsem
    // (vfs_setxattr / vfs_removexattr); h is one of ours.
    let (inode, ns) = unsafe { (Inode::from_raw(ip).assume_locked(), (*h).flags as u8) };
    let v = if value.is_null() {
        None
    } else {
        // SAFETY: the VFS copied the value into a kernel buffer of `size`.
        Some(unsafe { core::slice::from_raw_parts(value.cast::<u8>(), size) })
    };
    // SAFETY: the VFS passes the attribute name NUL-terminated.
    let name = unsafe { cbytes(name) };
    let r = set(&inode, ns, name, v, flags);
    if r.is_ok() {
        inode.set_time(2, inode.now());
        let _ = crate::inode::write_attrs(&inode);
    }
    to_c(r)
}

unsafe extern "C" fn trusted_list(_d: *mut bindings::dentry) -> bool {
    // SAFETY: a capability check of the current task.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

const fn handler(
    prefix: &'static core::ffi::CStr,
    ns: u8,
    list: Option<unsafe extern "C" fn(*mut bindings::dentry) -> bool>,
) -> Table<bindings::xattr_handler> {
    Table(bindings::xattr_handler {
        name: core::ptr::null(),
        prefix: prefix.as_ptr().cast(),
        flags: ns as c_int,
        list,
        get: Some(handler_get),
        set: Some(handler_set),
    })
}

static USER: Table<bindings::xattr_handler> = handler(c"user.", NS_USER, None);
static TRUSTED: Table<bindings::xattr_handler> = handler(c"trusted.", NS_TRUSTED, Some(trusted_list));
static SECURITY: Table<bindings::xattr_handler> = handler(c"security.", NS_SECURITY, None);

/// `sb->s_xattr`: NULL-terminated. ACLs go through get_inode_acl/set_acl.
pub(crate) static HANDLERS: Table<[*const bindings::xattr_handler; 4]> =
    Table([&USER.0, &TRUSTED.0, &SECURITY.0, core::ptr::null()]);

/// `inode_operations.listxattr`: every name we store, with its prefix.
pub(crate) unsafe extern "C" fn listxattr(d: *mut bindings::dentry, list: *mut c_char, size: usize) -> isize {
    // SAFETY: the VFS holds the dentry for the call.
    let Ok(inode) = (unsafe { Dentry::from_raw(d) }).positive() else { return ENOENT.to_errno() as isize };
    // SAFETY: as trusted_list.
    let admin = unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) };
    let out: &mut [u8] = if list.is_null() || size == 0 {
        &mut []
    } else {
        // SAFETY: the VFS gives a kernel buffer of `size` bytes.
        unsafe { core::slice::from_raw_parts_mut(list.cast(), size) }
    };
    let mut need = 0usize;
    let mut too_small = false;
    let r = info_of(inode).and_then(|info| {
        info.with_fs(Op::Xattr, |fs| {
            fs.xattr_list(inode.ino(), &mut |ns, name, _len| {
                let Some(&(_, prefix)) = PREFIXES.iter().find(|(n, _)| *n == ns) else { return };
                if ns == NS_TRUSTED && !admin {
                    return;
                }
                let acl = ns == NS_ACL_ACCESS || ns == NS_ACL_DEFAULT;
                let n = prefix.len() + if acl { 0 } else { name.len() } + 1;
                if !out.is_empty() {
                    if need + n > out.len() {
                        too_small = true;
                    } else {
                        out[need..need + prefix.len()].copy_from_slice(prefix);
                        if !acl {
                            out[need + prefix.len()..need + n - 1].copy_from_slice(name);
                        }
                        out[need + n - 1] = 0;
                    }
                }
                need += n;
            })
        })
    });
    match r {
        Err(e) => e.to_errno() as isize,
        Ok(()) if too_small => ERANGE.to_errno() as isize,
        Ok(()) => need as isize,
    }
}

/// ACL records carry a fixed name inside their namespace.
const ACL_NAME: &[u8] = b"acl";

fn acl_ns(ty: c_int) -> u8 {
    if ty as u32 == bindings::ACL_TYPE_DEFAULT { NS_ACL_DEFAULT } else { NS_ACL_ACCESS }
}

/// `inode_operations.get_inode_acl`.
pub(crate) unsafe extern "C" fn get_inode_acl(ip: *mut bindings::inode, ty: c_int, rcu: bool) -> *mut bindings::posix_acl {
    if rcu {
        return crate::vfs::err_ptr(ECHILD);
    }
    // SAFETY: the VFS holds a reference on the inode.
    let inode = unsafe { Inode::from_raw(ip) };
    let ns = acl_ns(ty);
    let len = match get(inode, ns, ACL_NAME, &mut []) {
        Ok(n) => n,
        Err(e) if e.to_errno() == -(bindings::ENODATA as c_int) => return core::ptr::null_mut(),
        Err(e) => return crate::vfs::err_ptr(e),
    };
    let mut buf = match KVec::from_elem(0u8, len, GFP_KERNEL) {
        Ok(b) => b,
        Err(_) => return crate::vfs::err_ptr(ENOMEM),
    };
    let n = match get(inode, ns, ACL_NAME, &mut buf[..]) {
        Ok(n) => n,
        Err(e) => return crate::vfs::err_ptr(e),
    };
    match Acl::from_xattr(&buf[..n]) {
        Ok(Some(a)) => a.into_raw(),
        Ok(None) => core::ptr::null_mut(),
        Err(e) => crate::vfs::err_ptr(e),
    }
}

/// Stores (or removes, for None) an ACL of `ty` on the inode.
fn store_acl(inode: &Inode, ty: c_int, acl: Option<&PosixAcl>) -> Result {
    let ns = acl_ns(ty);
    match acl {
        Some(a) => set(inode, ns, ACL_NAME, Some(&a.to_xattr()?), 0),
        None => match set(inode, ns, ACL_NAME, None, 0) {
            Err(e) if e.to_errno() == -(bindings::ENODATA as c_int) => Ok(()),
            r => r,
        },
    }
}

/// `inode_operations.set_acl`.
pub(crate) unsafe extern "C" fn set_acl(idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, acl: *mut bindings::posix_acl, ty: c_int) -> c_int {
    // SAFETY: the VFS holds the dentry for the call.
    let Ok(inode) = (unsafe { Dentry::from_raw(d) }).positive() else { return ENOENT.to_errno() };
    // SAFETY: vfs_set_acl holds the inode's i_rwsem for the call.
    let inode = unsafe { inode.assume_locked() };
    // SAFETY: the VFS holds the ACL (or passes NULL) and the idmap for the call.
    let (acl, idmap) = unsafe { (PosixAcl::from_raw(acl), Idmap::from_raw(idmap)) };
    to_c(set_acl_locked(&inode, idmap, acl, ty))
}

fn set_acl_locked(inode: &Locked<'_>, idmap: &Idmap, acl: Option<&PosixAcl>, ty: c_int) -> Result {
    let acl = match acl {
        Some(a) if ty as u32 == bindings::ACL_TYPE_ACCESS => {
            // folds an equivalent ACL into the mode bits (acl then None)
            let (mode, acl) = inode.acl_update_mode(idmap, a)?;
            // The ACL and the mode it implies go to the media in one
            // transaction (an ACL that does not fit must not leave its mode
            // behind); the VFS inode changes only once both are stored.
            let buf = acl.map(|a| a.to_xattr()).transpose()?;
            let ctime = inode.now();
            info_of(inode)?.with_fs_mut(Op::Xattr, |fs| {
                fs.xattr_set_with_mode(inode.ino(), NS_ACL_ACCESS, ACL_NAME, buf.as_deref(), u32::from(mode), ctime)
            })?;
            inode.set_mode(mode);
            inode.set_time(2, ctime);
            acl
        }
        acl => {
            store_acl(inode, ty, acl)?;
            acl
        }
    };
    inode.set_cached_acl(ty, acl);
    Ok(())
}

/// Stores an LSM's initial attribute `security.<suffix>` on a new inode
/// (the store of [`NewInode::init_security`]); like a setxattr, one
/// transaction, durable when it returns.
pub(crate) fn security_init(inode: &Inode, suffix: &[u8], value: &[u8]) -> Result {
    set(inode, NS_SECURITY, suffix, Some(value), 0)
}

/// Stores and caches the ACLs a new inode inherited (then releases them).
pub(crate) fn acl_init(inode: &NewInode, acls: Inherited) -> Result {
    let inode = inode.inode();
    for (ty, a) in [(bindings::ACL_TYPE_DEFAULT, acls.default), (bindings::ACL_TYPE_ACCESS, acls.access)] {
        if let Some(a) = a {
            store_acl(inode, ty as c_int, Some(&a))?;
            inode.set_cached_acl(ty as c_int, Some(&a));
        }
    }
    Ok(())
}
