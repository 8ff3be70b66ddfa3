//! Supplier bills (issue 7; docs-spec §2.6 "Creditor invoices (bills)"): a supplier's invoice
//! to a site, its lines coded to the site's expense accounts and funds, optionally coded to the
//! work order it is for. Draft → awaiting approval → approved (numbered `BIL-2026-000001` and
//! posted: each line's expense, with VAT the site cannot reclaim, and VAT it can reclaim to the
//! VAT account, against creditors control per fund) → scheduled → paid; held and released with
//! a reason; voided with a reason (a posted bill's journal reversed).
//!
//! Every refusal is a sentence and changes nothing. The database keeps a bill's figures and
//! lines fixed once it leaves draft, its lines adding up to its figures, and a supplier's
//! invoice number entered once (`0040_bank_accounts_bills.sql`).

use crate::approvals::{self, Signed, Signer, Subject};
use crate::error::DbError;
use crate::ledger::{
    self, LedgerError, NewJournal, NewLine, lock_books, next_number, plain, refused,
};
use crate::receivables::{Approval, CodedLine, Coding, check_year};
use crate::tenant::TenantTx;
use proplink_domain::dates::long_date;
use proplink_domain::ledger::{MAX_LINE_PENCE, vat_pence};
use proplink_domain::uk::format_pence;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// Where a bill is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillStatus {
    Draft,
    AwaitingApproval,
    Approved,
    Scheduled,
    Paid,
    Held,
    Voided,
}

impl BillStatus {
    pub const ALL: [Self; 7] = [
        Self::Draft,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Scheduled,
        Self::Paid,
        Self::Held,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Paid => "paid",
            Self::Held => "held",
            Self::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "Draft",
            Self::AwaitingApproval => "Awaiting approval",
            Self::Approved => "Approved",
            Self::Scheduled => "Scheduled",
            Self::Paid => "Paid",
            Self::Held => "On hold",
            Self::Voided => "Voided",
        }
    }
}

/// The supplier's document as stored in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillDocument {
    pub key: String,
    pub name: String,
    pub media_type: String,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct BillLineInput {
    pub description: String,
    pub account_id: Uuid,
    pub fund_id: Uuid,
    pub tax_rate_id: Uuid,
    pub net_pence: i64,
    /// The VAT as the supplier's invoice shows it; worked out from the rate if not given. It
    /// may differ from the rate's figure by a penny (suppliers round on the total).
    pub vat_pence: Option<i64>,
    pub vat_recoverable: bool,
}

#[derive(Debug, Clone)]
pub struct BillInput {
    pub site_id: Uuid,
    pub vendor_id: Uuid,
    pub work_order_id: Option<Uuid>,
    pub supplier_reference: String,
    pub issue_date: Date,
    /// 30 days after issue if not given.
    pub due_date: Option<Date>,
    pub incurred_on: Option<Date>,
    pub description: Option<String>,
    pub lines: Vec<BillLineInput>,
    /// The total the invoice states, checked against the lines.
    pub total_pence: Option<i64>,
    pub source: &'static str,
    pub document: Option<BillDocument>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bill {
    pub id: Uuid,
    pub site_id: Uuid,
    pub site_name: String,
    pub vendor_id: Uuid,
    pub vendor_name: String,
    pub work_order_id: Option<Uuid>,
    pub work_order_reference: Option<String>,
    pub supplier_reference: String,
    pub number: Option<String>,
    pub issue_date: Date,
    pub due_date: Date,
    pub incurred_on: Option<Date>,
    pub description: Option<String>,
    /// The stored state: a bill in a run is stored as approved (see `in_run`).
    pub status: String,
    pub held_from: Option<String>,
    pub hold_reason: Option<String>,
    pub void_reason: Option<String>,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub total_pence: i64,
    pub paid_pence: i64,
    pub source: String,
    pub document_key: Option<String>,
    pub document_name: Option<String>,
    pub document_type: Option<String>,
    pub document_sha256: Option<String>,
    pub journal_id: Option<Uuid>,
    pub void_journal_id: Option<Uuid>,
    pub created_by: String,
    pub created_by_membership: Option<Uuid>,
    pub submitted_by: Option<String>,
    pub submitted_by_membership: Option<Uuid>,
    pub approved_by: Option<String>,
    pub returned_reason: Option<String>,
    pub created_at: OffsetDateTime,
    /// Whether a payment still to be made holds the bill: a payment run awaiting approval or
    /// approved and not yet paid (migration 0046).
    pub in_run: bool,
}

impl Bill {
    /// Where the bill is: scheduled while an approved bill is in a run not yet paid.
    pub fn status(&self) -> BillStatus {
        match BillStatus::parse(&self.status).unwrap_or(BillStatus::Draft) {
            BillStatus::Approved if self.in_run => BillStatus::Scheduled,
            stored => stored,
        }
    }

