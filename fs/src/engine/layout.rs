//! The on-media format: every structure, offset and constant. This file is the
//! single source of truth; Documentation/on-disk-format.md describes it.
//! All integers are little-endian.

use super::crc::Crc32c;
use super::{Error, Result};

/// Filesystem block size (= PAGE_SIZE).
pub const BLOCK_SIZE: u64 = 4096;
/// log2 of the block size.
pub const BLOCK_SHIFT: u32 = 12;
/// Superblock magic, bytes 0..8 of block 0 and of the backup.
pub const SB_MAGIC: u64 = u64::from_le_bytes(*b"FerroFS1");
/// Current format version: 2 added the extent size hints in inode bytes
/// 104..112; 3 lifted the largest file from 16 TiB (2^32 blocks) to
/// 2^63 - 1 bytes (Documentation/on-disk-format.md, "Format versions").
pub const FORMAT_VERSION: u32 = 3;
/// Oldest format version mount and fsck accept. A version 1 image has zero
/// in bytes 104..112 of every non-symlink inode (the engine always wrote
/// whole zeroed records), which version 2 reads as "no hints"; the first
/// hint set on it raises the superblock's version to 2.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// Bytes of the superblock covered by its crc (the rest of block 0 is zero).
pub const SB_SIZE: usize = 512;
/// Longest filesystem label, in bytes (NUL-padded in the superblock).
pub const LABEL_MAX: usize = 32;
/// Offset of the crc in the superblock.
pub const SB_CRC_OFF: usize = 8;
/// Superblock state: cleanly unmounted.
pub const STATE_CLEAN: u32 = 1;
/// Superblock state: mounted or crashed.
pub const STATE_DIRTY: u32 = 2;
/// Known compat features (none yet).
pub const FEAT_COMPAT_KNOWN: u64 = 0;
/// Known ro_compat features (none yet).
pub const FEAT_RO_COMPAT_KNOWN: u64 = 0;
/// Known incompat features (none yet).
pub const FEAT_INCOMPAT_KNOWN: u64 = 0;
/// The journal header lives at this fixed block.
pub const JOURNAL_START: u64 = 1;
/// Default number of undo slots.
pub const DEFAULT_JOURNAL_SLOTS: u64 = 512;
/// Smallest allowed number of undo slots.
pub const MIN_JOURNAL_SLOTS: u64 = 48;
/// Largest allowed number of undo slots.
pub const MAX_JOURNAL_SLOTS: u64 = 4096;
/// Journal header magic.
pub const JH_MAGIC: u64 = u64::from_le_bytes(*b"FFjournl");
/// Journal descriptor block magic.
pub const JD_MAGIC: u64 = u64::from_le_bytes(*b"FFjdescr");
/// Descriptor record magic.
pub const JREC_MAGIC: u32 = u32::from_le_bytes(*b"JREC");
/// Size of one undo descriptor.
pub const JREC_SIZE: u64 = 32;
/// Header bytes of a descriptor block.
pub const JD_HDR: u64 = 64;
/// Descriptors per descriptor block.
pub const JRECS_PER_BLOCK: u64 = (BLOCK_SIZE - JD_HDR) / JREC_SIZE;
/// Offset of the `committed` word in the journal header.
pub const JH_COMMITTED_OFF: u64 = 32;
/// Bitmap block magic.
pub const BM_MAGIC: u64 = u64::from_le_bytes(*b"FFbitmap");
/// Header bytes of a bitmap block.
pub const BM_HDR: u64 = 64;
/// Blocks tracked per bitmap block (= 63 * 512, so 2 MiB runs never straddle).
pub const BITS_PER_BM: u64 = (BLOCK_SIZE - BM_HDR) * 8;
/// Btree node magic.
pub const BT_MAGIC: u64 = u64::from_le_bytes(*b"FFbtnode");
/// Offset of the crc in every block-checksummed metadata block (bitmap, node).
pub const BLK_CRC_OFF: u64 = 8;
/// Offset of the self block number in every metadata block header.
pub const BLK_NO_OFF: u64 = 16;
/// Header bytes of a btree node.
pub const BT_HDR: u64 = 64;
/// Maximum btree height (fixed-size path stack).
pub const MAX_HEIGHT: usize = 8;
/// Key bytes (three u64).
pub const KEY_SIZE: u64 = 24;
/// Internal node entry: key + child block.
pub const INTERNAL_ENTRY: u64 = KEY_SIZE + 8;
/// Root inode number.
pub const ROOT_INO: u64 = 1;
/// Size of an inode record.
pub const INODE_SIZE: usize = 256;
/// Bytes of symlink target stored inline in the inode.
pub const INLINE_SYMLINK_MAX: usize = 144;
/// Offset of the inline symlink target in the inode record.
pub const INODE_INLINE_OFF: usize = 112;
/// Maximum name length.
pub const NAME_MAX: usize = 255;
/// Maximum symlink target length.
pub const SYMLINK_MAX: usize = 4095;
/// Maximum blocks in one extent record.
pub const MAX_EXTENT_LEN: u64 = 8192;
/// Maximum logical block (exclusive): 2^63 bytes. The largest file is
/// `MAX_BYTES`, one byte short of that (i_size is a signed 64-bit value).
pub const MAX_LBLK: u64 = 1 << 51;
/// The largest file size in bytes (the kernel's MAX_LFS_FILESIZE, XFS's).
pub const MAX_BYTES: u64 = i64::MAX as u64;
/// Format versions 1 and 2 ended files at this block (16 TiB): the first
/// record past it (a size or an extent) raises the superblock to version 3,
/// so that older modules and tools refuse the image instead of calling
/// such records corrupt.
pub const V2_MAX_LBLK: u64 = 1 << 32;
/// Extent flag: unwritten (reads as zeroes).
pub const EXT_UNWRITTEN: u32 = 1;
/// Maximum xattr value size.
pub const XATTR_VALUE_MAX: usize = 65536;
/// Bytes of xattr value kept inline in the record.
pub const XATTR_INLINE_MAX: usize = 232;
/// Maximum xattr name length.
pub const XATTR_NAME_MAX: usize = 255;
/// Inode flag: use DAX.
pub const IFLAG_DAX: u32 = 1;
/// Inode flag: immutable.
pub const IFLAG_IMMUTABLE: u32 = 2;
/// Inode flag: append only.
pub const IFLAG_APPEND: u32 = 4;
/// Inode flag: `extsize` is the allocation unit of this regular file
/// (FS_XFLAG_EXTSIZE).
pub const IFLAG_EXTSIZE: u32 = 8;
/// Inode flag: files and directories created in this directory inherit
/// `extsize` (FS_XFLAG_EXTSZINHERIT).
pub const IFLAG_EXTSZINHERIT: u32 = 16;
/// Inode flag: `cowextsize` is the copy-on-write unit of this file, and is
/// inherited from a directory (FS_XFLAG_COWEXTSIZE).
pub const IFLAG_COWEXTSIZE: u32 = 32;
/// Inode flag: do not update the access time (FS_NOATIME_FL, chattr +A).
pub const IFLAG_NOATIME: u32 = 64;
/// Inode flag: writes are synchronous (FS_SYNC_FL, chattr +S).
pub const IFLAG_SYNC: u32 = 128;
/// Inode flag: skip in dump(8) backups (FS_NODUMP_FL, chattr +d).
pub const IFLAG_NODUMP: u32 = 256;
/// Inode flag: files and directories created in this directory take its
/// project ID, and directories this flag too (FS_XFLAG_PROJINHERIT;
/// directories only, as on XFS).
pub const IFLAG_PROJINHERIT: u32 = 512;
/// The flags that belong to the extent size hints.
pub const IFLAG_HINTS: u32 = IFLAG_EXTSIZE | IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE;
/// Largest extent size hint in blocks (XFS's limit, 2^21 blocks = 8 GiB).
pub const MAX_EXTSIZE_BLOCKS: u32 = 1 << 21;
/// File type mask.
pub const S_IFMT: u32 = 0o170000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device (a whiteout is one with rdev 0).
pub const S_IFCHR: u32 = 0o020000;
/// Maximum link count.
pub const LINK_MAX: u32 = 65000;

