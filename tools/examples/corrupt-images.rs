//! corrupt-images: build a populated ferrofs image and one corrupted variant
//! per case, for the in-guest corrupted-image test (tests/guest/stress/
//! 10-corrupt-images.py mounts each one in the VM).
//!
//!   cargo run --release -p ferrofs-tools --example corrupt-images -- OUTDIR [--random N] [--seed S] [--short]
//!
//! OUTDIR gets `base.img` (a populated 8 MiB filesystem) and `cases.tsv`,
//! one line per case: `name<TAB>expect<TAB>patch`, where patch is a file of
//! records (u64 LE block number, 4096 bytes) to lay over base.img. expect:
//!   mount    mount must fail (EUCLEAN, EINVAL or EIO) with a dmesg line
//!   detect   mount fails, or some operation on the mounted filesystem fails
//!            with EUCLEAN or EIO (with a dmesg line)
//!   any      anything but an oops, a hang or a WARN (semantic damage the
//!            checksums cannot see: a wrong count, a lost record)
//! Every case covers one on-media structure: superblock, journal, bitmap,
//! every btree (root, internal and leaf nodes: flipped bits, bad header
//! fields with a valid crc, child pointers out of range or looping), and
//! the records inside them (inode, dirent, extent, refcount, rmap, xattr,
//! orphan, badblock) with out-of-range or impossible values and valid crcs.
//! --random N adds N seeded random bit flips in metadata blocks (expect any).
//! --short keeps one case of each kind (for `make test`).
use ferrofs_engine::*;
use ferrofs_tools::{harness, rng::Rng, SimPmem};
use std::fmt::Write as _;
use std::io::Write as _;

const T: Time = Time { sec: 1_700_000_000, nsec: 0 };
const BS: usize = BLOCK_SIZE as usize;

struct Base {
    img: Vec<u8>,
    /// inode numbers: a big regular file, its reflinked copy, a directory
    /// with subdirectories, a file with xattrs, a symlink
    big: u64,
    copy: u64,
    dir: u64,
    xf: u64,
    geo: Geometry,
}

fn populate() -> Base {
    let pm = SimPmem::new(8 << 20);
    let o = FormatOptions { label: b"corrupt", uuid: [7; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions { read_only: false, time: T.sec }).unwrap();
    let reg = NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() };
    let dmode = NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() };
    // 300 one-block extents (every other block): an extent tree of height 2
    let (big, _) = fs.create(ROOT_INO, b"big", &reg).unwrap();
    for l in 0..300u64 {
        harness::write(&mut fs, big, l * 2 * BLOCK_SIZE, &[l as u8 | 1; 4096], T).unwrap();
    }
    let (copy, _) = fs.create(ROOT_INO, b"copy", &reg).unwrap();
    fs.reflink(big, 0, copy, 0, 120).unwrap();
    fs.set_size(copy, 120 * BLOCK_SIZE, T).unwrap();
    // 40 subdirectories with a file each: dir and inode trees of height 2
    let (dir, _) = fs.mkdir(ROOT_INO, b"dir", &dmode).unwrap();
    for i in 0..40 {
        let (d, _) = fs.mkdir(dir, format!("sub{i}").as_bytes(), &dmode).unwrap();
        let (f, _) = fs.create(d, b"f", &reg).unwrap();
        harness::write(&mut fs, f, 0, format!("file {i}\n").as_bytes(), T).unwrap();
    }
    // xattrs: 12 inline (height 2), one external value
    let (xf, _) = fs.create(ROOT_INO, b"xattrs", &reg).unwrap();
    for i in 0..12 {
        fs.xattr_set(xf, 1, format!("user.a{i}").as_bytes(), &[b'v'; 100], XattrMode::Any).unwrap();
    }
    fs.xattr_set(xf, 1, b"user.big", &vec![3u8; 10000], XattrMode::Any).unwrap();
    fs.symlink(ROOT_INO, b"short-link", b"big", &NewInode { mode: S_IFLNK | 0o777, time: T, ..Default::default() })
        .unwrap();
    let long = vec![b'x'; 600];
    fs.symlink(ROOT_INO, b"long-link", &long, &NewInode { mode: S_IFLNK | 0o777, time: T, ..Default::default() })
        .unwrap();
    fs.link(big, dir, b"big-hardlink", T).unwrap();
    // extent size hints: a directory passing them on, a file written in
    // its 16-block units (unwritten around the data) with a 4-block CoW unit
    let (hd, _) = fs.mkdir(ROOT_INO, b"hinted", &dmode).unwrap();
    fs.set_flags_hints(hd, IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 16, 4, T).unwrap();
    let (hf, _) = fs.create(hd, b"f", &reg).unwrap();
    harness::write(&mut fs, hf, 5 * BLOCK_SIZE, &[5u8; 4096], T).unwrap();
    // an orphan (open unlinked file) and a quarantined block
    let (t, _) = fs.tmpfile(ROOT_INO, &reg).unwrap();
    harness::write(&mut fs, t, 0, &[9u8; 8192], T).unwrap();
    let total = fs.superblock().total_blocks;
    fs.quarantine(total - 9, 2).unwrap();
    let geo = fs.geometry();
    for tr in ALL_TREES {
        assert!(fs.tree_root(tr).root != 0, "{tr:?} is empty in the base image");
    }
    let m = fs.into_media(); // crash-like: the orphan stays for mount to reap
    Base { img: m.snapshot(), big, copy, dir, xf, geo }
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Recompute the crc of a checksummed metadata block (node or bitmap).
fn fix_blk_crc(img: &mut [u8], blk: u64) {
    let o = blk as usize * BS;
    img[o + 8..o + 12].fill(0);
    let c = crc32c(&img[o..o + BS]);
    put32(img, o + 8, c);
}

