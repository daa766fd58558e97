//! Simulated persistent memory.
//!
//! Tracks, per 8-byte word, whether the latest store is only in the CPU cache
//! (`Dirty`), written back but not yet ordered (`Flushed`), or durable. A
//! crash image is the durable contents plus any subset of the words that are
//! not yet durable (each word is atomic, so torn writes are word-granular).

use ferrofs_engine::{Media, MediaError};
use std::cell::RefCell;

const CLEAN: u8 = 0;
const DIRTY: u8 = 1;
const FLUSHED: u8 = 2;

/// What a fence hook sees: the persistence state just before a fence.
pub struct CrashView<'a> {
    /// Current (cached) contents.
    pub cur: &'a [u8],
    /// Durable contents.
    pub durable: &'a [u8],
    /// Words (index = byte offset / 8) whose latest store is not durable.
    pub pending: &'a [usize],
    /// Number of this fence (0-based) since tracking started.
    pub fence_no: u64,
}

/// How to build a crash image.
#[derive(Clone, Copy, Debug)]
pub enum CrashMode {
    /// Only what is durable.
    DurableOnly,
    /// Every store made it.
    AllStored,
    /// A seeded random half of the pending words made it.
    Random(u64),
}

impl CrashView<'_> {
    /// Build a crash image.
    pub fn image(&self, mode: CrashMode) -> Vec<u8> {
        match mode {
            CrashMode::DurableOnly => self.durable.to_vec(),
            CrashMode::AllStored => self.cur.to_vec(),
            CrashMode::Random(seed) => {
                let mut img = self.durable.to_vec();
                let mut r = crate::rng::Rng::new(seed);
                for &w in self.pending {
                    if r.next() & 1 == 1 {
                        img[w * 8..w * 8 + 8].copy_from_slice(&self.cur[w * 8..w * 8 + 8]);
                    }
                }
                img
            }
        }
    }
}

type Hook = Box<dyn FnMut(&CrashView)>;

struct Inner {
    cur: Vec<u8>,
    durable: Vec<u8>,
    state: Vec<u8>,
    pending: Vec<usize>,
    tracked: bool,
    fences: u64,
    poison: Vec<(u64, u64)>,
    /// Loads (read or copy source) so far, and the one to fail, if armed.
    loads: u64,
    fail_load: Option<u64>,
    failed_loads: u64,
}

/// Simulated pmem device.
pub struct SimPmem {
    inner: RefCell<Inner>,
    hook: RefCell<Option<Hook>>,
}

impl SimPmem {
    /// A zeroed device without persistence tracking (fast).
    pub fn new(size: u64) -> SimPmem {
        Self::from_image(vec![0; size as usize], false)
    }
    /// A zeroed device that tracks persistence per word.
    pub fn new_tracked(size: u64) -> SimPmem {
        Self::from_image(vec![0; size as usize], true)
    }
    /// A device with the given contents (all durable).
    pub fn from_image(img: Vec<u8>, tracked: bool) -> SimPmem {
        let n = img.len() / 8;
        SimPmem {
            inner: RefCell::new(Inner {
                durable: if tracked { img.clone() } else { Vec::new() },
                cur: img,
                state: if tracked { vec![CLEAN; n] } else { Vec::new() },
                pending: Vec::new(),
                tracked,
                fences: 0,
                poison: Vec::new(),
                loads: 0,
                fail_load: None,
                failed_loads: 0,
            }),
            hook: RefCell::new(None),
        }
    }
    /// Current contents.
    pub fn snapshot(&self) -> Vec<u8> {
        self.inner.borrow().cur.clone()
    }
    /// Durable contents (tracked devices).
    pub fn durable(&self) -> Vec<u8> {
        let i = self.inner.borrow();
        if i.tracked {
            i.durable.clone()
        } else {
            i.cur.clone()
        }
    }
    /// Fences so far.
    pub fn fences(&self) -> u64 {
        self.inner.borrow().fences
    }
    /// Call `h` at every fence, before it takes effect.
    pub fn set_fence_hook(&self, h: Option<Hook>) {
        *self.hook.borrow_mut() = h;
    }
    /// Make reads of [off, off+len) fail like a machine check.
    pub fn poison(&self, off: u64, len: u64) {
        self.inner.borrow_mut().poison.push((off, len));
    }
    /// Make the `n`th load from now (0 = the next; a `read` or the source of
    /// a `copy`) fail once, like a transient machine check on a metadata
    /// load, wherever it lands; `None` disarms. Error-path tests sweep `n`.
    pub fn fail_nth_load(&self, n: Option<u64>) {
        let mut i = self.inner.borrow_mut();
        i.fail_load = n.map(|n| i.loads + n);
    }
    /// Loads that failed because of `fail_nth_load`.
    pub fn failed_loads(&self) -> u64 {
        self.inner.borrow().failed_loads
    }

