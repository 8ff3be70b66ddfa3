//! Receipt batches (issue 6; docs-spec §2.6 "Receipts": Financials → Payments → Record batch):
//! a site's receipts entered together, each row of unit, amount and reference becoming its own
//! receipt (allocated oldest first, the rest held as credit), all posted in one transaction.
//! One bad row refuses the whole batch and every bad row is named; nothing is posted.

use crate::error::DbError;
use crate::ledger::{self, LedgerError, lock_books, plain, refused};
use crate::receivables::{self, Allocate, ReceiptInput};
use crate::tenant::TenantTx;
use proplink_domain::ledger::MAX_LINE_PENCE;
use proplink_domain::receivables::{BatchRow, MAX_BATCH_ROWS, PaymentMethod};
use proplink_domain::uk::format_pence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub struct BatchInput {
    pub site_id: Uuid,
    pub received_on: Date,
    pub method: PaymentMethod,
    /// The site's bank ledger account; its first bank account if none.
    pub bank_account_id: Option<Uuid>,
    pub note: Option<String>,
    pub rows: Vec<BatchRow>,
}

/// What a recorded batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: Uuid,
    /// The receipts' numbers, in row order.
    pub numbers: Vec<String>,
    pub total_pence: i64,
}

/// Records every row as a receipt of the site's unit, or none of them.
pub async fn record_batch(
    tx: &mut TenantTx,
    input: &BatchInput,
    by: &str,
    now: OffsetDateTime,
) -> Result<Recorded, LedgerError> {
    lock_books(tx).await?;
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
    if input.rows.is_empty() {
        return Err(refused(
            "Give at least one row: unit reference, amount, payment reference.",
        ));
    }
    if input.rows.len() > MAX_BATCH_ROWS {
        return Err(refused(format!(
            "A batch records at most {MAX_BATCH_ROWS} receipts; this one has {}. Split it.",
            input.rows.len()
        )));
    }
    receivables::check_year(input.received_on, "date received")?;
    let note = match input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) if n.chars().count() > 300 => {
            return Err(refused("The batch note is at most 300 characters."));
        }
        Some(n) => {
            plain(n, "batch note")?;
            Some(n.to_owned())
        }
        None => None,
    };
    let bank = receivables::bank_account(tx, input.site_id, input.bank_account_id).await?;

    // Every row's unit, and its payer on the day: the first holder of the lease in force.
    let wanted: Vec<String> = input
        .rows
        .iter()
        .map(|r| r.unit_reference.trim().to_uppercase())
        .collect();
    let units: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "select u.id, upper(u.reference),
                (select h.contact_id from lease l
                   join lease_holder h on h.organisation_id = l.organisation_id and h.lease_id = l.id
                  where l.organisation_id = u.organisation_id and l.unit_id = u.id
                    and l.starts_on <= $4 and (l.ends_on is null or l.ends_on > $4)
                  order by l.starts_on desc, h.position, h.id limit 1)
           from unit u
          where u.organisation_id = $1 and u.site_id = $2 and upper(u.reference) = any($3)",
    )
    .bind(tx.org().0)
    .bind(input.site_id)
    .bind(&wanted)
    .bind(input.received_on)
    .fetch_all(tx.conn())
    .await?;
    let mut problems = Vec::new();
    let mut total: i64 = 0;
    let mut resolved = Vec::with_capacity(input.rows.len());
    for (row, reference) in input.rows.iter().zip(&wanted) {
        if row.amount_pence <= 0 || row.amount_pence > MAX_LINE_PENCE {
            problems.push(format!(
                "Row {}: the amount must be between £0.01 and £10,000,000,000.00.",
                row.row
            ));
            continue;
        }
        total = total.saturating_add(row.amount_pence);
        match units.iter().find(|(_, r, _)| r == reference) {
            Some((id, _, payer)) => resolved.push((row, *id, *payer)),
            None => problems.push(format!(
                "Row {}: there is no unit {} on this site.",
                row.row,
                row.unit_reference.trim()
            )),
        }
    }
    if total > MAX_LINE_PENCE {
        problems.push("The batch totals more than £10,000,000,000.00; check the figures.".into());
    }
    if !problems.is_empty() {
        return Err(refused(problems.join("\n")));
    }

    // Written under a savepoint: a row refused part-way leaves nothing behind, even in a
    // transaction the caller goes on to commit.
    sqlx::query("savepoint receipt_batch")
        .execute(tx.conn())
        .await?;
    let outcome = write_batch(tx, input, bank, note, total, &resolved, by, now).await;
    if outcome.is_err() {
        // Back to before the batch; the refusal below is the one to report.
        let _ = sqlx::query("rollback to savepoint receipt_batch")
            .execute(tx.conn())
            .await;
    }
    sqlx::query("release savepoint receipt_batch")
        .execute(tx.conn())
        .await?;
    outcome
}