/// Store a u32 in the primary superblock and fix its crc (for values its
/// decoder refuses, such as an unknown version).
fn edit_sb_raw(img: &mut [u8], off: usize, v: u32) {
    put32(img, off, v);
    let mut b = [0u8; SB_SIZE];
    b.copy_from_slice(&img[..SB_SIZE]);
    put32(img, SB_CRC_OFF, sb_crc(&b));
}

/// Edit the primary superblock through its codec, crc kept valid.
fn edit_sb(img: &mut [u8], f: impl FnOnce(&mut Superblock)) {
    let mut b = [0u8; SB_SIZE];
    b.copy_from_slice(&img[..SB_SIZE]);
    let mut sb = Superblock::decode(&b, 0).unwrap();
    f(&mut sb);
    sb.encode(&mut b);
    img[..SB_SIZE].copy_from_slice(&b);
}

/// Nodes of one tree: (block, level), breadth first.
fn nodes(img: &[u8], r: TreeRoot) -> Vec<(u64, u16)> {
    let mut out = vec![(r.root, (r.height - 1) as u16)];
    let mut i = 0;
    while i < out.len() {
        let (b, lvl) = out[i];
        if lvl > 0 {
            let o = b as usize * BS;
            let n = u16::from_le_bytes(img[o + 28..o + 30].try_into().unwrap()) as usize;
            for e in 0..n {
                out.push((le64(img, o + BT_HDR as usize + e * INTERNAL_ENTRY as usize + KEY_SIZE as usize), lvl - 1));
            }
        }
        i += 1;
    }
    out
}

struct Gen {
    base: Base,
    out: std::path::PathBuf,
    manifest: String,
    n: usize,
    short: bool,
    seen_kinds: std::collections::HashSet<String>,
}

impl Gen {
    /// Record a case from a modified image.
    fn add(&mut self, name: &str, expect: &str, img: &[u8]) {
        // --short: the first case of each kind (name up to the first ':')
        let kind = name.split(':').next().unwrap().to_string();
        if self.short && !self.seen_kinds.insert(kind) {
            return;
        }
        assert_eq!(img.len(), self.base.img.len());
        let mut patch = Vec::new();
        for (b, (x, y)) in img.chunks(BS).zip(self.base.img.chunks(BS)).enumerate() {
            if x != y {
                patch.extend_from_slice(&(b as u64).to_le_bytes());
                patch.extend_from_slice(x);
            }
        }
        assert!(!patch.is_empty(), "case {name} changes nothing");
        self.n += 1;
        let file = format!("{:04}.patch", self.n);
        std::fs::write(self.out.join(&file), &patch).unwrap();
        writeln!(self.manifest, "{name}\t{expect}\t{file}").unwrap();
    }

    /// A case made by raw byte edits of the base image.
    fn raw(&mut self, name: &str, expect: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut img = self.base.img.clone();
        f(&mut img);
        self.add(name, expect, &img);
    }

    /// A case made through the engine's raw tree API (crcs stay valid).
    fn api(&mut self, name: &str, expect: &str, f: impl FnOnce(&mut Fs<&SimPmem>, &Base)) {
        let pm = SimPmem::from_image(self.base.img.clone(), false);
        {
            // mount rw reaps the orphan and marks the sb dirty: part of the patch
            let mut fs = Fs::mount(&pm, &MountOptions { read_only: false, time: T.sec }).unwrap();
            f(&mut fs, &self.base);
            let _ = fs.into_media();
        }
        let img = pm.snapshot();
        self.add(name, expect, &img);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = None;
    let (mut random, mut seed, mut short) = (0u64, 1u64, false);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--random" => {
                random = args[i + 1].parse().expect("--random N");
                i += 1;
            }
            "--seed" => {
                seed = args[i + 1].parse().expect("--seed S");
                i += 1;
            }
            "--short" => short = true,
            a if out.is_none() => out = Some(std::path::PathBuf::from(a)),
            a => panic!("corrupt-images: unexpected argument {a}"),
        }
        i += 1;
    }
    let out = out.expect("usage: corrupt-images OUTDIR [--random N] [--seed S] [--short]");
    let n = generate(&out, random, seed, short);
    println!("corrupt-images: {n} cases in {}", out.display());
}

