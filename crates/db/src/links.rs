//! Signed links: a ContractorPort link grants its bearer one record of one organisation until
//! it expires or is revoked (docs-spec §2.10, issue 3). The token is 256 random bits; only its
//! SHA-256 is stored. A link URL names no organisation: [`resolve`] presents the token's hash
//! to the `link_bearer` policy, which shows exactly that row and nothing else.

use crate::error::DbError;
use crate::pools::AppPool;
use crate::tenant::TenantTx;
use proplink_auth::links;
use proplink_domain::{EmailAddress, OrgId};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The longest a link may live.
pub const MAX_VALIDITY: Duration = Duration::days(90);

#[derive(Debug, Clone)]
pub struct NewLink {
    pub record_type: String,
    pub record_id: Uuid,
    pub recipient_email: EmailAddress,
    pub recipient_name: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// A minted link: the token goes in the URL once and is never stored.
#[derive(Debug, Clone)]
pub struct MintedLink {
    pub id: Uuid,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("a link must expire in the future")]
    ExpiryInPast,
    #[error("a link can be valid for at most 90 days")]
    TooLong,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a link does not open. The messages are for the person holding it (docs-spec §2.21).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error(
        "This link is incomplete or damaged. Open it again from the e-mail, or ask the sender to resend the invitation."
    )]
    Malformed,
    #[error("This link is not valid. Ask the sender to resend the invitation.")]
    Unknown,
    #[error("This link has expired. Ask the sender to resend the invitation.")]
    Expired,
    #[error("This link has been withdrawn by the sender.")]
    Revoked,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Refused(LinkRefusal),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What an opened link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkGrant {
    pub org: OrgId,
    pub link_id: Uuid,
    pub record_type: String,
    pub record_id: Uuid,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub expires_at: OffsetDateTime,
}

pub async fn mint(
    tx: &mut TenantTx,
    link: NewLink,
    now: OffsetDateTime,
) -> Result<MintedLink, MintError> {
    if link.expires_at <= now {
        return Err(MintError::ExpiryInPast);
    }
    if link.expires_at - now > MAX_VALIDITY {
        return Err(MintError::TooLong);
    }
    let (token, hash) = links::new_token();
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into signed_link (organisation_id, id, token_hash, purpose, record_type, record_id,
                                  recipient_email, recipient_name, expires_at)
         values ($1, $2, $3, 'contractor', $4, $5, $6, $7, $8)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(hash)
    .bind(&link.record_type)
    .bind(link.record_id)
    .bind(link.recipient_email.as_str())
    .bind(&link.recipient_name)
    .bind(link.expires_at)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;
    Ok(MintedLink { id, token })
}

