//! GoCardless: Bacs Direct Debit through the Pro API, and signed webhooks.
//!
//! A leaseholder sets up a mandate through a billing request: we create the billing request
//! (`POST /billing_requests`, a Bacs mandate in GBP), then a flow for it
//! (`POST /billing_request_flows`) and send them to its `authorisation_url`. Once the mandate
//! exists, payments are collected against it (`POST /payments`); a mandate can be read
//! (`GET /mandates/{id}`) and cancelled (`POST /mandates/{id}/actions/cancel`).
//!
//! Every call carries `Authorization: Bearer <access token>`, `GoCardless-Version: 2015-07-06`
//! and JSON both ways; each resource travels wrapped in its plural name
//! (`{"payments": {...}}`). POSTs carry an `Idempotency-Key`. Errors answer
//! `{"error": {"message", "documentation_url", "type", "request_id", "code", "errors": [{"reason",
//! "message", "field"}]}}`, `type` being `invalid_api_usage`, `invalid_state`,
//! `validation_failed` or `gocardless` (their fault). 429 means slow down until
//! `RateLimit-Reset`.
//!
//! Webhooks: `Webhook-Signature` is hex(HMAC-SHA256(endpoint secret, raw body)). There is no
//! timestamp, so the same delivery verifies forever: the caller stores each event id once. The
//! body is `{"events": [...]}`, possibly several events about unrelated resources.

use super::{
    Answer, Provider, ProviderError, SignatureError, checked_base_url, checked_idempotency_key,
    checked_secret, http_client, keyed, redact,
};
use hmac::Mac;
use proplink_domain::uk::format_pence;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const PROVIDER: Provider = Provider::GoCardless;

pub const DEFAULT_BASE_URL: &str = "https://api.gocardless.com";
pub const SANDBOX_BASE_URL: &str = "https://api-sandbox.gocardless.com";
/// The API version every request names.
pub const API_VERSION: &str = "2015-07-06";
/// The webhook signature header, lower-cased as HTTP libraries give it.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// A Bacs payment reference's longest, in characters.
pub const BACS_REFERENCE_MAX: usize = 10;

const IDEMPOTENCY_KEY_MAX: usize = 128;
const METADATA_MAX_KEYS: usize = 3;
const METADATA_KEY_MAX: usize = 50;
const METADATA_VALUE_MAX: usize = 500;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// The GoCardless Pro API, authenticated with an access token.
pub struct GoCardless {
    http: reqwest::Client,
    base_url: String,
    access_token: SecretString,
}

impl std::fmt::Debug for GoCardless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoCardless")
            .field("base_url", &self.base_url)
            .field("access_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A request for a Bacs Direct Debit mandate in pounds sterling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingRequestInput {
    /// Up to 3 keys of up to 50 characters, values up to 500.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BillingRequest {
    /// `BRQ…`
    pub id: String,
    /// `pending`, `ready_to_fulfil`, `fulfilling`, `fulfilled`, `cancelled`.
    pub status: String,
    #[serde(default)]
    pub links: BillingRequestLinks,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BillingRequestLinks {
    /// `CU…`
    pub customer: Option<String>,
    /// `MD…`, once the mandate request is fulfilled.
    pub mandate_request_mandate: Option<String>,
}

/// The hosted pages where the payer gives their bank details and confirms the mandate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BillingRequestFlow {
    /// `BRF…`
    pub id: String,
    pub authorisation_url: String,
}

