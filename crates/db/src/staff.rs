//! Staff users: the person behind every admin-app membership, and everything about signing in
//! that happens before an organisation is chosen (login host): passwords, lock-out, e-mailed
//! codes, authenticator apps, backup codes, remembered devices, password resets, login-host
//! sessions and the platform outbox. These are platform tables; what a person may do in an
//! organisation lives in that organisation's membership ([`crate::access`]).

use crate::error::DbError;
use crate::pools::AppPool;
use crate::portal::{CODE_TTL, CodeRefusal, MAX_TRIES};
use proplink_auth::codes::CodeKey;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Failed passwords or codes in a row before the account locks.
pub const LOCK_AFTER_FAILURES: i32 = 5;
/// How long a locked account stays locked.
pub const LOCK_FOR: Duration = Duration::minutes(15);
/// Between password and second factor.
pub const PENDING_LOGIN_TTL: Duration = Duration::minutes(15);
/// After the second factor: long enough to pick and switch organisations.
pub const VERIFIED_LOGIN_TTL: Duration = Duration::hours(12);
pub const REMEMBER_DEVICE_FOR: Duration = Duration::days(30);
pub const PASSWORD_RESET_TTL: Duration = Duration::hours(1);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub second_factor: String,
    pub totp_secret: Option<String>,
    pub failed_attempts: i32,
    pub locked_until: Option<OffsetDateTime>,
    pub sessions_valid_after: OffsetDateTime,
}

impl StaffUser {
    pub fn uses_totp(&self) -> bool {
        self.second_factor == "totp" && self.totp_secret.is_some()
    }

    pub fn locked_at(&self, now: OffsetDateTime) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

macro_rules! user_query {
    ($tail:literal) => {
        concat!(
            "select id, email, name, password_hash, second_factor, totp_secret, failed_attempts, locked_until, sessions_valid_after from staff_user ",
            $tail
        )
    };
}

pub async fn find_by_email(pool: &AppPool, email: &str) -> Result<Option<StaffUser>, DbError> {
    Ok(
        sqlx::query_as(user_query!("where lower(email) = lower($1)"))
            .bind(email)
            .fetch_optional(pool.raw())
            .await?,
    )
}

pub async fn find(pool: &AppPool, id: Uuid) -> Result<Option<StaffUser>, DbError> {
    Ok(sqlx::query_as(user_query!("where id = $1"))
        .bind(id)
        .fetch_optional(pool.raw())
        .await?)
}

/// The user with this e-mail address, created (with no password yet) if there is none. Runs on
/// the caller's transaction so an invitation and its user are written together.
pub async fn find_or_create(
    conn: &mut PgConnection,
    email: &str,
    name: &str,
) -> Result<Uuid, DbError> {
    let existing: Option<Uuid> =
        sqlx::query_scalar("select id from staff_user where lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    // A concurrent invitation of the same address may win the race: then use its row.
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into staff_user (id, email, name) values ($1, $2, $3)
         on conflict ((lower(email))) do nothing returning id",
    )
    .bind(id)
    .bind(email)
    .bind(name.trim())
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => Ok(
            sqlx::query_scalar("select id from staff_user where lower(email) = lower($1)")
                .bind(email)
                .fetch_one(&mut *conn)
                .await?,
        ),
    }
}

/// Sets a new password. Every existing session ends (a reset is often done because someone
/// else may know the old one).
pub async fn set_password(
    pool: &AppPool,
    id: Uuid,
    hash: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let mut conn = pool.raw().acquire().await?;
    let result = set_password_in(&mut conn, id, hash, now).await;
    pool.sessions().changed_everywhere();
    result
}

/// Commits a change that ends a person's sessions, and forgets every cached session (whether or
/// not the commit's reply arrived: it may have committed).
async fn commit_ending_sessions(
    pool: &AppPool,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), DbError> {
    let committed = tx.commit().await;
    pool.sessions().changed_everywhere();
    Ok(committed?)
}

/// [`set_password`] on the caller's transaction (so it commits with, say, an accepted
/// invitation, or not at all).
pub async fn set_password_in(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update staff_user set password_hash = $2, password_changed_at = $3,
                sessions_valid_after = $3, failed_attempts = 0, locked_until = null
          where id = $1",
    )
    .bind(id)
    .bind(hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // A new password also forgets remembered devices: whoever knew the old one may hold one.
    revoke_devices_in(conn, id, now).await
}

async fn revoke_devices_in(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update staff_device set revoked_at = $2 where user_id = $1 and revoked_at is null",
    )
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a failed attempt did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    Counted {
        failures: i32,
    },
    /// This failure locked the account (tell the owner).
    LockedNow {
        until: OffsetDateTime,
    },
}

