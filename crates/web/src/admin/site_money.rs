//! A site's books in the admin app (issue 6): its financials page, aged debt, trial balance
//! and income & expenditure by fund for any period (each also as CSV), accounting periods
//! with their locks, and manual journals drafted, submitted and approved.

use super::form::FormData;
use super::money::{
    self, ApprovalView, approval_view, finish, iso, money_error, opt_date, signer, writable,
};
use super::operations::{back_to, flash_of, query_of, refused_on};
use super::records::{self, HistoryRow, check, may, parse_id};
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
use proplink_db::manual_journals as mj;
use proplink_db::portfolio::{self, Site};
use proplink_db::receivables::{self as rx, Approval};
use proplink_domain::dates::long_date;
use proplink_domain::receivables::{AgeBucket, InvoiceStatus};
use proplink_domain::uk::format_pence;
use time::Date;
use uuid::Uuid;

type Page = Result<Response, WebError>;

pub(super) async fn site_for(
    tx: &mut TenantTx,
    member: &Member,
    id: Uuid,
    key: &str,
) -> Result<Site, WebError> {
    let site = portfolio::site(tx, id).await?.ok_or(WebError::NotFound)?;
    check(member, key, site.placement())?;
    Ok(site)
}

/// A period from the query: `from`/`to`, defaulting to the calendar year to date.
fn period(query: &FormData, today: Date) -> (Date, Date, Option<String>) {
    let start = Date::from_calendar_date(today.year(), time::Month::January, 1).unwrap_or(today);
    let from = opt_date(query.get("from"), "start date");
    let to = opt_date(query.get("to"), "end date");
    match (from, to) {
        (Ok(f), Ok(t)) => {
            let (f, t) = (f.unwrap_or(start), t.unwrap_or(today));
            if t < f {
                (
                    start,
                    today,
                    Some("The period ends before it starts.".into()),
                )
            } else {
                (f, t, None)
            }
        }
        (Err(p), _) | (_, Err(p)) => (start, today, Some(p)),
    }
}

// ---------------------------------------------------------------------------------------------
// The site's financials

#[derive(Template, WebTemplate)]
#[template(path = "money/site_financials.html")]
struct SiteFinancials {
    shell: Shell,
    site: Site,
    invoices: Vec<money::InvoiceRow>,
    journals: Vec<JournalRow>,
    periods: Vec<PeriodRow>,
    batches: Vec<BatchRow>,
    bills: Vec<BillRow>,
    statuses: Vec<records::Opt>,
    can_journal: bool,
    can_receive: bool,
    can_bill: bool,
    can_lock: bool,
    can_unlock: bool,
    flash: Option<String>,
    problem: Option<String>,
}

pub struct JournalRow {
    pub id: Uuid,
    pub date: String,
    pub description: String,
    pub amount: String,
    pub status: String,
    pub reference: String,
}

pub struct BillRow {
    pub id: Uuid,
    pub label: String,
    pub issued: String,
    pub due: String,
    pub total: String,
    pub status: String,
}

pub struct BatchRow {
    pub id: Uuid,
    pub date: String,
    pub summary: String,
    pub by: String,
    pub reversed: i64,
}

pub struct PeriodRow {
    pub id: Uuid,
    pub label: String,
    pub locked: bool,
    pub locked_by: String,
}

