//! The generic btree against std's BTreeMap: random inserts, deletes,
//! updates, seeks; splits, height growth and shrink.

use ferrofs_engine::*;
use ferrofs_tools::{rng::Rng, SimPmem};
use std::collections::BTreeMap;

fn fresh(mb: u64) -> SimPmem {
    let m = SimPmem::new(mb << 20);
    let o = FormatOptions { label: b"", uuid: [3; 16], size_bytes: 0, time: Time::default(), journal_slots: 64, stripe: (0, 0) };
    Fs::format(&m, &o).unwrap();
    m
}

fn val(t: TreeId, x: u64) -> Vec<u8> {
    let mut v = vec![0u8; t.value_size() as usize];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (x.wrapping_mul(31).wrapping_add(i as u64 * 7)) as u8;
    }
    v
}

fn check_all(fs: &Fs<&SimPmem>, t: TreeId, model: &BTreeMap<Key, u64>) {
    let mut v = vec![0u8; t.value_size() as usize];
    let mut k = Key::new(0, 0, 0);
    let mut it = model.iter();
    let mut first = true;
    loop {
        let got = if first { fs.tree_seek_ge(t, k, &mut v).unwrap() } else { k.succ().and_then(|s| fs.tree_seek_ge(t, s, &mut v).unwrap()) };
        first = false;
        match (got, it.next()) {
            (None, None) => break,
            (Some(g), Some((mk, mv))) => {
                assert_eq!(g, *mk);
                assert_eq!(v, val(t, *mv));
                k = g;
            }
            (g, m) => panic!("mismatch {g:?} vs {m:?}"),
        }
    }
}

fn run(t: TreeId, seed: u64, n: usize, keyspace: u64) {
    let m = fresh(16);
    let mut fs = Fs::mount(&m, &MountOptions::default()).unwrap();
    let mut model = BTreeMap::new();
    let mut r = Rng::new(seed);
    let mut max_h = 0;
    let mut v = vec![0u8; t.value_size() as usize];
    for step in 0..n {
        let k = Key::new(r.below(keyspace), r.below(3), r.below(2));
        let op = r.below(10);
        if op < 6 {
            let x = r.next();
            let res = fs.tree_insert(t, k, &val(t, x));
            if let std::collections::btree_map::Entry::Vacant(e) = model.entry(k) {
                res.unwrap();
                e.insert(x);
            } else {
                assert_eq!(res, Err(Error::Exists));
            }
        } else if op < 9 {
            let existed = fs.tree_delete(t, k).unwrap();
            assert_eq!(existed, model.remove(&k).is_some());
        } else {
            let x = r.next();
            let res = fs.tree_update(t, k, &val(t, x));
            if let std::collections::btree_map::Entry::Occupied(mut e) = model.entry(k) {
                res.unwrap();
                e.insert(x);
            } else {
                assert_eq!(res, Err(Error::NotFound));
            }
        }
        // point checks
        let q = Key::new(r.below(keyspace), r.below(3), r.below(2));
        assert_eq!(fs.tree_get(t, q, &mut v).unwrap(), model.contains_key(&q));
        let le = fs.tree_seek_le(t, q, &mut v).unwrap();
        assert_eq!(le, model.range(..=q).next_back().map(|x| *x.0));
        if let Some(k) = le {
            assert_eq!(v, val(t, model[&k]));
        }
        let ge = fs.tree_seek_ge(t, q, &mut v).unwrap();
        assert_eq!(ge, model.range(q..).next().map(|x| *x.0));
        max_h = max_h.max(fs.tree_root(t).height);
        if step % 1000 == 999 {
            check_all(&fs, t, &model);
        }
    }
    check_all(&fs, t, &model);
    assert!(max_h >= 3, "tree never grew beyond height {max_h}");
    // delete everything: the tree shrinks to nothing and all blocks come back
    let free_before = fs.statfs().free_blocks;
    let keys: Vec<Key> = model.keys().copied().collect();
    for k in keys {
        assert!(fs.tree_delete(t, k).unwrap());
    }
    assert_eq!(fs.tree_root(t), TreeRoot::default());
    assert!(fs.statfs().free_blocks > free_before);
    let m2 = fs.unmount(0).unwrap();
    let fs = Fs::mount(m2, &MountOptions::default()).unwrap();
    check_all(&fs, t, &BTreeMap::new());
}

#[test]
fn btree_dir_tree_random() {
    run(TreeId::Dir, 1, 6000, 2000);
}

#[test]
fn btree_rmap_tree_random() {
    run(TreeId::Rmap, 2, 20000, 20000);
}

#[test]
fn btree_sequential_append_and_remount() {
    let m = fresh(16);
    let mut fs = Fs::mount(&m, &MountOptions::default()).unwrap();
    let t = TreeId::Extent;
    let mut model = BTreeMap::new();
    for i in 0..5000u64 {
        fs.tree_insert(t, Key::new(9, i, 0), &val(t, i)).unwrap();
        model.insert(Key::new(9, i, 0), i);
    }
    assert!(fs.tree_root(t).height >= 2);
    let m2 = fs.unmount(0).unwrap();
    let mut fs = Fs::mount(m2, &MountOptions::default()).unwrap();
    check_all(&fs, t, &model);
    for i in (0..5000u64).rev().step_by(2) {
        fs.tree_delete(t, Key::new(9, i, 0)).unwrap();
        model.remove(&Key::new(9, i, 0));
    }
    check_all(&fs, t, &model);
}

#[test]
fn btree_sparse_nodes_merge() {
    let m = fresh(16);
    let mut fs = Fs::mount(&m, &MountOptions::default()).unwrap();
    let t = TreeId::Rmap;
    let free0 = fs.statfs().free_blocks;
    let mut model = BTreeMap::new();
    for i in 0..20000u64 {
        fs.tree_insert(t, Key::new(i, 1, 2), &val(t, i)).unwrap();
        model.insert(Key::new(i, 1, 2), i);
    }
    let full = free0 - fs.statfs().free_blocks;
    let mut r = Rng::new(5);
    let mut keys: Vec<u64> = (0..20000).filter(|i| i % 20 != 0).collect();
    for i in (1..keys.len()).rev() {
        keys.swap(i, r.below(i as u64 + 1) as usize);
    }
    for i in keys {
        assert!(fs.tree_delete(t, Key::new(i, 1, 2)).unwrap());
        model.remove(&Key::new(i, 1, 2));
    }
    check_all(&fs, t, &model);
    let sparse = free0 - fs.statfs().free_blocks;
    eprintln!("nodes: {full} full, {sparse} after deleting 95%");
    assert!(sparse * 4 < full, "{sparse} nodes left of {full}: siblings not merged");
    let m2 = fs.unmount(0).unwrap();
    let fs = Fs::mount(m2, &MountOptions::default()).unwrap();
    check_all(&fs, t, &model);
}
