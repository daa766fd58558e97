//! What is already on a device, as util-linux's libblkid sees it: every
//! filesystem, RAID member, swap area and partition table signature it
//! knows (mkfs.xfs and mke2fs ask it the same question before writing).
//! ferrofs itself is not among them; mkfs checks its own magic first.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

#[repr(C)]
struct Probe(c_void);

#[link(name = "blkid")]
extern "C" {
    fn blkid_new_probe_from_filename(filename: *const c_char) -> *mut Probe;
    fn blkid_free_probe(pr: *mut Probe);
    fn blkid_probe_enable_superblocks(pr: *mut Probe, enable: c_int) -> c_int;
    fn blkid_probe_set_superblocks_flags(pr: *mut Probe, flags: c_int) -> c_int;
    fn blkid_probe_enable_partitions(pr: *mut Probe, enable: c_int) -> c_int;
    fn blkid_probe_set_partitions_flags(pr: *mut Probe, flags: c_int) -> c_int;
    fn blkid_do_fullprobe(pr: *mut Probe) -> c_int;
    fn blkid_probe_lookup_value(pr: *mut Probe, name: *const c_char, data: *mut *const c_char, len: *mut usize) -> c_int;
}

const BLKID_SUBLKS_TYPE: c_int = 1 << 5;
const BLKID_SUBLKS_USAGE: c_int = 1 << 7;
const BLKID_SUBLKS_BADCSUM: c_int = 1 << 10;
const BLKID_PARTS_MAGIC: c_int = 1 << 3;

/// A signature found on the device.
#[derive(Debug, PartialEq, Eq)]
pub enum Signature {
    /// A filesystem, swap area or RAID member (libblkid's TYPE).
    Filesystem(String),
    /// A partition table (libblkid's PTTYPE).
    PartitionTable(String),
    /// libblkid matched something it could not name.
    Unknown,
}

/// An owned libblkid probe, freed on drop.
struct ProbeHandle(*mut Probe);

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 came from blkid_new_probe_from_filename (non-null)
        // and is freed exactly once, here.
        unsafe { blkid_free_probe(self.0) }
    }
}

impl ProbeHandle {
    fn value(&self, name: &CStr) -> Option<String> {
        let mut data: *const c_char = std::ptr::null();
        // SAFETY: the probe is live; name is NUL-terminated; data is a valid
        // out pointer and len may be NULL.
        let r = unsafe { blkid_probe_lookup_value(self.0, name.as_ptr(), &mut data, std::ptr::null_mut()) };
        if r != 0 || data.is_null() {
            return None;
        }
        // SAFETY: on success libblkid returns a NUL-terminated string owned
        // by the probe, which outlives this copy.
        Some(unsafe { CStr::from_ptr(data) }.to_string_lossy().into_owned())
    }
}

/// Probes `path` (a block device or an image file) for every signature
/// libblkid knows. `Ok(None)`: nothing found. `Err`: the probe itself failed
/// (the caller should refuse to write rather than guess).
pub fn probe(path: &str) -> Result<Option<Signature>, String> {
    let c = CString::new(path).map_err(|_| format!("{path}: path contains a NUL byte"))?;
    // SAFETY: c is a valid NUL-terminated path; a NULL result is handled.
    let raw = unsafe { blkid_new_probe_from_filename(c.as_ptr()) };
    if raw.is_null() {
        return Err(format!("{path}: libblkid cannot open it for probing"));
    }
    let pr = ProbeHandle(raw);
    // SAFETY: pr.0 is a live probe for all these calls; the flags are the
    // documented BLKID_SUBLKS_* / BLKID_PARTS_* bits.
    let r = unsafe {
        blkid_probe_enable_superblocks(pr.0, 1);
        blkid_probe_set_superblocks_flags(pr.0, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_BADCSUM);
        blkid_probe_enable_partitions(pr.0, 1);
        blkid_probe_set_partitions_flags(pr.0, BLKID_PARTS_MAGIC);
        blkid_do_fullprobe(pr.0)
    };
    match r {
        0 => Ok(Some(if let Some(t) = pr.value(c"TYPE") {
            Signature::Filesystem(t)
        } else if let Some(t) = pr.value(c"PTTYPE") {
            Signature::PartitionTable(t)
        } else {
            Signature::Unknown
        })),
        1 => Ok(None),
        _ => Err(format!("{path}: libblkid probe failed")),
    }
}
