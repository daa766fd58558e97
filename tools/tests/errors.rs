//! Error paths: a load from pmem that fails (a machine check on a metadata,
//! journal or data block) at every load an operation makes, one at a time.
//!
//! For each operation of the crash test and each load n it makes: fail load
//! n. The operation either succeeds (the load was one it can do without) or
//! returns `Error::Io`; an error leaves the mounted filesystem exactly as it
//! was before the operation (the transaction rolled back, in memory and on
//! media), and the same mount is still usable: running the operation again
//! succeeds, unmount is clean, fsck finds nothing, and the next mount sees
//! exactly the state the operation alone produces. This is the engine's own
//! fault injection, the hook that slab fault injection in the kernel cannot
//! reach: the engine allocates nothing, but every load can fail.

mod common;

use common::*;
use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::SimPmem;

const MO: MountOptions = MountOptions { read_only: false, time: 9 };

/// The state the next mount sees (orphans reaped).
fn remounted(img: Vec<u8>) -> Dump {
    let pm = SimPmem::from_image(img, false);
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "fsck:\n{}", rep.describe());
    state(&Fs::mount(&pm, &MO).expect("mount"))
}

struct Tally {
    loads: u64,
    errors: u64,
    tolerated: u64,
}

/// Fail every load of `op` in turn. `one_tx`: the operation is one
/// transaction, so an error must leave no trace; a multi-transaction
/// operation may stop between two committed steps (then the retry, or the
/// next mount's orphan processing, finishes it).
fn error_op(name: &str, setup: Setup, op: Op, one_tx: bool) -> Tally {
    let (start, ctx) = start_image(setup);
    // reference run
    let pm = SimPmem::from_image(start.clone(), false);
    let mut fs = Fs::mount(&pm, &MO).unwrap();
    op(&mut fs, &ctx).unwrap_or_else(|e| panic!("{name}: reference run failed: {e:?}"));
    fs.unmount(2).unwrap();
    let post = remounted(pm.snapshot());

    let mut t = Tally { loads: 0, errors: 0, tolerated: 0 };
    for n in 0.. {
        let pm = SimPmem::from_image(start.clone(), false);
        let mut fs = Fs::mount(&pm, &MO).unwrap();
        let pre = state(&fs);
        pm.fail_nth_load(Some(n));
        let r = op(&mut fs, &ctx);
        pm.fail_nth_load(None);
        if pm.failed_loads() == 0 {
            // the operation made fewer than n+1 loads: every one was tried
            r.unwrap_or_else(|e| panic!("{name}: failed with no fault injected: {e:?}"));
            t.loads = n;
            break;
        }
        let what = format!("{name}, load {n} failed");
        match r {
            Ok(()) => t.tolerated += 1,
            Err(Error::Io { .. }) => {
                t.errors += 1;
                if one_tx {
                    let now = state(&fs);
                    if now != pre {
                        for (k, v) in &pre {
                            if now.get(k) != Some(v) {
                                eprintln!("pre {k}: {v}\nnow {k}: {:?}", now.get(k));
                            }
                        }
                        panic!("{what}: the error left the filesystem changed");
                    }
                }
                // the same mount goes on: the retry does the whole job (an
                // operation of two calls may have done the first: unlink,
                // then the evict failed; the next mount reaps the orphan)
                match op(&mut fs, &ctx) {
                    Ok(()) => {}
                    Err(Error::NotFound) if !one_tx => {}
                    Err(e) => panic!("{what}: retry on the same mount failed: {e:?}"),
                }
            }
            Err(e) => panic!("{what}: returned {e:?}, want Io (EIO)"),
        }
        fs.unmount(2).unwrap_or_else(|e| panic!("{what}: unmount failed: {e:?}"));
        let got = remounted(pm.snapshot());
        if got != post {
            for (k, v) in &post {
                if got.get(k) != Some(v) {
                    eprintln!("post {k}: {v}\ngot  {k}: {:?}", got.get(k));
                }
            }
            panic!("{what}: after the retry the state is not the operation's");
        }
    }
    assert!(t.loads > 0, "{name}: made no load at all");
    t
}

#[test]
fn media_error_at_every_load_every_op() {
    let (mut loads, mut errors, mut tolerated) = (0, 0, 0);
    for (name, op) in ops() {
        // unlink_and_evict is two transactions (unlink, then evict)
        let t = error_op(name, base_setup, op, name != "unlink_and_evict");
        eprintln!("errors {name}: {} loads failed in turn, {} EIO rolled back, {} tolerated", t.loads, t.errors, t.tolerated);
        loads += t.loads;
        errors += t.errors;
        tolerated += t.tolerated;
    }
    eprintln!(
        "error paths: {} operation kinds, {loads} injected load failures, {errors} rolled back with EIO, {tolerated} tolerated",
        ops().len()
    );
    assert!(errors > 100);
}

