//! The filesystem object: format, mount, unmount, statfs and media helpers.

use core::sync::atomic::AtomicU64;
use super::journal::Tx;
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};

/// Options for `Fs::format`.
#[derive(Clone, Copy, Debug)]
pub struct FormatOptions<'a> {
    /// Label (at most 32 bytes).
    pub label: &'a [u8],
    /// Filesystem uuid (also seeds the directory hash).
    pub uuid: [u8; 16],
    /// Filesystem size in bytes; 0 = the whole media.
    pub size_bytes: u64,
    /// Creation time.
    pub time: Time,
    /// Undo journal slots; 0 = DEFAULT_JOURNAL_SLOTS.
    pub journal_slots: u64,
    /// Stripe unit and width in blocks (`layout::stripe_ok`); 0, 0 = none.
    pub stripe: (u64, u64),
}

/// Options for `Fs::mount`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MountOptions {
    /// Mount read-only: journal recovery still runs, but no transaction,
    /// no orphan reaping and the superblock's state is not touched, so a
    /// filesystem that needed no rollback is not written at all.
    /// `Fs::remount_rw` does the rest later.
    pub read_only: bool,
    /// Current time (seconds), recorded as the mount time.
    pub time: i64,
}

/// What `statfs` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u64,
    /// Blocks in the filesystem.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free blocks available to file data (free minus the metadata reserve).
    pub avail_blocks: u64,
    /// Inodes in use.
    pub files: u64,
    /// Inodes that can still be created (inode numbers are 64-bit; bounded by space).
    pub files_free: u64,
    /// Maximum name length.
    pub name_max: u64,
}

/// What `mount` found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountReport {
    /// Blocks rolled back from the undo journal.
    pub rolled_back: u64,
    /// Orphan inodes reaped.
    pub orphans_reaped: u64,
    /// The filesystem had not been unmounted cleanly.
    pub was_dirty: bool,
}

/// Why a read-only mount cannot become writable (`Fs::write_blocker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteBlocker {
    /// Mounted with `norecovery`: an interrupted transaction may still be
    /// in the journal, and writing on top of it would make it unrecoverable.
    NoRecovery,
    /// The superblock has read-only-compatible features this code does not
    /// know (the bits).
    RoCompat(u64),
}

/// A mounted ferrofs.
pub struct Fs<M: Media> {
    pub(crate) m: M,
    pub(crate) sb: Superblock,
    pub(crate) ro: bool,
    /// Mounted without journal recovery (`mount_norecovery`).
    pub(crate) norecovery: bool,
    pub(crate) tx: Tx,
    pub(crate) hkey: [u64; 2],
    pub(crate) report: MountReport,
    /// Nodes whose crc was verified since mount (direct mapped, blk + 1).
    /// Our own stores keep crcs valid, so a verified node stays verified.
    /// Atomic so that readers sharing `&Fs` on several CPUs (the kernel's
    /// shared engine lock) may each record what they verified: a slot only
    /// ever holds a true statement, whichever store wins, so Relaxed is
    /// enough.
    pub(crate) verified: [AtomicU64; VCACHE],
}

/// Slots of the verified-node cache.
pub(crate) const VCACHE: usize = 64;

/// The superblock fields a new filesystem starts from (mkfs fills in the
/// geometry); the in-memory superblock before mount reads the real one.
const EMPTY_SB: Superblock = Superblock {
    version: FORMAT_VERSION,
    state: STATE_CLEAN,
    journal_start: JOURNAL_START,
    next_ino: ROOT_INO + 1,
    root_ino: ROOT_INO,
    next_generation: 1,
    ..Superblock::EMPTY
};

impl<M: Media> Fs<M> {
    fn new_in_memory(m: M) -> Fs<M> {
        Fs {
            m,
            sb: EMPTY_SB,
            ro: false,
            norecovery: false,
            tx: Tx::new(),
            hkey: [0; 2],
            report: MountReport::default(),
            verified: [const { AtomicU64::new(0) }; VCACHE],
        }
    }