/// One collection against a mandate, in pounds sterling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInput {
    pub amount_pence: i64,
    /// The earliest day to collect; GoCardless picks the next possible day when `None`.
    pub charge_date: Option<time::Date>,
    /// On the payer's bank statement; Bacs allows up to [`BACS_REFERENCE_MAX`] characters.
    pub reference: Option<String>,
    /// Shown to the payer in GoCardless's notifications; omitted when empty.
    pub description: String,
    /// Up to 3 keys of up to 50 characters, values up to 500.
    pub metadata: BTreeMap<String, String>,
    /// `MD…`
    pub mandate_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Payment {
    /// `PM…`
    pub id: String,
    /// `pending_submission`, `submitted`, `confirmed`, `paid_out`, `failed`, `cancelled`, ...
    pub status: String,
    /// In pence.
    pub amount: i64,
    pub currency: Option<String>,
    #[serde(with = "iso_date")]
    pub charge_date: time::Date,
    pub reference: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub links: PaymentLinks,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentLinks {
    /// `MD…`
    pub mandate: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Mandate {
    /// `MD…`
    pub id: String,
    /// `pending_customer_approval`, `pending_submission`, `submitted`, `active`, `failed`,
    /// `cancelled`, `expired`, ...
    pub status: String,
    /// The earliest day a payment created now could be collected.
    #[serde(default, with = "iso_date::option")]
    pub next_possible_charge_date: Option<time::Date>,
    pub scheme: Option<String>,
    pub reference: Option<String>,
    #[serde(default)]
    pub links: MandateLinks,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MandateLinks {
    /// `CU…`
    pub customer: Option<String>,
    /// `BA…`
    pub customer_bank_account: Option<String>,
}

impl GoCardless {
    /// `base_url` is [`DEFAULT_BASE_URL`] (live) or [`SANDBOX_BASE_URL`]. Install the rustls
    /// crypto provider first.
    pub fn new(base_url: &str, access_token: SecretString) -> Result<Self, String> {
        checked_secret(PROVIDER, "access token", &access_token)?;
        Ok(Self {
            http: http_client(PROVIDER)?,
            base_url: checked_base_url(PROVIDER, base_url)?,
            access_token,
        })
    }

    /// Asks for a Bacs mandate in GBP. Follow with [`Self::create_billing_request_flow`].
    pub async fn create_billing_request(
        &self,
        req: &BillingRequestInput,
        idempotency_key: &str,
    ) -> Result<BillingRequest, ProviderError> {
        check_metadata(&req.metadata)?;
        let body = json!({
            "billing_requests": {
                "mandate_request": { "scheme": "bacs", "currency": "GBP" },
                "metadata": req.metadata,
            }
        });
        self.post(
            "/billing_requests",
            "billing_requests",
            &body,
            idempotency_key,
        )
        .await
    }

    /// The hosted pages for a billing request: send the payer to `authorisation_url`. They
    /// come back to `redirect_uri` when done, or `exit_uri` if they leave.
    pub async fn create_billing_request_flow(
        &self,
        billing_request_id: &str,
        redirect_uri: &str,
        exit_uri: &str,
        prefill_email: Option<&str>,
        prefill_name: Option<(&str, &str)>,
        idempotency_key: &str,
    ) -> Result<BillingRequestFlow, ProviderError> {
        check_id("billing request", "BRQ", billing_request_id)?;
        for (name, uri) in [("redirect URI", redirect_uri), ("exit URI", exit_uri)] {
            let parsed = reqwest::Url::parse(uri);
            if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(ProviderError::Invalid(format!(
                    "the {name} {uri:?} is not an http(s) URL"
                )));
            }
        }
        let mut flow = json!({
            "redirect_uri": redirect_uri,
            "exit_uri": exit_uri,
            "links": { "billing_request": billing_request_id },
        });
        let mut prefilled = Map::new();
        if let Some(email) = prefill_email.map(str::trim).filter(|e| !e.is_empty()) {
            prefilled.insert("email".into(), email.into());
        }
        if let Some((given, family)) = prefill_name {
            for (field, name) in [("given_name", given), ("family_name", family)] {
                let name = name.trim();
                if !name.is_empty() {
                    prefilled.insert(field.into(), name.into());
                }
            }
        }
        if !prefilled.is_empty() {
            flow["prefilled_customer"] = Value::Object(prefilled);
        }
        let body = json!({ "billing_request_flows": flow });
        self.post(
            "/billing_request_flows",
            "billing_request_flows",
            &body,
            idempotency_key,
        )
        .await
    }

    /// Collects a payment against an active mandate. Retrying with the same
    /// `idempotency_key` cannot collect twice.
    pub async fn create_payment(
        &self,
        req: &PaymentInput,
        idempotency_key: &str,
    ) -> Result<Payment, ProviderError> {
        check_id("mandate", "MD", &req.mandate_id)?;
        if req.amount_pence <= 0 {
            return Err(ProviderError::Invalid(format!(
                "a Direct Debit payment must be for more than £0.00, and this one is {}",
                format_pence(req.amount_pence)
            )));
        }
        check_metadata(&req.metadata)?;
        let mut payment = json!({
            "amount": req.amount_pence,
            "currency": "GBP",
            "metadata": req.metadata,
            "links": { "mandate": req.mandate_id },
        });
        if let Some(date) = req.charge_date {
            let date = iso_date::serialize(&date, serde_json::value::Serializer)
                .map_err(|e| ProviderError::Invalid(format!("the charge date: {e}")))?;
            payment["charge_date"] = date;
        }
        if let Some(reference) = req.reference.as_deref().map(str::trim) {
            if reference.chars().count() > BACS_REFERENCE_MAX {
                return Err(ProviderError::Invalid(format!(
                    "the reference {reference:?} is longer than the {BACS_REFERENCE_MAX} characters Bacs allows"
                )));
            }
            if !reference.is_empty() {
                payment["reference"] = reference.into();
            }
        }
        if !req.description.trim().is_empty() {
            payment["description"] = req.description.trim().into();
        }
        let body = json!({ "payments": payment });
        self.post("/payments", "payments", &body, idempotency_key)
            .await
    }

    pub async fn get_mandate(&self, id: &str) -> Result<Mandate, ProviderError> {
        check_id("mandate", "MD", id)?;
        let request = self.request(Method::GET, &format!("/mandates/{id}"));
        self.call(request, "mandates").await
    }

    /// Stops the mandate: no further payments can be created against it, and pending ones
    /// are cancelled by GoCardless.
    pub async fn cancel_mandate(
        &self,
        id: &str,
        idempotency_key: &str,
    ) -> Result<Mandate, ProviderError> {
        check_id("mandate", "MD", id)?;
        self.post(
            &format!("/mandates/{id}/actions/cancel"),
            "mandates",
            &json!({ "data": {} }),
            idempotency_key,
        )
        .await
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.access_token.expose_secret())
            .header("GoCardless-Version", API_VERSION)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        envelope: &str,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<T, ProviderError> {
        checked_idempotency_key(PROVIDER, idempotency_key, IDEMPOTENCY_KEY_MAX)?;
        let request = self
            .request(Method::POST, path)
            .header("Idempotency-Key", idempotency_key)
            .body(body.to_string());
        self.call(request, envelope).await
    }

    /// Sends `request` and takes the resource out of its `envelope` key.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        envelope: &str,
    ) -> Result<T, ProviderError> {
        let answer = Answer::read(PROVIDER, request.send().await).await?;
        if !answer.status.is_success() {
            return Err(self.error(&answer));
        }
        let mut wrapped: Map<String, Value> = answer.decode(PROVIDER)?;
        let resource = wrapped.remove(envelope).ok_or_else(|| {
            ProviderError::Decode(format!("GoCardless: the answer has no {envelope:?}"))
        })?;
        serde_json::from_value(resource)
            .map_err(|e| ProviderError::Decode(format!("GoCardless: {envelope}: {e}")))
    }

    fn error(&self, answer: &Answer) -> ProviderError {
        let status = answer.status.as_u16();
        match status {
            429 => ProviderError::RateLimited {
                provider: PROVIDER,
                retry_after_secs: seconds_until_reset(answer).or_else(|| answer.retry_after()),
            },
            500..=599 => answer.unavailable(PROVIDER),
            _ => {
                let said = serde_json::from_slice::<ErrorBody>(&answer.body)
                    .map(|b| b.error)
                    .unwrap_or_default();
                let first = said.errors.into_iter().next();
                let mut message = said
                    .message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| format!("it answered {status} without saying why"));
                if let Some(detail) = first.as_ref().and_then(FieldError::sentence)
                    && !message.to_lowercase().contains(&detail.to_lowercase())
                {
                    message = format!("{message}: {detail}");
                }
                ProviderError::Api {
                    provider: PROVIDER,
                    status,
                    kind: said.kind.unwrap_or_else(|| "unknown".into()),
                    code: first.and_then(|e| e.reason).filter(|r| !r.is_empty()),
                    message: redact(&self.access_token, &message),
                    request_id: said
                        .request_id
                        .or_else(|| answer.header("x-request-id").map(str::to_owned)),
                }
            }
        }
    }
}

