// SPDX-License-Identifier: GPL-2.0
//! Thin typed wrappers over the VFS objects ferrofs touches: the bottom
//! layer of the glue, which knows nothing of the engine's transactions or
//! the mount's state.
//!
//! Each C object gets one `#[repr(transparent)]` wrapper over `Opaque<T>`;
//! a wrapper reference may only be made from a pointer the VFS handed us for
//! the duration of a callback, or one we hold a reference on (see each
//! `from_raw`). Trampolines (`unsafe extern "C" fn`) convert their raw
//! arguments once and call safe functions that take only wrappers; the
//! pointer-to-reference conversions and the reaching into C structures live
//! here. Inodes are reference counted (`ARef<Inode>`), new inodes are
//! typestates (`NewInode`, `UnhashedInode`), and the locks are RAII guards
//! whose types the helpers needing them take as parameters.

mod acl;
mod dentry;
mod inode;
mod io;
mod mapcache;
mod rwsem;
mod security;

pub(crate) use dentry::{obtain_alias, Dentry, File, FileAttr, IAttr, Idmap, NamedDentry};
pub(crate) use inode::{
    alloc_inode, create_inode_cache, destroy_inode_cache, free_inode, Attrs, Cached, Inode, InvalidateGuard, Locked,
    IoLocked, NewInode, Ops, ReadLocked, RemapLocked, UnhashedInode,
};
pub(crate) use acl::{Acl, Inherited, PosixAcl};
pub(crate) use mapcache::{MapCache, Run};
pub(crate) use rwsem::RwSem;
pub(crate) use io::{DirContext, FiemapInfo, IoMap, IoMapKind, IomapOps, IovIter, Kiocb, Kstat, VmFault};

use crate::bindings;
use crate::engine;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::{ARef, Opaque};

/// Maps an engine error to the kernel error with the same errno.
pub(crate) fn to_kerr(e: engine::Error) -> Error {
    Error::from_errno(-(e.errno()))
}

/// Returns the errno of `r` as the C int a VFS callback returns.
pub(crate) fn to_c(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `ERR_PTR()`.
pub(crate) fn err_ptr<T>(e: Error) -> *mut T {
    e.to_errno() as isize as *mut T
}

/// Whether the current task has a fatal signal pending: SIGKILL, or a
/// signal whose default action ends the process (an xfs_io interrupted by
/// ^C). Long operations look between their bounded steps and stop there,
/// returning what they finished, as XFS's remap loop does (generic/297, 298).
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: reads the current task's own signal state, which is always
    // valid in process context; there is no precondition.
    unsafe { bindings::ferrofs_fatal_signal_pending() }
}

/// A scheduling point between the steps of a long operation. Sleeping with
/// a spinlock held is a bug the kernel reports (might_sleep), not a memory
/// unsafety; callers hold only sleeping locks.
pub(crate) fn cond_resched() {
    // SAFETY: cond_resched has no memory-safety precondition.
    unsafe { bindings::ferrofs_cond_resched() };
}

/// A constant C operation table (file_operations, xattr_handler, ...) in a
/// `static`: such tables hold raw pointers (owner, names), which makes them
/// !Sync in Rust although nothing ever writes them.
#[repr(transparent)]
pub(crate) struct Table<T>(pub(crate) T);
// SAFETY: only ever used for immutable statics of C tables whose pointers
// point to other statics (or are NULL); sharing them is what C does.
unsafe impl<T> Sync for Table<T> {}

/// A mounted (or mounting) ferrofs super_block.
#[repr(transparent)]
pub(crate) struct SuperBlock(Opaque<bindings::super_block>);

impl SuperBlock {
    /// # Safety
    /// `ptr` must be a live super_block for the whole lifetime `'a` (true for
    /// the duration of any VFS callback that received it).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is a transparent wrapper; the caller vouches for liveness.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// The device name (`s_id`), for log lines.
    pub(crate) fn id(&self) -> &str {
        // SAFETY: s_id is a NUL-padded char array set by the VFS before fill_super.
        let raw = unsafe { &(*self.as_ptr()).s_id };
        // SAFETY: c_char is u8 in the kernel (-funsigned-char); same size and alignment.
        let bytes: &[u8] = unsafe { core::slice::from_raw_parts(raw.as_ptr().cast(), raw.len()) };
        let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        core::str::from_utf8(&bytes[..n]).unwrap_or("?")
    }

    /// `s_fs_info` (NULL before fill_super installs the mount's state).
    pub(crate) fn fs_info(&self) -> *mut core::ffi::c_void {
        // SAFETY: a plain read of a live super_block; the mount layer
        // (crate::mount) says what the pointer is and how long it lives.
        unsafe { (*self.as_ptr()).s_fs_info }
    }