/// Number of btrees.
pub const NTREES: usize = 8;

/// The btrees. The discriminant is the tree id stored in every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TreeId {
    /// (ino, 0, 0) -> inode record.
    Inode = 0,
    /// (ino, lblk, 0) -> extent.
    Extent = 1,
    /// (pblk, 0, 0) -> (len, count>=2).
    Refcount = 2,
    /// (pblk, ino, lblk) -> len.
    Rmap = 3,
    /// (dir, hash, seq) -> dirent.
    Dir = 4,
    /// (ino, hash, seq) -> xattr.
    Xattr = 5,
    /// (ino, 0, 0) -> nothing.
    Orphan = 6,
    /// (pblk, 0, 0) -> len.
    Badblock = 7,
}

/// All trees in id order.
pub const ALL_TREES: [TreeId; NTREES] = [
    TreeId::Inode,
    TreeId::Extent,
    TreeId::Refcount,
    TreeId::Rmap,
    TreeId::Dir,
    TreeId::Xattr,
    TreeId::Orphan,
    TreeId::Badblock,
];

impl TreeId {
    /// Value bytes of a leaf entry.
    pub const fn value_size(self) -> u64 {
        match self {
            TreeId::Inode => INODE_SIZE as u64,
            TreeId::Extent => 16,
            TreeId::Refcount => 16,
            TreeId::Rmap => 8,
            TreeId::Dir => 272,
            TreeId::Xattr => 512,
            TreeId::Orphan => 0,
            TreeId::Badblock => 8,
        }
    }
    /// Leaf entry size.
    pub const fn leaf_entry(self) -> u64 {
        KEY_SIZE + self.value_size()
    }
    /// Entries per leaf.
    pub const fn leaf_cap(self) -> u64 {
        (BLOCK_SIZE - BT_HDR) / self.leaf_entry()
    }
    /// Name used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            TreeId::Inode => "inode btree",
            TreeId::Extent => "extent btree",
            TreeId::Refcount => "refcount btree",
            TreeId::Rmap => "rmap btree",
            TreeId::Dir => "dir btree",
            TreeId::Xattr => "xattr btree",
            TreeId::Orphan => "orphan btree",
            TreeId::Badblock => "badblock btree",
        }
    }
    /// From the on-media id.
    pub fn from_u8(v: u8) -> Option<TreeId> {
        ALL_TREES.get(v as usize).copied()
    }
}

