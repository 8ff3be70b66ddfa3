//! SendGrid: the v3 mail-send API and the signed event webhook.
//!
//! Sending: `POST /v3/mail/send` with a bearer API key. SendGrid answers 202 with the message's
//! id in `X-Message-Id`; 400-class answers carry `{"errors": [{"message", "field"}]}`; 429 means
//! rate-limited until the unix time in `X-RateLimit-Reset`; 5xx is a passing fault. Our custom
//! arguments (`proplink_message_id`, `proplink_org`) come back on every event.
//!
//! Events: SendGrid signs `timestamp ‖ raw body` with ECDSA P-256/SHA-256 and sends the
//! base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature` and the timestamp in
//! `X-Twilio-Email-Event-Webhook-Timestamp`; the account's verification key is a base64 DER
//! public key. The body is a JSON array of events.

use super::{Accepted, Mailer, OutgoingEmail, ProviderEventPayload, SendError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use proplink_domain::OrgId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com";
pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

pub struct SendGrid {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    /// Extra attempts within one send for 429/5xx before handing back to the job queue.
    retries: u32,
    max_wait: Duration,
}

impl SendGrid {
    pub fn new(base_url: &str, api_key: SecretString) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            retries: 2,
            max_wait: Duration::from_secs(10),
        })
    }

    /// Caps how long one send waits for a rate limit to reset before giving up to the queue.
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    fn body(email: &OutgoingEmail) -> serde_json::Value {
        let mut to = serde_json::json!({ "email": email.to_address });
        if let Some(name) = email.to_name.as_deref().filter(|n| !n.is_empty()) {
            to["name"] = name.into();
        }
        let mut content =
            vec![serde_json::json!({ "type": "text/plain", "value": email.body_text })];
        if let Some(html) = &email.body_html {
            content.push(serde_json::json!({ "type": "text/html", "value": html }));
        }
        let mut custom_args =
            serde_json::json!({ "proplink_message_id": email.message_id.to_string() });
        // Platform mail (sign-in codes, password resets) belongs to no organisation.
        if let Some(org) = email.org {
            custom_args["proplink_org"] = org.to_string().into();
        }
        let mut body = serde_json::json!({
            "personalizations": [{ "to": [to] }],
            "from": { "email": email.from.address, "name": email.from.name },
            "subject": email.subject,
            "content": content,
            "custom_args": custom_args,
        });
        if !email.attachments.is_empty() {
            use base64::Engine;
            body["attachments"] = email
                .attachments
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "content": base64::engine::general_purpose::STANDARD.encode(&a.bytes),
                        "filename": a.filename,
                        "type": a.media_type,
                        "disposition": "attachment",
                    })
                })
                .collect();
        }
        body
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<Accepted, SendError> {
        let response = self
            .http
            .post(format!("{}/v3/mail/send", self.base_url))
            .bearer_auth(self.api_key.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::Transient {
                message: format!("SendGrid could not be reached: {}", without_url(&e)),
                retry_after: None,
            })?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if status.is_success() {
            return Ok(Accepted {
                provider_message_id: header("x-message-id"),
            });
        }
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok());
        let text = response.text().await.unwrap_or_default();
        let detail = error_messages(&text);
        match status.as_u16() {
            429 => {
                let wait = reset.map(|at| {
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    Duration::from_secs(u64::try_from(at - now).unwrap_or(0).max(1))
                });
                Err(SendError::Transient {
                    message: "SendGrid rate limit reached".into(),
                    retry_after: wait.or(Some(Duration::from_secs(1))),
                })
            }
            s if s >= 500 => Err(SendError::Transient {
                message: format!("SendGrid had a server error ({status}){detail}"),
                retry_after: None,
            }),
            401 | 403 => Err(SendError::Permanent(format!(
                "SendGrid refused the API key ({status}){detail}: check mail.sendgrid.api_key"
            ))),
            _ => Err(SendError::Permanent(format!(
                "SendGrid rejected the message ({status}){detail}"
            ))),
        }
    }
}