    /// The block device the filesystem is on.
    pub(crate) fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: s_bdev is set before fill_super and stays for the mount.
        unsafe { (*self.as_ptr()).s_bdev }
    }

    /// `s_fs_info` = `p`.
    ///
    /// # Safety
    /// The caller owns the super_block's fields (fill_super, put_super) and
    /// every reader of `s_fs_info` is excluded or sees a valid value (the
    /// mount layer's rules, `crate::mount`).
    pub(crate) unsafe fn set_fs_info(&self, p: *mut core::ffi::c_void) {
        // SAFETY: per the function's contract.
        unsafe { (*self.as_ptr()).s_fs_info = p };
    }

    /// Unmaps every mapping of every inode (`drop_pagecache_sb`-like walk),
    /// for a shutdown by memory failure or device removal.
    pub(crate) fn unmap_all(&self, pre_remove: bool) {
        // SAFETY: a live super_block; the shim takes the inode list lock
        // and references as drop_pagecache_sb does.
        unsafe { bindings::ferrofs_unmap_all(self.as_ptr(), pre_remove) };
    }

    /// Raises FS_ERROR with `errno` for `inode`, or for the filesystem.
    pub(crate) fn report_error(&self, inode: Option<&Inode>, errno: u32) {
        let ip = inode.map_or(core::ptr::null_mut(), |i| i.as_ptr());
        // SAFETY: a live super_block; the inode is NULL or referenced.
        unsafe { bindings::ferrofs_fsnotify_sb_error(self.as_ptr(), ip, errno as c_int) };
    }

    /// `freeze_super` held by the kernel, then `thaw_super` when the guard
    /// drops (FS_IOC_SHUTDOWN's default mode).
    pub(crate) fn freeze(&self) -> Result<FreezeGuard<'_>> {
        // SAFETY: the caller's open file keeps the super_block active, as
        // freeze_super requires; it takes s_umount itself.
        let r = unsafe { bindings::freeze_super(self.as_ptr(), bindings::freeze_holder_FREEZE_HOLDER_KERNEL) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(FreezeGuard(self))
    }

    /// `d_make_root` of `root` installed as `s_root` (fill_super).
    pub(crate) fn make_root(&self, root: ARef<Inode>) -> Result {
        // SAFETY: consumes the reference (and drops it on failure).
        let d = unsafe { bindings::d_make_root(ARef::into_raw(root).as_ptr().cast()) };
        if d.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: fill_super owns the new super_block's fields.
        unsafe { (*self.as_ptr()).s_root = d };
        Ok(())
    }

    /// `s_maxbytes`.
    pub(crate) fn max_bytes(&self) -> i64 {
        // SAFETY: set in fill_super, read-only after.
        unsafe { (*self.as_ptr()).s_maxbytes }
    }

    /// Freeze protection for a write fault (`sb_start_pagefault`), released
    /// when the guard drops.
    pub(crate) fn start_pagefault(&self) -> PagefaultGuard<'_> {
        // SAFETY: a live super_block; paired in the guard's drop.
        unsafe { bindings::ferrofs_sb_start_pagefault(self.as_ptr()) };
        PagefaultGuard(self)
    }

    /// Freeze protection for a write the filesystem makes on its own
    /// (`sb_start_intwrite`: freeing an unlinked inode at eviction), which
    /// a freeze waits for and then holds off until the thaw; released when
    /// the guard drops.
    pub(crate) fn start_intwrite(&self) -> IntwriteGuard<'_> {
        // SAFETY: a live super_block; paired in the guard's drop.
        unsafe { bindings::ferrofs_sb_start_intwrite(self.as_ptr()) };
        IntwriteGuard(self)
    }

    pub(crate) fn is_read_only(&self) -> bool {
        // SAFETY: reading s_flags of a live super_block.
        unsafe { (*self.as_ptr()).s_flags as usize & bindings::FERROFS_SB_RDONLY as usize != 0 }
    }
}

/// A super_block being set up by fill_super: new, locked, and ours alone,
/// so its fields may be written.
#[repr(transparent)]
pub(crate) struct NewSuperBlock(SuperBlock);

/// What fill_super sets in a new super_block.
pub(crate) struct SbParams {
    pub(crate) magic: u64,
    pub(crate) ops: &'static bindings::super_operations,
    pub(crate) export_ops: &'static bindings::export_operations,
    pub(crate) xattr: &'static [*const bindings::xattr_handler],
    pub(crate) max_bytes: i64,
    pub(crate) posix_acl: bool,
    /// The filesystem's uuid (mkfs's), published as `s_uuid`: what
    /// FS_IOC_GETFSUUID returns, and what overlayfs and IMA key on.
    pub(crate) uuid: [u8; 16],
}

