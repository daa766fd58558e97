//! File data mapping: extents, refcounts (shared blocks), reverse map,
//! allocation for writes, copy-on-write, reflink, truncate, punch,
//! fallocate, memory-failure owners and bad-block quarantine.
//!
//! Invariants kept by every function here (fsck checks them):
//! * EXTENT records of one file do not overlap; adjacent compatible ones merge.
//! * RMAP holds exactly one record (pblk, ino, lblk) -> len per extent record.
//! * REFCOUNT holds (pblk) -> (len, count) only where count >= 2.

use super::btree::Key;
use super::fs::Fs;
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};

/// Kind of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Not mapped: reads as zeroes.
    Hole,
    /// Mapped with data.
    Written,
    /// Allocated, reads as zeroes.
    Unwritten,
}

/// A piece of a file's mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Kind.
    pub kind: MapKind,
    /// First logical block.
    pub lblk: u64,
    /// First physical block (0 for holes).
    pub pblk: u64,
    /// Blocks in this piece (>= 1).
    pub count: u64,
    /// The blocks are shared with another mapping (refcount >= 2).
    pub shared: bool,
}

/// Flags of `alloc_write`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocFlags {
    /// Fill holes with unwritten extents instead of zeroed blocks.
    pub unwritten: bool,
    /// Try a 2 MiB aligned 512-block allocation (PMD fault).
    pub huge_align: bool,
    /// Break sharing a whole aligned CoW unit at a time when the file has
    /// a CoW extent size hint. Only for callers that can drop every mapping
    /// of the unit's other blocks (they move to new blocks too): the kernel
    /// does not ask for it yet (Documentation/design.md).
    pub cow_unit: bool,
}

/// Blocks one defragmentation step copies at most (2 MiB, a PMD copy-on-write).
pub(crate) const DEFRAG_MOVE: u64 = 512;

/// Progress of an online defragmentation (`Fs::defrag_step`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Defrag {
    /// Blocks moved.
    pub moved: u64,
    /// Runs left fragmented because no free run was long enough.
    pub no_space: u64,
    /// The run being laid out: file block `.0` goes to block `.1` next.
    next: Option<(u64, u64)>,
}

/// One extent record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Logical start.
    pub lblk: u64,
    /// Physical start.
    pub pblk: u64,
    /// Length.
    pub len: u64,
    /// EXT_* flags.
    pub flags: u32,
}

fn ext_val(p: u64, n: u64, flags: u32) -> [u8; 16] {
    let mut v = [0u8; 16];
    put64(&mut v, 0, p);
    put32(&mut v, 8, n as u32);
    put32(&mut v, 12, flags);
    v
}

fn rc_val(len: u64, count: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    put64(&mut v, 0, len);
    put64(&mut v, 8, count);
    v
}

impl<M: Media> Fs<M> {
    fn decode_ext(&self, k: Key, v: &[u8; 16]) -> Result<Extent> {
        let e = Extent { lblk: k.b, pblk: le64(v, 0), len: le32(v, 8) as u64, flags: le32(v, 12) };
        if e.len == 0
            || e.len > MAX_EXTENT_LEN
            || e.flags & !EXT_UNWRITTEN != 0
            || k.c != 0
            || e.pblk < self.sb.data_start
            || e.pblk.saturating_add(e.len) > self.sb.total_blocks - 1
            || e.lblk.saturating_add(e.len) > MAX_LBLK
        {
            return corrupt("extent btree record", k.a);
        }
        Ok(e)
    }

    /// The extent containing `lblk`.
    pub(crate) fn ext_covering(&self, ino: u64, lblk: u64) -> Result<Option<Extent>> {
        let mut v = [0u8; 16];
        if let Some(k) = self.bt_seek_le(TreeId::Extent, Key::new(ino, lblk, 0), &mut v)? {
            if k.a == ino {
                let e = self.decode_ext(k, &v)?;
                if e.lblk + e.len > lblk {
                    return Ok(Some(e));
                }
            }
        }
        Ok(None)
    }

    /// The first extent starting at or after `lblk`.
    pub(crate) fn ext_next(&self, ino: u64, lblk: u64) -> Result<Option<Extent>> {
        let mut v = [0u8; 16];
        if let Some(k) = self.bt_seek_ge(TreeId::Extent, Key::new(ino, lblk, 0), &mut v)? {
            if k.a == ino {
                return Ok(Some(self.decode_ext(k, &v)?));
            }
        }
        Ok(None)
    }

    /// The first extent overlapping [lblk, end).
    fn ext_first_in(&self, ino: u64, lblk: u64, end: u64) -> Result<Option<Extent>> {
        if lblk >= end {
            return Ok(None);
        }
        if let Some(e) = self.ext_covering(ino, lblk)? {
            return Ok(Some(e));
        }
        Ok(self.ext_next(ino, lblk)?.filter(|e| e.lblk < end))
    }

    /// Iterate a file's extents (tools, tests).
    pub fn extents(&self, ino: u64, cb: &mut dyn FnMut(&Extent)) -> Result<()> {
        let mut cur = 0;
        while let Some(e) = self.ext_next(ino, cur)? {
            cb(&e);
            cur = e.lblk + e.len;
        }
        Ok(())
    }

    fn rc_check(&self, k: Key, v: &[u8; 16]) -> Result<(u64, u64)> {
        let (len, cnt) = (le64(v, 0), le64(v, 8));
        if len == 0 || cnt < 2 || k.b != 0 || k.c != 0 || k.a.saturating_add(len) > self.sb.total_blocks {
            return corrupt("refcount btree record", k.a);
        }
        Ok((len, cnt))
    }

    /// Refcount state of the run at `p`: (Some(count) if shared, run length <= n).
    fn rc_run(&self, p: u64, n: u64) -> Result<(Option<u64>, u64)> {
        if self.sb.trees[TreeId::Refcount as usize].root == 0 {
            return Ok((None, n));
        }
        let mut v = [0u8; 16];
        if let Some(k) = self.bt_seek_le(TreeId::Refcount, Key::new(p, 0, 0), &mut v)? {
            let (len, cnt) = self.rc_check(k, &v)?;
            if k.a + len > p {
                return Ok((Some(cnt), (k.a + len - p).min(n)));
            }
        }
        if let Some(k) = self.bt_seek_ge(TreeId::Refcount, Key::new(p, 0, 0), &mut v)? {
            // A record starting at p must have been found by seek_le above;
            // if the tree says otherwise (keys out of order, a nonzero key
            // part), a run of 0 would stall every caller's loop for good.
            if k.a <= p {
                return corrupt("refcount btree", p);
            }
            return Ok((None, (k.a - p).min(n)));
        }
        Ok((None, n))
    }

