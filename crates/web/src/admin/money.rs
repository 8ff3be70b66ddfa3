//! Money in the admin app (issue 6): a unit's financials, demands and invoices through their
//! lifecycle and approval chain, credit notes, receipts with their allocations, refunds and
//! reversals, and the unit statement. The rules live in `proplink_db::receivables` and
//! `proplink_db::approvals`; these handlers parse forms, check scope (a record outside the
//! member's sites is 404) and permissions, and draw pages. A refused form is drawn again with
//! what was typed and the refusal.

use super::form::FormData;
use super::operations::{back_to, flash_of, query_of, refused_on};
use super::records::{self, HistoryRow, Opt, check, may, parse_id};
use super::units::unit_for;
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
use proplink_db::approvals::{self, Signer};
use proplink_db::email::{self, NewEmail};
use proplink_db::ledger::{self, LedgerError};
use proplink_db::portfolio::Unit;
use proplink_db::receivables::{
    self as rx, Allocate, Approval, CreditInput, CreditSource, DraftLine, Invoice, InvoiceInput,
    ReceiptInput, RefundInput,
};
use proplink_domain::dates::long_date;
use proplink_domain::receivables::{InvoiceKind, InvoiceStatus, PaymentMethod};
use proplink_domain::uk::{format_pence, parse_pounds_to_pence, parse_uk_date};
use time::Date;
use uuid::Uuid;

type Page = Result<Response, WebError>;

/// How many line rows a form offers.
const FORM_ROWS: usize = 8;

/// A refusal for people (a sentence), or an error for the error page.
pub(super) fn money_error(e: LedgerError) -> Result<String, WebError> {
    match e {
        LedgerError::NotFound => Err(WebError::NotFound),
        LedgerError::Db(d) => Err(d.into()),
        other => Ok(other.to_string()),
    }
}

pub(super) async fn signer(tx: &mut TenantTx, member: &Member) -> Result<Signer, WebError> {
    Ok(Signer::member(tx, member.membership_id, &member.name).await?)
}

pub(super) fn writable(member: &Member) -> Result<(), WebError> {
    if member.read_only() {
        Err(WebError::Forbidden)
    } else {
        Ok(())
    }
}

pub(super) fn iso(d: Date) -> String {
    proplink_domain::dates::iso_date(d)
}

fn pounds(pence: i64) -> String {
    format!("{}.{:02}", pence / 100, (pence % 100).abs())
}

pub(super) fn opt_date(v: &str, what: &str) -> Result<Option<Date>, String> {
    match v.trim() {
        "" => Ok(None),
        t => parse_uk_date(t)
            .map(Some)
            .map_err(|e| format!("The {what}: {e}.")),
    }
}

pub(super) fn date(v: &str, what: &str) -> Result<Date, String> {
    opt_date(v, what)?.ok_or_else(|| format!("Give the {what}."))
}

pub(super) fn amount(v: &str, what: &str) -> Result<i64, String> {
    match v.trim() {
        "" => Err(format!("Give the {what}.")),
        t => parse_pounds_to_pence(t).map_err(|e| format!("The {what}: {e}.")),
    }
}

pub(super) fn uuid_of(v: &str, what: &str) -> Result<Uuid, String> {
    Uuid::parse_str(v.trim()).map_err(|_| format!("Choose the {what}."))
}

pub(super) fn method_opts(chosen: &str) -> Vec<Opt> {
    PaymentMethod::ALL
        .iter()
        .map(|m| Opt::new(m.as_str(), m.label(), chosen))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A document's lines as a form shows them

#[derive(Default, Clone)]
pub struct LineRow {
    pub n: usize,
    pub description: String,
    pub account: String,
    pub fund: String,
    pub tax: String,
    pub amount: String,
    pub from: String,
    pub to: String,
}

/// The choices a line offers: the site's accounts a charge can be coded to, its funds, the
/// organisation's rates.
pub struct LineChoices {
    pub accounts: Vec<(String, String)>,
    pub funds: Vec<(String, String)>,
    pub taxes: Vec<(String, String)>,
}

pub(super) async fn line_choices(tx: &mut TenantTx, site: Uuid) -> Result<LineChoices, WebError> {
    ledger::ensure_books(tx, site).await?;
    ledger::ensure_tax_rates(tx).await?;
    let accounts = ledger::accounts(tx, site)
        .await?
        .into_iter()
        .filter(|a| {
            a.archived_at.is_none()
                && !matches!(
                    a.control.as_deref(),
                    Some("debtors" | "creditors" | "bank" | "vat" | "suspense")
                )
        })
        .map(|a| (a.id.to_string(), format!("{} {}", a.code, a.name)))
        .collect();
    let funds = ledger::funds(tx, site)
        .await?
        .into_iter()
        .map(|f| (f.id.to_string(), f.name))
        .collect();
    let taxes = ledger::tax_rates(tx)
        .await?
        .into_iter()
        .filter(|t| t.archived_at.is_none())
        .map(|t| (t.id.to_string(), t.name))
        .collect();
    Ok(LineChoices {
        accounts,
        funds,
        taxes,
    })
}

fn blank_rows(from: usize) -> impl Iterator<Item = LineRow> {
    (from..=FORM_ROWS).map(|n| LineRow {
        n,
        ..LineRow::default()
    })
}

/// The rows as typed, and the lines they make (blank rows skipped).
fn read_rows(v: &FormData) -> (Vec<LineRow>, Result<Vec<DraftLine>, String>) {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut problem = None;
    for n in 1..=FORM_ROWS {
        let get = |k: &str| v.get(&format!("{k}_{n}")).to_owned();
        let row = LineRow {
            n,
            description: get("description"),
            account: get("account"),
            fund: get("fund"),
            tax: get("tax"),
            amount: get("amount"),
            from: get("from"),
            to: get("to"),
        };
        let blank = row.description.trim().is_empty() && row.amount.trim().is_empty();
        if !blank && problem.is_none() {
            let parsed = (|| -> Result<DraftLine, String> {
                Ok(DraftLine {
                    description: row.description.clone(),
                    account_id: uuid_of(&row.account, &format!("account of line {n}"))?,
                    fund_id: uuid_of(&row.fund, &format!("fund of line {n}"))?,
                    tax_rate_id: uuid_of(&row.tax, &format!("tax rate of line {n}"))?,
                    net_pence: amount(&row.amount, &format!("amount of line {n}"))?,
                    period_from: opt_date(&row.from, &format!("start of line {n}'s period"))?,
                    period_to: opt_date(&row.to, &format!("end of line {n}'s period"))?,
                })
            })();
            match parsed {
                Ok(l) => lines.push(l),
                Err(p) => problem = Some(p),
            }
        }
        rows.push(row);
    }
    match problem {
        Some(p) => (rows, Err(p)),
        None => (rows, Ok(lines)),
    }
}

// ---------------------------------------------------------------------------------------------
// A unit's financials

pub struct InvoiceRow {
    pub id: Uuid,
    pub label: String,
    pub kind: String,
    pub issued: String,
    pub due: String,
    pub total: String,
    pub balance: String,
    pub status: String,
    pub status_class: &'static str,
}

fn status_class(s: InvoiceStatus) -> &'static str {
    match s {
        InvoiceStatus::Paid => "pl-status-green",
        InvoiceStatus::PartPaid | InvoiceStatus::AwaitingApproval => "pl-status-amber",
        InvoiceStatus::Voided | InvoiceStatus::Draft => "pl-status-grey",
        InvoiceStatus::Approved | InvoiceStatus::Sent => "pl-status-blue",
    }
}

