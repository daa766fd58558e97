//! One generic B+tree over the media, used for every tree.
//!
//! Keys are three u64 compared lexicographically; each tree has a fixed value
//! size. Nodes are whole blocks: a 64-byte header, then packed entries (leaf:
//! key + value; internal: key + child block). Internal entry `i` covers keys in
//! `[key_i, key_{i+1})`; entry 0 covers everything below key 1 (its own key
//! is informational only and never used for searching). Nodes are never empty
//! except that an empty tree has no root at all. Iteration re-descends from
//! the root (no parent pointers, no recursion, fixed-size path stack), and the
//! working buffers are small: nodes are read and shifted in pieces.

use core::sync::atomic::Ordering;
use super::fs::Fs;
use super::journal::LoggedBlock;
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};

/// A btree key: three u64 compared lexicographically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Most significant part.
    pub a: u64,
    /// Middle part.
    pub b: u64,
    /// Least significant part.
    pub c: u64,
}

impl Key {
    /// Make a key.
    pub const fn new(a: u64, b: u64, c: u64) -> Key {
        Key { a, b, c }
    }
    /// Encode (24 bytes).
    pub fn encode(&self) -> [u8; 24] {
        let mut o = [0u8; 24];
        o[..8].copy_from_slice(&self.a.to_le_bytes());
        o[8..16].copy_from_slice(&self.b.to_le_bytes());
        o[16..].copy_from_slice(&self.c.to_le_bytes());
        o
    }
    /// Decode.
    pub fn decode(b: &[u8]) -> Key {
        Key { a: le64(b, 0), b: le64(b, 8), c: le64(b, 16) }
    }
    /// The next key, if any.
    pub fn succ(self) -> Option<Key> {
        if self.c < u64::MAX {
            Some(Key { c: self.c + 1, ..self })
        } else if self.b < u64::MAX {
            Some(Key { b: self.b + 1, c: 0, ..self })
        } else if self.a < u64::MAX {
            Some(Key { a: self.a + 1, b: 0, c: 0 })
        } else {
            None
        }
    }
}

/// Node header field offsets.
pub const NODE_TREE_OFF: u64 = 24;
/// Level (0 = leaf).
pub const NODE_LEVEL_OFF: u64 = 26;
/// Number of entries.
pub const NODE_NKEYS_OFF: u64 = 28;

/// Entry size of a node of `tree` at `level`.
pub const fn entry_size(t: TreeId, level: u16) -> u64 {
    if level == 0 {
        t.leaf_entry()
    } else {
        INTERNAL_ENTRY
    }
}
/// Capacity of a node of `tree` at `level`.
pub const fn node_cap(t: TreeId, level: u16) -> u64 {
    if level == 0 {
        t.leaf_cap()
    } else {
        INTERNAL_CAP
    }
}

#[derive(Clone, Copy)]
struct Path {
    h: usize,
    blk: [u64; MAX_HEIGHT],
    idx: [u16; MAX_HEIGHT],
    n: [u16; MAX_HEIGHT],
}

