// SPDX-License-Identifier: GPL-2.0
//! The data path's C objects: `kiocb`, `iov_iter`, `vm_fault`, `iomap`, and
//! the fsdax/iomap entry points over them. The lock a VFS helper requires is
//! a parameter of its wrapper (`&Locked`, `&SharedGuard`), so a call without
//! it does not compile.

use super::dentry::File;
use super::inode::{Inode, InvalidateGuard, Locked, SharedGuard};
use crate::bindings;
use kernel::ffi::{c_int, c_uint};
use kernel::prelude::*;
use kernel::types::Opaque;

/// The iomap operations of a filesystem (a static table).
pub(crate) type IomapOps = bindings::iomap_ops;

/// Converts a C return (negative errno, else a value) into a Result.
pub(super) fn check(r: c_int) -> Result<c_int> {
    if r < 0 { Err(Error::from_errno(r)) } else { Ok(r) }
}

/// An I/O control block (`read_iter`/`write_iter`).
#[repr(transparent)]
pub(crate) struct Kiocb(Opaque<bindings::kiocb>);

impl Kiocb {
    /// # Safety
    /// `ptr` is the kiocb of the read_iter/write_iter call being served, on
    /// a ferrofs file, valid and used only by us for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::kiocb) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::kiocb {
        self.0.get()
    }

    pub(crate) fn file(&self) -> &File {
        // SAFETY: the kiocb's file is held open for the I/O.
        unsafe { File::from_raw((*self.as_ptr()).ki_filp) }
    }

    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: a plain field of the kiocb we own for the call.
        unsafe { (*self.as_ptr()).ki_pos }
    }

    /// `generic_write_checks`: the count to write (0: nothing), limits applied.
    pub(crate) fn write_checks(&self, iter: &IovIter, _l: &Locked<'_>) -> Result<isize> {
        // SAFETY: i_rwsem held (the parameter); both objects are ours for the call.
        let n = unsafe { bindings::generic_write_checks(self.as_ptr(), iter.as_ptr()) };
        if n < 0 { Err(Error::from_errno(n as c_int)) } else { Ok(n) }
    }

    /// `kiocb_modified`: strips suid/sgid and updates times for a write.
    pub(crate) fn modified(&self, _l: &Locked<'_>) -> Result {
        // SAFETY: i_rwsem held (the parameter).
        check(unsafe { bindings::kiocb_modified(self.as_ptr()) }).map(|_| ())
    }

    /// `generic_write_sync` after a write of `n` bytes (O_SYNC, O_DSYNC).
    pub(crate) fn write_sync(&self, n: isize) -> isize {
        // SAFETY: the kiocb of a completed write, i_rwsem already released.
        unsafe { bindings::ferrofs_generic_write_sync(self.as_ptr(), n) }
    }

    /// `dax_iomap_rw` for a read (shared `i_rwsem`).
    pub(crate) fn dax_read(&self, iter: &IovIter, ops: &'static IomapOps, _g: &SharedGuard<'_>) -> isize {
        // SAFETY: the lock dax_iomap_rw needs is held (the parameter).
        unsafe { bindings::dax_iomap_rw(self.as_ptr(), iter.as_ptr(), ops) }
    }

    /// `dax_iomap_rw` for a write (exclusive `i_rwsem`).
    pub(crate) fn dax_write(&self, iter: &IovIter, ops: &'static IomapOps, _l: &Locked<'_>) -> isize {
        // SAFETY: as for dax_read.
        unsafe { bindings::dax_iomap_rw(self.as_ptr(), iter.as_ptr(), ops) }
    }
}

/// The user (or kernel) buffer of a read or write.
#[repr(transparent)]
pub(crate) struct IovIter(Opaque<bindings::iov_iter>);

impl IovIter {
    /// # Safety
    /// `ptr` is the iterator of the call being served, ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::iov_iter) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::iov_iter {
        self.0.get()
    }
}

/// A page fault on a ferrofs mapping.
#[repr(transparent)]
pub(crate) struct VmFault(Opaque<bindings::vm_fault>);

