//! What leaseholders owe and pay (issue 6; docs-spec §2.6): debtor invoices (demands), credit
//! notes, receipts, refunds and the allocations between them, each posting its journal in the
//! same transaction; the unit statement and the aged-debt report, derived from the ledger and
//! the allocations.
//!
//! The postings (DESIGN §4, docs-spec "Automatic postings"):
//! - invoice approved: Dr debtors control (per fund) / Cr each line's income account, Cr VAT;
//! - credit note approved: the reverse, on its own lines;
//! - receipt: Dr bank / Cr debtors control, in the fund of each line it settles and the rest
//!   (credit on account) in the receipt's fund;
//! - credit from a receipt later settling a line of another fund: the money moves fund (bank
//!   and debtors, out of one and into the other);
//! - refund: Dr debtors control / Cr bank;
//! - a bounced receipt: its journals reversed and its allocations undone.
//!
//! Every debtors-control line names the unit, so the sum of the units' statements is the
//! debtors control balance. Every write takes the organisation's books lock first, so the
//! balances read for the checks are the balances written against.

use crate::approvals::{self, Signed, Signer, Subject};
use crate::error::DbError;
use crate::ledger::{
    self, LedgerError, NewJournal, NewLine, lock_books, next_number, plain, refused,
};
use crate::tenant::TenantTx;
use proplink_domain::Postcode;
use proplink_domain::dates::long_date;
use proplink_domain::ledger::{FundKind, MAX_LINE_PENCE, vat_pence};
use proplink_domain::receivables::{
    AgeBucket, InvoiceKind, InvoiceStatus, PaymentMethod, fill_placeholders,
    ground_rent_due_in_window, settle_in_order, unfilled_placeholders,
};
use proplink_domain::uk::format_pence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Accounts a document line may not be coded to: the postings table owns them.
const NOT_FOR_LINES: &[&str] = &["debtors", "creditors", "bank", "vat", "suspense"];

// ---------------------------------------------------------------------------------------------
// Shared pieces

#[derive(Debug, Clone, Default)]
pub struct DraftLine {
    pub description: String,
    pub account_id: Uuid,
    pub fund_id: Uuid,
    pub tax_rate_id: Uuid,
    pub net_pence: i64,
    pub period_from: Option<Date>,
    pub period_to: Option<Date>,
}

/// A line as checked and priced: the rate used and its VAT.
pub(crate) struct PricedLine<'a> {
    pub(crate) line: &'a DraftLine,
    pub(crate) basis_points: i32,
    pub(crate) vat_pence: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct UnitFacts {
    pub(crate) site_id: Uuid,
    pub(crate) reference: String,
}

pub(crate) async fn unit_facts(tx: &mut TenantTx, unit: Uuid) -> Result<UnitFacts, LedgerError> {
    sqlx::query_as(
        "select u.site_id, u.reference from unit u where u.organisation_id = $1 and u.id = $2",
    )
    .bind(tx.org().0)
    .bind(unit)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(LedgerError::NotFound)
}

/// The contact must hold (or have held) a lease of the unit, or occupy it.
pub(crate) async fn check_billable(
    tx: &mut TenantTx,
    unit: Uuid,
    contact: Uuid,
    unit_reference: &str,
) -> Result<(), LedgerError> {
    let ok: bool = sqlx::query_scalar(
        "select exists (select from lease l join lease_holder h
                          on h.organisation_id = l.organisation_id and h.lease_id = l.id
                         where l.organisation_id = $1 and l.unit_id = $2 and h.contact_id = $3)
             or exists (select from occupancy o
                         where o.organisation_id = $1 and o.unit_id = $2 and o.contact_id = $3)",
    )
    .bind(tx.org().0)
    .bind(unit)
    .bind(contact)
    .fetch_one(tx.conn())
    .await?;
    if ok {
        Ok(())
    } else {
        Err(refused(format!(
            "That contact has never held a lease of or occupied {unit_reference}: choose one of its leaseholders."
        )))
    }
}

/// What [`Coding::check`] looks at in a line.
pub(crate) struct CodedLine<'a> {
    pub(crate) description: &'a str,
    pub(crate) account_id: Uuid,
    pub(crate) fund_id: Uuid,
    pub(crate) tax_rate_id: Uuid,
    pub(crate) net_pence: i64,
}

/// A site's accounts, funds and the organisation's tax rates, loaded once to check the coding
/// of a document's lines (demands, credit notes, bills).
pub(crate) struct Coding {
    accounts: Vec<ledger::Account>,
    funds: Vec<ledger::Fund>,
    rates: Vec<ledger::TaxRate>,
}

impl Coding {
    pub(crate) async fn load(tx: &mut TenantTx, site: Uuid) -> Result<Self, LedgerError> {
        Ok(Self {
            accounts: ledger::accounts(tx, site).await?,
            funds: ledger::funds(tx, site).await?,
            rates: ledger::tax_rates(tx).await?,
        })
    }

    /// Checks line `n`: its description, one of the site's live accounts (not one the postings
    /// table owns) and funds, a tax rate that applies on `on`, and a net amount more than
    /// nothing and not absurd. Returns the rate's basis points.
    pub(crate) fn check(
        &self,
        n: usize,
        line: CodedLine<'_>,
        on: Date,
    ) -> Result<i32, LedgerError> {
        let CodedLine {
            description,
            account_id,
            fund_id,
            tax_rate_id,
            net_pence,
        } = line;
        let description = description.trim();
        if description.is_empty() || description.chars().count() > 300 {
            return Err(refused(format!(
                "Line {n}: describe it (up to 300 characters)."
            )));
        }
        plain(description, &format!("description of line {n}"))?;
        let Some(account) = self.accounts.iter().find(|a| a.id == account_id) else {
            return Err(refused(format!(
                "Line {n}: choose one of this site's ledger accounts."
            )));
        };
        if account.archived_at.is_some() {
            return Err(refused(format!(
                "Line {n}: {} {} is archived.",
                account.code, account.name
            )));
        }
        if account
            .control
            .as_deref()
            .is_some_and(|c| NOT_FOR_LINES.contains(&c))
        {
            return Err(refused(format!(
                "Line {n}: {} {} is posted to automatically; code the line to an income or expense account.",
                account.code, account.name
            )));
        }
        if !self.funds.iter().any(|f| f.id == fund_id) {
            return Err(refused(format!(
                "Line {n}: choose one of this site's funds."
            )));
        }
        let Some(rate) = self.rates.iter().find(|r| r.id == tax_rate_id) else {
            return Err(refused(format!("Line {n}: choose a tax rate.")));
        };
        if !rate.applies_on(on) {
            return Err(refused(format!(
                "Line {n}: the rate {} does not apply on {}.",
                rate.name,
                long_date(on)
            )));
        }
        if net_pence <= 0 {
            return Err(refused(format!(
                "Line {n}: the amount must be more than £0.00."
            )));
        }
        if net_pence > MAX_LINE_PENCE {
            return Err(refused(format!(
                "Line {n}: the amount is more than £10,000,000,000.00; check the figure."
            )));
        }
        Ok(rate.basis_points)
    }

    /// The rate's name, for messages.
    pub(crate) fn rate_name(&self, id: Uuid) -> &str {
        self.rates
            .iter()
            .find(|r| r.id == id)
            .map_or("", |r| r.name.as_str())
    }
}

/// Checks and prices a document's lines: each on one of the site's live accounts (not one the
/// postings table owns) and funds, with a tax rate that applies on `on`.
pub(crate) async fn price_lines<'a>(
    tx: &mut TenantTx,
    site: Uuid,
    on: Date,
    lines: &'a [DraftLine],
) -> Result<Vec<PricedLine<'a>>, LedgerError> {
    if lines.is_empty() {
        return Err(refused("Add at least one line."));
    }
    if lines.len() > 200 {
        return Err(refused("A document has at most 200 lines."));
    }
    let coding = Coding::load(tx, site).await?;
    let mut priced = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let basis_points = coding.check(
            n,
            CodedLine {
                description: &line.description,
                account_id: line.account_id,
                fund_id: line.fund_id,
                tax_rate_id: line.tax_rate_id,
                net_pence: line.net_pence,
            },
            on,
        )?;
        if let (Some(from), Some(to)) = (line.period_from, line.period_to)
            && to < from
        {
            return Err(refused(format!(
                "Line {n}: the period ends before it starts."
            )));
        }
        priced.push(PricedLine {
            line,
            basis_points,
            vat_pence: vat_pence(line.net_pence, u32::try_from(basis_points).unwrap_or(0)),
        });
    }
    Ok(priced)
}

pub(crate) fn check_reference(reference: Option<&str>) -> Result<Option<String>, LedgerError> {
    let Some(r) = reference.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if r.chars().count() > 200 {
        return Err(refused("The reference is at most 200 characters."));
    }
    plain(r, "reference")?;
    Ok(Some(r.to_owned()))
}

pub(crate) fn check_year(d: Date, what: &str) -> Result<(), LedgerError> {
    if !(2000..=2100).contains(&d.year()) {
        return Err(refused(format!(
            "The {what} must be between 2000 and 2100."
        )));
    }
    Ok(())
}

pub(crate) async fn control(
    tx: &mut TenantTx,
    site: Uuid,
    role: &str,
) -> Result<Uuid, LedgerError> {
    ledger::control_account(tx, site, role)
        .await?
        .map(|a| a.id)
        .ok_or_else(|| {
            refused(format!(
                "This site's chart has no live {} account: restore it in Ledger accounts.",
                role.replace('_', " ")
            ))
        })
}

pub(crate) fn line(account: Uuid, fund: Uuid, amount: i64, unit: Option<Uuid>) -> NewLine {
    NewLine {
        account_id: account,
        fund_id: fund,
        amount_pence: amount,
        unit_id: unit,
        contact_id: None,
        work_order_id: None,
        description: None,
    }
}

/// Adds `amount` to the entry for `key`, or a new entry.
pub(crate) fn add_to<K: PartialEq>(sums: &mut Vec<(K, i64)>, key: K, amount: i64) {
    match sums.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += amount,
        None => sums.push((key, amount)),
    }
}

// ---------------------------------------------------------------------------------------------
// Debtor invoices

#[derive(Debug, Clone)]
pub struct InvoiceInput {
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub kind: InvoiceKind,
    pub reference: Option<String>,
    pub issue_date: Option<Date>,
    pub due_date: Option<Date>,
    pub lines: Vec<DraftLine>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invoice {
    pub id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub kind: String,
    pub number: Option<String>,
    pub reference: Option<String>,
    pub issue_date: Option<Date>,
    pub due_date: Option<Date>,
    pub status: String,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub total_pence: i64,
    pub paid_pence: i64,
    pub jurisdiction: Option<String>,
    pub statutory_text_id: Option<Uuid>,
    pub landlord_name: Option<String>,
    pub landlord_address: Option<String>,
    pub journal_id: Option<Uuid>,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<OffsetDateTime>,
    pub approved_by: Option<String>,
    pub approved_at: Option<OffsetDateTime>,
    pub sent_at: Option<OffsetDateTime>,
    pub voided_at: Option<OffsetDateTime>,
    pub void_reason: Option<String>,
    pub returned_reason: Option<String>,
    pub unit_reference: String,
    pub site_reference: String,
    pub contact_name: String,
}

impl Invoice {
    pub fn status(&self) -> InvoiceStatus {
        InvoiceStatus::parse(&self.status).unwrap_or(InvoiceStatus::Draft)
    }
    pub fn kind(&self) -> InvoiceKind {
        InvoiceKind::parse(&self.kind).unwrap_or(InvoiceKind::Other)
    }
    pub fn balance_pence(&self) -> i64 {
        self.total_pence - self.paid_pence
    }
    /// The number once approved, else "Draft".
    pub fn label(&self) -> String {
        self.number.clone().unwrap_or_else(|| "Draft".to_owned())
    }
}

const INVOICE_COLUMNS: &str = "i.id, i.site_id, i.unit_id, i.contact_id, i.kind, i.number, i.reference,
    i.issue_date, i.due_date, i.status, i.net_pence, i.vat_pence, i.total_pence, i.paid_pence,
    i.jurisdiction, i.statutory_text_id, i.landlord_name, i.landlord_address, i.journal_id,
    i.created_by, i.submitted_by, i.submitted_at, i.approved_by, i.approved_at, i.sent_at,
    i.voided_at, i.void_reason, i.returned_reason, u.reference as unit_reference, s.reference as site_reference,
    c.display_name as contact_name";

const INVOICE_FROM: &str = "from debtor_invoice i
    join unit u on u.organisation_id = i.organisation_id and u.id = i.unit_id
    join site s on s.organisation_id = i.organisation_id and s.id = i.site_id
    join contact c on c.organisation_id = i.organisation_id and c.id = i.contact_id";

pub async fn find_invoice(tx: &mut TenantTx, id: Uuid) -> Result<Option<Invoice>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVOICE_COLUMNS} {INVOICE_FROM} where i.organisation_id = $1 and i.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The unit's invoices, newest first.
pub async fn unit_invoices(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<Invoice>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVOICE_COLUMNS} {INVOICE_FROM} where i.organisation_id = $1 and i.unit_id = $2
          order by i.issue_date desc nulls first, i.created_at desc"
    )))
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

