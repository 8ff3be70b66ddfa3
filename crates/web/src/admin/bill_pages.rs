//! Supplier bills in the admin app (issue 7; docs-spec §2.6 "Creditor invoices (bills)"):
//! Site → Financials → New bill, optionally with the supplier's invoice file (PDF, JPEG or
//! PNG, typed by its content); a draft's edit page (how a bill sent back by its approver is
//! corrected); a bill's page with its lines, the work order it is coded to beside its
//! approved quotation, warnings of a possible duplicate, the supplier's invoice to download,
//! its approval and history; submit, approve, send back, hold, release, void and delete, each
//! by its permission.

use super::form::FormData;
use super::money::{
    self, ApprovalView, LineChoices, amount, approval_view, finish, iso, line_choices, money_error,
    opt_date, signer, uuid_of, writable,
};
use super::operations::{back_to, flash_of, query_of, refused_on};
use super::records::{self, HistoryRow, Opt, may, parse_id};
use super::site_money::site_for;
use super::{Member, Shell};
use crate::error::WebError;
use crate::state::AppState;
use crate::uploads::{self, Posted};
use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
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
    /// Where the form posts, its heading, and where "cancel" leads.
    action: String,
    heading: String,
    back: String,
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
    /// The supplier's invoice already on a draft being edited (a new file replaces it).
    document: Option<String>,
    /// Why an approver sent the draft back.
    returned_reason: Option<String>,
    problem: Option<String>,
}

/// The header fields as typed (or as stored, for an edit).
#[derive(Default)]
struct Header {
    vendor: String,
    work_order: String,
    supplier_reference: String,
    issue_date: String,
    due_date: String,
    incurred_on: String,
    description: String,
    total: String,
}

impl Header {
    fn typed(v: &FormData) -> Self {
        let get = |k: &str| v.get(k).to_owned();
        Self {
            vendor: get("vendor"),
            work_order: get("work_order"),
            supplier_reference: get("supplier_reference"),
            issue_date: get("issue_date"),
            due_date: get("due_date"),
            incurred_on: get("incurred_on"),
            description: get("description"),
            total: get("total"),
        }
    }

    fn stored(b: &Bill) -> Self {
        Self {
            vendor: b.vendor_id.to_string(),
            work_order: b.work_order_id.map(|w| w.to_string()).unwrap_or_default(),
            supplier_reference: b.supplier_reference.clone(),
            issue_date: iso(b.issue_date),
            due_date: iso(b.due_date),
            incurred_on: b.incurred_on.map(iso).unwrap_or_default(),
            description: b.description.clone().unwrap_or_default(),
            total: pounds(b.total_pence),
        }
    }
}

/// How a draft being entered or edited is drawn: its addresses and what it already has.
struct FormKind {
    action: String,
    heading: String,
    back: String,
    document: Option<String>,
    returned_reason: Option<String>,
}

impl FormKind {
    fn new_bill(site: Uuid) -> Self {
        Self {
            action: format!("/sites/{site}/bills/new"),
            heading: "New bill".into(),
            back: format!("/sites/{site}/financials"),
            document: None,
            returned_reason: None,
        }
    }

    fn edit(b: &Bill) -> Self {
        Self {
            action: format!("/bills/{}/edit", b.id),
            heading: format!("Edit draft bill {}", b.label()),
            back: format!("/bills/{}", b.id),
            document: b.document_name.clone(),
            returned_reason: b.returned_reason.clone(),
        }
    }
}

/// "375.00": pence as the form's amount fields take them.
fn pounds(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", (pence / 100).abs(), (pence % 100).abs())
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

/// Draws the form (in its own transaction, for the choices).
async fn draw_form(
    state: &AppState,
    member: &Member,
    site: Site,
    kind: FormKind,
    header: Header,
    rows: Vec<BillRow>,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (vendors, work_orders, choices) =
        choices(&mut tx, site.id, &header.vendor, &header.work_order).await?;
    tx.commit().await?;
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        BillForm {
            shell: Shell::new(member, "/sites"),
            site,
            action: kind.action,
            heading: kind.heading,
            back: kind.back,
            vendors,
            work_orders,
            supplier_reference: header.supplier_reference,
            issue_date: header.issue_date,
            due_date: header.due_date,
            incurred_on: header.incurred_on,
            description: header.description,
            total: header.total,
            rows,
            choices,
            document: kind.document,
            returned_reason: kind.returned_reason,
            problem,
        },
    )
        .into_response())
}

