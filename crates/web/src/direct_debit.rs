//! Direct Debit through GoCardless (docs-spec §2.16). A resident sets up a mandate for a unit
//! through GoCardless's billing request flow; GoCardless's webhooks (HMAC-SHA256 of the raw
//! body in `Webhook-Signature`, a batch of events per delivery) move the mandate on; once it is
//! active, the unit's open demands addressed to the resident are collected by
//! [`collect`] (at once, and by the worker's sweep as new demands are issued). A confirmed
//! collection posts a receipt; a failed one re-opens what it paid and tells the resident and
//! the site's managers.
//!
//! With no GoCardless account configured, the embedded test-mode provider stands in: its own
//! pages take the (checked, never stored) bank details, and it signs the same events with the
//! test secret and sends them through [`events`], the handler GoCardless's deliveries reach.
//! Its collections are confirmed at once.

use crate::error::current_request_id;
use crate::state::PaymentSettings;
use axum::http::StatusCode;
use proplink_db::ledger::LedgerError;
use proplink_db::organisation::Organisation;
use proplink_db::resident::{self, Mandate, NewCollection, Outcome};
use proplink_db::{Actor, AppPool, DbError, TenantContext, webhook};
use proplink_domain::Channel;
use proplink_integrations::payments::gocardless::{self as gc, PaymentInput};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// What handling a delivery did: a summary for the answer, and the mandates that became active
/// (to collect from once the events are stored).
pub struct Handled {
    pub summary: Value,
    pub activated: Vec<Uuid>,
}

fn webhook_ctx(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor::webhook("GoCardless"),
        channel: Channel::Api,
        request_id: current_request_id(),
    }
}

/// Verifies a delivery, then stores and applies each of its events once, each in its own
/// transaction (a redelivered batch skips the events already stored).
pub async fn events(
    db: &AppPool,
    payments: &PaymentSettings,
    org: &Organisation,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Handled, (StatusCode, String)> {
    if let Err(e) = payments.gocardless_webhook.verify(signature, body) {
        tracing::warn!(error = %e, org = %org.slug, "GoCardless webhook refused");
        return Err((StatusCode::BAD_REQUEST, e.to_string()));
    }
    let batch = gc::parse_events(body).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let mut results = Vec::new();
    let mut activated = Vec::new();
    for event in &batch {
        let unavailable = |e: DbError| {
            tracing::error!(error = %e, event_id = %event.id, "GoCardless event not applied");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the events could not all be recorded; please retry".to_owned(),
            )
        };
        let mut tx = db.begin(&webhook_ctx(org)).await.map_err(unavailable)?;
        if !webhook::store_once_tx(&mut tx, "gocardless", &event.id, &event.raw)
            .await
            .map_err(unavailable)?
        {
            let _ = tx.rollback().await;
            results.push(json!({ "id": event.id, "duplicate": true }));
            continue;
        }
        let applied = match apply(&mut tx, event, now).await {
            Ok(a) => a,
            Err(LedgerError::Db(e)) => return Err(unavailable(e)),
            Err(e) => {
                tracing::error!(error = %e, event_id = %event.id, "GoCardless event refused by the books");
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an event could not be applied; it will be retried".to_owned(),
                ));
            }
        };
        tx.commit().await.map_err(unavailable)?;
        if let Applied::Activated(m) = applied {
            activated.push(m);
        }
        results.push(json!({ "id": event.id, "applied": applied.word() }));
    }
    Ok(Handled {
        summary: json!({ "received": batch.len(), "events": results }),
        activated,
    })
}

enum Applied {
    Activated(Uuid),
    Moved,
    Payment(resident::Applied),
    Ignored,
}

impl Applied {
    fn word(&self) -> String {
        match self {
            Self::Activated(_) => "mandate active".into(),
            Self::Moved => "moved".into(),
            Self::Payment(a) => format!("{a:?}"),
            Self::Ignored => "ignored".into(),
        }
    }
}

/// Why, in words, from the event's details.
fn reason(event: &gc::Event) -> String {
    let d = &event.details;
    let text = if d.description.trim().is_empty() {
        d.cause.replace('_', " ")
    } else {
        d.description.trim().trim_end_matches('.').to_owned()
    };
    if text.is_empty() {
        "no reason was given".into()
    } else {
        text
    }
}

