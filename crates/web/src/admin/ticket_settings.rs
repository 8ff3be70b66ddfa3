//! Settings → Tickets (docs-spec §2.7): categories with their defaults and service-level
//! overrides, and routing rules in order. Everyone who can read settings sees the page;
//! changing it needs "Update organisation settings".

use super::form::FormData;
use super::operations::{back_to, flash_of, ops_error, query_of, refused_on};
use super::records::Opt;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::ticket_settings::{self as ts, CategorySettings, RuleInput, TicketCategory};
use proplink_domain::sla::{Priority, SlaSpan};
use uuid::Uuid;

const PATH: &str = "/settings/tickets";
const EDIT: &str = "settings.update_organisation";

type Page = Result<Response, WebError>;

pub struct CategoryView {
    pub key: String,
    pub name: String,
    pub standard: bool,
    pub archived: bool,
    pub summary: String,
    pub priorities: Vec<Opt>,
    pub assignees: Vec<Opt>,
    pub response: String,
    pub resolution: String,
    pub on_residenceport: bool,
}

pub struct RuleView {
    pub id: Uuid,
    pub when: String,
    pub then: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/ticket_settings.html")]
pub struct TicketSettingsPage {
    shell: Shell,
    categories: Vec<CategoryView>,
    rules: Vec<RuleView>,
    sites: Vec<Opt>,
    category_options: Vec<Opt>,
    people: Vec<Opt>,
    priorities: Vec<Opt>,
    editable: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// "4h" or "3d" for the form; blank for none.
fn span_text(s: Option<SlaSpan>) -> String {
    match s {
        Some(SlaSpan::Hours(h)) => format!("{h}h"),
        Some(SlaSpan::WorkingDays(d)) => format!("{d}d"),
        None => String::new(),
    }
}

/// Reads "4h" (clock hours, 1–720) or "3d" (working days, 1–250); blank is none.
fn parse_span(text: &str, what: &str) -> Result<Option<SlaSpan>, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || format!("The {what}: write hours like 4h or working days like 3d.");
    let Some((last, _)) = t.char_indices().last() else {
        return Ok(None);
    };
    let (number, unit) = t.split_at(last);
    let n: u32 = number.trim().parse().map_err(|_| bad())?;
    match unit {
        "h" if (1..=720).contains(&n) => Ok(Some(SlaSpan::Hours(n))),
        "d" if (1..=250).contains(&n) => Ok(Some(SlaSpan::WorkingDays(n))),
        "h" => Err(format!("The {what}: between 1 and 720 hours.")),
        "d" => Err(format!("The {what}: between 1 and 250 working days.")),
        _ => Err(bad()),
    }
}

fn summary(c: &TicketCategory) -> String {
    let mut parts = Vec::new();
    if let Some(p) = c.default_priority {
        parts.push(format!("{} priority", p.label()));
    }
    if let Some(a) = &c.default_assignee_name {
        parts.push(format!("to {a}"));
    }
    if let Some(r) = c.response {
        parts.push(format!("reply within {}", r.label()));
    }
    if let Some(r) = c.resolution {
        parts.push(format!("resolve within {}", r.label()));
    }
    parts.push(
        if c.on_residenceport {
            "offered on ResidencePort"
        } else {
            "staff only"
        }
        .to_owned(),
    );
    parts.join("; ")
}

/// GET /settings/tickets
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let categories = ts::categories(&mut tx, true).await?;
    let rules = ts::rules(&mut tx).await?;
    let people = proplink_db::tickets::assignees(&mut tx).await?;
    let sites =
        proplink_db::operations::site_choices(&mut tx, &super::records::site_scope(&member))
            .await?;
    tx.commit().await?;
    let name_of = |key: &str| {
        categories
            .iter()
            .find(|c| c.key == key)
            .map_or_else(|| key.to_owned(), |c| c.name.clone())
    };
    let people_opts = |chosen: &str| -> Vec<Opt> {
        std::iter::once(Opt::new("", "Nobody (duty officer picks up)", chosen))
            .chain(
                people
                    .iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n.clone(), chosen)),
            )
            .collect()
    };
    let priority_opts = |chosen: &str, blank: &str| -> Vec<Opt> {
        std::iter::once(Opt::new("", blank, chosen))
            .chain(
                Priority::ALL
                    .iter()
                    .map(|p| Opt::new(p.as_str(), p.label(), chosen)),
            )
            .collect()
    };
    let (flash, problem) = flash_of(&query);
    Ok(TicketSettingsPage {
        shell: Shell::new(&member, "/settings"),
        categories: categories
            .iter()
            .map(|c| CategoryView {
                key: c.key.clone(),
                name: c.name.clone(),
                standard: c.standard,
                archived: c.archived,
                summary: summary(c),
                priorities: priority_opts(
                    c.default_priority.map_or("", Priority::as_str),
                    "Medium unless chosen",
                ),
                assignees: people_opts(
                    &c.default_assignee_id
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                ),
                response: span_text(c.response),
                resolution: span_text(c.resolution),
                on_residenceport: c.on_residenceport,
            })
            .collect(),
        rules: rules
            .iter()
            .map(|r| {
                let mut when = Vec::new();
                if let Some(s) = &r.site_name {
                    when.push(format!("site is {s}"));
                }
                if let Some(c) = &r.category {
                    when.push(format!("category is {}", name_of(c)));
                }
                if let Some(d) = &r.sender_domain {
                    when.push(format!("sender is @{d}"));
                }
                if let Some(w) = &r.subject_keyword {
                    when.push(format!("subject contains “{w}”"));
                }
                let mut then = Vec::new();
                if let Some(a) = &r.assign_to_name {
                    then.push(format!("assign to {a}"));
                }
                if let Some(p) = r.set_priority.as_deref().and_then(Priority::from_key) {
                    then.push(format!("set priority {}", p.label()));
                }
                RuleView {
                    id: r.id,
                    when: when.join(" and "),
                    then: then.join(", "),
                }
            })
            .collect(),
        sites: std::iter::once(Opt::new("", "Any site", ""))
            .chain(
                sites
                    .into_iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n, "")),
            )
            .collect(),
        category_options: std::iter::once(Opt::new("", "Any category", ""))
            .chain(
                categories
                    .iter()
                    .filter(|c| !c.archived)
                    .map(|c| Opt::new(c.key.clone(), c.name.clone(), "")),
            )
            .collect(),
        people: std::iter::once(Opt::new("", "Do not assign", ""))
            .chain(
                people
                    .iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n.clone(), "")),
            )
            .collect(),
        priorities: priority_opts("", "Leave the priority"),
        editable: member.can(EDIT) && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

