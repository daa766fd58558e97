//! The undo journal and transactions.
//!
//! Before the first store to an existing metadata block in a transaction, the
//! block's current image is copied into the next journal slot and a descriptor
//! (seq, home, crc) is written; both are flushed and fenced. Only then is the
//! block modified in place. Commit fences everything and stores `committed =
//! seq` (one atomic 8-byte store). Recovery rolls back descriptors of seq
//! `committed + 1`. See Documentation/crash-consistency.md.

use super::crc::Crc32c;
use super::fs::Fs;
use super::layout::*;
use super::media::Media;
use super::{corrupt, Error, Result};

/// Capacity of the in-memory "already logged" set; more are found on media.
pub(crate) const LOGGED_CAP: usize = 32;
/// Capacity of the "allocated in this transaction" set.
pub(crate) const FRESH_CAP: usize = 16;
/// Capacity of the "crc not yet recomputed" set.
pub(crate) const UNSEALED_CAP: usize = 16;
/// Capacity of the deferred free list.
pub(crate) const FREES_CAP: usize = 24;
/// Journal slots a bounded operation step may still need.
pub(crate) const STEP_SLOTS: u64 = 40;

/// Transaction state kept in `Fs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tx {
    pub active: bool,
    pub seq: u64,
    pub committed: u64,
    pub nlogged: u64,
    pub logged: [u64; LOGGED_CAP],
    pub nfresh: usize,
    pub fresh: [u64; FRESH_CAP],
    pub nunsealed: usize,
    pub unsealed: [u64; UNSEALED_CAP],
    pub nfrees: usize,
    pub frees: [(u64, u64); FREES_CAP],
    pub sb_dirty: bool,
}

impl Tx {
    pub(crate) const fn new() -> Tx {
        Tx {
            active: false,
            seq: 0,
            committed: 0,
            nlogged: 0,
            logged: [0; LOGGED_CAP],
            nfresh: 0,
            fresh: [0; FRESH_CAP],
            nunsealed: 0,
            unsealed: [0; UNSEALED_CAP],
            nfrees: 0,
            frees: [(0, 0); FREES_CAP],
            sb_dirty: false,
        }
    }
}

/// A metadata block that may be stored to in the current transaction: its
/// undo image is durable (or it was allocated in this transaction). Only the
/// journal can create one, so a store before the undo record is durable does
/// not type-check.
#[derive(Debug)]
pub struct LoggedBlock {
    blk: u64,
}

impl LoggedBlock {
    /// Block number.
    pub fn blk(&self) -> u64 {
        self.blk
    }
}

/// Encode the committed word: 48-bit sequence + 16-bit check.
pub fn committed_word(seq: u64) -> u64 {
    let s = seq & ((1 << 48) - 1);
    let c = super::crc::crc32c(&s.to_le_bytes()) as u64 & 0xffff;
    s | (c << 48)
}

/// Decode the committed word.
pub fn committed_seq(w: u64) -> Option<u64> {
    let s = w & ((1 << 48) - 1);
    if committed_word(s) == w {
        Some(s)
    } else {
        None
    }
}

/// Journal header crc: bytes 0..64 with the crc field and the committed word as zero.
pub fn jh_crc(b: &[u8; 64]) -> u32 {
    let mut c = Crc32c::new();
    c.update(&b[..8]);
    c.update(&[0; 4]);
    c.update(&b[12..32]);
    c.update(&[0; 8]);
    c.update(&b[40..64]);
    c.finish()
}

/// Descriptor-block header crc (bytes 0..64, crc field as zero).
pub fn hdr64_crc(b: &[u8; 64]) -> u32 {
    let mut c = Crc32c::new();
    c.update(&b[..8]);
    c.update(&[0; 4]);
    c.update(&b[12..64]);
    c.finish()
}

/// Streaming crc of a descriptor: seq, home, slot index, then the image.
pub fn jrec_crc_start(seq: u64, home: u64, slot: u64) -> Crc32c {
    let mut c = Crc32c::new();
    c.update(&seq.to_le_bytes());
    c.update(&home.to_le_bytes());
    c.update(&slot.to_le_bytes());
    c
}

impl<M: Media> Fs<M> {
    pub(crate) fn jdesc_off(&self, slot: u64) -> u64 {
        let blk = self.sb.journal_start + 1 + slot / JRECS_PER_BLOCK;
        blk * BLOCK_SIZE + JD_HDR + (slot % JRECS_PER_BLOCK) * JREC_SIZE
    }
    pub(crate) fn jslot_blk(&self, slot: u64) -> u64 {
        self.sb.journal_start + 1 + self.sb.journal_slots.div_ceil(JRECS_PER_BLOCK) + slot
    }

