// SPDX-License-Identifier: GPL-2.0
//! Inodes: the ferrofs inode container, reference counting (`ARef<Inode>`),
//! the states a new inode goes through (`UnhashedInode`, `NewInode`) and the
//! RAII guards of the inode's locks.
//!
//! Every inode of a ferrofs super_block is allocated by [`alloc_inode`] as
//! an [`InodeBox`]: the VFS `struct inode` first, ferrofs's own per-inode
//! state ([`InodeState`]) beside it. `&Inode` therefore always has a state
//! reachable by `container_of`, which is what [`Inode::state`] does.
//!
//! Lifecycle, as in the Rust VFS series:
//! - `iget_locked` gives either a cached, referenced inode (`ARef<Inode>`) or
//!   a [`NewInode`]: hashed, locked (I_NEW), invisible to others until
//!   [`NewInode::publish`] (`unlock_new_inode`); dropping it unpublished
//!   calls `iget_failed`.
//! - `new_inode` gives an [`UnhashedInode`] (a create before the engine has
//!   numbered it); [`UnhashedInode::insert`] hashes it as a `NewInode`;
//!   dropping it marks it bad and drops it.
//! No `iput` is paired by hand anywhere: `ARef` and these types own the
//! reference.

use super::SuperBlock;
use crate::engine::Time;
use crate::bindings;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// A VFS inode of a ferrofs super_block.
///
/// Invariant: the `struct inode` is the first field of an [`InodeBox`]
/// (every ferrofs inode is allocated by [`alloc_inode`]), and whoever holds
/// a `&Inode` holds a reference on it (or is the VFS callback it was passed
/// to, which the VFS pins for the call).
#[repr(transparent)]
pub(crate) struct Inode(Opaque<bindings::inode>);

// SAFETY: a `struct inode` is shared between threads by design; everything
// ferrofs mutates through `&Inode` is atomic, under the inode's own locks
// (see `Locked`), or done by the VFS helpers that take those locks.
unsafe impl Send for Inode {}
// SAFETY: as above.
unsafe impl Sync for Inode {}

// SAFETY: `ihold`/`iput` are the VFS's reference counting of an inode: a
// `&Inode` only exists while a reference is held (type invariant), so
// `ihold` never sees a zero count; `iput` of the last reference evicts it.
unsafe impl AlwaysRefCounted for Inode {
    fn inc_ref(&self) {
        // SAFETY: the inode is live and referenced (type invariant).
        unsafe { bindings::ihold(self.as_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::iput(obj.as_ptr().cast()) };
    }
}

/// What ferrofs keeps beside each VFS inode: the attributes a reader needs
/// without asking the engine (getattr, fileattr_get, flag inheritance).
/// Written when the engine inode is read or changed (under the inode's
/// lock or while it is new), read without locks.
pub(crate) struct InodeState {
    btime_sec: AtomicI64,
    btime_nsec: AtomicU32,
    /// Engine blocks (filesystem blocks) mapped by the file.
    blocks: AtomicU64,
    /// A change committed but its block count could not be read back, so
    /// its quota charge was not settled (`FsInfo::with_fs_mut_charged`):
    /// the next read of the inode settles it.
    unsettled: AtomicBool,
    /// Engine inode flags (`engine::IFLAG_*`).
    flags: AtomicU32,
    /// Project ID (project quota's `get_projid` reads it without the
    /// engine).
    projid: AtomicU32,
    /// Written, unshared runs iomap_begin has seen (see `MapCache`).
    pub(crate) maps: super::MapCache,
    /// The quota layer's dquot pointers (see `crate::quota`).
    pub(crate) dquots: crate::quota::DquotSlots,
}

impl InodeState {
    const fn new() -> Self {
        InodeState {
            btime_sec: AtomicI64::new(0),
            btime_nsec: AtomicU32::new(0),
            blocks: AtomicU64::new(0),
            unsettled: AtomicBool::new(false),
            flags: AtomicU32::new(0),
            projid: AtomicU32::new(0),
            maps: super::MapCache::new(),
            dquots: crate::quota::DquotSlots::new(),
        }
    }

    pub(crate) fn btime(&self) -> Time {
        Time { sec: self.btime_sec.load(Ordering::Relaxed), nsec: self.btime_nsec.load(Ordering::Relaxed) }
    }

    pub(crate) fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    pub(crate) fn set_blocks(&self, blocks: u64) {
        self.blocks.store(blocks, Ordering::Relaxed)
    }

