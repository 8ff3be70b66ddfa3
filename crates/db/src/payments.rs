//! Supplier payments (issue 7; docs-spec §2.6 "Supplier payments and batches"): paying
//! approved bills, one at a time or in payment runs.
//!
//! A **payment run** pays approved bills due by a date out of one bank account, one payment
//! per supplier covering all its bills: scheduled by one person (`payment.schedule_batch`),
//! approved by another (`payment.approve_batch`, and any approval chain for payment batches),
//! turned into the bank's file (BACS Standard 18 or CSV, as the bank account says), and marked
//! paid when the bank confirms. Only then does it post: creditors control against the bank, in
//! each site's books, per fund. A **single payment** posts when it is recorded. Reversing a
//! payment reverses its journals and re-opens the bills it paid.
//!
//! The client-money rule is checked whenever money is committed (scheduling, approving,
//! marking paid, a single payment): a site's fund may not go below zero in the bank account.
//! Every refusal is a sentence and changes nothing.

use crate::approvals::{self, Signed, Signer, Subject};
use crate::bank_accounts::{self, AccountType, BankAccount, FileFormat, Override};
use crate::bills::{self, Bill, BillStatus};
use crate::error::DbError;
use crate::ledger::{
    self, LedgerError, NewJournal, NewLine, lock_books, next_number, plain, refused,
};
use crate::people;
use crate::receivables::{Approval, check_year};
use crate::tenant::TenantTx;
use proplink_auth::seal::DataKey;
use proplink_domain::bacs::{self, Credit, Originator, Submission};
use proplink_domain::dates::long_date;
use proplink_domain::uk::format_pence;
use std::collections::{BTreeMap, HashMap};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// How a supplier is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Bacs,
    FasterPayment,
    Cheque,
    Card,
    Other,
}

impl Method {
    pub const ALL: [Self; 5] = [
        Self::Bacs,
        Self::FasterPayment,
        Self::Cheque,
        Self::Card,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bacs => "bacs",
            Self::FasterPayment => "faster_payment",
            Self::Cheque => "cheque",
            Self::Card => "card",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Bacs => "BACS",
            Self::FasterPayment => "Faster Payment",
            Self::Cheque => "Cheque",
            Self::Card => "Card",
            Self::Other => "Other",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// An approved bill that can be paid, for choosing what a run pays.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PayableBill {
    pub id: Uuid,
    pub number: String,
    pub site_id: Uuid,
    pub site_name: String,
    pub vendor_id: Uuid,
    pub vendor_name: String,
    pub supplier_reference: String,
    pub issue_date: Date,
    pub due_date: Date,
    pub outstanding_pence: i64,
    /// Whether the supplier's bank details are on file (a run pays by bank transfer).
    pub vendor_has_bank: bool,
}

/// Approved bills with money owing and in no run, due on or before `due_by`, of the sites the
/// bank account holds money for; by supplier, then due date.
pub async fn payable_bills(
    tx: &mut TenantTx,
    bank: Uuid,
    due_by: Date,
) -> Result<Vec<PayableBill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select b.id, b.number, b.site_id, s.name as site_name, b.vendor_id,
                v.name as vendor_name, b.supplier_reference, b.issue_date, b.due_date,
                b.total_pence - b.paid_pence as outstanding_pence,
                v.bank_sealed is not null as vendor_has_bank
           from bill b
           join site s on s.organisation_id = b.organisation_id and s.id = b.site_id
           join vendor v on v.organisation_id = b.organisation_id and v.id = b.vendor_id
          where b.organisation_id = $1 and b.status = 'approved' and b.due_date <= $3
            and b.total_pence > b.paid_pence
            and exists (select from ledger_account a where a.organisation_id = b.organisation_id
                          and a.site_id = b.site_id and a.bank_account_id = $2
                          and a.archived_at is null)
            and not {}
          order by v.name, b.due_date, b.number
          limit 20000",
        bills::IN_RUN
    )))
    .bind(tx.org().0)
    .bind(bank)
    .bind(due_by)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRun {
    pub id: Uuid,
    pub number: String,
    pub bank_account_id: Uuid,
    pub bank_name: String,
    pub payment_date: Date,
    pub due_by: Date,
    pub status: String,
    pub payment_count: i32,
    pub bill_count: i32,
    pub total_pence: i64,
    pub scheduled_by: String,
    pub scheduled_by_membership: Option<Uuid>,
    pub scheduled_at: OffsetDateTime,
    pub approved_by: Option<String>,
    pub approved_at: Option<OffsetDateTime>,
    pub file_made_by: Option<String>,
    pub file_made_at: Option<OffsetDateTime>,
    /// The format of the last bank file made (`bacs_std18` or `csv`).
    pub file_format: Option<String>,
    pub paid_by: Option<String>,
    pub paid_at: Option<OffsetDateTime>,
    pub cancelled_by: Option<String>,
    pub cancel_reason: Option<String>,
    pub override_by: Option<String>,
    pub override_reason: Option<String>,
}

impl PaymentRun {
    pub fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "scheduled" => "Scheduled: awaiting approval",
            "approved" => "Approved: ready for the bank",
            "paid" => "Paid",
            _ => "Cancelled",
        }
    }
}

const RUN_SELECT: &str = "select r.id, r.number, r.bank_account_id, k.name as bank_name,
        r.payment_date, r.due_by, r.status, r.payment_count, r.bill_count, r.total_pence,
        r.scheduled_by, r.scheduled_by_membership, r.scheduled_at, r.approved_by, r.approved_at,
        r.file_made_by, r.file_made_at, r.file_format, r.paid_by, r.paid_at, r.cancelled_by, r.cancel_reason,
        r.override_by, r.override_reason
   from payment_run r
   join bank_account k on k.organisation_id = r.organisation_id and k.id = r.bank_account_id";

pub async fn find_run(tx: &mut TenantTx, id: Uuid) -> Result<Option<PaymentRun>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} where r.organisation_id = $1 and r.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The newest runs first.
pub async fn runs(tx: &mut TenantTx, limit: i64) -> Result<Vec<PaymentRun>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RUN_SELECT} where r.organisation_id = $1 order by r.created_at desc limit $2"
    )))
    .bind(tx.org().0)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

async fn run_for_update(tx: &mut TenantTx, id: Uuid) -> Result<PaymentRun, LedgerError> {
    sqlx::query("select 1 from payment_run where organisation_id = $1 and id = $2 for update")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    find_run(tx, id).await?.ok_or(LedgerError::NotFound)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub number: String,
    pub payment_run_id: Option<Uuid>,
    pub run_number: Option<String>,
    pub vendor_id: Uuid,
    pub vendor_name: String,
    pub bank_account_id: Uuid,
    pub bank_name: String,
    pub payment_date: Date,
    pub method: String,
    pub reference: Option<String>,
    pub amount_pence: i64,
    pub status: String,
    pub reversed_on: Option<Date>,
    pub reverse_reason: Option<String>,
    pub reversed_by: Option<String>,
    pub remittance_sent_at: Option<OffsetDateTime>,
    pub override_by: Option<String>,
    pub override_reason: Option<String>,
    pub recorded_by: String,
    pub created_at: OffsetDateTime,
}

impl Payment {
    pub fn method_label(&self) -> &'static str {
        Method::parse(&self.method).map_or("Other", Method::label)
    }

    pub fn status_label(&self) -> &'static str {
        match self.status.as_str() {
            "scheduled" => "Scheduled",
            "paid" => "Paid",
            "reversed" => "Reversed",
            _ => "Cancelled",
        }
    }
}

const PAYMENT_SELECT: &str = "select p.id, p.number, p.payment_run_id, r.number as run_number,
        p.vendor_id, v.name as vendor_name, p.bank_account_id, k.name as bank_name,
        p.payment_date, p.method, p.reference, p.amount_pence, p.status, p.reversed_on,
        p.reverse_reason, p.reversed_by, p.remittance_sent_at, p.override_by, p.override_reason,
        p.recorded_by, p.created_at
   from supplier_payment p
   join vendor v on v.organisation_id = p.organisation_id and v.id = p.vendor_id
   join bank_account k on k.organisation_id = p.organisation_id and k.id = p.bank_account_id
   left join payment_run r on r.organisation_id = p.organisation_id and r.id = p.payment_run_id";

