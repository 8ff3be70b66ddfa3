//! The tenant transaction: the only way Rust code reaches tenant tables.
//!
//! Opening one sets, for this transaction only (`set_config(..., true)`), the organisation that
//! every row-level security policy compares against, and the actor, channel and request id that
//! the audit trigger records. Repository functions take `&mut TenantTx`; none take a pool.

use crate::error::DbError;
use proplink_domain::{ActorKind, Channel, OrgId};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
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
        // One round trip: BEGIN and the settings travel together (simple query protocol, so
        // the values are written as escaped literals; the ids and kinds are ours, the name and
        // request id are escaped by `literal`).
        let statement = format!(
            "BEGIN; SELECT set_config('app.organisation_id', {}, true), \
                    set_config('app.actor_id', {}, true), \
                    set_config('app.actor_kind', {}, true), \
                    set_config('app.actor_name', {}, true), \
                    set_config('app.channel', {}, true), \
                    set_config('app.request_id', {}, true)",
            literal(&ctx.org.to_string()),
            literal(&ctx.actor.id.map(|id| id.to_string()).unwrap_or_default()),
            literal(ctx.actor.kind.as_str()),
            literal(ctx.actor.name.as_deref().unwrap_or_default()),
            literal(ctx.channel.as_str()),
            literal(ctx.request_id.as_deref().unwrap_or_default()),
        );
        let tx = pool.begin_with(AssertSqlSafe(statement)).await?;
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

/// A PostgreSQL string literal of `s`, safe whatever `standard_conforming_strings` says: an
/// escape string (`E'…'`) with backslashes and quotes doubled; NUL (which PostgreSQL text cannot
/// hold) is dropped.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\0' => {}
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn literals_cannot_break_out() {
        assert_eq!(literal("Jane O'Brien"), "E'Jane O''Brien'");
        assert_eq!(
            literal("a\\'; drop table x; --"),
            "E'a\\\\''; drop table x; --'"
        );
        assert_eq!(literal("nul\0byte"), "E'nulbyte'");
        assert_eq!(literal(""), "E''");
    }
}