    /// Says that the quota charge is not settled (true), or, with false,
    /// that it is; returns what it was, so one of two racing readers
    /// settles it.
    pub(crate) fn swap_unsettled(&self, unsettled: bool) -> bool {
        self.unsettled.swap(unsettled, Ordering::AcqRel)
    }

    pub(crate) fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub(crate) fn projid(&self) -> u32 {
        self.projid.load(Ordering::Relaxed)
    }

    /// Sets the project ID of an inode not yet created in the engine, to
    /// charge it to its project first (every later refresh sets it again).
    pub(crate) fn set_projid(&self, projid: u32) {
        self.projid.store(projid, Ordering::Relaxed)
    }

    /// Birth time, flags and project: what a refresh brings in under
    /// i_rwsem. The block count is not here: faults change it without
    /// i_rwsem, so it is set only under the engine lock (`set_blocks`).
    pub(crate) fn set(&self, btime: Time, flags: u32, projid: u32) {
        self.btime_sec.store(btime.sec, Ordering::Relaxed);
        self.btime_nsec.store(btime.nsec, Ordering::Relaxed);
        self.flags.store(flags, Ordering::Relaxed);
        self.projid.store(projid, Ordering::Relaxed);
    }
}

/// The allocation behind every ferrofs inode (the container of its
/// `struct inode`, at offset 0 so that the slab constructor in the C shims
/// can call `inode_init_once` on the object itself).
#[repr(C)]
pub(crate) struct InodeBox {
    vfs: Opaque<bindings::inode>,
    state: InodeState,
}

/// The slab cache of `InodeBox`es ("ferrofs_inode" in /proc/slabinfo; its
/// destruction at module exit reports any inode we leaked).
static INODE_CACHE: AtomicPtr<bindings::kmem_cache> = AtomicPtr::new(core::ptr::null_mut());

/// Creates the inode cache (module init).
pub(crate) fn create_inode_cache() -> Result {
    // SAFETY: creates a named cache of objects of our size whose
    // constructor runs inode_init_once on offset 0, where `InodeBox` keeps
    // its `struct inode` (repr(C), first field).
    let c = unsafe { bindings::ferrofs_inode_cache_create(core::mem::size_of::<InodeBox>() as u32) };
    if c.is_null() {
        return Err(ENOMEM);
    }
    INODE_CACHE.store(c, Ordering::Release);
    Ok(())
}

/// Destroys the inode cache (module exit, after unregistering).
pub(crate) fn destroy_inode_cache() {
    let c = INODE_CACHE.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !c.is_null() {
        // SAFETY: free_inode runs from RCU callbacks: wait for those in
        // flight, then no object of the cache can be in use (every mount is
        // gone, the filesystem is unregistered).
        unsafe {
            bindings::rcu_barrier();
            bindings::kmem_cache_destroy(c);
        }
    }
}

/// `super_operations.alloc_inode`.
pub(crate) unsafe extern "C" fn alloc_inode(sb: *mut bindings::super_block) -> *mut bindings::inode {
    let c = INODE_CACHE.load(Ordering::Acquire);
    // SAFETY: the cache exists while the filesystem is registered; sb is
    // the live super_block the VFS allocates for (its inode LRU accounts
    // the object); the constructor initialised the `struct inode` part.
    let b = unsafe { bindings::ferrofs_inode_cache_alloc(c, sb) }.cast::<InodeBox>();
    if b.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: a fresh object of our cache, exclusively ours: the state part
    // is written before the VFS sees the inode (slab memory is reused, so
    // it is always (re)initialised here).
    unsafe { core::ptr::addr_of_mut!((*b).state).write(InodeState::new()) };
    b.cast()
}

/// `super_operations.free_inode` (after an RCU grace period).
pub(crate) unsafe extern "C" fn free_inode(inode: *mut bindings::inode) {
    // SAFETY: every ferrofs inode came from alloc_inode, so it is the first
    // field of an InodeBox of our cache; the VFS frees it once.
    unsafe { bindings::kmem_cache_free(INODE_CACHE.load(Ordering::Acquire), inode.cast()) };
}

impl Inode {
    /// # Safety
    /// `ptr` is a ferrofs inode (allocated by [`alloc_inode`]) on which the
    /// caller holds a reference for `'a`, or one the VFS passed to the
    /// callback that calls this (pinned for the call).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: transparent wrapper; the caller vouches for the rest.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// ferrofs's state beside the VFS inode.
    pub(crate) fn state(&self) -> &InodeState {
        // SAFETY: type invariant: the inode is the first field of an InodeBox.
        unsafe { &(*self.as_ptr().cast::<InodeBox>()).state }
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
        // SAFETY: i_mode is a plain field the VFS reads unlocked too.
        unsafe { (*self.as_ptr()).i_mode }
    }

