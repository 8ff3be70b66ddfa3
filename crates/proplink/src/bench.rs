//! `proplink bench tenancy`: what row-level security and the audit trigger cost.
//!
//! Builds a private throwaway cluster, loads a tenant table of `--rows` rows across `--orgs`
//! organisations, and times the same queries (a) through `TenantTx` with RLS and (b) as a
//! role that bypasses RLS with an explicit `WHERE organisation_id = $1`. Then times single-row
//! inserts into an audited table and an identical table without the audit trigger.
//! Prints figures; asserts nothing (machines are shared and noisy: read the ratios).

use clap::Subcommand;
use proplink_db::cluster::{Cluster, Durability, PgBinaries, SUPERUSER};
use proplink_db::organisation;
use proplink_db::pools::{APP_ROLE, OWNER_ROLE, PLATFORM_ROLE, PoolSettings};
use proplink_db::setup::{self, quote_ident};
use proplink_db::{Actor, AppPool, PlatformPool, TenantContext};
use proplink_domain::{Channel, OrgId, OrgSlug};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// What one Argon2id password hash costs here, for a few parameter sets (target 50–150 ms).
    Argon2 {
        #[arg(long, default_value_t = 10)]
        samples: u32,
    },
    /// The signed-in dashboard and the login page under `wrk` (requests/s, p50, p99).
    /// ResidencePort: residents' home and statement pages under load (p99), and the
    /// throughput of signed payment webhooks (first deliveries and duplicates).
    Residence {
        /// Residents signed in at once, each loading pages in turn.
        #[arg(long, default_value_t = 100)]
        residents: usize,
        /// Seconds of page loads.
        #[arg(long, default_value_t = 15)]
        secs: u64,
        /// Each resident's pause between pages, in milliseconds (then a run with none).
        #[arg(long, default_value_t = 1_000)]
        think_ms: u64,
        /// Signed payment events to deliver (then deliver again).
        #[arg(long, default_value_t = 2_000)]
        events: usize,
        /// Webhook deliveries in flight at once.
        #[arg(long, default_value_t = 8)]
        senders: usize,
        /// Print where the saturated page run and the first deliveries spent their time.
        #[arg(long)]
        statements: bool,
        /// Database connections in the server's pool.
        #[arg(long, default_value_t = 20)]
        pool: u32,
        /// Where the throwaway cluster lives (deleted afterwards).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    Web {
        /// Seconds per measured run.
        #[arg(long, default_value_t = 15)]
        secs: u32,
        #[arg(long, default_value_t = 50)]
        connections: u32,
        /// The signed-in admin page to load (as Goldcrest's owner).
        #[arg(long, default_value = "/dashboard")]
        path: String,
        /// Database connections in the server's pool.
        #[arg(long, default_value_t = 20)]
        pool: u32,
        /// Where the throwaway cluster lives (deleted afterwards).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Imports, search and the unit list on a large organisation beside many small ones.
    Portfolio {
        #[arg(long, default_value_t = 100_000)]
        units: usize,
        #[arg(long, default_value_t = 150_000)]
        contacts: usize,
        /// Other organisations sharing the database.
        #[arg(long, default_value_t = 50)]
        orgs: usize,
        #[arg(long, default_value_t = 1_000)]
        other_units: usize,
        #[arg(long, default_value_t = 1_500)]
        other_contacts: usize,
        /// Measured queries per case.
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
        /// Where the throwaway cluster lives (deleted afterwards unless --keep).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Leave the cluster running with its data afterwards, to study queries in psql.
        #[arg(long)]
        keep: bool,
    },
    /// The issue queue and work-order list of a large organisation beside many small ones.
    Operations {
        /// Sites of the large organisation (20 units each).
        #[arg(long, default_value_t = 500)]
        sites: usize,
        #[arg(long, default_value_t = 200_000)]
        issues: usize,
        #[arg(long, default_value_t = 100_000)]
        work_orders: usize,
        /// Other organisations sharing the database.
        #[arg(long, default_value_t = 20)]
        orgs: usize,
        #[arg(long, default_value_t = 2_000)]
        other_issues: usize,
        #[arg(long, default_value_t = 1_000)]
        other_work_orders: usize,
        /// Sites of the compliance dashboard's organisation.
        #[arg(long, default_value_t = 1_000)]
        compliance_sites: usize,
        /// Compliance maintenance events over those sites.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Measured calls per case.
        #[arg(long, default_value_t = 300)]
        samples: usize,
        /// Where the throwaway cluster lives (deleted afterwards unless --keep).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Leave the cluster running with its data afterwards, to study queries in psql.
        #[arg(long)]
        keep: bool,
    },
    /// Statements, trial balances, bulk demand runs and PDF statements over ten years of money
    /// (issue 6).
    Money {
        #[arg(long, default_value_t = 100_000)]
        units: usize,
        /// Years of history before this one.
        #[arg(long, default_value_t = 10)]
        years: usize,
        #[arg(long, default_value_t = 200)]
        sites: usize,
        /// Measured calls per case.
        #[arg(long, default_value_t = 1_000)]
        samples: usize,
        /// Demands in the bulk run (and rows of the raw COPY it is compared with).
        #[arg(long, default_value_t = 10_000)]
        demands: usize,
        /// Where the throwaway cluster lives (deleted afterwards unless --keep).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Leave the cluster running with its data afterwards, to study queries in psql.
        #[arg(long)]
        keep: bool,
    },
    /// A payment run of 5,000 bills across 200 sites, step by step, and the creditors list over
    /// a million bills (issue 7).
    Payables {
        #[arg(long, default_value_t = 200)]
        sites: usize,
        #[arg(long, default_value_t = 50)]
        vendors: usize,
        /// Bills in each measured run.
        #[arg(long, default_value_t = 5_000)]
        run_bills: usize,
        /// Measured runs, each of fresh bills.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Bills of history (most paid).
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
        /// Years the history spans.
        #[arg(long, default_value_t = 5)]
        years: usize,
        /// Measured calls per creditors case.
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Where the throwaway cluster lives (deleted afterwards unless --keep).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Leave the cluster running with its data afterwards, to study queries in psql.
        #[arg(long)]
        keep: bool,
        /// Also print the statements the runs spent their time in (needs PostgreSQL's
        /// pg_stat_statements module, shipped with the server).
        #[arg(long)]
        statements: bool,
    },
    /// RLS through TenantTx versus an explicit filter; audited versus un-audited inserts.
    Tenancy {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 100)]
        orgs: u64,
        /// Measured operations per case.
        #[arg(long, default_value_t = 3000)]
        ops: usize,
        /// Where the throwaway cluster lives (deleted afterwards).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

