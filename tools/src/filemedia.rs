//! Media backed by a file or block device through pread/pwrite.

use ferrofs_engine::{Media, MediaError};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// A device or image file.
pub struct FileMedia {
    file: File,
    size: u64,
    path: String,
    err: RefCell<Option<String>>,
}

impl FileMedia {
    /// Open read-write (or read-only). The size comes from seeking to the end,
    /// which works for block devices and regular files alike.
    pub fn open(path: &str, writable: bool) -> Result<FileMedia, String> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| format!("{path}: cannot open: {e}"))?;
        let size = file.seek(SeekFrom::End(0)).map_err(|e| format!("{path}: cannot determine size: {e}"))?;
        Ok(FileMedia { file, size, path: path.to_string(), err: RefCell::new(None) })
    }
    /// Path.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// First write error, if any.
    pub fn take_error(&self) -> Option<String> {
        self.err.borrow_mut().take()
    }
    /// fsync.
    pub fn sync(&self) -> Result<(), String> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        self.file.sync_all().map_err(|e| format!("{}: fsync: {e}", self.path))
    }
    fn note(&self, off: u64, e: std::io::Error) {
        let mut g = self.err.borrow_mut();
        if g.is_none() {
            *g = Some(format!("{}: write at byte {off}: {e}", self.path));
        }
    }
}

impl Media for FileMedia {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        self.file.read_exact_at(buf, off).map_err(|_| MediaError { offset: off })
    }
    fn write(&self, off: u64, data: &[u8]) {
        if let Err(e) = self.file.write_all_at(data, off) {
            self.note(off, e);
        }
    }
    fn zero(&self, off: u64, len: u64) {
        let z = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let k = (len - done).min(z.len() as u64);
            self.write(off + done, &z[..k as usize]);
            done += k;
        }
    }
    fn copy(&self, dst: u64, src: u64, len: u64) -> Result<(), MediaError> {
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let k = (len - done).min(buf.len() as u64) as usize;
            self.read(src + done, &mut buf[..k])?;
            self.write(dst + done, &buf[..k]);
            done += k as u64;
        }
        Ok(())
    }
    fn flush(&self, _off: u64, _len: u64) {}
    fn fence(&self) {}
}