    /// Split the refcount record containing `at` (strictly inside) in two.
    #[inline(never)]
    fn rc_split(&mut self, at: u64) -> Result<()> {
        let mut v = [0u8; 16];
        if let Some(k) = self.bt_seek_le(TreeId::Refcount, Key::new(at, 0, 0), &mut v)? {
            let (len, cnt) = self.rc_check(k, &v)?;
            if k.a < at && k.a + len > at {
                self.bt_update(TreeId::Refcount, k, &rc_val(at - k.a, cnt))?;
                self.bt_insert(TreeId::Refcount, Key::new(at, 0, 0), &rc_val(k.a + len - at, cnt))?;
            }
        }
        Ok(())
    }

    /// One more owner for [p, p+n).
    #[inline(never)]
    fn ref_inc(&mut self, p: u64, n: u64) -> Result<()> {
        let end = p + n;
        let mut cur = p;
        while cur < end {
            let (rc, run) = self.rc_run(cur, end - cur)?;
            match rc {
                Some(c) => {
                    // a damaged record may hold 2^64-1 owners
                    let Some(c1) = c.checked_add(1) else { return corrupt("refcount btree record", cur) };
                    self.rc_split(cur)?;
                    self.rc_split(cur + run)?;
                    self.bt_update(TreeId::Refcount, Key::new(cur, 0, 0), &rc_val(run, c1))?;
                }
                None => self.bt_insert(TreeId::Refcount, Key::new(cur, 0, 0), &rc_val(run, 2))?,
            }
            cur += run;
        }
        Ok(())
    }

    /// One owner less for a refcount-uniform run [p, p+n); frees at commit
    /// when the last owner goes.
    #[inline(never)]
    fn ref_dec_run(&mut self, p: u64, n: u64, rc: Option<u64>) -> Result<()> {
        match rc {
            Some(c) => {
                self.rc_split(p)?;
                self.rc_split(p + n)?;
                let k = Key::new(p, 0, 0);
                if c <= 2 {
                    self.bt_delete_found(TreeId::Refcount, k, p)?;
                } else {
                    self.bt_update(TreeId::Refcount, k, &rc_val(n, c - 1))?;
                }
                Ok(())
            }
            None => self.free_deferred(p, n),
        }
    }

    #[inline(never)]
    fn blocks_add(&mut self, ino: u64, delta: i64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let mut i = self.inode_get(ino)?;
        i.blocks = match i.blocks.checked_add_signed(delta) {
            Some(b) => b,
            None => return corrupt("inode block count", ino),
        };
        self.inode_put(ino, &i)
    }

    /// Insert an extent record and its rmap record (no merging).
    fn ext_put(&mut self, ino: u64, l: u64, p: u64, n: u64, flags: u32) -> Result<()> {
        if l + n > V2_MAX_LBLK {
            self.need_version(3);
        }
        self.bt_insert(TreeId::Extent, Key::new(ino, l, 0), &ext_val(p, n, flags))?;
        self.bt_insert(TreeId::Rmap, Key::new(p, ino, l), &n.to_le_bytes())
    }

    /// Remove an extent record and its rmap record.
    fn ext_del(&mut self, ino: u64, e: &Extent) -> Result<()> {
        if !self.bt_delete(TreeId::Extent, Key::new(ino, e.lblk, 0))?
            || !self.bt_delete(TreeId::Rmap, Key::new(e.pblk, ino, e.lblk))?
        {
            return corrupt("rmap btree (missing record)", e.pblk);
        }
        Ok(())
    }

    /// Map [l, l+n) -> p into a hole, merging with compatible neighbours.
    #[inline(never)]
    fn ext_insert(&mut self, ino: u64, l: u64, p: u64, n: u64, flags: u32) -> Result<()> {
        let (mut nl, mut np, mut nn) = (l, p, n);
        if l > 0 {
            if let Some(left) = self.ext_covering(ino, l - 1)? {
                if left.lblk + left.len == l
                    && left.pblk + left.len == p
                    && left.flags == flags
                    && left.len + nn <= MAX_EXTENT_LEN
                {
                    self.ext_del(ino, &left)?;
                    nl = left.lblk;
                    np = left.pblk;
                    nn += left.len;
                }
            }
        }
        if let Some(right) = self.ext_next(ino, l + n)? {
            if right.lblk == l + n && right.pblk == p + n && right.flags == flags && nn + right.len <= MAX_EXTENT_LEN {
                self.ext_del(ino, &right)?;
                nn += right.len;
            }
        }
        self.ext_put(ino, nl, np, nn, flags)
    }

    /// Unmap the first piece of [start, end) that is mapped: at most one
    /// refcount-uniform run. Returns where to continue, or None when done.
    #[inline(never)]
    fn unmap_step(&mut self, ino: u64, start: u64, end: u64) -> Result<Option<u64>> {
        let e = match self.ext_first_in(ino, start, end)? {
            Some(e) => e,
            None => return Ok(None),
        };
        let s = e.lblk.max(start);
        let mut t = (e.lblk + e.len).min(end);
        let ps = e.pblk + (s - e.lblk);
        let (rc, run) = self.rc_run(ps, t - s)?;
        t = s + run;
        self.ext_del(ino, &e)?;
        if s > e.lblk {
            self.ext_put(ino, e.lblk, e.pblk, s - e.lblk, e.flags)?;
        }
        if t < e.lblk + e.len {
            self.ext_put(ino, t, e.pblk + (t - e.lblk), e.lblk + e.len - t, e.flags)?;
        }
        self.ref_dec_run(ps, t - s, rc)?;
        self.blocks_add(ino, -((t - s) as i64))?;
        Ok(Some(t))
    }

