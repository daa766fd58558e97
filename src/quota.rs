// SPDX-License-Identifier: GPL-2.0
//! Disk quotas: the VFS quota layer (fs/quota) over visible quota files.
//!
//! As on ext2, the quota files are ordinary files in the filesystem
//! (`aquota.user`, `aquota.group`, formats vfsv0/vfsv1) that `quotacheck`
//! writes and `quotaon` hands to the kernel. Stock quota-tools manage such
//! files on any filesystem whose mount options say `usrquota`/`grpquota`
//! (Documentation/quota-plan.md, §1), so ferrofs needs no tool of its own.
//!
//! Project quota (`prjquota`, plan step 7) has no such tool: quota-tools
//! keep project files only for filesystems they know by name. So ferrofs
//! makes `/aquota.project` itself at mount, loads it, and recounts it as it
//! does the others. `xfs_quota` then manages limits through quotactl alone.
//! Each inode's project ID is in the engine (set by FS_IOC_FSSETXATTR,
//! inherited from PROJINHERIT directories). `get_projid` reads it from the
//! inode's state, and `transfer_project` moves usage when it changes.
//!
//! What this file provides (steps 2 and 3 of the plan): the mount options,
//! the `quotactl` operations, the quota layer's file I/O (`quota_read`,
//! `quota_write`), the per-inode dquot pointers, the quota side of
//! unmount, remount and sync, the inode charges (`init`, `alloc_inode`,
//! `free_inode`, `setattr`; their callers are the create paths through
//! `UnhashedInode::charge_quota`, eviction and setattr) and the block
//! charges (`charge_blocks`, `settle_blocks`, called by
//! `FsInfo::with_fs_mut_charged` around every section that can change a
//! file's block count; Documentation/quota-plan.md says how), and the
//! quota files turned on at mount with usage recounted (`on_at_mount`).
//!
//! Locking: the quota layer calls `quota_read`/`quota_write` holding its
//! own locks (`dq_lock`, `dqio_sem`), sometimes inside another inode's
//! `i_rwsem` (setattr). They take the engine lock and nothing else, so the
//! order is `i_rwsem > dq_lock > dqio_sem > engine lock`, and no engine
//! section may call into the quota layer's sleeping functions.
//!
//! A loaded quota file is `S_IMMUTABLE | S_NOATIME` in memory (not on
//! media, so a crash leaves nothing to undo by hand), as ext2 and ext4 make
//! theirs: users cannot open it for writing, truncate or remove it
//! while the quota layer owns its contents and size.

use crate::bindings;
use crate::engine::{self, Media};
use crate::mount::{info_of, FsInfo, Op};
use crate::vfs::{Inode, NewSuperBlock, SuperBlock};
use kernel::ffi::{c_char, c_int};
use kernel::prelude::*;

/// A quota type turned on by a mount option, as a bit (`1 << type`).
pub(crate) const USR: u8 = 1 << bindings::USRQUOTA;
pub(crate) const GRP: u8 = 1 << bindings::GRPQUOTA;
pub(crate) const PRJ: u8 = 1 << bindings::PRJQUOTA;

/// The quota types, in the quota layer's numbering.
const TYPES: [c_int; 3] = [bindings::USRQUOTA as c_int, bindings::GRPQUOTA as c_int, bindings::PRJQUOTA as c_int];

const BLOCK: u64 = engine::BLOCK_SIZE as u64;

/// What a quota mount option turns on (`None`: not a quota option).
/// `noquota` is accepted and turns nothing on, as on ext2 and ext4.
pub(crate) fn parse_option(key: &[u8]) -> Option<u8> {
    match key {
        b"quota" | b"usrquota" => Some(USR),
        b"grpquota" => Some(GRP),
        b"prjquota" => Some(PRJ),
        b"noquota" => Some(0),
        _ => None,
    }
}

/// Whether this kernel has the VFS quota layer (CONFIG_QUOTA).
pub(crate) const SUPPORTED: bool = cfg!(CONFIG_QUOTA);

/// The mount-option names of the types in `bits`, for /proc/mounts (which
/// is how quota-tools decide that a filesystem has quota).
pub(crate) fn show(bits: u8) -> &'static core::ffi::CStr {
    const SHOW: [&core::ffi::CStr; 8] = [
        c"",
        c",usrquota",
        c",grpquota",
        c",usrquota,grpquota",
        c",prjquota",
        c",usrquota,prjquota",
        c",grpquota,prjquota",
        c",usrquota,grpquota,prjquota",
    ];
    SHOW[usize::from(bits & (USR | GRP | PRJ))]
}

/// The mount-option names of the types in `bits`, for messages.
pub(crate) fn names(bits: u8) -> &'static str {
    let s = show(bits).to_bytes();
    core::str::from_utf8(s.get(1..).unwrap_or(b"")).unwrap_or("?")
}

