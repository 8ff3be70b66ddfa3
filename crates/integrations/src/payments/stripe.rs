//! Stripe: card payments through Checkout Sessions, and signed webhook events.
//!
//! Calls: `POST /v1/checkout/sessions` and `GET /v1/checkout/sessions/{id}` with the secret key
//! as a bearer token. Request bodies are `application/x-www-form-urlencoded`, nested fields in
//! bracket notation (`line_items[0][price_data][currency]=gbp`); POSTs carry an
//! `Idempotency-Key`, so a retried create returns the first session instead of making a second.
//! Errors answer `{"error": {"type", "code", "message", "param"}}` with 400, 401, 402 or 404;
//! 429 means slow down; 5xx is Stripe's fault. Every answer names itself in `Request-Id`.
//!
//! Webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`, where each `v1` is
//! hex(HMAC-SHA256(endpoint secret, "<t>.<raw body>")). There is more than one `v1` while a
//! secret is being rolled; `v0` is an obsolete test-mode scheme and is ignored. The signed
//! timestamp bounds how late a captured request can be replayed; within that window the
//! caller's store-each-event-id-once stops replays.

use super::{
    Answer, HmacSha256, Provider, ProviderError, SignatureError, checked_base_url,
    checked_idempotency_key, checked_secret, http_client, keyed, redact,
};
use hmac::Mac;
use proplink_domain::uk::format_pence;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

const PROVIDER: Provider = Provider::Stripe;

pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// The webhook signature header, lower-cased as HTTP libraries give it.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// How far a webhook's signed timestamp may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Stripe's smallest GBP charge: £0.30.
pub const MINIMUM_AMOUNT_PENCE: i64 = 30;
/// Stripe's largest: eight digits, £999,999.99.
pub const MAXIMUM_AMOUNT_PENCE: i64 = 99_999_999;

const IDEMPOTENCY_KEY_MAX: usize = 255;
const CLIENT_REFERENCE_MAX: usize = 200;
const METADATA_MAX_KEYS: usize = 50;
const METADATA_KEY_MAX: usize = 40;
const METADATA_VALUE_MAX: usize = 500;

/// The Stripe API, authenticated with a secret key (`sk_live_…`, `sk_test_…`, or a restricted
/// `rk_…` key allowed to write Checkout Sessions).
pub struct Stripe {
    http: reqwest::Client,
    base_url: String,
    secret_key: SecretString,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base_url", &self.base_url)
            .field("secret_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// One card payment to take through a hosted Checkout page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub amount_pence: i64,
    /// What the payer sees on the page, such as "Service charge, Flat 4, 1 April 2026".
    pub description: String,
    /// Prefills the page and receives Stripe's receipt.
    pub customer_email: Option<String>,
    /// May contain `{CHECKOUT_SESSION_ID}`, which Stripe fills in.
    pub success_url: String,
    pub cancel_url: String,
    /// Ours, such as the payment request's id; comes back on the session.
    pub client_reference_id: String,
    /// Set on the session and on its payment intent, so both carry it back.
    pub metadata: Vec<(String, String)>,
}

/// A Checkout Session, as created, retrieved or sent in an event (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// The hosted page; `None` once the session is complete or expired.
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// The payment intent's id, when there is one.
    #[serde(default, deserialize_with = "id_or_expanded")]
    pub payment_intent: Option<String>,
    pub client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Stripe {
    /// `base_url` is [`DEFAULT_BASE_URL`] outside tests. Install the rustls crypto provider first.
    pub fn new(base_url: &str, secret_key: SecretString) -> Result<Self, String> {
        checked_secret(PROVIDER, "secret key", &secret_key)?;
        Ok(Self {
            http: http_client(PROVIDER)?,
            base_url: checked_base_url(PROVIDER, base_url)?,
            secret_key,
        })
    }

    /// Creates a session for one payment in pounds sterling; send the payer to its `url`.
    /// Retrying with the same `idempotency_key` returns the same session.
    pub async fn create_checkout_session(
        &self,
        req: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, ProviderError> {
        checked_idempotency_key(PROVIDER, idempotency_key, IDEMPOTENCY_KEY_MAX)?;
        let form = checkout_form(req)?;
        let request = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.base_url))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Idempotency-Key", idempotency_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        self.call(request).await
    }

