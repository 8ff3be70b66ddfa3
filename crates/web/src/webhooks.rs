//! Incoming provider webhooks. Each is verified on the raw body before anything is parsed,
//! stored once by (provider, event id), and processed by a job (DESIGN.md §6).

use crate::error::current_request_id;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proplink_db::jobs::{self, NewJob};
use proplink_db::{Actor, DbError, TenantContext, webhook};
use proplink_domain::Channel;
use proplink_integrations::mail::PROVIDER_EVENT_JOB;
use proplink_integrations::mail::sendgrid::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
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
