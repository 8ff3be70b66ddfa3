//! `proplink bench residence` (issue 8): ResidencePort under load, against the real server
//! and database on this machine, with the demo organisations loaded.
//!
//! 1. **Pages:** `--residents` signed-in residents at once (each its own session and unit),
//!    each loading their home page and their unit's statement in turn for `--secs` seconds.
//!    Prints requests/s and p50/p95/p99/max per page (target: p99 < 30 ms at 100 residents).
//! 2. **Webhooks:** `--events` signed Stripe `checkout.session.completed` events for as many
//!    pending card payments, sent by `--senders` concurrent senders to the webhook endpoint;
//!    each is verified, stored once, posts a receipt and queues a receipt e-mail. Then every
//!    event is delivered again: nothing may change (target ≥ 500 events/s).
//!
//! Prints figures; asserts nothing but the bookkeeping (every page 200, one receipt per event).

use crate::demo;
use proplink_auth::links::new_token;
use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::receivables;
use proplink_db::resident::{self, NewCardPayment};
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, organisation, portal, setup};
use proplink_domain::Channel;
use proplink_web::{AppState, Domains, WebSettings};
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub struct Options {
    pub residents: usize,
    pub secs: u64,
    /// Each resident's pause between pages (a person reading), in milliseconds.
    pub think_ms: u64,
    pub events: usize,
    pub senders: usize,
    pub pool: u32,
    pub dir: Option<PathBuf>,
    /// Print the statements each phase spent its time in (pg_stat_statements).
    pub statements: bool,
}

pub async fn run(o: Options) -> Result<(), String> {
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-residence-{}", std::process::id()))
    });
    let bins = PgBinaries::discover().map_err(e)?;
    let cluster = Cluster::prepare(bins, &dir, Durability::Durable).map_err(e)?;
    cluster.start().map_err(e)?;
    let result = measure(&cluster, &o).await;
    let _ = cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

struct Resident {
    cookie: String,
    unit: Uuid,
    account: Uuid,
}