/// Entries per internal node.
pub const INTERNAL_CAP: u64 = (BLOCK_SIZE - BT_HDR) / INTERNAL_ENTRY;

// Compile-time format checks (like xfs_ondisk.h).
const _: () = assert!(JRECS_PER_BLOCK == 126);
const _: () = assert!(BITS_PER_BM == 63 * 512);
const _: () = assert!(INTERNAL_CAP == 126);
const _: () = assert!(TreeId::Inode.leaf_cap() == 14);
const _: () = assert!(TreeId::Extent.leaf_cap() == 100);
const _: () = assert!(TreeId::Refcount.leaf_cap() == 100);
const _: () = assert!(TreeId::Rmap.leaf_cap() == 126);
const _: () = assert!(TreeId::Dir.leaf_cap() == 13);
const _: () = assert!(TreeId::Xattr.leaf_cap() == 7);
const _: () = assert!(TreeId::Orphan.leaf_cap() == 168);
const _: () = assert!(TreeId::Badblock.leaf_cap() == 126);
const _: () = assert!(INODE_INLINE_OFF + INLINE_SYMLINK_MAX == INODE_SIZE);
const _: () = assert!(16 + NAME_MAX <= 272);
const _: () = assert!(XATTR_INLINE_OFF + XATTR_INLINE_MAX == 512);
const _: () = assert!(SB_TREES_OFF + NTREES * 16 <= SB_SIZE);

/// Offset of the tree roots array in the superblock.
pub const SB_TREES_OFF: usize = 256;
/// Offset of the inline value in an xattr record.
pub const XATTR_INLINE_OFF: usize = 280;

/// Is a stripe unit and width (in blocks) one a superblock may hold for a
/// data region of `data_blocks`: none at all (both 0), or a unit of at
/// least one block and a width that is a whole number of units, no wider
/// than the data region, as XFS's superblock check requires of its
/// sunit and swidth.
pub fn stripe_ok(unit: u64, width: u64, data_blocks: u64) -> bool {
    if unit == 0 || width == 0 {
        return unit == width;
    }
    width <= data_blocks && width <= u32::MAX as u64 && width.checked_rem(unit) == Some(0)
}

/// Root block and height of one btree (height 0 = empty tree, root 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeRoot {
    /// Root node block.
    pub root: u64,
    /// Number of levels.
    pub height: u32,
}

