//! Organisations: the tenant boundary. A platform table; creating and changing one is
//! platform work, reading one (to resolve a host) is open to the server.

use crate::error::DbError;
use crate::pools::{AppPool, PlatformPool};
use proplink_domain::{OrgId, OrgSlug};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgStatus {
    Active,
    ReadOnly,
    Closed,
}

impl OrgStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ReadOnly => "read_only",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "read_only" | "read-only" => Some(Self::ReadOnly),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Organisation {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub status: OrgStatus,
    pub brand_colour: Option<String>,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    slug: String,
    name: String,
    status: String,
    brand_colour: Option<String>,
    created_at: OffsetDateTime,
}

impl From<OrgRow> for Organisation {
    fn from(r: OrgRow) -> Self {
        Self {
            id: OrgId(r.id),
            slug: r.slug,
            name: r.name,
            // The column's check constraint allows only the three values.
            status: OrgStatus::parse(&r.status).unwrap_or(OrgStatus::Closed),
            brand_colour: r.brand_colour,
            created_at: r.created_at,
        }
    }
}

macro_rules! columns {
    () => {
        "id, slug, name, status, brand_colour, created_at"
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CreateOrgError {
    #[error("an organisation with the subdomain \"{0}\" already exists")]
    SlugTaken(String),
    #[error("the organisation's name must be between 1 and 200 characters")]
    BadName,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Looks an organisation up by its subdomain (any status).
pub async fn find_by_slug(pool: &AppPool, slug: &str) -> Result<Option<Organisation>, DbError> {
    let row: Option<OrgRow> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from organisation where slug = $1"
    ))
    .bind(slug)
    .fetch_optional(pool.raw())
    .await?;
    Ok(row.map(Into::into))
}

/// Looks an organisation up by its id (any status): a provider's event names ours in its
/// metadata.
pub async fn find_by_id(pool: &AppPool, id: OrgId) -> Result<Option<Organisation>, DbError> {
    let row: Option<OrgRow> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from organisation where id = $1"
    ))
    .bind(id.0)
    .fetch_optional(pool.raw())
    .await?;
    Ok(row.map(Into::into))
}

pub async fn list(pool: &PlatformPool) -> Result<Vec<Organisation>, DbError> {
    let rows: Vec<OrgRow> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from organisation order by slug"
    ))
    .fetch_all(pool.raw())
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn create(
    pool: &PlatformPool,
    slug: &OrgSlug,
    name: &str,
) -> Result<Organisation, CreateOrgError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CreateOrgError::BadName);
    }
    let id = Uuid::now_v7();
    let result = async {
        let mut tx = pool.raw().begin().await?;
        let row: OrgRow = sqlx::query_as(concat!(
            "insert into organisation (id, slug, name) values ($1, $2, $3) returning ",
            columns!()
        ))
        .bind(id)
        .bind(slug.as_str())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        record(
            &mut tx,
            id,
            "created",
            serde_json::json!({ "slug": slug.as_str(), "name": name }),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    }
    .await;
    match result {
        Ok(r) => Ok(r.into()),
        Err(e) => match DbError::from(e) {
            DbError::Duplicate { .. } => Err(CreateOrgError::SlugTaken(slug.to_string())),
            other => Err(other.into()),
        },
    }
}

/// Records an operator's change in the organisation's own audit chain.
async fn record(
    conn: &mut sqlx::PgConnection,
    org: Uuid,
    kind: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into organisation_event (organisation_id, id, kind, detail) values ($1, $2, $3, $4)",
    )
    .bind(org)
    .bind(Uuid::now_v7())
    .bind(kind)
    .bind(detail)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Changes an organisation's status (closure lifecycle, support), recording the change in its
/// audit chain. Returns false if there is no such organisation.
pub async fn set_status(
    pool: &PlatformPool,
    id: OrgId,
    status: OrgStatus,
) -> Result<bool, DbError> {
    let mut tx = pool.raw().begin().await?;
    let old: Option<String> =
        sqlx::query_scalar("select status from organisation where id = $1 for update")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(old) = old else {
        return Ok(false);
    };
    if old == status.as_str() {
        return Ok(true);
    }
    sqlx::query("update organisation set status = $2, status_changed_at = now() where id = $1")
        .bind(id.0)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
    record(
        &mut tx,
        id.0,
        "status_changed",
        serde_json::json!({ "from": old, "to": status.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The status of the organisation of a tenant transaction (for work that must not start in an
/// organisation that can no longer change, such as sending e-mail).
pub async fn status_in(tx: &mut crate::TenantTx) -> Result<OrgStatus, DbError> {
    let status: String = sqlx::query_scalar("select status from organisation where id = $1")
        .bind(tx.org().0)
        .fetch_one(tx.conn())
        .await?;
    Ok(OrgStatus::parse(&status).unwrap_or(OrgStatus::Closed))
}

/// The name of the organisation of a tenant transaction (the doors without an organisation in
/// their host, such as ContractorPort, show it).
pub async fn name_of(tx: &mut crate::TenantTx) -> Result<String, DbError> {
    Ok(
        sqlx::query_scalar("select name from organisation where id = $1")
            .bind(tx.org().0)
            .fetch_one(tx.conn())
            .await?,
    )
}
