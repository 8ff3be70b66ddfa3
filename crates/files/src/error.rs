//! Two error types with two audiences. [`UploadError`] is shown to the person uploading: it
//! names their file, says what is wrong in their terms, and never mentions paths or stores.
//! [`FileError`] is for logs and for the code calling the store; a handler that meets one shows
//! a generic message (as [`UploadError::Store`] does) and logs the detail.

use std::path::PathBuf;

use crate::MAX_UPLOAD_BYTES;
use crate::media::MediaType;

/// Something went wrong in the store itself, not with the file someone gave us.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no stored file has the key {key:?}")]
    NotFound { key: String },
    /// A key that no upload could have produced, e.g. one with `..` in it.
    #[error("{key:?} is not a valid file key")]
    InvalidKey { key: String },
    #[error("could not create the file store directory {}", path.display())]
    CreateRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the object store failed")]
    Store(#[source] object_store::Error),
    #[error("could not encode a thumbnail")]
    Thumbnail(#[source] image::ImageError),
    /// The background work on a file ended without an answer (the runtime was shutting down).
    #[error("the file was not processed: its background task was cancelled")]
    Cancelled,
}

impl From<object_store::Error> for FileError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { path, .. } => FileError::NotFound { key: path },
            other => FileError::Store(other),
        }
    }
}

/// Why an upload was refused, in words for the person who made it.
///
/// `name` is the file's name as the browser sent it, cleaned for display (no folders, no
/// control characters, not too long); an unnamed file reads as "This file".
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{} is empty.", quoted(.name))]
    Empty { name: String },

    #[error("{} is {}; the limit is {}.", quoted(.name), size_over_limit(*.size), megabytes(MAX_UPLOAD_BYTES))]
    TooLarge { name: String, size: usize },

    /// The name's extension, or (for a name without one) the content, is not a type we take.
    #[error("{} is not a file type we accept: upload {}.", quoted(.name), accepted(.allowed))]
    NotAccepted {
        name: String,
        allowed: Vec<MediaType>,
    },

    /// The name promises one type and the content is another.
    #[error("{} is not {}: its content is {}.", quoted(.name), .declared.label(), .found.label())]
    Mismatch {
        name: String,
        declared: MediaType,
        found: MediaType,
    },

    /// The name promises a type and the content is none we know, e.g. a web page saved as `.pdf`.
    #[error("{} is not {}: its content is not a file type we recognise.", quoted(.name), .declared.label())]
    Unrecognised { name: String, declared: MediaType },

    /// A type we accept elsewhere but not here, e.g. a PDF given to a photo field.
    #[error("{} is {}, which is not accepted here: upload {}.", quoted(.name), .found.label(), accepted(.allowed))]
    NotAllowedHere {
        name: String,
        found: MediaType,
        allowed: Vec<MediaType>,
    },

    #[error("{} looks like {} but could not be read; it may be damaged.", quoted(.name), .found.label())]
    Damaged { name: String, found: MediaType },

    /// Too many pixels to decode safely: larger than any real photo, or a decompression bomb.
    #[error("{} is too large a picture for us to process; please upload a smaller copy.", quoted(.name))]
    TooManyPixels { name: String },

    #[error("The file could not be stored. Please try again.")]
    Store(#[from] FileError),
}

/// The name in curly quotes, or "This file" when the browser sent none. Every message starts
/// with the name, so the capital is right.
fn quoted(name: &str) -> String {
    if name.is_empty() {
        "This file".to_owned()
    } else {
        format!("“{name}”")
    }
}

const MEBIBYTE: usize = 1024 * 1024;

/// Sizes are in binary megabytes, as the limit is and as Windows shows them. Whole numbers
/// drop the decimal: "20 MB", "23.4 MB".
fn megabytes(bytes: usize) -> String {
    tenths_to_megabytes(bytes.saturating_mul(10).div_ceil(MEBIBYTE))
}

/// Rounded to the nearest tenth, but never down to the limit itself: "20.0 MB; the limit is
/// 20 MB" would leave the reader puzzled.
fn size_over_limit(bytes: usize) -> String {
    let nearest = (bytes.saturating_mul(10) + MEBIBYTE / 2) / MEBIBYTE;
    let limit = MAX_UPLOAD_BYTES * 10 / MEBIBYTE;
    tenths_to_megabytes(nearest.max(limit + 1))
}

fn tenths_to_megabytes(tenths: usize) -> String {
    if tenths.is_multiple_of(10) {
        format!("{} MB", tenths / 10)
    } else {
        format!("{}.{} MB", tenths / 10, tenths % 10)
    }
}

/// "a JPEG, PNG, WebP or HEIC photo, or a PDF", from the types a field allows. HEIC and HEIF
/// are one thing to most people, so when both are allowed only "HEIC" is listed.
fn accepted(allowed: &[MediaType]) -> String {
    let mut images: Vec<&str> = Vec::new();
    for media in MediaType::ALL
        .iter()
        .filter(|media| allowed.contains(media))
    {
        let name = match media {
            MediaType::Heif if allowed.contains(&MediaType::Heic) => continue,
            MediaType::Pdf => continue,
            other => other.short_name(),
        };
        images.push(name);
    }
    let images = match images.as_slice() {
        [] => None,
        [one] => Some(format!("a {one} photo")),
        [rest @ .., last] => Some(format!("a {} or {last} photo", rest.join(", "))),
    };
    match (images, allowed.contains(&MediaType::Pdf)) {
        (Some(images), true) => format!("{images}, or a PDF"),
        (Some(images), false) => images,
        (None, true) => "a PDF".to_owned(),
        // Only a caller's mistake leads here; say something true rather than nothing.
        (None, false) => "a file elsewhere: this form takes none".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_list_follows_what_the_field_allows() {
        assert_eq!(
            accepted(MediaType::ALL),
            "a JPEG, PNG, WebP or HEIC photo, or a PDF"
        );
        assert_eq!(
            accepted(MediaType::PHOTOS),
            "a JPEG, PNG, WebP or HEIC photo"
        );
        assert_eq!(accepted(&[MediaType::Pdf]), "a PDF");
        assert_eq!(
            accepted(&[MediaType::Pdf, MediaType::Jpeg]),
            "a JPEG photo, or a PDF"
        );
        assert_eq!(accepted(&[MediaType::Heif]), "a HEIF photo");
    }

    #[test]
    fn sizes_read_as_megabytes_and_never_round_down_to_the_limit() {
        assert_eq!(megabytes(MAX_UPLOAD_BYTES), "20 MB");
        assert_eq!(size_over_limit(MAX_UPLOAD_BYTES + 1), "20.1 MB");
        assert_eq!(
            size_over_limit(23 * MEBIBYTE + 4 * MEBIBYTE / 10),
            "23.4 MB"
        );
        assert_eq!(size_over_limit(25 * MEBIBYTE), "25 MB");
    }

    #[test]
    fn an_unnamed_file_is_called_this_file() {
        let error = UploadError::Empty {
            name: String::new(),
        };
        assert_eq!(error.to_string(), "This file is empty.");
    }
}