pub async fn find_payment(tx: &mut TenantTx, id: Uuid) -> Result<Option<Payment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The payments of a run, by supplier.
pub async fn run_payments(tx: &mut TenantTx, run: Uuid) -> Result<Vec<Payment>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_SELECT} where p.organisation_id = $1 and p.payment_run_id = $2
          order by v.name, p.number"
    )))
    .bind(tx.org().0)
    .bind(run)
    .fetch_all(tx.conn())
    .await?)
}

/// A payment of one bill, with what it paid of that bill (a payment to a supplier may cover
/// bills of other sites too, which a reader of this bill need not see).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillPayment {
    pub id: Uuid,
    pub number: String,
    pub payment_run_id: Option<Uuid>,
    pub run_number: Option<String>,
    pub payment_date: Date,
    pub method: String,
    pub status: String,
    /// Paid (or to be paid) of this bill.
    pub for_bill_pence: i64,
}

impl BillPayment {
    /// "PAY-2026-000004 on 3 June 2026: £450.00 by BACS (Paid)"
    pub fn describe(&self) -> String {
        format!(
            "{} on {}: {} by {} ({})",
            self.number,
            long_date(self.payment_date),
            format_pence(self.for_bill_pence),
            Method::parse(&self.method).map_or("Other", Method::label),
            match self.status.as_str() {
                "scheduled" => "Scheduled",
                "paid" => "Paid",
                "reversed" => "Reversed",
                _ => "Cancelled",
            }
        )
    }
}

/// The payments of a bill, oldest first, each with its amount for this bill alone.
pub async fn payments_of_bill(tx: &mut TenantTx, bill: Uuid) -> Result<Vec<BillPayment>, DbError> {
    Ok(sqlx::query_as(
        "select p.id, p.number, p.payment_run_id, r.number as run_number, p.payment_date,
                p.method, p.status, sum(l.amount_pence)::bigint as for_bill_pence
           from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
           left join payment_run r on r.organisation_id = p.organisation_id
                and r.id = p.payment_run_id
          where l.organisation_id = $1 and l.bill_id = $2
          group by p.organisation_id, p.id, r.number
          order by p.created_at",
    )
    .bind(tx.org().0)
    .bind(bill)
    .fetch_all(tx.conn())
    .await?)
}

/// What a payment paid, a line per bill (its funds added together).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaidBill {
    pub bill_id: Uuid,
    pub bill_number: String,
    pub supplier_reference: String,
    pub site_id: Uuid,
    pub site_name: String,
    pub issue_date: Date,
    pub work_order_id: Option<Uuid>,
    pub work_order_reference: Option<String>,
    pub bill_status: String,
    pub amount_pence: i64,
}

pub async fn paid_bills(tx: &mut TenantTx, payment: Uuid) -> Result<Vec<PaidBill>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select b.id as bill_id, b.number as bill_number, b.supplier_reference, b.site_id,
                s.name as site_name, b.issue_date, b.work_order_id,
                w.reference as work_order_reference, {} as bill_status,
                sum(l.amount_pence)::bigint as amount_pence
           from supplier_payment_line l
           join bill b on b.organisation_id = l.organisation_id and b.id = l.bill_id
           join site s on s.organisation_id = b.organisation_id and s.id = b.site_id
           left join work_order w on w.organisation_id = b.organisation_id and w.id = b.work_order_id
          where l.organisation_id = $1 and l.payment_id = $2
          group by b.organisation_id, b.id, s.name, w.reference
          order by b.number",
        bills::STATUS
    )))
    .bind(tx.org().0)
    .bind(payment)
    .fetch_all(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// What bills owe, per fund

/// What a bill still owes in one of its funds.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Owed {
    bill_id: Uuid,
    site_id: Uuid,
    fund_id: Uuid,
    pence: i64,
}

/// What each bill owes per fund (its lines' gross in the fund less what paid payments paid in
/// it), funds in the order of the bill's first line in each; funds owing nothing left out.
async fn owed_by_fund(tx: &mut TenantTx, bills: &[Uuid]) -> Result<Vec<Owed>, DbError> {
    Ok(sqlx::query_as(
        "select g.bill_id, g.site_id, g.fund_id, (g.gross - coalesce(p.paid, 0))::bigint as pence
           from (select bill_id, site_id, fund_id, sum(net_pence + vat_pence) as gross,
                        min(line_no) as first_line
                   from bill_line where organisation_id = $1 and bill_id = any($2)
                  group by organisation_id, bill_id, site_id, fund_id) g
           left join (select l.bill_id, l.fund_id, sum(l.amount_pence) as paid
                        from supplier_payment_line l
                        join supplier_payment sp on sp.organisation_id = l.organisation_id
                             and sp.id = l.payment_id and sp.status = 'paid'
                       where l.organisation_id = $1 and l.bill_id = any($2)
                       group by l.organisation_id, l.bill_id, l.fund_id) p
                  on p.bill_id = g.bill_id and p.fund_id = g.fund_id
          where g.gross > coalesce(p.paid, 0)
          order by g.bill_id, g.first_line",
    )
    .bind(tx.org().0)
    .bind(bills)
    .fetch_all(tx.conn())
    .await?)
}

/// Adds up what is to be paid per site and fund, for the client-money rule.
fn needs_of<'a>(lines: impl Iterator<Item = (Uuid, Uuid, i64)> + 'a) -> Vec<(Uuid, Uuid, i64)> {
    let mut sums: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    for (site, fund, pence) in lines {
        *sums.entry((site, fund)).or_default() += pence;
    }
    sums.into_iter().map(|((s, f), p)| (s, f, p)).collect()
}

async fn live_bank(tx: &mut TenantTx, id: Uuid) -> Result<BankAccount, LedgerError> {
    let bank = bank_accounts::find(tx, id)
        .await?
        .ok_or_else(|| refused("Choose the bank account to pay from."))?;
    if bank.archived_at.is_some() {
        return Err(refused(format!(
            "{} is archived: restore it or choose another account.",
            bank.name
        )));
    }
    Ok(bank)
}

fn override_of(
    bank: &BankAccount,
    override_: Option<&Override>,
) -> Result<Option<Override>, LedgerError> {
    let Some(o) = override_ else {
        return Ok(None);
    };
    let reason = o.reason.trim();
    if reason.is_empty() {
        return Ok(None);
    }
    if bank.account_type() != AccountType::Office {
        return Err(refused(format!(
            "{} holds client money: it is never overdrawn, so it takes no override.",
            bank.name
        )));
    }
    if reason.chars().count() > 300 {
        return Err(refused(
            "Give the override's reason in up to 300 characters.",
        ));
    }
    plain(reason, "override's reason")?;
    Ok(Some(Override {
        by: o.by.clone(),
        reason: reason.to_owned(),
    }))
}

fn reason_of(reason: &str) -> Result<String, LedgerError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused("Give the reason (up to 300 characters)."));
    }
    plain(reason, "reason")?;
    Ok(reason.to_owned())
}

