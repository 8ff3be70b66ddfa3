//! The kinds of file PropLink accepts, and how to tell them apart from their content.
//!
//! Sniffing is written by hand rather than with a crate such as `infer`: five of the six types
//! are a fixed prefix, and the sixth is where `infer` falls short for us. It reports only
//! "HEIF" (with the `image/heif` MIME type) for an iPhone's HEIC photo, and misses a HEIF file
//! whose brands are `mif1` without `heic`. Reading the `ftyp` box ourselves is a dozen lines,
//! tested below, and spares a dependency.

/// A type of file that may be uploaded. Anything else is refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
    /// HEIF with HEVC-coded pictures: what iPhones (and many Android phones) save photos as.
    Heic,
    /// HEIF with some other (or no stated) coding.
    Heif,
    Pdf,
}

impl MediaType {
    /// Every accepted type, e.g. for a field that takes quotations, photos and certificates alike.
    pub const ALL: &'static [MediaType] = &[
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Webp,
        MediaType::Heic,
        MediaType::Heif,
        MediaType::Pdf,
    ];

    /// The types a photo field accepts.
    pub const PHOTOS: &'static [MediaType] = &[
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Webp,
        MediaType::Heic,
        MediaType::Heif,
    ];

    /// The MIME type to serve the file as and to record in the database.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
            MediaType::Heic => "image/heic",
            MediaType::Heif => "image/heif",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// Reads back a MIME type written by [`MediaType::mime`].
    pub fn from_mime(mime: &str) -> Option<Self> {
        let mime = mime.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|media| media.mime().eq_ignore_ascii_case(mime))
    }

    /// How a sentence names the type: "a JPEG image", "a PDF".
    pub fn label(self) -> &'static str {
        match self {
            MediaType::Jpeg => "a JPEG image",
            MediaType::Png => "a PNG image",
            MediaType::Webp => "a WebP image",
            MediaType::Heic => "a HEIC image",
            MediaType::Heif => "a HEIF image",
            MediaType::Pdf => "a PDF",
        }
    }

    /// The usual file extension, without the dot, for naming a download.
    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
            MediaType::Webp => "webp",
            MediaType::Heic => "heic",
            MediaType::Heif => "heif",
            MediaType::Pdf => "pdf",
        }
    }

    pub fn is_image(self) -> bool {
        !matches!(self, MediaType::Pdf)
    }

    /// Whether we can decode the file to check it and make a thumbnail. HEIC and HEIF cannot be:
    /// there is no pure-Rust HEVC decoder, and the C library (libheif) is not worth its build and
    /// attack surface here. Such photos are stored as they are, without a thumbnail.
    pub fn can_thumbnail(self) -> bool {
        matches!(self, MediaType::Jpeg | MediaType::Png | MediaType::Webp)
    }

    /// The type an extension (without the dot, any case) claims, if it is one we accept.
    pub(crate) fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(MediaType::Jpeg),
            "png" => Some(MediaType::Png),
            "webp" => Some(MediaType::Webp),
            "heic" => Some(MediaType::Heic),
            "heif" => Some(MediaType::Heif),
            "pdf" => Some(MediaType::Pdf),
            _ => None,
        }
    }

    /// Whether a file named as `self` may hold `content`. `.heic` and `.heif` are used loosely
    /// for one container (phones save HEVC photos under either), so either name fits either.
    pub(crate) fn admits(self, content: MediaType) -> bool {
        let heif_family = |media| matches!(media, MediaType::Heic | MediaType::Heif);
        self == content || (heif_family(self) && heif_family(content))
    }

    /// The bare name used in a list of accepted types: "JPEG", "PDF".
    pub(crate) fn short_name(self) -> &'static str {
        match self {
            MediaType::Jpeg => "JPEG",
            MediaType::Png => "PNG",
            MediaType::Webp => "WebP",
            MediaType::Heic => "HEIC",
            MediaType::Heif => "HEIF",
            MediaType::Pdf => "PDF",
        }
    }
}

/// The type of a file judged by its content alone, or `None` if it is none of the six.
///
/// The PDF header must be at the very start: readers tolerate junk before it, but real PDFs do
/// not have any, and being strict keeps a file that is something else first (say, HTML) from
/// passing as a PDF.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(MediaType::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(MediaType::Png)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(MediaType::Webp)
    } else if bytes.starts_with(b"%PDF-") {
        Some(MediaType::Pdf)
    } else {
        sniff_heif(bytes)
    }
}