    /// A load from [off, off+len): fails if it is the one armed by
    /// `fail_nth_load` (counted either way) or touches a poisoned range.
    fn check_load(&self, off: u64, len: u64) -> Result<(), MediaError> {
        let mut i = self.inner.borrow_mut();
        let n = i.loads;
        i.loads += 1;
        if i.fail_load == Some(n) {
            i.fail_load = None;
            i.failed_loads += 1;
            return Err(MediaError { offset: off });
        }
        for &(p, l) in &i.poison {
            if off < p + l && p < off + len {
                return Err(MediaError { offset: p.max(off) });
            }
        }
        Ok(())
    }

    /// Flip bits in the current and durable contents (corruption tests).
    pub fn corrupt_byte(&self, off: u64, xor: u8) {
        let mut i = self.inner.borrow_mut();
        i.cur[off as usize] ^= xor;
        if i.tracked {
            i.durable[off as usize] ^= xor;
        }
    }
    /// Peek at bytes directly (no poison checks).
    pub fn peek(&self, off: u64, len: usize) -> Vec<u8> {
        self.inner.borrow().cur[off as usize..off as usize + len].to_vec()
    }

    fn mark(i: &mut Inner, off: u64, len: u64) {
        if !i.tracked || len == 0 {
            return;
        }
        let first = (off / 8) as usize;
        let last = ((off + len - 1) / 8) as usize;
        for w in first..=last {
            if i.state[w] == CLEAN {
                i.pending.push(w);
            }
            i.state[w] = DIRTY;
        }
    }
}

impl Media for SimPmem {
    fn size(&self) -> u64 {
        self.inner.borrow().cur.len() as u64
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        self.check_load(off, buf.len() as u64)?;
        let i = self.inner.borrow();
        let end = off as usize + buf.len();
        if end > i.cur.len() {
            return Err(MediaError { offset: off });
        }
        buf.copy_from_slice(&i.cur[off as usize..end]);
        Ok(())
    }
    fn write(&self, off: u64, data: &[u8]) {
        let mut i = self.inner.borrow_mut();
        let end = off as usize + data.len();
        assert!(end <= i.cur.len(), "write past end of media at {off}");
        i.cur[off as usize..end].copy_from_slice(data);
        Self::mark(&mut i, off, data.len() as u64);
    }
    fn zero(&self, off: u64, len: u64) {
        let mut i = self.inner.borrow_mut();
        let end = (off + len) as usize;
        assert!(end <= i.cur.len(), "zero past end of media at {off}");
        i.cur[off as usize..end].fill(0);
        Self::mark(&mut i, off, len);
    }
    fn copy(&self, dst: u64, src: u64, len: u64) -> Result<(), MediaError> {
        self.check_load(src, len)?;
        let mut i = self.inner.borrow_mut();
        assert!((dst + len) as usize <= i.cur.len() && (src + len) as usize <= i.cur.len());
        i.cur.copy_within(src as usize..(src + len) as usize, dst as usize);
        Self::mark(&mut i, dst, len);
        Ok(())
    }
    fn flush(&self, off: u64, len: u64) {
        let mut i = self.inner.borrow_mut();
        if !i.tracked || len == 0 {
            return;
        }
        // whole cache lines
        let first = (off / 64 * 8) as usize;
        let last = (((off + len - 1) / 64 + 1) * 8).min(i.state.len() as u64) as usize;
        for w in first..last {
            if i.state[w] == DIRTY {
                i.state[w] = FLUSHED;
            }
        }
    }
    fn fence(&self) {
        let hook = self.hook.borrow_mut().take();
        if let Some(mut h) = hook {
            {
                let i = self.inner.borrow();
                h(&CrashView { cur: &i.cur, durable: &i.durable, pending: &i.pending, fence_no: i.fences });
            }
            *self.hook.borrow_mut() = Some(h);
        }
        let mut i = self.inner.borrow_mut();
        i.fences += 1;
        if !i.tracked {
            return;
        }
        let Inner { cur, durable, state, pending, .. } = &mut *i;
        pending.retain(|&w| {
            if state[w] == FLUSHED {
                durable[w * 8..w * 8 + 8].copy_from_slice(&cur[w * 8..w * 8 + 8]);
                state[w] = CLEAN;
                false
            } else {
                true
            }
        });
    }
}