/// Why a bill cannot be paid now, if it cannot.
fn unpayable(bill: &Bill) -> Option<String> {
    let label = bill.label();
    match bill.status() {
        BillStatus::Approved if bill.outstanding_pence() > 0 => None,
        BillStatus::Approved | BillStatus::Paid => Some(format!("{label} is already paid.")),
        BillStatus::Held => Some(format!(
            "{label} is on hold ({}): release it before paying it.",
            bill.hold_reason.as_deref().unwrap_or("no reason given")
        )),
        BillStatus::Scheduled => Some(format!(
            "{label} is already in a payment run: take it out of the run first."
        )),
        BillStatus::Voided => Some(format!("{label} is voided.")),
        BillStatus::Draft | BillStatus::AwaitingApproval => Some(format!(
            "{label} is not approved: only an approved bill is paid."
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Payment runs

/// What a run is to pay.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub bank_account_id: Uuid,
    pub payment_date: Date,
    pub due_by: Date,
    pub bill_ids: Vec<Uuid>,
    /// Only for an office account: paying more than a site's fund holds in it.
    pub override_: Option<Override>,
}

/// The most bills one run pays.
pub const MAX_RUN_BILLS: usize = 20_000;

/// A supplier's bank details checked as a payment file needs them.
struct Payee {
    name: String,
    sort_code: String,
    account_number: String,
}

/// The suppliers' bank details, in the clear, each checked as the bank file will need them.
async fn payees(
    tx: &mut TenantTx,
    key: &DataKey,
    vendors: &[Uuid],
) -> Result<HashMap<Uuid, Payee>, LedgerError> {
    let rows: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "select id, name, bank_account_name from vendor where organisation_id = $1 and id = any($2)",
    )
    .bind(tx.org().0)
    .bind(vendors)
    .fetch_all(tx.conn())
    .await?;
    let mut out = HashMap::new();
    for (id, name, holder) in rows {
        let details = people::vendor_bank_details(tx, key, id)
            .await?
            .ok_or_else(|| {
                refused(format!(
                    "{name} has no bank details: add them on the supplier's page, or pay the bill \
                 on its own by cheque or card."
                ))
            })?;
        let payee = Payee {
            name: holder
                .filter(|h| !h.trim().is_empty())
                .unwrap_or(name.clone()),
            sort_code: details.sort_code,
            account_number: details.account_number,
        };
        // The same check the file writer makes, so a run never stops at the bank file.
        bacs::payments_csv(&[Credit {
            payee_name: payee.name.clone(),
            sort_code: payee.sort_code.clone(),
            account_number: payee.account_number.clone(),
            amount_pence: 1,
            reference: "CHECK REFERENCE".into(),
        }])
        .map_err(|e| refused(format!("{name}'s bank details cannot be paid: {e}")))?;
        out.insert(id, payee);
    }
    Ok(out)
}

/// Schedules a run: every bill must be approved and owing, its site's money held in the bank
/// account, its supplier's bank details fit for a bank file, and the client-money rule met for
/// every site and fund. One payment per supplier; its lines are what makes the bills read as
/// scheduled (no bill is written: migration 0046). Returns the run.
pub async fn schedule_run(
    tx: &mut TenantTx,
    key: &DataKey,
    input: &RunInput,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Uuid, LedgerError> {
    lock_books(tx).await?;
    let bank = live_bank(tx, input.bank_account_id).await?;
    check_year(input.payment_date, "payment date")?;
    check_year(input.due_by, "due-by date")?;
    if input.payment_date < now.date() {
        return Err(refused(format!(
            "The payment date ({}) has passed: choose today or a later day.",
            long_date(input.payment_date)
        )));
    }
    if input.payment_date > now.date() + time::Duration::days(366) {
        return Err(refused("The payment date is more than a year away."));
    }
    let mut ids = input.bill_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(refused("Tick at least one bill to pay."));
    }
    if ids.len() > MAX_RUN_BILLS {
        return Err(refused(format!(
            "A run pays at most {MAX_RUN_BILLS} bills: split it by due date or bank account."
        )));
    }
    let override_ = override_of(&bank, input.override_.as_ref())?;
    sqlx::query(
        "select 1 from bill where organisation_id = $1 and id = any($2) order by id for update",
    )
    .bind(tx.org().0)
    .bind(&ids)
    .execute(tx.conn())
    .await?;
    let found: Vec<Bill> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} where b.organisation_id = $1 and b.id = any($2)",
        bills::SELECT
    )))
    .bind(tx.org().0)
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?;
    if found.len() != ids.len() {
        return Err(LedgerError::NotFound);
    }
    let mut problems: Vec<String> = found.iter().filter_map(unpayable).collect();
    problems.extend(found.iter().filter(|b| b.due_date > input.due_by).map(|b| {
        format!(
            "{} is due on {}, after the run's due-by date.",
            b.label(),
            long_date(b.due_date)
        )
    }));
    if !problems.is_empty() {
        return Err(refused(listed(problems)));
    }
    let mut vendors: Vec<Uuid> = found.iter().map(|b| b.vendor_id).collect();
    vendors.sort_unstable();
    vendors.dedup();
    payees(tx, key, &vendors).await?;
    // The bank details being approved: a digest of each supplier's sealed details now.
    let seals: HashMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>(
        "select id, encode(sha256(bank_sealed), 'hex') from vendor
          where organisation_id = $1 and id = any($2) and bank_sealed is not null",
    )
    .bind(tx.org().0)
    .bind(&vendors)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    let owed = owed_by_fund(tx, &ids).await?;
    let needs = needs_of(owed.iter().map(|o| (o.site_id, o.fund_id, o.pence)));
    bank_accounts::check_client_money_many(tx, &bank, &needs, override_.as_ref(), None).await?;

    let total: i64 = owed.iter().map(|o| o.pence).sum();
    let run = Uuid::now_v7();
    let number = next_number(tx, "payment_run", "PRN", input.payment_date.year()).await?;
    sqlx::query(
        "insert into payment_run (organisation_id, id, number, bank_account_id, payment_date,
                due_by, bill_count, total_pence, scheduled_by, scheduled_by_membership,
                scheduled_at, override_by, override_reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(tx.org().0)
    .bind(run)
    .bind(&number)
    .bind(bank.id)
    .bind(input.payment_date)
    .bind(input.due_by)
    .bind(i32::try_from(ids.len()).unwrap_or(i32::MAX))
    .bind(total)
    .bind(&who.name)
    .bind(who.membership_id)
    .bind(now)
    .bind(override_.as_ref().map(|o| o.by.clone()))
    .bind(override_.as_ref().map(|o| o.reason.clone()))
    .execute(tx.conn())
    .await?;

    // One payment per supplier: its lines are what each of the supplier's bills owes per fund.
    let vendor_of: HashMap<Uuid, &Bill> = found.iter().map(|b| (b.id, b)).collect();
    let mut by_vendor: BTreeMap<(String, Uuid), Vec<&Owed>> = BTreeMap::new();
    for o in &owed {
        if let Some(b) = vendor_of.get(&o.bill_id) {
            by_vendor
                .entry((b.vendor_name.clone(), b.vendor_id))
                .or_default()
                .push(o);
        }
    }
    let (mut l_id, mut l_pay, mut l_bill, mut l_site, mut l_fund, mut l_amount) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut p_id, mut p_number, mut p_vendor, mut p_amount, mut p_reference, mut p_seal) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((_, vendor), lines) in &by_vendor {
        let payment = Uuid::now_v7();
        let number = next_number(tx, "supplier_payment", "PAY", input.payment_date.year()).await?;
        let mut bills_paid: Vec<Uuid> = lines.iter().map(|o| o.bill_id).collect();
        bills_paid.dedup();
        // The supplier's own invoice number when one bill is paid and BACS can carry it; our
        // payment number otherwise (the remittance advice lists the bills).
        let reference = match bills_paid.as_slice() {
            [only] => vendor_of
                .get(only)
                .map(|b| b.supplier_reference.clone())
                .filter(|r| bacs_reference_ok(r))
                .unwrap_or_else(|| number.clone()),
            _ => number.clone(),
        };
        p_id.push(payment);
        p_number.push(number);
        p_vendor.push(*vendor);
        p_amount.push(lines.iter().map(|o| o.pence).sum::<i64>());
        p_reference.push(reference);
        p_seal.push(seals.get(vendor).cloned());
        for o in lines {
            l_id.push(Uuid::now_v7());
            l_pay.push(payment);
            l_bill.push(o.bill_id);
            l_site.push(o.site_id);
            l_fund.push(o.fund_id);
            l_amount.push(o.pence);
        }
    }
    sqlx::query(
        "insert into supplier_payment (organisation_id, id, number, payment_run_id, vendor_id,
                bank_account_id, payment_date, method, reference, amount_pence, status,
                recorded_by, recorded_by_membership, payee_seal_sha256)
         select $1, p.id, p.number, $2, p.vendor, $3, $4, 'bacs', p.reference, p.amount,
                'scheduled', $5, $6, p.seal
           from unnest($7::uuid[], $8::text[], $9::uuid[], $10::bigint[], $11::text[],
                       $12::text[])
                as p(id, number, vendor, amount, reference, seal)",
    )
    .bind(tx.org().0)
    .bind(run)
    .bind(bank.id)
    .bind(input.payment_date)
    .bind(&who.name)
    .bind(who.membership_id)
    .bind(&p_id)
    .bind(&p_number)
    .bind(&p_vendor)
    .bind(&p_amount)
    .bind(&p_reference)
    .bind(&p_seal)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "insert into supplier_payment_line (organisation_id, id, payment_id, bill_id, site_id,
                fund_id, amount_pence)
         select $1, l.id, l.payment, l.bill, l.site, l.fund, l.amount
           from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::bigint[])
                as l(id, payment, bill, site, fund, amount)",
    )
    .bind(tx.org().0)
    .bind(&l_id)
    .bind(&l_pay)
    .bind(&l_bill)
    .bind(&l_site)
    .bind(&l_fund)
    .bind(&l_amount)
    .execute(tx.conn())
    .await?;
    sqlx::query("update payment_run set payment_count = $3 where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(run)
        .bind(i32::try_from(p_id.len()).unwrap_or(i32::MAX))
        .execute(tx.conn())
        .await?;
    let sites: Vec<Uuid> = {
        let mut s: Vec<Uuid> = found.iter().map(|b| b.site_id).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    approvals::open_request(
        tx,
        &Subject {
            record_type: "payment_batch",
            record_id: run,
            amount_pence: total,
            site_id: match sites.as_slice() {
                [only] => Some(*only),
                _ => None,
            },
            category: None,
        },
        who.membership_id,
    )
    .await?;
    Ok(run)
}

/// Whether a reference reaches the supplier's statement as BACS needs it: enough characters
/// left once cut to the BACS set and length.
fn bacs_reference_ok(reference: &str) -> bool {
    let (sent, _) = bacs::sanitise(reference, bacs::FIELD_WIDTH);
    sent.chars().filter(|c| *c != ' ').count() >= bacs::MIN_REFERENCE_CHARS
}

/// A list of refusals as one message: the first few, and how many more.
fn listed(problems: Vec<String>) -> String {
    let shown = problems.len().min(5);
    let mut text = problems[..shown].join(" ");
    if problems.len() > shown {
        text.push_str(&format!(" ({} more.)", problems.len() - shown));
    }
    text
}

/// The bills of a run as they stand now (locked), and what its payments are to pay per site
/// and fund.
async fn run_state(
    tx: &mut TenantTx,
    run: &PaymentRun,
) -> Result<(Vec<Bill>, Vec<(Uuid, Uuid, i64)>), LedgerError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select distinct l.bill_id from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
          where l.organisation_id = $1 and p.payment_run_id = $2 and p.status = 'scheduled'",
    )
    .bind(tx.org().0)
    .bind(run.id)
    .fetch_all(tx.conn())
    .await?;
    sqlx::query(
        "select 1 from bill where organisation_id = $1 and id = any($2) order by id for update",
    )
    .bind(tx.org().0)
    .bind(&ids)
    .execute(tx.conn())
    .await?;
    let found: Vec<Bill> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} where b.organisation_id = $1 and b.id = any($2) order by b.number",
        bills::SELECT
    )))
    .bind(tx.org().0)
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?;
    let lines: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "select l.site_id, l.fund_id, l.amount_pence from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
          where l.organisation_id = $1 and p.payment_run_id = $2 and p.status = 'scheduled'",
    )
    .bind(tx.org().0)
    .bind(run.id)
    .fetch_all(tx.conn())
    .await?;
    Ok((found, needs_of(lines.into_iter())))
}

