//! fsck.ferrofs: check every invariant of the format, optionally repair.
//!
//! Works on any `Media`. Without `repair`, nothing is written to the device:
//! an overlay absorbs the journal rollback so the rest of the check sees the
//! recovered state.

use ferrofs_engine::btree::{entry_size, node_cap, NODE_LEVEL_OFF, NODE_NKEYS_OFF, NODE_TREE_OFF};
use ferrofs_engine::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One problem found.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Structure name ("superblock", "extent btree", "free space bitmap", ...).
    pub what: String,
    /// Block where it was found (or inode number where noted).
    pub block: u64,
    /// Description.
    pub msg: String,
    /// Repaired.
    pub fixed: bool,
}

/// Options.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsckOptions {
    /// Repair what can be repaired (-y). Without it nothing is written (-n).
    pub repair: bool,
}

/// Result of a check.
#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
    /// fsck(8) exit code: 0 clean, 1 corrected, 4 uncorrected, 8 operational error.
    pub exit_code: i32,
    /// Inodes seen.
    pub inodes: u64,
    /// Blocks in use.
    pub used_blocks: u64,
    /// Blocks quarantined after memory failures (the bad block list).
    pub bad_blocks: u64,
}

impl FsckReport {
    /// Problems not repaired.
    pub fn unfixed(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.fixed)
    }
    /// A one-line-per-problem listing.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for p in &self.problems {
            s += &format!("{}: block {}: {}{}\n", p.what, p.block, p.msg, if p.fixed { " [fixed]" } else { "" });
        }
        s
    }
}

/// Media overlay that keeps all writes in memory (fsck -n), and every
/// block read once (a read cache).
pub struct Overlay<'a, M: Media> {
    base: &'a M,
    blocks: RefCell<HashMap<u64, Vec<u8>>>,
}

impl<'a, M: Media> Overlay<'a, M> {
    /// Wrap.
    pub fn new(base: &'a M) -> Self {
        Overlay { base, blocks: RefCell::new(HashMap::new()) }
    }
    fn with_block<R>(&self, blk: u64, f: impl FnOnce(&mut Vec<u8>) -> R) -> std::result::Result<R, MediaError> {
        let mut g = self.blocks.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(e) = g.entry(blk) {
            let mut b = vec![0u8; BLOCK_SIZE as usize];
            self.base.read(blk * BLOCK_SIZE, &mut b)?;
            e.insert(b);
        }
        Ok(f(g.get_mut(&blk).expect("just inserted")))
    }
}

impl<M: Media> Media for Overlay<'_, M> {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), MediaError> {
        let mut done = 0usize;
        while done < buf.len() {
            let o = off + done as u64;
            let blk = o / BLOCK_SIZE;
            let bo = (o % BLOCK_SIZE) as usize;
            let k = (BLOCK_SIZE as usize - bo).min(buf.len() - done);
            // A miss reads the whole block and keeps it: the engine's btree
            // walks (owners, next) read the same nodes again and again, and
            // on a device each read is a syscall (30000 owners of one
            // block took 28 s of preads in a TCG guest).
            self.with_block(blk, |b| buf[done..done + k].copy_from_slice(&b[bo..bo + k]))?;
            done += k;
        }
        Ok(())
    }
    fn write(&self, off: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let o = off + done as u64;
            let blk = o / BLOCK_SIZE;
            let bo = (o % BLOCK_SIZE) as usize;
            let k = (BLOCK_SIZE as usize - bo).min(data.len() - done);
            let _ = self.with_block(blk, |b| b[bo..bo + k].copy_from_slice(&data[done..done + k]));
            done += k;
        }
    }
    fn zero(&self, off: u64, len: u64) {
        let z = vec![0u8; len as usize];
        self.write(off, &z);
    }
    fn copy(&self, dst: u64, src: u64, len: u64) -> std::result::Result<(), MediaError> {
        let mut b = vec![0u8; len as usize];
        self.read(src, &mut b)?;
        self.write(dst, &b);
        Ok(())
    }
    fn flush(&self, _: u64, _: u64) {}
    fn fence(&self) {}
}

struct Ck<'a, M: Media> {
    m: &'a M,
    sb: Superblock,
    p: Vec<Problem>,
    /// Metadata owner of each block (tree nodes, xattr values).
    meta: HashMap<u64, String>,
    /// Data owners per block.
    data: HashMap<u64, u32>,
    leaves: Vec<Vec<(Key, Vec<u8>)>>,
}

fn rd<M: Media>(m: &M, off: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    m.read(off, &mut b).ok()?;
    Some(b)
}

fn blk_crc(b: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(&b[..8]);
    c.update(&[0; 4]);
    c.update(&b[12..]);
    c.finish()
}

fn u64at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))).unwrap_or(0)
}
fn u32at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4]))).unwrap_or(0)
}
fn u16at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2).map(|s| u16::from_le_bytes(s.try_into().unwrap_or([0; 2]))).unwrap_or(0)
}