/// GoCardless ids are a prefix and upper-case letters and digits; checking also keeps anything
/// else out of request paths.
fn check_id(what: &str, prefix: &str, id: &str) -> Result<(), ProviderError> {
    let well_formed = id
        .strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if well_formed {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!(
            "{id:?} is not a GoCardless {what} id ({prefix}…)"
        )))
    }
}

/// GoCardless's metadata rules: up to 3 keys of up to 50 characters, values up to 500.
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ProviderError> {
    let invalid = |why: String| Err(ProviderError::Invalid(why));
    if metadata.len() > METADATA_MAX_KEYS {
        return invalid(format!(
            "GoCardless takes at most {METADATA_MAX_KEYS} metadata keys, and there are {}",
            metadata.len()
        ));
    }
    for (key, value) in metadata {
        if key.is_empty() || key.chars().count() > METADATA_KEY_MAX {
            return invalid(format!(
                "the metadata key {key:?} must be 1 to {METADATA_KEY_MAX} characters"
            ));
        }
        if value.chars().count() > METADATA_VALUE_MAX {
            return invalid(format!(
                "the metadata value for {key:?} is longer than GoCardless's {METADATA_VALUE_MAX} characters"
            ));
        }
    }
    Ok(())
}

/// Seconds until `RateLimit-Reset`. GoCardless gives the reset as an HTTP date, measured here
/// against the answer's own `Date` so that neither clock's drift matters; a plain number is
/// taken as seconds.
fn seconds_until_reset(answer: &Answer) -> Option<u64> {
    let reset = answer.header("ratelimit-reset")?;
    if let Ok(secs) = reset.parse::<u64>() {
        return Some(secs);
    }
    let reset = http_date(reset)?;
    let now = http_date(answer.header("date")?)?;
    Some(u64::try_from((reset - now).whole_seconds()).unwrap_or(0))
}