/// Refuses a run with a bill on hold (or otherwise no longer payable).
fn check_run_bills(found: &[Bill]) -> Result<(), LedgerError> {
    let problems: Vec<String> = found
        .iter()
        .filter_map(|b| match b.status() {
            BillStatus::Scheduled => None,
            BillStatus::Held => Some(format!(
                "{} is on hold ({}): release it or take it out of the run.",
                b.label(),
                b.hold_reason.as_deref().unwrap_or("no reason given")
            )),
            other => Some(format!(
                "{} is {}: take it out of the run.",
                b.label(),
                other.label().to_lowercase()
            )),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refused(listed(problems)))
    }
}

fn run_override(run: &PaymentRun) -> Option<Override> {
    match (&run.override_by, &run.override_reason) {
        (Some(by), Some(reason)) => Some(Override {
            by: by.clone(),
            reason: reason.clone(),
        }),
        _ => None,
    }
}

/// Refuses a run whose suppliers' bank details changed since it was scheduled: whoever
/// approved or approves it must see the account the money goes to.
async fn check_payees_unchanged(tx: &mut TenantTx, run: &PaymentRun) -> Result<(), LedgerError> {
    let changed: Vec<String> = sqlx::query_scalar(
        "select distinct v.name from supplier_payment p
           join vendor v on v.organisation_id = p.organisation_id and v.id = p.vendor_id
          where p.organisation_id = $1 and p.payment_run_id = $2 and p.status = 'scheduled'
            and p.payee_seal_sha256 is distinct from encode(sha256(v.bank_sealed), 'hex')
          order by v.name",
    )
    .bind(tx.org().0)
    .bind(run.id)
    .fetch_all(tx.conn())
    .await?;
    if changed.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "The bank details of {} changed after {} was scheduled: cancel the run and schedule it \
         again, so that the new account is approved.",
        changed.join(", "),
        run.number
    )))
}

/// Whether `who` scheduled the run (by membership when both are known, else by name).
fn scheduled_by(run: &PaymentRun, who: &Signer) -> bool {
    match (run.scheduled_by_membership, who.membership_id) {
        (Some(a), Some(b)) => a == b,
        _ => run.scheduled_by == who.name,
    }
}

