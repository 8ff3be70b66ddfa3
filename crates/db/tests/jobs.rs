//! The job queue: transactional enqueue, idempotency, retries with back-off, dead jobs, and
//! surviving a worker killed mid-job.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails by panicking, helpers included"
)]

use proplink_db::email;
use proplink_db::jobs::{self, Job, JobError, JobHandler, NewJob, Outcome, Worker, WorkerConfig};
use proplink_db::{TenantTx, audit};
use proplink_test_support::{TestDb, sample_email};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Marks the payload's message failed: a visible, audited effect of the job.
struct MarkMessage {
    failures_first: u32,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl JobHandler for MarkMessage {
    async fn run(&self, tx: &mut TenantTx, job: &Job) -> Result<(), JobError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let id: Uuid = job.payload["message_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JobError::permanent("no id"))?;
        email::mark_failed(tx, id, "handled by a job").await?;
        if call <= self.failures_first {
            return Err(JobError::retry(format!("failure number {call}")));
        }
        Ok(())
    }
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        backoff_base: Duration::ZERO,
        lease: Duration::from_secs(30),
        ..WorkerConfig::default()
    }
}

async fn queue_marker(
    db: &TestDb,
    org: &proplink_db::organisation::Organisation,
    max_attempts: i32,
) -> (Uuid, Uuid) {
    let mut tx = db.app.begin(&db.staff(org, "Jane Doe")).await.unwrap();
    let message = email::queue(&mut tx, sample_email("patel@example.com"))
        .await
        .unwrap();
    let job = jobs::enqueue(
        &mut tx,
        NewJob::new("test.mark", serde_json::json!({ "message_id": message }))
            .max_attempts(max_attempts),
    )
    .await
    .unwrap();
    // The message's own send job is not under test here.
    sqlx::query("update job set state = 'done' where kind = 'email.send'")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (message, job)
}

#[tokio::test]
async fn a_job_exists_only_if_the_callers_transaction_commits() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let id = jobs::enqueue(&mut tx, NewJob::new("test.mark", serde_json::json!({})))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    assert!(jobs::status(&mut tx, id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_idempotency_key_queues_a_job_once() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let a = jobs::enqueue(
        &mut tx,
        NewJob::new("test.mark", serde_json::json!({})).idempotency_key("demand-run-2026-05"),
    )
    .await
    .unwrap();
    let b = jobs::enqueue(
        &mut tx,
        NewJob::new("test.mark", serde_json::json!({})).idempotency_key("demand-run-2026-05"),
    )
    .await
    .unwrap();
    assert_eq!(a, b);
    let n: i64 =
        sqlx::query_scalar("select count(*) from job where idempotency_key = 'demand-run-2026-05'")
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_successful_job_commits_its_work_and_completion_together() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (message, job) = queue_marker(&db, &org, 5).await;
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), quick());
    worker.register(
        "test.mark",
        Arc::new(MarkMessage {
            failures_first: 0,
            calls: AtomicU32::new(0),
        }),
    );
    assert_eq!(
        worker.run_once().await.unwrap(),
        Some(Outcome::Done { id: job })
    );
    assert_eq!(
        worker.run_once().await.unwrap(),
        None,
        "nothing else is due"
    );

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let status = jobs::status(&mut tx, job).await.unwrap().unwrap();
    assert_eq!((status.state.as_str(), status.attempts), ("done", 1));
    let msg = email::get(&mut tx, message).await.unwrap().unwrap();
    assert_eq!(msg.status, "failed");
    // The job's write is audited as the worker's.
    let history = audit::history(&mut tx, "email_message", &message.to_string())
        .await
        .unwrap();
    assert_eq!(
        (history[0].actor_kind.as_str(), history[0].channel.as_str()),
        ("system", "worker")
    );
}

#[tokio::test]
async fn failures_retry_with_backoff_then_the_job_is_kept_dead() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (message, job) = queue_marker(&db, &org, 3).await;
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), quick());
    worker.register(
        "test.mark",
        Arc::new(MarkMessage {
            failures_first: 10,
            calls: AtomicU32::new(0),
        }),
    );
    assert!(matches!(
        worker.run_once().await.unwrap(),
        Some(Outcome::Retrying { .. })
    ));
    assert!(matches!(
        worker.run_once().await.unwrap(),
        Some(Outcome::Retrying { .. })
    ));
    assert_eq!(
        worker.run_once().await.unwrap(),
        Some(Outcome::Dead {
            id: job,
            error: "failure number 3".into()
        })
    );
    assert_eq!(worker.run_once().await.unwrap(), None);

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let status = jobs::status(&mut tx, job).await.unwrap().unwrap();
    assert_eq!((status.state.as_str(), status.attempts), ("dead", 3));
    assert_eq!(status.last_error.as_deref(), Some("failure number 3"));
    // Every failed attempt rolled back its work.
    assert_eq!(
        email::get(&mut tx, message).await.unwrap().unwrap().status,
        "queued"
    );
    let dead = jobs::dead_jobs(&db.platform, 10).await.unwrap();
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job]);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let c = WorkerConfig {
        backoff_base: Duration::from_secs(5),
        backoff_cap: Duration::from_secs(60),
        ..WorkerConfig::default()
    };
    let delays: Vec<u64> = (1..=6).map(|n| jobs::backoff(&c, n).as_secs()).collect();
    assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (_, job) = queue_marker(&db, &org, 5).await;
    let config = WorkerConfig {
        backoff_base: Duration::from_secs(60),
        ..quick()
    };
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), config);
    worker.register(
        "test.mark",
        Arc::new(MarkMessage {
            failures_first: 1,
            calls: AtomicU32::new(0),
        }),
    );
    assert!(matches!(
        worker.run_once().await.unwrap(),
        Some(Outcome::Retrying { .. })
    ));
    assert_eq!(
        worker.run_once().await.unwrap(),
        None,
        "the retry is not due for a minute"
    );
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let due_in: f64 = sqlx::query_scalar(
        "select extract(epoch from run_at - now())::float8 from job where id = $1",
    )
    .bind(job)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert!((50.0..=61.0).contains(&due_in), "retry due in {due_in} s");
}