    pub(crate) fn rd(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.m.read(off, buf).map_err(|e| Error::Io { block: e.offset / BLOCK_SIZE })
    }
    pub(crate) fn rd_u64(&self, off: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.rd(off, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    pub(crate) fn rd_u16(&self, off: u64) -> Result<u16> {
        let mut b = [0u8; 2];
        self.rd(off, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Borrow the media (userspace tools use it to read and write file data).
    pub fn media(&self) -> &M {
        &self.m
    }

    /// The in-memory superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// What mount found (journal blocks rolled back, orphans reaped).
    pub fn mount_report(&self) -> MountReport {
        self.report
    }

    /// Mounted read-only?
    pub fn is_read_only(&self) -> bool {
        self.ro
    }

    /// Root directory inode number.
    pub fn root_ino(&self) -> u64 {
        self.sb.root_ino
    }

    /// The layout.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            total_blocks: self.sb.total_blocks,
            journal_start: self.sb.journal_start,
            journal_slots: self.sb.journal_slots,
            journal_desc_blocks: self.sb.journal_slots.div_ceil(JRECS_PER_BLOCK),
            journal_blocks: self.sb.journal_blocks,
            bitmap_start: self.sb.bitmap_start,
            bitmap_blocks: self.sb.bitmap_blocks,
            data_start: self.sb.data_start,
            backup_sb: self.sb.total_blocks - 1,
        }
    }

    /// The stripe unit and width mkfs gave, in blocks (0, 0: none).
    pub fn stripe(&self) -> (u64, u64) {
        (self.sb.stripe_unit as u64, self.sb.stripe_width as u64)
    }

    /// Filesystem statistics.
    pub fn statfs(&self) -> StatFs {
        StatFs {
            block_size: BLOCK_SIZE,
            blocks: self.sb.total_blocks,
            free_blocks: self.sb.free_blocks,
            avail_blocks: self.sb.free_blocks.saturating_sub(self.metadata_reserve()),
            files: self.sb.inode_count,
            files_free: self.sb.free_blocks,
            name_max: NAME_MAX as u64,
        }
    }

    /// FS_IOC_SETFSLABEL: the label becomes `label` (at most LABEL_MAX
    /// bytes, no NUL: the superblock pads with NULs, so a NUL would end it
    /// early), in one transaction with the superblock.
    pub fn set_label(&mut self, label: &[u8]) -> Result<()> {
        if label.len() > LABEL_MAX || label.contains(&0) {
            return Err(Error::Invalid);
        }
        self.run(|fs| {
            let mut l = [0u8; LABEL_MAX];
            l[..label.len()].copy_from_slice(label);
            fs.sb.label = l;
            fs.sb_dirty();
            Ok(())
        })
    }

    pub(crate) fn sb_dirty(&mut self) {
        self.tx.sb_dirty = true;
    }

    #[inline(never)]
    pub(crate) fn write_sb(&mut self) -> Result<()> {
        let lb = self.log(0)?;
        let mut b = [0u8; SB_SIZE];
        self.sb.blkno = 0;
        self.sb.encode(&mut b);
        self.mwrite(&lb, 0, &b);
        self.tx.sb_dirty = false;
        Ok(())
    }

    #[inline(never)]
    pub(crate) fn reload_sb(&mut self) -> Result<()> {
        let mut b = [0u8; SB_SIZE];
        self.rd(0, &mut b)?;
        self.sb.decode_into(&b, 0)
    }

    /// Write a new filesystem.
    pub fn format(media: M, opts: &FormatOptions<'_>) -> Result<()> {
        let msize = media.size();
        let size = if opts.size_bytes == 0 { msize } else { opts.size_bytes };
        let slots = if opts.journal_slots == 0 { DEFAULT_JOURNAL_SLOTS } else { opts.journal_slots };
        let total = size / BLOCK_SIZE;
        if size > msize {
            return Err(Error::DeviceTooSmall { need_blocks: total, have_blocks: msize / BLOCK_SIZE });
        }
        if opts.label.len() > LABEL_MAX {
            return Err(Error::Invalid);
        }
        let (su, sw) = opts.stripe;
        let g = match Geometry::compute(total, slots) {
            Some(g) => g,
            None => {
                if !(MIN_JOURNAL_SLOTS..=MAX_JOURNAL_SLOTS).contains(&slots) {
                    return Err(Error::Invalid);
                }
                return Err(Error::DeviceTooSmall { need_blocks: Geometry::min_blocks(slots), have_blocks: total });
            }
        };
        if !stripe_ok(su, sw, total - g.data_start) {
            return Err(Error::Invalid);
        }
        let mut fs = Fs::new_in_memory(media);
        // Kill any old superblock first: a crash during mkfs leaves no filesystem.
        fs.m.zero(0, BLOCK_SIZE);
        fs.m.flush(0, BLOCK_SIZE);
        fs.m.fence();
        let mut sb = EMPTY_SB;
        sb.uuid = opts.uuid;
        sb.label[..opts.label.len()].copy_from_slice(opts.label);
        sb.total_blocks = total;
        sb.journal_start = g.journal_start;
        sb.journal_blocks = g.journal_blocks;
        sb.journal_slots = g.journal_slots;
        sb.bitmap_start = g.bitmap_start;
        sb.bitmap_blocks = g.bitmap_blocks;
        sb.data_start = g.data_start;
        sb.free_blocks = total - g.data_start - 1;
        sb.mkfs_time = opts.time.sec;
        sb.write_time = opts.time.sec;
        sb.alloc_rotor = g.data_start;
        (sb.stripe_unit, sb.stripe_width) = (su as u32, sw as u32);
        fs.sb = sb;
        fs.journal_format();
        fs.bitmap_format()?;
        fs.m.fence();
        // The superblock (state clean, no inodes yet), then the root directory
        // in an ordinary transaction.
        let mut b = [0u8; SB_SIZE];
        fs.sb.encode(&mut b);
        fs.m.write(0, &b);
        fs.m.flush(0, BLOCK_SIZE);
        fs.m.fence();
        fs.hkey = hash_key(&fs.sb.uuid);
        fs.begin()?;
        let root = Inode {
            mode: S_IFDIR | 0o755,
            nlink: 2,
            atime: opts.time,
            mtime: opts.time,
            ctime: opts.time,
            btime: opts.time,
            generation: 0,
            parent: ROOT_INO,
            ..Inode::default()
        };
        let r = fs.inode_insert(ROOT_INO, &root, &[]);
        if let Err(e) = r {
            fs.abort()?;
            return Err(e);
        }
        fs.sb.inode_count = 1;
        fs.sb_dirty();
        fs.commit()?;
        // Backup superblock: geometry is what matters there.
        let mut bsb = fs.sb;
        bsb.blkno = g.backup_sb;
        bsb.encode(&mut b);
        fs.m.zero(g.backup_sb * BLOCK_SIZE, BLOCK_SIZE);
        fs.m.write(g.backup_sb * BLOCK_SIZE, &b);
        fs.m.flush(g.backup_sb * BLOCK_SIZE, BLOCK_SIZE);
        fs.m.fence();
        Ok(())
    }

    /// Mount: validate the superblock, recover the journal, reap orphans.
    pub fn mount(media: M, opts: &MountOptions) -> Result<Fs<M>> {
        Self::mount_inner(media, opts, true)
    }

    /// Mount read-only without recovery (`-o ro,norecovery`, for a device
    /// that must not be written): an interrupted transaction is not rolled
    /// back and orphans are not reaped, so what is read is the media as the
    /// crash left it, half-made changes and all (reads may find them
    /// corrupt). Nothing is written.
    pub fn mount_norecovery(media: M, time: i64) -> Result<Fs<M>> {
        Self::mount_inner(media, &MountOptions { read_only: true, time }, false)
    }

    /// Would mounting write to recover (the filesystem was not unmounted
    /// cleanly, or its journal holds an interrupted transaction)? Reads only;
    /// the kernel asks before mounting a write-protected device.
    pub fn needs_recovery(media: M) -> Result<bool> {
        let mblocks = media.size() / BLOCK_SIZE;
        if mblocks < 2 {
            return Err(Error::DeviceTooSmall { need_blocks: 2, have_blocks: mblocks });
        }
        let mut fs = Fs::new_in_memory(media);
        let total = fs.check_raw_sb(mblocks)?;
        let mut st = [0u8; 4];
        fs.rd(28, &mut st)?;
        if u32::from_le_bytes(st) != STATE_CLEAN {
            return Ok(true);
        }
        fs.journal_open(total)?;
        Ok(fs.journal_pending()? > 0)
    }

    fn mount_inner(media: M, opts: &MountOptions, recover: bool) -> Result<Fs<M>> {
        let mblocks = media.size() / BLOCK_SIZE;
        if mblocks < 2 {
            return Err(Error::DeviceTooSmall { need_blocks: 2, have_blocks: mblocks });
        }
        let mut fs = Fs::new_in_memory(media);
        let total = fs.check_raw_sb(mblocks)?;
        fs.journal_open(total)?;
        if recover {
            fs.report.rolled_back = fs.journal_recover()?;
        }
        fs.reload_sb()?;
        fs.sb.check_geometry(mblocks)?;
        if fs.sb.journal_slots != fs.geometry().journal_slots || fs.sb.total_blocks != total {
            return corrupt("superblock", 0);
        }
        fs.hkey = hash_key(&fs.sb.uuid);
        fs.verify_static()?;
        fs.ro = true;
        fs.norecovery = !recover;
        fs.report.was_dirty = fs.sb.state != STATE_CLEAN;
        if !opts.read_only && fs.write_blocker().is_none() {
            fs.report.orphans_reaped = fs.make_writable(opts.time)?;
        }
        Ok(fs)
    }

    /// Why this read-only mount could not become writable, if it could not.
    pub fn write_blocker(&self) -> Option<WriteBlocker> {
        if self.norecovery {
            return Some(WriteBlocker::NoRecovery);
        }
        let unknown = self.sb.ro_compat & !FEAT_RO_COMPAT_KNOWN;
        if unknown != 0 {
            return Some(WriteBlocker::RoCompat(unknown));
        }
        None
    }

    /// `mount -o remount,rw`: make a read-only mount writable, doing at the
    /// transition what a writable mount does at once: mark the superblock
    /// dirty (mounted) with a new mount count and time, then reap the
    /// orphans a crash left. The journal was already rolled back when the
    /// read-only mount started. Each step is an ordinary transaction, so a
    /// crash anywhere in here leaves what a crash during a writable mount
    /// leaves (the next mount recovers and reaps the rest). Returns the
    /// number of orphans reaped; a no-op on a writable mount. Refused with
    /// `Invalid` after `mount_norecovery` and `ReadOnly` with unknown
    /// read-only-compatible features (`write_blocker` says which); on any
    /// other error the mount stays read-only.
    ///
    /// The caller must make sure no unlinked (orphan) inode is in use
    /// through this mount: reaping frees its blocks. The kernel refuses file
    /// handles of unlinked inodes that are not already open, which is the
    /// only way a read-only mount could reach one.
    pub fn remount_rw(&mut self, time: i64) -> Result<u64> {
        if !self.ro {
            return Ok(0);
        }
        match self.write_blocker() {
            Some(WriteBlocker::NoRecovery) => return Err(Error::Invalid),
            Some(WriteBlocker::RoCompat(_)) => return Err(Error::ReadOnly),
            None => {}
        }
        let n = self.make_writable(time)?;
        self.report.orphans_reaped += n;
        Ok(n)
    }

    /// `mount -o remount,ro`: leave the media as a clean unmount leaves it
    /// (superblock state clean, write time set, journal committed), then
    /// refuse every transaction with `ReadOnly`. A no-op when read-only.
    /// Orphans of files still open stay on the orphan list (the VFS refuses
    /// the remount while there are any, unless it is forced) and are reaped
    /// by the next writable mount or `remount_rw`.
    pub fn remount_ro(&mut self, time: i64) -> Result<()> {
        if self.ro {
            return Ok(());
        }
        self.mark_clean(time)?;
        self.ro = true;
        Ok(())
    }

    /// Freeze (FIFREEZE): leave the media as a clean unmount leaves it
    /// (superblock state clean, write time set, journal committed) while
    /// staying mounted and writable, so that an image taken now (a
    /// snapshot, a copy of the device) mounts without recovery, even on a
    /// read-only device, as a frozen XFS's or ext4's does. Nothing changes
    /// the media while the kernel holds the freeze; whatever transaction
    /// comes first afterwards marks the superblock dirty again in its own
    /// commit (`run`), so "clean" is never on the media beside a change it
    /// does not cover. A no-op when read-only or already quiesced.
    pub fn quiesce(&mut self, time: i64) -> Result<()> {
        if self.ro || self.is_quiesced() {
            return Ok(());
        }
        self.mark_clean(time)
    }

    /// Undo `quiesce` now rather than at the next change: the superblock
    /// marked dirty in a transaction of its own (a shutdown, after which
    /// the next mount must recover). A no-op unless quiesced.
    pub fn unquiesce(&mut self) -> Result<()> {
        if !self.is_quiesced() {
            return Ok(());
        }
        self.run(|_| Ok(()))
    }

    /// Writable, and the media says clean: `quiesce` ran and no
    /// transaction since.
    pub fn is_quiesced(&self) -> bool {
        !self.ro && self.sb.state == STATE_CLEAN
    }

    /// The writable half of mount. On error the mount stays read-only (the
    /// media may hold a dirty state or partly reaped orphans: a crash state,
    /// which the next mount recovers).
    #[inline(never)]
    fn make_writable(&mut self, time: i64) -> Result<u64> {
        self.ro = false;
        let r = self
            .run(|fs| {
                fs.sb.state = STATE_DIRTY;
                fs.sb.mount_count = fs.sb.mount_count.wrapping_add(1);
                fs.sb.mount_time = time;
                fs.sb_dirty();
                Ok(())
            })
            .and_then(|()| self.reap_orphans());
        if r.is_err() {
            self.ro = true;
        }
        r
    }

    /// Commit the superblock with state clean (unmount, remount read-only).
    #[inline(never)]
    fn mark_clean(&mut self, time: i64) -> Result<()> {
        self.run(|fs| {
            fs.sb.state = STATE_CLEAN;
            fs.sb.write_time = time;
            fs.sb_dirty();
            Ok(())
        })
    }

    /// Fields that never change after mkfs, checked before anything is
    /// written (a torn superblock cannot have changed them). Returns the
    /// filesystem size in blocks. Kept out of line so its buffer is not on
    /// the stack during orphan reaping.
    #[inline(never)]
    fn check_raw_sb(&self, mblocks: u64) -> Result<u64> {
        let mut b = [0u8; 128];
        self.rd(0, &mut b)?;
        if le64(&b, 0) != SB_MAGIC {
            return Err(Error::BadMagic);
        }
        let version = le32(&b, 12);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::BadVersion { version });
        }
        let incompat = le64(&b, 48);
        if incompat & !FEAT_INCOMPAT_KNOWN != 0 {
            return Err(Error::UnsupportedFeature { incompat: incompat & !FEAT_INCOMPAT_KNOWN });
        }
        let total = le64(&b, 104);
        if total > mblocks {
            return Err(Error::DeviceTooSmall { need_blocks: total, have_blocks: mblocks });
        }
        if le32(&b, 24) as u64 != BLOCK_SIZE {
            return corrupt("superblock", 0);
        }
        Ok(total)
    }

