//! The per-site ledger (issue 6; DESIGN §4): charts of accounts and funds, accounting periods
//! and their locks, posting journals and reversing them, and balances derived from the lines.
//!
//! Every journal is checked here first, so a refusal is a sentence; the database checks the
//! same rules again (`0032_ledger.sql`), so no other path can post an unbalanced journal, add
//! lines to a posted one, change one, or post into a locked period or onto another site's
//! accounts.

use crate::error::DbError;
use crate::tenant::TenantTx;
use proplink_domain::dates::long_date;
use proplink_domain::ledger::{AccountKind, FundKind, JournalError, STANDARD_FUNDS, check_lines};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Any other refusal, as a sentence.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

pub(crate) fn refused(msg: impl Into<String>) -> LedgerError {
    LedgerError::Refused(msg.into())
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub site_id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub control: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
}

impl Account {
    pub fn kind(&self) -> AccountKind {
        AccountKind::parse(&self.kind).unwrap_or(AccountKind::Asset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Fund {
    pub id: Uuid,
    pub site_id: Uuid,
    pub kind: String,
    pub name: String,
}

/// Gives a site its books (a chart from the organisation's template, and the standard funds)
/// if it has none yet; returns whether it created them. Idempotent and safe to call before every posting.
pub async fn ensure_books(tx: &mut TenantTx, site: Uuid) -> Result<bool, DbError> {
    let has: bool = sqlx::query_scalar(
        "select exists (select from ledger_account where organisation_id = $1 and site_id = $2)",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_one(tx.conn())
    .await?;
    if has {
        return Ok(false);
    }
    // Opening books reads the chart template: under the books lock, so a template change in
    // flight either reaches this site or is seen by it.
    lock_books(tx).await?;
    let has: bool = sqlx::query_scalar(
        "select exists (select from ledger_account where organisation_id = $1 and site_id = $2)",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_one(tx.conn())
    .await?;
    if has {
        return Ok(false);
    }
    crate::chart::open_site_chart(tx, site).await?;
    for kind in STANDARD_FUNDS {
        sqlx::query(
            "insert into fund (organisation_id, id, site_id, kind, name)
             values ($1, $2, $3, $4, $5) on conflict do nothing",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(site)
        .bind(kind.as_str())
        .bind(kind.label())
        .execute(tx.conn())
        .await?;
    }
    Ok(true)
}

pub async fn accounts(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Account>, DbError> {
    Ok(sqlx::query_as(
        "select id, site_id, code, name, kind, control, archived_at from ledger_account
          where organisation_id = $1 and site_id = $2 order by code",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

/// The site's account with a role (`debtors`, `service_charge_income`, ...).
pub async fn control_account(
    tx: &mut TenantTx,
    site: Uuid,
    control: &str,
) -> Result<Option<Account>, DbError> {
    Ok(sqlx::query_as(
        "select id, site_id, code, name, kind, control, archived_at from ledger_account
          where organisation_id = $1 and site_id = $2 and control = $3 and archived_at is null
          order by code limit 1",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(control)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn funds(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Fund>, DbError> {
    Ok(sqlx::query_as(
        "select id, site_id, kind, name from fund
          where organisation_id = $1 and site_id = $2 and archived_at is null order by kind, name",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn fund_of_kind(
    tx: &mut TenantTx,
    site: Uuid,
    kind: FundKind,
) -> Result<Option<Fund>, DbError> {
    Ok(sqlx::query_as(
        "select id, site_id, kind, name from fund
          where organisation_id = $1 and site_id = $2 and kind = $3 and archived_at is null
          order by name limit 1",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(kind.as_str())
    .fetch_optional(tx.conn())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Journals

#[derive(Debug, Clone)]
pub struct NewLine {
    pub account_id: Uuid,
    pub fund_id: Uuid,
    /// Debit positive, credit negative.
    pub amount_pence: i64,
    pub unit_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub work_order_id: Option<Uuid>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewJournal {
    pub site_id: Uuid,
    pub date: Date,
    pub description: String,
    /// `manual_journal`, `debtor_invoice`, `receipt`, ...
    pub source_type: String,
    pub source_id: Option<Uuid>,
    pub lines: Vec<NewLine>,
}

/// Takes the organisation's books lock (its row, which every audited write takes at commit
/// anyway), so postings and period locks queue in one order instead of deadlocking.
pub(crate) async fn lock_books(tx: &mut TenantTx) -> Result<(), DbError> {
    sqlx::query("select proplink.lock_books()")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Refuses text with control characters or invisible direction and width marks (they would
/// reach statements, PDFs and CSVs, and can disguise what a line says).
pub(crate) fn plain(text: &str, what: &str) -> Result<(), LedgerError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if text.chars().any(hidden) {
        return Err(refused(format!(
            "The {what} contains a control character (such as a line break): write it on one line."
        )));
    }
    Ok(())
}

/// Whether the site has a locked period covering `date`, and which.
async fn locked_period(
    tx: &mut TenantTx,
    site: Uuid,
    date: Date,
) -> Result<Option<(Date, Date)>, DbError> {
    Ok(sqlx::query_as(
        "select starts_on, ends_on from accounting_period
          where organisation_id = $1 and site_id = $2 and $3 between starts_on and ends_on
            and locked_at is not null",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(date)
    .fetch_optional(tx.conn())
    .await?)
}

/// Posts a journal: checked (balanced, the site's live accounts and funds, an open period),
/// numbered `JNL-2026-000123` without gaps, and written with its lines in one statement.
pub async fn post(
    tx: &mut TenantTx,
    journal: &NewJournal,
    posted_by: &str,
    now: OffsetDateTime,
) -> Result<(Uuid, String), LedgerError> {
    let mut posted = post_many(tx, std::slice::from_ref(journal), posted_by, now).await?;
    posted.pop().ok_or(LedgerError::NotFound)
}

/// What the checks of one site need: its accounts, funds, locked periods, units and work
/// orders named on the lines.
struct SiteFacts {
    accounts: Vec<Account>,
    funds: Vec<(Uuid, String, bool)>,
    locked: Vec<(Date, Date)>,
}

/// Posts many journals at once (a bulk run of demands): every one checked as `post` checks
/// it, then all numbered with one counter bump per year and written with two statements, one
/// for the journals and one for all their lines. All or nothing.
pub async fn post_many(
    tx: &mut TenantTx,
    journals: &[NewJournal],
    posted_by: &str,
    now: OffsetDateTime,
) -> Result<Vec<(Uuid, String)>, LedgerError> {
    if journals.is_empty() {
        return Ok(Vec::new());
    }
    let several = journals.len() > 1;
    let at = |j: usize, line: Option<usize>| -> String {
        match (several, line) {
            (false, Some(i)) => format!("Line {i}"),
            (true, Some(i)) => format!("Journal {j}, line {i}"),
            (true, None) => format!("Journal {j}"),
            (false, None) => "The journal".to_owned(),
        }
    };
    for (j, journal) in journals.iter().enumerate() {
        let amounts: Vec<i64> = journal.lines.iter().map(|l| l.amount_pence).collect();
        if let Err(e) = check_lines(&amounts) {
            return Err(if several {
                refused(format!("{}: {e}", at(j + 1, None)))
            } else {
                e.into()
            });
        }
        let description = journal.description.trim();
        if description.is_empty() || description.chars().count() > 300 {
            return Err(refused(if several {
                format!("{}: describe it in up to 300 characters.", at(j + 1, None))
            } else {
                "Describe the journal in up to 300 characters.".to_owned()
            }));
        }
        if !(2000..=2100).contains(&journal.date.year()) {
            return Err(refused(if several {
                format!(
                    "{}: its date must be between 2000 and 2100.",
                    at(j + 1, None)
                )
            } else {
                "The journal's date must be between 2000 and 2100.".to_owned()
            }));
        }
        plain(description, "description")?;
    }
    lock_books(tx).await?;
    // Each site's facts, read once.
    let mut sites: Vec<(Uuid, SiteFacts)> = Vec::new();
    for journal in journals {
        if sites.iter().any(|(s, _)| *s == journal.site_id) {
            continue;
        }
        let site = journal.site_id;
        let facts = SiteFacts {
            accounts: accounts(tx, site).await?,
            funds: sqlx::query_as(
                "select id, name, archived_at is not null from fund
                  where organisation_id = $1 and site_id = $2",
            )
            .bind(tx.org().0)
            .bind(site)
            .fetch_all(tx.conn())
            .await?,
            locked: sqlx::query_as(
                "select starts_on, ends_on from accounting_period
                  where organisation_id = $1 and site_id = $2 and locked_at is not null",
            )
            .bind(tx.org().0)
            .bind(site)
            .fetch_all(tx.conn())
            .await?,
        };
        sites.push((site, facts));
    }
    // The units and work orders the lines name, with their sites.
    let mut named: Vec<(Uuid, Uuid)> = Vec::new();
    for (table, pick) in [
        (
            "unit",
            (|l: &NewLine| l.unit_id) as fn(&NewLine) -> Option<Uuid>,
        ),
        ("work_order", |l: &NewLine| l.work_order_id),
    ] {
        let mut ids: Vec<Uuid> = journals
            .iter()
            .flat_map(|j| j.lines.iter().filter_map(pick))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            continue;
        }
        let sql =
            format!("select id, site_id from {table} where organisation_id = $1 and id = any($2)");
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tx.org().0)
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?;
        named.extend(rows);
    }
    for (j, journal) in journals.iter().enumerate() {
        let Some((_, facts)) = sites.iter().find(|(s, _)| *s == journal.site_id) else {
            return Err(LedgerError::NotFound);
        };
        if let Some((from, to)) = facts
            .locked
            .iter()
            .find(|(from, to)| *from <= journal.date && journal.date <= *to)
        {
            return Err(refused(format!(
                "{}The period {} to {} is locked: nothing can be posted on {}. Date it in an open period, or ask someone who may unlock periods.",
                if several {
                    format!("{}: ", at(j + 1, None))
                } else {
                    String::new()
                },
                long_date(*from),
                long_date(*to),
                long_date(journal.date)
            )));
        }
        for (i, line) in journal.lines.iter().enumerate() {
            let here = at(j + 1, Some(i + 1));
            match facts.accounts.iter().find(|a| a.id == line.account_id) {
                None => {
                    return Err(refused(format!(
                        "{here}: that account is not one of this site's."
                    )));
                }
                Some(a) if a.archived_at.is_some() => {
                    return Err(refused(format!(
                        "{here}: account {} {} is archived.",
                        a.code, a.name
                    )));
                }
                Some(_) => {}
            }
            match facts.funds.iter().find(|f| f.0 == line.fund_id) {
                None => {
                    return Err(refused(format!(
                        "{here}: that fund is not one of this site's."
                    )));
                }
                Some((_, name, true)) => {
                    return Err(refused(format!("{here}: the {name} is archived.")));
                }
                Some(_) => {}
            }
            if let Some(d) = line.description.as_deref() {
                if d.chars().count() > 300 {
                    return Err(refused(format!(
                        "{here}: keep its description to 300 characters."
                    )));
                }
                plain(d, &format!("description of {}", here.to_lowercase()))?;
            }
            for (id, what) in [(line.unit_id, "unit"), (line.work_order_id, "work order")] {
                if let Some(id) = id
                    && !named
                        .iter()
                        .any(|(n, site)| *n == id && *site == journal.site_id)
                {
                    return Err(refused(if several {
                        format!("{here} names a {what} that is not at its site.")
                    } else {
                        format!("A line names a {what} that is not at this site.")
                    }));
                }
            }
        }
    }
    // Numbers: one counter bump per year, handed out in order.
    let mut references: Vec<String> = Vec::with_capacity(journals.len());
    let mut years: Vec<i32> = journals.iter().map(|j| j.date.year()).collect();
    years.sort_unstable();
    years.dedup();
    let mut next_of: Vec<(i32, i32)> = Vec::with_capacity(years.len());
    for year in years {
        let count = i32::try_from(journals.iter().filter(|j| j.date.year() == year).count())
            .map_err(|_| refused("Post at most two billion journals at once."))?;
        let last: i32 = sqlx::query_scalar(
            "insert into reference_counter (organisation_id, kind, year, last_number)
             values ($1, 'journal', $2, $3)
             on conflict (organisation_id, kind, year)
             do update set last_number = reference_counter.last_number + excluded.last_number
             returning last_number",
        )
        .bind(tx.org().0)
        .bind(year)
        .bind(count)
        .fetch_one(tx.conn())
        .await?;
        next_of.push((year, last - count + 1));
    }
    for journal in journals {
        let year = journal.date.year();
        let Some(slot) = next_of.iter_mut().find(|(y, _)| *y == year) else {
            return Err(LedgerError::NotFound);
        };
        references.push(format!("JNL-{year}-{:06}", slot.1));
        slot.1 += 1;
    }
    let ids: Vec<Uuid> = journals.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "insert into journal (organisation_id, id, site_id, reference, journal_date, description,
                              source_type, source_id, posted_by, posted_at)
         select $1, x.id, x.site_id, x.reference, x.journal_date, x.description, x.source_type,
                x.source_id, $8, $9
           from unnest($2::uuid[], $3::uuid[], $4::text[], $5::date[], $6::text[], $7::text[],
                       $10::uuid[])
                as x(id, site_id, reference, journal_date, description, source_type, source_id)",
    )
    .bind(tx.org().0)
    .bind(&ids)
    .bind(journals.iter().map(|j| j.site_id).collect::<Vec<_>>())
    .bind(&references)
    .bind(journals.iter().map(|j| j.date).collect::<Vec<_>>())
    .bind(
        journals
            .iter()
            .map(|j| j.description.trim().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        journals
            .iter()
            .map(|j| j.source_type.clone())
            .collect::<Vec<_>>(),
    )
    .bind(posted_by)
    .bind(now)
    .bind(journals.iter().map(|j| j.source_id).collect::<Vec<_>>())
    .execute(tx.conn())
    .await?;
    let placed: Vec<(Uuid, Uuid, Date, &NewLine, i16)> = journals
        .iter()
        .zip(&ids)
        .flat_map(|(j, id)| {
            j.lines.iter().enumerate().map(move |(n, l)| {
                (
                    *id,
                    j.site_id,
                    j.date,
                    l,
                    i16::try_from(n + 1).unwrap_or(i16::MAX),
                )
            })
        })
        .collect();
    insert_placed_lines(tx, &placed).await?;
    Ok(ids.into_iter().zip(references).collect())
}

async fn next_journal_reference(tx: &mut TenantTx, year: i32) -> Result<String, DbError> {
    next_number(tx, "journal", "JNL", year).await
}

/// The next number of a kind of document for the year, `PREFIX-2026-000123`: drawn from the
/// organisation's counter row, which stays locked until the transaction ends, so numbers are
/// issued without gaps.
pub(crate) async fn next_number(
    tx: &mut TenantTx,
    kind: &str,
    prefix: &str,
    year: i32,
) -> Result<String, DbError> {
    let n: i32 = sqlx::query_scalar(
        "insert into reference_counter (organisation_id, kind, year, last_number)
         values ($1, $2, $3, 1)
         on conflict (organisation_id, kind, year)
         do update set last_number = reference_counter.last_number + 1
         returning last_number",
    )
    .bind(tx.org().0)
    .bind(kind)
    .bind(year)
    .fetch_one(tx.conn())
    .await?;
    Ok(format!("{prefix}-{year}-{n:06}"))
}

async fn insert_lines(
    tx: &mut TenantTx,
    journal: Uuid,
    site: Uuid,
    date: Date,
    lines: &[NewLine],
) -> Result<(), DbError> {
    let placed: Vec<(Uuid, Uuid, Date, &NewLine, i16)> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            (
                journal,
                site,
                date,
                l,
                i16::try_from(n + 1).unwrap_or(i16::MAX),
            )
        })
        .collect();
    insert_placed_lines(tx, &placed).await
}

/// Writes lines of one or more journals in one statement: (journal, site, date, line, number).
async fn insert_placed_lines(
    tx: &mut TenantTx,
    placed: &[(Uuid, Uuid, Date, &NewLine, i16)],
) -> Result<(), DbError> {
    let n = placed.len();
    let mut ids = Vec::with_capacity(n);
    let mut journals = Vec::with_capacity(n);
    let mut sites = Vec::with_capacity(n);
    let mut dates = Vec::with_capacity(n);
    let mut numbers = Vec::with_capacity(n);
    let mut accounts = Vec::with_capacity(n);
    let mut funds = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut units = Vec::with_capacity(n);
    let mut contacts = Vec::with_capacity(n);
    let mut work_orders = Vec::with_capacity(n);
    let mut descriptions = Vec::with_capacity(n);
    for (journal, site, date, l, number) in placed {
        ids.push(Uuid::now_v7());
        journals.push(*journal);
        sites.push(*site);
        dates.push(*date);
        numbers.push(*number);
        accounts.push(l.account_id);
        funds.push(l.fund_id);
        amounts.push(l.amount_pence);
        units.push(l.unit_id);
        contacts.push(l.contact_id);
        work_orders.push(l.work_order_id);
        descriptions.push(
            l.description
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        );
    }
    sqlx::query(
        "insert into journal_line (organisation_id, id, journal_id, site_id, journal_date, line_no,
                                   account_id, fund_id, amount_pence, unit_id, contact_id,
                                   work_order_id, description)
         select $1, x.id, x.journal_id, x.site_id, x.journal_date, x.line_no, x.account_id,
                x.fund_id, x.amount, x.unit_id, x.contact_id, x.work_order_id, x.description
           from unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::date[], $6::int2[], $7::uuid[],
                       $8::uuid[], $9::int8[], $10::uuid[], $11::uuid[], $12::uuid[], $13::text[])
                as x(id, journal_id, site_id, journal_date, line_no, account_id, fund_id, amount,
                     unit_id, contact_id, work_order_id, description)",
    )
    .bind(tx.org().0)
    .bind(ids)
    .bind(journals)
    .bind(sites)
    .bind(dates)
    .bind(numbers)
    .bind(accounts)
    .bind(funds)
    .bind(amounts)
    .bind(units)
    .bind(contacts)
    .bind(work_orders)
    .bind(descriptions)
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Journal {
    pub id: Uuid,
    pub site_id: Uuid,
    pub reference: String,
    pub journal_date: Date,
    pub description: String,
    pub source_type: String,
    pub source_id: Option<Uuid>,
    pub reverses_id: Option<Uuid>,
    pub posted_by: String,
    pub posted_at: OffsetDateTime,
    /// The journal that reversed this one, if any.
    pub reversed_by: Option<Uuid>,
}

pub async fn find_journal(tx: &mut TenantTx, id: Uuid) -> Result<Option<Journal>, DbError> {
    Ok(sqlx::query_as(
        "select j.id, j.site_id, j.reference, j.journal_date, j.description, j.source_type,
                j.source_id, j.reverses_id, j.posted_by, j.posted_at,
                (select r.id from journal r where r.organisation_id = j.organisation_id
                   and r.reverses_id = j.id) as reversed_by
           from journal j where j.organisation_id = $1 and j.id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub line_no: i16,
    pub account_id: Uuid,
    pub fund_id: Uuid,
    pub amount_pence: i64,
    pub unit_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub work_order_id: Option<Uuid>,
    pub description: Option<String>,
}

pub async fn lines(tx: &mut TenantTx, journal: Uuid) -> Result<Vec<Line>, DbError> {
    Ok(sqlx::query_as(
        "select line_no, account_id, fund_id, amount_pence, unit_id, contact_id, work_order_id,
                description
           from journal_line where organisation_id = $1 and journal_id = $2 order by line_no",
    )
    .bind(tx.org().0)
    .bind(journal)
    .fetch_all(tx.conn())
    .await?)
}

/// Reverses a posted journal on `date`: the same lines with the signs turned, referring to it.
/// A journal is reversed once; a reversal is not itself reversed (post the original again).
pub async fn reverse(
    tx: &mut TenantTx,
    journal: Uuid,
    date: Date,
    reason: &str,
    posted_by: &str,
    now: OffsetDateTime,
) -> Result<(Uuid, String), LedgerError> {
    // Serialise reversals (and postings) under the books lock; the unique index would refuse a
    // second reversal anyway.
    let original = find_journal(tx, journal)
        .await?
        .ok_or(LedgerError::NotFound)?;
    lock_books(tx).await?;
    let original = find_journal(tx, original.id)
        .await?
        .ok_or(LedgerError::NotFound)?;
    if original.reversed_by.is_some() {
        return Err(refused(format!(
            "{} has already been reversed.",
            original.reference
        )));
    }
    if original.reverses_id.is_some() {
        return Err(refused(format!(
            "{} is itself a reversal: post the original entries again instead.",
            original.reference
        )));
    }
    if date < original.journal_date {
        return Err(refused(format!(
            "A reversal cannot be dated before the journal it reverses ({}).",
            long_date(original.journal_date)
        )));
    }
    let reason = reason.trim();
    plain(reason, "reason")?;
    if date.year() > 2100 {
        return Err(refused("The reversal's date must be no later than 2100."));
    }
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(refused(
            "Give the reason for the reversal (up to 200 characters).",
        ));
    }
    let lines: Vec<NewLine> = lines(tx, journal)
        .await?
        .into_iter()
        .map(|l| NewLine {
            account_id: l.account_id,
            fund_id: l.fund_id,
            amount_pence: -l.amount_pence,
            unit_id: l.unit_id,
            contact_id: l.contact_id,
            work_order_id: l.work_order_id,
            description: l.description,
        })
        .collect();
    if let Some((from, to)) = locked_period(tx, original.site_id, date).await? {
        return Err(refused(format!(
            "The period {} to {} is locked: date the reversal in an open period.",
            long_date(from),
            long_date(to)
        )));
    }
    let id = Uuid::now_v7();
    let reference = next_journal_reference(tx, date.year()).await?;
    sqlx::query(
        "insert into journal (organisation_id, id, site_id, reference, journal_date, description,
                              source_type, source_id, reverses_id, posted_by, posted_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(original.site_id)
    .bind(&reference)
    .bind(date)
    .bind(format!("Reversal of {}: {reason}", original.reference))
    .bind(&original.source_type)
    .bind(original.source_id)
    .bind(original.id)
    .bind(posted_by)
    .bind(now)
    .execute(tx.conn())
    .await?;
    insert_lines(tx, id, original.site_id, date, &lines).await?;
    Ok((id, reference))
}

// ---------------------------------------------------------------------------------------------
// Periods

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Period {
    pub id: Uuid,
    pub starts_on: Date,
    pub ends_on: Date,
    pub locked_at: Option<OffsetDateTime>,
    pub locked_by: Option<String>,
}

pub async fn periods(tx: &mut TenantTx, site: Uuid) -> Result<Vec<Period>, DbError> {
    Ok(sqlx::query_as(
        "select id, starts_on, ends_on, locked_at, locked_by from accounting_period
          where organisation_id = $1 and site_id = $2 order by starts_on",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?)
}

/// Adds an accounting period (at most about two years; never overlapping another).
pub async fn add_period(
    tx: &mut TenantTx,
    site: Uuid,
    starts_on: Date,
    ends_on: Date,
) -> Result<Uuid, LedgerError> {
    if ends_on < starts_on {
        return Err(refused("The period ends before it starts."));
    }
    if (ends_on - starts_on).whole_days() >= 800 {
        return Err(refused("A period is at most two years."));
    }
    if starts_on.year() < 2000 || ends_on.year() > 2100 {
        return Err(refused("A period falls between 2000 and 2100."));
    }
    let overlaps: bool = sqlx::query_scalar(
        "select exists (select from accounting_period where organisation_id = $1 and site_id = $2
                          and daterange(starts_on, ends_on, '[]') && daterange($3, $4, '[]'))",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(starts_on)
    .bind(ends_on)
    .fetch_one(tx.conn())
    .await?;
    if overlaps {
        return Err(refused(
            "That period overlaps another of the site's periods.",
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into accounting_period (organisation_id, id, site_id, starts_on, ends_on)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(site)
    .bind(starts_on)
    .bind(ends_on)
    .execute(tx.conn())
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Duplicate { .. } => refused("That period overlaps another of the site's periods."),
        DbError::MissingReference { .. } => LedgerError::NotFound,
        other => LedgerError::Db(other),
    })?;
    Ok(id)
}

/// Locks (or unlocks) a period. Postings in flight finish first (the posting trigger holds a
/// share lock on the period).
pub async fn set_period_locked(
    tx: &mut TenantTx,
    period: Uuid,
    locked: bool,
    by: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let current: Option<Option<OffsetDateTime>> = sqlx::query_scalar(
        "select locked_at from accounting_period where organisation_id = $1 and id = $2 for update",
    )
    .bind(tx.org().0)
    .bind(period)
    .fetch_optional(tx.conn())
    .await?;
    let Some(current) = current else {
        return Err(LedgerError::NotFound);
    };
    if current.is_some() == locked {
        return Err(refused(if locked {
            "That period is already locked."
        } else {
            "That period is not locked."
        }));
    }
    sqlx::query(
        "update accounting_period set locked_at = $3, locked_by = $4
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(period)
    .bind(locked.then_some(now))
    .bind(locked.then_some(by))
    .execute(tx.conn())
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Balances

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TrialBalanceRow {
    pub account_id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub fund_id: Uuid,
    pub fund_name: String,
    /// Debits positive, credits negative, over the period.
    pub balance_pence: i64,
}

/// The site's trial balance from `from` to `to` (both included) by account and fund; accounts
/// with no movement are left out. Its rows sum to zero.
pub async fn trial_balance(
    tx: &mut TenantTx,
    site: Uuid,
    from: Date,
    to: Date,
) -> Result<Vec<TrialBalanceRow>, DbError> {
    Ok(sqlx::query_as(
        "select a.id as account_id, a.code, a.name, a.kind, f.id as fund_id, f.name as fund_name,
                t.balance::int8 as balance_pence
           from (select account_id, fund_id, sum(amount_pence) as balance
                   from journal_line
                  where organisation_id = $1 and site_id = $2 and journal_date between $3 and $4
                  group by account_id, fund_id) t
           join ledger_account a on a.organisation_id = $1 and a.id = t.account_id
           join fund f on f.organisation_id = $1 and f.id = t.fund_id
          where t.balance <> 0
          order by a.code, f.name",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(from)
    .bind(to)
    .fetch_all(tx.conn())
    .await?)
}

/// An account's balance (debits positive) at the end of `on`, across funds or in one.
pub async fn account_balance(
    tx: &mut TenantTx,
    account: Uuid,
    fund: Option<Uuid>,
    on: Date,
) -> Result<i64, DbError> {
    let total: Option<i64> = sqlx::query_scalar(
        "select sum(amount_pence)::int8 from journal_line
          where organisation_id = $1
            and site_id = (select site_id from ledger_account where organisation_id = $1 and id = $2)
            and account_id = $2 and ($3::uuid is null or fund_id = $3) and journal_date <= $4",
    )
    .bind(tx.org().0)
    .bind(account)
    .bind(fund)
    .bind(on)
    .fetch_one(tx.conn())
    .await?;
    Ok(total.unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// Tax rates

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TaxRate {
    pub id: Uuid,
    pub treatment: String,
    pub name: String,
    pub basis_points: i32,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub archived_at: Option<OffsetDateTime>,
}

impl TaxRate {
    /// Whether the rate may be used on a document dated `on`.
    pub fn applies_on(&self, on: Date) -> bool {
        self.archived_at.is_none() && self.valid_from <= on && self.valid_to.is_none_or(|t| on <= t)
    }
}

/// Gives the organisation the five seeded rates it does not have yet.
pub async fn ensure_tax_rates(tx: &mut TenantTx) -> Result<(), DbError> {
    for t in proplink_domain::ledger::TaxTreatment::SEEDED {
        let (name, bp) = t.seeded();
        sqlx::query(
            "insert into tax_rate (organisation_id, id, treatment, name, basis_points)
             select $1, $2, $3, $4, $5
              where not exists (select from tax_rate where organisation_id = $1 and treatment = $3)
             on conflict do nothing",
        )
        .bind(tx.org().0)
        .bind(Uuid::now_v7())
        .bind(t.as_str())
        .bind(name)
        .bind(i32::try_from(bp).unwrap_or(0))
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

pub async fn tax_rates(tx: &mut TenantTx) -> Result<Vec<TaxRate>, DbError> {
    Ok(sqlx::query_as(
        "select id, treatment, name, basis_points, valid_from, valid_to, archived_at from tax_rate
          where organisation_id = $1 order by archived_at is not null, basis_points desc, name",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// Adds an organisation's own rate (a percentage with up to two decimals, between dates).
pub async fn add_tax_rate(
    tx: &mut TenantTx,
    name: &str,
    basis_points: u32,
    valid_from: Date,
    valid_to: Option<Date>,
) -> Result<Uuid, LedgerError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(refused("Give the rate a name of up to 60 characters."));
    }
    if basis_points > 10_000 {
        return Err(refused("A rate is at most 100%."));
    }
    if valid_to.is_some_and(|t| t < valid_from) {
        return Err(refused("The rate ends before it starts."));
    }
    let taken = tax_rates(tx)
        .await?
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(name));
    if taken {
        return Err(refused(format!("There is already a rate called {name}.")));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into tax_rate (organisation_id, id, treatment, name, basis_points, valid_from, valid_to)
         values ($1, $2, 'custom', $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(name)
    .bind(i32::try_from(basis_points).unwrap_or(0))
    .bind(valid_from)
    .bind(valid_to)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Archives a tax rate (it can no longer be chosen; documents that used it keep it) or
/// restores it.
pub async fn set_tax_rate_archived(
    tx: &mut TenantTx,
    id: Uuid,
    archived: bool,
) -> Result<(), LedgerError> {
    let changed = sqlx::query(
        "update tax_rate set archived_at = case when $3 then now() end
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(archived)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(LedgerError::NotFound);
    }
    Ok(())
}