/// The superblock (in memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Format version.
    pub version: u32,
    /// STATE_CLEAN or STATE_DIRTY.
    pub state: u32,
    /// Block number this copy lives at (0 or the last block).
    pub blkno: u64,
    /// Compatible features.
    pub compat: u64,
    /// Read-only compatible features.
    pub ro_compat: u64,
    /// Incompatible features.
    pub incompat: u64,
    /// Filesystem uuid.
    pub uuid: [u8; 16],
    /// Label, NUL padded.
    pub label: [u8; LABEL_MAX],
    /// Blocks in the filesystem.
    pub total_blocks: u64,
    /// First journal block (the header).
    pub journal_start: u64,
    /// Journal blocks (header + descriptor blocks + slots).
    pub journal_blocks: u64,
    /// Undo slots.
    pub journal_slots: u64,
    /// First bitmap block.
    pub bitmap_start: u64,
    /// Bitmap blocks.
    pub bitmap_blocks: u64,
    /// First block after the fixed metadata region.
    pub data_start: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Allocated inodes.
    pub inode_count: u64,
    /// Next inode number (never reused).
    pub next_ino: u64,
    /// Root directory inode.
    pub root_ino: u64,
    /// Next inode generation.
    pub next_generation: u64,
    /// Mount count.
    pub mount_count: u64,
    /// mkfs time (seconds).
    pub mkfs_time: i64,
    /// Last mount time.
    pub mount_time: i64,
    /// Last write (unmount) time.
    pub write_time: i64,
    /// Allocation rotor hint.
    pub alloc_rotor: u64,
    /// Stripe unit in blocks (mkfs -d su=): data allocations of at least
    /// this many blocks start on a multiple of it; 0 = no stripe geometry.
    /// Older superblocks have zeroes here.
    pub stripe_unit: u32,
    /// Stripe width in blocks (su times sw), a multiple of the unit;
    /// reported, not used by the allocator; 0 with no stripe unit.
    pub stripe_width: u32,
    /// Btree roots, indexed by TreeId.
    pub trees: [TreeRoot; NTREES],
}

pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}
pub(crate) fn put64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// crc of a 512-byte superblock image with the crc field taken as zero.
pub fn sb_crc(buf: &[u8; SB_SIZE]) -> u32 {
    let mut c = Crc32c::new();
    c.update(&buf[..SB_CRC_OFF]);
    c.update(&[0u8; 4]);
    c.update(&buf[SB_CRC_OFF + 4..]);
    c.finish()
}

impl Superblock {
    /// Encode into the 512-byte image (crc included).
    pub fn encode(&self, b: &mut [u8; SB_SIZE]) {
        b.fill(0);
        put64(b, 0, SB_MAGIC);
        put32(b, 12, self.version);
        put64(b, 16, self.blkno);
        put32(b, 24, BLOCK_SIZE as u32);
        put32(b, 28, self.state);
        put64(b, 32, self.compat);
        put64(b, 40, self.ro_compat);
        put64(b, 48, self.incompat);
        b[56..72].copy_from_slice(&self.uuid);
        b[72..104].copy_from_slice(&self.label);
        put64(b, 104, self.total_blocks);
        put64(b, 112, self.journal_start);
        put64(b, 120, self.journal_blocks);
        put64(b, 128, self.journal_slots);
        put64(b, 136, self.bitmap_start);
        put64(b, 144, self.bitmap_blocks);
        put64(b, 152, self.data_start);
        put64(b, 160, self.free_blocks);
        put64(b, 168, self.inode_count);
        put64(b, 176, self.next_ino);
        put64(b, 184, self.root_ino);
        put64(b, 192, self.next_generation);
        put64(b, 200, self.mount_count);
        put64(b, 208, self.mkfs_time as u64);
        put64(b, 216, self.mount_time as u64);
        put64(b, 224, self.write_time as u64);
        put64(b, 232, self.alloc_rotor);
        put32(b, 240, self.stripe_unit);
        put32(b, 244, self.stripe_width);
        for (i, t) in self.trees.iter().enumerate() {
            put64(b, SB_TREES_OFF + i * 16, t.root);
            put32(b, SB_TREES_OFF + i * 16 + 8, t.height);
        }
        let crc = sb_crc(b);
        put32(b, SB_CRC_OFF, crc);
    }

    /// Decode and verify magic, crc, version, block size and incompat features.
    /// `blkno` is where the image was read from.
    pub fn decode(b: &[u8; SB_SIZE], blkno: u64) -> Result<Superblock> {
        let mut sb = Superblock::EMPTY;
        sb.decode_into(b, blkno)?;
        Ok(sb)
    }

    /// An all-zero superblock.
    pub const EMPTY: Superblock = Superblock {
        version: 0,
        state: 0,
        blkno: 0,
        compat: 0,
        ro_compat: 0,
        incompat: 0,
        uuid: [0; 16],
        label: [0; 32],
        total_blocks: 0,
        journal_start: 0,
        journal_blocks: 0,
        journal_slots: 0,
        bitmap_start: 0,
        bitmap_blocks: 0,
        data_start: 0,
        free_blocks: 0,
        inode_count: 0,
        next_ino: 0,
        root_ino: 0,
        next_generation: 0,
        mount_count: 0,
        mkfs_time: 0,
        mount_time: 0,
        write_time: 0,
        alloc_rotor: 0,
        stripe_unit: 0,
        stripe_width: 0,
        trees: [TreeRoot { root: 0, height: 0 }; NTREES],
    };

