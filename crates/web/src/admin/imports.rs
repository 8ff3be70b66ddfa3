//! Settings → Data import (docs-spec §2.20): choose a kind, download its template, upload a
//! CSV, read the preview (rows to create, update and leave alone, or the lines to fix), then
//! confirm. The file is checked by `proplink_domain::import` and written by
//! `proplink_db::import`, all or nothing; large files are committed by the worker while the run
//! page shows progress.
//!
//! Who may import: `data_import.import` (the route table), and a scope of all sites. An import
//! can create or change records on any site named in the file, so a member limited to some
//! sites or estates is refused with a sentence saying why, rather than having the file
//! silently cut down to their scope.

use super::audit_log::when_label;
use super::form::FormData;
use super::records::parse_id;
use super::{Member, Shell};
use crate::error::{ErrorPage, WebError, current_request_id};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::DbError;
use proplink_db::import::{self, ApplyError, ImportRun, Outcome, RevertError, RunError};
use proplink_domain::import::{
    FileError, ImportKind, LineError, MAX_FILE_BYTES, ParsedFile, ParsedImport,
};
use proplink_domain::permissions::Scope;

use time::OffsetDateTime;

type Page = Result<Response, WebError>;

/// How many runs the history lists.
const HISTORY: i64 = 20;

/// How many line problems the error page lists (the rest are counted).
const SHOWN_ERRORS: usize = 200;

/// Files up to this many rows are tried against the stored records (in a savepoint that is
/// rolled back) before the run is recorded, for exact counts and reference errors. Larger ones
/// would keep the upload waiting too long: their references are checked when the import runs,
/// which then stops with nothing imported if a line is wrong.
const PREVIEW_ROWS: usize = 20_000;

/// The largest request body the upload accepts: the largest file plus room for the form.
pub(super) const UPLOAD_BODY_LIMIT: usize = crate::middleware::LARGEST_BODY;

/// Imports touch any site: only a member whose scope is all sites may run them. The refusal
/// (403 with a sentence) for anyone else.
fn refusal(member: &Member) -> Option<Response> {
    if matches!(member.grants.scope, Some(Scope::AllSites)) {
        return None;
    }
    Some(
        (
            StatusCode::FORBIDDEN,
            ErrorPage {
                title: "Imports need access to all sites".to_owned(),
                message: "An import can create or change records on any site, and your access is \
                      limited to some sites or estates. Ask an administrator to run the import, \
                      or to give you access to all sites."
                    .to_owned(),
                reference: current_request_id(),
            },
        )
            .into_response(),
    )
}

fn kind_label(key: &str) -> String {
    ImportKind::from_key(key)
        .map(|k| k.label().to_owned())
        .unwrap_or_else(|| key.to_owned())
}

fn status_label(status: &str) -> &'static str {
    match status {
        "previewed" => "Awaiting confirmation",
        "queued" => "Queued",
        "running" => "Importing",
        "committed" => "Imported",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        "reverted" => "Reverted",
        _ => "Unknown",
    }
}

/// "12 to create, 3 to update, 40 unchanged" (a preview) or "12 created, …" (done).
fn counts_sentence(o: Outcome, done: bool) -> String {
    let (created, updated) = if done {
        ("created", "updated")
    } else {
        ("to create", "to update")
    };
    format!(
        "{} {created}, {} {updated}, {} unchanged",
        o.created, o.updated, o.unchanged
    )
}

fn as_count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The import page: kinds, templates, upload, history

pub struct KindChoice {
    pub key: &'static str,
    pub label: &'static str,
    /// (column, required)
    pub columns: &'static [(&'static str, bool)],
    pub selected: bool,
}

pub struct HistoryRow {
    pub href: String,
    pub kind: String,
    pub file_name: String,
    pub rows: i32,
    /// "12 / 3 / 40", or "—" until the import has run.
    pub counts: String,
    pub status: &'static str,
    pub who: String,
    pub when: String,
}

