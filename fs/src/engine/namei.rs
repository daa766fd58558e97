//! Inodes, directories and the namespace operations.

use super::btree::Key;
use super::fs::{dir_hash, Fs};
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};

/// Attributes of a new inode.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewInode {
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for character/block devices.
    pub rdev: u32,
    /// Inode flags (IFLAG_*).
    pub flags: u32,
    /// Creation time (atime/mtime/ctime/btime).
    pub time: Time,
}

/// Flags of `rename`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenameFlags {
    /// Fail with Exists if the target exists.
    pub noreplace: bool,
    /// Atomically exchange source and target (both must exist).
    pub exchange: bool,
}

/// readdir callback: (name, ino, DT_* type, next position) -> continue?
pub type DirEmit<'a> = dyn FnMut(&[u8], u64, u8, u64) -> bool + 'a;

/// readdir cookie of ".".
pub const POS_DOT: u64 = 0;
/// readdir cookie of "..".
pub const POS_DOTDOT: u64 = 1;
/// readdir position past the end.
pub const POS_EOF: u64 = u64::MAX >> 1;

/// A link or rename of `i` into the directory `pd`: a PROJINHERIT
/// directory takes only inodes of its own project (EXDEV otherwise, as on
/// XFS and ext4), so that moving a file in cannot carry its usage past the
/// project's quota.
fn check_project(pd: &Inode, i: &Inode) -> Result<()> {
    if pd.flags & IFLAG_PROJINHERIT != 0 && pd.projid != i.projid {
        return Err(Error::CrossProject);
    }
    Ok(())
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(Error::Invalid);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

impl<M: Media> Fs<M> {
    /// 46-bit keyed name hash, never 0 or 1 (reserved readdir cookies).
    pub fn name_hash(&self, name: &[u8]) -> u64 {
        dir_hash(self.hkey, name)
    }

    #[inline(never)]
    pub(crate) fn inode_get(&self, ino: u64) -> Result<Inode> {
        let mut v = [0u8; INODE_SIZE];
        if !self.bt_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v)? {
            return Err(Error::NotFound);
        }
        let i = Inode::decode(&v);
        // What no operation can produce is corruption, caught here before
        // the kernel builds a VFS inode from it: an unknown file type, or a
        // size past the largest file (an i_size the VFS sees as negative
        // sent iomap a zero-length mapping: WARN in iomap_iter), or more
        // mapped blocks than a file has logical blocks (the kernel's
        // blocks * 8 sectors overflowed: a Rust panic, a BUG).
        let known = matches!(i.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK | 0o010000 | 0o020000 | 0o060000 | 0o140000);
        // Hints no operation can produce (a 2^32-block unit would wreck
        // the allocator's arithmetic; a flag on the wrong type or without
        // its value) are refused too, as XFS's inode verifier does.
        if !known || i.size > MAX_BYTES || i.blocks > MAX_LBLK || i.check_hints().is_err() {
            return corrupt("inode btree record", ino);
        }
        Ok(i)
    }

    #[inline(never)]
    pub(crate) fn inode_put(&mut self, ino: u64, i: &Inode) -> Result<()> {
        let mut v = [0u8; INODE_SIZE];
        if !self.bt_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v)? {
            return Err(Error::NotFound);
        }
        i.encode(&mut v);
        self.bt_update(TreeId::Inode, Key::new(ino, 0, 0), &v)?;
        if i.size > V2_MAX_LBLK * BLOCK_SIZE {
            self.need_version(3);
        }
        Ok(())
    }

    /// Raises the superblock's format version to `v` in the running
    /// transaction, before the first record that needs it commits.
    pub(crate) fn need_version(&mut self, v: u32) {
        if self.sb.version < v {
            self.sb.version = v;
            self.sb_dirty();
        }
    }

    #[inline(never)]
    pub(crate) fn inode_insert(&mut self, ino: u64, i: &Inode, inline: &[u8]) -> Result<()> {
        let mut v = [0u8; INODE_SIZE];
        i.encode(&mut v);
        if inline.len() > INLINE_SYMLINK_MAX {
            return Err(Error::Invalid);
        }
        if i.is_symlink() {
            put16(&mut v, INODE_SYMLEN_OFF, inline.len() as u16);
        } else if !inline.is_empty() {
            return Err(Error::Invalid);
        }
        v[INODE_INLINE_OFF..INODE_INLINE_OFF + inline.len()].copy_from_slice(inline);
        self.bt_insert(TreeId::Inode, Key::new(ino, 0, 0), &v)
    }

    /// Read an inode.
    pub fn read_inode(&self, ino: u64) -> Result<Inode> {
        self.inode_get(ino)
    }

    /// The inodes numbered above `after`, in order: fills `out` with up to
    /// `out.len()` of them as (number, inode) and returns how many (0: no
    /// more). For a walk of every inode in batches, each batch its own
    /// read-only call, so that the caller need not hold the engine lock
    /// across the walk (the disk-quota recount at mount). Orphans, unlinked
    /// but not yet evicted, are included: they still hold their blocks.
    /// O(batch * log inodes).
    pub fn inodes_after(&self, after: u64, out: &mut [(u64, Inode)]) -> Result<usize> {
        let mut n = 0;
        let mut from = after;
        while n < out.len() {
            let Some(next) = from.checked_add(1) else { break };
            let Some(k) = self.bt_seek_ge(TreeId::Inode, Key::new(next, 0, 0), &mut [])? else { break };
            // inode_get checks the record as every other reader does
            out[n] = (k.a, self.inode_get(k.a)?);
            n += 1;
            from = k.a;
        }
        Ok(n)
    }

    /// setattr: store mode permission bits, flags, uid, gid, rdev and the four
    /// times. The file type, size (see `set_size`), blocks, nlink, parent,
    /// generation, the project ID and the extent size hints with their flags
    /// (see `set_fsxattr`) are owned by the engine and not changed here.
    pub fn write_inode(&mut self, ino: u64, new: &Inode) -> Result<()> {
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            i.mode = (i.mode & S_IFMT) | (new.mode & !S_IFMT);
            let owned = IFLAG_HINTS | IFLAG_PROJINHERIT;
            i.flags = (new.flags & !owned) | (i.flags & owned);
            i.uid = new.uid;
            i.gid = new.gid;
            i.rdev = new.rdev;
            i.atime = new.atime;
            i.mtime = new.mtime;
            i.ctime = new.ctime;
            i.btime = new.btime;
            fs.inode_put(ino, &i)
        })
    }

    /// FS_IOC_FSSETXATTR: store `flags` (IFLAG_*, hint flags included),
    /// the extent size hint and the CoW extent size hint (in blocks) and the
    /// change time, in one transaction, with XFS's rules: EXTSIZE only on a
    /// regular file, EXTSZINHERIT only on a directory, COWEXTSIZE on either;
    /// a hint without its flag is dropped (stored as 0), a flag without a
    /// hint is Invalid; a hint is at most 2^21 blocks and half the
    /// filesystem; and a regular file that has blocks mapped cannot change
    /// its extent size hint (setting the same one again is fine: chattr
    /// rewrites every field); PROJINHERIT only on a directory. Raises a
    /// version 1 superblock to 2 when a hint is stored.
    pub fn set_flags_hints(&mut self, ino: u64, flags: u32, extsize: u32, cowextsize: u32, t: Time) -> Result<()> {
        self.set_fsxattr(ino, flags, extsize, cowextsize, None, t)
    }

    /// `set_flags_hints`, and the project ID too when `projid` is given
    /// (FS_IOC_FSSETXATTR sets all of them in one transaction). The quota
    /// usage moves with the project ID in the caller, before this.
    pub fn set_fsxattr(&mut self, ino: u64, flags: u32, extsize: u32, cowextsize: u32, projid: Option<u32>, t: Time) -> Result<()> {
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            let (reg, dir) = (i.is_reg(), i.is_dir());
            if (flags & IFLAG_EXTSIZE != 0 && !reg)
                || (flags & IFLAG_EXTSZINHERIT != 0 && !dir)
                || (flags & IFLAG_COWEXTSIZE != 0 && !(reg || dir))
            {
                return Err(Error::Invalid);
            }
            let ext = if flags & (IFLAG_EXTSIZE | IFLAG_EXTSZINHERIT) != 0 { extsize } else { 0 };
            let cow = if flags & IFLAG_COWEXTSIZE != 0 { cowextsize } else { 0 };
            let limit = (MAX_EXTSIZE_BLOCKS as u64).min(fs.sb.total_blocks / 2);
            if ext as u64 > limit || cow as u64 > limit {
                return Err(Error::Invalid);
            }
            if reg && ext != i.extsize && fs.ext_next(ino, 0)?.is_some() {
                return Err(Error::Invalid);
            }
            i.flags = flags;
            i.extsize = ext;
            i.cowextsize = cow;
            if let Some(p) = projid {
                i.projid = p;
            }
            if i.check_hints().is_err() {
                return Err(Error::Invalid);
            }
            i.ctime = t;
            fs.inode_put(ino, &i)?;
            if ext != 0 || cow != 0 {
                fs.need_version(2);
            }
            Ok(())
        })
    }

    fn dir_inode(&self, dir: u64) -> Result<Inode> {
        let d = self.inode_get(dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        Ok(d)
    }

    /// Find a name: (key, ino, ftype).
    #[inline(never)]
    pub(crate) fn dir_find(&self, dir: u64, name: &[u8]) -> Result<Option<(Key, u64, u8)>> {
        let h = self.name_hash(name);
        let mut v = [0u8; 272];
        let mut k = Key::new(dir, h, 0);
        let mut next = self.bt_seek_ge(TreeId::Dir, k, &mut v)?;
        while let Some(kk) = next {
            if kk.a != dir || kk.b != h {
                break;
            }
            let len = v[DE_NAMELEN] as usize;
            if len == name.len() && v.get(DE_NAME..DE_NAME + len) == Some(name) {
                return Ok(Some((kk, le64(&v, DE_INO), v[DE_FTYPE])));
            }
            k = kk;
            next = self.bt_next(TreeId::Dir, k, &mut v)?;
        }
        Ok(None)
    }

    #[inline(never)]
    fn dir_add(&mut self, dir: u64, name: &[u8], ino: u64, ftype: u8) -> Result<()> {
        let h = self.name_hash(name);
        let mut v = [0u8; 272];
        // first free seq for this hash
        let mut seq = 0u64;
        let mut next = self.bt_seek_ge(TreeId::Dir, Key::new(dir, h, 0), &mut v)?;
        while let Some(k) = next {
            if k.a != dir || k.b != h || k.c != seq {
                break;
            }
            seq += 1;
            next = self.bt_next(TreeId::Dir, k, &mut v)?;
        }
        if seq > 0xffff {
            return Err(Error::NoSpace);
        }
        v.fill(0);
        put64(&mut v, DE_INO, ino);
        v[DE_FTYPE] = ftype;
        v[DE_NAMELEN] = name.len() as u8;
        v[DE_NAME..DE_NAME + name.len()].copy_from_slice(name);
        self.bt_insert(TreeId::Dir, Key::new(dir, h, seq), &v)
    }

    #[inline(never)]
    fn dir_set_target(&mut self, k: Key, ino: u64, ftype: u8) -> Result<()> {
        let mut v = [0u8; 272];
        if !self.bt_get(TreeId::Dir, k, &mut v)? {
            return corrupt("dir btree", 0);
        }
        put64(&mut v, DE_INO, ino);
        v[DE_FTYPE] = ftype;
        self.bt_update(TreeId::Dir, k, &v)
    }

    fn dir_is_empty(&self, dir: u64) -> Result<bool> {
        let mut v = [0u8; 272];
        Ok(match self.bt_seek_ge(TreeId::Dir, Key::new(dir, 0, 0), &mut v)? {
            Some(k) => k.a != dir,
            None => true,
        })
    }

    /// Adjust a directory after an entry change.
    #[inline(never)]
    fn dir_touch(&mut self, dir: u64, nlink_delta: i32, size_delta: i64, t: Time) -> Result<()> {
        let mut d = self.inode_get(dir)?;
        let nl = d.nlink as i64 + nlink_delta as i64;
        if nl > LINK_MAX as i64 {
            return Err(Error::TooManyLinks);
        }
        if nl < 0 {
            return corrupt("inode nlink", dir);
        }
        d.nlink = nl as u32;
        d.size = (d.size as i64).saturating_add(size_delta).max(0) as u64;
        d.mtime = t;
        d.ctime = t;
        self.inode_put(dir, &d)
    }

    pub(crate) fn orphan_add(&mut self, ino: u64) -> Result<()> {
        match self.bt_insert(TreeId::Orphan, Key::new(ino, 0, 0), &[]) {
            Err(Error::Exists) => Ok(()),
            r => r,
        }
    }

    pub(crate) fn orphan_remove(&mut self, ino: u64) -> Result<()> {
        self.bt_delete(TreeId::Orphan, Key::new(ino, 0, 0)).map(|_| ())
    }

    /// Look a name up in a directory ("." and ".." included).
    pub fn lookup(&self, dir: u64, name: &[u8]) -> Result<Option<u64>> {
        let d = self.dir_inode(dir)?;
        if name == b"." {
            return Ok(Some(dir));
        }
        if name == b".." {
            return Ok(Some(d.parent));
        }
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        if name.is_empty() {
            return Ok(None);
        }
        Ok(self.dir_find(dir, name)?.map(|x| x.1))
    }

    /// A new inode in directory `parent` (whose record is `pd`): regular
    /// files and directories inherit its extent size hints as on XFS
    /// (EXTSZINHERIT gives a file EXTSIZE and a directory EXTSZINHERIT;
    /// COWEXTSIZE passes on as it is), and every inode its project ID if
    /// it has PROJINHERIT.
    fn new_inode(&mut self, a: &NewInode, nlink: u32, parent: u64, pd: &Inode) -> Result<(u64, Inode)> {
        let ino = self.sb.next_ino;
        self.sb.next_ino = ino.checked_add(1).ok_or(Error::NoSpace)?;
        let generation = self.sb.next_generation;
        self.sb.next_generation = generation.wrapping_add(1);
        self.sb.inode_count = self.sb.inode_count.saturating_add(1);
        self.sb_dirty();
        let i = Inode {
            mode: a.mode,
            flags: a.flags,
            uid: a.uid,
            gid: a.gid,
            nlink,
            rdev: a.rdev,
            size: 0,
            blocks: 0,
            atime: a.time,
            mtime: a.time,
            ctime: a.time,
            btime: a.time,
            generation,
            parent,
            extsize: 0,
            cowextsize: 0,
            projid: 0,
        };
        let mut i = i;
        i.flags &= !(IFLAG_HINTS | IFLAG_PROJINHERIT);
        // project quota: a PROJINHERIT directory gives every new inode its
        // project ID, and new directories the flag too (XFS's
        // xfs_get_initial_prid and xfs_inode_inherit_flags)
        i.projid = inherited_projid(pd.flags, pd.projid);
        if pd.flags & IFLAG_PROJINHERIT != 0 && i.is_dir() {
            i.flags |= IFLAG_PROJINHERIT;
        }
        let (reg, dir) = (i.is_reg(), i.is_dir());
        if (reg || dir) && pd.flags & IFLAG_EXTSZINHERIT != 0 && pd.extsize != 0 {
            i.flags |= if dir { IFLAG_EXTSZINHERIT } else { IFLAG_EXTSIZE };
            i.extsize = pd.extsize;
        }
        if (reg || dir) && pd.flags & IFLAG_COWEXTSIZE != 0 && pd.cowextsize != 0 {
            i.flags |= IFLAG_COWEXTSIZE;
            i.cowextsize = pd.cowextsize;
        }
        Ok((ino, i))
    }

    #[inline(never)]
    fn set_symlen(&mut self, ino: u64, len: usize) -> Result<()> {
        let mut v = [0u8; INODE_SIZE];
        self.bt_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v)?;
        put16(&mut v, INODE_SYMLEN_OFF, len as u16);
        self.bt_update(TreeId::Inode, Key::new(ino, 0, 0), &v)
    }

    #[inline(never)]
    fn create_inner(&mut self, dir: u64, name: &[u8], a: &NewInode, target: &[u8]) -> Result<(u64, Inode)> {
        check_name(name)?;
        let pd = self.dir_inode(dir)?;
        if self.dir_find(dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let is_dir = a.mode & S_IFMT == S_IFDIR;
        let (ino, mut i) = self.new_inode(a, if is_dir { 2 } else { 1 }, dir, &pd)?;
        let inline = if target.len() <= INLINE_SYMLINK_MAX { target } else { &[] };
        if i.is_symlink() {
            i.size = target.len() as u64;
        }
        self.inode_insert(ino, &i, inline)?;
        if i.is_symlink() {
            self.set_symlen(ino, target.len())?;
            if symlink_blocks(target.len()) == 1 {
                let m = self.alloc_write_inner(ino, 0, 1, super::extent::AllocFlags::default())?;
                let off = m.pblk * BLOCK_SIZE;
                self.m.zero(off, BLOCK_SIZE);
                self.m.write(off, target);
                self.m.flush(off, BLOCK_SIZE);
                i = self.inode_get(ino)?;
            }
        }
        self.dir_add(dir, name, ino, i.ftype())?;
        self.dir_touch(dir, if is_dir { 1 } else { 0 }, 1, a.time)?;
        Ok((ino, i))
    }

    /// Create a file, directory, device node, fifo or socket.
    pub fn create(&mut self, dir: u64, name: &[u8], a: &NewInode) -> Result<(u64, Inode)> {
        if a.mode & S_IFMT == S_IFLNK || a.mode & S_IFMT == 0 {
            return Err(Error::Invalid);
        }
        self.run(|fs| fs.create_inner(dir, name, a, &[]))
    }

    /// Create a device node, fifo or socket (same as `create`).
    pub fn mknod(&mut self, dir: u64, name: &[u8], a: &NewInode) -> Result<(u64, Inode)> {
        self.create(dir, name, a)
    }

    /// Create a directory (mode's type bits are forced to S_IFDIR).
    pub fn mkdir(&mut self, dir: u64, name: &[u8], a: &NewInode) -> Result<(u64, Inode)> {
        let mut a = *a;
        a.mode = (a.mode & !S_IFMT) | S_IFDIR;
        self.create(dir, name, &a)
    }

    /// Create a symbolic link.
    pub fn symlink(&mut self, dir: u64, name: &[u8], target: &[u8], a: &NewInode) -> Result<(u64, Inode)> {
        if target.is_empty() || target.len() > SYMLINK_MAX {
            return Err(if target.is_empty() { Error::NotFound } else { Error::NameTooLong });
        }
        let mut a = *a;
        a.mode = (a.mode & !S_IFMT) | S_IFLNK;
        self.run(|fs| fs.create_inner(dir, name, &a, target))
    }

    /// Read a symlink target into `buf`; returns its length.
    pub fn read_link(&self, ino: u64, buf: &mut [u8]) -> Result<usize> {
        let mut v = [0u8; INODE_SIZE];
        if !self.bt_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v)? {
            return Err(Error::NotFound);
        }
        let i = Inode::decode(&v);
        if !i.is_symlink() {
            return Err(Error::Invalid);
        }
        let len = le16(&v, INODE_SYMLEN_OFF) as usize;
        if len > SYMLINK_MAX {
            return corrupt("inode symlink length", ino);
        }
        let n = len.min(buf.len());
        if len <= INLINE_SYMLINK_MAX {
            buf[..n].copy_from_slice(&v[INODE_INLINE_OFF..INODE_INLINE_OFF + n]);
        } else {
            let m = self.map(ino, 0, 1)?;
            if m.kind != super::extent::MapKind::Written {
                return corrupt("symlink target block", ino);
            }
            self.rd(m.pblk * BLOCK_SIZE, &mut buf[..n])?;
        }
        Ok(len)
    }

    /// Create an unnamed inode (O_TMPFILE): nlink 0, on the orphan list.
    pub fn tmpfile(&mut self, dir: u64, a: &NewInode) -> Result<(u64, Inode)> {
        self.run(|fs| {
            let pd = fs.dir_inode(dir)?;
            let (ino, i) = fs.new_inode(a, 0, dir, &pd)?;
            fs.inode_insert(ino, &i, &[])?;
            fs.orphan_add(ino)?;
            Ok((ino, i))
        })
    }

    /// Add a hard link.
    pub fn link(&mut self, ino: u64, dir: u64, name: &[u8], t: Time) -> Result<()> {
        self.run(|fs| {
            check_name(name)?;
            let pd = fs.dir_inode(dir)?;
            let mut i = fs.inode_get(ino)?;
            if i.is_dir() {
                return Err(Error::NotPermitted);
            }
            check_project(&pd, &i)?;
            if i.nlink >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
            if fs.dir_find(dir, name)?.is_some() {
                return Err(Error::Exists);
            }
            if i.nlink == 0 {
                fs.orphan_remove(ino)?;
            }
            i.nlink += 1;
            i.ctime = t;
            fs.inode_put(ino, &i)?;
            fs.dir_add(dir, name, ino, i.ftype())?;
            fs.dir_touch(dir, 0, 1, t)
        })
    }

    #[inline(never)]
    fn drop_link(&mut self, ino: u64, i: &mut Inode, t: Time) -> Result<()> {
        if i.nlink == 0 {
            return corrupt("inode nlink", ino);
        }
        i.nlink = if i.is_dir() { 0 } else { i.nlink - 1 };
        i.ctime = t;
        if i.nlink == 0 {
            self.orphan_add(ino)?;
        }
        self.inode_put(ino, i)
    }

    /// Remove a non-directory name. Returns the inode; if its nlink dropped to
    /// 0 it is on the orphan list until `evict`.
    pub fn unlink(&mut self, dir: u64, name: &[u8], t: Time) -> Result<u64> {
        self.run(|fs| {
            check_name(name)?;
            fs.dir_inode(dir)?;
            let (k, ino, _) = fs.dir_find(dir, name)?.ok_or(Error::NotFound)?;
            let mut i = fs.inode_get(ino)?;
            if i.is_dir() {
                return Err(Error::IsDir);
            }
            fs.bt_delete_found(TreeId::Dir, k, dir)?;
            fs.dir_touch(dir, 0, -1, t)?;
            fs.drop_link(ino, &mut i, t)?;
            Ok(ino)
        })
    }

    /// Remove an empty directory. Returns its inode (nlink 0, orphan until evict).
    pub fn rmdir(&mut self, dir: u64, name: &[u8], t: Time) -> Result<u64> {
        self.run(|fs| {
            check_name(name)?;
            fs.dir_inode(dir)?;
            let (k, ino, _) = fs.dir_find(dir, name)?.ok_or(Error::NotFound)?;
            let mut i = fs.inode_get(ino)?;
            if !i.is_dir() {
                return Err(Error::NotDir);
            }
            if !fs.dir_is_empty(ino)? {
                return Err(Error::NotEmpty);
            }
            fs.bt_delete_found(TreeId::Dir, k, dir)?;
            fs.dir_touch(dir, -1, -1, t)?;
            fs.drop_link(ino, &mut i, t)?;
            Ok(ino)
        })
    }

    /// Is `dir` equal to `anc` or below it?
    fn is_under(&self, mut dir: u64, anc: u64) -> Result<bool> {
        let mut steps = 0u32;
        loop {
            if dir == anc {
                return Ok(true);
            }
            if dir == ROOT_INO {
                return Ok(false);
            }
            dir = self.inode_get(dir)?.parent;
            steps += 1;
            if steps > 1 << 20 {
                return corrupt("directory parent chain", dir);
            }
        }
    }

    /// Rename (with RENAME_NOREPLACE / RENAME_EXCHANGE semantics).
    pub fn rename(&mut self, odir: u64, oname: &[u8], ndir: u64, nname: &[u8], fl: RenameFlags, t: Time) -> Result<()> {
        self.run(|fs| fs.rename_inner(odir, oname, ndir, nname, fl, t).map(drop))
    }

    /// RENAME_WHITEOUT: rename, and put a whiteout (a character device
    /// 0/0, as overlayfs expects) under the source name, both in one
    /// transaction so a crash leaves either the old names or the new names
    /// and the whiteout, never the source name missing. `wh` gives the
    /// whiteout's owner, permission bits and time (its type and rdev are
    /// forced). Combined with `noreplace` it is allowed, with `exchange` it
    /// is Invalid (as in the VFS). Returns the whiteout inode, or None when
    /// both names are links to the same inode: that rename does nothing, and
    /// makes no whiteout (the VFS never asks for it).
    pub fn rename_whiteout(
        &mut self,
        odir: u64,
        oname: &[u8],
        ndir: u64,
        nname: &[u8],
        fl: RenameFlags,
        wh: &NewInode,
    ) -> Result<Option<(u64, Inode)>> {
        if fl.exchange {
            return Err(Error::Invalid);
        }
        let mut a = *wh;
        a.mode = S_IFCHR | (a.mode & 0o7777);
        a.rdev = 0;
        a.flags = 0;
        let t = a.time;
        self.run(|fs| {
            if !fs.rename_inner(odir, oname, ndir, nname, fl, t)? {
                return Ok(None);
            }
            // the source entry is gone: the whiteout takes its name (a
            // character device: no extent size hints to inherit)
            let pd = fs.dir_inode(odir)?;
            let (ino, i) = fs.new_inode(&a, 1, odir, &pd)?;
            fs.inode_insert(ino, &i, &[])?;
            fs.dir_add(odir, oname, ino, i.ftype())?;
            fs.dir_touch(odir, 0, 1, t)?;
            Ok(Some((ino, i)))
        })
    }

    /// Returns false if it changed nothing (both names link the same inode).
    #[inline(never)]
    fn rename_inner(&mut self, odir: u64, oname: &[u8], ndir: u64, nname: &[u8], fl: RenameFlags, t: Time) -> Result<bool> {
        check_name(oname)?;
        check_name(nname)?;
        if fl.exchange && fl.noreplace {
            return Err(Error::Invalid);
        }
        let opd = self.dir_inode(odir)?;
        let npd = self.dir_inode(ndir)?;
        let (okey, oino, oft) = self.dir_find(odir, oname)?.ok_or(Error::NotFound)?;
        let mut src = self.inode_get(oino)?;
        let tgt = self.dir_find(ndir, nname)?;
        if fl.exchange {
            let (nkey, nino, nft) = tgt.ok_or(Error::NotFound)?;
            if nino == oino {
                return Ok(false);
            }
            let mut dst = self.inode_get(nino)?;
            check_project(&npd, &src)?;
            check_project(&opd, &dst)?;
            if odir != ndir {
                if src.is_dir() && self.is_under(ndir, oino)? {
                    return Err(Error::Invalid);
                }
                if dst.is_dir() && self.is_under(odir, nino)? {
                    return Err(Error::Invalid);
                }
            }
            self.dir_set_target(okey, nino, nft)?;
            self.dir_set_target(nkey, oino, oft)?;
            if odir != ndir {
                if src.is_dir() {
                    src.parent = ndir;
                    self.dir_touch(odir, -1, 0, t)?;
                    self.dir_touch(ndir, 1, 0, t)?;
                }
                if dst.is_dir() {
                    dst.parent = odir;
                    self.dir_touch(ndir, -1, 0, t)?;
                    self.dir_touch(odir, 1, 0, t)?;
                }
            }
            src.ctime = t;
            dst.ctime = t;
            self.inode_put(oino, &src)?;
            self.inode_put(nino, &dst)?;
            self.dir_touch(odir, 0, 0, t)?;
            self.dir_touch(ndir, 0, 0, t)?;
            return Ok(true);
        }
        if let Some((_, nino, _)) = tgt {
            if fl.noreplace {
                return Err(Error::Exists);
            }
            if nino == oino {
                return Ok(false);
            }
        }
        if src.is_dir() && odir != ndir && self.is_under(ndir, oino)? {
            return Err(Error::Invalid);
        }
        check_project(&npd, &src)?;
        if let Some((nkey, nino, _)) = tgt {
            let mut dst = self.inode_get(nino)?;
            if src.is_dir() {
                if !dst.is_dir() {
                    return Err(Error::NotDir);
                }
                if !self.dir_is_empty(nino)? {
                    return Err(Error::NotEmpty);
                }
            } else if dst.is_dir() {
                return Err(Error::IsDir);
            }
            self.bt_delete_found(TreeId::Dir, nkey, ndir)?;
            self.dir_touch(ndir, if dst.is_dir() { -1 } else { 0 }, -1, t)?;
            self.drop_link(nino, &mut dst, t)?;
        }
        self.bt_delete_found(TreeId::Dir, okey, odir)?;
        self.dir_touch(odir, 0, -1, t)?;
        self.dir_add(ndir, nname, oino, oft)?;
        self.dir_touch(ndir, 0, 1, t)?;
        if src.is_dir() && odir != ndir {
            src.parent = ndir;
            self.dir_touch(odir, -1, 0, t)?;
            self.dir_touch(ndir, 1, 0, t)?;
        }
        src.ctime = t;
        self.inode_put(oino, &src)?;
        Ok(true)
    }

    /// List a directory from cookie `pos`. The callback gets (name, ino,
    /// ftype, next_pos) and returns false to stop. "." is cookie 0, ".." 1,
    /// entries `hash << 16 | seq`.
    pub fn readdir(&self, dir: u64, pos: u64, cb: &mut DirEmit<'_>) -> Result<()> {
        let d = self.dir_inode(dir)?;
        if pos == POS_DOT && !cb(b".", dir, 4, POS_DOTDOT) {
            return Ok(());
        }
        if pos <= POS_DOTDOT && !cb(b"..", d.parent, 4, 2) {
            return Ok(());
        }
        let start = if pos < 2 { Key::new(dir, 0, 0) } else { Key::new(dir, pos >> 16, pos & 0xffff) };
        let mut v = [0u8; 272];
        let mut next = self.bt_seek_ge(TreeId::Dir, start, &mut v)?;
        while let Some(k) = next {
            if k.a != dir {
                break;
            }
            if k.c > 0xffff || k.b >= 1 << 46 {
                return corrupt("dir btree key", dir);
            }
            let len = v[DE_NAMELEN] as usize;
            let name = match v.get(DE_NAME..DE_NAME + len) {
                Some(n) => n,
                None => return corrupt("dir entry", dir),
            };
            let cookie = (k.b << 16) | k.c;
            if !cb(name, le64(&v, DE_INO), v[DE_FTYPE], cookie + 1) {
                return Ok(());
            }
            next = self.bt_next(TreeId::Dir, k, &mut v)?;
        }
        Ok(())
    }

    /// Free everything of an unlinked inode (nlink 0, no users). Large files are
    /// freed in several bounded transactions; the orphan record keeps the
    /// inode reachable until the last one.
    pub fn evict(&mut self, ino: u64) -> Result<()> {
        let i = self.inode_get(ino)?;
        if i.nlink != 0 {
            return Err(Error::Invalid);
        }
        self.run(|fs| fs.evict_inner(ino))
    }

    #[inline(never)]
    fn evict_inner(&mut self, ino: u64) -> Result<()> {
        self.orphan_add(ino)?;
        self.unmap_range_all(ino, 0, MAX_LBLK)?;
        self.xattr_remove_all(ino)?;
        self.bt_delete(TreeId::Inode, Key::new(ino, 0, 0))?;
        self.orphan_remove(ino)?;
        self.sb.inode_count = self.sb.inode_count.saturating_sub(1);
        self.sb_dirty();
        Ok(())
    }

    /// Mount-time orphan processing: evict unlinked inodes, finish truncates.
    pub(crate) fn reap_orphans(&mut self) -> Result<u64> {
        let mut n = 0;
        let mut last: Option<Key> = None;
        loop {
            let k = match self.bt_seek_ge(TreeId::Orphan, Key::new(0, 0, 0), &mut [])? {
                Some(k) => k,
                None => return Ok(n),
            };
            // Each pass removes the smallest record, so the next smallest is
            // larger. A record that survives its removal (malformed key, keys
            // out of order) would otherwise make mount spin here forever.
            if k.b != 0 || k.c != 0 || last.is_some_and(|l| k <= l) {
                return corrupt("orphan btree", k.a);
            }
            last = Some(k);
            let ino = k.a;
            match self.inode_get(ino) {
                Ok(i) if i.nlink == 0 => self.run(|fs| fs.evict_inner(ino))?,
                Ok(i) => self.run(|fs| {
                    let first = i.size.div_ceil(BLOCK_SIZE).min(MAX_LBLK);
                    fs.unmap_range_all(ino, first, MAX_LBLK - first)?;
                    fs.orphan_remove(ino)
                })?,
                Err(Error::NotFound) => self.run(|fs| fs.orphan_remove(ino))?,
                Err(e) => return Err(e),
            }
            n += 1;
        }
    }
}