/// ": message (field); message" from SendGrid's error body, or "" when it has none.
fn error_messages(body: &str) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        message: Option<String>,
        field: Option<String>,
    }
    let Ok(parsed) = serde_json::from_str::<Errors>(body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .into_iter()
        .filter_map(|e| {
            let m = e.message?;
            Some(match e.field.filter(|f| !f.is_empty() && f != "null") {
                Some(f) => format!("{m} ({f})"),
                None => m,
            })
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

/// reqwest errors print the URL; ours carries no secrets, but keep messages short anyway.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "the API");
    }
    s
}

#[async_trait::async_trait]
impl Mailer for SendGrid {
    fn provider(&self) -> &'static str {
        "sendgrid"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<Accepted, SendError> {
        let body = Self::body(email);
        let mut tries = 0;
        loop {
            match self.attempt(&body).await {
                Err(SendError::Transient {
                    message,
                    retry_after,
                }) if tries < self.retries => {
                    let wait = retry_after.unwrap_or(Duration::from_millis(500 * 2_u64.pow(tries)));
                    if wait > self.max_wait {
                        return Err(SendError::Transient {
                            message,
                            retry_after: Some(wait),
                        });
                    }
                    tracing::warn!(%message, wait_ms = wait.as_millis() as u64, "SendGrid: retrying");
                    tokio::time::sleep(wait).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the request has no SendGrid signature or timestamp header")]
    MissingSignature,
    #[error("the SendGrid signature is not valid base64 DER")]
    MalformedSignature,
    #[error("the SendGrid signature does not match the request body")]
    BadSignature,
    #[error("the body is not a JSON array of SendGrid events: {0}")]
    BadBody(String),
}

/// The account's event-webhook verification key.
#[derive(Clone)]
pub struct WebhookKey(VerifyingKey);

impl WebhookKey {
    /// Parses the base64 DER public key shown in SendGrid's Mail Settings.
    pub fn parse(base64_der: &str) -> Result<Self, String> {
        let der = B64
            .decode(base64_der.trim())
            .map_err(|_| "the SendGrid webhook verification key is not valid base64".to_owned())?;
        VerifyingKey::from_public_key_der(&der)
            .map(Self)
            .map_err(|_| {
                "the SendGrid webhook verification key is not a P-256 public key".to_owned()
            })
    }

    /// Verifies the signature over `timestamp ‖ raw body`. Call before parsing anything.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(WebhookError::MissingSignature);
        };
        let der = B64
            .decode(signature.trim())
            .map_err(|_| WebhookError::MalformedSignature)?;
        let signature = Signature::from_der(&der).map_err(|_| WebhookError::MalformedSignature)?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.0
            .verify(&signed, &signature)
            .map_err(|_| WebhookError::BadSignature)
    }
}

/// One event as SendGrid sends it (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct RawEvent {
    pub sg_event_id: Option<String>,
    pub event: Option<String>,
    pub timestamp: Option<i64>,
    pub reason: Option<String>,
    pub response: Option<String>,
    pub proplink_message_id: Option<String>,
    pub proplink_org: Option<String>,
}

/// An event after parsing: its id, the raw JSON (stored as received), and where it goes.
#[derive(Debug, Clone)]
pub struct ParsedEvent {
    pub event_id: String,
    pub raw: serde_json::Value,
    pub route: Option<(OrgId, ProviderEventPayload)>,
    /// Why the event will not be applied to a message (stored for inspection all the same).
    pub note: Option<String>,
}

/// Parses a verified body. Events without an id cannot be de-duplicated and are skipped.
pub fn parse_events(body: &[u8]) -> Result<Vec<ParsedEvent>, WebhookError> {
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| WebhookError::BadBody(e.to_string()))?;
    let mut out = Vec::with_capacity(items.len());
    for raw in items {
        let event: RawEvent = serde_json::from_value(raw.clone())
            .map_err(|e| WebhookError::BadBody(e.to_string()))?;
        let Some(event_id) = event.sg_event_id.clone().filter(|s| !s.is_empty()) else {
            tracing::warn!("SendGrid event without sg_event_id skipped");
            continue;
        };
        let status = match event.event.as_deref() {
            Some("delivered") => Some("delivered"),
            Some("bounce") => Some("bounced"),
            Some("dropped") => Some("dropped"),
            Some("deferred") => Some("deferred"),
            _ => None,
        };
        let org = event
            .proplink_org
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(OrgId);
        let message = event
            .proplink_message_id
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok());
        let (route, note) = match (status, org, message) {
            (None, _, _) => (
                None,
                Some(format!("event type {:?} is not tracked", event.event)),
            ),
            (_, None, _) | (_, _, None) => {
                (None, Some("the event names no PropLink message".into()))
            }
            (Some(status), Some(org), Some(message_id)) => {
                let detail = event.reason.clone().or(event.response.clone());
                let payload = ProviderEventPayload {
                    provider: "sendgrid".into(),
                    provider_event_id: event_id.clone(),
                    message_id,
                    status: status.into(),
                    detail,
                    timestamp: event.timestamp.unwrap_or_default(),
                };
                (Some((org, payload)), None)
            }
        };
        out.push(ParsedEvent {
            event_id,
            raw,
            route,
            note,
        });
    }
    Ok(out)
}
