//! Sends the platform outbox (`platform_email`): mail that belongs to no organisation, such as
//! staff sign-in codes, password resets and lock-out notices. It runs next to the job worker,
//! as the platform role, and wakes on the same notification as the job queue.

use super::{Mailer, OutgoingEmail, SendError, Sender};
use proplink_db::PlatformPool;
use proplink_db::staff;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Attempts before a message is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

pub struct PlatformOutbox {
    pub pool: PlatformPool,
    pub mailer: Arc<dyn Mailer>,
    pub sender: Sender,
    pub poll: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Idle,
    Sent,
    Retrying,
    Failed,
}

impl PlatformOutbox {
    /// Sends at most one due message.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<Pass, proplink_db::DbError> {
        // A claim that is never finished (the process died mid-send) comes due again in 5 minutes.
        let Some(msg) =
            staff::claim_platform_email(&self.pool, now, time::Duration::minutes(5)).await?
        else {
            return Ok(Pass::Idle);
        };
        let outgoing = OutgoingEmail {
            message_id: msg.id,
            org: None,
            from: self.sender.clone(),
            to_address: msg.to_address.clone(),
            to_name: msg.to_name.clone(),
            subject: msg.subject.clone(),
            body_text: msg.body_text.clone(),
            body_html: None,
            attachments: Vec::new(),
        };
        match self.mailer.send(&outgoing).await {
            Ok(accepted) => {
                staff::mark_platform_email_sent(
                    &self.pool,
                    msg.id,
                    accepted.provider_message_id.as_deref(),
                    OffsetDateTime::now_utc(),
                )
                .await?;
                Ok(Pass::Sent)
            }
            Err(SendError::Transient {
                message,
                retry_after,
            }) if msg.attempts < MAX_ATTEMPTS => {
                let wait = retry_after
                    .unwrap_or_else(|| Duration::from_secs(5 * 2u64.pow(msg.attempts as u32)));
                let retry_at = now + time::Duration::seconds(wait.as_secs().min(3600) as i64);
                tracing::warn!(id = %msg.id, error = %message, "platform e-mail will be retried");
                staff::mark_platform_email_failed(&self.pool, msg.id, &message, Some(retry_at))
                    .await?;
                Ok(Pass::Retrying)
            }
            Err(e) => {
                tracing::error!(id = %msg.id, error = %e, "platform e-mail could not be sent");
                staff::mark_platform_email_failed(&self.pool, msg.id, &e.to_string(), None).await?;
                Ok(Pass::Failed)
            }
        }
    }

    /// Sends until `shutdown`: drains what is due, then sleeps until the poll interval passes.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.run_once(OffsetDateTime::now_utc()).await {
                Ok(Pass::Idle) => {}
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "platform outbox pass failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}