impl VmFault {
    /// # Safety
    /// `ptr` is the fault being served on a ferrofs vma (whose file pins
    /// the inode), valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::vm_fault) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::vm_fault {
        self.0.get()
    }

    pub(crate) fn file(&self) -> &File {
        // SAFETY: the vma of a fault on our mapping holds its file open.
        unsafe { File::from_raw((*(*self.as_ptr()).__bindgen_anon_1.vma).vm_file) }
    }

    pub(crate) fn inode(&self) -> &Inode {
        self.file().inode()
    }

    /// A write fault on a shared mapping (the one that dirties the file).
    pub(crate) fn is_shared_write(&self) -> bool {
        // SAFETY: reads flags of the fault and its vma.
        unsafe { bindings::ferrofs_vmf_write_shared(self.as_ptr()) }
    }

    /// `dax_iomap_fault` of `order` (0: PTE; PMD order: a 2 MiB entry),
    /// then `dax_finish_sync_fault` for MAP_SYNC. The invalidate lock is
    /// held shared (the parameter), as fsdax requires against truncate.
    pub(crate) fn dax_fault(
        &self,
        order: c_uint,
        ops: &'static IomapOps,
        _g: &InvalidateGuard<'_>,
    ) -> (bindings::vm_fault_t, bindings::pfn_t) {
        // SAFETY: an all-zero pfn_t is valid; dax_iomap_fault fills it.
        let mut pfn: bindings::pfn_t = unsafe { core::mem::zeroed() };
        // SAFETY: the fault is ours to serve; lock held per the parameter.
        let r = unsafe { bindings::dax_iomap_fault(self.as_ptr(), order, &mut pfn, core::ptr::null_mut(), ops) };
        (r, pfn)
    }

    /// `dax_finish_sync_fault` (after the invalidate lock is released).
    pub(crate) fn finish_sync(&self, order: c_uint, pfn: bindings::pfn_t) -> bindings::vm_fault_t {
        // SAFETY: completes a fault dax_iomap_fault asked to be synced.
        unsafe { bindings::dax_finish_sync_fault(self.as_ptr(), order, pfn) }
    }
}

/// A FIEMAP request (`fiemap_extent_info`) with its user buffer.
#[repr(transparent)]
pub(crate) struct FiemapInfo(Opaque<bindings::fiemap_extent_info>);

impl FiemapInfo {
    /// # Safety
    /// `p` is the request the VFS passed to `->fiemap`, valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::fiemap_extent_info) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    /// The flags userspace asked for (FIEMAP_FLAG_*).
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: a plain field of the request.
        unsafe { (*self.0.get()).fi_flags }
    }

    /// `fiemap_prep`: refuses flags outside `supported` and clamps `len`.
    pub(crate) fn prep(&self, inode: &Inode, start: u64, len: &mut u64, supported: u32) -> Result {
        // SAFETY: the request and the inode it is about are live.
        check(unsafe { bindings::fiemap_prep(inode.as_ptr(), self.0.get(), start, len, supported) }).map(|_| ())
    }

    /// `fiemap_fill_next_extent`: copies one extent to userspace; true when
    /// the user's array is full (or this was the LAST one).
    pub(crate) fn fill_next(&self, logical: u64, phys: u64, len: u64, flags: u32) -> Result<bool> {
        // SAFETY: the request is live; the helper copies to its user array.
        check(unsafe { bindings::fiemap_fill_next_extent(self.0.get(), logical, phys, len, flags) }).map(|r| r == 1)
    }
}

/// The mapping `iomap_begin` returns (`iomap`), filled through setters.
#[repr(transparent)]
pub(crate) struct IoMap(Opaque<bindings::iomap>);

/// What an extent is to iomap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoMapKind {
    Hole,
    Unwritten,
    Mapped,
}

impl IoMap {
    /// # Safety
    /// `ptr` is an iomap that `iomap_begin`'s caller handed us to fill.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::iomap) -> &'a mut Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &mut *ptr.cast::<Self>() }
    }

    /// Fills the mapping of bytes [offset, offset+length): a hole, or
    /// `addr` (a byte offset on the dax device) with `flags` (IOMAP_F_*).
    pub(crate) fn set(
        &mut self,
        kind: IoMapKind,
        offset: i64,
        length: u64,
        addr: u64,
        flags: u16,
        bdev: *mut bindings::block_device,
        dax_dev: *mut bindings::dax_device,
    ) {
        let m = self.0.get();
        // SAFETY: the iomap is ours to fill (type invariant); plain stores.
        unsafe {
            (*m).offset = offset;
            (*m).length = length;
            (*m).bdev = bdev;
            (*m).dax_dev = dax_dev;
            (*m).flags = flags;
            match kind {
                IoMapKind::Hole => {
                    (*m).type_ = bindings::IOMAP_HOLE as u16;
                    (*m).addr = bindings::IOMAP_NULL_ADDR as u64;
                }
                IoMapKind::Unwritten => {
                    (*m).type_ = bindings::IOMAP_UNWRITTEN as u16;
                    (*m).addr = addr;
                }
                IoMapKind::Mapped => {
                    (*m).type_ = bindings::IOMAP_MAPPED as u16;
                    (*m).addr = addr;
                }
            }
        }
    }

    /// Copies this mapping to `src` without flags (the CoW source map).
    pub(crate) fn copy_to(&self, src: &mut IoMap) {
        // SAFETY: both are ours to fill; struct copy.
        unsafe {
            *src.0.get() = *self.0.get();
            (*src.0.get()).flags = 0;
        }
    }
}

