//! The incoming-webhook inbox: each provider event is stored once, by (provider, event id),
//! before anything acts on it (DESIGN.md §6).

use crate::error::DbError;
use crate::pools::AppPool;
use proplink_domain::OrgId;

/// Stores the event unless already stored. Returns true when it is new.
pub async fn store_once(
    pool: &AppPool,
    provider: &str,
    event_id: &str,
    payload: &serde_json::Value,
    routed_to: Option<OrgId>,
    note: Option<&str>,
) -> Result<bool, DbError> {
    let mut conn = pool.raw().acquire().await?;
    insert(&mut conn, provider, event_id, payload, routed_to, note).await
}

async fn insert(
    conn: &mut sqlx::PgConnection,
    provider: &str,
    event_id: &str,
    payload: &serde_json::Value,
    routed_to: Option<OrgId>,
    note: Option<&str>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "insert into webhook_event (provider, event_id, payload, routed_to, note)
         values ($1, $2, $3, $4, $5) on conflict (provider, event_id) do nothing",
    )
    .bind(provider)
    .bind(event_id)
    .bind(payload)
    .bind(routed_to.map(|o| o.0))
    .bind(note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether an organisation exists (webhook payloads name theirs in custom arguments).
pub async fn organisation_exists(pool: &AppPool, org: OrgId) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("select exists (select from organisation where id = $1)")
            .bind(org.0)
            .fetch_one(pool.raw())
            .await?,
    )
}

/// Stores a routed event inside the organisation's transaction, so that storing it and queueing
/// its processing commit together (a retry after a failure finds nothing half-done).
pub async fn store_once_tx(
    tx: &mut crate::TenantTx,
    provider: &str,
    event_id: &str,
    payload: &serde_json::Value,
) -> Result<bool, DbError> {
    let org = tx.org();
    insert(tx.conn(), provider, event_id, payload, Some(org), None).await
}
