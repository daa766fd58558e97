//! The media abstraction: byte-addressable persistent memory.

/// A failed load from media (poison / machine check, or out of range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaError {
    /// Byte offset of the failed access.
    pub offset: u64,
}

/// Byte-addressable persistent memory.
///
/// Stores are cached: they become durable only after `flush` of the range and a
/// later `fence`. Only naturally aligned 8-byte stores are atomic.
pub trait Media {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Load bytes. Fails on poisoned media (machine check), never panics.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), MediaError>;
    /// Store bytes (cached: not durable until flush + fence).
    fn write(&self, off: u64, data: &[u8]);
    /// Store zeroes.
    fn zero(&self, off: u64, len: u64);
    /// Copy within the media (CoW of data blocks, journal images), cached like
    /// write. The engine never passes overlapping ranges.
    fn copy(&self, dst: u64, src: u64, len: u64) -> Result<(), MediaError>;
    /// Write back the cache lines covering the range (clwb/clflushopt).
    fn flush(&self, off: u64, len: u64);
    /// Order all earlier flushes before any later store (sfence / wmb).
    fn fence(&self);
}

impl<T: Media + ?Sized> Media for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        (**self).read(off, buf)
    }
    fn write(&self, off: u64, data: &[u8]) {
        (**self).write(off, data)
    }
    fn zero(&self, off: u64, len: u64) {
        (**self).zero(off, len)
    }
    fn copy(&self, dst: u64, src: u64, len: u64) -> Result<(), MediaError> {
        (**self).copy(dst, src, len)
    }
    fn flush(&self, off: u64, len: u64) {
        (**self).flush(off, len)
    }
    fn fence(&self) {
        (**self).fence()
    }
}
