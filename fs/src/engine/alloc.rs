//! Free-space bitmap and block allocator.
//!
//! One bit per block, set = in use. Bitmap block `i` (at `bitmap_start + i`)
//! has a 64-byte header and tracks blocks `[i * BITS_PER_BM, (i+1) * BITS_PER_BM)`.
//! BITS_PER_BM is a multiple of 512, so 2 MiB aligned runs never straddle two
//! bitmap blocks.

use super::btree::Key;
use super::fs::Fs;
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};
use core::num::NonZeroU64;

/// Blocks in a PMD-sized (2 MiB) run.
pub const HUGE_BLOCKS: u64 = 512;

impl<M: Media> Fs<M> {
    fn bm_word_off(&self, b: u64) -> u64 {
        let blk = self.sb.bitmap_start + b / BITS_PER_BM;
        blk * BLOCK_SIZE + BM_HDR + ((b % BITS_PER_BM) / 64) * 8
    }

    fn bm_word(&self, b: u64) -> Result<u64> {
        self.rd_u64(self.bm_word_off(b))
    }

    /// Write the bitmap at format time (metadata region, backup superblock and
    /// the bits past the end are set).
    pub(crate) fn bitmap_format(&mut self) -> Result<()> {
        let total = self.sb.total_blocks;
        let mut i = 0;
        while i < self.sb.bitmap_blocks {
            let blk = self.sb.bitmap_start + i;
            let base = blk * BLOCK_SIZE;
            self.m.zero(base, BLOCK_SIZE);
            let mut h = [0u8; 64];
            put64(&mut h, 0, BM_MAGIC);
            put64(&mut h, BLK_NO_OFF as usize, blk);
            put64(&mut h, 24, i);
            self.m.write(base, &h);
            let first = i * BITS_PER_BM;
            let mut w = 0;
            while w < BITS_PER_BM / 64 {
                let mut word = 0u64;
                let wfirst = first + w * 64;
                let mut bit = if wfirst >= self.sb.data_start && wfirst + 64 < total - 1 { 64 } else { 0 };
                while bit < 64 {
                    let b = first + w * 64 + bit;
                    if b < self.sb.data_start || b >= total - 1 {
                        word |= 1 << bit;
                    }
                    bit += 1;
                }
                if word != 0 {
                    self.m.write(base + BM_HDR + w * 8, &word.to_le_bytes());
                }
                w += 1;
            }
            let crc = self.block_crc(blk)?;
            self.m.write(base + BLK_CRC_OFF, &crc.to_le_bytes());
            self.m.flush(base, BLOCK_SIZE);
            i += 1;
        }
        Ok(())
    }

    /// Verify a bitmap block's header and crc.
    pub(crate) fn bitmap_check(&self, blk: u64, idx: u64) -> Result<()> {
        let mut h = [0u8; 32];
        self.rd(blk * BLOCK_SIZE, &mut h)?;
        if le64(&h, 0) != BM_MAGIC
            || le64(&h, BLK_NO_OFF as usize) != blk
            || le64(&h, 24) != idx
            || le32(&h, BLK_CRC_OFF as usize) != self.block_crc(blk)?
        {
            return corrupt("free space bitmap", blk);
        }
        Ok(())
    }

    /// Is block `b` marked in use?
    pub fn block_in_use(&self, b: u64) -> Result<bool> {
        if b >= self.sb.total_blocks {
            return Err(Error::Invalid);
        }
        Ok(self.bm_word(b)? >> (b % 64) & 1 != 0)
    }