impl<M: Media> Fs<M> {
    /// fsck -y: set the link count and block count of an inode (and keep the
    /// orphan list consistent with nlink 0).
    pub fn repair_inode_counts(&mut self, ino: u64, nlink: u32, blocks: u64) -> Result<()> {
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            i.nlink = nlink;
            i.blocks = blocks;
            fs.inode_put(ino, &i)?;
            if nlink == 0 {
                fs.orphan_add(ino)?;
            }
            Ok(())
        })
    }

    /// fsck -y: set a directory's size (its entry count).
    pub fn repair_dir_size(&mut self, ino: u64, size: u64) -> Result<()> {
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            i.size = size;
            fs.inode_put(ino, &i)
        })
    }

    /// fsck -y: drop an orphan record.
    pub fn repair_drop_orphan(&mut self, ino: u64) -> Result<()> {
        self.run(|fs| fs.orphan_remove(ino))
    }

    /// fsck -y: replace the refcount btree by `recs` = (pblk, len, count >= 2).
    pub fn repair_refcounts(&mut self, recs: &[(u64, u64, u64)]) -> Result<()> {
        self.run(|fs| {
            loop {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                match fs.bt_seek_ge(TreeId::Refcount, Key::new(0, 0, 0), &mut [0u8; 16])? {
                    Some(k) => fs.bt_delete_found(TreeId::Refcount, k, k.a)?,
                    None => break,
                }
            }
            for &(p, l, c) in recs {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                let mut v = [0u8; 16];
                put64(&mut v, 0, l);
                put64(&mut v, 8, c);
                fs.bt_insert(TreeId::Refcount, Key::new(p, 0, 0), &v)?;
            }
            Ok(())
        })
    }
}