    pub fn outstanding_pence(&self) -> i64 {
        self.total_pence - self.paid_pence
    }

    /// "BIL-2026-000012 (Bright Spark Plumbing INV-1042)" or, before approval, the supplier's
    /// reference.
    pub fn label(&self) -> String {
        match &self.number {
            Some(n) => format!("{n} ({} {})", self.vendor_name, self.supplier_reference),
            None => format!("{} {}", self.vendor_name, self.supplier_reference),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillLine {
    pub id: Uuid,
    pub line_no: i16,
    pub description: String,
    pub account_id: Uuid,
    pub account_label: String,
    pub fund_id: Uuid,
    pub fund_name: String,
    pub tax_rate_id: Uuid,
    pub tax_rate_name: String,
    pub net_pence: i64,
    pub vat_pence: i64,
    pub vat_recoverable: bool,
}

/// Whether a payment still to be made holds bill `b` (see `Bill::in_run`).
macro_rules! in_run {
    () => {
        "exists (select from supplier_payment_line l
                   join supplier_payment p on p.organisation_id = l.organisation_id
                    and p.id = l.payment_id and p.status = 'scheduled'
                  where l.organisation_id = b.organisation_id and l.bill_id = b.id)"
    };
}

/// Whether a payment still to be made holds bill `b`, in SQL.
pub const IN_RUN: &str = in_run!();

/// Bill `b`'s state as `Bill::status` reads it, for filtering in SQL.
pub const STATUS: &str = concat!(
    "(case when b.status = 'approved' and ",
    in_run!(),
    " then 'scheduled' else b.status end)"
);

pub(crate) const SELECT: &str = concat!(
    "select b.id, b.site_id, s.name as site_name, b.vendor_id,
        v.name as vendor_name, b.work_order_id, w.reference as work_order_reference,
        b.supplier_reference, b.number, b.issue_date, b.due_date, b.incurred_on, b.description,
        b.status, b.held_from, b.hold_reason, b.void_reason, b.net_pence, b.vat_pence,
        b.total_pence, b.paid_pence, b.source, b.document_key, b.document_name,
        b.document_type, b.document_sha256, b.journal_id, b.void_journal_id, b.created_by,
        b.created_by_membership, b.submitted_by, b.submitted_by_membership, b.approved_by,
        b.returned_reason, b.created_at, ",
    in_run!(),
    " as in_run
   from bill b
   join site s on s.organisation_id = b.organisation_id and s.id = b.site_id
   join vendor v on v.organisation_id = b.organisation_id and v.id = b.vendor_id
   left join work_order w on w.organisation_id = b.organisation_id and w.id = b.work_order_id",
);

pub async fn find(tx: &mut TenantTx, id: Uuid) -> Result<Option<Bill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 and b.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub(crate) async fn find_for_update(tx: &mut TenantTx, id: Uuid) -> Result<Bill, LedgerError> {
    sqlx::query("select 1 from bill where organisation_id = $1 and id = $2 for update")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    find(tx, id).await?.ok_or(LedgerError::NotFound)
}

pub async fn lines(tx: &mut TenantTx, bill: Uuid) -> Result<Vec<BillLine>, DbError> {
    Ok(sqlx::query_as(
        "select l.id, l.line_no, l.description, l.account_id,
                a.code || ' ' || a.name as account_label, l.fund_id, f.name as fund_name,
                l.tax_rate_id, t.name as tax_rate_name, l.net_pence, l.vat_pence,
                l.vat_recoverable
           from bill_line l
           join ledger_account a on a.organisation_id = l.organisation_id and a.id = l.account_id
           join fund f on f.organisation_id = l.organisation_id and f.id = l.fund_id
           join tax_rate t on t.organisation_id = l.organisation_id and t.id = l.tax_rate_id
          where l.organisation_id = $1 and l.bill_id = $2 order by l.line_no",
    )
    .bind(tx.org().0)
    .bind(bill)
    .fetch_all(tx.conn())
    .await?)
}

/// A site's bills, newest first, optionally of one status (at most `limit`).
pub async fn for_site(
    tx: &mut TenantTx,
    site: Uuid,
    status: Option<BillStatus>,
    limit: i64,
) -> Result<Vec<Bill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 and b.site_id = $2
            and ($3::text is null or {STATUS} = $3)
          order by b.issue_date desc, b.created_at desc limit $4"
    )))
    .bind(tx.org().0)
    .bind(site)
    .bind(status.map(BillStatus::as_str))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// The bills coded to a work order.
