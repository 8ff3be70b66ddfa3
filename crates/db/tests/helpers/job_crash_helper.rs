//! Test helper (not part of the product): a worker whose one job writes to the database and
//! then hangs, so that `tests/jobs.rs` can kill it with SIGKILL mid-job.

use proplink_db::jobs::{Job, JobError, JobHandler, Worker, WorkerConfig};
use proplink_db::pools::PoolSettings;
use proplink_db::{AppPool, PlatformPool, TenantTx, email};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

struct WriteThenHang;

#[async_trait::async_trait]
impl JobHandler for WriteThenHang {
    async fn run(&self, tx: &mut TenantTx, job: &Job) -> Result<(), JobError> {
        let id = job.payload["message_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JobError::permanent("no id"))?;
        email::mark_failed(tx, id, "handled by a job").await?;
        println!("MID-JOB");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let app_url = std::env::var("PROPLINK_APP_URL").map_err(|_| "PROPLINK_APP_URL is not set")?;
    let platform_url =
        std::env::var("PROPLINK_PLATFORM_URL").map_err(|_| "PROPLINK_PLATFORM_URL is not set")?;
    let settings = PoolSettings::default();
    let app = AppPool::new(&app_url, &settings).map_err(|e| e.to_string())?;
    let platform = PlatformPool::new(&platform_url, &settings).map_err(|e| e.to_string())?;
    let config = WorkerConfig {
        lease: Duration::from_secs(3),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(app, platform, config);
    worker.register("test.slow", Arc::new(WriteThenHang));
    worker.run_once().await.map_err(|e| e.to_string())?;
    Ok(())
}
