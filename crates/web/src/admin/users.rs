//! Settings → Users and access: members, invitations (single and bulk from CSV), role and
//! scope changes, deactivation and reactivation, and an administrator's reset of someone's
//! password and second factor. Every change is written as the acting member, so the audit log
//! says who did it.

use super::form::FormData;
use super::{Member, Shell};
use crate::error::WebError;
use crate::login::{event_for, send_reset_link};
use crate::session::Client;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proplink_auth::links::new_token;
use proplink_db::access::{
    self, CustomRole, MemberRow, MembershipChangeError, NewInvitation, Place, RoleChoice,
};
use proplink_db::{TenantTx, audit, staff};
use proplink_domain::EmailAddress;
use proplink_domain::bulk_invite::{self, Lookup};
use proplink_domain::dates::{long_date_time, uk_offset};
use proplink_domain::permissions::{BuiltInRole, Permission, Scope};
use proplink_domain::uk::format_pence;
use serde::Deserialize;
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

fn uk_time(t: OffsetDateTime) -> String {
    long_date_time(t, uk_offset(t))
}

/// Roles a member can be given here: the built-in ones except Organisation Owner (there is
/// one, set when the organisation is created), and the live custom roles.
pub struct RoleOption {
    value: String,
    label: String,
}

/// Only roles whose permissions the acting member holds too: nobody hands out more access
/// than they have.
fn role_options(custom: &[CustomRole], actor: &Member) -> Vec<RoleOption> {
    let mine = &actor.grants.permissions;
    BuiltInRole::ALL
        .iter()
        .filter(|r| **r != BuiltInRole::OrganisationOwner)
        .filter(|r| r.permissions().is_subset(mine))
        .map(|r| RoleOption {
            value: r.key().to_owned(),
            label: r.name().to_owned(),
        })
        .chain(
            custom
                .iter()
                .filter(|r| r.archived_at.is_none())
                .filter(|r| {
                    r.permissions
                        .iter()
                        .all(|k| Permission::parse(k).is_some_and(|p| mine.contains(&p)))
                })
                .map(|r| RoleOption {
                    value: RoleChoice::Custom(r.id).form_value(),
                    label: format!("{} (custom)", r.name),
                }),
        )
        .collect()
}

/// What the role and scope pickers need.
pub struct AccessChoices {
    roles: Vec<RoleOption>,
    sites: Vec<Place>,
    estates: Vec<Place>,
    /// The actor may give "all sites" (their own scope is all sites).
    all_sites: bool,
}

/// The roles, sites and estates `actor` may give: within their own role and scope.
async fn access_choices(tx: &mut TenantTx, actor: &Member) -> Result<AccessChoices, WebError> {
    let sites = access::sites(tx).await?;
    let estates = access::estates(tx).await?;
    let (sites, estates, all_sites) = match &actor.grants.scope {
        Some(Scope::AllSites) => (sites, estates, true),
        Some(Scope::Sites(mine)) => (
            sites.into_iter().filter(|s| mine.contains(&s.id)).collect(),
            vec![],
            false,
        ),
        Some(Scope::Estates(mine)) => (
            sites
                .into_iter()
                .filter(|s| s.estate_id.is_some_and(|e| mine.contains(&e)))
                .collect(),
            estates
                .into_iter()
                .filter(|e| mine.contains(&e.id))
                .collect(),
            false,
        ),
        None => (vec![], vec![], false),
    };
    Ok(AccessChoices {
        roles: role_options(&access::custom_roles(tx).await?, actor),
        sites,
        estates,
        all_sites,
    })
}

/// Does `actor` hold at least everything `target` may do? Only then may they change,
/// deactivate or reset the target (a Manager cannot demote or lock out an Administrator).
fn covers(actor: &Member, target: &proplink_domain::authorize::Grants) -> bool {
    let scope_ok = match (&actor.grants.scope, &target.scope) {
        (Some(Scope::AllSites), _) | (_, None) => true,
        (Some(Scope::Sites(a)), Some(Scope::Sites(t))) => t.is_subset(a),
        (Some(Scope::Estates(a)), Some(Scope::Estates(t))) => t.is_subset(a),
        _ => false,
    };
    scope_ok && target.permissions.is_subset(&actor.grants.permissions)
}

