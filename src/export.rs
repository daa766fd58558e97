// SPDX-License-Identifier: GPL-2.0
//! File handles (`export_operations`): name_to_handle_at/open_by_handle_at
//! and, the reason they exist here, fanotify's FAN_REPORT_FID, which a
//! filesystem mark (and so FAN_FS_ERROR, the memory-failure report) accepts
//! only on a filesystem that can decode handles.
//!
//! A handle is FILEID_INO64_GEN: the 64-bit inode number and the 32-bit
//! generation (the engine never reuses an inode number, and the generation
//! tells a stale handle anyway); with a parent, FILEID_INO64_GEN_PARENT adds
//! the parent's pair. Directories know their parent (the engine's `parent`,
//! the ".." target), so disconnected directory dentries reconnect.

use crate::bindings;
use crate::mount::{FsInfo, Op};
use crate::vfs::{err_ptr, obtain_alias, Cached, Dentry, Inode, SuperBlock};
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::ARef;

const FILEID_INO64_GEN: c_int = 0x81;
const FILEID_INO64_GEN_PARENT: c_int = 0x82;
const FILEID_INVALID: c_int = 0xff;
/// Handle words (u32) for one (ino, generation) pair.
const WORDS: usize = 3;

fn estale() -> Error {
    Error::from_errno(-(bindings::ESTALE as c_int))
}

/// Writes `inode`'s (ino, generation) into `fh` (WORDS words).
fn put(fh: &mut [u32], inode: &Inode) {
    let ino = inode.ino();
    fh[0] = ino as u32;
    fh[1] = (ino >> 32) as u32;
    fh[2] = inode.generation();
}

unsafe extern "C" fn encode_fh(inode: *mut bindings::inode, fh: *mut u32, max_len: *mut c_int, parent: *mut bindings::inode) -> c_int {
    // SAFETY: exportfs passes a buffer of *max_len words, its length, and
    // live inodes of ours (the parent may be NULL).
    let (max_len, inode, parent) = unsafe { (&mut *max_len, Inode::from_raw(inode), (!parent.is_null()).then(|| Inode::from_raw(parent))) };
    let (need, ty) = if parent.is_none() { (WORDS, FILEID_INO64_GEN) } else { (2 * WORDS, FILEID_INO64_GEN_PARENT) };
    if *max_len < 0 || (*max_len as usize) < need {
        *max_len = need as c_int;
        return FILEID_INVALID;
    }
    // SAFETY: the buffer has *max_len >= need words (checked above).
    let fh = unsafe { core::slice::from_raw_parts_mut(fh, need) };
    put(&mut fh[..WORDS], inode);
    if let Some(p) = parent {
        put(&mut fh[WORDS..], p);
    }
    *max_len = need as c_int;
    ty
}

/// The dentry of the inode named by words `w[0..3]` of a handle.
fn dentry_of(sb: &SuperBlock, w: &[u32]) -> *mut bindings::dentry {
    let ino = w[0] as u64 | (w[1] as u64) << 32;
    let gen = w[2];
    // a handle is user input: any ino may come back; the engine answers a
    // free or out-of-range one with an error, which is a stale handle
    let inode = match iget_linked(sb, ino) {
        Ok(i) => i,
        Err(e) if e == ENOMEM => return err_ptr(ENOMEM),
        Err(_) => return err_ptr(estale()),
    };
    if inode.generation() != gen {
        return err_ptr(estale());
    }
    obtain_alias(inode)
}

/// `namei::iget` for a handle, except that an inode with no links is
/// instantiated only if it is already in use (an unlinked file still open
/// through this mount); otherwise it is an orphan waiting to be reaped, and
/// its handle is stale. On a read-only mount this is what keeps orphans
/// unreachable, so that `mount -o remount,rw` can free them (`Fs::remount_rw`).
fn iget_linked(sb: &SuperBlock, ino: u64) -> Result<ARef<Inode>> {
    match sb.iget_locked(ino)? {
        Cached::Live(i) => Ok(i),
        Cached::New(mut n) => {
            // on error, dropping `n` fails the new inode (iget_failed)
            let di = FsInfo::of(sb)?.with_fs(Op::Inode, |fs| fs.read_inode(ino))?;
            if di.nlink == 0 {
                return Err(estale());
            }
            n.init(&crate::inode::attrs_of(&di), &crate::namei::ops_for(di.mode, di.rdev));
            Ok(n.publish())
        }
    }
}

/// The handle's words as a slice, or None if it is not one of ours.
///
/// # Safety
/// `fid` points to `len` u32 words.
unsafe fn words<'a>(fid: *mut bindings::fid, len: c_int, ty: c_int) -> Option<&'a [u32]> {
    let need = match ty {
        FILEID_INO64_GEN => WORDS,
        FILEID_INO64_GEN_PARENT => 2 * WORDS,
        _ => return None,
    };
    if len < 0 || (len as usize) < need {
        return None;
    }
    // SAFETY: per the function's contract.
    Some(unsafe { core::slice::from_raw_parts(fid.cast::<u32>(), need) })
}

unsafe extern "C" fn fh_to_dentry(sb: *mut bindings::super_block, fid: *mut bindings::fid, len: c_int, ty: c_int) -> *mut bindings::dentry {
    // SAFETY: exportfs hands us the handle it read and a live super_block.
    let (Some(w), sb) = (unsafe { words(fid, len, ty) }, unsafe { SuperBlock::from_raw(sb) }) else {
        return core::ptr::null_mut();
    };
    dentry_of(sb, &w[..WORDS])
}

unsafe extern "C" fn fh_to_parent(sb: *mut bindings::super_block, fid: *mut bindings::fid, len: c_int, ty: c_int) -> *mut bindings::dentry {
    // SAFETY: as in fh_to_dentry.
    let (Some(w), sb) = (unsafe { words(fid, len, ty) }, unsafe { SuperBlock::from_raw(sb) }) else {
        return core::ptr::null_mut();
    };
    if ty != FILEID_INO64_GEN_PARENT {
        return core::ptr::null_mut();
    }
    dentry_of(sb, &w[WORDS..])
}

unsafe extern "C" fn get_parent(child: *mut bindings::dentry) -> *mut bindings::dentry {
    // SAFETY: exportfs passes a positive directory dentry it holds.
    let child = unsafe { Dentry::from_raw(child) };
    let Ok(dir) = child.positive() else { return err_ptr(ENOENT) };
    let sb = dir.sb();
    let parent = match FsInfo::of(sb).and_then(|i| i.with_fs(Op::Inode, |fs| fs.read_inode(dir.ino()))) {
        Ok(di) => di.parent,
        Err(e) => return err_ptr(e),
    };
    match crate::namei::iget(sb, parent) {
        Ok(p) => obtain_alias(p),
        Err(e) => err_ptr(e),
    }
}

/// `super_block.s_export_op`.
pub(crate) static EXPORT_OPS: bindings::export_operations = bindings::export_operations {
    encode_fh: Some(encode_fh),
    fh_to_dentry: Some(fh_to_dentry),
    fh_to_parent: Some(fh_to_parent),
    get_parent: Some(get_parent),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};
