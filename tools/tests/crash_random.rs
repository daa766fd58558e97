//! Crash points in random operation sequences: as trees grow, split and
//! merge, random operations are interrupted at randomly chosen fences with
//! torn images; every image must recover to exactly the state before or after
//! the interrupted operation, and pass fsck.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::{self, dump};
use ferrofs_tools::{rng::Rng, CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

const T: Time = Time { sec: 7, nsec: 0 };

fn state<M: Media>(fs: &Fs<M>) -> BTreeMap<String, String> {
    let mut d = dump(fs).unwrap();
    let sb = fs.superblock();
    d.insert("#sb".into(), format!("next_ino={} inodes={} free={}", sb.next_ino, sb.inode_count, sb.free_blocks));
    d
}

fn recovered_state(img: Vec<u8>) -> BTreeMap<String, String> {
    let pm = SimPmem::from_image(img, false);
    let fs = Fs::mount(&pm, &MountOptions { read_only: false, time: 8 }).expect("mount after crash");
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "fsck after crash recovery:\n{}", rep.describe());
    state(&fs)
}

fn run(seed: u64, ops: usize) -> (u64, u64) {
    let pm = SimPmem::new_tracked(6 << 20);
    let o = FormatOptions { label: b"r", uuid: [seed as u8; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let mut r = Rng::new(seed);
    let images: Rc<RefCell<Vec<Vec<u8>>>> = Rc::new(RefCell::new(Vec::new()));
    let mut files: Vec<(u64, String)> = Vec::new();
    let mut dirs: Vec<u64> = vec![ROOT_INO];
    let (mut checked, mut interrupted) = (0u64, 0u64);
    for step in 0..ops {
        // unchecked setup: data writes (several transactions by nature)
        if !files.is_empty() && r.one_in(3) {
            let (f, _) = files[r.below(files.len() as u64) as usize].clone();
            let len = 1 + r.below(9000) as usize;
            let _ = harness::write(&mut fs, f, r.below(40000), &vec![step as u8; len], T);
        }
        let pre = state(&fs);
        let im = images.clone();
        let mut hr = Rng::new(seed * 1000 + step as u64);
        pm.set_fence_hook(Some(Box::new(move |v: &CrashView| {
            if hr.one_in(3) {
                im.borrow_mut().push(v.image(CrashMode::Random(hr.next())));
            }
        })));
        let d = dirs[r.below(dirs.len() as u64) as usize];
        let name = format!("n{}", r.below(60));
        let res: Result<()> = match r.below(12) {
            0 | 1 => fs.create(d, name.as_bytes(), &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).map(|(i, _)| {
                files.push((i, name.clone()));
            }),
            2 => fs.mkdir(d, name.as_bytes(), &NewInode { mode: 0o755, time: T, ..Default::default() }).map(|(i, _)| dirs.push(i)),
            3 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                let (b, _) = files[r.below(files.len() as u64) as usize];
                fs.reflink(a, r.below(6), b, r.below(12), 1 + r.below(6))
            }
            4 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                fs.punch(a, r.below(10), 1 + r.below(5))
            }
            5 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                fs.set_size(a, r.below(30000), T)
            }
            6 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                fs.alloc_write(a, r.below(12), 1 + r.below(4), AllocFlags::default()).map(|_| ())
            }
            // small files: one transaction, so all or nothing; out of range: EINVAL
            10 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                fs.collapse_range(a, r.below(8), 1 + r.below(4), T)
            }
            11 if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                fs.insert_range(a, r.below(10), 1 + r.below(4), T)
            }
            7 => {
                let d2 = dirs[r.below(dirs.len() as u64) as usize];
                let n2 = format!("n{}", r.below(60));
                fs.rename(d, name.as_bytes(), d2, n2.as_bytes(), RenameFlags::default(), T)
            }
            8 => match fs.unlink(d, name.as_bytes(), T) {
                Ok(i) if fs.read_inode(i).map(|x| x.nlink == 0).unwrap_or(false) => fs.evict(i),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
            _ if !files.is_empty() => {
                let (a, _) = files[r.below(files.len() as u64) as usize];
                let len = r.below(6000) as usize;
                fs.xattr_set(a, 0, format!("x{}", r.below(4)).as_bytes(), &vec![1u8; len], XattrMode::Any)
            }
            _ => Ok(()),
        };
        pm.set_fence_hook(None);
        if res.is_err() {
            // failed operations must have rolled back completely
            assert_eq!(state(&fs), pre, "seed {seed} step {step}: failed op {res:?} left changes");
        }
        files.retain(|(i, _)| fs.read_inode(*i).is_ok());
        dirs.retain(|i| fs.read_inode(*i).is_ok());
        let post = state(&fs);
        for img in images.borrow_mut().drain(..) {
            let s = recovered_state(img);
            if s != pre && s != post {
                for (k, v) in &post {
                    if s.get(k) != Some(v) {
                        eprintln!("post {k}: {v}\ngot  {k}: {:?}\npre  {k}: {:?}", s.get(k), pre.get(k));
                    }
                }
                panic!("seed {seed} step {step}: crash state is neither before nor after");
            }
            checked += 1;
        }
        interrupted += 1;
    }
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
    (interrupted, checked)
}

#[test]
fn crash_random_sequences() {
    let mut total = 0;
    for seed in 1..=3 {
        let (ops, states) = run(seed, 250);
        eprintln!("seed {seed}: {ops} operations, {states} crash states");
        total += states;
    }
    eprintln!("random-sequence crash states checked: {total}");
    assert!(total > 500);
}
