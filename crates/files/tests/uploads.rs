//! Uploads against a real directory: what is refused and why, what is stored and where.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on the unexpected")]

use std::io::Cursor;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use proplink_files::{
    FileError, FileStore, MAX_UPLOAD_BYTES, MediaType, StoredFile, UploadError, sniff,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A fresh directory under the system temp dir, removed when the test ends (pass or fail).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("proplink-files-{}", Uuid::new_v4())))
    }

    fn store(&self) -> FileStore {
        FileStore::local(&self.0).unwrap()
    }

    /// Every file under the directory, relative to it, sorted.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn encode(image: DynamicImage, format: ImageFormat) -> Bytes {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    Bytes::from(out.into_inner())
}

/// A gradient, so a thumbnail has something to average.
fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

fn png(width: u32, height: u32) -> Bytes {
    encode(picture(width, height), ImageFormat::Png)
}

fn jpeg(width: u32, height: u32) -> Bytes {
    encode(picture(width, height), ImageFormat::Jpeg)
}

fn webp(width: u32, height: u32) -> Bytes {
    encode(picture(width, height), ImageFormat::WebP)
}

fn pdf() -> Bytes {
    Bytes::from_static(
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n\
          2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n\
          trailer <</Root 1 0 R>>\n%%EOF\n",
    )
}