    /// The session as Stripe has it now: whether it was paid, expired or is still open.
    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutSession, ProviderError> {
        if !is_checkout_session_id(id) {
            return Err(ProviderError::Invalid(format!(
                "{id:?} is not a Stripe Checkout Session id (cs_…)"
            )));
        }
        let request = self
            .http
            .get(format!("{}/v1/checkout/sessions/{id}", self.base_url))
            .bearer_auth(self.secret_key.expose_secret());
        self.call(request).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let answer = Answer::read(PROVIDER, request.send().await).await?;
        if answer.status.is_success() {
            return answer.decode(PROVIDER);
        }
        Err(self.error(&answer))
    }

    fn error(&self, answer: &Answer) -> ProviderError {
        let status = answer.status.as_u16();
        match status {
            429 => ProviderError::RateLimited {
                provider: PROVIDER,
                retry_after_secs: answer.retry_after(),
            },
            500..=599 => answer.unavailable(PROVIDER),
            _ => {
                let said = serde_json::from_slice::<ErrorBody>(&answer.body)
                    .map(|b| b.error)
                    .unwrap_or_default();
                let mut message = said
                    .message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| format!("it answered {status} without saying why"));
                if let Some(param) = said.param.filter(|p| !p.is_empty() && !message.contains(p)) {
                    message = format!("{message} (parameter {param})");
                }
                ProviderError::Api {
                    provider: PROVIDER,
                    status,
                    kind: said.kind.unwrap_or_else(|| "unknown".into()),
                    code: said.code.filter(|c| !c.is_empty()),
                    message: redact(&self.secret_key, &message),
                    request_id: answer.header("request-id").map(str::to_owned),
                }
            }
        }
    }
}

/// `^cs_[A-Za-z0-9_]+$`: also keeps anything but an id out of the request path.
fn is_checkout_session_id(id: &str) -> bool {
    id.strip_prefix("cs_").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The session's form body, after refusing what Stripe would refuse or misread.
fn checkout_form(req: &CheckoutRequest) -> Result<String, ProviderError> {
    let invalid = |why: String| Err(ProviderError::Invalid(why));
    if req.amount_pence < MINIMUM_AMOUNT_PENCE {
        return invalid(format!(
            "Stripe takes card payments of {} or more, and this one is {}",
            format_pence(MINIMUM_AMOUNT_PENCE),
            format_pence(req.amount_pence)
        ));
    }
    if req.amount_pence > MAXIMUM_AMOUNT_PENCE {
        return invalid(format!(
            "Stripe takes card payments of up to {}, and this one is {}",
            format_pence(MAXIMUM_AMOUNT_PENCE),
            format_pence(req.amount_pence)
        ));
    }
    if req.description.trim().is_empty() {
        return invalid("a card payment needs a description for the payment page".into());
    }
    for (name, url) in [
        ("success URL", &req.success_url),
        ("cancel URL", &req.cancel_url),
    ] {
        let parsed = reqwest::Url::parse(url);
        if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return invalid(format!("the {name} {url:?} is not an http(s) URL"));
        }
    }
    let reference = req.client_reference_id.trim();
    if reference.is_empty() || reference.chars().count() > CLIENT_REFERENCE_MAX {
        return invalid(format!(
            "the client reference must be 1 to {CLIENT_REFERENCE_MAX} characters"
        ));
    }
    check_metadata(&req.metadata)?;

    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("mode", "payment")
        .append_pair("line_items[0][price_data][currency]", "gbp")
        .append_pair(
            "line_items[0][price_data][unit_amount]",
            &req.amount_pence.to_string(),
        )
        .append_pair(
            "line_items[0][price_data][product_data][name]",
            req.description.trim(),
        )
        .append_pair("line_items[0][quantity]", "1")
        .append_pair("success_url", &req.success_url)
        .append_pair("cancel_url", &req.cancel_url)
        .append_pair("client_reference_id", reference);
    if let Some(email) = req.customer_email.as_deref().map(str::trim)
        && !email.is_empty()
    {
        form.append_pair("customer_email", email);
    }
    for (key, value) in &req.metadata {
        form.append_pair(&format!("metadata[{key}]"), value);
    }
    for (key, value) in &req.metadata {
        form.append_pair(&format!("payment_intent_data[metadata][{key}]"), value);
    }
    Ok(form.finish())
}