impl<M: Media> Ck<'_, M> {
    fn prob(&mut self, what: &str, block: u64, msg: String) {
        self.p.push(Problem { what: what.to_string(), block, msg, fixed: false });
    }

    fn claim_meta(&mut self, blk: u64, owner: String) {
        if blk < self.sb.data_start || blk >= self.sb.total_blocks.saturating_sub(1) {
            self.prob(&owner.clone(), blk, format!("block {blk} outside the data region"));
            return;
        }
        if let Some(prev) = self.meta.get(&blk) {
            let prev = prev.clone();
            self.prob(&owner.clone(), blk, format!("block also owned by {prev}"));
            return;
        }
        self.meta.insert(blk, owner);
    }

    fn walk_tree(&mut self, t: TreeId) {
        let r = self.sb.trees[t as usize];
        let mut out = Vec::new();
        if r.height == 0 {
            self.leaves.push(out);
            return;
        }
        // (blk, level, lo, hi)
        let mut stack: Vec<(u64, u16, Option<Key>, Option<Key>)> = vec![(r.root, r.height as u16 - 1, None, None)];
        let mut guard = 0u64;
        while let Some((blk, level, lo, hi)) = stack.pop() {
            guard += 1;
            if guard > self.sb.total_blocks {
                self.prob(t.name(), blk, "cycle in tree".into());
                break;
            }
            if blk < self.sb.data_start || blk >= self.sb.total_blocks.saturating_sub(1) {
                self.prob(t.name(), blk, "child pointer outside the data region".into());
                continue;
            }
            if self.meta.contains_key(&blk) {
                let prev = self.meta[&blk].clone();
                self.prob(t.name(), blk, format!("node block also owned by {prev}"));
                continue;
            }
            self.meta.insert(blk, format!("{} node", t.name()));
            let b = match rd(self.m, blk * BLOCK_SIZE, BLOCK_SIZE as usize) {
                Some(b) => b,
                None => {
                    self.prob(t.name(), blk, "media error reading node".into());
                    continue;
                }
            };
            let n = u16at(&b, NODE_NKEYS_OFF as usize) as u64;
            if u64at(&b, 0) != BT_MAGIC {
                self.prob(t.name(), blk, "bad node magic".into());
                continue;
            }
            if u32at(&b, BLK_CRC_OFF as usize) != blk_crc(&b) {
                self.prob(t.name(), blk, "node checksum mismatch".into());
                continue;
            }
            if u64at(&b, BLK_NO_OFF as usize) != blk {
                self.prob(t.name(), blk, format!("node claims block {} (misdirected write)", u64at(&b, 16)));
                continue;
            }
            if b[NODE_TREE_OFF as usize] != t as u8 || u16at(&b, NODE_LEVEL_OFF as usize) != level {
                self.prob(t.name(), blk, "node tree id or level mismatch".into());
                continue;
            }
            if n == 0 || n > node_cap(t, level) {
                self.prob(t.name(), blk, format!("bad entry count {n}"));
                continue;
            }
            let es = entry_size(t, level) as usize;
            let mut keys = Vec::with_capacity(n as usize);
            for i in 0..n as usize {
                keys.push(Key::decode(&b[BT_HDR as usize + i * es..]));
            }
            let first_checked = if level == 0 { 0 } else { 1 };
            let mut bad = false;
            for i in first_checked..keys.len() {
                if i > first_checked && keys[i] <= keys[i - 1] {
                    bad = true;
                }
                if lo.is_some_and(|l| keys[i] < l) || hi.is_some_and(|h| keys[i] >= h) {
                    bad = true;
                }
            }
            if bad {
                self.prob(t.name(), blk, "keys out of order or outside the parent's key range".into());
                continue;
            }
            if level == 0 {
                for (i, k) in keys.iter().enumerate() {
                    let off = BT_HDR as usize + i * es + KEY_SIZE as usize;
                    out.push((*k, b[off..off + t.value_size() as usize].to_vec()));
                }
            } else {
                for i in (0..keys.len()).rev() {
                    let child = u64at(&b, BT_HDR as usize + i * es + KEY_SIZE as usize);
                    let clo = if i == 0 { lo } else { Some(keys[i]) };
                    let chi = if i + 1 < keys.len() { Some(keys[i + 1]) } else { hi };
                    stack.push((child, level - 1, clo, chi));
                }
            }
        }
        self.leaves.push(out);
    }
}

/// A valid btree node at `blk`: (tree, level, children).
fn node_info<M: Media>(m: &M, sb: &Superblock, blk: u64) -> Option<(TreeId, u16, Vec<u64>)> {
    if blk < sb.data_start || blk >= sb.total_blocks.saturating_sub(1) {
        return None;
    }
    let b = rd(m, blk * BLOCK_SIZE, BLOCK_SIZE as usize)?;
    node_info_buf(&b, blk)
}

fn node_info_buf(b: &[u8], blk: u64) -> Option<(TreeId, u16, Vec<u64>)> {
    if u64at(b, 0) != BT_MAGIC || u64at(b, BLK_NO_OFF as usize) != blk || u32at(b, BLK_CRC_OFF as usize) != blk_crc(b) {
        return None;
    }
    let t = TreeId::from_u8(b[NODE_TREE_OFF as usize])?;
    let level = u16at(b, NODE_LEVEL_OFF as usize);
    let n = u16at(b, NODE_NKEYS_OFF as usize) as u64;
    if n == 0 || n > node_cap(t, level) || level as usize >= MAX_HEIGHT {
        return None;
    }
    let mut ch = Vec::new();
    if level > 0 {
        for i in 0..n as usize {
            ch.push(u64at(b, BT_HDR as usize + i * INTERNAL_ENTRY as usize + KEY_SIZE as usize));
        }
    }
    Some((t, level, ch))
}

