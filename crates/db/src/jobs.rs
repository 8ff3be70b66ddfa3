//! The job queue: work that leaves the request (DESIGN.md §6).
//!
//! - [`enqueue`] writes a job inside the caller's tenant transaction, so the job exists if and
//!   only if the caller's write commits. An idempotency key makes a repeat enqueue a no-op.
//! - A [`Worker`] claims due jobs across organisations as the platform role
//!   (`FOR UPDATE SKIP LOCKED`), marks them running under a lease, and runs each handler in a
//!   tenant transaction for the job's organisation. The handler's writes and the job's `done`
//!   mark commit together. A failure schedules a retry with exponential back-off; after
//!   `max_attempts` the job is `dead` and kept for inspection.
//! - If a worker dies mid-job its transaction rolls back and the lease runs out; another worker
//!   then reclaims the job. Nothing is lost, and nothing is half-done.

use crate::error::DbError;
use crate::pools::{AppPool, PlatformPool};
use crate::tenant::{Actor, TenantContext, TenantTx};
use proplink_domain::{Channel, OrgId};
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub max_attempts: i32,
    pub delay: Option<Duration>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            idempotency_key: None,
            max_attempts: 8,
            delay: None,
        }
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }
}

/// Queues a job in the caller's transaction. With an idempotency key already used in this
/// organisation, returns the existing job's id and queues nothing.
pub async fn enqueue(tx: &mut TenantTx, job: NewJob) -> Result<Uuid, DbError> {
    let org = tx.org().0;
    let delay_ms = job
        .delay
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "insert into job (organisation_id, id, kind, payload, idempotency_key, max_attempts, run_at)
         values ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::double precision / 1000))
         on conflict (organisation_id, idempotency_key) do nothing
         returning id",
    )
    .bind(org)
    .bind(Uuid::now_v7())
    .bind(&job.kind)
    .bind(&job.payload)
    .bind(&job.idempotency_key)
    .bind(job.max_attempts)
    .bind(delay_ms)
    .fetch_optional(tx.conn())
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => Ok(sqlx::query_scalar(
            "select id from job where organisation_id = $1 and idempotency_key = $2",
        )
        .bind(org)
        .bind(&job.idempotency_key)
        .fetch_one(tx.conn())
        .await?),
    }
}

/// A job as its handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub organisation_id: Uuid,
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
}

/// A job's row, for inspection (`proplink jobs`, tests).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobStatus {
    pub organisation_id: Uuid,
    pub id: Uuid,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

macro_rules! status_columns {
    () => {
        "organisation_id, id, kind, state, attempts, max_attempts, run_at, last_error, created_at, finished_at"
    };
}

pub async fn status(tx: &mut TenantTx, id: Uuid) -> Result<Option<JobStatus>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        status_columns!(),
        " from job where organisation_id = $1 and id = $2"
    ))
    .bind(tx.org().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Dead jobs across organisations, newest first, for operators.
pub async fn dead_jobs(pool: &PlatformPool, limit: i64) -> Result<Vec<JobStatus>, DbError> {
    Ok(sqlx::query_as(concat!(
        "select ",
        status_columns!(),
        " from job where state = 'dead' order by finished_at desc nulls last limit $1"
    ))
    .bind(limit)
    .fetch_all(pool.raw())
    .await?)
}

/// Why a handler failed. A permanent failure goes straight to `dead`.
#[derive(Debug, Clone)]
pub struct JobError {
    pub message: String,
    pub permanent: bool,
}

impl JobError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

impl From<DbError> for JobError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::ReadOnly(m) => Self::permanent(m),
            other => Self::retry(other.to_string()),
        }
    }
}

#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the work. Database writes go through `tx`; they commit with the job's completion.
    async fn run(&self, tx: &mut TenantTx, job: &Job) -> Result<(), JobError>;
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claimed job is reserved; a job whose worker vanished is reclaimed after it.
    pub lease: Duration,
    /// Idle workers look for due jobs at least this often (notifications wake them sooner).
    pub poll_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Jobs run at once by this process.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

/// The delay before retry number `attempts` (1-based): base × 2^(attempts−1), capped.
pub fn backoff(config: &WorkerConfig, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    config
        .backoff_base
        .saturating_mul(2_u32.saturating_pow(exp))
        .min(config.backoff_cap)
}

/// What one claim-and-run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        id: Uuid,
    },
    Retrying {
        id: Uuid,
        error: String,
    },
    Dead {
        id: Uuid,
        error: String,
    },
    /// Another worker took over the job (our lease ran out); our work was rolled back.
    LeaseLost {
        id: Uuid,
    },
}

pub struct Worker {
    app: AppPool,
    platform: PlatformPool,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    config: WorkerConfig,
    id: String,
}

