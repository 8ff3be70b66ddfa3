//! `proplink bench portfolio`: imports, search and the unit list on a large organisation.
//!
//! Builds a private throwaway cluster, loads `--orgs` ordinary organisations and one large one
//! (`--units` units, `--contacts` contacts) through the CSV import code (parse, validate,
//! write, commit: the same path as an upload), then times the search box and the unit list
//! page at the repository level, each call in its own tenant transaction as a request makes
//! it. Prints figures; asserts nothing (machines are shared and noisy: compare in one run).

use std::time::{Duration, Instant};

use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::import;
use proplink_db::organisation::{self, Organisation};
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::portfolio::{self, SiteScope, UnitQuery};
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext, search, setup};
use proplink_domain::import::ImportKind;
use proplink_domain::{ActorKind, Channel, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

use crate::demo_portfolio::{Files, Generator};

pub struct Options {
    pub units: usize,
    pub contacts: usize,
    pub orgs: usize,
    pub other_units: usize,
    pub other_contacts: usize,
    pub samples: usize,
    pub dir: Option<std::path::PathBuf>,
    pub keep: bool,
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

pub async fn run(options: Options) -> Result<(), String> {
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("proplink-bench-portfolio-{}", std::process::id()))
    });
    let bins = PgBinaries::discover().map_err(e)?;
    let cluster = Cluster::prepare(bins, &dir, Durability::Durable).map_err(e)?;
    cluster.start().map_err(e)?;
    let result = bench(&cluster, &options).await;
    if options.keep {
        println!(
            "\nThe cluster is still running: psql \"{}\"\nStop it with: pg_ctl stop -D {}",
            cluster.url(SUPERUSER, "bench"),
            cluster.data_dir.display()
        );
        return result;
    }
    let _ = cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn ctx(org: &Organisation) -> TenantContext {
    TenantContext {
        org: org.id,
        actor: Actor {
            id: Some(Uuid::now_v7()),
            kind: ActorKind::Staff,
            name: Some("Bench".into()),
        },
        channel: Channel::Admin,
        request_id: None,
    }
}

/// Parses and commits each file, printing rows/s for the large organisation.
async fn load(
    app: &AppPool,
    org: &Organisation,
    files: &Files,
    verbose: bool,
) -> Result<(), String> {
    // A file holds at most MAX_ROWS rows: longer lists go in as several files.
    let parts: Vec<(ImportKind, String)> = [
        (ImportKind::Sites, &files.sites),
        (ImportKind::Buildings, &files.buildings),
        (ImportKind::Units, &files.units),
        (ImportKind::Contacts, &files.contacts),
        (ImportKind::Leases, &files.leases),
    ]
    .into_iter()
    .flat_map(|(kind, text)| {
        split(text, proplink_domain::import::MAX_ROWS)
            .into_iter()
            .map(move |part| (kind, part))
    })
    .collect();
    for (kind, text) in &parts {
        let kind = *kind;
        let started = Instant::now();
        let parsed = kind.parse_file(text.as_bytes()).map_err(e)?;
        if let Some(first) = parsed.errors().first() {
            return Err(format!(
                "{} line {}: {}",
                kind.key(),
                first.line,
                first.message
            ));
        }
        let parse_time = started.elapsed();
        let mut tx = app.begin(&ctx(org)).await.map_err(e)?;
        let outcome = import::apply(&mut tx, &parsed, &mut |_| {})
            .await
            .map_err(|err| format!("{} import: {err:?}", kind.key()))?;
        tx.commit().await.map_err(e)?;
        let total = started.elapsed();
        if verbose {
            let rows = parsed.row_count();
            println!(
                "  {:<10} {:>8} rows  {:>6.2} s  ({:>5.0} ms parsing)  {:>8.0} rows/s   created {} updated {} unchanged {}",
                kind.key(),
                rows,
                total.as_secs_f64(),
                parse_time.as_secs_f64() * 1e3,
                rows as f64 / total.as_secs_f64(),
                outcome.created,
                outcome.updated,
                outcome.unchanged,
            );
        }
    }
    Ok(())
}

/// The CSV text as files of at most `rows` data rows, each with the header.
fn split(text: &str, rows: usize) -> Vec<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let body: Vec<&str> = lines.collect();
    body.chunks(rows.max(1))
        .map(|chunk| {
            let mut part = String::from(header);
            part.push('\n');
            for line in chunk {
                part.push_str(line);
                part.push('\n');
            }
            part
        })
        .collect()
}

/// Makes the i-th query of a measured case.
type QueryMaker = Box<dyn Fn(usize) -> UnitQuery>;

fn percentiles(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
    };
    println!(
        "  {label:<46} n={:<5} p50 {:>6.2} ms   p95 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
        times.len(),
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0)
    );
}

