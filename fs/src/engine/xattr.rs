//! Extended attributes: (ino, hash(namespace, name), seq) -> record. Values up
//! to XATTR_INLINE_MAX bytes live in the record, larger ones (up to 64 KiB) in
//! contiguous blocks whose crc is kept in the record.

use super::btree::Key;
use super::crc::Crc32c;
use super::fs::{xattr_hash, Fs};
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};


/// How `xattr_set` treats an existing attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with Exists if present (XATTR_CREATE).
    Create,
    /// Fail with NoData if absent (XATTR_REPLACE).
    Replace,
}

/// Decoded xattr record header.
#[derive(Clone, Copy, Debug)]
pub struct XattrRec {
    /// Namespace index.
    pub ns: u8,
    /// Value length.
    pub vlen: u64,
    /// First value block (external values).
    pub pblk: u64,
    /// Value blocks (external values).
    pub nblk: u64,
}

impl<M: Media> Fs<M> {
    fn xattr_hash(&self, ns: u8, name: &[u8]) -> u64 {
        xattr_hash(self.hkey, ns, name)
    }

    /// Decode and check a record. Returns header and the name.
    pub(crate) fn xattr_rec(&self, ino: u64, v: &[u8; 512]) -> Result<XattrRec> {
        let vlen = le32(v, XA_VLEN) as u64;
        let ext = v[XA_FLAGS] & XA_EXTERNAL != 0;
        let r = XattrRec { ns: v[XA_NS], vlen, pblk: le64(v, XA_PBLK), nblk: le32(v, XA_NBLK) as u64 };
        let bad = vlen > XATTR_VALUE_MAX as u64
            || (!ext && vlen > XATTR_INLINE_MAX as u64)
            || (ext
                && (r.nblk != vlen.div_ceil(BLOCK_SIZE)
                    || r.pblk < self.sb.data_start
                    || r.pblk.saturating_add(r.nblk) > self.sb.total_blocks - 1));
        if bad {
            return corrupt("xattr btree record", ino);
        }
        Ok(r)
    }

    #[inline(never)]
    fn xattr_find(&self, ino: u64, ns: u8, name: &[u8], v: &mut [u8; 512]) -> Result<Option<Key>> {
        let h = self.xattr_hash(ns, name);
        let mut next = self.bt_seek_ge(TreeId::Xattr, Key::new(ino, h, 0), v)?;
        while let Some(k) = next {
            if k.a != ino || k.b != h {
                break;
            }
            let len = v[XA_NAMELEN] as usize;
            if v[XA_NS] == ns && len == name.len() && v.get(XA_NAME..XA_NAME + len) == Some(name) {
                return Ok(Some(k));
            }
            next = self.bt_next(TreeId::Xattr, k, v)?;
        }
        Ok(None)
    }

    /// Read an attribute value into `buf`; returns its length. An empty `buf`
    /// only asks for the length; a too small one gives Range.
    pub fn xattr_get(&self, ino: u64, ns: u8, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let mut v = [0u8; 512];
        if self.xattr_find(ino, ns, name, &mut v)?.is_none() {
            self.inode_get(ino)?;
            return Err(Error::NoData);
        }
        let r = self.xattr_rec(ino, &v)?;
        let n = r.vlen as usize;
        if buf.is_empty() {
            return Ok(n);
        }
        if buf.len() < n {
            return Err(Error::Range);
        }
        if v[XA_FLAGS] & XA_EXTERNAL != 0 {
            self.rd(r.pblk * BLOCK_SIZE, &mut buf[..n])?;
            let mut c = Crc32c::new();
            c.update(&buf[..n]);
            if c.finish() != le32(&v, XA_VCRC) {
                return corrupt("xattr value", r.pblk);
            }
        } else {
            buf[..n].copy_from_slice(&v[XATTR_INLINE_OFF..XATTR_INLINE_OFF + n]);
        }
        Ok(n)
    }

    #[inline(never)]
    fn xattr_drop(&mut self, ino: u64, k: Key, v: &[u8; 512]) -> Result<()> {
        let r = self.xattr_rec(ino, v)?;
        // k came from a seek: callers loop until the inode has no xattrs left
        self.bt_delete_found(TreeId::Xattr, k, ino)?;
        if v[XA_FLAGS] & XA_EXTERNAL != 0 {
            self.free_deferred(r.pblk, r.nblk)?;
        }
        Ok(())
    }

