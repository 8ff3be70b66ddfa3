//! The dashboard and the module landing pages.

use super::{MODULE_PAGES, Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use proplink_db::access::{self, Place};
use proplink_db::organisation::Organisation;
use proplink_domain::authorize::{Decision, Placement};
use proplink_domain::permissions::Permission;

/// `/`: the dashboard for a signed-in member, otherwise the login host.
pub async fn root(
    State(state): State<AppState>,
    Extension(org): Extension<Organisation>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    Ok(match super::load_member(&state, &org, &headers).await? {
        Some(_) => Redirect::to("/dashboard").into_response(),
        None => {
            Redirect::to(&state.settings().url(&state.settings().login_host(), "/")).into_response()
        }
    })
}

/// The sites this member's scope reaches (and that they may read).
fn in_scope<'a>(
    sites: impl IntoIterator<Item = &'a Place>,
    member: &Member,
) -> Result<Vec<Place>, WebError> {
    let read = Permission::parse("site.read")
        .ok_or_else(|| WebError::Internal("site.read is not in the catalogue".into()))?;
    Ok(sites
        .into_iter()
        .filter(|s| {
            member.grants.decide(
                &read,
                Placement::Site {
                    site: s.id,
                    estate: s.estate_id,
                },
            ) == Decision::Allowed
        })
        .cloned()
        .collect())
}

pub struct RecentRow {
    when: String,
    sentence: String,
    record: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage {
    shell: Shell,
    first_name: String,
    sites: Vec<Place>,
    estates: usize,
    members: Option<(usize, usize)>,
    recent: Option<Vec<RecentRow>>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Result<Response, WebError> {
    // The first person into a new organisation sets it up before anything else.
    if !member.setup_done && member.can("settings.update_organisation") && !member.read_only() {
        return Ok(Redirect::to("/setup").into_response());
    }
    let reads_audit = member.can("audit.read");
    let facts =
        access::live_dashboard_facts(state.db(), &member.ctx(), if reads_audit { 8 } else { 0 })
            .await?;
    let sites = in_scope(&facts.sites, &member)?;
    let counts = facts.counts;
    let estates = usize::try_from(counts.estates).unwrap_or(0);
    let members = member.can("user.read").then(|| {
        (
            usize::try_from(counts.active_members).unwrap_or(0),
            usize::try_from(counts.invited_members).unwrap_or(0),
        )
    });
    let recent = reads_audit.then(|| {
        facts
            .recent
            .iter()
            .map(|e| RecentRow {
                when: proplink_domain::dates::long_date_time(
                    e.occurred_at,
                    proplink_domain::dates::uk_offset(e.occurred_at),
                ),
                sentence: e.sentence(),
                record: e.table_name.replace('_', " "),
            })
            .collect()
    });
    Ok(DashboardPage {
        shell: Shell::new(&member, "/dashboard"),
        first_name: member
            .name
            .split_whitespace()
            .next()
            .unwrap_or(&member.name)
            .to_owned(),
        sites,
        estates,
        members,
        recent,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/module.html")]
pub struct ModulePage {
    shell: Shell,
    title: &'static str,
    sites: Vec<Place>,
}

/// A module's landing page: the sites in the member's scope. 404 when the organisation has the
/// module switched off.
pub async fn module_page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    OriginalUri(uri): OriginalUri,
) -> Result<ModulePage, WebError> {
    let path = uri.path();
    let (key, href, _) = MODULE_PAGES
        .iter()
        .find(|(_, href, _)| *href == path)
        .ok_or(WebError::NotFound)?;
    if !member.modules.iter().any(|m| m == key) {
        return Err(WebError::NotFound);
    }
    let title = proplink_db::profile::MODULES
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, name)| *name)
        .unwrap_or("Module");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let sites = in_scope(&access::sites(&mut tx).await?, &member)?;
    tx.end_reading();
    Ok(ModulePage {
        shell: Shell::new(&member, href),
        title,
        sites,
    })
}
