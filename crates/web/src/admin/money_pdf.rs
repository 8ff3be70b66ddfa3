//! Money documents as PDFs (issue 6): demands and invoices, credit notes, receipts and
//! statements, typeset in-process with typst (or by Gotenberg when one is configured), stored
//! in the object store against the record with the content's SHA-256, and served. A document
//! already stored is served as stored: what was issued stays what it was.

use super::Member;
use super::money::{iso, opt_date};
use super::operations::query_of;
use super::records::parse_id;
use super::units::unit_for;
use crate::error::WebError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::email::Attachment;
use proplink_db::people;
use proplink_db::portfolio::{SiteScope, Unit};
use proplink_db::receivables::{self as rx, Invoice, NewMoneyDocument};
use proplink_domain::dates::long_date;
use proplink_files::MediaType;
use proplink_pdf::{
    CreditNote, DocLine, Document, Organisation, Party, Receipt, Statement, StatementRow, Statutory,
};
use time::Date;
use uuid::Uuid;

type Page = Result<Response, WebError>;

/// The organisation as it heads its documents: trading name and registered office.
pub(crate) async fn organisation(
    tx: &mut TenantTx,
    member_org: &str,
) -> Result<Organisation, WebError> {
    let profile = proplink_db::profile::get(tx).await?;
    Ok(Organisation {
        name: profile
            .trading_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| member_org.to_owned()),
        address_lines: profile
            .registered_office
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        logo_png: None,
    })
}

/// Who a document is addressed to: the contact's name and correspondence address.
async fn party(
    tx: &mut TenantTx,
    contact: Option<Uuid>,
    fallback: &str,
) -> Result<Party, WebError> {
    let found = match contact {
        Some(c) => people::contact(tx, &SiteScope::everything(), c).await?,
        None => None,
    };
    Ok(match found {
        Some(c) => Party {
            address_lines: c.address().lines(),
            name: c.display_name,
        },
        None => Party {
            name: fallback.to_owned(),
            address_lines: Vec::new(),
        },
    })
}

fn period_words(from: Option<Date>, to: Option<Date>) -> Option<String> {
    match (from, to) {
        (Some(f), Some(t)) => Some(format!("{} to {}", long_date(f), long_date(t))),
        (Some(f), None) => Some(format!("from {}", long_date(f))),
        (None, Some(t)) => Some(format!("to {}", long_date(t))),
        (None, None) => None,
    }
}

pub(crate) async fn invoice_document(
    tx: &mut TenantTx,
    inv: &Invoice,
    unit: &Unit,
    org_name: &str,
) -> Result<Document, WebError> {
    let org = organisation(tx, org_name).await?;
    let to = party(tx, Some(inv.contact_id), &inv.contact_name).await?;
    let lines = rx::invoice_lines(tx, inv.id).await?;
    let statutory = rx::demand_statutory_text(tx, inv)
        .await?
        .map(|(t, filled)| Statutory::from_body(&t.title, &filled, &t.source, t.version));
    let (Some(number), Some(issue_date), Some(due_date)) =
        (inv.number.clone(), inv.issue_date, inv.due_date)
    else {
        return Err(WebError::NotFound);
    };
    Ok(Document::Invoice(proplink_pdf::Invoice {
        org,
        to,
        title: inv.kind().label().to_owned(),
        number,
        issue_date,
        due_date,
        unit: format!("{} ({})", unit.name, unit.reference),
        site: format!("{} {}", unit.site_reference, unit.site_name),
        reference: inv.reference.clone(),
        lines: lines
            .iter()
            .map(|l| DocLine {
                description: l.description.clone(),
                period: period_words(l.period_from, l.period_to),
                net_pence: l.net_pence,
                vat_pence: l.vat_pence,
                vat_label: l.tax_rate_name.clone(),
            })
            .collect(),
        net_pence: inv.net_pence,
        vat_pence: inv.vat_pence,
        total_pence: inv.total_pence,
        paid_pence: inv.paid_pence,
        landlord_name: inv.landlord_name.clone().unwrap_or_default(),
        landlord_address: inv.landlord_address.clone().unwrap_or_default(),
        statutory,
    }))
}

/// Renders with Gotenberg when configured, else typst on a blocking thread.
pub(crate) async fn render(
    state: &AppState,
    doc: Document,
) -> Result<(Vec<u8>, &'static str), WebError> {
    if let Some(gotenberg) = &state.settings().gotenberg {
        let html = proplink_pdf::html(&doc);
        let pdf = gotenberg
            .html_to_pdf(&html)
            .await
            .map_err(|e| WebError::Internal(format!("Gotenberg: {e}")))?;
        return Ok((pdf, "gotenberg"));
    }
    let rendered = tokio::task::spawn_blocking(move || proplink_pdf::render(&doc))
        .await
        .map_err(|e| WebError::Internal(format!("the PDF renderer stopped: {e}")))?
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok((rendered.pdf, "typst"))
}

