//! Forms that carry files (photos, quotations, certificates), shared by the admin app and
//! ContractorPort. A multipart form is read whole into its text fields and its files; each
//! file is then checked and stored by `proplink_files` (size, type from content, thumbnails)
//! before the database rows that name it are written, so a refused file writes nothing. Bytes
//! stored for a request that then fails are harmless: they are reachable only through a
//! `stored_file` row, and the same content is stored once.

use crate::admin::form::FormData;
use crate::error::WebError;
use crate::state::AppState;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use proplink_db::bills::BillDocument;
use proplink_db::operations::{FileRecord, NewFile};
use proplink_domain::OrgId;
use proplink_files::{FileError, MediaType, UploadError};

/// The most a form with files may carry: two files at the 20 MB limit and the form.
pub(crate) const UPLOAD_BODY: usize = 2 * proplink_files::MAX_UPLOAD_BYTES + 1024 * 1024;

/// At most this many files in one form.
pub(crate) const MAX_FILES: usize = 10;

pub(crate) struct Upload {
    pub field: String,
    pub name: String,
    pub bytes: Bytes,
}

pub(crate) struct Posted {
    pub values: FormData,
    pub files: Vec<Upload>,
}

impl Posted {
    pub(crate) fn files_in<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a Upload> {
        self.files.iter().filter(move |f| f.field == field)
    }
}

fn problem(e: &MultipartError) -> String {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        "The files are too large together: send at most 40 MB at once (20 MB per file).".into()
    } else {
        "The form arrived incomplete. Please choose the files and send it again.".into()
    }
}

/// Reads a multipart form. An empty file input (nothing chosen) is skipped.
pub(crate) async fn read(mut multipart: Multipart) -> Result<Posted, String> {
    let mut values = FormData::default();
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(problem(&e)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let bytes = field.bytes().await.map_err(|e| problem(&e))?;
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                if files.len() == MAX_FILES {
                    return Err(format!("Send at most {MAX_FILES} files at once."));
                }
                files.push(Upload {
                    field: name,
                    name: file_name,
                    bytes,
                });
            }
            None => {
                let text = field.text().await.map_err(|e| problem(&e))?;
                values.push(&name, text);
            }
        }
    }
    Ok(Posted { values, files })
}

/// Reads a form sent either way: multipart (with files) or URL-encoded (a browser without the
/// file input, or a client that sends no file), so a form can gain a file input without
/// breaking those.
pub(crate) async fn read_any(request: Request) -> Result<Posted, String> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if multipart {
        let m = Multipart::from_request(request, &())
            .await
            .map_err(|_| "The form arrived incomplete. Please send it again.".to_owned())?;
        read(m).await
    } else {
        let body = Bytes::from_request(request, &()).await.map_err(|_| {
            "The form arrived incomplete or too large. Please send it again.".to_owned()
        })?;
        Ok(Posted {
            values: FormData::parse(&body),
            files: Vec::new(),
        })
    }
}

/// The types a supplier's invoice may be (what the bill table accepts).
pub(crate) const INVOICE_TYPES: &[MediaType] = &[MediaType::Pdf, MediaType::Jpeg, MediaType::Png];

/// Checks and stores a supplier's invoice: none, or one PDF, JPEG or PNG file (typed by its
/// content), as the bill records it.
pub(crate) async fn store_invoice(
    state: &AppState,
    org: OrgId,
    uploads: &[&Upload],
    uploaded_by: &str,
) -> Result<Option<BillDocument>, String> {
    if uploads.len() > 1 {
        return Err("Attach one file: the supplier's invoice.".into());
    }
    let stored = store(
        state,
        org,
        uploads,
        INVOICE_TYPES,
        "supplier_invoice",
        uploaded_by,
    )
    .await?;
    Ok(stored.into_iter().next().map(|f| BillDocument {
        key: f.object_key,
        // The bill keeps names of up to 200 characters.
        name: f.original_name.chars().take(200).collect(),
        media_type: f.media_type,
        sha256: f.sha256,
    }))
}

/// Checks and stores each file; the rows to record come back in the same order. The first
/// refused file refuses them all, with its sentence.
pub(crate) async fn store(
    state: &AppState,
    org: OrgId,
    uploads: &[&Upload],
    allowed: &[MediaType],
    purpose: &str,
    uploaded_by: &str,
) -> Result<Vec<NewFile>, String> {
    let Some(store) = state.settings().files.as_ref() else {
        return Err(
            "File storage is not set up on this server, so files cannot be uploaded.".into(),
        );
    };
    let mut out = Vec::with_capacity(uploads.len());
    for upload in uploads {
        let stored = store
            .put(org.0, &upload.name, upload.bytes.clone(), allowed)
            .await
            .map_err(|e| match e {
                UploadError::Store(inner) => {
                    tracing::error!(error = %inner, "storing an upload failed");
                    UploadError::Store(inner).to_string()
                }
                refused => refused.to_string(),
            })?;
        out.push(NewFile {
            sha256: stored.sha256,
            size_bytes: stored.size,
            media_type: stored.media_type.mime().to_owned(),
            object_key: stored.key,
            thumbnail_key: stored.thumbnail_key,
            original_name: file_name(&upload.name),
            purpose: purpose.to_owned(),
            uploaded_by: uploaded_by.to_owned(),
        });
    }
    Ok(out)
}

/// The name without any path a browser put before it.
fn file_name(raw: &str) -> String {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
    if name.is_empty() {
        "upload".into()
    } else {
        name.chars().take(255).collect()
    }
}

/// Sends a stored file (or its thumbnail) to someone already allowed to see it. Images show in
/// the page; PDFs download, so they never run in our origin.
pub(crate) async fn serve(
    state: &AppState,
    file: &FileRecord,
    thumbnail: bool,
) -> Result<Response, WebError> {
    let (key, media) = match (thumbnail, &file.thumbnail_key) {
        (true, Some(k)) => (k.as_str(), "image/jpeg"),
        (true, None) => return Err(WebError::NotFound),
        (false, _) => (file.object_key.as_str(), file.media_type.as_str()),
    };
    let disposition = if media == "application/pdf" {
        "attachment"
    } else {
        "inline"
    };
    send_stored(state, key, media, &file.original_name, disposition).await
}

/// Sends the object under `key` as `media`, named `name`, `inline` or as an `attachment`.
pub(crate) async fn send_stored(
    state: &AppState,
    key: &str,
    media: &str,
    name: &str,
    disposition: &str,
) -> Result<Response, WebError> {
    let Some(store) = state.settings().files.as_ref() else {
        return Err(WebError::NotFound);
    };
    let bytes = match store.get(key).await {
        Ok(b) => b,
        Err(FileError::NotFound { .. }) => return Err(WebError::NotFound),
        Err(e) => return Err(WebError::Internal(format!("reading a stored file: {e}"))),
    };
    let safe_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, media.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{safe_name}\""),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