    pub(crate) fn is_reg(&self) -> bool {
        u32::from(self.mode()) & bindings::S_IFMT == bindings::S_IFREG
    }

    pub(crate) fn is_dir(&self) -> bool {
        u32::from(self.mode()) & bindings::S_IFMT == bindings::S_IFDIR
    }

    pub(crate) fn size(&self) -> i64 {
        // SAFETY: i_size_read handles the seqcount on 32-bit; the inode is live.
        unsafe { bindings::ferrofs_i_size_read(self.as_ptr()) }
    }

    pub(crate) fn nlink(&self) -> u32 {
        // SAFETY: reading the i_nlink union member of a live inode.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.i_nlink }
    }

    pub(crate) fn generation(&self) -> u32 {
        // SAFETY: set while the inode was new, never changed after.
        unsafe { (*self.as_ptr()).i_generation }
    }

    pub(crate) fn uid(&self) -> u32 {
        // SAFETY: a plain read of a live inode (the VFS reads it unlocked too).
        unsafe { bindings::ferrofs_i_uid_read(self.as_ptr()) }
    }

    pub(crate) fn gid(&self) -> u32 {
        // SAFETY: as for uid.
        unsafe { bindings::ferrofs_i_gid_read(self.as_ptr()) }
    }

    pub(crate) fn is_bad(&self) -> bool {
        // SAFETY: reads the inode's ops pointer.
        unsafe { bindings::is_bad_inode(self.as_ptr()) }
    }

    /// Whether the inode is append-only or immutable (`IS_APPEND`,
    /// `IS_IMMUTABLE`): its blocks must not be rewritten.
    pub(crate) fn is_append_or_immutable(&self) -> bool {
        // SAFETY: reads i_flags and the superblock flags of a live inode.
        unsafe { bindings::ferrofs_inode_append_or_immutable(self.as_ptr()) }
    }

    pub(crate) fn is_dax(&self) -> bool {
        // SAFETY: reads i_flags.
        unsafe { bindings::ferrofs_is_dax(self.as_ptr()) }
    }

    /// The current time at this filesystem's granularity.
    pub(crate) fn now(&self) -> Time {
        // SAFETY: the inode is live; current_time only reads the sb granularity.
        let ts = unsafe { bindings::current_time(self.as_ptr()) };
        Time { sec: ts.tv_sec, nsec: ts.tv_nsec as u32 }
    }

    /// Reads a timestamp (0 atime, 1 mtime, 2 ctime).
    pub(crate) fn time(&self, which: c_int) -> Time {
        let (mut sec, mut nsec) = (0i64, 0u32);
        // SAFETY: the inode is live; the shim only reads.
        unsafe { bindings::ferrofs_inode_get_time(self.as_ptr(), which, &mut sec, &mut nsec) };
        Time { sec, nsec }
    }

    /// The inode's page cache / DAX mapping.
    /// Grows the size of a loaded quota file (`i_size_write`) without
    /// `i_rwsem`, which the quota layer's I/O must not take (it may run
    /// inside another inode's). The quota layer's `dqio_sem` serialises its
    /// writes, and the file is immutable while loaded, so nothing else
    /// writes its size then.
    pub(crate) fn set_quota_file_size(&self, size: i64) {
        // SAFETY: i_size_write of a live inode is a single marked store on
        // 64-bit kernels; the writers are serialised as said above.
        unsafe { bindings::ferrofs_i_size_write(self.as_ptr(), size) };
    }

    pub(crate) fn mapping(&self) -> *mut bindings::address_space {
        // SAFETY: i_mapping is set at allocation and never changes for us.
        unsafe { (*self.as_ptr()).i_mapping }
    }

    /// Another counted reference.
    pub(crate) fn to_aref(&self) -> ARef<Inode> {
        ARef::from(self)
    }

    /// Takes `i_rwsem` exclusively.
    pub(crate) fn lock(&self) -> Locked<'_> {
        // SAFETY: a live inode's own lock; released by the guard.
        unsafe { bindings::ferrofs_inode_lock(self.as_ptr()) };
        Locked { inode: self, owned: true }
    }

