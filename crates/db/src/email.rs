//! E-mail messages sent on an organisation's behalf, and the provider events about them.
//!
//! [`queue`] stores a message and enqueues its `email.send` job in the caller's transaction:
//! the message is sent if and only if the caller's write commits.

use crate::error::DbError;
use crate::jobs::{self, NewJob};
use crate::tenant::TenantTx;
use time::OffsetDateTime;
use uuid::Uuid;

pub const SEND_JOB: &str = "email.send";

#[derive(Debug, Clone)]
pub struct NewEmail {
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub category: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailMessage {
    pub id: Uuid,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub category: String,
    pub status: String,
    pub status_detail: Option<String>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

macro_rules! columns {
    () => {
        "id, to_address, to_name, subject, body_text, body_html, category, status, status_detail, provider, provider_message_id, created_at, sent_at"
    };
}

/// A stored file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attachment {
    pub filename: String,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub object_key: String,
}

/// Stores the message with files already in the object store, and queues its delivery.
pub async fn queue_with_attachments(
    tx: &mut TenantTx,
    email: NewEmail,
    attachments: &[Attachment],
) -> Result<Uuid, DbError> {
    let id = store(tx, email).await?;
    for a in attachments {
        sqlx::query(
            "insert into email_attachment (organisation_id, id, message_id, filename, media_type,
                    sha256, size_bytes, object_key)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(&a.filename)
        .bind(&a.media_type)
        .bind(&a.sha256)
        .bind(a.size_bytes)
        .bind(&a.object_key)
        .execute(tx.conn())
        .await?;
    }
    enqueue_send(tx, id).await?;
    Ok(id)
}

/// The files a message carries, in the order added.
pub async fn attachments(tx: &mut TenantTx, message: Uuid) -> Result<Vec<Attachment>, DbError> {
    Ok(sqlx::query_as(
        "select filename, media_type, sha256, size_bytes, object_key from email_attachment
          where organisation_id = $1 and message_id = $2 order by id",
    )
    .bind(tx.org().0)
    .bind(message)
    .fetch_all(tx.conn())
    .await?)
}

/// Stores the message and queues its delivery. Returns the message id.
pub async fn queue(tx: &mut TenantTx, email: NewEmail) -> Result<Uuid, DbError> {
    let id = store(tx, email).await?;
    enqueue_send(tx, id).await?;
    Ok(id)
}

async fn store(tx: &mut TenantTx, email: NewEmail) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into email_message (organisation_id, id, to_address, to_name, subject, body_text, body_html, category)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(email.to_address.trim())
    .bind(email.to_name)
    .bind(email.subject)
    .bind(email.body_text)
    .bind(email.body_html)
    .bind(email.category)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

async fn enqueue_send(tx: &mut TenantTx, id: Uuid) -> Result<(), DbError> {
    jobs::enqueue(
        tx,
        NewJob::new(SEND_JOB, serde_json::json!({ "message_id": id }))
            .idempotency_key(format!("email:{id}")),
    )
    .await?;
    Ok(())
}

pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Option<EmailMessage>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from email_message where organisation_id = $1 and id = $2"
    ))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Newest first.
pub async fn recent(tx: &mut TenantTx, limit: i64) -> Result<Vec<EmailMessage>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from email_message where organisation_id = $1 order by created_at desc, id desc limit $2"
    ))
    .bind(tx.org().0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn mark_sent(
    tx: &mut TenantTx,
    id: Uuid,
    provider: &str,
    provider_message_id: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "update email_message set status = 'sent', provider = $3, provider_message_id = $4,
                sent_at = now(), updated_at = now(), status_detail = null
          where organisation_id = $1 and id = $2 and status = 'queued'",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(provider)
    .bind(provider_message_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

pub async fn mark_failed(tx: &mut TenantTx, id: Uuid, detail: &str) -> Result<(), DbError> {
    sqlx::query(
        "update email_message set status = 'failed', status_detail = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(detail)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A delivery event reported by the provider.
#[derive(Debug, Clone)]
pub struct ProviderEvent {
    pub provider: String,
    pub provider_event_id: String,
    pub message_id: Uuid,
    /// Our status vocabulary: delivered, deferred, bounced, dropped.
    pub status: String,
    pub detail: Option<String>,
    pub occurred_at: OffsetDateTime,
}

/// How far along a message is; a late-arriving earlier event never moves it back.
fn rank(status: &str) -> i32 {
    match status {
        "queued" => 0,
        "sent" => 1,
        "deferred" => 2,
        "delivered" => 3,
        _ => 4, // bounced, dropped, failed
    }
}

/// Records the event once and moves the message's status forward. Returns false when the
/// event was already recorded or the message is unknown in this organisation.
pub async fn record_event(tx: &mut TenantTx, event: &ProviderEvent) -> Result<bool, DbError> {
    let org = tx.org().0;
    let current: Option<String> = sqlx::query_scalar(
        "select status from email_message where organisation_id = $1 and id = $2 for update",
    )
    .bind(org)
    .bind(event.message_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(current) = current else {
        return Ok(false);
    };
    let inserted = sqlx::query(
        "insert into email_event (organisation_id, id, message_id, provider, provider_event_id, event, detail, occurred_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (organisation_id, provider, provider_event_id) do nothing",
    )
    .bind(org)
    .bind(Uuid::now_v7())
    .bind(event.message_id)
    .bind(&event.provider)
    .bind(&event.provider_event_id)
    .bind(&event.status)
    .bind(&event.detail)
    .bind(event.occurred_at)
    .execute(tx.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    if rank(&event.status) >= rank(&current) && event.status != current {
        sqlx::query(
            "update email_message set status = $3, status_detail = $4, updated_at = now()
              where organisation_id = $1 and id = $2",
        )
        .bind(org)
        .bind(event.message_id)
        .bind(&event.status)
        .bind(&event.detail)
        .execute(tx.conn())
        .await?;
    }
    Ok(true)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailEventRow {
    pub provider_event_id: String,
    pub event: String,
    pub detail: Option<String>,
    pub occurred_at: OffsetDateTime,
}

pub async fn events(tx: &mut TenantTx, message_id: Uuid) -> Result<Vec<EmailEventRow>, DbError> {
    Ok(sqlx::query_as(
        "select provider_event_id, event, detail, occurred_at from email_event
          where organisation_id = $1 and message_id = $2 order by occurred_at, id",
    )
    .bind(tx.org().0)
    .bind(message_id)
    .fetch_all(tx.conn())
    .await?)
}
