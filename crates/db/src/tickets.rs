//! Tickets (issue 5; docs-spec §2.7): conversations with residents and other contacts. Service
//! levels come from `proplink_domain::sla` (UK working days, England and Wales bank holidays);
//! the clock pauses while a ticket waits on the customer and the due times move on by the
//! pause. A message to the reporter is e-mailed with the ticket's reference in its subject
//! (`[#TKT-2026-0042]`), so replies thread.

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::operations::OpsError;
use crate::portfolio::{Page, SiteScope};
use crate::tenant::TenantTx;
use proplink_domain::EmailAddress;
use proplink_domain::sla::{Priority, SlaState, due_at, sla_state};
use time::OffsetDateTime;
use uuid::Uuid;

/// How a ticket can be closed.
pub const CLOSURE_REASONS: &[(&str, &str)] = &[
    ("resolved", "Resolved"),
    ("no_response", "No response"),
    ("duplicate", "Duplicate"),
    ("out_of_scope", "Out of scope"),
];

#[derive(Debug, Clone)]
pub struct TicketInput {
    pub site_id: Option<Uuid>,
    pub subject: String,
    pub category: String,
    /// None: the routing rule's, else the category's default, else medium.
    pub priority: Option<Priority>,
    pub reporter_name: String,
    pub reporter_email: Option<EmailAddress>,
    pub channel: String,
    pub message: String,
    pub assignee_id: Option<Uuid>,
}