#[expect(clippy::too_many_arguments, reason = "the checked parts of one batch")]
async fn write_batch(
    tx: &mut TenantTx,
    input: &BatchInput,
    bank: Uuid,
    note: Option<String>,
    total: i64,
    resolved: &[(&BatchRow, Uuid, Option<Uuid>)],
    by: &str,
    now: OffsetDateTime,
) -> Result<Recorded, LedgerError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into receipt_batch (organisation_id, id, site_id, received_on, method,
                bank_account_id, receipt_count, total_pence, note, recorded_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(input.site_id)
    .bind(input.received_on)
    .bind(input.method.as_str())
    .bind(bank)
    .bind(i32::try_from(resolved.len()).unwrap_or(i32::MAX))
    .bind(total)
    .bind(&note)
    .bind(by)
    .execute(tx.conn())
    .await?;
    let mut numbers = Vec::with_capacity(resolved.len());
    for &(row, unit, payer) in resolved {
        let receipt = ReceiptInput {
            unit_id: unit,
            contact_id: payer,
            received_on: input.received_on,
            amount_pence: row.amount_pence,
            method: input.method,
            reference: row.reference.clone(),
            bank_account_id: Some(bank),
            fund_id: None,
            allocate: Allocate::OldestFirst,
            channel: "admin",
            batch_id: Some(id),
        };
        match receivables::record_receipt(tx, &receipt, by, now).await {
            Ok((_, number)) => numbers.push(number),
            Err(LedgerError::Refused(why)) => {
                return Err(refused(format!("Row {}: {why}", row.row)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Recorded {
        id,
        numbers,
        total_pence: total,
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Batch {
    pub id: Uuid,
    pub site_id: Uuid,
    pub received_on: Date,
    pub method: String,
    pub bank_account: String,
    pub receipt_count: i32,
    pub total_pence: i64,
    pub note: Option<String>,
    pub recorded_by: String,
    pub created_at: OffsetDateTime,
    /// Receipts of the batch since reversed (a bounced cheque, say).
    pub reversed: i64,
}

impl Batch {
    pub fn summary(&self) -> String {
        format!(
            "{} receipt{} totalling {} {}",
            self.receipt_count,
            if self.receipt_count == 1 { "" } else { "s" },
            format_pence(self.total_pence),
            PaymentMethod::parse(&self.method).map_or("", PaymentMethod::phrase)
        )
    }
}

const BATCH_SELECT: &str = "select b.id, b.site_id, b.received_on, b.method,
        a.code || ' ' || a.name as bank_account, b.receipt_count, b.total_pence, b.note,
        b.recorded_by, b.created_at,
        (select count(*) from receipt r
          where r.organisation_id = b.organisation_id and r.batch_id = b.id
            and r.status = 'reversed') as reversed
   from receipt_batch b
   join ledger_account a on a.organisation_id = b.organisation_id and a.id = b.bank_account_id";

/// A site's batches, newest first (at most `limit`).
pub async fn site_batches(
    tx: &mut TenantTx,
    site: Uuid,
    limit: i64,
) -> Result<Vec<Batch>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{BATCH_SELECT} where b.organisation_id = $1 and b.site_id = $2
          order by b.received_on desc, b.created_at desc limit $3"
    )))
    .bind(tx.org().0)
    .bind(site)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn find_batch(tx: &mut TenantTx, id: Uuid) -> Result<Option<Batch>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{BATCH_SELECT} where b.organisation_id = $1 and b.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The batch's receipts in the order they were entered.
pub async fn batch_receipts(
    tx: &mut TenantTx,
    batch: Uuid,
) -> Result<Vec<receivables::Receipt>, DbError> {
    receivables::receipts_of_batch(tx, batch).await
}
