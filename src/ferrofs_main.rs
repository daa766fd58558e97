// SPDX-License-Identifier: GPL-2.0
//! ferrofs: a DAX-native, reflink-native filesystem for persistent memory.
//!
//! This is the crate root of `ferrofs.ko`. The on-media engine (`fs/`) is
//! compiled in as the module `engine`, exactly the source `cargo test`,
//! `mkfs.ferrofs` and `fsck.ferrofs` use in userspace. The kernel-facing code
//! is split by concern:
//!
//! - [`bindings`]: module-local bindgen output (fs, iomap, dax) + C shims.
//!
//! Layered bottom-up; each module uses only those above it in this list:
//!
//! - [`vfs`]: typed wrappers over the VFS objects we touch (inodes with
//!   `ARef` and the new-inode typestates, dentries, files, kiocb/iov_iter,
//!   vm_fault, iomap, ACLs, lock guards). Knows nothing of ferrofs's state.
//! - `dax/`: the claim of the pmem `dax_device` and the engine's media over it.
//! - `rmap/`: the per-PFN reverse map of shared DAX pages.
//! - [`mount`]: the mount's state (`FsInfo`) and its one accessor.
//! - `mm_glue/`: memory failure and device removal (the dax holder
//!   operations), fanotify error reports, the rmap's debugfs view, C shims.
//! - [`inode`]: attributes between engine and VFS, eviction, getattr, flags.
//! - [`xattr`]: extended attributes and POSIX ACLs.
//! - [`ioctl`]: the ioctls the VFS does not handle (FS_IOC_SHUTDOWN).
//! - [`file`]: regular files: the DAX data path, setattr, fallocate, remap.
//! - [`namei`]: directories, lookup, iget and the namespace operations.
//! - [`export`]: file handles (export_operations), for fanotify FIDs.
//! - [`super_ops`]: filesystem type, mount (fs_context), superblock operations.

use kernel::prelude::*;

mod bindings;
mod export;
mod file;
mod inode;
mod ioctl;
mod mount;
mod namei;
mod quota;
mod super_ops;
mod vfs;
mod xattr;

#[path = "../dax/mod.rs"]
mod dax;

#[path = "../rmap/mod.rs"]
mod rmap;

#[path = "../mm_glue/mod.rs"]
mod mm_glue;

#[path = "../fs/src/engine/mod.rs"]
#[allow(unreachable_pub, dead_code)]
pub mod engine;

module! {
    type: FerroFsModule,
    name: "ferrofs",
    author: "ferrofs developers",
    description: "DAX-native reflink filesystem for persistent memory",
    license: "GPL",
    alias: ["fs-ferrofs"],
}

struct FerroFsModule;

impl kernel::Module for FerroFsModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        super_ops::register(module)?;
        pr_info!("registered (on-disk format v{})\n", engine::FORMAT_VERSION);
        Ok(FerroFsModule)
    }
}

impl Drop for FerroFsModule {
    fn drop(&mut self) {
        super_ops::unregister();
        pr_info!("unregistered\n");
    }
}