impl Locked<'_> {
    /// `dax_zero_range` of bytes [pos, pos+len) through `ops` (CoW if shared).
    pub(crate) fn dax_zero_range(&self, pos: i64, len: i64, ops: &'static IomapOps) -> Result {
        let mut did = false;
        // SAFETY: i_rwsem held (type invariant); the helper calls back into ops.
        check(unsafe { bindings::dax_zero_range(self.as_ptr(), pos, len, &mut did, ops) }).map(|_| ())
    }

    /// `dax_truncate_page`: zeroes from `pos` to the end of its block.
    pub(crate) fn dax_truncate_page(&self, pos: i64, ops: &'static IomapOps) -> Result {
        let mut did = false;
        // SAFETY: as for dax_zero_range.
        check(unsafe { bindings::dax_truncate_page(self.as_ptr(), pos, &mut did, ops) }).map(|_| ())
    }

    /// `inode_newsize_ok`: the size limits (RLIMIT_FSIZE, s_maxbytes).
    pub(crate) fn newsize_ok(&self, size: i64) -> Result {
        // SAFETY: reads limits of a live inode.
        check(unsafe { bindings::inode_newsize_ok(self.as_ptr(), size) }).map(|_| ())
    }

    /// `truncate_setsize`: sets i_size and unmaps every page table entry past it.
    pub(crate) fn truncate_setsize(&self, size: i64) {
        // SAFETY: i_rwsem held (type invariant).
        unsafe { bindings::truncate_setsize(self.as_ptr(), size) };
    }
}

impl Inode {
    /// Writes back (flushes CPU caches of) the dirty DAX entries of bytes
    /// [start, last] and waits.
    pub(crate) fn write_and_wait_range(&self, start: i64, last: i64) -> Result {
        // SAFETY: the inode's own mapping.
        check(unsafe { bindings::filemap_write_and_wait_range(self.mapping(), start, last) }).map(|_| ())
    }

    /// `iomap_seek_hole`/`iomap_seek_data`.
    pub(crate) fn seek(&self, off: i64, hole: bool, ops: &'static IomapOps, _g: &SharedGuard<'_>) -> i64 {
        // SAFETY: shared i_rwsem keeps the extent map stable (the parameter).
        unsafe {
            if hole {
                bindings::iomap_seek_hole(self.as_ptr(), off, ops)
            } else {
                bindings::iomap_seek_data(self.as_ptr(), off, ops)
            }
        }
    }

    /// `iomap_fiemap`.
    pub(crate) fn fiemap(&self, fi: &FiemapInfo, start: u64, len: u64, ops: &'static IomapOps, _g: &SharedGuard<'_>) -> c_int {
        // SAFETY: fi is the VFS's fiemap request (type invariant); shared
        // i_rwsem held (the parameter).
        unsafe { bindings::iomap_fiemap(self.as_ptr(), fi.0.get(), start, len, ops) }
    }

    /// `mf_dax_kill_procs`: signals the processes that map pages
    /// [index, index+count) of the file, as memory failure does.
    pub(crate) fn kill_procs(&self, index: u64, count: u64, mf_flags: c_int) -> c_int {
        // SAFETY: the inode's own mapping; the helper walks its rmap.
        unsafe { bindings::mf_dax_kill_procs(self.mapping(), index as _, count as _, mf_flags) }
    }

    /// `unmap_mapping_range` of one page's bytes, all mappers (not the
    /// private copies they made).
    pub(crate) fn unmap_range(&self, start: i64, len: i64) {
        // SAFETY: the inode's own mapping.
        unsafe { bindings::unmap_mapping_range(self.mapping(), start, len, 0) };
    }
}

impl File {
    /// `vfs_setpos` for llseek results.
    pub(crate) fn set_pos(&self, pos: i64, max: i64) -> i64 {
        // SAFETY: the file is live; llseek is serialised by the VFS.
        unsafe { bindings::vfs_setpos(self.as_ptr(), pos, max) }
    }

    /// `file_write_and_wait_range` (fsync).
    pub(crate) fn write_and_wait_range(&self, start: i64, end: i64) -> Result {
        // SAFETY: the file is live.
        check(unsafe { bindings::file_write_and_wait_range(self.as_ptr(), start, end) }).map(|_| ())
    }

    /// `file_update_time` (a shared write fault).
    pub(crate) fn update_time(&self) {
        // SAFETY: the file is live.
        unsafe { bindings::file_update_time(self.as_ptr()) };
    }

