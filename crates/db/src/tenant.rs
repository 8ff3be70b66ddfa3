//! The tenant transaction: the only way Rust code reaches tenant tables.
//!
//! Opening one sets, for this transaction only (`set_config(..., true)`), the organisation that
//! every row-level security policy compares against, and the actor, channel and request id that
//! the audit trigger records. Repository functions take `&mut TenantTx`; none take a pool.

use crate::error::DbError;
use proplink_domain::{ActorKind, Channel, OrgId};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Who is acting. `name` is recorded with each audit event so history reads as written even if
/// the person is later renamed or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub kind: ActorKind,
    pub name: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            id: None,
            kind: ActorKind::System,
            name: None,
        }
    }

    pub fn webhook(provider: &str) -> Self {
        Self {
            id: None,
            kind: ActorKind::Webhook,
            name: Some(provider.to_owned()),
        }
    }
}

/// A verified context: the organisation has been resolved from the host (or a job row) and the
/// principal checked against it before this value is built.
#[derive(Debug, Clone)]
pub struct TenantContext {
    pub org: OrgId,
    pub actor: Actor,
    pub channel: Channel,
    pub request_id: Option<String>,
}

pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    org: OrgId,
}

impl TenantTx {
    pub(crate) async fn begin(pool: &PgPool, ctx: &TenantContext) -> Result<Self, DbError> {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "select set_config('app.organisation_id', $1, true),
                    set_config('app.actor_id', $2, true),
                    set_config('app.actor_kind', $3, true),
                    set_config('app.actor_name', $4, true),
                    set_config('app.channel', $5, true),
                    set_config('app.request_id', $6, true)",
        )
        .bind(ctx.org.to_string())
        .bind(ctx.actor.id.map(|id| id.to_string()).unwrap_or_default())
        .bind(ctx.actor.kind.as_str())
        .bind(ctx.actor.name.clone().unwrap_or_default())
        .bind(ctx.channel.as_str())
        .bind(ctx.request_id.clone().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        Ok(Self { tx, org: ctx.org })
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    /// The connection, for repository functions' queries.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await.map_err(DbError::from)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await.map_err(DbError::from)
    }
}