impl HistoryRow {
    fn new(run: &ImportRun) -> Self {
        Self {
            href: format!("/imports/{}", run.id),
            kind: kind_label(&run.kind),
            file_name: run.file_name.clone(),
            rows: run.row_count,
            counts: if run.status == "committed" {
                format!(
                    "{} / {} / {}",
                    run.created_count, run.updated_count, run.unchanged_count
                )
            } else {
                "—".to_owned()
            },
            status: status_label(&run.status),
            who: run.created_by.clone(),
            when: when_label(run.created_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/index.html")]
struct ImportPage {
    shell: Shell,
    kinds: Vec<KindChoice>,
    file_error: Option<String>,
    history: Vec<HistoryRow>,
}

async fn import_page(
    state: &AppState,
    member: &Member,
    chosen: Option<ImportKind>,
    file_error: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let runs = import::recent_runs(&mut tx, HISTORY).await?;
    tx.commit().await?;
    let chosen = chosen.unwrap_or(ImportKind::Sites);
    let page = ImportPage {
        shell: Shell::new(member, "/settings"),
        kinds: ImportKind::ALL
            .iter()
            .map(|&k| KindChoice {
                key: k.key(),
                label: k.label(),
                columns: k.columns(),
                selected: k == chosen,
            })
            .collect(),
        history: runs.iter().map(HistoryRow::new).collect(),
        file_error,
    };
    let status = if page.file_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, page).into_response())
}

/// GET /imports
pub async fn page(State(state): State<AppState>, Extension(member): Extension<Member>) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    import_page(&state, &member, None, None).await
}

/// GET /imports/template/{kind}: the header row and one example row.
pub async fn template(Extension(member): Extension<Member>, Path(kind): Path<String>) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let kind = ImportKind::from_key(&kind).ok_or(WebError::NotFound)?;
    let disposition = format!("attachment; filename=\"{}\"", kind.template_filename());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        kind.template_csv(),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// The upload

/// What the upload form sent.
struct Upload {
    kind: Option<ImportKind>,
    file_name: String,
    bytes: Vec<u8>,
    /// A file was chosen (a name or some bytes arrived in the file field).
    has_file: bool,
}

const UNREADABLE: &str = "The upload could not be read. Choose the file again.";

fn multipart_problem(e: &MultipartError) -> String {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        FileError::TooLarge.to_string()
    } else {
        UNREADABLE.to_owned()
    }
}

/// Reads the form's `kind` and `file`, stopping as soon as the file is larger than allowed.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, (Option<ImportKind>, String)> {
    let mut upload = Upload {
        kind: None,
        file_name: String::new(),
        bytes: Vec::new(),
        has_file: false,
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err((upload.kind, multipart_problem(&e))),
        };
        match field.name().unwrap_or_default() {
            "kind" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| (upload.kind, multipart_problem(&e)))?;
                upload.kind = ImportKind::from_key(text.trim());
            }
            "file" => {
                upload.file_name = field.file_name().unwrap_or_default().to_owned();
                upload.has_file = !upload.file_name.is_empty();
                let mut field = field;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if upload.bytes.len() + chunk.len() > MAX_FILE_BYTES {
                                return Err((upload.kind, FileError::TooLarge.to_string()));
                            }
                            upload.bytes.extend_from_slice(&chunk);
                            upload.has_file = true;
                        }
                        Ok(None) => break,
                        Err(e) => return Err((upload.kind, multipart_problem(&e))),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(upload)
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/problems.html")]
struct ProblemsPage {
    shell: Shell,
    kind: &'static str,
    file_name: String,
    data_lines: usize,
    /// (line, column, problem), at most [`SHOWN_ERRORS`].
    problems: Vec<(usize, String, String)>,
    total: usize,
}

