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

use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::rbtree::RBTree;

/// One owner of a block: page `index` of inode `ino` maps it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) ino: u64,
    pub(crate) index: u64,
}

/// Block number (filesystem block = page) to its mapping owners.
pub(crate) struct PfnRmap {
    tree: RBTree<u64, KVec<Owner>>,
    owners: u64,
}

impl PfnRmap {
    pub(crate) fn new() -> Self {
        PfnRmap { tree: RBTree::new(), owners: 0 }
    }

    /// Records that page `index` of `ino` maps block `pblk` (idempotent).
    /// Callers run inside the engine lock's NOFS allocation scope.
    pub(crate) fn add(&mut self, pblk: u64, ino: u64, index: u64) -> Result {
        let o = Owner { ino, index };
        if let Some(v) = self.tree.get_mut(&pblk) {
            if !v.iter().any(|x| *x == o) {
                v.push(o, GFP_KERNEL)?;
                self.owners += 1;
            }
            return Ok(());
        }
        let mut v = KVec::with_capacity(2, GFP_KERNEL)?;
        v.push(o, GFP_KERNEL)?;
        self.tree.try_create_and_insert(pblk, v, GFP_KERNEL)?;
        self.owners += 1;
        Ok(())
    }

    /// Forgets that page `index` of `ino` maps `pblk`.
    pub(crate) fn forget(&mut self, pblk: u64, ino: u64, index: u64) {
        let o = Owner { ino, index };
        let empty = match self.tree.get_mut(&pblk) {
            None => return,
            Some(v) => {
                if let Some(i) = v.iter().position(|x| *x == o) {
                    let last = v.len() - 1;
                    v.as_mut_slice().swap(i, last);
                    // SAFETY: Owner is Copy (no destructor); shrinking by one
                    // drops the element just swapped to the end.
                    unsafe { v.set_len(last) };
                    self.owners -= 1;
                }
                v.is_empty()
            }
        };
        if empty {
            self.tree.remove(&pblk);
        }
    }

    /// Forgets blocks [pblk, pblk+count) as pages [index, ..) of `ino`.
    pub(crate) fn forget_range(&mut self, pblk: u64, count: u64, ino: u64, index: u64) {
        if self.owners == 0 {
            return;
        }
        for i in 0..count {
            self.forget(pblk + i, ino, index + i);
        }
    }

    /// Forgets every block `ino` maps (eviction).
    pub(crate) fn forget_inode(&mut self, ino: u64) {
        if self.owners == 0 {
            return;
        }
        let mut gone: KVec<(u64, u64)> = KVec::new();
        for (p, v) in self.tree.iter() {
            for o in v.iter().filter(|o| o.ino == ino) {
                if gone.push((*p, o.index), GFP_KERNEL).is_err() {
                    break;
                }
            }
        }
        for (p, i) in gone.iter() {
            self.forget(*p, ino, *i);
        }
    }

    /// The recorded owners of `pblk`.
    pub(crate) fn owners_of(&self, pblk: u64) -> &[Owner] {
        self.tree.get(&pblk).map(|v| &v[..]).unwrap_or(&[])
    }

    /// Every (block, owner) pair, in block order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &Owner)) {
        for (p, v) in self.tree.iter() {
            for o in v.iter() {
                f(*p, o);
            }
        }
    }

    /// Blocks with at least one recorded owner.
    pub(crate) fn pages(&self) -> u64 {
        self.tree.iter().count() as u64
    }

    /// Recorded owners.
    pub(crate) fn owners(&self) -> u64 {
        self.owners
    }

    /// Approximate bytes used: one rbtree node (rb_node, key, vector header)
    /// per block plus the owner slots, rounded as kmalloc would.
    pub(crate) fn bytes(&self) -> u64 {
        let node = 64u64;
        self.tree.iter().map(|(_, v)| node + (v.capacity() as u64 * 16).next_power_of_two().max(16)).sum()
    }
}
