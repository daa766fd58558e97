//! The damaged-files report: every quarantined block (the bad block list
//! that memory failures fill), each file that still owns it with its path
//! and byte range, and whether other files share it.
//!
//! Read-only: the engine is mounted read-only over an [`Overlay`], so a
//! journal rollback it needs stays in memory and the device is never
//! written. `ferrofs-du --damaged` and `fsck.ferrofs` print the same lines.

use crate::fsck::Overlay;
use ferrofs_engine::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One file's share of one quarantined range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedFile {
    /// Inode number.
    pub ino: u64,
    /// Path from the filesystem root ("/dir/name"), or None for a file
    /// with no name left (unlinked while open).
    pub path: Option<String>,
    /// Other names of the same inode (hard links).
    pub other_links: usize,
    /// First byte of the file in the range.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// One quarantined range and who owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// First physical block.
    pub pblk: u64,
    /// Blocks.
    pub count: u64,
    /// Owners, by inode then offset.
    pub files: Vec<DamagedFile>,
}

impl Damage {
    /// Distinct files owning some block of the range.
    pub fn owners(&self) -> usize {
        self.files.iter().map(|f| f.ino).collect::<BTreeSet<_>>().len()
    }

    /// The report's lines for this range: one per (file, byte range), or
    /// one saying the range is free and kept out of use.
    pub fn lines(&self) -> Vec<String> {
        let blocks = if self.count == 1 {
            format!("block {}", self.pblk)
        } else {
            format!("blocks {}-{}", self.pblk, self.pblk + self.count - 1)
        };
        if self.files.is_empty() {
            return vec![format!("damaged {blocks}: no file owns it (kept out of use)")];
        }
        let others = self.owners() - 1;
        let share = match others {
            0 => "not shared".to_string(),
            1 => "shared with 1 other file".to_string(),
            n => format!("shared with {n} other files"),
        };
        self.files
            .iter()
            .map(|f| {
                let name = match &f.path {
                    Some(p) if f.other_links > 0 => format!("{p} (and {} more links)", f.other_links),
                    Some(p) => p.clone(),
                    None => format!("<inode {}, unlinked>", f.ino),
                };
                format!("damaged {blocks}: {name} bytes {}-{} ({share})", f.start, f.end - 1)
            })
            .collect()
    }
}

/// Every name of every inode, by walking the tree from the root.
fn names<M: Media>(fs: &Fs<M>) -> Result<BTreeMap<u64, Vec<String>>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut todo = VecDeque::from([(fs.root_ino(), String::new())]);
    let mut seen = BTreeSet::from([fs.root_ino()]);
    while let Some((dir, path)) = todo.pop_front() {
        let mut ents: Vec<(Vec<u8>, u64, u8)> = Vec::new();
        fs.readdir(dir, POS_DOT, &mut |name, ino, ftype, _| {
            if name != b"." && name != b".." {
                ents.push((name.to_vec(), ino, ftype));
            }
            true
        })?;
        for (name, ino, ftype) in ents {
            let p = format!("{path}/{}", String::from_utf8_lossy(&name));
            // ftype 4 is a directory (DT_DIR); a loop in a damaged tree
            // must not make the walk endless
            if ftype == 4 {
                if seen.insert(ino) {
                    todo.push_back((ino, p.clone()));
                }
            }
            out.entry(ino).or_default().push(p);
        }
    }
    Ok(out)
}

/// The quarantined ranges of the filesystem on `media` and their owners.
pub fn report<M: Media>(media: &M) -> std::result::Result<Vec<Damage>, String> {
    let ov = Overlay::new(media);
    let fs = Fs::mount(&ov, &MountOptions { read_only: true, time: 0 }).map_err(|e| format!("cannot mount: {e:?}"))?;
    let mut bad = Vec::new();
    fs.bad_blocks(&mut |p, n| bad.push((p, n))).map_err(|e| format!("bad block list: {e:?}"))?;
    if bad.is_empty() {
        return Ok(Vec::new());
    }
    let names = names(&fs).map_err(|e| format!("directory tree: {e:?}"))?;
    let mut out = Vec::new();
    for (pblk, count) in bad {
        let mut files = Vec::new();
        fs.owners(pblk, count, &mut |ino, lblk, p, l| {
            let s = p.max(pblk);
            let e = p.saturating_add(l).min(pblk + count);
            if s >= e {
                return;
            }
            let off = lblk.saturating_add(s - p).saturating_mul(BLOCK_SIZE);
            let n = names.get(&ino);
            files.push(DamagedFile {
                ino,
                path: n.and_then(|v| v.first().cloned()),
                other_links: n.map_or(0, |v| v.len().saturating_sub(1)),
                start: off,
                end: off.saturating_add((e - s) * BLOCK_SIZE),
            });
        })
        .map_err(|e| format!("rmap btree: {e:?}"))?;
        files.sort_by(|a, b| (a.path.is_none(), &a.path, a.ino, a.start).cmp(&(b.path.is_none(), &b.path, b.ino, b.start)));
        // one line per contiguous byte range of a file: a file whose every
        // page is a reflink of the one bad block is one range, not one
        // line per page
        files.dedup_by(|next, prev| {
            let joins = next.ino == prev.ino && next.start == prev.end;
            if joins {
                prev.end = next.end;
            }
            joins
        });
        out.push(Damage { pblk, count, files });
    }
    Ok(out)
}
