//! Receipt batches (docs-spec §2.6): a site's receipts recorded together from rows of unit,
//! amount and reference, typed or pasted from a spreadsheet, and a batch's page listing the
//! receipts it made. Recording needs `payment.record` on the site; reading, `payment.read`.

use super::form::FormData;
use super::money::{iso, method_opts, money_error, writable};
use super::operations::{back_to, flash_of, query_of};
use super::records::{Opt, parse_id};
use super::site_money::site_for;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::ledger::{self, LedgerError};
use proplink_db::portfolio::Site;
use proplink_db::receipt_batches::{self as batches, BatchInput};
use proplink_domain::dates::long_date;
use proplink_domain::receivables::{PaymentMethod, parse_batch_rows};
use proplink_domain::uk::format_pence;
use uuid::Uuid;

type Page = Result<Response, WebError>;

#[derive(Template, WebTemplate)]
#[template(path = "money/batch_form.html")]
struct BatchForm {
    shell: Shell,
    site: Site,
    received_on: String,
    methods: Vec<Opt>,
    banks: Vec<Opt>,
    note: String,
    rows: String,
    problems: Vec<String>,
}

async fn banks(tx: &mut TenantTx, site: Uuid, chosen: &str) -> Result<Vec<Opt>, WebError> {
    ledger::ensure_books(tx, site).await?;
    Ok(ledger::accounts(tx, site)
        .await?
        .into_iter()
        .filter(|a| a.control.as_deref() == Some("bank") && a.archived_at.is_none())
        .map(|a| Opt::new(a.id.to_string(), format!("{} {}", a.code, a.name), chosen))
        .collect())
}

/// GET /sites/{id}/receipt-batches/new
pub async fn new_batch(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "payment.record").await?;
    let banks = banks(&mut tx, id, "").await?;
    tx.commit().await?;
    Ok(BatchForm {
        shell: Shell::new(&member, "/sites"),
        site,
        received_on: iso(state.now().date()),
        methods: method_opts("bank_transfer"),
        banks,
        note: String::new(),
        rows: String::new(),
        problems: Vec::new(),
    }
    .into_response())
}

/// POST /sites/{id}/receipt-batches/new: every row recorded, or none and the form back with
/// what was typed and each problem named.
pub async fn create_batch(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "payment.record").await?;
    let parsed = batch_input(id, &v);
    let result = match parsed {
        Ok(input) => {
            match batches::record_batch(&mut tx, &input, &member.name, state.now()).await {
                Ok(done) => Ok(done),
                Err(LedgerError::Refused(why)) => Err(why.lines().map(str::to_owned).collect()),
                Err(e) => Err(vec![money_error(e)?]),
            }
        }
        Err(problems) => Err(problems),
    };
    match result {
        Ok(done) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/receipt-batches/{}", done.id),
                &format!(
                    "Recorded {} receipt{} totalling {}: {}.",
                    done.numbers.len(),
                    if done.numbers.len() == 1 { "" } else { "s" },
                    format_pence(done.total_pence),
                    match (done.numbers.first(), done.numbers.last()) {
                        (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
                        (Some(a), _) => a.clone(),
                        _ => String::new(),
                    }
                ),
            ))
        }
        Err(problems) => {
            drop(tx);
            let mut tx = state.db().begin(&member.ctx()).await?;
            let banks = banks(&mut tx, id, v.get("bank")).await?;
            tx.commit().await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                BatchForm {
                    shell: Shell::new(&member, "/sites"),
                    site,
                    received_on: v.get("received_on").to_owned(),
                    methods: method_opts(v.get("method")),
                    banks,
                    note: v.get("note").to_owned(),
                    rows: v.get("rows").to_owned(),
                    problems,
                },
            )
                .into_response())
        }
    }
}

/// The form as a batch, or every problem with it.
fn batch_input(id: Uuid, v: &FormData) -> Result<BatchInput, Vec<String>> {
    let mut problems = Vec::new();
    let received_on = super::money::date(v.get("received_on"), "date received")
        .map_err(|p| problems.push(p))
        .ok();
    let method = PaymentMethod::parse(v.get("method"));
    if method.is_none() {
        problems.push("Choose how the money was paid.".into());
    }
    let bank = match v.get("bank").trim() {
        "" => None,
        b => match Uuid::parse_str(b) {
            Ok(b) => Some(b),
            Err(_) => {
                problems.push("Choose the bank account again.".into());
                None
            }
        },
    };
    let rows = parse_batch_rows(v.get("rows")).unwrap_or_else(|p| {
        problems.extend(p);
        Vec::new()
    });
    match (received_on, method) {
        (Some(received_on), Some(method)) if problems.is_empty() => Ok(BatchInput {
            site_id: id,
            received_on,
            method,
            bank_account_id: bank,
            note: Some(v.get("note").to_owned()),
            rows,
        }),
        _ => Err(problems),
    }
}

pub struct BatchReceiptRow {
    pub id: Uuid,
    pub number: String,
    pub unit_id: Uuid,
    pub unit: String,
    pub payer: String,
    pub amount: String,
    pub allocated: String,
    pub reference: String,
    pub reversed: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/batch.html")]
struct BatchPage {
    shell: Shell,
    site: Site,
    summary: String,
    received_on: String,
    bank: String,
    note: String,
    recorded: String,
    receipts: Vec<BatchReceiptRow>,
    flash: Option<String>,
}

/// GET /receipt-batches/{id}
pub async fn batch(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let b = batches::find_batch(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let site = site_for(&mut tx, &member, b.site_id, "payment.read").await?;
    let receipts = batches::batch_receipts(&mut tx, id).await?;
    tx.commit().await?;
    let (flash, _) = flash_of(&query);
    Ok(BatchPage {
        shell: Shell::new(&member, "/sites"),
        summary: b.summary(),
        received_on: long_date(b.received_on),
        bank: b.bank_account.clone(),
        note: b.note.clone().unwrap_or_default(),
        recorded: format!("{} on {}", b.recorded_by, long_date(b.created_at.date())),
        receipts: receipts
            .iter()
            .map(|r| BatchReceiptRow {
                id: r.id,
                number: r.number.clone(),
                unit_id: r.unit_id,
                unit: r.unit_reference.clone(),
                payer: r
                    .contact_name
                    .clone()
                    .unwrap_or_else(|| "Not recorded".into()),
                amount: format_pence(r.amount_pence),
                allocated: format_pence(r.allocated_pence),
                reference: r.reference.clone().unwrap_or_default(),
                reversed: r.status == "reversed",
            })
            .collect(),
        site,
        flash,
    }
    .into_response())
}
