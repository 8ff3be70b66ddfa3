//! Connection pools, one per database role.
//!
//! - [`AppPool`] connects as `proplink_app`: owns nothing, cannot bypass row-level security.
//!   Its only door to tenant tables is [`AppPool::begin`], which returns a [`TenantTx`].
//! - [`PlatformPool`] connects as `proplink_platform`: reads across organisations (audit
//!   verification, claiming jobs, creating organisations). Its writes are audited too.
//!
//! Neither exposes the underlying `PgPool` outside this crate.

use crate::error::DbError;
use crate::session_cache::SessionCache;
use crate::tenant::{TenantContext, TenantTx};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const APP_ROLE: &str = "proplink_app";
pub const PLATFORM_ROLE: &str = "proplink_platform";
pub const OWNER_ROLE: &str = "proplink_owner";

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub application_name: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            application_name: "proplink".into(),
        }
    }
}

/// Parses a URL and builds a lazily connecting pool (connections open on first use).
pub(crate) fn build_pool(url: &str, settings: &PoolSettings) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| DbError::Unavailable(format!("the database URL is not valid: {e}")))?
        .application_name(&settings.application_name)
        .options([(
            "statement_timeout",
            format!("{}ms", settings.statement_timeout.as_millis()),
        )])
        .log_statements(tracing::log::LevelFilter::Trace);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

/// Checks the pool's role is what we expect and can reach the database: a clear message at
/// start-up instead of a stream of failed requests.
async fn check_role(pool: &PgPool, expected: &str) -> Result<(), DbError> {
    let (user, bypass): (String, bool) = sqlx::query_as(
        "select current_user::text, rolbypassrls or rolsuper from pg_roles where rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if user != expected {
        return Err(DbError::Unavailable(format!(
            "connected as role \"{user}\" but expected \"{expected}\": check the database URL"
        )));
    }
    if bypass {
        return Err(DbError::Unavailable(format!(
            "role \"{user}\" can bypass row-level security; it must not (ALTER ROLE {user} NOBYPASSRLS NOSUPERUSER)"
        )));
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct AppPool(PgPool, Arc<SessionCache>);

impl AppPool {
    pub fn new(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        Ok(Self(build_pool(url, settings)?, Arc::default()))
    }

    /// The signed-in sessions kept between requests (see [`crate::session_cache`]).
    pub fn sessions(&self) -> &SessionCache {
        &self.1
    }

    /// Keeps the session cache in step with access changes made anywhere, until `shutdown`.
    /// Until this runs (and while its connection is down) the cache is not used.
    pub async fn listen_for_access_changes(&self, shutdown: CancellationToken) {
        crate::session_cache::listen(self.0.clone(), &self.1, shutdown).await;
    }

    /// Connects once and checks the role: call at start-up.
    pub async fn verify(&self) -> Result<(), DbError> {
        check_role(&self.0, APP_ROLE).await
    }

    /// Opens a tenant transaction for a verified request or job context.
    pub async fn begin(&self, ctx: &TenantContext) -> Result<TenantTx, DbError> {
        TenantTx::begin(&self.0, self.1.clone(), ctx).await
    }

    /// A trivial round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("select 1").execute(&self.0).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.0.close().await;
    }

    /// Platform tables (organisation, webhook inbox) are read without a tenant context.
    pub(crate) fn raw(&self) -> &PgPool {
        &self.0
    }
}

#[derive(Clone, Debug)]
pub struct PlatformPool(PgPool);

impl PlatformPool {
    pub fn new(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        Ok(Self(build_pool(url, settings)?))
    }

    pub async fn verify(&self) -> Result<(), DbError> {
        check_role(&self.0, PLATFORM_ROLE).await
    }

    pub async fn close(&self) {
        self.0.close().await;
    }

    pub(crate) fn raw(&self) -> &PgPool {
        &self.0
    }
}