/// Find every tree's root by scanning the data region: the highest valid node
/// of the tree that no valid internal node of the same tree points to.
/// (Freed nodes have their magic zeroed, so stale nodes do not compete.)
pub fn discover_roots<M: Media>(m: &M, sb: &Superblock) -> [TreeRoot; NTREES] {
    let mut nodes: Vec<(TreeId, u16, u64)> = Vec::new();
    let mut referenced: std::collections::HashSet<(u8, u64)> = std::collections::HashSet::new();
    let end = sb.total_blocks.saturating_sub(1);
    let mut blk = sb.data_start;
    while blk < end {
        let n = (end - blk).min(256);
        if let Some(buf) = rd(m, blk * BLOCK_SIZE, (n * BLOCK_SIZE) as usize) {
            for i in 0..n {
                let b = &buf[(i * BLOCK_SIZE) as usize..((i + 1) * BLOCK_SIZE) as usize];
                if let Some((t, level, ch)) = node_info_buf(b, blk + i) {
                    for c in ch {
                        referenced.insert((t as u8, c));
                    }
                    nodes.push((t, level, blk + i));
                }
            }
        }
        blk += n;
    }
    let mut roots = [TreeRoot::default(); NTREES];
    for (t, level, b) in nodes {
        if referenced.contains(&(t as u8, b)) {
            continue;
        }
        let r = &mut roots[t as usize];
        if r.root == 0 || level as u32 + 1 > r.height {
            *r = TreeRoot { root: b, height: level as u32 + 1 };
        }
    }
    roots
}

/// Geometry fields of a superblock.
fn geom_eq(a: &Superblock, b: &Superblock) -> bool {
    a.total_blocks == b.total_blocks
        && a.journal_start == b.journal_start
        && a.journal_blocks == b.journal_blocks
        && a.journal_slots == b.journal_slots
        && a.bitmap_start == b.bitmap_start
        && a.bitmap_blocks == b.bitmap_blocks
        && a.data_start == b.data_start
        && a.uuid == b.uuid
}

fn read_sb<M: Media>(m: &M, blk: u64) -> Result<Superblock> {
    let b = rd(m, blk * BLOCK_SIZE, SB_SIZE).ok_or(Error::Io { block: blk })?;
    let b: [u8; SB_SIZE] = b.try_into().map_err(|_| Error::Invalid)?;
    Superblock::decode(&b, blk)
}

/// Check (and with `repair`, fix) the filesystem on `m`.
pub fn fsck<M: Media>(m: &M, opts: FsckOptions) -> FsckReport {
    if opts.repair {
        let mut r = fsck_pass(m, true);
        if r.exit_code == 8 {
            return r;
        }
        if r.problems.is_empty() {
            r.exit_code = 0;
            return r;
        }
        // verify
        let again = fsck_pass(m, false);
        r.exit_code = if again.problems.is_empty() { 1 } else { 4 };
        for p in r.problems.iter_mut() {
            p.fixed = again.problems.is_empty() || !again.problems.iter().any(|q| q.what == p.what && q.msg == p.msg);
        }
        for q in again.problems {
            if !r.problems.iter().any(|p| p.what == q.what && p.msg == q.msg) {
                r.problems.push(q);
            }
        }
        r
    } else {
        let ov = Overlay::new(m);
        fsck_pass(&ov, false)
    }
}