fn event_date(event: &gc::Event, now: OffsetDateTime) -> Date {
    OffsetDateTime::parse(
        &event.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(proplink_domain::dates::uk_date)
    .unwrap_or_else(|_| proplink_domain::dates::uk_date(now))
}

async fn apply(
    tx: &mut proplink_db::TenantTx,
    event: &gc::Event,
    now: OffsetDateTime,
) -> Result<Applied, LedgerError> {
    match event.resource_type.as_str() {
        "billing_requests" => {
            let Some(br) = event.link("billing_request") else {
                return Ok(Applied::Ignored);
            };
            let Some(m) = resident::mandate_by_ref(tx, Some(br), None).await? else {
                return Ok(Applied::Ignored);
            };
            let status = match event.action.as_str() {
                "fulfilled" => "pending_submission",
                "cancelled" => "cancelled",
                "failed" => "failed",
                _ => return Ok(Applied::Ignored),
            };
            let moved = resident::apply_mandate_status(
                tx,
                m.id,
                event.link("mandate_request_mandate"),
                status,
                (status != "pending_submission")
                    .then(|| reason(event))
                    .as_deref(),
            )
            .await?;
            Ok(if moved {
                Applied::Moved
            } else {
                Applied::Ignored
            })
        }
        "mandates" => {
            let Some(reference) = event.link("mandate") else {
                return Ok(Applied::Ignored);
            };
            let Some(m) = resident::mandate_by_ref(tx, None, Some(reference)).await? else {
                return Ok(Applied::Ignored);
            };
            let status = match event.action.as_str() {
                "created" | "customer_approval_granted" => "pending_submission",
                "submitted" => "submitted",
                "active" | "reinstated" => "active",
                "failed" => "failed",
                "cancelled" => "cancelled",
                "expired" => "expired",
                _ => return Ok(Applied::Ignored),
            };
            let why = matches!(status, "failed" | "cancelled" | "expired").then(|| reason(event));
            let moved =
                resident::apply_mandate_status(tx, m.id, Some(reference), status, why.as_deref())
                    .await?;
            Ok(match (moved, status) {
                (true, "active") => Applied::Activated(m.id),
                (true, _) => Applied::Moved,
                _ => Applied::Ignored,
            })
        }
        "payments" => {
            let Some(reference) = event.link("payment") else {
                return Ok(Applied::Ignored);
            };
            let mut found = resident::payment_by_ref(tx, "gocardless", reference).await?;
            if found.is_none() {
                // Started, but its reference never reached us (the process stopped between the
                // provider's answer and our write): our id is in the payment's metadata.
                if let Some(ours) = event
                    .resource_metadata
                    .get("proplink_payment")
                    .and_then(|id| Uuid::parse_str(id).ok())
                    && let Some(p) = resident::find_payment(tx, ours).await?
                    && p.provider_ref.starts_with("STARTING_")
                {
                    resident::collection_started(tx, p.id, reference, None).await?;
                    found = resident::payment_by_ref(tx, "gocardless", reference).await?;
                }
            }
            let Some(p) = found else {
                return Ok(Applied::Ignored);
            };
            let on = event_date(event, now);
            let outcome = match event.action.as_str() {
                "submitted" => Outcome::Submitted { charge_date: None },
                "confirmed" | "paid_out" => Outcome::Paid {
                    amount_pence: p.amount_pence,
                    on,
                    payment_ref: Some(reference.to_owned()),
                },
                "failed" => Outcome::Failed {
                    reason: reason(event),
                },
                "cancelled" => Outcome::Cancelled {
                    reason: reason(event),
                },
                "charged_back" | "late_failure_settled" | "chargeback_settled" => {
                    Outcome::ChargedBack {
                        reason: reason(event),
                        on,
                    }
                }
                _ => return Ok(Applied::Ignored),
            };
            Ok(Applied::Payment(
                resident::apply_outcome(tx, p.id, &outcome, now).await?,
            ))
        }
        _ => Ok(Applied::Ignored),
    }
}

/// Collects the open demands of active mandates (one mandate, or every one of the
/// organisation): a GoCardless payment per demand, on its due date or the first day the
/// mandate allows. Returns how many collections were started.
pub async fn collect(
    db: &AppPool,
    payments: &PaymentSettings,
    org: &Organisation,
    only: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<usize, String> {
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Worker,
        request_id: current_request_id(),
    };
    let mut tx = db.begin(&ctx).await.map_err(|e| e.to_string())?;
    let mandates: Vec<Mandate> = resident::active_mandates(&mut tx)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| only.is_none_or(|id| id == m.id))
        .collect();
    let mut due = Vec::new();
    for m in mandates {
        for (invoice, amount, due_date, number) in resident::collectable(&mut tx, &m)
            .await
            .map_err(|e| e.to_string())?
        {
            due.push((m.clone(), invoice, amount, due_date, number));
        }
    }
    tx.rollback().await.map_err(|e| e.to_string())?;
    let today = proplink_domain::dates::uk_date(now);
    let mut started = 0;
    for (mandate, invoice, amount, due_date, number) in due {
        let Some(mandate_ref) = mandate.mandate_ref.clone() else {
            continue;
        };
        if payments.gocardless.is_some() == mandate.test_mode {
            // A test-mode mandate on a server now connected to GoCardless (or the reverse).
            continue;
        }
        let charge_date = due_date.filter(|d| *d > today);
        // The row first, under a placeholder reference: whatever happens to the provider's
        // answer, the collection is on record and its id is the request's idempotency key.
        let mut tx = db.begin(&ctx).await.map_err(|e| e.to_string())?;
        let placeholder = format!("STARTING_{}", Uuid::now_v7().simple());
        let recorded = resident::record_collection(
            &mut tx,
            &NewCollection {
                mandate: &mandate,
                invoice_id: invoice,
                amount_pence: amount,
                payment_ref: &placeholder,
                charge_date: Some(charge_date.unwrap_or(today)),
            },
        )
        .await;
        let payment = match recorded {
            Ok(id) => id,
            // Another sweep (or the activation) got there first.
            Err(DbError::Duplicate { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        };
        tx.commit().await.map_err(|e| e.to_string())?;
        let payment_ref = match &payments.gocardless {
            Some(client) => {
                let mut metadata = std::collections::BTreeMap::new();
                metadata.insert("proplink_org".to_owned(), org.id.0.to_string());
                metadata.insert("proplink_payment".to_owned(), payment.to_string());
                let input = PaymentInput {
                    amount_pence: amount,
                    charge_date,
                    reference: None,
                    description: format!("{} {number}", org.name).chars().take(100).collect(),
                    metadata,
                    mandate_id: mandate_ref.clone(),
                };
                match client.create_payment(&input, &payment.to_string()).await {
                    Ok(p) => p.id,
                    Err(e) => {
                        tracing::warn!(error = %e, org = %org.slug, "a Direct Debit collection was not started");
                        let mut tx = db.begin(&ctx).await.map_err(|e| e.to_string())?;
                        resident::collection_not_started(
                            &mut tx,
                            payment,
                            &format!("GoCardless did not start it: {e}"),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        tx.commit().await.map_err(|e| e.to_string())?;
                        continue;
                    }
                }
            }
            None => format!("PM_TEST_{}", Uuid::now_v7().simple()),
        };
        let mut tx = db.begin(&ctx).await.map_err(|e| e.to_string())?;
        resident::collection_started(&mut tx, payment, &payment_ref, None)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        started += 1;
        if mandate.test_mode {
            // The embedded provider collects at once: submitted, then confirmed.
            let body = test_events(
                &[
                    (
                        "payments",
                        "submitted",
                        json!({ "payment": payment_ref }),
                        "payment_submitted",
                        "",
                    ),
                    (
                        "payments",
                        "confirmed",
                        json!({ "payment": payment_ref }),
                        "payment_confirmed",
                        "",
                    ),
                ],
                now,
            );
            let signature = payments.gocardless_webhook.sign(&body);
            if let Err((_, e)) = events(db, payments, org, Some(&signature), &body, now).await {
                return Err(format!(
                    "the test-mode collection could not be confirmed: {e}"
                ));
            }
        }
    }
    Ok(started)
}

/// A test-mode delivery: events as GoCardless writes them.
pub(crate) fn test_events(
    items: &[(&str, &str, Value, &str, &str)],
    now: OffsetDateTime,
) -> Vec<u8> {
    let created = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let events: Vec<Value> = items
        .iter()
        .map(|(resource, action, links, cause, description)| {
            json!({
                "id": format!("EV_TEST_{}", Uuid::now_v7().simple()),
                "created_at": created,
                "resource_type": resource,
                "action": action,
                "links": links,
                "details": { "origin": "gocardless", "cause": cause, "description": description },
                "metadata": {},
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "events": events })).unwrap_or_default()
}