    /// Unmap [lblk, lblk+count), in as many bounded transactions as needed.
    #[inline(never)]
    pub(crate) fn unmap_range_all(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        let end = lblk.saturating_add(count).min(MAX_LBLK);
        let mut cur = lblk;
        while cur < end {
            if !self.tx_has_room() {
                self.tx_restart()?;
            }
            match self.unmap_step(ino, cur, end)? {
                Some(n) => cur = n,
                None => break,
            }
        }
        Ok(())
    }

    /// Where `lblk` maps (at most `count` blocks of uniform kind and sharing).
    pub fn map(&self, ino: u64, lblk: u64, count: u64) -> Result<Mapping> {
        let count = count.max(1);
        if let Some(e) = self.ext_covering(ino, lblk)? {
            let off = lblk - e.lblk;
            let p = e.pblk + off;
            let n = count.min(e.len - off);
            let (rc, run) = self.rc_run(p, n)?;
            let kind = if e.flags & EXT_UNWRITTEN != 0 { MapKind::Unwritten } else { MapKind::Written };
            return Ok(Mapping { kind, lblk, pblk: p, count: run, shared: rc.is_some() });
        }
        let n = match self.ext_next(ino, lblk)? {
            Some(e) if e.lblk > lblk => (e.lblk - lblk).min(count),
            // The next extent starts at or before lblk yet does not cover
            // it (keys out of order, a zero-length record): a hole of 0
            // blocks would make every caller's loop (iomap's included)
            // spin on the same position for good.
            Some(e) => return corrupt("extent btree (keys out of order)", e.pblk),
            None => count,
        };
        Ok(Mapping { kind: MapKind::Hole, lblk, pblk: 0, count: n, shared: false })
    }

    /// The run of written, unshared blocks around `lblk`, for an in-memory
    /// extent cache: the whole extent covering `lblk` when none of its
    /// blocks is shared, else the unshared run starting at `lblk`; `None`
    /// when `lblk` is a hole, unwritten or shared. Everything it answers is
    /// a mapping `map` would give (only longer); it changes only through
    /// operations that remap, free or share written blocks, never through
    /// `alloc_write` (which fills holes and unwritten blocks and replaces
    /// shared ones).
    pub fn written_run(&self, ino: u64, lblk: u64) -> Result<Option<Mapping>> {
        let Some(e) = self.ext_covering(ino, lblk)? else { return Ok(None) };
        if e.flags & EXT_UNWRITTEN != 0 {
            return Ok(None);
        }
        let (rc, run) = self.rc_run(e.pblk, e.len)?;
        if rc.is_none() && run == e.len {
            return Ok(Some(Mapping { kind: MapKind::Written, lblk: e.lblk, pblk: e.pblk, count: e.len, shared: false }));
        }
        let off = lblk - e.lblk;
        let (rc, run) = self.rc_run(e.pblk + off, e.len - off)?;
        Ok(rc.is_none().then_some(Mapping { kind: MapKind::Written, lblk, pblk: e.pblk + off, count: run, shared: false }))
    }

    /// One past the last block the file maps (0: none), so that a caller
    /// can free a file in steps (the kernel frees an unlinked file a few
    /// MiB per exclusive section, letting other work in between).
    pub fn mapped_end(&self, ino: u64) -> Result<u64> {
        let mut v = [0u8; 16];
        match self.bt_seek_le(TreeId::Extent, Key::new(ino, u64::MAX, u64::MAX), &mut v)? {
            Some(k) if k.a == ino => {
                let e = self.decode_ext(k, &v)?;
                Ok(e.lblk.saturating_add(e.len))
            }
            _ => Ok(0),
        }
    }

    /// The first mapped block of `ino` in [lblk, end), if any: lets a
    /// caller that works in steps skip holes.
    pub fn next_mapped(&self, ino: u64, lblk: u64, end: u64) -> Result<Option<u64>> {
        Ok(self.ext_first_in(ino, lblk, end)?.map(|e| e.lblk.max(lblk)))
    }

    fn check_range(lblk: u64, count: u64) -> Result<()> {
        if count == 0 {
            return Err(Error::Invalid);
        }
        match lblk.checked_add(count) {
            Some(e) if e <= MAX_LBLK => Ok(()),
            _ => Err(Error::FileTooBig),
        }
    }

    fn data_inode(&self, ino: u64) -> Result<Inode> {
        let i = self.inode_get(ino)?;
        if i.is_dir() {
            return Err(Error::IsDir);
        }
        if !i.is_reg() && !i.is_symlink() {
            return Err(Error::Invalid);
        }
        Ok(i)
    }

    fn goal_for(&self, ino: u64, lblk: u64) -> Result<u64> {
        if lblk > 0 {
            if let Some(e) = self.ext_covering(ino, lblk - 1)? {
                return Ok(e.pblk + e.len);
            }
        }
        Ok(0)
    }

    fn zero_blocks(&mut self, p: u64, n: u64) {
        self.m.zero(p * BLOCK_SIZE, n * BLOCK_SIZE);
        self.m.flush(p * BLOCK_SIZE, n * BLOCK_SIZE);
    }

    /// Make the first piece of [lblk, lblk+count) writable and exclusive.
    /// In a file with an extent size hint a hole is filled a whole aligned
    /// unit at a time (the rest of the unit unwritten), and shared blocks
    /// are copied a whole aligned CoW unit at a time.
    pub fn alloc_write(&mut self, ino: u64, lblk: u64, count: u64, fl: AllocFlags) -> Result<Mapping> {
        Self::check_range(lblk, count)?;
        let i = self.data_inode(ino)?;
        let (ext, cow) = (i.extsize_hint(), if fl.cow_unit { i.cowextsize_hint() } else { 0 });
        self.run(|fs| fs.alloc_write_hinted(ino, lblk, count, fl, ext, cow))
    }