/// What a stored or fresh PDF is, for an answer or an attachment.
pub(crate) struct Pdf {
    pub bytes: Vec<u8>,
    pub attachment: Option<Attachment>,
}

/// The record's stored PDF, or a fresh one rendered, stored and recorded.
#[allow(
    clippy::too_many_arguments,
    reason = "the record's identity, spelt out"
)]
pub(crate) async fn stored_or_fresh(
    state: &AppState,
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
    unit: &Unit,
    period: Option<(Date, Date)>,
    filename: &str,
    by: &str,
    doc: impl AsyncFnOnce(&mut TenantTx) -> Result<Document, WebError>,
) -> Result<Pdf, WebError> {
    let files = state.settings().files.as_ref();
    if let (Some(files), Some(found)) = (
        files,
        rx::latest_document(tx, record_type, record_id, period).await?,
    ) {
        let bytes = files
            .get(&found.object_key)
            .await
            .map_err(|e| WebError::Internal(format!("reading a stored PDF: {e}")))?;
        return Ok(Pdf {
            bytes: bytes.to_vec(),
            attachment: Some(Attachment {
                filename: filename.to_owned(),
                media_type: "application/pdf".into(),
                sha256: found.sha256,
                size_bytes: found.size_bytes,
                object_key: found.object_key,
            }),
        });
    }
    let document = doc(tx).await?;
    let (bytes, renderer) = render(state, document).await?;
    let Some(files) = files else {
        return Ok(Pdf {
            bytes,
            attachment: None,
        });
    };
    let stored = files
        .put(
            tx.org().0,
            filename,
            bytes.clone().into(),
            &[MediaType::Pdf],
        )
        .await
        .map_err(|e| WebError::Internal(format!("storing a PDF: {e}")))?;
    rx::record_document(
        tx,
        &NewMoneyDocument {
            record_type,
            record_id,
            site_id: unit.site_id,
            unit_id: unit.id,
            period,
            sha256: &stored.sha256,
            size_bytes: stored.size,
            object_key: &stored.key,
            renderer,
        },
        by,
    )
    .await?;
    Ok(Pdf {
        bytes,
        attachment: Some(Attachment {
            filename: filename.to_owned(),
            media_type: "application/pdf".into(),
            sha256: stored.sha256,
            size_bytes: stored.size,
            object_key: stored.key,
        }),
    })
}