pub async fn run(cmd: BenchCommand) -> Result<(), String> {
    match cmd {
        BenchCommand::Argon2 { samples } => argon2(samples.max(1)).await,
        BenchCommand::Residence {
            residents,
            secs,
            think_ms,
            events,
            senders,
            pool,
            dir,
            statements,
        } => {
            crate::bench_residence::run(crate::bench_residence::Options {
                statements,
                residents,
                secs,
                think_ms,
                events,
                senders,
                pool,
                dir,
            })
            .await
        }
        BenchCommand::Web {
            secs,
            connections,
            path,
            pool,
            dir,
        } => crate::bench_web::run(secs, connections, path, pool, dir).await,
        BenchCommand::Portfolio {
            units,
            contacts,
            orgs,
            other_units,
            other_contacts,
            samples,
            dir,
            keep,
        } => {
            crate::bench_portfolio::run(crate::bench_portfolio::Options {
                keep,
                units,
                contacts,
                orgs,
                other_units,
                other_contacts,
                samples: samples.max(10),
                dir,
            })
            .await
        }
        BenchCommand::Operations {
            sites,
            issues,
            work_orders,
            orgs,
            other_issues,
            other_work_orders,
            compliance_sites,
            events,
            samples,
            dir,
            keep,
        } => {
            let compliance = crate::bench_operations::Compliance {
                sites: compliance_sites.max(1),
                events,
            };
            crate::bench_operations::run_with(
                crate::bench_operations::Options {
                    sites: sites.max(10),
                    issues,
                    work_orders,
                    orgs,
                    other_issues,
                    other_work_orders,
                    samples: samples.max(10),
                    dir,
                    keep,
                },
                compliance,
            )
            .await
        }
        BenchCommand::Money {
            units,
            years,
            sites,
            samples,
            demands,
            dir,
            keep,
        } => {
            crate::bench_money::run(crate::bench_money::Options {
                units,
                years,
                sites,
                samples: samples.max(10),
                demands,
                dir,
                keep,
            })
            .await
        }
        BenchCommand::Payables {
            sites,
            vendors,
            run_bills,
            runs,
            history,
            years,
            samples,
            dir,
            keep,
            statements,
        } => {
            crate::bench_payables::run(crate::bench_payables::Options {
                sites,
                vendors,
                run_bills,
                runs,
                history,
                years,
                samples: samples.max(10),
                dir,
                keep,
                statements,
            })
            .await
        }
        BenchCommand::Tenancy {
            rows,
            orgs,
            ops,
            dir,
        } => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("proplink-bench-{}", std::process::id()))
            });
            let bins = PgBinaries::discover().map_err(|e| e.to_string())?;
            let cluster =
                Cluster::prepare(bins, &dir, Durability::Durable).map_err(|e| e.to_string())?;
            cluster.start().map_err(|e| e.to_string())?;
            let result = tenancy(&cluster, rows, orgs.max(1), ops.max(10)).await;
            let _ = cluster.stop();
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
    }
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), String> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(e)
}

