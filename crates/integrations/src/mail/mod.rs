//! E-mail delivery. [`Mailer`] has three implementations:
//! - [`outbox::Outbox`], the embedded default: messages stay in the database and are read in the
//!   development mailbox page;
//! - [`smtp::Smtp`], any SMTP server, through lettre;
//! - [`sendgrid::SendGrid`], SendGrid's v3 mail-send API, with its signed event webhook.
//!
//! Messages are stored by `proplink_db::email::queue` and sent by the `email.send` job
//! ([`SendEmailJob`]); provider events are applied by the `email.provider_event` job
//! ([`ProviderEventJob`]).

pub mod outbox;
pub mod platform;
pub mod sendgrid;
pub mod smtp;

use proplink_db::TenantTx;
use proplink_db::email::{self, ProviderEvent};
use proplink_db::jobs::{Job, JobError, JobHandler};
use proplink_db::organisation::{self, OrgStatus};
use proplink_domain::OrgId;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const PROVIDER_EVENT_JOB: &str = "email.provider_event";

/// The sender every message goes out as.
#[derive(Debug, Clone)]
pub struct Sender {
    pub address: String,
    pub name: String,
}

/// One message, ready for a provider.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub message_id: Uuid,
    /// None for platform mail (sign-in codes, password resets), which belongs to no organisation.
    pub org: Option<OrgId>,
    pub from: Sender,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Files sent with it (a demand's PDF).
    pub attachments: Vec<OutgoingAttachment>,
}

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Sending again will not help (bad address, rejected content, bad credentials).
    #[error("{0}")]
    Permanent(String),
    /// Try again later (rate limit, provider or network trouble).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// The name stored against each message ("outbox", "smtp", "sendgrid").
    fn provider(&self) -> &'static str;
    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, SendError>;
}

/// The `email.send` job: loads the stored message and hands it to the mailer.
pub struct SendEmailJob {
    pub mailer: Arc<dyn Mailer>,
    pub sender: Sender,
    /// Where attachments are stored; a message with attachments and no store is not sent.
    pub files: Option<proplink_files::FileStore>,
}

#[async_trait::async_trait]
impl JobHandler for SendEmailJob {
    async fn run(&self, tx: &mut TenantTx, job: &Job) -> Result<(), JobError> {
        let id = job
            .payload
            .get("message_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| JobError::permanent("the job has no valid message_id"))?;
        let Some(message) = email::get(tx, id).await? else {
            return Err(JobError::permanent(format!("message {id} does not exist")));
        };
        if message.status != "queued" {
            return Ok(()); // already handed over by an earlier attempt
        }
        // Nothing is recorded in an organisation that can no longer change, so nothing is sent
        // from one either; the job is kept, dead, with the reason.
        let status = organisation::status_in(tx).await?;
        if status != OrgStatus::Active {
            return Err(JobError::permanent(format!(
                "not sent: the organisation is {}",
                status.as_str().replace('_', "-")
            )));
        }
        let mut attachments = Vec::new();
        for a in email::attachments(tx, id).await? {
            let Some(files) = &self.files else {
                return Err(JobError::permanent(
                    "the message has attachments but no file store is configured",
                ));
            };
            let bytes = files
                .get(&a.object_key)
                .await
                .map_err(|e| JobError::retry(format!("reading attachment {}: {e}", a.filename)))?;
            attachments.push(OutgoingAttachment {
                filename: a.filename,
                media_type: a.media_type,
                bytes: bytes.to_vec(),
            });
        }
        let outgoing = OutgoingEmail {
            message_id: id,
            org: Some(tx.org()),
            from: self.sender.clone(),
            to_address: message.to_address,
            to_name: message.to_name,
            subject: message.subject,
            body_text: message.body_text,
            body_html: message.body_html,
            attachments,
        };
        match self.mailer.send(&outgoing).await {
            Ok(accepted) => {
                email::mark_sent(
                    tx,
                    id,
                    self.mailer.provider(),
                    accepted.provider_message_id.as_deref(),
                )
                .await?;
                Ok(())
            }
            Err(SendError::Permanent(reason)) => {
                email::mark_failed(tx, id, &reason).await?;
                Ok(())
            }
            Err(SendError::Transient { message, .. }) if job.attempts >= job.max_attempts => {
                email::mark_failed(
                    tx,
                    id,
                    &format!("gave up after {} attempts: {message}", job.attempts),
                )
                .await?;
                Ok(())
            }
            Err(SendError::Transient { message, .. }) => Err(JobError::retry(message)),
        }
    }
}

/// The `email.provider_event` job: applies one stored provider event to its message.
pub struct ProviderEventJob;

#[async_trait::async_trait]
impl JobHandler for ProviderEventJob {
    async fn run(&self, tx: &mut TenantTx, job: &Job) -> Result<(), JobError> {
        let event: ProviderEventPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::permanent(format!("the event payload is not valid: {e}")))?;
        let occurred_at = time::OffsetDateTime::from_unix_timestamp(event.timestamp)
            .map_err(|_| JobError::permanent("the event timestamp is out of range"))?;
        email::record_event(
            tx,
            &ProviderEvent {
                provider: event.provider,
                provider_event_id: event.provider_event_id,
                message_id: event.message_id,
                status: event.status,
                detail: event.detail,
                occurred_at,
            },
        )
        .await?;
        Ok(())
    }
}

/// A provider event as queued for [`ProviderEventJob`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProviderEventPayload {
    pub provider: String,
    pub provider_event_id: String,
    pub message_id: Uuid,
    pub status: String,
    pub detail: Option<String>,
    pub timestamp: i64,
}
