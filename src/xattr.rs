// SPDX-License-Identifier: GPL-2.0
//! Extended attributes (user., trusted., security.) and POSIX ACLs.
//!
//! Every attribute lives in the engine's xattr btree under a namespace index
//! (`NS_*`, part of the on-disk format); ACLs are stored in the uapi xattr
//! encoding (`posix_acl_to_xattr`), under their own namespace indices.

use crate::bindings;
use crate::engine::XattrMode;
use crate::super_ops::info_of;
use crate::vfs::{to_c, Inode, Table};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;

/// On-disk namespace indices of the xattr btree.
pub(crate) const NS_USER: u8 = 1;
pub(crate) const NS_TRUSTED: u8 = 2;
pub(crate) const NS_SECURITY: u8 = 3;
pub(crate) const NS_ACL_ACCESS: u8 = 4;
pub(crate) const NS_ACL_DEFAULT: u8 = 5;

const PREFIXES: [(u8, &[u8]); 5] = [
    (NS_USER, b"user."),
    (NS_TRUSTED, b"trusted."),
    (NS_SECURITY, b"security."),
    (NS_ACL_ACCESS, b"system.posix_acl_access"),
    (NS_ACL_DEFAULT, b"system.posix_acl_default"),
];

fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: the VFS passes NUL-terminated names.
    unsafe { kernel::str::CStr::from_char_ptr(p) }.as_bytes()
}