pub(super) fn invoice_row(i: &Invoice) -> InvoiceRow {
    InvoiceRow {
        id: i.id,
        label: i.label(),
        kind: i.kind().label().to_owned(),
        issued: i.issue_date.map(long_date).unwrap_or_default(),
        due: i.due_date.map(long_date).unwrap_or_default(),
        total: format_pence(i.total_pence),
        balance: format_pence(i.balance_pence()),
        status: i.status().label().to_owned(),
        status_class: status_class(i.status()),
    }
}

pub struct DocRow {
    pub href: String,
    pub label: String,
    pub on: String,
    pub amount: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/unit_financials.html")]
struct UnitFinancials {
    shell: Shell,
    unit: Unit,
    balance: String,
    overdue: String,
    credit: String,
    invoices: Vec<InvoiceRow>,
    credits: Vec<DocRow>,
    receipts: Vec<DocRow>,
    refunds: Vec<DocRow>,
    can_invoice: bool,
    can_receive: bool,
    can_credit: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /units/{id}/financials
pub async fn unit_financials(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    let today = state.now().date();
    let st = rx::statement(&mut tx, id, date_floor(), today)
        .await
        .map_err(db_only)?;
    let credit = rx::unit_credit(&mut tx, id).await?;
    let invoices = rx::unit_invoices(&mut tx, id).await?;
    let credits = rx::unit_credit_notes(&mut tx, id).await?;
    let receipts = rx::unit_receipts(&mut tx, id).await?;
    let refunds = rx::unit_refunds(&mut tx, id).await?;
    tx.commit().await?;
    let placement = unit.placement();
    let (flash, problem) = flash_of(&query);
    Ok(UnitFinancials {
        shell: Shell::new(&member, "/units"),
        balance: balance_words(st.closing_pence),
        overdue: format_pence(st.overdue_pence),
        credit: format_pence(credit),
        invoices: invoices.iter().map(invoice_row).collect(),
        credits: credits
            .iter()
            .map(|n| DocRow {
                href: format!("/credit-notes/{}", n.id),
                label: n.label(),
                on: n.issue_date.map(long_date).unwrap_or_default(),
                amount: format_pence(n.total_pence),
                detail: format!(
                    "{}{}",
                    status_words(&n.status),
                    if n.available_pence() > 0 {
                        format!("; {} unused", format_pence(n.available_pence()))
                    } else {
                        String::new()
                    }
                ),
            })
            .collect(),
        receipts: receipts
            .iter()
            .map(|r| DocRow {
                href: format!("/receipts/{}", r.id),
                label: r.number.clone(),
                on: long_date(r.received_on),
                amount: format_pence(r.amount_pence),
                detail: if r.status == "reversed" {
                    "Reversed".to_owned()
                } else if r.available_pence() > 0 {
                    format!(
                        "{}; {} unallocated",
                        r.method().label(),
                        format_pence(r.available_pence())
                    )
                } else {
                    r.method().label().to_owned()
                },
            })
            .collect(),
        refunds: refunds
            .iter()
            .map(|f| DocRow {
                href: String::new(),
                label: f.number.clone(),
                on: long_date(f.refunded_on),
                amount: format_pence(f.amount_pence),
                detail: format!("from {}", f.source),
            })
            .collect(),
        can_invoice: may(&member, "debtor_invoice.create", placement),
        can_receive: may(&member, "payment.record", placement),
        can_credit: may(&member, "credit_note.create", placement),
        unit,
        flash,
        problem,
    }
    .into_response())
}

fn date_floor() -> Date {
    Date::from_calendar_date(2000, time::Month::January, 1).unwrap_or(Date::MIN)
}

fn db_only(e: LedgerError) -> WebError {
    match e {
        LedgerError::NotFound => WebError::NotFound,
        LedgerError::Db(d) => d.into(),
        other => WebError::Internal(other.to_string()),
    }
}

/// "£450.00 owed", "£50.00 in credit", "Nothing owed".
fn balance_words(pence: i64) -> String {
    match pence {
        0 => "Nothing owed".to_owned(),
        p if p > 0 => format!("{} owed", format_pence(p)),
        p => format!("{} in credit", format_pence(-p)),
    }
}

fn status_words(s: &str) -> &'static str {
    match s {
        "draft" => "Draft",
        "awaiting_approval" => "Awaiting approval",
        "approved" => "Approved",
        "posted" => "Posted",
        _ => "—",
    }
}

// ---------------------------------------------------------------------------------------------
// Invoice form

#[derive(Template, WebTemplate)]
#[template(path = "money/invoice_form.html")]
struct InvoiceForm {
    shell: Shell,
    unit: Unit,
    action: String,
    heading: String,
    kinds: Vec<Opt>,
    contacts: Vec<Opt>,
    reference: String,
    issue_date: String,
    due_date: String,
    rows: Vec<LineRow>,
    choices: LineChoices,
    problem: Option<String>,
}

/// The unit's leaseholders and occupiers, current first, as choices.
async fn billable(tx: &mut TenantTx, unit: Uuid, chosen: &str) -> Result<Vec<Opt>, WebError> {
    let leases = proplink_db::people::unit_leases(tx, unit).await?;
    let occupants = proplink_db::people::occupancies(tx, Some(unit), None).await?;
    let mut opts: Vec<Opt> = Vec::new();
    let mut seen = Vec::new();
    for l in &leases {
        for (id, name) in l.holder_ids.iter().zip(&l.holder_names) {
            if !seen.contains(id) {
                seen.push(*id);
                let when = if l.ends_on.is_none() {
                    "leaseholder"
                } else {
                    "former leaseholder"
                };
                opts.push(Opt::new(id.to_string(), format!("{name} ({when})"), chosen));
            }
        }
    }
    for o in &occupants {
        if !seen.contains(&o.contact_id) {
            seen.push(o.contact_id);
            opts.push(Opt::new(
                o.contact_id.to_string(),
                format!("{} ({})", o.contact_name, o.kind),
                chosen,
            ));
        }
    }
    Ok(opts)
}

fn kind_opts(chosen: &str) -> Vec<Opt> {
    InvoiceKind::ALL
        .iter()
        .map(|k| Opt::new(k.as_str(), k.label(), chosen))
        .collect()
}

/// GET /units/{id}/invoices/new
pub async fn new_invoice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "debtor_invoice.create").await?;
    let choices = line_choices(&mut tx, unit.site_id).await?;
    let contacts = billable(&mut tx, id, "").await?;
    tx.commit().await?;
    let today = state.now().date();
    Ok(InvoiceForm {
        shell: Shell::new(&member, "/units"),
        action: format!("/units/{id}/invoices/new"),
        heading: "New demand or invoice".into(),
        kinds: kind_opts("service_charge"),
        contacts,
        reference: String::new(),
        issue_date: iso(today),
        due_date: iso(today.saturating_add(time::Duration::days(30))),
        rows: blank_rows(1).collect(),
        choices,
        unit,
        problem: None,
    }
    .into_response())
}

