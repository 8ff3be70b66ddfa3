//! The organisation's chart-of-accounts template (issue 6; docs-spec §2.6, Settings → Financial
//! settings → Ledger accounts). Each site keeps its own books (DESIGN §4), opened from this
//! template; the template is where the organisation adds an account, archives one, and chooses
//! which account holds each posting role. Every change reaches the books of every site already
//! open, in the same transaction, matched by account code.
//!
//! The template is seeded with the standard chart the first time it is needed, so an
//! organisation that never opens Financial settings gets the standard books.

use crate::error::DbError;
use crate::ledger::{LedgerError, lock_books, plain, refused};
use crate::tenant::TenantTx;
use proplink_domain::ledger::{
    AccountKind, POSTING_ROLES, STANDARD_CHART, normalise_account_code, posting_role,
};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TemplateAccount {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub control: Option<String>,
    pub archived_at: Option<OffsetDateTime>,
}

impl TemplateAccount {
    pub fn kind(&self) -> AccountKind {
        AccountKind::parse(&self.kind).unwrap_or(AccountKind::Asset)
    }

    /// The role's label ("Debtors control"), if it holds one.
    pub fn role_label(&self) -> Option<&'static str> {
        self.control
            .as_deref()
            .and_then(posting_role)
            .map(|r| r.label)
    }
}