/// The values of a role-and-scope form, as typed (kept when the form comes back with errors).
#[derive(Debug, Clone, Default)]
pub struct AccessForm {
    role: String,
    scope: String,
    sites: BTreeSet<String>,
    estates: BTreeSet<String>,
}

impl AccessForm {
    fn from_form(form: &FormData) -> Self {
        Self {
            role: form.get("role").to_owned(),
            scope: form.get("scope").to_owned(),
            sites: form.all("site").map(str::to_owned).collect(),
            estates: form.all("estate").map(str::to_owned).collect(),
        }
    }

    fn from_member(m: &MemberRow, site_ids: &[Uuid], estate_ids: &[Uuid]) -> Self {
        Self {
            role: m.role().map(|r| r.form_value()).unwrap_or_default(),
            scope: m.scope.clone().unwrap_or_default(),
            sites: site_ids.iter().map(Uuid::to_string).collect(),
            estates: estate_ids.iter().map(Uuid::to_string).collect(),
        }
    }

    /// The role and scope, or what is wrong with them (one sentence per problem).
    fn parse(&self, choices: &AccessChoices) -> Result<(RoleChoice, Scope), Vec<String>> {
        let mut problems = vec![];
        let role = RoleChoice::parse(&self.role)
            .filter(|r| choices.roles.iter().any(|o| o.value == r.form_value()));
        if role.is_none() {
            problems.push("Choose a role.".to_owned());
        }
        let pick = |typed: &BTreeSet<String>, known: &[Place], what: &str| {
            let ids: BTreeSet<Uuid> = typed
                .iter()
                .filter_map(|s| Uuid::parse_str(s).ok())
                .filter(|id| known.iter().any(|p| p.id == *id))
                .collect();
            if ids.is_empty() || ids.len() != typed.len() {
                Err(format!("Choose at least one {what} from the list."))
            } else {
                Ok(ids)
            }
        };
        let scope = match self.scope.as_str() {
            "all_sites" if choices.all_sites => Some(Scope::AllSites),
            "all_sites" => {
                problems.push(
                    "You can only give access to sites within your own scope: choose them below."
                        .to_owned(),
                );
                None
            }
            "sites" => match pick(&self.sites, &choices.sites, "site") {
                Ok(ids) => Some(Scope::Sites(ids)),
                Err(m) => {
                    problems.push(m);
                    None
                }
            },
            "estates" => match pick(&self.estates, &choices.estates, "estate") {
                Ok(ids) => Some(Scope::Estates(ids)),
                Err(m) => {
                    problems.push(m);
                    None
                }
            },
            _ => {
                problems.push(
                    "Choose which sites they can work on: all sites, selected sites, or by estate."
                        .to_owned(),
                );
                None
            }
        };
        match (role, scope) {
            (Some(r), Some(s)) if problems.is_empty() => Ok((r, s)),
            _ => Err(problems),
        }
    }
}

fn invitation_url(state: &AppState, member: &Member, token: &str) -> String {
    state.settings().url(
        &state.settings().admin_host(&member.org.slug),
        &format!("/invitation/{token}"),
    )
}

// ---------------------------------------------------------------------------------------------
// The list

pub struct ListRow {
    id: Uuid,
    name: String,
    email: String,
    role: String,
    scope: String,
    status: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    shell: Shell,
    rows: Vec<ListRow>,
    can_invite: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DoneQuery {
    done: String,
    count: usize,
}

fn done_message(q: &DoneQuery) -> Option<String> {
    Some(match q.done.as_str() {
        "invited" => "Invitation sent. The link works for 14 days.".to_owned(),
        "bulk" => format!(
            "{} invitation{} sent. Each link works for 14 days.",
            q.count,
            if q.count == 1 { "" } else { "s" }
        ),
        "access" => "Their role and scope have been changed.".to_owned(),
        "limit" => "Their works-approval limit has been changed.".to_owned(),
        "deactivated" => "They have been deactivated and signed out everywhere in this organisation.".to_owned(),
        "reactivated" => "They have been reactivated.".to_owned(),
        "resent" => "A new invitation has been sent; it works for 14 days.".to_owned(),
        "revoked" => "The invitation has been withdrawn.".to_owned(),
        "reset" => "Their password and second step have been reset. We have e-mailed them a link to choose a new password.".to_owned(),
        _ => return None,
    })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Query(q): Query<DoneQuery>,
) -> Result<UsersPage, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let members = access::members(&mut tx).await?;
    tx.commit().await?;
    let now = state.now();
    Ok(UsersPage {
        shell: Shell::new(&member, "/settings").with_flash(done_message(&q)),
        rows: members
            .iter()
            .map(|m| ListRow {
                id: m.membership_id,
                name: m.name.clone(),
                email: m.email.clone(),
                role: m.role_label(),
                scope: m.scope_label(),
                status: m.status_label(now),
            })
            .collect(),
        can_invite: member.can("user.invite"),
    })
}