    /// Start a transaction.
    pub(crate) fn begin(&mut self) -> Result<()> {
        if self.ro {
            return Err(Error::ReadOnly);
        }
        if self.tx.active {
            return Err(Error::Invalid);
        }
        // reset in place: a whole Tx temporary would be ~1 KiB of stack
        let tx = &mut self.tx;
        tx.active = true;
        tx.seq = tx.committed + 1;
        tx.nlogged = 0;
        tx.nfresh = 0;
        tx.nunsealed = 0;
        tx.nfrees = 0;
        tx.sb_dirty = false;
        Ok(())
    }

    fn is_logged(&self, blk: u64) -> Result<bool> {
        if self.tx.fresh[..self.tx.nfresh].contains(&blk) {
            return Ok(true);
        }
        let n = self.tx.nlogged.min(LOGGED_CAP as u64) as usize;
        if self.tx.logged[..n].contains(&blk) {
            return Ok(true);
        }
        let mut i = LOGGED_CAP as u64;
        while i < self.tx.nlogged {
            if self.rd_u64(self.jdesc_off(i) + 8)? == blk {
                return Ok(true);
            }
            i += 1;
        }
        Ok(false)
    }

    /// Journal the current image of `blk` (once per transaction) and return
    /// the handle that permits stores to it.
    pub(crate) fn log(&mut self, blk: u64) -> Result<LoggedBlock> {
        if !self.tx.active {
            return Err(Error::Invalid);
        }
        if blk >= self.sb.total_blocks {
            return corrupt("block number", blk);
        }
        if self.is_logged(blk)? {
            return Ok(LoggedBlock { blk });
        }
        let slot = self.tx.nlogged;
        if slot >= self.sb.journal_slots {
            return Err(Error::NoSpace);
        }
        let sblk = self.jslot_blk(slot);
        self.m
            .copy(sblk * BLOCK_SIZE, blk * BLOCK_SIZE, BLOCK_SIZE)
            .map_err(|_| Error::Io { block: blk })?;
        let mut c = jrec_crc_start(self.tx.seq, blk, slot);
        self.crc_range(&mut c, sblk * BLOCK_SIZE, BLOCK_SIZE)?;
        let mut rec = [0u8; JREC_SIZE as usize];
        put64(&mut rec, 0, self.tx.seq);
        put64(&mut rec, 8, blk);
        put32(&mut rec, 16, c.finish());
        put32(&mut rec, 20, JREC_MAGIC);
        let doff = self.jdesc_off(slot);
        self.m.write(doff, &rec);
        self.m.flush(sblk * BLOCK_SIZE, BLOCK_SIZE);
        self.m.flush(doff, JREC_SIZE);
        self.m.fence();
        if (slot as usize) < LOGGED_CAP {
            self.tx.logged[slot as usize] = blk;
        }
        self.tx.nlogged = slot + 1;
        Ok(LoggedBlock { blk })
    }

    /// A block just allocated in this transaction: its old contents are garbage,
    /// so it needs no undo image.
    pub(crate) fn fresh(&mut self, blk: u64) -> Result<LoggedBlock> {
        if self.tx.nfresh < FRESH_CAP {
            self.tx.fresh[self.tx.nfresh] = blk;
            self.tx.nfresh += 1;
            Ok(LoggedBlock { blk })
        } else {
            self.log(blk)
        }
    }

    /// Store into a logged block (flushed at once; fenced at commit).
    pub(crate) fn mwrite(&mut self, lb: &LoggedBlock, off: u64, data: &[u8]) {
        let o = lb.blk * BLOCK_SIZE + off;
        self.m.write(o, data);
        self.m.flush(o, data.len() as u64);
    }

    /// Store zeroes into a logged block.
    pub(crate) fn mzero(&mut self, lb: &LoggedBlock, off: u64, len: u64) {
        let o = lb.blk * BLOCK_SIZE + off;
        self.m.zero(o, len);
        self.m.flush(o, len);
    }

    /// Note that the block crc of `lb` must be recomputed before commit.
    pub(crate) fn dirty(&mut self, lb: &LoggedBlock) -> Result<()> {
        if self.tx.unsealed[..self.tx.nunsealed].contains(&lb.blk) {
            return Ok(());
        }
        if self.tx.nunsealed == UNSEALED_CAP {
            let old = self.tx.unsealed[0];
            self.seal(old)?;
            self.tx.unsealed.copy_within(1.., 0);
            self.tx.nunsealed -= 1;
        }
        self.tx.unsealed[self.tx.nunsealed] = lb.blk;
        self.tx.nunsealed += 1;
        Ok(())
    }

    /// True if the block's crc is stale because it is being modified.
    pub(crate) fn is_unsealed(&self, blk: u64) -> bool {
        self.tx.active && self.tx.unsealed[..self.tx.nunsealed].contains(&blk)
    }