    /// Check every bitmap block and each tree's root node.
    fn verify_static(&self) -> Result<()> {
        let mut i = 0;
        while i < self.sb.bitmap_blocks {
            self.bitmap_check(self.sb.bitmap_start + i, i)?;
            i += 1;
        }
        for t in ALL_TREES {
            let r = self.sb.trees[t as usize];
            if r.root != 0 {
                self.node_check(t, r.root, r.height as u16 - 1)?;
            }
        }
        Ok(())
    }

    /// Mark clean and give back the media.
    pub fn unmount(mut self, time: i64) -> Result<M> {
        self.remount_ro(time)?;
        Ok(self.m)
    }

    /// Only roll back an interrupted transaction (fsck). Returns the number
    /// of blocks restored and the media.
    pub fn recover_journal(media: M) -> Result<(u64, M)> {
        let mblocks = media.size() / BLOCK_SIZE;
        let mut fs = Fs::new_in_memory(media);
        fs.journal_open(mblocks)?;
        let n = fs.journal_recover()?;
        Ok((n, fs.m))
    }

    /// fsck -y: rewrite an unreadable journal as empty (discarding whatever it
    /// held). `slots` comes from the superblock.
    pub fn reset_journal(media: M, slots: u64) -> Result<M> {
        if !(MIN_JOURNAL_SLOTS..=MAX_JOURNAL_SLOTS).contains(&slots) {
            return Err(Error::Invalid);
        }
        let mut fs = Fs::new_in_memory(media);
        fs.sb.journal_start = JOURNAL_START;
        fs.sb.journal_slots = slots;
        fs.journal_format();
        fs.m.fence();
        Ok(fs.m)
    }