fn fsck_pass<M: Media>(m: &M, repair: bool) -> FsckReport {
    let mut rep = FsckReport::default();
    let mblocks = m.size() / BLOCK_SIZE;
    if mblocks < 2 {
        rep.problems.push(Problem { what: "device".into(), block: 0, msg: "too small".into(), fixed: false });
        rep.exit_code = 8;
        return rep;
    }
    let mut probs = Vec::new();
    let mut journal_bad = false;
    // --- journal first: an interrupted transaction may have torn the superblock
    match Fs::journal_pending_blocks(m) {
        Ok(0) => {}
        Ok(n) => {
            probs.push(Problem { what: "journal".into(), block: JOURNAL_START, msg: format!("interrupted transaction: {n} blocks to roll back"), fixed: false });
            // roll back (into the overlay when not repairing)
            if let Err(e) = Fs::recover_journal(m) {
                probs.push(Problem { what: "journal".into(), block: JOURNAL_START, msg: format!("rollback failed: {e:?}"), fixed: false });
            }
        }
        Err(e) => {
            probs.push(Problem { what: "journal header".into(), block: JOURNAL_START, msg: format!("{e:?}"), fixed: false });
            journal_bad = true;
        }
    }
    // --- superblock and backup
    let primary = read_sb(m, 0);
    let raw_total = rd(m, 0, SB_SIZE).map(|b| u64at(&b, 104)).unwrap_or(0);
    let backup_at = if raw_total > 1 && raw_total <= mblocks { raw_total - 1 } else { mblocks - 1 };
    let backup = read_sb(m, backup_at).or_else(|_| read_sb(m, mblocks - 1));
    let backup_stripe = backup.as_ref().ok().map(|b| (b.stripe_unit, b.stripe_width));
    let mut sb = match (primary, backup) {
        (Ok(p), Ok(b)) => {
            if !geom_eq(&p, &b) {
                probs.push(Problem { what: "backup superblock".into(), block: b.blkno, msg: "geometry differs from the primary".into(), fixed: false });
            }
            p
        }
        (Ok(p), Err(e)) => {
            probs.push(Problem { what: "backup superblock".into(), block: backup_at, msg: format!("unreadable: {e:?}"), fixed: false });
            if repair {
                let mut b = p;
                b.blkno = p.total_blocks - 1;
                let mut img = [0u8; SB_SIZE];
                b.encode(&mut img);
                m.write(b.blkno * BLOCK_SIZE, &img);
            }
            p
        }
        (Err(e), Ok(b)) => {
            probs.push(Problem { what: "superblock".into(), block: 0, msg: format!("primary superblock invalid: {e:?}"), fixed: false });
            if !repair {
                rep.problems = probs;
                rep.exit_code = 4;
                return rep;
            }
            // Restore: geometry from the backup, the changing fields from the
            // primary if its magic survived (bit rot elsewhere), else from the backup.
            let raw = rd(m, 0, SB_SIZE).unwrap_or_else(|| vec![0; SB_SIZE]);
            let mut img = [0u8; SB_SIZE];
            b.encode(&mut img);
            if u64at(&raw, 0) == SB_MAGIC {
                img[160..SB_SIZE].copy_from_slice(&raw[160..SB_SIZE]);
            }
            img[16..24].copy_from_slice(&0u64.to_le_bytes());
            let c = sb_crc(&img);
            img[8..12].copy_from_slice(&c.to_le_bytes());
            let mut s = match Superblock::decode(&img, 0) {
                Ok(s) => s,
                Err(_) => {
                    rep.problems = probs;
                    rep.exit_code = 4;
                    return rep;
                }
            };
            // Tree roots that do not point at a root node of their tree (the
            // backup's are from mkfs time) are found again by scanning.
            let bad_roots = ALL_TREES.iter().any(|&t| {
                let r = s.trees[t as usize];
                r.root != 0 && node_info(m, &s, r.root).is_none_or(|(tt, lvl, _)| tt != t || lvl as u32 + 1 != r.height)
            });
            if u64at(&raw, 0) != SB_MAGIC || bad_roots {
                s.trees = discover_roots(m, &s);
            }
            s.encode(&mut img);
            m.write(0, &img);
            s
        }
        (Err(e), Err(_)) => {
            probs.push(Problem { what: "superblock".into(), block: 0, msg: format!("no valid superblock: {e:?}"), fixed: false });
            rep.problems = probs;
            rep.exit_code = if matches!(e, Error::BadMagic) { 8 } else { 4 };
            return rep;
        }
    };
    if journal_bad && repair {
        // nothing in it can be trusted: start it over empty
        let _ = Fs::reset_journal(m, sb.journal_slots);
    }
    // A stripe geometry the allocator cannot use (a width that is not whole
    // units, say): the backup's, which mkfs wrote, or none. Without -y the
    // check goes on with the replacement in memory only.
    let data = sb.total_blocks.saturating_sub(sb.data_start);
    if !stripe_ok(sb.stripe_unit as u64, sb.stripe_width as u64, data) {
        let good = backup_stripe.filter(|&(u, w)| stripe_ok(u as u64, w as u64, data)).unwrap_or((0, 0));
        probs.push(Problem {
            what: "superblock".into(),
            block: 0,
            msg: format!(
                "stripe geometry: unit {} and width {} blocks is not a whole number of units within the {data} data blocks; {} unit {} width {}",
                sb.stripe_unit,
                sb.stripe_width,
                if repair { "reset to" } else { "would reset to" },
                good.0,
                good.1
            ),
            fixed: repair,
        });
        (sb.stripe_unit, sb.stripe_width) = good;
        if repair {
            let mut img = [0u8; SB_SIZE];
            sb.encode(&mut img);
            m.write(0, &img);
        }
    }
    if let Err(e) = sb.check_geometry(mblocks) {
        probs.push(Problem { what: "superblock".into(), block: 0, msg: format!("geometry: {e:?}"), fixed: false });
        rep.problems = probs;
        rep.exit_code = 4;
        return rep;
    }
    let mut ck = Ck { m, sb, p: probs, meta: HashMap::new(), data: HashMap::new(), leaves: Vec::new() };
    for t in ALL_TREES {
        ck.walk_tree(t);
    }
    let leaves = std::mem::take(&mut ck.leaves);
    let hkey = hash_key(&sb.uuid);
    let total = sb.total_blocks;
    let in_data = |p: u64, l: u64| p >= sb.data_start && l > 0 && p.checked_add(l).is_some_and(|e| e < total);

    // --- inodes
    let mut inodes: BTreeMap<u64, (Inode, Vec<u8>)> = BTreeMap::new();
    for (k, v) in &leaves[TreeId::Inode as usize] {
        let i = Inode::decode(v);
        if k.b != 0 || k.c != 0 || k.a == 0 {
            ck.prob("inode btree", k.a, format!("bad inode key {k:?}"));
            continue;
        }
        let ty = i.mode & S_IFMT;
        if ![S_IFREG, S_IFDIR, S_IFLNK, 0o020000, 0o060000, 0o010000, 0o140000].contains(&ty) {
            ck.prob("inode btree", k.a, format!("inode {} has bad mode {:o}", k.a, i.mode));
        }
        // extent size hints (format v2): flags consistent with the type and
        // the values, values at most 2^21 blocks (the values are in blocks,
        // so always a multiple of the block size); a version 1 superblock
        // means no inode has any (the first hint raises the version)
        if let Err(why) = i.check_hints() {
            ck.prob("inode btree", k.a, format!("inode {}: {why} (flags {:#x}, extsize {}, cowextsize {} blocks)", k.a, i.flags, i.extsize, i.cowextsize));
        } else if sb.version < 2 && (i.extsize != 0 || i.cowextsize != 0) {
            ck.prob("inode btree", k.a, format!("inode {} has extent size hints on a version {} filesystem", k.a, sb.version));
        }
        // files past 16 TiB (format v3): the first raises the version
        if i.size > MAX_BYTES {
            ck.prob("inode btree", k.a, format!("inode {} size {} is past the largest file", k.a, i.size));
        } else if sb.version < 3 && i.size > V2_MAX_LBLK * BLOCK_SIZE {
            ck.prob("inode btree", k.a, format!("inode {} is larger than 16 TiB on a version {} filesystem", k.a, sb.version));
        }
        inodes.insert(k.a, (i, v.clone()));
    }
    if !inodes.get(&ROOT_INO).is_some_and(|x| x.0.is_dir()) {
        ck.prob("inode btree", ROOT_INO, "root directory missing".into());
    }
    if sb.inode_count != inodes.len() as u64 {
        ck.prob("superblock", 0, format!("inode count {} but {} inodes exist", sb.inode_count, inodes.len()));
    }
    // --- extents
    let mut ext_set: BTreeSet<(u64, u64, u64, u64)> = BTreeSet::new(); // (pblk, ino, lblk, len)
    let mut blocks_of: HashMap<u64, u64> = HashMap::new();
    let mut last: Option<(u64, u64)> = None; // (ino, end)
    for (k, v) in &leaves[TreeId::Extent as usize] {
        let (p, l, f) = (u64at(v, 0), u32at(v, 8) as u64, u32at(v, 12));
        if k.c != 0 || l == 0 || l > MAX_EXTENT_LEN || f & !EXT_UNWRITTEN != 0 || !in_data(p, l) || k.b.saturating_add(l) > MAX_LBLK {
            ck.prob("extent btree", p, format!("bad extent record ino {} lblk {} pblk {p} len {l}", k.a, k.b));
            continue;
        }
        if sb.version < 3 && k.b + l > V2_MAX_LBLK {
            ck.prob("extent btree", p, format!("extent of inode {} at block {} is past 16 TiB on a version {} filesystem", k.a, k.b, sb.version));
        }
        match inodes.get(&k.a) {
            Some((i, _)) if i.is_reg() || i.is_symlink() => {}
            _ => ck.prob("extent btree", p, format!("extent of missing or non-file inode {}", k.a)),
        }
        if let Some((li, le)) = last {
            if li == k.a && le > k.b {
                ck.prob("extent btree", p, format!("overlapping extents in inode {} at lblk {}", k.a, k.b));
            }
        }
        last = Some((k.a, k.b + l));
        *blocks_of.entry(k.a).or_default() += l;
        for b in p..p + l {
            *ck.data.entry(b).or_default() += 1;
        }
        ext_set.insert((p, k.a, k.b, l));
    }
    // --- rmap == extents
    let mut rmap_set = BTreeSet::new();
    for (k, v) in &leaves[TreeId::Rmap as usize] {
        rmap_set.insert((k.a, k.b, k.c, u64at(v, 0)));
    }
    let mut rmap_add = Vec::new();
    let mut rmap_del = Vec::new();
    for x in ext_set.difference(&rmap_set) {
        ck.prob("rmap btree", x.0, format!("missing rmap record for ino {} lblk {} len {}", x.1, x.2, x.3));
        rmap_add.push(*x);
    }
    for x in rmap_set.difference(&ext_set) {
        ck.prob("rmap btree", x.0, format!("rmap record without extent: ino {} lblk {} len {}", x.1, x.2, x.3));
        rmap_del.push(*x);
    }
    // --- refcounts
    let mut rc_fix = false;
    let mut rc_map: HashMap<u64, u64> = HashMap::new();
    let mut rc_end = 0u64;
    for (k, v) in &leaves[TreeId::Refcount as usize] {
        let (l, c) = (u64at(v, 0), u64at(v, 8));
        if k.b != 0 || k.c != 0 || c < 2 || !in_data(k.a, l) || k.a < rc_end {
            ck.prob("refcount btree", k.a, format!("bad refcount record pblk {} len {l} count {c}", k.a));
            rc_fix = true;
            continue;
        }
        rc_end = k.a + l;
        for b in k.a..k.a + l {
            rc_map.insert(b, c);
        }
    }
    let mut shared: Vec<(u64, u64)> = ck.data.iter().filter(|(_, &c)| c >= 2).map(|(&b, &c)| (b, c as u64)).collect();
    shared.sort();
    for &(b, c) in &shared {
        if rc_map.get(&b) != Some(&c) {
            ck.prob("refcount btree", b, format!("block {b} has {c} owners but refcount {:?}", rc_map.get(&b)));
            rc_fix = true;
            break;
        }
    }
    for (&b, &c) in &rc_map {
        if ck.data.get(&b).copied().unwrap_or(0) < 2 {
            ck.prob("refcount btree", b, format!("refcount record {c} for block {b} with {} owners", ck.data.get(&b).copied().unwrap_or(0)));
            rc_fix = true;
            break;
        }
    }
    // --- xattrs
    for (k, v) in &leaves[TreeId::Xattr as usize] {
        let len = v[XA_NAMELEN] as usize;
        let name = v.get(XA_NAME..XA_NAME + len).unwrap_or(&[]);
        if !inodes.contains_key(&k.a) {
            ck.prob("xattr btree", k.a, format!("xattr of missing inode {}", k.a));
        }
        if len == 0 || xattr_hash(hkey, v[XA_NS], name) != k.b {
            ck.prob("xattr btree", k.a, format!("xattr name hash mismatch in inode {}", k.a));
        }
        let vlen = u32at(v, XA_VLEN) as u64;
        if v[XA_FLAGS] & XA_EXTERNAL != 0 {
            let (p, n) = (u64at(v, XA_PBLK), u32at(v, XA_NBLK) as u64);
            if n != vlen.div_ceil(BLOCK_SIZE) || vlen > XATTR_VALUE_MAX as u64 || !in_data(p, n) {
                ck.prob("xattr btree", p, format!("bad external xattr value of inode {}", k.a));
                continue;
            }
            for b in p..p + n {
                ck.claim_meta(b, format!("xattr value of inode {}", k.a));
            }
            match rd(m, p * BLOCK_SIZE, vlen as usize) {
                Some(val) if crc32c(&val) == u32at(v, XA_VCRC) => {}
                _ => ck.prob("xattr value", p, format!("xattr value checksum mismatch in inode {}", k.a)),
            }
        } else if vlen > XATTR_INLINE_MAX as u64 {
            ck.prob("xattr btree", k.a, format!("inline xattr too long in inode {}", k.a));
        }
    }
    // --- directories
    let mut dirent_del: Vec<Key> = Vec::new();
    let mut dirsize_fix: Vec<(u64, u64)> = Vec::new();
    let mut refs: HashMap<u64, u32> = HashMap::new();
    let mut subdirs: HashMap<u64, u32> = HashMap::new();
    let mut entries: HashMap<u64, u64> = HashMap::new();
    let mut parent_of: HashMap<u64, u64> = HashMap::new();
    let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
    for (k, v) in &leaves[TreeId::Dir as usize] {
        let len = v[DE_NAMELEN] as usize;
        let name = v.get(DE_NAME..DE_NAME + len).unwrap_or(&[]);
        let ino = u64at(v, DE_INO);
        if !inodes.get(&k.a).is_some_and(|x| x.0.is_dir()) {
            ck.prob("dir btree", k.a, format!("entry in missing or non-directory inode {}", k.a));
            dirent_del.push(*k);
            continue;
        }
        if len == 0 || dir_hash(hkey, name) != k.b || k.c > 0xffff || name.contains(&b'/') {
            ck.prob("dir btree", k.a, format!("bad entry {:?} in directory {}", String::from_utf8_lossy(name), k.a));
            continue;
        }
        match inodes.get(&ino) {
            None => {
                ck.prob("dir btree", k.a, format!("entry {:?} in directory {} points to missing inode {ino}", String::from_utf8_lossy(name), k.a));
                dirent_del.push(*k);
                continue;
            }
            Some((i, _)) => {
                if i.ftype() != v[DE_FTYPE] {
                    ck.prob("dir btree", k.a, format!("entry {:?} file type mismatch", String::from_utf8_lossy(name)));
                }
                if i.is_dir() {
                    *subdirs.entry(k.a).or_default() += 1;
                    parent_of.insert(ino, k.a);
                }
            }
        }
        *refs.entry(ino).or_default() += 1;
        *entries.entry(k.a).or_default() += 1;
        children.entry(k.a).or_default().push(ino);
    }
    let orphans: BTreeSet<u64> = leaves[TreeId::Orphan as usize].iter().map(|x| x.0.a).collect();
    let mut nlink_fix = Vec::new();
    for (&ino, (i, raw)) in &inodes {
        let r = refs.get(&ino).copied().unwrap_or(0);
        let (want_nlink, want_blocks) = if i.is_dir() {
            if ino != ROOT_INO && r > 1 {
                ck.prob("dir btree", ino, format!("directory {ino} has {r} names"));
            }
            if ino != ROOT_INO && r == 1 && parent_of.get(&ino) != Some(&i.parent) {
                ck.prob("inode btree", ino, format!("directory {ino} parent field {} wrong", i.parent));
            }
            if ino == ROOT_INO && i.parent != ROOT_INO {
                ck.prob("inode btree", ino, "root parent field wrong".into());
            }
            if i.size != entries.get(&ino).copied().unwrap_or(0) {
                ck.prob("inode btree", ino, format!("directory {ino} size {} but {} entries", i.size, entries.get(&ino).copied().unwrap_or(0)));
                dirsize_fix.push((ino, entries.get(&ino).copied().unwrap_or(0)));
            }
            let sd = subdirs.get(&ino).copied().unwrap_or(0);
            // blocks are derived from the size when read: what the entries are
            (if r == 0 && ino != ROOT_INO { 0 } else { 2 + sd }, dir_blocks(i.size))
        } else {
            (r, blocks_of.get(&ino).copied().unwrap_or(0))
        };
        if i.nlink != want_nlink || i.blocks != want_blocks {
            ck.prob("inode btree", ino, format!("inode {ino} nlink {} blocks {} should be {want_nlink} and {want_blocks}", i.nlink, i.blocks));
            nlink_fix.push((ino, want_nlink, want_blocks));
        }
        if want_nlink == 0 && !orphans.contains(&ino) {
            ck.prob("orphan btree", ino, format!("unlinked inode {ino} not on the orphan list"));
            nlink_fix.push((ino, 0, want_blocks));
        }
        if i.is_symlink() {
            let sl = u16at(raw, INODE_SYMLEN_OFF) as u64;
            let ok = sl == i.size && sl > 0 && sl as usize <= SYMLINK_MAX && (sl as usize <= INLINE_SYMLINK_MAX || blocks_of.get(&ino) == Some(&1));
            if !ok {
                ck.prob("inode btree", ino, format!("symlink {ino} length {sl} size {}", i.size));
            }
        }
    }
    let mut orphan_drop = Vec::new();
    for &o in &orphans {
        if !inodes.contains_key(&o) {
            ck.prob("orphan btree", o, format!("orphan record for missing inode {o}"));
            orphan_drop.push(o);
        }
    }
    // connectivity
    let mut seen = BTreeSet::new();
    let mut q = vec![ROOT_INO];
    while let Some(d) = q.pop() {
        if !seen.insert(d) {
            continue;
        }
        if let Some(c) = children.get(&d) {
            for &x in c {
                if inodes.get(&x).is_some_and(|i| i.0.is_dir()) {
                    q.push(x);
                } else {
                    seen.insert(x);
                }
            }
        }
    }
    for (&ino, (i, _)) in &inodes {
        if i.nlink > 0 && !seen.contains(&ino) {
            ck.prob("dir btree", ino, format!("inode {ino} not reachable from the root"));
        }
    }
    // --- bad blocks
    let mut bad = BTreeSet::new();
    for (k, v) in &leaves[TreeId::Badblock as usize] {
        let l = u64at(v, 0);
        if !in_data(k.a, l) {
            ck.prob("badblock btree", k.a, "bad record".into());
            continue;
        }
        for b in k.a..k.a + l {
            bad.insert(b);
        }
    }
    // --- ownership conflicts between metadata and data
    let conflicts: Vec<u64> = ck.data.keys().filter(|b| ck.meta.contains_key(b)).copied().collect();
    for b in conflicts {
        let o = ck.meta[&b].clone();
        ck.prob("extent btree", b, format!("data block {b} is also {o}"));
    }
    // --- bitmap
    let mut bm_fix = false;
    let mut free = 0u64;
    let mut used = 0u64;
    for i in 0..sb.bitmap_blocks {
        let blk = sb.bitmap_start + i;
        let b = match rd(m, blk * BLOCK_SIZE, BLOCK_SIZE as usize) {
            Some(b) => b,
            None => {
                ck.prob("free space bitmap", blk, "media error".into());
                bm_fix = true;
                continue;
            }
        };
        if u64at(&b, 0) != BM_MAGIC || u64at(&b, 16) != blk || u64at(&b, 24) != i || u32at(&b, 8) != blk_crc(&b) {
            ck.prob("free space bitmap", blk, "bad header or checksum".into());
            bm_fix = true;
            continue;
        }
        let mut reported = 0;
        for bit in 0..BITS_PER_BM {
            let blkno = i * BITS_PER_BM + bit;
            let set = b[(BM_HDR + bit / 8) as usize] >> (bit % 8) & 1 != 0;
            let want = blkno < sb.data_start
                || blkno >= total - 1
                || ck.meta.contains_key(&blkno)
                || ck.data.contains_key(&blkno)
                || bad.contains(&blkno);
            if blkno < total - 1 && blkno >= sb.data_start {
                if set {
                    used += 1;
                } else {
                    free += 1;
                }
            }
            if set != want {
                bm_fix = true;
                if reported < 3 {
                    ck.prob(
                        "free space bitmap",
                        blk,
                        format!("block {blkno} marked {} but {}", if set { "used" } else { "free" }, if want { "in use" } else { "unowned (leaked)" }),
                    );
                }
                reported += 1;
            }
        }
    }
    if !bm_fix && free != sb.free_blocks {
        ck.prob("superblock", 0, format!("free block count {} but bitmap has {free}", sb.free_blocks));
        bm_fix = true;
    }
    let max_ino = inodes.keys().next_back().copied().unwrap_or(0);
    if sb.next_ino <= max_ino {
        ck.prob("superblock", 0, format!("next inode number {} <= existing {max_ino}", sb.next_ino));
    }
    let max_gen = inodes.values().map(|x| x.0.generation).max().unwrap_or(0);
    if sb.next_generation <= max_gen {
        ck.prob("superblock", 0, format!("next generation {} <= existing {max_gen}", sb.next_generation));
    }
    rep.inodes = inodes.len() as u64;
    rep.used_blocks = used;
    rep.bad_blocks = bad.len() as u64;
    let mut probs = std::mem::take(&mut ck.p);
    let owned_meta = ck.meta.clone();
    let owned_data: BTreeSet<u64> = ck.data.keys().copied().collect();

    // --- repairs
    if repair && !probs.is_empty() {
        if bm_fix {
            let mut nfree = 0;
            for i in 0..sb.bitmap_blocks {
                let blk = sb.bitmap_start + i;
                let mut b = vec![0u8; BLOCK_SIZE as usize];
                b[..8].copy_from_slice(&BM_MAGIC.to_le_bytes());
                b[16..24].copy_from_slice(&blk.to_le_bytes());
                b[24..32].copy_from_slice(&i.to_le_bytes());
                for bit in 0..BITS_PER_BM {
                    let blkno = i * BITS_PER_BM + bit;
                    let want = blkno < sb.data_start
                        || blkno >= total - 1
                        || owned_meta.contains_key(&blkno)
                        || owned_data.contains(&blkno)
                        || bad.contains(&blkno);
                    if want {
                        b[(BM_HDR + bit / 8) as usize] |= 1 << (bit % 8);
                    } else if blkno < total - 1 {
                        nfree += 1;
                    }
                }
                let c = blk_crc(&b);
                b[8..12].copy_from_slice(&c.to_le_bytes());
                m.write(blk * BLOCK_SIZE, &b);
            }
            sb.free_blocks = nfree;
        }
        sb.inode_count = inodes.len() as u64;
        sb.next_ino = sb.next_ino.max(max_ino + 1);
        let max_gen = inodes.values().map(|x| x.0.generation).max().unwrap_or(0);
        sb.next_generation = sb.next_generation.max(max_gen + 1);
        let mut img = [0u8; SB_SIZE];
        sb.blkno = 0;
        sb.encode(&mut img);
        m.write(0, &img);
        m.flush(0, BLOCK_SIZE);
        m.fence();
        let tree_fix = !rmap_add.is_empty() || !rmap_del.is_empty() || !dirent_del.is_empty() || !dirsize_fix.is_empty();
        if rc_fix || tree_fix || !nlink_fix.is_empty() || !orphan_drop.is_empty() {
            match Fs::mount(m, &MountOptions { read_only: false, time: 0 }) {
                Ok(mut fs) => {
                    let mut res = Ok(());
                    if rc_fix {
                        let mut recs: Vec<(u64, u64, u64)> = Vec::new();
                        for &(b, c) in &shared {
                            match recs.last_mut() {
                                Some(l) if l.0 + l.1 == b && l.2 == c => l.1 += 1,
                                _ => recs.push((b, 1, c)),
                            }
                        }
                        res = res.and(fs.repair_refcounts(&recs));
                    }
                    for &(ino, nl, bl) in &nlink_fix {
                        res = res.and(fs.repair_inode_counts(ino, nl, bl));
                    }
                    for &o in &orphan_drop {
                        res = res.and(fs.repair_drop_orphan(o));
                    }
                    for &(p, ino, l, _) in &rmap_del {
                        res = res.and(fs.tree_delete(TreeId::Rmap, Key::new(p, ino, l)).map(|_| ()));
                    }
                    for &(p, ino, l, len) in &rmap_add {
                        res = res.and(fs.tree_insert(TreeId::Rmap, Key::new(p, ino, l), &len.to_le_bytes()));
                    }
                    for k in &dirent_del {
                        res = res.and(fs.tree_delete(TreeId::Dir, *k).map(|_| ()));
                    }
                    for &(ino, size) in &dirsize_fix {
                        res = res.and(fs.repair_dir_size(ino, size));
                    }
                    if let Err(e) = res {
                        probs.push(Problem { what: "repair".into(), block: 0, msg: format!("{e:?}"), fixed: false });
                    }
                    let _ = fs.unmount(0);
                }
                Err(e) => probs.push(Problem { what: "repair".into(), block: 0, msg: format!("mount for repair failed: {e:?}"), fixed: false }),
            }
        }
    }
    rep.exit_code = if probs.is_empty() { 0 } else { 4 };
    rep.problems = probs;
    rep
}