impl<M: Media> Fs<M> {
    /// Check a node header (and crc) and return its entry count.
    pub(crate) fn node_check(&self, t: TreeId, blk: u64, level: u16) -> Result<u64> {
        if blk < self.sb.data_start || blk >= self.sb.total_blocks.saturating_sub(1) {
            return corrupt(t.name(), blk);
        }
        let mut h = [0u8; 32];
        self.rd(blk * BLOCK_SIZE, &mut h)?;
        let n = le16(&h, NODE_NKEYS_OFF as usize) as u64;
        if le64(&h, 0) != BT_MAGIC
            || le64(&h, BLK_NO_OFF as usize) != blk
            || h[NODE_TREE_OFF as usize] != t as u8
            || le16(&h, NODE_LEVEL_OFF as usize) != level
            || n == 0
            || n > node_cap(t, level)
        {
            return corrupt(t.name(), blk);
        }
        let slot = &self.verified[(blk % super::fs::VCACHE as u64) as usize];
        if slot.load(Ordering::Relaxed) != blk + 1 && !self.is_unsealed(blk) {
            if le32(&h, BLK_CRC_OFF as usize) != self.block_crc(blk)? {
                return corrupt(t.name(), blk);
            }
            slot.store(blk + 1, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn key_at(&self, blk: u64, es: u64, i: u64) -> Result<Key> {
        let mut b = [0u8; 24];
        self.rd(blk * BLOCK_SIZE + BT_HDR + i * es, &mut b)?;
        Ok(Key::decode(&b))
    }

    fn child_at(&self, blk: u64, i: u64) -> Result<u64> {
        self.rd_u64(blk * BLOCK_SIZE + BT_HDR + i * INTERNAL_ENTRY + KEY_SIZE)
    }

    fn val_at(&self, t: TreeId, blk: u64, i: u64, val: &mut [u8]) -> Result<()> {
        let n = (t.value_size() as usize).min(val.len());
        self.rd(blk * BLOCK_SIZE + BT_HDR + i * t.leaf_entry() + KEY_SIZE, &mut val[..n])
    }

    /// First index with key >= k (`upper`: first index with key > k).
    /// In internal nodes (`upper`) key 0 is never consulted: entry 0 covers
    /// everything below key 1.
    fn search(&self, blk: u64, es: u64, n: u64, k: Key, upper: bool) -> Result<u64> {
        let (mut lo, mut hi) = (if upper { 1u64 } else { 0 }, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let km = self.key_at(blk, es, mid)?;
            if km < k || (upper && km == k) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    fn descend(&self, t: TreeId, k: Key) -> Result<Path> {
        let r = self.sb.trees[t as usize];
        let mut p = Path { h: r.height as usize, blk: [0; MAX_HEIGHT], idx: [0; MAX_HEIGHT], n: [0; MAX_HEIGHT] };
        if p.h > MAX_HEIGHT {
            return corrupt("superblock tree root", 0);
        }
        let mut blk = r.root;
        let mut d = 0;
        // the key range the parent gives this node: [lo, hi)
        let (mut lo, mut hi): (Option<Key>, Option<Key>) = (None, None);
        while d < p.h {
            let level = (p.h - 1 - d) as u16;
            let n = self.node_check(t, blk, level)?;
            p.blk[d] = blk;
            p.n[d] = n as u16;
            let es = if level == 0 { t.leaf_entry() } else { INTERNAL_ENTRY };
            // a child pointer to the wrong node (a sibling, a node of another
            // level's subtree) shows as keys outside the range; key 0 of an
            // internal node is informational, so its first checked key is 1
            let first = if level == 0 { 0 } else { 1 };
            if n > first {
                if lo.is_some_and(|lo| self.key_at(blk, es, first).is_ok_and(|k0| k0 < lo))
                    || hi.is_some_and(|hi| self.key_at(blk, es, n - 1).is_ok_and(|kn| kn >= hi))
                {
                    return corrupt(t.name(), blk);
                }
            }
            if level == 0 {
                p.idx[d] = self.search(blk, t.leaf_entry(), n, k, false)? as u16;
            } else {
                let i = self.search(blk, INTERNAL_ENTRY, n, k, true)?.saturating_sub(1);
                p.idx[d] = i as u16;
                if i > 0 {
                    lo = Some(self.key_at(blk, INTERNAL_ENTRY, i)?);
                }
                if i + 1 < n {
                    hi = Some(self.key_at(blk, INTERNAL_ENTRY, i + 1)?);
                }
                blk = self.child_at(blk, i)?;
            }
            d += 1;
        }
        Ok(p)
    }

    /// Descend from `blk` at `level` always taking the first (or last) child.
    fn edge_leaf(&self, t: TreeId, mut blk: u64, mut level: u16, last: bool) -> Result<(u64, u64)> {
        loop {
            let n = self.node_check(t, blk, level)?;
            if level == 0 {
                return Ok((blk, n));
            }
            blk = self.child_at(blk, if last { n - 1 } else { 0 })?;
            level -= 1;
        }
    }

    /// Exact lookup; copies the value into `val`.
    pub(crate) fn bt_get(&self, t: TreeId, k: Key, val: &mut [u8]) -> Result<bool> {
        let p = self.descend(t, k)?;
        if p.h == 0 {
            return Ok(false);
        }
        let d = p.h - 1;
        let (i, n) = (p.idx[d] as u64, p.n[d] as u64);
        if i < n && self.key_at(p.blk[d], t.leaf_entry(), i)? == k {
            self.val_at(t, p.blk[d], i, val)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Smallest key >= k.
    pub(crate) fn bt_seek_ge(&self, t: TreeId, k: Key, val: &mut [u8]) -> Result<Option<Key>> {
        let p = self.descend(t, k)?;
        if p.h == 0 {
            return Ok(None);
        }
        let es = t.leaf_entry();
        let d = p.h - 1;
        if (p.idx[d] as u64) < p.n[d] as u64 {
            let i = p.idx[d] as u64;
            self.val_at(t, p.blk[d], i, val)?;
            return Self::ordered(t, p.blk[d], k, self.key_at(p.blk[d], es, i)?, true);
        }
        let mut up = d;
        while up > 0 {
            up -= 1;
            if (p.idx[up] as u64) + 1 < p.n[up] as u64 {
                let c = self.child_at(p.blk[up], p.idx[up] as u64 + 1)?;
                let (leaf, _) = self.edge_leaf(t, c, (p.h - 2 - up) as u16, false)?;
                self.val_at(t, leaf, 0, val)?;
                return Self::ordered(t, leaf, k, self.key_at(leaf, es, 0)?, true);
            }
        }
        Ok(None)
    }

    /// A seek's answer must lie on the asked side of `k` (>= for seek_ge,
    /// <= for seek_le). Keys out of order on media (a damaged node whose crc
    /// was rewritten, a cross-linked child) could otherwise send every
    /// `bt_next` loop (readdir, evict, truncate, orphan reaping) around the
    /// same keys forever; with this check each step strictly advances, so
    /// every iteration over a tree ends.
    fn ordered(t: TreeId, blk: u64, k: Key, found: Key, ge: bool) -> Result<Option<Key>> {
        if (ge && found < k) || (!ge && found > k) {
            return corrupt(t.name(), blk);
        }
        Ok(Some(found))
    }

    /// Largest key <= k.
    pub(crate) fn bt_seek_le(&self, t: TreeId, k: Key, val: &mut [u8]) -> Result<Option<Key>> {
        let p = self.descend(t, k)?;
        if p.h == 0 {
            return Ok(None);
        }
        let es = t.leaf_entry();
        let d = p.h - 1;
        let i = p.idx[d] as u64;
        if i < p.n[d] as u64 {
            let ki = self.key_at(p.blk[d], es, i)?;
            if ki == k {
                self.val_at(t, p.blk[d], i, val)?;
                return Ok(Some(ki));
            }
        }
        if i > 0 {
            self.val_at(t, p.blk[d], i - 1, val)?;
            return Self::ordered(t, p.blk[d], k, self.key_at(p.blk[d], es, i - 1)?, false);
        }
        let mut up = d;
        while up > 0 {
            up -= 1;
            if p.idx[up] > 0 {
                let c = self.child_at(p.blk[up], p.idx[up] as u64 - 1)?;
                let (leaf, n) = self.edge_leaf(t, c, (p.h - 2 - up) as u16, true)?;
                self.val_at(t, leaf, n - 1, val)?;
                return Self::ordered(t, leaf, k, self.key_at(leaf, es, n - 1)?, false);
            }
        }
        Ok(None)
    }

    /// Media byte address of the leaf entry (key and value) holding `k`, if
    /// present. Valid until the tree next changes.
    pub(crate) fn bt_entry_addr(&self, t: TreeId, k: Key) -> Result<Option<u64>> {
        let p = self.descend(t, k)?;
        if p.h == 0 {
            return Ok(None);
        }
        let d = p.h - 1;
        let (i, n) = (p.idx[d] as u64, p.n[d] as u64);
        if i < n && self.key_at(p.blk[d], t.leaf_entry(), i)? == k {
            return Ok(Some(p.blk[d] * BLOCK_SIZE + BT_HDR + i * t.leaf_entry()));
        }
        Ok(None)
    }

    /// Smallest key > k.
    pub(crate) fn bt_next(&self, t: TreeId, k: Key, val: &mut [u8]) -> Result<Option<Key>> {
        match k.succ() {
            Some(s) => self.bt_seek_ge(t, s, val),
            None => Ok(None),
        }
    }

    /// Move bytes within the media through a small buffer (overlap-safe).
    fn move_bytes(&mut self, dst: &LoggedBlock, dst_off: u64, src: u64, len: u64) -> Result<()> {
        let mut buf = [0u8; 256];
        let dabs = dst.blk() * BLOCK_SIZE + dst_off;
        if dabs > src && dabs < src + len {
            let mut rem = len;
            while rem > 0 {
                let k = rem.min(256);
                rem -= k;
                self.rd(src + rem, &mut buf[..k as usize])?;
                self.mwrite(dst, dst_off + rem, &buf[..k as usize]);
            }
        } else {
            let mut done = 0;
            while done < len {
                let k = (len - done).min(256);
                self.rd(src + done, &mut buf[..k as usize])?;
                self.mwrite(dst, dst_off + done, &buf[..k as usize]);
                done += k;
            }
        }
        Ok(())
    }

    fn node_init(&mut self, lb: &LoggedBlock, t: TreeId, level: u16) -> Result<()> {
        let mut h = [0u8; 32];
        put64(&mut h, 0, BT_MAGIC);
        put64(&mut h, BLK_NO_OFF as usize, lb.blk());
        h[NODE_TREE_OFF as usize] = t as u8;
        put16(&mut h, NODE_LEVEL_OFF as usize, level);
        self.mwrite(lb, 0, &h);
        self.dirty(lb)
    }

    fn set_nkeys(&mut self, lb: &LoggedBlock, n: u64) -> Result<()> {
        self.mwrite(lb, NODE_NKEYS_OFF, &(n as u16).to_le_bytes());
        self.dirty(lb)
    }

    /// Insert an entry at `pos` in a node holding `n` entries (caller sets nkeys).
    fn put_entry(&mut self, lb: &LoggedBlock, es: u64, n: u64, pos: u64, k: Key, payload: &[u8]) -> Result<()> {
        let base = lb.blk() * BLOCK_SIZE + BT_HDR;
        if pos < n {
            self.move_bytes(lb, BT_HDR + (pos + 1) * es, base + pos * es, (n - pos) * es)?;
        }
        self.mwrite(lb, BT_HDR + pos * es, &k.encode());
        if !payload.is_empty() {
            self.mwrite(lb, BT_HDR + pos * es + KEY_SIZE, payload);
        }
        self.dirty(lb)
    }

    /// Insert a new key. Err(Exists) if present.
    pub(crate) fn bt_insert(&mut self, t: TreeId, key: Key, val: &[u8]) -> Result<()> {
        if val.len() as u64 != t.value_size() {
            return Err(Error::Invalid);
        }
        let r = self.sb.trees[t as usize];
        if r.height == 0 {
            let lb = self.alloc_meta()?;
            self.node_init(&lb, t, 0)?;
            self.put_entry(&lb, t.leaf_entry(), 0, 0, key, val)?;
            self.set_nkeys(&lb, 1)?;
            self.sb.trees[t as usize] = TreeRoot { root: lb.blk(), height: 1 };
            self.sb_dirty();
            return Ok(());
        }
        let p = self.descend(t, key)?;
        let h = p.h;
        let mut d = h - 1;
        if (p.idx[d] as u64) < p.n[d] as u64 && self.key_at(p.blk[d], t.leaf_entry(), p.idx[d] as u64)? == key {
            return Err(Error::Exists);
        }
        let mut ikey = key;
        let mut child = [0u8; 8];
        let mut pos = p.idx[d] as u64;
        loop {
            let level = (h - 1 - d) as u16;
            let es = entry_size(t, level);
            let cap = node_cap(t, level);
            let n = p.n[d] as u64;
            let lb = self.log(p.blk[d])?;
            let payload: &[u8] = if level == 0 { val } else { &child };
            if n < cap {
                self.put_entry(&lb, es, n, pos, ikey, payload)?;
                self.set_nkeys(&lb, n + 1)?;
                return Ok(());
            }
            // split: entries [m, n) move to a new right sibling
            let rb = self.alloc_meta()?;
            self.node_init(&rb, t, level)?;
            let m = if pos == n { n } else { n / 2 };
            let base = lb.blk() * BLOCK_SIZE + BT_HDR;
            if m < n {
                self.move_bytes(&rb, BT_HDR, base + m * es, (n - m) * es)?;
            }
            if pos < m || (pos == m && m < n) {
                self.put_entry(&lb, es, m, pos, ikey, payload)?;
                self.set_nkeys(&lb, m + 1)?;
                self.set_nkeys(&rb, n - m)?;
            } else {
                self.put_entry(&rb, es, n - m, pos - m, ikey, payload)?;
                self.set_nkeys(&rb, n - m + 1)?;
                self.set_nkeys(&lb, m)?;
            }
            let sep = self.key_at(rb.blk(), es, 0)?;
            if d == 0 {
                if h >= MAX_HEIGHT {
                    return Err(Error::NoSpace);
                }
                let k0 = self.key_at(lb.blk(), es, 0)?;
                let nr = self.alloc_meta()?;
                self.node_init(&nr, t, level + 1)?;
                self.put_entry(&nr, INTERNAL_ENTRY, 0, 0, k0, &lb.blk().to_le_bytes())?;
                self.put_entry(&nr, INTERNAL_ENTRY, 1, 1, sep, &rb.blk().to_le_bytes())?;
                self.set_nkeys(&nr, 2)?;
                self.sb.trees[t as usize] = TreeRoot { root: nr.blk(), height: h as u32 + 1 };
                self.sb_dirty();
                return Ok(());
            }
            ikey = sep;
            child = rb.blk().to_le_bytes();
            d -= 1;
            pos = p.idx[d] as u64 + 1;
        }
    }

    /// Replace the value of an existing key. Err(NotFound) if absent.
    pub(crate) fn bt_update(&mut self, t: TreeId, key: Key, val: &[u8]) -> Result<()> {
        let p = self.descend(t, key)?;
        if p.h == 0 {
            return Err(Error::NotFound);
        }
        let d = p.h - 1;
        let i = p.idx[d] as u64;
        let es = t.leaf_entry();
        if i >= p.n[d] as u64 || self.key_at(p.blk[d], es, i)? != key {
            return Err(Error::NotFound);
        }
        let n = (t.value_size() as usize).min(val.len());
        let lb = self.log(p.blk[d])?;
        self.mwrite(&lb, BT_HDR + i * es + KEY_SIZE, &val[..n]);
        self.dirty(&lb)
    }

    fn free_node(&mut self, lb: &LoggedBlock) -> Result<()> {
        self.mzero(lb, 0, 8);
        self.free_deferred(lb.blk(), 1)
    }

    /// Deletes `key`, which the caller has just found in `t` (by a seek or
    /// a lookup). If the delete, which descends by the key, cannot reach it
    /// there, the tree's keys are out of order: that is corruption of `t`
    /// (reported at `block`), not "nothing to do", or a caller that deletes
    /// until a seek finds nothing would loop for ever.
    pub(crate) fn bt_delete_found(&mut self, t: TreeId, key: Key, block: u64) -> Result<()> {
        if self.bt_delete(t, key)? {
            Ok(())
        } else {
            super::corrupt(t.name(), block)
        }
    }

    /// Delete a key. Returns whether it existed.
    pub(crate) fn bt_delete(&mut self, t: TreeId, key: Key) -> Result<bool> {
        let p = self.descend(t, key)?;
        if p.h == 0 {
            return Ok(false);
        }
        let h = p.h;
        let mut d = h - 1;
        if (p.idx[d] as u64) >= p.n[d] as u64 || self.key_at(p.blk[d], t.leaf_entry(), p.idx[d] as u64)? != key {
            return Ok(false);
        }
        let mut pos = p.idx[d] as u64;
        loop {
            let level = (h - 1 - d) as u16;
            let es = entry_size(t, level);
            let n = p.n[d] as u64;
            let lb = self.log(p.blk[d])?;
            let base = lb.blk() * BLOCK_SIZE + BT_HDR;
            if pos + 1 < n {
                self.move_bytes(&lb, BT_HDR + pos * es, base + (pos + 1) * es, (n - pos - 1) * es)?;
            }
            self.set_nkeys(&lb, n - 1)?;
            if d == 0 {
                break;
            }
            if n > 1 {
                // Merge the right sibling in when both together fit in half a node.
                let pd = d - 1;
                let pidx = p.idx[pd] as u64;
                if pidx + 1 >= p.n[pd] as u64 {
                    break;
                }
                let rblk = self.child_at(p.blk[pd], pidx + 1)?;
                let m = self.node_check(t, rblk, level)?;
                if (n - 1) + m > node_cap(t, level) / 2 {
                    break;
                }
                self.move_bytes(&lb, BT_HDR + (n - 1) * es, rblk * BLOCK_SIZE + BT_HDR, m * es)?;
                if level > 0 {
                    // the right node's key 0 was informational; in the merged
                    // node it separates children, so it becomes the parent's separator
                    let sep = self.key_at(p.blk[pd], INTERNAL_ENTRY, pidx + 1)?;
                    self.mwrite(&lb, BT_HDR + (n - 1) * es, &sep.encode());
                }
                self.set_nkeys(&lb, n - 1 + m)?;
                let rlb = self.log(rblk)?;
                self.free_node(&rlb)?;
                d = pd;
                pos = pidx + 1;
                continue;
            }
            self.free_node(&lb)?;
            d -= 1;
            pos = p.idx[d] as u64;
        }
        // shrink the root
        loop {
            let r = self.sb.trees[t as usize];
            if r.height == 0 {
                break;
            }
            let n = self.rd_u16(r.root * BLOCK_SIZE + NODE_NKEYS_OFF)? as u64;
            if n == 0 {
                let lb = self.log(r.root)?;
                self.free_node(&lb)?;
                self.sb.trees[t as usize] = TreeRoot::default();
                self.sb_dirty();
                break;
            }
            if r.height > 1 && n == 1 {
                let c = self.child_at(r.root, 0)?;
                let lb = self.log(r.root)?;
                self.free_node(&lb)?;
                self.sb.trees[t as usize] = TreeRoot { root: c, height: r.height - 1 };
                self.sb_dirty();
                continue;
            }
            break;
        }
        Ok(true)
    }
}

impl<M: Media> Fs<M> {
    /// Raw tree access for tools and tests: insert (one transaction).
    pub fn tree_insert(&mut self, t: TreeId, k: Key, v: &[u8]) -> Result<()> {
        self.run(|fs| fs.bt_insert(t, k, v))
    }
    /// Raw tree access: delete (one transaction).
    pub fn tree_delete(&mut self, t: TreeId, k: Key) -> Result<bool> {
        self.run(|fs| fs.bt_delete(t, k))
    }
    /// Raw tree access: update a value (one transaction).
    pub fn tree_update(&mut self, t: TreeId, k: Key, v: &[u8]) -> Result<()> {
        self.run(|fs| fs.bt_update(t, k, v))
    }
    /// Raw tree access: exact lookup.
    pub fn tree_get(&self, t: TreeId, k: Key, v: &mut [u8]) -> Result<bool> {
        self.bt_get(t, k, v)
    }
    /// Raw tree access: smallest key >= k.
    pub fn tree_seek_ge(&self, t: TreeId, k: Key, v: &mut [u8]) -> Result<Option<Key>> {
        self.bt_seek_ge(t, k, v)
    }
    /// Raw tree access: largest key <= k.
    pub fn tree_seek_le(&self, t: TreeId, k: Key, v: &mut [u8]) -> Result<Option<Key>> {
        self.bt_seek_le(t, k, v)
    }
    /// Root and height of a tree.
    pub fn tree_root(&self, t: TreeId) -> TreeRoot {
        self.sb.trees[t as usize]
    }
}
