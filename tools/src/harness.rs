//! Helpers shared by tests and the bench: file data I/O through the engine
//! (what the kernel's iomap/dax paths do), and a logical dump of a
//! filesystem for comparisons.

use ferrofs_engine::*;
use std::collections::BTreeMap;

/// Zero the bytes of the block containing `size` past `size` (the kernel's
/// job before extending a file), unsharing the block first if needed.
pub fn zero_tail<M: Media>(fs: &mut Fs<M>, ino: u64, size: u64) -> Result<()> {
    if size.is_multiple_of(BLOCK_SIZE) {
        return Ok(());
    }
    let lblk = size / BLOCK_SIZE;
    let m = fs.map(ino, lblk, 1)?;
    if m.kind != MapKind::Written {
        return Ok(());
    }
    let m = if m.shared { fs.alloc_write(ino, lblk, 1, AllocFlags::default())? } else { m };
    let off = m.pblk * BLOCK_SIZE + size % BLOCK_SIZE;
    let len = BLOCK_SIZE - size % BLOCK_SIZE;
    fs.media().zero(off, len);
    fs.media().flush(off, len);
    fs.media().fence();
    Ok(())
}

/// Write `data` at byte `off` (allocating, CoW-ing and extending as needed).
pub fn write<M: Media>(fs: &mut Fs<M>, ino: u64, off: u64, data: &[u8], t: Time) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let old = fs.read_inode(ino)?.size;
    if off > old {
        zero_tail(fs, ino, old)?;
    }
    let end = off + data.len() as u64;
    let mut pos = off;
    while pos < end {
        let lblk = pos / BLOCK_SIZE;
        let last = (end - 1) / BLOCK_SIZE;
        let m = fs.alloc_write(ino, lblk, last - lblk + 1, AllocFlags::default())?;
        let piece_end = ((m.lblk + m.count) * BLOCK_SIZE).min(end);
        let src = &data[(pos - off) as usize..(piece_end - off) as usize];
        let dst = m.pblk * BLOCK_SIZE + (pos - m.lblk * BLOCK_SIZE);
        fs.media().write(dst, src);
        fs.media().flush(dst, src.len() as u64);
        pos = piece_end;
    }
    fs.media().fence();
    if end > old {
        fs.set_size(ino, end, t)?;
    }
    Ok(())
}

/// Change the size like truncate(2).
pub fn truncate<M: Media>(fs: &mut Fs<M>, ino: u64, size: u64, t: Time) -> Result<()> {
    let old = fs.read_inode(ino)?.size;
    if size > old {
        zero_tail(fs, ino, old)?;
    }
    fs.set_size(ino, size, t)
}

/// Defragment a whole file the way the kernel does: `defrag_step` until
/// the range is done, one transaction per step.
pub fn defrag<M: Media>(fs: &mut Fs<M>, ino: u64) -> Result<Defrag> {
    let mut d = Defrag::default();
    let mut cur = 0;
    while let Some(next) = fs.defrag_step(ino, cur, MAX_LBLK, &mut d)? {
        cur = next;
    }
    Ok(d)
}

/// Read a whole file.
pub fn read_all<M: Media>(fs: &Fs<M>, ino: u64) -> Result<Vec<u8>> {
    let size = fs.read_inode(ino)?.size;
    let mut out = vec![0u8; size as usize];
    let nblocks = size.div_ceil(BLOCK_SIZE);
    let mut l = 0;
    while l < nblocks {
        let m = fs.map(ino, l, nblocks - l)?;
        if m.kind == MapKind::Written {
            let start = (l * BLOCK_SIZE) as usize;
            let end = (((l + m.count) * BLOCK_SIZE) as usize).min(out.len());
            fs.media().read(m.pblk * BLOCK_SIZE, &mut out[start..end]).map_err(|e| Error::Io { block: e.offset / BLOCK_SIZE })?;
        }
        l += m.count;
    }
    Ok(out)
}

/// Collect a directory's entries (without . and ..).
pub fn list_dir<M: Media>(fs: &Fs<M>, dir: u64) -> Result<Vec<(Vec<u8>, u64, u8)>> {
    let mut v = Vec::new();
    fs.readdir(dir, 2, &mut |n, i, t, _| {
        v.push((n.to_vec(), i, t));
        true
    })?;
    v.sort();
    Ok(v)
}

/// A logical dump: path -> description (type, nlink, size, content crc,
/// symlink target, xattrs). Two filesystems with equal dumps hold the same
/// namespace and data.
pub fn dump<M: Media>(fs: &Fs<M>) -> Result<BTreeMap<String, String>> {
    dump_with(fs, &|_| true)
}

/// Like `dump`, but file contents only for the inodes `with_data` selects
/// (the others show `crc=-`).
pub fn dump_with<M: Media>(fs: &Fs<M>, with_data: &dyn Fn(u64) -> bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::from("/"), fs.root_ino())];
    while let Some((path, ino)) = stack.pop() {
        let i = fs.read_inode(ino)?;
        let mut desc = format!("ino={ino} mode={:o} nlink={} size={} uid={}", i.mode, i.nlink, i.size, i.uid);
        if i.flags & IFLAG_HINTS != 0 || i.extsize != 0 || i.cowextsize != 0 {
            desc += &format!(" hints={:x}/{}/{}", i.flags & IFLAG_HINTS, i.extsize, i.cowextsize);
        }
        if i.projid != 0 || i.flags & IFLAG_PROJINHERIT != 0 {
            desc += &format!(" projid={}{}", i.projid, if i.flags & IFLAG_PROJINHERIT != 0 { "+inherit" } else { "" });
        }
        if i.is_reg() && !with_data(ino) {
            desc += " crc=-";
        } else if i.is_reg() {
            desc += &format!(" crc={:08x}", crc32c(&read_all(fs, ino)?));
        } else if i.is_symlink() {
            let mut b = vec![0u8; 4096];
            let n = fs.read_link(ino, &mut b)?;
            desc += &format!(" target={}", String::from_utf8_lossy(&b[..n]));
        }
        let mut xs = Vec::new();
        fs.xattr_list(ino, &mut |ns, name, len| xs.push((ns, name.to_vec(), len)))?;
        xs.sort();
        for (ns, name, _) in xs {
            let mut v = vec![0u8; XATTR_VALUE_MAX];
            let n = fs.xattr_get(ino, ns, &name, &mut v)?;
            desc += &format!(" x{ns}:{}={:08x}", String::from_utf8_lossy(&name), crc32c(&v[..n]));
        }
        if i.is_dir() {
            for (name, child, _) in list_dir(fs, ino)? {
                let p = format!("{}{}{}", path, if path.ends_with('/') { "" } else { "/" }, String::from_utf8_lossy(&name));
                stack.push((p, child));
            }
        }
        out.insert(path, desc);
    }
    Ok(out)
}