pub async fn for_work_order(tx: &mut TenantTx, work_order: Uuid) -> Result<Vec<Bill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 and b.work_order_id = $2
          order by b.issue_date, b.created_at"
    )))
    .bind(tx.org().0)
    .bind(work_order)
    .fetch_all(tx.conn())
    .await?)
}

/// A vendor's bills, oldest first.
pub async fn for_vendor(tx: &mut TenantTx, vendor: Uuid) -> Result<Vec<Bill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 and b.vendor_id = $2
          order by b.issue_date, b.created_at"
    )))
    .bind(tx.org().0)
    .bind(vendor)
    .fetch_all(tx.conn())
    .await?)
}

/// A line as checked: its VAT and the rate's name.
struct Checked<'a> {
    line: &'a BillLineInput,
    vat: i64,
}

async fn check_lines<'a>(
    tx: &mut TenantTx,
    site: Uuid,
    on: Date,
    lines: &'a [BillLineInput],
) -> Result<Vec<Checked<'a>>, LedgerError> {
    if lines.is_empty() {
        return Err(refused("Add at least one line."));
    }
    if lines.len() > 200 {
        return Err(refused("A bill has at most 200 lines."));
    }
    let coding = Coding::load(tx, site).await?;
    let mut out = Vec::with_capacity(lines.len());
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
        let worked = vat_pence(line.net_pence, u32::try_from(basis_points).unwrap_or(0));
        let vat = match line.vat_pence {
            None => worked,
            Some(v) if v < 0 => {
                return Err(refused(format!("Line {n}: the VAT cannot be negative.")));
            }
            Some(v) if (v - worked).abs() <= 1 => v,
            Some(v) => {
                return Err(refused(format!(
                    "Line {n}: VAT at {} on {} is {}, not {}; check the rate or the figure.",
                    coding.rate_name(line.tax_rate_id),
                    format_pence(line.net_pence),
                    format_pence(worked),
                    format_pence(v)
                )));
            }
        };
        out.push(Checked { line, vat });
    }
    Ok(out)
}