/// Seeds the template with the standard chart if the organisation has none yet.
pub async fn ensure_template(tx: &mut TenantTx) -> Result<(), DbError> {
    let has: bool = sqlx::query_scalar(
        "select exists (select from chart_template_account where organisation_id = $1)",
    )
    .bind(tx.org().0)
    .fetch_one(tx.conn())
    .await?;
    if has {
        return Ok(());
    }
    let codes: Vec<&str> = STANDARD_CHART.iter().map(|a| a.code).collect();
    let names: Vec<&str> = STANDARD_CHART.iter().map(|a| a.name).collect();
    let kinds: Vec<&str> = STANDARD_CHART.iter().map(|a| a.kind.as_str()).collect();
    let controls: Vec<Option<&str>> = STANDARD_CHART.iter().map(|a| a.control).collect();
    let ids: Vec<Uuid> = codes.iter().map(|_| Uuid::now_v7()).collect();
    // Two first requests at once: the second's rows meet the first's codes and are skipped.
    sqlx::query(
        "insert into chart_template_account (organisation_id, id, code, name, kind, control)
         select $1, x.id, x.code, x.name, x.kind, x.control
           from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
                as x(id, code, name, kind, control)
         on conflict do nothing",
    )
    .bind(tx.org().0)
    .bind(ids)
    .bind(codes)
    .bind(names)
    .bind(kinds)
    .bind(controls)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The template, by code, archived accounts included.
pub async fn template(tx: &mut TenantTx) -> Result<Vec<TemplateAccount>, DbError> {
    ensure_template(tx).await?;
    Ok(sqlx::query_as(
        "select id, code, name, kind, control, archived_at from chart_template_account
          where organisation_id = $1 order by code",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

/// Opens a site's chart from the template (the caller knows it has none), archived accounts
/// included and archived, so restoring one later reaches this site too.
pub(crate) async fn open_site_chart(tx: &mut TenantTx, site: Uuid) -> Result<(), DbError> {
    ensure_template(tx).await?;
    let accounts: Vec<TemplateAccount> = sqlx::query_as(
        "select id, code, name, kind, control, archived_at from chart_template_account
          where organisation_id = $1 order by code",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?;
    let ids: Vec<Uuid> = accounts.iter().map(|_| Uuid::now_v7()).collect();
    let codes: Vec<&str> = accounts.iter().map(|a| a.code.as_str()).collect();
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let kinds: Vec<&str> = accounts.iter().map(|a| a.kind.as_str()).collect();
    let controls: Vec<Option<&str>> = accounts.iter().map(|a| a.control.as_deref()).collect();
    let archived: Vec<Option<OffsetDateTime>> = accounts.iter().map(|a| a.archived_at).collect();
    sqlx::query(
        "insert into ledger_account (organisation_id, id, site_id, code, name, kind, control,
                archived_at)
         select $1, x.id, $2, x.code, x.name, x.kind, x.control, x.archived_at
           from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::timestamptz[])
                as x(id, code, name, kind, control, archived_at)
         on conflict do nothing",
    )
    .bind(tx.org().0)
    .bind(site)
    .bind(ids)
    .bind(codes)
    .bind(names)
    .bind(kinds)
    .bind(controls)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The sites whose books are open (they have a chart).
async fn sites_with_books(tx: &mut TenantTx) -> Result<Vec<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "select s.id from site s
          where s.organisation_id = $1
            and exists (select from ledger_account a
                         where a.organisation_id = s.organisation_id and a.site_id = s.id)
          order by s.id",
    )
    .bind(tx.org().0)
    .fetch_all(tx.conn())
    .await?)
}

async fn find(tx: &mut TenantTx, id: Uuid) -> Result<TemplateAccount, LedgerError> {
    sqlx::query_as(
        "select id, code, name, kind, control, archived_at from chart_template_account
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(LedgerError::NotFound)
}

/// What adding an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub id: Uuid,
    pub code: String,
    /// Sites whose books gained the account.
    pub sites: usize,
}

/// Adds an account to the template and to every site's books.
pub async fn add_account(
    tx: &mut TenantTx,
    code: &str,
    name: &str,
    kind: &str,
) -> Result<Added, LedgerError> {
    let code = normalise_account_code(code).map_err(refused)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(refused("Give the account a name of up to 100 characters."));
    }
    plain(name, "account name")?;
    let kind = AccountKind::parse(kind).ok_or_else(|| {
        refused("Choose the account's type: asset, liability, equity, income, expense or reserve.")
    })?;
    lock_books(tx).await?;
    let accounts = template(tx).await?;
    if let Some(a) = accounts.iter().find(|a| a.code == code) {
        return Err(refused(format!(
            "The code {code} is already used by {}{}.",
            a.name,
            if a.archived_at.is_some() {
                " (archived: restore it instead)"
            } else {
                ""
            }
        )));
    }
    if let Some(a) = accounts
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name) && a.archived_at.is_none())
    {
        return Err(refused(format!(
            "There is already an account called {name} ({}).",
            a.code
        )));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into chart_template_account (organisation_id, id, code, name, kind)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(&code)
    .bind(name)
    .bind(kind.as_str())
    .execute(tx.conn())
    .await?;
    let sites = sites_with_books(tx).await?;
    let ids: Vec<Uuid> = sites.iter().map(|_| Uuid::now_v7()).collect();
    let added = sqlx::query(
        "insert into ledger_account (organisation_id, id, site_id, code, name, kind)
         select $1, x.id, x.site_id, $4, $5, $6
           from unnest($2::uuid[], $3::uuid[]) as x(id, site_id)
         on conflict do nothing",
    )
    .bind(tx.org().0)
    .bind(ids)
    .bind(&sites)
    .bind(&code)
    .bind(name)
    .bind(kind.as_str())
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(Added {
        id,
        code,
        sites: usize::try_from(added).unwrap_or(0),
    })
}

