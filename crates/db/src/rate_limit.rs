//! Abuse limits shared by every web process: fixed-window counters in PostgreSQL.
//! Keys name what is limited and for whom, e.g. `sign_in:ip:203.0.113.9` or
//! `sign_in:account:<user id>`.

use crate::error::DbError;
use crate::pools::AppPool;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i32,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        remaining: i32,
    },
    /// Refused until the window ends.
    Refused {
        retry_after: Duration,
    },
}

fn window_start(now: OffsetDateTime, window: Duration) -> OffsetDateTime {
    let len = window.whole_seconds().max(1);
    let start = now.unix_timestamp().div_euclid(len) * len;
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(now)
}

/// Counts one attempt against `key` and says whether it is allowed.
pub async fn hit(
    pool: &AppPool,
    key: &str,
    limit: Limit,
    now: OffsetDateTime,
) -> Result<Decision, DbError> {
    let start = window_start(now, limit.window);
    let hits: i32 = sqlx::query_scalar(
        "insert into rate_limit (key, window_start, hits) values ($1, $2, 1)
         on conflict (key, window_start) do update set hits = rate_limit.hits + 1
         returning hits",
    )
    .bind(key)
    .bind(start)
    .fetch_one(pool.raw())
    .await?;
    Ok(if hits <= limit.max {
        Decision::Allowed {
            remaining: limit.max - hits,
        }
    } else {
        Decision::Refused {
            retry_after: start + limit.window - now,
        }
    })
}

/// Deletes windows that ended before `before`.
pub async fn sweep(pool: &AppPool, before: OffsetDateTime) -> Result<u64, DbError> {
    Ok(
        sqlx::query("delete from rate_limit where window_start < $1")
            .bind(before)
            .execute(pool.raw())
            .await?
            .rows_affected(),
    )
}
