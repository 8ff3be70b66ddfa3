//! Bank accounts and client money (issue 7; docs-spec §2.6 "Bank accounts"). A bank account is
//! a real account at a bank, its sort code and account number sealed with the organisation's
//! data key (only the last digits are kept in the clear, to show which account). It serves one
//! site, or is pooled and serves several; each site it serves has its own ledger account for it
//! in the site's books (control `bank`), so a site's money in the account, per fund, is that
//! ledger account's balance. The client-money rule reads those balances: money paid out for a
//! site and fund may not take the site's balance in that fund below zero.

use crate::error::DbError;
use crate::ledger::{self, LedgerError, lock_books, plain, refused};
use crate::tenant::TenantTx;
use proplink_auth::seal::DataKey;
use proplink_domain::ledger::FundKind;
use proplink_domain::uk::{AccountNumber, SortCode, format_pence};
use time::OffsetDateTime;
use uuid::Uuid;

/// What kind of money the account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    /// Client money held for the sites (RICS client account).
    Client,
    /// Client money held on trust (LTA 1987 s.42 service charge trust account).
    Trust,
    /// The agent's own money.
    Office,
}

impl AccountType {
    pub const ALL: [Self; 3] = [Self::Client, Self::Trust, Self::Office];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Trust => "trust",
            Self::Office => "office",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "Client account",
            Self::Trust => "Trust account (s.42)",
            Self::Office => "Office account",
        }
    }
}

/// How the bank takes a payment run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// BACS Standard 18 (needs the Service User Number).
    BacsStandard18,
    /// A CSV of payee, sort code, account, amount and reference.
    Csv,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BacsStandard18 => "bacs_std18",
            Self::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::BacsStandard18, Self::Csv]
            .into_iter()
            .find(|f| f.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::BacsStandard18 => "BACS Standard 18",
            Self::Csv => "CSV",
        }
    }
}

pub struct BankAccountInput {
    pub name: String,
    pub bank_name: Option<String>,
    pub account_type: AccountType,
    pub sort_code: SortCode,
    pub account_number: AccountNumber,
    pub holder_name: String,
    pub service_user_number: Option<String>,
    pub file_format: FileFormat,
    /// The only fund it holds, if it is kept for one.
    pub fund_kind: Option<FundKind>,
    /// The sites it serves: one, or several for a pooled account.
    pub sites: Vec<Uuid>,
    /// For a one-site account: the site's existing, unlinked bank ledger account to use
    /// (its history is the account's history) instead of opening a new one.
    pub ledger_account_id: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BankAccount {
    pub id: Uuid,
    pub name: String,
    pub bank_name: Option<String>,
    pub account_type: String,
    pub pooled: bool,
    pub last_digits: String,
    pub holder_name: String,
    pub service_user_number: Option<String>,
    pub file_format: String,
    pub fund_kind: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
    /// How many sites it serves.
    pub sites: i64,
}

impl BankAccount {
    pub fn account_type(&self) -> AccountType {
        AccountType::parse(&self.account_type).unwrap_or(AccountType::Client)
    }

    /// "Sort code **-**-56, account ****1234": which account, without showing it.
    pub fn masked(&self) -> String {
        let (sort, account) = self.last_digits.split_once('/').unwrap_or(("", ""));
        format!("Sort code **-**-{sort}, account ****{account}")
    }
}

/// The numbers in the clear, only ever in memory (for a payment file).
#[derive(Clone, PartialEq, Eq)]
pub struct Numbers {
    pub sort_code: String,
    pub account_number: String,
}

impl std::fmt::Debug for Numbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Numbers([redacted])")
    }
}

fn seal_context(org: Uuid, account: Uuid) -> Vec<u8> {
    format!("bank-account/{org}/{account}").into_bytes()
}

const SELECT: &str = "select b.id, b.name, b.bank_name, b.account_type, b.pooled, b.last_digits,
        b.holder_name, b.service_user_number, b.file_format, b.fund_kind, b.archived_at,
        (select count(*) from ledger_account l
          where l.organisation_id = b.organisation_id and l.bank_account_id = b.id) as sites
   from bank_account b";

pub async fn list(tx: &mut TenantTx) -> Result<Vec<BankAccount>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 order by b.archived_at is not null, lower(b.name)"
    )))
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

pub async fn find(tx: &mut TenantTx, id: Uuid) -> Result<Option<BankAccount>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where b.organisation_id = $1 and b.id = $2"
    )))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The bank accounts serving a site, each with the site's ledger account for it.