    /// Takes `i_rwsem` shared.
    pub(crate) fn lock_shared(&self) -> SharedGuard<'_> {
        // SAFETY: as for lock.
        unsafe { bindings::ferrofs_inode_lock_shared(self.as_ptr()) };
        SharedGuard(self)
    }

    /// Asserts what the VFS guarantees for the callback being served: the
    /// caller already holds `i_rwsem` exclusively.
    ///
    /// # Safety
    /// `i_rwsem` is held exclusively (by this task) for the guard's life.
    pub(crate) unsafe fn assume_locked(&self) -> Locked<'_> {
        Locked { inode: self, owned: false }
    }

    /// Sets the ctime of an inode whose `i_rwsem` the caller cannot hold:
    /// a directory a rename moves or exchanges within one parent, which
    /// `vfs_rename` does not lock (fs/namei.c, "lock children"). The VFS's
    /// own `simple_rename_timestamp` and ext4's rename store that ctime
    /// the same way; a racing setattr of the directory stores a ctime of
    /// its own, and the later store wins, as there.
    pub(crate) fn set_ctime_of_unlocked_dir(&self, t: Time) {
        // SAFETY: the inode is live; the shim stores the two ctime fields,
        // which the VFS also stores without i_rwsem for such a directory
        // (see above), and nothing else.
        unsafe { bindings::ferrofs_inode_set_time(self.as_ptr(), 2, t.sec, t.nsec) };
    }
}

/// Proof that `i_rwsem` of the inode is held exclusively: the attributes the
/// VFS keeps in `struct inode` may be written through it. Made by
/// [`Inode::lock`] (releases the lock when dropped) or
/// [`Inode::assume_locked`] in a callback whose caller holds it.
pub(crate) struct Locked<'a> {
    inode: &'a Inode,
    owned: bool,
}

impl core::ops::Deref for Locked<'_> {
    type Target = Inode;
    fn deref(&self) -> &Inode {
        self.inode
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: taken in Inode::lock.
            unsafe { bindings::ferrofs_inode_unlock(self.inode.as_ptr()) };
        }
    }
}

/// Shared `i_rwsem`.
pub(crate) struct SharedGuard<'a>(&'a Inode);

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: taken in Inode::lock_shared.
        unsafe { bindings::ferrofs_inode_unlock_shared(self.0.as_ptr()) };
    }
}

impl<'a> Locked<'a> {
    /// Takes the mapping's `invalidate_lock` exclusively (keeps faults out
    /// while blocks are removed or moved; nests inside `i_rwsem`).
    pub(crate) fn invalidate_lock(&self) -> InvalidateGuard<'a> {
        // SAFETY: the mapping's own lock, taken inside i_rwsem as the VFS orders them.
        unsafe { bindings::ferrofs_invalidate_lock(self.inode.as_ptr()) };
        InvalidateGuard(self.inode, Held::Exclusive)
    }

    /// Writes a size (`i_size_write`).
    pub(crate) fn set_size(&self, size: i64) {
        // SAFETY: i_rwsem held exclusively (type invariant).
        unsafe { bindings::ferrofs_i_size_write(self.as_ptr(), size) };
    }

    /// Writes a timestamp (0 atime, 1 mtime, 2 ctime).
    pub(crate) fn set_time(&self, which: c_int, t: Time) {
        // SAFETY: i_rwsem held exclusively (type invariant).
        unsafe { bindings::ferrofs_inode_set_time(self.as_ptr(), which, t.sec, t.nsec) };
    }

    /// Sets the `S_*` flags in `mask` to those in `flags`.
    pub(crate) fn set_flags(&self, flags: u32, mask: u32) {
        // SAFETY: i_rwsem held exclusively (type invariant); inode_set_flags
        // updates i_flags atomically against the VFS's own flag changes.
        unsafe { bindings::inode_set_flags(self.as_ptr(), flags, mask) };
    }

    /// Writes the mode.
    pub(crate) fn set_mode(&self, mode: u16) {
        // SAFETY: i_rwsem held exclusively (type invariant).
        unsafe { (*self.as_ptr()).i_mode = mode };
    }

    /// Writes the attributes of an engine inode into the VFS inode (see
    /// [`write_attrs`]).
    pub(crate) fn fill(&self, a: &Attrs, keep_newer_times: bool) {
        // SAFETY: i_rwsem held exclusively (type invariant).
        unsafe { write_attrs(self.inode, a, keep_newer_times, false) }
    }
}

/// The mapping's `invalidate_lock`, held as the second field says.
pub(crate) struct InvalidateGuard<'a>(&'a Inode, Held);

/// How an `InvalidateGuard` holds its lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Shared,
    Exclusive,
    /// Exclusive, taken by someone else who releases it (`TwoLocked`).
    Borrowed,
}