/// Reads an attribute; an empty `buf` asks for the length.
fn get(inode: &Inode, ns: u8, name: &[u8], buf: &mut [u8]) -> Result<usize> {
    info_of(inode)?.with_fs(|fs| fs.xattr_get(inode.ino(), ns, name, buf))
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
    info_of(inode)?.with_fs(|fs| match value {
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
    match get(inode, ns, cbytes(name), buf) {
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
    // SAFETY: the VFS holds the inode lock and a reference; h is ours.
    let (inode, ns) = unsafe { (Inode::from_raw(ip), (*h).flags as u8) };
    let v = if value.is_null() {
        None
    } else {
        // SAFETY: the VFS copied the value into a kernel buffer of `size`.
        Some(unsafe { core::slice::from_raw_parts(value.cast::<u8>(), size) })
    };
    let r = set(inode, ns, cbytes(name), v, flags);
    if r.is_ok() {
        // SAFETY: ctime update of a locked inode; written back lazily.
        unsafe { bindings::inode_set_ctime_current(ip) };
        let _ = crate::namei::write_attrs(inode);
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
    // SAFETY: the dentry is referenced for the call and positive.
    let inode = unsafe { Inode::from_raw(bindings::ferrofs_d_inode(d)) };
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
        info.with_fs(|fs| {
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
    // SAFETY: converts the stored uapi encoding into a new posix_acl (or ERR_PTR).
    unsafe { bindings::posix_acl_from_xattr(&raw mut bindings::init_user_ns, buf.as_ptr().cast(), n) }
}

/// The uapi xattr encoding of `acl` and its length (NULL: none).
fn encode_acl(acl: *mut bindings::posix_acl) -> Result<Option<(KVec<u8>, usize)>> {
    if acl.is_null() {
        return Ok(None);
    }
    // SAFETY: acl is a valid posix_acl; a_count is its entry count.
    let size = unsafe { bindings::ferrofs_posix_acl_xattr_size((*acl).a_count as c_int) };
    let mut buf = KVec::from_elem(0u8, size as usize, GFP_KERNEL)?;
    // SAFETY: buf has the size posix_acl_xattr_size computed for this acl.
    let n = unsafe { bindings::posix_acl_to_xattr(&raw mut bindings::init_user_ns, acl, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(Error::from_errno(n));
    }
    Ok(Some((buf, n as usize)))
}

/// Stores (or removes, for NULL) an ACL of `ty` on the inode.
fn store_acl(inode: &Inode, ty: c_int, acl: *mut bindings::posix_acl) -> Result {
    let ns = acl_ns(ty);
    match encode_acl(acl)? {
        Some((buf, n)) => set(inode, ns, ACL_NAME, Some(&buf[..n]), 0),
        None => match set(inode, ns, ACL_NAME, None, 0) {
            Err(e) if e.to_errno() == -(bindings::ENODATA as c_int) => Ok(()),
            r => r,
        },
    }
}

/// `inode_operations.set_acl`.
pub(crate) unsafe extern "C" fn set_acl(idmap: *mut bindings::mnt_idmap, d: *mut bindings::dentry, acl: *mut bindings::posix_acl, ty: c_int) -> c_int {
    // SAFETY: the VFS holds the inode lock for the call.
    let ip = unsafe { bindings::ferrofs_d_inode(d) };
    // SAFETY: as above.
    let inode = unsafe { Inode::from_raw(ip) };
    let mut acl = acl;
    if ty as u32 != bindings::ACL_TYPE_ACCESS || acl.is_null() {
        if let Err(e) = store_acl(inode, ty, acl) {
            return e.to_errno();
        }
    } else {
        let mut mode = inode.mode();
        // SAFETY: folds an equivalent ACL into the mode bits (may set acl NULL).
        let r = unsafe { bindings::posix_acl_update_mode(idmap, ip, &mut mode, &mut acl) };
        if r != 0 {
            return r;
        }
        // The ACL and the mode it implies go to the media in one transaction
        // (an ACL that does not fit must not leave its mode behind); the VFS
        // inode changes only once both are stored.
        let r = encode_acl(acl).and_then(|buf| {
            let info = info_of(inode)?;
            let ctime = inode.now();
            info.with_fs(|fs| fs.xattr_set_with_mode(inode.ino(), NS_ACL_ACCESS, ACL_NAME, buf.as_ref().map(|(b, n)| &b[..*n]), u32::from(mode), ctime))?;
            Ok(ctime)
        });
        match r {
            // SAFETY: the inode is locked; the media already holds these values.
            Ok(t) => unsafe {
                (*ip).i_mode = mode;
                bindings::ferrofs_inode_set_time(ip, 2, t.sec, t.nsec);
            },
            Err(e) => return e.to_errno(),
        }
    }
    // SAFETY: caches the ACL on the inode (takes its own reference).
    unsafe { bindings::set_cached_acl(ip, ty, acl) };
    0
}

/// ACL inheritance for a new inode: adjusts `mode` and returns the
/// (default, access) ACLs to store once the inode exists.
pub(crate) fn acl_create(dir: *mut bindings::inode, mode: &mut u16) -> Result<(*mut bindings::posix_acl, *mut bindings::posix_acl)> {
    let (mut dacl, mut acl) = (core::ptr::null_mut(), core::ptr::null_mut());
    // SAFETY: dir is locked by the VFS; outputs are valid pointers.
    let r = unsafe { bindings::posix_acl_create(dir, mode, &mut dacl, &mut acl) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok((dacl, acl))
}

/// Stores and caches inherited ACLs on a new inode, releasing them.
pub(crate) fn acl_init(inode: &Inode, dacl: *mut bindings::posix_acl, acl: *mut bindings::posix_acl) -> Result {
    let mut r = Ok(());
    for (ty, a) in [(bindings::ACL_TYPE_DEFAULT, dacl), (bindings::ACL_TYPE_ACCESS, acl)] {
        if a.is_null() {
            continue;
        }
        if r.is_ok() {
            r = store_acl(inode, ty as c_int, a);
        }
        // SAFETY: cache then drop our reference from posix_acl_create.
        unsafe {
            if r.is_ok() {
                bindings::set_cached_acl(inode.as_ptr(), ty as c_int, a);
            }
            bindings::ferrofs_posix_acl_release(a);
        }
    }
    r
}
