//! The search box in the header: contacts, units, sites, buildings and vendors, best match
//! first, within the organisation (row-level security) and the member's site scope, and only
//! the kinds of record the member's role may read. `/search/live` answers htmx with the
//! results alone, as the person types.

use super::records::site_scope;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::search::{self, SearchHit};

type Page = Result<Response, WebError>;

/// (kind, permission to read it, heading, path prefix), in the order results are grouped.
const KINDS: [(&str, &str, &str, &str); 5] = [
    ("contact", "contact.read", "Contacts", "/contacts"),
    ("unit", "unit.read", "Units", "/units"),
    ("site", "site.read", "Sites", "/sites"),
    ("building", "building.read", "Buildings", "/buildings"),
    ("vendor", "vendor.read", "Vendors", "/vendors"),
];

pub struct Hit {
    href: String,
    title: String,
    detail: String,
}

pub struct Group {
    heading: &'static str,
    hits: Vec<Hit>,
}

/// The member's results for `q`, grouped by kind (best group first by its best hit).
async fn find(
    state: &AppState,
    member: &Member,
    q: &str,
    limit: i64,
) -> Result<Vec<Group>, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let hits = search::search(&mut tx, &site_scope(member), q, limit).await?;
    tx.commit().await?;
    Ok(group(hits, |key| member.can(key)))
}

fn group(hits: Vec<SearchHit>, can: impl Fn(&str) -> bool) -> Vec<Group> {
    let mut groups: Vec<(usize, Group)> = Vec::new();
    for (rank, hit) in hits.into_iter().enumerate() {
        let Some((_, permission, heading, prefix)) = KINDS.iter().find(|k| k.0 == hit.kind) else {
            continue;
        };
        if !can(permission) {
            continue;
        }
        let entry = Hit {
            href: format!("{prefix}/{}", hit.id),
            title: hit.title,
            detail: hit.detail,
        };
        match groups.iter_mut().find(|(_, g)| g.heading == *heading) {
            Some((_, g)) => g.hits.push(entry),
            None => groups.push((
                rank,
                Group {
                    heading,
                    hits: vec![entry],
                },
            )),
        }
    }
    groups.sort_by_key(|(rank, _)| *rank);
    groups.into_iter().map(|(_, g)| g).collect()
}

fn query_text(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().chars().take(search::MAX_QUERY_CHARS).collect())
        .unwrap_or_default()
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
struct SearchPage {
    shell: Shell,
    q: String,
    groups: Vec<Group>,
}

/// GET /search?q= (any member; what they find is limited by role and scope).
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let q = query_text(query.as_deref());
    let groups = find(&state, &member, &q, 50).await?;
    let mut shell = Shell::new(&member, "/search");
    shell.search = q.clone();
    Ok(SearchPage { shell, q, groups }.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "search_results.html")]
struct ResultsPartial {
    q: String,
    groups: Vec<Group>,
}

/// GET /search/live?q= : the results list alone, for htmx.
pub async fn live(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(query): RawQuery,
) -> Page {
    let q = query_text(query.as_deref());
    let groups = find(&state, &member, &q, 8).await?;
    Ok(ResultsPartial { q, groups }.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn hit(kind: &str, title: &str) -> SearchHit {
        SearchHit {
            id: Uuid::nil(),
            kind: kind.into(),
            site_id: None,
            title: title.into(),
            detail: String::new(),
            score: 1.0,
        }
    }

    #[test]
    fn hits_are_grouped_by_kind_and_unreadable_kinds_left_out() {
        let groups = group(
            vec![
                hit("unit", "Flat 1"),
                hit("contact", "Jo Smith"),
                hit("unit", "Flat 2"),
                hit("vendor", "Sparks"),
            ],
            |key| key != "vendor.read",
        );
        let headings: Vec<&str> = groups.iter().map(|g| g.heading).collect();
        assert_eq!(headings, ["Units", "Contacts"]);
        assert_eq!(groups[0].hits.len(), 2);
        assert_eq!(groups[0].hits[0].href, format!("/units/{}", Uuid::nil()));
    }
}