    /// The most `alloc_write(ino, lblk, count, fl)` can add to the inode's
    /// block count (`Inode::blocks`), for a charge made before it runs
    /// (disk quotas). Only holes grow it: a copy-on-write replaces shared
    /// blocks one for one (each owner is charged a shared block in full)
    /// and a conversion keeps unwritten ones. In a file with an extent
    /// size hint a hole may take the whole aligned unit around it.
    pub fn alloc_write_growth(&self, ino: u64, lblk: u64, count: u64, fl: AllocFlags) -> Result<u64> {
        Self::check_range(lblk, count)?;
        let i = self.data_inode(ino)?;
        let m = self.map(ino, lblk, count)?;
        if m.kind != MapKind::Hole {
            return Ok(0);
        }
        let ext = i.extsize_hint();
        if ext > 1 && !fl.unwritten {
            let (a, b) = Self::hint_unit(lblk, m.count, ext);
            return Ok((b - a).max(m.count));
        }
        Ok(m.count)
    }

    /// What a disk-quota charge made before `alloc_write(ino, lblk, count,
    /// fl)` must cover: its growth (`alloc_write_growth`), or for a
    /// copy-on-write of shared blocks the copies it makes. Those leave the
    /// block count as it was once the shared blocks are let go, but they
    /// are new space while the write runs, and XFS charges them the same
    /// way: an owner over a hard limit cannot rewrite shared data
    /// (xfstests generic/328). The caller settles the charge afterwards.
    pub fn alloc_write_charge(&self, ino: u64, lblk: u64, count: u64, fl: AllocFlags) -> Result<u64> {
        Self::check_range(lblk, count)?;
        let m = self.map(ino, lblk, count)?;
        if m.kind == MapKind::Written && m.shared {
            return Ok(m.count);
        }
        self.alloc_write_growth(ino, lblk, count, fl)
    }

    /// Blocks of `[lblk, lblk + count)` that are mapped and shared: what
    /// `unshare` of the range copies, one new block each (disk quotas
    /// charge them before it runs, as XFS charges an unshare). O(extents
    /// in the range).
    pub fn shared_blocks(&self, ino: u64, lblk: u64, count: u64) -> Result<u64> {
        self.count_blocks(ino, lblk, count, |m| m.shared && m.kind != MapKind::Hole)
    }

    /// Blocks of `[lblk, lblk + count)` that are holes: the most a
    /// preallocation of the range (`fallocate`) can add to the inode's
    /// block count, and what `zero_range` adds (it leaves the whole range
    /// allocated, and what it unmaps was counted already). For a charge
    /// made before either runs (disk quotas). O(extents in the range).
    pub fn hole_blocks(&self, ino: u64, lblk: u64, count: u64) -> Result<u64> {
        self.count_blocks(ino, lblk, count, |m| m.kind == MapKind::Hole)
    }

    /// Blocks of `[lblk, lblk + count)` in the mapped pieces (or holes)
    /// that `which` picks.
    fn count_blocks(&self, ino: u64, lblk: u64, count: u64, which: impl Fn(&Mapping) -> bool) -> Result<u64> {
        Self::check_range(lblk, count)?;
        self.data_inode(ino)?;
        let end = lblk + count;
        let (mut cur, mut n) = (lblk, 0u64);
        while cur < end {
            let m = self.map(ino, cur, end - cur)?;
            if which(&m) {
                n += m.count;
            }
            cur += m.count.max(1);
        }
        Ok(n)
    }

    #[inline(never)]
    pub(crate) fn alloc_write_inner(&mut self, ino: u64, lblk: u64, count: u64, fl: AllocFlags) -> Result<Mapping> {
        self.alloc_write_hinted(ino, lblk, count, fl, 0, 0)
    }

    /// The aligned unit of `unit` blocks around [lblk, lblk+n), clipped to
    /// the largest file.
    fn hint_unit(lblk: u64, n: u64, unit: u64) -> (u64, u64) {
        let a = lblk / unit * unit;
        let b = lblk.saturating_add(n).div_ceil(unit).saturating_mul(unit).min(MAX_LBLK);
        (a, b)
    }

    #[inline(never)]
    fn alloc_write_hinted(&mut self, ino: u64, lblk: u64, count: u64, fl: AllocFlags, ext: u64, cowext: u64) -> Result<Mapping> {
        let m = self.map(ino, lblk, count)?;
        match m.kind {
            // Extent size hint (XFS semantics): preallocate the holes of the
            // aligned unit around the request as unwritten extents, then
            // make the request written below (zeroed, converted); the rest
            // of the unit reads as zeroes and i_size does not move. When
            // the free space cannot hold the unit, allocate as if there were
            // no hint rather than fail (XFS falls back the same way).
            MapKind::Hole if ext > 1 && !fl.unwritten => {
                let (a, b) = Self::hint_unit(lblk, m.count, ext);
                let avail = self.sb.free_blocks.saturating_sub(self.metadata_reserve());
                if b - a <= avail / 2 {
                    self.prealloc_flags(ino, a, b - a, fl.huge_align)?;
                }
                self.alloc_write_hinted(ino, lblk, count, fl, 0, cowext)
            }
            // CoW extent size hint: break the sharing of every shared piece
            // of the aligned CoW unit around the request at once (fewer,
            // larger new extents than one copy per write).
            _ if m.shared && cowext > 1 => {
                let (a, b) = Self::hint_unit(lblk, m.count, cowext);
                let mut cur = a;
                while cur < b {
                    let p = self.map(ino, cur, b - cur)?;
                    if p.shared {
                        let c = self.cow(ino, &p)?;
                        cur += c.count;
                    } else {
                        cur += p.count;
                    }
                }
                self.alloc_write_hinted(ino, lblk, count, fl, ext, 0)
            }
            MapKind::Hole => {
                let goal = self.goal_for(ino, lblk)?;
                let huge = fl.huge_align && lblk & (super::alloc::HUGE_BLOCKS - 1) == 0;
                let (p, got) = self.alloc_blocks(goal, m.count, huge)?;
                let flags = if fl.unwritten { EXT_UNWRITTEN } else { 0 };
                if !fl.unwritten {
                    self.zero_blocks(p, got);
                }
                self.ext_insert(ino, lblk, p, got, flags)?;
                self.blocks_add(ino, got as i64)?;
                let kind = if fl.unwritten { MapKind::Unwritten } else { MapKind::Written };
                Ok(Mapping { kind, lblk, pblk: p, count: got, shared: false })
            }
            _ if m.shared => self.cow(ino, &m),
            MapKind::Unwritten if !fl.unwritten => {
                self.zero_blocks(m.pblk, m.count);
                self.convert_inner(ino, lblk, m.count)?;
                Ok(Mapping { kind: MapKind::Written, ..m })
            }
            _ => Ok(m),
        }
    }

