//! Financials → Payments (issue 7; docs-spec §2.6 "Supplier payments and batches"): paying
//! supplier bills in runs (choose a bank account and a due-by date, tick the bills, schedule;
//! someone else approves; download the bank file; mark paid when the bank confirms, which
//! posts and e-mails each supplier a remittance advice), single payments of one bill, a
//! payment's page with its reversal, the creditors list by site and a supplier's statement.
//!
//! Runs span sites, so scheduling, approving and paying them needs an all-sites scope as well
//! as `payment.schedule_batch` / `payment.approve_batch` / `payment.record`. A single payment
//! needs `bill.pay` on the bill's site; a reversal `payment.reverse`.

use super::form::FormData;
use super::money::{amount, date, finish, iso, money_error, signer, writable};
use super::operations::{back_to, flash_of, query_of, refused_on};
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
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proplink_db::TenantTx;
use proplink_db::bank_accounts::{self as banks, AccountType, Override};
use proplink_db::bills;
use proplink_db::email::{self, Attachment, NewEmail};
use proplink_db::ledger::LedgerError;
use proplink_db::payments::{self as pay, ManualPayment, Method, RunInput};
use proplink_domain::dates::long_date;
use proplink_domain::permissions::Scope;
use proplink_domain::uk::format_pence;
use proplink_files::MediaType;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

type Page = Result<Response, WebError>;

const PATH: &str = "/payments";

fn all_sites(member: &Member) -> bool {
    matches!(member.grants.scope, Some(Scope::AllSites))
}