/// Counts a failed password or code; the fifth in a row locks the account for [`LOCK_FOR`].
pub async fn record_failure(
    pool: &AppPool,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<FailureEffect, DbError> {
    let (failures, locked_until): (i32, Option<OffsetDateTime>) = sqlx::query_as(
        "update staff_user
            set failed_attempts = failed_attempts + 1,
                locked_until = case when failed_attempts + 1 >= $2 then $3 else locked_until end
          where id = $1
      returning failed_attempts, locked_until",
    )
    .bind(id)
    .bind(LOCK_AFTER_FAILURES)
    .bind(now + LOCK_FOR)
    .fetch_one(pool.raw())
    .await?;
    Ok(match locked_until {
        Some(until) if failures == LOCK_AFTER_FAILURES => FailureEffect::LockedNow { until },
        _ => FailureEffect::Counted { failures },
    })
}

/// A successful sign-in step: the failure count starts again. A lock that has run out ends.
pub async fn clear_failures(pool: &AppPool, id: Uuid) -> Result<(), DbError> {
    sqlx::query("update staff_user set failed_attempts = 0, locked_until = null where id = $1")
        .bind(id)
        .execute(pool.raw())
        .await?;
    Ok(())
}

/// After a lock has run out the person gets a fresh set of tries.
pub async fn expire_lock(pool: &AppPool, id: Uuid, now: OffsetDateTime) -> Result<(), DbError> {
    sqlx::query(
        "update staff_user set failed_attempts = 0, locked_until = null
          where id = $1 and locked_until is not null and locked_until <= $2",
    )
    .bind(id)
    .bind(now)
    .execute(pool.raw())
    .await?;
    Ok(())
}

/// Switches the second factor to an authenticator app whose first code has been checked.
pub async fn use_totp(
    pool: &AppPool,
    id: Uuid,
    secret: &str,
    accepted_step: u64,
) -> Result<(), DbError> {
    sqlx::query(
        "update staff_user set second_factor = 'totp', totp_secret = $2, totp_last_step = $3
          where id = $1",
    )
    .bind(id)
    .bind(secret)
    .bind(i64::try_from(accepted_step).unwrap_or(i64::MAX))
    .execute(pool.raw())
    .await?;
    Ok(())
}

/// Back to codes by e-mail (the default); the app's secret is forgotten.
pub async fn use_email_codes(pool: &AppPool, id: Uuid) -> Result<(), DbError> {
    sqlx::query(
        "update staff_user set second_factor = 'email', totp_secret = null, totp_last_step = null
          where id = $1",
    )
    .bind(id)
    .execute(pool.raw())
    .await?;
    Ok(())
}

/// Records an accepted TOTP step, atomically refusing the same or an earlier one (replay).
pub async fn accept_totp_step(pool: &AppPool, id: Uuid, step: u64) -> Result<bool, DbError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    Ok(sqlx::query(
        "update staff_user set totp_last_step = $2
          where id = $1 and (totp_last_step is null or totp_last_step < $2)",
    )
    .bind(id)
    .bind(step)
    .execute(pool.raw())
    .await?
    .rows_affected()
        == 1)
}

/// Ends every session of this person, in every organisation and on the login host, and forgets
/// their remembered devices.
pub async fn sign_out_everywhere(
    pool: &AppPool,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let mut tx = pool.raw().begin().await?;
    sqlx::query("update staff_user set sessions_valid_after = $2 where id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    end_logins_in(&mut tx, id, now).await?;
    revoke_devices_in(&mut tx, id, now).await?;
    commit_ending_sessions(pool, tx).await?;
    Ok(())
}

/// An administrator's reset: no password, codes by e-mail, no backup codes, remembered devices
/// forgotten and every session over. The person sets a new password from a reset link.
pub async fn reset_credentials(
    pool: &AppPool,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let mut tx = pool.raw().begin().await?;
    sqlx::query(
        "update staff_user set password_hash = null, second_factor = 'email', totp_secret = null,
                totp_last_step = null, sessions_valid_after = $2, failed_attempts = 0,
                locked_until = null
          where id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from staff_backup_code where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    revoke_devices_in(&mut tx, id, now).await?;
    end_logins_in(&mut tx, id, now).await?;
    commit_ending_sessions(pool, tx).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Backup codes

/// Replaces the person's backup codes with these (already digested) ones.
pub async fn replace_backup_codes(
    pool: &AppPool,
    id: Uuid,
    digests: &[String],
) -> Result<(), DbError> {
    let mut tx = pool.raw().begin().await?;
    sqlx::query("delete from staff_backup_code where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into staff_backup_code (user_id, digest) select $1, d from unnest($2::text[]) d",
    )
    .bind(id)
    .bind(digests)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Uses up a backup code; false if it is unknown or already used.
pub async fn use_backup_code(
    pool: &AppPool,
    id: Uuid,
    digest: &str,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "update staff_backup_code set used_at = $3
          where user_id = $1 and digest = $2 and used_at is null",
    )
    .bind(id)
    .bind(digest)
    .bind(now)
    .execute(pool.raw())
    .await?
    .rows_affected()
        == 1)
}

pub async fn unused_backup_codes(pool: &AppPool, id: Uuid) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "select count(*) from staff_backup_code where user_id = $1 and used_at is null",
    )
    .bind(id)
    .fetch_one(pool.raw())
    .await?)
}