    /// File blocks `[lblk, lblk + n)`, now at `old`, to the freshly
    /// allocated `p`: the data copied and flushed (an unwritten source: `p`
    /// zeroed, unwritten blocks being kept zeroed on the media), the old
    /// mapping unmapped (its blocks freed at commit if no one else owns
    /// them) and `p` inserted with `flags`. One transaction's work.
    fn relocate(&mut self, ino: u64, lblk: u64, old: u64, p: u64, n: u64, unwritten: bool, flags: u32) -> Result<()> {
        // A quarantined block stands for bytes lost to a memory failure: a
        // copy would hand on whatever it holds as if it were the file's
        // (and an unshare or defrag "repair" it silently). EIO, like a read.
        if !unwritten && self.has_bad_block(old, n)? {
            return Err(Error::Io { block: old });
        }
        if unwritten {
            self.zero_blocks(p, n);
        } else {
            self.m
                .copy(p * BLOCK_SIZE, old * BLOCK_SIZE, n * BLOCK_SIZE)
                .map_err(|e| Error::Io { block: e.offset / BLOCK_SIZE })?;
            self.m.flush(p * BLOCK_SIZE, n * BLOCK_SIZE);
        }
        let mut cur = lblk;
        while cur < lblk + n {
            match self.unmap_step(ino, cur, lblk + n)? {
                Some(next) => cur = next,
                None => break,
            }
        }
        self.ext_insert(ino, lblk, p, n, flags)?;
        self.blocks_add(ino, n as i64)
    }

    /// Copy a shared piece to new blocks and remap it.
    #[inline(never)]
    fn cow(&mut self, ino: u64, m: &Mapping) -> Result<Mapping> {
        let (p, got) = self.alloc_blocks(m.pblk, m.count, false)?;
        self.relocate(ino, m.lblk, m.pblk, p, got, m.kind == MapKind::Unwritten, 0)?;
        Ok(Mapping { kind: MapKind::Written, lblk: m.lblk, pblk: p, count: got, shared: false })
    }

    #[inline(never)]
    fn convert_inner(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        let end = lblk + count;
        let mut cur = lblk;
        while cur < end {
            let e = match self.ext_first_in(ino, cur, end)? {
                Some(e) => e,
                None => break,
            };
            let s = e.lblk.max(cur);
            let t = (e.lblk + e.len).min(end);
            if e.flags & EXT_UNWRITTEN != 0 {
                self.ext_del(ino, &e)?;
                if s > e.lblk {
                    self.ext_put(ino, e.lblk, e.pblk, s - e.lblk, e.flags)?;
                }
                if t < e.lblk + e.len {
                    self.ext_put(ino, t, e.pblk + (t - e.lblk), e.lblk + e.len - t, e.flags)?;
                }
                self.ext_insert(ino, s, e.pblk + (s - e.lblk), t - s, 0)?;
            }
            cur = t;
        }
        Ok(())
    }

    /// Mark unwritten extents in the range written (after the data is durable).
    pub fn convert_unwritten(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        Self::check_range(lblk, count)?;
        self.run(|fs| {
            let end = lblk + count;
            let mut cur = lblk;
            while cur < end {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                let e = match fs.ext_first_in(ino, cur, end)? {
                    Some(e) => e,
                    None => break,
                };
                let t = (e.lblk + e.len).min(end);
                fs.convert_inner(ino, e.lblk.max(cur), t - e.lblk.max(cur))?;
                cur = t;
            }
            Ok(())
        })
    }