/// POST /units/{id}/invoices/new and /invoices/{id}/edit
pub async fn create_invoice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let unit_id = parse_id(&id)?;
    save_invoice(&state, &member, unit_id, None, &FormData::parse(&body)).await
}

async fn save_invoice(
    state: &AppState,
    member: &Member,
    unit_id: Uuid,
    existing: Option<Uuid>,
    v: &FormData,
) -> Page {
    writable(member)?;
    let key = if existing.is_some() {
        "debtor_invoice.update"
    } else {
        "debtor_invoice.create"
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, member, unit_id, key).await?;
    let (rows, lines) = read_rows(v);
    let parsed = (|| -> Result<InvoiceInput, String> {
        Ok(InvoiceInput {
            unit_id,
            contact_id: uuid_of(v.get("contact"), "leaseholder the demand is addressed to")?,
            kind: InvoiceKind::parse(v.get("kind"))
                .ok_or_else(|| "Choose what the invoice is for.".to_owned())?,
            reference: Some(v.get("reference").to_owned()),
            issue_date: opt_date(v.get("issue_date"), "issue date")?,
            due_date: opt_date(v.get("due_date"), "due date")?,
            lines: lines.clone()?,
        })
    })();
    let outcome: Result<Uuid, String> = match parsed {
        Ok(input) => match rx::save_invoice_draft(&mut tx, existing, &input, &member.name).await {
            Ok(id) => Ok(id),
            Err(e) => Err(money_error(e)?),
        },
        Err(p) => Err(p),
    };
    match outcome {
        Ok(id) => {
            tx.commit().await?;
            Ok(back_to(&format!("/invoices/{id}"), "Draft saved."))
        }
        Err(problem) => {
            let choices = line_choices(&mut tx, unit.site_id).await?;
            let contacts = billable(&mut tx, unit_id, v.get("contact")).await?;
            drop(tx);
            let action = match existing {
                Some(id) => format!("/invoices/{id}/edit"),
                None => format!("/units/{unit_id}/invoices/new"),
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                InvoiceForm {
                    shell: Shell::new(member, "/units"),
                    action,
                    heading: if existing.is_some() {
                        "Edit draft".into()
                    } else {
                        "New demand or invoice".into()
                    },
                    kinds: kind_opts(v.get("kind")),
                    contacts,
                    reference: v.get("reference").to_owned(),
                    issue_date: v.get("issue_date").to_owned(),
                    due_date: v.get("due_date").to_owned(),
                    rows,
                    choices,
                    unit,
                    problem: Some(problem),
                },
            )
                .into_response())
        }
    }
}

/// The invoice and its unit, if the member may do `key` to it.
async fn invoice_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<(Invoice, Unit), WebError> {
    let inv = rx::find_invoice(tx, id).await?.ok_or(WebError::NotFound)?;
    let unit = unit_for(tx, member, inv.unit_id, key).await?;
    Ok((inv, unit))
}

/// GET /invoices/{id}/edit
pub async fn edit_invoice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (inv, unit) = invoice_for(&mut tx, &member, id, "debtor_invoice.update").await?;
    if inv.status() != InvoiceStatus::Draft {
        return Ok(refused_on(
            &format!("/invoices/{id}"),
            "Only a draft is edited: correct an approved invoice with a credit note.",
        ));
    }
    let lines = rx::invoice_lines(&mut tx, id).await?;
    let choices = line_choices(&mut tx, unit.site_id).await?;
    let contacts = billable(&mut tx, unit.id, &inv.contact_id.to_string()).await?;
    tx.commit().await?;
    let mut rows: Vec<LineRow> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineRow {
            n: i + 1,
            description: l.description.clone(),
            account: l.account_id.to_string(),
            fund: l.fund_id.to_string(),
            tax: l.tax_rate_id.to_string(),
            amount: pounds(l.net_pence),
            from: l.period_from.map(iso).unwrap_or_default(),
            to: l.period_to.map(iso).unwrap_or_default(),
        })
        .collect();
    rows.extend(blank_rows(rows.len() + 1));
    Ok(InvoiceForm {
        shell: Shell::new(&member, "/units"),
        action: format!("/invoices/{id}/edit"),
        heading: "Edit draft".into(),
        kinds: kind_opts(inv.kind().as_str()),
        contacts,
        reference: inv.reference.clone().unwrap_or_default(),
        issue_date: inv.issue_date.map(iso).unwrap_or_default(),
        due_date: inv.due_date.map(iso).unwrap_or_default(),
        rows,
        choices,
        unit,
        problem: None,
    }
    .into_response())
}

/// POST /invoices/{id}/edit
pub async fn update_invoice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let unit_id = {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let (inv, _) = invoice_for(&mut tx, &member, id, "debtor_invoice.update").await?;
        tx.commit().await?;
        inv.unit_id
    };
    save_invoice(&state, &member, unit_id, Some(id), &FormData::parse(&body)).await
}

// ---------------------------------------------------------------------------------------------
// Invoice page

pub struct LineView {
    pub description: String,
    pub period: String,
    pub account: String,
    pub fund: String,
    pub tax: String,
    pub net: String,
    pub vat: String,
    pub gross: String,
    pub paid: String,
}

pub struct StepView {
    pub approver: String,
    pub signed: String,
}

pub struct ApprovalView {
    pub chain: String,
    pub mode: String,
    pub status: String,
    pub steps: Vec<StepView>,
    pub waiting_for: String,
}