async fn bench(cluster: &Cluster, o: &Options) -> Result<(), String> {
    let db = "bench";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "drop database if exists {db} with (force)"
    )))
    .execute(&mut su)
    .await
    .map_err(e)?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    su.close().await.map_err(e)?;
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let platform = PlatformPool::new(&cluster.url(PLATFORM_ROLE, db), &settings).map_err(e)?;
    let app = AppPool::new(&cluster.url(APP_ROLE, db), &settings).map_err(e)?;

    println!(
        "Loading {} other organisations ({} units, {} contacts each) …",
        o.orgs, o.other_units, o.other_contacts
    );
    let started = Instant::now();
    for i in 0..o.orgs {
        let org = organisation::create(
            &platform,
            &OrgSlug::parse(&format!("other{i}")).map_err(e)?,
            &format!("Other {i}"),
        )
        .await
        .map_err(e)?;
        let files = Generator::large(
            1000 + i as u64,
            &format!("o{i}"),
            o.other_units,
            o.other_contacts,
        );
        load(&app, &org, &files, false).await?;
    }
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());

    println!(
        "\nImporting the large organisation ({} units, {} contacts) — parse, validate, write, commit:",
        o.units, o.contacts
    );
    let big = organisation::create(
        &platform,
        &OrgSlug::parse("large").map_err(e)?,
        "Large Estates",
    )
    .await
    .map_err(e)?;
    let files = Generator::large(7, "lg", o.units, o.contacts);
    load(&app, &big, &files, true).await?;
    println!("Re-importing the same files (nothing changes):");
    load(&app, &big, &files, true).await?;

    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    sqlx::raw_sql("vacuum analyze")
        .execute(&mut su)
        .await
        .map_err(e)?;

    // Queries a property manager types: surnames, prefixes, typos, full names, postcodes,
    // references, e-mail fragments.
    let queries = [
        "smith",
        "smi",
        "patel",
        "pat",
        "okafor",
        "jon",
        "jones",
        "smoth",
        "jnoes",
        "john smith",
        "priya",
        "wright",
        "chen",
        "o'brien",
        "ls1",
        "nr5",
        "lg-00042",
        "house",
        "flat a12",
        "kowalski",
        "begum",
        "07700",
        "oliver.smith",
        "harris",
        "thompson",
    ];
    let everything = SiteScope::everything();
    let site_ids: Vec<Uuid> = {
        let mut tx = app.begin(&ctx(&big)).await.map_err(e)?;
        let sites = portfolio::list_sites(&mut tx, &everything, Default::default(), None, "")
            .await
            .map_err(e)?;
        sites.iter().map(|s| s.id).collect()
    };
    let scoped = SiteScope {
        sites: site_ids.iter().step_by(50).copied().collect(),
        ..SiteScope::default()
    };

    println!("\nSearch (one tenant transaction per query, as a request does):");
    for (label, scope) in [
        ("all sites", &everything),
        ("a member scoped to 1 site in 50", &scoped),
    ] {
        let mut times = Vec::with_capacity(o.samples);
        let mut slow: Vec<(Duration, &str)> = Vec::with_capacity(o.samples);
        let mut hits = 0;
        for i in 0..o.samples {
            let q = queries[i % queries.len()];
            let t = Instant::now();
            let mut tx = app.begin(&ctx(&big)).await.map_err(e)?;
            hits += search::search(&mut tx, scope, q, 10)
                .await
                .map_err(e)?
                .len();
            tx.end_reading();
            times.push(t.elapsed());
            slow.push((t.elapsed(), q));
        }
        percentiles(
            &format!("search, {label} ({} hits/query)", hits / o.samples.max(1)),
            times,
        );
        // The queries behind the tail, slowest first.
        slow.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        let mut named: Vec<&str> = Vec::new();
        for (_, q) in &slow {
            if !named.contains(q) {
                named.push(q);
            }
            if named.len() == 5 {
                break;
            }
        }
        println!("    slowest: {}", named.join(" | "));
    }

    println!("\nUnit list page (50 rows and the total count):");
    let cases: Vec<(&str, QueryMaker)> = vec![
        (
            "first page, all sites",
            Box::new(|_| UnitQuery {
                per_page: 50,
                ..Default::default()
            }),
        ),
        (
            "random page 1–200",
            Box::new(|i| UnitQuery {
                per_page: 50,
                page: 1 + (i * 37 % 200) as i64,
                ..Default::default()
            }),
        ),
        (
            "one site",
            Box::new({
                let ids = site_ids.clone();
                move |i| UnitQuery {
                    per_page: 50,
                    site: ids.get(i % ids.len()).copied(),
                    ..Default::default()
                }
            }),
        ),
        (
            "search box \"a1\"",
            Box::new(|_| UnitQuery {
                per_page: 50,
                q: "a1".into(),
                ..Default::default()
            }),
        ),
        (
            "commercial units",
            Box::new(|_| UnitQuery {
                per_page: 50,
                unit_type: Some("commercial".into()),
                ..Default::default()
            }),
        ),
    ];
    for (label, make) in &cases {
        let mut times = Vec::with_capacity(o.samples);
        for i in 0..o.samples.min(1000) {
            let query = make(i);
            let t = Instant::now();
            let mut tx = app.begin(&ctx(&big)).await.map_err(e)?;
            let page = portfolio::list_units(&mut tx, &everything, &query)
                .await
                .map_err(e)?;
            tx.end_reading();
            times.push(t.elapsed());
            std::hint::black_box(page.rows.len());
        }
        percentiles(label, times);
    }
    let mut times = Vec::new();
    for i in 0..o.samples.min(1000) {
        let t = Instant::now();
        let mut tx = app.begin(&ctx(&big)).await.map_err(e)?;
        let page = portfolio::list_units(
            &mut tx,
            &scoped,
            &UnitQuery {
                per_page: 50,
                page: 1 + (i % 3) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
        tx.end_reading();
        times.push(t.elapsed());
        std::hint::black_box(page.rows.len());
    }
    percentiles("scoped member (1 site in 50)", times);
    app.close().await;
    platform.close().await;
    Ok(())
}