fn may_edit(member: &Member) -> Result<(), WebError> {
    if member.read_only() {
        return Err(WebError::Forbidden);
    }
    member.require_action(EDIT)
}

fn opt_uuid(v: &FormData, key: &str, what: &str) -> Result<Option<Uuid>, String> {
    match v.get(key).trim() {
        "" => Ok(None),
        t => Uuid::parse_str(t)
            .map(Some)
            .map_err(|_| format!("Choose the {what} again.")),
    }
}

fn opt_priority(v: &FormData, key: &str) -> Result<Option<Priority>, String> {
    match v.get(key) {
        "" => Ok(None),
        p => Priority::from_key(p)
            .map(Some)
            .ok_or_else(|| "Choose a priority from the list.".to_owned()),
    }
}

/// Runs a change and answers with the page again, saying what happened.
async fn change<F>(state: &AppState, member: &Member, done: &str, f: F) -> Page
where
    F: AsyncFnOnce(&mut proplink_db::TenantTx) -> Result<(), proplink_db::operations::OpsError>,
{
    may_edit(member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    match f(&mut tx).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(PATH, done))
        }
        Err(e) => {
            let message = ops_error(e)?;
            drop(tx);
            Ok(refused_on(PATH, &message))
        }
    }
}

/// POST /settings/tickets/categories/{key}
pub async fn save_category(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
    body: Bytes,
) -> Page {
    may_edit(&member)?;
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<CategorySettings, String> {
        Ok(CategorySettings {
            name: v.get("name").to_owned(),
            default_priority: opt_priority(&v, "default_priority")?,
            default_assignee_id: opt_uuid(&v, "default_assignee", "default assignee")?,
            response: parse_span(v.get("response"), "first-response target")?,
            resolution: parse_span(v.get("resolution"), "resolution target")?,
            on_residenceport: v.get("on_residenceport") == "yes",
        })
    })();
    let settings = match parsed {
        Ok(s) => s,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    let done = format!("Saved the {} category.", settings.name.trim());
    change(&state, &member, &done, async |tx| {
        ts::save_category(tx, &key, &settings).await
    })
    .await
}