/// Renames an account, in the template and every site's books.
pub async fn rename_account(tx: &mut TenantTx, id: Uuid, name: &str) -> Result<(), LedgerError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(refused("Give the account a name of up to 100 characters."));
    }
    plain(name, "account name")?;
    lock_books(tx).await?;
    let account = find(tx, id).await?;
    let accounts = template(tx).await?;
    if accounts
        .iter()
        .any(|a| a.id != id && a.name.eq_ignore_ascii_case(name) && a.archived_at.is_none())
    {
        return Err(refused(format!(
            "There is already an account called {name}."
        )));
    }
    sqlx::query(
        "update chart_template_account set name = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(name)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "update ledger_account set name = $3, updated_at = now()
          where organisation_id = $1 and code = $2 and name <> $3",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .bind(name)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Archives an account (no new postings; its history and balance stay) or restores it, in the
/// template and every site's books. An account holding a posting role cannot be archived.
/// Returns how many sites' accounts changed.
pub async fn set_archived(
    tx: &mut TenantTx,
    id: Uuid,
    archived: bool,
) -> Result<usize, LedgerError> {
    lock_books(tx).await?;
    let account = find(tx, id).await?;
    if archived && let Some(role) = account.role_label() {
        return Err(refused(format!(
            "{} {} is the {} account: make another account the {} account first.",
            account.code,
            account.name,
            role.to_lowercase(),
            role.to_lowercase()
        )));
    }
    if archived == account.archived_at.is_some() {
        return Ok(0);
    }
    sqlx::query(
        "update chart_template_account
            set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(archived)
    .execute(tx.conn())
    .await?;
    let changed = sqlx::query(
        "update ledger_account
            set archived_at = case when $3 then now() end, updated_at = now()
          where organisation_id = $1 and code = $2 and control is null
            and (archived_at is null) = $3",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .bind(archived)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(usize::try_from(changed).unwrap_or(0))
}

/// Makes an account the one the automatic postings use for `role` ("debtors",
/// "service_charge_income", ...), in the template and every site's books; the account that
/// held it keeps its history and balance and stops taking those postings. `bank` is held by
/// as many asset accounts as the site banks in: giving it adds one. Returns how many sites'
/// books changed.
pub async fn assign_role(tx: &mut TenantTx, id: Uuid, role: &str) -> Result<usize, LedgerError> {
    let role = posting_role(role).ok_or_else(|| refused("Choose a posting role."))?;
    lock_books(tx).await?;
    let account = find(tx, id).await?;
    if account.archived_at.is_some() {
        return Err(refused(format!(
            "{} {} is archived: restore it first.",
            account.code, account.name
        )));
    }
    if account.kind() != role.kind {
        return Err(refused(format!(
            "The {} account must be {} account; {} {} is {}.",
            role.label.to_lowercase(),
            article(role.kind),
            account.code,
            account.name,
            article(account.kind())
        )));
    }
    match account.role_label() {
        Some(_) if account.control.as_deref() == Some(role.key) => return Ok(0),
        Some(held) => {
            return Err(refused(format!(
                "{} {} is already the {} account; an account holds one role.",
                account.code,
                account.name,
                held.to_lowercase()
            )));
        }
        None => {}
    }
    // Statements, creditor balances and VAT returns read the role's account: once it has
    // postings, the role stays where it is (its history would be split between two accounts).
    if matches!(role.key, "debtors" | "creditors" | "vat") {
        let used: bool = sqlx::query_scalar(
            "select exists (select from journal_line l
                              join ledger_account a on a.organisation_id = l.organisation_id
                                   and a.id = l.account_id
                             where a.organisation_id = $1 and a.control = $2)",
        )
        .bind(tx.org().0)
        .bind(role.key)
        .fetch_one(tx.conn())
        .await?;
        if used {
            return Err(refused(format!(
                "The {} account already has postings: it stays the {} account, so its history \
                 stays in one place. Rename it instead.",
                role.label.to_lowercase(),
                role.label.to_lowercase()
            )));
        }
    }
    // Every site must have the account, unarchived and of the same type, before any moves.
    let sites = sites_with_books(tx).await?;
    let ready: Vec<Uuid> = sqlx::query_scalar(
        "select site_id from ledger_account
          where organisation_id = $1 and code = $2 and kind = $3 and archived_at is null
            and control is null",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .bind(&account.kind)
    .fetch_all(tx.conn())
    .await?;
    let missing: Vec<Uuid> = sites.into_iter().filter(|s| !ready.contains(s)).collect();
    if !missing.is_empty() {
        let names: Vec<String> = sqlx::query_scalar(
            "select name from site where organisation_id = $1 and id = any($2) order by name
              limit 5",
        )
        .bind(tx.org().0)
        .bind(&missing)
        .fetch_all(tx.conn())
        .await?;
        return Err(refused(format!(
            "{} {} cannot take the role on {} site{} ({}{}): there the account is missing, \
             archived, of another type or already holds a role.",
            account.code,
            account.name,
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            names.join(", "),
            if missing.len() > names.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    if role.key != "bank" {
        for statement in [
            "update chart_template_account set control = null, updated_at = now()
              where organisation_id = $1 and control = $2",
            "update ledger_account set control = null, updated_at = now()
              where organisation_id = $1 and control = $2",
        ] {
            sqlx::query(statement)
                .bind(tx.org().0)
                .bind(role.key)
                .execute(tx.conn())
                .await?;
        }
    }
    sqlx::query(
        "update chart_template_account set control = $3, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(role.key)
    .execute(tx.conn())
    .await?;
    let changed = sqlx::query(
        "update ledger_account set control = $3, updated_at = now()
          where organisation_id = $1 and code = $2",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .bind(role.key)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(usize::try_from(changed).unwrap_or(0))
}

/// Stops an account being a bank account, in the template and every site's books, as long as
/// another bank account remains.
pub async fn remove_bank(tx: &mut TenantTx, id: Uuid) -> Result<usize, LedgerError> {
    lock_books(tx).await?;
    let account = find(tx, id).await?;
    if account.control.as_deref() != Some("bank") {
        return Err(refused(format!(
            "{} {} is not a bank account.",
            account.code, account.name
        )));
    }
    let others = template(tx)
        .await?
        .iter()
        .filter(|a| a.id != id && a.control.as_deref() == Some("bank"))
        .count();
    if others == 0 {
        return Err(refused(
            "Receipts need a bank account: make another account a bank account first.",
        ));
    }
    let linked: bool = sqlx::query_scalar(
        "select exists (select from ledger_account where organisation_id = $1 and code = $2
                          and bank_account_id is not null)",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .fetch_one(tx.conn())
    .await?;
    if linked {
        return Err(refused(format!(
            "{} {} is linked to a bank account under Bank accounts: archive that instead.",
            account.code, account.name
        )));
    }
    // Each site must keep a bank account too.
    let stranded: i64 = sqlx::query_scalar(
        "select count(*) from ledger_account a
          where a.organisation_id = $1 and a.code = $2 and a.control = 'bank'
            and not exists (select from ledger_account o
                             where o.organisation_id = a.organisation_id
                               and o.site_id = a.site_id and o.id <> a.id
                               and o.control = 'bank' and o.archived_at is null)",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .fetch_one(tx.conn())
    .await?;
    if stranded > 0 {
        return Err(refused(format!(
            "{} {} is the only bank account on {stranded} site{}: receipts there need it.",
            account.code,
            account.name,
            if stranded == 1 { "" } else { "s" }
        )));
    }
    sqlx::query(
        "update chart_template_account set control = null, updated_at = now()
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .execute(tx.conn())
    .await?;
    let changed = sqlx::query(
        "update ledger_account set control = null, updated_at = now()
          where organisation_id = $1 and code = $2 and control = 'bank'",
    )
    .bind(tx.org().0)
    .bind(&account.code)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(usize::try_from(changed).unwrap_or(0))
}

/// The roles in Settings order, each with the template accounts holding it.
pub async fn roles(
    tx: &mut TenantTx,
) -> Result<Vec<(&'static str, &'static str, Vec<TemplateAccount>)>, DbError> {
    let accounts = template(tx).await?;
    Ok(POSTING_ROLES
        .iter()
        .map(|r| {
            (
                r.key,
                r.label,
                accounts
                    .iter()
                    .filter(|a| a.control.as_deref() == Some(r.key))
                    .cloned()
                    .collect(),
            )
        })
        .collect())
}

fn article(kind: AccountKind) -> String {
    let label = kind.label().to_lowercase();
    if matches!(
        kind,
        AccountKind::Asset | AccountKind::Equity | AccountKind::Income | AccountKind::Expense
    ) {
        format!("an {label}")
    } else {
        format!("a {label}")
    }
}