#[tokio::test]
async fn a_job_of_unknown_kind_is_dead_at_once() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let job = jobs::enqueue(&mut tx, NewJob::new("no.such.kind", serde_json::json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let worker = Worker::new(db.app.clone(), db.platform.clone(), quick());
    match worker.run_once().await.unwrap() {
        Some(Outcome::Dead { id, error }) => {
            assert_eq!(id, job);
            assert!(error.contains("no handler"), "{error}");
        }
        other => panic!("expected dead, got {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let message = email::queue(&mut tx, sample_email("patel@example.com"))
        .await
        .unwrap();
    sqlx::query("update job set state = 'done' where kind = 'email.send'")
        .execute(tx.conn())
        .await
        .unwrap();
    let job = jobs::enqueue(
        &mut tx,
        NewJob::new("test.slow", serde_json::json!({ "message_id": message })),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // A separate worker process takes the job, writes, and hangs; we kill it with SIGKILL.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_proplink-job-crash-helper"))
        .env("PROPLINK_APP_URL", db.url("proplink_app"))
        .env("PROPLINK_PLATFORM_URL", db.url("proplink_platform"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next())
        .await
        .unwrap();
    assert_eq!(
        line.and_then(Result::ok).as_deref(),
        Some("MID-JOB"),
        "the helper never got mid-job"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let status = jobs::status(&mut tx, job).await.unwrap().unwrap();
    assert_eq!(
        (status.state.as_str(), status.attempts),
        ("running", 1),
        "the job is still reserved by the dead worker"
    );
    assert_eq!(
        email::get(&mut tx, message).await.unwrap().unwrap().status,
        "queued",
        "the half-done work rolled back"
    );
    drop(tx);

    // Once the dead worker's lease runs out, another worker finishes the job exactly once.
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), quick());
    worker.register(
        "test.slow",
        Arc::new(MarkMessage {
            failures_first: 0,
            calls: AtomicU32::new(0),
        }),
    );
    let mut outcome = None;
    for _ in 0..100 {
        outcome = worker.run_once().await.unwrap();
        if outcome.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome, Some(Outcome::Done { id: job }));
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let status = jobs::status(&mut tx, job).await.unwrap().unwrap();
    assert_eq!((status.state.as_str(), status.attempts), ("done", 2));
    assert_eq!(
        email::get(&mut tx, message).await.unwrap().unwrap().status,
        "failed"
    );
    let updates = audit::history(&mut tx, "email_message", &message.to_string())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.operation == "update")
        .count();
    assert_eq!(updates, 1, "the job's write happened exactly once");
}

#[tokio::test]
async fn a_job_abandoned_on_its_last_attempt_is_not_run_again_but_kept_dead() {
    let db = TestDb::new().await;
    let org = db.org("goldcrest", "Goldcrest Estates").await;
    let (_, job) = queue_marker(&db, &org, 1).await;
    // As if a worker took it (its only permitted attempt) and vanished.
    let mut su = db.superuser().await;
    sqlx::query("update job set state = 'running', attempts = 1, locked_by = 'gone', locked_until = now() - interval '1 second' where id = $1")
        .bind(job)
        .execute(&mut su)
        .await
        .unwrap();
    let mut worker = Worker::new(db.app.clone(), db.platform.clone(), quick());
    worker.register(
        "test.mark",
        Arc::new(MarkMessage {
            failures_first: 0,
            calls: AtomicU32::new(0),
        }),
    );
    assert_eq!(worker.run_once().await.unwrap(), None);
    let mut tx = db.app.begin(&db.staff(&org, "Jane Doe")).await.unwrap();
    let status = jobs::status(&mut tx, job).await.unwrap().unwrap();
    assert_eq!((status.state.as_str(), status.attempts), ("dead", 1));
    assert_eq!(
        status.last_error.as_deref(),
        Some("the worker stopped during the last permitted attempt")
    );
}
