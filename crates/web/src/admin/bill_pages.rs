//! Supplier bills in the admin app (issue 7; docs-spec §2.6 "Creditor invoices (bills)"):
//! Site → Financials → New bill; a bill's page with its lines, the work order it is coded to
//! beside its approved quotation, warnings of a possible duplicate, its approval and history;
//! submit, approve, send back, hold, release, void and delete, each by its permission.

use super::form::FormData;
use super::money::{
    self, ApprovalView, LineChoices, amount, approval_view, finish, iso, line_choices, money_error,
    opt_date, signer, uuid_of, writable,
};
use super::operations::{back_to, flash_of, query_of};
use super::records::{self, HistoryRow, Opt, may, parse_id};
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
use proplink_db::bills::{self, Bill, BillInput, BillLineInput, BillStatus};
use proplink_db::ledger::LedgerError;
use proplink_db::people;
use proplink_db::portfolio::Showing;
use proplink_db::portfolio::Site;
use proplink_db::receivables::Approval;
use proplink_domain::dates::long_date;
use proplink_domain::uk::format_pence;
use uuid::Uuid;

type Page = Result<Response, WebError>;

/// How many line rows the form offers.
const ROWS: usize = 6;

#[derive(Default, Clone)]
pub struct BillRow {
    pub n: usize,
    pub description: String,
    pub account: String,
    pub fund: String,
    pub tax: String,
    pub net: String,
    pub vat: String,
    pub recoverable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/bill_form.html")]
struct BillForm {
    shell: Shell,
    site: Site,
    vendors: Vec<Opt>,
    work_orders: Vec<Opt>,
    supplier_reference: String,
    issue_date: String,
    due_date: String,
    incurred_on: String,
    description: String,
    total: String,
    rows: Vec<BillRow>,
    choices: LineChoices,
    problem: Option<String>,
}

async fn choices(
    tx: &mut TenantTx,
    site: Uuid,
    vendor: &str,
    work_order: &str,
) -> Result<(Vec<Opt>, Vec<Opt>, LineChoices), WebError> {
    let vendors = std::iter::once(Opt::new("", "Choose…", vendor))
        .chain(
            people::list_vendors(tx, Showing::Live, "")
                .await?
                .into_iter()
                .map(|v| {
                    Opt::new(
                        v.id.to_string(),
                        format!("{} ({})", v.name, v.trade),
                        vendor,
                    )
                }),
        )
        .collect();
    let work_orders = std::iter::once(Opt::new("", "Not for a work order", work_order))
        .chain(
            bills::work_order_choices(tx, site)
                .await?
                .into_iter()
                .map(|(id, label)| Opt::new(id.to_string(), label, work_order)),
        )
        .collect();
    Ok((vendors, work_orders, line_choices(tx, site).await?))
}

/// GET /sites/{id}/bills/new
pub async fn new_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "bill.create").await?;
    let (vendors, work_orders, choices) =
        choices(&mut tx, id, query.get("vendor"), query.get("work_order")).await?;
    tx.commit().await?;
    Ok(BillForm {
        shell: Shell::new(&member, "/sites"),
        site,
        vendors,
        work_orders,
        supplier_reference: String::new(),
        issue_date: iso(state.now().date()),
        due_date: String::new(),
        incurred_on: String::new(),
        description: String::new(),
        total: String::new(),
        rows: (1..=ROWS)
            .map(|n| BillRow {
                n,
                ..BillRow::default()
            })
            .collect(),
        choices,
        problem: None,
    }
    .into_response())
}