    /// Like `decode`, but in place (no superblock-sized temporary: the kernel
    /// stack is small). On error `self` is unchanged.
    pub fn decode_into(&mut self, b: &[u8; SB_SIZE], blkno: u64) -> Result<()> {
        Self::validate(b, blkno)?;
        let incompat = le64(b, 48);
        self.version = le32(b, 12);
        self.state = le32(b, 28);
        self.blkno = blkno;
        self.compat = le64(b, 32);
        self.ro_compat = le64(b, 40);
        self.incompat = incompat;
        self.uuid.copy_from_slice(&b[56..72]);
        self.label.copy_from_slice(&b[72..104]);
        self.total_blocks = le64(b, 104);
        self.journal_start = le64(b, 112);
        self.journal_blocks = le64(b, 120);
        self.journal_slots = le64(b, 128);
        self.bitmap_start = le64(b, 136);
        self.bitmap_blocks = le64(b, 144);
        self.data_start = le64(b, 152);
        self.free_blocks = le64(b, 160);
        self.inode_count = le64(b, 168);
        self.next_ino = le64(b, 176);
        self.root_ino = le64(b, 184);
        self.next_generation = le64(b, 192);
        self.mount_count = le64(b, 200);
        self.mkfs_time = le64(b, 208) as i64;
        self.mount_time = le64(b, 216) as i64;
        self.write_time = le64(b, 224) as i64;
        self.alloc_rotor = le64(b, 232);
        self.stripe_unit = le32(b, 240);
        self.stripe_width = le32(b, 244);
        for (i, t) in self.trees.iter_mut().enumerate() {
            t.root = le64(b, SB_TREES_OFF + i * 16);
            t.height = le32(b, SB_TREES_OFF + i * 16 + 8);
        }
        Ok(())
    }

    fn validate(b: &[u8; SB_SIZE], blkno: u64) -> Result<()> {
        if le64(b, 0) != SB_MAGIC {
            return Err(Error::BadMagic);
        }
        if le32(b, SB_CRC_OFF) != sb_crc(b) {
            return Err(Error::Corrupt { what: "superblock", block: blkno });
        }
        let version = le32(b, 12);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::BadVersion { version });
        }
        if le32(b, 24) as u64 != BLOCK_SIZE || le64(b, 16) != blkno {
            return Err(Error::Corrupt { what: "superblock", block: blkno });
        }
        let incompat = le64(b, 48);
        if incompat & !FEAT_INCOMPAT_KNOWN != 0 {
            return Err(Error::UnsupportedFeature { incompat: incompat & !FEAT_INCOMPAT_KNOWN });
        }
        Ok(())
    }

    /// Check that the geometry is self-consistent and fits `media_blocks`.
    pub fn check_geometry(&self, media_blocks: u64) -> Result<()> {
        let bad = Err(Error::Corrupt { what: "superblock geometry", block: self.blkno });
        if self.total_blocks > media_blocks {
            return Err(Error::DeviceTooSmall { need_blocks: self.total_blocks, have_blocks: media_blocks });
        }
        let g = match Geometry::compute(self.total_blocks, self.journal_slots) {
            Some(g) => g,
            None => return bad,
        };
        if g.journal_start != self.journal_start
            || g.journal_blocks != self.journal_blocks
            || g.bitmap_start != self.bitmap_start
            || g.bitmap_blocks != self.bitmap_blocks
            || g.data_start != self.data_start
            || self.free_blocks > self.total_blocks
            || self.root_ino != ROOT_INO
            || self.next_ino <= ROOT_INO
        {
            return bad;
        }
        if !stripe_ok(self.stripe_unit as u64, self.stripe_width as u64, self.total_blocks - self.data_start) {
            return Err(Error::Corrupt { what: "superblock stripe geometry", block: self.blkno });
        }
        for t in self.trees.iter() {
            if t.height as usize > MAX_HEIGHT
                || (t.height == 0) != (t.root == 0)
                || (t.root != 0 && (t.root < self.data_start || t.root >= self.total_blocks - 1))
            {
                return Err(Error::Corrupt { what: "superblock tree root", block: self.blkno });
            }
        }
        Ok(())
    }
}

/// The fixed layout derived from the size and the journal size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Blocks in the filesystem.
    pub total_blocks: u64,
    /// Journal header block.
    pub journal_start: u64,
    /// Undo slots.
    pub journal_slots: u64,
    /// Descriptor blocks.
    pub journal_desc_blocks: u64,
    /// Journal blocks in all.
    pub journal_blocks: u64,
    /// First bitmap block.
    pub bitmap_start: u64,
    /// Bitmap blocks.
    pub bitmap_blocks: u64,
    /// First allocatable block.
    pub data_start: u64,
    /// Backup superblock (the last block).
    pub backup_sb: u64,
}

