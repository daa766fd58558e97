// SPDX-License-Identifier: GPL-2.0
//! The filesystem type, mounting (fs_context), and superblock operations.
//!
//! Mount order (fill_super): claim the dax_device as its holder, map it,
//! mount the engine on that mapping (validates the superblock, rolls back an
//! interrupted transaction, reaps orphans), then instantiate the root inode.
//! Unmount order (put_super, after the VFS evicted every inode): engine
//! unmount (clean flag), then release the dax_device.

use crate::bindings;
use crate::dax::DaxClaim;
use crate::engine;
use crate::mount::{DaxMode, FsInfo, LockStats, MountOpts, Op, Stats};
use crate::namei;
use crate::rmap::PfnRmap;
use crate::vfs::{to_c, to_kerr, NewSuperBlock, RwSem, SbParams, SuperBlock};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use kernel::ffi::{c_char, c_int};
use kernel::prelude::*;
use kernel::types::Opaque;

/// Superblock magic reported by statfs (`f_type`): "FeRR".
pub(crate) const FERROFS_MAGIC: u64 = 0x4665_5252;

/// The module's debugfs directory (`/sys/kernel/debug/ferrofs`).
static DEBUG_ROOT: AtomicPtr<bindings::dentry> = AtomicPtr::new(core::ptr::null_mut());

/// The `file_system_type`, in writable memory (the VFS links it into lists).
struct FsType(Opaque<bindings::file_system_type>);
// SAFETY: the VFS serialises all access to the structure (file_systems_lock).
unsafe impl Sync for FsType {}

static FS_TYPE: FsType = FsType(Opaque::new(bindings::file_system_type {
    name: c"ferrofs".as_ptr().cast(),
    // FS_ALLOW_IDMAP: every owner ferrofs reads or writes goes through the
    // idmap the VFS passes (inode_init_owner, setattr_prepare/setattr_copy,
    // generic_fillattr, the POSIX ACL helpers), so idmapped mounts work.
    fs_flags: (bindings::FS_REQUIRES_DEV | bindings::FS_ALLOW_IDMAP) as c_int,
    init_fs_context: Some(init_fs_context),
    kill_sb: Some(bindings::kill_block_super),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
}));

pub(crate) fn register(module: &'static ThisModule) -> Result {
    crate::vfs::create_inode_cache()?;
    let t = FS_TYPE.0.get();
    // SAFETY: not yet registered, so nobody else looks at the structure; the
    // module pointer is ours and outlives the registration.
    unsafe { (*t).owner = module.as_ptr().cast() };
    // SAFETY: creates our top-level debugfs directory (an ERR_PTR when
    // debugfs is off, which every debugfs call accepts).
    DEBUG_ROOT.store(unsafe { bindings::debugfs_create_dir(c"ferrofs".as_ptr().cast(), core::ptr::null_mut()) }, Ordering::Relaxed);
    // SAFETY: adds fail_media_load under it (removed with it).
    unsafe { bindings::ferrofs_fault_debugfs(DEBUG_ROOT.load(Ordering::Relaxed)) };
    // SAFETY: t points to a static file_system_type.
    let r = unsafe { bindings::register_filesystem(t) };
    if r != 0 {
        // SAFETY: removes what we created above.
        unsafe { bindings::debugfs_remove(DEBUG_ROOT.swap(core::ptr::null_mut(), Ordering::Relaxed)) };
        crate::vfs::destroy_inode_cache();
        return Err(Error::from_errno(r));
    }
    Ok(())
}

pub(crate) fn unregister() {
    // SAFETY: registered in `register`; module exit runs once, after every
    // mount is gone (so no per-mount directory remains).
    unsafe {
        bindings::unregister_filesystem(FS_TYPE.0.get());
        bindings::debugfs_remove(DEBUG_ROOT.swap(core::ptr::null_mut(), Ordering::Relaxed));
    }
    crate::vfs::destroy_inode_cache();
}