/// The rows as typed, and the lines they make (blank rows skipped).
fn read_rows(v: &FormData) -> (Vec<BillRow>, Result<Vec<BillLineInput>, String>) {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut problem = None;
    for n in 1..=ROWS {
        let get = |k: &str| v.get(&format!("{k}_{n}")).to_owned();
        let row = BillRow {
            n,
            description: get("description"),
            account: get("account"),
            fund: get("fund"),
            tax: get("tax"),
            net: get("net"),
            vat: get("vat"),
            recoverable: get("recoverable") == "yes",
        };
        let blank = row.description.trim().is_empty() && row.net.trim().is_empty();
        if !blank && problem.is_none() {
            let parsed = (|| -> Result<BillLineInput, String> {
                Ok(BillLineInput {
                    description: row.description.clone(),
                    account_id: uuid_of(&row.account, &format!("account of line {n}"))?,
                    fund_id: uuid_of(&row.fund, &format!("fund of line {n}"))?,
                    tax_rate_id: uuid_of(&row.tax, &format!("tax rate of line {n}"))?,
                    net_pence: amount(&row.net, &format!("net amount of line {n}"))?,
                    vat_pence: match row.vat.trim() {
                        "" => None,
                        t => Some(amount(t, &format!("VAT of line {n}"))?),
                    },
                    vat_recoverable: row.recoverable,
                })
            })();
            match parsed {
                Ok(l) => lines.push(l),
                Err(p) => problem = Some(p),
            }
        }
        rows.push(row);
    }
    let lines = match problem {
        Some(p) => Err(p),
        None if lines.is_empty() => Err("Add at least one line.".into()),
        None => Ok(lines),
    };
    (rows, lines)
}

fn bill_input(site: Uuid, v: &FormData, lines: Vec<BillLineInput>) -> Result<BillInput, String> {
    Ok(BillInput {
        site_id: site,
        vendor_id: uuid_of(v.get("vendor"), "supplier")?,
        work_order_id: match v.get("work_order").trim() {
            "" => None,
            w => Some(uuid_of(w, "work order")?),
        },
        supplier_reference: v.get("supplier_reference").to_owned(),
        issue_date: money::date(v.get("issue_date"), "invoice date")?,
        due_date: opt_date(v.get("due_date"), "due date")?,
        incurred_on: opt_date(v.get("incurred_on"), "date the cost was incurred")?,
        description: Some(v.get("description").to_owned()),
        lines,
        total_pence: match v.get("total").trim() {
            "" => None,
            t => Some(amount(t, "invoice total")?),
        },
        source: "admin",
        document: None,
    })
}

/// POST /sites/{id}/bills/new: the draft saved, or the form back with what was typed.
pub async fn create_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "bill.create").await?;
    let (rows, lines) = read_rows(&v);
    let who = signer(&mut tx, &member).await?;
    let outcome: Result<Uuid, String> = match lines.and_then(|l| bill_input(id, &v, l)) {
        Ok(input) => match bills::save_draft(&mut tx, None, &input, &who).await {
            Ok(b) => Ok(b),
            Err(e) => Err(money_error(e)?),
        },
        Err(p) => Err(p),
    };
    match outcome {
        Ok(b) => {
            tx.commit().await?;
            Ok(back_to(&format!("/bills/{b}"), "Draft bill saved."))
        }
        Err(problem) => {
            drop(tx);
            let mut tx = state.db().begin(&member.ctx()).await?;
            let (vendors, work_orders, choices) =
                choices(&mut tx, id, v.get("vendor"), v.get("work_order")).await?;
            tx.commit().await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                BillForm {
                    shell: Shell::new(&member, "/sites"),
                    site,
                    vendors,
                    work_orders,
                    supplier_reference: v.get("supplier_reference").to_owned(),
                    issue_date: v.get("issue_date").to_owned(),
                    due_date: v.get("due_date").to_owned(),
                    incurred_on: v.get("incurred_on").to_owned(),
                    description: v.get("description").to_owned(),
                    total: v.get("total").to_owned(),
                    rows,
                    choices,
                    problem: Some(problem),
                },
            )
                .into_response())
        }
    }
}

pub struct LineView {
    pub description: String,
    pub account: String,
    pub fund: String,
    pub tax: String,
    pub net: String,
    pub vat: String,
    pub recoverable: bool,
}