/// Runs are across sites: only someone who sees every site reads or works them.
fn require_all_sites(member: &Member) -> Result<(), WebError> {
    if all_sites(member) {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn when(at: Option<OffsetDateTime>) -> String {
    at.map(proplink_domain::dates::uk_long_date)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The payments page: runs, and starting one

pub struct RunRow {
    pub id: Uuid,
    pub number: String,
    pub bank: String,
    pub payment_date: String,
    pub status: &'static str,
    pub payments: i32,
    pub bills: i32,
    pub total: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/payments.html")]
struct PaymentsPage {
    shell: Shell,
    runs: Vec<RunRow>,
    banks: Vec<Opt>,
    due_by: String,
    can_schedule: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /payments
pub async fn page(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    require_all_sites(&member)?;
    let (flash, problem) = flash_of(&query_of(raw));
    let mut tx = state.db().begin(&member.ctx()).await?;
    let runs = pay::runs(&mut tx, 100).await?;
    let accounts = banks::list(&mut tx).await?;
    tx.commit().await?;
    Ok(PaymentsPage {
        shell: Shell::new(&member, "/sites"),
        runs: runs.iter().map(run_row).collect(),
        banks: accounts
            .iter()
            .filter(|a| a.archived_at.is_none())
            .map(|a| Opt::new(a.id.to_string(), format!("{} ({})", a.name, a.masked()), ""))
            .collect(),
        due_by: iso(today() + Duration::days(14)),
        can_schedule: member.can("payment.schedule_batch") && !member.read_only(),
        flash,
        problem,
    }
    .into_response())
}

fn run_row(r: &pay::PaymentRun) -> RunRow {
    RunRow {
        id: r.id,
        number: r.number.clone(),
        bank: r.bank_name.clone(),
        payment_date: long_date(r.payment_date),
        status: r.status_label(),
        payments: r.payment_count,
        bills: r.bill_count,
        total: format_pence(r.total_pence),
    }
}

pub struct PayableRow {
    pub id: Uuid,
    pub number: String,
    pub supplier_reference: String,
    pub site: String,
    pub due: String,
    pub overdue: bool,
    pub outstanding: String,
    pub ticked: bool,
}

pub struct SupplierGroup {
    pub name: String,
    pub has_bank: bool,
    pub total: String,
    pub bills: Vec<PayableRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/payment_run_form.html")]
struct RunForm {
    shell: Shell,
    bank_id: Uuid,
    bank: String,
    office: bool,
    due_by: String,
    payment_date: String,
    groups: Vec<SupplierGroup>,
    override_reason: String,
    problem: Option<String>,
}

/// GET /payments/new?bank=…&due_by=…: the approved bills due by the date, by supplier.
pub async fn new_run(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    require_all_sites(&member)?;
    member.require_action("payment.schedule_batch")?;
    let q = query_of(raw);
    let Ok(bank) = Uuid::parse_str(q.get("bank").trim()) else {
        return Ok(refused_on(PATH, "Choose the bank account to pay from."));
    };
    let due_by = match date(q.get("due_by"), "due-by date") {
        Ok(d) => d,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    render_run_form(&state, &member, bank, due_by, None, None).await
}

async fn render_run_form(
    state: &AppState,
    member: &Member,
    bank: Uuid,
    due_by: Date,
    typed: Option<&FormData>,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let account = banks::find(&mut tx, bank)
        .await?
        .ok_or(WebError::NotFound)?;
    let payable = pay::payable_bills(&mut tx, bank, due_by).await?;
    tx.commit().await?;
    let ticked: Option<Vec<&str>> = typed.map(|v| v.all("bill").collect());
    let mut groups: Vec<SupplierGroup> = Vec::new();
    let mut sums: Vec<i64> = Vec::new();
    for b in &payable {
        if groups.last().is_none_or(|g| g.name != b.vendor_name) {
            groups.push(SupplierGroup {
                name: b.vendor_name.clone(),
                has_bank: b.vendor_has_bank,
                total: String::new(),
                bills: Vec::new(),
            });
            sums.push(0);
        }
        let id = b.id.to_string();
        let row = PayableRow {
            id: b.id,
            number: b.number.clone(),
            supplier_reference: b.supplier_reference.clone(),
            site: b.site_name.clone(),
            due: long_date(b.due_date),
            overdue: b.due_date < today(),
            outstanding: format_pence(b.outstanding_pence),
            // Everything payable is ticked at first, except a supplier we cannot pay by bank.
            ticked: ticked
                .as_ref()
                .map_or(b.vendor_has_bank, |t| t.contains(&id.as_str())),
        };
        if let (Some(g), Some(sum)) = (groups.last_mut(), sums.last_mut()) {
            *sum += b.outstanding_pence;
            g.bills.push(row);
        }
    }
    for (g, sum) in groups.iter_mut().zip(sums) {
        g.total = format_pence(sum);
    }
    let get = |k: &str| typed.map(|v| v.get(k).to_owned()).unwrap_or_default();
    let payment_date = match get("payment_date") {
        d if d.is_empty() => iso(today()),
        d => d,
    };
    let page = RunForm {
        shell: Shell::new(member, "/sites"),
        bank_id: bank,
        bank: format!("{} ({})", account.name, account.masked()),
        office: account.account_type() == AccountType::Office,
        due_by: iso(due_by),
        payment_date,
        groups,
        override_reason: get("override_reason"),
        problem: problem.clone(),
    }
    .into_response();
    Ok(match problem {
        Some(_) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
        None => page,
    })
}

/// POST /payments/new: schedules the run of the ticked bills.
pub async fn schedule(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    require_all_sites(&member)?;
    member.require_action("payment.schedule_batch")?;
    let v = FormData::parse(&body);
    let Ok(bank) = Uuid::parse_str(v.get("bank").trim()) else {
        return Ok(refused_on(PATH, "Choose the bank account to pay from."));
    };
    let due_by = match date(v.get("due_by"), "due-by date") {
        Ok(d) => d,
        Err(p) => return Ok(refused_on(PATH, &p)),
    };
    let parsed = (|| -> Result<RunInput, String> {
        Ok(RunInput {
            bank_account_id: bank,
            payment_date: date(v.get("payment_date"), "payment date")?,
            due_by,
            bill_ids: v
                .all("bill")
                .map(|b| Uuid::parse_str(b.trim()).map_err(|_| "Tick the bills again.".to_owned()))
                .collect::<Result<_, _>>()?,
            override_: Some(Override {
                by: member.name.clone(),
                reason: v.get("override_reason").to_owned(),
            }),
        })
    })();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match parsed {
        Ok(input) => {
            let who = signer(&mut tx, &member).await?;
            pay::schedule_run(
                &mut tx,
                &state.settings().data_key,
                &input,
                &who,
                OffsetDateTime::now_utc(),
            )
            .await
        }
        Err(p) => Err(LedgerError::Refused(p)),
    };
    match result {
        Ok(run) => {
            tx.commit().await?;
            Ok(back_to(
                &format!("{PATH}/runs/{run}"),
                "Scheduled: someone else now approves the run.",
            ))
        }
        Err(e) => {
            let why = money_error(e)?;
            drop(tx);
            render_run_form(&state, &member, bank, due_by, Some(&v), Some(why)).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A run

pub struct RunBill {
    pub id: Uuid,
    pub number: String,
    pub supplier_reference: String,
    pub site: String,
    pub work_order: Option<(Uuid, String)>,
    pub amount: String,
}

pub struct RunPayment {
    pub id: Uuid,
    pub number: String,
    pub vendor_id: Uuid,
    pub vendor: String,
    pub reference: String,
    pub amount: String,
    pub status: &'static str,
    pub bills: Vec<RunBill>,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/payment_run.html")]
struct RunPage {
    shell: Shell,
    id: Uuid,
    number: String,
    status: &'static str,
    facts: Vec<(String, String)>,
    payments: Vec<RunPayment>,
    notices: Vec<String>,
    approval: Option<super::money::ApprovalView>,
    history: Vec<super::records::HistoryRow>,
    scheduled: bool,
    can_approve: bool,
    can_bypass: bool,
    can_change: bool,
    can_file: bool,
    /// Its bank file has been made: cancelling needs the bank's rejection confirmed.
    filed: bool,
    can_pay: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /payments/runs/{id}
pub async fn run(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    require_all_sites(&member)?;
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let r = pay::find_run(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut payments = Vec::new();
    for p in pay::run_payments(&mut tx, id).await? {
        let bills = pay::paid_bills(&mut tx, p.id)
            .await?
            .into_iter()
            .map(|b| RunBill {
                id: b.bill_id,
                number: b.bill_number,
                supplier_reference: b.supplier_reference,
                site: b.site_name,
                work_order: b.work_order_id.zip(b.work_order_reference),
                amount: format_pence(b.amount_pence),
            })
            .collect();
        payments.push(RunPayment {
            id: p.id,
            number: p.number.clone(),
            vendor_id: p.vendor_id,
            vendor: p.vendor_name.clone(),
            reference: p.reference.clone().unwrap_or_default(),
            amount: format_pence(p.amount_pence),
            status: p.status_label(),
            bills,
        });
    }
    // What the bank will be sent differently from how it is recorded, before the download.
    let notices = if r.status == "approved" && member.can("payment.record") {
        match pay::build_file(&mut tx, &state.settings().data_key, id, today()).await {
            Ok(file) => file.notices,
            Err(e) => vec![money_error(e)?],
        }
    } else {
        Vec::new()
    };
    let approval = super::money::approval_view(&mut tx, "payment_batch", id).await?;
    let history = super::records::history_in_words(
        &mut tx,
        "payment_run",
        id,
        proplink_db::money_history::run_sentence,
    )
    .await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query_of(raw));
    let mut facts = vec![
        ("Pays from".to_owned(), r.bank_name.clone()),
        ("Payment date".to_owned(), long_date(r.payment_date)),
        ("Bills due by".to_owned(), long_date(r.due_by)),
        (
            "Total".to_owned(),
            format!(
                "{} to {} supplier{} for {} bill{}",
                format_pence(r.total_pence),
                r.payment_count,
                if r.payment_count == 1 { "" } else { "s" },
                r.bill_count,
                if r.bill_count == 1 { "" } else { "s" }
            ),
        ),
        (
            "Scheduled".to_owned(),
            format!("by {} on {}", r.scheduled_by, when(Some(r.scheduled_at))),
        ),
    ];
    if let Some(by) = &r.approved_by {
        facts.push((
            "Approved".to_owned(),
            format!("by {by} on {}", when(r.approved_at)),
        ));
    }
    if let Some(by) = &r.file_made_by {
        facts.push((
            "Bank file made".to_owned(),
            format!("by {by} on {}", when(r.file_made_at)),
        ));
    }
    if let Some(by) = &r.paid_by {
        facts.push((
            "Marked paid".to_owned(),
            format!("by {by} on {}", when(r.paid_at)),
        ));
    }
    if let (Some(by), Some(why)) = (&r.override_by, &r.override_reason) {
        facts.push((
            "Office account override".to_owned(),
            format!("allowed by {by}: {why}"),
        ));
    }
    if let (Some(by), Some(why)) = (&r.cancelled_by, &r.cancel_reason) {
        facts.push(("Cancelled".to_owned(), format!("by {by}: {why}")));
    }
    let live = !member.read_only();
    let scheduled = r.status == "scheduled";
    let approved = r.status == "approved";
    Ok(RunPage {
        shell: Shell::new(&member, "/sites"),
        id,
        number: r.number.clone(),
        status: r.status_label(),
        facts,
        payments,
        notices,
        approval,
        history,
        scheduled,
        can_approve: live && scheduled && member.can("payment.approve_batch"),
        can_bypass: live && scheduled && member.is_owner,
        can_change: live && (scheduled || approved) && member.can("payment.schedule_batch"),
        can_file: approved && member.can("payment.record"),
        filed: r.file_made_at.is_some(),
        can_pay: live && approved && member.can("payment.record"),
        flash,
        problem,
    }
    .into_response())
}

/// GET /payments/runs/{id}/file: the bank file of an approved run.
pub async fn run_file(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    require_all_sites(&member)?;
    member.require_action("payment.record")?;
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let made = pay::payment_file(
        &mut tx,
        &state.settings().data_key,
        id,
        &member.name,
        OffsetDateTime::now_utc(),
    )
    .await;
    match made {
        Ok(file) => {
            // A read-only organisation may still download, but nothing is recorded.
            if member.read_only() {
                drop(tx);
            } else {
                tx.commit().await?;
            }
            Ok((
                [
                    (header::CONTENT_TYPE, file.media_type.to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", file.filename),
                    ),
                    (header::CACHE_CONTROL, "private, no-store".to_owned()),
                ],
                file.bytes,
            )
                .into_response())
        }
        Err(e) => {
            let why = money_error(e)?;
            drop(tx);
            Ok(refused_on(&format!("{PATH}/runs/{id}"), &why))
        }
    }
}

/// POST /payments/runs/{id}/{approve|bypass|remove|cancel|paid}
pub async fn run_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    require_all_sites(&member)?;
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let page = format!("{PATH}/runs/{id}");
    let now = OffsetDateTime::now_utc();
    let mut tx = state.db().begin(&member.ctx()).await?;
    let result = match action.as_str() {
        "approve" => {
            member.require_action("payment.approve_batch")?;
            let who = signer(&mut tx, &member).await?;
            pay::approve_run(&mut tx, id, &who, now)
                .await
                .map(|a| match a.posted() {
                    Some(_) => {
                        "Approved: download the bank file and upload it to the bank.".to_owned()
                    }
                    None => "Your approval is recorded; the chain waits for the others.".to_owned(),
                })
        }
        "bypass" => {
            member.require_action("payment.approve_batch")?;
            let who = signer(&mut tx, &member).await?;
            pay::bypass_run(&mut tx, id, &who, v.get("reason"), now)
                .await
                .map(|()| "Approved past the chain; its approvers are told.".to_owned())
        }
        "remove" => {
            member.require_action("payment.schedule_batch")?;
            let who = signer(&mut tx, &member).await?;
            match Uuid::parse_str(v.get("bill").trim()) {
                Ok(bill) => pay::remove_bill(&mut tx, id, bill, &who)
                    .await
                    .map(|()| "Taken out of the run: the bill is approved and unpaid.".to_owned()),
                Err(_) => Err(LedgerError::Refused("Choose the bill to take out.".into())),
            }
        }
        "cancel" => {
            member.require_action("payment.schedule_batch")?;
            pay::cancel_run(
                &mut tx,
                id,
                v.get("reason"),
                v.get("file_not_sent") == "yes",
                &member.name,
                now,
            )
            .await
            .map(|()| "Cancelled: its bills are approved and unpaid again.".to_owned())
        }
        "paid" => {
            member.require_action("payment.record")?;
            match pay::mark_run_paid(&mut tx, id, &member.name, now).await {
                Ok(payments) => {
                    let sent = send_remittances(&state, &mut tx, &member, &payments, now).await?;
                    Ok(format!("Marked paid and posted. {sent}"))
                }
                Err(e) => Err(e),
            }
        }
        _ => return Err(WebError::NotFound),
    };
    finish(tx, result, &page).await
}

// ---------------------------------------------------------------------------------------------
// Remittance advice

/// E-mails each payment's remittance advice (a PDF) to its supplier, in the same transaction
/// as the payment. A supplier without an e-mail address, or a PDF that could not be made, is
/// named in the answer; the payment stands either way.
async fn send_remittances(
    state: &AppState,
    tx: &mut TenantTx,
    member: &Member,
    payments: &[Uuid],
    now: OffsetDateTime,
) -> Result<String, WebError> {
    let (mut sent, mut unsent) = (0usize, Vec::new());
    for id in payments {
        match send_remittance(state, tx, member, *id, now).await? {
            Ok(()) => sent += 1,
            Err(why) => unsent.push(why),
        }
    }
    let mut text = match sent {
        0 => String::new(),
        1 => "1 remittance advice e-mailed.".to_owned(),
        n => format!("{n} remittance advices e-mailed."),
    };
    if !unsent.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&unsent.join(" "));
    }
    Ok(text)
}

/// One remittance: Ok(Ok) sent, Ok(Err(sentence)) not sent and why.
async fn send_remittance(
    state: &AppState,
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Result<(), String>, WebError> {
    let p = pay::find_payment(tx, id).await?.ok_or(WebError::NotFound)?;
    let vendor = proplink_db::people::vendor(tx, p.vendor_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let Some(address) = vendor.email.clone().filter(|e| !e.trim().is_empty()) else {
        return Ok(Err(format!(
            "{} has no e-mail address: post their remittance advice ({}).",
            vendor.name, p.number
        )));
    };
    let bank = banks::find(tx, p.bank_account_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let bills = pay::paid_bills(tx, id).await?;
    let doc = proplink_pdf::Remittance {
        org: super::money_pdf::organisation(tx, &member.org.name).await?,
        to: proplink_pdf::Party {
            name: vendor.name.clone(),
            address_lines: [
                vendor.address_line_1.clone(),
                vendor.address_line_2.clone(),
                vendor.city.clone(),
                vendor.postcode.clone(),
            ]
            .into_iter()
            .flatten()
            .filter(|l| !l.trim().is_empty())
            .collect(),
        },
        number: p.number.clone(),
        paid_on: p.payment_date,
        method: p.method_label().to_owned(),
        reference: p.reference.clone(),
        paid_from: format!("{} ({})", bank.name, bank.masked().to_lowercase()),
        lines: bills
            .iter()
            .map(|b| proplink_pdf::RemittanceLine {
                bill_number: b.bill_number.clone(),
                supplier_reference: b.supplier_reference.clone(),
                site: b.site_name.clone(),
                invoice_date: b.issue_date,
                amount_pence: b.amount_pence,
            })
            .collect(),
        total_pence: p.amount_pence,
    };
    let filename = format!("Remittance {}.pdf", p.number);
    let bytes = match super::money_pdf::render(state, doc.into()).await {
        Ok((bytes, _)) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, payment = %p.number, "remittance PDF not made");
            return Ok(Err(format!(
                "The remittance advice for {} could not be made: send it again from the payment's page.",
                p.number
            )));
        }
    };
    let attachment = match state.settings().files.as_ref() {
        Some(files) => {
            let stored = match files
                .put(tx.org().0, &filename, bytes.into(), &[MediaType::Pdf])
                .await
            {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(error = %e, payment = %p.number, "remittance PDF not stored");
                    return Ok(Err(format!(
                        "The remittance advice for {} could not be stored: send it again from the payment's page.",
                        p.number
                    )));
                }
            };
            vec![Attachment {
                filename: filename.clone(),
                media_type: "application/pdf".into(),
                sha256: stored.sha256,
                size_bytes: stored.size,
                object_key: stored.key,
            }]
        }
        None => Vec::new(),
    };
    let list: String = bills
        .iter()
        .map(|b| {
            format!(
                "  {}  (our {}, {})  {}\n",
                b.supplier_reference,
                b.bill_number,
                b.site_name,
                format_pence(b.amount_pence)
            )
        })
        .collect();
    email::queue_with_attachments(
        tx,
        NewEmail {
            to_address: address.clone(),
            to_name: Some(vendor.name.clone()),
            subject: format!(
                "Remittance advice {}: {}",
                p.number,
                format_pence(p.amount_pence)
            ),
            body_text: format!(
                "Dear {name},\n\nWe have paid you {total} by {method} on {date}{reference}. It \
                 settles these invoices:\n\n{list}\nThe remittance advice is attached.\n\n{org}\n",
                name = vendor.name,
                total = format_pence(p.amount_pence),
                method = p.method_label(),
                date = long_date(p.payment_date),
                reference = p
                    .reference
                    .as_deref()
                    .map(|r| format!(" with the reference {r}"))
                    .unwrap_or_default(),
                org = member.org.name,
            ),
            body_html: None,
            category: "remittance".into(),
        },
        &attachment,
    )
    .await?;
    pay::mark_remittance_sent(tx, id, now).await?;
    Ok(Ok(()))
}

// ---------------------------------------------------------------------------------------------
// A payment

#[derive(Template, WebTemplate)]
#[template(path = "money/supplier_payment.html")]
struct PaymentPage {
    shell: Shell,
    id: Uuid,
    number: String,
    status: &'static str,
    facts: Vec<(String, String)>,
    run: Option<(Uuid, String)>,
    vendor: (Uuid, String),
    bills: Vec<RunBill>,
    history: Vec<super::records::HistoryRow>,
    can_reverse: bool,
    can_resend: bool,
    today: String,
    flash: Option<String>,
    problem: Option<String>,
}

/// The payment, if the member may see every site it paid for.
async fn payment_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
) -> Result<(pay::Payment, Vec<pay::PaidBill>), WebError> {
    let p = pay::find_payment(tx, id).await?.ok_or(WebError::NotFound)?;
    let bills = pay::paid_bills(tx, id).await?;
    for b in &bills {
        site_for(tx, member, b.site_id, "payment.read").await?;
    }
    Ok((p, bills))
}

/// GET /supplier-payments/{id}
pub async fn payment(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let (p, bills) = payment_for(&mut tx, &member, id).await?;
    let history = super::records::history_in_words(
        &mut tx,
        "supplier_payment",
        id,
        proplink_db::money_history::payment_sentence,
    )
    .await?;
    tx.commit().await?;
    let (flash, problem) = flash_of(&query_of(raw));
    let mut facts = vec![
        ("Paid to".to_owned(), p.vendor_name.clone()),
        ("Amount".to_owned(), format_pence(p.amount_pence)),
        ("Date".to_owned(), long_date(p.payment_date)),
        ("Method".to_owned(), p.method_label().to_owned()),
        ("From".to_owned(), p.bank_name.clone()),
        ("Recorded by".to_owned(), p.recorded_by.clone()),
    ];
    if let Some(r) = &p.reference {
        facts.insert(4, ("Reference".to_owned(), r.clone()));
    }
    if let Some(at) = p.remittance_sent_at {
        facts.push(("Remittance advice e-mailed".to_owned(), when(Some(at))));
    }
    if let (Some(by), Some(why)) = (&p.override_by, &p.override_reason) {
        facts.push((
            "Office account override".to_owned(),
            format!("allowed by {by}: {why}"),
        ));
    }
    if let (Some(on), Some(why)) = (p.reversed_on, &p.reverse_reason) {
        facts.push((
            "Reversed".to_owned(),
            format!(
                "on {} by {}: {why}",
                long_date(on),
                p.reversed_by.as_deref().unwrap_or("someone")
            ),
        ));
    }
    let paid = p.status == "paid";
    Ok(PaymentPage {
        shell: Shell::new(&member, "/sites"),
        id,
        number: p.number.clone(),
        status: p.status_label(),
        facts,
        run: p.payment_run_id.zip(p.run_number.clone()),
        vendor: (p.vendor_id, p.vendor_name.clone()),
        bills: bills
            .into_iter()
            .map(|b| RunBill {
                id: b.bill_id,
                number: b.bill_number,
                supplier_reference: b.supplier_reference,
                site: b.site_name,
                work_order: b.work_order_id.zip(b.work_order_reference),
                amount: format_pence(b.amount_pence),
            })
            .collect(),
        history,
        can_reverse: paid && !member.read_only() && member.can("payment.reverse"),
        can_resend: paid && !member.read_only() && member.can("payment.record"),
        today: iso(today()),
        flash,
        problem,
    }
    .into_response())
}

/// POST /supplier-payments/{id}/{reverse|remittance}
pub async fn payment_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let page = format!("/supplier-payments/{id}");
    let now = OffsetDateTime::now_utc();
    let mut tx = state.db().begin(&member.ctx()).await?;
    payment_for(&mut tx, &member, id).await?;
    let result = match action.as_str() {
        "reverse" => {
            member.require_action("payment.reverse")?;
            match date(v.get("on"), "date of the reversal") {
                Ok(on) => pay::reverse_payment(&mut tx, id, on, v.get("reason"), &member.name, now)
                    .await
                    .map(|()| {
                        "Reversed: the bills it paid are owed again and can be paid anew."
                            .to_owned()
                    }),
                Err(p) => Err(LedgerError::Refused(p)),
            }
        }
        "remittance" => {
            member.require_action("payment.record")?;
            match send_remittance(&state, &mut tx, &member, id, now).await? {
                Ok(()) => Ok("Remittance advice e-mailed.".to_owned()),
                Err(why) => Err(LedgerError::Refused(why)),
            }
        }
        _ => return Err(WebError::NotFound),
    };
    finish(tx, result, &page).await
}

// ---------------------------------------------------------------------------------------------
// Paying one bill

#[derive(Template, WebTemplate)]
#[template(path = "money/pay_bill.html")]
struct PayForm {
    shell: Shell,
    id: Uuid,
    label: String,
    site: String,
    outstanding: String,
    banks: Vec<Opt>,
    methods: Vec<Opt>,
    amount: String,
    payment_date: String,
    reference: String,
    override_reason: String,
    problem: Option<String>,
}

async fn render_pay_form(
    state: &AppState,
    member: &Member,
    id: Uuid,
    typed: Option<&FormData>,
    problem: Option<String>,
) -> Page {
    let mut tx = state.db().begin(&member.ctx()).await?;
    let bill = bills::find(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    site_for(&mut tx, member, bill.site_id, "bill.pay").await?;
    let accounts = banks::for_site(&mut tx, bill.site_id).await?;
    tx.commit().await?;
    let get = |k: &str| typed.map(|v| v.get(k).to_owned()).unwrap_or_default();
    let method = match get("method") {
        m if m.is_empty() => "bacs".to_owned(),
        m => m,
    };
    let page = PayForm {
        shell: Shell::new(member, "/sites"),
        id,
        label: bill.label(),
        site: bill.site_name.clone(),
        outstanding: format_pence(bill.outstanding_pence()),
        banks: accounts
            .iter()
            .filter(|(a, _)| a.archived_at.is_none())
            .map(|(a, _)| {
                Opt::new(
                    a.id.to_string(),
                    format!("{} ({})", a.name, a.masked()),
                    &get("bank"),
                )
            })
            .collect(),
        methods: Method::ALL
            .iter()
            .map(|m| Opt::new(m.as_str(), m.label(), &method))
            .collect(),
        amount: match get("amount") {
            a if a.is_empty() && typed.is_none() => {
                format!(
                    "{}.{:02}",
                    bill.outstanding_pence() / 100,
                    bill.outstanding_pence() % 100
                )
            }
            a => a,
        },
        payment_date: match get("payment_date") {
            d if d.is_empty() => iso(today()),
            d => d,
        },
        reference: get("reference"),
        override_reason: get("override_reason"),
        problem: problem.clone(),
    }
    .into_response();
    Ok(match problem {
        Some(_) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
        None => page,
    })
}

/// GET /bills/{id}/pay
pub async fn pay_form(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    member.require_action("bill.pay")?;
    let id = parse_id(&id)?;
    render_pay_form(&state, &member, id, None, None).await
}

/// POST /bills/{id}/pay: records and posts the payment.
pub async fn pay_bill(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    writable(&member)?;
    member.require_action("bill.pay")?;
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let bill = bills::find(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    site_for(&mut tx, &member, bill.site_id, "bill.pay").await?;
    let parsed = (|| -> Result<ManualPayment, String> {
        Ok(ManualPayment {
            bill_id: id,
            bank_account_id: Uuid::parse_str(v.get("bank").trim())
                .map_err(|_| "Choose the bank account it was paid from.".to_owned())?,
            payment_date: date(v.get("payment_date"), "payment date")?,
            method: Method::parse(v.get("method"))
                .ok_or_else(|| "Choose how it was paid.".to_owned())?,
            reference: Some(v.get("reference").to_owned()),
            amount_pence: Some(amount(v.get("amount"), "amount paid")?),
            override_: Some(Override {
                by: member.name.clone(),
                reason: v.get("override_reason").to_owned(),
            }),
        })
    })();
    let now = OffsetDateTime::now_utc();
    let result = match parsed {
        Ok(input) => {
            let who = signer(&mut tx, &member).await?;
            pay::pay_bill(&mut tx, &input, &who, now).await
        }
        Err(p) => Err(LedgerError::Refused(p)),
    };
    match result {
        Ok(payment) => {
            let sent = send_remittances(&state, &mut tx, &member, &[payment], now).await?;
            tx.commit().await?;
            Ok(back_to(
                &format!("/supplier-payments/{payment}"),
                &format!("Paid and posted. {sent}"),
            ))
        }
        Err(e) => {
            let why = money_error(e)?;
            drop(tx);
            render_pay_form(&state, &member, id, Some(&v), Some(why)).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The creditors list and a supplier's statement

pub struct CreditorRow {
    pub site: String,
    pub vendor_id: Uuid,
    pub vendor: String,
    pub bills: i64,
    pub outstanding: String,
    pub overdue: String,
    pub oldest_due: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/creditors.html")]
struct CreditorsPage {
    shell: Shell,
    sites: Vec<Opt>,
    rows: Vec<CreditorRow>,
    total: String,
    overdue: String,
}

/// GET /creditors?site=…: what each supplier is owed, by site.
pub async fn creditors(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    RawQuery(raw): RawQuery,
) -> Page {
    let q = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let choices =
        proplink_db::operations::site_choices(&mut tx, &super::records::site_scope(&member))
            .await?;
    let chosen = Uuid::parse_str(q.get("site").trim()).ok();
    if let Some(site) = chosen {
        site_for(&mut tx, &member, site, "bill.read").await?;
    } else if !member.can("bill.read") {
        return Err(WebError::Forbidden);
    }
    let allowed: Option<Vec<Uuid>> =
        (!all_sites(&member)).then(|| choices.iter().map(|(id, _)| *id).collect());
    let rows = pay::creditors(&mut tx, chosen, allowed.as_deref(), today()).await?;
    tx.commit().await?;
    let total: i64 = rows.iter().map(|r| r.outstanding_pence).sum();
    let overdue: i64 = rows.iter().map(|r| r.overdue_pence).sum();
    let chosen_text = chosen.map(|c| c.to_string()).unwrap_or_default();
    Ok(CreditorsPage {
        shell: Shell::new(&member, "/sites"),
        sites: std::iter::once(Opt::new("", "All your sites", &chosen_text))
            .chain(
                choices
                    .into_iter()
                    .map(|(id, name)| Opt::new(id.to_string(), name, &chosen_text)),
            )
            .collect(),
        rows: rows
            .into_iter()
            .map(|r| CreditorRow {
                site: r.site_name,
                vendor_id: r.vendor_id,
                vendor: r.vendor_name,
                bills: r.bills,
                outstanding: format_pence(r.outstanding_pence),
                overdue: format_pence(r.overdue_pence),
                oldest_due: long_date(r.oldest_due),
            })
            .collect(),
        total: format_pence(total),
        overdue: format_pence(overdue),
    }
    .into_response())
}

pub struct MoveRow {
    pub date: String,
    pub description: String,
    pub link: String,
    pub billed: String,
    pub paid: String,
    pub balance: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/vendor_statement.html")]
struct StatementPage {
    shell: Shell,
    vendor_id: Uuid,
    vendor: String,
    from: String,
    to: String,
    opening: String,
    rows: Vec<MoveRow>,
    closing: String,
    problem: Option<String>,
}

/// GET /vendors/{id}/statement?from=…&to=…: bills and payments, with the balance we owe.
/// Across every site, so it needs an all-sites scope.
pub async fn vendor_statement(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    require_all_sites(&member)?;
    if !member.can("bill.read") {
        return Err(WebError::Forbidden);
    }
    let id = parse_id(&id)?;
    let q = query_of(raw);
    let t = today();
    let year_start = Date::from_calendar_date(t.year(), time::Month::January, 1).unwrap_or(t);
    let from = super::money::opt_date(q.get("from"), "start date");
    let to = super::money::opt_date(q.get("to"), "end date");
    let (from, to, problem) = match (from, to) {
        (Ok(f), Ok(e)) => {
            let (f, e) = (f.unwrap_or(year_start), e.unwrap_or(t));
            if e < f {
                (
                    year_start,
                    t,
                    Some("The period ends before it starts.".to_owned()),
                )
            } else {
                (f, e, None)
            }
        }
        (Err(p), _) | (_, Err(p)) => (year_start, t, Some(p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let vendor = proplink_db::people::vendor(&mut tx, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let st = pay::vendor_statement(&mut tx, id, None, from, to).await?;
    tx.commit().await?;
    Ok(StatementPage {
        shell: Shell::new(&member, "/people"),
        vendor_id: id,
        vendor: vendor.name,
        from: iso(from),
        to: iso(to),
        opening: format_pence(st.opening_pence),
        rows: st
            .moves
            .iter()
            .map(|m| MoveRow {
                date: long_date(m.on),
                description: m.description.clone(),
                link: if m.is_payment {
                    format!("/supplier-payments/{}", m.record_id)
                } else {
                    format!("/bills/{}", m.record_id)
                },
                billed: if m.billed_pence == 0 {
                    String::new()
                } else {
                    format_pence(m.billed_pence)
                },
                paid: if m.paid_pence == 0 {
                    String::new()
                } else {
                    format_pence(m.paid_pence)
                },
                balance: format_pence(m.balance_pence),
            })
            .collect(),
        closing: format_pence(st.closing_pence),
        problem,
    }
    .into_response())
}