#[test]
fn media_error_in_multi_transaction_ops() {
    let mut total = 0;
    for (name, op) in big_ops() {
        // these make ~160,000 loads: every 101st keeps the run short
        let t = error_op_sampled(name, op, 101);
        eprintln!("errors {name}: {t} loads failed in turn (every 101st of its loads)");
        total += t;
    }
    eprintln!("multi-transaction error paths: {total} injected load failures");
}

/// `error_op` for the big multi-transaction setup, failing every `step`th load.
fn error_op_sampled(name: &str, op: Op, step: u64) -> u64 {
    let (start, ctx) = start_image(big_setup);
    let pm = SimPmem::from_image(start.clone(), false);
    let mut fs = Fs::mount(&pm, &MO).unwrap();
    op(&mut fs, &ctx).unwrap();
    fs.unmount(2).unwrap();
    let post = remounted(pm.snapshot());
    let mut tried = 0;
    for n in (0..).step_by(step as usize) {
        let pm = SimPmem::from_image(start.clone(), false);
        let mut fs = Fs::mount(&pm, &MO).unwrap();
        pm.fail_nth_load(Some(n));
        let r = op(&mut fs, &ctx);
        pm.fail_nth_load(None);
        if pm.failed_loads() == 0 {
            r.unwrap();
            break;
        }
        tried += 1;
        match r {
            Ok(()) => {}
            Err(Error::Io { .. }) => {
                // stopped between committed steps: still consistent
                fs.unmount(2).unwrap();
                let rep = fsck(&pm, FsckOptions::default());
                assert_eq!(rep.exit_code, 0, "{name}, load {n}: fsck after the error:\n{}", rep.describe());
                fs = Fs::mount(&pm, &MO).unwrap();
                // unlink+evict: the name is gone and the next mount reaps the orphan
                if let Err(e) = op(&mut fs, &ctx) {
                    assert_eq!(e, Error::NotFound, "{name}, load {n}: retry failed");
                }
            }
            Err(e) => panic!("{name}, load {n}: returned {e:?}, want Io"),
        }
        fs.unmount(2).unwrap();
        assert_eq!(remounted(pm.snapshot()), post, "{name}, load {n}: the end state is not the operation's");
    }
    assert!(tried > 10);
    tried
}

/// A failed load in a multi-transaction collapse/insert (every 503rd load):
/// the error stops the shift between two committed steps; the filesystem
/// is consistent (fsck) and the file is before, after or in the documented
/// intermediate state of the shift, every other file untouched.
#[test]
fn media_error_in_shift_ops() {
    for sh in big_shifts() {
        let (start, ctx) = start_image(big_shift_setup);
        let ino = ctx.ino[sh.file];
        let pm = SimPmem::from_image(start.clone(), false);
        let mut fs = Fs::mount(&pm, &MO).unwrap();
        let pre = state(&fs);
        let pre_map = block_map(&fs, ino);
        let size0 = fs.read_inode(ino).unwrap().size;
        sh.run(&mut fs, &ctx).unwrap();
        let post = state(&fs);
        let (mut tried, mut mid) = (0, 0);
        for n in (0..).step_by(503) {
            let pm = SimPmem::from_image(start.clone(), false);
            let mut fs = Fs::mount(&pm, &MO).unwrap();
            pm.fail_nth_load(Some(n));
            let r = sh.run(&mut fs, &ctx);
            pm.fail_nth_load(None);
            if pm.failed_loads() == 0 {
                r.unwrap();
                break;
            }
            tried += 1;
            match r {
                Ok(()) => assert_eq!(state(&fs), post, "{}, load {n}", sh.name),
                Err(Error::Io { .. }) => {
                    let s = state(&fs);
                    if s != pre {
                        assert!(is_shift_intermediate(&fs, &sh, ino, size0, &pre_map, &pre), "{}, load {n}: not an intermediate state", sh.name);
                        mid += 1;
                    }
                    fs.unmount(2).unwrap();
                    let rep = fsck(&pm, FsckOptions::default());
                    assert_eq!(rep.exit_code, 0, "{}, load {n}: fsck after the error:\n{}", sh.name, rep.describe());
                }
                Err(e) => panic!("{}, load {n}: returned {e:?}, want Io", sh.name),
            }
        }
        eprintln!("errors {}: {tried} loads failed in turn (every 503rd), {mid} left an intermediate state", sh.name);
        assert!(tried > 10 && mid > 0);
    }
}