/// The work order a bill is coded to, beside its approved quotation.
pub struct JobView {
    pub id: Uuid,
    pub reference: String,
    pub quoted: String,
    pub difference: String,
    /// The bill is more than the quotation.
    pub over: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/bill.html")]
struct BillPage {
    shell: Shell,
    id: Uuid,
    heading: String,
    status: String,
    status_class: &'static str,
    facts: Vec<(String, String)>,
    lines: Vec<LineView>,
    job: Option<JobView>,
    warnings: Vec<String>,
    approval: Option<ApprovalView>,
    history: Vec<HistoryRow>,
    site: Site,
    can_submit: bool,
    can_approve: bool,
    can_bypass: bool,
    can_hold: bool,
    can_release: bool,
    can_void: bool,
    can_delete: bool,
    today: String,
    flash: Option<String>,
    problem: Option<String>,
}

async fn bill_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<(Bill, Site), WebError> {
    let bill = bills::find(tx, id).await?.ok_or(WebError::NotFound)?;
    let site = site_for(tx, member, bill.site_id, key).await?;
    Ok((bill, site))
}

fn status_class(status: BillStatus) -> &'static str {
    match status {
        BillStatus::Draft | BillStatus::Voided => "pl-status-grey",
        BillStatus::AwaitingApproval | BillStatus::Held => "pl-status-amber",
        BillStatus::Approved | BillStatus::Scheduled => "pl-status-blue",
        BillStatus::Paid => "pl-status-green",
    }
}

/// GET /bills/{id}
pub async fn bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, site) = bill_for(&mut tx, &member, id, "bill.read").await?;
    let lines = bills::lines(&mut tx, id).await?;
    let warnings = if b.status() == BillStatus::Voided {
        Vec::new()
    } else {
        bills::duplicate_warnings(&mut tx, &b).await?
    };
    let approval = approval_view(&mut tx, "bill", id).await?;
    let history = records::history(&mut tx, "bill", id).await?;
    let job = match (b.work_order_id, &b.work_order_reference) {
        (Some(wo), Some(reference)) => {
            let quoted = proplink_db::operations::quotations(&mut tx, wo)
                .await?
                .into_iter()
                .find(|q| q.status == "approved")
                .map(|q| q.gross_pence());
            Some(match quoted {
                Some(q) => {
                    let diff = b.total_pence - q;
                    JobView {
                        id: wo,
                        reference: reference.clone(),
                        quoted: format_pence(q),
                        difference: match diff {
                            0 => "matches the quotation".into(),
                            d if d > 0 => format!("{} more than quoted", format_pence(d)),
                            d => format!("{} less than quoted", format_pence(-d)),
                        },
                        over: diff > 0,
                    }
                }
                None => JobView {
                    id: wo,
                    reference: reference.clone(),
                    quoted: "No approved quotation".into(),
                    difference: String::new(),
                    over: false,
                },
            })
        }
        _ => None,
    };
    tx.commit().await?;
    let status = b.status();
    let placement = site.placement();
    let can = |key: &str| may(&member, key, placement);
    let (flash, problem) = flash_of(&query);
    let mut facts = vec![
        ("Supplier".to_owned(), b.vendor_name.clone()),
        (
            "Supplier's invoice".to_owned(),
            b.supplier_reference.clone(),
        ),
        ("Invoice date".to_owned(), long_date(b.issue_date)),
        ("Due".to_owned(), long_date(b.due_date)),
    ];
    if let Some(d) = b.incurred_on {
        facts.push(("Cost incurred".into(), long_date(d)));
    }
    if let Some(d) = &b.description {
        facts.push(("Description".into(), d.clone()));
    }
    facts.push((
        "Total".into(),
        format!(
            "{} (net {} + VAT {})",
            format_pence(b.total_pence),
            format_pence(b.net_pence),
            format_pence(b.vat_pence)
        ),
    ));
    if b.paid_pence > 0 {
        facts.push(("Paid".into(), format_pence(b.paid_pence)));
    }
    facts.push(("Entered by".into(), b.created_by.clone()));
    if let Some(s) = &b.submitted_by {
        facts.push(("Submitted by".into(), s.clone()));
    }
    if let Some(a) = &b.approved_by {
        facts.push(("Approved by".into(), a.clone()));
    }
    for (label, value) in [
        ("Sent back because", &b.returned_reason),
        ("On hold because", &b.hold_reason),
        ("Voided because", &b.void_reason),
    ] {
        if let Some(v) = value
            && (label != "On hold because" || status == BillStatus::Held)
        {
            facts.push((label.into(), v.clone()));
        }
    }
    let writable = !member.read_only();
    Ok(BillPage {
        shell: Shell::new(&member, "/sites"),
        id,
        heading: b.label(),
        status: status.label().into(),
        status_class: status_class(status),
        facts,
        lines: lines
            .iter()
            .map(|l| LineView {
                description: l.description.clone(),
                account: l.account_label.clone(),
                fund: l.fund_name.clone(),
                tax: l.tax_rate_name.clone(),
                net: format_pence(l.net_pence),
                vat: format_pence(l.vat_pence),
                recoverable: l.vat_recoverable,
            })
            .collect(),
        job,
        warnings,
        approval,
        history,
        can_submit: writable && status == BillStatus::Draft && can("bill.create"),
        can_approve: writable && status == BillStatus::AwaitingApproval && can("bill.approve"),
        can_bypass: writable && status == BillStatus::AwaitingApproval && member.is_owner,
        can_hold: writable
            && matches!(status, BillStatus::Approved | BillStatus::Scheduled)
            && can("bill.hold"),
        can_release: writable && status == BillStatus::Held && can("bill.hold"),
        can_void: writable
            && !matches!(
                status,
                BillStatus::Voided | BillStatus::Paid | BillStatus::Scheduled
            )
            && can("bill.void"),
        can_delete: writable && status == BillStatus::Draft && can("bill.create"),
        today: iso(state.now().date()),
        site,
        flash,
        problem,
    }
    .into_response())
}