    /// Change the size. Shrinking frees the blocks past the new EOF (in
    /// bounded transactions; the inode is on the orphan list meanwhile, so a
    /// crash finishes the truncate at mount). Zeroing the tail of the last
    /// partial block is the caller's job (the kernel does it through the
    /// page / dax mapping).
    pub fn set_size(&mut self, ino: u64, size: u64, t: Time) -> Result<()> {
        if size > MAX_BYTES {
            return Err(Error::FileTooBig);
        }
        self.data_inode(ino)?;
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            let old = i.size;
            i.size = size;
            i.mtime = t;
            i.ctime = t;
            fs.inode_put(ino, &i)?;
            let first = size.div_ceil(BLOCK_SIZE);
            // Growing keeps preallocated blocks past the new EOF (fallocate
            // KEEP_SIZE); shrinking frees everything past it.
            if size < old {
                if fs.ext_first_in(ino, first, MAX_LBLK)?.is_none() {
                    return Ok(());
                }
                fs.orphan_add(ino)?;
                fs.unmap_range_all(ino, first, MAX_LBLK - first)?;
                if i.nlink > 0 {
                    fs.orphan_remove(ino)?;
                }
            }
            Ok(())
        })
    }

    /// Deallocate [lblk, lblk+count) (reads as zeroes afterwards).
    pub fn punch(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        Self::check_range(lblk, count)?;
        self.data_inode(ino)?;
        self.run(|fs| fs.unmap_range_all(ino, lblk, count))
    }

    #[inline(never)]
    fn prealloc(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        self.prealloc_flags(ino, lblk, count, false)
    }

    /// Fill the holes of [lblk, lblk+count) with unwritten extents.
    #[inline(never)]
    fn prealloc_flags(&mut self, ino: u64, lblk: u64, count: u64, huge_align: bool) -> Result<()> {
        let end = lblk + count;
        let mut cur = lblk;
        while cur < end {
            if !self.tx_has_room() {
                self.tx_restart()?;
            }
            let m = self.map(ino, cur, end - cur)?;
            if m.kind == MapKind::Hole {
                let m2 = self.alloc_write_inner(ino, cur, m.count, AllocFlags { unwritten: true, huge_align, cow_unit: false })?;
                cur += m2.count;
            } else {
                cur += m.count;
            }
        }
        Ok(())
    }

    /// Zero a block range: unmap it and preallocate unwritten extents.
    pub fn zero_range(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        Self::check_range(lblk, count)?;
        self.data_inode(ino)?;
        self.run(|fs| {
            fs.unmap_range_all(ino, lblk, count)?;
            fs.prealloc(ino, lblk, count)
        })
    }

    /// Preallocate unwritten extents in the holes of the range. Without
    /// `keep_size`, the size grows to at least the end of the range.
    pub fn fallocate(&mut self, ino: u64, lblk: u64, count: u64, keep_size: bool) -> Result<()> {
        Self::check_range(lblk, count)?;
        self.data_inode(ino)?;
        self.run(|fs| {
            fs.prealloc(ino, lblk, count)?;
            if !keep_size {
                let mut i = fs.inode_get(ino)?;
                let end = ((lblk + count) * BLOCK_SIZE).min(MAX_BYTES);
                if end > i.size {
                    i.size = end;
                    fs.inode_put(ino, &i)?;
                }
            }
            Ok(())
        })
    }

    /// The extent with the greatest start below `before`.
    fn ext_last_before(&self, ino: u64, before: u64) -> Result<Option<Extent>> {
        if before == 0 {
            return Ok(None);
        }
        let mut v = [0u8; 16];
        if let Some(k) = self.bt_seek_le(TreeId::Extent, Key::new(ino, before - 1, 0), &mut v)? {
            if k.a == ino {
                return Ok(Some(self.decode_ext(k, &v)?));
            }
        }
        Ok(None)
    }

    /// Move one extent record (and its rmap record) by `delta` blocks,
    /// merging with a compatible neighbour at the new place. Physical blocks,
    /// their refcounts and the inode's block count do not change: a shared
    /// extent stays shared, only its file offset moves.
    #[inline(never)]
    fn ext_shift(&mut self, ino: u64, e: &Extent, to: u64) -> Result<()> {
        self.ext_del(ino, e)?;
        self.ext_insert(ino, to, e.pblk, e.len, e.flags)
    }

    /// Check a shift request against the file (FALLOC_FL_COLLAPSE_RANGE /
    /// INSERT_RANGE rules): a regular file, and for collapse a range that
    /// ends before EOF, for insert an offset before EOF and a size that
    /// stays within the maximum.
    fn shift_check(&self, ino: u64, lblk: u64, count: u64, insert: bool) -> Result<Inode> {
        Self::check_range(lblk, count)?;
        let i = self.data_inode(ino)?;
        if !i.is_reg() {
            return Err(Error::Invalid);
        }
        if insert {
            if i.size.saturating_add(count * BLOCK_SIZE) > MAX_BYTES {
                return Err(Error::FileTooBig);
            }
            if lblk.saturating_mul(BLOCK_SIZE) >= i.size {
                return Err(Error::Invalid);
            }
            // preallocated blocks past EOF move too and must stay addressable
            if let Some(last) = self.ext_last_before(ino, MAX_LBLK)? {
                if last.lblk + last.len + count > MAX_LBLK {
                    return Err(Error::FileTooBig);
                }
            }
        } else if (lblk + count).saturating_mul(BLOCK_SIZE) >= i.size {
            return Err(Error::Invalid);
        }
        Ok(i)
    }

    /// FALLOC_FL_COLLAPSE_RANGE: remove [lblk, lblk+count) and move every
    /// extent after it down by `count` blocks; the size shrinks by as much.
    ///
    /// Bounded transactions, as XFS does it: unmap the range (each step a
    /// valid partial punch), then move extents one by one, lowest first, into
    /// the gap, and shrink the size in the last step. The size stays the old
    /// one until every extent has moved, so no moved extent is ever past
    /// EOF. A crash (or an error) between steps leaves the old size, the
    /// range partly or wholly punched, and, once wholly punched, the
    /// extents below some offset X moved down by `count` and those at or
    /// above X where they were (Documentation/crash-consistency.md).
    pub fn collapse_range(&mut self, ino: u64, lblk: u64, count: u64, t: Time) -> Result<()> {
        self.shift_check(ino, lblk, count, false)?;
        self.run(|fs| {
            fs.unmap_range_all(ino, lblk, count)?;
            let mut cur = lblk + count;
            while let Some(e) = fs.ext_next(ino, cur)? {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                fs.ext_shift(ino, &e, e.lblk - count)?;
                cur = e.lblk + e.len;
            }
            let mut i = fs.inode_get(ino)?;
            i.size = i.size.saturating_sub(count * BLOCK_SIZE);
            i.mtime = t;
            i.ctime = t;
            fs.inode_put(ino, &i)
        })
    }

    /// FALLOC_FL_INSERT_RANGE: move every extent at or after `lblk` up by
    /// `count` blocks, leaving a hole there; the size grows by as much.
    ///
    /// Bounded transactions, as XFS does it: the first step grows the size
    /// (and splits the extent that straddles `lblk`), then extents move one
    /// by one, highest first. Growing the size first means no moved extent
    /// is ever past EOF. A crash (or an error) between steps leaves the new
    /// size, the extents at or above some offset X moved up by `count` and
    /// those below X (but at or after `lblk`) where they were, with a hole of
    /// `count` blocks at X.
    pub fn insert_range(&mut self, ino: u64, lblk: u64, count: u64, t: Time) -> Result<()> {
        self.shift_check(ino, lblk, count, true)?;
        self.run(|fs| {
            let mut i = fs.inode_get(ino)?;
            i.size += count * BLOCK_SIZE;
            i.mtime = t;
            i.ctime = t;
            fs.inode_put(ino, &i)?;
            if let Some(e) = fs.ext_covering(ino, lblk)? {
                if e.lblk < lblk {
                    let head = lblk - e.lblk;
                    fs.ext_del(ino, &e)?;
                    fs.ext_put(ino, e.lblk, e.pblk, head, e.flags)?;
                    fs.ext_put(ino, lblk, e.pblk + head, e.len - head, e.flags)?;
                }
            }
            let mut cur = MAX_LBLK;
            while let Some(e) = fs.ext_last_before(ino, cur)? {
                if e.lblk < lblk {
                    break;
                }
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                fs.ext_shift(ino, &e, e.lblk + count)?;
                cur = e.lblk;
            }
            Ok(())
        })
    }

    /// Share [slblk, slblk+count) of `src` into `dst` at `dlblk`, replacing
    /// whatever the destination range held. Holes and unwritten extents of
    /// the source become holes. Sizes are not changed (the caller updates the
    /// destination size). Cost O(extents * log n).
    pub fn reflink(&mut self, src: u64, slblk: u64, dst: u64, dlblk: u64, count: u64) -> Result<()> {
        Self::check_range(slblk, count)?;
        Self::check_range(dlblk, count)?;
        if !self.data_inode(src)?.is_reg() || !self.data_inode(dst)?.is_reg() {
            return Err(Error::Invalid);
        }
        if src == dst && slblk < dlblk + count && dlblk < slblk + count {
            return Err(Error::Invalid);
        }
        self.run(|fs| {
            fs.unmap_range_all(dst, dlblk, count)?;
            let end = slblk + count;
            let mut cur = slblk;
            while cur < end {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                let e = match fs.ext_first_in(src, cur, end)? {
                    Some(e) => e,
                    None => break,
                };
                let s = e.lblk.max(cur);
                let t = (e.lblk + e.len).min(end);
                if e.flags & EXT_UNWRITTEN == 0 {
                    let p = e.pblk + (s - e.lblk);
                    fs.ref_inc(p, t - s)?;
                    fs.ext_insert(dst, dlblk + (s - slblk), p, t - s, 0)?;
                    fs.blocks_add(dst, (t - s) as i64)?;
                }
                cur = t;
            }
            Ok(())
        })
    }

    /// Deduplicate: share the source range into the destination. The caller
    /// has compared the data (and holds both files locked).
    pub fn dedupe(&mut self, src: u64, slblk: u64, dst: u64, dlblk: u64, count: u64) -> Result<()> {
        self.reflink(src, slblk, dst, dlblk, count)
    }

    /// Give the range private copies of all shared blocks.
    pub fn unshare(&mut self, ino: u64, lblk: u64, count: u64) -> Result<()> {
        Self::check_range(lblk, count)?;
        self.data_inode(ino)?;
        self.run(|fs| {
            let end = lblk + count;
            let mut cur = lblk;
            while cur < end {
                if !fs.tx_has_room() {
                    fs.tx_restart()?;
                }
                let m = fs.map(ino, cur, end - cur)?;
                if m.shared && m.kind != MapKind::Hole {
                    let m2 = fs.cow(ino, &m)?;
                    cur += m2.count;
                } else {
                    cur += m.count;
                }
            }
            Ok(())
        })
    }

    /// One step of online defragmentation of file blocks `[cur, end)`: moves
    /// one extent, or its first `DEFRAG_MOVE` blocks, in one transaction,
    /// and returns where the next step starts (None when the range is
    /// done). `d` carries the run being laid out from one step to the next
    /// and counts what was done.
    ///
    /// A run is a sequence of extents that follow each other in the file
    /// with no hole between them, all written or all unwritten, none of
    /// their blocks shared, each wholly inside the range, at most
    /// `MAX_EXTENT_LEN` blocks in all. A run of two or more extents that are
    /// not already physically contiguous gets one free run of its length
    /// (first fit), and its extents move there one step at a time: data
    /// copied and flushed into blocks that were free, then the old mapping
    /// replaced by the new in the same transaction (the old blocks are freed
    /// at its commit), so a crash leaves every extent either where it was or
    /// where it went, the file's data the same either way. The moved
    /// extents merge into one. Shared extents are left alone (moving one
    /// would unshare it and use more space); so is a run when no free run
    /// is long enough (`no_space`). The next step checks again that its
    /// target is still free: if another allocation took it meanwhile (the
    /// caller may let others in between steps), the run starts over there.
    /// File size, times and block count do not change.
    pub fn defrag_step(&mut self, ino: u64, cur: u64, end: u64, d: &mut Defrag) -> Result<Option<u64>> {
        if cur >= end.min(MAX_LBLK) {
            return Ok(None);
        }
        self.data_inode(ino)?;
        let end = end.min(MAX_LBLK);
        self.run(|fs| fs.defrag_inner(ino, cur, end, d))
    }

    #[inline(never)]
    fn defrag_inner(&mut self, ino: u64, cur: u64, end: u64, d: &mut Defrag) -> Result<Option<u64>> {
        let e = match self.ext_first_in(ino, cur, end)? {
            Some(e) => e,
            None => return Ok(None),
        };
        if e.lblk < cur {
            // straddles the start: not ours to move
            d.next = None;
            return Ok(Some(e.lblk + e.len));
        }
        if e.lblk + e.len > end {
            return Ok(None);
        }
        if !self.unshared(&e)? {
            d.next = None;
            return Ok(Some(e.lblk + e.len));
        }
        let target = match d.next {
            Some((l, p)) if l == e.lblk && self.free_run(p, e.len)? == e.len => p,
            _ => {
                d.next = None;
                let (n, len, contiguous) = self.defrag_run(ino, &e, end)?;
                if n < 2 || contiguous {
                    return Ok(Some(e.lblk + len));
                }
                let rest = len - e.len;
                if self.free_run(e.pblk + e.len, rest)? == rest {
                    // the blocks after the first extent are free: it stays,
                    // the others move up behind it
                    d.next = Some((e.lblk + e.len, e.pblk + e.len));
                    return Ok(Some(e.lblk + e.len));
                }
                let avail = self.sb.free_blocks.saturating_sub(self.metadata_reserve());
                match self.find_run(len)? {
                    Some(p) if avail >= len => p,
                    _ => {
                        d.no_space += 1;
                        return Ok(Some(e.lblk + len));
                    }
                }
            }
        };
        // at most DEFRAG_MOVE blocks per step: the copy runs under the
        // caller's exclusive engine lock
        let n = e.len.min(DEFRAG_MOVE);
        let (p, got) = self.alloc_blocks(target, n, false)?;
        if p != target || got != n {
            // the target was checked free and the reserve covers the run
            return corrupt("free space bitmap", target);
        }
        self.relocate(ino, e.lblk, e.pblk, p, n, e.flags & EXT_UNWRITTEN != 0, e.flags)?;
        d.moved += n;
        d.next = Some((e.lblk + n, p + n));
        Ok(Some(e.lblk + n))
    }

    /// Whether none of the extent's blocks is shared.
    fn unshared(&self, e: &Extent) -> Result<bool> {
        let (rc, run) = self.rc_run(e.pblk, e.len)?;
        Ok(rc.is_none() && run == e.len)
    }

    /// The defragmentation run that starts with extent `e` (see
    /// `defrag_step`): (extents, blocks, already physically contiguous).
    fn defrag_run(&self, ino: u64, e: &Extent, end: u64) -> Result<(u64, u64, bool)> {
        let (mut n, mut len, mut contiguous, mut prev) = (1, e.len, true, *e);
        while let Some(x) = self.ext_next(ino, prev.lblk + prev.len)? {
            if x.lblk != prev.lblk + prev.len
                || x.flags != e.flags
                || x.lblk + x.len > end
                || len + x.len > MAX_EXTENT_LEN
                || !self.unshared(&x)?
            {
                break;
            }
            contiguous &= x.pblk == prev.pblk + prev.len;
            n += 1;
            len += x.len;
            prev = x;
        }
        Ok((n, len, contiguous))
    }

    /// Every owner of physical blocks [pblk, pblk+count), from the rmap btree:
    /// callback (ino, lblk, pblk, len) per overlapping extent.
    pub fn owners(&self, pblk: u64, count: u64, cb: &mut dyn FnMut(u64, u64, u64, u64)) -> Result<()> {
        let end = pblk.saturating_add(count);
        let mut v = [0u8; 8];
        let mut next = self.bt_seek_ge(TreeId::Rmap, Key::new(pblk.saturating_sub(MAX_EXTENT_LEN - 1), 0, 0), &mut v)?;
        while let Some(k) = next {
            if k.a >= end {
                break;
            }
            let len = le64(&v, 0);
            if len == 0 || len > MAX_EXTENT_LEN {
                return corrupt("rmap btree record", k.a);
            }
            if k.a.saturating_add(len) > pblk {
                cb(k.b, k.c, k.a, len);
            }
            next = self.bt_next(TreeId::Rmap, k, &mut v)?;
        }
        Ok(())
    }

    /// Quarantine physical blocks: recorded in the bad block btree and never
    /// allocated again (blocks in use stay with their owner until freed).
    pub fn quarantine(&mut self, pblk: u64, count: u64) -> Result<()> {
        let end = pblk.checked_add(count).ok_or(Error::Invalid)?;
        if count == 0 || count > MAX_EXTENT_LEN || pblk < self.sb.data_start || end > self.sb.total_blocks - 1 {
            return Err(Error::Invalid);
        }
        self.run(|fs| {
            let mut v = [0u8; 8];
            let mut b = pblk;
            while b < end {
                if let Some(k) = fs.bt_seek_le(TreeId::Badblock, Key::new(b, 0, 0), &mut v)? {
                    let len = fs.badblock_len(k, &v)?;
                    if k.a + len > b {
                        b = k.a + len;
                        continue;
                    }
                    if k.a + len == b {
                        fs.bt_update(TreeId::Badblock, k, &(len + 1).to_le_bytes())?;
                    } else {
                        fs.bt_insert(TreeId::Badblock, Key::new(b, 0, 0), &1u64.to_le_bytes())?;
                    }
                } else {
                    fs.bt_insert(TreeId::Badblock, Key::new(b, 0, 0), &1u64.to_le_bytes())?;
                }
                if !fs.block_in_use(b)? {
                    fs.bitmap_claim(b, 1)?;
                }
                b += 1;
            }
            Ok(())
        })
    }

    /// The length of the bad-block record (k, v); one of length 0 or
    /// running past the end is damage.
    fn badblock_len(&self, k: Key, v: &[u8]) -> Result<u64> {
        let len = le64(v, 0);
        if len == 0 || k.a.checked_add(len).is_none_or(|e| e > self.sb.total_blocks) {
            return corrupt("badblock btree record", k.a);
        }
        Ok(len)
    }

    /// Iterate bad block records (pblk, len).
    pub fn bad_blocks(&self, cb: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let mut v = [0u8; 8];
        let mut next = self.bt_seek_ge(TreeId::Badblock, Key::new(0, 0, 0), &mut v)?;
        while let Some(k) = next {
            // the callers add these up and compare ranges
            cb(k.a, self.badblock_len(k, &v)?);
            next = self.bt_next(TreeId::Badblock, k, &mut v)?;
        }
        Ok(())
    }

    /// True if [pblk, pblk+count) contains a quarantined block.
    pub fn has_bad_block(&self, pblk: u64, count: u64) -> Result<bool> {
        let mut bad = false;
        self.bad_blocks(&mut |p, n| bad |= p < pblk.saturating_add(count) && pblk < p.saturating_add(n))?;
        Ok(bad)
    }

    /// What physical block `pblk` holds, for a memory failure: `owned` says
    /// whether the rmap btree named an owner of it (`owners`).
    pub fn block_use(&self, pblk: u64, owned: bool) -> Result<BlockUse> {
        if pblk < self.sb.data_start {
            Ok(BlockUse::FixedMetadata)
        } else if owned {
            Ok(BlockUse::FileData)
        } else if self.block_in_use(pblk)? {
            Ok(BlockUse::Metadata)
        } else {
            Ok(BlockUse::Free)
        }
    }
}

/// What a physical block is used for (memory failure decides by it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockUse {
    /// Superblock, journal or free-space bitmap: fixed location, cannot be
    /// quarantined.
    FixedMetadata,
    /// A btree node or an external xattr value.
    Metadata,
    /// Data of one or more files (the rmap btree names the owners).
    FileData,
    /// Nothing (free space).
    Free,
}

impl BlockUse {
    /// For log lines.
    pub fn describe(self) -> &'static str {
        match self {
            BlockUse::FixedMetadata => "fixed metadata (superblock, journal or bitmap)",
            BlockUse::Metadata => "metadata (btree node or xattr value)",
            BlockUse::FileData => "file data",
            BlockUse::Free => "free space",
        }
    }

    /// Losing it loses metadata: the filesystem must shut down.
    pub fn is_metadata(self) -> bool {
        matches!(self, BlockUse::FixedMetadata | BlockUse::Metadata)
    }
}
