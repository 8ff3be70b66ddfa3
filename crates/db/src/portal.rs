//! Portal accounts and their e-mail one-time codes (ResidencePort, BuildingThread, Facility
//! Report): a 6-digit code, stored as a keyed hash, single use, valid 10 minutes, at most 5
//! tries (docs-spec §2.22). A new code replaces any earlier one.

use crate::email::{self, NewEmail};
use crate::error::DbError;
use crate::tenant::TenantTx;
use proplink_auth::codes::{self, CodeKey};
use proplink_domain::EmailAddress;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const CODE_TTL: Duration = Duration::minutes(10);
pub const MAX_TRIES: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portal {
    ResidencePort,
    BuildingThread,
    FacilityReport,
    /// A regular contractor's account: their open work orders in this organisation.
    ContractorPort,
}

impl Portal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidencePort => "residenceport",
            Self::BuildingThread => "buildingthread",
            Self::FacilityReport => "facility_report",
            Self::ContractorPort => "contractorport",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ResidencePort => "ResidencePort",
            Self::BuildingThread => "BuildingThread",
            Self::FacilityReport => "Facility Report",
            Self::ContractorPort => "ContractorPort",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortalAccount {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: String,
}

pub async fn create_account(
    tx: &mut TenantTx,
    portal: Portal,
    email: &EmailAddress,
    name: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into portal_account (organisation_id, id, email, name, portal) values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(email.as_str())
    .bind(name.trim())
    .bind(portal.as_str())
    .execute(tx.conn())
    .await?;
    Ok(id)
}

pub async fn find_account(
    tx: &mut TenantTx,
    portal: Portal,
    email: &EmailAddress,
) -> Result<Option<PortalAccount>, DbError> {
    Ok(sqlx::query_as(
        "select id, email, name, status from portal_account
          where organisation_id = $1 and portal = $2 and lower(email) = lower($3)",
    )
    .bind(tx.org().0)
    .bind(portal.as_str())
    .bind(email.as_str())
    .fetch_optional(tx.conn())
    .await?)
}

/// Sends a sign-in code when `email` has an active account on this portal; otherwise does
/// nothing. The caller answers the same way in both cases, so the form reveals no accounts.
pub async fn request_sign_in_code(
    tx: &mut TenantTx,
    key: &CodeKey,
    portal: Portal,
    email: &EmailAddress,
    organisation_name: &str,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let Some(account) = find_account(tx, portal, email).await? else {
        return Ok(false);
    };
    if account.status != "active" {
        return Ok(false);
    }
    // Any earlier code stops working.
    sqlx::query(
        "update one_time_code set used_at = $3
          where organisation_id = $1 and account_id = $2 and used_at is null",
    )
    .bind(tx.org().0)
    .bind(account.id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let code = codes::new_code();
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into one_time_code (organisation_id, id, account_id, purpose, code_digest, expires_at)
         values ($1, $2, $3, 'sign_in', $4, $5)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(account.id)
    .bind(key.digest("sign_in", &account.id.to_string(), &code))
    .bind(now + CODE_TTL)
    .execute(tx.conn())
    .await?;
    email::queue(
        tx,
        NewEmail {
            to_address: account.email.clone(),
            to_name: Some(account.name.clone()),
            // The code only in the body: subjects are kept in the audit log, bodies are redacted.
            subject: format!("Your {} sign-in code", portal.name()),
            body_text: format!(
                "Hello {},\n\nYour code to sign in to {} for {organisation_name} is:\n\n    {code}\n\nIt works once, for 10 minutes. If you did not ask for it, you can ignore this e-mail.\n",
                account.name,
                portal.name()
            ),
            body_html: None,
            category: "sign_in_code".into(),
        },
    )
    .await?;
    Ok(true)
}

/// Why a code was not accepted, in words for the person signing in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("That code is not right. You have {remaining} more {}.", if *remaining == 1 { "try" } else { "tries" })]
    Wrong { remaining: i32 },
    #[error("That code has expired. Ask for a new one.")]
    Expired,
    #[error("That code has been tried too many times. Ask for a new one.")]
    TooManyTries,
    #[error("There is no code waiting for this address. Ask for a new one.")]
    NoCode,
}

impl CodeRefusal {
    /// What the sign-in page says, whatever the reason: the detailed reasons (kept for logs)
    /// would tell a stranger which addresses have accounts.
    pub fn public_message(&self) -> &'static str {
        "That code did not work. A code works once, for 10 minutes and 5 tries: use the newest e-mail, or ask for a new code."
    }
}

/// The result of checking a code. Refusals also change the database (a try is counted), so the
/// caller commits the transaction whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    Accepted { account_id: Uuid },
    Refused(CodeRefusal),
}