async fn measure(cluster: &Cluster, o: &Options) -> Result<(), String> {
    let db = "bench_residence";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    if o.statements {
        sqlx::query("alter system set shared_preload_libraries = 'pg_stat_statements'")
            .execute(&mut su)
            .await
            .map_err(e)?;
    }
    su.close().await.map_err(e)?;
    if o.statements {
        cluster.stop().map_err(e)?;
        cluster.start().map_err(e)?;
    }
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let settings = PoolSettings {
        max_connections: o.pool,
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
    // Statistics as autovacuum keeps them on a running server (a fresh load has none yet).
    let mut owner = PgConnection::connect(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    sqlx::query("analyze")
        .execute(&mut owner)
        .await
        .map_err(e)?;
    owner.close().await.map_err(e)?;
    let org = organisation::find_by_slug(&app, "goldcrest")
        .await
        .map_err(e)?
        .ok_or("the demo organisation is missing")?;
    let ctx = TenantContext {
        org: org.id,
        actor: Actor::system(),
        channel: Channel::Admin,
        request_id: None,
    };

    // Residents: leaseholders of the demo with an e-mail address, each with an account and a
    // session, as the sign-in would make them.
    let now = OffsetDateTime::now_utc();
    let mut tx = app.begin(&ctx).await.map_err(e)?;
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let holders: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select distinct on (h.contact_id) h.contact_id, l.unit_id
           from lease_holder h
           join lease l on l.organisation_id = h.organisation_id and l.id = h.lease_id
          where h.organisation_id = $1 and l.ends_on is null
            and exists (select from contact_email m where m.organisation_id = h.organisation_id
                         and m.contact_id = h.contact_id)
          order by h.contact_id
          limit $2",
    )
    .bind(org.id.0)
    .bind(o.residents as i64)
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    if holders.is_empty() {
        return Err("the demo has no leaseholders with e-mail addresses".into());
    }
    let mut residents = Vec::new();
    for (contact, unit) in &holders {
        let account = match resident::invite(
            &mut tx,
            *contact,
            "http://goldcrest.residenceport.localhost",
            &org.name,
            "Bench",
            now,
        )
        .await
        {
            Ok(a) => a,
            Err(err) => return Err(format!("inviting a demo resident: {err}")),
        };
        let (token, hash) = new_token();
        portal::start_session(&mut tx, account, &hash, now)
            .await
            .map_err(e)?;
        residents.push(Resident {
            cookie: format!("pl_resident={}.{token}", org.id.0),
            unit: *unit,
            account,
        });
    }
    tx.commit().await.map_err(e)?;
    // Fill up to the number asked for with more sessions of the same residents.
    let distinct = residents.len();
    while residents.len() < o.residents {
        let r = &residents[residents.len() % distinct];
        let (token, hash) = new_token();
        let mut tx = app.begin(&ctx).await.map_err(e)?;
        portal::start_session(&mut tx, r.account, &hash, now)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        let extra = Resident {
            cookie: format!("pl_resident={}.{token}", org.id.0),
            unit: r.unit,
            account: r.account,
        };
        residents.push(extra);
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(e)?;
    let addr = listener.local_addr().map_err(e)?;
    let mut web = WebSettings::new(Domains::default());
    web.public_port = Some(addr.port());
    let secret = web.payments.stripe_webhook.clone();
    let state = AppState::new(app.clone(), web).await.map_err(e)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(proplink_web::serve(listener, state, stop.clone()));
    let client = reqwest::Client::builder()
        .resolve("goldcrest.residenceport.localhost", addr)
        .resolve("api.proplink.localhost", addr)
        .pool_max_idle_per_host(o.residents.max(o.senders) + 8)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(e)?;
    let base = format!("http://goldcrest.residenceport.localhost:{}", addr.port());

    println!(
        "\n{} residents at once ({distinct} distinct accounts), {} s; server pool of {} database connections; this machine has {} cores.",
        residents.len(),
        o.secs,
        o.pool,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    // A short warm-up, then the measured runs: residents reading between pages, then every
    // resident loading pages back to back (the server saturated).
    let think = Duration::from_millis(o.think_ms);
    let _ = pages(
        &client,
        &base,
        &residents,
        Duration::from_secs(2),
        Duration::ZERO,
    )
    .await?;
    for (label, pause) in [
        (
            format!("each pausing {} ms between pages", o.think_ms),
            think,
        ),
        (
            "back to back, no pause (saturation)".to_owned(),
            Duration::ZERO,
        ),
    ] {
        println!("  {} residents {label}:", residents.len());
        if o.statements && pause.is_zero() {
            crate::bench_payables::statements_reset(cluster, db).await?;
        }
        let (home, statement, failures) = pages(
            &client,
            &base,
            &residents,
            Duration::from_secs(o.secs),
            pause,
        )
        .await?;
        if o.statements && pause.is_zero() {
            crate::bench_payables::statements_print(cluster, db).await?;
        }
        report("home page", &home, o.secs);
        report("unit statement", &statement, o.secs);
        if failures > 0 {
            println!("    {failures} responses were not 200");
        }
    }

    // Webhooks: pending card payments of £1.00 on the demo's approved demands.
    let invoices: Vec<Uuid> = sqlx::query_scalar(
        "select id from debtor_invoice where organisation_id = $1
            and status in ('approved', 'sent', 'part_paid', 'paid') order by id",
    )
    .bind(org.id.0)
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    if invoices.is_empty() {
        return Err("the demo has no approved demands".into());
    }
    let mut tx = app.begin(&ctx).await.map_err(e)?;
    let mut sessions = Vec::new();
    let account = residents[0].account;
    for i in 0..o.events {
        let invoice = receivables::find_invoice(&mut tx, invoices[i % invoices.len()])
            .await
            .map_err(e)?
            .ok_or("a demand vanished")?;
        let id = Uuid::now_v7();
        let session = format!("cs_test_{}", id.simple());
        resident::record_card_checkout(
            &mut tx,
            &NewCardPayment {
                id,
                invoice: &invoice,
                account_id: account,
                contact_id: invoice.contact_id,
                test_mode: true,
                amount_pence: 100,
                session_ref: &session,
                checkout_url: "/bench",
            },
        )
        .await
        .map_err(e)?;
        sessions.push(session);
    }
    tx.commit().await.map_err(e)?;
    let created = OffsetDateTime::now_utc().unix_timestamp();
    let bodies: Vec<Vec<u8>> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::to_vec(&serde_json::json!({
                "id": format!("evt_bench_{i:08}"), "object": "event",
                "type": "checkout.session.completed", "created": created, "livemode": false,
                "data": { "object": { "id": s, "object": "checkout.session", "status": "complete",
                    "payment_status": "paid", "amount_total": 100, "currency": "gbp",
                    "payment_intent": format!("pi_bench_{i:08}"),
                    "metadata": { "proplink_org": org.id.0.to_string() } } }
            }))
            .unwrap_or_default()
        })
        .collect();
    let receipts_before: i64 =
        sqlx::query_scalar("select count(*) from receipt where organisation_id = $1")
            .bind(org.id.0)
            .fetch_one(&mut su)
            .await
            .map_err(e)?;
    let url = format!(
        "http://api.proplink.localhost:{}/webhooks/stripe/goldcrest",
        addr.port()
    );
    println!(
        "\n{} signed Stripe events, {} senders at once:",
        bodies.len(),
        o.senders
    );
    if o.statements {
        crate::bench_payables::statements_reset(cluster, db).await?;
    }
    let (elapsed, failed) = deliver(&client, &url, &secret, &bodies, o.senders).await;
    if o.statements {
        crate::bench_payables::statements_print(cluster, db).await?;
    }
    println!(
        "  first delivery (verify, store, post a receipt, queue its e-mail): {:>8.0} events/s ({} in {:.2} s, {failed} refused)",
        bodies.len() as f64 / elapsed.as_secs_f64(),
        bodies.len(),
        elapsed.as_secs_f64()
    );
    let (elapsed, failed) = deliver(&client, &url, &secret, &bodies, o.senders).await;
    println!(
        "  every event again (duplicates: verify, find it stored):          {:>8.0} events/s ({} in {:.2} s, {failed} refused)",
        bodies.len() as f64 / elapsed.as_secs_f64(),
        bodies.len(),
        elapsed.as_secs_f64()
    );
    let receipts_after: i64 =
        sqlx::query_scalar("select count(*) from receipt where organisation_id = $1")
            .bind(org.id.0)
            .fetch_one(&mut su)
            .await
            .map_err(e)?;
    let paid: i64 = sqlx::query_scalar(
        "select count(*) from resident_payment where organisation_id = $1 and status = 'paid' and checkout_url = '/bench'",
    )
    .bind(org.id.0)
    .fetch_one(&mut su)
    .await
    .map_err(e)?;
    println!(
        "  receipts posted: {} for {} events, payments paid: {paid} (each once, whatever the deliveries)",
        receipts_after - receipts_before,
        bodies.len()
    );
    stop.cancel();
    let _ = server.await;
    app.close().await;
    platform.close().await;
    Ok(())
}

/// Every resident loads their home page, then their statement, again and again until `run`
/// has passed. Latencies per page, and how many answers were not 200.
async fn pages(
    client: &reqwest::Client,
    base: &str,
    residents: &[Resident],
    run: Duration,
    think: Duration,
) -> Result<(Vec<Duration>, Vec<Duration>, usize), String> {
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for (i, r) in residents.iter().enumerate() {
        // Residents start spread over one pause, not all at once.
        let offset = think.mul_f64(i as f64 / residents.len().max(1) as f64);
        let client = client.clone();
        let home = format!("{base}/");
        let statement = format!("{base}/units/{}/statement", r.unit);
        let cookie = r.cookie.clone();
        tasks.push(tokio::spawn(async move {
            let (mut h, mut s, mut failed) = (Vec::new(), Vec::new(), 0usize);
            tokio::time::sleep(offset).await;
            while Instant::now() < until {
                for (url, into) in [(&home, &mut h), (&statement, &mut s)] {
                    let started = Instant::now();
                    let answer = client
                        .get(url.as_str())
                        .header("cookie", &cookie)
                        .send()
                        .await;
                    match answer {
                        Ok(resp) if resp.status() == 200 => {
                            let _ = resp.bytes().await;
                            into.push(started.elapsed());
                        }
                        _ => failed += 1,
                    }
                    if !think.is_zero() {
                        tokio::time::sleep(think).await;
                    }
                }
            }
            (h, s, failed)
        }));
    }
    let (mut home, mut statement, mut failures) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (h, s, f) = t.await.map_err(e)?;
        home.extend(h);
        statement.extend(s);
        failures += f;
    }
    Ok((home, statement, failures))
}