/// "Thu, 01 May 2014 16:00:00 GMT" (RFC 9110's preferred form).
fn http_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GoCardlessError,
}

#[derive(Default, Deserialize)]
struct GoCardlessError {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    request_id: Option<String>,
    #[serde(default)]
    errors: Vec<FieldError>,
}

#[derive(Deserialize)]
struct FieldError {
    reason: Option<String>,
    message: Option<String>,
    field: Option<String>,
}

impl FieldError {
    /// "charge_date must be on or after …", or the message alone when no field is named.
    fn sentence(&self) -> Option<String> {
        let message = self.message.as_deref().filter(|m| !m.trim().is_empty())?;
        Some(match self.field.as_deref().filter(|f| !f.is_empty()) {
            Some(field) => format!("{field} {message}"),
            None => message.to_owned(),
        })
    }
}

/// A webhook endpoint's secret, as set in the GoCardless dashboard.
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

    /// Checks the `Webhook-Signature` header against the raw body, in constant time. Call
    /// before parsing anything. (GoCardless asks for 498 when this fails.)
    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(SignatureError::Missing(PROVIDER))?;
        let signature = hex::decode(header)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or(SignatureError::Malformed(PROVIDER))?;
        let mut mac = keyed(&self.0);
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch(PROVIDER))
    }

    /// A `Webhook-Signature` value for `body`, as GoCardless would send it.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = keyed(&self.0);
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
}

/// One webhook event: what happened to which resource, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `EV…`: store it once, and ignore a delivery whose id is already stored.
    pub id: String,
    /// ISO 8601, as GoCardless writes it.
    pub created_at: String,
    /// `payments`, `mandates`, `billing_requests`, `payouts`, `refunds`, ...
    pub resource_type: String,
    /// Such as `confirmed`, `failed`, `cancelled`, `fulfilled`.
    pub action: String,
    /// The resources concerned: `payment`, `mandate`, `billing_request`, `customer`, ...
    pub links: BTreeMap<String, String>,
    pub details: EventDetails,
    /// The resource's metadata when the event happened (ours, as set when creating it).
    pub resource_metadata: BTreeMap<String, String>,
    /// The event as received, for storing.
    pub raw: Value,
}

