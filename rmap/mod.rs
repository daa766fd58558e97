// SPDX-License-Identifier: GPL-2.0
//! The per-PFN reverse map: for every shared DAX block that is mapped into
//! some process, the (inode, page index) pairs that map it.
//!
//! In 6.12 fsdax marks a page mapped through several files with
//! `PAGE_MAPPING_DAX_SHARED` and a bare share count, so the kernel no longer
//! knows who maps it. ferrofs keeps that knowledge: an entry is added when a
//! fault maps a shared block (iomap_begin with IOMAP_FAULT) and removed when
//! that file stops owning the block (CoW, truncate, punch, remap, evict,
//! unmount). Memory failure unions it with the engine's on-media rmap btree,
//! which also knows owners whose inodes are not cached; debugfs shows it.
//!
//! Owners are kept by inode number, not address_space pointer: a user looks
//! the inode up (`ilookup`) when it needs the mapping, so an entry can never
//! dangle after eviction.
//!
//! Shape and cost. Each owner is one node in each of two red-black trees
//! that mirror each other:
//! - `by_block`, keyed (block, inode, index), no value: the owners of a
//!   block are the keys between (block, 0, 0) and (block+1, 0, 0);
//! - `by_owner`, keyed (inode, index), value block: an inode's owners are
//!   one contiguous run of keys, and a page of a file maps one block at a
//!   time, so (inode, index) is unique.
//!
//! So `add` and `forget` are O(log n) in the number n of recorded owners
//! (a lookup, then two inserts or two removals), `forget_range` and
//! `forget_inode` are O(log n + k) for the k owners they drop, and
//! `owners_of` is O(log n + k) for a block's k owners. Every node is its own
//! small allocation (rb_node 24 bytes + key + value = 48 bytes, kmalloc-64),
//! so no block's owner list ever needs a large contiguous allocation: the
//! cost is 128 bytes per owner (two kmalloc-64 objects) and nothing per
//! block. An owner whose nodes cannot be allocated is not recorded; `add`
//! returns the error and the caller counts it (`rmap_unrecorded` in
//! debugfs): memory failure still finds that owner in the on-media rmap.

use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};

/// One owner of a block: page `index` of inode `ino` maps it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) ino: u64,
    pub(crate) index: u64,
}

/// Block number (filesystem block = page) to its mapping owners, and back.
pub(crate) struct PfnRmap {
    /// (block, inode, index): who maps each block.
    by_block: RBTree<(u64, u64, u64), ()>,
    /// (inode, index) -> block: what each inode's pages map.
    by_owner: RBTree<(u64, u64), u64>,
    owners: u64,
}

/// Bytes kmalloc hands out for a request of `n` (its size classes).
fn kmalloc_size(n: usize) -> u64 {
    let n = n as u64;
    match n {
        0..=8 => 8,
        65..=96 => 96,
        129..=192 => 192,
        _ => n.next_power_of_two(),
    }
}

impl PfnRmap {
    pub(crate) fn new() -> Self {
        PfnRmap { by_block: RBTree::new(), by_owner: RBTree::new(), owners: 0 }
    }

    /// Records that page `index` of `ino` maps block `pblk` (idempotent; a
    /// different block recorded for the same page is replaced: the page
    /// maps one block at a time). On an allocation failure nothing new is
    /// recorded and the error is returned for the caller to count.
    /// Callers run inside the engine lock's NOFS allocation scope.
    pub(crate) fn add(&mut self, pblk: u64, ino: u64, index: u64) -> Result {
        match self.by_owner.get(&(ino, index)) {
            Some(&p) if p == pblk => return Ok(()),
            Some(&p) => self.forget(p, ino, index),
            None => {}
        }
        // Both nodes first, so a failure leaves the trees mirrored.
        let b = RBTreeNode::new((pblk, ino, index), (), GFP_KERNEL)?;
        let o = RBTreeNode::new((ino, index), pblk, GFP_KERNEL)?;
        self.by_block.insert(b);
        self.by_owner.insert(o);
        self.owners += 1;
        Ok(())
    }

    /// Forgets that page `index` of `ino` maps `pblk`.
    pub(crate) fn forget(&mut self, pblk: u64, ino: u64, index: u64) {
        if self.by_owner.get(&(ino, index)) != Some(&pblk) {
            return;
        }
        self.by_owner.remove(&(ino, index));
        self.by_block.remove(&(pblk, ino, index));
        self.owners -= 1;
    }

    /// Forgets blocks [pblk, pblk+count) as pages [index, ..) of `ino`:
    /// walks only the owners `ino` has recorded in that page range.
    pub(crate) fn forget_range(&mut self, pblk: u64, count: u64, ino: u64, index: u64) {
        if self.owners == 0 {
            return;
        }
        let end = index.saturating_add(count);
        let mut cur = self.by_owner.cursor_lower_bound(&(ino, index));
        while let Some(c) = cur {
            let (&(i, idx), &p) = c.current();
            if i != ino || idx >= end {
                break;
            }
            if p != pblk + (idx - index) {
                cur = c.move_next();
                continue;
            }
            let (next, _node) = c.remove_current();
            self.by_block.remove(&(p, i, idx));
            self.owners -= 1;
            // remove_current falls back to the previous node when it
            // removed the last one: that one is below the range
            cur = next.filter(|n| *n.current().0 > (i, idx));
        }
    }

    /// Forgets every block `ino` maps (eviction): walks only its owners.
    pub(crate) fn forget_inode(&mut self, ino: u64) {
        if self.owners == 0 {
            return;
        }
        let mut cur = self.by_owner.cursor_lower_bound(&(ino, 0));
        while let Some(c) = cur {
            let (&(i, idx), &p) = c.current();
            if i != ino {
                break;
            }
            let (next, _node) = c.remove_current();
            self.by_block.remove(&(p, i, idx));
            self.owners -= 1;
            cur = next.filter(|n| *n.current().0 > (i, idx));
        }
    }

    /// Calls `f` with each recorded owner of `pblk`.
    pub(crate) fn owners_of(&mut self, pblk: u64, mut f: impl FnMut(&Owner)) {
        let mut cur = self.by_block.cursor_lower_bound(&(pblk, 0, 0));
        while let Some(c) = cur {
            let &(p, ino, index) = c.current().0;
            if p != pblk {
                break;
            }
            f(&Owner { ino, index });
            cur = c.move_next();
        }
    }

    /// Every (block, owner) pair, in block order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &Owner)) {
        for (&(p, ino, index), _) in self.by_block.iter() {
            f(p, &Owner { ino, index });
        }
    }

    /// Blocks with at least one recorded owner (walks the map: debugfs only).
    pub(crate) fn pages(&self) -> u64 {
        let mut last = None;
        let mut n = 0;
        for (&(p, _, _), _) in self.by_block.iter() {
            if last != Some(p) {
                n += 1;
                last = Some(p);
            }
        }
        n
    }

    /// Recorded owners.
    pub(crate) fn owners(&self) -> u64 {
        self.owners
    }

    /// Approximate bytes used: two tree nodes per owner (rb_node, key and
    /// value each), rounded to kmalloc's size classes.
    pub(crate) fn bytes(&self) -> u64 {
        let rb = core::mem::size_of::<kernel::bindings::rb_node>();
        let blk = kmalloc_size(rb + core::mem::size_of::<(u64, u64, u64)>());
        let own = kmalloc_size(rb + core::mem::size_of::<((u64, u64), u64)>());
        self.owners * (blk + own)
    }
}
