//! The few ioctls the tools call, for the binaries that need them (each
//! includes this file with `#[path]`; the library itself has no unsafe code).
//!
//! - `FS_IOC_FIEMAP`: a file's extents.
//! - `FERROFS_IOC_DEFRAG`: ferrofs's online defragmentation
//!   (Documentation/design.md, "Online defragmentation").
#![allow(dead_code)] // each binary uses its part

use std::fs::File;
use std::os::fd::AsRawFd;

const FS_IOC_FIEMAP: u64 = 0xC020_660B;
const FIEMAP_FLAG_SYNC: u32 = 1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
const FIEMAP_EXTENT_UNKNOWN: u32 = 0x2;
const FIEMAP_EXTENT_DELALLOC: u32 = 0x4;
const FIEMAP_EXTENT_SHARED: u32 = 0x2000;
const BATCH: usize = 128;

extern "C" {
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn fstatfs(fd: i32, buf: *mut StatFs) -> i32;
}

/// `statfs.f_type` of a mounted ferrofs.
pub const FERROFS_MAGIC: i64 = 0x4665_5252;

/// `struct statfs` on 64-bit Linux: f_type first, 120 bytes in all.
#[repr(C)]
struct StatFs {
    f_type: i64,
    rest: [u64; 14],
}

/// The filesystem type (`statfs.f_type`) `f` lives on.
pub fn fs_type(f: &File) -> std::io::Result<i64> {
    let mut st = StatFs { f_type: 0, rest: [0; 14] };
    // SAFETY: fstatfs writes one struct statfs, which is the size and
    // layout of `st` on 64-bit Linux.
    if unsafe { fstatfs(f.as_raw_fd(), &mut st) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type)
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Extent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [Extent; BATCH],
}

/// (physical, length, shared) of every mapped extent of `f`.
pub fn extents(f: &File) -> std::io::Result<Vec<(u64, u64, bool)>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let mut fm = Fiemap {
            start,
            length: u64::MAX - start,
            flags: FIEMAP_FLAG_SYNC,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
            extents: [Extent::default(); BATCH],
        };
        // SAFETY: FS_IOC_FIEMAP reads and writes a struct fiemap followed by
        // extent_count extents, which is exactly the layout of `fm`.
        let r = unsafe { ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut fm as *mut Fiemap) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = fm.mapped_extents as usize;
        for e in &fm.extents[..n.min(BATCH)] {
            if e.flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC) == 0 {
                out.push((e.physical, e.length, e.flags & FIEMAP_EXTENT_SHARED != 0));
            }
        }
        match fm.extents[..n.min(BATCH)].last() {
            Some(e) if e.flags & FIEMAP_EXTENT_LAST == 0 && n == BATCH => start = e.logical + e.length,
            _ => return Ok(out),
        }
    }
}

/// `FERROFS_IOC_DEFRAG`: `_IOWR(0xF4, 1, struct ferrofs_defrag)`.
const FERROFS_IOC_DEFRAG: u64 = 0xC028_F401;

/// `struct ferrofs_defrag` (Documentation/design.md).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DefragArg {
    /// In: first byte of the range.
    pub start: u64,
    /// In: bytes in the range; 0 = to the end of the file.
    pub len: u64,
    /// In: must be 0.
    pub flags: u64,
    /// Out: bytes moved.
    pub moved: u64,
    /// Out: runs left fragmented for want of contiguous free space.
    pub no_space: u64,
}

/// Defragment bytes `[start, start + len)` of `f` (open for writing).
pub fn defrag(f: &File, start: u64, len: u64) -> std::io::Result<DefragArg> {
    let mut a = DefragArg { start, len, ..Default::default() };
    // SAFETY: FERROFS_IOC_DEFRAG reads and writes exactly one struct
    // ferrofs_defrag, which is the layout of `a`, alive for the call.
    let r = unsafe { ioctl(f.as_raw_fd(), FERROFS_IOC_DEFRAG, &mut a as *mut DefragArg) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(a)
}