/// GET /sites/{id}/financials
pub async fn site_financials(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.read").await?;
    let status = InvoiceStatus::parse(query.get("status"));
    let invoices = rx::site_invoices(&mut tx, id, status, 200).await?;
    let journals = mj::for_site(&mut tx, id).await?;
    let periods = ledger::periods(&mut tx, id).await?;
    let placement = site.placement();
    let batches = if records::may_read(&member, "payment.read", placement) {
        proplink_db::receipt_batches::site_batches(&mut tx, id, 50).await?
    } else {
        Vec::new()
    };
    let bills = if records::may_read(&member, "bill.read", placement) {
        proplink_db::bills::for_site(&mut tx, id, None, 100).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let (flash, problem) = flash_of(&query);
    let chosen = status.map_or("", InvoiceStatus::as_str);
    Ok(SiteFinancials {
        shell: Shell::new(&member, "/sites"),
        invoices: invoices.iter().map(money::invoice_row).collect(),
        journals: journals
            .iter()
            .map(|j| JournalRow {
                id: j.id,
                date: long_date(j.journal_date),
                description: j.description.clone(),
                amount: format_pence(j.debits_pence),
                status: match j.status.as_str() {
                    "draft" => "Draft",
                    "awaiting_approval" => "Awaiting approval",
                    _ => "Posted",
                }
                .into(),
                reference: j.journal_reference.clone().unwrap_or_default(),
            })
            .collect(),
        periods: periods
            .iter()
            .map(|p| PeriodRow {
                id: p.id,
                label: format!("{} to {}", long_date(p.starts_on), long_date(p.ends_on)),
                locked: p.locked_at.is_some(),
                locked_by: p.locked_by.clone().unwrap_or_default(),
            })
            .collect(),
        batches: batches
            .iter()
            .map(|b| BatchRow {
                id: b.id,
                date: long_date(b.received_on),
                summary: b.summary(),
                by: b.recorded_by.clone(),
                reversed: b.reversed,
            })
            .collect(),
        bills: bills
            .iter()
            .map(|b| BillRow {
                id: b.id,
                label: b.label(),
                issued: long_date(b.issue_date),
                due: long_date(b.due_date),
                total: format_pence(b.total_pence),
                status: b.status().label().into(),
            })
            .collect(),
        statuses: std::iter::once(records::Opt::new("", "Every status", chosen))
            .chain(
                InvoiceStatus::ALL
                    .iter()
                    .map(|s| records::Opt::new(s.as_str(), s.label(), chosen)),
            )
            .collect(),
        can_journal: may(&member, "ledger.post_journal", placement),
        can_receive: may(&member, "payment.record", placement) && !member.read_only(),
        can_bill: may(&member, "bill.create", placement) && !member.read_only(),
        can_lock: may(&member, "ledger.lock_period", placement),
        can_unlock: may(&member, "ledger.unlock_period", placement),
        site,
        flash,
        problem,
    }
    .into_response())
}

/// POST /sites/{id}/periods (add), /sites/{id}/periods/{period}/lock and …/unlock
pub async fn add_period(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    let v = FormData::parse(&body);
    let page = format!("/sites/{id}/financials");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.read").await?;
    check(&member, "ledger.lock_period", site.placement())?;
    let result = match (
        money::date(v.get("starts_on"), "period's start"),
        money::date(v.get("ends_on"), "period's end"),
    ) {
        (Ok(f), Ok(t)) => ledger::add_period(&mut tx, id, f, t)
            .await
            .map(|_| "Period added.".to_owned()),
        (Err(p), _) | (_, Err(p)) => Err(LedgerError::Refused(p)),
    };
    finish(tx, result, &page).await
}

pub async fn period_lock(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, period, action)): Path<(String, String, String)>,
) -> Page {
    let (id, period) = (parse_id(&id)?, parse_id(&period)?);
    let lock = match action.as_str() {
        "lock" => true,
        "unlock" => false,
        _ => return Err(WebError::NotFound),
    };
    let page = format!("/sites/{id}/financials");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.read").await?;
    check(
        &member,
        if lock {
            "ledger.lock_period"
        } else {
            "ledger.unlock_period"
        },
        site.placement(),
    )?;
    if !ledger::periods(&mut tx, id)
        .await?
        .iter()
        .any(|p| p.id == period)
    {
        return Err(WebError::NotFound);
    }
    let result = ledger::set_period_locked(&mut tx, period, lock, &member.name, state.now())
        .await
        .map(|()| {
            if lock {
                "Period locked: nothing more is posted into it.".to_owned()
            } else {
                "Period unlocked.".to_owned()
            }
        });
    finish(tx, result, &page).await
}