struct Timing {
    per_op: Duration,
}

fn report(label: &str, rls: &Timing, explicit: &Timing) {
    let ratio = rls.per_op.as_secs_f64() / explicit.per_op.as_secs_f64();
    println!(
        "  {label:<44} RLS {:>8.1} µs   explicit {:>8.1} µs   ratio {ratio:.2}×",
        rls.per_op.as_secs_f64() * 1e6,
        explicit.per_op.as_secs_f64() * 1e6
    );
}

async fn tenancy(cluster: &Cluster, rows: u64, orgs: u64, ops: usize) -> Result<(), String> {
    let db = "bench";
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, "postgres"))
        .await
        .map_err(e)?;
    setup::ensure_roles(&mut su).await.map_err(e)?;
    exec(
        &mut su,
        &format!("drop database if exists {db} with (force)"),
    )
    .await?;
    setup::ensure_database(&mut su, db).await.map_err(e)?;
    su.close().await.map_err(e)?;
    setup::migrate(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;

    let mut owner = PgConnection::connect(&cluster.url(OWNER_ROLE, db))
        .await
        .map_err(e)?;
    for t in ["bench_item", "bench_plain"] {
        exec(&mut owner, &format!(
            "create table {t} (organisation_id uuid not null references organisation (id), id uuid not null,
                               name text not null, amount_pence bigint not null, created_at timestamptz not null,
                               primary key (organisation_id, id));
             create index {t}_recent on {t} (organisation_id, created_at desc, id desc);
             select proplink.make_tenant_table('{t}');"
        )).await?;
    }
    exec(
        &mut owner,
        "drop trigger audit on bench_plain; drop trigger audit_update on bench_plain;
         drop trigger audit_delete on bench_plain",
    )
    .await?;
    owner.close().await.map_err(e)?;

    // One connection per side, so both paths run on equally warm server processes.
    let settings = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    let platform = PlatformPool::new(&cluster.url(PLATFORM_ROLE, db), &settings).map_err(e)?;
    let app = AppPool::new(&cluster.url(APP_ROLE, db), &settings).map_err(e)?;
    let mut org_ids = Vec::new();
    for i in 0..orgs {
        let slug = OrgSlug::parse(&format!("bench{i}")).map_err(e)?;
        org_ids.push(
            organisation::create(&platform, &slug, &format!("Bench {i}"))
                .await
                .map_err(e)?
                .id,
        );
    }

    println!("Loading {rows} rows across {orgs} organisations …");
    let started = Instant::now();
    let mut su = PgConnection::connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let per_org = rows / orgs;
    exec(&mut su, "alter table bench_item disable trigger user").await?;
    exec(
        &mut su,
        &format!(
            "insert into bench_item select o.id, gen_random_uuid(), 'Item ' || g, g * 100,
                now() - make_interval(secs => g)
           from organisation o cross join generate_series(1, {per_org}) g"
        ),
    )
    .await?;
    exec(
        &mut su,
        "alter table bench_item enable trigger user; analyze bench_item",
    )
    .await?;
    println!("  loaded in {:.1} s", started.elapsed().as_secs_f64());

    let samples: Vec<(Uuid, Uuid)> = sqlx::query_as(AssertSqlSafe(format!(
        "select organisation_id, id from bench_item tablesample system (1) limit {ops}"
    )))
    .fetch_all(&mut su)
    .await
    .map_err(e)?;
    if samples.is_empty() {
        return Err("the sample is empty: use more rows".into());
    }

    println!(
        "\nRow-level security (query time only, each in its own fresh transaction; {} operations):",
        samples.len()
    );
    let ctx = |org: Uuid| TenantContext {
        org: OrgId(org),
        actor: Actor::system(),
        channel: Channel::Platform,
        request_id: None,
    };

    let su_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.url(SUPERUSER, db))
        .await
        .map_err(e)?;
    let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    for (label, query) in [
        ("indexed lookup by id", Query::Lookup),
        ("paginated list (50 rows, offset 100)", Query::List),
    ] {
        // One warm-up pass (plans, caches), then the measured pass.
        compare(&app, &su_pool, &samples, query).await?;
        let (rls, explicit) = compare(&app, &su_pool, &samples, query).await?;
        report(
            label,
            &Timing { per_op: rls / n },
            &Timing {
                per_op: explicit / n,
            },
        );
    }
    su_pool.close().await;

    // Whole request shape: TenantTx begin + set_config + query + commit vs one plain query.
    let mut rls_total = Duration::ZERO;
    let mut explicit_total = Duration::ZERO;
    for (org, id) in &samples {
        let t = Instant::now();
        let mut tx = app.begin(&ctx(*org)).await.map_err(e)?;
        sqlx::query(Query::Lookup.rls())
            .bind(id)
            .fetch_one(tx.conn())
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        rls_total += t.elapsed();
        let t = Instant::now();
        sqlx::query(Query::Lookup.explicit())
            .bind(org)
            .bind(id)
            .fetch_one(&mut su)
            .await
            .map_err(e)?;
        explicit_total += t.elapsed();
    }
    println!(
        "\nWhole request (TenantTx: begin, set context, query, commit; explicit: one autocommit query):"
    );
    report(
        "indexed lookup by id",
        &Timing {
            per_op: rls_total / n,
        },
        &Timing {
            per_op: explicit_total / n,
        },
    );

    let org = org_ids[0].0;
    println!(
        "\nSingle-row inserts, each its own TenantTx and commit ({ops} each, durable commits):"
    );
    let mut audited = Duration::ZERO;
    let mut plain = Duration::ZERO;
    for i in 0..ops {
        for (table, total) in [("bench_item", &mut audited), ("bench_plain", &mut plain)] {
            let t = Instant::now();
            let mut tx = app.begin(&ctx(org)).await.map_err(e)?;
            insert_one(&mut tx, table, org, i).await?;
            tx.commit().await.map_err(e)?;
            *total += t.elapsed();
        }
    }
    report_inserts(ops, audited, plain);

    println!(
        "\nSingle-row inserts inside one transaction ({ops} each; statement cost without commit):"
    );
    let mut audited = Duration::ZERO;
    let mut plain = Duration::ZERO;
    let mut tx = app.begin(&ctx(org)).await.map_err(e)?;
    for i in 0..ops {
        for (table, total) in [("bench_item", &mut audited), ("bench_plain", &mut plain)] {
            let t = Instant::now();
            insert_one(&mut tx, table, org, i).await?;
            *total += t.elapsed();
        }
    }
    tx.rollback().await.map_err(e)?;
    report_inserts(ops, audited, plain);
    app.close().await;
    platform.close().await;
    Ok(())
}