/// Write base.img, cases.tsv and one patch per case into `out` (emptied
/// first); returns the number of cases. tools/tests/fuzz.rs also calls this
/// (it includes this file as a module) to run every case through the
/// userspace engine and fsck.
pub fn generate(out: &std::path::Path, random: u64, seed: u64, short: bool) -> usize {
    let out = out.to_path_buf();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let base = populate();
    std::fs::write(out.join("base.img"), &base.img).unwrap();
    let mut g = Gen { base, out: out.clone(), manifest: String::new(), n: 0, short, seen_kinds: Default::default() };
    let geo = g.base.geo;
    let total = geo.total_blocks;
    let pm = SimPmem::from_image(g.base.img.clone(), false);
    let roots: Vec<(TreeId, TreeRoot)> = {
        let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
        ALL_TREES.iter().map(|&t| (t, fs.tree_root(t))).collect()
    };

    // ---- superblock
    g.raw("sb-crc:label byte", "mount", |m| m[80] ^= 0x10);
    g.raw("sb-crc:free blocks bit", "mount", |m| m[161] ^= 0x01);
    g.raw("sb-crc:tree root bit", "mount", |m| m[SB_TREES_OFF + 16 + 2] ^= 0x40);
    g.raw("sb-magic:flipped", "mount", |m| m[3] ^= 0xff);
    g.raw("sb-zeroed:whole block", "mount", |m| m[..BS].fill(0));
    g.raw("sb-field:version one newer than this module", "mount", |m| edit_sb_raw(m, 12, FORMAT_VERSION + 1));
    g.raw("sb-field:version 0", "mount", |m| edit_sb_raw(m, 12, 0));
    g.raw("sb-field:block size", "mount", |m| {
        edit_sb(m, |_| {});
        put32(m, 24, 8192);
        let mut b = [0u8; SB_SIZE];
        b.copy_from_slice(&m[..SB_SIZE]);
        let c = sb_crc(&b);
        put32(m, SB_CRC_OFF, c);
    });
    g.raw("sb-geometry:total blocks huge", "mount", |m| edit_sb(m, |s| s.total_blocks = u64::MAX));
    g.raw("sb-geometry:total blocks small", "mount", |m| edit_sb(m, |s| s.total_blocks = 100));
    // a filesystem smaller than its device is legal, and the layout of one
    // block less is the same: mount cannot tell, fsck can (the backup
    // superblock is no longer in the last block)
    g.raw("sb-geometry:total blocks minus one", "any", |m| edit_sb(m, |s| s.total_blocks -= 1));
    g.raw("sb-geometry:bitmap start out of range", "mount", |m| edit_sb(m, |s| s.bitmap_start = total + 10));
    g.raw("sb-geometry:bitmap blocks 0", "mount", |m| edit_sb(m, |s| s.bitmap_blocks = 0));
    g.raw("sb-geometry:data start 0", "mount", |m| edit_sb(m, |s| s.data_start = 0));
    g.raw("sb-geometry:journal slots", "mount", |m| edit_sb(m, |s| s.journal_slots = 4096));
    g.raw("sb-geometry:journal start", "mount", |m| edit_sb(m, |s| s.journal_start = 7));
    g.raw("sb-counter:free blocks > total", "any", |m| edit_sb(m, |s| s.free_blocks = total * 4));
    g.raw("sb-counter:free blocks 0", "any", |m| edit_sb(m, |s| s.free_blocks = 0));
    g.raw("sb-counter-max:inode count huge", "any", |m| edit_sb(m, |s| s.inode_count = u64::MAX));
    g.raw("sb-counter:next ino reused", "any", |m| edit_sb(m, |s| s.next_ino = 2));
    g.raw("sb-counter:next ino max", "any", |m| edit_sb(m, |s| s.next_ino = u64::MAX));
    g.raw("sb-counter:rotor out of range", "any", |m| edit_sb(m, |s| s.alloc_rotor = u64::MAX - 3));
    g.raw("sb-root-ino:0", "detect", |m| edit_sb(m, |s| s.root_ino = 0));
    g.raw("sb-root-ino:missing", "detect", |m| edit_sb(m, |s| s.root_ino = 999_999));
    g.raw("sb-root-ino:regular file", "detect", |m| edit_sb(m, |s| s.root_ino = 2));
    g.raw("sb-state:garbage", "any", |m| edit_sb(m, |s| s.state = 0xdead));
    for &(t, r) in &roots {
        let ti = t as usize;
        let nm = t.name();
        g.raw(&format!("sb-tree-root:{nm} past the end"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = total + 5));
        g.raw(&format!("sb-tree-root:{nm} u64 max"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = u64::MAX));
        g.raw(&format!("sb-tree-root:{nm} superblock"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = 0x0));
        g.raw(&format!("sb-tree-root:{nm} journal block"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = 1));
        g.raw(&format!("sb-tree-root:{nm} backup sb"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = total - 1));
        let other = roots[(ti + 1) % NTREES].1.root;
        g.raw(&format!("sb-tree-root:{nm} other tree's root"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = other));
        let data = {
            let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
            fs.map(g.base.big, 0, 1).unwrap().pblk
        };
        g.raw(&format!("sb-tree-root:{nm} file data block"), "mount", |m| edit_sb(m, |s| s.trees[ti].root = data));
        g.raw(&format!("sb-tree-height:{nm} 0"), "mount", |m| edit_sb(m, |s| s.trees[ti].height = 0));
        g.raw(&format!("sb-tree-height:{nm} 9"), "mount", |m| edit_sb(m, |s| s.trees[ti].height = 9));
        g.raw(&format!("sb-tree-height:{nm} u32 max"), "mount", |m| edit_sb(m, |s| s.trees[ti].height = u32::MAX));
        g.raw(&format!("sb-tree-height:{nm} plus one"), "mount", |m| edit_sb(m, |s| s.trees[ti].height = r.height + 1));
        g.raw(&format!("sb-tree-empty:{nm}"), "any", |m| {
            edit_sb(m, |s| s.trees[ti] = TreeRoot { root: 0, height: 0 })
        });
    }

    // ---- journal
    let js = geo.journal_start as usize * BS;
    g.raw("journal-header:crc", "mount", |m| m[js + 20] ^= 0x01);
    g.raw("journal-header:magic", "mount", |m| m[js] ^= 0x01);
    g.raw("journal-header:committed garbage", "mount", |m| put64(m, js + JH_COMMITTED_OFF as usize, 0x1234_5678_9abc));
    g.raw("journal-descriptor-block:crc", "mount", |m| m[js + BS + 20] ^= 0x01);
    g.raw("journal-descriptor-block:zeroed", "mount", |m| m[js + BS..js + 2 * BS].fill(0));
    // forged descriptors for the pending transaction, with valid crcs
    let committed = committed_seq(le64(&g.base.img, js + JH_COMMITTED_OFF as usize)).expect("committed word");
    let slot0 = (geo.journal_start + 1 + geo.journal_desc_blocks) as usize * BS;
    let forge = |m: &mut Vec<u8>, home: u64, image: Option<&[u8]>| {
        if let Some(im) = image {
            m[slot0..slot0 + BS].copy_from_slice(im);
        }
        let d = js + BS + JD_HDR as usize; // descriptor 0
        let mut c = ferrofs_engine::journal::jrec_crc_start(committed + 1, home, 0);
        c.update(&m[slot0..slot0 + BS]);
        put64(m, d, committed + 1);
        put64(m, d + 8, home);
        put32(m, d + 16, c.finish());
        put32(m, d + 20, JREC_MAGIC);
    };
    g.raw("journal-record:home past the end", "mount", |m| forge(m, total + 100, None));
    g.raw("journal-record:home u64 max", "mount", |m| forge(m, u64::MAX, None));
    g.raw("journal-record:home = journal header", "mount", |m| forge(m, geo.journal_start, None));
    let garbage = vec![0xa5u8; BS];
    g.raw("journal-record:garbage over the superblock", "mount", |m| forge(m, 0, Some(&garbage)));
    let broot = roots[TreeId::Extent as usize].1.root;
    g.raw("journal-record:garbage over a btree root", "mount", |m| forge(m, broot, Some(&garbage)));
    g.raw("journal-record:garbage over the bitmap", "mount", |m| forge(m, geo.bitmap_start, Some(&garbage)));

    // ---- free space bitmap
    let bm = geo.bitmap_start;
    g.raw("bitmap:crc", "mount", |m| m[bm as usize * BS + 300] ^= 0x04);
    g.raw("bitmap:magic (crc fixed)", "mount", |m| {
        m[bm as usize * BS] ^= 1;
        fix_blk_crc(m, bm)
    });
    g.raw("bitmap:self block number (crc fixed)", "mount", |m| {
        put64(m, bm as usize * BS + 16, bm + 1);
        fix_blk_crc(m, bm)
    });
    g.raw("bitmap-semantic:all clear (crc fixed)", "any", |m| {
        m[bm as usize * BS + BM_HDR as usize..(bm as usize + 1) * BS].fill(0);
        fix_blk_crc(m, bm)
    });
    g.raw("bitmap-semantic:all set (crc fixed)", "any", |m| {
        m[bm as usize * BS + BM_HDR as usize..(bm as usize + 1) * BS].fill(0xff);
        fix_blk_crc(m, bm)
    });
    let all_nodes: Vec<u64> = roots.iter().flat_map(|&(_, r)| nodes(&g.base.img, r)).map(|x| x.0).collect();
    g.raw("bitmap-semantic:tree nodes marked free (crc fixed)", "any", |m| {
        {
            for &b in &all_nodes {
                m[bm as usize * BS + BM_HDR as usize + b as usize / 8] &= !(1 << (b % 8));
            }
        }
        fix_blk_crc(m, bm)
    });

    // ---- every btree: nodes with bad crcs, bad headers, bad child pointers
    for &(t, r) in &roots {
        let nm = t.name();
        let ns = nodes(&g.base.img, r);
        let root = ns[0];
        let leaf = *ns.iter().find(|x| x.1 == 0).unwrap();
        let last_leaf = *ns.iter().rev().find(|x| x.1 == 0).unwrap();
        let mut which = vec![("root", root)];
        if leaf != root {
            which.push(("first leaf", leaf));
        }
        if last_leaf != leaf {
            which.push(("last leaf", last_leaf));
        }
        for (wn, (b, lvl)) in which {
            let o = b as usize * BS;
            let exp = if wn == "root" { "mount" } else { "detect" };
            let n = u16::from_le_bytes(g.base.img[o + 28..o + 30].try_into().unwrap());
            g.raw(&format!("node-crc:{nm} {wn} entry byte"), exp, |m| m[o + BT_HDR as usize + 5] ^= 0x20);
            g.raw(&format!("node-crc:{nm} {wn} last used byte"), exp, |m| {
                let es = if lvl > 0 { INTERNAL_ENTRY } else { t.leaf_entry() } as usize;
                m[o + BT_HDR as usize + n as usize * es - 1] ^= 0x01
            });
            g.raw(&format!("node-zeroed:{nm} {wn}"), exp, |m| m[o..o + BS].fill(0));
            let hdr: [(&str, fn(&mut [u8], usize, u64, u16, u16)); 8] = [
                ("magic", |m, o, _, _, _| m[o + 1] ^= 0x10),
                ("self block number", |m, o, b, _, _| put64(m, o + 16, b + 1)),
                ("tree id", |m, o, _, _, _| m[o + 24] = (m[o + 24] + 1) % 8),
                ("tree id 200", |m, o, _, _, _| m[o + 24] = 200),
                ("level + 1", |m, o, _, l, _| put16(m, o + 26, l + 1)),
                ("level 0xffff", |m, o, _, _, _| put16(m, o + 26, 0xffff)),
                ("zero entries", |m, o, _, _, _| put16(m, o + 28, 0)),
                ("entries over capacity", |m, o, _, _, _| put16(m, o + 28, 0xffff)),
            ];
            for (hn, f) in hdr {
                g.raw(&format!("node-header:{nm} {wn} {hn} (crc fixed)"), exp, |m| {
                    f(m, o, b, lvl, n);
                    fix_blk_crc(m, b)
                });
            }
            if n >= 3 {
                // keys out of order: swap the keys of the last two entries
                g.raw(&format!("node-keys:{nm} {wn} unsorted (crc fixed)"), "any", |m| {
                    let es = if lvl > 0 { INTERNAL_ENTRY } else { t.leaf_entry() } as usize;
                    let a = o + BT_HDR as usize + (n as usize - 2) * es;
                    let c = o + BT_HDR as usize + (n as usize - 1) * es;
                    let ka: Vec<u8> = m[a..a + 24].to_vec();
                    let kc: Vec<u8> = m[c..c + 24].to_vec();
                    m[a..a + 24].copy_from_slice(&kc);
                    m[c..c + 24].copy_from_slice(&ka);
                    fix_blk_crc(m, b)
                });
                g.raw(&format!("node-keys:{nm} {wn} duplicate (crc fixed)"), "any", |m| {
                    let es = if lvl > 0 { INTERNAL_ENTRY } else { t.leaf_entry() } as usize;
                    let a = o + BT_HDR as usize + (n as usize - 2) * es;
                    let c = o + BT_HDR as usize + (n as usize - 1) * es;
                    let ka: Vec<u8> = m[a..a + 24].to_vec();
                    m[c..c + 24].copy_from_slice(&ka);
                    fix_blk_crc(m, b)
                });
            }
            if lvl > 0 {
                // child pointers (the root is the only internal node in this image)
                let last = n as usize - 1;
                let cp = o + BT_HDR as usize + last * INTERNAL_ENTRY as usize + KEY_SIZE as usize;
                let other = roots[(t as usize + 1) % NTREES].1.root;
                let data = {
                    let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
                    fs.map(g.base.big, 2, 1).unwrap().pblk
                };
                let sib = le64(&g.base.img, o + BT_HDR as usize + KEY_SIZE as usize);
                for (cn, v) in [
                    ("past the end", total + 1),
                    ("u64 max", u64::MAX),
                    ("superblock", 0),
                    ("journal", 2),
                    ("bitmap", bm),
                    ("backup superblock", total - 1),
                    ("loop to itself", b),
                    ("loop to a sibling", sib),
                    ("another tree's root", other),
                    ("file data block", data),
                ] {
                    g.raw(&format!("node-child:{nm} {wn} -> {cn} (crc fixed)"), "detect", |m| {
                        put64(m, cp, v);
                        fix_blk_crc(m, b)
                    });
                }
            }
        }
    }

    // ---- records inside the trees, through the tree API (crcs valid)
    let (big, copy, dir, xf) = (g.base.big, g.base.copy, g.base.dir, g.base.xf);
    let inode_edit = |g: &mut Gen, name: &str, exp: &str, ino: u64, f: fn(&mut [u8])| {
        g.api(name, exp, |fs, _| {
            let mut v = [0u8; INODE_SIZE];
            assert!(fs.tree_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v).unwrap());
            f(&mut v);
            fs.tree_update(TreeId::Inode, Key::new(ino, 0, 0), &v).unwrap();
        })
    };
    for (nm, ino) in [("file", big), ("root dir", ROOT_INO), ("dir", dir)] {
        inode_edit(&mut g, &format!("inode-mode:{nm} mode 0"), "any", ino, |v| put32(v, 0, 0));
        inode_edit(&mut g, &format!("inode-mode:{nm} type 0o170000"), "any", ino, |v| put32(v, 0, 0o170777));
        inode_edit(&mut g, &format!("inode-mode:{nm} flipped file/dir"), "any", ino, |v| {
            let m = u32::from_le_bytes(v[0..4].try_into().unwrap());
            let t = if m & S_IFMT == S_IFDIR { S_IFREG } else { S_IFDIR };
            put32(v, 0, t | (m & 0o7777))
        });
        inode_edit(&mut g, &format!("inode-mode:{nm} symlink"), "any", ino, |v| put32(v, 0, S_IFLNK | 0o777));
        inode_edit(&mut g, &format!("inode-size:{nm} u64 max"), "any", ino, |v| put64(v, 24, u64::MAX));
        inode_edit(&mut g, &format!("inode-size:{nm} 2^63"), "any", ino, |v| put64(v, 24, 1 << 63));
        inode_edit(&mut g, &format!("inode-size:{nm} 2^63"), "any", ino, |v| put64(v, 24, 1 << 63));
        inode_edit(&mut g, &format!("inode-nlink:{nm} 0 (not an orphan)"), "any", ino, |v| put32(v, 16, 0));
        inode_edit(&mut g, &format!("inode-nlink:{nm} u32 max"), "any", ino, |v| put32(v, 16, u32::MAX));
        inode_edit(&mut g, &format!("inode-blocks:{nm} u64 max"), "any", ino, |v| put64(v, 32, u64::MAX));
        inode_edit(&mut g, &format!("inode-parent:{nm} missing"), "any", ino, |v| put64(v, 96, 999_999));
        inode_edit(&mut g, &format!("inode-time:{nm} nsec out of range"), "any", ino, |v| put32(v, 72, u32::MAX));
        inode_edit(&mut g, &format!("inode-flags:{nm} all bits"), "any", ino, |v| put32(v, 4, u32::MAX));
    }
    // extent size hints (format v2, bytes 104..112): what no FSSETXATTR can
    // store; the engine refuses such an inode (EUCLEAN), as XFS's verifier
    inode_edit(&mut g, "inode-hints:root dir hint without its flag", "detect", ROOT_INO, |v| put32(v, INODE_EXTSIZE_OFF, 16));
    inode_edit(&mut g, "inode-hints:root dir EXTSIZE flag (files only)", "detect", ROOT_INO, |v| {
        put32(v, 4, IFLAG_EXTSIZE);
        put32(v, INODE_EXTSIZE_OFF, 16)
    });
    inode_edit(&mut g, "inode-hints:file EXTSZINHERIT (directories only)", "any", big, |v| {
        put32(v, 4, IFLAG_EXTSZINHERIT);
        put32(v, INODE_EXTSIZE_OFF, 16)
    });
    inode_edit(&mut g, "inode-hints:file extsize 2^32-1 blocks", "any", big, |v| {
        put32(v, 4, IFLAG_EXTSIZE);
        put32(v, INODE_EXTSIZE_OFF, u32::MAX)
    });
    inode_edit(&mut g, "inode-hints:file COWEXTSIZE flag without a value", "any", big, |v| put32(v, 4, IFLAG_COWEXTSIZE));
    inode_edit(&mut g, "inode-hints:dir cowextsize 2^21+1 blocks", "any", dir, |v| {
        put32(v, 4, IFLAG_COWEXTSIZE);
        put32(v, INODE_COWEXTSIZE_OFF, MAX_EXTSIZE_BLOCKS + 1)
    });
    for (what, len) in [("length over 4095", 0x7fff), ("inline length over 144", 145)] {
        g.api(&format!("inode-symlink:{what}"), "any", |fs, _| {
            let ino = fs.lookup(ROOT_INO, b"short-link").unwrap().unwrap();
            let mut v = [0u8; INODE_SIZE];
            fs.tree_get(TreeId::Inode, Key::new(ino, 0, 0), &mut v).unwrap();
            put16(&mut v, INODE_SYMLEN_OFF, len);
            fs.tree_update(TreeId::Inode, Key::new(ino, 0, 0), &v).unwrap();
        });
    }
    g.api("inode-symlink:long target without a block", "any", |fs, _| {
        let ino = fs.lookup(ROOT_INO, b"long-link").unwrap().unwrap();
        fs.punch(ino, 0, 1).unwrap();
    });
    g.api("inode-missing:file deleted from the inode tree", "any", |fs, b| {
        assert!(fs.tree_delete(TreeId::Inode, Key::new(b.xf, 0, 0)).unwrap());
    });
    g.api("inode-missing:root deleted from the inode tree", "detect", |fs, _| {
        assert!(fs.tree_delete(TreeId::Inode, Key::new(ROOT_INO, 0, 0)).unwrap());
    });

    // directory entries
    let dirent_edit = |g: &mut Gen, name: &str, exp: &str, f: fn(&mut [u8])| {
        g.api(name, exp, |fs, _| {
            let mut v = [0u8; 272];
            let k = fs.tree_seek_ge(TreeId::Dir, Key::new(ROOT_INO, 2, 0), &mut v).unwrap().unwrap();
            assert_eq!(k.a, ROOT_INO);
            f(&mut v);
            fs.tree_update(TreeId::Dir, k, &v).unwrap();
        })
    };
    dirent_edit(&mut g, "dirent-ino:0", "any", |v| put64(v, DE_INO, 0));
    dirent_edit(&mut g, "dirent-ino:missing inode", "any", |v| put64(v, DE_INO, 999_999));
    dirent_edit(&mut g, "dirent-ino:u64 max", "any", |v| put64(v, DE_INO, u64::MAX));
    dirent_edit(&mut g, "dirent-ino:the root (directory loop)", "any", |v| {
        put64(v, DE_INO, ROOT_INO);
        v[DE_FTYPE] = 4
    });
    dirent_edit(&mut g, "dirent-name:length 0", "any", |v| v[DE_NAMELEN] = 0);
    dirent_edit(&mut g, "dirent-name:length 255 of garbage", "any", |v| {
        v[DE_NAMELEN] = 255;
        v[DE_NAME..DE_NAME + 255].fill(0xfe)
    });
    dirent_edit(&mut g, "dirent-name:contains a slash", "any", |v| v[DE_NAME] = b'/');
    dirent_edit(&mut g, "dirent-name:contains NUL", "any", |v| v[DE_NAME] = 0);
    dirent_edit(&mut g, "dirent-name:dot-dot", "any", |v| {
        v[DE_NAMELEN] = 2;
        v[DE_NAME..DE_NAME + 2].copy_from_slice(b"..")
    });
    dirent_edit(&mut g, "dirent-ftype:wrong type", "any", |v| v[DE_FTYPE] = 12);
    dirent_edit(&mut g, "dirent-ftype:255", "any", |v| v[DE_FTYPE] = 255);
    g.api("dirent-loop:subdirectory entry names its parent", "any", |fs, b| {
        let d = fs.lookup(b.dir, b"sub0").unwrap().unwrap();
        let mut v = [0u8; 272];
        put64(&mut v, DE_INO, b.dir);
        v[DE_FTYPE] = 4;
        v[DE_NAMELEN] = 4;
        v[DE_NAME..DE_NAME + 4].copy_from_slice(b"loop");
        let h = fs.name_hash(b"loop");
        fs.tree_insert(TreeId::Dir, Key::new(d, h, 0), &v).unwrap();
    });
    g.api("dirent-orphaned:entries of a missing directory", "any", |fs, _| {
        let mut v = [0u8; 272];
        put64(&mut v, DE_INO, 2);
        v[DE_FTYPE] = 8;
        v[DE_NAMELEN] = 1;
        v[DE_NAME] = b'z';
        let h = fs.name_hash(b"z");
        fs.tree_insert(TreeId::Dir, Key::new(888_888, h, 0), &v).unwrap();
    });

    // extents
    let extent_edit = |g: &mut Gen, name: &str, exp: &str, ino: u64, f: &dyn Fn(&mut [u8], Geometry)| {
        g.api(name, exp, |fs, _| {
            let mut v = [0u8; 16];
            let k = fs.tree_seek_ge(TreeId::Extent, Key::new(ino, 4, 0), &mut v).unwrap().unwrap();
            assert_eq!(k.a, ino);
            let geo = fs.geometry();
            f(&mut v, geo);
            fs.tree_update(TreeId::Extent, k, &v).unwrap();
        })
    };
    for (nm, ino) in [("file", big), ("reflinked copy", copy)] {
        extent_edit(&mut g, &format!("extent-pblk:{nm} 0 (superblock)"), "any", ino, &|v, _| put64(v, 0, 0));
        extent_edit(&mut g, &format!("extent-pblk:{nm} journal"), "any", ino, &|v, g| put64(v, 0, g.journal_start));
        extent_edit(&mut g, &format!("extent-pblk:{nm} bitmap"), "any", ino, &|v, g| put64(v, 0, g.bitmap_start));
        extent_edit(&mut g, &format!("extent-pblk:{nm} past the end"), "any", ino, &|v, g| put64(v, 0, g.total_blocks + 3));
        extent_edit(&mut g, &format!("extent-pblk:{nm} u64 max"), "any", ino, &|v, _| put64(v, 0, u64::MAX));
        extent_edit(&mut g, &format!("extent-pblk:{nm} end overflows"), "any", ino, &|v, _| {
            put64(v, 0, u64::MAX - 1);
            put32(v, 8, 8)
        });
        extent_edit(&mut g, &format!("extent-pblk:{nm} a btree node"), "any", ino, &|v, _| put64(v, 0, broot));
        extent_edit(&mut g, &format!("extent-len:{nm} 0"), "any", ino, &|v, _| put32(v, 8, 0));
        extent_edit(&mut g, &format!("extent-len:{nm} over 8192"), "any", ino, &|v, _| put32(v, 8, 9000));
        extent_edit(&mut g, &format!("extent-len:{nm} u32 max"), "any", ino, &|v, _| put32(v, 8, u32::MAX));
        extent_edit(&mut g, &format!("extent-len:{nm} 2 (overlaps the next)"), "any", ino, &|v, _| put32(v, 8, 3));
        extent_edit(&mut g, &format!("extent-flags:{nm} unwritten"), "any", ino, &|v, _| put32(v, 12, EXT_UNWRITTEN));
        extent_edit(&mut g, &format!("extent-flags:{nm} all bits"), "any", ino, &|v, _| put32(v, 12, u32::MAX));
    }
    g.api("extent-lblk:beyond 2^51", "any", |fs, b| {
        let mut v = [0u8; 16];
        let p = fs.map(b.big, 0, 1).unwrap().pblk;
        put64(&mut v, 0, p);
        put32(&mut v, 8, 8);
        fs.tree_insert(TreeId::Extent, Key::new(b.big, (1 << 51) - 2, 0), &v).unwrap();
    });
    g.api("extent-cross-link:two files own one block", "any", |fs, b| {
        let mut v = [0u8; 16];
        let p = fs.map(b.big, 200, 1).unwrap().pblk;
        put64(&mut v, 0, p);
        put32(&mut v, 8, 1);
        fs.tree_insert(TreeId::Extent, Key::new(b.xf, 0, 0), &v).unwrap();
    });
    g.api("extent-orphaned:extents of a missing inode", "any", |fs, b| {
        let mut v = [0u8; 16];
        let p = fs.map(b.big, 202, 1).unwrap().pblk;
        put64(&mut v, 0, p);
        put32(&mut v, 8, 1);
        fs.tree_insert(TreeId::Extent, Key::new(777_777, 0, 0), &v).unwrap();
    });

    // refcounts
    let refc_edit = |g: &mut Gen, name: &str, f: fn(&mut [u8])| {
        g.api(name, "any", |fs, b| {
            let p = fs.map(b.copy, 0, 1).unwrap().pblk;
            let mut v = [0u8; 16];
            let k = fs.tree_seek_le(TreeId::Refcount, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
            f(&mut v);
            fs.tree_update(TreeId::Refcount, k, &v).unwrap();
        })
    };
    refc_edit(&mut g, "refcount-count:0", |v| put64(v, 8, 0));
    refc_edit(&mut g, "refcount-count:1", |v| put64(v, 8, 1));
    refc_edit(&mut g, "refcount-count:u64 max", |v| put64(v, 8, u64::MAX));
    refc_edit(&mut g, "refcount-count:3 (one too many)", |v| put64(v, 8, 3));
    refc_edit(&mut g, "refcount-len:0", |v| put64(v, 0, 0));
    refc_edit(&mut g, "refcount-len:u64 max", |v| put64(v, 0, u64::MAX));
    g.api("refcount-missing:shared blocks without a record", "any", |fs, b| {
        let p = fs.map(b.copy, 0, 1).unwrap().pblk;
        let mut v = [0u8; 16];
        let k = fs.tree_seek_le(TreeId::Refcount, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
        assert!(fs.tree_delete(TreeId::Refcount, k).unwrap());
    });
    g.api("refcount-extra:record for unshared blocks", "any", |fs, b| {
        let p = fs.map(b.big, 250, 1).unwrap().pblk;
        let mut v = [0u8; 16];
        put64(&mut v, 0, 1);
        put64(&mut v, 8, 2);
        fs.tree_insert(TreeId::Refcount, Key::new(p, 0, 0), &v).unwrap();
    });
    g.api("refcount-extra:record past the end", "any", |fs, _| {
        let mut v = [0u8; 16];
        put64(&mut v, 0, 100);
        put64(&mut v, 8, 2);
        let t = fs.geometry().total_blocks;
        fs.tree_insert(TreeId::Refcount, Key::new(t + 10, 0, 0), &v).unwrap();
    });

    // reverse map
    g.api("rmap-missing:record of a file block", "any", |fs, b| {
        let p = fs.map(b.big, 260, 1).unwrap().pblk;
        let mut v = [0u8; 8];
        let k = fs.tree_seek_ge(TreeId::Rmap, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
        assert!(fs.tree_delete(TreeId::Rmap, k).unwrap());
    });
    for (nm, len) in [("0", 0u64), ("u64 max", u64::MAX), ("9000", 9000)] {
        g.api(&format!("rmap-len:{nm}"), "any", |fs, b| {
            let p = fs.map(b.big, 262, 1).unwrap().pblk;
            let mut v = [0u8; 8];
            let k = fs.tree_seek_ge(TreeId::Rmap, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
            fs.tree_update(TreeId::Rmap, k, &len.to_le_bytes()).unwrap();
        });
    }
    g.api("rmap-extra:owner that does not exist", "any", |fs, b| {
        let p = fs.map(b.big, 264, 1).unwrap().pblk;
        fs.tree_insert(TreeId::Rmap, Key::new(p, 999_999, 0), &1u64.to_le_bytes()).unwrap();
    });

    // xattrs
    let xattr_edit = |g: &mut Gen, name: &str, external: bool, f: fn(&mut [u8], Geometry)| {
        g.api(name, "any", |fs, b| {
            let mut v = [0u8; 512];
            let mut k = Key::new(b.xf, 0, 0);
            loop {
                let got = fs.tree_seek_ge(TreeId::Xattr, k, &mut v).unwrap().unwrap();
                assert_eq!(got.a, b.xf);
                if (v[XA_FLAGS] & XA_EXTERNAL != 0) == external {
                    k = got;
                    break;
                }
                k = got.succ().unwrap();
            }
            let geo = fs.geometry();
            f(&mut v, geo);
            fs.tree_update(TreeId::Xattr, k, &v).unwrap();
        })
    };
    xattr_edit(&mut g, "xattr-name:length 0", false, |v, _| v[XA_NAMELEN] = 0);
    xattr_edit(&mut g, "xattr-name:length 255 garbage", false, |v, _| {
        v[XA_NAMELEN] = 255;
        v[XA_NAME..XA_NAME + 255].fill(0x01)
    });
    xattr_edit(&mut g, "xattr-ns:unknown namespace", false, |v, _| v[XA_NS] = 200);
    xattr_edit(&mut g, "xattr-len:inline over 232", false, |v, _| put32(v, XA_VLEN, 233));
    xattr_edit(&mut g, "xattr-len:u32 max", false, |v, _| put32(v, XA_VLEN, u32::MAX));
    xattr_edit(&mut g, "xattr-flags:all bits", false, |v, _| v[XA_FLAGS] = 0xff);
    xattr_edit(&mut g, "xattr-external:block past the end", true, |v, g| put64(v, XA_PBLK, g.total_blocks + 1));
    xattr_edit(&mut g, "xattr-external:block u64 max", true, |v, _| put64(v, XA_PBLK, u64::MAX - 1));
    xattr_edit(&mut g, "xattr-external:block 0", true, |v, _| put64(v, XA_PBLK, 0));
    xattr_edit(&mut g, "xattr-external:value crc", true, |v, _| v[XA_VCRC] ^= 1);
    xattr_edit(&mut g, "xattr-external:length over 64 KiB", true, |v, _| put32(v, XA_VLEN, 70000));
    xattr_edit(&mut g, "xattr-external:block count huge", true, |v, _| put32(v, XA_NBLK, u32::MAX));
    xattr_edit(&mut g, "xattr-external:block count 0", true, |v, _| put32(v, XA_NBLK, 0));
    // the external value's first block, from its xattr record
    let vblk = {
        let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
        let mut v = [0u8; 512];
        let mut k = Key::new(xf, 0, 0);
        loop {
            let got = fs.tree_seek_ge(TreeId::Xattr, k, &mut v).unwrap().expect("external xattr record");
            if v[XA_FLAGS] & XA_EXTERNAL != 0 {
                break le64(&v, XA_PBLK);
            }
            k = got.succ().unwrap();
        }
    };
    g.raw("xattr-value-block:flipped byte", "detect", |m| m[vblk as usize * BS + 17] ^= 0x40);

    // orphans
    for (nm, ino) in [("missing inode", 999_999u64), ("root", ROOT_INO), ("linked file", big), ("inode 0", 0)] {
        g.api(&format!("orphan-record:{nm}"), "any", |fs, _| {
            fs.tree_insert(TreeId::Orphan, Key::new(ino, 0, 0), &[]).unwrap();
        });
    }

    // bad blocks
    for (nm, p, len) in [
        ("past the end", total + 4, 1u64),
        ("superblock", 0, 1),
        ("len 0", geo.data_start + 50, 0),
        ("len u64 max", geo.data_start + 60, u64::MAX),
        ("covers a btree node", broot, 1),
    ] {
        g.api(&format!("badblock-record:{nm}"), "any", |fs, _| {
            fs.tree_insert(TreeId::Badblock, Key::new(p, 0, 0), &len.to_le_bytes()).unwrap();
        });
    }
    let _ = (dir, xf);

    // ---- random bit flips in metadata blocks
    let mut meta: Vec<u64> = vec![0, geo.journal_start, geo.journal_start + 1, geo.bitmap_start];
    for &(_, r) in &roots {
        meta.extend(nodes(&g.base.img, r).into_iter().map(|x| x.0));
    }
    let mut rng = Rng::new(seed);
    for i in 0..random {
        let b = meta[rng.below(meta.len() as u64) as usize];
        let flips = 1 + rng.below(4);
        let mut img = g.base.img.clone();
        let mut what = String::new();
        for _ in 0..flips {
            let off = b * BLOCK_SIZE + rng.below(BLOCK_SIZE);
            let bit = rng.below(8);
            img[off as usize] ^= 1 << bit;
            write!(what, " {off}.{bit}").unwrap();
        }
        let fix = rng.below(2) == 0 && b >= geo.bitmap_start;
        if fix {
            // half of them with the crc made valid again: content checks only
            fix_blk_crc(&mut img, b);
        }
        if img == g.base.img {
            continue;
        }
        let name = format!("random:{i} block {b}{}{what}", if fix { " (crc fixed)" } else { "" });
        let was = g.short;
        g.short = false;
        g.add(&name, "any", &img);
        g.short = was;
    }
    let mut f = std::fs::File::create(out.join("cases.tsv")).unwrap();
    f.write_all(g.manifest.as_bytes()).unwrap();
    g.n
}