impl Worker {
    pub fn new(app: AppPool, platform: PlatformPool, config: WorkerConfig) -> Self {
        let id = format!(
            "{}-{}-{}",
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..6]
        );
        Self {
            app,
            platform,
            handlers: HashMap::new(),
            config,
            id,
        }
    }

    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_owned(), handler);
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Kills jobs whose worker vanished during their last permitted attempt.
    async fn bury_abandoned(&self) -> Result<(), DbError> {
        sqlx::query(
            "update job set state = 'dead', finished_at = now(), locked_by = null, locked_until = null,
                    last_error = coalesce(last_error || '; ', '') || 'the worker stopped during the last permitted attempt'
              where state = 'running' and locked_until < now() and attempts >= max_attempts",
        )
        .execute(self.platform.raw())
        .await?;
        Ok(())
    }

    /// Takes the next due job. A job whose worker vanished during its last permitted attempt is
    /// not taken again; `bury_abandoned` marks it dead when the queue is idle.
    async fn claim(&self) -> Result<Option<Job>, DbError> {
        Ok(sqlx::query_as(
            "update job j
                set state = 'running', attempts = j.attempts + 1, locked_by = $1,
                    locked_until = now() + make_interval(secs => $2::double precision)
               from (select organisation_id, id from job
                      where (state = 'pending' and run_at <= now())
                         or (state = 'running' and locked_until < now() and attempts < max_attempts)
                      order by run_at
                      limit 1
                      for update skip locked) c
              where j.organisation_id = c.organisation_id and j.id = c.id
          returning j.organisation_id, j.id, j.kind, j.payload, j.idempotency_key, j.attempts, j.max_attempts",
        )
        .bind(&self.id)
        .bind(self.config.lease.as_secs_f64())
        .fetch_optional(self.platform.raw())
        .await?)
    }

    /// Claims and runs one due job, if there is one.
    pub async fn run_once(&self) -> Result<Option<Outcome>, DbError> {
        let Some(job) = self.claim().await? else {
            self.bury_abandoned().await?;
            return Ok(None);
        };
        let span = tracing::info_span!("job", kind = %job.kind, job_id = %job.id, org = %job.organisation_id, attempt = job.attempts);
        let result = self.execute(&job).instrument(span.clone()).await;
        let outcome = match result {
            Ok(true) => Outcome::Done { id: job.id },
            Ok(false) => Outcome::LeaseLost { id: job.id },
            Err(err) => self.record_failure(&job, err).await?,
        };
        let _enter = span.enter();
        match &outcome {
            Outcome::Done { .. } => tracing::info!("job done"),
            Outcome::Retrying { error, .. } => tracing::warn!(%error, "job failed; will retry"),
            Outcome::Dead { error, .. } => tracing::error!(%error, "job dead"),
            Outcome::LeaseLost { .. } => tracing::warn!("job lease lost; work rolled back"),
        }
        Ok(Some(outcome))
    }

    /// Runs the handler and, on success, marks the job done in the same transaction.
    /// Ok(false): the lease was lost, everything rolled back.
    async fn execute(&self, job: &Job) -> Result<bool, JobError> {
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            return Err(JobError::permanent(format!(
                "no handler is registered for jobs of kind \"{}\"",
                job.kind
            )));
        };
        let ctx = TenantContext {
            org: OrgId(job.organisation_id),
            actor: Actor::system(),
            channel: Channel::Worker,
            request_id: Some(format!("job:{}", job.id)),
        };
        let mut tx = self.app.begin(&ctx).await?;
        let budget = self.config.lease.mul_f64(0.9);
        match tokio::time::timeout(budget, handler.run(&mut tx, job)).await {
            Err(_) => {
                return Err(JobError::retry(format!(
                    "timed out after {} s",
                    budget.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {}
        }
        let marked = sqlx::query(
            "update job set state = 'done', finished_at = now(), locked_by = null, locked_until = null
              where organisation_id = $1 and id = $2 and locked_by = $3 and state = 'running'",
        )
        .bind(job.organisation_id)
        .bind(job.id)
        .bind(&self.id)
        .execute(tx.conn())
        .await
        .map_err(DbError::from)?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn record_failure(&self, job: &Job, err: JobError) -> Result<Outcome, DbError> {
        let dead = err.permanent || job.attempts >= job.max_attempts;
        let delay = backoff(&self.config, job.attempts);
        let message: String = err.message.chars().take(2000).collect();
        sqlx::query(
            "update job set state = $4, last_error = $5, locked_by = null, locked_until = null,
                    run_at = case when $4 = 'pending' then now() + make_interval(secs => $6::double precision) else run_at end,
                    finished_at = case when $4 = 'dead' then now() else null end
              where organisation_id = $1 and id = $2 and locked_by = $3",
        )
        .bind(job.organisation_id)
        .bind(job.id)
        .bind(&self.id)
        .bind(if dead { "dead" } else { "pending" })
        .bind(&message)
        .bind(delay.as_secs_f64())
        .execute(self.platform.raw())
        .await?;
        Ok(if dead {
            Outcome::Dead {
                id: job.id,
                error: message,
            }
        } else {
            Outcome::Retrying {
                id: job.id,
                error: message,
            }
        })
    }

    /// Runs until `shutdown` is cancelled; a job in progress is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(
            worker.platform.clone(),
            wake.clone(),
            shutdown.clone(),
        ));
        let mut loops = Vec::new();
        for _ in 0..worker.config.concurrency.max(1) {
            let (worker, wake, shutdown) = (worker.clone(), wake.clone(), shutdown.clone());
            loops.push(tokio::spawn(async move {
                while !shutdown.is_cancelled() {
                    match worker.run_once().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "job queue unavailable; retrying"),
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(worker.config.poll_interval) => {}
                    }
                }
            }));
        }
        for l in loops {
            let _ = l.await;
        }
        listener.abort();
    }
}

/// Relays `proplink_jobs` notifications to idle worker loops.
async fn listen(pool: PlatformPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(pool.raw()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot connect; polling only");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if listener.listen("proplink_jobs").await.is_err() {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => wake.notify_waiters(),
                    Err(_) => break,
                }
            }
        }
    }
}