impl Inode {
    /// Takes the mapping's `invalidate_lock` shared (faults).
    pub(crate) fn invalidate_lock_shared(&self) -> InvalidateGuard<'_> {
        // SAFETY: the mapping's own lock.
        unsafe { bindings::ferrofs_invalidate_lock_shared(self.as_ptr()) };
        InvalidateGuard(self, Held::Shared)
    }

    /// Takes the mapping's `invalidate_lock` exclusively without `i_rwsem`
    /// (memory failure: it only unmaps, and must not wait for a writer).
    pub(crate) fn invalidate_lock_only(&self) -> InvalidateGuard<'_> {
        // SAFETY: the mapping's own lock.
        unsafe { bindings::ferrofs_invalidate_lock(self.as_ptr()) };
        InvalidateGuard(self, Held::Exclusive)
    }
}

impl Drop for InvalidateGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: taken by the function that made this guard, in this mode.
        unsafe {
            match self.1 {
                Held::Exclusive => bindings::ferrofs_invalidate_unlock(self.0.as_ptr()),
                Held::Shared => bindings::ferrofs_invalidate_unlock_shared(self.0.as_ptr()),
                Held::Borrowed => {}
            }
        }
    }
}

/// The two regular files of a remap, locked as XFS locks them since "xfs:
/// allow read IO and FICLONE to run concurrently": the source's `i_rwsem`
/// shared, so reads of it go on while a long clone runs (xfstests
/// generic/733), the destination's exclusive, in `lock_two_nondirectories`'
/// order (lower address first, the second with lockdep's NONDIR2
/// subclass); then both mappings' `invalidate_lock` exclusive
/// (`filemap_invalidate_lock_two`), which keeps faults out of both files.
/// The source is safe to share because everything that changes a file's
/// blocks or size (write, truncate, fallocate, a remap into it) holds its
/// `i_rwsem` exclusive, and faults are kept out. One file (source and
/// destination the same) is locked once, exclusive.
pub(crate) struct RemapLocked<'a> {
    src: &'a Inode,
    dst: &'a Inode,
}

impl<'a> RemapLocked<'a> {
    pub(crate) fn new(src: &'a Inode, dst: &'a Inode) -> Self {
        let (s, d) = (src.as_ptr(), dst.as_ptr());
        // SAFETY: both inodes are live (the VFS holds both files). Every
        // path that locks two inodes' i_rwsem takes the lower address
        // first, as here, so no two of them wait on each other; the
        // invalidate locks nest inside, ordered by the helper.
        unsafe {
            if s == d {
                bindings::ferrofs_inode_lock(d);
            } else if (s as usize) < (d as usize) {
                bindings::ferrofs_inode_lock_shared(s);
                bindings::ferrofs_inode_lock_nondir2(d);
            } else {
                bindings::ferrofs_inode_lock(d);
                bindings::ferrofs_inode_lock_shared_nondir2(s);
            }
            bindings::filemap_invalidate_lock_two(src.mapping(), dst.mapping());
        }
        RemapLocked { src, dst }
    }

    /// The source, its `i_rwsem` held at least shared.
    pub(crate) fn src(&self) -> ReadLocked<'a> {
        ReadLocked(self.src)
    }

    /// The destination, its `i_rwsem` held exclusive.
    pub(crate) fn dst(&self) -> Locked<'a> {
        Locked { inode: self.dst, owned: false }
    }

    /// The source's invalidate lock (held exclusively by self).
    pub(crate) fn src_invalidate(&self) -> InvalidateGuard<'a> {
        InvalidateGuard(self.src, Held::Borrowed)
    }

    /// The destination's invalidate lock (held exclusively by self).
    pub(crate) fn dst_invalidate(&self) -> InvalidateGuard<'a> {
        InvalidateGuard(self.dst, Held::Borrowed)
    }
}

impl Drop for RemapLocked<'_> {
    fn drop(&mut self) {
        let (s, d) = (self.src.as_ptr(), self.dst.as_ptr());
        // SAFETY: paired with the locks taken in new, in the same modes.
        unsafe {
            bindings::filemap_invalidate_unlock_two(self.src.mapping(), self.dst.mapping());
            if s != d {
                bindings::ferrofs_inode_unlock_shared(s);
            }
            bindings::ferrofs_inode_unlock(d);
        }
    }
}

/// An inode whose `i_rwsem` someone else (`RemapLocked`) holds at least
/// shared for as long as this lives: writers, truncate and every other
/// change of its blocks or size are kept out; readers are not.
pub(crate) struct ReadLocked<'a>(&'a Inode);