impl Geometry {
    /// Minimum blocks past the fixed metadata region.
    pub const MIN_FREE: u64 = 64;

    /// Compute the layout; None if it does not fit.
    pub fn compute(total_blocks: u64, journal_slots: u64) -> Option<Geometry> {
        if !(MIN_JOURNAL_SLOTS..=MAX_JOURNAL_SLOTS).contains(&journal_slots) {
            return None;
        }
        let desc = journal_slots.div_ceil(JRECS_PER_BLOCK);
        let journal_blocks = 1 + desc + journal_slots;
        let bitmap_start = JOURNAL_START + journal_blocks;
        let bitmap_blocks = total_blocks.div_ceil(BITS_PER_BM);
        let data_start = bitmap_start + bitmap_blocks;
        if total_blocks < data_start.checked_add(Self::MIN_FREE + 1)? {
            return None;
        }
        Some(Geometry {
            total_blocks,
            journal_start: JOURNAL_START,
            journal_slots,
            journal_desc_blocks: desc,
            journal_blocks,
            bitmap_start,
            bitmap_blocks,
            data_start,
            backup_sb: total_blocks - 1,
        })
    }
    /// Smallest filesystem for a journal size.
    pub fn min_blocks(journal_slots: u64) -> u64 {
        let desc = journal_slots.div_ceil(JRECS_PER_BLOCK);
        JOURNAL_START + 1 + desc + journal_slots + 1 + Self::MIN_FREE + 1
    }
}

/// A timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// An inode (in memory). The on-media record is 256 bytes (see `encode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inode {
    /// File type and permissions.
    pub mode: u32,
    /// IFLAG_* bits.
    pub flags: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Device number (new_encode_dev format).
    pub rdev: u32,
    /// Size in bytes.
    pub size: u64,
    /// Mapped blocks (filesystem blocks, not 512-byte sectors). For a
    /// directory, whose entries live in the filesystem-wide DIR btree, the
    /// blocks its entries take there: `dir_blocks(size)`, derived when the
    /// record is read and stored as 0, so that st_blocks and the quota
    /// charge of the directory's owner grow with its entries (a link or a
    /// rename into a directory over its owner's limit is EDQUOT, as XFS
    /// charges directory blocks).
    pub blocks: u64,
    /// Access time.
    pub atime: Time,
    /// Modification time.
    pub mtime: Time,
    /// Change time.
    pub ctime: Time,
    /// Birth time.
    pub btime: Time,
    /// Generation (for NFS handles).
    pub generation: u64,
    /// Parent directory (directories: the ".." target).
    pub parent: u64,
    /// Extent size hint in blocks (0 = none); regular files and
    /// directories only, stored at 104 (0 for symlinks).
    pub extsize: u32,
    /// Copy-on-write extent size hint in blocks (0 = none), at 108.
    pub cowextsize: u32,
    /// Project ID (project quota), at 112, or at 108 in a symlink. 0 (the
    /// default project) in every inode written before project IDs existed,
    /// whose records are zero there; older modules keep it, as they
    /// rewrite records in place.
    pub projid: u32,
}

/// The blocks a directory of `entries` entries is charged: one per full
/// DIR btree leaf (13 entries), whatever the leaves it shares with other
/// directories hold.
pub const fn dir_blocks(entries: u64) -> u64 {
    entries.div_ceil(TreeId::Dir.leaf_cap())
}