pub async fn for_site(tx: &mut TenantTx, site: Uuid) -> Result<Vec<(BankAccount, Uuid)>, DbError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select bank_account_id, id from ledger_account
          where organisation_id = $1 and site_id = $2 and bank_account_id is not null",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (bank, ledger_account) in rows {
        if let Some(b) = find(tx, bank).await? {
            out.push((b, ledger_account));
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out)
}

/// Adds a bank account and gives each site it serves a ledger account for it.
pub async fn create(
    tx: &mut TenantTx,
    key: &DataKey,
    input: &BankAccountInput,
) -> Result<Uuid, LedgerError> {
    let name = checked_text(&input.name, 100, "account's display name")?;
    let holder = checked_text(
        &input.holder_name,
        100,
        "name the bank holds the account in",
    )?;
    let bank_name = match input
        .bank_name
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        Some(b) => Some(checked_text(b, 100, "bank's name")?),
        None => None,
    };
    let sun = match input
        .service_user_number
        .as_deref()
        .map(|s| s.trim().to_uppercase())
        .filter(|s| !s.is_empty())
    {
        Some(s) if s.len() == 6 && s.chars().all(|c| c.is_ascii_alphanumeric()) => Some(s),
        Some(s) => {
            return Err(refused(format!(
                "\"{s}\" is not a Bacs Service User Number: it has 6 letters or digits."
            )));
        }
        None => None,
    };
    if input.file_format == FileFormat::BacsStandard18 && sun.is_none() {
        return Err(refused(
            "A BACS Standard 18 file needs the account's Bacs Service User Number.",
        ));
    }
    let mut sites = input.sites.clone();
    sites.sort();
    sites.dedup();
    if sites.is_empty() {
        return Err(refused("Choose the site or sites the account serves."));
    }
    if input.ledger_account_id.is_some() && sites.len() > 1 {
        return Err(refused(
            "An existing ledger account belongs to one site: a pooled account opens a new one on each site.",
        ));
    }
    lock_books(tx).await?;
    let known: i64 =
        sqlx::query_scalar("select count(*) from site where organisation_id = $1 and id = any($2)")
            .bind(tx.org().0)
            .bind(&sites)
            .fetch_one(tx.conn())
            .await?;
    if usize::try_from(known).unwrap_or(0) != sites.len() {
        return Err(LedgerError::NotFound);
    }
    let taken: bool = sqlx::query_scalar(
        "select exists (select from bank_account where organisation_id = $1 and lower(name) = lower($2))",
    )
    .bind(tx.org().0)
    .bind(&name)
    .fetch_one(tx.conn())
    .await?;
    if taken {
        return Err(refused(format!(
            "There is already a bank account called {name}."
        )));
    }
    let id = Uuid::now_v7();
    let org = tx.org().0;
    let plain_numbers = format!(
        "{}/{}",
        input.sort_code.digits(),
        input.account_number.as_str()
    );
    let digits = input.sort_code.digits();
    let last = format!("{}/{}", &digits[4..], &input.account_number.as_str()[4..]);
    sqlx::query(
        "insert into bank_account (organisation_id, id, name, bank_name, account_type, pooled,
                sealed, last_digits, holder_name, service_user_number, file_format, fund_kind)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(org)
    .bind(id)
    .bind(&name)
    .bind(&bank_name)
    .bind(input.account_type.as_str())
    .bind(sites.len() > 1)
    .bind(key.seal(plain_numbers.as_bytes(), &seal_context(org, id)))
    .bind(&last)
    .bind(&holder)
    .bind(&sun)
    .bind(input.file_format.as_str())
    .bind(input.fund_kind.map(FundKind::as_str))
    .execute(tx.conn())
    .await?;
    for site in &sites {
        ledger::ensure_books(tx, *site).await?;
        match input.ledger_account_id {
            Some(existing) => link_existing(tx, *site, existing, id).await?,
            None => open_ledger_account(tx, *site, id, &name).await?,
        }
    }
    Ok(id)
}