/// The site's invoices in a status (or all), newest first, at most `limit`.
pub async fn site_invoices(
    tx: &mut TenantTx,
    site: Uuid,
    status: Option<InvoiceStatus>,
    limit: i64,
) -> Result<Vec<Invoice>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INVOICE_COLUMNS} {INVOICE_FROM}
          where i.organisation_id = $1 and i.site_id = $2 and ($3::text is null or i.status = $3)
          order by i.issue_date desc nulls first, i.created_at desc limit $4"
    )))
    .bind(tx.org().0)
    .bind(site)
    .bind(status.map(InvoiceStatus::as_str))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceLine {
    pub id: Uuid,
    pub line_no: i16,
    pub description: String,
    pub account_id: Uuid,
    pub account_code: String,
    pub account_name: String,
    pub fund_id: Uuid,
    pub fund_name: String,
    pub tax_rate_id: Uuid,
    pub tax_rate_name: String,
    pub basis_points: i32,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub gross_pence: i64,
    pub period_from: Option<Date>,
    pub period_to: Option<Date>,
    pub paid_pence: i64,
}

pub async fn invoice_lines(tx: &mut TenantTx, invoice: Uuid) -> Result<Vec<InvoiceLine>, DbError> {
    Ok(sqlx::query_as(
        "select l.id, l.line_no, l.description, l.account_id, a.code as account_code,
                a.name as account_name, l.fund_id, f.name as fund_name, l.tax_rate_id,
                t.name as tax_rate_name, l.basis_points, l.net_pence, l.vat_pence, l.gross_pence,
                l.period_from, l.period_to, l.paid_pence
           from debtor_invoice_line l
           join ledger_account a on a.organisation_id = l.organisation_id and a.id = l.account_id
           join fund f on f.organisation_id = l.organisation_id and f.id = l.fund_id
           join tax_rate t on t.organisation_id = l.organisation_id and t.id = l.tax_rate_id
          where l.organisation_id = $1 and l.invoice_id = $2 order by l.line_no",
    )
    .bind(tx.org().0)
    .bind(invoice)
    .fetch_all(tx.conn())
    .await?)
}

/// Saves a draft invoice (new, or replacing a draft's header and lines). Figures are priced
/// here: VAT per line at its rate, rounded to the penny.
pub async fn save_invoice_draft(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &InvoiceInput,
    by: &str,
) -> Result<Uuid, LedgerError> {
    let unit = unit_facts(tx, input.unit_id).await?;
    ledger::ensure_books(tx, unit.site_id).await?;
    ledger::ensure_tax_rates(tx).await?;
    check_billable(tx, input.unit_id, input.contact_id, &unit.reference).await?;
    let reference = check_reference(input.reference.as_deref())?;
    if let Some(d) = input.issue_date {
        check_year(d, "issue date")?;
    }
    if let Some(d) = input.due_date {
        check_year(d, "due date")?;
    }
    if let (Some(issue), Some(due)) = (input.issue_date, input.due_date)
        && due < issue
    {
        return Err(refused("The due date is before the issue date."));
    }
    let on = input
        .issue_date
        .unwrap_or_else(|| OffsetDateTime::now_utc().date());
    let priced = price_lines(tx, unit.site_id, on, &input.lines).await?;
    let net: i64 = priced.iter().map(|p| p.line.net_pence).sum();
    let vat: i64 = priced.iter().map(|p| p.vat_pence).sum();
    if net + vat > MAX_LINE_PENCE {
        return Err(refused(
            "The invoice's total is more than £10,000,000,000.00; check the figures.",
        ));
    }
    let id = match id {
        Some(id) => {
            let current = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
            if current.status() != InvoiceStatus::Draft {
                return Err(refused(format!(
                    "{} is {}: only a draft can be edited.",
                    current.label(),
                    current.status().label().to_lowercase()
                )));
            }
            if current.unit_id != input.unit_id {
                return Err(refused("A draft stays on its unit."));
            }
            sqlx::query(
                "update debtor_invoice set contact_id = $3, kind = $4, reference = $5,
                        issue_date = $6, due_date = $7, net_pence = $8, vat_pence = $9,
                        total_pence = $8 + $9, updated_at = now()
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.contact_id)
            .bind(input.kind.as_str())
            .bind(&reference)
            .bind(input.issue_date)
            .bind(input.due_date)
            .bind(net)
            .bind(vat)
            .execute(tx.conn())
            .await?;
            sqlx::query(
                "delete from debtor_invoice_line where organisation_id = $1 and invoice_id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .execute(tx.conn())
            .await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into debtor_invoice (organisation_id, id, site_id, unit_id, contact_id, kind,
                        reference, issue_date, due_date, net_pence, vat_pence, total_pence, created_by)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10 + $11, $12)",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(unit.site_id)
            .bind(input.unit_id)
            .bind(input.contact_id)
            .bind(input.kind.as_str())
            .bind(&reference)
            .bind(input.issue_date)
            .bind(input.due_date)
            .bind(net)
            .bind(vat)
            .bind(by)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    insert_document_lines(
        tx,
        "debtor_invoice_line",
        "invoice_id",
        id,
        unit.site_id,
        &priced,
    )
    .await?;
    Ok(id)
}

pub(crate) async fn insert_document_lines(
    tx: &mut TenantTx,
    table: &str,
    parent_column: &str,
    parent: Uuid,
    site: Uuid,
    priced: &[PricedLine<'_>],
) -> Result<(), DbError> {
    let ids: Vec<Uuid> = priced.iter().map(|_| Uuid::now_v7()).collect();
    let line_nos: Vec<i16> = (1..=priced.len())
        .map(|n| i16::try_from(n).unwrap_or(i16::MAX))
        .collect();
    let descriptions: Vec<String> = priced
        .iter()
        .map(|p| p.line.description.trim().to_owned())
        .collect();
    let accounts: Vec<Uuid> = priced.iter().map(|p| p.line.account_id).collect();
    let funds: Vec<Uuid> = priced.iter().map(|p| p.line.fund_id).collect();
    let rates: Vec<Uuid> = priced.iter().map(|p| p.line.tax_rate_id).collect();
    let bps: Vec<i32> = priced.iter().map(|p| p.basis_points).collect();
    let nets: Vec<i64> = priced.iter().map(|p| p.line.net_pence).collect();
    let vats: Vec<i64> = priced.iter().map(|p| p.vat_pence).collect();
    let froms: Vec<Option<Date>> = priced.iter().map(|p| p.line.period_from).collect();
    let tos: Vec<Option<Date>> = priced.iter().map(|p| p.line.period_to).collect();
    let period_columns = if table == "debtor_invoice_line" {
        (", period_from, period_to", ", x.pf, x.pt")
    } else {
        ("", "")
    };
    // `table` and `parent_column` are ours (two fixed pairs), never input.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into {table} (organisation_id, id, {parent_column}, site_id, line_no, description,
                account_id, fund_id, tax_rate_id, basis_points, net_pence, vat_pence{})
         select $1, x.id, $2, $3, x.n, x.d, x.a, x.f, x.t, x.bp, x.net, x.vat{}
           from unnest($4::uuid[], $5::int2[], $6::text[], $7::uuid[], $8::uuid[], $9::uuid[],
                       $10::int4[], $11::int8[], $12::int8[], $13::date[], $14::date[])
                as x(id, n, d, a, f, t, bp, net, vat, pf, pt)",
        period_columns.0, period_columns.1
    )))
    .bind(tx.org().0)
    .bind(parent)
    .bind(site)
    .bind(ids)
    .bind(line_nos)
    .bind(descriptions)
    .bind(accounts)
    .bind(funds)
    .bind(rates)
    .bind(bps)
    .bind(nets)
    .bind(vats)
    .bind(froms)
    .bind(tos)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletes a draft (it never had a number).