impl Inode {
    /// Is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    /// Is a regular file.
    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    /// Is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
    /// Directory entry file type (DT_*).
    pub fn ftype(&self) -> u8 {
        ((self.mode & S_IFMT) >> 12) as u8
    }
    /// The allocation unit for writes and faults in blocks (0: none).
    pub fn extsize_hint(&self) -> u64 {
        if self.is_reg() && self.flags & IFLAG_EXTSIZE != 0 {
            self.extsize as u64
        } else {
            0
        }
    }
    /// The copy-on-write unit in blocks (0: none).
    pub fn cowextsize_hint(&self) -> u64 {
        if self.is_reg() && self.flags & IFLAG_COWEXTSIZE != 0 {
            self.cowextsize as u64
        } else {
            0
        }
    }
    /// What is wrong with the extent size hints, if anything: the engine
    /// refuses such an inode when it reads it, fsck reports it (as XFS's
    /// inode verifier and xfs_repair share xfs_inode_validate_extsize).
    pub fn check_hints(&self) -> core::result::Result<(), &'static str> {
        let (reg, dir) = (self.is_reg(), self.is_dir());
        let f = self.flags;
        if self.extsize > MAX_EXTSIZE_BLOCKS || self.cowextsize > MAX_EXTSIZE_BLOCKS {
            return Err("extent size hint over 2^21 blocks");
        }
        if f & IFLAG_EXTSIZE != 0 && !reg {
            return Err("EXTSIZE flag on a file that is not regular");
        }
        if f & IFLAG_EXTSZINHERIT != 0 && !dir {
            return Err("EXTSZINHERIT flag on a non-directory");
        }
        if f & IFLAG_COWEXTSIZE != 0 && !(reg || dir) {
            return Err("COWEXTSIZE flag on a file that is neither regular nor a directory");
        }
        if (f & (IFLAG_EXTSIZE | IFLAG_EXTSZINHERIT) != 0) != (self.extsize != 0) {
            return Err("extent size hint and its flag disagree");
        }
        if (f & IFLAG_COWEXTSIZE != 0) != (self.cowextsize != 0) {
            return Err("CoW extent size hint and its flag disagree");
        }
        if f & IFLAG_PROJINHERIT != 0 && !dir {
            return Err("PROJINHERIT flag on a non-directory");
        }
        Ok(())
    }
    /// Encode the fixed fields (bytes 0..104) of the record, and for every
    /// type but symlinks the hints at 104..112 (a symlink keeps its target
    /// length there, written by the namespace code).
    pub fn encode(&self, b: &mut [u8]) {
        put32(b, 0, self.mode);
        put32(b, 4, self.flags);
        put32(b, 8, self.uid);
        put32(b, 12, self.gid);
        put32(b, 16, self.nlink);
        put32(b, 20, self.rdev);
        put64(b, 24, self.size);
        put64(b, 32, if self.is_dir() { 0 } else { self.blocks });
        put64(b, 40, self.atime.sec as u64);
        put64(b, 48, self.mtime.sec as u64);
        put64(b, 56, self.ctime.sec as u64);
        put64(b, 64, self.btime.sec as u64);
        put32(b, 72, self.atime.nsec);
        put32(b, 76, self.mtime.nsec);
        put32(b, 80, self.ctime.nsec);
        put32(b, 84, self.btime.nsec);
        put64(b, 88, self.generation);
        put64(b, 96, self.parent);
        if !self.is_symlink() {
            put32(b, INODE_EXTSIZE_OFF, self.extsize);
            put32(b, INODE_COWEXTSIZE_OFF, self.cowextsize);
        }
        put32(b, projid_off(self.is_symlink()), self.projid);
    }
    /// Decode the fixed fields.
    pub fn decode(b: &[u8]) -> Inode {
        let sym = le32(b, 0) & S_IFMT == S_IFLNK;
        let hint = |off| if sym { 0 } else { le32(b, off) };
        Inode {
            mode: le32(b, 0),
            flags: le32(b, 4),
            uid: le32(b, 8),
            gid: le32(b, 12),
            nlink: le32(b, 16),
            rdev: le32(b, 20),
            size: le64(b, 24),
            blocks: if le32(b, 0) & S_IFMT == S_IFDIR { dir_blocks(le64(b, 24)) } else { le64(b, 32) },
            atime: Time { sec: le64(b, 40) as i64, nsec: le32(b, 72) },
            mtime: Time { sec: le64(b, 48) as i64, nsec: le32(b, 76) },
            ctime: Time { sec: le64(b, 56) as i64, nsec: le32(b, 80) },
            btime: Time { sec: le64(b, 64) as i64, nsec: le32(b, 84) },
            generation: le64(b, 88),
            parent: le64(b, 96),
            extsize: hint(INODE_EXTSIZE_OFF),
            cowextsize: hint(INODE_COWEXTSIZE_OFF),
            projid: le32(b, projid_off(sym)),
        }
    }
}

/// Where the project ID is in an inode record: after the hints (112), or,
/// in a symlink, whose target may fill 112..256, after its length (108).
pub fn projid_off(symlink: bool) -> usize {
    if symlink {
        INODE_SYMLINK_PROJID_OFF
    } else {
        INODE_PROJID_OFF
    }
}