async fn insert_one(
    tx: &mut proplink_db::TenantTx,
    table: &str,
    org: Uuid,
    i: usize,
) -> Result<(), String> {
    sqlx::query(AssertSqlSafe(format!(
        "insert into {} (organisation_id, id, name, amount_pence, created_at) values ($1, $2, $3, $4, now())",
        quote_ident(table)
    )))
    .bind(org)
    .bind(Uuid::now_v7())
    .bind(format!("New item {i}"))
    .bind(i64::try_from(i).unwrap_or(0))
    .execute(tx.conn())
    .await
    .map(|_| ())
    .map_err(e)
}

fn report_inserts(ops: usize, audited: Duration, plain: Duration) {
    let per = |d: Duration| d.as_secs_f64() / ops as f64;
    println!(
        "  audited {:>7.0} inserts/s ({:.1} µs)   un-audited {:>7.0} inserts/s ({:.1} µs)   audit cost {:.2}×",
        1.0 / per(audited),
        per(audited) * 1e6,
        1.0 / per(plain),
        per(plain) * 1e6,
        per(audited) / per(plain)
    );
}

#[derive(Clone, Copy)]
enum Query {
    Lookup,
    List,
}

impl Query {
    fn rls(self) -> &'static str {
        match self {
            Self::Lookup => {
                "select id, name, amount_pence, created_at from bench_item where id = $1"
            }
            Self::List => {
                "select id, name, amount_pence, created_at from bench_item order by created_at desc, id desc limit 50 offset 100"
            }
        }
    }

    fn explicit(self) -> &'static str {
        match self {
            Self::Lookup => {
                "select id, name, amount_pence, created_at from bench_item where organisation_id = $1 and id = $2"
            }
            Self::List => {
                "select id, name, amount_pence, created_at from bench_item where organisation_id = $1 order by created_at desc, id desc limit 50 offset 100"
            }
        }
    }
}

