//! The embedded default: nothing leaves the machine. Messages stay in `email_message` and the
//! development mailbox page shows them, so a newcomer running `proplink demo` can read
//! one-time codes and invitations.

use super::{Accepted, Mailer, OutgoingEmail, SendError};

pub struct Outbox;

#[async_trait::async_trait]
impl Mailer for Outbox {
    fn provider(&self) -> &'static str {
        "outbox"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, SendError> {
        tracing::info!(message_id = %email.message_id, to = %email.to_address, "e-mail kept in the local outbox");
        Ok(Accepted {
            provider_message_id: None,
        })
    }
}