pub(crate) fn pdf_response(bytes: Vec<u8>, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// GET /invoices/{id}/pdf
pub async fn invoice_pdf(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let inv = rx::find_invoice(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, inv.unit_id, "debtor_invoice.read").await?;
    let Some(number) = inv.number.clone() else {
        // A draft has no document yet.
        return Err(WebError::NotFound);
    };
    let filename = format!("{number}.pdf");
    let org_name = member.org.name.clone();
    let pdf = stored_or_fresh(
        &state,
        &mut tx,
        "debtor_invoice",
        id,
        &unit,
        None,
        &filename,
        &member.name,
        async |tx| invoice_document(tx, &inv, &unit, &org_name).await,
    )
    .await?;
    tx.commit().await?;
    Ok(pdf_response(pdf.bytes, &filename))
}

/// GET /credit-notes/{id}/pdf
pub async fn credit_pdf(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let n = rx::find_credit_note(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, n.unit_id, "credit_note.read").await?;
    let (Some(number), Some(issue_date)) = (n.number.clone(), n.issue_date) else {
        return Err(WebError::NotFound);
    };
    let filename = format!("{number}.pdf");
    let org_name = member.org.name.clone();
    let pdf = stored_or_fresh(
        &state,
        &mut tx,
        "credit_note",
        id,
        &unit,
        None,
        &filename,
        &member.name,
        async |tx| {
            let lines = rx::credit_lines(tx, id).await?;
            Ok(Document::CreditNote(CreditNote {
                org: organisation(tx, &org_name).await?,
                to: party(tx, Some(n.contact_id), &n.contact_name).await?,
                number: number.clone(),
                issue_date,
                unit: format!("{} ({})", unit.name, unit.reference),
                site: format!("{} {}", unit.site_reference, unit.site_name),
                reason: n.reason.clone(),
                against: n.invoice_number.clone(),
                lines: lines
                    .iter()
                    .map(|l| DocLine {
                        description: l.description.clone(),
                        period: None,
                        net_pence: l.net_pence,
                        vat_pence: l.vat_pence,
                        vat_label: if l.vat_pence == 0 {
                            "No VAT".into()
                        } else {
                            "VAT".into()
                        },
                    })
                    .collect(),
                net_pence: n.net_pence,
                vat_pence: n.vat_pence,
                total_pence: n.total_pence,
            }))
        },
    )
    .await?;
    tx.commit().await?;
    Ok(pdf_response(pdf.bytes, &filename))
}

/// GET /receipts/{id}/pdf
pub async fn receipt_pdf(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let r = rx::find_receipt(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, r.unit_id, "payment.read").await?;
    let filename = format!("{}.pdf", r.number);
    let org_name = member.org.name.clone();
    let pdf = stored_or_fresh(
        &state,
        &mut tx,
        "receipt",
        id,
        &unit,
        None,
        &filename,
        &member.name,
        async |tx| {
            let allocations = rx::receipt_allocations(tx, id).await?;
            Ok(Document::Receipt(Receipt {
                org: organisation(tx, &org_name).await?,
                to: party(
                    tx,
                    r.contact_id,
                    r.contact_name.as_deref().unwrap_or("The payer"),
                )
                .await?,
                number: r.number.clone(),
                received_on: r.received_on,
                unit: format!("{} ({})", unit.name, unit.reference),
                site: format!("{} {}", unit.site_reference, unit.site_name),
                amount_pence: r.amount_pence,
                method: r.method().label().to_owned(),
                reference: r.reference.clone(),
                allocations: allocations
                    .into_iter()
                    .map(|(_, number, amount, _)| (number, amount))
                    .collect(),
                unallocated_pence: r.available_pence(),
            }))
        },
    )
    .await?;
    tx.commit().await?;
    Ok(pdf_response(pdf.bytes, &filename))
}

/// GET /units/{id}/statement.pdf?from=&to=
pub async fn statement_pdf(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let from = opt_date(query.get("from"), "start date")
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            Date::from_calendar_date(today.year(), time::Month::January, 1).unwrap_or(today)
        });
    let to = opt_date(query.get("to"), "end date")
        .ok()
        .flatten()
        .unwrap_or(today);
    if to < from {
        return Err(WebError::NotFound);
    }
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    let filename = format!(
        "statement-{}-{}-{}.pdf",
        unit.reference.replace(' ', "-"),
        iso(from),
        iso(to)
    );
    let org_name = member.org.name.clone();
    // A statement reaching today can still change: it is rendered afresh, not stored.
    let render_only = to >= today;
    let build = async |tx: &mut TenantTx| -> Result<Document, WebError> {
        let holder = people::unit_leases(tx, id)
            .await?
            .into_iter()
            .find(|l| l.ends_on.is_none())
            .and_then(|l| l.holder_ids.first().copied());
        statement_document(tx, &unit, from, to, &org_name, holder).await
    };
    let bytes = if render_only {
        let document = build(&mut tx).await?;
        render(&state, document).await?.0
    } else {
        stored_or_fresh(
            &state,
            &mut tx,
            "statement",
            id,
            &unit,
            Some((from, to)),
            &filename,
            &member.name,
            build,
        )
        .await?
        .bytes
    };
    tx.commit().await?;
    Ok(pdf_response(bytes, &filename))
}

/// A unit's statement from `from` to `to` as a document addressed to `holder` (the admin
/// statement and ResidencePort's are the same document).
pub(crate) async fn statement_document(
    tx: &mut TenantTx,
    unit: &Unit,
    from: Date,
    to: Date,
    org_name: &str,
    holder: Option<Uuid>,
) -> Result<Document, WebError> {
    let st = rx::statement(tx, unit.id, from, to)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(Document::Statement(Statement {
        org: organisation(tx, org_name).await?,
        to: party(tx, holder, &unit.name).await?,
        unit: format!("{} ({})", unit.name, unit.reference),
        site: format!("{} {}", unit.site_reference, unit.site_name),
        from,
        to_date: to,
        opening_pence: st.opening_pence,
        rows: st
            .rows
            .iter()
            .map(|r| StatementRow {
                date: r.date,
                description: r.description.clone(),
                debit_pence: r.amount_pence.max(0),
                credit_pence: (-r.amount_pence).max(0),
                balance_pence: r.balance_pence,
            })
            .collect(),
        closing_pence: st.closing_pence,
        overdue_pence: st.overdue_pence,
    }))
}