    /// Set or clear bits `[start, start+len)`. Every bit must change, otherwise
    /// the bitmap disagrees with the trees (double allocation or double free).
    fn bm_set(&mut self, start: u64, len: u64, set: bool) -> Result<()> {
        let end = start + len;
        if end > self.sb.total_blocks - 1 || start < self.sb.data_start {
            return corrupt("free space bitmap (range)", start);
        }
        let mut b = start;
        while b < end {
            let bmblk = self.sb.bitmap_start + b / BITS_PER_BM;
            let lb = self.log(bmblk)?;
            let off = self.bm_word_off(b);
            let bit = b % 64;
            let n = (64 - bit).min(end - b);
            let mask = if n == 64 { !0u64 } else { ((1u64 << n) - 1) << bit };
            let w = self.rd_u64(off)?;
            let nw = if set {
                if w & mask != 0 {
                    return corrupt("free space bitmap (double allocation)", bmblk);
                }
                w | mask
            } else {
                if w & mask != mask {
                    return corrupt("free space bitmap (double free)", bmblk);
                }
                w & !mask
            };
            self.mwrite(&lb, off - bmblk * BLOCK_SIZE, &nw.to_le_bytes());
            self.dirty(&lb)?;
            b += n;
        }
        Ok(())
    }

    /// Length of the free run starting at `s` (at most `max`).
    pub(crate) fn free_run(&self, s: u64, max: u64) -> Result<u64> {
        let lim = self.sb.total_blocks - 1;
        let mut b = s;
        while b < lim && b - s < max {
            let w = self.bm_word(b)? >> (b % 64);
            if w & 1 != 0 {
                break;
            }
            let bits = 64 - b % 64;
            let z = if w == 0 { bits } else { (w.trailing_zeros() as u64).min(bits) };
            b += z;
        }
        Ok((b.min(lim) - s).min(max))
    }

    /// First free block at or after `from` (wrapping once around the data region).
    fn find_free(&self, from: u64) -> Result<Option<u64>> {
        let lo = self.sb.data_start;
        let hi = self.sb.total_blocks - 1;
        let start = if from < lo || from >= hi { lo } else { from };
        let mut b = start;
        let mut wrapped = false;
        loop {
            if b >= hi {
                if wrapped {
                    return Ok(None);
                }
                wrapped = true;
                b = lo;
            }
            if wrapped && b >= start {
                return Ok(None);
            }
            let w = !self.bm_word(b)? >> (b % 64);
            if w != 0 {
                let f = b + w.trailing_zeros() as u64;
                if f < hi {
                    return Ok(Some(f));
                }
                b = hi;
                continue;
            }
            b = (b | 63) + 1;
        }
    }

    /// The first run of `len` free blocks that starts on a multiple of
    /// `align` (2 MiB chunks for PMD faults, the stripe unit), searching
    /// from the aligned block at or below `from` to the end of the data
    /// region, then once from its start. Costs a bitmap word or two per
    /// used stretch it steps over, not per candidate.
    fn find_aligned(&self, from: u64, align: NonZeroU64, len: u64) -> Result<Option<u64>> {
        let a = align.get();
        // (No `%` or `/` by a plain variable here: the kernel's objtool
        // (6.12) does not know rustc's divide-by-zero panic as noreturn and
        // warns that the function falls through. A NonZeroU64 divisor has
        // no such panic.)
        let up = |b: u64| b.saturating_add(a - 1) / align * a;
        let lo = up(self.sb.data_start);
        let hi = self.sb.total_blocks - 1;
        let fits = |c: u64| c.checked_add(len).is_some_and(|e| e <= hi);
        if !fits(lo) {
            return Ok(None);
        }
        let start = if from < lo || !fits(from / align * a) { lo } else { from / align * a };
        let (mut c, mut wrapped) = (start, false);
        loop {
            if !fits(c) {
                if wrapped {
                    return Ok(None);
                }
                (c, wrapped) = (lo, true);
            }
            if wrapped && c >= start {
                return Ok(None);
            }
            let n = self.free_run(c, len)?;
            if n >= len {
                return Ok(Some(c));
            }
            // block c + n is in use: go on from the next free block after it
            let used = c + n;
            c = match self.find_free(used + 1)? {
                Some(f) if f > used => up(f),
                _ => hi,
            };
        }
    }