/// Creates `/sys/kernel/debug/ferrofs/<dev>/` with the mount's counters.
fn debugfs_add(info: &FsInfo) {
    let mut name = [0u8; 33];
    name[..32].copy_from_slice(&info.dev);
    name[31] = 0;
    // SAFETY: name is NUL-terminated; the parent may be an ERR_PTR (debugfs
    // then returns ERR_PTRs that the remaining calls ignore).
    let dir = unsafe { bindings::debugfs_create_dir(name.as_ptr().cast(), DEBUG_ROOT.load(Ordering::Relaxed)) };
    info.debug_dir.store(dir, Ordering::Relaxed);
    let counters: [(&core::ffi::CStr, &AtomicU64); 7] = [
        (c"pmd_faults", &info.stats.pmd_faults),
        (c"pmd_fallbacks", &info.stats.pmd_fallbacks),
        (c"pte_faults", &info.stats.pte_faults),
        (c"poisoned_blocks", &info.stats.poisoned_blocks),
        (c"memory_failures", &info.stats.memory_failures),
        (c"media_errors", &info.stats.media_errors),
        (c"rmap_unrecorded", &info.stats.rmap_unrecorded),
    ];
    for (n, v) in counters {
        // SAFETY: the FsInfo is pinned and outlives the files (removed in
        // free_info before it is dropped); AtomicU64 has u64's layout.
        unsafe { bindings::debugfs_create_u64(n.as_ptr().cast(), 0o444, dir, v.as_ptr()) };
    }
    // SAFETY: as above.
    unsafe { bindings::debugfs_create_u64(c"map_cache_hits".as_ptr().cast(), 0o444, dir, info.locks.map_cache_hits.as_ptr()) };
    // locks/<class>_shared and locks/<class>_exclusive: acquisitions of the
    // engine lock per operation class
    // SAFETY: as for the mount's directory.
    let ldir = unsafe { bindings::debugfs_create_dir(c"locks".as_ptr().cast(), dir) };
    for (op, sh, ex) in info.locks.classes() {
        for (suffix, v) in [("_shared", sh), ("_exclusive", ex)] {
            let mut n = [0u8; 32];
            let (a, b) = (op.name().as_bytes(), suffix.as_bytes());
            n[..a.len()].copy_from_slice(a);
            n[a.len()..a.len() + b.len()].copy_from_slice(b);
            // SAFETY: n is NUL-terminated (names are < 31 bytes); the
            // counters live in the pinned FsInfo, which outlives the files.
            unsafe { bindings::debugfs_create_u64(n.as_ptr().cast(), 0o444, ldir, v.as_ptr()) };
        }
    }
    // SAFETY: as above; the pfn lives in the pinned FsInfo's claim and is
    // never written after mount.
    unsafe { bindings::debugfs_create_x64(c"base_pfn".as_ptr().cast(), 0o444, dir, info.dax.pfn_ptr()) };
    // SAFETY: as above; the file's private data is the pinned FsInfo.
    unsafe {
        bindings::debugfs_create_file(
            c"rmap".as_ptr().cast(),
            0o444,
            dir,
            (info as *const FsInfo).cast_mut().cast(),
            &crate::mm_glue::RMAP_FOPS.0,
        )
    };
}

static CONTEXT_OPS: bindings::fs_context_operations = bindings::fs_context_operations {
    free: Some(fc_free),
    parse_param: Some(fc_parse_param),
    get_tree: Some(fc_get_tree),
    reconfigure: Some(fc_reconfigure),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

unsafe extern "C" fn init_fs_context(fc: *mut bindings::fs_context) -> c_int {
    let opts = match KBox::new(MountOpts { dax: DaxMode::Always, norecovery: false, quota: 0 }, GFP_KERNEL) {
        Ok(b) => b,
        Err(_) => return ENOMEM.to_errno(),
    };
    // SAFETY: fc is the context being set up; fs_private/ops are ours.
    unsafe {
        (*fc).fs_private = KBox::into_raw(opts).cast();
        (*fc).ops = &CONTEXT_OPS;
    }
    0
}

unsafe extern "C" fn fc_free(fc: *mut bindings::fs_context) {
    // SAFETY: fs_private is NULL or the KBox<MountOpts> from init_fs_context.
    unsafe {
        let p = (*fc).fs_private.cast::<MountOpts>();
        if !p.is_null() {
            drop(KBox::from_raw(p));
            (*fc).fs_private = core::ptr::null_mut();
        }
    }
}

fn cstr_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: the VFS passes NUL-terminated parameter strings.
    unsafe { kernel::str::CStr::from_char_ptr(p) }.as_bytes()
}

