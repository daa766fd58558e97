//! Model-based test: random operation sequences applied to the engine and to
//! a simple in-memory model; after every step the logical dumps (namespace,
//! types, nlink, sizes, file contents, symlinks, xattrs) must agree, and fsck
//! must be clean every few steps and at the end.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::{self, dump_with};
use ferrofs_tools::{rng::Rng, SimPmem};
use std::collections::BTreeMap;

const T: Time = Time { sec: 1, nsec: 0 };
const NAMES: [&[u8]; 7] = [b"a", b"b", b"c", b"dd", b"e", b"f0123456789", b"g"];

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, u64>),
    Sym(Vec<u8>),
    /// A whiteout (character device 0/0) left by RENAME_WHITEOUT.
    Whiteout,
}

#[derive(Clone, Debug)]
struct MIno {
    mode: u32,
    kind: Kind,
    nlink: u32,
    xattrs: BTreeMap<(u8, Vec<u8>), Vec<u8>>,
}

#[derive(Default)]
struct Model {
    inodes: BTreeMap<u64, MIno>,
}

impl Model {
    fn dir(&self, d: u64) -> &BTreeMap<Vec<u8>, u64> {
        match &self.inodes[&d].kind {
            Kind::Dir(e) => e,
            _ => panic!("not a dir"),
        }
    }
    fn dir_mut(&mut self, d: u64) -> &mut BTreeMap<Vec<u8>, u64> {
        match &mut self.inodes.get_mut(&d).unwrap().kind {
            Kind::Dir(e) => e,
            _ => panic!("not a dir"),
        }
    }
    fn is_dir(&self, i: u64) -> bool {
        matches!(self.inodes[&i].kind, Kind::Dir(_))
    }
    fn file_ref(&self, i: u64) -> &Vec<u8> {
        match &self.inodes[&i].kind {
            Kind::File(d) => d,
            _ => panic!("not a file"),
        }
    }
    fn file(&mut self, i: u64) -> &mut Vec<u8> {
        match &mut self.inodes.get_mut(&i).unwrap().kind {
            Kind::File(d) => d,
            _ => panic!("not a file"),
        }
    }
    fn dirs(&self) -> Vec<u64> {
        self.inodes.iter().filter(|(_, v)| matches!(v.kind, Kind::Dir(_))).map(|(k, _)| *k).collect()
    }
    fn files(&self) -> Vec<u64> {
        self.inodes.iter().filter(|(_, v)| matches!(v.kind, Kind::File(_))).map(|(k, _)| *k).collect()
    }
    fn parent_of(&self, d: u64) -> u64 {
        for (&p, v) in &self.inodes {
            if let Kind::Dir(e) = &v.kind {
                if e.values().any(|&c| c == d) {
                    return p;
                }
            }
        }
        ROOT_INO
    }
    fn is_under(&self, mut d: u64, anc: u64) -> bool {
        loop {
            if d == anc {
                return true;
            }
            if d == ROOT_INO {
                return false;
            }
            d = self.parent_of(d);
        }
    }
    fn nlink(&self, i: u64) -> u32 {
        match &self.inodes[&i].kind {
            Kind::Dir(e) => 2 + e.values().filter(|c| self.is_dir(**c)).count() as u32,
            _ => self.inodes[&i].nlink,
        }
    }
    fn drop_ref(&mut self, i: u64) {
        if self.is_dir(i) {
            self.inodes.remove(&i);
            return;
        }
        let n = &mut self.inodes.get_mut(&i).unwrap().nlink;
        *n -= 1;
        if *n == 0 {
            self.inodes.remove(&i);
        }
    }
    fn dump(&self, with_data: &dyn Fn(u64) -> bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(String::from("/"), ROOT_INO)];
        while let Some((path, ino)) = stack.pop() {
            let m = &self.inodes[&ino];
            let size = match &m.kind {
                Kind::File(d) => d.len() as u64,
                Kind::Dir(e) => e.len() as u64,
                Kind::Sym(t) => t.len() as u64,
                Kind::Whiteout => 0,
            };
            let mut desc = format!("ino={ino} mode={:o} nlink={} size={size} uid=0", m.mode, self.nlink(ino));
            match &m.kind {
                Kind::File(_) if !with_data(ino) => desc += " crc=-",
                Kind::File(d) => desc += &format!(" crc={:08x}", crc32c(d)),
                Kind::Sym(t) => desc += &format!(" target={}", String::from_utf8_lossy(t)),
                Kind::Whiteout => {}
                Kind::Dir(e) => {
                    for (name, &c) in e {
                        let p = format!("{}{}{}", path, if path.ends_with('/') { "" } else { "/" }, String::from_utf8_lossy(name));
                        stack.push((p, c));
                    }
                }
            }
            for ((ns, name), v) in &m.xattrs {
                desc += &format!(" x{ns}:{}={:08x}", String::from_utf8_lossy(name), crc32c(v));
            }
            out.insert(path, desc);
        }
        out
    }
}

