//! SMTP delivery through lettre.

use super::{Accepted, Mailer, OutgoingEmail, SendError};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS (usually port 465).
    Tls,
    /// STARTTLS upgrade (usually port 587).
    Starttls,
    /// No encryption: only for a relay on the same machine or a test server.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    /// Builds the transport (no connection is made until the first message).
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let builder = match settings.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host),
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
            }
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &settings.host,
            )),
        }
        .map_err(|e| format!("the SMTP host \"{}\" cannot be used: {e}", settings.host))?;
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
        })
    }
}

fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, SendError> {
    let addr = address.parse().map_err(|_| {
        SendError::Permanent(format!("\"{address}\" is not a valid e-mail address"))
    })?;
    Ok(Mailbox::new(
        name.filter(|n| !n.is_empty()).map(str::to_owned),
        addr,
    ))
}

/// Builds the MIME message (plain text, plus HTML as an alternative when present).
pub fn build_message(email: &OutgoingEmail) -> Result<Message, SendError> {
    let builder = Message::builder()
        .from(mailbox(&email.from.address, Some(&email.from.name))?)
        .to(mailbox(&email.to_address, email.to_name.as_deref())?)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}@proplink>", email.message_id)));
    let text = SinglePart::builder()
        .header(header::ContentType::TEXT_PLAIN)
        .body(email.body_text.clone());
    let built = match (&email.body_html, email.attachments.is_empty()) {
        (Some(html), true) => builder.multipart(MultiPart::alternative_plain_html(
            email.body_text.clone(),
            html.clone(),
        )),
        (None, true) => builder.singlepart(text),
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                    email.body_text.clone(),
                    html.clone(),
                )),
                None => MultiPart::mixed().singlepart(text),
            };
            for a in &email.attachments {
                let content_type = header::ContentType::parse(&a.media_type).map_err(|e| {
                    SendError::Permanent(format!("the attachment's type cannot be used: {e}"))
                })?;
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(a.filename.clone())
                        .body(a.bytes.clone(), content_type),
                );
            }
            builder.multipart(mixed)
        }
    };
    built.map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))
}

#[async_trait::async_trait]
impl Mailer for Smtp {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, SendError> {
        let message = build_message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(Accepted {
                provider_message_id: Some(format!("{}@proplink", email.message_id)),
            }),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                "the SMTP server refused the message: {e}"
            ))),
            Err(e) => Err(SendError::Transient {
                message: format!("SMTP delivery failed: {e}"),
                retry_after: None,
            }),
        }
    }
}
