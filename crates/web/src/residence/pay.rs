//! Paying an invoice by card. The amount is the server's: what the invoice still owes, less any
//! payment already on its way. With a Stripe account configured, a Checkout Session is made and
//! the resident is sent to Stripe's page; without one, the embedded test-mode provider shows
//! its own clearly labelled page and, when the resident pays there, sends a correctly signed
//! `checkout.session.completed` event through the same webhook handler Stripe's would reach.
//! Either way the receipt is posted by the webhook, once.

use super::{
    Chrome, Org, Page, Resident, invoice_page, resident_or_sign_in, signed_in, to_sign_in,
    visible_invoice,
};
use crate::error::WebError;
use crate::state::AppState;
use crate::webhooks;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use proplink_db::organisation::Organisation;
use proplink_db::resident::{self, NewCardPayment};
use proplink_domain::uk::format_pence;
use proplink_integrations::payments::stripe::{CheckoutRequest, MINIMUM_AMOUNT_PENCE};
use serde_json::json;
use uuid::Uuid;

/// POST /invoices/{id}/pay: starts a card payment for what the invoice owes now. Any amount
/// in the form is ignored.
pub(super) async fn start_card(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let invoice = visible_invoice(&mut r, &id).await?;
    if !r.holds_now(invoice.unit_id) {
        return invoice_page(
            &state,
            &org,
            r,
            invoice,
            Some("You no longer hold this unit, so this invoice cannot be paid here.".into()),
        )
        .await;
    }
    let amount = resident::payable_pence(&mut r.tx, &invoice).await?;
    if amount < MINIMUM_AMOUNT_PENCE {
        let message = if amount == 0 {
            "There is nothing to pay on this invoice now.".to_owned()
        } else {
            format!(
                "{} is below the smallest card payment ({}). Please pay it by bank transfer.",
                format_pence(amount),
                format_pence(MINIMUM_AMOUNT_PENCE)
            )
        };
        return invoice_page(&state, &org, r, invoice, Some(message)).await;
    }
    // A checkout this resident opened for the same amount within Stripe's 24 hours: back to
    // it, rather than a second one that could be paid as well.
    if let Some(open) = resident::open_card_payment(
        &mut r.tx,
        invoice.id,
        r.account.id,
        amount,
        state.now() - time::Duration::hours(23),
    )
    .await?
        && let Some(url) = open.checkout_url.clone()
    {
        r.tx.commit_portal().await?;
        return Ok(Redirect::to(&url).into_response());
    }
    let payment = Uuid::now_v7();
    let portal = portal_url(&state, &org);
    let (account, account_name, email) = (
        r.account.id,
        r.account.name.clone(),
        r.account.email.clone(),
    );
    // No database connection is held while Stripe answers.
    r.tx.commit_portal().await?;
    let (session_ref, checkout_url, test_mode) = match &state.settings().payments.stripe {
        Some(stripe) => {
            let request = CheckoutRequest {
                amount_pence: amount,
                description: format!(
                    "{} {}, unit {}",
                    invoice.kind().label(),
                    invoice.label(),
                    invoice.unit_reference
                ),
                customer_email: Some(email),
                success_url: format!("{portal}/payments/{payment}"),
                cancel_url: format!("{portal}/invoices/{}", invoice.id),
                client_reference_id: payment.to_string(),
                metadata: vec![
                    ("proplink_org".into(), org.id.0.to_string()),
                    ("proplink_payment".into(), payment.to_string()),
                ],
            };
            match stripe
                .create_checkout_session(&request, &payment.to_string())
                .await
            {
                Ok(session) => {
                    let Some(url) = session.url.clone() else {
                        return Err(WebError::Internal(
                            "Stripe made a Checkout Session without a page address".into(),
                        ));
                    };
                    (session.id, url, false)
                }
                Err(e) => {
                    tracing::error!(error = %e, "Stripe refused a Checkout Session");
                    let message = if e.is_retryable() {
                        "The card payment service is not answering just now. Nothing was charged; please try again in a few minutes."
                    } else {
                        "The card payment service refused to start this payment. Nothing was charged; please contact us."
                    };
                    let Some(r) = signed_in(&state, &headers, &org).await? else {
                        return Ok(to_sign_in());
                    };
                    return invoice_page(&state, &org, r, invoice, Some(message.into())).await;
                }
            }
        }
        None => (
            format!("cs_test_{}", payment.simple()),
            format!("/test-mode/checkout/{payment}"),
            true,
        ),
    };
    let ctx = proplink_db::TenantContext {
        org: org.id,
        actor: super::resident_actor(Some(account), &account_name),
        channel: proplink_domain::Channel::ResidencePort,
        request_id: crate::error::current_request_id(),
    };
    let mut tx = state.db().begin(&ctx).await?;
    resident::record_card_checkout(
        &mut tx,
        &NewCardPayment {
            id: payment,
            invoice: &invoice,
            account_id: account,
            contact_id: invoice.contact_id,
            test_mode,
            amount_pence: amount,
            session_ref: &session_ref,
            checkout_url: &checkout_url,
        },
    )
    .await?;
    tx.commit_portal().await?;
    Ok(Redirect::to(&checkout_url).into_response())
}