    /// Recompute and store the whole-block crc of a header-carrying block.
    fn seal(&mut self, blk: u64) -> Result<()> {
        let crc = self.block_crc(blk)?;
        let o = blk * BLOCK_SIZE + BLK_CRC_OFF;
        self.m.write(o, &crc.to_le_bytes());
        self.m.flush(o, 4);
        // we just computed it: the block is verified
        self.verified[(blk % super::fs::VCACHE as u64) as usize].store(blk + 1, core::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// crc of a block with the crc field (bytes 8..12) taken as zero.
    pub(crate) fn block_crc(&self, blk: u64) -> Result<u32> {
        let base = blk * BLOCK_SIZE;
        let mut c = Crc32c::new();
        self.crc_range(&mut c, base, 8)?;
        c.update(&[0; 4]);
        self.crc_range(&mut c, base + 12, BLOCK_SIZE - 12)?;
        Ok(c.finish())
    }

    pub(crate) fn crc_range(&self, c: &mut Crc32c, mut off: u64, mut len: u64) -> Result<()> {
        let mut buf = [0u8; 256];
        while len > 0 {
            let k = len.min(256) as usize;
            self.rd(off, &mut buf[..k])?;
            c.update(&buf[..k]);
            off += k as u64;
            len -= k as u64;
        }
        Ok(())
    }

    /// Free blocks at commit (a transaction never reuses what it freed).
    pub(crate) fn free_deferred(&mut self, pblk: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        for f in self.tx.frees[..self.tx.nfrees].iter_mut() {
            if f.0 + f.1 == pblk {
                f.1 += len;
                return Ok(());
            }
            if pblk + len == f.0 {
                f.0 = pblk;
                f.1 += len;
                return Ok(());
            }
        }
        if self.tx.nfrees == FREES_CAP {
            return Err(Error::NoSpace);
        }
        self.tx.frees[self.tx.nfrees] = (pblk, len);
        self.tx.nfrees += 1;
        Ok(())
    }

    /// Can a bounded step still be added to this transaction?
    pub(crate) fn tx_has_room(&self) -> bool {
        self.tx.nlogged + STEP_SLOTS <= self.sb.journal_slots && self.tx.nfrees + 6 <= FREES_CAP
    }

    /// Commit the transaction.
    #[inline(never)]
    pub(crate) fn commit(&mut self) -> Result<()> {
        if !self.tx.active {
            return Ok(());
        }
        let mut i = 0;
        while i < self.tx.nfrees {
            let (p, l) = self.tx.frees[i];
            self.bitmap_release(p, l)?;
            i += 1;
        }
        self.tx.nfrees = 0;
        if self.tx.sb_dirty {
            self.write_sb()?;
        }
        while self.tx.nunsealed > 0 {
            self.tx.nunsealed -= 1;
            let b = self.tx.unsealed[self.tx.nunsealed];
            self.seal(b)?;
        }
        if self.tx.nlogged == 0 && self.tx.nfresh == 0 {
            // nothing reached metadata; data stores (if any) are already flushed
            self.m.fence();
            self.tx.active = false;
            return Ok(());
        }
        self.m.fence();
        self.store_committed(self.tx.seq);
        self.tx.committed = self.tx.seq;
        self.tx.active = false;
        Ok(())
    }

    fn store_committed(&mut self, seq: u64) {
        let o = self.sb.journal_start * BLOCK_SIZE + JH_COMMITTED_OFF;
        self.m.write(o, &committed_word(seq).to_le_bytes());
        self.m.flush(o, 8);
        self.m.fence();
    }

    /// Commit and start a new transaction (bounded steps of a big operation).
    pub(crate) fn tx_restart(&mut self) -> Result<()> {
        self.commit()?;
        self.begin()
    }

    /// Roll back the active transaction.
    #[inline(never)]
    pub(crate) fn abort(&mut self) -> Result<()> {
        if !self.tx.active {
            return Ok(());
        }
        let n = self.tx.nlogged;
        self.tx.active = false;
        self.rollback(n)?;
        if n > 0 {
            self.store_committed(self.tx.seq);
            self.tx.committed = self.tx.seq;
        }
        self.reload_sb()
    }

    /// Copy slots `n-1 .. 0` back home.
    fn rollback(&mut self, n: u64) -> Result<()> {
        let mut i = n;
        while i > 0 {
            i -= 1;
            let home = self.rd_u64(self.jdesc_off(i) + 8)?;
            if home >= self.sb.total_blocks {
                return corrupt("journal descriptor", self.jdesc_off(i) / BLOCK_SIZE);
            }
            let s = self.jslot_blk(i);
            self.m
                .copy(home * BLOCK_SIZE, s * BLOCK_SIZE, BLOCK_SIZE)
                .map_err(|_| Error::Io { block: s })?;
            self.m.flush(home * BLOCK_SIZE, BLOCK_SIZE);
        }
        self.m.fence();
        Ok(())
    }

    /// Validate the journal header and descriptor block headers; returns the
    /// committed sequence. `self.sb` geometry may not be trusted yet, so this
    /// only uses the header's own fields (checked against `media_blocks`).
    pub(crate) fn journal_open(&mut self, media_blocks: u64) -> Result<u64> {
        let mut h = [0u8; 64];
        let base = JOURNAL_START * BLOCK_SIZE;
        self.rd(base, &mut h)?;
        if le64(&h, 0) != JH_MAGIC || le32(&h, 8) != jh_crc(&h) || le64(&h, 16) != JOURNAL_START {
            return corrupt("journal header", JOURNAL_START);
        }
        let slots = le64(&h, 24);
        let desc = le64(&h, 40);
        if !(MIN_JOURNAL_SLOTS..=MAX_JOURNAL_SLOTS).contains(&slots)
            || desc != slots.div_ceil(JRECS_PER_BLOCK)
            || JOURNAL_START + 1 + desc + slots >= media_blocks
        {
            return corrupt("journal header", JOURNAL_START);
        }
        let committed = match committed_seq(le64(&h, JH_COMMITTED_OFF as usize)) {
            Some(s) => s,
            None => return corrupt("journal header", JOURNAL_START),
        };
        let mut d = 0;
        while d < desc {
            let blk = JOURNAL_START + 1 + d;
            self.rd(blk * BLOCK_SIZE, &mut h)?;
            if le64(&h, 0) != JD_MAGIC || le32(&h, 8) != hdr64_crc(&h) || le64(&h, 16) != blk {
                return corrupt("journal descriptor block", blk);
            }
            d += 1;
        }
        self.sb.journal_start = JOURNAL_START;
        self.sb.journal_slots = slots;
        self.sb.total_blocks = media_blocks;
        self.tx.committed = committed;
        Ok(committed)
    }

    /// Count the valid descriptors of the uncommitted transaction.
    pub(crate) fn journal_pending(&self) -> Result<u64> {
        let seq = self.tx.committed + 1;
        let jend = self.jslot_blk(self.sb.journal_slots); // first block past the journal
        let mut n = 0;
        while n < self.sb.journal_slots {
            let mut rec = [0u8; JREC_SIZE as usize];
            self.rd(self.jdesc_off(n), &mut rec)?;
            if le64(&rec, 0) != seq || le32(&rec, 20) != JREC_MAGIC {
                break;
            }
            let home = le64(&rec, 8);
            let mut c = jrec_crc_start(seq, home, n);
            self.crc_range(&mut c, self.jslot_blk(n) * BLOCK_SIZE, BLOCK_SIZE)?;
            if c.finish() != le32(&rec, 16) {
                break;
            }
            // a valid record whose home is past the end or inside the
            // journal itself (which is never logged) is damage: refuse it
            // before rolling anything back
            if home >= self.sb.total_blocks || (self.sb.journal_start..jend).contains(&home) {
                return corrupt("journal descriptor", self.jdesc_off(n) / BLOCK_SIZE);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Recovery: roll back the uncommitted transaction. Returns how many
    /// blocks were restored. Idempotent if interrupted.
    pub(crate) fn journal_recover(&mut self) -> Result<u64> {
        let n = self.journal_pending()?;
        if n > 0 {
            self.rollback(n)?;
            let seq = self.tx.committed + 1;
            self.store_committed(seq);
            self.tx.committed = seq;
        }
        Ok(n)
    }

    /// Write the journal region at format time.
    pub(crate) fn journal_format(&mut self) {
        let slots = self.sb.journal_slots;
        let desc = slots.div_ceil(JRECS_PER_BLOCK);
        let mut h = [0u8; 64];
        put64(&mut h, 0, JH_MAGIC);
        put64(&mut h, 16, JOURNAL_START);
        put64(&mut h, 24, slots);
        put64(&mut h, 40, desc);
        let c = jh_crc(&h);
        put32(&mut h, 8, c);
        put64(&mut h, JH_COMMITTED_OFF as usize, committed_word(0));
        let base = JOURNAL_START * BLOCK_SIZE;
        self.m.zero(base, BLOCK_SIZE * (1 + desc));
        self.m.write(base, &h);
        let mut d = 0;
        while d < desc {
            let blk = JOURNAL_START + 1 + d;
            let mut h = [0u8; 64];
            put64(&mut h, 0, JD_MAGIC);
            put64(&mut h, 16, blk);
            put64(&mut h, 24, d);
            let c = hdr64_crc(&h);
            put32(&mut h, 8, c);
            self.m.write(blk * BLOCK_SIZE, &h);
            d += 1;
        }
        self.m.flush(base, BLOCK_SIZE * (1 + desc));
        self.tx.committed = 0;
    }
}