impl NewSuperBlock {
    /// # Safety
    /// `ptr` is the new, locked super_block of the fill_super call being
    /// served (the VFS shows it to nobody else until fill_super returns).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// `sb_set_blocksize`; false if the device cannot do it.
    pub(crate) fn set_blocksize(&self, size: u32) -> bool {
        // SAFETY: the super_block is new and ours (type invariant).
        unsafe { bindings::sb_set_blocksize(self.as_ptr(), size as c_int) != 0 }
    }

    /// Sets the operations and limits (times: any 64-bit second, 1 ns).
    pub(crate) fn set_params(&self, p: &SbParams) {
        // `s_xattr` is a NULL-terminated array the VFS walks.
        assert!(p.xattr.last().is_some_and(|h| h.is_null()));
        let s = self.as_ptr();
        // SAFETY: the super_block is new and ours (type invariant); the
        // tables are statics.
        unsafe {
            (*s).s_magic = p.magic as _;
            (*s).s_op = p.ops;
            (*s).s_export_op = p.export_ops;
            (*s).s_maxbytes = p.max_bytes;
            (*s).s_time_gran = 1;
            (*s).s_xattr = p.xattr.as_ptr();
            if p.posix_acl {
                (*s).s_flags |= bindings::FERROFS_SB_POSIXACL as usize;
            }
            (*s).s_time_min = i64::MIN;
            (*s).s_time_max = i64::MAX;
            // super_set_uuid, which is static inline
            (*s).s_uuid.b = p.uuid;
            (*s).s_uuid_len = p.uuid.len() as u8;
        }
    }
}

impl core::ops::Deref for NewSuperBlock {
    type Target = SuperBlock;
    fn deref(&self) -> &SuperBlock {
        &self.0
    }
}

/// A kernel-held freeze, thawed on drop.
pub(crate) struct FreezeGuard<'a>(&'a SuperBlock);

impl Drop for FreezeGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with the successful freeze_super in freeze().
        unsafe { bindings::thaw_super(self.0.as_ptr(), bindings::freeze_holder_FREEZE_HOLDER_KERNEL) };
    }
}

/// Freeze protection of a write fault.
pub(crate) struct PagefaultGuard<'a>(&'a SuperBlock);

impl Drop for PagefaultGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in start_pagefault.
        unsafe { bindings::ferrofs_sb_end_pagefault(self.0.as_ptr()) };
    }
}

pub(crate) struct IntwriteGuard<'a>(&'a SuperBlock);

impl Drop for IntwriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in start_intwrite.
        unsafe { bindings::ferrofs_sb_end_intwrite(self.0.as_ptr()) };
    }
}

/// Errors the 6.12 `kernel::error::code` module lacks, from the bindings.
pub(crate) mod code {
    use kernel::error::Error;
    fn e(n: u32) -> Error {
        Error::from_errno(-(n as i32))
    }
    pub(crate) fn eopnotsupp() -> Error {
        e(crate::bindings::EOPNOTSUPP)
    }
    pub(crate) fn enametoolong() -> Error {
        e(crate::bindings::ENAMETOOLONG)
    }
    pub(crate) fn euclean() -> Error {
        e(crate::bindings::EUCLEAN)
    }
    pub(crate) fn edquot() -> Error {
        e(crate::bindings::EDQUOT)
    }
}

/// Logs `"ferrofs (<dev>): <message>"` at `$level`, the XFS-style prefix
/// that names the device (plain `pr_*!` would print `ferrofs: `).
macro_rules! fs_log {
    ($level:ident, $dev:expr, $($arg:tt)+) => {{
        let dev: &str = $dev;
        let mut name = [0u8; 48];
        let prefix = b"ferrofs (";
        let n = dev.len().min(name.len() - prefix.len() - 2);
        name[..prefix.len()].copy_from_slice(prefix);
        name[prefix.len()..prefix.len() + n].copy_from_slice(&dev.as_bytes()[..n]);
        name[prefix.len() + n] = b')';
        // SAFETY: a kernel format string of ours and a NUL-terminated name
        // (the buffer is zeroed past the closing parenthesis).
        #[allow(unused_unsafe)]
        unsafe {
            kernel::print::call_printk(
                &kernel::print::format_strings::$level,
                &name[..prefix.len() + n + 2],
                format_args!($($arg)+),
            )
        }
    }};
}
pub(crate) use fs_log;
macro_rules! fs_err { ($dev:expr, $($arg:tt)+) => { $crate::vfs::fs_log!(ERR, $dev, $($arg)+) } }
macro_rules! fs_info { ($dev:expr, $($arg:tt)+) => { $crate::vfs::fs_log!(INFO, $dev, $($arg)+) } }
pub(crate) use {fs_err, fs_info};