/// Stripe's metadata rules: up to 50 keys of up to 40 characters (no brackets, which would
/// change the form's meaning), values up to 500 characters.
fn check_metadata(metadata: &[(String, String)]) -> Result<(), ProviderError> {
    let invalid = |why: String| Err(ProviderError::Invalid(why));
    if metadata.len() > METADATA_MAX_KEYS {
        return invalid(format!(
            "Stripe takes at most {METADATA_MAX_KEYS} metadata keys, and there are {}",
            metadata.len()
        ));
    }
    for (i, (key, value)) in metadata.iter().enumerate() {
        if key.is_empty() || key.chars().count() > METADATA_KEY_MAX || key.contains(['[', ']']) {
            return invalid(format!(
                "the metadata key {key:?} must be 1 to {METADATA_KEY_MAX} characters without square brackets"
            ));
        }
        if value.chars().count() > METADATA_VALUE_MAX {
            return invalid(format!(
                "the metadata value for {key:?} is longer than Stripe's {METADATA_VALUE_MAX} characters"
            ));
        }
        if metadata[..i].iter().any(|(k, _)| k == key) {
            return invalid(format!("the metadata key {key:?} is given twice"));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// Stripe's `payment_intent` is an id, or the whole object when expanded, or null.
fn id_or_expanded<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(id)) => Some(id),
        Some(serde_json::Value::Object(object)) => object
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        _ => None,
    })
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A webhook endpoint's signing secret (`whsec_…`).
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// Checks the `Stripe-Signature` header against the raw body, then that it was made within
    /// [`TOLERANCE_SECS`] of `now_unix`. Call before parsing anything.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(SignatureError::Missing(PROVIDER))?;
        let signed = SignatureHeader::parse(header).ok_or(SignatureError::Malformed(PROVIDER))?;
        let mac = self.mac(signed.timestamp_text, body);
        let matches = signed
            .v1
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
        if !matches {
            return Err(SignatureError::Mismatch(PROVIDER));
        }
        let age_secs = now_unix.saturating_sub(signed.timestamp);
        if age_secs.unsigned_abs() > TOLERANCE_SECS.unsigned_abs() {
            return Err(SignatureError::Stale { age_secs });
        }
        Ok(())
    }

    /// A `Stripe-Signature` value for `body` made at `timestamp`, as Stripe would send it.
    pub fn sign(&self, body: &[u8], timestamp: i64) -> String {
        let tag = self
            .mac(&timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("t={timestamp},v1={}", hex::encode(tag))
    }

    /// HMAC over "<timestamp>.<body>", with the timestamp exactly as it was sent.
    fn mac(&self, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = keyed(&self.0);
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// `t=<unix>,v1=<hex>,…`: the timestamp and every well-formed `v1` signature.
struct SignatureHeader<'a> {
    timestamp_text: &'a str,
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(header: &'a str) -> Option<Self> {
        let mut timestamp_text = None;
        let mut v1 = Vec::new();
        for part in header.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key {
                "t" if timestamp_text.is_none() => timestamp_text = Some(value),
                "t" => return None,
                "v1" => {
                    if let Ok(signature) = hex::decode(value)
                        && signature.len() == 32
                    {
                        v1.push(signature);
                    }
                }
                // v0 and any scheme Stripe adds later.
                _ => {}
            }
        }
        let timestamp_text = timestamp_text?;
        let timestamp = timestamp_text.parse().ok()?;
        (!v1.is_empty()).then_some(Self {
            timestamp_text,
            timestamp,
            v1,
        })
    }
}

/// One webhook event (the envelope; the object it is about stays JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_…`: store it once, and ignore a delivery whose id is already stored.
    pub id: String,
    /// The event type, such as `checkout.session.completed`.
    pub kind: String,
    /// When it happened, unix seconds.
    pub created: i64,
    pub livemode: bool,
    /// The connected account, for Connect events.
    pub account: Option<String>,
    /// `data.object`: the object as it was when the event happened.
    pub object: serde_json::Value,
}