// ---------------------------------------------------------------------------------------------
// Reports

pub struct AgedRow {
    pub unit_id: Uuid,
    pub unit: String,
    pub contact: String,
    pub buckets: Vec<String>,
    pub total: String,
    pub credit: String,
    pub net: String,
    pub last_receipt: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/aged_debt.html")]
struct AgedDebtPage {
    shell: Shell,
    site: Site,
    as_at: String,
    as_at_words: String,
    headings: Vec<&'static str>,
    rows: Vec<AgedRow>,
    totals: Vec<String>,
    total: String,
    credit: String,
    net: String,
    problem: Option<String>,
}

/// GET /sites/{id}/aged-debt?as_at= (&format=csv)
pub async fn aged_debt(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let today = state.now().date();
    let (as_at, problem) = match opt_date(query.get("as_at"), "date") {
        Ok(d) => (d.unwrap_or(today), None),
        Err(p) => (today, Some(p)),
    };
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "debtor_invoice.read").await?;
    let rows = rx::aged_debt(&mut tx, id, as_at).await?;
    tx.commit().await?;
    let headings: Vec<&'static str> = AgeBucket::ALL.iter().map(|b| b.label()).collect();
    if query.get("format") == "csv" {
        let mut header = vec!["Unit", "Billed to"];
        header.extend(headings.iter().copied());
        header.extend(["Total owed", "Credit held", "Net", "Last receipt"]);
        return records::csv_download(
            &format!("aged-debt-{}", site.reference.to_lowercase()),
            member.org.slug.as_str(),
            state.now(),
            &header,
            rows.iter().map(|r| {
                let mut row = vec![
                    r.unit_reference.clone(),
                    r.contact_name.clone().unwrap_or_default(),
                ];
                row.extend(r.buckets.iter().map(|b| money::pounds_signed(*b)));
                row.extend([
                    money::pounds_signed(r.total_pence),
                    money::pounds_signed(r.credit_pence),
                    money::pounds_signed(r.net_pence()),
                    r.last_receipt.map(iso).unwrap_or_default(),
                ]);
                row
            }),
        );
    }
    let mut totals = [0i64; 5];
    for r in &rows {
        for (t, b) in totals.iter_mut().zip(r.buckets) {
            *t += b;
        }
    }
    let total: i64 = rows.iter().map(|r| r.total_pence).sum();
    let credit: i64 = rows.iter().map(|r| r.credit_pence).sum();
    Ok(AgedDebtPage {
        shell: Shell::new(&member, "/sites"),
        as_at: iso(as_at),
        as_at_words: long_date(as_at),
        headings,
        rows: rows
            .iter()
            .map(|r| AgedRow {
                unit_id: r.unit_id,
                unit: r.unit_reference.clone(),
                contact: r.contact_name.clone().unwrap_or_default(),
                buckets: r.buckets.iter().map(|b| format_pence(*b)).collect(),
                total: format_pence(r.total_pence),
                credit: format_pence(r.credit_pence),
                net: format_pence(r.net_pence()),
                last_receipt: r.last_receipt.map(long_date).unwrap_or_default(),
            })
            .collect(),
        totals: totals.iter().map(|t| format_pence(*t)).collect(),
        total: format_pence(total),
        credit: format_pence(credit),
        net: format_pence(total - credit),
        site,
        problem,
    }
    .into_response())
}