unsafe extern "C" fn fc_parse_param(fc: *mut bindings::fs_context, param: *mut bindings::fs_parameter) -> c_int {
    // SAFETY: fc and param are valid for this call; fs_private is our MountOpts.
    let (opts, key, ty, val) = unsafe {
        (
            &mut *(*fc).fs_private.cast::<MountOpts>(),
            cstr_bytes((*param).key),
            (*param).type_(),
            (*param).__bindgen_anon_1.string,
        )
    };
    if key == b"norecovery" && ty == bindings::fs_value_type_fs_value_is_flag {
        opts.norecovery = true;
        return 0;
    }
    if let Some(bits) = crate::quota::parse_option(key).filter(|_| ty == bindings::fs_value_type_fs_value_is_flag) {
        if !crate::quota::SUPPORTED && bits != 0 {
            pr_err!("ferrofs: {} needs disk quota support, which this kernel was built without (CONFIG_QUOTA)\n",
                core::str::from_utf8(key).unwrap_or("?"));
            return EINVAL.to_errno();
        }
        opts.quota |= bits;
        return 0;
    }
    if key != b"dax" {
        return ENOPARAM.to_errno();
    }
    let value = if ty == bindings::fs_value_type_fs_value_is_flag { &b"always"[..] } else { cstr_bytes(val) };
    match value {
        b"always" => {
            opts.dax = DaxMode::Always;
            0
        }
        b"inode" | b"never" => {
            pr_err!(
                "ferrofs: dax={} is not supported: ferrofs keeps file data only on pmem and accesses it through DAX\n",
                core::str::from_utf8(value).unwrap_or("?")
            );
            EINVAL.to_errno()
        }
        _ => {
            pr_err!("bad value for mount option dax (want always)\n");
            EINVAL.to_errno()
        }
    }
}

const ENOPARAM: Error = kernel::error::code::ENOPARAM;

unsafe extern "C" fn fc_reconfigure(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: fc->root is the mounted root during reconfigure.
    let sb = unsafe { SuperBlock::from_raw((*(*fc).root).d_sb) };
    // SAFETY: reading the requested flags of a valid context; fs_private is
    // the MountOpts init_fs_context made for this request (parse_param
    // filled it from the remount's options).
    let (flags, mask, new) = unsafe { ((*fc).sb_flags, (*fc).sb_flags_mask, *(*fc).fs_private.cast::<MountOpts>()) };
    let ro = bindings::FERROFS_SB_RDONLY as usize;
    // Quota options given on a remount must be the ones the mount has (an
    // option left out keeps its state, so `-o remount,ro` works): the
    // quota layer's state is set up at mount and by quotaon.
    let Ok(info) = FsInfo::of(sb) else { return EIO.to_errno() };
    if new.quota & !info.opts.quota != 0 {
        crate::vfs::fs_err!(sb.id(), "cannot turn on {} on remount; unmount and mount with it\n",
            crate::quota::names(new.quota & !info.opts.quota));
        return EINVAL.to_errno();
    }
    if mask as usize & ro == 0 || (flags as usize & ro != 0) == sb.is_read_only() {
        return 0; // the read-only state does not change
    }
    // The VFS holds s_umount exclusively and, from here to the end of the
    // transition, keeps writers out (sb_start_ro_state_change or the
    // remount-ro writer check).
    to_c(if flags as usize & ro != 0 { remount_ro(sb) } else { remount_rw(sb, new) })
}