impl core::ops::Deref for ReadLocked<'_> {
    type Target = Inode;
    fn deref(&self) -> &Inode {
        self.0
    }
}

/// An inode whose `i_rwsem` the holder has, shared (`ReadLocked`) or
/// exclusive (`Locked`): no writer, truncate or fallocate is running on it.
/// What needs only that, and the invalidate lock, is here.
pub(crate) trait IoLocked: core::ops::Deref<Target = Inode> {
    /// Waits for pinned DAX pages of bytes [start, end) to be released
    /// (`dax_break_layout` under the invalidate lock held by the caller).
    fn break_layouts(&self, start: i64, end: i64, _inv: &InvalidateGuard<'_>) -> Result {
        // SAFETY: the helper requires i_rwsem (the trait's invariant) and
        // the invalidate lock (the parameter).
        crate::vfs::io::check(unsafe { bindings::ferrofs_break_layouts(self.as_ptr(), start, end) }).map(|_| ())
    }

    /// Unmaps page tables and drops the DAX entries of bytes [start, last].
    fn truncate_pagecache_range(&self, start: i64, last: i64, _inv: &InvalidateGuard<'_>) {
        // SAFETY: i_rwsem (the trait's invariant) keeps writers out and the
        // invalidate lock (the parameter) faults; DAX reads install no
        // entries.
        unsafe { bindings::truncate_pagecache_range(self.as_ptr(), start, last) };
    }
}

impl IoLocked for Locked<'_> {}
impl IoLocked for ReadLocked<'_> {}

/// The attributes ferrofs copies into a VFS inode (from an engine inode).
pub(crate) struct Attrs {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) nlink: u32,
    pub(crate) size: u64,
    pub(crate) blocks: u64,
    pub(crate) generation: u32,
    pub(crate) atime: Time,
    pub(crate) mtime: Time,
    pub(crate) ctime: Time,
    pub(crate) btime: Time,
    /// Engine flags (kept in the state), and the S_* flags they imply.
    pub(crate) flags: u32,
    pub(crate) s_flags: u32,
    /// Project ID (kept in the state).
    pub(crate) projid: u32,
}

/// Writes `a` into the VFS inode and its state. With `keep_newer_times`,
/// each timestamp becomes the later of the VFS's and `a`'s (atime and mtime
/// reach the engine lazily, in write_inode). `i_blocks` is never written
/// here: the quota layer's space helpers own it (`crate::quota::settle_blocks`,
/// in the section that changed the blocks) and `dquot_transfer` moves
/// exactly what it says; only an inode read from the media gets it set
/// directly (`NewInode::init`). The state's block count is set only for
/// a new inode (`init`): a live one's changes under the engine lock,
/// where its changers and `inode::refresh` set it, not under i_rwsem.
///
/// # Safety
/// The caller holds `i_rwsem` exclusively or the inode is not yet visible to
/// anyone else (I_NEW or unhashed).
unsafe fn write_attrs(inode: &Inode, a: &Attrs, keep_newer_times: bool, init: bool) {
    let later = |which: c_int, t: Time| {
        let cur = inode.time(which);
        if keep_newer_times && (cur.sec, cur.nsec) > (t.sec, t.nsec) { cur } else { t }
    };
    let (at, mt, ct) = (later(0, a.atime), later(1, a.mtime), later(2, a.ctime));
    let p = inode.as_ptr();
    // SAFETY: per the function's contract, these plain stores and the
    // helpers made for them cannot race with another writer.
    unsafe {
        (*p).i_mode = a.mode as u16;
        bindings::ferrofs_i_uid_write(p, a.uid);
        bindings::ferrofs_i_gid_write(p, a.gid);
        bindings::set_nlink(p, a.nlink);
        bindings::ferrofs_i_size_write(p, a.size as i64);
        (*p).i_generation = a.generation;
        bindings::ferrofs_inode_set_time(p, 0, at.sec, at.nsec);
        bindings::ferrofs_inode_set_time(p, 1, mt.sec, mt.nsec);
        bindings::ferrofs_inode_set_time(p, 2, ct.sec, ct.nsec);
        // a loaded quota file (S_NOQUOTA) stays immutable and noatime in
        // memory whatever its stored flags say (crate::quota)
        let loaded = if (*p).i_flags & bindings::S_NOQUOTA != 0 { bindings::S_IMMUTABLE | bindings::S_NOATIME } else { 0 };
        bindings::inode_set_flags(p, a.s_flags | loaded, bindings::S_IMMUTABLE | bindings::S_APPEND | bindings::S_NOATIME | bindings::S_SYNC);
    }
    inode.state().set(a.btime, a.flags, a.projid);
    if init {
        inode.state().set_blocks(a.blocks);
    }
}

