// SPDX-License-Identifier: GPL-2.0
//! ioctls of our own, on files and directories alike.
//!
//! `FS_IOC_GETFLAGS`/`SETFLAGS` and `FS_IOC_FSGETXATTR`/`FSSETXATTR` are the
//! VFS's (through `fileattr_get`/`fileattr_set`); what reaches
//! `unlocked_ioctl` is only what the VFS does not know:
//!
//! - `FS_IOC_SHUTDOWN` (`_IOR('X', 125, __u32)`, the number XFS, ext4 and
//!   f2fs share; 6.12's uapi headers do not name it yet). It stops the
//!   filesystem the way a crash would, so that crash-recovery tests (the
//!   xfstests `_require_scratch_shutdown` family) can run on DAX, where
//!   dm-flakey cannot sit under the filesystem. Every later operation fails
//!   with EIO; umount works; the next mount recovers the journal.
//!   The flags mean what they mean on XFS and ext4:
//!   `DEFAULT` freezes first (every dirty DAX entry is written back, so what
//!   was written through mmap is durable), `LOGFLUSH` and `NOLOGFLUSH` stop
//!   at once. ferrofs commits each metadata transaction before returning,
//!   so there is no log to flush and the last two are the same: what was
//!   fsync'd before the call survives, what was not may not.
//! - `FS_IOC_GETFSLABEL` and `FS_IOC_SETFSLABEL` (`_IOR`/`_IOW(0x94, 49/50,
//!   char[FSLABEL_MAX])`, as on XFS, ext4 and btrfs; `xfs_io -c label`):
//!   the filesystem label, at most 32 bytes (EINVAL beyond). Setting it
//!   needs CAP_SYS_ADMIN and a writable mount, and is one engine
//!   transaction; the block device's cache is dropped after it, so that
//!   `blkid` and other readers of the device see the new label.
//! - Not here: `FS_IOC_GETFSUUID`, which the VFS answers from `s_uuid`;
//!   fill_super sets it to mkfs's uuid (duperemove asks for it on
//!   filesystems libblkid cannot probe).
//! - `FERROFS_IOC_DEFRAG` (`_IOWR(0xF4, 1, struct ferrofs_defrag)`, a type
//!   byte Documentation/userspace-api/ioctl/ioctl-number.rst leaves free):
//!   online defragmentation of a file (`crate::file::defrag`), for
//!   ferrofs-defrag(8). `struct ferrofs_defrag` is five `__u64`: start, len
//!   (0: to the end), flags (must be 0) in; bytes moved and runs left
//!   fragmented for want of contiguous space out.

use crate::bindings;
use crate::mount::{FsInfo, Op};
use crate::vfs::{File, Inode};
use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

const FS_IOC_SHUTDOWN: c_uint = 0x8004_587d;
const FS_SHUTDOWN_FLAGS_DEFAULT: u32 = 0;
const FS_SHUTDOWN_FLAGS_LOGFLUSH: u32 = 1;
const FS_SHUTDOWN_FLAGS_NOLOGFLUSH: u32 = 2;
const FERROFS_IOC_DEFRAG: c_uint = 0xc028_f401;
const FS_IOC_GETFSLABEL: c_uint = 0x8100_9431;
const FS_IOC_SETFSLABEL: c_uint = 0x4100_9432;
const FSLABEL_MAX: usize = 256;
const DEFRAG_ARG_SIZE: usize = 5 * core::mem::size_of::<u64>();

/// `file_operations.unlocked_ioctl` of files and directories.
pub(crate) unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the VFS holds a reference on the file for the call, and so on
    // its inode and super_block.
    let file = unsafe { File::from_raw(file) };
    let r = match cmd {
        FS_IOC_SHUTDOWN => shutdown(file.inode(), arg as usize),
        FERROFS_IOC_DEFRAG => defrag(file, arg as usize),
        FS_IOC_GETFSLABEL => get_label(file.inode(), arg as usize),
        FS_IOC_SETFSLABEL => set_label(file, arg as usize),
        _ => return -(bindings::ENOIOCTLCMD as c_long),
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

fn shutdown(inode: &Inode, arg: usize) -> Result {
    // SAFETY: a capability check of the current task.
    if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) } {
        return Err(EPERM);
    }
    let flags: u32 = UserSlice::new(arg, core::mem::size_of::<u32>()).reader().read()?;
    let how = match flags {
        FS_SHUTDOWN_FLAGS_DEFAULT => "FS_IOC_SHUTDOWN (after writing back all data)",
        FS_SHUTDOWN_FLAGS_LOGFLUSH => "FS_IOC_SHUTDOWN (logflush)",
        FS_SHUTDOWN_FLAGS_NOLOGFLUSH => "FS_IOC_SHUTDOWN (nologflush)",
        _ => return Err(EINVAL),
    };
    let sb = inode.sb();
    let info = FsInfo::of(sb)?;
    if info.is_shut_down() {
        return Ok(());
    }
    if flags == FS_SHUTDOWN_FLAGS_DEFAULT {
        // every dirty DAX entry is written back by the freeze; a
        // kernel-held freeze cannot be thawed by userspace meanwhile
        let _frozen = sb.freeze()?;
        info.shutdown(how);
    } else {
        info.shutdown(how);
    }
    Ok(())
}

fn get_label(inode: &Inode, arg: usize) -> Result {
    let label = FsInfo::of(inode.sb())?.with_fs(Op::Statfs, |fs| Ok(fs.superblock().label))?;
    // NUL-padded in the superblock: the rest of the answer is NULs too
    let mut out = [0u8; FSLABEL_MAX];
    out[..label.len()].copy_from_slice(&label);
    UserSlice::new(arg, FSLABEL_MAX).writer().write_slice(&out)
}

fn set_label(file: &File, arg: usize) -> Result {
    // SAFETY: a capability check of the current task.
    if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) } {
        return Err(EPERM);
    }
    let mut buf = [0u8; FSLABEL_MAX];
    UserSlice::new(arg, FSLABEL_MAX).reader().read_slice(&mut buf)?;
    // a label fills the buffer up to its NUL (none at all: EINVAL)
    let len = buf.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    let sb = file.inode().sb();
    let _write = file.want_write()?;
    FsInfo::of(sb)?.with_fs_mut(Op::Statfs, |fs| fs.set_label(&buf[..len]))?;
    // SAFETY: the mounted super_block's own block device, which the mount
    // holds; dropping its page cache only makes later reads go to media.
    unsafe { bindings::invalidate_bdev(sb.bdev()) };
    Ok(())
}

fn defrag(file: &File, arg: usize) -> Result {
    let (mut r, mut w) = UserSlice::new(arg, DEFRAG_ARG_SIZE).reader_writer();
    let (start, len, flags) = (r.read::<u64>()?, r.read::<u64>()?, r.read::<u64>()?);
    if flags != 0 {
        return Err(EINVAL);
    }
    let d = crate::file::defrag(file, start, len)?;
    for v in [start, len, flags, d.moved, d.no_space] {
        w.write(&v)?;
    }
    Ok(())
}
