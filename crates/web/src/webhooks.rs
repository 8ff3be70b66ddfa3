//! Incoming provider webhooks. Each is verified on the raw body before anything is parsed,
//! stored once by (provider, event id), and processed by a job (DESIGN.md §6).

use crate::error::current_request_id;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proplink_db::jobs::{self, NewJob};
use proplink_db::ledger::LedgerError;
use proplink_db::organisation::Organisation;
use proplink_db::resident::{self, Outcome};
use proplink_db::{Actor, DbError, TenantContext, webhook};
use proplink_domain::Channel;
use proplink_integrations::mail::PROVIDER_EVENT_JOB;
use proplink_integrations::mail::sendgrid::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use proplink_integrations::payments::stripe as stripe_api;
use serde_json::json;

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// SendGrid's event webhook: delivered, bounced, dropped and deferred events update messages.
pub async fn sendgrid(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = &state.settings().sendgrid_webhook_key else {
        return refuse(
            StatusCode::NOT_FOUND,
            "SendGrid event webhooks are not configured on this server",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = key.verify(header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER), &body) {
        tracing::warn!(error = %e, "SendGrid webhook refused");
        return refuse(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let events = match sendgrid::parse_events(&body) {
        Ok(events) => events,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut new = 0;
    for event in &events {
        match store_and_queue(&state, event).await {
            Ok(true) => new += 1,
            Ok(false) => {}
            // The database is unavailable: SendGrid retries the whole batch, and the events
            // already stored are skipped then.
            Err(e) if e.is_unavailable() => {
                tracing::error!(error = %e, event_id = %event.event_id, "SendGrid event not stored");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the events could not be stored; please retry",
                );
            }
            // This event's own data cannot be stored (e.g. a NUL byte): a retry would fail the
            // same way and hold back the rest of the batch, so it is logged and skipped.
            Err(e) => {
                tracing::error!(error = %e, event_id = %event.event_id, "SendGrid event skipped: it cannot be stored");
            }
        }
    }
    (
        StatusCode::OK,
        Json(json!({ "received": events.len(), "new": new })),
    )
        .into_response()
}

async fn store_and_queue(state: &AppState, event: &sendgrid::ParsedEvent) -> Result<bool, DbError> {
    if let Some((org, payload)) = &event.route
        && webhook::organisation_exists(state.db(), *org).await?
    {
        let ctx = TenantContext {
            org: *org,
            actor: Actor::webhook("SendGrid"),
            channel: Channel::Api,
            request_id: current_request_id(),
        };
        let mut tx = state.db().begin(&ctx).await?;
        let stored = webhook::store_once_tx(&mut tx, "sendgrid", &event.event_id, &event.raw).await;
        let queued = match stored {
            Ok(true) => {
                let payload = serde_json::to_value(payload).unwrap_or_default();
                jobs::enqueue(
                    &mut tx,
                    NewJob::new(PROVIDER_EVENT_JOB, payload)
                        .idempotency_key(format!("sendgrid:{}", event.event_id)),
                )
                .await
                .map(|_| true)
            }
            other => other,
        };
        return match queued {
            Ok(new) => {
                tx.commit().await?;
                Ok(new)
            }
            // The organisation is read-only: keep the event, unrouted, for the record.
            Err(DbError::ReadOnly(reason)) => {
                drop(tx);
                store_unrouted(state, event, &reason).await
            }
            Err(e) => Err(e),
        };
    }
    let note = event
        .note
        .as_deref()
        .unwrap_or("the organisation named by the event does not exist");
    store_unrouted(state, event, note).await
}

/// Keeps an event that will not be applied to any message, with the reason.
async fn store_unrouted(
    state: &AppState,
    event: &sendgrid::ParsedEvent,
    note: &str,
) -> Result<bool, DbError> {
    webhook::store_once(
        state.db(),
        "sendgrid",
        &event.event_id,
        &event.raw,
        None,
        Some(note),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Card payments (Stripe) for ResidencePort

/// POST api.<base>/webhooks/stripe/{org}: Stripe's events for one organisation's payments.
pub async fn stripe(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(slug) = proplink_domain::OrgSlug::parse(&slug) else {
        return refuse(StatusCode::NOT_FOUND, "no such organisation");
    };
    let org = match crate::host::resolve_org(&state, &slug).await {
        Ok(org) => org,
        Err(_) => return refuse(StatusCode::NOT_FOUND, "no such organisation"),
    };
    let header = headers
        .get(stripe_api::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    match stripe_event(&state, &org, header, &body).await {
        Ok(summary) => (StatusCode::OK, Json(summary)).into_response(),
        Err((status, message)) => refuse(status, message),
    }
}

/// POST api.<base>/webhooks/stripe: Stripe's events for every organisation (one endpoint for
/// the platform's account). After the signature, the organisation is the one our metadata on
/// the Checkout Session names; an event naming none of ours is acknowledged and not stored.
pub async fn stripe_any(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = headers
        .get(stripe_api::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let (event, raw) = match verify_stripe(&state, header, &body) {
        Ok(verified) => verified,
        Err((status, message)) => return refuse(status, message),
    };
    let org = match event
        .metadata("proplink_org")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
    {
        Some(id) => {
            proplink_db::organisation::find_by_id(state.db(), proplink_domain::OrgId(id)).await
        }
        None => Ok(None),
    };
    let org = match org {
        Ok(Some(org)) => org,
        Ok(None) => {
            return (
                StatusCode::OK,
                Json(json!({ "received": event.id, "applied": false, "note": "not a payment of ours" })),
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "Stripe event not routed");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be recorded; please retry",
            );
        }
    };
    match state
        .payment_events()
        .submit(&state, &org, event, raw)
        .await
    {
        Ok(summary) => (StatusCode::OK, Json(summary)).into_response(),
        Err((status, message)) => refuse(status, message),
    }
}

/// Checks `Stripe-Signature` on the raw body, then reads the event (never the other way round).
fn verify_stripe(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(stripe_api::Event, serde_json::Value), (StatusCode, String)> {
    let secret = &state.settings().payments.stripe_webhook;
    if let Err(e) = secret.verify(signature, body, state.now().unix_timestamp()) {
        tracing::warn!(error = %e, "Stripe webhook refused");
        return Err((StatusCode::BAD_REQUEST, e.to_string()));
    }
    let event = stripe_api::parse_event(body).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((event, raw))
}

/// Verifies one Stripe event for this organisation, then has it stored once and applied (the
/// embedded test-mode provider calls this too, with events it signed). Verified events of one
/// organisation are applied in small batches, one transaction for all the events that arrived
/// together, each under its own savepoint ([`crate::payment_events`]): a redelivery finds the
/// event stored and changes nothing; an event that cannot be applied answers 5xx alone and
/// Stripe retries it.
pub(crate) async fn stripe_event(
    state: &AppState,
    org: &Organisation,
    signature: Option<&str>,
    body: &[u8],
) -> Result<serde_json::Value, (StatusCode, String)> {
    let (event, raw) = verify_stripe(state, signature, body)?;
    state.payment_events().submit(state, org, event, raw).await
}

/// Stores one verified Stripe event once and applies it, inside the batch's transaction and
/// under a savepoint the caller keeps or undoes; a redelivery answers "duplicate".
pub(crate) async fn apply_stripe_event(
    tx: &mut proplink_db::TenantTx,
    org: &Organisation,
    event: &stripe_api::Event,
    raw: &serde_json::Value,
    now: time::OffsetDateTime,
) -> Result<serde_json::Value, LedgerError> {
    // Another organisation's event is not stored here: stored, it would read as a duplicate
    // when it reaches its own organisation.
    if event.metadata("proplink_org") != Some(org.id.0.to_string().as_str()) {
        return Ok(
            json!({ "received": event.id, "applied": false, "note": "not this organisation's payment" }),
        );
    }
    if !webhook::store_once_tx(tx, "stripe", &event.id, raw).await? {
        return Ok(json!({ "received": event.id, "duplicate": true }));
    }
    let Some(session) = event.checkout_session() else {
        return Ok(
            json!({ "received": event.id, "applied": false, "note": "not a payment event" }),
        );
    };
    let Some(payment) = resident::payment_by_ref(tx, "stripe", &session.id).await? else {
        return Ok(
            json!({ "received": event.id, "applied": false, "note": "no payment started with this session" }),
        );
    };
    let created = time::OffsetDateTime::from_unix_timestamp(event.created).unwrap_or(now);
    let on = proplink_domain::dates::uk_date(created);
    let outcome = match (event.kind.as_str(), session.payment_status.as_str()) {
        ("checkout.session.completed", "paid")
        | ("checkout.session.async_payment_succeeded", _) => Outcome::Paid {
            amount_pence: session.amount_total.unwrap_or(payment.amount_pence),
            on,
            payment_ref: session.payment_intent.clone(),
        },
        ("checkout.session.completed", _) => Outcome::Submitted { charge_date: None },
        ("checkout.session.async_payment_failed", _) => Outcome::Failed {
            reason: "the card payment did not go through".into(),
        },
        _ => Outcome::Expired,
    };
    // What follows is the resident's payment: recorded in their name, on ResidencePort.
    tx.act_as(
        &crate::residence::resident_actor(payment.account_id, &payment.payer_name),
        Channel::ResidencePort,
    )
    .await?;
    let applied = resident::apply_outcome(tx, payment.id, &outcome, now).await;
    // The next event of the batch starts as the provider again.
    tx.act_as(&Actor::webhook("Stripe"), Channel::Api).await?;
    Ok(json!({ "received": event.id, "applied": format!("{:?}", applied?) }))
}

/// POST api.<base>/webhooks/gocardless/{org}: GoCardless's event deliveries for one
/// organisation's mandates and collections. A mandate that became active is collected from at
/// once.
pub async fn gocardless(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(slug) = proplink_domain::OrgSlug::parse(&slug) else {
        return refuse(StatusCode::NOT_FOUND, "no such organisation");
    };
    let org = match crate::host::resolve_org(&state, &slug).await {
        Ok(org) => org,
        Err(_) => return refuse(StatusCode::NOT_FOUND, "no such organisation"),
    };
    let header = headers
        .get(proplink_integrations::payments::gocardless::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let payments = &state.settings().payments;
    let now = state.now();
    match crate::direct_debit::events(state.db(), payments, &org, header, &body, now).await {
        Ok(handled) => {
            for mandate in handled.activated {
                if let Err(e) =
                    crate::direct_debit::collect(state.db(), payments, &org, Some(mandate), now)
                        .await
                {
                    // The worker's sweep collects it later.
                    tracing::warn!(error = %e, org = %org.slug, "collection after activation failed");
                }
            }
            (StatusCode::OK, Json(handled.summary)).into_response()
        }
        Err((status, message)) => refuse(status, message),
    }
}