/// Offset of the symlink length (u16) in the inode record; 0xffff = target in block 0.
pub const INODE_SYMLEN_OFF: usize = 104;
/// Bytes of the fixed inode fields (every type); 104..116 depend on the
/// type: hints at 104..112 and the project ID at 112..116 for every type
/// but symlinks, the target length at 104..106 and the project ID at
/// 108..112 for a symlink (whose inline target starts at 112).
pub const INODE_FIXED: usize = 104;
/// Offset of the extent size hint (u32 blocks) in a non-symlink inode (v2).
pub const INODE_EXTSIZE_OFF: usize = 104;
/// Offset of the CoW extent size hint (u32 blocks) in a non-symlink inode (v2).
pub const INODE_COWEXTSIZE_OFF: usize = 108;
const _: () = assert!(INODE_COWEXTSIZE_OFF + 4 == INODE_INLINE_OFF);
/// Offset of the project ID (u32) in a non-symlink inode (the first bytes
/// of the inline area, which only symlinks use).
pub const INODE_PROJID_OFF: usize = INODE_INLINE_OFF;
/// Offset of the project ID (u32) in a symlink inode (after the u16
/// target length at 104 and two bytes of padding).
pub const INODE_SYMLINK_PROJID_OFF: usize = 108;
const _: () = assert!(INODE_SYMLEN_OFF + 2 <= INODE_SYMLINK_PROJID_OFF);
const _: () = assert!(INODE_SYMLINK_PROJID_OFF + 4 == INODE_INLINE_OFF);

/// Directory entry value: target inode (u64).
pub const DE_INO: usize = 0;
/// Directory entry value: file type (DT_*, u8).
pub const DE_FTYPE: usize = 8;
/// Directory entry value: name length (u8).
pub const DE_NAMELEN: usize = 9;
/// Directory entry value: name bytes.
pub const DE_NAME: usize = 16;

/// Xattr namespace index (part of the format: stored in every xattr
/// record and folded into its key): `user.`.
pub const XATTR_NS_USER: u8 = 1;
/// Xattr namespace index: `trusted.`.
pub const XATTR_NS_TRUSTED: u8 = 2;
/// Xattr namespace index: `security.`.
pub const XATTR_NS_SECURITY: u8 = 3;
/// Xattr namespace index: the access ACL (`system.posix_acl_access`, one
/// attribute with an empty name, in the uapi xattr encoding).
pub const XATTR_NS_ACL_ACCESS: u8 = 4;
/// Xattr namespace index: the default ACL (`system.posix_acl_default`).
pub const XATTR_NS_ACL_DEFAULT: u8 = 5;
/// Each namespace index and the name prefix (or, for ACLs, the whole name)
/// it stands for.
pub const XATTR_NAMESPACES: [(u8, &[u8]); 5] = [
    (XATTR_NS_USER, b"user."),
    (XATTR_NS_TRUSTED, b"trusted."),
    (XATTR_NS_SECURITY, b"security."),
    (XATTR_NS_ACL_ACCESS, b"system.posix_acl_access"),
    (XATTR_NS_ACL_DEFAULT, b"system.posix_acl_default"),
];

/// The flags a new inode of `mode` inherits from its parent directory's
/// `parent_flags`: FS_XFLAG_DAX (`IFLAG_DAX`) passes to regular files and
/// directories, as on XFS and ext4.
pub fn inherited_flags(parent_flags: u32, mode: u32) -> u32 {
    match mode & S_IFMT {
        S_IFREG | S_IFDIR => parent_flags & IFLAG_DAX,
        _ => 0,
    }
}

/// The project ID a new inode takes in a directory with `parent_flags`
/// and `parent_projid`: the directory's if it has PROJINHERIT, else the
/// default project 0 (XFS's xfs_get_initial_prid). The kernel charges the
/// new inode to it before the engine creates it.
pub fn inherited_projid(parent_flags: u32, parent_projid: u32) -> u32 {
    if parent_flags & IFLAG_PROJINHERIT != 0 {
        parent_projid
    } else {
        0
    }
}

/// Data blocks a new symlink with a target of `len` bytes takes: none if
/// the target fits in the inode, else one (the kernel charges them to the
/// owner's quota before the engine creates the link).
pub fn symlink_blocks(len: usize) -> u64 {
    u64::from(len > INLINE_SYMLINK_MAX)
}

/// Xattr record: namespace index (u8).
pub const XA_NS: usize = 0;
/// Xattr record: name length (u8).
pub const XA_NAMELEN: usize = 1;
/// Xattr record: flags (u8, XA_EXTERNAL).
pub const XA_FLAGS: usize = 2;
/// Xattr record: value length (u32).
pub const XA_VLEN: usize = 4;
/// Xattr record: first value block (u64, external values).
pub const XA_PBLK: usize = 8;
/// Xattr record: crc32c of the value (u32, external values).
pub const XA_VCRC: usize = 16;
/// Xattr record: value blocks (u32, external values).
pub const XA_NBLK: usize = 20;
/// Xattr record: name bytes.
pub const XA_NAME: usize = 24;
/// Xattr flag: value in blocks.
pub const XA_EXTERNAL: u8 = 1;
