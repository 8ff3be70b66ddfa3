//! Decoding an uploaded picture to prove it is one, and making its thumbnail.
//!
//! Everything here is CPU-bound and runs on a blocking thread (see `store.rs`).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, Rgb, RgbImage,
};

use crate::media::MediaType;

/// Thumbnails fit in a square of this many pixels a side, keeping the picture's proportions.
pub const THUMBNAIL_SIZE: u32 = 320;

/// No real photo is wider or taller (a 100-megapixel camera makes about 12,000 × 8,700). A
/// decompression bomb — a small file that claims a vast picture — is refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 12_000;

/// What the decoder may allocate for one picture. A 48-megapixel phone photo needs about
/// 150 MB as RGB; this leaves room for that and refuses worse.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// JPEG quality for thumbnails: small files, no visible blocking at 320 px.
const THUMBNAIL_QUALITY: u8 = 80;

pub(crate) struct Picture {
    /// As displayed, i.e. after the camera's EXIF rotation is applied.
    pub width: u32,
    pub height: u32,
    /// The thumbnail, always JPEG: small, and every browser shows it.
    pub thumbnail_jpeg: Vec<u8>,
}

pub(crate) enum PictureError {
    /// The header promised a picture and the rest did not deliver one.
    Damaged,
    /// Over [`MAX_IMAGE_SIDE`] or the memory limit.
    TooManyPixels,
    /// Our own encoder failed on a picture we had decoded: not the uploader's doing.
    Encode(ImageError),
}

/// Decodes `bytes` as `media` (which must be one we [can thumbnail](MediaType::can_thumbnail)).
pub(crate) fn read_picture(bytes: &[u8], media: MediaType) -> Result<Picture, PictureError> {
    let format = match media {
        MediaType::Jpeg => ImageFormat::Jpeg,
        MediaType::Png => ImageFormat::Png,
        MediaType::Webp => ImageFormat::WebP,
        MediaType::Heic | MediaType::Heif | MediaType::Pdf => return Err(PictureError::Damaged),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);

    // The format is the one we sniffed; the decoder is not asked to guess again.
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    // Broken EXIF should not refuse a photo whose pixels are fine; it just stays unrotated.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    image.apply_orientation(orientation);

    let (width, height) = (image.width(), image.height());
    // `thumbnail` would enlarge a small picture to fill the box; a thumbnail never should.
    let small = if width > THUMBNAIL_SIZE || height > THUMBNAIL_SIZE {
        image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    } else {
        image
    };
    let mut thumbnail_jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut thumbnail_jpeg, THUMBNAIL_QUALITY)
        .encode_image(&flatten_on_white(&small))
        .map_err(PictureError::Encode)?;
    Ok(Picture {
        width,
        height,
        thumbnail_jpeg,
    })
}

fn classify(error: ImageError) -> PictureError {
    match error {
        ImageError::Limits(_) => PictureError::TooManyPixels,
        _ => PictureError::Damaged,
    }
}

/// JPEG has no transparency. Dropping the alpha channel would turn a transparent background
/// (a scanned signature, a logo) black; paint it onto white as a page would show it.
fn flatten_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let alpha = u16::from(a);
        // Rounded integer blend; the result is at most 255, so the cast keeps every bit.
        let blend = |c: u8| ((u16::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        Rgb([blend(r), blend(g), blend(b)])
    })
}