/// ro -> rw: the engine marks the superblock dirty and reaps the orphans a
/// crash left (the read-only mount skipped both). Refused after
/// `-o ro,norecovery` (EINVAL: the journal was not recovered), with unknown
/// read-only-compatible features or when shut down.
fn remount_rw(sb: &SuperBlock, new: MountOpts) -> Result {
    const NORECOVERY: &str = "mounted with norecovery, so an interrupted transaction may still be in the journal and writing over it would make it unrecoverable; unmount and mount without norecovery";
    let dev = sb.id();
    let info = FsInfo::of(sb)?;
    if info.opts.norecovery {
        crate::vfs::fs_err!(dev, "cannot remount read-write: {}\n", NORECOVERY);
        return Err(EINVAL);
    }
    if new.norecovery {
        crate::vfs::fs_err!(dev, "norecovery needs a read-only mount (-o ro,norecovery)\n");
        return Err(EINVAL);
    }
    if info.is_shut_down() {
        crate::vfs::fs_err!(dev, "cannot remount read-write: the filesystem is shut down; unmount it and mount again\n");
        return Err(EIO);
    }
    let t = now_secs();
    let r = info.with_fs_mut(Op::Other, |fs| {
        Ok(match fs.write_blocker() {
            Some(b) => Err(b),
            None => Ok(fs.remount_rw(t)?),
        })
    });
    match r {
        Ok(Ok(reaped)) => {
            crate::vfs::fs_info!(dev, "remounted read-write, {} orphan inodes reaped\n", reaped);
            crate::quota::resume(sb);
            // a read-only mount loaded no quota file. Writers may start as
            // soon as the super_block is writable, so no recount here: the
            // files' usage is what they recorded (the log line says so)
            crate::quota::on_at_mount(sb, info, false);
            Ok(())
        }
        Ok(Err(engine::WriteBlocker::NoRecovery)) => {
            crate::vfs::fs_err!(dev, "cannot remount read-write: {}\n", NORECOVERY);
            Err(EINVAL)
        }
        Ok(Err(engine::WriteBlocker::RoCompat(bits))) => {
            crate::vfs::fs_err!(dev, "cannot remount read-write: unknown read-only-compatible features {:#x}\n", bits);
            Err(EROFS)
        }
        Err(e) => {
            crate::vfs::fs_err!(dev, "cannot remount read-write ({:?}); the filesystem stays read-only\n", e);
            Err(e)
        }
    }
}

/// `super_operations.freeze_fs` (FIFREEZE, and the kernel-held freeze of
/// FS_IOC_SHUTDOWN's default mode). freeze_super has already stopped
/// writers and write faults, written back every inode and dirty DAX entry
/// (sync_fs wrote the dquots), and waited for internal writers (an
/// unlinked inode being freed, `evict`). Every engine transaction is
/// durable when it returns, so what is left is the superblock: marked
/// clean (`Fs::quiesce`), so that a snapshot or copy of the frozen device
/// mounts without recovery, even read-only, as a frozen XFS or ext4 does.
/// No unfreeze_fs: the first transaction after the thaw marks it dirty
/// again in its own commit.
unsafe extern "C" fn freeze_fs(sbp: *mut bindings::super_block) -> c_int {
    // SAFETY: freeze_super calls freeze_fs on a live super_block, with
    // s_umount held.
    let sb = unsafe { SuperBlock::from_raw(sbp) };
    let Ok(info) = FsInfo::of(sb) else { return EIO.to_errno() };
    if info.is_shut_down() {
        // nothing can be written, and nothing needs to be
        return 0;
    }
    to_c(info.with_fs_mut(Op::Other, |fs| fs.quiesce(now_secs())).inspect_err(|e| {
        crate::vfs::fs_err!(sb.id(), "cannot freeze: marking the filesystem clean failed ({:?})\n", e);
    }))
}

/// rw -> ro: lazily kept times reach the engine (sync_filesystem), then the
/// engine leaves the media as a clean unmount does and refuses writes.
/// Unlinked files still open make the VFS refuse the remount (EBUSY) before
/// it gets here, unless forced; their orphans then wait for the next
/// writable mount.
fn remount_ro(sb: &SuperBlock) -> Result {
    // SAFETY: the VFS holds s_umount (exclusively) during reconfigure, which
    // sync_filesystem requires.
    let r = unsafe { bindings::sync_filesystem(sb.as_ptr()) };
    if r != 0 {
        crate::vfs::fs_err!(sb.id(), "cannot remount read-only: writing back inodes failed ({})\n", r);
        return Err(Error::from_errno(r));
    }
    crate::quota::suspend(sb)?;
    let info = FsInfo::of(sb)?;
    if info.is_shut_down() {
        // nothing can be written; the next mount recovers
        return Ok(());
    }
    info.with_fs_mut(Op::Other, |fs| fs.remount_ro(now_secs())).inspect_err(|e| {
        crate::vfs::fs_err!(sb.id(), "cannot remount read-only: marking the filesystem clean failed ({:?})\n", e);
        // still read-write: quotas back on
        crate::quota::resume(sb);
    })?;
    crate::vfs::fs_info!(sb.id(), "remounted read-only, clean on media\n");
    Ok(())
}

