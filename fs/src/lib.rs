#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! ferrofs on-media engine: the single source of truth for the on-pmem format and
//! every metadata algorithm, shared by the kernel module and the userspace tools.
pub mod engine;
pub use engine::*;