/// The quota files in the root directory, by type (USRQUOTA, GRPQUOTA,
/// PRJQUOTA): the names quotacheck writes (the first two) and mm_glue's
/// ferrofs_quota_on_mount loads. quota-tools keep no project quota file on
/// a filesystem they do not know, so ferrofs creates `aquota.project`
/// itself (`imp::make_project_file`).
const FILES: [&str; 3] = ["aquota.user", "aquota.group", "aquota.project"];

fn type_name(ty: c_int) -> &'static str {
    match ty {
        0 => "user",
        1 => "group",
        _ => "project",
    }
}

/// Installs the quota operations in a new super_block. Every ferrofs
/// mount gets them, so quotactl on a mount without the option explains
/// itself (quota_on) instead of failing with a bare ENOSYS.
pub(crate) fn setup(sb: &NewSuperBlock) {
    #[cfg(CONFIG_QUOTA)]
    // SAFETY: the super_block is new and ours; the table is a static.
    unsafe {
        bindings::ferrofs_sb_set_quota(sb.as_ptr(), &imp::QUOTACTL_OPS.0, &imp::DQUOT_OPS.0)
    };
    #[cfg(not(CONFIG_QUOTA))]
    let _ = sb;
}

/// Writes back and releases the quota files (put_super, before the engine
/// unmounts: the quota layer writes its last dquots through `quota_write`
/// and drops the files' inodes, which evicts them).
pub(crate) fn off_all(sb: &SuperBlock) {
    // SAFETY: put_super runs with s_umount held exclusively, as
    // dquot_disable asserts; it does nothing when no quota is loaded.
    let r = unsafe { bindings::ferrofs_dquot_disable_all(sb.as_ptr()) };
    if r != 0 {
        crate::vfs::fs_err!(sb.id(), "turning quotas off at unmount failed ({}); run quotacheck before the next quotaon\n", r);
    }
}