/// Approves a scheduled run as `who`, who did not schedule it: signs the chain if one covers
/// it; once complete the run is approved and its file can be made. No bill may be on hold and
/// the client-money rule must still hold.
pub async fn approve_run(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Approval, LedgerError> {
    lock_books(tx).await?;
    let run = run_for_update(tx, id).await?;
    if run.status != "scheduled" {
        return Err(refused(format!(
            "{} is {}: only a scheduled run is approved.",
            run.number,
            run.status_label().to_lowercase()
        )));
    }
    if scheduled_by(&run, who) {
        return Err(refused(
            "You scheduled this run: someone else must approve it.",
        ));
    }
    let (found, needs) = run_state(tx, &run).await?;
    check_run_bills(&found)?;
    check_payees_unchanged(tx, &run).await?;
    let bank = bank_accounts::find(tx, run.bank_account_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    bank_accounts::check_client_money_many(
        tx,
        &bank,
        &needs,
        run_override(&run).as_ref(),
        Some(run.id),
    )
    .await?;
    match approvals::sign(tx, "payment_batch", id, who, now.date(), now).await? {
        Signed::Waiting(left) => Ok(Approval::Waiting(left)),
        Signed::NoChain | Signed::Complete => {
            mark_approved(tx, id, &who.name, who.membership_id, now).await?;
            Ok(Approval::Posted(run.number))
        }
    }
}

async fn mark_approved(
    tx: &mut TenantTx,
    id: Uuid,
    by: &str,
    membership: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update payment_run set status = 'approved', approved_by = $3,
                approved_by_membership = $4, approved_at = $5, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(membership)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The Organisation Owner approves a run past its chain, with a reason (the chain's approvers
/// are told). The scheduler still cannot approve their own run.
pub async fn bypass_run(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let run = run_for_update(tx, id).await?;
    if run.status != "scheduled" {
        return Err(refused("Only a scheduled run is approved."));
    }
    if scheduled_by(&run, who) {
        return Err(refused(
            "You scheduled this run: someone else must approve it.",
        ));
    }
    let (found, needs) = run_state(tx, &run).await?;
    check_run_bills(&found)?;
    check_payees_unchanged(tx, &run).await?;
    let bank = bank_accounts::find(tx, run.bank_account_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    bank_accounts::check_client_money_many(
        tx,
        &bank,
        &needs,
        run_override(&run).as_ref(),
        Some(run.id),
    )
    .await?;
    let label = format!(
        "payment run {} from {} ({})",
        run.number,
        run.bank_name,
        format_pence(run.total_pence)
    );
    if !approvals::bypass(tx, "payment_batch", id, &label, who, reason, now).await? {
        return Err(refused(
            "No approval chain is waiting on this run: approve it instead.",
        ));
    }
    mark_approved(tx, id, &who.name, who.membership_id, now).await?;
    Ok(())
}

/// Takes a bill out of a run not yet approved: its line goes and it reads as approved again (a
/// held bill stays held, to go back to approved when released). The last bill is not taken
/// out: cancel the run instead.
pub async fn remove_bill(
    tx: &mut TenantTx,
    run_id: Uuid,
    bill_id: Uuid,
    who: &Signer,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let run = run_for_update(tx, run_id).await?;
    if run.status != "scheduled" {
        return Err(refused(format!(
            "{} is {}: only a run awaiting approval changes. Cancel it and schedule another.",
            run.number,
            run.status_label().to_lowercase()
        )));
    }
    let bill = bills::find_for_update(tx, bill_id).await?;
    let payment: Option<Uuid> = sqlx::query_scalar(
        "select distinct l.payment_id from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
          where l.organisation_id = $1 and l.bill_id = $2 and p.payment_run_id = $3",
    )
    .bind(tx.org().0)
    .bind(bill_id)
    .bind(run_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(payment) = payment else {
        return Err(refused(format!(
            "{} is not in {}.",
            bill.label(),
            run.number
        )));
    };
    if run.bill_count <= 1 {
        return Err(refused(
            "This is the run's only bill: cancel the run instead.",
        ));
    }
    let removed: i64 = sqlx::query_scalar(
        "with gone as (delete from supplier_payment_line
                        where organisation_id = $1 and payment_id = $2 and bill_id = $3
                        returning amount_pence)
         select coalesce(sum(amount_pence), 0)::bigint from gone",
    )
    .bind(tx.org().0)
    .bind(payment)
    .bind(bill_id)
    .fetch_one(tx.conn())
    .await?;
    let left: i64 = sqlx::query_scalar(
        "select coalesce(sum(amount_pence), 0)::bigint from supplier_payment_line
          where organisation_id = $1 and payment_id = $2",
    )
    .bind(tx.org().0)
    .bind(payment)
    .fetch_one(tx.conn())
    .await?;
    if left == 0 {
        sqlx::query("delete from supplier_payment where organisation_id = $1 and id = $2")
            .bind(tx.org().0)
            .bind(payment)
            .execute(tx.conn())
            .await?;
    } else {
        sqlx::query(
            "update supplier_payment set amount_pence = $3, updated_at = now()
              where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(payment)
        .bind(left)
        .execute(tx.conn())
        .await?;
    }
    sqlx::query(
        "update payment_run set bill_count = bill_count - 1, total_pence = total_pence - $3,
                payment_count = (select count(*) from supplier_payment
                                  where organisation_id = $1 and payment_run_id = $2),
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(run_id)
    .bind(removed)
    .execute(tx.conn())
    .await?;
    // The amount (and perhaps the sites) changed, so the approval starts again.
    let sites: Vec<Uuid> = sqlx::query_scalar(
        "select distinct l.site_id from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
          where l.organisation_id = $1 and p.payment_run_id = $2",
    )
    .bind(tx.org().0)
    .bind(run_id)
    .fetch_all(tx.conn())
    .await?;
    approvals::open_request(
        tx,
        &Subject {
            record_type: "payment_batch",
            record_id: run_id,
            amount_pence: run.total_pence - removed,
            site_id: match sites.as_slice() {
                [only] => Some(*only),
                _ => None,
            },
            category: None,
        },
        run.scheduled_by_membership.or(who.membership_id),
    )
    .await?;
    Ok(())
}

/// Cancels a run not yet paid, with a reason: its payments are cancelled and its bills read as
/// approved again.
pub async fn cancel_run(
    tx: &mut TenantTx,
    id: Uuid,
    reason: &str,
    file_not_sent: bool,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let run = run_for_update(tx, id).await?;
    if !matches!(run.status.as_str(), "scheduled" | "approved") {
        return Err(refused(format!(
            "{} is {}: only a run not yet paid is cancelled.",
            run.number,
            run.status_label().to_lowercase()
        )));
    }
    let reason = reason_of(reason)?;
    // Once its file is made the bank may pay it: its bills go back to unpaid only when someone
    // says the bank rejected the file or never had it.
    if let (Some(at), false) = (run.file_made_at, file_not_sent) {
        return Err(refused(format!(
            "The bank file of {} was made on {}: cancel the run only if the bank rejected the \
             file or it was never uploaded, and say so.",
            run.number,
            proplink_domain::dates::uk_long_date(at)
        )));
    }
    // The bills are locked, so nobody holds or voids one while its run is cancelled; they are
    // not written: with their payments cancelled they read as approved again.
    run_state(tx, &run).await?;
    sqlx::query(
        "update supplier_payment set status = 'cancelled', updated_at = now()
          where organisation_id = $1 and payment_run_id = $2 and status = 'scheduled'",
    )
    .bind(tx.org().0)
    .bind(id)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update payment_run set status = 'cancelled', cancelled_by = $3, cancelled_at = $4,
                cancel_reason = $5, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(now)
    .bind(&reason)
    .execute(tx.conn())
    .await?;
    approvals::withdraw(tx, "payment_batch", id).await?;
    Ok(())
}

/// A run's bank file, ready to upload.
#[derive(Debug, Clone)]
pub struct PaymentFile {
    pub filename: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    /// Every name or reference sent differently from how it is recorded.
    pub notices: Vec<String>,
    pub format: FileFormat,
}

/// Makes the bank file of an approved (or paid) run, in the bank account's format: BACS
/// Standard 18 or CSV, and records who made it. Nothing is made unless every payment can be
/// sent.
pub async fn payment_file(
    tx: &mut TenantTx,
    key: &DataKey,
    id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> Result<PaymentFile, LedgerError> {
    let file = build_file(tx, key, id, now.date()).await?;
    sqlx::query(
        "update payment_run set file_made_by = $3, file_made_at = $4, file_format = $5,
                updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(now)
    .bind(file.format.as_str())
    .execute(tx.conn())
    .await?;
    Ok(file)
}

/// The bank file as it would be made on `today`, without recording it: its run page shows the
/// names and references the bank will see differently before anyone downloads it.
pub async fn build_file(
    tx: &mut TenantTx,
    key: &DataKey,
    id: Uuid,
    today: Date,
) -> Result<PaymentFile, LedgerError> {
    let run = find_run(tx, id).await?.ok_or(LedgerError::NotFound)?;
    match run.status.as_str() {
        "approved" => {}
        "paid" => {
            return Err(refused(format!(
                "{} is paid: its file has been to the bank, and another copy could pay it twice.",
                run.number
            )));
        }
        _ => {
            return Err(refused(format!(
                "{} is {}: the bank file is made once the run is approved.",
                run.number,
                run.status_label().to_lowercase()
            )));
        }
    }
    if run.payment_date < today {
        return Err(refused(format!(
            "{}'s payment date ({}) has passed, and the bank needs a day still to come: cancel \
             the run and schedule its bills again.",
            run.number,
            long_date(run.payment_date)
        )));
    }
    check_payees_unchanged(tx, &run).await?;
    let bank = bank_accounts::find(tx, run.bank_account_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    let payments = run_payments(tx, id).await?;
    let payments: Vec<&Payment> = payments
        .iter()
        .filter(|p| matches!(p.status.as_str(), "scheduled" | "paid"))
        .collect();
    let vendors: Vec<Uuid> = payments.iter().map(|p| p.vendor_id).collect();
    let payees = payees(tx, key, &vendors).await?;
    let mut credits = Vec::with_capacity(payments.len());
    for p in &payments {
        let payee = payees.get(&p.vendor_id).ok_or(LedgerError::NotFound)?;
        credits.push(Credit {
            payee_name: payee.name.clone(),
            sort_code: payee.sort_code.clone(),
            account_number: payee.account_number.clone(),
            amount_pence: p.amount_pence,
            reference: p.reference.clone().unwrap_or_else(|| p.number.clone()),
        });
    }
    let file = match FileFormat::parse(&bank.file_format) {
        Some(FileFormat::BacsStandard18) => {
            let own = bank_accounts::numbers(tx, key, bank.id).await?;
            // 1 to 999999, from the run's number (so a day's files differ).
            let serial = run
                .number
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .map_or(1, |n| (n.max(1) - 1) % 999_999 + 1);
            let std18 = bacs::standard18(
                &Originator {
                    sun: bank.service_user_number.clone().unwrap_or_default(),
                    sort_code: own.sort_code,
                    account_number: own.account_number,
                    account_name: bank.holder_name.clone(),
                },
                &Submission {
                    serial,
                    created_on: today,
                    processing_date: run.payment_date,
                },
                &credits,
            )
            .map_err(|e| refused(e.to_string()))?;
            PaymentFile {
                filename: format!("{}.txt", run.number),
                media_type: "text/plain; charset=us-ascii",
                bytes: std18.bytes,
                notices: std18.notices,
                format: FileFormat::BacsStandard18,
            }
        }
        _ => {
            let (bytes, notices) =
                bacs::payments_csv(&credits).map_err(|e| refused(e.to_string()))?;
            PaymentFile {
                filename: format!("{}.csv", run.number),
                media_type: "text/csv; charset=utf-8",
                bytes,
                notices,
                format: FileFormat::Csv,
            }
        }
    };
    Ok(file)
}

/// A payment line as it is posted.
#[derive(Debug, Clone, sqlx::FromRow)]
struct PostLine {
    payment_id: Uuid,
    payment_number: String,
    vendor_name: String,
    bill_id: Uuid,
    bill_number: Option<String>,
    work_order_id: Option<Uuid>,
    site_id: Uuid,
    fund_id: Uuid,
    amount_pence: i64,
}

/// Payments' lines with what posting them needs, by payment, site and bill.
async fn post_lines(tx: &mut TenantTx, payment_ids: &[Uuid]) -> Result<Vec<PostLine>, DbError> {
    Ok(sqlx::query_as(
        "select l.payment_id, p.number as payment_number, v.name as vendor_name,
                l.bill_id, b.number as bill_number, b.work_order_id, l.site_id, l.fund_id,
                l.amount_pence
           from supplier_payment_line l
           join supplier_payment p on p.organisation_id = l.organisation_id and p.id = l.payment_id
           join vendor v on v.organisation_id = p.organisation_id and v.id = p.vendor_id
           join bill b on b.organisation_id = l.organisation_id and b.id = l.bill_id
          where l.organisation_id = $1 and l.payment_id = any($2)
          order by p.number, l.site_id, b.number, l.fund_id",
    )
    .bind(tx.org().0)
    .bind(payment_ids)
    .fetch_all(tx.conn())
    .await?)
}

/// Each site's creditors control and its ledger account for the bank (a live one, to pay; any,
/// to reverse what was paid).
async fn site_accounts(
    tx: &mut TenantTx,
    bank: &BankAccount,
    lines: &[PostLine],
    live_only: bool,
) -> Result<(HashMap<Uuid, Uuid>, HashMap<Uuid, Uuid>), LedgerError> {
    let sites: Vec<Uuid> = {
        let mut s: Vec<Uuid> = lines.iter().map(|l| l.site_id).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let accounts: Vec<(Uuid, Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "select s.id,
                (select a.id from ledger_account a where a.organisation_id = s.organisation_id
                    and a.site_id = s.id and a.control = 'creditors'
                    and (a.archived_at is null or not $4)
                  order by a.archived_at nulls first limit 1),
                (select a.id from ledger_account a where a.organisation_id = s.organisation_id
                    and a.site_id = s.id and a.bank_account_id = $3
                    and (a.archived_at is null or not $4))
           from site s where s.organisation_id = $1 and s.id = any($2)",
    )
    .bind(tx.org().0)
    .bind(&sites)
    .bind(bank.id)
    .bind(live_only)
    .fetch_all(tx.conn())
    .await?;
    let mut creditors_of = HashMap::new();
    let mut bank_of = HashMap::new();
    for (site, creditors, bank_account) in accounts {
        let creditors = creditors.ok_or_else(|| {
            refused("A site has no creditors control account: set one in Financial settings.")
        })?;
        let bank_account = bank_account.ok_or_else(|| {
            refused(format!(
                "{} no longer holds the money of one of the sites paid: choose another account.",
                bank.name
            ))
        })?;
        creditors_of.insert(site, creditors);
        bank_of.insert(site, bank_account);
    }
    Ok((creditors_of, bank_of))
}

/// How a site's journal credits the bank for the payments it posts.
enum BankCredit<'a> {
    /// One line per payment and fund, as the bank debits each payment on its own (a single
    /// payment, a reversal, a run sent to the bank as a CSV of payments).
    PerPayment,
    /// One line per fund for the whole run, with this description: a BACS Standard 18 file
    /// is debited from the account as one contra for the run's total.
    PerRun(&'a str),
}

/// A site's journal lines for payment lines, `sign` 1 to pay (Dr creditors per bill and fund,
/// Cr the bank per payment or run and fund) and -1 to reverse.
fn payment_lines(
    group: &[&PostLine],
    creditors: Uuid,
    bank_account: Uuid,
    sign: i64,
    credit: &BankCredit,
) -> Vec<NewLine> {
    let mut out: Vec<NewLine> = group
        .iter()
        .map(|l| NewLine {
            account_id: creditors,
            fund_id: l.fund_id,
            amount_pence: sign * l.amount_pence,
            unit_id: None,
            contact_id: None,
            work_order_id: l.work_order_id,
            description: Some(format!(
                "{} {}",
                l.vendor_name,
                l.bill_number.as_deref().unwrap_or("bill")
            )),
        })
        .collect();
    // (payment or none, fund) → the sum and the first line, in the order first met.
    type Key = (Option<Uuid>, Uuid);
    let mut credits: Vec<(Key, i64, &PostLine)> = Vec::new();
    for l in group {
        let key = match credit {
            BankCredit::PerPayment => (Some(l.payment_id), l.fund_id),
            BankCredit::PerRun(_) => (None, l.fund_id),
        };
        match credits.iter_mut().find(|(k, ..)| *k == key) {
            Some((_, sum, _)) => *sum += l.amount_pence,
            None => credits.push((key, l.amount_pence, l)),
        }
    }
    for ((_, fund), sum, l) in credits {
        out.push(NewLine {
            account_id: bank_account,
            fund_id: fund,
            amount_pence: -sign * sum,
            unit_id: None,
            contact_id: None,
            work_order_id: None,
            description: Some(match credit {
                BankCredit::PerPayment => format!("{} to {}", l.payment_number, l.vendor_name),
                BankCredit::PerRun(text) => (*text).to_owned(),
            }),
        });
    }
    out
}

/// Posts payments' lines: one journal per site, creditors control debited per bill and fund,
/// the site's ledger account for the bank credited per payment and fund (per fund for a run
/// sent as BACS Standard 18). Adds what was paid to the bills (paid in full → paid) and closes
/// work orders whose bills are all paid. All or nothing.
async fn post_payments(
    tx: &mut TenantTx,
    bank: &BankAccount,
    payment_ids: &[Uuid],
    run: Option<&PaymentRun>,
    date: Date,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let lines = post_lines(tx, payment_ids).await?;
    let (creditors_of, bank_of) = site_accounts(tx, bank, &lines, true).await?;
    // One journal per site (a run's payments to every supplier from the site's money post
    // together); within it, each bill's creditors line and the bank's lines as the bank
    // statement will show them: per payment and fund, or per fund for a run sent as a BACS
    // Standard 18 file (one contra debits the run's total).
    let run_text = run.map(|r| format!("Payment run {} from {}", r.number, bank.name));
    let sent_as = run.map(|r| r.file_format.as_deref().unwrap_or(&bank.file_format));
    let credit = match (&run_text, sent_as) {
        (Some(text), Some(format)) if format == FileFormat::BacsStandard18.as_str() => {
            BankCredit::PerRun(text)
        }
        _ => BankCredit::PerPayment,
    };
    let mut groups: Vec<(Uuid, Vec<&PostLine>)> = Vec::new();
    for l in &lines {
        match groups.iter_mut().find(|(site, _)| *site == l.site_id) {
            Some((_, v)) => v.push(l),
            None => groups.push((l.site_id, vec![l])),
        }
    }
    let mut journals = Vec::with_capacity(groups.len());
    for (site, group) in &groups {
        let creditors = creditors_of
            .get(site)
            .copied()
            .ok_or(LedgerError::NotFound)?;
        let bank_account = bank_of.get(site).copied().ok_or(LedgerError::NotFound)?;
        let first = group.first().copied().ok_or(LedgerError::NotFound)?;
        journals.push(NewJournal {
            site_id: *site,
            date,
            description: match &run_text {
                Some(text) if group.iter().any(|l| l.payment_id != first.payment_id) => {
                    text.clone()
                }
                _ => format!(
                    "Payment {} to {} from {}",
                    first.payment_number, first.vendor_name, bank.name
                ),
            },
            source_type: if run.is_some() {
                "payment_run".into()
            } else {
                "supplier_payment".into()
            },
            source_id: Some(run.map_or(first.payment_id, |r| r.id)),
            lines: payment_lines(group, creditors, bank_account, 1, &credit),
        });
    }
    // Each line's journal is its site's journal for the run (or the single payment): found by
    // the journal's source, not copied onto thousands of lines (migration 0045).
    ledger::post_many(tx, &journals, by, now).await?;
    let mut paid: BTreeMap<Uuid, i64> = BTreeMap::new();
    for l in &lines {
        *paid.entry(l.bill_id).or_default() += l.amount_pence;
    }
    let (bill_ids, amounts): (Vec<Uuid>, Vec<i64>) = paid.into_iter().unzip();
    sqlx::query(
        "update bill b set paid_pence = b.paid_pence + p.amount,
                status = case when b.paid_pence + p.amount = b.total_pence then 'paid'
                              else b.status end,
                updated_at = now()
           from unnest($2::uuid[], $3::bigint[]) as p(bill, amount)
          where b.organisation_id = $1 and b.id = p.bill",
    )
    .bind(tx.org().0)
    .bind(&bill_ids)
    .bind(&amounts)
    .execute(tx.conn())
    .await?;
    let mut work_orders: Vec<Uuid> = lines.iter().filter_map(|l| l.work_order_id).collect();
    work_orders.sort_unstable();
    work_orders.dedup();
    if !work_orders.is_empty() {
        crate::operations::close_paid_work_orders(tx, &work_orders, now)
            .await
            .map_err(|e| refused(e.to_string()))?;
    }
    Ok(())
}

/// Marks an approved run paid once the bank confirms it: every payment posts on the run's
/// payment date and its bills are paid. No bill may be on hold, and the client-money rule is
/// checked once more. Returns the payments, for their remittance advice.
pub async fn mark_run_paid(
    tx: &mut TenantTx,
    id: Uuid,
    by: &str,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, LedgerError> {
    lock_books(tx).await?;
    let run = run_for_update(tx, id).await?;
    if run.status != "approved" {
        return Err(refused(match run.status.as_str() {
            "scheduled" => format!(
                "{} is not approved yet: it is paid once approved.",
                run.number
            ),
            "paid" => format!("{} is already paid.", run.number),
            _ => format!("{} was cancelled.", run.number),
        }));
    }
    let (found, needs) = run_state(tx, &run).await?;
    check_run_bills(&found)?;
    check_payees_unchanged(tx, &run).await?;
    let bank = bank_accounts::find(tx, run.bank_account_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    bank_accounts::check_client_money_many(
        tx,
        &bank,
        &needs,
        run_override(&run).as_ref(),
        Some(run.id),
    )
    .await?;
    let payments: Vec<Uuid> = sqlx::query_scalar(
        "select id from supplier_payment
          where organisation_id = $1 and payment_run_id = $2 and status = 'scheduled'
          order by number",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    post_payments(tx, &bank, &payments, Some(&run), run.payment_date, by, now).await?;
    sqlx::query(
        "update supplier_payment set status = 'paid', paid_at = $3, updated_at = now()
          where organisation_id = $1 and id = any($2)",
    )
    .bind(tx.org().0)
    .bind(&payments)
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update payment_run set status = 'paid', paid_by = $3, paid_at = $4, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(payments)
}

// ---------------------------------------------------------------------------------------------
// Single payments and reversals

/// One bill paid by hand.
#[derive(Debug, Clone)]
pub struct ManualPayment {
    pub bill_id: Uuid,
    pub bank_account_id: Uuid,
    pub payment_date: Date,
    pub method: Method,
    pub reference: Option<String>,
    /// What the bill still owes if not given; less pays part of it.
    pub amount_pence: Option<i64>,
    pub override_: Option<Override>,
}

/// Records and posts a single payment of an approved bill. A part payment pays the bill's
/// funds in the order of its lines.
pub async fn pay_bill(
    tx: &mut TenantTx,
    input: &ManualPayment,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Uuid, LedgerError> {
    lock_books(tx).await?;
    let bill = bills::find_for_update(tx, input.bill_id).await?;
    if let Some(why) = unpayable(&bill) {
        return Err(refused(why));
    }
    let bank = live_bank(tx, input.bank_account_id).await?;
    check_year(input.payment_date, "payment date")?;
    if input.payment_date < bill.issue_date {
        return Err(refused(format!(
            "The payment date is before the bill's date ({}).",
            long_date(bill.issue_date)
        )));
    }
    let outstanding = bill.outstanding_pence();
    let amount = input.amount_pence.unwrap_or(outstanding);
    if amount <= 0 {
        return Err(refused("The amount paid must be more than nothing."));
    }
    if amount > outstanding {
        return Err(refused(format!(
            "{} owes {}: a payment of {} is more than that.",
            bill.label(),
            format_pence(outstanding),
            format_pence(amount)
        )));
    }
    let reference = match input.reference.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => {
            if r.chars().count() > 50 {
                return Err(refused("The reference is at most 50 characters."));
            }
            plain(r, "reference")?;
            Some(r.to_owned())
        }
        _ if input.method == Method::Cheque => {
            return Err(refused("Give the cheque number as the reference."));
        }
        _ => None,
    };
    let override_ = override_of(&bank, input.override_.as_ref())?;
    // Split the amount over the bill's funds in the order of its lines.
    let mut left = amount;
    let mut split = Vec::new();
    for o in owed_by_fund(tx, &[bill.id]).await? {
        if left == 0 {
            break;
        }
        let take = o.pence.min(left);
        left -= take;
        split.push((o.site_id, o.fund_id, take));
    }
    if left != 0 {
        return Err(refused(format!(
            "{}'s lines owe less than {}: check the bill's payments.",
            bill.label(),
            format_pence(amount)
        )));
    }
    bank_accounts::check_client_money_many(
        tx,
        &bank,
        &needs_of(split.iter().copied()),
        override_.as_ref(),
        None,
    )
    .await?;
    let payment = Uuid::now_v7();
    let number = next_number(tx, "supplier_payment", "PAY", input.payment_date.year()).await?;
    sqlx::query(
        "insert into supplier_payment (organisation_id, id, number, vendor_id, bank_account_id,
                payment_date, method, reference, amount_pence, status, paid_at, override_by,
                override_reason, recorded_by, recorded_by_membership)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'paid', $10, $11, $12, $13, $14)",
    )
    .bind(tx.org().0)
    .bind(payment)
    .bind(&number)
    .bind(bill.vendor_id)
    .bind(bank.id)
    .bind(input.payment_date)
    .bind(input.method.as_str())
    .bind(&reference)
    .bind(amount)
    .bind(now)
    .bind(override_.as_ref().map(|o| o.by.clone()))
    .bind(override_.as_ref().map(|o| o.reason.clone()))
    .bind(&who.name)
    .bind(who.membership_id)
    .execute(tx.conn())
    .await?;
    for (site, fund, pence) in &split {
        sqlx::query(
            "insert into supplier_payment_line (organisation_id, id, payment_id, bill_id, site_id,
                    fund_id, amount_pence)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(payment)
        .bind(bill.id)
        .bind(site)
        .bind(fund)
        .bind(pence)
        .execute(tx.conn())
        .await?;
    }
    post_payments(
        tx,
        &bank,
        &[payment],
        None,
        input.payment_date,
        &who.name,
        now,
    )
    .await?;
    Ok(payment)
}

/// Reverses a paid payment on `on` (returned by the bank, sent in error, a rejected file): its
/// journals are reversed and the bills it paid are owed again (approved, to be paid anew); a
/// work order closed by the payment goes back to invoiced.
pub async fn reverse_payment(
    tx: &mut TenantTx,
    id: Uuid,
    on: Date,
    reason: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    sqlx::query("select 1 from supplier_payment where organisation_id = $1 and id = $2 for update")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    let payment = find_payment(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if payment.status != "paid" {
        return Err(refused(format!(
            "{} is {}: only a paid payment is reversed.",
            payment.number,
            payment.status_label().to_lowercase()
        )));
    }
    let reason = reason_of(reason)?;
    check_year(on, "date of the reversal")?;
    if on < payment.payment_date {
        return Err(refused(format!(
            "The reversal's date is before the payment's ({}).",
            long_date(payment.payment_date)
        )));
    }
    // The payment's own lines posted back, in each site's books (a run's journal holds other
    // suppliers' payments too, which stand).
    let bank = bank_accounts::find(tx, payment.bank_account_id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    let lines = post_lines(tx, &[id]).await?;
    let (creditors_of, bank_of) = site_accounts(tx, &bank, &lines, false).await?;
    let mut groups: Vec<(Uuid, Vec<&PostLine>)> = Vec::new();
    for l in &lines {
        match groups.iter_mut().find(|(site, _)| *site == l.site_id) {
            Some((_, v)) => v.push(l),
            None => groups.push((l.site_id, vec![l])),
        }
    }
    let mut journals = Vec::with_capacity(groups.len());
    for (site, group) in &groups {
        let creditors = creditors_of
            .get(site)
            .copied()
            .ok_or(LedgerError::NotFound)?;
        let bank_account = bank_of.get(site).copied().ok_or(LedgerError::NotFound)?;
        journals.push(NewJournal {
            site_id: *site,
            date: on,
            description: format!(
                "Payment {} to {} reversed: {reason}",
                payment.number, payment.vendor_name
            ),
            source_type: "supplier_payment_reversal".into(),
            source_id: Some(id),
            lines: payment_lines(group, creditors, bank_account, -1, &BankCredit::PerPayment),
        });
    }
    // The lines' reversal journals are found by their source (migration 0045).
    ledger::post_many(tx, &journals, by, now).await?;
    let paid: Vec<(Uuid, i64)> = sqlx::query_as(
        "select bill_id, sum(amount_pence)::bigint from supplier_payment_line
          where organisation_id = $1 and payment_id = $2 group by organisation_id, bill_id",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let (bill_ids, amounts): (Vec<Uuid>, Vec<i64>) = paid.into_iter().unzip();
    let work_orders: Vec<Uuid> = sqlx::query_scalar::<_, Option<Uuid>>(
        "update bill b set paid_pence = b.paid_pence - p.amount,
                status = case when b.status = 'paid' then 'approved' else b.status end,
                updated_at = now()
           from unnest($2::uuid[], $3::bigint[]) as p(bill, amount)
          where b.organisation_id = $1 and b.id = p.bill
         returning b.work_order_id",
    )
    .bind(tx.org().0)
    .bind(&bill_ids)
    .bind(&amounts)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .flatten()
    .collect::<Vec<Uuid>>();
    sqlx::query(
        "update supplier_payment set status = 'reversed', reversed_on = $3, reverse_reason = $4,
                reversed_by = $5, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(on)
    .bind(&reason)
    .bind(by)
    .execute(tx.conn())
    .await?;
    crate::operations::reopen_unpaid_work_orders(tx, &work_orders).await?;
    Ok(())
}

/// Records that a payment's remittance advice went to the supplier.
pub async fn mark_remittance_sent(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update supplier_payment set remittance_sent_at = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The supplier's statement and the creditors list

/// One movement on a supplier's account with us.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VendorMove {
    pub on: Date,
    pub description: String,
    /// The bill or payment it is.
    pub record_id: Uuid,
    pub is_payment: bool,
    /// What we came to owe (a bill).
    pub billed_pence: i64,
    /// What we paid or took back (a payment, a voided bill).
    pub paid_pence: i64,
    /// What we owe the supplier after this line.
    pub balance_pence: i64,
}

/// The supplier's statement between two dates (both included), optionally for one site:
/// what was owed at the start, each bill (when posted), voided bill, payment and reversed
/// payment, and what is owed at the end.
#[derive(Debug, Clone)]
pub struct VendorStatement {
    pub opening_pence: i64,
    pub moves: Vec<VendorMove>,
    pub closing_pence: i64,
}

pub async fn vendor_statement(
    tx: &mut TenantTx,
    vendor: Uuid,
    site: Option<Uuid>,
    from: Date,
    to: Date,
) -> Result<VendorStatement, DbError> {
    // (date, order, description, id, is payment, billed, paid)
    let rows: Vec<(Date, i32, String, Uuid, bool, i64, i64)> = sqlx::query_as(
        "with b as (select * from bill where organisation_id = $1 and vendor_id = $2
                      and number is not null and ($3::uuid is null or site_id = $3)),
              p as (select distinct sp.* from supplier_payment sp
                      join supplier_payment_line l on l.organisation_id = sp.organisation_id
                           and l.payment_id = sp.id
                     where sp.organisation_id = $1 and sp.vendor_id = $2
                       and sp.status in ('paid', 'reversed')
                       and ($3::uuid is null or l.site_id = $3)),
              pl as (select l.payment_id, sum(l.amount_pence) as pence from supplier_payment_line l
                      where l.organisation_id = $1 and l.payment_id in (select id from p)
                        and ($3::uuid is null or l.site_id = $3)
                      group by l.organisation_id, l.payment_id),
              moves as (
                select b.issue_date as on_date, 1 as ord,
                       'Bill ' || b.number || ' (invoice ' || b.supplier_reference || ')' as what,
                       b.id, false as is_payment, b.total_pence as billed, 0::bigint as paid
                  from b
                union all
                select j.journal_date, 2, 'Bill ' || b.number || ' voided', b.id, false, 0,
                       b.total_pence
                  from b join journal j on j.organisation_id = b.organisation_id
                       and j.id = b.void_journal_id
                union all
                select p.payment_date, 3,
                       'Payment ' || p.number || coalesce(' (' || p.reference || ')', ''),
                       p.id, true, 0, pl.pence
                  from p join pl on pl.payment_id = p.id
                union all
                select p.reversed_on, 4, 'Payment ' || p.number || ' reversed', p.id, true,
                       pl.pence, 0
                  from p join pl on pl.payment_id = p.id where p.status = 'reversed')
         select on_date, ord, what, id, is_payment, billed::bigint, paid::bigint from moves
          where on_date <= $5
          order by on_date, ord, what",
    )
    .bind(tx.org().0)
    .bind(vendor)
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_all(tx.conn())
    .await?;
    let mut opening = 0i64;
    let mut balance = 0i64;
    let mut moves = Vec::new();
    for (on, _, description, record_id, is_payment, billed, paid) in rows {
        if on < from {
            opening += billed - paid;
            balance = opening;
            continue;
        }
        balance += billed - paid;
        moves.push(VendorMove {
            on,
            description,
            record_id,
            is_payment,
            billed_pence: billed,
            paid_pence: paid,
            balance_pence: balance,
        });
    }
    Ok(VendorStatement {
        opening_pence: opening,
        moves,
        closing_pence: balance,
    })
}

/// What one supplier is owed on one site.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Creditor {
    pub site_id: Uuid,
    pub site_name: String,
    pub vendor_id: Uuid,
    pub vendor_name: String,
    pub bills: i64,
    pub outstanding_pence: i64,
    /// Of which past its due date on the day asked about.
    pub overdue_pence: i64,
    pub oldest_due: Date,
}

/// The creditors list: what each supplier is owed on each site for approved bills (scheduled
/// and held ones included), by site and supplier. One site, or every site the caller may see.
pub async fn creditors(
    tx: &mut TenantTx,
    site: Option<Uuid>,
    sites_allowed: Option<&[Uuid]>,
    today: Date,
) -> Result<Vec<Creditor>, DbError> {
    Ok(sqlx::query_as(
        "select c.site_id, s.name as site_name, c.vendor_id, v.name as vendor_name, c.bills,
                c.outstanding_pence, c.overdue_pence, c.oldest_due
           from (select b.site_id, b.vendor_id, count(*) as bills,
                        sum(b.total_pence - b.paid_pence)::bigint as outstanding_pence,
                        coalesce(sum(b.total_pence - b.paid_pence)
                                 filter (where b.due_date < $4), 0)::bigint as overdue_pence,
                        min(b.due_date) as oldest_due
                   from bill b
                  where b.organisation_id = $1 and b.status in ('approved', 'scheduled', 'held')
                    and ($2::uuid is null or b.site_id = $2)
                    and ($3::uuid[] is null or b.site_id = any($3))
                  group by b.organisation_id, b.site_id, b.vendor_id) c
           join site s on s.organisation_id = $1 and s.id = c.site_id
           join vendor v on v.organisation_id = $1 and v.id = c.vendor_id
          where c.outstanding_pence > 0
          order by s.name, v.name",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(sites_allowed)
    .bind(today)
    .fetch_all(tx.conn())
    .await?)
}