fn problems_page(
    member: &Member,
    kind: ImportKind,
    file_name: String,
    data_lines: usize,
    mut errors: Vec<LineError>,
) -> Response {
    errors.sort_by_key(|e| e.line);
    let page = ProblemsPage {
        shell: Shell::new(member, "/settings"),
        kind: kind.label(),
        file_name,
        data_lines,
        total: errors.len(),
        problems: errors
            .into_iter()
            .take(SHOWN_ERRORS)
            .map(|e| (e.line, e.column.unwrap_or("—").to_owned(), e.message))
            .collect(),
    };
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// The file's good rows alone, so they can be tried against the stored records while the
/// bad lines are reported: every problem is then found in one upload.
fn good_rows_only(parsed: &ParsedImport) -> ParsedImport {
    fn strip<T: Clone>(f: &ParsedFile<T>) -> ParsedFile<T> {
        ParsedFile {
            rows: f.rows.clone(),
            errors: Vec::new(),
            data_lines: f.data_lines,
        }
    }
    match parsed {
        ParsedImport::Sites(f) => ParsedImport::Sites(strip(f)),
        ParsedImport::Buildings(f) => ParsedImport::Buildings(strip(f)),
        ParsedImport::Units(f) => ParsedImport::Units(strip(f)),
        ParsedImport::Contacts(f) => ParsedImport::Contacts(strip(f)),
        ParsedImport::Leases(f) => ParsedImport::Leases(strip(f)),
    }
}

/// The preview's answer for a file that the database refused as a whole.
fn clash(e: DbError) -> Result<String, WebError> {
    match e {
        DbError::Duplicate { constraint }
        | DbError::Invalid { constraint }
        | DbError::MissingReference { constraint } => Ok(format!(
            "Nothing can be imported: the file clashes with records already stored ({constraint})."
        )),
        other => Err(other.into()),
    }
}

/// POST /imports: check the file; a clean one is recorded as a run awaiting confirmation.
pub async fn upload(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    multipart: Multipart,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let upload = match read_upload(multipart).await {
        Ok(u) => u,
        Err((kind, problem)) => return import_page(&state, &member, kind, Some(problem)).await,
    };
    let Some(kind) = upload.kind else {
        let problem = "Choose what the file holds: sites, buildings, units, contacts or leases.";
        return import_page(&state, &member, None, Some(problem.to_owned())).await;
    };
    if !upload.has_file {
        let problem = "Choose a CSV file to upload.";
        return import_page(&state, &member, Some(kind), Some(problem.to_owned())).await;
    }
    let parsed = match kind.parse_file(&upload.bytes) {
        Ok(p) => p,
        Err(e) => return import_page(&state, &member, Some(kind), Some(e.to_string())).await,
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let rows = parsed.row_count();
    if !parsed.errors().is_empty() {
        let mut errors = parsed.errors().to_vec();
        // The good lines' references too, unless the file is too large to try now.
        if rows <= PREVIEW_ROWS
            && let Err(ApplyError::Lines(more)) =
                import::preview(&mut tx, &good_rows_only(&parsed)).await
        {
            errors.extend(more);
        }
        drop(tx);
        let lines = parsed.data_lines();
        return Ok(problems_page(
            &member,
            kind,
            upload.file_name,
            lines,
            errors,
        ));
    }
    let outcome = if rows <= PREVIEW_ROWS {
        match import::preview(&mut tx, &parsed).await {
            Ok(o) => Some(o),
            Err(ApplyError::Lines(errors)) => {
                drop(tx);
                let lines = parsed.data_lines();
                return Ok(problems_page(
                    &member,
                    kind,
                    upload.file_name,
                    lines,
                    errors,
                ));
            }
            Err(ApplyError::Db(e)) => {
                drop(tx);
                let problem = clash(e)?;
                return import_page(&state, &member, Some(kind), Some(problem)).await;
            }
        }
    } else {
        None
    };
    let id = import::record_run(
        &mut tx,
        kind,
        &upload.file_name,
        &upload.bytes,
        rows,
        &member.name,
    )
    .await?;
    tx.commit().await?;
    // The preview's counts travel with the redirect: nothing stores them until the import runs.
    let to = match outcome {
        Some(o) => format!(
            "/imports/{id}?created={}&updated={}&unchanged={}",
            o.created, o.updated, o.unchanged
        ),
        None => format!("/imports/{id}"),
    };
    Ok(Redirect::to(&to).into_response())
}

// ---------------------------------------------------------------------------------------------
// A run: preview, progress, outcome

/// What the run page and its progress fragment show.
pub struct RunView {
    pub id: String,
    pub kind: String,
    pub file_name: String,
    pub status: String,
    pub status_label: &'static str,
    pub rows: i32,
    pub processed: i32,
    /// Whole per cent, for people reading the bar.
    pub percent: i32,
    pub counts: String,
    pub error: Option<String>,
    pub who: String,
    pub when: String,
    pub finished: Option<String>,
    /// Committed, and finished within the last [`import::REVERT_DAYS`] days.
    pub revertible: bool,
}

impl RunView {
    fn new(run: &ImportRun) -> Self {
        let rows = run.row_count.max(0);
        let processed = run.processed_rows.clamp(0, rows);
        Self {
            id: run.id.to_string(),
            kind: kind_label(&run.kind),
            file_name: run.file_name.clone(),
            status: run.status.clone(),
            status_label: status_label(&run.status),
            rows,
            processed,
            percent: if rows == 0 {
                0
            } else {
                i32::try_from(i64::from(processed) * 100 / i64::from(rows)).unwrap_or(100)
            },
            counts: counts_sentence(
                Outcome {
                    created: as_count(run.created_count),
                    updated: as_count(run.updated_count),
                    unchanged: as_count(run.unchanged_count),
                },
                true,
            ),
            error: run.error.clone(),
            who: run.created_by.clone(),
            when: when_label(run.created_at),
            finished: run.finished_at.map(when_label),
            revertible: run.status == "committed"
                && run.finished_at.is_some_and(|at| {
                    OffsetDateTime::now_utc() - at < time::Duration::days(import::REVERT_DAYS)
                }),
        }
    }

    /// Queued or running: the page keeps asking for progress.
    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/run.html")]
struct RunPage {
    shell: Shell,
    run: RunView,
    /// The preview's counts, when they came with the redirect from the upload.
    preview: Option<String>,
    problem: Option<String>,
    may_change: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/progress.html")]
struct ProgressFragment {
    run: RunView,
}

/// The preview's counts from the query string, if all three are there.
fn preview_counts(query: &FormData) -> Option<Outcome> {
    let n = |k: &str| query.get(k).parse::<usize>().ok();
    Some(Outcome {
        created: n("created")?,
        updated: n("updated")?,
        unchanged: n("unchanged")?,
    })
}

fn run_page(
    member: &Member,
    run: &ImportRun,
    preview: Option<Outcome>,
    problem: Option<String>,
) -> RunPage {
    RunPage {
        shell: Shell::new(member, "/settings"),
        run: RunView::new(run),
        preview: preview
            .filter(|_| run.status == "previewed")
            .map(|o| counts_sentence(o, false)),
        problem,
        may_change: !member.read_only(),
    }
}

async fn load_run(state: &AppState, member: &Member, id: &str) -> Result<ImportRun, WebError> {
    let id = parse_id(id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let run = import::run(&mut tx, id).await?;
    tx.commit().await?;
    run.ok_or(WebError::NotFound)
}

/// GET /imports/{id}
pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let run = load_run(&state, &member, &id).await?;
    let query = FormData::parse(query.unwrap_or_default().as_bytes());
    Ok(run_page(&member, &run, preview_counts(&query), None).into_response())
}

/// GET /imports/{id}/file: the file exactly as it was uploaded, under its own name.
pub async fn original_file(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let file = import::original_file(&mut tx, id).await?;
    tx.commit().await?;
    let (name, bytes) = file.ok_or(WebError::NotFound)?;
    // The name came from the uploader's machine: only safe characters reach the header.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// GET /imports/{id}/progress: the status part of the run page, which htmx swaps in every
/// second while the import is queued or running (the finished fragment stops asking).
pub async fn progress(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let run = load_run(&state, &member, &id).await?;
    Ok(ProgressFragment {
        run: RunView::new(&run),
    }
    .into_response())
}

/// POST /imports/{id}/confirm: a small file is imported now; a large one is queued.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    match import::confirm(&mut tx, id).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/imports/{id}")).into_response())
        }
        Err(RunError::NotPending) => {
            let run = import::run(&mut tx, id).await?.ok_or(WebError::NotFound)?;
            tx.commit().await?;
            let page = run_page(&member, &run, None, Some(RunError::NotPending.to_string()));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(RunError::Db(e)) => Err(e.into()),
    }
}

/// POST /imports/{id}/revert: undoes a committed import from its audit events, or says why
/// not and changes nothing.
pub async fn revert(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    match import::revert(&mut tx, id).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/imports/{id}")).into_response())
        }
        Err(RevertError::Db(e)) => Err(e.into()),
        Err(refused) => {
            drop(tx);
            let run = load_run(&state, &member, &id.to_string()).await?;
            let page = run_page(&member, &run, None, Some(refused.to_string()));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}

/// POST /imports/{id}/cancel: a run awaiting confirmation is dropped (nothing was written).
pub async fn cancel(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    if let Some(refused) = refusal(&member) {
        return Ok(refused);
    }
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let run = import::run(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    if import::cancel(&mut tx, id).await? {
        tx.commit().await?;
        return Ok(Redirect::to(&format!("/imports/{id}")).into_response());
    }
    tx.commit().await?;
    let page = run_page(&member, &run, None, Some(RunError::NotPending.to_string()));
    Ok((StatusCode::CONFLICT, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_a_preview_or_an_outcome() {
        let o = Outcome {
            created: 12,
            updated: 3,
            unchanged: 40,
        };
        assert_eq!(
            counts_sentence(o, false),
            "12 to create, 3 to update, 40 unchanged"
        );
        assert_eq!(
            counts_sentence(o, true),
            "12 created, 3 updated, 40 unchanged"
        );
    }

    #[test]
    fn preview_counts_need_all_three_numbers() {
        let q = FormData::parse(b"created=1&updated=2&unchanged=3");
        assert_eq!(
            preview_counts(&q),
            Some(Outcome {
                created: 1,
                updated: 2,
                unchanged: 3
            })
        );
        assert_eq!(
            preview_counts(&FormData::parse(b"created=1&updated=x")),
            None
        );
    }
}