pub async fn create_ticket(
    tx: &mut TenantTx,
    input: &TicketInput,
    author: &str,
    now: OffsetDateTime,
) -> Result<(Uuid, String), OpsError> {
    let subject = input.subject.trim();
    if subject.is_empty() || subject.chars().count() > 200 {
        return Err(OpsError::Invalid(
            "Give the ticket a subject of up to 200 characters.".into(),
        ));
    }
    let category = match crate::ticket_settings::category(tx, &input.category).await? {
        Some(c) if !c.archived => c,
        _ => return Err(OpsError::Invalid("Choose a category.".into())),
    };
    let message = input.message.trim();
    if message.is_empty() || message.chars().count() > 10_000 {
        return Err(OpsError::Invalid(
            "Write the first message (up to 10,000 characters).".into(),
        ));
    }
    let name = input.reporter_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(OpsError::Invalid("Give the reporter's name.".into()));
    }
    // Settings → Tickets: the first routing rule that matches, then the category's defaults.
    let rule = crate::ticket_settings::route(
        tx,
        input.site_id,
        &category.key,
        input.reporter_email.as_ref().map(EmailAddress::as_str),
        subject,
    )
    .await?;
    let priority = input
        .priority
        .or_else(|| {
            rule.as_ref()
                .and_then(|r| r.set_priority.as_deref())
                .and_then(Priority::from_key)
        })
        .or(category.default_priority)
        .unwrap_or(Priority::Medium);
    let routed_assignee = input
        .assignee_id
        .or_else(|| rule.as_ref().and_then(|r| r.assign_to_id))
        .or(category.default_assignee_id);
    let id = Uuid::now_v7();
    let reference = crate::operations::next_reference(tx, "ticket", now.year()).await?;
    sqlx::query(
        "insert into ticket (organisation_id, id, reference, site_id, subject, category, priority,
                             reporter_name, reporter_email, channel, assignee_id, response_due_at,
                             resolution_due_at, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&reference)
    .bind(input.site_id)
    .bind(subject)
    .bind(&category.key)
    .bind(priority.as_str())
    .bind(name)
    .bind(input.reporter_email.as_ref().map(EmailAddress::as_str))
    .bind(&input.channel)
    .bind(None::<Uuid>)
    .bind(due_at(now, category.response_for(priority)))
    .bind(due_at(now, category.resolution_for(priority)))
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::MissingReference { .. } => {
            OpsError::Invalid("The site or assignee no longer exists.".into())
        }
        other => OpsError::Db(other),
    })?;
    insert_message(tx, id, "message", "reporter", name, message, now).await?;
    // The assignee is told, and the thread says who; one who has since left stays unassigned.
    if let Some(assignee) = routed_assignee {
        match assign(tx, id, Some(assignee), author, now).await {
            Ok(()) | Err(OpsError::Invalid(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(address) = &input.reporter_email {
        email::queue(
            tx,
            NewEmail {
                to_address: address.as_str().to_owned(),
                to_name: Some(name.to_owned()),
                subject: format!("[#{reference}] {subject}"),
                body_text: format!(
                    "Dear {name},\n\nThank you for contacting us. Your reference is {reference}; \
                     please keep it in the subject line of any reply.\n\n{author}\n"
                ),
                body_html: None,
                category: "ticket_acknowledgement".into(),
            },
        )
        .await?;
    }
    Ok((id, reference))
}

async fn insert_message(
    tx: &mut TenantTx,
    ticket: Uuid,
    kind: &str,
    author_kind: &str,
    author: &str,
    body: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into ticket_message (organisation_id, id, ticket_id, kind, author_kind, author_name, body, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(ticket)
    .bind(kind)
    .bind(author_kind)
    .bind(author)
    .bind(body)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ticket {
    pub id: Uuid,
    pub reference: String,
    pub site_id: Option<Uuid>,
    pub site_name: Option<String>,
    pub estate_id: Option<Uuid>,
    pub subject: String,
    pub category: String,
    pub priority: String,
    pub status: String,
    pub closure_reason: Option<String>,
    pub reporter_name: String,
    pub reporter_email: Option<String>,
    pub channel: String,
    pub assignee_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    pub response_due_at: OffsetDateTime,
    pub resolution_due_at: OffsetDateTime,
    pub first_responded_at: Option<OffsetDateTime>,
    pub paused_since: Option<OffsetDateTime>,
    pub issue_id: Option<Uuid>,
    pub issue_reference: Option<String>,
    pub work_order_id: Option<Uuid>,
    pub work_order_reference: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Ticket {
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "open" | "waiting_on_customer")
    }

    /// The service-level light: the first response's until answered, then the resolution's.
    /// Paused tickets are measured at the moment they paused.
    pub fn sla(&self, now: OffsetDateTime) -> Option<SlaState> {
        if !self.is_open() {
            return None;
        }
        let at = self.paused_since.unwrap_or(now);
        let due = if self.first_responded_at.is_none() {
            self.response_due_at
        } else {
            self.resolution_due_at
        };
        Some(sla_state(self.created_at, due, at))
    }
}

const TICKET_COLUMNS: &str = "t.id, t.reference, t.site_id, s.name as site_name, s.estate_id,
    t.subject, t.category, t.priority, t.status, t.closure_reason, t.reporter_name,
    t.reporter_email, t.channel, t.assignee_id, u.name as assignee_name, t.response_due_at,
    t.resolution_due_at, t.first_responded_at, t.paused_since, t.issue_id,
    i.reference as issue_reference, t.work_order_id, w.reference as work_order_reference,
    t.created_at";

const TICKET_JOINS: &str =
    "left join site s on s.organisation_id = t.organisation_id and s.id = t.site_id
    left join membership m on m.organisation_id = t.organisation_id and m.id = t.assignee_id
    left join staff_user u on u.id = m.user_id
    left join issue i on i.organisation_id = t.organisation_id and i.id = t.issue_id
    left join work_order w on w.organisation_id = t.organisation_id and w.id = t.work_order_id";

pub async fn find_ticket(tx: &mut TenantTx, id: Uuid) -> Result<Option<Ticket>, DbError> {
    let sql = format!(
        "select {TICKET_COLUMNS} from ticket t {TICKET_JOINS} where t.organisation_id = $1 and t.id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// `open` (default: open or waiting), `all`, or a status key.
    pub status: String,
    pub assignee: Option<Uuid>,
    pub page: i64,
    pub per_page: i64,
}

/// The ticket queue: tickets at sites in scope, and those at no site (organisation-wide
/// queries) for members who see every site.
pub async fn list_tickets(
    tx: &mut TenantTx,
    scope: &SiteScope,
    q: &TicketQuery,
) -> Result<Page<Ticket>, DbError> {
    let per_page = q.per_page.clamp(1, 200);
    let page = q.page.max(1);
    let status = match q.status.as_str() {
        "" | "open" => "t.status in ('open', 'waiting_on_customer') and $5::text <> '-'",
        "all" => "$5::text <> '-'",
        _ => "t.status = $5",
    };
    let sql = format!(
        "select {TICKET_COLUMNS} from ticket t {TICKET_JOINS}
          where t.organisation_id = $1 and {status}
            and ($6::uuid is null or t.assignee_id = $6)
            and ($2 or t.site_id = any($3) or s.estate_id = any($4))
          order by t.created_at desc, t.id desc limit $7 offset $8"
    );
    let rows: Vec<Ticket> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(scope.all)
        .bind(&scope.sites)
        .bind(&scope.estates)
        .bind(&q.status)
        .bind(q.assignee)
        .bind(per_page)
        .bind((page - 1) * per_page)
        .fetch_all(tx.conn())
        .await?;
    let total = (page - 1) * per_page + rows.len() as i64;
    let full = rows.len() as i64 == per_page;
    Ok(Page {
        rows,
        total: if full { total + 1 } else { total },
        page,
        per_page,
        capped: full,
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub kind: String,
    pub author_kind: String,
    pub author_name: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

pub async fn messages(tx: &mut TenantTx, ticket: Uuid) -> Result<Vec<Message>, DbError> {
    Ok(sqlx::query_as(
        "select kind, author_kind, author_name, body, created_at from ticket_message
          where organisation_id = $1 and ticket_id = $2 order by created_at, id",
    )
    .bind(tx.org().0)
    .bind(ticket)
    .fetch_all(tx.conn())
    .await?)
}

async fn lock(tx: &mut TenantTx, id: Uuid) -> Result<Ticket, OpsError> {
    crate::operations::lock_row(tx, "ticket", id).await?;
    find_ticket(tx, id).await?.ok_or(OpsError::NotFound)
}

/// A reply to the reporter (e-mailed) or an internal note. The first reply to the reporter
/// answers the response target.
pub async fn reply(
    tx: &mut TenantTx,
    ticket: Uuid,
    internal: bool,
    body: &str,
    author: &str,
    now: OffsetDateTime,
) -> Result<(), OpsError> {
    let t = lock(tx, ticket).await?;
    let body = body.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(OpsError::Invalid(
            "Write the message (up to 10,000 characters).".into(),
        ));
    }
    if t.status == "closed" {
        return Err(OpsError::State(
            "This ticket is closed: reopen it to reply.".into(),
        ));
    }
    if internal {
        insert_message(tx, ticket, "internal_note", "staff", author, body, now).await?;
        return Ok(());
    }
    insert_message(tx, ticket, "message", "staff", author, body, now).await?;
    sqlx::query(
        "update ticket set first_responded_at = coalesce(first_responded_at, $3), updated_at = $3
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(ticket)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if let Some(address) = t.reporter_email {
        email::queue(
            tx,
            NewEmail {
                to_address: address,
                to_name: Some(t.reporter_name.clone()),
                subject: format!("[#{}] {}", t.reference, t.subject),
                body_text: format!("Dear {},\n\n{body}\n\n{author}\n", t.reporter_name),
                body_html: None,
                category: "ticket_reply".into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Moves a ticket: `open`, `waiting_on_customer` (pauses the clock), `resolved`, or `closed`
/// with a reason. Reopening a resolved or closed ticket starts its clock again.
pub async fn set_status(
    tx: &mut TenantTx,
    ticket: Uuid,
    to: &str,
    reason: Option<&str>,
    author: &str,
    now: OffsetDateTime,
) -> Result<(), OpsError> {
    let t = lock(tx, ticket).await?;
    if t.status == to {
        return Err(OpsError::State(format!(
            "The ticket is already {}.",
            to.replace('_', " ")
        )));
    }
    let reason = match (to, reason.map(str::trim).filter(|r| !r.is_empty())) {
        ("closed", Some(r)) if CLOSURE_REASONS.iter().any(|(k, _)| *k == r) => Some(r),
        ("closed", _) => {
            return Err(OpsError::Invalid("Choose why the ticket is closed.".into()));
        }
        ("open" | "waiting_on_customer" | "resolved", _) => None,
        _ => return Err(OpsError::Invalid("Choose the ticket's new state.".into())),
    };
    // Coming out of a pause, the due times move on by its length.
    let paused = t.paused_since.map(|since| now - since);
    sqlx::query(
        "update ticket set status = $3, closure_reason = $4,
                paused_since = case when $3 = 'waiting_on_customer' then $5 else null end,
                response_due_at = response_due_at + coalesce($6, interval '0'),
                resolution_due_at = resolution_due_at + coalesce($6, interval '0'),
                closed_at = case when $3 = 'closed' then $5 else null end,
                updated_at = $5
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(ticket)
    .bind(to)
    .bind(reason)
    .bind(now)
    .bind(paused)
    .execute(tx.conn())
    .await?;
    let event = match (to, t.is_open()) {
        ("open", false) => "Reopened".to_owned(),
        ("open", true) => "No longer waiting on the customer".to_owned(),
        ("waiting_on_customer", _) => "Waiting on the customer: the clock is paused".to_owned(),
        ("resolved", _) => "Resolved".to_owned(),
        _ => format!(
            "Closed: {}",
            CLOSURE_REASONS
                .iter()
                .find(|(k, _)| Some(*k) == reason)
                .map_or("", |(_, l)| l)
                .to_lowercase()
        ),
    };
    insert_message(tx, ticket, "system", "system", author, &event, now).await?;
    Ok(())
}

/// Assigns the ticket to an active member (None: unassigned), who is told by e-mail.
pub async fn assign(
    tx: &mut TenantTx,
    ticket: Uuid,
    assignee: Option<Uuid>,
    author: &str,
    now: OffsetDateTime,
) -> Result<(), OpsError> {
    let t = lock(tx, ticket).await?;
    let person: Option<(String, String)> = match assignee {
        Some(id) => Some(
            sqlx::query_as(
                "select u.name, u.email from membership m join staff_user u on u.id = m.user_id
                  where m.organisation_id = $1 and m.id = $2 and m.status = 'active'",
            )
            .bind(tx.org().0)
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| OpsError::Invalid("Choose an active member of staff.".into()))?,
        ),
        None => None,
    };
    sqlx::query("update ticket set assignee_id = $3, updated_at = $4 where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(ticket)
        .bind(assignee)
        .bind(now)
        .execute(tx.conn())
        .await?;
    let text = match &person {
        Some((name, _)) => format!("Assigned to {name}"),
        None => "Unassigned".to_owned(),
    };
    insert_message(tx, ticket, "system", "system", author, &text, now).await?;
    if let Some((name, address)) = person {
        email::queue(
            tx,
            NewEmail {
                to_address: address,
                to_name: Some(name.clone()),
                subject: format!("{} assigned to you: {}", t.reference, t.subject),
                body_text: format!(
                    "Hello {name},\n\n{author} has assigned ticket {} \"{}\" to you.\n",
                    t.reference, t.subject
                ),
                body_html: None,
                category: "ticket_assigned".into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Links the ticket to the issue or work order it led to, by reference. A reference at a site
/// outside the member's scope is answered as if it did not exist.
pub async fn link(
    tx: &mut TenantTx,
    ticket: Uuid,
    reference: &str,
    scope: &SiteScope,
    author: &str,
    now: OffsetDateTime,
) -> Result<(), OpsError> {
    lock(tx, ticket).await?;
    let r = reference.trim().to_uppercase();
    let (column, table) = if r.starts_with("ISS-") {
        ("issue_id", "issue")
    } else if r.starts_with("WO-") {
        ("work_order_id", "work_order")
    } else {
        return Err(OpsError::Invalid(
            "Give an issue (ISS-…) or work order (WO-…) reference.".into(),
        ));
    };
    let sql = format!(
        "select t.id, t.site_id, s.estate_id from {table} t
           join site s on s.organisation_id = t.organisation_id and s.id = t.site_id
          where t.organisation_id = $1 and t.reference = $2"
    );
    let found: Option<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(&r)
        .fetch_optional(tx.conn())
        .await?;
    let Some(target) = found
        .filter(|(_, site, estate)| scope.covers(*site, *estate))
        .map(|(id, ..)| id)
    else {
        return Err(OpsError::Invalid(format!("There is no {r}.")));
    };
    let sql = format!(
        "update ticket set {column} = $3, updated_at = $4 where organisation_id = $1 and id = $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tx.org().0)
        .bind(ticket)
        .bind(target)
        .bind(now)
        .execute(tx.conn())
        .await?;
    insert_message(
        tx,
        ticket,
        "system",
        "system",
        author,
        &format!("Linked to {r}"),
        now,
    )
    .await?;
    Ok(())
}

/// Cascade: when a work order closes, the open tickets linked to it are resolved.
pub async fn resolve_for_work_order(
    tx: &mut TenantTx,
    work_order: Uuid,
    reference: &str,
    now: OffsetDateTime,
) -> Result<usize, DbError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "update ticket set status = 'resolved', paused_since = null, updated_at = $3
          where organisation_id = $1 and work_order_id = $2 and status in ('open', 'waiting_on_customer')
          returning id",
    )
    .bind(tx.org().0)
    .bind(work_order)
    .bind(now)
    .fetch_all(tx.conn())
    .await?;
    for id in &ids {
        insert_message(
            tx,
            *id,
            "system",
            "system",
            "PropLink",
            &format!("Resolved: work order {reference} was closed"),
            now,
        )
        .await?;
    }
    Ok(ids.len())
}

/// Active members to assign tickets to: (membership id, name).
pub async fn assignees(tx: &mut TenantTx) -> Result<Vec<(Uuid, String)>, DbError> {
    Ok(sqlx::query_as(
        "select m.id, u.name from membership m join staff_user u on u.id = m.user_id
          where m.organisation_id = $1 and m.status = 'active' order by lower(u.name) limit 500",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}
