//! A site's Documents tab (docs-spec §2.13 "Files"): its folders with who may see each, the
//! files in a folder with their versions and expiry dates, uploads and new versions, folder
//! permissions, and a whole folder as a ZIP. Reading needs `file.read` at the site; uploading
//! `file.create`; changing folders and files `file.update`; archiving `file.archive`.

use super::form::FormData;
use super::operations::{back_to, flash_of, human_size, ops_error, query_of, refused_on};
use super::records::{self, Opt, check, may, parse_id};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use crate::uploads;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::multipart::Multipart;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::folders::{self, Folder, FolderFile};
use proplink_db::operations::FileRecord;
use proplink_domain::authorize::Placement;
use proplink_domain::dates::long_date;
use proplink_domain::folders::{FolderAccess, ResidentAudience};
use proplink_files::MediaType;
use std::io::Write;
use uuid::Uuid;

type Page = Result<Response, WebError>;

fn placement(f: &Folder) -> Placement {
    Placement::Site {
        site: f.site_id,
        estate: f.estate_id,
    }
}

/// The folder, if the member may do `action` at its site; 404 otherwise (as for any record out
/// of reach).
async fn folder_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    action: &str,
) -> Result<Folder, WebError> {
    let folder = folders::find(tx, id).await?.ok_or(WebError::NotFound)?;
    check(member, action, placement(&folder))?;
    Ok(folder)
}

