//! Manual journals (issue 6; docs-spec §2.6): drafted by someone who may post journals,
//! submitted, and approved by someone who may approve them (through the approval chain for
//! manual journals when one applies) before they reach the ledger. Corrections after posting
//! are reversals, as for every journal.

use crate::approvals::{self, Signed, Signer, Subject};
use crate::error::DbError;
use crate::ledger::{self, LedgerError, NewJournal, NewLine, lock_books, plain, refused};
use crate::receivables::Approval;
use crate::tenant::TenantTx;
use proplink_domain::ledger::check_lines;
use proplink_domain::uk::format_pence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ManualLine {
    pub account_id: Uuid,
    pub fund_id: Uuid,
    /// Debit positive, credit negative.
    pub amount_pence: i64,
    pub unit_id: Option<Uuid>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ManualInput {
    pub site_id: Uuid,
    pub date: Date,
    pub description: String,
    pub lines: Vec<ManualLine>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ManualJournal {
    pub id: Uuid,
    pub site_id: Uuid,
    pub site_reference: String,
    pub journal_date: Date,
    pub description: String,
    pub status: String,
    pub journal_id: Option<Uuid>,
    pub journal_reference: Option<String>,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<OffsetDateTime>,
    pub returned_reason: Option<String>,
    pub debits_pence: i64,
}

const SELECT: &str = "select m.id, m.site_id, s.reference as site_reference, m.journal_date,
        m.description, m.status, m.journal_id, j.reference as journal_reference, m.created_by,
        m.submitted_by, m.approved_by, m.approved_at, m.returned_reason,
        coalesce((select sum(l.amount_pence) from manual_journal_line l
                   where l.organisation_id = m.organisation_id and l.manual_journal_id = m.id
                     and l.amount_pence > 0), 0)::int8 as debits_pence
   from manual_journal m
   join site s on s.organisation_id = m.organisation_id and s.id = m.site_id
   left join journal j on j.organisation_id = m.organisation_id and j.id = m.journal_id";

pub async fn find(tx: &mut TenantTx, id: Uuid) -> Result<Option<ManualJournal>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where m.organisation_id = $1 and m.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The site's manual journals, drafts and those awaiting approval first.
pub async fn for_site(tx: &mut TenantTx, site: Uuid) -> Result<Vec<ManualJournal>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where m.organisation_id = $1 and m.site_id = $2
          order by m.status = 'posted', m.journal_date desc, m.created_at desc limit 200"
    )))
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub line_no: i16,
    pub account_id: Uuid,
    pub account_code: String,
    pub account_name: String,
    pub fund_id: Uuid,
    pub fund_name: String,
    pub amount_pence: i64,
    pub unit_id: Option<Uuid>,
    pub description: Option<String>,
}

pub async fn lines(tx: &mut TenantTx, id: Uuid) -> Result<Vec<Line>, DbError> {
    Ok(sqlx::query_as(
        "select l.line_no, l.account_id, a.code as account_code, a.name as account_name,
                l.fund_id, f.name as fund_name, l.amount_pence, l.unit_id, l.description
           from manual_journal_line l
           join ledger_account a on a.organisation_id = l.organisation_id and a.id = l.account_id
           join fund f on f.organisation_id = l.organisation_id and f.id = l.fund_id
          where l.organisation_id = $1 and l.manual_journal_id = $2 order by l.line_no",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?)
}

/// Saves a draft: balanced, on the site's live accounts and funds, each unit the site's.
pub async fn save_draft(
    tx: &mut TenantTx,
    id: Option<Uuid>,
    input: &ManualInput,
    by: &str,
) -> Result<Uuid, LedgerError> {
    ledger::ensure_books(tx, input.site_id).await?;
    let description = input.description.trim();
    if description.is_empty() || description.chars().count() > 300 {
        return Err(refused("Describe the journal (up to 300 characters)."));
    }
    plain(description, "description")?;
    if !(2000..=2100).contains(&input.date.year()) {
        return Err(refused("The journal's date must be between 2000 and 2100."));
    }
    let amounts: Vec<i64> = input.lines.iter().map(|l| l.amount_pence).collect();
    check_lines(&amounts)?;
    let accounts = ledger::accounts(tx, input.site_id).await?;
    let funds = ledger::funds(tx, input.site_id).await?;
    for (i, l) in input.lines.iter().enumerate() {
        let n = i + 1;
        match accounts.iter().find(|a| a.id == l.account_id) {
            None => {
                return Err(refused(format!(
                    "Line {n}: choose one of this site's ledger accounts."
                )));
            }
            Some(a) if a.archived_at.is_some() => {
                return Err(refused(format!(
                    "Line {n}: {} {} is archived.",
                    a.code, a.name
                )));
            }
            Some(_) => {}
        }
        if !funds.iter().any(|f| f.id == l.fund_id) {
            return Err(refused(format!(
                "Line {n}: choose one of this site's funds."
            )));
        }
        if let Some(d) = &l.description {
            if d.chars().count() > 300 {
                return Err(refused(format!(
                    "Line {n}: the description is at most 300 characters."
                )));
            }
            plain(d, &format!("description of line {n}"))?;
        }
        if let Some(unit) = l.unit_id {
            let on_site: bool = sqlx::query_scalar(
                "select exists (select from unit where organisation_id = $1 and id = $2
                                  and site_id = $3)",
            )
            .bind(tx.org().0)
            .bind(unit)
            .bind(input.site_id)
            .fetch_one(tx.conn())
            .await?;
            if !on_site {
                return Err(refused(format!("Line {n}: that unit is not on this site.")));
            }
        }
    }
    let id = match id {
        Some(id) => {
            let current = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
            if current.status != "draft" || current.site_id != input.site_id {
                return Err(refused(
                    "Only a draft is edited, on its own site; this journal has moved on.",
                ));
            }
            sqlx::query(
                "update manual_journal set journal_date = $3, description = $4, updated_at = now()
                  where organisation_id = $1 and id = $2",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.date)
            .bind(description)
            .execute(tx.conn())
            .await?;
            sqlx::query(
                "delete from manual_journal_line where organisation_id = $1 and manual_journal_id = $2",
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
                "insert into manual_journal (organisation_id, id, site_id, journal_date, description,
                        created_by)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tx.org().0)
            .bind(id)
            .bind(input.site_id)
            .bind(input.date)
            .bind(description)
            .bind(by)
            .execute(tx.conn())
            .await?;
            id
        }
    };
    for (i, l) in input.lines.iter().enumerate() {
        sqlx::query(
            "insert into manual_journal_line (organisation_id, id, manual_journal_id, site_id,
                    line_no, account_id, fund_id, amount_pence, unit_id, description)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(input.site_id)
        .bind(i16::try_from(i + 1).unwrap_or(i16::MAX))
        .bind(l.account_id)
        .bind(l.fund_id)
        .bind(l.amount_pence)
        .bind(l.unit_id)
        .bind(
            l.description
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty()),
        )
        .execute(tx.conn())
        .await?;
    }
    Ok(id)
}