    /// Set an attribute.
    pub fn xattr_set(&mut self, ino: u64, ns: u8, name: &[u8], value: &[u8], mode: XattrMode) -> Result<()> {
        Self::xattr_check(name, value)?;
        self.run(|fs| fs.xattr_set_tx(ino, ns, name, value, mode))
    }

    fn xattr_check(name: &[u8], value: &[u8]) -> Result<()> {
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(if name.is_empty() { Error::Invalid } else { Error::Range });
        }
        if value.len() > XATTR_VALUE_MAX {
            return Err(Error::TooBig);
        }
        Ok(())
    }

    /// Set (`Some`) or remove (`None`) an attribute and give the inode a new
    /// mode and ctime in the same transaction. A POSIX ACL and the mode bits
    /// derived from it must succeed or fail together: an ACL that does not
    /// fit (ENOSPC) leaves the mode as it was.
    pub fn xattr_set_with_mode(
        &mut self,
        ino: u64,
        ns: u8,
        name: &[u8],
        value: Option<&[u8]>,
        new_mode: u32,
        ctime: Time,
    ) -> Result<()> {
        if let Some(v) = value {
            Self::xattr_check(name, v)?;
        }
        self.run(|fs| {
            match value {
                Some(v) => fs.xattr_set_tx(ino, ns, name, v, XattrMode::Any)?,
                None => match fs.xattr_remove_tx(ino, ns, name) {
                    Ok(()) | Err(Error::NoData) => {}
                    Err(e) => return Err(e),
                },
            }
            let mut i = fs.inode_get(ino)?;
            i.mode = new_mode;
            i.ctime = ctime;
            fs.inode_put(ino, &i)
        })
    }

    #[inline(never)]
    fn xattr_set_tx(&mut self, ino: u64, ns: u8, name: &[u8], value: &[u8], mode: XattrMode) -> Result<()> {
        {
            let fs = self;
            fs.inode_get(ino)?;
            let mut v = [0u8; 512];
            let h = fs.xattr_hash(ns, name);
            let mut seq = 0;
            match fs.xattr_find(ino, ns, name, &mut v)? {
                Some(k) => {
                    if mode == XattrMode::Create {
                        return Err(Error::Exists);
                    }
                    fs.xattr_drop(ino, k, &v)?;
                    seq = k.c;
                }
                None => {
                    if mode == XattrMode::Replace {
                        return Err(Error::NoData);
                    }
                    let mut next = fs.bt_seek_ge(TreeId::Xattr, Key::new(ino, h, 0), &mut v)?;
                    while let Some(k) = next {
                        if k.a != ino || k.b != h || k.c != seq {
                            break;
                        }
                        seq += 1;
                        next = fs.bt_next(TreeId::Xattr, k, &mut v)?;
                    }
                }
            }
            v.fill(0);
            v[XA_NS] = ns;
            v[XA_NAMELEN] = name.len() as u8;
            put32(&mut v, XA_VLEN, value.len() as u32);
            v[XA_NAME..XA_NAME + name.len()].copy_from_slice(name);
            if value.len() <= XATTR_INLINE_MAX {
                v[XATTR_INLINE_OFF..XATTR_INLINE_OFF + value.len()].copy_from_slice(value);
            } else {
                let nblk = (value.len() as u64).div_ceil(BLOCK_SIZE);
                let p = fs.alloc_exact(nblk)?;
                let off = p * BLOCK_SIZE;
                fs.m.zero(off, nblk * BLOCK_SIZE);
                fs.m.write(off, value);
                fs.m.flush(off, nblk * BLOCK_SIZE);
                v[XA_FLAGS] = XA_EXTERNAL;
                put64(&mut v, XA_PBLK, p);
                put32(&mut v, XA_NBLK, nblk as u32);
                put32(&mut v, XA_VCRC, super::crc::crc32c(value));
            }
            fs.bt_insert(TreeId::Xattr, Key::new(ino, h, seq), &v)
        }
    }

    /// Remove an attribute.
    pub fn xattr_remove(&mut self, ino: u64, ns: u8, name: &[u8]) -> Result<()> {
        self.run(|fs| fs.xattr_remove_tx(ino, ns, name))
    }

    fn xattr_remove_tx(&mut self, ino: u64, ns: u8, name: &[u8]) -> Result<()> {
        let mut v = [0u8; 512];
        match self.xattr_find(ino, ns, name, &mut v)? {
            Some(k) => self.xattr_drop(ino, k, &v),
            None => {
                self.inode_get(ino)?;
                Err(Error::NoData)
            }
        }
    }

    /// List attributes: callback (namespace, name, value length).
    pub fn xattr_list(&self, ino: u64, cb: &mut dyn FnMut(u8, &[u8], u64)) -> Result<()> {
        self.inode_get(ino)?;
        let mut v = [0u8; 512];
        let mut next = self.bt_seek_ge(TreeId::Xattr, Key::new(ino, 0, 0), &mut v)?;
        while let Some(k) = next {
            if k.a != ino {
                break;
            }
            let r = self.xattr_rec(ino, &v)?;
            let len = v[XA_NAMELEN] as usize;
            match v.get(XA_NAME..XA_NAME + len) {
                Some(n) => cb(r.ns, n, r.vlen),
                None => return corrupt("xattr btree record", ino),
            }
            next = self.bt_next(TreeId::Xattr, k, &mut v)?;
        }
        Ok(())
    }

    /// Where an inode's attributes live, for FIEMAP_FLAG_XATTR: in key order,
    /// each record's leaf entry in the xattr btree (`inline` true: bytes
    /// inside a metadata block shared with other records, not block
    /// aligned), followed by its value blocks if the value is external
    /// (`inline` false). Adjacent ranges of the same kind are merged. The
    /// callback gets (media byte address, byte length, inline) and returns
    /// false to stop.
    pub fn xattr_extents(&self, ino: u64, cb: &mut dyn FnMut(u64, u64, bool) -> bool) -> Result<()> {
        self.inode_get(ino)?;
        let es = TreeId::Xattr.leaf_entry();
        let mut v = [0u8; 512];
        // the range not yet emitted: (address, length, inline)
        let mut pend: Option<(u64, u64, bool)> = None;
        let mut add = |pend: &mut Option<(u64, u64, bool)>, a: u64, l: u64, inl: bool| -> bool {
            match pend {
                Some((pa, pl, pi)) if *pi == inl && *pa + *pl == a => {
                    *pl += l;
                    true
                }
                _ => {
                    let go = match *pend {
                        Some((pa, pl, pi)) => cb(pa, pl, pi),
                        None => true,
                    };
                    *pend = Some((a, l, inl));
                    go
                }
            }
        };
        let mut next = self.bt_seek_ge(TreeId::Xattr, Key::new(ino, 0, 0), &mut v)?;
        while let Some(k) = next {
            if k.a != ino {
                break;
            }
            let r = self.xattr_rec(ino, &v)?;
            let Some(addr) = self.bt_entry_addr(TreeId::Xattr, k)? else {
                return corrupt("xattr btree", ino);
            };
            if !add(&mut pend, addr, es, true) {
                return Ok(());
            }
            if v[XA_FLAGS] & XA_EXTERNAL != 0 && !add(&mut pend, r.pblk * BLOCK_SIZE, r.nblk * BLOCK_SIZE, false) {
                return Ok(());
            }
            next = self.bt_next(TreeId::Xattr, k, &mut v)?;
        }
        if let Some((a, l, i)) = pend {
            cb(a, l, i);
        }
        Ok(())
    }

    #[inline(never)]
    pub(crate) fn xattr_remove_all(&mut self, ino: u64) -> Result<()> {
        let mut v = [0u8; 512];
        loop {
            if !self.tx_has_room() {
                self.tx_restart()?;
            }
            match self.bt_seek_ge(TreeId::Xattr, Key::new(ino, 0, 0), &mut v)? {
                Some(k) if k.a == ino => self.xattr_drop(ino, k, &v)?,
                _ => return Ok(()),
            }
        }
    }
}