/// rw -> ro: writes the dquots back and suspends the loaded quota files
/// (the read-only remount keeps them, and `resume` reloads them).
pub(crate) fn suspend(sb: &SuperBlock) -> Result {
    // SAFETY: reconfigure holds s_umount exclusively, as dquot_disable
    // asserts.
    let r = unsafe { bindings::ferrofs_dquot_suspend(sb.as_ptr()) };
    if r < 0 {
        crate::vfs::fs_err!(sb.id(), "cannot remount read-only: suspending quotas failed ({})\n", r);
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// ro -> rw: reloads the quota files suspended by `suspend`. The
/// super_block must already be writable (the quota layer refuses to load
/// a file of a read-only filesystem), so this clears SB_RDONLY first, as
/// ext2 and ext4 do; the VFS sets the same flags when reconfigure returns.
/// Also undoes `suspend` after a read-only remount that failed.
pub(crate) fn resume(sb: &SuperBlock) {
    // SAFETY: reconfigure holds s_umount exclusively (no other writer of
    // s_flags), and the engine has just been made writable.
    let r = unsafe {
        bindings::ferrofs_sb_clear_rdonly(sb.as_ptr());
        bindings::ferrofs_dquot_resume(sb.as_ptr())
    };
    if r < 0 {
        crate::vfs::fs_err!(sb.id(), "quotas could not be turned back on after the read-write remount ({}); run quotaon\n", r);
    }
}

/// `super_operations.sync_fs`: the engine's transactions are durable when
/// they return, so only the quota layer's dirty dquots need writing.
pub(crate) unsafe extern "C" fn sync_fs(sbp: *mut bindings::super_block, _wait: c_int) -> c_int {
    // SAFETY: the VFS calls sync_fs on a live super_block with s_umount held.
    unsafe { bindings::ferrofs_dquot_writeback(sbp) }
}

/// Attaches the dquots of the inode's owner and group (reading the quota
/// files if they are not cached): before anything is charged to it. May
/// sleep and read the quota files, so never inside an engine section.
pub(crate) fn init(inode: &Inode) -> Result {
    // SAFETY: a live, referenced inode; the quota layer locks what it
    // changes.
    let r = unsafe { bindings::ferrofs_dquot_initialize(inode.as_ptr()) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// Charges one inode to the owner and group of `inode` (after `init`):
/// EDQUOT past a hard inode limit (or a soft one past its grace time).
pub(crate) fn alloc_inode(inode: &Inode) -> Result {
    // SAFETY: as in init; only spinlocks and the dirty list are taken.
    let r = unsafe { bindings::ferrofs_dquot_alloc_inode(inode.as_ptr()) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// Gives back the inode charged by `alloc_inode` (a create that failed,
/// or the inode freed at eviction).
pub(crate) fn free_inode(inode: &Inode) {
    // SAFETY: as in alloc_inode.
    unsafe { bindings::ferrofs_dquot_free_inode(inode.as_ptr()) };
}

/// Blocks charged to the inode so far: its `i_blocks`, which only the
/// quota layer's space helpers change once the inode is set up
/// (`inode_add_bytes` / `inode_sub_bytes`, with or without quotas on).
fn charged_blocks(inode: &Inode) -> u64 {
    // SAFETY: a live inode; inode_get_bytes reads under i_lock.
    let bytes = unsafe { bindings::ferrofs_inode_get_bytes(inode.as_ptr()) };
    bytes.max(0) as u64 / BLOCK
}

/// Charges `n` blocks that an allocation is about to add, before it runs:
/// EDQUOT past a hard block limit or a soft one past its grace time
/// (CAP_SYS_RESOURCE is not limited). `settle_blocks` then leaves exactly
/// what the allocation added. Only spinlocks: safe inside an exclusive
/// engine section, which is where it is called, so that nothing else
/// changes the filesystem's usage between the charge and the settling.
pub(crate) fn charge_blocks(inode: &Inode, n: u64) -> Result {
    if n == 0 {
        return Ok(());
    }
    let bytes = i64::try_from(n.saturating_mul(BLOCK)).map_err(|_| crate::vfs::code::edquot())?;
    // SAFETY: a live inode; the quota layer locks what it changes.
    let r = unsafe { bindings::ferrofs_dquot_alloc_space(inode.as_ptr(), bytes) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// Whether `charge_blocks` can refuse anything for `inode`: a quota type is
/// on and the inode is not a quota file. When it cannot, callers skip
/// working out how much a section may add (an extent lookup on every
/// allocating section, faults included); `settle_blocks` still keeps the
/// usage and `i_blocks` exact. Read inside the exclusive section: a
/// `quotaon` racing it only means that one section is not limited.
pub(crate) fn limits_may_apply(inode: &Inode) -> bool {
    // SAFETY: a live inode; reads its flags and its superblock's quota
    // state, which the quota layer changes under its own locks (a stale
    // answer is harmless, see above).
    unsafe { bindings::ferrofs_quota_limits_may_apply(inode.as_ptr()) }
}

/// Makes the inode's charge equal `blocks`, the engine's block count after
/// a change: gives back what was freed or not used of a `charge_blocks`,
/// and charges (without failing: it is done) what grew beyond it. Called
/// in the exclusive engine section that made the change, or under the
/// shared engine lock for a change whose settle is owed (`inode::refresh`),
/// so no change comes in between and it is exact; `None` (the inode could
/// not be read back) gives back `precharged`.
pub(crate) fn settle_blocks(inode: &Inode, blocks: Option<u64>, precharged: u64) {
    let cur = charged_blocks(inode);
    let want = blocks.unwrap_or(cur.saturating_sub(precharged));
    let bytes = |n: u64| n.saturating_mul(BLOCK).min(i64::MAX as u64) as i64;
    // SAFETY: a live inode; only spinlocks are taken.
    unsafe {
        if want > cur {
            bindings::ferrofs_dquot_alloc_space_nofail(inode.as_ptr(), bytes(want - cur));
        } else if want < cur {
            bindings::ferrofs_dquot_free_space(inode.as_ptr(), bytes(cur - want));
        }
    }
}

/// Says (in the kernel log, the first ten times) if the inode's charge is
/// not its block count: some path changed blocks without settling them.
/// Called with the engine lock held, shared or exclusive.
pub(crate) fn check_blocks(inode: &Inode, blocks: u64) {
    static SAID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let charged = charged_blocks(inode);
    if charged != blocks && SAID.fetch_add(1, core::sync::atomic::Ordering::Relaxed) < 10 {
        crate::vfs::fs_err!(inode.sb().id(), "quota: inode {} is charged {} blocks but maps {}; quota usage is off until quotacheck\n",
            inode.ino(), charged, blocks);
    }
}

/// The quota side of a setattr, before the change is made: a new owner or
/// group takes the inode's charges with it (`dquot_transfer`: EDQUOT if
/// the new one is over its limit).
pub(crate) fn setattr(idmap: &crate::vfs::Idmap, inode: &crate::vfs::Locked<'_>, attr: &crate::vfs::IAttr) -> Result {
    // SAFETY: the objects of the setattr being served, the inode locked.
    if !unsafe { bindings::ferrofs_is_quota_modification(idmap.as_ptr(), inode.as_ptr(), attr.as_ptr()) } {
        return Ok(());
    }
    init(inode)?;
    // SAFETY: as above; dquot_transfer moves only what changed.
    let r = unsafe { bindings::ferrofs_dquot_transfer(idmap.as_ptr(), inode.as_ptr(), attr.as_ptr()) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// The quota side of FS_IOC_FSSETXATTR changing the project ID, before the
/// change is made: the inode's blocks and the inode itself move to the new
/// project (EDQUOT if it is over its limit). Nothing moves while project
/// quota is off; the recount at the next `prjquota` mount counts it.
pub(crate) fn transfer_project(inode: &crate::vfs::Locked<'_>, projid: u32) -> Result {
    // SAFETY: a live inode with its i_rwsem held (the caller's guard), as
    // dquot_transfer callers hold it; never inside an engine section.
    let r = unsafe { bindings::ferrofs_dquot_transfer_project(inode.as_ptr(), projid) };
    if r != 0 {
        return Err(Error::from_errno(r));
    }
    Ok(())
}

/// statfs of a PROJINHERIT directory: caps the answer with its project's
/// limits and usage when project quota is enforced (df inside a project
/// shows the project's share, as on ext4 and XFS).
pub(crate) fn statfs_project(sb: &SuperBlock, projid: u32, buf: &mut bindings::kstatfs) {
    // SAFETY: a live super_block and a kstatfs we may write; the quota
    // layer takes and locks the dquot itself.
    unsafe { bindings::ferrofs_statfs_project(sb.as_ptr(), projid, buf) };
}

/// Releases the inode's dquot references (eviction, before clear_inode).
pub(crate) fn drop_inode(inode: &Inode) {
    // SAFETY: the inode is being evicted; dquot_drop only clears and puts
    // its dquot pointers (the release is deferred to the quota worker).
    unsafe { bindings::ferrofs_dquot_drop(inode.as_ptr()) };
}

#[cfg(CONFIG_QUOTA)]
pub(crate) use imp::{get_dquots, on_at_mount, quota_read, quota_write, DquotSlots};

/// Without CONFIG_QUOTA no mount has a quota option (they are refused).
#[cfg(not(CONFIG_QUOTA))]
pub(crate) fn on_at_mount(_sb: &SuperBlock, _info: &FsInfo, _recount: bool) {}

/// Without CONFIG_QUOTA the inode keeps no dquot pointers.
#[cfg(not(CONFIG_QUOTA))]
pub(crate) struct DquotSlots;

#[cfg(not(CONFIG_QUOTA))]
impl DquotSlots {
    pub(crate) const fn new() -> Self {
        DquotSlots
    }
}

#[cfg(CONFIG_QUOTA)]
mod imp {
    use super::*;
    use crate::vfs::Table;
    use kernel::types::Opaque;

    /// The inode's dquot pointers (`i_dquot` of ext2/ext4), which the
    /// quota layer reads and writes under its own locks and RCU through
    /// the pointer `get_dquots` returns. ferrofs never touches them.
    pub(crate) struct DquotSlots(Opaque<[*mut bindings::dquot; bindings::MAXQUOTAS as usize]>);

    // SAFETY: the slots are only reached through `get_dquots` by the quota
    // layer, which serialises them itself (dq_data_lock, RCU).
    unsafe impl Send for DquotSlots {}
    // SAFETY: as above.
    unsafe impl Sync for DquotSlots {}

    impl DquotSlots {
        pub(crate) const fn new() -> Self {
            DquotSlots(Opaque::new([core::ptr::null_mut(); bindings::MAXQUOTAS as usize]))
        }
    }

    /// `super_operations.get_dquots`.
    pub(crate) unsafe extern "C" fn get_dquots(ip: *mut bindings::inode) -> *mut *mut bindings::dquot {
        // SAFETY: the quota layer passes a live ferrofs inode.
        let inode = unsafe { Inode::from_raw(ip) };
        inode.state().dquots.0.get().cast()
    }

    pub(super) static QUOTACTL_OPS: Table<bindings::quotactl_ops> = Table(bindings::quotactl_ops {
        quota_on: Some(quota_on),
        quota_off: Some(quota_off),
        quota_sync: Some(bindings::dquot_quota_sync),
        get_state: Some(bindings::dquot_get_state),
        set_info: Some(bindings::dquot_set_dqinfo),
        get_dqblk: Some(bindings::dquot_get_dqblk),
        get_nextdqblk: Some(bindings::dquot_get_next_dqblk),
        set_dqblk: Some(bindings::dquot_set_dqblk),
        // SAFETY: all-zero is a valid value for the remaining fields.
        ..unsafe { core::mem::zeroed() }
    });

    /// The quota layer's own `dquot_operations` (what ext2 uses), with
    /// `get_projid`, which project quota needs (the quota layer refuses to
    /// load a project file without it).
    pub(super) static DQUOT_OPS: Table<bindings::dquot_operations> = Table(bindings::dquot_operations {
        write_dquot: Some(bindings::dquot_commit),
        acquire_dquot: Some(bindings::dquot_acquire),
        release_dquot: Some(bindings::dquot_release),
        mark_dirty: Some(bindings::dquot_mark_dquot_dirty),
        write_info: Some(bindings::dquot_commit_info),
        alloc_dquot: Some(bindings::dquot_alloc),
        destroy_dquot: Some(bindings::dquot_destroy),
        get_next_id: Some(bindings::dquot_get_next_id),
        get_projid: Some(get_projid),
        // SAFETY: all-zero is a valid value for the remaining fields.
        ..unsafe { core::mem::zeroed() }
    });

    /// `dquot_operations.get_projid`: from the inode's state, which every
    /// refresh from the engine sets (no engine call: the quota layer asks
    /// under its own locks).
    unsafe extern "C" fn get_projid(ip: *mut bindings::inode, out: *mut bindings::kprojid_t) -> c_int {
        // SAFETY: the quota layer passes a live ferrofs inode and a place
        // for the answer.
        let inode = unsafe { Inode::from_raw(ip) };
        // SAFETY: as above.
        unsafe { bindings::ferrofs_make_kprojid(out, inode.state().projid()) };
        0
    }

    /// The loaded quota file of type `ty`, if any.
    fn quota_file<'a>(sb: *mut bindings::super_block, ty: c_int) -> Option<&'a Inode> {
        if !(0..bindings::MAXQUOTAS as c_int).contains(&ty) {
            return None;
        }
        // SAFETY: a live super_block; files[ty] is set while the type is
        // loaded, and the quota layer holds its reference (and dqio_sem or
        // s_umount) for as long as it calls us with it.
        let ip = unsafe { bindings::ferrofs_quota_inode(sb, ty) };
        // SAFETY: a ferrofs inode the quota layer holds a reference on.
        (!ip.is_null()).then(|| unsafe { Inode::from_raw(ip) })
    }

    /// A read-write mount with `usrquota`/`grpquota` (and a read-only one
    /// remounted read-write): each type the options name comes on at once
    /// when its file (`aquota.user`, `aquota.group`) is in the root
    /// directory, as quota on XFS and ext4 comes on with the mount, so a
    /// remount or a reboot keeps counting and enforcing without `quotaon`.
    /// A type without its file stays off, for quotacheck and quotaon to
    /// create and turn on. With `recount` (at mount, before anyone can use
    /// the filesystem), the usage the files recorded is then replaced by
    /// what the filesystem holds, so neither a crash nor a mount without
    /// the options leaves usage for quotacheck to fix.
    pub(crate) fn on_at_mount(sb: &SuperBlock, info: &FsInfo, recount: bool) {
        let mut on = 0u8;
        for ty in TYPES {
            // SAFETY: reads the quota state of a live super_block.
            if info.opts.quota & (1u8 << ty) == 0 || unsafe { bindings::ferrofs_quota_loaded(sb.as_ptr(), ty) } {
                continue;
            }
            let file = FILES[ty as usize];
            // Project quota's file is ours to make (at mount only: nobody
            // can have looked the name up yet, so no dentry says it is
            // absent, and the recount below will count it in).
            if ty == bindings::PRJQUOTA as c_int && recount {
                if let Err(e) = make_project_file(sb, info) {
                    crate::vfs::fs_err!(sb.id(), "project quota stays off: creating /{} failed ({:?})\n", file, e);
                    continue;
                }
            }
            // SAFETY: fill_super and reconfigure hold s_umount for writing,
            // as loading a quota file requires, and the root dentry is set.
            let r = unsafe { bindings::ferrofs_quota_on_mount(sb.as_ptr(), ty) };
            if r == 0 {
                if let Some(inode) = quota_file(sb.as_ptr(), ty) {
                    set_loaded_flags(inode, true);
                }
                on |= 1u8 << ty;
            } else if r == ENOENT.to_errno() {
                let how = if ty == bindings::PRJQUOTA as c_int {
                    "a read-write mount with prjquota creates it"
                } else {
                    "quotacheck creates it, quotaon turns it on"
                };
                crate::vfs::fs_info!(sb.id(), "{} quota stays off: there is no /{} ({})\n", type_name(ty), file, how);
            } else {
                let how = if ty == bindings::PRJQUOTA as c_int {
                    "remove it, and the next read-write mount with prjquota makes a new one"
                } else {
                    "run quotacheck, then quotaon"
                };
                crate::vfs::fs_err!(sb.id(), "{} quota stays off: loading /{} failed ({}); {}\n", type_name(ty), file, r, how);
            }
        }
        if on == 0 {
            return;
        }
        if !recount {
            crate::vfs::fs_info!(sb.id(), "quota on ({}) with the usage the quota files recorded\n", names(on));
            return;
        }
        match recount_usage(sb, info, on) {
            Ok((inodes, ids)) => crate::vfs::fs_info!(sb.id(), "quota on ({}), usage recounted: {} inodes, {} IDs\n",
                names(on), inodes, ids),
            Err(e) => crate::vfs::fs_err!(sb.id(), "quota on ({}), but recounting usage failed ({:?}); usage is what the quota files recorded, run quotacheck\n",
                names(on), e),
        }
    }

    /// Creates `/aquota.project` as an empty vfsv1 project quota file
    /// (what quotacheck would write: the header, the info block and an
    /// empty tree root, two 1 KiB blocks), or finishes one a crash left
    /// empty; leaves a complete one alone. quota-tools cannot make this
    /// file on a filesystem they do not know (Documentation/
    /// quota-plan.md), and `xfs_quota` manages project quota through
    /// quotactl alone. The contents go through `write`, the quota layer's
    /// own path, which makes them durable before the size that exposes
    /// them, so a crash leaves either an empty file or a whole one.
    fn make_project_file(sb: &SuperBlock, info: &FsInfo) -> Result {
        // struct v2_disk_dqheader (magic for PRJQUOTA, version 1 = vfsv1),
        // then struct v2_disk_dqinfo: grace times 7 days (MAX_DQ_TIME,
        // MAX_IQ_TIME), flags 0, blocks 2 (QT_TREEOFF + 1), no free block
        // or entry list. Block 1, the tree root, is all zeroes.
        const V2_PRJ_MAGIC: u32 = 0xd9c0_3f14;
        const WEEK: u32 = 7 * 24 * 60 * 60;
        let mut contents = [0u8; 2048];
        for (i, v) in [V2_PRJ_MAGIC, 1, WEEK, WEEK, 0, 2, 0, 0].into_iter().enumerate() {
            contents[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        let file = FILES[bindings::PRJQUOTA as usize];
        let t = engine::Time { sec: crate::super_ops::now_secs(), nsec: 0 };
        let (root, ino, created) = info.with_fs_mut(Op::Quota, |fs| {
            let root = fs.root_ino();
            Ok(match fs.lookup(root, file.as_bytes())? {
                Some(ino) => (root, ino, false),
                None => {
                    let a = engine::NewInode { mode: engine::S_IFREG | 0o600, time: t, ..Default::default() };
                    (root, fs.create(root, file.as_bytes(), &a)?.0, true)
                }
            })
        })?;
        if created {
            // the root directory's size, link count and times changed
            // under its VFS inode
            let root = crate::namei::iget(sb, root)?;
            // and its blocks (engine::dir_blocks of its entries): its
            // charge follows before refresh compares the two (the recount
            // that follows sets the usage itself)
            info.with_fs_mut(Op::Quota, |fs| {
                crate::namei::settle_dir(fs, &root);
                Ok(())
            })?;
            crate::inode::refresh(&root.lock())?;
        }
        let inode = crate::namei::iget(sb, ino)?;
        if !inode.is_reg() {
            return Err(EEXIST);
        }
        if inode.size() != 0 {
            return Ok(());
        }
        write(&inode, &contents, 0)?;
        if created {
            crate::vfs::fs_info!(sb.id(), "created /{} for project quota\n", file);
        } else {
            crate::vfs::fs_info!(sb.id(), "finished /{}, which a crash had left empty\n", file);
        }
        Ok(())
    }

    /// Sets every ID's usage of the quota types in `types` to what the
    /// filesystem holds: for each inode, one inode and its blocks to its
    /// owner, its group and its project (what quotacheck counts, and what
    /// the charges add up to). IDs the quota file has but no inode belongs to
    /// get zero. Walks the inodes in batches under the shared engine lock;
    /// nothing else runs at mount. Returns (inodes, IDs set).
    fn recount_usage(sb: &SuperBlock, info: &FsInfo, types: u8) -> Result<(u64, u64)> {
        use kernel::rbtree::RBTree;
        // (blocks, inodes) per ID: user, group, project
        let mut usage: [RBTree<u32, (u64, u64)>; 3] = [RBTree::new(), RBTree::new(), RBTree::new()];
        // The quota files are charged to no one (S_NOQUOTA while loaded,
        // and quotacheck leaves them out too).
        let qfiles = info.with_fs(Op::Quota, |fs| {
            let root = fs.root_ino();
            let mut q = [None; 3];
            for (q, name) in q.iter_mut().zip(FILES) {
                *q = fs.lookup(root, name.as_bytes())?;
            }
            Ok(q)
        })?;
        let mut batch = [(0u64, engine::Inode::default()); 8];
        let (mut after, mut inodes) = (0u64, 0u64);
        loop {
            let n = info.with_fs(Op::Quota, |fs| fs.inodes_after(after, &mut batch))?;
            if n == 0 {
                break;
            }
            for &(ino, i) in &batch[..n] {
                if qfiles.contains(&Some(ino)) {
                    continue;
                }
                for (tree, id) in usage.iter_mut().zip([i.uid, i.gid, i.projid]) {
                    match tree.get_mut(&id) {
                        Some(u) => *u = (u.0 + i.blocks, u.1 + 1),
                        None => {
                            tree.try_create_and_insert(id, (i.blocks, 1), GFP_KERNEL)?;
                        }
                    }
                }
            }
            inodes += n as u64;
            after = batch[n - 1].0;
            // we hold s_umount (a sleeping lock) and no engine lock here
            crate::vfs::cond_resched();
        }
        let mut ids = 0u64;
        for ty in TYPES {
            if types & (1u8 << ty) == 0 {
                continue;
            }
            let tree = &usage[ty as usize];
            // IDs the file has a record for but that own nothing now
            let mut id = 0u32;
            loop {
                // SAFETY: a live super_block with this type loaded; the
                // quota layer reads its file under its own locks.
                let r = unsafe { bindings::ferrofs_quota_next_id(sb.as_ptr(), ty, &mut id) };
                if r == ENOENT.to_errno() {
                    break;
                }
                if r != 0 {
                    return Err(Error::from_errno(r));
                }
                if tree.get(&id).is_none() {
                    set_usage(sb, ty, id, 0, 0)?;
                }
                let Some(next) = id.checked_add(1) else { break };
                id = next;
            }
            for (&id, &(blocks, n)) in tree.iter() {
                set_usage(sb, ty, id, blocks.saturating_mul(BLOCK), n)?;
                ids += 1;
            }
        }
        Ok((inodes, ids))
    }

    fn set_usage(sb: &SuperBlock, ty: c_int, id: u32, bytes: u64, inodes: u64) -> Result {
        // SAFETY: a live super_block with this type loaded; dquot_set_dqblk
        // takes the dquot and its locks itself.
        let r = unsafe { bindings::ferrofs_quota_set_usage(sb.as_ptr(), ty, id, bytes, inodes) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(())
    }

    /// `quotactl_ops.quota_on`: only for a type the mount option turned on
    /// (quota-tools read the options from /proc/mounts anyway). Turning on
    /// a type that is already on from the same file (it came on at mount)
    /// succeeds without doing anything, so `quotaon` at boot stays quiet.
    unsafe extern "C" fn quota_on(sbp: *mut bindings::super_block, ty: c_int, format: c_int, path: *const bindings::path) -> c_int {
        // SAFETY: quotactl calls us on an active super_block it holds.
        let sb = unsafe { SuperBlock::from_raw(sbp) };
        let Ok(info) = FsInfo::of(sb) else { return EIO.to_errno() };
        if !TYPES.contains(&ty) || info.opts.quota & (1u8 << ty) == 0 {
            crate::vfs::fs_err!(
                sb.id(),
                "cannot turn on {} quota: the filesystem was not mounted with {}\n",
                type_name(ty),
                names(1u8 << ty)
            );
            return EINVAL.to_errno();
        }
        if let Some(loaded) = quota_file(sbp, ty) {
            // SAFETY: quotactl resolved `path` and holds it (and so its
            // dentry and that dentry's inode) for the call.
            if unsafe { bindings::ferrofs_d_inode((*path).dentry) } == loaded.as_ptr() {
                return 0;
            }
        }
        // SAFETY: quotactl resolved `path` and holds it for the call;
        // dquot_quota_on checks that it is on this super_block (EXDEV).
        let r = unsafe { bindings::dquot_quota_on(sbp, ty, format, path) };
        if r == 0 {
            if let Some(inode) = quota_file(sbp, ty) {
                set_loaded_flags(inode, true);
            }
        }
        r
    }

    /// `quotactl_ops.quota_off`.
    unsafe extern "C" fn quota_off(sbp: *mut bindings::super_block, ty: c_int) -> c_int {
        // Keep the file's inode while the quota layer drops its reference,
        // to give it back its own flags afterwards.
        let held = quota_file(sbp, ty).map(Inode::to_aref);
        // SAFETY: quotactl calls us on an active super_block, with
        // s_umount held as dquot_disable asserts.
        let r = unsafe { bindings::dquot_quota_off(sbp, ty) };
        if r == 0 {
            if let Some(inode) = &held {
                set_loaded_flags(inode, false);
            }
        }
        r
    }

    /// Makes a quota file immutable and noatime in memory while it is
    /// loaded, or gives it back the flags stored in the engine.
    fn set_loaded_flags(inode: &Inode, loaded: bool) {
        let g = inode.lock();
        let stored = crate::inode::s_flags_of(inode.state().flags());
        let want = if loaded { stored | bindings::S_IMMUTABLE | bindings::S_NOATIME } else { stored };
        g.set_flags(want, bindings::S_IMMUTABLE | bindings::S_NOATIME);
    }

    /// `super_operations.quota_read`: `len` bytes at `off` of the quota
    /// file of type `ty` (short at EOF, holes read as zeroes).
    pub(crate) unsafe extern "C" fn quota_read(sbp: *mut bindings::super_block, ty: c_int, data: *mut c_char, len: usize, off: i64) -> isize {
        let Some(inode) = quota_file(sbp, ty) else { return EIO.to_errno() as isize };
        // SAFETY: the quota layer passes a buffer of `len` bytes it owns
        // for the duration of the call.
        let buf = unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len) };
        match read(inode, buf, off) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// Bytes `[off, off + len)` of a file cut at block boundaries: for each
    /// piece, its offset in the range, its block, its offset in that block
    /// and its length (what `read` and `write` copy one at a time).
    fn pieces(off: u64, len: usize) -> impl Iterator<Item = (usize, u64, u64, usize)> {
        let mut done = 0;
        core::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let pos = off + done as u64;
            let at = pos % BLOCK;
            let n = ((BLOCK - at) as usize).min(len - done);
            let piece = (done, pos / BLOCK, at, n);
            done += n;
            Some(piece)
        })
    }

    fn read(inode: &Inode, buf: &mut [u8], off: i64) -> Result<usize> {
        let info = info_of(inode)?;
        let size = inode.size();
        if off < 0 {
            return Err(EINVAL);
        }
        if off >= size {
            return Ok(0);
        }
        let n = buf.len().min((size - off) as usize);
        let ino = inode.ino();
        info.with_fs(Op::Quota, |fs| {
            for (done, lblk, at, chunk) in pieces(off as u64, n) {
                let dst = &mut buf[done..done + chunk];
                let m = fs.map(ino, lblk, 1)?;
                if m.kind == engine::MapKind::Written {
                    fs.media().read(m.pblk * BLOCK + at, dst).map_err(|_| engine::Error::Io { block: m.pblk })?;
                } else {
                    dst.fill(0);
                }
            }
            Ok(n)
        })
    }

    /// `super_operations.quota_write`: stores `len` bytes at `off` of the
    /// quota file of type `ty`, allocating blocks where needed, durable on
    /// return; grows the file if they end past EOF.
    pub(crate) unsafe extern "C" fn quota_write(sbp: *mut bindings::super_block, ty: c_int, data: *const c_char, len: usize, off: i64) -> isize {
        let Some(inode) = quota_file(sbp, ty) else { return EIO.to_errno() as isize };
        // SAFETY: the quota layer passes `len` readable bytes it owns for
        // the duration of the call.
        let src = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) };
        match write(inode, src, off) {
            Ok(n) => n as isize,
            // after a shutdown every write fails (EIO) and the shutdown was
            // logged; say nothing for each dquot the unmount still flushes
            Err(e) if info_of(inode).map_or(true, |i| i.is_shut_down()) => e.to_errno() as isize,
            Err(e) => {
                crate::vfs::fs_err!(inode.sb().id(), "writing {} bytes at {} of the {} quota file (inode {}) failed ({:?})\n",
                    len, off, type_name(ty), inode.ino(), e);
                e.to_errno() as isize
            }
        }
    }

    fn write(inode: &Inode, src: &[u8], off: i64) -> Result<usize> {
        let info = info_of(inode)?;
        let end = u64::try_from(off).ok().and_then(|o| o.checked_add(src.len() as u64)).ok_or(EINVAL)?;
        if end > inode.sb().max_bytes() as u64 {
            return Err(EFBIG);
        }
        let ino = inode.ino();
        let t = inode.now();
        // a quota file is not charged (S_NOQUOTA), but its i_blocks and
        // the count getattr reports follow the engine's like every inode's
        let size = info.with_fs_mut_charged(Op::Quota, inode, |_| Ok(0), |fs| {
            for (done, lblk, at, chunk) in pieces(off as u64, src.len()) {
                let mut m = fs.map(ino, lblk, 1)?;
                if m.kind != engine::MapKind::Written || m.shared {
                    let old = m;
                    let flags = engine::AllocFlags { unwritten: false, huge_align: false, cow_unit: false };
                    // holes and unwritten blocks come back zeroed, shared
                    // ones copied: the bytes around ours stay what they were
                    m = fs.alloc_write(ino, lblk, 1, flags)?;
                    if old.shared {
                        info.rmap.lock().forget_range(old.pblk, 1, ino, old.lblk);
                    }
                }
                let to = m.pblk * BLOCK + at;
                fs.media().write(to, &src[done..done + chunk]);
                fs.media().flush(to, chunk as u64);
            }
            fs.media().fence();
            let di = fs.read_inode(ino)?;
            if end > di.size {
                fs.set_size(ino, end, t)?;
            }
            Ok(end.max(di.size))
        })?;
        if size as i64 > inode.size() {
            inode.set_quota_file_size(size as i64);
        }
        Ok(src.len())
    }
}