pub struct CreditChoice {
    pub value: String,
    pub label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/invoice.html")]
struct InvoicePage {
    shell: Shell,
    inv: InvoiceRow,
    unit: Unit,
    contact: String,
    reference: String,
    facts: Vec<(String, String)>,
    lines: Vec<LineView>,
    net: String,
    vat: String,
    total: String,
    paid: String,
    balance: String,
    statutory_title: String,
    statutory_paragraphs: Vec<String>,
    statutory_source: String,
    statutory_unverified: bool,
    approval: Option<ApprovalView>,
    events: Vec<String>,
    /// Card payments and Direct Debit collections started in ResidencePort.
    online: Vec<String>,
    history: Vec<HistoryRow>,
    credit_sources: Vec<CreditChoice>,
    draft: bool,
    awaiting: bool,
    open: bool,
    can_edit: bool,
    can_submit: bool,
    can_approve: bool,
    can_bypass: bool,
    can_send: bool,
    can_void: bool,
    can_receive: bool,
    can_credit: bool,
    flash: Option<String>,
    problem: Option<String>,
}

pub(super) async fn approval_view(
    tx: &mut TenantTx,
    record_type: &str,
    id: Uuid,
) -> Result<Option<ApprovalView>, WebError> {
    let Some(req) = approvals::request(tx, record_type, id).await? else {
        return Ok(None);
    };
    let waiting: Vec<String> = req
        .waiting_for()
        .iter()
        .map(|s| s.approver_label.clone())
        .collect();
    Ok(Some(ApprovalView {
        chain: req.chain_name.clone(),
        mode: if req.mode == "parallel" {
            "in any order".into()
        } else {
            "in order".into()
        },
        status: match req.status.as_str() {
            "pending" => "Waiting for approval",
            "approved" => "Approved by every step",
            "rejected" => "Sent back",
            "bypassed" => "Bypassed by the Organisation Owner",
            _ => "Withdrawn",
        }
        .into(),
        steps: req
            .steps
            .iter()
            .map(|s| StepView {
                approver: s.approver_label.clone(),
                signed: match (&s.signed_by, s.signed_at) {
                    (Some(by), Some(at)) => format!(
                        "Approved by {by}{} on {}",
                        s.on_behalf_of
                            .as_ref()
                            .map(|o| format!(" for {o}"))
                            .unwrap_or_default(),
                        proplink_domain::dates::uk_long_date(at)
                    ),
                    _ => "Not yet".into(),
                },
            })
            .collect(),
        waiting_for: if req.status == "pending" {
            waiting.join(", ")
        } else {
            String::new()
        },
    }))
}

/// GET /invoices/{id}
pub async fn invoice(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (inv, unit) = invoice_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    let lines = rx::invoice_lines(&mut tx, id).await?;
    let statutory = rx::demand_statutory_text(&mut tx, &inv).await?;
    let approval = approval_view(&mut tx, "debtor_invoice", id).await?;
    let events = rx::invoice_events(&mut tx, id).await?;
    let online = proplink_db::resident::payments_of_invoice(&mut tx, id).await?;
    let history = records::history(&mut tx, "debtor_invoice", id).await?;
    let mut credit_sources = Vec::new();
    if inv.status().is_open_or_settled() && inv.balance_pence() > 0 {
        for r in rx::unit_receipts(&mut tx, inv.unit_id).await? {
            if r.available_pence() > 0 {
                credit_sources.push(CreditChoice {
                    value: format!("receipt:{}", r.id),
                    label: format!(
                        "{} — {} unallocated",
                        r.number,
                        format_pence(r.available_pence())
                    ),
                });
            }
        }
        for n in rx::unit_credit_notes(&mut tx, inv.unit_id).await? {
            if n.available_pence() > 0 {
                credit_sources.push(CreditChoice {
                    value: format!("credit:{}", n.id),
                    label: format!(
                        "{} — {} unused",
                        n.label(),
                        format_pence(n.available_pence())
                    ),
                });
            }
        }
    }
    tx.commit().await?;
    let placement = unit.placement();
    let status = inv.status();
    let (flash, problem) = flash_of(&query);
    let mut facts = vec![
        (
            "Unit".to_owned(),
            format!("{} ({})", unit.name, unit.reference),
        ),
        (
            "Issue date".to_owned(),
            inv.issue_date
                .map(long_date)
                .unwrap_or_else(|| "Not set".into()),
        ),
        (
            "Due date".to_owned(),
            inv.due_date
                .map(long_date)
                .unwrap_or_else(|| "Not set".into()),
        ),
    ];
    if let Some(name) = &inv.landlord_name {
        facts.push((
            "Landlord".to_owned(),
            format!(
                "{name}, {}",
                inv.landlord_address.clone().unwrap_or_default()
            ),
        ));
    }
    if let Some(j) = &inv.jurisdiction {
        facts.push((
            "Law followed".to_owned(),
            if j == "wales" { "Wales" } else { "England" }.to_owned(),
        ));
    }
    if let Some(r) = &inv.returned_reason
        && status == InvoiceStatus::Draft
    {
        facts.push(("Sent back because".to_owned(), r.clone()));
    }
    if let Some(r) = &inv.void_reason {
        facts.push(("Voided because".to_owned(), r.clone()));
    }
    let (statutory_title, statutory_paragraphs, statutory_source, statutory_unverified) =
        match statutory {
            Some((text, filled)) => (
                format!("{} (version {})", text.title, text.version),
                filled
                    .split("\n\n")
                    .map(str::to_owned)
                    .filter(|p| !p.trim().is_empty())
                    .collect(),
                text.source,
                text.verified_on.is_none(),
            ),
            None => (String::new(), Vec::new(), String::new(), false),
        };
    Ok(InvoicePage {
        shell: Shell::new(&member, "/units"),
        inv: invoice_row(&inv),
        contact: inv.contact_name.clone(),
        reference: inv.reference.clone().unwrap_or_default(),
        facts,
        lines: lines
            .iter()
            .map(|l| LineView {
                description: l.description.clone(),
                period: match (l.period_from, l.period_to) {
                    (Some(f), Some(t)) => format!("{} to {}", long_date(f), long_date(t)),
                    (Some(f), None) => format!("from {}", long_date(f)),
                    (None, Some(t)) => format!("to {}", long_date(t)),
                    (None, None) => String::new(),
                },
                account: format!("{} {}", l.account_code, l.account_name),
                fund: l.fund_name.clone(),
                tax: l.tax_rate_name.clone(),
                net: format_pence(l.net_pence),
                vat: format_pence(l.vat_pence),
                gross: format_pence(l.gross_pence),
                paid: format_pence(l.paid_pence),
            })
            .collect(),
        net: format_pence(inv.net_pence),
        vat: format_pence(inv.vat_pence),
        total: format_pence(inv.total_pence),
        paid: format_pence(inv.paid_pence),
        balance: format_pence(inv.balance_pence()),
        statutory_title,
        statutory_paragraphs,
        statutory_source,
        statutory_unverified,
        approval,
        events: events.into_iter().map(|e| e.sentence).collect(),
        online: online
            .iter()
            .map(|p| {
                format!(
                    "{}: {} {} by {} — {}{}{}",
                    proplink_domain::dates::uk_long_date(p.created_at),
                    if p.method == "card" {
                        "card payment of"
                    } else {
                        "Direct Debit of"
                    },
                    format_pence(p.amount_pence),
                    p.payer_name,
                    crate::residence::payment_status_label(&p.status).to_lowercase(),
                    p.failure_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    if p.test_mode { " [test mode]" } else { "" }
                )
            })
            .collect(),
        history,
        credit_sources,
        draft: status == InvoiceStatus::Draft,
        awaiting: status == InvoiceStatus::AwaitingApproval,
        open: matches!(
            status,
            InvoiceStatus::Approved | InvoiceStatus::Sent | InvoiceStatus::PartPaid
        ),
        can_edit: may(&member, "debtor_invoice.update", placement),
        can_submit: may(&member, "debtor_invoice.submit", placement),
        can_approve: may(&member, "debtor_invoice.approve", placement),
        can_bypass: member.is_owner && !member.read_only(),
        can_send: may(&member, "debtor_invoice.send", placement),
        can_void: may(&member, "debtor_invoice.void", placement) && inv.paid_pence == 0,
        can_receive: may(&member, "payment.record", placement),
        can_credit: may(&member, "credit_note.create", placement),
        unit,
        flash,
        problem,
    }
    .into_response())
}

/// POST /invoices/{id}/{action}: submit, approve, reject, bypass, send, void, delete,
/// apply-credit.
pub async fn invoice_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let key = match action.as_str() {
        "submit" => "debtor_invoice.submit",
        "approve" | "reject" => "debtor_invoice.approve",
        "bypass" => "workflow.bypass_approval",
        "send" => "debtor_invoice.send",
        "void" => "debtor_invoice.void",
        "delete" => "debtor_invoice.update",
        "apply-credit" => "payment.record",
        _ => return Err(WebError::NotFound),
    };
    let page = format!("/invoices/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (inv, unit) = invoice_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    check(&member, key, unit.placement())?;
    let who = signer(&mut tx, &member).await?;
    let now = state.now();
    let result: Result<String, LedgerError> = match action.as_str() {
        "submit" => rx::submit_invoice(&mut tx, id, &who, now)
            .await
            .map(|()| "Submitted for approval.".to_owned()),
        "approve" => rx::approve_invoice(&mut tx, id, &who, now)
            .await
            .map(|a| match a {
                Approval::Posted(n) => format!("Approved and posted as {n}."),
                Approval::Waiting(left) => {
                    format!("Your approval is recorded; waiting for {}.", left.join(", "))
                }
            }),
        "reject" => rx::reject_invoice(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|()| "Sent back to draft.".to_owned()),
        "bypass" => rx::bypass_invoice(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|n| format!("Approved past the chain and posted as {n}; the chain's approvers have been told.")),
        "send" => send_invoice(&state, &mut tx, &inv, &unit, &member, now).await,
        "void" => match date(v.get("on"), "date of the void") {
            Ok(on) => rx::void_invoice(&mut tx, id, on, v.get("reason"), &member.name, now)
                .await
                .map(|n| format!("Voided by credit note {n}.")),
            Err(p) => Err(LedgerError::Refused(p)),
        },
        "delete" => rx::delete_invoice_draft(&mut tx, id).await.map(|()| {
            String::new()
        }),
        _ => apply_credit(&mut tx, &inv, &v, &member, now).await,
    };
    match result {
        Ok(done) => {
            tx.commit().await?;
            if action == "delete" {
                return Ok(back_to(
                    &format!("/units/{}/financials", unit.id),
                    "Draft deleted.",
                ));
            }
            Ok(back_to(&page, &done))
        }
        Err(e) => {
            let message = money_error(e)?;
            drop(tx);
            Ok(refused_on(&page, &message))
        }
    }
}

/// Sets a receipt's or credit note's credit against this invoice's open lines (oldest first),
/// or up to an amount.
async fn apply_credit(
    tx: &mut TenantTx,
    inv: &Invoice,
    v: &FormData,
    member: &Member,
    now: time::OffsetDateTime,
) -> Result<String, LedgerError> {
    let source = match v.get("source").split_once(':') {
        Some(("receipt", id)) => Uuid::parse_str(id).ok().map(CreditSource::Receipt),
        Some(("credit", id)) => Uuid::parse_str(id).ok().map(CreditSource::CreditNote),
        _ => None,
    }
    .ok_or_else(|| LedgerError::Refused("Choose the credit to apply.".into()))?;
    // The source must be this unit's (a foreign id is not found).
    let same_unit = match source {
        CreditSource::Receipt(r) => rx::find_receipt(tx, r).await?.map(|r| r.unit_id),
        CreditSource::CreditNote(n) => rx::find_credit_note(tx, n).await?.map(|n| n.unit_id),
    };
    if same_unit != Some(inv.unit_id) {
        return Err(LedgerError::NotFound);
    }
    // This invoice's open lines, oldest first, up to the amount asked (all it owes if blank).
    let wanted = match v.get("amount").trim() {
        "" => inv.balance_pence(),
        t => parse_pounds_to_pence(t)
            .map_err(|e| LedgerError::Refused(format!("The amount: {e}.")))?,
    };
    if wanted <= 0 {
        return Err(LedgerError::Refused(
            "The amount must be more than £0.00.".into(),
        ));
    }
    if wanted > inv.balance_pence() {
        return Err(LedgerError::Refused(format!(
            "{} owes {}: {} is more than that.",
            inv.label(),
            format_pence(inv.balance_pence()),
            format_pence(wanted)
        )));
    }
    let available = match source {
        CreditSource::Receipt(r) => rx::find_receipt(tx, r)
            .await?
            .map_or(0, |r| r.available_pence()),
        CreditSource::CreditNote(n) => rx::find_credit_note(tx, n)
            .await?
            .map_or(0, |n| n.available_pence()),
    };
    let mut left = wanted.min(available);
    let mut chosen = Vec::new();
    for l in rx::open_lines(tx, inv.unit_id).await? {
        if l.invoice_id != inv.id || left == 0 {
            continue;
        }
        let take = left.min(l.outstanding_pence);
        chosen.push((l.id, take));
        left -= take;
    }
    let on = now.date();
    let settled =
        rx::allocate_credit(tx, source, &Allocate::Lines(chosen), on, &member.name, now).await?;
    Ok(format!("{} of credit applied.", format_pence(settled)))
}

/// Marks the invoice sent and e-mails it to the contact (their first address) with its PDF
/// attached and the prescribed text in the message too.
async fn send_invoice(
    state: &AppState,
    tx: &mut TenantTx,
    inv: &Invoice,
    unit: &Unit,
    member: &Member,
    now: time::OffsetDateTime,
) -> Result<String, LedgerError> {
    rx::mark_sent(tx, inv.id, now).await?;
    let scope = proplink_db::portfolio::SiteScope::everything();
    let contact = proplink_db::people::contact(tx, &scope, inv.contact_id).await?;
    let Some(address) = contact
        .as_ref()
        .and_then(|c| c.primary_email())
        .map(str::to_owned)
    else {
        return Ok(format!(
            "Marked as sent. {} has no e-mail address: post it.",
            inv.contact_name
        ));
    };
    let Some(inv) = rx::find_invoice(tx, inv.id).await? else {
        return Err(LedgerError::NotFound);
    };
    let statutory = rx::demand_statutory_text(tx, &inv)
        .await?
        .map(|(t, filled)| format!("\n\n{}\n\n{}\n\n({})", t.title, filled, t.source))
        .unwrap_or_default();
    let body = format!(
        "Dear {name},\n\n{kind} {number} for {unit} is attached below.\n\nAmount due: {total}\nDue date: {due}\n\nLandlord: {landlord}\nAddress for service of notices: {address}{statutory}\n",
        name = inv.contact_name,
        kind = inv.kind().label(),
        number = inv.label(),
        unit = inv.unit_reference,
        total = format_pence(inv.balance_pence()),
        due = inv.due_date.map(long_date).unwrap_or_default(),
        landlord = inv.landlord_name.clone().unwrap_or_default(),
        address = inv.landlord_address.clone().unwrap_or_default(),
    );
    let filename = format!("{}.pdf", inv.label());
    let org_name = member.org.name.clone();
    let pdf = super::money_pdf::stored_or_fresh(
        state,
        tx,
        "debtor_invoice",
        inv.id,
        unit,
        None,
        &filename,
        &member.name,
        async |tx| super::money_pdf::invoice_document(tx, &inv, unit, &org_name).await,
    )
    .await
    .map_err(|e| {
        LedgerError::Refused(format!(
            "The PDF could not be made, so nothing was sent: {e}"
        ))
    })?;
    email::queue_with_attachments(
        tx,
        NewEmail {
            to_address: address.clone(),
            to_name: Some(inv.contact_name.clone()),
            subject: format!("{} {}", inv.kind().label(), inv.label()),
            body_text: body,
            body_html: None,
            category: "demand".into(),
        },
        pdf.attachment.as_slice(),
    )
    .await?;
    Ok(format!("Sent to {address}, with {filename} attached."))
}

// ---------------------------------------------------------------------------------------------
// Receipts

#[derive(Template, WebTemplate)]
#[template(path = "money/receipt_form.html")]
struct ReceiptForm {
    shell: Shell,
    unit: Unit,
    contacts: Vec<Opt>,
    methods: Vec<Opt>,
    banks: Vec<Opt>,
    amount: String,
    received_on: String,
    reference: String,
    open: Vec<OpenRow>,
    oldest_first: bool,
    problem: Option<String>,
}

pub struct OpenRow {
    pub id: Uuid,
    pub label: String,
    pub due: String,
    pub outstanding: String,
    pub typed: String,
}

async fn receipt_form(
    tx: &mut TenantTx,
    member: &Member,
    unit: Unit,
    v: Option<&FormData>,
    problem: Option<String>,
    today: Date,
) -> Result<ReceiptForm, WebError> {
    let get = |k: &str| v.map(|v| v.get(k).to_owned()).unwrap_or_default();
    let contacts = std::iter::once(Opt::new("", "Not recorded", &get("contact")))
        .chain(billable(tx, unit.id, &get("contact")).await?)
        .collect();
    ledger::ensure_books(tx, unit.site_id).await?;
    let banks = ledger::accounts(tx, unit.site_id)
        .await?
        .into_iter()
        .filter(|a| a.control.as_deref() == Some("bank") && a.archived_at.is_none())
        .map(|a| {
            Opt::new(
                a.id.to_string(),
                format!("{} {}", a.code, a.name),
                &get("bank"),
            )
        })
        .collect();
    let open = rx::open_lines(tx, unit.id)
        .await?
        .into_iter()
        .map(|l| OpenRow {
            typed: get(&format!("line_{}", l.id)),
            id: l.id,
            label: format!("{} line {}: {}", l.invoice_number, l.line_no, l.description),
            due: long_date(l.due_date),
            outstanding: format_pence(l.outstanding_pence),
        })
        .collect();
    Ok(ReceiptForm {
        shell: Shell::new(member, "/units"),
        contacts,
        methods: method_opts(&v.map_or_else(
            || "bank_transfer".to_owned(),
            |v| v.get("method").to_owned(),
        )),
        banks,
        amount: get("amount"),
        received_on: v.map_or_else(|| iso(today), |v| v.get("received_on").to_owned()),
        reference: get("reference"),
        open,
        oldest_first: v.is_none_or(|v| v.get("allocation") != "chosen"),
        unit,
        problem,
    })
}

/// GET /units/{id}/receipts/new
pub async fn new_receipt(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "payment.record").await?;
    let form = receipt_form(&mut tx, &member, unit, None, None, state.now().date()).await?;
    tx.commit().await?;
    Ok(form.into_response())
}