pub struct BalanceRow {
    pub code: String,
    pub name: String,
    pub fund: String,
    pub debit: String,
    pub credit: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/report.html")]
struct ReportPage {
    shell: Shell,
    site: Site,
    title: &'static str,
    path: &'static str,
    from: String,
    to: String,
    period: String,
    columns: [&'static str; 2],
    rows: Vec<BalanceRow>,
    totals: [String; 2],
    footer: String,
    problem: Option<String>,
}

/// GET /sites/{id}/trial-balance?from=&to= (&format=csv)
pub async fn trial_balance(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    report(state, member, id, raw, false).await
}

/// GET /sites/{id}/income-expenditure?from=&to= (&format=csv)
pub async fn income_expenditure(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    report(state, member, id, raw, true).await
}

async fn report(
    state: AppState,
    member: Member,
    id: String,
    raw: Option<String>,
    income: bool,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let (from, to, problem) = period(&query, state.now().date());
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.read").await?;
    let rows = if income {
        rx::income_and_expenditure(&mut tx, id, from, to).await?
    } else {
        ledger::trial_balance(&mut tx, id, from, to).await?
    };
    tx.commit().await?;
    let (title, path, columns) = if income {
        (
            "Income and expenditure",
            "income-expenditure",
            ["Income", "Expenditure"],
        )
    } else {
        ("Trial balance", "trial-balance", ["Debit", "Credit"])
    };
    // Each row's amount in its column: debits/income left, credits/expenditure right.
    let split = |r: &ledger::TrialBalanceRow| -> (i64, i64) {
        if income {
            if r.kind == "income" {
                (r.balance_pence, 0)
            } else {
                (0, r.balance_pence)
            }
        } else if r.balance_pence >= 0 {
            (r.balance_pence, 0)
        } else {
            (0, -r.balance_pence)
        }
    };
    if query.get("format") == "csv" {
        return records::csv_download(
            &format!("{path}-{}", site.reference.to_lowercase()),
            member.org.slug.as_str(),
            state.now(),
            &["Code", "Account", "Fund", columns[0], columns[1]],
            rows.iter().map(|r| {
                let (a, b) = split(r);
                vec![
                    r.code.clone(),
                    r.name.clone(),
                    r.fund_name.clone(),
                    money::pounds_signed(a),
                    money::pounds_signed(b),
                ]
            }),
        );
    }
    let (left, right) = rows
        .iter()
        .map(split)
        .fold((0, 0), |(l, r), (a, b)| (l + a, r + b));
    let footer = if income {
        match left - right {
            0 => "Income and expenditure are equal.".to_owned(),
            s if s > 0 => format!("Surplus of {}.", format_pence(s)),
            d => format!("Deficit of {}.", format_pence(-d)),
        }
    } else if left == right {
        "Debits and credits agree.".to_owned()
    } else {
        format!(
            "Debits and credits differ by {}: report this at once.",
            format_pence(left - right)
        )
    };
    let show = |p: i64| {
        if p == 0 {
            String::new()
        } else {
            format_pence(p)
        }
    };
    Ok(ReportPage {
        shell: Shell::new(&member, "/sites"),
        title,
        path,
        from: iso(from),
        to: iso(to),
        period: format!("{} to {}", long_date(from), long_date(to)),
        columns,
        rows: rows
            .iter()
            .map(|r| {
                let (a, b) = split(r);
                BalanceRow {
                    code: r.code.clone(),
                    name: r.name.clone(),
                    fund: r.fund_name.clone(),
                    debit: show(a),
                    credit: show(b),
                }
            })
            .collect(),
        totals: [format_pence(left), format_pence(right)],
        footer,
        site,
        problem,
    }
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Manual journals

pub struct JournalLineRow {
    pub n: usize,
    pub account: String,
    pub fund: String,
    pub debit: String,
    pub credit: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "money/journal_form.html")]
struct JournalForm {
    shell: Shell,
    site: Site,
    date: String,
    description: String,
    rows: Vec<JournalLineRow>,
    accounts: Vec<(String, String)>,
    funds: Vec<(String, String)>,
    problem: Option<String>,
}

const JOURNAL_ROWS: usize = 10;

async fn journal_choices(
    tx: &mut TenantTx,
    site: Uuid,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), WebError> {
    ledger::ensure_books(tx, site).await?;
    let accounts = ledger::accounts(tx, site)
        .await?
        .into_iter()
        .filter(|a| a.archived_at.is_none())
        .map(|a| (a.id.to_string(), format!("{} {}", a.code, a.name)))
        .collect();
    let funds = ledger::funds(tx, site)
        .await?
        .into_iter()
        .map(|f| (f.id.to_string(), f.name))
        .collect();
    Ok((accounts, funds))
}

/// GET /sites/{id}/journals/new
pub async fn new_journal(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.post_journal").await?;
    let (accounts, funds) = journal_choices(&mut tx, id).await?;
    tx.commit().await?;
    Ok(JournalForm {
        shell: Shell::new(&member, "/sites"),
        date: iso(state.now().date()),
        description: String::new(),
        rows: (1..=JOURNAL_ROWS)
            .map(|n| JournalLineRow {
                n,
                account: String::new(),
                fund: String::new(),
                debit: String::new(),
                credit: String::new(),
                description: String::new(),
            })
            .collect(),
        accounts,
        funds,
        site,
        problem: None,
    }
    .into_response())
}

/// POST /sites/{id}/journals/new
pub async fn create_journal(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let v = FormData::parse(&body);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let site = site_for(&mut tx, &member, id, "ledger.post_journal").await?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut problem: Option<String> = None;
    for n in 1..=JOURNAL_ROWS {
        let get = |k: &str| v.get(&format!("{k}_{n}")).to_owned();
        let row = JournalLineRow {
            n,
            account: get("account"),
            fund: get("fund"),
            debit: get("debit"),
            credit: get("credit"),
            description: get("description"),
        };
        let (d, c) = (row.debit.trim(), row.credit.trim());
        if (!d.is_empty() || !c.is_empty()) && problem.is_none() {
            let parsed = (|| -> Result<mj::ManualLine, String> {
                let amount = match (d.is_empty(), c.is_empty()) {
                    (false, true) => money::amount(d, &format!("debit on line {n}"))?,
                    (true, false) => -money::amount(c, &format!("credit on line {n}"))?,
                    _ => return Err(format!("Line {n}: give a debit or a credit, not both.")),
                };
                Ok(mj::ManualLine {
                    account_id: Uuid::parse_str(row.account.trim())
                        .map_err(|_| format!("Line {n}: choose the account."))?,
                    fund_id: Uuid::parse_str(row.fund.trim())
                        .map_err(|_| format!("Line {n}: choose the fund."))?,
                    amount_pence: amount,
                    unit_id: None,
                    description: Some(row.description.clone()).filter(|d| !d.trim().is_empty()),
                })
            })();
            match parsed {
                Ok(l) => lines.push(l),
                Err(p) => problem = Some(p),
            }
        }
        rows.push(row);
    }
    let result: Result<Uuid, String> = match (problem, money::date(v.get("date"), "journal's date"))
    {
        (Some(p), _) | (None, Err(p)) => Err(p),
        (None, Ok(date)) => {
            let input = mj::ManualInput {
                site_id: id,
                date,
                description: v.get("description").to_owned(),
                lines,
            };
            match mj::save_draft(&mut tx, None, &input, &member.name).await {
                Ok(j) => Ok(j),
                Err(e) => Err(money_error(e)?),
            }
        }
    };
    match result {
        Ok(j) => {
            tx.commit().await?;
            Ok(back_to(&format!("/journals/{j}"), "Draft journal saved."))
        }
        Err(p) => {
            let (accounts, funds) = journal_choices(&mut tx, id).await?;
            drop(tx);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                JournalForm {
                    shell: Shell::new(&member, "/sites"),
                    date: v.get("date").to_owned(),
                    description: v.get("description").to_owned(),
                    rows,
                    accounts,
                    funds,
                    site,
                    problem: Some(p),
                },
            )
                .into_response())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "money/journal.html")]
struct JournalPage {
    shell: Shell,
    site: Site,
    id: Uuid,
    journal: mj::ManualJournal,
    date: String,
    lines: Vec<JournalLineRow>,
    approval: Option<ApprovalView>,
    history: Vec<HistoryRow>,
    can_submit: bool,
    can_approve: bool,
    can_bypass: bool,
    flash: Option<String>,
    problem: Option<String>,
}

/// GET /journals/{id}
pub async fn journal(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = parse_id(&id)?;
    let query = query_of(raw);
    let mut tx = state.db().begin(&member.ctx()).await?;
    let journal = mj::find(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    let site = site_for(&mut tx, &member, journal.site_id, "ledger.read").await?;
    let lines = mj::lines(&mut tx, id).await?;
    let approval = approval_view(&mut tx, "manual_journal", id).await?;
    let history = records::history(&mut tx, "manual_journal", id).await?;
    tx.commit().await?;
    let placement = site.placement();
    let (flash, problem) = flash_of(&query);
    let show = |p: i64| {
        if p == 0 {
            String::new()
        } else {
            format_pence(p)
        }
    };
    Ok(JournalPage {
        shell: Shell::new(&member, "/sites"),
        id,
        date: long_date(journal.journal_date),
        lines: lines
            .iter()
            .map(|l| JournalLineRow {
                n: usize::try_from(l.line_no).unwrap_or(0),
                account: format!("{} {}", l.account_code, l.account_name),
                fund: l.fund_name.clone(),
                debit: show(l.amount_pence.max(0)),
                credit: show((-l.amount_pence).max(0)),
                description: l.description.clone().unwrap_or_default(),
            })
            .collect(),
        approval,
        history,
        can_submit: may(&member, "ledger.post_journal", placement) && journal.status == "draft",
        can_approve: may(&member, "ledger.approve_journal", placement)
            && journal.status == "awaiting_approval",
        can_bypass: member.is_owner && !member.read_only() && journal.status == "awaiting_approval",
        journal,
        site,
        flash,
        problem,
    }
    .into_response())
}

/// POST /journals/{id}/{action}: submit, approve, reject, bypass, delete.
pub async fn journal_action(
    State(state): State<AppState>,
    Extension(member): Extension<Member>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    let id = parse_id(&id)?;
    writable(&member)?;
    let key = match action.as_str() {
        "submit" | "delete" => "ledger.post_journal",
        "approve" | "reject" => "ledger.approve_journal",
        "bypass" => "workflow.bypass_approval",
        _ => return Err(WebError::NotFound),
    };
    let v = FormData::parse(&body);
    let page = format!("/journals/{id}");
    let mut tx = state.db().begin(&member.ctx()).await?;
    let journal = mj::find(&mut tx, id).await?.ok_or(WebError::NotFound)?;
    let site = site_for(&mut tx, &member, journal.site_id, "ledger.read").await?;
    check(&member, key, site.placement())?;
    let who = signer(&mut tx, &member).await?;
    let now = state.now();
    let result: Result<String, LedgerError> = match action.as_str() {
        "submit" => mj::submit(&mut tx, id, &who, now)
            .await
            .map(|()| "Submitted for approval.".to_owned()),
        "approve" => mj::approve(&mut tx, id, &who, now).await.map(|a| match a {
            Approval::Posted(r) => format!("Approved and posted as {r}."),
            Approval::Waiting(left) => {
                format!(
                    "Your approval is recorded; waiting for {}.",
                    left.join(", ")
                )
            }
        }),
        "reject" => mj::reject(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|()| "Sent back to draft.".to_owned()),
        "bypass" => mj::bypass(&mut tx, id, &who, v.get("reason"), now)
            .await
            .map(|r| {
                format!("Posted past the chain as {r}; the chain's approvers have been told.")
            }),
        _ => {
            return match mj::delete_draft(&mut tx, id).await {
                Ok(()) => {
                    tx.commit().await?;
                    Ok(back_to(
                        &format!("/sites/{}/financials", journal.site_id),
                        "Draft journal deleted.",
                    ))
                }
                Err(e) => {
                    let message = money_error(e)?;
                    drop(tx);
                    Ok(refused_on(&page, &message))
                }
            };
        }
    };
    finish(tx, result, &page).await
}
