//! Online payments (DESIGN.md §7): real clients for two providers' published APIs, with their
//! webhook signatures and events.
//! - [`stripe`]: card payments through Stripe Checkout, `Stripe-Signature` webhooks;
//! - [`gocardless`]: Bacs Direct Debit mandates through billing requests, then payments against
//!   them, `Webhook-Signature` webhooks.
//!
//! Nothing here touches the database. Callers store each webhook event once, by its id, before
//! acting on it: GoCardless signatures carry no timestamp, and Stripe's tolerate five minutes, so
//! replay protection is the store's job, not the signature's.
//!
//! Error policy: a [`ProviderError`] displays as a sentence a property manager can read and an
//! operator can log. It carries the provider's own explanation and request id, never a key, a
//! token or a request URL; any echo of the key in a provider's message is blanked out.
//! [`ProviderError::is_retryable`] tells the job queue whether to try again with the same
//! idempotency key.

pub mod gocardless;
pub mod stripe;

use hmac::{Hmac, Mac};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

/// How long one call to a provider may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which provider an error or a signature concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    GoCardless,
}

impl Provider {
    /// The name PropLink records payments under: "stripe" or "gocardless".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::GoCardless => "gocardless",
        }
    }

    /// The provider's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stripe => "Stripe",
            Self::GoCardless => "GoCardless",
        }
    }

    /// The header its webhooks carry their signature in, as its documentation writes it.
    pub fn signature_header(self) -> &'static str {
        match self {
            Self::Stripe => "Stripe-Signature",
            Self::GoCardless => "Webhook-Signature",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a call to a payment provider did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with its own error: a declined card, a parameter it refused, a
    /// mandate that is no longer active, a key it does not accept.
    #[error("{provider} refused the request: {message}{}", code_suffix(code.as_deref()))]
    Api {
        provider: Provider,
        /// The HTTP status.
        status: u16,
        /// The provider's error type: Stripe's `card_error`, `invalid_request_error`, ...;
        /// GoCardless's `validation_failed`, `invalid_state`, `invalid_api_usage`, ...
        kind: String,
        /// The provider's specific reason: Stripe's `code` (`card_declined`), GoCardless's first
        /// error `reason` (`mandate_is_inactive`).
        code: Option<String>,
        message: String,
        /// Quote this to the provider's support.
        request_id: Option<String>,
    },
    #[error("{provider} is limiting how often PropLink may call it; {}", retry_text(*retry_after_secs))]
    RateLimited {
        provider: Provider,
        retry_after_secs: Option<u64>,
    },
    /// A server error at the provider, a timeout or no connection: the request may or may not
    /// have taken effect, so retry with the same idempotency key.
    #[error("Payments are unavailable just now ({0}); try again in a few minutes")]
    Unavailable(String),
    /// The provider answered, but not in the shape its documentation gives.
    #[error("The payment provider sent an answer PropLink could not read ({0})")]
    Decode(String),
    /// PropLink refused to send the request: the provider would refuse it, or it would mean
    /// something other than intended.
    #[error("PropLink did not send the request: {0}")]
    Invalid(String),
}

impl ProviderError {
    /// Whether the same call, with the same idempotency key, may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Unavailable(_) => true,
            Self::Api { .. } | Self::Decode(_) | Self::Invalid(_) => false,
        }
    }

    /// The provider's request id, for its support team.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

fn retry_text(after: Option<u64>) -> String {
    match after {
        Some(1) => "try again in a second".into(),
        Some(secs) => format!("try again in {secs} seconds"),
        None => "try again shortly".into(),
    }
}

/// Why a webhook was refused before reading it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {} header is missing", .0.signature_header())]
    Missing(Provider),
    #[error("the {} header is not in {}'s format", .0.signature_header(), .0)]
    Malformed(Provider),
    #[error("the {} header does not match the request body and the webhook secret", .0.signature_header())]
    Mismatch(Provider),
    /// Only Stripe signs a timestamp. Negative when it lies in the future.
    #[error("{}", stale_text(*age_secs))]
    Stale { age_secs: i64 },
}