    /// Count the blocks an interrupted transaction would roll back.
    pub fn journal_pending_blocks(media: M) -> Result<u64> {
        let mblocks = media.size() / BLOCK_SIZE;
        let mut fs = Fs::new_in_memory(media);
        fs.journal_open(mblocks)?;
        fs.journal_pending()
    }

    /// Give back the media without marking clean (simulates a crash / forced shutdown).
    pub fn into_media(self) -> M {
        self.m
    }

    /// Run `f` as one transaction: commit on success, roll back on error.
    pub(crate) fn run<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.begin()?;
        if self.sb.state != STATE_DIRTY {
            // the first change after `quiesce` (or mount's own, which sets
            // it too): the superblock says dirty again in this same commit;
            // an abort reloads the superblock, clean
            self.sb.state = STATE_DIRTY;
            self.sb_dirty();
        }
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.commit() {
                    self.abort()?;
                    return Err(e);
                }
                Ok(v)
            }
            Err(e) => {
                self.abort()?;
                Err(e)
            }
        }
    }
}

/// Directory hash key derived from the uuid.
pub fn hash_key(uuid: &[u8; 16]) -> [u64; 2] {
    [le64(uuid, 0) ^ 0x6665_7272_6f66_7321, le64(uuid, 8) ^ 0x6469_7268_6173_6821]
}