/// POST /units/{id}/receipts/new
pub async fn create_receipt(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "payment.record").await?;
    let parsed = (|| -> Result<ReceiptInput, String> {
        let allocate = if v.get("allocation") == "chosen" {
            let mut chosen = Vec::new();
            for (k, val) in v.pairs() {
                if let Some(line) = k.strip_prefix("line_")
                    && !val.trim().is_empty()
                {
                    let line = Uuid::parse_str(line)
                        .map_err(|_| "Choose the invoice lines again.".to_owned())?;
                    chosen.push((line, amount(val, "amount for a chosen line")?));
                }
            }
            Allocate::Lines(chosen)
        } else if v.get("allocation") == "none" {
            Allocate::None
        } else {
            Allocate::OldestFirst
        };
        Ok(ReceiptInput {
            unit_id: id,
            contact_id: match v.get("contact").trim() {
                "" => None,
                c => Some(uuid_of(c, "payer")?),
            },
            received_on: date(v.get("received_on"), "date received")?,
            amount_pence: amount(v.get("amount"), "amount received")?,
            method: PaymentMethod::parse(v.get("method"))
                .ok_or_else(|| "Choose how it was paid.".to_owned())?,
            reference: Some(v.get("reference").to_owned()),
            bank_account_id: match v.get("bank").trim() {
                "" => None,
                b => Some(uuid_of(b, "bank account")?),
            },
            fund_id: None,
            allocate,
            channel: "admin",
            batch_id: None,
        })
    })();
    let result: Result<(Uuid, String), String> = match parsed {
        Ok(input) => match rx::record_receipt(&mut tx, &input, &member.name, state.now()).await {
            Ok(r) => Ok(r),
            Err(e) => Err(money_error(e)?),
        },
        Err(p) => Err(p),
    };
    match result {
        Ok((rid, number)) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/receipts/{rid}"),
                &format!("Recorded as {number}."),
            ))
        }
        Err(problem) => {
            let form = receipt_form(
                &mut tx,
                &member,
                unit,
                Some(&v),
                Some(problem),
                state.now().date(),
            )
            .await?;
            drop(tx);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, form).into_response())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "money/receipt.html")]
