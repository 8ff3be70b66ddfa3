//! PropLink's uploaded files (DESIGN.md §8): photos, quotations and certificates, checked at the
//! door and kept under their content hash.
//!
//! An upload is refused unless it is non-empty, within [`MAX_UPLOAD_BYTES`], one of the
//! [`MediaType`]s the field allows *by its content*, named with an extension that agrees, and —
//! for pictures we can decode — actually decodable. Pictures get a JPEG thumbnail. Keys are
//! scoped per organisation; the metadata ([`StoredFile`]) and who may see it live in Postgres.

mod error;
mod media;
mod picture;
mod store;

pub use error::{FileError, UploadError};
pub use media::{MediaType, sniff};
pub use picture::{MAX_IMAGE_SIDE, THUMBNAIL_SIZE};
pub use store::{FileStore, StoredFile};

/// The largest file anyone may upload: 20 MB, enough for a phone photo or a scanned
/// certificate, small enough to hold in memory while we check it.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