// ---------------------------------------------------------------------------------------------
// Inviting one person

#[derive(Template, WebTemplate)]
#[template(path = "admin/invite.html")]
pub struct InvitePage {
    shell: Shell,
    choices: AccessChoices,
    form: AccessForm,
    email: String,
    name: String,
    welcome: String,
    errors: Vec<String>,
}

pub async fn invite_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
) -> Result<InvitePage, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let choices = access_choices(&mut tx, &member).await?;
    tx.commit().await?;
    Ok(InvitePage {
        shell: Shell::new(&member, "/settings"),
        choices,
        form: AccessForm {
            role: BuiltInRole::ReadOnly.key().to_owned(),
            scope: "all_sites".into(),
            ..AccessForm::default()
        },
        email: String::new(),
        name: String::new(),
        welcome: String::new(),
        errors: vec![],
    })
}

pub async fn invite(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    let data = FormData::parse(&body);
    let form = AccessForm::from_form(&data);
    let [email, name, welcome] =
        ["email", "name", "welcome"].map(|k| data.get(k).trim().to_owned());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let choices = access_choices(&mut tx, &member).await?;
    let mut errors = vec![];
    let parsed_email = EmailAddress::parse(&email);
    if parsed_email.is_err() {
        errors.push(format!(
            "\"{email}\" is not a valid e-mail address. Enter it like name@example.co.uk."
        ));
    }
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        errors.push("Enter their name (at most 200 characters).".to_owned());
    }
    if welcome.chars().count() > 2000 {
        errors.push("The welcome message can be at most 2,000 characters.".to_owned());
    }
    let access = form.parse(&choices);
    if let Err(problems) = &access {
        errors.extend(problems.iter().cloned());
    }
    if let (Ok(address), Ok((role, scope)), true) = (&parsed_email, &access, errors.is_empty()) {
        let (token, hash) = new_token();
        let outcome = access::invite(
            &mut tx,
            &NewInvitation {
                email: address.as_str().to_owned(),
                name: name.clone(),
                role: *role,
                scope: scope.clone(),
                welcome_message: Some(welcome.clone()).filter(|w| !w.is_empty()),
                is_owner: false,
            },
            &hash,
            &invitation_url(&state, &member, &token),
            &member.org.name,
            Some(&member.name),
            state.now(),
        )
        .await?;
        match outcome {
            Ok(_) => {
                tx.commit().await?;
                return Ok(Redirect::to("/settings/users?done=invited").into_response());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    tx.rollback().await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        InvitePage {
            shell: Shell::new(&member, "/settings"),
            choices,
            form,
            email,
            name,
            welcome,
            errors,
        },
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Bulk invitations from CSV

pub struct PreviewRow {
    line: usize,
    email: String,
    name: String,
    role: String,
    scope: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/bulk.html")]
pub struct BulkPage {
    shell: Shell,
    csv: String,
    file_error: Option<String>,
    errors: Vec<String>,
    rows: Vec<PreviewRow>,
    previewed: bool,
}

pub async fn bulk_form(Extension(member): Extension<Member>) -> BulkPage {
    BulkPage {
        shell: Shell::new(&member, "/settings"),
        csv: String::new(),
        file_error: None,
        errors: vec![],
        rows: vec![],
        previewed: false,
    }
}

/// Reads the CSV from the upload (a file, or text pasted into the box).
async fn read_upload(mut multipart: Multipart) -> Result<Vec<u8>, String> {
    let mut pasted = Vec::new();
    let mut file = Vec::new();
    loop {
        let next = multipart
            .next_field()
            .await
            .map_err(|_| "The upload could not be read. Choose the file again.".to_owned())?;
        let Some(field) = next else { break };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|_| "The upload could not be read. Choose the file again.".to_owned())?;
        match name.as_str() {
            "file" => file = bytes.to_vec(),
            "csv" => pasted = bytes.to_vec(),
            _ => {}
        }
    }
    Ok(if file.is_empty() { pasted } else { file })
}

async fn bulk_lookup_data(
    tx: &mut TenantTx,
    actor: &Member,
) -> Result<(AccessChoices, Vec<String>), WebError> {
    let choices = access_choices(tx, actor).await?;
    let existing = access::members(tx)
        .await?
        .into_iter()
        .map(|m| m.email.to_lowercase())
        .collect();
    Ok((choices, existing))
}

fn preview(
    bytes: &[u8],
    choices: &AccessChoices,
    existing: &[String],
) -> Result<bulk_invite::Preview, String> {
    let roles: Vec<(String, String)> = choices
        .roles
        .iter()
        .map(|r| {
            (
                r.value.clone(),
                r.label.trim_end_matches(" (custom)").to_owned(),
            )
        })
        .collect();
    let places = |list: &[Place]| -> Vec<(Uuid, String, String)> {
        list.iter()
            .map(|p| (p.id, p.reference.clone(), p.name.clone()))
            .collect()
    };
    let (sites, estates) = (places(&choices.sites), places(&choices.estates));
    let mut preview = bulk_invite::parse(
        bytes,
        &Lookup {
            roles: &roles,
            sites: &sites,
            estates: &estates,
            existing_emails: existing,
        },
    )
    .map_err(|e| e.to_string())?;
    // "All sites" is only for someone whose own scope is all sites.
    if !choices.all_sites {
        let (outside, within): (Vec<_>, Vec<_>) = preview
            .rows
            .into_iter()
            .partition(|r| r.scope == Scope::AllSites);
        preview.rows = within;
        preview
            .errors
            .extend(
                outside.into_iter().map(|r| bulk_invite::LineError {
                    line: r.line,
                    column: Some("scope"),
                    message: "You can only give access to sites within your own scope: name them."
                        .to_owned(),
                }),
            );
        preview.errors.sort_by_key(|e| e.line);
    }
    Ok(preview)
}

fn scope_words(scope: &Scope, choices: &AccessChoices) -> String {
    let refs = |ids: &BTreeSet<Uuid>, list: &[Place]| {
        list.iter()
            .filter(|p| ids.contains(&p.id))
            .map(|p| p.reference.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match scope {
        Scope::AllSites => "All sites".into(),
        Scope::Sites(ids) => format!("Sites: {}", refs(ids, &choices.sites)),
        Scope::Estates(ids) => format!("Estates: {}", refs(ids, &choices.estates)),
    }
}

pub async fn bulk_preview(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let shell = Shell::new(&member, "/settings");
    let bytes = match read_upload(multipart).await {
        Ok(b) => b,
        Err(m) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                BulkPage {
                    shell,
                    csv: String::new(),
                    file_error: Some(m),
                    errors: vec![],
                    rows: vec![],
                    previewed: false,
                },
            )
                .into_response());
        }
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (choices, existing) = bulk_lookup_data(&mut tx, &member).await?;
    tx.commit().await?;
    let csv = String::from_utf8_lossy(&bytes).into_owned();
    let page = match preview(&bytes, &choices, &existing) {
        Err(m) => BulkPage {
            shell,
            csv,
            file_error: Some(m),
            errors: vec![],
            rows: vec![],
            previewed: false,
        },
        Ok(p) => BulkPage {
            shell,
            csv,
            file_error: None,
            errors: p
                .errors
                .iter()
                .map(|e| format!("Line {}: {}", e.line, e.message))
                .collect(),
            rows: p
                .rows
                .iter()
                .map(|r| PreviewRow {
                    line: r.line,
                    email: r.email.as_str().to_owned(),
                    name: r.name.clone(),
                    role: choices
                        .roles
                        .iter()
                        .find(|o| o.value == r.role)
                        .map(|o| o.label.clone())
                        .unwrap_or_else(|| r.role.clone()),
                    scope: scope_words(&r.scope, &choices),
                })
                .collect(),
            previewed: true,
        },
    };
    let status = if page.file_error.is_some() || !page.errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, page).into_response())
}

/// Sends every invitation of a previewed file, all or none: the file is checked again, and any
/// problem (someone invited in the meantime, say) sends nothing.
pub async fn bulk_confirm(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Result<Response, WebError> {
    let csv = FormData::parse(&body).get("csv").to_owned();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (choices, existing) = bulk_lookup_data(&mut tx, &member).await?;
    let checked = preview(csv.as_bytes(), &choices, &existing);
    let rows = match checked {
        Ok(p) if p.errors.is_empty() && !p.rows.is_empty() => p.rows,
        _ => {
            tx.rollback().await?;
            let again = BulkPage {
                shell: Shell::new(&member, "/settings"),
                csv,
                file_error: Some("The file has changed or is no longer valid, so nothing was sent. Check the preview again.".into()),
                errors: vec![],
                rows: vec![],
                previewed: false,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response());
        }
    };
    let now = state.now();
    for row in &rows {
        let role = RoleChoice::parse(&row.role)
            .ok_or_else(|| WebError::Internal(format!("role {} did not parse", row.role)))?;
        let (token, hash) = new_token();
        let outcome = access::invite(
            &mut tx,
            &NewInvitation {
                email: row.email.as_str().to_owned(),
                name: row.name.clone(),
                role,
                scope: row.scope.clone(),
                welcome_message: None,
                is_owner: false,
            },
            &hash,
            &invitation_url(&state, &member, &token),
            &member.org.name,
            Some(&member.name),
            now,
        )
        .await?;
        if let Err(e) = outcome {
            tx.rollback().await?;
            let again = BulkPage {
                shell: Shell::new(&member, "/settings"),
                csv,
                file_error: Some(format!("Line {}: {e} Nothing was sent.", row.line)),
                errors: vec![],
                rows: vec![],
                previewed: false,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response());
        }
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/users?done=bulk&count={}", rows.len())).into_response())
}

// ---------------------------------------------------------------------------------------------
// One member

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    shell: Shell,
    m: MemberRow,
    status: &'static str,
    choices: AccessChoices,
    form: AccessForm,
    errors: Vec<String>,
    history: Vec<String>,
    is_self: bool,
    can_update: bool,
    can_deactivate: bool,
    can_reactivate: bool,
    can_invite: bool,
    can_reset: bool,
    /// The works-approval limit in force ("£5,000.00", or "No limit") and whether it is the
    /// role's default.
    works_limit: String,
    works_limit_is_default: bool,
    /// The member's own limit in pounds, for the form ("" when the role's default applies).
    works_limit_own: String,
}

const OUTRANKED: &str = "They have access that you do not have, so only someone with at least their access can change it.";

/// Refuses (with the sentence to show) when the target has access the actor lacks.
async fn outranked(
    tx: &mut TenantTx,
    actor: &Member,
    membership_id: Uuid,
) -> Result<Option<&'static str>, WebError> {
    let target = access::grants(tx, membership_id).await?;
    Ok((!covers(actor, &target)).then_some(OUTRANKED))
}

/// The member's page again, with why the action was refused (nothing was changed).
async fn refused(
    state: &AppState,
    member: &Member,
    id: Uuid,
    status: StatusCode,
    why: &str,
) -> Result<Response, WebError> {
    Ok((
        status,
        user_page(state, member, id, None, vec![why.to_owned()], None).await?,
    )
        .into_response())
}

fn membership_id(id: &str) -> Result<Uuid, WebError> {
    Uuid::parse_str(id).map_err(|_| WebError::NotFound)
}

async fn user_page(
    state: &AppState,
    member: &Member,
    id: Uuid,
    form: Option<AccessForm>,
    errors: Vec<String>,
    flash: Option<String>,
) -> Result<UserPage, WebError> {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let m = access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let choices = access_choices(&mut tx, member).await?;
    let grants = access::grants(&mut tx, id).await?;
    let (sites, estates): (Vec<Uuid>, Vec<Uuid>) = match &grants.scope {
        Some(Scope::Sites(s)) => (s.iter().copied().collect(), vec![]),
        Some(Scope::Estates(e)) => (vec![], e.iter().copied().collect()),
        _ => (vec![], vec![]),
    };
    let effective = proplink_db::operations::approval_limit(&mut tx, id).await?;
    let own = proplink_db::operations::own_approval_limit(&mut tx, id).await?;
    let history = audit::history(&mut tx, "membership", &id.to_string())
        .await?
        .iter()
        .map(|e| format!("{} — {}", uk_time(e.occurred_at), e.sentence()))
        .collect();
    tx.commit().await?;
    let is_self = m.user_id == member.user_id;
    let covered = covers(member, &grants);
    Ok(UserPage {
        shell: Shell::new(member, "/settings").with_flash(flash),
        status: m.status_label(state.now()),
        form: form.unwrap_or_else(|| AccessForm::from_member(&m, &sites, &estates)),
        choices,
        errors,
        history,
        is_self,
        can_update: member.can("user.update") && !m.is_owner && !is_self && covered,
        can_deactivate: member.can("user.deactivate") && !m.is_owner && !is_self && covered,
        can_reactivate: member.can("user.reactivate") && covered,
        can_invite: member.can("user.invite") && covered,
        can_reset: member.can("user.reset_credentials")
            && !is_self
            && covered
            && (!m.is_owner || member.is_owner),
        works_limit: effective.map_or_else(|| "No limit".to_owned(), format_pence),
        works_limit_is_default: own.is_none(),
        works_limit_own: own
            .map(|p| format!("{}.{:02}", p / 100, p % 100))
            .unwrap_or_default(),
        m,
    })
}

pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<UserPage, WebError> {
    user_page(
        &state,
        &member,
        membership_id(&id)?,
        None,
        vec![],
        done_message(&q),
    )
    .await
}

/// Sets a member's works-approval limit (blank: back to their role's default). Nobody sets
/// their own, or gives more than their own limit.
pub async fn set_approval_limit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let values = FormData::parse(&body);
    let raw = values.get("limit").trim();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let target = access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let mine = proplink_db::operations::approval_limit(&mut tx, member.membership_id).await?;
    let parsed: Result<Option<i64>, String> = if raw.is_empty() {
        Ok(None)
    } else {
        proplink_domain::uk::parse_pounds_to_pence(raw)
            .map_err(|e| format!("The limit: {e}"))
            .and_then(|p| {
                if p > proplink_domain::operations::MAX_QUOTE_PENCE {
                    Err("The limit can be at most £10,000,000.00.".to_owned())
                } else {
                    Ok(Some(p))
                }
            })
    };
    let refusal = if target.user_id == member.user_id {
        Some("You cannot set your own works-approval limit. Ask another administrator.".to_owned())
    } else if let Some(r) = outranked(&mut tx, &member, id).await? {
        Some(r.to_owned())
    } else {
        // Blank means the role's default: that too must be within the setter's own limit.
        let target_role = target
            .builtin_role
            .as_deref()
            .and_then(proplink_domain::permissions::BuiltInRole::from_key);
        let given = match &parsed {
            Ok(Some(new)) => Some(*new),
            Ok(None) => proplink_domain::operations::default_works_limit_pence(target_role),
            Err(_) => None,
        };
        match (&parsed, mine) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), Some(own)) if given.is_none_or(|g| g > own) => Some(format!(
                "You cannot give a limit above your own ({}).",
                format_pence(own)
            )),
            _ => None,
        }
    };
    if let Some(why) = refusal {
        tx.rollback().await?;
        return refused(&state, &member, id, StatusCode::UNPROCESSABLE_ENTITY, &why).await;
    }
    proplink_db::operations::set_approval_limit(&mut tx, id, parsed.unwrap_or_default()).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/users/{id}?done=limit")).into_response())
}