struct ReceiptPage {
    shell: Shell,
    unit: Unit,
    number: String,
    id: Uuid,
    sentence: String,
    facts: Vec<(String, String)>,
    allocations: Vec<(Uuid, String, String, String)>,
    available: String,
    has_available: bool,
    reversed: bool,
    methods: Vec<Opt>,
    today: String,
    history: Vec<HistoryRow>,
    can_record: bool,
    can_reverse: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /receipts/{id}
pub async fn receipt(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let r = rx::find_receipt(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, r.unit_id, "payment.read").await?;
    let allocations = rx::receipt_allocations(&mut tx, id).await?;
    let history = records::history(&mut tx, "receipt", id).await?;
    tx.commit().await?;
    let placement = unit.placement();
    let (flash, problem) = flash_of(&query);
    let reversed = r.status == "reversed";
    let mut facts = vec![
        (
            "Unit".to_owned(),
            format!("{} ({})", unit.name, unit.reference),
        ),
        ("Method".to_owned(), r.method().label().to_owned()),
        (
            "Reference".to_owned(),
            r.reference.clone().unwrap_or_else(|| "None".into()),
        ),
        ("Recorded by".to_owned(), r.recorded_by.clone()),
    ];
    if reversed {
        facts.push((
            "Reversed".to_owned(),
            format!(
                "{}{}",
                r.reversed_on.map(long_date).unwrap_or_default(),
                r.reversal_reason
                    .as_ref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(ReceiptPage {
        shell: Shell::new(&member, "/units"),
        number: r.number.clone(),
        id,
        sentence: format!(
            "{} paid {} {} on {}.",
            r.contact_name.clone().unwrap_or_else(|| "The payer".into()),
            format_pence(r.amount_pence),
            r.method().phrase(),
            long_date(r.received_on)
        ),
        facts,
        allocations: allocations
            .into_iter()
            .map(|(iid, number, amount, on)| (iid, number, format_pence(amount), long_date(on)))
            .collect(),
        available: format_pence(r.available_pence()),
        has_available: r.available_pence() > 0,
        reversed,
        methods: method_opts("bank_transfer"),
        today: iso(state.now().date()),
        history,
        can_record: may(&member, "payment.record", placement),
        can_reverse: may(&member, "payment.reverse", placement) && !reversed,
        unit,
        flash,
        problem,
    }
    .into_response())
}

/// POST /receipts/{id}/{action}: allocate, refund, reverse.
pub async fn receipt_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let key = match action.as_str() {
        "allocate" | "refund" => "payment.record",
        "reverse" => "payment.reverse",
        _ => return Err(WebError::NotFound),
    };
    let v = FormData::parse(&body);
    let page = format!("/receipts/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let r = rx::find_receipt(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, r.unit_id, "payment.read").await?;
    check(&member, key, unit.placement())?;
    let now = state.now();
    let result: Result<String, LedgerError> = match action.as_str() {
        "allocate" => rx::allocate_credit(
            &mut tx,
            CreditSource::Receipt(id),
            &Allocate::OldestFirst,
            now.date(),
            &member.name,
            now,
        )
        .await
        .map(|p| {
            format!(
                "{} set against open invoices, oldest first.",
                format_pence(p)
            )
        }),
        "refund" => refund_from(&mut tx, CreditSource::Receipt(id), &v, &member, now).await,
        _ => match date(v.get("on"), "date of the reversal") {
            Ok(on) => rx::reverse_receipt(&mut tx, id, on, v.get("reason"), &member.name, now)
                .await
                .map(|()| "Reversed: what it paid is owed again.".to_owned()),
            Err(p) => Err(LedgerError::Refused(p)),
        },
    };
    finish(tx, result, &page).await
}

/// Commits and goes back to the page with what was done, or drops the transaction and shows
/// the refusal there.
pub(super) async fn finish(tx: TenantTx, result: Result<String, LedgerError>, page: &str) -> Page {
    match result {
        Ok(done) => {
            tx.commit().await?;
            Ok(back_to(page, &done))
        }
        Err(e) => {
            let message = money_error(e)?;
            drop(tx);
            Ok(refused_on(page, &message))
        }
    }
}

async fn refund_from(
    tx: &mut TenantTx,
    source: CreditSource,
    v: &FormData,
    member: &Member,
    now: time::OffsetDateTime,
) -> Result<String, LedgerError> {
    let parsed = (|| -> Result<RefundInput, String> {
        Ok(RefundInput {
            source,
            amount_pence: amount(v.get("amount"), "refund")?,
            refunded_on: date(v.get("on"), "date of the refund")?,
            method: PaymentMethod::parse(v.get("method"))
                .ok_or_else(|| "Choose how it is paid back.".to_owned())?,
            reference: Some(v.get("reference").to_owned()),
            bank_account_id: None,
        })
    })()
    .map_err(LedgerError::Refused)?;
    let number = rx::refund(tx, &parsed, &member.name, now).await?;
    Ok(format!(
        "Refund {number} of {} recorded.",
        format_pence(parsed.amount_pence)
    ))
}

// ---------------------------------------------------------------------------------------------
// Credit notes

#[derive(Template, WebTemplate)]
#[template(path = "money/credit_form.html")]
struct CreditForm {
    shell: Shell,
    unit: Unit,
    contacts: Vec<Opt>,
    invoices: Vec<Opt>,
    reason: String,
    issue_date: String,
    rows: Vec<LineRow>,
    choices: LineChoices,
    problem: Option<String>,
}

async fn credit_invoice_opts(
    tx: &mut TenantTx,
    unit: Uuid,
    chosen: &str,
) -> Result<Vec<Opt>, WebError> {
    Ok(
        std::iter::once(Opt::new("", "None: credit on account", chosen))
            .chain(
                rx::unit_invoices(tx, unit)
                    .await?
                    .into_iter()
                    .filter(|i| i.status().is_open_or_settled())
                    .map(|i| {
                        Opt::new(
                            i.id.to_string(),
                            format!(
                                "{} ({} owed of {})",
                                i.label(),
                                format_pence(i.balance_pence()),
                                format_pence(i.total_pence)
                            ),
                            chosen,
                        )
                    }),
            )
            .collect(),
    )
}

/// GET /units/{id}/credit-notes/new (?invoice= to correct one: its lines are offered)
pub async fn new_credit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "credit_note.create").await?;
    let choices = line_choices(&mut tx, unit.site_id).await?;
    let invoice = Uuid::parse_str(query.get("invoice")).ok();
    let mut rows = Vec::new();
    let mut contact = String::new();
    if let Some(inv) = invoice
        && let Some(found) = rx::find_invoice(&mut tx, inv).await?
        && found.unit_id == id
    {
        contact = found.contact_id.to_string();
        for (i, l) in rx::invoice_lines(&mut tx, inv).await?.iter().enumerate() {
            rows.push(LineRow {
                n: i + 1,
                description: l.description.clone(),
                account: l.account_id.to_string(),
                fund: l.fund_id.to_string(),
                tax: l.tax_rate_id.to_string(),
                amount: pounds(l.net_pence),
                from: String::new(),
                to: String::new(),
            });
        }
    }
    rows.extend(blank_rows(rows.len() + 1));
    let contacts = billable(&mut tx, id, &contact).await?;
    let invoices = credit_invoice_opts(
        &mut tx,
        id,
        &invoice.map(|i| i.to_string()).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(CreditForm {
        shell: Shell::new(&member, "/units"),
        contacts,
        invoices,
        reason: String::new(),
        issue_date: iso(state.now().date()),
        rows,
        choices,
        unit,
        problem: None,
    }
    .into_response())
}

/// POST /units/{id}/credit-notes/new
pub async fn create_credit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "credit_note.create").await?;
    let (rows, lines) = read_rows(&v);
    let parsed = (|| -> Result<CreditInput, String> {
        Ok(CreditInput {
            unit_id: id,
            contact_id: uuid_of(v.get("contact"), "leaseholder credited")?,
            invoice_id: match v.get("invoice").trim() {
                "" => None,
                i => Some(uuid_of(i, "invoice")?),
            },
            reason: v.get("reason").to_owned(),
            issue_date: opt_date(v.get("issue_date"), "issue date")?,
            lines: lines.clone()?,
        })
    })();
    let result = match parsed {
        Ok(input) => match rx::save_credit_draft(&mut tx, None, &input, &member.name).await {
            Ok(cid) => Ok(cid),
            Err(e) => Err(money_error(e)?),
        },
        Err(p) => Err(p),
    };
    match result {
        Ok(cid) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("/credit-notes/{cid}"),
                "Draft credit note saved.",
            ))
        }
        Err(problem) => {
            let choices = line_choices(&mut tx, unit.site_id).await?;
            let contacts = billable(&mut tx, id, v.get("contact")).await?;
            let invoices = credit_invoice_opts(&mut tx, id, v.get("invoice")).await?;
            drop(tx);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                CreditForm {
                    shell: Shell::new(&member, "/units"),
                    contacts,
                    invoices,
                    reason: v.get("reason").to_owned(),
                    issue_date: v.get("issue_date").to_owned(),
                    rows,
                    choices,
                    unit,
                    problem: Some(problem),
                },
            )
                .into_response())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "money/credit.html")]