/// HEIC and HEIF are ISO base media files whose first box, `ftyp`, lists brands: a major one
/// and some compatible ones. The HEVC brands make it HEIC; the generic image brands make it
/// HEIF. AVIF shares the container and the generic brands, but we do not accept it, so its own
/// brands rule a file out whatever else it lists.
fn sniff_heif(bytes: &[u8]) -> Option<MediaType> {
    const HEIC: [&[u8]; 4] = [b"heic", b"heix", b"hevc", b"hevx"];
    const HEIF: [&[u8]; 4] = [b"mif1", b"msf1", b"heim", b"heis"];
    const AVIF: [&[u8]; 2] = [b"avif", b"avis"];

    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let declared_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    // A box shorter than its own header is malformed; 0 and 1 mean "to end of file" and "64-bit
    // size", neither of which a real `ftyp` uses.
    if declared_len < 16 {
        return None;
    }
    let box_end = usize::try_from(declared_len)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let major = &bytes[8..12];
    // Bytes 12..16 are the minor version; compatible brands follow to the end of the box.
    let brands: Vec<&[u8]> = std::iter::once(major)
        .chain(bytes[16..box_end].chunks_exact(4))
        .collect();
    let lists = |family: &[&[u8]]| brands.iter().any(|brand| family.contains(brand));

    if lists(&AVIF) {
        None
    } else if lists(&HEIC) {
        Some(MediaType::Heic)
    } else if lists(&HEIF) {
        Some(MediaType::Heif)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ftyp` box with the given major and compatible brands, then a little payload.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = u32::try_from(16 + 4 * compatible.len()).unwrap_or(u32::MAX);
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(b"ftyp");
        out.extend_from_slice(major);
        out.extend_from_slice(&[0, 0, 0, 0]);
        for brand in compatible {
            out.extend_from_slice(*brand);
        }
        out.extend_from_slice(b"\0\0\0\x08free");
        out
    }

    #[test]
    fn an_iphone_photo_is_heic() {
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Some(MediaType::Heic)
        );
    }

    #[test]
    fn a_generic_heif_major_brand_with_an_hevc_compatible_brand_is_heic() {
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])),
            Some(MediaType::Heic)
        );
        assert_eq!(sniff(&ftyp(b"msf1", &[b"hevc"])), Some(MediaType::Heic));
    }

    #[test]
    fn heif_brands_without_hevc_are_heif() {
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"miaf"])),
            Some(MediaType::Heif)
        );
        assert_eq!(sniff(&ftyp(b"heim", &[])), Some(MediaType::Heif));
    }

    #[test]
    fn avif_and_video_are_not_heif() {
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])), None);
        assert_eq!(sniff(&ftyp(b"mif1", &[b"avif", b"miaf"])), None);
        assert_eq!(sniff(&ftyp(b"isom", &[b"isom", b"mp41"])), None);
    }

    #[test]
    fn brands_after_the_end_of_the_ftyp_box_do_not_count() {
        // The box says it is 16 bytes long, so "heic" below sits in the next box.
        let mut bytes = ftyp(b"isom", &[]);
        bytes.truncate(16);
        bytes.extend_from_slice(b"heic");
        assert_eq!(sniff(&bytes), None);
    }

    #[test]
    fn a_truncated_or_malformed_ftyp_is_nothing() {
        assert_eq!(sniff(b"\0\0\0\x18ftypheic"), None);
        let mut zero_length = ftyp(b"heic", &[]);
        zero_length[..4].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(sniff(&zero_length), None);
    }

    #[test]
    fn prefixes_identify_the_other_types() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(MediaType::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(MediaType::Png));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(MediaType::Webp));
        assert_eq!(sniff(b"%PDF-1.4\n"), Some(MediaType::Pdf));
    }

    #[test]
    fn near_misses_are_nothing() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"  %PDF-1.4\n"), None);
        assert_eq!(sniff(b"PK\x03\x04 a .docx is a zip"), None);
        assert_eq!(sniff(b"MZ\x90\0 an .exe"), None);
    }

    #[test]
    fn mime_types_read_back() {
        for &media in MediaType::ALL {
            assert_eq!(MediaType::from_mime(media.mime()), Some(media));
        }
        assert_eq!(MediaType::from_mime("IMAGE/JPEG"), Some(MediaType::Jpeg));
        assert_eq!(MediaType::from_mime("text/html"), None);
    }

    #[test]
    fn extensions_name_their_own_type_in_any_case() {
        for &media in MediaType::ALL {
            assert_eq!(MediaType::from_extension(media.extension()), Some(media));
        }
        assert_eq!(MediaType::from_extension("JPEG"), Some(MediaType::Jpeg));
        assert_eq!(MediaType::from_extension("docx"), None);
    }

    #[test]
    fn only_jpeg_png_and_webp_can_be_thumbnailed() {
        let thumbnailable: Vec<_> = MediaType::ALL
            .iter()
            .copied()
            .filter(|media| media.can_thumbnail())
            .collect();
        assert_eq!(
            thumbnailable,
            [MediaType::Jpeg, MediaType::Png, MediaType::Webp]
        );
        assert!(!MediaType::Pdf.is_image());
        assert!(MediaType::Heic.is_image());
    }
}