pub async fn change_access(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let form = AccessForm::from_form(&FormData::parse(&body));
    let mut tx = state.db().begin(&member.ctx()).await?;
    let target = access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let refusal = if target.user_id == member.user_id {
        Some("You cannot change your own role or scope. Ask another administrator.")
    } else if target.is_owner {
        Some("The Organisation Owner's role and scope cannot be changed.")
    } else {
        outranked(&mut tx, &member, id).await?
    };
    let choices = access_choices(&mut tx, &member).await?;
    let parsed = match refusal {
        Some(r) => Err(vec![r.to_owned()]),
        None => form.parse(&choices),
    };
    match parsed {
        Ok((role, scope)) => {
            access::set_role(&mut tx, id, role).await?;
            access::set_scope(&mut tx, id, &scope).await?;
            tx.commit().await?;
            Ok(Redirect::to(&format!("/settings/users/{id}?done=access")).into_response())
        }
        Err(errors) => {
            tx.rollback().await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                user_page(&state, &member, id, Some(form), errors, None).await?,
            )
                .into_response())
        }
    }
}

pub async fn deactivate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if let Some(r) = outranked(&mut tx, &member, id).await? {
        tx.rollback().await?;
        return refused(&state, &member, id, StatusCode::FORBIDDEN, r).await;
    }
    match access::deactivate(&mut tx, id, member.user_id, state.now()).await? {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/settings/users/{id}?done=deactivated")).into_response())
        }
        Err(MembershipChangeError::NotFound) => Err(WebError::NotFound),
        Err(e) => {
            tx.rollback().await?;
            refused(
                &state,
                &member,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &e.to_string(),
            )
            .await
        }
    }
}