fn bytes(r: &mut Rng, n: usize) -> Vec<u8> {
    let b = r.next() as u8;
    (0..n).map(|i| b.wrapping_add((i as u8).wrapping_mul(7)) ^ (i >> 9) as u8).collect()
}

fn pick<T: Copy>(r: &mut Rng, v: &[T]) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[r.below(v.len() as u64) as usize])
    }
}

fn ev<M: Media>(fs: &mut Fs<M>, ino: u64) {
    if fs.read_inode(ino).map(|i| i.nlink == 0).unwrap_or(false) {
        fs.evict(ino).unwrap();
    }
}

fn extend(d: &mut Vec<u8>, n: usize) {
    if d.len() < n {
        d.resize(n, 0);
    }
}

fn run_seed(seed: u64, steps: usize) {
    let pm = SimPmem::new(48 << 20);
    let o = FormatOptions { label: b"model", uuid: [seed as u8; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let mut md = Model::default();
    md.inodes.insert(ROOT_INO, MIno { mode: S_IFDIR | 0o755, kind: Kind::Dir(BTreeMap::new()), nlink: 2, xattrs: BTreeMap::new() });
    let mut r = Rng::new(seed);
    let mut counts = BTreeMap::<&str, u32>::new();
    let mut prev_crcs: BTreeMap<u64, u32> = BTreeMap::new();
    for step in 0..steps {
        let op = r.below(100);
        let name = pick(&mut r, &NAMES).unwrap().to_vec();
        let dirs = md.dirs();
        let files = md.files();
        let d = pick(&mut r, &dirs).unwrap();
        let what: &str;
        if op < 10 {
            what = "create";
            let a = NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() };
            let res = fs.create(d, &name, &a);
            if md.dir(d).contains_key(&name) {
                assert_eq!(res.err(), Some(Error::Exists));
            } else {
                let (ino, _) = res.unwrap();
                md.inodes.insert(ino, MIno { mode: a.mode, kind: Kind::File(Vec::new()), nlink: 1, xattrs: BTreeMap::new() });
                md.dir_mut(d).insert(name, ino);
            }
        } else if op < 14 {
            what = "mkdir";
            let a = NewInode { mode: 0o755, time: T, ..Default::default() };
            let res = fs.mkdir(d, &name, &a);
            if md.dir(d).contains_key(&name) {
                assert_eq!(res.err(), Some(Error::Exists));
            } else {
                let (ino, _) = res.unwrap();
                md.inodes.insert(ino, MIno { mode: S_IFDIR | 0o755, kind: Kind::Dir(BTreeMap::new()), nlink: 2, xattrs: BTreeMap::new() });
                md.dir_mut(d).insert(name, ino);
            }
        } else if op < 16 {
            what = "symlink";
            let len = 1 + r.below(300) as usize;
            let target: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let a = NewInode { mode: 0o777, time: T, ..Default::default() };
            let res = fs.symlink(d, &name, &target, &a);
            if md.dir(d).contains_key(&name) {
                assert_eq!(res.err(), Some(Error::Exists));
            } else {
                let (ino, _) = res.unwrap();
                md.inodes.insert(ino, MIno { mode: S_IFLNK | 0o777, kind: Kind::Sym(target), nlink: 1, xattrs: BTreeMap::new() });
                md.dir_mut(d).insert(name, ino);
            }
        } else if op < 34 {
            what = "write";
            let Some(f) = pick(&mut r, &files) else { continue };
            let off = r.below(70000);
            let len = 1 + r.below(16000) as usize;
            let data = bytes(&mut r, len);
            harness::write(&mut fs, f, off, &data, T).unwrap();
            let fd = md.file(f);
            extend(fd, off as usize + len);
            fd[off as usize..off as usize + len].copy_from_slice(&data);
        } else if op < 40 {
            what = "truncate";
            let Some(f) = pick(&mut r, &files) else { continue };
            let sz = r.below(90000);
            harness::truncate(&mut fs, f, sz, T).unwrap();
            md.file(f).resize(sz as usize, 0);
        } else if op < 45 {
            let Some(f) = pick(&mut r, &files) else { continue };
            let (l, c) = (r.below(20), 1 + r.below(8));
            let kind = r.below(4);
            if kind >= 2 {
                // collapse / insert: EINVAL unless the range ends before EOF
                // (collapse) or starts before it (insert)
                let size = md.file(f).len() as u64;
                let (s, e) = ((l * BLOCK_SIZE) as usize, ((l + c) * BLOCK_SIZE) as usize);
                if kind == 2 {
                    what = "collapse";
                    let res = fs.collapse_range(f, l, c, T);
                    if (l + c) * BLOCK_SIZE >= size {
                        assert_eq!(res, Err(Error::Invalid));
                    } else {
                        res.unwrap();
                        md.file(f).drain(s..e);
                    }
                } else {
                    what = "insert";
                    let res = fs.insert_range(f, l, c, T);
                    if l * BLOCK_SIZE >= size {
                        assert_eq!(res, Err(Error::Invalid));
                    } else {
                        res.unwrap();
                        md.file(f).splice(s..s, core::iter::repeat_n(0u8, e - s));
                    }
                }
            } else {
                if kind == 0 {
                    what = "punch";
                    fs.punch(f, l, c).unwrap();
                } else {
                    what = "zero_range";
                    fs.zero_range(f, l, c).unwrap();
                }
                let fd = md.file(f);
                let s = ((l * BLOCK_SIZE) as usize).min(fd.len());
                let e = (((l + c) * BLOCK_SIZE) as usize).min(fd.len());
                fd[s..e].fill(0);
            }
        } else if op < 49 {
            what = "fallocate";
            let Some(f) = pick(&mut r, &files) else { continue };
            let (l, c, keep) = (r.below(24), 1 + r.below(8), r.one_in(2));
            let old = fs.read_inode(f).unwrap().size;
            let end = (l + c) * BLOCK_SIZE;
            if !keep && end > old {
                harness::zero_tail(&mut fs, f, old).unwrap();
            }
            fs.fallocate(f, l, c, keep).unwrap();
            if !keep {
                extend(md.file(f), end as usize);
            }
        } else if op < 60 {
            let Some(src) = pick(&mut r, &files) else { continue };
            let Some(dst) = pick(&mut r, &files) else { continue };
            let sblocks = md.file(src).len() as u64 / BLOCK_SIZE;
            if sblocks == 0 {
                continue;
            }
            let sl = r.below(sblocks);
            let c = 1 + r.below((sblocks - sl).min(8));
            let dl = r.below(20);
            if src == dst && sl < dl + c && dl < sl + c {
                assert_eq!(fs.reflink(src, sl, dst, dl, c).err(), Some(Error::Invalid));
                what = "reflink-overlap";
            } else if r.one_in(3) {
                what = "dedupe";
                // make the ranges equal, then dedupe
                let data = md.file(src)[(sl * BLOCK_SIZE) as usize..((sl + c) * BLOCK_SIZE) as usize].to_vec();
                harness::write(&mut fs, dst, dl * BLOCK_SIZE, &data, T).unwrap();
                let fd = md.file(dst);
                extend(fd, ((dl + c) * BLOCK_SIZE) as usize);
                fd[(dl * BLOCK_SIZE) as usize..((dl + c) * BLOCK_SIZE) as usize].copy_from_slice(&data);
                fs.dedupe(src, sl, dst, dl, c).unwrap();
            } else {
                what = "reflink";
                let old = fs.read_inode(dst).unwrap().size;
                if dl * BLOCK_SIZE > old {
                    harness::zero_tail(&mut fs, dst, old).unwrap();
                }
                fs.reflink(src, sl, dst, dl, c).unwrap();
                let end = (dl + c) * BLOCK_SIZE;
                if end > old {
                    fs.set_size(dst, end, T).unwrap();
                }
                let data = md.file(src)[(sl * BLOCK_SIZE) as usize..((sl + c) * BLOCK_SIZE) as usize].to_vec();
                let fd = md.file(dst);
                extend(fd, end as usize);
                fd[(dl * BLOCK_SIZE) as usize..end as usize].copy_from_slice(&data);
            }
        } else if op < 63 {
            let Some(f) = pick(&mut r, &files) else { continue };
            if r.one_in(2) {
                // changes where blocks are, never what the file holds
                what = "defrag";
                harness::defrag(&mut fs, f).unwrap();
            } else {
                what = "unshare";
                fs.unshare(f, r.below(20), 1 + r.below(10)).unwrap();
            }
        } else if op < 73 {
            what = "rename";
            let ents: Vec<(u64, Vec<u8>)> = dirs.iter().flat_map(|&dd| md.dir(dd).keys().map(move |n| (dd, n.clone())).collect::<Vec<_>>()).collect();
            let Some(i) = (!ents.is_empty()).then(|| r.below(ents.len() as u64) as usize) else { continue };
            let (od, on) = ents[i].clone();
            let nd = d;
            let fl = match r.below(4) {
                0 => RenameFlags { noreplace: true, exchange: false },
                1 => RenameFlags { noreplace: false, exchange: true },
                _ => RenameFlags::default(),
            };
            // a third of the non-exchange renames leave a whiteout
            let wh = !fl.exchange && r.below(3) == 0;
            let res = if wh {
                let a = NewInode { mode: 0, time: T, ..Default::default() };
                fs.rename_whiteout(od, &on, nd, &name, fl, &a).map(|w| w.map(|x| x.0))
            } else {
                fs.rename(od, &on, nd, &name, fl, T).map(|_| None)
            };
            let (res, whiteout) = match res {
                Ok(w) => (Ok(()), w),
                Err(e) => (Err(e), None),
            };
            let src = md.dir(od)[&on];
            let tgt = md.dir(nd).get(&name).copied();
            let expect: std::result::Result<(), Error> = (|| {
                if fl.exchange {
                    let t = tgt.ok_or(Error::NotFound)?;
                    if t == src {
                        return Ok(());
                    }
                    if od != nd {
                        if md.is_dir(src) && md.is_under(nd, src) {
                            return Err(Error::Invalid);
                        }
                        if md.is_dir(t) && md.is_under(od, t) {
                            return Err(Error::Invalid);
                        }
                    }
                    return Ok(());
                }
                if let Some(t) = tgt {
                    if fl.noreplace {
                        return Err(Error::Exists);
                    }
                    if t == src {
                        return Ok(());
                    }
                }
                if md.is_dir(src) && od != nd && md.is_under(nd, src) {
                    return Err(Error::Invalid);
                }
                if let Some(t) = tgt {
                    if md.is_dir(src) {
                        if !md.is_dir(t) {
                            return Err(Error::NotDir);
                        }
                        if !md.dir(t).is_empty() {
                            return Err(Error::NotEmpty);
                        }
                    } else if md.is_dir(t) {
                        return Err(Error::IsDir);
                    }
                }
                Ok(())
            })();
            assert_eq!(res, expect, "rename {od}/{:?} -> {nd}/{:?} {fl:?} whiteout {wh}", on, name);
            // a whiteout exactly when something moved
            assert_eq!(whiteout.is_some(), wh && res.is_ok() && tgt != Some(src));
            if res.is_ok() {
                if fl.exchange {
                    let t = tgt.unwrap();
                    md.dir_mut(od).insert(on.clone(), t);
                    md.dir_mut(nd).insert(name.clone(), src);
                } else if tgt != Some(src) {
                    if let Some(t) = tgt {
                        md.drop_ref(t);
                        ev(&mut fs, t);
                    }
                    md.dir_mut(od).remove(&on);
                    md.dir_mut(nd).insert(name.clone(), src);
                    if let Some(w) = whiteout {
                        md.inodes.insert(w, MIno { mode: S_IFCHR, kind: Kind::Whiteout, nlink: 1, xattrs: BTreeMap::new() });
                        md.dir_mut(od).insert(on.clone(), w);
                    }
                }
            }
        } else if op < 77 {
            what = "link";
            let Some(f) = pick(&mut r, &files) else { continue };
            let res = fs.link(f, d, &name, T);
            if md.dir(d).contains_key(&name) {
                assert_eq!(res.err(), Some(Error::Exists));
            } else {
                res.unwrap();
                md.dir_mut(d).insert(name, f);
                md.inodes.get_mut(&f).unwrap().nlink += 1;
            }
        } else if op < 85 {
            what = "unlink";
            let res = fs.unlink(d, &name, T);
            match md.dir(d).get(&name).copied() {
                None => assert_eq!(res.err(), Some(Error::NotFound)),
                Some(i) if md.is_dir(i) => assert_eq!(res.err(), Some(Error::IsDir)),
                Some(i) => {
                    assert_eq!(res.unwrap(), i);
                    md.dir_mut(d).remove(&name);
                    md.drop_ref(i);
                    ev(&mut fs, i);
                }
            }
        } else if op < 89 {
            what = "rmdir";
            let res = fs.rmdir(d, &name, T);
            match md.dir(d).get(&name).copied() {
                None => assert_eq!(res.err(), Some(Error::NotFound)),
                Some(i) if !md.is_dir(i) => assert_eq!(res.err(), Some(Error::NotDir)),
                Some(i) if !md.dir(i).is_empty() => assert_eq!(res.err(), Some(Error::NotEmpty)),
                Some(i) => {
                    res.unwrap();
                    md.dir_mut(d).remove(&name);
                    md.drop_ref(i);
                    ev(&mut fs, i);
                }
            }
        } else if op < 95 {
            what = "xattr";
            let inos: Vec<u64> = md.inodes.keys().copied().collect();
            let i = pick(&mut r, &inos).unwrap();
            let ns = r.below(3) as u8;
            let xn = pick(&mut r, &NAMES).unwrap().to_vec();
            if r.one_in(3) {
                let res = fs.xattr_remove(i, ns, &xn);
                match md.inodes.get_mut(&i).unwrap().xattrs.remove(&(ns, xn)) {
                    Some(_) => res.unwrap(),
                    None => assert_eq!(res.err(), Some(Error::NoData)),
                }
            } else {
                let len = if r.one_in(2) { r.below(200) } else { r.below(12000) } as usize;
                let v = bytes(&mut r, len);
                fs.xattr_set(i, ns, &xn, &v, XattrMode::Any).unwrap();
                md.inodes.get_mut(&i).unwrap().xattrs.insert((ns, xn), v);
            }
        } else {
            what = "remount";
            let m = fs.unmount(2).unwrap();
            fs = Fs::mount(m, &MountOptions::default()).unwrap();
        }
        *counts.entry(what).or_default() += 1;
        if std::env::var("MODEL_TRACE").is_ok() { eprintln!("step {step} {what}"); }
        // Contents of files the model changed are compared every step, all
        // files every 10 steps and after remounts (namespace, sizes, nlink,
        // xattrs always).
        let crcs: BTreeMap<u64, u32> = md.files().into_iter().map(|f| (f, crc32c(md.file_ref(f)))).collect();
        let full = step % 10 == 0 || what == "remount";
        let changed = |i: u64| full || prev_crcs.get(&i) != crcs.get(&i);
        let a = dump_with(&fs, &changed).unwrap();
        let b = md.dump(&changed);
        prev_crcs = crcs;
        if a != b {
            for (k, v) in &b {
                if a.get(k) != Some(v) {
                    eprintln!("model  {k}: {v}\nengine {k}: {:?}", a.get(k));
                }
            }
            for (k, v) in &a {
                if !b.contains_key(k) {
                    eprintln!("extra in engine {k}: {v}");
                }
            }
            panic!("seed {seed} step {step} after {what}: engine and model differ");
        }
        if step % 150 == 149 {
            let rep = fsck(fs.media(), FsckOptions::default());
            assert_eq!(rep.exit_code, 0, "seed {seed} step {step} after {what}: fsck:\n{}", rep.describe());
        }
    }
    let m = fs.unmount(3).unwrap();
    let rep = fsck(m, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "seed {seed} final fsck:\n{}", rep.describe());
    eprintln!("seed {seed}: {steps} steps {counts:?}");
}

#[test]
fn model_seed_1() {
    run_seed(1, 2000);
}
#[test]
fn model_seed_2() {
    run_seed(2, 2000);
}
#[test]
fn model_seed_3() {
    run_seed(3, 2000);
}
#[test]
fn model_seed_4() {
    run_seed(4, 2000);
}