async fn link_existing(
    tx: &mut TenantTx,
    site: Uuid,
    ledger_account: Uuid,
    bank: Uuid,
) -> Result<(), LedgerError> {
    let linked = sqlx::query(
        "update ledger_account set bank_account_id = $4, updated_at = now()
          where organisation_id = $1 and site_id = $2 and id = $3 and control = 'bank'
            and bank_account_id is null and archived_at is null",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(ledger_account)
    .bind(bank)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if linked == 0 {
        return Err(refused(
            "Choose one of the site's bank ledger accounts not yet linked to a bank account.",
        ));
    }
    Ok(())
}

/// Opens a ledger account for the bank account in the site's books, with the first free code
/// from 1001 to 1099 (not used by the site or the organisation's template).
async fn open_ledger_account(
    tx: &mut TenantTx,
    site: Uuid,
    bank: Uuid,
    name: &str,
) -> Result<(), LedgerError> {
    let code: Option<String> = sqlx::query_scalar(
        "select c::text from generate_series(1001, 1099) c
          where not exists (select from ledger_account a where a.organisation_id = $1
                               and a.site_id = $2 and a.code = c::text)
            and not exists (select from chart_template_account t where t.organisation_id = $1
                               and t.code = c::text)
          order by c limit 1",
    )
    .bind(tx.org().0)
    .bind(site)
    .fetch_optional(tx.conn())
    .await?;
    let Some(code) = code else {
        return Err(refused(
            "The site has no free bank account code between 1001 and 1099.",
        ));
    };
    sqlx::query(
        "insert into ledger_account (organisation_id, id, site_id, code, name, kind, control,
                bank_account_id)
         values ($1, $2, $3, $4, $5, 'asset', 'bank', $6)",
    )
    .bind(tx.org().0)
    .bind(Uuid::now_v7())
    .bind(site)
    .bind(&code)
    .bind(
        format!("Bank: {name}")
            .chars()
            .take(100)
            .collect::<String>(),
    )
    .bind(bank)
    .execute(tx.conn())
    .await?;
    Ok(())
}

fn checked_text(text: &str, max: usize, what: &str) -> Result<String, LedgerError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(refused(format!(
            "Give the {what} (up to {max} characters)."
        )));
    }
    plain(t, what)?;
    Ok(t.to_owned())
}