    /// The alignment of a 2 MiB chunk for a huge allocation: 2 MiB, or,
    /// when the request also wants a `stripe` unit, the least common
    /// multiple of the two (a 2 MiB chunk on a stripe unit).
    fn huge_alignment(stripe: Option<NonZeroU64>) -> NonZeroU64 {
        const HUGE: NonZeroU64 = match NonZeroU64::new(HUGE_BLOCKS) {
            Some(h) => h,
            None => panic!("HUGE_BLOCKS is 0"),
        };
        let Some(s) = stripe else { return HUGE };
        let (mut x, mut y) = (HUGE_BLOCKS, s.get());
        while let Some(r) = x.checked_rem(y) {
            (x, y) = (y, r);
        }
        // x = gcd(512, s) >= 1 divides 512, and 512 / x * s fits: s < 2^32
        NonZeroU64::new(x).and_then(|g| NonZeroU64::new(HUGE_BLOCKS / g * s.get())).unwrap_or(HUGE)
    }

    /// Blocks kept back from data allocations so that metadata updates (btree
    /// splits of unlink, rmdir, truncate, orphan records) still succeed on a
    /// full filesystem: a user who hits ENOSPC can always delete.
    pub fn metadata_reserve(&self) -> u64 {
        (self.sb.total_blocks / 1024).clamp(64, 8192)
    }

    /// Allocate up to `want` contiguous data blocks, preferring `goal`; with
    /// `huge`, try a 2 MiB aligned 512-block run first (on a stripe unit
    /// too, with stripe geometry); a request of at least a stripe unit that
    /// cannot go on from `goal` starts on a stripe unit when one is free.
    /// Returns (start, len >= 1). Never dips into the metadata reserve.
    pub(crate) fn alloc_blocks(&mut self, goal: u64, want: u64, huge: bool) -> Result<(u64, u64)> {
        let avail = self.sb.free_blocks.saturating_sub(self.metadata_reserve());
        if avail == 0 {
            return Err(Error::NoSpace);
        }
        self.alloc_run(goal, want.min(avail), huge)
    }

    /// The allocator proper: any free blocks, reserve included.
    fn alloc_run(&mut self, goal: u64, want: u64, huge: bool) -> Result<(u64, u64)> {
        let want = want.clamp(1, MAX_EXTENT_LEN);
        if self.sb.free_blocks == 0 {
            return Err(Error::NoSpace);
        }
        let mut found = None;
        let su = self.sb.stripe_unit as u64;
        let stripe = NonZeroU64::new(su).filter(|_| su > 1 && want >= su);
        // a huge request takes a whole aligned 2 MiB chunk, even over
        // going on from `goal`: a PMD fault can map it (on a stripe unit if
        // one is free there, else on 2 MiB alone)
        if huge && want >= HUGE_BLOCKS {
            let (both, pmd) = (Self::huge_alignment(stripe), Self::huge_alignment(None));
            found = self.find_aligned(self.sb.alloc_rotor, both, HUGE_BLOCKS)?.map(|c| (c, HUGE_BLOCKS));
            if found.is_none() && both != pmd {
                found = self.find_aligned(self.sb.alloc_rotor, pmd, HUGE_BLOCKS)?.map(|c| (c, HUGE_BLOCKS));
            }
        }
        if found.is_none() && goal >= self.sb.data_start && goal < self.sb.total_blocks - 1 {
            let n = self.free_run(goal, want)?;
            if n > 0 {
                found = Some((goal, n));
            }
        }
        // a request of a stripe unit or more that does not go on from its
        // goal (a file's first extent, say) starts on a stripe unit, as
        // XFS aligns it: at least a unit free there, then as much as is
        if let Some(a) = stripe.filter(|_| found.is_none()) {
            if let Some(c) = self.find_aligned(self.sb.alloc_rotor, a, su)? {
                found = Some((c, self.free_run(c, want)?));
            }
        }
        if found.is_none() {
            let s = match self.find_free(self.sb.alloc_rotor)? {
                Some(s) => s,
                None => return Err(Error::NoSpace),
            };
            found = Some((s, self.free_run(s, want)?.max(1)));
        }
        let (s, n) = found.unwrap_or((0, 0));
        if n == 0 || n > self.sb.free_blocks {
            return corrupt("superblock free block count", 0);
        }
        self.bm_set(s, n, true)?;
        self.sb.free_blocks -= n;
        self.sb.alloc_rotor = s + n;
        self.sb_dirty();
        Ok((s, n))
    }