/// POST /bills/{id}/{action}
pub async fn bill_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let key = match action.as_str() {
        "submit" | "delete" => "bill.create",
        "approve" | "reject" => "bill.approve",
        "bypass" => "bill.approve",
        "hold" | "release" => "bill.hold",
        "void" => "bill.void",
        _ => return Err(WebError::NotFound),
    };
    if action == "bypass" && !member.is_owner {
        return Err(WebError::Forbidden);
    }
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, site) = bill_for(&mut tx, &member, id, key).await?;
    let page = format!("/bills/{id}");
    let now = state.now();
    let who = signer(&mut tx, &member).await?;
    let result: Result<String, LedgerError> = match action.as_str() {
        "submit" => bills::submit(&mut tx, id, &who, now)
            .await
            .map(|()| "Submitted for approval.".to_owned()),
        "approve" => bills::approve(&mut tx, id, &who, now)
            .await
            .map(|a| match a {
                Approval::Posted(n) => format!("Approved and posted as {n}."),
                Approval::Waiting(left) => {
                    format!("Signed. Still waiting for {}.", left.join(", "))
                }
            }),
        "bypass" => bills::bypass(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|n| {
                format!("Approved past its chain and posted as {n}; the approvers have been told.")
            }),
        "reject" => bills::reject(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|()| "Sent back to draft.".to_owned()),
        "hold" => bills::hold(&mut tx, id, v.get("reason"))
            .await
            .map(|()| "On hold: it will not be paid until released.".to_owned()),
        "release" => bills::release(&mut tx, id)
            .await
            .map(|()| "Released.".to_owned()),
        "void" => {
            let on = opt_date(v.get("on"), "date of the reversal")
                .ok()
                .flatten()
                .unwrap_or(now.date());
            bills::void(&mut tx, id, v.get("reason"), on, &member.name, now)
                .await
                .map(|()| {
                    if b.journal_id.is_some() {
                        "Voided; its posting has been reversed.".to_owned()
                    } else {
                        "Voided.".to_owned()
                    }
                })
        }
        "delete" => {
            let back = format!("/sites/{}/financials", site.id);
            return match bills::delete_draft(&mut tx, id).await {
                Ok(()) => {
                    tx.commit().await?;
                    Ok(back_to(&back, "Draft bill deleted."))
                }
                Err(e) => finish(tx, Err(e), &page).await,
            };
        }
        _ => return Err(WebError::NotFound),
    };
    finish(tx, result, &page).await
}
