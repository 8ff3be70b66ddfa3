//! Applying verified payment events in small batches, per organisation.
//!
//! Every event that posts a receipt writes to the organisation's books and audit chain, which
//! one transaction at a time may do (the chain's head is locked until commit), and each commit
//! waits for the disk. Applied one transaction per event, an organisation's card payments would
//! queue behind each other's disk writes. Here each organisation has one applier task: the
//! deliveries that arrive while it is busy are applied together in its next transaction, each
//! under its own savepoint (an event that fails is undone alone and answered 5xx; the others
//! commit), and every delivery is answered only once its transaction has committed.

use crate::error::current_request_id;
use crate::state::AppState;
use axum::http::StatusCode;
use proplink_db::organisation::Organisation;
use proplink_db::{Actor, AppPool, TenantContext};
use proplink_domain::{Channel, OrgId};
use proplink_integrations::payments::stripe as stripe_api;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// The most events one transaction applies.
const BATCH: usize = 64;

type Reply = Result<Value, (StatusCode, String)>;

struct Job {
    event: stripe_api::Event,
    raw: Value,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
pub(crate) struct PaymentEvents {
    appliers: Mutex<HashMap<OrgId, mpsc::Sender<Job>>>,
}

impl PaymentEvents {
    /// Applies one verified event and answers once it is committed (or refused).
    pub(crate) async fn submit(
        &self,
        state: &AppState,
        org: &Organisation,
        event: stripe_api::Event,
        raw: Value,
    ) -> Reply {
        let busy = || {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be recorded; please retry".to_owned(),
            )
        };
        let (reply, answer) = oneshot::channel();
        let mut job = Job { event, raw, reply };
        // A sender whose applier has stopped is replaced once.
        for _ in 0..2 {
            let sender = self.applier(state, org).ok_or_else(busy)?;
            match sender.send(job).await {
                Ok(()) => return answer.await.unwrap_or_else(|_| Err(busy())),
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    if let Ok(mut appliers) = self.appliers.lock() {
                        appliers.remove(&org.id);
                    }
                }
            }
        }
        Err(busy())
    }

    fn applier(&self, state: &AppState, org: &Organisation) -> Option<mpsc::Sender<Job>> {
        let mut appliers = self.appliers.lock().ok()?;
        if let Some(sender) = appliers.get(&org.id)
            && !sender.is_closed()
        {
            return Some(sender.clone());
        }
        let (sender, receiver) = mpsc::channel(4 * BATCH);
        tokio::spawn(apply_batches(
            state.db().clone(),
            state.clone(),
            org.clone(),
            receiver,
        ));
        appliers.insert(org.id, sender.clone());
        Some(sender)
    }
}

async fn apply_batches(
    db: AppPool,
    state: AppState,
    org: Organisation,
    mut receiver: mpsc::Receiver<Job>,
) {
    // Idle for a while: stop (the next delivery starts a new applier).
    while let Ok(Some(first)) =
        tokio::time::timeout(std::time::Duration::from_secs(300), receiver.recv()).await
    {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        apply(&db, &state, &org, batch).await;
    }
}

async fn apply(db: &AppPool, state: &AppState, org: &Organisation, batch: Vec<Job>) {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, org = %org.slug, "payment events not applied");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the event could not be recorded; please retry".to_owned(),
        )
    };
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::webhook("Stripe"),
        channel: Channel::Api,
        request_id: current_request_id(),
    };
    let mut tx = match db.begin(&ctx).await {
        Ok(tx) => tx,
        Err(e) => {
            let refusal = unavailable(&e);
            for job in batch {
                let _ = job.reply.send(Err(refusal.clone()));
            }
            return;
        }
    };
    let now = state.now();
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match tx.mark().await {
            Ok(()) => {
                match crate::webhooks::apply_stripe_event(&mut tx, org, &job.event, &job.raw, now)
                    .await
                {
                    Ok(summary) => tx
                        .keep_since_mark()
                        .await
                        .map(|()| summary)
                        .map_err(|e| unavailable(&e)),
                    Err(e) => {
                        tracing::error!(error = %e, event_id = %job.event.id, "a Stripe event was refused by the books");
                        match tx.undo_to_mark().await {
                            Ok(()) => Err((
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "the payment could not be posted; it will be retried".to_owned(),
                            )),
                            Err(e) => Err(unavailable(&e)),
                        }
                    }
                }
            }
            Err(e) => Err(unavailable(&e)),
        };
        answers.push((job.reply, result));
    }
    // A transaction that could not carry on (its connection lost) commits nothing.
    match tx.commit_portal().await {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let refusal = unavailable(&e);
            for (reply, _) in answers {
                let _ = reply.send(Err(refusal.clone()));
            }
        }
    }
}