fn stale_text(age_secs: i64) -> String {
    let limit = stripe::TOLERANCE_SECS;
    if age_secs >= 0 {
        format!(
            "the Stripe-Signature header was made {age_secs} seconds ago, more than the {limit} allowed"
        )
    } else {
        format!(
            "the Stripe-Signature header is dated {} seconds in the future, more than the {limit} allowed",
            age_secs.unsigned_abs()
        )
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`, ready for the message.
fn keyed(key: &SecretString) -> HmacSha256 {
    match HmacSha256::new_from_slice(key.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length (a long one is hashed first); only MACs with a fixed
        // key size can refuse one.
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of every length"),
    }
}

/// The HTTP client both providers use.
fn http_client(provider: Provider) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client for {provider}: {e}"))
}

/// `base_url` without a trailing slash, refused unless it is http(s).
fn checked_base_url(provider: Provider, base_url: &str) -> Result<String, String> {
    let base = base_url.trim().trim_end_matches('/');
    match Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(base.to_owned())
        }
        _ => Err(format!(
            "the {provider} base URL {base:?} is not an http(s) URL"
        )),
    }
}

/// Refuses an empty key or token at start-up rather than at the first payment.
fn checked_secret(provider: Provider, what: &str, secret: &SecretString) -> Result<(), String> {
    if secret.expose_secret().trim().is_empty() {
        Err(format!("the {provider} {what} is empty"))
    } else {
        Ok(())
    }
}

/// Idempotency keys make a retried POST safe; a missing or oversized one is a caller's bug.
fn checked_idempotency_key(
    provider: Provider,
    key: &str,
    max_len: usize,
) -> Result<(), ProviderError> {
    if key.trim().is_empty() {
        return Err(ProviderError::Invalid(format!(
            "a request to {provider} needs an idempotency key"
        )));
    }
    if key.len() > max_len || !key.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(ProviderError::Invalid(format!(
            "{provider} idempotency keys are at most {max_len} printable ASCII characters"
        )));
    }
    Ok(())
}

/// reqwest's error, described without the URL, for a call that got no answer.
fn transport_error(provider: Provider, e: reqwest::Error) -> ProviderError {
    if e.is_builder() {
        // Nothing was sent, and sending the same again would fail the same way.
        return ProviderError::Invalid(format!(
            "the request to {provider} could not be built: {}",
            e.without_url()
        ));
    }
    if e.is_timeout() {
        return ProviderError::Unavailable(format!(
            "{provider} did not answer within {} seconds",
            TIMEOUT.as_secs()
        ));
    }
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        detail.push_str(": ");
        detail.push_str(&inner.to_string());
        source = inner.source();
    }
    ProviderError::Unavailable(format!("{provider} could not be reached: {detail}"))
}

/// One answer from a provider, read whole.
struct Answer {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn read(
        provider: Provider,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Self, ProviderError> {
        let response = sent.map_err(|e| transport_error(provider, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(provider, e))?;
        Ok(Self {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The standard `Retry-After` in seconds, when given that way.
    fn retry_after(&self) -> Option<u64> {
        self.header("retry-after")?.parse().ok()
    }

    /// A 5xx answer, as an [`ProviderError::Unavailable`].
    fn unavailable(&self, provider: Provider) -> ProviderError {
        let reason = self.status.canonical_reason().unwrap_or("server error");
        ProviderError::Unavailable(format!(
            "{provider} answered {} {reason}",
            self.status.as_u16()
        ))
    }

    /// A success body as `T`.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        provider: Provider,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ProviderError::Decode(format!("{provider}: {e}")))
    }
}

/// `text` with the secret blanked out, in case a provider echoed it back.
fn redact(secret: &SecretString, text: &str) -> String {
    let secret = secret.expose_secret();
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_the_passing_ones() {
        let api = ProviderError::Api {
            provider: Provider::Stripe,
            status: 402,
            kind: "card_error".into(),
            code: Some("card_declined".into()),
            message: "Your card was declined.".into(),
            request_id: Some("req_1".into()),
        };
        assert!(!api.is_retryable());
        assert_eq!(
            api.to_string(),
            "Stripe refused the request: Your card was declined. (card_declined)"
        );
        assert_eq!(api.request_id(), Some("req_1"));
        let limited = ProviderError::RateLimited {
            provider: Provider::GoCardless,
            retry_after_secs: Some(30),
        };
        assert!(limited.is_retryable());
        assert_eq!(
            limited.to_string(),
            "GoCardless is limiting how often PropLink may call it; try again in 30 seconds"
        );
        assert!(ProviderError::Unavailable("Stripe answered 503".into()).is_retryable());
        assert!(!ProviderError::Decode("x".into()).is_retryable());
        assert!(!ProviderError::Invalid("x".into()).is_retryable());
    }

    #[test]
    fn signature_errors_name_the_header() {
        assert_eq!(
            SignatureError::Missing(Provider::Stripe).to_string(),
            "the Stripe-Signature header is missing"
        );
        assert_eq!(
            SignatureError::Malformed(Provider::GoCardless).to_string(),
            "the Webhook-Signature header is not in GoCardless's format"
        );
        assert_eq!(
            SignatureError::Stale { age_secs: 301 }.to_string(),
            "the Stripe-Signature header was made 301 seconds ago, more than the 300 allowed"
        );
        assert_eq!(
            SignatureError::Stale { age_secs: -400 }.to_string(),
            "the Stripe-Signature header is dated 400 seconds in the future, more than the 300 allowed"
        );
    }

    #[test]
    fn base_urls_must_be_http() {
        assert_eq!(
            checked_base_url(Provider::Stripe, "http://127.0.0.1:9/").as_deref(),
            Ok("http://127.0.0.1:9")
        );
        assert!(checked_base_url(Provider::Stripe, "ftp://x").is_err());
        assert!(checked_base_url(Provider::GoCardless, "api.gocardless.com").is_err());
    }

    #[test]
    fn an_echoed_key_is_blanked_out() {
        let key = SecretString::from("sk_test_abc");
        assert_eq!(
            redact(&key, "Invalid API Key provided: sk_test_abc"),
            "Invalid API Key provided: [redacted]"
        );
    }
}