/// Why it happened. GoCardless advises acting on `cause`, which is stable across banks;
/// `reason_code` is the scheme's own and varies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EventDetails {
    /// `bank`, `api`, `gocardless`, `customer`, `payer`.
    #[serde(default)]
    pub origin: String,
    /// Such as `payment_confirmed`, `insufficient_funds`, `bank_account_closed`.
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub description: String,
    pub reason_code: Option<String>,
    /// `bacs`, ... when the scheme reported it.
    pub scheme: Option<String>,
}

impl Event {
    /// A link to a resource of this event, such as `links["payment"]`.
    pub fn link(&self, name: &str) -> Option<&str> {
        self.links.get(name).map(String::as_str)
    }

    /// The event as the `index`th of a webhook body.
    fn from_json(index: usize, raw: &Value) -> Result<Self, String> {
        let Some(object) = raw.as_object() else {
            return Err(format!("events[{index}] is not a JSON object"));
        };
        let text = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let id = text("id").ok_or_else(|| format!("events[{index}] has no id"))?;
        if !id.starts_with("EV") {
            return Err(format!(
                "events[{index}] has the id {id:?}, which is not a GoCardless event id (EV…)"
            ));
        }
        let resource_type = text("resource_type")
            .ok_or_else(|| format!("events[{index}] ({id}) has no resource_type"))?;
        let action =
            text("action").ok_or_else(|| format!("events[{index}] ({id}) has no action"))?;
        let details = match object.get("details") {
            None | Some(Value::Null) => EventDetails::default(),
            Some(details) => serde_json::from_value(details.clone())
                .map_err(|e| format!("events[{index}] ({id}) has unreadable details: {e}"))?,
        };
        Ok(Self {
            id,
            created_at: text("created_at").unwrap_or_default(),
            resource_type,
            action,
            links: strings(object.get("links")),
            details,
            resource_metadata: strings(object.get("resource_metadata")),
            raw: raw.clone(),
        })
    }
}

/// The string members of a JSON object; anything else is left out.
fn strings(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a verified webhook body: `{"events": [...]}`, in the order sent.
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the webhook body is not JSON: {e}"))?;
    let events = value
        .get("events")
        .and_then(Value::as_array)
        .ok_or("the webhook body has no \"events\" list")?;
    if events.is_empty() {
        return Err("the webhook body's \"events\" list is empty".into());
    }
    events
        .iter()
        .enumerate()
        .map(|(index, raw)| Event::from_json(index, raw))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_reaching_a_path() {
        assert!(check_id("mandate", "MD", "MD000123ABC").is_ok());
        assert!(check_id("mandate", "MD", "MD").is_err());
        assert!(check_id("mandate", "MD", "PM0001").is_err());
        assert!(check_id("mandate", "MD", "MD01/actions/cancel").is_err());
    }

    #[test]
    fn metadata_beyond_gocardless_limits_is_refused() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_metadata(&map(&[("a", "1"), ("b", "2"), ("c", "3")])).is_ok());
        let four = check_metadata(&map(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]));
        assert_eq!(
            four.unwrap_err().to_string(),
            "PropLink did not send the request: GoCardless takes at most 3 metadata keys, and there are 4"
        );
        assert!(check_metadata(&map(&[(&"k".repeat(51), "v")])).is_err());
        assert!(check_metadata(&map(&[("k", &"v".repeat(501))])).is_err());
        assert!(check_metadata(&map(&[("k", &"v".repeat(500))])).is_ok());
    }

    #[test]
    fn http_dates_are_read() {
        let reset = http_date("Thu, 01 May 2014 16:00:00 GMT").unwrap();
        assert_eq!(reset.unix_timestamp(), 1_398_960_000);
        assert!(http_date("yesterday").is_none());
    }
}