pub(crate) fn portal_url(state: &AppState, org: &Organisation) -> String {
    state
        .settings()
        .url(&format!("{}.{}", org.slug, state.domains().residence), "")
}

/// A payment this resident started, or 404.
async fn own_payment(r: &mut Resident, id: &str) -> Result<resident::ResidentPayment, WebError> {
    let id = Uuid::parse_str(id).map_err(|_| WebError::NotFound)?;
    let p = resident::find_payment(&mut r.tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if p.account_id != Some(r.account.id) {
        return Err(WebError::NotFound);
    }
    Ok(p)
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/payment.html")]
struct PaymentPage {
    chrome: Chrome,
    id: Uuid,
    invoice_id: Uuid,
    amount: String,
    status: &'static str,
    waiting: bool,
    paid: bool,
    test_mode: bool,
    reason: Option<String>,
}

/// GET /payments/{id}: where the resident lands after paying. While the provider's
/// confirmation has not arrived the page refreshes itself.
pub(super) async fn payment(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let p = own_payment(&mut r, &id).await?;
    let page = PaymentPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        id: p.id,
        invoice_id: p.invoice_id,
        amount: format_pence(p.amount_pence),
        status: super::payment_status_label(&p.status),
        waiting: p.status == "pending",
        paid: p.status == "paid",
        test_mode: p.test_mode,
        reason: p.failure_reason.clone(),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/test_checkout.html")]
struct TestCheckout {
    chrome: Chrome,
    id: Uuid,
    invoice_id: Uuid,
    amount: String,
    description: String,
}

/// A test-mode payment still open for this resident, or 404.
async fn open_test_payment(
    r: &mut Resident,
    id: &str,
) -> Result<resident::ResidentPayment, WebError> {
    let p = own_payment(r, id).await?;
    if !p.test_mode || p.method != "card" {
        return Err(WebError::NotFound);
    }
    Ok(p)
}

/// GET /test-mode/checkout/{id}: the embedded provider's card page.
pub(super) async fn test_checkout(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let p = open_test_payment(&mut r, &id).await?;
    if p.status != "pending" {
        r.tx.commit_portal().await?;
        return Ok(Redirect::to(&format!("/payments/{}", p.id)).into_response());
    }
    let invoice = proplink_db::receivables::find_invoice(&mut r.tx, p.invoice_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let page = TestCheckout {
        chrome: Chrome::of(&state, &org, Some(&r)),
        id: p.id,
        invoice_id: p.invoice_id,
        amount: format_pence(p.amount_pence),
        description: format!("{} for unit {}", invoice.label(), invoice.unit_reference),
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

/// POST /test-mode/checkout/{id}: "pay" sends the signed completion event through the Stripe
/// webhook handler, as Stripe would; "cancel" returns to the invoice (the session stays open
/// until it expires, as Stripe's does).
pub(super) async fn test_checkout_submit(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let Some(mut r) = signed_in(&state, &headers, &org).await? else {
        return Ok(to_sign_in());
    };
    let p = open_test_payment(&mut r, &id).await?;
    r.tx.commit_portal().await?;
    let form = crate::admin::form::FormData::parse(&body);
    if form.get("action") != "pay" {
        return Ok(Redirect::to(&format!("/invoices/{}", p.invoice_id)).into_response());
    }
    if p.status == "pending" {
        let now = state.now().unix_timestamp();
        let event = json!({
            "id": format!("evt_test_{}", Uuid::now_v7().simple()),
            "object": "event",
            "type": "checkout.session.completed",
            "created": now,
            "livemode": false,
            "data": { "object": {
                "id": p.provider_ref,
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": p.amount_pence,
                "currency": "gbp",
                "payment_intent": format!("pi_test_{}", Uuid::now_v7().simple()),
                "client_reference_id": p.id.to_string(),
                "metadata": {
                    "proplink_org": org.id.0.to_string(),
                    "proplink_payment": p.id.to_string(),
                },
            }},
        });
        let body = serde_json::to_vec(&event).map_err(|e| WebError::Internal(e.to_string()))?;
        let signature = state.settings().payments.stripe_webhook.sign(&body, now);
        let handled = webhooks::stripe_event(&state, &org, Some(&signature), &body).await;
        if let Err((status, message)) = handled {
            tracing::error!(%status, %message, "the test-mode payment event was refused");
            return Err(WebError::Internal(format!(
                "the test-mode payment could not be recorded: {message}"
            )));
        }
    }
    Ok(Redirect::to(&format!("/payments/{}", p.id)).into_response())
}