unsafe extern "C" fn fc_get_tree(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: fc is valid; fill_super has the signature get_tree_bdev wants.
    unsafe { bindings::get_tree_bdev(fc, Some(fill_super)) }
}

unsafe extern "C" fn fill_super(sbp: *mut bindings::super_block, fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: the VFS gives us a new, locked super_block for this call.
    let sb = unsafe { NewSuperBlock::from_raw(sbp) };
    // SAFETY: fs_private is our MountOpts (init_fs_context).
    let opts = unsafe { *(*fc).fs_private.cast::<MountOpts>() };
    to_c(fill_super_inner(sb, opts))
}

fn fill_super_inner(sb: &NewSuperBlock, opts: MountOpts) -> Result {
    if !sb.set_blocksize(engine::BLOCK_SIZE as u32) {
        crate::vfs::fs_err!(sb.id(), "device does not support {}-byte blocks\n", engine::BLOCK_SIZE);
        return Err(EINVAL);
    }
    let dax = DaxClaim::claim(sb, &crate::mm_glue::HOLDER_OPS)?;
    let read_only = sb.is_read_only();
    let time = now_secs();
    if opts.norecovery && !read_only {
        crate::vfs::fs_err!(sb.id(), "norecovery needs a read-only mount (-o ro,norecovery)\n");
        return Err(EINVAL);
    }
    // DAX stores do not go through the block layer, so its write protection
    // (blockdev --setro) does not stop them: a mount that has to recover
    // (roll back, reap orphans) must not start on a read-only device. As
    // XFS and ext4 do, refuse it; norecovery looks without recovering.
    // SAFETY: s_bdev is the device get_tree_bdev opened for this super_block.
    let dev_ro = unsafe { bindings::ferrofs_bdev_read_only(sb.bdev()) };
    if dev_ro && !opts.norecovery {
        match engine::Fs::needs_recovery(dax.media()) {
            Ok(false) => {}
            Ok(true) => {
                crate::vfs::fs_err!(sb.id(), "cannot mount: recovery needed (not cleanly unmounted) but the device is read-only; -o ro,norecovery mounts it without recovery\n");
                return Err(EROFS);
            }
            Err(e) => {
                explain_mount_error(sb, e);
                return Err(to_kerr(e));
            }
        }
    }
    let fs = if opts.norecovery {
        engine::Fs::mount_norecovery(dax.media(), time)
    } else {
        engine::Fs::mount(dax.media(), &engine::MountOptions { read_only, time })
    }
    .map_err(|e| {
        explain_mount_error(sb, e);
        to_kerr(e)
    })?;
    let geo = fs.statfs();
    let uuid = fs.superblock().uuid;
    let root_ino = fs.root_ino();
    let mut bad = 0u64;
    let _ = fs.bad_blocks(&mut |_, n| bad = bad.saturating_add(n));
    let mut dev = [0u8; 32];
    let id = sb.id().as_bytes();
    dev[..id.len().min(31)].copy_from_slice(&id[..id.len().min(31)]);
    let info: Pin<KBox<FsInfo>> = KBox::pin_init(
        pin_init!(FsInfo {
            fs <- RwSem::new_engine_lock(Some(fs)),
            map_epoch: AtomicU64::new(1),
            locks: LockStats::default(),
            rmap <- kernel::new_mutex!(PfnRmap::new(), "ferrofs_rmap"),
            dax,
            opts,
            dev,
            stats: Stats { poisoned_blocks: AtomicU64::new(bad), ..Stats::default() },
            debug_dir: AtomicPtr::new(core::ptr::null_mut()),
            shut_down: AtomicBool::new(false),
        }),
        GFP_KERNEL,
    )?;
    sb.set_params(&SbParams {
        magic: FERROFS_MAGIC,
        ops: &SUPER_OPS,
        export_ops: &crate::export::EXPORT_OPS,
        xattr: &crate::xattr::HANDLERS.0,
        max_bytes: engine::MAX_BYTES as i64,
        posix_acl: true,
        uuid,
    });
    crate::quota::setup(sb);
    FsInfo::install(sb, info);
    let root = match namei::iget(sb, root_ino) {
        Ok(i) => i,
        Err(e) => {
            // A root inode that is not there is a corrupt filesystem, not a
            // missing file: EUCLEAN, like every other damaged structure.
            let e = if e == ENOENT { crate::vfs::code::euclean() } else { e };
            crate::vfs::fs_err!(sb.id(), "cannot read the root inode {} ({:?}); run fsck.ferrofs\n", root_ino, e);
            free_info(sb);
            return Err(e);
        }
    };
    // A root that is not a directory would mount here and fail later in the
    // VFS with ENOTDIR and no word why: it is a damaged inode.
    if !root.is_dir() {
        crate::vfs::fs_err!(sb.id(), "root inode {} is not a directory (mode {:o}); run fsck.ferrofs\n", root_ino, root.mode());
        drop(root);
        free_info(sb);
        return Err(crate::vfs::code::euclean());
    }
    if let Err(e) = sb.make_root(root) {
        free_info(sb);
        return Err(e);
    }
    if let Ok(info) = FsInfo::of(sb) {
        debugfs_add(info);
        if !read_only && info.opts.quota != 0 {
            // before anyone can use the filesystem: the recount is exact
            crate::quota::on_at_mount(sb, info, true);
        }
    }
    crate::vfs::fs_info!(sb.id(), "mounted{}, dax=always, {} blocks, {} free\n",
        if read_only { " read-only" } else { "" },
        geo.blocks,
        geo.free_blocks
    );
    Ok(())
}