/// Saves a new bill or a draft's changes. Refuses a supplier's invoice number already entered
/// for the vendor, lines that do not add up to the stated total, and a work order of another
/// site or contractor. Coding a bill to a completed work order moves it to invoiced.
pub async fn save_draft(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &BillInput,
    who: &Signer,
) -> Result<Uuid, LedgerError> {
    lock_books(tx).await?;
    if let Some(id) = id {
        let bill = find_for_update(tx, id).await?;
        if bill.status() != BillStatus::Draft {
            return Err(refused(format!(
                "{} is {}: only a draft is changed.",
                bill.label(),
                bill.status().label().to_lowercase()
            )));
        }
    }
    let site_known: bool = sqlx::query_scalar(
        "select exists (select from site where organisation_id = $1 and id = $2)",
    )
    .bind(tx.org().0)
    .bind(input.site_id)
    .fetch_one(tx.conn())
    .await?;
    if !site_known {
        return Err(LedgerError::NotFound);
    }
    ledger::ensure_books(tx, input.site_id).await?;
    ledger::ensure_tax_rates(tx).await?;
    let vendor: Option<(String, Option<OffsetDateTime>)> = sqlx::query_as(
        "select name, archived_at from vendor where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(input.vendor_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((vendor_name, vendor_archived)) = vendor else {
        return Err(refused("Choose the supplier."));
    };
    if vendor_archived.is_some() {
        return Err(refused(format!(
            "{vendor_name} is archived: restore the vendor first."
        )));
    }
    let reference = input.supplier_reference.trim();
    if reference.is_empty() || reference.chars().count() > 50 {
        return Err(refused(
            "Give the supplier's invoice number (up to 50 characters).",
        ));
    }
    plain(reference, "supplier's invoice number")?;
    check_year(input.issue_date, "invoice date")?;
    let due = input
        .due_date
        .unwrap_or_else(|| input.issue_date + Duration::days(30));
    check_year(due, "due date")?;
    if due < input.issue_date {
        return Err(refused("The due date is before the invoice date."));
    }
    if let Some(incurred) = input.incurred_on {
        check_year(incurred, "date the cost was incurred")?;
    }
    let description = match input
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) if d.chars().count() > 300 => {
            return Err(refused("The description is at most 300 characters."));
        }
        Some(d) => {
            plain(d, "description")?;
            Some(d.to_owned())
        }
        None => None,
    };
    if !matches!(input.source, "admin" | "upload" | "contractorport") {
        return Err(refused("Unknown source."));
    }
    if let Some(doc) = &input.document
        && !matches!(
            doc.media_type.as_str(),
            "application/pdf" | "image/jpeg" | "image/png"
        )
    {
        return Err(refused(
            "The supplier's invoice must be a PDF, JPEG or PNG file.",
        ));
    }
    // The same supplier invoice entered twice is refused.
    let duplicate: Option<(Option<String>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select b.number, {STATUS} from bill b
          where b.organisation_id = $1 and b.vendor_id = $2
            and b.supplier_reference_key = lower(btrim($3)) and b.status <> 'voided'
            and ($4::uuid is null or b.id <> $4)
          limit 1"
    )))
    .bind(tx.org().0)
    .bind(input.vendor_id)
    .bind(reference)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some((number, status)) = duplicate {
        return Err(refused(format!(
            "{vendor_name}'s invoice {reference} is already entered{} ({}).",
            number.map(|n| format!(" as {n}")).unwrap_or_default(),
            BillStatus::parse(&status).map_or("", |s| s.label())
        )));
    }
    let checked = check_lines(tx, input.site_id, input.issue_date, &input.lines).await?;
    let net: i64 = checked.iter().map(|c| c.line.net_pence).sum();
    let vat: i64 = checked.iter().map(|c| c.vat).sum();
    if net + vat > MAX_LINE_PENCE {
        return Err(refused(
            "The bill is more than £10,000,000,000.00; check the figures.",
        ));
    }
    if let Some(stated) = input.total_pence
        && stated != net + vat
    {
        return Err(refused(format!(
            "The lines add up to {} (net {} + VAT {}), not the invoice's total of {}.",
            format_pence(net + vat),
            format_pence(net),
            format_pence(vat),
            format_pence(stated)
        )));
    }
    if let Some(wo) = input.work_order_id {
        check_work_order(tx, wo, input.site_id, input.vendor_id, &vendor_name).await?;
    }

    let id = match id {
        Some(id) => {
            sqlx::query(
                "update bill set vendor_id = $3, work_order_id = $4, supplier_reference = $5,
                        issue_date = $6, due_date = $7, incurred_on = $8, description = $9,
                        net_pence = $10, vat_pence = $11, total_pence = $12,
                        document_key = coalesce($13, document_key),
                        document_name = coalesce($14, document_name),
                        document_type = coalesce($15, document_type),
                        document_sha256 = coalesce($16, document_sha256), updated_at = now()
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.vendor_id)
            .bind(input.work_order_id)
            .bind(reference)
            .bind(input.issue_date)
            .bind(due)
            .bind(input.incurred_on)
            .bind(&description)
            .bind(net)
            .bind(vat)
            .bind(net + vat)
            .bind(input.document.as_ref().map(|d| d.key.as_str()))
            .bind(input.document.as_ref().map(|d| d.name.as_str()))
            .bind(input.document.as_ref().map(|d| d.media_type.as_str()))
            .bind(input.document.as_ref().map(|d| d.sha256.as_str()))
            .execute(tx.conn())
            .await?;
            sqlx::query("delete from bill_line where organisation_id = $1 and bill_id = $2")
                .bind(tx.org().0)
                .bind(id)
                .execute(tx.conn())
                .await?;
            id
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query(
                "insert into bill (organisation_id, id, site_id, vendor_id, work_order_id,
                        supplier_reference, issue_date, due_date, incurred_on, description,
                        net_pence, vat_pence, total_pence, source, document_key, document_name,
                        document_type, document_sha256, created_by, created_by_membership)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                         $17, $18, $19, $20)",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.site_id)
            .bind(input.vendor_id)
            .bind(input.work_order_id)
            .bind(reference)
            .bind(input.issue_date)
            .bind(due)
            .bind(input.incurred_on)
            .bind(&description)
            .bind(net)
            .bind(vat)
            .bind(net + vat)
            .bind(input.source)
            .bind(input.document.as_ref().map(|d| d.key.as_str()))
            .bind(input.document.as_ref().map(|d| d.name.as_str()))
            .bind(input.document.as_ref().map(|d| d.media_type.as_str()))
            .bind(input.document.as_ref().map(|d| d.sha256.as_str()))
            .bind(&who.name)
            .bind(who.membership_id)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    for (i, c) in checked.iter().enumerate() {
        sqlx::query(
            "insert into bill_line (organisation_id, id, bill_id, site_id, line_no, description,
                    account_id, fund_id, tax_rate_id, net_pence, vat_pence, vat_recoverable)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(input.site_id)
        .bind(i16::try_from(i + 1).unwrap_or(i16::MAX))
        .bind(c.line.description.trim())
        .bind(c.line.account_id)
        .bind(c.line.fund_id)
        .bind(c.line.tax_rate_id)
        .bind(c.line.net_pence)
        .bind(c.vat)
        .bind(c.line.vat_recoverable)
        .execute(tx.conn())
        .await?;
    }
    if let Some(wo) = input.work_order_id {
        sqlx::query(
            "update work_order set status = 'invoiced', updated_at = now()
              where organisation_id = $1 and id = $2 and status = 'completed'",
        )
        .bind(tx.org().0)
        .bind(wo)
        .execute(tx.conn())
        .await?;
    }
    Ok(id)
}

