//! `proplink bench web`: requests per second and latency of the signed-in admin dashboard and
//! of the login page, under `wrk` at 50 connections, against the real server, database and
//! production Argon2 parameters, on this machine. Prints figures; asserts nothing.

use crate::demo;
use proplink_auth::links::new_token;
use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::{
    Actor, AppPool, PlatformPool, TenantContext, access, organisation, setup, staff,
};
use proplink_domain::Channel;
use proplink_web::{AppState, Domains, WebSettings};
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::process::Command;
use time::OffsetDateTime;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub async fn run(
    secs: u32,
    connections: u32,
    path: String,
    pool: u32,
    dir: Option<PathBuf>,
) -> Result<(), String> {
    let wrk = which("wrk").ok_or(
        "`wrk` is not installed: `apt-get install wrk` (the load tool this benchmark drives)",
    )?;
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-web-{}", std::process::id()))
    });
    let bins = PgBinaries::discover().map_err(e)?;
    let cluster = Cluster::prepare(bins, &dir, Durability::Durable).map_err(e)?;
    cluster.start().map_err(e)?;
    let result = measure(
        &cluster,
        &wrk,
        secs.max(1),
        connections.max(1),
        &path,
        pool.max(1),
    )
    .await;
    let _ = cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

async fn measure(
    cluster: &Cluster,
    wrk: &PathBuf,
    secs: u32,
    connections: u32,
    path: &str,
    pool: u32,
) -> Result<(), String> {
    let db = "bench_web";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    su.close().await.map_err(e)?;
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let settings = PoolSettings {
        max_connections: pool,
        ..PoolSettings::default()
    };
    let app = AppPool::new(&cluster.url(APP_ROLE, db), &settings).map_err(e)?;
    let platform = PlatformPool::new(&cluster.url(PLATFORM_ROLE, db), &settings).map_err(e)?;
    println!("Loading the demo organisations …");
    demo::load_demo_data(
        &app,
        &platform,
        1,
        "http://contractorport.localhost",
        None,
        &proplink_auth::seal::DataKey::generate(),
    )
    .await?;

    // A session for Goldcrest's owner, as the hand-off would make it.
    let org = organisation::find_by_slug(&app, "goldcrest")
        .await
        .map_err(e)?
        .ok_or("the demo organisation is missing")?;
    let owner = staff::find_by_email(&app, "olivia.owner@goldcrest.example.co.uk")
        .await
        .map_err(e)?
        .ok_or("the demo owner is missing")?;
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: None,
    };
    let (token, hash) = new_token();
    let mut tx = app.begin(&ctx).await.map_err(e)?;
    let member = access::member_by_user(&mut tx, owner.id)
        .await
        .map_err(e)?
        .ok_or("the demo owner has no membership")?;
    access::start_session(
        &mut tx,
        member.membership_id,
        owner.id,
        &hash,
        None,
        None,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(e)?;
    tx.commit().await.map_err(e)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(e)?;
    let port = listener.local_addr().map_err(e)?.port();
    let mut web = WebSettings::new(Domains::default());
    web.public_port = Some(port);
    let state = AppState::new(app.clone(), web).await.map_err(e)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(proplink_web::serve(listener, state, stop.clone()));

    println!(
        "\n{connections} connections, {secs} s each, wrk with up to 2 threads, server (pool of {pool} database connections) and PostgreSQL on this machine ({} cores):",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let url = format!("http://127.0.0.1:{port}");
    let cookie = format!("Cookie: pl_session={token}");
    let cases = [
        (
            "signed-in admin page",
            format!("{url}{path}"),
            "Host: goldcrest.proplink.localhost",
            Some(cookie.as_str()),
        ),
        (
            "login page",
            format!("{url}/"),
            "Host: login.proplink.localhost",
            None,
        ),
    ];
    for (label, target, host, cookie) in cases {
        // A short warm-up, then the measured run.
        let _ = wrk_run(wrk, &target, host, cookie, 2, connections);
        let out = wrk_run(wrk, &target, host, cookie, secs, connections)?;
        let rps = field(&out, "Requests/sec:").unwrap_or_else(|| "?".into());
        let p50 = percentile(&out, "50%").unwrap_or_else(|| "?".into());
        let p99 = percentile(&out, "99%").unwrap_or_else(|| "?".into());
        let non2xx = field(&out, "Non-2xx or 3xx responses:").unwrap_or_else(|| "0".into());
        let transfer = field(&out, "Transfer/sec:").unwrap_or_else(|| "?".into());
        println!(
            "  {label:<22} {rps:>10} req/s   p50 {p50:>8}   p99 {p99:>8}   non-2xx {non2xx}   {transfer}/s"
        );
    }
    stop.cancel();
    let _ = server.await;
    app.close().await;
    platform.close().await;
    Ok(())
}

fn wrk_run(
    wrk: &PathBuf,
    url: &str,
    host: &str,
    cookie: Option<&str>,
    secs: u32,
    connections: u32,
) -> Result<String, String> {
    let mut cmd = Command::new(wrk);
    cmd.args([
        &format!("-t{}", connections.min(2)),
        &format!("-c{connections}"),
        &format!("-d{secs}s"),
        "--latency",
        "-H",
        host,
    ]);
    if let Some(c) = cookie {
        cmd.args(["-H", c]);
    }
    cmd.arg(url);
    let out = cmd.output().map_err(|err| format!("running wrk: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value after `label` on wrk's output line that starts with it.
fn field(out: &str, label: &str) -> Option<String> {
    out.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
}

/// A latency percentile from wrk's `--latency` distribution ("     99%   12.34ms").
fn percentile(out: &str, p: &str) -> Option<String> {
    out.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(p).map(|v| v.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%    1.20ms\n     99%   15.01ms\n  1000 requests in 10.00s\nRequests/sec:   1234.56\n";
        assert_eq!(field(out, "Requests/sec:").as_deref(), Some("1234.56"));
        assert_eq!(percentile(out, "50%").as_deref(), Some("1.20ms"));
        assert_eq!(percentile(out, "99%").as_deref(), Some("15.01ms"));
        assert_eq!(field(out, "Non-2xx or 3xx responses:"), None);
    }
}