pub async fn delete_invoice_draft(tx: &mut TenantTx, id: Uuid) -> Result<(), LedgerError> {
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if inv.status() != InvoiceStatus::Draft {
        return Err(refused(format!(
            "{} is {}: only a draft can be deleted; void it with a credit note instead.",
            inv.label(),
            inv.status().label().to_lowercase()
        )));
    }
    sqlx::query("delete from debtor_invoice where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatutoryText {
    pub id: Uuid,
    pub kind: String,
    pub jurisdiction: String,
    pub version: i32,
    pub title: String,
    pub body: String,
    pub source: String,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub verified_on: Option<Date>,
}

pub async fn statutory_text(tx: &mut TenantTx, id: Uuid) -> Result<Option<StatutoryText>, DbError> {
    Ok(sqlx::query_as(
        "select id, kind, jurisdiction, version, title, body, source, valid_from, valid_to,
                verified_on
           from statutory_text where id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The text of a kind in force in a jurisdiction on a date.
async fn statutory_text_in_force(
    tx: &mut TenantTx,
    kind: &str,
    jurisdiction: &str,
    on: Date,
) -> Result<Option<StatutoryText>, DbError> {
    Ok(sqlx::query_as(
        "select id, kind, jurisdiction, version, title, body, source, valid_from, valid_to,
                verified_on
           from statutory_text
          where kind = $1 and jurisdiction = $2 and valid_from <= $3
            and (valid_to is null or valid_to >= $3)",
    )
    .bind(kind)
    .bind(jurisdiction)
    .bind(on)
    .fetch_optional(tx.conn())
    .await?)
}

#[derive(sqlx::FromRow)]
struct Landlord {
    jurisdiction: String,
    landlord_name: Option<String>,
    landlord_address_line_1: Option<String>,
    landlord_address_line_2: Option<String>,
    landlord_city: Option<String>,
    landlord_postcode: Option<String>,
    site_reference: String,
}

/// What an issued demand carries by law, checked before it is issued.
pub(crate) struct StatutoryContent {
    pub(crate) jurisdiction: String,
    pub(crate) text: Option<StatutoryText>,
    pub(crate) landlord_name: String,
    pub(crate) landlord_address: String,
}

fn jurisdiction_label(j: &str) -> &'static str {
    if j == "wales" { "Wales" } else { "England" }
}

/// Checks that the demand can be issued with what the law requires it to carry: the
/// landlord's name and an address in England and Wales (Landlord and Tenant Act 1987 ss.47–48)
/// on every demand, the prescribed summary of rights and obligations on a service-charge
/// demand, and the prescribed notice form, a period and a due date 30–60 days after the notice
/// on a ground-rent demand.
pub(crate) async fn statutory_content(
    tx: &mut TenantTx,
    inv: &Invoice,
    lines: &[InvoiceLine],
) -> Result<StatutoryContent, LedgerError> {
    let l: Landlord = sqlx::query_as(
        "select jurisdiction, landlord_name, landlord_address_line_1, landlord_address_line_2,
                landlord_city, landlord_postcode, reference as site_reference
           from site where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(inv.site_id)
    .fetch_one(tx.conn())
    .await?;
    let name = l
        .landlord_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let line_1 = l
        .landlord_address_line_1
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let postcode = l
        .landlord_postcode
        .as_deref()
        .and_then(|p| Postcode::parse(p).ok());
    let (Some(name), Some(line_1), Some(postcode)) = (name, line_1, postcode) else {
        return Err(refused(format!(
            "A demand must show the landlord's name and an address in England and Wales (Landlord and Tenant Act 1987 ss.47–48): add the landlord's name, address and postcode to site {}'s details first.",
            l.site_reference
        )));
    };
    if !postcode.in_england_or_wales() {
        return Err(refused(format!(
            "The landlord's address for site {} ({}) is not in England or Wales; a demand must give an address in England and Wales for notices (Landlord and Tenant Act 1987 s.48).",
            l.site_reference,
            postcode.as_str()
        )));
    }
    let address = [
        Some(line_1),
        l.landlord_address_line_2.as_deref().map(str::trim),
        l.landlord_city.as_deref().map(str::trim),
        Some(postcode.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(", ");
    let issue = inv
        .issue_date
        .ok_or_else(|| refused("Give the invoice an issue date."))?;
    let due = inv
        .due_date
        .ok_or_else(|| refused("Give the invoice a due date."))?;
    let text = match inv.kind().statutory_kind() {
        None => None,
        Some(kind) => {
            let text = statutory_text_in_force(tx, kind, &l.jurisdiction, issue).await?;
            let Some(text) = text else {
                let what = if kind == "ground_rent_notice" {
                    "prescribed ground rent notice form"
                } else {
                    "prescribed summary of tenants' rights and obligations"
                };
                return Err(refused(format!(
                    "No {what} for {} is in force on {}: it must be loaded before this demand can be issued.",
                    jurisdiction_label(&l.jurisdiction),
                    long_date(issue)
                )));
            };
            Some(text)
        }
    };
    if inv.kind() == InvoiceKind::GroundRent {
        if !ground_rent_due_in_window(issue, due) {
            return Err(refused(format!(
                "A ground rent demand must fall due 30 to 60 days after the notice is given (Commonhold and Leasehold Reform Act 2002 s.166): issued on {}, it may be due from {} to {}.",
                long_date(issue),
                long_date(issue.saturating_add(time::Duration::days(30))),
                long_date(issue.saturating_add(time::Duration::days(60)))
            )));
        }
        if lines
            .iter()
            .any(|l| l.period_from.is_none() || l.period_to.is_none())
        {
            return Err(refused(
                "A ground rent demand states the period the rent is for: give each line its period.",
            ));
        }
    }
    Ok(StatutoryContent {
        jurisdiction: l.jurisdiction,
        text,
        landlord_name: name.to_owned(),
        landlord_address: address,
    })
}

/// The prescribed text an issued demand carries, filled from the demand.
pub async fn demand_statutory_text(
    tx: &mut TenantTx,
    inv: &Invoice,
) -> Result<Option<(StatutoryText, String)>, DbError> {
    let Some(id) = inv.statutory_text_id else {
        return Ok(None);
    };
    let Some(text) = statutory_text(tx, id).await? else {
        return Ok(None);
    };
    let lines = invoice_lines(tx, inv.id).await?;
    let premises: Option<String> = sqlx::query_scalar(
        "select concat_ws(', ', u.reference, nullif(s.name, ''), nullif(s.address_line_1, ''),
                          nullif(s.city, ''), nullif(s.postcode, ''))
           from unit u join site s on s.organisation_id = u.organisation_id and s.id = u.site_id
          where u.organisation_id = $1 and u.id = $2",
    )
    .bind(tx.org().0)
    .bind(inv.unit_id)
    .fetch_optional(tx.conn())
    .await?;
    let from = lines.iter().filter_map(|l| l.period_from).min();
    let to = lines.iter().filter_map(|l| l.period_to).max();
    let filled = fill_placeholders(
        &text.body,
        &[
            ("leaseholder", inv.contact_name.clone()),
            ("premises", premises.unwrap_or_default()),
            ("amount", format_pence(inv.total_pence)),
            ("due_date", inv.due_date.map(long_date).unwrap_or_default()),
            ("period_from", from.map(long_date).unwrap_or_default()),
            ("period_to", to.map(long_date).unwrap_or_default()),
            ("payee", inv.landlord_name.clone().unwrap_or_default()),
            (
                "payee_address",
                inv.landlord_address.clone().unwrap_or_default(),
            ),
            (
                "landlord_name",
                inv.landlord_name.clone().unwrap_or_default(),
            ),
            (
                "landlord_address",
                inv.landlord_address.clone().unwrap_or_default(),
            ),
        ],
    );
    Ok(Some((text, filled)))
}

/// What approving did: posted with its number, or signed and waiting for others in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Posted(String),
    Waiting(Vec<String>),
}

impl Approval {
    /// The number, when posted.
    pub fn posted(self) -> Option<String> {
        match self {
            Self::Posted(n) => Some(n),
            Self::Waiting(_) => None,
        }
    }
}

/// Draft → awaiting approval: complete, and carrying what the law requires. Opens the approval
/// request when a chain covers it.
pub async fn submit_invoice(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let by = who.name.as_str();
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if inv.status() != InvoiceStatus::Draft {
        return Err(refused(format!(
            "{} is {}: only a draft is submitted.",
            inv.label(),
            inv.status().label().to_lowercase()
        )));
    }
    let lines = invoice_lines(tx, id).await?;
    if lines.is_empty() {
        return Err(refused("Add at least one line before submitting."));
    }
    statutory_content(tx, &inv, &lines).await?;
    approvals::open_request(
        tx,
        &Subject {
            record_type: "debtor_invoice",
            record_id: id,
            amount_pence: inv.total_pence,
            site_id: Some(inv.site_id),
            category: Some(inv.kind().as_str()),
        },
        who.membership_id,
    )
    .await?;
    sqlx::query(
        "update debtor_invoice set status = 'awaiting_approval', submitted_by = $3,
                submitted_at = $4, updated_at = now()
          where organisation_id = $1 and id = $2 and status = 'draft'",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Sends an invoice awaiting approval back to draft, with the reason (kept in its history).
pub async fn reject_invoice(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if inv.status() != InvoiceStatus::AwaitingApproval {
        return Err(refused(
            "Only an invoice awaiting approval can be sent back.",
        ));
    }
    let reason = reason.trim();
    plain(reason, "reason")?;
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused("Say why it goes back (up to 300 characters)."));
    }
    approvals::reject(tx, "debtor_invoice", id, who, reason, now.date(), now).await?;
    sqlx::query(
        "update debtor_invoice set status = 'draft', submitted_by = null, submitted_at = null,
                returned_reason = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Approves an invoice awaiting approval as `who`: signs its approval chain if one covers it,
/// and once the chain is complete (or none applies) posts it.
pub async fn approve_invoice(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Approval, LedgerError> {
    lock_books(tx).await?;
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if inv.status() != InvoiceStatus::AwaitingApproval {
        return Err(refused(format!(
            "{} is {}: only an invoice awaiting approval is approved.",
            inv.label(),
            inv.status().label().to_lowercase()
        )));
    }
    match approvals::sign(tx, "debtor_invoice", id, who, now.date(), now).await? {
        Signed::Waiting(left) => Ok(Approval::Waiting(left)),
        Signed::NoChain | Signed::Complete => post_invoice(tx, &inv, &who.name, now)
            .await
            .map(Approval::Posted),
    }
}

/// The Organisation Owner approves an invoice past its chain, with a reason; every approver in
/// the chain is told. Posts it.
pub async fn bypass_invoice(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    lock_books(tx).await?;
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if inv.status() != InvoiceStatus::AwaitingApproval {
        return Err(refused(
            "Only an invoice awaiting approval can be approved.",
        ));
    }
    let label = format!(
        "{} for unit {} ({})",
        inv.kind().label().to_lowercase(),
        inv.unit_reference,
        format_pence(inv.total_pence)
    );
    if !approvals::bypass(tx, "debtor_invoice", id, &label, who, reason, now).await? {
        return Err(refused(
            "No approval chain is waiting on this invoice: approve it instead.",
        ));
    }
    post_invoice(tx, &inv, &who.name, now).await
}

/// What an invoice's journal is made from.
pub(crate) struct InvoiceHeader<'a> {
    pub(crate) id: Uuid,
    pub(crate) site_id: Uuid,
    pub(crate) unit_id: Uuid,
    pub(crate) contact_id: Uuid,
    pub(crate) kind: InvoiceKind,
    pub(crate) number: &'a str,
    pub(crate) reference: Option<&'a str>,
    pub(crate) issue: Date,
}

/// One priced line of an invoice, as posted.
pub(crate) struct PostedLine<'a> {
    pub(crate) account_id: Uuid,
    pub(crate) fund_id: Uuid,
    pub(crate) net_pence: i64,
    pub(crate) vat_pence: i64,
    pub(crate) description: &'a str,
}

/// An invoice's journal: Dr debtors control per fund (naming the unit and contact), Cr each
/// line's account its net, Cr VAT per fund. The single and the bulk paths both post this.
pub(crate) fn invoice_journal(
    h: &InvoiceHeader<'_>,
    lines: &[PostedLine<'_>],
    debtors: Uuid,
    vat: Uuid,
) -> NewJournal {
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    let mut vat_per_fund: Vec<(Uuid, i64)> = Vec::new();
    for l in lines {
        add_to(&mut per_fund, l.fund_id, l.net_pence + l.vat_pence);
        if l.vat_pence > 0 {
            add_to(&mut vat_per_fund, l.fund_id, l.vat_pence);
        }
    }
    let mut journal_lines = Vec::with_capacity(per_fund.len() + lines.len() + vat_per_fund.len());
    for (fund, gross) in &per_fund {
        let mut d = line(debtors, *fund, *gross, Some(h.unit_id));
        d.contact_id = Some(h.contact_id);
        journal_lines.push(d);
    }
    for l in lines {
        let mut c = line(l.account_id, l.fund_id, -l.net_pence, Some(h.unit_id));
        c.description = Some(l.description.trim().to_owned());
        journal_lines.push(c);
    }
    for (fund, v) in &vat_per_fund {
        journal_lines.push(line(vat, *fund, -v, Some(h.unit_id)));
    }
    let number = h.number;
    let description = match h.reference {
        Some(r) => format!("{} {number}: {r}", h.kind.label()),
        None => format!("{} {number}", h.kind.label()),
    };
    NewJournal {
        site_id: h.site_id,
        date: h.issue,
        description: truncate(&description, 300),
        source_type: "debtor_invoice".into(),
        source_id: Some(h.id),
        lines: journal_lines,
    }
}

/// Numbers an invoice, records its statutory content and posts its journal (Dr debtors
/// control per fund, Cr each line's account, Cr VAT per fund).
async fn post_invoice(
    tx: &mut TenantTx,
    inv: &Invoice,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    let id = inv.id;
    let lines = invoice_lines(tx, id).await?;
    let content = statutory_content(tx, inv, &lines).await?;
    let issue = inv
        .issue_date
        .ok_or_else(|| refused("Give the invoice an issue date."))?;
    let debtors = control(tx, inv.site_id, "debtors").await?;
    let vat = control(tx, inv.site_id, "vat").await?;
    let number = next_number(tx, "debtor_invoice", "INV", issue.year()).await?;
    let posted: Vec<PostedLine<'_>> = lines
        .iter()
        .map(|l| PostedLine {
            account_id: l.account_id,
            fund_id: l.fund_id,
            net_pence: l.net_pence,
            vat_pence: l.vat_pence,
            description: &l.description,
        })
        .collect();
    let journal = invoice_journal(
        &InvoiceHeader {
            id,
            site_id: inv.site_id,
            unit_id: inv.unit_id,
            contact_id: inv.contact_id,
            kind: inv.kind(),
            number: &number,
            reference: inv.reference.as_deref(),
            issue,
        },
        &posted,
        debtors,
        vat,
    );
    let (journal, _) = ledger::post(tx, &journal, by, now).await?;
    sqlx::query(
        "update debtor_invoice set status = 'approved', number = $3, jurisdiction = $4,
                statutory_text_id = $5, landlord_name = $6, landlord_address = $7,
                journal_id = $8, approved_by = $9, approved_at = $10, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&number)
    .bind(&content.jurisdiction)
    .bind(content.text.as_ref().map(|t| t.id))
    .bind(&content.landlord_name)
    .bind(&content.landlord_address)
    .bind(journal)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    // A demand is not issued with blanks in its prescribed text.
    if let Some(inv) = find_invoice(tx, id).await?
        && let Some((_, filled)) = demand_statutory_text(tx, &inv).await?
    {
        let blanks = unfilled_placeholders(&filled);
        if !blanks.is_empty() {
            return Err(refused(format!(
                "The prescribed text would be issued with blanks ({}): complete the demand and the site's details.",
                blanks.join(", ")
            )));
        }
    }
    Ok(number)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Marks an approved invoice sent (its e-mail goes through the job queue).
pub async fn mark_sent(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if !inv.status().is_open_or_settled() {
        return Err(refused(format!(
            "{} is {}: only an approved invoice is sent.",
            inv.label(),
            inv.status().label().to_lowercase()
        )));
    }
    sqlx::query(
        "update debtor_invoice set sent_at = coalesce(sent_at, $3),
                status = case when status = 'approved' then 'sent' else status end,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Voids an unpaid approved invoice: a credit note for its whole amount, on its own lines,
/// approved and set against it, and the invoice marked voided.
pub async fn void_invoice(
    tx: &mut TenantTx,
    id: Uuid,
    on: Date,
    reason: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    lock_books(tx).await?;
    let inv = find_invoice(tx, id).await?.ok_or(LedgerError::NotFound)?;
    match inv.status() {
        InvoiceStatus::Draft | InvoiceStatus::AwaitingApproval => {
            return Err(refused(format!(
                "{} has not been approved: delete the draft or send it back instead.",
                inv.label()
            )));
        }
        InvoiceStatus::Voided => {
            return Err(refused(format!("{} is already voided.", inv.label())));
        }
        _ => {}
    }
    if inv.paid_pence > 0 {
        return Err(refused(format!(
            "{} has been paid or credited {} already: credit the unpaid {} with a credit note, or reverse the payment first.",
            inv.label(),
            format_pence(inv.paid_pence),
            format_pence(inv.balance_pence())
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused(
            "Say why the invoice is voided (up to 300 characters).",
        ));
    }
    plain(reason, "reason")?;
    let issue = inv.issue_date.unwrap_or(on);
    if on < issue {
        return Err(refused(format!(
            "The void cannot be dated before the invoice ({}).",
            long_date(issue)
        )));
    }
    let lines = invoice_lines(tx, id).await?;
    let drafts: Vec<DraftLine> = lines
        .iter()
        .map(|l| DraftLine {
            description: l.description.clone(),
            account_id: l.account_id,
            fund_id: l.fund_id,
            tax_rate_id: l.tax_rate_id,
            net_pence: l.net_pence,
            period_from: l.period_from,
            period_to: l.period_to,
        })
        .collect();
    // The credit note mirrors the invoice's own rates and VAT, whatever the rates are now.
    let credit = Uuid::now_v7();
    sqlx::query(
        "insert into credit_note (organisation_id, id, site_id, unit_id, contact_id, invoice_id,
                purpose, reason, issue_date, net_pence, vat_pence, total_pence, created_by,
                submitted_by, submitted_at, status)
         values ($1, $2, $3, $4, $5, $6, 'void', $7, $8, $9, $10, $9 + $10, $11, $11, $12, 'draft')",
    )
    .bind(tx.org().0)
    .bind(credit)
    .bind(inv.site_id)
    .bind(inv.unit_id)
    .bind(inv.contact_id)
    .bind(id)
    .bind(format!("Void of {}: {reason}", inv.label()))
    .bind(on)
    .bind(inv.net_pence)
    .bind(inv.vat_pence)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let priced: Vec<PricedLine<'_>> = drafts
        .iter()
        .zip(&lines)
        .map(|(d, l)| PricedLine {
            line: d,
            basis_points: l.basis_points,
            vat_pence: l.vat_pence,
        })
        .collect();
    insert_document_lines(
        tx,
        "credit_note_line",
        "credit_note_id",
        credit,
        inv.site_id,
        &priced,
    )
    .await?;
    sqlx::query(
        "update credit_note set status = 'awaiting_approval' where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(credit)
    .execute(tx.conn())
    .await?;
    let number = post_credit_note(tx, credit, by, now).await?;
    sqlx::query(
        "update debtor_invoice set status = 'voided', voided_at = $3, void_reason = $4,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(number)
}

// ---------------------------------------------------------------------------------------------
// Credit notes

#[derive(Debug, Clone)]
pub struct CreditInput {
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub invoice_id: Option<Uuid>,
    pub reason: String,
    pub issue_date: Option<Date>,
    pub lines: Vec<DraftLine>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreditNote {
    pub id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub contact_id: Uuid,
    pub invoice_id: Option<Uuid>,
    pub invoice_number: Option<String>,
    pub purpose: String,
    pub number: Option<String>,
    pub reason: String,
    pub issue_date: Option<Date>,
    pub status: String,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub total_pence: i64,
    pub allocated_pence: i64,
    pub journal_id: Option<Uuid>,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<OffsetDateTime>,
    pub unit_reference: String,
    pub contact_name: String,
}

impl CreditNote {
    pub fn label(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| "Draft credit note".to_owned())
    }
    /// Credit not yet set against invoices or refunded.
    pub fn available_pence(&self) -> i64 {
        if self.status == "approved" {
            self.total_pence - self.allocated_pence
        } else {
            0
        }
    }
}

const CREDIT_SELECT: &str = "select n.id, n.site_id, n.unit_id, n.contact_id, n.invoice_id,
        i.number as invoice_number, n.purpose, n.number, n.reason, n.issue_date, n.status,
        n.net_pence, n.vat_pence, n.total_pence, n.allocated_pence, n.journal_id, n.created_by,
        n.submitted_by, n.approved_by, n.approved_at, u.reference as unit_reference,
        c.display_name as contact_name
   from credit_note n
   join unit u on u.organisation_id = n.organisation_id and u.id = n.unit_id
   join contact c on c.organisation_id = n.organisation_id and c.id = n.contact_id
   left join debtor_invoice i on i.organisation_id = n.organisation_id and i.id = n.invoice_id";

pub async fn find_credit_note(tx: &mut TenantTx, id: Uuid) -> Result<Option<CreditNote>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CREDIT_SELECT} where n.organisation_id = $1 and n.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn unit_credit_notes(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<CreditNote>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CREDIT_SELECT} where n.organisation_id = $1 and n.unit_id = $2
          order by n.issue_date desc nulls first, n.created_at desc"
    )))
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreditLine {
    pub id: Uuid,
    pub line_no: i16,
    pub description: String,
    pub account_id: Uuid,
    pub account_code: String,
    pub account_name: String,
    pub fund_id: Uuid,
    pub fund_name: String,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub gross_pence: i64,
    pub allocated_pence: i64,
}

pub async fn credit_lines(tx: &mut TenantTx, credit: Uuid) -> Result<Vec<CreditLine>, DbError> {
    Ok(sqlx::query_as(
        "select l.id, l.line_no, l.description, l.account_id, a.code as account_code,
                a.name as account_name, l.fund_id, f.name as fund_name, l.net_pence, l.vat_pence,
                l.gross_pence, l.allocated_pence
           from credit_note_line l
           join ledger_account a on a.organisation_id = l.organisation_id and a.id = l.account_id
           join fund f on f.organisation_id = l.organisation_id and f.id = l.fund_id
          where l.organisation_id = $1 and l.credit_note_id = $2 order by l.line_no",
    )
    .bind(tx.org().0)
    .bind(credit)
    .fetch_all(tx.conn())
    .await?)
}

/// Saves a draft credit note, on the unit's own invoice when it corrects one.
pub async fn save_credit_draft(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &CreditInput,
    by: &str,
) -> Result<Uuid, LedgerError> {
    let unit = unit_facts(tx, input.unit_id).await?;
    ledger::ensure_books(tx, unit.site_id).await?;
    ledger::ensure_tax_rates(tx).await?;
    check_billable(tx, input.unit_id, input.contact_id, &unit.reference).await?;
    if let Some(invoice) = input.invoice_id {
        let inv = find_invoice(tx, invoice)
            .await?
            .ok_or(LedgerError::NotFound)?;
        if inv.unit_id != input.unit_id {
            return Err(refused("That invoice is for another unit."));
        }
        if !inv.status().is_open_or_settled() {
            return Err(refused(format!(
                "{} is {}: a credit note corrects an approved invoice.",
                inv.label(),
                inv.status().label().to_lowercase()
            )));
        }
    }
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused(
            "Say why the credit is given (up to 300 characters).",
        ));
    }
    plain(reason, "reason")?;
    if let Some(d) = input.issue_date {
        check_year(d, "issue date")?;
    }
    let on = input
        .issue_date
        .unwrap_or_else(|| OffsetDateTime::now_utc().date());
    let priced = price_lines(tx, unit.site_id, on, &input.lines).await?;
    let net: i64 = priced.iter().map(|p| p.line.net_pence).sum();
    let vat: i64 = priced.iter().map(|p| p.vat_pence).sum();
    if net + vat > MAX_LINE_PENCE {
        return Err(refused(
            "The credit's total is more than £10,000,000,000.00.",
        ));
    }
    let id = match id {
        Some(id) => {
            let current = find_credit_note(tx, id)
                .await?
                .ok_or(LedgerError::NotFound)?;
            if current.status != "draft" || current.unit_id != input.unit_id {
                return Err(refused(format!(
                    "{} is no longer a draft of this unit: it cannot be edited.",
                    current.label()
                )));
            }
            sqlx::query(
                "update credit_note set contact_id = $3, invoice_id = $4, reason = $5,
                        issue_date = $6, net_pence = $7, vat_pence = $8, total_pence = $7 + $8,
                        updated_at = now()
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.contact_id)
            .bind(input.invoice_id)
            .bind(reason)
            .bind(input.issue_date)
            .bind(net)
            .bind(vat)
            .execute(tx.conn())
            .await?;
            sqlx::query(
                "delete from credit_note_line where organisation_id = $1 and credit_note_id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .execute(tx.conn())
            .await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into credit_note (organisation_id, id, site_id, unit_id, contact_id,
                        invoice_id, reason, issue_date, net_pence, vat_pence, total_pence, created_by)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9 + $10, $11)",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(unit.site_id)
            .bind(input.unit_id)
            .bind(input.contact_id)
            .bind(input.invoice_id)
            .bind(reason)
            .bind(input.issue_date)
            .bind(net)
            .bind(vat)
            .bind(by)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    insert_document_lines(
        tx,
        "credit_note_line",
        "credit_note_id",
        id,
        unit.site_id,
        &priced,
    )
    .await?;
    Ok(id)
}

pub async fn submit_credit_note(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let by = who.name.as_str();
    let n = find_credit_note(tx, id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    if n.status != "draft" {
        return Err(refused(format!("{} is not a draft.", n.label())));
    }
    if n.issue_date.is_none() {
        return Err(refused("Give the credit note an issue date."));
    }
    approvals::open_request(
        tx,
        &Subject {
            record_type: "credit_note",
            record_id: id,
            amount_pence: n.total_pence,
            site_id: Some(n.site_id),
            category: None,
        },
        who.membership_id,
    )
    .await?;
    sqlx::query(
        "update credit_note set status = 'awaiting_approval', submitted_by = $3, submitted_at = $4,
                updated_at = now()
          where organisation_id = $1 and id = $2 and status = 'draft'",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Approves a credit note awaiting approval: numbered, posted, and set against its invoice's
/// open lines of the same funds (the rest is credit on account).
pub async fn approve_credit_note(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Approval, LedgerError> {
    lock_books(tx).await?;
    let n = find_credit_note(tx, id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    if n.status != "awaiting_approval" {
        return Err(refused(format!("{} is not awaiting approval.", n.label())));
    }
    match approvals::sign(tx, "credit_note", id, who, now.date(), now).await? {
        Signed::Waiting(left) => Ok(Approval::Waiting(left)),
        Signed::NoChain | Signed::Complete => post_credit_note(tx, id, &who.name, now)
            .await
            .map(Approval::Posted),
    }
}

/// Numbers and posts a credit note (Dr each line's account and VAT, Cr debtors control per
/// fund), then sets it against its invoice.
async fn post_credit_note(
    tx: &mut TenantTx,
    id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    let n = find_credit_note(tx, id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    let issue = n
        .issue_date
        .ok_or_else(|| refused("Give the credit note an issue date."))?;
    let lines = credit_lines(tx, id).await?;
    let debtors = control(tx, n.site_id, "debtors").await?;
    let vat = control(tx, n.site_id, "vat").await?;
    let number = next_number(tx, "credit_note", "CRN", issue.year()).await?;
    let mut journal_lines = Vec::new();
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    let mut vat_per_fund: Vec<(Uuid, i64)> = Vec::new();
    for l in &lines {
        add_to(&mut per_fund, l.fund_id, l.gross_pence);
        if l.vat_pence > 0 {
            add_to(&mut vat_per_fund, l.fund_id, l.vat_pence);
        }
        let mut d = line(l.account_id, l.fund_id, l.net_pence, Some(n.unit_id));
        d.description = Some(l.description.clone());
        journal_lines.push(d);
    }
    for (fund, v) in &vat_per_fund {
        journal_lines.push(line(vat, *fund, *v, Some(n.unit_id)));
    }
    for (fund, gross) in &per_fund {
        let mut c = line(debtors, *fund, -gross, Some(n.unit_id));
        c.contact_id = Some(n.contact_id);
        journal_lines.push(c);
    }
    let (journal, _) = ledger::post(
        tx,
        &NewJournal {
            site_id: n.site_id,
            date: issue,
            description: truncate(&format!("Credit note {number}: {}", n.reason), 300),
            source_type: "credit_note".into(),
            source_id: Some(id),
            lines: journal_lines,
        },
        by,
        now,
    )
    .await?;
    sqlx::query(
        "update credit_note set status = 'approved', number = $3, journal_id = $4,
                approved_by = $5, approved_at = $6, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&number)
    .bind(journal)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if let Some(invoice) = n.invoice_id {
        let open: Vec<OpenLine> = open_lines(tx, n.unit_id)
            .await?
            .into_iter()
            .filter(|l| l.invoice_id == invoice)
            .collect();
        let mut plan = Vec::new();
        for cl in &lines {
            let same_fund: Vec<&OpenLine> =
                open.iter().filter(|o| o.fund_id == cl.fund_id).collect();
            let owed: Vec<i64> = same_fund
                .iter()
                .map(|o| o.outstanding_pence - planned_for(&plan, o.id))
                .collect();
            let (taken, _) = settle_in_order(cl.gross_pence, &owed);
            for (i, amount) in taken {
                plan.push(Planned {
                    invoice_line: same_fund[i].id,
                    fund: cl.fund_id,
                    source: Source::CreditLine(cl.id),
                    amount,
                });
            }
        }
        insert_allocations(tx, n.site_id, n.unit_id, issue, &plan, None, by).await?;
    }
    Ok(number)
}

fn planned_for(plan: &[Planned], line: Uuid) -> i64 {
    plan.iter()
        .filter(|p| p.invoice_line == line)
        .map(|p| p.amount)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Open lines and allocations

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenLine {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub line_no: i16,
    pub description: String,
    pub fund_id: Uuid,
    pub due_date: Date,
    pub outstanding_pence: i64,
}

/// The unit's approved, unvoided invoice lines with something owing, oldest first (by due
/// date, then issue date, number and line).
pub async fn open_lines(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<OpenLine>, DbError> {
    Ok(sqlx::query_as(
        "select l.id, l.invoice_id, i.number as invoice_number, l.line_no, l.description,
                l.fund_id, i.due_date, l.gross_pence - l.paid_pence as outstanding_pence
           from debtor_invoice i
           join debtor_invoice_line l on l.organisation_id = i.organisation_id and l.invoice_id = i.id
          where i.organisation_id = $1 and i.unit_id = $2
            and i.status in ('approved', 'sent', 'part_paid')
            and l.gross_pence > l.paid_pence
          order by i.due_date, i.issue_date, i.number, l.line_no",
    )
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Receipt(Uuid),
    CreditLine(Uuid),
}

#[derive(Debug, Clone)]
struct Planned {
    invoice_line: Uuid,
    fund: Uuid,
    source: Source,
    amount: i64,
}

async fn insert_allocations(
    tx: &mut TenantTx,
    site: Uuid,
    unit: Uuid,
    on: Date,
    plan: &[Planned],
    journal: Option<Uuid>,
    by: &str,
) -> Result<(), DbError> {
    for p in plan {
        let (receipt, credit) = match p.source {
            Source::Receipt(r) => (Some(r), None),
            Source::CreditLine(c) => (None, Some(c)),
        };
        sqlx::query(
            "insert into allocation (organisation_id, id, site_id, unit_id, allocated_on,
                    amount_pence, receipt_id, credit_note_line_id, invoice_line_id, fund_id,
                    journal_id, created_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(site)
        .bind(unit)
        .bind(on)
        .bind(p.amount)
        .bind(receipt)
        .bind(credit)
        .bind(p.invoice_line)
        .bind(p.fund)
        .bind(journal)
        .bind(by)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Where money goes: oldest first, or the lines chosen with an amount each.
#[derive(Debug, Clone)]
pub enum Allocate {
    OldestFirst,
    Lines(Vec<(Uuid, i64)>),
    /// Held as credit on account.
    None,
}

/// Plans settling up to `available` from a source: the chosen lines (each checked against
/// what it still owes), or the open lines oldest first; `fund` limits it to one fund's lines
/// (a credit settles only its own fund).
async fn plan_settlement(
    tx: &mut TenantTx,
    unit: Uuid,
    unit_reference: &str,
    available: i64,
    how: &Allocate,
    source: Source,
    fund: Option<Uuid>,
) -> Result<Vec<Planned>, LedgerError> {
    let open = open_lines(tx, unit).await?;
    let mut plan = Vec::new();
    match how {
        Allocate::None => {}
        Allocate::OldestFirst => {
            let eligible: Vec<&OpenLine> = open
                .iter()
                .filter(|o| fund.is_none_or(|f| f == o.fund_id))
                .collect();
            let owed: Vec<i64> = eligible.iter().map(|o| o.outstanding_pence).collect();
            let (taken, _) = settle_in_order(available, &owed);
            for (i, amount) in taken {
                plan.push(Planned {
                    invoice_line: eligible[i].id,
                    fund: eligible[i].fund_id,
                    source,
                    amount,
                });
            }
        }
        Allocate::Lines(chosen) => {
            let mut total = 0i64;
            for (line_id, amount) in chosen {
                if *amount <= 0 {
                    return Err(refused("Each amount allocated must be more than £0.00."));
                }
                let Some(o) = open.iter().find(|o| o.id == *line_id) else {
                    return Err(closed_line_reason(tx, *line_id, unit, unit_reference).await?);
                };
                let already = plan
                    .iter()
                    .filter(|p: &&Planned| p.invoice_line == o.id)
                    .map(|p| p.amount)
                    .sum::<i64>();
                if already + amount > o.outstanding_pence {
                    return Err(refused(format!(
                        "{} line {} has {} outstanding: {} is more than that.",
                        o.invoice_number,
                        o.line_no,
                        format_pence(o.outstanding_pence),
                        format_pence(already + amount)
                    )));
                }
                if let Some(f) = fund
                    && f != o.fund_id
                {
                    return Err(refused(format!(
                        "{} line {} is in another fund: a credit settles only lines of its own fund.",
                        o.invoice_number, o.line_no
                    )));
                }
                total += amount;
                plan.push(Planned {
                    invoice_line: o.id,
                    fund: o.fund_id,
                    source,
                    amount: *amount,
                });
            }
            if total > available {
                return Err(refused(format!(
                    "{} is allocated but only {} is available.",
                    format_pence(total),
                    format_pence(available)
                )));
            }
        }
    }
    Ok(plan)
}

/// Why a chosen line cannot take money, in words.
async fn closed_line_reason(
    tx: &mut TenantTx,
    line: Uuid,
    unit: Uuid,
    unit_reference: &str,
) -> Result<LedgerError, DbError> {
    let found: Option<(Uuid, Option<String>, String, i16)> = sqlx::query_as(
        "select i.unit_id, i.number, i.status, l.line_no from debtor_invoice_line l
           join debtor_invoice i on i.organisation_id = l.organisation_id and i.id = l.invoice_id
          where l.organisation_id = $1 and l.id = $2",
    )
    .bind(tx.org().0)
    .bind(line)
    .fetch_optional(tx.conn())
    .await?;
    Ok(match found {
        Some((u, number, status, line_no)) if u == unit => {
            let number = number.unwrap_or_else(|| "The draft".into());
            match status.as_str() {
                "voided" => refused(format!("{number} was voided: it cannot be paid.")),
                "draft" | "awaiting_approval" => refused(format!(
                    "{number} has not been approved: it cannot be paid yet."
                )),
                _ => refused(format!("{number} line {line_no} is already paid in full.")),
            }
        }
        _ => refused(format!(
            "That invoice line is not one of {unit_reference}'s."
        )),
    })
}

// ---------------------------------------------------------------------------------------------
// Receipts

#[derive(Debug, Clone)]
pub struct ReceiptInput {
    pub unit_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub received_on: Date,
    pub amount_pence: i64,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    /// The site's bank ledger account; its first bank account if none.
    pub bank_account_id: Option<Uuid>,
    /// The fund that holds any credit on account; the service charge fund if none.
    pub fund_id: Option<Uuid>,
    pub allocate: Allocate,
    pub channel: &'static str,
    /// The batch it was recorded in, if any ([`record_batch`]).
    pub batch_id: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receipt {
    pub id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub number: String,
    pub received_on: Date,
    pub amount_pence: i64,
    pub method: String,
    pub reference: Option<String>,
    pub bank_account_id: Uuid,
    pub fund_id: Uuid,
    pub allocated_pence: i64,
    pub channel: String,
    pub journal_id: Uuid,
    pub status: String,
    pub reversed_on: Option<Date>,
    pub reversal_reason: Option<String>,
    pub recorded_by: String,
    pub unit_reference: String,
}

impl Receipt {
    pub fn method(&self) -> PaymentMethod {
        PaymentMethod::parse(&self.method).unwrap_or(PaymentMethod::Other)
    }
    pub fn available_pence(&self) -> i64 {
        if self.status == "posted" {
            self.amount_pence - self.allocated_pence
        } else {
            0
        }
    }
}

const RECEIPT_SELECT: &str = "select r.id, r.site_id, r.unit_id, r.contact_id,
        c.display_name as contact_name, r.number, r.received_on, r.amount_pence, r.method,
        r.reference, r.bank_account_id, r.fund_id, r.allocated_pence, r.channel, r.journal_id,
        r.status, r.reversed_on, r.reversal_reason, r.recorded_by, u.reference as unit_reference
   from receipt r
   join unit u on u.organisation_id = r.organisation_id and u.id = r.unit_id
   left join contact c on c.organisation_id = r.organisation_id and c.id = r.contact_id";

pub async fn find_receipt(tx: &mut TenantTx, id: Uuid) -> Result<Option<Receipt>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECEIPT_SELECT} where r.organisation_id = $1 and r.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn unit_receipts(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<Receipt>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECEIPT_SELECT} where r.organisation_id = $1 and r.unit_id = $2
          order by r.received_on desc, r.created_at desc"
    )))
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

/// A batch's receipts in the order they were numbered (the order of its rows).
pub(crate) async fn receipts_of_batch(
    tx: &mut TenantTx,
    batch: Uuid,
) -> Result<Vec<Receipt>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECEIPT_SELECT} where r.organisation_id = $1 and r.batch_id = $2
          order by length(r.number), r.number"
    )))
    .bind(tx.org().0)
    .bind(batch)
    .fetch_all(tx.conn())
    .await?)
}

/// Records money received for a unit and posts it: Dr bank / Cr debtors control in the fund of
/// each line it settles, and the rest as credit on account in the receipt's fund.
pub async fn record_receipt(
    tx: &mut TenantTx,
    input: &ReceiptInput,
    by: &str,
    now: OffsetDateTime,
) -> Result<(Uuid, String), LedgerError> {
    lock_books(tx).await?;
    let unit = unit_facts(tx, input.unit_id).await?;
    ledger::ensure_books(tx, unit.site_id).await?;
    if input.amount_pence <= 0 {
        return Err(refused("The amount received must be more than £0.00."));
    }
    if input.amount_pence > MAX_LINE_PENCE {
        return Err(refused(
            "The amount is more than £10,000,000,000.00; check the figure.",
        ));
    }
    check_year(input.received_on, "date received")?;
    if let Some(contact) = input.contact_id {
        check_billable(tx, input.unit_id, contact, &unit.reference).await?;
    }
    let reference = match input
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(r) if r.chars().count() > 100 => {
            return Err(refused("The payment reference is at most 100 characters."));
        }
        Some(r) => {
            plain(r, "payment reference")?;
            Some(r.to_owned())
        }
        None => None,
    };
    let bank = bank_account(tx, unit.site_id, input.bank_account_id).await?;
    let fund = match input.fund_id {
        Some(f) => {
            if !ledger::funds(tx, unit.site_id)
                .await?
                .iter()
                .any(|x| x.id == f)
            {
                return Err(refused("Choose one of this site's funds."));
            }
            f
        }
        None => service_charge_fund(tx, unit.site_id).await?,
    };
    let id = Uuid::now_v7();
    let plan = plan_settlement(
        tx,
        input.unit_id,
        &unit.reference,
        input.amount_pence,
        &input.allocate,
        Source::Receipt(id),
        None,
    )
    .await?;
    let debtors = control(tx, unit.site_id, "debtors").await?;
    let number = next_number(tx, "receipt", "RCT", input.received_on.year()).await?;
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    for p in &plan {
        add_to(&mut per_fund, p.fund, p.amount);
    }
    let allocated: i64 = plan.iter().map(|p| p.amount).sum();
    if input.amount_pence > allocated {
        add_to(&mut per_fund, fund, input.amount_pence - allocated);
    }
    let mut lines = Vec::new();
    for (f, amount) in &per_fund {
        lines.push(line(bank, *f, *amount, Some(input.unit_id)));
        let mut c = line(debtors, *f, -amount, Some(input.unit_id));
        c.contact_id = input.contact_id;
        lines.push(c);
    }
    let description = format!(
        "Receipt {number}: {} {}",
        format_pence(input.amount_pence),
        input.method.phrase()
    );
    let (journal, _) = ledger::post(
        tx,
        &NewJournal {
            site_id: unit.site_id,
            date: input.received_on,
            description,
            source_type: "receipt".into(),
            source_id: Some(id),
            lines,
        },
        by,
        now,
    )
    .await?;
    sqlx::query(
        "insert into receipt (organisation_id, id, site_id, unit_id, contact_id, number,
                received_on, amount_pence, method, reference, bank_account_id, fund_id, channel,
                journal_id, recorded_by, batch_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(unit.site_id)
    .bind(input.unit_id)
    .bind(input.contact_id)
    .bind(&number)
    .bind(input.received_on)
    .bind(input.amount_pence)
    .bind(input.method.as_str())
    .bind(&reference)
    .bind(bank)
    .bind(fund)
    .bind(input.channel)
    .bind(journal)
    .bind(by)
    .bind(input.batch_id)
    .execute(tx.conn())
    .await?;
    insert_allocations(
        tx,
        unit.site_id,
        input.unit_id,
        input.received_on,
        &plan,
        None,
        by,
    )
    .await?;
    Ok((id, number))
}

pub(crate) async fn bank_account(
    tx: &mut TenantTx,
    site: Uuid,
    chosen: Option<Uuid>,
) -> Result<Uuid, LedgerError> {
    let accounts = ledger::accounts(tx, site).await?;
    let banks: Vec<_> = accounts
        .iter()
        .filter(|a| a.control.as_deref() == Some("bank") && a.archived_at.is_none())
        .collect();
    match chosen {
        Some(id) => banks
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.id)
            .ok_or_else(|| refused("Choose one of this site's bank accounts.")),
        None => banks
            .first()
            .map(|a| a.id)
            .ok_or_else(|| refused("This site has no live bank account in its chart.")),
    }
}

pub(crate) async fn service_charge_fund(
    tx: &mut TenantTx,
    site: Uuid,
) -> Result<Uuid, LedgerError> {
    ledger::fund_of_kind(tx, site, FundKind::ServiceCharge)
        .await?
        .map(|f| f.id)
        .ok_or_else(|| refused("This site has no service charge fund."))
}

/// Sets credit already held (a receipt's unallocated money, or an approved credit note's) against
/// open invoice lines. A receipt's money that settles a line of another fund moves fund with
/// it (bank and debtors control), in one journal.
pub async fn allocate_credit(
    tx: &mut TenantTx,
    source: CreditSource,
    how: &Allocate,
    on: Date,
    by: &str,
    now: OffsetDateTime,
) -> Result<i64, LedgerError> {
    lock_books(tx).await?;
    check_year(on, "allocation date")?;
    match source {
        CreditSource::Receipt(id) => {
            let r = find_receipt(tx, id).await?.ok_or(LedgerError::NotFound)?;
            if r.status != "posted" {
                return Err(refused(format!(
                    "{} was reversed: it has nothing to allocate.",
                    r.number
                )));
            }
            if on < r.received_on {
                return Err(refused(format!(
                    "The allocation cannot be dated before the money was received ({}).",
                    long_date(r.received_on)
                )));
            }
            let available = r.available_pence();
            if available == 0 {
                return Err(refused(format!("{} is fully allocated.", r.number)));
            }
            let plan = plan_settlement(
                tx,
                r.unit_id,
                &r.unit_reference,
                available,
                how,
                Source::Receipt(id),
                None,
            )
            .await?;
            if plan.is_empty() {
                return Err(refused("There is nothing open on this unit to settle."));
            }
            // Money moving to another fund's lines moves fund: out of the receipt's fund,
            // into the line's, in the bank and in debtors control.
            let mut moves: Vec<(Uuid, i64)> = Vec::new();
            for p in plan.iter().filter(|p| p.fund != r.fund_id) {
                add_to(&mut moves, p.fund, p.amount);
            }
            let journal = if moves.is_empty() {
                None
            } else {
                let debtors = control(tx, r.site_id, "debtors").await?;
                let total: i64 = moves.iter().map(|(_, a)| a).sum();
                let mut lines = vec![
                    line(r.bank_account_id, r.fund_id, -total, Some(r.unit_id)),
                    line(debtors, r.fund_id, total, Some(r.unit_id)),
                ];
                for (f, a) in &moves {
                    lines.push(line(r.bank_account_id, *f, *a, Some(r.unit_id)));
                    lines.push(line(debtors, *f, -a, Some(r.unit_id)));
                }
                let (j, _) = ledger::post(
                    tx,
                    &NewJournal {
                        site_id: r.site_id,
                        date: on,
                        description: format!(
                            "Credit from {} moved to the funds of the lines it settles",
                            r.number
                        ),
                        source_type: "allocation".into(),
                        source_id: Some(id),
                        lines,
                    },
                    by,
                    now,
                )
                .await?;
                Some(j)
            };
            insert_allocations(tx, r.site_id, r.unit_id, on, &plan, journal, by).await?;
            Ok(plan.iter().map(|p| p.amount).sum())
        }
        CreditSource::CreditNote(id) => {
            let n = find_credit_note(tx, id)
                .await?
                .ok_or(LedgerError::NotFound)?;
            if n.status != "approved" {
                return Err(refused(format!(
                    "{} has not been approved: its credit cannot be used yet.",
                    n.label()
                )));
            }
            if n.issue_date.is_some_and(|d| on < d) {
                return Err(refused(
                    "The allocation cannot be dated before the credit note.",
                ));
            }
            let lines = credit_lines(tx, id).await?;
            let mut plan: Vec<Planned> = Vec::new();
            match how {
                Allocate::Lines(chosen) => {
                    // Each chosen line takes from the credit note's lines of its fund.
                    let open = open_lines(tx, n.unit_id).await?;
                    for (line_id, amount) in chosen {
                        let Some(o) = open.iter().find(|o| o.id == *line_id) else {
                            return Err(closed_line_reason(
                                tx,
                                *line_id,
                                n.unit_id,
                                &n.unit_reference,
                            )
                            .await?);
                        };
                        let mut left = *amount;
                        if left <= 0 {
                            return Err(refused("Each amount allocated must be more than £0.00."));
                        }
                        let owed = o.outstanding_pence - planned_for(&plan, o.id);
                        if left > owed {
                            return Err(refused(format!(
                                "{} line {} has {} outstanding: {} is more than that.",
                                o.invoice_number,
                                o.line_no,
                                format_pence(owed),
                                format_pence(left)
                            )));
                        }
                        for cl in lines.iter().filter(|cl| cl.fund_id == o.fund_id) {
                            let used: i64 = plan
                                .iter()
                                .filter(|p| p.source == Source::CreditLine(cl.id))
                                .map(|p| p.amount)
                                .sum();
                            let take = left.min(cl.gross_pence - cl.allocated_pence - used);
                            if take > 0 {
                                plan.push(Planned {
                                    invoice_line: o.id,
                                    fund: o.fund_id,
                                    source: Source::CreditLine(cl.id),
                                    amount: take,
                                });
                                left -= take;
                            }
                        }
                        if left > 0 {
                            return Err(refused(format!(
                                "{} has not enough credit in the fund of {} line {} to settle {}.",
                                n.label(),
                                o.invoice_number,
                                o.line_no,
                                format_pence(*amount)
                            )));
                        }
                    }
                }
                Allocate::OldestFirst => {
                    let open = open_lines(tx, n.unit_id).await?;
                    for cl in &lines {
                        let available = cl.gross_pence - cl.allocated_pence;
                        if available <= 0 {
                            continue;
                        }
                        // Lines already planned from an earlier credit line owe less now.
                        let same_fund: Vec<&OpenLine> =
                            open.iter().filter(|o| o.fund_id == cl.fund_id).collect();
                        let owed: Vec<i64> = same_fund
                            .iter()
                            .map(|o| o.outstanding_pence - planned_for(&plan, o.id))
                            .collect();
                        let (taken, _) = settle_in_order(available, &owed);
                        for (i, amount) in taken {
                            plan.push(Planned {
                                invoice_line: same_fund[i].id,
                                fund: cl.fund_id,
                                source: Source::CreditLine(cl.id),
                                amount,
                            });
                        }
                    }
                }
                Allocate::None => {}
            }
            if plan.is_empty() {
                return Err(refused(format!(
                    "Nothing open on {} can take {}'s credit (a credit settles only lines of its own fund).",
                    n.unit_reference,
                    n.label()
                )));
            }
            insert_allocations(tx, n.site_id, n.unit_id, on, &plan, None, by).await?;
            Ok(plan.iter().map(|p| p.amount).sum())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditSource {
    Receipt(Uuid),
    CreditNote(Uuid),
}

/// Reverses a receipt that bounced or was recorded in error: its journals are reversed, what
/// it paid is re-opened, and it is marked reversed. A receipt with a refund paid from it is
/// refused (the refund's money has gone).
pub async fn reverse_receipt(
    tx: &mut TenantTx,
    id: Uuid,
    on: Date,
    reason: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let r = find_receipt(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if r.status != "posted" {
        return Err(refused(format!("{} is already reversed.", r.number)));
    }
    if on < r.received_on {
        return Err(refused(format!(
            "The reversal cannot be dated before the money was received ({}).",
            long_date(r.received_on)
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused(
            "Say why the receipt is reversed (up to 300 characters).",
        ));
    }
    plain(reason, "reason")?;
    let refunded: bool = sqlx::query_scalar(
        "select exists (select from allocation where organisation_id = $1 and receipt_id = $2
                          and refund_id is not null)",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_one(tx.conn())
    .await?;
    if refunded {
        return Err(refused(format!(
            "Part of {} has been refunded: a receipt with a refund cannot be reversed.",
            r.number
        )));
    }
    // The allocations still standing, undone; and every journal it posted, reversed.
    let standing: Vec<(Uuid, i64, Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "select a.id, a.amount_pence, a.invoice_line_id, a.fund_id, a.journal_id from allocation a
          where a.organisation_id = $1 and a.receipt_id = $2 and a.undoes_id is null
            and not exists (select from allocation u where u.organisation_id = a.organisation_id
                              and u.undoes_id = a.id)
          order by a.created_at",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let mut journals = vec![r.journal_id];
    for (_, _, _, _, j) in &standing {
        if let Some(j) = j
            && !journals.contains(j)
        {
            journals.push(*j);
        }
    }
    let why = format!("{} reversed: {reason}", r.number);
    for j in journals {
        ledger::reverse(tx, j, on, &truncate(&why, 200), by, now).await?;
    }
    for (undo, amount, invoice_line, fund, _) in standing {
        sqlx::query(
            "insert into allocation (organisation_id, id, site_id, unit_id, allocated_on,
                    amount_pence, receipt_id, invoice_line_id, fund_id, undoes_id, created_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(r.site_id)
        .bind(r.unit_id)
        .bind(on)
        .bind(-amount)
        .bind(id)
        .bind(invoice_line)
        .bind(fund)
        .bind(undo)
        .bind(by)
        .execute(tx.conn())
        .await?;
    }
    sqlx::query(
        "update receipt set status = 'reversed', reversed_on = $3, reversal_reason = $4,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(on)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refunds

#[derive(Debug, Clone)]
pub struct RefundInput {
    pub source: CreditSource,
    pub amount_pence: i64,
    pub refunded_on: Date,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub bank_account_id: Option<Uuid>,
}

/// Pays back credit held (a receipt's unallocated money or a credit note's unused credit):
/// Dr debtors control / Cr bank, in the credit's fund(s).
pub async fn refund(
    tx: &mut TenantTx,
    input: &RefundInput,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    lock_books(tx).await?;
    check_year(input.refunded_on, "refund date")?;
    if input.amount_pence <= 0 {
        return Err(refused("The refund must be more than £0.00."));
    }
    let reference = input
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if let Some(r) = &reference {
        if r.chars().count() > 100 {
            return Err(refused("The payment reference is at most 100 characters."));
        }
        plain(r, "payment reference")?;
    }
    // (source column, source id, fund, amount) per part of the refund.
    let (site, unit, parts, label) = match input.source {
        CreditSource::Receipt(id) => {
            let r = find_receipt(tx, id).await?.ok_or(LedgerError::NotFound)?;
            if input.amount_pence > r.available_pence() {
                return Err(refused(format!(
                    "{} has {} unallocated: a refund of {} is more than that.",
                    r.number,
                    format_pence(r.available_pence()),
                    format_pence(input.amount_pence)
                )));
            }
            if input.refunded_on < r.received_on {
                return Err(refused(
                    "A refund cannot be dated before the money was received.",
                ));
            }
            (
                r.site_id,
                r.unit_id,
                vec![(Source::Receipt(id), r.fund_id, input.amount_pence)],
                r.number,
            )
        }
        CreditSource::CreditNote(id) => {
            let n = find_credit_note(tx, id)
                .await?
                .ok_or(LedgerError::NotFound)?;
            if input.amount_pence > n.available_pence() {
                return Err(refused(format!(
                    "{} has {} of credit left: a refund of {} is more than that.",
                    n.label(),
                    format_pence(n.available_pence()),
                    format_pence(input.amount_pence)
                )));
            }
            let mut left = input.amount_pence;
            let mut parts = Vec::new();
            for cl in credit_lines(tx, id).await? {
                let take = left.min(cl.gross_pence - cl.allocated_pence);
                if take > 0 {
                    parts.push((Source::CreditLine(cl.id), cl.fund_id, take));
                    left -= take;
                }
            }
            (n.site_id, n.unit_id, parts, n.label())
        }
    };
    let bank = bank_account(tx, site, input.bank_account_id).await?;
    let debtors = control(tx, site, "debtors").await?;
    let number = next_number(tx, "refund", "RFD", input.refunded_on.year()).await?;
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    for (_, f, a) in &parts {
        add_to(&mut per_fund, *f, *a);
    }
    let mut lines = Vec::new();
    for (f, a) in &per_fund {
        lines.push(line(debtors, *f, *a, Some(unit)));
        lines.push(line(bank, *f, -a, Some(unit)));
    }
    let id = Uuid::now_v7();
    let (journal, _) = ledger::post(
        tx,
        &NewJournal {
            site_id: site,
            date: input.refunded_on,
            description: format!(
                "Refund {number} of {} from {label} {}",
                format_pence(input.amount_pence),
                input.method.phrase()
            ),
            source_type: "refund".into(),
            source_id: Some(id),
            lines,
        },
        by,
        now,
    )
    .await?;
    sqlx::query(
        "insert into refund (organisation_id, id, site_id, unit_id, number, refunded_on,
                amount_pence, method, reference, bank_account_id, journal_id, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(unit)
    .bind(&number)
    .bind(input.refunded_on)
    .bind(input.amount_pence)
    .bind(input.method.as_str())
    .bind(&reference)
    .bind(bank)
    .bind(journal)
    .bind(by)
    .execute(tx.conn())
    .await?;
    for (source, fund, amount) in parts {
        let (receipt, credit) = match source {
            Source::Receipt(r) => (Some(r), None),
            Source::CreditLine(c) => (None, Some(c)),
        };
        sqlx::query(
            "insert into allocation (organisation_id, id, site_id, unit_id, allocated_on,
                    amount_pence, receipt_id, credit_note_line_id, refund_id, fund_id, created_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(site)
        .bind(unit)
        .bind(input.refunded_on)
        .bind(amount)
        .bind(receipt)
        .bind(credit)
        .bind(id)
        .bind(fund)
        .bind(by)
        .execute(tx.conn())
        .await?;
    }
    Ok(number)
}

// ---------------------------------------------------------------------------------------------
// Statements and aged debt

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatementRow {
    pub journal_id: Uuid,
    pub date: Date,
    pub description: String,
    pub source_type: String,
    pub source_id: Option<Uuid>,
    /// Debit (a charge) positive, credit (a payment or credit) negative.
    pub amount_pence: i64,
    #[sqlx(skip)]
    pub balance_pence: i64,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub unit_id: Uuid,
    pub from: Date,
    pub to: Date,
    pub opening_pence: i64,
    pub rows: Vec<StatementRow>,
    pub closing_pence: i64,
    /// Of the closing balance, what was past its due date at `to`.
    pub overdue_pence: i64,
}

impl Statement {
    pub fn charges_pence(&self) -> i64 {
        self.rows.iter().map(|r| r.amount_pence.max(0)).sum()
    }
    pub fn payments_pence(&self) -> i64 {
        -self.rows.iter().map(|r| r.amount_pence.min(0)).sum::<i64>()
    }
}

/// A unit's statement from `from` to `to` (both included), from its debtors-control lines:
/// opening balance, each charge, payment, credit and refund, running balance, closing
/// balance, and what of it is overdue. Money moving between funds nets to nothing and is
/// left out.
pub async fn statement(
    tx: &mut TenantTx,
    unit: Uuid,
    from: Date,
    to: Date,
) -> Result<Statement, LedgerError> {
    if to < from {
        return Err(refused("The statement ends before it starts."));
    }
    let facts = unit_facts(tx, unit).await?;
    let Some(debtors) = ledger::control_account(tx, facts.site_id, "debtors").await? else {
        return Ok(Statement {
            unit_id: unit,
            from,
            to,
            opening_pence: 0,
            rows: Vec::new(),
            closing_pence: 0,
            overdue_pence: 0,
        });
    };
    let opening: Option<i64> = sqlx::query_scalar(
        "select sum(amount_pence)::int8 from journal_line
          where organisation_id = $1 and unit_id = $2 and account_id = $3 and journal_date < $4",
    )
    .bind(tx.org().0)
    .bind(unit)
    .bind(debtors.id)
    .bind(from)
    .fetch_one(tx.conn())
    .await?;
    let mut rows: Vec<StatementRow> = sqlx::query_as(
        "select j.id as journal_id, j.journal_date as date, j.description, j.source_type,
                j.source_id, t.amount::int8 as amount_pence
           from (select journal_id, sum(amount_pence) as amount from journal_line
                  where organisation_id = $1 and unit_id = $2 and account_id = $3
                    and journal_date between $4 and $5
                  group by journal_id having sum(amount_pence) <> 0) t
           join journal j on j.organisation_id = $1 and j.id = t.journal_id
          order by j.journal_date, j.posted_at, j.reference",
    )
    .bind(tx.org().0)
    .bind(unit)
    .bind(debtors.id)
    .bind(from)
    .bind(to)
    .fetch_all(tx.conn())
    .await?;
    let opening = opening.unwrap_or(0);
    let mut balance = opening;
    for r in &mut rows {
        balance += r.amount_pence;
        r.balance_pence = balance;
    }
    let aged = unit_ageing(tx, unit, to).await?;
    let overdue: i64 = aged
        .iter()
        .filter(|(b, _)| *b != AgeBucket::Current)
        .map(|(_, a)| a)
        .sum();
    Ok(Statement {
        unit_id: unit,
        from,
        to,
        opening_pence: opening,
        rows,
        closing_pence: balance,
        overdue_pence: overdue,
    })
}

/// Whose invoices an ageing reads: one unit's, or a whole site's.
#[derive(Clone, Copy)]
enum Owing {
    Unit(Uuid),
    Site(Uuid),
}

/// What each invoice of a unit or site still owed at the end of `as_at`: (unit, due date,
/// amount). Only invoices that could still have been owed are read: those open now, and those
/// settled after `as_at`.
async fn owed_at(
    tx: &mut TenantTx,
    whose: Owing,
    as_at: Date,
) -> Result<Vec<(Uuid, Date, i64)>, DbError> {
    let (column, id) = match whose {
        Owing::Unit(u) => ("unit_id", u),
        Owing::Site(s) => ("site_id", s),
    };
    // `column` is one of two fixed names, never input.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select i.unit_id, i.due_date, (i.total_pence - coalesce(sum(a.amount_pence), 0))::int8
           from debtor_invoice i
           left join debtor_invoice_line l on l.organisation_id = i.organisation_id and l.invoice_id = i.id
           left join allocation a on a.organisation_id = l.organisation_id
                                 and a.invoice_line_id = l.id and a.allocated_on <= $3
          where i.organisation_id = $1 and i.{column} = $2
            and i.status not in ('draft', 'awaiting_approval') and i.issue_date <= $3
            and i.id in (select o.id from debtor_invoice o
                          where o.organisation_id = $1 and o.{column} = $2
                            and o.status in ('approved', 'sent', 'part_paid')
                         union all
                         select l2.invoice_id from allocation a2
                           join debtor_invoice_line l2 on l2.organisation_id = a2.organisation_id
                                                      and l2.id = a2.invoice_line_id
                          where a2.organisation_id = $1 and a2.{column} = $2 and a2.allocated_on > $3)
          group by i.organisation_id, i.id
         having i.total_pence - coalesce(sum(a.amount_pence), 0) <> 0"
    )))
    .bind(tx.org().0)
    .bind(id)
    .bind(as_at)
    .fetch_all(tx.conn())
    .await?)
}

/// What each of a unit's invoices still owed at the end of `as_at`, by due date.
async fn unit_ageing(
    tx: &mut TenantTx,
    unit: Uuid,
    as_at: Date,
) -> Result<Vec<(AgeBucket, i64)>, DbError> {
    Ok(owed_at(tx, Owing::Unit(unit), as_at)
        .await?
        .into_iter()
        .map(|(_, due, amount)| (AgeBucket::of(due, as_at), amount))
        .collect())
}

#[derive(Debug, Clone)]
pub struct AgedDebtRow {
    pub unit_id: Uuid,
    pub unit_reference: String,
    pub contact_name: Option<String>,
    /// Owed by bucket, in `AgeBucket::ALL` order.
    pub buckets: [i64; 5],
    pub total_pence: i64,
    /// Money received or credited and not yet set against anything.
    pub credit_pence: i64,
    pub last_receipt: Option<Date>,
}

impl AgedDebtRow {
    pub fn net_pence(&self) -> i64 {
        self.total_pence - self.credit_pence
    }
}

/// The site's aged debt at the end of `as_at`: per unit, what its invoices still owed by days
/// overdue, the credit it held, and its last receipt. Units with nothing owed or held are left
/// out.
pub async fn aged_debt(
    tx: &mut TenantTx,
    site: Uuid,
    as_at: Date,
) -> Result<Vec<AgedDebtRow>, DbError> {
    let owed = owed_at(tx, Owing::Site(site), as_at).await?;
    let credit: Vec<(Uuid, i64)> = sqlx::query_as(
        "select unit_id, sum(held)::int8 from (
             select r.unit_id, r.amount_pence - coalesce((select sum(a.amount_pence) from allocation a
                      where a.organisation_id = r.organisation_id and a.receipt_id = r.id
                        and a.allocated_on <= $3), 0) as held
               from receipt r
              where r.organisation_id = $1 and r.site_id = $2 and r.received_on <= $3
                and (r.reversed_on is null or r.reversed_on > $3)
             union all
             select n.unit_id, n.total_pence - coalesce((select sum(a.amount_pence) from allocation a
                      join credit_note_line cl on cl.organisation_id = a.organisation_id
                                              and cl.id = a.credit_note_line_id
                      where a.organisation_id = n.organisation_id and cl.credit_note_id = n.id
                        and a.allocated_on <= $3), 0)
               from credit_note n
              where n.organisation_id = $1 and n.site_id = $2 and n.status = 'approved'
                and n.issue_date <= $3) h
          group by unit_id having sum(held) <> 0",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(as_at)
    .fetch_all(tx.conn())
    .await?;
    let units: Vec<(Uuid, String, Option<String>, Option<Date>)> = sqlx::query_as(
        "select u.id, u.reference,
                (select c.display_name from debtor_invoice i
                   join contact c on c.organisation_id = i.organisation_id and c.id = i.contact_id
                  where i.organisation_id = u.organisation_id and i.unit_id = u.id
                    and i.status <> 'draft'
                  order by i.issue_date desc nulls last limit 1),
                (select max(r.received_on) from receipt r
                  where r.organisation_id = u.organisation_id and r.unit_id = u.id
                    and r.received_on <= $3 and r.status = 'posted')
           from unit u
          where u.organisation_id = $1 and u.site_id = $2 and u.id = any($4)
          order by u.list_key, u.id",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(as_at)
    .bind(
        owed.iter()
            .map(|(u, _, _)| *u)
            .chain(credit.iter().map(|(u, _)| *u))
            .collect::<Vec<_>>(),
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(units
        .into_iter()
        .map(|(unit_id, unit_reference, contact_name, last_receipt)| {
            let mut buckets = [0i64; 5];
            for (_, due, amount) in owed.iter().filter(|(u, _, _)| *u == unit_id) {
                buckets[AgeBucket::of(*due, as_at).index()] += amount;
            }
            AgedDebtRow {
                unit_id,
                unit_reference,
                contact_name,
                buckets,
                total_pence: buckets.iter().sum(),
                credit_pence: credit
                    .iter()
                    .filter(|(u, _)| *u == unit_id)
                    .map(|(_, c)| c)
                    .sum(),
                last_receipt,
            }
        })
        .collect())
}

/// The unit's credit available now: unallocated receipts and credit notes.
pub async fn unit_credit(tx: &mut TenantTx, unit: Uuid) -> Result<i64, DbError> {
    let held: Option<i64> = sqlx::query_scalar(
        "select (coalesce((select sum(amount_pence - allocated_pence) from receipt
                   where organisation_id = $1 and unit_id = $2 and status = 'posted'), 0)
               + coalesce((select sum(total_pence - allocated_pence) from credit_note
                   where organisation_id = $1 and unit_id = $2 and status = 'approved'), 0))::int8",
    )
    .bind(tx.org().0)
    .bind(unit)
    .fetch_one(tx.conn())
    .await?;
    Ok(held.unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// What happened to a document, in words

/// One event of a money record's story: when, and a sentence such as "Mr Ravi Patel paid
/// £450.00 by card on 10 May 2026 (RCT-2026-000012)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyEvent {
    pub on: Date,
    pub at: Option<OffsetDateTime>,
    pub sentence: String,
}

fn via(channel: &str) -> &'static str {
    match channel {
        "residenceport" => " via ResidencePort",
        "stripe" => " by card online",
        "gocardless" => " by Direct Debit collection",
        "import" => " (imported)",
        _ => "",
    }
}

/// The settlements of an invoice, in words: receipts that paid it, credits set against it,
/// and undoes when a receipt was reversed.
pub async fn invoice_events(tx: &mut TenantTx, invoice: Uuid) -> Result<Vec<MoneyEvent>, DbError> {
    type Row = (
        Date,
        OffsetDateTime,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Date>,
        Option<String>,
        bool,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select a.allocated_on, a.created_at, sum(a.amount_pence)::int8, r.number, r.method,
                coalesce(rc.display_name, 'The payer'), r.channel, n.number, r.received_on,
                r.reversal_reason, a.undoes_id is not null
           from allocation a
           join debtor_invoice_line l on l.organisation_id = a.organisation_id and l.id = a.invoice_line_id
           left join receipt r on r.organisation_id = a.organisation_id and r.id = a.receipt_id
           left join contact rc on rc.organisation_id = r.organisation_id and rc.id = r.contact_id
           left join credit_note_line cl on cl.organisation_id = a.organisation_id and cl.id = a.credit_note_line_id
           left join credit_note n on n.organisation_id = cl.organisation_id and n.id = cl.credit_note_id
          where a.organisation_id = $1 and l.invoice_id = $2
          group by a.allocated_on, a.created_at, r.number, r.method, rc.display_name, r.channel,
                   n.number, r.received_on, r.reversal_reason, a.undoes_id is not null
          order by a.created_at",
    )
    .bind(tx.org().0)
    .bind(invoice)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(on, at, amount, receipt, method, payer, channel, credit, received, why, undo)| {
                let sentence = match (receipt, credit) {
                    (Some(number), _) if undo => format!(
                        "{number} was reversed on {}{}: {} re-opened",
                        long_date(on),
                        why.map(|w| format!(" ({w})")).unwrap_or_default(),
                        format_pence(-amount)
                    ),
                    (Some(number), _) => {
                        let method = method
                            .as_deref()
                            .and_then(PaymentMethod::parse)
                            .unwrap_or(PaymentMethod::Other);
                        let paid_on = received.unwrap_or(on);
                        let settled = if received.is_some_and(|r| r != on) {
                            format!("; set against this on {}", long_date(on))
                        } else {
                            String::new()
                        };
                        format!(
                            "{} paid {} {}{} on {} ({number}){settled}",
                            payer.unwrap_or_else(|| "The payer".into()),
                            format_pence(amount),
                            method.phrase(),
                            via(channel.as_deref().unwrap_or("admin")),
                            long_date(paid_on)
                        )
                    }
                    (None, Some(number)) => format!(
                        "Credit note {number} for {} set against this on {}",
                        format_pence(amount),
                        long_date(on)
                    ),
                    (None, None) => {
                        format!("{} settled on {}", format_pence(amount), long_date(on))
                    }
                };
                MoneyEvent {
                    on,
                    at: Some(at),
                    sentence,
                }
            },
        )
        .collect())
}

/// What a receipt settled, line by line summed per invoice: (invoice id, number, amount, on).
pub async fn receipt_allocations(
    tx: &mut TenantTx,
    receipt: Uuid,
) -> Result<Vec<(Uuid, String, i64, Date)>, DbError> {
    Ok(sqlx::query_as(
        "select i.id, coalesce(i.number, 'Draft'), sum(a.amount_pence)::int8, min(a.allocated_on)
           from allocation a
           join debtor_invoice_line l on l.organisation_id = a.organisation_id and l.id = a.invoice_line_id
           join debtor_invoice i on i.organisation_id = l.organisation_id and i.id = l.invoice_id
          where a.organisation_id = $1 and a.receipt_id = $2
          group by i.id, i.number
         having sum(a.amount_pence) <> 0
          order by min(a.allocated_on), i.number",
    )
    .bind(tx.org().0)
    .bind(receipt)
    .fetch_all(tx.conn())
    .await?)
}

/// What a credit note settled, summed per invoice.
pub async fn credit_allocations(
    tx: &mut TenantTx,
    credit: Uuid,
) -> Result<Vec<(Uuid, String, i64, Date)>, DbError> {
    Ok(sqlx::query_as(
        "select i.id, coalesce(i.number, 'Draft'), sum(a.amount_pence)::int8, min(a.allocated_on)
           from allocation a
           join credit_note_line cl on cl.organisation_id = a.organisation_id and cl.id = a.credit_note_line_id
           join debtor_invoice_line l on l.organisation_id = a.organisation_id and l.id = a.invoice_line_id
           join debtor_invoice i on i.organisation_id = l.organisation_id and i.id = l.invoice_id
          where a.organisation_id = $1 and cl.credit_note_id = $2
          group by i.id, i.number
          order by min(a.allocated_on), i.number",
    )
    .bind(tx.org().0)
    .bind(credit)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refund {
    pub id: Uuid,
    pub number: String,
    pub refunded_on: Date,
    pub amount_pence: i64,
    pub method: String,
    pub reference: Option<String>,
    pub source: String,
}

/// The unit's refunds, newest first, with what each paid back.
pub async fn unit_refunds(tx: &mut TenantTx, unit: Uuid) -> Result<Vec<Refund>, DbError> {
    Ok(sqlx::query_as(
        "select f.id, f.number, f.refunded_on, f.amount_pence, f.method, f.reference,
                coalesce(string_agg(distinct coalesce(r.number, n.number), ', '), '') as source
           from refund f
           left join allocation a on a.organisation_id = f.organisation_id and a.refund_id = f.id
           left join receipt r on r.organisation_id = a.organisation_id and r.id = a.receipt_id
           left join credit_note_line cl on cl.organisation_id = a.organisation_id and cl.id = a.credit_note_line_id
           left join credit_note n on n.organisation_id = cl.organisation_id and n.id = cl.credit_note_id
          where f.organisation_id = $1 and f.unit_id = $2
          group by f.organisation_id, f.id
          order by f.refunded_on desc, f.created_at desc",
    )
    .bind(tx.org().0)
    .bind(unit)
    .fetch_all(tx.conn())
    .await?)
}

/// The site's income and expenditure from `from` to `to` by account and fund: income as
/// positive amounts, expenditure as positive amounts, from the same lines as the trial balance.
pub async fn income_and_expenditure(
    tx: &mut TenantTx,
    site: Uuid,
    from: Date,
    to: Date,
) -> Result<Vec<ledger::TrialBalanceRow>, DbError> {
    Ok(ledger::trial_balance(tx, site, from, to)
        .await?
        .into_iter()
        .filter(|r| matches!(r.kind.as_str(), "income" | "expense"))
        .map(|mut r| {
            if r.kind == "income" {
                r.balance_pence = -r.balance_pence;
            }
            r
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Stored PDFs

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MoneyDocument {
    pub id: Uuid,
    pub record_type: String,
    pub record_id: Uuid,
    pub period_from: Option<Date>,
    pub period_to: Option<Date>,
    pub sha256: String,
    pub size_bytes: i64,
    pub object_key: String,
    pub renderer: String,
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

/// A rendered PDF, already in the object store.
#[derive(Debug, Clone)]
pub struct NewMoneyDocument<'a> {
    pub record_type: &'a str,
    pub record_id: Uuid,
    pub site_id: Uuid,
    pub unit_id: Uuid,
    pub period: Option<(Date, Date)>,
    pub sha256: &'a str,
    pub size_bytes: i64,
    pub object_key: &'a str,
    pub renderer: &'a str,
}

pub async fn record_document(
    tx: &mut TenantTx,
    doc: &NewMoneyDocument<'_>,
    by: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into money_document (organisation_id, id, record_type, record_id, site_id, unit_id,
                period_from, period_to, sha256, size_bytes, object_key, renderer, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(doc.record_type)
    .bind(doc.record_id)
    .bind(doc.site_id)
    .bind(doc.unit_id)
    .bind(doc.period.map(|p| p.0))
    .bind(doc.period.map(|p| p.1))
    .bind(doc.sha256)
    .bind(doc.size_bytes)
    .bind(doc.object_key)
    .bind(doc.renderer)
    .bind(by)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// The latest PDF stored for a record (for a statement, of that exact period).
pub async fn latest_document(
    tx: &mut TenantTx,
    record_type: &str,
    record_id: Uuid,
    period: Option<(Date, Date)>,
) -> Result<Option<MoneyDocument>, DbError> {
    Ok(sqlx::query_as(
        "select id, record_type, record_id, period_from, period_to, sha256, size_bytes,
                object_key, renderer, created_by, created_at
           from money_document
          where organisation_id = $1 and record_type = $2 and record_id = $3
            and period_from is not distinct from $4 and period_to is not distinct from $5
          order by created_at desc, id desc limit 1",
    )
    .bind(tx.org().0)
    .bind(record_type)
    .bind(record_id)
    .bind(period.map(|p| p.0))
    .bind(period.map(|p| p.1))
    .fetch_optional(tx.conn())
    .await?)
}