#[derive(sqlx::FromRow)]
struct LiveCode {
    id: Uuid,
    code_digest: String,
    expires_at: OffsetDateTime,
    attempts: i32,
}

pub async fn verify_sign_in_code(
    tx: &mut TenantTx,
    key: &CodeKey,
    portal: Portal,
    email: &EmailAddress,
    code: &str,
    now: OffsetDateTime,
) -> Result<CodeOutcome, DbError> {
    let Some(account) = find_account(tx, portal, email)
        .await?
        .filter(|a| a.status == "active")
    else {
        return Ok(CodeOutcome::Refused(CodeRefusal::NoCode));
    };
    let live: Option<LiveCode> = sqlx::query_as(
        "select id, code_digest, expires_at, attempts from one_time_code
          where organisation_id = $1 and account_id = $2 and purpose = 'sign_in' and used_at is null
          order by created_at desc limit 1
          for update",
    )
    .bind(tx.org().0)
    .bind(account.id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(live) = live else {
        return Ok(CodeOutcome::Refused(CodeRefusal::NoCode));
    };
    if live.expires_at <= now {
        return Ok(CodeOutcome::Refused(CodeRefusal::Expired));
    }
    if live.attempts >= MAX_TRIES {
        return Ok(CodeOutcome::Refused(CodeRefusal::TooManyTries));
    }
    let matches = key.matches("sign_in", &account.id.to_string(), code, &live.code_digest);
    sqlx::query(
        "update one_time_code set attempts = attempts + 1, used_at = case when $3 then $4 else used_at end
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(live.id)
    .bind(matches)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if !matches {
        let remaining = MAX_TRIES - live.attempts - 1;
        return Ok(CodeOutcome::Refused(if remaining > 0 {
            CodeRefusal::Wrong { remaining }
        } else {
            CodeRefusal::TooManyTries
        }));
    }
    sqlx::query(
        "update portal_account set last_signed_in_at = $3 where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(account.id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(CodeOutcome::Accepted {
        account_id: account.id,
    })
}

// ---------------------------------------------------------------------------------------------
// Portal sessions, started by an accepted code.

/// A portal session ends after this long without a request…
pub const SESSION_IDLE: Duration = Duration::hours(1);
/// …and after this long whatever happens.
pub const SESSION_ABSOLUTE: Duration = Duration::hours(12);

pub async fn start_session(
    tx: &mut TenantTx,
    account_id: Uuid,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into portal_session (organisation_id, id, account_id, token_hash, created_at, last_seen_at, absolute_expires_at)
         values ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(account_id)
    .bind(token_hash)
    .bind(now)
    .bind(now + SESSION_ABSOLUTE)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// How stale "last seen" may be before a request writes it again. Reading a page writes
/// nothing otherwise (a write per page view would make every view wait for the WAL to reach
/// the disk); the idle timeout is measured to within this.
pub const LAST_SEEN_GRANULARITY: Duration = Duration::minutes(1);

#[derive(sqlx::FromRow)]
struct LiveSession {
    session_id: Uuid,
    last_seen_at: OffsetDateTime,
    id: Uuid,
    email: String,
    name: String,
    status: String,
}

/// The account behind a live portal session of `portal` in this organisation (the account
/// still active), noting the request (at most once a minute).
pub async fn find_session(
    tx: &mut TenantTx,
    portal: Portal,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<PortalAccount>, DbError> {
    let found: Option<LiveSession> = sqlx::query_as(
        "select s.id as session_id, s.last_seen_at, a.id, a.email, a.name, a.status
           from portal_session s
           join portal_account a on a.organisation_id = s.organisation_id and a.id = s.account_id
          where s.organisation_id = $1 and s.token_hash = $2 and s.ended_at is null
            and s.absolute_expires_at > $3 and s.last_seen_at > $4
            and a.status = 'active' and a.portal = $5",
    )
    .bind(tx.org().0)
    .bind(token_hash)
    .bind(now)
    .bind(now - SESSION_IDLE)
    .bind(portal.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.last_seen_at <= now - LAST_SEEN_GRANULARITY {
        sqlx::query(
            "update portal_session set last_seen_at = $3 where organisation_id = $1 and id = $2",
        )
        .bind(tx.org().0)
        .bind(found.session_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    Ok(Some(PortalAccount {
        id: found.id,
        email: found.email,
        name: found.name,
        status: found.status,
    }))
}

pub async fn end_session(
    tx: &mut TenantTx,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update portal_session set ended_at = $3 where organisation_id = $1 and token_hash = $2 and ended_at is null",
    )
    .bind(tx.org().0)
    .bind(token_hash)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}