    /// Allocate exactly `n` contiguous blocks (xattr values).
    pub(crate) fn alloc_exact(&mut self, n: u64) -> Result<u64> {
        // alloc_blocks stays out of the reserve: a free run found inside it
        // is no space, not a bitmap that disagrees with itself
        if self.sb.free_blocks.saturating_sub(self.metadata_reserve()) < n {
            return Err(Error::NoSpace);
        }
        let f = self.find_run(n)?.ok_or(Error::NoSpace)?;
        let (s, got) = self.alloc_blocks(f, n, false)?;
        if s == f && got == n {
            return Ok(s);
        }
        corrupt("free space bitmap", s)
    }

    /// The first run of `n` free blocks in the data region, if any (first
    /// fit, from the start of the region; nothing is allocated).
    pub(crate) fn find_run(&self, n: u64) -> Result<Option<u64>> {
        let hi = self.sb.total_blocks - 1;
        let mut b = self.sb.data_start;
        while b < hi {
            let f = match self.find_free(b)? {
                Some(f) if f >= b => f,
                _ => break,
            };
            let r = self.free_run(f, n)?;
            if r >= n {
                return Ok(Some(f));
            }
            b = f + r.max(1);
        }
        Ok(None)
    }

    /// Allocate one metadata block (a btree node), zeroed. May use the
    /// metadata reserve.
    pub(crate) fn alloc_meta(&mut self) -> Result<super::journal::LoggedBlock> {
        let goal = self.sb.data_start;
        let (s, _) = self.alloc_run(goal, 1, false)?;
        let lb = self.fresh(s)?;
        self.mzero(&lb, 0, BLOCK_SIZE);
        Ok(lb)
    }

    /// Return blocks to the free pool (commit time): bad blocks stay allocated.
    pub(crate) fn bitmap_release(&mut self, p: u64, l: u64) -> Result<()> {
        let end = p + l;
        let mut cur = p;
        while cur < end {
            let mut stop = end;
            if self.sb.trees[TreeId::Badblock as usize].root != 0 {
                let mut v = [0u8; 8];
                // a zero-length record would stop this walk at `cur` for
                // ever: it is damage, as in quarantine
                if let Some(k) = self.bt_seek_le(TreeId::Badblock, Key::new(cur, 0, 0), &mut v)? {
                    let len = le64(&v, 0);
                    if len == 0 {
                        return corrupt("badblock btree record", k.a);
                    }
                    let bend = k.a.saturating_add(len);
                    if bend > cur {
                        cur = bend.min(end);
                        continue;
                    }
                }
                if let Some(k) = self.bt_seek_ge(TreeId::Badblock, Key::new(cur, 0, 0), &mut v)? {
                    if le64(&v, 0) == 0 {
                        return corrupt("badblock btree record", k.a);
                    }
                    if k.a < stop {
                        stop = k.a;
                    }
                }
            }
            self.bm_set(cur, stop - cur, false)?;
            self.sb.free_blocks = self.sb.free_blocks.saturating_add(stop - cur);
            self.sb_dirty();
            cur = stop;
        }
        Ok(())
    }

    /// Mark blocks in use without allocating them (quarantine of free blocks).
    pub(crate) fn bitmap_claim(&mut self, p: u64, l: u64) -> Result<()> {
        self.bm_set(p, l, true)?;
        self.sb.free_blocks = match self.sb.free_blocks.checked_sub(l) {
            Some(f) => f,
            None => return corrupt("superblock free block count", 0),
        };
        self.sb_dirty();
        Ok(())
    }
}
