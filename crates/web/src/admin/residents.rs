//! The admin side of ResidencePort (issue 8): inviting residents (one contact, or every
//! uninvited resident of a site), building notices with their read receipts, residents'
//! changes to their details waiting for acceptance, and replies on the requests they raised.

use super::operations::{back_to, flash_of, issue_for, query_of, refused_on};
use super::records::{check, parse_id, site_scope};
use super::{Member, Shell};
use crate::admin::form::FormData;
use crate::error::WebError;
use crate::residence::pay::portal_url;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::email::{self, NewEmail};
use proplink_db::ledger::LedgerError;
use proplink_db::portfolio;
use proplink_db::resident::{self, InviteError, NewNotice};
use proplink_domain::dates::uk_long_date;
use uuid::Uuid;

type Page = Result<Response, WebError>;

fn refusal(e: LedgerError) -> Result<String, WebError> {
    match e {
        LedgerError::Refused(m) => Ok(m),
        LedgerError::NotFound => Err(WebError::NotFound),
        LedgerError::Db(e) => Err(e.into()),
        other => Err(WebError::Internal(other.to_string())),
    }
}

/// POST /contacts/{id}/residenceport (`contact.update`): opens (or re-opens) the contact's
/// ResidencePort account and e-mails them the portal's address.
pub async fn invite(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let back = format!("/contacts/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    proplink_db::people::contact(&mut tx, &site_scope(&member), id)
        .await?
        .ok_or(WebError::NotFound)?;
    let url = portal_url(&state, &member.org);
    match resident::invite(
        &mut tx,
        id,
        &url,
        &member.org.name,
        &member.name,
        state.now(),
    )
    .await
    {
        Ok(_) => {
            tx.commit().await?;
            Ok(back_to(
                &back,
                "Invited to ResidencePort: an e-mail with the portal's address is on its way.",
            ))
        }
        Err(InviteError::Refused(r)) => Ok(refused_on(&back, &r.to_string())),
        Err(InviteError::Db(e)) => Err(e.into()),
    }
}

/// POST /contacts/{id}/residenceport/status (`contact.update`): turns the account off (its
/// sessions end at once) or on again.
pub async fn set_status(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let active = FormData::parse(&body).get("active") == "yes";
    let mut tx = state.db().begin(&member.ctx()).await?;
    proplink_db::people::contact(&mut tx, &site_scope(&member), id)
        .await?
        .ok_or(WebError::NotFound)?;
    let account = resident::account_summary(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    resident::set_account_status(&mut tx, account.id, active).await?;
    tx.commit().await?;
    Ok(back_to(
        &format!("/contacts/{id}"),
        if active {
            "ResidencePort account turned back on."
        } else {
            "ResidencePort account turned off: they are signed out and cannot sign in."
        },
    ))
}

/// POST /sites/{id}/residenceport-invites (`contact.update` on the site): invites every
/// resident of the site with an e-mail address and no account yet.
pub async fn invite_site(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = portfolio::site(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "contact.update", site.placement())?;
    let now = state.now();
    let url = portal_url(&state, &member.org);
    let mut invited = 0;
    let mut skipped = Vec::new();
    for (contact, name) in resident::uninvited_on_site(&mut tx, id, now.date()).await? {
        // Each under its own savepoint: a refusal (an address another resident already uses)
        // undoes only that one.
        tx.mark().await?;
        match resident::invite(&mut tx, contact, &url, &member.org.name, &member.name, now).await {
            Ok(_) => {
                tx.keep_since_mark().await?;
                invited += 1;
            }
            Err(InviteError::Refused(r)) => {
                tx.undo_to_mark().await?;
                skipped.push(format!("{name}: {r}"));
            }
            Err(InviteError::Db(e)) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    let mut message = match invited {
        0 => "Nobody to invite: every resident with an e-mail address already has an account."
            .to_owned(),
        1 => "Invited 1 resident to ResidencePort.".to_owned(),
        n => format!("Invited {n} residents to ResidencePort."),
    };
    if !skipped.is_empty() {
        message.push_str(&format!(" Not invited: {}.", skipped.join("; ")));
    }
    Ok(back_to(&format!("/sites/{id}/notices"), &message))
}

// ---------------------------------------------------------------------------------------------
// Notices

struct NoticeLine {
    id: Uuid,
    title: String,
    place: String,
    published: String,
    by: String,
    reads: i64,
    withdrawn: bool,
}

struct BuildingChoice {
    id: Uuid,
    name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "residents/site_notices.html")]
struct SiteNotices {
    shell: Shell,
    site_id: Uuid,
    site_name: String,
    notices: Vec<NoticeLine>,
    buildings: Vec<BuildingChoice>,
    can_send: bool,
    can_invite: bool,
    title: String,
    body: String,
    flash: Option<String>,
    problem: Option<String>,
}

async fn site_notices_page(
    state: &AppState,
    member: &Member,
    site: Uuid,
    typed: Option<&FormData>,
    flash: Option<String>,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let found = portfolio::site(&mut tx, site)
        .await?
        .ok_or(WebError::NotFound)?;
    check(member, "communication.read", found.placement())?;
    let notices = resident::site_notices(&mut tx, site).await?;
    let buildings = portfolio::buildings(&mut tx, site, portfolio::Showing::Live).await?;
    tx.commit().await?;
    let empty = FormData::default();
    let typed = typed.unwrap_or(&empty);
    Ok(SiteNotices {
        shell: Shell::new(member, "/sites"),
        site_id: site,
        site_name: found.name.clone(),
        notices: notices
            .iter()
            .map(|n| NoticeLine {
                id: n.id,
                title: n.title.clone(),
                place: n.place(),
                published: uk_long_date(n.published_at),
                by: n.published_by.clone(),
                reads: n.reads,
                withdrawn: n.withdrawn_at.is_some(),
            })
            .collect(),
        buildings: buildings
            .into_iter()
            .map(|b| BuildingChoice {
                id: b.id,
                name: b.name,
            })
            .collect(),
        can_send: super::records::may(member, "communication.send", found.placement())
            && !member.read_only(),
        can_invite: super::records::may(member, "contact.update", found.placement())
            && !member.read_only(),
        title: typed.get("title").to_owned(),
        body: typed.get("body").to_owned(),
        flash,
        problem,
    }
    .into_response())
}

/// GET /sites/{id}/notices (`communication.read`).
pub async fn site_notices(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let (flash, problem) = flash_of(&query_of(raw));
    site_notices_page(&state, &member, id, None, flash, problem).await
}

/// POST /sites/{id}/notices (`communication.send`): publishes a notice to the site's (or one
/// building's) residents, with an e-mail copy if asked.
pub async fn publish(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let building = match v.get("building") {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| WebError::NotFound)?),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = portfolio::site(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "communication.send", site.placement())?;
    let url = portal_url(&state, &member.org);
    let published = resident::publish_notice(
        &mut tx,
        &NewNotice {
            site_id: id,
            building_id: building,
            title: v.get("title"),
            body: v.get("body"),
            email_copy: v.get("email_copy") == "yes",
        },
        &member.name,
        &url,
        &member.org.name,
        state.now(),
    )
    .await;
    match published {
        Ok(notice) => {
            tx.commit().await?;
            Ok(back_to(&format!("/notices/{notice}"), "Notice published."))
        }
        Err(e) => {
            let problem = refusal(e)?;
            drop(tx);
            site_notices_page(&state, &member, id, Some(&v), None, Some(problem)).await
        }
    }
}

struct ReadLine {
    name: String,
    email: String,
    at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "residents/notice.html")]
struct NoticePage {
    shell: Shell,
    id: Uuid,
    site_id: Uuid,
    title: String,
    place: String,
    published: String,
    by: String,
    body: String,
    email_copy: bool,
    withdrawn: Option<String>,
    reads: Vec<ReadLine>,
    can_send: bool,
    flash: Option<String>,
}

/// GET /notices/{id} (`communication.read`): the notice and who has read it.
pub async fn notice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let n = resident::find_notice(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let site = portfolio::site(&mut tx, n.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "communication.read", site.placement())?;
    let reads = resident::notice_reads(&mut tx, id).await?;
    tx.commit().await?;
    let (flash, _) = flash_of(&query_of(raw));
    Ok(NoticePage {
        shell: Shell::new(&member, "/sites"),
        id,
        site_id: n.site_id,
        title: n.title.clone(),
        place: n.place(),
        published: uk_long_date(n.published_at),
        by: n.published_by.clone(),
        body: n.body.clone(),
        email_copy: n.email_copy,
        withdrawn: n.withdrawn_at.map(uk_long_date),
        reads: reads
            .into_iter()
            .map(|(name, email, at)| ReadLine {
                name,
                email,
                at: uk_long_date(at),
            })
            .collect(),
        can_send: super::records::may(&member, "communication.send", site.placement())
            && !member.read_only(),
        flash,
    }
    .into_response())
}

/// POST /notices/{id}/withdraw (`communication.send`): residents no longer see it.
pub async fn withdraw(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let n = resident::find_notice(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let site = portfolio::site(&mut tx, n.site_id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(&member, "communication.send", site.placement())?;
    resident::withdraw_notice(&mut tx, id, state.now()).await?;
    tx.commit().await?;
    Ok(back_to(
        &format!("/notices/{id}"),
        "Withdrawn: residents no longer see this notice.",
    ))
}

// ---------------------------------------------------------------------------------------------
// Residents' changes to their details

struct ChangeLine {
    id: Uuid,
    contact_id: Uuid,
    contact: String,
    email: String,
    asked: String,
    lines: Vec<(String, String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "residents/changes.html")]
struct ChangesPage {
    shell: Shell,
    changes: Vec<ChangeLine>,
    can_decide: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /resident-changes (`contact.read`): changes to name or address residents asked for,
/// among the contacts the member may see.
pub async fn changes(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let scope = site_scope(&member);
    let mut out = Vec::new();
    for c in resident::pending_changes(&mut tx).await? {
        if proplink_db::people::contact(&mut tx, &scope, c.contact_id)
            .await?
            .is_some()
        {
            out.push(ChangeLine {
                id: c.id,
                contact_id: c.contact_id,
                contact: c.contact_name.clone(),
                email: c.account_email.clone(),
                asked: uk_long_date(c.created_at),
                lines: c.lines(),
            });
        }
    }
    tx.commit().await?;
    let (flash, problem) = flash_of(&query_of(raw));
    Ok(ChangesPage {
        shell: Shell::new(&member, "/contacts"),
        changes: out,
        can_decide: member.can("contact.update") && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

/// POST /resident-changes/{id} (`contact.update`): accept (the contact is updated) or reject.
pub async fn decide(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let accept = match v.get("decision") {
        "accept" => true,
        "reject" => false,
        _ => return Ok(refused_on("/resident-changes", "Choose accept or reject.")),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let pending = resident::pending_changes(&mut tx).await?;
    let change = pending
        .iter()
        .find(|c| c.id == id)
        .ok_or(WebError::NotFound)?;
    proplink_db::people::contact(&mut tx, &site_scope(&member), change.contact_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let reason = v.get("reason");
    match resident::decide_change(&mut tx, id, accept, Some(reason), &member.name, state.now())
        .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(
                "/resident-changes",
                if accept {
                    "Accepted: the contact's details are updated."
                } else {
                    "Rejected: the contact's details are unchanged."
                },
            ))
        }
        Err(e) => {
            let problem = refusal(e)?;
            Ok(refused_on("/resident-changes", &problem))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replies on a resident's request

/// POST /issues/{id}/messages (`issue.update`): a message to the resident who reported it,
/// shown on their request in ResidencePort and e-mailed to them.
pub async fn reply(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let back = format!("/issues/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let issue = issue_for(&mut tx, &member, id).await?;
    check(
        &member,
        "issue.update",
        super::operations::site_placement(issue.site_id, issue.estate_id),
    )?;
    let now = state.now();
    if let Err(e) =
        resident::add_message(&mut tx, id, "staff", &member.name, v.get("body"), now).await
    {
        let problem = refusal(e)?;
        return Ok(refused_on(&back, &problem));
    }
    if let Some(address) = issue.reporter_email.clone() {
        let url = portal_url(&state, &member.org);
        email::queue(
            &mut tx,
            NewEmail {
                to_address: address,
                to_name: Some(issue.reporter_name.clone()),
                subject: format!("A reply about your request {}", issue.reference),
                body_text: format!(
                    "Hello {},\n\n{} of {} wrote about your request {} ({}):\n\n{}\n\nYou can reply in ResidencePort: {url}/requests/{id}\n",
                    issue.reporter_name,
                    member.name,
                    member.org.name,
                    issue.reference,
                    issue.title,
                    v.get("body").trim()
                ),
                body_html: None,
                category: "request_reply".into(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(back_to(&back, "Message sent."))
}