/// Unmounts the engine (if still mounted) and frees the FsInfo, which
/// releases the dax_device claim.
fn free_info(sb: &SuperBlock) {
    let Some(info) = FsInfo::release(sb) else { return };
    // SAFETY: removes the mount's debugfs directory (NULL or an ERR_PTR are
    // accepted); its files point into the FsInfo, which is still alive.
    unsafe { bindings::debugfs_remove(info.debug_dir.swap(core::ptr::null_mut(), Ordering::Relaxed)) };
    if let Some(fs) = info.fs.write().take() {
        if let Err(e) = fs.unmount(now_secs()) {
            crate::vfs::fs_err!(sb.id(), "unmount failed: {:?}\n", e);
        }
    }
    let orphans = info.stats.orphans_left.load(Ordering::Relaxed);
    if orphans > 0 {
        crate::vfs::fs_info!(sb.id(), "{} unlinked inodes not freed after the shutdown; the next mount frees them\n", orphans);
    }
    drop(info); // releases the dax_device claim
}

static SUPER_OPS: bindings::super_operations = bindings::super_operations {
    alloc_inode: Some(crate::vfs::alloc_inode),
    free_inode: Some(crate::vfs::free_inode),
    put_super: Some(put_super),
    statfs: Some(statfs),
    show_options: Some(show_options),
    evict_inode: Some(crate::inode::evict_inode),
    write_inode: Some(crate::inode::write_inode),
    sync_fs: Some(crate::quota::sync_fs),
    freeze_fs: Some(freeze_fs),
    #[cfg(CONFIG_QUOTA)]
    quota_read: Some(crate::quota::quota_read),
    #[cfg(CONFIG_QUOTA)]
    quota_write: Some(crate::quota::quota_write),
    #[cfg(CONFIG_QUOTA)]
    get_dquots: Some(crate::quota::get_dquots),
    // SAFETY: all-zero is a valid value for the remaining fields.
    ..unsafe { core::mem::zeroed() }
};

unsafe extern "C" fn put_super(sbp: *mut bindings::super_block) {
    // SAFETY: the VFS calls put_super once on a live super_block.
    let sb = unsafe { SuperBlock::from_raw(sbp) };
    // first: the quota layer writes its last dquots through the engine and
    // drops the quota files' inodes
    crate::quota::off_all(sb);
    free_info(sb);
    crate::vfs::fs_info!(sb.id(), "unmounted\n");
}