fn blank_rows(from: usize, to: usize) -> impl Iterator<Item = BillRow> {
    (from..=to).map(|n| BillRow {
        n,
        ..BillRow::default()
    })
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
    tx.commit().await?;
    let header = Header {
        vendor: query.get("vendor").to_owned(),
        work_order: query.get("work_order").to_owned(),
        issue_date: iso(state.now().date()),
        ..Header::default()
    };
    draw_form(
        &state,
        &member,
        site,
        FormKind::new_bill(id),
        header,
        blank_rows(1, ROWS).collect(),
        None,
    )
    .await
}

/// How many rows the form posted (its hidden `rows` field), at least [`ROWS`] and at most a
/// bill's 200 lines.
fn row_count(v: &FormData) -> usize {
    v.get("rows")
        .trim()
        .parse::<usize>()
        .unwrap_or(ROWS)
        .clamp(ROWS, 200)
}

/// The rows as typed, and the lines they make (blank rows skipped).
fn read_rows(v: &FormData) -> (Vec<BillRow>, Result<Vec<BillLineInput>, String>) {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut problem = None;
    for n in 1..=row_count(v) {
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

/// Saves a new draft (`id` None) or a draft's changes from the posted form, with the
/// supplier's invoice if one is attached; or draws the form again with what was typed.
async fn save(
    state: &AppState,
    member: &Member,
    site: Site,
    id: Option<Uuid>,
    kind: FormKind,
    posted: &Posted,
) -> Page {
    let v = &posted.values;
    let (rows, lines) = read_rows(v);
    let outcome: Result<Uuid, String> = match lines.and_then(|l| bill_input(site.id, v, l)) {
        Err(p) => Err(p),
        Ok(mut input) => {
            let files: Vec<_> = posted.files_in("document").collect();
            match uploads::store_invoice(state, member.org.id, &files, &member.name).await {
                Err(p) => Err(p),
                Ok(document) => {
                    if document.is_some() {
                        input.source = "upload";
                    }
                    input.document = document;
                    let mut tx = state.db().begin(&member.ctx()).await?;
                    let who = signer(&mut tx, member).await?;
                    match bills::save_draft(&mut tx, id, &input, &who).await {
                        Ok(b) => {
                            tx.commit().await?;
                            Ok(b)
                        }
                        Err(e) => Err(money_error(e)?),
                    }
                }
            }
        }
    };
    match outcome {
        Ok(b) => Ok(back_to(
            &format!("/bills/{b}"),
            if id.is_some() {
                "Changes to the draft saved."
            } else {
                "Draft bill saved."
            },
        )),
        Err(problem) => {
            draw_form(
                state,
                member,
                site,
                kind,
                Header::typed(v),
                rows,
                Some(problem),
            )
            .await
        }
    }
}

/// POST /sites/{id}/bills/new: the draft saved, or the form back with what was typed. The
/// form is multipart when it carries the supplier's invoice; URL-encoded is read too.
pub async fn create_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    request: Request,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let site = {
        let mut tx = state.db().begin(&member.ctx()).await?;
        let site = site_for(&mut tx, &member, id, "bill.create").await?;
        tx.commit().await?;
        site
    };
    let posted = match uploads::read_any(request).await {
        Ok(p) => p,
        Err(p) => {
            return draw_form(
                &state,
                &member,
                site,
                FormKind::new_bill(id),
                Header::default(),
                blank_rows(1, ROWS).collect(),
                Some(p),
            )
            .await;
        }
    };
    save(&state, &member, site, None, FormKind::new_bill(id), &posted).await
}

/// A draft for editing: the member may update the site's bills, and it is still a draft.
async fn draft_for(
    state: &AppState,
    member: &Member,
    id: Uuid,
) -> Result<Result<(Bill, Site, Vec<bills::BillLine>), Response>, WebError> {
    writable(member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, site) = bill_for(&mut tx, member, id, "bill.update").await?;
    let lines = bills::lines(&mut tx, id).await?;
    tx.commit().await?;
    if b.status() != BillStatus::Draft {
        return Ok(Err(refused_on(
            &format!("/bills/{id}"),
            &format!(
                "{} is {}: only a draft is changed.",
                b.label(),
                b.status().label().to_lowercase()
            ),
        )));
    }
    Ok(Ok((b, site, lines)))
}

/// GET /bills/{id}/edit: the draft's fields and lines, to correct (a bill sent back by its
/// approver is a draft again).
pub async fn edit_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let (b, site, lines) = match draft_for(&state, &member, id).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let mut rows: Vec<BillRow> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| BillRow {
            n: i + 1,
            description: l.description.clone(),
            account: l.account_id.to_string(),
            fund: l.fund_id.to_string(),
            tax: l.tax_rate_id.to_string(),
            net: pounds(l.net_pence),
            vat: pounds(l.vat_pence),
            recoverable: l.vat_recoverable,
        })
        .collect();
    let filled = rows.len();
    rows.extend(blank_rows(filled + 1, (filled + 1).max(ROWS)));
    draw_form(
        &state,
        &member,
        site,
        FormKind::edit(&b),
        Header::stored(&b),
        rows,
        None,
    )
    .await
}

