//! Tickets in the admin app (issue 5): the queue with service-level lights, a ticket's thread
//! (messages to the reporter, internal notes, system events), replies, states, assignment and
//! links to the issue or work order it led to.

use super::form::FormData;
use super::operations::{back_to, flash_of, ops_error, refused_on};
use super::records::{self, Opt, Pager, check, may, parse_id, site_scope};
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::operations::{self as ops, OpsError};
use proplink_db::ticket_settings::{self, TicketCategory};
use proplink_db::tickets::{self, CLOSURE_REASONS, Ticket, TicketInput, TicketQuery};
use proplink_domain::EmailAddress;
use proplink_domain::authorize::Placement;
use proplink_domain::dates::{long_date_time, uk_offset};
use proplink_domain::sla::Priority;
use uuid::Uuid;

type Page = Result<Response, WebError>;

fn placement(t: &Ticket) -> Placement {
    match t.site_id {
        Some(site) => Placement::Site {
            site,
            estate: t.estate_id,
        },
        None => Placement::Organisation,
    }
}

async fn ticket_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<Ticket, WebError> {
    let t = tickets::find_ticket(tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    check(member, "ticket.read", placement(&t))?;
    check(member, key, placement(&t))?;
    Ok(t)
}

fn when(t: time::OffsetDateTime) -> String {
    long_date_time(t, uk_offset(t))
}

pub(super) struct TicketRow {
    pub id: Uuid,
    pub reference: String,
    pub subject: String,
    pub category: String,
    pub priority: String,
    pub status: String,
    pub reporter: String,
    pub assignee: String,
    pub sla: &'static str,
    pub sla_label: String,
    pub due: String,
}

impl TicketRow {
    fn new(t: &Ticket, categories: &[TicketCategory], now: time::OffsetDateTime) -> Self {
        let sla = t.sla(now);
        let due = if t.first_responded_at.is_none() {
            format!("Reply by {}", when(t.response_due_at))
        } else {
            format!("Resolve by {}", when(t.resolution_due_at))
        };
        Self {
            id: t.id,
            reference: t.reference.clone(),
            subject: t.subject.clone(),
            category: categories
                .iter()
                .find(|c| c.key == t.category)
                .map_or_else(|| t.category.clone(), |c| c.name.clone()),
            priority: Priority::from_key(&t.priority)
                .map(|p| p.label().to_owned())
                .unwrap_or_default(),
            status: match t.status.as_str() {
                "open" => "Open".to_owned(),
                "waiting_on_customer" => "Waiting on customer".to_owned(),
                "resolved" => "Resolved".to_owned(),
                _ => "Closed".to_owned(),
            },
            reporter: t.reporter_name.clone(),
            assignee: t
                .assignee_name
                .clone()
                .unwrap_or_else(|| "Unassigned".into()),
            sla: sla.map_or("none", |s| s.css()),
            sla_label: sla.map(|s| s.label().to_owned()).unwrap_or_default(),
            due: if t.is_open() { due } else { String::new() },
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/tickets.html")]
pub struct TicketsPage {
    shell: Shell,
    rows: Vec<TicketRow>,
    statuses: Vec<Opt>,
    mine: bool,
    pager: Pager,
    can_create: bool,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let status = q.get("status").to_owned();
    let mine = q.get("mine") == "yes";
    let page = records::page_number(q.get("page"));
    let now = state.now();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let found = tickets::list_tickets(
        &mut tx,
        &site_scope(&member),
        &TicketQuery {
            status: status.clone(),
            assignee: mine.then_some(member.membership_id),
            page,
            per_page: 50,
        },
    )
    .await?;
    let categories = ticket_settings::categories(&mut tx, true).await?;
    tx.commit().await?;
    let filters = [
        ("status", status.clone()),
        ("mine", if mine { "yes".into() } else { String::new() }),
    ];
    Ok(TicketsPage {
        shell: Shell::new(&member, "/tickets"),
        rows: found
            .rows
            .iter()
            .map(|t| TicketRow::new(t, &categories, now))
            .collect(),
        statuses: [
            ("", "Open or waiting"),
            ("waiting_on_customer", "Waiting on customer"),
            ("resolved", "Resolved"),
            ("closed", "Closed"),
            ("all", "All"),
        ]
        .into_iter()
        .map(|(v, l)| Opt::new(v, l, &status))
        .collect(),
        mine,
        pager: Pager::counted_up_to(
            "/tickets",
            &filters,
            found.page,
            found.page,
            found.total,
            found.capped,
            found.capped,
        ),
        can_create: member.can("ticket.create") && !member.read_only(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/ticket_new.html")]
pub struct NewTicketPage {
    shell: Shell,
    sites: Vec<Opt>,
    categories: Vec<Opt>,
    priorities: Vec<Opt>,
    problem: Option<String>,
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let sites = ops::site_choices(&mut tx, &site_scope(&member)).await?;
    let categories = ticket_settings::categories(&mut tx, false).await?;
    tx.commit().await?;
    let problem = Some(q.get("problem").to_owned()).filter(|p| !p.is_empty());
    Ok(NewTicketPage {
        shell: Shell::new(&member, "/tickets"),
        sites: std::iter::once(Opt::new("", "No particular site", ""))
            .chain(
                sites
                    .into_iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n, "")),
            )
            .collect(),
        categories: categories
            .iter()
            .map(|c| Opt::new(c.key.clone(), c.name.clone(), "query"))
            .collect(),
        priorities: std::iter::once(Opt::new(
            "",
            "The category's default (or routing rule's)",
            "",
        ))
        .chain(
            Priority::ALL
                .iter()
                .map(|p| Opt::new(p.as_str(), p.label(), "")),
        )
        .collect(),
        problem,
    }
    .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let parsed = (|| -> Result<TicketInput, String> {
        let site_id = match v.get("site") {
            "" => None,
            s => Some(Uuid::parse_str(s).map_err(|_| "Choose the site again.")?),
        };
        let priority = match v.get("priority") {
            "" => None,
            p => Some(Priority::from_key(p).ok_or("Choose a priority.")?),
        };
        let reporter_email = match v.get("reporter_email").trim() {
            "" => None,
            e => Some(
                EmailAddress::parse(e).map_err(|_| format!("“{e}” is not an e-mail address."))?,
            ),
        };
        let channel = match v.get("channel") {
            "" | "admin" => "admin",
            "phone" => "phone",
            "email" => "email",
            _ => return Err("Choose how the ticket arrived.".into()),
        };
        Ok(TicketInput {
            site_id,
            subject: v.get("subject").to_owned(),
            category: v.get("category").to_owned(),
            priority,
            reporter_name: v.get("reporter_name").to_owned(),
            reporter_email,
            channel: channel.to_owned(),
            message: v.get("message").to_owned(),
            assignee_id: None,
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(p) => return Ok(refused_on("/tickets/new", &p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    match input.site_id {
        Some(site) => {
            let s = proplink_db::portfolio::site(&mut tx, site)
                .await?
                .ok_or(WebError::NotFound)?;
            check(&member, "ticket.create", s.placement())?;
        }
        None => check(&member, "ticket.create", Placement::Organisation)?,
    }
    match tickets::create_ticket(&mut tx, &input, &member.name, state.now()).await {
        Ok((id, reference)) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/tickets/{id}"),
                &format!("Ticket {reference} opened; the reporter has been sent its reference."),
            ))
        }
        Err(e) => Ok(refused_on("/tickets/new", &ops_error(e)?)),
    }
}

pub(super) struct MessageView {
    pub kind: String,
    pub author: String,
    pub when: String,
    pub body: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "operations/ticket.html")]
pub struct TicketPage {
    shell: Shell,
    t: TicketRow,
    site: String,
    reporter_email: String,
    issue: Option<(Uuid, String)>,
    work_order: Option<(Uuid, String)>,
    messages: Vec<MessageView>,
    assignees: Vec<Opt>,
    reasons: Vec<Opt>,
    status_key: String,
    can_update: bool,
    can_assign: bool,
    flash: Option<String>,
    problem: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let t = ticket_for(&mut tx, &member, id, "ticket.read").await?;
    let thread = tickets::messages(&mut tx, id).await?;
    let people = tickets::assignees(&mut tx).await?;
    let categories = ticket_settings::categories(&mut tx, true).await?;
    tx.commit().await?;
    let chosen = t.assignee_id.map(|a| a.to_string()).unwrap_or_default();
    let (flash, problem) = flash_of(&q);
    Ok(TicketPage {
        shell: Shell::new(&member, "/tickets"),
        site: t
            .site_name
            .clone()
            .unwrap_or_else(|| "No particular site".into()),
        reporter_email: t.reporter_email.clone().unwrap_or_default(),
        issue: t.issue_id.zip(t.issue_reference.clone()),
        work_order: t.work_order_id.zip(t.work_order_reference.clone()),
        messages: thread
            .iter()
            .map(|m| MessageView {
                kind: m.kind.clone(),
                author: m.author_name.clone(),
                when: when(m.created_at),
                body: m.body.clone(),
            })
            .collect(),
        assignees: std::iter::once(Opt::new("", "Unassigned", &chosen))
            .chain(
                people
                    .into_iter()
                    .map(|(id, n)| Opt::new(id.to_string(), n, &chosen)),
            )
            .collect(),
        reasons: CLOSURE_REASONS
            .iter()
            .map(|(k, l)| Opt::new(*k, *l, ""))
            .collect(),
        status_key: t.status.clone(),
        can_update: may(&member, "ticket.update", placement(&t)),
        can_assign: may(&member, "ticket.assign", placement(&t)),
        flash,
        problem,
        t: TicketRow::new(&t, &categories, state.now()),
    }
    .into_response())
}

/// Runs one change to a ticket and returns to it with the outcome.
async fn act(
    state: &AppState,
    member: &Member,
    id: &str,
    key: &str,
    done: &str,
    change: impl AsyncFnOnce(&mut TenantTx, Uuid) -> Result<(), OpsError>,
) -> Page {
    let id = parse_id(id)?;
    let path = format!("/tickets/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    ticket_for(&mut tx, member, id, key).await?;
    match change(&mut tx, id).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(back_to(&path, done))
        }
        Err(e) => Ok(refused_on(&path, &ops_error(e)?)),
    }
}

pub async fn reply(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let internal = v.get("mode") == "internal";
    let now = state.now();
    let name = member.name.clone();
    act(
        &state,
        &member,
        &id,
        "ticket.update",
        if internal {
            "Internal note added."
        } else {
            "Reply sent to the reporter."
        },
        async |tx, id| tickets::reply(tx, id, internal, v.get("body"), &name, now).await,
    )
    .await
}

pub async fn set_status(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let now = state.now();
    let name = member.name.clone();
    act(
        &state,
        &member,
        &id,
        "ticket.update",
        "Ticket updated.",
        async |tx, id| {
            tickets::set_status(tx, id, v.get("to"), Some(v.get("reason")), &name, now).await
        },
    )
    .await
}

pub async fn assign(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let assignee = match v.get("assignee") {
        "" => None,
        a => Some(Uuid::parse_str(a).map_err(|_| WebError::NotFound)?),
    };
    let now = state.now();
    let name = member.name.clone();
    act(
        &state,
        &member,
        &id,
        "ticket.assign",
        "Assignment saved.",
        async |tx, id| tickets::assign(tx, id, assignee, &name, now).await,
    )
    .await
}

pub async fn link(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let v = FormData::parse(&body);
    let now = state.now();
    let name = member.name.clone();
    // A reference the member may not read is answered as if it did not exist.
    let reference = v.get("reference").trim().to_uppercase();
    let readable = if reference.starts_with("ISS-") {
        member.can("issue.read")
    } else {
        member.can("work_order.read")
    };
    let scope = if readable {
        site_scope(&member)
    } else {
        proplink_db::portfolio::SiteScope::default()
    };
    act(
        &state,
        &member,
        &id,
        "ticket.update",
        "Linked.",
        async |tx, id| tickets::link(tx, id, v.get("reference"), &scope, &name, now).await,
    )
    .await
}