fn report(label: &str, latencies: &[Duration], secs: u64) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1000.0
    };
    println!(
        "    {label:<16} {:>8.0} req/s   p50 {:>6.2} ms   p95 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   ({} requests)",
        sorted.len() as f64 / secs.max(1) as f64,
        at(0.50),
        at(0.95),
        at(0.99),
        sorted
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        sorted.len()
    );
}

/// Sends every body once, `senders` at a time, signed now. The time taken and how many were
/// not answered 200.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &proplink_integrations::payments::stripe::WebhookSecret,
    bodies: &[Vec<u8>],
    senders: usize,
) -> (Duration, usize) {
    let queue = Arc::new(std::sync::Mutex::new(bodies.to_vec()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders.max(1) {
        let (client, url, secret, queue) = (
            client.clone(),
            url.to_owned(),
            secret.clone(),
            Arc::clone(&queue),
        );
        tasks.push(tokio::spawn(async move {
            let mut failed = 0usize;
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(body) = next else { break };
                let signature = secret.sign(&body, OffsetDateTime::now_utc().unix_timestamp());
                let answer = client
                    .post(url.as_str())
                    .header("stripe-signature", signature)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.bytes().await;
                    }
                    _ => failed += 1,
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(0);
    }
    (started.elapsed(), failed)
}
