// SPDX-License-Identifier: GPL-2.0
//! Thin typed wrappers over the VFS objects ferrofs touches.
//!
//! Each C object gets one `#[repr(transparent)]` wrapper over `Opaque<T>`;
//! a `&SuperBlock` or `&Inode` may only be made from a pointer the VFS handed
//! us for the duration of a callback (see each `from_raw`). Everything that
//! needs `unsafe` to reach into the C structure lives here.

use crate::bindings;
use crate::engine;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::Opaque;

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

    /// Our per-mount state, once fill_super installed it.
    pub(crate) fn info(&self) -> Option<&crate::super_ops::FsInfo> {
        // SAFETY: s_fs_info is either NULL or the pinned FsInfo installed by
        // fill_super, freed only in put_super after all inodes are gone.
        unsafe { (*self.as_ptr()).s_fs_info.cast::<crate::super_ops::FsInfo>().as_ref() }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        // SAFETY: reading s_flags of a live super_block.
        unsafe { (*self.as_ptr()).s_flags as usize & bindings::FERROFS_SB_RDONLY as usize != 0 }
    }
}

/// A VFS inode of a ferrofs super_block.
#[repr(transparent)]
pub(crate) struct Inode(Opaque<bindings::inode>);

impl Inode {
    /// # Safety
    /// `ptr` must be a live inode (the VFS holds a reference) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for liveness.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::inode {
        self.0.get()
    }

    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: i_ino is immutable once the inode is hashed.
        unsafe { (*self.as_ptr()).i_ino as u64 }
    }

    pub(crate) fn sb(&self) -> &SuperBlock {
        // SAFETY: an inode pins its super_block.
        unsafe { SuperBlock::from_raw((*self.as_ptr()).i_sb) }
    }

    pub(crate) fn mode(&self) -> u16 {
        // SAFETY: reading i_mode of a live inode.
        unsafe { (*self.as_ptr()).i_mode }
    }

    pub(crate) fn size(&self) -> i64 {
        // SAFETY: i_size_read handles the seqcount on 32-bit; the inode is live.
        unsafe { bindings::ferrofs_i_size_read(self.as_ptr()) }
    }

    pub(crate) fn nlink(&self) -> u32 {
        // SAFETY: reading the i_nlink union member of a live inode.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.i_nlink }
    }

    /// Copies an engine inode into the VFS inode (attributes, not ops).
    pub(crate) fn fill_from(&self, di: &engine::Inode) {
        self.fill(di, false)
    }

    /// Like `fill_from` for a live inode whose times may be newer in the
    /// VFS than in the engine (atime/mtime are written back lazily, in
    /// write_inode): each timestamp becomes the later of the two.
    pub(crate) fn refresh_from(&self, di: &engine::Inode) {
        self.fill(di, true)
    }

    fn fill(&self, di: &engine::Inode, keep_newer_times: bool) {
        let later = |which: c_int, t: engine::Time| {
            let cur = self.time(which);
            if keep_newer_times && (cur.sec, cur.nsec) > (t.sec, t.nsec) { cur } else { t }
        };
        let (at, mt, ct) = (later(0, di.atime), later(1, di.mtime), later(2, di.ctime));
        let p = self.as_ptr();
        // SAFETY: the caller has the inode locked or new (I_NEW); these are
        // plain field stores and helpers designed for exactly this.
        unsafe {
            (*p).i_mode = di.mode as u16;
            bindings::ferrofs_i_uid_write(p, di.uid);
            bindings::ferrofs_i_gid_write(p, di.gid);
            bindings::set_nlink(p, di.nlink);
            bindings::ferrofs_i_size_write(p, di.size as i64);
            (*p).i_blocks = (di.blocks * 8) as _;
            (*p).i_generation = di.generation as u32;
            bindings::ferrofs_inode_set_time(p, 0, at.sec, at.nsec);
            bindings::ferrofs_inode_set_time(p, 1, mt.sec, mt.nsec);
            bindings::ferrofs_inode_set_time(p, 2, ct.sec, ct.nsec);
            let mut fl = 0;
            if di.flags & engine::IFLAG_IMMUTABLE != 0 {
                fl |= bindings::S_IMMUTABLE;
            }
            if di.flags & engine::IFLAG_APPEND != 0 {
                fl |= bindings::S_APPEND;
            }
            if di.flags & engine::IFLAG_NOATIME != 0 {
                fl |= bindings::S_NOATIME;
            }
            if di.flags & engine::IFLAG_SYNC != 0 {
                fl |= bindings::S_SYNC;
            }
            let mask = bindings::S_IMMUTABLE | bindings::S_APPEND | bindings::S_NOATIME | bindings::S_SYNC;
            bindings::inode_set_flags(p, fl, mask);
        }
    }

    /// The current time at this filesystem's granularity.
    pub(crate) fn now(&self) -> engine::Time {
        // SAFETY: the inode is live; current_time only reads the sb granularity.
        let ts = unsafe { bindings::current_time(self.as_ptr()) };
        engine::Time { sec: ts.tv_sec, nsec: ts.tv_nsec as u32 }
    }

    /// Reads a timestamp (0 atime, 1 mtime, 2 ctime).
    pub(crate) fn time(&self, which: c_int) -> engine::Time {
        let (mut sec, mut nsec) = (0i64, 0u32);
        // SAFETY: the inode is live; the shim only reads.
        unsafe { bindings::ferrofs_inode_get_time(self.as_ptr(), which, &mut sec, &mut nsec) };
        engine::Time { sec, nsec }
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
