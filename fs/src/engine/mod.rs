//! The ferrofs engine. Everything lives below this module so that the kernel
//! crate can include it with `#[path = "../fs/src/engine/mod.rs"] pub mod engine;`.
//! Siblings are referred to as `super::x`, never `crate::x`.

pub mod crc;
pub mod media;
pub mod layout;
pub mod journal;
pub mod alloc;
pub mod btree;
pub mod fs;
pub mod namei;
pub mod extent;
pub mod xattr;

pub use self::crc::{crc32c, Crc32c};
pub use self::media::{Media, MediaError};
pub use self::layout::*;
pub use self::fs::*;
pub use self::btree::Key;
pub use self::extent::{AllocFlags, BlockUse, Defrag, Extent, MapKind, Mapping};
pub use self::namei::{DirEmit, NewInode, RenameFlags, POS_DOT, POS_DOTDOT};
pub use self::xattr::XattrMode;
pub use self::journal::{committed_seq, committed_word, LoggedBlock};

/// Result type of the engine.
pub type Result<T> = core::result::Result<T, Error>;

/// Every error the engine returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No such file, directory or record (ENOENT).
    NotFound,
    /// Name already exists (EEXIST).
    Exists,
    /// Not a directory (ENOTDIR).
    NotDir,
    /// Is a directory (EISDIR).
    IsDir,
    /// Directory not empty (ENOTEMPTY).
    NotEmpty,
    /// Out of space, or transaction too large (ENOSPC).
    NoSpace,
    /// Name longer than 255 bytes (ENAMETOOLONG).
    NameTooLong,
    /// Invalid argument (EINVAL).
    Invalid,
    /// Operation not permitted (EPERM), e.g. hard link to a directory.
    NotPermitted,
    /// Metadata failed verification (EUCLEAN / EFSCORRUPTED).
    Corrupt {
        /// Name of the structure.
        what: &'static str,
        /// Block number where it was found.
        block: u64,
    },
    /// Media error (EIO).
    Io {
        /// Block number of the failed access.
        block: u64,
    },
    /// Too many links (EMLINK).
    TooManyLinks,
    /// File too big (EFBIG).
    FileTooBig,
    /// Read-only filesystem (EROFS).
    ReadOnly,
    /// No such attribute (ENODATA).
    NoData,
    /// Value too big (E2BIG).
    TooBig,
    /// Buffer too small (ERANGE).
    Range,
    /// A link or rename into a PROJINHERIT directory of another project
    /// (EXDEV, as on XFS and ext4: the move would escape the project's
    /// quota; userspace copies instead).
    CrossProject,
    /// Not a ferrofs filesystem: bad superblock magic (EINVAL).
    BadMagic,
    /// Unknown incompatible feature bits (EINVAL).
    UnsupportedFeature {
        /// The unknown bits.
        incompat: u64,
    },
    /// Unknown format version (EINVAL).
    BadVersion {
        /// The version found.
        version: u32,
    },
    /// The device is smaller than the filesystem or too small to format (EINVAL).
    DeviceTooSmall {
        /// Blocks needed.
        need_blocks: u64,
        /// Blocks present.
        have_blocks: u64,
    },
}

impl Error {
    /// The Linux errno (positive).
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound => 2,
            Error::Exists => 17,
            Error::NotDir => 20,
            Error::IsDir => 21,
            Error::NotEmpty => 39,
            Error::NoSpace => 28,
            Error::NameTooLong => 36,
            Error::Invalid => 22,
            Error::NotPermitted => 1,
            Error::Corrupt { .. } => 117,
            Error::Io { .. } => 5,
            Error::TooManyLinks => 31,
            Error::FileTooBig => 27,
            Error::ReadOnly => 30,
            Error::NoData => 61,
            Error::TooBig => 7,
            Error::Range => 34,
            Error::CrossProject => 18,
            Error::BadMagic => 22,
            Error::UnsupportedFeature { .. } => 22,
            Error::BadVersion { .. } => 22,
            Error::DeviceTooSmall { .. } => 22,
        }
    }
}

/// Shorthand used everywhere a value read from media fails a check.
pub(crate) fn corrupt<T>(what: &'static str, block: u64) -> Result<T> {
    Err(Error::Corrupt { what, block })
}