async fn check_work_order(
    tx: &mut TenantTx,
    wo: Uuid,
    site: Uuid,
    vendor: Uuid,
    vendor_name: &str,
) -> Result<(), LedgerError> {
    #[derive(sqlx::FromRow)]
    struct Job {
        reference: String,
        site_id: Uuid,
        status: String,
        vendor_id: Option<Uuid>,
        vendor_name: Option<String>,
    }
    let job: Option<Job> = sqlx::query_as(
        "select w.reference, w.site_id, w.status, w.vendor_id, v.name as vendor_name
           from work_order w
           left join vendor v on v.organisation_id = w.organisation_id and v.id = w.vendor_id
          where w.organisation_id = $1 and w.id = $2",
    )
    .bind(tx.org().0)
    .bind(wo)
    .fetch_optional(tx.conn())
    .await?;
    let Some(Job {
        reference,
        site_id: wo_site,
        status,
        vendor_id: wo_vendor,
        vendor_name: wo_vendor_name,
    }) = job
    else {
        return Err(refused("Choose the work order again."));
    };
    if wo_site != site {
        return Err(refused(format!(
            "{reference} is for another site: code the bill to one of this site's work orders."
        )));
    }
    if matches!(
        status.as_str(),
        "draft" | "invited" | "quoted" | "declined" | "cancelled"
    ) {
        return Err(refused(format!(
            "{reference} has not been awarded: a bill is coded to work that was instructed."
        )));
    }
    if let Some(other) = wo_vendor
        && other != vendor
    {
        return Err(refused(format!(
            "{reference} was awarded to {}, not {vendor_name}.",
            wo_vendor_name.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Other bills from the same supplier for the same amount on the same day: perhaps the same
/// invoice entered twice under another number.
pub async fn duplicate_warnings(tx: &mut TenantTx, bill: &Bill) -> Result<Vec<String>, DbError> {
    let twins: Vec<(Option<String>, String, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select b.number, b.supplier_reference, {STATUS} from bill b
          where b.organisation_id = $1 and b.vendor_id = $2 and b.total_pence = $3
            and b.issue_date = $4 and b.id <> $5 and b.status <> 'voided'
          order by b.created_at"
        )))
        .bind(tx.org().0)
        .bind(bill.vendor_id)
        .bind(bill.total_pence)
        .bind(bill.issue_date)
        .bind(bill.id)
        .fetch_all(tx.conn())
        .await?;
    Ok(twins
        .into_iter()
        .map(|(number, reference, status)| {
            format!(
                "{} also billed {} on {} (invoice {reference}{}, {}): check this is not the same invoice.",
                bill.vendor_name,
                format_pence(bill.total_pence),
                long_date(bill.issue_date),
                number.map(|n| format!(", {n}")).unwrap_or_default(),
                BillStatus::parse(&status).map_or("", |s| s.label()).to_lowercase()
            )
        })
        .collect())
}

/// Deletes a draft.
pub async fn delete_draft(tx: &mut TenantTx, id: Uuid) -> Result<(), LedgerError> {
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::Draft {
        return Err(refused("Only a draft is deleted; void the bill instead."));
    }
    sqlx::query("delete from bill where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    reopen_work_order(tx, bill.work_order_id).await?;
    Ok(())
}

/// Sends a draft for approval through its chain, if one covers it.
pub async fn submit(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::Draft {
        return Err(refused("Only a draft bill is submitted."));
    }
    let trade: Option<String> =
        sqlx::query_scalar("select trade from vendor where organisation_id = $1 and id = $2")
            .bind(tx.org().0)
            .bind(bill.vendor_id)
            .fetch_optional(tx.conn())
            .await?;
    approvals::open_request(
        tx,
        &Subject {
            record_type: "bill",
            record_id: id,
            amount_pence: bill.total_pence,
            site_id: Some(bill.site_id),
            category: trade.as_deref(),
        },
        who.membership_id,
    )
    .await?;
    sqlx::query(
        "update bill set status = 'awaiting_approval', submitted_by = $3,
                submitted_by_membership = $4, submitted_at = $5, returned_reason = null,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&who.name)
    .bind(who.membership_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Whether `who` entered or submitted the bill (by membership when both are known).
fn is_own(bill: &Bill, who: &Signer) -> bool {
    let same = |membership: Option<Uuid>, name: Option<&str>| match (membership, who.membership_id)
    {
        (Some(a), Some(b)) => a == b,
        _ => name == Some(who.name.as_str()),
    };
    same(bill.created_by_membership, Some(&bill.created_by))
        || same(bill.submitted_by_membership, bill.submitted_by.as_deref())
}

/// Approves as `who`: signs the chain if one covers the bill, and posts it once complete.
/// Nobody approves a bill they entered or submitted.
pub async fn approve(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Approval, LedgerError> {
    lock_books(tx).await?;
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::AwaitingApproval {
        return Err(refused("Only a bill awaiting approval is approved."));
    }
    if is_own(&bill, who) {
        return Err(refused(
            "You entered or submitted this bill: someone else must approve it.",
        ));
    }
    match approvals::sign(tx, "bill", id, who, now.date(), now).await? {
        Signed::Waiting(left) => Ok(Approval::Waiting(left)),
        Signed::NoChain | Signed::Complete => {
            post(tx, &bill, &who.name, now).await.map(Approval::Posted)
        }
    }
}

/// The Organisation Owner posts a bill past its chain, with a reason (everyone in the chain is
/// told).
pub async fn bypass(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    lock_books(tx).await?;
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::AwaitingApproval {
        return Err(refused("Only a bill awaiting approval is approved."));
    }
    let label = format!(
        "bill {} from {} on {} ({})",
        bill.supplier_reference,
        bill.vendor_name,
        bill.site_name,
        format_pence(bill.total_pence)
    );
    if !approvals::bypass(tx, "bill", id, &label, who, reason, now).await? {
        return Err(refused(
            "No approval chain is waiting on this bill: approve it instead.",
        ));
    }
    post(tx, &bill, &who.name, now).await
}

/// Sends it back to draft with the reason.
pub async fn reject(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::AwaitingApproval {
        return Err(refused("Only a bill awaiting approval can be sent back."));
    }
    let reason = reason_of(reason)?;
    approvals::reject(tx, "bill", id, who, &reason, now.date(), now).await?;
    sqlx::query(
        "update bill set status = 'draft', returned_reason = $3, submitted_by = null,
                submitted_by_membership = null, submitted_at = null, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

fn reason_of(reason: &str) -> Result<String, LedgerError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused("Give the reason (up to 300 characters)."));
    }
    plain(reason, "reason")?;
    Ok(reason.to_owned())
}

/// Posts the approved bill: each line's expense (with VAT the site cannot reclaim) and
/// reclaimable VAT debited, creditors control credited per fund.
async fn post(
    tx: &mut TenantTx,
    bill: &Bill,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    let creditors = ledger::control_account(tx, bill.site_id, "creditors")
        .await?
        .ok_or_else(|| {
            refused("The site has no creditors control account: set one in Financial settings.")
        })?
        .id;
    let bill_lines = lines(tx, bill.id).await?;
    let mut journal_lines = Vec::new();
    let mut per_fund: Vec<(Uuid, i64)> = Vec::new();
    let mut vat_account = None;
    for l in &bill_lines {
        let expense = if l.vat_recoverable {
            l.net_pence
        } else {
            l.net_pence + l.vat_pence
        };
        journal_lines.push(NewLine {
            account_id: l.account_id,
            fund_id: l.fund_id,
            amount_pence: expense,
            unit_id: None,
            contact_id: None,
            work_order_id: bill.work_order_id,
            description: Some(l.description.clone()),
        });
        if l.vat_recoverable && l.vat_pence > 0 {
            let vat = match vat_account {
                Some(v) => v,
                None => {
                    let v = ledger::control_account(tx, bill.site_id, "vat")
                        .await?
                        .ok_or_else(|| {
                            refused("The site has no VAT account: set one in Financial settings.")
                        })?
                        .id;
                    vat_account = Some(v);
                    v
                }
            };
            journal_lines.push(NewLine {
                account_id: vat,
                fund_id: l.fund_id,
                amount_pence: l.vat_pence,
                unit_id: None,
                contact_id: None,
                work_order_id: bill.work_order_id,
                description: Some(format!("VAT reclaimable: {}", l.description)),
            });
        }
        match per_fund.iter_mut().find(|(f, _)| *f == l.fund_id) {
            Some((_, sum)) => *sum += l.net_pence + l.vat_pence,
            None => per_fund.push((l.fund_id, l.net_pence + l.vat_pence)),
        }
    }
    for (fund, sum) in per_fund {
        journal_lines.push(NewLine {
            account_id: creditors,
            fund_id: fund,
            amount_pence: -sum,
            unit_id: None,
            contact_id: None,
            work_order_id: bill.work_order_id,
            description: Some(format!("{} {}", bill.vendor_name, bill.supplier_reference)),
        });
    }
    let number = next_number(tx, "bill", "BIL", bill.issue_date.year()).await?;
    let (journal, _) = ledger::post(
        tx,
        &NewJournal {
            site_id: bill.site_id,
            date: bill.issue_date,
            description: format!(
                "Bill {number}: {} invoice {}",
                bill.vendor_name, bill.supplier_reference
            ),
            source_type: "bill".into(),
            source_id: Some(bill.id),
            lines: journal_lines,
        },
        by,
        now,
    )
    .await?;
    sqlx::query(
        "update bill set status = 'approved', number = $3, journal_id = $4, approved_by = $5,
                approved_at = $6, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(bill.id)
    .bind(&number)
    .bind(journal)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(number)
}

/// Holds an approved or scheduled bill: it is not paid until released.
pub async fn hold(tx: &mut TenantTx, id: Uuid, reason: &str) -> Result<(), LedgerError> {
    let bill = find_for_update(tx, id).await?;
    if !matches!(bill.status(), BillStatus::Approved | BillStatus::Scheduled) {
        return Err(refused(format!(
            "{} is {}: only an approved bill awaiting payment is held.",
            bill.label(),
            bill.status().label().to_lowercase()
        )));
    }
    let reason = reason_of(reason)?;
    // A bill whose run's file is made may already be on its way: holding it here would not stop
    // the bank, and would stop the run being recorded as paid.
    let filed: Option<(String, OffsetDateTime)> = sqlx::query_as(
        "select r.number, r.file_made_at from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
           join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id
          where l.organisation_id = $1 and l.bill_id = $2 and p.status = 'scheduled'
            and r.status = 'approved' and r.file_made_at is not null
          limit 1",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some((run, at)) = filed {
        return Err(refused(format!(
            "{}'s payment is in {run}, whose bank file was made on {}: ask the bank to stop it, \
             then cancel the run, rather than holding the bill.",
            bill.label(),
            proplink_domain::dates::uk_long_date(at)
        )));
    }
    sqlx::query(
        "update bill set held_from = 'approved', status = 'held', hold_reason = $3,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Releases a held bill: approved again, and scheduled if its run still holds it.
pub async fn release(tx: &mut TenantTx, id: Uuid) -> Result<(), LedgerError> {
    let bill = find_for_update(tx, id).await?;
    if bill.status() != BillStatus::Held {
        return Err(refused("Only a bill on hold is released."));
    }
    sqlx::query(
        "update bill set status = held_from, held_from = null, hold_reason = null,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Voids a bill with a reason: a posted one's journal is reversed on `on`. A bill with money
/// paid against it, or in a payment run, is not voided.
pub async fn void(
    tx: &mut TenantTx,
    id: Uuid,
    reason: &str,
    on: Date,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let bill = find_for_update(tx, id).await?;
    let reason = reason_of(reason)?;
    match bill.status() {
        BillStatus::Voided => return Err(refused("The bill is already voided.")),
        BillStatus::Paid => {
            return Err(refused(
                "The bill is paid: reverse its payment first, then void it.",
            ));
        }
        BillStatus::Scheduled => {
            return Err(refused(
                "The bill is in a payment run: take it out of the run first.",
            ));
        }
        BillStatus::Held if bill.in_run => {
            return Err(refused(
                "The bill is in a payment run: take it out of the run first.",
            ));
        }
        _ => {}
    }
    if bill.paid_pence > 0 {
        return Err(refused(format!(
            "{} has been paid against it: reverse the payment first.",
            format_pence(bill.paid_pence)
        )));
    }
    let reversal = match bill.journal_id {
        Some(journal) => {
            check_year(on, "date of the reversal")?;
            let (reversal, _) = ledger::reverse(
                tx,
                journal,
                on.max(bill.issue_date),
                &format!("Bill voided: {reason}"),
                by,
                now,
            )
            .await?;
            Some(reversal)
        }
        None => None,
    };
    if bill.status() == BillStatus::AwaitingApproval {
        approvals::withdraw(tx, "bill", id).await?;
    }
    sqlx::query(
        "update bill set status = 'voided', void_reason = $3, void_journal_id = $4,
                held_from = null, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&reason)
    .bind(reversal)
    .execute(tx.conn())
    .await?;
    reopen_work_order(tx, bill.work_order_id).await?;
    Ok(())
}

/// A work order left with no live bill goes back from invoiced to completed.
async fn reopen_work_order(tx: &mut TenantTx, wo: Option<Uuid>) -> Result<(), DbError> {
    if let Some(wo) = wo {
        sqlx::query(
            "update work_order set status = 'completed', updated_at = now()
              where organisation_id = $1 and id = $2 and status = 'invoiced'
                and not exists (select from bill b where b.organisation_id = $1
                                  and b.work_order_id = $2 and b.status <> 'voided')",
        )
        .bind(tx.org().0)
        .bind(wo)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// A site's work orders a bill can be coded to (awarded and not cancelled), newest first, as
/// (id, "WO-2026-0042 Leak in the plant room (Bright Spark Plumbing)").
pub async fn work_order_choices(
    tx: &mut TenantTx,
    site: Uuid,
) -> Result<Vec<(Uuid, String)>, DbError> {
    Ok(sqlx::query_as(
        "select w.id, w.reference || ' ' || w.title
                || coalesce(' (' || v.name || ')', '')
           from work_order w
           left join vendor v on v.organisation_id = w.organisation_id and v.id = w.vendor_id
          where w.organisation_id = $1 and w.site_id = $2
            and w.status in ('approved', 'in_progress', 'completed', 'invoiced', 'closed')
          order by w.created_at desc limit 200",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}