    /// `dax_remap_file_range_prep` of a remap from `self` to `out`, both
    /// inodes locked (the parameter): checks types, ranges, EOF rules and
    /// immutability, writes back and write-protects the source's dirty DAX
    /// entries (so later stores CoW), and for dedupe compares the data
    /// through `ops`. Returns the length to remap (0: nothing).
    pub(crate) fn remap_prep(
        &self,
        pos_in: i64,
        out: &File,
        pos_out: i64,
        len: i64,
        flags: c_uint,
        ops: &'static IomapOps,
        _locks: &super::inode::RemapLocked<'_>,
    ) -> Result<i64> {
        let mut len = len;
        // SAFETY: both files live, both inodes and mappings locked.
        check(unsafe { bindings::dax_remap_file_range_prep(self.as_ptr(), pos_in, out.as_ptr(), pos_out, &mut len, flags, ops) })?;
        Ok(len)
    }
}

/// A readdir cursor (`dir_context`): the position and the user buffer.
#[repr(transparent)]
pub(crate) struct DirContext(Opaque<bindings::dir_context>);

impl DirContext {
    /// # Safety
    /// `p` is the context of the iterate_shared call being served.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::dir_context) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: a plain field of the context we serve.
        unsafe { (*self.0.get()).pos }
    }

    pub(crate) fn set_pos(&self, pos: i64) {
        // SAFETY: as for pos; the position is ours to advance.
        unsafe { (*self.0.get()).pos = pos };
    }

    /// Emits "." and ".." (positions 0 and 1); false when the buffer is full.
    pub(crate) fn emit_dots(&self, file: &File) -> bool {
        // SAFETY: the file being read and its context.
        unsafe { bindings::ferrofs_dir_emit_dots(file.as_ptr(), self.0.get()) }
    }

    /// Emits one entry (copied to userspace); false when the buffer is full.
    pub(crate) fn emit(&self, name: &[u8], ino: u64, dtype: u8) -> bool {
        // SAFETY: name is a valid buffer of its length; the callee copies it.
        unsafe { bindings::ferrofs_dir_emit(self.0.get(), name.as_ptr().cast(), name.len() as c_int, ino, c_uint::from(dtype)) }
    }
}

/// The result of a getattr (`kstat`).
#[repr(transparent)]
pub(crate) struct Kstat(Opaque<bindings::kstat>);

impl Kstat {
    /// # Safety
    /// `p` is the kstat of the getattr being served, ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::kstat) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*p.cast::<Self>() }
    }

    /// `generic_fillattr` from the VFS inode.
    pub(crate) fn fill(&self, idmap: &super::Idmap, mask: u32, inode: &Inode) {
        // SAFETY: reads the live inode, writes only the kstat we own.
        unsafe { bindings::generic_fillattr(idmap.as_ptr(), mask, inode.as_ptr(), self.0.get()) };
    }

    /// Birth time, block count (512-byte units) and the DAX attribute.
    /// `attrs` are the STATX_ATTR_* bits of the inode's flags (immutable,
    /// append-only, nodump), which statx reports and marks as supported,
    /// as XFS and ext4 do (xfstests generic/424).
    pub(crate) fn set_extra(&self, btime: crate::engine::Time, blocks512: u64, dax: bool, attrs: u64) {
        let s = self.0.get();
        let known = (bindings::STATX_ATTR_DAX | bindings::STATX_ATTR_IMMUTABLE | bindings::STATX_ATTR_APPEND | bindings::STATX_ATTR_NODUMP) as u64;
        // SAFETY: plain stores into the kstat we own.
        unsafe {
            (*s).btime.tv_sec = btime.sec;
            (*s).btime.tv_nsec = btime.nsec as _;
            (*s).result_mask |= bindings::STATX_BTIME;
            (*s).blocks = blocks512;
            if dax {
                (*s).attributes |= bindings::STATX_ATTR_DAX as u64;
            }
            (*s).attributes |= attrs & known;
            (*s).attributes_mask |= known;
        }
    }
}

impl File {
    /// `file_modified`: strips suid/sgid (and security capabilities) and
    /// updates mtime and ctime, as a write does; for fallocate.
    pub(crate) fn modified(&self, _l: &Locked<'_>) -> Result {
        // SAFETY: the file is live and its inode's i_rwsem is held
        // exclusively (the parameter), as file_modified requires.
        check(unsafe { bindings::file_modified(self.as_ptr()) }).map(|_| ())
    }

    /// `generic_file_llseek` (SEEK_SET/CUR/END).
    pub(crate) fn generic_llseek(&self, off: i64, whence: c_int) -> i64 {
        // SAFETY: the file is live; the VFS serialises llseek.
        unsafe { bindings::generic_file_llseek(self.as_ptr(), off, whence) }
    }
}