/// The first box of an ISO media file, as a phone writes it, and the start of the next.
fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Bytes {
    let mut out = u32::try_from(16 + 4 * compatible.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(b"ftyp");
    out.extend_from_slice(major);
    out.extend_from_slice(&[0, 0, 0, 0]);
    for brand in compatible {
        out.extend_from_slice(*brand);
    }
    out.extend_from_slice(b"\0\0\0\x10meta\0\0\0\0\0\0\0\0");
    Bytes::from(out)
}

fn heic() -> Bytes {
    ftyp(b"heic", &[b"mif1", b"heic"])
}

fn heif() -> Bytes {
    ftyp(b"mif1", &[b"mif1", b"miaf"])
}

fn org() -> Uuid {
    Uuid::new_v4()
}

async fn refused(store: &FileStore, name: &str, bytes: Bytes, allowed: &[MediaType]) -> String {
    store
        .put(org(), name, bytes, allowed)
        .await
        .unwrap_err()
        .to_string()
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

#[test]
fn each_accepted_type_is_recognised_by_its_content() {
    assert_eq!(sniff(&jpeg(8, 8)), Some(MediaType::Jpeg));
    assert_eq!(sniff(&png(8, 8)), Some(MediaType::Png));
    assert_eq!(sniff(&webp(8, 8)), Some(MediaType::Webp));
    assert_eq!(sniff(&heic()), Some(MediaType::Heic));
    assert_eq!(sniff(&heif()), Some(MediaType::Heif));
    assert_eq!(sniff(&pdf()), Some(MediaType::Pdf));
}

#[tokio::test]
async fn each_accepted_type_is_stored_and_read_back() {
    let dir = TempDir::new();
    let store = dir.store();
    let cases = [
        ("photo.jpg", jpeg(40, 30), MediaType::Jpeg),
        ("photo.png", png(40, 30), MediaType::Png),
        ("photo.webp", webp(40, 30), MediaType::Webp),
        ("IMG_0001.HEIC", heic(), MediaType::Heic),
        ("photo.heif", heif(), MediaType::Heif),
        ("gas-safety.pdf", pdf(), MediaType::Pdf),
    ];
    for (name, bytes, media_type) in cases {
        let stored = store
            .put(org(), name, bytes.clone(), MediaType::ALL)
            .await
            .unwrap();
        assert_eq!(stored.media_type, media_type, "{name}");
        assert_eq!(stored.size, bytes.len() as i64, "{name}");
        assert_eq!(store.get(&stored.key).await.unwrap(), bytes, "{name}");
        if media_type.can_thumbnail() {
            assert_eq!(
                (stored.width, stored.height),
                (Some(40), Some(30)),
                "{name}"
            );
            let thumbnail = store.get(stored.thumbnail_key.as_ref().unwrap()).await;
            assert_eq!(sniff(&thumbnail.unwrap()), Some(MediaType::Jpeg), "{name}");
        } else {
            assert_eq!(stored.thumbnail_key, None, "{name}");
            assert_eq!((stored.width, stored.height), (None, None), "{name}");
        }
    }
}

#[tokio::test]
async fn keys_are_the_content_hash_under_the_organisation() {
    let dir = TempDir::new();
    let store = dir.store();
    let org = org();
    let bytes = png(20, 20);
    let hex = hex::encode(Sha256::digest(&bytes));

    let stored = store
        .put(org, "plan.png", bytes, MediaType::ALL)
        .await
        .unwrap();

    assert_eq!(stored.sha256, hex);
    assert_eq!(stored.key, format!("org/{org}/sha256/{}/{hex}", &hex[..2]));
    assert_eq!(
        stored.thumbnail_key.as_deref(),
        Some(format!("org/{org}/thumb/{hex}.jpg").as_str())
    );
    assert_eq!(
        dir.files(),
        [stored.key, stored.thumbnail_key.unwrap()],
        "the file and its thumbnail, nothing else, in the layout the keys name"
    );
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let dir = TempDir::new();
    let message = refused(&dir.store(), "quote.pdf", Bytes::new(), MediaType::ALL).await;
    assert_eq!(message, "“quote.pdf” is empty.");
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn a_file_over_twenty_megabytes_is_refused_with_its_size() {
    let dir = TempDir::new();
    let mut bytes = jpeg(8, 8).to_vec();
    bytes.resize(23 * 1024 * 1024 + 400 * 1024, 0);

    let message = refused(&dir.store(), "site.jpg", bytes.into(), MediaType::ALL).await;

    assert_eq!(message, "“site.jpg” is 23.4 MB; the limit is 20 MB.");
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn a_file_of_exactly_twenty_megabytes_is_accepted() {
    let dir = TempDir::new();
    let mut bytes = pdf().to_vec();
    bytes.resize(MAX_UPLOAD_BYTES, b' ');

    let stored = dir
        .store()
        .put(org(), "survey.pdf", bytes.into(), MediaType::ALL)
        .await
        .unwrap();

    assert_eq!(stored.size, MAX_UPLOAD_BYTES as i64);
}

#[tokio::test]
async fn a_file_whose_name_lies_about_its_type_is_refused() {
    let dir = TempDir::new();
    let store = dir.store();

    let message = refused(&store, "quote.pdf", png(8, 8), MediaType::ALL).await;
    assert_eq!(
        message,
        "“quote.pdf” is not a PDF: its content is a PNG image."
    );

    let message = refused(&store, "photo.jpg", pdf(), MediaType::ALL).await;
    assert_eq!(
        message,
        "“photo.jpg” is not a JPEG image: its content is a PDF."
    );

    let message = refused(
        &store,
        "quote.pdf",
        Bytes::from_static(b"<html>"),
        MediaType::ALL,
    )
    .await;
    assert_eq!(
        message,
        "“quote.pdf” is not a PDF: its content is not a file type we recognise."
    );
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn extensions_match_in_any_case_and_heic_and_heif_are_interchangeable() {
    let dir = TempDir::new();
    let store = dir.store();
    for (name, bytes) in [
        ("PHOTO.JPEG", jpeg(8, 8)),
        ("Photo.Jpg", jpeg(9, 9)),
        ("IMG_0002.heif", heic()),
        ("IMG_0003.HEIC", heif()),
    ] {
        let result = store.put(org(), name, bytes, MediaType::ALL).await;
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

#[tokio::test]
async fn a_type_the_field_does_not_allow_is_refused() {
    let dir = TempDir::new();
    let store = dir.store();

    let message = refused(&store, "gas-safety.pdf", pdf(), MediaType::PHOTOS).await;
    assert_eq!(
        message,
        "“gas-safety.pdf” is a PDF, which is not accepted here: upload a JPEG, PNG, WebP or HEIC photo."
    );

    let message = refused(&store, "photo.jpg", jpeg(8, 8), &[MediaType::Pdf]).await;
    assert_eq!(
        message,
        "“photo.jpg” is a JPEG image, which is not accepted here: upload a PDF."
    );
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn an_extension_we_do_not_take_is_refused_whatever_the_content() {
    let dir = TempDir::new();
    let store = dir.store();

    let message = refused(
        &store,
        "tool.exe",
        Bytes::from_static(b"MZ\x90\0"),
        MediaType::ALL,
    )
    .await;
    assert_eq!(
        message,
        "“tool.exe” is not a file type we accept: upload a JPEG, PNG, WebP or HEIC photo, or a PDF."
    );

    // A real PNG renamed still is not accepted under a name that says otherwise.
    let message = refused(&store, "notes.docx", png(8, 8), MediaType::PHOTOS).await;
    assert_eq!(
        message,
        "“notes.docx” is not a file type we accept: upload a JPEG, PNG, WebP or HEIC photo."
    );
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn a_name_without_an_extension_is_judged_on_content_alone() {
    let dir = TempDir::new();
    let store = dir.store();

    let stored = store
        .put(org(), "scan", pdf(), MediaType::ALL)
        .await
        .unwrap();
    assert_eq!(stored.media_type, MediaType::Pdf);

    let message = refused(
        &store,
        "scan",
        Bytes::from_static(b"PK\x03\x04zip"),
        MediaType::ALL,
    )
    .await;
    assert_eq!(
        message,
        "“scan” is not a file type we accept: upload a JPEG, PNG, WebP or HEIC photo, or a PDF."
    );
}

#[tokio::test]
async fn the_name_in_a_message_is_the_file_name_alone() {
    let dir = TempDir::new();
    let store = dir.store();

    let message = refused(
        &store,
        r"C:\fakepath\quote.pdf",
        Bytes::new(),
        MediaType::ALL,
    )
    .await;
    assert_eq!(message, "“quote.pdf” is empty.");

    let message = refused(&store, "", Bytes::new(), MediaType::ALL).await;
    assert_eq!(message, "This file is empty.");
}

#[tokio::test]
async fn a_picture_that_cannot_be_decoded_is_refused_as_damaged() {
    let dir = TempDir::new();
    let store = dir.store();

    let mut garbage = b"\xFF\xD8\xFF\xE0".to_vec();
    garbage.extend((0..4000_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let message = refused(&store, "photo.jpg", garbage.into(), MediaType::ALL).await;
    assert_eq!(
        message,
        "“photo.jpg” looks like a JPEG image but could not be read; it may be damaged."
    );

    let whole = png(200, 200);
    let truncated = whole.slice(..whole.len() / 2);
    let message = refused(&store, "plan.png", truncated, MediaType::ALL).await;
    assert_eq!(
        message,
        "“plan.png” looks like a PNG image but could not be read; it may be damaged."
    );
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn a_picture_wider_than_the_limit_is_refused_before_decoding() {
    let dir = TempDir::new();
    // Tiny as a file; as pixels, wider than any camera makes.
    let wide = png(proplink_files::MAX_IMAGE_SIDE + 1, 1);

    let message = refused(&dir.store(), "panorama.png", wide, MediaType::ALL).await;

    assert_eq!(
        message,
        "“panorama.png” is too large a picture for us to process; please upload a smaller copy."
    );
}

#[tokio::test]
async fn thumbnails_fit_in_320_square_and_keep_their_proportions() {
    let dir = TempDir::new();
    let store = dir.store();
    for ((width, height), expected) in [
        ((1000, 400), (320, 128)),
        ((300, 900), (107, 320)),
        ((640, 640), (320, 320)),
        // Smaller than the box: left as it is, not enlarged.
        ((100, 50), (100, 50)),
    ] {
        let stored = store
            .put(org(), "photo.png", png(width, height), MediaType::ALL)
            .await
            .unwrap();
        assert_eq!((stored.width, stored.height), (Some(width), Some(height)));
        let thumbnail = decode(&store.get(&stored.thumbnail_key.unwrap()).await.unwrap());
        assert_eq!(
            (thumbnail.width(), thumbnail.height()),
            expected,
            "{width}×{height}"
        );
    }
}

#[tokio::test]
async fn a_transparent_background_becomes_white_in_the_thumbnail() {
    let dir = TempDir::new();
    let store = dir.store();
    let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 0])));

    let stored = store
        .put(
            org(),
            "signature.png",
            encode(clear, ImageFormat::Png),
            MediaType::ALL,
        )
        .await
        .unwrap();

    let thumbnail = decode(&store.get(&stored.thumbnail_key.unwrap()).await.unwrap()).to_rgb8();
    let Rgb([r, g, b]) = *thumbnail.get_pixel(8, 8);
    assert!(r > 250 && g > 250 && b > 250, "got {r},{g},{b}");
}

#[tokio::test]
async fn the_same_bytes_in_one_organisation_are_stored_once() {
    let dir = TempDir::new();
    let store = dir.store();
    let org = org();
    let bytes = jpeg(64, 48);

    let first = store
        .put(org, "site.jpg", bytes.clone(), MediaType::ALL)
        .await
        .unwrap();
    let on_disk = dir.0.join(&first.key);
    let inode = std::fs::metadata(&on_disk).unwrap().ino();
    let second = store
        .put(org, "same site again.jpg", bytes, MediaType::ALL)
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(dir.files().len(), 2, "one file and one thumbnail");
    // A rewrite would rename a new file into place; the original is untouched.
    assert_eq!(std::fs::metadata(&on_disk).unwrap().ino(), inode);
}

#[tokio::test]
async fn two_organisations_uploading_the_same_bytes_get_separate_keys() {
    let dir = TempDir::new();
    let store = dir.store();
    let (alpha, beta) = (org(), org());
    let bytes = pdf();

    let a = store
        .put(alpha, "quote.pdf", bytes.clone(), MediaType::ALL)
        .await
        .unwrap();
    let b = store
        .put(beta, "quote.pdf", bytes.clone(), MediaType::ALL)
        .await
        .unwrap();

    assert_eq!(a.sha256, b.sha256);
    assert_ne!(a.key, b.key);
    assert!(a.key.starts_with(&format!("org/{alpha}/")));
    assert!(b.key.starts_with(&format!("org/{beta}/")));
    assert_eq!(store.get(&a.key).await.unwrap(), bytes);
    assert_eq!(store.get(&b.key).await.unwrap(), bytes);
    assert_eq!(dir.files().len(), 2);
}

#[tokio::test]
async fn uploads_survive_a_restart() {
    let dir = TempDir::new();
    let bytes = webp(50, 50);
    let stored: StoredFile = {
        let before = dir.store();
        before
            .put(org(), "boiler.webp", bytes.clone(), MediaType::ALL)
            .await
            .unwrap()
    };

    let after = FileStore::local(&dir.0).unwrap();

    assert_eq!(after.get(&stored.key).await.unwrap(), bytes);
    assert!(after.get(&stored.thumbnail_key.unwrap()).await.is_ok());
}

#[tokio::test]
async fn a_missing_key_is_not_found() {
    let dir = TempDir::new();
    let store = dir.store();
    let key = format!("org/{}/sha256/ab/{}", org(), "ab".repeat(32));

    let error = store.get(&key).await.unwrap_err();

    assert!(matches!(error, FileError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn a_key_that_climbs_out_of_the_store_is_invalid() {
    let dir = TempDir::new();
    let error = dir.store().get("org/../../etc/passwd").await.unwrap_err();
    assert!(matches!(error, FileError::InvalidKey { .. }), "{error:?}");
}

#[test]
fn a_store_failure_tells_the_user_nothing_about_the_store() {
    let error = UploadError::from(FileError::NotFound {
        key: "org/secret/sha256/ab/cd".to_owned(),
    });
    assert_eq!(
        error.to_string(),
        "The file could not be stored. Please try again."
    );
}