/// POST /bills/{id}/edit: the draft's changes saved through the same checks as a new bill, or
/// the form back with what was typed. A file attached replaces the supplier's invoice.
pub async fn update_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    request: Request,
) -> Page {
    let id = parse_id(&id)?;
    let (b, site, _) = match draft_for(&state, &member, id).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let posted = match uploads::read_any(request).await {
        Ok(p) => p,
        Err(p) => return Ok(refused_on(&format!("/bills/{id}"), &p)),
    };
    save(&state, &member, site, Some(id), FormKind::edit(&b), &posted).await
}

/// GET /bills/{id}/document: the supplier's invoice as received, to whoever may read the bill.
pub async fn document(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (b, _) = bill_for(&mut tx, &member, id, "bill.read").await?;
    tx.commit().await?;
    let (Some(key), Some(media)) = (&b.document_key, &b.document_type) else {
        return Err(WebError::NotFound);
    };
    let name = b
        .document_name
        .clone()
        .unwrap_or_else(|| format!("{} {}", b.vendor_name, b.supplier_reference));
    // Always a download: an image or PDF from outside never renders in our origin.
    uploads::send_stored(&state, key, media, &name, "attachment").await
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
    /// The payments of this bill: (payment id, "PAY-2026-000004 on 3 June 2026: £450.00 by
    /// BACS (Paid)"), and the run it is in, if any.
    payments: Vec<(Uuid, String)>,
    run: Option<(Uuid, String)>,
    site: Site,
    /// The supplier's invoice as received: its name and what kind of file it is.
    document: Option<(String, &'static str)>,
    can_edit: bool,
    can_submit: bool,
    can_approve: bool,
    can_bypass: bool,
    can_hold: bool,
    can_release: bool,
    can_void: bool,
    can_delete: bool,
    can_pay: bool,
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
    let history = records::in_words(
        &proplink_db::audit::bill_history(&mut tx, id).await?,
        proplink_db::money_history::bill_history_sentence,
    );
    let paid_by = proplink_db::payments::payments_of_bill(&mut tx, id).await?;
    let run = paid_by
        .iter()
        .find(|p| p.status == "scheduled")
        .and_then(|p| p.payment_run_id.zip(p.run_number.clone()));
    let payments = paid_by.iter().map(|p| (p.id, p.describe())).collect();
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
    facts.push((
        "Received".into(),
        match b.source.as_str() {
            "contractorport" => "From the contractor, through ContractorPort",
            "upload" => "Entered with the supplier's invoice uploaded",
            _ => "Entered by hand",
        }
        .into(),
    ));
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
        payments,
        run,
        document: b.document_key.as_ref().map(|_| {
            (
                b.document_name
                    .clone()
                    .unwrap_or_else(|| "Supplier's invoice".into()),
                match b.document_type.as_deref() {
                    Some("application/pdf") => "PDF",
                    Some("image/jpeg") => "JPEG image",
                    Some("image/png") => "PNG image",
                    _ => "file",
                },
            )
        }),
        can_edit: writable && status == BillStatus::Draft && can("bill.update"),
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
        can_pay: writable
            && status == BillStatus::Approved
            && b.outstanding_pence() > 0
            && can("bill.pay"),
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