struct CreditPage {
    shell: Shell,
    unit: Unit,
    id: Uuid,
    label: String,
    status: String,
    facts: Vec<(String, String)>,
    lines: Vec<LineView>,
    total: String,
    available: String,
    has_available: bool,
    allocations: Vec<(Uuid, String, String, String)>,
    approval: Option<ApprovalView>,
    methods: Vec<Opt>,
    today: String,
    history: Vec<HistoryRow>,
    draft: bool,
    awaiting: bool,
    can_submit: bool,
    can_approve: bool,
    can_record: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /credit-notes/{id}
pub async fn credit(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let n = rx::find_credit_note(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, n.unit_id, "credit_note.read").await?;
    let lines = rx::credit_lines(&mut tx, id).await?;
    let allocations = rx::credit_allocations(&mut tx, id).await?;
    let approval = approval_view(&mut tx, "credit_note", id).await?;
    let history = records::history(&mut tx, "credit_note", id).await?;
    tx.commit().await?;
    let placement = unit.placement();
    let (flash, problem) = flash_of(&query);
    let mut facts = vec![
        (
            "Unit".to_owned(),
            format!("{} ({})", unit.name, unit.reference),
        ),
        ("Credited to".to_owned(), n.contact_name.clone()),
        ("Reason".to_owned(), n.reason.clone()),
        (
            "Issue date".to_owned(),
            n.issue_date
                .map(long_date)
                .unwrap_or_else(|| "Not set".into()),
        ),
    ];
    if let Some(i) = &n.invoice_number {
        facts.push(("Corrects".to_owned(), i.clone()));
    }
    Ok(CreditPage {
        shell: Shell::new(&member, "/units"),
        id,
        label: n.label(),
        status: status_words(&n.status).to_owned(),
        facts,
        lines: lines
            .iter()
            .map(|l| LineView {
                description: l.description.clone(),
                period: String::new(),
                account: format!("{} {}", l.account_code, l.account_name),
                fund: l.fund_name.clone(),
                tax: String::new(),
                net: format_pence(l.net_pence),
                vat: format_pence(l.vat_pence),
                gross: format_pence(l.gross_pence),
                paid: format_pence(l.allocated_pence),
            })
            .collect(),
        total: format_pence(n.total_pence),
        available: format_pence(n.available_pence()),
        has_available: n.available_pence() > 0,
        allocations: allocations
            .into_iter()
            .map(|(iid, number, amount, on)| (iid, number, format_pence(amount), long_date(on)))
            .collect(),
        approval,
        methods: method_opts("bank_transfer"),
        today: iso(state.now().date()),
        history,
        draft: n.status == "draft",
        awaiting: n.status == "awaiting_approval",
        can_submit: may(&member, "credit_note.create", placement),
        can_approve: may(&member, "credit_note.approve", placement),
        can_record: may(&member, "payment.record", placement),
        unit,
        flash,
        problem,
    }
    .into_response())
}

/// POST /credit-notes/{id}/{action}: submit, approve, apply, refund.
pub async fn credit_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let key = match action.as_str() {
        "submit" => "credit_note.create",
        "approve" => "credit_note.approve",
        "apply" | "refund" => "payment.record",
        _ => return Err(WebError::NotFound),
    };
    let v = FormData::parse(&body);
    let page = format!("/credit-notes/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let n = rx::find_credit_note(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let unit = unit_for(&mut tx, &member, n.unit_id, "credit_note.read").await?;
    check(&member, key, unit.placement())?;
    let who = signer(&mut tx, &member).await?;
    let now = state.now();
    let result: Result<String, LedgerError> = match action.as_str() {
        "submit" => rx::submit_credit_note(&mut tx, id, &who, now)
            .await
            .map(|()| "Submitted for approval.".to_owned()),
        "approve" => rx::approve_credit_note(&mut tx, id, &who, now)
            .await
            .map(|a| match a {
                Approval::Posted(n) => format!("Approved and posted as {n}."),
                Approval::Waiting(left) => {
                    format!(
                        "Your approval is recorded; waiting for {}.",
                        left.join(", ")
                    )
                }
            }),
        "apply" => rx::allocate_credit(
            &mut tx,
            CreditSource::CreditNote(id),
            &Allocate::OldestFirst,
            now.date(),
            &member.name,
            now,
        )
        .await
        .map(|p| {
            format!(
                "{} set against open invoices, oldest first.",
                format_pence(p)
            )
        }),
        _ => refund_from(&mut tx, CreditSource::CreditNote(id), &v, &member, now).await,
    };
    finish(tx, result, &page).await
}

// ---------------------------------------------------------------------------------------------
// Statement

pub struct StatementLine {
    pub date: String,
    pub description: String,
    pub debit: String,
    pub credit: String,
    pub balance: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/statement.html")]
struct StatementPage {
    shell: Shell,
    unit: Unit,
    from: String,
    to: String,
    period: String,
    opening: String,
    rows: Vec<StatementLine>,
    charges: String,
    payments: String,
    closing: String,
    overdue: String,
    problem: Option<String>,
}

/// The statement's dates from the query: from 1 January this year to today unless given.
fn statement_range(query: &FormData, today: Date) -> Result<(Date, Date), String> {
    let from = opt_date(query.get("from"), "start date")?.unwrap_or_else(|| {
        Date::from_calendar_date(today.year(), time::Month::January, 1).unwrap_or(today)
    });
    let to = opt_date(query.get("to"), "end date")?.unwrap_or(today);
    if to < from {
        return Err("The statement ends before it starts.".into());
    }
    Ok((from, to))
}

/// GET /units/{id}/statement?from=&to= (and &format=csv)
pub async fn statement(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let unit = unit_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    let (from, to, problem) = match statement_range(&query, today) {
        Ok((f, t)) => (f, t, None),
        Err(p) => (
            Date::from_calendar_date(today.year(), time::Month::January, 1).unwrap_or(today),
            today,
            Some(p),
        ),
    };
    let st = rx::statement(&mut tx, id, from, to)
        .await
        .map_err(db_only)?;
    tx.commit().await?;
    let money = |p: i64| {
        if p == 0 {
            String::new()
        } else {
            format_pence(p)
        }
    };
    if query.get("format") == "csv" {
        let mut rows = vec![vec![
            iso(from),
            "Opening balance".to_owned(),
            String::new(),
            String::new(),
            pounds_signed(st.opening_pence),
        ]];
        rows.extend(st.rows.iter().map(|r| {
            vec![
                iso(r.date),
                r.description.clone(),
                if r.amount_pence > 0 {
                    pounds(r.amount_pence)
                } else {
                    String::new()
                },
                if r.amount_pence < 0 {
                    pounds(-r.amount_pence)
                } else {
                    String::new()
                },
                pounds_signed(r.balance_pence),
            ]
        }));
        rows.push(vec![
            iso(to),
            "Closing balance".to_owned(),
            String::new(),
            String::new(),
            pounds_signed(st.closing_pence),
        ]);
        return records::csv_download(
            &format!("statement-{}", unit.reference.to_lowercase()),
            member.org.slug.as_str(),
            state.now(),
            &[
                "Date",
                "Description",
                "Charge",
                "Payment or credit",
                "Balance",
            ],
            rows,
        );
    }
    Ok(StatementPage {
        shell: Shell::new(&member, "/units"),
        from: iso(from),
        to: iso(to),
        period: format!("{} to {}", long_date(from), long_date(to)),
        opening: balance_words(st.opening_pence),
        rows: st
            .rows
            .iter()
            .map(|r| StatementLine {
                date: long_date(r.date),
                description: r.description.clone(),
                debit: money(r.amount_pence.max(0)),
                credit: money((-r.amount_pence).max(0)),
                balance: format_pence(r.balance_pence),
            })
            .collect(),
        charges: format_pence(st.charges_pence()),
        payments: format_pence(st.payments_pence()),
        closing: balance_words(st.closing_pence),
        overdue: format_pence(st.overdue_pence),
        unit,
        problem,
    }
    .into_response())
}

/// "-12.00" or "450.00" for CSVs.
pub(super) fn pounds_signed(pence: i64) -> String {
    if pence < 0 {
        format!("-{}", pounds(-pence))
    } else {
        pounds(pence)
    }
}
