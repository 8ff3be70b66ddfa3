//! The tenant transaction: the only way Rust code reaches tenant tables.
//!
//! Opening one sets, for this transaction only (`set_config(..., true)`), the organisation that
//! every row-level security policy compares against, and the actor, channel and request id that
//! the audit trigger records. Repository functions take `&mut TenantTx`; none take a pool.

use crate::error::DbError;
use crate::session_cache::SessionCache;
use proplink_domain::{ActorKind, Channel, OrgId};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
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
    sessions: Arc<SessionCache>,
}

impl TenantTx {
    pub(crate) async fn begin(
        pool: &PgPool,
        sessions: Arc<SessionCache>,
        ctx: &TenantContext,
    ) -> Result<Self, DbError> {
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
        Ok(Self {
            tx,
            org: ctx.org,
            sessions,
        })
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Plans each later statement of this transaction for its own parameters
    /// (`plan_cache_mode = force_custom_plan`), for the lists and searches whose best plan
    /// depends on the organisation's size. A generic plan is made for no organisation in
    /// particular, so it sizes each as the average: beside 50 small organisations, a
    /// 100,000-unit organisation's unit list page was planned as a join of all its units
    /// (55 ms) instead of the 50 it shows (6.8 ms, planning included). Not for writes: it
    /// replans every statement of the audit and search triggers too (an import ran at half
    /// speed).
    pub async fn plan_for_this_organisation(&mut self) -> Result<(), DbError> {
        sqlx::query("select set_config('plan_cache_mode', 'force_custom_plan', true)")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Changes who the rest of this transaction acts as (the audit trigger reads the actor at
    /// each statement). For work done on someone's behalf once they are known inside the
    /// transaction: a resident's session found, or a provider's confirmation of a payment a
    /// resident started.
    pub async fn act_as(&mut self, actor: &Actor, channel: Channel) -> Result<(), DbError> {
        sqlx::query(
            "select set_config('app.actor_id', $1, true), set_config('app.actor_kind', $2, true),
                    set_config('app.actor_name', $3, true), set_config('app.channel', $4, true)",
        )
        .bind(actor.id.map(|id| id.to_string()).unwrap_or_default())
        .bind(actor.kind.as_str())
        .bind(actor.name.as_deref().unwrap_or_default().replace('\0', ""))
        .bind(channel.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks a point to come back to: what follows can be undone alone
    /// ([`Self::undo_to_mark`]) or kept ([`Self::keep_since_mark`]). One mark at a time.
    pub async fn mark(&mut self) -> Result<(), DbError> {
        sqlx::query("savepoint proplink_mark")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn keep_since_mark(&mut self) -> Result<(), DbError> {
        sqlx::query("release savepoint proplink_mark")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn undo_to_mark(&mut self) -> Result<(), DbError> {
        sqlx::query("rollback to savepoint proplink_mark")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("release savepoint proplink_mark")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The connection, for repository functions' queries.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits, and (before returning) tells this process's session cache that the
    /// organisation changed, so the next request reads access afresh.
    pub async fn commit(self) -> Result<(), DbError> {
        let result = self.tx.commit().await.map_err(DbError::from);
        // Even a failed commit may have committed (the reply can be lost): assume it did.
        self.sessions.changed(self.org);
        result
    }

    /// Commits a write that changes nothing a cached session holds (a session's "last seen").
    pub(crate) async fn commit_keeping_sessions(self) -> Result<(), DbError> {
        self.tx.commit().await.map_err(DbError::from)
    }

    /// Commits a portal visitor's transaction (a resident's page or action). A portal session
    /// can change no staff member's access, so the cached staff sessions stay: without this
    /// every resident's page view would send the organisation's staff back to the database.
    pub async fn commit_portal(self) -> Result<(), DbError> {
        self.commit_keeping_sessions().await
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await.map_err(DbError::from)
    }

    /// Ends a transaction that only read, without waiting: the rollback is queued on the
    /// connection and sent with the pool's own check when the connection goes back (one round
    /// trip, off the request's path). Like [`Self::rollback`], anything written is discarded,
    /// so only call this where nothing was meant to be written.
    pub fn end_reading(self) {
        drop(self.tx);
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
