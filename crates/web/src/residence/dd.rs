//! Setting up a Direct Debit in ResidencePort: one mandate per unit the resident holds as
//! leaseholder now. With GoCardless configured the resident goes through GoCardless's own
//! pages; without it, the test-mode provider's page takes the bank details and confirms.

use super::{Chrome, Org, Page, resident_or_sign_in, signed_in, to_sign_in};
use crate::admin::form::FormData;
use crate::direct_debit;
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use proplink_db::resident::{self, NewMandate, Role};
use proplink_domain::uk::{AccountNumber, SortCode};
use proplink_integrations::payments::gocardless::BillingRequestInput;
use serde_json::json;
use uuid::Uuid;

struct UnitMandate {
    unit_id: Uuid,
    place: String,
    status: Option<&'static str>,
    reason: Option<String>,
    can_start: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/direct_debit.html")]
struct DirectDebitPage {
    chrome: Chrome,
    units: Vec<UnitMandate>,
    test_mode: bool,
    message: Option<String>,
}

/// GET /direct-debit
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let mandates = resident::mandates_of_contact(&mut r.tx, r.contact).await?;
    let units = r
        .current()
        .filter(|h| h.role() == Role::Leaseholder)
        .map(|h| {
            let latest = mandates.iter().find(|m| m.unit_id == h.unit_id);
            let live = latest.filter(|m| m.is_live());
            UnitMandate {
                unit_id: h.unit_id,
                place: h.place(),
                status: latest.map(|m| m.status_label()),
                reason: latest.and_then(|m| m.status_reason.clone()),
                can_start: live.is_none_or(|m| m.status == "pending_customer"),
            }
        })
        .collect();
    let message = match super::query_map(raw).get("done").map(String::as_str) {
        Some("1") => Some("Thank you. Your Direct Debit is being set up with your bank; we will collect your demands on their due dates.".to_owned()),
        _ => None,
    };
    let page = DirectDebitPage {
        chrome: Chrome::of(&state, &org, Some(&r)),
        units,
        test_mode: state.settings().payments.direct_debit_test_mode(),
        message,
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

/// POST /direct-debit: starts a mandate for one of the resident's units.
pub(super) async fn start(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let v = FormData::parse(&body);
    let unit = Uuid::parse_str(v.get("unit")).map_err(|_| WebError::NotFound)?;
    let holding = r
        .current()
        .find(|h| h.unit_id == unit && h.role() == Role::Leaseholder)
        .cloned()
        .ok_or(WebError::NotFound)?;
    let mandate_key = Uuid::now_v7();
    let portal = super::pay::portal_url(&state, &org);
    let (billing_request, flow_url, test_mode) = match &state.settings().payments.gocardless {
        Some(client) => {
            let mut metadata = std::collections::BTreeMap::new();
            metadata.insert("proplink_org".to_owned(), org.id.0.to_string());
            metadata.insert("proplink_unit".to_owned(), unit.to_string());
            let started = client
                .create_billing_request(
                    &BillingRequestInput { metadata },
                    &format!("mandate-{mandate_key}"),
                )
                .await;
            let flow = match started {
                Ok(br) => client
                    .create_billing_request_flow(
                        &br.id,
                        &format!("{portal}/direct-debit?done=1"),
                        &format!("{portal}/direct-debit"),
                        Some(&r.account.email),
                        None,
                        &format!("flow-{mandate_key}"),
                    )
                    .await
                    .map(|f| (br.id, f.authorisation_url)),
                Err(e) => Err(e),
            };
            match flow {
                Ok((br, url)) => (br, url, false),
                Err(e) => {
                    tracing::error!(error = %e, "GoCardless refused to start a mandate");
                    r.tx.commit_portal().await?;
                    return Ok((
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The Direct Debit service is not answering just now. Nothing was set up; please try again later.",
                    )
                        .into_response());
                }
            }
        }
        None => (
            format!("BRQ_TEST_{}", mandate_key.simple()),
            String::new(),
            true,
        ),
    };
    let (contact, account) = (r.contact, r.account.id);
    let id = resident::start_mandate(
        &mut r.tx,
        &NewMandate {
            site_id: holding.site_id,
            unit_id: unit,
            contact_id: contact,
            account_id: account,
            test_mode,
            billing_request_ref: &billing_request,
            flow_url: if test_mode {
                "/test-mode/direct-debit"
            } else {
                &flow_url
            },
        },
    )
    .await;
    let id = match id {
        Ok(id) => id,
        Err(proplink_db::DbError::Duplicate { .. }) => {
            return Ok(Redirect::to("/direct-debit").into_response());
        }
        Err(e) => return Err(e.into()),
    };
    r.tx.commit_portal().await?;
    let next = if test_mode {
        format!("/test-mode/direct-debit/{id}")
    } else {
        flow_url
    };
    Ok(Redirect::to(&next).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "residence/test_mandate.html")]
struct TestMandate {
    chrome: Chrome,
    id: Uuid,
    place: String,
    name: String,
    problem: Option<String>,
}

/// A test-mode mandate of this resident still waiting for them, or 404.
async fn own_test_mandate(
    r: &mut super::Resident,
    id: &str,
) -> Result<resident::Mandate, WebError> {
    let id = Uuid::parse_str(id).map_err(|_| WebError::NotFound)?;
    let m = resident::find_mandate(&mut r.tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    if m.contact_id != r.contact || !m.test_mode || m.status != "pending_customer" {
        return Err(WebError::NotFound);
    }
    Ok(m)
}

/// GET /test-mode/direct-debit/{id}
pub(super) async fn test_page(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let mut r = resident_or_sign_in!(state, headers, org);
    let m = own_test_mandate(&mut r, &id).await?;
    let place = r.holding(m.unit_id)?.place();
    let page = TestMandate {
        chrome: Chrome::of(&state, &org, Some(&r)),
        id: m.id,
        place,
        name: r.account.name.clone(),
        problem: None,
    };
    r.tx.commit_portal().await?;
    Ok(page.into_response())
}

/// POST /test-mode/direct-debit/{id}: checks the bank details as a bank would (never stored),
/// then sends GoCardless's events for a fulfilled request and an active mandate through the
/// webhook handler, and collects what is due.
pub(super) async fn test_confirm(
    State(state): State<AppState>,
    Extension(org): Org,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let Some(mut r) = signed_in(&state, &headers, &org).await? else {
        return Ok(to_sign_in());
    };
    let m = own_test_mandate(&mut r, &id).await?;
    let v = FormData::parse(&body);
    let problem = if v.get("holder").trim().is_empty() {
        Some("Enter the account holder's name.".to_owned())
    } else if SortCode::parse(v.get("sort_code")).is_err() {
        Some("A sort code has 6 digits, such as 12-34-56.".to_owned())
    } else if AccountNumber::parse(v.get("account_number")).is_err() {
        Some("A UK account number has 8 digits.".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        let place = r.holding(m.unit_id)?.place();
        let page = TestMandate {
            chrome: Chrome::of(&state, &org, Some(&r)),
            id: m.id,
            place,
            name: v.get("holder").to_owned(),
            problem: Some(problem),
        };
        r.tx.commit_portal().await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    r.tx.commit_portal().await?;
    let now = state.now();
    let mandate_ref = format!("MD_TEST_{}", Uuid::now_v7().simple());
    let body = direct_debit::test_events(
        &[
            (
                "billing_requests",
                "fulfilled",
                json!({ "billing_request": m.billing_request_ref, "mandate_request_mandate": mandate_ref }),
                "billing_request_fulfilled",
                "",
            ),
            (
                "mandates",
                "created",
                json!({ "mandate": mandate_ref }),
                "mandate_created",
                "",
            ),
            (
                "mandates",
                "active",
                json!({ "mandate": mandate_ref }),
                "mandate_activated",
                "",
            ),
        ],
        now,
    );
    let payments = &state.settings().payments;
    let signature = payments.gocardless_webhook.sign(&body);
    let handled = direct_debit::events(state.db(), payments, &org, Some(&signature), &body, now)
        .await
        .map_err(|(_, e)| WebError::Internal(format!("the test-mode mandate: {e}")))?;
    for mandate in handled.activated {
        direct_debit::collect(state.db(), payments, &org, Some(mandate), now)
            .await
            .map_err(WebError::Internal)?;
    }
    Ok(Redirect::to("/direct-debit?done=1").into_response())
}