/// Withdraws a link. Returns false when there is no such live link in this organisation.
pub async fn revoke(tx: &mut TenantTx, id: Uuid, now: OffsetDateTime) -> Result<bool, DbError> {
    let done = sqlx::query(
        "update signed_link set revoked_at = $3
          where organisation_id = $1 and id = $2 and revoked_at is null",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    organisation_id: Uuid,
    id: Uuid,
    record_type: String,
    record_id: Uuid,
    recipient_email: String,
    recipient_name: Option<String>,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    org_status: String,
}

/// Opens a link from its URL. Malformed tokens are refused without touching the database.
pub async fn resolve(
    pool: &AppPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<LinkGrant, ResolveError> {
    let hash = links::hash_token(token).ok_or(ResolveError::Refused(LinkRefusal::Malformed))?;
    let mut tx = pool.raw().begin().await.map_err(DbError::from)?;
    sqlx::query("select set_config('app.link_token_hash', $1, true)")
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(DbError::from)?;
    let row: Option<LinkRow> = sqlx::query_as(
        "select l.organisation_id, l.id, l.record_type, l.record_id, l.recipient_email, l.recipient_name,
                l.expires_at, l.revoked_at, o.status as org_status
           from signed_link l join organisation o on o.id = l.organisation_id
          where l.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    tx.rollback().await.map_err(DbError::from)?;
    // A closed organisation's links open nothing, as its hosts show nothing.
    let row = row
        .filter(|r| r.org_status != "closed")
        .ok_or(ResolveError::Refused(LinkRefusal::Unknown))?;
    if row.revoked_at.is_some() {
        return Err(ResolveError::Refused(LinkRefusal::Revoked));
    }
    if row.expires_at <= now {
        return Err(ResolveError::Refused(LinkRefusal::Expired));
    }
    Ok(LinkGrant {
        org: OrgId(row.organisation_id),
        link_id: row.id,
        record_type: row.record_type,
        record_id: row.record_id,
        recipient_email: row.recipient_email,
        recipient_name: row.recipient_name,
        expires_at: row.expires_at,
    })
}

/// Notes that the link was opened (in the link's organisation, as its contractor).
pub async fn record_opening(
    tx: &mut TenantTx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update signed_link set opened_count = opened_count + 1, last_opened_at = $3
          where organisation_id = $1 and id = $2",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A link session lasts at most this long (and never beyond its link's expiry).
pub const SESSION_MAX: Duration = Duration::hours(12);

/// Starts a session limited to the opened link's record (the token hash of a fresh session
/// token, not the link's). Notes the opening.
pub async fn start_session(
    tx: &mut TenantTx,
    grant: &LinkGrant,
    session_token_hash: &str,
    now: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into link_session (organisation_id, id, link_id, token_hash, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx.org().0)
    .bind(id)
    .bind(grant.link_id)
    .bind(session_token_hash)
    .bind(now)
    .bind((now + SESSION_MAX).min(grant.expires_at))
    .execute(tx.conn())
    .await?;
    record_opening(tx, grant.link_id, now).await?;
    Ok(id)
}

/// What a live link session grants: its link's one record. None once the session or its link
/// has expired or the link was revoked.
pub async fn find_session(
    tx: &mut TenantTx,
    session_token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<LinkGrant>, DbError> {
    let row: Option<(Uuid, String, Uuid, String, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "select l.id, l.record_type, l.record_id, l.recipient_email, l.recipient_name, l.expires_at
           from link_session s
           join signed_link l on l.organisation_id = s.organisation_id and l.id = s.link_id
          where s.organisation_id = $1 and s.token_hash = $2 and s.ended_at is null
            and s.expires_at > $3 and l.expires_at > $3 and l.revoked_at is null",
    )
    .bind(tx.org().0)
    .bind(session_token_hash)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(
        |(link_id, record_type, record_id, recipient_email, recipient_name, expires_at)| {
            LinkGrant {
                org: tx.org(),
                link_id,
                record_type,
                record_id,
                recipient_email,
                recipient_name,
                expires_at,
            }
        },
    ))
}

/// A link that no longer opens (expired or revoked), for offering its holder a fresh one sent
/// to the same address. None for a token that names no link (or a closed organisation's).
pub async fn lapsed(pool: &AppPool, token: &str) -> Result<Option<LinkGrant>, DbError> {
    let Some(hash) = links::hash_token(token) else {
        return Ok(None);
    };
    let mut tx = pool.raw().begin().await?;
    sqlx::query("select set_config('app.link_token_hash', $1, true)")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    let row: Option<LinkRow> = sqlx::query_as(
        "select l.organisation_id, l.id, l.record_type, l.record_id, l.recipient_email, l.recipient_name,
                l.expires_at, l.revoked_at, o.status as org_status
           from signed_link l join organisation o on o.id = l.organisation_id
          where l.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    tx.rollback().await?;
    Ok(row
        .filter(|r| r.org_status != "closed")
        .map(|row| LinkGrant {
            org: OrgId(row.organisation_id),
            link_id: row.id,
            record_type: row.record_type,
            record_id: row.record_id,
            recipient_email: row.recipient_email,
            recipient_name: row.recipient_name,
            expires_at: row.expires_at,
        }))
}