pub struct FolderRow {
    pub id: Uuid,
    pub name: String,
    pub access: String,
    pub files: i64,
    pub expiring: i64,
    pub archived: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/documents.html")]
pub struct DocumentsPage {
    shell: Shell,
    site_id: Uuid,
    site_name: String,
    rows: Vec<FolderRow>,
    can_create: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /sites/{id}/documents
pub async fn site_documents(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let site_id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = proplink_db::portfolio::site(&mut tx, site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "file.read", site.placement())?;
    // The default folders are made on the first visit; a read-only organisation (which can
    // write nothing) and an archived site show what they have.
    if site.archived_at.is_none() && !member.read_only() {
        folders::ensure_defaults(&mut tx, site_id).await?;
    }
    let list = folders::folders(&mut tx, site_id, true).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    Ok(DocumentsPage {
        shell: Shell::new(&member, "/sites"),
        site_id,
        site_name: site.name.clone(),
        rows: list
            .iter()
            .map(|f| FolderRow {
                id: f.id,
                name: f.name.clone(),
                access: f.access().summary(),
                files: f.files,
                expiring: f.expiring,
                archived: f.archived_at.is_some(),
            })
            .collect(),
        can_create: may(&member, "file.create", site.placement()) && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

/// POST /sites/{id}/documents: a new folder.
pub async fn create_folder(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let site_id = parse_id(&id)?;
    let path = format!("/sites/{site_id}/documents");
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = proplink_db::portfolio::site(&mut tx, site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "file.create", site.placement())?;
    if site.archived_at.is_some() {
        return Ok(refused_on(&path, "The site is archived: restore it first."));
    }
    match folders::create(&mut tx, site_id, v.get("name")).await {
        Ok(folder) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/folders/{folder}"),
                "Folder added. Only staff can see it until you open it to others below.",
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

pub struct FileRow {
    pub id: Uuid,
    pub name: String,
    pub size: String,
    pub version: i32,
    pub uploaded: String,
    pub expires: String,
    /// The expiry date as DD/MM/YYYY, for the form.
    pub expires_input: String,
    pub expiry_state: &'static str,
    pub shown_to_residents: bool,
    pub current: bool,
    pub has_thumbnail: bool,
}

impl FileRow {
    fn new(f: &FileRecord, today: time::Date) -> Self {
        Self {
            id: f.id,
            name: f.original_name.clone(),
            size: human_size(f.size_bytes),
            version: f.version,
            uploaded: format!("{}, {}", long_date(f.created_at.date()), f.uploaded_by),
            expires: f.expires_on.map(long_date).unwrap_or_default(),
            expires_input: f
                .expires_on
                .map(|d| format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()))
                .unwrap_or_default(),
            expiry_state: match f.expires_on {
                Some(d) if d < today => "expired",
                Some(d) if (d - today).whole_days() <= 30 => "soon",
                _ => "",
            },
            shown_to_residents: f.shown_to_residents,
            current: f.replaced_at.is_none(),
            has_thumbnail: f.thumbnail_key.is_some(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/folder.html")]
pub struct FolderPage {
    shell: Shell,
    folder_id: Uuid,
    name: String,
    site_id: Uuid,
    site_name: String,
    access: String,
    archived: bool,
    audiences: Vec<Opt>,
    /// Whom among the site's residents it reaches (the whole site, a building, a unit).
    reach: Vec<Opt>,
    contractors: bool,
    regulator: bool,
    files: Vec<FileRow>,
    can_upload: bool,
    can_update: bool,
    can_archive: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /folders/{id}
pub async fn folder(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let f = folder_for(&mut tx, &member, id, "file.read").await?;
    let files = folders::files(&mut tx, id, true).await?;
    let reach = folders::reach_choices(&mut tx, f.site_id).await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    let access = f.access();
    let reached = match (f.building_id, f.unit_id) {
        (Some(b), _) => format!("building:{b}"),
        (_, Some(u)) => format!("unit:{u}"),
        _ => String::new(),
    };
    let live = f.archived_at.is_none() && !member.read_only();
    Ok(FolderPage {
        shell: Shell::new(&member, "/sites"),
        folder_id: f.id,
        name: f.name.clone(),
        site_id: f.site_id,
        site_name: f.site_name.clone(),
        access: access.summary(),
        archived: f.archived_at.is_some(),
        audiences: ResidentAudience::ALL
            .iter()
            .map(|a| Opt::new(a.as_str(), a.label(), access.residents.as_str()))
            .collect(),
        reach: reach
            .iter()
            .map(|(value, label)| Opt::new(value.as_str(), label.as_str(), &reached))
            .collect(),
        contractors: access.contractors,
        regulator: access.regulator,
        files: files.iter().map(|x| FileRow::new(x, today)).collect(),
        can_upload: live && may(&member, "file.create", placement(&f)),
        can_update: live && may(&member, "file.update", placement(&f)),
        can_archive: !member.read_only() && may(&member, "file.archive", placement(&f)),
        flash,
        problem,
    }
    .into_response())
}

/// POST /folders/{id}: its name and who besides staff may see it.
pub async fn update_folder(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let path = format!("/folders/{id}");
    let v = FormData::parse(&body);
    let Some(residents) = ResidentAudience::parse(v.get("residents")) else {
        return Ok(refused_on(
            &path,
            "Choose which residents may see the folder.",
        ));
    };
    let access = FolderAccess {
        residents,
        contractors: v.get("contractors") == "yes",
        regulator: v.get("regulator") == "yes",
    };
    let (building, unit) = match v.get("reach").split_once(':') {
        None => (None, None),
        Some(("building", b)) => (Some(parse_id(b)?), None),
        Some(("unit", u)) => (None, Some(parse_id(u)?)),
        Some(_) => return Err(WebError::NotFound),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    folder_for(&mut tx, &member, id, "file.update").await?;
    let saved = match folders::update(&mut tx, id, v.get("name"), access).await {
        Ok(()) => folders::set_reach(&mut tx, id, building, unit).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &path,
                &format!("Folder saved. Who can see it: {}.", access.summary()),
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

async fn set_archived(state: &AppState, member: &Member, id: &str, archived: bool) -> Page {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let f = folder_for(&mut tx, member, id, "file.archive").await?;
    let site_path = format!("/sites/{}/documents", f.site_id);
    match folders::set_archived(&mut tx, id, archived).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                &site_path,
                &if archived {
                    format!(
                        "{} archived: its files stay, for staff only; nothing new can be added.",
                        f.name
                    )
                } else {
                    format!("{} restored.", f.name)
                },
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&format!("/folders/{id}"), &message))
        }
    }
}

pub async fn archive_folder(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, true).await
}

pub async fn restore_folder(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    set_archived(&state, &member, &id, false).await
}

fn file_details(v: &FormData) -> Result<FolderFile, String> {
    let expires_on = records::uk_date(v.get("expires_on").trim())
        .map_err(|e| format!("The expiry date: {e}"))?;
    Ok(FolderFile {
        expires_on,
        shown_to_residents: v.get("shown_to_residents") == "yes",
    })
}

/// POST /folders/{id}/files: uploads files into the folder, or (with `replaces`) one new
/// version of a current file.
pub async fn upload(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Page {
    let id = parse_id(&id)?;
    let path = format!("/folders/{id}");
    {
        let mut tx = state.db().begin(&member.ctx()).await?;
        folder_for(&mut tx, &member, id, "file.create").await?;
        tx.commit().await?;
    }
    let posted = match uploads::read(multipart).await {
        Ok(p) => p,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    let details = match file_details(&posted.values) {
        Ok(d) => d,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    let replaces = match posted.values.get("replaces").trim() {
        "" => None,
        r => match Uuid::parse_str(r) {
            Ok(u) => Some(u),
            Err(_) => return Ok(refused_on(&path, "Choose the file to replace again.")),
        },
    };
    // Who sees a file, and which file is current, are changes to the folder's files.
    if details.shown_to_residents || replaces.is_some() {
        let mut tx = state.db().begin(&member.ctx()).await?;
        folder_for(&mut tx, &member, id, "file.update").await?;
        tx.commit().await?;
    }
    let files: Vec<_> = posted.files_in("file").collect();
    if files.is_empty() {
        return Ok(refused_on(&path, "Choose a file to upload."));
    }
    if replaces.is_some() && files.len() > 1 {
        return Ok(refused_on(
            &path,
            "A new version is one file: choose just one.",
        ));
    }
    let stored = match uploads::store(
        &state,
        member.org.id,
        &files,
        MediaType::ALL,
        "document",
        &member.name,
    )
    .await
    {
        Ok(s) => s,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    for f in &stored {
        if let Err(e) = folders::add_file(&mut tx, id, f, &details, replaces, now).await {
            let message = ops_error(e)?;
            drop(tx);
            return Ok(refused_on(&path, &message));
        }
    }
    tx.commit().await?;
    Ok(back_to(
        &path,
        &match (replaces, stored.len()) {
            (Some(_), _) => "New version uploaded; the previous one is kept below it.".to_owned(),
            (None, 1) => "File uploaded.".to_owned(),
            (None, n) => format!("{n} files uploaded."),
        },
    ))
}

/// POST /folder-files/{id}: a current file's expiry date and whether residents see it.
pub async fn update_file(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let file = proplink_db::operations::find_file(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let folder = file.folder_id.ok_or(WebError::NotFound)?;
    let f = folder_for(&mut tx, &member, folder, "file.update").await?;
    let path = format!("/folders/{}", f.id);
    let details = match file_details(&FormData::parse(&body)) {
        Ok(d) => d,
        Err(p) => return Ok(refused_on(&path, &p)),
    };
    match folders::update_file(&mut tx, id, &details).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(&path, "File details saved."))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(&path, &message))
        }
    }
}

/// The largest folder sent as one ZIP: beyond it, download the files one by one.
const MAX_ZIP_BYTES: i64 = 100 * 1024 * 1024;

/// At most this many ZIPs are built at once (each holds its folder in memory).
static ZIPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// GET /folders/{id}/zip: the folder's current files as one ZIP (each download recorded).
pub async fn zip(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let Some(store) = state.settings().files.clone() else {
        return Err(WebError::NotFound);
    };
    let (f, files) = {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let f = folder_for(&mut tx, &member, id, "file.read").await?;
        let files = folders::files(&mut tx, id, false).await?;
        tx.commit().await?;
        (f, files)
    };
    if files.iter().map(|x| x.size_bytes).sum::<i64>() > MAX_ZIP_BYTES {
        return Ok(refused_on(
            &format!("/folders/{id}"),
            "This folder holds more than 100 MB: download its files one by one.",
        ));
    }
    let _permit = ZIPS
        .acquire()
        .await
        .map_err(|_| WebError::Internal("zip semaphore closed".into()))?;
    // Read every file before writing anything, so no transaction waits on storage.
    let mut entries = Vec::with_capacity(files.len());
    let mut names: Vec<String> = Vec::new();
    for file in &files {
        let bytes = store
            .get(&file.object_key)
            .await
            .map_err(|e| WebError::Internal(format!("reading a stored file: {e}")))?;
        entries.push((unique_name(&mut names, &file.original_name), bytes));
    }
    let now = state.now();
    let body = tokio::task::spawn_blocking(move || build_zip(entries, now))
        .await
        .map_err(|e| WebError::Internal(format!("zip: {e}")))??;
    let mut tx = state.db().begin(&member.ctx()).await?;
    for file in &files {
        folders::record_access(&mut tx, file.id, "zip", Some(&f.name), now).await?;
    }
    tx.commit().await?;
    let file_name = safe_name(&format!("{} - {}", f.site_name, f.name));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}.zip\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The entries stored as they are: PDFs and photos are compressed already.
fn build_zip(
    entries: Vec<(String, bytes::Bytes)>,
    now: time::OffsetDateTime,
) -> Result<Vec<u8>, WebError> {
    let modified = zip::DateTime::try_from(time::PrimitiveDateTime::new(now.date(), now.time()))
        .unwrap_or_default();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(modified);
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        out.start_file(name, options)
            .map_err(|e| WebError::Internal(format!("zip: {e}")))?;
        out.write_all(&bytes)
            .map_err(|e| WebError::Internal(format!("zip: {e}")))?;
    }
    Ok(out
        .finish()
        .map_err(|e| WebError::Internal(format!("zip: {e}")))?
        .into_inner())
}

/// Letters, digits, spaces, dots, dashes and underscores; anything else becomes `_`, and a
/// name of only dots becomes "file".
fn safe_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .-_()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim().to_owned();
    if clean.chars().all(|c| c == '.') {
        "file".to_owned()
    } else {
        clean
    }
}

/// A safe name not yet used in the ZIP: "report.pdf", then "report (2).pdf".
fn unique_name(used: &mut Vec<String>, name: &str) -> String {
    let clean = safe_name(name);
    let (stem, ext) = match clean.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (clean.clone(), String::new()),
    };
    let mut candidate = clean.clone();
    let mut n = 2;
    while used.iter().any(|u| u.eq_ignore_ascii_case(&candidate)) {
        candidate = format!("{stem} ({n}){ext}");
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn zip_entries_get_distinct_names() {
        let mut used = Vec::new();
        assert_eq!(unique_name(&mut used, "EICR.pdf"), "EICR.pdf");
        assert_eq!(unique_name(&mut used, "eicr.pdf"), "eicr (2).pdf");
        assert_eq!(unique_name(&mut used, "EICR.pdf"), "EICR (3).pdf");
        assert_eq!(unique_name(&mut used, "../x/plan"), ".._x_plan");
        assert_eq!(unique_name(&mut used, ".."), "file");
        assert_eq!(
            unique_name(&mut used, "C:\\évidence\u{7}.pdf"),
            "C___vidence_.pdf"
        );
    }
}