/// POST /settings/tickets/categories
pub async fn add_category(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let name = v.get("name").trim().to_owned();
    change(
        &state,
        &member,
        &format!("Added the {name} category."),
        async |tx| ts::add_category(tx, &name).await.map(|_| ()),
    )
    .await
}

/// POST /settings/tickets/categories/{key}/archive and …/restore
pub async fn archive_category(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
) -> Page {
    change(
        &state,
        &member,
        "Category archived: no new tickets can use it.",
        async |tx| ts::set_archived(tx, &key, true).await,
    )
    .await
}

pub async fn restore_category(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(key): Path<String>,
) -> Page {
    change(&state, &member, "Category restored.", async |tx| {
        ts::set_archived(tx, &key, false).await
    })
    .await
}

/// POST /settings/tickets/rules
pub async fn add_rule(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    may_edit(&member)?;
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<RuleInput, String> {
        let text = |k: &str| Some(v.get(k).trim().to_owned()).filter(|s| !s.is_empty());
        Ok(RuleInput {
            site_id: opt_uuid(&v, "site", "site")?,
            category: text("category"),
            sender_domain: text("sender_domain"),
            subject_keyword: text("subject_keyword"),
            assign_to_id: opt_uuid(&v, "assign_to", "member of staff")?,
            set_priority: opt_priority(&v, "set_priority")?,
        })
    })();
    let rule = match parsed {
        Ok(r) => r,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    change(
        &state,
        &member,
        "Routing rule added at the end of the list.",
        async |tx| ts::add_rule(tx, &rule).await.map(|_| ()),
    )
    .await
}

fn rule_id(id: &str) -> Result<Uuid, WebError> {
    Uuid::parse_str(id).map_err(|_| WebError::NotFound)
}

/// POST /settings/tickets/rules/{id}/delete, …/up, …/down
pub async fn delete_rule(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = rule_id(&id)?;
    change(&state, &member, "Routing rule deleted.", async |tx| {
        ts::delete_rule(tx, id).await
    })
    .await
}

pub async fn rule_up(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = rule_id(&id)?;
    change(&state, &member, "Routing rule moved up.", async |tx| {
        ts::move_rule(tx, id, true).await
    })
    .await
}

pub async fn rule_down(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = rule_id(&id)?;
    change(&state, &member, "Routing rule moved down.", async |tx| {
        ts::move_rule(tx, id, false).await
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn service_level_overrides_read_hours_or_working_days() {
        assert_eq!(parse_span(" 4h ", "x").unwrap(), Some(SlaSpan::Hours(4)));
        assert_eq!(
            parse_span("20D", "x").unwrap(),
            Some(SlaSpan::WorkingDays(20))
        );
        assert_eq!(parse_span("", "x").unwrap(), None);
        for bad in ["0h", "721h", "251d", "4w", "h", "-3d", "x4h", "é"] {
            assert!(parse_span(bad, "x").is_err(), "{bad}");
        }
        assert_eq!(span_text(Some(SlaSpan::WorkingDays(3))), "3d");
    }
}