/// Directory name hash: 46 bits, never 0 or 1 (reserved readdir cookies).
pub fn dir_hash(key: [u64; 2], name: &[u8]) -> u64 {
    let h = siphash13(key, name) >> 18;
    if h < 2 {
        h + 2
    } else {
        h
    }
}

/// Xattr name hash (48 bits), namespace folded into the key.
pub fn xattr_hash(key: [u64; 2], ns: u8, name: &[u8]) -> u64 {
    siphash13([key[0] ^ ns as u64, !key[1]], name) >> 16
}

/// SipHash-1-3 of `data` with a 128-bit key.
pub fn siphash13(k: [u64; 2], data: &[u8]) -> u64 {
    let mut v0 = k[0] ^ 0x736f_6d65_7073_6575;
    let mut v1 = k[1] ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k[0] ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k[1] ^ 0x7465_6462_7974_6573;
    #[inline(always)]
    fn round(v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64) {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = le64(c, 0);
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let rem = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rem.len()].copy_from_slice(rem);
    let m = u64::from_le_bytes(last) | ((data.len() as u64 & 0xff) << 56);
    v3 ^= m;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= m;
    v2 ^= 0xff;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^ v1 ^ v2 ^ v3
}

/// The kernel shares one `Fs` between CPUs behind a reader/writer lock:
/// read-only operations (`&self`) run in parallel, transactions (`&mut
/// self`) alone. That needs `Fs: Sync` whenever its media is; this fails to
/// compile if a non-`Sync` field (a `Cell` cache, say) comes back.
#[allow(dead_code)]
fn fs_is_sync_when_media_is<M: Media + Sync>() {
    fn sync<T: Sync>() {}
    sync::<Fs<M>>();
}