/// The operation tables of an inode (set once, while it is new).
pub(crate) struct Ops {
    pub(crate) iops: &'static bindings::inode_operations,
    pub(crate) fops: Option<&'static bindings::file_operations>,
    pub(crate) aops: Option<&'static bindings::address_space_operations>,
    /// Inode flags to set with the ops (S_DAX for regular files).
    pub(crate) s_flags: u32,
    /// A device number for special files (`init_special_inode`), else None.
    pub(crate) special_rdev: Option<bindings::dev_t>,
    /// Symlink bodies are never in highmem.
    pub(crate) nohighmem: bool,
}

/// Writes attributes and ops into an inode nobody else can see yet.
///
/// # Safety
/// `p` is an inode private to the caller (I_NEW, or not yet hashed).
unsafe fn init_private(inode: &Inode, a: &Attrs, ops: &Ops) {
    // SAFETY: the inode is private (contract): nothing races these stores.
    unsafe {
        write_attrs(inode, a, false, true);
        let p = inode.as_ptr();
        (*p).i_op = ops.iops;
        if let Some(rdev) = ops.special_rdev {
            bindings::init_special_inode(p, (*p).i_mode, rdev);
        }
        if let Some(f) = ops.fops {
            (*p).__bindgen_anon_3.i_fop = f;
        }
        if let Some(aops) = ops.aops {
            (*(*p).i_mapping).a_ops = aops;
        }
        if ops.s_flags != 0 {
            bindings::inode_set_flags(p, ops.s_flags, ops.s_flags);
        }
        if ops.nohighmem {
            bindings::inode_nohighmem(p);
        }
    }
}

/// A hashed, locked (I_NEW) inode with one reference, invisible to other
/// lookups until [`publish`](Self::publish). Dropping it unpublished fails
/// it (`iget_failed`: marked bad, unlocked, released).
pub(crate) struct NewInode(NonNull<bindings::inode>);

impl NewInode {
    /// The inode (for reads; writes go through [`init`](Self::init)).
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: we own a reference on a live ferrofs inode.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }

    /// Fills attributes and ops of an inode read from the media, whose
    /// blocks the quota files already count: `i_blocks` is set as is.
    pub(crate) fn init(&mut self, a: &Attrs, ops: &Ops) {
        // SAFETY: I_NEW: only we can see the inode.
        unsafe {
            init_private(self.inode(), a, ops);
            (*self.0.as_ptr()).i_blocks = (a.blocks * 8) as _;
        }
    }

    /// Makes the inode visible (`unlock_new_inode`) and returns our reference.
    pub(crate) fn publish(self) -> ARef<Inode> {
        let p = self.0;
        core::mem::forget(self);
        // SAFETY: an I_NEW inode we locked; its reference moves to the ARef.
        unsafe {
            bindings::unlock_new_inode(p.as_ptr());
            ARef::from_raw(p.cast())
        }
    }

    /// Gives up the reference and the I_NEW lock to a VFS helper that takes
    /// both (`d_instantiate_new`).
    pub(super) fn into_raw(self) -> *mut bindings::inode {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for NewInode {
    fn drop(&mut self) {
        // SAFETY: an I_NEW inode with our reference that never got filled:
        // iget_failed marks it bad, unlocks it and drops the reference.
        unsafe { bindings::iget_failed(self.0.as_ptr()) };
    }
}

/// An inode from `new_inode`: referenced, not hashed, not yet backed by an
/// engine inode. Dropping it marks it bad (so eviction does not look for it
/// in the engine) and releases it.
pub(crate) struct UnhashedInode {
    ptr: NonNull<bindings::inode>,
    /// One inode, and the blocks the engine gives a new inode, are
    /// charged to the owner's and group's quotas (`charge_quota`): given
    /// back if the inode is dropped unpublished.
    charged: bool,
}

impl UnhashedInode {
    pub(crate) fn new(sb: &SuperBlock) -> Result<Self> {
        // SAFETY: sb is live; new_inode returns a referenced, unhashed inode or NULL.
        let p = unsafe { bindings::new_inode(sb.as_ptr()) };
        NonNull::new(p).map(|ptr| UnhashedInode { ptr, charged: false }).ok_or(ENOMEM)
    }

    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: we own a reference on a live ferrofs inode.
        unsafe { Inode::from_raw(self.ptr.as_ptr()) }
    }

    /// `inode_init_owner`: owner, group and mode (setgid directories, and
    /// the umask unless the filesystem does ACLs) from the creating task.
    pub(crate) fn init_owner(&mut self, idmap: &super::Idmap, dir: &Inode, mode: u16) {
        // SAFETY: the inode is private to us; dir and idmap are live.
        unsafe { bindings::inode_init_owner(idmap.as_ptr(), self.ptr.as_ptr(), dir.as_ptr(), mode) };
    }

    /// Charges the inode, and the `blocks` data blocks the engine will
    /// give it as it creates it (a long symlink's target), to its owner's,
    /// group's and project's quotas (after `init_owner`): EDQUOT over a
    /// limit. Before the engine creates anything, so that a refused create
    /// leaves nothing to undo; `insert` settles the block charge at what
    /// the engine did give.
    pub(crate) fn charge_quota(&mut self, blocks: u64) -> Result {
        crate::quota::init(self.inode())?;
        crate::quota::alloc_inode(self.inode())?;
        self.charged = true;
        crate::quota::charge_blocks(self.inode(), blocks)
    }

    pub(crate) fn set_mode(&mut self, mode: u16) {
        // SAFETY: the inode is private to us.
        unsafe { (*self.ptr.as_ptr()).i_mode = mode };
    }

    /// Numbers the inode, fills it and hashes it locked (`insert_inode_locked`).
    /// The blocks the engine gave it (`a.blocks`) are charged to its quotas
    /// as `charge_quota` foresaw, or as they are if it foresaw fewer.
    pub(crate) fn insert(self, ino: u64, a: &Attrs, ops: &Ops) -> Result<NewInode> {
        let p = self.ptr.as_ptr();
        // SAFETY: still private: nobody can see i_ino or the fields yet.
        unsafe {
            (*p).i_ino = ino as _;
            init_private(self.inode(), a, ops);
        }
        crate::quota::settle_blocks(self.inode(), Some(a.blocks), 0);
        // SAFETY: hashes the inode and sets I_NEW, or finds the number in
        // use and leaves ours untouched (then dropping self releases it).
        if unsafe { bindings::insert_inode_locked(p) } < 0 {
            crate::vfs::fs_err!(self.inode().sb().id(), "inode {} already in cache: engine reused a live number\n", ino);
            return Err(EIO);
        }
        core::mem::forget(self);
        // SAFETY: p is non-null (from self) and now I_NEW with our reference.
        Ok(NewInode(unsafe { NonNull::new_unchecked(p) }))
    }
}

