//! Settings → Vendor service categories (docs-spec §2.7): the 13 standard categories with the
//! documents each requires, extra documents an organisation adds to them, and the
//! organisation's own categories. Everyone who can read settings sees the page; changing it
//! needs "Update organisation settings".

use super::form::FormData;
use super::operations::{back_to, flash_of, ops_error, query_of, refused_on};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::service_categories;
use proplink_domain::operations::DocumentType;

const PATH: &str = "/settings/service-categories";
const EDIT: &str = "settings.update_organisation";

type Page = Result<Response, WebError>;

pub struct DocumentChoice {
    pub key: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

pub struct CategoryView {
    pub key: String,
    pub name: String,
    pub standard: bool,
    pub archived: bool,
    pub requires: String,
    /// For a standard category: what it always requires; for the organisation's own: nothing.
    pub always: String,
    /// The documents that can be ticked: the extras of a standard one, all of one's own.
    pub choices: Vec<DocumentChoice>,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/service_categories.html")]
pub struct CategoriesPage {
    shell: Shell,
    rows: Vec<CategoryView>,
    new_choices: Vec<DocumentChoice>,
    editable: bool,
    flash: Option<String>,
    problem: Option<String>,
}

fn choices(ticked: &[DocumentType]) -> Vec<DocumentChoice> {
    DocumentType::ALL
        .iter()
        .map(|d| DocumentChoice {
            key: d.as_str(),
            label: d.label(),
            checked: ticked.contains(d),
        })
        .collect()
}

/// GET /settings/service-categories
pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let all = service_categories::all(&mut tx, true).await?;
    tx.commit().await?;
    let rows = all
        .into_iter()
        .map(|c| {
            let (always, ticked) = match c.standard {
                Some(t) => {
                    let own = t.required_documents();
                    let extra: Vec<DocumentType> = c
                        .requirements
                        .iter()
                        .skip(own.len())
                        .flatten()
                        .copied()
                        .collect();
                    let always = own
                        .iter()
                        .map(|kinds| {
                            kinds
                                .iter()
                                .map(|k| k.label())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    (always, extra)
                }
                None => (
                    String::new(),
                    c.requirements.iter().flatten().copied().collect(),
                ),
            };
            CategoryView {
                requires: c.requirement_text(),
                standard: c.standard.is_some(),
                archived: c.archived,
                choices: choices(&ticked),
                key: c.key,
                name: c.name,
                always,
            }
        })
        .collect();
    let (flash, problem) = flash_of(&query);
    Ok(CategoriesPage {
        shell: Shell::new(&member, "/settings"),
        rows,
        new_choices: choices(&[DocumentType::PublicLiability]),
        editable: member.can(EDIT) && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

/// The ticked documents; any unknown key is refused rather than ignored.
fn ticked(v: &FormData) -> Result<Vec<DocumentType>, String> {
    v.all("document")
        .map(|k| {
            DocumentType::parse(k).ok_or_else(|| "Choose the documents from the list.".to_owned())
        })
        .collect()
}

fn may_edit(member: &Member) -> Result<(), WebError> {
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    member.require_action(EDIT)
}

/// POST /settings/service-categories: adds one of the organisation's own.
pub async fn add(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    may_edit(&member)?;
    let v = FormData::parse(&body);
    let required = match ticked(&v) {
        Ok(r) => r,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match service_categories::add(&mut tx, v.get("name"), &required).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(
                PATH,
                &format!("Added the {} category.", v.get("name").trim()),
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(PATH, &message))
        }
    }
}

/// POST /settings/service-categories/{key}: the documents it requires.
pub async fn save(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
    body: Bytes,
) -> Page {
    may_edit(&member)?;
    let v = FormData::parse(&body);
    let required = match ticked(&v) {
        Ok(r) => r,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match service_categories::set_requirements(&mut tx, &key, &required).await {
        Ok(()) => {
            let name = service_categories::name_of(&mut tx, &key).await?;
            tx.commit().await?;
            Ok(back_to(PATH, &format!("Saved the {name} category.")))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(PATH, &message))
        }
    }
}

async fn set_archived(state: &AppState, member: &Member, key: &str, archived: bool) -> Page {
    may_edit(member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    match service_categories::set_archived(&mut tx, key, archived).await {
        Ok(planned) => {
            let name = service_categories::name_of(&mut tx, key).await?;
            tx.commit().await?;
            Ok(back_to(
                PATH,
                &match (archived, planned) {
                    (false, _) => format!("Restored {name}."),
                    (true, 0) => format!("Archived {name}: it is no longer offered for new work."),
                    (true, n) => format!(
                        "Archived {name}: it is no longer offered for new work. {n} planned maintenance event{} still raise{} work orders in it.",
                        if n == 1 { "" } else { "s" },
                        if n == 1 { "s" } else { "" }
                    ),
                },
            ))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(PATH, &message))
        }
    }
}

/// POST /settings/service-categories/{key}/archive
pub async fn archive(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
) -> Page {
    set_archived(&state, &member, &key, true).await
}

/// POST /settings/service-categories/{key}/restore
pub async fn restore(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
) -> Page {
    set_archived(&state, &member, &key, false).await
}