unsafe extern "C" fn statfs(dentry: *mut bindings::dentry, buf: *mut bindings::kstatfs) -> c_int {
    // SAFETY: dentry is live for the call and pins its super_block.
    let sb = unsafe { SuperBlock::from_raw((*dentry).d_sb) };
    let Ok(info) = FsInfo::of(sb) else { return EIO.to_errno() };
    let st = match info.with_fs(Op::Statfs, |fs| Ok((fs.statfs(), fsid_of(&fs.superblock().uuid)))) {
        Ok(s) => s,
        Err(e) => return e.to_errno(),
    };
    let (st, fsid) = st;
    // SAFETY: buf is a valid kstatfs for the call.
    unsafe {
        (*buf).f_type = FERROFS_MAGIC as _;
        (*buf).f_bsize = engine::BLOCK_SIZE as _;
        (*buf).f_frsize = engine::BLOCK_SIZE as _;
        (*buf).f_blocks = st.blocks;
        (*buf).f_bfree = st.free_blocks;
        (*buf).f_bavail = st.avail_blocks;
        // saturating: both come from superblock counters a damaged image
        // may hold anywhere up to 2^64-1 (fsck corrects them)
        (*buf).f_files = st.files.saturating_add(st.files_free);
        (*buf).f_ffree = st.files_free;
        (*buf).f_namelen = st.name_max as _;
        (*buf).f_fsid.val = [fsid as u32 as i32, (fsid >> 32) as u32 as i32];
    }
    // SAFETY: the dentry is live for the call; its inode, if any, is a
    // ferrofs inode it pins.
    let inode = unsafe { crate::vfs::Dentry::from_raw(dentry) }.positive().ok();
    if let Some(i) = inode.filter(|i| i.state().flags() & engine::IFLAG_PROJINHERIT != 0) {
        // SAFETY: buf is the kstatfs of this call, ours to fill, and nothing
        // else refers to it meanwhile.
        crate::quota::statfs_project(sb, i.state().projid(), unsafe { &mut *buf });
    }
    0
}

unsafe extern "C" fn show_options(m: *mut bindings::seq_file, root: *mut bindings::dentry) -> c_int {
    // SAFETY: m is a valid seq_file for the call.
    unsafe { bindings::__seq_puts(m, c",dax=always".as_ptr().cast()) };
    // SAFETY: the mount being shown pins root and its super_block.
    let sb = unsafe { SuperBlock::from_raw((*root).d_sb) };
    if FsInfo::of(sb).is_ok_and(|i| i.opts.norecovery) {
        // SAFETY: as above.
        unsafe { bindings::__seq_puts(m, c",norecovery".as_ptr().cast()) };
    }
    if let Ok(i) = FsInfo::of(sb) {
        // SAFETY: as above; a static string.
        unsafe { bindings::__seq_puts(m, crate::quota::show(i.opts.quota).as_ptr().cast()) };
    }
    0
}

/// Wall-clock seconds, for the superblock's mount and write times.
pub(crate) fn now_secs() -> i64 {
    // SAFETY: reads the realtime clock.
    unsafe { bindings::ktime_get_real_seconds() }
}

fn fsid_of(uuid: &[u8; 16]) -> u64 {
    let mut a = [0u8; 8];
    for (i, b) in uuid.iter().enumerate() {
        a[i % 8] ^= b;
    }
    u64::from_le_bytes(a)
}

/// One dmesg line naming the device and why the engine refused to mount.
fn explain_mount_error(sb: &SuperBlock, e: engine::Error) {
    let dev = sb.id();
    match e {
        engine::Error::BadMagic => crate::vfs::fs_err!(dev, "not a ferrofs filesystem (bad superblock magic)\n"),
        engine::Error::BadVersion { version } => {
            crate::vfs::fs_err!(dev, "unsupported on-disk format version {}\n", version)
        }
        engine::Error::UnsupportedFeature { incompat } => crate::vfs::fs_err!(dev, "unknown incompatible feature bits {:#x}; refusing to mount\n", incompat
        ),
        engine::Error::DeviceTooSmall { need_blocks, have_blocks } => crate::vfs::fs_err!(dev, "filesystem needs {} blocks but the device has only {} (device too small)\n", need_blocks, have_blocks
        ),
        engine::Error::Corrupt { what, block } => crate::vfs::fs_err!(dev, "cannot mount: {} is corrupt at block {} (bad checksum or contents); run fsck.ferrofs\n", what, block
        ),
        engine::Error::Io { block } => crate::vfs::fs_err!(dev, "media error reading block {}\n", block),
        other => crate::vfs::fs_err!(dev, "cannot mount: {:?}\n", other),
    }
}