pub async fn reactivate(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if let Some(r) = outranked(&mut tx, &member, id).await? {
        tx.rollback().await?;
        return refused(&state, &member, id, StatusCode::FORBIDDEN, r).await;
    }
    let changed = access::reactivate(&mut tx, id).await?;
    tx.commit().await?;
    if !changed {
        return refused(
            &state,
            &member,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Only a deactivated member can be reactivated.",
        )
        .await;
    }
    Ok(Redirect::to(&format!("/settings/users/{id}?done=reactivated")).into_response())
}

pub async fn resend(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let (token, hash) = new_token();
    let mut tx = state.db().begin(&member.ctx()).await?;
    access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let sent = access::resend_invitation(
        &mut tx,
        id,
        &hash,
        &invitation_url(&state, &member, &token),
        &member.org.name,
        state.now(),
    )
    .await?;
    tx.commit().await?;
    if !sent {
        return refused(
            &state,
            &member,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Only someone who has not yet accepted can be sent the invitation again.",
        )
        .await;
    }
    Ok(Redirect::to(&format!("/settings/users/{id}?done=resent")).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let revoked = access::revoke_invitation(&mut tx, id, state.now()).await?;
    tx.commit().await?;
    if !revoked {
        return refused(
            &state,
            &member,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is no waiting invitation to withdraw.",
        )
        .await;
    }
    Ok(Redirect::to(&format!("/settings/users/{id}?done=revoked")).into_response())
}

/// Resets someone's password and second factor: every session of theirs ends and they choose a
/// new password from an e-mailed link. Only the Owner may reset the Owner; nobody resets
/// themselves here (Security settings is for that).
pub async fn reset_credentials(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    who: Client,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = membership_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let target = access::member(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let above = outranked(&mut tx, &member, id).await?;
    tx.commit().await?;
    // The sign-in belongs to the person, not to one organisation: an administrator here does
    // not reset it for the others they belong to.
    let elsewhere = access::organisations_of(state.db(), target.user_id)
        .await?
        .iter()
        .any(|o| o.organisation_id != member.org.id.0);
    let refusal = if let Some(r) = above {
        Some(r)
    } else if elsewhere {
        Some(
            "They also belong to another organisation, so their sign-in is theirs to reset: they can use \"Forgotten your password\" on the sign-in page, or PropLink support can help.",
        )
    } else if target.user_id == member.user_id {
        Some("Change your own password and second step in Security settings.")
    } else if target.is_owner && !member.is_owner {
        Some("Only the Organisation Owner can reset the Owner's sign-in.")
    } else if target.status != "active" {
        Some("Only an active member's sign-in can be reset.")
    } else {
        None
    };
    if let Some(r) = refusal {
        return refused(&state, &member, id, StatusCode::UNPROCESSABLE_ENTITY, r).await;
    }
    let user = staff::find(state.db(), target.user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    staff::reset_credentials(state.db(), user.id, state.now()).await?;
    send_reset_link(
        &state,
        &user,
        &format!(
            "{} at {} has reset your PropLink password and second sign-in step.",
            member.name, member.org.name
        ),
    )
    .await?;
    event_for(
        &state,
        user.id,
        &user.email,
        &user.name,
        "credentials_reset",
        Some(&format!("by {}", member.name)),
        who.ip.as_deref(),
        who.user_agent.as_deref(),
    )
    .await?;
    Ok(Redirect::to(&format!("/settings/users/{id}?done=reset")).into_response())
}