impl Drop for UnhashedInode {
    fn drop(&mut self) {
        if self.charged {
            crate::quota::free_inode(self.inode());
            crate::quota::settle_blocks(self.inode(), Some(0), 0);
        }
        // SAFETY: our reference on an inode never published; bad inodes are
        // not looked up in the engine by evict_inode.
        unsafe {
            bindings::make_bad_inode(self.ptr.as_ptr());
            bindings::iput(self.ptr.as_ptr());
        }
    }
}

/// What `iget_locked` found.
pub(crate) enum Cached {
    /// In the inode cache, initialised.
    Live(ARef<Inode>),
    /// Not cached: a new inode to fill and publish.
    New(NewInode),
}

impl SuperBlock {
    /// `iget_locked`: the cached inode `ino`, or a new locked one to fill.
    pub(crate) fn iget_locked(&self, ino: u64) -> Result<Cached> {
        // SAFETY: sb is live; iget_locked returns a referenced inode or NULL.
        let p = NonNull::new(unsafe { bindings::iget_locked(self.as_ptr(), ino as _) }).ok_or(ENOMEM)?;
        // SAFETY: referenced; I_NEW is set before the inode is hashed and
        // cleared only by whoever holds it new (us, if set).
        if unsafe { (*p.as_ptr()).i_state } & bindings::I_NEW != 0 {
            Ok(Cached::New(NewInode(p)))
        } else {
            // SAFETY: a referenced, initialised inode: the reference moves
            // into the ARef.
            Ok(Cached::Live(unsafe { ARef::from_raw(p.cast()) }))
        }
    }

    /// `ilookup`: the cached inode `ino`, if any (never reads the engine).
    pub(crate) fn ilookup(&self, ino: u64) -> Option<ARef<Inode>> {
        // SAFETY: sb is live; ilookup returns a referenced inode or NULL.
        let p = NonNull::new(unsafe { bindings::ilookup(self.as_ptr(), ino as _) })?;
        // SAFETY: the reference moves into the ARef.
        Some(unsafe { ARef::from_raw(p.cast()) })
    }
}