/// Deletes a draft.
pub async fn delete_draft(tx: &mut TenantTx, id: Uuid) -> Result<(), LedgerError> {
    let current = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if current.status != "draft" {
        return Err(refused("Only a draft journal is deleted."));
    }
    sqlx::query("delete from manual_journal where organisation_id = $1 and id = $2")
        .bind(tx.org().0)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn submit(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let m = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if m.status != "draft" {
        return Err(refused("Only a draft journal is submitted."));
    }
    approvals::open_request(
        tx,
        &Subject {
            record_type: "manual_journal",
            record_id: id,
            amount_pence: m.debits_pence,
            site_id: Some(m.site_id),
            category: None,
        },
        who.membership_id,
    )
    .await?;
    sqlx::query(
        "update manual_journal set status = 'awaiting_approval', submitted_by = $3,
                submitted_at = $4, returned_reason = null, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&who.name)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Approves as `who`: signs the chain if one covers the journal, and posts it once complete.
/// Without a chain, the person who drafted it may not approve it too.
pub async fn approve(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    now: OffsetDateTime,
) -> Result<Approval, LedgerError> {
    lock_books(tx).await?;
    let m = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if m.status != "awaiting_approval" {
        return Err(refused("Only a journal awaiting approval is approved."));
    }
    match approvals::sign(tx, "manual_journal", id, who, now.date(), now).await? {
        Signed::Waiting(left) => Ok(Approval::Waiting(left)),
        Signed::NoChain => {
            if m.submitted_by.as_deref() == Some(who.name.as_str()) || m.created_by == who.name {
                return Err(refused(
                    "You drafted this journal: someone else who may approve journals must approve it.",
                ));
            }
            post(tx, &m, &who.name, now).await.map(Approval::Posted)
        }
        Signed::Complete => post(tx, &m, &who.name, now).await.map(Approval::Posted),
    }
}

/// The Organisation Owner posts a journal past its chain, with a reason.
pub async fn bypass(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    lock_books(tx).await?;
    let m = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if m.status != "awaiting_approval" {
        return Err(refused("Only a journal awaiting approval is approved."));
    }
    let label = format!(
        "manual journal \"{}\" on site {} ({})",
        m.description,
        m.site_reference,
        format_pence(m.debits_pence)
    );
    if !approvals::bypass(tx, "manual_journal", id, &label, who, reason, now).await? {
        return Err(refused(
            "No approval chain is waiting on this journal: approve it instead.",
        ));
    }
    post(tx, &m, &who.name, now).await
}

/// Sends it back to draft with the reason.
pub async fn reject(
    tx: &mut TenantTx,
    id: Uuid,
    who: &Signer,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let m = find(tx, id).await?.ok_or(LedgerError::NotFound)?;
    if m.status != "awaiting_approval" {
        return Err(refused(
            "Only a journal awaiting approval can be sent back.",
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(refused("Say why it goes back (up to 300 characters)."));
    }
    plain(reason, "reason")?;
    approvals::reject(tx, "manual_journal", id, who, reason, now.date(), now).await?;
    sqlx::query(
        "update manual_journal set status = 'draft', returned_reason = $3, submitted_by = null,
                submitted_at = null, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(reason)
    .execute(tx.conn())
    .await?;
    Ok(())
}

async fn post(
    tx: &mut TenantTx,
    m: &ManualJournal,
    by: &str,
    now: OffsetDateTime,
) -> Result<String, LedgerError> {
    let lines: Vec<NewLine> = lines(tx, m.id)
        .await?
        .into_iter()
        .map(|l| NewLine {
            account_id: l.account_id,
            fund_id: l.fund_id,
            amount_pence: l.amount_pence,
            unit_id: l.unit_id,
            contact_id: None,
            work_order_id: None,
            description: l.description,
        })
        .collect();
    let (journal, reference) = ledger::post(
        tx,
        &NewJournal {
            site_id: m.site_id,
            date: m.journal_date,
            description: m.description.clone(),
            source_type: "manual_journal".into(),
            source_id: Some(m.id),
            lines,
        },
        by,
        now,
    )
    .await?;
    sqlx::query(
        "update manual_journal set status = 'posted', journal_id = $3, approved_by = $4,
                approved_at = $5, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(m.id)
    .bind(journal)
    .bind(by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(reference)
}