// ---------------------------------------------------------------------------------------------
// E-mailed second-factor codes

pub const CODE_PURPOSE: &str = "staff_sign_in";

/// Stores a fresh code (replacing any earlier one) and queues the e-mail that carries it.
pub async fn issue_code(
    pool: &AppPool,
    key: &CodeKey,
    user: &StaffUser,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let code = proplink_auth::codes::new_code();
    let mut tx = pool.raw().begin().await?;
    sqlx::query("update staff_code set used_at = $2 where user_id = $1 and used_at is null")
        .bind(user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into staff_code (id, user_id, digest, expires_at) values ($1, $2, $3, $4)")
        .bind(Uuid::now_v7())
        .bind(user.id)
        .bind(key.digest(CODE_PURPOSE, &user.id.to_string(), &code))
        .bind(now + CODE_TTL)
        .execute(&mut *tx)
        .await?;
    queue_email(
        &mut tx,
        &PlatformEmail {
            to_address: user.email.clone(),
            to_name: Some(user.name.clone()),
            subject: "Your PropLink sign-in code".into(),
            body_text: format!(
                "Hello {},\n\nYour code to finish signing in to PropLink is:\n\n    {code}\n\nIt works once, for 10 minutes. If you did not just enter your password, change it now: someone else may know it.\n",
                user.name
            ),
            category: "sign_in_code".into(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Checks an e-mailed code. A refusal counts a try (committed whatever the outcome).
pub async fn verify_code(
    pool: &AppPool,
    key: &CodeKey,
    user_id: Uuid,
    code: &str,
    now: OffsetDateTime,
) -> Result<Result<(), CodeRefusal>, DbError> {
    let mut tx = pool.raw().begin().await?;
    let live: Option<(Uuid, String, OffsetDateTime, i32)> = sqlx::query_as(
        "select id, digest, expires_at, attempts from staff_code
          where user_id = $1 and used_at is null
          order by created_at desc limit 1 for update",
    )
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, digest, expires_at, attempts)) = live else {
        return Ok(Err(CodeRefusal::NoCode));
    };
    if expires_at <= now {
        return Ok(Err(CodeRefusal::Expired));
    }
    if attempts >= MAX_TRIES {
        return Ok(Err(CodeRefusal::TooManyTries));
    }
    let matches = key.matches(CODE_PURPOSE, &user_id.to_string(), code, &digest);
    sqlx::query(
        "update staff_code set attempts = attempts + 1,
                used_at = case when $2 then $3 else used_at end
          where id = $1",
    )
    .bind(id)
    .bind(matches)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if matches {
        return Ok(Ok(()));
    }
    let remaining = MAX_TRIES - attempts - 1;
    Ok(Err(if remaining > 0 {
        CodeRefusal::Wrong { remaining }
    } else {
        CodeRefusal::TooManyTries
    }))
}

// ---------------------------------------------------------------------------------------------
// Login-host sessions

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub verified_at: Option<OffsetDateTime>,
    pub remember_device: bool,
    pub expires_at: OffsetDateTime,
}

impl LoginSession {
    pub fn verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// Starts a sign-in after a correct password: the second factor is still to come.
pub async fn start_login(
    pool: &AppPool,
    user_id: Uuid,
    token_hash: &str,
    remember_device: bool,
    ip: Option<&str>,
    user_agent: Option<&str>,
    now: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into login_session (id, user_id, token_hash, remember_device, created_at, expires_at, ip, user_agent)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(user_id)
    .bind(token_hash)
    .bind(remember_device)
    .bind(now)
    .bind(now + PENDING_LOGIN_TTL)
    .bind(ip)
    .bind(user_agent.map(|ua| truncate(ua, 300)))
    .execute(pool.raw())
    .await?;
    Ok(id)
}

/// The live login-host session with this token (not ended, not expired, not cut off by "sign
/// out everywhere").
pub async fn find_login(
    pool: &AppPool,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<LoginSession>, DbError> {
    Ok(sqlx::query_as(
        "select l.id, l.user_id, l.verified_at, l.remember_device, l.expires_at
           from login_session l join staff_user u on u.id = l.user_id
          where l.token_hash = $1 and l.ended_at is null and l.expires_at > $2
            and l.created_at >= u.sessions_valid_after",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool.raw())
    .await?)
}

/// The second factor has been passed.
pub async fn mark_login_verified(
    pool: &AppPool,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query("update login_session set verified_at = $2, expires_at = $3 where id = $1")
        .bind(id)
        .bind(now)
        .bind(now + VERIFIED_LOGIN_TTL)
        .execute(pool.raw())
        .await?;
    Ok(())
}

pub async fn end_login(pool: &AppPool, id: Uuid, now: OffsetDateTime) -> Result<(), DbError> {
    sqlx::query("update login_session set ended_at = $2 where id = $1 and ended_at is null")
        .bind(id)
        .bind(now)
        .execute(pool.raw())
        .await?;
    Ok(())
}

/// Ends the person's login-host sessions (signing out of an organisation signs out of the
/// login host too: its cookie cannot be reached from the organisation's host).
pub async fn end_logins_of(
    pool: &AppPool,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let mut conn = pool.raw().acquire().await?;
    end_logins_in(&mut conn, user_id, now).await
}

async fn end_logins_in(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query("update login_session set ended_at = $2 where user_id = $1 and ended_at is null")
        .bind(user_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Remembered devices

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub label: String,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn remember_device(
    pool: &AppPool,
    user_id: Uuid,
    token_hash: &str,
    label: &str,
    ip: Option<&str>,
    now: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into staff_device (id, user_id, token_hash, label, ip, created_at, last_seen_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind(id)
    .bind(user_id)
    .bind(token_hash)
    .bind(truncate(label, 200))
    .bind(ip)
    .bind(now)
    .bind(now + REMEMBER_DEVICE_FOR)
    .execute(pool.raw())
    .await?;
    Ok(id)
}

/// Is this a live remembered device of this person? Notes that it was seen.
pub async fn device_is_remembered(
    pool: &AppPool,
    user_id: Uuid,
    token_hash: &str,
    ip: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "update staff_device set last_seen_at = $3, ip = coalesce($4, ip)
          where user_id = $1 and token_hash = $2 and revoked_at is null and expires_at > $3",
    )
    .bind(user_id)
    .bind(token_hash)
    .bind(now)
    .bind(ip)
    .execute(pool.raw())
    .await?
    .rows_affected()
        == 1)
}

/// The person's remembered devices, newest first (expired and revoked ones included, marked).
pub async fn devices(pool: &AppPool, user_id: Uuid) -> Result<Vec<Device>, DbError> {
    Ok(sqlx::query_as(
        "select id, label, ip, created_at, last_seen_at, expires_at, revoked_at
           from staff_device where user_id = $1 order by last_seen_at desc limit 50",
    )
    .bind(user_id)
    .fetch_all(pool.raw())
    .await?)
}

/// Forgets one of the person's devices; false if it is not theirs or already revoked.
pub async fn revoke_device(
    pool: &AppPool,
    user_id: Uuid,
    device_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "update staff_device set revoked_at = $3
          where user_id = $1 and id = $2 and revoked_at is null",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .execute(pool.raw())
    .await?
    .rows_affected()
        == 1)
}

// ---------------------------------------------------------------------------------------------
// Password resets

/// Stores a reset link's token hash and queues the e-mail carrying `url`.
pub async fn create_password_reset(
    pool: &AppPool,
    user: &StaffUser,
    token_hash: &str,
    url: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let mut tx = pool.raw().begin().await?;
    sqlx::query(
        "insert into password_reset (id, user_id, token_hash, expires_at, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(user.id)
    .bind(token_hash)
    .bind(now + PASSWORD_RESET_TTL)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    queue_email(
        &mut tx,
        &PlatformEmail {
            to_address: user.email.clone(),
            to_name: Some(user.name.clone()),
            subject: "Set your PropLink password".into(),
            body_text: format!(
                "Hello {},\n\n{reason}\n\nChoose a new password here (the link works once, for one hour):\n\n    {url}\n\nIf you did not expect this, you can ignore this e-mail: your account is unchanged until the link is used.\n",
                user.name
            ),
            category: "password_reset".into(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user a live reset link belongs to (not yet used, not expired).
pub async fn find_password_reset(
    pool: &AppPool,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "select user_id from password_reset where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool.raw())
    .await?)
}

/// Uses up a reset link and sets the new password in one transaction. None when the link is
/// no longer live (used in the meantime, or expired).
pub async fn complete_password_reset(
    pool: &AppPool,
    token_hash: &str,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, DbError> {
    let mut tx = pool.raw().begin().await?;
    let user: Option<Uuid> = sqlx::query_scalar(
        "update password_reset set used_at = $2
          where token_hash = $1 and used_at is null and expires_at > $2
      returning user_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else {
        return Ok(None);
    };
    set_password_in(&mut tx, user, password_hash, now).await?;
    // Other outstanding links stop working.
    sqlx::query("update password_reset set used_at = $2 where user_id = $1 and used_at is null")
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    commit_ending_sessions(pool, tx).await?;
    Ok(Some(user))
}

// ---------------------------------------------------------------------------------------------
// Platform outbox and sign-in events

#[derive(Debug, Clone)]
pub struct PlatformEmail {
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub category: String,
}

pub async fn queue_email(conn: &mut PgConnection, email: &PlatformEmail) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into platform_email (id, to_address, to_name, subject, body_text, category)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&email.to_address)
    .bind(&email.to_name)
    .bind(&email.subject)
    .bind(&email.body_text)
    .bind(&email.category)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Queues a platform e-mail on its own.
pub async fn send_platform_email(pool: &AppPool, email: &PlatformEmail) -> Result<Uuid, DbError> {
    let mut conn = pool.raw().acquire().await?;
    queue_email(&mut conn, email).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlatformEmailRow {
    pub id: Uuid,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub category: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
}

/// The newest platform e-mails (the login host's development mailbox, tests).
pub async fn recent_platform_emails(
    pool: &AppPool,
    limit: i64,
) -> Result<Vec<PlatformEmailRow>, DbError> {
    Ok(sqlx::query_as(
        "select id, to_address, to_name, subject, body_text, category, status, attempts, created_at
           from platform_email order by created_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool.raw())
    .await?)
}

/// Records sign-in activity on the login host (unknown addresses included).
pub async fn record_sign_in_event(
    pool: &AppPool,
    user_id: Option<Uuid>,
    email: &str,
    kind: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "insert into sign_in_event (id, user_id, email, kind, ip, user_agent) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(truncate(email, 254))
    .bind(kind)
    .bind(ip)
    .bind(user_agent.map(|ua| truncate(ua, 300)))
    .execute(pool.raw())
    .await?;
    Ok(())
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

// ---------------------------------------------------------------------------------------------
// Sending the platform outbox (the worker, as the platform role)

/// Claims the next platform e-mail that is due, pushing its next attempt back by `retry_in` so
/// a crashed sender's claim runs out. None when nothing is due.
pub async fn claim_platform_email(
    pool: &crate::PlatformPool,
    now: OffsetDateTime,
    retry_in: Duration,
) -> Result<Option<PlatformEmailRow>, DbError> {
    Ok(sqlx::query_as(
        "update platform_email set attempts = attempts + 1, next_attempt_at = $2
          where id = (select id from platform_email
                       where status = 'queued' and next_attempt_at <= $1
                       order by next_attempt_at, id limit 1 for update skip locked)
      returning id, to_address, to_name, subject, body_text, category, status, attempts, created_at",
    )
    .bind(now)
    .bind(now + retry_in)
    .fetch_optional(pool.raw())
    .await?)
}

pub async fn mark_platform_email_sent(
    pool: &crate::PlatformPool,
    id: Uuid,
    provider_message_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query(
        "update platform_email set status = 'sent', sent_at = $3, provider_message_id = $2, last_error = null
          where id = $1",
    )
    .bind(id)
    .bind(provider_message_id)
    .bind(now)
    .execute(pool.raw())
    .await?;
    Ok(())
}

/// Records a failed attempt: `retry_at` None gives up (the message is marked failed).
pub async fn mark_platform_email_failed(
    pool: &crate::PlatformPool,
    id: Uuid,
    error: &str,
    retry_at: Option<OffsetDateTime>,
) -> Result<(), DbError> {
    sqlx::query(
        "update platform_email
            set last_error = $2,
                status = case when $3::timestamptz is null then 'failed' else status end,
                next_attempt_at = coalesce($3, next_attempt_at)
          where id = $1",
    )
    .bind(id)
    .bind(truncate(error, 1000))
    .bind(retry_at)
    .execute(pool.raw())
    .await?;
    Ok(())
}