/// Times one query per sample both ways, each inside a transaction opened (untimed) just
/// before it: through `TenantTx` with RLS, and as a superuser (who bypasses RLS; FORCE
/// subjects the owner to it) with the explicit filter. Returns the total time of each.
async fn compare(
    app: &AppPool,
    su: &sqlx::PgPool,
    samples: &[(Uuid, Uuid)],
    query: Query,
) -> Result<(Duration, Duration), String> {
    let mut rls = Duration::ZERO;
    let mut explicit = Duration::ZERO;
    for (org, id) in samples {
        let ctx = TenantContext {
            org: OrgId(*org),
            actor: Actor::system(),
            channel: Channel::Platform,
            request_id: None,
        };
        let mut tx = app.begin(&ctx).await.map_err(e)?;
        let t = Instant::now();
        let q = sqlx::query(query.rls());
        let q = if matches!(query, Query::Lookup) {
            q.bind(id)
        } else {
            q
        };
        let a = q.fetch_all(tx.conn()).await.map_err(e)?;
        rls += t.elapsed();
        tx.rollback().await.map_err(e)?;

        let mut su_tx = su.begin().await.map_err(e)?;
        let t = Instant::now();
        let q = sqlx::query(query.explicit()).bind(org);
        let q = if matches!(query, Query::Lookup) {
            q.bind(id)
        } else {
            q
        };
        let b = q.fetch_all(&mut *su_tx).await.map_err(e)?;
        explicit += t.elapsed();
        su_tx.rollback().await.map_err(e)?;
        if a.len() != b.len() || a.is_empty() {
            return Err(format!(
                "the two queries disagree: {} rows against {}",
                a.len(),
                b.len()
            ));
        }
    }
    Ok((rls, explicit))
}

async fn argon2(samples: u32) -> Result<(), String> {
    use proplink_auth::password::{HashParams, PasswordHasherPool};
    use secrecy::SecretString;
    println!("Argon2id, {samples} hashes each, on tokio's blocking pool:");
    let production = HashParams::PRODUCTION;
    for params in [
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            lanes: 1,
        },
        HashParams {
            memory_kib: 47_104,
            iterations: 1,
            lanes: 1,
        },
        production,
        HashParams {
            memory_kib: 131_072,
            iterations: 3,
            lanes: 1,
        },
    ] {
        let hasher = PasswordHasherPool::new(params).map_err(e)?;
        let started = Instant::now();
        let mut last = String::new();
        for i in 0..samples {
            last = hasher
                .hash(SecretString::from(format!("correct horse battery {i}")))
                .await
                .map_err(e)?;
        }
        let hash = started.elapsed() / samples;
        let started = Instant::now();
        for _ in 0..samples {
            hasher
                .verify(
                    SecretString::from("wrong password 1".to_owned()),
                    Some(last.clone()),
                )
                .await;
        }
        let verify = started.elapsed() / samples;
        println!(
            "  m={:>6} KiB t={} p={}   hash {:>6.1} ms   verify {:>6.1} ms{}",
            params.memory_kib,
            params.iterations,
            params.lanes,
            hash.as_secs_f64() * 1e3,
            verify.as_secs_f64() * 1e3,
            if params == production {
                "   <- in use"
            } else {
                ""
            }
        );
    }
    Ok(())
}