/// The event types whose object is a Checkout Session.
pub const CHECKOUT_SESSION_EVENTS: [&str; 4] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
];

impl Event {
    /// The session, for the Checkout events in [`CHECKOUT_SESSION_EVENTS`].
    pub fn checkout_session(&self) -> Option<CheckoutSession> {
        if !CHECKOUT_SESSION_EVENTS.contains(&self.kind.as_str()) {
            return None;
        }
        serde_json::from_value(self.object.clone()).ok()
    }

    /// A metadata value of the object the event is about.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.object.get("metadata")?.get(key)?.as_str()
    }
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    #[serde(default)]
    account: Option<String>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// Reads a verified webhook body as one event.
pub fn parse_event(body: &[u8]) -> Result<Event, String> {
    let raw: RawEvent =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a Stripe event: {e}"))?;
    if !raw.id.starts_with("evt_") || raw.id.len() == "evt_".len() {
        return Err(format!(
            "the event id {:?} is not a Stripe event id (evt_…)",
            raw.id
        ));
    }
    if raw.kind.trim().is_empty() {
        return Err(format!("event {} has no type", raw.id));
    }
    if !raw.data.object.is_object() {
        return Err(format!("event {} has no data.object", raw.id));
    }
    Ok(Event {
        id: raw.id,
        kind: raw.kind,
        created: raw.created,
        livemode: raw.livemode,
        account: raw.account,
        object: raw.data.object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CheckoutRequest {
        CheckoutRequest {
            amount_pence: 45_000,
            description: "Service charge".into(),
            customer_email: None,
            success_url: "https://goldcrest.example/paid?s={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "https://goldcrest.example/pay".into(),
            client_reference_id: "pr_1".into(),
            metadata: vec![("org".into(), "o1".into())],
        }
    }

    #[test]
    fn session_ids_are_checked_before_reaching_a_path() {
        assert!(is_checkout_session_id("cs_test_a1B2c3"));
        assert!(!is_checkout_session_id("cs_"));
        assert!(!is_checkout_session_id("pi_123"));
        assert!(!is_checkout_session_id("cs_../../v1/charges"));
        assert!(!is_checkout_session_id("cs_a?expand[]=x"));
    }

    #[test]
    fn amounts_outside_stripes_range_are_refused() {
        let low = CheckoutRequest {
            amount_pence: 29,
            ..request()
        };
        let error = checkout_form(&low).unwrap_err();
        assert_eq!(
            error.to_string(),
            "PropLink did not send the request: Stripe takes card payments of £0.30 or more, and this one is £0.29"
        );
        assert!(
            checkout_form(&CheckoutRequest {
                amount_pence: 30,
                ..request()
            })
            .is_ok()
        );
        assert!(
            checkout_form(&CheckoutRequest {
                amount_pence: 100_000_000,
                ..request()
            })
            .is_err()
        );
    }

    #[test]
    fn metadata_that_stripe_would_refuse_or_misread_is_refused() {
        let with = |metadata: Vec<(&str, &str)>| CheckoutRequest {
            metadata: metadata
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..request()
        };
        assert!(checkout_form(&with(vec![("a]b", "x")])).is_err());
        assert!(checkout_form(&with(vec![("", "x")])).is_err());
        assert!(checkout_form(&with(vec![("k", "x"), ("k", "y")])).is_err());
        let long_value = "v".repeat(501);
        assert!(checkout_form(&with(vec![("k", &long_value)])).is_err());
        assert!(checkout_form(&with(vec![(&"k".repeat(41), "v")])).is_err());
    }

    #[test]
    fn header_parsing_keeps_only_well_formed_v1_signatures() {
        let good = "a".repeat(64);
        let header = format!("t=12,v1=zz,v1={good},v0={good}");
        let parsed = SignatureHeader::parse(&header).unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.v1.len(), 1);
        assert!(SignatureHeader::parse(&format!("v1={good}")).is_none());
        assert!(SignatureHeader::parse(&format!("t=1,t=2,v1={good}")).is_none());
        assert!(SignatureHeader::parse(&format!("t=x,v1={good}")).is_none());
        assert!(SignatureHeader::parse(&format!("t=1,v0={good}")).is_none());
        assert!(SignatureHeader::parse("garbage").is_none());
    }
}
