//! ferrofs userspace: simulated pmem, file media, fsck, helpers for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod damage;
pub mod filemedia;
pub mod fsck;
pub mod harness;
pub mod rng;
pub mod sim;

pub use filemedia::FileMedia;
pub use sim::{CrashMode, CrashView, SimPmem};

/// Parse a size like 64m, 1g, 4096, 16k.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}
