//! Roles, databases and migrations.
//!
//! `migrate` runs as the owner role: it applies `sql/functions.sql` (replaceable functions,
//! idempotent) and then the append-only migrations, under one advisory lock so that two
//! processes migrating at once take turns.

use crate::error::DbError;
use crate::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
pub const FUNCTIONS_SQL: &str = include_str!("../sql/functions.sql");

/// Database-level privileges, applied by every `migrate` and to every test database (they live
/// in `pg_database`, which neither migrations' tables nor template clones carry). Nothing in
/// PropLink uses temporary tables, and a role that could create them might try to shadow tables
/// inside functions that search `pg_temp`.
pub const HARDEN_DATABASE_SQL: &str = "do $$ begin
    execute format('revoke temporary on database %I from public', current_database());
end $$";

const MIGRATE_LOCK: i64 = 0x7072_6f70_6c69_6e6b; // "proplink"

/// A fingerprint of everything `migrate` applies: test templates are keyed by it.
pub fn schema_fingerprint() -> String {
    let mut h = Sha256::new();
    h.update(FUNCTIONS_SQL.as_bytes());
    for m in MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&m.checksum);
    }
    hex::encode(&h.finalize()[..8])
}

/// Creates the three roles when missing (needs a superuser connection: the embedded cluster
/// and the tests; in production a DBA creates them once).
pub async fn ensure_roles(superuser: &mut PgConnection) -> Result<(), DbError> {
    for (role, attrs) in [
        (OWNER_ROLE, "login nosuperuser nobypassrls nocreaterole"),
        (
            APP_ROLE,
            "login nosuperuser nobypassrls nocreaterole nocreatedb noinherit",
        ),
        (
            PLATFORM_ROLE,
            "login nosuperuser nobypassrls nocreaterole nocreatedb noinherit",
        ),
    ] {
        let exists: bool =
            sqlx::query_scalar("select exists (select from pg_roles where rolname = $1)")
                .bind(role)
                .fetch_one(&mut *superuser)
                .await?;
        if !exists {
            sqlx::raw_sql(AssertSqlSafe(format!("create role {role} {attrs}")))
                .execute(&mut *superuser)
                .await?;
        }
    }
    Ok(())
}

/// Creates `database` owned by the owner role unless it exists.
pub async fn ensure_database(superuser: &mut PgConnection, database: &str) -> Result<(), DbError> {
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(database)
            .fetch_one(&mut *superuser)
            .await?;
    if !exists {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "create database {} owner {OWNER_ROLE}",
            quote_ident(database)
        )))
        .execute(&mut *superuser)
        .await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the database to migrate: {0}")]
    Connect(String),
    #[error(
        "the database role \"{0}\" does not exist: create it first (CREATE ROLE {0} LOGIN NOBYPASSRLS) — see README.md, Production"
    )]
    MissingRole(String),
    #[error("applying the replaceable SQL functions failed: {0}")]
    Functions(String),
    #[error("a migration failed: {0}")]
    Migration(String),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// Brings the schema up to date. `owner_url` must connect as the role that will own the tables.
pub async fn migrate(owner_url: &str) -> Result<(), MigrateError> {
    let mut conn = PgConnection::connect(owner_url)
        .await
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    for role in [APP_ROLE, PLATFORM_ROLE] {
        let exists: bool =
            sqlx::query_scalar("select exists (select from pg_roles where rolname = $1)")
                .bind(role)
                .fetch_one(&mut conn)
                .await
                .map_err(DbError::from)?;
        if !exists {
            return Err(MigrateError::MissingRole(role.to_owned()));
        }
    }
    sqlx::query("select pg_advisory_lock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
    let result = async {
        sqlx::raw_sql(FUNCTIONS_SQL)
            .execute(&mut conn)
            .await
            .map_err(|e| MigrateError::Functions(e.to_string()))?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| MigrateError::Migration(e.to_string()))?;
        sqlx::raw_sql(HARDEN_DATABASE_SQL)
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| MigrateError::Migration(e.to_string()))
    }
    .await;
    let _ = sqlx::query("select pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

/// The database's one-time-code key (made by [`migrate`]).
pub async fn code_key(pool: &crate::AppPool) -> Result<proplink_auth::codes::CodeKey, DbError> {
    let value: String =
        sqlx::query_scalar("select value from platform_meta where key = 'code_key'")
            .fetch_one(pool.raw())
            .await?;
    let bytes = hex::decode(value.trim())
        .map_err(|_| DbError::Unavailable("the stored code key is not hexadecimal".into()))?;
    proplink_auth::codes::CodeKey::new(bytes).map_err(DbError::Unavailable)
}

/// Quotes an identifier for DDL that cannot take bind parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