/// The account's numbers in the clear, for a payment file.
pub async fn numbers(tx: &mut TenantTx, key: &DataKey, id: Uuid) -> Result<Numbers, DbError> {
    let org = tx.org().0;
    let sealed: Vec<u8> = sqlx::query_scalar(
        "select sealed from bank_account where organisation_id = $1 and id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DbError::NotFound)?;
    let plain = key
        .open(&sealed, &seal_context(org, id))
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let text = String::from_utf8(plain).map_err(|e| DbError::Unavailable(e.to_string()))?;
    let (sort_code, account_number) = text
        .split_once('/')
        .ok_or_else(|| DbError::Unavailable("sealed bank details are malformed".into()))?;
    Ok(Numbers {
        sort_code: sort_code.to_owned(),
        account_number: account_number.to_owned(),
    })
}

/// Archives the account (no new payments or receipts into it) or restores it; its ledger
/// accounts follow.
pub async fn set_archived(tx: &mut TenantTx, id: Uuid, archived: bool) -> Result<(), LedgerError> {
    lock_books(tx).await?;
    let changed = sqlx::query(
        "update bank_account set archived_at = case when $3 then now() end, updated_at = now()
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
    sqlx::query(
        "update ledger_account set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and bank_account_id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A site's money in the bank account, per fund: (fund id, fund name, balance in pence).
pub async fn site_balances(
    tx: &mut TenantTx,
    bank: Uuid,
    site: Uuid,
) -> Result<Vec<(Uuid, String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "select f.id, f.name, coalesce(sum(l.amount_pence), 0)::bigint
           from fund f
           left join ledger_account a on a.organisation_id = f.organisation_id
                and a.site_id = f.site_id and a.bank_account_id = $3
           left join journal_line l on l.organisation_id = f.organisation_id
                and l.site_id = f.site_id and l.account_id = a.id and l.fund_id = f.id
          where f.organisation_id = $1 and f.site_id = $2
          group by f.organisation_id, f.id, f.name order by f.name",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(bank)
    .fetch_all(tx.conn())
    .await?)
}

/// An authorised exception to the client-money rule: who allowed it and why.
#[derive(Debug, Clone)]
pub struct Override {
    pub by: String,
    pub reason: String,
}

/// The client-money rule: paying `amount` for the site's fund out of the bank account may not
/// take the site's balance in that fund below zero (one site's money never pays another's
/// bills). Only an office account takes an override, and the caller records it. Call under the
/// books lock, with what is already committed to the same run added to `amount`.
pub async fn check_client_money(
    tx: &mut TenantTx,
    bank: &BankAccount,
    site: Uuid,
    fund: Uuid,
    amount: i64,
    override_: Option<&Override>,
) -> Result<(), LedgerError> {
    check_client_money_many(tx, bank, &[(site, fund, amount)], override_, None).await
}

/// The client-money rule for many payments at once: `needs` is (site, fund, pence to pay),
/// one entry per site and fund. What payment runs not yet paid have committed from the account
/// (other than `exclude_run`, the run being checked) is spoken for: the bank may already have
/// their files. Every shortfall is named; a site the account does not serve is refused
/// outright.
pub async fn check_client_money_many(
    tx: &mut TenantTx,
    bank: &BankAccount,
    needs: &[(Uuid, Uuid, i64)],
    override_: Option<&Override>,
    exclude_run: Option<Uuid>,
) -> Result<(), LedgerError> {
    let sites: Vec<Uuid> = needs.iter().map(|(s, ..)| *s).collect();
    // (site, site name, fund, fund name, balance, committed, served): every fund of every site
    // asked about, with its balance in the account's ledger account for the site and what runs
    // not yet paid will take from it.
    let rows: Vec<(Uuid, String, Uuid, String, i64, i64, bool)> = sqlx::query_as(
        "select s.id, s.name, f.id, f.name, coalesce(b.balance, 0)::bigint,
                coalesce(c.committed, 0)::bigint, a.id is not null
           from site s
           join fund f on f.organisation_id = s.organisation_id and f.site_id = s.id
           left join ledger_account a on a.organisation_id = s.organisation_id
                and a.site_id = s.id and a.bank_account_id = $2
           left join lateral (
                select sum(l.amount_pence) as balance from journal_line l
                 where l.organisation_id = s.organisation_id and l.site_id = s.id
                   and l.account_id = a.id and l.fund_id = f.id) b on true
           -- Runs not yet paid are few: read from them, not from every payment line.
           left join (
                select pl.site_id, pl.fund_id, sum(pl.amount_pence) as committed
                  from payment_run r
                  join supplier_payment sp on sp.organisation_id = r.organisation_id
                       and sp.payment_run_id = r.id and sp.status = 'scheduled'
                       and sp.bank_account_id = $2
                  join supplier_payment_line pl on pl.organisation_id = sp.organisation_id
                       and pl.payment_id = sp.id
                 where r.organisation_id = $1 and r.status in ('scheduled', 'approved')
                   and r.id is distinct from $4
                 group by pl.site_id, pl.fund_id) c on c.site_id = s.id and c.fund_id = f.id
          where s.organisation_id = $1 and s.id = any($3)",
    )
    .bind(tx.org().0)
    .bind(bank.id)
    .bind(&sites)
    .bind(exclude_run)
    .fetch_all(tx.conn())
    .await?;
    let mut problems = Vec::new();
    for (site, fund, amount) in needs {
        let Some((_, site_name, _, fund_name, balance, committed, served)) =
            rows.iter().find(|(s, _, f, ..)| s == site && f == fund)
        else {
            return Err(refused("Choose one of the site's funds."));
        };
        if !served {
            return Err(refused(format!(
                "{} does not hold {site_name}'s money: pay the site's bills from one of its own \
                 bank accounts.",
                bank.name
            )));
        }
        if balance - committed >= *amount {
            continue;
        }
        problems.push(if *committed > 0 {
            format!(
                "{site_name}'s {fund_name} holds {} in {}, of which {} is already committed to \
                 payment runs not yet paid, leaving less than the {} to pay",
                format_pence(*balance),
                bank.name,
                format_pence(*committed),
                format_pence(*amount)
            )
        } else {
            format!(
                "{site_name}'s {fund_name} holds {} in {}, less than the {} to pay",
                format_pence(*balance),
                bank.name,
                format_pence(*amount)
            )
        });
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(5);
    let more = match problems.len() - shown {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    let list = format!("{}{more}", problems[..shown].join("; "));
    match (bank.account_type(), override_) {
        (AccountType::Office, Some(o)) if !o.reason.trim().is_empty() => Ok(()),
        (AccountType::Office, _) => Err(refused(format!(
            "{list}. An office account may be overdrawn only with an override and its reason."
        ))),
        _ => Err(refused(format!(
            "{list}: client money of another site or fund cannot pay it."
        ))),
    }
}
